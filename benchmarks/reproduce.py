"""The seed paper's case study as README shows it: `rmsearch reproduce seed-ensembles` on the built-in world
(5 seeds, each its own world), its BoN gold at N = 500 per head type, label-noise level and aggregation, and the
findings it checks, saved for README.md.

    python benchmarks/reproduce.py                 # about 2 minutes on 2 idle cores
    python benchmarks/reproduce.py --figures docs  # also copy the 15%-flips BoN figure to docs/

The run is the command's own (`run_study` with the command's defaults, then `write_study` into a temporary
folder); `--save` keeps the Markdown below in benchmarks/results/reproduce.json for `python benchmarks/readme.py`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

SHOWN = ("single", "mean", "min", "uwo")
"""The aggregations of the README's table, in its column order."""


def pivot(result: dict) -> str:
    """BoN gold at N = M, mean ± std over seeds: a row per head type and label-noise level, a column per
    aggregation."""
    from rmsearch.ensembles import Aggregation

    labels = {"single": "single", **{name: Aggregation(name).label for name in SHOWN[1:]}}
    rows = {(r["head"], r["flip_rate"], r["aggregation"]): r for r in result["rows"]}
    heads, rates = result["config"]["heads"], result["config"]["noise_levels"]
    lines = ["| head | label flips | " + " | ".join(labels[a] for a in SHOWN) + " |", "|---" * (2 + len(SHOWN)) + "|"]
    for head in heads:
        for rate in rates:
            cells = [f"{rows[head, rate, a]['gold_final']:.2f} ± {rows[head, rate, a]['gold_final_std']:.2f}"
                     for a in SHOWN]
            lines.append(f"| {head} | {rate:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    from rmsearch.reproduce import findings, verdict_table

    found = findings(result["rows"], result["per_seed"])
    cfg = result["config"]
    jobs = len(cfg["heads"]) * len(cfg["noise_levels"]) * cfg["seeds"]
    return "\n".join([
        f"On the built-in world it took {result['wall_seconds']:.0f} s ({result['train_seconds']:.0f} s of training in "
        f"{jobs} Ray jobs, {result['workers']} at once). BoN gold at N = {result['pool']}, mean ± std over "
        f"{cfg['seeds']} seeds:", "", pivot(result), "",
        "What the report concludes from these numbers:", "", *(f.line() for f in found), "",
        f"Per head type (statistics in BoN gold at N = {result['pool']}, ± std over the {cfg['seeds']} seeds):", "",
        verdict_table(found)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--figures", help="copy the report's 15%% label-flips BoN figure here as reproduce-bon-flip15.png")
    p.add_argument("--save", action="store_true", help="save the tables for README.md (benchmarks/results/)")
    args = p.parse_args()
    from rmsearch.reproduce import StudyConfig, run_study, write_study

    result = run_study(StudyConfig.make(data=None, quick=False, seeds=None, members=None), progress=True)
    text = markdown(result)
    print(text)
    with tempfile.TemporaryDirectory() as tmp:
        report = write_study(Path(tmp) / "report", result)
        if args.figures:
            shutil.copy(report / "bon_flip15.png", Path(args.figures) / "reproduce-bon-flip15.png")
    if args.save:
        from readme import save

        print(f"\nsaved {save('reproduce', text, result['rows'])}; `python benchmarks/readme.py` puts it in README.md")


if __name__ == "__main__":
    main()
