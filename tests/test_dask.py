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
