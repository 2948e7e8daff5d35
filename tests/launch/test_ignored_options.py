"""Options that would do nothing in a given setting are refused before any work: exit 2, a message naming the
option and why it does nothing there, and no run folder written."""

import subprocess
import sys

import numpy as np
import pytest

SMALL = "synth:train_prompts=100,test_prompts=10,test_responses=20,dim=8"


def rmsearch(*args):
    return subprocess.run([sys.executable, "-m", "rmsearch", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    from rmsearch.data import write_pair_folder

    g = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("ignored") / "pairs"
    write_pair_folder(out, g.standard_normal((100, 8)).astype(np.float32),
                      g.standard_normal((100, 8)).astype(np.float32), {"name": "toy"})
    return out


@pytest.mark.parametrize("option, named", [
    (["--quality", "3"], "--quality 3.0"),
    (["--flip-rate", "0.1"], "--flip-rate 0.1"),
    (["--pairing", "cross"], "--pairing cross"),
    (["--pairs-per-prompt", "4"], "--pairs-per-prompt 4"),
    (["--stress"], "--stress"),
])
def test_launch_on_pair_data_refuses_annotator_options(pairs, tmp_path, option, named):
    r = rmsearch("launch", "--data", pairs, "--trials", 1, "--runs", tmp_path / "runs", *option)
    assert r.returncode == 2, r.stderr
    assert named in r.stderr and "pair dataset with its own labels" in r.stderr and "nothing here" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()


def test_evaluate_on_pair_data_refuses_annotator_options(pairs, tmp_path):
    r = rmsearch("evaluate", "--data", pairs, "--quality", "1.5", "--out", tmp_path / "ev")
    assert r.returncode == 2 and "--quality 1.5" in r.stderr and "nothing here" in r.stderr, r.stderr
    assert not (tmp_path / "ev").exists()


def test_launch_refuses_prune_with_multi_objective(tmp_path):
    r = rmsearch("launch", "--data", SMALL, "--trials", 1, "--runs", tmp_path / "runs", "--prune", "--multi-objective")
    assert r.returncode == 2, r.stderr
    assert "--prune with --multi-objective" in r.stderr and "would do nothing" in r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("other, says", [("--prune", "--prune with --halving: a study has one pruner"),
                                          ("--multi-objective", "--halving with --multi-objective")])
def test_launch_refuses_halving_with_another_pruner_or_two_objectives(tmp_path, other, says):
    r = rmsearch("launch", "--data", SMALL, "--trials", 1, "--runs", tmp_path / "runs", "--halving", other)
    assert r.returncode == 2, r.stderr
    assert says in r.stderr and "Drop" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()


def test_launch_refuses_a_gpu_share_for_jobs_on_the_cpu(tmp_path):
    r = rmsearch("launch", "--data", SMALL, "--trials", 1, "--runs", tmp_path / "runs", "--gpus-per-job", "0.5")
    assert r.returncode == 2, r.stderr
    assert "--gpus-per-job 0.5 with --device cpu" in r.stderr and "does nothing here" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "runs").exists()


@pytest.mark.skipif("__import__('torch').cuda.is_available()", reason="checks a machine without a CUDA GPU")
def test_launch_on_cuda_without_a_gpu_exits_2_before_any_work(tmp_path):
    r = rmsearch("launch", "--data", SMALL, "--trials", 1, "--runs", tmp_path / "runs", "--device", "cuda")
    assert r.returncode == 2, r.stderr
    assert "--device cuda: torch here" in r.stderr and "sees no CUDA GPU" in r.stderr and "--device cpu" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("sets, named, why", [
    (["gbdt.max_iter=50"], "gbdt.max_iter", "applies only when head is 'gbdt', and the head is 'mlp'"),
    (["head=gbdt", "mlp.dropout=0.1"], "mlp.dropout", "applies only when head is 'mlp', and the head is 'gbdt'"),
    (["aggregation=mean", "uwo.lambda=2"], "uwo.lambda", "applies only when aggregation is 'uwo'"),
    (["head=linear", "linear.solver=lbfgs", "linear.lr=0.1"], "linear.lr", "solver 'lbfgs' fits"),
    (["head=linear", "linear.solver=lbfgs", "linear.epochs=5"], "linear.epochs", "solver 'lbfgs' fits"),
    (["head=linear", "linear.solver=lbfgs", "linear.weight_decay=0.01"], "linear.weight_decay", "solver 'lbfgs'"),
    (["head=linear", "linear.C=0.5"], "linear.C", "solver 'adam' uses weight_decay"),
])
def test_evaluate_set_refuses_keys_that_do_nothing(tmp_path, sets, named, why):
    r = rmsearch("evaluate", "--data", SMALL, "--out", tmp_path / "ev", *[a for s in sets for a in ("--set", s)])
    assert r.returncode == 2, r.stderr
    assert f"--set {named}=" in r.stderr and f"{named} does nothing here" in r.stderr and why in r.stderr
    assert not (tmp_path / "ev").exists()


def test_evaluate_config_file_refuses_a_key_of_another_head_naming_its_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("head: mlp\nmembers: 2\ngbdt:\n  max_iter: 50\n")
    r = rmsearch("evaluate", "--data", SMALL, "--config", config, "--out", tmp_path / "ev")
    assert r.returncode == 2, r.stderr
    assert f"--config {config} line 4" in r.stderr and "gbdt.max_iter does nothing here" in r.stderr


def test_a_space_refuses_lbfgs_with_minibatch_keys(tmp_path):
    space = tmp_path / "s.yaml"
    space.write_text("head: linear\nmembers: 1\nlinear.solver: lbfgs\nlinear.lr: {log: [0.001, 0.1]}\n")
    r = rmsearch("launch", "--data", SMALL, "--space", space, "--trials", 1, "--runs", tmp_path / "runs")
    assert r.returncode == 2, r.stderr
    assert "line 4: linear.lr does nothing in this space: solver 'lbfgs'" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_lbfgs_settings_it_ignores_leave_the_cache_key_and_the_suggested_point():
    import optuna

    from rmsearch.heads import LinearConfig
    from rmsearch.spaces import load_space

    a = LinearConfig(solver="lbfgs", lr=0.5, epochs=3, weight_decay=0.1).to_dict()
    assert a == LinearConfig(solver="lbfgs").to_dict()
    assert not {"lr", "epochs", "weight_decay"} & set(a) and "C" in a
    assert "C" not in LinearConfig().to_dict() and "lr" in LinearConfig().to_dict()
    space, study = load_space("default"), optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        point = space.suggest(study.ask())
        if point["head"] == "linear":
            seen.add(point["linear.solver"])
            lbfgs = point["linear.solver"] == "lbfgs"
            assert ("linear.C" in point) == lbfgs
            assert not lbfgs or not {"linear.epochs", "linear.weight_decay", "linear.patience"} & set(point)
    assert seen == {"adam", "lbfgs"}


def test_export_select_on_a_multi_objective_study_exports_a_pareto_front_member(tmp_path):
    import json

    runs = tmp_path / "runs"
    r = rmsearch("launch", "--data", SMALL, "--space", "coste", "--trials", 3, "--study", "mo", "--runs", runs,
                 "--multi-objective", "--no-final", "--workers", 1)
    assert r.returncode == 0, r.stderr
    r = rmsearch("export", "--study", "mo", "--runs", runs, "--select", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    assert "Pareto front" in r.stdout and "give --trial N instead of --select for another" in r.stdout
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    front = [int(n) for n in r.stdout.split("Pareto front: trials ")[1].split(" (")[0].split(", ")]
    assert manifest["extra"]["trial"] in front
