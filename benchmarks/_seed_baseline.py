"""The seed's training recipe, as a benchmark-only reference (not product code; nothing in rmsearch imports it).

MLP D→1024→512→1 (ReLU) in plain torch; Bradley-Terry loss on BOTH orderings of every pair; Adam lr 1e-3;
random batches of 10,240 pair orderings; up to 30 epochs; an 80/20 train/validation split of the pairs; early
stop when the last validation loss exceeds each of the previous 3 (no restore of the best weights); members
differ by seed and split and are trained one after another in float32 with all cores.

As a process (what `seed_recipe.py` times end to end against `rmsearch launch` + `export`):

    python benchmarks/_seed_baseline.py DATA --seed S --quality Q --out RESULT.npz

trains on all annotated training pairs of DATA (rmsearch's train + early-stop pairs of the same task, so both sides
see the same labels), scores the task's test split (as an export scores it for its manifest) and saves the scores,
the epochs each member ran and the training's wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 10240
EPOCHS = 30
LR = 1e-3
VAL_FRACTION = 0.2
PATIENCE = 3


def seed_mlp(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 1))


def _both_orderings(a: np.ndarray, b: np.ndarray, y: np.ndarray):
    return np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([y, 1 - y]).astype(np.float32)


def _bt_loss(model: nn.Module, X: np.ndarray, a, b, y) -> torch.Tensor:
    xa = torch.from_numpy(np.asarray(X[a], dtype=np.float32))
    xb = torch.from_numpy(np.asarray(X[b], dtype=np.float32))
    diff = (model(xa) - model(xb))[:, 0]  # each side scored separately, as the seed does
    return F.binary_cross_entropy_with_logits(diff, torch.from_numpy(y))


def train_seed_member(X, a, b, y, seed: int) -> tuple[nn.Module, int]:
    """One member: its own init, 80/20 pair split and batch order, all from `seed`. Returns (model, epochs run)."""
    torch.set_num_threads(os.cpu_count())
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    order = rng.permutation(len(a))
    n_val = int(round(len(a) * VAL_FRACTION))
    val, tr = order[:n_val], order[n_val:]
    ta, tb, ty = _both_orderings(a[tr], b[tr], y[tr])
    va, vb, vy = _both_orderings(a[val], b[val], y[val])
    model = seed_mlp(X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    val_losses: list[float] = []
    epochs = 0
    for _ in range(EPOCHS):
        epochs += 1
        model.train()
        perm = rng.permutation(len(ta))
        for s in range(0, len(perm), BATCH):
            idx = perm[s : s + BATCH]
            loss = _bt_loss(model, X, ta[idx], tb[idx], ty[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            v = sum(float(_bt_loss(model, X, va[s : s + BATCH], vb[s : s + BATCH], vy[s : s + BATCH])) * len(va[s : s + BATCH])
                    for s in range(0, len(va), BATCH)) / max(len(va), 1)
        val_losses.append(v)
        if len(val_losses) > PATIENCE and all(v > p for p in val_losses[-PATIENCE - 1 : -1]):
            break  # no restore: the seed keeps the last weights
    return model, epochs


def train_seed_ensemble(X, a, b, y, members: int = 10, seed: int = 0) -> list[nn.Module]:
    """`members` models trained one after another; member i uses seed `seed + i` (init, split and order)."""
    models = []
    for i in range(members):
        model, epochs = train_seed_member(X, np.asarray(a), np.asarray(b), np.asarray(y, np.float32), seed + i)
        model.epochs_ = epochs
        models.append(model)
    return models


def score_seed_ensemble(models: list[nn.Module], X, chunk: int = 65536) -> np.ndarray:
    """(members, n) float32 raw scores of the rows of X."""
    out = np.empty((len(models), len(X)), np.float32)
    with torch.no_grad():
        for s in range(0, len(X), chunk):
            x = torch.from_numpy(np.asarray(X[s : s + chunk], dtype=np.float32))
            for i, m in enumerate(models):
                out[i, s : s + len(x)] = m(x)[:, 0].numpy()
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="a seed-format folder (rmsearch data synth --out ...)")
    ap.add_argument("--seed", type=int, default=0, help="the task's seed, as `rmsearch launch --seed`")
    ap.add_argument("--quality", type=float, default=2.0, help="the annotator's quality, as `rmsearch launch --quality`")
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--out", required=True, help=".npz file for the epochs each member ran and the test split's "
                                                 "scores (mean of the members' raw scores)")
    args = ap.parse_args(argv)
    from rmsearch.data import Annotator, TaskConfig, load_data, make_task

    task = make_task(load_data(args.data), TaskConfig(annotator=Annotator(quality=args.quality), seed=args.seed))
    tr, st = task.train, task.stop
    t = time.perf_counter()
    models = train_seed_ensemble(tr.X, np.concatenate([tr.a, st.a]), np.concatenate([tr.b, st.b]),
                                 np.concatenate([tr.y, st.y]), members=args.members, seed=args.seed * 1000)
    train_seconds = time.perf_counter() - t
    test = np.concatenate([score_seed_ensemble(models, block) for _, block in task.test.chunks()], axis=1)
    np.savez(args.out, epochs=[m.epochs_ for m in models], test_scores=test.mean(0), train_seconds=train_seconds)
    print(f"seed recipe: {args.members} members, epochs {[m.epochs_ for m in models]}", file=sys.stderr)


if __name__ == "__main__":
    main()
