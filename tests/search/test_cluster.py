"""A search joining a Ray cluster of two nodes started with `ray start` on 127.0.0.1, through the CLI."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.search.conftest import SMALL, TINY_SPACE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_launch_with_address_joins_cluster(tmp_path):
    ray_bin = Path(sys.executable).with_name("ray")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths have a length limit
    # `ray start` turns on token authentication; clients on this machine read the token it writes
    token_env = {**os.environ, "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=token_env,
    )
    worker = None
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            status = subprocess.run([str(ray_bin), "status", f"--address=127.0.0.1:{port}"], capture_output=True, text=True, env=token_env)
            if status.returncode == 0:
                break
            assert head.poll() is None, head.stdout.read()
            time.sleep(1)
        else:
            pytest.fail("the Ray head did not come up in 90 s")
        worker = subprocess.Popen(
            [str(ray_bin), "start", "--block", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
             "--num-cpus=1", "--disable-usage-stats"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=token_env,
        )
        while time.time() < deadline + 60:
            status = subprocess.run([str(ray_bin), "status", f"--address=127.0.0.1:{port}"], capture_output=True,
                                    text=True, env=token_env)
            if status.stdout.count("node_") >= 2:
                break
            assert worker.poll() is None, worker.stdout.read()
            time.sleep(1)
        else:
            pytest.fail(f"the second Ray node did not join: {status.stdout}")
        space = tmp_path / "tiny.yaml"
        space.write_text(TINY_SPACE)
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
        r = subprocess.run(
            [sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space), "--trials", "4",
             "--study", "c", "--runs", str(tmp_path / "runs"), "--address", f"127.0.0.1:{port}", "--no-final"],
            capture_output=True, text=True, env=env, timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "4 trials in study 'c' (4 complete)" in r.stdout
        attrs = json.loads(subprocess.run(
            [sys.executable, "-c", "import optuna, json; s = optuna.load_study(study_name='c', storage="
             f"'sqlite:///{tmp_path / 'runs' / 'c' / 'study.db'}'); print(json.dumps(s.user_attrs['last_launch']))"],
            capture_output=True, text=True, check=True).stdout)
        assert attrs["trained"] >= 1
        nodes = attrs["members_per_node"]
        assert len(nodes) == 2 and all(n >= 1 for n in nodes.values()), nodes  # member jobs ran on both nodes
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        head.terminate()
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)


def test_unreachable_address_exits_2(tmp_path):
    port = free_port()
    r = subprocess.run(
        [sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--trials", "1", "--study", "u",
         "--runs", str(tmp_path / "runs"), "--address", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=180,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"--address 127.0.0.1:{port}: cannot join the Ray cluster" in r.stderr


@pytest.mark.slow
def test_data_larger_than_the_object_store_uses_per_node_memory_maps(tmp_path):
    """A cluster with a deliberately small object store (80 MB) and a dataset of about 100 MB."""
    ray_bin = Path(sys.executable).with_name("ray")
    data = tmp_path / "big"
    r = subprocess.run([sys.executable, "-m", "rmsearch", "data", "synth", "--out", str(data), "--dim", "128",
                        "--train-prompts", "300", "--test-prompts", "400", "--test-responses", "500"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rayo", dir="/tmp")
    token_env = {**os.environ, "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
         "--object-store-memory=80000000", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=token_env,
    )
    try:
        deadline = time.time() + 90
        while subprocess.run([str(ray_bin), "status", f"--address=127.0.0.1:{port}"], capture_output=True,
                             env=token_env).returncode != 0:
            assert time.time() < deadline and head.poll() is None, "the Ray head did not come up"
            time.sleep(1)
        space = tmp_path / "s.yaml"
        space.write_text("head: linear\nmembers: {int: [1, 2]}\naggregation: mean\nlinear.epochs: 2\n")
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
        r = subprocess.run(
            [sys.executable, "-m", "rmsearch", "launch", "--data", str(data), "--space", str(space), "--trials", "3",
             "--study", "big", "--runs", str(tmp_path / "runs"), "--address", f"127.0.0.1:{port}", "--top", "1"],
            capture_output=True, text=True, env=env, timeout=600,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        attrs = json.loads(subprocess.run(
            [sys.executable, "-c", "import optuna, json; s = optuna.load_study(study_name='big', storage="
             f"'sqlite:///{tmp_path / 'runs' / 'big' / 'study.db'}'); print(json.dumps(s.user_attrs['last_launch']))"],
            capture_output=True, text=True, check=True).stdout)
        assert attrs["data_path"].startswith("per-node memory maps"), attrs
        assert "3 trials in study 'big' (3 complete)" in r.stdout
    finally:
        head.terminate()
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)
