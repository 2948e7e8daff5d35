"""TensorBoard event files written by rmsearch.search._tensorboard, read back with TensorBoard's own reader, and a
live `tensorboard` server that lists the runs and tags over HTTP."""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

pytest.importorskip("tensorboard")
pytest.importorskip("torch")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2  # noqa: E402

from rmsearch.search._tensorboard import (  # noqa: E402
    _curve_figure, log_experiment, log_study, log_trial, trial_metric_tags,
)
from rmsearch.spaces import Space, load_space  # noqa: E402

EXPERIMENT = "_hparams_/experiment"
START = "_hparams_/session_start_info"
END = "_hparams_/session_end_info"

HISTORY = [
    {"train/loss": 0.69, "val/accuracy": 0.55, "val/nll": 0.68},
    {"train/loss": 0.60, "val/accuracy": 0.62, "val/nll": 0.64},
    {"train/loss": 0.52, "val/accuracy": 0.66, "val/nll": 0.61},
]
NS = [1, 2, 4, 8, 16]
CURVE = {
    "n": NS,
    "kl": [math.log(n) - (n - 1) / n for n in NS],
    "gold": [0.0, 0.3, 0.5, 0.55, 0.5],
    "proxy": [0.0, 0.4, 0.8, 1.1, 1.4],
}
METRICS = {
    "ensemble/objective": 0.5,
    "ensemble/gold_final": 0.5,
    "ensemble/drop": 0.05,
    "ensemble/spearman": 0.7,
    "ensemble/pair_accuracy": 0.66,
    "ensemble/members": 3.0,
}
HPARAMS = {
    "head": "mlp",
    "members": 3,
    "mlp.lr": 1e-3,
    "mlp.bootstrap": True,
    "mlp.hidden": [16, 8],
    "aggregation": "uwo",
}


@pytest.fixture(scope="module")
def pair_task(tmp_path_factory):
    """A task on a pair dataset (no gold)."""
    import numpy as np

    from rmsearch.data import TaskConfig, load_data, make_task, write_pair_folder

    g = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("pairs")
    write_pair_folder(folder, g.standard_normal((200, 6)).astype(np.float32),
                      g.standard_normal((200, 6)).astype(np.float32), {"name": "toy"})
    return make_task(load_data(folder), TaskConfig(folds=0))


def _acc(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _write_trial(tb_root, number=0, **kw):
    args = dict(hparams=HPARAMS, metrics=METRICS, history=HISTORY, curve=CURVE, state="COMPLETE")
    args.update(kw)
    return log_trial(tb_root, number, **args)


def test_log_trial_writes_scalars_image_text_and_hparams_into_one_run(tmp_path):
    tb = tmp_path / "study" / "tb"
    run = _write_trial(tb, 0)
    assert run == tb / "trial-0"
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    assert [p for p in run.iterdir() if p.is_dir()] == []  # hparams went into this run, no sub-run

    acc = _acc(run)
    tags = acc.Tags()
    for key in ("train/loss", "val/accuracy", "val/nll"):
        got = _scalars(acc, key)
        assert [s for s, _ in got] == [1, 2, 3]
        assert [v for _, v in got] == pytest.approx([row[key] for row in HISTORY])
    for key in ("gold", "proxy"):
        got = _scalars(acc, f"bon/{key}")
        assert [s for s, _ in got] == NS
        assert [v for _, v in got] == pytest.approx(CURVE[key])
    for tag, value in METRICS.items():
        assert _scalars(acc, tag) == [(0, pytest.approx(value))]

    assert "bon/curve" in tags["images"]
    img = acc.Images("bon/curve")[0]
    assert img.width > 100 and img.height > 100
    assert img.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"

    # this run is one HParams session (start: the trial's values, end: its status); the experiment (the columns)
    # is the study's, in the tb root, not here
    content = acc.PluginTagToContent("hparams")
    assert set(content) == {START, END}
    start = plugin_data_pb2.HParamsPluginData.FromString(content[START])
    hp = start.session_start_info.hparams
    assert set(hp) == set(HPARAMS)
    assert hp["head"].string_value == "mlp"
    assert hp["members"].number_value == 3
    assert hp["mlp.lr"].number_value == pytest.approx(1e-3)
    assert hp["mlp.hidden"].string_value == "[16, 8]"
    assert hp["mlp.bootstrap"].WhichOneof("kind") == "bool_value" and hp["mlp.bootstrap"].bool_value is True
    end = plugin_data_pb2.HParamsPluginData.FromString(content[END]).session_end_info
    assert end.status == api_pb2.STATUS_SUCCESS

    # status text
    text = acc.Tensors("trial/status/text_summary")
    assert b"COMPLETE" in text[0].tensor_proto.string_val[0]


def test_failed_trial_without_curve_shows_its_reason(tmp_path):
    tb = tmp_path / "tb"
    run = _write_trial(tb, 7, history=[], curve=None, metrics={}, state="FAIL", reason="worker died: OOM")
    assert run == tb / "trial-7"
    acc = _acc(run)
    assert acc.Tags()["scalars"] == []
    assert acc.Tags()["images"] == []
    status = acc.Tensors("trial/status/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "FAIL" in status and "worker died: OOM" in status
    content = acc.PluginTagToContent("hparams")
    assert START in content and EXPERIMENT not in content
    assert plugin_data_pb2.HParamsPluginData.FromString(content[END]).session_end_info.status == api_pb2.STATUS_FAILURE


def test_nan_values_are_skipped_not_written(tmp_path):
    acc = _acc(
        _write_trial(
            tmp_path,
            1,
            history=[{"train/loss": float("nan"), "val/nll": 0.5}],
            metrics={"ensemble/drop": float("nan"), "ensemble/objective": 0.4},
        )
    )
    assert "train/loss" not in acc.Tags()["scalars"]
    assert "ensemble/drop" not in acc.Tags()["scalars"]
    assert _scalars(acc, "val/nll") == [(1, 0.5)]
    assert _scalars(acc, "ensemble/objective") == [(0, pytest.approx(0.4))]


def _experiment(tb_root):
    """The experiment TensorBoard's HParams dashboard shows: the one in the tb root run; asserts it is the only
    one in the whole log folder (TensorBoard picks an arbitrary run's when several have one)."""
    runs = [tb_root] + sorted(p for p in tb_root.iterdir() if p.is_dir())
    found = [r for r in runs if EXPERIMENT in _hparams(r)]
    assert found == [tb_root], found
    return plugin_data_pb2.HParamsPluginData.FromString(_hparams(tb_root)[EXPERIMENT]).experiment


def _hparams(run) -> dict:
    """tag -> HParams plugin content of a run ({} for a run without any, e.g. 'study')."""
    try:
        return _acc(run).PluginTagToContent("hparams")
    except KeyError:
        return {}


def _session(run):
    content = _acc(run).PluginTagToContent("hparams")
    return plugin_data_pb2.HParamsPluginData.FromString(content[START]).session_start_info.hparams


def _in_domain(info, value) -> bool:
    if info.HasField("domain_interval"):
        return value.WhichOneof("kind") == "number_value" and (
            info.domain_interval.min_value <= value.number_value <= info.domain_interval.max_value)
    return value in list(info.domain_discrete.values)


def test_experiment_in_the_tb_root_declares_every_parameter_of_the_space(tmp_path, small_task):
    """One experiment for the study, in tb/ itself: every parameter of the default space with its domain (not
    only the first trial's head's parameters), every ensemble metric; each trial run carries its own values."""
    space = load_space("default")
    tb = tmp_path / "demo" / "tb"
    log_experiment(tb, space, trial_metric_tags(small_task.val))
    points = {i: start for i, start in enumerate(space.starts)}  # mlp, mlp (uwo), linear, gbdt
    for i, point in points.items():
        _write_trial(tb, i, hparams=point)

    exp = _experiment(tb)
    infos = {i.name: i for i in exp.hparam_infos}
    assert set(infos) == set(space.params)
    for name in ("mlp.hidden", "mlp_clf.dropout", "linear.weight_decay", "lcb.kappa", "gbdt.max_iter", "uwo.lambda"):
        assert name in infos
    hidden = infos["mlp_clf.hidden"]
    assert hidden.type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in hidden.domain_discrete.values] == ["[32]", "[64, 32]", "[128, 64]"]
    assert infos["mlp_clf.dropout"].domain_interval.max_value == pytest.approx(0.3)
    assert (infos["linear.weight_decay"].domain_interval.min_value,
            infos["linear.weight_decay"].domain_interval.max_value) == (pytest.approx(1e-6), pytest.approx(0.1))
    assert infos["lcb.kappa"].domain_interval.max_value == pytest.approx(3.0)
    max_iter = infos["gbdt.max_iter"].domain_interval
    assert (max_iter.min_value, max_iter.max_value) == (20, 150)
    assert infos["standardize"].type == api_pb2.DATA_TYPE_BOOL
    assert [v.bool_value for v in infos["standardize"].domain_discrete.values] == [True, False]
    assert [v.number_value for v in infos["mlp.patience"].domain_discrete.values] == [0, 3]
    assert [v.string_value for v in infos["head"].domain_discrete.values] == [
        "linear", "mlp", "mlp_clf", "gbdt", "laplace", "prototype"]
    metrics = [m.name.tag for m in exp.metric_infos]
    assert metrics[0] == "ensemble/objective"
    assert set(METRICS) <= set(metrics)  # every ensemble/* scalar the trials write is a column
    assert {"ensemble/gold_final", "ensemble/pair_accuracy", "ensemble/parameters"} <= set(metrics)

    for i, point in points.items():  # each trial: its own values, each inside the declared domain
        hp = _session(tb / f"trial-{i}")
        assert set(hp) == set(point)
        for name, value in hp.items():
            assert _in_domain(infos[name], value), (name, value, infos[name])
    assert _session(tb / "trial-0")["mlp.hidden"].string_value == "[128, 64]"
    assert _session(tb / "trial-3")["gbdt.max_iter"].number_value == 100
    assert _session(tb / "trial-2")["linear.solver"].string_value == "lbfgs"  # the logistic-regression start
    assert _session(tb / "trial-1")["standardize"].bool_value is True


def test_fixed_values_are_one_value_domains_and_pair_data_has_no_bon_metrics(tmp_path, pair_task):
    space = Space.from_yaml_text("head: mlp\nmembers: 3\nmlp.hidden: [16, 8]\nmlp.bootstrap: true\n"
                                 "mlp.lr: {categorical: [0.001, 0.01]}\naggregation: {categorical: [mean, lcb]}\n"
                                 "lcb.kappa: {float: [0.5, 2.0]}\n")
    log_experiment(tmp_path, space, trial_metric_tags(pair_task.val, prune=True))
    infos = {i.name: i for i in _experiment(tmp_path).hparam_infos}
    assert list(infos["mlp.hidden"].domain_discrete.values) == [_string("[16, 8]")]
    assert infos["mlp.bootstrap"].type == api_pb2.DATA_TYPE_BOOL
    assert infos["members"].type == api_pb2.DATA_TYPE_FLOAT64
    assert [v.number_value for v in infos["members"].domain_discrete.values] == [3]
    assert [v.number_value for v in infos["mlp.lr"].domain_discrete.values] == [0.001, 0.01]
    metrics = {m.name.tag for m in _experiment(tmp_path).metric_infos}
    assert {"ensemble/objective", "ensemble/pair_accuracy", "ensemble/pair_nll", "ensemble/members",
            "ensemble/parameters", "ensemble/partial_objective"} <= metrics
    assert not metrics & {"ensemble/gold_final", "ensemble/drop", "ensemble/spearman"}  # no gold, no BoN


def _string(s):
    from google.protobuf import struct_pb2

    return struct_pb2.Value(string_value=s)


def test_a_relaunch_replaces_the_experiment_keeping_earlier_parameters(tmp_path, small_task):
    """TensorBoard reads the first experiment summary it finds, so each launch replaces the earlier one (one
    event file in the tb root), merged: a parameter only the earlier space had stays for the earlier trials."""
    first = Space.from_yaml_text("head: mlp\nmembers: {int: [1, 3]}\nmlp.dropout: {float: [0.0, 0.3]}\n")
    second = Space.from_yaml_text("head: mlp\nmembers: {int: [2, 8]}\nmlp.epochs: {int: [5, 9]}\n")
    log_experiment(tmp_path, first, trial_metric_tags(small_task.val))
    created = _experiment(tmp_path).time_created_secs
    log_experiment(tmp_path, second, trial_metric_tags(small_task.val, prune=True))
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    exp = _experiment(tmp_path)
    infos = {i.name: i for i in exp.hparam_infos}
    assert set(infos) == {"head", "members", "mlp.epochs", "mlp.dropout"}
    assert (infos["members"].domain_interval.min_value, infos["members"].domain_interval.max_value) == (2, 8)
    assert "ensemble/partial_objective" in {m.name.tag for m in exp.metric_infos}
    assert exp.time_created_secs == created


def test_bon_figure_axis_names_the_exact_kl():
    ax = _curve_figure(CURVE).axes[0]
    label = ax.get_xlabel()
    assert "without replacement" in label and "log N - (N-1)/N" not in label
    assert "validation split" in ax.get_title()


@pytest.mark.slow
def test_a_launch_writes_one_experiment_declaring_its_space_and_what_trials_write(tmp_path, ray_session, tiny_space):
    from rmsearch.search import LaunchOptions, Search
    from tests.search.conftest import SMALL

    search = Search(LaunchOptions(data=SMALL, space=str(tiny_space), trials=3, study="s", runs=tmp_path / "runs",
                                  progress=False, final=False)).run()
    tb = tmp_path / "runs" / "s" / "tb"
    exp = _experiment(tb)
    infos = {i.name: i for i in exp.hparam_infos}
    assert set(infos) == set(load_space(tiny_space).params)
    declared = {m.name.tag for m in exp.metric_infos}
    assert "ensemble/objective" in declared
    assert len(search.study.trials) == 3
    for t in search.study.trials:
        run = tb / f"trial-{t.number}"
        written = {tag for tag in _acc(run).Tags()["scalars"] if tag.startswith("ensemble/")}
        assert "ensemble/objective" in written and written <= declared, written - declared
        hp = _session(run)
        assert set(t.params) <= set(hp)
        assert all(_in_domain(infos[k], v) for k, v in hp.items()), hp


def test_log_study_appends_value_and_best(tmp_path):
    log_study(tmp_path, 0, 0.3, 0.3)
    log_study(tmp_path, 1, 0.2, 0.3)
    log_study(tmp_path, 2, None, 0.3)  # a failed trial: no value, best unchanged
    acc = _acc(tmp_path / "study")
    assert _scalars(acc, "study/value") == [(0, pytest.approx(0.3)), (1, pytest.approx(0.2))]
    assert _scalars(acc, "study/best_value") == [(0, pytest.approx(0.3)), (1, pytest.approx(0.3)), (2, pytest.approx(0.3))]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def _post_json(url, body, timeout=10):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


@pytest.mark.slow
def test_live_tensorboard_server_lists_runs_and_tags(tmp_path, small_task):
    tb = tmp_path / "demo" / "tb"
    space = load_space("default")
    log_experiment(tb, space, trial_metric_tags(small_task.val))
    _write_trial(tb, 0, hparams=space.starts[0])  # an mlp trial
    _write_trial(tb, 1, hparams=space.starts[3], state="PRUNED", reason="pruned at 2 members")  # a gbdt trial
    log_study(tb, 0, 0.5, 0.5)
    log_study(tb, 1, 0.4, 0.5)

    port = _free_port()
    exe = shutil.which("tensorboard", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "tensorboard.main"]
    cmd += ["--logdir", str(tb), "--host", "127.0.0.1", "--port", str(port), "--load_fast=false", "--reload_interval=1"]
    log = open(tmp_path / "tensorboard.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        runs = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"tensorboard exited ({proc.returncode}): {(tmp_path / 'tensorboard.log').read_text()}")
            try:
                runs = _get_json(base + "/data/runs")
                if {"trial-0", "trial-1", "study"} <= set(runs):
                    break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            time.sleep(0.5)
        assert runs is not None, "tensorboard never answered: " + (tmp_path / "tensorboard.log").read_text()
        assert {"trial-0", "trial-1", "study"} <= set(runs), runs

        tags = _get_json(base + "/data/plugin/scalars/tags")
        for run in ("trial-0", "trial-1"):
            assert "bon/gold" in tags[run], tags[run]
            assert "ensemble/objective" in tags[run]
        assert "study/best_value" in tags["study"]

        q = urllib.parse.urlencode({"run": "trial-0", "tag": "bon/gold"})
        points = _get_json(f"{base}/data/plugin/scalars/scalars?{q}")
        assert [p[1] for p in points] == NS  # [wall_time, step, value]

        # the HParams dashboard: a column for every parameter of the space (not only trial 0's mlp ones) and every
        # ensemble metric; one row per trial with its own values
        exp = _post_json(base + "/data/plugin/hparams/experiment", {"experimentName": ""})
        assert {h["name"] for h in exp["hparamInfos"]} == set(space.params)
        assert {"ensemble/objective", "ensemble/gold_final"} <= {m["name"]["tag"] for m in exp["metricInfos"]}
        hidden = next(h for h in exp["hparamInfos"] if h["name"] == "mlp.hidden")
        assert hidden["domainDiscrete"] == ["[32]", "[64, 32]", "[128, 64]"]
        groups = _post_json(base + "/data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 100,
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
        rows = {g["name"]: g for g in groups["sessionGroups"]}
        assert set(rows) == {"trial-0", "trial-1"}
        assert rows["trial-0"]["hparams"]["mlp.hidden"] == "[128, 64]"
        assert "gbdt.max_iter" not in rows["trial-0"]["hparams"]
        assert rows["trial-1"]["hparams"]["gbdt.max_iter"] == 100 and "mlp.hidden" not in rows["trial-1"]["hparams"]
        values = {m["name"]["tag"]: m["value"] for m in rows["trial-0"]["metricValues"]}
        assert values["ensemble/objective"] == pytest.approx(METRICS["ensemble/objective"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_final_evaluation_writes_test_split_numbers_under_tags_naming_the_split(tmp_path, ray_session,
                                                                                      tiny_space):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rmsearch.search import LaunchOptions, Search
    from tests.search.conftest import SMALL

    search = Search(LaunchOptions(data=SMALL, space=str(tiny_space), trials=2, study="f", runs=tmp_path / "runs",
                                  progress=False, baselines=("linear",), top=1)).run()
    tb = tmp_path / "runs" / "f" / "tb"
    best = next(k for k in search.final.results if k.startswith("trial "))
    number = int(best.split(":")[0].removeprefix("trial "))

    def scalars(run):
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        return {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}

    trial = scalars(tb / f"trial-{number}")
    test = search.final.results[best]["test"]
    assert trial["test/ensemble/gold_final"][0].value == pytest.approx(test["metrics"]["gold_final"], rel=1e-6)
    assert [e.step for e in trial["test/bon/gold"]] == [int(n) for n in test["curve"]["n"]]
    assert "ensemble/objective" in trial and not any(t.startswith("val/ensemble") for t in trial)
    baseline = scalars(tb / "final-baseline-linear")
    assert {"val/ensemble/objective", "test/ensemble/objective", "val/bon/gold", "test/bon/gold"} <= set(baseline)
    if any(k.startswith("cross-trial selection") for k in search.final.results):
        assert "test/ensemble/objective" in scalars(tb / "final-selection")
