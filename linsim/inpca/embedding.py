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
* **Explained stress** ``chi_k = 1 - sqrt(1 - sum_{i<=k} lambda_i^2 / ||W||_F^2)``
  (:func:`theory.explained_stress`, re-exported here as :func:`explained_stress`), i.e.
  ``1 - ||W - W_k||_F / ||W||_F`` for the signed rank-k truncation ``W_k``.  ``||W||_F`` is
  computed from the whole matrix, so ``chi_k`` is right when only ``k`` eigenpairs are
  computed; it reaches 1 at full rank and does not change when ``D`` is scaled.
* **Null axes.**  An eigenvalue with ``|lambda| <= M * eps * |lambda_1|`` is zero to float64
  rounding (e.g. asking for more components than the rank of ``W``).  Such an axis carries no
  distance information: its ``embedding_`` column is 0 and :meth:`InPCA.transform` gives every
  new point coordinate 0 on it (the Gower formula would divide by ``sqrt(0)``); ``null_axes_``
  marks them.
* **Tolerances.**  ``D`` must be square, finite, symmetric, with zero diagonal and no
  negative entries, each up to ``1e-9 * max|D|`` (``check_tol``).  A ``D`` that is zero, or whose
  entries are all at rounding level (``max|D| <= 1e-12``) and fail these checks, is refused with
  "all M models coincide".  With ``n_components=None`` every numerically non-zero eigenpair is
  kept.

Stored matrices
---------------
``fit`` accepts an in-memory array, a :class:`numpy.memmap`, a :class:`zarr.Array` or the path
of a zarr array.  A stored ``D`` is never loaded whole: the eigensolver reads it by tile pairs
``D[I, J]``, ``D[J, I]`` (1024 x 1024 by default, on a pool of threads, the products added in a
fixed order), once per block-Krylov iteration.  The first of these passes also validates ``D``
and gives the row means, ``diag W`` and ``||W||_F`` (:mod:`linsim.inpca._matrix_stats`: no
separate statistics pass; a bad ``D`` raises the same located errors at the end of that pass).
It proves symmetry bit for bit (a 64-bit hash per tile pair, the entries compared one by one
only where the hashes differ); a bitwise-symmetric ``D`` is then read only in its upper
triangle, half the reading per pass.

Solvers (:mod:`linsim.inpca._eigensolvers`)
-------------------------------------------
``"dense"`` (:func:`scipy.linalg.eigh` of the formed ``W``), ``"iterative"`` (block Krylov with
Rayleigh-Ritz on ``V -> -1/2 J D (J V)``; one pass over ``D`` per iteration), ``"arpack"``
(:func:`scipy.sparse.linalg.eigsh` on a ``LinearOperator``, one pass per matrix-vector product).
``"auto"`` uses dense when ``n_components`` is None, for an in-memory ``M <= 200`` or when more
than ``M/10`` components are asked for, ARPACK for an in-memory ``M <= 8000`` (measured faster
than both others there: one cheap pass per matrix-vector product) and block Krylov otherwise
(always for a stored ``D``, where each pass is a read of the store).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from theory.stress import explained_stress  # the one implementation (||W||_F, not its square)

from . import _eigensolvers
from ._matrix_stats import as_stored_matrix, equidistant_message, in_memory_stats
from .checks import DIST_TOL, check_distance_matrix

__all__ = ["InPCA", "double_center", "explained_stress", "embedded_distances"]

_SOLVERS = ("auto", *_eigensolvers.SOLVERS)
#: in-memory sizes up to which "auto" picks the dense solver, then ARPACK (measured on the 2-core
#: machine with k = 10: ARPACK 28 matrix-vector products beat 8 block products up to M = 8000 and
#: dense eigh from M = 500 on; block Krylov wins when each pass over D is expensive)
_DENSE_MAX_M = 200
_ARPACK_MAX_M = 8000


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

    Examples
    --------
    >>> import numpy as np
    >>> D = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 1.0], [4.0, 1.0, 0.0]])  # points 0, 1, 2 on a line
    >>> W = double_center(D)
    >>> (W.round(12) + 0.0).tolist()    # the Gram matrix of the centered points -1, 0, 1
    [[1.0, 0.0, -1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 1.0]]
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

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [1.0, 2.0]])
    >>> embedded_distances(X, [1, -1]).tolist()        # 1^2 - 2^2: time-like axis dominates
    [[0.0, -3.0], [-3.0, 0.0]]
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


class InPCA(BaseEstimator):
    """Intensive principal component analysis of a distance matrix (a scikit-learn estimator).

    Parameters
    ----------
    n_components : int >= 1, optional
        Number ``k`` of eigenpairs (largest ``|lambda|``, both signs).  ``None``: all
        numerically non-zero eigenpairs (dense solver).
    solver : {"auto", "dense", "iterative", "arpack"}
        See the module docstring.
    tol : float > 0
        Residual tolerance of the iterative solvers, relative to ``|lambda_1|`` (default 1e-10).
    max_iter : int >= 1
        Iteration cap of the iterative solvers (a ``RuntimeWarning`` is issued if reached).
    random_state : int >= 0
        Seed of the iterative solvers' random start vectors.
    check_tol : float >= 0
        Relative tolerance of the checks on ``D`` (default 1e-9, see module docstring).

    Attributes
    ----------
    eigenvalues_ : (k,) signed, ``|lambda|`` descending
    eigenvectors_ : (M, k) orthonormal, deterministic signs
    embedding_ : (M, k) ``eigenvectors_ * sqrt(|eigenvalues_|)``
    signature_ : (k,) ``+1``/``-1``
    null_axes_ : (k,) bool, eigenvalues zero to rounding (``|lambda| <= M eps |lambda_1|``)
    explained_stress_ : (k,) cumulative ``chi_1..chi_k``
    frobenius_norm_ : float, ``||W||_F`` of the whole double-centered matrix
    trace_ : float, ``tr W``;  diagonal_ : (M,) ``diag W``
    n_negative_ : int, number of negative eigenvalues among the ``k``
    column_means_ : (M,) column means of ``D``;  grand_mean_ : float
    n_features_in_ : int, ``M``
    solver_ : the solver used;  n_iter_ : iterations (block products or ARPACK matrix-vector
    products; 0 for dense)

    Examples
    --------
    Three models of two samples: D is the mean per-sample Bhattacharyya distance.

    >>> import numpy as np
    >>> from linsim.inpca import bhattacharyya
    >>> p = np.array([[[0.5, 0.5], [0.9, 0.1]], [[0.8, 0.2], [0.5, 0.5]], [[0.1, 0.9], [0.3, 0.7]]])
    >>> D = bhattacharyya(np.log(p))                    # (M, M) = (3, 3)
    >>> emb = InPCA(n_components=2).fit(D)
    >>> emb
    InPCA(n_components=2)
    >>> emb.embedding_.shape
    (3, 2)
    >>> bool(np.isclose(emb.explained_stress_[-1], 1.0))   # 3 points: 2 axes are full rank
    True
    >>> emb.transform(D[:1]).round(12).tolist() == emb.embedding_[:1].round(12).tolist()
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "solver": [StrOptions(set(_SOLVERS))],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "check_tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=None, solver="auto", *, tol=1e-10, max_iter=500, random_state=0,
                 check_tol=DIST_TOL):
        self.n_components = n_components
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.check_tol = check_tol

    # ------------------------------------------------------------------ fit
    def fit(self, D, y=None):
        """Fit the embedding to a distance matrix ``D`` (M, M); returns ``self``.

        Parameters
        ----------
        D : array (M, M), torch tensor, numpy.memmap, zarr.Array or path of a zarr array
            Distances (e.g. :func:`linsim.inpca.bhattacharyya`).  Memory maps and zarr arrays
            are read in tile pairs, never whole (see the module docstring).  A path may also be
            the store ``bhattacharyya(..., out=path)`` wrote (its ``distance`` array; refused
            while tiles are missing).
        y : ignored
            Present for scikit-learn API compatibility.

        Returns
        -------
        InPCA
            ``self``, fitted.

        Raises
        ------
        ValueError
            A bad ``D`` (located entry), coinciding models, or ``n_components > M``.
        sklearn.utils._param_validation.InvalidParameterError
            A parameter outside its declared constraints (a ``ValueError``).
        """
        self._validate_params()
        stored = as_stored_matrix(D)
        if stored is not None:  # validated and measured by the solver's first pass over D
            if stored.shape[0] != stored.shape[1]:
                raise ValueError(f"{stored.name} must be square (M, M); got shape {stored.shape}")
            stats = None
            D = stored
        else:
            D, stats = in_memory_stats(D, self.check_tol)
        M = D.shape[0]
        k = self.n_components
        if k is not None:
            if k > M:
                raise ValueError(f"n_components must be an integer in [1, M={M}]; got {k!r}")
            k = int(k)
        solver = self.solver
        if solver == "auto":
            if stored is not None:
                solver = "iterative" if k is not None else "dense"
            elif k is None or M <= _DENSE_MAX_M or k > M // 10:
                solver = "dense"
            else:
                solver = "arpack" if M <= _ARPACK_MAX_M else "iterative"
        if solver != "dense" and k is None:
            raise ValueError(f"the {solver} solver needs n_components")
        if solver == "dense" and stored is not None:
            raise ValueError("the dense solver needs D in memory; use solver='iterative' (or 'auto') with "
                             "n_components for a stored D, or load it with numpy.asarray(D)")
        if stats is not None and stats.frobenius_sq == 0.0:
            raise ValueError(equidistant_message(M))

        # up to M = 4000 everything runs on one BLAS thread (restored after): small threaded
        # products and factorizations were measured many times slower on a loaded machine
        with _eigensolvers.blas_threads_limited(1 if M <= 4000 else None):
            op = _eigensolvers.CenteredOperator(D, stored=stored is not None, check_tol=self.check_tol)
            try:
                lam, V, n_iter = _eigensolvers.SOLVERS[solver](
                    op, k, tol=self.tol, max_iter=self.max_iter, rng=np.random.default_rng(self.random_state))
            finally:
                op.close()
        if stats is None:
            stats = op.stats  # a stored D: from the first product pass (which validated D)
        fro = float(np.sqrt(stats.frobenius_sq))

        V = _eigensolvers.fix_signs(V)
        null = np.abs(lam) <= M * np.finfo(float).eps * abs(lam[0])
        lam = np.where(null, 0.0, lam)
        self.eigenvalues_ = lam
        self.eigenvectors_ = V
        self.signature_ = np.where(lam < 0, -1.0, 1.0)
        self.null_axes_ = null
        self.embedding_ = V * np.sqrt(np.abs(lam))
        self.frobenius_norm_ = fro
        self.trace_ = float(stats.diagonal.sum())
        self.diagonal_ = stats.diagonal
        self.explained_stress_ = explained_stress(lam, fro)
        self.n_negative_ = int(np.sum(lam < 0))
        self.column_means_ = stats.column_means
        self.grand_mean_ = stats.grand_mean
        self.n_features_in_ = M
        self.solver_ = solver
        self.n_iter_ = n_iter
        return self

    # ------------------------------------------------------------------ out of sample
    def transform(self, D_new):
        """Coordinates of new models given their distances to the fitted models.

        Gower/Nystrom extension with Minkowski signs: with ``B = -1/2 (D_new - rowmean(D_new)
        - column_means_ + grand_mean_)`` (row means per new model), coordinate ``j`` is
        ``B v_j / (sign(lambda_j) sqrt|lambda_j|)``.  Exact for in-sample rows: row ``u`` of the
        fitted ``D`` returns ``embedding_[u]``.  Null axes (``null_axes_``) get coordinate 0:
        distances determine no position along them.

        Parameters
        ----------
        D_new : array_like (q, M) or (M,)
            Distances (same convention as the fitted ``D``) from ``q`` new models to the ``M``
            fitted ones; finite and non-negative (tolerance as in ``fit``).

        Returns
        -------
        numpy.ndarray float64 (q, k)

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
        >>> D = ((X[:, None] - X[None]) ** 2).sum(-1)          # squared Euclidean: exact PCA
        >>> ip = InPCA(n_components=3, solver="dense").fit(D)
        >>> ip.null_axes_.tolist()                             # 3 points span only 2 axes
        [False, False, True]
        >>> y = np.array([[0.5, 1.0]])
        >>> d_new = ((y[:, None] - X[None]) ** 2).sum(-1)
        >>> ip.transform(d_new)[:, 2].tolist()                 # null axis: coordinate 0
        [0.0]
        """
        check_is_fitted(self, "eigenvalues_")
        D_new = np.asarray(D_new.detach().cpu() if hasattr(D_new, "detach") else D_new)
        if D_new.ndim == 1:
            D_new = D_new[None, :]
        if D_new.ndim != 2 or D_new.shape[1] != self.n_features_in_:
            raise ValueError(f"D_new must have shape (q, M={self.n_features_in_}); got {D_new.shape}")
        D_new = check_distance_matrix(D_new, "D_new", self.check_tol, square=False)
        B = D_new - D_new.mean(axis=1, keepdims=True) - self.column_means_[None, :] + self.grand_mean_
        B *= -0.5
        scale = self.signature_ * np.sqrt(np.abs(self.eigenvalues_))
        scale = np.where(self.null_axes_, 1.0, scale)
        return np.where(self.null_axes_, 0.0, (B @ self.eigenvectors_) / scale)

    def fit_transform(self, D, y=None):
        """``fit(D).embedding_``: coordinates (M, k) of the fitted models.

        Examples
        --------
        >>> import numpy as np
        >>> InPCA(n_components=1).fit_transform(np.array([[0.0, 4.0], [4.0, 0.0]])).ravel().tolist()
        [1.0, -1.0]
        """
        return self.fit(D).embedding_

    def embedded_distances(self, X=None, Y=None):
        """Signed squared distances in the fitted embedding (default: between fitted points).

        Examples
        --------
        >>> import numpy as np
        >>> ip = InPCA(n_components=1).fit(np.array([[0.0, 4.0], [4.0, 0.0]]))
        >>> ip.embedded_distances().tolist()
        [[0.0, 4.0], [4.0, 0.0]]
        """
        check_is_fitted(self, "eigenvalues_")
        if X is None:
            X = self.embedding_
        return embedded_distances(X, self.signature_, Y)
