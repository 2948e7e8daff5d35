"""The head protocol: every reward head type is one module implementing `Head`.

A head maps an embedding (D,) to a scalar reward. One `Head` object holds one member per seed: independently
trained copies of one configuration (an ensemble group), trained together where the type allows it. A member
is identified by (config, seed) alone, whatever group it was trained in, so a cache can reuse it.

    head = make_head(MLPConfig(hidden=(256, 128)), seeds=(0, 1, 2))        # hyperparameters only
    head.fit(task.train, stop=task.stop)                                    # returns self
    head.score(X)            # (members, n) float32 rewards
    head.member_arrays()     # [ {name: ndarray}, ... ] one dict per member: all learned state
    type(head).from_arrays(config, [arrays, ...])                           # rebuild, identical scores

Every member's learned state is a dict of plain numpy arrays, scored without torch by
`rmsearch.heads.forward(kind, arrays, X)`; that is what export writes and what loading reads back.

Each head type is one `HeadKind` in the registry `KINDS` (see `register_head`): its config class, its head class
(imported when first asked for) and its torch-free forward. The config, class and forward lookups by name all read
the registry, so adding a head type is one registration.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from importlib import import_module
from typing import ClassVar

import numpy as np

from rmsearch.errors import ConfigError


WANT = {tuple: "a list of integers", bool: "true or false", int: "an integer", float: "a number", str: "a string"}
"""How a message names each value type a configuration key takes."""


def example_text(key: str, example, style: str | None = None) -> str:
    """An example setting of `key`, written for where the value came from: `style` "yaml" (a configuration or
    space file), "set" (a `--set` option, quoted for the shell where needed) or None (plain key=value)."""
    value = f"[{', '.join(map(str, example))}]" if isinstance(example, (list, tuple)) else (
        str(example).lower() if isinstance(example, bool) else str(example))
    if style == "yaml":
        return f"{key}: {value}"
    if style == "set":
        text = f"{key}={value}"
        return f"--set '{text}'" if any(c in text for c in " []{},") else f"--set {text}"
    return f"{key}={value}"


def typed_value(key: str, value, kind: type, example, style: str | None = None):
    """`value` as the type `kind` (tuple of ints, bool, int, float or str) of configuration key `key`, or a
    ConfigError naming the key, the value, the expected type and an example. The one check every configuration
    value passes (command line, YAML files, JSON points, export manifests).

    Accepted: lists/tuples of integers for tuple keys; true/false only for bools (not 0/1, not "yes"); integers
    or whole floats (e.g. 1e3) for ints; numbers, or strings a float parses (YAML 1.1 reads `1e-3` as a
    string), for floats; strings for strings."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()

    ok = False
    if kind is tuple:
        ok = isinstance(value, (list, tuple)) and all(is_int(v) for v in value)
        if ok:
            value = tuple(int(v) for v in value)
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = is_int(value)
        if ok:
            value = int(value)
    elif kind is float:
        if isinstance(value, str):
            try:
                value, ok = float(value), True
            except ValueError:
                ok = False
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                value = float(value)
    elif kind is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        what = WANT.get(kind, kind.__name__) + (" (one width per hidden layer)" if kind is tuple else "")
        raise ConfigError(f"{key}={value!r} is {_describe(value)}, but {key} takes {what}; write e.g. "
                          f"{example_text(key, example, style)}.")
    return value


def _all_ints(items) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in items)


def _describe(value) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number" if math.isfinite(value) else "not a finite number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list" if _all_ints(value) else "a list with non-integer items"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def check_fields(config, checks: list[tuple[bool, str]]):
    """`config` where every (ok, message) of `checks` holds; else a ConfigError naming the head kind, the first
    failed check and the configuration's values."""
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"head '{config.kind}': {msg} (got {config.to_dict()}).")
    return config


@dataclass(frozen=True)
class HeadConfig:
    """Base of every head type's typed config. Subclasses add their fields, each with a docstring."""

    kind: ClassVar[str] = ""
    switches: ClassVar[tuple[str, ...]] = ()
    """Fields whose value decides whether other fields apply (`inapplicable`); a space suggests them first."""

    def validate(self) -> "HeadConfig":
        return self

    @classmethod
    def inapplicable(cls, name: str, values: dict) -> str | None:
        """Why field `name` does nothing given the other `values` (plain field -> value; missing ones at their
        defaults), or None where it applies. Such a field leaves the space, the head-cache key and the manifest,
        and setting it is refused where a user sets it. Every field applies unless a head type says otherwise."""
        return None

    def resolved(self, dim: int, device: str = "cpu", gpu_bf16: bool | None = None) -> "HeadConfig":
        """The config with every machine-dependent choice ('auto') decided for inputs of `dim` dims trained on
        `device` ('cpu' or 'cuda'; `gpu_bf16`: whether that GPU has native bf16 matmul, None: ask this machine's);
        the config itself where there is none."""
        return self

    def training_device(self, device: str) -> str:
        """Where members of this config train when a launch asks for `device` ('cpu' or 'cuda'): 'cpu' for head
        types without a GPU path (trees, laplace, prototype), which train on the CPU under any device."""
        return "cpu"

    def to_dict(self) -> dict:
        """Plain values of the fields that apply (`inapplicable`), with 'kind': what keys the head cache."""
        values = asdict(self)
        return {"kind": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()
                                      if self.inapplicable(k, values) is None}}

    @classmethod
    def typed(cls, name: str, value, style: str | None = None):
        """`value` as the type of field `name` (see `typed_value`); unknown names are refused with the list."""
        known = {f.name: f for f in fields(cls)}
        if name not in known:
            raise ConfigError(f"head '{cls.kind}' has no parameter {name!r}; its parameters are "
                              f"{', '.join(sorted(known))}.")
        default = known[name].default
        example = [64, 32] if isinstance(default, tuple) else default
        return typed_value(f"{cls.kind}.{name}", value, type(default), example, style)

    @classmethod
    def from_dict(cls, values: dict) -> "HeadConfig":
        """Build from plain values (YAML, JSON, Optuna params), refusing unknown keys by name and values of the
        wrong type with the expected type and an example."""
        values = {k: v for k, v in values.items() if k != "kind"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(map(str, values)) - known)
        if unknown:
            raise ConfigError(
                f"head '{cls.kind}' has no parameter {', '.join(map(repr, unknown))}; its parameters are "
                f"{', '.join(sorted(known))}."
            )
        return cls(**{name: cls.typed(name, val) for name, val in values.items()}).validate()


class Head(ABC):
    """Protocol for reward heads: construct with hyperparameters only, `fit` on pairs, `score` embeddings."""

    kind: ClassVar[str]
    Config: ClassVar[type[HeadConfig]]

    def __init__(self, config: HeadConfig, seeds: tuple[int, ...] = (0,)):
        self.config = config
        self.seeds = tuple(seeds)

    @property
    def members(self) -> int:
        return len(self.seeds)

    @abstractmethod
    def fit(self, train, stop=None) -> "Head":
        """Train all members on `train` (Pairs); `stop` (Pairs) drives early stopping where the type has it.
        Sets `history_`: a list of per-epoch dicts of per-member arrays (train/loss, val/nll, val/accuracy)."""

    def member_arrays(self) -> list[dict[str, np.ndarray]]:
        """All learned state, one dict of named numpy arrays per member (what `fit` left in `arrays_`)."""
        self._check_fitted()
        return self.arrays_

    @classmethod
    def from_arrays(cls, config: HeadConfig, arrays: list[dict[str, np.ndarray]]) -> "Head":
        """Rebuild a fitted head from `member_arrays()` output."""
        head = cls(config, seeds=tuple(range(len(arrays))))
        head.arrays_ = [dict(a) for a in arrays]
        return head

    def score(self, X: np.ndarray) -> np.ndarray:
        """(members, n) float32 rewards for the rows of X (n, D)."""
        member_forward = head_kind(self.kind).forward
        return np.stack([member_forward(a, X) for a in self.member_arrays()])

    def _check_fitted(self):
        if not hasattr(self, "arrays_"):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet. Call 'fit' with training pairs first.")


@dataclass(frozen=True)
class HeadKind:
    """One head type: its typed config (whose `kind` names the type), its head class, named 'module:Class' and
    imported when first asked for (so registering a type loads neither torch nor scikit-learn), and `forward`,
    which scores one member's arrays (n, D) -> (n,) float32 with numpy alone: what exported ensembles run."""

    config: type[HeadConfig]
    head: str
    forward: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]
    size: Callable[[dict[str, np.ndarray]], int] | None = None
    """One member's size in learnable numbers, from its arrays (`parameters`); None counts every entry of
    every floating-point array, which suits a head whose arrays are all learned."""

    def parameters(self, arrays: dict[str, np.ndarray]) -> int:
        """One member's learnable numbers: weights and biases of a network, split thresholds and leaf values of
        trees; never input-normalisation statistics, feature indices or tree structure. Comparable across kinds."""
        if self.size is not None:
            return int(self.size(arrays))
        return int(sum(np.asarray(a).size for a in arrays.values() if np.asarray(a).dtype.kind == "f"))

    @property
    def name(self) -> str:
        return self.config.kind

    def head_class(self) -> type[Head]:
        module, name = self.head.split(":")
        return getattr(import_module(module), name)


KINDS: dict[str, HeadKind] = {}
"""The registered head types by name, in registration order (the order messages list them in)."""


def register_head(kind: HeadKind) -> HeadKind:
    """Add a head type to `KINDS`; a name already taken is an error."""
    if not kind.name:
        raise ValueError(f"cannot register {kind.config.__name__}: it sets no `kind` name.")
    if kind.name in KINDS:
        raise ValueError(f"head type {kind.name!r} is already registered.")
    KINDS[kind.name] = kind
    return kind


def head_kind(name: str) -> HeadKind:
    """The registered head type `name`; an unknown name is a ConfigError listing the known ones."""
    if name not in KINDS:
        raise ConfigError(f"unknown head type {name!r}; choose one of {', '.join(KINDS)}.")
    return KINDS[name]


class _KindConfigs(Mapping):
    """Head type name -> its config class, read from `KINDS` as it stands."""

    def __getitem__(self, name: str) -> type[HeadConfig]:
        return KINDS[name].config

    def __contains__(self, name) -> bool:
        return name in KINDS

    def __iter__(self) -> Iterator[str]:
        return iter(KINDS)

    def __len__(self) -> int:
        return len(KINDS)

    def __repr__(self) -> str:
        return f"HEAD_CONFIGS({dict(self)!r})"


HEAD_CONFIGS: Mapping[str, type[HeadConfig]] = _KindConfigs()
"""Every registered head type's config class by name (a read-only view of `KINDS`)."""
