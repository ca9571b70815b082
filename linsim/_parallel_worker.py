"""The loop of one :class:`linsim.parallel.ProcessEngine` worker process (private).

A worker is started by ``python -c`` (the boot code in :mod:`linsim.parallel`, which first
asks Linux to send it SIGTERM when the parent dies and ignores SIGINT) with the parent's
``sys.path`` and the file descriptor of its socket to the parent.  Messages from the parent:

``linsim.parallel._FUNCTION_HEADER``, then the pickled function
    The function of the map that starts (sent once per worker and map, so that data the
    function carries -- an in-memory input array, say -- crosses the pipe once per worker,
    not once per item).  No answer.
``("item", item)``
    Run the current function on ``item``; the answer is ``(True, result)`` or
    ``(False, exception)`` (``(False, text)`` when the exception cannot be pickled, or when the
    function itself could not be loaded in this worker).
``None``
    Exit (so does a closed socket).
"""

from __future__ import annotations

import os
import pickle
import traceback

__all__: list[str] = []


def _answer(ok: bool, value) -> bytes:
    try:
        return pickle.dumps((ok, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        if ok:
            text = f"the result could not be sent back to the parent: {type(exc).__name__}: {exc}"
        else:
            text = "".join(traceback.format_exception(value))
        return pickle.dumps((False, text), protocol=pickle.HIGHEST_PROTOCOL)


def main(fd: int) -> None:
    """Serve tasks on socket ``fd`` until told to stop."""
    from multiprocessing.connection import Connection

    import linsim.parallel

    linsim.parallel._PINNED_THREADS = int(os.environ.get("LINSIM_WORKER_THREADS", "0")) or None
    conn = Connection(fd)
    fn = None
    fn_error = "no function was sent to the worker before the item"
    while True:
        try:
            data = conn.recv_bytes()
            if data == linsim.parallel._FUNCTION_HEADER:
                payload = conn.recv_bytes()
        except (EOFError, OSError):
            break
        if data == linsim.parallel._FUNCTION_HEADER:  # answered by the items: an unloadable
            try:                                    # function fails each of them
                fn = pickle.loads(payload)
            except Exception as exc:
                fn, fn_error = None, (f"the function could not be loaded in the worker: "
                                      f"{type(exc).__name__}: {exc}")
            del payload
            continue
        try:
            task = pickle.loads(data)
        except Exception as exc:
            conn.send_bytes(_answer(False, f"the task could not be loaded in the worker: "
                                           f"{type(exc).__name__}: {exc}"))
            continue
        if task is None:
            break
        kind, value = task
        if fn is None:
            conn.send_bytes(_answer(False, fn_error))
            continue
        try:
            answer = _answer(True, fn(value))
        except Exception as exc:
            exc.add_note("traceback in the worker process:\n" + "".join(traceback.format_tb(exc.__traceback__)))
            answer = _answer(False, exc)
        try:
            conn.send_bytes(answer)
        except (BrokenPipeError, OSError):
            break
    conn.close()
