"""`active`: which pairs to send to annotators under a budget (Shen, Sun et al., "Active reward modeling", 2025).

Per seed and pairing (two answers of one prompt, or answers of two prompts), the candidate pool is every pair the
annotator draws on the train split (training and early-stopping prompts together: the exact logistic fit has no
early stopping). Labels are the annotator's Bradley-Terry draws (the seed's annotator, quality 2.0: close pairs
are noisier), revealed only as pairs are chosen. Round 0 labels a random seed batch, the same for every rule of a
seed and pairing; then each round trains an ensemble on the labelled pairs, evaluates it on the test split
(ensemble mean of standardized scores: BoN gold at N = M, Spearman, pair accuracy) and chooses the next batch by
the rule (`rmsearch.active`). One Ray job runs all rounds of one (rule, pairing, seed).

Findings, per informed rule and pairing, each per seed and then over seeds:
- it reaches random's final BoN gold (resp. Spearman) with fewer labels: the labels saved (`saving`);
- it beats random at the final budget: rule − random BoN gold at N = M;
- and per rule: cross-prompt pairs beat within-prompt pairs at the final budget.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rmsearch.data import Annotator, TaskConfig, make_task
from rmsearch.errors import RMSearchError
from rmsearch.reproduce._grid import (
    Cell,
    GridRun,
    data_facts,
    differences,
    finished_jobs,
    load_worlds,
    oracle_gold,
)
from rmsearch.reproduce._grid_study import GridStudy, plt, pm
from rmsearch.reproduce._verdicts import Verdict

RULES = ("random", "disagreement", "dopt", "coreset")
INFORMED = RULES[1:]
PAIRINGS = ("within", "cross")
HEAD = {"kind": "linear", "solver": "lbfgs", "bootstrap": True}
"""Exact L2 logistic regression on embedding differences; members differ by their bootstrap draw of the labelled
pairs (what disagreement measures). Its last-layer features are the standardized embeddings (what dopt and
coreset measure pairs in)."""
MEMBERS = 4
PAIRS_PER_PROMPT = 5
"""Candidate pairs per train prompt: within-prompt, every response of the built-in world's 10 in one pair."""
SCHEDULE = tuple(range(20, 401, 20))
"""Labelled pairs after each round: a random seed batch of 20, then 19 rounds of 20 chosen by the rule."""
QUICK_SCHEDULE = (10, 20, 30, 40)
POOL_TIMES = 4
"""The pool must hold at least this many times the final budget, so that a rule has a choice to make."""
METRICS = ("gold_final", "spearman")
LABELS = {"gold_final": "BoN gold at N = M", "spearman": "Spearman (per prompt, mean)"}


def round_row(labels: int) -> str:
    """The `row` of a round's result: what results.csv groups by beside (rule, pairing)."""
    return f"{labels} labels"


def candidate_pool(data, annotator: Annotator, seed: int):
    """(task, pool): the task carved for `seed` and every pair the annotator labels on its train split."""
    task = make_task(data, TaskConfig(annotator=annotator, seed=seed))
    return task, task.train.join(task.stop)


def _active_job(data, cell: Cell, seed: int, schedule: tuple[int, ...], threads: int) -> dict:
    """Ray task: every round of one (rule, pairing, seed); returns each round's test metrics and the last round's
    BoN curve."""
    from rmsearch.active import choose_pairs
    from rmsearch.ensembles import score_split, score_stats, standardize
    from rmsearch.evaluate import evaluate_split
    from rmsearch.heads import head_config, make_head

    start = time.perf_counter()
    task, pool = candidate_pool(data, cell.annotator, seed)
    X = np.asarray(pool.X, np.float32)
    features = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    gold = np.asarray(data.train.gold, np.float64).ravel()
    wrong = (pool.y > 0.5) != (gold[pool.a] > gold[pool.b])
    config = head_config(HEAD["kind"], **{k: v for k, v in HEAD.items() if k != "kind"})
    rng = np.random.default_rng([seed, 29, PAIRINGS.index(cell.annotator.pairing)])
    labelled = rng.choice(len(pool), schedule[0], replace=False)
    rounds, curve = [], None
    for r, labels in enumerate(schedule):
        head = make_head(config, cell.member_seeds(seed)).fit(pool.subset(labelled))
        raw = head.score(X)
        test = standardize(score_split(head, task.test), score_stats(raw)).mean(0)
        ev = evaluate_split(test, task.test)
        curve = {k: ev["curve"][k] for k in ("n", "kl", "gold")}
        rounds.append({"round": r, "labels": int(labels), "label_error": float(wrong[labelled].mean()),
                       **ev["metrics"]})
        if r + 1 < len(schedule):
            new = choose_pairs(X, pool.a, pool.b, schedule[r + 1] - labels, cell.coords["rule"], labelled=labelled,
                               scores=raw, features=features, seed=seed * 1000 + r)
            labelled = np.concatenate([labelled, new])
    return {"rounds": rounds, "curve": curve, "pool": len(pool), "seconds": time.perf_counter() - start}


def reach(labels: np.ndarray, values: np.ndarray, target: float) -> float:
    """The fewest labels at which the curve, linearly interpolated between rounds, first reaches `target` (the
    first round's labels where it starts there); nan where it never does."""
    hit = np.flatnonzero(values >= target)
    if not len(hit):
        return float("nan")
    i = int(hit[0])
    if i == 0:
        return float(labels[0])
    x0, x1, y0, y1 = labels[i - 1], labels[i], values[i - 1], values[i]
    return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))


def saving(labels: np.ndarray, rule: np.ndarray, base: np.ndarray) -> float:
    """Labels the rule saves against the baseline: final budget − the labels where the rule's curve first reaches
    the baseline's final value. Where it never does, minus the labels the baseline saves against the rule (final
    budget − where the baseline's curve reaches the rule's final value): both sides measured alike, in
    [−(final − first), final − first]."""
    needed = reach(labels, rule, base[-1])
    if np.isfinite(needed):
        return float(labels[-1] - needed)
    return -float(labels[-1] - reach(labels, base, rule[-1]))


def curves(rows: list[dict], metric: str, rule: str, pairing: str) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(labels, seed -> the metric after each round) of one rule and pairing."""
    mine = [r for r in rows if r["rule"] == rule and r["pairing"] == pairing]
    labels = np.array(sorted({r["labels"] for r in mine}), np.float64)
    out: dict[int, np.ndarray] = {}
    for r in mine:
        out.setdefault(r["seed"], np.full(len(labels), np.nan))[int(np.searchsorted(labels, r["labels"]))] = r[metric]
    return labels, dict(sorted(out.items()))


def savings(rows: list[dict], metric: str, rule: str, pairing: str) -> dict[int, float]:
    labels, mine = curves(rows, metric, rule, pairing)
    _, base = curves(rows, metric, "random", pairing)
    return {s: saving(labels, mine[s], base[s]) for s in mine if s in base}


def finals(rows: list[dict], metric: str, rule: str, pairing: str) -> dict[int, float]:
    _, mine = curves(rows, metric, rule, pairing)
    return {s: float(v[-1]) for s, v in mine.items()}


class ActiveStudy(GridStudy):
    name = "active"
    title = "Active pair selection under an annotation budget (Shen, Sun et al. 2025)"
    sweeps_budget = True
    help = ("rounds of label / retrain / choose the next batch: random vs ensemble disagreement, D-optimal "
            "(Fisher information) and coreset rules × within/cross-prompt pairs; BoN gold against labels used; "
            "--budgets sets the labels after each round")

    @property
    def schedule(self) -> tuple[int, ...]:
        budgets = tuple(self.options.budgets or (QUICK_SCHEDULE if self.options.quick else SCHEDULE))
        if len(budgets) < 2:
            raise RMSearchError(f"--budgets {','.join(map(str, budgets))}: the active study needs at least two "
                                f"budgets: the random seed batch, then the labels after each round of selection.")
        return budgets

    def cells(self) -> list[Cell]:
        return [Cell((("rule", r), ("pairing", p)), HEAD, Annotator(pairing=p, pairs_per_prompt=PAIRS_PER_PROMPT),
                     budget=self.schedule[-1], members=MEMBERS) for p in PAIRINGS for r in RULES]

    def run(self, address: str | None = None, workers: int | None = None, progress: bool = True) -> dict:
        from rmsearch.search import init_ray

        start = time.perf_counter()
        schedule, cells, seeds = self.schedule, self.cells(), self.options.seeds
        worlds = load_worlds(self.spec, seeds, self.name)
        tasks = {}
        for cell in cells[:: len(RULES)]:  # one per pairing: every rule of a seed shares its pool
            for s in range(seeds):
                task, pool = candidate_pool(worlds[s], cell.annotator, s)
                if len(pool) < POOL_TIMES * schedule[-1]:
                    raise RMSearchError(f"--budgets: a final budget of {schedule[-1]} labelled pairs needs a pool of "
                                        f"at least {POOL_TIMES * schedule[-1]} candidate pairs, and the data gives "
                                        f"{len(pool)}. Use smaller --budgets, or data with more prompts.")
                tasks[cell.annotator.pairing, s] = task
        ray, slots, threads = init_ray(address, workers)
        remote = ray.remote(num_cpus=threads, max_retries=3)(_active_job)
        refs_of = {}
        for data in worlds.values():
            refs_of.setdefault(id(data), ray.put(data))
        refs = {remote.remote(refs_of[id(worlds[s])], cell, s, schedule, threads): (cell, s)
                for s in range(seeds) for cell in cells}
        grid = GridRun(workers=slots, jobs=len(refs), facts=data_facts(self.spec, worlds, tasks))
        jobs = finished_jobs(ray, refs, f"{self.name}: rounds of selection ({slots} at once)", progress)
        for _, (cell, s), out in jobs:
            grid.train_seconds += out["seconds"]
            oracle = oracle_gold(tasks[cell.annotator.pairing, s].test)
            for rd in out["rounds"]:
                grid.rows.append({**cell.coords, "seed": s, "row": round_row(rd["labels"]), "pool": out["pool"],
                                  "oracle": oracle, **rd})
            grid.curves.setdefault((cell.key, round_row(schedule[-1])), []).append(out["curve"])
        grid.rows.sort(key=lambda r: (PAIRINGS.index(r["pairing"]), RULES.index(r["rule"]), r["seed"], r["round"]))
        grid.wall_seconds = time.perf_counter() - start
        return {**self.result(cells, grid), "schedule": list(schedule)}

    def design(self) -> list[str]:
        s = self.schedule
        return [f"**rules**: {', '.join(RULES)}, each with {' / '.join(PAIRINGS)}-prompt pairs; one Ray job per "
                f"(rule, pairing, seed) runs every round",
                f"**pool**: every pair the annotator draws on the train split ({PAIRS_PER_PROMPT} per prompt, training "
                f"and early-stopping prompts together), labelled by Bradley-Terry draws at quality "
                f"{Annotator().quality:g} (close pairs are noisier); a label is revealed when its pair is chosen",
                f"**rounds**: labelled pairs {', '.join(map(str, s))}: round 0 is a random seed batch of {s[0]} "
                f"(the same for every rule of a seed and pairing); each later round adds the rule's choice",
                f"**head**: {MEMBERS} members of `linear` (exact L2 logistic regression, C=1, each on its own "
                f"bootstrap draw of the labelled pairs); no early stopping. The ensemble is the mean of standardized "
                f"member scores. dopt and coreset measure pairs in standardized embeddings (the linear head's "
                f"features); dopt and disagreement use the members' raw scores (Bradley-Terry logits)",
                "**labels saved**: final budget − the labels at which the rule's curve (linear between rounds) first "
                "reaches random's final value; where it never does, minus the labels random saves against the rule "
                "(final budget − where random's curve reaches the rule's final value), so both sides count alike"]

    def verdicts(self, result: dict) -> list[Verdict]:
        rows, final = result["rows"], result["schedule"][-1]
        out = []
        for pairing in PAIRINGS:
            for rule in INFORMED:
                scope = f"{pairing}-prompt"
                out += [Verdict(f"{rule}-saves", f"{rule} reaches random's final BoN gold with fewer labels",
                                f"labels saved to reach random's BoN gold at N = M after {final} labels",
                                tuple(savings(rows, "gold_final", rule, pairing).values()), scope=scope),
                        Verdict(f"{rule}-final", f"{rule} beats random at the final budget",
                                f"{rule} − random, BoN gold at N = M after {final} labels",
                                differences(finals(rows, "gold_final", rule, pairing),
                                            finals(rows, "gold_final", "random", pairing)), scope=scope),
                        Verdict(f"{rule}-saves-spearman", f"{rule} reaches random's final Spearman with fewer labels",
                                f"labels saved to reach random's Spearman after {final} labels",
                                tuple(savings(rows, "spearman", rule, pairing).values()), scope=scope)]
        for rule in RULES:
            out.append(Verdict(f"{rule}-cross", "cross-prompt pairs beat within-prompt pairs",
                               f"cross − within, BoN gold at N = M after {final} labels",
                               differences(finals(rows, "gold_final", rule, "cross"),
                                           finals(rows, "gold_final", rule, "within")), scope=rule))
        return out

    def tables(self, result: dict) -> list[str]:
        return [*(curve_table(result["rows"], m) for m in METRICS), budget_table(result["rows"])]

    def figures(self, result: dict, folder: Path) -> list[tuple[str, str]]:
        out = []
        for metric in METRICS:
            name = f"active_{metric}.png"
            curve_figure(result["rows"], metric, folder / name)
            out.append((name, f"{LABELS[metric]} on the test split against labelled pairs, per rule and pairing "
                              f"(mean ± 1 std over seeds)"))
        return out


def _mean_std(values) -> dict:
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    if not len(v):
        return {}
    return {"x": float(v.mean()), "x_std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def curve_table(rows: list[dict], metric: str) -> str:
    """Markdown: the metric after each round, per rule and pairing (mean ± std over seeds)."""
    cols = [(p, r) for p in PAIRINGS for r in RULES]
    labels = curves(rows, metric, "random", PAIRINGS[0])[0]
    by = {c: curves(rows, metric, c[1], c[0])[1] for c in cols}
    lines = [f"## {LABELS[metric]} against labels used (test split; mean ± std over seeds)", "",
             "| labels | " + " | ".join(f"{r}, {p}" for p, r in cols) + " |", "|---" * (1 + len(cols)) + "|"]
    for i, n in enumerate(labels):
        cells = [pm(_mean_std(v[i] for v in by[c].values()), "x") for c in cols]
        lines.append(f"| {n:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def budget_table(rows: list[dict]) -> str:
    """Markdown: the labels each rule needs to match random's final quality, its gold at the final budget and the
    label error of the pairs it labelled."""
    labels = curves(rows, "gold_final", "random", PAIRINGS[0])[0]
    lines = [f"## Labels needed to match random's quality after {labels[-1]:.0f} labels (mean ± std over seeds)", "",
             "Labels saved as defined above (negative: the rule needs more labels than random). Label error: the share "
             "of the rule's labelled pairs whose label disagrees with gold at the final budget.", "",
             "| pairing | rule | labels saved (BoN gold) | labels saved (Spearman) | BoN gold, final | Spearman, final "
             "| label error |", "|---" * 7 + "|"]
    for p in PAIRINGS:
        for r in RULES:
            cells = [pm(_mean_std(savings(rows, m, r, p).values()), "x", 0) if r != "random" else "0"
                     for m in METRICS]
            cells += [pm(_mean_std(finals(rows, m, r, p).values()), "x") for m in (*METRICS, "label_error")]
            lines.append(f"| {p} | {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_figure(rows: list[dict], metric: str, path: Path) -> None:
    """One panel per pairing: the metric against labels, one line per rule with a ±1 std band over seeds."""
    pyplot = plt()
    fig, axes = pyplot.subplots(1, len(PAIRINGS), figsize=(5.4 * len(PAIRINGS), 3.9), sharey=True, squeeze=False)
    for ax, pairing in zip(axes[0], PAIRINGS):
        for rule in RULES:
            labels, by_seed = curves(rows, metric, rule, pairing)
            v = np.array(list(by_seed.values()))
            mean, std = v.mean(0), (v.std(0, ddof=1) if len(v) > 1 else 0 * v[0])
            line, = ax.plot(labels, mean, marker="o", ms=3, label=rule, lw=2.2 if rule == "random" else 1.6,
                            ls="--" if rule == "random" else "-", color="black" if rule == "random" else None)
            ax.fill_between(labels, mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_title(f"{pairing}-prompt pairs")
        ax.set_xlabel("labelled pairs")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(LABELS[metric])
    axes[0][0].legend(fontsize=8)
    title = f"Active pair selection: {LABELS[metric]} against labels (test split; ±1 std over seeds)"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Title": title})
    pyplot.close(fig)
