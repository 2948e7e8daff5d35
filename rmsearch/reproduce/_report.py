"""The case study's report folder: report.md (table + findings), PNG figures (BoN gold against KL, one per noise
level, and gold at N=M against noise), results.csv (one row per head × noise × aggregation), curves.csv and
results.json. Written into a temporary folder beside the target and renamed into place."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from rmsearch.files import atomic_dir, write_json
from rmsearch.reproduce._findings import MIN_SEEDS, findings, verdict_table
from rmsearch.reproduce._study import AGG_LABELS, METRICS, ROW_AGGREGATIONS

MARKER = "results.json"
STYLE = {
    "single": {"color": "black", "ls": "--", "lw": 2.2},
    "mean": {"color": "tab:blue", "lw": 1.8},
    "min": {"color": "tab:red", "lw": 1.8},
    "uwo": {"color": "tab:green", "lw": 1.8},
}
TABLE = [("gold_final", "BoN gold @ N=M"), ("gold_peak", "peak gold"), ("peak_n", "peak N"), ("drop", "drop"),
         ("gao_beta", "Gao β"), ("spearman", "Spearman")]


def _pm(row: dict, key: str) -> str:
    if key not in row:
        return ""
    if key == "peak_n":
        return f"{row[key]:.0f} ± {row[key + '_std']:.0f}"
    return f"{row[key]:.3f} ± {row[key + '_std']:.3f}"


def figure_name(rate: float) -> str:
    return f"bon_flip{round(rate * 100):02d}.png"


def results_table(rows: list[dict]) -> str:
    head = ["head", "label flips", "label error", "aggregation", *(label for _, label in TABLE)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["head"], f"{r['flip_rate']:.0%}", f"{r['label_error']:.1%}", AGG_LABELS[r["aggregation"]],
                 *(_pm(r, k) for k, _ in TABLE)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_noise_level(curves: dict, heads, rate: float, pool: int, path: Path) -> None:
    """One figure per noise level: a subplot per head type, a curve per single/mean/min/uwo, each with Gao et al.'s
    fitted law (dotted)."""
    from rmsearch.evaluate import gao_fit

    plt = _plt()
    cols = min(2, len(heads))
    nrows = -(-len(heads) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.6 * cols, 3.9 * nrows), squeeze=False, sharey=True)
    for ax, head in zip(axes.ravel(), heads):
        for agg in ROW_AGGREGATIONS:
            c = curves[(head, rate, agg)]
            kl, gold, std = np.array(c["kl"]), np.array(c["gold"]), np.array(c["gold_std"])
            ax.plot(kl, gold, marker="o", ms=2.5, label=AGG_LABELS[agg], **STYLE[agg])
            fit = gao_fit(c["n"], gold)  # Gao et al.'s law, drawn thin and dotted in the curve's colour
            ax.plot(kl, fit.predict(c["n"]), ls=":", lw=1.2, color=STYLE[agg]["color"])
            if std.any():
                ax.fill_between(kl, gold - std, gold + std, color=STYLE[agg]["color"], alpha=0.12, lw=0)
        ax.set_title(head)
        ax.grid(alpha=0.3)
        ax.set_xlabel(f"KL(BoN ‖ base) of N of M drawn without replacement   (N = 1 … {pool})", fontsize=9)
        ax.set_ylabel("expected gold reward")
        ax.legend(fontsize=8, loc="lower right")
    for ax in axes.ravel()[len(heads):]:
        ax.set_visible(False)
    fig.suptitle(f"Best-of-N gold reward against KL, {rate:.0%} label flips (test split; bands: ±1 std over seeds; "
                 f"dotted: Gao et al.'s fit)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_summary(rows: list[dict], heads, path: Path) -> None:
    """Gold at N=M against the label flip rate: a subplot per head type, a line per aggregation."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(heads), figsize=(3.8 * len(heads), 3.6), squeeze=False, sharey=True)
    for ax, head in zip(axes[0], heads):
        for agg in ROW_AGGREGATIONS:
            rs = sorted((r for r in rows if r["head"] == head and r["aggregation"] == agg),
                        key=lambda r: r["flip_rate"])
            ax.errorbar([100 * r["flip_rate"] for r in rs], [r["gold_final"] for r in rs],
                        yerr=[r["gold_final_std"] for r in rs], marker="o", ms=4, capsize=3, label=AGG_LABELS[agg],
                        **STYLE[agg])
        ax.set_title(head)
        ax.set_xlabel("label flips (%)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("BoN gold at N = pool size")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Gold reward of best-of-M against label noise (test split; ±1 std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _check_target(out: Path) -> None:
    from rmsearch.reproduce._grid_study import check_target

    check_target(out)


def write_study(out: Path, result: dict) -> Path:
    """Write the report folder for `run_study`'s result; replaces an earlier report at `out` atomically."""
    out = Path(out)
    _check_target(out)
    cfg, rows, curves = result["config"], result["rows"], result["curves"]
    heads, rates = list(cfg["heads"]), list(cfg["noise_levels"])
    found = findings(rows, result.get("per_seed"), MIN_SEEDS)
    with atomic_dir(out) as tmp:
        figures = {rate: figure_name(rate) for rate in rates}
        for rate, name in figures.items():
            plot_noise_level(curves, heads, rate, result["pool"], tmp / name)
        plot_summary(rows, heads, tmp / "summary.png")
        _write_csv(tmp / "results.csv", rows)
        with open(tmp / "curves.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["head", "flip_rate", "aggregation", "n", "kl", "gold_mean", "gold_std"])
            for (head, rate, agg), c in curves.items():
                for row in zip(c["n"], c["kl"], c["gold"], c["gold_std"]):
                    w.writerow([head, rate, agg, *row])
        (tmp / "report.md").write_text(_markdown(result, found, figures))
        blob = {**{k: v for k, v in result.items() if k != "curves"},
                "curves": [{"head": h, "flip_rate": r, "aggregation": a, **c} for (h, r, a), c in curves.items()],
                "findings": [{"key": f.key, "claim": f.claim, "verdict": f.verdict, "evidence": f.evidence}
                             for f in found]}
        write_json(tmp / MARKER, blob)
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    cols = ["head", "flip_rate", "label_error", "aggregation", "seeds"]
    cols += [c for k in METRICS for c in (k, f"{k}_std") if any(c in r for r in rows)]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _seeds_line(cfg: dict, data: dict) -> str:
    if data.get("world_per_seed"):
        worlds = ", ".join(f"{w['name']} ({w['fingerprint']})" for w in data["worlds"])
        return (f"- **seeds** ({cfg['seeds']}) each draw a built-in world (seed s draws world s: {worlds}), the "
                f"annotator's label draws, the prompt splits and the member seeds; no verdict rests on one world")
    return (f"- **seeds** ({cfg['seeds']}) vary the annotator's label draws, the prompt splits and the member seeds; "
            f"the world (the data) is the same for all")


def _markdown(result: dict, found, figures: dict) -> str:
    cfg, data = result["config"], result["data"]
    heads = ", ".join(cfg["heads"])
    md = [
        "# Reward-model ensembles under label noise: the seed paper's case study, rerun", "",
        f"- **data**: {'the built-in world, one per seed' if data.get('world_per_seed') else data['name']} "
        f"(`--data {data['spec']}`"
        + ("" if data.get("world_per_seed") else f", fingerprint {data['fingerprint']}")
        + f", dim {data['dim']}; train {data['train'][0]} prompts × {data['train'][1]} responses, test "
        f"{data['test'][0]} × {data['test'][1]})",
        f"- **design**: head types {heads} × label flip rates {', '.join(f'{r:.0%}' for r in cfg['noise_levels'])} × "
        f"{cfg['seeds']} seed(s); each cell an ensemble of {cfg['members']} members, each member on its own bootstrap "
        f"draw of the pairs; member scores standardized on training rows before aggregating",
        _seeds_line(cfg, data),
        f"- **training**: {result['train_pairs']} labelled within-prompt pairs per cell (flipped labels at the given "
        f"rate; realized label error in the table)",
        f"- **test split**: {result['test_prompts']} prompts × {result['pool']} candidates (the final numbers; "
        f"nothing here is selected on it); BoN is exact, N up to M = {result['pool']}",
        "- **head hyperparameters**: " + "; ".join(
            f"{h}: " + ", ".join(f"{k}={v}" for k, v in c.items() if k != "kind") for h, c in cfg["configs"].items()
            if h in cfg["heads"]),
        f"- **run**: {result['wall_seconds']:.0f} s wall, {result['train_seconds']:.0f} s of training inside "
        f"{len(cfg['heads']) * len(cfg['noise_levels']) * cfg['seeds']} Ray jobs, {result['workers']} at once"
        + (" (quick mode: a tiny world for tests; the numbers mean little)" if cfg["quick"] else ""),
        "",
        "## Findings of the literature, checked against these numbers", "",
        *(f.line() for f in found), "",
        "Criteria: (a) every ensemble aggregation's BoN gold at N=M, averaged over heads and noise levels, is above "
        "the single head's; (b) the gain of min/uwo over mean in BoN gold at N=M (averaged over heads) is positive at "
        "the highest noise level and larger than at the lowest; (c) mlp_clf loses less BoN gold at N=M than mlp "
        "from the lowest to the highest noise level. Each criterion is decided on the mean over seeds and, on its "
        "own, on each seed's numbers: **reproduced** where it holds on the mean and in most seeds, **not "
        "reproduced** where it fails on the mean and in most seeds, **mixed** otherwise. Differences are not "
        "tested for significance; the ± std over seeds and the per-seed count show how firm each verdict is.", "",
        "### Per head type", "",
        "(a) and (b) decided for each head type on its own (statistics in BoN gold at N=M; ± std over seeds):", "",
        verdict_table(found), "",
        "## Results (test split; mean ± std over seeds)", "",
        results_table(result["rows"]), "",
        "`single` is each member evaluated alone, metrics and curves averaged over members; `mean`, `min` and "
        f"`{AGG_LABELS['uwo']}` (mean − variance) aggregate all members' standardized scores. BoN gold @ N=M is "
        "the expected gold reward of the proxy's favourite among all M candidates; peak gold and peak N are the best "
        "point of the BoN curve on a log grid of N; drop = peak − final (over-optimization); Gao β is the fall term of "
        "Gao et al.'s law R(d) = d(α − βd), d = √(log N − (N−1)/N), fitted by least squares to each seed's curve "
        "(larger: faster over-optimization); Spearman is per prompt, averaged.",
        "",
        "## Figures", "",
        "![gold at N=M against label noise](summary.png)", "",
    ]
    for rate, name in figures.items():
        md += [f"### {rate:.0%} label flips", "", f"![BoN gold against KL at {rate:.0%} label flips]({name})", ""]
    md += ["Files: `results.csv` (the table, one row per head × noise × aggregation), `curves.csv` (BoN gold curves "
           "averaged over seeds), `results.json` (everything, per seed included).", ""]
    return "\n".join(md)
