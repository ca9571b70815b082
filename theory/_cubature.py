"""Deterministic Gaussian cubature of the exact small-logit law (derivations.md §4.5).

The expected explained-stress curve of the standard ensemble is an integral over the Gaussian
teacher and initial weights. :func:`gaussian_nodes` supplies a fixed, explicitly constructed rule
for such integrals (a Latin supercube: a digitally shifted, centred Sobol' net on the leading
coordinates, a fixed Latin hypercube on the others, mapped through the normal quantile function); :func:`feature_curves` evaluates the
curve at every node from the exact reduction of §4.5 (the feature Gram matrix, mode by mode).
Nothing here depends on a user's seed: the same arguments give the same numbers on every machine.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

__all__: list[str] = []

#: Modes whose expected trace energy is below this fraction of the largest are dropped (their
#: eigenvalues enter χ squared, i.e. below 1e-12 of the top).
MODE_TOL = 1e-6

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
#: Constant of the rule: the seed of the fixed Latin-hypercube padding (see gaussian_nodes).
_PADDING_SEED = 20261201


def gaussian_nodes(dim: int, log2_nodes: int) -> np.ndarray:
    """``N = 2**log2_nodes`` equal-weight nodes of a cubature rule for ``N(0, I_dim)``, (N, dim).

    A Latin-supercube rule (derivations.md §4.5): the first ``2·log2_nodes`` coordinates are an
    unscrambled Sobol' net, digitally shifted by a fixed Weyl-sequence vector (so no node has all
    coordinates equal) and centred in its cells (``(k + ½)/N``, so no node is on a cube face); the
    remaining coordinates are fixed permutations of the same centred grid (a Latin hypercube
    drawn once from the constant :data:`_PADDING_SEED`: part of the rule, like the Sobol'
    direction numbers; nothing depends on a user's seed). Every coordinate's marginal is the
    stratified grid exactly; pairs of padding coordinates have no structural dependence (the
    unscrambled Sobol' coordinates beyond the first few dozen have pairs correlated up to 0.9 at
    256 nodes). Mapped through the normal quantile function. The most important variables go
    first. The first half of the nodes is itself a rule (a net in the leading block), which the
    error estimates use.
    """
    dim, m = int(dim), int(log2_nodes)
    n = 2**m
    lead = min(dim, 2 * m)
    k = np.zeros((n, dim), dtype=np.int64)
    if lead:
        k[:, :lead] = np.rint(qmc.Sobol(lead, scramble=False).random_base2(m) * n).astype(np.int64)
        shift = np.floor(n * ((np.arange(1, lead + 1) * _GOLDEN) % 1.0)).astype(np.int64)
        k[:, :lead] ^= shift[None, :]
    if dim > lead:
        rng = np.random.Generator(np.random.PCG64(_PADDING_SEED))
        k[:, lead:] = rng.permuted(np.broadcast_to(np.arange(n)[:, None], (n, dim - lead)), axis=0)
    return ndtri((k + 0.5) / n)


def stress_rows(ev: np.ndarray, n_components: int) -> np.ndarray:
    """χ_k (k = 1..n_components) of each row of non-negative eigenvalues ``ev`` (any order)."""
    ev = -np.sort(-np.abs(ev), axis=-1)
    sq = ev**2
    tot = sq.sum(axis=-1, keepdims=True)
    tail = tot - np.cumsum(sq, axis=-1)
    chi = 1.0 - np.sqrt(np.clip(tail, 0.0, None) / np.where(tot > 0, tot, 1.0))
    m = min(n_components, chi.shape[-1])
    out = np.ones(chi.shape[:-1] + (n_components,))
    out[..., :m] = chi[..., :m]
    return out


def kept_modes(Phi: np.ndarray, a: float, s0: float, R: int) -> np.ndarray:
    """Indices of the modes that matter, by decreasing expected trace energy."""
    Psi = Phi - Phi.mean(axis=0, keepdims=True)
    en = a * np.sum(Psi**2, axis=0) + (R - 1) * s0**2 * np.sum(Phi**2, axis=0)
    if not np.any(en > 0):
        return np.zeros(0, dtype=int)
    keep = np.flatnonzero(en >= MODE_TOL * en.max())
    return keep[np.argsort(-en[keep], kind="stable")]


def feature_spectra(Phi: np.ndarray, q: int, a: float, s0: float, R: int, log2_nodes: int,
                    chunk: int = 64) -> np.ndarray:
    """Small-logit spectra at every cubature node, (N, p) sorted descending.

    Exact reduction (§4.5): in the rotated run basis (run mean, R-1 orthonormal contrasts) feature
    ``f = (j, k)`` is the column ``[sqrt(a) g_f ψ_k ; σ0 h_f ⊗ φ_k]`` with ``g_f ~ N(0, 1)``,
    ``h_f ~ N(0, I_{R-1})`` independent, so the nonzero spectrum is that of the feature Gram
    ``N = a (g gᵀ) ∘ S_c + σ0² (H Hᵀ) ∘ S`` (or of the point Gram when that is smaller).
    """
    keep = kept_modes(Phi, a, s0, R)
    dd = keep.size
    K = Phi.shape[0]
    if dd == 0:
        return np.zeros((2 ** int(log2_nodes), 1))
    P = Phi[:, keep]
    Ps = P - P.mean(axis=0, keepdims=True)
    Z = gaussian_nodes(dd * q * R, log2_nodes).reshape(-1, dd, q, R)  # mode-major: best dims first
    n_feat = dd * q
    modes = np.repeat(np.arange(dd), q)
    use_features = n_feat <= R * K
    if use_features:
        Sc = (Ps.T @ Ps)[np.ix_(modes, modes)]
        S = (P.T @ P)[np.ix_(modes, modes)]
    out = []
    for s in range(0, Z.shape[0], chunk):
        z = Z[s:s + chunk]
        g = z[..., 0].reshape(z.shape[0], n_feat)
        H = z[..., 1:].reshape(z.shape[0], n_feat, R - 1)
        if use_features:
            N = a * g[:, :, None] * g[:, None, :] * Sc
            if R > 1:
                N = N + s0**2 * (H @ H.transpose(0, 2, 1)) * S
        else:  # points (K + (R-1) K) x features: the smaller Gram
            top = np.sqrt(a) * g[:, None, :] * Ps[:, modes][None]
            low = s0 * H.transpose(0, 2, 1)[:, :, None, :] * P[:, modes][None, None]
            Y = np.concatenate([top, low.reshape(z.shape[0], (R - 1) * K, n_feat)], axis=1)
            N = Y @ Y.transpose(0, 2, 1)
        out.append(np.linalg.eigvalsh(N)[:, ::-1])
    return np.clip(np.concatenate(out), 0.0, None)


def rule_average(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the nodes and the error estimate ``|Q_N - Q_{N/2}|`` (first half of the net)."""
    full = values.mean(axis=0)
    half = values[: values.shape[0] // 2].mean(axis=0)
    return full, np.abs(full - half)
