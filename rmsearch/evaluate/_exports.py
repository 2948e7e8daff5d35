"""Exported ensembles scored on any data: every metric with a 95% bootstrap interval, calibration, and paired
differences against the first ensemble (what `rmsearch evaluate --ensemble` and `rmsearch compare` print).

Which rows are scored (`split`):

    all    data the ensembles were not trained on: every prompt of its test split (gold data: the candidate
           pools; the train split has too few candidates per prompt for best-of-N) or every pair (pair data)
    test   the test split of the launch that trained an ensemble, rebuilt from what its manifest records
    val    that launch's validation split (used to select the ensemble, so its numbers are optimistic)

Whether the data is an ensemble's training data is decided by the data's fingerprint against the manifest's
`dataset.fingerprint`. Default: `test` when it is, `all` when it is not.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import numpy as np

from rmsearch.errors import RMSearchError
from rmsearch.evaluate._bounds import BOUNDS_HELP
from rmsearch.evaluate._calibration import ECE_HELP, pair_margins, reliability, sigmoid
from rmsearch.evaluate._intervals import category_intervals, intervals, unit_table
from rmsearch.evaluate._length import LENGTH_NAME, LENGTH_RULE, length_scores
from rmsearch.evaluate._split import evaluate_split

SPLITS = ("all", "test", "val")
SPLIT_HELP = ("which rows to score: 'all' = every prompt of the data's test split with all its candidates (gold "
              "data) or every pair (pair data); 'test' / 'val' = the test / validation split of the launch that "
              "trained the ensemble, rebuilt from its manifest (on other data only with baselines, which train on "
              "the data's own training split). Default: test when --data is the data the ensemble was trained on "
              "(fingerprints match), all otherwise")
@dataclass
class Scored:
    """One ensemble (export or baseline) and what it gave on the split."""

    name: str
    source: str
    """What it is: 'export FOLDER', or a baseline's recipe and training."""
    ensemble: object
    """An `Ensemble`; None for a fixed rule that scores without embeddings (the length baseline)."""
    trained: bool | None = None
    """--data is its training data (True), is not (False), or its manifest does not say (None)."""
    task: dict | None = None
    """The task its launch recorded (`extra.task`: key, config), for exports of a search."""
    record: dict | None = None
    scores: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    """(lower, upper) reward bounds of every row (`Ensemble.bounds`), for ensembles with an uncertainty."""
    evaluation: dict = field(default_factory=dict)
    baseline: bool = False
    derived: str | None = None
    """For an entry computed from another one's scores (best-of-N by its lower bound): what it is."""


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


def _launch_config(spec: str, split: str | None, given, trained: list[Scored], notes: list[str]):
    """The TaskConfig of the launch that trained the exports in `trained` (all on --data): the one their manifests
    record. Several exports trained with different splits have no common test split: refused unless --split all.
    Task options `given` that differ are ignored, with a note."""
    keys = {(e.task or {}).get("key") for e in trained}
    names = ", ".join(e.name for e in trained)
    if len(keys) > 1 and split != "all":
        raise RMSearchError(f"{names} were trained on --data {spec} with different splits (their manifests "
                            f"record different tasks), so no test split is held out from all of them. Compare them "
                            f"on data none was trained on, or pass --split all knowing it includes their training "
                            f"data.")
    config = _recorded_config(trained[0])
    if config is None:
        notes.append(f"{trained[0].name}'s manifest records no task: its splits were rebuilt from --seed "
                     f"{given.seed} and the annotator options given.")
        return given
    from rmsearch.data import TaskConfig

    if given != TaskConfig() and given != config:  # task options given on the command line that do not apply
        ann = config.annotator
        labels_by = f"flip rate {ann.flip_rate}" if ann.flip_rate is not None else f"quality {ann.quality}"
        notes.append(f"the splits are those {trained[0].name}'s launch recorded (seed {config.seed}, folds "
                     f"{'auto' if config.folds is None else config.folds}, {ann.pairing}-prompt pairs, {labels_by}, "
                     f"{ann.pairs_per_prompt} pairs per prompt); the task options given were ignored.")
    return config


def resolve_scope(spec: str, split: str | None, given, data, exports: list[Scored], baselines: bool) -> Scope:
    """The split to score, from `split` (None: the default), whether `data` (--data `spec`) trained any export,
    and whether baselines are asked for; `given` is the TaskConfig of the task options given."""
    from rmsearch.data import full_split, make_task

    trained = [e for e in exports if e.trained]
    kind, what, notes = data.kind, f"--data {spec}", []
    config = _launch_config(spec, split, given, trained, notes) if trained else given
    names = ", ".join(e.name for e in trained)
    if trained:
        split = split or "test"
    else:
        split = split or ("test" if baselines and kind == "pairs" else "all")
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
        _check_rebuilt(trained[0], task, split)
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


def _check_rebuilt(export: Scored, task, split: str) -> None:
    """The task rebuilt for an export's launch must hold out what its manifest records; a cross-validated
    launch has no validation split apart from the refit's training pairs."""
    if export.record is not None and _held_out(export.record) != _held_out(task.record):
        raise RMSearchError(f"the splits rebuilt from {export.name}'s manifest differ from the ones it "
                            f"records (another rmsearch version made it?). Pass --split all to score all of the "
                            f"data, knowing it includes what the ensemble was trained and selected on.")
    if split == "val" and task.folds:
        raise RMSearchError(f"--split val: {export.name} comes from a study that selected by "
                            f"{len(task.folds)}-fold cross-validation, so its validation split is every pair "
                            f"outside the test split, and the exported refit was trained on all of them: scores "
                            f"there are training accuracy. Use --split test (the {len(task.test.pairs):,} pairs "
                            f"no member saw).")


def _describe(split, kind: str, what: str) -> str:
    if kind == "gold":
        prompts, m = split.gold.shape
        return (f"{what} — {prompts:,} prompts × {m:,} candidates; {len(split.pairs):,} gold-labelled pairs "
                f"({len(split.pairs) // prompts} within each prompt) for pair accuracy and calibration")
    return f"{what} — {len(split.pairs):,} labelled pairs"


def train_baselines(baselines: dict, task, dim: int, status) -> list[Scored]:
    """The fixed recipes `baselines` (name -> EnsembleConfig), trained here on `task`'s training pairs (the refit
    only: a cross-validated task's folds are not needed to score them)."""
    import time

    from rmsearch.ensembles import fit_group
    from rmsearch.export import ensemble_from_groups

    out = []
    refit = replace(task, folds=())
    for name, config in baselines.items():
        recipe = f"{config.members}×{config.head.kind} {config.aggregation.name}"
        start = time.perf_counter()
        with status(f"training baseline {name} ({recipe}) on {len(task.train):,} pairs …"):
            group = fit_group(refit, config.head, config.member_seeds, test=False)
        stats = None if config.standardize else np.tile([0.0, 1.0], (config.members, 1))
        ensemble = ensemble_from_groups([group], stats=stats, aggregation=config.aggregation, dim=dim)
        out.append(Scored(f"baseline {name}", f"{recipe}, trained here in {time.perf_counter() - start:.1f} s on "
                          f"{len(task.train):,} pairs", ensemble, baseline=True))
    return out


def score_entries(entries: list[Scored], split, status) -> None:
    """Aggregated scores, member uncertainty (2+ members) and reward bounds (2+ members, or members with their own
    std) of every row of `split`."""
    for e in entries:
        if e.ensemble is None:  # a fixed rule, scored when it was made
            continue
        with status(f"scoring {len(split):,} rows with {e.name} …"):
            parts = [e.ensemble.score_all(block) for _, block in split.chunks()]
        e.scores, uncertainty, lower, upper = (np.concatenate([p[i] for p in parts]) for i in range(4))
        e.uncertainty = uncertainty if len(e.ensemble.members) > 1 else None
        if len(e.ensemble.members) > 1 or e.ensemble.has_own_std:
            e.bounds = (lower, upper)


def by_lower_bound(entries: list[Scored]) -> list[Scored]:
    """`entries` with, after each export that has bounds, best-of-N by its lower bound: its lower bound as the
    score (the same members, a conservative selection)."""
    out = []
    for e in entries:
        out.append(e)
        if e.bounds is not None and not e.baseline:
            beta = e.ensemble.beta
            out.append(Scored(f"{e.name} by lower bound", f"{e.name}'s lower bound mean − {beta:g}·std as the score",
                              None, scores=e.bounds[0], derived=f"{e.name}'s members"))
    return out


def evaluate_entries(entries: list[Scored], scope: Scope) -> dict:
    """Metrics, curves and reliability of each entry (`evaluate_split`), and every metric's 95% bootstrap
    interval with paired differences to the first entry (`intervals`). Entries with a
    calibration temperature also get pair NLL and ECE at that temperature."""
    split = scope.split
    for e in entries:
        e.evaluation = evaluate_split(e.scores, split, e.uncertainty)
    tables = [unit_table(e.scores, split, e.uncertainty, e.bounds) for e in entries]
    ci = intervals(tables)
    ci["categories"] = category_intervals(tables, split)
    calibrated = [e for e in entries if e.ensemble is not None and e.ensemble.temperature]
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
    if e.derived:
        return e.derived
    if e.ensemble is None:
        return "nothing (a fixed rule)"
    if e.baseline:
        return "this data's training split"
    return {True: "this data (fingerprint matches its manifest)", False: "other data (fingerprint differs)",
            None: "unknown (its manifest records no dataset fingerprint)"}[e.trained]


def result_blob(spec: str, data, scope: Scope, entries: list[Scored], ci: dict) -> dict:
    units = f"{ci['n']:,} {ci['units']}"
    return {
        "data": {"spec": str(spec), "name": data.name, "kind": data.kind, "fingerprint": data.fingerprint},
        "split": scope.name, "scored": scope.describe, "units": ci["units"], "n_units": ci["n"],
        "pairs": len(scope.split.pairs),
        "interval": f"{ci['level']:.0%} percentile bootstrap over the {units} ({ci['draws']} resamples)"
                    + ("; a difference is an entry − the first, over the same resamples (paired)"
                       if len(entries) > 1 else ""),
        "calibration": ECE_HELP + "; at T: of σ((s_a − s_b) / T) with the export's fitted temperature T. A "
                       "resample's ECE is biased upward, so its interval can lie above the value",
        "notes": scope.notes,
        "bounds": BOUNDS_HELP if any(e.bounds is not None for e in entries) else None,
        "categories": ci.get("categories"),
        "ensembles": [{"name": e.name, "source": e.source, "trained_on": _trained_on(e),
                       "temperature": e.ensemble.temperature if e.ensemble is not None else None,
                       "metrics": values, "difference_to_first": diff,
                       **{k: v for k, v in e.evaluation.items() if k != "metrics"}}
                      for e, values, diff in zip(entries, ci["values"], ci["differences"])],
    }


def evaluate_exports(paths: list[str], data, spec: str, given, split: str | None = None,
                     baselines: dict | None = None, status=None, lower_bound: bool = False) -> dict:
    """The exports at `paths` (and `baselines`, name -> EnsembleConfig, trained here on the data's training split)
    scored on `data` (named `spec` in messages, as --data): the result blob that `table_rows`, `facts`, `legend`
    and `write_result_report` render. `given` is the TaskConfig of the task options given (used where no
    manifest records one); `split` is 'all', 'test', 'val' or None (the default, see above). `status(text)` is a
    context manager shown around slow steps (default: none). `lower_bound` adds, after each export with bounds,
    best-of-N by its lower bound (`by_lower_bound`)."""
    status = status or (lambda text: nullcontext())
    exports = load_exports(paths, data, spec)
    scope = resolve_scope(spec, split, given, data, exports, bool(baselines))
    entries = exports + (train_baselines(baselines, scope.task, data.dim, status) if baselines else [])
    lengths = length_scores(scope.split)
    if lengths is not None:  # text-derived data: "prefer the longer answer" belongs beside every model
        entries.append(Scored(LENGTH_NAME, LENGTH_RULE, None, baseline=True, scores=lengths))
    score_entries(entries, scope.split, status)
    if lower_bound:
        entries = by_lower_bound(entries)
    ci = evaluate_entries(entries, scope)
    return result_blob(spec, data, scope, entries, ci)
