"""`rmsearch evaluate --ensemble` and `rmsearch compare`: exported ensembles scored on any data, every metric
with a 95% bootstrap interval, calibration, and paired differences against the first ensemble.

Which rows are scored (`--split`):

    all    data the ensembles were not trained on: every prompt of its test split (gold data: the candidate
           pools; the train split has too few candidates per prompt for best-of-N) or every pair (pair data)
    test   the test split of the launch that trained an ensemble, rebuilt from what its manifest records
    val    that launch's validation split (used to select the ensemble, so its numbers are optimistic)

Whether `--data` is an ensemble's training data is decided by the data's fingerprint against the manifest's
`dataset.fingerprint`. Default: `test` when it is, `all` when it is not.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rmsearch.errors import RMSearchError

SPLITS = ("all", "test", "val")
SPLIT_HELP = ("which rows to score: 'all' = every prompt of the data's test split with all its candidates (gold "
              "data) or every pair (pair data); 'test' / 'val' = the test / validation split of the launch that "
              "trained the ensemble, rebuilt from its manifest (on other data only with baselines, which train on "
              "the data's own training split). Default: test when --data is the data the ensemble was trained on "
              "(fingerprints match), all otherwise")
ORDER = ("gold_final", "gold_peak", "peak_n", "drop", "gain", "bon_auc", "spearman", "uncertainty_error_spearman",
         "pair_accuracy", "pair_nll", "pair_ece", "pair_nll_calibrated", "pair_ece_calibrated")
EXTRA_LABELS = {"bon_auc": "BoN AUC (mean over log N)", "uncertainty_error_spearman": "uncertainty–error ρ",
                "pair_ece": "pair ECE", "pair_nll_calibrated": "pair NLL at T", "pair_ece_calibrated": "pair ECE at T"}


def labels() -> dict[str, str]:
    from rmsearch.evaluate import COLUMNS

    return {**dict(COLUMNS), **EXTRA_LABELS}


@dataclass
class Scored:
    """One ensemble (export or baseline) and what it gave on the split."""

    name: str
    source: str
    """What it is: 'export FOLDER', or a baseline's recipe and training."""
    ensemble: object
    trained: bool | None = None
    """--data is its training data (True), is not (False), or its manifest does not say (None)."""
    task: dict | None = None
    """The task its launch recorded (`extra.task`: key, config), for exports of a search."""
    record: dict | None = None
    scores: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    evaluation: dict = field(default_factory=dict)
    baseline: bool = False


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


def write_json(path: Path, blob: dict) -> None:
    """Write `blob` to `path` whole or not at all (a temporary sibling renamed into place)."""
    import os

    from rmsearch.export import jsonable

    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(json.dumps(jsonable(blob), indent=2, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_exports(paths: list[str], data, spec: str) -> list[Scored]:
    """The exports at `paths`, each with whether `data` (given as --data `spec`) is what it was trained on."""
    from rmsearch import load_ensemble
    from rmsearch.export import read_manifest

    out, seen = [], {}
    for path in paths:
        ensemble = load_ensemble(path)
        manifest = read_manifest(path)
        if data.dim != ensemble.dim:
            raise RMSearchError(f"--data {spec} has dim {data.dim} but the ensemble in {path} scores dim "
                                f"{ensemble.dim}; evaluate it on data embedded with the same model.")
        fingerprint = (manifest.get("dataset") or {}).get("fingerprint")
        extra = manifest.get("extra") or {}
        name = str(path)
        seen[name] = seen.get(name, 0) + 1
        out.append(Scored(name if seen[name] == 1 else f"{name} #{seen[name]}", f"export {path}", ensemble,
                          trained=None if fingerprint is None else fingerprint == data.fingerprint,
                          task=extra.get("task"), record=extra.get("split_record")))
    return out


def _recorded_config(scored: Scored):
    """The TaskConfig an export's launch used, from its manifest (None where it records none)."""
    from rmsearch.data import Annotator, TaskConfig

    config = (scored.task or {}).get("config")
    try:
        return TaskConfig(**{**config, "annotator": Annotator(**config["annotator"])})
    except (TypeError, KeyError):  # none recorded, or written by a version with other fields
        return None


def _args_config(args):
    from rmsearch.data import TaskConfig
    from rmsearch.launch._args import annotator_from_args

    return TaskConfig(annotator=annotator_from_args(args), seed=args.seed, folds=args.folds)


def _held_out(record: dict) -> dict:
    """The validation and test rows of a split record (what must match when the task is rebuilt)."""
    return record.get("test_split") or {k: record.get("pairs", {}).get(k) for k in ("validation", "test")}


@dataclass
class Scope:
    """What is scored: `split` (a `Split`) named `name` ('all', 'test', 'val'), described in `describe`; `task`
    is what baselines train on (None where none is needed); `notes` are caveats shown with the numbers."""

    name: str
    split: object
    describe: str
    task: object = None
    notes: list[str] = field(default_factory=list)


def _launch_config(args, trained: list[Scored], notes: list[str]):
    """The TaskConfig of the launch that trained the exports in `trained` (all on --data): the one their manifests
    record. Several exports trained with different splits have no common test split: refused unless --split all.
    Task options given on the command line that differ are ignored, with a note."""
    keys = {(e.task or {}).get("key") for e in trained}
    names = ", ".join(e.name for e in trained)
    if len(keys) > 1 and args.split != "all":
        raise RMSearchError(f"{names} were trained on --data {args.data} with different splits (their manifests "
                            f"record different tasks), so no test split is held out from all of them. Compare them "
                            f"on data none was trained on, or pass --split all knowing it includes their training "
                            f"data.")
    config = _recorded_config(trained[0])
    if config is None:
        notes.append(f"{trained[0].name}'s manifest records no task: its splits were rebuilt from --seed "
                     f"{args.seed} and the annotator options given.")
        return _args_config(args)
    from rmsearch.data import TaskConfig

    given = _args_config(args)
    if given != TaskConfig() and given != config:  # task options given on the command line that do not apply
        ann = config.annotator
        labels_by = f"flip rate {ann.flip_rate}" if ann.flip_rate is not None else f"quality {ann.quality}"
        notes.append(f"the splits are those {trained[0].name}'s launch recorded (seed {config.seed}, folds "
                     f"{'auto' if config.folds is None else config.folds}, {ann.pairing}-prompt pairs, {labels_by}, "
                     f"{ann.pairs_per_prompt} pairs per prompt); the task options given were ignored.")
    return config


def resolve_scope(args, data, exports: list[Scored], baselines: list[str]) -> Scope:
    """The split to score, from `--split`, whether `--data` trained any export, and the baselines asked for."""
    from rmsearch.data import full_split, make_task

    trained = [e for e in exports if e.trained]
    kind, what, notes = data.kind, f"--data {args.data}", []
    config = _launch_config(args, trained, notes) if trained else _args_config(args)
    names = ", ".join(e.name for e in trained)
    if trained:
        split = args.split or "test"
    else:
        split = args.split or ("test" if baselines and kind == "pairs" else "all")
        if split in ("test", "val") and not baselines:
            unknown = [e.name for e in exports if e.trained is None]
            why = (f"the manifest of {unknown[0]} records no dataset fingerprint, so its launch's splits cannot be "
                   f"rebuilt" if unknown else f"{what} is not the data {exports[0].name} was trained on (its "
                   f"fingerprint {data.fingerprint} is not the manifest's dataset.fingerprint), so there is no "
                   f"{split} split of that launch to rebuild")
            raise RMSearchError(f"--split {split}: {why}. No row of this data was seen in training: score all of it "
                                f"with --split all (the default for such data).")
    if split == "all" and kind == "pairs" and baselines:
        raise RMSearchError("--split all with --baseline on pair data: the baselines train on the data's own "
                            "training pairs, which 'all' includes. Use --split test" + ("" if trained else
                            " (the default with baselines)") + ", or drop --baseline.")
    task = make_task(data, config) if trained or baselines or split != "all" else None
    if trained:
        record = trained[0].record
        if record is not None and _held_out(record) != _held_out(task.record):
            raise RMSearchError(f"the splits rebuilt from {trained[0].name}'s manifest differ from the ones it "
                                f"records (another rmsearch version made it?). Pass --split all to score all of the "
                                f"data, knowing it includes what the ensemble was trained and selected on.")
        if split == "val" and task.folds:
            raise RMSearchError(f"--split val: {trained[0].name} comes from a study that selected by "
                                f"{len(task.folds)}-fold cross-validation, so its validation split is every pair "
                                f"outside the test split, and the exported refit was trained on all of them: scores "
                                f"there are training accuracy. Use --split test (the {len(task.test.pairs):,} pairs "
                                f"no member saw).")
    if split == "all":
        chosen = full_split(data, config)
        describe = _describe(chosen, kind, "all: every prompt of the data's test split, with all its candidates"
                             if kind == "gold" else "all: every pair of the data")
        if trained:
            notes.append(f"{what} is the data {names} {'was' if len(trained) == 1 else 'were'} trained on: 'all' "
                         + ("includes the validation prompts used to select it." if kind == "gold" else
                            "includes the pairs it was trained on, so its numbers are training accuracy."))
    else:
        chosen = getattr(task, split)
        full = "test" if split == "test" else "validation"
        describe = _describe(chosen, kind, f"{split}: the {full} split of the launch that trained {names}" if trained
                             else f"{split}: the {full} split carved from {what} with --seed {config.seed}, held out "
                                  f"from the baselines' training pairs")
        if split == "val":
            notes.append(f"the validation split was used to select {names}: its numbers are optimistic." if trained
                         else "the validation split is held out from the baselines' training pairs.")
    other = [e.name for e in exports if e.trained is False]
    if other:
        notes.append(f"{what} is not the data {', '.join(other)} {'was' if len(other) == 1 else 'were'} trained on.")
    notes += [f"{e.name}: its manifest records no dataset fingerprint; scored as data it did not see."
              for e in exports if e.trained is None]
    return Scope(split, chosen, describe, task, notes)


def _describe(split, kind: str, what: str) -> str:
    if kind == "gold":
        prompts, m = split.gold.shape
        return (f"{what} — {prompts:,} prompts × {m:,} candidates; {len(split.pairs):,} gold-labelled pairs "
                f"({len(split.pairs) // prompts} within each prompt) for pair accuracy and calibration")
    return f"{what} — {len(split.pairs):,} labelled pairs"


def train_baselines(names: list[str], task, dim: int, console) -> list[Scored]:
    """The fixed recipes of `rmsearch.search._baselines`, trained here on `task`'s training pairs (the refit
    only: a cross-validated task's folds are not needed to score them)."""
    import time

    from rmsearch.ensembles import fit_group
    from rmsearch.export import ensemble_from_groups
    from rmsearch.search import BASELINES

    out = []
    refit = replace(task, folds=())
    for name in names:
        config = BASELINES[name]()
        recipe = f"{config.members}×{config.head.kind} {config.aggregation.name}"
        start = time.perf_counter()
        with console.status(f"training baseline {name} ({recipe}) on {len(task.train):,} pairs …"):
            group = fit_group(refit, config.head, config.member_seeds, test=False)
        stats = None if config.standardize else np.tile([0.0, 1.0], (config.members, 1))
        ensemble = ensemble_from_groups([group], stats=stats, aggregation=config.aggregation, dim=dim)
        out.append(Scored(f"baseline {name}", f"{recipe}, trained here in {time.perf_counter() - start:.1f} s on "
                          f"{len(task.train):,} pairs", ensemble, baseline=True))
    return out


def score_entries(entries: list[Scored], split, console) -> None:
    """Aggregated scores and member uncertainty of every row of `split` (uncertainty only with 2+ members)."""
    for e in entries:
        with console.status(f"scoring {len(split):,} rows with {e.name} …"):
            parts = [e.ensemble.score_and_uncertainty(block) for _, block in split.chunks()]
        e.scores = np.concatenate([p[0] for p in parts])
        e.uncertainty = np.concatenate([p[1] for p in parts]) if len(e.ensemble.members) > 1 else None


def evaluate_entries(entries: list[Scored], scope: Scope) -> dict:
    """Metrics, curves and reliability of each entry (`evaluate_split`), and every metric's 95% bootstrap
    interval with paired differences to the first entry (`rmsearch.evaluate._intervals`). Entries with a
    calibration temperature also get pair NLL and ECE at that temperature."""
    from rmsearch.evaluate import (
        evaluate_split,
        intervals,
        pair_margins,
        reliability,
        sigmoid,
        unit_table,
    )

    split = scope.split
    for e in entries:
        e.evaluation = evaluate_split(e.scores, split, e.uncertainty)
    ci = intervals([unit_table(e.scores, split, e.uncertainty) for e in entries])
    calibrated = [e for e in entries if e.ensemble.temperature]
    if calibrated:  # the same resamples: paired differences to the first entry where it has a temperature
        at_t = intervals([unit_table(e.scores / e.ensemble.temperature, split) for e in calibrated])
        diffs = at_t["differences"] if calibrated[0] is entries[0] else [None] * len(calibrated)
        for e, values, diff in zip(calibrated, at_t["values"], diffs):
            i = entries.index(e)
            ci["values"][i] |= {f"{k}_calibrated": values[k] for k in ("pair_nll", "pair_ece")}
            if diff is not None:
                ci["differences"][i] |= {f"{k}_calibrated": diff[k] for k in ("pair_nll", "pair_ece")}
            margins, y = pair_margins(e.scores / e.ensemble.temperature, split)
            e.evaluation["reliability_at_temperature"] = reliability(sigmoid(margins), y)
    return ci


def _trained_on(e: Scored) -> str:
    if e.baseline:
        return "this data's training split"
    return {True: "this data (fingerprint matches its manifest)", False: "other data (fingerprint differs)",
            None: "unknown (its manifest records no dataset fingerprint)"}[e.trained]


def result_blob(args, data, scope: Scope, entries: list[Scored], ci: dict) -> dict:
    from rmsearch.evaluate import ECE_HELP

    units = f"{ci['n']:,} {ci['units']}"
    return {
        "data": {"spec": str(args.data), "name": data.name, "kind": data.kind, "fingerprint": data.fingerprint},
        "split": scope.name, "scored": scope.describe, "units": ci["units"], "n_units": ci["n"],
        "pairs": len(scope.split.pairs),
        "interval": f"{ci['level']:.0%} percentile bootstrap over the {units} ({ci['draws']} resamples)"
                    + ("; a difference is an entry − the first, over the same resamples (paired)"
                       if len(entries) > 1 else ""),
        "calibration": ECE_HELP + "; at T: of σ((s_a − s_b) / T) with the export's fitted temperature T. A "
                       "resample's ECE is biased upward, so its interval can lie above the value",
        "notes": scope.notes,
        "ensembles": [{"name": e.name, "source": e.source, "trained_on": _trained_on(e),
                       "temperature": e.ensemble.temperature, "metrics": values, "difference_to_first": diff,
                       **{k: v for k, v in e.evaluation.items() if k != "metrics"}}
                      for e, values, diff in zip(entries, ci["values"], ci["differences"])],
    }


def _fmt(key: str, v: float, signed: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    if key == "peak_n":
        return f"{v:+.0f}" if signed else f"{v:.0f}"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def table_rows(blob: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the one table: a row per metric; per entry its value [95% interval], and for every entry
    after the first its paired difference to the first [95% interval] (* where the interval excludes 0)."""
    entries = blob["ensembles"]
    first = entries[0]["name"]
    header = ["metric", entries[0]["name"]]
    for e in entries[1:]:
        header += [e["name"], f"{e['name']} − {first}"]
    names = labels()
    keys = [k for k in ORDER if any(k in e["metrics"] for e in entries)]
    rows = []
    for k in keys:
        row = [names.get(k, k)]
        for i, e in enumerate(entries):
            m = e["metrics"].get(k)
            row.append("–" if m is None else f"{_fmt(k, m['value'])} [{_fmt(k, m['low'])}, {_fmt(k, m['high'])}]")
            if i:
                d = (e["difference_to_first"] or {}).get(k)
                excludes = d is not None and (d["low"] > 0 or d["high"] < 0)
                row.append("–" if d is None else f"{_fmt(k, d['diff'], True)} [{_fmt(k, d['low'], True)}, "
                                                 f"{_fmt(k, d['high'], True)}]" + (" *" if excludes else ""))
        rows.append(row)
    return header, rows


def legend(blob: dict) -> list[str]:
    out = [f"intervals: {blob['interval']}"]
    if len(blob["ensembles"]) > 1:
        out.append("* the paired 95% interval of the difference excludes 0")
    out.append(blob["calibration"])
    if any(k == "uncertainty_error_spearman" for e in blob["ensembles"] for k in e["metrics"]):
        out.append("uncertainty–error ρ: per prompt, Spearman of the ensemble's uncertainty (std over members of "
                   "standardized scores) with the proxy's error |z(proxy) − z(gold)| (z over the prompt's "
                   "candidates), averaged; > 0 means uncertainty is high where the proxy is wrong")
    return out


def facts(blob: dict) -> list[tuple[str, str]]:
    """(what, text) lines above the table: the data, what was scored, each ensemble, the notes."""
    d = blob["data"]
    out = [("data", f"{d['spec']} ({d['kind']}, fingerprint {d['fingerprint']})"), ("scored", blob["scored"])]
    for e in blob["ensembles"]:
        t = e["temperature"]
        out.append((e["name"], f"{e['source']}; trained on {e['trained_on']}"
                    + (f"; calibration temperature T = {t:.3f}" if t else "")))
    return out + [("note", n) for n in blob["notes"]]


def print_result(blob: dict, console) -> None:
    from rich.table import Table

    for what, text in facts(blob):
        console.print(f"{what}: {text}")
    header, rows = table_rows(blob)
    console.print(f"split {blob['split']}: {blob['n_units']:,} {blob['units']} scored; value [95% interval]")
    table = Table()
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in legend(blob):
        console.print(line, highlight=False)


def write_result_report(out: Path, option: str, json_name: str, title: str, blob: dict) -> Path:
    """A report folder: report.md (the table, legend and figures), `json_name` (the blob), bon.png (gold data)
    and calibration.png (reliability diagrams); an earlier such folder is replaced whole, anything else refused."""
    from rmsearch.evaluate import check_report_target, plot_curves, plot_reliability
    from rmsearch.files import atomic_dir

    check_report_target(out, option, files=("report.md", json_name))
    header, rows = table_rows(blob)
    entries = blob["ensembles"]
    with atomic_dir(out, option) as tmp:
        md = [f"# {title}", ""] + [f"- **{what}**: {text}" for what, text in facts(blob)]
        md += ["", f"## Split {blob['split']}: {blob['n_units']:,} {blob['units']}, value [95% interval]", "",
               "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        md += [""] + [line + "." for line in legend(blob)] + [""]
        curves = {e["name"]: e["curve"] for e in entries if e.get("curve")}
        split = {"all": "test", "test": "test", "val": "validation"}[blob["split"]]
        where = {"all": "all prompts of the test split" if curves else "all pairs"}.get(blob["split"], f"{split} split")
        if curves:  # plot_curves adds "(<split> split)" to the title
            plot_curves(curves, tmp / "bon.png", f"Best-of-N on {blob['data']['name']}"
                        + (", all prompts" if blob["split"] == "all" else ""), split)
            md += [f"## Best-of-N curves ({where})", "", f"![BoN gold and proxy against KL, {where}](bon.png)", ""]
        reliabilities = {}
        for e in entries:
            reliabilities[e["name"]] = e["reliability"]
            if e.get("reliability_at_temperature"):
                reliabilities[f"{e['name']} at T = {e['temperature']:.3f}"] = e["reliability_at_temperature"]
        plot_reliability(reliabilities, tmp / "calibration.png",
                         f"Reliability of P(a ≻ b) = σ(s_a − s_b) on {blob['data']['name']}", where)
        md += [f"## Calibration ({where})", "", f"![reliability diagram, {where}](calibration.png)", ""]
        (tmp / "report.md").write_text("\n".join(md))
        write_json(tmp / json_name, blob)
    return out


def run(args, paths: list[str], baselines: list[str], out: str | None, json_path: str | None, json_name: str,
        title: str) -> int:
    """Evaluate the exports at `paths` (and `baselines`, trained here) on --data: print the table, write the
    JSON to `json_path` and a report folder to `out` where given. Every refusal comes before any work."""
    from rich.console import Console

    from rmsearch.data import load_data
    from rmsearch.evaluate import check_report_target

    check_json_target(json_path, getattr(args, "force", False))
    if out is not None:
        check_report_target(Path(out), "--out", files=("report.md", json_name))
    console = Console(stderr=True)
    data = load_data(args.data, seed=args.seed)
    exports = load_exports(paths, data, args.data)
    scope = resolve_scope(args, data, exports, baselines)
    entries = exports + (train_baselines(baselines, scope.task, data.dim, console) if baselines else [])
    score_entries(entries, scope.split, console)
    ci = evaluate_entries(entries, scope)
    blob = result_blob(args, data, scope, entries, ci)
    print_result(blob, Console(highlight=False, width=None if sys.stdout.isatty() else 160))
    if json_path is not None:
        write_json(Path(json_path), blob)
        print(f"json:   {json_path}")
    if out is not None:
        write_result_report(Path(out), "--out", json_name, title, blob)
        print(f"report: {Path(out) / 'report.md'}")
    return 0
