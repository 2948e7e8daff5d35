"""The package as a library: importing it leaves its host's environment alone."""

import subprocess
import sys


def test_importing_rmsearch_changes_no_environment_variable():
    code = ("import os; before = dict(os.environ)\n"
            "import rmsearch, rmsearch.search, rmsearch.heads, rmsearch.ensembles, rmsearch.evaluate, rmsearch.data\n"
            "changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}\n"
            "assert not changed, changed\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert r.returncode == 0, r.stderr


def test_the_command_and_its_ray_workers_get_a_short_openmp_spin():
    from rmsearch.openmp import SPIN

    code = ("import os, sys; from rmsearch.launch.cli import main\n"
            "sys.argv = ['rmsearch', 'spaces', 'show', 'coste']; main(sys.argv[1:])\n"
            "print('SPIN=' + os.environ.get('GOMP_SPINCOUNT', ''))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and f"SPIN={SPIN}" in r.stdout, r.stderr
