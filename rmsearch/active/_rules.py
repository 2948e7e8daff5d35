"""Selection rules: which unlabelled candidate pairs to send to annotators next.

A rule is one `SelectionRule` object in the registry `RULES` (a tiny protocol, as Optuna's samplers are): a name,
a one-line description, whether it needs the members' scores, and `select(pool, k, rng)` returning k distinct
indices of unlabelled pairs of the `Candidates` pool. A new rule is one class and one `register_rule` call below.

Every rule treats a pair and its reverse alike: a label of (b, a) says what a label of (a, b) says.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from rmsearch.errors import DataError


@dataclass(frozen=True)
class Candidates:
    """Candidate pairs (a[i], b[i]) over the rows of `features`, which of them are labelled, and the members'
    scores of the rows where a model has been trained."""

    features: np.ndarray
    """(rows, d) what a rule measures pairs in: the features the reward head's last layer sees (for a linear head,
    the embeddings it reads, standardized as it standardizes them)."""
    a: np.ndarray
    b: np.ndarray
    labelled: np.ndarray
    """(pairs,) bool: pairs already labelled (never chosen again; dopt and coreset start from them)."""
    scores: np.ndarray | None = None
    """(members, rows) raw member scores in the head's logit units (s(a) − s(b) is the Bradley-Terry logit), or
    None before any model."""

    @property
    def unlabelled(self) -> np.ndarray:
        return np.flatnonzero(~self.labelled)

    def pair_features(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(len(idx), d) float64 φ(a) − φ(b) of pairs `idx` (all pairs where None)."""
        a, b = (self.a, self.b) if idx is None else (self.a[idx], self.b[idx])
        z = np.asarray(self.features[a], np.float64) - np.asarray(self.features[b], np.float64)
        if not np.isfinite(z).all():
            raise DataError("features: contain NaN or inf in rows of the candidate pairs; drop or fix those rows "
                            "(numpy.isfinite finds them).")
        return z

    def margins(self) -> np.ndarray:
        """(members, pairs) each member's predicted margin s(a) − s(b)."""
        s = np.asarray(self.scores, np.float64)
        return s[:, self.a] - s[:, self.b]


class SelectionRule(ABC):
    """One way of choosing pairs: an entry of the registry `RULES`."""

    name: str = ""
    description: str = ""
    """One line: what the rule prefers."""
    min_members: int = 0
    """Members whose scores the rule needs (0: none; it uses scores where given)."""

    @abstractmethod
    def select(self, pool: Candidates, k: int, rng: np.random.Generator) -> np.ndarray:
        """k distinct indices of unlabelled pairs of `pool` (1 <= k <= len(pool.unlabelled)), in choice order."""


class RandomRule(SelectionRule):
    name = "random"
    description = "uniformly at random among the unlabelled pairs (the baseline every rule is measured against)"

    def select(self, pool, k, rng):
        return rng.choice(pool.unlabelled, size=k, replace=False)


class Disagreement(SelectionRule):
    name = "disagreement"
    description = "the largest spread (std) over ensemble members of the predicted margin s(a) − s(b)"
    min_members = 2

    def select(self, pool, k, rng):
        free = pool.unlabelled
        spread = pool.margins()[:, free].std(0)
        return free[np.argsort(-spread, kind="stable")[:k]]


@dataclass(frozen=True)
class DOptimal(SelectionRule):
    """Greedy D-optimal design on the Bradley-Terry Fisher information. A pair with feature z = φ(a) − φ(b) and
    predicted preference p = σ(mean margin) adds p(1 − p)·z zᵀ to the information matrix; each pick is the pair
    whose addition raises log det the most, log(1 + p(1 − p)·zᵀA⁻¹z), and A⁻¹ is updated by Sherman–Morrison.
    A starts as `ridge`·I plus the labelled pairs' information. Without scores every p is ½.
    Cost: O(n·d²) once, then O(n·d + d²) per pick, for n unlabelled pairs of d features."""

    ridge: float = 1e-3
    """Added to the information matrix's diagonal, so A is invertible before d independent pairs are labelled."""
    name = "dopt"
    description = "greedy D-optimal design: the most Fisher information p(1−p)·zᵀA⁻¹z, A updated pick by pick"

    def select(self, pool, k, rng):
        z = pool.pair_features()
        if pool.scores is None:
            weight = np.full(len(z), 0.25)
        else:
            p = 1.0 / (1.0 + np.exp(-pool.margins().mean(0)))
            weight = p * (1.0 - p)
        u = z * np.sqrt(weight)[:, None]
        seen = u[pool.labelled]
        inverse = np.linalg.inv(self.ridge * np.eye(z.shape[1]) + seen.T @ seen)
        free = pool.unlabelled
        u = u[free]
        gain = np.einsum("nd,de,ne->n", u, inverse, u)
        picks = np.empty(k, np.int64)
        for step in range(k):
            j = int(np.argmax(gain))
            picks[step] = j
            v = inverse @ u[j]
            denominator = 1.0 + u[j] @ v
            inverse -= np.outer(v, v) / denominator
            gain -= (u @ v) ** 2 / denominator
            gain[picks[: step + 1]] = -np.inf
        return free[picks]


class Coreset(SelectionRule):
    name = "coreset"
    description = "k-center greedy on pair features φ(a) − φ(b): the pair farthest from every labelled or chosen one"

    def select(self, pool, k, rng):
        free = pool.unlabelled
        z = pool.pair_features(free)
        nearest = np.full(len(free), np.inf)
        labelled = np.flatnonzero(pool.labelled)
        for start in range(0, len(labelled), 1024):
            for c in pool.pair_features(labelled[start : start + 1024]):
                nearest = np.minimum(nearest, _distance2(z, c))
        picks = np.empty(k, np.int64)
        for step in range(k):
            j = int(rng.integers(len(free))) if step == 0 and not len(labelled) else int(np.argmax(nearest))
            picks[step] = j
            nearest = np.minimum(nearest, _distance2(z, z[j]))
            nearest[picks[: step + 1]] = -np.inf
        return free[picks]


def _distance2(z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared distance of each row of z to c or to −c, whichever is nearer (a pair's orientation is arbitrary)."""
    return np.maximum((z**2).sum(1) + c @ c - 2.0 * np.abs(z @ c), 0.0)


RULES: dict[str, SelectionRule] = {}
"""Every selection rule by name, in the order they are listed to users."""


def register_rule(rule: SelectionRule) -> SelectionRule:
    """Add a rule to the registry (its name must be new); `choose_pairs` and the `active` study see it."""
    if not rule.name or rule.name in RULES:
        raise ValueError(f"selection rule {rule.name!r}: registered already, or no name.")
    RULES[rule.name] = rule
    return rule


for _rule in (RandomRule(), Disagreement(), DOptimal(), Coreset()):
    register_rule(_rule)
