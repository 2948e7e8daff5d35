"""The distributed ensemble search: Optuna (ask/tell) × Ray member jobs, a head cache, TensorBoard logs, a final
robustness evaluation and an export of the best ensemble. `Search(LaunchOptions(...)).run()` launches (its
`final` is a `FinalResult`); `StudyHandle.open(study, runs)` reads a finished study (for `export_trial`,
`choose_export`, `top_trials`) without writing to it."""

from rmsearch.search._baselines import BASELINES
from rmsearch.search._driver import LaunchOptions, Search
from rmsearch.search._choice import choose_export
from rmsearch.search._final import FinalResult, export_combination, export_trial, top_trials
from rmsearch.search._jobs import train_members
from rmsearch.search._options import check_annotator_applies
from rmsearch.search._objectives import DEFAULT_GOLD, DEFAULT_PAIRS, OBJECTIVES, Objective, register_objective
from rmsearch.search._ray import init_ray
from rmsearch.search._study import StudyHandle, load_study

__all__ = [
    "BASELINES", "DEFAULT_GOLD", "DEFAULT_PAIRS", "OBJECTIVES", "FinalResult", "LaunchOptions", "Objective", "Search",
    "StudyHandle", "check_annotator_applies", "choose_export", "export_combination", "export_trial", "init_ray",
    "load_study", "register_objective", "top_trials", "train_members",
]
