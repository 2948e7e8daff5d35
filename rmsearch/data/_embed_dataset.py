"""Texts -> embeddings -> a pair dataset folder: the work of `rmsearch data embed` (`embed_file`).

Embeddings (float32, L2-normalized) are taken from the cache where it has them; the rest are encoded in
batches, each unique text once. Pairs whose two embeddings are equal are skipped and counted. The folder is
written last, manifest last: a failed run leaves no loadable half-written dataset.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rmsearch.data._embed_cache import EmbeddingCache, text_key
from rmsearch.data._encoder import MODEL_DIM, MODEL_NAME, MODEL_PACKAGE, Encoder, MiniLM
from rmsearch.data._files import PAIR_MANIFEST, atomic_save, write_pair_folder
from rmsearch.data._text_pairs import WHAT, Pairs, check_what, read_pairs, skips_text
from rmsearch.errors import DataError
from rmsearch.files import sha256_file

FLUSH_EVERY = 4096
"""New vectors held in memory before the cache writes them as a shard."""


@dataclass
class EmbedResult:
    chosen: np.ndarray
    rejected: np.ndarray
    lines: np.ndarray
    meta: dict
    encoded: int
    """Texts the encoder embedded in this run (the rest came from the cache)."""
    encoder_loaded: bool


def _progress(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("texts"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
                    transient=False)


def _encode(todo: list[tuple[bytes, str]], encoder: Encoder, cache: EmbeddingCache | None, batch_size: int,
            progress: bool, name: str, dim: int) -> dict[bytes, np.ndarray]:
    """Encode (key, text) in batches of similar length, checked and normalized; each batch also goes to the cache."""
    vectors: dict[bytes, np.ndarray] = {}
    todo = sorted(todo, key=lambda kt: len(kt[1]))  # batches of similar length pad less
    with _progress(len(todo), progress) as bar:
        task = bar.add_task("embed", total=len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            vecs = np.asarray(encoder.encode([t for _, t in batch]), dtype=np.float32)
            if vecs.shape != (len(batch), dim):
                raise DataError(f"the encoder {name} returned shape {vecs.shape} for {len(batch)} texts; "
                                f"expected ({len(batch)}, {dim}).")
            if not np.isfinite(vecs).all():
                raise DataError(f"the encoder {name} returned NaN/inf embeddings; check the model files.")
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            bkeys = [k for k, _ in batch]
            vectors.update(zip(bkeys, vecs))
            if cache is not None:
                cache.put(bkeys, vecs)
                if cache.pending >= FLUSH_EVERY:
                    cache.flush()
            bar.advance(task, len(batch))
    if cache is not None:
        cache.flush()
    return vectors


def embed_pairs(pairs: Pairs, cache: EmbeddingCache | None, encoder: Encoder | Callable[[], Encoder] | None = None,
                batch_size: int = 64, progress: bool = True,
                name: str = MODEL_NAME, dim: int = MODEL_DIM) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Embed the pairs' texts: cached ones from `cache`, the rest with the encoder in batches (each unique text
    once). `encoder` is an Encoder, or a factory called only when some text is not cached. Returns (chosen,
    rejected, texts encoded, whether an encoder was made)."""
    if batch_size < 1:
        raise DataError(f"--batch-size {batch_size}: must be at least 1.")
    texts = pairs.chosen + pairs.rejected
    keys = [text_key(name, t) for t in texts]
    unique: dict[bytes, str] = {}
    for k, t in zip(keys, texts):
        if (cache is None or cache.get(k) is None) and k not in unique:
            unique[k] = t
    vectors: dict[bytes, np.ndarray] = {}
    if unique:
        if encoder is None:
            encoder = MiniLM()
        if isinstance(encoder, type) or not hasattr(encoder, "encode"):
            encoder = encoder()  # a factory: called only now that some text needs the model
        vectors = _encode(list(unique.items()), encoder, cache, batch_size, progress, name, dim)
    M = len(pairs.chosen)
    X = np.empty((2 * M, dim), dtype=np.float32)
    for i, k in enumerate(keys):
        v = vectors.get(k)
        X[i] = v if v is not None else cache.get(k)
    return X[:M], X[M:], len(unique), bool(unique)


def _check_options(out: Path, what: str, max_pairs: int | None) -> None:
    check_what(what)
    if max_pairs is not None and max_pairs < 1:
        raise DataError(f"--max-pairs {max_pairs}: must be at least 1.")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file; give a folder for the dataset.")


def _manifest(input: Path, out: Path, pairs: Pairs, kept: int, what: str, name: str, dim: int) -> dict:
    """The dataset.json fields (besides "kind") of a dataset embedded from `input`."""
    return {
        "name": input.name.split(".")[0] or out.name,
        "source": {"path": str(input.resolve()), "sha256": sha256_file(input)},
        "model": {"name": name, "package": MODEL_PACKAGE if name == MODEL_NAME else None, "dim": dim,
                  "normalized": True, "dtype": "float32", "max_seq_length": 256 if name == MODEL_NAME else None},
        "embedded": WHAT[what], "embed": what,
        "counts": {"lines": pairs.read, "pairs": kept, "skipped": int(sum(pairs.skipped.values()))},
        "skipped": dict(pairs.skipped),
        "skipped_first_line": dict(pairs.examples),
        "rows": "row i of chosen.npy/rejected.npy is input line lines.npy[i] (1-based)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def embed_file(input: str | Path, out: str | Path, *, batch_size: int = 64, max_pairs: int | None = None,
               cache_dir: str | Path | None = None, what: str = "turn",
               encoder: Encoder | Callable[[], Encoder] | None = None, progress: bool = True,
               name: str = MODEL_NAME, dim: int = MODEL_DIM) -> EmbedResult:
    """Read, embed and write a pair dataset to `out`. Returns what was written and the counts."""
    input, out = Path(input), Path(out)
    _check_options(out, what, max_pairs)
    pairs = read_pairs(input, max_pairs=max_pairs, what=what)
    if not pairs.chosen:
        raise DataError(f"{input}: no usable pair among {pairs.read} lines ({skips_text(pairs.skipped)}). Each line "
                        f"must be a JSON object with non-empty, different string fields 'chosen' and 'rejected'.")
    cache = EmbeddingCache(Path(cache_dir) if cache_dir is not None else out / ".cache", dim)
    chosen, rejected, encoded, made = embed_pairs(pairs, cache, encoder, batch_size, progress, name, dim)
    cache.compact()

    same = np.all(np.abs(chosen - rejected) <= 1e-6, axis=1)
    lines = np.asarray(pairs.lines, dtype=np.int64)
    for line in lines[same]:
        pairs.skip("identical_embedding", int(line))
    keep = ~same
    chosen, rejected, lines = chosen[keep], rejected[keep], lines[keep]
    if len(chosen) == 0:
        raise DataError(f"{input}: every pair embeds identically; nothing to write.")

    meta = _manifest(input, out, pairs, int(len(chosen)), what, name, dim)
    _write_atomically(out, chosen, rejected, lines, meta)
    return EmbedResult(chosen, rejected, lines, meta, encoded, made)


def _write_atomically(out: Path, chosen, rejected, lines, meta) -> None:
    """Stage the whole dataset in OUT/.staging-*, then move it in with the manifest last (its old one removed
    first): a failure at any point leaves either the old dataset, or a folder without dataset.json that no
    command loads -- never a manifest next to arrays of another run."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{uuid.uuid4().hex[:8]}"
    try:
        write_pair_folder(staging, chosen, rejected, meta)
        atomic_save(staging / "lines.npy", lines)
        (out / PAIR_MANIFEST).unlink(missing_ok=True)
        for name in ("chosen.npy", "rejected.npy", "lines.npy"):
            os.replace(staging / name, out / name)
        os.replace(staging / PAIR_MANIFEST, out / PAIR_MANIFEST)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
