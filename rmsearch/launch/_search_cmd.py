"""`rmsearch launch`, `export`, `score` and `spaces show`: run a search, export from a study, score with an export."""

from __future__ import annotations

from pathlib import Path

from rmsearch.errors import RMSearchError
from rmsearch.launch._args import HelpFormatter, add_study_args, add_task_args, annotator_from_args


def add_search_parsers(sub) -> None:
    spaces = sub.add_parser("spaces", help="search spaces").add_subparsers(dest="spaces_command", required=True)
    p = spaces.add_parser("show", help="print a built-in space (default, seed-paper, coste) or a YAML space file",
                          formatter_class=HelpFormatter)
    p.add_argument("name", help="a built-in space (default, seed-paper, coste) or the path of a YAML space file")
    p.set_defaults(func=cmd_spaces_show)

    _add_launch_parser(sub)
    _add_export_parsers(sub)


def _add_launch_parser(sub) -> None:
    p = sub.add_parser("launch", help="run a distributed ensemble search (Optuna × Ray)", formatter_class=HelpFormatter)
    add_task_args(p)
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
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="where member jobs train mlp, mlp_clf and linear (solver adam) heads: cpu, cuda (each job "
                        "holds --gpus-per-job of a GPU; bf16 where the GPU has bf16 tensor cores and precision is "
                        "auto) or auto (cuda where torch on this machine sees a GPU, else cpu). gbdt, laplace, "
                        "prototype and linear (solver lbfgs) train on the CPU under any device (default: %(default)s)")
    p.add_argument("--gpus-per-job", type=float, metavar="G",
                   help="with --device cuda or auto: the share of a GPU each member job asks Ray for, e.g. 0.25 runs "
                        "four jobs on each GPU (default: 1)")
    from rmsearch.search import DEFAULT_GOLD, DEFAULT_PAIRS, OBJECTIVES

    objectives = "; ".join(f"{o.name}: {o.help}" for o in OBJECTIVES.values()).replace("%", "%%")
    p.add_argument("--objective", metavar="NAME",
                   help=f"what trials are ranked on, on the validation split: {objectives}. "
                        f"Default: {DEFAULT_GOLD} with gold, {DEFAULT_PAIRS} for pair data")
    p.add_argument("--multi-objective", action="store_true", help="add ensemble cost (parameters) as a 2nd objective")
    p.add_argument("--prune", action="store_true", help="prune trials whose partial ensembles trail the median")
    p.add_argument("--halving", action="store_true", help="multi-fidelity trials: members train on 1/9 of the "
                   "training pairs first, and only the top third of each head type's trials there go on to all of "
                   "them (asynchronous successive halving); cuts a search's training time on large data")
    p.add_argument("--top", type=int, default=3,
                   help="trials in the final robustness evaluation (default: %(default)s)")
    p.add_argument("--baselines", default="seed-paper,linear", metavar="LIST",
                   help="fixed recipes trained once (cached) and compared with the export on the test split, "
                        "comma-separated, or none (default: %(default)s)")
    p.add_argument("--no-select", action="store_true", help="leave out the greedy selection over the members of all "
                   "trials: the export is the best trial, or a trial with fewer parameters within one standard error")
    p.add_argument("--stress", action="store_true", help="also retrain the best configuration at label-flip rates "
                   "5/15/25/40%% (costs about four times its training)")
    p.add_argument("--no-final", action="store_true", help="skip the final evaluation and export")
    p.add_argument("--progress-every", type=float, default=30.0, metavar="S", help="where output is not a terminal "
                   "(a log file, a pipe): seconds between the plain progress lines printed instead of progress bars "
                   "(default: %(default)s)")
    p.set_defaults(func=cmd_launch)



def _add_export_parsers(sub) -> None:
    p = sub.add_parser("export", help="export a trial's ensemble (default: the best) as manifest + safetensors",
                       formatter_class=HelpFormatter)
    add_study_args(p)
    p.add_argument("--trial", type=int, metavar="N", help="trial number to export (default: the best complete trial)")
    p.add_argument("--select", action="store_true", help="export what launch exports: the best trial, or a greedy "
                   "selection over the members of all trials (picked on half the validation prompts) where it is "
                   "ahead on the other half by a paired 95%% interval; then the trial with the fewest parameters "
                   "within one standard error of that; on a multi-objective study a Pareto-front member by that rule")
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
    p.add_argument("--bounds", action="store_true", help="write (n, 3) float32 rows of reward, lower and upper "
                   "bound instead of n scores: mean ± β·std over the standardized members, std² = variance over "
                   "members + their mean own posterior variance (laplace members); β as the export records it "
                   "(default: scores only)")
    p.add_argument("--beta", type=float, metavar="B", help="with --bounds: the width β of the bounds (default: "
                   "the export's β)")
    p.set_defaults(func=cmd_score)


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
        device=args.device, gpus_per_job=args.gpus_per_job,
        objective=args.objective, seed=args.seed, multi_objective=args.multi_objective, top=args.top,
        annotator=annotator_from_args(args), folds=args.folds, baselines=baselines, select=not args.no_select,
        stress=args.stress, final=not args.no_final, prune=args.prune, halving=args.halving,
        progress_interval=args.progress_every,
    )
    search = Search(options).run()
    _print_best(search)
    return _no_trial_completed(search)


def _no_trial_completed(search) -> int:
    """Exit 1, saying why, where this launch asked trials and none of them completed."""
    import sys

    s = search.state
    if not search.options.trials or s.told or s.pruned:
        return 0
    failed = sum(s.failures.values())
    print(f"rmsearch: error: none of the {search.options.trials} trials of this launch completed ({failed} failed); "
          f"why, by distinct reason:", file=sys.stderr)
    for reason, count in sorted(s.failures.items(), key=lambda kv: -kv[1]):
        print(f"  {count} × {reason}", file=sys.stderr)
    print(f"  (every trial's reason: rmsearch trials --study {search.options.study} --runs {search.options.runs})",
          file=sys.stderr)
    return 1


def _print_best(search) -> None:
    from rich.table import Table

    from rmsearch.console import plain_console
    from rmsearch.evaluate import fmt_value

    console = plain_console()
    s = search.state
    done = search.completed()
    final = search.state.phases.get("final evaluation", 0.0)
    console.print(f"{len(search.study.trials)} trials in study {search.options.study!r} ({len(done)} complete); this "
                  f"launch trained {s.trained} members in {s.jobs} jobs"
                  + (f" ({s.retrained} of them again: the cached ones came from other code)" if s.retrained else "")
                  + f", reused {s.reused} from the head cache; "
                  f"{search.total_seconds:.1f} s in all ({search.search_seconds:.1f} s search, {final:.1f} s final "
                  f"evaluation); driver memory {search.study.user_attrs['last_launch']['driver_rss_mb'][0]:.0f} → "
                  f"{search.study.user_attrs['last_launch']['driver_rss_mb'][1]:.0f} MiB.")
    if search.final:
        f = search.final
        gold = search.task.has_gold
        table = Table(title=f"objective {search.objective.name}: chosen on validation, reported on test "
                            f"(exported: {f.exported})")
        for col in ("", "val. objective", "test objective", "test BoN gold @ N=M" if gold else "test pair acc."):
            table.add_column(col, justify="right")
        for label, ev in f.results.items():
            m = ev["test"]["metrics"]
            table.add_row(label, fmt_value(ev["val"]["metrics"]["objective"]), fmt_value(m["objective"]),
                          fmt_value(m["gold_final"] if gold else m["pair_accuracy"]))
        console.print(table)
        if f.comparisons:
            table = Table(title="exported − baseline on the test split, paired, 95% bootstrap interval")
            for col in ("against", "metric", "exported", "baseline", "difference", "95% interval"):
                table.add_column(col, justify="right")
            for r in f.comparisons:
                table.add_row(r["against"], r["metric"], fmt_value(r["chosen"]), fmt_value(r["other"]),
                              f"{r['diff']:+.3f}",
                              f"[{r['low']:+.3f}, {r['high']:+.3f}]" + (" ✓" if r["better"] else ""))
            console.print(table)
            console.print("baselines trained in " + ", ".join(f"{n} {t:.1f} s" for n, t in f.baseline_seconds.items())
                          + " (0 s: from the head cache)")
        console.print(f"report:      {f.report / 'report.md'}")
        console.print(f"export:      {f.export}")
    console.print(f"tensorboard: tensorboard --logdir {search.tb_dir}")
    console.print(f"storage:     {search.storage}   (optuna-dashboard {search.storage})")


def cmd_export(args) -> int:
    from rmsearch.search import StudyHandle, export_trial, top_trials

    search = StudyHandle.open(args.study, args.runs, args.storage)
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
    standard error (see `choose_export`); on a multi-objective study, a member of the Pareto front by that rule."""
    from rmsearch.search import choose_export, export_combination

    decision = choose_export(search, trial)
    for line in choice_lines(search.objective.name, trial.number, decision.info):
        print(line)
    export_combination(search, decision.combination, out, decision.source)
    print(f"exported {decision.name} to {out}")
    return 0


def choice_lines(objective: str, best: int, info: dict) -> list[str]:
    """What decided an export (`choose_export`'s info), in words."""
    lines = []
    if "rule" in info:
        lines.append(f"{info['rule']}; Pareto front: trials {', '.join(map(str, info['pareto front']))} (give "
                     f"--trial N instead of --select for another)")
    line = f"validation {objective}: trial {best} {info['best trial validation']:.4f}"
    if "selection validation" in info:
        a = info["selection ahead"]
        line += (f", cross-trial selection {info['selection validation']:.4f}; picked on {info['pick units']} "
                 f"validation units, judged on the other {info['judge units']}: ahead of trial {best} by "
                 f"{a['diff']:+.4f} [{a['low']:+.4f}, {a['high']:+.4f}] there, {info['pick half advantage']:+.4f} "
                 f"where it picked (overstated by {info['overstated by']:+.4f})")
    lines.append(line)
    if "one standard error" in info:
        e = info["one standard error"]
        lines.append(f"{e['simpler']} ({e['parameters']:,} parameters) has fewer parameters than {e['leader']} "
                     f"({e['leader parameters']:,}) and is within one standard error of it ({e['difference']:+.4f} "
                     f"± {e['standard error']:.4f} per validation unit)")
    return lines


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
    if not out.parent.is_dir():
        raise RMSearchError(f"--out {out}: its folder {out.parent} does not exist; create it first (mkdir -p "
                            f"{out.parent}) or choose another --out.")
    if args.beta is not None and not args.bounds:
        raise RMSearchError("--beta sets the width of --bounds; add --bounds, or drop --beta.")
    if args.beta is not None and not (np.isfinite(args.beta) and args.beta >= 0):
        raise RMSearchError(f"--beta {args.beta}: must be a finite number >= 0 (the bounds are mean ± β·std), "
                            f"e.g. --beta 1.")
    ensemble = load_ensemble(args.ensemble)
    X = check_float_array(args.embeddings, open_npy(Path(args.embeddings)), (2,), what="(rows, dim)")
    def blocks():  # streamed: X may be a memory map larger than memory
        return (np.asarray(X[s : s + 65536], np.float32) for s in range(0, len(X), 65536))

    if args.bounds:
        scores = np.concatenate([np.stack(ensemble.bounds(b, args.beta), 1) for b in blocks()])
        atomic_save(out, scores.astype(np.float32))
        beta = ensemble.beta if args.beta is None else args.beta
        print(f"{len(scores)} rows of (reward, lower, upper), bounds mean ± {beta:g}·std -> {out}")
        return 0
    scores = np.concatenate([ensemble.score(b) for b in blocks()])
    atomic_save(out, scores.astype(np.float32))
    print(f"{len(scores)} scores -> {out}")
    return 0
