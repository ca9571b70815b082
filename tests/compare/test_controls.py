"""Theory controls: recovered on linear ensembles whose controls are known, and the prediction there."""
import numpy as np
import pytest

from linsim.compare.controls import (fitted_decay, input_spectrum, logit_ratio, measured_k_chi, predicted_k_chi,
                                     theory_controls)
from linsim.ensemble import EnsembleConfig, simulate


def test_fitted_decay_on_exact_spectra_and_fit_range():
    c, n = fitted_decay(np.exp(-0.7 * np.arange(8)), n_fit=20)
    assert c == pytest.approx(0.7, abs=1e-12) and n == 8  # shorter spectrum: all of it
    lam = np.concatenate([np.exp(-0.2 * np.arange(30)), np.zeros(5)])
    assert fitted_decay(lam, n_fit=5) == (pytest.approx(0.2, abs=1e-12), 5)
    # only the leading n_fit modes count: a different tail does not change the fit
    tail = np.concatenate([np.exp(-0.2 * np.arange(20)), 1e-9 * np.ones(10)])
    assert fitted_decay(tail, n_fit=20)[0] == pytest.approx(0.2, abs=1e-12)


@pytest.mark.parametrize("c, rho, s0", [(1.0, 0.05, 0.005), (0.1, 0.02, 0.02)])
def test_controls_of_a_linear_ensemble_are_its_own_and_the_theory_predicts_its_k_chi(c, rho, s0):
    cfg = EnsembleConfig(slope=c, teacher_scale=rho, init_scale=s0, n_runs=6, steps=1000, n_samples=200,
                         dim=30, n_classes=5, n_checkpoints=12, seed=1)
    traj = simulate(cfg)
    lam = input_spectrum(traj.inputs)
    np.testing.assert_allclose(lam[:5], np.exp(-c * np.arange(5)), rtol=1e-10)  # exact-spectrum data
    row = theory_controls("lin", traj, traj.inputs)
    assert row.c_input == pytest.approx(c, abs=1e-9)
    assert row.ratio == pytest.approx(rho / s0, rel=0.25)  # converged outputs ~ teacher outputs
    assert row.steps == 1000 and np.isnan(row.c_ntk)
    # small-logit ensemble (the theory's regime): the theory's k_chi is the measured one
    assert row.final_logit_rms < 0.3
    assert row.predicted_k_input == row.measured_k
    assert set(row.as_dict()) >= {"measured_k", "predicted_k_input", "predicted_k_ntk"}


def test_logit_ratio_and_errors():
    z = np.zeros((2, 3, 4, 3))
    z[:, 0, :, 0] = 0.5
    z[:, -1, :, 1] = 1.5
    assert logit_ratio(z) == pytest.approx(3.0)
    z[:, 0] = 1.0  # constant logits: centred rms 0 at the start
    assert logit_ratio(z) == np.inf
    assert np.isnan(predicted_k_chi(np.nan, 1.0, [0, 1], 3, 2, 5))
    with pytest.raises(ValueError, match=r"\(R, K, n, C\)"):
        logit_ratio(np.zeros((3, 4)))


def test_measured_k_chi_counts_dimensions():
    traj = simulate(EnsembleConfig(slope=1.0, teacher_scale=0.05, init_scale=0.005, n_runs=3, steps=500,
                                   n_samples=50, dim=10, n_classes=3, n_checkpoints=8))
    k, curve = measured_k_chi(traj, 0.9)
    assert curve[k - 1] >= 0.9 and (k == 1 or curve[k - 2] < 0.9)


def test_ntk_prediction_uses_the_ntk_spectrum_over_its_own_modes():
    """c_ntk is fitted on Theta / n and the theory is evaluated on a geometric spectrum with as many
    modes as the NTK has (not as the inputs have); oracle: the theory package called directly."""
    import theory

    traj = simulate(EnsembleConfig(slope=1.0, teacher_scale=0.05, init_scale=0.005, n_runs=2, steps=200,
                                   n_samples=30, dim=6, n_classes=3, n_checkpoints=6, seed=2))
    spectrum = 3.0 * np.exp(-0.25 * np.arange(14))
    row = theory_controls("lin", traj, traj.inputs, spectrum, n_draws=8)
    assert row.c_ntk == pytest.approx(0.25, abs=1e-12) and row.c_ntk_n_fit == 14
    curve = np.asarray(theory.expected_explained_stress(theory.geometric_spectrum(0.25, 14), 3, row.ratio, 1.0, 1.0,
                                                        traj.times.astype(np.int64), 2, n_draws=8, seed=0))
    assert row.predicted_k_ntk == int(np.flatnonzero(curve >= 0.9 - 1e-12)[0]) + 1
