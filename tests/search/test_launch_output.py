"""What `rmsearch launch` shows while it waits, redirected to a file as a batch job's log would be: plain progress
lines at a fixed interval (trials, member jobs, the final evaluation's stages and the baselines' member jobs),
whole values in its tables, and a summary whose time is the launch's wall time."""

import re
import subprocess
import sys
import time

from tests.search.conftest import SMALL, TINY_SPACE


def test_a_launch_to_a_file_prints_progress_lines_and_whole_values(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE.replace("mlp.epochs: 3", "mlp.epochs: 60"))  # trials that take seconds
    start = time.perf_counter()
    with open(tmp_path / "log.txt", "w") as log:
        r = subprocess.run([sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space),
                            "--trials", "4", "--study", "p", "--runs", str(tmp_path / "runs"), "--baselines", "linear",
                            "--progress-every", "1", "--workers", "1"],
                           stdout=log, stderr=subprocess.PIPE, text=True, timeout=600)
    wall = time.perf_counter() - start
    out = (tmp_path / "log.txt").read_text()
    assert r.returncode == 0, out + r.stderr
    lines = [line for line in out.splitlines() if line.startswith("progress: ")]
    elapsed = [int(re.search(r"; (\d+) s elapsed$", line).group(1)) for line in lines if line.startswith("progress: trials")]
    assert len(elapsed) >= 3 and elapsed[0] <= 3, lines
    assert max(b - a for a, b in zip(elapsed, elapsed[1:])) <= 3, elapsed  # one a second (+ a loaded machine)
    assert re.match(r"progress: trials 4/4 done, member jobs (\d+)/\1 done;", [x for x in lines if x.startswith("progress: trials")][-1])
    # 3 stages + 1 baseline, each named as it starts, the baseline's member jobs counted; the last one "done"
    assert "progress: final evaluation stage 2/4: baseline linear (1×linear mean)" in out, lines
    assert re.search(r"final evaluation stage 4/4: done; \d+ s elapsed", out), lines
    assert "\x1b[" not in out and "…" not in out  # no escape codes, no value cut short
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert rows and all(len(row) == len(rows[0]) or "│" in row[1:] for row in rows)
    assert any(re.search(r"│\s+cross-trial selection", row) or re.search(r"│\s+trial \d+:", row) for row in rows)
    assert "--stress" not in out and "label-noise stress" not in out  # stress retraining is opt-in
    m = re.search(r"([\d.]+) s in all \(([\d.]+) s search, ([\d.]+) s final\s+evaluation\)", out)
    assert m, out
    total, search, final = map(float, m.groups())
    assert final > 0 and abs(total - (search + final)) < 0.5 + 0.05 * total  # the summary's time is both stages
    assert total < wall  # and no more than the process took
    assert (tmp_path / "runs" / "p" / "best" / "manifest.json").exists()


def test_progress_lines_come_at_least_once_a_minute_by_default():
    from rmsearch.launch.cli import build_parser
    from rmsearch.search import LaunchOptions

    assert 0 < build_parser().parse_args(["launch"]).progress_every <= 60
    assert 0 < LaunchOptions().progress_interval <= 60
