"""`rmsearch trials --study S`: a study's trials, one row each: number, state, value, configuration and, for a
trial that failed or was pruned, why. Read from the study's storage without writing to it, and without its data."""

from __future__ import annotations

import json

from rmsearch.launch._args import HelpFormatter, add_study_args

STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING", "WAITING")
_COUNTED = {"COMPLETE": "complete", "FAIL": "failed", "PRUNED": "pruned", "RUNNING": "running",
            "WAITING": "queued"}


def add_trials_parser(sub) -> None:
    p = sub.add_parser("trials", help="list a study's trials: state, value, configuration, failure reason",
                       formatter_class=HelpFormatter)
    add_study_args(p)
    p.add_argument("--state", choices=STATES, action="append", metavar="STATE",
                   help=f"only trials in this state (repeatable): {', '.join(STATES)}; default: all")
    p.add_argument("--json", action="store_true", help="print the trials as a JSON list instead of a table")
    p.set_defaults(func=cmd_trials)


def trial_rows(study, states=None) -> list[dict]:
    """One dict per trial: number, state, values, params (what the space suggested), config (the whole ensemble
    configuration, fixed values included; None before it was recorded), reason (why it failed or was pruned, else
    None), requeued_from (the trial whose configuration it reruns, else None)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if states and t.state.name not in states:
            continue
        a = t.user_attrs
        reason = a.get("fail_reason")
        if reason is None and "pruned_at_members" in a:
            reason = f"pruned: its partial ensemble of {a['pruned_at_members']} members trailed the median"
        if reason is None and "pruned_at_rung" in a:
            r = a["pruned_at_rung"]
            reason = (f"pruned at rung {r['rung']}/{r['of']} ({r['share']:.3g} of the training pairs): its value "
                      f"trailed the top third of its head type's trials there")
        rows.append({"number": t.number, "state": t.state.name, "values": t.values, "params": t.params,
                     "config": a.get("config"), "reason": reason, "requeued_from": a.get("requeued_from")})
    return rows


def _config(params: dict) -> str:
    return " ".join(f"{k}={json.dumps(v)}" for k, v in params.items())


def cmd_trials(args) -> int:
    from rich.table import Table

    from rmsearch.console import plain_console
    from rmsearch.search import load_study

    _, study = load_study(args.study, args.runs, args.storage)
    rows = trial_rows(study, args.state)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    objective = study.user_attrs.get("objective", "value")
    table = Table(title=f"study {args.study!r}: {len(rows)} trials (objective {objective}, on the validation split)")
    for col in ("trial", "state", objective, "configuration", "why it failed"):
        table.add_column(col, justify="right" if col == "trial" else "left", overflow="fold")
    for r in rows:
        value = "" if r["values"] is None else ", ".join(f"{v:.4f}" for v in r["values"])
        why = r["reason"] or ""
        if r["requeued_from"] is not None:
            why = (why + "; " if why else "") + f"reruns trial {r['requeued_from']}'s configuration"
        table.add_row(str(r["number"]), r["state"], value, _config(r["params"]), why)
    plain_console().print(table)
    counts = {s: sum(r["state"] == s for r in rows) for s in STATES}
    print(", ".join(f"{n} {_COUNTED[s]}" for s, n in counts.items() if n) or "no trials")
    return 0
