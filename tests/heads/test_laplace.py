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
