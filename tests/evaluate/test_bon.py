import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from rmsearch.errors import ConfigError, DataError, RMSearchError
from rmsearch.evaluate import (
    best_of_n, bon_curve, bon_proxy, bon_weights, kl_bon, kl_bon_iid, log_grid, pair_metrics, robustness_metrics,
)


def brute_force(proxy, gold, n):
    """Enumerate every N-subset; ties among the subset's proxy maxima are broken uniformly."""
    per_prompt = []
    for s, g in zip(proxy, gold):
        values = []
        for subset in itertools.combinations(range(len(s)), n):
            best = max(s[j] for j in subset)
            values.append(np.mean([g[j] for j in subset if s[j] == best]))
        per_prompt.append(np.mean(values))
    return float(np.mean(per_prompt))


@pytest.mark.parametrize("m", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("tied", [False, True])
def test_matches_brute_force(m, tied):
    rng = np.random.default_rng(m * 10 + tied)
    p = 4
    # Integer proxies from a small range force many ties (including whole-row ties for small m).
    proxy = rng.integers(0, 3, size=(p, m)).astype(float) if tied else rng.normal(size=(p, m))
    gold = rng.normal(size=(p, m))
    ns = list(range(1, m + 1))
    got = best_of_n(proxy, gold, ns)
    want = [brute_force(proxy, gold, n) for n in ns]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_endpoints():
    rng = np.random.default_rng(0)
    proxy = rng.integers(0, 4, size=(6, 7)).astype(float)
    gold = rng.normal(size=(6, 7))
    first, last = best_of_n(proxy, gold, [1, 7])
    assert first == pytest.approx(gold.mean(), abs=1e-12)
    tie_avg_argmax = np.mean([g[s == s.max()].mean() for s, g in zip(proxy, gold)])
    assert last == pytest.approx(tie_avg_argmax, abs=1e-12)


def test_bon_proxy_is_best_of_n_on_itself():
    rng = np.random.default_rng(1)
    proxy = rng.normal(size=(3, 6))
    np.testing.assert_array_equal(bon_proxy(proxy, [1, 3, 6]), best_of_n(proxy, proxy, [1, 3, 6]))
    assert bon_proxy(proxy, [6])[0] == pytest.approx(proxy.max(axis=1).mean())


def test_weights_exact_at_m500():
    m = 500
    for n in (1, 2, 17, 250, 499, 500):
        w = bon_weights(m, [n])[0]
        for i in (0, 1, 100, m - n, min(m - n + 1, m - 1)):
            exact = Fraction(math.comb(m - 1 - i, n - 1), math.comb(m, n)) if i <= m - n else Fraction(0)
            assert w[i] == pytest.approx(float(exact), rel=1e-10, abs=1e-300)


def test_stable_at_m5000():
    m = 5000
    ns = log_grid(m, points=20) + [2500, 4999]
    w = bon_weights(m, ns)
    assert w.shape == (len(ns), m)
    assert np.isfinite(w).all() and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    rng = np.random.default_rng(2)
    proxy, gold = rng.normal(size=(3, m)), rng.normal(size=(3, m))
    out = best_of_n(proxy, gold, ns)
    assert np.isfinite(out).all()


def test_large_case_runs():
    rng = np.random.default_rng(3)
    proxy = rng.normal(size=(2000, 500)).astype(np.float32)
    gold = proxy + rng.normal(size=(2000, 500))
    ns = log_grid(500)
    out = best_of_n(proxy, gold, ns)
    assert out.shape == (len(ns),) and out.dtype == np.float64 and np.isfinite(out).all()
    assert np.all(np.diff(out) > 0)  # gold correlates with proxy here, so more selection helps


def test_kl_iid():
    assert kl_bon_iid(1) == 0.0
    assert kl_bon_iid(2) == pytest.approx(math.log(2) - 0.5)
    np.testing.assert_allclose(kl_bon_iid([1, 4, 100]), [0.0, math.log(4) - 0.75, math.log(100) - 0.99])
    with pytest.raises(ConfigError, match="N must be >= 1"):
        kl_bon_iid(0)


def kl_by_enumeration(m, n):
    """KL(BoN ‖ uniform) over the M candidates, from every N-subset of distinct proxy ranks (0 = best)."""
    counts = np.zeros(m)
    for subset in itertools.combinations(range(m), n):
        counts[min(subset)] += 1  # the best-ranked candidate of the subset is chosen
    p = counts / counts.sum()
    return sum(pi * math.log(m * pi) for pi in p if pi > 0)


@pytest.mark.parametrize("m", [1, 2, 7])
def test_kl_exact_matches_enumeration(m):
    ns = list(range(1, m + 1))
    np.testing.assert_allclose(kl_bon(m, ns), [kl_by_enumeration(m, n) for n in ns], rtol=0, atol=1e-12)


def test_kl_exact_endpoints_and_gap_to_iid():
    assert kl_bon(500, [1])[0] == pytest.approx(0.0, abs=1e-12)
    # N = M always picks the proxy's favourite: a point mass, KL = log M (the i.i.d. formula says log M − (M−1)/M)
    assert kl_bon(500, [500])[0] == pytest.approx(math.log(500), rel=1e-12)
    assert kl_bon(500, [500])[0] - kl_bon_iid(500) == pytest.approx(499 / 500, rel=1e-9)
    k = kl_bon(5000, log_grid(5000))
    assert np.isfinite(k).all() and np.all(np.diff(k) > 0)
    assert np.all(k <= math.log(5000) + 1e-9)
    with pytest.raises(ConfigError, match="every N must be in 1..7"):
        kl_bon(7, [8])


def test_log_grid():
    assert log_grid(1) == [1]
    assert log_grid(2) == [1, 2]
    g = log_grid(500)
    assert g[0] == 1 and g[-1] == 500 and g == sorted(set(g))
    assert log_grid(500, points=2) == [1, 500]
    with pytest.raises(ConfigError, match="m"):
        log_grid(0)


@pytest.mark.parametrize(
    "proxy, gold, ns, err, msg",
    [
        (np.zeros(3), np.zeros(3), [1], DataError, "proxy: has shape \\(3,\\).*must be 2-d"),
        (np.zeros((2, 3)), np.zeros((2, 4)), [1], DataError, "proxy has shape \\(2, 3\\) but gold has shape"),
        (np.zeros((2, 0)), np.zeros((2, 0)), [1], DataError, "proxy: is empty"),
        (np.zeros((2, 3)), np.array([[0, 0, 0], [0, np.nan, 0]]), [1], DataError, "gold: contains NaN.*row 1"),
        (np.zeros((2, 3)), np.zeros((2, 3)), [1, 4], ConfigError, "ns: every N must be in 1..3"),
        (np.zeros((2, 3)), np.zeros((2, 3)), [0], ConfigError, "ns: every N must be in 1..3"),
        (np.zeros((2, 3)), np.zeros((2, 3)), [1.5], ConfigError, "ns: must be integers"),
        (np.zeros((2, 3)), np.zeros((2, 3)), [], ConfigError, "ns: must be a non-empty"),
    ],
)
def test_input_errors(proxy, gold, ns, err, msg):
    with pytest.raises(err, match=msg) as info:
        best_of_n(proxy, gold, ns)
    assert isinstance(info.value, RMSearchError)


# Hand-computed case. Prompt 0: proxy ranks candidates 0 > 1 > 2, gold (1, 3, 0); M=3 weights are
# N=1 (1/3, 1/3, 1/3), N=2 (2/3, 1/3, 0), N=3 (1, 0, 0), so BoN gold is 4/3, 5/3, 1.
# Prompt 1: proxy constant, so every N gives the mean gold 1.  Average: 7/6, 4/3, 1.
PROXY = np.array([[3.0, 2.0, 1.0], [5.0, 5.0, 5.0]])
GOLD = np.array([[1.0, 3.0, 0.0], [0.0, 1.0, 2.0]])


def test_robustness_metrics_hand_computed():
    r = robustness_metrics(PROXY, GOLD)
    assert r["gold_final"] == pytest.approx(1.0)
    assert r["gold_peak"] == pytest.approx(4 / 3)
    assert r["peak_n"] == 2
    assert r["drop"] == pytest.approx(1 / 3)
    assert r["gain"] == pytest.approx(1 - 7 / 6)
    # Prompt 0: centered ranks (1, 0, -1) vs (0, 1, -1) give 1/2; prompt 1 has constant proxy and counts 0.
    assert r["spearman"] == pytest.approx(0.25)


def test_robustness_metrics_adds_endpoints():
    r = robustness_metrics(PROXY, GOLD, ns=[2])
    assert r["gold_final"] == pytest.approx(1.0) and r["gain"] == pytest.approx(-1 / 6) and r["peak_n"] == 2


def test_bon_curve():
    c = bon_curve(PROXY, GOLD)
    assert c["n"] == [1, 2, 3]
    np.testing.assert_allclose(c["gold"], [7 / 6, 4 / 3, 1.0])
    np.testing.assert_allclose(c["kl"], kl_bon(3, [1, 2, 3]))
    assert c["kl"][-1] == pytest.approx(math.log(3))  # N = M: a point mass on the proxy's favourite
    z = (PROXY - PROXY.mean()) / PROXY.std()
    assert c["proxy"][0] == pytest.approx(0.0, abs=1e-12)  # the standardized proxy has mean 0
    assert c["proxy"][-1] == pytest.approx(z.max(axis=1).mean())
    # The gold curve ignores the proxy's scale; the standardized proxy curve does too.
    c2 = bon_curve(100 * PROXY + 7, GOLD)
    np.testing.assert_allclose(c2["gold"], c["gold"])
    np.testing.assert_allclose(c2["proxy"], c["proxy"], atol=1e-12)


def test_pair_metrics_hand_computed():
    a = np.array([2.0, 1.0, 0.0, 3.0])
    b = np.array([1.0, 1.0, 1.0, 3.0])
    y = np.array([1, 0, 1, 0])
    r = pair_metrics(a, b, y)
    assert r["accuracy"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    want_nll = (math.log(1 + math.exp(-1)) + math.log(2) + math.log(1 + math.e) + math.log(2)) / 4
    assert r["nll"] == pytest.approx(want_nll)


def test_pair_metrics_stable_at_large_margins():
    r = pair_metrics([1000.0, 0.0], [0.0, 1000.0], [0, 1])
    assert r["accuracy"] == 0.0 and r["nll"] == pytest.approx(1000.0)
    assert pair_metrics([1000.0], [0.0], [1])["nll"] == pytest.approx(0.0, abs=1e-300)


def test_pair_metrics_errors():
    with pytest.raises(DataError, match="y: labels must be 0 or 1"):
        pair_metrics([1.0], [0.0], [-1])
    with pytest.raises(DataError, match="same length"):
        pair_metrics([1.0, 2.0], [0.0], [1])
    with pytest.raises(DataError, match="scores_b: contains NaN"):
        pair_metrics([1.0], [np.nan], [1])
