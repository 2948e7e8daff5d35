"""A launch: `Search(options).run()` puts the pieces together, each with one job.

- the study (`LaunchStudy`, `_launch_study`): inputs checked, storage and Optuna study opened, identity checked,
  stale trials queued again, what the study runs on recorded;
- the member jobs (`MemberJobs`, `_ray`): Ray tasks that train vectorized member groups into the head cache;
- the scheduler (`Scheduler`, `_scheduler`): asks, member jobs, tells, pruning, failures, interrupts;
- the evaluator (`Evaluator`, `_evaluator`): cached validation scores → objective;
- the reporters (`TrialLog`, `_reporters`; `TrialProgress`, `_progress`): TensorBoard runs, progress lines;
- the final evaluation (`final_evaluation`, `_final`): export choice, baselines, test-split report, export.

Workers return numbers in memory, never through files. The launch records its wall time per phase
(`SearchState.phases`).
"""

from __future__ import annotations

import time

from rmsearch.ensembles import EnsembleConfig
from rmsearch.interrupt import raise_on_sigterm
from rmsearch.search._device import place, resolve_device
from rmsearch.search._final import FinalResult, final_evaluation
from rmsearch.search._jobs import TaskRecipe
from rmsearch.search._launch_study import LaunchStudy
from rmsearch.search._members import absolute_spec
from rmsearch.search._options import LaunchOptions, SearchState
from rmsearch.search._progress import TrialProgress
from rmsearch.search._ray import MemberJobs, init_ray, memory_mapped, nbytes
from rmsearch.search._reporters import TrialLog, rss_mb
from rmsearch.search._scheduler import Scheduler
from rmsearch.search._tensorboard import log_experiment, trial_metric_tags

__all__ = ["LaunchOptions", "Search"]


class Search:
    """One launch: `Search(options).run()`. Fields hold what a caller (CLI, tests) reads afterwards."""

    def __init__(self, options: LaunchOptions):
        self.options = options
        self.state = SearchState()
        self.final: FinalResult | None = None

    # what the study handle holds, under the names a launch's callers read
    data = property(lambda self: self.handle.data)
    task = property(lambda self: self.handle.task)
    task_config = property(lambda self: self.handle.task_config)
    task_key = property(lambda self: self.handle.task_key)
    objective = property(lambda self: self.handle.objective)
    study = property(lambda self: self.handle.study)
    storage = property(lambda self: self.handle.storage)
    study_dir = property(lambda self: self.handle.study_dir)
    store = property(lambda self: self.handle.store)
    handle = property(lambda self: self.launch.handle)
    space = property(lambda self: self.launch.space)
    identity = property(lambda self: self.launch.identity)
    requeued = property(lambda self: self.launch.requeued)
    tb_dir = property(lambda self: self.launch.tb_dir)

    def completed(self) -> list:
        return self.handle.completed()

    def member_keys(self, config: EnsembleConfig) -> list[str]:
        return self.handle.member_keys(config)

    def prepare(self):
        """Check every input, open (or create) the study and record in it what it runs on; returns self."""
        self.launch = LaunchStudy.open(self.options)
        self.state.stale = self.launch.stale_members
        return self

    def run(self):
        t0 = time.perf_counter()
        o, timed = self.options, self.state.timed
        with timed("setup"):
            self.prepare()
            log_experiment(self.tb_dir, self.space, trial_metric_tags(self.task.val, o.prune or o.halving))
        with timed("ray start"):
            device = resolve_device(o.device)
            gpus = (o.gpus_per_job or 1.0) if device == "cuda" else 0.0
            ray, self.slots, self.threads = init_ray(o.address, o.workers, gpus)
            raise_on_sigterm()  # again: ray.init replaced the handler with one that exits at once
            self.handle.placement = place(ray, device, gpus)
            self._say_device()
            self.jobs = MemberJobs(ray, self._ship_task(ray), self.slots, self.threads, self.store, self.state,
                                   self.handle.placement)
        rss_start = rss_mb()  # after Ray and the data are up: what grows from here grows with trials
        scheduler = Scheduler(self.launch, self.jobs, self.state, TrialLog(self.tb_dir))
        with TrialProgress(o.trials, o.progress, o.progress_interval) as progress, \
                self.launch.heartbeats(scheduler.trial_ids):
            self.jobs.progress = progress
            scheduler.run(o.trials, progress)
        self.search_seconds = time.perf_counter() - t0
        self._record_launch(rss_start)
        if o.final and self.completed():
            with timed("final evaluation"):
                self.final = final_evaluation(self.handle, self.jobs, o, self.tb_dir)
        self.total_seconds = time.perf_counter() - t0
        return self

    def _say_device(self) -> None:
        """Where the member jobs train, printed when --device asked for other than the CPU path."""
        if self.options.device == "cpu":
            return
        why = " (--device auto: torch sees no CUDA GPU here)" if self.handle.placement.device == "cpu" else ""
        print(f"device: {self.handle.placement.describe()}{why}; {self.slots} member jobs at once, "
              f"{self.threads} CPU threads each", flush=True)

    def _record_launch(self, rss_start: float) -> None:
        s = self.state
        self.study.set_user_attr("last_launch", {"trained": s.trained, "reused": s.reused, "retrained": s.retrained,
                                                 "jobs": s.jobs, "seconds": self.search_seconds,
                                                 "device": self.handle.placement.describe(),
                                                 "slots": self.slots, "job_seconds": s.train_seconds,
                                                 "fit_seconds": s.fit_seconds, "phases": s.phases,
                                                 "members_per_node": s.nodes, "data_path": self.data_path,
                                                 "driver_rss_mb": [rss_start, rss_mb()],
                                                 "driver_rss_mb_every_50_trials": s.rss_mb})

    def _ship_task(self, ray):
        """The task for member jobs, one of two ways (`data_path` records which):
        - a recipe each worker rebuilds from the data's memory-mapped files: where a local Ray's workers read this
          machine's files (they share its page cache, where putting the task in the object store would read every
          split through pickling and hold a second copy), and where the task would take more than half the store;
        - in the object store once, every job reading it from there: the built-in world (it has no files), and a
          cluster's data that fits."""
        size = nbytes(self.task)
        store = ray.available_resources().get("object_store_memory", float("inf"))
        recipe = TaskRecipe(absolute_spec(str(self.options.data)), self.task_config)
        if not self.options.address and memory_mapped(self.task):
            self.data_path = "memory maps (a local Ray: each worker maps this machine's files)"
            return recipe
        if size > 0.5 * store:
            self.data_path = (f"per-node memory maps ({size / 2**20:.0f} MiB > half the {store / 2**20:.0f} MiB "
                              f"object store)")
            return recipe
        self.data_path = "object store"
        return ray.put(self.task)
