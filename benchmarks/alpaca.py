"""A real best-of-N setting end to end: the shared AlpacaEval answers embedded into a gold dataset, default
launches on it over several seeds, and the export against the fixed recipes and the length-only rule on test
prompts that nothing was chosen on.

    python benchmarks/alpaca.py --save        # about 40 minutes on 2 shared cores, 30 of them embedding

1. `rmsearch data embed` builds a gold folder from `alpaca-candidates.jsonl.gz` (608 AlpacaEval instructions, each
   answered by 34 models; gold = logit(judge preference − 1), the judge's log-odds that the answer beats
   AlpacaEval's reference) with the bundled encoder (all-MiniLM-L6-v2). Half the prompts train (pairs labelled by
   the default simulated annotator from the gold), half are candidate pools; each launch carves its validation
   and test prompts from those pools by its --seed.
2. One default launch (`--trials 20`, default space, baselines seed-paper and linear, and the length rule, which
   every launch on text-derived data reports) per seed.
3. From each launch's report/metrics.json: the export's test BoN gold at N = M (M = 34) and its AUC over log N,
   paired differences to each baseline with 95% bootstrap intervals over the test prompts; over seeds, the mean
   difference with a t interval (n = seeds).

The shared data is found through RMSEARCH_SHARED_DATA (default: shared/data beside the repository).
`--save` keeps the Markdown in benchmarks/results/alpaca.json for `python benchmarks/readme.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RMSEARCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
SOURCE = SHARED / "alpaca-candidates.jsonl.gz"
METRICS = {"bon_final": "BoN gold @ N=M", "bon_auc": "BoN gold, mean over log N (AUC)"}
BASELINES = ("seed-paper", "linear", "length")


def rmsearch(*args: str) -> tuple[str, float]:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "rmsearch", *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"rmsearch {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout, time.perf_counter() - start


def embed(work: Path) -> tuple[dict, float]:
    folder = work / "alpaca"
    if not (folder / "dataset.json").is_file():
        _, seconds = rmsearch("data", "embed", str(SOURCE), "--out", str(folder), "--gold", "alpacaeval",
                              "--no-progress")
    else:
        seconds = float("nan")  # built by an earlier run
    return json.loads((folder / "dataset.json").read_text()), seconds


def launch(work: Path, seed: int, trials: int, reuse: bool = False) -> dict:
    study = f"alpaca-seed{seed}"
    timing = work / "runs" / f"{study}.seconds"
    if reuse and timing.is_file():
        seconds = float(timing.read_text())
    else:
        shutil.rmtree(work / "runs" / study, ignore_errors=True)  # a fresh study: a relaunch would resume
        _, seconds = rmsearch("launch", "--data", str(work / "alpaca"), "--trials", str(trials), "--study", study,
                              "--seed", str(seed), "--runs", str(work / "runs"))
        timing.write_text(str(seconds))
    blob = json.loads((work / "runs" / study / "report" / "metrics.json").read_text())
    context = blob["context"]
    rows = {(r["against"], r["unit"]): r for r in context["comparisons"]}
    test_prompts = context["split record"]["test_split"]["test_prompts"]
    from rmsearch.data import load_data

    gold = np.asarray(load_data(work / "alpaca").test.gold, np.float64)[test_prompts]
    return {"seed": seed, "seconds": seconds, "exported": context["exported"], "rows": rows,
            "test_prompts": len(test_prompts), "categories": context.get("categories"),
            "oracle": float(gold.max(1).mean()), "random": float(gold.mean())}


def fmt_ci(d: float, lo: float, hi: float) -> str:
    mark = " ✓" if lo > 0 else (" ✗" if hi < 0 else "")
    return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark}"


def markdown(meta: dict, embed_seconds: float, runs: list[dict], trials: int) -> tuple[str, dict]:
    counts = meta.get("counts", {})
    md = [f"Data: `{SOURCE.name}` → {_data_line(meta)}; embedded in {embed_seconds:.0f} s." if np.isfinite(
        embed_seconds) else f"Data: `{SOURCE.name}` → {_data_line(meta)}.", ""]
    summary = {}
    for unit, label in METRICS.items():
        md += [f"**{label}** on each launch's test prompts: the export, and the export − each baseline (paired, "
               f"95% bootstrap interval over the test prompts; ✓ / ✗ where it excludes 0)", ""]
        md += ["| seed | test prompts | exported | export | " + " | ".join(f"− {b}" for b in BASELINES) + " |"
               + (" oracle (best answer) | random answer |" if unit == "bon_final" else ""),
               "|---|---|---|---|" + "---|" * len(BASELINES) + ("---|---|" if unit == "bon_final" else "")]
        for r in runs:
            cells = []
            for b in BASELINES:
                row = r["rows"].get((b, unit))
                cells.append("–" if row is None else fmt_ci(row["diff"], row["low"], row["high"]))
            export = next(row["chosen"] for (b, u), row in r["rows"].items() if u == unit)
            md.append(f"| {r['seed']} | {r['test_prompts']} | {r['exported'].split(' (')[0]} | {export:.3f} | "
                      + " | ".join(cells) + " |"
                      + (f" {r['oracle']:.3f} | {r['random']:.3f} |" if unit == "bon_final" else ""))
        cells, summary[unit] = [], {}
        for b in BASELINES:
            d = np.array([r["rows"][(b, unit)]["diff"] for r in runs if (b, unit) in r["rows"]])
            if len(d) < 2:
                cells.append("–")
                continue
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            summary[unit][b] = {"mean": float(d.mean()), "low": float(d.mean() - half), "high": float(d.mean() + half),
                                "ahead": int(sum(r["rows"][(b, unit)]["low"] > 0 for r in runs)),
                                "behind": int(sum(r["rows"][(b, unit)]["high"] < 0 for r in runs))}
            cells.append(fmt_ci(d.mean(), d.mean() - half, d.mean() + half))
        md += [f"| mean over {len(runs)} seeds (t interval) | | | | " + " | ".join(cells) + " |"
               + (" | |" if unit == "bon_final" else ""), ""]
    md += [_verdict(summary, len(runs)), ""] + _categories(runs[0])
    md += [f"Each launch: `rmsearch launch --data ALPACA --trials {trials} --seed S` (default space, baselines "
           f"seed-paper and linear; the length rule is added on text-derived data); "
           + ", ".join(f"seed {r['seed']} {r['seconds']:.0f} s" for r in runs) + "."]
    return "\n".join(md), summary


def _data_line(meta: dict) -> str:
    c, r, t, g, m = meta["counts"], meta["ragged"], meta["texts"], meta["gold"], meta["model"]
    dropped = r.get("dropped_fewer", 0) + r.get("dropped_more", 0)
    return (f"{c['prompts_kept']} prompts × K = {c['K']} answers ({c['duplicate_rows']:,} duplicate rows and "
            f"{dropped} prompts with other than K answers dropped), {c['train_prompts']} prompts for training pairs "
            f"and {c['test_prompts']} candidate pools; gold {g['transform']} (eps {g['eps']:g}, range "
            f"[{g['gold_range'][0]:.1f}, {g['gold_range'][1]:.1f}]); {m['name']} ({m['dim']}-d), {t['truncated']:,} "
            f"of {t['unique']:,} texts truncated at its {m.get('max_length')} tokens")


def _verdict(summary: dict, seeds: int) -> str:
    """Plain lines from the numbers: where the export wins, ties and loses."""
    out = []
    for unit, label in METRICS.items():
        for b, s in summary.get(unit, {}).items():
            word = "beats" if s["low"] > 0 else "loses to" if s["high"] < 0 else "cannot be told apart from"
            out.append(f"- {label}: the export {word} {b} (mean difference {s['mean']:+.3f}, t interval over "
                       f"{seeds} seeds [{s['low']:+.3f}, {s['high']:+.3f}]; ahead in {s['ahead']} and behind in "
                       f"{s['behind']} of {seeds} seeds by the seed's own test interval)")
    return "\n".join(out)


def _categories(run: dict) -> list[str]:
    """Seed `run`'s per-category table of BoN gold at N = M (the launch report's), as Markdown lines."""
    from rmsearch.evaluate import category_tables, markdown_table

    cats = run.get("categories")
    if not cats:
        return []
    title, header, rows = category_tables(cats, cats["names"])[0]
    return [f"{title}, seed {run['seed']}'s test prompts (from its launch report; value [95% interval], "
            f"differences paired, * where the interval excludes 0):", "", markdown_table(header, rows), ""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-alpaca", help="folder for the dataset and "
                   "the launches (the dataset is reused when there)")
    p.add_argument("--save", action="store_true", help="save the Markdown for README.md (benchmarks/results/)")
    p.add_argument("--reuse", action="store_true", help="read the launches an earlier run of this script finished in "
                   "--work instead of launching them again")
    args = p.parse_args()
    if not SOURCE.is_file():
        sys.exit(f"{SOURCE}: not found; set RMSEARCH_SHARED_DATA to the folder holding alpaca-candidates.jsonl.gz")
    meta, embed_seconds = embed(args.work)
    runs = [launch(args.work, seed, args.trials, args.reuse) for seed in args.seeds]
    text, summary = markdown(meta, embed_seconds, runs, args.trials)
    print(text)
    if args.save:
        from readme import save

        data = {"dataset": meta.get("counts"), "runs": [{**r, "rows": [dict(row) for row in r["rows"].values()]}
                                                         for r in runs], "summary": summary}
        print(f"\nsaved {save('alpaca', text, data)}; `python benchmarks/readme.py` puts it in README.md")


if __name__ == "__main__":
    main()
