"""What a launch is asked to do (`LaunchOptions`) and what it counts while it runs (`SearchState`)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rmsearch.data import Annotator
from rmsearch.errors import ConfigError
from rmsearch.search._baselines import BASELINES
from rmsearch.search._device import check_device_options
from rmsearch.search._identity import check_study_name
from rmsearch.search._ray import check_reachable


@dataclass
class LaunchOptions:
    data: str = "synth"
    space: str = "default"
    trials: int = 20
    study: str = "rmsearch"
    runs: Path = Path("runs")
    storage: str | None = None
    """Optuna storage URL; default: sqlite:///RUNS/STUDY/study.db"""
    heartbeat: int = 10
    """RDB storages (SQLite, PostgreSQL, MySQL): seconds between the heartbeats the driver records for each trial
    it has in flight."""
    grace: int = 60
    """RDB storages: a RUNNING trial without a heartbeat for this many seconds is stale (its driver died, on any
    host); the driver that finds it (at start-up, and before asking trials) marks it FAIL and queues its
    configuration again. Every driver of a study needs a grace well above the heartbeat interval of the others. Any
    storage: a RUNNING trial no driver recorded itself in within this many seconds of its start (its driver died
    as it took the trial from the queue) is failed the same way at the next launch."""
    address: str | None = None
    """Ray cluster address ('auto', 'HOST:PORT'); default: a local Ray sized to this machine."""
    workers: int | None = None
    """Most member jobs at once; default: every CPU Ray has (and, on GPUs, as many as their shares allow)."""
    device: str = "cpu"
    """Where member jobs train the head types that have a GPU path (mlp, mlp_clf, linear with solver 'adam'):
    'cpu', 'cuda' (each job holds `gpus_per_job` of a GPU), or 'auto' ('cuda' where torch on the driver sees a
    GPU, else 'cpu'). The other types train on the CPU under any device (`_device`)."""
    gpus_per_job: float | None = None
    """On 'cuda': the share of a GPU each member job asks Ray for (0.25: four jobs per GPU); default 1."""
    objective: str | None = None
    seed: int = 0
    multi_objective: bool = False
    top: int = 3
    annotator: Annotator = field(default_factory=Annotator)
    """The simulated annotator that labels training pairs of gold data (pairing, pairs per prompt, quality)."""
    folds: int | None = None
    """Pair data: cross-validation folds for selection (see `TaskConfig.folds`; None picks by data size)."""
    baselines: tuple[str, ...] = ("seed-paper", "linear")
    """Fixed recipes the final evaluation trains (once; cached) and compares the chosen ensemble with."""
    select: bool = True
    """After the search, greedy selection over the members of all trials, picked on half the validation prompts;
    it leads where it beats the best trial on the other half by a paired 95% interval, else the best trial leads;
    the export is the trial with the fewest parameters within one standard error of the leader, or the leader
    (`choose_export`)."""
    stress: bool = False
    """Retrain the chosen configuration at several label-flip rates in the final evaluation (costs several times
    the configuration's own training)."""
    prune: bool = False
    """Prune a trial when its partial ensemble (the members in so far) is below the median of earlier trials
    at the same member count (Optuna's MedianPruner); its member jobs still finish and stay in the cache."""
    halving: bool = False
    """Multi-fidelity trials (`_fidelity`): members train on 1/9 of the training pairs first, and a trial goes on to
    all of them only where its value ranks in the top third of its head type's trials there (asynchronous
    successive halving); completed trials are full-fidelity trials as without it."""
    final: bool = True
    """Run the final robustness evaluation and export the best ensemble at the end."""
    progress: bool = True
    progress_interval: float = 30.0
    """Where output is not a terminal: seconds between the plain progress lines that stand in for the bars."""


@dataclass
class SearchState:
    trained: int = 0
    """Members trained by this launch (the head cache's misses)."""
    reused: int = 0
    """Members a trial took from the cache instead of training."""
    jobs: int = 0
    pruned: int = 0
    rss_mb: list = field(default_factory=list)
    """(trials told, driver resident memory in MiB) every 50 trials."""
    nodes: dict[str, int] = field(default_factory=dict)
    """Members trained per Ray node id."""
    train_seconds: float = 0.0
    """Sum of member-job wall time (training, then scoring), measured in the jobs."""
    fit_seconds: float = 0.0
    """The training part of `train_seconds`."""
    phases: dict[str, float] = field(default_factory=dict)
    """Driver wall time per phase: setup, ray start, optuna, evaluation, tensorboard, cache, waiting on jobs, final."""
    told: list[int] = field(default_factory=list)
    """Trials this launch told COMPLETE."""
    failures: dict[str, int] = field(default_factory=dict)
    """Why this launch's trials failed: reason -> how many (interruptions, which queue the trial again, aside)."""

    @contextmanager
    def timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - start

    stale: set = field(default_factory=set)
    """(config JSON, seed) of the study's members trained by other code (`Search._other_code`)."""
    retrained: int = 0
    """Members this launch trained again because the cached ones came from other code."""

    def add_records(self, records) -> None:
        import json

        for r in records:
            self.trained += 1
            self.retrained += (json.dumps(r.config, sort_keys=True), r.seed) in self.stale
            self.train_seconds += r.seconds
            self.fit_seconds += r.fit_seconds
            self.nodes[r.node] = self.nodes.get(r.node, 0) + 1


ANNOTATOR_OPTIONS = {"quality": "--quality", "flip_rate": "--flip-rate", "pairing": "--pairing",
                     "pairs_per_prompt": "--pairs-per-prompt"}
"""The simulated annotator's fields and the options that set them."""


def check_annotator_applies(annotator: Annotator, data_kind: str, stress: bool = False) -> None:
    """Pair data carries its own labels: the simulated annotator's options (and `--stress`, which relabels with
    it) would do nothing there, so setting them away from their defaults is refused, naming each."""
    if data_kind == "gold":
        return
    default = Annotator()
    given = [f"{opt} {getattr(annotator, f)}" for f, opt in ANNOTATOR_OPTIONS.items()
             if getattr(annotator, f) != getattr(default, f)] + (["--stress"] if stress else [])
    if given:
        raise ConfigError(f"{', '.join(given)}: the data is a pair dataset with its own labels; the simulated "
                          f"annotator (and --stress, which relabels with it at several flip rates) only labels gold "
                          f"candidate sets, so {'this option does' if len(given) == 1 else 'these options do'} "
                          f"nothing here. Drop {' and '.join(g.split()[0] for g in given)}.")


def check_prune_applies(options: LaunchOptions) -> None:
    for flag, on in (("--prune", options.prune), ("--halving", options.halving)):
        if on and options.multi_objective:
            raise ConfigError(f"{flag} with --multi-objective: Optuna prunes single-objective trials only, so {flag} "
                              f"would do nothing here. Drop {flag}, or --multi-objective.")
    if options.prune and options.halving:
        raise ConfigError("--prune with --halving: a study has one pruner, and these are two (the median of partial "
                          "ensembles, successive halving over rungs of training pairs). Drop one of them.")


def check_options(o: LaunchOptions) -> None:
    """Every option that needs no data, checked before any work."""
    check_study_name(o.study, o.runs)
    if isinstance(o.seed, bool) or not isinstance(o.seed, int) or o.seed < 0:
        raise ConfigError(f"--seed {o.seed}: must be a non-negative integer (it seeds the splits, the annotator "
                          f"and the built-in world); e.g. --seed 0.")
    if o.trials < 0:
        raise ConfigError(f"--trials {o.trials} must be >= 0.")
    if o.top < 1:
        raise ConfigError(f"--top {o.top} must be at least 1 (the number of best trials in the final report).")
    if not o.progress_interval > 0:
        raise ConfigError(f"--progress-every {o.progress_interval} must be a number of seconds > 0 (e.g. 30).")
    if o.workers is not None and o.workers < 1:
        raise ConfigError(f"--workers {o.workers} must be at least 1.")
    if o.heartbeat < 1 or o.grace <= o.heartbeat:
        raise ConfigError(f"--heartbeat {o.heartbeat} / --grace {o.grace}: the heartbeat interval must be at least "
                          f"1 s and the grace period longer than it (e.g. --heartbeat 10 --grace 60).")
    unknown = sorted(set(o.baselines) - set(BASELINES))
    if unknown:
        raise ConfigError(f"--baselines {','.join(unknown)}: unknown; choose from {', '.join(BASELINES)} or none.")
    check_prune_applies(o)
    check_device_options(o.device, o.gpus_per_job, o.address)
    if o.address:
        check_reachable(o.address)
