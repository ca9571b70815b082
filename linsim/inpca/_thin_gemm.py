"""Products of a tile with a thin block of vectors, ``A V`` and ``A^T V``, with a register tile.

The stored InPCA fit multiplies 1024 x 1024 tiles of ``D`` by blocks of ``b ~ 20`` vectors.
OpenBLAS (its Haswell kernels, which this environment selects) reaches 43-48 GF/s on one
core on that shape in a quiet moment (0.88-0.97 ms for 1024 x 1024 by 20; 19-25 GF/s, 1.2-5 ms,
when first measured on the loaded machine): it packs the whole tile for a few columns.  This
kernel (0.39-0.40 ms in the same quiet runs, 105 GF/s) streams the tile
once instead: an ``R x 8V`` block of the product stays in registers (:mod:`linsim.inpca._simd`
8-lane vectors) while ``k`` runs over the tile's inner dimension; each step broadcasts ``R``
entries of the tile and loads ``V`` vectors of ``V`` (``R = 6``, ``V = 3``: 18 of the 32
AVX-512 registers; ``R = V = 2`` without AVX-512, where a vector is two AVX2 registers).

Every entry of the product is one chain of fused multiply-adds in the order ``k = 0, 1, ...``
(``llvm.fma``, rounded once each): the result does not depend on threads, tile position or
alignment, and it differs from any BLAS only by the order of rounding (within
``q eps sum_k |a_ik v_kj|``).

Examples
--------
>>> import numpy as np
>>> A = np.arange(12.0).reshape(3, 4); V = np.ones((4, 2))
>>> thin_matmul(A, V).tolist(), thin_matmul(A, V[:3], transpose=True).tolist()
([[6.0, 6.0], [22.0, 22.0], [38.0, 38.0]], [[12.0, 12.0], [15.0, 15.0], [18.0, 18.0], [21.0, 21.0]])
"""

from __future__ import annotations

import functools

import numpy as np

from ._simd import LANES

__all__ = ["pad_columns", "pair_matmul", "thin_matmul"]

_JIT = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")


def _kernel_source(R: int, NV: int) -> str:
    """Source of ``P[i0:i0+R, c0:c0+8NV] = op(A)[i0:i0+R] @ V[:, c0:c0+8NV]`` (flat arrays;
    ``op(A)[i, k] = A[i * sr + k * sk]``)."""
    L = LANES
    out = [f"def tile_{R}x{NV}(A, V, P, i0, c0, q, sr, sk, bp):"]
    out += [f"    a{r}_{v} = vsplat(0.0)" for r in range(R) for v in range(NV)]
    out.append("    for k in range(q):")
    out += [f"        v{v} = vload(V, k * bp + c0 + {L * v})" for v in range(NV)]
    for r in range(R):
        out.append(f"        x = vbcast(A, (i0 + {r}) * sr + k * sk)")
        out += [f"        a{r}_{v} = vfma(x, v{v}, a{r}_{v})" for v in range(NV)]
    out += [f"    vstore(P, (i0 + {r}) * bp + c0 + {L * v}, a{r}_{v})" for r in range(R) for v in range(NV)]
    return "\n".join(out) + "\n"


def _driver_source(R: int, NV: int) -> str:
    L = LANES
    return f"""
def drive(A, V, P, p, q, sr, sk, bp):
    nv = bp // {L}
    i = 0
    while i < p:
        rows = {R} if i + {R} <= p else 1
        v = 0
        while v < nv:
            if rows == {R} and v + {NV} <= nv:
                tile_{R}x{NV}(A, V, P, i, v * {L}, q, sr, sk, bp)
                v += {NV}
            elif rows == {R}:
                tile_{R}x1(A, V, P, i, v * {L}, q, sr, sk, bp)
                v += 1
            elif v + {NV} <= nv:
                tile_1x{NV}(A, V, P, i, v * {L}, q, sr, sk, bp)
                v += {NV}
            else:
                tile_1x1(A, V, P, i, v * {L}, q, sr, sk, bp)
                v += 1
        i += rows
"""


def _pair_kernel_source(R: int, NV: int) -> str:
    """Source of one strip of the fused pair product: rows ``i0:i0+R`` of ``A`` give
    ``PA[i0:i0+R] = A[i0:i0+R] @ VJ`` (in registers) and add ``A[i0:i0+R]^T @ VI[i0:i0+R]`` into
    ``PB`` (rows of ``PB`` loaded and stored once per ``k``), columns ``c0:c0+8NV``."""
    L = LANES
    out = [f"def pair_{R}x{NV}(A, VJ, VI, PA, PB, i0, c0, q, bp):"]
    out += [f"    a{r}_{v} = vsplat(0.0)" for r in range(R) for v in range(NV)]
    out += [f"    w{r}_{v} = vload(VI, (i0 + {r}) * bp + c0 + {L * v})" for r in range(R) for v in range(NV)]
    out.append("    for k in range(q):")
    out += [f"        v{v} = vload(VJ, k * bp + c0 + {L * v})" for v in range(NV)]
    out += [f"        b{v} = vload(PB, k * bp + c0 + {L * v})" for v in range(NV)]
    for r in range(R):
        out.append(f"        x = vbcast(A, (i0 + {r}) * q + k)")
        out += [f"        a{r}_{v} = vfma(x, v{v}, a{r}_{v})" for v in range(NV)]
        out += [f"        b{v} = vfma(x, w{r}_{v}, b{v})" for v in range(NV)]
    out += [f"        vstore(PB, k * bp + c0 + {L * v}, b{v})" for v in range(NV)]
    out += [f"    vstore(PA, (i0 + {r}) * bp + c0 + {L * v}, a{r}_{v})" for r in range(R) for v in range(NV)]
    return "\n".join(out) + "\n"


def _pair_driver_source(R: int, NV: int) -> str:
    L = LANES
    return f"""
def drive_pair(A, VJ, VI, PA, PB, p, q, bp):
    nv = bp // {L}
    v = 0
    while v < nv:
        w = {NV} if v + {NV} <= nv else 1
        i = 0
        while i < p:
            if i + {R} <= p and w == {NV}:
                pair_{R}x{NV}(A, VJ, VI, PA, PB, i, v * {L}, q, bp)
                i += {R}
            elif i + {R} <= p:
                pair_{R}x1(A, VJ, VI, PA, PB, i, v * {L}, q, bp)
                i += {R}
            elif w == {NV}:
                pair_1x{NV}(A, VJ, VI, PA, PB, i, v * {L}, q, bp)
                i += 1
            else:
                pair_1x1(A, VJ, VI, PA, PB, i, v * {L}, q, bp)
                i += 1
        v += w
"""


def _build(kernel_src, driver_src, shapes, prefix, driver):
    """Compile generated kernels (inlined) and their driver under digest-tagged names."""
    import numba

    from . import _simd

    kernels = "".join(kernel_src(r, v) for r, v in shapes)
    src = kernels + driver_src
    # numba's disk cache is keyed by this file's time stamp: the names carry a digest of the
    # generated source and of the intrinsics, so that a change to either compiles afresh
    tag = _simd.source_tag(src)
    env = {"__name__": __name__, "vload": _simd.vload, "vstore": _simd.vstore, "vbcast": _simd.vbcast,
           "vsplat": _simd.vsplat, "vfma": _simd.vfma}
    for r, v in shapes:
        src = src.replace(f"{prefix}_{r}x{v}(", f"{prefix}_{r}x{v}_{tag}(")
    src = src.replace(f"def {driver}(", f"def {driver}_{tag}(")
    exec(compile(src, __file__, "exec"), env)
    for r, v in shapes:  # inlined into the driver: one compiled (and cached) function
        env[f"{prefix}_{r}x{v}_{tag}"] = numba.njit(inline="always", **_JIT)(env[f"{prefix}_{r}x{v}_{tag}"])
    return numba.njit(**_JIT)(env[f"{driver}_{tag}"])


@functools.cache
def _compiled_pair():
    """The compiled fused pair driver: 4 x 24 (31 of 32 AVX-512 registers), else 1 x 16."""
    from . import _simd

    R, NV = (4, 3) if _simd.has_avx512() else (1, 2)
    shapes = sorted({(R, NV), (R, 1), (1, NV), (1, 1)})
    return _build(_pair_kernel_source, _pair_driver_source(R, NV), shapes, "pair", "drive_pair")


@functools.cache
def _compiled():
    """The compiled driver for this host's register tile (numba's disk cache keeps it)."""
    from . import _simd

    R, NV = (6, 3) if _simd.has_avx512() else (2, 2)
    shapes = sorted({(R, NV), (R, 1), (1, NV), (1, 1)})
    return _build(_kernel_source, _driver_source(R, NV), shapes, "tile", "drive")


def pad_columns(V: np.ndarray) -> np.ndarray:
    """``V`` (q, b) as a C-contiguous float64 array of ``8 ceil(b / 8)`` columns, zero padded.

    Examples
    --------
    >>> pad_columns(np.ones((2, 3))).shape
    (2, 8)
    """
    q, b = V.shape
    bp = -(-b // LANES) * LANES
    out = np.zeros((q, bp))
    out[:, :b] = V
    return out


def thin_matmul(A: np.ndarray, V: np.ndarray, *, transpose: bool = False, padded: bool = False) -> np.ndarray:
    """``A @ V`` (or ``A.T @ V``) for a C-contiguous float64 ``A`` (p, q) and a thin ``V``.

    Parameters
    ----------
    A : numpy.ndarray float64 (p, q), C-contiguous
    V : numpy.ndarray float64 (q, b), or (p, b) with ``transpose``; with ``padded`` already
        :func:`pad_columns` of such a block (then the result keeps the padding columns).
    transpose : bool
        Multiply by ``A^T`` (no transposed copy of ``A`` is made).

    Returns
    -------
    numpy.ndarray float64 (p, b) -- (q, b) with ``transpose`` -- C-contiguous.

    Examples
    --------
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> thin_matmul(A, np.eye(2)).tolist(), thin_matmul(A, np.eye(2), transpose=True).tolist()
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [2.0, 4.0]])
    """
    if A.dtype != np.float64 or not A.flags.c_contiguous or A.ndim != 2:
        raise ValueError(f"A must be a C-contiguous 2-D float64 array; got {A.dtype}, shape {A.shape}")
    p, q = A.shape
    rows, inner = (q, p) if transpose else (p, q)
    b = V.shape[1]
    Vp = V if padded else pad_columns(np.asarray(V, dtype=np.float64))
    if Vp.shape[0] != inner or Vp.dtype != np.float64 or not Vp.flags.c_contiguous or Vp.shape[1] % LANES:
        raise ValueError(f"V must have {inner} rows (float64, C-contiguous, padded: {padded}); got shape {V.shape}")
    bp = Vp.shape[1]
    P = np.empty((rows, bp))
    sr, sk = (1, q) if transpose else (q, 1)
    _compiled()(A.reshape(-1), Vp.reshape(-1), P.reshape(-1), rows, inner, sr, sk, bp)
    return P if padded else P[:, :b]


def pair_matmul(A: np.ndarray, VJ: np.ndarray, VI: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A @ VJ, A.T @ VI)`` in one pass over ``A`` (the two products of a tile and its mirror).

    ``A`` (p, q) C-contiguous float64; ``VJ`` (q, bp) and ``VI`` (p, bp) padded blocks
    (:func:`pad_columns`).  Each entry is the same FMA chain as :func:`thin_matmul` computes
    (``k``, resp. ``i``, in increasing order), so the results are bitwise those of
    ``thin_matmul(A, VJ, padded=True)`` and ``thin_matmul(A, VI, transpose=True, padded=True)``;
    one pass streams ``A`` once, where the transposed product alone reads it column strip by
    column strip.

    Examples
    --------
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> PA, PB = pair_matmul(A, pad_columns(np.eye(2)), pad_columns(np.eye(2)))
    >>> PA[:, :2].tolist(), PB[:, :2].tolist()
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [2.0, 4.0]])
    """
    if A.dtype != np.float64 or not A.flags.c_contiguous or A.ndim != 2:
        raise ValueError(f"A must be a C-contiguous 2-D float64 array; got {A.dtype}, shape {A.shape}")
    p, q = A.shape
    for name, Vx, rows in (("VJ", VJ, q), ("VI", VI, p)):
        if (Vx.dtype != np.float64 or not Vx.flags.c_contiguous or Vx.ndim != 2 or Vx.shape[0] != rows
                or Vx.shape[1] % LANES or Vx.shape[1] != VJ.shape[1]):
            raise ValueError(f"{name} must be a padded float64 block of {rows} rows; got shape {Vx.shape}")
    bp = VJ.shape[1]
    PA = np.empty((p, bp))
    PB = np.zeros((q, bp))
    _compiled_pair()(A.reshape(-1), VJ.reshape(-1), VI.reshape(-1), PA.reshape(-1), PB.reshape(-1), p, q, bp)
    return PA, PB
