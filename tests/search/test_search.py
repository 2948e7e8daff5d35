"""A real search: real Ray, real SQLite storage, real event files, real exports."""

import json
import subprocess
import sys

import numpy as np
import optuna
import pytest

from rmsearch.search import LaunchOptions, Search
from tests.search.conftest import SMALL


def launch(tmp_path, space, trials, **kw):
    options = LaunchOptions(data=SMALL, space=str(space), trials=trials, study="s", runs=tmp_path / "runs",
                            progress=False, **kw)
    return Search(options).run()


def _test_scored(tmp) -> set[str]:
    """Keys of the cached members (on disk) that have test-split scores."""
    from rmsearch.search._store import MemberStore

    folder = tmp / "runs" / "s" / "members"
    store = MemberStore(folder)
    return {p.stem for p in folder.glob("*.safetensors") if store.get(p.stem).test_scores is not None}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_session):
    """One small search of 6 trials, then a relaunch of the same study with 4 more."""
    from tests.search.conftest import TINY_SPACE

    tmp = tmp_path_factory.mktemp("search")
    space = tmp / "tiny.yaml"
    space.write_text(TINY_SPACE)
    first = launch(tmp, space, 6, final=False)
    first.test_scored = _test_scored(tmp)  # what the member jobs left on disk, before any final evaluation
    second = launch(tmp, space, 4, stress=True)
    return tmp, first, second


def test_every_trial_completes_and_relaunch_adds(finished):
    tmp, first, second = finished
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp / 'runs' / 's' / 'study.db'}")
    assert len(study.trials) == 10
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert [t.number for t in study.trials] == list(range(10))
    assert first.state.told == list(range(6)) or sorted(first.state.told) == list(range(6))
    assert sorted(second.state.told) == list(range(6, 10))


def test_head_cache_counts(finished):
    _, first, second = finished
    # every member a launch needed was either trained once or reused
    for s in (first, second):
        needed = sum(len(t.user_attrs["members"]) for t in s.study.trials if t.number in s.state.told)
        needed += s.final.baseline_members if s.final else 0  # the baselines go through the cache too
        assert s.state.trained + s.state.reused == needed
        distinct = {k for t in s.study.trials if t.number in s.state.told for k in t.user_attrs["members"]}
        assert s.state.trained <= len(distinct) + (s.final.baseline_members if s.final else 0)
    # the tiny space has few distinct members, so the relaunch reuses some
    assert second.state.reused > 0


def test_objective_is_the_area_under_the_validation_bon_curve(finished):
    """The default objective with gold, bon_auc, is the mean over prompts of each prompt's BoN gold averaged over
    the log N grid: averaging over prompts commutes, so it equals the mean of the curve's gold values."""
    _, _, second = finished
    assert second.objective.name == "bon_auc"
    from rmsearch.search._final import trial_combination

    for t in second.completed():
        assert t.value == pytest.approx(t.user_attrs["val_metrics"]["objective"])
        _, combination = trial_combination(second, t)
        from rmsearch.evaluate import evaluate_split

        curve = evaluate_split(combination.scores("val"), second.task.val)["curve"]
        assert t.value == pytest.approx(np.mean(curve["gold"]), rel=1e-9)


def test_final_report_and_export(finished):
    tmp, _, second = finished
    study_dir = tmp / "runs" / "s"
    report = study_dir / "report"
    assert {"report.md", "bon.png", "stress.png", "metrics.json"} <= {p.name for p in report.iterdir()}
    md = (report / "report.md").read_text()
    assert "Label-noise stress" in md and "flip 40%" in md
    # the export beside the baselines, per test prompt, with a bootstrap interval
    assert "against the baselines" in md
    rows = json.loads((report / "metrics.json").read_text())["context"]["comparisons"]
    assert {(r["against"], r["unit"]) for r in rows} == {(b, u) for b in ("seed-paper", "linear")
                                                         for u in ("bon_auc", "bon_final")}
    n_prompts = second.task.test.gold.shape[0]
    for r in rows:
        assert r["n"] == n_prompts and r["low"] <= r["diff"] <= r["high"]
        assert r["diff"] == pytest.approx(r["chosen"] - r["other"], abs=1e-9)
    manifest = json.loads((study_dir / "best" / "manifest.json").read_text())
    best = second.final.top[0]
    if second.final.exported.startswith("trial"):
        number = int(second.final.exported.split()[1])
        trial = next(t for t in second.study.trials if t.number == number)
        assert manifest["extra"]["trial"] == number and manifest["member_count"] == trial.user_attrs["config"]["members"]
    else:  # the cross-trial selection won on validation
        assert manifest["extra"]["selection"]["members"] == second.final.chosen.describe()
        assert sum(m["weight"] for m in manifest["members"]) == len(second.final.chosen.records)


def test_export_reloads_without_torch_and_matches_trial(finished, tmp_path):
    _, _, second = finished
    chosen = second.final.chosen
    X = np.asarray(second.task.test.source[second.task.test.rows][:500], np.float32)
    expected = chosen.ensemble(second.task.dim).score(X)
    # the cached test scores of the exported members, aggregated, are the same numbers
    np.testing.assert_allclose(expected, chosen.scores("test")[:500], rtol=1e-4, atol=1e-4)
    np.save(tmp_path / "X.npy", X)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, rmsearch\n"
        f"e = rmsearch.load_ensemble({str(finished[0] / 'runs' / 's' / 'best')!r})\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, e.score(np.load({str(tmp_path / 'X.npy')!r})))\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-6)


def test_tensorboard_event_files(finished):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp, _, second = finished
    tb = tmp / "runs" / "s" / "tb"
    runs = {p.name for p in tb.iterdir()}
    assert {f"trial-{i}" for i in range(10)} | {"study"} <= runs
    acc = EventAccumulator(str(tb / "trial-3"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "bon/gold", "bon/proxy", "ensemble/objective"} <= set(tags["scalars"])
    steps = [e.step for e in acc.Scalars("bon/gold")]
    assert steps[0] == 1 and steps[-1] == 40
    value = acc.Scalars("ensemble/objective")[0].value
    t3 = [t for t in second.study.trials if t.number == 3][0]
    assert value == pytest.approx(t3.value, rel=1e-6)
    assert "hparams" in acc.PluginTagToContent("hparams") or acc.PluginTagToContent("hparams")
    study_acc = EventAccumulator(str(tb / "study"), size_guidance={"scalars": 0})
    study_acc.Reload()
    assert len(study_acc.Scalars("study/best_value")) == 10


def test_failing_member_job_fails_its_trial_only(tmp_path, ray_session):
    # lr = 1e30 makes the MLP diverge to NaN: the trial fails with the reason, the search goes on
    space = tmp_path / "bad.yaml"
    space.write_text("head: mlp\nmembers: 1\naggregation: mean\nmlp.hidden: [8]\nmlp.epochs: 2\n"
                     "mlp.lr: {categorical: [0.001, 1.0e+30]}\n")
    s = launch(tmp_path, space, 6, final=False)
    trials = s.study.trials
    assert len(trials) == 6
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert failed and complete and len(failed) + len(complete) == 6
    assert all(t.params["mlp.lr"] > 1 for t in failed) and all(t.params["mlp.lr"] < 1 for t in complete)
    assert all("diverged" in t.user_attrs["fail_reason"] for t in failed)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "runs" / "s" / "tb" / f"trial-{failed[0].number}"), size_guidance={"tensors": 0})
    acc.Reload()
    status = acc.Tensors("trial/status/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "FAIL" in status and "diverged" in status


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True)


def test_export_score_and_evaluate_from_the_cli(finished, tmp_path):
    tmp, _, second = finished
    runs = tmp / "runs"
    trial = second.completed()[2]
    r = _cli("export", "--runs", runs, "--study", "s", "--trial", trial.number, "--out", tmp_path / "ens")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "ens" / "manifest.json").read_text())
    assert manifest["extra"]["trial"] == trial.number and manifest["input_dim"] == 8
    X = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    r = _cli("score", "--ensemble", tmp_path / "ens", "--embeddings", tmp_path / "X.npy", "--out", tmp_path / "s.npy")
    assert r.returncode == 0, r.stderr
    import rmsearch

    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), rmsearch.load_ensemble(tmp_path / "ens").score(X), rtol=1e-6)
    r = _cli("evaluate", "--ensemble", tmp_path / "ens", "--data", SMALL, "--split", "val", "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())["ensembles"][0]["metrics"]
    assert metrics["gold_final"]["value"] == pytest.approx(trial.user_attrs["val_metrics"]["gold_final"], rel=1e-4)
    r = _cli("export", "--runs", runs, "--study", "s", "--select", "--out", tmp_path / "chosen")
    assert r.returncode == 0, r.stderr
    assert "cross-trial selection" in r.stdout and (tmp_path / "chosen" / "manifest.json").is_file()
    # wrong dim and a missing trial are bad input: exit 2, nothing written
    np.save(tmp_path / "X4.npy", X[:, :4])
    r = _cli("score", "--ensemble", tmp_path / "ens", "--embeddings", tmp_path / "X4.npy", "--out", tmp_path / "bad.npy")
    assert r.returncode == 2 and "scores (n, 8) arrays" in r.stderr and not (tmp_path / "bad.npy").exists()
    r = _cli("export", "--runs", runs, "--study", "s", "--trial", 999, "--out", tmp_path / "none")
    assert r.returncode == 2 and "no complete trial 999" in r.stderr and not (tmp_path / "none").exists()


def test_multi_objective_keeps_a_pareto_front(tmp_path, ray_session, tiny_space):
    s = launch(tmp_path, tiny_space, 5, multi_objective=True, top=2, baselines=())
    assert len(s.study.directions) == 2
    front = s.study.best_trials
    assert front and all(t.values[1] == t.user_attrs["cost_parameters"] for t in front)
    assert {n for n, *_ in s.final.top} <= {t.number for t in front}


PRUNE_SPACE = """
head: mlp
members: 4
aggregation: mean
mlp.hidden: [8]
mlp.epochs: 2
mlp.lr: {log: [1.0e-8, 1.0e-1]}
starts:  # the trials, in order: five that learn, then three hopeless ones (their members barely leave the random init)
  - {mlp.lr: 1.0e-2}
  - {mlp.lr: 1.1e-2}
  - {mlp.lr: 1.2e-2}
  - {mlp.lr: 1.3e-2}
  - {mlp.lr: 1.4e-2}
  - {mlp.lr: 1.0e-8}
  - {mlp.lr: 1.1e-8}
  - {mlp.lr: 1.2e-8}
"""
"""Every trial is distinct (no member comes from the cache) and trains its 4 members in 2 jobs, so each reports its
first 2 members as a partial ensemble; the pruner starts after 5 complete trials, all of which learned."""


def test_pruning_prunes_hopeless_trials_on_partial_ensembles(tmp_path, ray_session):
    space = tmp_path / "p.yaml"
    space.write_text(PRUNE_SPACE)
    s = launch(tmp_path, space, 8, final=False, prune=True)
    trials = s.study.trials
    assert [t.params["mlp.lr"] for t in trials] == [1.0e-2, 1.1e-2, 1.2e-2, 1.3e-2, 1.4e-2, 1.0e-8, 1.1e-8, 1.2e-8]
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    assert all(t.intermediate_values for t in trials)  # members arrive in two jobs: partial values reported
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, {t.number: (t.state.name, t.intermediate_values, t.value) for t in trials}
    assert s.state.pruned == len(pruned)
    assert {t.number for t in pruned} <= {5, 6, 7}  # only hopeless ones, and only once the pruner has started
    good = [t.value for t in trials if t.number < 5]
    for t in pruned:
        assert t.user_attrs["pruned_at_members"] == 2 < len(t.user_attrs["members"])
        assert t.intermediate_values[2] < min(good)


def test_optuna_dashboard_opens_the_storage_unchanged(finished):
    dashboard = pytest.importorskip("optuna_dashboard")
    from wsgiref.util import setup_testing_defaults

    tmp, _, _ = finished
    app = dashboard.wsgi(f"sqlite:///{tmp / 'runs' / 's' / 'study.db'}")
    environ = {"PATH_INFO": "/api/studies", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
    assert status[0].startswith("200")
    studies = json.loads(body)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["s"]


def test_launch_records_where_its_time_went(finished):
    _, _, second = finished
    st = second.state
    assert 0 < st.fit_seconds < st.train_seconds  # jobs train, then score their validation/test rows
    expected = {"setup", "ray start", "optuna", "evaluation", "tensorboard", "waiting on jobs", "final evaluation"}
    assert expected <= set(st.phases), st.phases
    assert all(v >= 0 for v in st.phases.values())
    assert sum(st.phases.values()) <= second.total_seconds  # the phases are disjoint stretches of the launch
    launch = second.study.user_attrs["last_launch"]
    assert launch["phases"]["optuna"] > 0 and launch["slots"] == second.slots
    assert launch["fit_seconds"] <= launch["job_seconds"]


def test_jobs_score_validation_only_and_the_final_evaluation_adds_test_scores(finished):
    tmp, first, second = finished
    from rmsearch.search._store import MemberStore

    assert first.state.trained > 0 and first.test_scored == set()  # member jobs score the validation split only
    store = MemberStore(tmp / "runs" / "s" / "members")  # a fresh store reads what is on disk
    trials = {t.number: t for t in second.study.trials}
    top = {k for number, *_ in second.final.top for k in trials[number].user_attrs["members"]}
    assert top <= _test_scored(tmp)  # the final evaluation scored the top trials' members and kept the scores
    assert all(len(store.get(k).test_scores) == len(second.task.test) for k in top)


def test_folder_data_reaches_a_local_rays_workers_as_memory_maps(tmp_path, ray_session, tiny_space):
    """Data read from a folder is not copied through Ray's object store on a local Ray: each worker maps the same
    files and builds the same task, so the trials' values are those of the same world shipped through the store."""
    from rmsearch.data import load_data, write_seed_folder

    folder = tmp_path / "world"
    write_seed_folder(folder, load_data(SMALL))
    runs = {}
    for name, data in (("store", SMALL), ("maps", str(folder))):
        runs[name] = Search(LaunchOptions(data=data, space=str(tiny_space), trials=3, study=name,
                                          runs=tmp_path / name, progress=False, final=False)).run()
    paths = {name: s.study.user_attrs["last_launch"]["data_path"] for name, s in runs.items()}
    assert paths["store"] == "object store" and paths["maps"].startswith("memory maps (a local Ray"), paths
    values = {name: [t.values for t in s.study.trials] for name, s in runs.items()}
    assert values["store"] == values["maps"] and all(v is not None for v in values["maps"]), values
