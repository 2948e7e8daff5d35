"""The search driver: an Optuna study driven through ask/tell, member jobs on Ray, a head cache, TensorBoard.

Each asked trial suggests a point, which names an ensemble configuration; its members that the cache lacks
become Ray tasks (vectorized member groups). Several trials are in flight so every worker stays busy. When a
trial's members are all in, the driver aggregates their cached validation scores, computes the objective and
tells the study; test scores wait for the final evaluation, which scores its top trials' members only. Workers
return numbers in memory, never through files. The launch records its wall time per phase (`SearchState.phases`).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rmsearch.data import TaskConfig, check_not_degenerate, load_data, make_task
from rmsearch.ensembles import EnsembleConfig
from rmsearch.errors import ConfigError
from rmsearch.files import check_writable
from rmsearch.search._baselines import BASELINES
from rmsearch.search._final import final_evaluation
from rmsearch.search._identity import check_identity, check_study_name, identity
from rmsearch.search._jobs import TaskRecipe
from rmsearch.search._members import (
    Combination,
    absolute_spec,
    evaluate_members,
    mean_history,
)
from rmsearch.search._objectives import Objective, get_objective
from rmsearch.search._options import LaunchOptions, SearchState, check_annotator_applies, check_options
from rmsearch.search._progress import TrialProgress
from rmsearch.search._ray import MemberJobs, check_reachable, init_ray, nbytes
from rmsearch.interrupt import raise_on_sigterm, terminated
from rmsearch.search._storage import (
    HOST,
    Heartbeats,
    Requeue,
    existing_trials,
    fail_stale_heartbeats,
    open_storage,
    recover_stale_trials,
    storage_of,
)
from rmsearch.search._store import code_changes, code_identity
from rmsearch.search._study import StudyHandle
from rmsearch.search._tensorboard import (
    log_experiment,
    log_study,
    log_trial,
    trial_metric_tags,
)


@dataclass
class _Pending:
    trial: object
    point: dict
    config: EnsembleConfig
    keys: list[str]
    waiting: set[str]


def _rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


class Search:
    """One launch: `Search(options).run()`. Fields hold what a caller (CLI, tests) reads afterwards."""

    def __init__(self, options: LaunchOptions):
        self.options = options
        self.state = SearchState()
        self._pending: list[_Pending] = []

    # what the study handle holds, under the names a launch's callers read
    data = property(lambda self: self.handle.data)
    task = property(lambda self: self.handle.task)
    task_config = property(lambda self: self.handle.task_config)
    task_key = property(lambda self: self.handle.task_key)
    objective = property(lambda self: self.handle.objective)
    study = property(lambda self: self.handle.study)
    storage = property(lambda self: self.handle.storage)
    study_dir = property(lambda self: self.handle.study_dir)
    store = property(lambda self: self.handle.store)

    def completed(self) -> list:
        return self.handle.completed()

    def member_keys(self, config: EnsembleConfig) -> list[str]:
        return self.handle.member_keys(config)

    # ---- set-up: every input is checked before any work starts ------------------------------------------
    def prepare(self):
        """Check every input, open (or create) the study and record in it what it runs on; returns self."""
        from rmsearch.spaces import load_space

        o = self.options
        check_options(o)
        self.space = load_space(o.space)
        data = load_data(o.data, seed=o.seed)
        check_annotator_applies(o.annotator, data.kind, o.stress)
        check_not_degenerate(data)
        objective = get_objective(o.objective, data.kind)
        task_config = TaskConfig(annotator=o.annotator, seed=o.seed, folds=o.folds)
        task = make_task(data, task_config)
        study_dir = Path(o.runs) / o.study
        url = open_storage(o.storage, study_dir)
        study = self._open_study(url, study_dir, objective)
        self.handle = StudyHandle(o.study, url, study_dir, study, data, task_config, task, objective)
        self.tb_dir = study_dir / "tb"
        self.identity = identity(o, self.space, data, task_config, objective)
        check_identity(o.study, study.user_attrs, self.identity)  # before anything is written to the study
        self.requeued = recover_stale_trials(study, self._beating, self._stale, o.grace)
        self._other_code()
        self._record()
        return self

    def _other_code(self) -> None:
        """Members of this study trained by other code (another rmsearch, torch or scikit-learn, or edited training
        code) are keyed apart, so what needs them trains them again: say how many there are, and count them
        as they are retrained (`SearchState.retrained`)."""
        import sys

        now, stale, changes = code_identity(), set(), set()
        for t in self.completed():
            before = t.user_attrs.get("code")
            if before == now:
                continue
            changes.add(code_changes(before, now) if before else "trained before rmsearch recorded its code")
            for k in t.user_attrs.get("members", []):
                if k in self.store:
                    r = self.store.get(k)
                    stale.add((json.dumps(r.config, sort_keys=True), r.seed))
        self.state.stale = stale
        if stale:
            print(f"study {self.options.study!r}: {len(stale)} cached members were trained by other code "
                  f"({'; '.join(sorted(changes))}); trials and baselines that need them train them again "
                  f"(the launch says how many)", file=sys.stderr)

    def _open_study(self, url: str, study_dir: Path, objective: Objective):
        """The optuna study, created where it does not exist; nothing is written before the storage and the run
        folder are known to work."""
        import optuna

        o = self.options
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        existing = existing_trials(o.study, url) if o.storage else None  # a bad database fails before any folder exists
        if existing is None and not (study_dir / "study.db").exists():
            existing = 0
        if o.trials == 0 and existing == 0:
            raise ConfigError(f"study {o.study!r} has no trials yet and --trials 0 adds none; nothing to do. Pass "
                              f"--trials N (e.g. 20).")
        check_writable(study_dir)
        if existing is None:
            existing = existing_trials(o.study, url)
        directions = [objective.direction] + (["minimize"] if o.multi_objective else [])
        sampler_seed = o.seed + 7919 * existing
        sampler = (optuna.samplers.NSGAIISampler(seed=sampler_seed) if o.multi_objective
                   else optuna.samplers.TPESampler(seed=sampler_seed, constant_liar=True, n_startup_trials=8))
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5) if o.prune else optuna.pruners.NopPruner()
        self._stale = Requeue()
        try:
            storage = storage_of(url, o.heartbeat, o.grace, self._stale)
            study = optuna.create_study(study_name=o.study, storage=storage, load_if_exists=True,
                                        directions=directions, sampler=sampler, pruner=pruner)
        except ValueError as exc:
            raise ConfigError(f"study {o.study!r} in {url}: {exc}") from None
        self._beating = isinstance(storage, optuna.storages.RDBStorage)  # journal files have no heartbeats
        self._next_stale_check = 0.0
        if [d.name.lower() for d in study.directions] != directions:
            raise ConfigError(f"study {o.study!r} exists with directions {[d.name.lower() for d in study.directions]}, "
                              f"not {directions}; use another --study name or the same --objective/--multi-objective.")
        return study

    def _record(self) -> None:
        """A new study starts from the space's known-good points; every launch records what the study runs on."""
        o, study = self.options, self.study
        if not study.trials:
            for start in self.space.starts:
                study.enqueue_trial(self.space.enqueue_params(start), user_attrs={"start": True})
        study.set_user_attr("data", {"spec": str(o.data), "name": self.data.name, "kind": self.data.kind,
                                     "fingerprint": self.data.fingerprint, "dim": self.data.dim})
        study.set_user_attr("task", {"key": self.task_key, "config": asdict(self.task_config),
                                     "label_error_rate": self.task.label_error, "record": self.task.record})
        study.set_user_attr("identity", self.identity)
        study.set_user_attr("objective", self.objective.name)
        study.set_user_attr("space", o.space)
        study.set_user_attr("code", code_identity())

    def _check_stale(self) -> None:
        """RDB storages, before asking (at most once per heartbeat interval): fail the trials of drivers that
        stopped beating, so that their configurations are what this driver asks next."""
        now = time.monotonic()
        if self._beating and now >= self._next_stale_check:
            self._next_stale_check = now + self.options.heartbeat
            self.requeued += fail_stale_heartbeats(self.study, self._stale, self.options.grace)

    def _heartbeats(self):
        """The heartbeat thread for the trials in flight (`_loop`'s pending trials); none for journal files."""
        if not self._beating:
            return nullcontext()
        return Heartbeats(self.study._storage, self.options.heartbeat,
                           lambda: [p.trial._trial_id for p in list(self._pending)])

    # ---- the loop -----------------------------------------------------------------------------------------
    def run(self):
        t0 = time.perf_counter()
        timed = self.state.timed
        with timed("setup"):
            self.prepare()
            log_experiment(self.tb_dir, self.space, trial_metric_tags(self.task.val, self.options.prune))
        with timed("ray start"):
            ray, self.slots, self.threads = init_ray(self.options.address, self.options.workers)
            raise_on_sigterm()  # again: ray.init replaced the handler with one that exits at once
            self.jobs = MemberJobs(ray, self._ship_task(ray), self.slots, self.threads, self.store, self.state)
        rss_start = _rss_mb()  # after Ray and the data are up: what grows from here grows with trials
        o = self.options
        with TrialProgress(o.trials, o.progress, o.progress_interval) as progress, self._heartbeats():
            self.jobs.progress = progress
            self._loop(progress)
        self.search_seconds = time.perf_counter() - t0
        self.study.set_user_attr("last_launch", {"trained": self.state.trained, "reused": self.state.reused,
                                                 "retrained": self.state.retrained,
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
        except KeyboardInterrupt as exc:
            how = "SIGTERM" if terminated(exc) else "Ctrl-C"
            for p in pending:
                try:
                    self._fail(p, f"the driver was interrupted ({how}) while the trial ran; its configuration is "
                                  "queued again for the next launch", requeue=True)
                except UpdateFinishedTrialError:
                    pass  # told just before the interrupt (Ctrl-C during its logging), or failed by another driver
            raise

    def _ask(self) -> _Pending:
        """Ask the study for a trial, record its configuration and members, and submit the members it lacks."""
        with self.state.timed("optuna"):
            self._check_stale()
            with warnings.catch_warnings():  # the driver beats for its trials itself (`Heartbeats`)
                warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
                trial = self.study.ask()
            if self._beating:  # at once: a trial without any heartbeat is never found stale
                self.study._storage.record_heartbeat(trial._trial_id)
            trial.set_user_attr("driver", {"host": HOST, "pid": os.getpid()})
            point = self.space.suggest(trial)
            config = self.handle.resolve(EnsembleConfig.from_point(point))
            keys = self.member_keys(config)
            trial.set_user_attr("members", keys)
            trial.set_user_attr("code", code_identity())
            trial.set_user_attr("config", config.to_point())
        self.jobs.submit(config.head.to_dict(), dict(zip(keys, config.member_seeds)))
        return _Pending(trial, point, config, keys, {k for k in keys if k not in self.store})

    def _ship_task(self, ray):
        """The task for member jobs: in the object store once (every job reads it from there), or, when it would
        take more than half the store, a recipe each worker rebuilds from memory-mapped files."""

        size = nbytes(self.task)
        store = ray.available_resources().get("object_store_memory", float("inf"))
        self.data_path = "object store"
        if size > 0.5 * store:
            self.data_path = f"per-node memory maps ({size / 2**20:.0f} MiB > half the {store / 2**20:.0f} MiB object store)"
            return TaskRecipe(absolute_spec(str(self.options.data)), self.task_config)
        return ray.put(self.task)

    def _finish(self, p: _Pending) -> None:
        records = [self.store.get(k) for k in p.keys]
        if not all(np.isfinite(r.val_scores).all() and np.isfinite(r.stats).all() for r in records):
            return self._fail(p, "member scores are not finite (NaN/inf): a member diverged; lower its learning rate")
        with self.state.timed("evaluation"):
            try:  # what evaluating a trial raises fails that trial, with the reason, as a member job's error does
                ev = evaluate_members(self.task, Combination.of(p.config, records), objective=self.objective)["val"]
            except (ArithmeticError, ValueError) as exc:
                return self._fail(p, f"evaluating the trial failed: {type(exc).__name__}: {exc}")
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
        if not requeue:
            self.state.failures[reason] = self.state.failures.get(reason, 0) + 1
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


