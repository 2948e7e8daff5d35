"""Speed target 2, in process: rmsearch's bf16 training loop for the seed-paper ensemble (10 MLPs D→1024→512→1)
against this machine's bf16 matmul peak, beside the same recipe in fp32 and (optionally) the seed's recipe on the
same pairs. Target 1, end to end with quality over data seeds, is `seed_recipe.py`.

    .venv/bin/python benchmarks/train_speed.py --variants "1 pass" "1 pass fp32" --save   # target 2 for README.md
    .venv/bin/python benchmarks/train_speed.py --variants "1 pass" "1 pass fp32" --save --name train-speed-avx512bf16
                                                                # the same on a CPU with AVX512-BF16 and no AMX

    .venv/bin/python benchmarks/train_speed.py                  # scale 0.1: 4,000 × 10 train, 200 × 500 test
    .venv/bin/python benchmarks/train_speed.py --scale 0.01     # quick
    .venv/bin/python benchmarks/train_speed.py --scale 1        # the seed's shapes: 40,000 × 10 train, 2,000 × 500 test
    .venv/bin/python benchmarks/train_speed.py --scale 1 --dims 2048 512 --variants seed "1 pass" --repeats 1 \
        --eval-prompts 300                                      # the seed's shapes, quality on 300 prompts per split

Every ratio printed is measured in this run. The baseline gets all annotated training pairs (rmsearch's train +
early-stop pairs) and makes its own 80/20 split per member; rmsearch trains on task.train with `RECIPES`.
Quality is the mean of standardized member scores: pairwise accuracy on the split's labelled pairs and exact
best-of-N gold at N = 500, each with one standard error, on the validation split (the target) and the test split.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from rmsearch.process_env import training_env

os.environ.update(training_env())  # as the `rmsearch` command and its workers train (before torch loads)
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import matmul_gflops  # noqa: E402
from _seed_baseline import score_seed_ensemble, train_seed_ensemble  # noqa: E402

from rmsearch.data import SynthConfig, make_task, synth  # noqa: E402
from rmsearch.data._task import Split  # noqa: E402
from rmsearch.ensembles._train import training_rows  # noqa: E402
from rmsearch.evaluate import best_of_n, pair_metrics  # noqa: E402
from rmsearch.heads import MLPConfig, make_head  # noqa: E402
from rmsearch.heads._torch import cpu_has_bf16, use_bf16  # noqa: E402

MEMBERS = 10
HIDDEN = (1024, 512)
ONE_PASS = dict(hidden=HIDDEN, lr=1e-3, lr_schedule="cosine", batch_size=512, epochs=1, patience=0)
RECIPES = {"1 pass": ONE_PASS, "2 passes": {**ONE_PASS, "epochs": 2}}
"""rmsearch's recipes for this ensemble: one or two passes of 512-pair batches (each pair once) at the seed's lr,
decayed to 0 over the run (half a cosine). The seed's stop rule cannot stop before its 4th pass over both orderings.
At the seed's shapes the decay is what matches the seed's quality (the README's Performance section has the recipes
tried)."""
VARIANTS = ("seed", "1 pass", "1 pass fp32", "2 passes")
SPEED_GOAL = 10.0
PEAK_GOAL = 0.5


def bf16_peak(n: int = 4096, warmup_s: float = 2.0, reps: int = 10) -> float:
    """Median GFLOP/s of a plain bf16 torch.matmul of two n×n matrices, after `warmup_s` seconds of the same
    matmuls: on CPUs with AMX the first calls run at half speed or less, which would understate the peak."""
    return matmul_gflops(torch.bfloat16, n, reps, warmup_s)


def ensemble_quality(member_scores: np.ndarray, member_train: np.ndarray, split) -> dict:
    """Pairwise accuracy and BoN gold at N = M (each ± one standard error) of the mean of standardized member
    scores on `split`."""
    mu = member_train.mean(1, keepdims=True)
    sd = member_train.std(1, keepdims=True)
    z = ((member_scores - mu) / np.where(sd > 1e-12, sd, 1.0)).mean(0)
    p = split.pairs
    acc = pair_metrics(z[p.a], z[p.b], p.y)["accuracy"]
    gold = split.gold
    proxy = z.reshape(gold.shape)
    m = gold.shape[1]
    per_prompt = np.array([best_of_n(proxy[i : i + 1], gold[i : i + 1], [m])[0] for i in range(len(gold))])
    return {"acc": float(acc), "acc_se": float(np.sqrt(acc * (1 - acc) / len(p.y))),
            "bon": float(per_prompt.mean()), "bon_se": float(per_prompt.std(ddof=1) / np.sqrt(len(per_prompt)))}


def first_prompts(split: Split, n: int | None) -> Split:
    """The split cut to its first `n` prompts (rows are prompt-major; pairs within a prompt stay whole)."""
    if n is None or n >= len(split.gold):
        return split
    m = split.gold.shape[1]
    keep = (split.pairs.a < n * m) & (split.pairs.b < n * m)
    return Split(split.source, split.rows[: n * m], split.pairs.subset(np.flatnonzero(keep)), split.gold[:n])


def quality(score, train_rows, splits: dict) -> dict:
    """Quality on the validation split (the target's measure) and on the test split (a second sample)."""
    train = score(train_rows)
    return {name: ensemble_quality(np.concatenate([score(blk) for _, blk in split.chunks()], axis=1), train, split)
            for name, split in splits.items()}


def run_baseline(task, splits):
    tr, st = task.train, task.stop
    a, b = np.concatenate([tr.a, st.a]), np.concatenate([tr.b, st.b])
    y = np.concatenate([tr.y, st.y])
    t = time.perf_counter()
    models = train_seed_ensemble(tr.X, a, b, y, members=MEMBERS, seed=0)
    secs = time.perf_counter() - t
    return secs, lambda: quality(lambda X: score_seed_ensemble(models, X), training_rows(task), splits), \
        [m.epochs_ for m in models]


def run_rmsearch(task, splits, recipe: str, precision: str = "auto", device: str = "cpu"):
    cfg = MLPConfig(**RECIPES[recipe], precision=precision)
    t = time.perf_counter()
    head = make_head(cfg, seeds=range(MEMBERS), device=device).fit(task.train, stop=task.stop)
    if device != "cpu":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t
    return secs, lambda: quality(head.score, training_rows(task), splits), head.epochs_


def train_flops(task, epochs: float, dim: int) -> float:
    """Forward + backward FLOPs of rmsearch's training loop per member: rows × (4·D·1024 + 6·(1024·512 + 512)), with
    rows = the unique rows of each batch, counted for one batch order and scaled by the epochs run. The first layer
    counts 4, not 6: its input is data, so no gradient is computed for it."""
    per_row = 4 * dim * HIDDEN[0] + 6 * (HIDDEN[0] * HIDDEN[1] + HIDDEN[1])
    n, bs = len(task.train), RECIPES["1 pass"]["batch_size"]
    perm = np.random.default_rng(0).permutation(n)
    rows = sum(len(np.unique(np.concatenate([task.train.a[perm[s : s + bs]], task.train.b[perm[s : s + bs]]])))
               for s in range(0, n, bs))
    return rows * per_row * MEMBERS * epochs


def _q(q: dict) -> str:
    return f"{q['acc']:.4f}±{q['acc_se']:.4f}  {q['bon']:6.3f}±{q['bon_se']:.3f}"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.1,
                    help="share of the seed's prompt counts (1 = 40,000 train / 2,000 test prompts); default 0.1")
    ap.add_argument("--dims", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--repeats", type=int, default=3, help="timings per rmsearch variant (median printed)")
    ap.add_argument("--baseline-repeats", type=int, default=1,
                    help="timings of the (slow) baseline; default 1 to keep the run short")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                    help="variants to run (default: all; '1 pass' is needed for target 2)")
    ap.add_argument("--save", action="store_true", help="save target 2's table for README.md (benchmarks/results/)")
    ap.add_argument("--name", default="train-speed",
                    help="results name to save under (one per kind of CPU: README.md shows each; default train-speed)")
    ap.add_argument("--eval-prompts", type=int, default=None,
                    help="measure quality on N prompts of each evaluation split, generating only those (default: all; "
                         "the full test pool at --scale 1 and D=2048 does not fit in 24 GiB beside the training rows)")
    args = ap.parse_args()
    if "1 pass" not in args.variants:
        ap.error("--variants must include '1 pass': target 2 measures it")
    if args.eval_prompts is not None and args.eval_prompts < 1:
        ap.error(f"--eval-prompts {args.eval_prompts}: quality needs at least 1 prompt per split")
    return args


def prompt_counts(args) -> tuple[int, int]:
    """Train and test prompts to generate at `args.scale`; with --eval-prompts, only the test prompts quality is
    measured on (the test pool is split in two)."""
    train_prompts = max(20, int(round(40000 * args.scale)))
    test_prompts = max(4, int(round(2000 * args.scale)))
    if args.eval_prompts:
        test_prompts = min(test_prompts, 2 * args.eval_prompts)
    return train_prompts, test_prompts


def print_setup(args, train_prompts: int, test_prompts: int) -> None:
    print(f"# train_speed: {os.cpu_count()} cores, torch {torch.__version__}, cpu_has_bf16={cpu_has_bf16()}, "
          f"scale={args.scale}: {train_prompts} × 10 train, {test_prompts} × 500 test, {MEMBERS} members, "
          f"repeats rmsearch={args.repeats} baseline={args.baseline_repeats}", flush=True)
    for name, recipe in RECIPES.items():
        if name not in args.variants:
            continue
        print(f"# rmsearch {name}: MLPConfig({', '.join(f'{k}={v}' for k, v in recipe.items())})", flush=True)


def chosen_variants(args) -> dict:
    """Variant name -> (run(task, splits) -> (seconds, quality(), epochs), repeats), for the variants asked for,
    plus '1 pass cuda' where a CUDA GPU is present."""
    variants = {"seed": (run_baseline, args.baseline_repeats),
                "1 pass": (lambda t, s: run_rmsearch(t, s, "1 pass"), args.repeats),
                "1 pass fp32": (lambda t, s: run_rmsearch(t, s, "1 pass", "fp32"), 1),
                "2 passes": (lambda t, s: run_rmsearch(t, s, "2 passes"), 1)}
    variants = {name: v for name, v in variants.items() if name in args.variants}
    if torch.cuda.is_available():  # the same recipe on the GPU too; the CPU rows stay the reference
        variants["1 pass cuda"] = (lambda t, s: run_rmsearch(t, s, "1 pass", device="cuda"), args.repeats)
        print(f"# CUDA GPU present: {torch.cuda.get_device_name()}; '1 pass cuda' rows train there (bf16 autocast "
              f"{'on' if torch.cuda.is_bf16_supported() else 'off'})", flush=True)
    else:
        print("# no CUDA GPU: CPU rows only", flush=True)
    return variants


def measure_dim(dim: int, variants: dict, train_prompts: int, test_prompts: int, eval_prompts: int | None):
    """Time every variant at embedding dim `dim` and measure its quality: (dim, {variant: (median seconds,
    quality, epochs)}, achieved bf16 GFLOP/s of '1 pass' or None where 'auto' runs fp32)."""
    task = make_task(synth(SynthConfig(dim=dim, train_prompts=train_prompts, test_prompts=test_prompts,
                                       test_responses=500)))
    splits = {"val": first_prompts(task.val, eval_prompts), "test": first_prompts(task.test, eval_prompts)}
    print(f"# D={dim}: {len(task.train)} train + {len(task.stop)} early-stop pairs; quality on "
          f"{' and '.join(f'{n} {s.gold.shape[0]} prompts × {s.gold.shape[1]}' for n, s in splits.items())}",
          flush=True)
    res = {}
    for name, (fn, reps) in variants.items():
        out = [fn(task, splits) for _ in range(reps)]
        q = out[0][1]()
        res[name] = (statistics.median(o[0] for o in out), q, out[0][2])
        print(f"#   {name:12s} {[round(o[0], 2) for o in out]} s, epochs {out[0][2]}, "
              f"val acc/BoN {_q(q['val'])}, test acc/BoN {_q(q['test'])}", flush=True)
    achieved = None
    if use_bf16("auto", dim):
        achieved = train_flops(task, res["1 pass"][2], dim) / res["1 pass"][0] / 1e9
    return dim, res, achieved


def print_targets(rows: list, peak: float) -> None:
    print()
    if not all("seed" in res for _, res, _ in rows):
        return print_target2(rows, peak)
    print(f"Target 1: seed-paper ensemble (10 MLPs D→1024→512→1), same pairs; speedup goal ≥ {SPEED_GOAL:.0f}×, "
          f"validation accuracy and BoN gold at N=500 ≥ baseline (± one standard error)")
    print(f"{'D':>5} {'variant':>12} {'seconds':>8} {'speedup':>8}   {'val acc':>15} {'val BoN@500':>13}   "
          f"{'test acc':>15} {'test BoN@500':>13}")
    for dim, res, _ in rows:
        base = res["seed"][0]
        for name, (secs, q, _) in res.items():
            print(f"{dim:>5} {name:>12} {secs:>8.2f} {base / secs:>7.1f}×   {_q(q['val'])}   {_q(q['test'])}")
    print()
    print_target2(rows, peak)


def print_target2(rows: list, peak: float) -> None:
    print("Target 2: rmsearch bf16 training loop vs bf16 matmul peak (goal ≥ 50%); FLOPs = unique batch rows × "
          "(4·D·1024 + 6·(1024·512 + 512)) × members × epochs (no input gradient at the first layer), over fit wall "
          "time (early-stop passes not counted)")
    for dim, res, achieved in rows:
        if achieved is None:
            print(f"D={dim}: 'auto' ran fp32 here (cpu_has_bf16={cpu_has_bf16()}); no bf16 figure")
        else:
            print(f"D={dim}: achieved {achieved:.1f} GFLOP/s, peak {peak:.1f} GFLOP/s, "
                  f"{achieved / peak:.0%} of peak (goal {PEAK_GOAL:.0%})")


def main():
    args = parse_args()
    torch.set_num_threads(os.cpu_count())
    train_prompts, test_prompts = prompt_counts(args)
    print_setup(args, train_prompts, test_prompts)
    peak = bf16_peak()
    print(f"# bf16 matmul peak (4096², median of 10 after 2 s of warm-up): {peak:.1f} GFLOP/s", flush=True)
    variants = chosen_variants(args)
    rows = [measure_dim(dim, variants, train_prompts, test_prompts, args.eval_prompts) for dim in args.dims]
    print_targets(rows, peak)
    if args.save:
        from readme import save

        markdown, data = target2_markdown(args, rows, peak)
        print(f"\nsaved {save(args.name, markdown, data)}; `python benchmarks/readme.py` puts it in README.md")


def share_cell(share: float) -> str:
    return f"**{share:.0%}** (goal ≥ {PEAK_GOAL:.0%}: {'met' if share >= PEAK_GOAL else 'not met'})"


def target2_markdown(args, rows: list, peak: float) -> tuple[str, list]:
    """Target 2 as Markdown: per dim, every variant's seconds and validation quality, and the bf16 loop's share of
    the peak; and the numbers behind it."""
    lines = [f"bf16 matmul peak of this machine (4096², median of 10 after 2 s of warm-up): {peak:.0f} GFLOP/s. {MEMBERS} members, "
             f"{RECIPES['1 pass']['batch_size']}-pair batches, one pass, scale {args.scale}.", "",
             "| D | variant | seconds | val. accuracy | val. BoN@500 | GFLOP/s | share of the bf16 peak |",
             "|---|---|---|---|---|---|---|"]
    data = []
    for dim, res, achieved in rows:
        for name, (secs, q, _) in res.items():
            bf16 = name == "1 pass" and achieved is not None
            lines.append(f"| {dim} | {name} | {secs:.1f} | {q['val']['acc']:.3f} ± {q['val']['acc_se']:.3f} | "
                         f"{q['val']['bon']:.2f} ± {q['val']['bon_se']:.2f} | {f'{achieved:.0f}' if bf16 else ''} | "
                         f"{share_cell(achieved / peak) if bf16 else ''} |")
            data.append({"dim": dim, "variant": name, "seconds": secs, "quality": q,
                         "gflops": achieved if bf16 else None})
    return "\n".join(lines), data


if __name__ == "__main__":
    main()
