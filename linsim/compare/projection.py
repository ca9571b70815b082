"""Explained stress of models projected into an InPCA basis fitted on other models.

Definition (linsim's; the literature does not say how projected points were scored)
------------------------------------------------------------------------------------
Fit InPCA on the ``B x B`` distances ``D_basis`` of the basis models.  Project ``q`` new models
by their distances ``D_cross`` (q x B) to the basis with the Gower/Nystrom extension
(:meth:`linsim.inpca.InPCA.transform`), giving coordinates ``X`` (q, k).  Score them against
their own distance structure ``W_new = -1/2 J D_new J`` (q x q, ``J`` the centering matrix of
the q new models)::

    chi_k = 1 - ||W_new - W_hat_k||_F / ||W_new||_F,
    W_hat_k = Y_k S_k Y_k^T,   Y_k = J X[:, :k]  (centered coordinates),
    S_k = diag(sign(lambda_1..lambda_k))  (the basis' signature).

``W_hat_k`` is the signed Gram matrix the embedding implies: embedded squared distances are
``sum_j s_j (x_j - y_j)^2`` and double-centering them gives exactly ``Y S Y^T``.  ``chi_k`` can
be negative (a basis that misplaces the new models is worse than no embedding) and need not
increase with ``k``.

Why in-sample rows reproduce the basis' own explained stress
------------------------------------------------------------
If the new models *are* the basis models (``D_cross = D_new = D_basis``), the transform returns
the fitted coordinates ``X[:, j] = v_j sqrt|lambda_j|`` (exact for in-sample rows).  The
eigenvectors of ``W`` with ``lambda_j != 0`` are orthogonal to the constant vector, so ``J X = X``
and ``W_hat_k = sum_{j<=k} s_j |lambda_j| v_j v_j^T = sum_{j<=k} lambda_j v_j v_j^T = W_k``, the
signed rank-``k`` truncation of ``W``.  By orthogonality ``||W - W_k||_F^2 = sum_{j>k} lambda_j^2
= ||W||_F^2 - sum_{j<=k} lambda_j^2``, hence::

    1 - ||W - W_k||_F / ||W||_F = 1 - sqrt(1 - sum_{j<=k} lambda_j^2 / ||W||_F^2),

which is the InPCA explained stress (``InPCA.explained_stress_``).  The test suite checks this
numerically, and also for a permuted subset of the basis, where it does *not* hold in general.
"""

from __future__ import annotations

import numpy as np

from linsim.inpca import InPCA, double_center

__all__ = ["projected_stress", "projected_stress_from_fit", "signed_gram"]


def signed_gram(coords, signature):
    """Signed Gram matrix ``Y S Y^T`` of centered coordinates ``Y = J X``.

    Parameters
    ----------
    coords : array (q, k)
        Embedding coordinates (rows are models).
    signature : array (k,)
        ``+1`` / ``-1`` per axis.

    Returns
    -------
    numpy.ndarray float64 (q, q): ``-1/2 J E J`` for the embedded squared distances ``E``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 2.0]])
    >>> from linsim.inpca import embedded_distances, double_center
    >>> s = np.array([1.0, -1.0])
    >>> bool(np.allclose(signed_gram(X, s), double_center(embedded_distances(X, s))))
    True
    """
    X = np.asarray(coords, dtype=np.float64)
    s = np.asarray(signature, dtype=np.float64)
    if X.ndim != 2 or s.shape != (X.shape[1],):
        raise ValueError(f"need coords (q, k) and signature (k,); got {X.shape} and {s.shape}")
    Y = X - X.mean(axis=0, keepdims=True)
    return (Y * s) @ Y.T


def _check_square(D, name):
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 2:
        raise ValueError(f"{name} must be a square (m, m) matrix with m >= 2; got shape {D.shape}")
    if not np.all(np.isfinite(D)):
        i, j = np.argwhere(~np.isfinite(D))[0]
        raise ValueError(f"{name} has a NaN or inf entry at ({i}, {j})")
    return D


def projected_stress_from_fit(model, D_cross, D_new, n_components=None):
    """:func:`projected_stress` with an already fitted :class:`~linsim.inpca.InPCA` basis.

    Parameters
    ----------
    model : InPCA
        Fitted on the basis distances; its ``k`` components are used (or the first
        ``n_components``).
    D_cross : array (q, B)
    D_new : array (q, q)
    n_components : int, optional

    Returns
    -------
    numpy.ndarray float64 (k,): ``chi_1 .. chi_k`` of the new models.

    Examples
    --------
    Squared Euclidean distances of planar points: two basis axes reproduce new points exactly.

    >>> import numpy as np
    >>> from linsim.inpca import InPCA
    >>> pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> D = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    >>> basis = InPCA(2).fit(D[:3, :3])
    >>> projected_stress_from_fit(basis, D[:, :3], D).round(6).tolist()
    [0.711133, 1.0]
    """
    D_new = _check_square(D_new, "D_new")
    q = D_new.shape[0]
    D_cross = np.asarray(D_cross, dtype=np.float64)
    if D_cross.ndim != 2 or D_cross.shape[0] != q:
        raise ValueError(f"D_cross must have shape (q, B) with q = {q} (the rows of D_new); got "
                         f"{D_cross.shape}")
    k = model.eigenvalues_.size if n_components is None else int(n_components)
    if not 1 <= k <= model.eigenvalues_.size:
        raise ValueError(f"n_components must be in [1, {model.eigenvalues_.size}]; got {n_components}")
    lam = model.eigenvalues_[:k]
    zero = np.abs(lam) <= model.n_features_in_ * np.finfo(float).eps * abs(lam[0])
    if zero.any():
        j = int(np.argmax(zero))
        raise ValueError(f"basis eigenvalue {j + 1} is numerically zero ({lam[j]:.3g}): the basis has rank "
                         f"{j}; ask for at most {j} components")
    X = model.transform(D_cross)[:, :k]
    W = double_center(D_new)
    norm = float(np.linalg.norm(W))
    if norm == 0.0:
        raise ValueError("D_new is zero: the new models coincide and their stress is undefined")
    Y = X - X.mean(axis=0, keepdims=True)
    s = model.signature_[:k]
    out = np.empty(k)
    W_hat = np.zeros_like(W)
    for j in range(k):  # add one signed rank-one term per axis
        W_hat += s[j] * np.outer(Y[:, j], Y[:, j])
        out[j] = 1.0 - np.linalg.norm(W - W_hat) / norm
    return out


def projected_stress(D_basis, D_cross, D_new, n_components):
    """Explained stress ``chi_1..chi_k`` of new models projected into an InPCA basis.

    See the module docstring for the definition and for why in-sample rows reproduce the
    basis' own explained stress.

    Parameters
    ----------
    D_basis : array (B, B)
        Distances between the basis models (Bhattacharyya, mean over samples).
    D_cross : array (q, B)
        Distances from the ``q`` new models to the basis models.
    D_new : array (q, q)
        Distances between the new models.
    n_components : int
        ``k``: number of basis dimensions (largest ``|lambda|``), at most the basis' rank.

    Returns
    -------
    numpy.ndarray float64 (k,): ``chi_k = 1 - ||W_new - Y_k S_k Y_k^T||_F / ||W_new||_F``.

    Examples
    --------
    In-sample rows give the basis' own explained stress:

    >>> import numpy as np
    >>> from linsim.inpca import InPCA, bhattacharyya
    >>> logits = np.random.default_rng(0).normal(size=(6, 4, 3))
    >>> D = bhattacharyya(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))
    >>> chi = projected_stress(D, D, D, 3)
    >>> bool(np.allclose(chi, InPCA(3).fit(D).explained_stress_))
    True
    """
    D_basis = _check_square(D_basis, "D_basis")
    B = D_basis.shape[0]
    if not (isinstance(n_components, (int, np.integer)) and 1 <= n_components <= B - 1):
        raise ValueError(f"n_components must be an integer in [1, B - 1 = {B - 1}]; got {n_components!r}")
    D_cross = np.asarray(D_cross, dtype=np.float64)
    if D_cross.ndim != 2 or D_cross.shape[1] != B:
        raise ValueError(f"D_cross must have shape (q, B) with B = {B} (the basis size); got {D_cross.shape}")
    model = InPCA(n_components=int(n_components)).fit(D_basis)
    return projected_stress_from_fit(model, D_cross, D_new)
