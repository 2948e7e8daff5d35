"""The two kinds of data rmsearch works on, as plain containers (arrays may be memory maps)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rmsearch.data._validate import check_float_array, check_same_dim
from rmsearch.errors import DataError


@dataclass(frozen=True)
class CandidateSet:
    """Candidate responses with gold rewards: `embeddings (P, K, D)`, `gold (P, K)`; where the data came from
    text, also each response's length in characters `lengths (P, K)` and each prompt's category `category (P,)`
    (an index into the dataset's `categories`, -1 for none)."""

    embeddings: np.ndarray
    gold: np.ndarray
    lengths: np.ndarray | None = None
    category: np.ndarray | None = None

    @classmethod
    def checked(cls, embeddings: np.ndarray, gold: np.ndarray, *, names: tuple[str, str],
                lengths: np.ndarray | None = None, category: np.ndarray | None = None) -> "CandidateSet":
        emb_name, gold_name = names
        check_float_array(emb_name, embeddings, (3,), what="(prompts, responses, dim)")
        if embeddings.shape[1] < 2:
            raise DataError(
                f"{emb_name}: has K={embeddings.shape[1]} response per prompt; best-of-N and within-prompt pairs "
                f"need K >= 2 responses for every prompt."
            )
        check_float_array(gold_name, gold, (2, 3), what="(prompts, responses) or (prompts, responses, 1)")
        if gold.ndim == 3:
            if gold.shape[2] != 1:
                raise DataError(
                    f"{gold_name}: shape {gold.shape} has a last axis of {gold.shape[2]}; gold rewards must be "
                    f"(prompts, responses) or (prompts, responses, 1). Keep one reward per response."
                )
            gold = gold[:, :, 0]
        if gold.shape != embeddings.shape[:2]:
            raise DataError(
                f"{gold_name}: shape {gold.shape} does not match {emb_name} (prompts, responses) = "
                f"{embeddings.shape[:2]}; there must be one gold reward per embedded response."
            )
        lengths = check_side_array(f"{emb_name}: lengths", lengths, embeddings.shape[:2], "(prompts, responses)")
        category = check_side_array(f"{emb_name}: category", category, embeddings.shape[:1], "(prompts,)")
        return cls(embeddings=embeddings, gold=gold, lengths=lengths, category=category)

    @property
    def prompts(self) -> int:
        return self.embeddings.shape[0]

    @property
    def responses(self) -> int:
        return self.embeddings.shape[1]

    @property
    def dim(self) -> int:
        return self.embeddings.shape[2]


@dataclass(frozen=True)
class GoldData:
    """Kind 1: a train split (few responses per prompt) and a test split (many) with gold rewards."""

    train: CandidateSet
    test: CandidateSet
    name: str
    fingerprint: str
    files: dict[str, str] = field(default_factory=dict)  # role -> path, for reports
    kind: str = "gold"
    categories: tuple[str, ...] = ()
    """Names of the categories the splits' `category` codes index."""
    meta: dict = field(default_factory=dict)
    """dataset.json of a folder written by `rmsearch data embed` (empty for the seed's release and synth)."""

    def __post_init__(self):
        check_same_dim(("train embeddings", self.train.dim), ("test embeddings", self.test.dim))

    @property
    def dim(self) -> int:
        return self.train.dim


@dataclass(frozen=True)
class PairData:
    """Kind 2: labelled preference pairs without gold: `chosen (M, D)` is preferred over `rejected (M, D)`.

    Optional, per pair: `prompts (M,)` the prompt each pair answers (int ids; splits, folds and bootstrap
    resamples go by prompt, so pairs of one prompt never straddle a split), `category (M,)` an index into
    `categories` (-1 for none), `lengths (M, 2)` the chosen and rejected responses' lengths in characters."""

    chosen: np.ndarray
    rejected: np.ndarray
    name: str
    fingerprint: str
    files: dict[str, str] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    kind: str = "pairs"
    prompts: np.ndarray | None = None
    category: np.ndarray | None = None
    lengths: np.ndarray | None = None
    categories: tuple[str, ...] = ()

    @classmethod
    def checked(cls, chosen, rejected, **kw) -> "PairData":
        check_float_array("chosen", chosen, (2,), what="(pairs, dim)")
        check_float_array("rejected", rejected, (2,), what="(pairs, dim)")
        check_same_dim(("chosen", chosen.shape[1]), ("rejected", rejected.shape[1]))
        if chosen.shape[0] != rejected.shape[0]:
            raise DataError(
                f"chosen has {chosen.shape[0]} rows but rejected has {rejected.shape[0]}; row i of each must be "
                f"the two sides of pair i."
            )
        M = chosen.shape[0]
        for name, shape, what in (("prompts", (M,), "(pairs,)"), ("category", (M,), "(pairs,)"),
                                  ("lengths", (M, 2), "(pairs, 2)")):
            kw[name] = check_side_array(name, kw.get(name), shape, what)
        return cls(chosen=chosen, rejected=rejected, **kw)

    @property
    def dim(self) -> int:
        return self.chosen.shape[1]

    @property
    def groups(self) -> np.ndarray:
        """(M,) prompt id of each pair, 0..G-1 in order of first appearance; each pair its own prompt when the
        data carries none."""
        if self.prompts is None:
            return np.arange(self.chosen.shape[0])
        _, first, inverse = np.unique(np.asarray(self.prompts), return_index=True, return_inverse=True)
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        return rank[inverse]


def check_side_array(name: str, arr: np.ndarray | None, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    """An integer side array (prompt ids, category codes, lengths) of exactly `shape`, or None."""
    if arr is None:
        return None
    arr = np.asarray(arr)
    if arr.dtype.kind not in "iu":
        raise DataError(f"{name}: dtype {arr.dtype} is not an integer type; save it as int64 "
                        f"(numpy.save(path, arr.astype(numpy.int64))).")
    if arr.shape != shape:
        raise DataError(f"{name}: shape {arr.shape} must be {shape} {what}, one entry per row of the embeddings; "
                        f"re-run `rmsearch data embed` or fix the file.")
    return arr.astype(np.int64, copy=False)


Data = GoldData | PairData
