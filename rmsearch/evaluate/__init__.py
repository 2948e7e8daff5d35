"""Evaluate: exact best-of-N curves and robustness metrics (numpy/scipy only; no torch)."""

from rmsearch.evaluate._bon import (
    best_of_n,
    bon_proxy,
    bon_weights,
    kl_bon,
    kl_bon_iid,
    log_grid,
)
from rmsearch.evaluate._metrics import bon_curve, pair_metrics, robustness_metrics

__all__ = [
    "best_of_n", "bon_curve", "bon_proxy", "bon_weights", "kl_bon", "kl_bon_iid", "log_grid", "pair_metrics",
    "robustness_metrics",
]

from rmsearch.evaluate._calibration import (  # noqa: E402
    ECE_HELP,
    fit_temperature,
    pair_margins,
    reliability,
    sigmoid,
)
from rmsearch.evaluate._intervals import intervals, unit_table  # noqa: E402
from rmsearch.evaluate._report import (  # noqa: E402
    COLUMNS,
    check_report_target,
    fmt_value,
    json_default,
    metric_cell,
    plot_curves,
    plot_reliability,
    table_columns,
    write_report,
)
from rmsearch.evaluate._robustness import compare_aggregations, mean_evaluation  # noqa: E402
from rmsearch.evaluate._split import evaluate_split  # noqa: E402
from rmsearch.evaluate._units import paired_bootstrap, unit_values  # noqa: E402

__all__ += [
    "COLUMNS", "ECE_HELP", "check_report_target", "compare_aggregations", "evaluate_split", "fit_temperature",
    "fmt_value", "intervals", "json_default", "mean_evaluation", "metric_cell", "pair_margins", "paired_bootstrap",
    "plot_curves", "plot_reliability", "reliability", "sigmoid", "table_columns", "unit_table", "unit_values",
    "write_report",
]
