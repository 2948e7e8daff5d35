"""Multi-fidelity trials (`--halving`): rungs of training pairs, successive halving, full-fidelity completions."""

import numpy as np
import optuna
import pytest

from rmsearch.data import TaskConfig, load_data, make_task
from rmsearch.ensembles import EnsembleConfig, fit_group
from rmsearch.heads import head_config
from rmsearch.search import LaunchOptions, Search
from rmsearch.search._fidelity import MIN_PAIRS, RUNGS, pair_share
from rmsearch.search._halving_pruner import HeadwiseHalving
from tests.search.conftest import SMALL
from tests.search.test_search import PRUNE_SPACE

HALVING_SPACE = PRUNE_SPACE.split("starts:")[0] + "starts:\n  - {mlp.lr: 3.0e-2}\n"
"""One start (trains on all pairs at once); the fixture queues eight more trials, not starts: five that learn, then
three hopeless ones (their members barely leave the random init)."""
QUEUED = (1.0e-2, 1.1e-2, 1.2e-2, 1.3e-2, 1.4e-2, 1.0e-8, 1.1e-8, 1.2e-8)


def _pairs(p) -> set:
    return set(zip(p.a.tolist(), p.b.tolist()))


def test_a_rung_trains_on_a_fixed_nested_share_of_the_pairs():
    task = make_task(load_data(SMALL), TaskConfig())
    ninth, third = pair_share(task, 1 / 9), pair_share(task, 1 / 3)
    n = len(task.train)
    assert (len(ninth.train), len(third.train)) == (max(MIN_PAIRS, round(n / 9)), round(n / 3))
    assert _pairs(ninth.train) < _pairs(third.train) < _pairs(task.train)  # nested, and a real cut
    assert _pairs(pair_share(task, 1 / 9).train) == _pairs(ninth.train)  # the same share every time
    assert ninth.stop is task.stop and ninth.val is task.val  # early stopping and validation stay whole
    assert pair_share(task, 1.0) is task
    triples = set(zip(task.train.a.tolist(), task.train.b.tolist(), task.train.y.tolist()))
    assert set(zip(ninth.train.a.tolist(), ninth.train.b.tolist(), ninth.train.y.tolist())) <= triples  # labels kept


@pytest.fixture(scope="module")
def halving(tmp_path_factory, ray_session):
    tmp = tmp_path_factory.mktemp("halving")
    space = tmp / "p.yaml"
    space.write_text(HALVING_SPACE)
    options = LaunchOptions(data=SMALL, space=str(space), trials=1 + len(QUEUED), study="s", runs=tmp / "runs",
                            progress=False, halving=True, final=False)
    search = Search(options).prepare()  # the study, with its start queued
    for lr in QUEUED:
        search.study.enqueue_trial(search.space.enqueue_params({"mlp.lr": lr}))
    return search.run()


def test_halving_sends_good_trials_up_the_rungs_and_prunes_hopeless_ones(halving):
    s = halving
    start, *trials = s.study.trials
    steps = [r.step for r in RUNGS]
    assert steps == [1, 9]
    assert start.user_attrs["start"] and start.state == optuna.trial.TrialState.COMPLETE
    assert start.intermediate_values == {}  # a start trains on all pairs at once, never judged at a rung
    assert [t.params["mlp.lr"] for t in trials] == list(QUEUED)
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    hopeless = [t for t in trials if t.params["mlp.lr"] < 1e-6]
    assert len(hopeless) == 3 and all(t.state == optuna.trial.TrialState.PRUNED for t in hopeless)
    assert all(t.user_attrs["pruned_at_rung"] == {"rung": 1, "of": 2, "share": 1 / 9} for t in hopeless)
    assert all(list(t.intermediate_values) == [1] for t in hopeless)
    best_low = max(t.intermediate_values[1] for t in trials)
    assert all(t.intermediate_values[1] < best_low for t in hopeless)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and trials[0] in complete  # the first trial is the best at every rung it reaches first
    for t in complete:
        assert list(t.intermediate_values) == steps[:-1]
    assert s.state.pruned == len(trials) - len(complete)
    assert sorted(s.state.told) == [start.number] + [t.number for t in complete]


def test_a_completed_trial_holds_full_fidelity_members_and_rung_members_are_keyed_apart(halving):
    s = halving
    t = next(t for t in s.study.trials[1:] if t.state == optuna.trial.TrialState.COMPLETE)
    config = s.handle.resolve(EnsembleConfig.from_point(t.user_attrs["config"]))
    full = s.member_keys(config)
    assert t.user_attrs["members"] == full  # what a launch without --halving trains, under the same keys
    rung1 = s.handle.member_keys(config, RUNGS[0].share)
    assert not set(rung1) & set(full) and all(k in s.store for k in rung1 + full)
    # a rung-1 member is exactly a member trained on the rung's share of the pairs
    task = make_task(load_data(SMALL), TaskConfig())
    seeds = config.member_seeds[:1]
    direct = fit_group(pair_share(task, RUNGS[0].share), head_config(config.head.kind, **{
        k: v for k, v in config.head.to_dict().items() if k != "kind"}), seeds, test=False)
    cached = s.store.get(rung1[0])
    np.testing.assert_allclose(cached.val_scores, direct.val_scores[0], rtol=1e-5, atol=1e-5)
    whole = s.store.get(full[0])
    assert not np.allclose(whole.val_scores, cached.val_scores, atol=1e-3)


def test_the_trials_command_says_at_which_rung_a_trial_was_pruned(halving):
    from rmsearch.launch._trials_cmd import trial_rows

    rows = trial_rows(halving.study, ["PRUNED"])
    assert rows and all(r["reason"].startswith("pruned at rung ") and "of the training pairs" in r["reason"]
                        for r in rows)


def test_a_start_queued_again_after_its_driver_stopped_is_still_a_start():
    from rmsearch.search._storage import queue_again

    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"x": 1.0}, user_attrs={"start": True})
    study.enqueue_trial({"x": 2.0})
    for _ in range(2):
        t = study.ask()
        t.suggest_float("x", 0.0, 3.0)
        study.tell(t, state=optuna.trial.TrialState.FAIL)
        queue_again(study, study.trials[t.number])
    again = [study.ask() for _ in range(2)]
    assert [a.user_attrs for a in again] == [{"requeued_from": 0, "start": True}, {"requeued_from": 1}]
    assert [a.suggest_float("x", 0.0, 3.0) for a in again] == [1.0, 2.0]


def _rung_trial(study, head: str, values: dict[int, float]):
    """A trial of `head` that reported `values` (step -> value) and is still at its last rung."""
    dist = optuna.distributions.CategoricalDistribution(["linear", "prototype"])
    study.add_trial(optuna.trial.create_trial(params={"head": head}, distributions={"head": dist},
                                              intermediate_values=values, state=optuna.trial.TrialState.RUNNING))
    return study.trials[-1]


def test_trials_compete_at_a_rung_only_with_trials_of_their_own_head_type():
    study = optuna.create_study(direction="maximize")
    halving = HeadwiseHalving()
    for v in (3.0, 2.9, 2.8):  # fast starters
        _rung_trial(study, "linear", {1: v})
    slow = _rung_trial(study, "prototype", {1: 1.0})
    assert not halving.prune(study, slow)  # the best prototype so far: it goes on, though below every linear head
    assert halving.prune(study, _rung_trial(study, "prototype", {1: 0.5}))  # below its own kind: pruned
    assert halving.prune(study, _rung_trial(study, "linear", {1: 2.0}))
    for v in (2.7, 2.6):  # a third of the linear heads at the rung go on: of seven or eight, the best two
        _rung_trial(study, "linear", {1: v})
    assert not halving.prune(study, _rung_trial(study, "linear", {1: 2.95}))
    assert halving.prune(study, _rung_trial(study, "linear", {1: 2.85}))
    assert not halving.prune(study, _rung_trial(study, "linear", {1: 0.0, 9: 0.0}))  # the last rung: never
    assert halving.prune(study, _rung_trial(study, "linear", {1: float("nan")}))


def test_within_one_head_type_it_decides_as_optunas_successive_halving():
    rng = np.random.default_rng(0)
    reference = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3, min_early_stopping_rate=0)
    studies = [optuna.create_study(direction="maximize", pruner=p) for p in (HeadwiseHalving(), reference)]
    decisions = {0: [], 1: []}
    for _ in range(40):
        values = rng.normal(size=len(RUNGS) - 1).tolist()  # the last rung reports nothing (its trial completes)
        for i, study in enumerate(studies):
            trial = study.ask()
            trial.suggest_categorical("head", ["linear"])
            for step, v in zip([r.step for r in RUNGS], values):
                trial.report(v, step)
                decisions[i].append(trial.should_prune())
                if decisions[i][-1]:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    break
            else:
                study.tell(trial, values[-1])
    assert decisions[0] == decisions[1]
    assert 0 < sum(decisions[0]) < len(decisions[0])  # both kinds of decision were made
