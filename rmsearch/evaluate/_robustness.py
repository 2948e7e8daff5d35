"""Robustness evaluation of one member group from its cached scores: a single head against every aggregation of
all members, on the validation and the test split. "single" is the typical single head: each member evaluated
alone, curves and metrics averaged over members (one member's curve alone varies a lot with its seed)."""

from __future__ import annotations

import numpy as np

from rmsearch.ensembles import AGGREGATORS, Aggregation, standardize
from rmsearch.evaluate._split import evaluate_split


def compare_aggregations(task, stats: np.ndarray, val_scores: np.ndarray | None, test_scores: np.ndarray,
                         aggregations: list[Aggregation] | None = None, standardized: bool = True) -> dict:
    """label -> {"val": evaluate_split(...), "test": ...} for 'single' and each aggregation (default: every
    registered one at its parameter's default), labelled as in tables and plots (`Aggregation.label`: 'mean',
    'uwo (λ=1)'); with one member, 'single' only. Raw member scores (k, n) on `task`'s splits are standardized
    with the members' (mean, std) rows `stats` first unless `standardized` is False. `val_scores` None: the test
    split only."""
    aggregations = aggregations or [Aggregation(name) for name in AGGREGATORS]
    splits = {"val": task.val, "test": task.test}
    scores = {k: v for k, v in {"val": val_scores, "test": test_scores}.items() if v is not None}
    zs = {k: standardize(v, stats) if standardized else v for k, v in scores.items()}
    out = {"single": {k: mean_evaluation([evaluate_split(z, splits[k]) for z in zs[k]]) for k in zs}}
    if len(stats) > 1:
        for agg in aggregations:
            out[agg.label] = {k: evaluate_split(agg(zs[k]), splits[k]) for k in zs}
    return out


def mean_evaluation(evals: list[dict]) -> dict:
    """Average metrics and curves of several evaluations (same split, same N grid)."""
    metrics = {k: float(np.mean([e["metrics"][k] for e in evals])) for k in evals[0]["metrics"]}
    curve = evals[0]["curve"]
    if curve is not None:
        curve = {**curve, **{k: np.mean([e["curve"][k] for e in evals], 0).tolist() for k in ("gold", "proxy")}}
        # peak and drop of the average curve (an average of peak positions is no N on the grid)
        gold = np.array(curve["gold"])
        peak = int(np.argmax(gold))
        metrics.update(gold_final=float(gold[-1]), gold_peak=float(gold[peak]), peak_n=int(curve["n"][peak]),
                       drop=float(gold[peak] - gold[-1]), gain=float(gold[-1] - gold[0]))
    return {"metrics": metrics, "curve": curve}
