"""rmsearch: reward-model ensemble research on precomputed LLM embeddings.

Importing the package is cheap: torch, Ray and Optuna load only when a part that needs them is used, so an
exported ensemble loads with numpy and safetensors alone (`rmsearch.load_ensemble`).
"""

import os

# OpenMP (libgomp, used by torch and scikit-learn) threads spin ~300k iterations at every barrier by default. On
# shared cores (parallel members, other jobs) a spinning thread burns the slice a descheduled one needs: two
# concurrent 2-thread tree fits on 2 cores took 89 s each instead of ~4 s. A short spin keeps the idle speed and
# stays fast when shared (6.7 s). libgomp reads it once when loaded, so it is set before torch or sklearn load;
# an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

__version__ = "0.1.0"

__all__ = ["load_ensemble", "__version__"]


def load_ensemble(path):
    """Load an exported ensemble folder (see `rmsearch.export`); verifies checksums, never unpickles."""
    from rmsearch.export import load_ensemble as _load

    return _load(path)
