"""Sloppiness metrics: hand-computed values, an independent matrix oracle, properties."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linsim import metrics


def test_explained_stress_hand_values():
    # ‖W‖² = 9 + 4 + 1 = 14: χ1 = 1 - sqrt(5/14), χ2 = 1 - sqrt(1/14), χ3 = 1.
    chi = metrics.explained_stress([3.0, -2.0, 1.0])
    np.testing.assert_allclose(chi, [1 - math.sqrt(5 / 14), 1 - math.sqrt(1 / 14), 1.0], rtol=0, atol=1e-15)
    assert metrics.k_chi([3.0, -2.0, 1.0], 0.7) == 2
    assert metrics.k_chi([3.0, -2.0, 1.0], 0.9) == 3
    assert metrics.stress_at([3.0, -2.0, 1.0], 1) == pytest.approx(1 - math.sqrt(5 / 14), abs=1e-15)


def test_explained_stress_matches_truncation_error_of_a_matrix():
    # Oracle independent of the formula: build W, truncate it explicitly, measure the error.
    rng = np.random.default_rng(3)
    a = rng.normal(size=(12, 12))
    w = a + a.T
    lam, vec = np.linalg.eigh(w)
    order = np.argsort(-np.abs(lam))
    lam, vec = lam[order], vec[:, order]
    fro = np.linalg.norm(w)
    chi = metrics.explained_stress(lam[:5], frobenius_norm=fro)
    for k in range(1, 6):
        wk = (vec[:, :k] * lam[:k]) @ vec[:, :k].T
        assert chi[k - 1] == pytest.approx(1 - np.linalg.norm(w - wk) / fro, abs=1e-12)


def test_k_chi_is_inf_when_partial_spectrum_does_not_reach():
    assert metrics.k_chi([1.0, 0.5], 0.9, frobenius_norm=10.0) == math.inf


def test_decay_rate_of_exact_geometric_spectrum():
    lam = 2.0 * np.exp(-0.7 * np.arange(8))
    lam[1::2] *= -1  # signs do not matter, magnitudes do
    rate, err, used = metrics.decay_rate(lam, k=8)
    assert rate == pytest.approx(0.7, abs=1e-12)
    assert err == pytest.approx(0.0, abs=1e-12)
    assert used == 8


def test_decay_rate_stops_at_zero_eigenvalues_and_reports_it():
    rate, _, used = metrics.decay_rate([4.0, 2.0, 1.0, 0.0, 0.0], k=5)
    assert used == 3 and rate == pytest.approx(math.log(2), abs=1e-12)
    with pytest.raises(ValueError, match="fewer than two"):
        metrics.decay_rate([1.0, 0.0, 0.0])


def test_negative_share_and_widths():
    n, share = metrics.negative_share([3.0, -2.0, 1.0])
    assert n == 1 and share == pytest.approx(4 / 14)
    x = np.array([[1.0, 0.0], [-1.0, 2.0], [0.0, -2.0]])
    rms, extent = metrics.widths(x)
    np.testing.assert_allclose(rms, [math.sqrt(2 / 3), math.sqrt(8 / 3)])
    np.testing.assert_allclose(extent, [2.0, 4.0])


def test_summarize_and_criterion():
    s = metrics.summarize([3.0, -2.0, 1.0], criterion=metrics.RibbonCriterion(chi=0.7, k_star=2))
    assert s["k_chi"] == 2 and s["is_ribbon"] is True and s["n_negative"] == 1
    s = metrics.summarize([3.0, -2.0, 1.0], criterion=metrics.RibbonCriterion(chi=0.9, k_star=2))
    assert s["is_ribbon"] is False
    assert math.isnan(metrics.summarize([1.0, 0.5])["stress_3"])


@pytest.mark.parametrize(
    "bad, match",
    [
        ([1.0, 2.0], "sorted"),
        ([], "non-empty"),
        ([1.0, np.nan], "NaN"),
        (np.ones((2, 2)), "1-D"),
    ],
)
def test_bad_spectra_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        metrics.explained_stress(bad)


def test_inconsistent_frobenius_norm_is_refused():
    with pytest.raises(ValueError, match="frobenius_norm"):
        metrics.explained_stress([3.0, 2.0], frobenius_norm=1.0)


@pytest.mark.parametrize("chi, k", [(0.0, 3), (1.0, 3), (0.9, 0), (0.9, 1.5), (True, 3), (0.9, True)])
def test_criterion_validation(chi, k):
    with pytest.raises(ValueError):
        metrics.RibbonCriterion(chi=chi, k_star=k)


def test_criterion_k_star_and_deprecated_k_max():
    crit = metrics.RibbonCriterion(0.8, 2)
    assert crit.k_star == 2 and crit(2.0) and not crit(3.0) and not crit(math.inf)
    with pytest.warns(DeprecationWarning, match="k_star"):
        assert crit.k_max == 2
    with pytest.raises(AttributeError):
        crit.k_max = 5  # read-only
    with pytest.warns(DeprecationWarning):
        old = metrics.RibbonCriterion(chi=0.8, k_max=2)
    assert old == crit
    with pytest.raises(ValueError, match="not both"):
        metrics.RibbonCriterion(k_star=2, k_max=2)
    assert metrics.RibbonCriterion() == metrics.RibbonCriterion(0.9, 3)


def test_one_implementation_shared_with_theory():
    import theory

    assert metrics.explained_stress is theory.explained_stress
    assert metrics.k_chi is theory.k_chi


def test_passing_the_squared_norm_cannot_go_unnoticed():
    """The old mix-up: ‖W‖_F² given where ‖W‖_F is expected (Bhattacharyya W is small, ‖W‖ < 1)."""
    rng = np.random.default_rng(0)
    a = 0.01 * rng.normal(size=(30, 30))
    w = a @ a.T
    lam = np.linalg.eigvalsh(w)
    lam = lam[np.argsort(-np.abs(lam))][:3]
    fro = np.linalg.norm(w)
    assert fro < 1
    good = metrics.explained_stress(lam, frobenius_norm=fro)
    assert 0 < good[-1] < 1
    with pytest.raises(ValueError, match="norm of the whole matrix, not its square"):
        metrics.explained_stress(lam, frobenius_norm=fro**2)
    with pytest.raises(TypeError):
        metrics.explained_stress(lam, frobenius_sq=fro**2)  # the old keyword is gone


@given(
    st.lists(st.floats(1e-6, 1e3), min_size=1, max_size=30),
    st.lists(st.booleans(), min_size=30, max_size=30),
    st.floats(1e-3, 1e3),
)
def test_stress_is_monotone_scale_free_and_ends_at_one(mags, signs, scale):
    lam = np.sort(np.array(mags))[::-1] * np.where(np.array(signs[: len(mags)]), 1.0, -1.0)
    chi = metrics.explained_stress(lam)
    assert np.all(np.diff(chi) >= -1e-15)
    assert chi[-1] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(metrics.explained_stress(scale * lam), chi, atol=1e-12)
