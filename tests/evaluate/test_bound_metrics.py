"""The bound metrics (Brier, lower/upper-bound calibration error, confident-true/false, ranking score) on a
constructed example against values worked out by hand, and their bootstrap intervals."""

import math

import numpy as np
import pytest

from rmsearch.data import Pairs, Split
from rmsearch.evaluate import RANKING_BETA, bound_metrics, intervals, unit_table


def sig(x):
    return 1 / (1 + math.exp(-x))


# four responses: rewards s, bounds s ± 0.5; five labelled pairs (y = 1: a preferred)
S = np.array([0.0, 2.0, 1.0, 1.0])
A, B, Y = [1, 0, 2, 2, 0], [0, 1, 3, 0, 1], [1, 0, 0, 1, 1]
#   pair (1, 0) y=1: right, l_a 1.5 > u_b 0.5                 confident true
#   pair (0, 1) y=0: right, l_b 1.5 > u_a 0.5                 confident true
#   pair (2, 3) y=0: a tie (not right), intervals overlap
#   pair (2, 0) y=1: right, l_a 0.5 = u_b 0.5 (overlap)       not confident
#   pair (0, 1) y=1: wrong, u_a 0.5 < l_b 1.5                 confident false


@pytest.fixture
def split():
    pairs = Pairs(None, np.array(A), np.array(B), np.array(Y, np.float32))
    return Split(source=np.zeros((4, 2), np.float32), rows=np.arange(4), pairs=pairs)


def test_hand_computed_values(split):
    m = bound_metrics(S, S - 0.5, S + 0.5, split)
    brier = ((1 - sig(2)) ** 2 + sig(-2) ** 2 + 0.25 + (1 - sig(1)) ** 2 + (1 - sig(-2)) ** 2) / 5
    assert m["pair_brier"] == pytest.approx(brier, abs=1e-12)
    assert m["confident_true"] == pytest.approx(2 / 5) and m["confident_false"] == pytest.approx(1 / 5)
    b = RANKING_BETA  # right 3/5, wrong 2/5
    assert m["ranking_score"] == pytest.approx(0.4 / ((1 - b) * 0.6 + b) - 0.2 / ((1 - b) * 0.4 + b))
    # lower bounds of P(a ≻ b), both orders, with their labels: bins [0.1, 0.2) holds σ(−2) (label 0) and
    # [0.7, 0.8) holds σ(1) three times (labels 1, 1, 0); the other bins' observed rates exceed their bounds
    assert m["lower_ce"] == pytest.approx((sig(-2) + 3 * sig(1) - 2) / 10, abs=1e-12)
    # the upper bounds mirror them ([0.2, 0.3): σ(−1) three times, labels 0, 0, 1; [0.8, 0.9): σ(2), label 1)
    assert m["upper_ce"] == pytest.approx((1 - 3 * sig(-1) + 1 - sig(2)) / 10, abs=1e-12)


def test_without_bounds_only_brier(split):
    assert set(bound_metrics(S, None, None, split)) == {"pair_brier"}


def test_intervals_point_values_are_the_metrics(split):
    """Each pair is one unit here; with every unit once the bootstrap's point values are `bound_metrics`'."""
    want = bound_metrics(S, S - 0.5, S + 0.5, split)
    ci = intervals([unit_table(S, split, bounds=(S - 0.5, S + 0.5)), unit_table(S, split)], draws=200)
    for k, v in want.items():
        got = ci["values"][0][k]
        assert got["value"] == pytest.approx(v, abs=1e-12) and got["low"] <= v + 1e-12 <= got["high"] + 2e-12
    assert set(ci["values"][1]) & set(want) == {"pair_brier"}
    assert ci["differences"][1]["pair_brier"]["diff"] == 0.0
