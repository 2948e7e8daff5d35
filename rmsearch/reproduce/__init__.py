"""`rmsearch reproduce seed-ensembles`: the seed paper's reward-model-ensemble case study in one command.

Single head vs mean / min / uwo ensembles for each head type (mlp, mlp_clf, gbdt, linear) across label-noise
levels, trained on Ray, evaluated with exact best-of-N on the test split; a report folder states which findings
of the literature the numbers reproduce. Wire into the CLI with `add_reproduce_parser(subparsers)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rmsearch.reproduce._findings import MIN_SEEDS, Finding, findings, verdict_table
from rmsearch.reproduce._report import write_study
from rmsearch.reproduce._study import QUICK_DATA, StudyConfig, run_study

STUDIES = ("seed-ensembles",)

__all__ = [
    "Finding", "StudyConfig", "add_reproduce_parser", "cmd_reproduce", "findings", "run_study", "verdict_table",
    "write_study",
]


def add_reproduce_parser(subparsers) -> argparse.ArgumentParser:
    """Add `reproduce STUDY [--data DATA] --out DIR [--quick] [--seeds N] [--members K] [--address ADDR]
    [--workers N]` to an argparse subparsers object."""
    p = subparsers.add_parser("reproduce", help="rerun a case study of the literature (seed-ensembles) into a report")
    p.add_argument("study", choices=STUDIES, help="seed-ensembles: single head vs mean/min/uwo ensembles for each head "
                   "type across label-noise levels (5/15/25/40%% flips), best-of-N against gold")
    p.add_argument("--data", help="data with gold rewards: 'synth' (default, the built-in gold world, e.g. "
                   "synth:seed=1) or a seed-format folder; pair datasets have no gold and are refused")
    p.add_argument("--out", required=True, help="report folder (an earlier report there is replaced)")
    p.add_argument("--quick", action="store_true", help=f"a tiny version for tests: {QUICK_DATA}, 1 seed, "
                   "2 members, few epochs, 5%% and 40%% flips (seconds; the numbers mean little)")
    p.add_argument("--seeds", type=int, help="seeds per cell: each draws the annotator's labels, the splits, the "
                   "members and, with --data synth (no seed= in it), the world itself; default 5 (quick: 1)")
    p.add_argument("--members", type=int, help="members per ensemble; default 5 (quick: 2)")
    p.add_argument("--address", help="join a Ray cluster (e.g. 127.0.0.1:6379 or auto); default a local Ray")
    p.add_argument("--workers", type=int, help="most member jobs at once (default: all CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)
    return p


def cmd_reproduce(args) -> int:
    from rmsearch.console import plain_console
    from rmsearch.reproduce._report import _check_target

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
