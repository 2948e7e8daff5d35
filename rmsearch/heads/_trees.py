"""Boosted trees as plain arrays, and their numpy forward pass (no scikit-learn needed to score).

One member's arrays:
    features (d,) int64        optional: the member's random subspace; node_feature indexes into it
    baseline () float64        the raw prediction before any tree (log-odds of the positive class)
    node_feature (M,) int64    split feature of each node of all trees, concatenated
    node_threshold (M,) float64  a row goes left when x[feature] <= threshold (scikit-learn's rule)
    node_left, node_right (M,) int64  global child indices; a leaf points to itself on both sides
    node_is_leaf (M,) uint8
    node_value (M,) float64    leaf values, already scaled by the learning rate (0 on split nodes)
    tree_roots (T,) int64      global index of each tree's root; T may be 0 (baseline only)
"""

from __future__ import annotations

import numpy as np

CHUNK = 1024
"""Rows traversed at once: the (rows, trees) node arrays stay in cache (8,192 rows ran 2× slower)."""


def tree_forward(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Raw decision values (n,) float32 of one boosted-trees member for rows X (n, D).

    All trees advance one level per step over a (rows, trees) array of node indices; leaves point to
    themselves, so after as many steps as the deepest tree has levels every row sits on a leaf in every tree.
    Lookups are flat `take`s (x by row·D + feature), which numpy does several times faster than 2-d indexing.
    """
    feature = arrays["node_feature"]
    if "features" in arrays:
        feature = arrays["features"][feature]  # subspace column -> embedding dim, no copy of X's columns
    feature, thr = feature.astype(np.intp), arrays["node_threshold"]
    roots = arrays["tree_roots"].astype(np.intp)
    # next node = children[2·node + (x <= threshold)]: the right child, then the left (NaN goes right)
    children = np.stack([arrays["node_right"], arrays["node_left"]], axis=1).ravel().astype(np.intp)
    baseline = float(np.asarray(arrays["baseline"]).reshape(-1)[0])  # 0-d, or (1,) after a safetensors round trip
    out = np.full(len(X), baseline, dtype=np.float64)
    if len(roots) == 0:
        return out.astype(np.float32)
    value, depth = arrays["node_value"], _depth(arrays)
    for s in range(0, len(X), CHUNK):
        x = np.ascontiguousarray(X[s : s + CHUNK])
        flat, at_row = x.ravel(), (np.arange(len(x)) * x.shape[1])[:, None]
        node = np.broadcast_to(roots, (len(x), len(roots)))
        for _ in range(depth):
            # float32 x vs float64 threshold compares in float64, as scikit-learn does on its float64 copy
            node = children.take(2 * node + (flat.take(at_row + feature.take(node)) <= thr.take(node)))
        out[s : s + len(x)] += value.take(node).sum(1)
    return out.astype(np.float32)


def tree_parameters(arrays: dict[str, np.ndarray]) -> int:
    """Learnable numbers of one boosted-trees member: a threshold per split node, a value per leaf and the
    baseline (the child indices, leaf flags and split features are structure, not counted)."""
    return int(len(arrays["node_threshold"])) + 1


def _depth(arrays: dict[str, np.ndarray]) -> int:
    """Levels of the deepest tree: the steps from the roots until every path has reached a leaf."""
    leaf, left, right = arrays["node_is_leaf"].astype(bool), arrays["node_left"], arrays["node_right"]
    frontier, depth = arrays["tree_roots"], 0
    while len(frontier := frontier[~leaf[frontier]]):
        frontier = np.concatenate([left[frontier], right[frontier]])
        depth += 1
    return depth


TESTED_SKLEARN = "scikit-learn 1.3 to 1.9"
"""The versions whose tree internals (`_predictors`, `_baseline_prediction`, the node record) this module reads;
pyproject.toml pins the same range."""


def _internals(estimator) -> tuple[list, np.ndarray]:
    """The fitted trees and the baseline log-odds: scikit-learn keeps them in private attributes, so a release
    that renames them fails here with the fix, not with an AttributeError deep in an export."""
    try:
        predictors, baseline = estimator._predictors, estimator._baseline_prediction
        fields = predictors[0][0].nodes.dtype.names if predictors else ()
    except (AttributeError, IndexError, TypeError):
        fields = None
    need = {"feature_idx", "num_threshold", "left", "right", "is_leaf", "value", "is_categorical"}
    if fields is None or (fields and not need <= set(fields)):
        import sklearn

        raise RuntimeError(f"scikit-learn {sklearn.__version__} stores boosted trees differently from the versions "
                           f"rmsearch reads ({TESTED_SKLEARN}); install one of those, e.g. pip install "
                           f"'scikit-learn>=1.3,<1.10'.")
    return predictors, baseline


def trees_to_arrays(estimator, features: np.ndarray | None = None, n_trees: int | None = None) -> dict:
    """Arrays of a fitted binary `HistGradientBoostingClassifier` (numeric features only): its first `n_trees`
    trees (all by default). `features` is the subspace the estimator was fitted on, stored with the trees."""
    if estimator.n_trees_per_iteration_ != 1:
        raise ValueError("trees_to_arrays supports binary classifiers only (one tree per boosting round).")
    all_predictors, baseline = _internals(estimator)
    predictors = [p[0] for p in all_predictors[:n_trees]]
    cols = {k: [] for k in ("node_feature", "node_threshold", "node_left", "node_right", "node_is_leaf", "node_value")}
    roots, offset = [], 0
    for pred in predictors:
        nodes = pred.nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported (embeddings are numeric).")
        own = offset + np.arange(len(nodes))
        is_leaf = nodes["is_leaf"].astype(bool)
        cols["node_feature"].append(np.where(is_leaf, 0, nodes["feature_idx"]))
        cols["node_threshold"].append(np.where(is_leaf, 0.0, nodes["num_threshold"]))
        cols["node_left"].append(np.where(is_leaf, own, offset + nodes["left"].astype(np.int64)))
        cols["node_right"].append(np.where(is_leaf, own, offset + nodes["right"].astype(np.int64)))
        cols["node_is_leaf"].append(is_leaf)
        cols["node_value"].append(np.where(is_leaf, nodes["value"], 0.0))
        roots.append(offset)  # sklearn's root is node 0 of each predictor
        offset += len(nodes)
    dtypes = {"node_threshold": np.float64, "node_value": np.float64, "node_is_leaf": np.uint8}
    arrays = {
        k: (np.concatenate(v) if v else np.zeros(0)).astype(dtypes.get(k, np.int64)) for k, v in cols.items()
    }
    arrays["tree_roots"] = np.asarray(roots, dtype=np.int64)
    arrays["baseline"] = np.asarray(baseline, dtype=np.float64).reshape(())
    if features is not None:
        arrays["features"] = np.asarray(features, dtype=np.int64)
    return arrays
