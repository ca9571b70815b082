r"""Minibatch SGD of the linear model (squared loss): seeded simulation and exact moment recursions.

Sampling convention
-------------------
At every step each run draws a batch of ``b`` *distinct* indices uniformly from ``{0..n-1}``
(without replacement within the step), independently across steps and runs.  The update is::

    W_{t+1} = W_t - lr * (1/b) sum_{i in batch} (W_t x_i - y_i) x_i^T .

Moment recursions (derivation)
------------------------------
Write ``w = vec(W)`` (row-major, index ``c*d + j``) and per sample ``h_i(w) = vec((W x_i - y_i)
x_i^T) = A_i w - c_i`` with ``A_i = I_C kron x_i x_i^T``.  The batch gradient is the batch mean
``h_B``.  For a sample mean of ``b`` draws *without* replacement from ``n`` items (finite
population), conditionally on ``w``::

    E[h_B] = hbar = (1/n) sum_i h_i,
    Cov[h_B] = kappa * ((1/n) sum_i h_i h_i^T - hbar hbar^T),   kappa = (n - b) / (b (n - 1))

(``kappa = 1/b`` would be the with-replacement value; ``kappa = 0`` at ``b = n``).  Because the
batch at step ``t`` is independent of ``w_t`` and ``h`` is affine in ``w``, with mean ``m`` and
covariance ``S`` of ``w_t``::

    m_{t+1} = m_t - lr * hbar(m_t)                       (= GD exactly)
    S_{t+1} = (I - lr Abar) S_t (I - lr Abar)^T
              + lr^2 kappa [ (1/n) sum_i A_i S_t A_i^T - Abar S_t Abar^T
                             + (1/n) sum_i h_i(m_t) h_i(m_t)^T - hbar(m_t) hbar(m_t)^T ]

using ``E_w[h_i h_j^T] = A_i S A_j^T + h_i(m) h_j(m)^T``.  In blocks ``S[c, :, c', :]`` (d x d):
``(A_i S A_i^T)_{cc'} = (x_i^T S_{cc'} x_i) x_i x_i^T`` and ``(Abar S)_{cc'} = Sigma S_{cc'}``.
Cost per step ``O(n C^2 d^2)``: meant for small problems (tests, theory checks).
"""

from __future__ import annotations

import numpy as np

from linsim.solvers._checks import (
    as_matrix,
    check_inputs,
    check_lr,
    check_steps,
    check_w0,
    check_xy,
)
from linsim.solvers._stepping import step_through


def _check_batch(batch_size, n):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an integer; got {type(batch_size).__name__}")
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, n={n}]; got {batch_size}")
    return int(batch_size)


def _check_covariance(S: np.ndarray, name: str = "cov0", rtol: float = 1e-10) -> None:
    """Refuse a matrix that is not a covariance: asymmetric or with a negative eigenvalue."""
    scale = max(float(np.abs(S).max()), np.finfo(np.float64).tiny) if S.size else 1.0
    asym = np.abs(S - S.T)
    if asym.size and asym.max() > rtol * scale:
        i, j = np.unravel_index(int(np.argmax(asym)), S.shape)
        raise ValueError(
            f"{name} is not symmetric: entry ({i}, {j}) of its (C*d, C*d) matrix differs from ({j}, {i}) by "
            f"{asym[i, j]:.3g}"
        )
    low = float(np.linalg.eigvalsh(0.5 * (S + S.T))[0]) if S.size else 0.0
    if low < -rtol * scale * max(S.shape[0], 1):
        raise ValueError(
            f"{name} is not a covariance: its smallest eigenvalue is {low:.3g} < 0 (it must be "
            "positive semi-definite)"
        )


def sample_batches(n: int, batch_size: int, n_runs: int, rng: np.random.Generator) -> np.ndarray:
    """One step's batches: (n_runs, b) indices, distinct within each row, uniform over subsets.

    Examples
    --------
    >>> b = sample_batches(5, 3, 2, np.random.default_rng(0))
    >>> b.shape, all(len(set(row)) == 3 for row in b.tolist())
    ((2, 3), True)
    """
    keys = rng.random((n_runs, n))
    return np.argpartition(keys, batch_size - 1, axis=1)[:, :batch_size]


def sgd_simulate(X, Y, W0, lr, batch_size, steps, seed, *, inputs=None, allow_divergence=False,
                 return_weights=False, progress=False):
    """Seeded minibatch SGD of ``R`` runs; outputs after each listed number of steps.

    Parameters
    ----------
    X : array (n, d), Y : array (n, C)
        Training data; loss ``(1/2n)||X W^T - Y||^2``.
    W0 : array (R, C, d)
        Initial weights.
    lr : float
        Learning rate, checked against the full-batch limit ``2 / lambda_max(Sigma)``.
    batch_size : int
        ``b`` in ``[1, n]``; sampling without replacement within a step (module docstring).
    steps : sequence of K non-negative ints
    seed : int or SeedSequence
        Batch randomness (run ``r`` uses the same stream position regardless of the outputs).
    inputs : array (m, d), optional
        Evaluate on these inputs (default ``X``).
    return_weights : bool
        Also return the weights (R, K, C, d).
    progress : bool
        Show a progress bar over the steps (tqdm, stderr).

    Returns
    -------
    outputs : array (R, K, m, C)
    weights : array (R, K, C, d), only if ``return_weights``

    Examples
    --------
    >>> from linsim.solvers.linear import linear_gd
    >>> X, Y, W0 = np.eye(2), np.array([[1.0], [2.0]]), np.zeros((1, 1, 2))
    >>> full = sgd_simulate(X, Y, W0, lr=1.0, batch_size=2, steps=[1], seed=0)   # b = n: plain GD
    >>> bool(np.allclose(full, linear_gd(X, Y, W0, 1.0, [1])))
    True
    """
    X, Y = check_xy(X, Y)
    n, d = X.shape
    W = check_w0(W0, Y.shape[1], d).copy()
    b = _check_batch(batch_size, n)
    steps = check_steps(steps)
    lam_max = float(np.linalg.eigvalsh(X.T @ X / n)[-1])
    lr = check_lr(lr, lam_max, allow_divergence=allow_divergence)
    if seed is None:
        raise ValueError("seed is required for SGD batch sampling (int or SeedSequence)")
    if isinstance(seed, np.random.Generator):
        raise TypeError("pass an int or numpy.random.SeedSequence as seed, not a Generator")
    rng = np.random.default_rng(seed)
    Z = X if inputs is None else check_inputs(inputs, d)
    R = W.shape[0]
    out = np.empty((R, steps.size, Z.shape[0], Y.shape[1]))
    weights = np.empty((R, steps.size) + W.shape[1:]) if return_weights else None

    def advance(_t):
        idx = sample_batches(n, b, R, rng)
        Xb, Yb = X[idx], Y[idx]  # (R, b, d), (R, b, C)
        resid = W @ Xb.transpose(0, 2, 1) - Yb.transpose(0, 2, 1)  # (R, C, b)
        W[...] -= (lr / b) * (resid @ Xb)

    def record(k):
        out[:, k] = Z @ W.transpose(0, 2, 1)
        if return_weights:
            weights[:, k] = W

    step_through(steps, advance, record, progress=progress, desc="SGD")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"SGD diverged (non-finite weights) with lr={lr:g}, batch_size={b}")
    return (out, weights) if return_weights else out


def sgd_moments(X, Y, mean0, cov0, lr, batch_size, steps, *, allow_divergence=False, progress=False):
    """Exact mean and covariance of the SGD weights over batch sampling (and a random init).

    Parameters
    ----------
    X : array (n, d), Y : array (n, C)
    mean0 : array (C, d)
        ``E[W_0]``.
    cov0 : array (C, d, C, d)
        ``Cov[W_0]`` as ``E[(W-m)_{cj} (W-m)_{c'k}]`` (zeros for a fixed init; for i.i.d.
        ``N(0, s^2)`` entries, ``s^2`` times the identity).  Reshaped to (C*d, C*d) it must
        be symmetric positive semi-definite (else ``ValueError``).
    lr, batch_size : as :func:`sgd_simulate`
    steps : sequence of K non-negative ints
    progress : bool
        Show a progress bar over the steps.

    Returns
    -------
    mean : array (K, C, d)
    cov : array (K, C, d, C, d)
        The second moment is ``cov + mean (x) mean``.

    Examples
    --------
    >>> X, Y = np.eye(2), np.array([[1.0], [2.0]])
    >>> m, S = sgd_moments(X, Y, np.zeros((1, 2)), np.zeros((1, 2, 1, 2)), lr=1.0, batch_size=2, steps=[1])
    >>> m[0].tolist(), float(np.abs(S).max())    # full batch: the GD mean, no spread
    ([[0.5, 1.0]], 0.0)
    """
    X, Y = check_xy(X, Y)
    n, d = X.shape
    C = Y.shape[1]
    m = as_matrix("mean0", mean0).copy()
    if m.shape != (C, d):
        raise ValueError(f"mean0 must have shape (C, d) = ({C}, {d}); got {m.shape}")
    S = as_matrix("cov0", cov0, ndim=4).copy()
    if S.shape != (C, d, C, d):
        raise ValueError(f"cov0 must have shape (C, d, C, d) = ({C}, {d}, {C}, {d}); got {S.shape}")
    _check_covariance(S.reshape(C * d, C * d))
    b = _check_batch(batch_size, n)
    steps = check_steps(steps)
    sigma = X.T @ X / n
    lam_max = float(np.linalg.eigvalsh(sigma)[-1])
    lr = check_lr(lr, lam_max, allow_divergence=allow_divergence)
    kappa = (n - b) / (b * (n - 1)) if n > 1 else 0.0
    B = Y.T @ X / n
    XX = X[:, :, None] * X[:, None, :]  # (n, d, d)
    mean_out = np.empty((steps.size, C, d))
    cov_out = np.empty((steps.size, C, d, C, d))
    M = np.eye(d) - lr * sigma
    state = {"m": m, "S": S}

    def advance(_t):
        m, S = state["m"], state["S"]
        # deterministic part: (I - lr Abar) S (I - lr Abar)^T, Abar acts as Sigma on d-indices
        S_new = np.einsum("jk,ckel,ml->cjem", M, S, M)
        if kappa > 0:
            q = np.einsum("nj,cjek,nk->nce", X, S, X)  # x_i^T S_cc' x_i
            avg_ASA = np.einsum("nce,njk->cjek", q, XX) / n
            ASA = np.einsum("jk,ckel,ml->cjem", sigma, S, sigma)
            r = m @ X.T - Y.T  # (C, n) mean residuals
            H = r[:, :, None] * X[None, :, :]  # h_i(m) as (C, n, d)
            avg_hh = np.einsum("cnj,enk->cjek", H, H) / n
            hbar = m @ sigma - B
            noise = avg_ASA - ASA + avg_hh - np.einsum("cj,ek->cjek", hbar, hbar)
            S_new += lr**2 * kappa * noise
        state["m"] = m - lr * (m @ sigma - B)
        state["S"] = S_new

    def record(k):
        mean_out[k] = state["m"]
        cov_out[k] = state["S"]

    step_through(steps, advance, record, progress=progress, desc="SGD moments")
    return mean_out, cov_out


__all__ = ["sample_batches", "sgd_moments", "sgd_simulate"]
