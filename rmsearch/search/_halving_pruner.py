"""`HeadwiseHalving`: the Optuna pruner of `--halving` (successive halving within each head type, `_fidelity`)."""

from __future__ import annotations

import math

import optuna

from rmsearch.search._fidelity import FULL

ETA = 3
"""Reduction factor: a third of a head type's trials at a rung go on."""


def promoted(value: float, peers: list[float], maximize: bool) -> bool:
    """ASHA's rule: `value` goes on where it is among the top 1/ETA of itself and its `peers` at the rung (at least
    the best one, so the first trial at a rung goes on)."""
    ranked = sorted([value, *peers], reverse=maximize)
    cut = ranked[max(1, len(ranked) // ETA) - 1]
    return value >= cut if maximize else value <= cut


class HeadwiseHalving(optuna.pruners.BasePruner):
    """Prunes a trial at a rung (its last reported step, below the last rung) unless its value there ranks in the
    top third of those of the trials with the same head type that reported at that step. A trial's rung values
    are its intermediate values, so pruned and completed trials keep counting at the rungs they passed."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step >= FULL.step:
            return False
        value = trial.intermediate_values[step]
        if math.isnan(value):
            return True
        head = trial.params.get("head")
        peers = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False)
                 if t.number != trial.number and step in t.intermediate_values and t.params.get("head") == head]
        return not promoted(value, [v for v in peers if not math.isnan(v)],
                            study.direction == optuna.study.StudyDirection.MAXIMIZE)
