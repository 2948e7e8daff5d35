"""Search objectives, computed from the validation split only (the test split is for final numbers)."""

from __future__ import annotations

from dataclasses import dataclass

from rmsearch.errors import ConfigError


@dataclass(frozen=True)
class Objective:
    name: str
    metric: str
    """Key in `evaluate_split(...)["metrics"]` of the validation split."""
    direction: str
    needs_gold: bool
    help: str


OBJECTIVES = {
    o.name: o for o in (
        Objective("bon_gold", "gold_final", "maximize", True, "validation BoN gold at the largest N (gold data)"),
        Objective("val_accuracy", "pair_accuracy", "maximize", False, "pairwise accuracy on validation pairs"),
        Objective("val_nll", "pair_nll", "minimize", False, "Bradley-Terry NLL on validation pairs"),
    )
}


def get_objective(name: str | None, data_kind: str) -> Objective:
    """The objective named, or the default for the data (bon_gold with gold, else val_accuracy)."""
    if name is None:
        name = "bon_gold" if data_kind == "gold" else "val_accuracy"
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    objective = OBJECTIVES[name]
    if objective.needs_gold and data_kind != "gold":
        raise ConfigError(
            f"objective {name!r} needs gold rewards, but the data is a pair dataset without gold; use "
            f"--objective val_accuracy or val_nll."
        )
    return objective
