"""Optuna storages: the URL in force, the storage object for it (heartbeats for RDB storages), trials asked with
their driver recorded as they are created, and the trials a dead driver left RUNNING (found by heartbeat, on this
host by its dead process, or unclaimed past the grace period)."""

from __future__ import annotations

import os
import socket
import warnings
from datetime import datetime, timezone
from pathlib import Path

from rmsearch.errors import ConfigError
from rmsearch.search._periodic import Periodic

HOST = socket.gethostname()
"""This machine's name, recorded with each trial's driver process."""


def driver() -> dict:
    """This driver process, as each trial it asks records it (user attribute `driver`)."""
    return {"host": HOST, "pid": os.getpid()}


def ask(study):
    """`study.ask()`, with this driver recorded in the trial as it is created: a new trial is written with its
    `driver` attribute in one storage write, so a driver killed at any moment after leaves a trial a relaunch can
    tell is its. A queued trial (a configuration queued again) gets the attribute in the write after the one that
    takes it from the queue; a driver killed between the two leaves an unclaimed trial, which
    `recover_stale_trials` fails once the grace period has passed."""
    import optuna
    from optuna.trial import TrialState

    study._thread_local.cached_all_trials = None  # as study.ask(): the sampler sees every trial told so far
    trial_id = study._pop_waiting_trial_id()
    if trial_id is None:
        claimed = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={"driver": driver()})
        trial_id = study._storage.create_new_trial(study._study_id, template_trial=claimed)
    else:
        study._storage.set_trial_user_attr(trial_id, "driver", driver())
    return optuna.Trial(study, trial_id)


def open_storage(url: str | None, study_dir: Path) -> str:
    """The storage URL in force: `url`, or a SQLite file in the run folder."""
    url = url or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        raise ConfigError(
            f"--storage {url!r} is not a storage URL; use e.g. sqlite:///path/study.db, "
            f"postgresql://user:pass@host/db, journal:///path/study.log, or omit it for a SQLite file in the run "
            f"folder."
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


def _age(start: datetime | None) -> float:
    """Seconds since `start` (Optuna stores local times, or UTC ones with their zone); 0 where there is none."""
    if start is None:
        return 0.0
    now = datetime.now(timezone.utc) if start.tzinfo else datetime.now()
    return (now - start).total_seconds()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def queue_again(study, trial) -> None:
    """Queue `trial`'s configuration once more: `requeued_from` names it, and a space's start stays a start (it
    trains on all pairs under `--halving`). The configuration is what the trial suggested, and what it was queued
    with but had not suggested yet (a trial taken from the queue that failed at once)."""
    trial = study._storage.get_trial(trial._trial_id)  # a FrozenTrial, as stored, for a live Trial too
    start = {"start": True} if trial.user_attrs.get("start") else {}
    params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    study.enqueue_trial(params, user_attrs={"requeued_from": trial.number, **start}, skip_if_exists=False)


class Requeue:
    """The heartbeat-stale trial callback: queue the configuration of a trial Optuna has just marked FAIL once
    more (`requeued_from` names the failed trial), and remember the failed trial's number."""

    def __init__(self):
        self.numbers: list[int] = []

    def __call__(self, study, trial) -> None:
        queue_again(study, trial)
        self.numbers.append(trial.number)


class Heartbeats(Periodic):
    """One thread recording a heartbeat every `interval` s for each trial the driver has in flight (`trials()`
    gives their ids). Optuna's optimize() runs such a thread per trial; with ask/tell the driver runs its own."""

    thread_name = "rmsearch-heartbeats"

    def __init__(self, storage, interval: float, trials):
        super().__init__(interval)
        self.storage, self.trials = storage, trials
        self.errors = 0

    def tick(self) -> None:
        for trial_id in self.trials():
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception:  # noqa: BLE001 - a storage hiccup: the next beat tries again (grace > interval)
                self.errors += 1


def existing_trials(name: str, url: str) -> int:
    """How many trials study `name` has in storage `url` (0 where it does not exist yet); a bad URL or an
    unreachable database is a clear error before anything else happens."""
    import optuna

    try:
        return len(optuna.load_study(study_name=name, storage=storage_of(url)).trials)
    except KeyError:
        return 0
    except Exception as exc:
        raise ConfigError(f"--storage {url}: cannot open it ({type(exc).__name__}: {exc}).") from None


def recover_stale_trials(study, beating: bool, requeue: Requeue, grace: int) -> list[int]:
    """Trials left RUNNING by a driver that no longer runs: mark them FAIL and queue their configurations
    again, so a relaunch after a killed driver loses and duplicates nothing. RDB storages (`beating`): trials whose
    heartbeat is older than the grace period, of drivers on any host. Journal files (no heartbeats): trials of
    a dead driver process on this host; a RUNNING trial of a live driver, or of one on another host, is left
    alone there. Any storage: a trial no driver recorded itself in within the grace period. Returns the numbers of
    the trials failed."""
    import optuna

    requeued = fail_stale_heartbeats(study, requeue, grace) if beating else []
    # also where there are heartbeats: a driver killed between asking for a trial and its first heartbeat
    # leaves a trial no heartbeat check ever finds; on this host its dead process says so
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = t.user_attrs.get("driver")
        if not owner:  # taken from the queue by a driver killed before it could record itself
            if _age(t.datetime_start) <= grace:
                continue  # or a live driver between the two writes
            reason = (f"no driver recorded itself in the trial within {grace} s of its start: the driver died as "
                      f"it took the trial from the queue; configuration re-queued")
        elif owner.get("host") != HOST or _pid_alive(owner.get("pid", -1)):
            continue
        else:
            reason = (f"no heartbeat from driver process {owner['pid']} on {owner['host']}: it died before its "
                      f"first heartbeat for the trial; configuration re-queued" if beating else
                      f"driver process {owner['pid']} on {owner['host']} died while the trial ran; configuration "
                      f"re-queued")
        optuna.trial.Trial(study, t._trial_id).set_user_attr("fail_reason", reason)
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        queue_again(study, t)
        requeued.append(t.number)
    return requeued


def fail_stale_heartbeats(study, requeue: Requeue, grace: int) -> list[int]:
    """RDB storages: `optuna.storages.fail_stale_trials` marks the trials without a heartbeat for the grace
    period FAIL and `requeue` queues their configurations again; returns the numbers of those this driver
    failed (another driver may fail some first)."""
    import optuna

    storage = study._storage
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        owner = storage.get_trial(trial_id).user_attrs.get("driver") or {}
        reason = (f"no heartbeat from driver process {owner.get('pid', '?')} on {owner.get('host', '?')} for over "
                  f"{grace} s: it died (or lost the storage) while the trial ran; configuration re-queued")
        try:  # before the FAIL: a finished trial takes no attributes
            storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another driver failed it first
    before = len(requeue.numbers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return requeue.numbers[before:]
