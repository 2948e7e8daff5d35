"""`rmsearch reproduce STUDY`: studies of the literature in one command each, as Ray jobs over seeds, into a report.

- `seed-ensembles`: the seed paper's case study: single head vs mean / min / uwo ensembles for each head type across
  label-noise levels (`rmsearch.reproduce._study`).
- The grid studies (`rmsearch.reproduce._studies.GRID_STUDIES`): `beyond-bt` (Bradley-Terry vs classifiers,
  within- vs cross-prompt pairs), `data-scaling` (quality against the annotation budget), `coste` (conservative
  ensembles against over-optimization), `active` (which pairs to annotate). Each finding gets an effect and a 95%
  interval over seeds (`rmsearch.reproduce._verdicts`).

Wire into the CLI with `add_reproduce_parser(subparsers)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rmsearch.errors import RMSearchError
from rmsearch.reproduce._findings import MIN_SEEDS, Finding, findings, verdict_table
from rmsearch.reproduce._report import write_study
from rmsearch.reproduce._grid_study import GridOptions, GridStudy, write_grid_study
from rmsearch.reproduce._studies import GRID_STUDIES
from rmsearch.reproduce._study import QUICK_DATA, StudyConfig, run_study
from rmsearch.reproduce._verdicts import Verdict

STUDIES = ("seed-ensembles", *GRID_STUDIES)

__all__ = [
    "GRID_STUDIES", "Finding", "GridOptions", "GridStudy", "StudyConfig", "Verdict", "write_grid_study",
    "add_reproduce_parser", "cmd_reproduce", "findings", "run_study", "verdict_table",
    "write_study",
]


def add_reproduce_parser(subparsers) -> argparse.ArgumentParser:
    """Add `reproduce STUDY [--data DATA] --out DIR [--quick] [--seeds N] [--members K] [--address ADDR]
    [--workers N]` to an argparse subparsers object."""
    studies = "; ".join(f"{name}: {cls.help}" for name, cls in GRID_STUDIES.items())
    p = subparsers.add_parser("reproduce", help="rerun a study of the literature into a report: "
                              + ", ".join(STUDIES))
    p.add_argument("study", choices=STUDIES, help="seed-ensembles: single head vs mean/min/uwo ensembles for each "
                   "head type across label-noise levels (5/15/25/40%% flips), best-of-N against gold; "
                   + studies.replace("%", "%%"))
    p.add_argument("--data", help="data with gold rewards: 'synth' (default, the built-in gold world, e.g. "
                   "synth:seed=1) or a seed-format folder; pair datasets have no gold and are refused")
    p.add_argument("--out", required=True, help="report folder (an earlier report there is replaced)")
    p.add_argument("--quick", action="store_true", help=f"a tiny version for tests: {QUICK_DATA}, 1 seed, "
                   "2 members, few epochs, 5%% and 40%% flips (seconds; the numbers mean little)")
    p.add_argument("--seeds", type=int, help="seeds per cell: each draws the annotator's labels, the splits, the "
                   "members and, with --data synth (no seed= in it), the world itself; default 5 (quick: 1 for "
                   "seed-ensembles, 2 for the others: their verdicts need an interval)")
    p.add_argument("--members", type=int, help="seed-ensembles: members per ensemble; default 5 (quick: 2)")
    p.add_argument("--budgets", help="beyond-bt, data-scaling: annotation budgets in labelled pairs; active: the "
                   "labels after each round; comma-separated (e.g. 5000,10000,20000,40000); default: the study's")
    p.add_argument("--address", help="join a Ray cluster (e.g. 127.0.0.1:6379 or auto); default a local Ray")
    p.add_argument("--workers", type=int, help="most member jobs at once (default: all CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)
    return p


def cmd_reproduce(args) -> int:
    from rmsearch.console import plain_console
    from rmsearch.reproduce._report import _check_target

    if args.study in GRID_STUDIES:
        return cmd_grid_study(args)
    if args.budgets is not None:
        raise RMSearchError("--budgets: seed-ensembles trains on every pair the annotator draws; --budgets is for "
                            "beyond-bt, data-scaling and active. Omit it.")
    out = Path(args.out)
    _check_target(out)  # fail before training, not after
    config = StudyConfig.make(data=args.data, quick=args.quick, seeds=args.seeds,
                              members=getattr(args, "members", None))
    result = run_study(config, address=args.address, workers=args.workers,
                       progress=not getattr(args, "no_progress", False))
    write_study(out, result)
    console = plain_console()
    if config.quick:
        console.print(f"quick mode: a tiny world ({config.data}), {config.seeds} seed(s), {config.members} members; "
                      f"the numbers mean little", highlight=False)
    found = findings(result["rows"], result["per_seed"], MIN_SEEDS)
    for f in found:
        count = f" ({f.count})" if f.count else ""
        console.print(f"({f.key}) {f.claim}: [bold]{f.verdict}[/bold]{count}", highlight=False)
        for g in f.per_head:
            count = f" ({g.count})" if g.count else ""
            console.print(f"    {g.scope}: {g.verdict}{count}", highlight=False)
    if any(f.verdict == "not enough seeds" for f in found):
        console.print(f"not enough seeds: a verdict needs at least {MIN_SEEDS} seeds (this run has {config.seeds}); "
                      f"rerun with --seeds {MIN_SEEDS} or more", highlight=False)
    console.print(f"{len(result['rows'])} rows, {result['wall_seconds']:.0f} s; report: {out / 'report.md'}",
                  highlight=False)
    return 0


def parse_budgets(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise RMSearchError(f"--budgets {text}: give whole numbers of labelled pairs separated by commas, e.g. "
                            f"--budgets 5000,10000,20000.") from None


def cmd_grid_study(args) -> int:
    """Run one grid study and write its report; print its verdicts."""
    from rmsearch.console import plain_console
    from rmsearch.reproduce._grid_study import check_target

    cls = GRID_STUDIES[args.study]
    if args.members is not None:
        raise RMSearchError(f"--members: {args.study} sets its own ensemble sizes (--members is for "
                            f"seed-ensembles). Omit it.")
    if args.budgets is not None and not cls.sweeps_budget:
        raise RMSearchError(f"--budgets: {args.study} does not sweep annotation budgets (beyond-bt, data-scaling "
                            f"and active do). Omit it.")
    out = Path(args.out)
    check_target(out)  # fail before training, not after
    options = GridOptions(data=args.data, seeds=(2 if args.quick else 5) if args.seeds is None else args.seeds,
                          quick=args.quick, budgets=parse_budgets(args.budgets)).validate()
    study = cls(options)
    result = study.run(address=args.address, workers=args.workers, progress=not args.no_progress)
    verdicts = write_grid_study(out, study, result)
    console = plain_console()
    if options.quick:
        console.print(f"quick mode: a tiny world ({study.spec}), {options.seeds} seeds; the numbers mean little",
                      highlight=False)
    for v in verdicts:
        console.print(v.line()[2:].replace("**", ""), highlight=False, markup=False)
    console.print(f"{len(result['rows'])} rows, {result['wall_seconds']:.0f} s; report: {out / 'report.md'}",
                  highlight=False)
    return 0
