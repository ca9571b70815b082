"""Two-layer linear network: Saxe closed form vs its ODE, ODE vs small-step GD, decoupling checks."""

import numpy as np
import pytest

from linsim.data import make_inputs, random_orthogonal
from linsim.solvers.two_layer import (
    aligned_balanced_init,
    saxe_mode_strength,
    two_layer_closed_form,
    two_layer_flow,
    two_layer_gd,
)


def aligned_problem():
    X, _ = make_inputs(np.array([1.0, 0.6, 0.3, 0.1]), 16, "exact", 0)
    lam, V = np.linalg.eigh(X.T @ X / 16)
    V = V[:, ::-1]
    U = random_orthogonal(3, 1)
    W_star = U @ np.diag([2.0, 1.0, 0.5]) @ V[:, :3].T  # aligned with eigenvectors of Sigma
    return X, X @ W_star.T, W_star


def test_closed_form_equals_ode_and_reaches_least_squares():
    X, Y, W_star = aligned_problem()
    inits = [aligned_balanced_init(X, Y, 5, u0, seed=s) for u0, s in ((1e-3, 1), ([0.5, 1e-2, 2.0], 2))]
    W1 = np.stack([a for a, _ in inits])
    W2 = np.stack([b for _, b in inits])
    np.testing.assert_allclose(W1 @ W1.transpose(0, 2, 1), W2.transpose(0, 2, 1) @ W2, atol=1e-14)
    times = [0.0, 0.5, 2.0, 8.0, 30.0]
    exact = two_layer_closed_form(X, Y, W1, W2, times)
    ode = two_layer_flow(X, Y, W1, W2, times, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(exact, ode, atol=1e-9)
    np.testing.assert_allclose(exact[:, 0], X @ (W2 @ W1).transpose(0, 2, 1), atol=1e-14)
    late = two_layer_closed_form(X, Y, W1, W2, [1e4])[:, 0]
    np.testing.assert_allclose(late, np.broadcast_to(Y, late.shape), atol=1e-10)


def test_mode_strength_logistic_values():
    # u(t) at t = 0 is u0; the s -> 0 limit is u0 / (1 + 2 lam u0 t)
    np.testing.assert_allclose(saxe_mode_strength(0.1, 2.0, 0.5, 0.0), 0.1, rtol=1e-15)
    np.testing.assert_allclose(saxe_mode_strength(0.1, 0.0, 0.5, 3.0), 0.1 / (1 + 0.3), rtol=1e-14)
    np.testing.assert_allclose(saxe_mode_strength(0.1, 1e-300, 0.5, 3.0), 0.1 / (1 + 0.3), rtol=1e-12)


def test_ode_equals_small_step_gd():
    # generic (not decoupled) init; explicit GD approaches the flow at O(lr)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((10, 3))
    Y = rng.standard_normal((10, 2))
    W1, W2 = 0.3 * rng.standard_normal((2, 4, 3)), 0.3 * rng.standard_normal((2, 2, 4))
    t = 3.0
    flow = two_layer_flow(X, Y, W1, W2, [t], rtol=1e-12, atol=1e-14)
    errs = [np.abs(two_layer_gd(X, Y, W1, W2, eta, [round(t / eta)]) - flow).max() for eta in (4e-3, 2e-3)]
    assert errs[0] < 2e-2
    assert 0.4 < errs[1] / errs[0] < 0.6


def test_decoupling_conditions_enforced():
    X, Y, _ = aligned_problem()
    W1, W2 = aligned_balanced_init(X, Y, 4, 0.1)
    with pytest.raises(ValueError, match="not balanced"):
        two_layer_closed_form(X, Y, (2 * W1)[None], (W2 / 2)[None], [1.0])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not decoupled"):
        two_layer_closed_form(X, Y, rng.standard_normal((1, 4, 4)), rng.standard_normal((1, 3, 4)), [1.0])
    Y_generic = rng.standard_normal(Y.shape)
    with pytest.raises(ValueError, match="not aligned"):
        aligned_balanced_init(X, Y_generic, 4, 0.1)
    with pytest.raises(ValueError, match="smaller than the number of modes"):
        aligned_balanced_init(X, Y, 2, 0.1)
    with pytest.raises(ValueError, match="u0"):
        aligned_balanced_init(X, Y, 4, -0.1)


def test_gd_divergence_and_shape_errors():
    X, Y, _ = aligned_problem()
    W1, W2 = aligned_balanced_init(X, Y, 4, 1.0)
    with pytest.raises(ValueError, match="diverged"):
        two_layer_gd(X, Y, W1[None], W2[None], 50.0, [200])
    with pytest.raises(ValueError, match="share R and h"):
        two_layer_flow(X, Y, W1[None], W2[None, :, :3], [1.0])
