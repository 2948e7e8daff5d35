"""`python -m rmsearch.reproduce seed-ensembles --out DIR ...` (the same as `rmsearch reproduce ...`)."""

import argparse
import sys
import traceback

from rmsearch.errors import RMSearchError
from rmsearch.reproduce import add_reproduce_parser


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rmsearch.reproduce")
    sub = parser.add_subparsers(dest="command", required=True)
    add_reproduce_parser(sub)
    args = parser.parse_args(["reproduce", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except RMSearchError as exc:
        print(f"rmsearch: error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1


sys.exit(main())
