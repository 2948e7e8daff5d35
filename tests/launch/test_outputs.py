"""Where commands write: a report folder is replaced only when it is an earlier report, atomically, never the working
directory; `score --out` never overwrites a file unless told to. Run through the CLI as a user would."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rmsearch.files import atomic_dir
from tests.evaluate.test_report import gao_rows

TINY = "synth:train_prompts=100,test_prompts=6,test_responses=20,dim=6"


def rmsearch(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def evaluate(out, cwd=None):
    return rmsearch("evaluate", "--data", TINY, "--set", "members=2", "--set", "mlp.epochs=2", "--out", out, cwd=cwd)


def hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_evaluate_refuses_a_folder_that_is_not_a_report(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("a week of notes")
    r = evaluate(out)
    assert r.returncode == 2, r.stderr
    assert "not an earlier rmsearch report" in r.stderr and "notes.txt" in r.stderr and "Traceback" not in r.stderr
    assert (out / "notes.txt").read_text() == "a week of notes" and os.listdir(out) == ["notes.txt"]
    assert hidden(tmp_path) == []


def test_evaluate_refuses_a_file(tmp_path):
    out = tmp_path / "report"
    out.write_text("not a folder")
    r = evaluate(out)
    assert r.returncode == 2 and "is not a folder" in r.stderr and out.read_text() == "not a folder"


@pytest.mark.parametrize("out", [".", "..", "./"])
def test_evaluate_never_replaces_the_working_directory(tmp_path, out):
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "notes.txt").write_text("keep")
    r = evaluate(out, cwd=cwd)
    assert r.returncode == 2, r.stderr
    assert "working directory" in r.stderr and "--out" in r.stderr and "Traceback" not in r.stderr
    assert (cwd / "notes.txt").read_text() == "keep" and os.listdir(cwd) == ["notes.txt"]
    assert hidden(cwd) == [] and hidden(tmp_path) == []


def test_evaluate_replaces_its_earlier_report_but_not_files_added_to_it(tmp_path):
    out = tmp_path / "report"
    assert evaluate(out).returncode == 0
    (out / "report.md").write_text("stale")
    r = evaluate(out)  # an earlier report: replaced
    assert r.returncode == 0, r.stderr
    assert (out / "report.md").read_text().startswith("# Robustness") and hidden(tmp_path) == []
    names = [row["name"] for row in gao_rows((out / "report.md").read_text())]  # a Gao fit per BoN curve
    assert names[0] == "single" and "mean" in names
    assert {p.name for p in out.iterdir()} == {"report.md", "metrics.json", "bon.png", "curves.csv", "calibration.png"}
    (out / "notes.txt").write_text("my reading of the curves")
    r = evaluate(out)
    assert r.returncode == 2 and "notes.txt" in r.stderr and "would delete them" in r.stderr
    assert (out / "notes.txt").read_text() == "my reading of the curves" and (out / "report.md").exists()


def test_failed_write_keeps_the_earlier_report(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "report.md").write_text("new, half-written")
            raise RuntimeError("crash while writing")
    assert (out / "report.md").read_text() == "old" and hidden(tmp_path) == []


def test_earlier_report_survives_when_the_new_one_cannot_be_moved_in(tmp_path):
    """The new folder vanishes before it is moved into place: the earlier report must still be there (it used to
    be deleted first, then the rename failed)."""
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old")
    with pytest.raises(FileNotFoundError):
        with atomic_dir(out) as tmp:
            (tmp / "report.md").write_text("new")
            shutil.rmtree(tmp)
    assert (out / "report.md").read_text() == "old" and hidden(tmp_path) == []


def test_replace_dir_puts_the_earlier_folder_back_when_the_move_fails(tmp_path):
    from rmsearch.files import replace_dir

    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old")
    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / ".report.tmp-missing", out)
    assert (out / "report.md").read_text() == "old" and hidden(tmp_path) == []


def test_score_refuses_to_overwrite_without_force(tmp_path, tiny_export):
    X = tmp_path / "X.npy"
    np.save(X, np.ones((4, 6), np.float32))
    out = tmp_path / "scores.npy"
    out.write_bytes(b"someone's results")
    r = rmsearch("score", "--ensemble", tiny_export, "--embeddings", X, "--out", out)
    assert r.returncode == 2, r.stderr
    assert "exists" in r.stderr and "--force" in r.stderr and "Traceback" not in r.stderr
    assert out.read_bytes() == b"someone's results"
    r = rmsearch("score", "--ensemble", tiny_export, "--embeddings", X, "--out", out, "--force")
    assert r.returncode == 0, r.stderr
    assert np.load(out).shape == (4,)
    # the default output (EMBEDDINGS.scores.npy) is protected the same way
    assert rmsearch("score", "--ensemble", tiny_export, "--embeddings", X).returncode == 0
    default = tmp_path / "X.scores.npy"
    before = default.read_bytes()
    r = rmsearch("score", "--ensemble", tiny_export, "--embeddings", X)
    assert r.returncode == 2 and "--force" in r.stderr and default.read_bytes() == before


def test_score_refuses_a_folder_as_out(tmp_path, tiny_export):
    X = tmp_path / "X.npy"
    np.save(X, np.ones((4, 6), np.float32))
    r = rmsearch("score", "--ensemble", tiny_export, "--embeddings", X, "--out", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr and "Traceback" not in r.stderr
