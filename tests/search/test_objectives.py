"""The contract every registered objective keeps: a name, a direction, a unit `unit_values` knows, a help line;
a finite value on a validation split; the gold (or label) order ranked above its reverse; refused on pair data
when it needs gold; and the registry refuses a second objective of the same name."""

import numpy as np
import pytest

from rmsearch.data import TaskConfig, load_data, make_task
from rmsearch.errors import ConfigError
from rmsearch.evaluate import unit_values
from rmsearch.search import OBJECTIVES
from rmsearch.search import Objective, register_objective
from rmsearch.search._objectives import get_objective

DATA = "synth:train_prompts=60,test_prompts=40,test_responses=12,dim=8"
UNITS = ("bon_final", "bon_auc", "spearman", "pair_correct", "pair_nll")


@pytest.fixture(scope="module")
def split():
    return make_task(load_data(DATA, seed=0), TaskConfig()).val


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_keeps_the_contract(name, split):
    objective = OBJECTIVES[name]
    assert objective.name == name and objective.direction in ("maximize", "minimize") and objective.help
    assert objective.unit in UNITS and objective.sign == (1 if objective.direction == "maximize" else -1)
    oracle = np.asarray(split.gold, np.float64).ravel()
    noise = np.random.default_rng(0).standard_normal(oracle.shape)
    values = {kind: objective(s, split) for kind, s in (("oracle", oracle), ("reverse", -oracle), ("noise", noise))}
    assert all(np.isfinite(v) for v in values.values()), values
    assert objective.sign * (values["oracle"] - values["reverse"]) > 0, values
    reduced = objective.reduce(unit_values(oracle, split, objective.unit))
    assert objective(oracle, split) == pytest.approx(reduced)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_an_objective_is_found_by_name_and_refused_where_it_needs_gold(name):
    objective = OBJECTIVES[name]
    assert get_objective(name, "gold") is objective
    if objective.needs_gold:
        with pytest.raises(ConfigError, match="needs gold rewards"):
            get_objective(name, "pairs")
    else:
        assert get_objective(name, "pairs") is objective


def test_defaults_are_registered_and_unknown_names_are_refused():
    assert get_objective(None, "gold").needs_gold and not get_objective(None, "pairs").needs_gold
    with pytest.raises(ConfigError, match="unknown objective 'nope'; choose one of"):
        get_objective("nope", "gold")


def test_the_registry_refuses_a_name_twice_and_a_bad_direction():
    with pytest.raises(ValueError, match="registered already"):
        register_objective(Objective("bon_auc", "bon_auc", np.mean, "maximize", True, "again"))
    with pytest.raises(ValueError, match="must be maximize or minimize"):
        register_objective(Objective("sideways", "bon_auc", np.mean, "up", True, "a typo"))
    assert "sideways" not in OBJECTIVES
