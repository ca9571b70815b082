"""Eigensolvers for ``W = -1/2 J D J``: a registry of dense, block Krylov and ARPACK solvers.

Each solver is a function ``solve(op, k, *, tol, max_iter, rng) -> (eigenvalues, eigenvectors,
n_iter)`` returning the ``k`` eigenpairs of largest ``|lambda|`` (both signs), sorted by
``|lambda|`` descending, where ``op`` is a :class:`CenteredOperator` (``W`` applied to blocks of
vectors; ``W`` itself is never formed except by the dense solver on an in-memory ``D``).

* ``"iterative"``: block Krylov (block Davidson without preconditioner) with Rayleigh-Ritz.  Each
  iteration applies ``W`` once to a block of ``b = k + max(10, k // 2)`` new directions -- the
  residuals of the ``b`` leading Ritz pairs, orthogonalized against the basis -- an ``O(M^2 b)``
  product that dominates the cost (one pass over ``D``: the right solver for a stored ``D``,
  whose passes go by tile pairs on a thread pool, see :class:`_StoredMatmul`).  The
  basis is restarted on the leading Ritz vectors when it would exceed ``max(k + 3b, 8b)`` columns.
  Rayleigh-Ritz keeps the Ritz values of largest ``|theta|``, so both ends of the spectrum converge
  together.  It stops when every wanted pair has residual ``||W x - theta x|| <= tol * |theta_1|``
  (residuals from exact products, not estimates).
* ``"arpack"``: :func:`scipy.sparse.linalg.eigsh` (implicitly restarted Lanczos, ``which="LM"``)
  on a :class:`~scipy.sparse.linalg.LinearOperator`: one matrix-vector product per step, fastest
  for a small in-memory ``D`` where a product is cheap; each product is a full pass over ``D``.
* ``"dense"``: :func:`scipy.linalg.eigh` of the formed ``W`` (in-memory ``D`` only), ``O(M^3)``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from linsim.registry import Registry

from ._matrix_stats import StoredStats, tile_shift
from ._thin_gemm import pad_columns, pair_matmul, thin_matmul
from .checks import DIST_TOL

__all__ = ["SOLVERS", "CenteredOperator", "blas_threads_limited", "sort_by_magnitude", "fix_signs"]

try:  # small dense factorizations run single-threaded: threaded OpenBLAS QR/eigh of tall-skinny
    # or tiny matrices is slower, and pathologically so on an oversubscribed machine
    from threadpoolctl import threadpool_info as _threadpool_info
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover
    _threadpool_info = None

    def _threadpool_limits(limits=None):
        return contextlib.nullcontext()


def blas_threads_limited(n):
    """Context limiting the BLAS threads to ``n`` (restoring the caller's setting); ``None``: as is.

    Examples
    --------
    >>> with blas_threads_limited(None):
    ...     pass
    """
    return contextlib.nullcontext() if n is None else _threadpool_limits(n)


def fix_signs(V):
    """Deterministic eigenvector signs: the entry of largest ``|v|`` of each column is positive.

    Examples
    --------
    >>> import numpy as np
    >>> fix_signs(np.array([[0.6, 0.1], [-0.8, 0.0]])).tolist()
    [[-0.6, 0.1], [0.8, 0.0]]
    """
    idx = np.argmax(np.abs(V), axis=0)
    sgn = np.sign(V[idx, np.arange(V.shape[1])])
    sgn[sgn == 0] = 1.0
    return V * sgn


def sort_by_magnitude(lam, V):
    """Eigenpairs ``lam`` (k,), ``V`` (M, k) sorted by ``|lam|`` descending (stable for ties).

    Examples
    --------
    >>> import numpy as np
    >>> lam, V = sort_by_magnitude(np.array([1.0, -3.0, 2.0]), np.eye(3))
    >>> lam.tolist(), V[0].tolist()
    ([-3.0, 2.0, 1.0], [0.0, 0.0, 1.0])
    """
    order = np.argsort(-np.abs(lam), kind="stable")
    return lam[order], V[:, order]


def _blas_threads() -> int:
    """Threads of the BLAS that numpy uses (1 when unknown)."""
    if _threadpool_info is None:  # pragma: no cover
        return 1
    nums = [i.get("num_threads", 1) for i in _threadpool_info() if i.get("user_api") == "blas"
            and i.get("internal_api") != "mkl"]  # torch's MKL is not numpy's BLAS
    return max(nums, default=1)


class _InMemoryMatmul:
    """``D @ V`` for a large in-memory ``D`` and a thin ``V``, on all BLAS threads.

    Multi-threaded OpenBLAS was measured slower and erratic on this shape (20000 x 20000 times
    20000 x 30: 0.7-1.6 s against a steady 0.65-0.85 s here); instead, row blocks of ``D`` go
    to a pool of as many Python threads as BLAS had, each running single-threaded BLAS (numpy
    releases the GIL inside).  Each output row is the same dot products as in ``D @ V``.
    """

    def __init__(self, D):
        self.D = D
        n = _blas_threads()
        M = D.shape[0]
        self.pool = None
        if n > 1 and M >= 2048:
            self.bounds = np.linspace(0, M, 4 * n + 1).astype(int)
            self.pool = concurrent.futures.ThreadPoolExecutor(n)

    def __call__(self, V):
        if self.pool is None:  # small D (or one BLAS thread): one thread, robust on a loaded machine
            with _threadpool_limits(1):
                return self.D @ V
        out = np.empty((self.D.shape[0], V.shape[1]))
        b = self.bounds

        def job(i):
            np.matmul(self.D[b[i]:b[i + 1]], V, out=out[b[i]:b[i + 1]])

        with _threadpool_limits(1):
            list(self.pool.map(job, range(len(b) - 1)))
        return out

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


class _StoredMatmul:
    """``D @ V`` for a stored ``D`` (memory map / zarr), one tile pair at a time.

    A pass reads the tile pairs ``A = D[I, J]``, ``B = D[J, I]`` (``I <= J``, tiles of
    ``StoredMatrix.tile``, 8 MiB by default) on a pool of ``max(2, BLAS threads)`` (at most 8)
    Python threads; each multiplies its tiles with the register-tiled kernel of
    :mod:`linsim.inpca._thin_gemm` (2-4x single-threaded OpenBLAS on this shape; reads and
    products release the GIL), so that one thread's read overlaps another's product.  The
    products ``A V_J`` and ``B V_I`` are added into ``Y`` by the calling thread in the fixed pair
    order, so ``Y`` does not depend on the number of threads or on their timing.  At most ``threads + 2`` pairs are in
    flight: the memory held is a few tiles, never ``D``.

    The first pass also validates ``D`` and gives its statistics (the scans of
    :class:`~linsim.inpca._matrix_stats.StoredStats` run on each tile pair as it is read: no
    separate statistics pass); it raises the located ``ValueError`` of a bad ``D`` at its end.
    Once that pass has proved ``D`` bitwise symmetric (a 64-bit hash per tile pair), later
    passes read only the upper triangle ``A`` and use ``A^T V_I`` for the mirror tile, both
    products in one pass over ``A`` (:func:`~linsim.inpca._thin_gemm.pair_matmul`): half the
    reading, the same products.
    """

    def __init__(self, S, check_tol: float):
        self.S = S
        self.check_tol = float(check_tol)
        # at least 2 (a read overlaps a product), at most 8 (the passes are bound by memory
        # traffic long before that, and each thread holds two tiles in flight)
        self.n_threads = min(8, max(2, _blas_threads()))
        self.pool = concurrent.futures.ThreadPoolExecutor(self.n_threads)
        self.stats = None
        self.symmetric = False

    def __call__(self, V):
        S, e = self.S, self.S.edges
        validate = self.stats is None
        half = self.symmetric and not validate
        acc = StoredStats(S, tile_shift(S)) if validate else None
        Vp = pad_columns(V)  # the register-tiled kernel's layout (columns padded to 8)
        Y = np.zeros(Vp.shape)

        def pair(I, J):
            (i0, i1), (j0, j1) = e[I], e[J]
            A = S.block(i0, i1, j0, j1)
            if I == J:
                return thin_matmul(A, Vp[i0:i1], padded=True), None, (acc.scan(A, None, I, J) if validate else None)
            if half:  # bitwise symmetric: D[J, I] is A^T exactly; both products in one pass over A
                return (*pair_matmul(A, Vp[j0:j1], Vp[i0:i1]), None)
            B = S.block(j0, j1, i0, i1)
            return (thin_matmul(A, Vp[j0:j1], padded=True), thin_matmul(B, Vp[i0:i1], padded=True),
                    acc.scan(A, B, I, J) if validate else None)

        for (I, J), (PA, PB, sc) in S.map_tile_pairs(pair, self.pool, window=self.n_threads + 2):
            (i0, i1), (j0, j1) = e[I], e[J]
            Y[i0:i1] += PA
            if PB is not None:
                Y[j0:j1] += PB
            if sc is not None:
                acc.add(sc)
        if validate:
            self.stats = acc.finish(self.check_tol)  # raises on a bad D
            self.symmetric = acc.bitwise_symmetric
        return Y[:, :V.shape[1]]

    def close(self):
        self.pool.shutdown()


class CenteredOperator:
    """``V -> W V = -1/2 J D (J V)`` for an in-memory array or a :class:`StoredMatrix` ``D``.

    For a stored ``D`` the first product also validates ``D`` (relative tolerance
    ``check_tol``) and leaves its :class:`~linsim.inpca._matrix_stats.MatrixStats` in
    :attr:`stats`.  ``V`` is (M,) or (M, b); the result has its shape.  :meth:`close` shuts the
    product's thread pool down.

    Examples
    --------
    >>> import numpy as np
    >>> op = CenteredOperator(np.array([[0.0, 4.0], [4.0, 0.0]]), stored=False)
    >>> op(np.array([1.0, -1.0])).tolist()        # W = [[1, -1], [-1, 1]]: eigenvalue 2
    [2.0, -2.0]
    >>> op.close()
    """

    def __init__(self, D, stored: bool, check_tol: float = DIST_TOL):
        self.D = D
        self.stored = stored
        self.M = D.shape[0]
        self.matmul = _StoredMatmul(D, check_tol) if stored else _InMemoryMatmul(D)
        self.n_products = 0

    @property
    def stats(self):
        """The statistics of a stored ``D`` once its first product has run (else None)."""
        return getattr(self.matmul, "stats", None)

    def __call__(self, V):
        V = np.asarray(V, dtype=np.float64)
        one = V.ndim == 1
        if one:
            V = V[:, None]
        JV = np.subtract(V, V.mean(axis=0), order="C")  # C order: BLAS is faster on it
        Y = self.matmul(JV)  # the O(M^2 b) product
        Y -= Y.mean(axis=0)
        Y *= -0.5
        self.n_products += 1
        return Y[:, 0] if one else Y

    def close(self):
        self.matmul.close()


def _orthonormal_complement(R, V, norms):
    """Orthonormal basis of the part of ``span(R)`` orthogonal to ``V`` (orthonormal columns).

    Classical Gram-Schmidt applied twice, then a column-pivoted QR that drops directions below
    ``1e-12`` of the largest residual norm (converged pairs contribute only rounding noise).
    """
    R = R - V @ (V.T @ R)
    R -= V @ (V.T @ R)
    Q, T, _ = scipy.linalg.qr(R, mode="economic", pivoting=True)
    keep = np.abs(np.diag(T)) > 1e-12 * max(float(norms.max()), np.finfo(float).tiny)
    Q = Q[:, keep]
    if Q.shape[1]:
        Q -= V @ (V.T @ Q)
        Q, _ = np.linalg.qr(Q)
    return Q


def _block_krylov(op, k, *, tol, max_iter, rng):
    # The basis work (tall-skinny products, QR, small eigh) runs on one BLAS thread, restored
    # after: on the shared 2-core machine two threads took 0.6-2.0 s where one took 0.3 s
    # (M = 20000, 4 iterations), and the products with D bring their own threads (the in-memory
    # operator sized its pool before this; the stored one does not use BLAS).
    with _threadpool_limits(1):
        return _block_krylov_loop(op, k, tol=tol, max_iter=max_iter, rng=rng)


def _block_krylov_loop(op, k, *, tol, max_iter, rng):
    M = op.M
    # the same block for a stored D: a pass over a store now costs about what an in-memory pass
    # does (tile products, the upper triangle only), and on the benchmark's D (M = 20000, k = 10)
    # blocks of 15 to 30 all converge in 7 products, while the basis work grows with the block
    b = min(M, k + max(10, k // 2))
    max_dim = min(M, max(k + 3 * b, 8 * b))
    # basis V and its image W V, grown in place up to max_dim columns
    Vb = np.empty((M, max_dim))
    WVb = np.empty((M, max_dim))
    Vb[:, :b], _ = np.linalg.qr(rng.standard_normal((M, b)))
    WVb[:, :b] = op(Vb[:, :b])
    d = b
    H = Vb[:, :d].T @ WVb[:, :d]
    it = 1
    while True:
        V, WV = Vb[:, :d], WVb[:, :d]
        theta, S = np.linalg.eigh(0.5 * (H + H.T))
        theta, S = sort_by_magnitude(theta, S)
        p = min(b, theta.size)
        X = V @ S[:, :p]
        R = WV @ S[:, :p]
        R -= X * theta[:p]  # residuals W x - theta x of the leading Ritz pairs
        res = np.linalg.norm(R, axis=0)
        if res[:k].max() <= tol * abs(theta[0]) or d >= M:
            break
        if it >= max_iter:
            warnings.warn(f"InPCA iterative solver did not converge in {max_iter} iterations "
                          f"(max residual {res[:k].max() / abs(theta[0]):.2e} relative to |lambda_1|, "
                          f"tol {tol:g})", RuntimeWarning, stacklevel=5)
            break
        if d + b > max_dim:  # thick restart on the leading Ritz vectors
            keep = max(p, max_dim - 2 * b)
            Vb[:, :keep] = V @ S[:, :keep]
            WVb[:, :keep] = WV @ S[:, :keep]
            d = keep
            V, WV = Vb[:, :d], WVb[:, :d]
            H = V.T @ WV
        Q = _orthonormal_complement(R, V, res)[:, :max_dim - d]  # rank <= M - d anyway
        q = Q.shape[1]
        if q == 0:  # the Krylov space is exhausted: the Ritz pairs are exact
            break
        WQ = op(Q)
        it += 1
        C = V.T @ WQ
        H = np.block([[H, C], [C.T, Q.T @ WQ]])
        Vb[:, d:d + q] = Q
        WVb[:, d:d + q] = WQ
        d += q
    return theta[:k], X[:, :k], it


def _arpack(op, k, *, tol, max_iter, rng):
    M = op.M
    if k >= M - 1:  # ARPACK needs k < M - 1 for symmetric problems: fall back to the block solver
        return _block_krylov(op, k, tol=tol, max_iter=max_iter, rng=rng)
    lin = scipy.sparse.linalg.LinearOperator((M, M), matvec=op, matmat=op, dtype=np.float64)
    v0 = rng.standard_normal(M)
    v0 -= v0.mean()  # the constant vector is in the null space of W
    try:
        lam, V = scipy.sparse.linalg.eigsh(lin, k=k, which="LM", tol=tol, v0=v0,
                                           maxiter=max_iter * M, ncv=min(M, max(2 * k + 1, 20)))
    except scipy.sparse.linalg.ArpackNoConvergence as err:
        warnings.warn(f"InPCA arpack solver did not converge: {err}", RuntimeWarning, stacklevel=4)
        lam, V = err.eigenvalues, err.eigenvectors
    lam, V = sort_by_magnitude(lam, V)
    return lam[:k], V[:, :k], op.n_products


def _dense(op, k, *, tol, max_iter, rng):
    from .embedding import double_center

    # one thread up to M = 4000: LAPACK's threaded eigh was measured 10-75x slower on the shared,
    # oversubscribed 2-core machine (M = 500: 0.07 s vs 5.5 s), and gains little when quiet
    with _threadpool_limits(1 if op.M <= 4000 else None):
        lam, V = scipy.linalg.eigh(double_center(op.D), lower=True)
    lam, V = sort_by_magnitude(lam, V)
    if k is None:
        M = op.M
        k = max(1, int(np.sum(np.abs(lam) > M * np.finfo(float).eps * abs(lam[0]))))
    return lam[:k], V[:, :k], 0


#: solver name -> solve(op, k, *, tol, max_iter, rng)
SOLVERS: Registry = Registry("eigensolver", callable_only=True,
                             entries={"dense": _dense, "iterative": _block_krylov, "arpack": _arpack})
