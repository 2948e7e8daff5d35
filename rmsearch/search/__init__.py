"""The distributed ensemble search: Optuna (ask/tell) × Ray member jobs, a head cache, TensorBoard logs, a final
robustness evaluation and an export of the best ensemble. `Search(LaunchOptions(...)).run()`."""

from rmsearch.search._baselines import BASELINES
from rmsearch.search._driver import (
    LaunchOptions,
    Search,
    init_ray,
    open_storage,
    storage_of,
)
from rmsearch.search._final import (
    choose_export,
    export_combination,
    export_trial,
    top_trials,
)
from rmsearch.search._jobs import train_members
from rmsearch.search._objectives import DEFAULT_GOLD, DEFAULT_PAIRS, OBJECTIVES

__all__ = [
    "BASELINES", "DEFAULT_GOLD", "DEFAULT_PAIRS", "LaunchOptions", "OBJECTIVES", "Search", "choose_export",
    "export_combination", "export_trial", "init_ray", "open_storage", "storage_of", "top_trials",
    "train_members",
]
