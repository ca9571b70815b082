"""Picklable helpers for the fan-out tests of linsim.parallel (no heavy imports)."""

import os

__all__ = ["CountedPickles", "Offset", "RecordStart", "STARTED", "Unloadable"]


class CountedPickles:
    """A callable ``x -> x + offset`` carrying a payload, that counts how often it is pickled
    in the process that pickles it (the parent of a process pool)."""

    pickled = 0

    def __init__(self, offset, payload_bytes=0):
        self.offset = offset
        self.payload = b"x" * payload_bytes

    def __getstate__(self):
        type(self).pickled += 1
        return self.__dict__

    def __call__(self, x):
        return x + self.offset, os.getpid()


class Offset:
    """``x -> x + offset`` (a picklable function with data)."""

    def __init__(self, offset):
        self.offset = offset

    def __call__(self, x):
        return x + self.offset


def _refuse_to_load(reason):
    raise RuntimeError(reason)


class Unloadable:
    """Pickles fine; unpickling it (in a worker) raises."""

    def __reduce__(self):
        return _refuse_to_load, ("this function stays in the parent",)

    def __call__(self, x):
        return x


#: Items whose task has started, in this process (a Dask cluster of threads runs them here).
STARTED: list = []


class RecordStart:
    """``x -> x`` that first appends ``x`` to :data:`STARTED`."""

    def __call__(self, x):
        STARTED.append(x)
        return x
