"""Speed target 3: where a 20-trial search spends its time, and how much of it is not member training.

    .venv/bin/python benchmarks/search_overhead.py                      # 20 trials, default space, D=512 world
    .venv/bin/python benchmarks/search_overhead.py --trials 5 --data synth:dim=64   # quick
    .venv/bin/python benchmarks/search_overhead.py --save     # also keep the table for README.md

A real launch (local Ray, SQLite storage, TensorBoard, final evaluation and export) in a temporary run folder.
Worker slots × wall time is the capacity; member training (measured inside the jobs, final stress included) is the
useful part; the rest is overhead: member jobs scoring their validation/test rows, and slots idle while the driver
starts Ray, asks and tells Optuna, evaluates ensembles, writes TensorBoard and the head cache, and runs the final
report. Driver phases are listed with their own wall time (while workers train they overlap it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

GOAL = 0.10


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--data", default="synth:dim=512,train_prompts=4000,test_prompts=200",
                    help="data spec (default: the built-in world at D=512 with 4,000 × 10 training responses)")
    ap.add_argument("--space", default="default")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-final", action="store_true", help="skip the final evaluation and export")
    ap.add_argument("--save", action="store_true", help="save the table for README.md (benchmarks/results/)")
    args = ap.parse_args()

    from rmsearch.search import LaunchOptions, Search

    with tempfile.TemporaryDirectory() as tmp:
        opts = LaunchOptions(data=args.data, space=args.space, trials=args.trials, runs=Path(tmp), workers=args.workers,
                             final=not args.no_final, progress=False)
        t = time.perf_counter()
        search = Search(opts).run()
        wall = time.perf_counter() - t
        st = search.state
        slots = search.slots
    print(f"# search_overhead: {args.trials} trials, space {args.space}, data {args.data}, {slots} worker slots × "
          f"{search.threads} threads, {st.jobs} member jobs, {st.trained} members trained, {st.reused} reused")
    markdown, data = breakdown(args, st, slots, wall)
    print()
    print(markdown)
    if args.save:
        from readme import save

        print(f"\nsaved {save('search-overhead', markdown, data)}; `python benchmarks/readme.py` puts it in README.md")


def breakdown(args, st, slots: int, wall: float) -> tuple[str, dict]:
    """Where the slots' time went, and the driver's phases, as Markdown; and the numbers behind it."""
    capacity = slots * wall
    fit = st.fit_seconds
    parts = {"member training in jobs (the final evaluation's baselines, and stress training where it runs, included)": fit,
             "member jobs scoring their validation and test rows": st.train_seconds - st.fit_seconds,
             "slots idle (driver: Ray start, Optuna, TensorBoard, ensemble evaluation, final report; tail)":
                 capacity - st.train_seconds}
    overhead = 1 - fit / capacity
    lines = [f"Target 3, a {args.trials}-trial search (space `{args.space}`, data `{args.data}`): {wall:.0f} s wall "
             f"time on {slots} worker slots = {capacity:.0f} slot-seconds; time outside member training "
             f"**{overhead:.1%}** (goal ≤ {GOAL:.0%}: {'met' if overhead <= GOAL else 'not met'}).", "",
             "| where the slot time went | slot-seconds | share |", "|---|---|---|"]
    lines += [f"| {name} | {secs:.1f} | {secs / capacity:.1%} |" for name, secs in parts.items()]
    lines += ["", "| driver phase | wall seconds |", "|---|---|"]
    lines += [f"| {name} | {secs:.1f} |" for name, secs in sorted(st.phases.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines), {"wall": wall, "slots": slots, "parts": parts, "overhead": overhead,
                              "phases": dict(st.phases), "jobs": st.jobs, "trained": st.trained}


if __name__ == "__main__":
    main()
