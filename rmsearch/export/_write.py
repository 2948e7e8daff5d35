"""Write an `Ensemble` as an export folder: `manifest.json` + `members.safetensors`, atomically."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from rmsearch.ensembles import BOUND_RULE, Aggregation, Ensemble, Member
from rmsearch.errors import ExportError
from rmsearch.export._format import (
    FORMAT,
    CHECKSUMS,
    FORMAT_VERSION,
    HEAD_KINDS,
    MANIFEST,
    MEMBERS,
    check_member_arrays,
    checksums_text,
    jsonable,
    sha256_file,
)
from rmsearch.files import atomic_dir

PACKAGES = ("rmsearch", "numpy", "safetensors", "torch", "scikit-learn")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages an export depends on (read from metadata: nothing is imported)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def ensemble_from_groups(groups, stats=None, aggregation: Aggregation | None = None,
                         dim: int | None = None) -> Ensemble:
    """An `Ensemble` of every member of `groups` (`GroupResult`s), in order. `stats` (k, 2) defaults to the
    groups' own training-row stats; `aggregation` to the mean. `dim` (the embedding dimension) is required."""
    if dim is None:
        raise ExportError("ensemble_from_groups: pass dim, the embedding dimension the members were trained on.")
    members = [Member(g.kind, dict(g.config), int(s), dict(a)) for g in groups for s, a in zip(g.seeds, g.arrays)]
    if stats is None:
        stats = np.concatenate([np.asarray(g.stats, np.float64) for g in groups])
    return Ensemble(members, np.asarray(stats, np.float64), aggregation or Aggregation(), int(dim))


def _check_ensemble(ensemble: Ensemble) -> np.ndarray:
    k = len(ensemble.members)
    if k == 0:
        raise ExportError("write_export: the ensemble has no members; train at least one member before exporting.")
    dim = ensemble.dim
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ExportError(f"write_export: ensemble.dim={dim!r} must be a positive integer (the embedding dimension).")
    stats = np.asarray(ensemble.stats, np.float64)
    if stats.shape != (k, 2) or not np.isfinite(stats).all() or (stats[:, 1] <= 0).any():
        raise ExportError(f"write_export: stats must be a finite ({k}, 2) array of (mean, std>0) per member "
                          f"(got shape {stats.shape}).")
    beta = getattr(ensemble, "beta", None)
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating)) or not np.isfinite(beta) or beta < 0:
        raise ExportError(f"write_export: ensemble.beta={beta!r} must be a finite number >= 0 (the β of its bounds "
                          f"mean ± β·std).")
    try:
        ensemble.aggregation.validate()
    except Exception as e:
        raise ExportError(f"write_export: {e}") from None
    for i, m in enumerate(ensemble.members):
        if m.kind not in HEAD_KINDS:
            raise ExportError(f"write_export: member {i} has unknown head type {m.kind!r}; known: "
                              f"{', '.join(HEAD_KINDS)}.")
        check_member_arrays(i, m.kind, {n: np.asarray(a) for n, a in m.arrays.items()}, int(dim))
    return stats


def _manifest(ensemble: Ensemble, stats, metrics, dataset, extra, calibration) -> dict:
    agg = ensemble.aggregation
    aggregation = {"name": agg.name}
    if agg.aggregator.param is not None:
        aggregation[agg.aggregator.param.name] = float(agg.param)
    members = []
    for i, m in enumerate(ensemble.members):
        members.append({
            "index": i,
            "kind": m.kind,
            "config": jsonable({"kind": m.kind, **dict(m.config)}),
            "seed": int(m.seed),
            "weight": int(ensemble.weights[i]),
            "stats": {"mean": float(stats[i, 0]), "std": float(stats[i, 1])},
            "arrays": {n: {"dtype": str(np.asarray(a).dtype), "shape": list(np.shape(a))}
                       for n, a in sorted(m.arrays.items())},
        })
    out = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input_dim": int(ensemble.dim),
        "member_count": len(members),
        "members": members,
        "aggregation": aggregation,
        "metrics": jsonable(dict(metrics)),
        "dataset": jsonable(dict(dataset)),
        "extra": jsonable(dict(extra or {})),
        "packages": package_versions(),
        "bounds": {"beta": float(ensemble.beta), "definition": BOUND_RULE},
        "files": {},
    }
    if calibration is not None:
        out["calibration"] = jsonable(dict(calibration))
    return out


def write_export(out_dir, ensemble: Ensemble, *, metrics: dict, dataset: dict, extra: dict | None = None,
                 calibration: dict | None = None) -> Path:
    """Write `ensemble` to the folder `out_dir` and return its path.

    The folder holds `members.safetensors` (every member array as tensor `m{index}.{name}`), `manifest.json`
    (format version, input dim, members with head type, config, seed and standardization stats, aggregation,
    metrics, `dataset`, `extra`, package versions, and the sha256 and size of every other file) and
    `checksums.sha256`, the seal (the sha256 of both, the manifest included); and, where given,
    `calibration` ({"temperature": T > 0, ...} from `fit_temperature`; loads as `Ensemble.temperature`). Everything is
    written into a temporary folder beside `out_dir` and renamed into place, so a failure leaves no half-written
    export. An existing export (or empty folder) at `out_dir` is replaced (the old one stays until the new one is
    complete); any other existing folder, and the working directory, are refused. Files and folders get the
    modes the user's umask gives (not 0600/0700), so a shared export is readable by whom the umask allows.
    """
    from safetensors.numpy import save_file

    out = Path(out_dir)
    stats = _check_ensemble(ensemble)
    if calibration is not None:
        t = calibration.get("temperature") if isinstance(calibration, dict) else None
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t) or t <= 0:
            raise ExportError(f"write_export: calibration {calibration!r} must hold a finite 'temperature' > 0 "
                              f"(see rmsearch.evaluate._calibration.fit_temperature).")
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / MANIFEST).is_file())):
        raise ExportError(f"{out}: exists and is not an earlier export or an empty folder; choose another --out "
                          f"or remove it.")
    manifest = _manifest(ensemble, stats, metrics, dataset, extra, calibration)
    with atomic_dir(out, option=None) as tmp:
        tensors = {f"m{i}.{n}": np.ascontiguousarray(a)
                   for i, m in enumerate(ensemble.members) for n, a in m.arrays.items()}
        save_file(tensors, str(tmp / MEMBERS), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        for f in sorted(tmp.iterdir()):
            manifest["files"][f.name] = {"sha256": sha256_file(f), "size": f.stat().st_size}
        text = json.dumps(manifest, indent=2, allow_nan=False)
        (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
        seal = {f.name: sha256_file(f) for f in sorted(tmp.iterdir())}
        (tmp / CHECKSUMS).write_text(checksums_text(seal), encoding="utf-8")
    return out
