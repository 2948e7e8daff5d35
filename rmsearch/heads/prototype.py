"""`prototype` head: M learned prototypes with learned values; see `PrototypeConfig`.

Members train one after another (a member has M·(D + 1) + 1 parameters, so there is little to batch). A member's
randomness all comes from `np.random.default_rng([seed, 17])`: its initial prototypes (training rows drawn without
replacement, plus small noise), its bootstrap weights, then its batch order. Values start at 0 and the
temperature at 1. Each step scores each unique row of the batch once and forms the pair differences from those
scores, as the other torch heads do; like theirs, a batch's rows are read from the stored split and normalized when
it needs them (`_torch._normalized`), so a fit holds no float32 copy of all training rows (3 GB at the
seed's full scale). The learned state is plain arrays, scored by `_uq.prototype_forward`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rmsearch.heads._base import Head
from rmsearch.heads._uq import PrototypeConfig
from rmsearch.heads._stats import row_stats
from rmsearch.heads._torch import _normalized


def _scores(x: torch.Tensor, P: torch.Tensor, v: torch.Tensor, log_t: torch.Tensor) -> torch.Tensor:
    d2 = torch.cdist(x, P).square()
    w = torch.softmax(-d2 / (log_t.exp() * P.shape[1]), dim=1)
    return w @ v


class PrototypeHead(Head):
    kind = "prototype"
    Config = PrototypeConfig

    def fit(self, train, stop=None) -> "PrototypeHead":
        cfg: PrototypeConfig = self.config
        D = train.X.shape[1]
        rows = np.unique(np.concatenate([train.a, train.b]))
        mean, scale = row_stats(train.X, rows) if cfg.normalize else (np.zeros(D, np.float32), np.ones(D, np.float32))
        norm = torch.from_numpy(mean), torch.from_numpy(scale)
        pos = np.searchsorted(rows, np.concatenate([train.a, train.b]))
        ia, ib = pos[: len(train)], pos[len(train) :]
        y = torch.from_numpy(np.asarray(train.y, np.float32))
        self.arrays_, curves = [], []
        for seed in self.seeds:
            rng = np.random.default_rng([int(seed), 17])
            gen = torch.Generator().manual_seed(int(seed))
            start = rng.choice(len(rows), cfg.prototypes, replace=len(rows) < cfg.prototypes)
            P = _normalized(train.X, rows[start], *norm) + 0.01 * torch.randn(cfg.prototypes, D, generator=gen)
            P.requires_grad_()
            v = torch.zeros(cfg.prototypes, requires_grad=True)
            log_t = torch.zeros(1, requires_grad=True)
            w = torch.from_numpy(rng.poisson(1.0, len(train)).astype(np.float32)) if cfg.bootstrap else None
            opt = torch.optim.AdamW([P, v, log_t], lr=cfg.lr, weight_decay=cfg.weight_decay)
            losses = []
            for _ in range(cfg.epochs):
                order = rng.permutation(len(train))
                total = 0.0
                for s in range(0, len(order), cfg.batch_size):
                    idx = order[s : s + cfg.batch_size]
                    uniq, inv = np.unique(np.concatenate([ia[idx], ib[idx]]), return_inverse=True)
                    sc = _scores(_normalized(train.X, rows[uniq], *norm), P, v, log_t)
                    inv = torch.from_numpy(inv)
                    margin = sc[inv[: len(idx)]] - sc[inv[len(idx) :]]
                    per = F.binary_cross_entropy_with_logits(margin, y[idx], reduction="none")
                    loss = (per * w[idx]).sum() / w[idx].sum().clamp_min(1.0) if w is not None else per.mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                losses.append(total / len(order))
            curves.append(losses)
            arrays = {"prototypes": P.detach().numpy().astype(np.float32).copy(),
                      "values": v.detach().numpy().astype(np.float32).copy(),
                      "log_temperature": log_t.detach().numpy().astype(np.float32).copy()}
            if cfg.normalize:
                arrays["mean"], arrays["scale"] = mean.copy(), scale.copy()
            self.arrays_.append(arrays)
        loss = np.asarray(curves, np.float32)  # (members, epochs)
        self.history_ = [{"train/loss": loss[:, e]} for e in range(loss.shape[1])]
        self.epochs_ = float(cfg.epochs)
        return self
