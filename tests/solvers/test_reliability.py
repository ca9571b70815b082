"""Bad inputs that used to pass silently: each now gets a clear error (issue 11, reliability)."""

from dataclasses import replace

import numpy as np
import pytest

from linsim.data import linear_teacher, make_inputs, spectrum
from linsim.ensemble import EnsembleConfig, simulate
from linsim.solvers import linear_gd
from linsim.solvers._checks import MAX_STEPS, check_steps
from linsim.solvers.kernel import gp_prior_outputs, kernel_matrix
from linsim.solvers.sgd import sgd_moments
from linsim.solvers.softmax import softmax_flow, softmax_gd
from linsim.solvers.two_layer import saxe_mode_strength, two_layer_flow


def _data(n=6, d=3, C=2, R=2):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    return X, X @ rng.standard_normal((d, C)), 0.1 * rng.standard_normal((R, C, d))


@pytest.mark.parametrize(
    "steps, match",
    [
        (np.array([0, 2**64 - 1], dtype=np.uint64), r"steps\[1\] = 18446744073709551615 exceeds"),
        (np.array([1e19]), r"steps\[0\] = 1e\+19 exceeds"),
        ([3, 10**20], r"steps\[1\] = 100000000000000000000 is outside"),
        ([MAX_STEPS + 1], "exceeds the largest supported"),
        ([0, -1], r"non-negative; steps\[1\] = -1"),
        ([1.5], r"integers; steps\[0\] = 1.5"),
        ([np.nan], "integers"),
        ([True, False], "booleans"),
        ([1 + 0j], "complex"),
    ],
)
def test_bad_step_counts_are_refused_not_wrapped(steps, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_steps(steps)
    X, Y, W0 = _data()
    with pytest.raises((ValueError, TypeError), match=match):
        linear_gd(X, Y, W0, 0.1, steps)


def test_largest_step_count_still_works_exactly():
    assert check_steps(np.array([MAX_STEPS], dtype=np.uint64)).tolist() == [MAX_STEPS]
    X, Y, W0 = _data()
    out = linear_gd(X, Y, W0, 0.1, np.array([MAX_STEPS], dtype=np.uint64))
    ls = np.linalg.lstsq(X, Y, rcond=None)[0]  # converged: the least-squares fit
    np.testing.assert_allclose(out[0, 0], X @ ls, atol=1e-10)


def test_config_refuses_overflowing_steps():
    with pytest.raises(ValueError, match=r"2\*\*53"):
        EnsembleConfig(steps=10**19).validate()
    with pytest.raises(ValueError, match=r"2\*\*53"):
        EnsembleConfig(steps=np.uint64(2**64 - 1)).validate()


@pytest.mark.parametrize(
    "call",
    [
        lambda X, Y, W0: linear_gd(X.astype(complex), Y, W0, 0.1, [1]),
        lambda X, Y, W0: linear_gd(X, Y, W0 + 0j, 0.1, [1]),
        lambda X, Y, W0: linear_gd(X, Y, W0, 0.1, [1], inputs=X + 1j),
        lambda X, Y, W0: softmax_gd(X, np.full((6, 2), 0.5 + 0j), W0, 0.1, [1]),
        lambda X, Y, W0: softmax_flow(X, np.full((6, 2), 0.5), W0, [1.0 + 0j]),
        lambda X, Y, W0: kernel_matrix(X + 0j, X),
        lambda X, Y, W0: two_layer_flow(X, Y, np.ones((2, 2, 3)) + 0j, np.ones((2, 2, 2)), [1.0]),
        lambda X, Y, W0: make_inputs(np.array([1.0, 0.5]) + 0j, 4, "exact", 0),
        lambda X, Y, W0: spectrum(3, "geometric", np.complex128(0.5)),
        lambda X, Y, W0: linear_teacher(2, 3, np.complex128(1.0), 0),
    ],
)
def test_complex_inputs_are_refused(call):
    X, Y, W0 = _data()
    with pytest.raises(TypeError, match="complex"):
        call(X, Y, W0)


def test_sgd_moments_refuses_a_non_covariance():
    X, Y, _ = _data()
    C, d = 2, 3
    mean0 = np.zeros((C, d))
    good = 0.01 * np.eye(C * d).reshape(C, d, C, d)
    sgd_moments(X, Y, mean0, good, 0.05, 2, [0, 1])  # a valid covariance works
    with pytest.raises(ValueError, match="smallest eigenvalue .* < 0"):
        sgd_moments(X, Y, mean0, -good, 0.05, 2, [1])
    asym = np.zeros((C * d, C * d))
    asym[0, 1] = 0.01
    with pytest.raises(ValueError, match=r"not symmetric: entry \(0, 1\)"):
        sgd_moments(X, Y, mean0, asym.reshape(C, d, C, d), 0.05, 2, [1])


def test_saxe_mode_strength_refuses_what_has_a_pole():
    # u0 < 0: the denominator e^{-2st} + lam u0 (1 - e^{-2st}) / s vanishes at t = ln(11)/2
    with pytest.raises(ValueError, match="u0 must be >= 0"):
        saxe_mode_strength(-0.1, 1.0, 1.0, np.linspace(0, 3, 7))
    for name, args in (("s", (0.1, -1.0, 1.0, 1.0)), ("lam", (0.1, 1.0, -1.0, 1.0)), ("t", (0.1, 1.0, 1.0, -1.0))):
        with pytest.raises(ValueError, match=f"^{name} must be >= 0"):
            saxe_mode_strength(*args)
    # the logistic solution reaches the carrying capacity s / lam and stays bounded
    u = saxe_mode_strength(1e-3, 2.0, 0.5, np.array([0.0, 1.0, 50.0]))
    assert u[0] == 1e-3 and abs(u[-1] - 4.0) < 1e-12 and np.all(np.diff(u) > 0)


def test_gp_prior_needs_an_explicit_seed_like_the_data_module():
    X = np.eye(3)
    with pytest.raises(ValueError, match="seed is required"):
        gp_prior_outputs(X, 2, 2, 1.0, None)
    with pytest.raises(ValueError, match="seed is required"):
        make_inputs([1.0], 3, "exact", None)
    with pytest.raises(TypeError, match="not a Generator"):
        gp_prior_outputs(X, 2, 2, 1.0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="not a Generator"):
        make_inputs([1.0], 3, "exact", np.random.default_rng(0))
    a = gp_prior_outputs(X, 2, 2, 1.0, np.random.SeedSequence(5))
    np.testing.assert_array_equal(a, gp_prior_outputs(X, 2, 2, 1.0, np.random.SeedSequence(5)))


def test_nonlinear_kernel_ensemble_is_deterministic_and_stores_its_initial_function():
    cfg = EnsembleConfig(model="kernel", kernel="rbf", n_samples=10, dim=3, n_classes=2, n_runs=2,
                         steps=5, n_checkpoints=2, n_test=4)
    a, b = simulate(cfg), simulate(cfg)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    F = a.arrays["init_outputs"]
    assert F.shape == (2, 14, 2) and "init" not in a.arrays
    np.testing.assert_allclose(a.outputs[:, 0], F[:, :10], rtol=0, atol=1e-14)
    np.testing.assert_allclose(simulate(cfg, "test").outputs[:, 0], F[:, 10:], rtol=0, atol=1e-14)
    assert not np.array_equal(simulate(replace(cfg, seed=1)).outputs, a.outputs)


@pytest.mark.parametrize("lr, exc", [("0.1", TypeError), (True, TypeError), (0.1 + 0j, TypeError),
                                     (np.nan, ValueError), (0.0, ValueError), (-1.0, ValueError)])
def test_learning_rate_must_be_a_positive_real_number(lr, exc):
    X, Y, W0 = _data()
    with pytest.raises(exc, match="lr"):
        linear_gd(X, Y, W0, lr, [1])


def test_flow_times_and_sgd_seeds_are_not_coerced():
    from linsim.solvers import linear_flow
    from linsim.solvers.sgd import sgd_simulate

    X, Y, W0 = _data()
    with pytest.raises(TypeError, match="booleans"):
        linear_flow(X, Y, W0, [True, False])
    with pytest.raises(TypeError, match="not a Generator"):
        sgd_simulate(X, Y, W0, 0.05, 2, [1], np.random.default_rng(0))
    with pytest.raises(ValueError, match="seed is required"):
        sgd_simulate(X, Y, W0, 0.05, 2, [1], None)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.lists(st.integers(0, MAX_STEPS), min_size=1, max_size=6),
       st.sampled_from([np.int64, np.uint64, np.float64, object]))
def test_check_steps_is_exact_for_every_representable_count(values, dtype):
    arr = np.array(values, dtype=dtype)
    if dtype is np.float64:  # only integers that float64 holds exactly reach here unchanged
        values = [int(v) for v in arr]
    out = check_steps(arr)
    assert out.dtype == np.int64 and out.tolist() == values


@given(st.integers(MAX_STEPS + 1, 2**70))
def test_check_steps_refuses_every_count_beyond_the_limit(value):
    with pytest.raises(ValueError, match="steps"):
        check_steps([value])
    if value < 2**64:
        with pytest.raises(ValueError, match="exceeds"):
            check_steps(np.array([value], dtype=np.uint64))


def test_progress_bars_show_the_steps_and_change_nothing(capsys):
    cfg = EnsembleConfig(model="softmax", n_samples=10, dim=3, n_classes=2, n_runs=2, steps=600, n_checkpoints=3)
    quiet = simulate(cfg)
    assert capsys.readouterr().err == ""
    loud = simulate(cfg, progress=True)
    err = capsys.readouterr().err
    assert "softmax GD" in err and "600/600" in err
    np.testing.assert_array_equal(quiet.outputs, loud.outputs)
    flow = replace(cfg, optimizer="flow", steps=20)
    quiet = simulate(flow)
    capsys.readouterr()
    loud = simulate(flow, progress=True)
    err = capsys.readouterr().err
    assert "softmax flow (runs 0-1 of 2)" in err and "t = 20/20" in err
    np.testing.assert_array_equal(quiet.outputs, loud.outputs)
