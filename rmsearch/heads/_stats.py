"""Column statistics of training rows, for the heads' input normalization (torch-free)."""

from __future__ import annotations

import numpy as np

STATS_CHUNK = 65536
"""Rows whose sums are taken in one sequence before they are added to the total (the order the sums keep)."""
STATS_ROWS = 2048
"""Rows `row_stats` converts to float64 at a time."""


def row_stats(X: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float32; std 1 where a dim is constant) of X[rows], computed in float64 and streamed (X may be
    a memory map): the input normalization of the heads that normalize. The sums run row after row within each
    chunk of STATS_CHUNK rows, chunk sums added in turn, as numpy sums a chunk's float64 copy along its rows; the rows
    are read STATS_ROWS at a time into two reused buffers (each block's sums carried in its first row), so no fresh
    gigabyte-sized copies, and the same bits."""
    D = X.shape[1]
    buf, sq = np.empty((STATS_ROWS + 1, D)), np.empty((STATS_ROWS + 1, D))
    total, total_sq = np.zeros(D), np.zeros(D)
    for s in range(0, len(rows), STATS_CHUNK):
        buf[0] = sq[0] = 0.0
        chunk = rows[s : s + STATS_CHUNK]
        for t in range(0, len(chunk), STATS_ROWS):
            n = len(chunk[t : t + STATS_ROWS])
            buf[1 : n + 1] = X[chunk[t : t + STATS_ROWS]]
            np.square(buf[1 : n + 1], out=sq[1 : n + 1])
            buf[0], sq[0] = buf[: n + 1].sum(0), sq[: n + 1].sum(0)
        total += buf[0]
        total_sq += sq[0]
    mean = total / len(rows)
    std = np.sqrt(np.maximum(total_sq / len(rows) - mean**2, 0))
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)
