"""One contract over every registered head type (`rmsearch.heads.KINDS`): a type added with `register_head` is
tested here without an edit. `SMALL` only makes some types quicker to train; a type it does not name trains at
its config's defaults."""

from dataclasses import dataclass

import numpy as np
import pytest

from rmsearch.errors import ConfigError
from rmsearch.evaluate import pair_metrics
from rmsearch.heads import (
    HEAD_CONFIGS,
    KINDS,
    Head,
    HeadConfig,
    HeadKind,
    forward,
    head_class,
    head_config,
    make_head,
    register_head,
)

SMALL = {
    "mlp": {"hidden": [32, 16], "epochs": 15},
    "mlp_clf": {"hidden": [32, 16], "epochs": 15},
    "gbdt": {"max_iter": 60, "bootstrap": True},
    "laplace": {"bootstrap": True},
    "prototype": {"bootstrap": True, "epochs": 15},
}
"""Settings that keep a type's training short, by type name."""


@pytest.fixture(scope="module", params=list(KINDS))
def fitted(request, small_task):
    config = head_config(request.param, **SMALL.get(request.param, {}))
    head = make_head(config, seeds=(3, 4)).fit(small_task.train, stop=small_task.stop)
    return config, head


def val_rows(task):
    return np.asarray(task.val.source[task.val.rows], np.float32)


def test_every_kind_is_registered_whole():
    assert {"linear", "mlp", "mlp_clf", "gbdt", "laplace", "prototype"} <= set(KINDS)
    assert set(SMALL) <= set(KINDS), "SMALL names a head type that is not registered"
    for name, kind in KINDS.items():
        assert kind.config.kind == name and HEAD_CONFIGS[name] is kind.config
        assert head_class(name).kind == name and head_class(name).Config is kind.config


def test_shapes_and_finite(fitted, small_task):
    _, head = fitted
    X = val_rows(small_task)
    s = head.score(X)
    assert s.shape == (head.members, len(X)) == (2, len(X)) and s.dtype == np.float32
    assert np.isfinite(s).all()
    assert not np.allclose(s[0], s[1]), "members with different seeds must differ"


def test_seeded_determinism(fitted, small_task):
    config, head = fitted
    again = make_head(config, seeds=(3, 4)).fit(small_task.train, stop=small_task.stop)
    X = val_rows(small_task)
    np.testing.assert_array_equal(head.score(X), again.score(X))


def test_torch_free_forward_gives_the_scores(fitted, small_task):
    """What an export runs (the registered forward on `member_arrays()`) scores as the head does."""
    config, head = fitted
    X = val_rows(small_task)
    numpy_scores = np.stack([forward(config.kind, a, X) for a in head.member_arrays()])
    assert numpy_scores.shape == (head.members, len(X)) and numpy_scores.dtype == np.float32
    np.testing.assert_allclose(numpy_scores, head.score(X), rtol=1e-4, atol=1e-4)


def test_arrays_round_trip(fitted, small_task):
    config, head = fitted
    arrays = head.member_arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for a in arrays for v in a.values())
    copies = [{k: v.copy() for k, v in a.items()} for a in arrays]
    rebuilt = head_class(config.kind).from_arrays(config, copies)
    X = val_rows(small_task)
    np.testing.assert_array_equal(rebuilt.score(X), head.score(X))


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


def test_an_unknown_kind_is_refused_with_the_known_ones():
    for lookup in (lambda: forward("svm", {}, np.zeros((1, 4), np.float32)), lambda: head_class("svm"),
                   lambda: head_config("svm")):
        with pytest.raises(ConfigError, match="unknown head type 'svm'; choose one of linear, mlp, mlp_clf, gbdt"):
            lookup()


@dataclass(frozen=True)
class ConstantConfig(HeadConfig):
    kind = "constant"
    value: float = 1.5


class ConstantHead(Head):
    """A head type defined outside the package: every member scores every row `value`."""

    kind = "constant"
    Config = ConstantConfig

    def fit(self, train, stop=None):
        self.arrays_ = [{"value": np.float32(self.config.value).reshape(1)} for _ in self.seeds]
        self.history_ = [{"train/loss": np.zeros(len(self.seeds), np.float32)}]
        return self


def constant_forward(arrays, X):
    return np.full(len(X), arrays["value"][0], np.float32)


def test_one_registration_adds_a_kind(small_task):
    kind = HeadKind(ConstantConfig, f"{__name__}:ConstantHead", constant_forward)
    register_head(kind)
    try:
        with pytest.raises(ValueError, match="'constant' is already registered"):
            register_head(kind)
        assert "constant" in HEAD_CONFIGS and head_class("constant") is ConstantHead
        head = make_head(head_config("constant", value=2.0), seeds=(0, 1)).fit(small_task.train)
        X = val_rows(small_task)
        np.testing.assert_array_equal(head.score(X), np.full((2, len(X)), 2.0, np.float32))
        np.testing.assert_array_equal(forward("constant", head.member_arrays()[0], X), head.score(X)[0])
    finally:
        del KINDS["constant"]
    assert "constant" not in HEAD_CONFIGS
