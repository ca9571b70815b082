"""Shared settings of the issue-9 acceptance benchmark (seeds, the standard cell, chi_3 of one run).

Seeds ``SEED_OFFSET + ...`` (``SEED_OFFSET = 900_000``) are used by no test and no tuning script.
"""

from __future__ import annotations

from linsim.embed import embed
from linsim.ensemble import EnsembleConfig, simulate
from linsim.sweep.summary import TRIVIAL_RIBBON_RATIO as TRIVIAL_RATIO  # noqa: F401 (re-exported: the one trivial-rule constant)

SEED_OFFSET = 900_000
CHI, K_STAR = 0.9, 3
# boundary scans: factors of the *simulated* crossing (never 1: no coin-flip point; the inner
# points 0.8 and 1.25 lie outside the 15% tolerance), fixed ratios for the 0 / inf branches
SCAN_FACTORS = (0.5, 2 / 3, 0.8, 1.25, 1.5, 2.0)
ZERO_GRID = (0.05, 0.15, 0.4, 1.0, 2.0, 4.0)
INF_GRID = (1.0, 2.0, 5.0, 10.0, 30.0, 100.0)


def _base(c, C, R, T, seed) -> EnsembleConfig:
    return EnsembleConfig(slope=float(c), dim=30, n_samples=60, n_classes=int(C), n_runs=int(R),
                          steps=int(T), n_checkpoints=10, teacher_scale=0.01, init_scale=0.01,
                          seed=int(seed))


def _chi3(cfg: EnsembleConfig) -> float:
    return float(embed(simulate(cfg), n_components=K_STAR).model.explained_stress_[K_STAR - 1])


def write_store(path, data_vars: dict, coords: dict, attrs: dict, title: str) -> None:
    """Write one unit of a benchmark's simulation as a self-describing netCDF file (atomic, with
    checksums of ``data_vars``): ``data_vars`` / ``coords`` as for ``xarray.Dataset``."""
    import xarray as xr

    from linsim.storage import write_netcdf

    write_netcdf(xr.Dataset(data_vars, coords=coords, attrs=attrs), path, title=title,
                 checksum_vars=list(data_vars))


def read_store(path, expected: dict, what: str):
    """Read a file of :func:`write_store`, refusing one made for another unit: every key of
    ``expected`` must be an attribute of that value (compared after converting the attribute to
    the expected value's type). Returns the ``xarray.Dataset``."""
    from linsim.storage import read_netcdf

    ds = read_netcdf(path)
    got = {k: type(v)(ds.attrs[k]) if k in ds.attrs else None for k, v in expected.items()}
    if got != expected:
        held = ", ".join(f"{k}={ds.attrs.get(k)}" for k in expected)
        raise ValueError(f"{path} holds another {what} ({held}); use another --store folder")
    return ds
