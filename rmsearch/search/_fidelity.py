"""Multi-fidelity trials (`--halving`): successive halving over the share of training pairs, within head types.

A trial's members first train on a ninth of the training pairs. Its ensemble's validation objective there is
reported at the rung's step, and `HeadwiseHalving` lets it go on to all of the pairs only where it ranks in the top
third of the trials *of its head type* that reached the rung (the first trials there go on where they are the best so
far: asynchronous successive halving, ASHA, as Optuna's `SuccessiveHalvingPruner` decides it). Only the last rung's
members are the trial's: the same members, under the same head-cache keys, as a launch without `--halving` trains, so
a completed trial means what it always means and its members serve later trials, baselines and the export alike.
The space's starts (its known-good points, the first trials of a study) train on all pairs at once and are never
pruned, so a search with `--halving` cannot end below them either.

Two choices come from measurement (`benchmarks/halving.py`):
- Head types are compared only with themselves. They learn at different rates: a head that learns slowly from few
  pairs (prototypes) ranks low at a ninth of them against one that learns fast (a linear head) and was pruned there
  wherever it would end, so a search over head types chose among fast starters rather than among finishers.
- One low rung, not ASHA's ladder (1/9, 1/3, all). Within a head type a search of tens of trials has a few trials per
  type, the first at each rung always goes on, and a middle rung pruned almost nothing while every trial that passed
  it paid a third of its cost again. With one rung a trial that goes on costs 1 + 1/9 of a full one.

A rung's pairs are a fixed random share of the task's training pairs (and of each cross-validation fold's).
Early-stopping pairs and the validation split stay whole, so every rung is judged on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SHARES = (1 / 9, 1.0)
"""The share of training pairs at each rung; the last is the whole task."""
MIN_PAIRS = 50
"""A rung trains on at least this many pairs (or all of them, where the task has fewer)."""


@dataclass(frozen=True)
class Rung:
    index: int
    share: float

    @property
    def step(self) -> int:
        """The step a rung's value is reported at: its share in units of the first rung's (1, 9)."""
        return round(self.share / SHARES[0])

    @property
    def last(self) -> bool:
        return self.index == len(SHARES) - 1

    def next(self) -> "Rung":
        return RUNGS[self.index + 1]

    def describe(self) -> str:
        return f"rung {self.index + 1}/{len(SHARES)} ({_share(self.share)} of the training pairs)"


RUNGS = tuple(Rung(i, s) for i, s in enumerate(SHARES))
FULL = RUNGS[-1]


def _share(share: float) -> str:
    return "all" if share >= 1 else f"1/{round(1 / share)}"


def rung_task_key(task_key: str, share: float) -> str:
    """The task key of a rung's members: the task's own at full share (so full-fidelity members are shared with
    every other launch of the study), else one naming the share."""
    return task_key if share >= 1 else f"{task_key}/pairs={share:.6f}"


def pair_share(task, share: float):
    """`task` with a fixed random `share` of its training pairs (and of each cross-validation fold's), nested across
    shares (one permutation per pair set, cut at its length × share); the whole task at share 1."""
    if share >= 1:
        return task

    def cut(pairs, salt: int):
        n = len(pairs)
        keep = min(n, max(MIN_PAIRS, int(round(n * share))))
        order = np.random.default_rng([20251, salt, n]).permutation(n)
        return pairs.subset(np.sort(order[:keep]))

    folds = tuple(replace(f, train=cut(f.train, i + 1)) for i, f in enumerate(task.folds))
    return replace(task, train=cut(task.train, 0), folds=folds)
