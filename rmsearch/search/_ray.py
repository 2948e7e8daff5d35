"""Ray for a launch: joining or starting it, and the member jobs that run on it (each member trained once, however
many trials want it; finished members go to the head cache)."""

from __future__ import annotations

import math
import os
import socket
from contextlib import nullcontext

from rmsearch.errors import RMSearchError
from rmsearch.search._device import Placement, gpu_slots
from rmsearch.search._jobs import train_members
from rmsearch.search._store import MemberStore


def check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens on (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # 'auto' and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise RMSearchError(f"--address {address}: cannot join the Ray cluster (nothing answers there: "
                            f"{exc.strerror or exc}). Start it with `ray start --head --port={port}`, or omit "
                            f"--address for a local Ray.") from None


def init_ray(address: str | None, workers: int | None, gpus_per_job: float = 0.0):
    """Join the Ray cluster at `address`, or start a local Ray sized to this machine; returns (ray, slots, threads):
    member jobs at once (at most `workers`, one per CPU, and with `gpus_per_job` as many as the GPUs hold) and the
    CPUs each job holds. A cluster whose GPUs hold no job of `gpus_per_job` is a ConfigError."""
    if address:
        check_reachable(address)
    if address and "RAY_AUTH_MODE" not in os.environ and _has_ray_token():
        # `ray start` enables token authentication and writes the token locally; a client must ask for it
        # (Ray reads this when it is imported)
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    if not ray.is_initialized():
        from rmsearch.process_env import training_env

        kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                  runtime_env={"env_vars": training_env()})
        try:
            if address:
                ray.init(address=address, **kw)
            else:
                ray.init(num_cpus=os.cpu_count(), **kw)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RMSearchError(f"--address {address}: cannot join the Ray cluster ({exc}). Start it with "
                                f"`ray start --head` (and `ray start --address=HEAD:6379` on other nodes), "
                                f"or omit --address for a local Ray.") from None
    cpus = int(ray.cluster_resources().get("CPU", 1))
    slots = max(1, min(workers or cpus, cpus))
    if gpus_per_job:
        slots = min(slots, gpu_slots(ray.nodes(), gpus_per_job))
    return ray, slots, max(1, cpus // slots)


def _has_ray_token() -> bool:
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(path)


def nbytes(task) -> int:
    """Bytes of array data a task holds (memory maps counted at full size: that is what pickling copies)."""
    arrays = [task.train.X, task.stop.X, task.val.source, task.test.source]
    seen, total = set(), 0
    for a in arrays:  # views of one array (train and early-stop rows, validation and test pools) count once
        key = (a.__array_interface__["data"][0], a.nbytes)
        if key not in seen:
            seen.add(key)
            total += a.nbytes
    return total


def memory_mapped(task) -> bool:
    """Whether each of the task's arrays is a memory-mapped file or a view of one (data read from a folder)."""
    from rmsearch.files import mapped_root

    return all(mapped_root(a)[1] is not None for a in (task.train.X, task.stop.X, task.val.source, task.test.source))


class MemberJobs:
    """Member jobs on Ray: at most one job per free slot's worth of members, each member trained once even when
    several trials want it; finished members go to the head cache. Each job asks Ray for `threads` CPUs and, where
    its head type trains on the GPU of `placement`, a GPU share (`Placement.job_options`)."""

    def __init__(self, ray, task_ref, slots: int, threads: int, store: MemberStore, state,
                 placement: Placement = Placement()):
        self.ray, self.task_ref, self.slots, self.threads = ray, task_ref, slots, threads
        self.store, self.state, self.placement = store, state, placement
        self.remote = ray.remote(train_members)
        self.jobs: dict = {}  # ObjectRef -> member keys
        self.inflight: dict[str, object] = {}  # member key -> ObjectRef
        self.progress = None

    @property
    def busy(self) -> int:
        return len(self.jobs)

    def submit(self, head: dict, seeds: dict[str, int], share: float = 1.0) -> None:
        """Train the members `seeds` (key -> member seed) of one head configuration that are neither cached nor
        in flight, split over the slots; on `share` of the training pairs (a `--halving` rung, keyed apart)."""
        missing = [(k, s) for k, s in seeds.items() if k not in self.store and k not in self.inflight]
        self.state.reused += len(seeds) - len(missing)
        chunk = max(1, math.ceil(len(missing) / self.slots))
        remote = self.remote.options(**self.placement.job_options(head, self.threads))
        device = self.placement.device_of(head)
        for i in range(0, len(missing), chunk):
            part = missing[i : i + chunk]
            ref = remote.remote(self.task_ref, head, tuple(s for _, s in part), self.threads, False, device, share)
            self.jobs[ref] = [k for k, _ in part]
            self.inflight.update({k: ref for k, _ in part})
            self.state.jobs += 1
            if self.progress:
                self.progress.job_submitted()

    def wait_one(self, timed: bool = True) -> list[tuple[list[str], str | None]]:
        """Wait for a job; cache its members. Returns [(its member keys, None or the error it raised)]. With
        `timed`, waiting and caching count as their own phases (not inside another timed phase)."""
        if not self.jobs:
            return []
        clock = self.state.timed if timed else (lambda _: nullcontext())
        with clock("waiting on jobs"):
            done, _ = self.ray.wait(list(self.jobs), num_returns=1)
        out = []
        for ref in done:
            keys = self.jobs.pop(ref)
            for k in keys:
                self.inflight.pop(k, None)
            if self.progress:
                self.progress.job_done()
            try:
                with clock("waiting on jobs"):
                    records = self.ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - reported to the trials that wanted these members
                out.append((keys, _reason(exc)))
                continue
            with clock("cache"):
                for k, r in zip(keys, records):
                    self.store.put(k, r)
            self.state.add_records(records)
            out.append((keys, None))
        return out

    def train(self, head: dict, seeds: dict[str, int]) -> list:
        """Train what is missing of `seeds` now and return every member's record, in the order given."""
        self.submit(head, seeds)
        while any(k in self.inflight for k in seeds):
            for keys, error in self.wait_one(timed=False):  # inside the final evaluation's own phase
                if error is not None and set(keys) & set(seeds):
                    raise RMSearchError(f"training {head['kind']} members failed: {error}")
        return [self.store.get(k) for k in seeds]


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}".strip().splitlines()[0][:500]
