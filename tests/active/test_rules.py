"""choose_pairs and the selection rules: the contract every registered rule keeps, each rule's choice on an example
whose answer is known by hand, and the errors bad input gets."""

import numpy as np
import pytest

from rmsearch.active import RULES, DOptimal, SelectionRule, choose_pairs
from rmsearch.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    a, b = rng.integers(0, 60, 200), rng.integers(0, 60, 200)
    scores = rng.standard_normal((3, 60))
    return X, a, b, scores


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_returns_k_distinct_unlabelled_pairs_deterministically(pool, rule):
    X, a, b, scores = pool
    labelled = np.arange(0, 200, 3)
    got = choose_pairs(X, a, b, 25, rule, labelled=labelled, scores=scores, seed=4)
    assert got.shape == (25,) and got.dtype == np.int64
    assert len(set(got.tolist())) == 25 and not set(got.tolist()) & set(labelled.tolist())
    assert np.array_equal(got, choose_pairs(X, a, b, 25, rule, labelled=labelled, scores=scores, seed=4))
    every = choose_pairs(X, a, b, 200 - len(labelled), rule, labelled=labelled, scores=scores)
    assert sorted(every.tolist()) == sorted(set(range(200)) - set(labelled.tolist()))


def test_a_bool_mask_and_indices_mark_the_same_labelled_pairs(pool):
    X, a, b, scores = pool
    mask = np.zeros(200, bool)
    mask[[1, 5, 9]] = True
    assert np.array_equal(choose_pairs(X, a, b, 10, "dopt", labelled=mask, scores=scores),
                          choose_pairs(X, a, b, 10, "dopt", labelled=[1, 5, 9], scores=scores))


def test_random_depends_on_the_seed(pool):
    X, a, b, _ = pool
    assert not np.array_equal(choose_pairs(X, a, b, 10, "random", seed=0), choose_pairs(X, a, b, 10, "random", seed=1))


# rows in 2-d: the origin, e1, 2·e1, e2, e2 again
PLANE = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])


def test_dopt_picks_the_direction_nothing_labelled_has_measured():
    # labelled: three pairs along e1; candidates: a longer pair along e1 (3) and a shorter one along e2 (4)
    a, b = np.array([1, 1, 1, 2, 3]), np.array([0, 0, 0, 0, 0])
    assert choose_pairs(PLANE, a, b, 1, "dopt", labelled=[0, 1, 2]).tolist() == [4]
    assert choose_pairs(PLANE, a, b, 2, "dopt", labelled=[0, 1, 2]).tolist() == [4, 3]


def test_dopt_prefers_the_pair_the_model_is_unsure_of():
    # two candidates along e2: rows 3 and 4 are the same point, but the model is sure about 3 vs 0 (margin 8)
    a, b = np.array([1, 3, 4]), np.array([0, 0, 0])
    scores = np.array([[0.0, 0.0, 0.0, 8.0, 0.1]])
    assert choose_pairs(PLANE, a, b, 1, "dopt", labelled=[0], scores=scores).tolist() == [2]
    # without scores every pair weighs p(1 − p) = 1/4: the tie goes to the first
    assert choose_pairs(PLANE, a, b, 1, "dopt", labelled=[0]).tolist() == [1]


def test_dopt_with_a_large_ridge_prefers_the_longer_pair():
    # a strong prior makes every direction measured alike; information then grows with the pair's length
    a, b = np.array([1, 2, 3]), np.array([0, 0, 0])
    assert choose_pairs(PLANE, a, b, 1, DOptimal(ridge=100.0)).tolist() == [1]


def test_coreset_picks_the_far_pair_and_treats_a_reversed_pair_as_seen():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [1.1, 0.0], [0.0, 5.0]])
    # pair features: labelled (1,0); candidates (1.1,0) near it, (−1,0) its reverse, (0,5) far from both
    a, b = np.array([1, 2, 0, 3]), np.array([0, 0, 1, 0])
    assert choose_pairs(X, a, b, 2, "coreset", labelled=[0]).tolist() == [3, 1]


def test_disagreement_picks_the_pair_the_members_disagree_on_most():
    X = np.zeros((4, 2))
    a, b = np.array([0, 1, 2]), np.array([3, 3, 3])
    scores = np.array([[1.0, 2.0, 0.0, 0.0], [1.0, -2.0, 0.5, 0.0], [1.0, 0.0, 1.0, 0.0]])
    assert choose_pairs(X, a, b, 2, "disagreement", scores=scores).tolist() == [1, 2]


def test_a_registered_rule_is_chosen_by_name_and_a_broken_one_is_refused(pool):
    X, a, b, _ = pool

    class Broken(SelectionRule):
        name = "broken"

        def select(self, candidates, k, rng):
            return np.zeros(k, np.int64)

    with pytest.raises(ConfigError, match="'broken' broke its contract"):
        choose_pairs(X, a, b, 3, Broken())


@pytest.mark.parametrize("kwargs, error, message", [
    ({"rule": "uncertainty"}, ConfigError, "rule='uncertainty' is unknown; use one of: random .*dopt"),
    ({"k": 0}, ConfigError, "k=0: .* positive integer"),
    ({"k": 199, "labelled": [0, 1]}, ConfigError, "only 198 of the 200 candidate pairs are unlabelled; ask for at most"),
    ({"rule": "disagreement"}, ConfigError, "'disagreement' needs scores=.*\\(members, rows\\)"),
    ({"rule": "disagreement", "scores": np.zeros(60)}, ConfigError, "at least 2 members \\(got 1\\)"),
    ({"scores": np.zeros((3, 59))}, DataError, "scores: must be \\(members, rows\\) .* \\(60\\), got shape \\(3, 59\\)"),
    ({"features": np.zeros((10, 2))}, DataError, "features: has 10 rows but X has 60"),
    ({"labelled": [0, 200]}, DataError, "labelled: pair indices must lie in \\[0, 200\\)"),
    ({"labelled": np.ones(5, bool)}, DataError, "bool mask needs one entry per candidate pair \\(200\\)"),
    ({"b": np.full(200, 60)}, DataError, "b: row indices must lie in \\[0, 60\\)"),
    ({"a": np.zeros(3, np.int64)}, DataError, "of one length .* got 3 and 200"),
    ({"X": np.zeros(60)}, DataError, "X: must be a non-empty \\(rows, dims\\)"),
])
def test_bad_input_gets_an_error_that_names_the_value_and_the_fix(pool, kwargs, error, message):
    X, a, b, _ = pool
    args = {"X": X, "a": a, "b": b, "k": 5, **kwargs}
    with pytest.raises(error, match=message):
        choose_pairs(**args)


def test_nan_features_of_a_candidate_pair_are_refused(pool):
    X, a, b, _ = pool
    bad = X.copy()
    bad[a[0]] = np.nan
    with pytest.raises(DataError, match="features: contain NaN"):
        choose_pairs(bad, a, b, 5, "coreset")
