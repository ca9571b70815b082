"""Linear model trained with softmax cross-entropy: ODE integration and explicit GD.

Loss (mean over samples)::

    L(W) = (1/n) sum_i CE(softmax(W x_i), q_i) = -(1/n) sum_i q_i^T log softmax(W x_i)
    grad L = (1/n) (P - Q)^T X,     P = softmax(X W^T)  (n, C)

with ``q_i`` one-hot labels or teacher probabilities.  There is no closed form.

* Gradient flow ``dW/dt = -grad L`` is integrated with :func:`scipy.integrate.solve_ivp`, all
  runs of a group in one state vector.  Default method ``"LSODA"`` (stiffness-aware: it
  switches to BDF when the problem turns stiff) with the analytic Jacobian ``-H``, block
  diagonal over runs, where each run's Hessian is
  ``H[(c,j),(c',k)] = (1/n) sum_i (delta_cc' p_ic - p_ic p_ic') x_ij x_ik``.
  Default tolerances ``rtol=1e-8, atol=1e-10`` (on the weights).  Explicit methods
  (``"RK45"``, ``"DOP853"``) are accepted and use no Jacobian.  A failed integration raises
  :class:`linsim.solvers.ODEFailureError`.
* GD: ``W_{t+1} = W_t - lr * grad L(W_t)``, stepped explicitly, vectorized over runs.  The
  Hessian is bounded by ``lambda_max(Sigma) / 2`` (the softmax covariance has norm <= 1/2), so
  ``lr < 4 / lambda_max(Sigma)`` is required for local stability; the check uses this bound.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax

from linsim.solvers._checks import (
    check_inputs,
    check_lr,
    check_probabilities,
    check_steps,
    check_times,
    check_w0,
    as_matrix,
)
from linsim.solvers._checks import CROSS_ENTROPY_GD_LIMIT
from linsim.solvers._ode import integrate_flow
from linsim.solvers._stepping import weight_gd


def softmax_probs(logits) -> np.ndarray:
    """Row-wise softmax of logits (..., C) (:func:`scipy.special.softmax`, computed stably).

    Examples
    --------
    >>> softmax_probs([[0.0, np.log(3.0)]]).round(12).tolist()
    [[0.25, 0.75]]
    """
    return softmax(as_matrix("logits", logits, ndim=np.ndim(logits)), axis=-1)


def cross_entropy_loss(X, Q, W) -> np.ndarray:
    """Mean cross-entropy ``-(1/n) sum_i q_i^T log softmax(W x_i)`` for each run, shape (R,).

    ``X`` (n, d), ``Q`` (n, C) targets, ``W`` (R, C, d) weights.

    Examples
    --------
    >>> float(cross_entropy_loss(np.ones((1, 2)), np.array([[0.5, 0.5]]), np.zeros((1, 2, 2)))[0])
    0.6931471805599453
    """
    logp = log_softmax(np.einsum("nd,rcd->rnc", X, W), axis=-1)
    return -(Q[None] * logp).sum(axis=(1, 2)) / X.shape[0]


def cross_entropy_grad(X, Q, W) -> np.ndarray:
    """Gradient ``(1/n)(P - Q)^T X`` of the mean cross-entropy, shape (R, C, d).

    ``X`` (n, d), ``Q`` (n, C) targets, ``W`` (R, C, d) weights.

    Examples
    --------
    >>> cross_entropy_grad(np.ones((1, 1)), np.array([[1.0, 0.0]]), np.zeros((1, 2, 1))).ravel().tolist()
    [-0.5, 0.5]
    """
    P = softmax(W @ X.T, axis=1)  # (R, C, n)
    return ((P - Q.T[None]) @ X) / X.shape[0]


def _validate(X, Q, W0):
    X = as_matrix("X", X)
    n, d = X.shape
    Q = as_matrix("Q", Q)
    C = Q.shape[1] if Q.ndim == 2 else 0
    Q = check_probabilities("Q (targets)", Q, n, C)
    W0 = check_w0(W0, C, d)
    return X, Q, W0


def _hessian_blocks(X, W):
    """Per-run Hessians of the mean cross-entropy, shape (R, C*d, C*d)."""
    R, C, d = W.shape
    n = X.shape[0]
    P = softmax(np.einsum("nd,rcd->rnc", X, W), axis=-1)  # (R, n, C)
    # A_i = diag(p_i) - p_i p_i^T
    A = -np.einsum("rnc,rne->rnce", P, P)
    idx = np.arange(C)
    A[:, :, idx, idx] += P
    XX = (X[:, :, None] * X[:, None, :]).reshape(n, d * d)
    H = (A.reshape(R, n, C * C).transpose(0, 2, 1) @ XX) / n  # (R, C*C, d*d)
    return H.reshape(R, C, C, d, d).transpose(0, 1, 3, 2, 4).reshape(R, C * d, C * d)


def softmax_flow(X, Q, W0, times, *, inputs=None, method="LSODA", rtol=1e-8, atol=1e-10,
                 max_group_state=1000, progress=False) -> np.ndarray:
    """Logits under gradient flow of the mean softmax cross-entropy at the listed times.

    Parameters
    ----------
    X : array (n, d)
        Training inputs.
    Q : array (n, C)
        Target probabilities (one-hot labels or teacher softmax); rows sum to 1.
    W0 : array (R, C, d)
        Initial weights.
    times : array (K,)
        Non-negative flow times (any order).
    inputs : array (m, d), optional
        Evaluate the logits on these inputs instead of ``X``.
    method : str
        ``solve_ivp`` method.  ``LSODA`` (default; switches between Adams and BDF by itself)
        gets the dense analytic Jacobian of a group of runs, ``BDF``/``Radau`` the sparse
        block-diagonal one for all runs at once, explicit methods (``RK45``, ``DOP853``) none.
    rtol, atol : float
        ``solve_ivp`` tolerances on the weights.
    max_group_state : int
        For LSODA, runs are integrated in groups of at most this many state variables
        (at least one run per group) so the dense Jacobian stays small.
    progress : bool
        Show the flow time reached by each group's integration (tqdm, stderr).

    Returns
    -------
    array (R, K, m, C)
        Logits ``inputs @ W_t^T``.

    Raises
    ------
    ODEFailureError
        When ``solve_ivp`` stops before the last requested time.

    Examples
    --------
    >>> X, Q, W0 = np.ones((1, 1)), np.array([[1.0, 0.0]]), np.zeros((1, 2, 1))
    >>> flow = softmax_flow(X, Q, W0, [1.0])
    >>> bool(np.allclose(flow, softmax_gd(X, Q, W0, 1e-3, [1000]), atol=1e-3))   # GD with small lr
    True
    """
    W = softmax_flow_weights(X, Q, W0, times, method=method, rtol=rtol, atol=atol,
                             max_group_state=max_group_state, progress=progress)
    Z = np.asarray(X, dtype=np.float64) if inputs is None else check_inputs(inputs, W.shape[-1])
    return np.einsum("md,rkcd->rkmc", Z, W)


def softmax_flow_weights(X, Q, W0, times, *, method="LSODA", rtol=1e-8, atol=1e-10,
                         max_group_state=1000, progress=False) -> np.ndarray:
    """Weights ``W_t`` (R, K, C, d) of :func:`softmax_flow`.

    Examples
    --------
    >>> softmax_flow_weights(np.ones((3, 2)), np.full((3, 4), 0.25), np.zeros((5, 4, 2)), [0.0, 1.0]).shape
    (5, 2, 4, 2)
    """
    X, Q, W0 = _validate(X, Q, W0)
    times = check_times(times)
    R, C, d = W0.shape
    t_sorted, inverse = np.unique(times, return_inverse=True)
    t_end = float(t_sorted[-1])
    out = np.empty((R, t_sorted.size, C, d))
    if t_end == 0.0:
        out[:] = W0[:, None]
        return out[:, inverse]
    # runs are independent: integrate them in groups (one state vector per group) so that a
    # dense Jacobian stays small (<= max_group_state variables) for LSODA's stiff mode
    group = R if method not in ("LSODA",) else max(1, max_group_state // (C * d))
    for start in range(0, R, group):
        stop = min(R, start + group)
        out[start:stop] = _integrate_group(
            X, Q, W0[start:stop], t_sorted, method, rtol, atol,
            progress=progress, what=f"softmax flow (runs {start}-{stop - 1} of {R})",
        ).transpose(1, 0, 2, 3)
    return out[:, inverse]


def _integrate_group(X, Q, W0, t_sorted, method, rtol, atol, *, progress=False, what="softmax flow"):
    R, C, d = W0.shape
    shape = (R, C, d)

    def rhs(_t, y):
        return -cross_entropy_grad(X, Q, y.reshape(shape)).ravel()

    import scipy.sparse as sp

    jac = None
    if method in ("BDF", "Radau"):
        def jac(_t, y):
            return -sp.block_diag(list(_hessian_blocks(X, y.reshape(shape))), format="csc")
    elif method == "LSODA":
        def jac(_t, y):
            return -sp.block_diag(list(_hessian_blocks(X, y.reshape(shape)))).toarray()

    ys = integrate_flow(rhs, W0.ravel(), t_sorted, method=method, rtol=rtol, atol=atol,
                        what=what, jac=jac, progress=progress)
    return ys.reshape(t_sorted.size, R, C, d)


def softmax_gd(X, Q, W0, lr, steps, *, inputs=None, allow_divergence=False, progress=False) -> np.ndarray:
    """Logits after each listed number of explicit GD steps on the mean cross-entropy.

    Parameters as :func:`softmax_flow`, plus ``progress`` (a progress bar over the steps), with
    ``lr`` (> 0, below ``4 / lambda_max(Sigma)``)
    and ``steps`` (K non-negative ints).  Cost grows linearly with ``max(steps)``.

    Returns
    -------
    array (R, K, m, C)

    Examples
    --------
    >>> X, Q = np.ones((1, 1)), np.array([[1.0, 0.0]])    # one sample, target class 0
    >>> softmax_gd(X, Q, np.zeros((1, 2, 1)), lr=1.0, steps=[0, 1])[0, :, 0].tolist()
    [[0.0, 0.0], [0.5, -0.5]]
    """
    X, Q, W0 = _validate(X, Q, W0)
    steps = check_steps(steps)
    lam_max = float(np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1])
    lr = check_lr(lr, lam_max, allow_divergence=allow_divergence, limit=CROSS_ENTROPY_GD_LIMIT,
                  what="lambda_max(Sigma) (the cross-entropy curvature is at most lambda_max/2)")
    Z = X if inputs is None else check_inputs(inputs, X.shape[1])
    return weight_gd(W0.copy(), lambda W: cross_entropy_grad(X, Q, W), lr, steps, Z, progress=progress,
                     desc="softmax GD")


__all__ = [
    "CROSS_ENTROPY_GD_LIMIT",
    "cross_entropy_grad",
    "cross_entropy_loss",
    "softmax_flow",
    "softmax_flow_weights",
    "softmax_gd",
    "softmax_probs",
]
