"""On-disk forms: the seed paper's release folder and rmsearch's pair-dataset folder.

Seed release folder (loads as it is, no conversion):
    embd_{generator}_{embedder}_{task}_{train|test}.npy    (P, K, D) float16/float32
    reward_{generator}_{embedder}_{task}_{train|test}.npy  (P, K, 1) or (P, K)
Pair dataset folder (written by `rmsearch data embed`, or by hand):
    chosen.npy (M, D), rejected.npy (M, D), dataset.json {"kind": "pairs", "categories": [names], ...}
    optional: prompts.npy (M,) int prompt id of each pair, category.npy (M,) int index into "categories" (-1:
    none), lengths.npy (M, 2) int characters of the chosen and rejected responses
Gold dataset folder (written by `rmsearch data embed` from scored candidates): a seed release folder plus
    dataset.json {"kind": "gold", "stem": STEM, "categories": [names], ...} and, optional, per split
    lengths_{STEM}_{split}.npy (P, K) int characters of each response, category_{STEM}_{split}.npy (P,) int
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
        raise DataError(f"{path}: cannot be read ({exc}). Check the file's permissions and that it is a .npy "
                        f"file.") from None


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


def load_seed_folder(folder: Path, stem: str | None = None, meta: dict | None = None) -> GoldData:
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
        side = {}
        for kind in GOLD_SIDE_FILES:
            path = folder / f"{kind}_{stem}_{split}.npy"
            if path.is_file():
                files[f"{kind}_{split}"] = path
                side[kind] = open_npy(path)
        splits[split] = CandidateSet.checked(open_npy(e), open_npy(g), names=(str(e), str(g)), **side)
    meta = meta or {}
    return GoldData(
        train=splits["train"], test=splits["test"], name=meta.get("name", stem),
        fingerprint=fingerprint_files(list(files.values())),
        files={role: str(p) for role, p in files.items()},
        categories=tuple(meta.get("categories", ())), meta=meta,
    )


GOLD_SIDE_FILES = ("lengths", "category")
"""Optional per-split arrays beside a gold folder's seed-format files: `{kind}_{stem}_{split}.npy`."""


def write_gold_folder(folder: Path, stem: str, train: CandidateSet, test: CandidateSet, meta: dict) -> dict[str, Path]:
    """Write a gold dataset folder: seed-format embd_/reward_ files, the side arrays the candidate sets carry,
    and dataset.json last. Each file is written atomically; stage the folder to make the whole write atomic."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, cs in (("train", train), ("test", test)):
        arrays = {"embd": cs.embeddings, "reward": cs.gold, "lengths": cs.lengths, "category": cs.category}
        for kind, arr in arrays.items():
            if arr is not None:
                out[f"{kind}_{split}"] = atomic_save(folder / f"{kind}_{stem}_{split}.npy", arr)
    with atomic_file(folder / PAIR_MANIFEST) as tmp:
        tmp.write_text(json.dumps({**meta, "kind": "gold", "stem": stem}, indent=2))
    return out


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


def read_manifest(folder: Path) -> dict:
    """A dataset folder's dataset.json, checked to be a JSON object with a known 'kind'."""
    manifest = folder / PAIR_MANIFEST
    try:
        meta = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{manifest}: not valid JSON ({exc}); rewrite it or re-run `rmsearch data embed`.") from None
    if not isinstance(meta, dict) or meta.get("kind") not in ("pairs", "gold"):
        kind = meta.get("kind") if isinstance(meta, dict) else None
        raise DataError(f"{manifest}: 'kind' must be \"pairs\" (a pair dataset) or \"gold\" (scored candidates), "
                        f"got {kind!r}; rewrite it or re-run `rmsearch data embed`.")
    return meta


PAIR_SIDE_FILES = ("prompts", "category", "lengths")
"""Optional per-pair arrays of a pair folder: `{name}.npy`."""


def load_pair_folder(folder: Path) -> PairData:
    meta = read_manifest(folder)
    if meta["kind"] != "pairs":
        raise DataError(f"{folder / PAIR_MANIFEST}: 'kind' must be \"pairs\" for a pair dataset, got "
                        f"{meta['kind']!r}.")
    paths = [folder / "chosen.npy", folder / "rejected.npy"]
    chosen, rejected = (open_npy(p) for p in paths)
    side = {name: open_npy(folder / f"{name}.npy") for name in PAIR_SIDE_FILES if (folder / f"{name}.npy").is_file()}
    if chosen.shape[:1] != rejected.shape[:1]:
        raise DataError(f"{folder}: chosen.npy has {chosen.shape[0]} rows but rejected.npy has {rejected.shape[0]}; "
                        f"row i of each must be the two sides of pair i. Re-run `rmsearch data embed`.")
    return PairData.checked(
        chosen, rejected, name=meta.get("name", folder.name),
        fingerprint=fingerprint_files(paths + [folder / f"{name}.npy" for name in side]),
        files={"chosen": str(paths[0]), "rejected": str(paths[1]),
               **{name: str(folder / f"{name}.npy") for name in side}},
        meta=meta, categories=tuple(meta.get("categories", ())), **side,
    )


def write_pair_folder(folder: Path, chosen: np.ndarray, rejected: np.ndarray, meta: dict, *,
                      prompts: np.ndarray | None = None, category: np.ndarray | None = None,
                      lengths: np.ndarray | None = None) -> None:
    """Write a pair dataset folder, dataset.json last (each file atomically; stage the folder to make the
    whole write atomic). `meta["categories"]` names the `category` codes."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(folder / "chosen.npy", chosen)
    atomic_save(folder / "rejected.npy", rejected)
    for name, arr in (("prompts", prompts), ("category", category), ("lengths", lengths)):
        if arr is not None:
            atomic_save(folder / f"{name}.npy", np.asarray(arr, np.int64))
    with atomic_file(folder / PAIR_MANIFEST) as tmp:
        tmp.write_text(json.dumps({"kind": "pairs", **meta}, indent=2))
