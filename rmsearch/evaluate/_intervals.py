"""Every metric of `evaluate_split` with a 95% bootstrap interval, and paired differences between ensembles.

The bootstrap resamples units: prompts for gold data (a prompt's candidates and its gold-labelled pairs move
together), pairs for pair data. Each metric is a function of unit sums, so one resample is a weight vector w
(how often each unit was drawn) and every metric of every ensemble is computed from w @ (per-unit table):

    mean over units   gold_final, gain, bon_auc, spearman, uncertainty_error_spearman   (per-prompt values,
                      `rmsearch.evaluate._units.unit_values` and `rmsearch.evaluate._calibration`)
    ratio of sums     pair_accuracy, pair_nll (sums over a unit's pairs / its pair count)
    mean curve        gold_peak, peak_n, drop (the peak of the resampled mean BoN curve)
    calibration       pair_ece (Σ_bins |w @ terms| / w @ pair counts, `ece_terms`)

With w = 1 for every unit these are exactly `evaluate_split`'s values. Ensembles compared on the same split use
the same resamples, so the interval of a difference is paired (as `paired_bootstrap`, whose draws these are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.evaluate._bon import log_grid
from rmsearch.evaluate._calibration import ece_terms, pair_margins, sigmoid, uncertainty_error_spearman
from rmsearch.evaluate._units import prompt_curves, unit_values

LEVEL = 0.95
DRAWS = 2000
HIGHER_IS_BETTER = {"gold_final": True, "gold_peak": True, "drop": False, "gain": True, "bon_auc": True,
                    "spearman": True, "pair_accuracy": True, "pair_nll": False, "pair_ece": False,
                    "uncertainty_error_spearman": True}
"""Which way each metric is better (peak N has no better side)."""


@dataclass(frozen=True)
class UnitTable:
    """Per-unit sums of one ensemble's scores on one split (see the module docstring)."""

    units: str
    """'prompts' or 'pairs'."""
    means: dict[str, np.ndarray]
    """metric -> (units,) values whose mean over units is the metric."""
    pair_sums: dict[str, np.ndarray]
    """pair_accuracy / pair_nll -> (units,) sums over each unit's pairs."""
    pair_count: np.ndarray
    ece: np.ndarray
    """(units, bins) summed `ece_terms` of each unit's pairs."""
    curves: np.ndarray | None = None
    """(prompts, len(ns)) per-prompt BoN gold on `ns` (gold data)."""
    ns: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.pair_count)


def unit_table(scores: np.ndarray, split, uncertainty: np.ndarray | None = None) -> UnitTable:
    """The per-unit table of aggregated `scores` (len(split),) on `split`; `uncertainty` (len(split),) adds
    `uncertainty_error_spearman` on gold splits."""
    s = np.asarray(scores, np.float64)
    correct, nll = unit_values(s, split, "pair_correct"), unit_values(s, split, "pair_nll")
    margins, y = pair_margins(s, split)
    terms = ece_terms(sigmoid(margins), y)
    if split.gold is None:  # units are the pairs themselves
        return UnitTable("pairs", {}, {"pair_accuracy": correct, "pair_nll": nll}, np.ones(len(correct)), terms)
    prompts, m = split.gold.shape
    owner = split.pairs.a // m  # pairs are within one prompt's pool; rows are laid out prompt-major

    def per_prompt(v):
        return np.bincount(owner, weights=v, minlength=prompts)

    ns = np.union1d(log_grid(m), [1, m])  # the grid `robustness_metrics` uses
    means = {"bon_auc": unit_values(s, split, "bon_auc"), "spearman": unit_values(s, split, "spearman")}
    if uncertainty is not None:
        means["uncertainty_error_spearman"] = uncertainty_error_spearman(s, uncertainty, split)
    return UnitTable("prompts", means, {"pair_accuracy": per_prompt(correct), "pair_nll": per_prompt(nll)},
                     per_prompt(np.ones(len(owner))),
                     np.stack([per_prompt(terms[:, j]) for j in range(terms.shape[1])], 1),
                     prompt_curves(s, split, ns), ns)


def _metrics(t: UnitTable, w: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric under each resample weighting, w (draws, units) -> metric -> (draws,)."""
    out = {}
    units = w.sum(1)
    if t.curves is not None:
        curve = (w @ t.curves) / units[:, None]
        peak = curve.argmax(1)  # first maximum: the smallest N reaching the peak, as robustness_metrics
        top = curve[np.arange(len(w)), peak]
        out |= {"gold_final": curve[:, -1], "gold_peak": top, "peak_n": t.ns[peak].astype(np.float64),
                "drop": top - curve[:, -1], "gain": curve[:, -1] - curve[:, 0]}
    out |= {k: (w @ v) / units for k, v in t.means.items()}
    pairs = w @ t.pair_count
    out |= {k: (w @ v) / pairs for k, v in t.pair_sums.items()}
    out["pair_ece"] = np.abs(w @ t.ece).sum(1) / pairs
    return out


def _weights(n: int, draws: int, seed: int):
    """Resample weights in chunks of 256 draws: the same index draws as `paired_bootstrap` with this seed."""
    rng = np.random.default_rng(seed)
    for start in range(0, draws, 256):
        idx = rng.integers(0, n, (min(256, draws - start), n))
        yield np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)


def intervals(tables: list[UnitTable], *, draws: int = DRAWS, level: float = LEVEL, seed: int = 0) -> dict:
    """Point values and percentile bootstrap intervals of every metric of each table, and of each table's
    difference to the first (paired: the same resampled units). All tables must be on the same units.

    Returns {"units", "n", "draws", "level", "values": [{metric: {"value", "low", "high"}}, ...],
    "differences": [None, {metric: {"diff", "low", "high"}}, ...]} (differences are table − first)."""
    n = tables[0].n
    if any(t.n != n or t.units != tables[0].units for t in tables):
        raise ValueError("intervals: the tables must hold the same units (the same split).")
    point = [{k: float(v[0]) for k, v in _metrics(t, np.ones((1, n))).items()} for t in tables]
    reps: list[dict[str, list]] = [{k: [] for k in p} for p in point]
    for w in _weights(n, draws, seed):
        for r, t in zip(reps, tables):
            for k, v in _metrics(t, w).items():
                r[k].append(v)
    reps_arr = [{k: np.concatenate(v) for k, v in r.items()} for r in reps]
    tail = (1 - level) / 2

    def ci(x):
        lo, hi = np.nanquantile(x, [tail, 1 - tail])
        return float(lo), float(hi)

    values = [{k: dict(zip(("value", "low", "high"), (p[k], *ci(r[k])))) for k in p} for p, r in zip(point, reps_arr)]
    diffs: list[dict | None] = [None]
    for p, r in zip(point[1:], reps_arr[1:]):
        keys = [k for k in p if k in point[0]]
        diffs.append({k: dict(zip(("diff", "low", "high"), (p[k] - point[0][k], *ci(r[k] - reps_arr[0][k]))))
                      for k in keys})
    return {"units": tables[0].units, "n": n, "draws": draws, "level": level, "values": values, "differences": diffs}
