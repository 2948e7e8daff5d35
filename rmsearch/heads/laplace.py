"""`laplace` head: a Bayesian Bradley-Terry linear head; see `LaplaceConfig`.

Training is Newton's method on ½λ‖θ‖² + Σ_i w_i·[softplus(θᵀz_i) − y_i·θᵀz_i] over pair differences z_i (w_i
the member's bootstrap weights, 1 without), from θ = 0, with step halving where a step does not lower the
objective. Newton needs the Hessian, which at the optimum is the posterior precision H = λI + Σ w_i σ′(θᵀz_i)
z_i z_iᵀ the head keeps, so the MAP fit and the posterior come from one loop. The gradient and Hessian are summed
over chunks of pairs (memory stays O(chunk·D + D²)); each iteration costs about n·D² multiply-adds, so this head
suits embeddings up to a few thousand dims. The member stores F = prior_scale · L⁻ᵀ with H = L Lᵀ (Cholesky),
so F Fᵀ = prior_scale² · H⁻¹ and a row's std is ‖x̃ F‖ (`_uq.laplace_std`).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from rmsearch.heads._base import Head
from rmsearch.heads._stats import row_stats
from rmsearch.heads._uq import LaplaceConfig, laplace_std

CHUNK = 8192
"""Pairs per block of the gradient and Hessian sums."""
MAX_ITER = 100
TOL = 1e-10
"""Newton stops when the largest step component is below TOL · (1 + ‖θ‖∞)."""


def _objective(theta, Z, y, w, lam) -> float:
    m = Z @ theta
    return float(0.5 * lam * theta @ theta + (w * (np.logaddexp(0.0, m) - y * m)).sum())


def map_and_precision(Z: np.ndarray, y: np.ndarray, lam: float, w: np.ndarray | None = None):
    """(θ, H): the MAP of the L2 logistic regression on rows Z (n, D) with targets y in [0, 1] and weights w, and
    the posterior precision H = λI + Zᵀ diag(w σ′(Zθ)) Z at θ."""
    n, D = Z.shape
    w = np.ones(n) if w is None else np.asarray(w, np.float64)
    y = np.asarray(y, np.float64)
    theta = np.zeros(D)

    def grad_hess(theta):
        g, H = lam * theta, lam * np.eye(D)
        for s in range(0, n, CHUNK):
            z = Z[s : s + CHUNK]
            p = np.exp(-np.logaddexp(0.0, -(z @ theta)))
            g = g + z.T @ (w[s : s + CHUNK] * (p - y[s : s + CHUNK]))
            H += (z * (w[s : s + CHUNK] * p * (1 - p))[:, None]).T @ z
        return g, H

    f = _objective(theta, Z, y, w, lam)
    for _ in range(MAX_ITER):
        g, H = grad_hess(theta)
        step = cho_solve(cho_factor(H, lower=True), g)
        t = 1.0
        while True:  # the objective is convex: a halved Newton step lowers it unless already at the optimum
            new = theta - t * step
            f_new = _objective(new, Z, y, w, lam)
            if f_new <= f + 1e-12 * abs(f) or t < 1e-8:
                break
            t *= 0.5
        theta, f = new, f_new
        if np.abs(t * step).max() < TOL * (1 + np.abs(theta).max()):
            break
    return theta, grad_hess(theta)[1]


class LaplaceHead(Head):
    kind = "laplace"
    Config = LaplaceConfig

    def fit(self, train, stop=None) -> "LaplaceHead":
        cfg: LaplaceConfig = self.config
        if stop is not None and len(stop):
            train = train.join(stop)  # no early stopping: the early-stop pairs are training data
        D = train.X.shape[1]
        rows = np.unique(np.concatenate([train.a, train.b]))
        mean, scale = row_stats(train.X, rows) if cfg.normalize else (np.zeros(D, np.float32), np.ones(D, np.float32))
        Z = (np.asarray(train.X[train.a], np.float64) - np.asarray(train.X[train.b], np.float64)) / scale
        y = np.asarray(train.y, np.float64)
        self.arrays_, losses = [], []
        for seed in self.seeds:
            w = np.random.default_rng([int(seed), 17]).poisson(1.0, len(train)).astype(np.float64) \
                if cfg.bootstrap else None
            theta, H = map_and_precision(Z, y, cfg.lam, w)
            L = np.linalg.cholesky(H)
            factor = cfg.prior_scale * solve_triangular(L, np.eye(D), lower=True).T  # F Fᵀ = scale² · H⁻¹
            arrays = {"w0": theta[:, None].astype(np.float32), "b0": np.zeros(1, np.float32),
                      "cov_factor": factor.astype(np.float32)}
            if cfg.normalize:
                arrays["mean"], arrays["scale"] = mean.copy(), scale.copy()
            self.arrays_.append(arrays)
            m = Z @ theta
            losses.append(float((np.logaddexp(0.0, m) - y * m).mean()))
        self.history_ = [{"train/loss": np.asarray(losses, np.float32)}]
        self.epochs_ = 1.0
        return self

    def std(self, X: np.ndarray) -> np.ndarray:
        """(members, n) posterior std of each member's reward for rows X."""
        return np.stack([laplace_std(a, X) for a in self.member_arrays()])
