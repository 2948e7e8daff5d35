"""Per-category results (RewardBench-style sections) and the length-only baseline, on gold pools and on pairs."""

import numpy as np
import pytest

from rmsearch.data import CandidateSet, GoldData, PairData, SynthConfig, TaskConfig, full_split, make_task, synth
from rmsearch.evaluate import category_intervals, intervals, length_scores, unit_table, unit_values

CATEGORIES = ("coding", "chat", "math")


def with_text_facts(data: GoldData) -> GoldData:
    """`data` with a category per prompt (prompt index mod 3) and response lengths that grow with gold."""

    def side(cs: CandidateSet) -> CandidateSet:
        g = np.asarray(cs.gold, np.float64)
        lengths = (200 + 40 * (g - g.mean()) / g.std()).round().clip(1).astype(np.int64)
        return CandidateSet.checked(cs.embeddings, cs.gold, names=("e", "g"), lengths=lengths,
                                    category=np.arange(cs.prompts) % 3)

    return GoldData(side(data.train), side(data.test), "text", "text", categories=CATEGORIES)


@pytest.fixture(scope="module")
def gold_split():
    data = with_text_facts(synth(SynthConfig(dim=6, train_prompts=60, test_prompts=60, test_responses=30)))
    return make_task(data, TaskConfig()).test


def test_category_values_are_each_categorys_own_and_the_weighted_mean_is_the_overall(gold_split):
    split = gold_split
    scores = np.asarray(split.source, np.float64)[split.rows] @ np.ones(6)
    result = category_intervals([unit_table(scores, split)], split)
    assert result["metrics"] == ["gold_final", "bon_auc"] and result["units"] == "prompts"
    names = [r["name"] for r in result["rows"]]
    present = sorted(set(split.category.tolist()))
    assert names[:-1] == [CATEGORIES[c] for c in present] and names[-1].startswith("mean over categories")
    final = unit_values(scores, split, "bon_final")
    for row, c in zip(result["rows"], present):
        mask = split.category == c
        assert row["n"] == mask.sum()
        assert row["values"][0]["gold_final"]["value"] == pytest.approx(final[mask].mean(), rel=1e-12)
        v = row["values"][0]["gold_final"]
        assert v["low"] < v["value"] < v["high"]
    overall = intervals([unit_table(scores, split)])["values"][0]["gold_final"]["value"]
    assert result["rows"][-1]["values"][0]["gold_final"]["value"] == pytest.approx(overall, rel=1e-12)
    assert result["rows"][-1]["n"] == split.units


def test_length_baseline_ranks_by_length(gold_split):
    """Lengths that grow with gold: the rule picks each prompt's gold-best candidate at N = M (no length ties
    at the top), and its pair accuracy is that of the lengths' order."""
    split = gold_split
    s = length_scores(split)
    gold = np.asarray(split.gold)
    lengths = split.lengths.reshape(gold.shape)
    top = lengths.max(1, keepdims=True) == lengths
    expected = (np.where(top, gold, 0).sum(1) / top.sum(1)).mean()  # ties at the top share the pick
    assert intervals([unit_table(s, split)])["values"][0]["gold_final"]["value"] == pytest.approx(expected)
    assert length_scores(make_task(synth(SynthConfig(dim=6, train_prompts=40, test_prompts=8, test_responses=10)),
                                   TaskConfig()).test) is None  # data not made from text has no length rule


def test_pair_categories_count_prompts_and_pairs_ratio():
    g = np.random.default_rng(0)
    M = 600
    prompts = np.repeat(np.arange(200), 3)
    category = (prompts % 2).astype(np.int64)  # a prompt's pairs share its category
    chosen, rejected = g.standard_normal((M, 4)).astype(np.float32), g.standard_normal((M, 4)).astype(np.float32)
    lengths = g.integers(10, 500, (M, 2))
    data = PairData.checked(chosen, rejected, name="p", fingerprint="p", prompts=prompts, category=category,
                            lengths=lengths, categories=("harmless", "helpful"))
    split = full_split(data)
    s = length_scores(split)
    result = category_intervals([unit_table(s, split)], split)
    assert result["units"] == "prompts" and [r["n"] for r in result["rows"]] == [100, 100, 200]
    for c, row in enumerate(result["rows"][:2]):
        pick = category == c
        expected = np.mean(np.where(lengths[pick, 0] == lengths[pick, 1], 0.5, lengths[pick, 0] > lengths[pick, 1]))
        assert row["values"][0]["pair_accuracy"]["value"] == pytest.approx(expected, rel=1e-12)
