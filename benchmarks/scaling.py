"""Speed target 5: member-training throughput with 1 worker, 2 workers, and 2 workers on two Ray nodes.

    .venv/bin/python benchmarks/scaling.py              # 6 trials × 4 members each, per configuration
    .venv/bin/python benchmarks/scaling.py --trials 3   # quicker
    .venv/bin/python benchmarks/scaling.py --save       # also keep the table for README.md

The same search (a one-head space whose trials differ in weight decay, so every member is new) runs three times:
local Ray with one worker slot (both cores, two threads per job), local Ray with two slots (one thread each), and
a cluster of two `ray start` nodes on 127.0.0.1 with one CPU each, joined with `--address` (the task crosses to
the second node's object store, jobs run on both). Throughput = members trained per second of the search loop
(Ray start and data set-up excluded), so the three are comparable.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

SPACE = """
head: mlp
members: 4
aggregation: mean
standardize: true
mlp.hidden: [256, 128]
mlp.epochs: 6
mlp.patience: 0
mlp.batch_size: 1024
mlp.weight_decay: {log: [1.0e-6, 1.0e-2]}
"""


def run(data: str, trials: int, workers: int | None = None, address: str | None = None) -> dict:
    import ray

    from rmsearch.search import LaunchOptions, Search

    with tempfile.TemporaryDirectory() as tmp:
        space = Path(tmp) / "space.yaml"
        space.write_text(SPACE)
        opts = LaunchOptions(data=data, space=str(space), trials=trials, runs=Path(tmp), workers=workers,
                             address=address, final=False, progress=False)
        search = Search(opts).run()
    ray.shutdown()
    st = search.state
    loop = search.search_seconds - st.phases.get("setup", 0) - st.phases.get("ray start", 0)
    return {"slots": search.slots, "threads": search.threads, "members": st.trained, "loop": loop,
            "rate": st.trained / loop, "fit": st.fit_seconds, "jobs": st.jobs, "nodes": len(st.nodes)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--data", default="synth:dim=512,train_prompts=2000,test_prompts=50")
    ap.add_argument("--save", action="store_true", help="save the table for README.md (benchmarks/results/)")
    args = ap.parse_args()

    from rmsearch.search._local_cluster import local_cluster

    rows = {"1 worker (local)": run(args.data, args.trials, workers=1),
            "2 workers (local)": run(args.data, args.trials, workers=2)}
    with local_cluster(nodes=2, cpus_per_node=1) as port:
        rows["2 nodes × 1 worker (127.0.0.1)"] = run(args.data, args.trials, address=f"127.0.0.1:{port}")
    print(f"# scaling: {args.trials} trials × 4 members, data {args.data}")
    markdown = table(rows)
    print()
    print(markdown)
    if args.save:
        from readme import save

        print(f"\nsaved {save('scaling', markdown, rows)}; `python benchmarks/readme.py` puts it in README.md")


def table(rows: dict) -> str:
    """Members per second of the search loop in each configuration, as Markdown."""
    base = rows["1 worker (local)"]["rate"]
    lines = ["| configuration | slots × threads | nodes | members | loop seconds | members/s | vs 1 worker | slots busy "
             "training |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        busy = r["fit"] / (r["slots"] * r["loop"])
        lines.append(f"| {name} | {r['slots']} × {r['threads']} | {r['nodes']} | {r['members']} | {r['loop']:.1f} | "
                     f"{r['rate']:.2f} | {r['rate'] / base:.2f}× | {busy:.0%} |")
    lines += ["", "Slots busy training = member training time / (slots × loop time)."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
