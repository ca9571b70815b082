"""Out-of-core Bhattacharyya distances: row-block inputs and resumable tile-by-tile zarr outputs.

``bhattacharyya(logp, logq, out=...)`` (:func:`linsim.inpca.bhattacharyya`) comes here when the
output is a zarr store or the inputs are stored (a :class:`numpy.memmap`, a :class:`zarr.Array`
or the path of one).  Nothing of size ``M^2`` -- and, for stored inputs, nothing of size
``M n C`` -- is held in memory: the output is cut into square tiles of ``tile`` models (the zarr
chunk edge), and each tile is a pure function of its block indices ``(I, J)``,
:func:`distance_tile`, which reads the rows of blocks ``I`` and ``J`` of the inputs and runs the
in-memory kernel on them.  The tiles can therefore be computed in any order or place:
``engine=`` (a :mod:`linsim.parallel` engine: local processes or a Dask cluster) maps
:func:`distance_tile` over the missing tiles, and the calling process, the only writer, writes
each tile as it arrives.

Store layout (a zarr group at the given path)
---------------------------------------------
``distance`` (Ma, Mb) float64, chunks ``(tile, tile)``, fill NaN, attributes ``long_name``,
``units`` ("nat per sample"); ``tile_done`` (nI, nJ) uint8, chunks (1, 1): 1 once tile ``(I, J)``
(and, in the self case, its mirror ``(J, I)``) is written -- set *after* the tile's data, so an
interrupted run leaves at worst a tile that is recomputed.  Group attributes: CF-style provenance
(:func:`linsim.provenance.provenance_attrs`), the input fingerprint (shapes, dtypes and a sha256 of
three rows of each input), the tile size, the kernel and its sample group.  Reopening a store
checks them and computes only the tiles not marked done; a store made for other inputs or
settings is refused.  zarr writes each chunk to a temporary file and renames it, so no chunk is
ever half written.

An open :class:`zarr.Array` can be given as ``out`` instead of a path: its chunks must be square
(``tile`` is their edge) and it must live in a group, where the mask is kept as the sibling array
``<name>_tile_done``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["LogProbRows", "as_log_prob_rows", "distance_tile", "is_stored", "tiled_bhattacharyya"]

_LAYOUT = "(M, n, C) = (models, samples, classes)"
#: default tile edge of a distance store (a float64 chunk of 8 MiB)
STORE_TILE = 1024
#: rows of a stored input read at once when it is read whole-width (for in-memory kernels)
_READ_ROWS_BYTES = 64 << 20


def _is_zarr(x) -> bool:
    return (type(x).__module__ or "").startswith("zarr")


def is_stored(x) -> bool:
    """Whether ``x`` is a memory map, a zarr array or a path (read in row blocks)."""
    return isinstance(x, (np.memmap, str, os.PathLike, LogProbRows)) or _is_zarr(x)


class LogProbRows:
    """Row-block access to log-probabilities ``(M, n, C)`` held in memory, a memmap or zarr.

    ``rows(m0, m1)`` returns a torch tensor ``(m1 - m0, n, C)`` in the stored dtype (float32 or
    float64): a view for in-memory inputs, a copy of just those rows for stored ones.  ``reads``
    counts row reads and ``max_rows`` is the largest block read.
    """

    def __init__(self, x, name: str):
        if isinstance(x, (str, os.PathLike)):
            import zarr

            x = zarr.open_array(str(x), mode="r")
        self.name = name
        self.stored = isinstance(x, np.memmap) or _is_zarr(x)
        if self.stored:
            dt = np.dtype(x.dtype)
            if dt not in (np.float32, np.float64):
                raise TypeError(f"{name} must be float32 or float64; got dtype {dt}")
            self.x = x
            self.shape = tuple(int(s) for s in x.shape)
            self.dtype = torch.float32 if dt == np.float32 else torch.float64
        else:
            from .checks import as_float_tensor

            self.x = as_float_tensor(x, name)
            self.shape = tuple(self.x.shape)
            self.dtype = self.x.dtype
        if len(self.shape) != 3:
            raise ValueError(f"{name} must have shape {_LAYOUT} (3 dimensions); got shape {self.shape}")
        if 0 in self.shape:
            raise ValueError(f"{name} must not be empty; got shape {self.shape}")
        self.reads = 0
        self.max_rows = 0

    # pickling (an engine's workers get the inputs this way): a zarr array travels as its
    # store's address, a memory map as (file, byte offset, dtype, shape) that the worker maps
    # itself; only in-memory inputs travel as data (once per worker, see linsim.parallel)
    def __getstate__(self):
        state = dict(self.__dict__)
        where = _memmap_location(self.x) if isinstance(self.x, np.memmap) else None
        if where is not None:
            state["x"] = None
            state["_memmap"] = where
        return state

    def __setstate__(self, state):
        where = state.pop("_memmap", None)
        self.__dict__.update(state)
        if where is not None:
            filename, offset, dtype, shape = where
            self.x = np.memmap(filename, mode="r", dtype=np.dtype(dtype), offset=offset, shape=shape)

    def rows(self, m0: int, m1: int) -> torch.Tensor:
        self.reads += 1
        self.max_rows = max(self.max_rows, m1 - m0)
        if not self.stored:
            return self.x[m0:m1]
        return torch.from_numpy(np.array(self.x[m0:m1], order="C"))  # a copy: memmaps are read-only

    def take(self, idx) -> torch.Tensor:
        """Rows at sorted indices ``idx`` (read in runs of consecutive rows)."""
        idx = np.asarray(idx, dtype=np.int64)
        if not self.stored:
            return self.x[torch.from_numpy(idx)]
        out = np.empty((len(idx),) + self.shape[1:], dtype=np.dtype(str(self.dtype).split(".")[1]))
        if len(idx) == 0:
            return torch.from_numpy(out)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for seg in np.split(np.arange(len(idx)), breaks):
            a, b = int(idx[seg[0]]), int(idx[seg[-1]]) + 1
            self.reads += 1
            out[seg[0]:seg[-1] + 1] = self.x[a:b]
        return torch.from_numpy(out)

    def fingerprint(self) -> str:
        M = self.shape[0]
        h = hashlib.sha256(json.dumps([self.shape, str(self.dtype)]).encode())
        for m in sorted({0, M // 2, M - 1}):
            h.update(np.ascontiguousarray(self.rows(m, m + 1).numpy()).tobytes())
        return h.hexdigest()


def _memmap_location(x: np.memmap):
    """``(file, byte offset, dtype, shape)`` of a C-contiguous memory map (a slice of one
    included), or None when it cannot be reopened from its file."""
    import mmap as _mmap

    raw = getattr(x, "_mmap", None)
    if raw is None or not x.filename or not x.flags.c_contiguous:
        return None
    try:
        base = np.frombuffer(raw, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):  # pragma: no cover - a closed map
        return None
    within = int(x.ctypes.data) - int(base.ctypes.data)
    if within < 0 or within + x.nbytes > base.nbytes:  # pragma: no cover - not this map's data
        return None
    start = int(x.offset) - int(x.offset) % _mmap.ALLOCATIONGRANULARITY
    return str(x.filename), start + within, x.dtype.str, tuple(int(s) for s in x.shape)


def as_log_prob_rows(x, name: str) -> LogProbRows:
    return x if isinstance(x, LogProbRows) else LogProbRows(x, name)


# ----------------------------------------------------------------------------- tiles

@dataclass(frozen=True)
class TileResult:
    """One output tile: its distances and the disjoint pairs found in it (absolute indices)."""

    block: np.ndarray
    disjoint_count: int
    disjoint_first: tuple | None


def distance_tile(P: LogProbRows, Q: LogProbRows | None, I: int, J: int, edge: int, **kernel_kw) -> TileResult:
    """Distances of row block ``I`` of ``P`` to column block ``J`` of ``Q`` (``P`` if None).

    A pure function of the block indices (given the inputs and the kernel settings): the unit of
    work of the tiled driver, and of a fan-out.  In the self case ``I == J`` is the symmetric
    self-distance block; ``I < J`` a cross block whose transpose is tile ``(J, I)``.
    """
    from .distances import _distances

    sym = Q is None
    Mb = P.shape[0] if sym else Q.shape[0]
    a0, a1 = I * edge, min(P.shape[0], (I + 1) * edge)
    b0, b1 = J * edge, min(Mb, (J + 1) * edge)
    A = P.rows(a0, a1)
    if sym and I == J:
        block, count, first = _distances(A, None, **kernel_kw)
    else:
        B = (P if sym else Q).rows(b0, b1)
        block, count, first = _distances(A, B, **kernel_kw)
    if first is not None:
        first = (first[0] + a0, first[1] + b0, first[2])
    return TileResult(block, count, first)


@dataclass(frozen=True)
class _TileTask:
    """:func:`distance_tile` for fixed inputs and settings, as a function of ``(I, J)``: what an
    engine maps (sent to each worker once, with the inputs; see :class:`LogProbRows`)."""

    P: LogProbRows
    Q: LogProbRows | None
    edge: int
    kernel_kw: tuple

    def __call__(self, block: tuple[int, int]) -> TileResult:
        I, J = block
        return distance_tile(self.P, self.Q, I, J, self.edge, **dict(self.kernel_kw))


def _resolve_engine(engine, n_workers, scheduler):
    """``(engine or None, own)``: None runs the tiles in this process, as without an engine."""
    from linsim.parallel import Engine, get_engine, resolve_scheduler

    if isinstance(engine, Engine):
        if n_workers is not None or scheduler is not None:
            raise ValueError("give either an Engine instance as engine= or n_workers=/scheduler=, not both")
        return engine, False
    if engine is None and n_workers is None and resolve_scheduler(scheduler)[0] is None:
        return None, False
    return get_engine(engine, n_workers, scheduler), True


def _computed_tiles(task: _TileTask, todo, engine):
    """Yield ``((I, J), TileResult)`` for every block of ``todo``, in completion order."""
    if engine is None:
        for block in todo:
            yield block, task(block)
        return
    with contextlib.closing(engine.map_unordered(task, todo)) as results:
        for k, res in results:
            yield todo[k], res


class _ArrayTarget:
    """An in-memory (or memmap) output: no mask, nothing to resume."""

    def __init__(self, arr, tile):
        self.arr, self.tile = arr, tile

    def is_done(self, I, J):
        return False

    def write(self, I, J, block, sym):
        T = self.tile
        self.arr[I * T:I * T + block.shape[0], J * T:J * T + block.shape[1]] = block
        if sym and I != J:
            self.arr[J * T:J * T + block.shape[1], I * T:I * T + block.shape[0]] = block.T


class _ZarrTarget(_ArrayTarget):
    """A zarr output with its tile-done mask."""

    def __init__(self, arr, mask, tile):
        super().__init__(arr, tile)
        self.mask = mask
        self.done = np.asarray(mask[...]) != 0

    def is_done(self, I, J):
        return bool(self.done[I, J])

    def write(self, I, J, block, sym):
        super().write(I, J, block, sym)
        self.mask[I, J] = 1  # after the data: a kill before this line recomputes the tile
        self.done[I, J] = True


def _settings(P, Q, tile, kernel_kw):
    return {
        "linsim_kind": "Bhattacharyya distance store",
        "fingerprint_p": P.fingerprint(),
        "fingerprint_q": "" if Q is None else Q.fingerprint(),
        "symmetric": Q is None,
        "tile": int(tile),
        "kernel": str(kernel_kw.get("kernel", "auto")),
        "group": -1 if kernel_kw.get("group") is None else int(kernel_kw["group"]),
        "n_samples": int(P.shape[1]),
        "n_classes": int(P.shape[2]),
    }


def _check_settings(attrs, want, where):
    for key, val in want.items():
        if key in attrs and attrs[key] != val:
            raise ValueError(f"{where} was written with {key}={attrs[key]!r} but this call has {key}={val!r}: "
                             "it holds distances of other inputs or settings; use another path (or delete it)")


def _open_target(out, shape, P, Q, tile, kernel_kw):
    import zarr

    want = _settings(P, Q, tile, kernel_kw)
    if isinstance(out, (str, os.PathLike)):
        path = os.fspath(out)
        nI, nJ = -(-shape[0] // tile), -(-shape[1] // tile)
        exists = os.path.exists(os.path.join(path, "zarr.json"))
        g = zarr.open_group(path, mode="a")
        if exists and "distance" in g:
            _check_settings(dict(g.attrs), want, f"distance store {path!r}")
            arr, mask = g["distance"], g["tile_done"]
            if tuple(arr.shape) != tuple(shape):
                raise ValueError(f"distance store {path!r} has shape {tuple(arr.shape)}, this call needs {shape}")
        else:
            try:
                from linsim.provenance import provenance_attrs

                prov = provenance_attrs(title="Bhattacharyya distances (linsim.inpca)")
            except Exception:  # pragma: no cover - provenance is best effort
                prov = {}
            g.attrs.update({**prov, **want})
            arr = g.create_array("distance", shape=shape, chunks=(tile, tile), dtype="f8", fill_value=np.nan,
                                 compressors=None, overwrite=True)
            arr.attrs.update({"long_name": "Bhattacharyya distance, mean over samples",
                              "units": "nat per sample"})
            mask = g.create_array("tile_done", shape=(nI, nJ), chunks=(1, 1), dtype="u1", fill_value=0,
                                  overwrite=True)
            mask.attrs.update({"long_name": "1 once the distance tile (I, J) is written",
                               "tile": int(tile)})
        return _ZarrTarget(arr, mask, tile), arr
    # an open zarr array
    arr = out
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(f"out must have shape {shape}; got {tuple(arr.shape)}")
    ch = tuple(int(c) for c in arr.chunks)
    if ch[0] != ch[1]:
        raise ValueError(f"out must have square chunks (the tile); got chunks {ch}")
    tile = ch[0]
    name = arr.basename
    parent_path = arr.path[: -len(name)].rstrip("/") if arr.path else ""
    if not name:
        raise ValueError("out is the root array of its store: resumable writing keeps a tile mask beside it, so "
                         "pass an array inside a zarr group, or a path")
    g = zarr.open_group(store=arr.store, path=parent_path, mode="a")
    want = _settings(P, Q, tile, kernel_kw)
    mask_name = f"{name}_tile_done"
    if mask_name in g:
        _check_settings(dict(arr.attrs), want, f"zarr array {arr.path!r}")
        mask = g[mask_name]
    else:
        arr.attrs.update(want)
        mask = g.create_array(mask_name, shape=(-(-shape[0] // tile), -(-shape[1] // tile)), chunks=(1, 1),
                              dtype="u1", fill_value=0)
    return _ZarrTarget(arr, mask, tile), arr


def tiled_bhattacharyya(logp, logq, out, *, store_tile=None, progress=False, on_tile=None, on_disjoint="warn",
                        engine=None, n_workers=None, scheduler=None, **kernel_kw):
    """The tiled driver behind ``bhattacharyya(..., out=...)`` (see the module docstring).

    Parameters
    ----------
    logp, logq : log-probabilities (M, n, C) and (Mb, n, C) or None
        In memory, memory maps, zarr arrays or zarr paths (:class:`LogProbRows`).
    out : zarr path, zarr array, numpy array or None
        See :func:`linsim.inpca.bhattacharyya`.
    store_tile : int, optional
        Tile edge of a new store (default :data:`STORE_TILE`); an open zarr ``out`` sets it.
    progress, on_tile, on_disjoint
        As in :func:`linsim.inpca.bhattacharyya`.
    engine : {"serial", "process", "dask"} or linsim.parallel.Engine, optional
        Where the tiles are computed (:func:`linsim.parallel.get_engine`).  By default (no
        engine, no ``n_workers``, no scheduler given and no ``DASK_SCHEDULER_ADDRESS``) they
        are computed in this process, one after the other.  With an engine the missing tiles
        are mapped with :meth:`~linsim.parallel.Engine.map_unordered`; this process is the
        only writer and writes each tile (and marks it done) as it arrives, so resuming works
        as without an engine.  The inputs reach each worker once: zarr arrays and memory maps
        as their file (the workers read their row blocks themselves: on a cluster of several
        machines the file must be where every worker can read it), in-memory inputs as data.
        Each tile runs with one thread; the result is bitwise the same on every engine.
    n_workers : int, optional
        Worker count of a local engine (default: all cores).
    scheduler : str or distributed.Client, optional
        Dask scheduler (``--scheduler``); default ``DASK_SCHEDULER_ADDRESS`` when set.
    **kernel_kw
        Settings of the in-memory kernel (``kernel``, ``device``, ``tile``, ``group``,
        ``norm_tol``, ``workers``).

    Returns
    -------
    zarr.Array or numpy.ndarray
        The zarr ``distance`` array for a path, else ``out`` itself (a new float64 array when
        ``out`` is None).

    Notes
    -----
    Memory: the calling process holds one tile's rows and one result tile at a time (plus,
    with an engine, the results in flight: one per local worker, at most
    ``DaskEngine.max_in_flight`` on Dask).  An interrupt (Ctrl-C, an exception from
    ``on_tile``) stops the workers; the tiles written so far stay marked done.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> logp = np.log(np.full((5, 2, 2), 0.5))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     z = tiled_bhattacharyya(logp, None, d + "/D.zarr", store_tile=2, engine="serial")
    ...     z.shape, bool(np.abs(z[...]).max() < 1e-12)  # equal models: distance 0 (to rounding)
    ((5, 5), True)
    """
    from .distances import _report_disjoint

    P = as_log_prob_rows(logp, "logp")
    Q = None if logq is None else as_log_prob_rows(logq, "logq")
    if Q is not None and Q.shape[1:] != P.shape[1:]:
        raise ValueError(f"logp and logq must agree in (n, C); got {P.shape} and {Q.shape}")
    sym = Q is None
    shape = (P.shape[0], P.shape[0] if sym else Q.shape[0])
    if out is None:
        out = np.empty(shape)
    if isinstance(out, np.ndarray):
        if out.shape != shape:
            raise ValueError(f"out must have shape {shape}; got {out.shape}")
        T = int(store_tile) if store_tile is not None else STORE_TILE
        target, result = _ArrayTarget(out, T), out
    else:
        T = int(store_tile) if store_tile is not None else STORE_TILE
        target, result = _open_target(out, shape, P, Q, T, kernel_kw)
        T = target.tile
    nI, nJ = -(-shape[0] // T), -(-shape[1] // T)
    todo = [(I, J) for I in range(nI) for J in range(I if sym else 0, nJ) if not target.is_done(I, J)]
    total = nI * (nI + 1) // 2 if sym else nI * nJ
    eng, own = _resolve_engine(engine, n_workers, scheduler)  # bad options refused before the bar
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=total - len(todo), desc="distance tiles", unit="tile")
    count, first = 0, None
    tile_kw = {**kernel_kw, "on_disjoint": "ignore" if on_disjoint == "ignore" else "track"}
    task = _TileTask(P, Q, T, tuple(sorted(tile_kw.items())))
    # close what this call opened: an engine of its own, or the caller's engine when the caller
    # had not opened it (its workers would otherwise outlive the call); an engine the caller
    # opened (a ``with`` block) stays open for its next map
    close_after = own
    try:
        if eng is not None and todo:
            close_after = own or not eng.is_open
            eng.open()  # an unreachable scheduler is named here, before any tile is computed
        for done_now, ((I, J), res) in enumerate(_computed_tiles(task, todo, eng), start=1):
            target.write(I, J, res.block, sym)
            count += res.disjoint_count
            if res.disjoint_first is not None and (first is None or res.disjoint_first < first):
                first = res.disjoint_first
            if bar is not None:
                bar.update(1)
            if on_tile is not None:
                on_tile(total - len(todo) + done_now, total)
    finally:
        if bar is not None:
            bar.close()
        if close_after and eng is not None:
            eng.close()
    if count and on_disjoint != "ignore":  # pairs found by the tiles computed in this call
        _report_disjoint(first, count, on_disjoint)
    return result
