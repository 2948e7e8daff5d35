"""A study opened for reading: its trials, the task they ran on, its objective and head cache.

Exporting or evaluating a finished study needs these and nothing of a launch: `StudyHandle.open` loads the
study from its storage and rebuilds its task exactly from what the study recorded, without writing to the study
(no stale-trial recovery, no attributes, no queued trials) and without the space file it was launched with. A
launch's `Search` builds one for the study it drives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rmsearch.data import Annotator, Data, Task, TaskConfig, load_data, make_task
from rmsearch.ensembles import EnsembleConfig
from rmsearch.errors import RMSearchError
from rmsearch.search._device import Placement
from rmsearch.search._fidelity import rung_task_key
from rmsearch.search._identity import check_study_name
from rmsearch.search._objectives import Objective, get_objective
from rmsearch.search._storage import open_storage, storage_of
from rmsearch.search._store import MemberStore, member_key


def task_key(data_fingerprint: str, task_config: TaskConfig) -> str:
    """What identifies a task's training data: the data's fingerprint and how pairs were drawn and split."""
    blob = json.dumps({"data": data_fingerprint, "task": asdict(task_config)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class StudyHandle:
    name: str
    storage: str
    """The storage URL."""
    study_dir: Path
    """The run folder of the study: head cache, TensorBoard logs, report and export."""
    study: object
    """The optuna.Study."""
    data: Data
    task_config: TaskConfig
    task: Task
    objective: Objective
    task_key: str = field(init=False)
    store: MemberStore = field(init=False)
    """The head cache: every member the study's trials trained."""
    placement: Placement = field(default_factory=Placement)
    """Where members train (a launch sets it once it has placed its jobs); it decides 'auto' precision and keys."""

    def __post_init__(self):
        self.task_key = task_key(self.data.fingerprint, self.task_config)
        self.store = MemberStore(self.study_dir / "members")

    @property
    def multi_objective(self) -> bool:
        return len(self.study.directions) > 1

    def completed(self) -> list:
        import optuna

        return [t for t in self.study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]

    def resolve(self, config: EnsembleConfig) -> EnsembleConfig:
        """`config` with its head's machine-dependent choices (precision 'auto') decided for this task's dim on the
        device its members train on (`placement`): what its members are keyed and trained by."""
        return replace(config, head=self.placement.resolve(config.head, self.task.dim))

    def member_keys(self, config: EnsembleConfig, share: float = 1.0) -> list[str]:
        """The head-cache keys of `config`'s members (precision resolved, device named) on this study's task, or
        on `share` of its training pairs (a `--halving` rung)."""
        head = self.resolve(config).head
        device = self.placement.device_of(head)
        task = rung_task_key(self.task_key, share)
        return [member_key(task, head.to_dict(), s, device) for s in config.member_seeds]

    @classmethod
    def open(cls, name: str, runs: str | Path, storage: str | None = None) -> "StudyHandle":
        """Study `name` of run folder `runs` (or of `storage`), with its task rebuilt from its record."""
        study_dir = Path(runs) / name
        url, study = load_study(name, runs, storage)
        attrs = study.user_attrs
        if "data" not in attrs or "task" not in attrs:
            raise RMSearchError(f"study {name!r} in {url} records no data or task (it never started a trial); "
                                f"run `rmsearch launch --study {name}` first.")
        recorded = attrs["task"]["config"]
        try:
            task_config = TaskConfig(**{**recorded, "annotator": Annotator(**recorded["annotator"])})
        except (TypeError, KeyError) as exc:
            raise RMSearchError(f"study {name!r}: its task record {recorded} is not one this version reads ({exc}); "
                                f"export it with the rmsearch version that ran it.") from None
        data = load_data(attrs["data"]["spec"], seed=task_config.seed)
        return cls(name=name, storage=url, study_dir=study_dir, study=study, data=data, task_config=task_config,
                   task=make_task(data, task_config), objective=get_objective(attrs.get("objective"), data.kind))


def _existing(runs: str | Path) -> str:
    """'the studies in RUNS are a, b; ' (or that it holds none), for messages about a study not found."""
    root = Path(runs)
    names = sorted(p.name for p in root.iterdir() if (p / "study.db").is_file()) if root.is_dir() else []
    if not names:
        return f"--runs {runs} holds no study; "
    return f"the studies in --runs {runs} are {', '.join(names)}; "


def load_study(name: str, runs: str | Path, storage: str | None = None):
    """(storage URL, optuna.Study) of study `name` in run folder `runs` (or in `storage`), loaded without writing
    to it; a clear error naming the studies there where it does not exist."""
    import optuna

    check_study_name(name)
    study_dir = Path(runs) / name
    url = open_storage(storage, study_dir)
    if storage is None and not (study_dir / "study.db").exists():
        raise RMSearchError(f"no study at {study_dir}; {_existing(runs)}check --runs and --study (or pass "
                            f"--storage).")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return url, optuna.load_study(study_name=name, storage=storage_of(url))
    except KeyError:
        names = optuna.get_all_study_names(storage_of(url))
        raise RMSearchError(f"storage {url} has no study named {name!r}; it holds "
                            f"{', '.join(map(repr, names)) or 'none'}.") from None
