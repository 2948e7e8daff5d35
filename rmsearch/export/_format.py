"""The exported-folder format: constants, hashing, and the checks of one member's arrays.

Numpy only (no torch, no scikit-learn): loading an export must work with numpy + safetensors alone.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from rmsearch.errors import ExportError
from rmsearch.files import jsonable, sha256_file  # noqa: F401 (imported from here by _write)

FORMAT = "rmsearch-ensemble"
FORMAT_VERSION = 2
"""Bumped whenever the manifest or array layout changes incompatibly; loaders refuse versions they don't know.
Version 2 seals the folder with `checksums.sha256`."""
MANIFEST = "manifest.json"
MEMBERS = "members.safetensors"
CHECKSUMS = "checksums.sha256"
"""The seal: the sha256 of every other file of the folder, manifest included, in `sha256sum` format (so
`sha256sum -c checksums.sha256` checks a folder too). Any edit to any file, this one included, fails the check."""
_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64})  ([^/\\\n]+)")


def checksums_text(digests: dict[str, str]) -> str:
    """The content of `CHECKSUMS` for file name -> hex sha256, sorted by name: one canonical text per folder."""
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))


def parse_checksums(text: str) -> dict[str, str] | None:
    """File name -> sha256 of a `CHECKSUMS` text, or None where it is not exactly what `checksums_text` writes."""
    out = {}
    for line in text.split("\n")[:-1]:
        m = _CHECKSUM_LINE.fullmatch(line)
        if not m or m.group(2) in out:
            return None
        out[m.group(2)] = m.group(1)
    return out if out and checksums_text(out) == text else None
TREE_ARRAYS = ("node_feature", "node_threshold", "node_left", "node_right", "node_is_leaf", "node_value",
               "tree_roots", "baseline")
TENSOR_NAME = re.compile(r"^m(0|[1-9][0-9]*)\.([A-Za-z_][A-Za-z0-9_]*)$")
_LAYER = re.compile(r"^([wb])(0|[1-9][0-9]*)$")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fail(member: int, kind: str, msg: str):
    raise ExportError(
        f"{MEMBERS}: member {member} ({kind}) {msg}; the export is inconsistent or was edited. Re-export the ensemble."
    )


def _int_array(a, i, kind, name, ndim=1):
    if a.dtype.kind not in "iu" or a.ndim != ndim:
        _fail(i, kind, f"array {name!r} must be a {ndim}-d integer array (got {a.dtype}, shape {a.shape})")


def _float_array(a, i, kind, name, ndim, allow_inf=False):
    if a.dtype.kind != "f" or a.ndim != ndim:
        _fail(i, kind, f"array {name!r} must be a {ndim}-d float array (got {a.dtype}, shape {a.shape})")
    bad = np.isnan(a).any() if allow_inf else not np.isfinite(a).all()
    if bad:
        _fail(i, kind, f"array {name!r} holds non-finite values")


def _check_features(arrays, i, kind, dim) -> int:
    """Validate the optional subspace; returns the member's input width (its length, or dim)."""
    if "features" not in arrays:
        return dim
    f = arrays["features"]
    _int_array(f, i, kind, "features")
    if len(f) == 0 or f.min() < 0 or f.max() >= dim:
        _fail(i, kind, f"array 'features' must hold 1 or more embedding dims in [0, {dim}) (input dim {dim})")
    return len(f)


def check_member_arrays(i: int, kind: str, arrays: dict[str, np.ndarray], dim: int) -> None:
    """Refuse arrays that the numpy forward pass would misread, crash on, or loop forever on."""
    ARRAY_CHECKS[kind](i, kind, arrays, dim)


def _check_mlp(i, kind, arrays, dim):
    width = _check_features(arrays, i, kind, dim)
    source = "len(features)" if "features" in arrays else "the manifest's input_dim"
    layers = {}
    for name in arrays:
        m = _LAYER.match(name)
        if m:
            layers.setdefault(int(m.group(2)), set()).add(m.group(1))
        elif name not in ("features", "mean", "scale"):
            _fail(i, kind, f"has an unknown array {name!r} (a {kind} member holds w<i>, b<i>, features, mean, scale)")
    n = len(layers)
    if n == 0 or sorted(layers) != list(range(n)) or any(v != {"w", "b"} for v in layers.values()):
        _fail(i, kind, f"must hold layers w0, b0 ... w{{L}}, b{{L}} without gaps (got {sorted(arrays)})")
    if ("mean" in arrays) != ("scale" in arrays):
        _fail(i, kind, "must hold both 'mean' and 'scale' or neither")
    if "mean" in arrays:
        for name in ("mean", "scale"):
            _float_array(arrays[name], i, kind, name, 1)
            if arrays[name].shape != (width,):
                _fail(i, kind, f"array {name!r} has shape {arrays[name].shape}, expected ({width},) ({source})")
        if (arrays["scale"] == 0).any():
            _fail(i, kind, "array 'scale' holds zeros")
    rows = width
    for j in range(n):
        w, b = arrays[f"w{j}"], arrays[f"b{j}"]
        _float_array(w, i, kind, f"w{j}", 2)
        _float_array(b, i, kind, f"b{j}", 1)
        if w.shape[0] != rows:
            why = f"the width of layer {j - 1}" if j else source
            _fail(i, kind, f"array 'w{j}' has {w.shape[0]} rows but must have {rows} ({why})")
        if b.shape != (w.shape[1],):
            _fail(i, kind, f"array 'b{j}' has shape {b.shape}, expected ({w.shape[1]},)")
        rows = w.shape[1]
    if rows != 1:
        _fail(i, kind, f"last layer 'w{n - 1}' must have 1 output column (got {rows})")


def _check_trees(i, kind, arrays, dim):
    width = _check_features(arrays, i, kind, dim)
    missing = [k for k in TREE_ARRAYS if k not in arrays]
    unknown = sorted(set(arrays) - set(TREE_ARRAYS) - {"features"})
    if missing or unknown:
        _fail(i, kind, f"must hold exactly {', '.join(TREE_ARRAYS)} (+ optional features); missing {missing}, "
                       f"unknown {unknown}")
    for name in ("node_feature", "node_left", "node_right", "tree_roots"):
        _int_array(arrays[name], i, kind, name)
    _float_array(arrays["node_threshold"], i, kind, "node_threshold", 1, allow_inf=True)
    _float_array(arrays["node_value"], i, kind, "node_value", 1)
    base = arrays["baseline"]
    if base.dtype.kind != "f" or base.size != 1 or not np.isfinite(base).all():
        _fail(i, kind, f"array 'baseline' must be one finite float (got {base.dtype}, shape {base.shape})")
    leaf = arrays["node_is_leaf"]
    if leaf.dtype.kind not in "iub" or leaf.ndim != 1 or not np.isin(leaf, (0, 1)).all():
        _fail(i, kind, "array 'node_is_leaf' must be a 1-d array of 0/1")
    M = len(leaf)
    for name in ("node_feature", "node_threshold", "node_left", "node_right", "node_value"):
        if arrays[name].shape != (M,):
            _fail(i, kind, f"array {name!r} has shape {arrays[name].shape}, expected ({M},) like 'node_is_leaf'")
    feat, left, right, roots = arrays["node_feature"], arrays["node_left"], arrays["node_right"], arrays["tree_roots"]
    if M and (feat.min() < 0 or feat.max() >= width):
        _fail(i, kind, f"array 'node_feature' must index its {width} input features")
    if len(roots) == 0:
        if M:
            _fail(i, kind, "has nodes but no 'tree_roots'")
        return
    if roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= M:
        _fail(i, kind, "array 'tree_roots' must start at 0 and increase strictly within the node arrays")
    # Each node's children lie after it and inside its own tree; leaves point to themselves. This is the
    # preorder layout trees_to_arrays writes, and it guarantees the level-by-level traversal ends.
    own = np.arange(M)
    end = np.append(roots[1:], M)[np.searchsorted(roots, own, side="right") - 1]
    is_leaf = leaf.astype(bool)
    ok_leaf = (left == own) & (right == own)
    ok_split = (left > own) & (left < end) & (right > own) & (right < end)
    if not np.where(is_leaf, ok_leaf, ok_split).all():
        _fail(i, kind, "has tree nodes whose children point outside their tree or backwards")


def _check_scaling(i, kind, arrays, width):
    if ("mean" in arrays) != ("scale" in arrays):
        _fail(i, kind, "must hold both 'mean' and 'scale' or neither")
    for name in ("mean", "scale"):
        if name in arrays:
            _float_array(arrays[name], i, kind, name, 1)
            if arrays[name].shape != (width,):
                _fail(i, kind, f"array {name!r} has shape {arrays[name].shape}, expected ({width},)")
    if "scale" in arrays and (arrays["scale"] == 0).any():
        _fail(i, kind, "array 'scale' holds zeros")


def _check_laplace(i, kind, arrays, dim):
    """A linear layer (w0, b0, mean, scale as the MLP heads) and the posterior factor cov_factor (D, D)."""
    if "cov_factor" not in arrays:
        _fail(i, kind, "must hold 'cov_factor', its posterior covariance factor")
    if "features" in arrays:
        _fail(i, kind, "has an unknown array 'features' (a laplace member sees every embedding dim)")
    _check_mlp(i, kind, {n: a for n, a in arrays.items() if n != "cov_factor"}, dim)
    if "w1" in arrays:
        _fail(i, kind, f"must hold one linear layer w0, b0, cov_factor and optionally mean, scale "
                       f"(got {sorted(arrays)})")
    _float_array(arrays["cov_factor"], i, kind, "cov_factor", 2)
    if arrays["cov_factor"].shape != (dim, dim):
        _fail(i, kind, f"array 'cov_factor' has shape {arrays['cov_factor'].shape}, expected ({dim}, {dim})")


def _check_prototype(i, kind, arrays, dim):
    need = {"prototypes", "values", "log_temperature"}
    unknown = sorted(set(arrays) - need - {"mean", "scale"})
    if not need <= set(arrays) or unknown:
        _fail(i, kind, f"must hold prototypes, values, log_temperature and optionally mean, scale "
                       f"(got {sorted(arrays)})")
    _check_scaling(i, kind, arrays, dim)
    _float_array(arrays["prototypes"], i, kind, "prototypes", 2)
    _float_array(arrays["values"], i, kind, "values", 1)
    _float_array(arrays["log_temperature"], i, kind, "log_temperature", 1)
    M = arrays["values"].shape[0]
    if M < 1 or arrays["prototypes"].shape != (M, dim) or arrays["log_temperature"].shape != (1,):
        _fail(i, kind, f"arrays 'prototypes' {arrays['prototypes'].shape}, 'values' {arrays['values'].shape} and "
              f"'log_temperature' {arrays['log_temperature'].shape} must be (M, {dim}), (M,) and (1,)")


ARRAY_CHECKS = {"linear": _check_mlp, "mlp": _check_mlp, "mlp_clf": _check_mlp, "gbdt": _check_trees,
                "laplace": _check_laplace, "prototype": _check_prototype}
"""Head kind -> the check of its members' arrays (layers, or trees) before the numpy forward reads them: a head
kind registered in `rmsearch.heads` exports once its array layout has a check here."""
HEAD_KINDS = tuple(ARRAY_CHECKS)
