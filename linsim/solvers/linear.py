"""Closed-form gradient descent and gradient flow of a linear model on the squared loss.

Model and loss
--------------
Outputs ``f(x) = W x`` with ``W`` of shape (C, d); on training inputs ``X`` (n, d) and targets
``Y`` (n, C) the loss is::

    L(W) = (1 / 2n) * || X W^T - Y ||_F^2 ,   grad L = W Sigma - B,
    Sigma = X^T X / n  (d, d),   B = Y^T X / n  (C, d).

GD with learning rate ``eta``: ``W_{t+1} = W_t - eta (W_t Sigma - B)``; flow: ``dW/dt = -(W Sigma - B)``.

Solution through one eigendecomposition
---------------------------------------
With ``Sigma = V diag(lambda) V^T`` (descending ``lambda``) and ``~W = W V``, ``~B = B V``, every
mode ``j`` evolves on its own::

    ~W_t[:, j] = a_j(t) ~W_0[:, j] + phi_j(t) ~B[:, j]
    GD:   a_j(t) = (1 - eta lambda_j)^t,   phi_j(t) = (1 - a_j(t)) / lambda_j
    flow: a_j(t) = exp(-lambda_j t),       phi_j(t) = (1 - a_j(t)) / lambda_j

``(1 - eta lambda)^t`` is evaluated as ``sign^t * exp(t * log|1 - eta lambda|)`` (``log1p`` for
``eta lambda < 1/2``, ``expm1`` for ``1 - a``), so the cost does not depend on ``t`` and small
``eta lambda`` keeps full relative precision; ``eta lambda == 1`` gives ``a = 0`` for ``t >= 1``.
Modes with ``lambda_j <= lambda_max * d * eps`` form the numerical null space of ``Sigma``:
there ``~B[:, j] = 0`` (``B v = Y^T X v / n`` and ``X v = 0``), so the null-space component of
``W_0`` never moves (``a = 1, phi = 0``).  As ``t -> infinity`` ``W_t`` tends to
``W_LS + W_0 P_null`` with the minimum-norm least-squares solution ``W_LS = B Sigma^+``; this
holds for realizable (``Y = X W*^T``) and non-realizable ``Y`` alike.

The pattern follows neural-tangents' ``predict``: :func:`linear_predictor` eigendecomposes once
and returns a function of the step counts / times; :func:`linear_gd` and :func:`linear_flow` are
thin wrappers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from linsim.solvers._checks import (
    as_matrix,
    check_inputs,
    check_lr,
    check_steps,
    check_times,
    check_w0,
    check_xy,
    rank_tolerance,
)
from linsim.solvers._stepping import weight_gd


def mode_factors(
    eigenvalues: np.ndarray,
    t: np.ndarray,
    lr: float | None = None,
    null_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-mode decay ``a_j(t)`` and accumulated-drive ``phi_j(t)`` factors.

    Parameters
    ----------
    eigenvalues : array (p,)
        Curvatures ``lambda_j >= 0`` of the quadratic loss (eigenvalues of ``Sigma`` or ``K/n``).
    t : array (K,)
        Integer step counts (GD, ``lr`` given) or flow times (``lr=None``).
    lr : float or None
        GD learning rate; ``None`` selects gradient flow.
    null_mask : bool array (p,), optional
        Modes to freeze (``a = 1, phi = 0``): the numerical null space.

    Returns
    -------
    a, phi : arrays (K, p)
        ``a = (1 - lr*lambda)^t`` or ``exp(-lambda t)``; ``phi = (1 - a) / lambda``.

    Examples
    --------
    >>> a, phi = mode_factors(np.array([1.0, 0.5]), np.array([0, 2]), lr=0.5)
    >>> a.tolist(), (phi + 0.0).round(12).tolist()
    ([[1.0, 1.0], [0.25, 0.5625]], [[0.0, 0.0], [0.75, 0.875]])
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[:, None]
    if null_mask is None:
        null_mask = lam <= 0
    safe = np.where(null_mask, 1.0, lam)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if lr is None:
            expo = -lam[None, :] * t
            a = np.exp(expo)
            one_minus_a = -np.expm1(expo)
        else:
            x = lr * lam
            small = x < 0.5
            # log|1 - x|: log1p keeps precision for small x; x == 1 gives -inf (a = 0 for t >= 1)
            log_abs = np.where(small, np.log1p(-np.where(small, x, 0.0)), np.log(np.abs(1.0 - x)))
            expo = t * log_abs[None, :]
            expo = np.where(t == 0, 0.0, expo)  # 0 * -inf -> a^0 = 1
            mag = np.exp(expo)
            negative = (1.0 - x) < 0
            odd = (np.asarray(t) % 2) == 1
            sign = np.where(negative[None, :] & odd, -1.0, 1.0)
            a = sign * mag
            one_minus_a = np.where(small[None, :], -np.expm1(expo), 1.0 - a)
    phi = one_minus_a / safe[None, :]
    a = np.where(null_mask[None, :], 1.0, a)
    phi = np.where(null_mask[None, :], 0.0, phi)
    return a, phi


class LinearDynamics:
    """Eigendecomposition of one training set, reused for any initialization, time and inputs.

    Parameters
    ----------
    X : array (n, d)
        Training inputs.
    Y : array (n, C)
        Training targets (any, realizable or not).
    eigenpairs : (array (d,), array (d, d)), optional
        Eigenvalues (descending, >= 0) and orthonormal eigenvectors (columns) of ``Sigma``
        computed elsewhere (e.g. from the SVD of ``X``, as :func:`linsim.simulate` does), so
        that the solver and whoever stored them share one eigenbasis.  They are checked:
        ``||Sigma V - V diag(lambda)|| <= 1e-8 lambda_max`` and ``V^T V = I`` to ``1e-8``.

    Attributes
    ----------
    eigenvalues_ : array (d,)
        Eigenvalues of ``Sigma = X^T X / n`` in descending order.
    eigenvectors_ : array (d, d)
        Matching orthonormal eigenvectors as columns.
    null_mask_ : bool array (d,)
        Modes treated as exact zeros (``lambda <= lambda_max * d * eps``).
    drive_ : array (C, d)
        ``B V = Y^T X V / n`` in the eigenbasis (zero on the null space).
    lam_max_ : float
        Largest eigenvalue; GD is stable iff ``lr < 2 / lam_max_``.

    Examples
    --------
    >>> dyn = LinearDynamics(np.array([[2.0, 0.0], [0.0, 1.0]]), np.zeros((2, 1)))
    >>> dyn.eigenvalues_.tolist(), dyn.max_lr
    ([2.0, 0.5], 1.0)
    """

    def __init__(self, X, Y, *, eigenpairs=None):
        X, Y = check_xy(X, Y)
        n, d = X.shape
        self.n_samples_, self.n_features_, self.n_outputs_ = n, d, Y.shape[1]
        self.X_ = X
        sigma = X.T @ X / n
        if eigenpairs is None:
            lam, V = np.linalg.eigh(sigma)
            order = np.argsort(lam)[::-1]
            lam, V = lam[order], V[:, order]
        else:
            lam, V = _check_eigenpairs(eigenpairs, sigma)
        tol = rank_tolerance(lam, d)
        self.null_mask_ = lam <= tol
        self.eigenvalues_ = np.where(self.null_mask_, 0.0, lam)
        self.eigenvectors_ = V
        drive = (Y.T @ (X @ V)) / n
        drive[:, self.null_mask_] = 0.0
        self.drive_ = drive
        self.lam_max_ = float(self.eigenvalues_[0])

    @property
    def max_lr(self) -> float:
        """The GD stability limit ``2 / lambda_max`` (inf when ``Sigma = 0``)."""
        return 2.0 / self.lam_max_ if self.lam_max_ > 0 else np.inf

    def factors(self, t, lr=None, *, allow_divergence=False):
        """Validated ``(a, phi)`` of :func:`mode_factors` for steps (``lr`` given) or times."""
        if lr is None:
            t = check_times(t)
        else:
            t = check_steps(t)
            lr = check_lr(lr, self.lam_max_, allow_divergence=allow_divergence)
        return mode_factors(self.eigenvalues_, t, lr, self.null_mask_)

    def least_squares_weights(self) -> np.ndarray:
        """Minimum-norm least-squares weights ``W_LS = B Sigma^+``, shape (C, d)."""
        inv = np.where(self.null_mask_, 0.0, 1.0 / np.where(self.null_mask_, 1.0, self.eigenvalues_))
        return (self.drive_ * inv) @ self.eigenvectors_.T

    def _check_w0(self, W0):
        return check_w0(W0, self.n_outputs_, self.n_features_)

    def weights(self, W0, t, lr=None, *, allow_divergence=False) -> np.ndarray:
        """Weights ``W_t`` for every run and listed step/time, shape (R, K, C, d)."""
        W0 = self._check_w0(W0)
        a, phi = self.factors(t, lr, allow_divergence=allow_divergence)
        V = self.eigenvectors_
        Wt0 = W0 @ V  # (R, C, d)
        Wt = Wt0[:, None, :, :] * a[None, :, None, :] + (self.drive_[None, :, :] * phi[:, None, :])[None]
        return Wt @ V.T

    def outputs(self, W0, t, lr=None, *, inputs=None, allow_divergence=False) -> np.ndarray:
        """Outputs ``Z W_t^T``, shape (R, K, m, C), on ``inputs`` Z (m, d) (default: X).

        ``t`` lists integer GD steps when ``lr`` is given, flow times when ``lr`` is None.
        ``W0`` has shape (R, C, d).
        """
        W0 = self._check_w0(W0)
        a, phi = self.factors(t, lr, allow_divergence=allow_divergence)
        Z = self.X_ if inputs is None else check_inputs(inputs, self.n_features_)
        return _spectral_outputs(Z @ self.eigenvectors_, W0 @ self.eigenvectors_, self.drive_, a, phi)


def _check_eigenpairs(eigenpairs, sigma):
    try:
        lam, V = eigenpairs
    except (TypeError, ValueError):
        raise TypeError("eigenpairs must be a pair (eigenvalues (d,), eigenvectors (d, d))") from None
    d = sigma.shape[0]
    lam = as_matrix("eigenpairs[0] (eigenvalues)", lam, ndim=1)
    V = as_matrix("eigenpairs[1] (eigenvectors)", V)
    if lam.shape != (d,) or V.shape != (d, d):
        raise ValueError(f"eigenpairs must have shapes (d,) and (d, d) with d={d}; got {lam.shape} and {V.shape}")
    if np.any(np.diff(lam) > 0) or np.any(lam < 0):
        raise ValueError("eigenpairs[0] must be non-negative and in descending order")
    scale = max(float(lam[0]), np.finfo(np.float64).tiny)
    resid = float(np.abs(sigma @ V - V * lam).max())
    ortho = float(np.abs(V.T @ V - np.eye(d)).max())
    if resid > 1e-8 * scale or ortho > 1e-8:
        raise ValueError(
            f"eigenpairs are not the eigendecomposition of Sigma = X^T X / n: max |Sigma V - V diag(lambda)| "
            f"= {resid:.3g} (lambda_max {scale:.3g}), max |V^T V - I| = {ortho:.3g}"
        )
    return lam, V


def _spectral_outputs(Zt, Wt0, drive, a, phi) -> np.ndarray:
    """``out[r,k,i,c] = sum_j Zt[i,j] (Wt0[r,c,j] a[k,j] + drive[c,j] phi[k,j])``."""
    R, C, p = Wt0.shape
    m = Zt.shape[0]
    K = a.shape[0]
    out = np.empty((R, K, m, C), dtype=np.float64)
    flat = Wt0.reshape(R * C, p)
    target = Zt @ (drive[None, :, :] * phi[:, None, :]).transpose(0, 2, 1)  # (K, m, C)
    for k in range(K):
        block = Zt @ (flat * a[k]).T  # (m, R*C)
        np.add(block.reshape(m, R, C).transpose(1, 0, 2), target[k][None], out=out[:, k])
    return out


def linear_predictor(X, Y, *, lr: float | None = None, allow_divergence: bool = False,
                     eigenpairs=None) -> Callable:
    """Eigendecompose ``Sigma`` once and return ``predict(t, W0, inputs=None)``.

    Parameters
    ----------
    X : array (n, d)
        Training inputs.
    Y : array (n, C)
        Training targets.
    lr : float or None
        GD learning rate (then ``t`` counts steps); ``None`` for gradient flow (``t`` is time).
    allow_divergence : bool
        Permit ``lr >= 2 / lambda_max`` (the iterates then grow without bound).
    eigenpairs : (array (d,), array (d, d)), optional
        Precomputed eigenpairs of ``Sigma`` (see :class:`LinearDynamics`).

    Returns
    -------
    predict : callable
        ``predict(t, W0, inputs=None) -> (R, K, m, C)`` outputs on ``inputs`` (default ``X``)
        of the runs started at ``W0`` (R, C, d) after each entry of ``t`` (K,).  The
        :class:`LinearDynamics` object is available as ``predict.dynamics``.

    Examples
    --------
    >>> X, Y = np.eye(2), np.array([[1.0], [2.0]])   # Sigma = I/2, B = Y^T X / n = [[0.5, 1.0]]
    >>> W0 = np.zeros((1, 1, 2))
    >>> predict = linear_predictor(X, Y)            # gradient flow
    >>> predict([0.0, 100.0], W0)[0, :, :, 0].round(12).tolist()
    [[0.0, 0.0], [1.0, 2.0]]
    """
    dyn = LinearDynamics(X, Y, eigenpairs=eigenpairs)
    if lr is not None:
        check_lr(lr, dyn.lam_max_, allow_divergence=allow_divergence)

    def predict(t, W0, inputs=None):
        return dyn.outputs(W0, t, lr, inputs=inputs, allow_divergence=allow_divergence)

    predict.dynamics = dyn
    return predict


def linear_gd(X, Y, W0, lr, steps, *, allow_divergence=False, inputs=None) -> np.ndarray:
    """Outputs of a linear model after each listed number of GD steps, in closed form.

    Parameters
    ----------
    X : array (n, d)
        Training inputs.
    Y : array (n, C)
        Training targets; the loss is ``(1/2n) ||X W^T - Y||^2``.
    W0 : array (R, C, d)
        Initial weights of ``R`` runs.
    lr : float
        Learning rate; must satisfy ``lr < 2 / lambda_max(X^T X / n)``.
    steps : sequence of K non-negative ints
        Step counts at which the outputs are returned.
    allow_divergence : bool
        Skip the stability check.
    inputs : array (m, d), optional
        Evaluate on these inputs instead of ``X`` (e.g. held-out data).

    Returns
    -------
    array (R, K, m, C), float64
        ``inputs @ W_t^T`` for each run and step (``m = n`` by default).

    Examples
    --------
    >>> X, Y = np.eye(2), np.array([[1.0], [2.0]])   # Sigma = I/2, B = Y^T X / n = [[0.5, 1.0]]
    >>> W0 = np.zeros((1, 1, 2))
    >>> linear_gd(X, Y, W0, lr=1.0, steps=[1])[0, 0, :, 0].tolist()   # W_1 = lr * B
    [0.5, 1.0]
    """
    return linear_predictor(X, Y, lr=lr, allow_divergence=allow_divergence)(steps, W0, inputs)


def linear_flow(X, Y, W0, times, *, inputs=None) -> np.ndarray:
    """Outputs of a linear model under gradient flow ``dW/dt = -grad L`` at the listed times.

    Same arguments and return shape as :func:`linear_gd`, with ``times`` (K,) non-negative
    floats instead of ``lr`` and ``steps``.  Flow time ``t`` matches ``t / lr`` GD steps to
    first order in ``lr``.

    Examples
    --------
    >>> X, Y = np.eye(2), np.array([[1.0], [2.0]])   # Sigma = I/2, B = Y^T X / n = [[0.5, 1.0]]
    >>> W0 = np.zeros((1, 1, 2))
    >>> linear_flow(X, Y, W0, [2 * np.log(2)])[0, 0, :, 0].round(12).tolist()   # 1 - e^{-t/2} = 1/2
    [0.5, 1.0]
    """
    return linear_predictor(X, Y, lr=None)(times, W0, inputs)


def linear_gd_explicit(X, Y, W0, lr, steps, *, inputs=None, progress=False) -> np.ndarray:
    """Reference implementation: step GD one iteration at a time (cost grows with T).

    Same arguments and return as :func:`linear_gd`; used by tests and the benchmark.
    ``progress=True`` shows a progress bar over the steps.

    Examples
    --------
    >>> X, Y = np.eye(2), np.array([[1.0], [2.0]])   # Sigma = I/2, B = Y^T X / n = [[0.5, 1.0]]
    >>> W0 = np.zeros((1, 1, 2))
    >>> bool(np.allclose(linear_gd_explicit(X, Y, W0, 1.0, [3]), linear_gd(X, Y, W0, 1.0, [3])))
    True
    """
    X, Y = check_xy(X, Y)
    n, d = X.shape
    W = check_w0(W0, Y.shape[1], d).copy()
    steps = check_steps(steps)
    Z = X if inputs is None else check_inputs(inputs, d)
    sigma = X.T @ X / n
    B = Y.T @ X / n
    return weight_gd(W, lambda W: W @ sigma - B, lr, steps, Z, progress=progress, desc="linear GD")


__all__ = [
    "LinearDynamics",
    "linear_flow",
    "linear_gd",
    "linear_gd_explicit",
    "linear_predictor",
    "mode_factors",
]
