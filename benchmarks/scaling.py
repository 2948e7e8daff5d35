"""Speed target 5: member-training throughput with 1 worker, 2 workers, and 2 workers on two Ray nodes.

    .venv/bin/python benchmarks/scaling.py              # 6 trials × 4 members each, per configuration
    .venv/bin/python benchmarks/scaling.py --trials 3   # quicker

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
    args = ap.parse_args()

    from rmsearch.search._local_cluster import local_cluster

    rows = {"1 worker (local)": run(args.data, args.trials, workers=1),
            "2 workers (local)": run(args.data, args.trials, workers=2)}
    with local_cluster(nodes=2, cpus_per_node=1) as port:
        rows["2 nodes × 1 worker (127.0.0.1)"] = run(args.data, args.trials, address=f"127.0.0.1:{port}")
    base = rows["1 worker (local)"]["rate"]
    print(f"# scaling: {args.trials} trials × 4 members, data {args.data}")
    print()
    print("Target 5: member-training throughput")
    print(f"  {'configuration':32s} {'slots×thr':>9} {'nodes':>5} {'members':>7} {'loop s':>7} {'members/s':>9} "
          f"{'vs 1 worker':>11} {'busy':>6}")
    for name, r in rows.items():
        busy = r["fit"] / (r["slots"] * r["loop"])
        print(f"  {name:32s} {r['slots']:>5}×{r['threads']:<3} {r['nodes']:>5} {r['members']:>7} {r['loop']:>7.1f} "
              f"{r['rate']:>9.3f} {r['rate'] / base:>10.2f}× {busy:>6.0%}")
    print("  busy = member training time / (slots × loop time). Every configuration shares this machine's cores, so "
          "two workers or two nodes add no compute here: they show what the extra scheduling and the transfer to a "
          "second node cost.")


if __name__ == "__main__":
    main()
