"""Evaluate: exact best-of-N curves and robustness metrics (numpy/scipy only; no torch)."""

from rmsearch.evaluate._bon import best_of_n, bon_proxy, bon_weights, kl_bon, kl_bon_iid, log_grid
from rmsearch.evaluate._metrics import bon_curve, pair_metrics, robustness_metrics

__all__ = [
    "best_of_n", "bon_curve", "bon_proxy", "bon_weights", "kl_bon", "kl_bon_iid", "log_grid", "pair_metrics",
    "robustness_metrics",
]

from rmsearch.evaluate._split import evaluate_split  # noqa: E402
from rmsearch.evaluate._report import write_report  # noqa: E402
from rmsearch.evaluate._robustness import compare_aggregations  # noqa: E402

__all__ += ["compare_aggregations", "evaluate_split", "write_report"]
