"""Does the search's choice hold up on data it never saw? Default launches over several world seeds, each
compared on its test split with the fixed baselines (paired bootstrap over test prompts), and every objective's
choice among the same trials judged on the test split; the hh pairs under cross-validation against a logistic
regression.

    python benchmarks/selection.py synth                 # 5 seeds of the built-in world, 20 trials each (~25 min)
    python benchmarks/selection.py synth --world heavy   # the same on a heavier-tailed world (~25 min)
    python benchmarks/selection.py hh --data data/hh --seeds 0 1 2   # the shared hh pairs (`rmsearch data embed` first)

Each run saves its numbers to benchmarks/results/selection-<what>.json; `python benchmarks/readme.py` renders every
saved result into README.md between `<!-- selection:NAME -->` markers, so no table there is typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from readme import RESULTS, provenance, stamp

ROOT = Path(__file__).resolve().parents[1]
WORLDS = {
    "builtin": "synth",
    "heavy": "synth:tail_df=1.5",  # heavier tail: a few candidates per pool are far out where gold punishes them
}


def trials_to_add(runs: Path, study: str, trials: int) -> int:
    """A launch of `trials` trials; where a run folder already holds that study complete (a rerun after a change
    to the final evaluation), 0: the launch then repeats only the final evaluation on the same trials."""
    import optuna

    db = runs / study / "study.db"
    if not db.exists():
        return trials
    done = [t for t in optuna.load_study(study_name=study, storage=f"sqlite:///{db}").trials
            if t.state == optuna.trial.TrialState.COMPLETE]
    return max(0, trials - len(done))


# ---- gold worlds ---------------------------------------------------------------------------------------------
def judge_objectives(search) -> dict:
    """For every objective with gold: the test values (BoN gold at N=M, AUC) of the trial it ranks first and of
    its greedy cross-trial selection, and the oracle (best trial on test)."""
    from rmsearch.evaluate._units import unit_values
    from rmsearch.search._final import ensure_test_scores, trial_combination
    from rmsearch.search._objectives import OBJECTIVES
    from rmsearch.search._select import library, select_across_trials

    task = search.task
    trials = search.completed()
    combos = [trial_combination(search, t)[1] for t in trials]
    _, records = library(search)
    ensure_test_scores(search, records)

    def test_values(c):
        s = c.scores("test")
        return {u: float(unit_values(s, task.test, u).mean()) for u in ("bon_final", "bon_auc")}

    tests = [test_values(c) for c in combos]
    out = {"oracle": {u: max(t[u] for t in tests) for u in ("bon_final", "bon_auc")}}
    for name, obj in OBJECTIVES.items():
        if not obj.needs_gold:
            continue
        vals = [obj(c.scores("val"), task.val) for c in combos]
        best = int(np.argmax(vals))
        selection = select_across_trials(task, records, obj)[0]
        out[name] = {"trial": tests[best], "selection": test_values(selection)}
    return out


def run_gold(world: str, seeds: list[int], trials: int, runs: Path) -> dict:
    from rmsearch.search import LaunchOptions, Search

    rows = []
    for seed in seeds:
        start = time.perf_counter()
        study = f"{world}-{seed}"
        options = LaunchOptions(data=WORLDS[world], trials=trials_to_add(runs, study, trials), study=study, runs=runs,
                                seed=seed, progress=False)
        search = Search(options).run()
        f = search.final
        rows.append({
            "seed": seed, "seconds": time.perf_counter() - start, "exported": f.exported,
            "exported_members": f.chosen.describe(), "comparisons": f.comparisons,
            "baseline_seconds": f.baseline_seconds, "objectives": judge_objectives(search),
        })
        c = {(r["against"], r["unit"]): r for r in f.comparisons}
        print(f"seed {seed}: exported {f.exported} ({f.chosen.describe()}), "
              + ", ".join(f"vs {a} {u} {r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]" for (a, u), r in c.items())
              + f" ({rows[-1]['seconds']:.0f} s)", flush=True)
    return {"what": f"gold world {world} ({WORLDS[world]})", "trials": trials, "rows": rows}


# ---- hh pairs ------------------------------------------------------------------------------------------------
def cv_accuracy(data, manifest: dict | None, folds: int, seed: int) -> np.ndarray:
    """Per-fold held-out pair accuracy over all pairs: of an exported ensemble's recipe (`manifest`: each member's
    head configuration and seed retrained on the other folds, 10% of them for early stopping, scores standardized
    on their training rows, counted by weight and aggregated as exported), or, with manifest None, of
    scikit-learn's logistic regression (default C=1) on chosen − rejected in both orientations."""
    from sklearn.linear_model import LogisticRegression

    from rmsearch.data import Pairs
    from rmsearch.ensembles import PARAM_NAMES, Aggregation, score_stats, standardize
    from rmsearch.heads import head_config, make_head

    chosen, rejected = np.asarray(data.chosen, np.float32), np.asarray(data.rejected, np.float32)
    M = len(chosen)
    X = np.concatenate([chosen, rejected])
    fold_of = np.random.default_rng(seed).permutation(M) % folds
    accs = []
    for f in range(folds):
        tr, te = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        if manifest is None:
            d = chosen[tr] - rejected[tr]
            model = LogisticRegression(max_iter=2000).fit(np.concatenate([d, -d]), np.r_[np.ones(len(tr)), np.zeros(len(tr))])
            margin = model.decision_function(chosen[te] - rejected[te])
        else:
            rng = np.random.default_rng([seed, f])
            flip = rng.random(len(tr)) < 0.5  # half the pairs rejected-first, as tasks orient them
            a, b = np.where(flip, tr + M, tr), np.where(flip, tr, tr + M)
            stop = rng.random(len(tr)) < 0.1
            pairs = Pairs(X, a, b, (~flip).astype(np.float32))
            train, early = pairs.subset(np.flatnonzero(~stop)), pairs.subset(np.flatnonzero(stop))
            z = []
            for m in manifest["members"]:
                config = head_config(m["kind"], **{k: v for k, v in m["config"].items() if k != "kind"})
                head = make_head(config, (m["seed"],)).fit(train, stop=early)
                raw = head.score(X[np.r_[te, te + M]])
                if manifest["extra"].get("point", {}).get("standardize", True):
                    raw = standardize(raw, score_stats(head.score(X[np.r_[tr, tr + M]])))
                z += [raw[0]] * m.get("weight", 1)
            agg = manifest["aggregation"]
            s = Aggregation(agg["name"], agg.get(PARAM_NAMES.get(agg["name"], ""), 1.0))(np.stack(z))
            margin = s[: len(te)] - s[len(te):]
        accs.append(float(np.where(margin == 0, 0.5, margin > 0).mean()))
    return np.array(accs)


def run_hh(data_path: str, trials: int, runs: Path, seeds: list[int]) -> dict:
    from rmsearch.data import load_data
    from rmsearch.search import LaunchOptions, Search

    data = load_data(data_path)
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        # the seed-paper baseline (10 MLPs 1024-512, trained 6 times under cross-validation) is left out here to
        # bound the run; the logistic regression and the linear baseline are the references for pair data
        search = Search(LaunchOptions(data=data_path, trials=trials_to_add(runs, f"hh-{seed}", trials),
                                      study=f"hh-{seed}", runs=runs, seed=seed, baselines=("linear",),
                                      progress=False)).run()
        f = search.final
        manifest = json.loads((f.export / "manifest.json").read_text())
        ours, lr = cv_accuracy(data, manifest, 10, seed), cv_accuracy(data, None, 10, seed)
        rows.append({"seed": seed, "seconds": time.perf_counter() - start, "exported": f.exported,
                     "exported_members": f.chosen.describe(), "comparisons": f.comparisons,
                     "val_cv": f.decision.info["selection validation" if f.exported.startswith("the cross")
                                          else "best trial validation"],
                     "cv10_ours": ours.tolist(), "cv10_lr": lr.tolist()})
        print(f"seed {seed}: exported {f.exported} ({f.chosen.describe()}); 10-fold CV accuracy "
              f"{ours.mean():.3f} ± {ours.std(ddof=1):.3f} vs logistic regression "
              f"{lr.mean():.3f} ± {lr.std(ddof=1):.3f} ({rows[-1]['seconds']:.0f} s)", flush=True)
    return {"what": f"hh pairs {data_path}", "trials": trials, "rows": rows}


# ---- README tables -------------------------------------------------------------------------------------------
def _ci(r) -> str:
    return f"{r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"


def table_gold(res: dict) -> str:
    rows = res["rows"]
    units = sorted({r["unit"] for row in rows for r in row["comparisons"]}, key=["bon_auc", "bon_final"].index)
    label = {"bon_final": "BoN gold @ N=M", "bon_auc": "BoN AUC"}
    head = ["seed", "exported"] + [f"{label[u]} vs {a}" for u in units for a in ("seed-paper", "linear")]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    wins = {(u, a): 0 for u in units for a in ("seed-paper", "linear")}
    sure = dict(wins)
    for row in rows:
        c = {(r["unit"], r["against"]): r for r in row["comparisons"]}
        cells = [str(row["seed"]), f"{row['exported']}: {row['exported_members']}"]
        for key in wins:
            r = c[key]
            wins[key] += r["diff"] > 0
            sure[key] += bool(r["better"])
            cells.append(_ci(r) + (" ✓" if r["better"] else ""))
        lines.append("| " + " | ".join(cells) + " |")
    n = len(rows)
    lines.append("| seeds where the export is ahead (✓: its interval excludes 0) | | "
                 + " | ".join(f"{wins[k]} of {n} ({sure[k]} ✓)" for k in wins) + " |")
    return "\n".join(lines)


def table_objectives(results: list[dict]) -> str:
    names = [k for k in results[0]["rows"][0]["objectives"] if k != "oracle"]
    lines = ["| objective | best trial: BoN gold @ N=M | best trial: AUC | greedy selection: BoN gold @ N=M | "
             "greedy selection: AUC |", "|---|---|---|---|---|"]
    all_rows = [row for res in results for row in res["rows"]]
    for name in names + ["oracle"]:
        if name == "oracle":
            vals = [[row["objectives"]["oracle"][u] for row in all_rows] for u in ("bon_final", "bon_auc")]
            lines.append(f"| best trial on the test split (oracle) | {np.mean(vals[0]):.3f} | {np.mean(vals[1]):.3f} | | |")
            continue
        cells = []
        for kind in ("trial", "selection"):
            for u in ("bon_final", "bon_auc"):
                v = [row["objectives"][name][kind][u] for row in all_rows]
                cells.append(f"{np.mean(v):.3f}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_hh(res: dict) -> str:
    lines = ["| seed | exported | 5-fold CV accuracy (selection) | 10-fold CV accuracy, exported configuration | "
             "10-fold CV accuracy, logistic regression | difference, mean ± s.e. over the same folds | "
             "test split: exported − linear baseline |",
             "|---|---|---|---|---|---|---|"]
    for row in res["rows"]:
        ours, lr = np.array(row["cv10_ours"]), np.array(row["cv10_lr"])
        d = ours - lr
        c = next(r for r in row["comparisons"] if r["against"] == "linear")
        lines.append(f"| {row['seed']} | {row['exported']}: {row['exported_members']} | {row['val_cv']:.3f} | "
                     f"{ours.mean():.3f} ± {ours.std(ddof=1):.3f} | {lr.mean():.3f} ± {lr.std(ddof=1):.3f} | "
                     f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f} | {_ci(c)} |")
    ours = np.array([np.mean(r["cv10_ours"]) for r in res["rows"]])
    lr = np.array([np.mean(r["cv10_lr"]) for r in res["rows"]])
    lines.append(f"| mean over seeds (seeds at or above the logistic regression) | | | {ours.mean():.3f} "
                 f"({int((ours >= lr).sum())} of {len(ours)}) | {lr.mean():.3f} | {(ours - lr).mean():+.3f} | |")
    diffs = [np.array(r["cv10_ours"]) - np.array(r["cv10_lr"]) for r in res["rows"]]
    within = sum(abs(d.mean()) <= d.std(ddof=1) / np.sqrt(len(d)) for d in diffs)
    optimism = np.mean([r["val_cv"] - np.mean(r["cv10_ours"]) for r in res["rows"]])
    lines += ["", f"Exported − logistic regression within one standard error of 0 in {within} of {len(diffs)} seeds; "
                  f"the selection's own CV accuracy exceeds the exported configuration's 10-fold accuracy by "
                  f"{optimism:.3f} on average."]
    return "\n".join(lines)


def readme_blocks() -> dict[str, str]:
    """README block name -> its text, rendered from every saved result."""
    saved = {p.stem.removeprefix("selection-"): json.loads(p.read_text()) for p in sorted(RESULTS.glob("selection-*.json"))}
    blocks = {}
    for name, res in saved.items():
        blocks[name] = (table_hh(res) if name == "hh" else table_gold(res)) + "\n\n" + stamp(res)
    gold = [res for name, res in saved.items() if name != "hh"]
    if gold:
        blocks["objectives"] = table_objectives(gold) + "\n\n<sub>" + "; ".join(f"`{r['command']}`" for r in gold) + "</sub>"
    return blocks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("synth", "hh"))
    p.add_argument("--world", choices=list(WORLDS), default="builtin", help="gold world for `synth` (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: %(default)s")
    p.add_argument("--trials", type=int, default=20, help="trials per launch (default: %(default)s)")
    p.add_argument("--data", default="data/hh", help="pair dataset for `hh` (default: %(default)s)")
    p.add_argument("--runs", help="run folder (default: a temporary one)")
    args = p.parse_args()
    runs = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="rmsearch-selection-"))
    if args.what == "synth":
        res, name = run_gold(args.world, args.seeds, args.trials, runs), args.world
    else:
        res, name = run_hh(args.data, args.trials, runs, args.seeds), "hh"
    res |= provenance(sys.argv)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"selection-{name}.json").write_text(json.dumps(res, indent=1))
    print(f"saved benchmarks/results/selection-{name}.json; `python benchmarks/readme.py` puts it in README.md")


if __name__ == "__main__":
    main()
