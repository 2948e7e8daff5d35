"""Searches joining Ray clusters started with `ray start` on 127.0.0.1, through the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rmsearch.search._local_cluster import free_port, local_cluster
from tests.search.conftest import SMALL, TINY_SPACE

# what the launched driver sees: no Ray settings of ours, so it must find its own way in
CLIENT_ENV = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}


def last_launch(study_db: Path, study: str) -> dict:
    code = (f"import optuna, json; s = optuna.load_study(study_name={study!r}, storage='sqlite:///{study_db}'); "
            "print(json.dumps(s.user_attrs['last_launch']))")
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def launch(tmp_path, study, data, space, trials, port, *extra):
    return subprocess.run(
        [sys.executable, "-m", "rmsearch", "launch", "--data", str(data), "--space", str(space), "--trials", str(trials),
         "--study", study, "--runs", str(tmp_path / "runs"), "--address", f"127.0.0.1:{port}", *extra],
        capture_output=True, text=True, env=CLIENT_ENV, timeout=600,
    )


@pytest.mark.slow
def test_launch_with_address_joins_cluster(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    with local_cluster(nodes=2) as port:
        r = launch(tmp_path, "c", SMALL, space, 4, port, "--no-final")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 trials in study 'c' (4 complete)" in r.stdout
    attrs = last_launch(tmp_path / "runs" / "c" / "study.db", "c")
    assert attrs["trained"] >= 1
    nodes = attrs["members_per_node"]
    assert len(nodes) == 2 and all(n >= 1 for n in nodes.values()), nodes  # member jobs ran on both nodes


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
    data = tmp_path / "big"
    r = subprocess.run([sys.executable, "-m", "rmsearch", "data", "synth", "--out", str(data), "--dim", "128",
                        "--train-prompts", "300", "--test-prompts", "400", "--test-responses", "500"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    space = tmp_path / "s.yaml"
    space.write_text("head: linear\nmembers: {int: [1, 2]}\naggregation: mean\nlinear.epochs: 2\n")
    with local_cluster(cpus_per_node=2, head_args=("--object-store-memory=80000000",)) as port:
        r = launch(tmp_path, "big", data, space, 3, port, "--top", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 trials in study 'big' (3 complete)" in r.stdout
    attrs = last_launch(tmp_path / "runs" / "big" / "study.db", "big")
    assert attrs["data_path"].startswith("per-node memory maps"), attrs
