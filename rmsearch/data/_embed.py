"""`rmsearch data embed`: text -> a dataset folder of embeddings (its parser, run and summary).

Input (`_formats`): JSON lines (plain or .gz), Parquet, CSV, or a `datasets` save_to_disk folder; `--fields` maps
other column names. Rows with chosen/rejected are preference pairs (hh-rlhf dialogue strings, or a prompt with
responses as strings or chat-message lists, as in UltraFeedback-binarized and OpenRLHF-style files) and make a
pair dataset; rows with a response and a score (or lists of responses and scores) are scored candidates and make
a gold (best-of-N) dataset.

What is embedded: what differs, with its immediate context -- the last human turn (or the prompt) and the
final answer ("Human: …\\n\\nAssistant: …"). Encoders truncate (all-MiniLM-L6-v2 at 256 tokens), so whole
dialogues would embed the shared prefix only and chosen and rejected would come out identical.

Pairs: malformed rows, missing fields, non-text fields, empty texts and identical texts are skipped and counted.
Candidates: any bad row is an error naming it. Embeddings are cached by the encoder's identity and the text in
DIR/.cache (or --cache), so a rerun embeds only new texts and does not load the model when all are cached.

This module is the command; the work is in `_formats` (reading rows), `_text_pairs` (pairs), `_candidates`
(candidate sets), `_encoder` (the model), `_embed_cache` (the cache), `_embed_dataset` (embedding) and
`_embed_folders` (writing the folder).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rmsearch.data._candidates import GOLD, GOLD_EPS, RAGGED
from rmsearch.data._embed_dataset import embed_file
from rmsearch.data._embed_folders import EmbedResult
from rmsearch.data._encoder import INSTALL_COMMAND, INSTALL_HINT  # noqa: F401 (tests/launch read INSTALL_HINT here)
from rmsearch.data._formats import ALIASES, FIELDS, FORMATS
from rmsearch.data._text_pairs import SKIP_REASONS, WHAT


def _common(console, m: dict, result: EmbedResult, seconds: float) -> None:
    model, t = m["model"], m["texts"]
    if m["source"]["fields"]:
        console.print("  columns: " + ", ".join(f"{k} = {v}" for k, v in m["source"]["fields"].items()))
    console.print(f"  model {model.get('name')} ({model.get('dim')}-d, pooling {model.get('pooling')}, max length "
                  f"{model.get('max_length')}, {model.get('dtype')}, "
                  f"{'L2-normalized' if model.get('normalized') else 'not normalized'}); embedded: {m['embedded']}")
    for line in model.get("notes") or ():
        console.print(f"  note: {line}")
    note = "" if result.encoder_loaded else " (model not loaded)"
    console.print(f"  {t['encoded']:,} texts encoded, {t['from_cache']:,} from the cache{note}; {t['truncated']:,} "
                  f"of the encoded texts truncated at the encoder's max length; {seconds:.1f} s")


def print_pair_summary(console, result: EmbedResult) -> None:
    from rich.table import Table

    m = result.meta
    console.print(f"{m['counts']['pairs']:,} pairs embedded from {m['counts']['lines']:,} {m['source']['unit']}s of "
                  f"{m['source']['path']}")
    p = m["prompts"]
    ppp = p["pairs_per_prompt"]
    console.print(f"  {p['count']:,} prompts, pairs per prompt min {ppp['min']} median {ppp['median']:g} max "
                  f"{ppp['max']} (prompt from a prompt field: {p['from']['field']:,} pairs, from the dialogue "
                  f"before the final answer: {p['from']['dialogue']:,}, unknown: {p['from']['none']:,})")
    cats = ", ".join(f"{n} {c:,}" for n, c in m["category_pairs"].items())
    console.print(f"  categories: {cats or 'none'}; lengths of the final answers kept")
    if any(m["skipped"].values()):
        table = Table(title=f"skipped: {m['counts']['skipped']}")
        for col, justify in (("reason", "left"), ("pairs", "right"), ("first line", "right")):
            table.add_column(col, justify=justify)
        for key, n in m["skipped"].items():
            if n:
                table.add_row(SKIP_REASONS[key], str(n), str(m["skipped_first_line"].get(key, "")))
        console.print(table)
    else:
        console.print("  skipped: none")


def print_gold_summary(console, result: EmbedResult) -> None:
    m = result.meta
    c, r, g, s = m["counts"], m["ragged"], m["gold"], m["split"]
    console.print(f"{c['prompts_written']:,} prompts × K={c['K']} candidates embedded from {c['rows']:,} "
                  f"{m['source']['unit']}s of "
                  f"{m['source']['path']} ({c['prompts_in_input']:,} prompts, {c['duplicate_rows']:,} duplicate rows "
                  f"dropped)")
    console.print(f"  K = {r['k']} ({r['k_from']}); --ragged {r['rule']}: {r['exactly_k']:,} prompts had K, "
                  f"{r['subsampled']:,} with more were subsampled, {r['dropped_fewer']:,} with fewer and "
                  f"{r['dropped_more']:,} with more dropped (seed {r['seed']})"
                  + (f"; --max-prompts kept a random {c['prompts_written']:,} of {c['prompts_kept']:,}"
                     if c["prompts_written"] < c["prompts_kept"] else ""))
    eps = f", eps {g['eps']:g}" if g["eps"] is not None else ""
    console.print(f"  gold: {g['transform']} ({g['formula']}{eps}); scores [{g['score_range'][0]:g}, "
                  f"{g['score_range'][1]:g}] -> gold [{g['gold_range'][0]:.3g}, {g['gold_range'][1]:.3g}]")
    console.print(f"  split: {s['train_prompts']:,} train / {s['test_prompts']:,} test prompts (--test-fraction "
                  f"{s['test_fraction']:g}, seed {s['seed']}; validation prompts come out of the test split)")
    cats = ", ".join(f"{n} {k:,}" for n, k in m["category_prompts"].items())
    console.print(f"  categories (prompts): {cats or 'none'}; response lengths kept")


def print_summary(result: EmbedResult, out: Path, seconds: float, file=None) -> None:
    from rich.console import Console

    console = Console(file=file, markup=False, highlight=False)
    (print_pair_summary if result.kind == "pairs" else print_gold_summary)(console, result)
    _common(console, result.meta, result, seconds)
    console.print(f"dataset: {out}   (rmsearch data inspect {out})")


def cmd_data_embed(args) -> int:
    out = Path(args.out)
    t0 = time.perf_counter()
    result = embed_file(
        args.input, out, progress=not args.no_progress and sys.stderr.isatty(), format=args.format,
        fields=args.fields, embed=args.embed, batch_size=args.batch_size, max_pairs=args.max_pairs,
        max_prompts=args.max_prompts, k=args.k, ragged=args.ragged, gold=args.gold, gold_eps=args.gold_eps,
        test_fraction=args.test_fraction, seed=args.seed, keep_duplicates=args.keep_duplicates, cache=args.cache,
        model=args.model, pooling=args.pooling, device=args.device, dtype=args.dtype, max_length=args.max_length)
    print_summary(result, out, time.perf_counter() - t0)
    return 0


def _input_args(p) -> None:
    p.add_argument("input", help="a file (JSON lines .jsonl/.jsonl.gz, .parquet, .csv) or a `datasets` save_to_disk "
                   "folder, of preference pairs or scored candidates")
    p.add_argument("--out", required=True, help="dataset folder to write (required; its arrays and manifest are "
                   "replaced; if it did not exist, a failed run leaves none)")
    p.add_argument("--format", default="auto", metavar="{auto," + ",".join(FORMATS) + "}",
                   help="input format (default: %(default)s: by the suffix, or a folder's contents). "
                        + "; ".join(f"{k}: {v}" for k, v in FORMATS.items()))
    aliases = ", ".join(f"{k} <- {'/'.join(v)}" for k, v in ALIASES.items())
    p.add_argument("--fields", metavar="NAME=COLUMN,...", help="map input columns onto rmsearch's field names "
                   "(default: none: the columns carry the names themselves; a field the input lacks and --fields "
                   f"does not map is taken from a known other name where present: {aliases}). A column may be a "
                   "dotted path (meta.score, messages.0.content). Names: "
                   + "; ".join(f"{k}: {v}" for k, v in FIELDS.items()) + ". E.g. --fields prompt=question,"
                   "response=answer,score=reward")
    p.add_argument("--embed", choices=tuple(WHAT), default="turn", help="what to embed of each text (default: "
                   "%(default)s): " + "; ".join(f"'{k}' = {v}" for k, v in WHAT.items()))


def _candidate_args(p) -> None:
    p.add_argument("--k", type=int, help="candidates per prompt, K (default: the most common number of candidates "
                   "per prompt, the larger on a tie)")
    p.add_argument("--ragged", choices=tuple(RAGGED), default="subsample", help="prompts with other than K "
                   "candidates (default: %(default)s): " + "; ".join(f"{k}: {v}" for k, v in RAGGED.items()))
    p.add_argument("--gold", choices=tuple(GOLD), default="identity", help="raw score -> gold (default: "
                   "%(default)s): " + "; ".join(f"{k}: {v}" for k, v in GOLD.items()))
    p.add_argument("--gold-eps", type=float, default=GOLD_EPS, help="eps of the logit transforms (default: "
                   "%(default)s, the resolution of AlpacaEval's 6-decimal preferences: logit(eps) = -13.8)")
    p.add_argument("--test-fraction", type=float, default=0.5, help="share of prompts in the folder's test split "
                   "(default: %(default)s); rmsearch carves validation prompts out of the test split, so 0.5 gives "
                   "50%% train, 25%% validation and 25%% test prompts")
    p.add_argument("--seed", type=int, default=0, help="seeds the subsample of --ragged subsample, the sample of "
                   "--max-prompts and the train/test split of prompts (default: %(default)s)")
    p.add_argument("--max-prompts", type=int, help="write only a random N (seeded by --seed, kept in input order) of "
                   "the prompts the ragged rule keeps, e.g. for a quick trial run; K and the counts still come from "
                   "the whole input (default: all)")
    p.add_argument("--keep-duplicates", action="store_true", help="keep candidate rows identical in every field to "
                   "an earlier row (default: off, such rows are dropped and counted)")


def _encoder_args(p) -> None:
    p.add_argument("--model", help="a sentence-transformers or Hugging Face transformers model: a local folder, or a "
                   "name already in the local Hugging Face cache; never downloaded (default: the bundled "
                   "all-MiniLM-L6-v2)")
    p.add_argument("--pooling", choices=("last", "mean", "cls"), help="how token states become one vector "
                   "(default: the model's own for sentence-transformers models, 'last' -- the last non-padding "
                   "token of the last hidden layer -- for decoder models)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the model runs "
                   "(default: %(default)s: cuda when available)")
    p.add_argument("--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto", help="the model's "
                   "weights and compute type (default: %(default)s: float32 on CPU, the model's own on cuda); "
                   "embeddings are written as float32")
    p.add_argument("--max-length", type=int, help="tokens per text; longer texts are truncated and counted "
                   "(default: the model's own maximum)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per encoder call (default: %(default)s)")
    p.add_argument("--cache", metavar="DIR", help="embedding cache folder (default: OUT/.cache); a rerun embeds only "
                   "texts not in it")


def add_embed_parser(subparsers) -> None:
    """Add `embed` to the `rmsearch data` subcommands."""
    p = subparsers.add_parser(
        "embed", help=f"embed preference pairs or scored candidates (text) into a dataset (needs the extra 'text': "
                      f"{INSTALL_COMMAND})",
        description=f"Embed text offline ({INSTALL_COMMAND} in the rmsearch source folder) into a dataset folder "
                    "that launch, evaluate and data inspect accept. Rows with chosen/rejected make a pair dataset "
                    "(chosen.npy, rejected.npy, prompts.npy, lengths.npy, dataset.json); rows with response and "
                    "score (or responses[] and scores[]) make a gold best-of-N dataset (seed-format embd_/reward_ "
                    "files for a train and a test split, dataset.json, prompts.json). Bad pair rows are skipped "
                    "and counted; a bad candidate row is an error.")
    _input_args(p)
    p.add_argument("--max-pairs", type=int, help="pairs: stop after this many usable pairs (default: all)")
    _candidate_args(p)
    _encoder_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: off)")
    p.set_defaults(func=cmd_data_embed)
