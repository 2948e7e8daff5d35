"""The head cache: every trained member, keyed by what determines it, kept in memory and on disk.

A member is identified by a hash of (task key, head config, member seed); the task key covers the dataset
fingerprint and how pairs were drawn and split, so the same key means the same training data, the same
bootstrap draw and the same subspace. A later trial (or a later launch of the same study) that needs the member
reuses it instead of training again. On disk each member is one safetensors file holding its weights, its
score statistics, its cached validation scores and, once the final evaluation has needed them, its test scores; its
history and config ride in the file's metadata.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from rmsearch.files import atomic_file


TRAINING_CODE = ("heads", "ensembles/_train.py")
"""The parts of rmsearch (folders or files) whose source decides what a member's training computes."""


@lru_cache(maxsize=1)
def code_identity() -> dict:
    """What trained a member besides its config and data: the versions of rmsearch, torch, scikit-learn and numpy,
    and the sha256 of rmsearch's training code (`TRAINING_CODE`), so an edit without a version bump counts too."""
    import rmsearch

    root = Path(rmsearch.__file__).parent
    files = sorted(f for part in TRAINING_CODE for f in ((root / part).rglob("*.py") if (root / part).is_dir()
                                                           else [root / part]))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    out = {"rmsearch": rmsearch.__version__}
    for name in ("torch", "scikit-learn", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out | {"training code": digest.hexdigest()[:16]}


def member_key(task_key: str, head_config: dict, seed: int, device: str = "cpu") -> str:
    """The head-cache key: task (data and how pairs were drawn), head config (precision resolved), member seed,
    the code that trains it (`code_identity`) and, for a member trained on a GPU, that device (a CPU member's key
    names none, as before devices were keyed)."""
    key = {"task": task_key, "head": head_config, "seed": int(seed), "code": code_identity()}
    blob = json.dumps(key if device == "cpu" else {**key, "device": device}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def code_changes(before: dict, now: dict) -> str:
    """'torch 2.12.0 → 2.13.0, training code a1… → b2…': what differs between two `code_identity`s."""
    return ", ".join(f"{k} {before.get(k)} → {now.get(k)}" for k in sorted(set(before) | set(now))
                     if before.get(k) != now.get(k))


@dataclass
class MemberRecord:
    kind: str
    config: dict
    seed: int
    arrays: dict[str, np.ndarray]
    stats: np.ndarray
    """(2,) mean and std of raw scores on training rows."""
    val_scores: np.ndarray
    test_scores: np.ndarray | None
    """None until scored: search jobs score the validation split only; the final evaluation adds test scores."""
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    """This member's share of its job's wall time (training and scoring)."""
    node: str = ""
    """The Ray node that trained the member."""
    fit_seconds: float = 0.0
    """This member's share of its job's training time."""

    @property
    def parameters(self) -> int:
        """Learnable numbers (`HeadKind.parameters`: weights and biases, or split thresholds and leaf values)."""
        from rmsearch.heads import head_kind

        return head_kind(self.kind).parameters(self.arrays)


def records_from_group(group) -> list[MemberRecord]:
    """Split a `GroupResult` into one record per member."""
    out = []
    for i, seed in enumerate(group.seeds):
        history = [{k: float(v[i]) for k, v in h.items() if k != "early_stop/active"} for h in group.history]
        out.append(MemberRecord(group.kind, group.config, int(seed), group.arrays[i], group.stats[i],
                                group.val_scores[i],
                                group.test_scores[i] if group.test_scores is not None else None, history,
                                group.seconds / len(group.seeds),
                                fit_seconds=group.fit_seconds / len(group.seeds)))
    return out


class MemberStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._memory: dict[str, MemberRecord] = {}

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def __contains__(self, key: str) -> bool:
        return key in self._memory or self._path(key).exists()

    def get(self, key: str) -> MemberRecord:
        if key not in self._memory:
            tensors = load_file(self._path(key))
            from safetensors import safe_open

            with safe_open(self._path(key), "np") as f:
                meta = json.loads(f.metadata()["member"])
            arrays = {k[len("arrays."):]: v for k, v in tensors.items() if k.startswith("arrays.")}
            self._memory[key] = MemberRecord(meta["kind"], meta["config"], meta["seed"], arrays, tensors["stats"],
                                             tensors["val_scores"], tensors.get("test_scores"), meta["history"],
                                             meta["seconds"],
                                             meta.get("node", ""), meta.get("fit_seconds", 0.0))
        return self._memory[key]

    def loaded(self):
        """(key, record) of every member read or written so far."""
        return list(self._memory.items())

    def put(self, key: str, record: MemberRecord) -> None:
        self._memory[key] = record
        tensors = {f"arrays.{k}": np.ascontiguousarray(v) for k, v in record.arrays.items()}
        tensors.update(stats=np.asarray(record.stats, np.float64), val_scores=np.ascontiguousarray(record.val_scores))
        if record.test_scores is not None:
            tensors["test_scores"] = np.ascontiguousarray(record.test_scores)
        meta = {"kind": record.kind, "config": record.config, "seed": record.seed, "history": record.history,
                "seconds": record.seconds, "node": record.node, "fit_seconds": record.fit_seconds}
        with atomic_file(self._path(key)) as tmp:
            save_file(tensors, tmp, metadata={"member": json.dumps(meta)})
