"""A Ray cluster of several nodes on 127.0.0.1, started with `ray start`: for trying `--address` on one machine,
and for the tests and benchmarks that exercise multi-node scheduling (jobs and objects really cross nodes)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
TOKEN_ENV = {**os.environ, "RAY_AUTH_MODE": "token"}
"""`ray start` turns on token authentication; clients on this machine read the token it writes."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_for_nodes(port: int, nodes: int, procs, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = subprocess.run([RAY, "status", f"--address=127.0.0.1:{port}"], capture_output=True, text=True,
                                env=TOKEN_ENV)
        if status.returncode == 0 and status.stdout.count("node_") >= nodes:
            return
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"`ray start` exited with {p.returncode}: {p.stdout.read()}")
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster did not reach {nodes} node(s) in {timeout:.0f} s")


@contextmanager
def local_cluster(nodes: int = 1, cpus_per_node: int = 1, head_args: tuple = ()):
    """A head (and nodes − 1 more nodes) on 127.0.0.1 with `ray start --block`; yields the head's port."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths have a length limit
    procs = [subprocess.Popen(
        [RAY, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         f"--num-cpus={cpus_per_node}", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats",
         *head_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=TOKEN_ENV)]
    try:
        _wait_for_nodes(port, 1, procs)
        for _ in range(nodes - 1):
            procs.append(subprocess.Popen(
                [RAY, "start", "--block", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                 f"--num-cpus={cpus_per_node}", "--disable-usage-stats"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=TOKEN_ENV))
        _wait_for_nodes(port, nodes, procs)
        yield port
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(temp, ignore_errors=True)
