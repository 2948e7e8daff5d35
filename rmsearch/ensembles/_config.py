"""One ensemble configuration: the unit `rmsearch evaluate` trains and the search's points describe.

A point is a flat dict whose keys are the Optuna parameter names; YAML files may nest them instead:

    head: mlp               # one of linear, mlp, mlp_clf, gbdt
    members: 5
    aggregation: uwo        # mean, min, median, uwo, lcb
    uwo.lambda: 1.0         # or  uwo: {lambda: 1.0}
    standardize: true
    seed: 0
    mlp.hidden: [64, 32]    # or  mlp: {hidden: [64, 32], bootstrap: true}
    mlp.bootstrap: true
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rmsearch.ensembles._aggregate import AGGREGATIONS, PARAM_NAMES, Aggregation
from rmsearch.errors import ConfigError
from rmsearch.heads import (
    HEAD_CONFIGS,
    HeadConfig,
    MLPConfig,
    example_text,
    typed_value,
)

TOP_KEYS = ("head", "members", "aggregation", "standardize", "seed")


def flatten(values: dict, prefix: str = "") -> dict:
    """{'mlp': {'hidden': [..]}} -> {'mlp.hidden': [..]}; lists stay values."""
    out = {}
    for key, val in values.items():
        name = f"{prefix}{key}"
        if isinstance(val, dict):
            out.update(flatten(val, f"{name}."))
        else:
            out[name] = val
    return out


TOP_TYPES = {"members": (int, 8), "seed": (int, 0), "standardize": (bool, True)}
"""Type and an example value of each top-level key besides head and aggregation."""


def check_value(key, value, style: str | None = None):
    """The typed value of one configuration key: a top-level key, '<head>.<field>' (any head type's, active or
    not) or '<aggregation>.<param>'. Unknown keys, unknown head types or aggregations, and values of the wrong
    type are ConfigErrors naming the key, the value, what it takes and an example (`style`: how the example is
    written, see `rmsearch.heads._base.example_text`). The one type check of configurations, whether they come
    from `--set`, a `--config` file, a search point or code."""
    if not isinstance(key, str):
        raise ConfigError(f"configuration key {key!r} must be a string like 'members' or 'mlp.hidden'.")
    if key in ("head", "aggregation"):
        known = HEAD_CONFIGS if key == "head" else AGGREGATIONS
        if not isinstance(value, str) or value not in known:
            what = "head type" if key == "head" else "aggregation"
            raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(known)}, e.g. "
                              f"{example_text(key, 'mlp' if key == 'head' else 'uwo', style)}.")
        return value
    if key in TOP_TYPES:
        kind, example = TOP_TYPES[key]
        return typed_value(key, value, kind, example, style)
    group, _, name = key.partition(".")
    if group in HEAD_CONFIGS and name:
        return HEAD_CONFIGS[group].typed(name, value, style)
    if group in AGGREGATIONS and name and name == PARAM_NAMES.get(group):
        return typed_value(key, value, float, 1.0, style)
    raise ConfigError(
        f"unknown key {key!r} in ensemble configuration; top-level keys are {', '.join(TOP_KEYS)}, "
        f"head parameters are '<head>.<name>' (e.g. mlp.hidden) and aggregation parameters "
        f"'uwo.lambda' or 'lcb.kappa'."
    )


@dataclass(frozen=True)
class EnsembleConfig:
    head: HeadConfig = field(default_factory=MLPConfig)
    """The head type and its hyperparameters, shared by every member."""
    members: int = 5
    """Number of members; member i is trained from seed `seed·1000 + i`."""
    aggregation: Aggregation = Aggregation()
    """How member scores combine into one reward."""
    standardize: bool = True
    """Standardize each member's scores by its mean and std on training rows before aggregating."""
    seed: int = 0
    """Base seed of the members."""

    def validate(self) -> "EnsembleConfig":
        if not 1 <= self.members <= 999:
            raise ConfigError(f"members={self.members} must be between 1 and 999.")
        self.aggregation.validate()
        self.head.validate()
        return self

    @property
    def member_seeds(self) -> tuple[int, ...]:
        return tuple(self.seed * 1000 + i for i in range(self.members))

    @classmethod
    def from_point(cls, values: dict) -> "EnsembleConfig":
        """Build from a point (flat or nested); every value passes `check_value` (type, with an example), the
        result `validate` (ranges)."""
        flat = {key: check_value(key, val) for key, val in flatten(values).items()}
        kind = flat.get("head", "mlp")
        agg = flat.get("aggregation", "mean")
        head_values, param = {}, None
        for key, val in flat.items():
            group, _, name = key.partition(".")
            if group == kind and name:
                head_values[name] = val
            elif group == agg and name == PARAM_NAMES.get(agg):
                param = val
        return cls(
            head=HEAD_CONFIGS[kind].from_dict(head_values),
            members=flat.get("members", 5),
            aggregation=Aggregation(agg, 1.0 if param is None else param),
            standardize=flat.get("standardize", True),
            seed=flat.get("seed", 0),
        ).validate()

    def to_point(self) -> dict:
        out = {"head": self.head.kind, "members": self.members, "aggregation": self.aggregation.name,
               "standardize": self.standardize, "seed": self.seed}
        out.update({f"{self.head.kind}.{k}": v for k, v in self.head.to_dict().items() if k != "kind"})
        if self.aggregation.name in PARAM_NAMES:
            out[f"{self.aggregation.name}.{PARAM_NAMES[self.aggregation.name]}"] = self.aggregation.param
        return out
