"""The report folder as written: report.md's tables and footnote, the figures and the titles they carry (the PNG
Title text, which matplotlib writes with the figure's title), for gold data and for pair data, in the two
shapes the writers use: `rmsearch evaluate` (a `single` row and each aggregation) and the search's final
report (trial rows carrying the objective, a stress section)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rmsearch.data import TaskConfig, load_data, make_task, write_pair_folder
from rmsearch.evaluate import compare_aggregations, evaluate_split, gao_fit, plot_curves, write_report
from rmsearch.evaluate._report import metrics_table
from rmsearch.search._objectives import get_objective

BON_LABELS = ("BoN gold @ N=M", "peak gold", "peak N", "drop", "gain over N=1", "Spearman")


def _title(png) -> str:
    with Image.open(png) as im:
        return im.text["Title"]


def _header(md: str, heading: str) -> list[str]:
    """Column labels of the table under `## heading`."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {heading}"))
    row = next(line for line in lines[start + 1:] if line.startswith("| |"))
    return [c.strip() for c in row.strip("|").split("|")][1:]


GAO_HEADER = ["Gao α", "Gao β", "fitted peak N", "fitted peak gold", "fit R²"]


def gao_rows(md: str) -> list[dict]:
    """Every row of every Gao fit table in `md` (name -> cells by column label), each checked to hold finite
    numbers: α, β, R² always, the peak N and gold unless there is no peak ("none" / "–")."""
    lines, rows = md.splitlines(), []
    for i, line in enumerate(lines):
        if line.startswith("| | Gao α |"):
            assert [c.strip() for c in line.strip("|").split("|")][1:] == GAO_HEADER
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip("|").split("|")]
                cell = dict(zip(["name"] + GAO_HEADER, cells))
                assert all(np.isfinite(float(cell[k])) for k in ("Gao α", "Gao β", "fit R²"))
                peak = cell["fitted peak N"].removesuffix(" (> M)").replace(",", "")
                assert peak == "none" or np.isfinite(float(peak)) and float(peak) >= 1
                gold = cell["fitted peak gold"]
                assert gold == "–" if peak == "none" else np.isfinite(float(gold))
                rows.append(cell)
    return rows


def _split_eval(task, scores: dict, objective=None) -> dict:
    """What `evaluate_members` gives: each split evaluated, the objective added where one is given."""
    out = {}
    for name, s in scores.items():
        split = getattr(task, name)
        out[name] = evaluate_split(s, split)
        if objective is not None:
            out[name]["metrics"]["objective"] = float(objective(s, split))
    return out


def _random_scores(task, seed):
    g = np.random.default_rng(seed)
    return {"val": g.standard_normal(len(task.val)), "test": g.standard_normal(len(task.test))}


def _members(task, k=3, seed=0):
    g = np.random.default_rng(seed)
    val, test = g.standard_normal((k, len(task.val))), g.standard_normal((k, len(task.test)))
    return np.tile([0.0, 1.0], (k, 1)), val, test


@pytest.fixture(scope="module")
def pair_task(tmp_path_factory):
    g = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("pairs")
    write_pair_folder(folder, g.standard_normal((300, 6)).astype(np.float32),
                      g.standard_normal((300, 6)).astype(np.float32), {"name": "toy pairs"})
    return make_task(load_data(folder), TaskConfig(folds=0))


def test_evaluate_report_on_gold_names_the_split_and_explains_single(small_task, tmp_path):
    results = compare_aggregations(small_task, *_members(small_task), standardized=False)
    out = write_report(tmp_path / "r", "Robustness of 3 × mlp on synth", results, {"data": "synth"})
    md = (out / "report.md").read_text()
    assert "| single |" in md
    assert "`single` is each member evaluated alone" in md
    assert "BoN gold is the exact expected gold reward" in md
    header = _header(md, "Test split")
    assert header[:2] == ["BoN gold @ N=M", "peak gold"] and "objective" not in header  # no objective here
    assert _title(out / "bon.png") == "Robustness of 3 × mlp on synth (test split)"
    assert [r["name"] for r in gao_rows(md)] == list(results)  # a Gao fit per curve of the figure
    assert md.count("Gao et al. (2022)'s best-of-N law") == 1 and "d = √(log N − (N−1)/N)" in md
    curve = results["mean"]["test"]["curve"]
    row = next(r for r in gao_rows(md) if r["name"] == "mean")
    assert float(row["Gao α"]) == pytest.approx(gao_fit(curve["n"], curve["gold"]).alpha, rel=1e-2, abs=1e-3)


def test_search_report_has_an_objective_column_stress_title_and_no_single_footnote(small_task, tmp_path):
    objective = get_objective(None, "gold")
    results = {f"trial {i}: 3×mlp mean": _split_eval(small_task, _random_scores(small_task, i), objective)
               for i in range(2)}
    stress = {f"flip {r:.0%}": _split_eval(small_task, _random_scores(small_task, 10 + i))
              for i, r in enumerate((0.05, 0.4))}
    sections = [{"heading": "Label-noise stress of trial 0's configuration", "file": "stress.png",
                 "figure_title": "Label-noise stress of trial 0: 3×mlp mean",
                 "text": 'Trial 0\'s configuration ({"head": "mlp"}) retrained.', "results": stress}]
    out = write_report(tmp_path / "r", "Search s: top 2 trials", results, {"study": "s"}, sections=sections)
    md = (out / "report.md").read_text()

    for heading in ("Test split", "Validation split"):
        header = _header(md, heading)
        assert header[0] == "objective" and "BoN gold @ N=M" in header
    value = results["trial 0: 3×mlp mean"]["test"]["metrics"]["objective"]
    assert f"| trial 0: 3×mlp mean | {value:.3f} |" in md
    assert "objective" not in _header(md, "Label-noise stress")  # the stress rows carry no objective
    assert "single" not in md  # no `single` row, so no footnote about one
    assert "objective is the search objective" in md

    assert {"bon.png", "stress.png"} <= {p.name for p in out.iterdir()}
    assert _title(out / "bon.png") == "Search s: top 2 trials (test split)"
    assert _title(out / "stress.png") == "Label-noise stress of trial 0: 3×mlp mean (test split)"
    assert "![Label-noise stress of trial 0: 3×mlp mean, test split](stress.png)" in md
    names = [r["name"] for r in gao_rows(md)]  # the test curves' fits, then the stress section's
    assert names == list(results) + list(stress) and md.count("Gao et al. (2022)'s best-of-N law") == 1


def test_pair_data_report_shows_no_bon_columns_or_bon_footnote(pair_task, tmp_path):
    assert not pair_task.has_gold
    objective = get_objective(None, "pairs")
    results = {"trial 0: 3×mlp mean": _split_eval(pair_task, _random_scores(pair_task, 0), objective),
               "baseline linear: 1×linear mean": _split_eval(pair_task, _random_scores(pair_task, 1), objective)}
    out = write_report(tmp_path / "r", "Search p: top 1 trials", results, {"study": "p"})
    md = (out / "report.md").read_text()
    for heading in ("Test split", "Validation split"):
        header = _header(md, heading)
        assert header[0] == "objective" and {"pair acc.", "pair NLL"} <= set(header)
        assert not set(header) & set(BON_LABELS)
    assert "BoN" not in md and "Spearman" not in md and "single" not in md and "Gao" not in md
    assert "pair acc./NLL are on held-out labelled pairs." in md
    assert not {"bon.png", "curves.csv"} & {p.name for p in out.iterdir()}  # no curves without gold


def test_bon_plot_draws_each_gold_curves_gao_fit_dashed_in_its_colour(small_task, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    results = compare_aggregations(small_task, *_members(small_task), standardized=False)
    curves = {name: r["test"]["curve"] for name, r in results.items()}
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to look at its lines
    plot_curves(curves, tmp_path / "bon.png", "t")
    gold_ax = figures[0].axes[0]
    data = {line.get_label(): line for line in gold_ax.lines if not line.get_label().startswith("_")}
    fits = [line for line in gold_ax.lines if line.get_label().startswith("_")]
    assert set(data) == set(curves) and len(fits) == len(curves)
    for (name, c), fit_line in zip(curves.items(), fits):
        assert fit_line.get_color() == data[name].get_color()
        assert fit_line.get_linestyle() == (":" if name == "single" else "--")
        fit = gao_fit(c["n"], c["gold"])
        n = np.geomspace(c["n"][0], c["n"][-1], 200)
        assert np.allclose(fit_line.get_ydata(), fit.predict(n))
        assert fit_line.get_xdata()[0] == c["kl"][0] and fit_line.get_xdata()[-1] == pytest.approx(c["kl"][-1])
    assert "Gao et al. fit, d·(α − β·d)" in [t.get_text() for t in gold_ax.get_legend().get_texts()]
    monkeypatch.undo()
    plt.close(figures[0])


def test_a_metric_missing_or_nan_in_every_row_gets_no_column():
    rows = {"a": {"gold_final": float("nan"), "drop": None, "pair_accuracy": 0.61, "pair_nll": 0.7},
            "b": {"gold_final": float("nan"), "pair_accuracy": 0.6}}
    table = metrics_table(rows)
    header = table.splitlines()[0]
    assert not any(label in header for label in BON_LABELS)
    assert "pair acc." in header and "pair NLL" in header
    assert table.splitlines()[3] == "| b | 0.600 | – |"  # a cell one row lacks is a dash, not empty


@pytest.mark.slow
def test_rmsearch_evaluate_on_pair_data(tmp_path):
    """`rmsearch evaluate` end to end on a pair folder: tables without BoN columns, the `single` footnote (its
    report has a `single` row), no figure."""
    g = np.random.default_rng(4)
    folder = tmp_path / "pairs"
    w = g.standard_normal(6)
    a, b = g.standard_normal((300, 6)).astype(np.float32), g.standard_normal((300, 6)).astype(np.float32)
    swap = (a - b) @ w < 0
    a[swap], b[swap] = b[swap].copy(), a[swap].copy()
    write_pair_folder(folder, a, b, {"name": "toy"})
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "rmsearch", "evaluate", "--data", str(folder), "--folds", "0",
                        "--set", "members=3", "--set", "mlp.hidden=[8]", "--set", "mlp.epochs=3", "--out", str(out),
                        "--json", str(tmp_path / "m.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    header = _header(md, "Test split")
    assert {"pair acc.", "pair NLL"} <= set(header) and not set(header) & set(BON_LABELS + ("objective",))
    assert "| single |" in md and "`single` is each member evaluated alone" in md
    assert "BoN" not in md
    assert not {"bon.png", "curves.csv"} & {p.name for p in out.iterdir()}
    assert {"pair_accuracy", "pair_nll"} <= set(json.loads((tmp_path / "m.json").read_text())["mean"])
    assert "test split" in r.stdout and "BoN" not in r.stdout
