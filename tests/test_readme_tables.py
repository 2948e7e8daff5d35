"""The README's measured tables are rendered from saved benchmark results, never typed by hand."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tables_are_the_saved_results():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "readme.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
