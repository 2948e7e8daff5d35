"""From cached member records to ensembles: aggregate their cached scores, evaluate them, build `Ensemble`s.

A trial's ensemble is its configuration's members; a cross-trial selection (`rmsearch.search._select`) is a
multiset of members of any head types. Both are a `Combination`: records (a member selected twice appears twice),
whether scores are standardized, and the aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rmsearch.ensembles import Aggregation, Ensemble, Member, standardize
from rmsearch.evaluate import evaluate_split, length_scores


@dataclass(frozen=True)
class Combination:
    records: tuple
    """Member records (`MemberRecord`), repeated where a member counts more than once."""
    aggregation: Aggregation = Aggregation()
    standardize: bool = True

    @classmethod
    def of(cls, config, records) -> "Combination":
        """A trial's ensemble: its `EnsembleConfig` and member records."""
        return cls(tuple(records), config.aggregation, config.standardize)

    def scores(self, split_name: str) -> np.ndarray:
        """Aggregated scores of every row of the 'val' or 'test' split, from the cached member scores."""
        raw = np.stack([r.val_scores if split_name == "val" else r.test_scores for r in self.records])
        z = standardize(raw, np.stack([r.stats for r in self.records])) if self.standardize else raw
        return self.aggregation(z)

    def ensemble(self, dim: int) -> Ensemble:
        """The numpy `Ensemble`: each distinct member once, with its selection count as weight."""
        keys, order, weights = {}, [], []
        for r in self.records:
            if id(r) not in keys:
                keys[id(r)] = len(order)
                order.append(r)
                weights.append(0)
            weights[keys[id(r)]] += 1
        members = [Member(r.kind, r.config, r.seed, r.arrays) for r in order]
        stats = np.stack([r.stats for r in order]) if self.standardize else None
        return Ensemble(members, stats, self.aggregation, dim, weights=weights)

    def describe(self) -> str:
        kinds: dict[str, int] = {}
        for r in self.records:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        return " + ".join(f"{n}×{k}" for k, n in kinds.items()) + f" {self.aggregation.name}"


@dataclass(frozen=True)
class LowerBound:
    """Best-of-N by a combination's lower bound: mean − β·std over its standardized members' cached scores (the
    members' spread; a `laplace` member's own posterior variance is not among the cached scores), the same members
    selecting conservatively."""

    combination: Combination
    beta: float = 1.0

    @property
    def records(self) -> tuple:
        return self.combination.records

    def scores(self, split_name: str) -> np.ndarray:
        c = self.combination
        raw = np.stack([r.val_scores if split_name == "val" else r.test_scores for r in c.records])
        z = standardize(raw, np.stack([r.stats for r in c.records])) if c.standardize else raw
        return z.mean(0) - self.beta * z.std(0)


@dataclass(frozen=True)
class LengthRule:
    """The length-only baseline as a combination of no members (`rmsearch.evaluate.length_scores`): scores a
    task's splits by response length, so reports and paired comparisons treat it like any ensemble."""

    task: object
    records: tuple = ()

    def scores(self, split_name: str) -> np.ndarray:
        return length_scores(getattr(self.task, split_name))

    def describe(self) -> str:
        return "longer answer wins"

    @classmethod
    def of(cls, task) -> "LengthRule | None":
        """The rule for `task`, or None where its splits carry no response lengths (data not made from text)."""
        return cls(task) if task.test.lengths is not None and task.val.lengths is not None else None


def evaluate_members(task, combination: Combination, splits=("val",), objective=None) -> dict:
    """Evaluate a combination on the named splits from cached scores; with `objective`, its value on each split
    is added to the metrics as 'objective'."""
    out = {}
    for name in splits:
        scores = combination.scores(name)
        split = getattr(task, name)
        ev = evaluate_split(scores, split)
        if objective is not None:
            ev["metrics"]["objective"] = float(objective(scores, split))
        out[name] = ev
    return out


def mean_history(records) -> list[dict[str, float]]:
    """Per-epoch means over members (members that stopped earlier drop out of later epochs)."""
    longest = max((len(r.history) for r in records), default=0)
    out = []
    for e in range(longest):
        rows = [r.history[e] for r in records if e < len(r.history)]
        out.append({k: float(np.mean([row[k] for row in rows if k in row])) for k in rows[0]})
    return out


def absolute_spec(spec: str) -> str:
    """A data spec workers can resolve whatever their working directory: folders made absolute."""
    if spec == "synth" or spec.startswith("synth:"):
        return spec
    path, sep, stem = spec.partition("::")
    return str(Path(path).resolve()) + sep + stem
