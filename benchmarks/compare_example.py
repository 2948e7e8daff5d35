"""What `rmsearch compare` and `rmsearch evaluate --ensemble` print, from a real run, for README.md.

    python benchmarks/compare_example.py          # about 2 minutes on 2 idle cores

In a temporary folder: a small search on the built-in world (`--space coste --trials 4`), its export and the
export of another trial, then `rmsearch compare` of the two with the linear baseline trained on the spot (every
metric with a 95% bootstrap interval, paired differences, calibration before and after the export's temperature),
and `rmsearch evaluate --ensemble` of the export on the validation split it was chosen on (optimistic, and said
so), with best-of-N by its lower bound beside it (`--lower-bound`). `--save` keeps the printed output in benchmarks/results/compare.json for `python benchmarks/readme.py`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path


def rmsearch(cwd: Path, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "rmsearch", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"rmsearch {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--save", action="store_true", help="save the output for README.md (benchmarks/results/)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        rmsearch(cwd, "launch", "--data", "synth", "--space", "coste", "--trials", "4", "--study", "demo",
                 "--baselines", "none", "--top", "2")
        import optuna

        study = optuna.load_study(study_name="demo", storage=f"sqlite:///{cwd / 'runs/demo/study.db'}")
        done = sorted((t for t in study.trials if t.values), key=lambda t: -t.values[0])
        other = done[-1].number  # the trial ranked last on validation
        rmsearch(cwd, "export", "--study", "demo", "--trial", str(other), "--out", "other")
        commands = [
            ("compare", "runs/demo/best", "other", "--data", "synth", "--baseline", "linear"),
            ("evaluate", "--ensemble", "runs/demo/best", "--data", "synth", "--split", "val", "--lower-bound"),
        ]
        parts = []
        for command in commands:
            out = rmsearch(cwd, *command)
            parts += [f"```text\n$ rmsearch {' '.join(command)}\n{out.rstrip()}\n```"]
    markdown = "\n\n".join(parts)
    print(markdown)
    if args.save:
        from readme import save

        print(f"\nsaved {save('compare', markdown, {'commands': [list(c) for c in commands]})}; "
              f"`python benchmarks/readme.py` puts it in README.md")


if __name__ == "__main__":
    main()
