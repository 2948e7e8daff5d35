"""How a torch head's training steps gather their rows, before and after blocking, in one process: the same fit of the
same members with each step's rows converted and normalized a block at a time (256 rows at D=2048) (`_gather_members`, current)
against the whole batch at once (`whole_batch_gather`, the earlier code: numpy's float16 cast of every unique row of
every member's batch, then float32 copies normalized in place), on float16 rows in a memory map as a search reads
them. The fitted members must be the same bit for bit; the ratio is the median fit time, before over after.

    .venv/bin/python benchmarks/gather_speed.py                  # D=2048, about 5 minutes
    .venv/bin/python benchmarks/gather_speed.py --dim 512 --pairs 10000 --repeats 1     # quick
    .venv/bin/python benchmarks/gather_speed.py --save           # also keep the table for README.md

Configurations: the default space's two MLP starts and the seed-paper baseline's MLP, each as one member job of a
search on 2 worker slots trains it (half of the members, one thread), for one epoch on `--pairs` random pairs of
`--rows` random float16 rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rmsearch.process_env import training_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.update(training_env())  # as member jobs train (before torch loads)
import torch  # noqa: E402

import rmsearch.heads._torch as torch_heads  # noqa: E402
from rmsearch.data import Pairs  # noqa: E402
from rmsearch.heads import head_config, make_head  # noqa: E402
from rmsearch.spaces import load_space  # noqa: E402

CONFIGS = {
    "default start 1 (mlp 128-64)": ("default", 0),
    "default start 2, coste (mlp 64-32, bootstrap)": ("default", 1),
    "seed-paper baseline (mlp 1024-512)": ("seed-paper", None),
}
"""Name -> (built-in space, index of its start; None: the space's fixed point)."""


def whole_batch_gather(pairs, idx, features, dtype, mean, scale, device):
    """The earlier `_gather_members`: every member's unique rows converted by numpy to float32 at once, then
    subspace, normalization and cast on the whole (k, U, D) copy. Same return values as the current one."""
    k = len(idx)
    uniq, inv = zip(*(np.unique(np.concatenate([pairs.a[i], pairs.b[i]]), return_inverse=True) for i in idx))
    sizes = [len(u) for u in uniq]
    U = max(sizes)
    rows = np.concatenate([np.pad(u, (0, U - len(u)), mode="edge") for u in uniq])
    x = torch.from_numpy(np.asarray(pairs.X[rows], dtype=np.float32)).to(device).view(k, U, -1)
    if features is not None:
        x = x.gather(2, features[:, None, :].expand(-1, U, -1))
        mean, scale = mean[features][:, None, :], scale[features][:, None, :]
    x = x.sub_(mean).div_(scale).to(dtype)
    inv = torch.from_numpy(np.stack(inv)).to(device)
    B = idx.shape[1]
    return x, inv[:, :B], inv[:, B:], sizes


def job_config(name: str):
    """The head config and seeds of one member job of the configuration `name` (half of its members)."""
    space_name, start = CONFIGS[name]
    space = load_space(space_name)
    point = space.fixed_point() if start is None else space.starts[start]
    kind = point["head"]
    config = head_config(kind, **{k.split(".", 1)[1]: v for k, v in point.items() if k.startswith(kind + ".")})
    members = int(point.get("members", 10))
    return dataclasses.replace(config, epochs=1, patience=0), tuple(range(-(-members // 2)))


def fit_seconds(config, seeds, pairs) -> tuple[float, list[dict]]:
    t = time.perf_counter()
    head = make_head(config, seeds=seeds).fit(pairs)
    return time.perf_counter() - t, head.member_arrays()


def measure(name: str, pairs: Pairs, repeats: int) -> dict:
    config, seeds = job_config(name)
    current = torch_heads._gather_members
    times = {"whole batch": [], "blocks": []}
    arrays = {}
    for _ in range(repeats):
        for variant, fn in (("whole batch", whole_batch_gather), ("blocks", current)):
            torch_heads._gather_members = fn
            try:
                secs, arrays[variant] = fit_seconds(config, seeds, pairs)
            finally:
                torch_heads._gather_members = current
            times[variant].append(secs)
    same = all(np.array_equal(a[key], b[key]) for a, b in zip(arrays["whole batch"], arrays["blocks"]) for key in a)
    before, after = statistics.median(times["whole batch"]), statistics.median(times["blocks"])
    print(f"{name}: {len(seeds)} members, whole batch {before:.1f} s, blocks {after:.1f} s, "
          f"{before / after:.2f}x, same members: {same}", flush=True)
    return {"name": name, "members": len(seeds), "hidden": list(config.hidden), "batch_size": config.batch_size,
            "before": times["whole batch"], "after": times["blocks"], "ratio": before / after, "same": same}


def markdown(rows: list[dict], args) -> str:
    block = torch_heads.GATHER_ELEMENTS["cpu"] // args.dim
    lines = ["| configuration (one member job) | members | batch | fit, whole-batch gather | fit, "
             f"{block}-row blocks | speedup | members bit-identical |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['members']} | {r['batch_size']} | "
                     f"{statistics.median(r['before']):.1f} s | {statistics.median(r['after']):.1f} s | "
                     f"**{r['ratio']:.2f}×** | {'yes' if r['same'] else 'no'} |")
    lines.append("")
    precision = "bf16" if torch_heads.use_bf16("auto", args.dim) else "fp32"
    lines.append(f"One epoch on {args.pairs:,} random pairs of {args.rows:,} random float16 rows at D={args.dim} in a "
                 f"memory map, one thread, precision 'auto' ({precision} here); medians of {args.repeats} fits of "
                 f"each, alternating, in one process.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=40_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--save", action="store_true", help="save the table for README.md (benchmarks/results/)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one worker slot
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.npy"
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(args.rows, args.dim))
        for s in range(0, args.rows, 8192):
            X[s : s + 8192] = rng.standard_normal((min(8192, args.rows - s), args.dim), dtype=np.float32)
        X.flush()
        del X
        X = np.load(path, mmap_mode="r")
        pairs = Pairs(X, rng.integers(0, args.rows, args.pairs), rng.integers(0, args.rows, args.pairs),
                      rng.integers(0, 2, args.pairs).astype(np.float32))
        rows = [measure(name, pairs, args.repeats) for name in CONFIGS]
    text = markdown(rows, args)
    print(text)
    if args.save:
        from readme import save

        print(f"saved {save('gather-speed', text, rows)}; `python benchmarks/readme.py` puts it in README.md")


if __name__ == "__main__":
    main()
