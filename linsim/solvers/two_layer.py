r"""Two-layer linear network ``f(x) = W2 W1 x`` on the squared loss: closed form, ODE, GD.

Shapes: ``W1`` (h, d), ``W2`` (C, h); batched over runs as (R, h, d) and (R, C, h).

Loss and gradients
------------------
With ``Sigma = X^T X / n`` and ``B = Y^T X / n``::

    L = (1/2n) ||X W1^T W2^T - Y||^2,    E = W2 W1 Sigma - B   (C, d)
    dL/dW1 = W2^T E,                      dL/dW2 = E W1^T

Flow: ``dW1/dt = -W2^T E``, ``dW2/dt = -E W1^T``; GD: ``W <- W - lr * dL/dW``.

Closed form for decoupled (aligned, balanced) initializations
--------------------------------------------------------------
*Aligned data.*  Let ``B = sum_a s_a u_a v_a^T`` (SVD, ``s_a > 0``) and suppose every right
singular vector is an eigenvector of the input correlation, ``Sigma v_a = lambda_a v_a``
(true e.g. for a teacher ``W* = U diag(w) V_p^T`` built on eigenvectors of ``Sigma``:
then ``B = W* Sigma``, ``s_a = w_a lambda_a``).

*Decoupled init.*  ``W1 = sum_a alpha_a r_a v_a^T``, ``W2 = sum_a beta_a u_a r_a^T`` with
orthonormal hidden directions ``r_a``.  Then ``W2 W1 = sum_a alpha_a beta_a u_a v_a^T`` and::

    E = sum_a (alpha_a beta_a lambda_a - s_a) u_a v_a^T
    dW1/dt = -sum_a beta_a (alpha_a beta_a lambda_a - s_a) r_a v_a^T
    dW2/dt = -sum_a alpha_a (alpha_a beta_a lambda_a - s_a) u_a r_a^T

so the ansatz is preserved and each mode obeys
``alpha' = beta (s - lambda alpha beta)``, ``beta' = alpha (s - lambda alpha beta)``.
``alpha^2 - beta^2`` is conserved; *balanced* means ``alpha = beta`` (equivalently
``W1 W1^T = W2^T W2``).  The mode strength ``u = alpha beta = alpha^2`` then obeys the logistic
equation::

    du/dt = 2 alpha alpha' = 2 u (s - lambda u),

with carrying capacity ``s / lambda`` (the least-squares value ``u_a -> s_a / lambda_a``) and
rate ``2 s``.  Separating variables, ``d/dt(1/u) = -2 s / u + 2 lambda`` is linear in ``1/u``:
``1/u(t) = e^{-2st} / u0 + lambda (1 - e^{-2st}) / s``, i.e.::

    u(t) = u0 / ( e^{-2 s t} + lambda u0 phi(t) ),     phi(t) = (1 - e^{-2 s t}) / s

(``phi -> 2t`` as ``s -> 0``: pure decay ``u = u0 / (1 + 2 lambda u0 t)``).  This is the
sigmoidal (Saxe, McClelland & Ganguli 2014) mode dynamics for our ``1/2n`` loss normalization
and a non-white ``Sigma``: the time constant is ``1/(2 s_a)`` with ``s_a`` the input-output
correlation singular value, and the product ``W2 W1`` tends to ``sum_a (s_a/lambda_a) u_a v_a^T``,
the least-squares map.  ``u0 = 0`` stays at the saddle ``u = 0``.
"""

from __future__ import annotations

import numpy as np

from linsim.solvers._checks import (
    as_matrix,
    check_inputs,
    check_lr,
    check_steps,
    check_times,
    check_xy,
)
from linsim.solvers._ode import integrate_flow
from linsim.solvers._stepping import step_through


def _moments(X, Y):
    X, Y = check_xy(X, Y)
    n = X.shape[0]
    return X, Y, X.T @ X / n, Y.T @ X / n


def _check_pair(W1, W2, d, C, batched=True):
    nd = 3 if batched else 2
    W1 = as_matrix("W1", W1, ndim=nd)
    W2 = as_matrix("W2", W2, ndim=nd)
    if W1.shape[-1] != d:
        raise ValueError(f"W1 must have shape (R, h, d) with d={d}; got {W1.shape}")
    if W2.shape[-2] != C:
        raise ValueError(f"W2 must have shape (R, C, h) with C={C}; got {W2.shape}")
    if W2.shape[-1] != W1.shape[-2] or (batched and W1.shape[0] != W2.shape[0]):
        raise ValueError(
            f"W1 (R, h, d) and W2 (R, C, h) must share R and h; got {W1.shape} and {W2.shape}"
        )
    return W1, W2


def two_layer_grads(sigma, B, W1, W2):
    """Gradients ``(W2^T E, E W1^T)`` with ``E = W2 W1 Sigma - B``; batched (R, ., .).

    Examples
    --------
    >>> g1, g2 = two_layer_grads(np.eye(2), np.zeros((1, 2)), np.ones((1, 3, 2)), np.ones((1, 1, 3)))
    >>> g1[0].tolist(), g2[0].tolist()   # E = W2 W1 Sigma - B = [[3, 3]]
    ([[3.0, 3.0], [3.0, 3.0], [3.0, 3.0]], [[6.0, 6.0, 6.0]])
    """
    E = W2 @ W1 @ sigma - B
    return W2.transpose(0, 2, 1) @ E, E @ W1.transpose(0, 2, 1)


def two_layer_flow_weights(X, Y, W1_0, W2_0, times, *, method="DOP853", rtol=1e-9, atol=1e-12,
                           progress=False):
    """Weights ``(W1_t, W2_t)`` of gradient flow, shapes (R, K, h, d) and (R, K, C, h).

    Integrated with ``scipy.integrate.solve_ivp`` (default ``DOP853``: the problem is not stiff
    for moderate weights; ``rtol=1e-9``, ``atol=1e-12`` on the weights).  Raises
    :class:`ODEFailureError` if the integrator stops early or produces non-finite values.
    ``progress=True`` shows the flow time reached.

    Examples
    --------
    >>> W1, W2 = two_layer_flow_weights(np.eye(2), np.eye(2), np.full((3, 4, 2), 0.1), np.full((3, 2, 4), 0.1),
    ...                                 [0.0, 1.0])
    >>> W1.shape, W2.shape
    ((3, 2, 4, 2), (3, 2, 2, 4))
    """
    X, Y, sigma, B = _moments(X, Y)
    W1_0, W2_0 = _check_pair(W1_0, W2_0, X.shape[1], Y.shape[1])
    times = check_times(times)
    R, h, d = W1_0.shape
    C = W2_0.shape[1]
    n1 = R * h * d

    def rhs(_t, y):
        W1 = y[:n1].reshape(R, h, d)
        W2 = y[n1:].reshape(R, C, h)
        g1, g2 = two_layer_grads(sigma, B, W1, W2)
        return -np.concatenate([g1.ravel(), g2.ravel()])

    y0 = np.concatenate([W1_0.ravel(), W2_0.ravel()])
    ys = integrate_flow(rhs, y0, times, method=method, rtol=rtol, atol=atol, what="two-layer flow",
                        progress=progress)
    K = times.size
    W1 = ys[:, :n1].reshape(K, R, h, d).transpose(1, 0, 2, 3)
    W2 = ys[:, n1:].reshape(K, R, C, h).transpose(1, 0, 2, 3)
    return W1, W2


def two_layer_flow(X, Y, W1_0, W2_0, times, *, inputs=None, method="DOP853", rtol=1e-9, atol=1e-12,
                   progress=False):
    """Outputs ``Z (W2 W1)_t^T`` (R, K, m, C) under gradient flow, by ODE integration.

    Parameters
    ----------
    X : array (n, d), Y : array (n, C)
        Training data; loss ``(1/2n)||X W1^T W2^T - Y||^2``.
    W1_0 : array (R, h, d), W2_0 : array (R, C, h)
        Initial weights of ``R`` runs (any, not necessarily decoupled).
    times : array (K,)
        Non-negative flow times.
    inputs : array (m, d), optional
        Evaluation inputs (default ``X``).
    progress : bool
        Show the flow time reached (tqdm, stderr).

    Examples
    --------
    >>> X = np.diag([2.0, 1.0]); Y = X @ np.array([[1.0, 0.0]]).T
    >>> W1, W2 = aligned_balanced_init(X, Y, hidden=2, u0=0.01)
    >>> ode = two_layer_flow(X, Y, W1[None], W2[None], [0.5, 1.0])
    >>> bool(np.allclose(ode, two_layer_closed_form(X, Y, W1[None], W2[None], [0.5, 1.0]), atol=1e-8))
    True
    """
    W1, W2 = two_layer_flow_weights(X, Y, W1_0, W2_0, times, method=method, rtol=rtol, atol=atol,
                                    progress=progress)
    X = np.asarray(X, dtype=np.float64)
    Z = X if inputs is None else check_inputs(inputs, X.shape[1])
    return np.einsum("md,rkcd->rkmc", Z, W2 @ W1)


def two_layer_gd(X, Y, W1_0, W2_0, lr, steps, *, inputs=None, progress=False) -> np.ndarray:
    """Outputs (R, K, m, C) after each listed number of explicit GD steps.

    ``lr > 0``; there is no closed-form stability limit (it depends on the weights): a run
    that overflows raises ``ValueError`` naming the step, so reduce ``lr``.
    ``progress=True`` shows a progress bar over the steps.

    Examples
    --------
    >>> X = np.diag([2.0, 1.0]); Y = X @ np.array([[1.0, 0.0]]).T
    >>> W1, W2 = aligned_balanced_init(X, Y, hidden=2, u0=0.01)
    >>> gd = two_layer_gd(X, Y, W1[None], W2[None], lr=1e-3, steps=[1000])   # ~ flow to t = 1
    >>> bool(np.allclose(gd, two_layer_closed_form(X, Y, W1[None], W2[None], [1.0]), atol=1e-2))
    True
    """
    X, Y, sigma, B = _moments(X, Y)
    W1, W2 = _check_pair(W1_0, W2_0, X.shape[1], Y.shape[1])
    W1, W2 = W1.copy(), W2.copy()
    steps = check_steps(steps)
    lr = check_lr(lr, 0.0)
    Z = X if inputs is None else check_inputs(inputs, X.shape[1])
    out = np.empty((W1.shape[0], steps.size, Z.shape[0], Y.shape[1]))
    with np.errstate(over="ignore", invalid="ignore"):
        _two_layer_loop(sigma, B, W1, W2, lr, steps, Z, out, progress)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"two-layer GD diverged with lr={lr:g}; use a smaller lr")
    return out


def _two_layer_loop(sigma, B, W1, W2, lr, steps, Z, out, progress=False):
    def advance(t):
        g1, g2 = two_layer_grads(sigma, B, W1, W2)
        W1[...] -= lr * g1
        W2[...] -= lr * g2
        if (t + 1) % 64 == 0 and not (np.all(np.isfinite(W1)) and np.all(np.isfinite(W2))):
            raise ValueError(f"two-layer GD diverged by step {t + 1} with lr={lr:g}; use a smaller lr")

    def record(k):
        out[:, k] = np.einsum("md,rcd->rmc", Z, W2 @ W1)

    step_through(steps, advance, record, progress=progress, desc="two-layer GD")


def aligned_modes(X, Y, tol: float = 1e-8):
    """Modes of aligned data: ``B = U diag(s) V^T`` with ``Sigma V = V diag(lambda)``.

    Returns
    -------
    U : array (C, p), s : array (p,), V : array (d, p), lam : array (p,)
        The ``p`` modes with ``s > tol * s_max``.

    Raises
    ------
    ValueError
        If some right singular vector of ``B`` is not an eigenvector of ``Sigma`` (relative
        residual ``||Sigma v - lambda v|| > tol * lambda_max``): then no decoupled solution exists.
        Degenerate singular values of ``B`` can also trigger this (the SVD basis is arbitrary).

    Examples
    --------
    >>> X = np.diag([2.0, 1.0])                 # Sigma = diag(2, 0.5)
    >>> Y = X @ np.array([[1.0, 0.0]]).T        # teacher on the first eigenvector: B = [[2, 0]]
    >>> U, s, V, lam = aligned_modes(X, Y)
    >>> s.tolist(), lam.tolist()
    ([2.0], [2.0])
    """
    X, Y, sigma, B = _moments(X, Y)
    U, s, Vt = np.linalg.svd(B, full_matrices=False)
    keep = s > tol * (s[0] if s.size else 0.0)
    U, s, V = U[:, keep], s[keep], Vt[keep].T
    lam = np.einsum("dp,de,ep->p", V, sigma, V)
    resid = np.linalg.norm(sigma @ V - V * lam, axis=0)
    lam_max = float(np.linalg.eigvalsh(sigma)[-1])
    if np.any(resid > tol * max(lam_max, 1e-300)):
        a = int(np.argmax(resid))
        raise ValueError(
            "data are not aligned: right singular vector "
            f"{a} of B = Y^T X / n is not an eigenvector of Sigma (residual {resid[a]:.2e}); "
            "the decoupled closed form does not apply, use two_layer_flow"
        )
    return U, s, V, lam


def aligned_balanced_init(X, Y, hidden: int, u0, *, seed=None, tol: float = 1e-8):
    """A decoupled (aligned, balanced) initialization ``(W1, W2)``, shapes (h, d), (C, h).

    ``W1 = R diag(sqrt(u0)) V^T``, ``W2 = U diag(sqrt(u0)) R^T`` with the aligned modes of
    :func:`aligned_modes` and hidden directions ``R`` (h, p): the first ``p`` unit vectors, or
    random orthonormal ones when ``seed`` is given.  The product starts at
    ``sum_a u0_a u_a v_a^T``.

    Parameters
    ----------
    hidden : int
        Width ``h >= p`` (number of modes).
    u0 : float or array (p,)
        Initial mode strengths, ``>= 0``.

    Examples
    --------
    >>> X = np.diag([2.0, 1.0]); Y = X @ np.array([[1.0, 0.0]]).T
    >>> W1, W2 = aligned_balanced_init(X, Y, hidden=2, u0=0.01)
    >>> (W2 @ W1).round(12).tolist(), bool(np.allclose(W1 @ W1.T, W2.T @ W2))
    ([[0.01, 0.0]], True)
    """
    U, s, V, lam = aligned_modes(X, Y, tol)
    p = s.size
    if hidden < p:
        raise ValueError(f"hidden width {hidden} is smaller than the number of modes p={p}")
    u0 = np.broadcast_to(np.asarray(u0, dtype=np.float64), (p,))
    if np.any(u0 < 0) or not np.all(np.isfinite(u0)):
        raise ValueError(f"u0 must be finite and >= 0 (balanced modes have u = alpha^2); got {u0}")
    if seed is None:
        Rh = np.eye(hidden)[:, :p]
    else:
        q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((hidden, p)))
        Rh = q * np.sign(np.diag(r))
    root = np.sqrt(u0)
    return (Rh * root) @ V.T, (U * root) @ Rh.T


def saxe_mode_strength(u0, s, lam, t) -> np.ndarray:
    """Closed-form balanced mode strength ``u(t) = u0 / (e^{-2st} + lam u0 (1 - e^{-2st}) / s)``.

    Broadcasts ``u0, s, lam`` (modes) against ``t``; ``s -> 0`` uses ``(1 - e^{-2st})/s -> 2t``.
    Balanced modes have ``u = alpha^2 >= 0``, singular values ``s >= 0``, curvatures
    ``lam >= 0`` and times ``t >= 0``; anything else is refused (a negative ``u0`` would make
    the denominator cross zero: a pole at finite time, not a trajectory).

    Examples
    --------
    >>> float(saxe_mode_strength(0.1, 0.0, 0.5, 3.0))  # pure decay: u0 / (1 + 2 lam u0 t)
    0.07692307692307693
    >>> saxe_mode_strength(-0.1, 1.0, 1.0, 1.0)
    Traceback (most recent call last):
    ...
    ValueError: u0 must be >= 0 (balanced modes have u = alpha^2); got minimum -0.1
    """
    arrays = {}
    for name, v in (("u0", u0), ("s", s), ("lam", lam), ("t", t)):
        a = as_matrix(name, v, ndim=np.ndim(v))
        if a.size and a.min() < 0:
            what = " (balanced modes have u = alpha^2)" if name == "u0" else ""
            raise ValueError(f"{name} must be >= 0{what}; got minimum {a.min()}")
        arrays[name] = a
    u0, s, lam, t = np.broadcast_arrays(arrays["u0"], arrays["s"], arrays["lam"], arrays["t"])
    x = -2.0 * s * t
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(s > 0, -np.expm1(x) / np.where(s > 0, s, 1.0), 2.0 * t)
    return u0 / (np.exp(x) + lam * u0 * phi)


def two_layer_closed_form(X, Y, W1_0, W2_0, times, *, inputs=None, tol: float = 1e-8) -> np.ndarray:
    """Exact outputs (R, K, m, C) of gradient flow from decoupled (aligned, balanced) inits.

    Each run's ``(W1_0, W2_0)`` must be balanced (``W1 W1^T = W2^T W2``) with a product
    ``W2 W1 = sum_a u0_a u_a v_a^T`` on the aligned modes of the data (see
    :func:`aligned_balanced_init`); otherwise a ``ValueError`` says which condition failed.

    Examples
    --------
    >>> X = np.diag([2.0, 1.0]); Y = X @ np.array([[1.0, 0.0]]).T
    >>> W1, W2 = aligned_balanced_init(X, Y, hidden=2, u0=0.01)
    >>> out = two_layer_closed_form(X, Y, W1[None], W2[None], [0.0, 50.0])
    >>> out[0, :, :, 0].round(8).tolist()     # u -> s / lambda = 1: the teacher's outputs
    [[0.02, 0.0], [2.0, 0.0]]
    """
    X, Y, sigma, B = _moments(X, Y)
    W1_0, W2_0 = _check_pair(W1_0, W2_0, X.shape[1], Y.shape[1])
    times = check_times(times)
    U, s, V, lam = aligned_modes(X, Y, tol)
    P0 = W2_0 @ W1_0  # (R, C, d)
    u0 = np.einsum("cp,rcd,dp->rp", U, P0, V)
    scale = max(1.0, float(np.abs(P0).max()))
    recon = np.einsum("cp,rp,dp->rcd", U, u0, V)
    if np.abs(P0 - recon).max() > 1e3 * tol * scale:
        raise ValueError("initial product W2 W1 is not decoupled: it has components outside the aligned modes")
    bal = W1_0 @ W1_0.transpose(0, 2, 1) - W2_0.transpose(0, 2, 1) @ W2_0
    if np.abs(bal).max() > 1e3 * tol * scale:
        raise ValueError("initialization is not balanced: W1 W1^T != W2^T W2")
    if np.any(u0 < -1e3 * tol * scale):
        raise ValueError("balanced modes need u0 >= 0; got a negative initial mode strength")
    u0 = np.maximum(u0, 0.0)
    u = saxe_mode_strength(u0[:, None, :], s[None, None, :], lam[None, None, :], times[None, :, None])
    Z = X if inputs is None else check_inputs(inputs, X.shape[1])
    return np.einsum("mp,rkp,cp->rkmc", Z @ V, u, U)


__all__ = [
    "aligned_balanced_init",
    "aligned_modes",
    "saxe_mode_strength",
    "two_layer_closed_form",
    "two_layer_flow",
    "two_layer_flow_weights",
    "two_layer_gd",
    "two_layer_grads",
]
