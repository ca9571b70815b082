"""The loop of one :class:`linsim.parallel.ProcessEngine` worker process (private).

A worker is started by ``python -c`` with the parent's ``sys.path``, the file descriptor of
its socket to the parent and the parent's process id.  It ignores SIGINT (the parent decides
what an interrupt means), asks Linux to send it SIGTERM when the parent dies, and then runs
``(fn, item)`` tasks until it receives ``None`` or its socket closes.  Each answer is
``(True, result)`` or ``(False, exception)`` (``(False, text)`` when the exception cannot be
pickled).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback

__all__: list[str] = []


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except Exception:  # pragma: no cover - no prctl: the closed socket still ends the loop
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _answer(ok: bool, value) -> bytes:
    try:
        return pickle.dumps((ok, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        if ok:
            text = f"the result could not be sent back to the parent: {type(exc).__name__}: {exc}"
        else:
            text = "".join(traceback.format_exception(value))
        return pickle.dumps((False, text), protocol=pickle.HIGHEST_PROTOCOL)


def main(fd: int, parent_pid: int) -> None:
    """Serve tasks on socket ``fd`` until told to stop."""
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import linsim.parallel

    linsim.parallel._PINNED_THREADS = int(os.environ.get("LINSIM_WORKER_THREADS", "0")) or None
    _die_with_parent(parent_pid)
    conn = Connection(fd)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            break
        try:
            task = pickle.loads(data)
        except Exception as exc:
            conn.send_bytes(_answer(False, f"the task could not be loaded in the worker: "
                                           f"{type(exc).__name__}: {exc}"))
            continue
        if task is None:
            break
        fn, item = task
        try:
            answer = _answer(True, fn(item))
        except Exception as exc:
            exc.add_note("traceback in the worker process:\n" + "".join(traceback.format_tb(exc.__traceback__)))
            answer = _answer(False, exc)
        try:
            conn.send_bytes(answer)
        except (BrokenPipeError, OSError):
            break
    conn.close()
