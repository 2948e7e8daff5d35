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
from rmsearch.heads._configs import HEAD_CONFIGS, HeadConfig, MLPConfig

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
        flat = flatten(values)
        kind = flat.get("head", "mlp")
        if kind not in HEAD_CONFIGS:
            raise ConfigError(f"unknown head type {kind!r}; choose one of {', '.join(HEAD_CONFIGS)}.")
        agg = flat.get("aggregation", "mean")
        if agg not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}.")
        head_values, param = {}, None
        for key, val in flat.items():
            if key in TOP_KEYS:
                continue
            group, _, name = key.partition(".")
            if group == kind and name:
                head_values[name] = val
            elif group == agg and name == PARAM_NAMES.get(agg):
                param = float(val)
            elif group in HEAD_CONFIGS or group in AGGREGATIONS:
                continue  # a parameter of another head or aggregation: inactive in this point
            else:
                raise ConfigError(
                    f"unknown key {key!r} in ensemble configuration; top-level keys are {', '.join(TOP_KEYS)}, "
                    f"head parameters are '<head>.<name>' (e.g. mlp.hidden) and aggregation parameters "
                    f"'uwo.lambda' or 'lcb.kappa'."
                )
        return cls(
            head=HEAD_CONFIGS[kind].from_dict(head_values),
            members=int(flat.get("members", 5)),
            aggregation=Aggregation(agg, 1.0 if param is None else param),
            standardize=bool(flat.get("standardize", True)),
            seed=int(flat.get("seed", 0)),
        ).validate()

    def to_point(self) -> dict:
        out = {"head": self.head.kind, "members": self.members, "aggregation": self.aggregation.name,
               "standardize": self.standardize, "seed": self.seed}
        out.update({f"{self.head.kind}.{k}": v for k, v in self.head.to_dict().items() if k != "kind"})
        if self.aggregation.name in PARAM_NAMES:
            out[f"{self.aggregation.name}.{PARAM_NAMES[self.aggregation.name]}"] = self.aggregation.param
        return out
