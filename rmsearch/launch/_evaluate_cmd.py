"""`rmsearch evaluate` (a configuration trained here, or an exported ensemble scored) and `rmsearch compare`."""

from __future__ import annotations

import json
from pathlib import Path

from rmsearch.console import plain_console
from rmsearch.errors import RMSearchError
from rmsearch.evaluate import SPLIT_HELP, SPLITS
from rmsearch.files import write_json
from rmsearch.launch._args import (
    HelpFormatter,
    add_task_args,
    check_json_target,
    task_config_from_args,
    task_from_args,
)
from rmsearch.search import BASELINES

DEFAULT_POINT = {
    "head": "mlp", "members": 8, "aggregation": "uwo", "uwo.lambda": 1.0, "standardize": True,
    "mlp.hidden": [64, 32], "mlp.bootstrap": True, "mlp.patience": 0, "mlp.epochs": 40,
}
"""The configuration `rmsearch evaluate` trains when given none: 8 small MLPs, each on its own bootstrap draw of
the pairs, trained 40 epochs without early stopping (members fitted that far disagree off-distribution, which
is what conservative aggregation uses)."""


EVALUATE_OUT = "runs/evaluate"
"""Where `rmsearch evaluate` writes its report when training a configuration and given no --out."""


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
    return _active_point(point, given)


def _active_point(point: dict, given: dict) -> dict:
    """`point` without the keys that would do nothing (another head's or aggregation's parameters, a field its
    head's other settings switch off): refused where the user gave one, dropped where it is a default's."""
    from rmsearch.ensembles import PARAM_NAMES
    from rmsearch.errors import ConfigError
    from rmsearch.heads import HEAD_CONFIGS

    head, aggregation = point.get("head", "mlp"), point.get("aggregation", "mean")
    out = {}
    for key, value in point.items():
        group, _, name = key.partition(".")
        why, fix = None, "drop it"
        if group in HEAD_CONFIGS and name and group != head:
            why, fix = f"it applies only when head is {group!r}, and the head is {head!r}", f"add --set head={group}"
        elif group in PARAM_NAMES and name and group != aggregation:
            why = f"it applies only when aggregation is {group!r}, and the aggregation is {aggregation!r}"
            fix = f"add --set aggregation={group}"
        elif group in HEAD_CONFIGS and name:
            values = {k.partition(".")[2]: v for k, v in point.items() if k.partition(".")[0] == group}
            why = HEAD_CONFIGS[group].inapplicable(name, values)
        if why is None:
            out[key] = value
        elif key in given:
            where = given[key][0] or f"--set {key}={value}"
            raise ConfigError(f"{where}: {key} does nothing here: {why}. Drop it, or {fix}." if fix != "drop it"
                              else f"{where}: {key} does nothing here: {why}. Drop it.")
    return out


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


def add_evaluate_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="train one ensemble configuration and write a robustness report",
                       formatter_class=HelpFormatter)
    add_task_args(p)
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
    p.add_argument("--split", choices=SPLITS, help=SPLIT_HELP.replace("%", "%%"))
    p.add_argument("--lower-bound", action="store_true", help=LOWER_BOUND_HELP)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="score several exported ensembles (and baselines) on the same data, with "
                       "paired differences", formatter_class=HelpFormatter,
                       description="Score exported ensembles on the same prompts or pairs of --data: every metric "
                                   "with a 95% bootstrap interval, and each ensemble's paired difference to the "
                                   "first. Baselines are trained on the data's training split.")
    p.add_argument("ensembles", nargs="+", metavar="ENSEMBLE", help="exported ensemble folders; the first is the "
                   "reference the others are compared with")
    add_task_args(p)
    p.add_argument("--split", choices=SPLITS, help=SPLIT_HELP.replace("%", "%%") + "; with --baseline on pair "
                   "data other than the training data, test")
    p.add_argument("--baseline", action="append", default=[], choices=sorted(BASELINES),
                   help="also train this fixed recipe on the data's training split and compare it (repeatable; "
                        "default: none)")
    p.add_argument("--out", metavar="FOLDER", help="report folder to write (report.md, compare.json, bon.png for "
                   "gold data, calibration.png); an earlier comparison there is replaced, any other non-empty folder "
                   "is refused (default: none, print only)")
    p.add_argument("--lower-bound", action="store_true", help=LOWER_BOUND_HELP)
    p.set_defaults(func=cmd_compare)


LOWER_BOUND_HELP = ("also score each export with 2+ members or laplace members by its lower bound, mean − β·std "
                    "(best-of-N by the lower bound), as one more entry (default: off)")


def cmd_evaluate_ensemble(args) -> int:
    """Evaluate an exported ensemble on --data (no training): all of it when it is not the ensemble's training
    data, else that launch's test split (`--split`); every metric with a 95% bootstrap interval."""
    return _score_exports(args, [args.ensemble], [], args.out, args.json, "metrics.json",
                          f"Evaluation of {args.ensemble}")


def cmd_compare(args) -> int:
    """Several exports (and baselines trained here) on the same rows of --data, with paired differences."""
    return _score_exports(args, args.ensembles, list(dict.fromkeys(args.baseline)), args.out, None, "compare.json",
                          "Comparison of " + ", ".join(args.ensembles + [f"baseline {b}" for b in args.baseline]))


def cmd_evaluate(args) -> int:
    if args.ensemble:
        return cmd_evaluate_ensemble(args)
    if args.lower_bound:
        raise RMSearchError("--lower-bound applies to --ensemble (an exported ensemble scored on --data); a "
                            "configuration trained here reports its aggregation. Drop --lower-bound, or pass "
                            "--ensemble FOLDER.")
    if args.split is not None:
        raise RMSearchError(f"--split {args.split} applies to --ensemble (an exported ensemble scored on --data); "
                            f"training a configuration always reports the task's validation and test splits. Drop "
                            f"--split, or pass --ensemble FOLDER.")
    from rich.console import Console

    from rmsearch.ensembles import EnsembleConfig
    from rmsearch.evaluate import (
        check_report_target,
        evaluate_configuration,
        write_report,
    )

    config = EnsembleConfig.from_point(load_point(args.config, args.set))
    out = Path(args.out or EVALUATE_OUT)
    check_report_target(out, "--out")  # before any work: a folder that is not an earlier report is refused
    check_json_target(args.json, args.force)
    data, task = task_from_args(args)
    result = evaluate_configuration(config, data, task, status=Console(stderr=True).status)
    write_report(out, result.title, result.results, result.context, option="--out")
    metrics = {k: v["test"]["metrics"] for k, v in result.results.items()}
    if args.json:
        write_json(Path(args.json), metrics)
    print_table(metrics)
    print(f"report: {out / 'report.md'}")
    return 0


def _score_exports(args, paths: list[str], baselines: list[str], out: str | None, json_path: str | None,
                   json_name: str, title: str) -> int:
    """Evaluate the exports at `paths` (and `baselines`, trained here) on --data: print the table, write the
    JSON to `json_path` and a report folder to `out` where given. Every refusal comes before any work."""
    from rich.console import Console

    from rmsearch.data import load_data
    from rmsearch.search import check_annotator_applies
    from rmsearch.evaluate import (
        check_report_target,
        evaluate_exports,
        write_result_report,
    )

    check_json_target(json_path, getattr(args, "force", False))
    if out is not None:
        check_report_target(Path(out), "--out", files=("report.md", json_name))
    console = Console(stderr=True)
    data = load_data(args.data, seed=args.seed)
    task_config = task_config_from_args(args)
    check_annotator_applies(task_config.annotator, data.kind)
    blob = evaluate_exports(paths, data, args.data, task_config, args.split,
                            {name: BASELINES[name]() for name in baselines}, status=console.status,
                            lower_bound=getattr(args, "lower_bound", False))
    print_result(blob, plain_console(highlight=False))
    if json_path is not None:
        write_json(Path(json_path), blob)
        print(f"json:   {json_path}")
    if out is not None:
        write_result_report(Path(out), "--out", json_name, title, blob)
        print(f"report: {Path(out) / 'report.md'}")
    return 0


def print_result(blob: dict, console) -> None:
    """The facts, the table of every metric with its interval, and the legend of an `evaluate_exports` result."""
    from rmsearch.evaluate import category_tables, facts, legend, table_rows

    for what, text in facts(blob):
        console.print(f"{what}: {text}")
    console.print(f"split {blob['split']}: {blob['n_units']:,} {blob['units']} scored; value [95% interval]")
    console.print(rich_table(*table_rows(blob)))
    for title, header, rows in category_tables(blob.get("categories"), [e["name"] for e in blob["ensembles"]]):
        console.print(rich_table(header, rows, title=title))
    for line in legend(blob):
        console.print(line, highlight=False)


def print_table(rows: dict[str, dict], title: str = "test split") -> None:
    from rmsearch.evaluate import metrics_rows

    plain_console().print(rich_table(*metrics_rows(rows), title=title))


def rich_table(header: list[str], body: list[list[str]], title: str | None = None):
    """A (header, body) table (see `rmsearch.evaluate.markdown_table`) for the terminal: names left, values right."""
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in body:
        table.add_row(*row)
    return table
