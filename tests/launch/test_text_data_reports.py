"""Reports on text-derived data, run as a user would: a gold folder whose candidates carry their lengths and their
prompts' categories gets the length-only baseline and per-category tables in `evaluate --ensemble`, `compare`
and a launch's report."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rmsearch.data import CandidateSet, SynthConfig, synth
from rmsearch.data._files import write_gold_folder

CATEGORIES = ["helpful_base", "koala", "oasst"]


def rmsearch(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def text_gold(tmp_path_factory):
    """A 6-d gold folder as `rmsearch data embed` writes one from scored generations."""
    data = synth(SynthConfig(dim=6, train_prompts=120, test_prompts=40, test_responses=12))
    g = np.random.default_rng(0)

    def side(cs):
        lengths = g.integers(20, 2000, cs.gold.shape)
        return CandidateSet.checked(cs.embeddings, cs.gold, names=("e", "g"), lengths=lengths,
                                    category=np.arange(cs.prompts) % 3)

    folder = tmp_path_factory.mktemp("text") / "gold"
    write_gold_folder(folder, "mine", side(data.train), side(data.test), {"name": "mine", "categories": CATEGORIES})
    return folder


def test_evaluate_ensemble_adds_the_length_baseline_and_categories(text_gold, tiny_export, tmp_path):
    r = rmsearch("evaluate", "--ensemble", tiny_export, "--data", text_gold, "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    blob = json.loads((tmp_path / "e.json").read_text())
    names = [e["name"] for e in blob["ensembles"]]
    assert names == [str(tiny_export), "baseline length"]
    assert blob["ensembles"][1]["trained_on"] == "nothing (a fixed rule)"
    rows = blob["categories"]["rows"]
    assert [row["name"] for row in rows[:-1]] == CATEGORIES and sum(row["n"] for row in rows[:-1]) == 40
    assert rows[-1]["n"] == 40 and blob["categories"]["metrics"] == ["gold_final", "bon_auc"]
    out = " ".join(r.stdout.split())
    assert "BoN gold @ N=M per category" in out and "koala" in out and "baseline length" in out


def test_launch_report_has_length_baseline_and_category_tables(text_gold, tmp_path):
    r = rmsearch("launch", "--data", text_gold, "--space", "coste", "--trials", 1, "--study", "t", "--runs",
                 tmp_path / "runs", "--top", 1, "--workers", 1, "--baselines", "none", "--no-select")
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "runs" / "t" / "report" / "report.md").read_text()
    assert "| baseline length: the longer answer wins |" in report
    # the coste export has several members, so best-of-N by its lower bound is a row of its own
    assert "| exported, by its lower bound (mean − 1·std over members) |" in report
    assert "## BoN gold @ N=M per category (test split)" in report
    assert "| oasst |" in report and "mean over categories, weighted by prompts" in report
    assert "length" in " ".join(r.stdout.split())  # the comparison with the length rule is printed
