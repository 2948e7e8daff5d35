"""On-disk forms: the seed paper's release folder and rmsearch's pair-dataset folder.

Seed release folder (loads as it is, no conversion):
    embd_{generator}_{embedder}_{task}_{train|test}.npy    (P, K, D) float16/float32
    reward_{generator}_{embedder}_{task}_{train|test}.npy  (P, K, 1) or (P, K)
Pair dataset folder (written by `rmsearch data embed`, or by hand):
    chosen.npy (M, D), rejected.npy (M, D), dataset.json {"kind": "pairs", ...}
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from pathlib import Path

import numpy as np

from rmsearch.data._kinds import CandidateSet, GoldData, PairData
from rmsearch.errors import DataError
from rmsearch.files import atomic_file, sha256_file

SEED_PATTERN = re.compile(r"^(embd|reward)_(?P<stem>.+)_(?P<split>train|test)\.npy$")
PAIR_MANIFEST = "dataset.json"


def fingerprint_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()[:16]


def open_npy(path: Path) -> np.ndarray:
    """Memory-map a .npy file; a missing, truncated or foreign file raises a DataError naming it."""
    if not path.is_file():
        raise DataError(f"{path}: file not found. Check the path, or write the array with numpy.save.")
    _check_npy_magic(path)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle; truncated files fail the size check
        raise DataError(
            f"{path}: not a readable .npy array ({exc}). The file may be truncated or hold pickled objects; "
            f"re-save it with numpy.save(path, array.astype(numpy.float32))."
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}). Check the file's permissions and that it is a .npy file.") from None


NPY_MAGIC = b"\x93NUMPY"


def _check_npy_magic(path: Path) -> None:
    """Refuse a file that is not a .npy array at all (text, .npz, pickle, ...) by what it is, before numpy reads
    it (numpy would say "Cannot load file containing pickled data", whatever the file holds)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc}). Check the file's permissions and that it is a .npy "
                        f"file.") from None
    if head.startswith(NPY_MAGIC):
        return
    if head.startswith(b"PK\x03\x04"):
        what, fix = "a .npz archive (several arrays)", "take the one array out and save it alone: " \
            f"numpy.save('X.npy', numpy.load({str(path)!r})['NAME'].astype(numpy.float32))"
    elif head.startswith(b"\x80"):
        what, fix = "a pickle", "load it where it was made and save the array with numpy.save('X.npy', " \
            "numpy.asarray(X, dtype=numpy.float32)); rmsearch never unpickles files"
    else:
        try:  # incremental: a character cut at byte 512 is not an error
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            text = bool(head) and b"\x00" not in head
        except UnicodeDecodeError:
            text = False
        if text:
            what, fix = "a text file", f"convert it, e.g. numpy.save('X.npy', numpy.loadtxt({str(path)!r}, " \
                "dtype=numpy.float32, ndmin=2)) for one row of numbers per line"
        elif not head:
            what, fix = "empty", "write the array with numpy.save('X.npy', X.astype(numpy.float32))"
        else:
            what, fix = "a binary file of another format", "save the array with numpy.save('X.npy', " \
                "X.astype(numpy.float32))"
    raise DataError(f"{path}: is not a .npy array file (it is {what}; a .npy file starts with \\x93NUMPY); {fix}.")


def find_seed_files(folder: Path) -> dict[str, dict[str, Path]] | None:
    """Group seed-format files by stem ({generator}_{embedder}_{task}); None if the folder has none."""
    stems: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        m = SEED_PATTERN.match(p.name)
        if m:
            stems.setdefault(m["stem"], {})[f"{m.group(1)}_{m['split']}"] = p
    return stems or None


def load_seed_folder(folder: Path, stem: str | None = None) -> GoldData:
    stems = find_seed_files(folder)
    if stems is None:
        raise DataError(
            f"{folder}: no seed-format files (embd_<generator>_<embedder>_<task>_<train|test>.npy) found. "
            f"Point --data at the folder holding them, or use --data synth."
        )
    if stem is None:
        if len(stems) > 1:
            raise DataError(
                f"{folder}: holds several datasets ({', '.join(sorted(stems))}); choose one with "
                f"{folder}::<name>, e.g. {folder}::{sorted(stems)[0]}."
            )
        stem = next(iter(stems))
    elif stem not in stems:
        raise DataError(f"{folder}: no dataset named {stem!r}; found {', '.join(sorted(stems))}.")
    files = stems[stem]
    for role in ("embd_train", "reward_train", "embd_test", "reward_test"):
        if role not in files:
            kind, split = role.split("_")
            raise DataError(
                f"{folder}: missing {kind}_{stem}_{split}.npy; a seed-format dataset needs embd_ and reward_ "
                f"files for both the train and the test split."
            )
    splits = {}
    for split in ("train", "test"):
        e, g = files[f"embd_{split}"], files[f"reward_{split}"]
        splits[split] = CandidateSet.checked(open_npy(e), open_npy(g), names=(str(e), str(g)))
    return GoldData(
        train=splits["train"], test=splits["test"], name=stem,
        fingerprint=fingerprint_files(list(files.values())),
        files={role: str(p) for role, p in files.items()},
    )


def write_seed_folder(folder: Path, data: GoldData, stem: str = "synth_synth_gold") -> dict[str, Path]:
    """Write `data` as seed-format files (atomically per file: a failed write leaves no partial .npy)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, cs in (("train", data.train), ("test", data.test)):
        for kind, arr in (("embd", cs.embeddings), ("reward", cs.gold[:, :, None])):
            out[f"{kind}_{split}"] = atomic_save(folder / f"{kind}_{stem}_{split}.npy", arr)
    return out


def atomic_save(path: Path, arr: np.ndarray) -> Path:
    """Save `arr` as a .npy file at `path`, whole or not at all (`rmsearch.files.atomic_file`)."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr))
    return path


def load_pair_folder(folder: Path) -> PairData:
    manifest = folder / PAIR_MANIFEST
    try:
        meta = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{manifest}: not valid JSON ({exc}); rewrite it or re-run `rmsearch data embed`.") from None
    if meta.get("kind") != "pairs":
        raise DataError(f"{manifest}: 'kind' must be \"pairs\" for a pair dataset, got {meta.get('kind')!r}.")
    paths = [folder / "chosen.npy", folder / "rejected.npy"]
    chosen, rejected = (open_npy(p) for p in paths)
    return PairData.checked(
        chosen, rejected, name=meta.get("name", folder.name), fingerprint=fingerprint_files(paths),
        files={"chosen": str(paths[0]), "rejected": str(paths[1])}, meta=meta,
    )


def write_pair_folder(folder: Path, chosen: np.ndarray, rejected: np.ndarray, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(folder / "chosen.npy", chosen)
    atomic_save(folder / "rejected.npy", rejected)
    with atomic_file(folder / PAIR_MANIFEST) as tmp:
        tmp.write_text(json.dumps({"kind": "pairs", **meta}, indent=2))
