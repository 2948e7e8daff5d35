import json

import numpy as np
import pytest

from rmsearch.data import (
    Annotator, SynthConfig, TaskConfig, annotate, atomic_save, describe, load_data, make_task, synth, write_pair_folder,
)
from rmsearch.errors import ConfigError, DataError


def test_synth_is_deterministic_and_shaped():
    a, b = synth(SynthConfig(seed=5, dim=8, train_prompts=20, test_prompts=3, test_responses=30)), None
    b = synth(SynthConfig(seed=5, dim=8, train_prompts=20, test_prompts=3, test_responses=30))
    assert a.train.embeddings.shape == (20, 10, 8) and a.test.embeddings.shape == (3, 30, 8)
    np.testing.assert_array_equal(a.test.embeddings, b.test.embeddings)
    np.testing.assert_array_equal(a.train.gold, b.train.gold)
    assert a.fingerprint == b.fingerprint
    c = synth(SynthConfig(seed=6, dim=8, train_prompts=20, test_prompts=3, test_responses=30))
    assert c.fingerprint != a.fingerprint and not np.allclose(c.train.gold, a.train.gold)


def test_seed_folder_loads_as_is_memory_mapped(seed_folder, small_data):
    data = load_data(seed_folder)
    assert data.kind == "gold" and data.name == "gen_emb_task"
    assert isinstance(data.test.embeddings, np.memmap)
    assert data.train.embeddings.shape == small_data.train.embeddings.shape
    np.testing.assert_array_equal(data.test.gold, small_data.test.gold)  # (P, K, 1) on disk -> (P, K)


def test_seed_folder_float16_and_2d_rewards(tmp_path, small_data):
    for split, cs in (("train", small_data.train), ("test", small_data.test)):
        np.save(tmp_path / f"embd_g_e_t_{split}.npy", cs.embeddings.astype(np.float16))
        np.save(tmp_path / f"reward_g_e_t_{split}.npy", cs.gold)
    data = load_data(tmp_path)
    assert data.train.embeddings.dtype == np.float16 and data.test.gold.ndim == 2
    task = make_task(data, TaskConfig())
    assert len(task.train) > 0 and task.val.gold.shape[1] == small_data.test.responses


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda e, g: (np.where(np.arange(e.size).reshape(e.shape) == 7, np.nan, e), g), "non-finite value"),
        (lambda e, g: (np.where(np.arange(e.size).reshape(e.shape) == 7, np.inf, e), g), "non-finite value"),
        (lambda e, g: (e[:, :, 0], g), "must be 3-d"),
        (lambda e, g: (e[:, :1], g[:, :1]), "K >= 2"),
        (lambda e, g: (e[:0], g[:0]), "is empty"),
        (lambda e, g: ((e * 100).astype(np.int32), g), "not floating point"),
        (lambda e, g: (e, g[:, :-1]), "does not match"),
    ],
)
def test_bad_arrays_are_refused_by_name(tmp_path, small_data, mutate, match):
    e, g = mutate(np.asarray(small_data.train.embeddings), np.asarray(small_data.train.gold))
    np.save(tmp_path / "embd_g_e_t_train.npy", e)
    np.save(tmp_path / "reward_g_e_t_train.npy", g)
    np.save(tmp_path / "embd_g_e_t_test.npy", small_data.test.embeddings)
    np.save(tmp_path / "reward_g_e_t_test.npy", small_data.test.gold)
    with pytest.raises(DataError, match=match) as info:
        load_data(tmp_path)
    assert "_train.npy" in str(info.value)


def test_dim_mismatch_between_splits(tmp_path, small_data):
    np.save(tmp_path / "embd_g_e_t_train.npy", small_data.train.embeddings)
    np.save(tmp_path / "reward_g_e_t_train.npy", small_data.train.gold)
    np.save(tmp_path / "embd_g_e_t_test.npy", small_data.test.embeddings[:, :, :8])
    np.save(tmp_path / "reward_g_e_t_test.npy", small_data.test.gold)
    with pytest.raises(DataError, match="dim mismatch: train embeddings has dim 16 but test embeddings has dim 8"):
        load_data(tmp_path)


def test_missing_and_truncated_files(seed_folder):
    (seed_folder / "reward_gen_emb_task_test.npy").unlink()
    with pytest.raises(DataError, match="missing reward_gen_emb_task_test.npy"):
        load_data(seed_folder)
    path = seed_folder / "embd_gen_emb_task_train.npy"
    path.write_bytes(path.read_bytes()[:1000])
    np.save(seed_folder / "reward_gen_emb_task_test.npy", np.zeros((40, 60), np.float32))
    with pytest.raises(DataError, match="truncated"):
        load_data(seed_folder)


def test_unknown_data_spec(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_data(tmp_path / "nope")
    with pytest.raises(DataError, match="neither seed-format files"):
        load_data(tmp_path)
    with pytest.raises(DataError, match="not key=value"):
        load_data("synth:colour=3")


def test_bradley_terry_annotator_error_rate_tracks_quality(small_data):
    X = small_data.train.embeddings.reshape(-1, 16)
    prompts = np.arange(small_data.train.prompts)
    errors = [annotate(X, small_data.train.gold, prompts, Annotator(quality=q), seed=1)[1] for q in (0.5, 2.0, 8.0)]
    assert errors[0] > errors[1] > errors[2] > 0
    assert errors[0] < 0.5


def test_flip_rate_annotator_realizes_its_rate(small_data):
    X = small_data.train.embeddings.reshape(-1, 16)
    pairs, error = annotate(X, small_data.train.gold, np.arange(400), Annotator(flip_rate=0.2, pairs_per_prompt=20), seed=2)
    assert abs(error - 0.2) < 0.02
    truth = small_data.train.gold.ravel()[pairs.a] > small_data.train.gold.ravel()[pairs.b]
    assert abs(np.mean(truth != pairs.y.astype(bool)) - error) < 1e-12


def test_within_prompt_pairs_stay_within_and_cross_pairs_cross(small_data):
    X = small_data.train.embeddings.reshape(-1, 16)
    K = small_data.train.responses
    within, _ = annotate(X, small_data.train.gold, np.arange(50), Annotator(pairs_per_prompt=5), seed=0)
    assert np.all(within.a // K == within.b // K) and np.all(within.a != within.b)
    # 5 pairs per prompt of 10 responses are disjoint: every response used exactly once
    assert len(np.unique(np.concatenate([within.a, within.b]))) == 2 * len(within)
    cross, _ = annotate(X, small_data.train.gold, np.arange(50), Annotator(pairing="cross"), seed=0)
    assert np.all(cross.a // K != cross.b // K)


def test_bad_annotator_settings():
    with pytest.raises(ConfigError, match="flip_rate"):
        Annotator(flip_rate=0.6).validate()
    with pytest.raises(ConfigError, match="pairing"):
        Annotator(pairing="diagonal").validate()


def test_task_splits_never_share_prompts(small_data):
    task = make_task(small_data, TaskConfig())
    r = task.record
    assert not set(r["train_split"]["train_prompts"]) & set(r["train_split"]["early_stop_prompts"])
    assert not set(r["test_split"]["validation_prompts"]) & set(r["test_split"]["test_prompts"])
    K = small_data.train.responses
    assert not set(task.train.a // K) & set(task.stop.a // K)
    assert task.val.gold.shape == (20, 60) and len(task.val) == 20 * 60


def test_pair_dataset_round_trip(tmp_path):
    g = np.random.default_rng(0)
    chosen, rejected = g.standard_normal((200, 8)).astype(np.float32), g.standard_normal((200, 8)).astype(np.float32)
    write_pair_folder(tmp_path / "pairs", chosen, rejected, {"name": "toy"})
    data = load_data(tmp_path / "pairs")
    assert data.kind == "pairs" and data.dim == 8
    assert json.loads((tmp_path / "pairs" / "dataset.json").read_text())["kind"] == "pairs"
    task = make_task(data, TaskConfig(folds=0))
    sizes = [len(task.train), len(task.stop), len(task.val.pairs), len(task.test.pairs)]
    assert sum(sizes) == 200 and task.val.gold is None and task.folds == ()
    assert 0.3 < task.train.y.mean() < 0.7  # orientation randomized
    info = describe(data)
    assert info["pairs"]["count"] == 200


def test_pair_folder_and_arrays_are_written_whole(tmp_path):
    folder = tmp_path / "pairs"
    write_pair_folder(folder, np.ones((3, 4), np.float32), np.zeros((3, 4), np.float32), {"name": "toy"})
    assert sorted(p.name for p in folder.iterdir()) == ["chosen.npy", "dataset.json", "rejected.npy"]

    class Unsaveable:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("cannot make an array")

    before = (folder / "chosen.npy").read_bytes()
    with pytest.raises(RuntimeError, match="cannot make an array"):
        atomic_save(folder / "chosen.npy", Unsaveable())
    assert (folder / "chosen.npy").read_bytes() == before  # the earlier file, and no temporary beside it
    assert sorted(p.name for p in folder.iterdir()) == ["chosen.npy", "dataset.json", "rejected.npy"]
    atomic_save(folder / "chosen.npy", np.full((3, 4), 2, np.float32))
    np.testing.assert_array_equal(np.load(folder / "chosen.npy"), 2)


def test_small_pair_data_selects_by_cross_validation(tmp_path):
    """Under 1,000 validation pairs the default is 5 folds: validation holds every pair outside the test split,
    each fold holds out a fifth of them and trains on none of those; the test split is the one a holdout run has."""
    g = np.random.default_rng(0)
    write_pair_folder(tmp_path, g.standard_normal((200, 8)).astype(np.float32),
                      g.standard_normal((200, 8)).astype(np.float32), {"name": "toy"})
    data = load_data(tmp_path)
    task, holdout = make_task(data, TaskConfig()), make_task(data, TaskConfig(folds=0))
    assert len(task.folds) == 5 and task.record["folds"] == 5
    assert task.record["pairs"]["test"] == holdout.record["pairs"]["test"]
    assert len(task.val.pairs) + len(task.test.pairs) == 200 and len(task.train) + len(task.stop) == 180
    pair_of = lambda X, a: {int(i) % 200 for i in a}  # noqa: E731 - chosen row i and rejected row i + 200 are pair i
    val_pairs = np.array(task.record["pairs"]["validation"])
    held = np.concatenate([f.held_out for f in task.folds])
    assert sorted(held.tolist()) == list(range(180))  # every validation pair held out exactly once
    for fold in task.folds:
        seen = pair_of(None, fold.train.a) | pair_of(None, fold.stop.a)
        assert not seen & set(val_pairs[fold.held_out].tolist()) and len(seen) == 180 - len(fold.held_out)
    with pytest.raises(DataError, match="cross-validation is for pair data"):
        make_task(synth(SynthConfig(train_prompts=20, test_prompts=4, test_responses=6, dim=8)), TaskConfig(folds=5))


def test_pair_dataset_row_mismatch(tmp_path):
    write_pair_folder(tmp_path, np.zeros((5, 4), np.float32), np.zeros((4, 4), np.float32), {})
    with pytest.raises(DataError, match="chosen.npy has 5 rows but rejected.npy has 4") as err:
        load_data(tmp_path)
    assert str(tmp_path) in str(err.value)  # names the folder


def test_seed_release_naming_float16_loads_and_trains(tmp_path, small_data):
    """Files named and shaped as the paper's release: embd_{generator}_{embedder}_{task}_{split}.npy (P, K, D) float16
    and reward_…_{split}.npy (P, K, 1)."""
    stem = "Gemma2b-sft_Gemma2b_Harmless"
    for split, cs in (("train", small_data.train), ("test", small_data.test)):
        np.save(tmp_path / f"embd_{stem}_{split}.npy", cs.embeddings.astype(np.float16))
        np.save(tmp_path / f"reward_{stem}_{split}.npy", cs.gold[:, :, None].astype(np.float32))
    data = load_data(tmp_path)
    assert data.name == stem and data.train.embeddings.dtype == np.float16 and data.test.gold.shape == (40, 60)
    task = make_task(data, TaskConfig())
    from rmsearch.evaluate import pair_metrics
    from rmsearch.heads import LinearConfig, make_head

    head = make_head(LinearConfig(), seeds=(0,)).fit(task.train, stop=task.stop)
    s = head.score(np.asarray(task.val.source[task.val.rows], np.float32))[0]
    p = task.val.pairs
    assert pair_metrics(s[p.a], s[p.b], p.y)["accuracy"] > 0.65
    # two datasets in one folder: choose one by name
    np.save(tmp_path / "embd_other_e_t_train.npy", small_data.train.embeddings)
    with pytest.raises(DataError, match="holds several datasets"):
        load_data(tmp_path)
    assert load_data(f"{tmp_path}::{stem}").name == stem
