"""The embedding cache: sha256(encoder identity, text) -> float32 vector, as .npz shards in one folder (DIR/.cache
of a dataset, or --cache), so a rerun embeds only texts it has not seen.

An encoder's identity (`Encoder.identity`) names the model, the sha256 of its files, the pooling, max length,
dtype and normalization: vectors made with other files or settings never answer for each other."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import numpy as np

from rmsearch.files import atomic_file


def text_key(identity, text: str) -> bytes:
    """The cache key of `text` embedded by an encoder: `identity` is its `Encoder.identity` (or the encoder)."""
    identity = getattr(identity, "identity", identity)
    return hashlib.sha256(identity.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """sha256(encoder identity, text) -> float32 vector, as .npz shards in one folder (each written atomically, so an
    interrupted run keeps the batches it finished). Shards of another dim are ignored."""

    def __init__(self, folder: Path, dim: int):
        self.folder, self.dim = Path(folder), dim
        self.store: dict[bytes, np.ndarray] = {}
        self.shards: list[Path] = []
        self._new_keys: list[bytes] = []
        self._new_vecs: list[np.ndarray] = []
        if self.folder.is_dir():
            for p in sorted(self.folder.glob("emb-*.npz")):
                try:
                    with np.load(p, allow_pickle=False) as z:
                        keys, vecs = z["keys"], z["vectors"]
                except Exception:  # an unreadable shard is only a cache miss
                    continue
                if (vecs.ndim != 2 or vecs.shape[1] != dim or keys.dtype != np.uint8 or keys.ndim != 2
                        or keys.shape != (len(vecs), 32)):
                    continue
                self.shards.append(p)
                for k, v in zip(keys, vecs):
                    self.store[k.tobytes()] = v

    def get(self, key: bytes) -> np.ndarray | None:
        return self.store.get(key)

    @property
    def pending(self) -> int:
        """Vectors put since the last flush (not yet on disk)."""
        return len(self._new_keys)

    def put(self, keys: list[bytes], vecs: np.ndarray) -> None:
        for k, v in zip(keys, vecs):
            self.store[k] = v
        self._new_keys.extend(keys)
        self._new_vecs.append(vecs)

    def flush(self) -> None:
        if not self._new_keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = np.frombuffer(b"".join(self._new_keys), dtype=np.uint8).reshape(-1, 32)  # raw sha256 digests
        vecs = np.concatenate(self._new_vecs).astype(np.float32)
        path = self.folder / f"emb-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.npz"
        with atomic_file(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=keys, vectors=vecs)
        self.shards.append(path)
        self._new_keys, self._new_vecs = [], []

    def compact(self, max_shards: int = 16) -> None:
        """Merge the shards into one when there are many (each rerun with new texts adds one)."""
        self.flush()
        if len(self.shards) <= max_shards:
            return
        old = list(self.shards)
        self.shards = []
        keys = list(self.store)
        self._new_keys, self._new_vecs = keys, [np.stack([self.store[k] for k in keys])]
        self.flush()
        for p in old:
            p.unlink(missing_ok=True)
