"""Whether reward bounds can be trusted, on labelled pairs: the metrics RewardUQ (lasgroup/rewarduq) defines,
written as per-pair terms so that each is a function of per-unit sums (what `_intervals` resamples).

A model gives each response a reward r and bounds [l, u]. For a pair (a, b) with label y (1: a preferred):

- **Brier score** of P(a ≻ b) = σ(r_a − r_b): mean (P − y)².
- **Bounds of P(a ≻ b)**: lower σ(l_a − u_b), upper σ(u_a − l_b). Each pair counts in both orders (the order (b, a)
  has lower bound 1 − upper and label 1 − y), binned by the bound into `BINS` equal-width bins over [0, 1].
  **Lower-bound calibration error** = Σ_bins (share of the bin) · max(mean lower bound − observed rate, 0): how
  far the rate at which the preferred side wins falls below what the lower bound promises (0 when the bound
  holds in every bin, its nominal value). **Upper-bound calibration error** = Σ_bins share · max(observed rate −
  mean upper bound, 0).
- **Confident-true / confident-false rate**: the share of pairs whose two intervals do not overlap with the
  preferred side above (l_chosen > u_rejected) / below (u_chosen < l_rejected).
- **Ranking score** (β_r = `RANKING_BETA`): confident-true / ((1 − β_r)·true + β_r) − confident-false /
  ((1 − β_r)·(1 − true) + β_r), with `true` the share ordered right by r (ties count as not right, as RewardUQ
  does). It rewards confidence where the model is right and punishes it where it is wrong; 1 is best.

A soft label y counts a pair as preferred-a with weight y and preferred-b with weight 1 − y.
"""

from __future__ import annotations

import numpy as np

from rmsearch.evaluate._calibration import BINS, sigmoid

RANKING_BETA = 0.2
"""β_r of the ranking score: RewardUQ reports 0, 0.01, 0.2 and 1; 0.2 weighs both the rates and their ratios."""
BOUND_SUMS = ("pair_brier", "confident_true", "confident_false", "pair_true")
BOUNDS_HELP = (f"bounds: each response's reward ± β·std gives bounds of P(a ≻ b) from σ(l_a − u_b) to σ(u_a − l_b); "
               f"lower / upper-bound CE: over {BINS} bins of the bound (both orders of each pair), the share-weighted "
               f"shortfall of the observed rate below the lower bound / excess above the upper (0 = the bound "
               f"holds); confident true / false: the two intervals do not overlap and the order is right / wrong; "
               f"ranking score (RewardUQ, β = {RANKING_BETA}): confident-true / ((1 − β)·right + β) − "
               f"confident-false / ((1 − β)·wrong + β); Brier: mean (σ(s_a − s_b) − y)²")


def _binned(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(pairs, BINS): p − y in the column of p's bin, for the order (a, b) and the flipped order together."""
    out = np.zeros((len(p[0]), BINS))
    rows = np.arange(len(p[0]))
    for pi, yi in zip(p, y):
        col = np.minimum((pi * BINS).astype(np.int64), BINS - 1)
        np.add.at(out, (rows, col), pi - yi)
    return out


def pair_bound_terms(scores, lower, upper, split) -> dict[str, np.ndarray]:
    """Per-pair terms of the split's labelled pairs: `BOUND_SUMS` -> (pairs,), and "lower_terms", "upper_terms"
    -> (pairs, BINS) whose column sums give the binned (bound − observed) of each calibration error. Without
    bounds (`lower` None) only the Brier term."""
    p = split.pairs
    s = np.asarray(scores, np.float64)
    y = np.asarray(p.y, np.float64)
    prob = sigmoid(s[p.a] - s[p.b])
    out = {"pair_brier": (prob - y) ** 2}
    if lower is None:
        return out
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    p_lo, p_hi = sigmoid(lo[p.a] - hi[p.b]), sigmoid(hi[p.a] - lo[p.b])
    out["lower_terms"] = _binned((p_lo, 1.0 - p_hi), (y, 1.0 - y))
    out["upper_terms"] = _binned((p_hi, 1.0 - p_lo), (y, 1.0 - y))
    a_sure, b_sure = lo[p.a] > hi[p.b], lo[p.b] > hi[p.a]
    out["confident_true"] = y * a_sure + (1 - y) * b_sure
    out["confident_false"] = y * b_sure + (1 - y) * a_sure
    out["pair_true"] = y * (s[p.a] > s[p.b]) + (1 - y) * (s[p.b] > s[p.a])
    return out


def bound_values(sums: dict[str, np.ndarray], pairs: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics from (weighted) sums over pairs: `sums` holds each term summed (… ,) or (…, BINS), `pairs`
    the matching pair counts (…,)."""
    out = {"pair_brier": sums["pair_brier"] / pairs}
    if "lower_terms" not in sums:
        return out
    out["lower_ce"] = np.maximum(sums["lower_terms"], 0).sum(-1) / (2 * pairs)
    out["upper_ce"] = np.maximum(-sums["upper_terms"], 0).sum(-1) / (2 * pairs)
    ct, cf, right = (sums[k] / pairs for k in ("confident_true", "confident_false", "pair_true"))
    b = RANKING_BETA
    out |= {"confident_true": ct, "confident_false": cf,
            "ranking_score": ct / ((1 - b) * right + b) - cf / ((1 - b) * (1 - right) + b)}
    return out


def bound_metrics(scores, lower, upper, split) -> dict[str, float]:
    """The metrics of the module docstring on `split`'s labelled pairs, for rewards `scores` and bounds `lower`,
    `upper` (each (len(split),); bounds may be None: Brier only)."""
    terms = pair_bound_terms(scores, lower, upper, split)
    values = bound_values({k: v.sum(0) for k, v in terms.items()}, np.float64(len(split.pairs)))
    return {k: float(v) for k, v in values.items()}
