"""Issue 4, targets 1 and 2: train the seed-paper ensemble (10 members) with the seed's recipe and with rmsearch
on the same pairs, and measure rmsearch's bf16 training loop against this machine's bf16 matmul peak.

    .venv/bin/python benchmarks/train_speed.py                  # quick (scale 0.01)
    .venv/bin/python benchmarks/train_speed.py --scale 1        # the seed's shapes: 40,000 × 10 train, 2,000 × 500 test

Every ratio printed is measured in this run. The baseline gets all annotated training pairs (rmsearch's train +
early-stop pairs) and makes its own 80/20 split per member; rmsearch trains on task.train and stops on task.stop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _seed_baseline import score_seed_ensemble, train_seed_ensemble  # noqa: E402

from rmsearch.data import SynthConfig, make_task, synth  # noqa: E402
from rmsearch.ensembles._train import score_split, training_rows  # noqa: E402
from rmsearch.evaluate import best_of_n, pair_metrics  # noqa: E402
from rmsearch.heads import MLPConfig, make_head  # noqa: E402
from rmsearch.heads._torch import cpu_has_bf16, use_bf16  # noqa: E402

MEMBERS = 10
HIDDEN = (1024, 512)
SPEED_GOAL = 10.0
PEAK_GOAL = 0.5


def bf16_peak(n: int = 4096, reps: int = 5) -> float:
    """Median GFLOP/s of a plain bf16 torch.matmul of two n×n matrices."""
    a = torch.randn(n, n, dtype=torch.bfloat16)
    b = torch.randn(n, n, dtype=torch.bfloat16)
    torch.matmul(a, b)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def ensemble_quality(member_val: np.ndarray, member_train: np.ndarray, task) -> tuple[float, float]:
    """Validation pairwise accuracy and BoN gold at N = M of the mean of standardized member scores."""
    mu = member_train.mean(1, keepdims=True)
    sd = member_train.std(1, keepdims=True)
    z = ((member_val - mu) / np.where(sd > 1e-12, sd, 1.0)).mean(0)
    p = task.val.pairs
    acc = pair_metrics(z[p.a], z[p.b], p.y)["accuracy"]
    gold = task.val.gold
    m = gold.shape[1]
    bon = float(best_of_n(z.reshape(gold.shape), gold, [m])[0])
    return float(acc), bon


def run_baseline(task):
    tr, st = task.train, task.stop
    a, b = np.concatenate([tr.a, st.a]), np.concatenate([tr.b, st.b])
    y = np.concatenate([tr.y, st.y])
    t = time.perf_counter()
    models = train_seed_ensemble(tr.X, a, b, y, members=MEMBERS, seed=0)
    secs = time.perf_counter() - t
    val = np.concatenate([score_seed_ensemble(models, blk) for _, blk in task.val.chunks()], axis=1)
    train = score_seed_ensemble(models, training_rows(task))
    return secs, ensemble_quality(val, train, task), [m.epochs_ for m in models]


def run_rmsearch(task, precision: str):
    cfg = MLPConfig(hidden=HIDDEN, lr=1e-3, batch_size=5120, epochs=30, patience=3, precision=precision)
    t = time.perf_counter()
    head = make_head(cfg, seeds=range(MEMBERS)).fit(task.train, stop=task.stop)
    secs = time.perf_counter() - t
    val = score_split(head, task.val)
    train = head.score(training_rows(task))
    return secs, ensemble_quality(val, train, task), head.epochs_


def train_flops(task, epochs: int, dim: int, batch_size: int = 5120) -> float:
    """Forward + backward FLOPs of rmsearch's training loop: 3 × 2 × rows × params-ish per member per step, with
    rows = unique rows of each batch (counted exactly for one batch order, then scaled by the epochs run)."""
    per_row = dim * HIDDEN[0] + HIDDEN[0] * HIDDEN[1] + HIDDEN[1]
    n = len(task.train)
    perm = np.random.default_rng(0).permutation(n)
    rows = sum(len(np.unique(np.concatenate([task.train.a[perm[s : s + batch_size]], task.train.b[perm[s : s + batch_size]]])))
               for s in range(0, n, batch_size))
    return 3 * 2 * rows * per_row * MEMBERS * epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.01,
                    help="share of the seed's prompt counts (1 = 40,000 train / 2,000 test prompts); default 0.01")
    ap.add_argument("--dims", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--repeats", type=int, default=3, help="timings per rmsearch variant (median printed)")
    ap.add_argument("--baseline-repeats", type=int, default=1,
                    help="timings of the (slow) baseline; default 1 to keep the quick run short")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    train_prompts = max(20, int(round(40000 * args.scale)))
    test_prompts = max(4, int(round(2000 * args.scale)))
    print(f"# train_speed: {os.cpu_count()} cores, torch {torch.__version__}, cpu_has_bf16={cpu_has_bf16()}, "
          f"scale={args.scale}: {train_prompts} × 10 train, {test_prompts} × 500 test, {MEMBERS} members, "
          f"repeats rmsearch={args.repeats} baseline={args.baseline_repeats}", flush=True)
    peak = bf16_peak()
    print(f"# bf16 matmul peak (4096², median of 5): {peak:.1f} GFLOP/s", flush=True)
    rows = []
    for dim in args.dims:
        task = make_task(synth(SynthConfig(dim=dim, train_prompts=train_prompts, test_prompts=test_prompts,
                                           test_responses=500)))
        print(f"# D={dim}: {len(task.train)} train + {len(task.stop)} early-stop pairs, "
              f"val {task.val.gold.shape[0]} prompts × {task.val.gold.shape[1]}", flush=True)
        res = {}
        for name, fn in (("baseline", run_baseline), ("auto", lambda t: run_rmsearch(t, "auto")),
                         ("fp32", lambda t: run_rmsearch(t, "fp32"))):
            reps = args.baseline_repeats if name == "baseline" else args.repeats
            out = [fn(task) for _ in range(reps)]
            res[name] = (statistics.median(o[0] for o in out), out[0][1], out[0][2])
            print(f"#   {name:8s} {[round(o[0], 2) for o in out]} s, epochs {out[0][2]}, "
                  f"val acc {out[0][1][0]:.4f}, BoN gold@N=500 {out[0][1][1]:.4f}", flush=True)
        achieved = None
        if use_bf16("auto", dim):
            achieved = train_flops(task, res["auto"][2], dim) / res["auto"][0] / 1e9
        rows.append((dim, res, achieved))

    print()
    print("Target 1: seed-paper ensemble (10 members), same pairs; speedup goal ≥ 10×, accuracy/BoN ≥ baseline")
    hdr = (f"{'D':>5} {'base s':>8} {'auto s':>8} {'fp32 s':>8} {'auto ×':>7} {'fp32 ×':>7} {'goal':>5} "
           f"{'acc base':>8} {'acc auto':>8} {'acc fp32':>8} {'BoN base':>8} {'BoN auto':>8} {'BoN fp32':>8}")
    print(hdr)
    for dim, res, _ in rows:
        b, au, f = res["baseline"], res["auto"], res["fp32"]
        print(f"{dim:>5} {b[0]:>8.2f} {au[0]:>8.2f} {f[0]:>8.2f} {b[0] / au[0]:>6.1f}× {b[0] / f[0]:>6.1f}× {'10×':>5} "
              f"{b[1][0]:>8.4f} {au[1][0]:>8.4f} {f[1][0]:>8.4f} {b[1][1]:>8.4f} {au[1][1]:>8.4f} {f[1][1]:>8.4f}")
    print()
    print("Target 2: rmsearch bf16 training loop vs bf16 matmul peak (goal ≥ 50%); FLOPs = 6 × unique batch rows "
          "× (D·1024 + 1024·512 + 512) × members × epochs, over fit wall time (early-stop passes not counted)")
    for dim, res, achieved in rows:
        if achieved is None:
            print(f"D={dim}: 'auto' ran fp32 here (cpu_has_bf16={cpu_has_bf16()}); no bf16 figure")
        else:
            print(f"D={dim}: achieved {achieved:.1f} GFLOP/s, peak {peak:.1f} GFLOP/s, "
                  f"{achieved / peak:.0%} of peak (goal {PEAK_GOAL:.0%})")


if __name__ == "__main__":
    main()
