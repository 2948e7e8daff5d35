"""Best-of-N by the mean against best-of-N by the lower bound, and how well the bounds are calibrated, for an
ensemble and for the Bayesian `laplace` head, over seeds: the numbers behind README's "Uncertainty: bounds".

    .venv/bin/python benchmarks/uncertainty.py                       # built-in world, seeds 0-4
    .venv/bin/python benchmarks/uncertainty.py --alpaca runs/bench-alpaca/alpaca --save

For each seed s, on each dataset (the built-in world drawn with seed s; a gold folder given by --alpaca, split
with seed s), the annotator (Bradley-Terry, quality 2) labels the training pairs and two models are trained:

- ensemble: `rmsearch evaluate`'s default configuration (8 bootstrapped 64-32 MLPs, 40 epochs, standardized);
- laplace: one `laplace` head (λ = 1, standardized inputs).

Each is scored on the test split (every prompt's whole pool) twice: by its mean and by its lower bound
mean − β·std (β = 1; the ensemble's std is the spread of its standardized members, laplace's its posterior std).
Reported, as mean ± std over seeds: BoN gold at N = M and the BoN AUC (mean gold over a log grid of N), and on
the test split's gold-labelled pairs the bound metrics (`rmsearch.evaluate.bound_metrics`): lower- and
upper-bound calibration error, confident-true and confident-false rates, and the Brier score of σ(s_a − s_b).
`--save` keeps the tables in benchmarks/results/uncertainty.json for `python benchmarks/readme.py`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

BETA = 1.0
BON = (("gold_final", "BoN gold @ N=M"), ("bon_auc", "BoN AUC"))
BOUNDS = (("lower_ce", "lower-bound CE"), ("upper_ce", "upper-bound CE"), ("confident_true", "confident true"),
          ("confident_false", "confident false"), ("pair_brier", "Brier"))


def models(task):
    """name -> fitted `Ensemble` (numpy only), trained on `task`."""
    from rmsearch.ensembles import Aggregation, EnsembleConfig, fit_group
    from rmsearch.export import ensemble_from_groups
    from rmsearch.heads import LaplaceConfig
    from rmsearch.launch.cli import DEFAULT_POINT

    config = EnsembleConfig.from_point(dict(DEFAULT_POINT))
    out = {}
    group = fit_group(task, config.head, config.member_seeds, test=False)
    out["ensemble (8×mlp)"] = ensemble_from_groups([group], aggregation=Aggregation("mean"), dim=task.dim)
    group = fit_group(task, LaplaceConfig(lam=1.0), (0,), test=False)
    out["laplace"] = ensemble_from_groups([group], aggregation=Aggregation("mean"), dim=task.dim)
    for e in out.values():
        e.beta = BETA
    return out


def run_seed(spec: str, seed: int) -> dict:
    from rmsearch.data import Annotator, TaskConfig, load_data, make_task
    from rmsearch.evaluate import bound_metrics, evaluate_split, unit_values

    task = make_task(load_data(spec, seed=seed), TaskConfig(annotator=Annotator(quality=2.0), seed=seed))
    split = task.test
    out = {}
    for name, ens in models(task).items():
        parts = [ens.score_all(block) for _, block in split.chunks()]
        score, _, lower, upper = (np.concatenate([p[i] for p in parts]) for i in range(4))
        row = {"bounds": bound_metrics(score, lower, upper, split)}
        for how, s in (("mean", score), ("lower bound", lower)):
            m = evaluate_split(s, split)["metrics"]
            row[how] = {"gold_final": m["gold_final"], "bon_auc": float(unit_values(s, split, "bon_auc").mean())}
        out[name] = row
    return out


def pm(values) -> str:
    v = np.asarray(values, np.float64)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def tables(results: dict, seeds: list[int]) -> str:
    """Markdown: BoN by mean vs lower bound, and the bounds' calibration, per dataset and model."""
    n = len(seeds)
    lines = [f"Best-of-N on the test pools by the mean and by the lower bound mean − {BETA:g}·std, mean ± std over "
             f"{n} seeds; `lower − mean`: the paired difference per seed, and in how many seeds it is > 0.", "",
             "| data | model | selected by | " + " | ".join(label for _, label in BON) + " | lower − mean (gold @ "
             "N=M) |", "|---|---|---|" + "---|" * (len(BON) + 1)]
    for data, per_seed in results.items():
        for model in per_seed[0]:
            for how in ("mean", "lower bound"):
                cells = [pm([r[model][how][k] for r in per_seed]) for k, _ in BON]
                diff = ""
                if how == "lower bound":
                    d = [r[model]["lower bound"]["gold_final"] - r[model]["mean"]["gold_final"] for r in per_seed]
                    diff = f"{np.mean(d):+.3f} ± {np.std(d, ddof=1) if n > 1 else 0.0:.3f} ({sum(x > 0 for x in d)} " \
                           f"of {n})"
                lines.append(f"| {data} | {model} | {how} | " + " | ".join(cells) + f" | {diff} |")
    lines += ["", f"Calibration of the bounds (β = {BETA:g}) on the test split's gold-labelled pairs, mean ± std over "
              f"{n} seeds (CE: calibration error, 0 = the bound holds; see `rmsearch evaluate`'s legend).", "",
              "| data | model | " + " | ".join(label for _, label in BOUNDS) + " |", "|---|---|" + "---|" * len(BOUNDS)]
    for data, per_seed in results.items():
        for model in per_seed[0]:
            lines.append(f"| {data} | {model} | "
                         + " | ".join(pm([r[model]["bounds"][k] for r in per_seed]) for k, _ in BOUNDS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (default 0-4)")
    ap.add_argument("--alpaca", help="also a gold folder of AlpacaEval candidates (rmsearch data embed output)")
    ap.add_argument("--save", action="store_true", help="save the tables for README.md (benchmarks/results/)")
    args = ap.parse_args(argv)
    datasets = {"built-in world": "synth"}
    if args.alpaca:
        if not Path(args.alpaca).is_dir():
            ap.error(f"--alpaca {args.alpaca}: not a folder; build it with rmsearch data embed first.")
        datasets["AlpacaEval"] = args.alpaca
    results = {}
    for name, spec in datasets.items():
        results[name] = []
        for seed in args.seeds:
            start = time.perf_counter()
            results[name].append(run_seed(spec, seed))
            print(f"{name}, seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    markdown = tables(results, args.seeds)
    print(markdown)
    if args.save:
        from readme import save

        print(f"\nsaved {save('uncertainty', markdown, results)}; `python benchmarks/readme.py` puts it in README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
