"""Training for the torch heads (linear, mlp, mlp_clf): all members of one configuration at once.

Members' weights are stacked along a leading axis and every layer is one batched matmul, so K members cost one
optimizer step. Each step takes a batch of pairs (each pair once, in one ordering), scores each unique row of
the batch once per member, and forms pair differences from those scores. Members differ by seed: their init,
bootstrap weights and feature subspace all come from it; the batch order comes from the configuration alone, so
a member is the same whatever group it is trained in (dropout masks aside).
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from rmsearch.data._annotate import Pairs
from rmsearch.heads._base import Head
from rmsearch.heads._configs import TorchHeadConfig

SCORE_CHUNK = 65536


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Native bf16 matmul (AVX512-BF16 or AMX); without it bf16 autocast is slower than fp32."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


BF16_MIN_DIM = 512
"""'auto' uses bf16 from this input dim up: on small layers autocast's casts cost more than bf16 matmuls save
(measured on a 2-core AVX512-BF16 CPU: 8 members, D=32, hidden 64-32, bf16 ran 7× slower than fp32)."""


def use_bf16(precision: str, dim: int) -> bool:
    return precision == "bf16" or (precision == "auto" and dim >= BF16_MIN_DIM and cpu_has_bf16())


def _row_stats(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of X[rows] in float64, streamed in chunks (X may be a memory map)."""
    total = np.zeros(X.shape[1])
    sq = np.zeros(X.shape[1])
    for s in range(0, len(rows), SCORE_CHUNK):
        block = np.asarray(X[rows[s : s + SCORE_CHUNK]], dtype=np.float64)
        total += block.sum(0)
        sq += (block**2).sum(0)
    mean = total / len(rows)
    std = np.sqrt(np.maximum(sq / len(rows) - mean**2, 0))
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


class TorchHead(Head):
    """Stacked-member torch head. Subclasses set `kind`, `Config` and `pointwise`."""

    pointwise: ClassVar[bool] = False
    """False: Bradley-Terry on score differences. True: classifier, winner = 1, loser = 0."""

    # ---- parameters -------------------------------------------------------------------------------------
    def _init_params(self, d_in: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        sizes = [d_in, *self.config.hidden, 1]
        layers = []
        for j, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1.0 / np.sqrt(fan_in)  # torch.nn.Linear's default init
            W, b = [], []
            for seed in self.seeds:
                g = torch.Generator().manual_seed(int(seed) * 7919 + j)
                W.append(torch.empty(fan_in, fan_out).uniform_(-bound, bound, generator=g))
                b.append(torch.empty(1, fan_out).uniform_(-bound, bound, generator=g))
            layers.append((torch.stack(W).requires_grad_(), torch.stack(b).requires_grad_()))
        return layers

    def _forward(self, x: torch.Tensor, layers, features, dropout: float = 0.0) -> torch.Tensor:
        """x (U, D) normalized rows -> (k, U) scores."""
        h = x[:, features].transpose(0, 1).contiguous() if features is not None else x
        for j, (W, b) in enumerate(layers):
            h = torch.matmul(h, W) + b
            if j < len(layers) - 1:
                h = F.relu(h)
                if dropout > 0:
                    h = F.dropout(h, dropout, training=True)
        return h[..., 0]

    def _loss(self, s: torch.Tensor, ia, ib, t: torch.Tensor) -> torch.Tensor:
        """Per-member, per-pair loss (k, B) from row scores s (k, U) and soft targets t (B,)."""
        sa, sb = s[:, ia], s[:, ib]
        if self.pointwise:
            t2 = t.expand_as(sa)
            return 0.5 * (F.binary_cross_entropy_with_logits(sa, t2, reduction="none")
                          + F.binary_cross_entropy_with_logits(sb, 1 - t2, reduction="none"))
        return F.binary_cross_entropy_with_logits(sa - sb, t.expand_as(sa), reduction="none")

    # ---- fit --------------------------------------------------------------------------------------------
    def fit(self, train: Pairs, stop: Pairs | None = None) -> "TorchHead":
        cfg: TorchHeadConfig = self.config
        k, D = len(self.seeds), train.X.shape[1]
        torch.manual_seed(zlib.crc32(json.dumps(cfg.to_dict(), sort_keys=True).encode()))
        rows = np.unique(np.concatenate([train.a, train.b]))
        mean, scale = _row_stats(train.X, rows) if cfg.normalize else (np.zeros(D, np.float32), np.ones(D, np.float32))
        self._mean, self._scale = torch.from_numpy(mean), torch.from_numpy(scale)
        member_rngs = [np.random.default_rng([int(s), 17]) for s in self.seeds]
        if cfg.feature_fraction < 1:
            d = max(1, int(round(cfg.feature_fraction * D)))
            self._features = torch.from_numpy(np.stack([np.sort(r.choice(D, d, replace=False)) for r in member_rngs]))
        else:
            d, self._features = D, None
        weights = None
        if cfg.bootstrap:
            weights = torch.from_numpy(np.stack([r.poisson(1.0, len(train)) for r in member_rngs]).astype(np.float32))
        layers = self._init_params(d)
        params = [p for layer in layers for p in layer]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        bf16 = use_bf16(cfg.precision, D)
        order_rng = np.random.default_rng(zlib.crc32(json.dumps(cfg.to_dict(), sort_keys=True).encode()))
        y = torch.from_numpy(np.asarray(train.y, np.float32))
        eps = cfg.label_smoothing
        early = stop is not None and len(stop) > 0 and cfg.patience > 0
        best = [p.detach().clone() for p in params]
        best_loss = torch.full((k,), float("inf"))
        wait = torch.zeros(k, dtype=torch.long)
        active = torch.ones(k, dtype=torch.bool)
        self.history_ = []
        for epoch in range(cfg.epochs):
            perm = order_rng.permutation(len(train))
            losses = []
            for s in range(0, len(perm), cfg.batch_size):
                idx = perm[s : s + cfg.batch_size]
                x, ia, ib = self._gather(train.X, train.a[idx], train.b[idx])
                t = y[idx] * (1 - eps) + eps / 2
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    scores = self._forward(x, layers, self._features, cfg.dropout)
                per_pair = self._loss(scores.float(), ia, ib, t)
                if weights is not None:
                    w = weights[:, idx]
                    member_loss = (per_pair * w).sum(1) / w.sum(1).clamp_min(1.0)
                else:
                    member_loss = per_pair.mean(1)
                opt.zero_grad(set_to_none=True)
                member_loss.sum().backward()  # members are independent: the sum's gradient is each member's own
                opt.step()
                losses.append(member_loss.detach())
            record = {"train/loss": torch.stack(losses).mean(0).numpy()}
            if not np.isfinite(record["train/loss"]).all():
                bad = [s for s, v in zip(self.seeds, record["train/loss"]) if not np.isfinite(v)]
                raise FloatingPointError(
                    f"{self.kind} members with seeds {bad} diverged: training loss is not finite at epoch {epoch + 1} "
                    f"(lr={cfg.lr}); lower the learning rate or add weight decay."
                )
            if stop is not None and len(stop) > 0:
                with torch.no_grad():
                    x, ia, ib = self._gather(stop.X, stop.a, stop.b)
                    s_stop = self._forward(x, layers, self._features).float()
                    t_stop = torch.from_numpy(np.asarray(stop.y, np.float32))
                    stop_loss = self._loss(s_stop, ia, ib, t_stop).mean(1)
                    z = (s_stop[:, ia] - s_stop[:, ib]) * (2 * t_stop - 1)
                    record["val/nll"] = F.softplus(-z).mean(1).numpy()
                    record["val/accuracy"] = ((z > 0).float() + 0.5 * (z == 0).float()).mean(1).numpy()
                if early:
                    improved = active & (stop_loss < best_loss - 1e-7)
                    best_loss = torch.where(improved, stop_loss, best_loss)
                    for p, bp in zip(params, best):
                        bp[improved] = p.detach()[improved]
                    wait = torch.where(improved, 0, wait + active.long())
                    active &= wait < cfg.patience
                    record["early_stop/active"] = active.numpy().astype(np.float32)
            self.history_.append(record)
            if early and not active.any():
                break
        final = best if early else [p.detach() for p in params]
        self._layers = [(final[2 * j].detach(), final[2 * j + 1].detach()) for j in range(len(layers))]
        self.epochs_ = len(self.history_)
        self.arrays_ = self._to_arrays()
        return self

    def _gather(self, X: np.ndarray, a: np.ndarray, b: np.ndarray):
        """Unique rows of a batch of pairs, normalized, plus where each pair's sides sit among them."""
        uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
        x = torch.from_numpy(np.asarray(X[uniq], dtype=np.float32))
        x = (x - self._mean) / self._scale
        inv = torch.from_numpy(inv)
        return x, inv[: len(a)], inv[len(a) :]

    # ---- arrays -----------------------------------------------------------------------------------------
    def _to_arrays(self) -> list[dict[str, np.ndarray]]:
        out = []
        for i in range(len(self.seeds)):
            arr: dict[str, np.ndarray] = {}
            feats = self._features[i].numpy() if self._features is not None else None
            if feats is not None:
                arr["features"] = feats.astype(np.int64)
            if self.config.normalize:
                arr["mean"] = (self._mean.numpy() if feats is None else self._mean.numpy()[feats]).copy()
                arr["scale"] = (self._scale.numpy() if feats is None else self._scale.numpy()[feats]).copy()
            for j, (W, b) in enumerate(self._layers):
                arr[f"w{j}"] = W[i].numpy().copy()
                arr[f"b{j}"] = b[i, 0].numpy().copy()
            out.append(arr)
        return out

    def member_arrays(self) -> list[dict[str, np.ndarray]]:
        self._check_fitted()
        return self.arrays_

    @classmethod
    def from_arrays(cls, config, arrays):
        head = cls(config, seeds=tuple(range(len(arrays))))
        head.arrays_ = [dict(a) for a in arrays]
        return head

    def score(self, X: np.ndarray) -> np.ndarray:
        """(members, n) rewards in float32, computed with stacked torch matmuls from the member arrays."""
        self._check_fitted()
        A = self.arrays_
        layers = sum(1 for key in A[0] if key[0] == "w" and key[1:].isdigit())
        Ws = [torch.from_numpy(np.stack([a[f"w{j}"] for a in A])) for j in range(layers)]
        bs = [torch.from_numpy(np.stack([a[f"b{j}"] for a in A]))[:, None, :] for j in range(layers)]
        feats = torch.from_numpy(np.stack([a["features"] for a in A])) if "features" in A[0] else None
        mean = torch.from_numpy(np.stack([a["mean"] for a in A]))[:, None, :] if "mean" in A[0] else None
        scale = torch.from_numpy(np.stack([a["scale"] for a in A]))[:, None, :] if "mean" in A[0] else None
        out = np.empty((len(A), len(X)), np.float32)
        with torch.no_grad():
            for s in range(0, len(X), SCORE_CHUNK):
                x = torch.from_numpy(np.asarray(X[s : s + SCORE_CHUNK], dtype=np.float32))
                h = x[:, feats].transpose(0, 1) if feats is not None else x.expand(len(A), -1, -1)
                if mean is not None:
                    h = (h - mean) / scale
                for j in range(layers):
                    h = torch.baddbmm(bs[j], h.contiguous(), Ws[j])
                    if j < layers - 1:
                        h = F.relu(h)
                out[:, s : s + len(x)] = h[..., 0].numpy()
        return out
