"""Symbolic checks (sympy) that the implemented closed forms solve their update / differential equations."""

import itertools

import sympy as sp

t = sp.symbols("t", integer=True, nonnegative=True)
tau = sp.symbols("tau", nonnegative=True)
eta, l1, l2, s, lam, u0, mu, k = sp.symbols("eta lambda1 lambda2 s lambda u0 mu k", positive=True)


def test_linear_gd_modes_solve_the_update_2x2_diagonal():
    # Sigma = diag(l1, l2), C = 2: W_t V = W0 V a^t + B V (1 - a^t)/lambda, a = 1 - eta*lambda (linear.py)
    w0 = sp.Matrix(2, 2, sp.symbols("w0_:4"))
    B = sp.Matrix(2, 2, sp.symbols("b_:4"))
    Sigma = sp.diag(l1, l2)

    def W(step):
        cols = []
        for j, lj in enumerate((l1, l2)):
            a = (1 - eta * lj) ** step
            cols.append(w0[:, j] * a + B[:, j] * (1 - a) / lj)
        return sp.Matrix.hstack(*cols)

    residual = W(t + 1) - (W(t) - eta * (W(t) * Sigma - B))
    assert sp.simplify(sp.expand(residual)) == sp.zeros(2, 2)
    assert sp.simplify(W(0) - w0) == sp.zeros(2, 2)


def test_linear_flow_modes_solve_the_ode():
    w0, b = sp.symbols("w0 b")
    w = w0 * sp.exp(-lam * tau) + b * (1 - sp.exp(-lam * tau)) / lam
    assert sp.simplify(sp.diff(w, tau) + (lam * w - b)) == 0
    assert sp.simplify(w.subs(tau, 0) - w0) == 0


def test_kernel_test_point_formula_solves_its_recursion():
    # n = 1: F_{t+1} = F_t - eta mu (F_t - y);  f_{t+1} = f_t - eta k (F_t - y)
    F0, f0, y = sp.symbols("F0 f0 y")
    a = 1 - eta * mu
    F = lambda step: y + a**step * (F0 - y)  # noqa: E731
    f = lambda step: f0 - k * (1 - a**step) / mu * (F0 - y)  # noqa: E731  (kernel.py, phi = (1-a)/mu)
    assert sp.simplify(sp.expand(f(t + 1) - (f(t) - eta * k * (F(t) - y)))) == 0
    assert sp.simplify(f(0) - f0) == 0


def test_saxe_mode_strength_solves_the_two_layer_ode():
    # u(t) = u0 / (e^{-2st} + lam u0 (1 - e^{-2st})/s) (two_layer.py); scalar net W2 = W1 = sqrt(u)
    e = sp.exp(-2 * s * tau)
    u = u0 / (e + lam * u0 * (1 - e) / s)
    assert sp.simplify(sp.diff(u, tau) - 2 * u * (s - lam * u)) == 0
    assert sp.simplify(u.subs(tau, 0) - u0) == 0
    # scalar two-layer flow: E = w2 w1 lam - s, dw1/dt = -w2 E, dw2/dt = -E w1 with w1 = w2 = sqrt(u)
    w = sp.sqrt(u)
    E = w * w * lam - s
    assert sp.simplify(sp.diff(w, tau) + w * E) == 0
    # s -> 0 limit used in code
    assert sp.simplify(sp.limit(u, s, 0) - u0 / (1 + 2 * lam * u0 * tau)) == 0


def test_finite_population_variance_factor():
    # batch mean of b = 2 distinct draws from n = 4 values: Var = kappa (mean h^2 - hbar^2), kappa = (n-b)/(b(n-1))
    h = sp.symbols("h:4")
    n, b = 4, 2
    batches = list(itertools.combinations(range(n), b))
    means = [sum(h[i] for i in B) / b for B in batches]
    var = sum(m**2 for m in means) / len(batches) - (sum(means) / len(batches)) ** 2
    hbar = sum(h) / n
    kappa = sp.Rational(n - b, b * (n - 1))
    assert sp.expand(var - kappa * (sum(x**2 for x in h) / n - hbar**2)) == 0
