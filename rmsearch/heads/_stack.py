"""The members of a torch head that are still training, stacked along a leading axis, with their optimizer and
early-stopping bookkeeping (see `_torch.TorchHead.fit`)."""

from __future__ import annotations

import numpy as np
import torch

from rmsearch.heads._configs import TorchHeadConfig


class MemberStack:
    """The members still training, stacked: their parameters, optimizer state, feature subspaces and bootstrap
    weights, and early-stopping bookkeeping. `live` holds their member indices in stack order; per-member results
    are kept for all `k` members. Every parameter's leading axis is the member axis."""

    def __init__(self, layers, cfg: TorchHeadConfig, k: int, features: torch.Tensor | None,
                 weights: torch.Tensor | None):
        self.features, self.weights = features, weights
        self._set(layers, adamw([p for layer in layers for p in layer], cfg.lr, cfg.weight_decay))
        self.live = torch.arange(k)
        self.best = [p.detach().clone() for p in self.params]
        self.best_loss = torch.full((k,), float("inf"))
        self.wait = torch.zeros(k, dtype=torch.long)
        self.active = torch.ones(k, dtype=torch.bool)
        self.patience = cfg.patience
        self.rising = cfg.stop_rule == "rising"
        self.losses: list[torch.Tensor] = []  # every check's early-stop loss of all k members (NaN: stopped)
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
        """Early-stopping bookkeeping after a check: which live members keep their current weights and which stop.
        'best' keeps a member's weights where its early-stop loss improved and stops it after `patience` checks
        without; 'rising' keeps every check's weights and stops a member whose loss exceeds each of its `patience`
        previous ones."""
        live = self.live
        if self.rising:
            self._update_rising(stop_loss)
            return
        improved = stop_loss < self.best_loss[live] - 1e-7
        self.best_loss[live] = torch.where(improved, stop_loss, self.best_loss[live])
        if improved.any():
            dev = self.params[0].device
            where, members = improved.nonzero()[:, 0].to(dev), live[improved].to(dev)
            for p, bp in zip(self.params, self.best):
                bp.index_copy_(0, members, p.detach().index_select(0, where))
        self.wait[live] = torch.where(improved, 0, self.wait[live] + 1)
        self.active[live] = self.wait[live] < self.patience

    def _update_rising(self, stop_loss: torch.Tensor) -> None:
        live = self.live
        row = torch.full((self.k,), float("nan"))
        row[live] = stop_loss.float()
        self.losses.append(row)
        dev = self.params[0].device
        for p, bp in zip(self.params, self.best):  # the last weights are the ones a member keeps
            bp.index_copy_(0, live.to(dev), p.detach())
        if len(self.losses) > self.patience:
            recent = torch.stack(self.losses[-self.patience - 1 :])[:, live]  # (patience + 1, live)
            self.active[live] = ~(recent[-1] > recent[:-1]).all(0)

    def shrink(self) -> None:
        """Drop the stopped members from the stack, keeping the others' parameters and Adam state."""
        keep = self.active[self.live]
        idx = keep.nonzero()[:, 0].to(self.params[0].device)
        group = self.opt.param_groups[0]
        params = [p.detach().index_select(0, idx).requires_grad_(p.requires_grad) for p in self.params]
        layers = list(zip(params[::2], params[1::2]))
        opt = adamw(params, group["lr"], group["weight_decay"])
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


def adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with its fused kernel (one pass over each parameter and its state; about 10× faster than the
    per-tensor loop on CPU for these stacked weights)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
