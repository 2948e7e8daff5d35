"""Reward heads: one module per type behind the `Head` protocol (see `_base`).

Configs import without torch; a head class is imported when first asked for, so export loading and the CLI's
light commands stay torch-free.
"""

import inspect
from importlib import import_module

from rmsearch.errors import ConfigError
from rmsearch.heads._base import Head, HeadConfig
from rmsearch.heads._configs import (
    HEAD_CONFIGS,
    GBDTConfig,
    LinearConfig,
    MLPClassifierConfig,
    MLPConfig,
    TorchHeadConfig,
    head_config,
)
from rmsearch.heads._forward import forward

_CLASSES = {
    "linear": "rmsearch.heads.linear:LinearHead",
    "mlp": "rmsearch.heads.mlp:MLPHead",
    "mlp_clf": "rmsearch.heads.mlp_clf:MLPClassifierHead",
    "gbdt": "rmsearch.heads.gbdt:GBDTHead",
}


def head_class(kind: str) -> type[Head]:
    if kind not in _CLASSES:
        raise ConfigError(f"unknown head type {kind!r}; choose one of {', '.join(_CLASSES)}.")
    module, name = _CLASSES[kind].split(":")
    return getattr(import_module(module), name)


def make_head(config: HeadConfig, seeds=(0,), device: str = "cpu") -> Head:
    """An unfitted head of `config`'s type with one member per seed. `device` ('cpu', 'cuda', 'cuda:N') is where
    torch heads train; the other types run on the CPU only."""
    cls = head_class(config.kind)
    if device == "cpu":
        return cls(config, seeds=tuple(seeds))
    if "device" not in inspect.signature(cls.__init__).parameters:
        raise ConfigError(f"head '{config.kind}' trains on the CPU only (asked for device {device!r}); omit the device.")
    return cls(config, seeds=tuple(seeds), device=device)


from rmsearch.heads._base import example_text, typed_value

__all__ = [
    "GBDTConfig", "HEAD_CONFIGS", "Head", "HeadConfig", "LinearConfig", "MLPClassifierConfig", "MLPConfig",
    "TorchHeadConfig", "example_text", "forward", "head_class", "head_config", "make_head", "typed_value",
]
