"""Exports of `laplace` and `prototype` members: the posterior factor travels in the safetensors, bounds and β
round-trip, scoring works without torch or scikit-learn, and inconsistent arrays are refused."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
from rmsearch.ensembles import BOUND_RULE, Aggregation
from rmsearch.errors import ConfigError, ExportError
from rmsearch.export import ensemble_from_groups, load_ensemble, write_export
from rmsearch.heads import LaplaceConfig, MLPConfig, PrototypeConfig

DIM = 8


@pytest.fixture(scope="module")
def groups():
    from rmsearch.ensembles import fit_group

    task = make_task(synth(SynthConfig(dim=DIM, train_prompts=200, test_prompts=5, test_responses=20)), TaskConfig())
    return {"laplace": fit_group(task, LaplaceConfig(lam=1.0, bootstrap=True), (0, 1)),
            "mlp": fit_group(task, MLPConfig(hidden=(16,), epochs=3), (2, 3)),
            "prototype": fit_group(task, PrototypeConfig(prototypes=4, epochs=2), (4,))}


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(1).standard_normal((40, DIM)).astype(np.float32)


def _export(tmp_path, ensemble):
    return write_export(tmp_path / "out", ensemble, metrics={}, dataset={"name": "synth"})


def test_single_laplace_bounds_are_its_posterior_std(groups, X):
    g = groups["laplace"]
    ens = ensemble_from_groups([g], np.tile([0.0, 1.0], (2, 1)), Aggregation(), DIM)
    ens.members, ens.stats = ens.members[:1], ens.stats[:1]
    reward, lower, upper = ens.bounds(X, beta=2.0)
    from rmsearch.heads import forward_std

    sd = forward_std("laplace", ens.members[0].arrays, X)
    np.testing.assert_allclose(reward, ens.score(X), atol=1e-12)
    np.testing.assert_allclose(upper - reward, 2.0 * sd, rtol=1e-5)
    np.testing.assert_allclose(reward - lower, 2.0 * sd, rtol=1e-5)


def test_mixed_bounds_combine_spread_and_posterior_variance(groups, X):
    """Mixed ensemble: std² = variance over members + mean of the members' own variances (0 for the MLPs)."""
    ens = ensemble_from_groups([groups["laplace"], groups["mlp"]], None, Aggregation("lcb", 1.5), DIM)
    z = ens.member_scores(X)
    own = ens.member_std(X)
    assert (own[2:] == 0).all() and (own[:2] > 0).all()
    std = np.sqrt(z.var(0) + (own ** 2).mean(0))
    reward, lower, upper = ens.bounds(X, beta=1.0)
    np.testing.assert_allclose(lower, z.mean(0) - std, atol=1e-9)
    np.testing.assert_allclose(upper, z.mean(0) + std, atol=1e-9)
    np.testing.assert_allclose(reward, z.mean(0) - 1.5 * std, atol=1e-9)  # lcb uses the same std
    with pytest.raises(ConfigError, match="beta=-1 must be a finite number >= 0"):
        ens.bounds(X, beta=-1)


def test_export_round_trip_records_beta_and_the_rule(groups, X, tmp_path):
    ens = ensemble_from_groups(list(groups.values()), None, Aggregation("lcb", 1.0), DIM)
    ens.beta = 1.645
    folder = _export(tmp_path, ens)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["bounds"] == {"beta": 1.645, "definition": BOUND_RULE}
    assert manifest["members"][0]["arrays"]["cov_factor"]["shape"] == [DIM, DIM]
    back = load_ensemble(folder)
    assert back.beta == 1.645
    for a, b in zip(ens.bounds(X), back.bounds(X)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "want.npy", np.stack(ens.bounds(X)))
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["sklearn"] = None
        sys.modules["scipy"] = None
        import numpy as np
        import rmsearch
        e = rmsearch.load_ensemble({str(folder)!r})
        got = np.stack(e.bounds(np.load({str(tmp_path / 'X.npy')!r})))
        np.testing.assert_allclose(got, np.load({str(tmp_path / 'want.npy')!r}), atol=1e-6)
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stderr


def test_inconsistent_arrays_are_refused(groups, tmp_path):
    ens = ensemble_from_groups([groups["laplace"], groups["prototype"]], None, Aggregation(), DIM)
    ens.members[0].arrays["cov_factor"] = ens.members[0].arrays["cov_factor"][:, :3]
    with pytest.raises(ExportError, match=r"member 0 \(laplace\) array 'cov_factor' has shape \(8, 3\), expected "):
        _export(tmp_path, ens)
    ens = ensemble_from_groups([groups["prototype"]], None, Aggregation(), DIM)
    del ens.members[0].arrays["values"]
    with pytest.raises(ExportError, match=r"member 0 \(prototype\) must hold prototypes, values, log_temperature"):
        _export(tmp_path, ens)
