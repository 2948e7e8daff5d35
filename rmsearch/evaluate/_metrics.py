"""Robustness metrics built on exact best-of-N curves, plus pairwise metrics on labelled pairs."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from rmsearch.errors import DataError
from rmsearch.evaluate._bon import _check_ns, _check_pair, best_of_n, kl_bon, log_grid


def bon_curve(proxy, gold, ns=None) -> dict:
    """BoN curves on an N grid (default `log_grid(M)`): keys `n`, `kl`, `gold`, `proxy` (lists). `kl` is the
    exact KL of drawing N of the M candidates without replacement (`kl_bon(M, n)`), the procedure evaluated.

    The proxy curve uses the proxy standardized over all candidates of all prompts, so heads with different
    score scales give comparable curves; standardizing is affine, so the choices (and the gold curve) are
    unchanged.
    """
    proxy, gold = _check_pair(proxy, gold)
    n = _check_ns(log_grid(proxy.shape[1]) if ns is None else ns, proxy.shape[1])
    std = proxy.std()
    z = (proxy - proxy.mean()) / (std if std > 0 else 1.0)
    return {
        "n": n.tolist(),
        "kl": kl_bon(proxy.shape[1], n).tolist(),
        "gold": best_of_n(proxy, gold, n).tolist(),
        "proxy": best_of_n(z, z, n).tolist(),
    }


def per_prompt_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of `x` with the same row of `y` (average ranks for ties), shape (P,).

    A row where x or y is constant has no defined correlation; it counts as 0 (no ranking information) rather
    than being skipped, so a mean over prompts is always defined and never rewards a proxy that is flat on hard
    prompts.
    """
    rp = rankdata(x, axis=1)
    rg = rankdata(y, axis=1)
    rp -= rp.mean(axis=1, keepdims=True)
    rg -= rg.mean(axis=1, keepdims=True)
    denom = np.sqrt((rp**2).sum(axis=1) * (rg**2).sum(axis=1))
    num = (rp * rg).sum(axis=1)
    return np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)


def _mean_spearman(proxy: np.ndarray, gold: np.ndarray) -> float:
    """Mean over prompts of the per-prompt Spearman correlation (`per_prompt_spearman`)."""
    return float(per_prompt_spearman(proxy, gold).mean())


def robustness_metrics(proxy, gold, ns=None) -> dict:
    """Over-optimization summary of one proxy against gold.

    `gold_final` is BoN gold at N=M, `gold_peak`/`peak_n` the best value on the grid (smallest N on ties),
    `drop` = peak − final (≥ 0), `gain` = final − gold at N=1, `spearman` = mean per-prompt Spearman.
    The grid (default `log_grid(M)`) always gets 1 and M added, since final and gain are defined there.
    """
    proxy, gold = _check_pair(proxy, gold)
    m = proxy.shape[1]
    grid = _check_ns(log_grid(m) if ns is None else ns, m)
    n = np.union1d(grid, [1, m])
    curve = best_of_n(proxy, gold, n)
    peak = int(np.argmax(curve))  # first maximum: the smallest N that reaches the peak
    final = float(curve[-1])
    return {
        "gold_final": final,
        "gold_peak": float(curve[peak]),
        "peak_n": int(n[peak]),
        "drop": float(curve[peak]) - final,
        "gain": final - float(curve[0]),
        "spearman": _mean_spearman(proxy, gold),
    }


def pair_metrics(scores_a, scores_b, y) -> dict:
    """Pairwise `accuracy` and Bradley-Terry `nll` on labelled pairs; y[i] = 1 means a[i] is preferred, 0 b[i].

    A score tie is a coin flip, so it counts 0.5 toward accuracy (and contributes log 2 to the nll).
    """
    arrays = {}
    for name, arr in (("scores_a", scores_a), ("scores_b", scores_b), ("y", y)):
        try:
            arrays[name] = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{name}: cannot be read as numbers; pass a 1-d numeric array (one entry per pair).")
        if arrays[name].ndim != 1 or arrays[name].size == 0:
            raise DataError(
                f"{name}: must be a non-empty 1-d array (one entry per pair), got shape {arrays[name].shape}."
            )
        if not np.isfinite(arrays[name]).all():
            raise DataError(f"{name}: contains NaN or inf; drop those pairs (numpy.isfinite finds them).")
    a, b, y = arrays["scores_a"], arrays["scores_b"], arrays["y"]
    if not a.shape == b.shape == y.shape:
        raise DataError(
            f"scores_a {a.shape}, scores_b {b.shape} and y {y.shape} must have the same length, one entry per pair."
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("y: labels must be 0 or 1 (1 means a is preferred); convert e.g. -1/+1 labels with (y > 0).")
    d = a - b
    sign = 2.0 * y - 1.0  # +1 when a is preferred
    correct = np.where(d == 0, 0.5, (sign * d > 0).astype(np.float64))
    # −log σ(sign·d) = log(1 + exp(−sign·d)), via logaddexp so large margins neither overflow nor lose precision.
    nll = np.logaddexp(0.0, -sign * d)
    return {"accuracy": float(correct.mean()), "nll": float(nll.mean())}
