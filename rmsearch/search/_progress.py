"""A launch's progress bars (rich): trials and member jobs while it searches, then the final evaluation's steps."""

from __future__ import annotations

class TrialProgress:
    """Trials and member jobs as two progress bars (rich)."""

    def __init__(self, trials: int, enabled: bool):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            disable=not enabled)
        self.trials = self.bar.add_task("trials", total=trials)
        self.jobs = self.bar.add_task("member jobs", total=0)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def job_submitted(self):
        self.bar.update(self.jobs, total=self.bar.tasks[self.jobs].total + 1)

    def job_done(self):
        self.bar.advance(self.jobs)

    def trial_done(self):
        self.bar.advance(self.trials)


class StepProgress:
    """The final evaluation's own progress bar: one step per stage, with the stage's name and the time so far."""

    def __init__(self, total: int, enabled: bool):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("final evaluation: {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), disable=not enabled)
        self.task = self.bar.add_task("", total=total)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def step(self, what: str) -> None:
        """Mark the previous stage done and show `what` as the current one."""
        if self.bar.tasks[self.task].description:
            self.bar.advance(self.task)
        self.bar.update(self.task, description=what)
