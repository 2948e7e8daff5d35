"""Input rows for `rmsearch data embed`: JSON lines (plain or .gz; a .json file holding one array of objects
too), Parquet, CSV (plain or .gz), and a Hugging Face `datasets` folder written by `save_to_disk` (its Arrow
files, read with pyarrow: neither the `datasets` package nor the hub is needed).

`--fields` maps the input's column names onto rmsearch's (`FIELDS`), e.g. `prompt=instruction,score=preference`;
a column may be a dotted path into nested objects and lists (`meta.score`, `messages.0.content`). Pure reading:
no model, no numpy.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rmsearch.errors import DataError

FORMATS = {
    "jsonl": "one JSON object a line (.jsonl, .json, .ndjson; plain or .gz), or a .json file holding one array",
    "parquet": "a Parquet file (.parquet, .pq)",
    "csv": "a CSV file with a header row (.csv, plain or .gz)",
    "hf": "a folder written by the `datasets` package's save_to_disk (its .arrow files)",
}
"""Input formats; `auto` picks one by the file's suffix or the folder's contents."""

FIELDS = {
    "chosen": "the preferred response of a pair (a string, or a list of {role, content} messages)",
    "rejected": "the other response of a pair (same forms as chosen)",
    "prompt": "the prompt (a string or a list of messages); groups pairs and candidates by prompt",
    "response": "one candidate response (long format: one row per candidate)",
    "score": "that candidate's raw score (a number; gold is made from it by --gold)",
    "responses": "a list of candidate responses (wide format: one row per prompt)",
    "scores": "their raw scores, a list of numbers as long as responses",
    "category": "a category name of the row's prompt (optional)",
}
"""rmsearch's field names; `--fields` maps input columns onto them."""

ALIASES = {
    "prompt": ("instruction",),
    "response": ("output", "completion"),
    "score": ("preference", "reward"),
}
"""Column names taken for a field that --fields does not map and the input lacks (AlpacaEval's instruction,
output and preference): the first one some row has. The columns used are recorded in dataset.json."""

PYARROW_HINT = "pip install pyarrow (or the extra 'text': pip install -e '.[text]' in the rmsearch source folder)"

MISSING = object()
"""What `get` returns for a field a row does not have."""


@dataclass
class Rows:
    """An input file's rows, in order: (1-based number, the row as a dict) or (number, "malformed") for a JSON
    line that is not an object."""

    path: Path
    format: str
    unit: str
    """What a number counts: "line" (JSON lines) or "row"."""
    rows: list[tuple[int, dict | str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    """Top-level column names, in order of first appearance."""

    def where(self, number: int) -> str:
        return f"{self.path}, {self.unit} {number}"


def parse_fields(spec: str | None) -> dict[str, str]:
    """'--fields prompt=instruction,score=preference' -> rmsearch field -> input column (identity for the rest)."""
    out = {name: name for name in FIELDS}
    if not spec:
        return out
    for item in spec.split(","):
        key, eq, column = (s.strip() for s in item.partition("="))
        if not eq or not column or key not in FIELDS:
            raise DataError(f"--fields {spec}: {item.strip()!r} is not NAME=COLUMN with NAME one of "
                            f"{', '.join(FIELDS)}; e.g. --fields prompt=instruction,response=output,score=preference.")
        out[key] = column
    return out


def get(row: dict, path: str):
    """The value at `path` in `row`: a key of the row, else a dotted path through objects (keys) and lists
    (indices); MISSING where there is none."""
    if path in row:
        return row[path]
    value = row
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def detect_format(path: Path) -> str:
    """The format of `path` by its suffix (a file) or its contents (a folder)."""
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file() or any(path.glob("*.arrow")):
            return "hf"
        raise DataError(f"{path}: is a folder but not one written by the `datasets` package's save_to_disk (no "
                        f"state.json or .arrow files). Give a file (JSON lines, Parquet, CSV) or such a folder.")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    for fmt, ends in (("jsonl", (".jsonl", ".json", ".ndjson")), ("parquet", (".parquet", ".pq")), ("csv", (".csv",))):
        if last in ends:
            return fmt
    raise DataError(f"{path}: cannot tell the format from the name ({last or 'no suffix'}); give it with --format, "
                    f"one of {', '.join(FORMATS)}.")


def check_format(fmt: str) -> None:
    if fmt != "auto" and fmt not in FORMATS:
        raise DataError(f"--format {fmt}: unknown format; choose one of auto, {', '.join(FORMATS)} (auto: by the "
                        f"file's suffix, or a save_to_disk folder's contents).")


def read_rows(path: str | Path, fmt: str = "auto") -> Rows:
    """Every row of `path` (see the module's formats). An unreadable file or an unknown format is a DataError."""
    path = Path(path)
    check_format(fmt)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder. Give a JSON-lines, Parquet or CSV file, or a `datasets` "
                        f"save_to_disk folder.")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt != "hf" and not path.is_file():
        raise DataError(f"{path}: is a folder; --format {fmt} reads a file (a save_to_disk folder is --format hf).")
    reader = {"jsonl": _jsonl, "parquet": _parquet, "csv": _csv, "hf": _hf}[fmt]
    out = Rows(path, fmt, "line" if fmt == "jsonl" else "row")
    seen: dict[str, None] = {}
    for number, row in reader(path):
        out.rows.append((number, row))
        if isinstance(row, dict):
            seen.update(dict.fromkeys(row))
    out.columns = list(seen)
    if fmt == "jsonl" and out.rows and all(isinstance(r, str) for _, r in out.rows):
        raise DataError(f"{path}: no line is a JSON object ({len(out.rows)} lines read); is it JSON lines? Give "
                        f"--format for another format.")
    return out


# ------------------------------------------------------------------------------------------------ readers


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") if gz else \
        open(path, "rt", encoding="utf-8", errors="replace", newline="")


def open_lines(path: Path) -> Iterator[str]:
    """The lines of a text file, plain or gzip (by its magic bytes, not its name)."""
    try:
        with _open_text(path) as f:
            yield from f
    except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
        raise DataError(f"{path}: cannot be read to the end ({exc}); the file may be truncated or corrupt.") from None


def _jsonl(path: Path) -> Iterator[tuple[int, dict | str]]:
    lines = open_lines(path)
    first = True
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if first and line.lstrip().startswith("["):  # one JSON array (a .json file), not JSON lines
            yield from _json_array(path, line + "".join(lines))
            return
        first = False
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        yield number, obj if isinstance(obj, dict) else "malformed"


def _json_array(path: Path, text: str) -> Iterator[tuple[int, dict | str]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: starts with '[' but is not one valid JSON array ({exc}); write one JSON object "
                        f"a line, or a valid array of objects.") from None
    for number, obj in enumerate(items, start=1):
        yield number, obj if isinstance(obj, dict) else "malformed"


def _csv(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        with _open_text(path) as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                return
            for number, row in enumerate(reader, start=1):
                yield number, {k: v for k, v in row.items() if k is not None}
    except csv.Error as exc:
        raise DataError(f"{path}: not readable as CSV ({exc}); check the quoting, or give --format.") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read to the end ({exc}); the file may be truncated or corrupt.") from None


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DataError(f"reading Parquet files and save_to_disk folders needs pyarrow: {PYARROW_HINT}.") from None
    return pyarrow


def _parquet(path: Path) -> Iterator[tuple[int, dict]]:
    pa = _pyarrow()
    try:
        batches = pa.parquet.ParquetFile(path).iter_batches()
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}); check the file, or give --format.") from None


def _hf(path: Path) -> Iterator[tuple[int, dict]]:
    pa = _pyarrow()
    if (path / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise DataError(f"{path}: holds a DatasetDict with splits {', '.join(splits) or '(none)'}; give one split's "
                        f"folder, e.g. {path / (splits[0] if splits else 'train')}.")
    files = _hf_files(path)
    if not files:
        raise DataError(f"{path}: a save_to_disk folder without .arrow files; save the dataset again.")
    number = 0
    for file in files:
        try:
            with pa.memory_map(str(file)) as source:
                try:
                    table = pa.ipc.open_stream(source).read_all()
                except pa.ArrowInvalid:  # the random-access file format
                    source.seek(0)
                    table = pa.ipc.open_file(source).read_all()
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{file}: not a readable Arrow file ({exc}); save the dataset again.") from None
        for batch in table.to_batches():
            for row in batch.to_pylist():
                number += 1
                yield number, row


def _hf_files(path: Path) -> list[Path]:
    """The folder's Arrow files in the order its state.json lists them (else by name)."""
    try:
        state = json.loads((path / "state.json").read_text())
        names = [f["filename"] for f in state["_data_files"]]
        return [path / n for n in names]
    except (OSError, ValueError, KeyError, TypeError):
        return sorted(path.glob("*.arrow"))


# ------------------------------------------------------------------------------------------------- values


def number(value) -> float | None:
    """A score as a float: numbers, and strings that parse as one (CSV cells); None for anything else. NaN and
    inf are returned as they are (the caller names them)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def json_list(value):
    """A list field as a list: lists as they are, and a JSON array written as a string (a CSV cell)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    return list(value) if isinstance(value, tuple) else value


KINDS = {
    "pairs": ("chosen", "rejected"),
    "long": ("prompt", "response", "score"),
    "wide": ("prompt", "responses", "scores"),
}
"""What the rows hold, by the fields they carry: preference pairs, or candidates (a row each, or a row a prompt)."""


def resolve_aliases(rows: Rows, fields: dict[str, str], spec: str | None) -> dict[str, str]:
    """`fields` with each field that --fields (`spec`) leaves unmapped and no row has by its own name taken from
    the first of its `ALIASES` that some row has."""
    given = {item.partition("=")[0].strip() for item in spec.split(",")} if spec else set()
    dicts = [r for _, r in rows.rows if isinstance(r, dict)]
    out = dict(fields)
    for name, aliases in ALIASES.items():
        if name in given or any(get(r, fields[name]) is not MISSING for r in dicts):
            continue
        found = next((a for a in aliases if any(a in r for r in dicts)), None)
        if found is not None:
            out[name] = found
    return out


def detect_kind(rows: Rows, fields: dict[str, str]) -> str:
    """'pairs', 'long' or 'wide': the first kind (in that order) whose fields some row has all of. None: a
    DataError naming the missing fields and the columns present, with the --fields that would map them."""
    dicts = [r for _, r in rows.rows if isinstance(r, dict)]

    def present(name: str) -> bool:
        return any(get(r, fields[name]) is not MISSING for r in dicts)

    found = {name: present(name) for name in {n for names in KINDS.values() for n in names}}
    for kind, names in KINDS.items():
        if all(found[n] for n in names):
            return kind
    # the kind the rows come closest to, for the message
    kind = min(KINDS, key=lambda k: sum(not found[n] for n in KINDS[k]))
    missing = [n for n in KINDS[kind] if not found[n]]
    looked = ", ".join(f"'{n}'" + (f" (as column '{fields[n]}')" if fields[n] != n else "") for n in missing)
    columns = ", ".join(rows.columns[:30]) + (f", … ({len(rows.columns)} in all)" if len(rows.columns) > 30 else "")
    what = {"pairs": "pairs need chosen and rejected", "long": "candidates need prompt, response and score (or "
            "prompt, responses and scores)", "wide": "candidates need prompt, responses and scores"}[kind]
    example = ",".join(f"{n}=COLUMN" for n in missing)
    if not any(found.values()):
        looked = "'chosen'/'rejected' (pairs) or 'prompt'/'response'/'score' (candidates)"
        what = "each row must be a pair or a scored candidate"
        example = "chosen=COLUMN,rejected=COLUMN for pairs, or --fields prompt=COLUMN,response=COLUMN,score=COLUMN"
    raise DataError(f"{rows.path}: no field {looked} in any {rows.unit} ({what}); columns present: "
                    f"{columns or 'none'}. "
                    f"Map the input's columns with --fields, e.g. --fields {example}.")
