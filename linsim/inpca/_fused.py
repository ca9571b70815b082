"""The fused Bhattacharyya kernel for small and medium class counts (CPU, numba).

For one output tile -- rows ``a`` of one ensemble against a block of columns ``b`` of another --
and the samples of one chunk, the kernel keeps a running product ``Q_ab`` of the per-sample
Bhattacharyya coefficients ``BC_i = sum_c x_aic y_bic`` (``x = sqrt(p)``) and adds ``log Q`` to
an accumulator only when the product falls below ``2**-500`` and at the end, so that a
logarithm costs almost nothing.  The innermost loop runs over the columns of the block (unit
stride, vectorized by LLVM, the class sum unrolled: the class count is a compile-time constant,
carried by the *length* of a tuple argument so that numba compiles one specialization per ``C``
and caches it).  The coefficients of one sample are never written to memory: ``Q`` is updated
in place, once per (pair, sample).

Exactness (the same rules as the GEMM path of :mod:`linsim.inpca.distances`):

* all arithmetic is float64 in a fixed order (no reassociation; ``fastmath`` only allows fused
  multiply-add, which rounds once instead of twice), so the result does not depend on tiles,
  threads or workers;
* coefficients are at most 1, so ``Q`` only decreases; it is checked every ``group`` samples,
  and while ``Q >= 2**-900`` at a check, every intermediate product was a normal float64 number
  (no precision lost);
* an entry whose product fell below ``2**-900`` is *flagged* (its partial value is discarded)
  and recomputed by the caller exactly in the log domain, ``sum_i logsumexp_c((log p + log q)/2)``
  (:func:`exact_pair_logbc`); disjoint support gives ``-inf`` there, hence distance ``+inf``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["FLUSH", "TINY", "blocks_of", "exact_pair_logbc", "fused_impl", "prepare_blocks", "tile_logbc"]

#: running products of coefficients are logged (and restarted at 1) once they fall below this
FLUSH = 2.0 ** -500
#: entries whose product fell below this are recomputed exactly in the log domain
TINY = 2.0 ** -900


@functools.cache
def _kernel():
    import numba

    @numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy", boundscheck=False)
    def kernel(ctag, Xa, aoff, ta, Yb, tb, out, flag, group, flush, tiny):  # pragma: no cover - compiled
        C = len(ctag)  # compile-time constant: the class loop below is unrolled
        n = Xa.shape[0]
        Q = np.ones((ta, tb))
        acc = np.zeros((ta, tb))
        for g0 in range(0, n, group):
            g1 = min(n, g0 + group)
            for i in range(g0, g1):
                Yi = Yb[i]
                Xi = Xa[i]
                for a in range(ta):
                    x = Xi[:, aoff + a]
                    q = Q[a]
                    for j in range(tb):
                        s = 0.0
                        for c in range(C):
                            s += x[c] * Yi[c, j]
                        q[j] *= s
            for a in range(ta):
                for j in range(tb):
                    v = Q[a, j]
                    if v < flush:
                        if v < tiny:
                            flag[a, j] = 1
                        elif flag[a, j] == 0:
                            acc[a, j] += math.log(v)
                        Q[a, j] = 1.0
        for a in range(ta):
            for j in range(tb):
                out[a, j] = 0.0 if flag[a, j] else acc[a, j] + math.log(Q[a, j])

    return kernel


@functools.cache
def _prep_kernel():
    import numba

    @numba.njit(cache=True, nogil=True, error_model="numpy")
    def prep(E, tol, normalize, X, logz):  # pragma: no cover - compiled
        """From ``E[m, i, c] = sqrt(p)`` (unnormalized): ``X[i, c, m] = sqrt(p / Z)`` and
        ``logz[i, m] = log Z``.  Returns -1, or the flat index ``m * s + i`` of the first row with
        ``|log Z| > tol`` (NaN and +inf included)."""
        w, s, C = E.shape
        bad = -1
        for i in range(s):
            for m in range(w):
                z = 0.0
                for c in range(C):
                    v = E[m, i, c]
                    z += v * v
                lz = math.log(z)
                if not abs(lz) <= tol:  # the caller raises the located error
                    if bad < 0 or m * s + i < bad:
                        bad = m * s + i
                    continue
                inv = 1.0 / math.sqrt(z) if normalize else 1.0
                logz[i, m] = lz if normalize else 0.0
                for c in range(C):
                    X[i, c, m] = E[m, i, c] * inv
        return bad

    return prep


def prepare_blocks(lp, s0, s1, width, tol, normalize=True):
    """Square-root probabilities of samples ``s0:s1`` in model blocks of ``width``.

    The exponentials are taken by numpy (vectorized), the norms, normalization and the
    transposition to the kernel's layout in one compiled pass.

    Parameters
    ----------
    lp : ndarray (M, n, C) float32 or float64 (any strides)
    tol : float
        Accepted ``|log Z|`` per (model, sample).

    Returns
    -------
    list of (X (s, C, w) float64, logz (s, w) float64) per block, or None when some row fails the
    tolerance (the caller then runs the located checks).
    """
    M, _, C = lp.shape
    s = s1 - s0
    out = []
    k = _prep_kernel()
    for m0 in range(0, M, width):
        w = min(M, m0 + width) - m0
        E = np.multiply(lp[m0:m0 + w, s0:s1], 0.5, dtype=np.float64)
        np.exp(E, out=E)
        X = np.empty((s, C, w))
        logz = np.empty((s, w))
        if k(E, float(tol), bool(normalize), X, logz) >= 0:
            return None
        out.append((X, logz))
    return out


def tile_logbc(Xa, aoff, ta, Yb, tb, group):
    """``sum_i log BC_i`` over the samples of ``Xa``/``Yb`` for one tile.

    Parameters
    ----------
    Xa : ndarray (s, C, wa) float64, C-contiguous
        Square-root probabilities of a block of row models (models last); the tile's rows are
        ``aoff .. aoff + ta - 1`` of this block.
    Yb : ndarray (s, C, wb) float64, C-contiguous
        The same for the column block; the tile's columns are ``0 .. tb - 1``.
    group : int
        Samples between checks of the running product.

    Returns
    -------
    (out, flag) : ndarray (ta, tb) float64 and ndarray (ta, tb) uint8
        ``out`` holds the sums, 0 where ``flag`` is 1 (products that fell below :data:`TINY`:
        recompute those exactly with :func:`exact_pair_logbc`).
    """
    C = Xa.shape[1]
    out = np.empty((ta, tb))
    flag = np.zeros((ta, tb), dtype=np.uint8)
    _kernel()((0,) * C, Xa, aoff, ta, Yb, tb, out, flag, group, FLUSH, TINY)
    return out, flag


def exact_pair_logbc(La, Lb):
    """Exact ``log BC`` per sample, ``logsumexp_c((log p + log q) / 2)``, for paired rows.

    Parameters
    ----------
    La, Lb : ndarray (k, s, C) float64
        Normalized log-probabilities of the two models of each of ``k`` pairs.

    Returns
    -------
    ndarray (k, s) float64, ``-inf`` where the pair has disjoint support on a sample.
    """
    H = 0.5 * (La + Lb)
    with np.errstate(invalid="ignore"):
        m = H.max(axis=-1, keepdims=True)
    fin = np.isfinite(m)
    m0 = np.where(fin, m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.exp(H - m0).sum(axis=-1)) + m0[..., 0]
    return np.where(fin[..., 0], out, -np.inf)


# ----------------------------------------------------------------------------- in-memory driver

#: rows per tile and columns per block (the kernel's working set: Q and its accumulator,
#: 2 * 64 * 256 float64 = 256 KiB, stay in L2; one sample of the column block, C * 256 float64,
#: in L1)
ROWS = 64
COLS = 256
GROUP = 16


def fused_impl(tp, tq, *, prepare, logprobs, out, tile=None, group=None, workers=1):
    """Sum of ``log BC`` over all samples for every pair, with the fused kernel.

    Parameters
    ----------
    tp, tq : objects with ``shape`` (M, n, C); ``tq`` None for the self case
    prepare : callable ``(which, s0, s1, width) -> list of (X, logz)``
        Square-root probabilities of samples ``s0:s1`` of ensemble ``which`` (0: p, 1: q) in
        model blocks of ``width``: ``X`` (s, C, w) float64 C-contiguous and the log normalizers
        ``logz`` (s, w) (checked inputs).
    logprobs : callable ``(which, models, s0, s1) -> ndarray (k, s, C)``
        Normalized float64 log-probabilities of the given models (for the exact recomputation).
    out : ndarray (Ma, Mb) float64, C-contiguous
        Receives ``sum_i log BC_i`` (upper triangle only in the self case, as computed tiles).
    tile, group, workers
        Rows per tile (columns per block: ``max(tile, 4 * tile)`` rounded), samples per check,
        threads.

    Returns
    -------
    (count, first)
        Number of pairs with disjoint support and the first one ``(a, b, sample)``
        (lexicographic in ``(a, b)``, then the smallest sample), or ``(0, None)``.
    """
    import concurrent.futures

    sym = tq is None
    Ma, n, C = tp.shape
    Mb = Ma if sym else tq.shape[0]
    ta_max = ROWS if tile is None else int(tile)
    tb_max = COLS if tile is None else int(tile)
    g = GROUP if group is None else int(group)
    per_sample = 8 * C * 2 * (Ma + (0 if sym else Mb))
    s_chunk = max(1, min(n, (256 << 20) // max(per_sample, 1)))

    col_blocks = [(b0, min(Mb, b0 + tb_max)) for b0 in range(0, Mb, tb_max)]
    tasks = []  # (a0, a1, block index)
    for a0 in range(0, Ma, ta_max):
        a1 = min(Ma, a0 + ta_max)
        first_block = 0 if not sym else a0 // tb_max
        tasks += [(a0, a1, jb) for jb in range(first_block, len(col_blocks))]
    # a row tile never straddles two blocks of tb_max models (tb_max is a multiple of ta_max)
    pool = concurrent.futures.ThreadPoolExecutor(workers) if workers > 1 else None
    disjoint = {}
    try:
        for s0 in range(0, n, s_chunk):
            s1 = min(n, s0 + s_chunk)
            rows = [X for X, _ in prepare(0, s0, s1, tb_max)]
            cols = rows if sym else [X for X, _ in prepare(1, s0, s1, tb_max)]

            def run(task):
                a0, a1, jb = task
                b0, b1 = col_blocks[jb]
                Y = cols[jb]
                if sym and b0 < a0:  # diagonal block: only the columns from the tile's first row on
                    Y = np.ascontiguousarray(Y[:, :, a0 - b0:])
                    b0 = a0
                part, flag = tile_logbc(rows[a0 // tb_max], a0 % tb_max, a1 - a0, Y, b1 - b0, g)
                out[a0:a1, b0:b1] += part
                if flag.any():
                    ia, ib = np.nonzero(flag)
                    return ia + a0, ib + b0
                return None

            results = list(pool.map(run, tasks)) if pool is not None else [run(t) for t in tasks]
            flagged = [r for r in results if r is not None]
            if flagged:
                fa = np.concatenate([f[0] for f in flagged])
                fb = np.concatenate([f[1] for f in flagged])
                if sym:
                    keep = fa < fb
                    fa, fb = fa[keep], fb[keep]
                _redo_exact(fa, fb, s0, s1, logprobs, sym, out, disjoint)
            del rows, cols
    finally:
        if pool is not None:
            pool.shutdown()
    if not disjoint:
        return 0, None
    first = min(disjoint.items())
    return len(disjoint), (first[0][0], first[0][1], first[1])


def blocks_of(X, width):
    """Contiguous ``(s, C, width)`` numpy copies of consecutive model blocks of ``X`` (s, M, C)."""
    XT = X.permute(0, 2, 1)
    M = X.shape[1]
    return [np.ascontiguousarray(XT[:, :, m0:min(M, m0 + width)].numpy()) for m0 in range(0, M, width)]


def _redo_exact(fa, fb, s0, s1, logprobs, sym, out, disjoint, batch=4096):
    """Exact log-domain sums for flagged pairs over samples ``s0:s1`` (added to ``out``)."""
    for k0 in range(0, len(fa), batch):
        a, b = fa[k0:k0 + batch], fb[k0:k0 + batch]
        La = logprobs(0, a, s0, s1)
        Lb = logprobs(0 if sym else 1, b, s0, s1)
        lbc = exact_pair_logbc(La, Lb)  # (k, s)
        out[a, b] += lbc.sum(axis=1)
        bad = np.isneginf(lbc)
        for j in np.flatnonzero(bad.any(axis=1)):
            key = (int(a[j]), int(b[j]))
            i = int(np.argmax(bad[j])) + s0
            if key not in disjoint or i < disjoint[key]:
                disjoint[key] = i
