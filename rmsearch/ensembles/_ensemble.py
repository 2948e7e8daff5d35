"""`Ensemble`: members of any head types, their standardization statistics and an aggregation. Numpy only: this
is what an exported folder loads into, and what a trial's result is scored with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.ensembles._aggregate import Aggregation, standardize, total_std
from rmsearch.errors import ConfigError, DataError
from rmsearch.heads import forward, forward_std

BETA = 1.0
"""Default width of `Ensemble.bounds`: mean ± β·std."""
BOUND_RULE = ("reward = the aggregation; lower, upper = mean ± β·std over the standardized members, where std² = "
              "variance over members + mean of the members' own posterior variances (law of total variance: a "
              "laplace member adds its posterior variance, other head types none)")
"""The definition of `Ensemble.bounds`, as exports record it."""


@dataclass(frozen=True)
class Member:
    kind: str
    config: dict
    seed: int
    arrays: dict[str, np.ndarray]


class Ensemble:
    """score(X) -> (n,), member_scores(X) -> (k, n) standardized, uncertainty(X) -> (n,) member std,
    preference(Xa, Xb) -> (n,) P(a ≻ b), bounds(X) -> (reward, lower, upper) each (n,).

    `beta` is the default width of `bounds` (see `BOUND_RULE`); exports record it.

    `weights` are positive integer counts (default 1 each): a member of weight w enters the aggregation w times,
    as greedy selection with replacement picked it (Caruana et al. 2004). `temperature` (None: not calibrated)
    is the T of calibrated preferences σ((score(a) − score(b)) / T), fitted on validation pairs at export."""

    def __init__(self, members: list[Member], stats: np.ndarray | None, aggregation: Aggregation, dim: int,
                 weights: list[int] | None = None, temperature: float | None = None, beta: float = BETA):
        self.members = members
        self.stats = stats if stats is not None else np.tile([0.0, 1.0], (len(members), 1))
        self.aggregation = aggregation
        self.dim = dim
        self.weights = np.ones(len(members), np.int64) if weights is None else np.asarray(weights, np.int64)
        self.temperature = temperature
        self.beta = beta

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        X = _check_rows(X, self.dim)
        return np.stack([forward(m.kind, m.arrays, X) for m in self.members])

    def member_scores(self, X: np.ndarray) -> np.ndarray:
        """(k, n) member scores after standardization (the values that are aggregated)."""
        return standardize(self.raw_scores(X), self.stats)

    @property
    def has_own_std(self) -> bool:
        """Whether any member carries its own predictive std (a `laplace` member)."""
        from rmsearch.heads import STD_FORWARDS

        return any(m.kind in STD_FORWARDS for m in self.members)

    def member_std(self, X: np.ndarray) -> np.ndarray:
        """(k, n) each member's own predictive std in standardized units (its raw std / its stats std); 0 for
        members of head types without one."""
        X = _check_rows(X, self.dim)
        out = np.zeros((len(self.members), len(X)))
        for i, m in enumerate(self.members):
            sd = forward_std(m.kind, m.arrays, X)
            if sd is not None:
                out[i] = np.asarray(sd, np.float64) / self.stats[i, 1]
        return out

    def score(self, X: np.ndarray) -> np.ndarray:
        z, own = _parts(self, X)
        return self.aggregation(z, own)

    def uncertainty(self, X: np.ndarray) -> np.ndarray:
        """Std over members (counted by weight) of the standardized scores, per row."""
        return _repeat(self.member_scores(X), self.weights).std(0)

    def score_and_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score(X), uncertainty(X)) from one pass of the members."""
        z, own = _parts(self, X)
        return self.aggregation(z, own), z.std(0)

    def score_all(self, X: np.ndarray, beta: float | None = None) -> tuple[np.ndarray, ...]:
        """(score, uncertainty, lower, upper) of `score_and_uncertainty` and `bounds`, from one pass of the members."""
        beta = _check_beta(self.beta if beta is None else beta)
        z, own = _parts(self, X)
        center, spread = z.mean(0), total_std(z, own)
        return self.aggregation(z, own), z.std(0), center - beta * spread, center + beta * spread

    def bounds(self, X: np.ndarray, beta: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(reward, lower, upper), each (n,): reward = `score(X)`; lower, upper = mean ± β·std of the standardized
        members, std² = variance over members + mean own posterior variance (`BOUND_RULE`). `beta` defaults to
        the ensemble's `beta`."""
        score, _, lower, upper = self.score_all(X, beta)
        return score, lower, upper

    def preference(self, Xa: np.ndarray, Xb: np.ndarray) -> np.ndarray:
        """P(a ≻ b) for the rows of `Xa` against the same rows of `Xb`: σ((score(a) − score(b)) / T), with the
        export's fitted `temperature` T (T = 1, the raw Bradley-Terry probability, where it has none)."""
        if np.shape(Xa) != np.shape(Xb):
            raise DataError(f"preference: Xa {np.shape(Xa)} and Xb {np.shape(Xb)} must have the same shape, one row "
                            f"of b for each row of a.")
        d = (self.score(Xa) - self.score(Xb)) / (self.temperature or 1.0)
        return np.exp(-np.logaddexp(0.0, -d))

    def __len__(self) -> int:
        return len(self.members)


def _check_rows(X: np.ndarray, dim: int) -> np.ndarray:
    """X as a 2-d float array of rows of `dim` values, or a DataError saying how to pass it."""
    X = np.asarray(X)
    if X.ndim == 1:
        size = "" if X.shape[0] == dim else f" (it holds {X.shape[0]} values; rows here have {dim})"
        raise DataError(
            f"embeddings have shape {X.shape}, a single vector{size}, but this ensemble scores rows of a 2-d array "
            f"(n, {dim}); pass a 2-d array, e.g. X.reshape(1, -1) for one embedding."
        )
    if X.ndim != 2:
        raise DataError(
            f"embeddings have shape {X.shape} ({X.ndim}-d) but score takes a 2-d array of rows (n, {dim}); "
            f"pass a 2-d array, e.g. X.reshape(-1, {dim})."
        )
    if X.shape[1] != dim:
        raise DataError(
            f"embeddings have shape {X.shape} but this ensemble scores (n, {dim}) arrays; embed the "
            f"texts with the model the ensemble was trained on (dim {dim})."
        )
    if X.dtype.kind != "f":
        raise DataError(f"embeddings have dtype {X.dtype}; convert them to float32 first.")
    return X


def _parts(ensemble: Ensemble, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Weighted standardized member scores and, where any member has one, their own variances."""
    own = _repeat(ensemble.member_std(X), ensemble.weights) ** 2 if ensemble.has_own_std else None
    return _repeat(ensemble.member_scores(X), ensemble.weights), own


def _check_beta(beta) -> float:
    """`beta` as a float, or a ConfigError where it is not a finite number >= 0."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating)) or not np.isfinite(beta) \
            or beta < 0:
        raise ConfigError(f"bounds: beta={beta!r} must be a finite number >= 0 (the bounds are mean ± β·std), "
                          f"e.g. 1.0.")
    return float(beta)


def _repeat(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Member rows of `z` each repeated by its weight (as greedy selection with replacement counts them)."""
    return z if (weights == 1).all() else np.repeat(z, weights, axis=0)
