"""Load an export folder into an `Ensemble`, with numpy + safetensors only (torch is never imported).

Order of checks, all before any array is used:
1. The seal: `checksums.sha256` is exactly what an export writes, and `manifest.json`'s bytes have the sha256 it
   lists, so any edit to the manifest (or to the seal) is refused before the manifest is read.
2. `manifest.json` is a JSON object and names a known format and format version.
3. The folder holds exactly `manifest.json`, the seal and the files the manifest lists: an unlisted file (a
   planted `members.pkl`, `evil.py`, ...) is refused, never opened. Each listed file exists, has the listed size
   and the sha256 both the manifest and the seal list (hashed from the very bytes that are then parsed).
4. Manifest values: input dim, member count, head types and configs, seeds, stats, aggregation, and the
   calibration temperature where there is one (exports without it load with `temperature` None), and the β of
   the bounds (exports without `bounds` load with the default β).
5. Arrays: the tensor names match the member list, and each member's arrays have the shapes, dtypes and
   tree structure its head type's forward pass expects, consistent with the input dim.
Nothing is unpickled, and nothing named in the folder is imported: head types map to fixed numpy code. Every
error names the export folder and the file at fault. (The seal catches edits and corruption; someone who edits a
file and rewrites the seal to match is not caught: checksums without a key cannot tell who wrote them.)
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rmsearch.ensembles import AGGREGATORS, Aggregation, Ensemble, Member
from rmsearch.errors import ConfigError, ExportError
from rmsearch.export._format import (
    CHECKSUMS,
    FORMAT,
    FORMAT_VERSION,
    HEAD_KINDS,
    MANIFEST,
    MEMBERS,
    TENSOR_NAME,
    check_member_arrays,
    parse_checksums,
    sha256_bytes,
)
from rmsearch.heads import HEAD_CONFIGS

REEXPORT = "Re-export the ensemble."


def _err(where: str, msg: str, fix: str = REEXPORT):
    raise ExportError(f"{where}: {msg}; {fix}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@contextmanager
def _naming(folder: Path):
    """Errors raised inside name the export folder they are about (`compare` loads several)."""
    try:
        yield
    except ExportError as e:
        raise ExportError(f"export {folder}: {e}") from None


def _read_seal(folder: Path) -> dict[str, str]:
    """The seal's file name -> sha256, after checking it is exactly what an export writes."""
    path = folder / CHECKSUMS
    if path.is_symlink() or not path.is_file():
        _err(CHECKSUMS, "missing; every export is sealed by it (the sha256 of each of its files), so the export is "
             "incomplete, or it was written by an rmsearch before exports were sealed (format version 1)",
             "copy the whole export folder again, or re-export the ensemble.")
    try:
        seal = parse_checksums(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        seal = None
    if seal is None:
        _err(CHECKSUMS, "is not the checksum list an export writes (one '<sha256>  <file name>' line per file, "
             "sorted by name); the file was edited or corrupted")
    if MANIFEST not in seal:
        _err(CHECKSUMS, f"does not list {MANIFEST}; the file was edited or corrupted")
    return seal


def _read_manifest(folder: Path, seal: dict[str, str]) -> dict:
    path = folder / MANIFEST
    blob = path.read_bytes()
    if sha256_bytes(blob) != seal[MANIFEST]:
        _err(MANIFEST, f"sha256 does not match the one {CHECKSUMS} lists; the manifest (or the seal) was edited or "
             "corrupted")
    try:
        manifest = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _err(MANIFEST, f"is not valid JSON ({e}); the file was edited or corrupted", REEXPORT)
    if not isinstance(manifest, dict):
        _err(MANIFEST, "must be a JSON object; the file was edited or corrupted")
    if manifest.get("format") != FORMAT:
        _err(f"{MANIFEST} field 'format'", f"is {manifest.get('format')!r}, expected {FORMAT!r}; this is not an "
             "rmsearch ensemble export", "pass the folder written by `rmsearch export`.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or not _is_int(version):
        _err(f"{MANIFEST} field 'format_version'", f"is {version!r} but this rmsearch reads version {FORMAT_VERSION}",
             "load it with the rmsearch version that wrote it (see 'packages' in the manifest), or re-export it.")
    return manifest


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ExportError("is not a folder; pass the folder written by `rmsearch export`.")
    if (folder / MANIFEST).is_symlink() or not (folder / MANIFEST).is_file():
        _err(MANIFEST, "missing; this folder is not an rmsearch export (or the export is incomplete)",
             "pass the folder written by `rmsearch export`, or re-export the ensemble.")


def _verify_files(folder: Path, manifest: dict, seal: dict[str, str]) -> dict[str, bytes]:
    files = manifest.get("files")
    if not isinstance(files, dict) or MEMBERS not in files:
        _err(f"{MANIFEST} field 'files'", f"must list {MEMBERS} with its sha256 and size")
    for name, entry in files.items():
        if not isinstance(name, str) or name in (MANIFEST, "", ".", "..") or "/" in name or "\\" in name:
            _err(f"{MANIFEST} field 'files'", f"lists {name!r}, which is not a plain file name in the folder")
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or len(entry["sha256"]) != 64
                or not _is_int(entry.get("size")) or entry["size"] < 0):
            _err(f"{MANIFEST} field 'files.{name}'", "must hold a 64-hex-digit 'sha256' and an integer 'size'")
    # Refuse anything the manifest does not list; it is never opened, let alone unpickled or imported.
    unlisted = sorted(p.name for p in folder.iterdir() if p.name not in (MANIFEST, CHECKSUMS) and p.name not in files)
    if unlisted:
        _err("the folder", f"holds {', '.join(map(repr, unlisted))}, not listed in {MANIFEST}; an export folder holds "
             "only the manifest and the files it lists, so something was added to it",
             "remove the unlisted files without opening them (they may be malicious), or re-export the ensemble.")
    data = {}
    for name, entry in files.items():
        path = folder / name
        if path.is_symlink() or not path.is_file():
            _err(name, f"listed in {MANIFEST} but missing (or not a regular file); the export is incomplete",
                 "copy the whole export folder again, or re-export the ensemble.")
        blob = path.read_bytes()
        if len(blob) != entry["size"]:
            _err(name, f"has {len(blob)} bytes but the manifest says {entry['size']}; the file was truncated, "
                 "edited or corrupted")
        digest = sha256_bytes(blob)
        if digest != entry["sha256"]:
            _err(name, "sha256 does not match the manifest; the file was edited or corrupted")
        if seal.get(name) != digest:
            _err(CHECKSUMS, f"lists {name} with another sha256 (or not at all); the seal was edited or corrupted")
        data[name] = blob
    if set(seal) != {MANIFEST, *files}:
        _err(CHECKSUMS, f"lists {', '.join(sorted(set(seal) - {MANIFEST, *files}))}, which the manifest does not; the "
             "seal was edited or corrupted")
    return data


def _temperature(manifest: dict) -> float | None:
    """The calibration temperature, or None for an export without one (written before calibration existed)."""
    if "calibration" not in manifest:
        return None
    cal = manifest["calibration"]
    t = cal.get("temperature") if isinstance(cal, dict) else None
    if not _is_num(t) or t <= 0:
        _err(f"{MANIFEST} field 'calibration.temperature'", f"is {t!r}, must be a finite number > 0 (the T of "
             f"P(a ≻ b) = σ((score(a) − score(b)) / T))")
    return float(t)


def _beta(manifest: dict) -> float:
    """The β of the export's bounds (mean ± β·std), or the default for an export written before bounds existed."""
    from rmsearch.ensembles import BETA

    if "bounds" not in manifest:
        return BETA
    b = manifest["bounds"]
    beta = b.get("beta") if isinstance(b, dict) else None
    if not _is_num(beta) or beta < 0:
        _err(f"{MANIFEST} field 'bounds.beta'", f"is {beta!r}, must be a finite number >= 0 (the β of the bounds "
             f"mean ± β·std)")
    return float(beta)


def _check_values(manifest: dict) -> tuple[int, list[dict], np.ndarray, Aggregation]:
    dim = manifest.get("input_dim")
    if not _is_int(dim) or dim < 1:
        _err(f"{MANIFEST} field 'input_dim'", f"is {dim!r}, must be a positive integer (the embedding dimension)")
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        _err(f"{MANIFEST} field 'members'", "must be a non-empty list of members")
    count = manifest.get("member_count")
    if not _is_int(count) or count != len(members):
        _err(f"{MANIFEST} field 'member_count'", f"is {count!r} but 'members' lists {len(members)} members")
    stats = np.empty((len(members), 2), np.float64)
    for i, m in enumerate(members):
        where = f"{MANIFEST} member {i}"
        if not isinstance(m, dict):
            _err(where, "must be a JSON object")
        if m.get("index", i) != i:
            _err(f"{where} field 'index'", f"is {m.get('index')!r}, expected {i} (members are listed in order)")
        kind = m.get("kind")
        if kind not in HEAD_KINDS:
            _err(f"{where} field 'kind'", f"is {kind!r}, not a known head type ({', '.join(HEAD_KINDS)})",
                 "re-export with a matching rmsearch version.")
        config = m.get("config")
        if not isinstance(config, dict) or config.get("kind", kind) != kind:
            _err(f"{where} field 'config'", f"must be an object of head type {kind!r}")
        try:
            HEAD_CONFIGS[kind].from_dict(config)
        except ConfigError as e:
            _err(f"{where} field 'config'", f"is invalid ({e})")
        if not _is_int(m.get("seed")):
            _err(f"{where} field 'seed'", f"is {m.get('seed')!r}, must be an integer")
        s = m.get("stats")
        if not isinstance(s, dict) or not _is_num(s.get("mean")) or not _is_num(s.get("std")) or s["std"] <= 0:
            _err(f"{where} field 'stats'", f"is {s!r}, must be {{'mean': finite, 'std': finite > 0}}")
        stats[i] = s["mean"], s["std"]
        if not isinstance(m.get("arrays", {}), dict):
            _err(f"{where} field 'arrays'", "must map array names to their dtype and shape")
        if not _is_int(m.get("weight", 1)) or m.get("weight", 1) < 1:
            _err(f"{where} field 'weight'", f"is {m.get('weight')!r}, must be a positive integer (how many times "
                 f"the member counts in the aggregation)")
    return dim, members, stats, _aggregation(manifest.get("aggregation"))


def _aggregation(agg) -> Aggregation:
    """The manifest's aggregation: a registered name and, where the aggregation has a parameter, its value."""
    name = agg.get("name") if isinstance(agg, dict) else agg
    if not isinstance(agg, dict) or not isinstance(name, str) or name not in AGGREGATORS:
        _err(f"{MANIFEST} field 'aggregation'", f"names {name!r}, not a known aggregation ({', '.join(AGGREGATORS)})")
    spec = AGGREGATORS[name].param
    if spec is None:
        return Aggregation(name, 1.0)
    param = agg.get(spec.name)
    if not _is_num(param) or not spec.allows(param):
        _err(f"{MANIFEST} field 'aggregation.{spec.name}'",
             f"is {param!r}, must be a finite number >= {spec.minimum:g}")
    return Aggregation(name, float(param))


def _member_arrays(blob: bytes, members: list[dict], dim: int) -> list[dict[str, np.ndarray]]:
    from safetensors.numpy import load

    try:
        tensors = load(blob)
    except Exception as e:  # safetensors raises its own error types for malformed headers
        _err(MEMBERS, f"is not a readable safetensors file ({e})")
    arrays: list[dict[str, np.ndarray]] = [{} for _ in members]
    for key, value in tensors.items():
        m = TENSOR_NAME.match(key)
        if not m or int(m.group(1)) >= len(members):
            _err(MEMBERS, f"holds tensor {key!r}, which is not 'm<index>.<name>' for one of the {len(members)} members "
                 f"in {MANIFEST}")
        arrays[int(m.group(1))][m.group(2)] = value
    for i, (m, a) in enumerate(zip(members, arrays)):
        if not a:
            _err(MEMBERS, f"holds no arrays for member {i}, but {MANIFEST} lists {len(members)} members")
        listed = m.get("arrays")
        if listed is not None:
            for n, v in a.items():  # safetensors stores 0-d arrays (a tree member's baseline) as shape (1,)
                if v.shape == (1,) and isinstance(listed.get(n), dict) and listed[n].get("shape") == []:
                    a[n] = v.reshape(())
            found = {n: {"dtype": str(v.dtype), "shape": list(v.shape)} for n, v in a.items()}
            if found != listed:
                diff = sorted(n for n in set(found) | set(listed) if found.get(n) != listed.get(n))
                _err(MEMBERS, f"member {i}'s arrays {', '.join(map(repr, diff))} differ in name, dtype or shape from "
                     f"those {MANIFEST} lists")
        check_member_arrays(i, m["kind"], a, dim)
    return arrays


def load_ensemble(path) -> Ensemble:
    """Load the export folder at `path` (written by `write_export`) as an `Ensemble`.

    Verifies the manifest, every file's size and sha256, and every value and array shape before use; refuses
    folders holding files the manifest does not list. Raises `ExportError` naming the file or field at fault.
    Needs numpy and safetensors only; never unpickles and never imports torch or anything named in the folder.
    """
    folder = Path(path)
    with _naming(folder):
        manifest, blobs = _read_sealed(folder)
        dim, members, stats, aggregation = _check_values(manifest)
        temperature = _temperature(manifest)
        beta = _beta(manifest)
        arrays = _member_arrays(blobs[MEMBERS], members, dim)
    return Ensemble(
        [Member(m["kind"], dict(m["config"]), int(m["seed"]), a) for m, a in zip(members, arrays)],
        stats, aggregation, dim, weights=[int(m.get("weight", 1)) for m in members], temperature=temperature, beta=beta,
    )


def read_manifest(path) -> dict:
    """The manifest of an export folder, after its format and file checksums are verified."""
    folder = Path(path)
    with _naming(folder):
        return _read_sealed(folder)[0]


def _read_sealed(folder: Path) -> tuple[dict, dict[str, bytes]]:
    """The manifest and the bytes of every file it lists, each verified against the manifest and the seal."""
    _check_folder(folder)
    seal = _read_seal(folder)
    manifest = _read_manifest(folder, seal)
    return manifest, _verify_files(folder, manifest, seal)
