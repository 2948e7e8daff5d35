"""Faults caused for real: a driver killed with SIGKILL mid-search, an unwritable run folder."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

from tests.search.conftest import SMALL

SLOW_SPACE = """
head: mlp
members: {int: [2, 4]}
aggregation: {categorical: [mean, min, uwo]}
mlp.hidden: [64, 32]
mlp.epochs: {int: [20, 40]}
mlp.patience: 0
"""


def _launch(tmp_path, trials, space, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space), "--trials", str(trials),
         "--study", "k", "--runs", str(tmp_path / "runs"), "--no-final", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _trial_states(db) -> list[str]:
    """The trials' states, read from the SQLite file without writing to it: opening it through Optuna while the
    driver creates it would race the driver's schema creation (both insert the schema version)."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return [state for (state,) in con.execute("SELECT state FROM trials")]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet
        return []


def _journal_states(path) -> list[str]:
    try:
        return [t.state.name for t in optuna.load_study(study_name="k", storage=_journal(path)).trials]
    except KeyError:  # no study yet
        return []


def _journal(path):
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["sqlite-heartbeat", "journal-pid"])
def test_killed_driver_relaunch_resumes_without_loss_or_duplicates(tmp_path, storage):
    """SQLite (an RDB storage): the relaunch finds the dead driver's trials by their heartbeats, older than the
    grace period; a journal file has no heartbeats: the relaunch finds them by their driver's host and pid."""
    space = tmp_path / "slow.yaml"
    space.write_text(SLOW_SPACE)
    if storage == "sqlite-heartbeat":
        db = tmp_path / "runs" / "k" / "study.db"
        url, extra, states_of = f"sqlite:///{db}", ("--heartbeat", "1", "--grace", "3"), lambda: _trial_states(db)
        reason = "no heartbeat from driver process"
    else:
        log = tmp_path / "study.log"
        url, extra, states_of = _journal(log), ("--storage", f"journal://{log}"), lambda: _journal_states(log)
        reason = "died while the trial ran"
    proc = _launch(tmp_path, 30, space, *extra)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        time.sleep(1)
        states = states_of()
        if states.count("COMPLETE") >= 2 and "RUNNING" in states:
            break
    assert proc.poll() is None, proc.stdout.read()
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    study = optuna.load_study(study_name="k", storage=url)
    before = {t.number: t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    stale = {t.number: t.params for t in study.trials if t.state == optuna.trial.TrialState.RUNNING}
    assert before and stale
    if storage == "sqlite-heartbeat":
        time.sleep(4)  # the grace period (3 s) passes: the relaunch finds the trials stale as it starts

    r = subprocess.run(
        [sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space), "--trials", str(len(stale)),
         "--study", "k", "--runs", str(tmp_path / "runs"), "--no-final", *extra],
        capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    study = optuna.load_study(study_name="k", storage=url)
    after = {t.number: t for t in study.trials}
    for number, value in before.items():  # nothing completed is lost or changed
        assert after[number].state == optuna.trial.TrialState.COMPLETE and after[number].value == value
    for number, params in stale.items():  # stale trials failed with the reason, their configurations re-ran once
        assert after[number].state == optuna.trial.TrialState.FAIL
        assert reason in after[number].user_attrs["fail_reason"]
        reruns = [t for t in study.trials if t.user_attrs.get("requeued_from") == number]
        # the re-run fixes every parameter the stale trial had; a driver killed while suggesting leaves some unset,
        # and the re-run samples those
        assert len(reruns) == 1 and params.items() <= reruns[0].params.items()
        assert reruns[0].state == optuna.trial.TrialState.COMPLETE
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_unwritable_run_folder_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = subprocess.run([sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--trials", "1", "--study", "x",
                        "--runs", str(blocker)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert f"run folder {blocker / 'x'} is not writable" in r.stderr and "choose another --runs" in r.stderr


@pytest.mark.slow
def test_two_drivers_share_one_journal_study(tmp_path):
    journal = tmp_path / "shared.log"
    space = tmp_path / "tiny.yaml"
    from tests.search.conftest import TINY_SPACE

    space.write_text(TINY_SPACE)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space), "--trials", "4",
         "--study", "shared", "--runs", str(tmp_path / f"runs{i}"), "--storage", f"journal://{journal}",
         "--no-final", "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert len(trials) == 8 and sorted(t.number for t in trials) == list(range(8))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    owners = {t.user_attrs["driver"]["pid"] for t in trials}
    assert len(owners) == 2  # both drivers did work, each trial told once by the driver that asked it


def _training_workers(root: int) -> list[int]:
    """The Ray workers training members that descend from process `root` (the launch this test started, and the
    local Ray it started): never another process of the machine that has the same name."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines() if line.strip()]
    children: dict[int, list[int]] = {}
    for pid, ppid, *_ in rows:
        children.setdefault(int(ppid), []).append(int(pid))
    mine, todo = set(), [root]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo += [c for c in children.get(pid, []) if c not in mine]
    return [int(pid) for pid, _, *args in rows if int(pid) in mine and args and "ray::train_members" in args[0]]


@pytest.mark.slow
def test_killed_ray_worker_job_is_retried_and_search_completes(tmp_path):
    space = tmp_path / "slow.yaml"
    space.write_text(SLOW_SPACE)
    proc = _launch(tmp_path, 4, space)
    killed = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and killed is None:
        pids = _training_workers(proc.pid)
        if pids:
            time.sleep(0.5)  # let it get into training
            try:
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    assert killed, "no training worker was seen"
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    study = optuna.load_study(study_name="k", storage=f"sqlite:///{tmp_path / 'runs' / 'k' / 'study.db'}")
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert all(np.isfinite(t.value) for t in study.trials)


@pytest.mark.slow
def test_soak_200_trials_memory_stays_flat(tmp_path):
    space = tmp_path / "soak.yaml"
    space.write_text("head: mlp\nmembers: 1\naggregation: mean\nmlp.hidden: [4]\nmlp.epochs: 1\n"
                     "mlp.lr: {log: [1.0e-4, 1.0e-2]}\n")
    r = subprocess.run(
        [sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space), "--trials", "200",
         "--study", "soak", "--runs", str(tmp_path / "runs"), "--no-final"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="soak", storage=f"sqlite:///{tmp_path / 'runs' / 'soak' / 'study.db'}")
    assert len(study.trials) == 200 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    launch = study.user_attrs["last_launch"]
    start, end = launch["driver_rss_mb"]
    samples = dict(launch["driver_rss_mb_every_50_trials"])
    print(f"driver RSS: {start:.0f} MiB at start, {samples} every 50 trials, {end:.0f} MiB at the end")
    assert "driver memory" in r.stdout and sorted(samples) == [50, 100, 150, 200]
    # after warm-up (Ray's and SQLAlchemy's caches, the sampler switching to TPE) memory stays flat
    assert samples[200] - samples[100] < 40, samples
