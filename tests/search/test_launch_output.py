"""What `rmsearch launch` shows while it waits: the final evaluation as its own progress bar with its own time,
and a summary whose time is the launch's wall time."""

import re
import subprocess
import sys
import time

from tests.search.conftest import SMALL, TINY_SPACE


def test_the_final_evaluation_shows_its_own_progress_bar_and_counts_in_the_launch_time(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space),
                        "--trials", "3", "--study", "p", "--runs", str(tmp_path / "runs"), "--baselines", "linear"],
                       capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # 3 stages + 1 baseline, each named while it runs; the bar ends at "done" with every stage counted
    assert re.search(r"final evaluation: done\s.*\b4/4\b", out), out
    assert "--stress" not in out and "label-noise stress" not in out  # stress retraining is opt-in
    m = re.search(r"([\d.]+) s in all \(([\d.]+) s search, ([\d.]+) s final\s+evaluation\)", out)
    assert m, out
    total, search, final = map(float, m.groups())
    assert final > 0 and abs(total - (search + final)) < 0.5 + 0.05 * total  # the summary's time is both stages
    assert total < wall  # and no more than the process took
    assert (tmp_path / "runs" / "p" / "best" / "manifest.json").exists()
