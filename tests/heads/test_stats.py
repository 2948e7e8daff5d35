"""The heads' input normalization statistics: streamed through small buffers, the same bits as one float64 pass."""

import numpy as np
import pytest

import rmsearch.heads._stats as stats


def _one_pass(X, rows):
    block = np.asarray(X[rows], dtype=np.float64)
    mean = block.sum(0) / len(rows)
    std = np.sqrt(np.maximum((block**2).sum(0) / len(rows) - mean**2, 0))
    return mean.astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_row_stats_streamed_in_small_blocks_are_the_same_bits_as_one_pass(tmp_path, monkeypatch, dtype):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((3000, 24)) * 4 + 7).astype(dtype)
    X[:, 5] = 2.0  # a constant dim: std 1
    np.save(tmp_path / "x.npy", X)
    rows = np.sort(rng.choice(3000, 2500, replace=False))
    monkeypatch.setattr(stats, "STATS_ROWS", 37)  # many blocks, a short last one
    mean, std = stats.row_stats(np.load(tmp_path / "x.npy", mmap_mode="r"), rows)
    want_mean, want_std = _one_pass(X, rows)
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(std, want_std)
    assert std[5] == 1.0 and abs(mean[5] - 2.0) < 1e-6
