"""Export: an ensemble as a folder of `manifest.json` + `members.safetensors`, and loading it back.

    write_export(out_dir, ensemble, metrics={...}, dataset={...})   # -> Path, written atomically
    load_ensemble(out_dir)                                           # -> Ensemble (numpy + safetensors only)

`manifest.json` (JSON object):
    format "rmsearch-ensemble", format_version, created (UTC ISO time), input_dim, member_count,
    members: [{index, kind, config (head config dict incl. kind), seed, stats {mean, std},
               arrays {name: {dtype, shape}}}, ...],
    aggregation {name, lambda (uwo) | kappa (lcb)}, metrics, dataset, extra,
    calibration {temperature, pairs, nll_before, nll_after, fitted_on} (optional; exports of a search have it),
    bounds {beta, definition}: the β of `Ensemble.bounds` and how the bounds are computed (optional; β = 1
               where absent),
    packages {python, rmsearch, numpy, safetensors, torch?, scikit-learn?},
    files {"members.safetensors": {sha256, size}}
`checksums.sha256`: the seal, `sha256sum` lines for manifest.json and members.safetensors.
`members.safetensors`: member i's array `name` as tensor `m{i}.{name}` (MLP layers, input standardization,
feature subspaces and boosted trees as plain arrays; see `rmsearch.heads._forward` and `rmsearch.heads._trees`).

Loading verifies the seal (so any edit to any file, the manifest included, is refused, naming the folder and the
file), the format version, every listed file's size and sha256, every manifest value and array shape before use,
and refuses a folder that holds files the manifest does not list (they are never opened).
It never unpickles and never imports torch or anything named in the folder.
"""

from rmsearch.export._format import FORMAT_VERSION, MANIFEST, MEMBERS, jsonable
from rmsearch.export._load import load_ensemble, read_manifest
from rmsearch.export._write import ensemble_from_groups, package_versions, write_export

__all__ = [
    "FORMAT_VERSION", "MANIFEST", "MEMBERS", "ensemble_from_groups", "jsonable", "load_ensemble",
    "package_versions", "read_manifest", "write_export",
]
