"""Kernel machines: linear kernel = linear model, closed form = explicit function-space GD, kernels by quadrature."""

import numpy as np
import pytest

from linsim.solvers import linear_flow, linear_gd
from linsim.solvers.kernel import KernelDynamics, gp_prior_outputs, kernel_flow, kernel_gd, kernel_matrix


def data(n=10, d=4, C=2, R=3, m=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, C))
    Z = rng.standard_normal((m, d))
    W0 = rng.standard_normal((R, C, d))
    return X, Y, Z, W0


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("n,d", [(10, 4), (3, 6)])
def test_linear_kernel_reproduces_linear_model(n, d):
    X, Y, Z, W0 = data(n, d)
    F0, f0 = X @ W0.transpose(0, 2, 1), Z @ W0.transpose(0, 2, 1)
    lr = 1.0 / np.linalg.eigvalsh(X.T @ X / n)[-1]
    steps = [0, 1, 5, 100]
    assert rel_err(kernel_gd(X, Y, F0, lr, steps), linear_gd(X, Y, W0, lr, steps)) < 1e-10
    assert rel_err(kernel_gd(X, Y, F0, lr, steps, inputs=Z, f0_test=f0),
                   linear_gd(X, Y, W0, lr, steps, inputs=Z)) < 1e-10
    times = [0.0, 0.5, 10.0]
    assert rel_err(kernel_flow(X, Y, F0, times, inputs=Z, f0_test=f0),
                   linear_flow(X, Y, W0, times, inputs=Z)) < 1e-10


@pytest.mark.parametrize("kind", ["rbf", "arccos", "ntk"])
def test_closed_form_equals_explicit_function_space_gd(kind):
    X, Y, Z, _ = data()
    n = X.shape[0]
    K = kernel_matrix(X, X, kind, 1.3) / n
    kz = kernel_matrix(Z, X, kind, 1.3) / n
    rng = np.random.default_rng(1)
    F0, f0 = rng.standard_normal((3, n, 2)), rng.standard_normal((3, Z.shape[0], 2))
    lr = 1.5 / np.linalg.eigvalsh(K)[-1]
    steps = [0, 1, 4, 60]
    F, f = F0.copy(), f0.copy()
    ref_F, ref_f = [], []
    for t in range(61):
        if t in steps:
            ref_F.append(F.copy())
            ref_f.append(f.copy())
        f = f - lr * kz @ (F - Y)
        F = F - lr * K @ (F - Y)
    dyn = KernelDynamics(X, Y, kind, 1.3)
    assert rel_err(dyn.train_outputs(F0, steps, lr), np.stack(ref_F, 1)) < 1e-10
    assert rel_err(dyn.test_outputs(F0, f0, Z, steps, lr), np.stack(ref_f, 1)) < 1e-10


@pytest.mark.parametrize("kind", ["arccos", "ntk"])
def test_relu_kernels_match_quadrature(kind):
    # 2-D inputs: w = r u(phi), E[r^2] = 2, so E[relu(w.x) relu(w.y)] = (2/2pi) int relu(u.x) relu(u.y) dphi
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    phi = (np.arange(200_000) + 0.5) * 2 * np.pi / 200_000
    u = np.stack([np.cos(phi), np.sin(phi)], 1)
    pa, pb = A @ u.T, B @ u.T
    ref = 2 * (np.maximum(pa, 0) @ np.maximum(pb, 0).T) / phi.size
    if kind == "ntk":
        ref += (A @ B.T) * (((pa > 0).astype(float) @ (pb > 0).astype(float).T) / phi.size)
    np.testing.assert_allclose(kernel_matrix(A, B, kind), ref, rtol=1e-4, atol=1e-6)


def test_rbf_values():
    A = np.array([[0.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(kernel_matrix(A, A, "rbf", 2.0)[0, 1], np.exp(-5.0 / 8.0), rtol=1e-14)


def test_gp_prior_linear_kernel_covariance():
    X = np.random.default_rng(0).standard_normal((3, 2))
    F = gp_prior_outputs(X, 20000, 1, 0.5, 7)[:, :, 0]
    emp = F.T @ F / F.shape[0]
    np.testing.assert_allclose(emp, 0.25 * X @ X.T, atol=0.05 * np.abs(X @ X.T).max())


def test_non_psd_kernel_refused():
    X, Y, _, _ = data()
    with pytest.raises(ValueError, match="not positive semi-definite"):
        KernelDynamics(X, Y, lambda A, B: -(A @ B.T))


def test_bad_kernel_inputs():
    X, Y, Z, W0 = data()
    F0 = X @ W0.transpose(0, 2, 1)
    with pytest.raises(ValueError, match="kernel kind"):
        KernelDynamics(X, Y, "poly")
    with pytest.raises(ValueError, match="bandwidth"):
        KernelDynamics(X, Y, "rbf", -1.0)
    with pytest.raises(ValueError, match=r"2/lambda_max\(K/n\)"):
        kernel_gd(X, Y, F0, 100.0, [1])
    with pytest.raises(ValueError, match=r"F0 must have shape"):
        kernel_gd(X, Y, F0[:, :-1], 0.01, [1])
    with pytest.raises(ValueError, match="f0_test"):
        kernel_gd(X, Y, F0, 0.01, [1], inputs=Z)



def test_kernel_registry_plugs_a_kernel_into_the_machinery():
    from linsim.solvers.kernel import KERNELS, register_kernel

    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    Y = rng.standard_normal((6, 2))
    register_kernel("scaled_linear", lambda A, B, bw: 2.0 * A @ B.T)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_kernel("scaled_linear", lambda A, B, bw: A @ B.T)
        # a kernel 2 x^T x' trained with lr is the linear kernel trained with 2 lr
        F0 = np.zeros((1, 6, 2))
        a = kernel_gd(X, Y, F0, 0.05, [3], kind="scaled_linear")
        b = kernel_gd(X, Y, F0, 0.1, [3], kind="linear")
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    finally:
        del KERNELS["scaled_linear"]
    register_kernel("bad_shape", lambda A, B, bw: np.zeros((1, 1)))
    try:
        with pytest.raises(ValueError, match="returned shape"):
            kernel_matrix(X, X, "bad_shape")
    finally:
        del KERNELS["bad_shape"]
    with pytest.raises(ValueError, match=r"one of \('linear', 'rbf', 'arccos', 'ntk'\)"):
        kernel_matrix(X, X, "poly")


def test_gp_prior_refuses_what_is_not_a_covariance():
    X = np.random.default_rng(1).standard_normal((5, 2))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        gp_prior_outputs(X, 2, 1, 1.0, 0, kind=lambda A, B: -(A @ B.T))
    with pytest.raises(ValueError, match="not symmetric"):
        gp_prior_outputs(X, 2, 1, 1.0, 0, kind=lambda A, B: A @ B.T + np.triu(np.ones((len(A), len(B))), 1))
    for kwargs, match in ((dict(n_runs=0), "n_runs"), (dict(C=1.5), "C must"), (dict(scale=-1.0), "scale")):
        args = dict(n_runs=2, C=1, scale=1.0)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            gp_prior_outputs(X, args["n_runs"], args["C"], args["scale"], 0)
    # a rank-deficient PSD kernel (linear kernel, p > d) is fine: its round-off negatives are zeros
    F = gp_prior_outputs(X, 3, 2, 0.5, 0)
    assert F.shape == (3, 5, 2) and np.all(np.isfinite(F))
