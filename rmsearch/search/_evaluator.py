"""A trial's members' cached validation scores → its ensemble's metrics, objective and cost.

The evaluator only computes: it reads member records from the head cache (scored on validation by their jobs),
aggregates them as the trial's configuration says and reduces them to the objective. What it finds wrong (a member
that diverged, an evaluation that raised) comes back as `TrialFailed` with the reason the trial fails with.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from rmsearch.ensembles import EnsembleConfig
from rmsearch.search._members import Combination, evaluate_members
from rmsearch.search._objectives import Objective


class TrialFailed(Exception):
    """A trial's evaluation cannot give a value; the message is the reason the trial fails with."""


@dataclass(frozen=True)
class TrialScore:
    """A complete trial's ensemble on the validation split."""

    metrics: dict
    """The validation metrics, `objective` among them."""
    curve: dict | None
    """The validation BoN curve (None for pair data)."""
    value: float
    """The objective's value."""
    cost: int
    """Learnable parameters of all members together (the second objective of a multi-objective study)."""

    def tensorboard_metrics(self, members: int) -> dict[str, float]:
        """What a trial's TensorBoard run shows under ensemble/*."""
        out = {f"ensemble/{k}": float(v) for k, v in self.metrics.items()}
        out.update({"ensemble/objective": self.value, "ensemble/members": members, "ensemble/parameters": self.cost})
        return out


class Evaluator:
    """Cached member scores of one task → objective; `timed` (a `SearchState.timed`) counts the time spent."""

    def __init__(self, task, objective: Objective, timed=None):
        self.task, self.objective = task, objective
        self.timed = timed or (lambda _: nullcontext())

    def score(self, config: EnsembleConfig, records: list) -> TrialScore:
        """The ensemble of `records` as `config` aggregates them; raises `TrialFailed` where a member's scores are
        not finite or the evaluation raises an arithmetic or value error."""
        if not all(np.isfinite(r.val_scores).all() and np.isfinite(r.stats).all() for r in records):
            raise TrialFailed("member scores are not finite (NaN/inf): a member diverged; lower its learning rate")
        with self.timed("evaluation"):
            try:  # what evaluating a trial raises fails that trial, with the reason, as a member job's error does
                ev = evaluate_members(self.task, Combination.of(config, records), objective=self.objective)["val"]
            except (ArithmeticError, ValueError) as exc:
                raise TrialFailed(f"evaluating the trial failed: {type(exc).__name__}: {exc}") from None
        m = ev["metrics"]
        return TrialScore(m, ev["curve"], float(m["objective"]), int(sum(r.parameters for r in records)))

    def partial(self, config: EnsembleConfig, records: list) -> float | None:
        """The objective of the members in so far (for pruning); None where one's scores are not finite."""
        if not all(np.isfinite(r.val_scores).all() for r in records):
            return None
        ev = evaluate_members(self.task, Combination.of(config, records), objective=self.objective)
        return float(ev["val"]["metrics"]["objective"])
