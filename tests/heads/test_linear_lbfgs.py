"""The exact linear head: solver 'lbfgs' is scikit-learn's logistic regression on pair differences."""

import numpy as np
from sklearn.linear_model import LogisticRegression

from rmsearch.heads import LinearConfig, make_head


def test_lbfgs_linear_head_is_logistic_regression_on_differences(small_task):
    train = small_task.train
    head = make_head(LinearConfig(solver="lbfgs", C=0.5, normalize=False), (3,)).fit(train)
    d = np.asarray(train.X[train.a] - train.X[train.b], np.float64)
    y = train.y > 0.5
    ref = LogisticRegression(C=0.5, fit_intercept=False, max_iter=1000).fit(np.r_[d, -d], np.r_[y, ~y])
    np.testing.assert_allclose(head.member_arrays()[0]["w0"][:, 0], ref.coef_[0], rtol=1e-3, atol=1e-5)
    X = np.asarray(small_task.test.source[:200], np.float32)
    np.testing.assert_allclose(head.score(X)[0], X @ ref.coef_[0], rtol=1e-3, atol=1e-4)


def test_lbfgs_members_draw_the_subspace_the_minibatch_path_draws(small_task):
    cfg = dict(feature_fraction=0.5, bootstrap=True, epochs=1)
    exact = make_head(LinearConfig(solver="lbfgs", **cfg), (0, 1)).fit(small_task.train)
    adam = make_head(LinearConfig(**cfg), (0, 1)).fit(small_task.train)
    for e, a in zip(exact.member_arrays(), adam.member_arrays()):
        np.testing.assert_array_equal(e["features"], a["features"])
    assert not np.array_equal(exact.member_arrays()[0]["features"], exact.member_arrays()[1]["features"])


def test_lbfgs_trains_on_the_early_stopping_pairs_too(small_task):
    """An exact fit has no early stopping; handing it `stop` pairs must not throw them away."""
    cfg = LinearConfig(solver="lbfgs", normalize=False)
    with_stop = make_head(cfg, (0,)).fit(small_task.train, stop=small_task.stop)
    joined = make_head(cfg, (0,)).fit(small_task.train.join(small_task.stop))
    alone = make_head(cfg, (0,)).fit(small_task.train)
    np.testing.assert_array_equal(with_stop.member_arrays()[0]["w0"], joined.member_arrays()[0]["w0"])
    assert not np.allclose(with_stop.member_arrays()[0]["w0"], alone.member_arrays()[0]["w0"])


def test_lbfgs_on_pairs_of_one_label_fits_both_orientations(small_task):
    """scikit-learn needs two classes: where every pair says a ≻ b the fit still is the symmetric one."""
    from dataclasses import replace

    train = replace(small_task.train, y=np.ones(len(small_task.train), small_task.train.y.dtype))
    head = make_head(LinearConfig(solver="lbfgs", normalize=False), (0,)).fit(train)
    d = np.asarray(train.X[train.a] - train.X[train.b], np.float64)
    ref = LogisticRegression(fit_intercept=False, max_iter=1000).fit(np.r_[d, -d], np.r_[np.ones(len(d)), np.zeros(len(d))])
    np.testing.assert_allclose(head.member_arrays()[0]["w0"][:, 0], ref.coef_[0], rtol=1e-3, atol=1e-5)
    assert float(head.history_[0]["train/loss"][0]) < np.log(2)  # it learned the one direction


def test_differences_of_a_memory_mapped_float16_split_are_built_block_by_block_exactly(tmp_path):
    """The matrix the exact fit takes, built a block of pairs at a time from a float16 split on disk (as a full-scale
    split is stored), over several blocks and a feature subspace: the same bits as the whole-array formula."""
    from rmsearch.data import Pairs
    from rmsearch.files import ROW_BLOCK
    from rmsearch.heads.linear import _differences

    rng = np.random.default_rng(0)
    np.save(tmp_path / "split.npy", rng.standard_normal((500, 24)).astype(np.float16))
    X = np.load(tmp_path / "split.npy", mmap_mode="r")
    n = 2 * ROW_BLOCK + 37
    pairs = Pairs(X, rng.integers(0, 500, n), rng.integers(0, 500, n), rng.integers(0, 2, n).astype(np.float32))
    scale = rng.uniform(0.5, 2.0, 24).astype(np.float32)
    feats = np.sort(rng.choice(24, 10, replace=False))
    for cols in (None, feats):
        got = _differences(pairs, scale, cols)
        A, B = np.asarray(X[pairs.a], np.float32), np.asarray(X[pairs.b], np.float32)
        want = (A - B) / scale if cols is None else (A[:, cols] - B[:, cols]) / scale[cols]
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
