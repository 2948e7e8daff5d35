"""`linear` head: see `LinearConfig` for what it is and its hyperparameters. Minibatch training (solver 'adam') is
in `_torch`; solver 'lbfgs' fits the exact L2-penalized logistic regression here, member by member, with the same
per-member subspace and bootstrap draw the minibatch path uses, into the same arrays. It has no early stopping,
so it trains on the early-stopping pairs too.

The fit is on each pair once, as float32 differences built a block of pairs at a time: a pair seen in both
orientations ((d, y) and (−d, 1 − y)) adds the same loss twice, so the symmetric fit is this one at twice C. At
the seed's full shapes (400,000 pairs × 2048) that is one 3.3 GB matrix, where both orientations in float64 were
13 GB and their building twice that; scikit-learn fits float32 as it is, without a copy."""

from __future__ import annotations

import numpy as np

from rmsearch.files import ROW_BLOCK, drop_pages
from rmsearch.heads._configs import LinearConfig
from rmsearch.heads._stats import row_stats
from rmsearch.heads._torch import TorchHead


class LinearHead(TorchHead):
    kind = "linear"
    Config = LinearConfig
    pointwise = False

    def fit(self, train, stop=None) -> "LinearHead":
        if self.config.solver == "adam":
            return super().fit(train, stop=stop)
        if stop is not None and len(stop):
            train = train.join(stop)  # an exact fit has no early stopping: the early-stop pairs are training data
        cfg: LinearConfig = self.config
        D = train.X.shape[1]
        rows = np.unique(np.concatenate([train.a, train.b]))
        mean, scale = row_stats(train.X, rows) if cfg.normalize else (np.zeros(D, np.float32), np.ones(D, np.float32))
        y = np.asarray(train.y) > 0.5
        sign = 2.0 * y - 1.0
        self.arrays_, losses = [], []
        whole = _differences(train, scale, None) if cfg.feature_fraction >= 1 else None  # every member's, once
        for seed in self.seeds:
            rng = np.random.default_rng([int(seed), 17])  # the draws, in the order, of the minibatch path
            feats = np.sort(rng.choice(D, max(1, int(round(cfg.feature_fraction * D))), replace=False)) \
                if cfg.feature_fraction < 1 else None
            w = rng.poisson(1.0, len(train)).astype(np.float64) if cfg.bootstrap else None
            Z = whole if feats is None else _differences(train, scale, feats)
            # no intercept: a bias cancels in r(a) − r(b)
            model = _symmetric_fit(Z, y, w, cfg.C)
            arrays = {"w0": model.coef_[0][:, None].astype(np.float32), "b0": np.zeros(1, np.float32)}
            if feats is not None:
                arrays["features"] = feats.astype(np.int64)
            if cfg.normalize:
                arrays["mean"] = (mean if feats is None else mean[feats]).copy()
                arrays["scale"] = (scale if feats is None else scale[feats]).copy()
            self.arrays_.append(arrays)
            # one history record: the fit's training loss (r(a) − r(b) is the coefficients times the difference)
            losses.append(np.logaddexp(0, -(Z @ arrays["w0"][:, 0]) * sign).mean())
        self.history_ = [{"train/loss": np.array(losses, np.float32)}]
        self.epochs_ = 1.0
        return self


def _differences(train, scale: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
    """(pairs, features) float32 (x_a − x_b) / scale over `feats` (None: all), written block by block into the one
    matrix: a block's rows are the only temporaries, and the file pages of a memory-mapped split are let go after
    each block (`drop_pages`), so the split's pages do not stay resident beside the matrix."""
    s = scale if feats is None else scale[feats]
    out = np.empty((len(train), len(s)), np.float32)
    for i in range(0, len(train), ROW_BLOCK):
        a, b = train.X[train.a[i : i + ROW_BLOCK]], train.X[train.b[i : i + ROW_BLOCK]]
        if feats is not None:
            a, b = a[:, feats], b[:, feats]
        block = out[i : i + ROW_BLOCK]
        np.subtract(a, b, out=block, dtype=np.float32)
        block /= s
        drop_pages(train.X)
    return out


def _symmetric_fit(Z: np.ndarray, y: np.ndarray, w: np.ndarray | None, C: float):
    """scikit-learn's logistic regression on both orientations of every pair, without building them: the same
    optimum as one orientation at 2C. Pairs of one label only (tiny data) are fitted on both orientations, as
    scikit-learn needs two classes."""
    from sklearn.linear_model import LogisticRegression

    if y.all() or not y.any():
        return LogisticRegression(C=C, fit_intercept=False, max_iter=1000).fit(
            np.concatenate([Z, -Z]), np.concatenate([y, ~y]), sample_weight=None if w is None else np.r_[w, w])
    return LogisticRegression(C=2 * C, fit_intercept=False, max_iter=1000).fit(Z, y, sample_weight=w)
