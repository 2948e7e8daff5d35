"""Selection that holds up: starting points, objectives, cross-validation, greedy selection across trials, and a
study that stays one task."""

import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

from rmsearch.data import Annotator, TaskConfig, make_task
from rmsearch.data._kinds import CandidateSet, GoldData, PairData
from rmsearch.errors import ConfigError
from rmsearch.search import LaunchOptions, Search
from rmsearch.search._objectives import OBJECTIVES
from tests.search.conftest import SMALL


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True, **kw)


# ---- starting points -------------------------------------------------------------------------------------------
STARTS = """
head: {categorical: [mlp, linear]}
members: {int: [1, 3]}
aggregation: {categorical: [mean, min]}
mlp.hidden: [8]
mlp.epochs: 2
mlp.lr: {log: [1.0e-4, 1.0e-2]}
linear.epochs: 2
starts:
  - {head: linear, members: 2, aggregation: min}
  - {head: mlp, members: 3, aggregation: mean, mlp.lr: 1.0e-3}
"""


def test_a_new_study_runs_the_space_starting_points_first(tmp_path, ray_session):
    space = tmp_path / "s.yaml"
    space.write_text(STARTS)
    s = Search(LaunchOptions(data=SMALL, space=str(space), trials=4, study="st", runs=tmp_path, final=False,
                             progress=False)).run()
    trials = sorted(s.study.trials, key=lambda t: t.number)
    assert trials[0].params == {"head": "linear", "members": 2, "aggregation": "min"}
    assert trials[1].params == {"head": "mlp", "members": 3, "aggregation": "mean", "mlp.lr": 1e-3}
    assert trials[0].user_attrs["start"] and "start" not in trials[2].user_attrs
    # a relaunch of the same study does not queue them again
    s2 = Search(LaunchOptions(data=SMALL, space=str(space), trials=1, study="st", runs=tmp_path, final=False,
                              progress=False)).run()
    assert "start" not in max(s2.study.trials, key=lambda t: t.number).user_attrs


def test_builtin_default_space_starts_from_known_good_points():
    from rmsearch.ensembles import EnsembleConfig
    from rmsearch.spaces import load_space

    starts = [EnsembleConfig.from_point(p) for p in load_space("default").starts]
    assert [c.head.kind for c in starts] == ["mlp", "mlp", "linear", "gbdt"]
    assert starts[0].members == 10 and not starts[0].standardize  # the seed's recipe, at this space's largest MLP
    assert starts[1].aggregation.name == "uwo" and starts[1].head.bootstrap  # a Coste-style conservative ensemble


@pytest.mark.parametrize("start, match", [
    ("{head: svm}", "head='svm' is outside"),
    ("{members: 40}", "members=40 is outside"),
    ("{mlp.width: 3}", "'mlp.width' is not a parameter"),
    ("{head: linear, mlp.lr: 1.0e-3}", "applies only when head is 'mlp'"),
])
def test_bad_starting_points_name_the_line(start, match):
    from rmsearch.spaces._space import Space

    text = STARTS.split("starts:")[0] + f"starts:\n  - {start}\n"
    with pytest.raises(ConfigError, match=match) as err:
        Space.from_yaml_text(text, source="s.yaml")
    assert "s.yaml line 10" in str(err.value)


# ---- objectives ------------------------------------------------------------------------------------------------
def test_robust_objectives_resist_one_outlier_prompt(small_task):
    """Two rankings differing only on one prompt, where one of them finds a wild outlier: the plain mean at N = M
    prefers it, the trimmed objective does not care, and the lower bound is below the mean."""
    val = small_task.val
    P, M = val.gold.shape
    base = np.asarray(val.gold, np.float64).ravel().copy()
    gold = np.asarray(val.gold, np.float64).copy()
    gold[0, 0] = 1e3  # one candidate of prompt 0 is extreme
    split = type(val)(val.source, val.rows, val.pairs, gold)
    lucky, unlucky = base.copy(), base.copy()
    lucky[0], unlucky[0] = 1e6, -1e6  # only the lucky proxy ranks the outlier first
    plain, trimmed, lcb = OBJECTIVES["bon_gold"], OBJECTIVES["bon_auc_trimmed"], OBJECTIVES["bon_auc_lcb"]
    assert plain(lucky, split) - plain(unlucky, split) > 10
    assert trimmed(lucky, split) == pytest.approx(trimmed(unlucky, split), abs=1e-9)
    assert lcb(lucky, split) < OBJECTIVES["bon_auc"](lucky, split)


# ---- cross-validation ------------------------------------------------------------------------------------------
def test_out_of_fold_scores_do_not_see_their_labels():
    """Random labels: an MLP fits its own training pairs well above chance, but its out-of-fold validation scores,
    which are what selection ranks on, stay at chance."""
    from rmsearch.ensembles._train import fit_group
    from rmsearch.evaluate import evaluate_split
    from rmsearch.heads._configs import MLPConfig

    g = np.random.default_rng(0)
    data = PairData(chosen=g.standard_normal((400, 8)).astype(np.float32),
                    rejected=g.standard_normal((400, 8)).astype(np.float32), name="noise", fingerprint="noise")
    task = make_task(data, TaskConfig(folds=4))
    config = MLPConfig(hidden=(64,), epochs=150, patience=0, lr=3e-3)
    group = fit_group(task, config, (0,), test=False)
    oof = evaluate_split(group.val_scores[0], task.val)["metrics"]["pair_accuracy"]
    refit = make_task(data, TaskConfig(folds=0))  # same test split; score the refit on its own training pairs
    from rmsearch.heads import head_class

    head = head_class("mlp").from_arrays(config, group.arrays)
    s = head.score(task.train.X)[0]
    own = np.mean((s[task.train.a] > s[task.train.b]) == (task.train.y > 0.5))
    assert own > 0.75 and abs(oof - 0.5) < 0.08, (own, oof)
    assert refit.record["pairs"]["test"] == task.record["pairs"]["test"]


# ---- greedy selection across trials ----------------------------------------------------------------------------
def _bowl_world(seed=0) -> GoldData:
    """Gold punishes distance from the centre along two dims: no linear head can rank it, an MLP can."""
    g = np.random.default_rng(seed)

    def cs(P, K):
        x = g.standard_normal((P, K, 6)).astype(np.float32)
        return CandidateSet(x, (-(x[..., 0] ** 2) - x[..., 1] ** 2).astype(np.float32))

    return GoldData(train=cs(300, 10), test=cs(60, 50), name="bowl", fingerprint="bowl")


def test_greedy_selection_picks_the_head_type_that_fits_the_world():
    from rmsearch.ensembles._train import fit_group
    from rmsearch.heads._configs import LinearConfig, MLPConfig
    from rmsearch.search._select import select_across_trials
    from rmsearch.search._store import records_from_group

    task = make_task(_bowl_world(), TaskConfig())
    records = []
    for config in (LinearConfig(epochs=20), MLPConfig(hidden=(32,), epochs=30)):
        records += records_from_group(fit_group(task, config, (0, 1, 2), test=False))
    combination, trace, picked = select_across_trials(task, records, OBJECTIVES["bon_auc"])
    kinds = [r.kind for r in combination.records]
    assert kinds[0] == "mlp" and kinds.count("mlp") >= 0.8 * len(kinds), combination.describe()
    assert trace[-1] == max(trace)  # selection ends at its best prefix
    single = [OBJECTIVES["bon_auc"](s, task.val) for s in (r.val_scores for r in records)]
    assert trace[-1] >= max(single) - 1e-12


# ---- one study, one task ---------------------------------------------------------------------------------------
def test_cross_prompt_pairing_is_recorded_and_rebuilt(tmp_path, ray_session):
    from rmsearch.search import StudyHandle

    options = LaunchOptions(data=SMALL, trials=1, study="x", runs=tmp_path, progress=False, final=False,
                            annotator=Annotator(pairing="cross", pairs_per_prompt=3), space="coste")
    s = Search(options).run()
    K = s.data.train.responses
    assert (s.task.train.a // K != s.task.train.b // K).all()  # every training pair spans two prompts
    assert s.study.user_attrs["task"]["config"]["annotator"]["pairing"] == "cross"
    before = s.study.user_attrs
    rebuilt = StudyHandle.open("x", tmp_path)
    assert rebuilt.task_key == s.task_key and (rebuilt.task.train.b == s.task.train.b).all()
    assert rebuilt.study.user_attrs == before and len(rebuilt.study.trials) == len(s.study.trials)  # read only


def test_relaunch_on_other_data_is_refused_naming_both(tmp_path, ray_session):
    Search(LaunchOptions(data=SMALL, space="coste", trials=1, study="d", runs=tmp_path, final=False,
                         progress=False)).run()
    other = SMALL + ",seed=5"
    r = _cli("launch", "--data", other, "--space", "coste", "--trials", 1, "--study", "d", "--runs", tmp_path)
    assert r.returncode == 2, r.stderr
    from rmsearch.data import load_data

    assert load_data(SMALL).fingerprint in r.stderr and load_data(other).fingerprint in r.stderr
    study = optuna.load_study(study_name="d", storage=f"sqlite:///{tmp_path / 'd' / 'study.db'}")
    assert len(study.trials) == 1 and study.user_attrs["data"]["spec"] == SMALL


@pytest.mark.parametrize("args, match", [
    (["--top", "0"], "--top 0 must be at least 1"),
    (["--trials", "0"], "has no trials yet and --trials 0 adds none"),
    (["--baselines", "seed-paper,forest"], "--baselines forest: unknown"),
])
def test_launch_refuses_before_any_work(tmp_path, args, match):
    r = _cli("launch", "--data", SMALL, "--study", "q", "--runs", tmp_path, *args)
    assert r.returncode == 2 and match in r.stderr, r.stderr
    assert not (tmp_path / "q").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, how", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_fails_the_trials_in_flight_and_queues_them_again(tmp_path, sig, code, how):
    """Ctrl-C, and SIGTERM (a `kill`, a scheduler stopping the job) alike."""
    space = tmp_path / "slow.yaml"
    space.write_text("head: mlp\nmembers: 2\naggregation: mean\nmlp.hidden: [256, 256]\nmlp.epochs: 2000\n"
                     "mlp.patience: 0\nmlp.lr: {log: [1.0e-4, 1.0e-3]}\n")
    proc = subprocess.Popen([sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", space,
                             "--trials", "2", "--study", "c", "--runs", tmp_path, "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "c" / "study.db"
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running:
        time.sleep(0.5)
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                    running = con.execute("select number from trials where state = 'RUNNING'").fetchall()
            except sqlite3.OperationalError:
                pass  # the driver is still creating the schema
    assert running, "no trial started"
    time.sleep(2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    study = optuna.load_study(study_name="c", storage=f"sqlite:///{db}")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    queued = [t for t in study.trials if t.state == optuna.trial.TrialState.WAITING]
    assert failed and all(f"interrupted ({how})" in t.user_attrs["fail_reason"] for t in failed)
    assert sorted(t.user_attrs["requeued_from"] for t in queued) == sorted(t.number for t in failed)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
