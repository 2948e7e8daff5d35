"""The end of a launch: choose what to export on the validation split, then report it on the test split beside
the top trials, the cross-trial selection and the fixed baselines, with paired bootstrap intervals.

1. The leader: the best trial or, unless turned off, a greedy selection over the members of all trials
   (`_select`), picked on half the validation prompts, where it is ahead of the best trial on the other half by a
   paired 95% interval. The export is the trial with the fewest parameters within one paired standard error of
   the leader, or the leader itself (`choose_export`); on a multi-objective study, a member of the Pareto front.
2. Baselines (`_baselines`): the seed paper's recipe and a linear head, trained through the head cache.
3. Everything is scored on the test split (cached member test scores, computed here where missing) and the
   chosen ensemble is compared with each baseline per test prompt (or pair): mean difference and a 95% bootstrap
   interval.
4. Optionally (`stress`), the chosen trial's configuration retrained at several label-flip rates.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rmsearch.data import NOISE_LEVELS, make_task
from rmsearch.ensembles import EnsembleConfig
from rmsearch.evaluate import LENGTH_RULE, paired_bootstrap, unit_groups, unit_values, write_report
from rmsearch.search._baselines import BASELINES
from rmsearch.search._jobs import TaskRecipe, train_members
from rmsearch.search._members import Combination, LengthRule, LowerBound, absolute_spec, evaluate_members
from rmsearch.search._progress import StepProgress
from rmsearch.search._tensorboard import log_final
from rmsearch.search._choice import Choice, choose_export, trial_combination  # noqa: F401

UNIT_LABELS = {"bon_final": "BoN gold @ N=M", "bon_auc": "BoN gold, mean over log N (AUC)",
               "pair_correct": "pair accuracy", "pair_nll": "pair NLL"}


def top_trials(handle, n: int):
    """The `n` best complete trials of a study (`StudyHandle`); multi-objective: of its Pareto front."""
    done = handle.completed()
    if handle.multi_objective:
        front = {t.number for t in handle.study.best_trials}
        done = [t for t in done if t.number in front]
    sign = -1 if handle.objective.direction == "maximize" else 1
    return sorted(done, key=lambda t: sign * t.values[0])[:n]


def ensure_test_scores(handle, records) -> None:
    """Score the test split for records that lack it (search jobs score validation only), once per head
    configuration, and cache the scores."""
    from rmsearch.ensembles import score_split
    from rmsearch.heads import head_class, head_config

    keys = {id(r): k for k, r in handle.store.loaded() if r.test_scores is None}
    groups: dict[str, list] = {}
    for r in {id(r): r for r in records if r.test_scores is None}.values():
        groups.setdefault(json.dumps(r.config, sort_keys=True), []).append(r)
    for members in groups.values():
        kind = members[0].kind
        config = head_config(kind, **{k: v for k, v in members[0].config.items() if k != "kind"})
        head = head_class(kind).from_arrays(config, [r.arrays for r in members])
        for r, s in zip(members, score_split(head, handle.task.test)):
            r.test_scores = s
            handle.store.put(keys[id(r)], r)


def label_of(config: EnsembleConfig) -> str:
    return f"{config.members}×{config.head.kind} {config.aggregation.name}"


def export_combination(handle, combination: Combination, out: Path, source: dict) -> Path:
    """Export `combination` with its validation and test metrics; `source` says what it is (trial or selection).
    The export's calibration temperature is fitted on the validation pairs (out of fold under cross-validation)."""
    from rmsearch.evaluate import fit_temperature, pair_margins
    from rmsearch.export import write_export

    ensure_test_scores(handle, combination.records)
    ev = evaluate_members(handle.task, combination, ("val", "test"), handle.objective)
    metrics = {"validation": ev["val"]["metrics"], "test": ev["test"]["metrics"], "objective": handle.objective.name}
    data = handle.study.user_attrs.get("data", {})
    extra = {"study": handle.name, **source,
             "task": {k: v for k, v in handle.study.user_attrs.get("task", {}).items() if k != "record"},
             "split_record": handle.task.record}
    calibration = fit_temperature(*pair_margins(combination.scores("val"), handle.task.val))
    calibration["fitted_on"] = ("gold-labelled validation pairs" if handle.task.has_gold else
                                "validation pairs" + (", scored out of fold" if handle.task.folds else ""))
    return write_export(out, combination.ensemble(handle.task.dim), metrics=metrics, dataset=data, extra=extra,
                        calibration=calibration)


def export_trial(handle, trial, out: Path) -> Path:
    config, combination = trial_combination(handle, trial)
    return export_combination(handle, combination, out, {"trial": trial.number, "point": config.to_point()})


def _baselines(handle, jobs, names, steps) -> dict[str, tuple[str, Combination, float]]:
    """name -> (label, combination, seconds it took to get its members: 0 when cached)."""
    out = {}
    for name in names:
        config = handle.resolve(BASELINES[name]())
        steps.step(f"baseline {name} ({label_of(config)})")
        keys = handle.member_keys(config)
        start = time.perf_counter()
        records = jobs.train(config.head.to_dict(), dict(zip(keys, config.member_seeds)))
        out[name] = (f"baseline {name}: {label_of(config)}", Combination.of(config, records),
                     time.perf_counter() - start)
    return out


def compare(task, objective, chosen: Combination, others: dict[str, Combination]) -> list[dict]:
    """The chosen ensemble against each of `others` on the test split, per unit (prompt or pair): the
    objective's unit and, for gold data, also BoN gold at N = M."""
    units = [objective.unit] + (["bon_final"] if task.has_gold and objective.unit != "bon_final" else [])
    rows = []
    for unit in units:
        mine = unit_values(chosen.scores("test"), task.test, unit)
        for name, other in others.items():
            theirs = unit_values(other.scores("test"), task.test, unit)
            diff = paired_bootstrap(mine, theirs, groups=unit_groups(task.test, unit))
            if objective.unit == unit and objective.direction == "minimize" or unit == "pair_nll":
                diff |= {"better": diff["high"] < 0}
            else:
                diff |= {"better": diff["low"] > 0}
            rows.append({"against": name, "unit": unit, "metric": UNIT_LABELS[unit], "chosen": float(mine.mean()),
                         "other": float(theirs.mean()), **diff})
    return rows


def comparison_table(rows: list[dict], units_name: str) -> str:
    lines = [f"| against | metric | chosen | baseline | difference (95% CI over {units_name}) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['against']} | {r['metric']} | {r['chosen']:.3f} | {r['other']:.3f} | "
                     f"{r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]{' ✓' if r['better'] else ''} |")
    return "\n".join(lines)


def _stress(handle, jobs, data_spec, config: EnsembleConfig) -> dict:
    """Retrain `config` on labels with several flip rates (same prompts and splits) and evaluate each, on the
    workers of `jobs` (`MemberJobs`), shipping each task as the launch ships its own."""
    import ray

    head = config.head.to_dict()
    remote = ray.remote(train_members).options(**jobs.placement.job_options(head, jobs.threads))
    device = jobs.placement.device_of(head)
    refs, tasks = {}, {}
    seeds = config.member_seeds
    chunk = max(1, -(-len(seeds) // jobs.slots))  # spread each level's members over the workers
    for rate in NOISE_LEVELS:
        tc = replace(handle.task_config, annotator=replace(handle.task_config.annotator, flip_rate=rate))
        tasks[rate] = make_task(handle.data, tc)
        in_store = not isinstance(jobs.task_ref, TaskRecipe)
        ref_task = ray.put(tasks[rate]) if in_store else TaskRecipe(absolute_spec(str(data_spec)), tc)
        refs[rate] = [remote.remote(ref_task, head, seeds[i : i + chunk], jobs.threads, True, device)
                      for i in range(0, len(seeds), chunk)]
    out = {}
    for rate, parts in refs.items():
        records = [r for part in ray.get(parts) for r in part]
        jobs.state.fit_seconds += sum(r.fit_seconds for r in records)  # stress training counts as training
        jobs.state.train_seconds += sum(r.seconds for r in records)
        label = f"flip {rate:.0%} (label error {tasks[rate].label_error:.1%})"
        out[label] = evaluate_members(tasks[rate], Combination.of(config, records), ("val", "test"))
    return out


@dataclass(frozen=True)
class FinalResult:
    """What the final evaluation decided, reported and exported."""

    report: Path
    """The report folder (report.md, plots, metrics.json)."""
    export: Path
    """The exported ensemble's folder."""
    decision: Choice
    """What was exported and why (`choose_export`)."""
    comparisons: list[dict]
    """The export against each baseline on the test split (`compare`)."""
    results: dict[str, dict]
    """label -> `evaluate_members` on validation and test, for every reported ensemble."""
    baseline_seconds: dict[str, float]
    """baseline name -> seconds its members took (0 when cached)."""
    baseline_members: int
    """Members of all baselines together."""
    top: list[tuple]
    """(trial number, values, point, results) of each top trial, best first."""

    @property
    def exported(self) -> str:
        """What was exported, in words: 'trial 3' or 'cross-trial selection'."""
        return self.decision.name

    @property
    def chosen(self) -> Combination:
        """The exported ensemble."""
        return self.decision.combination


def final_evaluation(handle, jobs, options, tb_dir: Path) -> FinalResult:
    """Choose the export of the study `handle` (`StudyHandle`), train the baselines and any stress retrainings on
    `jobs` (`MemberJobs`), report on the test split into `handle.study_dir / "report"`, export into
    `handle.study_dir / "best"` and write the test-split numbers under `tb_dir`. `options` (`LaunchOptions`) gives
    top, select, baselines, stress, data and the progress settings."""
    o = options
    stages = 3 + len(o.baselines) + (o.stress and handle.task.has_gold)
    with StepProgress(stages, o.progress, o.progress_interval) as steps:
        jobs.progress = steps  # the member jobs of the stages that train (the baselines) show there
        try:
            out = _final(handle, jobs, o, steps)
        finally:
            jobs.progress = None
        log_final(tb_dir, out.results)  # test-split numbers in TensorBoard, under tags naming the split
        steps.step("done")
    return out


def _final(h, jobs, o, steps: StepProgress) -> FinalResult:
    top = top_trials(h, o.top)
    steps.step("choosing the export (greedy selection across trials, one-standard-error rule)")
    decision = choose_export(h, top[0], select=o.select)
    candidates = _candidates(h, top, decision)
    baselines = _baselines(h, jobs, o.baselines, steps)
    candidates |= {label: combination for label, combination, _ in baselines.values()}
    others = {name: c for name, (_, c, _) in baselines.items()}
    length = LengthRule.of(h.task)
    if length is not None:  # text-derived data: the length-only rule beside every model
        candidates["baseline length: the longer answer wins"] = others["length"] = length
    steps.step("scoring the test split")
    ensure_test_scores(h, [r for c in candidates.values() for r in c.records])
    results = {label: evaluate_members(h.task, c, ("val", "test"), h.objective) for label, c in candidates.items()}
    rows = compare(h.task, h.objective, decision.combination, others)
    sections = []
    if o.stress and h.task.has_gold:
        steps.step(f"label-noise stress ({len(NOISE_LEVELS)} retrainings)")
        sections.append(_stress_section(h, jobs, o.data, top[0]))
    steps.step("report and export")
    categories = _categories(h.task, decision.combination, others)
    context = _context(h, top[0], decision, baselines, rows) | {"categories": categories}
    report = write_report(h.study_dir / "report", f"Search {h.name}: top {len(top)} trials", results, context,
                          notes=_notes(h.task, baselines, rows) + _category_notes(categories), sections=sections)
    export = export_combination(h, decision.combination, h.study_dir / "best", decision.source)
    return FinalResult(
        report=report, export=export, decision=decision, comparisons=rows, results=results,
        baseline_seconds={n: s for n, (_, _, s) in baselines.items()},
        baseline_members=sum(len(c.records) for _, c, _ in baselines.values()),
        top=[(t.number, t.values, EnsembleConfig.from_point(t.user_attrs["config"]).to_point(),
              results[next(k for k in results if k.startswith(f"trial {t.number}:"))]) for t in top])


def _candidates(handle, top, decision: Choice) -> dict[str, Combination]:
    """label -> combination for the report: the top trials, the cross-trial selection and the export."""
    candidates = {}
    for t in top:
        config, combination = trial_combination(handle, t)
        candidates[f"trial {t.number}: {label_of(config)}"] = combination
    chosen, selection = decision.combination, decision.selection
    if selection is not None:
        candidates[f"cross-trial selection{'' if chosen is selection else ' (not exported)'}: "
                   f"{selection.describe()}"] = selection
    if decision.name.startswith("trial") and not any(k.startswith(decision.name + ":") for k in candidates):
        candidates[f"{decision.name}: {label_of(EnsembleConfig.from_point(decision.source['point']))}"] = chosen
    if len(chosen.records) > 1:  # best-of-N by the export's lower bound: one more row, the same members
        bound = LowerBound(chosen)
        candidates[f"exported, by its lower bound (mean − {bound.beta:g}·std over members)"] = bound
    return candidates


def _stress_section(handle, jobs, data_spec, trial) -> dict:
    config, _ = trial_combination(handle, trial)
    return {
        "heading": f"Label-noise stress of trial {trial.number}'s configuration",
        "file": "stress.png",
        "figure_title": f"Label-noise stress of trial {trial.number}: {label_of(config)}",
        "text": f"Trial {trial.number}'s configuration ({json.dumps(config.to_point())}) retrained on the "
                f"same prompts with labels flipped at {', '.join(f'{r:.0%}' for r in NOISE_LEVELS)}.",
        "results": _stress(handle, jobs, data_spec, config),
    }


def _context(handle, best, decision: Choice, baselines: dict, rows: list[dict]) -> dict:
    """The report's header facts and metrics.json context."""
    obj, task, data, choice = handle.objective, handle.task, handle.data, decision.info
    why = (f"; the simplest trial within one paired standard error of {choice['one standard error']['leader']}"
           if "one standard error" in choice else "")
    guard = {}
    if "selection ahead" in choice:
        a = choice["selection ahead"]
        guard = {"cross-trial selection guard": (
            f"picked on {choice['pick units']} validation units, judged on the other {choice['judge units']}: "
            f"selection − trial {best.number} there {a['diff']:+.4f} [{a['low']:+.4f}, {a['high']:+.4f}] (95%, "
            f"paired); on the units it picked on {choice['pick half advantage']:+.4f}, so the pick half overstated "
            f"its advantage by {choice['overstated by']:+.4f}")}
    return {
        "study": handle.name, "storage": handle.storage, "objective": f"{obj.name} ({obj.help})",
        "data": f"{data.name} ({data.kind}, fingerprint {data.fingerprint})",
        "label error rate": task.label_error,
        "cross-validation folds": task.record.get("folds", 0) or "none (a held-out validation split)",
        "completed trials": len(handle.completed()),
        "selection": "trials ranked on the validation split; every number below the first table is from the test "
                     "split",
        "exported": f"{decision.name} (validation objective {choice['best trial validation']:.4f} for trial "
                    f"{best.number}" + (f", {choice['selection validation']:.4f} for the cross-trial selection"
                                        if "selection validation" in choice else "") + why + ")",
        **guard,
        "parameters": "learnable numbers per ensemble (weights and biases; for trees, split thresholds and leaf "
                      f"values): leader {choice['parameters']['leader']:,}, export {choice['parameters']['export']:,}",
        "baseline seconds": {name: round(s, 1) for name, (_, _, s) in baselines.items()},
        "comparisons": rows,
        "split record": task.record,
    }


def _categories(task, chosen: Combination, others: dict) -> dict | None:
    """Per category of the test prompts (where the data has categories): the exported ensemble and each
    baseline, with 95% intervals and paired differences to the export (`category_intervals`)."""
    from rmsearch.evaluate import category_intervals, unit_table

    if task.test.category is None:
        return None
    tables = [unit_table(c.scores("test"), task.test) for c in [chosen, *others.values()]]
    return {"names": ["exported"] + [f"baseline {n}" for n in others], **category_intervals(tables, task.test)}


def _category_notes(categories: dict | None) -> str:
    """The report's per-category section."""
    from rmsearch.evaluate import category_tables, markdown_table

    md = []
    for title, header, body in category_tables(categories, categories["names"] if categories else []):
        md += [f"## {title} (test split)", "", markdown_table(header, body), ""]
    if md:
        md.insert(2, "Per category of the test prompts, value [95% bootstrap interval over the category's "
                     "prompts]; a difference is paired (the same resamples), * where its interval excludes 0. "
                     "The last row weights each category by its number of prompts.\n")
    return "\n\n" + "\n".join(md) if md else ""


def _notes(task, baselines: dict, rows: list[dict]) -> str:
    """The report's section comparing the export with the baselines."""
    if not rows:
        return ""
    units_name = "test prompts" if task.has_gold or task.test.groups is not None else "test pairs"
    return (f"## The exported ensemble against the baselines (test split)\n\nPaired per {units_name[5:-1]}: mean "
            f"difference (exported − baseline) with a 95% percentile bootstrap interval over {units_name}; ✓ "
            f"marks an interval that excludes 0 in the exported ensemble's favour. Baselines cost "
            + ", ".join(f"{name} {s:.1f} s" for name, (_, _, s) in baselines.items())
            + " to train (0 when the head cache had them)."
            + (f" Baseline length: {LENGTH_RULE}." if any(r["against"] == "length" for r in rows) else "")
            + "\n\n" + comparison_table(rows, units_name))
