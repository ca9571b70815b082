"""Training grids: TOML files of configurations, run with resume, one netCDF per configuration.

Grid files
----------
A grid is a TOML file whose keys are :class:`~linsim.deep.config.TrainConfig` fields.  A
scalar fixes a field; a list of values makes it an axis, and the grid is the product of its
axes (in the order they appear).  Named sub-grids ``[grid.<name>]`` are tables of the same
form: each is merged over the top-level keys (its own keys win), expanded on its own, and
the sub-grids are concatenated in file order.  ``dataset_options`` is an (inline) table, or
a list of tables for an axis.  Example::

    dataset = "mnist1d"
    n_runs = 4
    architecture = ["mlp", "cnn"]      # axis
    batch_size = [32, 128]             # axis

    [grid.sgd]
    optimizer = "sgd"
    lr = 0.05

    [grid.adam]
    optimizer = "adam"
    lr = 1e-3

expands to 2 x 2 configurations per sub-grid, 8 in all.  Unknown keys are refused with the
valid field names and the place (``grid.adam``); every configuration is validated before
anything is trained.  Configurations listed twice (same :meth:`TrainConfig.config_id`) are
trained once.

Output folder
-------------
``<architecture>-<config_id>.nc``
    One :meth:`linsim.deep.train.TrainResult.save` file per configuration, written atomically
    (a temporary file renamed into place) with checksums, provenance and every
    hyper-parameter as ``param_<name>`` attributes.  A file with its final name is complete.
``index.json``
    The manifest: every configuration of the grid, its file, its sub-grid, its parameters
    and status (``pending``, ``complete``), the diverged runs and the wall time; rewritten
    atomically after each configuration.
``.lock``
    Holds the process id while a run is writing, so two runs do not share a folder.

A rerun skips every configuration whose file exists; a killed run loses at most the
configuration in progress (the group in progress with ``group_runs``), and its temporary
file is removed on the next run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from linsim.deep.config import TrainConfig
from linsim.registry import Registry

__all__ = [
    "BUILTIN_GRIDS",
    "DEFAULT_COMPRESS",
    "GridEntry",
    "GridSummary",
    "builtin_grid_text",
    "expand_grid",
    "load_grid",
    "result_path",
    "run_grid",
]

#: Built-in grids shipped with the package: name -> file in ``linsim/deep/grids``.
BUILTIN_GRIDS: Registry[str] = Registry("built-in grid", type=str,
                                        entries={"small": "default.toml", "gpu": "gpu.toml"})
MANIFEST = "index.json"
#: gzip level of result files written by :func:`run_grid` (lossless; ~12% smaller files on
#: the default grid, float32 logits being nearly incompressible, for ~0.05 s per file).
DEFAULT_COMPRESS = 4
_SUBGRIDS = "grid"


@dataclass(frozen=True)
class GridEntry:
    """One configuration of a grid and where it came from.

    Attributes
    ----------
    config : TrainConfig
    subgrid : str
        Name of its ``[grid.<name>]`` table (``""`` for a grid without sub-grids).
    index : int
        Position within that sub-grid's expansion.
    """

    config: TrainConfig
    subgrid: str = ""
    index: int = 0


def builtin_grid_text(name: str = "small") -> str:
    """The TOML text of a built-in grid (``small``: the default of ``linsim train``).

    Examples
    --------
    >>> "mnist1d" in builtin_grid_text("small")
    True
    """
    fname = BUILTIN_GRIDS[name]  # an unknown name: UnknownNameError (a ValueError) listing the valid ones
    return resources.files("linsim.deep").joinpath("grids", fname).read_text()


def _axes(table: Mapping[str, Any], where: str) -> list[tuple[str, list]]:
    axes = []
    for key, value in table.items():
        if isinstance(value, list):
            if not value:
                raise ValueError(f"{where}: {key} is an empty list (an axis needs at least one value)")
            axes.append((key, value))
        elif isinstance(value, dict) and key != "dataset_options":
            raise ValueError(f"{where}: {key} is a table; only dataset_options and [grid.<name>] "
                             "sub-grids may be tables")
        else:
            axes.append((key, [value]))
    return axes


def _expand_table(table: Mapping[str, Any], where: str, subgrid: str) -> list[GridEntry]:
    axes = _axes(table, where)
    keys = [k for k, _ in axes]
    entries = []
    for i, values in enumerate(itertools.product(*(v for _, v in axes))):
        point = dict(zip(keys, values))
        try:
            cfg = TrainConfig.from_mapping(point, where=where)
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith(where) else f"{where} (entry {i}): {msg}") from None
        entries.append(GridEntry(cfg, subgrid, i))
    return entries


def expand_grid(spec: Mapping[str, Any], *, source: str = "grid") -> list[GridEntry]:
    """Expand a parsed grid (a mapping as read from TOML) into its configurations.

    Parameters
    ----------
    spec : mapping
        Top-level fields (scalars or lists), plus optionally ``grid``: a mapping of sub-grid
        name to a mapping of the same form.
    source : str
        Name used in error messages (e.g. the file name).

    Returns
    -------
    list of GridEntry, duplicates (same ``config_id``) removed, first occurrence kept.

    Examples
    --------
    >>> spec = {"dataset": "digits", "lr": [0.1, 0.2],
    ...         "grid": {"a": {"architecture": "mlp"}, "b": {"architecture": ["linear", "mlp"]}}}
    >>> [(e.subgrid, e.config.architecture, e.config.lr) for e in expand_grid(spec)]
    [('a', 'mlp', 0.1), ('a', 'mlp', 0.2), ('b', 'linear', 0.1), ('b', 'linear', 0.2)]
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"{source}: a grid must be a table of TrainConfig fields")
    base = {k: v for k, v in spec.items() if k != _SUBGRIDS}
    subs = spec.get(_SUBGRIDS)
    if subs is None:
        entries = _expand_table(base, source, "")
    else:
        if not isinstance(subs, Mapping) or not subs:
            raise ValueError(f"{source}: [grid] must hold named sub-grids [grid.<name>]")
        entries = []
        for name, table in subs.items():
            if not isinstance(table, Mapping):
                raise ValueError(f"{source}: grid.{name} must be a table of TrainConfig fields")
            entries += _expand_table({**base, **table}, f"{source}: grid.{name}", name)
    seen: set[str] = set()
    unique = []
    for e in entries:
        cid = e.config.config_id()
        if cid not in seen:
            seen.add(cid)
            unique.append(e)
    return unique


def load_grid(path: str | Path | None = None, *, builtin: str = "small") -> list[GridEntry]:
    """Read and expand a grid file (or the built-in grid ``builtin`` when ``path`` is None).

    Examples
    --------
    >>> entries = load_grid()
    >>> len(entries), entries[0].config.dataset
    (116, 'mnist1d')
    """
    if path is None:
        text, source = builtin_grid_text(builtin), f"built-in grid {builtin!r}"
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"grid file {str(p)!r} does not exist")
        text, source = p.read_text(), p.name
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source} is not valid TOML: {exc}") from None
    return expand_grid(spec, source=source)


def result_path(out_dir: str | Path, config: TrainConfig) -> Path:
    """The result file of ``config`` in ``out_dir``: ``<architecture>-<config_id>.nc``."""
    return Path(out_dir) / f"{config.architecture}-{config.config_id()}.nc"


@dataclass
class GridSummary:
    """What :func:`run_grid` did.

    Attributes
    ----------
    out_dir : Path
    n_configs : int
        Configurations in the grid.
    n_skipped : int
        Already complete before this run.
    n_trained : int
        Trained by this run.
    n_diverged_runs : int
        Runs (seeds) recorded as diverged by this run.
    files : list of Path
        Result files of every complete configuration.
    wall_time : float
    """

    out_dir: Path
    n_configs: int
    n_skipped: int = 0
    n_trained: int = 0
    n_diverged_runs: int = 0
    files: list[Path] = field(default_factory=list)
    wall_time: float = 0.0


def _write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    from linsim.storage import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=False, default=str))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _folder_lock(out_dir: Path):
    lock = out_dir / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise RuntimeError(f"another linsim train (pid {pid}) is writing to {str(out_dir)!r}; "
                                   "wait for it or choose another --out") from None
            lock.unlink(missing_ok=True)  # stale lock of a killed run
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _remove_stale_temporaries(out_dir: Path, names: Iterable[str]) -> int:
    count = 0
    for name in set(names) | {MANIFEST}:
        for tmp in out_dir.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            count += 1
    return count


def _file_summary(path: Path) -> dict[str, Any]:
    """Divergence record and wall time of a result file, read without loading its outputs."""
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            div = ds["diverged_step"].values.astype(int).tolist()
            return {"diverged_step": div, "n_diverged": int(sum(d >= 0 for d in div)),
                    "wall_time_s": round(float(ds.attrs.get("wall_time_s", 0.0)), 3)}
    except (OSError, KeyError, ValueError):
        return {}


def _manifest_entry(entry: GridEntry, path: Path, status: str, **extra) -> dict[str, Any]:
    return {"config_id": entry.config.config_id(), "file": path.name, "subgrid": entry.subgrid,
            "status": status, "params": entry.config.params(), **extra}


def _data_key(config: TrainConfig) -> str:
    """Configurations with the same key train on the same data set."""
    p = config.params()
    return json.dumps({k: p[k] for k in ("dataset", "n_train", "n_test", "eval_stride", "dtype", "data_seed")}
                      | {f"opt_{k}": v for k, v in config.dataset_options.items()}, sort_keys=True)


#: The data set a worker process trained its last group on (one at a time, like run_grid's).
_WORKER_DATA: dict[str, Any] = {}
_WORKER_DATA_LOCK = threading.Lock()


@dataclass(frozen=True)
class _GroupTask:
    """Train one group of configurations (an engine's item) and return its results, without
    the in-memory parameters (never written to disk, so not sent back either)."""

    num_threads: int

    def __call__(self, configs: tuple[TrainConfig, ...]) -> list:
        import dataclasses

        from linsim.deep.train import _load_data, train_group

        key = _data_key(configs[0])
        with _WORKER_DATA_LOCK:  # a cluster of threads shares the cache
            data = _WORKER_DATA.get(key)
            if data is None:
                _WORKER_DATA.clear()
                data = _WORKER_DATA[key] = _load_data(configs[0])
        results = train_group(list(configs), data=data, num_threads=self.num_threads)
        return [dataclasses.replace(r, initial_params={}, final_params={}) for r in results]


def _grid_engine(engine, n_workers, scheduler, num_threads):
    """``(engine or None, own)``: None trains in this process (the default, and one worker)."""
    from linsim.parallel import Engine, get_engine, resolve_scheduler

    if isinstance(engine, Engine):
        if n_workers is not None or scheduler is not None:
            raise ValueError("run_grid: give either an Engine instance as engine= or n_workers=/scheduler=, "
                             "not both")
        eng, own = engine, False
    elif engine is None and n_workers is None and resolve_scheduler(scheduler)[0] is None:
        return None, False
    else:
        eng, own = get_engine(engine, n_workers, scheduler, threads_per_worker=num_threads or 1), True
    if eng.name == "serial":
        return None, False
    if num_threads is None:
        raise ValueError("run_grid: num_threads=None (torch's own thread count, --threads 0) cannot be "
                         "combined with parallel workers, which would each use every core; give the "
                         "threads per worker (--threads N, N >= 1)")
    eng.threads_per_worker = num_threads
    local = getattr(eng, "scheduler", None) is None
    cores = os.cpu_count() or 1
    if local and eng.workers * num_threads > cores:
        raise ValueError(
            f"run_grid: {eng.workers} workers x {num_threads} threads = {eng.workers * num_threads} threads "
            f"exceed the {cores} cores of this machine (--workers x --threads must be <= {cores})")
    return eng, own


def run_grid(entries: Sequence[GridEntry], out_dir: str | Path, *, progress: bool = True,
             verify: bool = False, device: str | None = None, command=None,
             source: str = "", log: Callable[[str], None] | None = print,
             num_threads: int | None = None, group_runs: int = 0,
             compress: int | None = DEFAULT_COMPRESS, engine=None, n_workers: int | None = None,
             scheduler=None) -> GridSummary:
    """Train every configuration of a grid that is not complete in ``out_dir``.

    Parameters
    ----------
    entries : sequence of GridEntry
        From :func:`load_grid` / :func:`expand_grid`.
    out_dir : path
        Output folder; created if needed; refused (``PermissionError``) before any training
        when it cannot be written.
    progress : bool
        Show a tqdm bar over all optimizer updates of the pending configurations (rate in
        steps/s, time left; the postfix counts runs done).
    verify : bool
        Also re-read every existing result file and check its checksums; a corrupt file is
        renamed to ``<name>.corrupt`` (kept for inspection) and its configuration retrained.
    device : str, optional
        Overrides every configuration's ``device`` (does not change file names).
    command : str or list, optional
        Command line recorded in the files' ``history``.
    source : str
        Grid source recorded in the manifest.
    log : callable or None
        Where one-line messages go (default ``print``).
    num_threads : int, optional
        torch intra-op threads while training (restored afterwards; None: unchanged).
    group_runs : int
        When > 0, pending configurations that differ only in seed, lr, momentum, weight
        decay or n_runs (:func:`linsim.deep.train.group_key`) are trained together as one
        vectorized group of at most ``group_runs`` runs (:func:`linsim.deep.train.train_group`;
        same results, much faster on a GPU).  A kill then loses at most the group in progress.
        0 (default) trains each configuration on its own.  A single configuration with more
        than ``group_runs`` runs is trained as its own group (never split).
    compress : int in 1..9 or None
        Lossless gzip level of the result files (:meth:`TrainResult.save`); default
        :data:`DEFAULT_COMPRESS`, None for uncompressed files.
    engine : {"serial", "process", "dask"} or linsim.parallel.Engine, optional
        Train the configurations (the groups, with ``group_runs``) in parallel on an engine
        (:func:`linsim.parallel.get_engine`): local worker processes or a Dask cluster.  Each
        worker trains with ``num_threads`` torch threads (BLAS and OpenMP too); the results
        come back to this process, the only writer, which saves each one atomically and
        updates the manifest as it arrives.  Bitwise the same stored arrays as training here.
        Default (no engine, no ``n_workers``, no scheduler, no ``DASK_SCHEDULER_ADDRESS``, or
        one worker): one configuration after the other in this process.
    n_workers : int, optional
        Local workers (default: cores // ``num_threads``); workers x ``num_threads`` must not
        exceed the cores (refused, not clamped).
    scheduler : str or distributed.Client, optional
        Dask scheduler (``--scheduler``; default ``DASK_SCHEDULER_ADDRESS`` when set).  An
        unreachable one is named (:class:`linsim.parallel.SchedulerUnreachableError`) before
        anything is trained.

    Returns
    -------
    GridSummary

    Notes
    -----
    ``KeyboardInterrupt`` propagates after the current configuration's temporary file is
    removed (and, with an engine, the workers are stopped); everything finished before stays
    complete, and a rerun resumes.
    """
    from linsim.storage import check_writable_dir
    from linsim.deep.train import check_runnable

    t0 = time.perf_counter()
    if isinstance(group_runs, bool) or not isinstance(group_runs, int) or group_runs < 0:
        raise ValueError(f"run_grid: group_runs must be an integer >= 0; got {group_runs!r}")
    if compress is not None and (isinstance(compress, bool) or not isinstance(compress, int)
                                 or not 1 <= compress <= 9):
        raise ValueError(f"run_grid: compress must be a gzip level 1..9 or None; got {compress!r}")
    out = check_writable_dir(out_dir)
    say = log or (lambda msg: None)
    if device is not None:
        entries = [GridEntry(e.config.replace(device=device), e.subgrid, e.index) for e in entries]
    paths = [result_path(out, e.config) for e in entries]
    checked: set[str] = set()
    for e in entries:  # refuse what cannot run before training anything
        key = json.dumps({k: v for k, v in e.config.params().items()
                          if k in ("dataset", "architecture", "width", "depth", "activation",
                                   "batch_norm", "augment", "batch_size", "n_train", "device")
                          or k.startswith("dataset_")}, sort_keys=True, default=str)
        if key in checked:
            continue
        try:
            check_runnable(e.config)
        except ValueError as exc:
            where = f"grid.{e.subgrid} " if e.subgrid else ""
            raise ValueError(f"{where}entry {e.index}: {exc}") from None
        checked.add(key)
    saved_threads = engine.threads_per_worker if hasattr(engine, "threads_per_worker") else None
    summary = GridSummary(out_dir=out, n_configs=len(entries))
    eng, own_engine, close_after = None, False, False
    try:
        eng, own_engine = _grid_engine(engine, n_workers, scheduler, num_threads)
        if eng is not None:
            # close what this call opens: its own engine, or the caller's when the caller had
            # not opened it (its workers would outlive the call); a caller's open engine stays open
            close_after = own_engine or not eng.is_open
            eng.open()  # an unreachable scheduler is named before anything is trained
        return _run_grid_locked(entries, out, paths, summary, t0, verify=verify, say=say, source=source,
                                group_runs=group_runs, progress=progress, command=command,
                                compress=compress, num_threads=num_threads, eng=eng)
    finally:
        if close_after:
            eng.close()
        with _WORKER_DATA_LOCK:  # a cluster of threads cached the data set in this process
            _WORKER_DATA.clear()
        if not own_engine and saved_threads is not None:
            engine.threads_per_worker = saved_threads  # the caller's engine, as it was (also when refused)


def _run_grid_locked(entries, out, paths, summary, t0, *, verify, say, source, group_runs, progress,
                     command, compress, num_threads, eng):
    from linsim.storage import CorruptFileError, read_netcdf
    from linsim.deep.train import _load_data, group_key, train_group

    with _folder_lock(out):
        _remove_stale_temporaries(out, (p.name for p in paths))
        old = {}
        manifest_path = out / MANIFEST
        if manifest_path.is_file():
            with contextlib.suppress(OSError, ValueError):
                for item in json.loads(manifest_path.read_text()).get("configs", []):
                    old[item.get("config_id")] = item
        records = []
        pending = []
        for e, p in zip(entries, paths):
            cid = e.config.config_id()
            complete = p.is_file()
            if complete and verify:
                try:
                    read_netcdf(p)
                except (CorruptFileError, OSError, ValueError) as exc:
                    bad = p.with_name(p.name + ".corrupt")
                    os.replace(p, bad)
                    say(f"corrupt result {p.name} ({exc}); moved to {bad.name}, retraining")
                    complete = False
            if complete:
                prev = old.get(cid, {})
                if "n_diverged" not in prev:  # finished just before a kill: ask the file
                    prev = _file_summary(p)
                records.append({**_manifest_entry(e, p, "complete"),
                                **{k: prev[k] for k in ("diverged_step", "n_diverged", "wall_time_s")
                                   if k in prev}})
                summary.n_skipped += 1
                summary.files.append(p)
            else:
                records.append(_manifest_entry(e, p, "pending"))
                pending.append(len(records) - 1)

        def write_manifest():
            _write_json_atomic(manifest_path, {
                "linsim_type": "TrainGrid", "source": source, "n_configs": len(records),
                "n_complete": sum(r["status"] == "complete" for r in records),
                "configs": records})

        write_manifest()
        if summary.n_skipped:
            say(f"{summary.n_skipped} of {len(entries)} configurations already complete in {out}")
        groups: list[list[int]] = []
        if group_runs > 0:
            open_groups: dict[str, list[int]] = {}
            for i in pending:
                key = group_key(entries[i].config)
                g = open_groups.get(key)
                n = entries[i].config.n_runs
                if g is None or sum(entries[j].config.n_runs for j in g) + n > group_runs:
                    g = []
                    groups.append(g)
                    open_groups[key] = g
                g.append(i)
        else:
            groups = [[i] for i in pending]
        total_steps = sum(entries[g[0]].config.steps + entries[g[0]].config.corner_steps
                          for g in groups)
        total_runs = sum(entries[i].config.n_runs for i in pending)
        bar = None
        if progress and pending:
            from tqdm.auto import tqdm

            bar = tqdm(total=total_steps, unit="step", desc="linsim train", dynamic_ncols=True)
        runs_done = 0

        def finish(group, results):  # the single writer: files, then the manifest
            nonlocal runs_done
            for i, res in zip(group, results):
                e, p = entries[i], paths[i]
                res.save(p, command=command, compress=compress)
                runs_done += e.config.n_runs
                div = res.diverged_step.tolist()
                records[i] = _manifest_entry(e, p, "complete", diverged_step=div,
                                             n_diverged=res.n_diverged,
                                             wall_time_s=round(res.wall_time, 3),
                                             group_size=len(group))
                write_manifest()
                summary.n_trained += 1
                summary.n_diverged_runs += res.n_diverged
                summary.files.append(p)
                if res.n_diverged:
                    say(f"{p.name}: {res.n_diverged} of {e.config.n_runs} runs diverged "
                        f"(steps {[d for d in div if d >= 0]}); recorded, going on")
            if bar is not None:
                bar.set_postfix_str(f"runs {runs_done}/{total_runs}", refresh=False)

        data_cache: dict[str, Any] = {}
        try:
            if eng is None:
                for group in groups:
                    first = entries[group[0]].config
                    key = _data_key(first)
                    if key not in data_cache:
                        data_cache.clear()  # one data set in memory at a time
                        data_cache[key] = _load_data(first)
                    cb = None if bar is None else bar.update
                    finish(group, train_group([entries[i].config for i in group], progress=cb,
                                              data=data_cache[key], num_threads=num_threads))
            elif groups:
                items = [tuple(entries[i].config for i in g) for g in groups]
                with contextlib.closing(eng.map_unordered(_GroupTask(num_threads), items)) as done:
                    for k, results in done:
                        finish(groups[k], results)
                        if bar is not None:
                            c = entries[groups[k][0]].config
                            bar.update(c.steps + c.corner_steps)
        finally:
            if bar is not None:
                bar.close()
            summary.wall_time = time.perf_counter() - t0
    return summary
