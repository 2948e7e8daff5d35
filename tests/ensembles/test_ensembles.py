import numpy as np
import pytest

from rmsearch.ensembles import Aggregation, Ensemble, EnsembleConfig, Member, aggregate, greedy_select, score_stats, standardize
from rmsearch.errors import ConfigError, DataError

Z = np.array([[1.0, 4.0, -1.0], [3.0, 0.0, -1.0], [2.0, 2.0, 5.0]])


def test_aggregations_exact_values():
    np.testing.assert_allclose(aggregate(Z, "mean"), [2.0, 2.0, 1.0])
    np.testing.assert_allclose(aggregate(Z, "min"), [1.0, 0.0, -1.0])
    np.testing.assert_allclose(aggregate(Z, "median"), [2.0, 2.0, -1.0])
    var = np.array([2 / 3, 8 / 3, 8.0])  # population variance
    np.testing.assert_allclose(aggregate(Z, "uwo", 0.5), [2.0, 2.0, 1.0] - 0.5 * var)
    np.testing.assert_allclose(aggregate(Z, "lcb", 2.0), [2.0, 2.0, 1.0] - 2.0 * np.sqrt(var))


def test_unknown_aggregation_and_negative_lambda():
    with pytest.raises(ConfigError, match="unknown aggregation 'max'"):
        Aggregation("max").validate()
    with pytest.raises(ConfigError, match="lambda=-1"):
        Aggregation("uwo", -1).validate()


def test_standardization_makes_scales_comparable():
    raw = np.array([[10.0, 20.0, 30.0], [0.1, 0.2, 0.3]])
    stats = score_stats(raw)
    np.testing.assert_allclose(standardize(raw, stats)[0], standardize(raw, stats)[1], atol=1e-9)
    np.testing.assert_allclose(standardize(raw, stats)[0], [-np.sqrt(1.5), 0, np.sqrt(1.5)])


def test_greedy_selection_with_replacement_prefers_good_members():
    truth = np.linspace(-1, 1, 200)
    rng = np.random.default_rng(0)
    library = np.stack([truth + rng.normal(0, s, 200) for s in (0.3, 0.3, 3.0, 3.0, 0.3)])
    objective = lambda agg: float(np.corrcoef(agg, truth)[0, 1])  # noqa: E731
    chosen, trace = greedy_select(library, objective, size=6)
    assert set(chosen) <= {0, 1, 4}, chosen
    assert trace == sorted(trace) and len(chosen) >= 2


def test_ensemble_scores_heterogeneous_members():
    lin = {"w0": np.array([[1.0], [0.0]], np.float32), "b0": np.array([0.0], np.float32)}
    lin2 = {"w0": np.array([[0.0], [2.0]], np.float32), "b0": np.array([1.0], np.float32)}
    members = [Member("linear", {}, 0, lin), Member("mlp", {}, 1, lin2)]
    ens = Ensemble(members, np.array([[0.0, 1.0], [1.0, 2.0]]), Aggregation("min"), dim=2)
    X = np.array([[1.0, 1.0], [2.0, -1.0]], np.float32)
    np.testing.assert_allclose(ens.member_scores(X), [[1.0, 2.0], [1.0, -1.0]])
    np.testing.assert_allclose(ens.score(X), [1.0, -1.0])
    np.testing.assert_allclose(ens.uncertainty(X), [0.0, 1.5])
    with pytest.raises(DataError, match="scores \\(n, 2\\) arrays"):
        ens.score(np.zeros((3, 5), np.float32))


def test_point_round_trip_and_nested_form():
    point = {"head": "mlp", "members": 3, "aggregation": "uwo", "uwo": {"lambda": 2.0}, "mlp": {"hidden": [8, 4]},
             "gbdt.max_iter": 5}  # another head's parameter: inactive, ignored
    cfg = EnsembleConfig.from_point(point)
    assert cfg.head.hidden == (8, 4) and cfg.aggregation.param == 2.0 and cfg.members == 3
    assert EnsembleConfig.from_point(cfg.to_point()) == cfg
    assert cfg.member_seeds == (0, 1, 2)


@pytest.mark.parametrize("point, match", [
    ({"head": "svm"}, "unknown head type 'svm'"),
    ({"head": "mlp", "mlp.width": 3}, "has no parameter 'width'"),
    ({"head": "mlp", "colour": 3}, "unknown key 'colour'"),
    ({"head": "mlp", "members": 0}, "members=0"),
    ({"head": "mlp", "mlp.dropout": 1.5}, "dropout must be in"),
    ({"head": "linear", "linear.hidden": [4]}, "has no hidden layers"),
])
def test_bad_points(point, match):
    with pytest.raises(ConfigError, match=match):
        EnsembleConfig.from_point(point)
