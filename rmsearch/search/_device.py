"""Where a launch's member jobs train (`--device`, `--gpus-per-job`): on CPUs, as by default, or each job on a share
of a GPU (Ray's `num_gpus`), decided once on the driver before any trial (`Placement`, from `place`).

Only head types with a GPU path train there: the torch heads (mlp, mlp_clf, linear with solver 'adam'). The others
(gbdt, laplace, prototype, linear with solver 'lbfgs') train on the CPU under any device and ask Ray for no GPU
(`HeadConfig.training_device`). A member's device enters its head-cache key, as does its precision, which 'auto'
decides by that device: a member trained on a GPU never stands in for one trained on a CPU, nor the reverse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from rmsearch.errors import ConfigError, RMSearchError
from rmsearch.heads import HeadConfig, head_config

DEVICES = ("cpu", "cuda", "auto")
GPU_WAIT_S = 300
"""How long the launch waits for a GPU share to look at the GPU before it gives up (`place`)."""


@dataclass(frozen=True)
class Placement:
    """Where a launch's member jobs train. The default is the CPU path: jobs ask Ray for CPUs only."""

    device: str = "cpu"
    """'cpu' or 'cuda': where members of head types with a GPU path train."""
    gpus_per_job: float = 0.0
    """Ray's num_gpus of each member job that trains on a GPU."""
    gpu_bf16: bool = False
    """Whether the GPU has native bf16 matmul (found on a worker's GPU): what 'auto' precision is decided by there."""
    gpu: str = ""
    """The GPU's name, for the launch's output."""

    def device_of(self, head: HeadConfig | dict) -> str:
        """Where members of `head` (a config, or its `to_dict()`) train: 'cuda' only for types with a GPU path."""
        if isinstance(head, dict):
            head = head_config(head["kind"], **{k: v for k, v in head.items() if k != "kind"})
        return head.training_device(self.device)

    def resolve(self, head: HeadConfig, dim: int) -> HeadConfig:
        """`head` with 'auto' decided for inputs of `dim` dims on the device its members train on."""
        return head.resolved(dim, self.device_of(head), self.gpu_bf16)

    def job_options(self, head: HeadConfig | dict, threads: int) -> dict:
        """Ray's options of a member job that trains `head`: its CPUs, retries, and its share of a GPU where it
        trains on one."""
        options = {"num_cpus": threads, "max_retries": 3}
        if self.device_of(head) == "cuda":
            options["num_gpus"] = self.gpus_per_job
        return options

    def describe(self) -> str:
        """'cpu', or 'cuda (NVIDIA …, bf16; 0.25 GPU per member job)'."""
        if self.device == "cpu":
            return "cpu"
        precision = "bf16 tensor cores" if self.gpu_bf16 else "no bf16 tensor cores: 'auto' precision is fp32"
        return f"cuda ({self.gpu}, {precision}; {self.gpus_per_job:g} GPU per member job)"


@lru_cache(maxsize=1)
def driver_has_cuda() -> bool:
    """Whether torch on this machine (the driver's) sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def check_device_options(device: str, gpus_per_job: float | None, address: str | None) -> None:
    """--device and --gpus-per-job, before any work: a known device, a GPU share Ray can give, no GPU share for
    CPU jobs, and a GPU torch can see where the jobs run on this machine (no --address)."""
    if device not in DEVICES:
        raise ConfigError(f"--device {device}: choose one of {', '.join(DEVICES)}.")
    if gpus_per_job is not None:
        if device == "cpu":
            raise ConfigError(f"--gpus-per-job {gpus_per_job:g} with --device cpu: member jobs on the CPU ask Ray "
                              f"for no GPU, so this option does nothing here. Drop --gpus-per-job, or add --device "
                              f"cuda (or auto).")
        if not (0 < gpus_per_job <= 1 or gpus_per_job > 1 and float(gpus_per_job).is_integer()):
            raise ConfigError(f"--gpus-per-job {gpus_per_job:g}: give a share of one GPU (0 < share <= 1, e.g. 0.25 "
                              f"runs four member jobs on each GPU) or a whole number of GPUs.")
    if device == "cuda" and not address and not driver_has_cuda():
        import torch

        raise ConfigError(f"--device cuda: torch here (torch {torch.__version__}) sees no CUDA GPU, and without "
                          f"--address the member jobs run on this machine. Use --device cpu (or auto), or join a "
                          f"Ray cluster that has GPU nodes with --address.")


def resolve_device(device: str) -> str:
    """'auto' as 'cuda' where torch on the driver sees a GPU, else 'cpu'; 'cpu' and 'cuda' as they are."""
    if device == "auto":
        return "cuda" if driver_has_cuda() else "cpu"
    return device


def gpu_slots(nodes: list[dict], gpus_per_job: float) -> int:
    """Member jobs that fit on the GPUs of the live Ray `nodes` (`ray.nodes()`) at `gpus_per_job` each; a
    ConfigError where none does."""
    gpus = [n.get("Resources", {}).get("GPU", 0) for n in nodes if n.get("Alive", True)]
    slots = sum(math.floor(g / gpus_per_job + 1e-9) for g in gpus)
    if not any(gpus):
        raise ConfigError("--device cuda: the Ray cluster has no GPU. Start the GPU nodes with `ray start "
                          "--num-gpus=N` (Ray finds NVIDIA GPUs by itself where their driver is installed), or "
                          "use --device cpu.")
    if slots == 0:
        raise ConfigError(f"--gpus-per-job {gpus_per_job:g}: no node of the Ray cluster has that many GPUs (the "
                          f"most on one node is {max(gpus):g}); ask for a share a node can give, e.g. "
                          f"--gpus-per-job {max(gpus):g}.")
    return slots


def gpu_facts() -> dict:
    """Run in a member job's place (holding a GPU share): whether its torch sees the GPU, its name, and whether it
    has native bf16 matmul."""
    import torch

    from rmsearch.heads import gpu_has_bf16

    if not torch.cuda.is_available():
        return {"cuda": False, "torch": torch.__version__}
    return {"cuda": True, "torch": torch.__version__, "name": torch.cuda.get_device_name(), "bf16": gpu_has_bf16()}


def place(ray, device: str, gpus_per_job: float) -> Placement:
    """The placement of a launch's member jobs on `device` ('cpu' or 'cuda'). On 'cuda' one job holding a GPU
    share first looks at the GPU: a worker whose torch cannot see it is an error before any trial, and its bf16
    support decides 'auto' precision for every member."""
    if device == "cpu":
        return Placement()
    probe = ray.remote(gpu_facts).options(num_gpus=gpus_per_job, num_cpus=0).remote()
    try:
        facts = ray.get(probe, timeout=GPU_WAIT_S)
    except ray.exceptions.GetTimeoutError:
        raise RMSearchError(f"--device cuda: no share of {gpus_per_job:g} GPU came free in {GPU_WAIT_S} s (other "
                            f"jobs hold the cluster's GPUs); try again when they finish, or ask for a smaller "
                            f"--gpus-per-job.") from None
    if not facts["cuda"]:
        raise ConfigError(f"--device cuda: Ray gave a job a GPU, but torch there (torch {facts['torch']}) sees no "
                          f"CUDA device. Install a CUDA build of torch on the GPU nodes, or use --device cpu.")
    return Placement("cuda", gpus_per_job, facts["bf16"], facts["name"])
