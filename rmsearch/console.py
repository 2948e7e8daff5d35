"""The console commands print through: rich on a terminal; whole values to a file or a pipe.

Rich lays tables out for a terminal's width, 80 columns where there is none, and squeezes what does not fit:
it wraps cells and cuts values to `0.2…`. Output that goes to a file or a pipe (a log, `| cat`, `> out.txt`) is
read later or by programs, so there every value is printed whole: no width limit, no wrapping, no ellipsis and
no colour codes.
"""

from __future__ import annotations

import sys

WIDE = 100_000
"""The width given to a console that writes to a file or a pipe: wider than any table, so none is squeezed."""


def plain_console(stderr: bool = False, **kwargs):
    """A `rich.console.Console` for stdout (or stderr): rich's own on a terminal; to anything else, one that never
    wraps or truncates (tables at their natural width, long lines as they are)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, **kwargs)
    return Console(stderr=stderr, width=WIDE, soft_wrap=True, no_color=True, **kwargs)
