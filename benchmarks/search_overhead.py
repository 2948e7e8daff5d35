"""Speed target 3: where a 20-trial search spends its time, and how much of it is not member training.

    .venv/bin/python benchmarks/search_overhead.py                      # 20 trials, default space, D=512 world
    .venv/bin/python benchmarks/search_overhead.py --trials 5 --data synth:dim=64   # quick

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
    capacity = slots * wall
    fit = st.fit_seconds
    scoring = st.train_seconds - st.fit_seconds
    idle = capacity - st.train_seconds
    print(f"# search_overhead: {args.trials} trials, space {args.space}, data {args.data}, {slots} worker slots × "
          f"{search.threads} threads, {st.jobs} member jobs, {st.trained} members trained, {st.reused} reused")
    print()
    print(f"Target 3: time outside member training, {args.trials}-trial search (goal ≤ {GOAL:.0%} of wall time)")
    print(f"  wall time                      {wall:8.1f} s   capacity = {slots} slots × wall = {capacity:.1f} slot-s")
    print(f"  member training (in jobs)      {fit:8.1f} slot-s  {fit / capacity:6.1%}")
    print(f"  member scoring (in jobs)       {scoring:8.1f} slot-s  {scoring / capacity:6.1%}")
    print(f"  slots idle (driver, Ray, tail) {idle:8.1f} slot-s  {idle / capacity:6.1%}")
    print(f"  overhead = 1 − training share  {1 - fit / capacity:8.1%}   (goal ≤ {GOAL:.0%})")
    print("  driver phases (wall s; phases other than 'waiting on jobs' overlap training only while jobs run):")
    for name, secs in sorted(st.phases.items(), key=lambda kv: -kv[1]):
        print(f"    {name:28s} {secs:8.2f} s  {secs / wall:6.1%} of wall")


if __name__ == "__main__":
    main()
