"""Calibration of preference probabilities, and whether ensemble uncertainty flags the proxy's errors.

A reward model's scores give P(a ≻ b) = σ(s_a − s_b) (Bradley-Terry). On labelled pairs:

- **Expected calibration error (ECE)**, 10 equal-width bins of σ(s_a − s_b) over [0, 1], each pair counted in
  both orders (a, b) and (b, a): ECE = Σ_bins |Σ_pairs in bin (y − p)| / (2 · pairs). Counting both orders makes
  the value independent of which side a pair lists first, and the reliability diagram point-symmetric about
  (0.5, 0.5); it equals the top-label ECE with 5 bins of confidence max(p, 1 − p) over [0.5, 1]. A score tie
  (p = 0.5) counts as half right, as in pairwise accuracy, and adds nothing.
- **Temperature**: the T > 0 minimizing the Bradley-Terry NLL of σ((s_a − s_b) / T) on validation pairs; an
  export stores it so that `Ensemble.preference(Xa, Xb)` returns calibrated probabilities.

With gold pools: per candidate, the proxy's error is |z(proxy) − z(gold)|, both standardized over the prompt's
candidates; `uncertainty_error_spearman` is, per prompt, the Spearman correlation of the ensemble's uncertainty
(std over members of standardized scores) with that error. Positive: uncertainty is high where the proxy is wrong.
"""

from __future__ import annotations

import numpy as np

from rmsearch.errors import ConfigError
from rmsearch.evaluate._metrics import per_prompt_spearman

BINS = 10
"""Equal-width bins of σ(s_a − s_b) over [0, 1] for the ECE and the reliability diagram."""
ECE_HELP = (f"ECE: expected calibration error of P(a ≻ b) = σ(s_a − s_b), {BINS} equal-width bins over [0, 1], "
            f"each pair counted in both orders")


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def pair_margins(scores: np.ndarray, split) -> tuple[np.ndarray, np.ndarray]:
    """(s_a − s_b, y) of the split's labelled pairs, from the scores of its rows; y = 1 means a is preferred."""
    s = np.asarray(scores, np.float64)
    p = split.pairs
    return s[p.a] - s[p.b], np.asarray(p.y, np.float64)


def ece_terms(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(pairs, BINS // 2) per-pair terms: row i holds (right − confidence) of pair i in the column of its
    confidence bin, 0 elsewhere (confidence = max(p, 1 − p); right = 1, 0, or 0.5 on a tie). The ECE of any
    weighting w of the pairs is Σ_columns |w @ terms| / Σ w, which is what a bootstrap over pairs resamples."""
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    conf = np.maximum(p, 1.0 - p)
    right = np.where(p > 0.5, y, np.where(p < 0.5, 1.0 - y, 0.5))
    half = BINS // 2
    col = np.minimum(((conf - 0.5) * BINS).astype(np.int64), half - 1)
    out = np.zeros((len(p), half))
    out[np.arange(len(p)), col] = right - conf
    return out


def expected_calibration_error(p: np.ndarray, y: np.ndarray) -> float:
    """ECE of probabilities `p` that a is preferred against labels `y` (see the module docstring)."""
    if len(p) == 0:
        raise ConfigError("expected_calibration_error: no pairs; calibration needs labelled pairs.")
    return float(np.abs(ece_terms(p, y).sum(0)).sum() / len(p))


def reliability(p: np.ndarray, y: np.ndarray) -> dict:
    """The reliability diagram of `p` = σ(s_a − s_b) against labels `y`, each pair in both orders: per bin of
    [0, 1] (`BINS` equal-width), the share of the 2 · pairs it holds, the mean predicted probability and the
    observed frequency of "a preferred" (None for an empty bin); plus `ece`."""
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    both_p, both_y = np.concatenate([p, 1.0 - p]), np.concatenate([y, 1.0 - y])
    idx = np.minimum((both_p * BINS).astype(np.int64), BINS - 1)
    count = np.bincount(idx, minlength=BINS)
    sum_p = np.bincount(idx, weights=both_p, minlength=BINS)
    sum_y = np.bincount(idx, weights=both_y, minlength=BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p, observed = sum_p / count, sum_y / count
    return {
        "bins": BINS, "edges": np.linspace(0, 1, BINS + 1).round(6).tolist(), "pairs": int(len(p)),
        "share": (count / max(1, count.sum())).tolist(),
        "mean_p": [float(v) if c else None for v, c in zip(mean_p, count)],
        "observed": [float(v) if c else None for v, c in zip(observed, count)],
        "ece": expected_calibration_error(p, y) if len(p) else None,
    }


def fit_temperature(margins: np.ndarray, y: np.ndarray) -> dict:
    """The temperature T minimizing the mean NLL of σ(margin / T) against `y` on these (validation) pairs.

    Returns {"temperature", "pairs", "nll_before" (T = 1), "nll_after"}. The NLL is convex in 1/T; 1/T is
    searched on [1e-3, 1e3] (T between 0.001 and 1000), so pairs the scores separate perfectly give T = 0.001
    rather than an unbounded sharpening."""
    from scipy.optimize import minimize_scalar

    m = np.asarray(margins, np.float64) * (2.0 * np.asarray(y, np.float64) - 1.0)
    if len(m) == 0 or not np.isfinite(m).all():
        raise ConfigError("fit_temperature: needs one or more finite score margins on labelled pairs.")

    def nll(log_beta: float) -> float:
        return float(np.logaddexp(0.0, -np.exp(log_beta) * m).mean())

    best = minimize_scalar(nll, bounds=(np.log(1e-3), np.log(1e3)), method="bounded", options={"xatol": 1e-6})
    return {"temperature": float(np.exp(-best.x)), "pairs": int(len(m)), "nll_before": nll(0.0),
            "nll_after": float(best.fun)}


def proxy_error(scores: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """(prompts, M) |z(proxy) − z(gold)| per candidate, z standardized over each prompt's candidates (a flat
    row stays 0 after centring)."""
    def z(a):
        a = np.asarray(a, np.float64)
        a = a - a.mean(1, keepdims=True)
        std = a.std(1, keepdims=True)
        return np.divide(a, std, out=np.zeros_like(a), where=std > 0)

    return np.abs(z(np.asarray(scores, np.float64).reshape(gold.shape)) - z(gold))


def uncertainty_error_spearman(scores: np.ndarray, uncertainty: np.ndarray, split) -> np.ndarray:
    """Per prompt of a gold split: Spearman correlation of the ensemble's uncertainty with the proxy's error
    (`proxy_error`) over the prompt's candidates; 0 where either is constant (e.g. a one-member ensemble)."""
    if split.gold is None:
        raise ConfigError("uncertainty against proxy error needs gold rewards; this split has labelled pairs only.")
    gold = np.asarray(split.gold, np.float64)
    return per_prompt_spearman(np.asarray(uncertainty, np.float64).reshape(gold.shape), proxy_error(scores, gold))
