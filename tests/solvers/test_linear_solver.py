"""Closed-form linear GD / flow against explicit stepping, solve_ivp and least squares."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from linsim.solvers import LinearDynamics, linear_flow, linear_gd, linear_gd_explicit, linear_predictor


def problem(n=12, d=5, C=3, R=2, seed=0, realizable=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(1.5, 0.3, d)
    Y = X @ rng.standard_normal((C, d)).T if realizable else rng.standard_normal((n, C))
    W0 = rng.standard_normal((R, C, d))
    return X, Y, W0


def rel_err(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@given(
    n=st.integers(1, 9), d=st.integers(1, 6), C=st.integers(1, 3),
    frac=st.floats(0.05, 1.95), seed=st.integers(0, 2**16),
)
def test_gd_equals_explicit_loop(n, d, C, frac, seed):
    # covers n < d (rank deficient), eta*lambda > 1 (sign flips), non-realizable targets
    X, Y, W0 = problem(n, d, C, 2, seed)
    lam_max = np.linalg.eigvalsh(X.T @ X / n)[-1]
    steps = [0, 1, 2, 7, 50, 3]
    a = linear_gd(X, Y, W0, frac / lam_max, steps)
    b = linear_gd_explicit(X, Y, W0, frac / lam_max, steps)
    assert a.shape == (2, len(steps), n, C)
    assert rel_err(a, b) < 1e-10


def test_gd_eta_lambda_exactly_one():
    # Sigma = diag(1, 0.25) exactly: eta = 1 kills mode 1 in one step (a = 0 for t >= 1)
    X = np.sqrt(2.0) * np.array([[1.0, 0.0], [0.0, 0.5]])
    Y = np.array([[1.0, -2.0], [0.5, 3.0]])
    W0 = np.array([[[0.3, -0.7], [1.1, 0.2]]])
    steps = [0, 1, 2, 5]
    assert rel_err(linear_gd(X, Y, W0, 1.0, steps), linear_gd_explicit(X, Y, W0, 1.0, steps)) < 1e-12


def test_semigroup_at_huge_step_counts():
    # W_{t1+t2} from W0 equals W_{t2} started at W_{t1}; exercised at t ~ 1e6 where stepping is infeasible
    X, Y, W0 = problem(seed=3)
    dyn = LinearDynamics(X, Y)
    lr = 1.0 / dyn.lam_max_
    W1 = dyn.weights(W0, [700_000], lr)[:, 0]
    direct = dyn.weights(W0, [1_000_000], lr)[:, 0]
    composed = dyn.weights(W1, [300_000], lr)[:, 0]
    assert rel_err(composed, direct) < 1e-10


def test_flow_equals_dop853():
    X, Y, W0 = problem(seed=1)
    n, d = X.shape
    sigma, B = X.T @ X / n, Y.T @ X / n
    times = np.array([0.0, 0.3, 1.0, 4.0, 20.0])
    ref = []
    for w0 in W0:
        sol = solve_ivp(lambda t, w: -(w.reshape(w0.shape) @ sigma - B).ravel(), (0, times[-1]),
                        w0.ravel(), method="DOP853", t_eval=times, rtol=1e-10, atol=1e-12)
        ref.append(np.einsum("nd,kcd->knc", X, sol.y.T.reshape(len(times), *w0.shape)))
    # tolerance: 1e-8 relative, i.e. 100x the integrator's rtol
    assert rel_err(linear_flow(X, Y, W0, times), np.array(ref)) < 1e-8


def test_gd_tends_to_flow_first_order_in_lr():
    # (1 - eta l)^(t/eta) - e^{-l t} = -e^{-l t} eta l^2 t / 2 + O(eta^2): error O(eta), halves with eta
    X, Y, W0 = problem(seed=2)
    t_flow = 3.0
    flow = linear_flow(X, Y, W0, [t_flow])
    errs = []
    for eta in (1e-2, 5e-3, 2.5e-3):
        gd = linear_gd(X, Y, W0, eta, [int(round(t_flow / eta))])
        errs.append(np.abs(gd - flow).max())
    lam_max = np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1]
    scale = np.abs(linear_flow(X, Y, W0, [0.0]) - linear_flow(X, Y, W0, [1e9])).max()
    # stated O(eta) bound: |err| <= eta * lam_max * scale (max of l^2 t e^{-lt}/2 over t is l/(2e))
    assert errs[0] <= 1e-2 * lam_max * scale
    assert 0.45 < errs[1] / errs[0] < 0.55 and 0.45 < errs[2] / errs[1] < 0.55


@pytest.mark.parametrize("n,d", [(15, 4), (3, 6)])
def test_zero_and_infinite_time(n, d):
    # non-realizable targets; n < d leaves a null space whose W0 component must stay put
    X, Y, W0 = problem(n, d, 2, 3, seed=4)
    Z = np.random.default_rng(9).standard_normal((4, d))
    for lr in (None, 0.5 / np.linalg.eigvalsh(X.T @ X / n)[-1]):
        predict = linear_predictor(X, Y, lr=lr)
        t_inf = [1e12] if lr is None else [10**12]
        # t = 0: the initial outputs up to round-off of the basis change (1e-12 relative)
        assert rel_err(predict([0], W0, Z)[:, 0], Z @ W0.transpose(0, 2, 1)) < 1e-12
        w_ls = np.linalg.lstsq(X, Y, rcond=None)[0].T  # min-norm least squares (C, d)
        p_null = np.eye(d) - np.linalg.pinv(X) @ X
        w_inf = w_ls[None] + W0 @ p_null
        got = predict(t_inf, W0, Z)[:, 0]
        assert rel_err(got, Z @ w_inf.transpose(0, 2, 1)) < 1e-9
        if n < d:
            v = np.linalg.svd(X)[2][-1]  # a null direction of X
            Wt = predict.dynamics.weights(W0, t_inf if lr is None else [5], lr)
            np.testing.assert_allclose(Wt[:, 0] @ v, W0 @ v, atol=1e-12)


def test_held_out_inputs_match_explicit_weights():
    X, Y, W0 = problem(seed=5)
    Z = np.random.default_rng(1).standard_normal((7, X.shape[1]))
    lr = 0.9 / np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1]
    assert rel_err(linear_gd(X, Y, W0, lr, [0, 3, 40], inputs=Z),
                   linear_gd_explicit(X, Y, W0, lr, [0, 3, 40], inputs=Z)) < 1e-10


def test_unstable_lr_refused_with_limit_in_message():
    X, Y, W0 = problem(seed=6)
    lam_max = np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1]
    with pytest.raises(ValueError, match=f"{2 / lam_max:.6g}"):
        linear_gd(X, Y, W0, 2.0 / lam_max, [1])
    out = linear_gd(X, Y, W0, 2.5 / lam_max, [0, 30], allow_divergence=True)
    assert np.abs(out[:, 1]).max() > 10 * np.abs(out[:, 0]).max()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda X, Y, W0, s: (X.at_nan(), Y, W0, s), "NaN"),
        (lambda X, Y, W0, s: (X, Y[:-1], W0, s), "one row per sample"),
        (lambda X, Y, W0, s: (X, Y, W0[0], s), "3 dimensions"),
        (lambda X, Y, W0, s: (X, Y, W0[:, :, :-1], s), r"\(R, C, d\)"),
        (lambda X, Y, W0, s: (X, Y, W0, [-1, 2]), "non-negative"),
        (lambda X, Y, W0, s: (X, Y, W0, [1.5]), "integers"),
        (lambda X, Y, W0, s: (X, Y, W0, []), "at least one"),
    ],
)
def test_bad_inputs(mutate, match):
    class A(np.ndarray):
        def at_nan(self):
            out = np.array(self)
            out[1, 2] = np.nan
            return out

    X, Y, W0 = problem()
    X = X.view(A)
    args = mutate(X, Y, W0, [0, 1])
    with pytest.raises((ValueError, TypeError), match=match):
        linear_gd(np.asarray(args[0]), args[1], args[2], 0.1, args[3])


def test_bad_times_and_lr():
    X, Y, W0 = problem()
    with pytest.raises(ValueError, match="non-negative"):
        linear_flow(X, Y, W0, [-1.0])
    with pytest.raises(ValueError, match="positive"):
        linear_gd(X, Y, W0, -0.1, [1])
    with pytest.raises(ValueError, match="d=5 columns"):
        linear_gd(X, Y, W0, 0.1, [1], inputs=np.zeros((3, 4)))


def test_least_squares_weights_are_the_minimum_norm_solution_and_the_flow_limit():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((5, 8))  # n < d: Sigma is singular, the solution is not unique
    Y = rng.standard_normal((5, 3))
    dyn = LinearDynamics(X, Y)
    W = dyn.least_squares_weights()
    np.testing.assert_allclose(W.T, np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-10)
    # gradient flow from zero converges to it (the null-space part of W0 = 0 stays 0)
    far = dyn.weights(np.zeros((1, 3, 8)), [1e6])[0, 0]
    np.testing.assert_allclose(far, W, atol=1e-8)


def test_precomputed_eigenpairs_are_used_and_checked():
    from linsim.ensemble import input_eigenpairs

    rng = np.random.default_rng(12)
    X = rng.standard_normal((20, 5))
    Y = rng.standard_normal((20, 2))
    W0 = rng.standard_normal((2, 2, 5))
    lam, V = input_eigenpairs(X)
    V = V * np.where(np.arange(5) % 2 == 0, 1.0, -1.0)  # another valid sign choice
    dyn = LinearDynamics(X, Y, eigenpairs=(lam, V))
    np.testing.assert_array_equal(dyn.eigenvectors_, V)  # the basis given, not a new one
    ref = linear_gd(X, Y, W0, 0.3, [0, 5, 50])
    np.testing.assert_allclose(linear_predictor(X, Y, lr=0.3, eigenpairs=(lam, V))([0, 5, 50], W0), ref,
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="not the eigendecomposition"):
        LinearDynamics(X, Y, eigenpairs=(lam, np.roll(V, 1, axis=1)))
    with pytest.raises(ValueError, match="descending"):
        LinearDynamics(X, Y, eigenpairs=(lam[::-1], V[:, ::-1]))
    with pytest.raises(ValueError, match=r"shapes \(d,\) and \(d, d\)"):
        LinearDynamics(X, Y, eigenpairs=(lam[:3], V))
    with pytest.raises(TypeError, match="pair"):
        LinearDynamics(X, Y, eigenpairs=lam)
