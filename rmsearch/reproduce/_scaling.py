"""`data-scaling`: how reward-model quality grows with the annotation budget ("Does RLHF scale?"), per head type
and label-noise level.

Grid: head ∈ {mlp, mlp_clf, gbdt} × label flip rate × budget (the seed paper's 5k, 10k, 20k, 40k labelled pairs on
the built-in world, which here has 4,500 training prompts so that 40k pairs exist; shares of what the data gives
elsewhere). Each cell trains one head per seed.

Quality is measured as a gap that shrinks toward 0: the best-of-N gold gap to the oracle (each test prompt's best
candidate) at N = M, and the pairwise error on gold-labelled test pairs. A power law gap ≈ c·B^(−b) is fitted per
(head, noise, seed) by least squares on log gap against log budget; the exponent b is the scaling rate.

Findings: (a) quality improves with the budget: b > 0 for the BoN gap, per head type (pooled over noise levels);
(b) label noise slows scaling: b at the lowest flip rate minus b at the highest, per head type.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from rmsearch.data import Annotator
from rmsearch.reproduce._beyond_bt import head_configs
from rmsearch.reproduce._grid import Cell
from rmsearch.reproduce._grid_study import GridStudy, plt, pm, summary_rows
from rmsearch.reproduce._verdicts import Verdict, seed_interval

HEADS = ("mlp", "mlp_clf", "gbdt")
RATES = (0.05, 0.25)
SEED_BUDGETS = (5000, 10000, 20000, 40000)
"""The seed paper's annotation budgets."""
SHARES = (0.125, 0.25, 0.5, 1.0)
WORLD = "synth:train_prompts=4500"
GAPS = {"gold": ("BoN gold gap to the oracle at N = M", lambda r: r["oracle"] - r["gold_final"]),
        "pair": ("pairwise error on gold-labelled test pairs", lambda r: 1.0 - r["pair_accuracy"])}


def power_law(budgets, gaps) -> tuple[float, float]:
    """(b, c) of gap ≈ c·B^(−b), least squares on logs; nan where a gap is not positive."""
    x, y = np.log(np.asarray(budgets, np.float64)), np.asarray(gaps, np.float64)
    if len(x) < 2 or np.any(y <= 0) or not np.all(np.isfinite(y)):
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, np.log(y), 1)
    return float(-slope), float(np.exp(intercept))


def exponents(rows: list[dict], gap: str) -> dict[tuple[str, float], dict[int, float]]:
    """(head, flip rate) -> seed -> the fitted exponent b of `gap` ('gold' or 'pair') against the budget."""
    value = GAPS[gap][1]
    points: dict[tuple, list[tuple[int, float]]] = {}
    for r in rows:
        points.setdefault((r["head"], r["flip_rate"], r["seed"]), []).append((r["budget"], value(r)))
    out: dict[tuple[str, float], dict[int, float]] = {}
    for (h, rate, s), pts in points.items():
        pts.sort()
        out.setdefault((h, rate), {})[s] = power_law([p[0] for p in pts], [p[1] for p in pts])[0]
    return out


class ScalingStudy(GridStudy):
    name = "data-scaling"
    title = "Data scaling: reward-model quality against the annotation budget"
    sweeps_budget = True
    help = "BoN gold and pair accuracy against labelled pairs (5k-40k) per head and noise, with a fitted exponent"
    data = WORLD

    @cached_property
    def budgets(self) -> tuple[int, ...]:
        if self.options.budgets:
            return tuple(sorted(self.options.budgets))
        if self.options.quick:
            return self.default_budgets((0.25, 0.5, 1.0))
        if self.options.data in (None, "synth", WORLD):
            return SEED_BUDGETS
        return self.default_budgets(SHARES)

    @property
    def rates(self) -> tuple[float, ...]:
        return RATES

    def cells(self) -> list[Cell]:
        configs = head_configs(self.options.quick)
        return [Cell((("head", h), ("flip_rate", r), ("budget", b)), configs[h], Annotator(flip_rate=r), budget=b)
                for h in HEADS for r in self.rates for b in self.budgets]

    def design(self) -> list[str]:
        return [f"**grid**: head {', '.join(HEADS)} × label flips {', '.join(f'{r:.0%}' for r in self.rates)} × "
                f"budget {', '.join(map(str, self.budgets))} labelled within-prompt pairs; one head per cell and seed",
                "**scaling law**: gap ≈ c·B^(−b) fitted per head, noise level and seed (least squares on logs), for "
                "the BoN gold gap to the oracle at N = M and for the pairwise error on gold-labelled test pairs"]

    def verdicts(self, result: dict) -> list[Verdict]:
        rows = result["rows"]
        rates = sorted({r["flip_rate"] for r in rows})
        gold = exponents(rows, "gold")
        out = []
        for h in HEADS:
            pooled = {s: float(np.mean([gold[h, r][s] for r in rates])) for s in gold[h, rates[0]]}
            out.append(Verdict("a", "reward-model quality improves with the annotation budget",
                               "exponent b of the BoN gold gap (noise levels pooled)", tuple(pooled.values()),
                               scope=h))
        for h in HEADS:
            lo, hi = gold[h, rates[0]], gold[h, rates[-1]]
            out.append(Verdict("b", "label noise slows scaling",
                               f"b at {rates[0]:.0%} flips − b at {rates[-1]:.0%}",
                               tuple(lo[s] - hi[s] for s in sorted(set(lo) & set(hi))), scope=h))
        return out

    def tables(self, result: dict) -> list[str]:
        rows = result["rows"]
        summary = {(s["head"], s["flip_rate"], s["budget"]): s
                   for s in summary_rows(rows, ["head", "flip_rate", "budget"])}
        budgets = sorted({k[2] for k in summary})
        rates = sorted({k[1] for k in summary})
        lines = ["## BoN gold at N = M against the budget (test split; mean ± std over seeds)", "",
                 "| head | label flips | " + " | ".join(f"{b} pairs" for b in budgets) + " | oracle |",
                 "|---" * (3 + len(budgets)) + "|"]
        for h in HEADS:
            for r in rates:
                cells = [pm(summary[h, r, b], "gold_final", 2) for b in budgets]
                oracle = summary[h, r, budgets[-1]]["oracle"]
                lines.append(f"| {h} | {r:.0%} | " + " | ".join(cells) + f" | {oracle:.2f} |")
        fits = ["## Scaling exponents (gap ≈ c·B^(−b); mean [95% interval] over seeds)", "",
                "| head | label flips | b, BoN gold gap | b, pairwise error |", "|---|---|---|---|"]
        exps = {g: exponents(rows, g) for g in GAPS}
        for h in HEADS:
            for r in rates:
                fits.append(f"| {h} | {r:.0%} | " + " | ".join(_interval(exps[g][h, r].values()) for g in GAPS) + " |")
        return ["\n".join(lines), "\n".join(fits)]

    def figures(self, result: dict, folder: Path) -> list[tuple[str, str]]:
        summary = summary_rows(result["rows"], ["head", "flip_rate", "budget"])
        rates = sorted({s["flip_rate"] for s in summary})
        pyplot = plt()
        fig, axes = pyplot.subplots(1, 2, figsize=(10.4, 3.9), squeeze=False)
        for ax, (gap, (label, value)) in zip(axes[0], GAPS.items()):
            for h in HEADS:
                for r, ls in zip(rates, ("-", "--", ":")):
                    ss = sorted((s for s in summary if s["head"] == h and s["flip_rate"] == r),
                                key=lambda s: s["budget"])
                    ax.plot([s["budget"] for s in ss], [value(s) for s in ss], marker="o", ls=ls,
                            label=f"{h}, {r:.0%} flips")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("labelled pairs")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which="both")
        axes[0][0].legend(fontsize=7)
        fig.suptitle("Quality against the annotation budget (log-log; means over seeds)")
        fig.tight_layout()
        fig.savefig(folder / "scaling.png", dpi=100)
        pyplot.close(fig)
        return [("scaling.png", "BoN gold gap to the oracle and pairwise error against labelled pairs (log-log)")]


def _interval(values) -> str:
    mean, lo, hi = seed_interval(list(values))
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{mean:.3f}"
