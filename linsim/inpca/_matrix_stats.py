"""One pass over a distance matrix: validation, row/column means, ``||W||_F`` and ``diag W``.

Two sources are served:

* an in-memory float64 numpy array (not a memory map): tiled torch passes over ``D``'s own
  memory (no copy), with the exact two-pass ``||W||_F`` (centered entries formed blockwise);
* a *stored* matrix -- a :class:`numpy.memmap`, a :class:`zarr.Array` or a path to a zarr
  array -- read in square tiles (pairs ``(I, J)``, ``(J, I)`` with ``I <= J``), so that at most
  two tiles are in memory.  The same pass gives the row sums, the extreme entries, the largest
  asymmetry, the diagonal and ``sum D^2``; ``||W||_F^2`` then follows from the identity
  ``4 ||W||_F^2 = sum D^2 - 2 M sum_u r_u^2 + M^2 g^2`` (symmetric ``D``, row means ``r``, grand
  mean ``g``), accumulated with :func:`math.fsum` over tiles.

The acceptance conditions are the same for both (those of
:func:`linsim.inpca.checks.check_distance_matrix`): finite; asymmetry, ``|diagonal|`` and negative
entries within ``tol * max|D|``.  A failed condition raises ``ValueError`` naming the entry.
A matrix whose entries are all at float64 rounding level (``max|D| <= COINCIDE_ATOL``) and that
fails a condition, or that is exactly zero, is reported as what it is: all models coincide.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .checks import check_distance_matrix

__all__ = ["COINCIDE_ATOL", "MatrixStats", "StoredMatrix", "as_stored_matrix", "coincide_message",
           "in_memory_stats", "stored_stats"]

#: a distance matrix whose largest entry is at most this (nats per sample) is float64 rounding
#: noise of a distance kernel: the models coincide
COINCIDE_ATOL = 1e-12


def coincide_message(M: int, scale: float) -> str:
    if scale == 0.0:
        return f"all {M} models coincide: D is zero, nothing to embed"
    return (f"all {M} models coincide: D is zero up to float64 rounding (max |D| = {scale:.3g} <= "
            f"{COINCIDE_ATOL:g}), nothing to embed")


@dataclass(frozen=True)
class MatrixStats:
    """What one pass over ``D`` (M, M) gives: row means, column means, ``||W||_F^2``, ``diag W``."""

    row_means: np.ndarray
    column_means: np.ndarray
    frobenius_sq: float
    diagonal: np.ndarray

    @property
    def grand_mean(self) -> float:
        return float(self.column_means.mean())


# ----------------------------------------------------------------------------- stored matrices

class StoredMatrix:
    """Read-only block access to a matrix held in a memory map or a zarr array.

    ``block(r0, r1, c0, c1)`` returns a float64 copy of ``D[r0:r1, c0:c1]``; ``tile`` is the
    edge of the square tiles used for passes (a multiple of the zarr chunk edge when chunked);
    the eigensolver reads row blocks of at most ``row_block_bytes`` (64 MiB), or of one tile of
    rows for a chunked (zarr) array when that is more (whole chunks are read anyway).
    ``reads`` counts block reads and ``max_block_elems`` the largest block read (so a test can
    check that the whole matrix was never requested at once).
    """

    def __init__(self, arr, name: str = "D", tile: int | None = None, row_block_bytes: int = 64 << 20):
        chunks = getattr(arr, "chunks", None) if not isinstance(arr, np.ndarray) else None
        self.chunk_rows = int(chunks[0]) if chunks else None
        self.chunk_cols = int(chunks[1]) if chunks and len(chunks) == 2 else None
        self.arr = arr
        self.row_block_bytes = int(row_block_bytes)
        self.name = name
        shape = tuple(int(s) for s in arr.shape)
        if len(shape) != 2:
            raise ValueError(f"{name} must be a 2-D distance matrix; got shape {shape}")
        if 0 in shape:
            raise ValueError(f"{name} must not be empty; got shape {shape}")
        kind = np.dtype(arr.dtype).kind
        if kind not in "fiu":
            raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
        self.shape = shape
        chunks = getattr(arr, "chunks", None)
        if tile is None:
            # about 32 MiB per float64 tile; aligned to the stored chunks
            tile = 2048
            if chunks is not None and len(chunks) == 2 and chunks[0] > 0:
                c = int(chunks[0])
                tile = max(c, (tile // c) * c)
        self.tile = int(tile)
        self.reads = 0
        self.max_block_elems = 0

    def block(self, r0, r1, c0=0, c1=None) -> np.ndarray:
        c1 = self.shape[1] if c1 is None else c1
        self.reads += 1
        self.max_block_elems = max(self.max_block_elems, (r1 - r0) * (c1 - c0))
        w = self.chunk_cols
        if not w or c1 - c0 <= w:
            return np.asarray(self.arr[r0:r1, c0:c1], dtype=np.float64)
        # A chunked (zarr) array, read one chunk column at a time into the block: 2.3x faster
        # than one multi-chunk selection (measured on a 20000^2 store of 1024^2 chunks: 0.6 s
        # against 1.4 s a full pass), whose assembly through zarr's async pipeline dominates.
        out = np.empty((r1 - r0, c1 - c0))
        edges = [c0, *range((c0 // w + 1) * w, c1, w), c1]
        for a, b in zip(edges[:-1], edges[1:]):
            out[:, a - c0:b - c0] = self.arr[r0:r1, a:b]
        return out

    def row_block_size(self) -> int:
        """Rows per row block of at most ``row_block_bytes`` float64, aligned to the tile edge."""
        rows = max(1, self.row_block_bytes // (8 * self.shape[1]))
        if self.chunk_rows:  # whole chunk rows: a partial chunk row would be read (and decoded) again
            rows = max(self.chunk_rows, (rows // self.chunk_rows) * self.chunk_rows)
        elif rows >= self.tile:
            rows = (rows // self.tile) * self.tile
        return min(rows, self.shape[0])


def as_stored_matrix(D, name: str = "D"):
    """A :class:`StoredMatrix` for memory maps, zarr arrays and zarr paths; ``None`` otherwise."""
    if isinstance(D, StoredMatrix):
        return D
    if isinstance(D, np.memmap):
        return StoredMatrix(D, name)
    if isinstance(D, (str, os.PathLike)):
        import zarr

        return StoredMatrix(zarr.open_array(str(D), mode="r"), name)
    mod = type(D).__module__ or ""
    if mod.startswith("zarr"):
        return StoredMatrix(D, name)
    return None


def stored_stats(S: StoredMatrix, tol: float) -> MatrixStats:
    """Validate a stored square ``D`` tile by tile and return its :class:`MatrixStats`."""
    M, M2 = S.shape
    if M != M2:
        raise ValueError(f"{S.name} must be square (M, M); got shape {S.shape}")
    T = S.tile
    rs = np.zeros(M)
    sumsq = []
    lo, hi = math.inf, -math.inf
    worst_asym = (0.0, None)
    worst_neg = (0.0, None)
    nonfinite = None
    diag = np.empty(M)
    bounds = [(i, min(M, i + T)) for i in range(0, M, T)]
    for bi, (i0, i1) in enumerate(bounds):
        for j0, j1 in bounds[bi:]:
            A = S.block(i0, i1, j0, j1)
            B = A if j0 == i0 else S.block(j0, j1, i0, i1)
            for blk, r0, c0 in ((A, i0, j0), (B, j0, i0)):
                fin = np.isfinite(blk)
                if not fin.all():
                    i, j = np.argwhere(~fin)[0]
                    cand = (r0 + int(i), c0 + int(j), float(blk[i, j]))
                    if nonfinite is None or cand[:2] < nonfinite[:2]:
                        nonfinite = cand
                    continue
                mn, mx = float(blk.min()), float(blk.max())
                lo, hi = min(lo, mn), max(hi, mx)
                if mn < worst_neg[0]:
                    i, j = np.unravel_index(int(np.argmin(blk)), blk.shape)
                    worst_neg = (mn, (r0 + int(i), c0 + int(j)))
                if blk is B and j0 == i0:
                    break
            if nonfinite is not None:
                continue
            rs[i0:i1] += A.sum(1)
            sumsq.append(float(np.vdot(A, A)))
            if j0 != i0:
                rs[j0:j1] += B.sum(1)
                sumsq.append(float(np.vdot(B, B)))
                diff = np.abs(A - B.T)
            else:
                diag[i0:i1] = np.diagonal(A)
                diff = np.abs(A - A.T)
            m = float(diff.max())
            if m > worst_asym[0]:
                i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
                worst_asym = (m, (i0 + int(i), j0 + int(j)))
    name = S.name
    if nonfinite is not None:
        i, j, v = nonfinite
        raise ValueError(f"{name} has a non-finite entry {v!r} at ({i}, {j}) (e.g. models with disjoint "
                         "support); InPCA needs finite distances")
    scale = max(hi, -lo)
    atol = tol * scale
    failed = (worst_neg[0] < -atol or float(np.abs(diag).max()) > atol or worst_asym[0] > atol)
    if scale == 0.0 or (failed and scale <= COINCIDE_ATOL):
        raise ValueError(coincide_message(M, scale))
    if worst_neg[0] < -atol:
        i, j = worst_neg[1]
        raise ValueError(f"{name} has a negative entry {worst_neg[0]!r} at ({i}, {j}) beyond the rounding "
                         f"tolerance {atol:.3g} (= {tol:g} * max|{name}|)")
    bad_diag = np.abs(diag) > atol
    if bad_diag.any():
        i = int(np.argmax(bad_diag))
        raise ValueError(f"{name} has a non-zero diagonal entry {float(diag[i])!r} at ({i}, {i}) beyond "
                         f"the tolerance {atol:.3g}")
    if worst_asym[0] > atol:
        i, j = worst_asym[1]
        raise ValueError(f"{name} is not symmetric at ({i}, {j}) / ({j}, {i}): |difference| = "
                         f"{worst_asym[0]:.3g} beyond the tolerance {atol:.3g}")
    r = rs / M
    g = float(r.mean())
    fro2 = 0.25 * (math.fsum(sumsq) - 2.0 * M * math.fsum(r * r) + M * M * g * g)
    fro2 = max(fro2, 0.0)
    w_diag = -0.5 * (diag - 2.0 * r + g)
    return MatrixStats(r, r.copy(), fro2, w_diag)


# ----------------------------------------------------------------------------- in memory

def _as_torch(D: np.ndarray) -> torch.Tensor:
    """A torch view of a float64 numpy array (read only here; read-only arrays are fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "non-writable array": never written
        return torch.from_numpy(D)


def in_memory_stats(D, tol: float):
    """Validate an in-memory ``D``; return ``(D as a float64 ndarray, MatrixStats)``.

    The fast path is one tiled torch pass (row/column sums, extremes, asymmetry) over ``D``'s own
    memory; anything else -- another type or dtype, a bad shape, a failed condition -- goes through
    :func:`~linsim.inpca.checks.check_distance_matrix`, which raises the located error (after the
    coincide check above).
    """
    fast = (isinstance(D, np.ndarray) and D.dtype == np.float64 and D.ndim == 2 and D.size > 0
            and D.shape[0] == D.shape[1] and (D.flags.c_contiguous or D.flags.f_contiguous))
    r = c = None
    if fast:
        r, c, ok, scale = _tiled_stats(D, tol)
        if not ok:
            r = None
            if scale is not None and scale <= COINCIDE_ATOL:
                raise ValueError(coincide_message(D.shape[0], scale))
    if r is None:
        if isinstance(D, torch.Tensor):
            D = D.detach().cpu().numpy()
        arr = np.asarray(D)
        if arr.ndim == 2 and arr.size and arr.dtype.kind in "fiu":
            a64 = np.asarray(arr, dtype=np.float64)
            if np.isfinite(a64).all():
                scale = float(np.abs(a64).max())
                if scale <= COINCIDE_ATOL and arr.shape[0] == arr.shape[1]:
                    raise ValueError(coincide_message(arr.shape[0], scale))
        D = check_distance_matrix(D, "D", tol)  # raises on every failed condition
        if not (D.flags.c_contiguous or D.flags.f_contiguous):  # e.g. negative strides
            D = np.ascontiguousarray(D)
        r, c, _, scale = _tiled_stats(D, tol)
    if scale == 0.0:
        raise ValueError(coincide_message(D.shape[0], 0.0))
    g = float(c.mean())
    fro2, diag = _frobenius_and_diag(D, r, c, g)
    return D, MatrixStats(r, c, fro2, diag)


def _tiled_stats(D: np.ndarray, tol: float, tile: int = 1024):
    """Row means, column means, whether ``D`` passes the conditions, and ``max|D|`` (None if
    not finite)."""
    M = D.shape[0]
    Dt = _as_torch(D)
    rs = torch.zeros(M, dtype=torch.float64)
    cs = torch.zeros(M, dtype=torch.float64)
    lo, hi, asym = np.inf, -np.inf, 0.0
    finite = True
    for i0 in range(0, M, tile):
        i1 = min(M, i0 + tile)
        for j0 in range(i0, M, tile):
            j1 = min(M, j0 + tile)
            A = Dt[i0:i1, j0:j1]
            B = Dt[j0:j1, i0:i1]
            for blk, rows, cols in ((A, slice(i0, i1), slice(j0, j1)), (B, slice(j0, j1), slice(i0, i1))):
                mn, mx = (float(v) for v in torch.aminmax(blk))
                finite = finite and np.isfinite(mn) and np.isfinite(mx)  # NaN propagates here
                lo, hi = min(lo, mn), max(hi, mx)
                rs[rows] += blk.sum(1)
                cs[cols] += blk.sum(0)
                if j0 == i0:
                    break
            asym = max(asym, float((A - B.T).abs_().max()))
    if not finite:
        return None, None, False, None
    scale = max(hi, -lo)
    atol = tol * scale
    diag = float(np.abs(np.diagonal(D)).max())
    ok = lo >= -atol and diag <= atol and asym <= atol
    return (rs / M).numpy(), (cs / M).numpy(), ok, scale


def _frobenius_and_diag(D, r, c, g):
    """``||W||_F^2`` (exact: the centered entries are formed blockwise, no cancellation) and
    ``diag W``, in one pass over ``D`` with torch's threads."""
    M = D.shape[0]
    Dt, ct = _as_torch(D), torch.from_numpy(np.ascontiguousarray(c))
    shift = torch.from_numpy(r - g)
    step = max(1, min(M, (1 << 20) // M))
    tmp = torch.empty(step, M, dtype=torch.float64)
    fro2 = 0.0
    for r0 in range(0, M, step):
        r1 = min(M, r0 + step)
        t = tmp[: r1 - r0]
        torch.sub(Dt[r0:r1], ct, out=t)
        t.sub_(shift[r0:r1, None])
        flat = t.view(-1)
        fro2 += 0.25 * float(torch.dot(flat, flat))
    diag = -0.5 * (np.diagonal(D) - r - c + g)
    return fro2, diag
