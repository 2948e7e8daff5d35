"""`choose_pairs`: the one call that picks which of a user's candidate pairs to label next, with its input checks."""

from __future__ import annotations

import numpy as np

from rmsearch.active._rules import RULES, Candidates, SelectionRule
from rmsearch.errors import ConfigError, DataError


def choose_pairs(X, a, b, k: int, rule: str | SelectionRule = "dopt", *, labelled=None, scores=None,
                 features=None, seed: int = 0) -> np.ndarray:
    """Indices of the k candidate pairs (a[i], b[i]) over the rows of X to send to annotators next.

    X: (rows, D) embeddings of the responses; a, b: (pairs,) row indices of the candidate pairs.
    rule: a name of `RULES` (random, disagreement, dopt, coreset) or a `SelectionRule` object (e.g.
        `DOptimal(ridge=0.5)`).
    labelled: pairs labelled already, as indices into a/b or a (pairs,) bool mask; never chosen again (dopt and
        coreset start from them).
    scores: (members, rows) the ensemble members' raw scores of X's rows, in the head's logit units; needed by
        disagreement, used by dopt for its information weights p(1 − p).
    features: (rows, d) what dopt and coreset measure pairs in (default X): the features the head's last layer
        sees, e.g. standardized embeddings for a linear head.
    seed: seeds the random rule and coreset's first pick when nothing is labelled; the same inputs and seed give
        the same pairs.

    Returns (k,) int64 distinct indices into a/b of unlabelled pairs, in the order the rule chose them.
    """
    picked = _rule(rule)
    X = _rows(X, "X")
    a, b = _pairs(a, b, len(X))
    mask = _labelled(labelled, len(a))
    free = int((~mask).sum())
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k={k!r}: the number of pairs to choose must be a positive integer.")
    if k > free:
        raise ConfigError(f"k={k}: only {free} of the {len(a)} candidate pairs are unlabelled; ask for at most {free}, "
                          f"or add candidate pairs.")
    pool = Candidates(features=X if features is None else _rows(features, "features", len(X)), a=a, b=b,
                      labelled=mask, scores=_scores(scores, len(X), picked))
    out = np.asarray(picked.select(pool, int(k), np.random.default_rng(seed)), np.int64)
    if out.shape != (k,) or len(np.unique(out)) != k or mask[out].any():
        raise ConfigError(f"selection rule {picked.name!r} broke its contract: it must return {k} distinct indices of "
                          f"unlabelled pairs. Fix the rule's select().")
    return out


def _rule(rule) -> SelectionRule:
    if isinstance(rule, SelectionRule):
        return rule
    if isinstance(rule, str) and rule in RULES:
        return RULES[rule]
    known = ", ".join(f"{name} ({r.description})" for name, r in RULES.items())
    raise ConfigError(f"rule={rule!r} is unknown; use one of: {known}.")


def _rows(X, name: str, rows: int | None = None) -> np.ndarray:
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        try:
            X = np.asarray(X, np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{name}: cannot be read as numbers; pass a (rows, dims) numeric array.") from None
    if len(X.shape) != 2 or X.shape[0] < 1 or X.shape[1] < 1 or not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{name}: must be a non-empty (rows, dims) numeric array, got shape {tuple(X.shape)} of "
                        f"{X.dtype}.")
    if rows is not None and X.shape[0] != rows:
        raise DataError(f"{name}: has {X.shape[0]} rows but X has {rows}; give one row per row of X.")
    return X


def _index(v, name: str) -> np.ndarray:
    arr = np.asarray(v)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise DataError(f"{name}: must be a 1-d array of integer indices, got shape {arr.shape} of {arr.dtype}.")
    return arr.astype(np.int64)


def _pairs(a, b, rows: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _index(a, "a"), _index(b, "b")
    if len(a) != len(b) or len(a) == 0:
        raise DataError(f"a and b: must be non-empty and of one length (one entry per candidate pair), got {len(a)} "
                        f"and {len(b)}.")
    for name, v in (("a", a), ("b", b)):
        if v.min() < 0 or v.max() >= rows:
            raise DataError(f"{name}: row indices must lie in [0, {rows}) (X has {rows} rows), got {v.min()} .. "
                            f"{v.max()}.")
    return a, b


def _labelled(labelled, pairs: int) -> np.ndarray:
    mask = np.zeros(pairs, bool)
    if labelled is None:
        return mask
    arr = np.asarray(labelled)
    if arr.dtype == bool:
        if arr.shape != (pairs,):
            raise DataError(f"labelled: a bool mask needs one entry per candidate pair ({pairs}), got shape "
                            f"{arr.shape}.")
        return arr.copy()
    arr = _index(arr, "labelled")
    if len(arr) and (arr.min() < 0 or arr.max() >= pairs):
        raise DataError(f"labelled: pair indices must lie in [0, {pairs}) (there are {pairs} candidate pairs), got "
                        f"{arr.min()} .. {arr.max()}.")
    mask[arr] = True
    return mask


def _scores(scores, rows: int, rule: SelectionRule) -> np.ndarray | None:
    if scores is None:
        if rule.min_members:
            raise ConfigError(f"rule {rule.name!r} needs scores=: the raw scores of X's rows by each of at least "
                              f"{rule.min_members} ensemble members, shape (members, rows).")
        return None
    s = np.asarray(scores, np.float64)
    s = s[None] if s.ndim == 1 else s
    if s.ndim != 2 or s.shape[1] != rows:
        raise DataError(f"scores: must be (members, rows) with one column per row of X ({rows}), got shape "
                        f"{np.shape(scores)}.")
    if len(s) < rule.min_members:
        raise ConfigError(f"rule {rule.name!r} needs the scores of at least {rule.min_members} members (got "
                          f"{len(s)}): it measures how much they disagree.")
    if not np.isfinite(s).all():
        raise DataError("scores: contain NaN or inf; score every row of X with finite values.")
    return s
