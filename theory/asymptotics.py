"""Asymptotic formulas, bounds and phase boundaries for k_χ (derivations.md §7).

Geometric input spectrum ``λ_k = λ_1 e^{-c(k-1)}``, k = 1..d; GD with ``ηλ_1`` and T steps.
"""

from __future__ import annotations

import numpy as np

from ._checks import integer, nonnegative, positive
from .ensemble import expected_explained_stress, mean_field_blocks
from .schedule import checkpoint_steps

__all__ = [
    "geometric_spectrum",
    "active_modes",
    "teacher_decay_ratio",
    "teacher_decay_bound",
    "k_chi_teacher_bound",
    "k_chi_init_estimate",
    "critical_ratio",
    "phase_map",
    "phase_boundary",
]


def _c(c):
    return nonnegative(c, "c (spectral slope)")


def _chi(chi):
    chi = nonnegative(chi, "chi")
    if not 0 < chi < 1:
        raise ValueError(f"chi must be in (0, 1), got {chi}")
    return chi


def geometric_spectrum(c, d, lam1=1.0):
    """``λ_k = lam1 * exp(-c (k-1))``, k = 1..d, shape (d,)."""
    c = _c(c)
    return positive(lam1, "lam1") * np.exp(-c * np.arange(integer(d, "d", minimum=1)))


def active_modes(c, T, lr_lambda1, d=None):
    """Number of modes that have relaxed after T GD steps: ``k_T = 1 + ln(ηλ_1 T)/c``.

    Mode k has relaxed when ``ηλ_k T >= 1``. Clipped to [0, d] when d is given; ``inf`` for c = 0 without d.
    For gradient flow pass ``lr_lambda1 = λ_1`` and T = time.
    """
    c = _c(c)
    T = nonnegative(T, "T")
    x = positive(lr_lambda1, "lr_lambda1")
    if x >= 2:
        raise ValueError(f"lr_lambda1 = ηλ_1 = {x} is unstable (must be < 2)")
    if T * x < 1:
        k = 0.0
    elif c == 0:
        k = np.inf
    else:
        k = 1.0 + np.log(x * T) / c
    return float(k if d is None else min(k, float(d)))


def teacher_decay_ratio(rate_ratio):
    """Zolotarev/Cauchy decay ratio ``r = exp(-π² / ln(4κ))`` for rates spanning a factor κ >= 1."""
    kappa = float(rate_ratio)
    if not kappa >= 1:
        raise ValueError(f"rate_ratio must be >= 1, got {kappa}")
    return float(np.exp(-np.pi**2 / np.log(4.0 * kappa)))


def teacher_decay_bound(k, rate_ratio):
    """Bound ``μ_{k+1}/μ_1 <= 4 r^k`` on the teacher-part eigenvalues (Beckermann-Townsend).

    Exact statement: the teacher Gram of gradient flow observed uniformly in time is the Cauchy-like
    matrix ``√(λ_iλ_j)/(λ_i+λ_j)``; with rates in [a, b], ``κ = b/a``, its eigenvalues obey this bound
    (displacement rank 1, Zolotarev number of [a,b] vs [-b,-a]).
    """
    return np.minimum(1.0, 4.0 * teacher_decay_ratio(rate_ratio) ** np.asarray(k, dtype=float))


def k_chi_teacher_bound(c, T, lr_lambda1, chi=0.9, d=None):
    """Upper bound on k_χ in the teacher-dominated regime (σ0 → 0).

    Rigorous for the continuum gradient-flow matrix of derivations.md §7.2; for discrete GD with
    log-spaced, centred checkpoints it is empirical (never violated in 164 measured cells, and
    loose: 2-5 where the true value is 1-2).  The cap ``floor(k_T) + 1`` is a heuristic.

    ``k_χ <= min( ceil( ln(4 / ((1-χ) sqrt(1-r²))) / ln(1/r) ), floor(k_T) + 1 )`` with
    ``r = teacher_decay_ratio(κ)``, ``κ = max(1, min(ηλ_1 T, e^{c(d-1)}))`` the span of resolved rates.
    """
    chi = _chi(chi)
    c = _c(c)
    kT = active_modes(c, T, lr_lambda1, d)
    span = float(lr_lambda1) * float(T)
    if d is not None:
        span = min(span, float(np.exp(min(c * (integer(d, "d", minimum=1) - 1), 700.0))))
    r = teacher_decay_ratio(max(1.0, span))
    kb = int(np.ceil(np.log(4.0 / ((1 - chi) * np.sqrt(1 - r * r))) / np.log(1.0 / r)))
    return int(max(1, min(kb, np.floor(kT) + 1))) if np.isfinite(kT) else max(1, kb)


def k_chi_init_estimate(c, n_classes, n_runs, chi=0.9, d=None):
    """Estimate of k_χ in the initialization-dominated regime (ρ/σ0 → 0).

    The cloud of initial points has population eigenvalues λ_k, each with multiplicity C-1, and at most
    ``N = min(R-1, (C-1) d)`` dimensions. Geometric decay: the first L levels capture
    ``1 - e^{-2cL}`` of ``Σλ²``, so ``k_χ ≈ (C-1) ceil(ln(1/(1-χ))/c)``; isotropic (c = 0):
    ``k_χ ≈ ceil(N (1 - (1-χ)²))``. The smaller of the two is returned.
    """
    chi = _chi(chi)
    c = _c(c)
    C = integer(n_classes, "n_classes", minimum=2)
    R = integer(n_runs, "n_runs", minimum=1)
    N = R - 1 if d is None else min(R - 1, (C - 1) * integer(d, "d", minimum=1))
    iso = int(np.ceil(N * (1 - (1 - chi) ** 2)))
    if c == 0:
        return max(1, iso)
    return max(1, min(iso, (C - 1) * int(np.ceil(np.log(1.0 / (1.0 - chi)) / c))))


def critical_ratio(eigenvalues, n_classes, lr, steps, n_runs, *, chi=0.9, k_star=3, dynamics="gd",
                   loss="squared"):
    """Smallest ρ/σ0 satisfying a sufficient energy condition for a mean-field hyper-ribbon ``k_χ <= k*``.

    Being sufficient, not necessary, it lies slightly above the exact mean-field threshold
    (0-1.6% in the cells measured in derivations.md §7.3).

    Energy balance of the two mean-field blocks (derivations.md §7.3): with ``S = ΦΦᵀ``, teacher
    eigenvalues ``ν`` of ``J S J`` and tail fraction ``τ = Σ_{i>k*} ν_i² / Σ ν_i²``, the ribbon needs the
    initialization share of ``||W||_F²`` below ``β = ((1-χ)² - τ)/(1-τ)``, i.e.
    ``(1 + R (ρ/σ0)²)² >= (R-1)(1-β)||S||_F² / (β ||JSJ||_F²)``. Returns inf if ``τ >= (1-χ)²`` (the teacher
    part alone needs more than k* dimensions).
    """
    chi = _chi(chi)
    tb, ib = mean_field_blocks(eigenvalues, n_classes, 1.0, 1.0, lr, steps, n_runs, dynamics=dynamics,
                               loss=loss)
    R = int(n_runs)
    K = tb.shape[0]
    if int(k_star) < 1 or int(k_star) >= R * K:
        raise ValueError(f"k_star must be in [1, number of points - 1 = {R * K - 1}], got {k_star}")
    nu = np.sort(np.abs(np.linalg.eigvalsh(tb)))[::-1]
    tot = np.sum(nu**2)
    if tot <= 0:
        return float("inf")
    tau = np.sum(nu[int(k_star):] ** 2) / tot
    beta = ((1 - chi) ** 2 - tau) / (1 - tau)
    if beta <= 0:
        return float("inf")
    if R == 1:
        return 0.0
    S2 = np.sum((ib / (n_classes - 1)) ** 2)
    JSJ2 = tot / (R + 1.0) ** 2 / (n_classes - 1) ** 2  # tb was built with ρ = σ0 = 1
    x_min = (R - 1) * (1 - beta) * S2 / (beta * JSJ2)
    return float(np.sqrt(max(np.sqrt(x_min) - 1.0, 0.0) / R))


def _cell_params(params):
    p = dict(params)
    for key in ("c", "ratio", "T"):
        if key not in p:
            raise ValueError(f"missing parameter {key!r} (need c, ratio, T and d, n_classes, n_runs)")
    _c(p["c"])
    nonnegative(p["ratio"], "ratio (ρ/σ0)")
    nonnegative(p["T"], "T")
    return p


def _steps_for(T, n_checkpoints):
    return checkpoint_steps(integer(T, "T", minimum=0), integer(n_checkpoints, "n_checkpoints", minimum=1))


def phase_map(axes, fixed, *, chi=0.9, k_star=3, method="critical", n_checkpoints=10, lr_lambda1=1.0,
              n_draws=32, seed=0):
    """Predicted ribbon map (``k_χ <= k*``) on a grid of two of the parameters c, ratio (ρ/σ0), T.

    Parameters
    ----------
    axes : dict
        Exactly two of ``{'c': array, 'ratio': array, 'T': array}``.
    fixed : dict
        The remaining parameter plus ``d``, ``n_classes``, ``n_runs`` (and optional ``lam1``).
        Spectrum ``λ_k = lam1 e^{-c(k-1)}``; GD with ``η = lr_lambda1/λ_1``; checkpoints ``0`` and
        ``n_checkpoints`` log-spaced steps in [1, T] (:func:`theory.checkpoint_steps`, the
        simulator's schedule).
    method : {'critical', 'monte-carlo'}
        ``'critical'``: closed-form mean-field criterion ``ρ/σ0 >= critical_ratio``;
        ``'monte-carlo'``: ``k_χ`` of the expected explained-stress curve (:func:`expected_explained_stress`).

    Returns
    -------
    (len(axis0), len(axis1)) bool array, True where a hyper-ribbon is predicted.
    """
    names = list(axes)
    if len(names) != 2 or not set(names) <= {"c", "ratio", "T"}:
        raise ValueError(f"axes must name exactly two of 'c', 'ratio', 'T', got {names}")
    a0, a1 = (np.asarray(axes[n], dtype=float) for n in names)
    out = np.zeros((a0.size, a1.size), dtype=bool)
    for i, v0 in enumerate(a0):
        for j, v1 in enumerate(a1):
            p = _cell_params({**fixed, names[0]: v0, names[1]: v1})
            out[i, j] = _ribbon_cell(p, chi, k_star, method, n_checkpoints, lr_lambda1, n_draws, seed)
    return out


def _ribbon_cell(p, chi, k_star, method, n_checkpoints, lr_lambda1, n_draws, seed):
    lam1 = float(p.get("lam1", 1.0))
    lam = geometric_spectrum(p["c"], p["d"], lam1)
    steps = _steps_for(p["T"], n_checkpoints)
    lr = lr_lambda1 / lam1
    C = integer(p["n_classes"], "n_classes", minimum=2)
    R = integer(p["n_runs"], "n_runs", minimum=1)
    if method == "critical":
        return bool(p["ratio"] >= critical_ratio(lam, C, lr, steps, R, chi=chi, k_star=k_star))
    if method == "monte-carlo":
        if int(k_star) >= R * steps.size:
            raise ValueError(f"k_star={k_star} must be < number of points {R * steps.size}")
        curve = expected_explained_stress(lam, C, p["ratio"], 1.0, lr, steps, R, n_draws=n_draws,
                                          seed=seed)
        return bool(curve.chi[int(k_star) - 1] >= chi) if curve.chi.size >= int(k_star) else False
    raise ValueError(f"method must be 'critical' or 'monte-carlo', got {method!r}")


def phase_boundary(axis, values, fixed, *, chi=0.9, k_star=3, n_checkpoints=10, lr_lambda1=1.0):
    """Critical ρ/σ0 along one axis (``'c'`` or ``'T'``): the boundary curve in the (c, ρ/σ0) or
    (T, ρ/σ0) plane; for the (c, T) plane evaluate it on a T grid and take the level set
    ``critical_ratio = ratio``. Returns an array like ``values`` (inf where no ratio gives a ribbon)."""
    if axis not in ("c", "T"):
        raise ValueError(f"axis must be 'c' or 'T', got {axis!r}")
    out = []
    for v in np.asarray(values, dtype=float):
        p = {**fixed, axis: v}
        lam1 = float(p.get("lam1", 1.0))
        lam = geometric_spectrum(_c(p["c"]), int(p["d"]), lam1)
        steps = _steps_for(p["T"], n_checkpoints)
        out.append(critical_ratio(lam, int(p["n_classes"]), lr_lambda1 / lam1, steps, int(p["n_runs"]),
                                  chi=chi, k_star=k_star))
    return np.array(out)
