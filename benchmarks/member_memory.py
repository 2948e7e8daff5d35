"""Memory of one member at the paper's full scale, for the configurations that hold the most: the default space's
boosted-trees start and exact logistic-regression start, the Laplace head at its defaults (the default space samples
it; Newton's method on every pair), and the seed-paper baseline every default launch trains (an MLP D→1024→512→1),
one member each, fitted in a process of its own on the full-scale world (`full_scale.py`
writes it), sampling that process's resident memory.

    .venv/bin/python benchmarks/member_memory.py                    # the world in runs/full-scale/world
    .venv/bin/python benchmarks/member_memory.py --save             # also keep the table for README.md

Each child builds the task as a search job does (`load_data`, `make_task`: about 360,000 training pairs and 40,000
early-stopping pairs at the seed's shapes) and trains one member (seed 0) of the configuration, boosted
trees with `max_pairs` as given; this process reads the child's VmRSS and RssAnon (/proc) every 0.2 s and keeps the
peaks, set against the largest split as stored, as `full_scale.py` does for a whole launch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from full_scale import RSS_GOAL, rss_and_name  # noqa: E402

from rmsearch.heads.gbdt import STOP_SHARE  # noqa: E402  (the early-stop cap, as the head applies it)

CHILD = """
import json, sys, time
from rmsearch.data import TaskConfig, load_data, make_task
from rmsearch.heads import head_config, make_head
from rmsearch.spaces import load_space

world, name, max_pairs = sys.argv[1], sys.argv[2], int(sys.argv[3])
point = (load_space("seed-paper").fixed_point() if name == "seed-paper" else
         {f"laplace.{k}" if k != "kind" else "head": v for k, v in head_config("laplace").to_dict().items()}
         if name == "laplace" else next(p for p in load_space("default").starts if p["head"] == name))
kind = point["head"]
values = {k.split(".", 1)[1]: v for k, v in point.items() if k.startswith(kind + ".")}
extra = {"max_pairs": max_pairs} if kind == "gbdt" else {}
task = make_task(load_data(world, seed=0), TaskConfig(seed=0))
built = time.perf_counter()
head = make_head(head_config(kind, **values, **extra), seeds=(0,)).fit(task.train, stop=task.stop)
print(json.dumps({"fit_s": time.perf_counter() - built, "rounds": head.epochs_, "train_pairs": len(task.train),
                  "stop_pairs": len(task.stop), "config": values}))
"""


def measure(world: Path, name: str, max_pairs: int = 0) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(world), name, str(max_pairs)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    rss = anon = 0
    while proc.poll() is None:
        got = rss_and_name(proc.pid)
        if got:
            rss, anon = max(rss, got[0]), max(anon, got[2])
        time.sleep(0.2)
    out = proc.stdout.read()
    if proc.returncode:
        raise SystemExit(f"the {name} member's fit failed (exit {proc.returncode})")
    return {"head": name, "max_pairs": max_pairs, "rss_kib": rss, "anon_kib": anon,
            **json.loads(out.strip().splitlines()[-1])}


def fitted(r: dict) -> str:
    """What the member fitted on: boosted trees, `max_pairs` of the training pairs (early stopping on a quarter as
    many); the exact linear head, every training and early-stopping pair (it has no early stopping); an MLP, the
    training pairs, early stopping on the others."""
    if r["head"] == "gbdt":
        n = min(r["max_pairs"] or r["train_pairs"], r["train_pairs"])
        stop = min(r["stop_pairs"], r["max_pairs"] // STOP_SHARE or r["stop_pairs"])
        return f"{n:,} of {r['train_pairs']:,} (max_pairs {r['max_pairs']:,}; early stopping on {stop:,})"
    if r["head"] in ("linear", "laplace"):
        return f"{r['train_pairs'] + r['stop_pairs']:,} (training and early-stopping pairs)"
    return f"{r['train_pairs']:,} (early stopping on {r['stop_pairs']:,})"


def markdown(rows: list[dict], largest: int) -> str:
    lines = ["| configuration | pairs fitted | fit | peak RSS | of which private | peak RSS / largest split as stored "
             f"(goal ≤ {RSS_GOAL}×) |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["rss_kib"] * 1024 / largest
        rounds = {"gbdt": f" ({r['rounds']:g} rounds)", "seed-paper": f" ({r['rounds']:g} epochs)"}.get(r["head"], "")
        lines.append(f"| {r['head']} ({', '.join(f'{k} {v}' for k, v in r['config'].items())}) | {fitted(r)} | "
                     f"{r['fit_s'] / 60:.1f} min{rounds} | {r['rss_kib'] / 2**20:.2f} GiB | "
                     f"{r['anon_kib'] / 2**20:.2f} GiB | **{ratio:.2f}×** ({'met' if ratio <= RSS_GOAL else 'not met'}) |")
    lines += ["", "One member (seed 0) of each configuration named (gbdt, linear: the default space's starts; laplace: "
              "its defaults, a head the default space samples; seed-paper: the baseline), in a process of its own that also builds the task; largest split as stored: "
              f"{largest / 2**30:.2f} GiB (float16)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", type=Path, default=ROOT / "runs" / "full-scale" / "world")
    names = ["gbdt", "linear", "laplace", "seed-paper"]
    ap.add_argument("--heads", nargs="+", choices=names, default=names)
    ap.add_argument("--max-pairs", type=int, nargs="+", default=[50_000], help="boosted trees: one row for each")
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args()
    splits = sorted(args.world.glob("embd_*.npy"))
    if not splits:
        raise SystemExit(f"no world in {args.world}: run benchmarks/full_scale.py first (it writes one), or pass --world")
    largest = max(p.stat().st_size for p in splits)
    rows = [measure(args.world, kind, m) for kind in args.heads for m in (args.max_pairs if kind == "gbdt" else [0])]
    md = markdown(rows, largest)
    print(md)
    if args.save:
        from readme import save

        print("saved", save("member-memory", md, {"rows": rows, "largest_split_bytes": largest}))


if __name__ == "__main__":
    main()
