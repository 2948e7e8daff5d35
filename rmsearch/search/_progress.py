"""A launch's progress: trials and member jobs while it searches, then the final evaluation's stages (with the
member jobs of a stage that trains, such as the baselines).

On a terminal these are rich progress bars. To a file or a pipe (a log, a batch job's output) a bar would write
nothing readable, so there progress is plain lines instead: one when a stage starts, and one every `interval`
seconds while it runs (trial counts, member jobs, elapsed time), so a log never goes quiet for long.
"""

from __future__ import annotations

import sys
import threading
import time

from rmsearch.search._periodic import Periodic

DEFAULT_INTERVAL = 30.0
"""Seconds between progress lines when output is not a terminal."""


class _Lines(Periodic):
    """Plain progress lines: `render()` printed every `interval` s from a thread, and on demand."""

    thread_name = "rmsearch-progress"

    def __init__(self, render, interval: float):
        super().__init__(interval)
        self.render = render
        self.start = time.monotonic()
        self.lock = threading.Lock()

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.start:.0f} s"

    def emit(self) -> None:
        with self.lock:
            print(self.render(), flush=True)

    tick = emit


def _bar(label: str, enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled)


class TrialProgress:
    """Trials and member jobs: two progress bars on a terminal, else a plain line every `interval` s."""

    def __init__(self, trials: int, enabled: bool, interval: float = DEFAULT_INTERVAL):
        self.total, self.done, self.jobs_total, self.jobs_done = trials, 0, 0, 0
        self.plain = enabled and not sys.stdout.isatty()
        self.bar = _bar("{task.description}", enabled and not self.plain)
        self.trials = self.bar.add_task("trials", total=trials)
        self.jobs = self.bar.add_task("member jobs", total=0)
        self.lines = _Lines(self._line, interval) if self.plain else None

    def _line(self) -> str:
        return (f"progress: trials {self.done}/{self.total} done, member jobs {self.jobs_done}/{self.jobs_total} "
                f"done; {self.lines.elapsed()} elapsed")

    def __enter__(self):
        self.bar.__enter__()
        if self.lines:
            self.lines.__enter__()
        return self

    def __exit__(self, *exc):
        if self.lines:
            self.lines.__exit__(*exc)
            self.lines.emit()
        return self.bar.__exit__(*exc)

    def job_submitted(self):
        self.jobs_total += 1
        self.bar.update(self.jobs, total=self.jobs_total)

    def job_done(self):
        self.jobs_done += 1
        self.bar.advance(self.jobs)

    def trial_done(self):
        self.done += 1
        self.bar.advance(self.trials)


class StepProgress:
    """The final evaluation's stages, each with its name and the time so far, and the member jobs of the stage
    that trains (`job_submitted`/`job_done`, as `MemberJobs` calls them): bars on a terminal, else plain lines."""

    def __init__(self, total: int, enabled: bool, interval: float = DEFAULT_INTERVAL):
        self.total, self.index, self.what = total, 0, ""
        self.jobs_total = self.jobs_done = 0
        self.plain = enabled and not sys.stdout.isatty()
        self.bar = _bar("{task.description}", enabled and not self.plain)
        self.task = self.bar.add_task("", total=total)
        self.jobs = None
        self.lines = _Lines(self._line, interval) if self.plain else None

    def _line(self) -> str:
        jobs = f", member jobs {self.jobs_done}/{self.jobs_total} done" if self.jobs_total else ""
        return (f"progress: final evaluation stage {self.index}/{self.total}: {self.what}{jobs}; "
                f"{self.lines.elapsed()} elapsed")

    def __enter__(self):
        self.bar.__enter__()
        if self.lines:
            self.lines.__enter__()
        return self

    def __exit__(self, *exc):
        if self.lines:
            self.lines.__exit__(*exc)
        return self.bar.__exit__(*exc)

    def step(self, what: str) -> None:
        """Mark the previous stage done and show `what` as the current one (its member jobs start at 0)."""
        if self.index:
            self.bar.advance(self.task)
        self.index, self.what = min(self.index + 1, self.total), what
        self.bar.update(self.task, description=f"final evaluation: {what}")
        self.jobs_total = self.jobs_done = 0
        if self.jobs is not None:
            self.bar.remove_task(self.jobs)
            self.jobs = None
        if self.lines:
            self.lines.emit()

    def job_submitted(self) -> None:
        self.jobs_total += 1
        if self.jobs is None and not self.plain:
            self.jobs = self.bar.add_task("  member jobs of this stage", total=0)
        if self.jobs is not None:
            self.bar.update(self.jobs, total=self.jobs_total)

    def job_done(self) -> None:
        self.jobs_done += 1
        if self.jobs is not None:
            self.bar.advance(self.jobs)
