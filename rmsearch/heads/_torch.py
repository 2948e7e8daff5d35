"""Training for the torch heads (linear, mlp, mlp_clf): all members of one configuration at once.

Members' weights are stacked along a leading axis and every layer is one batched matmul, so K members cost one
optimizer step. Each step takes a batch of pairs per member (each pair once, in one ordering), scores each unique
row of a member's batch once, and forms pair differences from those scores. Members differ by seed: their init,
bootstrap weights, feature subspace, batch order and dropout masks all come from it, so a member is the same
whatever group it is trained in (a cache can reuse it).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from rmsearch.data import Pairs
from rmsearch.errors import ConfigError
from rmsearch.heads._base import Head
from rmsearch.heads._configs import TorchHeadConfig

SCORE_CHUNK = 65536
SCORE_BYTES = 128 * 2**20
"""Largest activation `score` holds at once: the row chunk shrinks with members × width."""


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


def use_bf16(precision: str, dim: int, device: str = "cpu") -> bool:
    if precision == "bf16":
        return True
    if device != "cpu":  # GPUs with bf16 tensor cores gain at every size
        return precision == "auto" and torch.cuda.is_bf16_supported()
    return precision == "auto" and dim >= BF16_MIN_DIM and cpu_has_bf16()


def check_device(device: str) -> str:
    """'cpu', or 'cuda'/'cuda:N' where torch sees that GPU; anything else is a ConfigError naming the fix."""
    if device == "cpu":
        return device
    if not device.startswith("cuda"):
        raise ConfigError(f"device {device!r} is not supported; use 'cpu' or 'cuda' (or 'cuda:N').")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but torch sees no CUDA GPU (torch {torch.__version__}, "
                          f"torch.cuda.is_available() is False); use device='cpu'.")
    return device


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


def _readonly_tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor over `a` without a copy, also where `a` is read-only (a memory map): nothing writes to it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


class TorchHead(Head):
    """Stacked-member torch head. Subclasses set `kind`, `Config` and `pointwise`. Training runs on `device`
    ('cpu' by default, or a CUDA GPU); learned state always comes back as CPU numpy arrays."""

    pointwise: ClassVar[bool] = False
    """False: Bradley-Terry on score differences. True: classifier, winner = 1, loser = 0."""

    def __init__(self, config, seeds=(0,), device: str = "cpu"):
        super().__init__(config, seeds)
        self.device = check_device(device)

    # ---- parameters -------------------------------------------------------------------------------------
    def _init_params(self, d_in: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (W, b): W (k, fan_in, fan_out), b (k, 1, fan_out)."""
        sizes = [d_in, *self.config.hidden, 1]
        layers = []
        for j, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1.0 / np.sqrt(fan_in)  # torch.nn.Linear's default init
            W, b = [], []
            for seed in self.seeds:
                g = torch.Generator().manual_seed(int(seed) * 7919 + j)
                W.append(torch.empty(fan_in, fan_out).uniform_(-bound, bound, generator=g))
                b.append(torch.empty(1, fan_out).uniform_(-bound, bound, generator=g))
            layers.append(tuple(torch.stack(t).to(self.device).requires_grad_() for t in (W, b)))
        if not self.pointwise:  # Bradley-Terry sees only score differences, so the output bias cancels: its
            # gradient is rounding noise, which Adam would scale into lr-sized steps (a random walk that differs
            # with the rounding, e.g. between a member trained alone and in a group). It keeps its init.
            layers[-1][1].requires_grad_(False)
        return layers

    def _forward(self, x: torch.Tensor, layers, features=None, masks=()) -> torch.Tensor:
        """Normalized rows -> (k, U) scores: x (k, U, d) is each member's own rows (its subspace taken), x (U, D)
        rows that all members read. `masks` holds one dropout mask per hidden layer. Biases are fused in."""
        W0, b0 = layers[0]
        if x.dim() == 3:
            h = torch.baddbmm(b0, x, W0)
        elif features is None:  # one (U, D) × (D, k·H) GEMM; its (U, k, H) output is read as (k, U, H)
            k, d, h0 = W0.shape
            W = W0.transpose(0, 1).reshape(d, k * h0)  # a copy of the weights, smaller than k copies of the rows
            h = torch.addmm(b0.reshape(k * h0), x, W).view(len(x), k, h0).transpose(0, 1)
        else:
            h = torch.baddbmm(b0, x[:, features].transpose(0, 1).contiguous(), W0)
        for j, (W, b) in enumerate(layers[1:]):
            h = F.relu(h)
            if masks:
                h = h * masks[j]
            h = torch.baddbmm(b, h, W)
        return h[..., 0]

    def _loss(self, sa: torch.Tensor, sb: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per-member, per-pair loss (k, B) from the scores of each pair's sides (k, B) and soft targets t."""
        if self.pointwise:
            t2 = t.expand_as(sa)
            return 0.5 * (F.binary_cross_entropy_with_logits(sa, t2, reduction="none")
                          + F.binary_cross_entropy_with_logits(sb, 1 - t2, reduction="none"))
        return F.binary_cross_entropy_with_logits(sa - sb, t.expand_as(sa), reduction="none")

    # ---- fit --------------------------------------------------------------------------------------------
    def fit(self, train: Pairs, stop: Pairs | None = None) -> "TorchHead":
        cfg: TorchHeadConfig = self.config
        k, D = len(self.seeds), train.X.shape[1]
        rows = np.unique(np.concatenate([train.a, train.b]))
        mean, scale = _row_stats(train.X, rows) if cfg.normalize else (np.zeros(D, np.float32), np.ones(D, np.float32))
        dev = self.device
        self._mean, self._scale = torch.from_numpy(mean).to(dev), torch.from_numpy(scale).to(dev)
        member_rngs = [np.random.default_rng([int(s), 17]) for s in self.seeds]
        if cfg.feature_fraction < 1:
            d = max(1, int(round(cfg.feature_fraction * D)))
            self._features = torch.from_numpy(np.stack([np.sort(r.choice(D, d, replace=False)) for r in member_rngs]))
        else:
            d, self._features = D, None
        weights = None
        if cfg.bootstrap:
            weights = torch.from_numpy(np.stack([r.poisson(1.0, len(train)) for r in member_rngs]).astype(np.float32))
            weights = weights.to(dev)
        feats = self._features.to(dev) if self._features is not None else None
        run = _Stack(self._init_params(d), cfg, k, feats, weights)
        bf16 = use_bf16(cfg.precision, D, dev)
        autocast = torch.device(dev).type
        # each member's batch order and dropout masks come from its own seed alone, not from the group it is in
        order_rngs = [np.random.default_rng([int(s), 23]) for s in self.seeds]
        mask_gens = [torch.Generator(dev).manual_seed(int(np.random.default_rng([int(s), 29]).integers(2**62)))
                     for s in self.seeds]
        perms: list[np.ndarray | None] = [None] * k
        y = torch.from_numpy(np.asarray(train.y, np.float32)).to(dev)
        eps = cfg.label_smoothing
        has_stop = stop is not None and len(stop) > 0
        early = has_stop and cfg.patience > 0
        steps_per_epoch = -(-len(train) // cfg.batch_size)
        check_every = cfg.eval_steps or steps_per_epoch
        if has_stop:  # the early-stop rows, gathered and normalized once for every check
            x_stop, ia_stop, ib_stop = self._gather(stop.X, stop.a, stop.b)
            t_stop = torch.from_numpy(np.asarray(stop.y, np.float32)).to(dev)
        self.history_ = []
        losses: list[torch.Tensor] = []
        step, total_steps = 0, cfg.epochs * steps_per_epoch
        while step < total_steps:
            live = run.live.tolist()
            if step % steps_per_epoch == 0:
                for i in live:
                    perms[i] = order_rngs[i].permutation(len(train))
            s = (step % steps_per_epoch) * cfg.batch_size
            idx = np.stack([perms[i][s : s + cfg.batch_size] for i in live])  # (live members, B)
            x, ia, ib, sizes = self._gather_members(train, idx, run.features, torch.bfloat16 if bf16 else torch.float32)
            masks = _dropout_masks(cfg.dropout, [mask_gens[i] for i in live], sizes, cfg.hidden, x.dtype)
            idx_t = torch.from_numpy(idx).to(dev)
            t = y[idx_t] * (1 - eps) + eps / 2
            with torch.autocast(autocast, dtype=torch.bfloat16, enabled=bf16):
                scores = self._forward(x, run.layers, masks=masks).float()
            per_pair = self._loss(scores.gather(1, ia), scores.gather(1, ib), t)
            if run.weights is not None:
                w = run.weights.gather(1, idx_t)
                member_loss = (per_pair * w).sum(1) / w.sum(1).clamp_min(1.0)
            else:
                member_loss = per_pair.mean(1)
            if cfg.lr_schedule == "cosine":
                for group in run.opt.param_groups:
                    group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            run.opt.zero_grad(set_to_none=True)
            member_loss.sum().backward()  # members are independent: the sum's gradient is each member's own
            run.opt.step()
            losses.append(member_loss.detach())
            step += 1
            if step % check_every and step < total_steps:
                continue
            # a check: a history record and, with early stopping, each member's best-so-far
            values = {"train/loss": torch.stack(losses).mean(0).cpu()}
            losses = []
            if not torch.isfinite(values["train/loss"]).all():
                bad = [self.seeds[i] for i, v in zip(run.live.tolist(), values["train/loss"].tolist()) if not np.isfinite(v)]
                raise FloatingPointError(
                    f"{self.kind} members with seeds {bad} diverged: training loss is not finite at step {step} "
                    f"(epoch {(step - 1) // steps_per_epoch + 1}, lr={cfg.lr}); lower the learning rate or add weight decay."
                )
            if has_stop:
                with torch.no_grad():
                    with torch.autocast(autocast, dtype=torch.bfloat16, enabled=bf16):
                        s_stop = self._forward(x_stop, run.layers, run.features).float()
                    values["stop_loss"] = self._loss(s_stop[:, ia_stop], s_stop[:, ib_stop], t_stop).mean(1).cpu()
                    z = (s_stop[:, ia_stop] - s_stop[:, ib_stop]) * (2 * t_stop - 1)
                    values["val/nll"] = F.softplus(-z).mean(1).cpu()
                    values["val/accuracy"] = ((z > 0).float() + 0.5 * (z == 0).float()).mean(1).cpu()
            record = run.record(values, step / steps_per_epoch)
            if early:
                run.update_best(values["stop_loss"])
                record["early_stop/active"] = run.active.numpy().astype(np.float32)
            self.history_.append(record)
            if early and not run.active.any():
                break
            if early and not run.active[run.live].all():
                run.shrink()  # members that stopped leave the stack: the rest train on without computing them
        final = [p.detach().cpu() for p in (run.best if early else run.params)]
        self._layers = [(final[2 * j], final[2 * j + 1]) for j in range(len(run.layers))]
        self._mean, self._scale = self._mean.cpu(), self._scale.cpu()
        self.epochs_ = step / steps_per_epoch
        self.arrays_ = self._to_arrays()
        return self

    def _gather(self, X: np.ndarray, a: np.ndarray, b: np.ndarray):
        """Unique rows of a batch of pairs, normalized, plus where each pair's sides sit among them."""
        uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
        x = torch.from_numpy(np.asarray(X[uniq], dtype=np.float32)).to(self.device)
        x = (x - self._mean) / self._scale
        inv = torch.from_numpy(inv).to(self.device)
        return x, inv[: len(a)], inv[len(a) :]

    def _gather_members(self, pairs: Pairs, idx: np.ndarray, features: torch.Tensor | None, dtype: torch.dtype):
        """Each member's batch of pairs (rows of `idx` (k, B)) as x (k, U, d): its unique rows, in its subspace,
        normalized, in `dtype`, padded to the largest member's count U; ia, ib (k, B): where each pair's sides sit
        among them; and each member's count of unique rows. Padded rows repeat a real row: they are scored, but no
        pair reads their scores, so they add nothing to the loss or the gradients."""
        k = len(idx)
        uniq, inv = zip(*(np.unique(np.concatenate([pairs.a[i], pairs.b[i]]), return_inverse=True) for i in idx))
        sizes = [len(u) for u in uniq]
        U = max(sizes)
        rows = np.concatenate([np.pad(u, (0, U - len(u)), mode="edge") for u in uniq])
        x = torch.from_numpy(np.asarray(pairs.X[rows], dtype=np.float32)).to(self.device).view(k, U, -1)
        mean, scale = self._mean, self._scale
        if features is not None:  # the subspace first: less to normalize
            x = x.gather(2, features[:, None, :].expand(-1, U, -1))
            mean, scale = mean[features][:, None, :], scale[features][:, None, :]
        x = x.sub_(mean).div_(scale).to(dtype)  # in place: x is a fresh copy, and these are (k, U, d) large
        inv = torch.from_numpy(np.stack(inv)).to(self.device)
        B = idx.shape[1]
        return x, inv[:, :B], inv[:, B:], sizes

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
        """(members, n) rewards in float32, computed with stacked torch matmuls from the member arrays. The first
        layer of all members is one GEMM (see `_dense_first_layer`); rows are read in chunks sized so no activation
        exceeds SCORE_BYTES (X may be a memory map larger than memory)."""
        self._check_fitted()
        A = self.arrays_
        k = len(A)
        layers = sum(1 for key in A[0] if key[0] == "w" and key[1:].isdigit())
        W0, b0 = _dense_first_layer(A, X.shape[1])
        h0 = A[0]["w0"].shape[1]
        Ws = [torch.from_numpy(np.stack([a[f"w{j}"] for a in A])) for j in range(1, layers)]
        bs = [torch.from_numpy(np.stack([a[f"b{j}"] for a in A]))[:, None, :] for j in range(1, layers)]
        chunk = max(256, SCORE_BYTES // (4 * k * max([h0] + [W.shape[2] for W in Ws])))
        out = np.empty((k, len(X)), np.float32)
        with torch.no_grad():
            for s in range(0, len(X), chunk):
                x = _readonly_tensor(np.asarray(X[s : s + chunk], dtype=np.float32))
                h = torch.addmm(b0, x, W0).view(len(x), k, h0).transpose(0, 1)
                for W, b in zip(Ws, bs):
                    h = torch.baddbmm(b, F.relu(h), W)
                out[:, s : s + len(x)] = h[..., 0].numpy()
        return out


def _dropout_masks(p: float, gens: list[torch.Generator], sizes: list[int], widths, dtype) -> list[torch.Tensor]:
    """One (k, U, width) dropout mask per hidden layer, 0 or 1/(1−p). Member i's mask over its `sizes[i]` unique
    rows is drawn from its own generator at that shape, so it is the same whichever members train beside it
    (F.dropout would draw all members' masks from torch's global stream at the group's shape); padded rows get 0."""
    if p == 0:
        return []
    masks = []
    for width in widths:
        m = torch.empty(len(sizes), max(sizes), width, dtype=dtype, device=gens[0].device)
        for i, (g, n) in enumerate(zip(gens, sizes)):
            m[i, :n].bernoulli_(1 - p, generator=g)
            m[i, n:] = 0
        masks.append(m.div_(1 - p))
    return masks


def _dense_first_layer(arrays: list[dict[str, np.ndarray]], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All members' first layers as one (dim, k·h) matrix and (k·h,) bias, acting on raw rows: each member's
    input normalization is folded in (w / scale, b − (mean / scale)·w, in float64) and its feature subspace
    becomes zero rows, so scoring is one GEMM over the rows as they come, with no per-member copy of them."""
    k, h = len(arrays), arrays[0]["w0"].shape[1]
    W = np.zeros((dim, k, h), np.float32)
    b = np.empty((k, h))
    for i, a in enumerate(arrays):
        w = a["w0"].astype(np.float64)
        if "scale" in a:
            w = w / a["scale"].astype(np.float64)[:, None]
        b[i] = a["b0"] - (a["mean"].astype(np.float64) @ w if "mean" in a else 0.0)
        W[a["features"] if "features" in a else slice(None), i] = w
    return torch.from_numpy(W.reshape(dim, k * h)), torch.from_numpy(b.reshape(-1).astype(np.float32))


class _Stack:
    """The members still training, stacked: their parameters, optimizer state, feature subspaces and bootstrap
    weights, and early-stopping bookkeeping. `live` holds their member indices in stack order; per-member results
    are kept for all `k` members. Every parameter's leading axis is the member axis."""

    def __init__(self, layers, cfg: TorchHeadConfig, k: int, features: torch.Tensor | None,
                 weights: torch.Tensor | None):
        self.features, self.weights = features, weights
        self._set(layers, _adamw([p for layer in layers for p in layer], cfg.lr, cfg.weight_decay))
        self.live = torch.arange(k)
        self.best = [p.detach().clone() for p in self.params]
        self.best_loss = torch.full((k,), float("inf"))
        self.wait = torch.zeros(k, dtype=torch.long)
        self.active = torch.ones(k, dtype=torch.bool)
        self.patience = cfg.patience
        self.k = k
        self._last: dict[str, torch.Tensor] = {}

    def _set(self, layers, opt) -> None:
        self.layers, self.params, self.opt = layers, [p for layer in layers for p in layer], opt

    def record(self, values: dict[str, torch.Tensor], epoch: float) -> dict[str, np.ndarray]:
        """One history record: each member's latest values (stopped members keep their last ones)."""
        for key, v in values.items():
            if key != "stop_loss":
                self._last.setdefault(key, torch.full((self.k,), float("nan")))[self.live] = v.detach().float()
        out = {key: v.numpy().copy() for key, v in self._last.items()}
        out["train/epoch"] = np.full(self.k, epoch, np.float32)
        return out

    def update_best(self, stop_loss: torch.Tensor) -> None:
        live = self.live
        improved = stop_loss < self.best_loss[live] - 1e-7
        self.best_loss[live] = torch.where(improved, stop_loss, self.best_loss[live])
        if improved.any():
            dev = self.params[0].device
            where, members = improved.nonzero()[:, 0].to(dev), live[improved].to(dev)
            for p, bp in zip(self.params, self.best):
                bp.index_copy_(0, members, p.detach().index_select(0, where))
        self.wait[live] = torch.where(improved, 0, self.wait[live] + 1)
        self.active[live] = self.wait[live] < self.patience

    def shrink(self) -> None:
        """Drop the stopped members from the stack, keeping the others' parameters and Adam state."""
        keep = self.active[self.live]
        idx = keep.nonzero()[:, 0].to(self.params[0].device)
        group = self.opt.param_groups[0]
        params = [p.detach().index_select(0, idx).requires_grad_(p.requires_grad) for p in self.params]
        layers = list(zip(params[::2], params[1::2]))
        opt = _adamw(params, group["lr"], group["weight_decay"])
        for old, new in zip(self.params, params):
            state = self.opt.state.get(old)
            if state:
                opt.state[new] = {key: v.index_select(0, idx) if torch.is_tensor(v) and v.dim() > 0 else v
                                  for key, v in state.items()}
        self._set(layers, opt)
        self.live = self.live[keep]
        if self.features is not None:
            self.features = self.features[idx]
        if self.weights is not None:
            self.weights = self.weights[idx]


def _adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with its fused kernel (one pass over each parameter and its state; about 10× faster than the
    per-tensor loop on CPU for these stacked weights)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
