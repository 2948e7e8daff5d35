"""Preference pairs as JSON lines (plain or .gz) -> the texts to embed, with what was skipped and why.

A line is `chosen`/`rejected` dialogue texts as in Anthropic's hh-rlhf ("\\n\\nHuman: … \\n\\nAssistant: …"; the
two share a prefix and differ in the last assistant turn), or `prompt` + `chosen` + `rejected` fields (responses
to one prompt). What is kept of each text is what differs, with its immediate context (`extract_difference`).
Pure text handling: no model, no numpy.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rmsearch.errors import DataError

HUMAN_CHARS = 500
"""The context turn is cut to this many characters so the answer (what differs) fits the encoder's 256 tokens."""

WHAT = {
    "turn": "the last human turn (at most 500 characters) + the final assistant answer",
    "answer": "the final assistant answer only",
    "full": "the whole texts (the encoder truncates at 256 tokens: long dialogues embed their shared prefix only)",
}

SKIP_REASONS = {
    "malformed": "malformed lines (not JSON, or not a JSON object)",
    "missing": "missing chosen/rejected field",
    "not_string": "non-string chosen/rejected/prompt field",
    "empty": "empty text (or empty final answer)",
    "identical": "chosen and rejected identical (as texts, or once reduced to what differs)",
    "identical_embedding": "chosen and rejected embed identically (they differ only past the encoder's 256 tokens)",
}

_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")


# ---------------------------------------------------------------------------------------------- extraction


def split_turns(text: str) -> list[tuple[str, str]]:
    """'\\n\\nHuman: a\\n\\nAssistant: b' -> [('Human', 'a'), ('Assistant', 'b')]; [] for text without turns."""
    marks = list(_TURN.finditer(text))
    return [(m.group(1), text[m.end() : (marks[i + 1].start() if i + 1 < len(marks) else len(text))].strip())
            for i, m in enumerate(marks)]


def _last(turns: list[tuple[str, str]], role: str) -> str | None:
    return next((t for r, t in reversed(turns) if r == role), None)


def _compose(context: str | None, answer: str, what: str) -> str:
    if what == "answer" or not context:
        return answer
    if len(context) > HUMAN_CHARS:
        context = context[:HUMAN_CHARS].rstrip() + " …"
    return f"Human: {context}\n\nAssistant: {answer}"


def _reduce(text: str, prompt_context: str | None, what: str) -> str:
    turns = split_turns(text)
    if not turns:  # a bare response
        return _compose(prompt_context, text.strip(), what)
    if turns[-1][0] == "Assistant":
        answer = turns[-1][1]
        context = _last(turns[:-1], "Human")
    else:  # ends on a human turn: the dialogue has no answer to it; use the last one there is
        answer = _last(turns, "Assistant") or ""
        context = turns[-1][1] if len(turns) == 1 else _last(turns[:-1], "Human")
    if not answer:
        return ""
    return _compose(context if context is not None else prompt_context, answer, what)


def check_what(what: str) -> None:
    """Refuse an unknown --embed choice."""
    if what not in WHAT:
        raise DataError(f"--embed {what!r}: choose one of {', '.join(WHAT)}.")


def extract_difference(chosen: str, rejected: str, prompt: str | None = None, what: str = "turn") -> tuple[str, str]:
    """The texts to embed for one pair: what differs (the final assistant answer) with its context (the last
    human turn; from `prompt` when the chosen/rejected texts are bare responses). Pure; no model.

    An answer that is empty yields ''. `what`: 'turn' (default), 'answer' or 'full' (texts as they are)."""
    check_what(what)
    if what == "full":
        if prompt is not None and not split_turns(chosen):
            return (f"{prompt.strip()}\n\n{chosen.strip()}", f"{prompt.strip()}\n\n{rejected.strip()}")
        return chosen.strip(), rejected.strip()
    prompt_context = None
    if prompt is not None:
        pturns = split_turns(prompt)
        prompt_context = (_last(pturns, "Human") if pturns else prompt.strip()) or None
    return _reduce(chosen, prompt_context, what), _reduce(rejected, prompt_context, what)


# ------------------------------------------------------------------------------------------------- reading


@dataclass
class Pairs:
    """Texts to embed, one row a kept pair, and what was skipped."""

    chosen: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    """1-based line number of each kept pair in the input."""
    read: int = 0
    """Non-blank lines read."""
    skipped: dict[str, int] = field(default_factory=lambda: {k: 0 for k in SKIP_REASONS})
    examples: dict[str, int] = field(default_factory=dict)
    """First line number of each skip reason (for the summary)."""

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, line)


def skips_text(skipped: dict[str, int]) -> str:
    """'2 malformed, 1 empty' (or 'none skipped'), for messages."""
    parts = [f"{n} {k}" for k, n in skipped.items() if n]
    return ", ".join(parts) if parts else "none skipped"


def _open_lines(path: Path) -> Iterator[str]:
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            yield from f
    except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
        raise DataError(f"{path}: cannot be read to the end ({exc}); the file may be truncated or corrupt.") from None


def _texts(line: str) -> tuple[str, str, str | None] | str:
    """One line's (chosen, rejected, prompt), or the reason (a SKIP_REASONS key) it is skipped."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return "malformed"
    if not isinstance(obj, dict):
        return "malformed"
    if "chosen" not in obj or "rejected" not in obj:
        return "missing"
    chosen, rejected, prompt = obj["chosen"], obj["rejected"], obj.get("prompt")
    if not isinstance(chosen, str) or not isinstance(rejected, str) or not (prompt is None or isinstance(prompt, str)):
        return "not_string"
    if not chosen.strip() or not rejected.strip():
        return "empty"
    if chosen == rejected:
        return "identical"
    return chosen, rejected, prompt


def read_pairs(path: str | Path, max_pairs: int | None = None, what: str = "turn") -> Pairs:
    """Parse JSON lines into the texts to embed; bad lines are counted in `skipped`, not raised."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Give a JSON-lines file (.jsonl or .jsonl.gz) of preference pairs.")
    out = Pairs()
    for number, line in enumerate(_open_lines(path), start=1):
        if max_pairs is not None and len(out.chosen) >= max_pairs:
            break
        if not line.strip():
            continue
        out.read += 1
        texts = _texts(line)
        if isinstance(texts, str):
            out.skip(texts, number)
            continue
        c, r = extract_difference(*texts, what)
        if not c or not r:
            out.skip("empty", number)
        elif c == r:
            out.skip("identical", number)
        else:
            out.chosen.append(c)
            out.rejected.append(r)
            out.lines.append(number)
    return out
