"""The two kinds of data rmsearch works on, as plain containers (arrays may be memory maps)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rmsearch.data._validate import check_float_array, check_same_dim
from rmsearch.errors import DataError


@dataclass(frozen=True)
class CandidateSet:
    """Candidate responses with gold rewards: `embeddings (P, K, D)`, `gold (P, K)`."""

    embeddings: np.ndarray
    gold: np.ndarray

    @classmethod
    def checked(cls, embeddings: np.ndarray, gold: np.ndarray, *, names: tuple[str, str]) -> "CandidateSet":
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
        return cls(embeddings=embeddings, gold=gold)

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

    def __post_init__(self):
        check_same_dim(("train embeddings", self.train.dim), ("test embeddings", self.test.dim))

    @property
    def dim(self) -> int:
        return self.train.dim


@dataclass(frozen=True)
class PairData:
    """Kind 2: labelled preference pairs without gold: `chosen (M, D)` is preferred over `rejected (M, D)`."""

    chosen: np.ndarray
    rejected: np.ndarray
    name: str
    fingerprint: str
    files: dict[str, str] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    kind: str = "pairs"

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
        return cls(chosen=chosen, rejected=rejected, **kw)

    @property
    def dim(self) -> int:
        return self.chosen.shape[1]


Data = GoldData | PairData
