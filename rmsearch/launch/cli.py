"""The `rmsearch` command. Exit codes: 0 ok, 2 bad input (the message says what and how to fix), 1 unexpected."""

from __future__ import annotations

import argparse
import sys
import traceback

from rmsearch.errors import RMSearchError
from rmsearch.launch._data_cmd import add_data_parsers
from rmsearch.launch._evaluate_cmd import DEFAULT_POINT, add_evaluate_parsers
from rmsearch.launch._search_cmd import add_search_parsers
from rmsearch.launch._trials_cmd import add_trials_parser

__all__ = ["DEFAULT_POINT", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from rmsearch.reproduce import add_reproduce_parser

    parser = argparse.ArgumentParser(prog="rmsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_parsers(sub)
    add_evaluate_parsers(sub)
    add_search_parsers(sub)
    add_trials_parser(sub)
    add_reproduce_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    from rmsearch.process_env import training_env

    os.environ.update(training_env())  # before torch or scikit-learn load (see rmsearch.process_env)
    parser = build_parser()
    args = parser.parse_args(argv)
    from rmsearch.interrupt import raise_on_sigterm, terminated

    raise_on_sigterm()
    try:
        return args.func(args)
    except RMSearchError as exc:
        print(f"rmsearch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if terminated(exc):
            print("rmsearch: terminated (SIGTERM)", file=sys.stderr)
            return 143
        print("rmsearch: interrupted", file=sys.stderr)
        return 130
    except Exception:  # an unexpected failure: show where, exit 1
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
