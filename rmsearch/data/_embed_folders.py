"""The dataset folders `rmsearch data embed` writes, from rows read and checked and their texts' embeddings.

`PairJob`: a pair dataset (chosen.npy, rejected.npy, lines.npy; prompts.npy ids, category.npy codes, lengths.npy
answer lengths). `GoldJob`: a gold dataset (seed-format embd_/reward_ files per split, lengths_ and category_ side
files, prompts.json with each split's prompts). Each job reads and checks all its input when it is made, so an
error comes before anything is created; `write` stages the whole folder and moves it in, dataset.json last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rmsearch.data import _candidates as cand
from rmsearch.data._files import GOLD_SIDE_FILES, PAIR_MANIFEST, PAIR_SIDE_FILES, SEED_PATTERN, atomic_save, \
    write_gold_folder, write_pair_folder
from rmsearch.data._formats import Rows
from rmsearch.data._text_pairs import Pairs, pairs_from_rows, skips_text
from rmsearch.errors import DataError

PROMPTS_FILE = "prompts.json"
"""A gold folder's prompts per split, in row order (text, sha256, category, input rows of its candidates)."""


@dataclass
class Embedded:
    """The embeddings of a job's texts, in order, and what the encoder did."""

    vectors: np.ndarray
    encoded: int
    """Texts the encoder embedded in this run (the rest came from the cache)."""
    unique: int
    """Distinct texts."""
    truncated: int
    """Texts the encoder truncated, among those it encoded in this run."""


@dataclass
class EmbedResult:
    kind: str
    """"pairs" or "gold"."""
    meta: dict
    encoded: int
    """Texts the encoder embedded in this run (the rest came from the cache)."""
    encoder_loaded: bool
    """Whether the encoder was called (False: every text came from the cache)."""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    """Pairs: chosen, rejected, lines, prompts. Gold: train, test (embeddings), train_gold, test_gold."""

    @property
    def chosen(self) -> np.ndarray:
        return self.arrays["chosen"]


# ------------------------------------------------------------------------------------------------ writing


def _stale(name: str) -> bool:
    """A file an earlier dataset written here may have left (replaced or removed by a new write)."""
    side = re.match(rf"^({'|'.join(GOLD_SIDE_FILES)})_.+_(train|test)\.npy$", name)
    return (name in {"chosen.npy", "rejected.npy", "lines.npy", PROMPTS_FILE} | {f"{n}.npy" for n in PAIR_SIDE_FILES}
            or bool(SEED_PATTERN.match(name)) or bool(side))


def _write_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """Stage the whole dataset in OUT/.staging-*, then move it in with the manifest last (the old one removed
    first, then the old dataset's files): a failure at any point leaves either the old dataset, or a folder
    without dataset.json that no command loads -- never a manifest next to arrays of another run."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{uuid.uuid4().hex[:8]}"
    try:
        write(staging)
        (out / PAIR_MANIFEST).unlink(missing_ok=True)
        new = {p.name for p in staging.iterdir()}
        for p in out.iterdir():
            if p.is_file() and _stale(p.name) and p.name not in new:
                p.unlink()
        for name in sorted(new - {PAIR_MANIFEST}):
            os.replace(staging / name, out / name)
        os.replace(staging / PAIR_MANIFEST, out / PAIR_MANIFEST)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class PairJob:
    """Pairs: read and checked at construction; `write` drops pairs that embed identically and writes."""

    def __init__(self, input: Path, rows: Rows, fields_map: dict, max_pairs: int | None, what: str):
        self.pairs = pairs_from_rows(rows, fields_map, max_pairs, what)
        if not self.pairs.chosen:
            raise DataError(f"{input}: no usable pair among {self.pairs.read} {rows.unit}s "
                            f"({skips_text(self.pairs.skipped)}). Each {rows.unit} needs non-empty, different "
                            f"'chosen' and 'rejected' texts (map other column names with --fields).")
        self.texts = self.pairs.chosen + self.pairs.rejected

    def write(self, out: Path, e: Embedded, meta: dict) -> EmbedResult:
        p: Pairs = self.pairs
        M = len(p.chosen)
        chosen, rejected = e.vectors[:M], e.vectors[M:]
        same = np.all(np.abs(chosen - rejected) <= 1e-6, axis=1)
        for line in np.asarray(p.lines)[same]:
            p.skip("identical_embedding", int(line))
        keep = np.flatnonzero(~same)
        if len(keep) == 0:
            raise DataError("every pair embeds identically; nothing to write.")
        chosen, rejected, lines = chosen[keep], rejected[keep], np.asarray(p.lines, np.int64)[keep]
        prompts, prompt_facts = _prompt_ids([p.prompts[i] for i in keep])
        category, names = cand.category_codes([p.categories[i] for i in keep])
        lengths = np.asarray(p.lengths, np.int64).reshape(-1, 2)[keep]
        meta.update({
            "counts": {"lines": p.read, "pairs": int(len(keep)), "skipped": int(sum(p.skipped.values()))},
            "skipped": dict(p.skipped), "skipped_first_line": dict(p.examples),
            "prompts": {**prompt_facts, "from": {k: sum(p.prompt_from[i] == k for i in keep)
                                                 for k in ("field", "dialogue", "none")}},
            "categories": names,
            "category_pairs": {n: int((category == i).sum()) for i, n in enumerate(names)},
            "lengths": "lengths.npy: characters of the chosen and rejected final answers",
            "rows": "row i of chosen.npy/rejected.npy is input line (row) lines.npy[i] (1-based)",
        })

        def write(folder: Path) -> None:
            write_pair_folder(folder, chosen, rejected, meta, prompts=prompts, category=category, lengths=lengths)
            atomic_save(folder / "lines.npy", lines)

        _write_atomically(out, write)
        return EmbedResult("pairs", {"kind": "pairs", **meta}, e.encoded, e.encoded > 0,
                           {"chosen": chosen, "rejected": rejected, "lines": lines, "prompts": prompts})


def _prompt_ids(keys: list[str | None]) -> tuple[np.ndarray, dict]:
    """Prompt ids 0..G-1 in order of first appearance (a pair without a known prompt is its own), and the
    pairs-per-prompt distribution."""
    index: dict[str, int] = {}
    ids = np.empty(len(keys), np.int64)
    n = 0
    for i, key in enumerate(keys):
        if key is None:
            ids[i], n = n, n + 1
        else:
            if key not in index:
                index[key], n = n, n + 1
            ids[i] = index[key]
    per = np.bincount(ids)
    sizes, counts = np.unique(per, return_counts=True)
    return ids, {"count": int(n), "pairs_per_prompt": {
        "min": int(per.min()), "median": float(np.median(per)), "max": int(per.max()),
        "histogram": {str(int(s)): int(c) for s, c in zip(sizes, counts)}}}


def _category_counts(prompts: list) -> dict[str, int]:
    """Prompts per category (sorted by name; "(none)" for prompts without one)."""
    counts: dict[str, int] = {}
    for p in prompts:
        counts[p.category or "(none)"] = counts.get(p.category or "(none)", 0) + 1
    return dict(sorted(counts.items()))


def _part(text: str) -> str:
    """A piece of a seed-format stem: no underscores (they separate the pieces)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"


class GoldJob:
    """Scored candidates: grouped, checked, selected by the ragged rule and split at construction (every input
    error comes before anything is embedded); `write` builds the splits and writes a gold folder."""

    def __init__(self, rows: Rows, fields_map: dict, layout: str, *, k: int | None, ragged: str, seed: int,
                 gold: str, eps: float, test_fraction: float, max_prompts: int | None, keep_duplicates: bool,
                 what: str):
        self.cands = cand.read_candidates(rows, fields_map, layout, keep_duplicates)
        cand.check_gold(self.cands, gold, eps, rows)
        self.selection = cand.select(self.cands, k, ragged, seed)
        self.prompts = cand.sample_prompts(self.selection.prompts, max_prompts, seed)
        cand.split_prompts(len(self.prompts), test_fraction, seed)  # refused here, before any embedding
        self.texts = cand.candidate_texts(self.prompts, what)
        self.gold, self.eps, self.test_fraction, self.seed = gold, eps, test_fraction, seed
        self.max_prompts = max_prompts

    def _facts(self) -> dict:
        c, sel = self.cands, self.selection
        scores = np.array([x.score for p in self.prompts for x in p.candidates])
        g = cand.gold_of(scores, self.gold, self.eps)
        return {
            "layout": c.layout,
            "counts": {"rows": c.rows, "duplicate_rows": c.duplicates, "prompts_in_input": len(c.prompts),
                       "candidates_in_input": sum(len(p.candidates) for p in c.prompts),
                       "prompts_kept": sel.counts["kept"], "prompts_written": len(self.prompts), "K": sel.k},
            "ragged": {"rule": sel.rule, "description": cand.RAGGED[sel.rule], "k": sel.k, "k_from": sel.k_from,
                       "seed": self.seed, **{n: v for n, v in sel.counts.items() if n not in ("kept",)}},
            "max_prompts": self.max_prompts,
            "categories_kept": _category_counts(sel.prompts),
            "gold": {"transform": self.gold, "formula": cand.GOLD[self.gold],
                     "eps": self.eps if self.gold != "identity" else None,
                     "score_range": [float(scores.min()), float(scores.max())],
                     "gold_range": [float(g.min()), float(g.max())]},
        }

    def write(self, out: Path, e: Embedded, meta: dict) -> EmbedResult:
        train, test, split, side = cand.build_splits(self.prompts, self.selection.k, e.vectors, self.gold, self.eps,
                                                     self.test_fraction, self.seed)
        stem = f"{_part(meta['name'])}_{_part(str(meta['model'].get('name', 'model')).rstrip('/').split('/')[-1])}_gold"
        side_text = json.dumps(side, indent=1, ensure_ascii=False)
        names = split.pop("categories")
        meta.update(self._facts())
        meta["counts"].update(train_prompts=split["train_prompts"], test_prompts=split["test_prompts"])
        meta.update({
            "split": {**{k: v for k, v in split.items() if k != "category_prompts"},
                      "validation": "rmsearch carves its validation prompts out of the test split",
                      "prompts_file": PROMPTS_FILE,
                      "prompts_file_sha256": hashlib.sha256(side_text.encode("utf-8", "surrogatepass")).hexdigest()},
            "categories": names, "category_prompts": split["category_prompts"],
            "lengths": f"lengths_{stem}_{{train,test}}.npy: characters of each response's final answer",
        })

        def write(folder: Path) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / PROMPTS_FILE).write_text(side_text, encoding="utf-8", errors="surrogatepass")
            write_gold_folder(folder, stem, train, test, meta)

        _write_atomically(out, write)
        return EmbedResult("gold", {**meta, "kind": "gold", "stem": stem}, e.encoded, e.encoded > 0,
                           {"train": train.embeddings, "test": test.embeddings, "train_gold": train.gold,
                            "test_gold": test.gold})
