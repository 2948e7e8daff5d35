"""The built-in world shows reward over-optimization at its defaults (fixed seeds): a single small head's BoN gold
curve peaks and then falls as N grows to the pool size while its proxy keeps rising, and conservative
aggregations (min, uwo) of an ensemble fall less."""

import numpy as np
import pytest

from rmsearch.ensembles import Aggregation
from rmsearch.ensembles._train import fit_group
from rmsearch.evaluate import compare_aggregations
from rmsearch.heads import MLPConfig


@pytest.fixture(scope="module")
def results(default_task):
    config = MLPConfig(hidden=(64, 32), bootstrap=True, patience=0, epochs=40)
    group = fit_group(default_task, config, seeds=tuple(range(8)))
    aggs = [Aggregation("mean"), Aggregation("min"), Aggregation("uwo", 1.0)]
    out = compare_aggregations(default_task, group.stats, group.val_scores, group.test_scores, aggs)
    return {name.split(" ")[0]: r["test"] for name, r in out.items()}


def test_pool_size_is_500(default_task):
    assert default_task.test.gold.shape[1] == 500


def test_single_head_peaks_then_falls_while_proxy_rises(results):
    single = results["single"]
    m, curve = single["metrics"], single["curve"]
    assert curve["n"][-1] == 500
    assert m["peak_n"] < 500
    assert m["drop"] > 0.15, f"single head drop {m['drop']:.3f}: no clear over-optimization"
    assert m["gain"] > 0.5  # selection helps at first
    proxy = np.array(curve["proxy"])
    assert np.all(np.diff(proxy) > 0), "the proxy must keep rising with N"


def test_conservative_aggregations_fall_less(results):
    single = results["single"]["metrics"]
    for name in ("min", "uwo"):
        m = results[name]["metrics"]
        assert m["drop"] < single["drop"], f"{name} drops {m['drop']:.3f} vs single {single['drop']:.3f}"
        assert m["gold_final"] > single["gold_final"] + 0.1, name
    assert results["uwo"]["metrics"]["gold_final"] > results["mean"]["metrics"]["gold_final"]
