"""Run a phase sweep: fan the cells out on an engine, keep each as it finishes, assemble."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from linsim._theory_check import import_theory
from linsim.sweep.axes import PhaseSpec
from linsim.sweep.cells import CellResult, _cell_task
from linsim.sweep.dataset import assemble, cells_folder, clear_cells, load_cells, save_dataset, write_cell

__all__ = ["SweepFailedError", "SweepInterrupted", "run_phase"]


class SweepFailedError(RuntimeError):
    """Every cell of a sweep failed (``.dataset`` holds the per-cell errors).

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig
    >>> try:
    ...     run_phase(PhaseSpec(EnsembleConfig(), {"c": [-1.0]}), n_workers=1, progress=False)
    ... except SweepFailedError as exc:
    ...     print(exc.dataset["status"].values.tolist())
    ['failed']
    """

    def __init__(self, message: str, dataset=None) -> None:
        super().__init__(message)
        self.dataset = dataset


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was interrupted; ``.dataset`` holds the cells finished so far (the others
    have ``status == "missing"``), and with ``out=`` they are also on disk for ``resume``.

    Examples
    --------
    >>> issubclass(SweepInterrupted, KeyboardInterrupt)
    True
    """

    def __init__(self, message: str, dataset=None) -> None:
        super().__init__(message)
        self.dataset = dataset


def _first_lines(results: dict[tuple[int, int], CellResult], limit: int = 3) -> str:
    seen: list[str] = []
    for res in results.values():
        line = res.error.splitlines()[0] if res.error else ""
        if line and line not in seen:
            seen.append(line)
    more = f" (and {len(seen) - limit} other errors)" if len(seen) > limit else ""
    return "; ".join(seen[:limit]) + more


def run_phase(spec: PhaseSpec, n_workers: int | None = None, progress: bool = True,
              theory_resolution: int = 0, *, engine=None, scheduler=None, out=None,
              resume: bool = False, replicates: int | None = None, command=None):
    """Run a phase sweep.

    Parameters
    ----------
    spec : PhaseSpec
    n_workers : int >= 1, optional
        Workers (default: all cores).  Results are bitwise identical for any value and engine.
    progress : bool
        Show a progress bar (tqdm) on stderr.
    theory_resolution : int
        If > 0, also evaluate the expected-spectrum theory on a finer ``resolution ×
        resolution`` grid over the first two axes (variables ``fine_*``); checked with
        :meth:`PhaseSpec.validate_for_theory_map` before anything is computed.
    engine : {"serial", "process", "dask"} or linsim.parallel.Engine, optional
        Where cells run (:func:`linsim.parallel.get_engine`; default: ``"serial"`` for one
        worker, ``"process"`` otherwise, ``"dask"`` when a scheduler is given).
    scheduler : str or distributed.Client, optional
        Dask scheduler address (or ``DASK_SCHEDULER_ADDRESS``).
    out : path, optional
        Write the dataset here (netCDF, atomic, checksummed, with provenance).  Each cell is
        kept as it finishes in the folder ``out.cells`` (removed at the end), so an
        interrupted sweep loses nothing.
    resume : bool
        With ``out``: reuse the finished cells in ``out.cells`` (or a complete ``out`` written
        by the same sweep) and compute only the missing or failed ones.  The result equals an
        uninterrupted run in every data variable but ``seconds``.  A store or an ``out`` file
        of a different sweep is refused (``ValueError``), never overwritten.
    replicates : int >= 1, optional
        Seeds per cell, overriding ``spec.replicates`` (see :class:`PhaseSpec`).
    command : str, optional
        Command line recorded in the ``history`` attribute (default ``sys.argv``).

    Returns
    -------
    xarray.Dataset
        See :mod:`linsim.sweep.dataset`.

    Raises
    ------
    SweepFailedError
        When every cell failed (the message gives the distinct errors).
    SweepInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``), after the workers are stopped.
    linsim.sweep.TheoryShadowedError
        When a module called ``theory`` (e.g. a ``theory.py`` in the working folder) hides
        linsim's theory package.

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig
    >>> base = EnsembleConfig(n_samples=12, dim=4, n_classes=2, n_runs=2, n_checkpoints=3, steps=20)
    >>> ds = run_phase(PhaseSpec(base, {"ratio": [1.0, 10.0]}), n_workers=1, progress=False)
    >>> ds["status"].values.tolist(), ds["sim_is_ribbon"].dtype
    (['ok', 'ok'], dtype('bool'))
    """
    from tqdm.auto import tqdm

    from linsim.parallel import Engine, check_n_workers, get_engine, sigterm_as_exit
    from linsim.storage import check_writable_dir, read_netcdf

    if not isinstance(spec, PhaseSpec):
        raise TypeError(f"spec must be a PhaseSpec; got {type(spec).__name__}")
    n_workers = check_n_workers(n_workers)
    if replicates is not None and replicates != spec.replicates:
        notes = spec.notes
        spec = dataclasses.replace(spec, replicates=replicates)
        object.__setattr__(spec, "notes", notes)
    if isinstance(theory_resolution, bool) or not isinstance(theory_resolution, int) or theory_resolution < 0:
        raise ValueError(f"theory_resolution must be an integer >= 0; got {theory_resolution!r}")
    if theory_resolution:
        spec.validate_for_theory_map(theory_resolution)
    import_theory()  # a shadowing theory.py is named here, before any cell runs
    if resume and out is None:
        raise ValueError("resume=True needs out= (the file whose cells are resumed)")
    eng = get_engine(engine, n_workers, scheduler)
    fingerprint = spec.fingerprint()
    folder = None
    results: dict[tuple[int, int], CellResult] = {}
    if out is not None:
        out = Path(out)
        check_writable_dir(out.parent)
        if out.exists() and out.is_dir():
            raise IsADirectoryError(f"out={str(out)!r} is a folder; give a file name such as phase.nc")
        folder = cells_folder(out)
        if resume:
            if out.is_file() and not folder.is_dir():
                done = read_netcdf(out)
                if done.attrs.get("sweep_fingerprint") != fingerprint:
                    # the same refusal as for a store of another sweep: resume never overwrites
                    # the results of a different sweep
                    raise ValueError(
                        f"{str(out)!r} holds a different sweep (another fingerprint): resume only with "
                        f"the same base, axes, criterion, root seed and replicates, or run without "
                        f"resume to replace it"
                    )
                if (not (done["status"].values == "missing").any()
                        and int(done.attrs.get("theory_resolution", -1)) == theory_resolution):
                    return done
            results = {k: v for k, v in load_cells(folder, fingerprint).items() if v.ok}
        else:
            clear_cells(folder)
        folder.mkdir(parents=True, exist_ok=True)
    units = spec.units()
    todo = [u for u in units if (u.flat, u.replicate) not in results]
    items = [(u.config, spec.criterion) for u in todo]
    own = not isinstance(engine, Engine)
    ds = None
    bar = tqdm(total=len(units), initial=len(units) - len(todo), desc="phase cells", unit="cell",
               disable=not progress)
    try:
        with sigterm_as_exit():
            if own:
                eng.open()
            try:
                for i, res in eng.map_unordered(_cell_task, items):
                    u = todo[i]
                    results[(u.flat, u.replicate)] = res
                    if folder is not None:
                        write_cell(folder, fingerprint, u.flat, u.replicate, res)
                    bar.update()
                bar.close()
                ds = assemble(spec, results, command=command)
                if results and not any(r.ok for r in results.values()):
                    raise SweepFailedError(
                        f"all {len(results)} cells of the sweep failed: {_first_lines(results)} "
                        f"(see the dataset's 'error' variable)", ds)
                if theory_resolution:
                    from linsim.sweep.theory_map import theory_map

                    fine = theory_map(spec, theory_resolution, engine=eng, progress=progress)
                    ds = ds.merge(fine, combine_attrs="drop_conflicts")
                else:  # no fine map: the analytic-boundary verdicts per cell still belong to the sweep
                    from linsim.sweep.theory_map import analytic_boundary

                    # None unless rho/sigma0 and one more axis
                    bounds = analytic_boundary(spec, engine=eng, progress=progress)
                    if bounds is not None:
                        ds = ds.merge(bounds, combine_attrs="drop_conflicts")
                        ds.attrs.update(bounds.attrs)
                ds.attrs["theory_resolution"] = int(theory_resolution)
            finally:
                if own:
                    eng.close()
    except KeyboardInterrupt as exc:
        bar.close()
        if isinstance(exc, SweepInterrupted):
            raise
        kept = f"; the {len(results)} finished cells are kept in {str(folder)!r} (resume=True)" if folder else ""
        raise SweepInterrupted(f"phase sweep interrupted after {len(results)} of {len(units)} cells{kept}",
                               assemble(spec, results, command=command)) from exc
    if out is not None:
        to_write = ds.copy(deep=False)
        to_write.attrs = {k: v for k, v in ds.attrs.items() if k != "history"}  # written afresh
        save_dataset(to_write, out, command=command)
        clear_cells(folder)
    return ds

