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
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

from rmsearch.search._tensorboard import log_study, log_trial  # noqa: E402

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

    # hparams plugin data sits in this same run
    content = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(content)
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert set(hp) == set(HPARAMS)
    assert hp["head"].string_value == "mlp"
    assert hp["members"].number_value == 3
    assert hp["mlp.lr"].number_value == pytest.approx(1e-3)
    assert hp["mlp.hidden"].string_value == "[16, 8]"
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in exp.metric_infos} == set(METRICS)

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
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")


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


@pytest.mark.slow
def test_live_tensorboard_server_lists_runs_and_tags(tmp_path):
    tb = tmp_path / "demo" / "tb"
    _write_trial(tb, 0)
    _write_trial(tb, 1, state="PRUNED", reason="pruned at 2 members")
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
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
