"""The fused Bhattacharyya kernel for small and medium class counts (CPU, numba, register tiles).

What it computes: for every pair ``(a, b)`` of an output block and the samples ``i`` of one
chunk, the sum ``sum_i log BC_i(a, b)`` with ``BC_i = sum_c x_aic y_bic`` and ``x = sqrt(p)``.

How (a GEMM-style micro-kernel, one output *register tile* at a time)
--------------------------------------------------------------------
* **Panels.** The square-root probabilities are packed into panels: ``R`` row models
  (``W = 8 V`` column models) side by side, contiguous in memory for each (sample, class):
  ``Xp[panel, i, c, 0:R]`` and ``Yp[panel, i, c, 0:W]``.  Panels are padded with the uniform
  distribution (``x_c = C**-1/2``), whose coefficient with any distribution is at least
  ``C**-1/2``, so padding never underflows; padded entries are discarded.
* **Register tile.** For one row panel against one column panel, an ``R x W`` tile of
  running products ``Q_ab`` lives in ``R * V`` vector registers (:mod:`linsim.inpca._simd`,
  8 float64 lanes) across all the samples of a sample block.  Per sample the ``R x W``
  coefficients are accumulated class by class in another ``R * V`` registers (one broadcast of
  ``x_ac`` per row, ``V`` vector loads of ``y_.c`` per class, ``R * V`` fused multiply-adds)
  and multiplied into ``Q``.  Coefficients never touch memory; ``Q`` goes to memory once per
  sample block (``SBLOCK`` samples) and when an entry of the tile is flagged (below).  On an
  AVX-512 host the tile is 6 x 16 (24 ``zmm`` registers of the 32); elsewhere 3 x 8 (each
  vector is two ``ymm`` registers).
* **Exact renormalization.** Every ``group`` samples (counted from the chunk start) the tile
  is checked in registers, without branching on the data: every entry below :data:`FLUSH`
  (``2**-24``) is multiplied by :data:`RESCALE` (``2**1000``) and ``-1000`` is added to its
  exponent count ``acc`` (both exact: a power of two, and small integers in float64), so ``Q``
  stays in ``[2**-24, 2**976)`` after a check and ``Q 2**acc`` is always the exact running
  product of the rounded coefficients.  Each entry takes one logarithm at the very end: the
  product is split canonically as ``m 2**E`` (``frexp``, ``m`` in ``[1/2, 1)``) and gives
  ``log m + E log 2``, the same numbers however often and whenever the entry was rescaled
  (scaling by a power of two is exact, so the mantissas of the running product do not depend
  on it).  An entry below :data:`TINY` (``2**-1020``, a normal number 4x the smallest one) at
  a check is *flagged* (its value is discarded; the tile takes the scalar rule of
  ``_helpers()``' ``flush_tile``, the same rule entry by entry) and recomputed by the caller
  exactly in the log domain, ``sum_i logsumexp_c((log p + log q)/2)``
  (:func:`linsim.inpca._exact.redo_exact`, compiled; :func:`exact_pair_logbc` is the numpy
  oracle); disjoint support gives ``-inf`` there, hence distance ``+inf``.
  Coefficients are at most 1 (to a few ulps), so ``Q`` only decreases between checks; while
  ``Q >= 2**-1020`` at a check, every intermediate product was a normal float64 number: no
  precision lost.  Between two checks an entry may thus lose 996 bits (16 samples with
  coefficients of about ``2**-62``, 43 nats, on average) before it takes the exact path (about
  4x the normal path's time when every pair is flagged, ``benchmarks/bench_exact_path.py``).  Confident outputs that disagree on every sample stay on the fast path (pairs
  sent there at n = 1000, C = 10, against the former rule: ``frexp`` of the entries below
  ``2**-500``, flag below ``2**-1000``, a 500-bit margin): logits 30 x N(0, 1), M = 400 (median
  distance 13.5 nats): 0 of 79 800 pairs (formerly 39: 0.27 s instead of 0.05 s); 40 x N(0, 1),
  M = 300 (18 nats): 0 of 44 850 (formerly 22 996); 60 x N(0, 1) (27 nats): 122 (formerly
  44 732).  A check costs the same whether or not entries are rescaled (a compare, a masked
  multiply and the exponent counts, about 5% of the kernel's time at ``group = 16``), so the
  margin is not traded against speed; ``group = 32`` would halve that 5% but flags pairs from
  ~18 nats a sample on.
* **Cache blocking.** A task is a block of row panels against a block of column panels
  (default 192 x 256 models: 2-4% faster than 96 x 256, each column panel serving twice the
  row panels); inside it, sample blocks are outermost, then column panels
  (one column panel of a sample block, ``SBLOCK * C * W`` float64, stays in L1/L2 while the
  row panels stream through; ``SBLOCK = 128`` was 5-10% faster than 32 at M = 2000,
  n = 1000, C = 10).  In the self case only the micro-tiles that touch the upper
  triangle are computed.

* **Sample chunks.** The panels are built for a chunk of samples at a time (about
  :data:`PANEL_BYTES` of memory, reused from chunk to chunk).  When all the tile states fit in
  :data:`STATE_BYTES` they are carried from chunk to chunk (chunk boundaries on the flush
  grid), so each entry takes one logarithm at the very end and the chunking has no effect on
  the result; otherwise each chunk ends with ``log Q`` and the states are reset.  Entries
  flagged for the exact recomputation are recomputed over all the samples their state covered.
  With threads, the next chunk's panels are prepared by one thread, in a second set of panel
  memory, while the others run the current chunk's tasks (the preparation is memory-bound and
  gained little from a second thread: ~0.06 s of a 0.32 s call at M = 2000, n = 1000, C = 10;
  overlapped, the call took 0.29-0.31 s against 0.29-0.33 s in interleaved runs).

Exactness and reproducibility: every entry goes through the same float64 operations in the
same order whatever the tile shape, task split, worker count or host (``BC`` as
``fma(x_{C-1}, y_{C-1}, ... fma(x_1, y_1, x_0 * y_0))``, then ``Q *= BC``; the flush decision
of an entry depends on its own ``Q`` only; ``fma`` is exact on every target; no reassociation
is allowed anywhere), so the results are bitwise independent of all of them.  Accuracy: the
relative error of each ``BC`` is a few ulps, so ``|error of d| <~ 1e-16 * (1 + d)``; measured
4.4e-16 at M = 2000, n = 1000, C = 10 (``benchmarks/bench_distances.py``).

Speed (2-core AMD EPYC, AVX-512, 6 x 16 tiles, C = 10, M = 2000, n = 1000; flops counted as
``2 C`` per pair and sample; thread CPU time of one worker, so that the shared machine's load
does not enter): the whole call takes about 0.60 CPU-s (0.71 before the in-register rescaling,
the larger task blocks and the one-pass mirror), of which the kernel 0.46 s (87 GF/s; 22 ns
per tile and sample, against 16.4 ns for its 132 vector operations at the measured 8 vector
FMAs per ns, and 18-19 ns when one task's panels are reused from cache), the preparation
(exponentials, norms, packing) 0.085 s and the rest (final logarithms, mirror, states) 0.04 s.
Tried and not kept (interleaved A/B, same run): one 48-wide panel layout shared by rows and
columns (one packing pass instead of two; kernel 0.50 -> 0.72 s, the per-sample stride spans a
whole panel), sample blocks of 16-64 (3-10% slower: each register-tile visit's start and end
cost more than the L1 reuse they buy), a class loop unrolled for C = 10 (no change), check
groups of 32 (half of the check's ~5%, but flags from ~18 nats a sample), column-major task
order and chunks of 32-64 samples (no change), a class-major packing loop (slower).
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import queue

import numpy as np

__all__ = [
    "FLUSH",
    "RESCALE",
    "RESCALE_EXP",
    "Scratch",
    "TINY",
    "default_tile_shape",
    "exact_pair_logbc",
    "fused_impl",
    "microkernel_source",
    "pack_panels",
    "prep_width",
    "prepare_panels",
    "scratch_size",
    "tile_kernel",
]

#: running products below this at a check are multiplied by RESCALE (exact) and the exponent counted
FLUSH = 2.0 ** -24
#: ``log 2``: a tile state's ``acc`` counts binary exponents; its log-sum is ``log Q + acc log 2``
LN2 = math.log(2.0)
#: entries whose product fell below this are recomputed exactly in the log domain
TINY = 2.0 ** -1020
#: an entry below FLUSH at a check is multiplied by ``RESCALE = 2**RESCALE_EXP`` (exact)
RESCALE_EXP = 1000
RESCALE = 2.0 ** RESCALE_EXP
#: samples between checks of the running products (default ``group``)
GROUP = 16
#: samples per block of the micro-kernel's loop (rounded to a multiple of ``group``)
SBLOCK = 128
#: default task block (models): rows x columns of the output per task
ROWS = 192
COLS = 256
#: working memory of one block of the preparation pass (sets its width in models, rounded to a
#: multiple of both panel widths): small enough to stay in L2 between its passes
PREP_BYTES = 512 << 10


def default_tile_shape() -> tuple[int, int]:
    """Register tile ``(R, V)``: ``R`` rows by ``V`` vectors of 8 columns, for this host.

    6 x 2 (6 x 16 models, 24 of the 32 AVX-512 registers for ``Q`` and the coefficients) with
    AVX-512, else 3 x 1 (3 x 8 models; each 8-lane vector is two AVX2 registers: 12 of 16).

    Examples
    --------
    >>> default_tile_shape() in ((6, 2), (3, 1))
    True
    """
    from ._simd import has_avx512

    return (6, 2) if has_avx512() else (3, 1)


def microkernel_source(R: int, V: int) -> str:
    """Python source of the block kernel for an ``R x 8V`` register tile (compiled by numba).

    Every ``q``/``s`` variable is one 8-lane vector (:mod:`linsim.inpca._simd`); the generated
    code is straight-line in the tile so that the vectors stay in registers.

    Examples
    --------
    >>> src = microkernel_source(2, 1)
    >>> src.splitlines()[0]
    'def block_2x1(Xp, Yp, n, C, pa0, pa1, pb0, pb1, diag, sblock, group, Qs, acc, flag, flush, tiny):'
    >>> src.count("vfma(")
    2
    """
    if not (isinstance(R, int) and isinstance(V, int) and R >= 1 and V >= 1):
        raise ValueError(f"tile shape must be positive integers; got R={R!r}, V={V!r}")
    W = 8 * V
    RW = R * W
    tile = [(r, v) for r in range(R) for v in range(V)]
    lines = [
        f"def block_{R}x{V}(Xp, Yp, n, C, pa0, pa1, pb0, pb1, diag, sblock, group, Qs, acc, flag, flush, tiny):",
        "    nb = pb1 - pb0",
        "    for s0 in range(0, n, sblock):",
        "        s1 = min(n, s0 + sblock)",
        "        for pb in range(pb0, pb1):",
        "            pa_end = pa1",
        "            if diag:",
        f"                pa_end = min(pa1, (pb * {W} + {W - 1}) // {R} + 1)",
        "            for pa in range(pa0, pa_end):",
        f"                qoff = ((pa - pa0) * nb + (pb - pb0)) * {RW}",
    ]
    add = lines.append
    ind = " " * 16
    for r, v in tile:
        add(f"{ind}q{r}_{v} = vload(Qs, qoff + {r * W + 8 * v})")
    add(f"{ind}for g0 in range(s0, s1, group):")
    add(f"{ind}    g1 = min(s1, g0 + group)")
    add(f"{ind}    for i in range(g0, g1):")
    body = ind + " " * 8
    add(f"{body}xo = (pa * n + i) * C * {R}")
    add(f"{body}yo = (pb * n + i) * C * {W}")
    for r in range(R):
        add(f"{body}x{r} = vbcast(Xp, xo + {r})")
    for v in range(V):
        add(f"{body}y{v} = vload(Yp, yo + {8 * v})")
    for r, v in tile:
        add(f"{body}s{r}_{v} = vmul(x{r}, y{v})")
    add(f"{body}for c in range(1, C):")
    for r in range(R):
        add(f"{body}    x{r} = vbcast(Xp, xo + c * {R} + {r})")
    for v in range(V):
        add(f"{body}    y{v} = vload(Yp, yo + c * {W} + {8 * v})")
    for r, v in tile:
        add(f"{body}    s{r}_{v} = vfma(x{r}, y{v}, s{r}_{v})")
    for r, v in tile:
        add(f"{body}q{r}_{v} = vmul(q{r}_{v}, s{r}_{v})")
    # every group: an entry below TINY sends the tile to the scalar rule (which flags it);
    # otherwise, branch-free in registers, every entry below FLUSH is scaled by 2**RESCALE_EXP
    # (exact) and the exponent counted
    add(f"{ind}    if (" + " | ".join(f"vltmask(q{r}_{v}, tiny)" for r, v in tile) + ") != 0:")
    for r, v in tile:
        add(f"{ind}        vstore(Qs, qoff + {r * W + 8 * v}, q{r}_{v})")
    add(f"{ind}        _flush_tile(Qs, acc, flag, qoff, {RW}, flush, tiny)")
    for r, v in tile:
        add(f"{ind}        q{r}_{v} = vload(Qs, qoff + {r * W + 8 * v})")
    add(f"{ind}    else:")
    for r, v in tile:
        o = f"qoff + {r * W + 8 * v}"
        count = f"vsel_below(q{r}_{v}, flush, {-float(RESCALE_EXP)!r})"
        add(f"{ind}        vstore(acc, {o}, vadd(vload(acc, {o}), {count}))")
        add(f"{ind}        q{r}_{v} = vmul_below(q{r}_{v}, flush, {RESCALE!r})")
    for r, v in tile:
        add(f"{ind}vstore(Qs, qoff + {r * W + 8 * v}, q{r}_{v})")
    return "\n".join(lines) + "\n"


_JIT = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


@functools.cache
def _helpers():
    import numba

    @numba.njit(**_JIT)
    def flush_tile(Qs, acc, flag, off, k, flush, tiny):  # pragma: no cover - compiled
        for j in range(off, off + k):
            v = Qs[j]
            if v < flush:
                if v < tiny:
                    flag[j] = 1
                    Qs[j] = 1.0
                else:  # exact (a power of two), the same rule as the kernel's vector path
                    acc[j] -= RESCALE_EXP
                    Qs[j] = v * RESCALE

    @numba.njit(**_JIT)
    def finish(L, flag, R, W, na, nb, out, a0, b0, a_lim, b_lim):  # pragma: no cover - compiled
        """``out[a0 + .., b0 + ..] += L`` (the tile states' ``log Q + acc log 2``, layout
        ``(na, nb, R, W)``) for the unflagged entries inside the limits; returns the number of
        flagged ones."""
        flagged = 0
        for ja in range(na):
            for r in range(R):
                a = a0 + ja * R + r
                if a >= a_lim:
                    break
                row = out[a]
                for jb in range(nb):
                    base = ((ja * nb + jb) * R + r) * W
                    b = b0 + jb * W
                    for w in range(min(W, b_lim - b)):
                        j = base + w
                        if flag[j]:
                            flagged += 1
                        else:
                            row[b + w] += L[j]
        return flagged

    @numba.njit(**_JIT)
    def prep(E, inv, lo, hi, normalize, m0, XR, R, XW, W):  # pragma: no cover - compiled
        """From ``E[m, i, c] = sqrt(p)`` (unnormalized) of models ``m0 + m`` (``m0`` and the
        block's end on whole panels): the values divided by ``sqrt(Z)`` (when ``normalize``)
        into the panels ``XR`` (width ``R``) and, when ``W > 0``, ``XW`` (width ``W``); ``inv``
        (w, s) is working memory.  Returns -1, or the flat index ``m * s + i`` of the first row
        whose ``Z`` is outside ``[lo, hi]`` (NaN included)."""
        w, s, C = E.shape
        for m in range(w):  # pass 1, reading E in order: norms and checks
            for i in range(s):
                z = 0.0
                for c in range(C):
                    v = E[m, i, c]
                    z += v * v
                if not (lo <= z <= hi):  # the caller raises the located error
                    return m * s + i
                inv[m, i] = 1.0 / math.sqrt(z) if normalize else 1.0
        for X, P in ((XR, R), (XW, W)):  # pass 2, writing the panels in order
            if P == 0:
                continue
            for p in range(m0 // P, (m0 + w + P - 1) // P):
                mlo = p * P - m0
                k = min(P, w - mlo)
                for i in range(s):
                    o = (p * s + i) * C * P
                    for c in range(C):
                        for r in range(k):
                            X[o + c * P + r] = E[mlo + r, i, c] * inv[mlo + r, i]
        return -1

    return flush_tile, finish, prep


@functools.cache
def tile_kernel(R: int, V: int, cache: bool = True):
    """The compiled block kernel for an ``R x 8V`` register tile (cached on disk by numba).

    Call signature (all arrays 1-D C-contiguous; panel layouts as in the module docstring)::

        kernel(Xp, Yp, n, C, pa0, pa1, pb0, pb1, diag, sblock, group, Qs, acc, flag, flush, tiny)

    ``Xp`` (panels, n, C, R) and ``Yp`` (panels, n, C, 8V) flattened; the block is row panels
    ``pa0:pa1`` against column panels ``pb0:pb1``; ``Qs``/``acc`` (float64) and ``flag`` (uint8)
    hold ``(pa1 - pa0, pb1 - pb0, R, 8V)`` states (``Q`` starts at 1, the binary-exponent count
    ``acc`` at 0; the entry's ``sum_i log BC_i`` is ``log Q + acc log 2``); ``diag``
    skips the micro-tiles strictly below the diagonal (self case); ``sblock`` is a multiple of
    ``group``.  ``cache=False`` compiles without numba's disk cache (whose kernels cannot be
    inspected, e.g. with ``inspect_asm``).

    Examples
    --------
    >>> import numpy as np
    >>> k = tile_kernel(1, 1)
    >>> x = np.full((1, 1, 2, 1), 0.5 ** 0.5).ravel()             # one model, 1 sample, C = 2
    >>> y = np.tile(np.array([1.0, 0.0])[:, None], (1, 8)).ravel()  # 8 one-hot models
    >>> Q, acc, flag = np.ones(8), np.zeros(8), np.zeros(8, np.uint8)
    >>> k(x, y, 1, 2, 0, 1, 0, 1, False, 16, 16, Q, acc, flag, FLUSH, TINY)
    >>> bool(np.allclose(Q, 0.5 ** 0.5))
    True
    """
    import numba

    from . import _simd

    flush_tile = _helpers()[0]
    src = microkernel_source(R, V)
    # numba's disk cache is invalidated by this file's time stamp only: the function's name
    # carries a digest of its source and of the SIMD intrinsics, so that a change to either
    # compiles afresh instead of loading a stale kernel
    name = f"block_{R}x{V}_{_simd.source_tag(src)}"
    src = src.replace(f"def block_{R}x{V}(", f"def {name}(", 1)
    env = {"__name__": __name__, "min": min, "_flush_tile": flush_tile, "vload": _simd.vload,
           "vstore": _simd.vstore, "vbcast": _simd.vbcast, "vmul": _simd.vmul, "vfma": _simd.vfma,
           "vadd": _simd.vadd, "vltmask": _simd.vltmask, "vmul_below": _simd.vmul_below,
           "vsel_below": _simd.vsel_below}
    # compiled with this file's name so that numba's on-disk cache is keyed (and invalidated) by it
    exec(compile(src, __file__, "exec"), env)
    return numba.njit(**dict(_JIT, cache=bool(cache)))(env[name])


# ----------------------------------------------------------------------------- packing

def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def _empty_panels(M: int, s: int, C: int, P: int, buf=None) -> np.ndarray:
    """Flat panel array ``(ceil(M/P), s, C, P)`` (a prefix of ``buf`` when given, so that
    consecutive sample chunks reuse resident memory) with the padding models set to uniform."""
    nP = -(-M // P)
    size = nP * s * C * P
    X = np.empty(size) if buf is None else buf[:size]
    if nP * P > M:
        X.reshape(nP, s, C, P)[-1, :, :, M - (nP - 1) * P:] = C ** -0.5
    return X


def prepare_panels(lp, s0, s1, widths, tol, normalize=True, width=None, pool=None, bufs=None, scratch=None):
    """Normalized square-root probabilities of samples ``s0:s1`` packed into panels.

    Parameters
    ----------
    lp : ndarray (M, n, C) float32 or float64 (any strides)
        Log-probabilities.
    widths : tuple of one or two ints
        Panel widths to produce (the row and, in the self case, the column width).
    tol : float
        Accepted ``|log Z|`` per (model, sample) (``inf`` with ``normalize=False``).
    normalize : bool
        Divide by ``sqrt(Z)`` (else use the rows as given, ``log Z`` reported as 0).
    width : int, optional
        Models per preparation block (rounded to a multiple of the widths; default: a block's
        working memory of about :data:`PREP_BYTES`, so that it stays in cache between the
        passes over it); blocks are shared out over ``pool`` when given (the exponentials
        release the GIL).
    bufs : list of flat float64 arrays, optional
        Memory for the panels (one per width, large enough); the panels are prefixes of them.
    scratch : Scratch, optional
        Working memory of the blocks (arrays of ``scratch.size`` elements: a block takes one
        and puts it back, so one per thread of ``pool`` is enough), so that consecutive sample
        chunks reuse resident memory instead of fresh pages; the blocks are made narrow
        enough to fit in them.

    Returns
    -------
    list of flat float64 arrays, or None
        ``panels[k]`` has the layout ``(ceil(M / widths[k]), s, C, widths[k])``.  None when some
        row has ``|log Z| > tol`` (NaN included; the caller then runs the located checks).

    Examples
    --------
    >>> import numpy as np
    >>> lp = np.log(np.array([[[0.25, 0.75]], [[1.0, 1e-300]]]))       # M=2, n=1, C=2
    >>> (X,) = prepare_panels(lp, 0, 1, (2,), 1e-8)
    >>> X.reshape(1, 1, 2, 2)[0, 0].round(4).tolist()                  # [class][model]
    [[0.5, 1.0], [0.866, 0.0]]
    """
    M, _, C = lp.shape
    s = s1 - s0
    R = widths[0]
    W = widths[1] if len(widths) > 1 else 0
    bufs = [None, None] if bufs is None else list(bufs) + [None]
    XR = _empty_panels(M, s, C, R, bufs[0])
    XW = _empty_panels(M, s, C, W, bufs[1]) if W else np.empty(0)
    step = _step(widths)
    width = prep_width(s, C, widths) if width is None else max(step, width // step * step)
    if scratch is not None:
        fit = scratch.size // (s * (C + 1)) // step * step
        width = min(width, fit) if fit else width
        if not fit:  # too small for one panel's worth: fresh memory
            scratch = None
    prep = _helpers()[2]
    tol = float(tol)
    lo, hi = math.exp(-tol), math.exp(tol)  # |log Z| <= tol

    def one(m0):
        w = min(M, m0 + width) - m0
        buf = np.empty(width * s * (C + 1)) if scratch is None else scratch.get()
        try:
            E = buf[:w * s * C].reshape(w, s, C)
            np.multiply(lp[m0:m0 + w, s0:s1], 0.5, out=E, dtype=np.float64)
            np.exp(E, out=E)
            return prep(E, buf[w * s * C:w * s * (C + 1)].reshape(w, s), lo, hi, bool(normalize), m0, XR, R, XW, W)
        finally:
            if scratch is not None:
                scratch.put(buf)

    starts = range(0, M, width)
    bad = list(pool.map(one, starts)) if pool is not None and len(starts) > 1 else [one(m0) for m0 in starts]
    if max(bad) >= 0:
        return None
    return [XR, XW] if W else [XR]


class Scratch:
    """A pool of equal float64 work arrays shared by the threads of a preparation pass.

    Examples
    --------
    >>> sc = Scratch(1000, 2)
    >>> a = sc.get(); a.size, sc.get() is not a
    (1000, True)
    >>> sc.put(a)
    """

    def __init__(self, size: int, count: int):
        self.size = int(size)
        self._free = queue.SimpleQueue()
        for _ in range(max(1, int(count))):
            self._free.put(np.empty(self.size))

    def get(self) -> np.ndarray:
        """Take a free array (blocks until one is put back)."""
        return self._free.get()

    def put(self, arr: np.ndarray) -> None:
        """Give an array back."""
        self._free.put(arr)


def _step(widths) -> int:
    return _lcm(widths[0], widths[1]) if len(widths) > 1 and widths[1] else widths[0]


def prep_width(s: int, C: int, widths) -> int:
    """Models per preparation block for ``s`` samples of ``C`` classes: a multiple of the panel
    widths whose working memory (``s (C + 1)`` float64 per model) is about :data:`PREP_BYTES`.

    Examples
    --------
    >>> prep_width(128, 10, (6, 16))     # 48 models: 48 * 128 * 11 * 8 bytes = 528 KiB
    48
    >>> prep_width(4, 2, (6,))
    5460
    """
    step = _step(widths)
    return max(step, PREP_BYTES // (8 * s * (C + 1)) // step * step)


def scratch_size(s: int, C: int, widths) -> int:
    """Elements of one scratch array of :func:`prepare_panels` (``s`` samples, ``C`` classes).

    Examples
    --------
    >>> scratch_size(128, 10, (6, 16))
    67584
    """
    return prep_width(s, C, widths) * s * (C + 1)


def pack_panels(X, P):
    """Pack square-root probabilities ``X`` (s, M, C) into a flat ``(ceil(M/P), s, C, P)`` array.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(6.0).reshape(1, 3, 2)        # s=1, M=3, C=2
    >>> pack_panels(X, 2).reshape(2, 1, 2, 2)[1, 0].tolist()   # model 2 and a uniform pad
    [[4.0, 0.7071067811865476], [5.0, 0.7071067811865476]]
    """
    s, M, C = X.shape
    out = _empty_panels(M, s, C, P)
    nP = -(-M // P)
    view = out.reshape(nP, s, C, P)
    full = M // P
    if full:
        view[:full] = X[:, :full * P].reshape(s, full, P, C).transpose(1, 0, 3, 2)
    if full < nP:
        view[full, :, :, :M - full * P] = X[:, full * P:].transpose(0, 2, 1)
    return out


def exact_pair_logbc(La, Lb):
    """Exact ``log BC`` per sample, ``logsumexp_c((log p + log q) / 2)``, for paired rows.

    Parameters
    ----------
    La, Lb : ndarray (k, s, C) float64
        Normalized log-probabilities of the two models of each of ``k`` pairs.

    Returns
    -------
    ndarray (k, s) float64, ``-inf`` where the pair has disjoint support on a sample.

    Examples
    --------
    >>> import numpy as np
    >>> La = np.log(np.array([[[0.5, 0.5]]])); Lb = np.log(np.array([[[1.0, 1e-300]]]))
    >>> bool(np.isclose(exact_pair_logbc(La, Lb)[0, 0], np.log(np.sqrt(0.5))))
    True
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

#: memory for the packed panels of one sample chunk (reused from chunk to chunk): small enough
#: for the panels to stay in L3 while every row block re-reads the column panels...
PANEL_BYTES = 16 << 20
#: ...but at least this many samples per chunk, so that each task call has work to amortize it
MIN_CHUNK = 64
#: tile states (running product, accumulator, flag: 17 bytes per entry) are kept across sample
#: chunks, so that each entry is logged once at the end, when they fit in this many bytes
STATE_BYTES = 256 << 20


def fused_impl(tp, tq, *, prepare, logprobs, out, tile=None, group=None, workers=1, shape=None):
    """Sum of ``log BC`` over all samples for every pair, with the register-tiled kernel.

    Parameters
    ----------
    tp, tq : objects with ``shape`` (M, n, C); ``tq`` None for the self case
    prepare : callable ``(which, s0, s1, widths, pool, bufs, scratch) -> list of flat panel arrays``
        Normalized square-root probabilities of samples ``s0:s1`` of ensemble ``which``
        (0: p, 1: q) packed into panels of each of the ``widths``, in the memory ``bufs``, with
        the working memory ``scratch`` (see :func:`prepare_panels`; inputs checked there).
    logprobs : callable ``(which, models, s0, s1) -> ndarray (k, s, C)``
        Normalized float64 log-probabilities of the given models (for the exact recomputation).
    out : ndarray (Ma, Mb) float64, C-contiguous
        Receives ``sum_i log BC_i`` (the upper triangle, diagonal included, in the self case;
        entries below it are left for the caller to mirror).
    tile : int, optional
        Models per side of a task block (default 192 rows x 256 columns), rounded up to whole
        panels.
    group : int, optional
        Samples between checks of the running products (default :data:`GROUP`, 16).
    workers : int
        Threads sharing the task blocks (the kernel releases the GIL; each call is
        single-threaded).
    shape : (R, V), optional
        Register tile (default :func:`default_tile_shape`); the result does not depend on it.

    Returns
    -------
    (count, first)
        Number of pairs with disjoint support and the first one ``(a, b, sample)``
        (lexicographic in ``(a, b)``, then the smallest sample), or ``(0, None)``.

    Examples
    --------
    >>> import numpy as np
    >>> lp = np.log(np.array([[[0.5, 0.5]], [[0.9, 0.1]]]))          # M=2, n=1, C=2
    >>> prep = lambda which, s0, s1, widths, pool, bufs, scratch: prepare_panels(lp, s0, s1, widths, 1e-8)
    >>> out = np.zeros((2, 2))
    >>> fused_impl(lp, None, prepare=prep, logprobs=None, out=out)    # no pair flagged
    (0, None)
    >>> bool(np.isclose(out[0, 1], np.log(np.sqrt(0.45) + np.sqrt(0.05))))
    True
    """
    sym = tq is None
    Ma, n, C = tp.shape
    Mb = Ma if sym else tq.shape[0]
    R, V = default_tile_shape() if shape is None else shape
    W = 8 * V
    kernel = tile_kernel(R, V)
    finish = _helpers()[1]
    g = GROUP if group is None else int(group)
    sblock = g * max(1, SBLOCK // g)
    rp = max(1, -(-(ROWS if tile is None else int(tile)) // R))  # row panels per task
    cp = max(1, -(-(COLS if tile is None else int(tile)) // W))  # column panels per task
    nPa, nPb = -(-Ma // R), -(-Mb // W)
    tasks = []
    for pa0 in range(0, nPa, rp):
        pa1 = min(nPa, pa0 + rp)
        first_pb = (pa0 * R) // W if sym else 0
        tasks += [(pa0, pa1, pb0, min(nPb, pb0 + cp)) for pb0 in range(first_pb, nPb, cp)]
    tasks.sort(key=lambda t: -(t[1] - t[0]) * (t[3] - t[2]))  # stable: big blocks first
    entries = [(t[1] - t[0]) * (t[3] - t[2]) * R * W for t in tasks]
    persist = 17 * sum(entries) <= STATE_BYTES
    # Sample chunks: the two panel layouts take 8 C (padded M) bytes per sample each.  With
    # persistent states the chunk only bounds the panel memory; otherwise every chunk ends with
    # one logarithm per entry, so chunks are made as long as twice the memory allows.
    per_sample = 8 * C * (nPa * R + nPb * W)
    budget = PANEL_BYTES if persist else 4 * PANEL_BYTES
    s_chunk = max(MIN_CHUNK, budget // max(per_sample, 1))  # >= MIN_CHUNK: amortize the task calls
    if s_chunk < n:
        s_chunk = max(sblock, s_chunk // sblock * sblock)  # flush checks stay on a group grid
    s_chunk = min(n, s_chunk)
    bufs = [np.empty(-(-Ma // R) * s_chunk * C * R), np.empty(-(-Mb // W) * s_chunk * C * W)]
    # one preparation block's working memory per thread, reused by every chunk
    scratch = Scratch(max(scratch_size(s_chunk, C, w) for w in ([(R, W)] if sym else [(R,), (W,)])), workers)
    states = [None] * len(tasks)

    def state(k):
        if states[k] is None:
            states[k] = (np.ones(entries[k]), np.zeros(entries[k]), np.zeros(entries[k], dtype=np.uint8))
        return states[k]

    def finish_task(k):
        """Add the task's sums into ``out``; return its flagged (a, b) or None; reset it."""
        pa0, pa1, pb0, pb1 = tasks[k]
        Qs, acc, flag = states[k]
        na, nb = pa1 - pa0, pb1 - pb0
        a0, b0 = pa0 * R, pb0 * W
        res = None
        # Q 2**acc is the exact running product; split it canonically as m 2**E (m in [1/2, 1),
        # E an exact integer) so the result does not depend on when the entry was flushed
        m, e = np.frexp(Qs)
        acc += e
        L = np.log(m, out=Qs)  # vectorized (numpy); m in [1/2, 1) or flagged
        L += np.multiply(acc, LN2, out=acc)
        if finish(L, flag, R, W, na, nb, out, a0, b0, Ma, Mb):
            f = flag.reshape(na, nb, R, W).transpose(0, 2, 1, 3).reshape(na * R, nb * W)
            ia, ib = np.nonzero(f)
            ia, ib = ia + a0, ib + b0
            keep = (ia < Ma) & (ib < Mb)
            res = ia[keep], ib[keep]
        states[k] = None
        return res

    pool = concurrent.futures.ThreadPoolExecutor(workers) if workers > 1 else None
    pmap = (lambda f, xs: list(pool.map(f, xs))) if pool is not None else (lambda f, xs: [f(x) for x in xs])
    chunks = [(s0, min(n, s0 + s_chunk)) for s0 in range(0, n, s_chunk)]
    # with threads and several chunks, the next chunk's panels are prepared (by one thread, in a
    # second set of panel memory) while the others run the current chunk's tasks: the
    # preparation is memory-bound and scales poorly over threads, the kernel is compute-bound
    bufsets = [bufs] + ([[np.empty_like(b) for b in bufs]] if pool is not None and len(chunks) > 1 else [])

    def panels(s0, s1, bufs, pool):
        if sym:
            return prepare(0, s0, s1, (R, W), pool, bufs, scratch)
        (Xp,) = prepare(0, s0, s1, (R,), pool, bufs[:1], scratch)
        (Yp,) = prepare(1, s0, s1, (W,), pool, bufs[1:], scratch)
        return Xp, Yp

    disjoint = {}
    ks = range(len(tasks))
    try:
        cur = panels(*chunks[0], bufsets[0], pool)
        for ci, (s0, s1) in enumerate(chunks):
            Xp, Yp = cur
            s = s1 - s0
            nxt = None
            if ci + 1 < len(chunks) and len(bufsets) > 1:  # submitted first: one thread takes it
                nxt = pool.submit(panels, *chunks[ci + 1], bufsets[(ci + 1) % 2], None)

            def run(k, Xp=Xp, Yp=Yp, s=s, last=s1 == n):
                pa0, pa1, pb0, pb1 = tasks[k]
                Qs, acc, flag = state(k)
                kernel(Xp, Yp, s, C, pa0, pa1, pb0, pb1, sym, sblock, g, Qs, acc, flag, FLUSH, TINY)
                return finish_task(k) if (last or not persist) else None

            flagged = [r for r in pmap(run, ks) if r is not None]
            if flagged:  # exact recomputation over the samples these states covered
                fa = np.concatenate([f[0] for f in flagged])
                fb = np.concatenate([f[1] for f in flagged])
                if sym:
                    keep = fa < fb
                    fa, fb = fa[keep], fb[keep]
                for r0 in range(0 if persist else s0, s1, s_chunk):
                    _redo_exact(fa, fb, r0, min(s1, r0 + s_chunk), logprobs, sym, out, disjoint,
                                workers=workers)
            del Xp, Yp, cur
            if ci + 1 < len(chunks):
                cur = nxt.result() if nxt is not None else panels(*chunks[ci + 1], bufsets[0], pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # a failed chunk leaves no work behind
    if not disjoint:
        return 0, None
    first = min(disjoint.items())
    return len(disjoint), (first[0][0], first[0][1], first[1])


def _redo_exact(fa, fb, s0, s1, logprobs, sym, out, disjoint, batch=4096, workers=None):
    """Exact log-domain sums for flagged pairs over samples ``s0:s1`` (added to ``out``).

    Delegates to the compiled exact path :func:`linsim.inpca._exact.redo_exact` (register-tiled
    coefficient products with exact power-of-two rescaling, a log-sum-exp only for samples whose
    coefficient underflows); :func:`linsim.inpca._exact.redo_exact_reference` is the numpy
    log-sum-exp this function used to be, kept there as the slow reference.
    """
    from ._exact import redo_exact

    redo_exact(fa, fb, s0, s1, logprobs, sym, out, disjoint, batch, workers=workers)