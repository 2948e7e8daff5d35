"""SIGTERM handled like Ctrl-C: a driver told to stop (by `kill`, a scheduler, a container runtime) fails the
trials it has in flight with the reason and queues their configurations again, as it does on Ctrl-C, instead of
leaving them RUNNING until a relaunch's grace period passes."""

from __future__ import annotations

import signal
import threading


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


_received = []


def _raise_terminated(signum, frame):
    _received.append(signum)
    raise Terminated()


def terminated(exc: BaseException) -> bool:
    """Whether the interrupt `exc` came from SIGTERM: Ray's waits turn any exception a signal handler raises into
    a plain KeyboardInterrupt, so the handler also notes the signal."""
    return isinstance(exc, Terminated) or bool(_received)


def raise_on_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in the main thread. Ray's `ray.init` installs its own SIGTERM handler
    (which exits at once), so a launch calls this again once Ray is up."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
