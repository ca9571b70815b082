"""One name, one meaning (issue 11): the theory's shared definitions and its input validation."""

import math

import numpy as np
import pytest

import theory

LAM = np.exp(-0.5 * np.arange(6))
ARGS = dict(eigenvalues=LAM, n_classes=3, teacher_scale=0.1, init_scale=0.1, lr=1.0, steps=[0, 2, 8],
            n_runs=3)


def test_k_chi_sentinel_is_inf_and_float():
    assert theory.k_chi([1.0, 0.5], 0.9, frobenius_norm=10.0) == math.inf
    k = theory.k_chi([1.0, 0.2, 0.01], 0.9)
    assert isinstance(k, float) and k == 2.0
    # the StressCurve helper has the same sentinel
    cur = theory.StressCurve(np.array([0.5, 0.6]), np.zeros(2), "mean-field")
    assert cur.k_chi(0.9) == math.inf and cur.k_chi(0.55) == 2.0


def test_explained_stress_hand_values_and_norm_convention():
    # W = diag(3, -2, 1): ‖W‖_F = sqrt(14). Given only the top eigenvalue and the norm:
    assert theory.explained_stress([3.0], frobenius_norm=math.sqrt(14))[0] == pytest.approx(
        1 - math.sqrt(5 / 14), abs=1e-15)
    with pytest.raises(ValueError, match="not its square"):
        theory.explained_stress([3.0, -2.0], frobenius_norm=0.5)
    with pytest.raises(ValueError, match="frobenius_norm"):
        theory.explained_stress([3.0], frobenius_norm=-1.0)
    with pytest.raises(ValueError, match="all eigenvalues are zero"):
        theory.explained_stress([0.0, 0.0])
    with pytest.raises(ValueError, match="real"):
        theory.explained_stress(np.array([1.0 + 1j]))


def test_checkpoint_schedule_is_linsims():
    from linsim import ensemble

    for T in (0, 1, 3, 10, 1000, 12345):
        for n in (1, 2, 5, 20):
            assert np.array_equal(theory.checkpoint_steps(T, n), ensemble.checkpoint_steps(T, n))
    # independent hand values: 0 plus rint(geomspace(1, 1000, 5)) = 1, 5.62, 31.6, 177.8, 1000
    assert theory.checkpoint_steps(1000, 5).tolist() == [0, 1, 6, 32, 178, 1000]
    for bad in (10.5, -1, True, "10"):
        with pytest.raises(ValueError, match="steps"):
            theory.checkpoint_steps(bad, 5)
    with pytest.raises(ValueError, match="n_checkpoints"):
        theory.checkpoint_steps(10, 0)


def test_phase_map_uses_the_simulators_schedule():
    # phase_boundary at T with n_checkpoints = the schedule used by critical_ratio directly
    lam = theory.geometric_spectrum(0.5, 12)
    direct = theory.critical_ratio(lam, 4, 1.0, theory.checkpoint_steps(100, 7), 8)
    via = theory.phase_boundary("c", [0.5], dict(d=12, n_classes=4, n_runs=8, T=100), n_checkpoints=7)
    assert via[0] == pytest.approx(direct, rel=1e-12)


def test_one_regime_rule():
    assert theory.REGIME_LOGIT_RMS == 0.3
    assert theory.in_regime(0.3) and not theory.in_regime(0.3000001)
    with pytest.raises(ValueError, match="logit_rms"):
        theory.in_regime(-0.1)
    # centred rms by hand: rows (1, -1) and (2, 2) -> centred (1, -1), (0, 0): rms = sqrt(2/4)
    assert theory.centred_logit_rms([[1.0, -1.0], [2.0, 2.0]]) == pytest.approx(math.sqrt(0.5))
    with pytest.raises(ValueError, match="C >= 2"):
        theory.centred_logit_rms([1.0])
    with pytest.raises(ValueError, match=r"index \(1, 0\)"):
        theory.centred_logit_rms([[1.0, 0.0], [np.nan, 0.0]])


def test_one_regime_rule_matches_the_trajectory_statistic():
    """The regime statistic of a simulated ensemble equals the theory's own expected rms."""
    from linsim.ensemble import EnsembleConfig, simulate

    cfg = EnsembleConfig(slope=0.5, dim=8, n_samples=40, n_classes=3, n_runs=4, steps=20,
                         n_checkpoints=4, teacher_scale=0.05, init_scale=0.05, seed=3)
    traj = simulate(cfg)
    V = traj.arrays["eigenvectors"]
    dg = theory.logit_diagnostics(traj.arrays["eigenvalues"], traj.arrays["teacher"] @ V,
                                  traj.arrays["init"] @ V, traj.params["lr_effective"],
                                  traj.arrays["steps"])
    assert dg.logit_rms == pytest.approx(theory.centred_logit_rms(traj.outputs), rel=1e-9)
    assert dg.in_regime == theory.in_regime(theory.centred_logit_rms(traj.outputs))


def test_residual_factors_is_not_the_solvers_mode_factors():
    assert not hasattr(theory, "mode_factors")
    a = theory.residual_factors([1.0, 0.25], [0, 1, 3], lr=1.0)
    assert np.allclose(a, [[1, 1], [0, 0.75], [0, 0.75**3]])


@pytest.mark.parametrize("func", [theory.expected_spectrum, theory.expected_explained_stress,
                                  theory.expected_frobenius_sq, theory.mean_field_blocks])
@pytest.mark.parametrize("kw, match", [
    (dict(n_classes=2.7), "n_classes"), (dict(n_classes=1), "n_classes"), (dict(n_classes=True), "n_classes"),
    (dict(n_runs=2.5), "n_runs"), (dict(n_runs=0), "n_runs"), (dict(teacher_scale=np.nan), "teacher_scale"),
    (dict(init_scale="a"), "init_scale"), (dict(steps=[0, 1.5]), "integers"),
    (dict(steps=[0, 4, 1, 4]), r"steps\[3\] = 4 repeats steps\[1\]"),
])
def test_expectations_refuse_bad_input(func, kw, match):
    with pytest.raises(ValueError, match=match):
        func(**{**ARGS, **kw})


def test_non_integer_valued_floats_are_accepted_when_integral():
    a = theory.expected_spectrum(**{**ARGS, "n_classes": 3.0, "n_draws": 4})
    b = theory.expected_spectrum(**{**ARGS, "n_draws": 4})
    assert np.array_equal(a, b)


def test_quadrature_name_is_gone_with_a_pointer():
    with pytest.raises(ValueError, match="monte-carlo"):
        theory.expected_spectrum(**ARGS, method="quadrature")
    with pytest.raises(ValueError, match="n_draws"):
        theory.expected_explained_stress(**ARGS, n_draws=1)


def test_monte_carlo_stderr_is_the_seed_to_seed_spread():
    curves = [theory.expected_explained_stress(**ARGS, n_draws=16, seed=s) for s in range(40)]
    chis = np.array([c.chi for c in curves])
    se = np.mean([c.stderr for c in curves], axis=0)
    spread = chis.std(axis=0, ddof=1)
    ok = spread > 1e-6
    assert np.all(np.abs(se[ok] / spread[ok] - 1) < 0.35)


@pytest.mark.parametrize("call, match", [
    (lambda: theory.class_contrast_basis(2.5), "n_classes"),
    (lambda: theory.effective_rates([1.0], 3.5, loss="cross_entropy"), "n_classes"),
    (lambda: theory.geometric_spectrum(0.5, 4.5), "d"),
    (lambda: theory.k_chi_init_estimate(0.5, 2.5, 4), "n_classes"),
    (lambda: theory.k_chi_init_estimate(0.5, 3, 4.2), "n_runs"),
    (lambda: theory.active_modes(True, 10, 1.0), "c "),
    (lambda: theory.mode_profiles([1.0, 2.0], 3, [[1.0]]), "factors"),
    (lambda: theory.expected_logit_diagnostics([1.0], 2.5, 0.1, 0.1, 1.0, [0]), "n_classes"),
    (lambda: theory.critical_ratio(LAM, 3, 1.0, [0, 2, 2], 4, chi=0.9, k_star=3), r"steps\[2\] = 2 repeats"),
    (lambda: theory.k_chi_init(LAM, 3, 1.0, [0, 8, 8], 4), r"steps\[2\] = 8 repeats"),
    # every function that takes a checkpoint schedule refuses a repeated checkpoint
    (lambda: theory.quadratic_spectrum(LAM[:2], np.ones((2, 2)), np.ones((1, 2, 2)), 1.0, [0, 5, 5]),
     r"steps\[2\] = 5 repeats steps\[1\]"),
    (lambda: theory.quadratic_spectrum_flow(LAM[:2], np.ones((2, 2)), np.ones((1, 2, 2)), [0.5, 0.5]),
     r"times\[1\] = 0.5 repeats"),
    (lambda: theory.sgd_typical_explained_stress(np.eye(2), np.ones((2, 2)), np.ones((1, 2, 2)), 0.5,
                                                 [0, 3, 3], 1), r"steps\[2\] = 3 repeats"),
    (lambda: theory.phase_map({"c": [0.5], "T": [10.5]}, dict(d=5, n_classes=3, n_runs=4, ratio=1)), "T"),
])
def test_other_public_functions_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("steps, match", [
    (np.array([0, 2**64 - 1], dtype=np.uint64), "exceeds"), ([0, 1e19], "exceeds"),
    ([True, False], "numeric"), (np.array([0, 1 + 1j]), "real"), (["a"], "numeric"),
])
def test_steps_never_wrap_or_lose_parts(steps, match):
    with pytest.raises(ValueError, match=match):
        theory.quadratic_spectrum(LAM[:2], np.ones((2, 2)), np.ones((1, 2, 2)), 1.0, steps)


def test_complex_weights_are_refused_not_truncated():
    with pytest.raises(ValueError, match="teacher must be real"):
        theory.quadratic_spectrum(LAM[:2], np.ones((2, 2)) * 1j, np.ones((1, 2, 2)), 1.0, [0, 1])
    with pytest.raises(ValueError, match="eigenvalues must be real"):
        theory.k_chi(np.array([1.0 + 1e-3j]))


@pytest.mark.parametrize("method", ["analytic", "monte-carlo", "mean-field"])
def test_every_expectation_method_honours_one_contract(method):
    """Each registered method gives a spectrum sorted by |μ| of at most R K values and a curve of
    the requested length with the method's name, non-negative errors and χ in [0, 1]; an
    unknown name lists the registered ones."""
    ev = theory.expected_spectrum(**ARGS, method=method, n_draws=4)
    assert ev.ndim == 1 and 0 < ev.size <= 3 * 3
    assert np.all(np.diff(np.abs(ev)) <= 1e-15 * np.abs(ev[0]))
    cur = theory.expected_explained_stress(**ARGS, method=method, n_draws=4, n_components=5)
    assert cur.method == method and cur.chi.shape == (5,) and cur.stderr.shape == (5,)
    assert np.all(cur.stderr >= 0) and np.all((cur.chi >= 0) & (cur.chi <= 1 + 1e-12))
    assert (cur.n_draws > 0) == (method == "monte-carlo")


def test_unknown_expectation_method_names_the_registered_ones():
    with pytest.raises(ValueError, match="'analytic', 'monte-carlo', 'mean-field'"):
        theory.expected_explained_stress(**ARGS, method="exact")
