"""Multi-fidelity trials against full-fidelity ones: the same default search with and without `--halving`, on the
same world and seed, each a whole `rmsearch launch` process, their exports compared on the test split.

    .venv/bin/python benchmarks/halving.py --dim 512       # 4,000 × 10 train, 200 × 500 test, seeds 0 and 1: ~37 min
    .venv/bin/python benchmarks/halving.py                 # the same at D=2048: hours
    .venv/bin/python benchmarks/halving.py --scale 0.01 --dim 64 --trials 6 --seeds 1   # smoke test, a minute
    .venv/bin/python benchmarks/halving.py --save          # also keep the table for README.md

The world is the built-in one at the seed's shapes times `--scale` prompts, float16 on disk (`full_scale.world`),
written once into WORKDIR/world. For each seed both launches run the default space for `--trials` trials with the
final evaluation and no baselines (the comparison is export against export), one after the other on the same
machine. Reported per seed: each launch's wall time, member trainings and the slot-seconds they took, trials pruned;
the export's test BoN gold at N = all candidates for each, and the difference halving − full with its paired 95%
bootstrap interval over the test prompts (`rmsearch compare`'s arithmetic, `evaluate_exports`). Quality holds for
a seed when that interval reaches zero or above: the halved search's export is not worse than the full one's by
more than its interval.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from full_scale import SEED_SHAPES, scaled_shapes, world  # noqa: E402

VARIANTS = {"full fidelity": [], "--halving": ["--halving"]}
METRIC = "gold_final"
"""Test BoN gold at N = every candidate of a prompt: the metric the launch's export is chosen to maximize."""


def launch(folder: Path, runs: Path, seed: int, trials: int, extra: list[str], log: Path) -> dict:
    """One whole launch process; its wall time and what it recorded of itself."""
    import optuna

    cmd = [sys.executable, "-m", "rmsearch", "launch", "--data", str(folder), "--trials", str(trials), "--runs",
           str(runs), "--seed", str(seed), "--baselines", "none", "--progress-every", "60", *extra]
    start = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.perf_counter() - start
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="rmsearch", storage=f"sqlite:///{runs / 'rmsearch' / 'study.db'}")
    last = study.user_attrs["last_launch"]
    states = [t.state.name for t in study.trials]
    return {"wall": wall, "search": last["seconds"], "trained": last["trained"], "fit_seconds": last["fit_seconds"],
            "job_seconds": last["job_seconds"], "complete": states.count("COMPLETE"),
            "pruned": states.count("PRUNED"), "export": str(runs / "rmsearch" / "best")}


def compare(folder: Path, seed: int, full: str, halved: str) -> dict:
    """Both exports on the test split of `seed`'s launch: each one's metric and halving − full, paired."""
    from rmsearch.data import TaskConfig, load_data
    from rmsearch.evaluate import evaluate_exports

    data = load_data(str(folder), seed=seed)
    blob = evaluate_exports([full, halved], data, str(folder), TaskConfig(seed=seed), split="test")
    a, b = blob["ensembles"]
    d = b["difference_to_first"][METRIC]
    return {"full": a["metrics"][METRIC]["value"], "halving": b["metrics"][METRIC]["value"], "diff": d["diff"],
            "low": d["low"], "high": d["high"], "prompts": blob["n_units"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.1, help="share of the seed's prompts (train and test)")
    ap.add_argument("--dim", type=int, default=SEED_SHAPES["dim"])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=2, help="launch seeds 0..N-1 (splits, annotator, sampler)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "halving")
    ap.add_argument("--save", action="store_true", help="add the table to README.md's results (benchmarks/results/)")
    args = ap.parse_args(argv)

    shapes = scaled_shapes(args.scale, args.dim)
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder, _, _ = world(args.workdir, shapes, 0)
    rows = []
    for seed in range(args.seeds):
        runs = {}
        for name, extra in VARIANTS.items():
            tag = "halving" if extra else "full"
            out = args.workdir / f"runs-{tag}-seed{seed}"
            if out.exists():
                import shutil

                shutil.rmtree(out)
            runs[name] = launch(folder, out, seed, args.trials, extra, args.workdir / f"{tag}-seed{seed}.log")
            print(f"seed {seed}, {name}: {json.dumps(runs[name])}", flush=True)
        q = compare(folder, seed, runs["full fidelity"]["export"], runs["--halving"]["export"])
        print(f"seed {seed}: test {METRIC} {json.dumps(q)}", flush=True)
        rows.append({"seed": seed, "runs": runs, "quality": q})
    md = markdown(rows, shapes, args.trials)
    print(md)
    if args.save:
        from readme import save

        data = {"shapes": shapes, "trials": args.trials, "seeds": rows}
        print(f"\nsaved {save('halving', md, data)}; `python benchmarks/readme.py` puts it in README.md")
    return 0


def markdown(rows: list[dict], shapes: dict, trials: int) -> str:
    lines = ["| seed | search | launch, whole process | member trainings (slot-seconds) | trials complete / pruned "
             "| export's test BoN gold @ N=M |", "|---|---|---|---|---|---|"]
    for r in rows:
        for name, run in r["runs"].items():
            value = r["quality"]["full" if name == "full fidelity" else "halving"]
            lines.append(f"| {r['seed']} | {name} | {run['wall'] / 60:.1f} min | {run['trained']} "
                         f"({run['fit_seconds'] / 60:.0f} min) | {run['complete']} / {run['pruned']} | {value:.3f} |")
    lines += ["", "| seed | launch time, --halving / full | slot-seconds of training, --halving / full "
              "| export's test BoN gold @ N=M, --halving − full [paired 95% CI] | quality holds |",
              "|---|---|---|---|---|"]
    for r in rows:
        f, h, q = r["runs"]["full fidelity"], r["runs"]["--halving"], r["quality"]
        lines.append(f"| {r['seed']} | {h['wall'] / f['wall']:.2f}× | {h['fit_seconds'] / f['fit_seconds']:.2f}× "
                     f"| {q['diff']:+.3f} [{q['low']:+.3f}, {q['high']:+.3f}] | {'yes' if q['high'] >= 0 else 'no'} |")
    lines += ["", f"World: the built-in one at D={shapes['dim']}, {shapes['train_prompts']:,} × 10 training "
              f"responses, {shapes['test_prompts']:,} × {shapes['test_responses']} candidates (half of the prompts "
              f"validation, half test: {rows[0]['quality']['prompts']} test prompts), float16 on disk. Each launch: "
              f"`rmsearch launch --trials {trials} --baselines none [--halving]`, the default space with its final "
              "evaluation and export, a whole process, one after the other on the same machine. The interval is "
              "a percentile bootstrap over the test prompts, the same resamples for both exports (paired); "
              "quality holds where it reaches zero or above."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
