"""The quick start's search as README shows it: `rmsearch launch --data synth --trials 20 --study demo` run as a
user runs it (a fresh process, its own local Ray), its output captured from a pipe (plain lines, whole values), and
its summary from the first line after the progress lines to the storage line saved for README.md.

    python benchmarks/quickstart.py          # about a minute on 2 idle cores, longer on shared ones
    python benchmarks/quickstart.py --save   # keep it for `python benchmarks/readme.py`

The launch runs in a temporary folder (`--runs`), so paths in its output are rewritten to the quick start's
`runs/demo`; the load average when it ran is printed above the block, since the times depend on it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["launch", "--data", "synth", "--trials", "20", "--study", "demo"]


def run() -> tuple[str, float, float]:
    """(the launch's output with its run folder shown as `runs`, wall seconds, load average when it ended)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "rmsearch", *COMMAND, "--runs", str(Path(tmp) / "runs")],
                              capture_output=True, text=True, cwd=tmp)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"the launch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        out = proc.stdout.replace(str(Path(tmp).resolve()) + "/", "").replace(str(Path(tmp)) + "/", "")
    return out, seconds, os.getloadavg()[0]


def summary(out: str) -> str:
    """The launch's summary: from its 'N trials in study' line to its storage line."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if " trials in study 'demo'" in line)
    last = next(i for i, line in enumerate(lines) if line.startswith("storage:"))
    return "\n".join(lines[first : last + 1])


def markdown(out: str, seconds: float, load: float) -> str:
    return "\n".join([
        f"`rmsearch {' '.join(COMMAND)}` with its output to a pipe, {seconds:.0f} s as a whole process (Ray's start "
        f"included; load average {load:.1f} when it ended):", "", "```text", summary(out), "```"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--save", action="store_true", help="save the block for README.md (benchmarks/results/)")
    args = p.parse_args()
    out, seconds, load = run()
    text = markdown(out, seconds, load)
    print(text)
    if args.save:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from readme import save

        print(f"\nsaved {save('quickstart', text, {'seconds': seconds, 'load': load, 'output': out})}")


if __name__ == "__main__":
    main()
