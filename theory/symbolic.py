"""Sympy checks of the derivation steps in derivations.md (each returns True or raises AssertionError)."""

from __future__ import annotations

import sympy as sp

__all__ = [
    "check_bhattacharyya_expansion",
    "check_uniform_hessian",
    "check_gd_mode_solution",
    "check_mode_covariances",
    "check_minibatch_moment",
    "check_cross_entropy_rate",
    "check_limits",
    "run_all",
]


def _logsumexp(z):
    return sp.log(sum(sp.exp(zi) for zi in z))


def check_bhattacharyya_expansion(C: int = 3) -> bool:
    """-log Σ_c sqrt(p_c q_c) = ½A(z) + ½A(z') - A(m), A = log Σ exp; its series in δ = z - z' about the
    midpoint m is (1/8) δᵀ H(m) δ + O(δ⁴) with H = diag p - ppᵀ (no odd terms)."""
    m = sp.symbols(f"m0:{C}", real=True)
    v = sp.symbols(f"v0:{C}", real=True)
    e = sp.symbols("epsilon", positive=True)
    z = [mi + e * vi / 2 for mi, vi in zip(m, v)]
    zp = [mi - e * vi / 2 for mi, vi in zip(m, v)]
    p = [sp.exp(zi) / sum(sp.exp(zj) for zj in z) for zi in z]
    pp = [sp.exp(zi) / sum(sp.exp(zj) for zj in zp) for zi in zp]
    bd = -sp.log(sum(sp.sqrt(a * b) for a, b in zip(p, pp)))
    alt = _logsumexp(z) / 2 + _logsumexp(zp) / 2 - _logsumexp(m)
    # identity: -log BC = ½A(z)+½A(z')-A(m)  (checked numerically at a rational point, exact arithmetic)
    pt = {**{mi: sp.Rational(i + 1, 7) for i, mi in enumerate(m)},
          **{vi: sp.Rational(2 * i - 1, 5) for i, vi in enumerate(v)}, e: sp.Rational(1, 3)}
    assert abs(sp.N(bd.subs(pt) - alt.subs(pt), 30)) < 1e-25
    g = alt
    d1, d2, d3 = (sp.diff(g, e, k).subs(e, 0) for k in (1, 2, 3))
    pm = [sp.exp(mi) / sum(sp.exp(mj) for mj in m) for mi in m]
    H = sp.Matrix(C, C, lambda i, j: (pm[i] if i == j else 0) - pm[i] * pm[j])
    vv = sp.Matrix(v)
    quad = (vv.T * H * vv)[0] / 8
    assert sp.simplify(d1) == 0
    assert sp.simplify(d3) == 0
    assert sp.simplify(d2 / 2 - quad) == 0
    return True


def check_uniform_hessian(C: int = 4) -> bool:
    """At uniform p = 1/C: diag p - ppᵀ = P⊥/C, so (1/8)δᵀHδ = (1/8C)||P⊥δ||²."""
    H = sp.Matrix(C, C, lambda i, j: (sp.Rational(1, C) if i == j else 0) - sp.Rational(1, C * C))
    P = sp.eye(C) - sp.ones(C, C) / C
    assert sp.simplify(H - P / C) == sp.zeros(C, C)
    assert sp.simplify(P * P - P) == sp.zeros(C, C)
    return True


def check_gd_mode_solution() -> bool:
    """Per mode, GD w_{t+1} = w_t - η λ (w_t - w*) is solved by w* + (w0 - w*)(1-ηλ)^t; flow by e^{-λt};
    (1 - ηλ)^{t/η} -> e^{-λt} as η -> 0."""
    eta, lam, w0, ws, t = sp.symbols("eta lambda w0 wstar t", positive=True)
    w = lambda s: ws + (w0 - ws) * (1 - eta * lam) ** s  # noqa: E731
    assert sp.simplify(w(t + 1) - (w(t) - eta * lam * (w(t) - ws))) == 0
    wf = ws + (w0 - ws) * sp.exp(-lam * t)
    assert sp.simplify(sp.diff(wf, t) + lam * (wf - ws)) == 0
    assert sp.simplify(sp.limit((1 - eta * lam) ** (t / eta), eta, 0) - sp.exp(-lam * t)) == 0
    return True


def check_mode_covariances() -> bool:
    """E over W* ~ N(0,ρ²), W0 ~ N(0,σ0²) of the centred per-mode product: for residual
    e_r = u_r - v (u_r init, v teacher), E[e_r e_r'] = ρ² + σ0² δ_rr'; the teacher-form
    (1-a^t)(1-a^t') and the residual-form a^t a^t' differ by f(t)+f(t')+const, which J_K kills."""
    rho, s0 = sp.symbols("rho sigma0", positive=True)
    u1, u2, v = sp.symbols("u1 u2 v", real=True)
    # Gaussian moments: E[u²]=σ0², E[v²]=ρ², independent, zero mean
    def E(expr):
        expr = sp.expand(expr)
        poly = sp.Poly(expr, u1, u2, v)
        mom = {0: 1, 1: 0, 2: None}
        total = 0
        for (a, b, c), coef in poly.terms():
            if a > 2 or b > 2 or c > 2:
                raise AssertionError("only second moments needed")
            fa = 1 if a == 0 else (0 if a == 1 else s0**2)
            fb = 1 if b == 0 else (0 if b == 1 else s0**2)
            fc = 1 if c == 0 else (0 if c == 1 else rho**2)
            total += coef * fa * fb * fc
        del mom
        return sp.simplify(total)
    assert E((u1 - v) * (u1 - v)) == rho**2 + s0**2
    assert E((u1 - v) * (u2 - v)) == rho**2
    a, t1, t2 = sp.symbols("a t1 t2", positive=True)
    diff = (1 - a**t1) * (1 - a**t2) - a**t1 * a**t2
    f = lambda t: -a**t  # noqa: E731
    assert sp.simplify(diff - (f(t1) + f(t2) + 1)) == 0
    return True


def check_minibatch_moment() -> bool:
    """E[Σ_B M Σ_B] for b of n without replacement, scalar case with n = 3, b = 2 enumerated exactly:
    equals ΣMΣ + (n-b)/(b(n-1)) (Γ(M) - ΣMΣ)."""
    x = sp.symbols("x0:3", real=True)
    Mv = sp.symbols("M", real=True)
    n, b = 3, 2
    batches = [(0, 1), (0, 2), (1, 2)]
    lhs = sum((sum(x[i] ** 2 for i in B) / b) ** 2 * Mv for B in batches) / len(batches)
    Sig = sum(xi**2 for xi in x) / n
    Gam = sum(xi**4 for xi in x) * Mv / n
    rhs = Sig * Mv * Sig + sp.Rational(n - b, b * (n - 1)) * (Gam - Sig * Mv * Sig)
    assert sp.simplify(lhs - rhs) == 0
    return True


def check_cross_entropy_rate(C: int = 3) -> bool:
    """Jacobian of softmax at z = 0 is P⊥/C: the CE gradient softmax(z) - softmax(z*) is
    (1/C) P⊥ (z - z*) + O(z²), so every mode rate λ_k becomes λ_k / C."""
    z = sp.symbols(f"z0:{C}", real=True)
    p = [sp.exp(zi) / sum(sp.exp(zj) for zj in z) for zi in z]
    Jm = sp.Matrix(C, C, lambda i, j: sp.diff(p[i], z[j])).subs({zi: 0 for zi in z})
    P = sp.eye(C) - sp.ones(C, C) / C
    assert sp.simplify(Jm - P / C) == sp.zeros(C, C)
    return True


def check_limits() -> bool:
    """Limits of the per-mode factor: T -> 0 gives 1 (no motion), T -> ∞ gives 0 (converged) for
    0 < ηλ < 2; active-mode count k_T = 1 + ln(ηλ1 T)/c solves ηλ_{k_T} T = 1 for λ_k = λ1 e^{-c(k-1)}."""
    t = sp.symbols("t", nonnegative=True)
    x = sp.symbols("x", positive=True)  # x = ηλ in (0, 2)
    fac = sp.Abs(1 - x) ** t
    assert fac.subs(t, 0) == 1
    assert sp.limit((sp.Rational(1, 2)) ** t, t, sp.oo) == 0
    c, lam1, eta, T = sp.symbols("c lambda1 eta T", positive=True)
    k = 1 + sp.log(eta * lam1 * T) / c
    assert sp.simplify(eta * lam1 * sp.exp(-c * (k - 1)) * T - 1) == 0
    return True


def run_all() -> bool:
    """Run every check (a few seconds)."""
    for f in (check_bhattacharyya_expansion, check_uniform_hessian, check_gd_mode_solution,
              check_mode_covariances, check_minibatch_moment, check_cross_entropy_rate, check_limits):
        f()
    return True
