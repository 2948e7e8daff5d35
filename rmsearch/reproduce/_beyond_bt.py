"""`beyond-bt`: Bradley-Terry or a classifier? Within-prompt or cross-prompt pairs? (Sun et al., "Rethinking
Bradley-Terry models in preference-based reward modeling", ICLR 2025.)

Grid: head ∈ {mlp (Bradley-Terry on score differences), mlp_clf (a classifier on each response), gbdt (a
boosted-tree classifier)} × label flip rate × pairing (two answers of one prompt, or answers of two prompts) ×
annotation budget. Each cell trains one head per seed; the number is its test best-of-N gold at N = M.

Findings checked, each per seed and then over seeds:
(a) a classifier is at least as good as Bradley-Terry: classifier − BT gold, averaged over the grid;
(b) classifiers are more robust at high noise: (classifier − BT) at the highest flip rate minus at the lowest;
(c) cross-prompt pairs beat within-prompt pairs: cross − within gold, averaged over heads, noise and budgets.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from rmsearch.data import Annotator
from rmsearch.reproduce._grid import Cell, differences, per_seed
from rmsearch.reproduce._grid_study import GridStudy, plt, pm, summary_rows
from rmsearch.reproduce._verdicts import Verdict

BT = "mlp"
CLASSIFIERS = ("mlp_clf", "gbdt")
PAIRINGS = ("within", "cross")
FULL_RATES = (0.05, 0.15, 0.25, 0.40)
QUICK_RATES = (0.05, 0.40)
BUDGET_SHARES = (0.125, 1.0)
"""Default budgets: these shares of the labelled pairs the data gives (`GridStudy.default_budgets`)."""


def head_configs(quick: bool) -> dict[str, dict]:
    """The seed-ensembles study's head sizes, one member per draw of the pairs (no bootstrap)."""
    from rmsearch.reproduce._study import head_configs as sized

    return sized(quick, bootstrap=False)


class BeyondBTStudy(GridStudy):
    name = "beyond-bt"
    title = "Bradley-Terry or a classifier, within- or cross-prompt pairs (Sun et al. 2025)"
    sweeps_budget = True
    help = ("BT-MLP vs classifier MLP vs GBDT classifier × label noise × within/cross-prompt pairs × budget; "
            "best-of-N gold on the test split")

    @property
    def rates(self) -> tuple[float, ...]:
        return QUICK_RATES if self.options.quick else FULL_RATES

    @cached_property
    def budgets(self) -> tuple[int, ...]:
        if self.options.budgets:
            return tuple(self.options.budgets)
        return self.default_budgets((1.0,) if self.options.quick else BUDGET_SHARES, PAIRINGS)

    def cells(self) -> list[Cell]:
        configs = head_configs(self.options.quick)
        return [Cell((("head", h), ("flip_rate", r), ("pairing", p), ("budget", b)), configs[h],
                     Annotator(pairing=p, flip_rate=r), budget=b)
                for h in (BT, *CLASSIFIERS) for r in self.rates for p in PAIRINGS for b in self.budgets]

    def design(self) -> list[str]:
        configs = head_configs(self.options.quick)
        return [f"**grid**: head {BT} (Bradley-Terry), {', '.join(CLASSIFIERS)} (classifiers) × label flips "
                f"{', '.join(f'{r:.0%}' for r in self.rates)} × pairing {' / '.join(PAIRINGS)} × budget "
                f"{', '.join(map(str, self.budgets))} labelled pairs; one head per cell and seed",
                "**heads**: " + "; ".join(f"{h}: " + ", ".join(f"{k}={v}" for k, v in c.items() if k != "kind")
                                         for h, c in configs.items() if h in (BT, *CLASSIFIERS))]

    def verdicts(self, result: dict) -> list[Verdict]:
        rows = result["rows"]
        rates = sorted({r["flip_rate"] for r in rows})
        gold = per_seed(rows, lambda r: r["gold_final"], head=BT)
        out = []
        for clf in CLASSIFIERS:
            out.append(Verdict("a", "a classifier is at least as good as Bradley-Terry",
                               f"{clf} − {BT}, BoN gold at N = M (grid mean)",
                               differences(per_seed(rows, lambda r: r["gold_final"], head=clf), gold), scope=clf,
                               note="holds: better; inconclusive: no difference the seeds can show."))
        for clf in CLASSIFIERS:
            gap = {r: differences(per_seed(rows, lambda x: x["gold_final"], head=clf, flip_rate=r),
                                  per_seed(rows, lambda x: x["gold_final"], head=BT, flip_rate=r))
                   for r in (rates[0], rates[-1])}
            out.append(Verdict("b", "classifiers are more robust to label noise",
                               f"({clf} − {BT}) at {rates[-1]:.0%} flips − at {rates[0]:.0%}",
                               tuple(np.subtract(gap[rates[-1]], gap[rates[0]])), scope=clf))
        for scope, heads in (("all heads", (BT, *CLASSIFIERS)), *((h, (h,)) for h in (BT, *CLASSIFIERS))):
            out.append(Verdict("c", "cross-prompt pairs beat within-prompt pairs",
                               "cross − within, BoN gold at N = M",
                               differences(per_seed(rows, lambda r: r["gold_final"], pairing="cross", head=heads),
                                           per_seed(rows, lambda r: r["gold_final"], pairing="within", head=heads)),
                               scope=scope))
        return out

    def tables(self, result: dict) -> list[str]:
        summary = {(s["head"], s["flip_rate"], s["pairing"], s["budget"]): s
                   for s in summary_rows(result["rows"], ["head", "flip_rate", "pairing", "budget"])}
        heads = sorted({k[0] for k in summary}, key=[BT, *CLASSIFIERS].index)
        rates, budgets = sorted({k[1] for k in summary}), sorted({k[3] for k in summary})
        cols = [(p, b) for b in budgets for p in PAIRINGS]
        lines = ["## BoN gold at N = M (test split; mean ± std over seeds)", "",
                 "| head | label flips | " + " | ".join(f"{p}, {b} pairs" for p, b in cols) + " |",
                 "|---" * (2 + len(cols)) + "|"]
        for h in heads:
            for r in rates:
                lines.append(f"| {h} | {r:.0%} | " + " | ".join(pm(summary[h, r, p, b], "gold_final", 2)
                                                             for p, b in cols) + " |")
        return ["\n".join(lines)]

    def figures(self, result: dict, folder: Path) -> list[tuple[str, str]]:
        summary = summary_rows(result["rows"], ["head", "flip_rate", "pairing", "budget"])
        budget = max(s["budget"] for s in summary)
        pyplot = plt()
        fig, axes = pyplot.subplots(1, len(PAIRINGS), figsize=(5.2 * len(PAIRINGS), 3.8), sharey=True, squeeze=False)
        for ax, pairing in zip(axes[0], PAIRINGS):
            for h in (BT, *CLASSIFIERS):
                ss = sorted((s for s in summary if (s["head"], s["pairing"], s["budget"]) == (h, pairing, budget)),
                            key=lambda s: s["flip_rate"])
                ax.errorbar([100 * s["flip_rate"] for s in ss], [s["gold_final"] for s in ss],
                            yerr=[s["gold_final_std"] for s in ss], marker="o", capsize=3, label=h,
                            ls="--" if h == BT else "-")
            ax.set_title(f"{pairing}-prompt pairs, {budget} labelled")
            ax.set_xlabel("label flips (%)")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("BoN gold at N = M")
        axes[0][0].legend(fontsize=8)
        fig.suptitle("Bradley-Terry vs classifiers under label noise (test split; ±1 std over seeds)")
        fig.tight_layout()
        fig.savefig(folder / "gold_vs_noise.png", dpi=100)
        pyplot.close(fig)
        return [("gold_vs_noise.png", f"BoN gold at N = M against label noise, per head and pairing ({budget} pairs)")]
