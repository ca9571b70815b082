"""Tiny, straightforward numpy reference simulation for the theory tests (independent of theory/)."""

import numpy as np


def exact_spectrum_inputs(eigenvalues, n, seed, symmetric=False):
    """X = sqrt(n) U diag(sqrt λ) with U (n, d) orthonormal columns, so XᵀX/n = diag(λ) exactly.

    ``symmetric=True`` stacks rows ``[A; -A] / sqrt(2)``: the data set is closed under x -> -x, so all
    odd sample moments vanish (the cubic correction to the quadratic distance then averages to 0).
    """
    rng = np.random.default_rng(seed)
    d = len(eigenvalues)
    if symmetric:
        A, _ = np.linalg.qr(rng.standard_normal((n // 2, d)))
        U = np.vstack([A, -A]) / np.sqrt(2.0)
    else:
        U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    return np.sqrt(U.shape[0]) * U * np.sqrt(eigenvalues)[None, :]


def gd_weights(X, Wt, W0, lr, steps):
    """Plain iterated GD on L = (1/2n)||X Wᵀ - X W*ᵀ||²; returns (R, K, C, d)."""
    n = X.shape[0]
    Sig = X.T @ X / n
    out = np.zeros((W0.shape[0], len(steps)) + Wt.shape)
    W = W0.copy()
    t = 0
    for ki, s in enumerate(steps):
        while t < s:
            W = W - lr * np.einsum("rcd,de->rce", W - Wt[None], Sig)
            t += 1
        out[:, ki] = W
    return out


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def bhattacharyya_matrix(logp):
    """D[u, v] = -mean_i log Σ_c sqrt(p_u p_v); logp (M, n, C). Straight double loop."""
    M = logp.shape[0]
    D = np.zeros((M, M))
    for u in range(M):
        for v in range(u + 1, M):
            s = np.logaddexp.reduce(0.5 * (logp[u] + logp[v]), axis=-1)
            D[u, v] = D[v, u] = -np.mean(s)
    return D


def inpca_eigenvalues(D):
    """Eigenvalues of W = -½ J D J sorted by |λ| descending, and ||W||_F²."""
    M = D.shape[0]
    J = np.eye(M) - 1.0 / M
    W = -0.5 * J @ D @ J
    ev = np.linalg.eigvalsh(W)
    return ev[np.argsort(-np.abs(ev))], float(np.sum(W**2))


def simulate_inpca(X, weights):
    """weights (R, K, C, d) -> InPCA eigenvalues and ||W||_F² of the softmax Bhattacharyya geometry."""
    R, K, C, d = weights.shape
    logits = np.einsum("rkcd,nd->rknc", weights, X).reshape(R * K, X.shape[0], C)
    return inpca_eigenvalues(bhattacharyya_matrix(log_softmax(logits)))


def stress_curve(ev, fn2):
    ev = ev[np.argsort(-np.abs(ev))]
    return 1 - np.sqrt(np.maximum(1 - np.cumsum(ev**2) / fn2, 0))
