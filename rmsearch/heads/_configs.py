"""Typed configs of every head type, documented field by field. Torch-free, so spaces, the CLI and export
can use them without loading torch. The same objects give the Optuna parameter names (`<kind>.<field>`),
the TensorBoard hparams and the export manifest. Each type is registered here (see `HeadKind`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from rmsearch.errors import ConfigError
from rmsearch.heads._base import HeadConfig, HeadKind, check_fields, head_kind, register_head
from rmsearch.heads._forward import mlp_forward, mlp_parameters
from rmsearch.heads._trees import tree_forward, tree_parameters


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor a /proc/cpuinfo text lists ('flags' on x86, 'Features' on Arm);
    empty where it lists none."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This machine's CPU feature flags, from /proc/cpuinfo; empty where there is none (macOS, Windows)."""
    try:
        return parse_cpu_flags(Path("/proc/cpuinfo").read_text())
    except OSError:
        return frozenset()


def cpu_has_bf16() -> bool:
    """Native bf16 matmul (AVX512-BF16 or AMX); without it bf16 autocast is slower than fp32."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


BF16_MIN_DIM = 512
"""'auto' uses bf16 on a CPU from this input dim up: on small layers autocast's casts cost more than bf16 matmuls
save (measured on a 2-core AVX512-BF16 CPU: 8 members, D=32, hidden 64-32, bf16 ran 7× slower than fp32)."""


@lru_cache(maxsize=1)
def gpu_has_bf16() -> bool:
    """Native bf16 matmul on this machine's first CUDA GPU (bf16 tensor cores: compute capability 8.0, Ampere, and
    later); False without a GPU torch can see."""
    import torch

    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)


def auto_precision(dim: int, device: str = "cpu", gpu_bf16: bool | None = None) -> str:
    """What precision 'auto' means for inputs of `dim` dims trained on `device`: 'bf16' where that device has
    native bf16 matmul (a GPU at every size, a CPU from `BF16_MIN_DIM` dims up), else 'fp32'. `gpu_bf16` says
    whether the GPU has it (as a launch found on a worker's GPU); None asks this machine's GPU."""
    if device == "cpu":
        return "bf16" if dim >= BF16_MIN_DIM and cpu_has_bf16() else "fp32"
    return "bf16" if (gpu_has_bf16() if gpu_bf16 is None else gpu_bf16) else "fp32"


@dataclass(frozen=True)
class TorchHeadConfig(HeadConfig):
    """Shared by the torch heads (linear, mlp, mlp_clf)."""

    hidden: tuple[int, ...] = (256, 128)
    """Hidden layer widths, ReLU between them; () is a linear head."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_schedule: str = "constant"
    """'constant', or 'cosine': the learning rate falls from `lr` to 0 over `epochs` (half a cosine)."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW)."""
    dropout: float = 0.0
    """Dropout on hidden activations during training."""
    epochs: int = 30
    """Most passes over the training pairs."""
    batch_size: int = 1024
    """Pairs per optimizer step (each pair once, in one ordering)."""
    orderings: int = 1
    """Samples of each pair per epoch: 1, or 2 as the seed paper's code, which trains on both orderings of every pair
    as separate samples in random batches (the Bradley-Terry loss of (b, a, 1−y) is that of (a, b, y), so the second
    ordering is the same pair drawn again). With 2 an epoch has twice the steps at the same `batch_size`."""
    patience: int = 3
    """Early stopping: a member stops after this many checks without a better early-stop loss; its best
    weights are restored. 0 disables early stopping."""
    stop_rule: str = "best"
    """'best': stop after `patience` checks without a better early-stop loss and restore the best weights. 'rising':
    the seed paper code's rule: stop when the latest early-stop loss exceeds each of the `patience` before it (so
    never before check `patience` + 1), keeping the last weights."""
    holdout: float = 0.0
    """Each member early-stops on its own random share of the pairs (drawn from its seed) instead of the task's
    early-stop pairs, and trains on the rest of the training and early-stop pairs together, as the seed paper's code
    does with 0.2. 0: every member trains on the training pairs and stops on the early-stop pairs."""
    eval_steps: int = 0
    """Check the early-stop loss (and write a history record) every this many optimizer steps; 0 = once per
    epoch. Checking within an epoch lets members stop before a whole pass when they converge early."""
    label_smoothing: float = 0.0
    """Targets become y·(1−ε) + ε/2."""
    bootstrap: bool = False
    """Each member weights pairs by its own Poisson(1) draw (a bootstrap resample)."""
    feature_fraction: float = 1.0
    """Each member sees a random subset of this share of embedding dims (random subspace)."""
    normalize: bool = True
    """Standardize inputs with the training rows' mean and std (stored with the member)."""
    precision: str = "auto"
    """'fp32', 'bf16' (autocast) or 'auto' (bf16 where the CPU has native bf16 matmul and the input dim is
    at least 512, as smaller layers run faster in fp32; on a GPU, bf16 where it has bf16 tensor cores)."""

    def resolved(self, dim: int, device: str = "cpu", gpu_bf16: bool | None = None) -> "TorchHeadConfig":
        """'auto' precision decided here (`auto_precision`), for inputs of `dim` dims on `device`: by this machine's
        CPU, or by `gpu_bf16` on a GPU. The config the member is keyed and trained by, so members trained on other
        machines of a cluster are what their key says."""
        if self.precision != "auto":
            return self
        return replace(self, precision=auto_precision(dim, device, gpu_bf16))

    def training_device(self, device: str) -> str:
        """The torch heads train where they are asked to."""
        return device

    def validate(self) -> "TorchHeadConfig":
        checks = [
            (all(h >= 1 for h in self.hidden), "hidden widths must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.lr_schedule in ("constant", "cosine"), "lr_schedule must be 'constant' or 'cosine'"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.orderings in (1, 2), "orderings must be 1 or 2"),
            (self.patience >= 0, "patience must be >= 0"),
            (self.stop_rule in ("best", "rising"), "stop_rule must be 'best' or 'rising'"),
            (0 <= self.holdout < 1, "holdout must be in [0, 1)"),
            (self.holdout == 0 or self.patience > 0, "holdout needs early stopping (patience > 0): the held-out "
                                                     "pairs are only for it"),
            (self.eval_steps >= 0, "eval_steps must be >= 0 (0 = once per epoch)"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 < self.feature_fraction <= 1, "feature_fraction must be in (0, 1]"),
            (self.precision in ("auto", "fp32", "bf16"), "precision must be 'auto', 'fp32' or 'bf16'"),
        ]
        return check_fields(self, checks)


@dataclass(frozen=True)
class LinearConfig(TorchHeadConfig):
    """Bradley-Terry on embeddings: logistic regression on score differences."""

    kind = "linear"
    hidden: tuple[int, ...] = ()
    lr: float = 1e-2
    """Adam learning rate (higher than the MLPs': the problem is convex and small)."""
    solver: str = "adam"
    """'adam': minibatch AdamW as the other torch heads (lr, epochs, weight_decay, early stopping apply). 'lbfgs':
    the exact L2-penalized logistic regression on pair differences (scikit-learn's lbfgs on hard labels; `C`,
    `normalize`, `bootstrap` and `feature_fraction` apply, the minibatch settings and label smoothing do not), the
    same model as `LogisticRegression(C=C)` on chosen − rejected. It has no early stopping, so it trains on the
    early-stopping pairs as well."""
    C: float = 1.0
    """lbfgs: inverse L2 strength, as scikit-learn's C (½‖w‖² + C·Σ log-loss over both orientations of each pair)."""

    switches = ("solver",)
    MINIBATCH = ("lr", "lr_schedule", "weight_decay", "dropout", "epochs", "batch_size", "orderings", "patience",
                 "stop_rule", "holdout", "eval_steps", "label_smoothing", "precision")
    """What only solver 'adam' (minibatch training) uses; `C` is what only 'lbfgs' uses."""

    @classmethod
    def inapplicable(cls, name: str, values: dict) -> str | None:
        solver = values.get("solver", "adam")
        if solver == "lbfgs" and name in cls.MINIBATCH:
            return ("solver 'lbfgs' fits the logistic regression exactly, without minibatches, epochs, early "
                    "stopping or weight decay (C is its regularization)")
        if solver != "lbfgs" and name == "C":
            return "C is the regularization of solver 'lbfgs'; solver 'adam' uses weight_decay"
        return None

    def training_device(self, device: str) -> str:
        """Solver 'lbfgs' is scikit-learn's, on the CPU; 'adam' trains where it is asked to."""
        return "cpu" if self.solver == "lbfgs" else device

    def validate(self):
        if self.hidden:
            raise ConfigError(f"head 'linear' has no hidden layers (got hidden={list(self.hidden)}); use head 'mlp'.")
        if self.solver not in ("adam", "lbfgs"):
            raise ConfigError(f"head 'linear': solver must be 'adam' or 'lbfgs' (got {self.solver!r}).")
        if not self.C > 0:
            raise ConfigError(f"head 'linear': C must be > 0 (got {self.C}).")
        if self.solver == "lbfgs" and self.holdout:
            raise ConfigError("head 'linear': solver 'lbfgs' has no early stopping, so holdout does not apply; "
                              "leave holdout at 0 or use solver 'adam'.")
        return super().validate()


@dataclass(frozen=True)
class MLPConfig(TorchHeadConfig):
    """Bradley-Terry MLP: P(a ≻ b) = σ(r(a) − r(b))."""

    kind = "mlp"


@dataclass(frozen=True)
class MLPClassifierConfig(TorchHeadConfig):
    """Pointwise classifier: winner = 1, loser = 0; the logit is the reward."""

    kind = "mlp_clf"


@dataclass(frozen=True)
class GBDTConfig(HeadConfig):
    """Gradient-boosted trees (scikit-learn HistGradientBoostingClassifier) on pointwise labels; the raw
    decision value (log-odds) is the reward."""

    kind = "gbdt"
    max_iter: int = 100
    """Boosting rounds (trees)."""
    learning_rate: float = 0.1
    """Shrinkage per tree."""
    max_leaf_nodes: int = 31
    """Leaves per tree."""
    max_depth: int = 0
    """Depth limit per tree; 0 means none."""
    min_samples_leaf: int = 20
    """Fewest training rows in a leaf."""
    l2_regularization: float = 0.0
    """L2 penalty on leaf values."""
    early_stopping: bool = True
    """Stop adding trees when the loss on the early-stop pairs' rows stops improving (10 rounds)."""
    bootstrap: bool = False
    """Each member weights rows by its own Poisson(1) draw."""
    feature_fraction: float = 1.0
    """Each member sees a random subset of this share of embedding dims (random subspace)."""
    max_pairs: int = 50_000
    """Each member trains on at most this many pairs, a random subset drawn from its seed (0: all), and stops early
    on at most a quarter as many. Bounds the fit's memory: scikit-learn holds the rows as float64, 16·D bytes a pair
    (1.6 GB at D = 2,048)."""

    def validate(self) -> "GBDTConfig":
        checks = [
            (self.max_iter >= 1, "max_iter must be >= 1"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.max_leaf_nodes >= 2, "max_leaf_nodes must be >= 2"),
            (self.max_depth >= 0, "max_depth must be >= 0 (0 = no limit)"),
            (self.min_samples_leaf >= 1, "min_samples_leaf must be >= 1"),
            (self.l2_regularization >= 0, "l2_regularization must be >= 0"),
            (0 < self.feature_fraction <= 1, "feature_fraction must be in (0, 1]"),
            (self.max_pairs >= 0, "max_pairs must be >= 0 (0 = all pairs)"),
        ]
        return check_fields(self, checks)


def head_config(kind: str, **values) -> HeadConfig:
    """Typed config for head type `kind` from plain values; unknown kinds and keys are errors that list the options."""
    return head_kind(kind).config.from_dict(values)


# the head types: one registration each (config, head class imported when first asked for, torch-free forward)
register_head(HeadKind(LinearConfig, "rmsearch.heads.linear:LinearHead", mlp_forward, mlp_parameters))
register_head(HeadKind(MLPConfig, "rmsearch.heads.mlp:MLPHead", mlp_forward, mlp_parameters))
register_head(HeadKind(MLPClassifierConfig, "rmsearch.heads.mlp_clf:MLPClassifierHead", mlp_forward, mlp_parameters))
register_head(HeadKind(GBDTConfig, "rmsearch.heads.gbdt:GBDTHead", tree_forward, tree_parameters))
