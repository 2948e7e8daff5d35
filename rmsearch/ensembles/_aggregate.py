"""Aggregations over member scores s_1..s_k (rows of a (k, n) array), after standardization.

mean    the average
min     worst case over members
median  the middle member
uwo     mean − λ·variance (population variance; uncertainty-weighted optimization, Coste et al. 2023)
lcb     mean − κ·std (a lower confidence bound); where members carry their own predictive variance (a `laplace`
        head's posterior), std is the mixture's: √(variance over members + mean of the members' own variances)

Each is one `Aggregator` in the registry `AGGREGATORS` (a small object per strategy behind one interface, as
Optuna's samplers are): its name, its function, and its one parameter if it has one (`AggregatorParam`: the name
spaces, points and manifests use, the symbol labels show, the default, the least value allowed and the range a
search space gives it by default). Configurations, search spaces, exports and report labels read them from here,
so a new aggregation is one `register_aggregator(Aggregator(...))` below. `Aggregation(name, param)` is one
aggregation with its parameter's value: what configurations, ensembles and exports hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from rmsearch.errors import ConfigError


@dataclass(frozen=True)
class AggregatorParam:
    """The one parameter of an aggregation that has one."""

    name: str
    """How spaces, points and manifests name it: uwo.lambda, {"name": "uwo", "lambda": 1.0}."""
    symbol: str
    """How labels of tables and plots write it: uwo (λ=1)."""
    default: float
    """The value when none is given."""
    search: tuple[str, float, float]
    """(distribution, low, high): the range a search space gives it with `{range: default}`; the distribution is
    float or log (see `rmsearch.spaces`)."""
    minimum: float = 0.0
    """The least value allowed; values must also be finite."""

    def allows(self, value) -> bool:
        """Whether `value` is a finite number >= minimum."""
        try:
            return bool(np.isfinite(value) and value >= self.minimum)
        except TypeError:
            return False

    def space_entry(self) -> dict:
        """The search range as a space file writes it: {"log": [0.1, 10.0]}."""
        dist, low, high = self.search
        return {dist: [low, high]}


@dataclass(frozen=True)
class Aggregator:
    """One aggregation: an entry of the registry `AGGREGATORS`."""

    name: str
    function: Callable[..., np.ndarray]
    """(k, n) float64 member scores, and the parameter's value where there is a parameter -> (n,) scores."""
    param: AggregatorParam | None = None
    """The one parameter, or None."""
    unanimous: bool = True
    """Whether members that all give the same scores get those scores back (a sum of members would not)."""
    own_variance: bool = False
    """Whether `function` takes the members' own predictive variances (k, n) as a third argument (None: none)."""

    def __call__(self, z: np.ndarray, value: float | None = None, own_var: np.ndarray | None = None) -> np.ndarray:
        """Aggregate member scores z (k, n) -> (n,); `value` is the parameter's (None: its default); `own_var`
        (k, n), the members' own predictive variances in the units of z, is used by aggregations that take it."""
        z = np.asarray(z, dtype=np.float64)
        if self.param is None:
            return self.function(z)
        value = self.param.default if value is None else value
        if self.own_variance:
            return self.function(z, value, own_var)
        return self.function(z, value)

    def label(self, value: float | None = None) -> str:
        """The name in tables and plots: 'mean', 'uwo (λ=1)'."""
        if self.param is None:
            return self.name
        return f"{self.name} ({self.param.symbol}={self.param.default if value is None else value:g})"


AGGREGATORS: dict[str, Aggregator] = {}
"""Every aggregation by name, in the order they are listed to users."""


def register_aggregator(aggregator: Aggregator) -> Aggregator:
    """Add an aggregation to the registry (its name must be new); every user of aggregations sees it."""
    if aggregator.name in AGGREGATORS or "." in aggregator.name:
        raise ValueError(f"aggregation {aggregator.name!r}: registered already, or a name with a dot.")
    AGGREGATORS[aggregator.name] = aggregator
    return aggregator


register_aggregator(Aggregator("mean", lambda z: z.mean(0)))
register_aggregator(Aggregator("min", lambda z: z.min(0)))
register_aggregator(Aggregator("median", lambda z: np.median(z, axis=0)))
register_aggregator(Aggregator("uwo", lambda z, lam: z.mean(0) - lam * z.var(0),
                               AggregatorParam("lambda", "λ", default=1.0, search=("log", 0.1, 10.0))))
def total_std(z: np.ndarray, own_var: np.ndarray | None = None) -> np.ndarray:
    """(n,) std of the equal mixture of the members: √(population variance of z over members + mean own variance)
    (the law of total variance); without own variances, the spread over members alone."""
    var = np.asarray(z, np.float64).var(0)
    if own_var is not None:
        var = var + np.asarray(own_var, np.float64).mean(0)
    return np.sqrt(var)


register_aggregator(Aggregator("lcb", lambda z, kappa, own_var=None: z.mean(0) - kappa * total_std(z, own_var),
                               AggregatorParam("kappa", "κ", default=1.0, search=("float", 0.0, 3.0)),
                               own_variance=True))


def aggregator(name: str) -> Aggregator:
    """The registered aggregation `name`; a ConfigError naming the known ones otherwise."""
    try:
        return AGGREGATORS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown aggregation {name!r}; choose one of {', '.join(AGGREGATORS)}.") from None


class _ParamNames(Mapping):
    """aggregation name -> its parameter's name, for the aggregations that have one (a live view of the
    registry)."""

    def __getitem__(self, name: str) -> str:
        agg = AGGREGATORS[name]
        if agg.param is None:
            raise KeyError(name)
        return agg.param.name

    def __iter__(self) -> Iterator[str]:
        return (name for name, agg in AGGREGATORS.items() if agg.param is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


AGGREGATIONS = AGGREGATORS.keys()
"""The names of the registered aggregations (a live view of the registry)."""
PARAM_NAMES: Mapping[str, str] = _ParamNames()
"""The one parameter of each aggregation that has one, by the name spaces and manifests use for it."""


@dataclass(frozen=True)
class Aggregation:
    """A registered aggregation with its parameter's value."""

    name: str = "mean"
    param: float | None = None
    """λ for uwo, κ for lcb: the value of the aggregation's parameter (None: its registered default); unused by
    aggregations without one."""

    def __post_init__(self):
        if self.param is None:
            agg = AGGREGATORS.get(self.name) if isinstance(self.name, str) else None
            object.__setattr__(self, "param", agg.param.default if agg is not None and agg.param else 1.0)

    @property
    def aggregator(self) -> Aggregator:
        return aggregator(self.name)

    @property
    def label(self) -> str:
        """The name in tables and plots: 'mean', 'uwo (λ=1)'."""
        return self.aggregator.label(self.param)

    def validate(self) -> "Aggregation":
        param = self.aggregator.param
        if param is not None and not param.allows(self.param):
            raise ConfigError(f"aggregation {self.name}: {param.name}={self.param} must be >= {param.minimum:g}.")
        return self

    def to_dict(self) -> dict:
        out = {"name": self.name}
        param = self.aggregator.param
        if param is not None:
            out[param.name] = self.param
        return out

    def __call__(self, z: np.ndarray, own_var: np.ndarray | None = None) -> np.ndarray:
        return self.aggregator(z, self.param, own_var)


def aggregate(z: np.ndarray, name: str = "mean", param: float | None = None) -> np.ndarray:
    """Aggregate member scores z (k, n) -> (n,); `param` is the aggregation's parameter (None: its default)."""
    return aggregator(name)(z, param)


def standardize(scores: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """(k, n) raw member scores -> standardized with per-member (mean, std) rows of `stats` (k, 2)."""
    return (np.asarray(scores, np.float64) - stats[:, :1]) / stats[:, 1:2]


def score_stats(scores: np.ndarray) -> np.ndarray:
    """Per-member (mean, std) of raw scores on the training distribution, as a (k, 2) float64 array."""
    s = np.asarray(scores, np.float64)
    std = s.std(1)
    return np.stack([s.mean(1), np.where(std > 1e-12, std, 1.0)], 1)
