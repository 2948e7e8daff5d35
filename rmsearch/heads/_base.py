"""The head protocol: every reward head type is one module implementing `Head`.

A head maps an embedding (D,) to a scalar reward. One `Head` object holds one member per seed: independently
trained copies of one configuration (an ensemble group), trained together where the type allows it. A member
is identified by (config, seed) alone, whatever group it was trained in, so a cache can reuse it.

    head = make_head(MLPConfig(hidden=(256, 128)), seeds=(0, 1, 2))        # hyperparameters only
    head.fit(task.train, stop=task.stop)                                    # returns self
    head.score(X)            # (members, n) float32 rewards
    head.member_arrays()     # [ {name: ndarray}, ... ] one dict per member: all learned state
    type(head).from_arrays(config, [arrays, ...])                           # rebuild, identical scores

Every member's learned state is a dict of plain numpy arrays, scored without torch by
`rmsearch.heads.forward(kind, arrays, X)`; that is what export writes and what loading reads back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

from rmsearch.errors import ConfigError


@dataclass(frozen=True)
class HeadConfig:
    """Base of every head type's typed config. Subclasses add their fields, each with a docstring."""

    kind: ClassVar[str] = ""

    def validate(self) -> "HeadConfig":
        return self

    def to_dict(self) -> dict:
        return {"kind": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}}

    @classmethod
    def from_dict(cls, values: dict) -> "HeadConfig":
        """Build from plain values (YAML, JSON, Optuna params), refusing unknown keys by name."""
        values = {k: v for k, v in values.items() if k != "kind"}
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"head '{cls.kind}' has no parameter {', '.join(map(repr, unknown))}; its parameters are "
                f"{', '.join(sorted(known))}."
            )
        kw = {}
        for name, val in values.items():
            default = getattr(cls, name, None)
            if isinstance(default, tuple) and isinstance(val, (list, tuple)):
                val = tuple(int(v) for v in val)
            elif isinstance(default, bool):
                val = bool(val)
            elif isinstance(default, int) and not isinstance(default, bool):
                if isinstance(val, float) and not val.is_integer():
                    raise ConfigError(f"head '{cls.kind}' parameter {name}={val} must be an integer.")
                val = int(val)
            elif isinstance(default, float):
                val = float(val)
            kw[name] = val
        return cls(**kw).validate()


class Head(ABC):
    """Protocol for reward heads: construct with hyperparameters only, `fit` on pairs, `score` embeddings."""

    kind: ClassVar[str]
    Config: ClassVar[type[HeadConfig]]

    def __init__(self, config: HeadConfig, seeds: tuple[int, ...] = (0,)):
        self.config = config
        self.seeds = tuple(seeds)

    @property
    def members(self) -> int:
        return len(self.seeds)

    @abstractmethod
    def fit(self, train, stop=None) -> "Head":
        """Train all members on `train` (Pairs); `stop` (Pairs) drives early stopping where the type has it.
        Sets `history_`: a list of per-epoch dicts of per-member arrays (train/loss, val/nll, val/accuracy)."""

    @abstractmethod
    def member_arrays(self) -> list[dict[str, np.ndarray]]:
        """All learned state, one dict of named numpy arrays per member."""

    @classmethod
    @abstractmethod
    def from_arrays(cls, config: HeadConfig, arrays: list[dict[str, np.ndarray]]) -> "Head":
        """Rebuild a fitted head from `member_arrays()` output."""

    def score(self, X: np.ndarray) -> np.ndarray:
        """(members, n) float32 rewards for the rows of X (n, D)."""
        from rmsearch.heads._forward import forward

        return np.stack([forward(self.kind, a, X) for a in self.member_arrays()])

    def _check_fitted(self):
        if not hasattr(self, "arrays_"):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet. Call 'fit' with training pairs first.")
