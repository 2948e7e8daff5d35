"""Gao et al.'s over-optimization law for best-of-N, fitted to a BoN gold curve.

Gao, Schulman and Hilton (2022), "Scaling laws for reward model overoptimization", find the gold reward of
best-of-N to follow R(d) = d·(α − β·d), with d = √KL and KL = log N − (N−1)/N, R measured from the base policy
(N = 1, where d = 0). α is the initial slope in d (how fast the proxy's choices gain gold), β the
over-optimization coefficient (how fast that gain turns into a loss); with β > 0 the law peaks at d = α/(2β).

d here is Gao's formula, the KL of N draws **with replacement** from a continuous base policy
(`rmsearch.evaluate.kl_bon_iid`). rmsearch's curves (`bon_curve`) report in their `kl` key the exact KL of the
procedure they evaluate, N of M candidates drawn without replacement (`kl_bon`), which reaches log M at N = M.
The fit takes N, not the curve's `kl`, so its α and β are on Gao's scale and comparable with the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.errors import DataError


def gao_d(n) -> np.ndarray:
    """d = √(log N − (N−1)/N) (Gao's √KL of best-of-N with replacement), for N >= 1 (scalar or array)."""
    log_n = np.log(np.asarray(n, dtype=np.float64))
    return np.sqrt(np.maximum(log_n + np.expm1(-log_n), 0.0))  # log N − 1 + 1/N, precise near N = 1


def _n_of_d(d: float) -> float:
    """The N >= 1 whose `gao_d` is `d` (d >= 0), by bisection on log N. d(N)² = log N − 1 + 1/N is increasing
    in N and at log N = d² + 1 it is d² + 1/N >= d², so [0, d² + 1] brackets the root. inf for d = inf (and
    where exp overflows)."""
    if not np.isfinite(d):
        return float("inf")
    lo, hi = 0.0, d * d + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if mid + np.expm1(-mid) < d * d else (lo, mid)  # d(N)² at log N = mid
    with np.errstate(over="ignore"):
        return float(np.exp(0.5 * (lo + hi)))


@dataclass(frozen=True)
class GaoFit:
    """Least-squares fit of gold(N) = baseline + d·(α − β·d), d = `gao_d(N)` (see `gao_fit`).

    `r2` is 1 − SS_res/SS_tot over the fitted points (nan with fewer than 3 points or a flat curve); `points` is
    how many (N, gold) pairs were fitted; `baseline` is the gold at N = 1 the law is measured from (0 when the
    fit had none, see `gao_fit`).
    """

    alpha: float
    beta: float
    r2: float
    points: int
    baseline: float = 0.0

    @property
    def peak_d(self) -> float:
        """d at the law's maximum: α/(2β) when β > 0, and 0 (N = 1) when that is negative (α < 0: gold falls
        from the start); inf when β <= 0 (no peak: the law keeps rising)."""
        if self.beta > 0:
            return max(self.alpha / (2.0 * self.beta), 0.0)
        return float("inf")

    @property
    def peak_n(self) -> float:
        """The N whose d is `peak_d` (d(N) inverted numerically); inf when there is no peak. It may lie beyond
        the curve's largest N: then the law predicts gold still rising there."""
        return _n_of_d(self.peak_d)

    @property
    def peak_gold(self) -> float:
        """The law's gold at its peak, baseline + α²/(4β) for α >= 0 < β; inf when there is no peak."""
        d = self.peak_d
        return float(self.baseline + d * (self.alpha - self.beta * d)) if np.isfinite(d) else float("inf")

    def predict(self, n) -> np.ndarray:
        """The fitted gold at each N of `n` (array of N >= 1): baseline + d·(α − β·d)."""
        d = gao_d(n)
        return self.baseline + d * (self.alpha - self.beta * d)

    def as_dict(self) -> dict:
        """JSON-safe: alpha, beta, r2 (None when nan), peak_n (None when there is no peak), peak_gold (None
        likewise), baseline and points."""
        finite = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
        return {"alpha": float(self.alpha), "beta": float(self.beta), "r2": finite(self.r2),
                "peak_n": finite(self.peak_n), "peak_gold": finite(self.peak_gold),
                "baseline": float(self.baseline), "points": int(self.points)}


def _check(n, gold, baseline) -> tuple[np.ndarray, np.ndarray]:
    arrays = {}
    for name, arr in (("n", n), ("gold", gold)):
        try:
            arrays[name] = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"gao_fit: {name} cannot be read as numbers; pass a 1-d numeric sequence (a BoN "
                            f"curve's 'n' and 'gold').")
        if arrays[name].ndim != 1:
            raise DataError(f"gao_fit: {name} must be 1-d (one value per N), got shape {arrays[name].shape}.")
        if not np.isfinite(arrays[name]).all():
            raise DataError(f"gao_fit: {name} contains NaN or inf; the law is fitted to finite values only. Drop "
                            f"those points.")
    n, gold = arrays["n"], arrays["gold"]
    if n.shape != gold.shape:
        raise DataError(f"gao_fit: n has {n.size} values but gold has {gold.size}; they must match, one gold "
                        f"value per N.")
    if (n < 1).any():
        raise DataError(f"gao_fit: every N must be >= 1 (best-of-N draws at least one candidate), got "
                        f"{n[n < 1].tolist()}.")
    if (n > 1).sum() < 2:
        raise DataError(f"gao_fit: needs at least 2 points with N > 1 to fit α and β, got {int((n > 1).sum())} "
                        f"(N = {n.tolist()}). Evaluate the curve on more N, e.g. log_grid(M).")
    if baseline is not None and not np.isfinite(baseline):
        raise DataError(f"gao_fit: baseline must be a finite number (the gold at N = 1), got {baseline!r}.")
    return n, gold


def gao_fit(n, gold, baseline: float | None = None) -> GaoFit:
    """Fit Gao et al.'s best-of-N law gold(N) − gold(1) = d·(α − β·d), d = √(log N − (N−1)/N), by least squares
    (`numpy.linalg.lstsq`) on the regressors d and −d², without an intercept: the law is 0 at N = 1, where d = 0.

    n, gold: the curve's N values (>= 1) and gold values, e.g. `bon_curve(...)["n"]` and `["gold"]`; N, not the
    curve's `kl`, sets d (Gao's with-replacement KL; rmsearch's `kl` is the exact without-replacement one, see
    the module docstring). What gold is measured from: the curve's own gold at N = 1 when `n` contains 1 (the
    mean if it appears twice; this wins over `baseline`), else `baseline` when given, else 0, i.e. the law is
    fitted to gold as given (then gold must be a gain over the base policy for the fit to mean anything).

    Every point, N = 1 included, counts in `points` and in R² (1 − SS_res/SS_tot against the points' mean; nan
    with fewer than 3 points or zero variance). Raises `DataError` (an `RMSearchError`) for non-numeric or
    non-finite values, mismatched lengths, an N below 1 or fewer than 2 points with N > 1.
    """
    n, gold = _check(n, gold, baseline)
    if (n == 1).any():
        base = float(gold[n == 1].mean())
    else:
        base = 0.0 if baseline is None else float(baseline)
    d = gao_d(n)
    y = gold - base
    (alpha, beta), *_ = np.linalg.lstsq(np.column_stack([d, -d * d]), y, rcond=None)
    residual = y - d * (alpha - beta * d)
    ss_tot = float(((gold - gold.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / ss_tot if n.size >= 3 and ss_tot > 0 else float("nan")
    return GaoFit(float(alpha), float(beta), r2, int(n.size), base)
