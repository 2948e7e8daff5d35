"""Evaluate one aggregated score vector on a task split: BoN curve and robustness metrics where the split has
gold pools, pairwise accuracy and NLL on its labelled pairs always."""

from __future__ import annotations

import numpy as np

from rmsearch.evaluate._bon import log_grid
from rmsearch.evaluate._metrics import bon_curve, pair_metrics, robustness_metrics


def evaluate_split(scores: np.ndarray, split) -> dict:
    """`scores` (len(split),) for the split's rows -> {"metrics": {...}, "curve": {...} or None}."""
    s = np.asarray(scores, np.float64)
    p = split.pairs
    metrics = {f"pair_{k}": v for k, v in pair_metrics(s[p.a], s[p.b], p.y).items()}
    curve = None
    if split.gold is not None:
        proxy = s.reshape(split.gold.shape)
        ns = log_grid(proxy.shape[1])
        curve = bon_curve(proxy, split.gold, ns)
        metrics.update(robustness_metrics(proxy, split.gold, ns))
    return {"metrics": metrics, "curve": curve}
