"""The `rmsearch` command. Exit codes: 0 ok, 2 bad input (the message says what and how to fix), 1 unexpected."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from rmsearch.errors import RMSearchError

DEFAULT_POINT = {
    "head": "mlp", "members": 8, "aggregation": "uwo", "uwo.lambda": 1.0, "standardize": True,
    "mlp.hidden": [64, 32], "mlp.bootstrap": True, "mlp.patience": 0, "mlp.epochs": 40,
}
"""The configuration `rmsearch evaluate` trains when given none: 8 small MLPs, each on its own bootstrap draw of
the pairs, trained 40 epochs without early stopping (members fitted that far disagree off-distribution, which
is what conservative aggregation uses)."""


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="synth", help="'synth' (built-in gold world, e.g. synth:seed=1,dim=64), a folder "
                   "of seed-format files (embd_*_{train,test}.npy + reward_*), or a pair-dataset folder")
    p.add_argument("--seed", type=int, default=0, help="seeds the splits, the annotators and the built-in world")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quality", type=float, default=None, help="annotation quality q of the Bradley-Terry "
                   "annotator, P(a≻b) = σ(q·Δg/std(g)); default 2.0")
    g.add_argument("--flip-rate", type=float, default=None, help="label by gold, then flip this share of labels")
    p.add_argument("--pairing", choices=("within", "cross"), default="within", help="pairs within a prompt or across prompts")


def task_from_args(args):
    from rmsearch.data import Annotator, TaskConfig, load_data, make_task

    data = load_data(args.data, seed=args.seed)
    ann = Annotator(pairing=args.pairing, quality=2.0 if args.quality is None else args.quality, flip_rate=args.flip_rate)
    return data, make_task(data, TaskConfig(annotator=ann, seed=args.seed))


def cmd_data_synth(args) -> int:
    from rmsearch.data import SynthConfig, synth, write_seed_folder

    config = SynthConfig(seed=args.seed, dim=args.dim, train_prompts=args.train_prompts,
                         test_prompts=args.test_prompts, test_responses=args.test_responses)
    files = write_seed_folder(Path(args.out), synth(config), stem=f"synth_seed{args.seed}_gold")
    for role, path in files.items():
        print(f"{role:13s} {path}")
    return 0


def cmd_data_inspect(args) -> int:
    from rmsearch.data import TaskConfig, describe, load_data, make_task

    data = load_data(args.path)
    error = make_task(data, TaskConfig()).label_error if data.kind == "gold" else None
    info = describe(data, label_error=error)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}: {info['kind']} data, dim {info['dim']}, fingerprint {info['fingerprint']}")
    if data.kind == "gold":
        for split in ("train", "test"):
            s = info[split]
            g = s["gold"]
            print(f"  {split:5s} P={s['prompts']} K={s['responses']} D={s['dim']} {s['dtype']}  gold mean {g['mean']:.3f} "
                  f"std {g['std']:.3f} [{g['min']:.3f}, {g['max']:.3f}], within-prompt std {g['within_prompt_std']:.3f}")
        print(f"  label error rate of the default annotator (Bradley-Terry, q=2, within-prompt): {error:.3f}")
    else:
        print(f"  pairs M={info['pairs']['count']} D={info['dim']} {info['pairs']['dtype']}")
    return 0


def load_point(path: str | None, overrides: list[str]) -> dict:
    import yaml

    from rmsearch.errors import ConfigError

    point = dict(DEFAULT_POINT) if path is None else {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"--config {path}: file not found.") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config {path}: not valid YAML ({exc}).") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: must be a mapping of keys to values (see `rmsearch evaluate --help`).")
        point.update(loaded)
    for item in overrides:
        key, eq, val = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: write key=value, e.g. --set members=4.")
        point[key] = yaml.safe_load(val)
    return point


def cmd_evaluate(args) -> int:
    from rmsearch.ensembles import EnsembleConfig
    from rmsearch.evaluate import compare_aggregations, write_report

    config = EnsembleConfig.from_point(load_point(args.config, args.set))
    out = Path(args.out)
    data, task = task_from_args(args)
    from rich.console import Console

    from rmsearch.ensembles._train import fit_group

    console = Console(stderr=True)
    with console.status(f"training {config.members} × {config.head.kind} on {len(task.train)} pairs …"):
        group = fit_group(task, config.head, config.member_seeds)
    results = compare_aggregations(task, group.stats, group.val_scores, group.test_scores, standardized=config.standardize)
    context = {
        "data": f"{data.name} ({data.kind}, fingerprint {data.fingerprint})",
        "configuration": json.dumps(config.to_point()),
        "training pairs": len(task.train), "label error rate": task.label_error,
        "validation rows": len(task.val), "test rows": len(task.test),
        "training seconds": round(group.seconds, 2), "split record": task.record,
    }
    write_report(out, f"Robustness of {config.members} × {config.head.kind} on {data.name}", results, context)
    if args.json:
        Path(args.json).write_text(json.dumps({k: v["test"]["metrics"] for k, v in results.items()}, indent=2))
    _print_table({k: v["test"]["metrics"] for k, v in results.items()})
    print(f"report: {out / 'report.md'}")
    return 0


def _print_table(rows: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    from rmsearch.evaluate._report import COLUMNS, _fmt

    cols = [(k, label) for k, label in COLUMNS if any(k in m for m in rows.values())]
    table = Table(title="test split")
    table.add_column("")
    for _, label in cols:
        table.add_column(label, justify="right")
    for name, m in rows.items():
        table.add_row(name, *(_fmt(m.get(k, "")) for k, _ in cols))
    Console().print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="make, embed and inspect datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="write the built-in gold world as seed-format files")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--train-prompts", type=int, default=1000)
    p.add_argument("--test-prompts", type=int, default=400)
    p.add_argument("--test-responses", type=int, default=500)
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("inspect", help="print kind, splits, shapes, dim, dtype, gold statistics, label error rate")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print the facts as JSON")
    p.set_defaults(func=cmd_data_inspect)

    p = sub.add_parser("evaluate", help="train one ensemble configuration and write a robustness report")
    _add_task_args(p)
    p.add_argument("--config", help="YAML file of one ensemble configuration (keys as in `rmsearch spaces show`); "
                   f"default: {json.dumps(DEFAULT_POINT)}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one configuration key")
    p.add_argument("--out", default="runs/evaluate", help="report folder (replaced)")
    p.add_argument("--json", help="also write the test metrics to this JSON file")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RMSearchError as exc:
        print(f"rmsearch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rmsearch: interrupted", file=sys.stderr)
        return 130
    except Exception:  # an unexpected failure: show where, exit 1
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
