"""Distances between models given as products of per-sample distributions.

A *model* is a set of ``n`` per-sample distributions over ``C`` classes, stored as
log-probabilities of shape ``(n, C)``; an *ensemble* of ``M`` models has shape ``(M, n, C)``.

Conventions
-----------
* **Mean over samples.** Every distance is the mean over the ``n`` samples of a per-sample
  divergence (the "intensive" convention of InPCA), so it does not grow with ``n``.
* **Bhattacharyya distance** ``d(P, Q) = -(1/n) sum_i log sum_c sqrt(p_ic q_ic)``, natural log.
  It behaves like a *squared* distance (locally 1/8 of the Fisher line element per sample),
  so InPCA uses it as is, without squaring.
* **Log domain.** Inputs are log-probabilities; ``-inf`` means probability zero and is legal.
  Nothing is clamped: a pair of models with disjoint support on some sample is at distance
  ``+inf``, and ``on_disjoint`` decides whether that warns (default), raises or is silent.
* **Normalization.** Each (model, sample) row must sum to one within ``norm_tol``
  (:data:`linsim.inpca.checks.NORM_TOL`: ``|log sum_c p_c| <= 1e-8`` for float64,
  ``1e-4`` for float32).  Rows within tolerance are used as the normalized distributions
  ``exp(logp - log Z)``, so ``d(P, P) = 0`` and ``d >= 0`` up to float64 rounding.
* **Precision.** All arithmetic is float64 whatever the input dtype; results are numpy
  float64 on the host.  Absolute error of the Bhattacharyya kernel is ~1e-15 per unit of
  distance (checked against a plain float64 loop to 1e-12 in the tests).
* **Self vs cross.** With ``logq=None`` the result is the symmetric ``(M, M)`` matrix, each
  pair computed once and mirrored, with an exact zero diagonal; otherwise ``(Ma, Mb)``.

Kernels of :func:`bhattacharyya` (a registry, :data:`BHATTACHARYYA_KERNELS`)
----------------------------------------------------------------------------
``"fused"`` (CPU, ``C <= 32`` under ``kernel="auto"``): a register-tiled numba micro-kernel
(:mod:`linsim.inpca._fused`): the square-root probabilities are packed into panels, and a tile of
6 x 16 running products (3 x 8 without AVX-512) stays in vector registers across the samples
while each sample's coefficients are accumulated class by class in registers (fused
multiply-adds) and multiplied in; every 16 samples the products below ``2**-24`` are rescaled
exactly by ``2**1000`` in registers (the exponents counted), so each pair takes one logarithm at
the end, and a pair whose product fell below ``2**-1020`` between two checks is recomputed
exactly in the log domain (as below).  Tasks of 192 x 256 models are shared out among
single-threaded workers.  ``"gemm"`` (any device, any ``C``; the CUDA path):
batched matrix products through torch, described next.  Both agree to rounding (~1e-16) and
each is deterministic whatever the worker count.  :func:`bhattacharyya_reference` is the slow
plain oracle beside them.

Out of core (:mod:`linsim.inpca.store`): with ``out=`` a zarr path or array, or memmap/zarr
inputs, the output is computed in square tiles read from row blocks of the inputs, resumably.

Algorithm of the GEMM kernel (CPU and CUDA run the same code)
-------------------------------------------------------------
Normalized square-root probabilities ``x = exp(logp / 2) / sqrt(Z)`` are formed for a chunk
of samples whose size adapts to the free memory (one exponential per entry; ``Z`` is the
squared norm of each row, checked against ``norm_tol``).  The output is cut into rectangles of
models (upper triangle only in the self case: row tiles against the columns from the tile's
own first model on).  For each rectangle and each group of ``g`` samples, a batched matrix
product gives the per-sample coefficients ``BC_i``, and one product over the group multiplies
them into a running product ``Q`` of the rectangle.  A logarithm is taken only when ``min Q``
falls below ``2**-500`` (then ``log Q`` is accumulated and ``Q`` restarts at 1) and at the end
of the chunk, so logarithms cost almost nothing.  Coefficients are at most 1, so the running
product decreases and never overflows; an entry whose product falls below ``2**-900`` (it
may have lost precision to underflow) is recomputed as ``log Q + sum_i log BC_i``, and any
sample whose coefficient is that small is recomputed exactly with
``logsumexp_c((logp + logq) / 2)``; a sample with no common support gives ``-inf`` there,
hence distance ``+inf``.  Every product and sum is float64, so the result is exact to
rounding whatever the grouping.

On CPU the rectangles are shared out among as many single-threaded workers as torch has
threads (``torch.get_num_threads()``, set to 1 inside the call and restored after), so that
each core keeps its rectangle's working set in its own cache; on CUDA one worker issues
large rectangles.  The working set is ``O(rows * cols * g)`` per worker plus the sample
chunk; an ``(n, M, M)`` tensor is never formed.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import warnings

import numpy as np
import torch

from linsim.registry import Registry

from .checks import NORM_TOL, as_float_tensor, check_log_prob_chunk, check_rank

__all__ = [
    "BHATTACHARYYA_KERNELS",
    "bhattacharyya",
    "bhattacharyya_reference",
    "hellinger",
    "symmetric_kl",
    "gaussian_bhattacharyya",
    "bernoulli_bhattacharyya",
    "DisjointSupportWarning",
]

#: products of Bhattacharyya coefficients below this are recomputed sample by sample
_TINY = 2.0 ** -900
#: running products of coefficients are logged (and restarted at 1) once they fall below this
_FLUSH = 2.0 ** -500
#: output rectangle on CPU (rows, columns) and samples per batched product: each worker's
#: buffers, 2 * (group + 1) * rows * cols float64 (4.5 MiB), stay in the shared L3 cache
_CPU_TILE = (64, 512)
_CPU_GROUP = 8
#: below this many (pair, sample) terms the CPU kernel runs in the calling thread only
_THREADED_MIN_WORK = 1 << 24
_ON_DISJOINT = ("warn", "raise", "ignore")
_LAYOUT = "(M, n, C) = (models, samples, classes)"


class DisjointSupportWarning(RuntimeWarning):
    """Two models have disjoint support on some sample: their distance is +inf.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> lp = np.log(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]), where=np.array([[[1, 0]], [[0, 1]]]) > 0,
    ...             out=np.full((2, 1, 2), -np.inf))
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     D = bhattacharyya(lp)
    >>> D[0, 1], w[0].category.__name__
    (np.float64(inf), 'DisjointSupportWarning')
    """


# ----------------------------------------------------------------------------- helpers

def _resolve_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _free_bytes(device: torch.device) -> int:
    """Free memory on ``device`` in bytes (a conservative guess when unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-Linux
        return 2 << 30


def _sample_chunk(n: int, per_sample_bytes: int, device: torch.device, group: int) -> int:
    """Number of samples per chunk: at most 1/8 of free memory and 512 MiB (CPU) of buffers."""
    cap = 512 << 20 if device.type == "cpu" else 4 << 30
    budget = min(_free_bytes(device) // 8, cap)
    s = max(group, (budget // max(per_sample_bytes, 1)) // group * group)
    return min(n, s)


def _pair_inputs(logp, logq, name_p="logp", name_q="logq"):
    tp = as_float_tensor(logp, name_p)
    check_rank(tp, 3, name_p, _LAYOUT)
    if logq is None:
        return tp, None
    tq = as_float_tensor(logq, name_q)
    check_rank(tq, 3, name_q, _LAYOUT)
    if tq.shape[1:] != tp.shape[1:]:
        raise ValueError(f"{name_p} and {name_q} must agree in (n, C); got {tuple(tp.shape)} and "
                         f"{tuple(tq.shape)}")
    return tp, tq


def _normalized_chunk(t, s0, s1, name, norm_tol, device, check=True):
    """Float64 normalized log-probs of samples s0:s1 on ``device``, layout (s, M, C)."""
    lp = t[:, s0:s1].to(device=device, dtype=torch.float64)
    if check:
        tol = NORM_TOL[t.dtype] if norm_tol is None else float(norm_tol)
        logz = check_log_prob_chunk(lp, name, 0, s0, tol)
        lp = lp - logz.unsqueeze(-1)
    return lp.transpose(0, 1).contiguous()


def _tiles(M: int, T: int):
    return [(i, min(i + T, M)) for i in range(0, M, T)]


def _blocks(Ma: int, Mb: int, Ta: int, Tb: int, sym: bool):
    """Rectangles ``(a0, a1, b0, b1)`` of the output to compute, widest first.

    Rows in tiles of ``Ta``; columns in runs of ``Tb`` starting at the row tile's first model in
    the symmetric case (so only the ``Ta x Ta`` diagonal squares are computed twice), at 0
    otherwise.
    """
    out = []
    for a0, a1 in _tiles(Ma, Ta):
        start = a0 if sym else 0
        out += [(a0, a1, b0, min(b0 + Tb, Mb)) for b0 in range(start, Mb, Tb)]
    out.sort(key=lambda r: -(r[1] - r[0]) * (r[3] - r[2]))  # stable: big blocks first
    return out


def _report_disjoint(first, count, on_disjoint):
    if first is None:
        return
    a, b, i = first
    msg = (f"{count} model pair(s) have disjoint support on some sample, so their Bhattacharyya "
           f"distance is +inf; first: models ({a}, {b}) on sample {i}")
    if on_disjoint == "raise":
        raise ValueError(msg)
    if on_disjoint == "warn":
        warnings.warn(msg, DisjointSupportWarning, stacklevel=3)


# ----------------------------------------------------------------------------- Bhattacharyya

def bhattacharyya(logp, logq=None, *, out=None, kernel="auto", device=None, tile=None, group=None,
                  norm_tol=None, on_disjoint="warn", workers=None, progress=False, on_tile=None,
                  engine=None, n_workers=None, scheduler=None):
    """Bhattacharyya distance between models, mean over samples.

    ``d(P, Q) = -(1/n) sum_i log sum_c sqrt(p_ic q_ic)`` (natural log), computed in float64
    in the log domain (see the module docstring for the algorithm and conventions).

    Parameters
    ----------
    logp : array, tensor, numpy.memmap, zarr.Array or zarr path; (M, n, C), float32 or float64
        Log-probabilities of ``M`` models on ``n`` samples over ``C`` classes; ``-inf`` is a
        legal zero probability.  Memory maps and zarr arrays are read in row blocks.
    logq : same kinds, (Mb, n, C), optional
        Second ensemble.  ``None`` gives the symmetric self-distance matrix of ``logp``.
    out : numpy.ndarray, zarr.Array or path, optional
        Where to write the result.  A float64 numpy array (or memmap) of the output shape is
        filled in place and returned.  A path (a zarr group is created or reopened there) or an
        open zarr array (square chunks, inside a group) is written tile by tile, resumably:
        finished tiles are not recomputed on a later call with the same inputs, and memory is
        bounded by the tile size (:mod:`linsim.inpca.store`); the zarr ``distance`` array is
        returned.
    kernel : {"auto", "fused", "gemm"}
        ``"fused"``: the register-tiled numba kernel (CPU, :mod:`linsim.inpca._fused`);
        ``"gemm"``: batched matrix products through torch (any device, any ``C``).  ``"auto"``:
        fused on CPU for ``C <= 32``, gemm otherwise.  Both give the same distances to rounding.
    device : str or torch.device, optional
        Where to compute; default CUDA if available, else CPU.  The result is always on the
        host.
    tile : int, optional
        Models per side of the output tiles: of the kernel (default 192 x 256 fused, 64 x 512
        gemm on CPU, 2048 on CUDA) or, with a zarr ``out``, of the store (default 1024).
    group : int, optional
        Samples between checks of the running product (fused, default 16) or per batched
        product (gemm, default 8 on CPU, 16 on CUDA).  Tuning only: the result does not depend
        on it beyond rounding.
    norm_tol : float, optional
        Tolerance on ``|log sum_c p_ic|`` per (model, sample); default 1e-8 for float64 and
        1e-4 for float32 inputs.
    on_disjoint : {"warn", "raise", "ignore"}
        What to do when some pair has disjoint support on a sample (distance ``+inf``): warn
        with :class:`DisjointSupportWarning`, raise ``ValueError``, or stay silent.  The
        message names the number of such pairs and the first pair and sample found.
    workers : int, optional
        CPU threads sharing the tiles; default ``torch.get_num_threads()`` for large problems
        and 1 for small ones.  The result does not depend on it (bitwise).
    progress : bool
        Show a tqdm bar over the tiles of a zarr ``out``.
    on_tile : callable, optional
        Called as ``on_tile(done, total)`` after each tile of a zarr ``out`` is written.
    engine, n_workers, scheduler : optional
        Fan the output tiles out to worker processes or a Dask cluster
        (:func:`linsim.parallel.get_engine`; ``DASK_SCHEDULER_ADDRESS`` counts as a scheduler
        for stored inputs or outputs); this process writes each tile as it arrives.  Bitwise
        the same result (:func:`linsim.inpca.store.tiled_bhattacharyya`).

    Returns
    -------
    numpy.ndarray float64 (M, M) or (M, Mb), or the zarr ``distance`` array
        Distances in nats per sample.  The self case has an exact zero diagonal.

    Raises
    ------
    TypeError
        Inputs that are not float32/float64 arrays or tensors.
    ValueError
        Wrong rank, mismatched ``(n, C)``, NaN, ``+inf``, rows not summing to one, disjoint
        support with ``on_disjoint="raise"``, a bad ``out`` (shape, dtype, a store made for
        other inputs).

    Examples
    --------
    >>> import numpy as np
    >>> with np.errstate(divide="ignore"):                    # log(0) = -inf: a legal zero
    ...     logp = np.log(np.array([[[0.5, 0.5]], [[0.9, 0.1]], [[1.0, 0.0]]]))   # M=3, n=1, C=2
    >>> D = bhattacharyya(logp)
    >>> D.shape, D.dtype.name
    ((3, 3), 'float64')
    >>> bool(np.isclose(D[0, 2], -np.log(np.sqrt(0.5))))     # d(uniform, one-hot) = log(2) / 2
    True
    >>> out = np.empty((3, 1))
    >>> bhattacharyya(logp, logp[:1], out=out) is out          # filled in place
    True
    """
    from . import store

    if on_disjoint not in _ON_DISJOINT:
        raise ValueError(f"on_disjoint must be one of {_ON_DISJOINT}; got {on_disjoint!r}")
    if group is not None and not (isinstance(group, (int, np.integer)) and group >= 1):
        raise ValueError(f"group must be a positive integer; got {group!r}")
    if workers is not None and not (isinstance(workers, (int, np.integer)) and workers >= 1):
        raise ValueError(f"workers must be a positive integer; got {workers!r}")
    kw = dict(kernel=kernel, device=device, group=group, norm_tol=norm_tol, workers=workers)
    to_store = out is not None and not isinstance(out, np.ndarray)
    fan_out = engine is not None or n_workers is not None or scheduler is not None
    if to_store or fan_out or store.is_stored(logp) or (logq is not None and store.is_stored(logq)):
        if to_store and tile is not None and not (isinstance(tile, (int, np.integer)) and tile >= 1):
            raise ValueError(f"tile must be a positive integer; got {tile!r}")
        return store.tiled_bhattacharyya(logp, logq, out, store_tile=tile if to_store else None,
                                         progress=progress, on_tile=on_tile, on_disjoint=on_disjoint,
                                         tile=None if to_store else tile, engine=engine,
                                         n_workers=n_workers, scheduler=scheduler, **kw)
    tp, tq = _pair_inputs(logp, logq)
    if out is not None:
        shape = (tp.shape[0], tp.shape[0] if tq is None else tq.shape[0])
        if out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"out must be a writeable C-contiguous float64 array of shape {shape}; got "
                             f"{out.dtype} {out.shape}")
    return _bhattacharyya_impl(tp, tq, tile=tile, on_disjoint=on_disjoint, check=True, out=out, **kw)


def bhattacharyya_reference(logp, logq=None):
    """Slow plain reference for :func:`bhattacharyya` (the test oracle, scipy style).

    One pair at a time: each row is normalized, ``log p - logsumexp(log p)``, and the distance is
    ``-mean_i logsumexp_c((log p_ic + log q_ic) / 2)`` with :func:`scipy.special.logsumexp`, all in
    float64.  ``O(M^2 n C)`` Python-level work: for small inputs only.  No input checks beyond
    shapes; no warnings (disjoint support simply gives ``+inf``).

    Parameters
    ----------
    logp : array_like (M, n, C)
    logq : array_like (Mb, n, C), optional (default: ``logp``, with an exact zero diagonal)

    Returns
    -------
    numpy.ndarray float64 (M, M) or (M, Mb)

    Examples
    --------
    >>> import numpy as np
    >>> lp = np.log(np.array([[[0.5, 0.5]], [[0.9, 0.1]]]))
    >>> R = bhattacharyya_reference(lp)
    >>> bool(np.isclose(R[0, 1], -np.log(np.sqrt(0.45) + np.sqrt(0.05))))
    True
    >>> bool(np.allclose(bhattacharyya(lp), R, rtol=0, atol=1e-15))
    True
    """
    import scipy.special

    A = np.asarray(logp, dtype=np.float64)
    B = A if logq is None else np.asarray(logq, dtype=np.float64)
    if A.ndim != 3 or B.ndim != 3 or A.shape[1:] != B.shape[1:]:
        raise ValueError(f"need logp (M, n, C) and logq (Mb, n, C); got {A.shape} and {B.shape}")
    A = A - scipy.special.logsumexp(A, axis=-1, keepdims=True)
    B = B - scipy.special.logsumexp(B, axis=-1, keepdims=True)
    out = np.empty((A.shape[0], B.shape[0]))
    with np.errstate(invalid="ignore"):
        for u in range(A.shape[0]):
            for v in range(B.shape[0]):
                out[u, v] = -np.mean(scipy.special.logsumexp(0.5 * (A[u] + B[v]), axis=-1))
    if logq is None:
        np.fill_diagonal(out, 0.0)
    return out


def _sqrt_prob_chunk(t, s0, s1, name, norm_tol, device, check):
    """Square-root probabilities of samples ``s0:s1``: ``(s, M, C)`` float64 on ``device``.

    Returns ``(X, logz)`` with ``logz`` ``(s, M)`` the log normalizers that were divided out
    (``None`` when ``check`` is False: the input is used as given).  The fast path takes one
    exponential per entry and gets ``Z`` as the squared norm of the row of ``X``; any row that
    fails the tolerance (NaN, +inf, unnormalized, or ``Z`` out of the float64 range) sends the
    chunk through :func:`check_log_prob_chunk`, which raises with the exact location or
    returns exact ``log Z`` (log-sum-exp) when the rows are within a user tolerance after all.
    """
    lp = t[:, s0:s1]  # (M, s, C) view of the input, any dtype/device
    M, s, C = lp.shape
    X = torch.empty((s, M, C), dtype=torch.float64, device=device)
    if lp.device == X.device:
        torch.mul(lp.transpose(0, 1), 0.5, out=X)  # cast, transpose and halve in one pass
    else:
        X.copy_(lp.transpose(0, 1))
        X.mul_(0.5)
    X.exp_()
    if not check:
        return X, None
    tol = NORM_TOL[t.dtype] if norm_tol is None else float(norm_tol)
    nrm = torch.linalg.vector_norm(X, dim=-1)  # sqrt(Z) per (sample, model)
    logz = nrm.log_().mul_(2.0)
    if bool((logz.abs() <= tol).all()):
        X.div_(torch.exp(0.5 * logz).unsqueeze(-1))
        return X, logz
    lp64 = lp.to(device=device, dtype=torch.float64)
    logz = check_log_prob_chunk(lp64, name, 0, s0, tol)  # raises on bad input; else exact log Z
    X.copy_((lp64 - logz.unsqueeze(-1)).transpose(0, 1))
    del lp64
    X.mul_(0.5).exp_()
    return X, logz.transpose(0, 1).contiguous()


def _norm_log_probs(t, logz, models, samples, s0, device):
    """Normalized float64 log-probs ``(k, C)`` of the (model, sample) pairs ``models[j],
    samples[j]`` (absolute sample indices; ``logz`` belongs to the chunk starting at ``s0``)."""
    lp = t[models.to(t.device), samples.to(t.device)].to(device=device, dtype=torch.float64)
    if logz is not None:
        lp = lp - logz[samples - s0, models].unsqueeze(-1)
    return lp


class _BCChunk:
    """One chunk of samples, shared by the workers that take its tile pairs."""

    def __init__(self, tp, tq, Xa, Xb, lza, lzb, s0, out, group, disjoint_pairs):
        self.tp, self.tq = tp, (tp if tq is None else tq)
        self.Xa, self.Xb = Xa, Xb
        self.lza, self.lzb = lza, lzb
        self.s0 = s0
        self.out = out
        self.g = group
        self.disjoint_pairs = disjoint_pairs

    def pair(self, a0, a1, b0, b1, bufs):
        """Add ``sum_i log BC_i`` over the chunk's samples to ``out[a0:a1, b0:b1]``.

        Returns the first disjoint (model a, model b, sample) found, or None.
        """
        ta, tb, g = a1 - a0, b1 - b0, self.g
        s = self.Xa.shape[0]
        xa = self.Xa[:, a0:a1]
        xbT = self.Xb[:, b0:b1].transpose(1, 2)
        cur, nxt = (b[: (g + 1) * ta * tb].view(g + 1, ta, tb) for b in bufs)
        acc = self.out[a0:a1, b0:b1]
        cur[0].fill_(1.0)  # running product of the coefficients since the last logarithm
        first = None
        for g0 in range(0, s, g):
            g1 = min(s, g0 + g)
            S = cur[1:g1 - g0 + 1]
            torch.bmm(xa[g0:g1], xbT[g0:g1], out=S)
            R = nxt[0]
            torch.prod(cur[:g1 - g0 + 1], 0, out=R)  # Q * BC_g0 * ... * BC_{g1-1}
            m = float(R.min())
            if m < _FLUSH:
                L = torch.log(R)
                if m < _TINY:
                    f = self._redo_small(S, cur[0], R, L, a0, b0, g0, g1)
                    if f is not None and first is None:
                        first = f
                acc.add_(L)
                R.fill_(1.0)
            cur, nxt = nxt, cur
        acc.add_(torch.log(cur[0]))
        return first

    def _redo_small(self, S, Q, R, L, a0, b0, g0, g1):
        """Recompute entries of ``L = log R`` whose product fell below ``_TINY`` (it may have
        lost precision): ``log Q + sum_i log BC_i``, with each ``BC_i < _TINY`` recomputed
        exactly as ``logsumexp_c((logp + logq) / 2)`` (``-inf`` for disjoint support)."""
        idx = (R < _TINY).nonzero()  # (k, 2) local tile indices
        ia, ib = idx[:, 0], idx[:, 1]
        Sk = S[:, ia, ib]  # (gg, k)
        vals = torch.log(Sk)
        exact = (Sk < _TINY).nonzero()  # (k', 2): (sample in group, entry)
        first = None
        if exact.numel():
            ts, ks = exact[:, 0], exact[:, 1]
            ea, eb = a0 + ia[ks], b0 + ib[ks]
            samples = self.s0 + g0 + ts
            La = _norm_log_probs(self.tp, self.lza, ea, samples, self.s0, S.device)  # (k', C)
            Lb = _norm_log_probs(self.tq, self.lzb, eb, samples, self.s0, S.device)
            lse = torch.logsumexp(0.5 * (La + Lb), dim=-1)  # (k',)
            vals[ts, ks] = lse
            dis = torch.isneginf(lse)
            if bool(dis.any()):
                if self.disjoint_pairs is not None:
                    self.disjoint_pairs[ea[dis], eb[dis]] = True
                # first by sample, then by entry (row-major in the tile)
                d = dis.nonzero()[:, 0]
                order = torch.argsort(ts[d] * (ia.numel() + 1) + ks[d])
                j = int(d[order[0]])
                first = (int(ea[j]), int(eb[j]), int(samples[j]))
        L[ia, ib] = torch.log(Q[ia, ib]) + vals.sum(0)
        return first


def _gemm_logbc(tp, tq, out, *, device, tile, group, norm_tol, check, workers=None, track=True):
    """GEMM path: ``sum_i log BC_i`` of every computed pair added into ``out`` (numpy (Ma, Mb),
    upper part in the self case).  Returns ``(count, first)`` of disjoint pairs."""
    dev = _resolve_device(device)
    sym = tq is None
    Ma, n, C = tp.shape
    Mb = Ma if sym else tq.shape[0]
    if tile is not None:
        Ta = Tb = int(tile)
    else:
        Ta, Tb = _CPU_TILE if dev.type == "cpu" else (2048, 2048)
    g = group if group is not None else (_CPU_GROUP if dev.type == "cpu" else 16)
    blocks = _blocks(Ma, Mb, Ta, Tb, sym)
    # CPU: tile pairs are shared out among single-threaded workers (each keeps its working set in
    # its own core's cache); CUDA, or little work: one worker with the device's own parallelism.
    n_threads = torch.get_num_threads()
    if workers is None:
        big = len(blocks) > 1 and Ma * Mb * n >= _THREADED_MIN_WORK
        workers = n_threads if (dev.type == "cpu" and big) else 1
    workers = max(1, min(int(workers), len(blocks)))

    # Per sample: the float64 square-root probabilities (+ one transient copy on the slow path).
    per_sample = 2 * 8 * C * (Ma + (0 if sym else Mb))
    s_chunk = _sample_chunk(n, per_sample, dev, g)

    acc = torch.from_numpy(out) if dev.type == "cpu" else torch.zeros(Ma, Mb, dtype=torch.float64, device=dev)
    buf_elems = (g + 1) * max((a1 - a0) * (b1 - b0) for a0, a1, b0, b1 in blocks)
    disjoint_pairs = torch.zeros(Ma, Mb, dtype=torch.bool, device=dev) if track else None
    firsts = {}
    # Each worker sets its own thread count to 1: OpenMP keeps that setting per thread, and a
    # worker left at the process default would start a full OpenMP team inside every small
    # matrix product (oversubscribed: two workers then run no faster than one).
    pool = (concurrent.futures.ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
            if workers > 1 else None)
    local = threading.local()

    def bufs():
        if not hasattr(local, "bufs"):
            local.bufs = tuple(torch.empty(buf_elems, dtype=torch.float64, device=dev) for _ in range(2))
        return local.bufs

    try:
        for ci, s0 in enumerate(range(0, n, s_chunk)):
            s1 = min(n, s0 + s_chunk)
            Xa, lza = _sqrt_prob_chunk(tp, s0, s1, "logp", norm_tol, dev, check)
            Xb, lzb = (Xa, lza) if sym else _sqrt_prob_chunk(tq, s0, s1, "logq", norm_tol, dev, check)
            chunk = _BCChunk(tp, tq, Xa, Xb, lza, lzb, s0, acc, g, disjoint_pairs)

            def run(blk, chunk=chunk):
                return chunk.pair(*blk, bufs())

            if pool is None:
                results = [run(blk) for blk in blocks]
            else:
                torch.set_num_threads(1)
                try:
                    results = list(pool.map(run, blocks))
                finally:
                    torch.set_num_threads(n_threads)
            for blk, f in zip(blocks, results):
                if f is not None:  # keyed by position: the first in (chunk, row, column) order
                    firsts.setdefault((ci, blk[0], blk[2]), f)
            del chunk, Xa, Xb, lza, lzb
    finally:
        if pool is not None:
            pool.shutdown()
    if dev.type != "cpu":
        out += acc.cpu().numpy()
    if not firsts or not track:
        return 0, None
    first = firsts[min(firsts)]
    if sym:
        count = int(torch.triu(disjoint_pairs | disjoint_pairs.T, 1).sum())
    else:
        count = int(disjoint_pairs.sum())
    return count, first


def _fused_logbc(tp, tq, out, *, device, tile, group, norm_tol, check, workers=None, track=True):
    """Fused path (CPU, numba register tiles): the same contract as :func:`_gemm_logbc`."""
    from ._fused import fused_impl, pack_panels, prepare_panels

    dev = torch.device("cpu")
    if workers is None:
        Ma, n, _ = tp.shape
        Mb = Ma if tq is None else tq.shape[0]
        workers = torch.get_num_threads() if Ma * Mb * n >= _THREADED_MIN_WORK else 1

    tens = (tp, tp if tq is None else tq)
    names = ("logp", "logq")

    def prepare(which, s0, s1, widths, pool, bufs, scratch):
        t = tens[which]
        tol = float("inf") if not check else (NORM_TOL[t.dtype] if norm_tol is None else float(norm_tol))
        res = prepare_panels(t.detach().cpu().numpy(), s0, s1, widths, tol, normalize=check, pool=pool,
                             bufs=bufs, scratch=scratch)
        if res is None:  # some row failed the tolerance: the located checks raise (or pass, rounding)
            X, _ = _sqrt_prob_chunk(t, s0, s1, names[which], norm_tol, dev, check)
            res = [pack_panels(X.numpy(), w) for w in widths]
        return res

    def logprobs(which, models, s0, s1):
        """Float64 log-probabilities of (few, flagged) models, normalized exactly."""
        m = torch.from_numpy(np.asarray(models, dtype=np.int64))
        lp = tens[which][m, s0:s1].to(torch.float64)
        if check:
            lp = lp - torch.logsumexp(lp, dim=-1, keepdim=True)
        return lp.numpy()

    return fused_impl(tp, tq, prepare=prepare, logprobs=logprobs, out=out, tile=tile, group=group,
                      workers=max(1, int(workers)))


#: kernel name -> function(tp, tq, out, *, device, tile, group, norm_tol, check, workers, track)
#: adding ``sum_i log BC_i`` into ``out`` and returning ``(count, first)`` of disjoint pairs
BHATTACHARYYA_KERNELS: Registry = Registry("Bhattacharyya kernel", callable_only=True,
                                           entries={"gemm": _gemm_logbc, "fused": _fused_logbc})
#: the fused kernel is used on CPU up to this many classes ("auto"); the GEMM path beyond
FUSED_MAX_C = 32


def _choose_kernel(kernel, dev, C):
    if kernel == "auto":
        return "fused" if (dev.type == "cpu" and C <= FUSED_MAX_C) else "gemm"
    if kernel not in BHATTACHARYYA_KERNELS:
        raise ValueError(f"kernel must be 'auto' or one of {sorted(BHATTACHARYYA_KERNELS)}; got {kernel!r}")
    if kernel == "fused" and dev.type != "cpu":
        raise ValueError(f"the fused kernel runs on the CPU only; got device {dev} (use kernel='gemm' or 'auto')")
    return kernel


def _distances(tp, tq, *, device=None, tile=None, group=None, norm_tol=None, on_disjoint="track", check=True,
               workers=None, kernel="auto", out=None):
    """Distances of in-memory tensors into ``out`` (or a new array): ``(out, count, first)``.

    ``count`` and ``first`` describe the pairs with disjoint support (tracked unless
    ``on_disjoint == "ignore"``); nothing is reported here.
    """
    dev = _resolve_device(device)
    sym = tq is None
    Ma, n, C = tp.shape
    Mb = Ma if sym else tq.shape[0]
    if tile is not None and not (isinstance(tile, (int, np.integer)) and tile >= 1):
        raise ValueError(f"tile must be a positive integer; got {tile!r}")
    name = _choose_kernel(kernel, dev, C)
    if out is None:
        out = np.zeros((Ma, Mb))
    else:
        out[...] = 0.0
    count, first = BHATTACHARYYA_KERNELS[name](tp, tq, out, device=dev, tile=tile, group=group,
                                               norm_tol=norm_tol, check=check, workers=workers,
                                               track=on_disjoint != "ignore")
    if sym:  # scale, mirror the upper triangle, zero the diagonal: one blocked pass
        from ._mirror import mirror_scale

        mirror_scale(out, -1.0 / n)  # out is C-contiguous: made here, or checked by bhattacharyya
    else:
        out *= -1.0 / n
    return out, count, first


def _bhattacharyya_impl(tp, tq, *, on_disjoint="warn", **kw):
    """:func:`_distances`, then the disjoint-support report."""
    out, count, first = _distances(tp, tq, on_disjoint=on_disjoint, **kw)
    if count and on_disjoint != "ignore":
        _report_disjoint(first, count, on_disjoint)
    return out


# ----------------------------------------------------------------------------- other divergences

def _flat_chunks(tp, tq, norm_tol, dev, check=True):
    """Yield float64 normalized log-prob chunks flattened to (M, s*C) for (tp, tq)."""
    Ma, n, C = tp.shape
    Mb = 0 if tq is None else tq.shape[0]
    s_chunk = _sample_chunk(n, 6 * 8 * C * (Ma + Mb), dev, 1)
    for s0 in range(0, n, s_chunk):
        s1 = min(n, s0 + s_chunk)
        La = _normalized_chunk(tp, s0, s1, "logp", norm_tol, dev, check).transpose(0, 1)
        Lb = None if tq is None else _normalized_chunk(tq, s0, s1, "logq", norm_tol, dev, check).transpose(0, 1)
        yield La.reshape(Ma, -1), (None if Lb is None else Lb.reshape(Mb, -1))


def hellinger(logp, logq=None, *, device=None, norm_tol=None):
    """Squared Hellinger distance per sample, mean over samples.

    Convention: per sample ``H^2 = 1 - BC = (1/2) sum_c (sqrt(p_c) - sqrt(q_c))^2`` in
    ``[0, 1]`` (0 for equal, 1 for disjoint distributions); the result is the mean of
    ``H^2`` over the ``n`` samples.  Related to the Bhattacharyya distance per sample by
    ``d_B = -log(1 - H^2)``.

    Parameters
    ----------
    logp, logq : array or tensor (M, n, C) and (Mb, n, C), float32 or float64
        Log-probabilities (checked as in :func:`bhattacharyya`).  ``logq=None``: self case.
    device, norm_tol
        As in :func:`bhattacharyya`.

    Returns
    -------
    numpy.ndarray float64 (M, M) (symmetric, zero diagonal) or (M, Mb).

    Examples
    --------
    >>> import numpy as np
    >>> lp = np.log(np.array([[[0.5, 0.5]], [[0.9, 0.1]]]))
    >>> H = hellinger(lp)
    >>> bool(np.isclose(H[0, 1], 1 - (np.sqrt(0.45) + np.sqrt(0.05))))
    True
    """
    tp, tq = _pair_inputs(logp, logq)
    dev = _resolve_device(device)
    n = tp.shape[1]
    sym = tq is None
    acc = None
    for La, Lb in _flat_chunks(tp, tq, norm_tol, dev):
        Xa = torch.exp(0.5 * La)
        Xb = Xa if sym else torch.exp(0.5 * Lb)
        G = Xa @ Xb.T
        acc = G if acc is None else acc.add_(G)
    out = 1.0 - acc / n
    if sym:
        out = 0.5 * (out + out.T)
        out.fill_diagonal_(0.0)
    return out.cpu().numpy()


def symmetric_kl(logp, logq=None, *, device=None, norm_tol=None):
    """Symmetrized Kullback-Leibler divergence, mean over samples.

    Per sample ``(1/2)[KL(p||q) + KL(q||p)] = (1/2) sum_c (p_c - q_c)(log p_c - log q_c)``
    (natural log), averaged over the ``n`` samples.  It is ``+inf`` for a pair whose supports
    differ on any sample (some class has probability zero in one model and not the other);
    ``0 log 0 = 0``.

    Parameters
    ----------
    logp, logq : array or tensor (M, n, C) and (Mb, n, C), float32 or float64
        Log-probabilities (checked as in :func:`bhattacharyya`).  ``logq=None``: self case.
    device, norm_tol
        As in :func:`bhattacharyya`.

    Returns
    -------
    numpy.ndarray float64 (M, M) (symmetric, zero diagonal) or (M, Mb).

    Examples
    --------
    >>> import numpy as np
    >>> lp = np.log(np.array([[[0.5, 0.5]], [[0.9, 0.1]]]))
    >>> K = symmetric_kl(lp)
    >>> bool(np.isclose(K[0, 1], 0.5 * ((0.5 - 0.9) * np.log(0.5 / 0.9) + (0.5 - 0.1) * np.log(0.5 / 0.1))))
    True
    """
    tp, tq = _pair_inputs(logp, logq)
    dev = _resolve_device(device)
    n = tp.shape[1]
    sym = tq is None
    cross = ent_a = ent_b = mism = None
    for La, Lb in _flat_chunks(tp, tq, norm_tol, dev):
        Lb = La if sym else Lb
        sa, sb = torch.isfinite(La), torch.isfinite(Lb)
        Pa, Pb = torch.exp(La), torch.exp(Lb)
        Za, Zb = torch.where(sa, La, 0.0), torch.where(sb, Lb, 0.0)
        c = Pa @ Zb.T + Za @ Pb.T  # sum p_a log p_b + p_b log p_a
        ea = (Pa * Za).sum(1)
        eb = (Pb * Zb).sum(1)
        sa, sb = sa.to(torch.float64), sb.to(torch.float64)
        mm = sa @ (1.0 - sb).T + (1.0 - sa) @ sb.T  # classes in one support only
        cross = c if cross is None else cross.add_(c)
        ent_a = ea if ent_a is None else ent_a.add_(ea)
        ent_b = eb if ent_b is None else ent_b.add_(eb)
        mism = mm if mism is None else mism.add_(mm)
    out = 0.5 * (ent_a[:, None] + ent_b[None, :] - cross) / n
    out = torch.where(mism > 0, torch.full_like(out, float("inf")), out)
    if sym:
        out = 0.5 * (out + out.T)
        out.fill_diagonal_(0.0)
    return out.cpu().numpy()


def gaussian_bhattacharyya(mean_a, mean_b=None, sigma=1.0, *, device=None):
    """Bhattacharyya distance of Gaussian output models with a fixed standard deviation.

    Each model predicts independent Gaussians ``N(mu_ic, sigma^2)``.  Per sample the
    Bhattacharyya distance is ``sum_c (mu_ic - nu_ic)^2 / (8 sigma^2)``; the result is its
    mean over the ``n`` samples, i.e. ``|mu - nu|^2 / (8 sigma^2 n)`` with the norm over all
    samples and outputs.

    Parameters
    ----------
    mean_a : array or tensor (M, n, C) or (M, n)
        Predicted means (float32 or float64; ``(M, n)`` means ``C = 1``).
    mean_b : array or tensor (Mb, n, C) or (Mb, n), optional
        Second ensemble; ``None`` gives the symmetric self-distance matrix.
    sigma : float
        The fixed standard deviation, > 0.
    device : optional
        As in :func:`bhattacharyya`.

    Returns
    -------
    numpy.ndarray float64 (M, M) (symmetric, exact zero diagonal) or (M, Mb).

    Examples
    --------
    >>> import numpy as np
    >>> mu = np.array([[0.0, 0.0], [2.0, 0.0]])            # 2 models, n = 2 samples, C = 1
    >>> gaussian_bhattacharyya(mu, sigma=1.0)[0, 1]        # (2^2 + 0) / (8 * 1 * 2)
    np.float64(0.25)

    Notes
    -----
    Computed from Gram matrices of the means centered on their common mean; the rounding
    error is about ``1e-16 * |mu - mean|^2 / (8 sigma^2 n)``, which can make distances of
    near-identical models ~1e-16 relative below zero (not clamped).
    """
    if not (np.isscalar(sigma) and np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive finite number; got {sigma!r}")
    ta = as_float_tensor(mean_a, "mean_a")
    if ta.dim() == 2:
        ta = ta.unsqueeze(-1)
    check_rank(ta, 3, "mean_a", "(M, n, C) or (M, n)")
    tb = None
    if mean_b is not None:
        tb = as_float_tensor(mean_b, "mean_b")
        if tb.dim() == 2:
            tb = tb.unsqueeze(-1)
        check_rank(tb, 3, "mean_b", "(Mb, n, C) or (Mb, n)")
        if tb.shape[1:] != ta.shape[1:]:
            raise ValueError(f"mean_a and mean_b must agree in (n, C); got {tuple(ta.shape)} and {tuple(tb.shape)}")
    for t, name in ((ta, "mean_a"), (tb, "mean_b")):
        if t is not None and not bool(torch.isfinite(t).all()):
            m, i, c = _first_bad(~torch.isfinite(t))
            raise ValueError(f"{name} has a non-finite value at model {m}, sample {i}, output {c}")
    dev = _resolve_device(device)
    n = ta.shape[1]
    A = ta.to(dev, torch.float64).reshape(ta.shape[0], -1)
    B = A if tb is None else tb.to(dev, torch.float64).reshape(tb.shape[0], -1)
    center = A.mean(0) if tb is None else torch.cat([A, B]).mean(0)
    A = A - center
    B = A if tb is None else B - center
    na, nb = (A * A).sum(1), (B * B).sum(1)
    sq = na[:, None] + nb[None, :] - 2.0 * (A @ B.T)
    if tb is None:
        sq = 0.5 * (sq + sq.T)
        sq.fill_diagonal_(0.0)
    return (sq / (8.0 * sigma ** 2 * n)).cpu().numpy()


def _first_bad(mask):
    return tuple(int(v) for v in mask.nonzero()[0])


def bernoulli_log_probs(logits) -> torch.Tensor:
    """Log-probabilities ``(M, n, 2)`` (classes 0 and 1) of Bernoulli models given logits.

    ``log p(1) = -softplus(-z)``, ``log p(0) = -softplus(z)``: exact for any finite logit.

    Examples
    --------
    >>> import numpy as np
    >>> bernoulli_log_probs(np.array([[0.0]])).exp().tolist()   # logit 0: a fair coin
    [[[0.5, 0.5]]]
    """
    t = as_float_tensor(logits, "logits")
    if t.dim() == 3:
        if t.shape[-1] != 1:
            raise ValueError(f"Bernoulli logits must have shape (M, n) or (M, n, 1); got {tuple(t.shape)}")
        t = t[..., 0]
    check_rank(t, 2, "logits", "(M, n) or (M, n, 1)")
    if not bool(torch.isfinite(t).all()):
        m, i = _first_bad(~torch.isfinite(t))
        raise ValueError(f"logits has a non-finite value at model {m}, sample {i}")
    z = t.to(torch.float64)
    sp = torch.nn.functional.softplus
    return torch.stack([-sp(z), -sp(-z)], dim=-1)


def bernoulli_bhattacharyya(logits_a, logits_b=None, *, device=None, tile=None, on_disjoint="warn"):
    """Bhattacharyya distance of Bernoulli (binary) output models given their logits.

    ``p(y=1) = sigmoid(z)``; per sample ``BC = sqrt(p_a p_b) + sqrt((1-p_a)(1-p_b))``, and the
    distance is ``-(1/n) sum_i log BC_i``.  The logits are turned into exact log-probabilities
    ``(-softplus(-z), -softplus(z))`` and passed to :func:`bhattacharyya`, so huge logits
    (|z| of 1e4 or more) stay exact and finite logits never give ``+inf``.

    Parameters
    ----------
    logits_a : array or tensor (M, n) or (M, n, 1)
    logits_b : array or tensor (Mb, n) or (Mb, n, 1), optional
    device, tile, on_disjoint
        As in :func:`bhattacharyya`.

    Returns
    -------
    numpy.ndarray float64 (M, M) or (M, Mb).

    Examples
    --------
    >>> import numpy as np
    >>> D = bernoulli_bhattacharyya(np.array([[0.0], [1e4]]))     # fair coin vs a certain 1
    >>> bool(np.isclose(D[0, 1], -np.log(np.sqrt(0.5))))
    True
    """
    la = bernoulli_log_probs(logits_a)
    lb = None if logits_b is None else bernoulli_log_probs(logits_b)
    if lb is not None and lb.shape[1] != la.shape[1]:
        raise ValueError(f"logits_a and logits_b must have the same number of samples; got "
                         f"{la.shape[1]} and {lb.shape[1]}")
    return _bhattacharyya_impl(la, lb, device=device, tile=tile, group=None, norm_tol=None,
                               on_disjoint=on_disjoint, check=False)
