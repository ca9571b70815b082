"""Distance tiles on an engine (issue 10 item 5): worker processes and a Dask LocalCluster write
the same store, bit for bit, as the in-process driver; inputs reach the workers as files (or
once per worker); an interrupted fan-out resumes; a scheduler comes from the argument or from
DASK_SCHEDULER_ADDRESS, and an unreachable one is named before any tile is computed.

Oracles: the in-process tiled driver (the path that existed before the fan-out, itself checked
against ``bhattacharyya_reference`` in test_inpca_store.py) and the reference kernel.
"""

import contextlib
import os
import pickle

import numpy as np
import pytest
import zarr

from _process_tree import alive
from _recording_engine import RecordingEngine
from linsim import parallel
from linsim.inpca import bhattacharyya, bhattacharyya_reference
from linsim.inpca.store import LogProbRows
from linsim.parallel import SchedulerUnreachableError

TILE = 16


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def logp():
    rng = np.random.default_rng(7)
    return log_softmax(3 * rng.standard_normal((70, 24, 5)))


@pytest.fixture(scope="module")
def in_process(logp, tmp_path_factory):
    """The in-process store (no engine), the oracle of every engine run."""
    d = tmp_path_factory.mktemp("ref")
    return {"self": bhattacharyya(logp, out=d / "self.zarr", tile=TILE)[...],
            "cross": bhattacharyya(logp[:40], logp[40:], out=d / "cross.zarr", tile=TILE)[...]}


@contextlib.contextmanager
def _tasks_on(client):
    """Yields a list that holds, after the block, the fan-out tasks the cluster ran in it."""
    from distributed import get_task_stream

    keys = []
    with get_task_stream(client) as ts:
        yield keys
    keys += [d["key"] for d in ts.data if str(d["key"]).startswith("_call_shared")]


def test_the_oracle_is_right(in_process, logp):
    np.testing.assert_allclose(in_process["self"], bhattacharyya_reference(logp), rtol=0, atol=1e-13)


def test_process_engine_store_is_bitwise_the_in_process_store(logp, in_process, processes, tmp_path):
    z = bhattacharyya(logp, out=tmp_path / "p.zarr", tile=TILE, engine=processes)
    np.testing.assert_array_equal(z[...], in_process["self"])
    mask = zarr.open_group(str(tmp_path / "p.zarr"), mode="r")["tile_done"][...]
    assert mask[np.triu_indices(5)].all() and mask.sum() == 15  # upper triangle, self case
    zc = bhattacharyya(logp[:40], logp[40:], out=tmp_path / "c.zarr", tile=TILE, engine=processes)
    np.testing.assert_array_equal(zc[...], in_process["cross"])


def test_local_cluster_store_is_bitwise_the_in_process_store(logp, in_process, cluster, tmp_path):
    cl, client = cluster
    with _tasks_on(client) as tasks:
        z = bhattacharyya(logp, out=tmp_path / "d.zarr", tile=TILE, engine="dask", scheduler=client)
    np.testing.assert_array_equal(z[...], in_process["self"])
    assert len(tasks) == 15  # one task per tile of the upper triangle
    zc = bhattacharyya(logp[:40], logp[40:], out=tmp_path / "c.zarr", tile=TILE, scheduler=client)
    np.testing.assert_array_equal(zc[...], in_process["cross"])


@pytest.mark.parametrize("kernel", ["gemm", "fused"])
def test_in_memory_output_on_an_engine_and_both_kernels(logp, processes, kernel):
    """No store: the fan-out fills a numpy array, equal to the in-process tiled driver."""
    ref = bhattacharyya(logp, out=np.empty((70, 70)), tile=TILE, kernel=kernel, engine="serial")
    out = np.full((70, 70), np.nan)
    got = bhattacharyya(logp, out=out, tile=TILE, kernel=kernel, engine=processes)
    assert got is out
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_allclose(out, bhattacharyya_reference(logp), rtol=0, atol=1e-13)


def test_stored_inputs_travel_as_files_not_as_data(logp, tmp_path, processes, in_process):
    np.save(tmp_path / "lp.npy", logp)
    mm = np.load(tmp_path / "lp.npy", mmap_mode="r")
    zin = zarr.create_array(str(tmp_path / "lp.zarr"), shape=logp.shape, chunks=(16, 24, 5), dtype="f8")
    zin[...] = logp
    for x in (mm, mm[30:], zin):  # a slice of a map starts inside the file: its offset must follow
        rows = LogProbRows(x, "logp")
        blob = pickle.dumps(rows)
        assert len(blob) < 4096 < logp.nbytes // 4, len(blob)  # the address, not the numbers
        back = pickle.loads(blob)
        np.testing.assert_array_equal(back.rows(0, 5).numpy(), np.asarray(x[0:5]))
        np.testing.assert_array_equal(back.rows(back.shape[0] - 3, back.shape[0]).numpy(), np.asarray(x[-3:]))
    # an in-memory input travels as data (pickled once per map, see test_parallel)
    assert len(pickle.dumps(LogProbRows(logp, "logp"))) > logp.nbytes
    # and the fan-out over a memory map gives the same bits
    z = bhattacharyya(mm, out=tmp_path / "m.zarr", tile=TILE, engine=processes)
    np.testing.assert_array_equal(z[...], in_process["self"])
    z2 = bhattacharyya(mm[30:], logp[:40], out=tmp_path / "m2.zarr", tile=TILE, engine=processes)
    np.testing.assert_array_equal(z2[...], bhattacharyya(logp[30:], logp[:40], out=tmp_path / "m3.zarr",
                                                        tile=TILE)[...])


def test_interrupted_fan_out_stops_the_workers_and_resumes_bitwise(logp, in_process, processes, tmp_path):
    path = tmp_path / "i.zarr"
    bhattacharyya(logp[:5], out=tmp_path / "warm.zarr", tile=TILE, engine=processes)  # workers up
    pids = [w.proc.pid for w in processes._workers]
    assert len(pids) == 2 and alive(pids) == pids

    def ctrl_c_after_3(done, total):
        if done == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the writer

    with pytest.raises(KeyboardInterrupt):
        bhattacharyya(logp, out=path, tile=TILE, engine=processes, on_tile=ctrl_c_after_3)
    assert alive(pids) == [], "worker processes left behind by the interrupt"
    mask = zarr.open_group(str(path), mode="r")["tile_done"][...]
    assert mask.sum() == 3  # exactly the tiles written (in flight ones were dropped)
    seen = []
    z = bhattacharyya(logp, out=path, tile=TILE, engine=processes, on_tile=lambda d, t: seen.append((d, t)))
    assert seen == [(d, 15) for d in range(4, 16)]  # only the 12 missing tiles were computed
    np.testing.assert_array_equal(z[...], in_process["self"])


def test_scheduler_from_the_environment_is_honoured(logp, in_process, cluster, tmp_path, monkeypatch):
    cl, client = cluster
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cl.scheduler_address)
    with _tasks_on(client) as tasks:
        z = bhattacharyya(logp, out=tmp_path / "e.zarr", tile=TILE)  # no engine argument
    assert len(tasks) == 15, "the tiles did not run on the cluster named by the environment"
    np.testing.assert_array_equal(z[...], in_process["self"])
    with _tasks_on(client) as tasks:  # an explicit engine wins over the environment
        bhattacharyya(logp, out=tmp_path / "s.zarr", tile=TILE, engine="serial")
    assert tasks == []


def test_unreachable_scheduler_is_named_before_any_tile(logp, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "DEFAULT_CONNECT_TIMEOUT", 0.5)
    with pytest.raises(SchedulerUnreachableError, match=r"'tcp://127\.0\.0\.1:9' \(given as --scheduler"):
        bhattacharyya(logp, out=tmp_path / "u.zarr", tile=TILE, scheduler="tcp://127.0.0.1:9")
    assert zarr.open_group(str(tmp_path / "u.zarr"), mode="r")["tile_done"][...].sum() == 0
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    with pytest.raises(SchedulerUnreachableError, match="environment variable DASK_SCHEDULER_ADDRESS"):
        bhattacharyya(logp, out=tmp_path / "u.zarr", tile=TILE)


def test_bad_engine_options_are_refused(logp, tmp_path, processes):
    with pytest.raises(ValueError, match="n_workers"):
        bhattacharyya(logp, out=tmp_path / "a.zarr", tile=TILE, engine=processes, n_workers=2)
    with pytest.raises(ValueError, match="unknown engine"):
        bhattacharyya(logp, out=tmp_path / "b.zarr", tile=TILE, engine="threads")
    with pytest.raises(ValueError, match="positive integer"):
        bhattacharyya(logp, out=tmp_path / "c.zarr", tile=TILE, n_workers=0)


def test_dask_missing_names_the_extra(logp, tmp_path, no_dask):
    with pytest.raises(ImportError, match=r"pip install 'linsim\[dask\]'"):
        bhattacharyya(logp, out=tmp_path / "x.zarr", tile=TILE, engine="dask", n_workers=1)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=10, deadline=None)
@given(M=st.integers(2, 30), Mb=st.integers(0, 12), edge=st.integers(3, 17), stop=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_any_tiling_any_interruption_an_engine_gives_the_same_bits(M, Mb, edge, stop, seed):
    """For any tile edge and any tile after which the run is interrupted, the resumed store on
    the serial engine is bitwise the uninterrupted in-process store (self and cross cases)."""
    import tempfile

    rng = np.random.default_rng(seed)
    a = log_softmax(2 * rng.standard_normal((M, 6, 3)))
    b = log_softmax(2 * rng.standard_normal((Mb, 6, 3))) if Mb else None
    with tempfile.TemporaryDirectory() as d:
        ref = bhattacharyya(a, b, out=f"{d}/ref.zarr", tile=edge)[...]

        def halt(done, total):
            if done == stop:
                raise KeyboardInterrupt

        try:
            bhattacharyya(a, b, out=f"{d}/x.zarr", tile=edge, engine="serial", on_tile=halt)
        except KeyboardInterrupt:
            pass
        got = bhattacharyya(a, b, out=f"{d}/x.zarr", tile=edge, engine="serial")[...]
    np.testing.assert_array_equal(got, ref)
    assert not np.isnan(got).any()


CTRL_C_SCRIPT = """
import sys, time, pathlib
import numpy as np
from linsim.inpca import bhattacharyya
folder = pathlib.Path(sys.argv[1])
logp = np.load(folder / "logp.npy")
def pause_after_first(done, total):
    if done == 1:
        (folder / "one-tile-written").touch()
        for _ in range(600):  # wait for Ctrl-C in short slices
            time.sleep(0.1)
# no __main__ guard on purpose: process workers never re-run this script
bhattacharyya(logp, out=folder / "D.zarr", tile=16, engine="process", n_workers=2, on_tile=pause_after_first)
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_of_a_fan_out_leaves_no_process_and_a_store_that_resumes(logp, in_process, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from _process_tree import descendants

    np.save(tmp_path / "logp.npy", logp)
    script = tmp_path / "run.py"
    script.write_text(CTRL_C_SCRIPT)
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (tmp_path / "one-tile-written").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "one-tile-written").exists(), proc.stderr.read().decode()[-2000:]
    kids = descendants(proc.pid)
    assert len(kids) >= 2  # the two workers
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) != 0
    deadline = time.monotonic() + 10
    while alive(kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(kids) == [], "worker processes left behind by Ctrl-C"
    done = zarr.open_group(str(tmp_path / "D.zarr"), mode="r")["tile_done"][...]
    assert done.sum() >= 1
    seen = []
    z = bhattacharyya(logp, out=tmp_path / "D.zarr", tile=TILE, on_tile=lambda d, t: seen.append(d))
    assert len(seen) == 15 - int(done.sum())  # only the missing tiles
    np.testing.assert_array_equal(z[...], in_process["self"])


def test_a_callers_engine_is_left_as_it_was_found(logp, in_process, tmp_path):
    # not opened by the caller: the driver opens it and closes it again (workers would be left
    # running otherwise); opened by the caller (a with block): left open for the next map
    eng = RecordingEngine()
    z = bhattacharyya(logp, out=tmp_path / "a.zarr", tile=TILE, engine=eng)
    np.testing.assert_array_equal(z[...], in_process["self"])
    assert not eng.live
    with RecordingEngine() as eng:
        bhattacharyya(logp, out=tmp_path / "b.zarr", tile=TILE, engine=eng)
        assert eng.live
