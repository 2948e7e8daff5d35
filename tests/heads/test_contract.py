"""One contract over every head type: adding a head = one module + one entry in HEADS below."""

import numpy as np
import pytest

from rmsearch.evaluate import pair_metrics
from rmsearch.heads import forward, head_class, head_config, make_head

HEADS = {
    "linear": {},
    "mlp": {"hidden": [32, 16], "epochs": 15},
    "mlp_clf": {"hidden": [32, 16], "epochs": 15},
    "gbdt": {"max_iter": 60, "bootstrap": True},
}


@pytest.fixture(scope="module", params=sorted(HEADS))
def fitted(request, small_task):
    config = head_config(request.param, **HEADS[request.param])
    head = make_head(config, seeds=(3, 4)).fit(small_task.train, stop=small_task.stop)
    return config, head


def val_rows(task):
    return np.asarray(task.val.source[task.val.rows], np.float32)


def test_shapes_and_finite(fitted, small_task):
    _, head = fitted
    X = val_rows(small_task)
    s = head.score(X)
    assert s.shape == (2, len(X)) and s.dtype == np.float32
    assert np.isfinite(s).all()
    assert not np.allclose(s[0], s[1]), "members with different seeds must differ"


def test_seeded_determinism(fitted, small_task):
    config, head = fitted
    again = make_head(config, seeds=(3, 4)).fit(small_task.train, stop=small_task.stop)
    X = val_rows(small_task)
    np.testing.assert_array_equal(head.score(X), again.score(X))


def test_arrays_round_trip(fitted, small_task):
    config, head = fitted
    arrays = head.member_arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for a in arrays for v in a.values())
    copies = [{k: v.copy() for k, v in a.items()} for a in arrays]
    rebuilt = head_class(config.kind).from_arrays(config, copies)
    X = val_rows(small_task)
    np.testing.assert_array_equal(rebuilt.score(X), head.score(X))
    # the torch-free forward that exports use gives the same scores
    numpy_scores = np.stack([forward(config.kind, a, X) for a in copies])
    np.testing.assert_allclose(numpy_scores, head.score(X), rtol=1e-4, atol=1e-4)


def test_held_out_accuracy_above_chance(fitted, small_task):
    _, head = fitted
    s = head.score(val_rows(small_task))
    p = small_task.val.pairs
    for member in s:
        acc = pair_metrics(member[p.a], member[p.b], p.y)["accuracy"]
        assert acc > 0.65, f"held-out gold-pair accuracy {acc:.3f} is too close to chance (0.5)"


def test_history_has_training_loss(fitted):
    _, head = fitted
    assert head.history_ and head.history_[-1]["train/loss"].shape == (2,)


def test_unfitted_head_says_how_to_fix():
    with pytest.raises(RuntimeError, match="Call 'fit'"):
        make_head(head_config("mlp"), seeds=(0,)).member_arrays()
