"""Sweep results on disk and in memory: the per-cell store (resume) and the final dataset.

Dataset layout
--------------
Dimensions are the swept axes (canonical names: ``slope``, ``scale_ratio``, ``steps``, ...),
``component`` (InPCA component k = 1..10 of the explained-stress curves, the dimension name of
``linsim ribbon``'s ``ribbon.nc`` too) and, with ``replicates > 1``, ``replicate``.  Every variable and coordinate has CF ``long_name`` and
``units`` (``"1"`` for dimensionless numbers, ``"s"`` for seconds); axis coordinates also carry
their ``symbol`` (c, ρ/σ₀, T, ...).  Variables:

* ``status`` (``"ok"``, ``"failed"``, or ``"missing"`` for a cell an interrupted sweep did not
  reach) and ``error`` (``""`` or the exception);
* ``seed`` (int64, per replicate) and ``seconds`` (wall time, summed over replicates: the only
  variable that differs between two runs of the same sweep);
* ``sim_*``, ``theory_*``, ``draw_*`` metrics (see :mod:`linsim.sweep.cells`) as float64;
  booleans (``*_is_ribbon``, ``in_regime``) are stored as booleans, and ``sim_valid``,
  ``theory_valid``, ``draw_valid`` (booleans) say where each family of values exists: where a
  ``*_valid`` mask is False the floats are NaN and the booleans False, meaning "no value";
* with replicates: floats are means over the successful replicates with ``<name>_std`` (sample
  standard deviation, NaN with fewer than two), booleans are majorities (more than half of the
  successful replicates) with ``<name>_fraction``; ``replicates_ok`` counts the successful
  replicates, ``status`` is ``"ok"`` only when all replicates succeeded and the ``*_valid``
  masks are True only when the family exists for every replicate.

Per-cell store
--------------
With ``run_phase(..., out=PATH)`` every (cell, replicate) is written, as it finishes, to its own
small netCDF file in the folder ``PATH.cells`` (``cell-<flat>-r<replicate>.nc``, atomic,
checksummed, tagged with the sweep's fingerprint).  ``resume=True`` reads them back and computes
only the missing or failed ones; the folder is removed once the final file is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from linsim.sweep.axes import PhaseSpec, axis_info
from linsim.sweep.cells import N_STRESS, CellResult

__all__ = ["PREFIXES", "assemble", "cells_folder", "clear_cells", "load_cells", "save_dataset",
           "variable_attrs", "write_cell"]

#: Families of per-cell metrics: prefix -> what produced them.
PREFIXES = {
    "sim": "simulated ensemble (exact outputs, Bhattacharyya distance mean over samples, InPCA)",
    "theory": "theory, expected spectrum (theory.expected_spectrum)",
    "draw": "theory for the simulated draw (theory.quadratic_spectrum)",
}

_METRICS = {
    "k_chi": "k_χ, the smallest number of InPCA dimensions whose explained stress reaches χ = {chi:g}",
    "stress_k": "explained stress χ_k at k = k* = {k_star}",
    "stress_1": "explained stress χ_1",
    "stress_2": "explained stress χ_2",
    "stress_3": "explained stress χ_3",
    "decay_rate": "geometric decay rate r of |λ_j| over the leading eigenvalues (|λ_{{j+1}}/λ_j| ≈ e^-r)",
    "decay_rate_stderr": "standard error of the decay rate r",
    "n_negative": "number of negative (time-like) InPCA eigenvalues",
    "negative_share": "share of the stress carried by negative eigenvalues",
    "is_ribbon": "hyper-ribbon: k_χ ≤ k* = {k_star} at χ = {chi:g}",
    "stress_curve": "explained stress χ_k for k = 1..10 (NaN beyond the number of eigenvalues)",
    "valid": "the {prefix} values exist for this cell",
}
_OTHER = {
    "status": ("cell status: ok, failed, or missing (not computed)", "1"),
    "error": ("error message of a failed cell (empty when ok)", "1"),
    "seed": ("seed of the cell's ensemble (EnsembleConfig.seed)", "1"),
    "seconds": ("wall time of the cell, summed over replicates", "s"),
    "logit_rms": ("pooled rms of the class-centred logits (theory.centred_logit_rms)", "1"),
    "logit_max": ("largest absolute class-centred logit", "1"),
    "in_regime": ("in the small-logit regime: logit_rms ≤ theory.REGIME_LOGIT_RMS", "1"),
    "replicates_ok": ("number of replicates that succeeded", "1"),
}


def variable_attrs(name: str, spec: PhaseSpec | None = None) -> dict[str, str]:
    """CF ``long_name`` and ``units`` of a sweep variable.

    Examples
    --------
    >>> variable_attrs("sim_k_chi")["long_name"][:40]
    'simulated ensemble (exact outputs, Bhatt'
    >>> variable_attrs("seconds")["units"]
    's'
    """
    chi = spec.criterion.chi if spec is not None else 0.9
    k_star = spec.criterion.k_star if spec is not None else 3
    for suffix, stat in (("_std", "sample standard deviation over replicates of: "),
                         ("_fraction", "fraction of the successful replicates with: ")):
        if name.endswith(suffix) and name != suffix:
            base = variable_attrs(name[: -len(suffix)], spec)
            return {"long_name": stat + base["long_name"], "units": base["units"]}
    if name in _OTHER:
        long_name, units = _OTHER[name]
        return {"long_name": long_name, "units": units}
    prefix, _, metric = name.partition("_")
    if prefix in PREFIXES and metric in _METRICS:
        text = _METRICS[metric].format(chi=chi, k_star=k_star, prefix=prefix)
        return {"long_name": f"{PREFIXES[prefix]}: {text}", "units": "1"}
    return {"long_name": name.replace("_", " "), "units": "1"}


# ----------------------------------------------------------------------------- per-cell store
def cells_folder(out: str | Path) -> Path:
    """The per-cell store of a sweep written to ``out``: the folder ``out.cells`` beside it.

    Examples
    --------
    >>> cells_folder("linsim-out/phase.nc").name
    'phase.nc.cells'
    """
    out = Path(out)
    return out.parent / (out.name + ".cells")


def _cell_path(folder: Path, flat: int, replicate: int) -> Path:
    return folder / f"cell-{flat:06d}-r{replicate:03d}.nc"


def write_cell(folder: Path, spec_fingerprint: str, flat: int, replicate: int, result: CellResult) -> Path:
    """Write one finished (cell, replicate) atomically, with checksums, into the store.

    Examples
    --------
    >>> import tempfile
    >>> res = CellResult(5, 0.1, "", {"sim_k_chi": 2.0, "sim_is_ribbon": True}, {})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = write_cell(Path(d), "abc", 3, 0, res)
    ...     back = load_cells(Path(d), "abc")[(3, 0)]
    >>> back.scalars == res.scalars, back.seed
    (True, 5)
    """
    import xarray as xr

    from linsim.storage import write_netcdf

    data = {}
    for key, value in result.scalars.items():
        data[key] = ((), np.asarray(value, dtype=bool if isinstance(value, bool) else np.float64))
    for key, curve in result.curves.items():
        data[key] = (("component",), np.asarray(curve, dtype=np.float64))
    ds = xr.Dataset(data, attrs={
        "linsim_type": "PhaseSweepCell", "sweep_fingerprint": spec_fingerprint, "flat_index": int(flat),
        "replicate": int(replicate), "seed": int(result.seed), "seconds": float(result.seconds),
        "error": result.error,
    })
    return write_netcdf(ds, _cell_path(folder, flat, replicate), title="one cell of a linsim phase sweep",
                        checksum_vars=list(data))


def load_cells(folder: Path, spec_fingerprint: str) -> dict[tuple[int, int], CellResult]:
    """Read a per-cell store; ``{(flat, replicate): CellResult}``.

    A file of another sweep (different fingerprint) raises ``ValueError``; a damaged file is
    removed with a warning (its cell is computed again).

    Examples
    --------
    See :func:`write_cell`; a missing folder is an empty store:

    >>> load_cells(Path("no-such-folder.cells"), "abc")
    {}
    """
    from linsim.storage import CorruptFileError, read_netcdf

    out: dict[tuple[int, int], CellResult] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("cell-*.nc")):
        try:
            ds = read_netcdf(path)
        except (CorruptFileError, OSError, ValueError) as exc:
            warnings.warn(f"ignoring damaged sweep cell file {str(path)!r} ({exc}); it will be recomputed",
                          RuntimeWarning, stacklevel=2)
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if ds.attrs.get("sweep_fingerprint") != spec_fingerprint:
            raise ValueError(
                f"{str(folder)!r} holds cells of a different sweep (file {path.name} has another "
                f"fingerprint): resume only with the same base, axes, criterion, root seed and "
                f"replicates, or delete the folder"
            )
        scalars = {}
        curves = {}
        for key, var in ds.data_vars.items():
            if var.dims == ("component",):
                curves[key] = np.asarray(var.values, dtype=np.float64)
            elif var.dtype == bool:
                scalars[key] = bool(var.values)
            else:
                scalars[key] = float(var.values)
        res = CellResult(int(ds.attrs["seed"]), float(ds.attrs["seconds"]), str(ds.attrs.get("error", "")),
                         scalars, curves)
        out[(int(ds.attrs["flat_index"]), int(ds.attrs["replicate"]))] = res
    return out


def clear_cells(folder: Path) -> None:
    """Remove a per-cell store (only the files a sweep writes, then the folder if empty).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = Path(d) / "x.nc.cells"
    ...     store.mkdir()
    ...     _ = (store / "cell-000000-r000.nc").write_bytes(b"")
    ...     clear_cells(store)
    ...     store.exists()
    False
    """
    if not folder.is_dir():
        return
    for path in folder.glob("cell-*.nc"):
        with contextlib.suppress(OSError):
            path.unlink()
    for path in folder.glob(".cell-*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):  # pragma: no cover
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- assembly
def _stats(values: np.ndarray, valid: np.ndarray):
    """Mean and sample std over the last axis, using only ``valid`` entries."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        masked = np.where(valid, values, np.nan)
        mean = np.nanmean(masked, axis=-1)
        count = valid.sum(axis=-1)
        std = np.nanstd(masked, axis=-1, ddof=1)
    std = np.where(count >= 2, std, np.nan)
    return mean, std


def assemble(spec: PhaseSpec, results: Mapping[tuple[int, int], CellResult], *, command=None):
    """Build the sweep dataset from per-(cell, replicate) results (missing ones allowed).

    Parameters
    ----------
    spec : PhaseSpec
    results : mapping (flat index, replicate) -> CellResult
    command : str, optional
        Command line recorded in ``history`` (default ``sys.argv``).

    Returns
    -------
    xarray.Dataset (see the module docstring)

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig
    >>> spec = PhaseSpec(EnsembleConfig(), {"c": [0.0, 1.0]})
    >>> ds = assemble(spec, {(0, 0): CellResult(1, 0.5, "", {"sim_k_chi": 2.0, "sim_is_ribbon": True})})
    >>> ds["status"].values.tolist(), ds["sim_is_ribbon"].values.tolist(), ds["sim_valid"].values.tolist()
    (['ok', 'missing'], [True, False], [True, False])
    """
    import xarray as xr

    from linsim.provenance import provenance_attrs
    from linsim._theory_check import import_theory

    dims = tuple(spec.axes)
    shape = spec.shape
    R = spec.replicates
    n = spec.n_cells
    flat_shape = (n, R)
    present = np.zeros(flat_shape, dtype=bool)
    ok = np.zeros(flat_shape, dtype=bool)
    seconds = np.full(flat_shape, np.nan)
    errors = np.full(flat_shape, "", dtype=object)
    scalar_kind: dict[str, type] = {}
    curve_keys: set[str] = set()
    for (flat, r), res in results.items():
        present[flat, r] = True
        ok[flat, r] = res.ok
        seconds[flat, r] = res.seconds
        errors[flat, r] = res.error
        for key, value in res.scalars.items():
            scalar_kind.setdefault(key, bool if isinstance(value, bool) else float)
        curve_keys.update(res.curves)

    def gather(key, width=None):
        arr = np.full(flat_shape + ((width,) if width else ()), np.nan)
        has = np.zeros(flat_shape, dtype=bool)
        for (flat, r), res in results.items():
            source = res.curves if width else res.scalars
            if key in source:
                arr[flat, r] = source[key]
                has[flat, r] = True
        return arr, has

    def shaped(a):
        return a.reshape(shape + a.shape[1:])

    data_vars: dict = {}

    def put(name, values, extra_dims=()):
        data_vars[name] = (dims + extra_dims, shaped(values), variable_attrs(name, spec))

    failed = (present & ~ok).any(axis=1)
    status = np.where(failed, "failed", np.where(ok.all(axis=1), "ok", "missing"))
    err = []
    for i in range(n):
        texts = [(r, errors[i, r]) for r in range(R) if errors[i, r]]
        err.append("" if not texts else texts[0][1] if R == 1 else
                   "\n".join(f"replicate {r}: {t}" for r, t in texts))
    put("status", np.array(status.tolist(), dtype=str))  # narrowest width, as read back from disk
    put("error", np.array(err, dtype=str))
    seeds = spec.seeds().reshape(flat_shape)
    if R == 1:
        put("seed", seeds[:, 0])
    else:
        put("seed", seeds, ("replicate",))
        put("replicates_ok", ok.sum(axis=1).astype(np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        put("seconds", np.where(present.any(axis=1), np.nansum(np.where(present, seconds, 0.0), axis=1), np.nan))

    for prefix in PREFIXES:
        marker = f"{prefix}_k_chi" if prefix != "sim" else "sim_k_chi"
        if prefix == "sim" or marker in scalar_kind:
            _, has = gather(marker)
            put(f"{prefix}_valid", has.all(axis=1))
    for key in sorted(scalar_kind):
        values, has = gather(key)
        if scalar_kind[key] is bool:
            truth = np.where(has, values == 1.0, False)
            if R == 1:
                put(key, truth[:, 0])
            else:
                count = has.sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    frac = np.where(count > 0, truth.sum(axis=1) / np.maximum(count, 1), np.nan)
                put(key, np.where(count > 0, frac > 0.5, False))
                put(f"{key}_fraction", frac)
        else:
            if R == 1:
                put(key, np.where(has, values, np.nan)[:, 0])
            else:
                mean, std = _stats(values, has)
                put(key, mean)
                put(f"{key}_std", std)
    for key in sorted(curve_keys):
        values, has = gather(key, N_STRESS)
        if R == 1:
            put(key, np.where(has[..., None], values, np.nan)[:, 0], ("component",))
        else:
            mean, std = _stats(np.moveaxis(values, 1, -1), has[:, None, :])
            put(key, mean, ("component",))
            put(f"{key}_std", std, ("component",))

    coords = {}
    for name, values in spec.axes.items():
        info = axis_info(name)
        coords[name] = (name, values, {"long_name": info.long_name, "units": info.units, "symbol": info.symbol})
    coords["component"] = ("component", np.arange(1, N_STRESS + 1),
                           {"long_name": "InPCA component k (explained stress of the first k)", "units": "1"})
    if R > 1:
        coords["replicate"] = ("replicate", np.arange(R), {"long_name": "replicate (independent seed) number",
                                                           "units": "1"})
    theory = import_theory()
    attrs = provenance_attrs(command, title="linsim phase sweep: simulated hyper-ribbon metrics beside the theory")
    attrs.update({
        "linsim_type": "PhaseSweep",
        "base_config_json": json.dumps(dataclasses.asdict(spec.base), sort_keys=True),
        "axes_json": json.dumps({k: v.tolist() for k, v in spec.axes.items()}),
        "axis_symbols_json": json.dumps({k: axis_info(k).symbol for k in spec.axes}, ensure_ascii=False),
        "criterion_chi": spec.criterion.chi,
        "criterion_k_star": spec.criterion.k_star,
        "root_seed": int(spec.root_seed),
        "replicates": int(R),
        "regime_logit_rms": float(theory.REGIME_LOGIT_RMS),
        "sweep_fingerprint": spec.fingerprint(),
        "nondeterministic_variables": "seconds",
        "notes": "\n".join(spec.notes),
        "comment": (
            "sim_*: simulated ensemble; theory_*: theory.expected_spectrum; draw_*: "
            "theory.quadratic_spectrum of the simulated draw; *_is_ribbon: k_chi <= k_star at "
            "explained stress chi; booleans are booleans, meaningful where the matching *_valid "
            "mask (sim_valid, theory_valid, draw_valid) is True; replicate statistics in *_std "
            "and *_fraction"
        ),
    })
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def save_dataset(ds, path, *, command=None) -> Path:
    """Write a sweep dataset atomically to netCDF (h5netcdf), with provenance and a checksum
    of every numeric and boolean data variable (:func:`linsim.storage.write_netcdf`).

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, xarray as xr
    >>> from linsim.storage import read_netcdf
    >>> ds = xr.Dataset({"status": ("c", np.array(["ok"])), "sim_is_ribbon": ("c", [True])})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     back = read_netcdf(save_dataset(ds, Path(d) / "phase.nc", command="doctest"))
    >>> back["sim_is_ribbon"].dtype, back.attrs["Conventions"]
    (dtype('bool'), 'CF-1.10')
    """
    from linsim.storage import write_netcdf

    # strings come back from netCDF with another dtype (object), so only numbers are checksummed
    numeric = [v for v in ds.data_vars if ds[v].dtype.kind in "biuf"]
    return write_netcdf(ds, path, command=command, title=ds.attrs.get("title"), checksum_vars=numeric)
