"""Evaluate one aggregated score vector on a task split: BoN curve and robustness metrics where the split has
gold pools, pairwise accuracy, NLL and calibration (ECE, reliability diagram) on its labelled pairs always."""

from __future__ import annotations

import numpy as np

from rmsearch.evaluate._bon import log_grid
from rmsearch.evaluate._calibration import pair_margins, reliability, sigmoid, uncertainty_error_spearman
from rmsearch.evaluate._metrics import bon_curve, pair_metrics, robustness_metrics


def evaluate_split(scores: np.ndarray, split, uncertainty: np.ndarray | None = None) -> dict:
    """`scores` (len(split),) for the split's rows -> {"metrics": {...}, "curve": {...} or None, "reliability":
    {...}}. `pair_ece` is the expected calibration error of σ(s_a − s_b) (`rmsearch.evaluate._calibration`).
    With `uncertainty` (len(split),), the ensemble's per-row uncertainty, gold splits also get
    `uncertainty_error_spearman` (per prompt, averaged)."""
    s = np.asarray(scores, np.float64)
    p = split.pairs
    metrics = {f"pair_{k}": v for k, v in pair_metrics(s[p.a], s[p.b], p.y).items()}
    margins, y = pair_margins(s, split)
    rel = reliability(sigmoid(margins), y)
    metrics["pair_ece"] = rel["ece"]
    curve = None
    if split.gold is not None:
        proxy = s.reshape(split.gold.shape)
        ns = log_grid(proxy.shape[1])
        curve = bon_curve(proxy, split.gold, ns)
        metrics.update(robustness_metrics(proxy, split.gold, ns))
        if uncertainty is not None:
            metrics["uncertainty_error_spearman"] = float(uncertainty_error_spearman(s, uncertainty, split).mean())
    return {"metrics": metrics, "curve": curve, "reliability": rel}
