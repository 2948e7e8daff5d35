"""A study is one experiment, its name one folder inside --runs, and a launch says why when nothing completes.
Each case runs the real command and checks the exit code, the message, and that nothing was written, deleted or
left RUNNING."""

import os
import subprocess
import sys

import numpy as np
import optuna
import pytest

SMALL = "synth:train_prompts=200,test_prompts=10,test_responses=30,dim=8"
SPACE = "head: gbdt\nmembers: {int: [1, 2]}\naggregation: mean\ngbdt.max_iter: 5\n"


def rmsearch(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def snapshot(root):
    """Every path under `root`: each file with its size and modification time, each folder (a launch probes that
    its run folder takes a file, which changes the folder's time but leaves nothing)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        out.update({os.path.join(folder, d): "folder" for d in dirs})
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            out[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished 2-trial study 's' (no final evaluation) and its space file."""
    root = tmp_path_factory.mktemp("study")
    space = root / "space.yaml"
    space.write_text(SPACE)
    r = rmsearch("launch", "--data", SMALL, "--space", space, "--trials", 2, "--study", "s", "--runs", root / "runs",
                 "--no-final", "--workers", 1)
    assert r.returncode == 0, r.stderr
    return root, space


def _trials(root):
    s = optuna.load_study(study_name="s", storage=f"sqlite:///{root / 'runs' / 's' / 'study.db'}")
    return [(t.number, t.state.name, t.value) for t in s.trials], s.user_attrs


@pytest.mark.parametrize("change, field, values", [
    (["--objective", "bon_gold"], "objective (set by --objective)", ("'bon_auc'", "'bon_gold'")),
    (["--quality", "3"], "task.annotator.quality (set by --quality)", ("2.0", "3.0")),
    (["--seed", "1"], "task.seed (set by --seed)", ("0", "1")),
    (["--pairs-per-prompt", "4"], "task.annotator.pairs_per_prompt", ("10", "4")),
    ("other-space", "space (set by --space)", ("gbdt.max_iter: 5", "gbdt.max_iter: 6")),
], ids=["objective", "annotator", "seed", "pairs-per-prompt", "space"])
def test_a_relaunch_that_differs_is_refused_before_any_work(study, tmp_path, change, field, values):
    root, space = study
    if change == "other-space":
        other = tmp_path / "other.yaml"
        other.write_text(SPACE.replace("max_iter: 5", "max_iter: 6"))
        change = ["--space", other]
    before, attrs = _trials(root)
    files = snapshot(root / "runs")
    use = change[1] if change[0] == "--space" else space
    args = ["launch", "--data", SMALL, "--space", use, "--trials", 1, "--study", "s", "--runs", root / "runs",
            "--no-final", "--workers", 1, *([] if change[0] == "--space" else change)]
    r = rmsearch(*args)
    assert r.returncode == 2, r.stderr
    assert field in r.stderr and all(v in r.stderr for v in values), r.stderr
    assert "--study s-2" in r.stderr and "Traceback" not in r.stderr
    after, attrs_after = _trials(root)
    assert after == before and attrs_after == attrs  # nothing RUNNING, queued, failed or recorded
    assert snapshot(root / "runs") == files


def test_the_same_space_from_another_file_is_the_same_study(study, tmp_path):
    root, space = study
    copy = tmp_path / "copy.yaml"
    copy.write_text("# the same space, written again\n" + SPACE)
    r = rmsearch("launch", "--data", SMALL, "--space", copy, "--trials", 1, "--study", "s", "--runs", root / "runs",
                 "--no-final", "--workers", 1)
    assert r.returncode == 0, r.stderr
    trials, attrs = _trials(root)
    assert len(trials) == 3 and all(state == "COMPLETE" for _, state, _ in trials)
    assert attrs["identity"]["objective"] == "bon_auc" and len(attrs["identity"]["space"]["sha256"]) == 64


BAD_NAMES = ["", ".", "..", "../escape", "a/b", "/tmp/abs", "a\\b", "x y", "..\\up", "ok/../../up", "tab\tname"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_study_names_are_confined(tmp_path, name):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = snapshot(tmp_path)
    r = rmsearch("launch", "--data", SMALL, "--trials", 1, "--study", name, "--runs", tmp_path / "cwd" / "runs",
                 "--no-final", cwd=cwd)
    assert r.returncode == 2, r.stderr
    assert "a study name is one folder name inside --runs" in r.stderr and "Traceback" not in r.stderr
    assert snapshot(tmp_path) == before  # nothing inside --runs either: not even the folder
    assert not os.path.exists("/tmp/abs")
    r = rmsearch("export", "--study", name, "--runs", tmp_path / "cwd" / "runs", "--out", tmp_path / "e", cwd=cwd)
    assert r.returncode == 2 and "a study name is one folder name" in r.stderr, r.stderr
    assert snapshot(tmp_path) == before


def test_a_launch_where_no_trial_completes_exits_1_with_the_reasons(tmp_path):
    space = tmp_path / "diverge.yaml"  # lr 1e30: every member diverges to NaN
    space.write_text("head: mlp\nmembers: 1\naggregation: {categorical: [mean, min]}\nmlp.hidden: [4]\n"
                     "mlp.epochs: 2\nmlp.lr: 1.0e+30\n")
    r = rmsearch("launch", "--data", SMALL, "--space", space, "--trials", 3, "--study", "f", "--runs", tmp_path / "runs",
                 "--workers", 1)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "none of the 3 trials of this launch completed (3 failed)" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    s = optuna.load_study(study_name="f", storage=f"sqlite:///{tmp_path / 'runs' / 'f' / 'study.db'}")
    assert [t.state.name for t in s.trials] == ["FAIL"] * 3
    reasons = {t.user_attrs["fail_reason"] for t in s.trials}
    assert len(reasons) == 1 and f"  3 × {reasons.pop()}\n" in r.stderr, r.stderr


def test_negative_seed_is_refused(tmp_path):
    for args in (["launch", "--data", SMALL, "--study", "x", "--runs", tmp_path / "runs"],
                 ["evaluate", "--data", SMALL, "--out", tmp_path / "ev"],
                 ["data", "synth", "--out", tmp_path / "d"]):
        r = rmsearch(*args, "--seed", "-1")
        assert r.returncode == 2 and "--seed: '-1' is not a non-negative integer" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_score_into_a_missing_folder_is_refused_before_scoring(tiny_export, tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((4, 6), np.float32))
    r = rmsearch("score", "--ensemble", tiny_export, "--embeddings", tmp_path / "X.npy", "--out",
                 tmp_path / "nodir" / "sub" / "s.npy")
    assert r.returncode == 2 and f"its folder {tmp_path / 'nodir' / 'sub'} does not exist" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy"]


def test_export_of_a_missing_study_lists_the_studies(study, tmp_path):
    root, _ = study
    r = rmsearch("export", "--study", "nosuch", "--runs", root / "runs", "--out", tmp_path / "e")
    assert r.returncode == 2 and f"the studies in --runs {root / 'runs'} are s;" in r.stderr, r.stderr
    assert not (tmp_path / "e").exists()


def test_evaluate_to_a_pipe_prints_whole_values(tiny_export):
    """Output to a pipe (here: captured) is not laid out for an 80-column terminal: no value cut to '0.2…', no
    table row wrapped, no escape codes."""
    r = rmsearch("evaluate", "--ensemble", tiny_export, "--data", "synth:train_prompts=100,test_prompts=8,"
                 "test_responses=20,dim=6", "--split", "all")
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout and "\x1b[" not in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith("│")]
    assert len(rows) >= 10 and len({len(row) for row in rows}) == 1  # one line per metric, all as wide
    assert max(len(line) for line in r.stdout.splitlines()) > 80


def test_trials_lists_states_values_configurations_and_reasons(tmp_path):
    space = tmp_path / "half.yaml"  # lr 1e30 diverges: trials of it fail, the others complete
    space.write_text("head: mlp\nmembers: 1\naggregation: mean\nmlp.hidden: [4]\nmlp.epochs: 2\n"
                     "mlp.lr: {categorical: [0.001, 1.0e+30]}\n")
    runs = tmp_path / "runs"
    r = rmsearch("launch", "--data", SMALL, "--space", space, "--trials", 4, "--study", "t", "--runs", runs,
                 "--no-final", "--workers", 1)
    assert r.returncode in (0, 1), r.stderr
    s = optuna.load_study(study_name="t", storage=f"sqlite:///{runs / 't' / 'study.db'}")
    r = rmsearch("trials", "--study", "t", "--runs", runs, "--json")
    assert r.returncode == 0, r.stderr
    import json

    rows = json.loads(r.stdout)
    assert [(x["number"], x["state"]) for x in rows] == [(t.number, t.state.name) for t in s.trials]
    for x, t in zip(rows, s.trials):
        assert x["params"] == t.params and x["values"] == t.values and x["config"]["head"] == "mlp"
        assert x["reason"] == t.user_attrs.get("fail_reason")
    assert any(x["state"] == "FAIL" and x["reason"] for x in rows)
    r = rmsearch("trials", "--study", "t", "--runs", runs, "--state", "FAIL")
    assert r.returncode == 0, r.stderr
    failed = [x for x in rows if x["state"] == "FAIL"]
    assert f"{len(failed)} failed" in r.stdout and failed[0]["reason"] in r.stdout  # whole, not cut short
    assert "mlp.lr=1e+30" in r.stdout and "COMPLETE" not in r.stdout
    r = rmsearch("trials", "--study", "nosuch", "--runs", runs)
    assert r.returncode == 2 and "the studies in --runs" in r.stderr and " t;" in r.stderr, r.stderr
