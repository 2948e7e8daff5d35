"""Ensembles across trials: greedy forward selection with replacement (Caruana et al. 2004) over every member
the study's complete trials trained, judged by the study's objective on cached validation scores only.

Members of different head types and scales combine through their standardized scores (each member's mean and
std on training rows); the ensemble is their mean, each member counted as often as it was picked.
"""

from __future__ import annotations

import numpy as np

from rmsearch.ensembles import Aggregation, greedy_select, standardize
from rmsearch.evaluate import unit_groups, unit_values
from rmsearch.search._members import Combination

SIZE = 25
"""Most picks (with repeats); selection stops after `PATIENCE` picks without a better objective."""
PATIENCE = 5
POOL = 30
"""Selection picks among the members with the best validation objectives alone, at most this many (pruning the
library this way also makes selection overfit less; Caruana et al. 2006)."""
PICK_SEED = 0
"""Seeds which validation prompts form the pick half and which the judge half (`pick_and_judge`)."""


def library(handle) -> tuple[list[str], list]:
    """Keys and records of every distinct member of the study's complete trials with finite scores."""
    keys: dict[str, None] = {}
    for t in handle.completed():
        keys.update(dict.fromkeys(t.user_attrs.get("members", [])))
    out_keys, records = [], []
    for k in keys:
        if k not in handle.store:
            continue
        r = handle.store.get(k)
        if np.isfinite(r.val_scores).all() and np.isfinite(r.stats).all():
            out_keys.append(k)
            records.append(r)
    return out_keys, records


def pick_and_judge(split, unit: str, seed: int = PICK_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over the validation units of `split` (prompts, or pairs): the pick half greedy selection
    picks on and the judge half its guard judges on. Split by prompt (a prompt's pairs stay on one side), half the
    prompts each, drawn from `seed`."""
    n = len(unit_values(np.zeros(len(split)), split, unit))
    groups = unit_groups(split, unit)
    ids = np.arange(n) if groups is None else np.asarray(groups)
    distinct = np.unique(ids)
    judged = np.random.default_rng(seed).permutation(distinct)[: len(distinct) // 2]
    judge = np.isin(ids, judged)
    return ~judge, judge


def select_across_trials(task, records: list, objective, size: int = SIZE, units: np.ndarray | None = None
                         ) -> tuple[Combination, list[float], list[int]]:
    """Greedy selection from the `POOL` best of `records` on the validation split, or on the validation units
    `units` (a boolean mask, e.g. the pick half of `pick_and_judge`) alone: (the combination, the objective after
    each pick, the picked indices into `records`)."""
    z = np.stack([standardize(r.val_scores[None], r.stats[None])[0] for r in records])
    if units is None:
        value = lambda s: objective.sign * objective(s, task.val)  # noqa: E731 - larger is better
    else:
        value = lambda s: objective.sign * objective.reduce(  # noqa: E731
            unit_values(s, task.val, objective.unit)[units])
    pool = np.argsort([-value(row) for row in z], kind="stable")[:POOL]
    chosen, trace = greedy_select(z[pool], value, size, Aggregation("mean"), patience=PATIENCE)
    chosen = [int(pool[i]) for i in chosen]
    combination = Combination(tuple(records[i] for i in chosen), Aggregation("mean"), standardize=True)
    return combination, [objective.sign * v for v in trace], chosen
