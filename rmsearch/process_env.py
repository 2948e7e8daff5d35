"""The environment a process that trains should start with: set before torch or scikit-learn load.

- OpenMP spinning on shared cores. OpenMP (libgomp, used by torch and scikit-learn) threads spin ~300k iterations at
  every barrier by default. On shared cores (parallel members, other jobs) a spinning thread burns the slice a
  descheduled one needs: two concurrent 2-thread tree fits on 2 cores took 89 s each instead of ~4 s. A short spin
  (`GOMP_SPINCOUNT`) keeps the idle speed and stays fast when shared (6.7 s).
- Transparent huge pages for torch's large CPU buffers (`THP_MEM_ALLOC_ENABLE`). Every training step allocates
  activations of tens to hundreds of MB afresh, and touching a fresh 4 KiB page costs a page fault: on a 2-core
  VM, copying a 184 MB activation took 77 ms, and 41 ms in huge pages, and bf16 training of the seed-paper MLPs
  ran about 16% faster (bf16 matmuls are fast enough there that page faults were a large share of a step).

Both are read once, when the library loads, so a process must have them before: the `rmsearch` command sets them
for itself, and launches pass them to their Ray workers. A library import changes nothing in its host's
environment; a value the user set wins (an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT leaves the spin alone).
"""

from __future__ import annotations

import os

SPIN = "1000"


def training_env() -> dict[str, str]:
    """The environment variables to give a process (or Ray worker) that trains, less what the user chose."""
    env = {}
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        env["GOMP_SPINCOUNT"] = SPIN
    if "THP_MEM_ALLOC_ENABLE" not in os.environ:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    return env
