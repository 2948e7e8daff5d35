"""`rmsearch reproduce active`: the labels-saved arithmetic on constructed curves, the quick run end to end through
the command (report, verdicts with intervals, one row per round, figures), and bad budgets."""

import csv
import json
import re

import numpy as np
import pytest

from rmsearch.errors import RMSearchError
from rmsearch.reproduce import GRID_STUDIES, GridOptions, cmd_reproduce
from rmsearch.reproduce._active import INFORMED, PAIRINGS, QUICK_SCHEDULE, RULES, ActiveStudy, reach, saving
from tests.reproduce.conftest import reproduce_args

PNG = b"\x89PNG\r\n\x1a\n"
LABELS = np.array([20.0, 40.0, 60.0, 80.0])


def _args(out, *extra):
    return reproduce_args("active", out, *extra)


def test_reach_interpolates_between_rounds_and_is_nan_where_never_reached():
    values = np.array([0.2, 0.4, 0.8, 0.9])
    assert reach(LABELS, values, 0.6) == pytest.approx(50.0)
    assert reach(LABELS, values, 0.1) == 20.0  # reached by the seed batch already
    assert np.isnan(reach(LABELS, values, 0.95))
    # a curve that falls back below the target after reaching it: the first crossing counts
    assert reach(LABELS, np.array([0.2, 0.7, 0.5, 0.6]), 0.6) == pytest.approx(36.0)


def test_saving_is_positive_when_the_rule_gets_there_first_and_symmetric_when_it_never_does():
    base = np.array([0.2, 0.4, 0.6, 0.8])
    assert saving(LABELS, np.array([0.2, 0.6, 0.8, 0.9]), base) == pytest.approx(20.0)
    assert saving(LABELS, base, base) == 0.0
    # the rule ends at 0.6: random got there at 60 labels, 20 before the end
    assert saving(LABELS, np.array([0.2, 0.3, 0.5, 0.6]), base) == pytest.approx(-20.0)
    assert saving(LABELS, base, np.array([0.2, 0.3, 0.5, 0.6])) == pytest.approx(20.0)


def test_the_study_is_registered_and_refuses_a_single_budget():
    assert GRID_STUDIES["active"] is ActiveStudy
    with pytest.raises(RMSearchError, match="needs at least two budgets"):
        ActiveStudy(GridOptions(data=None, quick=True, seeds=2, budgets=(40,))).schedule


def test_a_final_budget_the_pool_cannot_hold_is_refused_before_training(tmp_path):
    with pytest.raises(RMSearchError, match="needs a pool of at least 20000 candidate pairs.*gives 1000"):
        cmd_reproduce(_args(tmp_path / "r", "--quick", "--budgets", "10,5000"))


def test_quick_end_to_end(tmp_path, ray_module, capsys):
    out = tmp_path / "active"
    assert cmd_reproduce(_args(out, "--quick")) == 0
    assert "quick mode: a tiny world" in capsys.readouterr().out
    md = (out / "report.md").read_text()
    lines = [line for line in md.splitlines() if re.match(r"- \([a-z]+-(saves|final|saves-spearman|cross)\) ", line)]
    assert len(lines) == len(INFORMED) * len(PAIRINGS) * 3 + len(RULES)
    for line in lines:
        assert re.search(r"\*\*(holds|contradicted|inconclusive)\*\*", line), line
        assert re.search(r"[+-]\d+\.\d{3} \[[+-]\d+\.\d{3}, [+-]\d+\.\d{3}\] over 2 seeds", line), line
    assert "## Labels needed to match random's quality after 40 labels" in md
    blob = json.loads((out / "results.json").read_text())
    rows = blob["rows"]
    assert blob["schedule"] == list(QUICK_SCHEDULE)
    assert len(rows) == len(RULES) * len(PAIRINGS) * 2 * len(QUICK_SCHEDULE)
    for rule in RULES:
        for pairing in PAIRINGS:
            mine = [r for r in rows if (r["rule"], r["pairing"], r["seed"]) == (rule, pairing, 0)]
            assert [r["labels"] for r in mine] == list(QUICK_SCHEDULE)
            assert [r["row"] for r in mine] == [f"{n} labels" for n in QUICK_SCHEDULE]
            assert all(0 < r["gold_final"] <= r["oracle"] and -1 <= r["spearman"] <= 1 for r in mine)
    # round 0 is the same random seed batch for every rule of a seed and pairing; later rounds differ by rule
    first = {r["rule"]: r["gold_final"] for r in rows if (r["pairing"], r["seed"], r["round"]) == ("within", 0, 0)}
    assert len(set(first.values())) == 1
    last = {r["rule"]: r["spearman"] for r in rows if (r["pairing"], r["seed"], r["round"]) == ("within", 0, 3)}
    assert len(set(last.values())) == len(RULES)
    # the verdicts are recomputed from the saved results alone
    study = ActiveStudy(GridOptions(data=None, quick=True, seeds=2))
    assert [v.as_dict()["values"] for v in study.verdicts(blob)] == [v["values"] for v in blob["verdicts"]]
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(RULES) * len(PAIRINGS) * len(QUICK_SCHEDULE)
    for name in ("active_gold_final.png", "active_spearman.png"):
        assert (out / name).read_bytes()[:8] == PNG and f"]({name})" in md
