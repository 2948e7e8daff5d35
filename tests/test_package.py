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


def test_the_command_gets_a_short_openmp_spin_and_huge_pages_unless_the_user_chose():
    from rmsearch.process_env import SPIN

    code = ("import os, sys; from rmsearch.launch.cli import main\n"
            "sys.argv = ['rmsearch', 'spaces', 'show', 'coste']; main(sys.argv[1:])\n"
            "print('SPIN=' + os.environ.get('GOMP_SPINCOUNT', ''), 'THP=' + os.environ.get('THP_MEM_ALLOC_ENABLE', ''))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and f"SPIN={SPIN} THP=1" in r.stdout, r.stderr
    chosen = {"PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "passive", "THP_MEM_ALLOC_ENABLE": "0"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=chosen)
    assert r.returncode == 0 and "SPIN= THP=0" in r.stdout, r.stderr


def test_ray_workers_start_with_the_training_environment():
    """What a launch's member jobs see, read inside a real Ray task started from a process whose own environment
    lacks both settings (so they can only come from the runtime environment the launch gives Ray)."""
    from rmsearch.process_env import SPIN

    code = ("import os\nfrom rmsearch.search._ray import init_ray\n"
            "ray, _, _ = init_ray(None, 1)\n"
            "keys = ('GOMP_SPINCOUNT', 'THP_MEM_ALLOC_ENABLE')\n"
            "assert not any(k in os.environ for k in keys)\n"
            "print('SEEN', ray.get(ray.remote(lambda: [os.environ.get(k) for k in keys]).remote()))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, timeout=120)
    assert r.returncode == 0 and f"SEEN ['{SPIN}', '1']" in r.stdout, r.stdout + r.stderr
