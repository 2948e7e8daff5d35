"""Exports and reports get the modes the user's umask gives, like any other file they create (a colleague in the
group can read a shared export), not the 0700/0600 of temporary folders and of safetensors' writer."""

import os
import stat
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest


@contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(root):
    """{relative path: permission bits} for the folder itself and everything under it."""
    out = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = stat.S_IMODE(os.stat(path).st_mode)
    return out


def expected(root, mask):
    return {rel: (0o777 if os.path.isdir(os.path.join(root, rel)) else 0o666) & ~mask for rel in modes(root)}


@pytest.fixture(scope="module")
def ensemble():
    from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
    from rmsearch.ensembles._train import fit_group
    from rmsearch.export import ensemble_from_groups
    from rmsearch.heads import LinearConfig

    task = make_task(synth(SynthConfig(dim=6, train_prompts=100, test_prompts=4, test_responses=10)), TaskConfig())
    return ensemble_from_groups([fit_group(task, LinearConfig(epochs=2), (0, 1))], dim=6)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=oct)
def test_export_follows_the_umask(tmp_path, ensemble, mask):
    from rmsearch.export import load_ensemble, write_export

    with umask(mask):
        out = write_export(tmp_path / "shared" / "ens", ensemble, metrics={}, dataset={})
        got = modes(out)
        assert set(got) == {".", "checksums.sha256", "manifest.json", "members.safetensors"}
        assert got == expected(out, mask), {k: oct(v) for k, v in got.items()}
        write_export(out, ensemble, metrics={}, dataset={})  # replacing an earlier export: same modes
        assert modes(out) == expected(out, mask)
    assert len(load_ensemble(out)) == 2


@pytest.mark.parametrize("mask", [0o027, 0o002], ids=oct)
def test_report_follows_the_umask(tmp_path, mask):
    out = tmp_path / "report"
    with umask(mask):  # the child process inherits it
        r = subprocess.run([sys.executable, "-m", "rmsearch", "evaluate", "--data",
                            "synth:train_prompts=100,test_prompts=6,test_responses=20,dim=6", "--set", "members=2",
                            "--set", "mlp.epochs=2", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = modes(out)
    assert {"report.md", "bon.png", "metrics.json", "curves.csv"} <= set(got)
    assert got == expected(out, mask), {k: oct(v) for k, v in got.items()}


def test_score_output_follows_the_umask(tmp_path, ensemble):
    from rmsearch.export import write_export

    ens = write_export(tmp_path / "ens", ensemble, metrics={}, dataset={})
    np.save(tmp_path / "X.npy", np.ones((3, 6), np.float32))
    with umask(0o027):
        r = subprocess.run([sys.executable, "-m", "rmsearch", "score", "--ensemble", str(ens), "--embeddings",
                            str(tmp_path / "X.npy"), "--out", str(tmp_path / "s.npy")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "s.npy").st_mode) == 0o640
