"""`coste`: Coste et al. 2023, "Reward model ensembles help mitigate overoptimization": a single reward model
against mean, worst-case (WCO: min over members) and uncertainty-weighted (UWO: mean − λ·variance over members)
ensembles, trained on labels with 25% flips, with 1 … 8 members and λ swept.

Each (head, seed) is one Ray job training 8 members with different seeds on the same labelled pairs (as Coste
et al. train theirs); the driver evaluates the first k members for every k and aggregation, on standardized
scores. Over-optimization is read from each BoN gold curve's Gao et al. fit R(d) = d(α − βd): a smaller β is a
slower fall past the peak.

Findings, per head type:
(a) conservative aggregation (min, uwo) gives more gold than the mean at N = M, with all members;
(b) it over-optimizes less: β(mean) − β(conservative) > 0;
(c) 4–5 members suffice: the gain from 5 to 8 members (mean) is under a quarter of the gain from 1 to 5,
    i.e. (g8 − g5) − ¼·(g5 − g1) < 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rmsearch.data import Annotator
from rmsearch.reproduce._beyond_bt import head_configs
from rmsearch.reproduce._grid import Cell, differences, per_seed
from rmsearch.reproduce._grid_study import GridStudy, plt, pm, summary_rows
from rmsearch.reproduce._verdicts import Verdict

FLIP_RATE = 0.25
MEMBERS = 8
QUICK_MEMBERS = 6
LAMBDAS = (0.1, 0.5, 1.0, 2.0)
HEADS = ("mlp", "mlp_clf")
SUFFICE = 5
SUFFICE_SHARE = 0.25
CONSERVATIVE = ("min", "uwo λ=1")


def row_names(k: int) -> list[str]:
    """The aggregations evaluated on k members."""
    if k == 1:
        return ["single"]
    return ["mean", "min", *(f"uwo λ={lam:g}" for lam in LAMBDAS)]


def aggregate_rows(z: np.ndarray) -> dict[str, np.ndarray]:
    """Standardized member scores (k, n) -> row name -> aggregated (n,) scores."""
    from rmsearch.ensembles import aggregate

    if len(z) == 1:
        return {"single": z[0]}
    return {"mean": aggregate(z, "mean"), "min": aggregate(z, "min"),
            **{f"uwo λ={lam:g}": aggregate(z, "uwo", lam) for lam in LAMBDAS}}


class CosteStudy(GridStudy):
    name = "coste"
    gao_table = False  # its own table compares the aggregations' fits
    title = "Reward-model ensembles against over-optimization (Coste et al. 2023)"
    help = ("single head vs mean / WCO (min) / UWO (mean − λ·var) ensembles, 25% label flips, 1-8 members, "
            "λ swept; Gao fit of each BoN curve")

    @property
    def members(self) -> int:
        return QUICK_MEMBERS if self.options.quick else MEMBERS

    def cells(self) -> list[Cell]:
        configs = head_configs(self.options.quick)
        return [Cell((("head", h),), configs[h], Annotator(flip_rate=FLIP_RATE), members=self.members)
                for h in HEADS]

    def evaluate(self, task, out: dict, cell: Cell) -> dict:
        """Every k = 1 … members and aggregation; k = 1 is each member alone, averaged ('single')."""
        from rmsearch.ensembles import standardize
        from rmsearch.evaluate import evaluate_split, mean_evaluation

        z = standardize(out["test"], out["stats"])
        rows = {"k=1 single": mean_evaluation([evaluate_split(zi, task.test) for zi in z])}
        for k in range(2, len(z) + 1):
            for name, s in aggregate_rows(z[:k]).items():
                rows[f"k={k} {name}"] = evaluate_split(s, task.test)
        return rows

    def design(self) -> list[str]:
        return [f"**grid**: head {', '.join(HEADS)}, {self.members} members each (different seeds, same pairs), "
                f"{FLIP_RATE:.0%} label flips; the first k members for k = 1 … {self.members}, aggregated by mean, min "
                f"(WCO) and uwo (mean − λ·variance, λ ∈ {{{', '.join(f'{lam:g}' for lam in LAMBDAS)}}}), on "
                "member scores standardized on training rows",
                "**over-optimization**: Gao et al.'s R(d) = d(α − βd), d = √(log N − (N−1)/N), fitted to each BoN "
                "gold curve by least squares; β is how fast gold falls past the peak"]

    def verdicts(self, result: dict) -> list[Verdict]:
        rows = result["rows"]
        k = max(_k(r["row"]) for r in rows)
        out = []

        def seeds(head, row, value=lambda r: r["gold_final"]):
            return per_seed(rows, value, head=head, row=row)

        for head in HEADS:
            for agg in CONSERVATIVE:
                out.append(Verdict("a", "conservative aggregation gives more gold than the mean",
                                   f"{agg} − mean, BoN gold at N = M, {k} members",
                                   differences(seeds(head, f"k={k} {agg}"), seeds(head, f"k={k} mean")), scope=head))
        for head in HEADS:
            for agg in CONSERVATIVE:
                beta = lambda r: r["gao_beta"]  # noqa: E731
                out.append(Verdict("b", "conservative aggregation over-optimizes less",
                                   f"Gao β(mean) − β({agg}), {k} members",
                                   differences(seeds(head, f"k={k} mean", beta), seeds(head, f"k={k} {agg}", beta)),
                                   scope=head))
        if k >= SUFFICE + 1:
            for head in HEADS:
                g1, g5, gk = seeds(head, "k=1 single"), seeds(head, f"k={SUFFICE} mean"), seeds(head, f"k={k} mean")
                values = tuple((gk[s] - g5[s]) - SUFFICE_SHARE * (g5[s] - g1[s]) for s in sorted(g1))
                out.append(Verdict("c", f"{SUFFICE - 1}–{SUFFICE} members suffice",
                                   f"(g{k} − g{SUFFICE}) − {SUFFICE_SHARE:g}·(g{SUFFICE} − g1), mean ensembles",
                                   values, direction=-1, scope=head,
                                   note=f"g_k: BoN gold at N = M of the mean of k members; holds: going from "
                                        f"{SUFFICE} to {k} members adds less than a quarter of what 1 → {SUFFICE} "
                                        f"added."))
        return out

    def tables(self, result: dict) -> list[str]:
        summary = {(s["head"], s["row"]): s for s in summary_rows(result["rows"], ["head"])}
        k = max(_k(r) for _, r in summary)
        names = ["mean", "min", *(f"uwo λ={lam:g}" for lam in LAMBDAS)]
        gold = ["## BoN gold at N = M against the number of members (test split; mean ± std over seeds)", "",
                "| head | k | " + " | ".join(names) + " |", "|---" * (2 + len(names)) + "|"]
        for head in HEADS:
            gold.append(f"| {head} | 1 | {pm(summary[head, 'k=1 single'], 'gold_final', 2)} (single) |"
                        + " |" * (len(names) - 1))
            for j in range(2, k + 1):
                gold.append(f"| {head} | {j} | " + " | ".join(pm(summary[head, f'k={j} {n}'], 'gold_final', 2)
                                                             for n in names) + " |")
        gao = [f"## Over-optimization with {k} members: Gao et al.'s fit (mean over seeds)", "",
               "| head | aggregation | α | β | fitted peak N (mean α, β) | R² | BoN gold at N = M | peak − final |",
               "|---|---|---|---|---|---|---|---|"]
        for head in HEADS:
            for n in ["single", *names]:
                s = summary[head, "k=1 single" if n == "single" else f"k={k} {n}"]
                gao.append(f"| {head} | {n} | {s['gao_alpha']:.3f} | {pm(s, 'gao_beta')} | {_peak(s)} | "
                           f"{s['gao_r2']:.3f} | {pm(s, 'gold_final', 2)} | {s['drop']:.3f} |")
        return ["\n".join(gold), "\n".join(gao)]

    def figures(self, result: dict, folder: Path) -> list[tuple[str, str]]:
        from rmsearch.evaluate import gao_fit

        summary = {(s["head"], s["row"]): s for s in summary_rows(result["rows"], ["head"])}
        k = max(_k(row) for _, row in summary)
        curves = {(c["head"], c["row"]): c for c in result["curves"]}
        pyplot = plt()
        fig, axes = pyplot.subplots(2, len(HEADS), figsize=(5.2 * len(HEADS), 7.4), squeeze=False)
        names = ["mean", "min", "uwo λ=1"]
        for col, head in enumerate(HEADS):
            ax = axes[0][col]
            for n in names:
                ss = [summary[head, f"k={j} {n}"] for j in range(2, k + 1)]
                single = summary[head, "k=1 single"]
                ax.errorbar(range(1, k + 1), [single["gold_final"], *(s["gold_final"] for s in ss)],
                            yerr=[single["gold_final_std"], *(s["gold_final_std"] for s in ss)], marker="o",
                            capsize=3, label=n)
            ax.set_title(f"{head}: BoN gold at N = M against members")
            ax.set_xlabel("members k")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            ax = axes[1][col]
            for n, color in zip(["single", *names], ("black", "tab:blue", "tab:red", "tab:green")):
                c = curves[head, "k=1 single" if n == "single" else f"k={k} {n}"]
                ax.plot(c["n"], c["gold"], marker="o", ms=2.5, color=color, label=n)
                fit = gao_fit(c["n"], c["gold"])
                grid = np.geomspace(1, max(c["n"]), 100)
                ax.plot(grid, fit.predict(grid), ls="--", color=color, lw=1)
            ax.set_xscale("log")
            ax.set_title(f"{head}: BoN gold against N, {k} members (dashed: Gao fit)")
            ax.set_xlabel("N")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel("BoN gold at N = M")
        axes[1][0].set_ylabel("expected gold reward")
        fig.suptitle(f"Coste et al.'s protocol: {FLIP_RATE:.0%} label flips (test split; means over seeds)")
        fig.tight_layout()
        fig.savefig(folder / "coste.png", dpi=100)
        pyplot.close(fig)
        return [("coste.png", "gold at N = M against members per aggregation (top); BoN curves with Gao fits (bottom)")]


def _k(row: str) -> int:
    return int(row.split()[0][2:])


def _peak(s: dict) -> str:
    """The law's peak N from the mean α and β over seeds ('none' where β <= 0: the law never falls)."""
    from rmsearch.evaluate import GaoFit
    from rmsearch.reproduce._grid import MAX_PEAK_N

    peak = GaoFit(s["gao_alpha"], s["gao_beta"], s["gao_r2"], 0).peak_n
    if not np.isfinite(peak):
        return "none (β ≤ 0)"
    return f"> {MAX_PEAK_N:.0e}" if peak > MAX_PEAK_N else f"{peak:.0f}"
