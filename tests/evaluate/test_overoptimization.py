"""The built-in world shows reward over-optimization at `rmsearch evaluate`'s defaults, over five world seeds (seed s
draws the world, the prompt splits and the annotator's labels, as `rmsearch evaluate --seed s` does): a single
small head's BoN gold curve peaks and then falls as N grows to the pool size while its proxy keeps rising, and
conservative aggregations (min, uwo) of the ensemble fall less and end higher. The claims are asserted on the mean
over seeds with margins of about half the measured effect, and each in most seeds; the size of the effect varies
with the world (the seeds' numbers are in README's "What `rmsearch evaluate` shows")."""

import numpy as np
import pytest

from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
from rmsearch.ensembles import Aggregation, EnsembleConfig
from rmsearch.ensembles._train import fit_group
from rmsearch.evaluate import compare_aggregations
from rmsearch.launch.cli import DEFAULT_POINT

SEEDS = (0, 1, 2, 3, 4)
MOST = 4
"""Seeds (of 5) in which a per-seed claim must hold."""


@pytest.fixture(scope="module")
def runs():
    """Per seed: test-split results of single, mean, min and uwo (λ=1) of the default configuration."""
    config = EnsembleConfig.from_point(dict(DEFAULT_POINT))
    aggs = [Aggregation("mean"), Aggregation("min"), Aggregation("uwo", 1.0)]
    out = []
    for seed in SEEDS:
        task = make_task(synth(SynthConfig(seed=seed)), TaskConfig(seed=seed))
        group = fit_group(task, config.head, config.member_seeds)
        res = compare_aggregations(task, group.stats, group.val_scores, group.test_scores, aggs)
        out.append({"gold": task.test.gold, **{name.split(" ")[0]: r["test"] for name, r in res.items()}})
    return out


def metric(runs, name, key) -> np.ndarray:
    return np.array([r[name]["metrics"][key] for r in runs])


def test_default_world_and_configuration(runs):
    assert all(r["gold"].shape[1] == 500 for r in runs)  # pools of 500: N goes up to 500
    assert DEFAULT_POINT["members"] == 8 and DEFAULT_POINT["aggregation"] == "uwo"
    assert len({float(r["gold"].std()) for r in runs}) == len(SEEDS)  # every seed is its own world


def test_single_head_peaks_then_falls(runs):
    drop, peak_n, gain = (metric(runs, "single", k) for k in ("drop", "peak_n", "gain"))
    assert drop.mean() > 0.25, f"single head drops {np.round(drop, 3)}: no clear over-optimization on average"
    assert np.sum(drop > 0.1) >= MOST, f"single head drops {np.round(drop, 3)}"
    assert np.sum(peak_n < 500) >= MOST
    assert gain.mean() > 1.0  # selection helps at first: gold at N=500 is still far above N=1


def test_proxy_keeps_rising_while_gold_falls(runs):
    """Past the gold peak the single head's proxy keeps rising while gold falls: on one standardized scale
    (proxy and gold each standardized over all test candidates), the proxy's view of the chosen candidate runs
    away from gold's, and faster after the peak than before it."""
    after, before = [], []
    for r in runs:
        c = r["single"]["curve"]
        n, proxy, gold = np.array(c["n"]), np.array(c["proxy"]), np.array(c["gold"])
        assert np.all(np.diff(proxy) > 0)
        gap = proxy - (gold - r["gold"].mean()) / r["gold"].std()
        peak = int(np.argmax(gold))
        # gap growth per unit of log N after the peak and up to it
        after.append((gap[-1] - gap[peak]) / np.log(n[-1] / n[peak]) if peak < len(n) - 1 else 0.0)
        before.append((gap[peak] - gap[0]) / np.log(n[peak]))
    after, before = np.array(after), np.array(before)
    assert np.mean(after - before) > 0.4, f"gap growth per log N after/before the peak: {after}, {before}"
    assert np.sum(after > before) >= MOST


def test_conservative_aggregations_fall_less(runs):
    single, mean = metric(runs, "single", "drop"), metric(runs, "mean", "drop")
    for name in ("min", "uwo"):
        drop = metric(runs, name, "drop")
        assert drop.mean() < single.mean() - 0.08, f"{name} drops {np.round(drop, 3)} vs single {np.round(single, 3)}"
        assert drop.mean() < mean.mean() - 0.15, f"{name} drops {np.round(drop, 3)} vs mean {np.round(mean, 3)}"


def test_conservative_aggregations_end_higher(runs):
    single = metric(runs, "single", "gold_final")
    for name in ("min", "uwo"):
        final = metric(runs, name, "gold_final")
        assert np.mean(final - single) > 0.15, f"{name} {np.round(final, 3)} vs single {np.round(single, 3)} at N=500"
        assert np.sum(final > single) >= MOST, name
    uwo, mean = metric(runs, "uwo", "gold_final"), metric(runs, "mean", "gold_final")
    assert np.mean(uwo - mean) > 0.2 and np.sum(uwo > mean) >= MOST
