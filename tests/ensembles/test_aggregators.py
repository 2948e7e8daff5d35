"""The contract of every registered aggregation, run over the registry so that a new one is tested by being
registered: one score per row, the same scores for any order of the members, the members' scores back when they
all agree, a parameter range that a space file accepts, a label, and a manifest round trip. And an aggregation
registered at run time is usable by configurations, spaces and exports with no change elsewhere."""

import json

import numpy as np
import optuna
import pytest
import yaml

from rmsearch.ensembles import (
    AGGREGATORS,
    Aggregation,
    Aggregator,
    AggregatorParam,
    Ensemble,
    EnsembleConfig,
    Member,
    aggregate,
    register_aggregator,
)
from rmsearch.errors import ConfigError
from rmsearch.export import load_ensemble, write_export
from rmsearch.spaces import Space

ALL = list(AGGREGATORS.values())
WITH_PARAM = [a for a in ALL if a.param is not None]


def _values(agg: Aggregator) -> list:
    """The parameter values to test at: none, or the default and both ends of the search range."""
    if agg.param is None:
        return [None]
    _, low, high = agg.param.search
    return [agg.param.default, low, high]


def _by_name(agg: Aggregator) -> str:
    return agg.name


@pytest.mark.parametrize("agg", ALL, ids=_by_name)
def test_one_score_per_row(agg):
    z = np.random.default_rng(0).standard_normal((5, 40))
    for value in _values(agg):
        out = agg(z, value)
        assert out.shape == (40,) and out.dtype == np.float64 and np.isfinite(out).all()
        np.testing.assert_array_equal(Aggregation(agg.name, value)(z), out)
        np.testing.assert_array_equal(aggregate(z, agg.name, value), out)
        assert agg(z[:1], value).shape == (40,)  # one member
        assert agg(z.astype(np.float32), value).dtype == np.float64


@pytest.mark.parametrize("agg", ALL, ids=_by_name)
def test_invariant_to_member_order(agg):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 30))
    for value in _values(agg):
        for _ in range(3):
            np.testing.assert_allclose(agg(z[rng.permutation(6)], value), agg(z, value), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("agg", [a for a in ALL if a.unanimous], ids=_by_name)
def test_members_that_agree_get_their_scores_back(agg):
    s = np.random.default_rng(2).standard_normal(25)
    for value in _values(agg):
        np.testing.assert_allclose(agg(np.tile(s, (4, 1)), value), s, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("agg", WITH_PARAM, ids=_by_name)
def test_parameter_range_validates_in_a_space_file(agg):
    p = agg.param
    dist, low, high = p.search
    assert low <= p.default <= high and p.allows(low) and p.allows(high)
    assert Aggregation(agg.name).param == p.default
    Aggregation(agg.name, p.default).validate()
    with pytest.raises(ConfigError, match=f"{p.name}="):
        Aggregation(agg.name, p.minimum - 1).validate()
    key = f"{agg.name}.{p.name}"
    explicit = f"aggregation: {agg.name}\n{key}: {yaml.safe_dump(p.space_entry(), default_flow_style=True)}"
    for text in (explicit, f"aggregation: {agg.name}\n{key}: {{range: default}}\n"):
        space = Space.from_yaml_text(text, source="s.yaml")
        assert (space.params[key].dist, space.params[key].low, space.params[key].high) == (dist, low, high)
        printed = Space.from_yaml_text(space.to_yaml()).params[key]  # what `spaces show` prints loads back
        assert (printed.dist, printed.low, printed.high) == (dist, low, high)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(8):
            config = EnsembleConfig.from_point(space.suggest(study.ask()))
            assert config.aggregation.name == agg.name and low <= config.aggregation.param <= high


@pytest.mark.parametrize("agg", ALL, ids=_by_name)
def test_label_and_point(agg):
    for value in _values(agg):
        a = Aggregation(agg.name, value)
        point = EnsembleConfig(aggregation=a).to_point()
        assert EnsembleConfig.from_point(point).aggregation == a
        if agg.param is None:
            assert a.label == agg.name and a.to_dict() == {"name": agg.name}
        else:
            assert a.label == f"{agg.name} ({agg.param.symbol}={a.param:g})"
            assert a.to_dict() == {"name": agg.name, agg.param.name: a.param}
            assert point[f"{agg.name}.{agg.param.name}"] == a.param


def _ensemble(aggregation: Aggregation, dim: int = 3) -> Ensemble:
    rng = np.random.default_rng(0)
    members = [Member("linear", {}, i, {"w0": rng.standard_normal((dim, 1)).astype(np.float32),
                                        "b0": np.zeros(1, np.float32)}) for i in range(3)]
    return Ensemble(members, np.array([[0.0, 1.0], [0.5, 2.0], [-1.0, 0.5]]), aggregation, dim=dim)


@pytest.mark.parametrize("agg", ALL, ids=_by_name)
def test_manifest_round_trip(agg, tmp_path):
    X = np.random.default_rng(3).standard_normal((20, 3)).astype(np.float32)
    for i, value in enumerate(_values(agg)):
        ensemble = _ensemble(Aggregation(agg.name, value))
        out = write_export(tmp_path / str(i), ensemble, metrics={}, dataset={})
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["aggregation"] == ensemble.aggregation.to_dict()
        loaded = load_ensemble(out)
        assert loaded.aggregation == ensemble.aggregation
        np.testing.assert_allclose(loaded.score(X), ensemble.score(X), rtol=1e-6, atol=1e-6)


@pytest.fixture
def softmin():
    """A temperature-smoothed minimum, registered for one test."""
    agg = register_aggregator(Aggregator(
        "softmin", lambda z, t: z.min(0) - t * np.log(np.mean(np.exp(-(z - z.min(0)) / t), 0)),
        AggregatorParam("temperature", "τ", default=1.0, search=("log", 0.1, 10.0))))
    yield agg
    del AGGREGATORS["softmin"]


def test_a_registered_aggregation_is_usable_everywhere(softmin, tmp_path):
    with pytest.raises(ValueError, match="registered already"):
        register_aggregator(softmin)
    config = EnsembleConfig.from_point({"aggregation": "softmin", "softmin": {"temperature": 2.0}})
    assert config.aggregation == Aggregation("softmin", 2.0) and config.to_point()["softmin.temperature"] == 2.0
    assert Aggregation("softmin").label == "softmin (τ=1)"
    space = Space.from_yaml_text("aggregation: {categorical: [mean, softmin]}\nsoftmin.temperature: {range: default}\n")
    assert space.params["softmin.temperature"].dist == "log"
    with pytest.raises(ConfigError, match="softmin.temperature=-1 is not allowed"):
        Space.from_yaml_text("aggregation: softmin\nsoftmin.temperature: -1\n")
    loaded = load_ensemble(write_export(tmp_path / "e", _ensemble(config.aggregation), metrics={}, dataset={}))
    assert loaded.aggregation == config.aggregation
    z = np.random.default_rng(4).standard_normal((3, 10))
    assert (softmin(z, 0.1) >= z.min(0)).all() and (softmin(z, 10.0) <= z.mean(0) + 1e-12).all()
