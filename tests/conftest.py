"""Shared test configuration: a deterministic hypothesis profile (as in SciPy's suite)."""

import os

import pytest

from hypothesis import HealthCheck, settings

settings.register_profile(
    "linsim",
    derandomize=True,  # same examples every run: failures reproduce
    deadline=None,  # CI machines are slow and shared
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("linsim-thorough", parent=settings.get_profile("linsim"), max_examples=400)
settings.load_profile(os.environ.get("LINSIM_HYPOTHESIS_PROFILE", "linsim"))


# ----------------------------------------------------------------------------- fan-out engines
# Module-scoped: each test module that asks gets its own pool (a worker start costs seconds).
@pytest.fixture(scope="module")
def processes():
    """Two worker processes of linsim's process engine, open for the module."""
    from linsim.parallel import ProcessEngine

    with ProcessEngine(2) as engine:
        yield engine


@pytest.fixture(scope="module")
def cluster():
    """A Dask LocalCluster of two single-threaded workers (threads) and its client."""
    distributed = pytest.importorskip("distributed")
    cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    client = distributed.Client(cl)
    yield cl, client
    client.close()
    cl.close()


@pytest.fixture
def no_dask(monkeypatch):
    """``import distributed`` fails, as on a machine without the ``linsim[dask]`` extra."""
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)
