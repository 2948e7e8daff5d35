"""Data that loads but cannot be learned from or evaluated on: a split whose gold reward is one constant (no
pair has a preference, best-of-N has nothing to select, the annotator divides by a zero spread), or whose
embeddings are all one row (no head can tell two responses apart). `check_not_degenerate` refuses it before any
work, reading a memory-mapped array in chunks and stopping at the first row that differs."""

from __future__ import annotations

import numpy as np

from rmsearch.errors import DataError

_CHUNK = 65536


def _all_rows_equal(a: np.ndarray) -> bool:
    """Whether every row (last axis) of `a` equals its first; a sample of rows first, then chunks, stopping early."""
    rows = a.reshape(-1, a.shape[-1])
    first = np.asarray(rows[0])
    sample = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), 64)).astype(np.int64))
    if not (np.asarray(rows[sample]) == first).all():
        return False
    return all((np.asarray(rows[s : s + _CHUNK]) == first).all() for s in range(0, len(rows), _CHUNK))


def _where(data, role: str, fallback: str) -> str:
    path = (getattr(data, "files", None) or {}).get(role)
    return f"{fallback} ({path})" if path else fallback


def check_not_degenerate(data) -> None:
    """Refuse gold data with a constant gold reward or all-identical embeddings in a split, and pair data whose
    embeddings are all identical or whose chosen and rejected rows are equal in every pair (`DataError`)."""
    if data.kind == "gold":
        for split in ("train", "test"):
            cs = getattr(data, split)
            gold = np.asarray(cs.gold)
            if gold.size and float(gold.max()) == float(gold.min()):
                raise DataError(
                    f"{_where(data, f'reward_{split}', f'{split} gold')}: every one of its {gold.size:,} gold rewards "
                    f"is {float(gold.flat[0]):g}; a constant gold reward prefers no response over another, so no "
                    f"pair can be labelled and best-of-N has nothing to select. Check that the file holds the "
                    f"rewards (not a placeholder), or use other data.")
            if _all_rows_equal(cs.embeddings):
                raise DataError(
                    f"{_where(data, f'embd_{split}', f'{split} embeddings')}: all {cs.prompts * cs.responses:,} "
                    f"embeddings are the same vector; no reward head can tell two responses apart. Check that the "
                    f"file holds the embeddings of the responses (re-embed them), or use other data.")
        return
    both = [data.chosen, data.rejected]
    if all(_all_rows_equal(a) for a in both) and (np.asarray(both[0][0]) == np.asarray(both[1][0])).all():
        raise DataError(f"{_where(data, 'chosen', 'chosen')} and {_where(data, 'rejected', 'rejected')}: all "
                        f"{2 * len(data.chosen):,} embeddings are the same vector; no reward head can tell two "
                        f"responses apart. Re-embed the texts, or use other data.")
    if all((np.asarray(data.chosen[s : s + _CHUNK]) == np.asarray(data.rejected[s : s + _CHUNK])).all()
           for s in range(0, len(data.chosen), _CHUNK)):
        raise DataError(f"{_where(data, 'chosen', 'chosen')}: every pair's chosen embedding equals its rejected one; "
                        f"there is no preference to learn. Embed what differs between the two responses (e.g. the "
                        f"last assistant turn), or use other data.")
