"""Checks at the boundary: every array that enters rmsearch passes here, and every failure names the array,
the problem and the fix."""

from __future__ import annotations

import numpy as np

from rmsearch.errors import DataError
from rmsearch.files import drop_pages

# Chunked so a memory-mapped 8 GB split is checked without loading it whole.
_CHUNK_BYTES = 64 * 2**20
"""Values checked at once: a block of about this many bytes, however long a row is."""


def check_float_array(name: str, arr: np.ndarray, ndims: tuple[int, ...], *, what: str) -> np.ndarray:
    """Validate dtype, rank, emptiness and finiteness of `arr`; return it unchanged (memory maps stay maps).

    `name` is how the user knows the array (usually its file); `what` says what the axes mean, e.g.
    "(prompts, responses, dim)".
    """
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{name}: expected a numpy array, got {type(arr).__name__}. Save it with numpy.save.")
    if arr.dtype.kind != "f":
        raise DataError(
            f"{name}: dtype {arr.dtype} is not floating point; embeddings and rewards must be float16, float32 "
            f"or float64. Convert with arr.astype(numpy.float32) and save again."
        )
    if arr.ndim not in ndims:
        want = " or ".join(f"{n}-d" for n in ndims)
        raise DataError(f"{name}: has shape {arr.shape} ({arr.ndim}-d) but must be {want} {what}. Reshape it.")
    if arr.size == 0:
        raise DataError(f"{name}: is empty (shape {arr.shape}); every axis {what} needs at least one entry.")
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1)
    rows = max(1, _CHUNK_BYTES // max(1, flat.shape[1] * flat.itemsize))
    for start in range(0, flat.shape[0], rows):
        view = flat[start : start + rows]
        block = np.array(view)
        drop_pages(view)  # a large memory-mapped file is checked without staying resident
        if not np.isfinite(block).all():
            bad = np.argwhere(~np.isfinite(block))[0]
            index = (start + int(bad[0]),) + tuple(int(i) for i in bad[1:])
            value = block[tuple(bad)]
            raise DataError(
                f"{name}: contains a non-finite value ({value}) in row {index[0]}; NaN and inf are not allowed. "
                f"Drop or repair the affected rows (numpy.isfinite finds them) and save again."
            )
    return arr


def check_same_dim(first: tuple[str, int], second: tuple[str, int]) -> None:
    (name_a, dim_a), (name_b, dim_b) = first, second
    if dim_a != dim_b:
        raise DataError(
            f"embedding dim mismatch: {name_a} has dim {dim_a} but {name_b} has dim {dim_b}. Both must come from "
            f"the same embedding model; re-embed one of them."
        )
