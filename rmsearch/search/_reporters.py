"""What a launch reports as trials end, apart from the study itself: each trial's TensorBoard run and the study's
run (`TrialLog`, over `_tensorboard`), and the driver's memory (`rss_mb`). Progress lines and bars are
`_progress`'s."""

from __future__ import annotations

import os
from pathlib import Path

from rmsearch.search._evaluator import TrialScore
from rmsearch.search._members import mean_history
from rmsearch.search._tensorboard import log_study, log_trial


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


class TrialLog:
    """A trial's TensorBoard run when it completes, is pruned or fails; the study's run as trials complete."""

    def __init__(self, tb_dir: Path):
        self.tb_dir = tb_dir

    def complete(self, trial, point: dict, score: TrialScore, records: list, best: float | None) -> None:
        log_trial(self.tb_dir, trial.number, hparams=point, metrics=score.tensorboard_metrics(len(records)),
                  history=mean_history(records), curve=score.curve, state="COMPLETE")
        log_study(self.tb_dir, trial.number, score.value, best)

    def pruned(self, trial, point: dict, partial: float, have: list, reason: str) -> None:
        log_trial(self.tb_dir, trial.number, hparams=point, metrics={"ensemble/partial_objective": partial},
                  history=mean_history(have), curve=None, state="PRUNED", reason=reason)

    def failed(self, trial, point: dict, reason: str) -> None:
        log_trial(self.tb_dir, trial.number, hparams=point, metrics={}, history=[], curve=None, state="FAIL",
                  reason=reason)
