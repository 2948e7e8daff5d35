"""The end of a launch: the top trials evaluated on the test split, a label-noise stress of the best
configuration, a report folder, and the best ensemble exported."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rmsearch.data import Annotator, make_task
from rmsearch.ensembles import Ensemble, EnsembleConfig, Member
from rmsearch.evaluate import write_report

NOISE_LEVELS = (0.05, 0.15, 0.25, 0.40)
"""Label flip rates of the stress test (about the 5/15/25/40% label error of the seed's case study)."""


def top_trials(search, n: int):
    done = search.completed()
    if search.options.multi_objective:
        front = {t.number for t in search.study.best_trials}
        done = [t for t in done if t.number in front]
    sign = -1 if search.objective.direction == "maximize" else 1
    return sorted(done, key=lambda t: sign * t.values[0])[:n]


def trial_ensemble(search, trial) -> tuple[EnsembleConfig, list]:
    """A trial's configuration and member records, with test-split scores (scored here, once, where missing)."""
    config = EnsembleConfig.from_point(trial.user_attrs["config"])
    keys = trial.user_attrs["members"]
    records = [search.store.get(k) for k in keys]
    missing = [(k, r) for k, r in zip(keys, records) if r.test_scores is None]
    if missing:
        from rmsearch.ensembles._train import score_split
        from rmsearch.heads import head_class

        head = head_class(config.head.kind).from_arrays(config.head, [r.arrays for _, r in missing])
        scores = score_split(head, search.task.test)
        for (k, r), s in zip(missing, scores):
            r.test_scores = s
            search.store.put(k, r)
    return config, records


def to_ensemble(config: EnsembleConfig, records, dim: int) -> Ensemble:
    members = [Member(r.kind, r.config, r.seed, r.arrays) for r in records]
    stats = np.stack([r.stats for r in records]) if config.standardize else None
    return Ensemble(members, stats, config.aggregation, dim)


def export_trial(search, trial, out: Path) -> Path:
    from rmsearch.export import write_export

    from rmsearch.search._driver import evaluate_members

    config, records = trial_ensemble(search, trial)
    ev = evaluate_members(search.task, config, records, splits=("val", "test"))
    metrics = {"validation": ev["val"]["metrics"], "test": ev["test"]["metrics"], "objective": search.objective.name}
    data = search.study.user_attrs.get("data", {})
    extra = {"study": search.options.study, "trial": trial.number, "point": config.to_point(),
             "task": {k: v for k, v in search.study.user_attrs.get("task", {}).items() if k != "record"},
             "split_record": search.task.record}
    return write_export(out, to_ensemble(config, records, search.task.dim), metrics=metrics, dataset=data, extra=extra)


def _stress(search, config: EnsembleConfig) -> dict:
    """Retrain `config` on labels with several flip rates (same prompts and splits) and evaluate each."""
    import ray

    from rmsearch.search._driver import evaluate_members
    from rmsearch.search._driver import _absolute
    from rmsearch.search._jobs import TaskRecipe, train_members

    remote = ray.remote(num_cpus=search.threads, max_retries=3)(train_members)
    refs, tasks = {}, {}
    seeds = config.member_seeds
    chunk = max(1, -(-len(seeds) // search.slots))  # spread each level's members over the workers
    for rate in NOISE_LEVELS:
        tc = replace(search.task_config, annotator=Annotator(flip_rate=rate))
        tasks[rate] = make_task(search.data, tc)
        in_store = search.data_path == "object store"
        ref_task = ray.put(tasks[rate]) if in_store else TaskRecipe(_absolute(str(search.options.data)), tc)
        refs[rate] = [remote.remote(ref_task, config.head.to_dict(), seeds[i : i + chunk], search.threads)
                      for i in range(0, len(seeds), chunk)]
    out = {}
    for rate, parts in refs.items():
        records = [r for part in ray.get(parts) for r in part]
        search.state.fit_seconds += sum(r.fit_seconds for r in records)  # stress training counts as training
        search.state.train_seconds += sum(r.seconds for r in records)
        label = f"flip {rate:.0%} (label error {tasks[rate].label_error:.1%})"
        out[label] = evaluate_members(tasks[rate], config, records, splits=("val", "test"))
    return out


def final_evaluation(search) -> dict:
    from rmsearch.search._driver import evaluate_members

    o = search.options
    top = top_trials(search, o.top)
    results, rows = {}, []
    for t in top:
        config, records = trial_ensemble(search, t)
        ev = evaluate_members(search.task, config, records, splits=("val", "test"))
        results[f"trial {t.number}: {len(records)}×{config.head.kind} {config.aggregation.name}"] = ev
        rows.append((t, config, ev))
    best_trial, best_config, _ = rows[0]
    sections = []
    if search.task.has_gold:
        sections.append({
            "heading": "Label-noise stress of the best configuration",
            "file": "stress.png",
            "text": f"Trial {best_trial.number}'s configuration retrained on the same prompts with labels flipped at "
                    f"{', '.join(f'{r:.0%}' for r in NOISE_LEVELS)}.",
            "results": _stress(search, best_config),
        })
    context = {
        "study": o.study, "storage": search.storage, "objective": search.objective.name,
        "data": f"{search.data.name} ({search.data.kind}, fingerprint {search.data.fingerprint})",
        "label error rate": search.task.label_error,
        "completed trials": len(search.completed()),
        "selection": "trials ranked on the validation split; every number below the first table is from the test split",
        "best configuration": str(best_config.to_point()),
        "split record": search.task.record,
    }
    report = write_report(search.study_dir / "report", f"Search {o.study}: top {len(top)} trials", results, context,
                          sections=sections)
    export = export_trial(search, best_trial, search.study_dir / "best")
    return {"report": report, "export": export, "top": [(t.number, t.values, c.to_point(), ev) for t, c, ev in rows]}
