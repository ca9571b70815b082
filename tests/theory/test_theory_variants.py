"""Kernel machine, SGD, sympy derivation checks, asymptotics/phase functions and validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import _theory_oracle as o
import theory
import theory.symbolic as sym


def test_kernel_machine_against_exact_simulation():
    rng = np.random.default_rng(2)
    n, C, R, p = 40, 3, 5, 8
    Z = rng.standard_normal((n, p))
    Kmat = np.exp(-0.5 * np.sum((Z[:, None] - Z[None]) ** 2, -1) / p)  # RBF kernel
    kappa = np.linalg.eigvalsh(Kmat / n)
    lr = 1.0 / kappa.max()
    Ft = 0.1 * rng.standard_normal((n, C))
    F0 = 0.1 * rng.standard_normal((R, n, C))
    steps = [0, 1, 3, 10, 30, 100]
    F, outs, t = F0.copy(), [], 0
    for s in steps:
        while t < s:
            F = F - lr * np.einsum("ij,rjc->ric", Kmat / n, F - Ft[None])
            t += 1
        outs.append(F.copy())
    logits = np.stack(outs, 1).reshape(R * len(steps), n, C)
    ev, _ = o.inpca_eigenvalues(o.bhattacharyya_matrix(o.log_softmax(logits)))
    pr = theory.kernel_quadratic_spectrum(Kmat, Ft, F0, lr, steps)
    assert np.abs(pr[:8] / ev[:8] - 1).max() < 0.03  # generic data: first-order logit error ~0.15 z
    # linear kernel K = X Xᵀ reproduces the linear-model prediction
    lam = np.exp(-0.6 * np.arange(6))
    X = o.exact_spectrum_inputs(lam, 30, 0)
    Wt, W0 = rng.standard_normal((C, 6)), rng.standard_normal((R, C, 6))
    a = theory.kernel_quadratic_spectrum(X @ X.T, X @ Wt.T, np.einsum("rcd,nd->rnc", W0, X), 1.0, steps)
    b = theory.quadratic_spectrum(lam, Wt, W0, 1.0, steps)
    assert np.allclose(a[: b.size], b, rtol=1e-9, atol=1e-14)


def test_minibatch_second_moment_exhaustive_enumeration():
    from itertools import combinations
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 3))
    M = rng.standard_normal((3, 3))
    M = M + M.T
    for b in (1, 2, 4, 6):
        acc, cnt = 0, 0
        for B in combinations(range(6), b):
            SB = X[list(B)].T @ X[list(B)] / b
            acc, cnt = acc + SB @ M @ SB, cnt + 1
        assert np.allclose(theory.sgd_minibatch_second_moment(X, M, b), acc / cnt, atol=1e-12)


def test_sgd_expected_gram_against_sgd_simulations():
    """Average over SGD realisations of the exact InPCA matrix -½JDJ equals the predicted E[JGJ]."""
    rng = np.random.default_rng(5)
    lam = np.exp(-0.7 * np.arange(6))
    lam /= lam.sum()
    n, C, R, b = 24, 3, 3, 4
    X = o.exact_spectrum_inputs(lam, n, 3, symmetric=True)
    Wt, W0 = 0.05 * rng.standard_normal((C, 6)), 0.05 * rng.standard_normal((R, C, 6))
    lr, steps = 0.8 / lam[0], np.array([0, 2, 6, 20])
    M = R * len(steps)
    J = np.eye(M) - 1.0 / M
    acc, S = 0, 150
    for s in range(S):
        g = np.random.default_rng(np.random.SeedSequence([11, s]))
        W, outs, t = W0.copy(), [], 0
        for st in steps:
            while t < st:
                for r in range(R):  # independent batches per run
                    B = g.choice(n, size=b, replace=False)
                    W[r] = W[r] - lr * (W[r] - Wt) @ (X[B].T @ X[B] / b)
                t += 1
            outs.append(W.copy())
        logits = np.einsum("krcd,nd->rknc", np.array(outs), X).reshape(M, n, C)
        acc = acc + (-0.5 * J @ o.bhattacharyya_matrix(o.log_softmax(logits)) @ J)
    G = theory.sgd_expected_gram(X, Wt, W0, lr, steps, b)
    scale = np.abs(G).max()
    assert np.abs(acc / S - G).max() < 0.05 * scale
    # the GD Gram (no noise) is clearly different: the noise term is resolved
    Y = theory.embedding_points(lam, Wt, W0, theory.residual_factors(lam, steps, lr=lr))
    Yc = Y - Y.mean(0)
    assert np.abs(Yc @ Yc.T - G).max() > 0.15 * scale
    # full batch: SGD = GD exactly
    assert np.allclose(theory.sgd_expected_gram(X, Wt, W0, lr, steps, n), Yc @ Yc.T, atol=1e-14 * scale * 1e3)


@pytest.mark.parametrize("check", [
    sym.check_bhattacharyya_expansion, sym.check_uniform_hessian, sym.check_gd_mode_solution,
    sym.check_mode_covariances, sym.check_minibatch_moment, sym.check_cross_entropy_rate,
    sym.check_limits])
def test_sympy_derivation_steps(check):
    assert check() is True


def test_stress_and_kchi():
    # sorted by |λ|: 4 first -> χ_1 = 1 - sqrt(1 - 16/25) = 0.4
    assert np.allclose(theory.explained_stress([-4.0, 3.0]), [0.4, 1.0])
    with pytest.raises(ValueError, match=r"sorted.*\|λ\[1\]\|"):
        theory.explained_stress([3.0, -4.0])
    assert theory.k_chi([1.0, 0.2, 0.01], 0.9) == 2  # χ_1 = 1 - sqrt(0.0401/1.0401) = 0.80, χ_2 = 0.99
    assert theory.k_chi([1.0, 0.0], 0.9) == 1
    with pytest.raises(ValueError, match="chi"):
        theory.k_chi([1.0], 1.5)


def test_asymptotic_formulas():
    assert theory.active_modes(0.5, 1000, 1.0) == pytest.approx(1 + np.log(1000) / 0.5)
    assert theory.active_modes(0.5, 0, 1.0) == 0
    with pytest.raises(ValueError, match="c "):
        theory.active_modes(-1, 10, 1.0)
    with pytest.raises(ValueError, match="T"):
        theory.active_modes(0.5, -1, 1.0)
    with pytest.raises(ValueError, match="unstable"):
        theory.active_modes(0.5, 10, 2.0)
    # Cauchy-like bound holds for the gradient-flow teacher Gram √(λiλj)/(λi+λj)
    for c in (0.3, 1.0):
        lam = np.exp(-c * np.arange(12))
        Cm = np.sqrt(np.outer(lam, lam)) / (lam[:, None] + lam[None])
        mu = np.sort(np.linalg.eigvalsh(Cm))[::-1]
        bound = theory.teacher_decay_bound(np.arange(12), lam[0] / lam[-1])
        assert np.all(mu / mu[0] <= bound + 1e-12)
    # teacher-dominated bound is an upper bound on the quadrature k_χ (ρ >> σ0)
    lam = np.exp(-0.5 * np.arange(30))
    st = np.r_[0, np.unique(np.round(np.geomspace(1, 1000, 10)).astype(int))]
    curve = theory.expected_explained_stress(lam, 5, 1.0, 1e-3, 1.0, st, 16, n_draws=16).chi
    k_sim = int(np.argmax(curve >= 0.9) + 1)
    assert k_sim <= theory.k_chi_teacher_bound(0.5, 1000, 1.0, d=30)
    # init-dominated: no ribbon at k* = 3 and estimate >= 4
    curve = theory.expected_explained_stress(lam, 5, 1e-3, 1.0, 1.0, st, 16, n_draws=16).chi
    assert curve[2] < 0.9 and theory.k_chi_init_estimate(0.5, 5, 16) > 3


def test_phase_functions_agree_and_validate():
    fx = dict(d=30, n_classes=5, n_runs=16, T=1000)
    cs, rs = [0.2, 1.0], [0.3, 1.0, 3.0, 10.0]
    crit = theory.phase_map({"c": cs, "ratio": rs}, fx)
    quad = theory.phase_map({"c": cs, "ratio": rs}, fx, method="monte-carlo", n_draws=16)
    assert crit.shape == (2, 4) and np.mean(crit == quad) >= 0.75
    assert not crit[:, 0].any() and crit[:, -1].all()  # ρ/σ0 small: no ribbon; large: ribbon
    bc = theory.phase_boundary("c", cs, fx)
    assert np.all((bc > 0.3) & (bc < 10))
    # more steps -> teacher part resolves -> smaller critical ratio
    bt = theory.phase_boundary("T", [10, 1000], dict(d=30, n_classes=5, n_runs=16, c=0.5))
    assert bt[1] < bt[0]
    lam = np.exp(-0.5 * np.arange(10))
    with pytest.raises(ValueError, match="k_star"):
        theory.critical_ratio(lam, 3, 1.0, [0, 1, 2], 2, k_star=6)
    with pytest.raises(ValueError, match="ratio"):
        theory.phase_map({"c": [0.5], "T": [10]}, dict(d=10, n_classes=3, n_runs=4, ratio=-1))


def test_expected_diagnostics():
    lam = np.exp(-0.5 * np.arange(10))
    lam /= lam.sum()
    d = theory.expected_logit_diagnostics(lam, 4, 0.05, 0.05, 1.0 / lam[0], [0, 10, 100])
    assert d.in_regime and d.max_point_logit_rms == pytest.approx(np.sqrt(0.75) * 0.05, rel=1e-9)
    d = theory.expected_logit_diagnostics(lam, 4, 3.0, 0.05, 1.0 / lam[0], [0, 10, 10000])
    assert not d.in_regime


def _sgd_cell(seed=0, d=8, n=32, C=3, R=6, scale=0.05):
    rng = np.random.default_rng(seed)
    lam = np.exp(-0.5 * np.arange(d))
    X = o.exact_spectrum_inputs(lam, n, seed)
    return X, scale * rng.standard_normal((C, d)), scale * rng.standard_normal((R, C, d))


def _sgd_realisations(X, Wt, W0, lr, steps, b, S, seed):
    """S independent SGD realisations of the same R-run ensemble with linsim's simulator: (S, R, K, C, d)."""
    from linsim.solvers.sgd import sgd_simulate
    R = W0.shape[0]
    _, W = sgd_simulate(X, X @ Wt.T, np.tile(W0, (S, 1, 1)), lr, b, steps, np.random.SeedSequence(seed),
                        return_weights=True)
    return W.reshape((S, R) + W.shape[1:])


def test_sgd_feature_covariance_is_the_exact_mean_over_realisations():
    """E[Yᵀ J Y] (feature space) against the average over 400 SGD realisations, entrywise in standard errors;
    full batch reduces it to the GD points' covariance, whose spectrum is the GD spectrum."""
    X, Wt, W0 = _sgd_cell(seed=3, d=6, n=24, R=3)
    n, d = X.shape
    C = Wt.shape[0]
    lam, V = np.linalg.eigh(X.T @ X / n)
    lam, V = lam[::-1], V[:, ::-1]
    lr, steps, b = 0.5 / lam[0], np.array([0, 2, 6, 20]), 2  # moderate noise: heavier tails make a 400-sample mean miss rare runs
    W = _sgd_realisations(X, Wt, W0, lr, steps, b, 400, 17)
    Q = theory.class_contrast_basis(C)
    Y = np.einsum("cj,srkcd,de,e->srkje", Q, W, V, np.sqrt(lam) / np.sqrt(8.0 * C))
    Y = Y.reshape(W.shape[0], -1, (C - 1) * d)
    Y = Y - Y.mean(axis=1, keepdims=True)
    samples = np.einsum("sia,sib->sab", Y, Y)
    mean, se = samples.mean(0), samples.std(0) / np.sqrt(samples.shape[0])
    F = theory.sgd_feature_covariance(X, Wt, W0, lr, steps, b)
    # measured: 0.67 x the largest standard error, 1.05% of the largest entry
    assert np.abs(mean - F).max() < 1.4 * se.max()
    assert np.abs(mean - F).max() < 0.021 * np.abs(F).max()
    # the noise term is resolved: the GD covariance differs by far more than the sampling error
    Fgd = theory.sgd_feature_covariance(X, Wt, W0, lr, steps, n)
    assert np.abs(Fgd - F).max() > 10.0 * se.max()  # measured: 21
    gd = theory.quadratic_spectrum(lam, Wt @ V, W0 @ V, lr, steps)
    ev = theory.sgd_typical_spectrum(X, Wt, W0, lr, steps, n)
    assert np.allclose(ev[: gd.size], gd, rtol=1e-9, atol=1e-12 * gd[0])
    chi_gd = theory.explained_stress(gd)
    chi_full = theory.sgd_typical_explained_stress(X, Wt, W0, lr, steps, n)  # no noise: no spread
    np.testing.assert_allclose(chi_full[: chi_gd.size], chi_gd, atol=1e-9)


@pytest.mark.parametrize("b, tol_spread, tol_typ, worse_mean", [(1, 0.05, 0.16, 0.30), (4, 0.014, 0.078, None),
                                                                (16, 0.0054, 0.0098, None)])
def test_sgd_typical_spectrum_predicts_the_median_chi(b, tol_spread, tol_typ, worse_mean):
    """Median over 200 SGD noise realisations of the exact InPCA χ_k (softmax Bhattacharyya distances)
    against the typical theory. Measured (this cell, these seeds), max_k≤6 |error|: with the
    finite-sample spread 0.025 / 0.0068 / 0.0027 at b = 1 / 4 / 16; leading order (spectrum of
    E[Yᵀ J Y]) 0.081 / 0.039 / 0.0049; mean-Gram theory 0.395 / 0.028 / 0.0036."""
    from scipy.special import softmax
    X, Wt, W0 = _sgd_cell()
    n = X.shape[0]
    lam1 = np.linalg.eigvalsh(X.T @ X / n)[-1]
    lr, steps = 0.5 / lam1, theory.checkpoint_steps(200, 8)
    W = _sgd_realisations(X, Wt, W0, lr, steps, b, 200, 123 + b)
    S, R, K = W.shape[:3]
    logits = np.einsum("srkcd,nd->srknc", W, X).reshape(S, R * K, n, -1)
    J = np.eye(R * K) - 1.0 / (R * K)
    chis = []
    for chunk in np.array_split(np.arange(S), 8):
        sq = np.sqrt(softmax(logits[chunk], axis=-1))  # (s, M, n, C)
        D = -np.log(np.einsum("sunc,svnc->suvn", sq, sq)).mean(-1)  # exact Bhattacharyya, mean over samples
        for G in -0.5 * J @ D @ J:
            ev = np.linalg.eigvalsh(G)
            chis.append(theory.explained_stress(ev[np.argsort(-np.abs(ev), kind="stable")])[:6])
    median = np.median(chis, axis=0)
    typ = theory.explained_stress(theory.sgd_typical_spectrum(X, Wt, W0, lr, steps, b))[:6]
    spread = theory.sgd_typical_explained_stress(X, Wt, W0, lr, steps, b)[:6]
    mean = theory.explained_stress(theory.sgd_quadratic_spectrum(X, Wt, W0, lr, steps, b))[:6]
    assert np.abs(spread - median).max() < tol_spread
    assert np.abs(typ - median).max() < tol_typ
    np.testing.assert_allclose(theory.sgd_typical_explained_stress(X, Wt, W0, lr, steps, b, spread=False)[:6], typ)
    if worse_mean is not None:  # strong noise: both typical theories are far better than the mean Gram
        assert np.abs(mean - median).max() > worse_mean
        assert np.abs(spread - median).max() < 0.5 * np.abs(typ - median).max()


def test_sgd_typical_inputs_are_checked_by_name():
    X, Wt, W0 = _sgd_cell(d=4, n=8, R=2)
    for bad in (0, 9, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            theory.sgd_feature_covariance(X, Wt, W0, 0.5, [0, 2], bad)
    with pytest.raises(ValueError, match="init"):
        theory.sgd_feature_covariance(X, Wt, W0[:, :, :3], 0.5, [0, 2], 2)
    with pytest.raises(ValueError, match="2 classes"):
        theory.sgd_typical_spectrum(X, Wt[:1], W0[:, :1], 0.5, [0, 2], 2)
    with pytest.raises(ValueError, match="lr"):
        theory.sgd_typical_spectrum(X, Wt, W0, 10.0, [0, 2], 2)  # beyond the full-batch limit 2/λ_max
    with pytest.raises(ValueError, match="steps"):
        theory.sgd_typical_spectrum(X, Wt, W0, 0.5, [0, -2], 2)


@settings(max_examples=25, deadline=None)
@given(seed=hst.integers(0, 10**6), n=hst.integers(3, 9), d=hst.integers(1, 4), C=hst.integers(2, 4),
       R=hst.integers(1, 3), b_frac=hst.floats(0.0, 1.0), lr_frac=hst.floats(0.05, 0.95))
def test_sgd_feature_covariance_invariants(seed, n, d, C, R, b_frac, lr_frac):
    """E[Yᵀ J Y] is symmetric PSD and its trace is E||J Y||_F², the trace of the independently coded
    point-space expectation sgd_expected_gram (which propagates only the class-traced moment)."""
    g = np.random.default_rng(seed)
    X, Wt, W0 = g.normal(size=(n, d)), g.normal(size=(C, d)), g.normal(size=(R, C, d))
    b = 1 + int(b_frac * (n - 1))
    lr = lr_frac * 2.0 / np.linalg.eigvalsh(X.T @ X / n)[-1]
    steps = [0, 1, 3]
    F = theory.sgd_feature_covariance(X, Wt, W0, lr, steps, b)
    scale = max(1.0, np.abs(F).max())
    assert np.allclose(F, F.T, atol=1e-12 * scale)
    assert np.linalg.eigvalsh(F).min() > -1e-9 * scale
    G = theory.sgd_expected_gram(X, Wt, W0, lr, steps, b)
    assert np.trace(F) == pytest.approx(np.trace(G), rel=1e-9, abs=1e-12 * scale)
    chi = theory.sgd_typical_explained_stress(X, Wt, W0, lr, steps, b)
    assert np.all(np.diff(chi) >= -1e-12) and chi[-1] == pytest.approx(1.0)
