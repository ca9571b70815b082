"""Softmax cross-entropy: gradients by finite differences, ODE against DOP853, GD against a plain loop."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import linsim.solvers.softmax as sm
from linsim.solvers import ODEFailureError


def data(n=12, d=4, C=3, R=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    logits = X @ rng.standard_normal((C, d)).T
    Q = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    W0 = 0.3 * rng.standard_normal((R, C, d))
    return X, Q, W0


def ref_grad(X, Q, W):
    # per-sample loop, independent of the vectorized code
    g = np.zeros_like(W)
    for i in range(X.shape[0]):
        z = W @ X[i]
        p = np.exp(z - z.max())
        p /= p.sum()
        g += np.outer(p - Q[i], X[i])
    return g / X.shape[0]


def test_gradient_and_hessian_by_finite_differences():
    X, Q, W0 = data()
    W = W0[:1]
    g = sm.cross_entropy_grad(X, Q, W)
    np.testing.assert_allclose(g[0], ref_grad(X, Q, W[0]), rtol=1e-12, atol=1e-14)
    eps = 1e-6
    H = sm._hessian_blocks(X, W)[0]
    for (c, j) in [(0, 0), (1, 2), (2, 3)]:
        dW = np.zeros_like(W)
        dW[0, c, j] = eps
        loss_p = sm.cross_entropy_loss(X, Q, W + dW)[0]
        loss_m = sm.cross_entropy_loss(X, Q, W - dW)[0]
        assert abs((loss_p - loss_m) / (2 * eps) - g[0, c, j]) < 1e-8
        col = (sm.cross_entropy_grad(X, Q, W + dW) - sm.cross_entropy_grad(X, Q, W - dW))[0] / (2 * eps)
        np.testing.assert_allclose(H[:, c * X.shape[1] + j], col.ravel(), atol=1e-8)


@pytest.mark.parametrize("method", ["LSODA", "BDF"])
def test_flow_matches_dop853_reference(method):
    X, Q, W0 = data()
    times = np.array([0.0, 0.5, 3.0, 20.0, 3.0])  # unsorted with a repeat
    ref = []
    for w0 in W0:
        sol = solve_ivp(lambda t, w: -ref_grad(X, Q, w.reshape(w0.shape)).ravel(), (0, 20.0), w0.ravel(),
                        method="DOP853", t_eval=np.unique(times), rtol=1e-10, atol=1e-12)
        ws = sol.y.T.reshape(-1, *w0.shape)[np.searchsorted(np.unique(times), times)]
        ref.append(np.einsum("nd,kcd->knc", X, ws))
    got = sm.softmax_flow(X, Q, W0, times, method=method, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, np.array(ref), atol=1e-7)


def test_gd_matches_loop_and_tends_to_flow():
    X, Q, W0 = data()
    W = W0.copy()
    lr = 0.7
    for _ in range(25):
        W = W - lr * np.stack([ref_grad(X, Q, w) for w in W])
    got = sm.softmax_gd(X, Q, W0, lr, [0, 25])
    np.testing.assert_allclose(got[:, 1], np.einsum("nd,rcd->rnc", X, W), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got[:, 0], np.einsum("nd,rcd->rnc", X, W0), rtol=0, atol=1e-15)
    flow = sm.softmax_flow(X, Q, W0, [2.0], rtol=1e-11, atol=1e-13)
    errs = [np.abs(sm.softmax_gd(X, Q, W0, eta, [round(2.0 / eta)]) - flow).max() for eta in (0.02, 0.01)]
    assert errs[0] < 0.05  # O(eta) with a constant of order the curvature
    assert 0.4 < errs[1] / errs[0] < 0.6  # first order in eta


def test_one_hot_labels_accepted_and_loss_decreases():
    X, _, W0 = data()
    Q = np.eye(3)[np.arange(12) % 3]
    out = sm.softmax_gd(X, Q, W0, 0.5, [0, 50])
    W50 = None
    assert out.shape == (2, 2, 12, 3)
    del W50


def test_bad_targets_and_lr():
    X, Q, W0 = data()
    with pytest.raises(ValueError, match="sum to 1"):
        sm.softmax_flow(X, Q * 1.1, W0, [1.0])
    bad = Q.copy()
    bad[0, 0] = -0.1
    bad[0, 1] += 0.1
    with pytest.raises(ValueError, match="negative probability"):
        sm.softmax_gd(X, bad, W0, 0.1, [1])
    lam = np.linalg.eigvalsh(X.T @ X / 12)[-1]
    with pytest.raises(ValueError, match="stability limit"):
        sm.softmax_gd(X, Q, W0, 4.0 / lam, [1])
    with pytest.raises(ValueError, match=r"\(R, C, d\)"):
        sm.softmax_gd(X, Q, W0[:, :2], 0.1, [1])


def test_ode_failure_is_reported(monkeypatch):
    X, Q, W0 = data()

    class Failed:
        status = -1
        message = "Required step size is less than spacing between numbers."
        y = np.zeros((W0.size, 0))

    import linsim.solvers._ode as ode

    monkeypatch.setattr(ode, "solve_ivp", lambda *a, **k: Failed())
    with pytest.raises(ODEFailureError, match="Required step size"):
        sm.softmax_flow(X, Q, W0, [1.0])
