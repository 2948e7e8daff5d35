"""The machine record every saved benchmark result carries (benchmarks/_machine.py), and the CPU flags rmsearch
reads from /proc/cpuinfo, which both it and 'auto' precision go by."""

import sys
from pathlib import Path

import pytest

from rmsearch.heads._configs import parse_cpu_flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _machine import cpu_model, describe, isa_flags, record  # noqa: E402

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu vme sse2 avx avx2 avx512f avx512_bf16 avx512vl
bogomips\t: 5200.00

processor\t: 1
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu vme sse2 avx avx2 avx512f avx512_bf16 avx512vl amx_bf16
"""


def test_flags_and_model_parse_from_a_cpuinfo_text():
    flags = parse_cpu_flags(CPUINFO)
    assert {"avx2", "avx512f", "avx512_bf16", "avx512vl"} <= flags and "amx_bf16" not in flags  # the first CPU's
    assert isa_flags(flags) == ["avx512_bf16", "avx512f", "avx2"]
    assert cpu_model(CPUINFO) == "AMD EPYC 9R14 96-Core Processor"


def test_a_text_without_flags_gives_none():
    assert parse_cpu_flags("processor : 0\nmodel name : Apple M2\n") == frozenset()
    assert isa_flags(parse_cpu_flags("")) == []
    assert parse_cpu_flags("Features\t: fp asimd bf16\n") == {"fp", "asimd", "bf16"}  # Arm's name for the line


def test_amx_machines_list_amx_first():
    flags = parse_cpu_flags("flags : avx2 avx512f avx512_bf16 amx_tile amx_bf16 amx_int8\n")
    assert isa_flags(flags) == ["amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"]


@pytest.fixture(scope="module")
def machine():
    return record()


def test_the_record_has_cores_cpu_flags_and_measured_rates(machine):
    assert set(machine) == {"cores", "cpu", "flags", "fp32_gflops", "bf16_gflops", "matmul"}
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1 and machine["cpu"]
    assert set(machine["flags"]) <= {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"}
    for rate in ("fp32_gflops", "bf16_gflops"):
        assert isinstance(machine[rate], float) and machine[rate] > 0, machine


def test_the_record_leaves_the_callers_thread_setting_alone(machine):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_stamp_shows_flags_and_rates_and_old_strings_as_they_were():
    new = {"cores": 2, "cpu": "AMD EPYC", "flags": ["avx512_bf16", "avx512f", "avx2"], "fp32_gflops": 290.4,
           "bf16_gflops": 63.6, "matmul": "…"}
    assert describe(new) == "2 cores, AMD EPYC (AVX512-BF16, AVX-512F, AVX2; fp32 290 / bf16 64 GFLOP/s)"
    assert describe("2 cores, Intel(R) Xeon(R) Processor") == "2 cores, Intel(R) Xeon(R) Processor"
    assert "none of" in describe({**new, "flags": []})
