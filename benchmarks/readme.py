"""The README's measured tables, written from saved benchmark results (`benchmarks/results/*.json`), so that no
table there is typed by hand.

    python benchmarks/readme.py            # write every saved result into README.md
    python benchmarks/readme.py --check    # exit 1 where README.md differs from the saved results as rendered

A table sits in README.md between `<!-- KEY -->` and `<!-- /KEY -->`. `selection:NAME` blocks are rendered from
`selection-NAME.json` by `selection.py`; a `results:NAME` block is the Markdown that the benchmark saved in
`NAME.json` (`save`), followed by the command, machine, date and commit that produced it. The machine is a record
(`_machine.record`: cores, CPU, instruction-set flags, fp32 and bf16 matmul rates of that run), or the plain
"cores, CPU" string of results saved before records had flags and rates, which renders as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

sys.path.insert(0, str(ROOT / "benchmarks"))
from _machine import describe, record  # noqa: E402


def stamp(res: dict) -> str:
    """The line under a table: which command produced it, where, when, on what code."""
    return f"<sub>`{res['command']}` · {describe(res['machine'])} · {res['date']} · commit {res['commit']}</sub>"


def provenance(argv: list[str]) -> dict:
    """The command (as typed from the repository root), machine (`_machine.record`, measured now: a second or
    two), date and commit of this run."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return {"command": "python " + shlex.join([os.path.relpath(Path(argv[0]).resolve(), ROOT), *argv[1:]]),
            "machine": record(), "date": str(date.today()), "commit": commit.stdout.strip()}


def save(name: str, markdown: str, data, argv: list[str] | None = None) -> Path:
    """Save a benchmark's README block (`markdown`) with the numbers behind it (`data`) as results/NAME.json."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**provenance(argv or sys.argv), "markdown": markdown, "data": data}, indent=1,
                               default=float))
    return path


def blocks() -> dict[str, str]:
    """README block key -> its text, from every saved result."""
    from selection import readme_blocks

    out = {f"selection:{name}": text for name, text in readme_blocks().items()}
    for path in sorted(RESULTS.glob("*.json")):
        res = json.loads(path.read_text())
        if "markdown" in res:
            out[f"results:{path.stem}"] = res["markdown"].rstrip() + "\n\n" + stamp(res)
    return out


def _block(key: str):
    return re.compile(rf"(<!-- {re.escape(key)} -->\n).*?(<!-- /{re.escape(key)} -->)", re.S)


def write_readme(check: bool = False) -> int:
    """Write the rendered blocks into README.md, or with `check` say whether README.md holds them as rendered."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = text
    rendered = blocks()
    unsaved = sorted(set(re.findall(r"<!-- ((?:selection|results):[\w-]+) -->", text)) - set(rendered))
    if unsaved:
        print(f"README.md has blocks with no saved result: {', '.join(unsaved)}; run the benchmark that saves it",
              file=sys.stderr)
        return 1
    for key, block in rendered.items():
        if not _block(key).search(new):
            print(f"README.md has no <!-- {key} --> block; add one where the table belongs", file=sys.stderr)
            return 1
        new = _block(key).sub(lambda m: m.group(1) + block + "\n" + m.group(2), new)
    if check:
        if new != text:
            print("README.md's tables differ from the saved results; run `python benchmarks/readme.py`",
                  file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    print("README.md: wrote " + ", ".join(rendered))
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 where README.md's tables differ from the saved results")
    sys.exit(write_readme(check=p.parse_args().check))
