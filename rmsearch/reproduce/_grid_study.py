"""A grid study: the cells it trains (`rmsearch.reproduce._grid`), the findings it decides from per-seed rows
(`rmsearch.reproduce._verdicts`), its tables and figures; and the report folder every study writes:

- `report.md`: the design, each finding's verdict with its effect and 95% interval over seeds, tables, figures;
- `results.json`: everything (options, data, per-seed rows, mean curves, verdicts, timings): the tables and
  verdicts are recomputed from it alone (`GridStudy.verdicts(result)`), so a README block renders from a saved run;
- `results.csv`: mean and std over seeds of every metric per (cell, row);
- the study's PNG figures.

A study subclasses `GridStudy` and fills in `cells`, `verdicts`, `tables` and `figures` (and `evaluate` where a
trained group yields more than one row). The folder is written whole or not at all (`rmsearch.files.atomic_dir`).
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rmsearch.errors import RMSearchError
from rmsearch.files import atomic_dir, write_json
from rmsearch.reproduce._grid import Cell, GridRun, run_grid, single_rows
from rmsearch.reproduce._verdicts import Verdict, verdict_rows

MARKER = "results.json"
QUICK_DATA = "synth:train_prompts=200,test_prompts=20,test_responses=50,dim=8"
METRICS = ("gold_final", "gold_peak", "peak_n", "drop", "spearman", "pair_accuracy", "oracle", "gao_alpha",
           "gao_beta", "gao_peak_n", "gao_r2")


@dataclass(frozen=True)
class GridOptions:
    data: str | None = None
    """None: the study's built-in world (`QUICK_DATA` in quick mode)."""
    seeds: int = 5
    quick: bool = False
    budgets: tuple[int, ...] | None = None
    """Annotation budgets (labelled pairs) where a study sweeps them; None: the study's default."""

    def validate(self) -> "GridOptions":
        if self.seeds < 2:
            raise RMSearchError(f"--seeds {self.seeds}: a verdict needs an interval over at least 2 seeds.")
        if self.budgets is not None and (len(self.budgets) < 1 or min(self.budgets) < 10):
            raise RMSearchError(f"--budgets {','.join(map(str, self.budgets))}: each budget must be at least 10 "
                                f"labelled pairs.")
        return self


class GridStudy(ABC):
    """One study of the literature: a grid of cells, the findings it checks, and how it shows them. A study fills in
    the two abstract methods, `cells` and `verdicts`; the others have defaults."""

    name = ""
    title = ""
    help = ""
    sweeps_budget = False
    """Whether `--budgets` means something to this study."""
    gao_table = True
    """Whether the report adds the generic table of Gao fits per cell (a study with its own says False)."""
    data: str = "synth"
    """The built-in world the study runs on by default (a study may need more prompts than `synth` has)."""

    def __init__(self, options: GridOptions):
        self.options = options

    @property
    def spec(self) -> str:
        return self.options.data or (QUICK_DATA if self.options.quick else self.data)

    @abstractmethod
    def cells(self) -> list[Cell]:
        """The grid: what each Ray job trains (once per seed)."""

    def default_budgets(self, shares, pairings=("within",)) -> tuple[int, ...]:
        """Budgets as shares of the labelled pairs the data gives: the fewest over seeds and pairings (pairs with
        tied gold carry no label, so real data gives fewer than prompts × pairs per prompt)."""
        from rmsearch.data import Annotator, TaskConfig, make_task
        from rmsearch.reproduce._grid import load_worlds

        worlds = load_worlds(self.spec, self.options.seeds, self.name)
        available = min(len(t.train) + len(t.stop) for t in (
            make_task(worlds[s], TaskConfig(annotator=Annotator(pairing=p), seed=s)) for s in worlds for p in pairings))
        return tuple(sorted({max(10, int(available * share)) for share in shares}))

    def evaluate(self, task, out: dict, cell: Cell) -> dict:
        return single_rows(task, out, cell)

    def design(self) -> list[str]:
        """Bullet lines (Markdown, without the dash) describing the grid."""
        return []

    @abstractmethod
    def verdicts(self, result: dict) -> list[Verdict]:
        """The findings, decided from `result` alone (so a saved result renders again)."""

    def tables(self, result: dict) -> list[str]:
        """Markdown sections (a heading line, text and tables)."""
        return []

    def figures(self, result: dict, folder: Path) -> list[tuple[str, str]]:
        """Write PNGs into `folder`; return (file name, caption) for each."""
        return []

    def run(self, address: str | None = None, workers: int | None = None, progress: bool = True) -> dict:
        cells = self.cells()
        grid = run_grid(cells, self.spec, self.options.seeds, self.name, self.evaluate, address, workers, progress)
        return self.result(cells, grid)

    def result(self, cells: list[Cell], grid: GridRun) -> dict:
        return {"study": self.name, "options": asdict(self.options), "spec": self.spec, "data": grid.facts,
                "cells": [{"key": dict(c.key), "head": c.head, "annotator": asdict(c.annotator),
                           "budget": c.budget, "members": c.members} for c in cells],
                "rows": grid.rows, "curves": mean_curves(grid.curves),
                "train_seconds": grid.train_seconds, "wall_seconds": grid.wall_seconds, "workers": grid.workers,
                "jobs": grid.jobs}


def mean_curves(curves: dict) -> list[dict]:
    """(cell key, row) -> per-seed curves  =>  one record per (cell, row): coords, row, n, kl, gold mean and std."""
    out = []
    for (key, row), cs in curves.items():
        gold = np.array([c["gold"] for c in cs])
        out.append({**dict(key), "row": row, "n": cs[0]["n"], "kl": cs[0]["kl"], "gold": gold.mean(0).tolist(),
                    "gold_std": (gold.std(0, ddof=1) if len(gold) > 1 else 0 * gold[0]).tolist()})
    return out


def summary_rows(rows: list[dict], coords: list[str]) -> list[dict]:
    """Mean and std over seeds of each metric, per (coords…, row)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(c) for c in coords) + (r["row"],), []).append(r)
    out = []
    for key, rs in groups.items():
        s = {**dict(zip(coords, key[:-1])), "row": key[-1], "seeds": len(rs)}
        for m in METRICS:
            vals = np.array([r[m] for r in rs if m in r and r[m] is not None], np.float64)
            vals = vals[np.isfinite(vals)]
            if len(vals):
                s[m], s[f"{m}_std"] = float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out.append(s)
    return out


def coords_of(result: dict) -> list[str]:
    return list(result["cells"][0]["key"]) if result["cells"] else []


def check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise RMSearchError(f"--out {out}: exists and is not a reproduce report folder; it would be replaced. "
                            f"Choose a new folder, or remove it first.")


def write_grid_study(out: Path, study: GridStudy, result: dict) -> list[Verdict]:
    """Write the report folder for `study`'s `result`; returns the verdicts it states."""
    out = Path(out)
    check_target(out)
    verdicts = study.verdicts(result)
    coords = coords_of(result)
    summary = summary_rows(result["rows"], coords)
    with atomic_dir(out) as tmp:
        figures = study.figures(result, tmp)
        cols = [*coords, "row", "seeds"] + [c for m in METRICS for c in (m, f"{m}_std") if any(c in r for r in summary)]
        with open(tmp / "results.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(summary)
        (tmp / "report.md").write_text(report_markdown(study, result, verdicts, figures))
        write_json(tmp / MARKER, {**result, "verdicts": [v.as_dict() for v in verdicts]})
    return verdicts


def report_markdown(study: GridStudy, result: dict, verdicts: list[Verdict], figures) -> str:
    data, opts = result["data"], result["options"]
    where = ("the built-in world, one per seed" if data["world_per_seed"]
             else f"{data['name']} (fingerprint {data['fingerprint']})")
    md = [f"# {study.title}", "",
          f"- **data**: {where} (`--data {result['spec']}`, dim {data['dim']}; train {data['train'][0]} prompts × "
          f"{data['train'][1]} responses, test {data['test'][0]} × {data['test'][1]})",
          *(f"- {line}" for line in study.design()),
          f"- **seeds**: {opts['seeds']}; each replicates the whole experiment (its labels, splits and member seeds"
          + (", and the world itself" if data["world_per_seed"] else "") + ")",
          f"- **test split**: {data['test_prompts']} prompts × {data['pool']} candidates; BoN is exact, N up to "
          f"M = {data['pool']}; nothing is chosen on it",
          f"- **run**: {result['wall_seconds']:.0f} s wall, {result['train_seconds']:.0f} s of training in "
          f"{result['jobs']} Ray jobs, {result['workers']} at once"
          + (" (quick mode: a tiny world for tests; the numbers mean little)" if opts["quick"] else ""), "",
          "## Findings", "",
          *(v.line() for v in verdicts), "",
          "Each effect is computed on each seed's numbers alone; the interval is Student's t over seeds (95%). "
          "**holds**: the interval lies on the claimed side; **contradicted**: on the other side; "
          "**inconclusive**: it straddles the threshold.", "",
          verdict_rows(verdicts), ""]
    for section in study.tables(result):
        md += [section, ""]
    if study.gao_table and any("gao_beta" in r for r in result["rows"][:1]):
        md += [gao_table(result), ""]
    if figures:
        md += ["## Figures", ""]
        for name, caption in figures:
            md += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    gao = any("gao_beta" in r for r in result["rows"][:1])
    md += ["Files: `results.csv` (mean and std over seeds per cell and row), `results.json` (everything, per seed "
           "included" + ("; the gao columns are Gao et al.'s law R(d) = d(α − βd), d = √(log N − (N−1)/N), fitted to "
                         "each BoN gold curve" if gao else "") + ").", ""]
    return "\n".join(md)


def gao_table(result: dict) -> str:
    """Gao et al.'s law fitted to each seed's BoN gold curve: α, β (mean ± std over seeds), the peak N of the mean
    α and β, and R², per cell and row."""
    from rmsearch.evaluate import GaoFit
    from rmsearch.reproduce._grid import MAX_PEAK_N

    coords = coords_of(result)
    lines = ["## Over-optimization: Gao et al.'s law per cell (fitted to each seed's BoN gold curve)", "",
             "R(d) = d(α − βd), d = √(log N − (N−1)/N); a larger β falls faster past the peak.", "",
             "| " + " | ".join([*coords, "row", "α", "β", "fitted peak N", "R²"]) + " |",
             "|---" * (len(coords) + 5) + "|"]
    for s in summary_rows(result["rows"], coords):
        peak = GaoFit(s["gao_alpha"], s["gao_beta"], s["gao_r2"], 0).peak_n
        peak = ("none (β ≤ 0)" if not np.isfinite(peak) else f"> {MAX_PEAK_N:.0e}" if peak > MAX_PEAK_N
                else f"{peak:.0f}")
        cells = [f"{s[c]:.0%}" if c == "flip_rate" else str(s[c]) for c in coords]
        lines.append("| " + " | ".join([*cells, s["row"], pm(s, "gao_alpha"), pm(s, "gao_beta"), peak,
                                        f"{s['gao_r2']:.3f}"]) + " |")
    return "\n".join(lines)


def pm(row: dict, key: str, digits: int = 3) -> str:
    """'1.234 ± 0.056' from a summary row ('' where absent)."""
    if key not in row:
        return ""
    return f"{row[key]:.{digits}f} ± {row.get(key + '_std', 0.0):.{digits}f}"


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot
