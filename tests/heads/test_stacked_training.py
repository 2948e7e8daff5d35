"""Stacked-member training: members that stop early leave the stack without changing the others, checks within an
epoch, the cosine schedule, and scoring a memory map in bounded chunks."""

import dataclasses

import numpy as np
import pytest

from rmsearch.data import SynthConfig, make_task, synth
from rmsearch.errors import ConfigError
from rmsearch.ensembles._train import score_split
from rmsearch.evaluate import pair_metrics
from rmsearch.heads import MLPConfig, make_head


@pytest.fixture(scope="module")
def task():
    return make_task(synth(SynthConfig(dim=16, train_prompts=400, test_prompts=20, test_responses=40)))


def _fit(task, seeds, **kw):
    cfg = MLPConfig(hidden=(32, 16), precision="fp32", **kw)
    return make_head(cfg, seeds=seeds).fit(task.train, stop=task.stop)


def test_members_that_stop_early_leave_the_stack_without_changing_the_rest(task):
    kw = dict(epochs=25, patience=2, lr=3e-3, batch_size=128, eval_steps=5, bootstrap=True)  # members differ
    group = _fit(task, (0, 1, 2, 3), **kw)
    active = np.stack([h["early_stop/active"] for h in group.history_])  # (checks, members)
    stopped_at = (active == 1).sum(0)
    assert len(set(stopped_at.tolist())) > 1, f"members all stopped at check {stopped_at[0]}: nothing was dropped"
    for i, seed in enumerate((0, 1, 2, 3)):
        alone = _fit(task, (seed,), **kw)
        for key, value in alone.member_arrays()[0].items():
            np.testing.assert_allclose(group.member_arrays()[i][key], value, rtol=1e-4, atol=1e-5,
                                       err_msg=f"member seed {seed}, array {key}: trained with others != alone")


def test_eval_steps_checks_within_an_epoch_and_stops_mid_epoch(task):
    steps_per_epoch = -(-len(task.train) // 64)
    head = _fit(task, (0, 1), epochs=1, patience=0, batch_size=64, eval_steps=4)
    assert len(head.history_) == -(-steps_per_epoch // 4)  # a record every 4 steps, the last at the epoch's end
    epochs = [float(h["train/epoch"][0]) for h in head.history_]
    assert epochs[0] == pytest.approx(4 / steps_per_epoch) and epochs[-1] == pytest.approx(1.0)
    assert np.all(np.diff(epochs) > 0)
    early = _fit(task, (0, 1), epochs=20, patience=1, lr=1e-2, batch_size=64, eval_steps=2)
    assert early.epochs_ < 20 and early.epochs_ != int(early.epochs_), "expected a stop between epoch ends"


def test_rising_stop_rule_stops_where_the_seed_code_does_and_keeps_the_last_weights(task):
    patience = 2
    head = _fit(task, (0, 1, 2), epochs=30, patience=patience, lr=1e-2, batch_size=64, eval_steps=3,
                stop_rule="rising")
    nll = np.stack([h["val/nll"] for h in head.history_])  # (checks, members); a stopped member repeats its last
    active = np.stack([h["early_stop/active"] for h in head.history_])
    scores = head.score(task.stop.X)
    p = task.stop
    for i in range(3):
        checks = int(active[:, i].sum()) + (0 if active[-1, i] else 1)  # active after every check but its last
        losses = nll[:checks, i]
        rising = [c for c in range(patience, checks) if (losses[c] > losses[c - patience : c]).all()]
        assert rising[:1] == ([] if active[-1, i] else [checks - 1]), f"member {i} stopped at the wrong check"
        z = (scores[i, p.a] - scores[i, p.b]) * (2 * p.y - 1)
        kept = float(np.logaddexp(0, -z).mean())
        assert kept == pytest.approx(float(losses[-1]), rel=1e-4), f"member {i} did not keep its last weights"
    assert not active[-1].all(), "no member stopped: the test did not exercise the rule"
    assert (nll.min(0) < nll[-1] - 1e-4).any(), "no member kept weights worse than its best: nothing was tested"
    with pytest.raises(ConfigError, match="stop_rule must be 'best' or 'rising'"):
        MLPConfig(stop_rule="last").validate()


def test_cosine_schedule_learns_and_bad_values_are_refused(task):
    head = _fit(task, (0, 1), epochs=5, patience=0, lr=3e-3, batch_size=128, lr_schedule="cosine")
    s = score_split(head, task.val).mean(0)
    p = task.val.pairs
    assert pair_metrics(s[p.a], s[p.b], p.y)["accuracy"] > 0.6
    with pytest.raises(ConfigError, match="lr_schedule must be 'constant' or 'cosine'"):
        MLPConfig(lr_schedule="linear").validate()
    with pytest.raises(ConfigError, match="eval_steps must be >= 0"):
        MLPConfig(eval_steps=-1).validate()


def test_score_streams_a_memory_map_in_chunks_and_matches_one_pass(task, tmp_path, monkeypatch):
    import rmsearch.heads._torch as torch_heads

    head = _fit(task, (0, 1, 2), epochs=2, patience=0)
    X = np.asarray(task.train.X, np.float32)
    path = tmp_path / "rows.npy"
    np.save(path, X)
    whole = head.score(X)
    monkeypatch.setattr(torch_heads, "SCORE_BYTES", 4 * 3 * 32 * 300)  # about 300 rows per chunk
    chunked = head.score(np.load(path, mmap_mode="r"))
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
    assert len(X) >= 10 * 300  # so the chunked pass really took several chunks


@pytest.mark.parametrize("kind,hidden", [("linear", ()), ("mlp", (32, 16))])
def test_score_folds_normalization_and_subspaces_into_one_first_layer(task, kind, hidden):
    """score() runs every member's first layer as one GEMM on raw rows; it must equal each member's own forward
    (normalize, take its features, then the layers), here on rows far from zero mean and unit scale."""
    from rmsearch.heads import forward, head_config

    shifted = dataclasses.replace(task.train, X=np.asarray(task.train.X, np.float32) * 7.0 + 3.0)
    config = head_config(kind, **({"hidden": hidden} if hidden else {}), feature_fraction=0.6, epochs=2,
                         precision="fp32")
    head = make_head(config, seeds=(0, 1, 2)).fit(shifted)
    X = shifted.X[:500]
    arrays = head.member_arrays()
    assert len({tuple(a["features"]) for a in arrays}) == 3  # each member has its own subspace
    assert float(np.abs(arrays[0]["mean"]).min()) > 1.0  # the normalization folded in is far from the identity
    want = np.stack([forward(kind, a, X) for a in arrays])
    np.testing.assert_allclose(head.score(X), want, rtol=1e-4, atol=1e-4)


def test_device_is_checked_before_training():
    import torch

    from rmsearch.heads import GBDTConfig

    with pytest.raises(ConfigError, match="device 'tpu' is not supported; use 'cpu' or 'cuda'"):
        make_head(MLPConfig(), device="tpu")
    with pytest.raises(ConfigError, match="head 'gbdt' trains on the CPU only"):
        make_head(GBDTConfig(), device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="torch sees no CUDA GPU.*use device='cpu'"):
            make_head(MLPConfig(), device="cuda")


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu_accuracy(task):
    cfg = MLPConfig(hidden=(32, 16), epochs=5, patience=2, precision="fp32", eval_steps=3, batch_size=128)
    acc = {}
    for device in ("cpu", "cuda"):
        head = make_head(cfg, seeds=(0, 1, 2), device=device).fit(task.train, stop=task.stop)
        s = score_split(head, task.val).mean(0)
        p = task.val.pairs
        acc[device] = pair_metrics(s[p.a], s[p.b], p.y)["accuracy"]
    assert acc["cpu"] > 0.6 and abs(acc["cuda"] - acc["cpu"]) <= 0.01, acc


def test_a_member_is_the_same_alone_as_in_a_group(task):
    """Each member draws its own batch order and dropout masks from its own seed (as it does its init, bootstrap
    draw and subspace), so a cached member is the same whichever group trained it, at any position in it.

    Equal up to float32 rounding, not bit for bit: torch rounds exp and log differently in a vectorized loop's
    body and its scalar tail, and which of a member's loss terms fall in the tail of the (members, pairs) tensor
    depends on the group. The weights here differ by about 1e-7; a shared batch order or dropout stream makes
    them differ by about 0.1."""
    kw = dict(epochs=3, patience=0, lr=3e-3, batch_size=100, dropout=0.3, bootstrap=True, feature_fraction=0.5)
    alone = _fit(task, (7,), **kw).member_arrays()[0]
    for seeds in ((7, 1, 2), (3, 4, 7)):
        member = _fit(task, seeds, **kw).member_arrays()[seeds.index(7)]
        for key, value in alone.items():
            np.testing.assert_allclose(member[key], value, rtol=1e-5, atol=1e-6,
                                       err_msg=f"array {key}: trained in {seeds} != alone")


def test_holdout_gives_each_member_its_own_split_of_all_pairs_and_stops_on_it(task):
    """holdout (the seed code's per-member 80/20 split): each member trains on its own share of the training and
    early-stop pairs together, each pair once per epoch, never on the pairs it stops on; what it records is its loss
    on those, and it is the same member alone as in a group."""
    from rmsearch.heads._batches import MemberBatches, member_holdout

    n = len(task.train) + len(task.stop)
    fit_idx, held = member_holdout((0, 1, 2), n, 0.2)
    assert held.shape == (3, round(0.2 * n)) and fit_idx.shape == (3, n - held.shape[1])
    for f, h in zip(fit_idx, held):
        assert not set(f) & set(h) and len(set(f) | set(h)) == n
    assert not np.array_equal(held[0], held[1]), "members drew the same split"
    batches = MemberBatches((0, 1, 2), n, 64, "cpu", fit_idx)
    epoch = np.concatenate([batches.pairs(s, [0, 1, 2]) for s in range(batches.per_epoch)], axis=1)
    for i in range(3):
        assert sorted(epoch[i].tolist()) == fit_idx[i].tolist(), f"member {i} did not train on its pairs once each"

    kw = dict(epochs=12, patience=2, lr=1e-2, batch_size=64, holdout=0.2, stop_rule="rising")
    group = _fit(task, (0, 1, 2), **kw)
    alone = _fit(task, (1,), **kw)
    for key, value in alone.member_arrays()[0].items():
        np.testing.assert_allclose(group.member_arrays()[1][key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    pool = task.train.join(task.stop)
    scores = group.score(pool.X)
    nll = np.stack([h["val/nll"] for h in group.history_])
    for i in range(3):
        a, b, y = pool.a[held[i]], pool.b[held[i]], pool.y[held[i]]
        kept = float(np.logaddexp(0, -(scores[i, a] - scores[i, b]) * (2 * y - 1)).mean())
        assert kept == pytest.approx(float(nll[-1, i]), rel=1e-4), f"member {i}: recorded loss is not on its pairs"
    with pytest.raises(ConfigError, match="holdout needs early stopping"):
        MLPConfig(holdout=0.2, patience=0).validate()


def test_two_orderings_draw_each_pair_twice_an_epoch_as_the_seed_code_does(task):
    from rmsearch.heads._batches import MemberBatches

    n = len(task.train)
    one, two = (MemberBatches((0, 1), n, 64, "cpu", orderings=o) for o in (1, 2))
    assert two.per_epoch == -(-2 * n // 64) and one.per_epoch == -(-n // 64)
    epoch = np.concatenate([two.pairs(s, [0, 1]) for s in range(two.per_epoch)], axis=1)
    for i in range(2):
        assert (np.bincount(epoch[i], minlength=n) == 2).all(), f"member {i}: not every pair twice"
    head = _fit(task, (0, 1), epochs=2, patience=0, lr=3e-3, batch_size=128, orderings=2)
    assert head.epochs_ == 2 and len(head.history_) == 2
    s = score_split(head, task.val).mean(0)
    p = task.val.pairs
    assert pair_metrics(s[p.a], s[p.b], p.y)["accuracy"] > 0.6
    with pytest.raises(ConfigError, match="orderings must be 1 or 2"):
        MLPConfig(orderings=3).validate()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_rows_gathered_in_small_blocks_from_a_float16_map_train_the_same_member(task, tmp_path, monkeypatch, precision):
    import rmsearch.heads._torch as torch_heads

    X16 = np.asarray(task.train.X, np.float16)
    path = tmp_path / "rows.npy"
    np.save(path, X16)
    kw = dict(hidden=(32, 16), precision=precision, epochs=2, batch_size=256, feature_fraction=0.5, dropout=0.1)
    in_memory = dataclasses.replace(task.train, X=X16.astype(np.float32))
    whole = make_head(MLPConfig(**kw), seeds=(0, 1)).fit(in_memory, stop=task.stop)
    monkeypatch.setattr(torch_heads, "GATHER_ELEMENTS", {"cpu": 50, "cuda": 50})  # 6 rows a block: many
    mapped = dataclasses.replace(task.train, X=np.load(path, mmap_mode="r"))
    blocks = make_head(MLPConfig(**kw), seeds=(0, 1)).fit(mapped, stop=task.stop)
    for i in range(2):
        for key, value in whole.member_arrays()[i].items():
            np.testing.assert_array_equal(blocks.member_arrays()[i][key], value, err_msg=f"member {i}, {key}")
