"""`rmsearch evaluate --ensemble` on any data and `rmsearch compare`, run as a user would, on the exports of two
real launches (gold data; pair data selected by cross-validation): what is scored, how many prompts or pairs,
intervals for every metric, calibration, refusals that exit 2 and write nothing."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.evaluate.test_report import gao_rows

GOLD = "synth:train_prompts=200,test_prompts=20,test_responses=40,dim=8"
OTHER = "synth:seed=1,train_prompts=150,test_prompts=30,test_responses=40,dim=8"  # another world, same dim


def rmsearch(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def pair_folder(path, n, seed):
    from rmsearch.data import write_pair_folder

    w = np.random.default_rng(0).standard_normal(6)
    g = np.random.default_rng(seed)
    a, b = g.standard_normal((n, 6)).astype(np.float32), g.standard_normal((n, 6)).astype(np.float32)
    swap = (a - b) @ w + g.standard_normal(n) < 0  # chosen is mostly the one w prefers
    a[swap], b[swap] = b[swap].copy(), a[swap].copy()
    write_pair_folder(path, a, b, {"name": path.name})
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    r = rmsearch("launch", "--data", GOLD, "--space", "coste", "--trials", 1, "--study", "g", "--runs", root / "runs",
                 "--top", 1, "--workers", 1, "--baselines", "none", "--no-select")
    assert r.returncode == 0, r.stderr
    pair_folder(root / "pairs", 400, 1)  # 40 test pairs, so the launch selects by 5-fold cross-validation
    pair_folder(root / "pairs2", 300, 2)
    (root / "linear.yaml").write_text("head: linear\nmembers: 2\naggregation: mean\n")
    r = rmsearch("launch", "--data", root / "pairs", "--space", root / "linear.yaml", "--trials", 1, "--study", "p",
                 "--runs", root / "runs", "--top", 1, "--workers", 1, "--baselines", "none", "--no-select")
    assert r.returncode == 0, r.stderr
    return root


def manifest(export):
    return json.loads((export / "manifest.json").read_text())


def test_other_data_is_scored_whole_and_said_so(runs, tmp_path):
    export = runs / "runs" / "g" / "best"
    r = rmsearch("evaluate", "--ensemble", export, "--data", OTHER, "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "is not the data" in out and "all: every prompt of the data's test split" in out
    assert "split all: 30 prompts scored" in out and "600 gold-labelled pairs" in out
    blob = json.loads((tmp_path / "e.json").read_text())
    assert blob["split"] == "all" and blob["units"] == "prompts" and blob["n_units"] == 30 and blob["pairs"] == 600
    (e,) = blob["ensembles"]
    assert e["trained_on"].startswith("other data")
    metrics = e["metrics"]
    assert {"gold_final", "peak_n", "drop", "bon_auc", "spearman", "pair_accuracy", "pair_nll", "pair_ece",
            "pair_ece_calibrated"} <= set(metrics)
    for key, m in metrics.items():
        assert m["low"] <= m["high"], key
    for key in ("gold_final", "spearman", "pair_accuracy", "pair_nll"):
        assert metrics[key]["low"] <= metrics[key]["value"] <= metrics[key]["high"], key
    # the value is BoN gold at N = M over all 30 prompts of the other world's test split, scored with the export
    from rmsearch import load_ensemble
    from rmsearch.data import load_data
    from rmsearch.evaluate import best_of_n

    data = load_data(OTHER)
    X = np.asarray(data.test.embeddings, np.float32)
    scores = load_ensemble(export).score(X.reshape(-1, 8)).reshape(30, 40)
    assert metrics["gold_final"]["value"] == pytest.approx(float(best_of_n(scores, data.test.gold, [40])[0]))


def test_training_data_gives_the_launchs_own_test_numbers(runs, tmp_path):
    export = runs / "runs" / "g" / "best"
    r = rmsearch("evaluate", "--ensemble", export, "--data", GOLD, "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    blob = json.loads((tmp_path / "e.json").read_text())
    recorded = manifest(export)
    assert blob["split"] == "test" and recorded["extra"]["split_record"]["test_split"]["test_prompts"]
    assert blob["n_units"] == len(recorded["extra"]["split_record"]["test_split"]["test_prompts"])
    metrics = blob["ensembles"][0]["metrics"]
    for key in ("gold_final", "spearman", "pair_accuracy", "pair_ece"):
        assert metrics[key]["value"] == pytest.approx(recorded["metrics"]["test"][key]), key
    r = rmsearch("evaluate", "--ensemble", export, "--data", GOLD, "--split", "val", "--json", tmp_path / "v.json")
    assert r.returncode == 0 and "used to select" in r.stdout
    val = json.loads((tmp_path / "v.json").read_text())["ensembles"][0]["metrics"]
    assert val["gold_final"]["value"] == pytest.approx(recorded["metrics"]["validation"]["gold_final"])


@pytest.mark.parametrize("split", ["test", "val"])
def test_test_or_val_split_of_other_data_refused(runs, tmp_path, split):
    r = rmsearch("evaluate", "--ensemble", runs / "runs" / "g" / "best", "--data", OTHER, "--split", split,
                 "--json", tmp_path / "e.json", "--out", tmp_path / "report")
    assert r.returncode == 2, r.stderr
    assert f"--split {split}:" in r.stderr and "is not the data" in r.stderr and "--split all" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "e.json").exists() and not (tmp_path / "report").exists()


def test_json_is_not_overwritten_without_force(runs, tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("last week's numbers")
    args = ["evaluate", "--ensemble", runs / "runs" / "g" / "best", "--data", OTHER, "--json", target]
    r = rmsearch(*args)
    assert r.returncode == 2 and "exists" in r.stderr and "--force" in r.stderr
    assert target.read_text() == "last week's numbers"
    r = rmsearch(*args, "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads(target.read_text())["n_units"] == 30
    # training a configuration: the same rule, checked before any training
    r = rmsearch("evaluate", "--data", GOLD, "--set", "members=2", "--out", tmp_path / "rep", "--json", target)
    assert r.returncode == 2 and "--force" in r.stderr and not (tmp_path / "rep").exists()


def test_cross_validated_study_validation_split_refused(runs, tmp_path):
    export, data = runs / "runs" / "p" / "best", runs / "pairs"
    assert manifest(export)["extra"]["split_record"]["folds"] == 5
    r = rmsearch("evaluate", "--ensemble", export, "--data", data, "--split", "val", "--json", tmp_path / "v.json")
    assert r.returncode == 2, r.stderr
    assert "5-fold cross-validation" in r.stderr and "trained on all of them" in r.stderr
    assert "--split test" in r.stderr and not (tmp_path / "v.json").exists()
    r = rmsearch("evaluate", "--ensemble", export, "--data", data, "--json", tmp_path / "t.json")
    assert r.returncode == 0, r.stderr
    blob = json.loads((tmp_path / "t.json").read_text())
    assert blob["split"] == "test" and blob["units"] == "pairs" and blob["n_units"] == 40
    acc = blob["ensembles"][0]["metrics"]["pair_accuracy"]["value"]
    assert acc == pytest.approx(manifest(export)["metrics"]["test"]["pair_accuracy"])
    r = rmsearch("evaluate", "--ensemble", export, "--data", data, "--split", "all")
    assert r.returncode == 0 and "400 pairs scored" in r.stdout
    assert "training accuracy" in " ".join(r.stdout.split())


def test_report_folder_with_calibration(runs, tmp_path):
    out = tmp_path / "report"
    r = rmsearch("evaluate", "--ensemble", runs / "runs" / "g" / "best", "--data", OTHER, "--out", out)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"report.md", "metrics.json", "bon.png", "calibration.png"}
    md = (out / "report.md").read_text()
    assert "| pair ECE |" in md and "10 equal-width bins" in md and "30 prompts" in md
    with Image.open(out / "calibration.png") as im:
        assert "all prompts of the test split" in im.text["Title"]
    with Image.open(out / "bon.png") as im:
        assert "all prompts" in im.text["Title"]
    assert [row["name"] for row in gao_rows(md)] == [str(runs / "runs" / "g" / "best")]


def test_launch_report_and_export_carry_calibration(runs):
    report = runs / "runs" / "g" / "report"
    assert (report / "calibration.png").exists() and "pair ECE" in (report / "report.md").read_text()
    assert any(row["name"].startswith("trial 0:") for row in gao_rows((report / "report.md").read_text()))
    cal = manifest(runs / "runs" / "g" / "best")["calibration"]
    assert cal["temperature"] > 0 and cal["nll_after"] <= cal["nll_before"] and cal["pairs"] > 0


def test_compare_two_exports_and_a_baseline(runs, tmp_path):
    first = runs / "runs" / "g" / "best"
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    out = tmp_path / "cmp"
    r = rmsearch("compare", first, copy, "--data", OTHER, "--baseline", "linear", "--out", out)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"report.md", "compare.json", "bon.png", "calibration.png"}
    blob = json.loads((out / "compare.json").read_text())
    assert [e["name"] for e in blob["ensembles"]] == [str(first), str(copy), "baseline linear"]
    assert blob["split"] == "all" and blob["n_units"] == 30
    same = blob["ensembles"][1]["difference_to_first"]
    assert same["gold_final"] == same["pair_ece_calibrated"] == {"diff": 0.0, "low": 0.0, "high": 0.0}
    base, ref = blob["ensembles"][2], blob["ensembles"][0]
    assert base["difference_to_first"] is not None and ref["difference_to_first"] is None
    d = base["difference_to_first"]["gold_final"]
    assert d["diff"] == pytest.approx(base["metrics"]["gold_final"]["value"] - ref["metrics"]["gold_final"]["value"])
    assert d["low"] <= d["diff"] <= d["high"]
    assert "training split" in base["trained_on"]
    md = (out / "report.md").read_text()
    assert f"| baseline linear − {first} |" in md and "paired" in md
    assert [row["name"] for row in gao_rows(md)] == [str(first), str(copy), "baseline linear"]
    # an earlier comparison is replaced; a folder holding anything else is refused
    assert rmsearch("compare", first, "--data", OTHER, "--out", out).returncode == 0
    assert len(json.loads((out / "compare.json").read_text())["ensembles"]) == 1
    (out / "notes.txt").write_text("mine")
    r = rmsearch("compare", first, "--data", OTHER, "--out", out)
    assert r.returncode == 2 and "notes.txt" in r.stderr and (out / "notes.txt").read_text() == "mine"


def test_compare_on_other_pair_data_with_a_baseline_holds_out_its_test_split(runs, tmp_path):
    export, data = runs / "runs" / "p" / "best", runs / "pairs2"
    r = rmsearch("compare", export, "--data", data, "--baseline", "linear", "--split", "all")
    assert r.returncode == 2 and "--split test" in r.stderr and "Traceback" not in r.stderr
    r = rmsearch("compare", export, "--data", data, "--baseline", "linear", "--out", tmp_path / "cmp")
    assert r.returncode == 0, r.stderr
    blob = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert blob["split"] == "test" and blob["n_units"] == 30 and blob["units"] == "pairs"
    assert not (tmp_path / "cmp" / "bon.png").exists()
    r = rmsearch("compare", export, "--data", data)  # no baselines: all 300 pairs
    assert r.returncode == 0 and "300 pairs scored" in r.stdout


def test_export_of_unknown_data_and_other_dims(runs, tiny_export, tmp_path):
    r = rmsearch("evaluate", "--ensemble", tiny_export, "--data", "synth:train_prompts=60,test_prompts=5,"
                 "test_responses=12,dim=6", "--split", "test")
    assert r.returncode == 2 and "records no dataset fingerprint" in r.stderr
    r = rmsearch("compare", runs / "runs" / "g" / "best", tiny_export, "--data", OTHER)
    assert r.returncode == 2 and "has dim 8 but the ensemble" in r.stderr
    r = rmsearch("evaluate", "--data", GOLD, "--split", "all", "--out", tmp_path / "rep")
    assert r.returncode == 2 and "--split all applies to --ensemble" in r.stderr and not (tmp_path / "rep").exists()
