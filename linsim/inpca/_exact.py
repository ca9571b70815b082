"""Exact log-domain Bhattacharyya sums for the model pairs the fused kernel flags (numba, CPU).

The fused kernel (:mod:`linsim.inpca._fused`) keeps running products of the per-sample
coefficients ``BC_i = sum_c sqrt(p_ic q_ic)`` and sends a pair to an exact recomputation when
its product fell below the flag threshold (``_fused.TINY``) at a check: confident outputs that
disagree on every sample (about 40 nats a sample or more), or one sample whose coefficient
underflows.
:func:`redo_exact` is that recomputation: ``sum_i log BC_i`` of the flagged pairs over a range
of samples, with the arguments and the bookkeeping of the fused driver's ``_redo_exact``, and the
fused driver's ``_redo_exact`` delegates to it (before, that was a numpy log-sum-exp: at
M = 120, n = 300, C = 10, logits 100 N(0, 1), one thread, ``bhattacharyya`` took 3.6 s with it
and 0.036 s with this path, equal to 1.4e-14).  :func:`redo_exact_reference` is the plain numpy version beside it (a
log-sum-exp per pair, sample and class), kept as the slow reference; :func:`exact_logbc_sums`
is the kernel on plain arrays.

How (per pair, samples in order)
--------------------------------
* **Square roots once per model.** ``x_ic = exp(l_ic / 2)`` is formed once for each model the
  pairs use (not once per pair), in float64 whatever the input dtype.
* **Coefficient.** ``BC_i = fma(x_{C-1}, y_{C-1}, ... fma(x_1, y_1, x_0 y_0))`` (class order,
  the fused kernel's formula).
* **Running product, rescaled exactly.** A coefficient ``>= LOW = 2**-900`` is multiplied into
  the pair's running product ``Q``; after every sample, a ``Q`` below ``FLOOR = 2**-100`` is
  multiplied by ``UP = 2**1000`` and ``-1000`` is added to its exponent count (both exact, as in
  the fused kernel), so ``Q`` stays in ``[2**-100, 2**900]``, ``Q BC_i >= 2**-1000`` is a normal
  number, and no product is ever rounded in the subnormal range.  One logarithm per pair at the
  end: ``Q 2**E`` is split canonically as ``m 2**E'`` (``frexp``) and gives
  ``log m + E' log 2``, the same bits however often ``Q`` was rescaled.
* **Log domain for tiny coefficients.** A sample with ``BC_i < LOW`` (its terms may have
  underflowed: probabilities like ``exp(-2500)``) is recomputed as
  ``m + log sum_c exp(h_c - m)``, ``h_c = (la_c + lb_c) / 2``, ``m = max_c h_c`` (classes in
  order, the C library's ``exp``/``log``), and added separately.  Probability zero is
  ``-inf`` and legal: disjoint support on a sample (every ``h_c = -inf``) gives ``-inf`` there,
  so the pair's sum is ``-inf`` (distance ``+inf``), and the first such sample is reported, as
  by the numpy path.  A coefficient ``>= LOW`` needs no such care: terms below ``LOW u``
  (``2**-953``) cannot change it, every term above that is a product of normal numbers, and
  the terms lost to underflow are below ``2**-1022``, ``2**-122`` of it.
* **Register tiles.** Pairs are grouped by column *panel* (``8 V`` consecutive column models)
  and ``R`` rows with pairs in that panel (:func:`default_shape`: 3 rows x 2 vectors of 8 with
  AVX-512, 3 x 1 otherwise).  The ``R x 8V`` coefficients are accumulated in vector registers
  (:mod:`linsim.inpca._simd`) and multiplied into running products held in registers for a
  block of :data:`SBLOCK` samples; one OR-ed mask test per sample sends the tile to the lane by
  lane rule (the same rule) when some coefficient is below ``LOW``.  A lane without a pair is
  computed and discarded, so a dense flagged set (whole blocks of pairs) runs near the speed
  of the fused kernel's own loop and a scattered one wastes lanes, not correctness.  Groups are
  ordered by panel, so one panel's block of samples stays in L1 while its rows stream past.
* **Threads.** A thread takes a contiguous range of groups.  Every pair goes through the same
  operations in the same order whatever its group, lane, tile shape, thread or ``batch``
  (lanes are independent; rescaling is exact), so the result is bitwise independent of the
  number of threads, of ``batch``, of ``sblock`` and of the order of the pairs.

Agreement with the log-sum-exp (numpy) path: to rounding, not bitwise
----------------------------------------------------------------------
The numpy path takes an exponential per pair, sample *and class* and a logarithm per pair and
sample: at M = 600, n = 1000, C = 10 with every pair flagged that is 1.8e9 exponentials
(tens of seconds), and no arrangement of the same operations comes near the fused kernel's
0.05-0.1 s.
The same operations would not even give the same bits: numpy's SIMD ``exp``/``log`` differ
from the C library's (which numba calls) in the last place for about 5% of the arguments on
an AVX-512 host.  So this path computes the same quantity with ``C`` multiply-adds per pair
and sample.  Error budget (``u = 2**-53``): each ``BC_i`` has a relative error of at most
about ``(C + 2) u`` (two exponentials of exact arguments within 1 ulp, ``C`` roundings of
positive terms), the product of ``n`` of them ``n (C + 3) u``, the final logarithm ``2 u`` of
the sum; the numpy path's per-sample value ``m + log S`` carries about
``u (2 |m| + max_c |h_c| + C + 2)`` (the rounding of ``la + lb`` is amplified by ``exp``), and
its pairwise sum over samples ``ceil(log2 n) u sum_i |log BC_i|``.  The tests check
``|this - numpy| <= 4 u (n (C + 4) + (ceil(log2 n) + 4) sum_i (|log BC_i| + max_c |h_ic|))``
and both against 50-digit ``mpmath`` values; this path is the more accurate of the two (its
exponentials have exact arguments ``l / 2``; the numpy path's ``(la + lb) / 2 - m`` is rounded).

Speed (2-core AMD EPYC, AVX-512, load average ~6; ``benchmarks/bench_exact_path.py``): with
every pair of M = 600, n = 1000, C = 10 flagged (logits 100 N(0, 1), ~45 nats a sample), the
kernel and its preparation take 0.09-0.10 s of one thread's CPU for all 179 700 pairs, against
0.065-0.08 s for the whole normal fused path on moderate data of the same shape.  The bad case
through :func:`linsim.inpca.bhattacharyya` (the fused pass, the
driver's ``logprobs`` callback and this path) took 4.1-4.4 times the normal path's CPU time in three benchmark runs
(4.3-5.8 times its wall time); the callback, a torch gather and ``logsumexp`` per sample chunk,
took 0.09 s of it on one thread, and 0.3-0.8 s with torch's two threads before
:func:`redo_exact` limited it.  The numpy path took 162 s there (120 s in the same callback,
called per batch of pairs), 250 times as long; the two agreed to 2.8e-14 in distance.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math

import numpy as np

__all__ = [
    "FLOOR",
    "LOW",
    "SBLOCK",
    "UP",
    "default_shape",
    "exact_logbc_sums",
    "kernel_source",
    "redo_exact",
    "redo_exact_reference",
]

#: coefficients at least this large are multiplied into the running product; smaller ones are
#: taken in the log domain
LOW = 2.0 ** -900
#: a running product below this after a sample is multiplied by :data:`UP` (exact), so it stays
#: in ``[2**-100, 2**900]`` and times a coefficient ``>= LOW`` is still a normal number
FLOOR = 2.0 ** -100
#: the exact rescaling of a running product below :data:`FLOOR` (its exponent count gets -1000)
UP = 2.0 ** 1000
#: samples per block of the pair loop (a block of a column panel stays in L1)
SBLOCK = 16
#: pairs x samples below which one thread does all the work
_THREADED_MIN_WORK = 1 << 20
_JIT = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


_HELPERS = '''
def lse_TAG(La, Lb, a, b, i, C):
    """``m + log sum_c exp(h_c - m)``, ``h_c = (La[a, i, c] + Lb[b, i, c]) / 2``, ``m = max h``."""
    m = -np.inf
    for c in range(C):
        h = 0.5 * (La[a, i, c] + Lb[b, i, c])
        if h > m:
            m = h
    if m == -np.inf:
        return -np.inf
    t = 0.0
    for c in range(C):
        t += math.exp(0.5 * (La[a, i, c] + Lb[b, i, c]) - m)
    return math.log(t) + m


def rare_TAG(bc, q, La, Lb, a, b0, i, C, gpair, g, r, lo, o, extra, fst, tb, tq):
    """One vector of row ``r`` of group ``g`` on sample ``i`` when some coefficient of the group
    is below LOW: lane by lane, the product (``q *= bc``) or the log domain (``q`` kept);
    returns the new ``q``.  Lane ``j`` is the pair ``gpair[g, r, lo + j]`` (-1: padding, reset
    to 1)."""
    vstore(tb, 0, bc)
    vstore(tq, 0, q)
    for j in range(LANES):
        v = tb[j]
        if gpair[g, r, lo + j] < 0:
            tq[j] = 1.0
        elif v >= LOW:
            tq[j] *= v
        else:
            h = lse_TAG(La, Lb, a, b0 + j, i, C)
            if h == -np.inf and fst[o + j] < 0:
                fst[o + j] = i
            extra[o + j] += h
    return vload(tq, 0)
'''


def kernel_source(R: int, V: int) -> str:
    """Python source of the pair kernel for groups of ``R`` rows by ``8 V`` columns (numba).

    The generated ``pairs_RxV(Xa, La, Yp, Lb, ga, gp, gpair, g0, g1, sblock, sums, first)``
    computes the groups ``g0 <= g < g1``: rows ``ga[g, r]`` against the lanes ``j`` of column
    panel ``gp[g]`` (column model ``8 V gp[g] + j``) where ``gpair[g, r, j] >= 0``; each such
    pair's ``sum_i log BC_i`` goes to ``sums[gpair[g, r, j]]`` and its first sample with
    disjoint support (or -1) to ``first``.  ``Xa`` is flat ``(ka, s, C)`` (``sqrt(p)``),
    ``Yp`` flat ``(panels, s, C, 8 V)``; ``La``/``Lb`` the log-probabilities ``(k, s, C)``.
    The ``R V`` coefficient vectors and running products live in registers for a block of
    ``sblock`` samples.

    Examples
    --------
    >>> src = kernel_source(2, 1)
    >>> src.count("vfma("), "def pairs_2x1(" in src
    (2, True)
    """
    W = 8 * V
    lines = [
        f"def pairs_{R}x{V}(Xa, La, Yp, Lb, ga, gp, gpair, g0, g1, sblock, sums, first):",
        "    ng = g1 - g0",
        "    s, C = La.shape[1], La.shape[2]",
        f"    T = ng * {R * W}",
        "    Q = np.ones(T)",
        "    E = np.zeros(T)",
        "    extra = np.zeros(T)",
        "    fst = np.full(T, -1, dtype=np.int64)",
        "    tb = np.empty(LANES)",
        "    tq = np.empty(LANES)",
        "    for i0 in range(0, s, sblock):",
        "        i1 = min(s, i0 + sblock)",
        "        for g in range(g0, g1):",
        "            pan = gp[g]",
        f"            o = (g - g0) * {R * W}",
        f"            yb = pan * s * C * {W}",
    ]
    add = lines.append
    for r in range(R):
        add(f"            a{r} = ga[g, {r}]")
        add(f"            xb{r} = a{r} * s * C")
        for v in range(V):
            add(f"            q{r}_{v} = vload(Q, o + {(r * V + v) * 8})")
    add("            for i in range(i0, i1):")
    add(f"                yo = yb + i * C * {W}")
    for r in range(R):
        add(f"                x{r} = vbcast(Xa, xb{r} + i * C)")
    for v in range(V):
        add(f"                y{v} = vload(Yp, yo + {v * 8})")
    for r in range(R):
        for v in range(V):
            add(f"                s{r}_{v} = vmul(x{r}, y{v})")
    add("                for c in range(1, C):")
    for r in range(R):
        add(f"                    x{r} = vbcast(Xa, xb{r} + i * C + c)")
    for v in range(V):
        add(f"                    y{v} = vload(Yp, yo + c * {W} + {v * 8})")
    for r in range(R):
        for v in range(V):
            add(f"                    s{r}_{v} = vfma(x{r}, y{v}, s{r}_{v})")
    tiles = [(r, v) for r in range(R) for v in range(V)]
    add("                if (" + " | ".join(f"vltmask(s{r}_{v}, LOW)" for r, v in tiles) + ") != 0:")
    add("                    # rare: some lane takes the log domain")
    for r, v in tiles:
        add(f"                    q{r}_{v} = rare_TAG(s{r}_{v}, q{r}_{v}, La, Lb, a{r}, pan * {W} + {v * 8}, i, C, "
            f"gpair, g, {r}, {v * 8}, o + {(r * V + v) * 8}, extra, fst, tb, tq)")
    add("                else:")
    for r, v in tiles:
        add(f"                    q{r}_{v} = vmul(q{r}_{v}, s{r}_{v})")
    add("                if (" + " | ".join(f"vltmask(q{r}_{v}, FLOOR)" for r, v in tiles) + ") != 0:")
    add("                    # exact: the lanes below FLOOR times 2**1000, -1000 counted")
    for r, v in tiles:
        off = f"o + {(r * V + v) * 8}"
        add(f"                    vstore(E, {off}, vadd(vload(E, {off}), vsel_below(q{r}_{v}, FLOOR, -1000.0)))")
        add(f"                    q{r}_{v} = vmul_below(q{r}_{v}, FLOOR, UP)")
    for r in range(R):
        for v in range(V):
            add(f"            vstore(Q, o + {(r * V + v) * 8}, q{r}_{v})")
    lines += [
        "    ln2 = math.log(2.0)",
        "    for g in range(g0, g1):",
        f"        for r in range({R}):",
        f"            for j in range({W}):",
        "                p = gpair[g, r, j]",
        "                if p >= 0:",
        f"                    k = (g - g0) * {R * W} + r * {W} + j",
        "                    m, e2 = math.frexp(Q[k])",
        "                    sums[p] = (math.log(m) + (E[k] + e2) * ln2) + extra[k]",
        "                    first[p] = fst[k]",
    ]
    return "\n".join(lines) + "\n"


def default_shape() -> tuple[int, int]:
    """Register tile ``(R, V)`` of the pair kernel for this host: 3 x 2 (AVX-512), else 3 x 1.

    Examples
    --------
    >>> default_shape() in ((3, 2), (3, 1))
    True
    """
    from ._simd import has_avx512

    return (3, 2) if has_avx512() else (3, 1)


@functools.cache
def _kernel(R: int, V: int):
    """The compiled pair kernel for an ``R x 8V`` tile, cached on disk by numba under a name
    that carries a digest of its source and of the SIMD intrinsics (a change to either
    compiles afresh instead of loading a stale kernel)."""
    import numba

    from . import _simd

    src = _HELPERS + "\n\n" + kernel_source(R, V)
    tag = _simd.source_tag(src)
    src = src.replace("_TAG", f"_{tag}").replace(f"def pairs_{R}x{V}(", f"def pairs_{R}x{V}_{tag}(")
    env = {"__name__": __name__, "np": np, "math": math, "min": min, "LOW": LOW, "UP": UP,
           "LANES": _simd.LANES, "vload": _simd.vload, "vstore": _simd.vstore, "vbcast": _simd.vbcast,
           "vmul": _simd.vmul, "vfma": _simd.vfma, "vadd": _simd.vadd,
           "vmul_below": _simd.vmul_below, "vsel_below": _simd.vsel_below, "vltmask": _simd.vltmask,
           "FLOOR": FLOOR}
    # compiled under this file's name so that numba's disk cache is keyed (and invalidated) by it
    code = compile(src, __file__, "exec")
    exec(code, env)
    for name in ("lse", "rare"):
        env[f"{name}_{tag}"] = numba.njit(**_JIT)(env[f"{name}_{tag}"])
    return numba.njit(**_JIT)(env[f"pairs_{R}x{V}_{tag}"])


def _threads(workers, work):
    if workers is not None:
        return _positive_int(workers, "workers")
    if work < _THREADED_MIN_WORK:
        return 1
    import torch

    return max(1, torch.get_num_threads())


def _check_values(L, name):
    """Raise on NaN or ``+inf`` in log-probabilities ``L (k, s, C)``, naming the first one."""
    if L.size == 0 or np.max(L) < np.inf:  # one pass; NaN propagates through max
        return
    bad = np.isnan(L) | (L == np.inf)
    if bad.any():
        m, i, c = np.unravel_index(int(np.argmax(bad)), L.shape)
        what = "NaN" if np.isnan(L[m, i, c]) else "+inf"
        raise ValueError(f"{name} contains {what}, first at model {m}, sample {i}, class {c}")


def _as_logprobs(L, name):
    L = np.asarray(L)
    if L.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64 log-probabilities; got dtype {L.dtype}")
    if L.ndim != 3:
        raise ValueError(f"{name} must have shape (models, samples, classes); got shape {L.shape}")
    if L.shape[2] == 0:
        raise ValueError(f"{name} has no classes (shape {L.shape})")
    L = np.ascontiguousarray(L, dtype=np.float64)
    _check_values(L, name)
    return L


def _as_index(idx, name, size=None, other=None):
    idx = np.asarray(idx)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-d integer array; got dtype {idx.dtype}, shape {idx.shape}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size:
        bad = np.flatnonzero((idx < 0) | (idx >= size)) if size is not None else np.flatnonzero(idx < 0)
        if bad.size:
            where = f"outside the {size} models of {other}" if size is not None else "negative"
            raise IndexError(f"{name}[{bad[0]}] = {idx[bad[0]]} is {where}")
    return idx


def _positive_int(value, name):
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def exact_logbc_sums(La, Lb, ia, ib, *, workers=None, sblock=SBLOCK, shape=None):
    """``sum_i log BC_i`` over all samples for the pairs ``(La[ia[p]], Lb[ib[p]])``.

    ``BC_i = sum_c sqrt(p_ic q_ic)`` with ``p = exp(La[a])``, ``q = exp(Lb[b])``, computed as
    the module docstring describes (register-tiled products of coefficients, rescaled exactly;
    the log domain for coefficients below :data:`LOW`); float64 throughout.

    Parameters
    ----------
    La : array (ka, n, C) float32 or float64
        Normalized log-probabilities of the row models; ``-inf`` is a zero probability
        (NaN and ``+inf`` are errors).  Normalization is not checked.
    Lb : array (kb, n, C) float32 or float64
        The same for the column models (may be ``La`` itself).
    ia, ib : array (k,) int
        Row of ``La`` and row of ``Lb`` of each pair (any order, repeats allowed).
    workers : int, optional
        Threads sharing the pairs (default ``torch.get_num_threads()`` for large problems, 1
        for small ones).  The result does not depend on it (bitwise).
    sblock : int
        Samples per cache block.  The result does not depend on it (bitwise).
    shape : (R, V), optional
        Register tile, ``R`` rows by ``8 V`` columns (default :func:`default_shape`).  The
        result does not depend on it (bitwise).

    Returns
    -------
    sums : ndarray (k,) float64
        ``sum_i log BC_i`` in nats (``<= 0`` up to rounding); ``-inf`` for a pair with disjoint
        support on some sample.
    first : ndarray (k,) int64
        The first sample with disjoint support of each pair, -1 where there is none.

    Raises
    ------
    TypeError
        Log-probabilities that are not float32/float64.
    ValueError
        Wrong ranks, mismatched ``(n, C)``, ``C = 0``, NaN or ``+inf`` (the first one named),
        index arrays that are not 1-d integers of equal length.
    IndexError
        An index outside its array (the first one named).

    Examples
    --------
    >>> import numpy as np
    >>> with np.errstate(divide="ignore"):                   # M = 2 models, n = 2, C = 2
    ...     L = np.log(np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.9, 0.1], [0.0, 1.0]]]))
    >>> sums, first = exact_logbc_sums(L, L, [0, 0], [1, 0])
    >>> float(sums[0]), int(first[0]), int(first[1])    # pair (0, 1) is disjoint on sample 1
    (-inf, 1, -1)
    >>> bool(abs(sums[1]) < 1e-15)                      # pair (0, 0): log 1, to rounding
    True
    >>> s, _ = exact_logbc_sums(L[:, :1], L[:, :1], [0], [1])           # sample 0 only
    >>> bool(np.isclose(s[0], np.log(np.sqrt(0.45) + np.sqrt(0.05))))
    True
    """
    same = Lb is La
    La = _as_logprobs(La, "La")
    Lb = La if same else _as_logprobs(Lb, "Lb")
    if La.shape[1:] != Lb.shape[1:]:
        raise ValueError(f"La and Lb must have the same (samples, classes); got shapes {La.shape} and {Lb.shape}")
    ia = _as_index(ia, "ia", La.shape[0], "La")
    ib = _as_index(ib, "ib", Lb.shape[0], "Lb")
    if ia.shape != ib.shape:
        raise ValueError(f"ia and ib must have the same length; got {ia.size} and {ib.size}")
    sblock = _positive_int(sblock, "sblock")
    if shape is not None:
        if len(shape) != 2:
            raise ValueError(f"shape must be (R, V); got {shape!r}")
        shape = (_positive_int(shape[0], "shape[0]"), _positive_int(shape[1], "shape[1]"))
    return _sums(La, Lb, ia, ib, workers, sblock, shape)


def _sqrt_rows(L):
    """``sqrt(p) = exp(L / 2)`` of ``L (k, s, C)`` as a new flat float64 array."""
    X = np.multiply(L.reshape(-1), 0.5)
    return np.exp(X, out=X)


def _sqrt_panels(X, k, s, C, W):
    """Rows ``X`` (flat ``(k, s, C)``) packed into panels of ``W`` models, flat
    ``(ceil(k / W), s, C, W)``; missing models of the last panel are 1 (their lanes are
    discarded; 1 keeps them far from the log-domain path)."""
    X = X.reshape(k, s, C)
    nP = -(-k // W)
    P = np.empty((nP, s, C, W))
    full = k // W
    if full:
        P[:full] = X[:full * W].reshape(full, W, s, C).transpose(0, 2, 3, 1)
    if full < nP:
        P[full] = 1.0
        P[full, :, :, :k - full * W] = X[full * W:].transpose(1, 2, 0)
    return P.reshape(-1)


def _groups(ia, ib, R, W, ka):
    """Register-tile groups of the pairs ``(ia, ib)`` (rows ``< ka``): up to ``R`` rows with
    pairs in one column panel (``W`` models), ordered by panel, then row.

    Returns ``(rows (ng, R), panel (ng,), pairs (ng, R, W))``; ``pairs[g, r, j]`` is the index
    (into ``ia``, ``ib``) of the pair ``(rows[g, r], W panel[g] + j)``, -1 for none.  The empty
    slots of a short group repeat its last row (with no pairs).  Raises :class:`_RepeatedPair`
    when a pair is given twice.
    """
    k = ia.size
    panel = ib // W
    key = panel * ka + ia  # one row against one panel: a "row group"
    span = int(key.max()) + 1
    if span <= 8 * k + (1 << 20):  # dense ids: counting, no sort
        present = np.zeros(span, dtype=bool)
        present[key] = True
        ids = np.flatnonzero(present)
        rgi = (np.cumsum(present) - 1)[key]
    else:
        ids, rgi = np.unique(key, return_inverse=True)
    rg_p, rg_a = ids // ka, ids % ka  # row groups in (panel, row) order
    pstart = np.ones(ids.size, dtype=bool)  # up to R consecutive row groups of one panel
    pstart[1:] = rg_p[1:] != rg_p[:-1]
    pos = np.arange(ids.size) - np.flatnonzero(pstart)[np.cumsum(pstart) - 1]
    gstart = pos % R == 0
    gid = np.cumsum(gstart) - 1
    ng = int(gid[-1]) + 1
    slot = pos % R
    rows = np.empty((ng, R), dtype=np.int64)
    rows[gid, slot] = rg_a
    counts = np.bincount(gid, minlength=ng)
    for r in range(1, R):
        short = counts <= r
        rows[short, r] = rows[short, r - 1]
    pairs = np.full((ng, R, W), -1, dtype=np.int64)
    cell = (gid[rgi] * R + slot[rgi]) * W + ib % W
    flat = pairs.reshape(-1)
    flat[cell] = np.arange(k)
    if np.count_nonzero(flat >= 0) != k:  # some cell was written twice
        seen = np.zeros(flat.size, dtype=np.int64)
        np.add.at(seen, cell, 1)
        raise _RepeatedPair(int(np.flatnonzero(seen[cell] > 1)[-1]))
    return rows, rg_p[gstart], pairs


class _RepeatedPair(ValueError):
    """A pair given twice; ``position`` is the index of one of its occurrences."""

    def __init__(self, position):
        super().__init__(position)
        self.position = position


def _sums(La, Lb, ia, ib, workers, sblock, shape=None, repeats=True):
    """:func:`exact_logbc_sums` on checked inputs (``Lb is La`` shares the square roots).
    A repeated pair is computed once (``repeats``) or raises :class:`_RepeatedPair`."""
    k = ia.size
    sums = np.empty(k)
    first = np.empty(k, dtype=np.int64)
    if k == 0:
        return sums, first
    ka, n, C = La.shape
    R, V = default_shape() if shape is None else shape
    W = 8 * V
    try:
        rows, panel, gpair = _groups(ia, ib, R, W, ka)
    except _RepeatedPair:
        if not repeats:
            raise
        u, inverse = np.unique(ia * Lb.shape[0] + ib, return_inverse=True)
        s_u, f_u = _sums(La, Lb, u // Lb.shape[0], u % Lb.shape[0], workers, sblock, shape)
        return s_u[inverse], f_u[inverse]
    Xa = _sqrt_rows(La)
    Yp = _sqrt_panels(Xa if Lb is La else _sqrt_rows(Lb), Lb.shape[0], n, C, W)
    kernel = _kernel(R, V)
    ng = rows.shape[0]
    nt = min(_threads(workers, k * n), ng)
    size = np.count_nonzero(gpair.reshape(ng, -1) >= 0, axis=1).cumsum()  # pairs up to each group
    bounds = [0] + [int(np.searchsorted(size, k * t // nt)) for t in range(1, nt)] + [ng]
    args = (Xa, La, Yp, Lb, rows, panel, gpair)
    if nt == 1:
        kernel(*args, 0, ng, sblock, sums, first)
    else:  # nt - 1 helper threads and this one (the kernel releases the GIL)
        with concurrent.futures.ThreadPoolExecutor(nt - 1) as pool:
            jobs = [pool.submit(kernel, *args, bounds[t], bounds[t + 1], sblock, sums, first)
                    for t in range(nt - 1) if bounds[t] < bounds[t + 1]]
            kernel(*args, bounds[nt - 1], ng, sblock, sums, first)
            for job in jobs:
                job.result()
    return sums, first


def _compact(*idx):
    """Sorted unique values ``u`` of the index arrays and each array's positions in ``u``."""
    lo = min(int(i.min()) for i in idx)
    hi = max(int(i.max()) for i in idx)
    mark = np.zeros(hi - lo + 1, dtype=bool)
    for i in idx:
        mark[i - lo] = True
    u = np.flatnonzero(mark) + lo
    pos = np.cumsum(mark) - 1
    return u, [pos[i - lo] for i in idx]


def _fetch(logprobs, which, models, s0, s1):
    """The callback's log-probabilities, checked, float64; called with one thread (torch's
    intra-op threads on a gather of this size cost far more than they save on a loaded
    machine: 0.47 s instead of 0.02 s for the callback's ``logsumexp`` in the bad case)."""
    from linsim.parallel import thread_limit

    name = f"logprobs({which}, ...)"
    with thread_limit(1):
        L = np.asarray(logprobs(which, models, s0, s1))
    want = (len(models), s1 - s0)
    if L.ndim != 3 or L.shape[:2] != want:
        raise ValueError(f"{name} must return shape (models, samples, classes) = ({want[0]}, {want[1]}, C); "
                         f"got {L.shape}")
    return _as_logprobs(L, name)


def redo_exact(fa, fb, s0, s1, logprobs, sym, out, disjoint, batch=4096, *, workers=None):
    """Exact ``sum_i log BC_i`` over samples ``s0:s1`` of flagged pairs, added into ``out``.

    The drop-in for the fused driver's ``_redo_exact``: the same arguments and the same
    effect, computed by :func:`exact_logbc_sums`' kernel (module docstring).

    Parameters
    ----------
    fa, fb : array (k,) int
        Row and column model of each pair (no pair twice).
    s0, s1 : int
        The samples ``s0:s1``.
    logprobs : callable ``(which, models, s0, s1) -> array (len(models), s1 - s0, C)``
        Normalized log-probabilities (float64, or float32: used in float64) of the given models
        of ensemble ``which`` (0: rows, 1: columns); called with sorted, distinct models, each
        model once per tile of the ``(a, b)`` plane, inside
        :func:`linsim.parallel.thread_limit` ``(1)`` (the caller's thread settings are restored
        after each call).
    sym : bool
        Self case: the column models are models of ensemble 0 as well.
    out : ndarray (Ma, Mb) float64
        ``out[fa[p], fb[p]] += sum_i log BC_i`` (``-inf`` for disjoint support).
    disjoint : dict
        ``(a, b) -> first sample with disjoint support`` (absolute index); a pair already there
        keeps the smaller sample.
    batch : int
        Side of the square tiles of the ``(a, b)`` index plane handled at once: memory is about
        ``4 batch (s1 - s0) C`` float64 (log-probabilities and square roots of both sides).
    workers : int, optional
        Threads (default ``torch.get_num_threads()`` for large problems, else 1).  The result
        does not depend on it (bitwise), nor on ``batch``.

    Raises
    ------
    ValueError, IndexError
        Index arrays that are not 1-d integers of equal length, negative indices, a pair
        given twice, a ``logprobs`` result of the wrong shape or with NaN / ``+inf``.

    Examples
    --------
    >>> import numpy as np
    >>> L = np.log(np.array([[[0.5, 0.5]], [[0.9, 0.1]], [[0.2, 0.8]]]))     # M=3, n=1, C=2
    >>> out, dis = np.zeros((3, 3)), {}
    >>> redo_exact(np.array([0, 1]), np.array([2, 2]), 0, 1, lambda w, m, a, b: L[m, a:b], True, out, dis)
    >>> bool(np.isclose(out[1, 2], np.log(np.sqrt(0.18) + np.sqrt(0.08)))), float(out[0, 1]), dis
    (True, 0.0, {})
    """
    fa = _as_index(fa, "fa")
    fb = _as_index(fb, "fb")
    if fa.shape != fb.shape:
        raise ValueError(f"fa and fb must have the same length; got {fa.size} and {fb.size}")
    batch = _positive_int(batch, "batch")
    if fa.size == 0 or s1 <= s0:
        return
    ta, tb = fa // batch, fb // batch
    if ta.max() == 0 and tb.max() == 0:  # one tile (the usual case): no sort here
        tiles = [(fa, fb)]
    else:
        order = np.lexsort((tb, ta))
        ta, tb, sa, sb = ta[order], tb[order], fa[order], fb[order]
        cut = np.flatnonzero((ta[1:] != ta[:-1]) | (tb[1:] != tb[:-1])) + 1
        tiles = list(zip(np.split(sa, cut), np.split(sb, cut)))
    for a, b in tiles:
        if sym:
            u, (ia, ib) = _compact(a, b)
            La = Lb = _fetch(logprobs, 0, u, s0, s1)
        else:
            ua, (ia,) = _compact(a)
            ub, (ib,) = _compact(b)
            La = _fetch(logprobs, 0, ua, s0, s1)
            Lb = _fetch(logprobs, 1, ub, s0, s1)
            if La.shape[2] != Lb.shape[2]:
                raise ValueError(f"logprobs gave {La.shape[2]} classes for the rows and {Lb.shape[2]} for the columns")
        try:
            sums, first = _sums(La, Lb, ia, ib, workers, SBLOCK, repeats=False)
        except _RepeatedPair as err:
            j = err.position  # the later of the two
            raise ValueError(f"pair ({a[j]}, {b[j]}) appears more than once in fa, fb") from None
        out[a, b] += sums
        for j in np.flatnonzero(first >= 0):
            pair = (int(a[j]), int(b[j]))
            i = int(first[j]) + s0
            if pair not in disjoint or i < disjoint[pair]:
                disjoint[pair] = i


def redo_exact_reference(fa, fb, s0, s1, logprobs, sym, out, disjoint, batch=4096, *, workers=None):
    """Slow numpy reference of :func:`redo_exact`: a log-sum-exp per pair, sample and class.

    ``out[a, b] += sum_i logsumexp_c((la_ic + lb_ic) / 2)``, max-shifted, numpy's pairwise sum
    over the samples, pairs in batches of ``batch`` (each batch holds ``2 batch (s1 - s0) C``
    float64); the same arguments and effect as :func:`redo_exact`, which agrees with it to
    rounding (bound in the module docstring).  ``workers`` is accepted for the drop-in
    signature and ignored (numpy runs in the calling thread).

    Examples
    --------
    >>> import numpy as np
    >>> L = np.log(np.array([[[0.5, 0.5]], [[0.9, 0.1]], [[0.2, 0.8]]]))
    >>> out, dis = np.zeros((3, 3)), {}
    >>> redo_exact_reference(np.array([1]), np.array([2]), 0, 1, lambda w, m, a, b: L[m, a:b], True, out, dis)
    >>> bool(np.isclose(out[1, 2], np.log(np.sqrt(0.18) + np.sqrt(0.08))))
    True
    """
    from ._fused import exact_pair_logbc  # the one numpy log-sum-exp (lazy: _fused imports this module)

    fa, fb = np.asarray(fa), np.asarray(fb)
    for k0 in range(0, len(fa), batch):
        a, b = fa[k0:k0 + batch], fb[k0:k0 + batch]
        La = np.asarray(logprobs(0, a, s0, s1), dtype=np.float64)
        Lb = np.asarray(logprobs(0 if sym else 1, b, s0, s1), dtype=np.float64)
        lbc = exact_pair_logbc(La, Lb)  # (k, s)
        out[a, b] += lbc.sum(axis=1)
        bad = np.isneginf(lbc)
        for j in np.flatnonzero(bad.any(axis=1)):
            pair = (int(a[j]), int(b[j]))
            i = int(np.argmax(bad[j])) + s0
            if pair not in disjoint or i < disjoint[pair]:
                disjoint[pair] = i
