"""What a space's keys are: an aggregation parameter's default range, a head field's value type, and whether a
head field does anything at a point."""

from __future__ import annotations

from dataclasses import fields

from rmsearch.ensembles import (
    AGGREGATORS,
    PARAM_NAMES,
    TOP_KEYS,
    EnsembleConfig,
    flatten,
)
from rmsearch.errors import ConfigError
from rmsearch.heads import HEAD_CONFIGS


def _default_range(key: str, spec: dict, where: str) -> dict:
    """`{range: default}` of an aggregation parameter: its registered search range, as a distribution."""
    group, _, name = key.partition(".")
    param = AGGREGATORS[group].param if group in AGGREGATORS else None
    if spec != {"range": "default"} or param is None or param.name != name:
        raise ConfigError(f"{where}: {{range: default}} (on its own) gives an aggregation parameter "
                          f"({', '.join(f'{a}.{n}' for a, n in PARAM_NAMES.items())}) its default search range.")
    return param.space_entry()


def _field_kind(group: str, name: str) -> type:
    """The Python type of a parameter's values: bool, int, float, tuple or str."""
    if group in AGGREGATORS:
        return float
    default = next(f.default for f in fields(HEAD_CONFIGS[group]) if f.name == name)
    return type(default)


def _inapplicable(key: str, point: dict) -> str | None:
    """Why head parameter `key` ('linear.lr') does nothing at `point` (its head's other fields as set there, or at
    their defaults), or None (`HeadConfig.inapplicable`)."""
    group, _, name = key.partition(".")
    if group not in HEAD_CONFIGS or not name:
        return None
    values = {k.partition(".")[2]: v for k, v in point.items() if k.partition(".")[0] == group}
    return HEAD_CONFIGS[group].inapplicable(name, values)
