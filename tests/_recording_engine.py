"""An in-process engine that records whether it is open, for tests of who closes an engine.

A real engine's resources (worker processes, a LocalCluster) stay alive while it is open; this
one runs its items here and only records ``live``, so a test can check cheaply that a function
given the caller's engine leaves it as it found it.
"""

from linsim import parallel

__all__ = ["RecordingEngine"]


class RecordingEngine(parallel.Engine):
    name = "recording"

    def __init__(self):
        super().__init__(None)
        self.live = False

    def open(self):
        self.live = True
        return super().open()

    def close(self):
        self.live = False
        super().close()

    def _map(self, fn, items):
        for i, item in enumerate(items):
            yield i, fn(item)
