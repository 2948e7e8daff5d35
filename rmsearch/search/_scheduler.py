"""Asks, member jobs and tells: the loop of a launch.

Each asked trial suggests a point, which names an ensemble configuration; its members that the head cache lacks
become member jobs (`MemberJobs`, on Ray). Several trials are in flight so every worker stays busy. When a trial's
members are all in, the `Evaluator` turns their cached validation scores into the objective and the scheduler
tells the study; a trial whose partial ensemble trails the median is pruned (`--prune`); a trial whose members
failed, diverged or could not be evaluated fails with the reason. With `--halving` a trial climbs rungs of more
and more training pairs (`_fidelity`) and the successive-halving pruner decides at each whether it goes on. Ctrl-C
(or SIGTERM) fails the trials in flight and queues their configurations again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmsearch.ensembles import EnsembleConfig
from rmsearch.interrupt import terminated
from rmsearch.search._evaluator import Evaluator, TrialFailed
from rmsearch.search._fidelity import FULL, RUNGS, Rung
from rmsearch.search._launch_study import LaunchStudy
from rmsearch.search._reporters import TrialLog, rss_mb
from rmsearch.search._storage import ask, queue_again
from rmsearch.search._store import code_identity


@dataclass
class Pending:
    """A trial in flight: its point, configuration, rung, the member keys of that rung and the members it still
    waits for."""

    trial: object
    point: dict
    config: EnsembleConfig
    keys: list[str]
    waiting: set[str]
    rung: Rung = FULL


class Scheduler:
    """Runs `trials` trials of `launch` (`LaunchStudy`) on `jobs` (`MemberJobs`): asks while job slots are free,
    tells each trial as its members come in. Counts go to `state` (`SearchState`)."""

    def __init__(self, launch: LaunchStudy, jobs, state, log: TrialLog):
        self.launch, self.jobs, self.state, self.log = launch, jobs, state, log
        self.study, self.store = launch.study, launch.handle.store
        self.evaluator = Evaluator(launch.handle.task, launch.handle.objective, state.timed)
        self.multi_objective, self.prune = launch.options.multi_objective, launch.options.prune
        self.first_rung = RUNGS[0] if launch.options.halving else FULL
        self.pending: list[Pending] = []

    def trial_ids(self) -> list:
        """The storage ids of the trials in flight (the heartbeat thread beats for these)."""
        return [p.trial._trial_id for p in list(self.pending)]

    def run(self, trials: int, progress) -> None:
        """Ask `trials` trials while member-job slots are free; as jobs finish, cache their members and tell every
        trial whose members are all in. Ctrl-C fails the trials in flight with that reason and queues them again."""
        from optuna.exceptions import UpdateFinishedTrialError

        pending, asked = self.pending, 0
        try:
            while asked < trials or pending:
                while asked < trials and self.jobs.busy < self.jobs.slots:
                    asked += 1
                    p = self._ask()
                    if p.waiting or not self._settle(p):
                        pending.append(p)
                    else:
                        progress.trial_done()
                for keys, error in self.jobs.wait_one():
                    for p in [p for p in pending if p.waiting & set(keys)]:
                        p.waiting -= set(keys)
                        try:
                            if error is not None:  # the job raised: its trials fail, the search goes on
                                self._fail(p, error)
                            elif not p.waiting:
                                if not self._settle(p):
                                    continue  # on to its next rung's members
                            elif not self._prune(p):
                                continue
                        except UpdateFinishedTrialError:
                            pass  # another driver found its heartbeat stale, failed it and queued it again
                        pending.remove(p)
                        progress.trial_done()
        except KeyboardInterrupt as exc:
            self._interrupted("SIGTERM" if terminated(exc) else "Ctrl-C")
            raise

    def _interrupted(self, how: str) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        for p in self.pending:
            try:
                self._fail(p, f"the driver was interrupted ({how}) while the trial ran; its configuration is "
                              "queued again for the next launch", requeue=True)
            except UpdateFinishedTrialError:
                pass  # told just before the interrupt (Ctrl-C during its logging), or failed by another driver

    def _ask(self) -> Pending:
        """Ask the study for a trial, record its configuration and members, and submit the members it lacks."""
        with self.state.timed("optuna"):
            self.launch.check_stale()
            trial = ask(self.study)
        try:
            return self._start(trial)
        except KeyboardInterrupt:  # between the ask and the trial's being in flight: fail it here, or it stays RUNNING
            again = bool(trial.params)  # a configuration to queue again, where the space had suggested one
            self._fail(Pending(trial, {}, None, [], set()), "the driver was interrupted while the trial was being "
                       "asked" + ("; its configuration is queued again for the next launch" if again else ""),
                       requeue=again)
            raise

    def _start(self, trial) -> Pending:
        """Record an asked trial's first heartbeat, point and configuration (`ask` recorded its driver) and submit its
        members."""
        with self.state.timed("optuna"):
            self.launch.record_heartbeat(trial)
            point = self.launch.space.suggest(trial)
            config = self.launch.handle.resolve(EnsembleConfig.from_point(point))
            trial.set_user_attr("code", code_identity())
            trial.set_user_attr("config", config.to_point())
        p = Pending(trial, point, config, [], set())
        self._submit(p, FULL if trial.user_attrs.get("start") else self.first_rung)  # starts are never cut short
        return p

    def _submit(self, p: Pending, rung: Rung) -> None:
        """Put `p` on `rung`: its members there (recorded as the trial's members), those not cached submitted."""
        p.rung, p.keys = rung, self.launch.handle.member_keys(p.config, rung.share)
        with self.state.timed("optuna"):
            p.trial.set_user_attr("members", p.keys)
        self.jobs.submit(p.config.head.to_dict(), dict(zip(p.keys, p.config.member_seeds)), rung.share)
        p.waiting = {k for k in p.keys if k not in self.store}

    def _settle(self, p: Pending) -> bool:
        """`p`'s members on its rung are all in: on the last rung the trial finishes; below it, its value goes to
        the successive-halving pruner, which ends the trial or sends it on to the next rung. True when the trial
        ended, False when it waits for the next rung's members."""
        import optuna

        while not p.rung.last:
            try:
                score = self.evaluator.score(p.config, [self.store.get(k) for k in p.keys])
            except TrialFailed as exc:
                self._fail(p, str(exc))
                return True
            if not np.isfinite(score.value):
                self._fail(p, f"objective {self.evaluator.objective.name} is not finite ({score.value}) at "
                              f"{p.rung.describe()}; a member diverged")
                return True
            with self.state.timed("optuna"):
                p.trial.report(score.value, step=p.rung.step)
                prune = p.trial.should_prune()
            if prune:
                with self.state.timed("optuna"):
                    p.trial.set_user_attr("pruned_at_rung", {"rung": p.rung.index + 1, "of": len(RUNGS),
                                                             "share": p.rung.share})
                    self.study.tell(p.trial, state=optuna.trial.TrialState.PRUNED)
                self.state.pruned += 1
                self.log.pruned(p.trial, p.point, score.value, [self.store.get(k) for k in p.keys],
                                f"{p.rung.describe()}: its value trailed the top third of the "
                                f"{p.config.head.kind} trials there")
                return True
            self._submit(p, p.rung.next())
            if p.waiting:
                return False
        self._finish(p)
        return True

    def _finish(self, p: Pending) -> None:
        records = [self.store.get(k) for k in p.keys]
        try:
            score = self.evaluator.score(p.config, records)
        except TrialFailed as exc:
            return self._fail(p, str(exc))
        with self.state.timed("optuna"):
            p.trial.set_user_attr("val_metrics", score.metrics)
            p.trial.set_user_attr("cost_parameters", score.cost)
        if not np.isfinite(score.value):
            return self._fail(p, f"objective {self.evaluator.objective.name} is not finite ({score.value}); a "
                                 f"member diverged")
        with self.state.timed("optuna"):
            self.study.tell(p.trial, [score.value, score.cost] if self.multi_objective else score.value)
        self.state.told.append(p.trial.number)
        if len(self.state.told) % 50 == 0:
            self.state.rss_mb.append((len(self.state.told), rss_mb()))
        with self.state.timed("tensorboard"):
            self.log.complete(p.trial, p.point, score, records, self._best_value())

    def _prune(self, p: Pending) -> bool:
        """Report the partial ensemble (members in so far) and prune the trial if the pruner says so. Its
        remaining member jobs still finish and land in the cache for later trials."""
        import optuna

        if self.multi_objective or not self.prune:
            return False
        have = [self.store.get(k) for k in p.keys if k not in p.waiting]
        partial = self.evaluator.partial(p.config, have)
        if partial is None:
            return False
        p.trial.report(partial, step=len(have))
        if not p.trial.should_prune():
            return False
        p.trial.set_user_attr("pruned_at_members", len(have))
        self.study.tell(p.trial, state=optuna.trial.TrialState.PRUNED)
        self.state.pruned += 1
        self.log.pruned(p.trial, p.point, partial, have,
                        f"partial ensemble of {len(have)} of {len(p.keys)} members below the median")
        return True

    def _fail(self, p: Pending, reason: str, requeue: bool = False) -> None:
        import optuna

        p.trial.set_user_attr("fail_reason", reason)
        if not requeue:
            self.state.failures[reason] = self.state.failures.get(reason, 0) + 1
        self.study.tell(p.trial, state=optuna.trial.TrialState.FAIL)
        if requeue:
            queue_again(self.study, p.trial)
        self.log.failed(p.trial, p.point, reason)

    def _best_value(self):
        if self.multi_objective:
            return None
        try:
            return float(self.study.best_value)
        except ValueError:
            return None
