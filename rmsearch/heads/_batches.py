"""What each member of a torch head trains on at each step: its own batch order and dropout masks, drawn from its
seed alone, so a member is the same whichever members train beside it (see `_torch.TorchHead.fit`)."""

from __future__ import annotations

import numpy as np
import torch

from rmsearch.errors import ConfigError


class MemberBatches:
    """Each member's batches of training pairs (each pair once per epoch, in the member's own order) and its dropout
    generator. Members are indexed 0..k−1 in seed order; `live` lists the ones still training."""

    def __init__(self, seeds, n_pairs: int, batch_size: int, device: str, subsets: np.ndarray | None = None,
                 orderings: int = 1):
        """`subsets` (members, m): the pairs each member trains on (default: all `n_pairs`). `orderings`: samples
        of each pair per epoch, in random positions (a batch may hold a pair twice)."""
        self.subsets = subsets
        self.n_pairs = n_pairs if subsets is None else subsets.shape[1]
        self.batch_size, self.orderings = batch_size, orderings
        self.per_epoch = -(-self.n_pairs * orderings // batch_size)
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
                self._perms[i] = self._order[i].permutation(self.n_pairs * self.orderings) % self.n_pairs
        s = (step % self.per_epoch) * self.batch_size
        idx = [self._perms[i][s : s + self.batch_size] for i in live]
        if self.subsets is not None:
            idx = [self.subsets[i][j] for i, j in zip(live, idx)]
        return np.stack(idx)

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


def member_holdout(seeds, n_pairs: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Each member's own split of `n_pairs` pairs, drawn from its seed alone: (members, m) indices it trains on and
    (members, h) it early-stops on, h = round(share · n_pairs), each row sorted."""
    h = int(round(share * n_pairs))
    if not 1 <= h < n_pairs:
        raise ConfigError(f"holdout={share}: {n_pairs} pairs are too few to hold out that share for each member "
                          f"(need at least one on each side).")
    perms = [np.random.default_rng([int(s), 31]).permutation(n_pairs) for s in seeds]
    return np.stack([np.sort(p[h:]) for p in perms]), np.stack([np.sort(p[:h]) for p in perms])
