"""One ensemble configuration trained on a task and evaluated: its single heads against every aggregation of
them, on the validation and test splits (what `rmsearch evaluate --config` reports)."""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass


@dataclass
class ConfigurationResult:
    title: str
    results: dict
    """name ('single', or an aggregation) -> {"val": ..., "test": ...} evaluations, as `write_report` takes them."""
    context: dict
    """The report's header facts: data, configuration, training pairs, split sizes, training time."""


def evaluate_configuration(config, data, task, status=None) -> ConfigurationResult:
    """Train `config` (an `EnsembleConfig`) on `task` (made from `data`) and compare single heads with each
    aggregation. `status(text)` is a context manager shown while training (default: none)."""
    from rmsearch.ensembles import fit_group
    from rmsearch.evaluate._robustness import compare_aggregations

    status = status or (lambda text: nullcontext())
    with status(f"training {config.members} × {config.head.kind} on {len(task.train)} pairs …"):
        group = fit_group(task, config.head, config.member_seeds)
    results = compare_aggregations(task, group.stats, group.val_scores, group.test_scores,
                                   standardized=config.standardize)
    context = {
        "data": f"{data.name} ({data.kind}, fingerprint {data.fingerprint})",
        "configuration": json.dumps(config.to_point()),
        "training pairs": len(task.train), "label error rate": task.label_error,
        "validation rows": len(task.val), "test rows": len(task.test),
        "training seconds": round(group.seconds, 2), "split record": task.record,
    }
    return ConfigurationResult(f"Robustness of {config.members} × {config.head.kind} on {data.name}", results, context)
