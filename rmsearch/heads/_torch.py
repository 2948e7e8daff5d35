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
from rmsearch.heads._batches import MemberBatches, dropout_masks, member_holdout
from rmsearch.heads._configs import BF16_MIN_DIM, TorchHeadConfig, auto_precision, cpu_has_bf16  # noqa: F401
from rmsearch.heads._stack import MemberStack
from rmsearch.heads._stats import row_stats

SCORE_BYTES = 128 * 2**20
"""Largest activation `score` holds at once: the row chunk shrinks with members × width."""


def use_bf16(precision: str, dim: int, device: str = "cpu") -> bool:
    """Whether training in `precision` ('auto' decided by `auto_precision`) on `device` runs bf16 autocast."""
    return (auto_precision(dim, device) if precision == "auto" else precision) == "bf16"


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
        """Train all members at once: optimizer steps on `train` and, every `eval_steps` steps (or once per epoch)
        and at the end, a check that writes a history record. With `stop` pairs and patience > 0 a check also keeps
        each member's best weights so far; a member that ran out of patience leaves the stack, and its best
        weights are the ones it keeps."""
        cfg: TorchHeadConfig = self.config
        subsets = None
        if cfg.holdout:  # each member stops on its own share of all the pairs and trains on the rest
            train = train.join(stop) if stop is not None and len(stop) else train
            subsets, held = member_holdout(self.seeds, len(train), cfg.holdout)
        run = self._start(train)
        bf16 = use_bf16(cfg.precision, train.X.shape[1], self.device)
        batches = MemberBatches(self.seeds, len(train), cfg.batch_size, self.device, subsets, cfg.orderings)
        y = torch.from_numpy(np.asarray(train.y, np.float32)).to(self.device)
        stop_rows = self._stop_rows(stop) if subsets is None else (train, held)  # held: gathered per check
        early = stop_rows is not None and cfg.patience > 0
        per_epoch = batches.per_epoch
        check_every, total_steps = cfg.eval_steps or per_epoch, cfg.epochs * per_epoch
        self.history_ = []
        losses: list[torch.Tensor] = []
        step = 0
        while step < total_steps:
            losses.append(self._step(run, train, y, batches, step, total_steps, bf16))
            step += 1
            if step % check_every and step < total_steps:
                continue
            values = self._check(run, losses, stop_rows, step, per_epoch, bf16)
            losses = []
            record = run.record(values, step / per_epoch)
            if early:
                run.update_best(values["stop_loss"])
                record["early_stop/active"] = run.active.numpy().astype(np.float32)
            self.history_.append(record)
            if early and not run.active.any():
                break
            if early and not run.active[run.live].all():
                run.shrink()  # members that stopped leave the stack: the rest train on without computing them
        self._finish(run, early)
        self.epochs_ = step / per_epoch
        self.arrays_ = _to_arrays(self)
        return self

    def _start(self, train: Pairs) -> MemberStack:
        """Set the input normalization (`_mean`, `_scale`) and each member's feature subspace (`_features`), and
        stack the members' initial parameters with their bootstrap weights. A member's subspace and bootstrap
        weights are drawn, in that order, from its seed alone."""
        cfg: TorchHeadConfig = self.config
        k, D = len(self.seeds), train.X.shape[1]
        rows = np.unique(np.concatenate([train.a, train.b]))
        mean, scale = row_stats(train.X, rows) if cfg.normalize else (np.zeros(D, np.float32), np.ones(D, np.float32))
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
        return MemberStack(self._init_params(d), cfg, k, feats, weights)

    def _stop_rows(self, stop: Pairs | None):
        """The early-stop pairs gathered and normalized once for every check: unique rows x, where each pair's sides
        sit among them (ia, ib), and targets t; None without early-stop pairs."""
        if stop is None or len(stop) == 0:
            return None
        x, ia, ib = _gather(stop.X, stop.a, stop.b, self._mean, self._scale, self.device)
        return x, ia, ib, torch.from_numpy(np.asarray(stop.y, np.float32)).to(self.device)

    def _step(self, run: MemberStack, train: Pairs, y: torch.Tensor, batches: MemberBatches, step: int,
              total_steps: int, bf16: bool) -> torch.Tensor:
        """Optimizer step `step` of every live member on its next batch of `train` (targets `y`); returns each live
        member's loss on its batch, bootstrap-weighted where it has weights."""
        cfg: TorchHeadConfig = self.config
        live = run.live.tolist()
        idx = batches.pairs(step, live)  # (live members, B)
        x, ia, ib, sizes = _gather_members(train, idx, run.features, torch.bfloat16 if bf16 else torch.float32,
                                           self._mean, self._scale, self.device)
        masks = dropout_masks(cfg.dropout, batches.mask_generators(live), sizes, cfg.hidden, x.dtype)
        idx_t = torch.from_numpy(idx).to(self.device)
        eps = cfg.label_smoothing
        t = y[idx_t] * (1 - eps) + eps / 2
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=bf16):
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
        return member_loss.detach()

    def _check(self, run: MemberStack, losses: list[torch.Tensor], stop_rows, step: int, per_epoch: int,
               bf16: bool) -> dict[str, torch.Tensor]:
        """Each live member's values at a check: its mean training loss over the steps since the last check (a
        FloatingPointError names the members where it is not finite) and, with `stop_rows`, its loss ("stop_loss",
        what early stopping reads), NLL and accuracy on the early-stop pairs."""
        cfg: TorchHeadConfig = self.config
        values = {"train/loss": torch.stack(losses).mean(0).cpu()}
        if not torch.isfinite(values["train/loss"]).all():
            bad = [self.seeds[i] for i, v in zip(run.live.tolist(), values["train/loss"].tolist())
                   if not np.isfinite(v)]
            raise FloatingPointError(
                f"{self.kind} members with seeds {bad} diverged: training loss is not finite at step {step} "
                f"(epoch {(step - 1) // per_epoch + 1}, lr={cfg.lr}); lower the learning rate or add weight decay."
            )
        if stop_rows is None:
            return values
        with torch.no_grad():
            sa, sb, t_stop = self._stop_scores(run, stop_rows, bf16)
            values["stop_loss"] = self._loss(sa, sb, t_stop).mean(1).cpu()
            z = (sa - sb) * (2 * t_stop - 1)
            values["val/nll"] = F.softplus(-z).mean(1).cpu()
            values["val/accuracy"] = ((z > 0).float() + 0.5 * (z == 0).float()).mean(1).cpu()
        return values

    def _stop_scores(self, run: MemberStack, stop_rows, bf16: bool):
        """Scores (live members, pairs) of each early-stop pair's sides, and the pairs' targets: the task's early-stop
        pairs scored once for all live members, or (holdout) each member's own pairs, gathered at each check one
        member at a time, so no check holds more than one member's rows."""
        autocast = torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=bf16)
        if isinstance(stop_rows[0], Pairs):
            pairs, held = stop_rows
            y = torch.from_numpy(np.asarray(pairs.y, np.float32)).to(self.device)
            sa, sb, t = [], [], []
            for j, m in enumerate(run.live.tolist()):
                feats = None if run.features is None else run.features[j : j + 1]
                x, ia, ib, _ = _gather_members(pairs, held[m : m + 1], feats, torch.float32, self._mean, self._scale,
                                               self.device)
                with autocast:
                    s = self._forward(x, [(W[j : j + 1], b[j : j + 1]) for W, b in run.layers]).float()
                sa.append(s.gather(1, ia)[0])
                sb.append(s.gather(1, ib)[0])
                t.append(y[torch.from_numpy(held[m]).to(self.device)])
            return torch.stack(sa), torch.stack(sb), torch.stack(t)
        x_stop, ia_stop, ib_stop, t_stop = stop_rows
        with autocast:
            s_stop = self._forward(x_stop, run.layers, run.features).float()
        return s_stop[:, ia_stop], s_stop[:, ib_stop], t_stop

    def _finish(self, run: MemberStack, early: bool) -> None:
        """Keep each member's final weights (its best ones, with early stopping) as CPU tensors in `_layers`."""
        final = [p.detach().cpu() for p in (run.best if early else run.params)]
        self._layers = [(final[2 * j], final[2 * j + 1]) for j in range(len(run.layers))]
        self._mean, self._scale = self._mean.cpu(), self._scale.cpu()

    def score(self, X: np.ndarray) -> np.ndarray:
        """(members, n) rewards in float32, computed with stacked torch matmuls from the member arrays, in fp32 on
        the head's device. The first layer of all members is one GEMM (see `_dense_first_layer`); rows are read in
        chunks sized so no activation exceeds SCORE_BYTES (X may be a memory map larger than memory)."""
        self._check_fitted()
        A, dev = self.arrays_, self.device
        k = len(A)
        layers = sum(1 for key in A[0] if key[0] == "w" and key[1:].isdigit())
        W0, b0 = (t.to(dev) for t in _dense_first_layer(A, X.shape[1]))
        h0 = A[0]["w0"].shape[1]
        Ws = [torch.from_numpy(np.stack([a[f"w{j}"] for a in A])).to(dev) for j in range(1, layers)]
        bs = [torch.from_numpy(np.stack([a[f"b{j}"] for a in A]))[:, None, :].to(dev) for j in range(1, layers)]
        chunk = max(256, SCORE_BYTES // (4 * k * max([h0] + [W.shape[2] for W in Ws])))
        out = np.empty((k, len(X)), np.float32)
        with torch.no_grad():
            for s in range(0, len(X), chunk):
                x = _readonly_tensor(np.asarray(X[s : s + chunk], dtype=np.float32)).to(dev)
                h = torch.addmm(b0, x, W0).view(len(x), k, h0).transpose(0, 1)
                for W, b in zip(Ws, bs):
                    h = torch.baddbmm(b, F.relu(h), W)
                out[:, s : s + len(x)] = h[..., 0].cpu().numpy()
        return out


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


def _gather(X: np.ndarray, a: np.ndarray, b: np.ndarray, mean: torch.Tensor, scale: torch.Tensor, device: str):
    """Unique rows of a batch of pairs, normalized, plus where each pair's sides sit among them."""
    uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    x = _normalized(X, uniq, mean, scale, device)
    inv = torch.from_numpy(inv).to(device)
    return x, inv[: len(a)], inv[len(a) :]


def _gather_members(pairs: Pairs, idx: np.ndarray, features: torch.Tensor | None, dtype: torch.dtype,
                    mean: torch.Tensor, scale: torch.Tensor, device: str):
    """Each member's batch of pairs (rows of `idx` (k, B)) as x (k, U, d): its unique rows, in its subspace,
    normalized, in `dtype`, padded to the largest member's count U; ia, ib (k, B): where each pair's sides sit
    among them; and each member's count of unique rows. Padded rows repeat a real row: they are scored, but no
    pair reads their scores, so they add nothing to the loss or the gradients."""
    k = len(idx)
    uniq, inv = zip(*(np.unique(np.concatenate([pairs.a[i], pairs.b[i]]), return_inverse=True) for i in idx))
    sizes = [len(u) for u in uniq]
    U = max(sizes)
    d = pairs.X.shape[1] if features is None else features.shape[1]
    x = torch.empty(k, U, d, dtype=dtype, device=device)
    for i, u in enumerate(uniq):
        _normalized_rows(pairs.X, np.pad(u, (0, U - len(u)), mode="edge"),
                         None if features is None else features[i], mean, scale, x[i])
    inv = torch.from_numpy(np.stack(inv)).to(device)
    B = idx.shape[1]
    return x, inv[:, :B], inv[:, B:], sizes


GATHER_ELEMENTS = {"cpu": 2**19, "cuda": 2**27}
"""Values (rows × columns) `_normalized_rows` reads, converts and normalizes at a time: on the CPU a block that stays
in cache (256 rows at D=2048). Whole batches converted at once (numpy's float16 cast, then float32 copies in fresh
pages) took nearly a third of the seed-paper MLPs' bf16 step at D=2048 on a 2-core AVX512-BF16 CPU; blocks, a
tenth of that. Blocks much smaller than this pay torch's per-call overhead on narrow inputs."""


def _normalized(X: np.ndarray, rows: np.ndarray, mean: torch.Tensor, scale: torch.Tensor,
                device: str = "cpu") -> torch.Tensor:
    """X[rows] normalized, as a new float32 (len(rows), D) tensor on `device` (see `_normalized_rows`)."""
    x = torch.empty(len(rows), X.shape[1], device=device)
    _normalized_rows(X, rows, None, mean, scale, x)
    return x


def _normalized_rows(X: np.ndarray, rows: np.ndarray, features: torch.Tensor | None, mean: torch.Tensor,
                     scale: torch.Tensor, out: torch.Tensor) -> None:
    """Write X[rows] (its `features` columns, if given) as float32 (x − mean) / scale into `out` (len(rows), d),
    cast to out's dtype, a block of rows at a time. The same values as converting all rows to float32 first."""
    if features is not None:
        mean, scale = mean[features], scale[features]
        cols = features.cpu()
    step = max(1, GATHER_ELEMENTS.get(out.device.type, GATHER_ELEMENTS["cuda"]) // out.shape[1])
    for s in range(0, len(rows), step):
        block = torch.from_numpy(np.ascontiguousarray(X[rows[s : s + step]]))
        if features is not None:
            block = block.index_select(1, cols)
        block = block.to(out.device).float()
        out[s : s + len(block)] = block.sub_(mean).div_(scale)


def _to_arrays(head: TorchHead) -> list[dict[str, np.ndarray]]:
    """Each member of a fitted `head` as named numpy arrays: features, mean and scale where used, w{j}, b{j}."""
    out = []
    for i in range(len(head.seeds)):
        arr: dict[str, np.ndarray] = {}
        feats = head._features[i].numpy() if head._features is not None else None
        if feats is not None:
            arr["features"] = feats.astype(np.int64)
        if head.config.normalize:
            arr["mean"] = (head._mean.numpy() if feats is None else head._mean.numpy()[feats]).copy()
            arr["scale"] = (head._scale.numpy() if feats is None else head._scale.numpy()[feats]).copy()
        for j, (W, b) in enumerate(head._layers):
            arr[f"w{j}"] = W[i].numpy().copy()
            arr[f"b{j}"] = b[i, 0].numpy().copy()
        out.append(arr)
    return out
