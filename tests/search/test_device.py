"""Member jobs on GPUs (`--device`, `--gpus-per-job`): the resource plumbing, tested on the CPU — which jobs ask Ray
for a GPU share and train where, what 'auto' resolves to, how a cluster without GPUs is refused, and that a
member's device enters its cache key — and, where CUDA exists, a launch that trains on the GPU."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from rmsearch.errors import ConfigError
from rmsearch.heads import GBDTConfig, LaplaceConfig, LinearConfig, MLPClassifierConfig, MLPConfig, PrototypeConfig
from rmsearch.search import LaunchOptions, Search
from rmsearch.search._device import Placement, check_device_options, gpu_slots, place, resolve_device
from rmsearch.search._store import code_identity, member_key
from tests.search.conftest import SMALL

CUDA = __import__("torch").cuda.is_available()
GPU = Placement("cuda", 0.25, gpu_bf16=True, gpu="a GPU")


@pytest.mark.parametrize("head, on_gpu", [
    (MLPConfig(), True), (MLPClassifierConfig(), True), (LinearConfig(), True),
    (LinearConfig(solver="lbfgs"), False), (GBDTConfig(), False), (LaplaceConfig(), False), (PrototypeConfig(), False),
])
def test_only_heads_with_a_gpu_path_ask_for_a_gpu_share(head, on_gpu):
    for given in (head, head.to_dict()):  # a config, or the dict a job is submitted with
        assert Placement().job_options(given, 4) == {"num_cpus": 4, "max_retries": 3}
        assert Placement().device_of(given) == "cpu"
        share = {"num_gpus": 0.25} if on_gpu else {}
        assert GPU.job_options(given, 4) == {"num_cpus": 4, "max_retries": 3, **share}
        assert GPU.device_of(given) == ("cuda" if on_gpu else "cpu")


class _Remote:
    def __init__(self, calls, fn=None):
        self.calls, self.fn = calls, fn

    def options(self, **kw):
        self.calls.append(kw)
        return self

    def remote(self, *args):
        self.calls.append(args)
        return self.fn() if self.fn else object()


class _Ray:
    """What MemberJobs and `place` use of Ray: remote(fn).options(**kw).remote(*args), get."""

    class exceptions:
        GetTimeoutError = TimeoutError

    def __init__(self):
        self.calls = []

    def remote(self, fn):
        return _Remote(self.calls, fn if fn.__name__ == "gpu_facts" else None)

    def get(self, ref, timeout=None):
        return ref


def test_member_jobs_are_submitted_with_the_gpu_share_and_the_device(tmp_path):
    from rmsearch.search._options import SearchState
    from rmsearch.search._ray import MemberJobs
    from rmsearch.search._store import MemberStore

    ray = _Ray()
    jobs = MemberJobs(ray, "task", 2, 3, MemberStore(tmp_path), SearchState(), GPU)
    jobs.submit(MLPConfig(hidden=(4,)).to_dict(), {"a": 0, "b": 1})
    assert ray.calls[0] == {"num_cpus": 3, "max_retries": 3, "num_gpus": 0.25}
    assert [c[2:] for c in ray.calls[1:]] == [((0,), 3, False, "cuda", 1.0), ((1,), 3, False, "cuda", 1.0)]  # seeds..share
    ray.calls.clear()
    jobs.submit(GBDTConfig(max_iter=5).to_dict(), {"c": 0})
    assert ray.calls[0] == {"num_cpus": 3, "max_retries": 3} and ray.calls[1][-2:] == ("cpu", 1.0)


def test_a_cpu_key_is_the_key_from_before_devices_and_a_gpu_key_differs():
    head = MLPConfig(hidden=(4,), precision="fp32").to_dict()
    before = hashlib.sha256(json.dumps({"task": "t", "head": head, "seed": 3, "code": code_identity()},
                                       sort_keys=True).encode()).hexdigest()[:24]
    assert member_key("t", head, 3) == member_key("t", head, 3, "cpu") == before
    assert member_key("t", head, 3, "cuda") != before


@pytest.fixture(scope="module")
def handle(tmp_path_factory):
    space = tmp_path_factory.mktemp("space") / "mlp.yaml"
    space.write_text("head: mlp\nmembers: 2\naggregation: mean\nmlp.hidden: [4]\nmlp.epochs: 1\n")
    runs = tmp_path_factory.mktemp("device") / "runs"
    return Search(LaunchOptions(data=SMALL, space=str(space), trials=1, study="s", runs=runs,
                                progress=False)).prepare().handle


def test_the_study_keys_and_resolves_members_by_the_device_they_train_on(handle):
    from dataclasses import replace

    from rmsearch.ensembles import EnsembleConfig

    mlp = EnsembleConfig(head=MLPConfig(hidden=(4,)), members=2)  # precision 'auto'
    trees = EnsembleConfig(head=GBDTConfig(max_iter=5), members=2)
    assert handle.placement == Placement() and handle.resolve(mlp).head.precision == "fp32"  # 8 dims: fp32 on a CPU
    on_cpu = {c: handle.member_keys(c) for c in (mlp, trees)}
    try:
        handle.placement = GPU
        assert handle.resolve(mlp).head.precision == "bf16"  # every size, on a GPU with bf16 tensor cores
        assert set(handle.member_keys(mlp)).isdisjoint(on_cpu[mlp])
        assert handle.member_keys(trees) == on_cpu[trees]  # trees train on the CPU under any device: shared
        handle.placement = replace(GPU, gpu_bf16=False)
        assert handle.resolve(mlp).head.precision == "fp32"
        assert set(handle.member_keys(mlp)).isdisjoint(on_cpu[mlp])
    finally:
        handle.placement = Placement()


@pytest.mark.skipif(CUDA, reason="checks what happens without a CUDA GPU")
def test_auto_resolves_to_the_cpu_without_a_gpu_and_the_others_are_as_given():
    assert resolve_device("auto") == "cpu"
    assert (resolve_device("cpu"), resolve_device("cuda")) == ("cpu", "cuda")


@pytest.mark.parametrize("device, gpus, address, message", [
    ("cpu", 0.5, None, "--gpus-per-job 0.5 with --device cpu: member jobs on the CPU ask Ray for no GPU, so this "
                       "option does nothing here. Drop --gpus-per-job"),
    ("cuda", 0.0, "auto", "--gpus-per-job 0: give a share of one GPU"),
    ("cuda", 1.5, "auto", "--gpus-per-job 1.5: give a share of one GPU (0 < share <= 1"),
    ("tpu", None, None, "--device tpu: choose one of cpu, cuda, auto"),
    pytest.param("cuda", None, None, "--device cuda: torch here .* sees no CUDA GPU, and without --address",
                 marks=pytest.mark.skipif(CUDA, reason="checks what happens without a CUDA GPU")),
])
def test_device_options_that_cannot_work_are_refused_naming_the_option(device, gpus, address, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_device_options(device, gpus, address)


def test_device_options_that_can_work_pass():
    check_device_options("cpu", None, None)
    check_device_options("auto", 0.25, None)  # applies where auto finds a GPU
    check_device_options("cuda", 2, "127.0.0.1:1")  # a cluster's GPUs are checked once Ray is joined
    check_device_options("cuda", None, "auto")


def test_gpu_slots_count_the_shares_the_live_nodes_hold():
    nodes = [{"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}}, {"Alive": True, "Resources": {"CPU": 4.0}},
             {"Alive": True, "Resources": {"GPU": 2.0}}, {"Alive": False, "Resources": {"GPU": 8.0}}]
    assert gpu_slots(nodes, 0.25) == 12 and gpu_slots(nodes, 1) == 3 and gpu_slots(nodes, 2) == 1
    with pytest.raises(ConfigError, match=r"--gpus-per-job 4: no node .*the most on one node is 2\); .* e\.g\. --gpus-per-job 2\."):
        gpu_slots(nodes, 4)
    with pytest.raises(ConfigError, match="--device cuda: the Ray cluster has no GPU. Start the GPU nodes with "
                                          "`ray start --num-gpus=N`"):
        gpu_slots(nodes[1:2], 1)


def test_a_ray_without_gpus_is_refused_before_any_job(ray_session):
    from rmsearch.search import init_ray

    if ray_session.cluster_resources().get("GPU", 0):
        pytest.skip("this Ray has GPUs")
    assert init_ray(None, None)[1:] == (2, 1)  # the CPU path: one job per CPU
    with pytest.raises(ConfigError, match="--device cuda: the Ray cluster has no GPU"):
        init_ray(None, None, 1.0)


@pytest.mark.skipif(CUDA, reason="checks what happens without a CUDA GPU")
def test_placing_on_cuda_looks_at_the_gpu_from_a_job_holding_a_share():
    ray = _Ray()
    assert place(ray, "cpu", 0.0) == Placement() and not ray.calls
    with pytest.raises(ConfigError, match=r"--device cuda: Ray gave a job a GPU, but torch there \(torch .*\) sees "
                                          r"no CUDA device"):
        place(ray, "cuda", 0.5)  # the probe ran here, where torch sees no GPU
    assert ray.calls[0] == {"num_gpus": 0.5, "num_cpus": 0}


def test_auto_on_a_machine_without_gpus_is_the_cpu_path(tmp_path, ray_session, tiny_space):
    if CUDA:
        pytest.skip("auto trains on the GPU here")
    s = Search(LaunchOptions(data=SMALL, space=str(tiny_space), trials=2, study="s", runs=tmp_path / "runs",
                             progress=False, final=False, device="auto", gpus_per_job=0.5)).run()
    assert s.study.user_attrs["last_launch"]["device"] == "cpu" and s.handle.placement == Placement()
    from rmsearch.ensembles import EnsembleConfig

    for t in s.completed():  # keyed as the CPU path keys them
        config = EnsembleConfig.from_point(t.user_attrs["config"])
        head = config.head.to_dict()
        assert t.user_attrs["members"] == [member_key(s.task_key, head, seed) for seed in config.member_seeds]


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: trains through `rmsearch launch --device cuda`")
def test_a_cuda_launch_trains_and_scores_on_the_gpu_as_a_cpu_reload_scores(tmp_path):
    from rmsearch.export import load_ensemble
    from rmsearch.search import StudyHandle, export_trial, top_trials

    space = tmp_path / "mlp.yaml"
    space.write_text("head: mlp\nmembers: 2\naggregation: mean\nmlp.hidden: [16]\nmlp.epochs: 3\n")
    runs = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "rmsearch", "launch", "--data", SMALL, "--space", str(space),
                        "--trials", "2", "--runs", str(runs), "--study", "g", "--device", "cuda", "--gpus-per-job",
                        "0.5", "--baselines", "none", "--no-select"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "device: cuda (" in r.stdout
    h = StudyHandle.open("g", runs)
    assert h.study.user_attrs["last_launch"]["device"].startswith("cuda (")
    best = top_trials(h, 1)[0]
    gpu = np.stack([h.store.get(k).val_scores for k in best.user_attrs["members"]])  # scored in the GPU jobs
    ensemble = load_ensemble(export_trial(h, best, tmp_path / "export"))
    val = h.task.val
    cpu = ensemble.raw_scores(np.asarray(val.source[val.rows], np.float32))  # numpy on the CPU
    np.testing.assert_allclose(cpu, gpu, rtol=2e-2, atol=2e-2)
    assert np.corrcoef(cpu.ravel(), gpu.ravel())[0, 1] > 0.999
