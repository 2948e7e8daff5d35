"""The built-in gold world: candidate sets with a hidden gold reward, deterministic from a seed.

It is built to show reward over-optimization. Each response has latent features: a few *quality* features that
gold rewards linearly, and one *tail* feature t that gold likes in moderation and stops rewarding at extremes:
tail term = w·u·exp((1 − u²)/2) with u = t/τ (w = tail_weight, τ = tail_peak), rising steeply up to its peak w
at t = τ and falling back to 0 beyond it (45% of the peak left at 2τ, 5% at 3τ). t is Student-t distributed
(tail_df degrees of freedom) and sits on its own latent axis (a heavy-tailed vector projected onto a direction is
nearly Gaussian, so the heavy tail is put on the feature itself).

Why a head over-optimizes. In the bulk of the responses t is gold's strongest signal (slope w·√e/τ ≈ 0.7 per
unit of t at the defaults, against 0.25–0.5 per unit of each quality feature), so every head learns "more t is
better". The fall beyond τ is supported by few training responses (at the defaults about 0.5% of them lie beyond
τ, 0.1% beyond 2τ: about 50 and 9 of the 9,000 that training pairs are drawn from) whose labels are as noisy as
anywhere, so a head fitted on them extrapolates its bulk slope; a pool of 500 holds a candidate beyond τ for 93%
of prompts and beyond 2τ for 38%, and the proxy's favourite there trades real quality for t that gold no longer
rewards. Its BoN gold curve peaks around N ≈ 100 and falls towards N = 500 while its proxy keeps rising. Members
trained on different bootstrap draws agree in the bulk and disagree in how far they extrapolate, so
conservative aggregations (min, mean − λ·var) discount those candidates and fall less. Gold stays bounded
(|tail term| ≤ w), so std(g) (and with it the annotators' noise) is not dominated by a few outliers.

Measured with `rmsearch evaluate`'s default configuration (8 bootstrapped 64-32 MLPs, annotator quality 2.0,
10 pairs per prompt) over world seeds 0–7: the single head's drop (peak − final BoN gold) exceeds 0.1 in every
seed (mean 0.48), mean falls as much (0.61), min and uwo (λ=1) fall less (0.33, 0.29) and end higher than the
single head at N = 500 in every seed; the size of the effect varies with the seed (a world whose training set
happens to hold more extreme responses teaches its heads more of the fall). `benchmarks/aggregations.py` prints
these numbers over seeds. A random rotation mixes the latent features into the observed embedding, so no single
coordinate gives the game away.
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
    """Degrees of freedom of the Student-t tail feature (smaller = heavier tail = more pools reach the extremes)."""
    tail_peak: float = 7.0
    """Value τ of the tail feature gold likes best; beyond it the tail term falls back to 0 (45% of its peak at 2τ)."""
    tail_weight: float = 3.0
    """Height of the tail term's peak, relative to the quality features (weights of 0.25–0.5 each)."""
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
        if self.tail_peak <= 0:
            raise DataError(f"synth tail_peak={self.tail_peak} must be > 0 (the value of the tail feature gold likes "
                            f"best).")
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
        u = z[..., 0] / c.tail_peak
        tail = c.tail_weight * u * np.exp((1 - u**2) / 2)
        return z[..., 1 : 1 + c.quality] @ self.quality_weights + tail

    def sample(self, prompts: int, responses: int, stream: int) -> CandidateSet:
        c = self.config
        rng = np.random.default_rng([c.seed, stream])
        z = rng.standard_normal((prompts, responses, c.dim))
        z += c.prompt_scale * rng.standard_normal((prompts, 1, c.dim))
        z[..., 0] = rng.standard_t(c.tail_df, (prompts, responses)) + c.prompt_scale * rng.standard_normal((prompts, 1))
        gold = self.gold_of_latent(z)
        return CandidateSet(embeddings=self.rotate(z), gold=gold.astype(np.float32))

    def rotate(self, z: np.ndarray) -> np.ndarray:
        """Latent (..., D) -> observed embeddings, float32. One 2-D matrix product: numpy runs a stacked
        (P, K, D) @ (D, D) product as P small ones, over ten times slower at the seed's shapes."""
        return (z.reshape(-1, z.shape[-1]) @ self.rotation.T).reshape(z.shape).astype(np.float32)

    def sample_into(self, emb: np.ndarray, gold: np.ndarray, stream: int, chunk_bytes: int = 256 << 20) -> None:
        """`sample(P, K, stream)` written into `emb` (P, K, D) and `gold` (P, K, 1) of any float dtype (e.g. .npy
        memory maps), a block of prompts at a time, so no array of the whole split is ever held.

        The values are `sample`'s (cast to the arrays' dtype): `sample` draws all latent normals first and the
        prompt offsets and tail feature after them, so a second generator on the same stream draws and discards
        the normals to reach those, and the first draws the normals block by block (numpy's Generator gives the
        same values whether an array is drawn whole or in consecutive parts). That costs the normals twice."""
        c = self.config
        prompts, responses = emb.shape[:2]
        bulk, rest = np.random.default_rng([c.seed, stream]), np.random.default_rng([c.seed, stream])
        block = max(1, chunk_bytes // (8 * responses * c.dim))
        for start in range(0, prompts, block):
            rest.standard_normal((min(block, prompts - start), responses, c.dim))
        offsets = rest.standard_normal((prompts, 1, c.dim))
        tail = rest.standard_t(c.tail_df, (prompts, responses)) + c.prompt_scale * rest.standard_normal((prompts, 1))
        for start in range(0, prompts, block):
            end = min(prompts, start + block)
            z = bulk.standard_normal((end - start, responses, c.dim))
            z += c.prompt_scale * offsets[start:end]
            z[..., 0] = tail[start:end]
            gold[start:end] = self.gold_of_latent(z)[..., None]
            emb[start:end] = self.rotate(z)


def synth(config: SynthConfig | None = None) -> GoldData:
    config = config or SynthConfig()
    world = GoldWorld(config)
    fp = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]
    return GoldData(
        train=world.sample(config.train_prompts, config.train_responses, stream=1),
        test=world.sample(config.test_prompts, config.test_responses, stream=2),
        name=f"synth-seed{config.seed}", fingerprint=fp, files={},
    )


def write_synth_folder(folder, config: SynthConfig | None = None, dtype: str = "float32") -> dict:
    """Write `synth(config)` as seed-format files (`write_seed_folder`'s names) with embeddings of `dtype`
    (float32 or float16, as the seed paper's release), streamed block by block into each file: the memory used is
    a block's, not a split's, so the seed's full shapes (a 4.1 GB float16 test split) write on a small machine.
    Rewards stay float32. Each file is written atomically (`rmsearch.files.atomic_file`)."""
    from pathlib import Path

    from rmsearch.files import atomic_file

    if dtype not in ("float32", "float16"):
        raise DataError(f"dtype={dtype!r}: the seed format's embeddings are float32 or float16; choose one.")
    config = config or SynthConfig()
    world = GoldWorld(config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"synth_seed{config.seed}_gold"
    out = {}
    for split, stream, prompts, responses in (("train", 1, config.train_prompts, config.train_responses),
                                              ("test", 2, config.test_prompts, config.test_responses)):
        paths = {kind: folder / f"{kind}_{stem}_{split}.npy" for kind in ("embd", "reward")}
        with atomic_file(paths["embd"]) as e_tmp, atomic_file(paths["reward"]) as r_tmp:
            emb = np.lib.format.open_memmap(e_tmp, mode="w+", dtype=dtype, shape=(prompts, responses, config.dim))
            gold = np.lib.format.open_memmap(r_tmp, mode="w+", dtype=np.float32, shape=(prompts, responses, 1))
            world.sample_into(emb, gold, stream)
            emb.flush()
            gold.flush()
            del emb, gold
        out.update({f"{kind}_{split}": path for kind, path in paths.items()})
    return out
