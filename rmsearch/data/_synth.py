"""The built-in gold world: candidate sets with a hidden gold reward, deterministic from a seed.

It is built to show reward over-optimization. Each response has latent features: a few *quality* features that
gold rewards linearly, and one *tail* feature t that gold likes in moderation and stops rewarding at extremes
(tail term = w·2τt/(τ² + t²): rising up to t = τ = tail_peak, then falling back towards 0). The tail feature is
Student-t distributed: training responses rarely reach the extremes and their labels there are as noisy as
anywhere, so a head learns "more t is better"; a best-of-500 pool does reach them, and a proxy that
extrapolates trades real quality for t that gold no longer rewards. Gold stays bounded, so std(g) (and with it
the annotators' noise) is not dominated by a few outliers. (The heavy tail sits on the feature
itself: a heavy-tailed vector projected onto a direction is nearly Gaussian.) A random rotation mixes the
latent features into the observed embedding, so no single coordinate gives the game away.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from rmsearch.data._kinds import CandidateSet, GoldData
from rmsearch.errors import DataError


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    """Everything below is drawn from this seed; the same seed gives the same arrays bit for bit."""
    dim: int = 32
    """Embedding dimension D (at least quality + 2)."""
    train_prompts: int = 1000
    train_responses: int = 10
    test_prompts: int = 400
    test_responses: int = 500
    quality: int = 4
    """Number of latent features gold rewards linearly."""
    tail_df: float = 2.5
    """Degrees of freedom of the Student-t tail feature (smaller = heavier tail = stronger over-optimization)."""
    tail_peak: float = 3.0
    """Value of the tail feature gold likes best; beyond it the tail term falls back towards 0."""
    tail_weight: float = 1.0
    """Height of the tail term's peak, relative to the quality features (weights of about 0.5 each)."""
    prompt_scale: float = 0.5
    """Spread of per-prompt offsets (prompts differ in where their responses sit)."""

    def validate(self) -> "SynthConfig":
        if self.dim < self.quality + 2:
            raise DataError(f"synth dim={self.dim} is too small: it needs at least quality + 2 = {self.quality + 2}.")
        for name in ("train_prompts", "test_prompts"):
            if getattr(self, name) < 1:
                raise DataError(f"synth {name}={getattr(self, name)} must be at least 1.")
        for name in ("train_responses", "test_responses"):
            if getattr(self, name) < 2:
                raise DataError(f"synth {name}={getattr(self, name)}: best-of-N and pairs need at least 2.")
        if self.tail_df <= 1:
            raise DataError(f"synth tail_df={self.tail_df} must be > 1 (the tail feature needs a finite mean).")
        return self


class GoldWorld:
    """Latent structure shared by both splits of one seed."""

    def __init__(self, config: SynthConfig):
        self.config = config.validate()
        rng = np.random.default_rng([config.seed, 0])
        self.rotation, _ = np.linalg.qr(rng.standard_normal((config.dim, config.dim)))
        self.quality_weights = rng.uniform(0.5, 1.0, config.quality) / np.sqrt(config.quality)

    def gold_of_latent(self, z: np.ndarray) -> np.ndarray:
        c = self.config
        t = z[..., 0]
        tail = c.tail_weight * 2 * c.tail_peak * t / (c.tail_peak**2 + t**2)
        return z[..., 1 : 1 + c.quality] @ self.quality_weights + tail

    def sample(self, prompts: int, responses: int, stream: int) -> CandidateSet:
        c = self.config
        rng = np.random.default_rng([c.seed, stream])
        z = rng.standard_normal((prompts, responses, c.dim))
        z += c.prompt_scale * rng.standard_normal((prompts, 1, c.dim))
        z[..., 0] = rng.standard_t(c.tail_df, (prompts, responses)) + c.prompt_scale * rng.standard_normal((prompts, 1))
        gold = self.gold_of_latent(z)
        emb = (z @ self.rotation.T).astype(np.float32)
        return CandidateSet(embeddings=emb, gold=gold.astype(np.float32))


def synth(config: SynthConfig | None = None) -> GoldData:
    config = config or SynthConfig()
    world = GoldWorld(config)
    fp = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]
    return GoldData(
        train=world.sample(config.train_prompts, config.train_responses, stream=1),
        test=world.sample(config.test_prompts, config.test_responses, stream=2),
        name=f"synth-seed{config.seed}", fingerprint=fp, files={},
    )
