"""The engine of the grid studies: a study is a list of cells (a head configuration, an annotator, an annotation
budget, a number of members), each trained once per seed as one Ray job; the driver evaluates each finished job
on the test split (exact best-of-N against gold) and keeps one row of metrics per (cell, seed, row), where a
study's rows are what it compares inside one trained group ('single', 'mean', 'uwo λ=0.5', '3 members', …).

A seed is one replicate of the whole experiment: on the built-in world given without `seed=` it draws the world
too (`world_per_seed`), and always the prompt splits, the annotator's labels, the budget's subsample and the
member seeds. Findings are computed per seed and summarized with an interval over seeds
(`rmsearch.reproduce._verdicts`).

An annotation budget of B pairs keeps B labelled pairs in all, split between training and early stopping in the
task's proportion (`TaskConfig.stop_fraction` of prompts): every label a head sees counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from rmsearch.data import Annotator, TaskConfig, load_data, make_task
from rmsearch.errors import RMSearchError


@dataclass(frozen=True)
class Cell:
    """One point of a study's grid."""

    key: tuple[tuple[str, object], ...]
    """The cell's coordinates in order, e.g. (("head", "mlp"), ("flip_rate", 0.25)): columns of its rows."""
    head: dict
    """The head configuration its members train with (a `kind` plus that head's keys)."""
    annotator: Annotator = Annotator()
    budget: int | None = None
    """Labelled pairs in all (training + early stopping); None: every pair the annotator draws."""
    members: int = 1

    @property
    def coords(self) -> dict:
        return dict(self.key)

    def member_seeds(self, seed: int) -> tuple[int, ...]:
        return tuple(seed * 1000 + i for i in range(self.members))


def world_per_seed(spec: str) -> bool:
    """`synth[:…]` without a `seed=` draws a world per seed; a folder or `synth:seed=…` is one fixed world."""
    spec = str(spec)
    return (spec == "synth" or spec.startswith("synth:")) and "seed=" not in spec


def load_worlds(spec: str, seeds: int, study: str) -> dict:
    """seed -> the gold data it trains on (a world per seed where `world_per_seed`, else one shared)."""
    from rmsearch.data import PairData

    def check(data):
        if isinstance(data, PairData):
            raise RMSearchError(
                f"--data {spec}: is a pair dataset (chosen/rejected embeddings without gold rewards). The {study} "
                f"study measures best-of-N against gold rewards, which pairs cannot give. Use --data synth (the "
                f"built-in gold world) or a gold folder (`rmsearch data candidates` builds one from scored answers).")
        return data

    if world_per_seed(spec):
        return {s: check(load_data(spec, seed=s)) for s in range(seeds)}
    data = check(load_data(spec))
    return {s: data for s in range(seeds)}


def cell_task(data, cell: Cell, seed: int, base=None):
    """The task a cell's members train on for `seed`: `make_task` with the cell's annotator (or `base`, that task
    already made), then the budget's subsample of the labelled pairs (training and early stopping in
    proportion), drawn by the seed."""
    task = base if base is not None else make_task(data, TaskConfig(annotator=cell.annotator, seed=seed))
    if cell.budget is None:
        return task
    available = len(task.train) + len(task.stop)
    if cell.budget > available:
        raise RMSearchError(budget_message(cell.budget, available, cell.annotator))
    rng = np.random.default_rng([seed, 11, cell.budget])
    n_stop = max(1, int(round(cell.budget * len(task.stop) / available)))
    n_train = cell.budget - n_stop
    train = task.train.subset(np.sort(rng.choice(len(task.train), n_train, replace=False)))
    stop = task.stop.subset(np.sort(rng.choice(len(task.stop), n_stop, replace=False)))
    return replace(task, train=train, stop=stop)


def budget_message(budget: int, available: int, annotator: Annotator) -> str:
    return (f"annotation budget {budget} pairs: the data gives only {available} labelled pairs at "
            f"{annotator.pairs_per_prompt} pairs per prompt. Use smaller --budgets, or data with more prompts.")


def _cell_job(data, cell: Cell, seed: int, threads: int) -> dict:
    """Ray task: build the cell's task from the shared data (cheap, deterministic) and train its members; return
    what evaluation needs: per-member score statistics and raw test scores."""
    from rmsearch.search import train_members

    task = cell_task(data, cell, seed)
    records = train_members(task, cell.head, cell.member_seeds(seed), threads)
    return {"stats": np.stack([r.stats for r in records]), "test": np.stack([r.test_scores for r in records]),
            "seconds": float(sum(r.seconds for r in records))}


@dataclass
class GridRun:
    """What `run_grid` returns: per-seed metric rows, curves and timings."""

    rows: list[dict] = field(default_factory=list)
    """One per (cell, seed, row): the cell's coordinates, 'seed', 'row', the metrics, 'oracle' (the test split's
    best achievable BoN gold), 'label_error' and the Gao fit's 'gao_alpha', 'gao_beta', 'gao_peak_n', 'gao_r2'."""
    curves: dict = field(default_factory=dict)
    """(cell key, row) -> list over seeds of BoN curves {'n', 'kl', 'gold'}."""
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    workers: int = 0
    jobs: int = 0
    facts: dict = field(default_factory=dict)


def single_rows(task, out: dict, cell: Cell) -> dict:
    """The default evaluation: 'single', each member alone on the test split, metrics and curve averaged."""
    from rmsearch.evaluate import evaluate_split, mean_evaluation

    return {"single": mean_evaluation([evaluate_split(s, task.test) for s in out["test"]])}


def oracle_gold(split) -> float:
    """The best BoN gold a reward model could reach on this split: each prompt's best candidate, averaged."""
    return float(np.asarray(split.gold, np.float64).max(1).mean())


def run_grid(cells: list[Cell], spec: str, seeds: int, study: str, evaluate=single_rows,
             address: str | None = None, workers: int | None = None, progress: bool = True) -> GridRun:
    """Train every (cell, seed) as a Ray job and evaluate it with `evaluate(task, job output, cell) -> {row:
    evaluation}` as it finishes."""
    from rmsearch.search import init_ray

    start = time.perf_counter()
    worlds = load_worlds(spec, seeds, study)
    bases, tasks = {}, {}
    for i, cell in enumerate(cells):  # every task is built (and its budget checked) before any training
        for s in range(seeds):
            key = (repr(cell.annotator), s)
            if key not in bases:
                bases[key] = make_task(worlds[s], TaskConfig(annotator=cell.annotator, seed=s))
            tasks[i, s] = cell_task(worlds[s], cell, s, bases[key])
    ray, slots, threads = init_ray(address, workers)
    remote = ray.remote(num_cpus=threads, max_retries=3)(_cell_job)
    refs_of = {}
    for data in worlds.values():
        refs_of.setdefault(id(data), ray.put(data))
    refs = {remote.remote(refs_of[id(worlds[s])], cell, s, threads): (i, s) for i, cell in enumerate(cells)
            for s in range(seeds)}
    run = GridRun(workers=slots, jobs=len(refs), facts=data_facts(spec, worlds, tasks))
    for ref, (i, s), out in finished_jobs(ray, refs, f"{study}: member groups ({slots} at once)", progress):
        run.train_seconds += out["seconds"]
        cell, task = cells[i], tasks[i, s]
        extra = {"seed": s, "oracle": oracle_gold(task.test), "label_error": task.label_error,
                 "train_pairs": len(task.train) + len(task.stop)}
        for name, ev in evaluate(task, out, cell).items():
            run.rows.append({**cell.coords, **extra, "row": name, **ev["metrics"], **gao_columns(ev["curve"])})
            run.curves.setdefault((cell.key, name), []).append(
                {k: ev["curve"][k] for k in ("n", "kl", "gold")})
    run.wall_seconds = time.perf_counter() - start
    return run


def gao_columns(curve: dict) -> dict:
    """Gao et al.'s best-of-N law fitted to one gold curve, as row columns."""
    from rmsearch.evaluate import gao_fit

    fit = gao_fit(curve["n"], curve["gold"])
    peak = fit.peak_n
    return {"gao_alpha": fit.alpha, "gao_beta": fit.beta, "gao_r2": fit.r2,
            "gao_peak_n": float(peak) if peak <= MAX_PEAK_N else None}


MAX_PEAK_N = 1e9
"""A fitted peak further out than this many candidates is no peak anyone samples: recorded as None (no peak)."""


def finished_jobs(ray, refs: dict, description: str, progress: bool):
    """Yield (ref, what it was, its result) as jobs finish, under a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        job = bar.add_task(description, total=len(refs))
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ref, refs[ref], ray.get(ref)
                bar.advance(job)


def data_facts(spec: str, worlds: dict, tasks: dict) -> dict:
    data = worlds[0]
    task = next(iter(tasks.values()))
    return {"spec": spec, "name": data.name, "fingerprint": data.fingerprint, "dim": data.dim,
            "train": list(data.train.embeddings.shape[:2]), "test": list(data.test.embeddings.shape[:2]),
            "world_per_seed": world_per_seed(spec),
            "worlds": [{"seed": s, "name": w.name, "fingerprint": w.fingerprint} for s, w in worlds.items()],
            "test_prompts": int(task.test.gold.shape[0]), "pool": int(task.test.gold.shape[1])}


def per_seed(rows: list[dict], value, **where) -> dict[int, float]:
    """seed -> the mean of `value(row)` over the rows matching every `where` (a value or a tuple of values)."""
    def match(r):
        return all((r.get(k) in v) if isinstance(v, tuple) else r.get(k) == v for k, v in where.items())

    by_seed: dict[int, list[float]] = {}
    for r in rows:
        if match(r):
            by_seed.setdefault(r["seed"], []).append(float(value(r)))
    return {s: float(np.mean(v)) for s, v in sorted(by_seed.items())}


def differences(a: dict[int, float], b: dict[int, float]) -> tuple[float, ...]:
    """Per-seed a − b over the seeds both have."""
    return tuple(a[s] - b[s] for s in sorted(set(a) & set(b)))
