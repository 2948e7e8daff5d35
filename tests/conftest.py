import os
import signal

import numpy as np
import pytest

from rmsearch.process_env import training_env

os.environ.update(training_env())  # the test process trains too (before torch or scikit-learn load)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # a suite started in the background (`pytest &`) inherits an ignored SIGINT, and every launch it starts would
    # too; the tests that stop a launch with Ctrl-C need it delivered, as from a terminal
    signal.signal(signal.SIGINT, signal.default_int_handler)

from rmsearch.data import SynthConfig, TaskConfig, make_task, synth

SMALL = SynthConfig(seed=0, dim=16, train_prompts=400, test_prompts=40, test_responses=60)


@pytest.fixture(scope="session")
def small_data():
    """A small built-in world: 400 × 10 train, 40 × 60 test, D=16."""
    return synth(SMALL)


@pytest.fixture(scope="session")
def small_task(small_data):
    return make_task(small_data, TaskConfig())


@pytest.fixture(scope="session")
def default_task():
    """The built-in world at its defaults (1000 × 10 train, 400 × 500 test, D=32)."""
    return make_task(synth(SynthConfig()), TaskConfig())


@pytest.fixture
def seed_folder(tmp_path, small_data):
    """A folder of seed-format files (the paper's release naming), written from the small world."""
    from rmsearch.data import write_seed_folder

    write_seed_folder(tmp_path / "seed", small_data, stem="gen_emb_task")
    return tmp_path / "seed"


def rng(seed=0):
    return np.random.default_rng(seed)
