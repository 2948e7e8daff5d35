"""Messages that point at the actual mistake: a text file passed as embeddings, a single vector passed to
`Ensemble.score`, and the install command for the optional extra 'text'."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rmsearch.errors import DataError

README = Path(__file__).resolve().parents[2] / "README.md"


def rmsearch(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_score_text_file_says_it_is_not_npy_and_how_to_make_one(tmp_path, tiny_export):
    notes = tmp_path / "notes.txt"
    notes.write_text("0.1 0.2 0.3 0.4 0.5 0.6\n0.6 0.5 0.4 0.3 0.2 0.1\n")
    r = rmsearch("score", "--ensemble", tiny_export, "--embeddings", notes, "--out", tmp_path / "s.npy")
    assert r.returncode == 2, r.stderr
    assert "is not a .npy array file (it is a text file" in r.stderr and "numpy.loadtxt" in r.stderr
    assert "numpy.save(" in r.stderr and "pickled" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s.npy").exists()


def test_following_the_text_file_advice_works(tmp_path, tiny_export):
    notes = tmp_path / "notes.txt"
    notes.write_text("0.1 0.2 0.3 0.4 0.5 0.6\n")
    np.save(tmp_path / "X.npy", np.loadtxt(notes, dtype=np.float32, ndmin=2))  # the command the message gives
    r = rmsearch("score", "--ensemble", tiny_export, "--embeddings", tmp_path / "X.npy")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "X.scores.npy").shape == (1,)


@pytest.mark.parametrize("content, what", [
    (b"PK\x03\x04rest of a zip", "a .npz archive"),
    (b"\x80\x04K\x01.", "a pickle"),
    (b"", "empty"),
])
def test_other_non_npy_files_are_named(tmp_path, content, what):
    from rmsearch.data._files import open_npy

    path = tmp_path / "X.npy"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"is not a .npy array file \\(it is {what}"):
        open_npy(path)


def test_single_vector_asks_for_a_reshape_not_a_re_embedding(tiny_export):
    from rmsearch import load_ensemble

    ens = load_ensemble(tiny_export)
    X = np.ones((3, 6), np.float32)
    with pytest.raises(DataError, match=r"pass a 2-d array, e.g. X.reshape\(1, -1\)") as info:
        ens.score(X[0])
    assert "embed the texts" not in str(info.value)
    assert ens.score(X[0].reshape(1, -1)).shape == (1,)
    with pytest.raises(DataError, match=r"embed the texts with the model"):  # a real dim mismatch still says so
        ens.score(np.ones((3, 5), np.float32))
    with pytest.raises(DataError, match=r"\(2, 3, 6\) \(3-d\).*X.reshape\(-1, 6\)"):
        ens.score(np.ones((2, 3, 6), np.float32))


def test_install_hint_for_text_is_the_readmes_command():
    from rmsearch.data._embed import INSTALL_COMMAND, INSTALL_HINT

    readme = README.read_text()
    assert INSTALL_COMMAND == "pip install -e '.[text]'" and INSTALL_COMMAND in readme
    assert INSTALL_COMMAND in INSTALL_HINT
    assert "rmsearch[text]" not in INSTALL_HINT
    r = rmsearch("data", "embed", "--help")
    assert r.returncode == 0 and INSTALL_COMMAND in " ".join(r.stdout.split())
    assert "'rmsearch[text]'" not in r.stdout
