"""Reward heads: one module per type behind the `Head` protocol (see `_base`).

Configs import without torch; a head class is imported when first asked for, so export loading and the CLI's
light commands stay torch-free.
"""

from importlib import import_module

from rmsearch.errors import ConfigError
from rmsearch.heads._base import Head, HeadConfig
from rmsearch.heads._configs import (
    HEAD_CONFIGS, GBDTConfig, LinearConfig, MLPClassifierConfig, MLPConfig, TorchHeadConfig, head_config,
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


def make_head(config: HeadConfig, seeds=(0,)) -> Head:
    """An unfitted head of `config`'s type with one member per seed."""
    return head_class(config.kind)(config, seeds=tuple(seeds))


__all__ = [
    "HEAD_CONFIGS", "GBDTConfig", "Head", "HeadConfig", "LinearConfig", "MLPClassifierConfig", "MLPConfig",
    "TorchHeadConfig", "forward", "head_class", "head_config", "make_head",
]
