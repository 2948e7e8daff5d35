"""Embedding speed of the bundled all-MiniLM-L6-v2: the earlier path against `load_encoder()`, on the unique texts
of the 1,800 shared hh pairs (../shared/data/hh-harmless-pairs.jsonl.gz, read as `rmsearch data embed` reads them).

    .venv/bin/python benchmarks/embed_speed.py                  # 2 passes over the texts per path, interleaved
    .venv/bin/python benchmarks/embed_speed.py --save           # keep the numbers in benchmarks/results/

- old: sentence-transformers' `SentenceTransformer(bundled folder).encode`, called on batches of 64 texts sorted
  by length, each with batch_size = the batch and normalize_embeddings=True (what `_embed_dataset._encode` and
  `MiniLM.encode` did).
- new: `load_encoder().encode` on the same batches.

Both run in this process, with the environment the `rmsearch` command gives itself (`training_env`: a short
OpenMP spin), interleaved batch by batch (old then new on one batch, new then old on the next), so that a change
in the machine's load (shared cores) hits both alike. Printed, in wall time and in this process's CPU time (which
other processes on the cores disturb less): each pass's total per path, the medians over passes and their ratio
new / old, and the median over batches of the paired per-batch ratio. Separately, a fresh
process per path times import + load + the first batch (the new path does not import sentence-transformers).
The CPU's vector extensions (/proc/cpuinfo: avx512f, avx512_bf16, amx) go beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rmsearch.process_env import training_env

os.environ.update(training_env())  # as the `rmsearch` command runs (before torch loads)

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT.parent / "shared" / "data" / "hh-harmless-pairs.jsonl.gz"
BATCH = 64
FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")


def cpu() -> dict:
    """Model name, cores, and which of FLAGS the CPU has (as rmsearch reads /proc/cpuinfo)."""
    from _machine import cpu_model

    from rmsearch.heads._configs import cpu_flags

    flags = cpu_flags()
    return {"model": cpu_model(), "cores": os.cpu_count(), **{f: f in flags for f in FLAGS},
            "amx": any(f.startswith("amx") for f in flags)}


def texts() -> list[str]:
    from rmsearch.data._text_pairs import read_pairs

    pairs = read_pairs(PAIRS)
    return list(dict.fromkeys(pairs.chosen + pairs.rejected))


def batches(all_texts: list[str]) -> list[list[str]]:
    ordered = sorted(all_texts, key=len)  # as _embed_dataset._encode sorts its work
    return [ordered[i : i + BATCH] for i in range(0, len(ordered), BATCH)]


def old_encoder():
    from sentence_transformers import SentenceTransformer

    from rmsearch.data._encoder import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    return lambda batch: np.asarray(model.encode(batch, batch_size=len(batch), normalize_embeddings=True,
                                                 convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def new_encoder():
    from rmsearch.data._encoder import load_encoder

    enc = load_encoder(device="cpu")
    return lambda batch: enc.encode(batch)[0]


def passes(paths: dict, work: list[list[str]], repeats: int) -> tuple[dict, dict, dict]:
    """Every batch through both paths, alternating which goes first; per path: seconds per pass, seconds per
    batch (all passes), and the vectors of the last pass."""
    totals = {(name, clock): [] for name in paths for clock in ("wall", "cpu")}
    per_batch = {key: [] for key in totals}
    vectors = {name: [None] * len(work) for name in paths}
    for r in range(repeats):
        spent = dict.fromkeys(totals, 0.0)
        for i, batch in enumerate(work):
            for name in (("old", "new") if (i + r) % 2 == 0 else ("new", "old")):
                wall, cpu_start = time.perf_counter(), time.process_time()
                vectors[name][i] = paths[name](batch)
                for clock, seconds in (("wall", time.perf_counter() - wall), ("cpu", time.process_time() - cpu_start)):
                    spent[name, clock] += seconds
                    per_batch[name, clock].append(seconds)
        for key in totals:
            totals[key].append(spent[key])
        print(f"#   pass {r + 1}: " + ", ".join(f"{name} {spent[name, 'wall']:.2f} s ({spent[name, 'cpu']:.2f} s CPU)"
                                            for name in paths), flush=True)
    return totals, per_batch, {k: np.concatenate(v) for k, v in vectors.items()}


def first_batch_seconds(path: str, batch: list[str]) -> float:
    """Import + load + one batch in a fresh process: wall seconds."""
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import embed_speed as b; "
            f"b.{path}_encoder()(json.loads(sys.stdin.read()))")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], input=json.dumps(batch), text=True, check=True, cwd=ROOT,
                   capture_output=True)
    return time.perf_counter() - start


def markdown(res: dict) -> str:
    """The README block of a saved result."""
    c = res["cpu"]
    flags = ", ".join(f"{f} {'yes' if c.get(f) else 'no'}" for f in ("avx512f", "avx512_bf16", "amx"))
    rows = ["| clock | sentence-transformers `encode` (before) | `load_encoder` (now) | now / before, pass medians "
            "| now / before, median over batches |", "|---|---|---|---|---|"]
    for clock in ("wall", "cpu"):
        t = res[f"{clock}_time"]
        m = t["median_seconds"]
        rows.append(f"| {clock} | {m['old']:.1f} s ({res['texts'] / m['old']:.0f} texts/s) | {m['new']:.1f} s "
                    f"({res['texts'] / m['new']:.0f} texts/s) | {t['ratio_new_over_old']:.3f} | "
                    f"{t['paired_batch_ratio_median']:.3f} |")
    fresh = res["fresh_process_first_batch_seconds"]
    return (f"Embedding the {res['texts']:,} unique texts of the 1,800 shared hh pairs with the bundled encoder, "
            f"batches of {res['batch']} interleaved between the two paths, median of passes ({res['cpu']['model']}, "
            f"{c['cores']} cores, {flags}; {res['torch_threads']} torch threads):\n\n" + "\n".join(rows)
            + f"\n\nLargest difference between their vectors: {res['max_abs_difference']:.1e}. A fresh process "
            f"(imports, model load, first batch): before {fresh['old']:.1f} s, now {fresh['new']:.1f} s.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2, help="passes over the texts per path (default 2)")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/embed-speed.json")
    ap.add_argument("--render", action="store_true", help="only (re)write the README block of the saved result")
    args = ap.parse_args()
    if args.render:
        out = Path(__file__).parent / "results" / "embed-speed.json"
        res = json.loads(out.read_text())
        out.write_text(json.dumps({**res, "markdown": markdown(res)}, indent=1))
        print(res["markdown"] if "markdown" in res else markdown(res))
        return
    import torch

    machine = cpu()
    work = batches(texts())
    n = sum(len(b) for b in work)
    print(f"# embed_speed: {n} unique texts of {PAIRS.name} in {len(work)} batches of {BATCH}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; CPU {machine['model']}, {machine['cores']} cores, "
          + ", ".join(f"{f}={'yes' if machine[f] else 'no'}" for f in ("avx512f", "avx512_bf16", "amx")), flush=True)
    paths = {"old": old_encoder(), "new": new_encoder()}
    for encode in paths.values():
        encode(work[-1])  # warm-up: the longest batch
    totals, per_batch, vectors = passes(paths, work, args.repeats)
    diff = float(np.abs(vectors["old"] - vectors["new"]).max())
    summary = {}
    for clock in ("wall", "cpu"):
        median = {name: statistics.median(totals[name, clock]) for name in paths}
        paired = statistics.median(np.array(per_batch["new", clock]) / np.array(per_batch["old", clock]))
        summary[f"{clock}_time"] = {"median_seconds": median, "ratio_new_over_old": median["new"] / median["old"],
                          "paired_batch_ratio_median": paired}
        print(f"{clock + ' time:':10s} old (sentence-transformers encode) median {median['old']:.2f} s a pass "
              f"({n / median['old']:.0f} texts/s); new (load_encoder) {median['new']:.2f} s ({n / median['new']:.0f} "
              f"texts/s); ratio new / old {median['new'] / median['old']:.3f} (median of each batch's ratio "
              f"{paired:.3f})")
    fresh = {k: first_batch_seconds(k, work[0]) for k in ("old", "new")}
    print(f"largest difference between the vectors: {diff:.2e}")
    print(f"fresh process, import + load + first batch: old {fresh['old']:.1f} s, new {fresh['new']:.1f} s")
    if args.save:
        sys.path.insert(0, str(Path(__file__).parent))
        from readme import RESULTS, provenance

        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / "embed-speed.json"
        out.write_text(json.dumps({**provenance(sys.argv), "cpu": machine, "torch_threads": torch.get_num_threads(),
                                   "texts": n, "batch": BATCH,
                                   "pass_seconds": {f"{k[0]} {k[1]}": v for k, v in totals.items()},
                                   **summary, "max_abs_difference": diff,
                                   "fresh_process_first_batch_seconds": fresh}, indent=1))
        out.write_text(json.dumps({**json.loads(out.read_text()), "markdown": markdown(json.loads(out.read_text()))},
                                  indent=1))
        print(f"saved {out}")


if __name__ == "__main__":
    main()
