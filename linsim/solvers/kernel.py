"""Kernel machines trained by function-space gradient descent / flow on the squared loss.

Normalization
-------------
The kernel machine ``f(x) = theta^T phi(x)`` with feature map ``phi`` (``k(x, x') = phi(x)^T
phi(x')``) trained on ``L = (1/2n) sum_i ||f(x_i) - y_i||^2`` has, on the training outputs
``F = f(X)`` (n, C) and the Gram matrix ``K = k(X, X)`` (n, n)::

    GD:    F_{t+1} = F_t - eta (K / n) (F_t - Y)
    flow:  dF/dt   = -(K / n) (F - Y)

and at any other input ``x``::

    f_{t+1}(x) = f_t(x) - (eta / n) k(x, X) (F_t - Y).

With ``K / n = U diag(mu) U^T`` this gives in closed form::

    F_t    = F_0 - U diag(1 - a(t)) U^T (F_0 - Y)
    f_t(x) = f_0(x) - k(x, X) / n  U diag(phi(t)) U^T (F_0 - Y)

with the same ``a(t) = (1 - eta mu)^t`` (or ``exp(-mu t)``) and ``phi = (1 - a) / mu`` as the
linear model (:func:`linsim.solvers.linear.mode_factors`); null modes of ``K`` are frozen.
For the *linear* kernel ``k(x, x') = x^T x'`` and ``F_0 = X W_0^T``, ``f_0(x) = W_0 x`` this is
exactly model 1 (``linsim.solvers.linear``): ``K / n = X X^T / n`` has the non-zero eigenvalues
of ``Sigma = X^T X / n`` and the same learning-rate limit ``2 / mu_max``.

Kernels
-------
``linear``  ``x^T x'``.
``rbf``     ``exp(-||x - x'||^2 / (2 bandwidth^2))``.
``arccos``  arc-cosine kernel of order 1 (Cho & Saul), normalized as the ReLU feature covariance
            ``E_w[relu(w^T x) relu(w^T x')]`` with ``w ~ N(0, I)``:
            ``||x|| ||x'|| (sin theta + (pi - theta) cos theta) / (2 pi)``.
``ntk``     neural tangent kernel of the one-hidden-layer ReLU net
            ``f(x) = m^{-1/2} sum_j v_j relu(w_j^T x)`` (both layers trained, standard
            normal init): ``arccos(x, x') + x^T x' (pi - theta) / (2 pi)``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from linsim.registry import Registry
from linsim.solvers._checks import (
    as_matrix,
    check_inputs,
    check_lr,
    check_steps,
    check_times,
    check_xy,
)
from linsim.solvers.linear import mode_factors

def _angle_terms(A: np.ndarray, B: np.ndarray):
    na = np.linalg.norm(A, axis=1)
    nb = np.linalg.norm(B, axis=1)
    dots = A @ B.T
    norms = np.outer(na, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 1.0)
    cos = np.clip(cos, -1.0, 1.0)  # |cos| <= 1 exactly; only round-off can step outside
    theta = np.arccos(cos)
    return dots, norms, cos, theta


def _linear_kernel(A, B, bandwidth):
    return A @ B.T


def _rbf_kernel(A, B, bandwidth):
    bandwidth = float(bandwidth)
    if not np.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"RBF bandwidth must be a positive finite number; got {bandwidth}")
    sq = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2 * A @ B.T
    return np.exp(-np.maximum(sq, 0.0) / (2 * bandwidth**2))  # sq >= 0 exactly; round-off only


def _arccos_kernel(A, B, bandwidth):
    _, norms, cos, theta = _angle_terms(A, B)
    return norms * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)


def _ntk_kernel(A, B, bandwidth):
    dots, _, _, theta = _angle_terms(A, B)
    return _arccos_kernel(A, B, bandwidth) + dots * (np.pi - theta) / (2 * np.pi)


#: The kernel registry: name -> ``kernel(A (p, d), B (q, d), bandwidth) -> (p, q)``.
#: Extend it with :func:`register_kernel`; ``EnsembleConfig.kernel`` and the CLI read it.
KERNELS: Registry[Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = Registry(
    "kernel", callable_only=True, entries={
        "linear": _linear_kernel,
        "rbf": _rbf_kernel,
        "arccos": _arccos_kernel,
        "ntk": _ntk_kernel,
    })


def register_kernel(name: str, kernel: Callable[[np.ndarray, np.ndarray, float], np.ndarray], *,
                    replace: bool = False) -> None:
    """Add a named kernel ``kernel(A, B, bandwidth) -> (len(A), len(B))`` to :data:`KERNELS`.

    The kernel must be symmetric positive semi-definite (:class:`KernelDynamics` checks the
    Gram matrix it is trained on).

    Examples
    --------
    >>> register_kernel("cosine", lambda A, B, bw: _angle_terms(A, B)[2])
    >>> kernel_matrix(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]), "cosine").round(6).tolist()
    [[0.707107]]
    >>> del KERNELS["cosine"]
    """
    KERNELS.register(name, kernel, replace=replace)


def kernel_matrix(A, B, kind: str = "linear", bandwidth: float = 1.0) -> np.ndarray:
    """Kernel values ``k(a_i, b_j)``, shape (len(A), len(B)).

    Parameters
    ----------
    A : array (p, d)
    B : array (q, d)
    kind : str (a key of :data:`KERNELS`: "linear", "rbf", "arccos", "ntk", ...) or callable
        See the module docstring for the formulas and normalizations; a callable
        ``kind(A, B) -> (p, q)`` supplies a user kernel.
    bandwidth : float
        RBF length scale (> 0); ignored by the other kernels.

    Examples
    --------
    >>> kernel_matrix(np.array([[0.0], [1.0]]), np.array([[0.0]]), "rbf").round(6).ravel().tolist()
    [1.0, 0.606531]
    """
    A = as_matrix("A", A)
    B = as_matrix("B", B)
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"kernel arguments need the same dimension d; got {A.shape} and {B.shape}")
    if callable(kind):
        out = as_matrix("kernel values", kind(A, B))
        if out.shape != (A.shape[0], B.shape[0]):
            raise ValueError(f"user kernel returned shape {out.shape}; expected {(A.shape[0], B.shape[0])}")
        return out
    out = as_matrix(f"{kind!r} kernel values", KERNELS.lookup(kind, what="kernel kind")(A, B, bandwidth))
    if out.shape != (A.shape[0], B.shape[0]):
        raise ValueError(f"kernel {kind!r} returned shape {out.shape}; expected {(A.shape[0], B.shape[0])}")
    return out


class KernelDynamics:
    """Eigendecomposition of ``K / n`` for one training set, reused for any time and inputs.

    Parameters
    ----------
    X : array (n, d)
        Training inputs.
    Y : array (n, C)
        Training targets.
    kind : str
        Kernel name (see :func:`kernel_matrix`).
    bandwidth : float
        RBF length scale.
    psd_tol : float
        Relative tolerance: eigenvalues of ``K / n`` below ``-psd_tol * mu_max`` raise a
        ``ValueError`` (the kernel matrix is not positive semi-definite); eigenvalues at or below
        ``max(psd_tol * mu_max, n * eps * mu_max)`` in magnitude are the null space (frozen).

    Attributes
    ----------
    eigenvalues_ : array (n,)
        Eigenvalues ``mu`` of ``K / n``, descending, null space set to 0.
    eigenvectors_ : array (n, n)
    null_mask_ : bool array (n,)
    mu_max_ : float
        GD is stable iff ``lr < 2 / mu_max_``.

    Examples
    --------
    >>> dyn = KernelDynamics(np.eye(2), np.zeros((2, 1)))   # linear kernel: K / n = I / 2
    >>> dyn.eigenvalues_.tolist(), dyn.max_lr
    ([0.5, 0.5], 4.0)
    """

    def __init__(self, X, Y, kind: str = "linear", bandwidth: float = 1.0, psd_tol: float = 1e-10):
        X, Y = check_xy(X, Y)
        self.X_, self.Y_ = X, Y
        self.kind, self.bandwidth = kind, bandwidth
        n = X.shape[0]
        K = kernel_matrix(X, X, kind, bandwidth) / n
        K = 0.5 * (K + K.T)
        mu, U = np.linalg.eigh(K)
        order = np.argsort(mu)[::-1]
        mu, U = mu[order], U[:, order]
        mu_max = max(float(np.abs(mu).max()), 0.0)
        if mu.size and mu[-1] < -psd_tol * mu_max:
            raise ValueError(
                f"the {getattr(kind, '__name__', kind)!r} kernel matrix is not positive semi-definite: smallest eigenvalue of "
                f"K/n is {mu[-1]:.3e} < -{psd_tol:g} * {mu_max:.3e}"
            )
        tol = max(psd_tol, n * np.finfo(np.float64).eps) * mu_max
        self.null_mask_ = mu <= tol
        self.eigenvalues_ = np.where(self.null_mask_, 0.0, mu)
        self.eigenvectors_ = U
        self.mu_max_ = float(self.eigenvalues_[0])

    @property
    def max_lr(self) -> float:
        """GD stability limit ``2 / mu_max``."""
        return 2.0 / self.mu_max_ if self.mu_max_ > 0 else np.inf

    def _factors(self, t, lr, allow_divergence):
        if lr is None:
            t = check_times(t)
        else:
            t = check_steps(t)
            lr = check_lr(lr, self.mu_max_, allow_divergence=allow_divergence, what="lambda_max(K/n)")
        return mode_factors(self.eigenvalues_, t, lr, self.null_mask_)

    def train_outputs(self, F0, t, lr=None, *, allow_divergence=False) -> np.ndarray:
        """Training outputs ``F_t``, shape (R, K, n, C), from initial outputs ``F0`` (R, n, C)."""
        F0 = self._check_f0(F0)
        a, _ = self._factors(t, lr, allow_divergence)
        U = self.eigenvectors_
        resid = U.T @ (F0 - self.Y_)  # U^T (F0 - Y), (R, n, C)
        change = U @ ((1.0 - a)[None, :, :, None] * resid[:, None])  # (R, K, n, C)
        return F0[:, None] - change

    def test_outputs(self, F0, f0_test, inputs, t, lr=None, *, allow_divergence=False) -> np.ndarray:
        """Outputs on ``inputs`` (m, d), shape (R, K, m, C), given initial train/test outputs.

        ``F0`` (R, n, C) are the initial outputs on the training inputs and ``f0_test``
        (R, m, C) those on ``inputs``.
        """
        F0 = self._check_f0(F0)
        Z = check_inputs(inputs, self.X_.shape[1])
        f0_test = as_matrix("f0_test", f0_test, ndim=3)
        if f0_test.shape != (F0.shape[0], Z.shape[0], F0.shape[2]):
            raise ValueError(
                f"f0_test must have shape (R, m, C) = ({F0.shape[0]}, {Z.shape[0]}, {F0.shape[2]}); "
                f"got {f0_test.shape}"
            )
        _, phi = self._factors(t, lr, allow_divergence)
        U = self.eigenvectors_
        kzx = kernel_matrix(Z, self.X_, self.kind, self.bandwidth) / self.X_.shape[0]
        kU = kzx @ U  # (m, n)
        resid = U.T @ (F0 - self.Y_)
        change = kU @ (phi[None, :, :, None] * resid[:, None])  # (R, K, m, C)
        return f0_test[:, None] - change

    def _check_f0(self, F0):
        F0 = as_matrix("F0", F0, ndim=3)
        n, C = self.Y_.shape
        if F0.shape[1:] != (n, C):
            raise ValueError(f"F0 must have shape (R, n, C) = (R, {n}, {C}); got {F0.shape}")
        return F0


def kernel_gd(X, Y, F0, lr, steps, *, kind="linear", bandwidth=1.0, inputs=None, f0_test=None,
              allow_divergence=False) -> np.ndarray:
    """Closed-form function-space GD of a kernel machine.

    Parameters
    ----------
    X : array (n, d), Y : array (n, C)
        Training inputs and targets.
    F0 : array (R, n, C)
        Initial outputs on the training inputs (``X @ W0^T`` for the linear kernel).
    lr : float
        Learning rate, ``< 2 / lambda_max(K / n)``.
    steps : sequence of K non-negative ints
    kind, bandwidth : kernel (see :func:`kernel_matrix`)
    inputs : array (m, d), optional
        Held-out inputs; then ``f0_test`` (R, m, C) must be given and the outputs are on them.

    Returns
    -------
    array (R, K, n or m, C)

    Examples
    --------
    >>> X, Y = np.eye(2), np.array([[1.0], [2.0]])
    >>> kernel_gd(X, Y, np.zeros((1, 2, 1)), lr=1.0, steps=[1])[0, 0, :, 0].tolist()   # F_1 = (K/n) Y
    [0.5, 1.0]
    """
    dyn = KernelDynamics(X, Y, kind, bandwidth)
    if inputs is None:
        return dyn.train_outputs(F0, steps, lr, allow_divergence=allow_divergence)
    if f0_test is None:
        raise ValueError("f0_test (initial outputs on inputs) is required when inputs is given")
    return dyn.test_outputs(F0, f0_test, inputs, steps, lr, allow_divergence=allow_divergence)


def kernel_flow(X, Y, F0, times, *, kind="linear", bandwidth=1.0, inputs=None, f0_test=None) -> np.ndarray:
    """Closed-form function-space gradient flow; arguments as :func:`kernel_gd` with ``times``.

    Examples
    --------
    >>> X, Y = np.eye(2), np.array([[1.0], [2.0]])
    >>> kernel_flow(X, Y, np.zeros((1, 2, 1)), [2 * np.log(2)])[0, 0, :, 0].round(12).tolist()
    [0.5, 1.0]
    """
    dyn = KernelDynamics(X, Y, kind, bandwidth)
    if inputs is None:
        return dyn.train_outputs(F0, times, None)
    if f0_test is None:
        raise ValueError("f0_test (initial outputs on inputs) is required when inputs is given")
    return dyn.test_outputs(F0, f0_test, inputs, times, None)


def gp_prior_outputs(X, n_runs: int, C: int, scale: float, seed, *, kind="linear", bandwidth=1.0) -> np.ndarray:
    """Random initial functions: ``n_runs * C`` independent draws from ``GP(0, scale^2 k)``.

    For the linear kernel this has the law of ``X W_0^T`` with ``W_0`` i.i.d. ``N(0, scale^2)``.
    Returns shape (R, p, C) on the rows of ``X`` (p, d) (stack train and test inputs to get a
    joint draw).  Sampled as ``U sqrt(max(mu, 0)) xi`` from the eigendecomposition of ``k(X, X)``
    (round-off negatives of the PSD Gram matrix count as zero).  ``seed`` (int or
    ``numpy.random.SeedSequence``) is required, as everywhere in linsim; ``None`` (ValueError)
    and ``Generator`` objects (TypeError) are refused, with the same messages as
    :mod:`linsim.data`.

    Examples
    --------
    >>> F = gp_prior_outputs(np.eye(3), n_runs=2, C=4, scale=1.0, seed=0)
    >>> F.shape, bool(np.array_equal(F, gp_prior_outputs(np.eye(3), 2, 4, 1.0, 0)))
    ((2, 3, 4), True)
    """
    if seed is None:
        raise ValueError("seed is required (int or SeedSequence); randomness is always explicit")
    if isinstance(seed, np.random.Generator):
        raise TypeError("pass an int or numpy.random.SeedSequence as seed, not a Generator")
    for name, value in (("n_runs", n_runs), ("C", C)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) \
            or not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a finite number >= 0; got {scale!r}")
    X = as_matrix("X", X)
    G = kernel_matrix(X, X, kind, bandwidth)
    name = getattr(kind, "__name__", kind)
    g_max = float(np.abs(G).max()) if G.size else 0.0
    asym = float(np.abs(G - G.T).max()) if G.size else 0.0
    if asym > 1e-10 * g_max:
        raise ValueError(f"the {name!r} kernel matrix is not symmetric (max |K - K^T| = {asym:.3g})")
    mu, U = np.linalg.eigh(0.5 * (G + G.T))
    tol = max(1e-10, X.shape[0] * np.finfo(np.float64).eps) * max(float(np.abs(mu).max()) if mu.size else 0.0, 0.0)
    if mu.size and mu[0] < -tol:
        raise ValueError(
            f"the {name!r} kernel matrix is not positive semi-definite: smallest eigenvalue {mu[0]:.3e} "
            f"(tolerance {tol:.3e}); a Gaussian process with this covariance does not exist"
        )
    root = U * np.sqrt(np.where(mu > 0, mu, 0.0))  # only round-off negatives (within tol) reach here
    xi = np.random.default_rng(seed).standard_normal((n_runs, X.shape[0], C))
    return scale * np.einsum("ij,rjc->ric", root, xi)


__all__ = ["KERNELS", "KernelDynamics", "gp_prior_outputs", "kernel_flow", "kernel_gd", "kernel_matrix", "register_kernel"]
