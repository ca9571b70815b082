"""The small-logit theory for kernel machines and for SGD (derivations.md §5).

* Kernel machine: outputs on the training points follow ``F_{t+1} = F_t - η (K/n)(F_t - F*)`` (GD in
  function space; a linear model on fixed features is the case ``K = Φ Φᵀ``). In the eigenbasis
  ``K/n = U diag(κ) Uᵀ`` the mean-over-samples small-logit distance is
  ``(1/8Cn) Σ_k ||P⊥ (ΔF)ᵀ u_k||²``, so the spectrum of ``K/n`` plays the role of ``λ``.
* SGD with batches of size b drawn uniformly without replacement from n samples: the mean residual
  follows GD; the second moment ``M_t = E[Δ_tᵀ P⊥ Δ_t]`` obeys
  ``M_{t+1} = A M_t A + η² f_b (Γ(M_t) - Σ M_t Σ)``, ``A = I - ηΣ``, ``f_b = (n-b)/(b(n-1))``,
  ``Γ(M) = (1/n) Σ_i x_i (x_iᵀ M x_i) x_iᵀ``. Runs are independent, so the noise adds only to the
  run-diagonal blocks of the expected Gram matrix: an initialization-like spread.
* Typical SGD geometry (§5.2.1): the eigenvalues of one realisation's centred Gram ``J Y Yᵀ J`` equal
  those of the feature-space covariance ``Yᵀ J Y``, a sum over the M = R K points; its expectation
  (exact, from the same moment recursion carried class-block by class-block) predicts the typical
  (median over noise) spectrum, whereas the spectrum of ``E[J Y Yᵀ J]`` is the mean-Gram one, which
  treats the noise of different runs as orthogonal and spreads it over R times too many directions.
  :func:`sgd_typical_explained_stress` adds the finite-sample spread of ``Yᵀ J Y`` around its mean
  (Gaussian noise model with the exact per-run covariances; pairwise level repulsion).
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, check_lr, positive, steps_array, times_array
from .quadratic import class_contrast_basis, gram_spectrum

__all__ = [
    "kernel_quadratic_spectrum",
    "sgd_minibatch_second_moment",
    "sgd_expected_gram",
    "sgd_quadratic_spectrum",
    "sgd_feature_covariance",
    "sgd_typical_spectrum",
    "sgd_typical_explained_stress",
]


def kernel_quadratic_spectrum(gram, target_outputs, init_outputs, lr, steps, *, dynamics="gd"):
    """Small-logit InPCA eigenvalues for an ensemble of kernel machines trained on squared loss.

    Parameters
    ----------
    gram : (n, n) array
        Kernel Gram matrix ``K`` on the training points (symmetric PSD).
    target_outputs : (n, C) array
        Target logits ``F*`` on the training points.
    init_outputs : (R, n, C) array
        Initial outputs ``F0_r`` of the R runs on the training points.
    lr : float or None
        Learning rate η, stable iff ``η κ_max < 2`` with ``κ`` the eigenvalues of ``K/n``; None for flow.
    steps : (K,) array
        GD steps, or times for ``dynamics='flow'``.

    Returns
    -------
    (min(R*K, (C-1)*n),) array sorted by |λ| descending (distances: Bhattacharyya mean over the n
    training points, softmax outputs).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> X = g.normal(size=(6, 2))
    >>> kernel_quadratic_spectrum(X @ X.T, g.normal(size=(6, 2)), g.normal(size=(2, 6, 2)), 0.5, [0, 3]).shape
    (4,)
    """
    Kmat = as_float_array(gram, "gram", ndim=2)
    n = Kmat.shape[0]
    if Kmat.shape != (n, n) or not np.allclose(Kmat, Kmat.T, atol=1e-10 * max(1.0, np.abs(Kmat).max())):
        raise ValueError(f"gram must be a symmetric (n, n) matrix, got shape {Kmat.shape}")
    Ft = as_float_array(target_outputs, "target_outputs", ndim=2)
    F0 = as_float_array(init_outputs, "init_outputs", ndim=3)
    if Ft.shape[0] != n or F0.shape[1:] != Ft.shape:
        raise ValueError(f"target_outputs must be (n={n}, C) and init_outputs (R, n, C); got "
                         f"{Ft.shape} and {F0.shape}")
    kappa, U = np.linalg.eigh(Kmat / n)
    if kappa.min() < -1e-10 * max(1.0, kappa.max()):
        raise ValueError(f"gram is not positive semi-definite (min eigenvalue of K/n {kappa.min():.3g})")
    kappa = np.clip(kappa, 0.0, None)  # round-off only (checked above)
    if dynamics == "gd":
        lr = check_lr(lr, kappa)
        fac = (1.0 - lr * kappa)[None, :] ** steps_array(steps)[:, None].astype(np.float64)
    elif dynamics == "flow":
        fac = np.exp(-np.outer(times_array(steps), kappa))
    else:
        raise ValueError(f"dynamics must be 'gd' or 'flow', got {dynamics!r}")
    C = Ft.shape[1]
    Q = class_contrast_basis(C)
    E = np.einsum("cj,rnc,nk->rjk", Q, F0 - Ft[None], U)  # (R, C-1, n) mode coefficients
    Y = E[:, None] * fac[None, :, None, :] / np.sqrt(8.0 * C * n)
    return gram_spectrum(Y.reshape(F0.shape[0] * fac.shape[0], -1))


def sgd_minibatch_second_moment(inputs, M, batch_size):
    """``E[Σ_B M Σ_B]`` for a batch of size b drawn uniformly without replacement from n samples.

    ``Σ_B = (1/b) Σ_{i∈B} x_i x_iᵀ``. Result: ``Σ M Σ + f_b (Γ(M) - Σ M Σ)`` with
    ``f_b = (n-b)/(b(n-1))`` and ``Γ(M) = (1/n) Σ_i x_i (x_iᵀ M x_i) x_iᵀ`` (derivations.md §5.2).
    ``inputs`` (n, d), ``M`` (d, d); returns (d, d).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.eye(2)
    >>> sgd_minibatch_second_moment(X, np.eye(2), 2)  # full batch: Σ M Σ
    array([[0.25, 0.  ],
           [0.  , 0.25]])
    """
    X = as_float_array(inputs, "inputs", ndim=2)
    M = as_float_array(M, "M", ndim=2)
    n, d = X.shape
    b = int(batch_size)
    if not 1 <= b <= n or b != batch_size:
        raise ValueError(f"batch_size must be an integer in [1, n={n}], got {batch_size}")
    Sig = X.T @ X / n
    SMS = Sig @ M @ Sig
    if n == 1:
        return SMS
    q = np.einsum("nd,de,ne->n", X, M, X)
    Gam = (X * q[:, None]).T @ X / n
    return SMS + (n - b) / (b * (n - 1.0)) * (Gam - SMS)


def sgd_expected_gram(inputs, teacher, init, lr, steps, batch_size):
    """Expected (over SGD batch noise) centred small-logit Gram matrix of an SGD ensemble, (M, M).

    SGD: ``W_{t+1} = W_t - η (W_t - W*) Σ_{B_t}``, batches independent across steps and runs.
    Entry ``((r,t),(r',t'))`` is ``(1/8C) tr(P⊥ Δ_{r,t} Σ Δ_{r',t'}ᵀ)`` in expectation: for r ≠ r' the
    product of the GD means; for r = r', t <= t', ``(1/8C) tr(M_t A^{t'-t} Σ)``. Centred with ``J_M``;
    its eigenvalues are the expected InPCA matrix's in the small-logit limit. ``inputs`` (n, d) any
    basis; ``teacher`` (C, d); ``init`` (R, C, d); ``steps`` (K,) ints.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> G = sgd_expected_gram(g.normal(size=(6, 2)), g.normal(size=(2, 2)), g.normal(size=(2, 2, 2)), 0.1, [0, 2], 3)
    >>> G.shape
    (4, 4)
    """
    X, Wt, W0 = _problem_arrays(inputs, teacher, init)
    n, d = X.shape
    st = steps_array(steps)
    Sig = X.T @ X / n
    lr = check_lr(lr, np.linalg.eigvalsh(Sig))
    positive(batch_size, "batch_size")
    R, C, _ = W0.shape
    K = st.size
    P = np.eye(C) - 1.0 / C
    A = np.eye(d) - lr * Sig
    Tmax = int(st.max())
    Apow = [np.eye(d)]
    for _ in range(Tmax):
        Apow.append(Apow[-1] @ A)
    means = np.array([[(W0[r] - Wt) @ Apow[t] for t in st] for r in range(R)])  # (R, K, C, d)
    G = np.einsum("akcd,de,blce->akbl", means, Sig, np.einsum("cf,blfe->blce", P, means)) / (8.0 * C)
    for r in range(R):
        D0 = W0[r] - Wt
        Mt = D0.T @ P @ D0
        moments = {}
        for t in range(Tmax + 1):
            if t in set(st.tolist()):
                moments[t] = Mt.copy()
            if t < Tmax:
                Mt = A @ Mt @ A + lr**2 * (sgd_minibatch_second_moment(X, Mt, batch_size) - Sig @ Mt @ Sig)
        for i, t in enumerate(st):
            for j, t2 in enumerate(st):
                lo, hi = (t, t2) if t <= t2 else (t2, t)
                G[r, i, r, j] = np.trace(moments[lo] @ Apow[hi - lo] @ Sig) / (8.0 * C)
    G = G.reshape(R * K, R * K)
    J = np.eye(R * K) - 1.0 / (R * K)
    return J @ G @ J


def sgd_quadratic_spectrum(inputs, teacher, init, lr, steps, batch_size):
    """Eigenvalues (|λ|-descending) of :func:`sgd_expected_gram`: the small-logit InPCA spectrum of the
    SGD-noise-averaged ensemble geometry (GD spectrum plus an initialization-like noise spread).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> sgd_quadratic_spectrum(g.normal(size=(6, 2)), g.normal(size=(2, 2)), g.normal(size=(2, 2, 2)), 0.1, [0, 2], 3).shape
    (4,)
    """
    G = sgd_expected_gram(inputs, teacher, init, lr, steps, batch_size)
    ev = np.linalg.eigvalsh((G + G.T) / 2)
    return ev[np.argsort(-np.abs(ev), kind="stable")]


def _problem_arrays(inputs, teacher, init):
    """``inputs`` (n, d), ``teacher`` (C, d) and ``init`` (R, C, d) as float64, shapes checked."""
    X = as_float_array(inputs, "inputs", ndim=2)
    Wt = as_float_array(teacher, "teacher", ndim=2)
    W0 = as_float_array(init, "init", ndim=3)
    d = X.shape[1]
    if Wt.shape[1] != d or W0.shape[1:] != Wt.shape:
        raise ValueError(f"teacher must be (C, d={d}) and init (R, C, d); got {Wt.shape}, {W0.shape}")
    return X, Wt, W0


def _sgd_checked(inputs, teacher, init, lr, steps, batch_size):
    """Validated SGD problem in the eigenbasis of Σ: (Xe, lam, a, D0, steps, lr, f_b, C)."""
    X, Wt, W0 = _problem_arrays(inputs, teacher, init)
    n, d = X.shape
    if Wt.shape[0] < 2:
        raise ValueError("need at least 2 classes (teacher.shape[0] >= 2)")
    st = steps_array(steps)
    b = batch_size
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= n:
        raise ValueError(f"batch_size must be an integer in [1, n={n}], got {batch_size!r}")
    lam, V = np.linalg.eigh(X.T @ X / n)
    lam, V = np.clip(lam[::-1], 0.0, None), V[:, ::-1]  # descending; clip is round-off only (Gram matrix)
    lr = check_lr(lr, lam)
    C = Wt.shape[0]
    D0 = np.einsum("cj,rcd,de->rje", class_contrast_basis(C), W0 - Wt, V)  # (R, C-1, d) contrasts
    fb = (n - b) / (b * (n - 1.0)) if n > 1 else 0.0
    return X @ V, lam, 1.0 - lr * lam, D0, st, lr, fb, C


def _noise_covariances(Xe, lam, a, D0, st, lr, fb, per_run: bool):
    """GD means (R, K, J, d) and noise covariances at the checkpoints, layout (..., K, J, J, d, d)
    (``[j, k, d, e]`` = Cov of contrast row j, mode d with row k, mode e), summed over runs unless
    ``per_run``. The class-block moment recursion of derivations.md §5.2.1, in the eigenbasis."""
    n = Xe.shape[0]
    R, J, d = D0.shape
    K = st.size
    want = {}
    for k, t in enumerate(st.tolist()):
        want.setdefault(t, []).append(k)
    outer = np.einsum("rjd,rke->rjkde", D0, D0)
    S = outer if per_run else outer.sum(axis=0)
    means = np.empty((R, K, J, d))
    noise = np.empty(S.shape[:-4] + (K,) + S.shape[-4:])
    Xt = Xe.T
    for t in range(int(st.max()) + 1):
        if t in want:
            m = D0 * a ** t
            mm = np.einsum("rjd,rke->rjkde", m, m)
            N = S - (mm if per_run else mm.sum(axis=0))
            for k in want[t]:
                means[:, k] = m
                noise[..., k, :, :, :, :] = N
        if t < int(st.max()):
            q = ((S @ Xt) * Xt).sum(axis=-2)  # (..., n): x_iᵀ S_jk x_i
            Gam = Xt @ (q[..., :, None] * Xe) / n
            S = a[:, None] * S * a[None, :] + lr**2 * fb * (Gam - lam[:, None] * S * lam[None, :])
    return means, noise


def _cross(noise_lo, a, dt):
    """Cov(y_lo, y_hi) from Cov(y_lo) (layout (..., J, J, d, d)) and the step gap ``dt >= 0``."""
    return noise_lo * (a ** int(dt))


def _to_features(block, h):
    """(..., J, J, d, d) covariance blocks -> (..., J d, J d) in the metric ``h = sqrt(λ / 8C)``."""
    J, d = block.shape[-4], block.shape[-2]
    b = block * h[:, None] * h[None, :]
    return np.swapaxes(b, -3, -2).reshape(block.shape[:-4] + (J * d, J * d))


def sgd_feature_covariance(inputs, teacher, init, lr, steps, batch_size):
    """Expected feature-space covariance ``E[Yᵀ J Y]`` of the small-logit points of an SGD ensemble.

    Row ``(r, t)`` of ``Y`` is ``vec(Qᵀ Δ_{r,t} Σ^{1/2}) / sqrt(8C)`` (``Δ = W - W*``, ``Q`` the class-contrast
    basis), so ``J Y Yᵀ J`` is the small-logit InPCA matrix of one SGD realisation and ``Yᵀ J Y`` has the same
    nonzero eigenvalues. Its expectation over batch noise is exact (derivations.md §5.2.1): with
    ``m_{r,t}`` the GD mean points and ``N_{r,t}`` the per-point noise covariance,
    ``E[Yᵀ J Y] = Mᵀ J M + Σ_{r,t} N_{r,t} - (1/M) Σ_r Σ_{t,t'} Cov(y_{r,t}, y_{r,t'})``, where the noise
    covariance follows the class-blockwise moment recursion
    ``S_{t+1} = A S_t A + η² f_b (Γ(S_t) - Σ S_t Σ)`` and ``Cov(y_t, y_t') = N_t A^{t'-t}`` (``t <= t'``).
    Cost ``O(T (C-1)² n d²)``.

    Parameters
    ----------
    inputs : (n, d) array
        Training inputs, any basis; ``Σ = Xᵀ X / n``.
    teacher : (C, d) array
        Teacher weights ``W*``.
    init : (R, C, d) array
        Initial weights of the R runs.
    lr : float
        Learning rate η (full-batch stable: ``η λ_max(Σ) < 2``).
    steps : (K,) array of ints
        Checkpoint steps.
    batch_size : int
        ``b`` in ``[1, n]``, drawn without replacement within a step, independently across steps and runs.

    Returns
    -------
    ((C-1) d, (C-1) d) array, symmetric PSD, in the eigenbasis of ``Σ`` (eigenvalues descending),
    class-contrast index major. Units: the small-logit Bhattacharyya distance (mean over samples).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> F = sgd_feature_covariance(g.normal(size=(6, 2)), g.normal(size=(2, 2)), g.normal(size=(3, 2, 2)), 0.1, [0, 2], 3)
    >>> F.shape, bool(np.allclose(F, F.T))
    ((2, 2), True)
    """
    Xe, lam, a, D0, st, lr, fb, C = _sgd_checked(inputs, teacher, init, lr, steps, batch_size)
    R, J, d = D0.shape
    K = st.size
    means, noise = _noise_covariances(Xe, lam, a, D0, st, lr, fb, per_run=False)
    h = np.sqrt(lam / (8.0 * C))
    Y = (means * h).reshape(R * K, J * d)
    Yc = Y - Y.mean(axis=0)
    total = noise.sum(axis=0)
    cross = np.zeros_like(total)
    for k in range(K):
        for k2 in range(K):
            lo, hi = (k, k2) if st[k] <= st[k2] else (k2, k)
            c = _cross(noise[lo], a, st[hi] - st[lo])
            cross += c if lo == k else np.swapaxes(np.swapaxes(c, -4, -3), -2, -1)
    F = Yc.T @ Yc + _to_features(total - cross / (R * K), h)
    return (F + F.T) / 2.0


def sgd_typical_spectrum(inputs, teacher, init, lr, steps, batch_size):
    """Typical (median over SGD noise) small-logit InPCA spectrum, leading order: eigenvalues of
    :func:`sgd_feature_covariance`, |λ|-descending, shape ((C-1) d,).

    One realisation's InPCA eigenvalues are those of its feature covariance ``Yᵀ J Y``, a sum over the
    R K points that self-averages; so the spectrum of its expectation is the typical one to leading
    order (derivations.md §5.2.1). :func:`sgd_typical_explained_stress` adds the finite-sample spread.
    Prefer either to :func:`sgd_quadratic_spectrum` (the spectrum of the expected point-space Gram)
    when asking about the geometry of one SGD ensemble; all coincide at full batch (GD).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> X, Wt, W0 = g.normal(size=(8, 3)), g.normal(size=(2, 3)), g.normal(size=(2, 2, 3))
    >>> typ = sgd_typical_spectrum(X, Wt, W0, 0.1, [0, 2, 5], 8)   # full batch: the GD spectrum
    >>> bool(np.allclose(typ[:3], sgd_quadratic_spectrum(X, Wt, W0, 0.1, [0, 2, 5], 8)[:3]))
    True
    """
    F = sgd_feature_covariance(inputs, teacher, init, lr, steps, batch_size)
    ev = np.linalg.eigvalsh(F)
    return ev[np.argsort(-np.abs(ev), kind="stable")]


#: Gauss-Hermite (probabilists') rule for E over Z ~ N(0, 1) in the pairwise level repulsion.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(80)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def sgd_typical_explained_stress(inputs, teacher, init, lr, steps, batch_size, *, spread=True):
    """Typical (median over SGD noise) explained-stress curve ``χ_k`` of one SGD ensemble, k = 1..(C-1)d.

    ``spread=False``: ``χ_k`` of :func:`sgd_typical_spectrum` (the spectrum of ``F = E[Yᵀ J Y]``).
    ``spread=True`` (default) adds the finite-sample spread of ``Yᵀ J Y = F + δ`` around ``F``
    (derivations.md §5.2.1): with the noise treated as Gaussian with its exact per-run covariance
    (all checkpoint pairs), ``v_ij = E δ_ij²`` in the eigenbasis of F is computed exactly (Isserlis);
    each pair of levels repels as in the 2 x 2 problem, ``λ_i -> λ_i ± (E sqrt(Δ² + v_ij Z²) - |Δ|)``,
    ``Δ = (λ_i - λ_j)/2`` (second-order perturbation theory when ``v << Δ²``, finite at degeneracy);
    each level's energy gains ``v_ii``; ``χ_k`` follows from these effective levels (their energies sum
    to ``Σ λ_i² + Σ_ij v_ij = E||Yᵀ J Y||_F²`` to first order in ``v``).
    Memory ``O(R K² (C-1)² d²)``.

    Parameters
    ----------
    inputs, teacher, init, lr, steps, batch_size
        As :func:`sgd_feature_covariance`.
    spread : bool
        Include the finite-sample spread (needs the per-run recursion: R times the cost).

    Returns
    -------
    ((C-1) d,) array, non-decreasing, ending at 1.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> X, Wt, W0 = g.normal(size=(8, 3)), g.normal(size=(2, 3)), g.normal(size=(3, 2, 3))
    >>> chi = sgd_typical_explained_stress(X, Wt, W0, 0.1, [0, 2, 5], 2)
    >>> chi.shape, bool(np.all(np.diff(chi) >= 0)), bool(abs(chi[-1] - 1) < 1e-12)
    ((3,), True, True)
    """
    from .stress import explained_stress

    if not spread:
        return explained_stress(sgd_typical_spectrum(inputs, teacher, init, lr, steps, batch_size))
    Xe, lam, a, D0, st, lr, fb, C = _sgd_checked(inputs, teacher, init, lr, steps, batch_size)
    R, J, d = D0.shape
    K, P, M = st.size, J * d, R * st.size
    means, noise = _noise_covariances(Xe, lam, a, D0, st, lr, fb, per_run=True)  # (R, K, J, J, d, d)
    h = np.sqrt(lam / (8.0 * C))
    cov = np.empty((R, K, P, K, P))  # per run: Cov(y_{r,k}, y_{r,k'})
    for k in range(K):
        for k2 in range(K):
            lo, hi = (k, k2) if st[k] <= st[k2] else (k2, k)
            c = _to_features(_cross(noise[:, lo], a, st[hi] - st[lo]), h)
            cov[:, k, :, k2, :] = c if lo == k else np.swapaxes(c, -2, -1)
    Y = (means * h).reshape(M, P)
    Yc = Y - Y.mean(axis=0)
    total = np.einsum("rkakb->ab", cov)
    cross = cov.sum(axis=(1, 3)).sum(axis=0)
    F = Yc.T @ Yc + total - cross / M
    lamF, U = np.linalg.eigh((F + F.T) / 2.0)
    lamF = np.clip(lamF, 0.0, None)  # F is PSD; round-off only
    alpha = (Yc @ U).reshape(R, K, P)  # centred mean points in F's eigenbasis
    T = np.einsum("ai,rkalb,bj->rkilj", U, cov, U, optimize=True)  # Cov(ζ_i at k, ζ_j at l), per run
    Tjj = np.einsum("rkjlj->rjkl", T)  # (R, P, K, K)
    lin = (np.einsum("rki,rjkl,rli->ij", alpha, Tjj, alpha, optimize=True)
           + np.einsum("rkj,rikl,rlj->ij", alpha, Tjj, alpha, optimize=True)
           + 2.0 * np.einsum("rki,rkjli,rlj->ij", alpha, T, alpha, optimize=True))
    quad = (np.einsum("rikl,rjkl->ij", Tjj, Tjj, optimize=True)
            + np.einsum("rkilj,rkjli->ij", T, T, optimize=True))
    v = np.clip(lin + quad, 0.0, None)  # variances, floored at 0 (the expansion is not sign-definite)
    half = 0.5 * (lamF[:, None] - lamF[None, :])
    rep = np.sqrt(half[..., None] ** 2 + v[..., None] * _GH_NODES**2) @ _GH_WEIGHTS - np.abs(half)
    np.fill_diagonal(rep, 0.0)
    # A realisation's levels are eigenvalues of the PSD Yᵀ J Y, never negative; the second-order
    # repulsion can push the smallest expected levels below 0, and those are set to 0 (a modelling
    # floor, not round-off: their spread still enters the energy through diag(v) below)
    shifted = np.clip(lamF + (np.sign(half) * rep).sum(axis=1), 0.0, None)
    energy = shifted**2 + np.diag(v)
    # a realisation's squared Frobenius norm is the sum of its squared eigenvalues: take the model's
    # (to first order in v it equals E||Yᵀ J Y||² = Σ λ_i² + Σ_ij v_ij: each repelled pair gains 2 v_ij)
    return explained_stress(np.sort(np.sqrt(energy))[::-1])
