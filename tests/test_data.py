"""Synthetic data: exact spectra, population statistics, seeds, digits, errors."""

import numpy as np
import pytest

from linsim.data import linear_teacher, load_digits, make_inputs, one_hot, spectrum


def test_spectrum_formulas():
    np.testing.assert_allclose(spectrum(4, "geometric", 0.5, 2.0), 2.0 * np.exp(-0.5 * np.arange(4)), rtol=1e-15)
    np.testing.assert_allclose(spectrum(4, "power", 1.5, 1.0), [1, 2**-1.5, 3**-1.5, 4**-1.5], rtol=1e-15)
    np.testing.assert_array_equal(spectrum(3, "geometric", 0.0), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("n,d", [(30, 8), (8, 8), (500, 20)])
def test_exact_mode_has_exactly_the_spectrum(n, d):
    lam = spectrum(d, "geometric", 0.7, 1.3)
    X, _ = make_inputs(lam, n, "exact", seed=4)
    got = np.sort(np.linalg.eigvalsh(X.T @ X / n))[::-1]
    np.testing.assert_allclose(got, lam, rtol=0, atol=1e-13)


def test_exact_mode_with_zero_eigenvalues_and_n_lt_d():
    lam = np.array([2.0, 1.0, 0.0, 0.0])
    X, _ = make_inputs(lam, 3, "exact", seed=0)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(X.T @ X / 3))[::-1], lam, atol=1e-13)


def test_sampled_and_test_inputs_follow_the_population():
    lam = np.array([3.0, 1.0, 0.2])
    X, Xt = make_inputs(lam, 40, "exact", seed=1, n_test=40000)
    pop = X.T @ X / 40  # exact mode: equals the population covariance
    emp = Xt.T @ Xt / Xt.shape[0]
    # entrywise standard error of a sample covariance <= sqrt(2/N) * lam_max ~ 0.02
    np.testing.assert_allclose(emp, pop, atol=0.1)
    Xs, _ = make_inputs(lam, 40000, "sampled", seed=1)
    np.testing.assert_allclose(Xs.T @ Xs / 40000, pop, atol=0.1)


def test_seeds_reproduce_and_differ():
    lam = spectrum(5)
    a = make_inputs(lam, 10, "sampled", seed=3, n_test=2)
    b = make_inputs(lam, 10, "sampled", seed=3, n_test=2)
    c = make_inputs(lam, 10, "sampled", seed=4, n_test=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(linear_teacher(2, 3, 1.0, 5), linear_teacher(2, 3, 1.0, 5))
    np.testing.assert_allclose(linear_teacher(2, 3, 2.0, 5), 2 * linear_teacher(2, 3, 1.0, 5), rtol=1e-15)
    # n_test does not change the training inputs
    np.testing.assert_array_equal(make_inputs(lam, 10, "exact", 3, n_test=0)[0], make_inputs(lam, 10, "exact", 3, n_test=5)[0])


def test_teacher_scale_statistics():
    W = linear_teacher(50, 200, 0.5, 0)
    assert abs(W.std() - 0.5) < 0.5 * 4 / np.sqrt(2 * W.size)


def test_digits_and_one_hot():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    X3, y3 = load_digits(3)
    assert set(np.unique(y3)) == {0, 1, 2}
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: spectrum(3, "linear"), "kind"),
        (lambda: spectrum(3, "geometric", -0.1), "slope"),
        (lambda: spectrum(3, "power", 1.0, 0.0), "lambda_1"),
        (lambda: spectrum(0), "d must be"),
        (lambda: make_inputs([1.0, 1.0, 1.0], 2, "exact", 0), "n >= number of non-zero"),
        (lambda: make_inputs([1.0, -1.0], 5, "exact", 0), ">= 0"),
        (lambda: make_inputs([1.0, np.nan], 5, "exact", 0), "NaN"),
        (lambda: make_inputs([1.0], 5, "typo", 0), "mode"),
        (lambda: make_inputs([1.0], 5, "exact", None), "seed"),
        (lambda: linear_teacher(2, 3, -1.0, 0), "scale"),
        (lambda: one_hot(np.array([3]), 3), r"\[0, 3\)"),
        (lambda: load_digits(11), "n_classes"),
        (lambda: load_digits(3, scale="no"), "scale must be True or False"),
        (lambda: make_inputs(np.array([1.0, 0.5]) + 1j, 5, "exact", 0), "complex"),
        (lambda: spectrum(3, "geometric", np.complex128(0.5)), "slope is complex"),
        (lambda: linear_teacher(2, 3, True, 0), "boolean"),
        (lambda: make_inputs([1.0], 5, "exact", np.random.default_rng(0)), "not a Generator"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_a_seed_sequence_object_gives_the_same_numbers_every_time():
    ss = np.random.SeedSequence(42)
    a = make_inputs(spectrum(4), 6, "sampled", ss, n_test=2)
    b = make_inputs(spectrum(4), 6, "sampled", ss, n_test=2)  # SeedSequence.spawn would advance here
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(linear_teacher(2, 3, 1.0, ss), linear_teacher(2, 3, 1.0, ss))
    # and the int seed with the same entropy gives the same numbers as the SeedSequence
    np.testing.assert_array_equal(make_inputs(spectrum(4), 6, "sampled", 42)[0], a[0])


def test_spectrum_and_input_mode_registries():
    from linsim import data

    assert set(data.SPECTRUM_KINDS) == {"geometric", "power"} and set(data.INPUT_MODES) == {"exact", "sampled"}
    data.SPECTRUM_KINDS["flat"] = lambda k, slope, lam1: np.full(k.size, lam1)
    try:
        np.testing.assert_array_equal(spectrum(3, "flat", 0.0, 2.0), [2.0, 2.0, 2.0])
    finally:
        del data.SPECTRUM_KINDS["flat"]
    with pytest.raises(ValueError, match=r"kind must be one of \('geometric', 'power'\)"):
        spectrum(3, "flat")
