"""Preference pairs (rows of any input format, `_formats`) -> the texts to embed, with each pair's prompt,
category and answer lengths, and what was skipped and why.

A row is `chosen`/`rejected` dialogue texts as in Anthropic's hh-rlhf ("\\n\\nHuman: … \\n\\nAssistant: …"; the
two share a prefix and differ in the last assistant turn), or `prompt` + `chosen` + `rejected` (responses to one
prompt, as in OpenRLHF-style files). Any of the three may be a list of chat messages ({role, content} as in
UltraFeedback-binarized, or {from, value}): it is rendered as an hh-style dialogue (user -> Human, assistant ->
Assistant; system messages are left out). What is kept of each text is what differs, with its immediate context
(`extract_difference`). A pair's prompt is its prompt field, else the dialogue before the final assistant turn
(hh-style), else unknown (the pair is its own prompt). Pure text handling: no model, no numpy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rmsearch.data._formats import MISSING, Rows, get, parse_fields, read_rows
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
    "not_string": "chosen/rejected/prompt neither a string nor a list of chat messages",
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



def final_answer(text: str) -> str:
    """The final assistant answer of a dialogue (the whole text, stripped, when it has no turns)."""
    return extract_difference(text, text, None, "answer")[0]


ROLES = {"user": "Human", "human": "Human", "prompter": "Human", "assistant": "Assistant", "gpt": "Assistant",
         "bot": "Assistant", "model": "Assistant", "chatbot": "Assistant"}
"""Chat-message roles -> hh-style turn names; "system" messages are left out."""


def render(value) -> str | None:
    """A text field as a string: a string as it is, a list of chat messages as an hh-style dialogue; None for
    anything else (a message without a known role or string content included)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        return None
    turns = []
    for message in value:
        if not isinstance(message, dict):
            return None
        role = message.get("role", message.get("from"))
        content = message.get("content", message.get("value"))
        if not isinstance(role, str) or not isinstance(content, str):
            return None
        if role.lower() == "system":
            continue
        if role.lower() not in ROLES:
            return None
        turns.append(f"\n\n{ROLES[role.lower()]}: {content}")
    return "".join(turns)


def dialogue_prefix(text: str) -> str | None:
    """The dialogue before the final assistant turn (what the two sides of an hh pair share); None for a text
    without turns or without a human turn before its last answer."""
    marks = [m for m in _TURN.finditer(text) if m.group(1) == "Assistant"]
    if not marks:
        return None
    prefix = text[: marks[-1].start()].strip()
    return prefix if split_turns(prefix) else None


# ------------------------------------------------------------------------------------------------- reading


@dataclass
class Pairs:
    """Texts to embed, one row a kept pair, and what was skipped."""

    chosen: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    """1-based line (JSON lines) or row number of each kept pair in the input."""
    prompts: list[str | None] = field(default_factory=list)
    """Each kept pair's prompt: its prompt field, else its dialogue prefix, else None (unknown)."""
    categories: list[str | None] = field(default_factory=list)
    lengths: list[tuple[int, int]] = field(default_factory=list)
    """Characters of the chosen and rejected final answers."""
    read: int = 0
    """Non-blank lines (rows) read."""
    skipped: dict[str, int] = field(default_factory=lambda: {k: 0 for k in SKIP_REASONS})
    examples: dict[str, int] = field(default_factory=dict)
    """First line number of each skip reason (for the summary)."""
    prompt_from: list[str] = field(default_factory=list)
    """Where each kept pair's prompt came from: "field", "dialogue" (its prefix) or "none"."""

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, line)


def skips_text(skipped: dict[str, int]) -> str:
    """'2 malformed, 1 empty' (or 'none skipped'), for messages."""
    parts = [f"{n} {k}" for k, n in skipped.items() if n]
    return ", ".join(parts) if parts else "none skipped"


def category_name(value) -> str | None:
    """A category cell as a name: strings (stripped) and integers; None for missing, empty or other values."""
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    return value.strip() or None if isinstance(value, str) else None


def _texts(row: dict | str, fields: dict[str, str]) -> tuple[str, str, str | None] | str:
    """One row's (chosen, rejected, prompt) texts, or the reason (a SKIP_REASONS key) it is skipped."""
    if not isinstance(row, dict):
        return "malformed"
    chosen, rejected, raw_prompt = (get(row, fields[k]) for k in ("chosen", "rejected", "prompt"))
    if chosen is MISSING or rejected is MISSING:
        return "missing"
    chosen, rejected = render(chosen), render(rejected)
    no_prompt = raw_prompt is MISSING or raw_prompt is None
    prompt = None if no_prompt else render(raw_prompt)
    if chosen is None or rejected is None or (not no_prompt and prompt is None):
        return "not_string"
    if not chosen.strip() or not rejected.strip():
        return "empty"
    if chosen == rejected:
        return "identical"
    return chosen, rejected, prompt


def _add(out: Pairs, number: int, row: dict, texts: tuple[str, str, str | None], fields: dict[str, str],
         what: str) -> None:
    chosen, rejected, prompt = texts
    c, r = extract_difference(chosen, rejected, prompt, what)
    if not c or not r:
        return out.skip("empty", number)
    if c == r:
        return out.skip("identical", number)
    out.chosen.append(c)
    out.rejected.append(r)
    out.lines.append(number)
    key, source = (prompt.strip(), "field") if prompt is not None and prompt.strip() else \
        (dialogue_prefix(chosen), "dialogue")
    if key is None:
        source = "none"
    out.prompts.append(key)
    out.prompt_from.append(source)
    out.categories.append(category_name(get(row, fields["category"])))
    ca, ra = extract_difference(chosen, rejected, prompt, "answer")
    out.lengths.append((len(ca), len(ra)))


def pairs_from_rows(rows: Rows, fields: dict[str, str], max_pairs: int | None = None, what: str = "turn") -> Pairs:
    """Parse rows into the texts to embed; bad rows are counted in `skipped`, not raised."""
    check_what(what)
    out = Pairs()
    for number, row in rows.rows:
        if max_pairs is not None and len(out.chosen) >= max_pairs:
            break
        out.read += 1
        texts = _texts(row, fields)
        if isinstance(texts, str):
            out.skip(texts, number)
        else:
            _add(out, number, row, texts, fields, what)
    return out


def read_pairs(path: str | Path, max_pairs: int | None = None, what: str = "turn", fmt: str = "auto",
               fields: dict[str, str] | None = None) -> Pairs:
    """Read a file of pairs (any input format) into the texts to embed."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file. Give a file of preference pairs (JSON lines, Parquet, CSV) or a "
                        f"`datasets` save_to_disk folder.")
    return pairs_from_rows(read_rows(path, fmt), fields or parse_fields(None), max_pairs, what)
