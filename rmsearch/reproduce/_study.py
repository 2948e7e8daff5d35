"""The seed paper's reward-model-ensemble case study, rerun: for each head type × label-noise level × seed, one
member group is trained as a Ray task; from its cached test scores the driver evaluates a single head (each
member alone, averaged) against the mean, min and uwo (λ=1) ensembles of all members, with exact best-of-N
curves up to the pool size. Results are summarized over seeds (mean ± std). Beside the seed's head types, the
Bayesian `laplace` head also gets best-of-N by its own lower bound: each member alone by z − κ·σ (its posterior
std), and the ensemble's lcb with the posterior variance added to the spread over members (`OWN_STD_ROWS`).

A seed draws the annotator's labels, the prompt splits and the member seeds, and, on the built-in world given
without a seed (`synth`, `synth:dim=64`, …), the world itself (`synth` seed = the study's seed): a verdict is then
not a property of one world. Data with a fixed world (a seed-format folder, `synth:seed=3`) is shared by all
seeds."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from rmsearch.data import NOISE_LEVELS, Annotator, GoldData, PairData, TaskConfig, load_data, make_task
from rmsearch.ensembles import Aggregation
from rmsearch.errors import RMSearchError
from rmsearch.evaluate import compare_aggregations
from rmsearch.reproduce._grid import world_per_seed

SEED_HEADS = ("mlp", "mlp_clf", "gbdt", "linear")
"""The seed paper's head types: what the findings are decided over."""
HEADS = (*SEED_HEADS, "laplace")
AGGREGATIONS = {"mean": Aggregation("mean"), "min": Aggregation("min"), "uwo": Aggregation("uwo", 1.0)}
"""The seed paper's ensembles, by the name rows and files give them."""
ROW_AGGREGATIONS = ("single", *AGGREGATIONS)
KAPPA = 1.0
OWN_STD_ROWS = ("single lcb", "lcb")
"""Rows of head types with their own posterior std (laplace): each member alone by its lower bound z − κ·σ, and
the ensemble's lcb mean − κ·std with std² = variance over members + mean posterior variance (κ = `KAPPA`)."""
AGG_LABELS = {"single": "single", **{name: agg.label for name, agg in AGGREGATIONS.items()},
              "single lcb": f"single by lower bound (κ={KAPPA:g})", "lcb": f"lcb (κ={KAPPA:g}, with posterior)"}
"""Row name -> its label in tables and plots ('uwo (λ=1)')."""


def rows_of(head: str) -> tuple[str, ...]:
    """The rows a head type gets: single and the seed's ensembles, and `OWN_STD_ROWS` where it has its own std."""
    from rmsearch.heads import STD_FORWARDS

    return ROW_AGGREGATIONS + (OWN_STD_ROWS if head in STD_FORWARDS else ())
METRICS = ("gold_final", "gold_peak", "peak_n", "drop", "gain", "spearman", "pair_accuracy", "gao_alpha", "gao_beta",
           "gao_r2")

QUICK_DATA = "synth:train_prompts=200,test_prompts=20,test_responses=50,dim=8"


def head_configs(quick: bool, bootstrap: bool = True) -> dict[str, dict]:
    """Small hyperparameters per head type, sized for a 2-core CPU; every study reads its heads from here. With
    `bootstrap` (this study's ensembles) every member draws its own bootstrap of the pairs, so members differ by more
    than their seed (what conservative aggregation feeds on)."""
    epochs = 5 if quick else 40
    mlp = {"hidden": [64, 32], "epochs": epochs, "patience": 0, "bootstrap": bootstrap}
    return {
        "mlp": {"kind": "mlp", **mlp},
        "mlp_clf": {"kind": "mlp_clf", **mlp},
        "gbdt": {"kind": "gbdt", "max_iter": 10 if quick else 100, "bootstrap": bootstrap},
        "linear": {"kind": "linear", "epochs": epochs, "bootstrap": bootstrap},
        "laplace": {"kind": "laplace", "bootstrap": bootstrap},
    }


@dataclass
class StudyConfig:
    data: str = "synth"
    heads: tuple[str, ...] = HEADS
    noise_levels: tuple[float, ...] = NOISE_LEVELS
    seeds: int = 5
    members: int = 5
    quick: bool = False
    configs: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def make(cls, data: str | None = None, quick: bool = False, seeds: int | None = None,
             members: int | None = None) -> "StudyConfig":
        config = cls(
            data=data or (QUICK_DATA if quick else "synth"),
            noise_levels=(0.05, 0.40) if quick else NOISE_LEVELS,
            seeds=(1 if quick else 5) if seeds is None else seeds,
            members=(2 if quick else 5) if members is None else members,
            quick=quick, configs=head_configs(quick),
        )
        return config.validate()

    def validate(self) -> "StudyConfig":
        if self.seeds < 1:
            raise RMSearchError(f"--seeds {self.seeds}: needs at least 1 seed.")
        if self.members < 2:
            raise RMSearchError(f"--members {self.members}: an ensemble needs at least 2 members.")
        return self

    @property
    def world_per_seed(self) -> bool:
        """Whether each seed draws its own built-in world (`synth` given without `seed=`)."""
        return world_per_seed(self.data)

    def task_config(self, rate: float, seed: int) -> TaskConfig:
        return TaskConfig(annotator=Annotator(flip_rate=rate), seed=seed)

    def member_seeds(self, seed: int) -> tuple[int, ...]:
        return tuple(seed * 1000 + i for i in range(self.members))

    def jobs(self) -> list[tuple[str, float, int]]:
        return [(h, r, s) for h in self.heads for r in self.noise_levels for s in range(self.seeds)]


def _train_job(data, task_config: TaskConfig, head_config: dict, seeds: tuple[int, ...], threads: int) -> dict:
    """Ray task: carve the task from the shared data (deterministic, cheap) and train one member group; return
    only what evaluation needs: per-member score statistics and raw test scores."""
    from rmsearch.search import train_members

    from rmsearch.heads import forward_std

    task = make_task(data, task_config)
    records = train_members(task, head_config, seeds, threads)
    out = {"stats": np.stack([r.stats for r in records]),
           "test": np.stack([r.test_scores for r in records]),
           "seconds": float(sum(r.seconds for r in records))}
    if forward_std(records[0].kind, records[0].arrays, np.zeros((1, task.dim), np.float32)) is not None:
        out["test_std"] = np.stack([np.concatenate([forward_std(r.kind, r.arrays, block) for _, block in
                                                    task.test.chunks()]) for r in records])
    return out


def evaluate_group(task, stats: np.ndarray, test_scores: np.ndarray, test_std: np.ndarray | None = None) -> dict:
    """'single' (each member alone, averaged) and each ensemble aggregation -> {"metrics", "curve"} on the test
    split of `task` (`rmsearch.evaluate.compare_aggregations` on standardized scores); with `test_std` (k, n), the
    members' own raw posterior std, also `OWN_STD_ROWS`."""
    from rmsearch.ensembles import standardize, total_std
    from rmsearch.evaluate import evaluate_split, mean_evaluation
    from rmsearch.reproduce._grid import gao_columns

    results = compare_aggregations(task, stats, None, test_scores, list(AGGREGATIONS.values()))
    out = {"single": results["single"]["test"],
           **{name: results[agg.label]["test"] for name, agg in AGGREGATIONS.items()}}
    if test_std is not None:
        z, u = standardize(test_scores, stats), np.asarray(test_std, np.float64) / stats[:, 1:2]
        out["single lcb"] = mean_evaluation([evaluate_split(zi - KAPPA * ui, task.test) for zi, ui in zip(z, u)])
        out["lcb"] = evaluate_split(z.mean(0) - KAPPA * total_std(z, u ** 2), task.test)
    for ev in out.values():  # Gao et al.'s law fitted to each curve (its peak N may be inf: left out of the means)
        ev["metrics"].update({k: v for k, v in gao_columns(ev["curve"]).items() if k != "gao_peak_n"})
    return out


def check_data(data, spec: str) -> GoldData:
    if isinstance(data, PairData):
        raise RMSearchError(
            f"--data {spec}: is a pair dataset (chosen/rejected embeddings without gold rewards). The seed-ensembles "
            f"case study measures over-optimization with best-of-N against gold rewards, which pairs cannot give. "
            f"Use --data synth (the built-in gold world) or a seed-format folder with reward_*.npy files."
        )
    return data


def run_study(config: StudyConfig, address: str | None = None, workers: int | None = None,
              progress: bool = True) -> dict:
    """Train every (head, noise, seed) group on Ray and evaluate it; returns per-seed results and a summary."""
    from rmsearch.search import init_ray

    start = time.perf_counter()
    worlds = load_worlds(config)
    ray, slots, threads = init_ray(address, workers)
    tasks = {(r, s): make_task(worlds[s], config.task_config(r, s)) for r in config.noise_levels
             for s in range(config.seeds)}
    refs = submit_jobs(ray, config, worlds, threads)
    description = f"member groups ({config.members} members each, {slots} at once)"
    runs, train_seconds = collect_runs(ray, refs, tasks, description, progress)
    return {
        **study_facts(config, worlds, tasks),
        "rows": summarize(config, runs, {k: t.label_error for k, t in tasks.items()}),
        "curves": mean_curves(config, runs),
        "per_seed": [{"head": h, "flip_rate": r, "seed": s, "aggregation": a, **res["metrics"]}
                     for (h, r, s), ev in runs.items() for a, res in ev.items()],
        "label_error": {f"{r}/{s}": t.label_error for (r, s), t in tasks.items()},
        "workers": slots, "threads_per_job": threads,
        "train_seconds": train_seconds, "wall_seconds": time.perf_counter() - start,
    }


def load_worlds(config: StudyConfig) -> dict[int, GoldData]:
    """seed -> the gold data it trains on: a world per seed (`config.world_per_seed`) or one shared world."""
    seeds = range(config.seeds)
    if config.world_per_seed:
        return {s: check_data(load_data(config.data, seed=s), config.data) for s in seeds}
    data = check_data(load_data(config.data), config.data)
    return {s: data for s in seeds}


def submit_jobs(ray, config: StudyConfig, worlds: dict, threads: int) -> dict:
    """Start one Ray training job per (head, noise, seed); returns object ref -> (head, rate, seed)."""
    remote = ray.remote(num_cpus=threads, max_retries=3)(_train_job)
    refs_of = {}
    for data in worlds.values():  # each world once into the object store; every job carves its task from it
        refs_of.setdefault(id(data), ray.put(data))
    refs = {}
    for head, rate, seed in config.jobs():
        ref = remote.remote(refs_of[id(worlds[seed])], config.task_config(rate, seed), config.configs[head],
                            config.member_seeds(seed), threads)
        refs[ref] = (head, rate, seed)
    return refs


def collect_runs(ray, refs: dict, tasks: dict, description: str, progress: bool) -> tuple[dict, float]:
    """Evaluate each job's member group as it finishes (`evaluate_group`), under a progress bar; returns
    (head, rate, seed) -> evaluation, in the order the jobs finished, and the jobs' training seconds."""
    from rmsearch.reproduce._grid import finished_jobs

    runs, train_seconds = {}, 0.0
    for _, (head, rate, seed), out in finished_jobs(ray, refs, description, progress):
        train_seconds += out["seconds"]
        runs[(head, rate, seed)] = evaluate_group(tasks[(rate, seed)], out["stats"], out["test"], out.get("test_std"))
    return runs, train_seconds


def study_facts(config: StudyConfig, worlds: dict, tasks: dict) -> dict:
    """The result's description of the run: its configuration, the data and the task sizes."""
    any_task = next(iter(tasks.values()))
    data = worlds[0]
    return {
        "config": asdict(config),
        "data": {"spec": config.data, "name": data.name, "fingerprint": data.fingerprint, "dim": data.dim,
                 "train": list(data.train.embeddings.shape[:2]), "test": list(data.test.embeddings.shape[:2]),
                 "world_per_seed": config.world_per_seed,
                 "worlds": [{"seed": s, "name": w.name, "fingerprint": w.fingerprint} for s, w in worlds.items()]},
        "test_prompts": int(any_task.test.gold.shape[0]), "pool": int(any_task.test.gold.shape[1]),
        "train_pairs": len(any_task.train),
    }


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(config: StudyConfig, runs: dict, label_error: dict) -> list[dict]:
    """One row per head × noise × (single + aggregations): mean and std over seeds of each metric."""
    rows = []
    for head in config.heads:
        for rate in config.noise_levels:
            errors = [label_error[(rate, s)] for s in range(config.seeds)]
            for agg in rows_of(head):
                ms = [runs[(head, rate, s)][agg]["metrics"] for s in range(config.seeds)]
                row = {"head": head, "flip_rate": rate, "label_error": float(np.mean(errors)), "aggregation": agg,
                       "seeds": config.seeds}
                for k in METRICS:
                    vals = [float(m[k]) for m in ms if k in m]
                    if vals:
                        row[k] = float(np.mean(vals))
                        row[f"{k}_std"] = _std(vals)
                rows.append(row)
    return rows


def mean_curves(config: StudyConfig, runs: dict) -> dict:
    """(head, rate, agg) -> {"n", "kl", "gold", "gold_std"}: BoN gold curves averaged over seeds."""
    out = {}
    for head in config.heads:
        for rate in config.noise_levels:
            for agg in rows_of(head):
                curves = [runs[(head, rate, s)][agg]["curve"] for s in range(config.seeds)]
                gold = np.array([c["gold"] for c in curves])
                out[(head, rate, agg)] = {"n": curves[0]["n"], "kl": curves[0]["kl"], "gold": gold.mean(0).tolist(),
                                          "gold_std": (gold.std(0, ddof=1) if len(gold) > 1 else 0 * gold[0]).tolist()}
    return out
