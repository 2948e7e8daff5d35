"""Gao et al.'s best-of-N law fitted to curves: known (α, β) recovered exactly from curves the law generates
(peak on the grid, peak beyond it, monotone, falling from N = 1), noisy curves within a stated tolerance, the
peak N matching the analytic inversion, a real `bon_curve`, and bad input refused with a message."""

import json

import numpy as np
import pytest
from scipy.optimize import brentq

from rmsearch.errors import RMSearchError
from rmsearch.evaluate import GaoFit, bon_curve, gao_fit, log_grid

GRID = np.array(log_grid(500))


def d_of(n):
    n = np.asarray(n, dtype=np.float64)
    return np.sqrt(np.log(n) - (n - 1) / n)


def law(n, alpha, beta, baseline=0.0):
    d = d_of(n)
    return baseline + d * (alpha - beta * d)


def analytic_peak_n(alpha, beta):
    """The N with d(N) = α/(2β), by a root finder of its own (not the fit's bisection)."""
    target = alpha / (2 * beta)
    log_n = brentq(lambda x: np.sqrt(x - 1 + np.exp(-x)) - target, 1e-12, target**2 + 2, xtol=1e-14, rtol=1e-15)
    return float(np.exp(log_n))


@pytest.mark.parametrize("alpha, beta, baseline", [
    (1.0, 0.3, 0.7),      # peak at d ≈ 1.67, N ≈ 43: inside the grid
    (0.8, 0.25, -1.2),    # peak at d = 1.6, N ≈ 37
    (0.5, 0.05, 0.0),     # peak at d = 5, N ≈ 7e10: beyond the grid, rising on it
    (0.4, 0.0, 2.0),      # monotone: no peak
    (0.6, -0.02, 0.1),    # convex: no peak
])
def test_known_law_is_recovered(alpha, beta, baseline):
    fit = gao_fit(GRID, law(GRID, alpha, beta, baseline))
    assert isinstance(fit, GaoFit) and fit.points == len(GRID)
    assert fit.alpha == pytest.approx(alpha, abs=1e-3) and fit.beta == pytest.approx(beta, abs=1e-3)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    assert fit.baseline == pytest.approx(baseline)
    assert np.allclose(fit.predict(GRID), law(GRID, alpha, beta, baseline), atol=1e-9)
    if beta > 0:
        assert fit.peak_d == pytest.approx(alpha / (2 * beta), rel=1e-9)
        assert fit.peak_n == pytest.approx(analytic_peak_n(alpha, beta), rel=1e-6)
        assert fit.peak_gold == pytest.approx(baseline + alpha**2 / (4 * beta), rel=1e-9)
        assert json.loads(json.dumps(fit.as_dict()))["peak_n"] == pytest.approx(fit.peak_n)
    else:  # β = 0 fits as ±1e-16: a peak that far out is past any N (exp overflows to inf)
        assert not fit.peak_n < 1e12 and fit.as_dict()["peak_n"] is None
    if beta < 0:
        assert fit.peak_d == fit.peak_n == fit.peak_gold == float("inf") and fit.as_dict()["peak_gold"] is None


def test_peak_inside_the_grid_is_where_the_curve_peaks():
    fit = gao_fit(GRID, law(GRID, 1.0, 0.3))
    assert GRID[0] < fit.peak_n < GRID[-1]
    dense = np.arange(1, 501)
    assert abs(dense[np.argmax(fit.predict(dense))] - fit.peak_n) < 1  # the integer N nearest the peak
    assert gao_fit(GRID, law(GRID, 0.5, 0.05)).peak_n > GRID[-1]


def test_a_law_falling_from_n_1_peaks_at_n_1():
    fit = gao_fit(GRID, law(GRID, -0.1, 0.2, 0.5))
    assert fit.peak_d == 0 and fit.peak_n == pytest.approx(1.0) and fit.peak_gold == pytest.approx(0.5)


def test_as_dict_is_json_safe():
    fit = gao_fit([1, 2, 4], [0.0, 0.1, 0.15])
    blob = json.loads(json.dumps(fit.as_dict(), allow_nan=False))
    assert {"alpha", "beta", "r2", "peak_n", "peak_gold"} <= set(blob)
    short = gao_fit([2, 4], [0.1, 0.15], baseline=0.0)  # 2 points: no R²
    assert np.isnan(short.r2) and json.loads(json.dumps(short.as_dict(), allow_nan=False))["r2"] is None


@pytest.mark.parametrize("seed", range(5))
def test_noisy_curves_fit_within_tolerance(seed):
    """Gold noise of sd 0.01 on the 14 points with N > 1 (d up to 2.3): α and β within 0.05, R² below 1."""
    g = np.random.default_rng(seed)
    clean = law(GRID, 1.0, 0.3, 0.7)
    noisy = clean + np.r_[0.0, g.normal(0, 0.01, len(GRID) - 1)]
    fit = gao_fit(GRID, noisy)
    assert fit.alpha == pytest.approx(1.0, abs=0.05) and fit.beta == pytest.approx(0.3, abs=0.05)
    assert 0.99 < fit.r2 < 1.0
    assert fit.peak_n == pytest.approx(analytic_peak_n(1.0, 0.3), rel=0.5)


def test_the_baseline_is_the_curves_n_1_value_else_the_given_one_else_zero():
    n = GRID[1:]
    gold = law(n, 0.9, 0.2, 3.0)
    assert gao_fit(n, gold, baseline=3.0).alpha == pytest.approx(0.9, abs=1e-9)
    assert gao_fit(n, gold - 3.0).alpha == pytest.approx(0.9, abs=1e-9)  # no N = 1, no baseline: gold as a gain
    with_one = gao_fit(GRID, law(GRID, 0.9, 0.2, 3.0), baseline=-5.0)  # the curve's own N = 1 value wins
    assert with_one.baseline == pytest.approx(3.0) and with_one.alpha == pytest.approx(0.9, abs=1e-9)


def test_fit_on_a_real_bon_curve():
    g = np.random.default_rng(0)
    gold = g.standard_normal((200, 64))
    proxy = gold + g.standard_normal((200, 64))
    curve = bon_curve(proxy, gold)
    fit = gao_fit(curve["n"], curve["gold"])
    assert np.isfinite([fit.alpha, fit.beta]).all() and 0 <= fit.r2 <= 1
    assert fit.alpha > 0  # a proxy correlated with gold gains from N = 1 on


@pytest.mark.parametrize("n, gold, message", [
    ([1, 2], [0.0, 0.1], "at least 2 points with N > 1"),
    ([1, 1, 2], [0.0, 0.0, 0.1], "at least 2 points with N > 1"),
    ([1, 2, 4], [0.0, float("nan"), 0.2], "gold contains NaN or inf"),
    ([1, 2, float("inf")], [0.0, 0.1, 0.2], "n contains NaN or inf"),
    ([1, 2, 4], [0.0, 0.1], "n has 3 values but gold has 2"),
    ([0, 2, 4], [0.0, 0.1, 0.2], "every N must be >= 1"),
    ([[1, 2, 4]], [[0.0, 0.1, 0.2]], "must be 1-d"),
    (["a", "b"], [0.0, 0.1], "cannot be read as numbers"),
])
def test_bad_input_is_refused_with_a_message(n, gold, message):
    with pytest.raises(RMSearchError, match=message):
        gao_fit(n, gold)


def test_a_non_finite_baseline_is_refused():
    with pytest.raises(RMSearchError, match="baseline must be a finite number"):
        gao_fit([2, 4, 8], [0.1, 0.2, 0.25], baseline=float("nan"))
