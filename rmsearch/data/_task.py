"""From data to a task: training pairs, early-stopping pairs, a validation split (the search objective) and a
test split (final numbers only). Prompts never cross splits; the record says which went where.

Gold data (seed layout: train has few responses per prompt, test has many): training and early-stopping pairs
come from the train split's prompts; validation and test pools are carved from the test split's prompts,
because over-optimization only shows in large pools. Pair data: a 10% test split, and either a 10% validation
split or, when that would be too small to rank trials on (one standard error of an accuracy on 180 pairs is
3.7 points), k-fold cross-validation over all the other pairs: each member is trained once per fold and once on
all of them, and its validation scores are its out-of-fold scores. Pair data cuts by prompt where pairs carry
one (`PairData.prompts`): the shares are of prompts, and a prompt's pairs stay together in one split and fold.

Every split knows its units -- the prompts (gold pools, or pair data's prompts) that bootstrap intervals
resample -- and, where the data came from text, each row's response length and each unit's category.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rmsearch.data._annotate import Annotator, Pairs, annotate
from rmsearch.data._kinds import CandidateSet, GoldData, PairData
from rmsearch.errors import DataError
from rmsearch.files import drop_pages


@dataclass(frozen=True)
class Split:
    """Rows to score, `source[rows]`, with labelled pairs over them and, for gold data, candidate pools: rows
    are laid out prompt-major and `gold` is (prompts, M). The pairs index positions in `rows` (their X is None),
    so pair scores come from the row scores without scoring anything twice."""

    source: np.ndarray
    rows: np.ndarray
    pairs: Pairs
    gold: np.ndarray | None = None
    groups: np.ndarray | None = None
    """Pair data: (pairs,) the unit (prompt, 0..units-1) of each pair; None: each pair is its own unit."""
    lengths: np.ndarray | None = None
    """(rows,) the response length in characters of each row, where the data came from text."""
    category: np.ndarray | None = None
    """(units,) each unit's category code (an index into `categories`, -1 for none), where the data has them."""
    categories: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def unit_of_pair(self) -> np.ndarray:
        """(pairs,) the unit of each labelled pair: its prompt (gold pools are laid out prompt-major), or its
        pair-data prompt group."""
        if self.gold is not None:
            return self.pairs.a // self.gold.shape[1]
        return np.arange(len(self.pairs)) if self.groups is None else self.groups

    @property
    def units(self) -> int:
        """How many units (prompts) the split holds: what bootstrap intervals resample."""
        if self.gold is not None:
            return self.gold.shape[0]
        return len(self.pairs) if self.groups is None else int(self.groups.max(initial=-1)) + 1

    def per_unit(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair `values` -> (sum over each unit's pairs, each unit's pair count), both (units,)."""
        owner = self.unit_of_pair
        return (np.bincount(owner, weights=values, minlength=self.units),
                np.bincount(owner, minlength=self.units).astype(np.float64))

    def chunks(self, size: int = 65536):
        """Yield (start, rows as a float32 array) in order: streams a memory map without loading it whole, each
        chunk's file pages let go once copied (`drop_pages`), so the process holds one chunk at a time."""
        for start in range(0, len(self.rows), size):
            idx = self.rows[start : start + size]
            if not len(idx):
                continue
            if idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
                block = np.asarray(self.source[idx[0] : idx[-1] + 1], dtype=np.float32)
            else:
                block = np.asarray(self.source[idx], dtype=np.float32)
            drop_pages(self.source[idx.min() : idx.max() + 1])  # the rows read lie in this span
            yield start, block


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
        need = int(np.ceil(max(1 / fraction, 1 / (1 - fraction)) - 1e-9))
        raise DataError(f"{what}: {n} are too few to hold out {fraction:.0%}: at least {need} are needed so that "
                        f"both sides get one. Use more data, or another fraction.")
    return np.sort(order[k:]), np.sort(order[:k])


def _pool_split(cs: CandidateSet, prompts: np.ndarray, pairs_per_prompt: int, seed: int,
                categories: tuple[str, ...] = ()) -> Split:
    P, M, D = cs.embeddings.shape
    source = cs.embeddings.reshape(P * M, D)
    rows = (prompts[:, None] * M + np.arange(M)).ravel()
    g = np.asarray(cs.gold[prompts], dtype=np.float64)
    local = np.arange(len(prompts))
    pairs, _ = annotate(None, g, local, Annotator(pairs_per_prompt=pairs_per_prompt, flip_rate=0.0), seed)
    lengths = None if cs.lengths is None else np.asarray(cs.lengths, np.int64).reshape(P * M)[rows]
    category = None if cs.category is None else np.asarray(cs.category, np.int64)[prompts]
    return Split(source=source, rows=rows, pairs=pairs, gold=g, lengths=lengths, category=category,
                 categories=categories)


def _pair_rows(data: PairData) -> tuple[np.ndarray, np.ndarray | None]:
    """All pairs' rows stacked (chosen, then rejected) as float32, and their lengths in the same order."""
    X = np.concatenate([np.asarray(data.chosen, np.float32), np.asarray(data.rejected, np.float32)])
    lengths = None if data.lengths is None else np.concatenate([data.lengths[:, 0], data.lengths[:, 1]])
    return X, lengths


def _pair_split(data: PairData, X: np.ndarray, lengths: np.ndarray | None, a: np.ndarray, b: np.ndarray,
                y: np.ndarray, idx: np.ndarray) -> Split:
    """The pairs `idx` (rows a[idx], b[idx] of X, labels y[idx]) as an evaluation split over their prompts."""
    rows = np.concatenate([a[idx], b[idx]])
    n = len(idx)
    local = Pairs(None, np.arange(n), np.arange(n, 2 * n), np.asarray(y[idx], np.float32))
    groups = category = None
    if data.prompts is not None:
        _, first, groups = np.unique(data.groups[idx], return_index=True, return_inverse=True)
        if data.category is not None:
            category = np.asarray(data.category, np.int64)[idx][first]
    elif data.category is not None:
        category = np.asarray(data.category, np.int64)[idx]
    return Split(source=X, rows=rows, pairs=local, groups=groups,
                 lengths=None if lengths is None else lengths[rows], category=category,
                 categories=data.categories)


def full_split(data: GoldData | PairData, config: TaskConfig = TaskConfig()) -> Split:
    """All of a dataset as one evaluation split, for data a model was not trained on.

    Gold data: every prompt of the test split (the candidate pools; the train split has too few candidates per
    prompt for best-of-N), each with all its candidates, and `config.eval_pairs_per_prompt` gold-labelled pairs
    within each prompt for pairwise accuracy and calibration (drawn with `config.seed`). Pair data: every pair,
    chosen as `a` (y = 1).
    """
    if isinstance(data, PairData):
        M = data.chosen.shape[0]
        X, lengths = _pair_rows(data)
        idx = np.arange(M)
        return _pair_split(data, X, lengths, idx, idx + M, np.ones(M, np.float32), idx)
    te = data.test
    return _pool_split(te, np.arange(te.prompts), config.eval_pairs_per_prompt, config.seed * 1000 + 5,
                       data.categories)


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
    val = _pool_split(te, val_prompts, config.eval_pairs_per_prompt, config.seed * 1000 + 3, data.categories)
    test = _pool_split(te, test_prompts, config.eval_pairs_per_prompt, config.seed * 1000 + 4, data.categories)
    record = {
        "train_split": {"train_prompts": train_prompts.tolist(), "early_stop_prompts": stop_prompts.tolist()},
        "test_split": {"validation_prompts": val_prompts.tolist(), "test_prompts": test_prompts.tolist()},
        "train_pairs": len(train), "early_stop_pairs": len(stop),
        "label_error_rate": error,
    }
    return Task(train=train, stop=stop, val=val, test=test, dim=data.dim, kind="gold", data_name=data.name,
                fingerprint=data.fingerprint, label_error=error, record=record)


def _pair_task(data: PairData, config: TaskConfig, rng: np.random.Generator) -> Task:
    """Shares, folds and early-stopping holdouts are cut over prompts (`PairData.groups`; each pair is its own
    prompt where the data names none, which draws exactly as a cut over pairs)."""
    M = data.chosen.shape[0]
    X, lengths = _pair_rows(data)
    # orient half the pairs rejected-first so no head can learn "the left side wins"
    flip = rng.random(M) < 0.5
    idx = np.arange(M)
    a = np.where(flip, idx + M, idx)
    b = np.where(flip, idx, idx + M)
    all_pairs = Pairs(X, a, b, (~flip).astype(np.float32))
    group = data.groups
    G = int(group.max()) + 1
    noun = "prompts" if data.prompts is not None else "pairs"

    def pairs_of(groups: np.ndarray) -> np.ndarray:
        """The pairs (sorted) of the given prompts."""
        return np.flatnonzero(np.isin(group, groups)) if data.prompts is not None else np.sort(groups)

    rest, test_g = _cut(G, config.pair_test_fraction, rng, noun)
    rest = rest[rng.permutation(len(rest))]
    n_folds = config.folds_for(data)

    def train_stop(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        train, stop = _cut(len(groups), config.stop_fraction, rng, f"training {noun}")
        return pairs_of(groups[train]), pairs_of(groups[stop])

    folds: tuple[Fold, ...] = ()
    if n_folds:
        if n_folds > len(rest):
            raise DataError(f"folds={n_folds}: only {len(rest)} {noun} outside the test split; use at most "
                            f"{len(rest)} folds.")
        val_g = np.sort(rest)  # every prompt outside the test split is validated, out of fold
        fold_of = np.empty(len(val_g), np.int64)
        fold_of[rng.permutation(len(val_g))] = np.arange(len(val_g)) % n_folds
        val_idx = pairs_of(val_g)
        assignment = fold_of[np.searchsorted(val_g, group[val_idx])]
        for f in range(n_folds):
            tr, st = train_stop(val_g[fold_of != f])
            folds += (Fold(all_pairs.subset(tr), all_pairs.subset(st), np.flatnonzero(assignment == f)),)
        train_idx, stop_idx = train_stop(val_g)
    else:
        k = int(round(G * config.pair_test_fraction))
        val_idx = pairs_of(np.sort(rest[:k]))
        train_idx, stop_idx = train_stop(np.sort(rest[k:]))
    test_idx = pairs_of(test_g)
    record = {"pairs": {"train": train_idx.tolist(), "early_stop": stop_idx.tolist(),
                        "validation": val_idx.tolist(), "test": test_idx.tolist()},
              "folds": n_folds, "split_by": noun}
    if data.prompts is not None:
        record["prompts"] = {"count": G, "test": len(test_g)}
    if n_folds:
        record["pairs"]["fold_of_validation_pair"] = assignment.tolist()
    return Task(train=all_pairs.subset(train_idx), stop=all_pairs.subset(stop_idx),
                val=_pair_split(data, X, lengths, a, b, all_pairs.y, val_idx),
                test=_pair_split(data, X, lengths, a, b, all_pairs.y, test_idx), dim=data.dim, kind="pairs",
                data_name=data.name, fingerprint=data.fingerprint, label_error=None, record=record, folds=folds)
