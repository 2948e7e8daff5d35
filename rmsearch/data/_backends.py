"""The two ways a model folder is run, both loaded on first use and both offline (local files only):

- `HFBackend`: the tokenizer and the model from transformers (AutoTokenizer, AutoModel), one forward pass, and
  rmsearch's pooling of the last hidden layer (`_pooling`). Used for every transformers model and for the
  sentence-transformers models that are a Transformer, a last/mean/cls Pooling and perhaps a Normalize (most of
  them; the bundled all-MiniLM-L6-v2 too), so those need neither sentence-transformers nor its import time.
- `STBackend`: sentence-transformers itself, for its other models (Dense layers, other poolings, prompts, custom
  modules), run module by module so that its Normalize can be left out when normalization is turned off.

Both return the pooled vectors as float32 and which texts were cut at max_length: a fast tokenizer keeps what
truncation cut off (`Encoding.overflowing`); with a slow one the texts are tokenized again without truncation.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import numpy as np

from rmsearch.data._model_folder import ModelFolder
from rmsearch.data._pooling import padded_positions, pool
from rmsearch.errors import DataError

DTYPES = ("float32", "float16", "bfloat16")


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


@contextmanager
def quiet_transformers():
    """transformers without its progress bars and load reports (weights not used, …) while a model loads."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def truncated_flags(encoded, tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    """(n,) bool: which texts have more than max_length tokens (special tokens included)."""
    encodings = getattr(encoded, "encodings", None)
    if encodings and all(e is not None for e in encodings):
        return np.array([len(e.overflowing) > 0 for e in encodings], dtype=bool)
    ids = tokenizer(texts, truncation=False, padding=False)["input_ids"]
    return np.array([len(i) > max_length for i in ids], dtype=bool)


def _check_not_empty(mask, texts: list[str]) -> None:
    empty = [i for i, n in enumerate(mask.sum(1).tolist()) if n == 0]
    if empty:
        raise DataError(f"the text {texts[empty[0]]!r} tokenizes to no tokens with this model's tokenizer; drop it "
                        f"from the input.")


class HFBackend:
    """Tokenizer + AutoModel + `pool` on the last hidden layer."""

    def __init__(self, folder: ModelFolder, pooling: str, max_length: int, device: str, dtype: str,
                 lowercase: bool = False):
        self.folder, self.pooling, self.max_length = folder, pooling, max_length
        self.device, self.dtype, self.lowercase = device, dtype, lowercase
        self.notes: list[str] = []

    def load(self) -> HFBackend:
        from transformers import AutoModel, AutoTokenizer

        where = str(self.folder.transformer)
        with quiet_transformers():
            try:
                tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
                model = AutoModel.from_pretrained(where, dtype=torch_dtype(self.dtype), local_files_only=True)
            except (OSError, ValueError, KeyError, ImportError) as exc:
                raise DataError(f"{where}: transformers could not load this model offline: {exc}") from None
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()  # an encoder-decoder (T5, …) embeds with its encoder
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self._set_pad_token()
        if self.lowercase:
            self._lowercase()
        params = inspect.signature(model.forward).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self.inputs = None if takes_any else set(params)
        self.extra = {"use_cache": False} if "use_cache" in params else {}
        # a decoder reading a left-padded text must see it at positions 0, 1, … (GPT-2's absolute positions
        # would otherwise shift with the padding); right padding already starts every text at 0
        self.positions = (tokenizer.padding_side == "left" and "position_ids" in params and self.folder.decoder())
        self.dim = int(self._hidden_size())
        return self

    def _set_pad_token(self) -> None:
        tok = self.tokenizer
        if tok.pad_token is not None:
            return
        tok.pad_token = tok.eos_token or tok.unk_token or tok.convert_ids_to_tokens(0)
        self.notes.append(f"the tokenizer has no padding token; padding with {tok.pad_token!r} (masked out, so the "
                          f"vectors do not depend on it)")

    def _lowercase(self) -> None:
        """sentence-transformers' do_lower_case: lowercase in the tokenizer's normalizer."""
        from tokenizers import normalizers

        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return
        steps = [normalizers.Lowercase()] + ([backend.normalizer] if backend.normalizer is not None else [])
        backend.normalizer = normalizers.Sequence(steps)
        self.lowercase = False

    def _hidden_size(self) -> int:
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        return getattr(text, "hidden_size", None) or getattr(text, "d_model")

    def forward(self, texts: list[str]):
        """(B, dim) float32 torch tensor on the device, and (B,) bool: truncated."""
        import torch

        if self.lowercase:  # a slow tokenizer without a normalizer to lowercase in
            texts = [t.lower() for t in texts]
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        truncated = truncated_flags(enc, self.tokenizer, texts, self.max_length)
        mask = enc["attention_mask"]
        _check_not_empty(mask, texts)
        inputs = {k: v.to(self.device) for k, v in enc.items() if self.inputs is None or k in self.inputs}
        if self.positions:
            inputs["position_ids"] = padded_positions(mask).to(self.device)
        with torch.inference_mode():
            out = self.model(**inputs, **self.extra)
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            return pool(hidden, inputs["attention_mask"], self.pooling), truncated


class STBackend:
    """A sentence-transformers model run by sentence-transformers, module by module."""

    def __init__(self, folder: ModelFolder, max_length: int, device: str, dtype: str, normalize: bool):
        self.folder, self.max_length, self.device, self.dtype = folder, max_length, device, dtype
        self.normalize = normalize
        self.notes: list[str] = []

    def load(self) -> STBackend:
        from sentence_transformers import SentenceTransformer

        with quiet_transformers():
            try:
                model = SentenceTransformer(str(self.folder.path), device=self.device, local_files_only=True)
            except (OSError, ValueError, KeyError, ImportError) as exc:
                raise DataError(f"{self.folder.path}: sentence-transformers could not load this model offline: "
                                f"{exc}") from None
        if self.dtype != "float32":
            model.to(torch_dtype(self.dtype))
        model.max_seq_length = self.max_length
        self.model = model.eval()
        ask = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(ask()) if ask() is not None else None
        return self

    def forward(self, texts: list[str]):
        import torch

        prompt = self.folder.st_prompt or None
        features = self.model.preprocess(texts, prompt=prompt)
        truncated = truncated_flags(features, self.model.tokenizer, [(prompt or "") + t for t in texts],
                                    self.max_length)
        if "attention_mask" in features:
            _check_not_empty(features["attention_mask"], texts)
        features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
        with torch.inference_mode():
            for module in self.model:
                if type(module).__name__ == "Normalize" and not self.normalize:
                    continue
                features = module(features)
            return features["sentence_embedding"].float(), truncated
