"""A robustness report folder: report.md (metrics table; Gao et al.'s law fitted to each BoN gold curve, `gao_lines`),
bon.png (gold and proxy BoN curves against KL, each gold curve's Gao fit dashed in its colour),
calibration.png (reliability diagrams of P(a ≻ b)), metrics.json and curves.csv. Written to a temporary folder
and moved into place, so a failure leaves nothing half-written and an earlier report in place; a folder that is
not an earlier report is refused."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from rmsearch.errors import RMSearchError
from rmsearch.evaluate._gao import GaoFit, gao_fit
from rmsearch.files import atomic_dir, check_not_cwd, write_json

COLUMNS = [
    ("objective", "objective"),
    ("gold_final", "BoN gold @ N=M"), ("gold_peak", "peak gold"), ("peak_n", "peak N"), ("drop", "drop"),
    ("gain", "gain over N=1"), ("spearman", "Spearman"), ("pair_accuracy", "pair acc."), ("pair_nll", "pair NLL"),
    ("pair_ece", "pair ECE"),
]
"""Metric key and column label, in table order. `objective` is the search objective on the row's split (rows of
a search report carry it); the BoN columns exist only for data with gold rewards."""
BON_KEYS = ("gold_final", "gold_peak", "peak_n", "drop", "gain", "spearman")


def fmt_value(v) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v)


def _has_value(v) -> bool:
    """A metric value worth a cell: not missing, None or NaN."""
    if v is None or v == "":
        return False
    try:
        return not np.isnan(v)
    except TypeError:
        return True


def table_columns(rows: dict[str, dict]) -> list[tuple[str, str]]:
    """The COLUMNS some row has a value for: no column of empty cells (e.g. the BoN columns for pair data, or a
    metric that is NaN in every row)."""
    return [(k, label) for k, label in COLUMNS if any(_has_value(m.get(k)) for m in rows.values())]


def metric_cell(m: dict, key: str) -> str:
    v = m.get(key)
    return fmt_value(v) if _has_value(v) else "–"


def metrics_rows(rows: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """(header, body) of the metrics table: a row per name, a column per metric some row has (`table_columns`)."""
    cols = table_columns(rows)
    return [""] + [label for _, label in cols], [[name] + [metric_cell(m, k) for k, _ in cols]
                                                 for name, m in rows.items()]


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    """A (header, body) table as Markdown; the printed tables of the CLI render the same (header, body)."""
    line = lambda cells: "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"  # noqa: E731
    return "\n".join([line(header), "|---" * len(header) + "|"] + [line(r) for r in body])


def metrics_table(rows: dict[str, dict]) -> str:
    return markdown_table(*metrics_rows(rows))


def plot_curves(curves: dict[str, dict], path: Path, title: str, split: str = "test") -> None:
    """Gold and proxy BoN curves of `curves` (name -> curve) against KL, saved to `path`. The figure's title is
    `title` and the split the curves are on ("test" or "validation"); the PNG carries it as its Title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.lines import Line2D

    full_title = f"{title} ({split} split)"
    fig, (ax_g, ax_p) = plt.subplots(1, 2, figsize=(11, 4.2))
    fits = gao_fits(curves)
    for name, c in curves.items():
        reference = name.startswith(("single", "seed-paper", "baseline seed-paper"))
        style = {"lw": 2.5, "color": "black", "ls": "--"} if reference else {"lw": 1.8}
        line, = ax_g.plot(c["kl"], c["gold"], marker="o", ms=3, label=name, **style)
        ax_p.plot(c["kl"], c["proxy"], marker="o", ms=3, label=name, **style)
        if name in fits:  # the law between the grid's points, at the KL interpolated in log N
            dense = np.geomspace(c["n"][0], c["n"][-1], 200)
            kl = np.interp(np.log(dense), np.log(c["n"]), c["kl"])
            ax_g.plot(kl, fits[name].predict(dense), color=line.get_color(), lw=1.2, ls=":" if reference else "--")
    top = max(c["n"][-1] for c in curves.values())
    for ax, what in ((ax_g, "expected gold reward"), (ax_p, "expected proxy (standardized)")):
        ax.set_xlabel(f"KL(BoN ‖ base) of N of M drawn without replacement\n"
                      f"(exact: Σ w·log(M·w); N = 1 … {top})")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    ax_g.set_title("gold reward of the chosen candidate")
    ax_p.set_title("proxy score of the chosen candidate")
    handles, labels = ax_g.get_legend_handles_labels()
    if fits:
        handles.append(Line2D([], [], color="grey", lw=1.2, ls="--"))
        labels.append("Gao et al. fit, d·(α − β·d)")
    ax_g.legend(handles, labels, fontsize=8)
    fig.suptitle(full_title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Title": full_title})
    plt.close(fig)


def gao_fits(curves: dict[str, dict]) -> dict[str, GaoFit]:
    """name -> Gao et al.'s law fitted to the curve's gold (`gao_fit` on its `n` and `gold`), for every curve
    with the 2+ points at N > 1 a fit needs (a curve over M = 2 candidates has one)."""
    return {name: gao_fit(c["n"], c["gold"]) for name, c in curves.items() if sum(n > 1 for n in c["n"]) >= 2}


GAO_HELP = ("Gao et al. (2022)'s best-of-N law fitted by least squares to each gold curve (dashed in the figure, "
            "dotted for a black reference curve): "
            "gold(N) − gold(1) ≈ d·(α − β·d) with d = √(log N − (N−1)/N), the KL of N draws with replacement (the "
            "figure's x-axis is the exact KL without replacement); α is the initial gain per unit of d, β the "
            "over-optimization coefficient; the fitted peak is at d = α/(2β), its N possibly beyond M (none: β ≤ 0, "
            "still rising); R² is over the curve's points.")


def _peak_cell(fit: GaoFit, top: int) -> str:
    n = fit.peak_n
    if not np.isfinite(n):
        return "none"
    return (f"{n:,.0f}" if n < 1e6 else f"{n:.1e}") + (" (> M)" if n > top else "")


def gao_lines(curves: dict[str, dict], legend: bool = True) -> list[str]:
    """Markdown lines of the Gao fit table (a row per curve: α, β, fitted peak N and gold, R²) and, with
    `legend`, what they mean (`GAO_HELP`); none without a curve to fit."""
    fits = gao_fits(curves)
    if not fits:
        return []
    header = ["", "Gao α", "Gao β", "fitted peak N", "fitted peak gold", "fit R²"]
    body = [[name, f"{f.alpha:.3g}", f"{f.beta:.3g}", _peak_cell(f, curves[name]["n"][-1]),
             fmt_value(f.peak_gold) if np.isfinite(f.peak_gold) else "–", metric_cell({"r2": f.r2}, "r2")]
            for name, f in fits.items()]
    return [markdown_table(header, body), ""] + ([GAO_HELP, ""] if legend else [])


def plot_reliability(reliabilities: dict[str, dict], path: Path, title: str, where: str) -> None:
    """Reliability diagrams of P(a ≻ b) = σ(s_a − s_b) (`rmsearch.evaluate._calibration.reliability`, name ->
    bins) in one figure: observed frequency against mean predicted probability per bin, the diagonal, and the
    share of pairs per bin below; saved to `path`, titled `title` and `where` (e.g. "test split")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full_title = f"{title} ({where})"
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(6, 6.4), height_ratios=(3, 1), sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="perfect calibration")
    width = 1.0 / max(1, len(reliabilities)) * 0.9 / 10
    for i, (name, rel) in enumerate(reliabilities.items()):
        xs = [(x, y) for x, y in zip(rel["mean_p"], rel["observed"]) if x is not None]
        ece = rel.get("ece")
        ax.plot([x for x, _ in xs], [y for _, y in xs], marker="o", ms=4,
                label=f"{name} (ECE {ece:.3f})" if ece is not None else name)
        left = np.asarray(rel["edges"][:-1]) + i * width + 0.005
        ax_n.bar(left, rel["share"], width=width, align="edge", alpha=0.7)
    ax.set_ylabel("observed frequency of a ≻ b")
    ax.set_title(f"{rel['bins']} equal-width bins, each pair in both orders", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax_n.set_xlabel("predicted P(a ≻ b) = σ(s_a − s_b)")
    ax_n.set_ylabel("share of pairs")
    ax_n.set_xlim(0, 1)
    fig.suptitle(full_title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Title": full_title})
    plt.close(fig)


def _footnote(shown: set[str], single: bool) -> str:
    """What the metrics in the tables mean: only the columns shown, and `single` only where such a row is."""
    parts = []
    if single:
        parts.append("`single` is each member evaluated alone, curves averaged over members.")
    metrics = []
    if "objective" in shown:
        metrics.append("objective is the search objective named above, on the table's split")
    if shown & set(BON_KEYS):
        metrics.append("BoN gold is the exact expected gold reward of the proxy's favourite among N candidates drawn "
                       "without replacement, plotted against the exact KL of that procedure, Σ_i w_i log(M·w_i) with "
                       "w_i the probability that proxy rank i is chosen (log M at N=M); drop = peak − final; gain = "
                       "final − gold at N=1; Spearman is per prompt, averaged")
    if "pair_ece" in shown:
        from rmsearch.evaluate._calibration import ECE_HELP

        metrics.append("pair " + ECE_HELP + " (reliability diagram: calibration.png)")
    if shown & {"pair_accuracy", "pair_nll"}:
        metrics.append("pair acc./NLL are on held-out labelled pairs"
                       + (" (gold-labelled for gold data)" if shown & set(BON_KEYS) else ""))
    if metrics:
        parts.append("Metrics: " + "; ".join(metrics) + ".")
    return " ".join(parts)


REPORT_FILES = ("report.md", "metrics.json", "curves.csv")
"""What a report folder holds, besides its PNG figures; report.md and metrics.json mark an earlier report."""


def check_report_target(out: Path, option: str | None = None, files: tuple[str, ...] = REPORT_FILES) -> None:
    """Refuse an `out` that replacing would lose something at: a file, the working directory, or a non-empty
    folder that is not an earlier report (or holds files a report does not write, e.g. the user's notes).
    `option` (e.g. "--out") names the command-line option that chose `out`, for the message. `files` are what
    the report writes besides PNG figures, the first two marking an earlier report (`rmsearch compare` writes
    report.md and compare.json)."""
    out = Path(out)
    where, other = (f"{option} {out}", f"another {option}") if option else (str(out), "another folder")
    check_not_cwd(out, option)
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise RMSearchError(f"{where}: exists and is not a folder; a report is a folder. Choose {other}, or move "
                            f"the file away.")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if not all((out / name).is_file() for name in files[:2]):
        raise RMSearchError(f"{where}: is a folder that is not an earlier rmsearch report (it holds "
                            f"{_names(entries)}); writing the report would replace it. Choose a new or empty "
                            f"folder as {other}, or move its contents away.")
    foreign = [n for n in entries if not ((n in files or n.endswith(".png")) and (out / n).is_file())]
    if foreign:
        raise RMSearchError(f"{where}: is an earlier report but also holds {_names(foreign)}, which a report does "
                            f"not write; replacing the report would delete them. Move them out of the folder, or "
                            f"choose {other}.")


def _names(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def write_report(out: Path, title: str, results: dict[str, dict], context: dict, notes: str = "",
                 sections: list[dict] | None = None, option: str | None = None) -> Path:
    """`results`: name -> {"test": {"metrics", "curve"}, "val": {...}}. `context`: facts for the header and
    metrics.json (data, config, split record summary). `sections`: more test-split comparisons, each
    {"heading", "file" (PNG name), "text", "results"} and optionally "figure_title" (the figure's title, e.g. the
    configuration it shows; default the heading). Figure titles say the split they show. Replaces an earlier
    report at `out` atomically; refuses any other non-empty folder (`check_report_target`; `option` names the
    command-line option for messages)."""
    out = Path(out)
    check_report_target(out, option)
    with atomic_dir(out, option) as tmp:
        test_rows = {name: r["test"]["metrics"] for name, r in results.items()}
        val_rows = {name: r["val"]["metrics"] for name, r in results.items() if "val" in r}
        curves = {name: r["test"]["curve"] for name, r in results.items() if r["test"]["curve"] is not None}
        tables = [test_rows, val_rows]
        md = [f"# {title}", ""]
        md += [f"- **{k}**: {fmt_value(v)}" for k, v in context.items() if not isinstance(v, (dict, list))]
        md += ["", "## Test split (final numbers; not used for any choice)", "", metrics_table(test_rows), ""]
        if val_rows:
            md += ["## Validation split (used for selection)", "", metrics_table(val_rows), ""]
        if curves:
            plot_curves(curves, tmp / "bon.png", title, "test")
            md += ["## Best-of-N curves (test split)", "", "![BoN gold and proxy against KL, test split](bon.png)",
                   ""] + gao_lines(curves)
            with open(tmp / "curves.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["name", "n", "kl", "gold", "proxy"])
                for name, c in curves.items():
                    for row in zip(c["n"], c["kl"], c["gold"], c["proxy"]):
                        w.writerow([name, *row])
        reliabilities = {name: r["test"]["reliability"] for name, r in results.items() if r["test"].get("reliability")}
        if reliabilities:
            plot_reliability(reliabilities, tmp / "calibration.png", f"Calibration: {title}", "test split")
            md += ["## Calibration of P(a ≻ b) (test split)", "",
                   "![reliability diagram, test split](calibration.png)", ""]
        for sec in sections or []:
            rows = {name: r["test"]["metrics"] for name, r in sec["results"].items()}
            tables.append(rows)
            md += [f"## {sec['heading']}", "", sec.get("text", ""), "", metrics_table(rows), ""]
            sec_curves = {n: r["test"]["curve"] for n, r in sec["results"].items() if r["test"]["curve"] is not None}
            if sec_curves:
                figure_title = sec.get("figure_title") or sec["heading"]
                plot_curves(sec_curves, tmp / sec["file"], figure_title, "test")
                md += [f"![{figure_title}, test split]({sec['file']})", ""] + gao_lines(sec_curves, legend=False)
        if notes:
            md += [notes, ""]
        shown = {k for rows in tables if rows for k, _ in table_columns(rows)}
        single = any(name == "single" or name.startswith("single ") for rows in tables for name in rows)
        footnote = _footnote(shown, single)
        if footnote:
            md += [footnote, ""]
        (tmp / "report.md").write_text("\n".join(md))
        blob = {"context": context, "results": results,
                "sections": {sec["heading"]: sec["results"] for sec in sections or []}}
        write_json(tmp / "metrics.json", blob)
    return out
