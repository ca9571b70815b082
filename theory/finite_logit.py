"""InPCA spectrum at finite logits: the softmax Fisher metric at the actual probabilities.

Derivation: ``theory/derivations.md`` §6.1. For one sample, write ``K(t) = A(m + tδ) - A(m)`` with
``A = logsumexp``, midpoint ``m = (z_a + z_b)/2`` and difference ``δ = z_a - z_b``. Then, exactly,

    d_B(z_a, z_b) = ½ [K(½) + K(-½)] = ½ ∫_{-½}^{½} (½ - |t|) δᵀ H(m + tδ) δ dt,

with ``H(z) = diag p - p pᵀ``, ``p = softmax(z)``, the softmax Hessian (the Fisher metric of the
categorical distribution in logit coordinates): the distance is the Fisher metric **averaged along
the segment between the two models' actual logits**, with a triangular weight. Four metrics are
registered (:data:`FISHER_METRICS`), from crude to accurate:

* ``'uniform'``: ``H`` at ``p = 1/C`` for every pair -- the quadratic theory of §1-3 evaluated on the
  given logits (Euclidean: no negative eigenvalues);
* ``'centroid'``: ``H`` at the softmax of each sample's mean logit over all points (the Fisher
  information of the ensemble's centroid model; still Euclidean);
* ``'midpoint'``: ``H`` at each pair's own midpoint (the one-node rule ``t = 0``, i.e. the leading
  term ``κ₂/8`` of the exact cumulant series). The metric now changes from pair to pair, the squared
  distances are no longer Euclidean and the double-centred matrix acquires **negative
  eigenvalues**; their share of ``‖W‖_F²`` is reported;
* ``'segment'`` (default): a Gauss rule with ``n_nodes`` symmetric node pairs ``±s_j`` on the
  segment (:func:`segment_rule`), exact when ``δᵀH(m+tδ)δ`` is a polynomial of degree ``4 n - 1``.

Each result carries an **error estimate**: the difference ``E`` between the double-centred
matrices of the rule and of a finer one (for ``'segment'`` with n nodes: the rule with n - 1 nodes,
which makes the estimate conservative; for the others: ``'segment'`` with 2 nodes), turned into
``‖E‖₂/|μ₁|`` for every eigenvalue (Weyl) and into an interval for every ``χ_k`` (the best
rank-k error is 1-Lipschitz in the Frobenius norm). Estimates, not bounds.

Cost: like an exact distance matrix, ``O(M² n C)`` per node for M points, n samples, C classes.
The segment and midpoint rules use a product form (the pair's softmax weights factor over the two
points, so the class sums become matrix products per sample; derivations.md §6.1), with the
pair-by-pair softmax kept as the reference and used for class ranges beyond :data:`RANGE_LIMIT`.
This module explains *why* the spectrum departs from the quadratic theory, from the softmax
geometry alone; it is not a faster way to compute distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._checks import as_float_array, check_lr, steps_array
from .stress import explained_stress

__all__ = ["FISHER_METRICS", "FiniteLogitSpectrum", "finite_logit_spectrum", "gd_logits", "segment_rule"]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _score_variance(p: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``δᵀ (diag p - p pᵀ) δ`` = variance of ``δ_c`` under ``c ~ p`` (last axis)."""
    mu = np.sum(p * delta, axis=-1, keepdims=True)
    return np.sum(p * (delta - mu) ** 2, axis=-1)


def segment_rule(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule for ``∫_0^½ (½ - s) g(s) ds`` with ``g`` even, exact for polynomials of degree
    ``4·n_nodes - 1`` in s: nodes ``s_j`` (n_nodes,) in (0, ½) and positive weights (sum ⅛).

    Gauss quadrature in ``u = s²`` for the weight ``(½ - √u)/(2√u)`` on ``[0, ¼]``, whose moments
    are ``∫ (½ - s) s^{2j} ds = 2^{-2j-2} / ((2j+1)(2j+2))``; nodes from the Golub-Welsch
    eigenproblem of the Jacobi matrix (built from the moments by a Cholesky factorisation).

    Examples
    --------
    >>> s, w = segment_rule(1)
    >>> round(float(s[0]**2), 6), float(w[0])  # u = E[s²] = (1/192)/(1/8) = 1/24
    (0.041667, 0.125)
    """
    from ._checks import integer
    n = integer(n_nodes, "n_nodes", minimum=1)
    if n > 6:
        raise ValueError(f"n_nodes must be at most 6 (moment-based construction), got {n}")
    j = np.arange(2 * n + 1)
    mom = 0.25 ** (j + 1) / ((2 * j + 1) * (2 * j + 2))
    H = np.array([[mom[a + b] for b in range(n + 1)] for a in range(n + 1)])
    L = np.linalg.cholesky(H).T  # upper: H = LᵀL
    alpha = np.zeros(n)
    beta = np.zeros(max(n - 1, 0))
    for k in range(n):
        alpha[k] = L[k, k + 1] / L[k, k] - (L[k - 1, k] / L[k - 1, k - 1] if k else 0.0)
        if k < n - 1:
            beta[k] = L[k + 1, k + 1] / L[k, k]
    u, V = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
    return np.sqrt(u), mom[0] * V[0] ** 2


def _segment_distance(Z: np.ndarray, rows: slice, n_nodes: int) -> np.ndarray:
    """``½ Σ_j w_j [K''(s_j) + K''(-s_j)]`` for the pairs (rows, all), mean over samples.

    The pair-by-pair reference: a softmax at every node of every pair, valid for any logits.
    :func:`_segment_distance_product` is the fast form of the same sum (used when the logits'
    class ranges allow it); the two are tested against each other.
    """
    za, zb = Z[rows, None], Z[None]
    m, delta = 0.5 * (za + zb), za - zb
    if n_nodes == 0:  # the midpoint rule: Fisher metric at m, weight 1/8
        return _score_variance(_softmax(m), delta).mean(axis=-1) / 8.0
    s, w = segment_rule(n_nodes)
    out = 0.0
    for sj, wj in zip(s, w):
        out = out + 0.5 * wj * (_score_variance(_softmax(m + sj * delta), delta)
                                + _score_variance(_softmax(m - sj * delta), delta))
    return out.mean(axis=-1)


#: Largest class range ``max_c z - min_c z`` of any point (one sample) for which
#: :func:`_segment_distance_product` is used: its unnormalised pair weights are then at least
#: ``exp(-RANGE_LIMIT)``, far from underflow (``exp(-708)``). Beyond it the reference is used.
RANGE_LIMIT = 600.0

#: The product form gives ``Var δ`` as ``E δ² - (E δ)²``; a pair whose mean ``E δ²`` exceeds its
#: variance by more than this factor (a confident pair: the weights sit on one class) loses up to
#: ``CANCELLATION_LIMIT`` ulps there and is recomputed pair by pair (:func:`_pair_curvature`).
CANCELLATION_LIMIT = 1e4


def _pair_curvature(Z: np.ndarray, ia: np.ndarray, ib: np.ndarray, t: float, chunk: int) -> np.ndarray:
    """``K''_{ab}(t)`` (mean over samples) for the listed pairs, by the pairwise softmax."""
    out = np.empty(ia.size)
    for s in range(0, ia.size, chunk):
        za, zb = Z[ia[s:s + chunk]], Z[ib[s:s + chunk]]
        delta = za - zb
        out[s:s + chunk] = _score_variance(_softmax(0.5 * (za + zb) + t * delta), delta).mean(axis=-1)
    return out


def _segment_distance_product(Z: np.ndarray, n_nodes: int, block: int) -> np.ndarray:
    """The segment (``n_nodes`` >= 1) or midpoint (0) distance matrix (M, M) by matrix products.

    At node ``t`` the pair's softmax weights factor over the two points,
    ``exp(m + tδ) = exp((½+t) z_a) ∘ exp((½-t) z_b)``, so with ``A = exp((½+t)z)``,
    ``B = exp((½-t)z)`` (each row scaled by its own maximum, which cancels) and shifted logits
    ``y`` (``δ = y_a - y_b``) every moment ``Σ_c w_c δ_c^k`` of a pair is a sum of products
    ``(A yᵖ)(B y^q)ᵀ`` over classes: three products per sample instead of a softmax per pair and
    sample. ``K''_{ab}(-t) = K''_{ba}(t)``, so the ``-t`` half is the transpose. ``y`` is each
    point's logits minus the ensemble mean, minus their value at the class the ensemble mean
    favours (a per-sample shift common to all points, so δ moves by a per-pair constant, which
    the variance ignores): where the weights concentrate on that class the moments are small and
    do not cancel. Pairs that still cancel (``E δ² > CANCELLATION_LIMIT · Var δ``, weights on
    another class) are recomputed pair by pair. Same sum as :func:`_segment_distance` up to
    rounding (tested elementwise); ``block`` rows at a time.
    """
    M, n, C = Z.shape
    Zs = np.ascontiguousarray(np.transpose(Z, (1, 0, 2)))  # (n, M, C): one product per sample
    y = Zs - Zs.mean(axis=1, keepdims=True)
    top = np.argmax(Zs.mean(axis=1), axis=1)  # (n,) the centroid's favoured class
    y -= np.take_along_axis(y, top[:, None, None], axis=2)
    y2 = y * y
    if n_nodes == 0:
        nodes, weights = np.zeros(1), np.full(1, 0.125)
    else:
        nodes, weights = segment_rule(n_nodes)
    out = np.zeros((M, M))
    V = np.empty((M, M))
    for t, w in zip(nodes, weights):
        P = (0.5 + t) * Zs
        A = np.exp(P - P.max(axis=2, keepdims=True))
        Q = (0.5 - t) * Zs
        B = np.exp(Q - Q.max(axis=2, keepdims=True))
        # left factors [A y², A y, A] (n, M, 3C); right factors, summed over classes with them:
        # Σ w δ² = [Ay², Ay, A]·[B; -2By; By²], Σ w δ = [Ay, A]·[B; -By], Σ w = A·B
        left = np.concatenate([A * y2, A * y, A], axis=2)
        By = B * y
        r2 = np.concatenate([B, -2.0 * By, By * y], axis=2).transpose(0, 2, 1)  # (n, 3C, M)
        r1 = np.concatenate([B, -By], axis=2).transpose(0, 2, 1)
        r0 = B.transpose(0, 2, 1)
        for s in range(0, M, block):
            lb = left[:, s:s + block]
            s0 = lb[:, :, 2 * C:] @ r0
            s1 = (lb[:, :, C:] @ r1) / s0
            s2 = (lb @ r2) / s0
            second = s2.mean(axis=0)
            s2 -= s1 * s1
            v = s2.mean(axis=0)  # K''_{ab}(t), mean over samples
            bad = second > CANCELLATION_LIMIT * np.abs(v)
            if np.any(bad):
                ia, ib = np.nonzero(bad)
                v[ia, ib] = _pair_curvature(Z, ia + s, ib, t, max(1, block * M))
            V[s:s + block] = v
        np.fill_diagonal(V, 0.0)  # δ = 0: exactly zero (the expanded moments leave rounding)
        out += (0.5 * w) * (V + V.T)
    return out


def _pair_distances(Z: np.ndarray, n_nodes: int, block: int) -> np.ndarray:
    """Segment/midpoint distances (M, M): the product form when the class ranges allow it."""
    rng = float(np.max(Z.max(axis=-1) - Z.min(axis=-1)))
    if rng <= RANGE_LIMIT:
        return _segment_distance_product(Z, n_nodes, block)
    M = Z.shape[0]
    D = np.empty((M, M))
    for s in range(0, M, block):
        D[s:s + block] = _segment_distance(Z, slice(s, s + block), n_nodes)
    return D


def _fixed_metric(p):
    def dist(Z, n_nodes, block):
        M = Z.shape[0]
        D = np.empty((M, M))
        P = p(Z)  # the fixed point's probabilities: one evaluation for every row block
        for s in range(0, M, block):
            delta = Z[s:s + block, None] - Z[None]
            D[s:s + block] = _score_variance(P, delta).mean(axis=-1) / 8.0
        return D
    return dist


#: Registry of metrics: name -> function ``(logits (M, n, C), n_nodes, block) -> distances (M, M)``
#: (mean over samples; ``block`` rows at a time where pairs are formed explicitly).
FISHER_METRICS: dict[str, Callable] = {
    "uniform": _fixed_metric(lambda Z: np.full((1, 1, 1, Z.shape[-1]), 1.0 / Z.shape[-1])),
    "centroid": _fixed_metric(lambda Z: _softmax(Z.mean(axis=0))[None, None]),
    "midpoint": lambda Z, n_nodes, block: _pair_distances(Z, 0, block),
    "segment": _pair_distances,
}


@dataclass(frozen=True)
class FiniteLogitSpectrum:
    """Predicted InPCA spectrum of a set of softmax models and the estimated size of its error.

    Attributes
    ----------
    eigenvalues : (M,) float64
        Eigenvalues of ``W = -½ J D J`` with ``D`` the distances of the chosen metric (units of
        the mean-over-samples Bhattacharyya distance), sorted by ``|μ|`` descending; all M values,
        so ``Σ μ² = ‖W‖_F²``.
    negative_share : float
        ``Σ_{μ<0} μ² / Σ μ²``: the share of ``‖W‖_F²`` in negative ("time-like") directions.
    eigenvalue_error : float
        ``‖E‖₂ / |μ₁|`` with ``E`` the difference from the finer rule (module docstring): the
        estimated largest shift of any eigenvalue, **in units of μ₁** (Weyl's inequality:
        eigenvalues paired in algebraic order, not by ``|μ|``).
    frobenius_error : float
        ``‖E‖_F / ‖W‖_F``.
    metric : str
        The entry of :data:`FISHER_METRICS` used.
    n_nodes : int
        Node pairs of the segment rule (0 for the other metrics).

    Examples
    --------
    >>> z = np.array([[[0.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]])
    >>> s = finite_logit_spectrum(z)
    >>> s.eigenvalues.shape, s.metric, s.k_chi(0.9), bool(s.negative_share > 0)
    ((3,), 'segment', 1.0, True)
    """

    eigenvalues: np.ndarray
    negative_share: float
    eigenvalue_error: float
    frobenius_error: float
    metric: str
    n_nodes: int = 0

    def explained_stress(self) -> np.ndarray:
        """The curve ``χ_k``, k = 1..M, of :attr:`eigenvalues` (:func:`theory.explained_stress`)."""
        return explained_stress(self.eigenvalues)

    def chi_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Range of the exact ``χ_k`` allowed by the estimated error ``‖E‖_F`` (each (M,)).

        ``χ_k = 1 - e_k/‖W‖_F`` with ``e_k`` the best rank-k Frobenius error, and both ``e_k``
        and ``‖W‖_F`` move by at most ``‖E‖_F`` (Eckart-Young; 1-Lipschitz), so
        ``χ_k ∈ [1 - (e_k + ε)/(F - ε), 1 - (e_k - ε)/(F + ε)]`` clipped to [0, 1].
        """
        chi = self.explained_stress()
        F = float(np.sqrt(np.sum(self.eigenvalues**2)))
        ek = (1.0 - chi) * F
        eps = self.frobenius_error * F
        lo = 1.0 - (ek + eps) / max(F - eps, 1e-300) if eps < F else np.zeros_like(chi)
        hi = 1.0 - np.maximum(ek - eps, 0.0) / (F + eps)
        return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)

    def k_chi(self, chi: float = 0.9) -> float:
        """Smallest k with predicted ``χ_k >= chi`` (:func:`theory.k_chi`)."""
        from .stress import k_chi
        return k_chi(self.eigenvalues, chi)

    def k_chi_range(self, chi: float = 0.9) -> tuple[float, float]:
        """``(k_lo, k_hi)``: the ``k_χ`` of the upper and of the lower end of :meth:`chi_interval`
        (``math.inf`` if that end never reaches ``chi``)."""
        lo, hi = self.chi_interval()

        def first(curve):
            hit = np.flatnonzero(curve >= chi - 1e-12)
            return float(hit[0] + 1) if hit.size else math.inf
        return first(hi), first(lo)


def _as_logits(logits) -> np.ndarray:
    Z = as_float_array(logits, "logits")
    if Z.ndim < 3 or Z.shape[-1] < 2:
        raise ValueError(f"logits must have shape (..., n, C) with at least one point axis, n samples "
                         f"and C >= 2 classes; got {Z.shape}")
    Z = Z.reshape(-1, Z.shape[-2], Z.shape[-1])
    if Z.shape[0] < 2:
        raise ValueError("logits must hold at least 2 points")
    return Z


def finite_logit_spectrum(logits, *, metric: str = "segment", n_nodes: int = 2,
                          block: int | None = None) -> FiniteLogitSpectrum:
    """InPCA spectrum of softmax models from the softmax Fisher metric at finite logits.

    Parameters
    ----------
    logits : array_like (..., n, C)
        Logits of the points (all leading axes are flattened into points, row-major, e.g.
        ``(R, K, n, C)``); n samples, C classes. float64 is used throughout.
    metric : {'midpoint', 'centroid', 'uniform'}
        Where the softmax Hessian is evaluated (:data:`FISHER_METRICS`; module docstring).
    n_nodes : int >= 1
        Node pairs of the ``'segment'`` Gauss rule (ignored by the other metrics).
    block : int, optional
        Rows of the pair matrix computed at once (memory about ``block·M·n·C`` floats pair by
        pair, ``4 block·M·n`` in the product form); default keeps both below about 32 MB.

    Returns
    -------
    FiniteLogitSpectrum

    Examples
    --------
    Two points: the one nonzero eigenvalue of ``-½ J D J`` is ``d_B / 2``; compare with the exact
    ``d_B = ½A(z_a) + ½A(z_b) - A(m)`` (derivations.md §1.1):

    >>> from scipy.special import logsumexp
    >>> z = np.array([[[2.0, 0.0, -1.0]], [[-1.0, 1.0, 0.5]]])
    >>> exact = 0.5 * logsumexp(z[0, 0]) + 0.5 * logsumexp(z[1, 0]) - logsumexp(z.mean(axis=0)[0])
    >>> for metric in ("uniform", "midpoint", "segment"):
    ...     s = finite_logit_spectrum(z, metric=metric)
    ...     print(metric, round(float(s.eigenvalues[0] / (exact / 2) - 1), 4))
    uniform 0.1087
    midpoint 0.1487
    segment -0.0002
    """
    if metric not in FISHER_METRICS:
        raise ValueError(f"metric must be one of {tuple(FISHER_METRICS)}, got {metric!r}")
    from ._checks import integer
    nodes = integer(n_nodes, "n_nodes", minimum=1)
    Z = _as_logits(logits)
    M, n, C = Z.shape
    if block is None:
        block = max(1, int(4e6 // max(M * n * max(C, 4), 1)))  # both forms below ~32 MB
    elif isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"block must be a positive integer, got {block!r}")
    # the estimate: the next coarser segment rule for 'segment', the default segment rule otherwise
    ref_metric, ref_nodes = ("segment", nodes - 1) if metric == "segment" else ("segment", 2)
    Dm = FISHER_METRICS[metric](Z, nodes, int(block))
    Dr = _pair_distances(Z, ref_nodes, int(block))
    J = np.eye(M) - 1.0 / M
    W = -0.5 * J @ (0.5 * (Dm + Dm.T)) @ J
    E = -0.5 * J @ (0.5 * ((Dr - Dm) + (Dr - Dm).T)) @ J
    ev = np.linalg.eigvalsh(W)
    ev = ev[np.argsort(-np.abs(ev), kind="stable")]
    tot = float(np.sum(ev**2))
    if tot == 0.0:
        raise ValueError("all points have the same probabilities: the spectrum is zero")
    neg = float(np.sum(ev[ev < 0] ** 2)) / tot
    e2 = float(np.max(np.abs(np.linalg.eigvalsh(E))))
    return FiniteLogitSpectrum(eigenvalues=ev, negative_share=neg, eigenvalue_error=e2 / abs(ev[0]),
                               frobenius_error=float(np.sqrt(np.sum(E**2)) / np.sqrt(tot)),
                               metric=metric, n_nodes=nodes if metric == "segment" else 0)


def gd_logits(teacher, init, lr: float, steps, inputs) -> np.ndarray:
    """Logits of GD on the squared loss toward the teacher logits, in closed form: (R, K, n, C).

    ``W_t = W* + (W0 - W*) V diag((1 - η λ)^t) Vᵀ`` with ``Σ = XᵀX/n = V diag(λ) Vᵀ``
    (derivations.md §2.3), evaluated at ``inputs`` X (n, d) in any basis.

    Examples
    --------
    >>> X = np.eye(2) * np.sqrt(2.0)  # Σ = I
    >>> gd_logits(np.ones((2, 2)), np.zeros((1, 2, 2)), 0.5, [0, 1], X)[0, 1]
    array([[0.70710678, 0.70710678],
           [0.70710678, 0.70710678]])
    """
    X = as_float_array(inputs, "inputs", ndim=2)
    Wt = as_float_array(teacher, "teacher", ndim=2)
    W0 = as_float_array(init, "init", ndim=3)
    n, d = X.shape
    if Wt.shape[1] != d or W0.shape[1:] != Wt.shape:
        raise ValueError(f"teacher must be (C, d={d}) and init (R, C, d); got {Wt.shape} and {W0.shape}")
    lam, V = np.linalg.eigh(X.T @ X / n)
    lam = np.maximum(lam, 0.0)
    lr = check_lr(lr, lam)
    t = steps_array(steps).astype(np.float64)
    a = (1.0 - lr * lam)[None, :] ** t[:, None]  # (K, d)
    E0 = (W0 - Wt[None]) @ V  # (R, C, d) in the eigenbasis
    Wk = Wt[None, None] + np.einsum("rcd,kd,ed->rkce", E0, a, V)
    return np.einsum("rkce,ne->rknc", Wk, X)


def _exact_inputs(eigenvalues: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Inputs ``X = sqrt(n) U Λ^{1/2}`` (n, d) with ``XᵀX/n = Λ`` exactly, from Gaussian nodes ``z``.

    ``U = A (AᵀA)^{-1/2}`` with ``A = z`` (n, d): for Gaussian ``A`` the polar factor ``U`` is
    Haar distributed on the orthonormal n x d frames, which is the law of the simulator's
    ``data_mode='exact'`` inputs in the eigenbasis (derivations.md §6.2).
    """
    w, V = np.linalg.eigh(z.T @ z)
    U = z @ (V / np.sqrt(w)) @ V.T
    return np.sqrt(z.shape[0]) * U * np.sqrt(eigenvalues)[None, :]


#: Nodes of the finite-logit correction (derivations.md §6.2): the first ``CORRECTION_NODES``
#: nodes of the 256-node seedless rule of §4.5 (:func:`theory._cubature.normal_nodes` at
#: ``log2_nodes = 8``) over the joint Gaussian coordinates of one ensemble draw.
CORRECTION_NODES = 256

#: ``log2`` of the rule the correction's nodes are taken from.
_RULE_LOG2 = 8


def _single_blas_thread():
    """Context with one BLAS thread (restored on exit): the correction's matrices are tiny
    (M x M with M = R K), and on a shared machine extra BLAS threads cost 3-10x (§6.2)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _expected_correction(lam, C, rho, s0, R, F, n_components, n_samples):
    """``E[χ_fin - χ_quad]`` over the Gaussian law of teacher, init and inputs (derivations.md §6.2).

    Each node is one ensemble draw: teacher, R initializations (in the eigenbasis) and an
    exact-spectrum input set of ``n_samples`` rows (:func:`_exact_inputs`), read from the first
    ``CORRECTION_NODES`` nodes of the seedless 256-node rule :func:`theory._cubature.normal_nodes` (weights
    on the leading coordinates, inputs after). Its logits give the segment-rule spectrum and, from
    the same points, the small-logit spectrum (exact quadratic theory, since ``XᵀX/n = Λ``).
    Returns ``(delta, delta_err, rule_err, negative_share, negative_share_err)``: the mean
    difference of the curves (n_components,), its batch-means standard error over 8 blocks of
    consecutive nodes (:func:`theory._cubature.batch_average`), the mean half-width of the segment
    rule's own χ interval (:meth:`FiniteLogitSpectrum.chi_interval`), and the mean negative share
    with its batch-means standard error.
    """
    from ._cubature import batch_average, normal_nodes, stress_rows
    from .quadratic import embedding_points, gram_spectrum
    d = lam.size
    n = int(n_samples)
    if n < d:
        raise ValueError(f"n_samples={n} must be >= the number of modes d={d} (exact-spectrum inputs)")
    n_w = d * C * (R + 1)
    Z = normal_nodes(n_w + n * d, _RULE_LOG2)[:CORRECTION_NODES]  # weights on the best coordinates
    rows = []
    with _single_blas_thread():
        for z in Z:
            w = z[:n_w].reshape(d, C, R + 1)
            Wt = rho * w[:, :, 0].T  # (C, d)
            W0 = s0 * np.transpose(w[:, :, 1:], (2, 1, 0))  # (R, C, d)
            X = _exact_inputs(lam, z[n_w:].reshape(n, d))
            Wk = Wt[None, None] + (W0 - Wt[None])[:, None] * F[None, :, None, :]  # (R, K, C, d)
            fit = finite_logit_spectrum(np.einsum("rkcd,nd->rknc", Wk, X))
            quad = gram_spectrum(embedding_points(lam, Wt, W0, F))
            fin = stress_rows(fit.eigenvalues[None], n_components)[0]
            lo, hi = fit.chi_interval()
            m = min(n_components, lo.size)
            half = np.zeros(n_components)
            half[:m] = 0.5 * (hi[:m] - lo[:m])
            rows.append(np.concatenate([fin - stress_rows(quad[None], n_components)[0], half,
                                        [fit.negative_share]]))
    mean, err = batch_average(np.array(rows))
    k = n_components
    return mean[:k], err[:k], mean[k:2 * k], float(mean[-1]), float(err[-1])
