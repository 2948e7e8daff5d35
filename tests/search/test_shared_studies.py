"""Several drivers on one RDB study: heartbeats find the trials of a dead driver on any host (SQLite file), and a
real PostgreSQL server serves a study two drivers share."""

import datetime
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import optuna
import pytest

from rmsearch.search import LaunchOptions, Search
from rmsearch.search._storage import HOST, ask, fail_stale_heartbeats
from tests.search.conftest import SMALL, TINY_SPACE
from tests.search.test_faults import SLOW_SPACE

HEARTBEAT, GRACE = 1, 3  # seconds; the launch defaults are 10 and 60


def _launch(storage, runs, study, trials, space, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space), "--trials", str(trials),
         "--study", study, "--runs", str(runs), "--storage", storage, "--heartbeat", str(HEARTBEAT),
         "--grace", str(GRACE), "--workers", "1", "--no-final", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_heartbeats_keep_live_trials_running_and_fail_stale_ones_once(tmp_path):
    """In one process, on a real SQLite study: the heartbeat thread keeps a trial in flight RUNNING well past the
    grace period; a trial whose driver stopped beating is marked FAIL with the reason and queued once more, and a
    second driver checking after that finds nothing left to fail."""
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    options = LaunchOptions(data=SMALL, space=str(space), trials=2, study="h", runs=tmp_path, heartbeat=HEARTBEAT,
                            grace=GRACE, final=False, progress=False)
    search = Search(options).prepare()
    storage = search.study._storage
    alive, dead = search.study.ask(), search.study.ask()
    for trial, pid in ((alive, os.getpid()), (dead, 999_999)):
        storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr("driver", {"host": "elsewhere", "pid": pid})
    dead.suggest_int("x", 0, 9)
    with search.launch.heartbeats(lambda: [alive._trial_id]) as beats:
        time.sleep(GRACE + 2.5)
        requeued = fail_stale_heartbeats(search.study, search.launch.requeue, GRACE)
    assert beats.errors == 0
    assert requeued == [dead.number]
    trials = {t.number: t for t in search.study.get_trials()}
    assert trials[alive.number].state == optuna.trial.TrialState.RUNNING
    failed = trials[dead.number]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith("no heartbeat from driver process 999999 on elsewhere for over "
                                                       f"{GRACE} s")
    again = [t for t in trials.values() if t.user_attrs.get("requeued_from") == dead.number]
    assert len(again) == 1 and again[0].state == optuna.trial.TrialState.WAITING
    assert again[0].system_attrs["fixed_params"] == {"x": failed.params["x"]}
    other = Search(options).prepare()  # another driver starting now: the stale trial is failed and queued already
    assert other.requeued == [] and len(other.study.get_trials()) == len(trials)


def test_a_new_trial_is_written_with_its_driver(tmp_path):
    """The storage write that creates a trial already names its driver, so no moment after it leaves a trial a
    relaunch cannot place: read back from the journal file, the create-trial record holds host and pid."""
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    journal = tmp_path / "study.log"
    search = Search(LaunchOptions(data=SMALL, space=str(space), trials=1, study="j", runs=tmp_path,
                                  storage=f"journal://{journal}", final=False, progress=False)).prepare()
    trial = ask(search.study)
    created = [r for r in map(json.loads, journal.read_text().splitlines()) if "distributions" in r]  # create-trial
    assert len(created) == 1 and trial.number == 0
    assert created[0]["user_attrs"] == {"driver": {"host": HOST, "pid": os.getpid()}}
    assert created[0]["state"] == optuna.trial.TrialState.RUNNING.value


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_queued_trial_no_driver_recorded_itself_in_is_failed_after_the_grace_period(tmp_path):
    """A driver killed between taking a queued configuration from the queue and recording itself in it leaves a
    RUNNING trial with no driver and no heartbeat (Optuna's own ask() leaves exactly that). A relaunch within the
    grace period leaves it alone (a live driver may be between the two writes); one after it fails the trial with
    the reason and queues its configuration once."""
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    options = LaunchOptions(data=SMALL, space=str(space), trials=1, study="q", runs=tmp_path, heartbeat=HEARTBEAT,
                            grace=GRACE, final=False, progress=False)
    study = Search(options).prepare().study
    study.enqueue_trial({"x": 3})
    taken = study.ask()
    assert "driver" not in taken.user_attrs
    assert Search(options).prepare().requeued == []
    time.sleep(GRACE + 0.5)
    relaunch = Search(options).prepare()
    assert relaunch.requeued == [taken.number]
    trials = relaunch.study.get_trials()
    failed = trials[taken.number]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith(f"no driver recorded itself in the trial within {GRACE} s")
    again = [t for t in trials if t.user_attrs.get("requeued_from") == taken.number]
    assert len(again) == 1 and again[0].state == optuna.trial.TrialState.WAITING
    assert again[0].system_attrs["fixed_params"] == {"x": 3}


def test_a_grace_period_not_above_the_heartbeat_is_refused_before_any_work(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--trials", "1", "--study", "x",
                        "--runs", str(tmp_path / "runs"), "--heartbeat", "5", "--grace", "5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "--heartbeat 5 / --grace 5" in r.stderr and "grace period longer than it" in r.stderr
    assert not (tmp_path / "runs").exists()


def _drivers(db) -> dict[int, tuple[str, int]]:
    """Trial number -> (state, driver pid), read from the SQLite file without writing to it."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute("SELECT t.number, t.state, a.value_json FROM trials t JOIN trial_user_attributes a "
                               "ON a.trial_id = t.trial_id WHERE a.key = 'driver'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:  # busy, or not created yet
        return {}
    return {number: (state, json.loads(value)["pid"]) for number, state, value in rows}


def _reruns_done(db, numbers) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute("SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = "
                               "t.trial_id WHERE a.key = 'requeued_from' AND t.state = 'COMPLETE'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return set(numbers) <= {json.loads(v) for (v,) in rows}


@pytest.mark.slow
def test_driver_killed_mid_trial_on_shared_sqlite_is_failed_and_rerun_by_the_other(tmp_path):
    space = tmp_path / "slow.yaml"
    space.write_text(SLOW_SPACE)
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    optuna.storages.RDBStorage(url)  # the schema first: two drivers creating it at once race on its version row
    a = _launch(url, tmp_path / "runs0", "shared", 40, space)
    b = _launch(url, tmp_path / "runs1", "shared", 40, space)
    try:
        deadline = time.time() + 300
        stale = []
        while time.time() < deadline and a.poll() is None and b.poll() is None:
            time.sleep(0.5)
            drivers = _drivers(db)
            stale = [n for n, (state, pid) in drivers.items() if pid == a.pid and state == "RUNNING"]
            if stale and any(pid == b.pid for _, pid in drivers.values()):
                break  # both drivers are asking trials, and the one to kill holds one
        assert stale and a.poll() is None and b.poll() is None, "the drivers did not both start"
        os.killpg(a.pid, signal.SIGKILL)  # the driver and the local Ray it started: no heartbeat from here on
        killed_at = datetime.datetime.now()
        a.wait()
        stale = [n for n, (state, pid) in _drivers(db).items() if pid == a.pid and state == "RUNNING"]
        assert stale
        while time.time() < deadline and b.poll() is None and not _reruns_done(db, stale):
            time.sleep(0.5)
        assert _reruns_done(db, stale), "the surviving driver did not re-run the dead driver's trial in time"
        if b.poll() is None:
            b.send_signal(signal.SIGINT)  # enough: stop the survivor (it fails its trials in flight and queues them)
        out, _ = b.communicate(timeout=180)
        # 130: interrupted. 0: it had run the study's last trials already (before the signal, or as it landed in the
        # interpreter's exit)
        assert b.returncode == 130 or (b.returncode == 0 and "trials in study 'shared'" in out), out
    finally:
        for p in (a, b):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    study = optuna.load_study(study_name="shared", storage=url)
    for number in stale:
        failed = study.trials[number]
        assert failed.state == optuna.trial.TrialState.FAIL
        assert failed.user_attrs["fail_reason"].startswith(f"no heartbeat from driver process {a.pid} on ")
        waited = (failed.datetime_complete - killed_at).total_seconds()
        # after the grace period from the last heartbeat (up to HEARTBEAT before the kill; SQLite clocks in whole
        # seconds), and not never
        assert GRACE - HEARTBEAT - 1 <= waited < 120, waited
        reruns = [t for t in study.trials if t.user_attrs.get("requeued_from") == number]
        assert len(reruns) == 1 and reruns[0].state == optuna.trial.TrialState.COMPLETE
        assert reruns[0].user_attrs["driver"]["pid"] == b.pid
        assert failed.params.items() <= reruns[0].params.items()
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


# ---- PostgreSQL ------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgresql_url():
    """A PostgreSQL server for the session: initdb into a temporary folder, on a free localhost port, as the
    'postgres' user when the tests run as root (postgres refuses root). Skips, saying why, only if it cannot start."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    initdb = binaries[-1] if binaries else shutil.which("initdb")
    if not initdb:
        pytest.skip("PostgreSQL is not installed (no initdb; Debian: apt-get install postgresql)")
    pg_ctl = os.path.join(os.path.dirname(initdb), "pg_ctl")
    as_user = []
    data = tempfile.mkdtemp(prefix="rmsearch-pg-")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    log = os.path.join(data, "server.log")

    def run(*cmd):
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    steps = [(initdb, "-D", data, "-U", "rmsearch", "-A", "trust", "-E", "UTF8", "--no-sync"),
             (pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o",
              f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off", "start")]
    for cmd in steps:
        r = run(*cmd)
        if r.returncode != 0:
            tail = open(log).read()[-2000:] if os.path.exists(log) else ""
            shutil.rmtree(data, ignore_errors=True)
            pytest.skip(f"the PostgreSQL server could not start: {os.path.basename(cmd[0])} exited {r.returncode}: "
                        f"{(r.stderr or r.stdout).strip()[-1000:]} {tail}")
    try:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user="rmsearch", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE rmsearch")
        con.close()
        yield f"postgresql://rmsearch@127.0.0.1:{port}/rmsearch"
    finally:
        run(pg_ctl, "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_two_drivers_share_one_postgresql_study(tmp_path, postgresql_url):
    import psycopg2

    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    optuna.storages.RDBStorage(postgresql_url)  # the schema first: two drivers creating it at once race
    procs = [_launch(postgresql_url, tmp_path / f"runs{i}", "team", 4, space) for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out
    trials = optuna.load_study(study_name="team", storage=postgresql_url).trials
    assert sorted(t.number for t in trials) == list(range(8))  # every trial told once: none lost, none doubled
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["driver"]["pid"] for t in trials} == {p.pid for p in procs}  # each driver did its share
    assert sum(t.user_attrs["driver"]["pid"] == procs[0].pid for t in trials) == 4
    with psycopg2.connect(postgresql_url) as con, con.cursor() as cur:  # the drivers beat for their trials there
        cur.execute("SELECT count(DISTINCT trial_id) FROM trial_heartbeats")
        assert cur.fetchone()[0] == 8
