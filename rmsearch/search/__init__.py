"""The distributed ensemble search: Optuna (ask/tell) × Ray member jobs, a head cache, TensorBoard logs, a final
robustness evaluation and an export of the best ensemble. `Search(LaunchOptions(...)).run()`."""

from rmsearch.search._driver import LaunchOptions, Search
from rmsearch.search._objectives import OBJECTIVES

__all__ = ["LaunchOptions", "OBJECTIVES", "Search"]
