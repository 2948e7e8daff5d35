"""Command-line arguments into the objects they describe, shared by the commands."""

from __future__ import annotations


def annotator_from_args(args):
    from rmsearch.data import Annotator

    return Annotator(pairing=args.pairing, quality=2.0 if args.quality is None else args.quality,
                     flip_rate=args.flip_rate, pairs_per_prompt=args.pairs_per_prompt).validate()


def task_from_args(args):
    from rmsearch.data import TaskConfig, load_data, make_task

    data = load_data(args.data, seed=args.seed)
    return data, make_task(data, TaskConfig(annotator=annotator_from_args(args), seed=args.seed, folds=args.folds))
