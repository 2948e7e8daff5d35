"""Each CLI verb run as a subprocess, as a user would."""

import csv
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

SMALL = "synth:train_prompts=300,test_prompts=20,test_responses=60,dim=16"


def rmsearch(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "seed"
    r = rmsearch("data", "synth", "--out", out, "--train-prompts", 200, "--test-prompts", 10, "--test-responses", 50, "--dim", 8)
    assert r.returncode == 0, r.stderr
    return out


def test_data_synth_writes_seed_format(seed_dir):
    names = sorted(p.name for p in seed_dir.iterdir())
    assert names == ["embd_synth_seed0_gold_test.npy", "embd_synth_seed0_gold_train.npy",
                     "reward_synth_seed0_gold_test.npy", "reward_synth_seed0_gold_train.npy"]
    assert np.load(seed_dir / names[2]).shape == (10, 50, 1)


def test_inspect_prints_shapes_of_both_splits(seed_dir):
    r = rmsearch("data", "inspect", seed_dir)
    assert r.returncode == 0, r.stderr
    assert "train P=200 K=10 D=8 float32" in r.stdout and "test  P=10 K=50 D=8 float32" in r.stdout
    assert "label error rate" in r.stdout
    info = json.loads(rmsearch("data", "inspect", seed_dir, "--json").stdout)
    assert info["test"]["responses"] == 50 and 0 < info["label_error_rate"] < 0.5


def test_inspect_nan_copy_exits_2_naming_file_and_problem(seed_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(seed_dir, bad)
    path = bad / "embd_synth_seed0_gold_test.npy"
    arr = np.load(path)
    arr[3, 7, 2] = np.nan
    np.save(path, arr)
    r = rmsearch("data", "inspect", bad)
    assert r.returncode == 2
    assert str(path) in r.stderr and "non-finite value (nan) in row 3" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_writes_report(tmp_path):
    out = tmp_path / "report"
    r = rmsearch("evaluate", "--data", SMALL, "--set", "members=3", "--set", "mlp.epochs=5", "--out", out,
                 "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"report.md", "metrics.json", "bon.png", "curves.csv", "calibration.png"}
    md = (out / "report.md").read_text()
    assert "| single |" in md and "| uwo (λ=1) |" in md and "![BoN" in md
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics) == {"single", "mean", "min", "median", "uwo (λ=1)", "lcb (κ=1)"}
    assert 0.5 < metrics["mean"]["pair_accuracy"] <= 1
    assert 0 <= metrics["mean"]["pair_ece"] < 0.5 and "| pair ECE |" in md
    assert (out / "bon.png").read_bytes()[:4] == b"\x89PNG"
    # the KL axis is the exact one of N of M drawn without replacement: log M at N = M (60 candidates)
    rows = list(csv.DictReader((out / "curves.csv").open()))
    last = [r for r in rows if r["name"] == "mean"][-1]
    assert int(last["n"]) == 60 and float(last["kl"]) == pytest.approx(math.log(60))


@pytest.mark.parametrize("args, message", [
    (["--set", "head=svm"], "unknown head type 'svm'"),
    (["--config", "/nonexistent.yaml"], "file not found"),
    (["--data", "/nonexistent"], "no such file or folder"),
    (["--flip-rate", "0.7"], "flip_rate=0.7"),
])
def test_evaluate_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "never"
    r = rmsearch("evaluate", "--data", SMALL, "--out", out, *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
