"""Bounds from the command line: `score --bounds` writes (reward, lower, upper) rows of a laplace export, and
`compare --lower-bound` adds best-of-N by each export's lower bound with the bound metrics."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
from rmsearch.data._files import write_gold_folder


def rmsearch(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def laplace_export(tmp_path_factory):
    from rmsearch.ensembles import Aggregation, fit_group
    from rmsearch.export import ensemble_from_groups, write_export
    from rmsearch.heads import LaplaceConfig

    data = synth(SynthConfig(dim=6, train_prompts=100, test_prompts=12, test_responses=10))
    root = tmp_path_factory.mktemp("bounds")
    write_gold_folder(root / "gold", "tiny", data.train, data.test, {"name": "tiny"})
    group = fit_group(make_task(data, TaskConfig()), LaplaceConfig(), (0,))
    ens = ensemble_from_groups([group], aggregation=Aggregation("lcb", 1.0), dim=6)
    ens.beta = 2.0
    return write_export(root / "ens", ens, metrics={}, dataset={}), root / "gold"


def test_score_bounds(laplace_export, tmp_path):
    from rmsearch import load_ensemble

    folder, _ = laplace_export
    X = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    r = rmsearch("score", "--ensemble", folder, "--embeddings", tmp_path / "X.npy", "--bounds")
    assert r.returncode == 0, r.stderr
    assert "7 rows of (reward, lower, upper), bounds mean ± 2·std" in r.stdout
    got = np.load(tmp_path / "X.scores.npy")
    np.testing.assert_allclose(got, np.stack(load_ensemble(folder).bounds(X), 1), atol=1e-6)
    r = rmsearch("score", "--ensemble", folder, "--embeddings", tmp_path / "X.npy", "--out", tmp_path / "b.npy",
                 "--bounds", "--beta", "0")
    assert r.returncode == 0, r.stderr
    b = np.load(tmp_path / "b.npy")
    np.testing.assert_allclose(b[:, 1], b[:, 2], atol=1e-6)  # β = 0: both bounds at the mean
    r = rmsearch("score", "--ensemble", folder, "--embeddings", tmp_path / "X.npy", "--out", tmp_path / "c.npy",
                 "--beta", "1")
    assert r.returncode == 2 and "--beta sets the width of --bounds; add --bounds" in r.stderr


def test_compare_lower_bound(laplace_export, tmp_path):
    folder, gold = laplace_export
    r = rmsearch("compare", folder, "--data", gold, "--lower-bound", "--out", tmp_path / "cmp")
    assert r.returncode == 0, r.stderr
    blob = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    names = [e["name"] for e in blob["ensembles"]]
    assert names == [str(folder), f"{folder} by lower bound"]
    metrics = blob["ensembles"][0]["metrics"]
    for key in ("pair_brier", "lower_ce", "upper_ce", "confident_true", "confident_false", "ranking_score"):
        assert metrics[key]["low"] <= metrics[key]["value"] <= metrics[key]["high"], key
    assert "lower-bound CE" in r.stdout and "ranking score" in r.stdout and "bounds: each response's" in r.stdout
    r = rmsearch("evaluate", "--data", gold, "--lower-bound")
    assert r.returncode == 2 and "--lower-bound applies to --ensemble" in r.stderr
