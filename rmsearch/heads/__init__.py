"""Reward heads: one module per type behind the `Head` protocol (see `_base`).

Each type is one registration (`register_head(HeadKind(config, "module:HeadClass", forward))`, see `_configs`);
configs, head classes and the torch-free forward are all looked up by name in that registry, `KINDS`. Configs
import without torch; a head class is imported when first asked for, so export loading and the CLI's light
commands stay torch-free.
"""

import inspect

from rmsearch.errors import ConfigError
from rmsearch.heads._base import HEAD_CONFIGS, KINDS, Head, HeadConfig, HeadKind, head_kind, register_head
from rmsearch.heads._configs import (
    GBDTConfig,
    LinearConfig,
    MLPClassifierConfig,
    MLPConfig,
    TorchHeadConfig,
    gpu_has_bf16,
    head_config,
)
from rmsearch.heads._forward import forward
from rmsearch.heads._uq import STD_FORWARDS, LaplaceConfig, PrototypeConfig, forward_std


def head_class(kind: str) -> type[Head]:
    """The head class of registered head type `kind`, imported now; an unknown `kind` is a ConfigError."""
    return head_kind(kind).head_class()


def make_head(config: HeadConfig, seeds=(0,), device: str = "cpu") -> Head:
    """An unfitted head of `config`'s type with one member per seed. `device` ('cpu', 'cuda', 'cuda:N') is where
    torch heads train; the other types run on the CPU only."""
    cls = head_class(config.kind)
    if device == "cpu":
        return cls(config, seeds=tuple(seeds))
    if "device" not in inspect.signature(cls.__init__).parameters:
        raise ConfigError(f"head '{config.kind}' trains on the CPU only (asked for device {device!r}); omit the "
                          f"device.")
    return cls(config, seeds=tuple(seeds), device=device)


from rmsearch.heads._base import example_text, typed_value

__all__ = [
    "GBDTConfig", "HEAD_CONFIGS", "KINDS", "Head", "HeadConfig", "HeadKind", "LaplaceConfig", "LinearConfig",
    "MLPClassifierConfig", "MLPConfig", "PrototypeConfig", "STD_FORWARDS", "TorchHeadConfig", "example_text", "forward",
    "forward_std", "gpu_has_bf16", "head_class", "head_config", "head_kind", "make_head",
    "register_head", "typed_value",
]
