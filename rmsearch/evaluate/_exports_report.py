"""The result of scoring exports (`evaluate_exports`) as a table, its legend and facts, and a report folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rmsearch.evaluate._report import (
    COLUMNS, check_report_target, gao_lines, markdown_table, plot_curves, plot_reliability,
)

ORDER = ("gold_final", "gold_peak", "peak_n", "drop", "gain", "bon_auc", "spearman", "uncertainty_error_spearman",
         "pair_accuracy", "pair_nll", "pair_ece", "pair_nll_calibrated", "pair_ece_calibrated", "pair_brier",
         "lower_ce", "upper_ce", "confident_true", "confident_false", "ranking_score")
EXTRA_LABELS = {"bon_auc": "BoN AUC (mean over log N)", "uncertainty_error_spearman": "uncertainty–error ρ",
                "pair_ece": "pair ECE", "pair_nll_calibrated": "pair NLL at T", "pair_ece_calibrated": "pair ECE at T",
                "pair_brier": "pair Brier", "lower_ce": "lower-bound CE", "upper_ce": "upper-bound CE",
                "confident_true": "confident true", "confident_false": "confident false",
                "ranking_score": "ranking score"}


def labels() -> dict[str, str]:
    return {**dict(COLUMNS), **EXTRA_LABELS}


def _fmt(key: str, v: float, signed: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    if key == "peak_n":
        return f"{v:+.0f}" if signed else f"{v:.0f}"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def table_rows(blob: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the one table: a row per metric; per entry its value [95% interval], and for every entry
    after the first its paired difference to the first [95% interval] (* where the interval excludes 0)."""
    entries = blob["ensembles"]
    first = entries[0]["name"]
    header = ["metric", entries[0]["name"]]
    for e in entries[1:]:
        header += [e["name"], f"{e['name']} − {first}"]
    names = labels()
    keys = [k for k in ORDER if any(k in e["metrics"] for e in entries)]
    rows = []
    for k in keys:
        row = [names.get(k, k)]
        for i, e in enumerate(entries):
            row.append(_cell(k, e["metrics"].get(k)))
            if i:
                row.append(_diff_cell(k, (e["difference_to_first"] or {}).get(k)))
        rows.append(row)
    return header, rows


def _cell(key: str, m: dict | None) -> str:
    return "–" if m is None else f"{_fmt(key, m['value'])} [{_fmt(key, m['low'])}, {_fmt(key, m['high'])}]"


def _diff_cell(key: str, d: dict | None) -> str:
    if d is None:
        return "–"
    excludes = d["low"] > 0 or d["high"] < 0
    return f"{_fmt(key, d['diff'], True)} [{_fmt(key, d['low'], True)}, {_fmt(key, d['high'], True)}]" + \
        (" *" if excludes else "")


def category_tables(categories: dict | None, names: list[str]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per metric of a `category_intervals` result for entries `names`: a row per category
    and the weighted mean; each entry's value [95% interval], and after the first its paired difference to it."""
    if not categories:
        return []
    out = []
    for key in categories["metrics"]:
        header = ["category", categories["units"]] + [names[0]]
        for name in names[1:]:
            header += [name, f"{name} − {names[0]}"]
        rows = []
        for row in categories["rows"]:
            cells = [row["name"], f"{row['n']:,}"]
            for i, (value, diff) in enumerate(zip(row["values"], row["differences"])):
                cells.append(_cell(key, value.get(key)))
                if i:
                    cells.append(_diff_cell(key, (diff or {}).get(key)))
            rows.append(cells)
        out.append((f"{labels().get(key, key)} per category", header, rows))
    return out


def legend(blob: dict) -> list[str]:
    out = [f"intervals: {blob['interval']}"]
    if len(blob["ensembles"]) > 1:
        out.append("* the paired 95% interval of the difference excludes 0")
    out.append(blob["calibration"])
    if blob.get("bounds"):
        out.append(blob["bounds"])
    if any(k == "uncertainty_error_spearman" for e in blob["ensembles"] for k in e["metrics"]):
        out.append("uncertainty–error ρ: per prompt, Spearman of the ensemble's uncertainty (std over members of "
                   "standardized scores) with the proxy's error |z(proxy) − z(gold)| (z over the prompt's "
                   "candidates), averaged; > 0 means uncertainty is high where the proxy is wrong")
    return out


def facts(blob: dict) -> list[tuple[str, str]]:
    """(what, text) lines above the table: the data, what was scored, each ensemble, the notes."""
    d = blob["data"]
    out = [("data", f"{d['spec']} ({d['kind']}, fingerprint {d['fingerprint']})"), ("scored", blob["scored"])]
    for e in blob["ensembles"]:
        t = e["temperature"]
        out.append((e["name"], f"{e['source']}; trained on {e['trained_on']}"
                    + (f"; calibration temperature T = {t:.3f}" if t else "")))
    return out + [("note", n) for n in blob["notes"]]


def write_result_report(out: Path, option: str, json_name: str, title: str, blob: dict) -> Path:
    """A report folder: report.md (the table, legend and figures), `json_name` (the blob), bon.png (gold data)
    and calibration.png (reliability diagrams); an earlier such folder is replaced whole, anything else refused."""
    from rmsearch.files import atomic_dir, write_json

    check_report_target(out, option, files=("report.md", json_name))
    header, rows = table_rows(blob)
    entries = blob["ensembles"]
    with atomic_dir(out, option) as tmp:
        md = [f"# {title}", ""] + [f"- **{what}**: {text}" for what, text in facts(blob)]
        md += ["", f"## Split {blob['split']}: {blob['n_units']:,} {blob['units']}, value [95% interval]", "",
               markdown_table(header, rows)]
        for heading, cat_header, cat_rows in category_tables(blob.get("categories"), [e["name"] for e in entries]):
            md += ["", f"## {heading}", "", markdown_table(cat_header, cat_rows)]
        md += [""] + [line + "." for line in legend(blob)] + [""]
        curves = {e["name"]: e["curve"] for e in entries if e.get("curve")}
        split = {"all": "test", "test": "test", "val": "validation"}[blob["split"]]
        where = {"all": "all prompts of the test split" if curves else "all pairs"}.get(blob["split"], f"{split} split")
        if curves:  # plot_curves adds "(<split> split)" to the title
            plot_curves(curves, tmp / "bon.png", f"Best-of-N on {blob['data']['name']}"
                        + (", all prompts" if blob["split"] == "all" else ""), split)
            md += [f"## Best-of-N curves ({where})", "", f"![BoN gold and proxy against KL, {where}](bon.png)", ""]
            md += gao_lines(curves)
        reliabilities = {}
        for e in entries:
            reliabilities[e["name"]] = e["reliability"]
            if e.get("reliability_at_temperature"):
                reliabilities[f"{e['name']} at T = {e['temperature']:.3f}"] = e["reliability_at_temperature"]
        plot_reliability(reliabilities, tmp / "calibration.png",
                         f"Reliability of P(a ≻ b) = σ(s_a − s_b) on {blob['data']['name']}", where)
        md += [f"## Calibration ({where})", "", f"![reliability diagram, {where}](calibration.png)", ""]
        (tmp / "report.md").write_text("\n".join(md))
        write_json(tmp / json_name, blob)
    return out
