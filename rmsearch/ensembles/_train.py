"""Train one member group and score what evaluation needs, once: the unit of work of a search job.

A `GroupResult` holds everything later steps use, in memory: member weights, per-member standardization stats
on training rows, raw scores on every validation row (and test row, unless the caller defers it), and the
training history. Aggregation, best-of-N curves and metrics are computed from these cached scores without
touching the network again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rmsearch.data import Split, Task
from rmsearch.ensembles._aggregate import score_stats
from rmsearch.heads import HeadConfig, make_head

STATS_ROWS = 20000
"""Training rows sampled for each member's score mean/std (enough for 3 significant digits)."""


@dataclass
class GroupResult:
    kind: str
    config: dict
    seeds: tuple[int, ...]
    arrays: list[dict[str, np.ndarray]]
    stats: np.ndarray
    """(k, 2) per-member mean and std of raw scores on training rows."""
    val_scores: np.ndarray
    """(k, len(task.val)) raw scores of the validation rows."""
    test_scores: np.ndarray | None
    """(k, len(task.test)) raw scores of the test rows; None where the test split was not asked for."""
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of training and scoring."""
    fit_seconds: float = 0.0
    """The training part of `seconds`."""


def score_split(head, split: Split) -> np.ndarray:
    """Raw (k, len(split)) scores, streaming the split's rows in chunks."""
    out = np.empty((head.members, len(split)), np.float32)
    for start, block in split.chunks():
        out[:, start : start + len(block)] = head.score(block)
    return out


def training_rows(task: Task, n: int = STATS_ROWS, seed: int = 0) -> np.ndarray:
    rows = np.unique(np.concatenate([task.train.a, task.train.b]))
    if len(rows) > n:
        rows = np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))
    return np.asarray(task.train.X[rows], dtype=np.float32)


def fit_group(task: Task, config: HeadConfig, seeds: tuple[int, ...], test: bool = True,
              device: str = "cpu") -> GroupResult:
    """Train the group and score its training-row stats and validation rows, and the test rows unless `test` is
    False (a search scores test rows later, for its final top trials only), on `device` ('cpu', or 'cuda' for
    head types that train there: see `make_head`).

    With cross-validation folds (`task.folds`), the members are trained once per fold and once on all pairs: the
    weights, stats and test scores are those of the refit on all pairs, the validation scores are out of fold,
    each mapped onto the refit's score scale (a fold model's standardized score times the refit's std plus its
    mean) so that standardizing with the refit's stats gives the fold model's own standardized score."""
    start = time.perf_counter()
    head = make_head(config, seeds, device).fit(task.train, stop=task.stop)
    rows = training_rows(task)
    stats = score_stats(head.score(rows))
    val = _out_of_fold(task, config, seeds, rows, stats, device) if task.folds else None
    fit_seconds = time.perf_counter() - start
    return GroupResult(
        kind=config.kind, config=config.to_dict(), seeds=tuple(seeds), arrays=head.member_arrays(), stats=stats,
        val_scores=score_split(head, task.val) if val is None else val,
        test_scores=score_split(head, task.test) if test else None,
        history=head.history_, seconds=time.perf_counter() - start, fit_seconds=fit_seconds,
    )


def _out_of_fold(task: Task, config: HeadConfig, seeds, rows: np.ndarray, stats: np.ndarray,
                 device: str = "cpu") -> np.ndarray:
    """(k, len(task.val)) validation scores, each pair scored by the members of the fold that held it out."""
    val = task.val
    out = np.empty((len(seeds), len(val)), np.float32)
    for fold in task.folds:
        head = make_head(config, seeds, device).fit(fold.train, stop=fold.stop)
        own = score_stats(head.score(rows))
        where = np.concatenate([val.pairs.a[fold.held_out], val.pairs.b[fold.held_out]])
        raw = head.score(np.asarray(val.source[val.rows[where]], np.float32))
        z = (raw - own[:, :1]) / own[:, 1:2]
        out[:, where] = z * stats[:, 1:2] + stats[:, :1]
    return out
