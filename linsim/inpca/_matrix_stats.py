"""One pass over a distance matrix: validation, row/column means, ``||W||_F`` and ``diag W``.

Two sources are served:

* an in-memory float64 numpy array (not a memory map): tiled torch passes over ``D``'s own
  memory (no copy), with the exact two-pass ``||W||_F`` (centered entries formed blockwise);
* a *stored* matrix -- a :class:`numpy.memmap`, a :class:`zarr.Array` or a path to a zarr
  array -- read in square tile pairs ``(I, J)``, ``(J, I)`` with ``I <= J`` (:class:`StoredMatrix`;
  uncompressed local zarr chunks straight from their files).  Each pair is scanned once
  (:class:`StoredStats`): row sums, ``max |D|``, sign and exponent bits, a bitwise symmetry
  hash, the diagonal and ``sum (D - s)^2`` about a fixed shift ``s``; ``||W||_F^2`` then follows
  from the identity ``4 ||W||_F^2 = sum (D - s)^2 - 2 M sum_u (r_u - s)^2 + M^2 (g - s)^2``
  (symmetric ``D``, row means ``r``, grand mean ``g``; exact for any ``s`` since ``J 1 = 0``),
  accumulated with :func:`math.fsum` over tiles.  The stored InPCA fit runs these scans inside
  its first product pass (:mod:`linsim.inpca._eigensolvers`); :func:`stored_stats` is the same
  pass without products.

The acceptance conditions are the same for both (those of
:func:`linsim.inpca.checks.check_distance_matrix`): finite; asymmetry, ``|diagonal|`` and negative
entries within ``tol * max|D|``.  A failed condition raises ``ValueError`` naming the entry (for a
stored ``D``: the first non-finite entry in row-major order, the smallest entry, the first
diagonal entry, the largest asymmetry at its upper-triangle position).  A matrix whose entries
are all at float64 rounding level (``max|D| <= COINCIDE_ATOL``) and that fails a condition, or
that is exactly zero, is reported as what it is: all models coincide.
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
import mmap
import os
import threading
import warnings
from dataclasses import dataclass

import numba
import numpy as np
import torch

from ..parallel import thread_limit
from .checks import check_distance_matrix

__all__ = ["COINCIDE_ATOL", "TILE", "MatrixStats", "StoredMatrix", "StoredStats", "as_stored_matrix",
           "coincide_message", "equidistant_message", "in_memory_stats", "stored_stats", "tile_shift"]

#: a distance matrix whose largest entry is at most this (nats per sample) is float64 rounding
#: noise of a distance kernel: the models coincide
COINCIDE_ATOL = 1e-12


def coincide_message(M: int, scale: float) -> str:
    """The error message for a ``D`` (M, M) of coinciding models (``max|D| = scale`` nats).

    Examples
    --------
    >>> coincide_message(3, 0.0)
    'all 3 models coincide: D is zero, nothing to embed'
    """
    if scale == 0.0:
        return f"all {M} models coincide: D is zero, nothing to embed"
    return (f"all {M} models coincide: D is zero up to float64 rounding (max |D| = {scale:.3g} <= "
            f"{COINCIDE_ATOL:g}), nothing to embed")


@dataclass(frozen=True)
class MatrixStats:
    """What one pass over ``D`` (M, M) gives: row means, column means, ``||W||_F^2``, ``diag W``.

    ``row_means``, ``column_means`` and ``diagonal`` are float64 (M,) (nats per sample, like
    ``D``); ``W = -1/2 J D J``.

    Examples
    --------
    >>> import numpy as np
    >>> st = MatrixStats(np.ones(2), np.ones(2), 1.0, np.full(2, 0.5))
    >>> st.grand_mean
    1.0
    """

    row_means: np.ndarray
    column_means: np.ndarray
    frobenius_sq: float
    diagonal: np.ndarray

    @property
    def grand_mean(self) -> float:
        return float(self.column_means.mean())


# ----------------------------------------------------------------------------- stored matrices

#: default edge of the square tiles of passes over a stored matrix: a float64 tile of 8 MiB, so
#: that the tiles in flight (two per thread) stay in the shared L3 cache while they are scanned
#: and multiplied
TILE = 1024

_ABS = np.uint64(0x7FFF_FFFF_FFFF_FFFF)
_NONFINITE = np.uint64(0x7FF0_0000_0000_0000)  # abs bits >= this: inf or NaN
_JIT = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")


_MIX1 = np.uint64(0xBF58_476D_1CE4_E5B9)
_MIX2 = np.uint64(0x94D0_49BB_1331_11EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@numba.njit(inline="always")
def _mix(u):  # pragma: no cover - compiled
    """A bijection of 64-bit words (splitmix64's finalizer): structured differences of the bits
    (an exponent, a sign) become unstructured differences of the hash terms."""
    u = (u ^ (u >> _S30)) * _MIX1
    u = (u ^ (u >> _S27)) * _MIX2
    return u ^ (u >> _S31)


@numba.njit(fastmath={"reassoc", "contract"}, **_JIT)
def _scan(X, shift, wr, wc, rs):  # pragma: no cover - compiled
    """One vectorizable pass over a C-contiguous float64 tile ``X`` (p, q).

    Writes the row sums into ``rs`` (p,) and returns ``(sum (x - shift)^2, max |x| as bits,
    OR of all bits, hash)`` where ``hash = sum_i wr_i sum_j wc_j mix(bits(x_ij))`` (uint64,
    wrapping).  Non-finite entries make the float results meaningless; the caller looks at the
    bits first.
    """
    p, q = X.shape
    U = X.view(np.uint64)
    ss = 0.0
    mx = np.uint64(0)
    orb = np.uint64(0)
    h = np.uint64(0)
    for i in range(p):
        s = 0.0
        t = 0.0
        m = np.uint64(0)
        o = np.uint64(0)
        hr = np.uint64(0)
        for j in range(q):
            a = X[i, j]
            u = U[i, j]
            s += a
            d = a - shift
            t += d * d
            au = u & _ABS
            m = au if au > m else m
            o |= u
            hr += _mix(u) * wc[j]
        rs[i] = s
        ss += t
        mx = m if m > mx else mx
        orb |= o
        h += hr * wr[i]
    return ss, mx, orb, h


@numba.njit(**_JIT)
def _hash_triangles(X, wx, wy):  # pragma: no cover - compiled
    """Hashes of the two triangles of a square diagonal tile, each entry weighted by its
    (smaller, larger) index: ``sum_{i<j} wx_i wy_j mix(x_ij)`` and ``sum_{i>j} wx_j wy_i
    mix(x_ij)``; equal when the tile is symmetric, and a single asymmetric pair always differs
    (odd weights: ``wx_i wy_j`` is invertible modulo 2^64)."""
    p = X.shape[0]
    U = X.view(np.uint64)
    up = np.uint64(0)
    low = np.uint64(0)
    for i in range(p):
        hu = np.uint64(0)
        for j in range(i + 1, p):
            hu += _mix(U[i, j]) * wy[j]
        hl = np.uint64(0)
        for j in range(i):
            hl += _mix(U[i, j]) * wx[j]
        up += hu * wx[i]
        low += hl * wy[i]
    return up, low


@numba.njit(**_JIT)
def _asymmetry(A, B, upper):  # pragma: no cover - compiled
    """``max |A[i, j] - B[j, i]|`` (over ``j > i`` only when ``upper``) and the first ``(i, j)``
    in row-major order where it is attained (``(-1, -1)`` when it is 0); no temporaries beyond
    one 32 x 32 transposed sub-block of ``B``."""
    p, q = A.shape
    E = 32
    tmp = np.empty((E, E))
    worst = 0.0
    wi = -1
    wj = -1
    for ib in range(0, p, E):
        ie = min(p, ib + E)
        for jb in range(0, q, E):
            je = min(q, jb + E)
            if upper and je <= ib + 1:  # the whole sub-block has j <= i
                continue
            for j in range(jb, je):
                for i in range(ib, ie):
                    tmp[i - ib, j - jb] = B[j, i]
            for i in range(ib, ie):
                for j in range(jb, je):
                    if upper and j <= i:
                        continue
                    d = abs(A[i, j] - tmp[i - ib, j - jb])
                    if d > worst or (d == worst and d > 0.0 and (i < wi or (i == wi and j < wj))):
                        worst = d
                        wi = i
                        wj = j
    return worst, wi, wj


def _hash_weights(M: int):
    """Two fixed vectors of odd 64-bit integers (row and column weights of the symmetry hash)."""
    rng = np.random.default_rng(np.random.SeedSequence(0x5E_77_1C))
    w = rng.integers(0, 2**63, size=(2, M), dtype=np.uint64)
    return w[0] * np.uint64(2) + np.uint64(1), w[1] * np.uint64(2) + np.uint64(1)


class StoredMatrix:
    """Read-only tile access to a square matrix held in a memory map or a zarr array.

    ``block(r0, r1, c0, c1)`` returns ``D[r0:r1, c0:c1]`` as a C-contiguous float64 array.
    Passes over ``D`` go by square tiles of edge ``tile``: by default the multiple of the zarr
    chunk edge nearest below :data:`TILE` (1024), so that every tile is read as whole chunks
    (chunks larger than 2048, or rectangular chunks whose least common multiple is, are read
    unaligned: correct, but a compressed chunk is then decoded once per tile that touches it; an
    uncompressed local one is memory-mapped and only the part needed is read), and
    :data:`TILE` for a memory map.  ``reads`` counts block reads and ``max_block_elems`` the
    largest block read (so a test can check that the whole matrix was never requested).

    Parameters
    ----------
    arr : numpy.memmap or zarr.Array (M, M)
        Real numbers (any real dtype; converted to float64 tile by tile).
    name : str
        Name used in error messages.
    tile : int, optional
        Tile edge (default: see above).

    Examples
    --------
    >>> import numpy as np
    >>> S = StoredMatrix(np.arange(16.0).reshape(4, 4), tile=3)
    >>> S.edges
    [(0, 3), (3, 4)]
    >>> S.block(1, 3, 2, 4).tolist()
    [[6.0, 7.0], [10.0, 11.0]]
    """

    def __init__(self, arr, name: str = "D", tile: int | None = None):
        chunks = getattr(arr, "chunks", None) if not isinstance(arr, np.ndarray) else None
        self.chunk_rows = int(chunks[0]) if chunks else None
        self.chunk_cols = int(chunks[1]) if chunks and len(chunks) == 2 else None
        self.arr = arr
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
        if tile is None:
            tile = TILE
            if self.chunk_rows and self.chunk_cols:
                base = math.lcm(self.chunk_rows, self.chunk_cols)
                if base <= 2 * TILE:
                    tile = max(base, (TILE // base) * base)
        if int(tile) < 1:
            raise ValueError(f"tile must be a positive integer; got {tile!r}")
        self.tile = int(tile)
        self.reads = 0
        self.max_block_elems = 0
        self._count_lock = threading.Lock()  # blocks are read from several threads
        self._chunk_file = _raw_chunk_files(arr)

    @property
    def edges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of the tile rows (and columns) ``0, 1, ...``."""
        M, T = self.shape[0], self.tile
        return [(i, min(M, i + T)) for i in range(0, M, T)]

    def block(self, r0, r1, c0=0, c1=None) -> np.ndarray:
        c1 = self.shape[1] if c1 is None else c1
        with self._count_lock:
            self.reads += 1
            self.max_block_elems = max(self.max_block_elems, (r1 - r0) * (c1 - c0))
        if self._chunk_file is not None:
            return self._read_raw_chunks(r0, r1, c0, c1)
        w = self.chunk_cols
        if not w or c1 - c0 <= w:
            return np.ascontiguousarray(self.arr[r0:r1, c0:c1], dtype=np.float64)
        # A chunked (zarr) array, read one chunk column at a time into the block: 2.3x faster
        # than one multi-chunk selection (measured on a 20000^2 store of 1024^2 chunks: 0.6 s
        # against 1.4 s a full pass), whose assembly through zarr's async pipeline dominates.
        out = np.empty((r1 - r0, c1 - c0))
        edges = [c0, *range((c0 // w + 1) * w, c1, w), c1]
        for a, b in zip(edges[:-1], edges[1:]):
            out[:, a - c0:b - c0] = self.arr[r0:r1, a:b]
        return out

    def _read_raw_chunks(self, r0, r1, c0, c1) -> np.ndarray:
        """``D[r0:r1, c0:c1]`` from the chunk files themselves (see :func:`_raw_chunk_files`)."""
        cr, cc = self.chunk_rows, self.chunk_cols
        dtype = np.dtype(self.arr.dtype).newbyteorder("<")
        out = np.empty((r1 - r0, c1 - c0))
        buf = None
        for ci in range(r0 // cr, (r1 - 1) // cr + 1):
            a0, a1 = max(r0, ci * cr), min(r1, (ci + 1) * cr)
            for cj in range(c0 // cc, (c1 - 1) // cc + 1):
                b0, b1 = max(c0, cj * cc), min(c1, (cj + 1) * cc)
                dst = out[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
                whole = (a0, a1, b0, b1) == (ci * cr, (ci + 1) * cr, cj * cc, (cj + 1) * cc)
                if whole and dtype == np.float64 and out.shape[1] == cc:  # straight into out
                    if self._chunk_file(ci, cj, dst):
                        continue
                else:
                    part = (a0 - ci * cr, a1 - ci * cr, b0 - cj * cc, b1 - cj * cc)
                    if 2 * (a1 - a0) * (b1 - b0) <= cr * cc:  # a small part: mapped, not read whole
                        if self._chunk_file(ci, cj, dst, part):
                            continue
                    else:
                        if buf is None:
                            buf = np.empty((cr, cc), dtype=dtype)
                        if self._chunk_file(ci, cj, buf):
                            dst[...] = buf[part[0]:part[1], part[2]:part[3]]
                            continue
                dst[...] = self.arr[a0:a1, b0:b1]  # no chunk file (fill value): through zarr
        return out

    def map_tile_pairs(self, fn, pool=None, window: int = 4):
        """Yield ``((I, J), fn(I, J))`` for the tile pairs ``I <= J`` in row-major order.

        With a :class:`concurrent.futures.Executor` ``pool``, at most ``window`` calls are in
        flight and the results still come in that order (so whatever the caller accumulates
        from them does not depend on the number of threads or on their timing).

        Examples
        --------
        >>> import numpy as np
        >>> [key for key, _ in StoredMatrix(np.zeros((5, 5)), tile=2).map_tile_pairs(lambda I, J: None)]
        [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
        """
        n = len(self.edges)
        pairs = [(I, J) for I in range(n) for J in range(I, n)]
        if pool is None:
            for I, J in pairs:
                yield (I, J), fn(I, J)
            return
        pending = collections.deque()
        try:
            for I, J in pairs:
                pending.append(((I, J), pool.submit(fn, I, J)))
                if len(pending) >= window:
                    key, fut = pending.popleft()
                    yield key, fut.result()
            while pending:
                key, fut = pending.popleft()
                yield key, fut.result()
        finally:  # an error or an abandoned generator: nothing stays queued
            for _, fut in pending:
                fut.cancel()
            concurrent.futures.wait([f for _, f in pending])


def _raw_chunk_files(arr):
    """A reader of the raw chunk files of an uncompressed zarr v3 array in a local directory.

    zarr's own reads of one 8 MiB chunk were measured at 3.5-4.3 ms (its async pipeline and
    copies) against 0.8 ms for reading the chunk file straight into the destination.  The
    zarr v3 format fixes what such a file holds when the only codec is ``bytes``: the whole
    chunk (edge chunks padded to the full chunk shape) as C-order raw values of the stated
    endianness.  So for a 2-D array on a ``LocalStore``, with a regular chunk grid, that one
    codec, no storage transformers and a numeric dtype, this returns ``read(ci, cj, dst,
    part=None) -> bool`` that fills ``dst`` (a C-contiguous array of the chunk's full shape, or
    the exact interior part of a float64 block) from the file of chunk ``(ci, cj)`` -- with
    ``part = (r0, r1, c0, c1)`` only ``chunk[r0:r1, c0:c1]``, into a ``dst`` of that shape,
    through a memory map of the file, so that a small part of a large chunk (row-chunked stores,
    edge chunks) costs its own pages and no chunk-sized buffer -- and False when that
    file does not exist (a chunk never written: the caller reads it through zarr, which
    supplies the fill value).  Anything else -- compression, sharding, zarr v2, another store --
    returns None and is read through zarr.
    """
    try:
        meta = arr.metadata
        if (getattr(meta, "zarr_format", None) != 3 or type(arr.store).__name__ != "LocalStore"
                or len(arr.shape) != 2 or getattr(meta, "storage_transformers", ())
                or type(meta.chunk_grid).__name__ != "RegularChunkGrid"):
            return None
        codecs = tuple(meta.codecs)
        if len(codecs) != 1 or type(codecs[0]).__name__ != "BytesCodec":
            return None
        dtype = np.dtype(arr.dtype)
        endian = getattr(codecs[0].endian, "value", codecs[0].endian)
        if dtype.kind not in "fiu" or (dtype.itemsize > 1 and endian != "little"):
            return None
        root = os.path.join(str(arr.store.root), *([arr.path] if arr.path else []))
        chunk_shape = tuple(int(c) for c in meta.chunk_grid.chunk_shape)
        encode = meta.encode_chunk_key
    except AttributeError:  # another zarr version's layout of these attributes: use zarr itself
        return None
    nbytes = math.prod(chunk_shape) * dtype.itemsize
    file_dtype = dtype.newbyteorder("<")

    def damaged(path, got):
        return ValueError(f"zarr chunk file {path} holds {got} bytes where a chunk of shape {chunk_shape} "
                          f"{dtype} has {nbytes}: the store is damaged or was written by another writer")

    def read(ci, cj, dst, part=None):
        path = os.path.join(root, *encode((ci, cj)).split("/"))
        try:
            with open(path, "rb", buffering=0) as f:
                if part is not None:  # only rows part[0]:part[1], columns part[2]:part[3] of the chunk
                    got = os.fstat(f.fileno()).st_size
                    if got != nbytes:
                        raise damaged(path, got)
                    with mmap.mmap(f.fileno(), nbytes, access=mmap.ACCESS_READ) as mm:
                        src = np.frombuffer(mm, dtype=file_dtype).reshape(chunk_shape)
                        try:
                            dst[...] = src[part[0]:part[1], part[2]:part[3]]
                        finally:
                            del src  # no exported buffer may outlive the mapping
                    return True
                view = memoryview(dst).cast("B")
                got = f.readinto(view) if view.nbytes == nbytes else 0
        except FileNotFoundError:
            return False
        if got != nbytes:
            raise damaged(path, got)
        return True

    return read


def as_stored_matrix(D, name: str = "D"):
    """A :class:`StoredMatrix` for memory maps, zarr arrays and zarr paths; ``None`` otherwise.

    A path names a zarr array, or the group that :func:`linsim.inpca.bhattacharyya` writes at
    ``out=path`` (its ``distance`` array, refused with the count while tiles are missing).

    Examples
    --------
    >>> import numpy as np
    >>> as_stored_matrix(np.zeros((2, 2))) is None      # in memory: not a stored matrix
    True
    """
    if isinstance(D, StoredMatrix):
        return D
    if isinstance(D, np.memmap):
        return StoredMatrix(D, name)
    if isinstance(D, (str, os.PathLike)):
        return StoredMatrix(_open_zarr_distances(str(D)), name)
    mod = type(D).__module__ or ""
    if mod.startswith("zarr"):
        return StoredMatrix(_zarr_distances(D, getattr(D, "path", "") or repr(D)), name)
    return None


def _open_zarr_distances(path: str):
    """The zarr array at ``path``, or the ``distance`` array of the group that
    :func:`linsim.inpca.bhattacharyya` writes at ``out=path`` (refused while its ``tile_done``
    mask says tiles are missing)."""
    import zarr

    return _zarr_distances(zarr.open(path, mode="r"), path)


def _zarr_distances(node, path: str):
    """``node`` itself if it is a zarr array; the checked ``distance`` array of a group."""
    import zarr

    if not isinstance(node, zarr.Group):
        return node
    if "distance" not in node:
        raise ValueError(f"{path} is a zarr group with no 'distance' array (it holds {sorted(node.keys())}); "
                         "pass the path of the distance array itself")
    arr = node["distance"]
    if "tile_done" in node:
        done = np.asarray(node["tile_done"][...]) != 0
        if node.attrs.get("symmetric", False):
            need = np.triu(np.ones(done.shape, dtype=bool))
        else:
            need = np.ones(done.shape, dtype=bool)
        if not done[need].all():
            raise ValueError(f"the distance store {path} is incomplete: {int(done[need].sum())} of "
                             f"{int(need.sum())} tiles written; rerun bhattacharyya(..., out={path!r}) to "
                             "finish it (finished tiles are kept)")
    return arr


def equidistant_message(M: int) -> str:
    """The error message for a ``D`` whose double-centred matrix is zero.

    Examples
    --------
    >>> equidistant_message(3)[:30]
    'all 3 models are equidistant i'
    """
    return (f"all {M} models are equidistant in a way that leaves W = 0 (||W||_F = 0): "
            "nothing to embed")


@dataclass(frozen=True)
class _PairScan:
    """What one tile pair ``(I, J)`` contributes to :class:`StoredStats` (absolute indices)."""

    I: int
    J: int
    rows_a: np.ndarray            # row sums of A = D[I, J]
    rows_b: np.ndarray | None     # row sums of B = D[J, I] (None on the diagonal I == J)
    sumsq: float                  # sum of (D - shift)^2 over A and B
    max_abs: float                # max |D| over A and B (finite tiles only)
    nonfinite: int                # flat index u M + v of the first non-finite entry, or -1
    minimum: tuple | None         # (value, flat index) of the smallest entry when one has its sign bit set
    asym: tuple                   # (|D_uv - D_vu|, u, v) largest (0, -1, -1 when bitwise symmetric)
    bitwise: bool                 # A == B^T bit for bit (up to a 64-bit hash collision)
    diagonal: np.ndarray | None   # diag D[I, I] on the diagonal


class StoredStats:
    """Validation and statistics of a stored square ``D``, accumulated tile pair by tile pair.

    :meth:`scan` (thread safe, pure) measures one tile pair ``A = D[I, J]``, ``B = D[J, I]``
    (``I <= J``) in one vectorized pass per tile (:func:`_scan`): row sums, ``sum (D - s)^2``
    about a fixed shift ``s`` (the mean of the first tile: the Frobenius identity then cancels
    little), ``max |D|`` and the sign and exponent bits.

    Symmetry is proved bit for bit by a 64-bit hash instead of a transposed comparison of every
    pair (which cost 4-5 ms a tile against 0.6 ms for the whole scan): ``sum_uv x_u y_v
    mix(bits(D_uv))`` over ``A`` against ``sum_uv x_u y_v mix(bits(D_vu))`` over ``B``, and on
    a diagonal tile its upper triangle against its lower one, each entry weighted by its
    (smaller, larger) index (fixed odd weights ``x``, ``y``; ``mix`` a bijection of 64-bit
    words; integer arithmetic modulo ``2^64``, exact and independent of the order).  Only a tile
    pair whose hashes differ is compared entry by entry (:func:`_asymmetry`) for its largest
    asymmetry, so a ``D`` symmetric within tolerance but not bit for bit is checked exactly as
    before, only slower.  The guarantee kept: a tile pair that differs from its mirror in one
    entry (or one mirrored pair) always hashes differently (an odd weight is invertible modulo
    ``2^64``); one that differs in several entries passes unexamined only if their mixed hash
    terms cancel modulo ``2^64`` -- a 64-bit hash collision.  Non-finite entries and entries
    with the sign bit set are located by numpy on their tile only.  :meth:`add` (in a fixed order) merges the
    pairs; :meth:`finish` applies the acceptance conditions and returns :class:`MatrixStats`.

    Examples
    --------
    >>> import numpy as np
    >>> D = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 1.0], [4.0, 1.0, 0.0]])
    >>> st = stored_stats(StoredMatrix(D, tile=2), tol=1e-9)
    >>> round(st.frobenius_sq, 12), st.row_means.round(6).tolist()   # ||W||_F^2 of points -1, 0, 1
    (4.0, [1.666667, 0.666667, 1.666667])
    """

    def __init__(self, S: StoredMatrix, shift: float):
        M, M2 = S.shape
        if M != M2:
            raise ValueError(f"{S.name} must be square (M, M); got shape {S.shape}")
        self.S = S
        self.M = M
        self.shift = float(shift) if math.isfinite(shift) else 0.0
        self.wx, self.wy = _hash_weights(M)
        self.row_sums = np.zeros(M)
        self.diag = np.zeros(M)
        self._sumsq = []
        self.max_abs = 0.0
        self.nonfinite = -1
        self.minimum = (math.inf, -1)
        self.asym = (0.0, -1, -1)
        self.bitwise_symmetric = True

    def scan(self, A: np.ndarray, B: np.ndarray | None, I: int, J: int) -> _PairScan:
        """Measure the tile pair ``A = D[I, J]``, ``B = D[J, I]`` (``B`` None when ``I == J``)."""
        (i0, _), (j0, _) = self.S.edges[I], self.S.edges[J]
        M, s = self.M, self.shift
        wx_i, wy_j = self.wx[i0:i0 + A.shape[0]], self.wy[j0:j0 + A.shape[1]]
        rows_a = np.empty(A.shape[0])
        ss, mx, orb, ha = _scan(A, s, wx_i, wy_j, rows_a)
        tiles = [(A, i0, j0)]
        rows_b = None
        if B is None:  # the diagonal tile: its two triangles against each other
            ha, hb = _hash_triangles(A, wx_i, self.wy[i0:i0 + A.shape[0]])
        else:
            rows_b = np.empty(B.shape[0])
            ss_b, mx_b, orb_b, hb = _scan(B, s, wy_j, wx_i, rows_b)
            ss, mx, orb = ss + ss_b, max(mx, mx_b), orb | orb_b
            tiles.append((B, j0, i0))
        nonfinite, minimum = -1, None
        if mx >= _NONFINITE:
            for X, r0, c0 in tiles:
                bad = np.argwhere(~np.isfinite(X))
                if bad.size:
                    k = (r0 + int(bad[0, 0])) * M + c0 + int(bad[0, 1])
                    nonfinite = k if nonfinite < 0 else min(nonfinite, k)
            return _PairScan(I, J, rows_a, rows_b, math.nan, math.nan, nonfinite, None, (0.0, -1, -1),
                             False, None)
        if orb >> np.uint64(63):  # some entry has its sign bit set (negative, or -0.0)
            for X, r0, c0 in tiles:
                k = int(np.argmin(X))
                cand = (float(X.flat[k]), (r0 + k // X.shape[1]) * M + c0 + k % X.shape[1])
                minimum = cand if minimum is None or cand < minimum else minimum
        bitwise = bool(ha == hb)
        asym = (0.0, -1, -1)
        if not bitwise:  # rare: compare entry by entry (upper triangle on the diagonal tile)
            d, i, j = _asymmetry(A, A if B is None else B, B is None)
            asym = (float(d), i0 + int(i), j0 + int(j)) if i >= 0 else (0.0, -1, -1)
        diagonal = np.diagonal(A).copy() if B is None else None
        max_abs = float(np.array(mx, dtype=np.uint64).view(np.float64))
        return _PairScan(I, J, rows_a, rows_b, float(ss), max_abs, nonfinite, minimum, asym, bitwise, diagonal)

    def add(self, sc: _PairScan) -> None:
        """Merge one pair's scan (call in a fixed order: the sums are order dependent)."""
        (i0, i1), (j0, j1) = self.S.edges[sc.I], self.S.edges[sc.J]
        self.row_sums[i0:i1] += sc.rows_a
        if sc.rows_b is not None:
            self.row_sums[j0:j1] += sc.rows_b
        if sc.nonfinite >= 0:
            self.nonfinite = sc.nonfinite if self.nonfinite < 0 else min(self.nonfinite, sc.nonfinite)
        if self.nonfinite >= 0:
            self.bitwise_symmetric = False
            return
        self._sumsq.append(sc.sumsq)
        self.max_abs = max(self.max_abs, sc.max_abs)
        if sc.minimum is not None and sc.minimum < self.minimum:
            self.minimum = sc.minimum
        a = sc.asym
        if a[0] > self.asym[0] or (a[0] == self.asym[0] and a[0] > 0 and a[1:] < self.asym[1:]):
            self.asym = a
        self.bitwise_symmetric = self.bitwise_symmetric and sc.bitwise
        if sc.diagonal is not None:
            self.diag[i0:i1] = sc.diagonal

    def finish(self, tol: float) -> MatrixStats:
        """Apply the acceptance conditions (raising the located ``ValueError``); the statistics."""
        M, name = self.M, self.S.name
        if self.nonfinite >= 0:
            i, j = divmod(self.nonfinite, M)
            v = float(self.S.block(i, i + 1, j, j + 1)[0, 0])
            raise ValueError(f"{name} has a non-finite entry {v!r} at ({i}, {j}) (e.g. models with disjoint "
                             "support); InPCA needs finite distances")
        scale = self.max_abs
        atol = tol * scale
        lo = self.minimum[0] if self.minimum[1] >= 0 else 0.0
        failed = lo < -atol or float(np.abs(self.diag).max()) > atol or self.asym[0] > atol
        if scale == 0.0 or (failed and scale <= COINCIDE_ATOL):
            raise ValueError(coincide_message(M, scale))
        if lo < -atol:
            i, j = divmod(self.minimum[1], M)
            raise ValueError(f"{name} has a negative entry {lo!r} at ({i}, {j}) beyond the rounding "
                             f"tolerance {atol:.3g} (= {tol:g} * max|{name}|)")
        bad_diag = np.abs(self.diag) > atol
        if bad_diag.any():
            i = int(np.argmax(bad_diag))
            raise ValueError(f"{name} has a non-zero diagonal entry {float(self.diag[i])!r} at ({i}, {i}) beyond "
                             f"the tolerance {atol:.3g}")
        if self.asym[0] > atol:
            d, i, j = self.asym
            raise ValueError(f"{name} is not symmetric at ({i}, {j}) / ({j}, {i}): |difference| = "
                             f"{d:.3g} beyond the tolerance {atol:.3g}")
        r = self.row_sums / M
        g = float(r.mean())
        rs, gs = r - self.shift, g - self.shift  # the identity holds for D - s: J 1 = 0
        fro2 = 0.25 * (math.fsum(self._sumsq) - 2.0 * M * math.fsum(rs * rs) + M * M * gs * gs)
        fro2 = max(fro2, 0.0)
        if fro2 == 0.0:
            raise ValueError(equidistant_message(M))
        w_diag = -0.5 * (self.diag - 2.0 * r + g)
        return MatrixStats(r, r.copy(), fro2, w_diag)


def tile_shift(S: StoredMatrix) -> float:
    """The shift ``s`` of :class:`StoredStats`: the mean of the first tile (one tile read).

    Examples
    --------
    >>> import numpy as np
    >>> tile_shift(StoredMatrix(np.array([[0.0, 2.0, 9.0], [2.0, 0.0, 9.0], [9.0, 9.0, 0.0]]), tile=2))
    1.0
    """
    i0, i1 = S.edges[0]
    return float(S.block(i0, i1, i0, i1).mean())


def stored_stats(S: StoredMatrix, tol: float) -> MatrixStats:
    """Validate a stored square ``D`` tile pair by tile pair and return its :class:`MatrixStats`.

    The statistics-only pass (the stored InPCA fit folds the same scans into its first product
    pass, :class:`linsim.inpca._eigensolvers.CenteredOperator`).

    Examples
    --------
    >>> import numpy as np
    >>> D = np.array([[0.0, 4.0], [4.0, 0.0]])
    >>> stored_stats(StoredMatrix(D), tol=1e-9).diagonal.tolist()   # diag W: points -1, +1
    [1.0, 1.0]
    """
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"{S.name} must be square (M, M); got shape {S.shape}")
    acc = StoredStats(S, tile_shift(S))
    e = S.edges

    def scan(I, J):
        (i0, i1), (j0, j1) = e[I], e[J]
        A = S.block(i0, i1, j0, j1)
        return acc.scan(A, None if I == J else S.block(j0, j1, i0, i1), I, J)

    for _, sc in S.map_tile_pairs(scan):
        acc.add(sc)
    return acc.finish(tol)


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

    Examples
    --------
    >>> import numpy as np
    >>> D, st = in_memory_stats(np.array([[0.0, 4.0], [4.0, 0.0]]), tol=1e-9)
    >>> st.row_means.tolist(), st.frobenius_sq, st.diagonal.tolist()   # points -1, +1
    ([2.0, 2.0], 4.0, [1.0, 1.0])
    """
    # one torch thread: the pass is ~1000 small tile operations, memory-bound; with two threads
    # on a loaded 2-core machine each of them waits for the busy core (M = 20000: 0.9-1.2 s
    # quiet with two threads, 1.3 s with one; 10-20 s with two at load 5-6, 2.9 s with one)
    with thread_limit(1):
        return _in_memory_stats(D, tol)


def _in_memory_stats(D, tol: float):
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
