"""`rmsearch data synth` streams the built-in world into its files: the same values as `synth`, in float32 or
float16, a block of prompts at a time."""

import subprocess
import sys

import numpy as np
import pytest

from rmsearch.data import SynthConfig, load_data, synth, write_synth_folder
from rmsearch.data._synth import GoldWorld
from rmsearch.errors import DataError

CONFIG = SynthConfig(seed=3, dim=16, train_prompts=37, test_prompts=11, test_responses=50)


def test_blocks_give_the_values_of_one_draw():
    whole = synth(CONFIG).test
    emb, gold = np.zeros((11, 50, 16), np.float32), np.zeros((11, 50, 1), np.float32)
    GoldWorld(CONFIG).sample_into(emb, gold, stream=2, chunk_bytes=8 * 50 * 16 * 3)  # blocks of 3 prompts
    assert np.array_equal(emb, whole.embeddings)
    assert np.array_equal(gold[..., 0], whole.gold)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_folder_loads_as_the_world_in_its_dtype(tmp_path, dtype):
    write_synth_folder(tmp_path, CONFIG, dtype)
    data, world = load_data(str(tmp_path)), synth(CONFIG)
    for split in ("train", "test"):
        got, want = getattr(data, split), getattr(world, split)
        assert got.embeddings.dtype == np.dtype(dtype)
        assert np.array_equal(got.embeddings, want.embeddings.astype(dtype))
        assert np.array_equal(got.gold, want.gold)
    assert not list(tmp_path.glob(".*tmp*"))


def test_other_dtypes_are_refused(tmp_path):
    with pytest.raises(DataError, match="float32 or float16"):
        write_synth_folder(tmp_path, CONFIG, "float64")


def test_cli_writes_float16(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rmsearch", "data", "synth", "--out", str(tmp_path), "--dim", "8",
                        "--train-prompts", "20", "--test-prompts", "4", "--test-responses", "10", "--dtype", "float16"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    emb = np.load(tmp_path / "embd_synth_seed0_gold_test.npy")
    assert emb.dtype == np.float16 and emb.shape == (4, 10, 8)
