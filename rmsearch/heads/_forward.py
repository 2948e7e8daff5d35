"""Torch-free scoring of one member from its named arrays: what export writes and `load_ensemble` runs.

Torch heads (linear, mlp, mlp_clf) store:
    features (d,) int64    optional: the member's random subspace of embedding dims
    mean, scale (d,)       optional: input standardization, x -> (x - mean) / scale
    w0 (d, h0), b0 (h0,), w1 (h0, h1), b1 (h1,), ..., wL (hL, 1), bL (1,)   ReLU between layers
gbdt stores its trees as arrays (see `rmsearch.heads._trees`). `forward` runs the forward each head type
registers (`HeadKind.forward`).
"""

from __future__ import annotations

import numpy as np

from rmsearch.heads._base import head_kind


def mlp_forward(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    x = np.asarray(X, dtype=np.float32)
    if "features" in arrays:
        x = x[:, arrays["features"]]
    if "mean" in arrays:
        x = (x - arrays["mean"]) / arrays["scale"]
    layers = sum(1 for k in arrays if k.startswith("w") and k[1:].isdigit())
    for i in range(layers):
        x = x @ arrays[f"w{i}"] + arrays[f"b{i}"]
        if i < layers - 1:
            np.maximum(x, 0, out=x)
    return x[:, 0].astype(np.float32)


def mlp_parameters(arrays: dict[str, np.ndarray]) -> int:
    """Learnable numbers of one torch member: its weights and biases (not the input statistics or subspace)."""
    return int(sum(a.size for k, a in arrays.items() if k[:1] in "wb" and k[1:].isdigit()))


def forward(kind: str, arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Rewards (n,) of one member of head type `kind` for rows X (n, D); an unknown `kind` is a ConfigError."""
    return head_kind(kind).forward(arrays, X)
