"""Rows -> texts -> embeddings -> a dataset folder: the work of `rmsearch data embed` (`embed_file`).

Rows with chosen/rejected become a pair dataset (chosen.npy, rejected.npy, with each pair's prompt id,
category and answer lengths); scored candidates become a gold dataset (seed-format files per split, with
lengths, categories and the prompts of each split in prompts.json). All input is read and checked before
anything is created. Embeddings (float32; L2-normalized where the encoder normalizes, `Encoder.describe()`) come
from the cache where it has them (keyed by the
encoder's identity and the text); the rest are encoded in batches of similar length, each unique text once.
The folder is staged whole and moved in with dataset.json last; a failed run leaves the earlier dataset, or, where
--out did not exist, no folder at all.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from rmsearch.data import _candidates as cand
from rmsearch.data._embed_cache import EmbeddingCache, text_key
from rmsearch.data._embed_folders import Embedded, EmbedResult, GoldJob, PairJob
from rmsearch.data._formats import Rows, check_format, detect_kind, parse_fields, read_rows, resolve_aliases
from rmsearch.data._text_pairs import WHAT, check_what
from rmsearch.errors import DataError
from rmsearch.files import sha256_file

FLUSH_EVERY = 4096
"""New vectors held in memory before the cache writes them as a shard."""


@dataclass
class EmbedOptions:
    """Everything `rmsearch data embed` takes besides the input and --out (see its --help)."""

    format: str = "auto"
    fields: str | None = None
    embed: str = "turn"
    batch_size: int = 64
    max_pairs: int | None = None
    max_prompts: int | None = None
    k: int | None = None
    ragged: str = "subsample"
    gold: str = "identity"
    gold_eps: float = cand.GOLD_EPS
    test_fraction: float = 0.5
    seed: int = 0
    keep_duplicates: bool = False
    cache: str | Path | None = None
    model: str | None = None
    pooling: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    max_length: int | None = None


def _progress(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("texts"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
                    transient=False)


def _encode(todo: list[tuple[bytes, str]], encoder, cache: EmbeddingCache | None, batch_size: int,
            progress: bool) -> tuple[dict[bytes, np.ndarray], int]:
    """Encode (key, text) in batches of similar length, checked (the encoder normalizes, or not, as its settings
    say); each batch also goes to the cache. Returns the vectors and how many texts the encoder truncated."""
    vectors: dict[bytes, np.ndarray] = {}
    truncated = 0
    todo = sorted(todo, key=lambda kt: len(kt[1]))  # batches of similar length pad less
    with _progress(len(todo), progress) as bar:
        task = bar.add_task("embed", total=len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            vecs, cut = encoder.encode([t for _, t in batch])
            vecs = np.array(vecs, dtype=np.float32)
            if vecs.shape != (len(batch), encoder.dim):
                raise DataError(f"the encoder {encoder.name} returned shape {vecs.shape} for {len(batch)} texts; "
                                f"expected ({len(batch)}, {encoder.dim}).")
            if not np.isfinite(vecs).all():
                raise DataError(f"the encoder {encoder.name} returned NaN/inf embeddings; check the model files.")
            truncated += int(np.count_nonzero(cut))
            bkeys = [k for k, _ in batch]
            vectors.update(zip(bkeys, vecs))
            if cache is not None:
                cache.put(bkeys, vecs)
                if cache.pending >= FLUSH_EVERY:
                    cache.flush()
            bar.advance(task, len(batch))
    if cache is not None:
        cache.flush()
    return vectors, truncated


def embed_texts(texts: list[str], encoder, cache: EmbeddingCache | None, batch_size: int = 64,
                progress: bool = True) -> Embedded:
    """(len(texts), dim) float32 vectors: cached ones from `cache`, the rest from the encoder in batches (each
    unique text once; the encoder is not called when every text is cached)."""
    keys = [text_key(encoder.identity, t) for t in texts]
    unique: dict[bytes, str] = {}
    for k, t in zip(keys, texts):
        if (cache is None or cache.get(k) is None) and k not in unique:
            unique[k] = t
    vectors, truncated = _encode(list(unique.items()), encoder, cache, batch_size, progress) if unique else ({}, 0)
    X = np.empty((len(texts), encoder.dim), dtype=np.float32)
    for i, k in enumerate(keys):
        v = vectors.get(k)
        X[i] = v if v is not None else cache.get(k)
    return Embedded(X, len(unique), len(set(keys)), truncated)


# ----------------------------------------------------------------------------------------------- checking


def _check_options(out: Path, o: EmbedOptions) -> None:
    check_what(o.embed)
    check_format(o.format)
    for name, value, least in (("--batch-size", o.batch_size, 1), ("--max-pairs", o.max_pairs, 1),
                               ("--max-prompts", o.max_prompts, 2), ("--k", o.k, 2), ("--max-length", o.max_length, 1)):
        if value is not None and value < least:
            raise DataError(f"{name} {value}: must be at least {least}.")
    if o.ragged not in cand.RAGGED:
        raise DataError(f"--ragged {o.ragged}: unknown rule; choose one of {', '.join(cand.RAGGED)}.")
    if o.gold not in cand.GOLD:
        raise DataError(f"--gold {o.gold}: unknown transform; choose one of {', '.join(cand.GOLD)}.")
    if not 0 < o.test_fraction < 1:
        raise DataError(f"--test-fraction {o.test_fraction}: must be between 0 and 1 (exclusive).")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file; give a folder for the dataset.")


def _source(path: Path, rows: Rows, fields_map: dict[str, str]) -> dict:
    if path.is_dir():  # a save_to_disk folder: the hash of its files' hashes
        h = hashlib.sha256()
        for p in sorted(q for q in path.iterdir() if q.is_file()):
            h.update(p.name.encode() + b"\0" + sha256_file(p).encode())
        digest = h.hexdigest()
    else:
        digest = sha256_file(path)
    return {"path": str(path.resolve()), "sha256": digest, "format": rows.format, "unit": rows.unit,
            "fields": {k: v for k, v in fields_map.items() if k != v}}


def _base_meta(input: Path, out: Path, rows: Rows, fields_map: dict, encoder, o: EmbedOptions, e: Embedded,
               n_texts: int) -> dict:
    return {
        "name": input.name.split(".")[0] or out.name,
        "source": _source(input, rows, fields_map),
        "model": encoder.describe(),
        "embedded": WHAT[o.embed], "embed": o.embed,
        "texts": {"embedded": n_texts, "unique": e.unique, "encoded": e.encoded, "from_cache": e.unique - e.encoded,
                  "truncated": e.truncated,
                  "truncated_of": "the texts encoded in this run: the encoder cut them at its max length (texts taken "
                                  "from the cache are not checked again)"},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@contextmanager
def _no_folder_on_failure(out: Path):
    """Where --out did not exist, a failure removes whatever this run created there (its cache included)."""
    created = not out.exists()
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _make_encoder(o: EmbedOptions):
    from rmsearch.data._encoder import load_encoder

    return load_encoder(o.model, pooling=o.pooling, device=o.device, dtype=o.dtype, max_length=o.max_length)


def embed_file(input: str | Path, out: str | Path, *, encoder=None, progress: bool = True, **options) -> EmbedResult:
    """Read `input` (pairs or scored candidates), embed, and write a dataset folder to `out`. `options` are
    EmbedOptions fields; `encoder` (default: `load_encoder` with the options) has name, dim, identity,
    describe() and encode(texts) -> (vectors, truncated)."""
    unknown = set(options) - {f.name for f in fields(EmbedOptions)}
    if unknown:
        raise TypeError(f"embed_file: unknown options {sorted(unknown)}")
    o, input, out = EmbedOptions(**options), Path(input), Path(out)
    _check_options(out, o)
    rows = read_rows(input, o.format)
    if not rows.rows:
        raise DataError(f"{input}: empty: no {rows.unit}s to read. Give a file with one pair or scored candidate "
                        f"per {rows.unit}.")
    fields_map = resolve_aliases(rows, parse_fields(o.fields), o.fields)
    kind = detect_kind(rows, fields_map)
    if kind == "pairs":
        job = PairJob(input, rows, fields_map, o.max_pairs, o.embed)
    else:
        job = GoldJob(rows, fields_map, kind, k=o.k, ragged=o.ragged, seed=o.seed, gold=o.gold, eps=o.gold_eps,
                      test_fraction=o.test_fraction, max_prompts=o.max_prompts, keep_duplicates=o.keep_duplicates,
                      what=o.embed)
    with _no_folder_on_failure(out):
        encoder = encoder if encoder is not None else _make_encoder(o)
        cache = EmbeddingCache(Path(o.cache) if o.cache is not None else out / ".cache", encoder.dim)
        e = embed_texts(job.texts, encoder, cache, o.batch_size, progress)
        cache.compact()
        meta = _base_meta(input, out, rows, fields_map, encoder, o, e, len(job.texts))
        return job.write(out, e, meta)
