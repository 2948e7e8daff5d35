"""Member jobs: Ray tasks that train one vectorized member group and return its members, in memory."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class TaskRecipe:
    """How to rebuild a task from its data where it runs, instead of shipping the arrays: for data larger than
    Ray's object store. A seed-format or pair folder is memory-mapped on each node (the path must be visible
    there, e.g. a shared file system); the built-in world is regenerated from its seed. Both are deterministic,
    so every node builds the same task."""

    data: str
    task_config: object

    def build(self):
        return _build(self)


@lru_cache(maxsize=2)
def _build(recipe: TaskRecipe):
    from rmsearch.data import load_data, make_task

    return make_task(load_data(recipe.data, seed=recipe.task_config.seed), recipe.task_config)


def train_members(task, head_config: dict, seeds: tuple[int, ...], threads: int, test: bool = True,
                  device: str = "cpu", share: float = 1.0):
    """Train `seeds` of one head configuration on `task` (on `share` of its training pairs: a `--halving` rung,
    `pair_share`), on `device` ('cpu', or 'cuda' where the job holds a GPU share and the head type trains there);
    returns one `MemberRecord` per seed (with test-split scores unless `test` is False).

    Runs inside a Ray worker: torch sees OMP_NUM_THREADS = the task's num_cpus there, so threads are set
    explicitly to the cores this job holds.
    """
    import torch

    from rmsearch.ensembles import fit_group
    from rmsearch.heads import head_config as make_config
    from rmsearch.search._fidelity import pair_share
    from rmsearch.search._store import records_from_group

    torch.set_num_threads(max(1, int(threads)))
    if isinstance(task, TaskRecipe):
        task = task.build()  # memory-mapped per worker process, built once and kept
    task = pair_share(task, share)
    config = make_config(head_config["kind"], **{k: v for k, v in head_config.items() if k != "kind"})
    records = records_from_group(fit_group(task, config, tuple(seeds), test=test, device=device))
    node = _node_id()
    for r in records:
        r.node = node
    return records


def _node_id() -> str:
    """The Ray node this job ran on ('' outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001 - where a job ran is bookkeeping, never a reason to fail it
        return ""
