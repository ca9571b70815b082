"""Training grids on an engine (issue 10 item 5): worker processes and a Dask LocalCluster store
the same arrays, bit for bit, as training in this process; the caller writes every file and the
manifest; resume, interrupts, thread budgets and the scheduler flag / environment variable.

Oracle: :func:`run_grid` without an engine (one configuration after the other in this process,
the path that existed before the fan-out).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _process_tree import alive
from _recording_engine import RecordingEngine
from linsim import parallel
from linsim.deep.command import main as train_main
from linsim.deep.grid import expand_grid, result_path, run_grid
from linsim.deep.train import TrainResult
from linsim.parallel import ProcessEngine
from linsim.storage import read_netcdf

SPEC = {"dataset": "digits", "n_train": 48, "n_test": 16, "steps": 4, "n_checkpoints": 2, "n_runs": 2,
        "batch_size": 16, "device": "cpu", "architecture": ["linear", "mlp"], "width": 0.25,
        "lr": [0.05, 0.1]}
TOML = "\n".join(f"{k} = {json.dumps(v)}" for k, v in SPEC.items()) + "\n"


@pytest.fixture(scope="module")
def entries():
    return expand_grid(SPEC)


@pytest.fixture(scope="module")
def in_process(entries, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "ref"
    run_grid(entries, out, progress=False, log=None, num_threads=1)
    return out


def assert_same_arrays(a_dir: Path, b_dir: Path, entries):
    """Every stored variable of every configuration equal, bit for bit (NaN where NaN)."""
    for e in entries:
        a, b = read_netcdf(result_path(a_dir, e.config)), read_netcdf(result_path(b_dir, e.config))
        assert sorted(a.data_vars) == sorted(b.data_vars) and "train_outputs" in a.data_vars
        for name in a.data_vars:
            x, y = a[name].values, b[name].values
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{result_path(a_dir, e.config).name}: {name}"


def manifest(out: Path) -> dict:
    return json.loads((out / "index.json").read_text())


def test_the_oracle_trained_every_configuration(in_process, entries):
    """The comparison is not vacuous: finite logits that differ between configurations."""
    m = manifest(in_process)
    assert m["n_complete"] == len(entries) == 4
    a = read_netcdf(result_path(in_process, entries[0].config))["train_outputs"].values
    b = read_netcdf(result_path(in_process, entries[1].config))["train_outputs"].values  # another lr
    assert a.shape == (2, 3, 48, 10) and np.isfinite(a).all()
    assert not np.array_equal(a, b)
    assert not np.array_equal(a[:, 0], a[:, -1])  # training moved the logits


def test_local_cluster_grid_is_bitwise_the_in_process_grid(entries, in_process, cluster, tmp_path):
    _, client = cluster
    out = tmp_path / "d"
    before = torch.get_num_threads()
    s = run_grid(entries, out, progress=False, log=None, num_threads=1, scheduler=client, group_runs=0)
    assert torch.get_num_threads() == before  # items ran in threads of this process: restored
    assert s.n_trained == 4
    assert_same_arrays(in_process, out, entries)


def test_train_command_scheduler_flag_and_environment(entries, in_process, cluster, tmp_path, monkeypatch):
    from distributed import get_task_stream

    cl, client = cluster
    grid = tmp_path / "grid.toml"
    grid.write_text(TOML)
    with get_task_stream(client) as ts:
        rc = train_main([str(grid), "--out", str(tmp_path / "flag"), "--scheduler", cl.scheduler_address,
                         "--no-progress"])
    assert rc == 0
    assert len([d for d in ts.data if str(d["key"]).startswith("_call_shared")]) == 4
    assert_same_arrays(in_process, tmp_path / "flag", entries)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cl.scheduler_address)
    with get_task_stream(client) as ts:
        assert train_main([str(grid), "--out", str(tmp_path / "env"), "--no-progress"]) == 0
    assert len([d for d in ts.data if str(d["key"]).startswith("_call_shared")]) == 4
    assert_same_arrays(in_process, tmp_path / "env", entries)


def test_unreachable_scheduler_is_named_before_training(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "DEFAULT_CONNECT_TIMEOUT", 0.5)
    grid = tmp_path / "grid.toml"
    grid.write_text(TOML)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    assert train_main([str(grid), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "'tcp://127.0.0.1:9'" in err and "DASK_SCHEDULER_ADDRESS" in err
    assert not list((tmp_path / "o").glob("*.nc")) and not (tmp_path / "o" / "index.json").exists()
    # the flag wins over the environment, and is named as the source
    assert train_main([str(grid), "--out", str(tmp_path / "o"), "--scheduler", "127.0.0.1:7",
                       "--no-progress"]) == 2
    assert "'127.0.0.1:7' (given as --scheduler" in capsys.readouterr().err


def test_process_engine_grid_interrupted_resumed_is_bitwise_the_in_process_grid(entries, in_process, processes,
                                                                              tmp_path, monkeypatch):
    """Ctrl-C while the writer holds the third result: the workers are stopped, the two files
    written stay complete, the rerun trains only the other two, and the four stored files equal
    the in-process run's bit for bit; a third run trains nothing."""
    out = tmp_path / "p"
    before = torch.get_num_threads()
    real_save = TrainResult.save
    saved, pids = [], []

    def save_then_ctrl_c(self, path, **kw):
        if not pids:  # the workers running the map
            pids.extend(w.proc.pid for w in processes._workers)
            assert len(pids) == 2 and alive(pids) == pids
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(Path(path).name)
        return real_save(self, path, **kw)

    monkeypatch.setattr(TrainResult, "save", save_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_grid(entries, out, progress=False, log=None, num_threads=1, engine=processes)
    monkeypatch.setattr(TrainResult, "save", real_save)
    assert alive(pids) == [], "worker processes left behind by the interrupt"
    assert sorted(p.name for p in out.glob("*.nc")) == sorted(saved)
    assert manifest(out)["n_complete"] == 2
    s = run_grid(entries, out, progress=False, log=None, num_threads=1, engine=processes)
    assert (s.n_trained, s.n_skipped) == (2, 2)
    assert torch.get_num_threads() == before  # the caller's torch setting is untouched
    assert_same_arrays(in_process, out, entries)
    m = manifest(out)
    assert m["n_complete"] == 4 and all(c["status"] == "complete" for c in m["configs"])
    assert not list(out.glob(".*.tmp"))
    again = run_grid(entries, out, progress=False, log=None, num_threads=1, engine=processes)
    assert (again.n_trained, again.n_skipped) == (0, 4)


def test_thread_budget_and_bad_options_are_refused_before_training(entries, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with pytest.raises(ValueError, match=r"2 workers x 2 threads = 4 threads exceed the 2 cores"):
        run_grid(entries, tmp_path / "a", progress=False, log=None, num_threads=2, n_workers=2)
    with pytest.raises(ValueError, match=r"num_threads=None .*--threads 0"):
        run_grid(entries, tmp_path / "a", progress=False, log=None, num_threads=None, n_workers=2)
    with pytest.raises(ValueError, match="either an Engine instance"):
        run_grid(entries, tmp_path / "a", progress=False, log=None, num_threads=1,
                 engine=ProcessEngine(2), n_workers=2)
    assert not list((tmp_path / "a").glob("*"))
    grid = tmp_path / "grid.toml"
    grid.write_text(TOML)
    assert train_main([str(grid), "--out", str(tmp_path / "b"), "--workers", "2", "--threads", "2"]) == 2
    assert "--workers x --threads must be <= 2" in capsys.readouterr().err
    # one worker is this process: no engine is started, no thread budget applies
    s = run_grid(entries[:1], tmp_path / "c", progress=False, log=None, num_threads=None, n_workers=1)
    assert s.n_trained == 1


def test_compare_passes_its_engine_options_to_the_training_stage(monkeypatch, tmp_path, capsys):
    import linsim.deep.grid as grid_module
    from linsim.compare.command import main as compare_main

    seen = {}

    class Stop(Exception):
        pass

    def fake_run_grid(entries, out, **kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(grid_module, "run_grid", fake_run_grid)
    with pytest.raises(Stop):
        compare_main(["--workers", "2", "--no-progress", "--out", str(tmp_path / "c")])
    assert seen["n_workers"] == 2 and seen["scheduler"] is None and seen["num_threads"] == 1
    seen.clear()
    with pytest.raises(Stop):
        compare_main(["--scheduler", "tcp://h:8786", "--no-progress", "--out", str(tmp_path / "c")])
    assert seen["scheduler"] == "tcp://h:8786" and seen["n_workers"] is None
    # with a trained folder there is no training stage: the flags would do nothing, refused
    assert compare_main([str(tmp_path), "--workers", "2", "--no-progress"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_without_dask_the_commands_name_the_extra(tmp_path, no_dask, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(TOML)
    assert train_main([str(grid), "--out", str(tmp_path / "o"), "--scheduler", "tcp://h:8786", "--no-progress"]) == 2
    assert "pip install 'linsim[dask]'" in capsys.readouterr().err
    assert not list((tmp_path / "o").glob("*.nc"))


def test_grouped_configurations_on_an_engine_equal_the_grouped_run_here(entries, cluster, tmp_path):
    """With --group-runs the unit of work is a group: on the cluster the stored arrays equal
    the in-process grouped run's, and each group's configurations are written together."""
    _, client = cluster
    here = run_grid(entries, tmp_path / "here", progress=False, log=None, num_threads=1, group_runs=64)
    there = run_grid(entries, tmp_path / "there", progress=False, log=None, num_threads=1, group_runs=64,
                     scheduler=client)
    assert here.n_trained == there.n_trained == 4
    assert_same_arrays(tmp_path / "here", tmp_path / "there", entries)
    sizes = sorted(c["group_size"] for c in manifest(tmp_path / "there")["configs"])
    assert sizes == sorted(c["group_size"] for c in manifest(tmp_path / "here")["configs"]) and max(sizes) > 1


def test_two_data_sets_on_a_cluster_of_threads(cluster, tmp_path):
    """Workers that are threads of one process share the data cache: configurations on two
    data sets, interleaved, still train on their own data (equal to the in-process run)."""
    _, client = cluster
    spec = {**SPEC, "architecture": "linear", "n_train": [48, 64], "lr": [0.05, 0.1]}
    entries = expand_grid(spec)
    entries = [entries[i] for i in (0, 2, 1, 3)]  # alternate the data sets
    run_grid(entries, tmp_path / "here", progress=False, log=None, num_threads=1)
    run_grid(entries, tmp_path / "there", progress=False, log=None, num_threads=1, scheduler=client)
    assert_same_arrays(tmp_path / "here", tmp_path / "there", entries)
    sizes = {read_netcdf(result_path(tmp_path / "there", e.config))["train_inputs"].shape[0] for e in entries}
    assert sizes == {48, 64}


def test_a_callers_engine_is_left_as_it_was_found(entries, in_process, tmp_path, monkeypatch):
    # not opened by the caller: run_grid opens it and closes it again (worker processes would
    # outlive the call otherwise), and gives back its thread setting
    eng = RecordingEngine()
    eng.threads_per_worker = 2  # not the value run_grid sets, so a missing restore shows
    run_grid(entries[:1], tmp_path / "a", progress=False, log=None, num_threads=1, engine=eng)
    assert_same_arrays(in_process, tmp_path / "a", entries[:1])
    assert not eng.live and eng.threads_per_worker == 2
    with RecordingEngine() as eng:  # opened by the caller: left open
        run_grid(entries[1:2], tmp_path / "b", progress=False, log=None, num_threads=1, engine=eng)
        assert eng.live
    # refused by the thread budget: the caller's engine keeps its setting
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    eng = RecordingEngine()
    with pytest.raises(ValueError, match="exceed the 2 cores"):
        run_grid(entries[:1], tmp_path / "c", progress=False, log=None, num_threads=3, engine=eng)
    assert eng.threads_per_worker == 1 and not eng.live


def test_only_the_missing_extra_becomes_a_one_line_error(tmp_path, monkeypatch):
    # the dask extra missing is bad setup (exit 2, one line); any other ImportError is a fault
    # of linsim or its environment and keeps its traceback instead of passing for bad input
    from linsim.compare.command import main as compare_main

    def broken(*a, **k):
        raise ImportError("cannot import name 'something' from 'linsim.deep.train'")

    monkeypatch.setattr("linsim.deep.grid.run_grid", broken)
    grid = tmp_path / "grid.toml"
    grid.write_text(TOML)
    with pytest.raises(ImportError, match="cannot import name"):
        train_main([str(grid), "--out", str(tmp_path / "o"), "--no-progress"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImportError, match="cannot import name"):
        compare_main(["--no-progress", "--out", str(tmp_path / "c")])
