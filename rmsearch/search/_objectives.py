"""Search objectives, computed from the validation split only (the test split is for final numbers).

Each objective reduces per-unit values (`rmsearch.evaluate.unit_values`: one per validation prompt or pair) to
one number. Validation lies in two ways here, and the objectives differ in how they resist them: a few outlier
prompts can decide a plain mean at N = M (heavy-tailed gold), and a small sample ranks trials by noise. The
area under the BoN curve uses every selection pressure; the trimmed mean drops the most extreme prompts on each
side; the lower confidence bound penalizes ensembles whose gain rests on few prompts. Defaults were chosen by
measurement (`benchmarks/selection.py`, README "Choosing the objective").

Each objective is one `Objective` in the registry `OBJECTIVES` (as heads and aggregations are): its name, the
per-unit values it reads, how it reduces them and its direction. The launch's `--objective`, its help and the
study's recorded objective read them from here, so a new objective is one `register_objective(Objective(...))`
below (the contract test in `tests/search/test_objectives.py` runs over every registered one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import trim_mean

from rmsearch.errors import ConfigError
from rmsearch.evaluate import unit_values

TRIM = 0.1
"""Share of prompts dropped at each end by the trimmed objectives."""
LCB_Z = 1.645
"""One-sided 95% normal quantile of the lower-confidence-bound objectives."""


def _mean(v: np.ndarray) -> float:
    return float(np.mean(v))


def _trimmed(v: np.ndarray) -> float:
    return float(trim_mean(v, TRIM))


def _lcb(v: np.ndarray) -> float:
    return float(np.mean(v) - LCB_Z * np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float(np.mean(v))


@dataclass(frozen=True)
class Objective:
    name: str
    unit: str
    """What `unit_values` computes per validation prompt or pair."""
    reduce: object
    """Per-unit values -> the objective's value."""
    direction: str
    needs_gold: bool
    help: str

    def __call__(self, scores: np.ndarray, split) -> float:
        """The objective of aggregated `scores` on `split`."""
        return self.reduce(unit_values(scores, split, self.unit))

    @property
    def sign(self) -> int:
        """+1 when larger is better."""
        return 1 if self.direction == "maximize" else -1


OBJECTIVES: dict[str, Objective] = {}
"""name -> Objective: every objective a launch can rank on (`register_objective`)."""


def register_objective(objective: Objective) -> Objective:
    """Add an objective to the registry (its name must be new); the launch's --objective and its help see it."""
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r}: registered already; choose another name.")
    if objective.direction not in ("maximize", "minimize"):
        raise ValueError(f"objective {objective.name!r}: direction {objective.direction!r} must be maximize or "
                         f"minimize.")
    OBJECTIVES[objective.name] = objective
    return objective


register_objective(Objective("bon_gold", "bon_final", _mean, "maximize", True,
                             "mean over prompts of BoN gold at N = pool size"))
register_objective(Objective("bon_auc", "bon_auc", _mean, "maximize", True,
                             "mean over prompts of BoN gold averaged over a log-spaced N grid (area under the BoN "
                             "curve)"))
register_objective(Objective("bon_auc_trimmed", "bon_auc", _trimmed, "maximize", True,
                             f"bon_auc with the {TRIM:.0%} most extreme prompts at each end dropped (trimmed mean)"))
register_objective(Objective("bon_auc_lcb", "bon_auc", _lcb, "maximize", True,
                             "bon_auc minus 1.645 standard errors over prompts (a one-sided 95% lower confidence "
                             "bound)"))
register_objective(Objective("val_accuracy", "pair_correct", _mean, "maximize", False,
                             "pairwise accuracy on validation pairs (out of fold with cross-validation)"))
register_objective(Objective("val_nll", "pair_nll", _mean, "minimize", False,
                             "Bradley-Terry NLL on validation pairs (out of fold with cross-validation)"))
DEFAULT_GOLD = "bon_auc"
DEFAULT_PAIRS = "val_accuracy"


def get_objective(name: str | None, data_kind: str) -> Objective:
    """The objective named, or the default for the data (`DEFAULT_GOLD` with gold, else `DEFAULT_PAIRS`)."""
    if name is None:
        name = DEFAULT_GOLD if data_kind == "gold" else DEFAULT_PAIRS
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    objective = OBJECTIVES[name]
    if objective.needs_gold and data_kind != "gold":
        raise ConfigError(
            f"objective {name!r} needs gold rewards, but the data is a pair dataset without gold; use "
            f"--objective val_accuracy or val_nll."
        )
    return objective
