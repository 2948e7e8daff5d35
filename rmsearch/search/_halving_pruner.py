"""`HeadwiseHalving`: the Optuna pruner of `--halving` (successive halving within each head type, `_fidelity`)."""

from __future__ import annotations

import math

import optuna

from rmsearch.search._fidelity import FULL, promoted


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
