"""Evaluate: exact best-of-N curves and robustness metrics (numpy/scipy only; no torch), per-split evaluation
with bootstrap intervals and calibration, the robustness of one configuration (`evaluate_configuration`),
exported ensembles scored on any data (`evaluate_exports`), and the report folders and tables they write."""

from rmsearch.evaluate._bon import best_of_n, bon_proxy, bon_weights, kl_bon, kl_bon_iid, log_grid
from rmsearch.evaluate._gao import GaoFit, gao_fit
from rmsearch.evaluate._metrics import bon_curve, pair_metrics, robustness_metrics

# the modules below import the ones above
from rmsearch.evaluate._calibration import fit_temperature, pair_margins, reliability, sigmoid  # noqa: I001
from rmsearch.evaluate._intervals import category_intervals, intervals, unit_table
from rmsearch.evaluate._bounds import BOUNDS_HELP, RANKING_BETA, bound_metrics, pair_bound_terms
from rmsearch.evaluate._length import LENGTH_NAME, LENGTH_RULE, length_scores
from rmsearch.evaluate._report import (
    check_report_target, fmt_value, markdown_table, metrics_rows, plot_curves, plot_reliability, write_report,
)
from rmsearch.evaluate._robustness import compare_aggregations, mean_evaluation
from rmsearch.evaluate._split import evaluate_split
from rmsearch.evaluate._units import paired_bootstrap, unit_groups, unit_values
from rmsearch.evaluate._configuration import ConfigurationResult, evaluate_configuration
from rmsearch.evaluate._exports import SPLIT_HELP, SPLITS, evaluate_exports
from rmsearch.evaluate._exports_report import category_tables, facts, legend, table_rows, write_result_report

__all__ = [
    "BOUNDS_HELP", "RANKING_BETA", "bound_metrics", "mean_evaluation", "pair_bound_terms",
    "LENGTH_NAME", "LENGTH_RULE", "SPLITS", "SPLIT_HELP", "category_intervals", "category_tables", "length_scores",
    "ConfigurationResult", "GaoFit", "best_of_n", "bon_curve", "bon_proxy",
    "bon_weights", "check_report_target", "compare_aggregations", "evaluate_configuration", "evaluate_exports",
    "evaluate_split", "facts", "fit_temperature", "fmt_value", "gao_fit", "intervals", "kl_bon", "kl_bon_iid", "legend",
    "log_grid", "markdown_table", "metrics_rows", "pair_margins", "pair_metrics",
    "paired_bootstrap", "plot_curves", "plot_reliability", "reliability", "robustness_metrics", "sigmoid",
    "table_rows", "unit_groups", "unit_table", "unit_values", "write_report", "write_result_report",
]
