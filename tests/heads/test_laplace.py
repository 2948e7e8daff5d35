"""The `laplace` head: its MAP weights are scikit-learn's L2 logistic regression, its posterior std is
√(xᵀH⁻¹x) with H the posterior precision, and its bounds hold on the built-in world's test pairs."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from rmsearch.errors import ConfigError
from rmsearch.heads import forward_std, head_config, make_head


def test_map_weights_are_sklearns_l2_logistic_regression(small_task):
    lam = 2.5
    head = make_head(head_config("laplace", lam=lam, normalize=False), seeds=(0,)).fit(small_task.train)
    t = small_task.train
    Z = np.asarray(t.X[t.a], np.float64) - np.asarray(t.X[t.b], np.float64)
    ref = LogisticRegression(C=1 / lam, fit_intercept=False, tol=1e-12, max_iter=10000).fit(Z, t.y > 0.5)
    np.testing.assert_allclose(head.member_arrays()[0]["w0"][:, 0], ref.coef_[0], atol=1e-4)


def test_map_weights_with_normalized_inputs(small_task):
    """With `normalize` the same holds for the differences of standardized rows."""
    head = make_head(head_config("laplace", lam=0.5), seeds=(0,)).fit(small_task.train)
    arrays, t = head.member_arrays()[0], small_task.train
    Z = (np.asarray(t.X[t.a], np.float64) - np.asarray(t.X[t.b], np.float64)) / arrays["scale"]
    ref = LogisticRegression(C=2.0, fit_intercept=False, tol=1e-12, max_iter=10000).fit(Z, t.y > 0.5)
    np.testing.assert_allclose(arrays["w0"][:, 0], ref.coef_[0], atol=1e-4)


def test_predictive_std_is_the_posterior_std(small_task):
    """std(x) = prior_scale · √(x̃ᵀ H⁻¹ x̃) with H = λI + Σ σ′(θᵀz) z zᵀ, computed here directly."""
    lam, scale = 0.7, 1.3
    head = make_head(head_config("laplace", lam=lam, prior_scale=scale), seeds=(0,)).fit(small_task.train)
    a, t = head.member_arrays()[0], small_task.train
    Z = (np.asarray(t.X[t.a], np.float64) - np.asarray(t.X[t.b], np.float64)) / a["scale"]
    theta = a["w0"][:, 0].astype(np.float64)
    p = 1 / (1 + np.exp(-Z @ theta))
    H = lam * np.eye(Z.shape[1]) + (Z * (p * (1 - p))[:, None]).T @ Z
    X = np.asarray(small_task.val.source[small_task.val.rows[:50]], np.float32)
    xt = (X.astype(np.float64) - a["mean"]) / a["scale"]
    want = scale * np.sqrt(np.einsum("ij,jk,ik->i", xt, np.linalg.inv(H), xt))
    np.testing.assert_allclose(forward_std("laplace", a, X), want, rtol=1e-4)
    np.testing.assert_allclose(head.std(X)[0], want, rtol=1e-4)
    assert forward_std("mlp", {}, X) is None


def test_bad_settings_are_refused():
    for key, value in (("lam", 0.0), ("prior_scale", -1.0)):
        with pytest.raises(ConfigError, match=f"head 'laplace': {key} must be > 0"):
            head_config("laplace", **{key: value})


def test_bounds_hold_on_the_built_in_world(default_task):
    """On the built-in world's test pools, with pairs labelled as the training pairs are (its annotator, Bradley-
    Terry quality 2), the lower and upper bounds of P(a ≻ b) from reward bounds mean ± 1.645·std err by less than
    0.05 (their calibration errors; nominal 0), and the bounds are informative: most pairs are confidently
    ordered. (On the noise-free gold-labelled pairs the head is underconfident, having learnt the annotator's
    noise, and the bounds' error there is about 0.06.)"""
    from dataclasses import replace

    from rmsearch.data import Annotator, annotate
    from rmsearch.ensembles import Aggregation, Ensemble, Member
    from rmsearch.evaluate import bound_metrics

    config = head_config("laplace", lam=1.0)
    head = make_head(config, seeds=(0,)).fit(default_task.train, stop=default_task.stop)
    ens = Ensemble([Member("laplace", config.to_dict(), 0, head.member_arrays()[0])], None, Aggregation(), 32,
                   beta=1.645)
    test = default_task.test
    pairs, _ = annotate(None, test.gold, np.arange(len(test.gold)), Annotator(quality=2.0, pairs_per_prompt=20), 7)
    split = replace(test, pairs=pairs)
    X = np.asarray(split.source[split.rows], np.float32)
    m = bound_metrics(*ens.bounds(X), split)
    assert m["lower_ce"] < 0.05 and m["upper_ce"] < 0.05, m
    assert m["confident_true"] > 0.5 and m["confident_true"] > 4 * m["confident_false"], m


def test_newton_reads_the_pair_differences_in_chunks_bit_for_bit(monkeypatch):
    """The fit reads the pairs' differences from the split CHUNK pairs at a time at each pass, never as one n × D
    float64 matrix (6.6 GB at the seed's full shapes): its MAP and precision are those of that whole matrix, bit
    for bit, and its traced memory stays well below the matrix's size."""
    import tracemalloc

    from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
    from rmsearch.heads import laplace

    monkeypatch.setattr(laplace, "CHUNK", 256)
    train = make_task(synth(SynthConfig(dim=256, train_prompts=1200, test_prompts=10)), TaskConfig()).train
    scale = np.linspace(0.5, 2.0, 256).astype(np.float32)
    Z = (np.asarray(train.X[train.a], np.float64) - np.asarray(train.X[train.b], np.float64)) / scale

    class Whole:  # the matrix in memory, read as the loop reads it
        X = Z

        def __len__(self):
            return len(Z)

        def chunks(self):
            return ((s, Z[s : s + laplace.CHUNK]) for s in range(0, len(Z), laplace.CHUNK))

        def margins(self, theta):
            return Z @ theta

    w = np.random.default_rng(3).poisson(1.0, len(train)).astype(np.float64)
    diffs = laplace.PairDiffs(train.X, train.a, train.b, scale)
    tracemalloc.start()
    theta, H = laplace.map_and_precision(diffs, train.y, 0.5, w)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    want_theta, want_H = laplace.map_and_precision(Whole(), train.y, 0.5, w)
    assert len(Z) > 8 * laplace.CHUNK and np.array_equal(theta, want_theta) and np.array_equal(H, want_H)
    assert peak < 0.25 * Z.nbytes, f"fit traced {peak / 2**20:.1f} MiB; the pair matrix is {Z.nbytes / 2**20:.1f} MiB"


def test_members_without_bootstrap_share_one_fit(small_task, monkeypatch):
    """Without bootstrap every member has the same data and objective: one Newton fit serves them all."""
    from rmsearch.heads import laplace

    calls = []
    fit = laplace.map_and_precision
    monkeypatch.setattr(laplace, "map_and_precision", lambda *a, **k: calls.append(1) or fit(*a, **k))
    for bootstrap, fits in ((False, 1), (True, 3)):
        calls.clear()
        head = make_head(head_config("laplace", bootstrap=bootstrap), seeds=(0, 1, 2)).fit(small_task.train)
        w = [a["w0"] for a in head.member_arrays()]
        assert len(calls) == fits and np.array_equal(w[0], w[2]) == (not bootstrap)
