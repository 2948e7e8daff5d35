"""The grid studies as README shows them: `rmsearch reproduce NAME` on the built-in world and on a real candidate
set, each finding's effect with its 95% interval over seeds, side by side.

    python benchmarks/studies.py coste                                   # built-in world, 5 seeds
    python benchmarks/studies.py coste --data runs/bench-alpaca/alpaca --world alpaca
    python benchmarks/studies.py coste --reuse --save                    # re-render both from their report folders

A run is the command's own (`GridStudy.run`, then `write_grid_study`) into `runs/studies/NAME-WORLD` (the report
folder a user gets); `--reuse` reads that folder's results.json instead of running. `--save` keeps every world's
result in benchmarks/results/study-NAME.json, whose Markdown `python benchmarks/readme.py` puts in README.md.
The AlpacaEval gold folder is the one `python benchmarks/alpaca.py` builds (`runs/bench-alpaca/alpaca`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORLDS = {"synth": "built-in world", "alpaca": "AlpacaEval (MiniLM embeddings, 34 answers per prompt)"}


def folder(name: str, world: str) -> Path:
    return ROOT / "runs" / "studies" / f"{name}-{world}"


def run(name: str, data: str | None, world: str, seeds: int, figures: str | None) -> dict:
    from rmsearch.reproduce import GRID_STUDIES, GridOptions, write_grid_study

    study = GRID_STUDIES[name](GridOptions(data=data, seeds=seeds).validate())
    result = study.run(progress=True)
    out = folder(name, world)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_grid_study(out, study, result)
    if figures:
        for png in out.glob("*.png"):
            shutil.copy(png, Path(figures) / f"study-{name}-{world}-{png.name}")
    return result


def time_quick(name: str) -> float:
    """Wall seconds of `rmsearch reproduce NAME --quick` as a user runs it: a fresh process, Ray started and
    stopped inside it."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rmsearch", "reproduce", name, "--quick", "--no-progress", "--out",
                        str(Path(tmp) / "quick")], check=True, capture_output=True)
        return time.perf_counter() - start


def markdown(name: str, results: dict[str, dict]) -> str:
    """Each world's setting and time, then one verdict table with a column per world."""
    from rmsearch.reproduce import GRID_STUDIES, GridOptions

    quick = results.pop("quick", None)
    lines = [f"- **quick** (`rmsearch reproduce {name} --quick`, a tiny world, 2 seeds): {quick['seconds']:.0f} s "
             f"wall, Ray start included"] if quick else []
    verdicts = {}
    for world, result in results.items():
        study = GRID_STUDIES[name](GridOptions(**{**result["options"], "budgets": _budgets(result)}))
        verdicts[world] = {(v.key, v.scope, v.effect): v for v in study.verdicts(result)}
        data = result["data"]
        lines.append(f"- **{WORLDS.get(world, world)}** (`--data {result['spec']}`): train {data['train'][0]} "
                     f"prompts × {data['train'][1]}, test {data['test_prompts']} prompts × {data['pool']}; "
                     f"{result['options']['seeds']} seeds, {result['jobs']} Ray jobs, {result['wall_seconds'] / 60:.1f} "
                     f"min wall ({result['train_seconds'] / 60:.1f} min of training, {result['workers']} at once)")
    worlds = list(results)
    keys = list(dict.fromkeys(k for w in worlds for k in verdicts[w]))
    lines += ["", "| finding | scope | effect | " + " | ".join(WORLDS.get(w, w).split(" (")[0] for w in worlds) + " |",
              "|---" * (3 + len(worlds)) + "|"]
    for key in keys:
        cells = []
        for w in worlds:
            v = verdicts[w].get(key)
            if v is None:
                cells.append("")
                continue
            mean, lo, hi = v.interval
            cells.append(f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}] **{v.verdict}**")
        v = next(verdicts[w][key] for w in worlds if key in verdicts[w])
        side = ">" if v.direction > 0 else "<"
        lines.append(f"| ({key[0]}) {v.claim} | {key[1]} | {key[2]} {side} {v.threshold:g} | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines)


def _budgets(result: dict):
    budgets = result["options"].get("budgets")
    return tuple(budgets) if budgets else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", choices=["beyond-bt", "data-scaling", "coste", "active"])
    p.add_argument("--data", help="gold data (default: the study's built-in world)")
    p.add_argument("--world", default="synth", help="the name this data goes by in the saved result (synth, alpaca)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--reuse", action="store_true", help="re-render every world's report folder instead of running")
    p.add_argument("--time-quick", action="store_true", help="with --reuse: time the quick mode again")
    p.add_argument("--figures", help="copy the report's figures here as study-NAME-WORLD-*.png")
    p.add_argument("--save", action="store_true", help="save for README.md (benchmarks/results/study-NAME.json)")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    saved = ROOT / "benchmarks" / "results" / f"study-{args.study}.json"
    results = json.loads(saved.read_text())["data"] if saved.exists() else {}
    if args.reuse:
        for world in WORLDS:
            path = folder(args.study, world) / "results.json"
            if path.exists():
                results[world] = json.loads(path.read_text())
        if args.time_quick:
            results["quick"] = {"seconds": time_quick(args.study)}
    else:
        results[args.world] = run(args.study, args.data, args.world, args.seeds, args.figures)
        results["quick"] = {"seconds": time_quick(args.study)}
    results = {w: results[w] for w in ["quick", *WORLDS, *results] if w in results}
    text = markdown(args.study, dict(results))
    print(text)
    if args.save:
        from readme import save

        print(f"\nsaved {save(f'study-{args.study}', text, results)}; `python benchmarks/readme.py` puts it in "
              f"README.md")


if __name__ == "__main__":
    main()
