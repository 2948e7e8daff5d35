"""What a model folder says about itself, read from its JSON files without loading torch or the weights, and the
sha256 of the files that make its embeddings.

A folder with `modules.json` is a sentence-transformers model; one with only `config.json` a Hugging Face
transformers model. From the JSON alone come the embedding dim, the model's own pooling and normalization, its
maximum length and whether it is a decoder, so a rerun whose texts are all cached never loads the model.

The files hashed: those at the top of the folder and in the sentence-transformers module folders (1_Pooling, …),
except hidden files, documentation and images, and except weights in a format transformers does not load here
(when .safetensors files are present, .bin/.h5/.onnx/… copies beside them are skipped). Hashing a multi-GB weights
file takes a while, so each file's sha256 is kept in `hash_cache_path()` (~/.cache/rmsearch/file-sha256.json, or
under $XDG_CACHE_HOME) keyed by its real path, size and modification time; a file that changes is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rmsearch.errors import DataError
from rmsearch.files import atomic_file, sha256_file

ST_POOLING_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                   "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                   "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "last"}
"""The older Pooling config's flags (sentence-transformers < 6) and the pooling each names; 'lasttoken' is 'last'
here."""
ST_TRANSFORMER_DEFAULTS = {
    "transformer_task": "feature-extraction", "module_output_name": "token_embeddings",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "model_args": {}, "tokenizer_args": {}, "config_args": {}}
"""sentence_bert_config.json values under which the Transformer module is a plain tokenizer + model forward that
rmsearch runs itself (besides max_seq_length and do_lower_case, which it reads)."""
WEIGHTS = {".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx", ".ot", ".gguf"}
NOT_MODEL = {".md", ".png", ".jpg", ".jpeg", ".gif", ".svg"}
NO_LIMIT = 1_000_000
"""A tokenizer's model_max_length above this means 'no limit' (transformers writes 1e30 when it has none)."""


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc}); the model folder is damaged: fetch it again.") from None


@dataclass(frozen=True)
class ModelFolder:
    """A model folder as its JSON files describe it."""

    path: Path
    kind: str
    """'sentence-transformers' (modules.json) or 'transformers' (config.json only)."""
    transformer: Path
    """The folder of the Hugging Face model: `path`, or the Transformer module's folder."""
    config: dict
    tokenizer_config: dict = field(default_factory=dict)
    st_modules: tuple = ()
    """(class name, folder) of each sentence-transformers module, in order."""
    st_pooling: tuple = ()
    """The sentence-transformers model's own pooling (several: concatenated)."""
    st_config: dict = field(default_factory=dict)
    """Its sentence_bert_config.json."""
    st_prompt: str = ""
    """The prompt sentence-transformers puts before every text (its default prompt), usually none."""

    @property
    def normalizes(self) -> bool:
        return any(name == "Normalize" for name, _ in self.st_modules)

    @property
    def st_native(self) -> bool:
        """A sentence-transformers model that is a Transformer, one pooling of last/mean/cls and perhaps a
        Normalize, with no prompt: rmsearch runs it with transformers directly (others run in sentence-transformers)."""
        names = [name for name, _ in self.st_modules]
        extra = {k: v for k, v in self.st_config.items() if k not in ("max_seq_length", "do_lower_case")}
        return (names in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
                and len(self.st_pooling) == 1 and self.st_pooling[0] in ("last", "mean", "cls") and not self.st_prompt
                and all(ST_TRANSFORMER_DEFAULTS.get(k, object()) == v for k, v in extra.items()))

    @property
    def hidden_size(self) -> int | None:
        config = self.config
        nested = config.get("text_config")
        if isinstance(nested, dict) and not any(k in config for k in ("hidden_size", "n_embd", "d_model")):
            config = nested
        for key in ("hidden_size", "n_embd", "d_model", "dim", "embed_dim"):
            if isinstance(config.get(key), int):
                return config[key]
        return None

    @property
    def positions(self) -> int | None:
        """How many positions the model has (None: no limit it states)."""
        for key in ("max_position_embeddings", "n_positions"):
            value = self.config.get(key)
            if isinstance(value, int) and value > 0:
                return value
        return None

    @property
    def tokenizer_max(self) -> int | None:
        value = self.tokenizer_config.get("model_max_length")
        return int(value) if isinstance(value, (int, float)) and 0 < value <= NO_LIMIT else None

    def st_dim(self) -> int | None:
        """The sentence-transformers model's output dim from its module configs (None: a module that does not
        say)."""
        dim = None
        for name, folder in self.st_modules:
            cfg = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
            if name == "Transformer":
                dim = self.hidden_size
            elif name == "Pooling":
                dim = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension", dim))
                dim = dim * len(self.st_pooling) if isinstance(dim, int) else None
            elif name == "Dense":
                dim = cfg.get("out_features")
            elif name not in ("Normalize", "Dropout", "LayerNorm"):
                return None
        return dim if isinstance(dim, int) else None

    def decoder(self) -> bool:
        """Whether the model is a decoder (causal LM): by its saved architectures, else by its model type."""
        archs = self.config.get("architectures") or []
        if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            return True
        if self.config.get("is_encoder_decoder") or any(a.endswith(("ForMaskedLM", "ForPreTraining")) for a in archs):
            return False
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        )

        kind = self.config.get("model_type")
        return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def inspect_folder(path: Path) -> ModelFolder:
    """Read a model folder's JSON files; a DataError naming what is missing where it is not a model."""
    path = Path(path)
    if (path / "modules.json").is_file():
        return _sentence_transformers_folder(path)
    if not (path / "config.json").is_file():
        raise DataError(f"{path}: not a model folder: it has neither config.json (a Hugging Face transformers model) "
                        f"nor modules.json (a sentence-transformers model). Give the folder holding the model's files, "
                        f"e.g. the one save_pretrained wrote or a snapshot folder of the Hugging Face cache.")
    _check_weights(path)
    return ModelFolder(path, "transformers", path, read_json(path / "config.json"), _tokenizer_config(path))


def _tokenizer_config(folder: Path) -> dict:
    return read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}


def _check_weights(folder: Path) -> None:
    if not any(p.suffix in (".safetensors", ".bin", ".pt", ".pth") for p in folder.iterdir()):
        raise DataError(f"{folder}: has config.json but no weights (model.safetensors or pytorch_model.bin); the "
                        f"model was not fully downloaded or copied: fetch it again.")


def _sentence_transformers_folder(path: Path) -> ModelFolder:
    modules = read_json(path / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise DataError(f"{path / 'modules.json'}: not a list of sentence-transformers modules; fetch the model again.")
    st_modules = tuple((str(m["type"]).rsplit(".", 1)[-1], path / m.get("path", "")) for m in modules)
    settings = read_json(path / "config_sentence_transformers.json") if (
        path / "config_sentence_transformers.json").is_file() else {}
    if settings.get("model_type", "SentenceTransformer") != "SentenceTransformer":
        raise DataError(f"{path}: a sentence-transformers {settings['model_type']}, not a model that embeds text into "
                        f"dense vectors; choose an embedding model.")
    prompt = (settings.get("prompts") or {}).get(settings.get("default_prompt_name") or "", "") or ""
    pooling: tuple = ()
    for name, folder in st_modules:
        if name == "Pooling":
            pooling = _st_pooling(read_json(folder / "config.json"))
    transformer = next((folder for name, folder in st_modules if name == "Transformer"), path)
    config = read_json(transformer / "config.json") if (transformer / "config.json").is_file() else {}
    if config:
        _check_weights(transformer)
    st_config = read_json(transformer / "sentence_bert_config.json") if (
        transformer / "sentence_bert_config.json").is_file() else {}
    return ModelFolder(path, "sentence-transformers", transformer, config, _tokenizer_config(transformer),
                       st_modules, pooling, st_config, prompt)


def _st_pooling(cfg: dict) -> tuple:
    mode = cfg.get("pooling_mode")
    if mode is None:
        return tuple(p for key, p in ST_POOLING_KEYS.items() if cfg.get(key)) or ("mean",)
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    return tuple("last" if m == "lasttoken" else m for m in modes)


# ------------------------------------------------------------------------------------------- sha256 of the files


def hashed_files(folder: ModelFolder) -> list[Path]:
    """The files whose bytes make the embeddings (see the module's docstring), sorted."""
    dirs = sorted(d for d in {folder.path, folder.transformer, *(d for _, d in folder.st_modules)} if d.is_dir())
    out = []
    for d in dirs:
        files = [p for p in d.iterdir()
                 if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in NOT_MODEL]
        weights = [p for p in files if p.suffix in WEIGHTS]
        loaded = ([p for p in weights if p.suffix == ".safetensors"]
                  or [p for p in weights if p.suffix in (".bin", ".pt", ".pth")])
        out += [p for p in files if p.suffix not in WEIGHTS] + loaded
    return sorted(out)


def files_sha256(folder: ModelFolder) -> str:
    """One sha256 over the model's files (their paths inside the folder and their sha256s), so the same files give
    the same hash wherever the folder is."""
    cache = _HashCache(hash_cache_path())
    lines = [f"{p.relative_to(folder.path).as_posix()}\t{cache.sha256(p)}\n" for p in hashed_files(folder)]
    cache.save()
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def hash_cache_path() -> Path:
    """Where each model file's sha256 is kept: $XDG_CACHE_HOME/rmsearch/file-sha256.json (~/.cache by default)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "rmsearch" / "file-sha256.json"


class _HashCache:
    """real path -> (size, mtime_ns, sha256) of files hashed before. Only a cache: unreadable is empty, and a
    failed write (read-only home) loses nothing but time."""

    def __init__(self, path: Path):
        self.path, self.changed = path, False
        try:
            self.entries = json.loads(path.read_text()).get("files", {})
        except (OSError, ValueError, AttributeError):
            self.entries = {}

    def sha256(self, file: Path) -> str:
        real = os.path.realpath(file)
        st = os.stat(real)
        entry = self.entries.get(real)
        if isinstance(entry, list) and entry[:2] == [st.st_size, st.st_mtime_ns]:
            return entry[2]
        digest = sha256_file(real)
        self.entries[real] = [st.st_size, st.st_mtime_ns, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        live = {k: v for k, v in self.entries.items() if os.path.exists(k)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(self.path) as tmp:
                Path(tmp).write_text(json.dumps({"version": 1, "files": live}))
        except OSError:
            pass
