"""`Ensemble`: members of any head types, their standardization statistics and an aggregation. Numpy only: this
is what an exported folder loads into, and what a trial's result is scored with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.ensembles._aggregate import Aggregation, standardize
from rmsearch.errors import DataError
from rmsearch.heads import forward


@dataclass(frozen=True)
class Member:
    kind: str
    config: dict
    seed: int
    arrays: dict[str, np.ndarray]


class Ensemble:
    """score(X) -> (n,), member_scores(X) -> (k, n) standardized, uncertainty(X) -> (n,) member std,
    preference(Xa, Xb) -> (n,) P(a ≻ b).

    `weights` are positive integer counts (default 1 each): a member of weight w enters the aggregation w times,
    as greedy selection with replacement picked it (Caruana et al. 2004). `temperature` (None: not calibrated)
    is the T of calibrated preferences σ((score(a) − score(b)) / T), fitted on validation pairs at export."""

    def __init__(self, members: list[Member], stats: np.ndarray | None, aggregation: Aggregation, dim: int,
                 weights: list[int] | None = None, temperature: float | None = None):
        self.members = members
        self.stats = stats if stats is not None else np.tile([0.0, 1.0], (len(members), 1))
        self.aggregation = aggregation
        self.dim = dim
        self.weights = np.ones(len(members), np.int64) if weights is None else np.asarray(weights, np.int64)
        self.temperature = temperature

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 1:
            size = "" if X.shape[0] == self.dim else f" (it holds {X.shape[0]} values; rows here have {self.dim})"
            raise DataError(
                f"embeddings have shape {X.shape}, a single vector{size}, but this ensemble scores rows of a 2-d array "
                f"(n, {self.dim}); pass a 2-d array, e.g. X.reshape(1, -1) for one embedding."
            )
        if X.ndim != 2:
            raise DataError(
                f"embeddings have shape {X.shape} ({X.ndim}-d) but score takes a 2-d array of rows (n, {self.dim}); "
                f"pass a 2-d array, e.g. X.reshape(-1, {self.dim})."
            )
        if X.shape[1] != self.dim:
            raise DataError(
                f"embeddings have shape {X.shape} but this ensemble scores (n, {self.dim}) arrays; embed the "
                f"texts with the model the ensemble was trained on (dim {self.dim})."
            )
        if X.dtype.kind != "f":
            raise DataError(f"embeddings have dtype {X.dtype}; convert them to float32 first.")
        return X

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        X = self._check(X)
        return np.stack([forward(m.kind, m.arrays, X) for m in self.members])

    def member_scores(self, X: np.ndarray) -> np.ndarray:
        """(k, n) member scores after standardization (the values that are aggregated)."""
        return standardize(self.raw_scores(X), self.stats)

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.aggregation(self._weighted(self.member_scores(X)))

    def uncertainty(self, X: np.ndarray) -> np.ndarray:
        """Std over members (counted by weight) of the standardized scores, per row."""
        return self._weighted(self.member_scores(X)).std(0)

    def score_and_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score(X), uncertainty(X)) from one pass of the members."""
        z = self._weighted(self.member_scores(X))
        return self.aggregation(z), z.std(0)

    def preference(self, Xa: np.ndarray, Xb: np.ndarray) -> np.ndarray:
        """P(a ≻ b) for the rows of `Xa` against the same rows of `Xb`: σ((score(a) − score(b)) / T), with the
        export's fitted `temperature` T (T = 1, the raw Bradley-Terry probability, where it has none)."""
        if np.shape(Xa) != np.shape(Xb):
            raise DataError(f"preference: Xa {np.shape(Xa)} and Xb {np.shape(Xb)} must have the same shape, one row "
                            f"of b for each row of a.")
        d = (self.score(Xa) - self.score(Xb)) / (self.temperature or 1.0)
        return np.exp(-np.logaddexp(0.0, -d))

    def _weighted(self, z: np.ndarray) -> np.ndarray:
        return z if (self.weights == 1).all() else np.repeat(z, self.weights, axis=0)

    def __len__(self) -> int:
        return len(self.members)
