"""Calibration (ECE, reliability, temperature), uncertainty against proxy error, and the bootstrap intervals of
every metric: exact values on small cases, and agreement with `evaluate_split`."""

import numpy as np
import pytest

from rmsearch.data import SynthConfig, TaskConfig, full_split, make_task, synth
from rmsearch.evaluate import evaluate_split, robustness_metrics
from rmsearch.evaluate._calibration import (
    expected_calibration_error, fit_temperature, proxy_error, reliability, sigmoid, uncertainty_error_spearman,
)
from rmsearch.evaluate._intervals import intervals, unit_table
from rmsearch.evaluate._units import paired_bootstrap, unit_values


@pytest.fixture(scope="module")
def task():
    return make_task(synth(SynthConfig(dim=8, train_prompts=100, test_prompts=24, test_responses=30)), TaskConfig())


def test_ece_by_hand():
    # p = 0.95 (bin 9, confidence bin 0.9-1.0) twice: one right, one wrong -> |(1 - .95) + (0 - .95)| = 0.9;
    # p = 0.25 (confidence 0.75, right when y = 0) once, right -> |1 - 0.75| = 0.25. ECE = (0.9 + 0.25) / 3.
    p, y = np.array([0.95, 0.95, 0.25]), np.array([1.0, 0.0, 0.0])
    assert expected_calibration_error(p, y) == pytest.approx((0.9 + 0.25) / 3)
    # the order a pair is listed in does not matter
    assert expected_calibration_error(1 - p, 1 - y) == pytest.approx(expected_calibration_error(p, y))
    assert expected_calibration_error(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == 0.0  # ties: half right


def test_ece_small_when_calibrated_large_when_overconfident():
    g = np.random.default_rng(0)
    margin = g.normal(0, 2, 20000)
    y = (g.random(20000) < sigmoid(margin)).astype(float)
    assert expected_calibration_error(sigmoid(margin), y) < 0.015
    assert expected_calibration_error(sigmoid(4 * margin), y) > 0.1  # 4× too sharp
    rel = reliability(sigmoid(margin), y)
    assert rel["bins"] == 10 and len(rel["share"]) == 10 and sum(rel["share"]) == pytest.approx(1.0)
    observed = np.array(rel["observed"], float)
    assert np.abs(observed - np.array(rel["mean_p"], float)).max() < 0.05  # on the diagonal
    assert rel["ece"] == pytest.approx(expected_calibration_error(sigmoid(margin), y))


def test_temperature_recovers_the_true_one():
    g = np.random.default_rng(1)
    margin = g.normal(0, 3, 40000)
    y = (g.random(40000) < sigmoid(margin / 2.0)).astype(float)
    fit = fit_temperature(margin, y)
    assert fit["temperature"] == pytest.approx(2.0, rel=0.05)
    assert fit["nll_after"] < fit["nll_before"] and fit["pairs"] == 40000
    assert expected_calibration_error(sigmoid(margin / fit["temperature"]), y) < 0.015


def test_uncertainty_that_is_the_error_scores_one(task):
    split = task.test
    g = np.random.default_rng(2)
    scores = split.gold.ravel() + g.standard_normal(split.gold.size)
    err = proxy_error(scores, split.gold).ravel()
    assert np.allclose(uncertainty_error_spearman(scores, err, split), 1.0)
    assert np.allclose(uncertainty_error_spearman(scores, -err, split), -1.0)
    flat = uncertainty_error_spearman(scores, np.zeros_like(err), split)  # a one-member ensemble: no information
    assert np.all(flat == 0.0)


def test_spearman_units_average_to_the_metric(task):
    split = task.test
    scores = split.gold.ravel() + np.random.default_rng(3).standard_normal(split.gold.size)
    per_prompt = unit_values(scores, split, "spearman")
    assert per_prompt.shape == (split.gold.shape[0],)
    metric = robustness_metrics(scores.reshape(split.gold.shape), split.gold)["spearman"]
    assert per_prompt.mean() == pytest.approx(metric)


@pytest.mark.parametrize("kind", ["gold", "pairs"])
def test_interval_points_are_evaluate_split_values(task, kind):
    if kind == "gold":
        split = full_split(synth(SynthConfig(dim=8, train_prompts=100, test_prompts=24, test_responses=30, seed=5)))
        truth = split.gold.ravel()
    else:
        split = task.test  # gold data's test split; build a pair-only split from its pairs
        from rmsearch.data._task import Split

        split = Split(split.source, split.rows, split.pairs)
        truth = task.test.gold.ravel()
    g = np.random.default_rng(4)
    scores = truth + g.standard_normal(len(truth))
    unc = np.abs(g.standard_normal(len(truth)))
    ev = evaluate_split(scores, split, unc)
    ci = intervals([unit_table(scores, split, unc), unit_table(scores + 0.5 * g.standard_normal(len(truth)), split)])
    values = ci["values"][0]
    assert ci["units"] == ("prompts" if kind == "gold" else "pairs")
    assert ci["n"] == (24 if kind == "gold" else len(split.pairs))
    for key, m in ev["metrics"].items():
        assert values[key]["value"] == pytest.approx(m, abs=1e-12), key
        assert values[key]["low"] <= values[key]["high"]
    for key in ("gold_final", "spearman", "pair_accuracy", "pair_nll") if kind == "gold" else ("pair_accuracy",):
        assert values[key]["low"] <= values[key]["value"] <= values[key]["high"], key
    if kind == "gold":
        assert set(values) >= {"gold_final", "gold_peak", "peak_n", "drop", "gain", "bon_auc", "spearman",
                               "uncertainty_error_spearman", "pair_accuracy", "pair_nll", "pair_ece"}
    # a mean metric's paired difference interval is the one paired_bootstrap gives on the same units
    unit = "bon_final" if kind == "gold" else "pair_correct"
    key = "gold_final" if kind == "gold" else "pair_accuracy"
    other = scores + 0.5 * np.random.default_rng(4).standard_normal(len(truth))
    t0, t1 = unit_table(scores, split), unit_table(other, split)
    d = intervals([t0, t1])["differences"][1][key]
    ref = paired_bootstrap(unit_values(other, split, unit), unit_values(scores, split, unit))
    assert (d["diff"], d["low"], d["high"]) == pytest.approx((ref["diff"], ref["low"], ref["high"]))


def test_identical_scores_differ_by_exactly_zero(task):
    scores = task.test.gold.ravel() + np.random.default_rng(5).standard_normal(len(task.test))
    ci = intervals([unit_table(scores, task.test), unit_table(scores.copy(), task.test)])
    for key, d in ci["differences"][1].items():
        assert d == {"diff": 0.0, "low": 0.0, "high": 0.0}, key
