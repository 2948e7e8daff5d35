"""bf16 autocast training reaches the same validation pairwise accuracy as fp32 (within 1 point) on the same data."""

import pytest

from rmsearch.data import SynthConfig, TaskConfig, make_task, synth
from rmsearch.ensembles._train import score_split
from rmsearch.evaluate import pair_metrics
from rmsearch.heads import MLPConfig, make_head
from rmsearch.heads._torch import cpu_has_bf16

pytestmark = pytest.mark.skipif(
    not cpu_has_bf16(),
    reason="CPU has no native bf16 matmul (no avx512_bf16/amx_bf16 in /proc/cpuinfo): bf16 autocast would be "
           "emulated, slow, and is not what precision='auto' uses here",
)


def _val_accuracy(task, precision: str) -> float:
    # a fixed schedule (no early stopping): precision is the only difference, not where members happen to stop
    cfg = MLPConfig(hidden=(64, 32), epochs=5, patience=0, precision=precision)
    head = make_head(cfg, seeds=(0, 1, 2, 3)).fit(task.train, stop=task.stop)
    scores = score_split(head, task.val).mean(0)
    p = task.val.pairs
    return pair_metrics(scores[p.a], scores[p.b], p.y)["accuracy"]


def test_bf16_matches_fp32_validation_accuracy():
    # 2,000 validation pairs (20 prompts × 100), so one point of accuracy is 20 pairs, not sampling noise
    data = synth(SynthConfig(dim=512, train_prompts=300, test_prompts=40, test_responses=40))
    task = make_task(data, TaskConfig(eval_pairs_per_prompt=100))
    fp32 = _val_accuracy(task, "fp32")
    bf16 = _val_accuracy(task, "bf16")
    assert fp32 > 0.55, f"fp32 head learned nothing (val accuracy {fp32:.3f}); the parity check would be vacuous"
    assert abs(bf16 - fp32) <= 0.01, f"bf16 val accuracy {bf16:.4f} vs fp32 {fp32:.4f}: differ by more than 1 point"
