"""Speed target 4: exact best-of-N from cached scores, and scoring a test split that does not fit the budget.

    .venv/bin/python benchmarks/eval_speed.py                   # 2,000 × 500 BoN; 8.2 GB split at D=2048
    .venv/bin/python benchmarks/eval_speed.py --prompts 200     # quick: a 0.8 GB split
    .venv/bin/python benchmarks/eval_speed.py --save            # also keep the table for README.md

1. `best_of_n` and the whole `evaluate_split` (BoN curve on the report's N grid, robustness metrics, pair
   metrics) on 2,000 prompts × 500 candidates of cached scores: median of 5 timings, goal < 1 s.
2. The seed's test split at D=2048 (2,000 × 500 rows, float32) is written to a .npy file, then a fresh process
   memory-maps it and scores every row with a 10-member MLP D→1024→512→1 head the way a member job scores its
   test split (`score_split`: chunks of rows read from the map). It reports its peak resident memory (which
   counts the file pages it has touched) against the split's size; goal ≤ 1.5×.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BON_GOAL_S = 1.0
RSS_GOAL = 1.5


def bon_timing(prompts: int, m: int, reps: int = 5) -> tuple[float, float]:
    from rmsearch.data._annotate import Pairs
    from rmsearch.data._task import Split
    from rmsearch.evaluate import best_of_n
    from rmsearch.evaluate._bon import log_grid
    from rmsearch.evaluate._split import evaluate_split

    rng = np.random.default_rng(0)
    gold = rng.standard_normal((prompts, m)).astype(np.float32)
    proxy = (gold + rng.standard_normal((prompts, m))).astype(np.float32)
    a = np.arange(0, prompts * m, 2)
    split = Split(source=np.zeros((0, 1), np.float32), rows=np.arange(prompts * m),
                  pairs=Pairs(None, a, a + 1, (gold.ravel()[a] > gold.ravel()[a + 1]).astype(np.float32)), gold=gold)
    ns = log_grid(m)
    out = []
    for fn in (lambda: best_of_n(proxy, gold, ns), lambda: evaluate_split(proxy.ravel(), split)):
        fn()
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times))
    return out[0], out[1]


def write_split(path: Path, rows: int, dim: int, block: int = 65536) -> None:
    """A float32 .npy of `rows` × `dim` standard normals, written block by block (never whole in memory)."""
    rng = np.random.default_rng(1)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    for s in range(0, rows, block):
        arr[s : s + block] = rng.standard_normal((min(block, rows - s), dim), dtype=np.float32)
    arr.flush()
    del arr


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status in KiB (VmHWM: peak resident set since exec; unlike
    ru_maxrss it does not inherit the parent's peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def score_child(path: str, members: int, threads: int) -> None:
    """Runs in a fresh process: memory-map the split, score it, print JSON with timings and peak RSS."""
    import torch

    from rmsearch.data._annotate import Pairs
    from rmsearch.data._task import Split
    from rmsearch.ensembles._train import score_split
    from rmsearch.heads import MLPConfig
    from rmsearch.heads.mlp import MLPHead

    torch.set_num_threads(threads)
    X = np.load(path, mmap_mode="r")
    dim = X.shape[1]
    rng = np.random.default_rng(2)
    sizes = [dim, 1024, 512, 1]
    arrays = [{"mean": np.zeros(dim, np.float32), "scale": np.ones(dim, np.float32),
               **{f"w{j}": (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)
                  for j, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))},
               **{f"b{j}": np.zeros(o, np.float32) for j, o in enumerate(sizes[1:])}} for _ in range(members)]
    head = MLPHead.from_arrays(MLPConfig(hidden=(1024, 512)), arrays)
    empty = np.zeros(0, np.int64)
    split = Split(source=X, rows=np.arange(len(X)), pairs=Pairs(None, empty, empty, empty.astype(np.float32)))
    before = _status_kib("VmRSS") * 1024
    t = time.perf_counter()
    scores = score_split(head, split)
    secs = time.perf_counter() - t
    print(json.dumps({"seconds": secs, "peak_rss": _status_kib("VmHWM") * 1024, "rss_before": before,
                      "file_rss_after": _status_kib("RssFile") * 1024, "anon_rss_after": _status_kib("RssAnon") * 1024,
                      "finite": bool(np.isfinite(scores).all()), "shape": list(scores.shape)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=2000, help="test prompts (default 2,000: the seed's test split)")
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--members", type=int, default=10, help="members of the scoring head (default 10)")
    ap.add_argument("--tmp", default=None, help="folder for the generated split (default: the system temp folder)")
    ap.add_argument("--save", action="store_true", help="save the table for README.md (benchmarks/results/)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    if args.child:
        return score_child(args.child, args.members, threads)

    print(f"# eval_speed: {threads} cores; {args.prompts} prompts × {args.candidates} candidates", flush=True)
    bon_s, split_s = bon_timing(args.prompts, args.candidates)
    print()
    print(f"Target 4a: exact best-of-N, {args.prompts} × {args.candidates} cached scores (goal < {BON_GOAL_S:.0f} s)")
    print(f"  best_of_n on the report's N grid: {bon_s * 1000:8.1f} ms  (median of 5)")
    print(f"  evaluate_split (curve + metrics): {split_s * 1000:8.1f} ms  (median of 5)")

    rows = args.prompts * args.candidates
    size = rows * args.dim * 4
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "test_split.npy"
        t = time.perf_counter()
        write_split(path, rows, args.dim)
        print(f"# wrote {rows:,} × {args.dim} float32 ({size / 1e9:.1f} GB) in {time.perf_counter() - t:.0f} s", flush=True)
        out = subprocess.run([sys.executable, __file__, "--child", str(path), "--members", str(args.members)],
                             check=True, capture_output=True, text=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
    markdown = table(args, bon_s, split_s, size, res)
    print()
    print(markdown)
    if args.save:
        from readme import save

        saved = save("eval-speed", markdown, {"best_of_n_s": bon_s, "evaluate_split_s": split_s, "split_bytes": size,
                                              **res})
        print(f"\nsaved {saved}; `python benchmarks/readme.py` puts it in README.md")


def table(args, bon_s: float, split_s: float, size: int, res: dict) -> str:
    """Targets 4a and 4b as Markdown."""
    rows = args.prompts * args.candidates
    ratio = res["peak_rss"] / size
    return "\n".join([
        "| # | measure | goal | measured | |", "|---|---|---|---|---|",
        f"| 4a | exact BoN on {args.prompts:,} prompts × {args.candidates} cached scores: `best_of_n` on the report's N "
        f"grid (median of 5) | < {BON_GOAL_S:.0f} s | **{bon_s * 1000:.0f} ms** | "
        f"{'met' if bon_s < BON_GOAL_S else 'not met'} |",
        f"| 4a | the whole `evaluate_split` (curve, robustness and pair metrics) | < {BON_GOAL_S:.0f} s | "
        f"{split_s * 1000:.0f} ms | {'met' if split_s < BON_GOAL_S else 'not met'} |",
        f"| 4b | peak RSS scoring the {size / 1e9:.1f} GB split ({rows:,} × {args.dim} float32) from a memory map with "
        f"a {args.members}-member MLP D→1024→512→1 | ≤ {RSS_GOAL}× the split | {res['peak_rss'] / 2**30:.2f} GiB = "
        f"**{ratio:.2f}×** | {'met' if ratio <= RSS_GOAL else 'not met'} |",
        "", f"After scoring, {res['file_rss_after'] / 2**30:.2f} GiB of the process's memory were the split's mapped "
        f"file pages (page cache, dropped by the kernel under pressure) and {res['anon_rss_after'] / 2**30:.2f} GiB its "
        f"own; fp32 scoring ran at {rows / res['seconds']:,.0f} rows/s ({res['seconds']:.0f} s).",
    ])


if __name__ == "__main__":
    main()
