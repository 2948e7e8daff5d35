"""`linear` head: see `LinearConfig` for what it is and its hyperparameters. Minibatch training (solver 'adam') is
in `_torch`; solver 'lbfgs' fits the exact L2-penalized logistic regression here, member by member, with the same
per-member subspace and bootstrap draw the minibatch path uses, into the same arrays. It has no early stopping,
so it trains on the early-stopping pairs too."""

from __future__ import annotations

import numpy as np

from rmsearch.heads._configs import LinearConfig
from rmsearch.heads._torch import TorchHead, _row_stats


class LinearHead(TorchHead):
    kind = "linear"
    Config = LinearConfig
    pointwise = False

    def fit(self, train, stop=None) -> "LinearHead":
        if self.config.solver == "adam":
            return super().fit(train, stop=stop)
        from sklearn.linear_model import LogisticRegression

        if stop is not None and len(stop):
            train = train.join(stop)  # an exact fit has no early stopping: the early-stop pairs are training data
        cfg: LinearConfig = self.config
        D = train.X.shape[1]
        rows = np.unique(np.concatenate([train.a, train.b]))
        mean, scale = _row_stats(train.X, rows) if cfg.normalize else (np.zeros(D, np.float32), np.ones(D, np.float32))
        diff = (np.asarray(train.X[train.a], np.float64) - np.asarray(train.X[train.b], np.float64)) / scale
        y = np.asarray(train.y) > 0.5
        self.arrays_, self.history_ = [], []
        for seed in self.seeds:
            rng = np.random.default_rng([int(seed), 17])  # the draws, in the order, of the minibatch path
            feats = np.sort(rng.choice(D, max(1, int(round(cfg.feature_fraction * D))), replace=False)) \
                if cfg.feature_fraction < 1 else None
            w = rng.poisson(1.0, len(train)).astype(np.float64) if cfg.bootstrap else None
            Z = diff[:, feats] if feats is not None else diff
            # both orientations of every pair: the fit is symmetric and needs no intercept (a bias cancels in
            # r(a) − r(b))
            model = LogisticRegression(C=cfg.C, fit_intercept=False, max_iter=1000).fit(
                np.concatenate([Z, -Z]), np.concatenate([y, ~y]),
                sample_weight=None if w is None else np.concatenate([w, w]))
            arrays = {"w0": model.coef_[0][:, None].astype(np.float32), "b0": np.zeros(1, np.float32)}
            if feats is not None:
                arrays["features"] = feats.astype(np.int64)
            if cfg.normalize:
                arrays["mean"] = (mean if feats is None else mean[feats]).copy()
                arrays["scale"] = (scale if feats is None else scale[feats]).copy()
            self.arrays_.append(arrays)
        margin = self.score(np.asarray(train.X[rows], np.float32))  # one history record: the fit's training loss
        pos = {r: i for i, r in enumerate(rows)}
        ia, ib = np.array([pos[a] for a in train.a]), np.array([pos[b] for b in train.b])
        z = (margin[:, ia] - margin[:, ib]) * (2.0 * y - 1.0)
        self.history_ = [{"train/loss": np.logaddexp(0, -z).mean(1).astype(np.float32)}]
        self.epochs_ = 1.0
        return self
