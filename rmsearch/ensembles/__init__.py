"""Ensembles: aggregations over standardized member scores, ensemble configurations, greedy selection, and
the numpy-only `Ensemble` that exports load into. (Training a member group lives in `_train`, which imports
torch; it is imported where used.)"""

from rmsearch.ensembles._aggregate import (
    AGGREGATIONS,
    AGGREGATORS,
    PARAM_NAMES,
    Aggregation,
    Aggregator,
    AggregatorParam,
    aggregate,
    aggregator,
    register_aggregator,
    score_stats,
    standardize,
    total_std,
)
from rmsearch.ensembles._config import TOP_KEYS, EnsembleConfig, check_value, flatten
from rmsearch.ensembles._ensemble import BETA, BOUND_RULE, Ensemble, Member
from rmsearch.ensembles._greedy import greedy_select
from rmsearch.ensembles._train import fit_group, score_split

__all__ = [
    "BETA", "BOUND_RULE", "total_std", "AGGREGATIONS", "AGGREGATORS", "Aggregation", "Aggregator", "AggregatorParam",
    "Ensemble", "EnsembleConfig",
    "Member", "PARAM_NAMES", "TOP_KEYS", "aggregate", "aggregator", "check_value", "fit_group", "flatten",
    "greedy_select", "register_aggregator", "score_split", "score_stats", "standardize",
]
