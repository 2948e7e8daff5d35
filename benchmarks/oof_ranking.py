"""Which ranking of a search's trials predicts their held-out best-of-N: the validation split alone (what the
search ranks on), out-of-fold best-of-N over the training prompts, or both pooled?

    python benchmarks/oof_ranking.py --runs runs/bench-alpaca/runs --study alpaca-seed{} --seeds 0 1 2 3 4
    python benchmarks/oof_ranking.py --runs runs/bench-selection --study builtin-{} --seeds 0 1 2 3 4 --save

Each launch's numbers are kept beside it (RUNS/STUDY.oof-ranking.json), so a rerun adds only new seeds.
For each finished launch (its trials, member records and task rebuilt from the study, `StudyHandle.open`):

- **validation**: each trial's objective on the validation split (the launch's own, BoN AUC by default);
- **out of fold**: the training split's prompts are cut into 5 folds by prompt; each trial's member recipes (head
  configuration and seed) are retrained on the pairs the launch's annotator draws from the other folds' prompts
  (10% of those prompts for early stopping) and score every candidate of the held-out fold's prompts; the trial's
  aggregation of the standardized member scores picks, and the same objective is computed per prompt over each
  training prompt's K candidates, out of fold, on every training prompt;
- **pooled**: the mean of the two, each z-scored over the trials.

Each ranking is judged on the test split (which nothing here chose on): the Spearman correlation over trials between
the ranking's score and the trial's test objective, and the regret of the trial it ranks first (the best trial's
test value minus its own). Means over launches with a 95% t interval; `--save` keeps the table for README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
RANKINGS = ("validation", "out of fold", "pooled")


def member_groups(handle, trials) -> dict:
    """(kind, config JSON) -> the member seeds any trial uses."""
    groups: dict[tuple, set] = {}
    for t in trials:
        for k in t.user_attrs["members"]:
            r = handle.store.get(k)
            groups.setdefault((r.kind, json.dumps(r.config, sort_keys=True)), set()).add(r.seed)
    return groups


def fold_scores(handle, groups: dict, folds: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """(kind, config, seed) -> ((mean, std) on training rows, raw scores (P, K) of every training prompt, each from
    the model that did not see its fold); and the training gold (P, K) and each prompt's fold."""
    from rmsearch.data import annotate
    from rmsearch.ensembles import score_stats
    from rmsearch.heads import head_config, make_head

    tr = handle.data.train
    P, K, D = tr.embeddings.shape
    X = np.asarray(tr.embeddings, np.float32).reshape(P * K, D)
    gold = np.asarray(tr.gold, np.float64)
    fold_of = np.random.default_rng([seed, 23]).permutation(P) % folds
    annotator = handle.task_config.annotator
    out: dict = {}
    for f in range(folds):
        rest = np.flatnonzero(fold_of != f)
        rng = np.random.default_rng([seed, 29, f])
        stop_mask = rng.random(len(rest)) < 0.1
        train, _ = annotate(X, gold, rest[~stop_mask], annotator, seed=seed * 1000 + 31 + f)
        stop, _ = annotate(X, gold, rest[stop_mask], annotator, seed=seed * 1000 + 37 + f)
        held = np.flatnonzero(fold_of == f)
        rows = (held[:, None] * K + np.arange(K)).ravel()
        seen = (rest[:, None] * K + np.arange(K)).ravel()
        for (kind, cfg), seeds in groups.items():
            config = head_config(kind, **{k: v for k, v in json.loads(cfg).items() if k != "kind"})
            seeds = tuple(sorted(seeds))
            head = make_head(config, seeds).fit(train, stop=stop)
            raw, base = np.atleast_2d(head.score(X[rows])), np.atleast_2d(head.score(X[seen]))
            for i, s in enumerate(seeds):
                stats, scores = out.setdefault((kind, cfg, s), (np.zeros((folds, 2)), np.zeros((P, K))))
                stats[f] = score_stats(base[i : i + 1])[0]
                scores[held] = raw[i].reshape(len(held), K)
    return out, gold, fold_of


def oof_value(handle, trial, members: dict, fold_of: np.ndarray, gold: np.ndarray) -> float:
    """The launch's objective per training prompt, out of fold, for one trial's ensemble."""
    from rmsearch.ensembles import EnsembleConfig

    config = EnsembleConfig.from_point(trial.user_attrs["config"])
    recs = [handle.store.get(k) for k in trial.user_attrs["members"]]
    z = []
    for r in recs:
        stats, raw = members[(r.kind, json.dumps(r.config, sort_keys=True), r.seed)]
        mean, std = stats[fold_of, 0][:, None], stats[fold_of, 1][:, None]
        z.append((raw - mean) / std if config.standardize else raw)
    s = config.aggregation(np.stack([v.ravel() for v in z]))
    return handle.objective(s, SimpleNamespace(gold=gold))


def zscore(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else 0 * v


def judge(study: str, runs: Path, folds: int) -> dict:
    """One launch: each trial's validation, out-of-fold and test values, and how each ranking fares on test."""
    from scipy.stats import spearmanr

    from rmsearch.search import StudyHandle
    from rmsearch.search._choice import trial_combination
    from rmsearch.search._final import ensure_test_scores
    from rmsearch.search._select import library

    handle = StudyHandle.open(study, runs)
    trials = [t for t in handle.completed() if all(k in handle.store for k in t.user_attrs.get("members", []))]
    _, records = library(handle)
    ensure_test_scores(handle, records)
    combos = [trial_combination(handle, t)[1] for t in trials]
    val = np.array([handle.objective(c.scores("val"), handle.task.val) for c in combos])
    test = np.array([handle.objective(c.scores("test"), handle.task.test) for c in combos])
    members, gold, fold_of = fold_scores(handle, member_groups(handle, trials), folds, handle.task_config.seed)
    oof = np.array([oof_value(handle, t, members, fold_of, gold) for t in trials])
    sign = handle.objective.sign
    scores = {"validation": sign * val, "out of fold": sign * oof,
              "pooled": zscore(sign * val) + zscore(sign * oof)}
    best = float((sign * test).max())
    out = {"study": study, "trials": len(trials), "val_prompts": int(handle.task.val.gold.shape[0]),
           "train_prompts": int(gold.shape[0]), "objective": handle.objective.name,
           "values": {"validation": val.tolist(), "out of fold": oof.tolist(), "test": test.tolist()}}
    for name, s in scores.items():
        out[name] = {"spearman": float(spearmanr(s, sign * test)[0]),
                     "regret": best - float(sign * test[int(np.argmax(s))])}
    print(f"{study}: {len(trials)} trials; " + "; ".join(
        f"{n}: Spearman {out[n]['spearman']:+.3f}, regret {out[n]['regret']:.3f}" for n in RANKINGS), flush=True)
    return out


def markdown(rows: list[dict], what: str) -> str:
    from rmsearch.reproduce._verdicts import seed_interval

    def cell(values, fmt="+.3f"):
        mean, lo, hi = seed_interval(values)
        return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]" if np.isfinite(lo) else f"{mean:{fmt}}"

    r0 = rows[0]
    lines = [f"{what}: {len(rows)} launches of {r0['trials']} trials, objective {r0['objective']}; "
             f"{r0['val_prompts']} validation prompts, {r0['train_prompts']} training prompts out of fold "
             f"({FOLDS} folds). Mean over launches [95% t interval]:", "",
             "| ranking | Spearman with the test objective, over trials | regret of its first trial on test |",
             "|---|---|---|"]
    for name in RANKINGS:
        lines.append(f"| {name} | {cell([r[name]['spearman'] for r in rows])} | "
                     f"{cell([r[name]['regret'] for r in rows], '.3f')} |")
    diff = [r["out of fold"]["spearman"] - r["validation"]["spearman"] for r in rows]
    pooled = [r["pooled"]["spearman"] - r["validation"]["spearman"] for r in rows]
    lines += ["", f"Out of fold − validation, Spearman: {cell(diff)}; pooled − validation: {cell(pooled)}."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", required=True, help="run folder of the launches")
    p.add_argument("--study", required=True, help="study name with {} for the seed, e.g. alpaca-seed{}")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--what", default="AlpacaEval", help="the data's name in the table")
    p.add_argument("--name", default="oof-ranking", help="saved as benchmarks/results/NAME.json")
    p.add_argument("--save", action="store_true")
    args = p.parse_args()
    rows = []
    for s in args.seeds:  # each launch's numbers are kept in the run folder, so a rerun adds only new seeds
        cached = Path(args.runs) / f"{args.study.format(s)}.oof-ranking.json"
        if not cached.is_file():
            cached.write_text(json.dumps(judge(args.study.format(s), Path(args.runs), FOLDS)))
        rows.append(json.loads(cached.read_text()))
    text = markdown(rows, args.what)
    print(text)
    if args.save:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from readme import save

        print(f"saved {save(args.name, text, rows)}")


if __name__ == "__main__":
    main()
