"""The dask engine: a LocalCluster gives the same bits as the serial and process engines."""

import operator

import numpy as np
import pytest

pytest.importorskip("distributed")

from linsim.ensemble import EnsembleConfig  # noqa: E402
from linsim.parallel import DaskEngine, get_engine  # noqa: E402
from linsim.sweep import PhaseSpec, run_phase  # noqa: E402


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_engine_maps_and_reports_failures(client):
    engine = get_engine("dask", scheduler=client)
    assert sorted(engine.map_unordered(operator.neg, [1, 2, 3])) == [(0, -1), (1, -2), (2, -3)]
    with pytest.raises(ZeroDivisionError) as info:
        list(engine.map_unordered(_inverse, [1, 0]))
    assert any("item 1" in n for n in info.value.__notes__)
    assert not client.status == "closed"  # a client that was given is not closed


def _inverse(x):
    return 1 / x


def test_kernel_rbf_sweep_on_a_local_cluster_equals_the_serial_run_bitwise(client):
    # Two threads of one process run cells concurrently: the per-item thread limit must still
    # hold the BLAS pools at one thread (the size where two BLAS threads changed bits).
    base = EnsembleConfig(model="kernel", kernel="rbf", n_samples=160, dim=40, n_classes=5, n_runs=12,
                          n_checkpoints=16, steps=1000, init_scale=0.01)
    spec = PhaseSpec(base, {"c": [0.2, 1.0], "ratio": [50.0]}, root_seed=3)
    serial = run_phase(spec, n_workers=1, progress=False)
    dask = run_phase(spec, engine=DaskEngine(scheduler=client), progress=False)
    assert np.all(serial["status"].values == "ok"), serial["error"].values
    for name in serial.data_vars:
        if name != "seconds":
            assert np.array_equal(serial[name].values, dask[name].values,
                                  equal_nan=serial[name].dtype.kind == "f"), name


def _fan_out_tasks(ts):
    return [d for d in ts.data if str(d["key"]).startswith("_call_shared")]


def test_linsim_phase_honours_the_scheduler_flag_and_the_environment(client, tmp_path, monkeypatch, capsys):
    """The cells of `linsim phase` run on the cluster named by --scheduler or, without the flag,
    by DASK_SCHEDULER_ADDRESS; the results equal the local run's."""
    from distributed import get_task_stream

    from linsim.cli import main
    from linsim.storage import read_netcdf

    args = ["phase", "--axis", "c=0,1", "--n-runs", "2", "--dim", "4", "--n-samples", "8", "--steps", "10",
            "--n-checkpoints", "3", "--json", "--no-figure", "--no-progress"]
    address = client.scheduler.address
    assert main(args + ["--workers", "1", "--out", str(tmp_path / "here")]) == 0
    with get_task_stream(client) as ts:
        assert main(args + ["--scheduler", address, "--out", str(tmp_path / "flag")]) == 0
    assert len(_fan_out_tasks(ts)) == 2  # one per cell
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    with get_task_stream(client) as ts:
        assert main(args + ["--out", str(tmp_path / "env")]) == 0
    assert len(_fan_out_tasks(ts)) == 2
    capsys.readouterr()
    here = read_netcdf(tmp_path / "here" / "phase.nc")
    for other in ("flag", "env"):
        there = read_netcdf(tmp_path / other / "phase.nc")
        for name in here.data_vars:
            if name != "seconds":
                x, y = here[name].values, there[name].values
                assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (other, name)


def test_linsim_phase_names_an_unreachable_scheduler_before_computing(tmp_path, monkeypatch, capsys):
    from linsim import parallel
    from linsim.cli import main

    monkeypatch.setattr(parallel, "DEFAULT_CONNECT_TIMEOUT", 0.5)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    rc = main(["phase", "--axis", "c=0,1", "--n-runs", "2", "--dim", "4", "--n-samples", "8", "--steps", "10",
               "--n-checkpoints", "3", "--no-figure", "--no-progress", "--out", str(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "'tcp://127.0.0.1:9'" in err and "DASK_SCHEDULER_ADDRESS" in err
    assert not (tmp_path / "phase.nc").exists()
