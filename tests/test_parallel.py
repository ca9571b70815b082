"""linsim.parallel: thread limits restore the caller's settings, engines agree, bad options are
refused, worker processes never re-run the caller's script and never outlive an interrupt."""

import operator
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
from threadpoolctl import threadpool_info

from _engine_tasks import crash, inverse, square, threads_seen, unpicklable
from _process_tree import alive, descendants
from linsim import parallel
from linsim.parallel import ProcessEngine, SerialEngine, get_engine, thread_limit

TESTS = os.path.dirname(os.path.abspath(__file__))


def _blas_threads():
    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})


def test_thread_limit_sets_and_restores_blas_and_torch():
    before_torch = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        blas_before = _blas_threads()
        with thread_limit(1):
            assert torch.get_num_threads() == 1
            assert _blas_threads() == [1]
            with thread_limit(1):  # re-entrant
                assert torch.get_num_threads() == 1
            assert _blas_threads() == [1]
        assert torch.get_num_threads() == 2
        assert _blas_threads() == blas_before
    finally:
        torch.set_num_threads(before_torch)


def test_thread_limit_holds_while_any_thread_is_inside():
    before = torch.get_num_threads()
    entered, release = threading.Event(), threading.Event()

    def other():
        with thread_limit(1):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with thread_limit(1):
        t.start()
        entered.wait(10)
    # the main thread left first; the other thread is still inside: the limit must hold
    assert _blas_threads() == [1]
    release.set()
    t.join()
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -2])
def test_worker_counts_must_be_positive(bad):
    with pytest.raises(ValueError, match="positive integer"):
        get_engine(n_workers=bad)
    with pytest.raises(ValueError, match="positive"):
        with thread_limit(bad):
            pass


def test_engine_choice_and_errors(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert get_engine(n_workers=1).name == "serial"
    assert get_engine(n_workers=3).name == "process"
    assert get_engine(scheduler="tcp://127.0.0.1:1").name == "dask"
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1")
    assert get_engine().name == "dask" and get_engine().scheduler == "tcp://127.0.0.1:1"
    with pytest.raises(ValueError, match="unknown engine 'threads'"):
        get_engine("threads")
    with pytest.raises(ValueError, match="only used by engine='dask'"):
        get_engine("process", scheduler="tcp://x:1")
    with pytest.raises(ValueError, match="one item at a time"):
        get_engine("serial", n_workers=2)
    # an explicit worker count (--workers N) wins over the environment: local workers
    assert get_engine(n_workers=2).name == "process" and get_engine(n_workers=1).name == "serial"
    # but a worker count means nothing to an existing cluster: refused, not dropped
    with pytest.raises(ValueError, match="n_workers=2 has no effect .*DASK_SCHEDULER_ADDRESS"):
        get_engine("dask", n_workers=2)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    with pytest.raises(ValueError, match="n_workers=3 has no effect .*scheduler='tcp://h:1'"):
        get_engine("dask", n_workers=3, scheduler="tcp://h:1")


def test_dask_missing_gives_install_hint(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "distributed":
            raise ImportError("no distributed")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"linsim\[dask\]"):
        list(parallel.DaskEngine(1).map_unordered(abs, [1]))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.parametrize("name", sorted(parallel.ENGINES))
def test_engine_contract(name, request):
    """Every registered engine: each item once, right results, nothing for no items, failures
    re-raised with the item's index, usable again after a failure, closed cleanly."""
    if name == "dask":
        engine = parallel.DaskEngine(scheduler=request.getfixturevalue("dask_client"))
    else:
        engine = get_engine(name, n_workers=1 if name == "serial" else 2)
    items = [3, -1, 4, -1, 5, 9]
    with engine:
        got = list(engine.map_unordered(operator.neg, items))
        assert sorted(i for i, _ in got) == list(range(len(items)))
        assert dict(got) == {i: -v for i, v in enumerate(items)}
        assert list(engine.map_unordered(operator.neg, [])) == []
        # every item runs single-threaded (BLAS pools and torch), in this process or not
        assert {r for _, r in engine.map_unordered(threads_seen, range(3))} == {((1,), 1)}
        with pytest.raises(ZeroDivisionError) as info:
            list(engine.map_unordered(inverse, [1, 0, 2]))
        assert any("item 1" in n for n in info.value.__notes__)
        if name == "process":
            assert any("traceback in the worker process" in n for n in info.value.__notes__)
        assert dict(engine.map_unordered(square, [2, 3])) == {0: 4, 1: 9}  # usable after a failure
    assert engine.workers >= 1


def test_functions_from_main_are_refused_with_advice(monkeypatch):
    monkeypatch.setattr(square, "__module__", "__main__")
    with pytest.raises(ValueError, match="defined in __main__"):
        list(ProcessEngine(1).map_unordered(square, [1]))


def test_exceptions_carry_the_item_index():
    with pytest.raises(ZeroDivisionError) as info:
        list(SerialEngine().map_unordered(inverse, [1, 0]))
    assert any("item 1" in n for n in getattr(info.value, "__notes__", []))


# ----------------------------------------------------------------------------- processes
SLOW_SCRIPT = textwrap.dedent(
    """
    import sys
    from _engine_tasks import mark_and_sleep
    from linsim.parallel import ProcessEngine
    # no __main__ guard on purpose
    engine = ProcessEngine(2)
    items = [(f"{sys.argv[1]}/started-{i}", 30.0) for i in range(4)]
    for i, _ in engine.map_unordered(mark_and_sleep, items):
        pass
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_signal_stops_workers_promptly(tmp_path, sig):
    # SIGKILL cannot be handled: the workers must die with their parent (PR_SET_PDEATHSIG)
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=tmp_path,
                            stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    # both workers are inside an item (each wrote its marker and sleeps 30 s)
    while len(list(tmp_path.glob("started-*"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = descendants(proc.pid)
    assert len(list(tmp_path.glob("started-*"))) == 2 and len(kids) >= 2, "the workers did not start their items"
    t0 = time.monotonic()
    proc.send_signal(sig)
    rc = proc.wait(20)
    assert time.monotonic() - t0 < 15, "shutdown waited for the pending items"
    assert rc != 0
    deadline = time.monotonic() + 10
    while alive(kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(kids) == [], f"worker processes left behind: {alive(kids)}"
    assert len(list(tmp_path.glob("started-*"))) == 2  # the pending items never started


def test_thread_limit_covers_blas_libraries_loaded_inside_the_block():
    # scipy brings its own OpenBLAS; loaded after the limit was applied it used to escape it
    # (two BLAS threads inside a dask thread changed results in the last bits).
    code = textwrap.dedent("""
        import numpy
        from linsim.parallel import thread_limit
        from threadpoolctl import threadpool_info
        with thread_limit(1):
            import scipy.linalg
            print(sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[1]"


def test_process_engine_names_a_dead_worker_and_an_unsendable_result():
    with ProcessEngine(1) as engine:
        with pytest.raises(parallel.WorkerError, match=r"exited \(code 3\) while running item 0"):
            list(engine.map_unordered(crash, [3]))
        with pytest.raises(parallel.WorkerError, match="could not be sent back"):
            list(engine.map_unordered(unpicklable, [0]))


# ----------------------------------------------------------------------------- fan-out contract
def test_process_engine_sends_the_function_once_per_worker_not_per_item():
    """A function carrying data (an in-memory input) crosses to each worker once per map."""
    from _fanout_tasks import CountedPickles

    fn = CountedPickles(10, payload_bytes=1 << 20)
    CountedPickles.pickled = 0
    with ProcessEngine(2) as engine:
        got = dict(engine.map_unordered(fn, range(12)))
        assert {i: r[0] for i, r in got.items()} == {i: i + 10 for i in range(12)}
        assert len({r[1] for r in got.values()}) <= 2 and os.getpid() not in {r[1] for r in got.values()}
        assert CountedPickles.pickled == 1  # pickled once, sent to each of the two workers
        # a second map with another function: the workers use the new one
        assert dict(engine.map_unordered(CountedPickles(-1), [5]))[0][0] == 4


def test_a_function_that_cannot_be_loaded_in_the_worker_fails_each_item_by_name():
    from _fanout_tasks import Offset, Unloadable

    with ProcessEngine(1) as engine:
        with pytest.raises(parallel.WorkerError,
                           match="function could not be loaded in the worker: RuntimeError: this function stays"):
            list(engine.map_unordered(Unloadable(), [1, 2]))
        assert dict(engine.map_unordered(Offset(1), [1])) == {0: 2}  # the pool still works


def test_resolve_scheduler_flag_beats_environment_beats_local(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert parallel.resolve_scheduler(None) == (None, "")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", " tcp://env:1 ")
    assert parallel.resolve_scheduler(None) == ("tcp://env:1", "DASK_SCHEDULER_ADDRESS")
    assert parallel.resolve_scheduler("tcp://flag:2") == ("tcp://flag:2", "scheduler")
    assert get_engine(scheduler="tcp://flag:2").scheduler == "tcp://flag:2"
    assert get_engine("process", n_workers=2).name == "process"  # an explicit local engine wins
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "  ")
    assert parallel.resolve_scheduler(None) == (None, "")  # blank: unset
    with pytest.raises(ValueError, match="empty string"):
        parallel.resolve_scheduler("")
    with pytest.raises(TypeError, match="address string or a distributed.Client"):
        parallel.resolve_scheduler(8786)


def test_threads_per_worker_sets_the_default_worker_count(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert get_engine("process").workers == 8
    e = get_engine("process", threads_per_worker=2)
    assert (e.workers, e.threads_per_worker) == (4, 2)
    assert get_engine(threads_per_worker=8).name == "serial"  # 8 cores / 8 threads: one worker
    with pytest.raises(ValueError, match="threads_per_worker must be a positive integer"):
        get_engine("process", threads_per_worker=0)


def test_unreachable_scheduler_names_the_address_and_its_source(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "DEFAULT_CONNECT_TIMEOUT", 0.5)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    engine = get_engine()
    with pytest.raises(parallel.SchedulerUnreachableError,
                       match=r"'tcp://127\.0\.0\.1:9' \(from the environment variable DASK_SCHEDULER_ADDRESS\)"):
        list(engine.map_unordered(abs, [1]))
    with pytest.raises(ValueError, match="connect_timeout"):
        parallel.DaskEngine(connect_timeout=0)


def test_dask_engine_keeps_a_bounded_window_of_tasks(dask_client):
    """At most max_in_flight items are started and not yet handed to the caller: memory stays
    bounded by the window, not by the number of items."""
    import _fanout_tasks

    _fanout_tasks.STARTED.clear()
    engine = parallel.DaskEngine(scheduler=dask_client, max_in_flight=3)
    ahead = []
    got = {}
    for n, (i, r) in enumerate(engine.map_unordered(_fanout_tasks.RecordStart(), range(20)), start=1):
        time.sleep(0.01)  # a slow consumer: the cluster would run ahead without the window
        ahead.append(len(_fanout_tasks.STARTED) - n)
        got[i] = r
    assert got == {i: i for i in range(20)}
    assert max(ahead) <= 3, ahead  # (the next item is submitted before one is handed over)
    deadline = time.monotonic() + 10  # releases are asynchronous
    while dask_client.futures and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not dask_client.futures  # everything released, the scattered function too


def test_a_local_cluster_whose_client_fails_is_closed_again(monkeypatch):
    """open() starts a LocalCluster, then connects a client to it; when the client fails, the
    cluster (its workers) must not be left running."""
    distributed = pytest.importorskip("distributed")
    started = []
    real_cluster = distributed.LocalCluster

    def recording_cluster(*a, **k):
        started.append(real_cluster(*a, **k))
        return started[-1]

    def failing_client(*a, **k):
        raise OSError("client could not connect")

    monkeypatch.setattr(distributed, "LocalCluster", recording_cluster)
    monkeypatch.setattr(distributed, "Client", failing_client)
    engine = parallel.DaskEngine(1, processes=False)
    with pytest.raises(OSError, match="client could not connect"):
        engine.open()
    assert len(started) == 1 and started[0].status.name == "closed"
    assert engine._cluster is None and engine._client is None
