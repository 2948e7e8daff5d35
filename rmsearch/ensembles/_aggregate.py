"""Aggregations over member scores s_1..s_k (rows of a (k, n) array), after standardization.

mean    the average
min     worst case over members
median  the middle member
uwo     mean − λ·variance (population variance; uncertainty-weighted optimization, Coste et al. 2023)
lcb     mean − κ·std (a lower confidence bound)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.errors import ConfigError

AGGREGATIONS = ("mean", "min", "median", "uwo", "lcb")
PARAM_NAMES = {"uwo": "lambda", "lcb": "kappa"}
"""The one parameter of each aggregation that has one, by the name spaces and manifests use for it."""


@dataclass(frozen=True)
class Aggregation:
    name: str = "mean"
    param: float = 1.0
    """λ for uwo, κ for lcb; unused otherwise."""

    def validate(self) -> "Aggregation":
        if self.name not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation {self.name!r}; choose one of {', '.join(AGGREGATIONS)}.")
        if self.name in PARAM_NAMES and not (np.isfinite(self.param) and self.param >= 0):
            raise ConfigError(f"aggregation {self.name}: {PARAM_NAMES[self.name]}={self.param} must be >= 0.")
        return self

    def to_dict(self) -> dict:
        out = {"name": self.name}
        if self.name in PARAM_NAMES:
            out[PARAM_NAMES[self.name]] = self.param
        return out

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return aggregate(z, self.name, self.param)


def aggregate(z: np.ndarray, name: str = "mean", param: float = 1.0) -> np.ndarray:
    """Aggregate member scores z (k, n) -> (n,)."""
    z = np.asarray(z, dtype=np.float64)
    if name == "mean":
        return z.mean(0)
    if name == "min":
        return z.min(0)
    if name == "median":
        return np.median(z, axis=0)
    if name == "uwo":
        return z.mean(0) - param * z.var(0)
    if name == "lcb":
        return z.mean(0) - param * z.std(0)
    raise ConfigError(f"unknown aggregation {name!r}; choose one of {', '.join(AGGREGATIONS)}.")


def standardize(scores: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """(k, n) raw member scores -> standardized with per-member (mean, std) rows of `stats` (k, 2)."""
    return (np.asarray(scores, np.float64) - stats[:, :1]) / stats[:, 1:2]


def score_stats(scores: np.ndarray) -> np.ndarray:
    """Per-member (mean, std) of raw scores on the training distribution, as a (k, 2) float64 array."""
    s = np.asarray(scores, np.float64)
    std = s.std(1)
    return np.stack([s.mean(1), np.where(std > 1e-12, std, 1.0)], 1)
