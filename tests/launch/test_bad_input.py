"""Bad input, end to end through the CLI: each case exits 2 with a message that names the problem and the fix,
without a traceback, and leaves nothing half-written. The README's bad-input table lists these cases."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

SMALL = "synth:train_prompts=200,test_prompts=10,test_responses=30,dim=8"


def rmsearch(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A seed-format folder, a pair dataset and an exported ensemble to break copies of."""
    root = tmp_path_factory.mktemp("bad")
    assert rmsearch("data", "synth", "--out", root / "seed", "--train-prompts", 100, "--test-prompts", 10,
                    "--test-responses", 30, "--dim", 8).returncode == 0
    from rmsearch.data import write_pair_folder

    g = np.random.default_rng(0)
    write_pair_folder(root / "pairs", g.standard_normal((100, 8)).astype(np.float32),
                      g.standard_normal((100, 8)).astype(np.float32), {"name": "toy"})
    r = rmsearch("launch", "--data", SMALL, "--space", "coste", "--trials", 1, "--study", "e", "--runs", root / "runs",
                 "--top", 1, "--workers", 1)
    assert r.returncode == 0, r.stderr
    return root


def seed_copy(world, tmp_path, change=None, remove=None):
    out = tmp_path / "data"
    shutil.copytree(world / "seed", out)
    files = {p.name.split("_")[0] + "_" + p.name.rsplit("_", 1)[1][:-4]: p for p in out.iterdir()}
    if remove:
        files[remove].unlink()
    if change:
        role, fn = change
        arr = np.load(files[role])
        result = fn(arr)
        if isinstance(result, bytes):
            files[role].write_bytes(result)
        else:
            np.save(files[role], result)
    return out


def with_value(v):
    def put(a):
        a = a.copy()
        a.reshape(-1)[5] = v
        return a
    return put


# (id, how to build the command, expected message part); {data}/{out}/... are filled in by the test
CASES = [
    ("nan-embeddings", "inspect", ("embd_train", with_value(np.nan)), "non-finite value (nan)"),
    ("inf-embeddings", "inspect", ("embd_test", with_value(np.inf)), "non-finite value (inf)"),
    ("wrong-rank", "inspect", ("embd_train", lambda a: a[:, 0]), "must be 3-d"),
    ("dim-mismatch-splits", "inspect", ("embd_test", lambda a: a[:, :, :4]), "dim mismatch"),
    ("empty-array", "inspect", ("embd_train", lambda a: a[:0]), "is empty"),
    ("k-below-2", "inspect", ("embd_test", lambda a: a[:, :1]), "K >= 2"),
    ("integer-array", "inspect", ("embd_train", lambda a: (a * 10).astype(np.int64)), "not floating point"),
    ("truncated-npy", "inspect", ("embd_train", lambda a: np.lib.format.magic(1, 0) + b"\x10\x00{'descr'"), "not a readable .npy"),
    ("missing-split-file", "inspect-missing", "reward_test", "missing reward_"),
    ("constant-train-gold", "inspect", ("reward_train", lambda a: np.full_like(a, 0.5)),
     "a constant gold reward prefers no response over another"),
    ("constant-test-gold", "inspect", ("reward_test", lambda a: np.zeros_like(a)), "gold rewards is 0;"),
    ("identical-embeddings", "inspect", ("embd_train", lambda a: np.broadcast_to(a[:1, :1], a.shape).copy()),
     "embeddings are the same vector"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_data_files(world, tmp_path, case):
    _, kind, change, message = case
    folder = seed_copy(world, tmp_path, remove=change if kind == "inspect-missing" else None,
                       change=change if kind == "inspect" else None)
    r = rmsearch("data", "inspect", folder)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = rmsearch("launch", "--data", folder, "--trials", 1, "--study", "x", "--runs", tmp_path / "runs")
    assert r.returncode == 2 and message in r.stderr
    assert not (tmp_path / "runs").exists()


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return tmp_path / name


LAUNCH_CASES = [
    ("unknown-head-type", lambda w, t: ["--space", write(t, "s.yaml", "head: svm\n")], "unknown head 'svm'"),
    ("malformed-yaml-space", lambda w, t: ["--space", write(t, "s.yaml", "head: [mlp\n")], "not valid YAML"),
    ("out-of-range-distribution", lambda w, t: ["--space", write(t, "s.yaml", "members: {int: [5, 1]}\n")],
     "low 5 must be below high 1"),
    ("unknown-space-name", lambda w, t: ["--space", "nosuchspace"], "not a built-in space"),
    ("unknown-objective", lambda w, t: ["--objective", "accuracy"], "unknown objective 'accuracy'"),
    ("bad-storage-url", lambda w, t: ["--storage", "not-a-url"], "is not a storage URL"),
    ("unreachable-storage", lambda w, t: ["--storage", "postgresql://u:p@127.0.0.1:9/db"], "cannot open it"),
    ("pairs-with-gold-objective", lambda w, t: ["--data", w / "pairs", "--objective", "bon_gold"], "needs gold rewards"),
    ("bad-workers", lambda w, t: ["--workers", "0"], "--workers 0 must be at least 1"),
    ("unreachable-address", lambda w, t: ["--address", "127.0.0.1:9"], "cannot join the Ray cluster"),
]


@pytest.mark.parametrize("case", LAUNCH_CASES, ids=[c[0] for c in LAUNCH_CASES])
def test_bad_launch_input(world, tmp_path, case):
    _, extra, message = case
    args = ["launch", "--data", SMALL, "--trials", 1, "--study", "x", "--runs", tmp_path / "runs", *extra(world, tmp_path)]
    r = rmsearch(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()


def test_scoring_wrong_dim_refused(world, tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((5, 3), np.float32))
    r = rmsearch("score", "--ensemble", world / "runs" / "e" / "best", "--embeddings", tmp_path / "X.npy",
                 "--out", tmp_path / "s.npy")
    assert r.returncode == 2 and "scores (n, 8) arrays" in r.stderr and not (tmp_path / "s.npy").exists()


def test_evaluating_ensemble_on_other_dim_refused(world, tmp_path):
    r = rmsearch("evaluate", "--ensemble", world / "runs" / "e" / "best", "--data",
                 "synth:train_prompts=100,test_prompts=10,test_responses=20,dim=6", "--json", tmp_path / "m.json")
    assert r.returncode == 2 and "has dim 6 but the ensemble" in r.stderr and not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("damage, message", [
    ("missing", "members.safetensors"),
    ("edited", "sha256"),
    ("planted", "not listed"),
])
def test_damaged_export_refused(world, tmp_path, damage, message):
    ens = tmp_path / "ens"
    shutil.copytree(world / "runs" / "e" / "best", ens)
    if damage == "missing":
        (ens / "members.safetensors").unlink()
    elif damage == "edited":
        data = bytearray((ens / "members.safetensors").read_bytes())
        data[-3] ^= 0xFF
        (ens / "members.safetensors").write_bytes(bytes(data))
    else:
        (ens / "members.pkl").write_bytes(b"\x80\x04K\x01.")
    np.save(tmp_path / "X.npy", np.zeros((5, 8), np.float32))
    r = rmsearch("score", "--ensemble", ens, "--embeddings", tmp_path / "X.npy", "--out", tmp_path / "s.npy")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "s.npy").exists()
