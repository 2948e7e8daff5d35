"""rmsearch: reward-model ensemble research on precomputed LLM embeddings.

Importing the package is cheap: torch, Ray and Optuna load only when a part that needs them is used, so an
exported ensemble loads with numpy and safetensors alone (`rmsearch.load_ensemble`).
"""

__version__ = "0.1.0"

__all__ = ["load_ensemble", "__version__"]


def load_ensemble(path):
    """Load an exported ensemble folder (see `rmsearch.export`); verifies checksums, never unpickles."""
    from rmsearch.export import load_ensemble as _load

    return _load(path)
