"""The search driver: an Optuna study driven through ask/tell, member jobs on Ray, a head cache, TensorBoard.

Each asked trial suggests a point, which names an ensemble configuration; its members that the cache lacks
become Ray tasks (vectorized member groups). Several trials are in flight so every worker stays busy. When a
trial's members are all in, the driver aggregates their cached validation scores, computes the objective and
tells the study; test scores wait for the final evaluation, which scores its top trials' members only. Workers
return numbers in memory, never through files. The launch records its wall time per phase (`SearchState.phases`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rmsearch.data import Annotator, TaskConfig, load_data, make_task
from rmsearch.ensembles import EnsembleConfig
from rmsearch.errors import ConfigError, RMSearchError
from rmsearch.search._baselines import BASELINES
from rmsearch.search._final import final_evaluation
from rmsearch.search._jobs import TaskRecipe, train_members
from rmsearch.search._members import (
    Combination,
    absolute_spec,
    evaluate_members,
    mean_history,
)
from rmsearch.search._objectives import Objective, get_objective
from rmsearch.search._store import MemberStore, member_key
from rmsearch.search._tensorboard import (
    log_experiment,
    log_study,
    log_trial,
    trial_metric_tags,
)


@dataclass
class LaunchOptions:
    data: str = "synth"
    space: str = "default"
    trials: int = 20
    study: str = "rmsearch"
    runs: Path = Path("runs")
    storage: str | None = None
    """Optuna storage URL; default: sqlite:///RUNS/STUDY/study.db"""
    heartbeat: int = 10
    """RDB storages (SQLite, PostgreSQL, MySQL): seconds between the heartbeats the driver records for each trial
    it has in flight."""
    grace: int = 60
    """RDB storages: a RUNNING trial without a heartbeat for this many seconds is stale (its driver died, on any
    host); the driver that finds it (at start-up, and before asking trials) marks it FAIL and queues its
    configuration again. Every driver of a study needs a grace well above the heartbeat interval of the others."""
    address: str | None = None
    """Ray cluster address ('auto', 'HOST:PORT'); default: a local Ray sized to this machine."""
    workers: int | None = None
    """Most member jobs at once; default: every CPU Ray has."""
    objective: str | None = None
    seed: int = 0
    multi_objective: bool = False
    top: int = 3
    annotator: Annotator = field(default_factory=Annotator)
    """The simulated annotator that labels training pairs of gold data (pairing, pairs per prompt, quality)."""
    folds: int | None = None
    """Pair data: cross-validation folds for selection (see `TaskConfig.folds`; None picks by data size)."""
    baselines: tuple[str, ...] = ("seed-paper", "linear")
    """Fixed recipes the final evaluation trains (once; cached) and compares the chosen ensemble with."""
    select: bool = True
    """After the search, greedy selection over the members of all trials; the export is whichever of it and the
    best trial wins on validation."""
    stress: bool = False
    """Retrain the chosen configuration at several label-flip rates in the final evaluation (costs several times
    the configuration's own training)."""
    prune: bool = False
    """Prune a trial when its partial ensemble (the members in so far) is below the median of earlier trials
    at the same member count (Optuna's MedianPruner); its member jobs still finish and stay in the cache."""
    final: bool = True
    """Run the final robustness evaluation and export the best ensemble at the end."""
    progress: bool = True


@dataclass
class SearchState:
    trained: int = 0
    """Members trained by this launch (the head cache's misses)."""
    reused: int = 0
    """Members a trial took from the cache instead of training."""
    jobs: int = 0
    pruned: int = 0
    rss_mb: list = field(default_factory=list)
    """(trials told, driver resident memory in MiB) every 50 trials."""
    nodes: dict[str, int] = field(default_factory=dict)
    """Members trained per Ray node id."""
    train_seconds: float = 0.0
    """Sum of member-job wall time (training, then scoring), measured in the jobs."""
    fit_seconds: float = 0.0
    """The training part of `train_seconds`."""
    phases: dict[str, float] = field(default_factory=dict)
    """Driver wall time per phase: setup, ray start, optuna, evaluation, tensorboard, cache, waiting on jobs, final."""
    told: list[int] = field(default_factory=list)

    @contextmanager
    def timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - start

    def add_records(self, records) -> None:
        for r in records:
            self.trained += 1
            self.train_seconds += r.seconds
            self.fit_seconds += r.fit_seconds
            self.nodes[r.node] = self.nodes.get(r.node, 0) + 1


@dataclass
class _Pending:
    trial: object
    point: dict
    config: EnsembleConfig
    keys: list[str]
    waiting: set[str]


def task_key(data_fingerprint: str, task_config: TaskConfig) -> str:
    blob = json.dumps({"data": data_fingerprint, "task": asdict(task_config)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def open_storage(url: str | None, study_dir: Path) -> str:
    """The storage URL in force: `url`, or a SQLite file in the run folder."""
    url = url or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        raise ConfigError(
            f"--storage {url!r} is not a storage URL; use e.g. sqlite:///path/study.db, "
            f"postgresql://user:pass@host/db, journal:///path/study.log, or omit it for a SQLite file in the run folder."
        )
    return url


def storage_of(url: str, heartbeat: int | None = None, grace: int | None = None, on_stale=None):
    """What Optuna takes for `url`: `journal://PATH` as a journal file (safe for several drivers on one machine or
    a shared file system); an RDB URL as it is, or, given `heartbeat`, as an RDB storage with heartbeats every
    `heartbeat` s, trials without one for `grace` s stale, and `on_stale(study, trial)` called for each stale trial
    `optuna.storages.fail_stale_trials` marks FAIL."""
    if url.startswith("journal://"):
        import optuna

        path = url.removeprefix("journal://")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    if heartbeat is None:
        return url
    import inspect

    import optuna

    rdb = optuna.storages.RDBStorage
    callback = "heartbeat_stale_trial_callback"
    if callback not in inspect.signature(rdb).parameters:
        callback = "failed_trial_callback"  # its name before Optuna 4.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return rdb(url, heartbeat_interval=heartbeat, grace_period=grace, **{callback: on_stale})


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as exc:
        raise RMSearchError(f"run folder {folder} is not writable ({exc.strerror}); choose another --runs folder "
                            f"or free disk space.") from None


def _check_reachable(address: str) -> None:
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


def init_ray(address: str | None, workers: int | None):
    if address:
        _check_reachable(address)
    if address and "RAY_AUTH_MODE" not in os.environ and _has_ray_token():
        # `ray start` enables token authentication and writes the token locally; a client must ask for it
        # (Ray reads this when it is imported)
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    if not ray.is_initialized():
        from rmsearch.openmp import spin_env

        kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                  runtime_env={"env_vars": spin_env()})
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
    return ray, slots, max(1, cpus // slots)


_HOST = socket.gethostname()


def _nbytes(task) -> int:
    """Bytes of array data a task holds (memory maps counted at full size: that is what pickling copies)."""
    arrays = [task.train.X, task.stop.X, task.val.source, task.test.source]
    seen, total = set(), 0
    for a in arrays:  # views of one array (train and early-stop rows, validation and test pools) count once
        key = (a.__array_interface__["data"][0], a.nbytes)
        if key not in seen:
            seen.add(key)
            total += a.nbytes
    return total


def _rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def _has_ray_token() -> bool:
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(path)


class _Requeue:
    """The heartbeat-stale trial callback: queue the configuration of a trial Optuna has just marked FAIL once
    more (`requeued_from` names the failed trial), and remember the failed trial's number."""

    def __init__(self):
        self.numbers: list[int] = []

    def __call__(self, study, trial) -> None:
        study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number}, skip_if_exists=False)
        self.numbers.append(trial.number)


class _Heartbeats:
    """One thread recording a heartbeat every `interval` s for each trial the driver has in flight (`trials()`
    gives their ids). Optuna's optimize() runs such a thread per trial; with ask/tell the driver runs its own."""

    def __init__(self, storage, interval: float, trials):
        self.storage, self.interval, self.trials = storage, interval, trials
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rmsearch-heartbeats", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            for trial_id in self.trials():
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a storage hiccup: the next beat tries again (grace > interval)
                    self.errors += 1


class MemberJobs:
    """Member jobs on Ray: at most one job per free slot's worth of members, each member trained once even when
    several trials want it; finished members go to the head cache."""

    def __init__(self, ray, task_ref, slots: int, threads: int, store: MemberStore, state: SearchState):

        self.ray, self.task_ref, self.slots, self.threads = ray, task_ref, slots, threads
        self.store, self.state = store, state
        self.remote = ray.remote(num_cpus=threads, max_retries=3)(train_members)
        self.jobs: dict = {}  # ObjectRef -> member keys
        self.inflight: dict[str, object] = {}  # member key -> ObjectRef
        self.progress = None

    @property
    def busy(self) -> int:
        return len(self.jobs)

    def submit(self, head: dict, seeds: dict[str, int]) -> None:
        """Train the members `seeds` (key -> member seed) of one head configuration that are neither cached nor
        in flight, split over the slots."""
        missing = [(k, s) for k, s in seeds.items() if k not in self.store and k not in self.inflight]
        self.state.reused += len(seeds) - len(missing)
        chunk = max(1, math.ceil(len(missing) / self.slots))
        for i in range(0, len(missing), chunk):
            part = missing[i : i + chunk]
            ref = self.remote.remote(self.task_ref, head, tuple(s for _, s in part), self.threads, False)
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


class Search:
    """One launch: `Search(options).run()`. Fields hold what a caller (CLI, tests) reads afterwards."""

    def __init__(self, options: LaunchOptions):
        self.options = options
        self.state = SearchState()
        self._pending: list[_Pending] = []

    # ---- set-up: every input is checked before any work starts ------------------------------------------
    def prepare(self):
        import optuna

        from rmsearch.spaces import load_space

        o = self.options
        if o.trials < 0:
            raise ConfigError(f"--trials {o.trials} must be >= 0.")
        if o.top < 1:
            raise ConfigError(f"--top {o.top} must be at least 1 (the number of best trials in the final report).")
        if o.workers is not None and o.workers < 1:
            raise ConfigError(f"--workers {o.workers} must be at least 1.")
        if o.heartbeat < 1 or o.grace <= o.heartbeat:
            raise ConfigError(f"--heartbeat {o.heartbeat} / --grace {o.grace}: the heartbeat interval must be at least "
                              f"1 s and the grace period longer than it (e.g. --heartbeat 10 --grace 60).")
        unknown = sorted(set(o.baselines) - set(BASELINES))
        if unknown:
            raise ConfigError(f"--baselines {','.join(unknown)}: unknown; choose from {', '.join(BASELINES)} or none.")
        if o.address:
            _check_reachable(o.address)
        self.space = load_space(o.space)
        self.data = load_data(o.data, seed=o.seed)
        self.objective: Objective = get_objective(o.objective, self.data.kind)
        self.study_dir = Path(o.runs) / o.study
        self.task_config = TaskConfig(annotator=o.annotator, seed=o.seed, folds=o.folds)
        self.task = make_task(self.data, self.task_config)
        self.storage = open_storage(o.storage, self.study_dir)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        existing = self._existing_trials() if o.storage else None  # a bad database fails before any folder exists
        if existing is None and not (self.study_dir / "study.db").exists():
            existing = 0
        if o.trials == 0 and existing == 0:
            raise ConfigError(f"study {o.study!r} has no trials yet and --trials 0 adds none; nothing to do. Pass "
                              f"--trials N (e.g. 20).")
        check_writable(self.study_dir)
        if existing is None:
            existing = self._existing_trials()
        self.task_key = task_key(self.data.fingerprint, self.task_config)
        self.store = MemberStore(self.study_dir / "members")
        self.tb_dir = self.study_dir / "tb"
        directions = [self.objective.direction] + (["minimize"] if o.multi_objective else [])
        sampler_seed = o.seed + 7919 * existing
        sampler = (optuna.samplers.NSGAIISampler(seed=sampler_seed) if o.multi_objective
                   else optuna.samplers.TPESampler(seed=sampler_seed, constant_liar=True, n_startup_trials=8))
        try:
            pruner = optuna.pruners.MedianPruner(n_startup_trials=5) if o.prune else optuna.pruners.NopPruner()
            self._stale = _Requeue()
            storage = storage_of(self.storage, o.heartbeat, o.grace, self._stale)
            self._beating = isinstance(storage, optuna.storages.RDBStorage)  # journal files have no heartbeats
            self._next_stale_check = 0.0
            self.study = optuna.create_study(study_name=o.study, storage=storage, load_if_exists=True,
                                             directions=directions, sampler=sampler, pruner=pruner)
        except ValueError as exc:
            raise ConfigError(f"study {o.study!r} in {self.storage}: {exc}") from None
        if [d.name.lower() for d in self.study.directions] != directions:
            raise ConfigError(f"study {o.study!r} exists with directions {[d.name.lower() for d in self.study.directions]}, "
                              f"not {directions}; use another --study name or the same --objective/--multi-objective.")
        self._check_same_task()
        self.requeued = self._recover_stale_trials()
        if not self.study.trials:  # a new study starts from the space's known-good points
            for start in self.space.starts:
                self.study.enqueue_trial(self.space.enqueue_params(start), user_attrs={"start": True})
        self.study.set_user_attr("data", {"spec": str(o.data), "name": self.data.name, "kind": self.data.kind,
                                          "fingerprint": self.data.fingerprint, "dim": self.data.dim})
        self.study.set_user_attr("task", {"key": self.task_key, "config": asdict(self.task_config),
                                          "label_error_rate": self.task.label_error, "record": self.task.record})
        self.study.set_user_attr("objective", self.objective.name)
        self.study.set_user_attr("space", o.space)
        return self

    def _check_same_task(self) -> None:
        """A study holds trials of one task: relaunching it on other data, or with another annotator, split or
        seed, would rank trials of different tasks together."""
        data = self.study.user_attrs.get("data")
        if data and data.get("fingerprint") != self.data.fingerprint:
            raise ConfigError(
                f"study {self.options.study!r} was run on data {data.get('spec')!r} (fingerprint "
                f"{data.get('fingerprint')}), not on --data {self.options.data!r} (fingerprint {self.data.fingerprint}); "
                f"use another --study name for other data, or the study's own --data.")
        task = self.study.user_attrs.get("task")
        if data and task and task.get("key") != self.task_key:
            raise ConfigError(
                f"study {self.options.study!r} was run with task {task.get('config')}, not "
                f"{asdict(self.task_config)}; relaunch it with the same --seed, --quality/--flip-rate, --pairing, "
                f"--pairs-per-prompt and --folds, or use another --study name.")

    def _recover_stale_trials(self) -> list[int]:
        """Trials left RUNNING by a driver that no longer runs: mark them FAIL and queue their configurations
        again, so a relaunch after a killed driver loses and duplicates nothing. RDB storages: trials whose
        heartbeat is older than the grace period, of drivers on any host. Journal files (no heartbeats): trials of
        a dead driver process on this host; a RUNNING trial of a live driver, or of one on another host, is left
        alone there."""
        import optuna

        requeued = self._fail_stale_heartbeats() if self._beating else []
        # also where there are heartbeats: a driver killed between asking for a trial and its first heartbeat
        # leaves a trial no heartbeat check ever finds; on this host its dead process says so
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            owner = t.user_attrs.get("driver")
            if not owner or owner.get("host") != _HOST or _pid_alive(owner.get("pid", -1)):
                continue
            reason = (f"no heartbeat from driver process {owner['pid']} on {owner['host']}: it died before its first "
                      f"heartbeat for the trial; configuration re-queued" if self._beating else
                      f"driver process {owner['pid']} on {owner['host']} died while the trial ran; configuration "
                      f"re-queued")
            optuna.trial.Trial(self.study, t._trial_id).set_user_attr("fail_reason", reason)
            self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            self.study.enqueue_trial(t.params, user_attrs={"requeued_from": t.number}, skip_if_exists=False)
            requeued.append(t.number)
        return requeued

    def _fail_stale_heartbeats(self) -> list[int]:
        """RDB storages: `optuna.storages.fail_stale_trials` marks the trials without a heartbeat for the grace
        period FAIL and `_Requeue` queues their configurations again; returns the numbers of those this driver
        failed (another driver may fail some first)."""
        import optuna

        storage = self.study._storage
        for trial_id in storage._get_stale_trial_ids(self.study._study_id):
            owner = storage.get_trial(trial_id).user_attrs.get("driver") or {}
            reason = (f"no heartbeat from driver process {owner.get('pid', '?')} on {owner.get('host', '?')} for over "
                      f"{self.options.grace} s: it died (or lost the storage) while the trial ran; configuration "
                      f"re-queued")
            try:  # before the FAIL: a finished trial takes no attributes
                storage.set_trial_user_attr(trial_id, "fail_reason", reason)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another driver failed it first
        before = len(self._stale.numbers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
        return self._stale.numbers[before:]

    def _check_stale(self) -> None:
        """RDB storages, before asking (at most once per heartbeat interval): fail the trials of drivers that
        stopped beating, so that their configurations are what this driver asks next."""
        now = time.monotonic()
        if self._beating and now >= self._next_stale_check:
            self._next_stale_check = now + self.options.heartbeat
            self.requeued += self._fail_stale_heartbeats()

    def _heartbeats(self):
        """The heartbeat thread for the trials in flight (`_loop`'s pending trials); none for journal files."""
        if not self._beating:
            return nullcontext()
        return _Heartbeats(self.study._storage, self.options.heartbeat,
                           lambda: [p.trial._trial_id for p in list(self._pending)])

    def _existing_trials(self) -> int:
        import optuna

        url = self.storage
        try:
            return len(optuna.load_study(study_name=self.options.study, storage=storage_of(url)).trials)
        except KeyError:
            return 0
        except Exception as exc:  # bad URL, unreachable database: say so before anything else
            raise ConfigError(f"--storage {url}: cannot open it ({type(exc).__name__}: {exc}).") from None

    # ---- the loop -----------------------------------------------------------------------------------------
    def run(self):
        t0 = time.perf_counter()
        timed = self.state.timed
        with timed("setup"):
            self.prepare()
            log_experiment(self.tb_dir, self.space, trial_metric_tags(self.task.val, self.options.prune))
        with timed("ray start"):
            ray, self.slots, self.threads = init_ray(self.options.address, self.options.workers)
            self.jobs = MemberJobs(ray, self._ship_task(ray), self.slots, self.threads, self.store, self.state)
        rss_start = _rss_mb()  # after Ray and the data are up: what grows from here grows with trials
        with _Progress(self.options.trials, self.options.progress) as progress, self._heartbeats():
            self.jobs.progress = progress
            self._loop(progress)
        self.search_seconds = time.perf_counter() - t0
        self.study.set_user_attr("last_launch", {"trained": self.state.trained, "reused": self.state.reused,
                                                 "jobs": self.state.jobs, "seconds": self.search_seconds,
                                                 "slots": self.slots, "job_seconds": self.state.train_seconds,
                                                 "fit_seconds": self.state.fit_seconds, "phases": self.state.phases,
                                                 "members_per_node": self.state.nodes,
                                                 "data_path": self.data_path,
                                                 "driver_rss_mb": [rss_start, _rss_mb()],
                                                 "driver_rss_mb_every_50_trials": self.state.rss_mb})
        self.final = None
        if self.options.final and self.completed():

            with timed("final evaluation"):
                self.final = final_evaluation(self)
        self.total_seconds = time.perf_counter() - t0
        return self

    def _loop(self, progress) -> None:
        """Ask trials while member-job slots are free; as jobs finish, cache their members and tell every trial
        whose members are all in. Ctrl-C fails the trials in flight with that reason and queues them again."""
        from optuna.exceptions import UpdateFinishedTrialError

        pending: list[_Pending] = []
        self._pending = pending  # the heartbeat thread beats for these
        asked = 0
        try:
            while asked < self.options.trials or pending:
                while asked < self.options.trials and self.jobs.busy < self.slots:
                    asked += 1
                    p = self._ask()
                    if p.waiting:
                        pending.append(p)
                    else:
                        self._finish(p)
                        progress.trial_done()
                for keys, error in self.jobs.wait_one():
                    for p in [p for p in pending if p.waiting & set(keys)]:
                        p.waiting -= set(keys)
                        try:
                            if error is not None:  # the job raised: its trials fail, the search goes on
                                self._fail(p, error)
                            elif not p.waiting:
                                self._finish(p)
                            elif not self._prune(p):
                                continue
                        except UpdateFinishedTrialError:
                            pass  # another driver found its heartbeat stale, failed it and queued it again
                        pending.remove(p)
                        progress.trial_done()
        except KeyboardInterrupt:
            for p in pending:
                self._fail(p, "the driver was interrupted (Ctrl-C) while the trial ran; its configuration is "
                              "queued again for the next launch", requeue=True)
            raise

    def _ask(self) -> _Pending:
        """Ask the study for a trial, record its configuration and members, and submit the members it lacks."""
        with self.state.timed("optuna"):
            self._check_stale()
            with warnings.catch_warnings():  # the driver beats for its trials itself (`_Heartbeats`)
                warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
                trial = self.study.ask()
            if self._beating:  # at once: a trial without any heartbeat is never found stale
                self.study._storage.record_heartbeat(trial._trial_id)
            trial.set_user_attr("driver", {"host": _HOST, "pid": os.getpid()})
            point = self.space.suggest(trial)
            config = EnsembleConfig.from_point(point)
            keys = self.member_keys(config)
            trial.set_user_attr("members", keys)
            trial.set_user_attr("config", config.to_point())
        self.jobs.submit(config.head.to_dict(), dict(zip(keys, config.member_seeds)))
        return _Pending(trial, point, config, keys, {k for k in keys if k not in self.store})

    def member_keys(self, config: EnsembleConfig) -> list[str]:
        head = config.head.to_dict()
        return [member_key(self.task_key, head, s) for s in config.member_seeds]

    def _ship_task(self, ray):
        """The task for member jobs: in the object store once (every job reads it from there), or, when it would
        take more than half the store, a recipe each worker rebuilds from memory-mapped files."""

        size = _nbytes(self.task)
        store = ray.available_resources().get("object_store_memory", float("inf"))
        self.data_path = "object store"
        if size > 0.5 * store:
            self.data_path = f"per-node memory maps ({size / 2**20:.0f} MiB > half the {store / 2**20:.0f} MiB object store)"
            return TaskRecipe(absolute_spec(str(self.options.data)), self.task_config)
        return ray.put(self.task)

    def completed(self):
        import optuna

        return [t for t in self.study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]

    def _finish(self, p: _Pending) -> None:

        records = [self.store.get(k) for k in p.keys]
        if not all(np.isfinite(r.val_scores).all() and np.isfinite(r.stats).all() for r in records):
            return self._fail(p, "member scores are not finite (NaN/inf): a member diverged; lower its learning rate")
        with self.state.timed("evaluation"):
            ev = evaluate_members(self.task, Combination.of(p.config, records), objective=self.objective)["val"]
        m = ev["metrics"]
        value = float(m["objective"])
        cost = int(sum(r.parameters for r in records))
        with self.state.timed("optuna"):
            p.trial.set_user_attr("val_metrics", m)
            p.trial.set_user_attr("cost_parameters", cost)
        if not np.isfinite(value):
            return self._fail(p, f"objective {self.objective.name} is not finite ({value}); a member diverged")
        values = [value, cost] if self.options.multi_objective else value
        with self.state.timed("optuna"):
            self.study.tell(p.trial, values)
        self.state.told.append(p.trial.number)
        if len(self.state.told) % 50 == 0:
            self.state.rss_mb.append((len(self.state.told), _rss_mb()))
        metrics = {f"ensemble/{k}": float(v) for k, v in m.items()}
        metrics.update({"ensemble/objective": value, "ensemble/members": len(records), "ensemble/parameters": cost})
        with self.state.timed("tensorboard"):
            log_trial(self.tb_dir, p.trial.number, hparams=p.point, metrics=metrics, history=mean_history(records),
                      curve=ev["curve"], state="COMPLETE")
            log_study(self.tb_dir, p.trial.number, value, self._best_value())

    def _prune(self, p: _Pending) -> bool:
        """Report the partial ensemble (members in so far) and prune the trial if the pruner says so. Its
        remaining member jobs still finish and land in the cache for later trials."""
        import optuna

        if self.options.multi_objective or not self.options.prune:
            return False
        have = [self.store.get(k) for k in p.keys if k not in p.waiting]
        if not all(np.isfinite(r.val_scores).all() for r in have):
            return False
        partial = evaluate_members(self.task, Combination.of(p.config, have), objective=self.objective)
        partial = partial["val"]["metrics"]["objective"]
        p.trial.report(float(partial), step=len(have))
        if not p.trial.should_prune():
            return False
        p.trial.set_user_attr("pruned_at_members", len(have))
        self.study.tell(p.trial, state=optuna.trial.TrialState.PRUNED)
        self.state.pruned += 1

        log_trial(self.tb_dir, p.trial.number, hparams=p.point, metrics={"ensemble/partial_objective": float(partial)},
                  history=mean_history(have), curve=None, state="PRUNED",
                  reason=f"partial ensemble of {len(have)} of {len(p.keys)} members below the median")
        return True

    def _fail(self, p: _Pending, reason: str, requeue: bool = False) -> None:
        import optuna


        p.trial.set_user_attr("fail_reason", reason)
        self.study.tell(p.trial, state=optuna.trial.TrialState.FAIL)
        if requeue:
            self.study.enqueue_trial(p.trial.params, user_attrs={"requeued_from": p.trial.number}, skip_if_exists=False)
        log_trial(self.tb_dir, p.trial.number, hparams=p.point, metrics={}, history=[], curve=None,
                  state="FAIL", reason=reason)

    def _best_value(self):
        if self.options.multi_objective:
            return None
        try:
            return float(self.study.best_value)
        except ValueError:
            return None


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}".strip().splitlines()[0][:500]


class _Progress:
    """Trials and member jobs as two progress bars (rich)."""

    def __init__(self, trials: int, enabled: bool):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            disable=not enabled)
        self.trials = self.bar.add_task("trials", total=trials)
        self.jobs = self.bar.add_task("member jobs", total=0)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def job_submitted(self):
        self.bar.update(self.jobs, total=self.bar.tasks[self.jobs].total + 1)

    def job_done(self):
        self.bar.advance(self.jobs)

    def trial_done(self):
        self.bar.advance(self.trials)
