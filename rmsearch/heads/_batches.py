"""What each member of a torch head trains on at each step: its own batch order and dropout masks, drawn from its
seed alone, so a member is the same whichever members train beside it (see `_torch.TorchHead.fit`)."""

from __future__ import annotations

import numpy as np
import torch


class MemberBatches:
    """Each member's batches of training pairs (each pair once per epoch, in the member's own order) and its dropout
    generator. Members are indexed 0..k−1 in seed order; `live` lists the ones still training."""

    def __init__(self, seeds, n_pairs: int, batch_size: int, device: str):
        self.n_pairs, self.batch_size = n_pairs, batch_size
        self.per_epoch = -(-n_pairs // batch_size)
        """Optimizer steps per epoch."""
        self._order = [np.random.default_rng([int(s), 23]) for s in seeds]
        self._masks = [torch.Generator(device).manual_seed(int(np.random.default_rng([int(s), 29]).integers(2**62)))
                       for s in seeds]
        self._perms: list[np.ndarray | None] = [None] * len(self._order)

    def pairs(self, step: int, live: list[int]) -> np.ndarray:
        """(live members, B) indices of the pairs each live member trains on at `step`; at an epoch's start each
        live member draws its next order."""
        if step % self.per_epoch == 0:
            for i in live:
                self._perms[i] = self._order[i].permutation(self.n_pairs)
        s = (step % self.per_epoch) * self.batch_size
        return np.stack([self._perms[i][s : s + self.batch_size] for i in live])

    def mask_generators(self, live: list[int]) -> list[torch.Generator]:
        return [self._masks[i] for i in live]


def dropout_masks(p: float, gens: list[torch.Generator], sizes: list[int], widths, dtype) -> list[torch.Tensor]:
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
