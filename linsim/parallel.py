"""Where fan-out work runs: one place for worker pools, thread limits and execution engines.

An :class:`Engine` maps a picklable function over a list of items and yields
``(index, result)`` pairs *as the items finish* (:meth:`Engine.map_unordered`), so callers
can show progress and write results as they come.  Engines are registry entries
(:data:`ENGINES`); :func:`get_engine` picks one:

``"serial"``
    In the calling process, one item after the other.
``"process"``
    A pool of fresh Python worker processes (``python -c`` bootstraps, not ``fork``; POSIX).
    The workers never re-run the caller's ``__main__`` script, so a script without an
    ``if __name__ == "__main__":`` guard works; functions must live in an importable module.
    Workers start with every thread variable (``OMP_NUM_THREADS``, ...) set to one.
``"dask"``
    A ``dask.distributed`` cluster: the scheduler at ``scheduler=ADDRESS`` (or the
    ``DASK_SCHEDULER_ADDRESS`` environment variable), a given ``distributed.Client``, or a
    ``LocalCluster`` started (and closed) by the engine.  Dask is an optional extra
    (``pip install 'linsim[dask]'``), imported only when this engine is used.  (A LocalCluster
    of processes starts them with multiprocessing's spawn, which re-runs an unguarded
    ``__main__``: from scripts, guard it, or use ``"process"``.)

Where the scheduler comes from
------------------------------
:func:`resolve_scheduler` is the one rule of every command and function that fans out
(``linsim phase``, ``linsim train``, ``linsim compare``'s training stage,
``bhattacharyya(..., engine=)``): an explicit ``scheduler=`` / ``--scheduler ADDRESS`` wins
over ``DASK_SCHEDULER_ADDRESS``, which wins over a local pool.  An unreachable scheduler raises
:class:`SchedulerUnreachableError` (an ``OSError``) naming the address and where it came from,
when the engine opens -- callers open it before computing anything.

Data travel
-----------
The function of a map is sent once per map: pickled once and sent to each worker process
(``"process"``), or scattered once to the cluster (``"dask"``); each task then carries only
its item.  A function that holds an in-memory array therefore copies it once per worker, not
once per item.  The Dask engine keeps at most ``max_in_flight`` items submitted and not yet
handed to the caller (default twice the cluster's threads), so results waiting on the
workers stay bounded however many items there are.

Bitwise-identical results
-------------------------
Every item runs inside :func:`thread_limit` with one thread (BLAS, OpenMP, torch, numba),
whichever engine runs it.  Multi-threaded BLAS reductions add in an order that depends on
the number of threads, which made a kernel RBF sweep differ by 4e-12 between one worker
(the main process, two BLAS threads) and two single-threaded workers.  With one thread
everywhere, the engine and the worker count cannot change a single bit.  One thread per item
is also the fast choice for many small items: on a loaded 2-core machine the multi-threaded
in-process path was measured up to 30x slower.

Interrupts
----------
On ``KeyboardInterrupt`` (SIGINT), ``SIGTERM`` (turned into ``SystemExit(143)`` by
:func:`sigterm_as_exit` while a map runs in the main thread) or an early ``break`` by the
consumer, pending items are cancelled and worker processes are stopped at once; results
already yielded stay with the caller.  Workers also die with their parent (Linux
``PR_SET_PDEATHSIG``) and exit when their pipe to the parent closes.
"""

from __future__ import annotations

import abc
import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

from linsim.registry import Registry

__all__ = [
    "DaskEngine",
    "ENGINES",
    "MissingExtraError",
    "Engine",
    "DEFAULT_CONNECT_TIMEOUT",
    "ProcessEngine",
    "SCHEDULER_VARIABLE",
    "SchedulerUnreachableError",
    "SerialEngine",
    "THREAD_VARIABLES",
    "WorkerError",
    "check_n_workers",
    "get_engine",
    "register_engine",
    "resolve_scheduler",
    "sigterm_as_exit",
    "thread_limit",
]

#: Environment variables read by BLAS / OpenMP runtimes when a worker process starts.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")


#: The environment variable naming a Dask scheduler when no ``scheduler=`` / ``--scheduler``
#: is given (Dask's own convention).
SCHEDULER_VARIABLE = "DASK_SCHEDULER_ADDRESS"

#: Seconds :class:`DaskEngine` waits for a scheduler before :class:`SchedulerUnreachableError`.
DEFAULT_CONNECT_TIMEOUT = 10.0


_SOURCE_WORDS = {"scheduler": "given as --scheduler / scheduler=",
                 SCHEDULER_VARIABLE: f"from the environment variable {SCHEDULER_VARIABLE}"}


class SchedulerUnreachableError(OSError):
    """No Dask scheduler answered at the address given (the message names it and its source).

    Examples
    --------
    >>> issubclass(SchedulerUnreachableError, OSError)
    True
    """


def resolve_scheduler(scheduler=None) -> tuple[Any, str]:
    """The scheduler to use and where it came from: the argument, else the environment.

    One rule for every command and function that fans out: an explicit ``scheduler``
    (``--scheduler ADDRESS``) wins over :data:`SCHEDULER_VARIABLE` (``DASK_SCHEDULER_ADDRESS``),
    which wins over no scheduler (a local pool or ``LocalCluster``).

    Parameters
    ----------
    scheduler : str, distributed.Client or None

    Returns
    -------
    (scheduler or None, source)
        ``source`` is ``"scheduler"`` (the argument), ``"DASK_SCHEDULER_ADDRESS"`` or ``""``.

    Examples
    --------
    >>> import os
    >>> resolve_scheduler("tcp://10.0.0.1:8786")
    ('tcp://10.0.0.1:8786', 'scheduler')
    >>> os.environ.get("DASK_SCHEDULER_ADDRESS") or resolve_scheduler(None) == (None, "")
    True
    """
    if scheduler is not None:
        if isinstance(scheduler, str):
            if not scheduler.strip():
                raise ValueError("scheduler must be an address such as tcp://host:8786; got an empty string")
            return scheduler.strip(), "scheduler"
        if not hasattr(scheduler, "submit"):
            raise TypeError(f"scheduler must be an address string or a distributed.Client; got {scheduler!r}")
        return scheduler, "scheduler"
    env = os.environ.get(SCHEDULER_VARIABLE, "").strip()
    if env:
        return env, SCHEDULER_VARIABLE
    return None, ""


class WorkerError(RuntimeError):
    """A worker process died, or sent back an exception that could not be transferred.

    Examples
    --------
    >>> issubclass(WorkerError, RuntimeError)
    True
    """


# ----------------------------------------------------------------------------- validation
def check_n_workers(n_workers, name: str = "n_workers") -> int | None:
    """Validate a worker count: ``None`` (engine default) or an integer >= 1.

    Examples
    --------
    >>> check_n_workers(2), check_n_workers(None)
    (2, None)
    >>> check_n_workers(0)
    Traceback (most recent call last):
    ...
    ValueError: n_workers must be a positive integer (the number of workers) or None; got 0
    """
    if n_workers is None:
        return None
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) and not hasattr(n_workers, "__index__"):
        raise TypeError(f"{name} must be a positive integer or None; got {n_workers!r}")
    value = int(n_workers.__index__()) if not isinstance(n_workers, int) else n_workers
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (the number of workers) or None; got {value}")
    return value


# ----------------------------------------------------------------------------- thread limits
class _LimitState:
    lock = threading.RLock()
    active: list[tuple[object, int]] = []
    blas_limiter: Any = None


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _numba_threads() -> int | None:
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        return int(numba.get_num_threads())
    except Exception:  # pragma: no cover - numba without a threading layer
        return None


def _set_numba_threads(n: int) -> None:
    numba = sys.modules.get("numba")
    if numba is None:
        return
    with contextlib.suppress(Exception):
        numba.set_num_threads(min(n, int(numba.config.NUMBA_NUM_THREADS)))


@contextlib.contextmanager
def thread_limit(n_threads: int = 1) -> Iterator[int]:
    """Limit BLAS, OpenMP, torch (and numba, when imported) to ``n_threads`` threads in this
    process; restore the caller's settings on exit.

    Uses ``threadpoolctl`` for the native thread pools and ``torch.set_num_threads``.  The
    context is re-entrant and thread-safe: the process-wide pools (BLAS, torch's MKL) keep the
    most recently entered limit while any thread is inside a ``thread_limit`` block and get
    the settings found by the first entry back when the last block exits; per-thread settings
    (OpenMP, numba) are restored in each thread as it leaves.

    Parameters
    ----------
    n_threads : int >= 1

    Yields
    ------
    int
        The limit in force.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with thread_limit(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    n = check_n_workers(n_threads, "n_threads")
    if n is None:
        raise ValueError("n_threads must be a positive integer; got None")
    import scipy.linalg  # noqa: F401  (load scipy's own OpenBLAS before limiting: a pool
    import torch         # loaded later would escape the limit)
    from threadpoolctl import threadpool_limits

    token = object()
    st = _LimitState
    # this thread's settings, read before OpenMP is limited (which changes what torch reports)
    torch_before = torch.get_num_threads()
    numba_before = _numba_threads()
    with st.lock:
        if not st.active:
            st.blas_limiter = threadpool_limits(limits=n)  # remembers the original limits
        else:
            threadpool_limits(limits=n)
        st.active.append((token, n))
        # sets this thread's OpenMP threads and torch's process-wide MKL threads
        _set_torch_threads(n)
    _set_numba_threads(n)
    try:
        yield n
    finally:
        with st.lock:
            st.active = [a for a in st.active if a[0] is not token]
            if st.active:
                # others are still inside: keep the process-wide pools (BLAS, torch's MKL) at
                # their limit and give back only this thread's own OpenMP setting
                threadpool_limits(limits=st.active[-1][1], user_api="blas")
                threadpool_limits(limits=torch_before, user_api="openmp")
            else:
                st.blas_limiter.restore_original_limits()
                st.blas_limiter = None
                _set_torch_threads(torch_before)
        if numba_before is not None:
            _set_numba_threads(numba_before)


@dataclass(frozen=True)
class _Limited:
    """``fn`` called under :func:`thread_limit` (picklable: a module-level function inside)."""

    fn: Callable[[Any], Any]
    n_threads: int = 1

    def __call__(self, item):
        if _PINNED_THREADS == self.n_threads:  # a worker process started with this many threads
            return self.fn(item)
        with thread_limit(self.n_threads):
            return self.fn(item)


#: Set in ProcessEngine workers, whose thread pools are pinned by environment variables from
#: the start (so items need not import torch just to limit its threads).
_PINNED_THREADS: int | None = None


# ----------------------------------------------------------------------------- SIGTERM
@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(128 + SIGTERM)`` inside the block, so ``finally`` blocks
    run (workers are stopped, temporary files removed) before the process exits.

    Only acts in the main thread and only when SIGTERM has its default action (a handler the
    caller installed is left alone); the previous handler is restored on exit.

    Examples
    --------
    >>> with sigterm_as_exit():
    ...     pass
    >>> signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    True
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def _handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- engines
class MissingExtraError(ImportError):
    """An optional extra of linsim (``pip install 'linsim[dask]'``) is needed and not installed.

    The message names the ``pip install`` line; the ``linsim`` command prints it and exits 2.

    Examples
    --------
    >>> issubclass(MissingExtraError, ImportError)
    True
    """


class Engine(abc.ABC):
    """Contract of an execution engine.

    Subclasses set ``name`` and implement :meth:`_map`; :meth:`map_unordered` adds the
    thread limit, SIGTERM handling and argument checks.  Engines are context managers
    (``with get_engine(...) as engine:``) so that pools and clusters are reused across
    several maps and closed at the end; a map outside a ``with`` block opens and closes the
    engine itself.

    Examples
    --------
    A new engine implements ``_map`` (and registers itself with :func:`register_engine`):

    >>> class Backwards(Engine):
    ...     name = "backwards"
    ...     def _map(self, fn, items):
    ...         for i in reversed(range(len(items))):
    ...             yield i, fn(items[i])
    >>> list(Backwards().map_unordered(abs, [-1, -2]))
    [(1, 2), (0, 1)]
    """

    name: ClassVar[str] = ""

    def __init__(self, n_workers: int | None = None, *, threads_per_worker: int = 1) -> None:
        self.n_workers = check_n_workers(n_workers)
        self.threads_per_worker = check_n_workers(threads_per_worker, "threads_per_worker") or 1
        self._opened = 0

    # lifecycle
    def open(self) -> "Engine":
        """Acquire resources (processes, a cluster connection); idempotent."""
        self._opened += 1
        return self

    def close(self) -> None:
        """Release every resource; the engine can be opened again."""
        self._opened = 0

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` was called since the last :meth:`close` (a caller that finds
        the engine closed and opens it should close it again).

        Examples
        --------
        >>> eng = get_engine("serial")
        >>> eng.is_open, eng.open().is_open
        (False, True)
        >>> eng.close(); eng.is_open
        False
        """
        return self._opened > 0

    def __enter__(self) -> "Engine":
        return self.open()

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    @property
    def workers(self) -> int:
        """Number of items that may run at the same time."""
        return 1

    def map_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        """Apply ``fn`` to every item; yield ``(index, fn(items[index]))`` as items finish.

        ``fn`` runs under :func:`thread_limit` ``(threads_per_worker)``.  An exception raised
        by ``fn`` is re-raised here (with a note naming the item's index) after the remaining
        items are cancelled.

        Parameters
        ----------
        fn : callable
            For the ``process`` engine a function importable from a module (not ``__main__``).
        items : iterable
            Arguments, one call each.

        Yields
        ------
        (int, object)

        Examples
        --------
        >>> sorted(SerialEngine().map_unordered(abs, [-1, 2, -3]))
        [(0, 1), (1, 2), (2, 3)]
        """
        items = list(items)
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {fn!r}")
        return self._guarded(fn, items)

    def _guarded(self, fn, items):
        if not items:
            return
        own = self._opened == 0
        if own:
            self.open()
        try:
            # The calling thread is limited too: it runs the serial engine's items, and for a
            # cluster of threads in this process the process-wide BLAS pool must be limited from
            # here (OpenBLAS 0.3.31 ignores a limit set from another thread after the main
            # thread has set and restored one).
            with sigterm_as_exit(), thread_limit(self.threads_per_worker):
                yield from self._map(_Limited(fn, self.threads_per_worker), items)
        finally:
            if own:
                self.close()

    @abc.abstractmethod
    def _map(self, fn: _Limited, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` for every item, in completion order."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_workers={self.n_workers})"

    @classmethod
    def from_options(cls, n_workers: int | None, scheduler) -> "Engine":
        """The engine for :func:`get_engine`'s options (refusing those it does not use).

        Examples
        --------
        >>> SerialEngine.from_options(None, None).name
        'serial'
        """
        if scheduler is not None:
            raise ValueError(f"scheduler= is only used by engine='dask', not by engine={cls.name!r}")
        return cls(n_workers)


def _raise_with_note(exc: BaseException, index: int):
    with contextlib.suppress(Exception):
        exc.add_note(f"(raised by item {index} of the map)")
    raise exc


class SerialEngine(Engine):
    """Run the items one after the other in the calling process (one BLAS/torch thread).

    Examples
    --------
    >>> [r for _, r in SerialEngine().map_unordered(str, [1, 2])]
    ['1', '2']
    """

    name = "serial"

    @classmethod
    def from_options(cls, n_workers, scheduler) -> "SerialEngine":
        """See :meth:`Engine.from_options`; more than one worker is refused."""
        if n_workers not in (None, 1):
            raise ValueError(f"engine='serial' runs one item at a time; got n_workers={n_workers}")
        return super().from_options(None, scheduler)

    def _map(self, fn, items):
        for i, item in enumerate(items):
            try:
                result = fn(item)
            except Exception as exc:
                _raise_with_note(exc, i)
            yield i, result


# ---- process pool
# First thing in a worker, before any slow import: die with the parent (Linux), ignore SIGINT
# (the parent decides what an interrupt means), then take the parent's sys.path.
_BOOT = (
    "import os, signal, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    try:\n"
    "        import ctypes\n"
    "        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG\n"
    "    except Exception:\n"
    "        pass\n"
    "if os.getppid() != int(sys.argv[3]):\n"
    "    os._exit(0)  # the parent died before prctl took effect\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "import pickle\n"
    "sys.path[:] = pickle.loads(bytes.fromhex(sys.argv[1]))\n"
    "from linsim._parallel_worker import main\n"
    "main(int(sys.argv[2]))\n"
)


#: Announces that the next message to a worker is the pickled function of a new map (sent as
#: a message of its own, so that a large function is not copied into an envelope).
_FUNCTION_HEADER = b"\x00linsim-parallel-function"


class _Worker:
    def __init__(self, n_threads: int) -> None:
        from multiprocessing.connection import Connection

        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        for var in THREAD_VARIABLES:
            env[var] = str(n_threads)
        env["LINSIM_WORKER_THREADS"] = str(n_threads)
        path = pickle.dumps([p for p in sys.path], protocol=4).hex()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, path, str(child_sock.fileno()), str(os.getpid())],
                pass_fds=(child_sock.fileno(),), env=env, stdin=subprocess.DEVNULL, close_fds=True,
            )
        except BaseException:
            parent_sock.close()  # no worker: no socket left open either
            raise
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.task: int | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 2.0) -> None:
        """Stop now: SIGTERM, then SIGKILL after ``timeout`` seconds; reap the process."""
        with contextlib.suppress(OSError):
            self.conn.close()
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def finish(self) -> None:
        """Ask an idle worker to exit, then reap it."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            pass
        self.stop()


class ProcessEngine(Engine):
    """A pool of single-threaded worker processes started with ``python -c`` (no ``fork``, no
    re-import of the caller's ``__main__``).

    Parameters
    ----------
    n_workers : int, optional
        Number of processes (default: cores // ``threads_per_worker``); a map starts at most one
        per item.

    Examples
    --------
    >>> import operator
    >>> with ProcessEngine(2) as engine:
    ...     sorted(engine.map_unordered(operator.neg, [1, 2, 3]))
    [(0, -1), (1, -2), (2, -3)]
    """

    name = "process"

    def __init__(self, n_workers: int | None = None, *, threads_per_worker: int = 1) -> None:
        super().__init__(n_workers, threads_per_worker=threads_per_worker)
        self._workers: list[_Worker] = []

    @property
    def workers(self) -> int:
        """Number of worker processes (``n_workers``, default cores // threads_per_worker)."""
        return self.n_workers or _default_workers(self.threads_per_worker)

    def close(self) -> None:
        """Ask idle workers to exit, stop busy ones; the engine can be opened again."""
        workers, self._workers = self._workers, []
        for w in workers:
            w.finish() if w.task is None and w.alive() else w.stop()
        super().close()

    def _kill_all(self) -> None:
        workers, self._workers = self._workers, []
        for w in workers:
            with contextlib.suppress(OSError):
                w.proc.terminate()
        for w in workers:
            w.stop()

    def _ensure(self, n: int) -> None:
        self._workers = [w for w in self._workers if w.alive()]
        while len(self._workers) < n:
            self._workers.append(_Worker(self.threads_per_worker))

    def _map(self, fn, items):
        from multiprocessing.connection import wait

        inner = getattr(fn.fn, "__module__", None)
        if inner == "__main__":
            raise ValueError(
                f"engine='process' cannot send {getattr(fn.fn, '__qualname__', fn.fn)!r}: it is "
                f"defined in __main__, which worker processes do not import; move it into a module "
                f"or use engine='serial'"
            )
        try:
            # the function (and whatever data it carries) is pickled once and sent once to
            # each worker; the items travel one by one
            fn_payload = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
            payloads = [pickle.dumps(("item", item), protocol=pickle.HIGHEST_PROTOCOL) for item in items]
        except Exception as exc:
            raise TypeError(f"engine='process' needs picklable functions and items: {exc}") from exc
        self._ensure(min(self.workers, len(items)))
        todo = deque(range(len(items)))
        busy: dict[Any, _Worker] = {}
        done = 0
        clean = False
        try:
            for w in self._workers:
                if todo:
                    w.conn.send_bytes(_FUNCTION_HEADER)  # then the function, as its own message
                    w.conn.send_bytes(fn_payload)
                    w.task = todo.popleft()
                    w.conn.send_bytes(payloads[w.task])
                    busy[w.conn] = w
            while done < len(items):
                for conn in wait(list(busy)):
                    w = busy.pop(conn)
                    try:
                        ok, value = pickle.loads(conn.recv_bytes())
                    except (EOFError, OSError):
                        w.proc.wait(5.0) if w.proc.poll() is None else None
                        raise WorkerError(
                            f"worker process {w.proc.pid} exited (code {w.proc.returncode}) while "
                            f"running item {w.task}"
                        ) from None
                    index, w.task = w.task, None
                    if not ok:
                        if isinstance(value, BaseException):
                            _raise_with_note(value, index)
                        raise WorkerError(f"item {index} failed in a worker process:\n{value}")
                    done += 1
                    if todo:
                        w.task = todo.popleft()
                        w.conn.send_bytes(payloads[w.task])
                        busy[w.conn] = w
                    yield index, value
            clean = True
        finally:
            if not clean:  # interrupted, failed, or abandoned by the consumer: stop at once
                self._kill_all()


# ---- dask
class DaskEngine(Engine):
    """Run items on a ``dask.distributed`` cluster.

    Parameters
    ----------
    n_workers : int, optional
        Workers of the ``LocalCluster`` started when no scheduler is given (default: cores);
        refused together with a scheduler (it would do nothing there).
    scheduler : str or distributed.Client, optional
        A scheduler address (``tcp://host:8786``) or a connected client (not closed by the
        engine).  Default: ``DASK_SCHEDULER_ADDRESS`` if set, else a new ``LocalCluster``.
    processes : bool
        For the LocalCluster: worker processes (default) or threads of this process.
    connect_timeout : float, optional
        Seconds to wait for a scheduler (default :data:`DEFAULT_CONNECT_TIMEOUT`); an
        unreachable one raises :class:`SchedulerUnreachableError` naming the address when the
        engine opens, before any item runs.
    max_in_flight : int, optional
        Items submitted but not yet handed to the caller (default: twice the cluster's
        threads).  Bounds the memory of results waiting on the workers: a map over many
        large results (distance tiles) holds at most this many at a time.

    Notes
    -----
    The function of a map is scattered to the cluster once (with whatever data it carries,
    e.g. an in-memory input array) and each task receives only its item.

    Examples
    --------
    >>> DaskEngine(2).name
    'dask'
    """

    name = "dask"

    def __init__(self, n_workers: int | None = None, *, scheduler=None, processes: bool = True,
                 threads_per_worker: int = 1, connect_timeout: float | None = None,
                 max_in_flight: int | None = None) -> None:
        super().__init__(n_workers, threads_per_worker=threads_per_worker)
        scheduler, source = resolve_scheduler(scheduler)
        if scheduler is not None and self.n_workers is not None:
            raise ValueError(
                f"n_workers={self.n_workers} has no effect on an existing Dask cluster "
                f"({source}={scheduler!r}): its own workers run the items; leave n_workers unset"
            )
        if connect_timeout is None:
            connect_timeout = DEFAULT_CONNECT_TIMEOUT
        if not (isinstance(connect_timeout, (int, float)) and not isinstance(connect_timeout, bool)
                and connect_timeout > 0):
            raise ValueError(f"connect_timeout must be a positive number of seconds; got {connect_timeout!r}")
        self.scheduler = scheduler
        self.scheduler_source = source
        self.processes = bool(processes)
        self.connect_timeout = float(connect_timeout)
        self.max_in_flight = check_n_workers(max_in_flight, "max_in_flight")
        self._client = None
        self._cluster = None
        self._own_client = False

    @classmethod
    def from_options(cls, n_workers, scheduler) -> "DaskEngine":
        """See :meth:`Engine.from_options`."""
        return cls(n_workers, scheduler=scheduler)

    @staticmethod
    def _distributed():
        try:
            import distributed
        except ImportError as exc:
            raise MissingExtraError(
                "engine='dask' needs dask.distributed, which is not installed: "
                "pip install 'linsim[dask]'"
            ) from exc
        return distributed

    @property
    def client(self):
        """The ``distributed.Client`` in use (opens the engine if needed)."""
        if self._client is None:
            self.open()
        return self._client

    @property
    def workers(self) -> int:
        """Threads of the connected cluster (before connecting: ``n_workers`` or the cores)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                return max(1, sum(self._client.nthreads().values()))
        return self.n_workers or _default_workers(self.threads_per_worker)

    def open(self) -> "DaskEngine":
        """Connect to the scheduler, or start a LocalCluster; idempotent."""
        if self._client is None:
            distributed = self._distributed()
            if self.scheduler is None:
                cluster = distributed.LocalCluster(
                    n_workers=self.n_workers or _default_workers(self.threads_per_worker), threads_per_worker=1,
                    processes=self.processes, dashboard_address=None,
                )
                try:
                    self._client = distributed.Client(cluster)
                except BaseException:  # no client: the cluster's workers must not outlive open()
                    with contextlib.suppress(Exception):
                        cluster.close()
                    raise
                self._cluster = cluster
                self._own_client = True
            elif isinstance(self.scheduler, str):
                try:
                    self._client = distributed.Client(self.scheduler, timeout=self.connect_timeout)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise SchedulerUnreachableError(
                        f"cannot reach the Dask scheduler at {self.scheduler!r} ("
                        f"{_SOURCE_WORDS.get(self.scheduler_source, self.scheduler_source)}) within "
                        f"{self.connect_timeout:g} s: "
                        f"{type(exc).__name__}: {exc}; check the address, or start one with "
                        f"`dask scheduler` (and `dask worker ADDRESS`)"
                    ) from None
                self._own_client = True
            else:
                self._client = self.scheduler
                self._own_client = False
        return super().open()

    def close(self) -> None:
        """Close the client and the cluster this engine started (a given client stays open)."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None and self._own_client:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        super().close()

    def _map(self, fn, items):
        distributed = self._distributed()
        client = self.client
        shared = client.scatter(fn, hash=False)  # once, not once per task
        window = self.max_in_flight or 2 * self.workers
        pending: dict[Any, tuple[int, Any]] = {}
        queue = iter(range(len(items)))
        completed = distributed.as_completed()

        def submit_next() -> None:
            i = next(queue, None)
            if i is not None:
                fut = client.submit(_call_shared, shared, items[i], pure=False)
                pending[fut.key] = (i, fut)
                completed.add(fut)

        clean = False
        try:
            for _ in range(min(window, len(items))):
                submit_next()
            for fut in completed:
                i, _ = pending.pop(fut.key)
                try:
                    result = fut.result()
                except Exception as exc:
                    fut.release()  # a failed task is not kept on the cluster either
                    _raise_with_note(exc, i)
                fut.release()
                submit_next()
                yield i, result
            clean = True
        finally:
            if not clean and pending:
                with contextlib.suppress(Exception):
                    client.cancel([f for _, f in pending.values()], force=True)
            with contextlib.suppress(Exception):
                shared.release()


def _call_shared(fn, item):
    """A Dask task: the scattered function (resolved by Dask) applied to one item."""
    return fn(item)


# ----------------------------------------------------------------------------- registry
#: Engine registry: name -> Engine subclass (see :func:`register_engine`).
def _check_engine_class(name, cls) -> None:
    if not issubclass(cls, Engine):
        raise TypeError(f"engine {name!r} must be an Engine subclass; got {cls.__name__}")


ENGINES: Registry[type[Engine]] = Registry("engine", type=type, key=attrgetter("name"),
                                           check=_check_engine_class)


def register_engine(cls: type[Engine], *, replace: bool = False) -> type[Engine]:
    """Add an :class:`Engine` subclass to :data:`ENGINES` under ``cls.name``.

    A name already taken is refused unless ``replace=True``; anything but a named
    :class:`Engine` subclass is a ``TypeError``.

    Examples
    --------
    >>> sorted(ENGINES)
    ['dask', 'process', 'serial']
    """
    if not (isinstance(cls, type) and issubclass(cls, Engine)) or not cls.name:
        raise TypeError(f"register_engine takes an Engine subclass with a name; got {cls!r}")
    return ENGINES.add(cls, replace=replace)


for _cls in (SerialEngine, ProcessEngine, DaskEngine):
    register_engine(_cls)


def get_engine(name: str | Engine | None = None, n_workers: int | None = None, scheduler=None, *,
               threads_per_worker: int = 1) -> Engine:
    """The engine for a name and options.

    Parameters
    ----------
    name : {"serial", "process", "dask"}, Engine or None
        ``None`` picks ``"dask"`` when a scheduler is given (the argument, or
        ``DASK_SCHEDULER_ADDRESS`` unless ``n_workers`` asks for local workers), ``"serial"``
        for one worker and ``"process"`` otherwise.  An :class:`Engine` instance is returned
        unchanged.
    n_workers : int >= 1, optional
        Worker count (default: all cores).  0 or negative is refused.  With ``name=None`` an
        explicit count means local workers: like any explicit option it wins over the
        environment (``--workers 4`` runs here even when ``DASK_SCHEDULER_ADDRESS`` is set).
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``--scheduler ADDRESS``); implies ``"dask"``.  Resolved by
        :func:`resolve_scheduler`: the argument, else ``DASK_SCHEDULER_ADDRESS``.
    threads_per_worker : int >= 1
        Threads (BLAS, torch) of each item; the default worker count of the local engines is
        then ``cores // threads_per_worker``.

    Returns
    -------
    Engine

    Examples
    --------
    >>> get_engine(n_workers=1).name, get_engine(n_workers=2).name, get_engine("dask", 2).name
    ('serial', 'process', 'dask')
    """
    n_workers = check_n_workers(n_workers)
    if isinstance(name, Engine):
        if n_workers is not None or scheduler is not None:
            raise ValueError("give either an Engine instance or n_workers/scheduler, not both")
        return name
    threads = check_n_workers(threads_per_worker, "threads_per_worker")
    if threads is None:
        raise ValueError("threads_per_worker must be a positive integer; got None")
    if name is None:
        found, source = resolve_scheduler(scheduler)
        if found is not None and (source != SCHEDULER_VARIABLE or n_workers is None):
            name = "dask"
        else:
            n = n_workers if n_workers is not None else _default_workers(threads)
            name = "serial" if n == 1 else "process"
    engine = ENGINES[name].from_options(n_workers, scheduler)
    engine.threads_per_worker = threads
    return engine


def _default_workers(threads_per_worker: int = 1) -> int:
    """Workers that fit the cores with ``threads_per_worker`` threads each (at least one)."""
    return max(1, (os.cpu_count() or 1) // threads_per_worker)
