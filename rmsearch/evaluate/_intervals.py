"""Every metric of `evaluate_split` with a 95% bootstrap interval, and paired differences between ensembles.

The bootstrap resamples units: prompts for gold data (a prompt's candidates and its gold-labelled pairs move
together) and for pair data whose pairs name their prompt (a prompt's pairs move together: they are not
independent), pairs for pair data without prompts. Each metric is a function of unit sums, so one resample is a
weight vector w (how often each unit was drawn) and every metric of every ensemble is computed from
w @ (per-unit table):

    mean over units   gold_final, gain, bon_auc, spearman, uncertainty_error_spearman   (per-prompt values,
                      `rmsearch.evaluate._units.unit_values` and `rmsearch.evaluate._calibration`)
    ratio of sums     pair_accuracy, pair_nll (sums over a unit's pairs / its pair count)
    mean curve        gold_peak, peak_n, drop (the peak of the resampled mean BoN curve)
    calibration       pair_ece (Σ_bins |w @ terms| / w @ pair counts, `ece_terms`)
    bounds            pair_brier, and where the entry has reward bounds lower_ce, upper_ce, confident_true,
                      confident_false, ranking_score (`rmsearch.evaluate._bounds`: sums over a unit's pairs)

With w = 1 for every unit these are exactly `evaluate_split`'s values. Ensembles compared on the same split use
the same resamples, so the interval of a difference is paired (as `paired_bootstrap`, whose draws these are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.evaluate._bon import log_grid
from rmsearch.evaluate._bounds import bound_values, pair_bound_terms
from rmsearch.evaluate._calibration import ece_terms, pair_margins, sigmoid, uncertainty_error_spearman
from rmsearch.evaluate._units import prompt_curves, unit_values

LEVEL = 0.95
DRAWS = 2000
HIGHER_IS_BETTER = {"gold_final": True, "gold_peak": True, "drop": False, "gain": True, "bon_auc": True,
                    "spearman": True, "pair_accuracy": True, "pair_nll": False, "pair_ece": False,
                    "uncertainty_error_spearman": True, "pair_brier": False, "lower_ce": False, "upper_ce": False,
                    "confident_true": True, "confident_false": False, "ranking_score": True}
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
    bounds: dict[str, np.ndarray] | None = None
    """`pair_bound_terms` summed over each unit's pairs: name -> (units,) or (units, bins)."""

    @property
    def n(self) -> int:
        return len(self.pair_count)

    def subset(self, mask: np.ndarray) -> "UnitTable":
        """The table of the units where `mask` holds (e.g. one category's prompts)."""
        return UnitTable(self.units, {k: v[mask] for k, v in self.means.items()},
                         {k: v[mask] for k, v in self.pair_sums.items()}, self.pair_count[mask], self.ece[mask],
                         None if self.curves is None else self.curves[mask], self.ns,
                         None if self.bounds is None else {k: v[mask] for k, v in self.bounds.items()})


def _bound_sums(s: np.ndarray, bounds, split) -> dict[str, np.ndarray]:
    lower, upper = bounds if bounds is not None else (None, None)
    out = {}
    for k, v in pair_bound_terms(s, lower, upper, split).items():
        out[k] = split.per_unit(v)[0] if v.ndim == 1 else \
            np.stack([split.per_unit(v[:, j])[0] for j in range(v.shape[1])], 1)
    return out


def unit_table(scores: np.ndarray, split, uncertainty: np.ndarray | None = None,
               bounds: tuple[np.ndarray, np.ndarray] | None = None) -> UnitTable:
    """The per-unit table of aggregated `scores` (len(split),) on `split`; `uncertainty` (len(split),) adds
    `uncertainty_error_spearman` on gold splits; `bounds` (lower, upper), each (len(split),), the bound metrics.
    Units are the split's prompts (`Split.units`): a gold pool's prompts, or the prompts pair data's pairs answer
    (each pair its own unit where the data names none)."""
    s = np.asarray(scores, np.float64)
    sums = _bound_sums(s, bounds, split)
    correct, nll = unit_values(s, split, "pair_correct"), unit_values(s, split, "pair_nll")
    margins, y = pair_margins(s, split)
    terms = ece_terms(sigmoid(margins), y)
    pair_sums = {"pair_accuracy": split.per_unit(correct)[0], "pair_nll": split.per_unit(nll)[0]}
    count = split.per_unit(np.ones(len(correct)))[1]
    ece = np.stack([split.per_unit(terms[:, j])[0] for j in range(terms.shape[1])], 1)
    if split.gold is None:
        return UnitTable("prompts" if split.groups is not None else "pairs", {}, pair_sums, count, ece, bounds=sums)
    ns = np.union1d(log_grid(split.gold.shape[1]), [1, split.gold.shape[1]])  # the grid `robustness_metrics` uses
    means = {"bon_auc": unit_values(s, split, "bon_auc"), "spearman": unit_values(s, split, "spearman")}
    if uncertainty is not None:
        means["uncertainty_error_spearman"] = uncertainty_error_spearman(s, uncertainty, split)
    return UnitTable("prompts", means, pair_sums, count, ece, prompt_curves(s, split, ns), ns, sums)


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
    if t.bounds is not None:
        out |= bound_values({k: w @ v for k, v in t.bounds.items()}, pairs)
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
    values, diffs = _summarize(point, reps_arr, level)
    return {"units": tables[0].units, "n": n, "draws": draws, "level": level, "values": values, "differences": diffs}


def _summarize(point: list[dict], reps: list[dict], level: float) -> tuple[list[dict], list[dict | None]]:
    """Point values with percentile intervals of each table's metrics, and each table's paired difference to the
    first (`intervals`' "values" and "differences")."""
    tail = (1 - level) / 2

    def ci(x):
        if not np.isfinite(x).any():
            return float("nan"), float("nan")
        lo, hi = np.nanquantile(x, [tail, 1 - tail])
        return float(lo), float(hi)

    values = [{k: dict(zip(("value", "low", "high"), (p[k], *ci(r[k])))) for k in p} for p, r in zip(point, reps)]
    diffs: list[dict | None] = [None]
    for p, r in zip(point[1:], reps[1:]):
        keys = [k for k in p if k in point[0]]
        diffs.append({k: dict(zip(("diff", "low", "high"), (p[k] - point[0][k], *ci(r[k] - reps[0][k]))))
                      for k in keys})
    return values, diffs


CATEGORY_METRICS = {"gold": ("gold_final", "bon_auc"), "pairs": ("pair_accuracy",)}
"""What the per-category tables report: BoN gold at N = M and its AUC on gold pools, accuracy on pairs."""
NO_CATEGORY = "(none)"


def category_intervals(tables: list[UnitTable], split, *, draws: int = DRAWS, level: float = LEVEL,
                       seed: int = 0) -> dict | None:
    """Per category of `split`'s units (its prompts), each table's `CATEGORY_METRICS` with 95% bootstrap intervals
    and paired differences to the first table, and their prompt-weighted mean over categories (each category's
    value weighted by its number of prompts, as RewardBench weights its subsets into sections). The resamples
    are `intervals`' (the same seed draws the same prompts), each category's value computed from the prompts it
    drew. None where the split has no categories.

    Returns {"metrics", "units", "rows": [{"name", "n", "values", "differences"}, ..., the weighted mean last]}."""
    if split.category is None:
        return None
    keys = CATEGORY_METRICS["gold" if split.gold is not None else "pairs"]
    codes = np.asarray(split.category)
    present = sorted(set(codes.tolist()))
    names = [split.categories[c] if 0 <= c < len(split.categories) else NO_CATEGORY for c in present]
    masks = [codes == c for c in present]
    weights = np.array([m.sum() for m in masks], np.float64)
    subsets = [[t.subset(m) for t in tables] for m in masks]

    def metric_sets(ws: list[np.ndarray]) -> list[list[dict]]:
        """[category][table] -> metric -> (draws,), and the weighted mean as one more 'category'."""
        out = [[{k: v for k, v in _metrics(t, w).items() if k in keys} for t in subs] for subs, w in zip(subsets, ws)]
        with np.errstate(invalid="ignore"):
            mean = [{k: sum(weights[c] * out[c][i][k] for c in range(len(out))) / weights.sum() for k in keys}
                    for i in range(len(tables))]
        return out + [mean]

    n = tables[0].n
    point = metric_sets([np.ones((1, int(m.sum()))) for m in masks])
    reps = [[{k: [] for k in keys} for _ in tables] for _ in range(len(masks) + 1)]
    for w in _weights(n, draws, seed):
        with np.errstate(invalid="ignore", divide="ignore"):  # a category no prompt of a resample drew: NaN
            sets = metric_sets([w[:, m] for m in masks])
        for rc, sc in zip(reps, sets):
            for rt, st in zip(rc, sc):
                for k in keys:
                    rt[k].append(st[k])
    rows = []
    weighted = f"mean over categories, weighted by {tables[0].units}"
    for c, name in enumerate(names + [weighted]):
        p = [{k: float(v[k][0]) for k in keys} for v in point[c]]
        r = [{k: np.concatenate(v[k]) for k in keys} for v in reps[c]]
        values, diffs = _summarize(p, r, level)
        rows.append({"name": name, "n": int(weights[c]) if c < len(names) else int(weights.sum()),
                     "values": values, "differences": diffs})
    return {"metrics": list(keys), "units": tables[0].units, "rows": rows}
