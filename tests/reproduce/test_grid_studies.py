"""The grid studies (`beyond-bt`, `data-scaling`, `coste`): verdict arithmetic on constructed numbers, the budget
subsample, each study's quick run end to end (report, figures, results), and bad input."""

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from rmsearch.errors import RMSearchError
from rmsearch.reproduce import GRID_STUDIES, cmd_reproduce
from rmsearch.reproduce._grid import Cell, cell_task, differences, per_seed
from rmsearch.reproduce._scaling import exponents, power_law
from rmsearch.reproduce._verdicts import Verdict, seed_interval
from tests.reproduce.conftest import reproduce_args

PNG = b"\x89PNG\r\n\x1a\n"


_args = reproduce_args


# --- verdict arithmetic -------------------------------------------------------------------------------------------

def test_seed_interval_is_students_t():
    v = [0.3, 0.5, 0.1, 0.4, 0.2]
    mean, lo, hi = seed_interval(v)
    half = stats.t.ppf(0.975, 4) * np.std(v, ddof=1) / np.sqrt(5)
    assert mean == pytest.approx(0.3) and lo == pytest.approx(0.3 - half) and hi == pytest.approx(0.3 + half)
    assert np.isnan(seed_interval([1.0])[1])


def test_verdicts_read_the_interval():
    assert Verdict("a", "c", "e", (0.3, 0.5, 0.1, 0.4, 0.2)).verdict == "holds"
    assert Verdict("a", "c", "e", (-0.3, -0.5, -0.1, -0.4, -0.2)).verdict == "contradicted"
    assert Verdict("a", "c", "e", (0.3, -0.5, 0.1, 0.4, -0.2)).verdict == "inconclusive"
    assert Verdict("a", "c", "e", (0.3,)).verdict == "not enough seeds"
    # a claim that the effect is below a threshold
    below = Verdict("c", "c", "e", (0.01, 0.02, 0.0, 0.03), direction=-1, threshold=0.1)
    assert below.verdict == "holds" and below.holds_in == 4
    line = Verdict("b", "claim", "x − y", (0.3, 0.5, 0.1, 0.4, 0.2), scope="mlp").line()
    assert line.startswith("- (b) [mlp] claim: **holds**. x − y > 0: +0.300 [+0.104, +0.496] over 5 seeds")


def test_per_seed_means_and_differences():
    rows = [{"seed": s, "head": h, "row": "single", "gold_final": g}
            for s, h, g in [(0, "a", 1.0), (0, "a", 3.0), (1, "a", 2.0), (0, "b", 0.5), (1, "b", 1.5), (1, "c", 9.0)]]
    value = lambda r: r["gold_final"]  # noqa: E731
    assert per_seed(rows, value, head="a") == {0: 2.0, 1: 2.0}
    assert per_seed(rows, value, head=("a", "b")) == {0: pytest.approx(1.5), 1: 1.75}
    assert differences(per_seed(rows, value, head="a"), per_seed(rows, value, head="b")) == (1.5, 0.5)


def test_power_law_recovers_the_exponent():
    budgets = np.array([5000, 10000, 20000, 40000])
    b, c = power_law(budgets, 3.0 * budgets ** -0.4)
    assert b == pytest.approx(0.4, abs=1e-9) and c == pytest.approx(3.0, rel=1e-9)
    assert np.isnan(power_law(budgets, [0.1, 0.0, 0.05, 0.02])[0])  # a zero gap has no logarithm
    rows = [{"head": "mlp", "flip_rate": 0.05, "seed": 0, "budget": int(n), "oracle": 2.0,
             "gold_final": 2.0 - 0.7 * n ** -0.25, "pair_accuracy": 1 - 0.5 * n ** -0.1} for n in budgets]
    fit = exponents(rows, "gold")
    assert fit["mlp", 0.05][0] == pytest.approx(0.25, abs=1e-9)
    assert exponents(rows, "pair")["mlp", 0.05][0] == pytest.approx(0.1, abs=1e-9)


def test_budget_subsample_keeps_exactly_the_budget():
    from rmsearch.data import Annotator, SynthConfig, synth

    data = synth(SynthConfig(dim=6, train_prompts=100, test_prompts=4, test_responses=10))
    cell = Cell((("head", "linear"),), {"kind": "linear"}, Annotator(flip_rate=0.1), budget=300)
    task = cell_task(data, cell, seed=3)
    assert len(task.train) + len(task.stop) == 300
    assert len(task.stop) == round(300 * 0.1)  # early stopping keeps its share of prompts' pairs
    again = cell_task(data, cell, seed=3)
    assert np.array_equal(task.train.a, again.train.a)  # the subsample is the seed's
    with pytest.raises(RMSearchError, match=r"annotation budget 5000 pairs: the data gives only 1000 labelled "
                                            r"pairs at 10 pairs per prompt\. Use smaller --budgets"):
        cell_task(data, Cell(cell.key, cell.head, cell.annotator, budget=5000), seed=0)


# --- each study, quick, end to end --------------------------------------------------------------------------------

VERDICT_LINE = re.compile(r"^- \([abc]\) \[[^\]]+\] .+: \*\*(holds|contradicted|inconclusive)\*\*\. .+ [<>] [\d.]+: "
                          r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\] over 2 seeds", re.M)


@pytest.mark.parametrize("study, keys, figure, rows", [
    ("beyond-bt", {"a": 2, "b": 2, "c": 4}, "gold_vs_noise.png", 3 * 2 * 2 * 1 * 2),
    ("data-scaling", {"a": 3, "b": 3}, "scaling.png", 3 * 2 * 3 * 2),
    ("coste", {"a": 4, "b": 4, "c": 2}, "coste.png", 2 * 2 * (1 + 5 * 6)),
])
def test_quick_study(study, keys, figure, rows, tmp_path, ray_module, capsys):
    out = tmp_path / study
    assert cmd_reproduce(_args(study, out, "--quick")) == 0
    shown = capsys.readouterr().out
    assert "quick mode: a tiny world" in shown and f"report: {out / 'report.md'}" in shown
    md = (out / "report.md").read_text()
    found = VERDICT_LINE.findall(md)
    assert len(found) == sum(keys.values()), md
    for key, n in keys.items():
        assert len(re.findall(rf"^- \({key}\) ", md, re.M)) == n
        assert len(re.findall(rf"^\({key}\) \[", shown, re.M)) == n  # printed with its scope
    assert (out / figure).read_bytes()[:8] == PNG and f"]({figure})" in md
    # Gao et al.'s law for every BoN curve: the generic per-cell table, or coste's own per aggregation
    gao = "## Over-optimization with 6 members: Gao et al.'s fit" if study == "coste" else \
        "## Over-optimization: Gao et al.'s law per cell"
    assert gao in md and re.search(r"\| -?\d\.\d{3} ± \d\.\d{3} \| (none|> 1e\+09|\d+)", md.split(gao)[1]), md
    blob = json.loads((out / "results.json").read_text())
    assert blob["study"] == study and len(blob["rows"]) == rows
    assert {r["seed"] for r in blob["rows"]} == {0, 1}
    for r in blob["rows"]:
        assert np.isfinite(r["gold_final"]) and r["oracle"] >= r["gold_final"] - 1e-9
        assert np.isfinite(r["gao_alpha"]) and np.isfinite(r["gao_beta"])
    # the verdicts in the file are recomputed from the rows: each mean is the mean of its per-seed values
    for v in blob["verdicts"]:
        assert v["mean"] == pytest.approx(np.mean(v["values"])) and v["seeds"] == 2
    with open(out / "results.csv") as f:
        summary = list(csv.DictReader(f))
    assert all(r["seeds"] == "2" for r in summary) and len(summary) == rows // 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_beyond_bt_pairs_and_budgets(tmp_path, ray_module):
    out = tmp_path / "bbt"
    assert cmd_reproduce(_args("beyond-bt", out, "--quick", "--budgets", "300,1200")) == 0
    blob = json.loads((out / "results.json").read_text())
    assert sorted({r["budget"] for r in blob["rows"]}) == [300, 1200]
    assert {r["train_pairs"] for r in blob["rows"]} == {300, 1200}  # training + early stopping = the budget
    assert {r["pairing"] for r in blob["rows"]} == {"within", "cross"}
    assert "| mlp | 40% | " in (out / "report.md").read_text()


# --- bad input: exit 2 with the reason, before any work -------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["coste", "--budgets", "100"], "--budgets: coste does not sweep annotation budgets"),
    (["beyond-bt", "--members", "3"], "--members: beyond-bt sets its own ensemble sizes"),
    (["data-scaling", "--seeds", "1"], "--seeds 1: a verdict needs an interval over at least 2 seeds"),
    (["data-scaling", "--budgets", "5k"], "--budgets 5k: give whole numbers of labelled pairs"),
    (["seed-ensembles", "--budgets", "100"], "--budgets: seed-ensembles trains on every pair"),
    (["beyond-bt", "--quick", "--budgets", "50000"], "annotation budget 50000 pairs: the data gives only 2000"),
])
def test_bad_input_exits_2(argv, message, tmp_path):
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "rmsearch.reproduce", *argv, "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not out.exists()


def test_pair_data_is_refused(tmp_path):
    from rmsearch.data import write_pair_folder

    rng = np.random.default_rng(0)
    write_pair_folder(tmp_path / "pairs", rng.standard_normal((50, 4)).astype(np.float32),
                      rng.standard_normal((50, 4)).astype(np.float32), {"name": "toy"})
    proc = subprocess.run([sys.executable, "-m", "rmsearch.reproduce", "coste", "--data", str(tmp_path / "pairs"), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is a pair dataset" in proc.stderr and "coste study" in proc.stderr


def test_every_grid_study_is_a_cli_choice():
    assert set(GRID_STUDIES) >= {"beyond-bt", "data-scaling", "coste"}
