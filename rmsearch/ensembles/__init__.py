"""Ensembles: aggregations over standardized member scores, ensemble configurations, greedy selection, and
the numpy-only `Ensemble` that exports load into. (Training a member group lives in `_train`, which imports
torch; it is imported where used.)"""

from rmsearch.ensembles._aggregate import AGGREGATIONS, PARAM_NAMES, Aggregation, aggregate, score_stats, standardize
from rmsearch.ensembles._config import EnsembleConfig, flatten
from rmsearch.ensembles._ensemble import Ensemble, Member
from rmsearch.ensembles._greedy import greedy_select

__all__ = [
    "AGGREGATIONS", "PARAM_NAMES", "Aggregation", "Ensemble", "EnsembleConfig", "Member", "aggregate", "flatten",
    "greedy_select", "score_stats", "standardize",
]
