"""The phase boundary (issue 9 item 2) against independent computations, and the acceptance
benchmark's crossing locator on functions with known roots.

Oracles written here, independent of ``theory``: (i) small-logit Monte Carlo of the ensemble in
the full C-class form (Gaussian teacher and initial weights in the input eigenbasis, class-
centred logits, GD residual factors ``(1 - ηλ_k)^t``, centred Gram eigenvalues); (ii) exact
softmax + Bhattacharyya + InPCA of plain GD (``_theory_oracle``); (iii) draws of the run-mean
block for the teacher-tail formula.
"""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st_
from threadpoolctl import threadpool_limits

import theory
from theory.asymptotics import _teacher_tail

from _theory_oracle import (bhattacharyya_matrix, exact_spectrum_inputs, gd_weights, inpca_eigenvalues,
                            log_softmax)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _lam(c, d=30):
    return np.exp(-c * np.arange(d))


def _chi(ev, k):
    ev = np.sort(np.abs(ev))[::-1]
    return 1.0 - np.sqrt(max(1.0 - np.sum(ev[:k] ** 2) / np.sum(ev**2), 0.0))


def _mc_chi3(lam, C, ratio, R, steps, n_draws, seed):
    """Mean χ_3 of small-logit draws, full C-class form (σ0 = 1, ρ = ratio, ηλ_1 = 1)."""
    g = np.random.default_rng(seed)
    a = (1.0 - lam / lam[0])[None, :] ** np.asarray(steps, dtype=float)[:, None]  # (K, d)
    prof = a * np.sqrt(lam)[None, :]
    P = np.eye(C) - 1.0 / C
    out = []
    for _ in range(n_draws):
        W0 = g.standard_normal((R, C, lam.size))
        Wt = ratio * g.standard_normal((C, lam.size))
        E = np.einsum("ab,rbd->rad", P, W0 - Wt[None])            # class-centred residual weights
        Y = (E[:, None, :, :] * prof[None, :, None, :]).reshape(R * len(steps), -1)
        Y = Y - Y.mean(axis=0)
        out.append(_chi(np.linalg.svd(Y, compute_uv=False) ** 2, 3))
    return float(np.mean(out))


def _first_crossing(f, grid, n_bisect):
    """First upward crossing of 0.9 on ``grid`` (then log bisection + log interpolation)."""
    lo, flo = None, None
    for r in grid:
        fr = f(r)
        if fr >= 0.9:
            hi, fhi = r, fr
            break
        lo, flo = r, fr
    else:
        return np.inf
    if lo is None:
        return 0.0
    for _ in range(n_bisect):
        m = np.sqrt(lo * hi)
        fm = f(m)
        lo, flo, hi, fhi = (lo, flo, m, fm) if fm >= 0.9 else (m, fm, hi, fhi)
    return float(np.exp(np.log(lo) + (0.9 - flo) / (fhi - flo) * np.log(hi / lo)))


# measured prediction/reference - 1 with these draws (seed 11): +15.1%, +3.5%, -4.0% (with
# seeds 12, 13: -5.2/-6.3%, -4.3/-6.9%, -3.9/-8.6%: the 64-draw crossing itself spreads by ~10%);
# tolerance 2x the measured error. The energy balance used before gave 0.0, 0.0 and 2.03 here.
@pytest.mark.parametrize("C, c, R, T, tol", [
    (3, 2.0, 8, 1000, 0.30),
    (2, 0.8, 8, 1000, 0.07),
    (2, 1.2, 16, 10, 0.08),
])
def test_critical_ratio_few_classes_against_independent_draws(C, c, R, T, tol):
    lam = _lam(c)
    st = theory.checkpoint_steps(T, 10)
    ref = _first_crossing(lambda r: _mc_chi3(lam, C, r, R, st, 64, 11), np.geomspace(0.05, 20, 10), 4)
    got = theory.critical_ratio(lam, C, 1.0, st, R)
    assert 0 < ref < np.inf and got > 0
    assert abs(got / ref - 1) < tol, (got, ref)


def test_critical_ratio_init_ribbon_at_two_classes():
    """C = 2, R = 8, c = 1.2, T = 10: the ρ ≈ 0 cloud is a ribbon on independent draws; the
    balance put the boundary at 2.04, the exact-law root says 0 (0.063 since the cubature rule of
    0f45070: the cell sits on the ill-conditioned edge of the branch, derivations §7.3)."""
    lam = _lam(1.2)
    st = theory.checkpoint_steps(10, 10)
    assert _mc_chi3(lam, 2, 0.02, 8, st, 128, 5) >= 0.9
    assert theory.critical_ratio(lam, 2, 1.0, st, 8) < 0.13


def _teacher_tail_draws(Psi, C, n_draws, seed):
    """E Σ_{i>j} ν_i(G_T)², G_T = Σ_k w_k ψ_k ψ_kᵀ with w_k ~ χ²_{C-1}: the sample tail, j = 0..3."""
    g = np.random.default_rng(seed)
    tails = []
    for _ in range(n_draws):
        w = np.sum(g.standard_normal((C - 1, Psi.shape[1])) ** 2, axis=0)
        ev = np.sort(np.abs(np.linalg.eigvalsh((Psi * w) @ Psi.T)))[::-1]
        sq = ev**2
        tails.append([np.sum(sq[j:]) for j in range(4)])
    return np.mean(tails, axis=0)


# measured relative error of the j = 1, 2 tails (4000 draws): C = 50: 2.1%, 2.1%; C = 10: 9.9%,
# 10.9% (the mean-field share used before: 2.3/2.7%, 11.3/14.6%); tolerance 2x
@pytest.mark.parametrize("C, tol", [(50, 0.045), (10, 0.22)])
def test_teacher_tail_against_draws(C, tol):
    """The second-order tail τ_j T2 against the sample tail Σ_{i>j} ν_i² of drawn run-mean blocks."""
    lam = _lam(0.5, 12)
    st = np.array([0, 1, 3, 10, 30, 100])
    prof = (1.0 - lam)[None, :] ** st[:, None] * np.sqrt(lam)[None, :]
    Phi = prof / np.sqrt(8.0 * C)                       # the mode-profile normalization of §4
    Psi = Phi - Phi.mean(axis=0)
    want = _teacher_tail_draws(Psi, C, 4000, 3)
    got = _teacher_tail(Phi, C)[:4]
    assert got[0] == pytest.approx(want[0], rel=0.02)   # j = 0: the exact E‖G_T‖² (T2)
    rel = np.abs(got[1:3] / want[1:3] - 1)
    assert np.all(rel < tol), rel
    # closer to the draws than the mean-field share of the total (what the balance used before)
    nu = np.clip(np.sort(np.linalg.eigvalsh(Psi @ Psi.T))[::-1], 0, None)
    share = np.array([np.sum(nu[j:] ** 2) for j in (1, 2)]) / np.sum(nu**2) * want[0]
    assert np.all(rel < np.abs(share / want[1:3] - 1))


def test_critical_ratio_against_exact_softmax():
    """Prediction vs the χ_3 = 0.9 crossing of exact softmax GD simulations (C = 10, R = 4)."""
    lam = _lam(0.5, 10)
    st = theory.checkpoint_steps(10, 10)
    C, R, n, s0 = 10, 4, 20, 0.01

    def chi3(ratio):
        vals = []
        for s in range(12):
            g = np.random.default_rng(1000 + s)
            X = exact_spectrum_inputs(lam, n, int(g.integers(2**31)))
            Wt = ratio * s0 * g.standard_normal((C, lam.size))
            W0 = s0 * g.standard_normal((R, C, lam.size))
            Z = np.einsum("nd,rkcd->rknc", X, gd_weights(X, Wt, W0, 1.0 / lam[0], st)).reshape(-1, n, C)
            ev, F = inpca_eigenvalues(bhattacharyya_matrix(log_softmax(Z)))
            vals.append(1.0 - np.sqrt(max(1.0 - np.sum(ev[:3] ** 2) / F, 0.0)))
        return float(np.mean(vals))

    ref = _first_crossing(chi3, [1.6, 3.2], 2)
    # measured: the curve root (method='auto') -1.85%, the fluctuation-corrected balance +4.09%
    # (the plain balance: -0.25%; R = 4 is where the corrected balance runs high, derivations
    # §7.3; the 12-seed reference itself spreads by ~3%); tolerances 2x
    got = theory.critical_ratio(lam, C, 1.0, st, R)
    assert abs(got / ref - 1) < 0.037, (got, ref)
    balance = theory.critical_ratio(lam, C, 1.0, st, R, method="balance")
    assert abs(balance / ref - 1) < 0.082, (balance, ref)


# ---- the acceptance benchmark's locator, on per-seed functions with known crossings ----------

@pytest.fixture
def boundary_module(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import acceptance_boundary

    return acceptance_boundary


def test_first_crossing_hand_values(boundary_module):
    fc = boundary_module.first_crossing
    r = np.array([1.0, 2.0, 4.0])
    assert fc(r, np.array([0.95, 0.5, 0.5])) == 0.0
    assert fc(r, np.array([0.5, 0.6, 0.7])) == np.inf
    # log-linear between 2 and 4: 0.8 -> 1.0 crosses 0.9 halfway in log, at 2 * sqrt(2)
    assert fc(r, np.array([0.5, 0.8, 1.0])) == pytest.approx(2 * np.sqrt(2), rel=1e-12)


def test_locator_finds_a_known_crossing_and_its_band(boundary_module, monkeypatch):
    """Per-seed χ_3(r) = 0.9 + 0.1 tanh(ln(r / r_s)) with r_s = 1.7 e^{0.1 z_s}: the seed mean
    crosses 0.9 at the r solving mean_s tanh(ln(r/r_s)) = 0, found here by brute force."""
    S = 32
    z = np.random.default_rng(4).standard_normal(S)
    rs = 1.7 * np.exp(0.1 * z)

    def per_seed(base, ratio, seeds):
        idx = np.asarray(seeds) - 7000
        return 0.9 + 0.1 * np.tanh(np.log(ratio / rs[idx]))

    monkeypatch.setattr(boundary_module, "_per_seed", per_seed)
    grid = np.geomspace(1.0, 3.0, 200001)
    mean = np.mean(np.tanh(np.log(grid[:, None] / rs[None, :])), axis=1)
    true = grid[np.argmax(mean >= 0)]
    ratios, vals, got = boundary_module.locate_crossing(None, 7000 + np.arange(S))
    assert vals.shape == (ratios.size, S)
    assert got == pytest.approx(true, rel=0.003)   # 3.4% bracket, log-interpolated
    boot = boundary_module.bootstrap_crossings(ratios, vals, n_boot=200)
    lo, hi = boundary_module._band(boot)
    assert lo < true < hi
    # the band's width is the seed spread of the crossing: about 2 x 1.96 x 0.1 / sqrt(S) in log
    assert 0.5 * 0.069 < np.log(hi / lo) < 2.0 * 0.069


def test_locator_branches(boundary_module, monkeypatch):
    monkeypatch.setattr(boundary_module, "_per_seed", lambda b, r, s: np.full(len(s), 0.95))
    assert boundary_module.locate_crossing(None, np.arange(3))[2] == 0.0
    monkeypatch.setattr(boundary_module, "_per_seed", lambda b, r, s: np.full(len(s), 0.5))
    ratios, _, got = boundary_module.locate_crossing(None, np.arange(3))
    assert got == np.inf and ratios.size == len(boundary_module.LOCATE_GRID)


def test_scores_use_the_same_points_for_theory_and_trivial_rule(boundary_module):
    """A scan whose simulated verdicts are known: the counts follow by hand."""
    grid = 2.0 * np.array(boundary_module.SCAN_FACTORS)          # 1, 1.33, 1.6, 2.5, 3, 4
    ev = np.where(grid[:, None] >= 2.0, 0.95, 0.85) + np.array([[-0.01, 0.01]])   # S = 2
    scan = boundary_module.ScanSim(C=5, R=8, c=0.5, T=10, first_seed=0, locate_ratios=grid,
                                   locate_chi3=ev, crossing=2.0, band=(1.9, 2.1), grid=grid,
                                   eval_chi3=ev)
    row = boundary_module.score(scan, pred=2.2)
    assert row.within and row.sim.tolist() == [False, False, False, True, True, True]
    assert int(np.sum(row.theory == row.sim)) == 6
    # trivial rule ρ/σ0 >= 1.5 calls 1.6 a ribbon: wrong there only
    assert int(np.sum(row.trivial == row.sim)) == 5
    assert not row.noisy.any()
    assert not boundary_module.score(scan, pred=2.6).within


@settings(max_examples=15, deadline=None)
@given(c=st_.floats(0.05, 2.0), C=st_.integers(4, 12), R=st_.sampled_from([2, 4, 16, 64]),
       T=st_.sampled_from([10, 300, 10**5]), scale=st_.floats(1e-3, 1e3))
def test_critical_ratio_depends_on_eta_lambda_only(c, C, R, T, scale):
    """Invariance: scaling λ by s and η by 1/s leaves every GD factor (1 - ηλ)^t and, since χ
    is scale-free, the boundary unchanged (the closed-form balance here; the curve root below)."""
    lam = _lam(c, 16)
    steps = theory.checkpoint_steps(T, 8)
    a = theory.critical_ratio(lam, C, 1.0, steps, R, method="balance")
    b = theory.critical_ratio(scale * lam, C, 1.0 / scale, steps, R, method="balance")
    assert b == pytest.approx(a, rel=1e-7) or (a == b)


@pytest.mark.parametrize("c, C, R, scale", [(0.4, 5, 4, 1e-3), (1.5, 8, 8, 250.0)])
def test_curve_root_depends_on_eta_lambda_only(c, C, R, scale):
    lam = _lam(c, 16)
    steps = theory.checkpoint_steps(300, 8)
    a = theory.critical_ratio(lam, C, 1.0, steps, R, method="curve-root")
    assert theory.critical_ratio(scale * lam, C, 1.0 / scale, steps, R) == pytest.approx(a, rel=1e-7)


def test_critical_ratio_scale_invariance_few_classes():
    lam = _lam(1.2, 16)
    steps = theory.checkpoint_steps(100, 8)
    a = theory.critical_ratio(lam, 3, 1.0, steps, 8)
    assert theory.critical_ratio(40.0 * lam, 3, 1.0 / 40.0, steps, 8) == pytest.approx(a, rel=1e-6)


# ---- the fluctuation-corrected balance (C >= 4): its two closed-form pieces, and the T = 10 cells

def test_teacher_energy_moments_against_draws():
    """Mean and variance of ‖Σ_k w_k ψ_k ψ_kᵀ‖_F², w_k ~ χ²_{C-1}, against numpy draws."""
    from theory.asymptotics import _teacher_energy_moments

    lam = _lam(1.0, 8)
    st = np.array([0, 1, 2, 4, 8])
    Phi = (1.0 - lam)[None, :] ** st[:, None] * np.sqrt(lam)[None, :] / np.sqrt(8.0 * 5)
    Psi = Phi - Phi.mean(axis=0)
    g = np.random.default_rng(17)
    w = np.sum(g.standard_normal((100_000, 4, lam.size)) ** 2, axis=1)          # C = 5
    Q = np.einsum("nk,tk,sk->nts", w, Psi, Psi)
    Q = np.sum(Q**2, axis=(1, 2))
    mean, var = _teacher_energy_moments(Phi, 5)
    # sampling error of the mean ~0.2%, of the variance ~1.5% (heavy chi^2 tails)
    assert mean == pytest.approx(Q.mean(), rel=0.01)
    assert var == pytest.approx(Q.var(), rel=0.06)


@pytest.mark.parametrize("b, shape, scale", [(0.3, 0.45, 1.0), (2.0, 1.5, 0.2), (1e-3, 4.0, 2.0),
                                              (50.0, 0.2, 1.0), (1.0, 300.0, 0.01)])
def test_inverse_sqrt_mean_against_quadrature(b, shape, scale):
    """E[(b+V)^{-1/2}], V ~ Gamma: the Tricomi closed form against adaptive quadrature of the density."""
    from scipy import integrate, stats

    from theory.asymptotics import _inverse_sqrt_mean

    f = lambda v: stats.gamma.pdf(v, shape, scale=scale) / np.sqrt(b + v)  # noqa: E731
    mid = shape * scale
    ref = integrate.quad(f, 0, mid, limit=400)[0] + integrate.quad(f, mid, np.inf, limit=400)[0]
    assert _inverse_sqrt_mean(b, shape, scale) == pytest.approx(ref, rel=1e-7)
    # b = 0: Γ(γ-1/2)/Γ(γ)/sqrt(θ) for γ > 1/2, infinite otherwise
    assert _inverse_sqrt_mean(0.0, 0.4, 1.0) == np.inf
    assert _inverse_sqrt_mean(0.0, 2.0, 1.0) == pytest.approx(np.sqrt(np.pi) / 2, rel=1e-12)


def _mc_chi3_common(lam, C, R, steps, n_draws, seed):
    """χ_3 seed mean as a function of the ratio, the same draws at every ratio (σ0 = 1, ηλ_1 = 1).

    Class-contrast form: residual weights u - r v with u (R, C-1, d), v (C-1, d) standard normal;
    the centred feature Gram at ratio r is A - r (B + Bᵀ) + r² D, built once per draw.
    """
    g = np.random.default_rng(seed)
    prof = (1.0 - lam / lam[0])[None, :] ** np.asarray(steps, dtype=float)[:, None] * np.sqrt(lam)[None, :]
    K, d = prof.shape
    mats = []
    for _ in range(n_draws):
        u = g.standard_normal((R, C - 1, d))
        v = g.standard_normal((C - 1, d))
        Yu = (u[:, None] * prof[None, :, None, :]).reshape(R * K, -1)
        Yv = np.tile((v[None] * prof[:, None, :]).reshape(K, -1), (R, 1))
        Yu, Yv = Yu - Yu.mean(axis=0), Yv - Yv.mean(axis=0)
        B = Yu.T @ Yv
        mats.append((Yu.T @ Yu, B + B.T, Yv.T @ Yv))
    A, BB, D = (np.array(m) for m in zip(*mats))

    def chi3(r):
        sq = np.sort(np.linalg.eigvalsh(A - r * BB + r * r * D) ** 2, axis=1)[:, ::-1]
        tail = 1.0 - sq[:, :3].sum(axis=1) / sq.sum(axis=1)
        return float(np.mean(1.0 - np.sqrt(np.clip(tail, 0.0, None))))
    return chi3


# The cells where the plain balance was 15-24% low (C = 5, c >= 1, T = 10; plain balance 1.72 and
# 2.08 on these), against the crossing of independent draws (seed 21, common to all ratios).
# measured +1.5% and -1.0% (the plain balance: -23.6% and -15.4%); tolerance 2x
@pytest.mark.parametrize("C, c, R, n_draws, tol", [(5, 2.0, 16, 600, 0.03), (5, 1.0, 64, 200, 0.021)])
def test_critical_ratio_few_checkpoints_against_independent_draws(C, c, R, n_draws, tol):
    """The fluctuation-corrected balance (method='balance'; 'auto' takes the curve root at C = 5)."""
    lam = _lam(c)
    st = theory.checkpoint_steps(10, 10)
    ref = _first_crossing(_mc_chi3_common(lam, C, R, st, n_draws, 21), [1.7, 2.0, 2.4, 2.9, 3.4], 4)
    got = theory.critical_ratio(lam, C, 1.0, st, R, method="balance")
    assert abs(got / ref - 1) < tol, (got, ref)


# R = 4 at C = 4-5, where the balance misses (tuning: +19 to +42%, and -45% at C = 4, c = 2,
# T = 1e5): the curve root against the crossing of 800 independent draws (seed 31). Measured
# -2.1% (balance +22.2%) and -8.2% (balance -50.2%; with seeds 32, 33: +4.4%, +7.3%: the
# 800-draw crossing spreads by ~7% on this flat curve); tolerance 2x the measured error.
@pytest.mark.parametrize("C, c, T, grid, tol", [
    (5, 1.0, 10, [1.5, 1.8, 2.1, 2.5, 3.0], 0.042),
    (4, 2.0, 100_000, [0.3, 0.4, 0.5, 0.65, 0.8, 1.0], 0.164),
])
def test_critical_ratio_curve_root_at_four_and_five_classes(C, c, T, grid, tol):
    lam = _lam(c)
    st = theory.checkpoint_steps(T, 10)
    ref = _first_crossing(_mc_chi3_common(lam, C, 4, st, 800, 31), grid, 4)
    got = theory.critical_ratio(lam, C, 1.0, st, 4)
    assert got == theory.critical_ratio(lam, C, 1.0, st, 4, method="curve-root")
    assert abs(got / ref - 1) < tol, (got, ref)
    balance = theory.critical_ratio(lam, C, 1.0, st, 4, method="balance")
    assert abs(balance / ref - 1) > 2 * abs(got / ref - 1)


@pytest.fixture
def fresh_boundary_caches():
    """Empty the boundary caches before and after: a value cached under patched module settings
    must neither be found by the test nor leak out of it."""
    from theory.asymptotics import _balance_root_cached, _curve_root_cached
    _curve_root_cached.cache_clear()
    _balance_root_cached.cache_clear()
    yield
    _curve_root_cached.cache_clear()
    _balance_root_cached.cache_clear()


def test_critical_ratio_methods_are_checked(fresh_boundary_caches):
    from theory import ensemble
    from theory.asymptotics import BOUNDARY_METHODS, CURVE_ROOT_MAX_RUNS
    lam = _lam(0.5)
    st = theory.checkpoint_steps(100, 6)
    assert BOUNDARY_METHODS == ("auto", "curve-root", "balance")
    for bad in ("closed-form", ["auto"]):
        with pytest.raises(ValueError, match="method must be one of"):
            theory.critical_ratio(lam, 5, 1.0, st, 4, method=bad)
    root = theory.critical_ratio(lam, 7, 1.0, st, 4)  # cached before the patch: must not be reused
    assert root == theory.critical_ratio(lam, 7, 1.0, st, 4, method="curve-root")
    with pytest.MonkeyPatch.context() as mp:   # a rule too large for the cubature: no exact-law curve
        mp.setattr(ensemble, "CUBATURE_MAX_SIZE", 0)
        with pytest.raises(ValueError, match="exceeds theory.ensemble.CUBATURE_MAX_SIZE"):
            theory.critical_ratio(lam, 7, 1.0, st, 4, method="curve-root")
        # ... where 'auto' falls back to the balance
        balance = theory.critical_ratio(lam, 7, 1.0, st, 4, method="balance")
        assert balance != root
        assert theory.critical_ratio(lam, 7, 1.0, st, 4) == balance
    assert theory.critical_ratio(lam, 7, 1.0, st, 4) == root   # and back after it
    # beyond the curve root's run range 'auto' is the balance too
    many = CURVE_ROOT_MAX_RUNS + 1
    assert theory.critical_ratio(lam, 6, 1.0, st, many) == theory.critical_ratio(lam, 6, 1.0, st, many,
                                                                                 method="balance")


def test_auto_takes_the_balance_just_beyond_the_size_caps(monkeypatch):
    """d = 30, K = 11: C = 8, R = 18 gives min(RK, (C-1)d) = 198 > CURVE_ROOT_MAX_SIZE; C = 15,
    R = 4 gives (C-1)d = 420 > CURVE_ROOT_MAX_FEATURES. Neither may search a curve root."""
    from theory import asymptotics
    calls = []
    monkeypatch.setattr(asymptotics, "_curve_root_of", lambda key: calls.append(key))
    lam = _lam(1.0, 30)
    st = theory.checkpoint_steps(1000, 10)
    for C, R in ((8, 18), (15, 4)):
        assert theory.critical_ratio(lam, C, 1.0, st, R) == theory.critical_ratio(lam, C, 1.0, st, R,
                                                                                  method="balance")
    assert calls == []
    theory.critical_ratio(lam, 8, 1.0, st, 17)   # 187 <= 192 and 210 <= 400: a root search
    assert len(calls) == 1


def test_cubature_size_caps_at_thirty_modes():
    """With all 30 modes kept and 11 checkpoints the variables cap (n_f min(R-1, n_f) <= 100000)
    admits C = 53 at R = 64 (so all of issue 9's range, C <= 50) and refuses C = 54, admits
    C = 108 at R = 32 and refuses C = 109; the size cap (min(RK, n_f) <= 768) admits C = 26 at
    R = 128 (n_f = 750) and refuses C = 27 (780)."""
    from theory.ensemble import _uses_cubature
    lam = np.exp(-0.05 * np.arange(30))
    st = theory.checkpoint_steps(1000, 10)
    F = (1 - lam / lam[0])[None, :] ** st[:, None].astype(float)
    assert _uses_cubature(lam, 53, 1.0, 1.0, 64, F) and not _uses_cubature(lam, 54, 1.0, 1.0, 64, F)
    assert _uses_cubature(lam, 108, 1.0, 1.0, 32, F) and not _uses_cubature(lam, 109, 1.0, 1.0, 32, F)
    assert _uses_cubature(lam, 26, 1.0, 1.0, 128, F) and not _uses_cubature(lam, 27, 1.0, 1.0, 128, F)


@settings(max_examples=60, deadline=None)
@given(b=st_.floats(1e-6, 1e6), shape=st_.floats(0.05, 1e4), scale=st_.floats(1e-6, 1e6))
def test_inverse_sqrt_mean_obeys_jensen_bounds(b, shape, scale):
    """x^{-1/2} is convex and decreasing: (b + E V)^{-1/2} <= E[(b+V)^{-1/2}] <= b^{-1/2}."""
    from theory.asymptotics import _inverse_sqrt_mean

    got = _inverse_sqrt_mean(b, shape, scale)
    lo, hi = (b + shape * scale) ** -0.5, b**-0.5
    assert lo * (1 - 1e-9) <= got <= hi * (1 + 1e-9), (got, lo, hi)
