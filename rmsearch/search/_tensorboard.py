"""TensorBoard event files for a search, written from the driver process after each trial.

Layout (DESIGN.md "TensorBoard"), with `tb_root = RUN_DIR/<study>/tb`:

- `tb_root/trial-<n>/`: scalars `train/loss`, `val/accuracy`, `val/nll` (step = epoch, 1-based), `bon/gold` and
  `bon/proxy` (step = N), the `ensemble/*` metrics (step 0), an image `bon/curve` (gold and proxy against KL), the
  trial's hparams written with the HParams plugin into this same run, and a text `trial/status`.
- `tb_root/study/`: scalars `study/value` and `study/best_value` at step = trial number.

Every call opens its own writer, writes, flushes and closes, so calls are independent and safe to repeat across
driver restarts (a relaunch appends new event files; TensorBoard merges them). torch and matplotlib are imported
inside the functions to keep importing this module cheap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["log_study", "log_trial", "trial_dir"]

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
    ax.set_xlabel("KL(BoN || base) = log N - (N-1)/N")
    ax.set_ylabel("reward of the selected response")
    ax.set_title("validation BoN curve")
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
    """Write RUN_DIR/<study>/tb/trial-<number>/ (tb_root is RUN_DIR/<study>/tb). Returns the run folder."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summary

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

        metric_tags: dict[str, float] = {}
        for tag, value in (metrics or {}).items():
            f = _finite(value)
            if f is not None:
                writer.add_scalar(tag, f, global_step=0)
                metric_tags[tag] = f
            else:  # a NaN/None metric still names a column in the HParams dashboard
                metric_tags[tag] = float("nan")

        status = f"**{state}**" + (f": {reason}" if reason else "")
        writer.add_text(STATUS_TAG, status, global_step=0)

        hp = {str(k): _hparam_value(v) for k, v in (hparams or {}).items()}
        # The three protos (experiment, session start, session end) go into THIS run; the metric tags point at
        # the ensemble/* scalars written above, so the HParams dashboard shows them as columns.
        exp, ssi, sei = hparams_summary(hp, metric_tags)
        fw = writer.file_writer
        fw.add_summary(exp)
        fw.add_summary(ssi)
        fw.add_summary(sei)
        writer.flush()
    finally:
        writer.close()
    return run


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
