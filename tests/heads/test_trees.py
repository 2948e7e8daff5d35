"""Boosted trees as arrays (`_trees`) and the `gbdt` head."""

import numpy as np
import pytest

from rmsearch.data._annotate import Pairs
from rmsearch.heads import GBDTConfig, forward, make_head
from rmsearch.heads.gbdt import GBDTHead
from rmsearch.heads._trees import tree_forward, trees_to_arrays


def _task(n_rows, n_pairs, seed):
    """X ~ N(0, 1) in 8 dims, reward x0 − x1², pairs labelled by reward."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, 8)).astype(np.float32)
    r = X[:, 0] - X[:, 1] ** 2
    a, b = rng.integers(0, n_rows, n_pairs), rng.integers(0, n_rows, n_pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    return Pairs(X, a, b, (r[a] > r[b]).astype(np.float32))


def _accuracy(scores, pairs):
    return float(np.mean((scores[pairs.a] > scores[pairs.b]) == (pairs.y > 0.5)))


@pytest.mark.parametrize("subspace", [False, True])
def test_tree_forward_matches_decision_function(subspace):
    from sklearn.ensemble import HistGradientBoostingClassifier  # after rmsearch.heads.gbdt tunes OpenMP

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 12)).astype(np.float32)
    y = (X[:, 0] + np.sin(3 * X[:, 1]) + 0.5 * rng.standard_normal(3000) > 0).astype(int)
    feats = np.array([0, 1, 4, 7, 9]) if subspace else None
    Xf = X[:, feats] if subspace else X
    est = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, early_stopping=False, random_state=0)
    est.fit(Xf, y)
    arrays = trees_to_arrays(est, feats)
    Xt = rng.standard_normal((20000, 12)).astype(np.float32)  # more rows than one traversal chunk
    Xt[:50] = X[:50]  # rows right at training values, where thresholds lie between neighbours
    want = est.decision_function(Xt[:, feats] if subspace else Xt)
    np.testing.assert_allclose(tree_forward(arrays, Xt), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(forward("gbdt", arrays, Xt), want, rtol=1e-6, atol=1e-6)
    # the first trees only, and none at all (baseline)
    part = trees_to_arrays(est, feats, n_trees=5)
    assert len(part["tree_roots"]) == 5
    baseline = tree_forward(trees_to_arrays(est, feats, n_trees=0), Xt)
    np.testing.assert_allclose(baseline, float(est._baseline_prediction.ravel()[0]), rtol=1e-6)


def test_arrays_are_plain_numeric():
    head = make_head(GBDTConfig(max_iter=20, feature_fraction=0.5, bootstrap=True), seeds=(0, 1)).fit(_task(500, 1500, 1))
    for arrays in head.member_arrays():
        assert {"features", "baseline", "node_feature", "node_threshold", "node_left", "node_right",
                "node_is_leaf", "node_value", "tree_roots"} <= set(arrays)
        for name, v in arrays.items():
            assert isinstance(v, np.ndarray) and v.dtype.kind in "iuf", (name, v.dtype)


def test_gbdt_learns_preferences():
    train, test = _task(2000, 6000, 2), _task(1000, 3000, 3)
    stop = _task(500, 1500, 4)
    head = make_head(GBDTConfig(max_iter=200), seeds=(0, 1)).fit(train, stop=stop)
    scores = head.score(test.X)
    assert scores.shape == (2, len(test.X)) and scores.dtype == np.float32
    for s in scores:
        assert _accuracy(s, test) > 0.8
    last = head.history_[-1]
    assert set(last) == {"train/loss", "val/nll", "val/accuracy"}
    assert last["val/accuracy"].shape == (2,) and (last["val/accuracy"] > 0.8).all()
    assert head.history_[0]["train/loss"].mean() > last["train/loss"].mean()


def test_seeded_determinism_and_round_trip():
    train = _task(800, 2400, 5)
    cfg = GBDTConfig(max_iter=30, bootstrap=True, feature_fraction=0.75)
    h1 = make_head(cfg, seeds=(3, 4)).fit(train)
    h2 = make_head(cfg, seeds=(3, 4)).fit(train)
    X = np.random.default_rng(6).standard_normal((500, 8)).astype(np.float32)
    np.testing.assert_array_equal(h1.score(X), h2.score(X))
    assert not np.array_equal(h1.score(X)[0], h1.score(X)[1])  # members differ
    # a member is the same whatever group it was trained in
    np.testing.assert_array_equal(make_head(cfg, seeds=(4,)).fit(train).score(X)[0], h1.score(X)[1])
    rebuilt = GBDTHead.from_arrays(cfg, h1.member_arrays())
    np.testing.assert_array_equal(rebuilt.score(X), h1.score(X))


def test_unfitted_head_refuses_to_score():
    with pytest.raises(RuntimeError, match="not fitted"):
        make_head(GBDTConfig()).score(np.zeros((2, 8), np.float32))


def test_an_untested_scikit_learn_layout_fails_with_the_fix():
    """A release that renames the private tree attributes is refused with the versions to install."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from rmsearch.heads._trees import trees_to_arrays

    g = np.random.default_rng(0)
    est = HistGradientBoostingClassifier(max_iter=3).fit(g.standard_normal((50, 3)), g.random(50) < 0.5)
    del est._predictors  # what a release with other internals looks like to us
    with pytest.raises(RuntimeError, match=r"scikit-learn>=1.3,<1.10"):
        trees_to_arrays(est)


def test_a_member_trains_on_at_most_max_pairs_pairs_held_once_as_float64(monkeypatch):
    """scikit-learn's fit is handed one float64 matrix of at most 2 × max_pairs rows (so it makes no copy of its
    own), the early-stop rows are capped the same way, and a member still learns from its subset."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    seen, fit = [], HistGradientBoostingClassifier.fit

    def spy(self, X, y, **kw):
        seen.append((X.shape, X.dtype, X.flags.c_contiguous, kw["X_val"].shape if "X_val" in kw else None))
        return fit(self, X, y, **kw)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", spy)
    train, stop, test = _task(2000, 6000, 2), _task(500, 1500, 4), _task(1000, 3000, 3)
    capped = make_head(GBDTConfig(max_iter=100, max_pairs=1200), seeds=(0, 1)).fit(train, stop=stop)
    assert seen == [((2400, 8), np.float64, True, (600, 8))] * 2  # early-stop pairs: max_pairs // 4
    for s in capped.score(test.X):
        assert _accuracy(s, test) > 0.75
    assert not np.array_equal(*capped.score(test.X))  # each member draws its own subset
    # a cap at or above the pair count is no cap: the same trees as max_pairs=0 (all pairs)
    X = test.X[:300]
    np.testing.assert_array_equal(make_head(GBDTConfig(max_iter=20, max_pairs=len(train)), seeds=(0,)).fit(train).score(X),
                                  make_head(GBDTConfig(max_iter=20, max_pairs=0), seeds=(0,)).fit(train).score(X))


def test_a_negative_max_pairs_is_refused_with_its_meaning():
    with pytest.raises(Exception, match=r"max_pairs must be >= 0 \(0 = all pairs\)"):
        GBDTConfig(max_pairs=-1).validate()
