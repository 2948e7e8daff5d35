"""Pair data keeps its prompts: splits, folds and early-stopping holdouts never split a prompt's pairs, and bootstrap
intervals resample prompts (a prompt's pairs are not independent evidence)."""

import os
from pathlib import Path

import numpy as np
import pytest

from rmsearch.data import PairData, TaskConfig, full_split, make_task
from rmsearch.evaluate import intervals, paired_bootstrap, unit_groups, unit_table, unit_values


def pair_data(prompts, dim=8, seed=0, **kw) -> PairData:
    """Random pairs whose chosen side leans along the first axis, one row per entry of `prompts`."""
    g = np.random.default_rng(seed)
    M = len(prompts)
    chosen = g.standard_normal((M, dim)).astype(np.float32)
    rejected = g.standard_normal((M, dim)).astype(np.float32)
    chosen[:, 0] += 0.5
    return PairData.checked(chosen, rejected, name="groups", fingerprint=f"groups{seed}",
                            prompts=np.asarray(prompts, np.int64), **kw)


def ragged_prompts(n_prompts=300, seed=1) -> np.ndarray:
    """Prompt ids with 1 to 6 pairs each, shuffled so one prompt's pairs are not adjacent."""
    g = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_prompts) * 7 + 3, g.integers(1, 7, n_prompts))  # ids need not be 0..G-1
    return ids[g.permutation(len(ids))]


def prompts_of(pairs, data: PairData) -> set[int]:
    M = data.chosen.shape[0]
    return set(np.asarray(data.prompts)[np.asarray(pairs.a) % M].tolist())


def split_prompts(split, data: PairData) -> set[int]:
    M = data.chosen.shape[0]
    return set(np.asarray(data.prompts)[split.rows[split.pairs.a] % M].tolist())


@pytest.mark.parametrize("folds", [0, 5])
def test_splits_and_folds_never_share_a_prompt(folds):
    data = pair_data(ragged_prompts())
    task = make_task(data, TaskConfig(folds=folds, seed=3))
    train, stop = prompts_of(task.train, data), prompts_of(task.stop, data)
    val, test = split_prompts(task.val, data), split_prompts(task.test, data)
    assert train and stop and val and test
    assert not test & (train | stop | val)
    assert not train & stop
    if folds:
        assert val == train | stop  # the refit trains on every validation prompt
        for fold in task.folds:
            held = set(np.asarray(data.prompts)[task.val.rows[task.val.pairs.a[fold.held_out]] % len(data.prompts)])
            assert held and not held & (prompts_of(fold.train, data) | prompts_of(fold.stop, data))
            assert not prompts_of(fold.train, data) & prompts_of(fold.stop, data)
    else:
        assert not val & (train | stop)
    # every pair lands somewhere, once
    M = data.chosen.shape[0]
    counted = len(task.train) + len(task.stop) + len(task.test.pairs) + (0 if folds else len(task.val.pairs))
    assert counted == M
    assert task.record["split_by"] == "prompts" and task.record["prompts"]["count"] == 300


def test_each_pair_its_own_prompt_splits_as_pairs():
    """Prompt ids 0..M-1 (one pair each) cut exactly as data without prompts: same draws, same record."""
    plain = pair_data(np.arange(500))
    plain = PairData.checked(plain.chosen, plain.rejected, name="p", fingerprint="p")
    named = PairData.checked(plain.chosen, plain.rejected, name="p", fingerprint="p", prompts=np.arange(500))
    for folds in (0, 4):
        a, b = make_task(plain, TaskConfig(folds=folds)), make_task(named, TaskConfig(folds=folds))
        assert a.record["pairs"] == b.record["pairs"]
        assert np.array_equal(a.train.a, b.train.a) and np.array_equal(a.val.rows, b.val.rows)


def repeated(data: PairData, times: int) -> PairData:
    """Each pair `times` times, all copies answering the pair's prompt."""
    return PairData.checked(np.repeat(data.chosen, times, 0), np.repeat(data.rejected, times, 0), name="rep",
                            fingerprint="rep", prompts=np.repeat(np.arange(data.chosen.shape[0]), times))


def test_bootstrap_resamples_prompts_not_pairs():
    """Five identical pairs per prompt carry the evidence of one: the intervals equal those of one pair per
    prompt. Without prompts they would be narrower by about √5."""
    once = pair_data(np.arange(200), seed=4)
    five = repeated(once, 5)
    w = np.zeros(once.dim)
    w[0] = 1.0
    split1, split5 = full_split(once), full_split(five)
    scores1 = np.asarray(split1.source, np.float64)[split1.rows] @ w
    scores5 = np.asarray(split5.source, np.float64)[split5.rows] @ w
    ci1, ci5 = intervals([unit_table(scores1, split1)]), intervals([unit_table(scores5, split5)])
    assert ci1["units"] == "prompts" and ci5["n"] == ci1["n"] == 200
    for key in ("pair_accuracy", "pair_nll", "pair_ece"):
        for part in ("value", "low", "high"):
            assert ci5["values"][0][key][part] == pytest.approx(ci1["values"][0][key][part], rel=1e-12, abs=1e-12)
    acc = ci1["values"][0]["pair_accuracy"]
    assert acc["low"] < acc["value"] < acc["high"]
    # the same for a paired difference (a second scorer)
    other1 = scores1 + 0.3 * np.sin(np.arange(len(scores1)))
    other5 = np.concatenate([np.repeat(other1[:200], 5), np.repeat(other1[200:], 5)])
    d1 = paired_bootstrap(unit_values(scores1, split1, "pair_correct"), unit_values(other1, split1, "pair_correct"),
                          groups=unit_groups(split1, "pair_correct"))
    d5 = paired_bootstrap(unit_values(scores5, split5, "pair_correct"), unit_values(other5, split5, "pair_correct"),
                          groups=unit_groups(split5, "pair_correct"))
    assert d5["n"] == d1["n"] == 200
    for part in ("diff", "low", "high"):
        assert d5[part] == pytest.approx(d1[part], rel=1e-12, abs=1e-12)
    # treating the 1,000 copies as independent pairs gives a narrower, wrong interval
    flat = paired_bootstrap(unit_values(scores5, split5, "pair_correct"), unit_values(other5, split5, "pair_correct"))
    assert flat["high"] - flat["low"] < 0.6 * (d1["high"] - d1["low"])


SHARED = Path(os.environ.get("RMSEARCH_SHARED_DATA", Path(__file__).parents[2] / "../shared/data")).resolve()
HH = SHARED / "hh-harmless-pairs.jsonl.gz"


@pytest.mark.skipif(not HH.is_file(), reason=f"{HH} not found: set RMSEARCH_SHARED_DATA to the shared data folder")
@pytest.mark.parametrize("folds", [0, 5])
def test_hh_pairs_splits_and_folds_never_share_a_prompt(folds):
    """The shared hh-rlhf pairs, their prompts taken from the dialogues' shared prefix as `data embed` does (text
    only: random embeddings stand in for the encoder's, which do not decide the splits)."""
    from rmsearch.data._text_pairs import read_pairs

    texts = read_pairs(HH)
    ids = {p: i for i, p in enumerate(dict.fromkeys(texts.prompts))}
    prompts = np.array([ids[p] for p in texts.prompts])
    assert len(prompts) == 1796 and len(ids) < len(prompts)  # a prompt answered twice: a real group
    data = pair_data(prompts)
    task = make_task(data, TaskConfig(folds=folds))
    test = split_prompts(task.test, data)
    fitted = prompts_of(task.train, data) | prompts_of(task.stop, data)
    assert not test & fitted and not test & split_prompts(task.val, data)
    for fold in task.folds:
        held = set(prompts[task.val.rows[task.val.pairs.a[fold.held_out]] % len(prompts)].tolist())
        assert not held & (prompts_of(fold.train, data) | prompts_of(fold.stop, data))
