"""InPCA: the intensive (Minkowski-signature) embedding of a distance matrix.

Given a matrix ``D`` of distances that behave like *squared* distances (the Bhattacharyya
distance, mean over samples), InPCA double-centers it, ``W = -1/2 J D J`` with
``J = I - 11^T/M``, and eigendecomposes ``W = sum_j lambda_j v_j v_j^T``.

Conventions
-----------
* **Signed eigenvalues, sorted by |lambda| descending.**  ``W`` is not positive
  semi-definite for non-Euclidean ``D``; negative eigenvalues are *time-like* axes.  They are
  kept, sorted with the others by magnitude, counted in ``n_negative_`` and carried in
  ``signature_`` (``+1`` space-like, ``-1`` time-like).  Nothing is dropped.
* **Coordinates** ``embedding_[:, j] = v_j * sqrt(|lambda_j|)``; embedded squared distances
  are ``sum_j signature_j (x_j - y_j)^2`` (:func:`embedded_distances`), which can be negative.
* **Eigenvector signs are deterministic**: the entry of largest absolute value of every
  eigenvector is positive (the first such entry on ties).
* **Explained stress** ``chi_k = 1 - sqrt(1 - sum_{i<=k} lambda_i^2 / ||W||_F^2)``, i.e.
  ``1 - ||W - W_k||_F / ||W||_F`` for the signed rank-k truncation ``W_k``.  ``||W||_F`` is
  computed from the whole matrix, so ``chi_k`` is right when only ``k`` eigenpairs are
  computed; it reaches 1 at full rank and does not change when ``D`` is scaled.
* **Tolerances.**  ``D`` must be square, finite, symmetric, with zero diagonal and no
  negative entries, each up to ``1e-9 * max|D|`` (``check_tol``).  With
  ``n_components=None`` every numerically non-zero eigenpair is kept:
  ``|lambda| > M * eps * |lambda_1|`` (the constant vector always has ``lambda = 0``).

Solvers
-------
``"dense"``: :func:`scipy.linalg.eigh` of the double-centered matrix, ``O(M^3)``.
``"iterative"``: block Krylov (block Davidson without preconditioner) with Rayleigh-Ritz on
the operator ``V -> -1/2 J D (J V)`` (``W`` is never formed).  Each iteration applies ``W`` once
to a block of ``b = k + max(10, k // 2)`` new directions -- the residuals of the ``b`` leading
Ritz pairs, orthogonalized against the basis -- an ``O(M^2 b)`` BLAS product that dominates the
cost; the basis is restarted on the leading Ritz vectors when it would exceed ``max(k + 3b, 8b)``
columns.  Rayleigh-Ritz keeps the Ritz values of largest ``|theta|``, so both ends of the
spectrum (positive and negative eigenvalues) converge together.  It stops when every wanted Ritz
pair has residual ``||W x - theta x|| <= tol * |theta_1|`` (residuals from exact products
``W V``, not estimates).  ``"auto"`` uses dense for ``M <= 2000`` or when more than ``M/10``
components are asked for, iterative otherwise.

Both solvers first validate ``D`` and take its row/column means in one tiled pass over ``D``
(the same conditions as :func:`linsim.inpca.checks.check_distance_matrix`, which is called to
raise the error when any fails), then ``||W||_F`` in a second pass; both passes run on torch's
intra-op threads over ``D``'s own memory (no copy).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import warnings

import numpy as np
import scipy.linalg
import torch

from .checks import DIST_TOL, check_distance_matrix

__all__ = ["InPCA", "double_center", "explained_stress", "embedded_distances"]

_SOLVERS = ("auto", "dense", "iterative")

try:  # small dense factorizations run single-threaded: threaded OpenBLAS QR/eigh of tall-skinny
    # or tiny matrices is slower, and pathologically so on an oversubscribed machine
    from threadpoolctl import threadpool_info as _threadpool_info
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover
    _threadpool_info = None

    def _threadpool_limits(limits=None):
        return contextlib.nullcontext()


def double_center(D, *, overwrite=False):
    """Double-center a distance matrix: ``W = -1/2 J D J`` in ``O(M^2)`` without forming ``J``.

    ``W_uv = -1/2 (D_uv - r_u - c_v + g)`` with row means ``r``, column means ``c`` and grand
    mean ``g`` of ``D``.

    Parameters
    ----------
    D : array_like (M, M)
        Distance matrix (not validated here; :class:`InPCA` validates).
    overwrite : bool
        If True and ``D`` is a writeable C-contiguous float64 numpy array, ``D`` itself is
        overwritten with ``W`` and returned (no extra ``M^2`` memory).  Otherwise a new array
        is returned and ``D`` is unchanged (default).

    Returns
    -------
    numpy.ndarray float64 (M, M)
    """
    D = np.asarray(D)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square matrix; got shape {D.shape}")
    inplace = overwrite and D.dtype == np.float64 and D.flags.c_contiguous and D.flags.writeable
    W = D if inplace else np.array(D, dtype=np.float64, order="C")
    r = W.mean(axis=1)
    c = W.mean(axis=0)
    g = c.mean()
    W -= r[:, None]
    W -= c[None, :]
    W += g
    W *= -0.5
    return W


def explained_stress(eigenvalues, frobenius_norm=None, *, rtol=1e-8):
    """Cumulative explained stress ``chi_k = 1 - sqrt(1 - sum_{i<=k} lambda_i^2 / ||W||_F^2)``.

    The one implementation in linsim (``InPCA.explained_stress_`` and :mod:`linsim.metrics` use
    it).  The unexplained part after k axes is computed as (stress outside the given
    eigenvalues) + ``sum_{i>k} lambda_i^2`` -- a tail sum, not ``1 - cumsum`` -- so ``chi`` is
    exact to rounding near full rank.

    Parameters
    ----------
    eigenvalues : array_like (k,)
        Signed eigenvalues of ``W`` sorted by ``|lambda|`` descending.
    frobenius_norm : float, optional
        ``||W||_F`` of the *whole* double-centered matrix (the norm, not its square), so that the
        curve is right when only k eigenpairs were computed.  If omitted the spectrum is taken to
        be complete (``||W||_F^2 = sum lambda^2``).
    rtol : float
        ``sum lambda^2`` may exceed ``||W||_F^2`` by rounding; up to a relative ``rtol`` this is
        accepted (nothing unexplained is left), beyond that the inputs are inconsistent and
        ValueError is raised.

    Returns
    -------
    numpy.ndarray float64 (k,), non-decreasing, in [0, 1].
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1:
        raise ValueError(f"eigenvalues must be 1-D; got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError(f"eigenvalues contain NaN or inf at index {np.flatnonzero(~np.isfinite(lam))[0]}")
    sq = lam ** 2
    total = float(np.sum(sq))
    if frobenius_norm is None:
        fro_sq = total
        if fro_sq == 0.0:
            raise ValueError("all eigenvalues are zero: every point coincides, stress is undefined")
    else:
        fro = float(frobenius_norm)
        if not (np.isfinite(fro) and fro > 0):
            raise ValueError(f"frobenius_norm must be positive and finite; got {frobenius_norm!r}")
        fro_sq = fro ** 2
        if total > fro_sq * (1.0 + rtol):
            k = int(np.argmax(np.cumsum(sq) > fro_sq * (1.0 + rtol)))
            raise ValueError(f"sum of the first {k + 1} squared eigenvalues exceeds ||W||_F^2 by a relative "
                             f"{np.cumsum(sq)[k] / fro_sq - 1:.3g}: pass the Frobenius norm (not its square) "
                             "of the whole W")
    tail = np.concatenate([np.cumsum(sq[::-1])[::-1][1:], [0.0]])
    unseen = max(fro_sq - total, 0.0)  # below 0 only by rounding (bounded by rtol above)
    return 1.0 - np.sqrt((unseen + tail) / fro_sq)


def embedded_distances(X, signature, Y=None):
    """Signed squared distances between embedded points: ``sum_j s_j (x_j - y_j)^2``.

    Parameters
    ----------
    X : array_like (p, k)
        Coordinates (e.g. ``InPCA.embedding_`` or ``InPCA.transform`` output).
    signature : array_like (k,)
        ``+1`` or ``-1`` per axis (``InPCA.signature_``).
    Y : array_like (q, k), optional
        Second set; default ``X``.

    Returns
    -------
    numpy.ndarray float64 (p, q); may be negative where time-like axes dominate.
    """
    X = np.asarray(X, dtype=np.float64)
    s = np.asarray(signature, dtype=np.float64)
    Y = X if Y is None else np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1] or s.shape != (X.shape[1],):
        raise ValueError(f"need X (p, k), Y (q, k) and signature (k,); got {X.shape}, {Y.shape}, {s.shape}")
    if not np.all(np.abs(s) == 1):
        raise ValueError("signature entries must be +1 or -1")
    out = np.empty((X.shape[0], Y.shape[0]))
    step = max(1, (1 << 23) // max(1, Y.shape[0] * X.shape[1]))
    for r0 in range(0, X.shape[0], step):
        diff = X[r0:r0 + step, None, :] - Y[None, :, :]
        out[r0:r0 + step] = (diff ** 2) @ s
    return out


class _RowBlockMatmul:
    """``D @ V`` for a large ``D`` and a thin ``V``, on all BLAS threads.

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
        if self.pool is None:
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


def _blas_threads() -> int:
    """Threads of the BLAS that numpy uses (1 when unknown)."""
    if _threadpool_info is None:  # pragma: no cover
        return 1
    nums = [i.get("num_threads", 1) for i in _threadpool_info() if i.get("user_api") == "blas"
            and i.get("internal_api") != "mkl"]  # torch's MKL is not numpy's BLAS
    return max(nums, default=1)


def _as_torch(D: np.ndarray) -> torch.Tensor:
    """A torch view of a float64 numpy array (read only here; read-only arrays are fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "non-writable array": never written
        return torch.from_numpy(D)


def _validated_with_means(D, tol):
    """Validate ``D`` and return ``(D as float64 ndarray, row means, column means)``.

    One tiled pass computes row and column sums, the extreme entries and the largest asymmetry
    ``|D_uv - D_vu|``; the acceptance conditions are those of
    :func:`~linsim.inpca.checks.check_distance_matrix` (finite; asymmetry, ``|diagonal|`` and
    negative entries within ``tol * max|D|``).  Anything else -- another type or dtype, a bad
    shape, or a failed condition -- goes through ``check_distance_matrix`` itself, which raises
    the located error.
    """
    fast = (isinstance(D, np.ndarray) and D.dtype == np.float64 and D.ndim == 2 and D.size > 0
            and D.shape[0] == D.shape[1] and (D.flags.c_contiguous or D.flags.f_contiguous))
    if fast:
        r, c, ok = _tiled_stats(D, tol)
        if ok:
            return D, r, c
    D = check_distance_matrix(D, "D", tol)  # raises on every failed condition
    if not (D.flags.c_contiguous or D.flags.f_contiguous):  # e.g. negative strides
        D = np.ascontiguousarray(D)
    r, c, _ = _tiled_stats(D, tol)
    return D, r, c


def _tiled_stats(D: np.ndarray, tol: float, tile: int = 1024):
    """Row means, column means and whether ``D`` passes the distance-matrix conditions."""
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
        return None, None, False
    atol = tol * max(hi, -lo)
    diag = float(np.abs(np.diagonal(D)).max())
    ok = lo >= -atol and diag <= atol and asym <= atol
    return (rs / M).numpy(), (cs / M).numpy(), ok


def _orthonormal_complement(R, V, norms):
    """Orthonormal basis of the part of ``span(R)`` orthogonal to ``V`` (orthonormal columns).

    Classical Gram-Schmidt applied twice, then a column-pivoted QR that drops directions below
    ``1e-12`` of the largest residual norm (converged pairs contribute only rounding noise).
    """
    R = R - V @ (V.T @ R)
    R -= V @ (V.T @ R)
    with _threadpool_limits(1):
        Q, T, _ = scipy.linalg.qr(R, mode="economic", pivoting=True)
    keep = np.abs(np.diag(T)) > 1e-12 * max(float(norms.max()), np.finfo(float).tiny)
    Q = Q[:, keep]
    if Q.shape[1]:
        Q -= V @ (V.T @ Q)
        with _threadpool_limits(1):
            Q, _ = np.linalg.qr(Q)
    return Q


def _fix_signs(V):
    idx = np.argmax(np.abs(V), axis=0)
    sgn = np.sign(V[idx, np.arange(V.shape[1])])
    sgn[sgn == 0] = 1.0
    return V * sgn


def _sort_by_magnitude(lam, V):
    order = np.argsort(-np.abs(lam), kind="stable")
    return lam[order], V[:, order]


class InPCA:
    """Intensive principal component analysis of a distance matrix.

    Parameters
    ----------
    n_components : int, optional
        Number ``k`` of eigenpairs (largest ``|lambda|``, both signs).  ``None``: all
        numerically non-zero eigenpairs (dense solver).
    solver : {"auto", "dense", "iterative"}
        See the module docstring.
    tol : float
        Residual tolerance of the iterative solver, relative to ``|lambda_1|`` (default 1e-10).
    max_iter : int
        Iteration cap of the iterative solver (a warning is issued if reached).
    random_state : int
        Seed of the iterative solver's random start block.
    check_tol : float
        Relative tolerance of the checks on ``D`` (default 1e-9, see module docstring).

    Attributes
    ----------
    eigenvalues_ : (k,) signed, ``|lambda|`` descending
    eigenvectors_ : (M, k) orthonormal, deterministic signs
    embedding_ : (M, k) ``eigenvectors_ * sqrt(|eigenvalues_|)``
    signature_ : (k,) ``+1``/``-1``
    explained_stress_ : (k,) cumulative ``chi_1..chi_k``
    frobenius_norm_ : float, ``||W||_F`` of the whole double-centered matrix
    trace_ : float, ``tr W``;  diagonal_ : (M,) ``diag W``
    n_negative_ : int, number of negative eigenvalues among the ``k``
    column_means_ : (M,) column means of ``D``;  grand_mean_ : float
    solver_ : the solver used;  n_iter_ : iterations of the iterative solver (0 for dense)

    Examples
    --------
    Three models of two samples: D is the mean per-sample Bhattacharyya distance.

    >>> import numpy as np
    >>> from linsim.inpca import bhattacharyya
    >>> p = np.array([[[0.5, 0.5], [0.9, 0.1]], [[0.8, 0.2], [0.5, 0.5]], [[0.1, 0.9], [0.3, 0.7]]])
    >>> D = bhattacharyya(np.log(p))                    # (M, M) = (3, 3)
    >>> emb = InPCA(n_components=2).fit(D)
    >>> emb.embedding_.shape
    (3, 2)
    >>> bool(np.isclose(emb.explained_stress_[-1], 1.0))   # 3 points: 2 axes are full rank
    True
    """

    def __init__(self, n_components=None, solver="auto", *, tol=1e-10, max_iter=500, random_state=0,
                 check_tol=DIST_TOL):
        self.n_components = n_components
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.check_tol = check_tol

    # ------------------------------------------------------------------ fit
    def fit(self, D):
        """Fit the embedding to a distance matrix ``D`` (M, M); returns ``self``."""
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}; got {self.solver!r}")
        D, r, c = _validated_with_means(D, self.check_tol)
        M = D.shape[0]
        k = self.n_components
        if k is not None:
            if not (isinstance(k, (int, np.integer)) and 1 <= k <= M):
                raise ValueError(f"n_components must be an integer in [1, M={M}]; got {k!r}")
            k = int(k)
        solver = self.solver
        if solver == "auto":
            solver = "dense" if (k is None or M <= 2000 or k > M // 10) else "iterative"
        if solver == "iterative" and k is None:
            raise ValueError("the iterative solver needs n_components")

        g = float(c.mean())
        fro2, diag = self._frobenius_and_diag(D, r, c, g)
        if fro2 == 0.0:
            raise ValueError("all distances in D are zero: the models coincide and there is nothing to embed")
        fro = float(np.sqrt(fro2))

        if solver == "dense":
            W = double_center(D)
            lam, V = scipy.linalg.eigh(W, lower=True)
            del W
            lam, V = _sort_by_magnitude(lam, V)
            if k is None:
                k = max(1, int(np.sum(np.abs(lam) > M * np.finfo(float).eps * abs(lam[0]))))
            lam, V = lam[:k], V[:, :k]
            self.n_iter_ = 0
        else:
            lam, V, self.n_iter_ = self._block_krylov(D, k)

        V = _fix_signs(V)
        self.eigenvalues_ = lam
        self.eigenvectors_ = V
        self.signature_ = np.where(lam < 0, -1.0, 1.0)
        self.embedding_ = V * np.sqrt(np.abs(lam))
        self.frobenius_norm_ = fro
        self.trace_ = float(diag.sum())
        self.diagonal_ = diag
        self.explained_stress_ = explained_stress(lam, fro)
        self.n_negative_ = int(np.sum(lam < 0))
        self.column_means_ = c
        self.grand_mean_ = g
        self.n_features_in_ = M
        self.solver_ = solver
        return self

    @staticmethod
    def _frobenius_and_diag(D, r, c, g):
        """``||W||_F^2`` (exact: the centered entries are formed blockwise, no cancellation) and
        ``diag W``, in one pass over ``D`` with torch's threads."""
        M = D.shape[0]
        Dt, ct = _as_torch(D), torch.from_numpy(c)
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

    def _block_krylov(self, D, k):
        """Leading ``k`` eigenpairs (by ``|lambda|``) of ``W = -1/2 J D J`` (module docstring)."""
        M = D.shape[0]
        b = min(M, k + max(10, k // 2))
        max_dim = min(M, max(k + 3 * b, 8 * b))
        rng = np.random.default_rng(self.random_state)

        matmul = _RowBlockMatmul(D)

        def apply_w(V):
            JV = np.subtract(V, V.mean(axis=0), order="C")  # C order: BLAS is faster on it
            Y = matmul(JV)  # the O(M^2 b) product
            Y -= Y.mean(axis=0)
            Y *= -0.5
            return Y

        # basis V and its image W V, grown in place up to max_dim columns
        Vb = np.empty((M, max_dim))
        WVb = np.empty((M, max_dim))
        with _threadpool_limits(1):
            Vb[:, :b], _ = np.linalg.qr(rng.standard_normal((M, b)))
        WVb[:, :b] = apply_w(Vb[:, :b])
        d = b
        H = Vb[:, :d].T @ WVb[:, :d]
        it = 1
        while True:
            V, WV = Vb[:, :d], WVb[:, :d]
            with _threadpool_limits(1):
                theta, S = np.linalg.eigh(0.5 * (H + H.T))
            theta, S = _sort_by_magnitude(theta, S)
            p = min(b, theta.size)
            X = V @ S[:, :p]
            R = WV @ S[:, :p]
            R -= X * theta[:p]  # residuals W x - theta x of the leading Ritz pairs
            res = np.linalg.norm(R, axis=0)
            if res[:k].max() <= self.tol * abs(theta[0]) or d >= M:
                break
            if it >= self.max_iter:
                warnings.warn(f"InPCA iterative solver did not converge in {self.max_iter} iterations "
                              f"(max residual {res[:k].max() / abs(theta[0]):.2e} relative to |lambda_1|, "
                              f"tol {self.tol:g})", RuntimeWarning, stacklevel=3)
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
            WQ = apply_w(Q)
            it += 1
            C = V.T @ WQ
            H = np.block([[H, C], [C.T, Q.T @ WQ]])
            Vb[:, d:d + q] = Q
            WVb[:, d:d + q] = WQ
            d += q
        matmul.close()
        return theta[:k], X[:, :k], it

    # ------------------------------------------------------------------ out of sample
    def transform(self, D_new):
        """Coordinates of new models given their distances to the fitted models.

        Gower/Nystrom extension with Minkowski signs: with ``B = -1/2 (D_new - rowmean(D_new)
        - column_means_ + grand_mean_)`` (row means per new model), coordinate ``j`` is
        ``B v_j / (sign(lambda_j) sqrt|lambda_j|)``.  Exact for in-sample rows: row ``u`` of the
        fitted ``D`` returns ``embedding_[u]``.

        Parameters
        ----------
        D_new : array_like (q, M)
            Distances (same convention as the fitted ``D``) from ``q`` new models to the ``M``
            fitted ones; finite and non-negative (tolerance as in ``fit``).

        Returns
        -------
        numpy.ndarray float64 (q, k)
        """
        if not hasattr(self, "eigenvalues_"):
            raise ValueError("this InPCA instance is not fitted yet; call fit(D) first")
        D_new = np.asarray(D_new.detach().cpu() if hasattr(D_new, "detach") else D_new)
        if D_new.ndim == 1:
            D_new = D_new[None, :]
        if D_new.ndim != 2 or D_new.shape[1] != self.n_features_in_:
            raise ValueError(f"D_new must have shape (q, M={self.n_features_in_}); got {D_new.shape}")
        D_new = check_distance_matrix(D_new, "D_new", self.check_tol, square=False)
        B = D_new - D_new.mean(axis=1, keepdims=True) - self.column_means_[None, :] + self.grand_mean_
        B *= -0.5
        return (B @ self.eigenvectors_) / (self.signature_ * np.sqrt(np.abs(self.eigenvalues_)))

    def fit_transform(self, D):
        """``fit(D).embedding_``."""
        return self.fit(D).embedding_

    def embedded_distances(self, X=None, Y=None):
        """Signed squared distances in the fitted embedding (default: between fitted points)."""
        if X is None:
            X = self.embedding_
        return embedded_distances(X, self.signature_, Y)
