"""`gbdt` head: scikit-learn `HistGradientBoostingClassifier` on pointwise labels; see `GBDTConfig`.

Choices:
- Pointwise, like `mlp_clf`: each pair contributes its two rows, row a labelled y and row b labelled 1 − y
  (labels are hard: y > 0.5). The reward is the raw decision value (log-odds of "preferred").
- One estimator per member seed; sklearn parallelizes each fit over the task's cores with OpenMP. A member's
  randomness all comes from `np.random.default_rng(seed)` (its feature subspace, drawn first so it depends on
  the seed and D alone, then its Poisson(1) bootstrap counts) and `random_state=seed`, so a member is the same
  whatever group it is trained in. A bootstrap draw repeats each pair's rows as often as it was drawn instead of
  passing sample weights: the histograms and leaf values are the same, and scikit-learn's binning with sample
  weights computes a weighted percentile per feature and bin (60 s for 2,900 rows × 384 dims, against 0.1 s).
- Memory: scikit-learn's fit holds its rows as float64 (16·D bytes a pair), so each member's rows are gathered
  straight from the stored split into one float64 matrix, block by block (no float16 or float32 copy of all
  pairs beside it), and a member trains on at most `max_pairs` pairs: a random subset drawn from its seed after
  its feature subspace. At D = 2,048 the default 50,000 pairs hold 1.6 GB; all 360,000 pairs of a seed-shaped
  full-scale split would hold 11.8 GB. The early-stop pairs are capped at a quarter of that, by one fixed draw
  (`STOP_SHARE`). The split's file pages are let go as rows are gathered (`drop_pages`).
- Early stopping (10 rounds without a better loss) validates on the `stop` pairs' rows when given
  (scikit-learn >= 1.6 takes `X_val`), else on sklearn's own 10% split of the training rows. Like the torch
  heads, the member keeps its best round: trees after the best validation loss are dropped.
- The learned state is the trees as plain arrays (`_trees.trees_to_arrays`), scored by the numpy
  `_trees.tree_forward`; the sklearn estimators are not kept.
- `history_` has one record per boosting round: train/loss (weighted pointwise log loss) and, with `stop`,
  val/nll and val/accuracy of the pairs (Bradley-Terry on score differences, as the other heads report).
  Members that stopped earlier repeat their last value. They come from staged predictions, since sklearn
  records `train_score_` only when early stopping.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from rmsearch.data import Pairs
from rmsearch.files import ROW_BLOCK, drop_pages
from rmsearch.heads._base import Head
from rmsearch.heads._configs import GBDTConfig
from rmsearch.heads._trees import trees_to_arrays

_HAS_X_VAL = "X_val" in inspect.signature(HistGradientBoostingClassifier.fit).parameters


STOP_SHARE = 4
"""The early-stop pairs are capped at `max_pairs // STOP_SHARE`: a loss to compare rounds by needs fewer rows than a
fit (12,500 pairs estimate a mean log loss to about ±0.004)."""


def _labels(pairs: Pairs) -> np.ndarray:
    """Pointwise labels [y; 1 − y] of rows [a; b] (hard: y > 0.5)."""
    lab = (np.asarray(pairs.y) > 0.5).astype(np.int64)
    return np.concatenate([lab, 1 - lab])


def _gather(X: np.ndarray, rows: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
    """float64 `X[rows][:, feats]`, built block by block: the one copy scikit-learn's fit holds. The file pages of a
    memory-mapped `X` are let go after each block (`drop_pages`), so the split's pages do not stay resident beside
    the copy."""
    out = np.empty((len(rows), X.shape[1] if feats is None else len(feats)), np.float64)
    for i in range(0, len(rows), ROW_BLOCK):
        block = X[rows[i : i + ROW_BLOCK]]
        out[i : i + ROW_BLOCK] = block if feats is None else block[:, feats]
        drop_pages(X)
    return out


def _capped(pairs: Pairs, max_pairs: int, rng: np.random.Generator) -> Pairs:
    """At most `max_pairs` of the pairs (0: all), a random subset in their order."""
    if not max_pairs or len(pairs) <= max_pairs:
        return pairs
    return pairs.subset(np.sort(rng.choice(len(pairs), max_pairs, replace=False)))


def _pad(curves: list[list[float]]) -> np.ndarray:
    """(rounds, members) with each member's last value repeated after it stopped."""
    n = max(len(c) for c in curves)
    return np.stack([np.asarray(c + [c[-1]] * (n - len(c))) for c in curves], axis=1)


class GBDTHead(Head):
    kind = "gbdt"
    Config = GBDTConfig

    def fit(self, train: Pairs, stop: Pairs | None = None) -> "GBDTHead":
        cfg: GBDTConfig = self.config
        has_stop = stop is not None and len(stop) > 0
        if has_stop:
            stop = _capped(stop, cfg.max_pairs // STOP_SHARE, np.random.default_rng(0))
            stop_rows, ts, n_stop = np.concatenate([stop.a, stop.b]), _labels(stop), len(stop)
        use_stop = cfg.early_stopping and has_stop and _HAS_X_VAL
        D = train.X.shape[1]
        self.arrays_, losses, nlls, accs = [], [], [], []
        for seed in self.seeds:
            rng = np.random.default_rng(seed)
            feats = None
            if cfg.feature_fraction < 1:
                feats = np.sort(rng.choice(D, max(1, int(round(cfg.feature_fraction * D))), replace=False))
            pairs = _capped(train, cfg.max_pairs, rng)
            rows, tm = np.concatenate([pairs.a, pairs.b]), _labels(pairs)
            if cfg.bootstrap:  # a pair's two rows share its Poisson(1) draw; a row drawn c times is repeated c times
                counts = rng.poisson(1.0, len(pairs))
                keep = np.repeat(np.arange(len(rows)), np.concatenate([counts, counts]))
                rows, tm = rows[keep], tm[keep]
            Xm = _gather(train.X, rows, feats)
            est = HistGradientBoostingClassifier(
                max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, max_leaf_nodes=cfg.max_leaf_nodes,
                max_depth=cfg.max_depth or None, min_samples_leaf=cfg.min_samples_leaf,
                l2_regularization=cfg.l2_regularization, early_stopping=cfg.early_stopping, scoring="loss",
                validation_fraction=None if use_stop else 0.1, n_iter_no_change=10, random_state=int(seed),
            )
            Xsm = _gather(stop.X, stop_rows, feats) if has_stop else None
            est.fit(Xm, tm, **({"X_val": Xsm, "y_val": ts} if use_stop else {}))
            n_trees = int(np.argmax(est.validation_score_)) if cfg.early_stopping else None
            self.arrays_.append(trees_to_arrays(est, feats, n_trees))

            losses.append([_log_loss(r, tm) for r in est.staged_decision_function(Xm)])
            del Xm
            if has_stop:
                z = [(r[:n_stop] - r[n_stop:]) * (2 * ts[:n_stop] - 1) for r in est.staged_decision_function(Xsm)]
                nlls.append([float(np.logaddexp(0, -zi).mean()) for zi in z])
                accs.append([float(((zi > 0) + 0.5 * (zi == 0)).mean()) for zi in z])
            del est, Xsm
        curves = {"train/loss": _pad(losses)}
        if has_stop:
            curves |= {"val/nll": _pad(nlls), "val/accuracy": _pad(accs)}
        self.history_ = [{k: v[i] for k, v in curves.items()} for i in range(len(curves["train/loss"]))]
        self.epochs_ = len(self.history_)
        return self


def _log_loss(raw: np.ndarray, t: np.ndarray) -> float:
    """Mean binary log loss of raw log-odds against 0/1 labels."""
    return float(np.mean(np.logaddexp(0, raw) - t * raw))
