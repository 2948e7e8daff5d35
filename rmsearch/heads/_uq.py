"""Configs, registrations and numpy forwards of the heads that carry their own uncertainty or learn prototypes:
`laplace` (a Bayesian Bradley-Terry linear head) and `prototype` (rewards as similarity-weighted prototype
values). Torch-free, like `_configs`: spaces, the CLI and export loading use them without training code.

A head type with its own uncertainty also registers a *std forward* here (`STD_FORWARDS`): one member's
predictive standard deviation of its reward for each row, from its arrays with numpy alone, in the units of its
raw scores. `forward_std(kind, arrays, X)` runs it and gives None for head types without one.

Arrays of a `laplace` member:
    mean, scale (D,)   optional: input standardization, x -> (x - mean) / scale
    w0 (D, 1), b0 (1,) the MAP weights θ (b0 is 0: a bias cancels in Bradley-Terry differences)
    cov_factor (D, D)  F with F Fᵀ = prior_scale² · H⁻¹ (H the posterior precision at the MAP); a row's std is
                       ‖x̃ F‖ for its standardized x̃, so scoring needs no inverse and no torch
Arrays of a `prototype` member:
    mean, scale (D,)   optional: input standardization
    prototypes (M, D)  the learned prototypes (in the standardized space)
    values (M,)        each prototype's learned value
    log_temperature (1,)  the softmax temperature τ = exp(log_temperature)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rmsearch.heads._base import HeadConfig, HeadKind, check_fields, head_kind, register_head
from rmsearch.heads._forward import mlp_forward


@dataclass(frozen=True)
class LaplaceConfig(HeadConfig):
    """Bayesian Bradley-Terry linear head (Laplace approximation). The MAP weights θ are the L2-penalized logistic
    regression on pair differences z = x_a − x_b (labels y, no intercept): θ minimizes ½λ‖θ‖² + Σ log-loss, the
    same model as scikit-learn's `LogisticRegression(C=1/λ, fit_intercept=False)` on (z, y). The posterior
    precision at θ is H = λI + Σ σ′(θᵀz) z zᵀ; a response's reward is θᵀx with standard deviation
    prior_scale · √(xᵀH⁻¹x) (x standardized when `normalize`, so the std is that of the reward relative to the
    mean training response). Trained exactly by Newton's method, on the early-stopping pairs too (it has no
    early stopping)."""

    kind = "laplace"
    lam: float = 1.0
    """λ: the prior precision of θ (L2 strength; scikit-learn's C is 1/λ)."""
    prior_scale: float = 1.0
    """Multiplies the posterior std (1: the Laplace posterior as it is; larger widens every bound)."""
    normalize: bool = True
    """Standardize inputs with the training rows' mean and std (stored with the member)."""
    bootstrap: bool = False
    """Each member weights pairs by its own Poisson(1) draw (otherwise members of one config are identical)."""

    def validate(self) -> "LaplaceConfig":
        checks = [(np.isfinite(self.lam) and self.lam > 0, "lam must be > 0"),
                  (np.isfinite(self.prior_scale) and self.prior_scale > 0, "prior_scale must be > 0")]
        return check_fields(self, checks)


@dataclass(frozen=True)
class PrototypeConfig(HeadConfig):
    """Prototype head: M learned prototypes p_j in (standardized) embedding space, each with a learned value v_j;
    a response's reward is Σ_j softmax_j(−‖x − p_j‖² / (τ·D)) · v_j, trained with the Bradley-Terry loss by Adam.
    Few parameters per dimension, so it suits small data."""

    kind = "prototype"
    prototypes: int = 16
    """M, the number of prototypes (initialized at training rows drawn from the member's seed)."""
    lr: float = 0.03
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Decoupled weight decay (AdamW) on the prototypes and values."""
    epochs: int = 30
    """Passes over the training pairs."""
    batch_size: int = 512
    """Pairs per optimizer step."""
    normalize: bool = True
    """Standardize inputs with the training rows' mean and std (stored with the member)."""
    bootstrap: bool = False
    """Each member weights pairs by its own Poisson(1) draw."""

    def validate(self) -> "PrototypeConfig":
        checks = [(self.prototypes >= 1, "prototypes must be >= 1"), (self.lr > 0, "lr must be > 0"),
                  (self.weight_decay >= 0, "weight_decay must be >= 0"), (self.epochs >= 1, "epochs must be >= 1"),
                  (self.batch_size >= 1, "batch_size must be >= 1")]
        return check_fields(self, checks)


def _standardized(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    x = np.asarray(X, dtype=np.float32)
    if "mean" in arrays:
        x = (x - arrays["mean"]) / arrays["scale"]
    return x


def laplace_std(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Posterior std (n,) float32 of one `laplace` member's reward for rows X: ‖x̃ F‖ with F = cov_factor."""
    x = _standardized(arrays, X).astype(np.float64)
    return np.sqrt(np.square(x @ arrays["cov_factor"].astype(np.float64)).sum(1)).astype(np.float32)


def prototype_forward(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Rewards (n,) float32 of one `prototype` member: softmax-similarity-weighted prototype values."""
    x = _standardized(arrays, X).astype(np.float64)
    P = arrays["prototypes"].astype(np.float64)
    tau = float(np.exp(np.asarray(arrays["log_temperature"], np.float64).reshape(-1)[0]))
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ P.T + (P * P).sum(1)[None, :]
    logits = -d2 / (tau * P.shape[1])
    logits -= logits.max(1, keepdims=True)
    w = np.exp(logits)
    return ((w @ arrays["values"].astype(np.float64)) / w.sum(1)).astype(np.float32)


STD_FORWARDS: dict[str, Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]] = {}
"""Head type -> one member's predictive std (n,) from its arrays, for the types that have their own uncertainty."""


def forward_std(kind: str, arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray | None:
    """One member's own predictive std (n,) float32 for rows X, in raw score units; None for head types without
    one (their uncertainty is the spread over an ensemble's members). An unknown `kind` is a ConfigError."""
    head_kind(kind)
    f = STD_FORWARDS.get(kind)
    return None if f is None else f(arrays, X)


def _laplace_size(arrays: dict[str, np.ndarray]) -> int:
    return int(arrays["w0"].size)


def _prototype_size(arrays: dict[str, np.ndarray]) -> int:
    return int(arrays["prototypes"].size + arrays["values"].size + 1)


def _kind(config, head, forward, size) -> HeadKind:
    """A HeadKind with its size function where the registry takes one (`HeadKind.size`)."""
    try:
        return HeadKind(config, head, forward, size=size)
    except TypeError:
        return HeadKind(config, head, forward)


register_head(_kind(LaplaceConfig, "rmsearch.heads.laplace:LaplaceHead", mlp_forward, _laplace_size))
STD_FORWARDS["laplace"] = laplace_std
register_head(_kind(PrototypeConfig, "rmsearch.heads.prototype:PrototypeHead", prototype_forward, _prototype_size))
