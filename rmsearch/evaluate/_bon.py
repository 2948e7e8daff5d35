"""Exact best-of-N: the expected gold reward of the proxy's favourite among N candidates drawn without
replacement, with no sampling noise.

Sorted by proxy descending, the candidate at 0-based rank i wins a uniform N-subset exactly when it is drawn
and the other N−1 come from the M−1−i candidates below it: probability C(M−1−i, N−1) / C(M, N). These weights
depend only on (M, N), so one (len(ns), M) matrix serves every prompt, and averaging over prompts commutes with
the weighted sum: the whole evaluation is one sort, one group-mean and one matrix-vector product.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from rmsearch.errors import ConfigError, DataError


def _check_scores(name: str, arr) -> np.ndarray:
    try:
        out = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name}: cannot be read as numbers; pass a float array of shape (prompts, candidates).")
    if out.ndim != 2:
        raise DataError(
            f"{name}: has shape {out.shape} ({out.ndim}-d) but must be 2-d (prompts, candidates). "
            f"Reshape it, e.g. scores.reshape(n_prompts, n_candidates)."
        )
    if out.size == 0:
        raise DataError(f"{name}: is empty (shape {out.shape}); it needs at least one prompt and one candidate.")
    if not np.isfinite(out).all():
        row = int(np.argwhere(~np.isfinite(out))[0, 0])
        raise DataError(
            f"{name}: contains NaN or inf (first in prompt row {row}). Drop or repair those rows "
            f"(numpy.isfinite finds them)."
        )
    return out


def _check_pair(proxy, gold) -> tuple[np.ndarray, np.ndarray]:
    proxy, gold = _check_scores("proxy", proxy), _check_scores("gold", gold)
    if proxy.shape != gold.shape:
        raise DataError(
            f"proxy has shape {proxy.shape} but gold has shape {gold.shape}; they must match, one score per "
            f"(prompt, candidate). Score the same candidate sets with both."
        )
    return proxy, gold


def _check_ns(ns, m: int) -> np.ndarray:
    arr = np.asarray(ns)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(f"ns: must be a non-empty 1-d sequence of integers, got {ns!r}. Use e.g. log_grid({m}).")
    if arr.dtype.kind not in "iu":
        raise ConfigError(f"ns: must be integers, got dtype {arr.dtype} ({ns!r}). Pass ints, e.g. log_grid({m}).")
    if arr.min() < 1 or arr.max() > m:
        raise ConfigError(
            f"ns: every N must be in 1..{m} (the number of candidates per prompt), got {arr.tolist()}. "
            f"Drop the values outside that range, or use log_grid({m})."
        )
    return arr.astype(np.int64)


def _log_bon_weights(m: int, ns) -> tuple[np.ndarray, np.ndarray]:
    """(log weights, valid mask), both (len(ns), m): log C(M−1−i, N−1) − log C(M, N) where rank i can win."""
    n = _check_ns(ns, m)[:, None].astype(np.float64)
    i = np.arange(m, dtype=np.float64)[None, :]
    below = m - 1 - i  # candidates ranked below i
    valid = below >= n - 1
    k = np.where(valid, below, n - 1)  # keep gammaln's argument positive where the weight is 0 anyway
    log_num = gammaln(k + 1) - gammaln(n) - gammaln(k - n + 2)
    log_den = gammaln(m + 1) - gammaln(n + 1) - gammaln(m - n + 1)
    return np.where(valid, log_num - log_den, -np.inf), valid


def bon_weights(m: int, ns) -> np.ndarray:
    """(len(ns), m) matrix: row k gives, for each proxy rank i, P(rank i is the argmax of a random ns[k]-subset).

    Computed as exp of log-binomials: C(500, 250) is ~1e149 and C(5000, 2500) overflows float64, but their
    logs are small and the ratio is what we need. Entries with i > m − N are exactly 0 (too few candidates
    below rank i to fill the subset).
    """
    log_w, valid = _log_bon_weights(m, ns)
    return np.where(valid, np.exp(log_w), 0.0)


def _tie_averaged_sorted(proxy: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Gold sorted by proxy descending, each entry replaced by the mean gold of its proxy-tie group.

    A tie group spanning ranks i..j collects the weights of all those ranks and splits them equally (a uniform
    tie-break among the tied maxima of the subset); giving every member the group's mean gold is the same sum.
    """
    p, m = proxy.shape
    order = np.argsort(-proxy, axis=1, kind="stable")
    s = np.take_along_axis(proxy, order, axis=1)
    g = np.take_along_axis(gold, order, axis=1)
    # A new group starts at each row start and wherever the sorted proxy changes; numbering groups over the
    # flattened array lets one bincount compute every row's group means at once.
    starts = np.ones((p, m), dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    group = np.cumsum(starts.ravel()) - 1
    sums = np.bincount(group, weights=g.ravel())
    counts = np.bincount(group)
    return (sums / counts)[group].reshape(p, m)


def best_of_n(proxy, gold, ns) -> np.ndarray:
    """Exact expected gold of the proxy-argmax of a uniform N-subset (without replacement), averaged over prompts.

    proxy, gold: (prompts, candidates) arrays. ns: integers in 1..candidates. Returns float64 (len(ns),).
    Proxy ties are broken uniformly at random (in expectation). Pass proxy as gold for the proxy's own curve.
    """
    proxy, gold = _check_pair(proxy, gold)
    weights = bon_weights(proxy.shape[1], ns)
    return weights @ _tie_averaged_sorted(proxy, gold).mean(axis=0)


def bon_proxy(proxy, ns) -> np.ndarray:
    """Expected proxy score of the proxy's own best-of-N choice (the curve the optimizer believes in)."""
    return best_of_n(proxy, proxy, ns)


def kl_bon(m: int, ns) -> np.ndarray:
    """Exact KL(best-of-N ‖ base) of the procedure `best_of_n` evaluates: N of M candidates drawn uniformly
    without replacement, the proxy's favourite kept. The base picks each candidate with probability 1/M and
    best-of-N picks proxy rank i with probability w_i (`bon_weights`), so KL = Σ_i w_i log(M·w_i), with w_i = 0
    terms contributing 0. It depends on (M, N) only: 0 at N = 1, log M at N = M (a point mass on the proxy's
    favourite), where the i.i.d. formula `kl_bon_iid` gives log M − (M−1)/M, about 1 nat less. (Tied proxy
    scores share their weights, which lowers the KL of the choice; the axis assumes distinct scores.)

    m: candidates per prompt; ns: integers in 1..m. Returns float64 (len(ns),).
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ConfigError(f"kl_bon: m (the number of candidates) must be an integer >= 1, got {m!r}.")
    log_w, valid = _log_bon_weights(int(m), ns)
    w = np.where(valid, np.exp(log_w), 0.0)
    terms = np.where(valid, w * (np.log(m) + np.where(valid, log_w, 0.0)), 0.0)
    return np.maximum(terms.sum(axis=1), 0.0)  # KL >= 0; rounding at N = 1 can leave -1e-16


def kl_bon_iid(n):
    """The analytic KL(best-of-N ‖ base) = log N − (N−1)/N for N **i.i.d.** draws from a continuous base policy;
    works on scalars and arrays. Not the KL of `best_of_n`, which draws without replacement: see `kl_bon`."""
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1):
        raise ConfigError(f"kl_bon_iid: N must be >= 1, got {n.tolist()}.")
    return np.log(n) - (n - 1) / n


def log_grid(m: int, points: int = 16) -> list[int]:
    """About `points` integers from 1 to m spaced on a log scale, always including 1 and m (duplicates from
    rounding at the low end are dropped, so there can be fewer)."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ConfigError(f"log_grid: m (the number of candidates) must be an integer >= 1, got {m!r}.")
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ConfigError(f"log_grid: points must be an integer >= 2, got {points!r}.")
    grid = np.unique(np.rint(np.geomspace(1, m, points)).astype(np.int64))
    return sorted({1, int(m), *(int(x) for x in grid)})
