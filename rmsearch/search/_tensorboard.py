"""TensorBoard event files for a search, written from the driver process after each trial.

Layout (DESIGN.md "TensorBoard"), with `tb_root = RUN_DIR/<study>/tb`:

- `tb_root/` itself (the run "."): the study's one HParams experiment summary (`log_experiment`, once per launch),
  declaring every parameter of the search space with its domain and every metric the trials write, so the HParams
  table has a column for each (a parameter a trial's head or aggregation does not use is blank in its row).
- `tb_root/trial-<n>/`: scalars `train/loss`, `val/accuracy`, `val/nll` (step = epoch, 1-based), `bon/gold` and
  `bon/proxy` (step = N), the `ensemble/*` metrics (step 0), an image `bon/curve` (gold and proxy against KL), the
  trial's HParams session (start: its parameter values; end: its status) in this same run, and a text
  `trial/status`.
- `tb_root/study/`: scalars `study/value` and `study/best_value` at step = trial number.
- After the final evaluation (`log_final`), each ensemble it reports, on the split each tag names:
  `test/ensemble/<metric>` (step 0) and `test/bon/gold`, `test/bon/proxy` (step = N) in a top trial's own run;
  the cross-trial selection and the baselines in runs of their own, `final-selection` and `final-baseline-<name>`,
  with `val/ensemble/<metric>` and `val/bon/*` beside the `test/*` tags. (A trial's `ensemble/*` and `bon/*`,
  written as it completes, are on the validation split, the only one a search sees.)

Every call opens its own writer, writes, flushes and closes, so calls are independent and safe to repeat across
driver restarts (a relaunch appends new event files; TensorBoard merges them). The experiment summary is the
exception: TensorBoard keeps the first one it reads, so `log_experiment` replaces the earlier one (merged with
it) instead of appending. torch and matplotlib are imported inside the functions to keep importing this module
cheap.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rmsearch.spaces import Space

__all__ = ["log_experiment", "log_final", "log_study", "log_trial", "trial_dir", "trial_metric_tags"]

STATUS_TAG = "trial/status"
CURVE_TAG = "bon/curve"


def trial_dir(tb_root: Path, number: int) -> Path:
    return Path(tb_root) / f"trial-{int(number)}"


def _hparam_value(v: Any) -> bool | int | float | str:
    """HParams accepts bool, number or string; anything else (lists, None, dicts) becomes its string form."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return v
    try:  # numpy scalars
        import numpy as np

        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.floating):
            return float(v)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _curve_figure(curve: dict):
    from matplotlib.figure import Figure  # drawn on FigureCanvasAgg below; pyplot and the global backend untouched

    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    kl = [float(k) for k in curve["kl"]]
    ax.plot(kl, [float(g) for g in curve["gold"]], marker="o", label="gold")
    if curve.get("proxy") is not None:
        ax.plot(kl, [float(p) for p in curve["proxy"]], marker="s", label="proxy")
    # the curve's kl is `kl_bon(M, n)`: the exact KL of drawing N of the M candidates without replacement
    ax.set_xlabel("KL(BoN ‖ base) of N of M drawn without replacement\n(exact: Σ w·log(M·w))")
    ax.set_ylabel("reward of the selected response")
    ax.set_title("BoN curve, validation split")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _figure_to_chw(fig):
    """Render a matplotlib Figure (no pyplot state) to a uint8 CHW array."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))


def log_trial(
    tb_root: Path,
    number: int,
    *,
    hparams: dict,
    metrics: dict[str, float],
    history: list[dict[str, float]],
    curve: dict | None,
    state: str,
    reason: str | None = None,
) -> Path:
    """Write RUN_DIR/<study>/tb/trial-<number>/ (tb_root is RUN_DIR/<study>/tb). Returns the run folder.

    The run is one HParams session: its start (the trial's parameter values) and end (its status); the columns
    are declared once for the study by `log_experiment`, in tb_root itself."""
    from torch.utils.tensorboard import SummaryWriter

    run = trial_dir(tb_root, number)
    run.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(run))
    try:
        for epoch, row in enumerate(history or [], start=1):
            for tag, value in row.items():
                f = _finite(value)
                if f is not None:
                    writer.add_scalar(tag, f, global_step=epoch)

        if curve is not None:
            ns = [int(n) for n in curve["n"]]
            for key in ("gold", "proxy"):
                values = curve.get(key)
                if values is None:
                    continue
                for n, v in zip(ns, values):
                    f = _finite(v)
                    if f is not None:
                        writer.add_scalar(f"bon/{key}", f, global_step=n)
            if curve.get("kl") is not None and curve.get("gold") is not None:
                writer.add_image(CURVE_TAG, _figure_to_chw(_curve_figure(curve)), global_step=0, dataformats="CHW")

        for tag, value in (metrics or {}).items():
            f = _finite(value)
            if f is not None:  # a NaN metric is left out: its HParams cell stays blank
                writer.add_scalar(tag, f, global_step=0)

        status = f"**{state}**" + (f": {reason}" if reason else "")
        writer.add_text(STATUS_TAG, status, global_step=0)

        fw = writer.file_writer
        fw.add_summary(_session_start({str(k): v for k, v in (hparams or {}).items()}))
        fw.add_summary(_session_end(state))
        writer.flush()
    finally:
        writer.close()
    return run


def trial_metric_tags(split, prune: bool = False) -> list[str]:
    """The metric tags trials write, for a study whose trials are evaluated on `split` (the task's validation
    split): the driver's `_finish` writes `ensemble/<metric>` for each metric `evaluate_split` reports on that
    split, and ensemble/objective, ensemble/members, ensemble/parameters; a pruned trial (with `prune`: --prune or
    --halving) writes ensemble/partial_objective. The metric names come from `evaluate_split` itself, run once on
    constant scores, so they follow whatever it reports (gold splits add the BoN and robustness metrics to the pair
    metrics)."""
    import numpy as np

    from rmsearch.evaluate import evaluate_split

    names = ["objective", *evaluate_split(np.zeros(len(split)), split)["metrics"], "members", "parameters"]
    if prune:
        names.append("partial_objective")
    return [f"ensemble/{n}" for n in dict.fromkeys(names)]


def log_experiment(tb_root: Path, space: "Space", metric_tags: list[str]) -> Path:
    """Write the study's one HParams experiment summary into tb_root itself (the run "."): every parameter of
    `space` with its domain (categorical and fixed values as discrete values, encoded as trials write them;
    int/float/log as intervals) and `metric_tags` (scalars each trial run writes, e.g. from `trial_metric_tags`).

    Called once per launch. TensorBoard uses the first experiment summary it reads, so an earlier one in tb_root
    is merged in (parameters and metrics it has that this launch's space lacks are kept, for earlier trials) and
    its event file replaced. Returns tb_root."""
    from torch.utils.tensorboard import SummaryWriter

    from tensorboard.plugins.hparams import api_pb2

    root = Path(tb_root)
    root.mkdir(parents=True, exist_ok=True)
    earlier = {f: f.stat().st_mtime_ns for f in sorted(root.glob("events.out.tfevents.*"))}
    before = _read_experiment(list(earlier))

    infos = [_hparam_info(p) for p in space.params.values()]
    names = {i.name for i in infos}
    tags = list(dict.fromkeys(metric_tags))
    if before is not None:
        infos += [i for i in before.hparam_infos if i.name not in names]
        tags += [m.name.tag for m in before.metric_infos if not m.name.group and m.name.tag not in tags]
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in tags]  # group "": the trial run
    experiment = api_pb2.Experiment(
        description=f"rmsearch study; space {space.source}",
        time_created_secs=before.time_created_secs if before is not None and before.time_created_secs else time.time(),
        hparam_infos=infos, metric_infos=metric_infos)

    writer = SummaryWriter(log_dir=str(root))
    try:
        writer.file_writer.add_summary(_hparams_summary(_EXPERIMENT_TAG, experiment=experiment))
        writer.flush()
    finally:
        writer.close()
    for old, mtime in earlier.items():  # only log_experiment writes event files into tb_root itself
        try:
            if old.stat().st_mtime_ns == mtime:  # not the file just written (a name can repeat within a second)
                old.unlink()
        except FileNotFoundError:  # another driver of this study replaced it first
            pass
    return root


_EXPERIMENT_TAG = "_hparams_/experiment"
_SESSION_START_TAG = "_hparams_/session_start_info"
_SESSION_END_TAG = "_hparams_/session_end_info"
_STATUS = {"COMPLETE": "STATUS_SUCCESS", "FAIL": "STATUS_FAILURE", "RUNNING": "STATUS_RUNNING"}
"""HParams session status per Optuna state; PRUNED (TensorBoard has no such status) is STATUS_UNKNOWN, and the
run's `trial/status` text says it was pruned."""


def _hparams_summary(tag: str, **plugin_data):
    """A Summary holding one HParams plugin record (experiment, session_start_info or session_end_info)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    smd = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**plugin_data))
    return Summary(value=[Summary.Value(tag=tag, metadata=smd, tensor=metadata.NULL_TENSOR)])


def _struct_value(v: bool | int | float | str):
    from google.protobuf import struct_pb2

    if isinstance(v, bool):  # before int: bool is an int
        return struct_pb2.Value(bool_value=v)
    if isinstance(v, (int, float)):
        return struct_pb2.Value(number_value=float(v))
    return struct_pb2.Value(string_value=str(v))


def _hparam_info(p):
    """The HParamInfo of a space parameter (rmsearch.spaces.Param): its domain in the values trials write."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2

    if p.dist in ("int", "float", "log"):
        return api_pb2.HParamInfo(name=p.name, type=api_pb2.DATA_TYPE_FLOAT64,
                                  domain_interval=api_pb2.Interval(min_value=float(p.low), max_value=float(p.high)))
    values = [_hparam_value(c) for c in (p.choices if p.dist == "categorical" else [p.value])]
    if all(isinstance(v, bool) for v in values):
        kind = api_pb2.DATA_TYPE_BOOL
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        kind = api_pb2.DATA_TYPE_FLOAT64
    elif all(isinstance(v, str) for v in values):
        kind = api_pb2.DATA_TYPE_STRING
    else:  # mixed choices (e.g. [0.1, auto]): each value keeps its own type
        kind = api_pb2.DATA_TYPE_UNSET
    return api_pb2.HParamInfo(name=p.name, type=kind,
                              domain_discrete=struct_pb2.ListValue(values=[_struct_value(v) for v in values]))


def _session_start(hparams: dict):
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for k, v in hparams.items():
        start.hparams[k].CopyFrom(_struct_value(_hparam_value(v)))
    return _hparams_summary(_SESSION_START_TAG, session_start_info=start)


def _session_end(state: str):
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    status = api_pb2.Status.Value(_STATUS.get(str(state).upper(), "STATUS_UNKNOWN"))
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    return _hparams_summary(_SESSION_END_TAG, session_end_info=end)


def _read_experiment(files: list[Path]):
    """The first HParams experiment in these event files (as TensorBoard would read it), or None."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    for path in files:
        try:
            for event in EventFileLoader(str(path)).Load():
                for value in event.summary.value:
                    if value.tag == _EXPERIMENT_TAG and value.metadata.plugin_data.content:
                        return metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
        except Exception:  # noqa: BLE001 - a truncated or foreign file: start from this launch's space alone
            continue
    return None


def log_study(tb_root: Path, number: int, value: float | None, best: float | None) -> None:
    """Append to tb_root/'study': scalars study/value and study/best_value at step = trial number."""
    from torch.utils.tensorboard import SummaryWriter

    run = Path(tb_root) / "study"
    run.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(run))
    try:
        v = _finite(value)
        if v is not None:
            writer.add_scalar("study/value", v, global_step=int(number))
        b = _finite(best)
        if b is not None:
            writer.add_scalar("study/best_value", b, global_step=int(number))
        writer.flush()
    finally:
        writer.close()


def _final_run(tb_root: Path, label: str) -> tuple[Path, tuple[str, ...]]:
    """Where `log_final` writes the ensemble `label` of the final evaluation, and on which splits: a trial's own
    run (its validation numbers are there already), or a run of its own."""
    if label.startswith("trial "):
        return trial_dir(tb_root, int(label.split(":")[0].removeprefix("trial "))), ("test",)
    if label.startswith("baseline "):
        return Path(tb_root) / f"final-baseline-{label.split(':')[0].removeprefix('baseline ')}", ("val", "test")
    return Path(tb_root) / "final-selection", ("val", "test")


def log_final(tb_root: Path, results: dict[str, dict]) -> list[Path]:
    """Write the final evaluation's `results` (label -> {"val"/"test": {"metrics", "curve"}}) under tags that name
    their split (see the module docstring); returns the runs written."""
    from torch.utils.tensorboard import SummaryWriter

    runs = []
    for label, ev in results.items():
        run, splits = _final_run(tb_root, label)
        run.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(log_dir=str(run))
        try:
            for split in splits:
                for name, value in ev[split]["metrics"].items():
                    f = _finite(value)
                    if f is not None:
                        writer.add_scalar(f"{split}/ensemble/{name}", f, global_step=0)
                curve = ev[split].get("curve") or {}
                for key in ("gold", "proxy"):
                    for n, v in zip(curve.get("n") or [], curve.get(key) or []):
                        f = _finite(v)
                        if f is not None:
                            writer.add_scalar(f"{split}/bon/{key}", f, global_step=int(n))
            writer.add_text("final/what", label, global_step=0)
            writer.flush()
        finally:
            writer.close()
        runs.append(run)
    return runs
