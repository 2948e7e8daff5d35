"""Simulated annotators: turn candidate sets with gold rewards into labelled training pairs, as the seed does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.errors import ConfigError


@dataclass(frozen=True)
class Pairs:
    """Labelled pairs over the rows of `X`: `y[i] = 1` means row `a[i]` is preferred over row `b[i]`.

    Each pair appears once, in one ordering. `X` is usually a view of a memory-mapped split (no copy); it is
    None where the indices refer to the rows of an evaluation `Split`.
    """

    X: np.ndarray | None
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, idx: np.ndarray) -> "Pairs":
        return Pairs(self.X, self.a[idx], self.b[idx], self.y[idx])

    def join(self, other: "Pairs") -> "Pairs":
        """These pairs followed by `other`'s, over one `X` (no copy where both index the same array)."""
        if other.X is self.X:
            return Pairs(self.X, np.concatenate([self.a, other.a]), np.concatenate([self.b, other.b]),
                         np.concatenate([self.y, other.y]))
        n = len(self.X)
        return Pairs(np.concatenate([self.X, other.X]), np.concatenate([self.a, other.a + n]),
                     np.concatenate([self.b, other.b + n]), np.concatenate([self.y, other.y]))


NOISE_LEVELS = (0.05, 0.15, 0.25, 0.40)
"""Label flip rates of the seed's case study (about its 5/15/25/40% label error): the stress test of a launch and
`reproduce` retrain at these."""


@dataclass(frozen=True)
class Annotator:
    """How simulated annotators pick and label pairs.

    pairing: "within" (two responses of one prompt) or "cross" (responses of two different prompts).
    quality: Bradley-Terry annotation quality q, P(a ≻ b) = σ(q·(g_a − g_b)/std(g)); higher is cleaner.
    flip_rate: if set, label by gold and flip each label with this probability instead of the BT draw.
    pairs_per_prompt: pairs drawn per prompt (within: disjoint response pairs while they last). 10, as the seed
        paper's code draws from its 10 responses per prompt, so recipes compare on the same amount of data.
    """

    pairing: str = "within"
    quality: float = 2.0
    flip_rate: float | None = None
    pairs_per_prompt: int = 10

    def validate(self) -> "Annotator":
        if self.pairing not in ("within", "cross"):
            raise ConfigError(f"annotator pairing={self.pairing!r} is unknown; use 'within' or 'cross'.")
        if self.flip_rate is not None and not 0 <= self.flip_rate < 0.5:
            raise ConfigError(f"annotator flip_rate={self.flip_rate} must be in [0, 0.5): at 0.5 labels carry no "
                              f"signal.")
        if self.flip_rate is None and self.quality <= 0:
            raise ConfigError(f"annotator quality={self.quality} must be > 0 (larger is cleaner).")
        if self.pairs_per_prompt < 1:
            raise ConfigError(f"annotator pairs_per_prompt={self.pairs_per_prompt} must be at least 1.")
        return self


def draw_pairs(gold: np.ndarray, prompts: np.ndarray, annotator: Annotator, rng: np.random.Generator):
    """Return (a, b) row indices into the flattened (P·K) split for the given prompt indices."""
    P, K = gold.shape
    n = annotator.pairs_per_prompt
    if annotator.pairing == "within":
        # random permutations of each prompt's responses, read two at a time: disjoint pairs first
        per_perm = K // 2
        reps = -(-n // per_perm)
        perms = rng.permuted(np.tile(np.arange(K), (len(prompts) * reps, 1)), axis=1)
        perms = perms[:, : 2 * per_perm].reshape(len(prompts), reps * 2 * per_perm)[:, : 2 * n]
        rows = prompts[:, None] * K + perms
        return rows[:, 0::2].ravel(), rows[:, 1::2].ravel()
    a = prompts.repeat(n) * K + rng.integers(0, K, len(prompts) * n)
    other = rng.choice(prompts, size=len(prompts) * n)
    same = other == prompts.repeat(n)
    if len(prompts) > 1:
        while same.any():
            other[same] = rng.choice(prompts, size=int(same.sum()))
            same = other == prompts.repeat(n)
    b = other * K + rng.integers(0, K, len(prompts) * n)
    return a, b


def annotate(X: np.ndarray, gold: np.ndarray, prompts: np.ndarray, annotator: Annotator, seed: int):
    """Label pairs drawn from `prompts`; returns (Pairs, realized label error rate vs gold)."""
    annotator.validate()
    rng = np.random.default_rng(seed)
    a, b = draw_pairs(gold, prompts, annotator, rng)
    g = np.asarray(gold, dtype=np.float64).ravel()
    diff = g[a] - g[b]
    truth = diff > 0
    if annotator.flip_rate is not None:
        y = truth ^ (rng.random(len(a)) < annotator.flip_rate)
    else:
        p = 1.0 / (1.0 + np.exp(-annotator.quality * diff / (g.std() + 1e-12)))
        y = rng.random(len(a)) < p
    keep = diff != 0  # exact gold ties carry no preference
    error = float(np.mean(y[keep] != truth[keep])) if keep.any() else 0.0
    return Pairs(X, a[keep].astype(np.int64), b[keep].astype(np.int64), y[keep].astype(np.float32)), error
