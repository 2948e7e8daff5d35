"""The `rmsearch` command. Exit codes: 0 ok, 2 bad input (the message says what and how to fix), 1 unexpected."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from rmsearch.errors import RMSearchError
from rmsearch.launch._args import annotator_from_args, task_from_args

DEFAULT_POINT = {
    "head": "mlp", "members": 8, "aggregation": "uwo", "uwo.lambda": 1.0, "standardize": True,
    "mlp.hidden": [64, 32], "mlp.bootstrap": True, "mlp.patience": 0, "mlp.epochs": 40,
}
"""The configuration `rmsearch evaluate` trains when given none: 8 small MLPs, each on its own bootstrap draw of
the pairs, trained 40 epochs without early stopping (members fitted that far disagree off-distribution, which
is what conservative aggregation uses)."""


EVALUATE_OUT = "runs/evaluate"
"""Where `rmsearch evaluate` writes its report when training a configuration and given no --out."""


def _exports_splits() -> tuple[str, ...]:
    from rmsearch.launch._exports import SPLITS

    return SPLITS


def _exports_split_help() -> str:
    from rmsearch.launch._exports import SPLIT_HELP

    return SPLIT_HELP.replace("%", "%%")


def _baseline_names():
    from rmsearch.search import BASELINES

    return BASELINES


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


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="synth", help="'synth' (built-in gold world, e.g. synth:seed=1,dim=64), a folder "
                   "of seed-format files (embd_*_{train,test}.npy + reward_*), or a pair-dataset folder "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the splits, the annotators and the built-in world "
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
    """The configuration `rmsearch evaluate` trains: DEFAULT_POINT (or the `--config` file) with the `--set`
    overrides. Every value given is type-checked by `check_value`, the check `EnsembleConfig.from_point` applies,
    here so that a bad one is reported with where it came from (the file's line, or the option)."""
    import yaml

    from rmsearch.ensembles import check_value, flatten
    from rmsearch.errors import ConfigError

    point = dict(DEFAULT_POINT) if path is None else {}
    given: dict[str, tuple[str | None, str]] = {}  # key -> (where, example style)
    if path is not None:
        try:
            text = Path(path).read_text()
            loaded, lines = yaml.safe_load(text), _key_lines(yaml.compose(text))
        except FileNotFoundError:
            raise ConfigError(f"--config {path}: file not found.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--config {path}: cannot be read ({exc}); pass a YAML file.") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config {path}: not valid YAML ({exc}).") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: must be a mapping of keys to values (see `rmsearch evaluate --help`).")
        for key, val in flatten(loaded).items():
            point[key] = val
            given[key] = (f"--config {path} line {lines[key]}" if key in lines else f"--config {path}", "yaml")
    for item in overrides:
        key, eq, val = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: write key=value, e.g. --set members=4.")
        try:
            value = yaml.safe_load(val)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({getattr(exc, 'problem', None) or exc}); "
                              f"write e.g. --set members=4 or --set 'mlp.hidden=[64, 32]'.") from None
        for k, v in (flatten({key: value}) if isinstance(value, dict) else {key: value}).items():
            point[k] = v
            given[k] = (None, "set")
    for key, (where, style) in given.items():
        try:
            check_value(key, point[key], style)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None
    return point


def _key_lines(node, prefix: str = "") -> dict[str, int]:
    """Flattened key -> 1-based line of a YAML mapping node's keys (nested mappings as 'mlp.hidden')."""
    import yaml

    out = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            name = f"{prefix}{key_node.value}"
            if isinstance(value_node, yaml.MappingNode):
                out.update(_key_lines(value_node, f"{name}."))
            else:
                out[name] = key_node.start_mark.line + 1
    return out


def cmd_evaluate_ensemble(args) -> int:
    """Evaluate an exported ensemble on --data (no training): all of it when it is not the ensemble's training
    data, else that launch's test split (`--split`); every metric with a 95% bootstrap interval."""
    from rmsearch.launch import _exports

    return _exports.run(args, [args.ensemble], [], args.out, args.json, "metrics.json",
                        f"Evaluation of {args.ensemble}")


def cmd_compare(args) -> int:
    """Several exports (and baselines trained here) on the same rows of --data, with paired differences."""
    from rmsearch.launch import _exports

    return _exports.run(args, args.ensembles, list(dict.fromkeys(args.baseline)), args.out, None, "compare.json",
                        "Comparison of " + ", ".join(args.ensembles + [f"baseline {b}" for b in args.baseline]))


def cmd_evaluate(args) -> int:
    if args.ensemble:
        return cmd_evaluate_ensemble(args)
    if args.split is not None:
        raise RMSearchError(f"--split {args.split} applies to --ensemble (an exported ensemble scored on --data); "
                            f"training a configuration always reports the task's validation and test splits. Drop "
                            f"--split, or pass --ensemble FOLDER.")
    from rmsearch.ensembles import EnsembleConfig
    from rmsearch.evaluate import (
        check_report_target,
        compare_aggregations,
        write_report,
    )
    from rmsearch.launch._exports import check_json_target, write_json

    config = EnsembleConfig.from_point(load_point(args.config, args.set))
    out = Path(args.out or EVALUATE_OUT)
    check_report_target(out, "--out")  # before any work: a folder that is not an earlier report is refused
    check_json_target(args.json, args.force)
    data, task = task_from_args(args)
    from rich.console import Console

    from rmsearch.ensembles import fit_group

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
    write_report(out, f"Robustness of {config.members} × {config.head.kind} on {data.name}", results, context,
                 option="--out")
    if args.json:
        write_json(Path(args.json), {k: v["test"]["metrics"] for k, v in results.items()})
    _print_table({k: v["test"]["metrics"] for k, v in results.items()})
    print(f"report: {out / 'report.md'}")
    return 0


def cmd_spaces_show(args) -> int:
    from rmsearch.spaces import load_space

    print(load_space(args.name).to_yaml(), end="")
    return 0


def cmd_launch(args) -> int:
    from rmsearch.search import LaunchOptions, Search

    baselines = () if args.baselines in ("", "none") else tuple(b.strip() for b in args.baselines.split(","))
    options = LaunchOptions(
        data=args.data, space=args.space, trials=args.trials, study=args.study, runs=Path(args.runs),
        storage=args.storage, heartbeat=args.heartbeat, grace=args.grace, address=args.address, workers=args.workers,
        objective=args.objective, seed=args.seed, multi_objective=args.multi_objective, top=args.top,
        annotator=annotator_from_args(args), folds=args.folds, baselines=baselines, select=not args.no_select,
        stress=args.stress, final=not args.no_final, prune=args.prune,
    )
    search = Search(options).run()
    _print_best(search)
    return 0


def _print_best(search) -> None:
    from rich.console import Console
    from rich.table import Table

    from rmsearch.evaluate import fmt_value

    console = Console()
    s = search.state
    done = search.completed()
    final = search.state.phases.get("final evaluation", 0.0)
    console.print(f"{len(search.study.trials)} trials in study {search.options.study!r} ({len(done)} complete); this "
                  f"launch trained {s.trained} members in {s.jobs} jobs, reused {s.reused} from the head cache; "
                  f"{search.total_seconds:.1f} s in all ({search.search_seconds:.1f} s search, {final:.1f} s final "
                  f"evaluation); driver memory {search.study.user_attrs['last_launch']['driver_rss_mb'][0]:.0f} → "
                  f"{search.study.user_attrs['last_launch']['driver_rss_mb'][1]:.0f} MiB.")
    if search.final:
        f = search.final
        gold = search.task.has_gold
        table = Table(title=f"objective {search.objective.name}: chosen on validation, reported on test "
                            f"(exported: {f['exported']})")
        for col in ("", "val. objective", "test objective", "test BoN gold @ N=M" if gold else "test pair acc."):
            table.add_column(col, justify="right")
        for label, ev in f["results"].items():
            m = ev["test"]["metrics"]
            table.add_row(label, fmt_value(ev["val"]["metrics"]["objective"]), fmt_value(m["objective"]),
                          fmt_value(m["gold_final"] if gold else m["pair_accuracy"]))
        console.print(table)
        if f["comparisons"]:
            table = Table(title="exported − baseline on the test split, paired, 95% bootstrap interval")
            for col in ("against", "metric", "exported", "baseline", "difference", "95% interval"):
                table.add_column(col, justify="right")
            for r in f["comparisons"]:
                table.add_row(r["against"], r["metric"], fmt_value(r["chosen"]), fmt_value(r["other"]), f"{r['diff']:+.3f}",
                              f"[{r['low']:+.3f}, {r['high']:+.3f}]" + (" ✓" if r["better"] else ""))
            console.print(table)
            console.print("baselines trained in " + ", ".join(f"{n} {t:.1f} s" for n, t in f["baseline_seconds"].items())
                          + " (0 s: from the head cache)")
        console.print(f"report:      {f['report'] / 'report.md'}")
        console.print(f"export:      {f['export']}")
    console.print(f"tensorboard: tensorboard --logdir {search.tb_dir}")
    console.print(f"storage:     {search.storage}   (optuna-dashboard {search.storage})")


def cmd_export(args) -> int:
    from rmsearch.search import Search, export_trial, top_trials

    search = Search(_options_of_study(args)).prepare()
    if args.select and args.trial is not None:
        raise RMSearchError("--select and --trial exclude each other: --select chooses between the best trial and "
                            "the cross-trial selection; drop one.")
    if args.trial is None:
        top = top_trials(search, 1)
        if not top:
            raise RMSearchError(f"study {args.study!r} has no complete trial to export; run `rmsearch launch` first.")
        trial = top[0]
        if args.select:
            return _export_chosen(search, trial, Path(args.out))
    else:
        matches = [t for t in search.completed() if t.number == args.trial]
        if not matches:
            raise RMSearchError(f"study {args.study!r} has no complete trial {args.trial}; complete trials: "
                                f"{[t.number for t in search.completed()]}.")
        trial = matches[0]
    out = export_trial(search, trial, Path(args.out))
    print(f"exported trial {trial.number} to {out}")
    return 0


def _export_chosen(search, trial, out: Path) -> int:
    """Export what a launch would: the best trial, the cross-trial selection, or a simpler trial within one
    standard error (see `choose_export`)."""
    from rmsearch.search import choose_export, export_combination

    decision = choose_export(search, trial)
    info = decision.info
    print(f"validation {search.objective.name}: trial {trial.number} {info['best trial validation']:.4f}, "
          f"cross-trial selection ({decision.selection.describe()}) {info['selection validation']:.4f}")
    if "one standard error" in info:
        e = info["one standard error"]
        print(f"{e['simpler']} has fewer parameters than {e['leader']} and is within one standard error of it "
              f"({e['difference']:+.4f} ± {e['standard error']:.4f} per validation unit)")
    export_combination(search, decision.combination, out, decision.source)
    print(f"exported {decision.name} to {out}")
    return 0


def _options_of_study(args):
    """Options that rebuild a finished study's task exactly, from what the study recorded."""
    import optuna

    from rmsearch.search import LaunchOptions, open_storage, storage_of

    study_dir = Path(args.runs) / args.study
    url = open_storage(args.storage, study_dir)
    if args.storage is None and not (study_dir / "study.db").exists():
        raise RMSearchError(f"no study at {study_dir}; check --runs and --study (or pass --storage).")
    try:
        attrs = optuna.load_study(study_name=args.study, storage=storage_of(url)).user_attrs
    except KeyError:
        raise RMSearchError(f"storage {url} has no study named {args.study!r}.") from None
    from rmsearch.data import Annotator

    task = attrs["task"]["config"]
    return LaunchOptions(data=attrs["data"]["spec"], space=attrs.get("space", "default"), trials=0, study=args.study,
                         runs=Path(args.runs), storage=args.storage, objective=attrs.get("objective"),
                         seed=task["seed"], annotator=Annotator(**task["annotator"]), folds=task.get("folds"),
                         final=False)


def cmd_score(args) -> int:
    import numpy as np

    from rmsearch import load_ensemble
    from rmsearch.data import atomic_save, check_float_array, open_npy

    out = Path(args.out or Path(args.embeddings).with_suffix(".scores.npy"))
    if out.is_dir():
        raise RMSearchError(f"--out {out}: is a folder; name the output .npy file, e.g. --out {out / 'scores.npy'}.")
    if out.exists() and not args.force:
        raise RMSearchError(f"--out {out}: exists; scoring would overwrite it. Pass --force to replace it, or choose "
                            f"another --out.")
    ensemble = load_ensemble(args.ensemble)
    X = check_float_array(args.embeddings, open_npy(Path(args.embeddings)), (2,), what="(rows, dim)")
    scores = np.concatenate([ensemble.score(np.asarray(X[s : s + 65536], np.float32)) for s in range(0, len(X), 65536)])
    atomic_save(out, scores.astype(np.float32))
    print(f"{len(scores)} scores -> {out}")
    return 0


def _print_table(rows: dict[str, dict], title: str = "test split") -> None:
    from rich.console import Console
    from rich.table import Table

    from rmsearch.evaluate import metric_cell, table_columns

    cols = table_columns(rows)  # no column that is empty in every row (the BoN columns for pair data)
    table = Table(title=title)
    table.add_column("")
    for _, label in cols:
        table.add_column(label, justify="right")
    for name, m in rows.items():
        table.add_row(name, *(metric_cell(m, k) for k, _ in cols))
    Console().print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="make, embed and inspect datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="write the built-in gold world as seed-format files",
                        formatter_class=HelpFormatter,
                        description="Write the built-in gold world as seed-format files (embd_/reward_ × train/test), "
                                    "loadable with --data FOLDER.")
    p.add_argument("--out", required=True, metavar="FOLDER", help="folder to write the four .npy files into (created "
                   "if missing; files of the same name are replaced); required")
    p.add_argument("--seed", type=int, default=0, help="the world is drawn from this seed, bit for bit")
    p.add_argument("--dim", type=int, default=32, help="embedding dimension D (at least 6)")
    p.add_argument("--train-prompts", type=int, default=1000, help="training prompts, 10 responses each")
    p.add_argument("--test-prompts", type=int, default=400, help="test prompts (validation prompts are carved out of "
                   "them)")
    p.add_argument("--test-responses", type=int, default=500, help="candidates per test prompt: M, the largest N of "
                   "best-of-N")
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("inspect", help="print kind, splits, shapes, dim, dtype, gold statistics, label error rate",
                        formatter_class=HelpFormatter)
    p.add_argument("path", help="a dataset: a seed-format folder, a pair-dataset folder, or synth[:key=value,...]")
    p.add_argument("--json", action="store_true", help="print the facts as JSON instead of a summary")
    p.set_defaults(func=cmd_data_inspect)
    from rmsearch.data import add_embed_parser

    add_embed_parser(data)

    p = sub.add_parser("evaluate", help="train one ensemble configuration and write a robustness report",
                       formatter_class=HelpFormatter)
    _add_task_args(p)
    p.add_argument("--config", help="YAML file of one ensemble configuration (keys as in `rmsearch spaces show`); "
                   f"default: {json.dumps(DEFAULT_POINT)}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one configuration key, "
                   "value in YAML (repeatable), e.g. --set members=4 --set 'mlp.hidden=[64, 32]'; default: none")
    p.add_argument("--out", metavar="FOLDER", help=f"report folder; an earlier report there is replaced "
                   f"(atomically), any other non-empty folder is refused (default: {EVALUATE_OUT}). With --ensemble "
                   f"a report is written only where --out is given")
    p.add_argument("--json", metavar="FILE", help="also write the metrics to this JSON file; an existing file is "
                   "refused unless --force (default: none)")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.add_argument("--ensemble", metavar="FOLDER", help="score this exported ensemble on --data instead of training "
                   "a configuration: every metric with a 95%% bootstrap interval, calibration, prompts or pairs "
                   "scored (default: train --config)")
    p.add_argument("--split", choices=_exports_splits(), help=_exports_split_help())
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="score several exported ensembles (and baselines) on the same data, with "
                       "paired differences", formatter_class=HelpFormatter,
                       description="Score exported ensembles on the same prompts or pairs of --data: every metric "
                                   "with a 95% bootstrap interval, and each ensemble's paired difference to the "
                                   "first. Baselines are trained on the data's training split.")
    p.add_argument("ensembles", nargs="+", metavar="ENSEMBLE", help="exported ensemble folders; the first is the "
                   "reference the others are compared with")
    _add_task_args(p)
    p.add_argument("--split", choices=_exports_splits(), help=_exports_split_help() + "; with --baseline on pair "
                   "data other than the training data, test")
    p.add_argument("--baseline", action="append", default=[], choices=sorted(_baseline_names()),
                   help="also train this fixed recipe on the data's training split and compare it (repeatable; "
                        "default: none)")
    p.add_argument("--out", metavar="FOLDER", help="report folder to write (report.md, compare.json, bon.png for "
                   "gold data, calibration.png); an earlier comparison there is replaced, any other non-empty folder "
                   "is refused (default: none, print only)")
    p.set_defaults(func=cmd_compare)

    spaces = sub.add_parser("spaces", help="search spaces").add_subparsers(dest="spaces_command", required=True)
    p = spaces.add_parser("show", help="print a built-in space (default, seed-paper, coste) or a YAML space file",
                          formatter_class=HelpFormatter)
    p.add_argument("name", help="a built-in space (default, seed-paper, coste) or the path of a YAML space file")
    p.set_defaults(func=cmd_spaces_show)

    p = sub.add_parser("launch", help="run a distributed ensemble search (Optuna × Ray)", formatter_class=HelpFormatter)
    _add_task_args(p)
    p.add_argument("--space", default="default", help="a built-in space (default, seed-paper, coste) or a YAML file")
    p.add_argument("--trials", type=int, default=20, help="trials to add in this launch")
    p.add_argument("--study", default="rmsearch", help="study name; launching again with the same name resumes it")
    p.add_argument("--runs", default="runs", help="run folder: RUNS/STUDY holds storage, tb/, report/, best/")
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///RUNS/STUDY/study.db)")
    p.add_argument("--heartbeat", type=int, default=10, metavar="S", help="RDB storages: seconds between the "
                   "heartbeats the driver records for each trial it runs (default: %(default)s)")
    p.add_argument("--grace", type=int, default=60, metavar="S", help="RDB storages: a RUNNING trial without a "
                   "heartbeat for this long is stale (its driver died, on any host): marked FAIL and queued again; "
                   "keep it well above every driver's --heartbeat (default: %(default)s)")
    p.add_argument("--address", help="join a Ray cluster (e.g. 127.0.0.1:6379 or auto); default a local Ray")
    p.add_argument("--workers", type=int, help="most member jobs at once (default: all CPUs)")
    from rmsearch.search import DEFAULT_GOLD, DEFAULT_PAIRS, OBJECTIVES

    p.add_argument("--objective", metavar="NAME",
                   help=f"what trials are ranked on, on the validation split: {'; '.join(f'{o.name}: {o.help}' for o in OBJECTIVES.values()).replace('%', '%%')}. "
                        f"Default: {DEFAULT_GOLD} with gold, {DEFAULT_PAIRS} for pair data")
    p.add_argument("--multi-objective", action="store_true", help="add ensemble cost (parameters) as a 2nd objective")
    p.add_argument("--prune", action="store_true", help="prune trials whose partial ensembles trail the median")
    p.add_argument("--top", type=int, default=3, help="trials in the final robustness evaluation (default: %(default)s)")
    p.add_argument("--baselines", default="seed-paper,linear", metavar="LIST",
                   help="fixed recipes trained once (cached) and compared with the export on the test split, "
                        "comma-separated, or none (default: %(default)s)")
    p.add_argument("--no-select", action="store_true", help="export the best trial without trying a greedy "
                   "selection over the members of all trials")
    p.add_argument("--stress", action="store_true", help="also retrain the best configuration at label-flip rates "
                   "5/15/25/40%% (costs about four times its training)")
    p.add_argument("--no-final", action="store_true", help="skip the final evaluation and export")
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("export", help="export a trial's ensemble (default: the best) as manifest + safetensors",
                       formatter_class=HelpFormatter)
    p.add_argument("--runs", default="runs", help="run folder of the launch (RUNS/STUDY holds the study)")
    p.add_argument("--study", default="rmsearch", help="study name given to launch")
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL of the study (default: "
                   "sqlite:///RUNS/STUDY/study.db)")
    p.add_argument("--trial", type=int, metavar="N", help="trial number to export (default: the best complete trial)")
    p.add_argument("--select", action="store_true", help="export whichever of the best trial and a greedy selection "
                   "over the members of all trials has the better validation objective (what launch exports)")
    p.add_argument("--out", required=True, metavar="FOLDER", help="export folder to write; an earlier export there "
                   "is replaced, any other non-empty folder is refused; required")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("score", help="score embeddings (.npy of shape (n, dim)) with an exported ensemble",
                       formatter_class=HelpFormatter)
    p.add_argument("--ensemble", required=True, metavar="FOLDER", help="exported ensemble folder (from rmsearch "
                   "export, or RUNS/STUDY/best of a launch); required")
    p.add_argument("--embeddings", required=True, metavar="FILE", help=".npy file of shape (n, dim), float, embedded "
                   "with the model the ensemble was trained on; required")
    p.add_argument("--out", metavar="FILE", help="output .npy of n float32 scores (default: EMBEDDINGS.scores.npy); "
                   "an existing file is refused unless --force")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=cmd_score)

    from rmsearch.reproduce import add_reproduce_parser

    add_reproduce_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    from rmsearch.openmp import spin_env

    os.environ.update(spin_env())  # before torch or scikit-learn load (see rmsearch.openmp)
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
