"""Small-logit InPCA spectrum of one ensemble draw (linear model, GD or gradient flow).

Derivation: ``theory/derivations.md`` sections 1-3. In the small-logit limit the mean-over-samples
Bhattacharyya distance between two linear softmax models is ``(1/8C) tr(P⊥ ΔW Σ ΔWᵀ P⊥)``, so InPCA of
the ensemble is PCA of the points ``y = Qᵀ W Λ^{1/2} / sqrt(8C)`` where ``Q`` (C, C-1) is an orthonormal
basis of the class-mean-free subspace. The InPCA eigenvalues are the nonzero eigenvalues of the
centered Gram matrix of these points.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_lr, integer, spectrum_array, steps_array, times_array

__all__ = [
    "class_contrast_basis",
    "residual_factors",
    "effective_rates",
    "embedding_points",
    "gram_spectrum",
    "quadratic_spectrum",
    "quadratic_spectrum_flow",
]


def class_contrast_basis(n_classes: int) -> np.ndarray:
    """Orthonormal basis ``Q`` (C, C-1) of the vectors orthogonal to the all-ones vector.

    ``Q Qᵀ = P⊥ = I - 11ᵀ/C`` and ``Qᵀ Q = I_{C-1}``. Deterministic (Helmert contrasts).

    Examples
    --------
    >>> Q = class_contrast_basis(3)
    >>> Q.shape, bool(abs(Q.sum(axis=0)).max() < 1e-15)
    ((3, 2), True)
    """
    C = integer(n_classes, "n_classes", minimum=2)
    Q = np.zeros((C, C - 1))
    for j in range(1, C):
        Q[:j, j - 1] = 1.0
        Q[j, j - 1] = -float(j)
        Q[:, j - 1] /= np.sqrt(j * (j + 1.0))
    return Q


def effective_rates(eigenvalues, n_classes: int | None = None, loss: str = "squared") -> np.ndarray:
    """Relaxation rates of the modes: ``λ_k`` (squared loss) or ``λ_k / C`` (softmax cross-entropy).

    For cross-entropy toward teacher probabilities ``softmax(W* x)`` near the uniform point the gradient
    is ``(1/C) P⊥ (W - W*) Σ`` (derivations.md §5), so every rate is divided by ``C``.

    Examples
    --------
    >>> effective_rates([1.0, 0.5], 2, loss='cross_entropy')
    array([0.5 , 0.25])
    """
    lam = spectrum_array(eigenvalues)
    if loss == "squared":
        return lam
    if loss == "cross_entropy":
        if n_classes is None:
            raise ValueError("loss='cross_entropy' needs n_classes")
        return lam / float(integer(n_classes, "n_classes", minimum=2))
    raise ValueError(f"loss must be 'squared' or 'cross_entropy', got {loss!r}")


def residual_factors(rates, checkpoints, lr: float | None = None, dynamics: str = "gd") -> np.ndarray:
    """Per-mode residual factors ``a_k(t)`` at each checkpoint, shape (K, d).

    The residual ``W_t - W*`` of mode k is ``(W_0 - W*) a_k(t)``. (``linsim.solvers.mode_factors``
    is a different object: the pair ``(a, phi)`` of decay and accumulated-drive factors.)

    ``dynamics='gd'``: ``(1 - lr * rate_k) ** t`` with integer steps ``t``.
    ``dynamics='flow'``: ``exp(-rate_k * t)`` with times ``t`` (``lr`` must be None).

    Examples
    --------
    >>> residual_factors([1.0, 0.5], [0, 1, 2], lr=1.0)
    array([[1.  , 1.  ],
           [0.  , 0.5 ],
           [0.  , 0.25]])
    """
    rates = spectrum_array(rates, "rates")
    if dynamics == "gd":
        if lr is None:
            raise ValueError("dynamics='gd' needs lr")
        lr = check_lr(lr, rates)
        t = steps_array(checkpoints)
        return (1.0 - lr * rates)[None, :] ** t[:, None].astype(np.float64)
    if dynamics == "flow":
        if lr is not None:
            raise ValueError("dynamics='flow' takes no lr (times are in units of 1/rate)")
        t = times_array(checkpoints, "times")
        return np.exp(-np.outer(t, rates))
    raise ValueError(f"dynamics must be 'gd' or 'flow', got {dynamics!r}")


def _check_weights(eigenvalues, teacher, init):
    lam = spectrum_array(eigenvalues)
    Wt = as_float_array(teacher, "teacher", ndim=2)
    W0 = as_float_array(init, "init", ndim=3)
    d = lam.size
    if Wt.shape[1] != d:
        raise ValueError(f"teacher must have shape (C, d={d}), got {Wt.shape}")
    if W0.shape[1:] != Wt.shape:
        raise ValueError(f"init must have shape (R, C={Wt.shape[0]}, d={d}), got {W0.shape}")
    if Wt.shape[0] < 2:
        raise ValueError("need at least 2 classes (teacher.shape[0] >= 2)")
    return lam, Wt, W0


def embedding_points(eigenvalues, teacher, init, factors) -> np.ndarray:
    """Small-logit embedding points, shape (M = R*K, (C-1)*d), run-major.

    Row ``(r, t)`` is ``Qᵀ (W_{r,t} - W*) Λ^{1/2} / sqrt(8C)`` flattened, with
    ``W_{r,t} - W* = (W0_r - W*) diag(factors[t])``. Squared Euclidean distances between rows equal the
    small-logit Bhattacharyya distances (mean over samples); the constant ``W*`` drops out on centering.

    Examples
    --------
    >>> import numpy as np
    >>> Y = embedding_points([1.0, 0.5], np.zeros((2, 2)), np.ones((3, 2, 2)), np.ones((4, 2)))
    >>> Y.shape
    (12, 2)
    """
    lam, Wt, W0 = _check_weights(eigenvalues, teacher, init)
    F = as_float_array(factors, "factors", ndim=2)
    if F.shape[1] != lam.size:
        raise ValueError(f"factors must have shape (K, d={lam.size}), got {F.shape}")
    R, C, d = W0.shape
    Q = class_contrast_basis(C)
    E = np.einsum("cj,rcd->rjd", Q, W0 - Wt[None])  # (R, C-1, d)
    prof = F * np.sqrt(lam)[None, :] / np.sqrt(8.0 * C)  # (K, d)
    Y = E[:, None, :, :] * prof[None, :, None, :]  # (R, K, C-1, d)
    return Y.reshape(R * F.shape[0], (C - 1) * d)


def gram_spectrum(points) -> np.ndarray:
    """Eigenvalues of the centered Gram matrix of ``points`` (M, p), sorted by |λ| descending.

    Computed on the smaller side: ``eigvalsh`` of the (M, M) Gram if M <= p, else of the (p, p)
    scatter matrix; returns ``min(M, p)`` values (the remaining ones are exactly zero). Values are not
    clipped, so round-off may leave tiny negatives.

    Examples
    --------
    >>> gram_spectrum([[0.0, 0.0], [2.0, 0.0]])
    array([2., 0.])
    """
    Y = as_float_array(points, "points", ndim=2)
    Yc = Y - Y.mean(axis=0, keepdims=True)
    if Yc.shape[0] <= Yc.shape[1]:
        ev = np.linalg.eigvalsh(Yc @ Yc.T)
    else:
        ev = np.linalg.eigvalsh(Yc.T @ Yc)
    return ev[np.argsort(-np.abs(ev), kind="stable")]


def quadratic_spectrum(eigenvalues, teacher, init, lr, steps, *, dynamics: str = "gd",
                       loss: str = "squared") -> np.ndarray:
    """Predicted InPCA eigenvalues of an ensemble of linear softmax models (small-logit limit).

    Parameters
    ----------
    eigenvalues : (d,) array
        Eigenvalues ``λ_k`` of the input correlation ``Σ = XᵀX/n`` (inputs in its eigenbasis).
        For a kernel machine pass the eigenvalues of ``K/n`` (see :func:`theory.kernel_quadratic_spectrum`).
    teacher : (C, d) array
        Teacher weights ``W*`` (targets are the teacher logits ``W* x``).
    init : (R, C, d) array
        Initial weights of the R runs.
    lr : float
        Learning rate η (GD); must satisfy η·max rate < 2. For ``dynamics='flow'`` pass None.
    steps : (K,) ints
        Checkpoints (GD step counts), or times for ``dynamics='flow'``.
    dynamics : {'gd', 'flow'}
        Discrete gradient descent ``W_t = W* + (W0 - W*) diag((1 - η r_k)^t)`` or gradient flow
        ``exp(-r_k t)``.
    loss : {'squared', 'cross_entropy'}
        Squared loss on logits, ``L = (1/2n)||X Wᵀ - X W*ᵀ||²`` (rates ``r_k = λ_k``), or softmax
        cross-entropy toward ``softmax(W* x)`` in its small-logit regime (rates ``λ_k / C``).

    Returns
    -------
    (min(R*K, (C-1)*d),) array
        InPCA eigenvalues (units of the mean-over-samples Bhattacharyya distance), sorted by |λ|
        descending; points ordered run-major ``(r, t)``. Includes all nonzero eigenvalues, so
        ``theory.explained_stress`` can be formed from it.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> ev = quadratic_spectrum([1.0, 0.5], g.normal(size=(3, 2)), g.normal(size=(4, 3, 2)), 1.0, [0, 1, 5])
    >>> ev.shape, bool(np.all(np.diff(np.abs(ev)) <= 0))
    ((4,), True)
    """
    lam, Wt, W0 = _check_weights(eigenvalues, teacher, init)
    rates = effective_rates(lam, Wt.shape[0], loss)
    F = residual_factors(rates, steps, lr=lr if dynamics == "gd" else None, dynamics=dynamics)
    return gram_spectrum(embedding_points(lam, Wt, W0, F))


def quadratic_spectrum_flow(eigenvalues, teacher, init, times, *, loss: str = "squared") -> np.ndarray:
    """Gradient-flow variant of :func:`quadratic_spectrum`: factors ``exp(-r_k t)`` at ``times`` (K,).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> quadratic_spectrum_flow([1.0, 0.5], g.normal(size=(3, 2)), g.normal(size=(4, 3, 2)), [0.0, 1.0]).shape
    (4,)
    """
    return quadratic_spectrum(eigenvalues, teacher, init, None, times, dynamics="flow", loss=loss)
