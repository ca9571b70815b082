"""Picklable task functions for engine tests, in a module that imports nothing heavy.

A process-engine worker imports the module of the function it runs: functions defined in a
test module made every worker import torch and pytest first (1.5 s a worker start here).
"""

import os
import time

__all__ = ["crash", "inverse", "mark_and_sleep", "square", "threads_seen", "unpicklable"]


def square(x):
    return x * x


def inverse(x):
    return 1 / x


def crash(code):
    os._exit(code)


def unpicklable(_):
    import threading

    return threading.Lock()


def threads_seen(_):
    """``(BLAS pool sizes, torch threads)`` as the item sees them."""
    import torch
    from threadpoolctl import threadpool_info

    blas = tuple(sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}))
    return blas, torch.get_num_threads()


def mark_and_sleep(item):
    """Create the file ``item[0]`` (the item has started), then sleep ``item[1]`` seconds."""
    path, seconds = item
    with open(path, "w"):
        pass
    time.sleep(seconds)
