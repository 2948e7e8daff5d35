"""Every option of the user-facing verbs explains itself in --help and shows its default."""

import argparse
import subprocess
import sys

import pytest

from rmsearch.launch.cli import build_parser

VERBS = [("data", "synth"), ("data", "inspect"), ("evaluate",), ("compare",), ("export",), ("score",),
         ("spaces", "show"), ("trials",)]


def subparser(path):
    p = build_parser()
    for name in path:
        action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        p = action.choices[name]
    return p


@pytest.mark.parametrize("path", VERBS, ids=" ".join)
def test_every_option_has_help_and_shows_its_default(path):
    p = subparser(path)
    formatter = p._get_formatter()
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and len(action.help) > 10, f"{' '.join(path)} {name}: no help text"
        text = formatter._expand_help(action)
        if action.option_strings and not action.required:
            assert "default" in text.lower(), f"{' '.join(path)} {name}: help does not show the default: {text!r}"
            if action.default not in (None, False, []):  # a real default value is printed as it is
                assert str(action.default) in text, f"{' '.join(path)} {name}: {text!r}"
        if action.option_strings and action.required:
            assert "required" in text, f"{' '.join(path)} {name}: say it is required: {text!r}"


@pytest.mark.parametrize("args, shown", [
    (["data", "synth"], ["--dim DIM", "(default: 32)", "(default: 500)"]),
    (["data", "inspect"], ["--json", "(default: off)"]),
    (["evaluate"], ["(default: runs/evaluate)", "(default: synth)", "(default: within)", "--split {all,test,val}",
                    "every prompt of the data's test split", "--force"]),
    (["compare"], ["ENSEMBLE [ENSEMBLE ...]", "--baseline {linear,seed-paper}", "compare.json", "Default: test when"]),
    (["export"], ["(default: runs)", "(default: rmsearch)", "the best complete trial"]),
    (["score"], ["EMBEDDINGS.scores.npy", "--force", "(default: off)"]),
    (["spaces", "show"], ["seed-paper"]),
])
def test_help_output(args, shown):
    r = subprocess.run([sys.executable, "-m", "rmsearch", *args, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())  # argparse wraps lines
    for part in shown:
        assert part in out, (part, r.stdout)
