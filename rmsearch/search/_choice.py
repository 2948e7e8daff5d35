"""What a study exports, decided on the validation split (`choose_export`): the best trial or the cross-trial
selection judged on held-apart validation prompts, then the one-standard-error rule over parameters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.ensembles import EnsembleConfig
from rmsearch.evaluate import paired_bootstrap, unit_groups, unit_values
from rmsearch.search._members import Combination
from rmsearch.search._select import library, pick_and_judge, select_across_trials


def trial_combination(handle, trial) -> tuple[EnsembleConfig, Combination]:
    config = EnsembleConfig.from_point(trial.user_attrs["config"])
    return config, Combination.of(config, [handle.store.get(k) for k in trial.user_attrs["members"]])


@dataclass
class Choice:
    """What a launch exports, and why."""

    combination: Combination
    name: str
    """'trial N' or 'the cross-trial selection'."""
    source: dict
    """For the manifest: {'trial', 'point'} or {'selection': ...}."""
    selection: Combination | None
    """The cross-trial selection (exported or not); None where it is off."""
    info: dict
    """Validation facts behind the choice."""
    leader: Combination | None = None
    """What step 1 chose (the export unless a simpler trial stood within one standard error of it)."""


def _selection_source(combination: Combination, trace: list[float]) -> dict:
    return {"selection": {"method": "greedy forward selection with replacement (Caruana et al. 2004)",
                          "members": combination.describe(), "objective_trace": trace}}


def trial_parameters(handle, trial) -> int:
    """A trial's ensemble size in learnable numbers (`HeadKind.parameters`), from its cached members."""
    return sum(handle.store.get(k).parameters for k in trial.user_attrs["members"])


def combination_parameters(combination) -> int:
    """Learnable numbers of a combination's distinct members (a member picked twice is stored once)."""
    return sum(r.parameters for r in {id(r): r for r in combination.records}.values())


PARETO_RULE = ("on a multi-objective study the export is a member of the Pareto front (objective, parameters): "
               "the one with the best validation objective, or the one with the fewest parameters within one paired "
               "standard error of it")


def choose_export(handle, top, select: bool = True) -> Choice:
    """What to export of a study (`StudyHandle`) whose best trial is `top`, decided on the validation split:

    1. the leader is the best trial, or the cross-trial selection where it is ahead on prompts it was not picked
       on: greedy selection picks on half the validation prompts (`pick_and_judge`) and is judged on the other
       half, where it must have the better objective and be ahead per prompt (or pair) by a paired 95% bootstrap
       interval above 0 (on the prompts it picked on it is optimistic; `info` says by how much). `select` False
       leaves the selection out; so does a multi-objective study, whose export is a member of its Pareto front;
    2. one-standard-error rule (Hastie et al., ESL 7.10): the export is the trial (of the Pareto front, on a
       multi-objective study) with the fewest parameters whose mean per-unit difference to the leader is within
       one paired standard error of 0 — on small or noisy validation data, a simpler model that validation cannot
       tell apart from the best generalizes as well or better, and selection by a noisy maximum does not. Against
       the selection it is judged on the judge half only.
    """
    obj, task = handle.objective, handle.task
    config, best = trial_combination(handle, top)
    info = {"best trial validation": obj(best.scores("val"), task.val)}
    units = lambda c: obj.sign * unit_values(c.scores("val"), task.val, obj.unit)  # noqa: E731 - larger is better
    leader = Choice(best, f"trial {top.number}", {"trial": top.number, "point": config.to_point()}, None, info)
    leader_cost, where = trial_parameters(handle, top), None
    trials = handle.completed()
    if handle.multi_objective:
        front = {t.number for t in handle.study.best_trials}
        trials = [t for t in trials if t.number in front]
        info["rule"] = PARETO_RULE
        info["pareto front"] = sorted(front)
        select = False
    if select:
        selection, trace, judge = _judged_selection(handle, best, info)
        leader.selection = selection
        if info["selection judged ahead"]:
            leader = Choice(selection, "the cross-trial selection", _selection_source(selection, trace), selection,
                            info)
            leader_cost, where = combination_parameters(selection), judge
    lead = units(leader.combination)
    costs = {t.number: trial_parameters(handle, t) for t in trials}
    info["parameters"] = {"leader": leader_cost}
    for t in sorted(trials, key=lambda t: (costs[t.number], t.number)):
        if costs[t.number] >= leader_cost:
            break
        config, combination = trial_combination(handle, t)
        d = (units(combination) - lead)[where if where is not None else slice(None)]
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
        if d.mean() >= -se:
            info["one standard error"] = {"leader": leader.name, "simpler": f"trial {t.number}",
                                          "difference": float(d.mean()), "standard error": se,
                                          "parameters": costs[t.number], "leader parameters": leader_cost}
            info["parameters"]["export"] = costs[t.number]
            return Choice(combination, f"trial {t.number}", {"trial": t.number, "point": config.to_point()},
                          leader.selection, info, leader.combination)
    info["parameters"]["export"] = leader_cost
    leader.leader = leader.combination
    return leader


def _judged_selection(handle, best, info: dict):
    """Greedy selection picked on the pick half of the validation units and judged against the best trial's
    `best` combination on the judge half (`pick_and_judge`); what it found goes into `info`. Returns (the
    selection, its objective trace on the pick half, the judge mask)."""
    obj, task = handle.objective, handle.task
    units = lambda c: obj.sign * unit_values(c.scores("val"), task.val, obj.unit)  # noqa: E731 - larger is better
    _, records = library(handle)
    pick, judge = pick_and_judge(task.val, obj.unit)
    selection, trace, _ = select_across_trials(task, records, obj, units=pick)
    mine, theirs = units(selection), units(best)
    groups = unit_groups(task.val, obj.unit)
    ahead = paired_bootstrap(mine[judge], theirs[judge],
                             groups=None if groups is None else np.unique(groups[judge], return_inverse=True)[1])
    picked = float((mine[pick] - theirs[pick]).mean())
    better = obj.sign * obj.reduce(obj.sign * mine[judge]) > obj.sign * obj.reduce(obj.sign * theirs[judge])
    info |= {"selection validation": obj(selection.scores("val"), task.val), "selection trace": trace,
             "selection ahead": ahead, "pick half advantage": picked, "judge half advantage": ahead["diff"],
             "overstated by": picked - ahead["diff"], "pick units": int(pick.sum()), "judge units": int(judge.sum()),
             "selection judged ahead": bool(better and ahead["low"] > 0)}
    return selection, trace, judge
