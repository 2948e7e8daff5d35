"""The machine a benchmark ran on, as its saved result records it (`record`) and the README's stamp line shows it
(`describe`): cores, CPU model, the instruction-set flags that decide its matmul speed, and its fp32 and bf16
matmul rates measured in the same run. CPUs sold under one name differ in exactly these (AMX, AVX-512 with native
bf16, or AVX2 / AVX-512 fp32 only), so the name alone does not say how fast a table's numbers could be.

The flags are rmsearch's own reading of /proc/cpuinfo (`rmsearch.heads._configs.cpu_flags`, which also decides
'auto' precision), so a result and the training it measured agree on what the CPU has.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

from rmsearch.heads._configs import cpu_flags

ISA_FLAGS = {"amx_bf16": "AMX-BF16", "amx_tile": "AMX-TILE", "avx512_bf16": "AVX512-BF16", "avx512f": "AVX-512F",
             "avx2": "AVX2"}
"""The flags a record keeps (/proc/cpuinfo name -> how the stamp line writes it), fastest bf16 path first."""

MATMUL_N = 2048
"""Side of the square matrices timed; smaller where one product would take more than its share of the budget."""
MATMUL_REPS = 3
MATMUL_BUDGET_S = 0.6
"""Seconds, about, that each dtype's timing takes (its warm-up call and `MATMUL_REPS` timed calls)."""


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from a /proc/cpuinfo text (this machine's by default), else what Python reports."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown CPU"


def isa_flags(flags) -> list[str]:
    """Which of `ISA_FLAGS` are among `flags`, in `ISA_FLAGS` order."""
    return [f for f in ISA_FLAGS if f in flags]


def matmul_gflops(dtype, n: int = MATMUL_N, reps: int = MATMUL_REPS, warmup_s: float = 0.0) -> float:
    """Median GFLOP/s of `reps` torch.matmul calls on two n×n matrices of `dtype`, after warm-up calls for
    `warmup_s` seconds (at least one: the first call sets up the kernel)."""
    import torch

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    start = time.perf_counter()
    torch.matmul(a, b)
    while time.perf_counter() - start < warmup_s:
        torch.matmul(a, b)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def _fitting_n(dtype) -> int:
    """The side to time `dtype` at: doubled from 512 up to `MATMUL_N` while the warm-up and timed calls at the next
    side would fit `MATMUL_BUDGET_S` at the rate this side shows (bf16 without native support runs several times
    slower than fp32)."""
    n = 512
    while n < MATMUL_N:
        seconds = 2 * n**3 / (matmul_gflops(dtype, n, reps=1) * 1e9)
        if 8 * seconds * (MATMUL_REPS + 1) > MATMUL_BUDGET_S:
            break
        n *= 2
    return n


def record() -> dict:
    """This machine now: cores, CPU model, `ISA_FLAGS` present, and fp32 and bf16 matmul GFLOP/s measured with
    torch threads = cores (the benchmark's own thread setting is restored after)."""
    import torch

    cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    torch.set_num_threads(cores)
    try:
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
        sides = {name: _fitting_n(dtype) for name, dtype in dtypes.items()}
        rates = {name: matmul_gflops(dtype, sides[name]) for name, dtype in dtypes.items()}
    finally:
        torch.set_num_threads(threads)
    return {"cores": cores, "cpu": cpu_model(), "flags": isa_flags(cpu_flags()),
            "fp32_gflops": round(rates["fp32"], 1), "bf16_gflops": round(rates["bf16"], 1),
            "matmul": f"torch.matmul of n×n, n = {sides['fp32']} (fp32) / {sides['bf16']} (bf16), median of "
                      f"{MATMUL_REPS}, {cores} threads, torch {torch.__version__}"}


def describe(machine) -> str:
    """The stamp line's words for a saved machine: a record as '2 cores, AMD EPYC (AVX512-BF16, AVX-512F, AVX2;
    fp32 290 / bf16 64 GFLOP/s)'; a plain string (results saved before records had flags and rates) as it is."""
    if isinstance(machine, str):
        return machine
    flags = ", ".join(ISA_FLAGS[f] for f in machine["flags"]) or "none of " + "/".join(ISA_FLAGS.values())
    return (f"{machine['cores']} cores, {machine['cpu']} ({flags}; fp32 {machine['fp32_gflops']:.0f} / "
            f"bf16 {machine['bf16_gflops']:.0f} GFLOP/s)")
