"""OpenMP spinning on shared cores.

OpenMP (libgomp, used by torch and scikit-learn) threads spin ~300k iterations at every barrier by default. On
shared cores (parallel members, other jobs) a spinning thread burns the slice a descheduled one needs: two
concurrent 2-thread tree fits on 2 cores took 89 s each instead of ~4 s. A short spin keeps the idle speed and
stays fast when shared (6.7 s). libgomp reads the setting once when it is loaded, so a process must have it before
torch or scikit-learn load: the `rmsearch` command sets it for itself, and launches pass it to their Ray workers.
A library import changes nothing in its host's environment; an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
"""

from __future__ import annotations

import os

SPIN = "1000"


def spin_env() -> dict[str, str]:
    """The environment variables to give a process (or Ray worker) that trains: empty where the user chose."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return {}
    return {"GOMP_SPINCOUNT": SPIN}
