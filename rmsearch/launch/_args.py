"""Command-line arguments into what they describe, shared by the commands: the help formatter, the task options,
and JSON output files."""

from __future__ import annotations

import argparse
from pathlib import Path

from rmsearch.errors import RMSearchError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, "(default: X)", unless its help already says what the default is; a flag's
    default is "off"; required options and positionals have none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is argparse.SUPPRESS or "default" in text.lower() or not action.option_strings or (
                action.required):
            return text
        if action.nargs == 0 and action.default is False:
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def add_study_args(p: argparse.ArgumentParser) -> None:
    """--runs, --study and --storage: where a finished or running study is found (export, trials)."""
    p.add_argument("--runs", default="runs", help="run folder of the launch (RUNS/STUDY holds the study)")
    p.add_argument("--study", default="rmsearch", help="study name given to launch")
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL of the study (default: "
                   "sqlite:///RUNS/STUDY/study.db)")


def add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="synth", help="'synth' (built-in gold world, e.g. synth:seed=1,dim=64), a folder "
                   "of seed-format files (embd_*_{train,test}.npy + reward_*), or a pair-dataset folder "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=seed_type, default=0, help="seeds the splits, the annotators and the built-in world "
                   "(default: %(default)s)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quality", type=float, default=None, help="annotation quality q of the Bradley-Terry "
                   "annotator, P(a≻b) = σ(q·Δg/std(g)); default 2.0")
    g.add_argument("--flip-rate", type=float, default=None, help="label by gold, then flip this share of labels "
                   "(default: off, labels come from the Bradley-Terry annotator)")
    p.add_argument("--pairing", choices=("within", "cross"), default="within", help="pairs within a prompt or across "
                   "prompts (default: %(default)s)")
    p.add_argument("--pairs-per-prompt", type=int, default=10, metavar="N",
                   help="training pairs the simulated annotator draws per prompt (default: %(default)s, as the seed "
                        "paper's code)")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="pair data: select by K-fold cross-validation (0: a held-out 10%% validation split); "
                        "default: 5 folds when a validation split would hold fewer than 1,000 pairs, else 0")


def seed_type(text: str) -> int:
    """argparse type of a --seed: a non-negative integer (numpy's generators take no negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer; seeds are 0, 1, 2, ... (e.g. "
                                         f"--seed 0)")
    return value


def annotator_from_args(args):
    from rmsearch.data import Annotator

    return Annotator(pairing=args.pairing, quality=2.0 if args.quality is None else args.quality,
                     flip_rate=args.flip_rate, pairs_per_prompt=args.pairs_per_prompt).validate()


def task_config_from_args(args):
    from rmsearch.data import TaskConfig

    return TaskConfig(annotator=annotator_from_args(args), seed=args.seed, folds=args.folds)


def task_from_args(args):
    from rmsearch.data import load_data, make_task

    from rmsearch.search import check_annotator_applies

    data = load_data(args.data, seed=args.seed)
    config = task_config_from_args(args)
    check_annotator_applies(config.annotator, data.kind)
    return data, make_task(data, config)


def check_json_target(path: str | None, force: bool, option: str = "--json") -> None:
    """Refuse to overwrite an existing file unless `force`, and a folder always; before any work."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise RMSearchError(f"{option} {p}: is a folder; name the JSON file to write, e.g. "
                            f"{option} {p / 'metrics.json'}.")
    if p.exists() and not force:
        raise RMSearchError(f"{option} {p}: exists; writing would overwrite it. Pass --force to replace it, or choose "
                            f"another {option}.")
