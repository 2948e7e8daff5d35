"""Speed target 1, split in two: the implementation (the seed's exact recipe run through `rmsearch launch`, against
the seed's code) and the recipe (what one pass with a decaying learning rate buys), end to end, with quality.

    .venv/bin/python benchmarks/seed_recipe.py                # 3 data seeds at the seed's shapes, about 30 min
    .venv/bin/python benchmarks/seed_recipe.py --seeds 0 --train-prompts 400 --test-prompts 40   # quick
    .venv/bin/python benchmarks/seed_recipe.py --save         # also keep the table for README.md
    .venv/bin/python benchmarks/seed_recipe.py --dim 2048 --train-prompts 10000 --seeds 0 \
        --variants "seed's code, fp32" "rmsearch, seed's recipe, bf16" --save   # target 1a at the seed's full width

For each data seed s: `rmsearch data synth` writes a seed-shaped world (by default D=512, 4,000 training prompts × 10
responses, 400 test prompts × 500 candidates), and every variant runs as whole processes, back to back, on the
same annotated pairs (Bradley-Terry annotator of quality 1.0, 10 pairs a prompt, task seed s):

- seed's code: `benchmarks/_seed_baseline.py` (the seed's recipe in plain torch, float32, members one after
  another), which then scores the test split;
- rmsearch, the seed's recipe: `rmsearch launch --space FILE --trials 1 --no-final` then `rmsearch export` (which
  scores the test split for the export's manifest), where FILE is the built-in `seed-paper` space made the seed's
  exact recipe (`SEED_EXACT`): batches of 10,240 samples from both orderings of every pair (`mlp.orderings: 2`),
  its early stopping (`mlp.stop_rule: rising`, the last weights kept) on each member's own random 20% of the pairs
  (`mlp.holdout: 0.2`), raw inputs; in fp32, then in bf16;
- two recipe rows, the same launch with: each pair once an epoch in 5,120-pair batches (`ONCE`, the built-in
  seed-paper point's batches), and one pass of 512-pair batches with lr 1e-3 decayed to 0 (`ONE_PASS`).

Seconds are wall time of the whole processes (rmsearch's include Ray's start, Optuna, TensorBoard and scoring the
validation split, which the seed's code does not do); a variant's speedup is the median over seeds of (seed's code
seconds) / (its seconds). Quality is BoN gold at N=200 and N=M=500 on the test split's prompts (which no run trained
or selected on), of each ensemble's mean raw score; differences against the seed's code are paired per prompt and
pooled over seeds, with a 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import RECIPES  # noqa: E402

from rmsearch.data import Annotator, TaskConfig, load_data, make_task  # noqa: E402
from rmsearch.evaluate import best_of_n, paired_bootstrap  # noqa: E402
from rmsearch.export import load_ensemble  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED_PAPER = ROOT / "rmsearch" / "spaces" / "builtin" / "seed-paper.yaml"
SEED_EXACT = {"mlp.orderings": 2, "mlp.batch_size": 10240, "mlp.stop_rule": "rising", "mlp.holdout": 0.2,
              "mlp.normalize": False}
"""The built-in seed-paper space made the seed's exact recipe: batches of 10,240 samples drawn from both orderings
of every pair (each pair twice an epoch), its early stopping (stop when the last validation loss exceeds each of
the 3 before it, keep the last weights) on each member's own random 20% of the pairs, and raw inputs."""
ONCE = {**SEED_EXACT, "mlp.orderings": 1, "mlp.batch_size": 5120}
"""The seed's recipe with each pair once an epoch (the built-in seed-paper point's batches): half the samples per
step, the same steps per epoch."""
ONE_PASS = {f"mlp.{key}": list(v) if isinstance(v, tuple) else v for key, v in RECIPES["1 pass"].items()}
"""rmsearch's recipe for this ensemble (`train_speed.RECIPES`): one pass of 512-pair batches at the seed's lr,
decayed to 0 (half a cosine), inputs standardized."""
VARIANTS = {
    "seed's code, fp32": None,
    "rmsearch, seed's recipe, fp32": {**SEED_EXACT, "mlp.precision": "fp32"},
    "rmsearch, seed's recipe, bf16": {**SEED_EXACT, "mlp.precision": "bf16"},
    "recipe: each pair once an epoch, bf16": {**ONCE, "mlp.precision": "bf16"},
    "recipe: 1 pass, lr decay, bf16": {**ONE_PASS, "mlp.precision": "bf16"},
}
BASE = "seed's code, fp32"
EXACT_BF16 = "rmsearch, seed's recipe, bf16"
SPEED_GOAL = 3.0
QUALITY_TOL = 0.03
"""Target 1a: the seed's recipe through launch in bf16 at least this much faster end to end, with the 95% interval
of its BoN gold difference at N=200 inside ±QUALITY_TOL."""
NS = (200, 500)
QUALITY = 1.0


def run(cmd: list[str]) -> float:
    """Wall seconds of one whole process; its output is shown only where it fails."""
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    secs = time.perf_counter() - t
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return secs


def rmsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "rmsearch", *map(str, args)]


def seed_code(data: Path, seed: int, work: Path):
    """Train the seed's ensemble and score the test split in its own process; (seconds, training seconds, test
    scores function, epochs per member)."""
    out = work / "seed.npz"
    secs = run([sys.executable, str(ROOT / "benchmarks" / "_seed_baseline.py"), str(data), "--seed", str(seed),
                "--quality", str(QUALITY), "--out", str(out)])
    saved = np.load(out)
    return secs, float(saved["train_seconds"]), lambda X: saved["test_scores"], saved["epochs"].tolist()


def launch(data: Path, seed: int, work: Path, name: str, overrides: dict):
    """`launch` one trial of the seed-paper space with `overrides`, then `export` it; (seconds, training seconds,
    test scores function, epochs per member). Training seconds are the member jobs' own training time over the
    worker slots that ran them side by side."""
    space = yaml.safe_load(SEED_PAPER.read_text())
    space.update(overrides)
    space_file = work / f"{name}.yaml"
    space_file.write_text(yaml.safe_dump(space, sort_keys=False))
    runs, export = work / f"runs-{name}", work / f"export-{name}"
    secs = run(rmsearch("launch", "--data", data, "--seed", seed, "--quality", QUALITY, "--space", space_file,
                        "--trials", 1, "--no-final", "--runs", runs, "--study", name))
    secs += run(rmsearch("export", "--runs", runs, "--study", name, "--out", export))
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{runs / name / 'study.db'}")
    last = study.user_attrs["last_launch"]
    return (secs, last["fit_seconds"] / last["slots"], load_ensemble(export).score,
            member_epochs(runs / name / "members"))


def member_epochs(store: Path) -> list[float]:
    """Epochs each member trained: the last history record of each member the launch stored."""
    import json

    from safetensors import safe_open

    out = []
    for path in sorted(store.glob("*.safetensors")):
        with safe_open(str(path), "np") as f:
            out.append(json.loads(f.metadata()["member"])["history"][-1]["train/epoch"])
    return out


def per_prompt_bon(scores: np.ndarray, gold: np.ndarray) -> dict[int, np.ndarray]:
    """BoN gold at each N of `NS`, per prompt (the exact estimator, N of M drawn without replacement)."""
    proxy = scores.reshape(gold.shape)
    return {n: np.array([best_of_n(proxy[i : i + 1], gold[i : i + 1], [n])[0] for i in range(len(gold))])
            for n in NS}


def run_seed(seed: int, args, work: Path) -> dict:
    """Every variant on data seed `seed`: {variant: {seconds, epochs, bon: {N: per-prompt values}}}."""
    data = work / f"data-{seed}"
    run(rmsearch("data", "synth", "--out", data, "--seed", seed, "--dim", args.dim, "--train-prompts",
                 args.train_prompts, "--test-prompts", args.test_prompts))
    test = make_task(load_data(data), TaskConfig(annotator=Annotator(quality=QUALITY), seed=seed)).test
    rows = np.concatenate([block for _, block in test.chunks()])
    out = {}
    for name in args.variants:
        overrides = VARIANTS[name]
        key = f"v{list(VARIANTS).index(name)}"
        secs, train_secs, score, epochs = (seed_code(data, seed, work) if overrides is None
                                           else launch(data, seed, work, key, overrides))
        out[name] = {"seconds": secs, "train_seconds": train_secs, "epochs": epochs,
                     "bon": per_prompt_bon(score(rows), test.gold)}
        print(f"# seed {seed}: {name}: {secs:.1f} s ({train_secs:.1f} s training), epochs per member {np.round(epochs, 2).tolist()}, "
              + ", ".join(f"BoN gold @ {n} {v.mean():.3f}" for n, v in out[name]["bon"].items()), flush=True)
    return out


def summarize(results: list[dict], seeds: list[int]) -> tuple[str, list[dict]]:
    """The Markdown table (one row per variant run) and its numbers."""
    rows = []
    for name in [v for v in VARIANTS if v in results[0]]:
        secs = [r[name]["seconds"] for r in results]
        speedup = [r[BASE]["seconds"] / r[name]["seconds"] for r in results]
        train = [r[BASE]["train_seconds"] / r[name]["train_seconds"] for r in results]
        row = {"variant": name, "seconds": secs, "speedup": statistics.median(speedup),
               "train_seconds": [r[name]["train_seconds"] for r in results], "train_speedup": statistics.median(train),
               "epochs": float(np.mean([np.mean(r[name]["epochs"]) for r in results]))}
        for n in NS:
            mine = np.concatenate([r[name]["bon"][n] for r in results])
            base = np.concatenate([r[BASE]["bon"][n] for r in results])
            row[f"bon{n}"] = float(mine.mean())
            row[f"diff{n}"] = None if name == BASE else paired_bootstrap(mine, base)
        rows.append(row)
    lines = ["| variant | seconds, whole processes | speedup | training seconds | speedup | epochs per member | "
             "BoN gold @ 200 | Δ vs seed's code @ 200 | BoN gold @ 500 | Δ @ 500 |", "|---" * 10 + "|"]
    for row in rows:
        cells = [row["variant"], " / ".join(f"{s:.0f}" for s in row["seconds"]), f"**{row['speedup']:.1f}×**",
                 " / ".join(f"{s:.0f}" for s in row["train_seconds"]), f"{row['train_speedup']:.1f}×",
                 f"{row['epochs']:.2f}"]
        for n in NS:
            d = row[f"diff{n}"]
            cells += [f"{row[f'bon{n}']:.3f}", "" if d is None else f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"]
        lines.append("| " + " | ".join(cells) + " |")
    prompts = sum(len(r[BASE]["bon"][NS[0]]) for r in results)
    if any(r["variant"] == EXACT_BF16 for r in rows):
        lines += ["", verdict(rows)]
    lines.append("")
    lines.append(f"{len(results)} data seeds ({', '.join(map(str, seeds))}; seconds per seed in that order), "
                 f"{prompts} test prompts in all. Speedups are medians over seeds of the seed's code's seconds over the "
                 f"variant's. Δ is paired per prompt, with a 95% bootstrap interval.")
    return "\n".join(lines), rows


def verdict(rows: list[dict]) -> str:
    """Target 1a's line: the seed's recipe through rmsearch in bf16 against the seed's code, end to end."""
    row = next(r for r in rows if r["variant"] == EXACT_BF16)
    d = row["diff200"]
    speed, same = row["speedup"] >= SPEED_GOAL, -QUALITY_TOL <= d["low"] and d["high"] <= QUALITY_TOL
    return (f"Target 1a ({EXACT_BF16}, whole processes): {row['speedup']:.2f}× the seed's code (goal ≥ "
            f"{SPEED_GOAL:.0f}×: {'met' if speed else 'not met'}); BoN gold @ 200 {d['diff']:+.3f} "
            f"[{d['low']:+.3f}, {d['high']:+.3f}] (goal: within ±{QUALITY_TOL}: {'met' if same else 'not met'}).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="data seeds (default: 0 1 2)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--train-prompts", type=int, default=4000)
    ap.add_argument("--test-prompts", type=int, default=400, help="half validation, half test (default: 400)")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME",
                    help=f"variants to run (default: all; the first, {BASE!r}, always runs): "
                         + "; ".join(map(repr, VARIANTS)))
    ap.add_argument("--save", action="store_true", help="save the table for README.md (benchmarks/results/)")
    args = ap.parse_args()
    args.variants = [v for v in VARIANTS if v in args.variants or v == BASE]
    shapes = (args.dim, args.train_prompts, args.test_prompts) != (512, 4000, 400)
    name = f"seed-recipe-d{args.dim}" if shapes else "seed-recipe"
    print(f"# seed_recipe: {os.cpu_count()} cores, D={args.dim}, {args.train_prompts} × 10 train, "
          f"{args.test_prompts} × 500 test, seeds {args.seeds}", flush=True)
    with tempfile.TemporaryDirectory(prefix="seed-recipe-") as tmp:
        results = []
        for seed in args.seeds:
            work = Path(tmp) / f"seed-{seed}"
            work.mkdir()
            results.append(run_seed(seed, args, work))
    markdown, rows = summarize(results, args.seeds)
    print()
    print(markdown)
    if args.save:
        from readme import save

        print(f"\nsaved {save(name, markdown, rows)}; `python benchmarks/readme.py` puts it in README.md")


if __name__ == "__main__":
    main()
