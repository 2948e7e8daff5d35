"""From data to a task: training pairs, early-stopping pairs, a validation split (the search objective) and a
test split (final numbers only). Prompts never cross splits; the record says which went where.

Gold data (seed layout: train has few responses per prompt, test has many): training and early-stopping pairs
come from the train split's prompts; validation and test pools are carved from the test split's prompts,
because over-optimization only shows in large pools. Pair data: a 10% test split, and either a 10% validation
split or, when that would be too small to rank trials on (one standard error of an accuracy on 180 pairs is
3.7 points), k-fold cross-validation over all the other pairs: each member is trained once per fold and once on
all of them, and its validation scores are its out-of-fold scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rmsearch.data._annotate import Annotator, Pairs, annotate
from rmsearch.data._kinds import GoldData, PairData
from rmsearch.errors import DataError


@dataclass(frozen=True)
class Split:
    """Rows to score, `source[rows]`, with labelled pairs over them and, for gold data, candidate pools: rows
    are laid out prompt-major and `gold` is (prompts, M). The pairs index positions in `rows` (their X is None),
    so pair scores come from the row scores without scoring anything twice."""

    source: np.ndarray
    rows: np.ndarray
    pairs: Pairs
    gold: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def chunks(self, size: int = 65536):
        """Yield (start, rows as a float32 array) in order: streams a memory map without loading it whole."""
        for start in range(0, len(self.rows), size):
            idx = self.rows[start : start + size]
            if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
                block = self.source[idx[0] : idx[-1] + 1]
            else:
                block = self.source[idx]
            yield start, np.asarray(block, dtype=np.float32)


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: members train on `train` (early stopping on `stop`) and score the validation
    split's pairs `held_out` (indices into `val.pairs`), which no pair of `train` or `stop` shares."""

    train: Pairs
    stop: Pairs
    held_out: np.ndarray


@dataclass(frozen=True)
class Task:
    train: Pairs
    stop: Pairs
    val: Split
    test: Split
    dim: int
    kind: str
    data_name: str
    fingerprint: str
    label_error: float | None
    record: dict = field(default_factory=dict)
    folds: tuple[Fold, ...] = ()
    """Cross-validation folds (pair data): then `val` holds every pair outside the test split, each scored by
    the fold model that did not see it, and `train`/`stop` are all of those pairs (the refit)."""

    @property
    def has_gold(self) -> bool:
        return self.val.gold is not None


@dataclass(frozen=True)
class TaskConfig:
    """How a task is carved from data. Fields are documented where they act."""

    annotator: Annotator = Annotator()
    seed: int = 0
    """Seeds the prompt split and the annotator draws."""
    stop_fraction: float = 0.1
    """Gold data: share of train prompts held out for early stopping. Pair data: share of pairs for it."""
    val_fraction: float = 0.5
    """Gold data: share of the test split's prompts used for validation (the rest is the final test)."""
    eval_pairs_per_prompt: int = 20
    """Gold data: gold-labelled pairs per validation/test prompt for pairwise accuracy."""
    pair_test_fraction: float = 0.1
    """Pair data: share of pairs for the final test, and (without folds) the same share for validation."""
    folds: int | None = None
    """Pair data: cross-validation folds for selection (0: a held-out validation split). None picks
    `AUTO_FOLDS` when a validation split would hold fewer than `CV_BELOW` pairs, else 0."""

    def validate(self) -> "TaskConfig":
        for name in ("stop_fraction", "val_fraction", "pair_test_fraction"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise DataError(f"{name}={v} must be strictly between 0 and 1.")
        if self.folds is not None and (self.folds == 1 or self.folds < 0):
            raise DataError(f"folds={self.folds}: use 0 for a held-out validation split or at least 2 folds.")
        self.annotator.validate()
        return self

    def folds_for(self, data) -> int:
        """The number of folds in force for `data` (0 for gold data, which selects on candidate pools)."""
        if not isinstance(data, PairData):
            if self.folds:
                raise DataError(f"folds={self.folds}: cross-validation is for pair data; gold data selects on the "
                                f"validation pools. Omit --folds.")
            return 0
        if self.folds is not None:
            return self.folds
        return AUTO_FOLDS if round(data.chosen.shape[0] * self.pair_test_fraction) < CV_BELOW else 0


AUTO_FOLDS = 5
CV_BELOW = 1000
"""Below this many validation pairs (one standard error of an accuracy about 1.6 points) selection uses folds."""


def _cut(n: int, fraction: float, rng: np.random.Generator, what: str) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    k = int(round(n * fraction))
    if k < 1 or k >= n:
        raise DataError(f"{what}: {n} items are too few to hold out {fraction:.0%} (need at least one on each side).")
    return np.sort(order[k:]), np.sort(order[:k])


def _pool_split(cs_emb: np.ndarray, gold: np.ndarray, prompts: np.ndarray, pairs_per_prompt: int, seed: int) -> Split:
    P, M, D = cs_emb.shape
    source = cs_emb.reshape(P * M, D)
    rows = (prompts[:, None] * M + np.arange(M)).ravel()
    g = np.asarray(gold[prompts], dtype=np.float64)
    local = np.arange(len(prompts))
    pairs, _ = annotate(None, g, local, Annotator(pairs_per_prompt=pairs_per_prompt, flip_rate=0.0), seed)
    return Split(source=source, rows=rows, pairs=pairs, gold=g)


def full_split(data: GoldData | PairData, config: TaskConfig = TaskConfig()) -> Split:
    """All of a dataset as one evaluation split, for data a model was not trained on.

    Gold data: every prompt of the test split (the candidate pools; the train split has too few candidates per
    prompt for best-of-N), each with all its candidates, and `config.eval_pairs_per_prompt` gold-labelled pairs
    within each prompt for pairwise accuracy and calibration (drawn with `config.seed`). Pair data: every pair,
    chosen as `a` (y = 1).
    """
    if isinstance(data, PairData):
        M = data.chosen.shape[0]
        X = np.concatenate([np.asarray(data.chosen, np.float32), np.asarray(data.rejected, np.float32)])
        idx = np.arange(M)
        return Split(source=X, rows=np.arange(2 * M), pairs=Pairs(None, idx, idx + M, np.ones(M, np.float32)))
    te = data.test
    return _pool_split(te.embeddings, te.gold, np.arange(te.prompts), config.eval_pairs_per_prompt,
                       config.seed * 1000 + 5)


def make_task(data: GoldData | PairData, config: TaskConfig = TaskConfig()) -> Task:
    config.validate()
    rng = np.random.default_rng([config.seed, 7])
    if isinstance(data, PairData):
        return _pair_task(data, config, rng)
    config.folds_for(data)  # refuses folds for gold data
    tr = data.train
    train_prompts, stop_prompts = _cut(tr.prompts, config.stop_fraction, rng, "train split prompts")
    X = tr.embeddings.reshape(tr.prompts * tr.responses, tr.dim)
    gold = np.asarray(tr.gold, dtype=np.float64)
    train, error = annotate(X, gold, train_prompts, config.annotator, seed=config.seed * 1000 + 1)
    stop, _ = annotate(X, gold, stop_prompts, config.annotator, seed=config.seed * 1000 + 2)
    te = data.test
    test_prompts, val_prompts = _cut(te.prompts, config.val_fraction, rng, "test split prompts")
    val = _pool_split(te.embeddings, te.gold, val_prompts, config.eval_pairs_per_prompt, config.seed * 1000 + 3)
    test = _pool_split(te.embeddings, te.gold, test_prompts, config.eval_pairs_per_prompt, config.seed * 1000 + 4)
    record = {
        "train_split": {"train_prompts": train_prompts.tolist(), "early_stop_prompts": stop_prompts.tolist()},
        "test_split": {"validation_prompts": val_prompts.tolist(), "test_prompts": test_prompts.tolist()},
        "train_pairs": len(train), "early_stop_pairs": len(stop),
        "label_error_rate": error,
    }
    return Task(train=train, stop=stop, val=val, test=test, dim=data.dim, kind="gold", data_name=data.name,
                fingerprint=data.fingerprint, label_error=error, record=record)


def _pair_task(data: PairData, config: TaskConfig, rng: np.random.Generator) -> Task:
    M = data.chosen.shape[0]
    X = np.concatenate([np.asarray(data.chosen, np.float32), np.asarray(data.rejected, np.float32)])
    # orient half the pairs rejected-first so no head can learn "the left side wins"
    flip = rng.random(M) < 0.5
    idx = np.arange(M)
    a = np.where(flip, idx + M, idx)
    b = np.where(flip, idx, idx + M)
    all_pairs = Pairs(X, a, b, (~flip).astype(np.float32))
    rest, test_idx = _cut(M, config.pair_test_fraction, rng, "pairs")
    rest = rest[rng.permutation(len(rest))]
    n_folds = config.folds_for(data)

    def split_of(idx: np.ndarray) -> Split:
        rows = np.concatenate([a[idx], b[idx]])
        n = len(idx)
        local = Pairs(None, np.arange(n), np.arange(n, 2 * n), all_pairs.y[idx])
        return Split(source=X, rows=rows, pairs=local)

    def train_stop(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        train, stop = _cut(len(idx), config.stop_fraction, rng, "training pairs")
        return idx[train], idx[stop]

    folds: tuple[Fold, ...] = ()
    if n_folds:
        if n_folds > len(rest):
            raise DataError(f"folds={n_folds}: only {len(rest)} pairs outside the test split; use fewer folds.")
        val_idx = np.sort(rest)  # every pair outside the test split is validated, out of fold
        assignment = np.empty(len(val_idx), np.int64)
        assignment[rng.permutation(len(val_idx))] = np.arange(len(val_idx)) % n_folds
        for f in range(n_folds):
            tr, st = train_stop(val_idx[assignment != f])
            folds += (Fold(all_pairs.subset(tr), all_pairs.subset(st), np.flatnonzero(assignment == f)),)
        train_idx, stop_idx = train_stop(val_idx)
    else:
        k = int(round(M * config.pair_test_fraction))
        val_idx, rest = np.sort(rest[:k]), np.sort(rest[k:])
        train_idx, stop_idx = train_stop(rest)
    record = {"pairs": {"train": train_idx.tolist(), "early_stop": stop_idx.tolist(),
                        "validation": val_idx.tolist(), "test": test_idx.tolist()},
              "folds": n_folds}
    if n_folds:
        record["pairs"]["fold_of_validation_pair"] = assignment.tolist()
    return Task(train=all_pairs.subset(train_idx), stop=all_pairs.subset(stop_idx), val=split_of(val_idx),
                test=split_of(test_idx), dim=data.dim, kind="pairs", data_name=data.name,
                fingerprint=data.fingerprint, label_error=None, record=record, folds=folds)
