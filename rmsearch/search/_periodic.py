"""A background thread that does one thing every few seconds while a `with` block runs: the driver's heartbeats
and the plain progress lines of a launch whose output is not a terminal."""

from __future__ import annotations

import threading


class Periodic:
    """Calls `tick()` every `interval` seconds from a daemon thread, from entering the `with` block until leaving
    it (then the thread is joined). Subclasses set `thread_name` and define `tick`."""

    thread_name = "rmsearch-periodic"

    def __init__(self, interval: float):
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def tick(self) -> None:
        """One beat's work (none here)."""

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self.tick()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
