"""What a study exports, on constructed validation scores whose answer is known by hand: each member scores one
candidate of every validation prompt 1 and the rest 0, so BoN gold at N = M (`bon_gold`) of a one-member trial
is the gold of the candidate it picks, prompt by prompt. No training: the members are records in a real head
cache, the trials real Optuna trials."""

import numpy as np
import optuna
import pytest

from rmsearch.data import TaskConfig, load_data, make_task
from rmsearch.ensembles import EnsembleConfig
from rmsearch.search import OBJECTIVES, StudyHandle, choose_export
from rmsearch.search._select import pick_and_judge
from rmsearch.search._store import MemberRecord

DATA = "synth:train_prompts=60,test_prompts=40,test_responses=12,dim=8"


@pytest.fixture(scope="module")
def task():
    data = load_data(DATA)
    return data, make_task(data, TaskConfig())


def _picks(gold: np.ndarray, ranks) -> np.ndarray:
    """One-hot validation scores picking, in prompt p, the candidate of gold rank `ranks[p]` (0 = best)."""
    order = np.argsort(-gold, axis=1, kind="stable")
    s = np.zeros_like(gold, dtype=np.float32)
    s[np.arange(len(gold)), order[np.arange(len(gold)), ranks]] = 1.0
    return s.reshape(-1)


def _handle(tmp_path, task, members: dict, trials: list, directions=("maximize",)):
    """A study whose trial i has members `trials[i][0]` (keys of `members`: (val scores, learnable numbers,
    extra non-learnable entries)) and values `trials[i][1]`."""
    data, t = task
    study = optuna.create_study(directions=list(directions))
    handle = StudyHandle("s", "memory", tmp_path, study, data, TaskConfig(), t, OBJECTIVES["bon_gold"])
    for key, (scores, n, extra) in members.items():
        arrays = {"w0": np.zeros((n - 1, 1), np.float32), "b0": np.zeros(1, np.float32),
                  "mean": np.zeros(extra, np.float32), "scale": np.ones(extra, np.float32)}
        handle.store.put(key, MemberRecord("mlp", {"kind": "mlp"}, 0, arrays, np.array([0.0, 1.0]), scores, None))
    point = EnsembleConfig.from_point({"head": "mlp", "members": 1, "aggregation": "mean",
                                       "standardize": False}).to_point()
    for keys, values in trials:
        study.add_trial(optuna.trial.create_trial(values=list(values), user_attrs={
            "members": keys, "config": point | {"members": len(keys)}}))
    return handle, handle.completed()


def test_parameters_count_weights_and_biases_not_input_statistics(tmp_path, task):
    gold = task[1].val.gold
    handle, _ = _handle(tmp_path, task, {"a": (_picks(gold, [0] * len(gold)), 10, 5000)}, [])
    assert handle.store.get("a").parameters == 10


def test_one_standard_error_rule_exports_the_cheapest_trial_validation_cannot_tell_from_the_best(tmp_path, task):
    gold = task[1].val.gold
    P = len(gold)
    best, worst = [0] * P, [gold.shape[1] - 1] * P
    half = [1 if p % 2 else 0 for p in range(P)]  # second-best in every other prompt
    members = {"leader": (_picks(gold, best), 1000, 0),      # best everywhere, 1,000 parameters
               "same": (_picks(gold, best), 500, 20000),     # the same choices: within one SE; 500 learnable
               "half": (_picks(gold, half), 100, 0),         # worse in half the prompts: outside one SE
               "bad": (_picks(gold, worst), 10, 0)}          # worst everywhere
    value = lambda key: float(np.mean(gold.reshape(-1)[members[key][0] > 0]))  # noqa: E731
    handle, done = _handle(tmp_path, task, members, [([k], [value(k)]) for k in members])
    choice = choose_export(handle, done[0], select=False)
    assert choice.name == "trial 1" and choice.source["trial"] == 1
    e = choice.info["one standard error"]
    assert e["leader"] == "trial 0" and e["difference"] == 0 and e["parameters"] == 500
    assert choice.info["parameters"] == {"leader": 1000, "export": 500}
    # without the tie, the leader itself: the cheaper trials are clearly worse
    handle, done = _handle(tmp_path / "b", task, {k: v for k, v in members.items() if k != "same"},
                           [([k], [value(k)]) for k in members if k != "same"])
    choice = choose_export(handle, done[0], select=False)
    assert choice.name == "trial 0" and "one standard error" not in choice.info


def test_the_selection_guard_judges_on_prompts_the_selection_was_not_picked_on(tmp_path, task):
    gold = task[1].val.gold
    pick, judge = pick_and_judge(task[1].val, "bon_final")
    assert not (pick & judge).any() and (pick | judge).all() and abs(int(pick.sum()) - int(judge.sum())) <= 1
    last = gold.shape[1] - 1
    # "lucky" is best on the pick half and worst on the judge half; the best trial is second-best everywhere
    members = {"second": (_picks(gold, [1] * len(gold)), 100, 0),
               "lucky": (_picks(gold, np.where(pick, 0, last)), 100, 0)}
    handle, done = _handle(tmp_path, task, members, [(["second"], [1.0]), (["lucky"], [0.0])])
    choice = choose_export(handle, done[0])
    info = choice.info
    assert choice.name == "trial 0" and choice.selection is not None
    assert [r.val_scores is members["lucky"][0] for r in choice.selection.records] == [True]
    assert info["pick half advantage"] > 0 > info["judge half advantage"] and info["selection ahead"]["high"] < 0
    assert info["overstated by"] == pytest.approx(info["pick half advantage"] - info["judge half advantage"])
    # "good" is best everywhere; the best trial averages it with the third-best pick (ties share BoN gold)
    members = {"good": (_picks(gold, [0] * len(gold)), 100, 0), "third": (_picks(gold, [2] * len(gold)), 100, 0)}
    handle, done = _handle(tmp_path / "b", task, members, [(["good", "third"], [1.0])])
    choice = choose_export(handle, done[0])
    assert choice.name == "the cross-trial selection" and choice.info["selection ahead"]["low"] > 0
    assert {id(r) for r in choice.combination.records} == {id(handle.store.get("good"))}


def test_multi_objective_studies_export_a_pareto_front_member_by_the_stated_rule(tmp_path, task):
    gold = task[1].val.gold
    P = len(gold)
    members = {"big": (_picks(gold, [0] * P), 1000, 0), "small": (_picks(gold, [0] * P), 50, 0),
               "bad": (_picks(gold, [3] * P), 2000, 0)}
    handle, done = _handle(tmp_path, task, members, [(["big"], [2.0, 1000]), (["small"], [2.0, 50]),
                                                    (["bad"], [0.5, 2000])], ("maximize", "minimize"))
    choice = choose_export(handle, done[0])
    assert choice.selection is None and "Pareto front" in choice.info["rule"]
    assert choice.info["pareto front"] == [1] and choice.name == "trial 1"
