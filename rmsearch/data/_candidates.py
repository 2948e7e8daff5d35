"""Scored candidates (rows of any input format, `_formats`) -> best-of-N data: prompts × K candidates with gold.

Input rows are long, one row per candidate (prompt, response, score), or wide, one row per prompt (prompt,
responses[], scores[]). Candidates are grouped by prompt text (rows of one prompt need not be adjacent; a prompt's
category is that of its first row). A row identical in every field to an earlier row is a duplicate (the same
answer listed twice) and is dropped and counted, unless duplicates are kept.

K is given, or the most common number of candidates per prompt (the larger on a tie). Prompts with other than K
candidates follow a stated rule (`RAGGED`), seeded; gold is the raw score through a transform (`GOLD`); the
prompts are split into the folder's train and test splits (rmsearch later carves validation prompts out of the
test split). What is embedded for a candidate is the prompt as context and the response, as for pairs
(`_text_pairs.extract_difference`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rmsearch.data._formats import MISSING, Rows, get, json_list, number
from rmsearch.data._kinds import CandidateSet
from rmsearch.data._text_pairs import category_name, extract_difference, final_answer, render
from rmsearch.errors import DataError

GOLD_EPS = 1e-6
"""Default clip of the logit transforms: AlpacaEval's preferences are given to 6 decimals, so 1e-6 is the
smallest probability the file can tell from 0 (logit(1e-6) = -13.8)."""

GOLD = {
    "identity": "gold = score",
    "logit": "gold = logit(score) = log(s / (1 - s)) for scores that are probabilities in [0, 1], s clipped to "
             "[eps, 1 - eps]",
    "alpacaeval": "gold = logit(score - 1) for AlpacaEval preferences in [1, 2] (score - 1 is the judge's "
                  "probability that the answer beats the reference), clipped to [eps, 1 - eps]",
}
"""Transforms from a raw score to gold."""

_GOLD_RANGE = {"identity": None, "logit": (0.0, 1.0), "alpacaeval": (1.0, 2.0)}

RAGGED = {
    "subsample": "prompts with more than K candidates keep a seeded random K of them; prompts with fewer are dropped",
    "drop": "every prompt with other than K candidates is dropped",
    "strict": "any prompt with other than K candidates is an error",
}
"""Rules for prompts with other than K candidates."""


@dataclass
class Candidate:
    response: str
    score: float
    row: int
    """1-based line (JSON lines) or row number in the input."""
    item: int | None = None
    """Wide rows: the index in the row's responses."""


@dataclass
class Prompt:
    text: str
    category: str | None
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class CandidateRows:
    """Candidates grouped by prompt, in order of each prompt's first row."""

    prompts: list[Prompt]
    layout: str
    """"long" (a row per candidate) or "wide" (a row per prompt)."""
    rows: int
    duplicates: int


def _text(value, row: int, name: str, column: str, rows: Rows) -> str:
    text = None if value is MISSING or value is None else render(value)
    if text is None:
        what = "no" if value is MISSING or value is None else f"a {type(value).__name__} as"
        raise DataError(f"{rows.where(row)}: has {what} {name} (column '{column}'); every candidate row needs a "
                        f"{name} string (or a list of chat messages). Fix the row, or map the column with --fields.")
    return text


def _score(value, row: int, column: str, rows: Rows) -> float:
    x = number(value)
    if x is None:
        shown = "no value" if value is MISSING or value is None else repr(value)[:60]
        raise DataError(f"{rows.where(row)}: score (column '{column}') is {shown}, not a number; every candidate "
                        f"needs a numeric score. Fix or remove the row.")
    if not math.isfinite(x):
        raise DataError(f"{rows.where(row)}: score (column '{column}') is {x}; scores must be finite numbers. Fix or "
                        f"remove the row.")
    return x


def _shape(value) -> str:
    return f"a list of {len(value)}" if isinstance(value, list) else "missing" if value is MISSING else "not a list"


def _row_candidates(row: dict, number_: int, fields: dict[str, str], layout: str, rows: Rows) -> list[Candidate]:
    if layout == "long":
        response = _text(get(row, fields["response"]), number_, "response", fields["response"], rows)
        return [Candidate(response, _score(get(row, fields["score"]), number_, fields["score"], rows), number_)]
    responses, scores = json_list(get(row, fields["responses"])), json_list(get(row, fields["scores"]))
    if not isinstance(responses, list) or not isinstance(scores, list) or len(responses) != len(scores):
        raise DataError(f"{rows.where(number_)}: responses (column '{fields['responses']}') is {_shape(responses)} "
                        f"and scores (column '{fields['scores']}') is {_shape(scores)}; a wide row needs two lists of "
                        f"the same length.")
    return [Candidate(_text(r, number_, "response", f"{fields['responses']}[{i}]", rows),
                      _score(s, number_, f"{fields['scores']}[{i}]", rows), number_, i)
            for i, (r, s) in enumerate(zip(responses, scores))]


def read_candidates(rows: Rows, fields: dict[str, str], layout: str, keep_duplicates: bool = False) -> CandidateRows:
    """Group the rows' candidates by prompt. Any bad row (not an object, no prompt, a response that is not text,
    a score that is not a finite number) is a DataError naming it: a skipped candidate would change K."""
    by_text: dict[str, Prompt] = {}
    seen: set[str] = set()
    duplicates = 0
    for number_, row in rows.rows:
        if not isinstance(row, dict):
            raise DataError(f"{rows.where(number_)}: not a JSON object; every line of a candidate file must be one. "
                            f"Fix or remove the line.")
        if not keep_duplicates:
            key = json.dumps(row, sort_keys=True, default=str)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
        text = _text(get(row, fields["prompt"]), number_, "prompt", fields["prompt"], rows).strip()
        if not text:
            raise DataError(f"{rows.where(number_)}: empty prompt (column '{fields['prompt']}'); candidates are "
                            f"grouped "
                            f"by prompt text. Fix or remove the row.")
        prompt = by_text.setdefault(text, Prompt(text, category_name(get(row, fields["category"]))))
        prompt.candidates.extend(_row_candidates(row, number_, fields, layout, rows))
    return CandidateRows(list(by_text.values()), layout, len(rows.rows), duplicates)


def check_gold(cands: CandidateRows, transform: str, eps: float, rows: Rows) -> None:
    """Refuse an unknown transform, an eps outside (0, 0.5), and scores outside the transform's range."""
    if transform not in GOLD:
        raise DataError(f"--gold {transform}: unknown transform; choose one of {', '.join(GOLD)}.")
    if not 0 < eps < 0.5:
        raise DataError(f"--gold-eps {eps}: must be in (0, 0.5); the default is {GOLD_EPS}.")
    bounds = _GOLD_RANGE[transform]
    if bounds is None:
        return
    lo, hi = bounds
    for prompt in cands.prompts:
        for c in prompt.candidates:
            if not lo <= c.score <= hi:
                other = "alpacaeval for preferences in [1, 2]" if transform == "logit" else "logit for " \
                    "probabilities in [0, 1]"
                raise DataError(f"{rows.where(c.row)}: score {c.score} is outside [{lo:g}, {hi:g}], the range of "
                                f"--gold "
                                f"{transform}; use --gold identity for raw scores, or {other}.")


def gold_of(scores: np.ndarray, transform: str, eps: float = GOLD_EPS) -> np.ndarray:
    """Raw scores -> gold (float32), by `GOLD[transform]`."""
    s = np.asarray(scores, dtype=np.float64)
    if transform == "alpacaeval":
        s = s - 1.0
    if transform in ("logit", "alpacaeval"):
        s = np.clip(s, eps, 1.0 - eps)
        s = np.log(s) - np.log1p(-s)
    return s.astype(np.float32)


@dataclass
class Selection:
    """The prompts kept by the ragged rule, each with exactly K candidates, and the counts."""

    prompts: list[Prompt]
    k: int
    k_from: str
    rule: str
    counts: dict[str, int]


def _most_common(sizes: list[int]) -> int:
    counts = Counter(sizes)
    return max(counts, key=lambda n: (counts[n], n))


def select(cands: CandidateRows, k: int | None = None, rule: str = "subsample", seed: int = 0) -> Selection:
    """Apply the ragged rule: every kept prompt has exactly K candidates (`RAGGED[rule]`)."""
    if rule not in RAGGED:
        raise DataError(f"--ragged {rule}: unknown rule; choose one of {', '.join(RAGGED)}.")
    sizes = [len(p.candidates) for p in cands.prompts]
    if not sizes:
        raise DataError("no candidates to select from; the input has no rows.")
    k_from = "--k" if k is not None else "the most common number of candidates per prompt"
    k = _most_common(sizes) if k is None else k
    if k < 2:
        raise DataError(f"K={k}: best-of-N needs at least 2 candidates per prompt; give --k 2 or more, or add "
                        f"candidates (the prompts hold {min(sizes)} to {max(sizes)}).")
    fewer = [p for p, n in zip(cands.prompts, sizes) if n < k]
    more = [p for p, n in zip(cands.prompts, sizes) if n > k]
    if rule == "strict" and (fewer or more):
        ex = (fewer or more)[0]
        raise DataError(
            f"--ragged strict: {len(fewer) + len(more)} of {len(sizes)} prompts have other than K={k} candidates "
            f"({len(fewer)} with fewer, {len(more)} with more; e.g. {ex.text[:60]!r} has {len(ex.candidates)}). "
            f"Use --ragged subsample ({RAGGED['subsample']}) or --ragged drop ({RAGGED['drop']}), or choose K with "
            f"--k.")
    rng = np.random.default_rng([seed, 1])
    kept = []
    for p, n in zip(cands.prompts, sizes):
        if n == k:
            kept.append(p)
        elif n > k and rule == "subsample":
            idx = np.sort(rng.choice(n, size=k, replace=False))
            kept.append(Prompt(p.text, p.category, [p.candidates[i] for i in idx]))
    subsampled = len(more) if rule == "subsample" else 0
    counts = {"prompts_in_input": len(sizes), "kept": len(kept), "exactly_k": sizes.count(k),
              "subsampled": subsampled, "dropped_fewer": len(fewer), "dropped_more": len(more) - subsampled}
    if not kept:
        raise DataError(f"K={k}: no prompt has {k} candidates under --ragged {rule}; choose K with --k (the prompts "
                        f"hold {min(sizes)} to {max(sizes)}).")
    return Selection(kept, k, k_from, rule, counts)


def sample_prompts(prompts: list[Prompt], n: int | None, seed: int) -> list[Prompt]:
    """A seeded random `n` of the prompts, in input order (all of them when n is None or not smaller)."""
    if n is None or n >= len(prompts):
        return prompts
    idx = np.sort(np.random.default_rng([seed, 3]).choice(len(prompts), size=n, replace=False))
    return [prompts[i] for i in idx]


def split_prompts(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of n prompts into (train, test) indices, each sorted."""
    if not 0 < test_fraction < 1:
        raise DataError(f"--test-fraction {test_fraction}: must be between 0 and 1 (exclusive); 0.5 gives 50% train, "
                        f"25% validation and 25% test prompts.")
    k = int(round(n * test_fraction))
    if k < 1 or k >= n:
        raise DataError(f"{n} prompts are too few to put {test_fraction:.0%} of them in the test split with at least "
                        f"one on each side; use more prompts or another --test-fraction.")
    order = np.random.default_rng([seed, 2]).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def candidate_texts(prompts: list[Prompt], what: str) -> list[str]:
    """The text embedded for each candidate, prompt-major: the prompt as context and the response."""
    return [extract_difference(c.response, c.response, p.text, what)[0] for p in prompts for c in p.candidates]


def category_codes(names: list[str | None]) -> tuple[np.ndarray | None, list[str]]:
    """Codes into the sorted category names (-1 for none), or (None, []) when no entry has a category."""
    sorted_names = sorted({n for n in names if n is not None})
    if not sorted_names:
        return None, []
    index = {n: i for i, n in enumerate(sorted_names)}
    return np.array([-1 if n is None else index[n] for n in names], np.int64), sorted_names


def build_splits(prompts: list[Prompt], K: int, vectors: np.ndarray, transform: str, eps: float,
                 test_fraction: float, seed: int) -> tuple[CandidateSet, CandidateSet, dict, dict]:
    """The train and test candidate sets from prompts of K candidates each and their candidates' vectors
    (prompt-major, (P * K, D)); also the manifest's split facts and the side JSON of prompts per split."""
    P = len(prompts)
    X = np.asarray(vectors, np.float32).reshape(P, K, -1)
    gold = gold_of(np.array([[c.score for c in p.candidates] for p in prompts]), transform, eps)
    lengths = np.array([[len(final_answer(c.response)) for c in p.candidates] for p in prompts], np.int64)
    category, names = category_codes([p.category for p in prompts])
    train, test = split_prompts(P, test_fraction, seed)
    sets, side = [], {}
    for split, idx in (("train", train), ("test", test)):
        sets.append(CandidateSet.checked(X[idx], gold[idx], names=(f"{split} embeddings", f"{split} gold"),
                                         lengths=lengths[idx], category=None if category is None else category[idx]))
        side[split] = [_prompt_record(prompts[i]) for i in idx]
    facts = {"test_fraction": test_fraction, "seed": seed, "train_prompts": len(train), "test_prompts": len(test),
             "categories": names,
             "category_prompts": {n: int((category == i).sum()) for i, n in enumerate(names)} if names else {}}
    return sets[0], sets[1], facts, side


def _prompt_record(p: Prompt) -> dict:
    out = {"sha256": hashlib.sha256(p.text.encode("utf-8", "surrogatepass")).hexdigest(), "category": p.category,
           "rows": [c.row for c in p.candidates], "prompt": p.text}
    if any(c.item is not None for c in p.candidates):
        out["items"] = [c.item for c in p.candidates]
    return out
