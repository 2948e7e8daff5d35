"""The study a launch writes to: every input checked, storage and Optuna study opened (or created), the study's
identity checked, stale trials of dead drivers failed and queued again, and what the study runs on recorded.

`LaunchStudy.open(options)` does all of that before any work starts; the study, its task and head cache are in
its `handle` (`StudyHandle`, what a reader of a finished study gets too). During the launch it finds trials whose
driver stopped beating (`check_stale`) and keeps the heartbeats of the trials in flight (`heartbeats`).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rmsearch.data import TaskConfig, check_not_degenerate, load_data, make_task
from rmsearch.errors import ConfigError
from rmsearch.files import check_writable
from rmsearch.search._identity import check_identity, identity
from rmsearch.search._objectives import Objective, get_objective
from rmsearch.search._options import LaunchOptions, check_annotator_applies, check_options
from rmsearch.search._storage import (
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


@dataclass
class LaunchStudy:
    """An opened study of a launch, with the space it searches and the facts it was checked against."""

    options: LaunchOptions
    handle: StudyHandle
    space: object
    """The search space (`rmsearch.spaces.Space`)."""
    identity: dict
    """What the study runs on (`identity`), checked against what it recorded."""
    requeue: Requeue
    """Queues again the trials the storage finds stale."""
    beating: bool
    """Whether the storage keeps heartbeats (RDB storages; journal files have none)."""
    requeued: list[int] = field(default_factory=list)
    """Trials of stopped drivers this launch failed and queued again."""
    stale_members: set = field(default_factory=set)
    """(head config, seed) of the cached members other code trained (`other_code`)."""
    _next_stale_check: float = 0.0

    @property
    def study(self):
        return self.handle.study

    @property
    def tb_dir(self) -> Path:
        return self.handle.study_dir / "tb"

    @classmethod
    def open(cls, options: LaunchOptions) -> LaunchStudy:
        """Check every input, open (or create) the study and record in it what it runs on."""
        from rmsearch.spaces import load_space

        o = options
        check_options(o)
        space = load_space(o.space)
        data = load_data(o.data, seed=o.seed)
        check_annotator_applies(o.annotator, data.kind, o.stress)
        check_not_degenerate(data)
        objective = get_objective(o.objective, data.kind)
        task_config = TaskConfig(annotator=o.annotator, seed=o.seed, folds=o.folds)
        task = make_task(data, task_config)
        study_dir = Path(o.runs) / o.study
        url = open_storage(o.storage, study_dir)
        requeue = Requeue()
        study, beating = _open_optuna(o, url, study_dir, objective, requeue)
        handle = StudyHandle(o.study, url, study_dir, study, data, task_config, task, objective)
        launch = cls(o, handle, space, identity(o, space, data, task_config, objective), requeue, beating)
        check_identity(o.study, study.user_attrs, launch.identity)  # before anything is written to the study
        launch.requeued = recover_stale_trials(study, beating, requeue, o.grace)
        launch.stale_members = other_code(handle, o.study)
        launch.record()
        return launch

    def record(self) -> None:
        """A new study starts from the space's known-good points; every launch records what the study runs on."""
        o, study, h = self.options, self.study, self.handle
        if not study.trials:
            for start in self.space.starts:
                study.enqueue_trial(self.space.enqueue_params(start), user_attrs={"start": True})
        study.set_user_attr("data", {"spec": str(o.data), "name": h.data.name, "kind": h.data.kind,
                                     "fingerprint": h.data.fingerprint, "dim": h.data.dim})
        study.set_user_attr("task", {"key": h.task_key, "config": asdict(h.task_config),
                                     "label_error_rate": h.task.label_error, "record": h.task.record})
        study.set_user_attr("identity", self.identity)
        study.set_user_attr("objective", h.objective.name)
        study.set_user_attr("space", o.space)
        study.set_user_attr("code", code_identity())

    def check_stale(self) -> None:
        """RDB storages, before asking (at most once per heartbeat interval): fail the trials of drivers that
        stopped beating, so that their configurations are what this driver asks next."""
        now = time.monotonic()
        if self.beating and now >= self._next_stale_check:
            self._next_stale_check = now + self.options.heartbeat
            self.requeued += fail_stale_heartbeats(self.study, self.requeue, self.options.grace)

    def heartbeats(self, trial_ids):
        """The heartbeat thread for the trials `trial_ids()` names (those in flight); none for journal files."""
        if not self.beating:
            return nullcontext()
        return Heartbeats(self.study._storage, self.options.heartbeat, trial_ids)

    def record_heartbeat(self, trial) -> None:
        """At once for a new trial: a trial without any heartbeat is never found stale."""
        if self.beating:
            self.study._storage.record_heartbeat(trial._trial_id)


def _open_optuna(o: LaunchOptions, url: str, study_dir: Path, objective: Objective, requeue: Requeue):
    """The optuna study, created where it does not exist, and whether its storage keeps heartbeats; nothing is
    written before the storage and the run folder are known to work."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a bad database fails before any folder exists
    existing = existing_trials(o.study, url) if o.storage else None
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
    from rmsearch.search._halving_pruner import HeadwiseHalving

    pruner = (optuna.pruners.MedianPruner(n_startup_trials=5) if o.prune else HeadwiseHalving() if o.halving
              else optuna.pruners.NopPruner())
    try:
        storage = storage_of(url, o.heartbeat, o.grace, requeue)
        study = optuna.create_study(study_name=o.study, storage=storage, load_if_exists=True,
                                    directions=directions, sampler=sampler, pruner=pruner)
    except ValueError as exc:
        raise ConfigError(f"study {o.study!r} in {url}: {exc}") from None
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"study {o.study!r} exists with directions "
                          f"{[d.name.lower() for d in study.directions]}, not {directions}; use another --study name "
                          f"or the same --objective/--multi-objective.")
    return study, isinstance(storage, optuna.storages.RDBStorage)  # journal files have no heartbeats


def other_code(handle: StudyHandle, study: str) -> set:
    """Members of this study trained by other code (another rmsearch, torch or scikit-learn, or edited training
    code) are keyed apart, so what needs them trains them again: say how many there are, and return them
    ((head config, seed)) so the launch counts them as they are retrained (`SearchState.retrained`)."""
    now, stale, changes = code_identity(), set(), set()
    for t in handle.completed():
        before = t.user_attrs.get("code")
        if before == now:
            continue
        changes.add(code_changes(before, now) if before else "trained before rmsearch recorded its code")
        for k in t.user_attrs.get("members", []):
            if k in handle.store:
                r = handle.store.get(k)
                stale.add((json.dumps(r.config, sort_keys=True), r.seed))
    if stale:
        print(f"study {study!r}: {len(stale)} cached members were trained by other code "
              f"({'; '.join(sorted(changes))}); trials and baselines that need them train them again "
              f"(the launch says how many)", file=sys.stderr)
    return stale
