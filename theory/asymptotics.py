"""Asymptotic formulas, bounds and phase boundaries for k_χ (derivations.md §7).

Geometric input spectrum ``λ_k = λ_1 e^{-c(k-1)}``, k = 1..d; GD with ``ηλ_1`` and T steps.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import optimize, special

from ._checks import integer, nonnegative, positive
from .ensemble import (_analytic_spectrum, _init_cloud_spectrum, _mp_typical, _setup,
                       expected_explained_stress, mode_profiles)
from .schedule import checkpoint_steps
from .stress import explained_stress, k_chi

__all__ = [
    "geometric_spectrum",
    "active_modes",
    "teacher_decay_ratio",
    "teacher_decay_bound",
    "k_chi_teacher_bound",
    "k_chi_init_estimate",
    "k_chi_teacher",
    "k_chi_init",
    "energy_terms",
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
    """``λ_k = lam1 * exp(-c (k-1))``, k = 1..d, shape (d,).

    Examples
    --------
    >>> geometric_spectrum(1.0, 3)
    array([1.        , 0.36787944, 0.13533528])
    """
    c = _c(c)
    return positive(lam1, "lam1") * np.exp(-c * np.arange(integer(d, "d", minimum=1)))


def active_modes(c, T, lr_lambda1, d=None):
    """Number of modes that have relaxed after T GD steps: ``k_T = 1 + ln(ηλ_1 T)/c``.

    Mode k has relaxed when ``ηλ_k T >= 1``. Clipped to [0, d] when d is given; ``inf`` for c = 0 without d.
    For gradient flow pass ``lr_lambda1 = λ_1`` and T = time.

    Examples
    --------
    >>> active_modes(0.5, 1000, 1.0, d=30)
    14.815510557964274
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
    """Zolotarev/Cauchy decay ratio ``r = exp(-π² / ln(4κ))`` for rates spanning a factor κ >= 1.

    Examples
    --------
    >>> round(teacher_decay_ratio(100.0), 4)
    0.1926
    """
    kappa = float(rate_ratio)
    if not kappa >= 1:
        raise ValueError(f"rate_ratio must be >= 1, got {kappa}")
    return float(np.exp(-np.pi**2 / np.log(4.0 * kappa)))


def teacher_decay_bound(k, rate_ratio):
    """Bound ``μ_{k+1}/μ_1 <= 4 r^k`` on the teacher-part eigenvalues (Beckermann-Townsend).

    Exact statement: the teacher Gram of gradient flow observed uniformly in time is the Cauchy-like
    matrix ``√(λ_iλ_j)/(λ_i+λ_j)``; with rates in [a, b], ``κ = b/a``, its eigenvalues obey this bound
    (displacement rank 1, Zolotarev number of [a,b] vs [-b,-a]).

    Examples
    --------
    >>> teacher_decay_bound([0, 1, 2], 100.0).round(3)
    array([1.   , 0.77 , 0.148])
    """
    return np.minimum(1.0, 4.0 * teacher_decay_ratio(rate_ratio) ** np.asarray(k, dtype=float))


def k_chi_teacher_bound(c, T, lr_lambda1, chi=0.9, d=None):
    """Upper bound on k_χ in the teacher-dominated regime (σ0 → 0), from (c, T) alone.

    It grows like ``ln T`` on log-spaced checkpoints (an artefact of its uniform-time premise);
    for the value on the checkpoints actually used prefer :func:`k_chi_teacher`.

    Rigorous for the continuum gradient-flow matrix of derivations.md §7.2; for discrete GD with
    log-spaced, centred checkpoints it is empirical (never violated in 164 measured cells, and
    loose: 2-5 where the true value is 1-2).  The cap ``floor(k_T) + 1`` is a heuristic.

    ``k_χ <= min( ceil( ln(4 / ((1-χ) sqrt(1-r²))) / ln(1/r) ), floor(k_T) + 1 )`` with
    ``r = teacher_decay_ratio(κ)``, ``κ = max(1, min(ηλ_1 T, e^{c(d-1)}))`` the span of resolved rates.

    Examples
    --------
    >>> k_chi_teacher_bound(0.5, 1000, 1.0, d=30)
    4
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
    """Estimate of k_χ in the initialization-dominated regime (ρ/σ0 → 0), from (c, C, R) alone.

    It ignores the time directions and the finite-C spread (estimate/true 0.43-1.43 in issue 9);
    prefer :func:`k_chi_init`, which counts them on the actual checkpoints.

    The cloud of initial points has population eigenvalues λ_k, each with multiplicity C-1, and at most
    ``N = min(R-1, (C-1) d)`` dimensions. Geometric decay: the first L levels capture
    ``1 - e^{-2cL}`` of ``Σλ²``, so ``k_χ ≈ (C-1) ceil(ln(1/(1-χ))/c)``; isotropic (c = 0):
    ``k_χ ≈ ceil(N (1 - (1-χ)²))``. The smaller of the two is returned.

    Examples
    --------
    >>> k_chi_init_estimate(0.5, 5, 16)
    15
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


def k_chi_teacher(eigenvalues, lr, steps, *, chi=0.9, dynamics="gd", loss="squared", n_classes=2):
    """``k_χ`` of the teacher-dominated limit (σ0 → 0) on the actual checkpoint schedule.

    All runs follow one trajectory; its InPCA eigenvalues are the squared singular values of
    the centred mode-profile matrix ``J_K Φ`` (K checkpoints × d modes), i.e. the eigenvalues
    of ``J S J`` (derivations.md §7.2). Unlike :func:`k_chi_teacher_bound` this uses the
    checkpoints actually recorded (log-spaced or not), so it has no ``ln T`` artefact. It is the
    mean-field value (exact as C → ∞); ``n_classes`` only matters for cross-entropy rates.

    Examples
    --------
    >>> import numpy as np
    >>> k_chi_teacher(np.exp(-0.5 * np.arange(30)), 1.0, [0, 1, 3, 10, 30, 100, 300, 1000])
    2.0
    """
    chi = _chi(chi)
    lam, C, _, _, _, F = _setup(eigenvalues, n_classes, 1.0, 1.0, lr, steps, 1, dynamics, loss)
    Phi = mode_profiles(lam, C, F)
    sv = np.linalg.svd(Phi - Phi.mean(axis=0, keepdims=True), compute_uv=False)
    if not np.any(sv > 0):
        raise ValueError("the trajectory does not move (all checkpoints coincide): k_χ is undefined")
    return k_chi(sv**2, chi)


def k_chi_init(eigenvalues, n_classes, lr, steps, n_runs, *, chi=0.9, dynamics="gd", loss="squared"):
    """``k_χ`` of the initialization-dominated limit (ρ/σ0 → 0), counting time directions.

    The smallest k with ``E[χ_k] >= χ`` on the seedless expected curve at ρ = 0
    (:func:`theory.expected_explained_stress`, ``method='analytic'``): the exact small-logit law
    of the R initialized trajectories on the actual checkpoints (every time direction of the mode
    Gram with its R-1 run copies and its C-1 degrees of freedom per mode, and the run-mean
    trajectory), integrated by the fixed cubature of derivations.md §4.5; beyond the rule's sizes,
    the deterministic ρ = 0 spectrum of §4.4. *Measured* against 60-200 independent draws on 48
    cells (d = 30, T = 10³, c in {0.1, 0.5, 1, 2}, C in {2, 3, 5, 10}, R in {4, 16, 64}): equal to
    the ``k_χ`` of the draws' mean curve in all 48 (k from 2 to 62; the §4.4 spectrum used before:
    25/48, ratio 0.5-1.25) and within 1 of the draws' median ``k_χ``. Cost: one cubature curve
    (0.01-5 s, not cached; 10-25 s at C = 50, R = 64).

    Examples
    --------
    >>> import numpy as np
    >>> k_chi_init(np.exp(-2.0 * np.arange(20)), 2, 1.0, [0, 1, 10, 100], 8)
    2.0
    """
    chi = _chi(chi)
    lam, C, _, _, R, F = _setup(eigenvalues, n_classes, 0.0, 1.0, lr, steps, n_runs, dynamics, loss)
    Phi = mode_profiles(lam, C, F)
    if not np.any(Phi - Phi[:1] if R == 1 else Phi):  # one run spreads only along its checkpoints
        raise ValueError("the initialization cloud has no spread (a single run whose checkpoints all "
                         "give the same point, or every mode profile zero): k_chi is undefined")
    cur = expected_explained_stress(lam, C, 0.0, 1.0, lr, steps, R, dynamics=dynamics, loss=loss,
                                    method="analytic")
    hit = np.flatnonzero(cur.chi >= chi)
    if hit.size == 0:  # cannot happen for a curve that ends at 1; say so rather than guess
        raise ValueError(f"the expected curve never reaches chi={chi} (its largest value is "
                         f"{float(cur.chi.max()):.6g})")
    return float(hit[0] + 1)


def energy_terms(eigenvalues, n_classes, lr, steps, n_runs, *, dynamics="gd", loss="squared"):
    """The three coefficients of the exact ``E‖W‖_F²`` as a polynomial in ``a = Rρ² + σ0²`` (σ0 = 1).

    ``E‖W‖_F² = a² T2 + a X1 + I0`` (derivations.md §7.3) with

    * ``T2 = (C-1)²‖JSJ‖_F² + 2(C-1) Σ_k ‖Jφ_k‖⁴``: the run-mean (teacher) block, mean and
      fluctuation (each mode's weight is ``a χ²_{C-1}``);
    * ``X1 = 2(C-1)(R-1) Σ_k ‖Jφ_k‖² ‖φ_k‖²``: teacher-initialization coupling;
    * ``I0 = (C-1)(R-1)[(C-1)‖S‖_F² + R Σ_k ‖φ_k‖⁴]``: the initialization block, whose
      fourth-moment part ``R Σ_k ‖φ_k‖⁴`` grows like R² and dominates at large R.

    Returns ``(T2, X1, I0, nu)`` with ``nu`` the eigenvalues of ``JSJ`` (descending, for the
    teacher tail). Units: ``σ0⁴`` times squared Bhattacharyya distance.

    Examples
    --------
    >>> import numpy as np
    >>> T2, X1, I0, nu = energy_terms(np.exp(-np.arange(5.0)), 3, 1.0, [0, 1, 10], 4)
    >>> bool(T2 > 0 and X1 > 0 and I0 > 0), nu.shape
    (True, (3,))
    """
    lam, C, _, _, R, F = _setup(eigenvalues, n_classes, 1.0, 1.0, lr, steps, n_runs, dynamics, loss)
    Phi = mode_profiles(lam, C, F)
    Psi = Phi - Phi.mean(axis=0, keepdims=True)
    S = Phi @ Phi.T
    JSJ = Psi @ Psi.T
    nc = np.sum(Psi**2, axis=0)
    npl = np.sum(Phi**2, axis=0)
    T2 = (C - 1) ** 2 * np.sum(JSJ**2) + 2 * (C - 1) * np.sum(nc**2)
    X1 = 2 * (C - 1) * (R - 1) * np.sum(nc * npl)
    I0 = (C - 1) * (R - 1) * ((C - 1) * np.sum(S**2) + R * np.sum(npl**2))
    nu = np.sort(np.abs(np.linalg.eigvalsh(JSJ)))[::-1]
    return float(T2), float(X1), float(I0), nu


def _teacher_tail(Phi, C) -> np.ndarray:
    """Expected teacher-block energy outside its top j directions, j = 0..K (units of ``T2``'s).

    The run-mean block is ``G_T = Σ_k w_k ψ_k ψ_kᵀ`` with ``w_k ~ χ²_{C-1}`` (σ0 = a = 1).  Split
    ``G_T = E G_T + δG``; outside the top-j eigenvectors ``U_j`` of ``E G_T = (C-1) JSJ``
    (``Q_j = I - U_j U_jᵀ``) the energy is ``‖Q_j E G_T Q_j‖² + ‖Q_j δG Q_j‖²`` to second order
    (the ``U_j``-``Q_j`` block of ``δG`` is absorbed by the top directions, as the coupling is), so
    its expectation is ``(C-1)² Σ_{i>j} ν_i² + 2(C-1) Σ_k ‖Q_j ψ_k‖⁴`` (``Var w_k = 2(C-1)``).
    At ``j = 0`` this is ``T2``; the fluctuation part matters at small C (derivations.md §7.3).
    """
    Psi = Phi - Phi.mean(axis=0, keepdims=True)
    nu, U = np.linalg.eigh(Psi @ Psi.T)
    order = np.argsort(nu)[::-1]
    nu, U = np.clip(nu[order], 0.0, None), U[:, order]
    K = nu.size
    out = np.empty(K + 1)
    for j in range(K + 1):
        Qpsi = Psi - U[:, :j] @ (U[:, :j].T @ Psi)
        out[j] = (C - 1) ** 2 * np.sum(nu[j:] ** 2) + 2 * (C - 1) * np.sum(np.sum(Qpsi**2, axis=0) ** 2)
    return out


def _teacher_energy_moments(Phi, C) -> tuple[float, float]:
    """Exact mean and variance of the run-mean block's energy ``Q = ‖G_T‖_F²`` (σ0 = a = 1).

    ``G_T = Σ_k w_k ψ_k ψ_kᵀ`` with independent ``w_k ~ χ²_{C-1}``, so ``Q = wᵀ M w`` with
    ``M_kl = (ψ_k·ψ_l)²``. With the central moments of ``χ²_q`` (variance ``2q``, third ``8q``,
    fourth ``12q(q+4)``, i.e. excess fourth cumulant ``48q``), the quadratic-form identity gives
    ``E Q = q² 1ᵀM1 + 2q tr M`` (= ``T2`` of :func:`energy_terms`) and
    ``Var Q = 48q Σ_k M_kk² + 8q² ‖M‖_F² + 8q³ ‖M1‖² + 32q² Σ_k M_kk (M1)_k``.
    """
    Psi = Phi - Phi.mean(axis=0, keepdims=True)
    M = (Psi.T @ Psi) ** 2
    q = float(C - 1)
    dM = np.diag(M)
    M1 = M.sum(axis=1)
    mean = q * q * M1.sum() + 2.0 * q * dM.sum()
    var = 48.0 * q * np.sum(dM**2) + 8.0 * q * q * np.sum(M * M) + 8.0 * q**3 * (M1 @ M1) \
        + 32.0 * q * q * (dM @ M1)
    return float(mean), float(var)


def _inverse_sqrt_mean(b, shape, scale) -> float:
    """``E[(b + V)^{-1/2}]`` for ``V ~ Gamma(shape, scale)``, ``b >= 0``, in closed form.

    Substituting ``V = b t`` in the Gamma integral gives Tricomi's confluent hypergeometric
    function: ``E[(b+V)^{-1/2}] = b^{-1/2} x^γ U(γ, γ + 1/2, x)``, ``x = b/θ``; at ``b = 0`` it is
    ``θ^{-1/2} Γ(γ - 1/2)/Γ(γ)`` (infinite for ``γ <= 1/2``).
    """
    if b <= 0:
        if shape <= 0.5:
            return float("inf")
        return float(np.exp(special.gammaln(shape - 0.5) - special.gammaln(shape)) / np.sqrt(scale))
    x = b / scale
    u = special.hyperu(shape, shape + 0.5, x)
    if 0 < u < np.inf:
        return float(np.exp(shape * np.log(x) + np.log(u)) / np.sqrt(b))
    # U under/overflows only when V is sharply concentrated (huge shape or x): second-order delta
    # method, (b+m)^{-1/2} (1 + 3 s² / (8 (b+m)²)), m = γθ, s² = γθ²
    m, s2 = shape * scale, shape * scale * scale
    return float((1.0 + 0.375 * s2 / (b + m) ** 2) / np.sqrt(b + m))


#: ``method='auto'`` takes the boundary as the first root of the exact-law expected curve
#: (``expected_explained_stress(method='analytic')`` where it integrates the exact law with its
#: deterministic rule) up to this many runs ...
CURVE_ROOT_MAX_RUNS = 64
#: ... while the Gram of one node is small, ``min(R K, (C-1) d) <= CURVE_ROOT_MAX_SIZE`` ...
#: ... and the features few, ``(C-1) d <= CURVE_ROOT_MAX_FEATURES`` (a root takes about 16-24
#: curves: 0.05-5 s a call at C <= 10, d = 30; C = 50, R = 16 took 12 s, for a gain over the
#: balance of about 1%). Elsewhere the energy balance. On the tuning cells (derivations.md §7.3)
#: the root matched or beat the balance at every class count, within 15%: C = 4, 48/48 against
#: 35/48 (the balance runs +15 to +42% at R = 4); C = 5, 10, 48/48 against 45/48; C = 2, 3,
#: 63/64 against 43/64.
CURVE_ROOT_MAX_SIZE = 192
CURVE_ROOT_MAX_FEATURES = 400
_ROOT_GRID = (0.0,) + tuple(float(x) for x in np.geomspace(0.02, 1000.0, 17))  # factor 1.97
_ROOT_BISECT = 7


def _curve_root(lam, C, lr, steps, R, chi, k_star, dynamics, loss):
    """First upward crossing of ``E[χ_{k*}] = χ`` along ρ/σ0 of the exact-law analytic curve.

    Scans ``_ROOT_GRID`` from ρ = 0 up, bisects the first bracket (log scale, ``_ROOT_BISECT``
    steps, then log-linear interpolation): ``0.0`` if ρ = 0 is a ribbon, ``inf`` if no grid ratio
    is. Returns None when the analytic curve is not an exact-law rule (``n_nodes == 0``) at any
    ratio the search evaluates.
    """
    class _NotExactLaw(Exception):
        pass

    def f(r):
        cur = expected_explained_stress(lam, C, r, 1.0, lr, steps, R, dynamics=dynamics, loss=loss,
                                        method="analytic", n_components=k_star)
        if cur.n_nodes == 0:  # the rule's size depends on the modes kept at this ratio
            raise _NotExactLaw
        return float(cur.chi[k_star - 1])

    try:
        return _first_upward_crossing(f, chi, f(0.0))
    except _NotExactLaw:
        return None


def _first_upward_crossing(f, level, f_zero, grid=_ROOT_GRID, n_bisect=_ROOT_BISECT):
    """First ratio ``r`` at which the increasing-in-places scalar curve ``f(r)`` reaches ``level``.

    Scans ``grid`` (``grid[0] = 0``, where the value ``f_zero`` is given) upward, bisects the
    first bracket ``n_bisect`` times on a log scale (linearly when its lower end is 0), then
    interpolates log-linearly. The rule of :func:`critical_ratio`'s curve root, shared
    with the tuning harness (``benchmarks/tune_boundary.py``) so both locate crossings alike.

    Parameters
    ----------
    f : callable ``float -> float``
    level : float
    f_zero : float
        ``f(0)``.
    grid : sequence of float, increasing, ``grid[0] == 0``
    n_bisect : int

    Returns
    -------
    float
        ``0.0`` if ``f_zero >= level``; ``inf`` if no grid point reaches it.

    Examples
    --------
    >>> r = _first_upward_crossing(lambda r: r, 0.5, 0.0)   # a linear curve crosses at 0.5
    >>> bool(abs(r - 0.5) < 0.5 * 2 ** -7)   # to the final bracket's width (factor 1.97 / 2**7)
    True
    >>> _first_upward_crossing(lambda r: 0.0, 0.5, 0.0)
    inf
    """
    if f_zero >= level:
        return 0.0
    lo, f_lo = 0.0, f_zero
    for r in grid[1:]:
        f_hi = f(r)
        if f_hi >= level:
            hi = r
            break
        lo, f_lo = r, f_hi
    else:
        return float("inf")
    for _ in range(n_bisect):
        mid = 0.5 * hi if lo == 0.0 else float(np.sqrt(lo * hi))
        f_mid = f(mid)
        if f_mid >= level:
            hi, f_hi = mid, f_mid
        else:
            lo, f_lo = mid, f_mid
    w = (level - f_lo) / (f_hi - f_lo) if f_hi > f_lo else 1.0
    if lo == 0.0:
        return float(hi * w)
    return float(np.exp(np.log(lo) + w * np.log(hi / lo)))


def _rule_signature() -> tuple:
    """The module settings that decide whether and how the analytic curve is an exact-law rule
    (part of the curve root's cache key: a root cached under other settings must not be reused)."""
    from . import ensemble
    return ensemble.CUBATURE_MAX_SIZE, ensemble.CUBATURE_MAX_VARIABLES, ensemble.CUBATURE_LOG2_NODES


def _curve_root_of(key):
    return _curve_root_cached(*key, _rule_signature())


@functools.lru_cache(maxsize=4096)
def _curve_root_cached(lam_bytes, C, lr, steps_bytes, R, chi, k_star, dynamics, loss, rule):
    # phase maps ask for the same boundary at every ratio of a row: compute it once
    lam = np.frombuffer(lam_bytes, dtype=float)
    steps = np.frombuffer(steps_bytes, dtype=float)
    return _curve_root(lam, C, lr, steps, R, chi, k_star, dynamics, loss)


def critical_ratio(eigenvalues, n_classes, lr, steps, n_runs, *, chi=0.9, k_star=3, dynamics="gd",
                   loss="squared", method="auto"):
    """Ratio ρ/σ0 at which the seed-averaged ``χ_{k*}`` crosses ``χ`` (deterministic, finite C and R).

    No random sampling: the same arguments give the same number. ``method`` picks the rule
    (derivations.md §7.3):

    * ``"curve-root"`` -- the first upward root in ρ/σ0 of ``E[χ_{k*}] = χ`` on the exact-law
      expected curve (:func:`theory.expected_explained_stress`, ``method='analytic'``, which
      integrates the Gaussian law with a fixed deterministic cubature rule wherever that rule is
      affordable); ``0.0`` when ρ = 0 is already a ribbon, ``inf`` when no ratio up to 1000 is.
      Each mode supplies only C-1 random directions, so deterministic energy shares miss both the
      Jensen gap of ``E[χ]`` and the per-draw sharing of one direction by teacher and
      initialization energy (the balance below was off by -100% to +450% next to the init-ribbon
      branch at C <= 3, and +19 to +42% at C = 5, R = 4). A ``ValueError`` where that curve is not
      an exact-law rule (``theory.ensemble.CUBATURE_MAX_SIZE`` / ``CUBATURE_MAX_VARIABLES``).
    * ``"balance"`` -- the explicit energy balance below (a scalar equation in ρ/σ0 solved by a
      one-dimensional root search), at every C (its asymptotic regimes are the explicit formulas
      of derivations.md §7.3).
    * ``"auto"`` (default) -- the curve root where it is affordable (``R <= CURVE_ROOT_MAX_RUNS
      = 64``, ``min(R K, (C-1) d) <= CURVE_ROOT_MAX_SIZE = 192`` and ``(C-1) d <=
      CURVE_ROOT_MAX_FEATURES = 400``, K checkpoints, d modes; 0.05-5 s a call, cached) and the
      curve is an exact-law rule at every ratio the search evaluates (the rule's size depends on
      the modes kept, which change with ρ); the balance otherwise.

    **The energy balance** has three branches:

      - ``0.0`` -- the initialization cloud alone is already a ribbon (``χ_{k*} >= χ`` of the
        deterministic ρ = 0 spectrum of derivations.md §4.4);
      - ``inf`` -- no ratio up to 1000 satisfies the condition below (e.g. the teacher block
        alone leaves more than ``(1-χ)²`` of its energy outside its top ``k*`` directions);
      - otherwise, for ``C >= FLUCTUATION_MIN_CLASSES = 4``, the first ratio where
        ``E[χ_{k*}] = 1 - E[√U] E[Tot^{-1/2}] >= χ``, i.e. ``J(a)² U(a) / Tot(a) <= β``,
        ``β = (1-χ)²``, ``a = Rρ² + σ0²``, with the exact ``Tot = a² T2 + a X1 + I0`` of
        :func:`energy_terms`; ``U`` the balance's unexplained energy (minimum over the splits
        ``m = 0..k*`` of the teacher tail ``τ_{k*-m} a² T2`` plus the initialization energy
        outside its top m levels, those levels taken from the dof accounting *at this ratio*, after
        the teacher directions have used their degrees of freedom); and the fluctuation factor
        ``J = √(E Tot) E[Tot^{-1/2}]`` in closed form: ``Tot = b + V``, ``b = a X1 + I0``,
        ``V = a² ‖G_T‖²`` a two-moment Gamma (exact mean ``T2`` and variance of the run-mean
        block's energy over its χ²_{C-1} mode weights), ``E[(b+V)^{-1/2}] = b^{-1/2} x^γ
        U(γ, γ+1/2, x)`` (Tricomi), ``x = b/θ``. The scalar equation is solved by a scan and
        Brent's method. For ``C < 4`` (reached only beyond the curve root's range) the plain
        balance ``τ_{k*-m} a² T2 + (1 - g_m) I0 = β Tot`` (a quadratic in ``a``, ``J = 1``).

      ``τ_j`` is the expected teacher-block energy outside its top j mean-field directions,
      mean part plus the χ²_{C-1} fluctuation of each mode's weight, over ``T2``. Few
      checkpoints (T = 10) leave 1-2 active teacher modes, whose χ²_{C-1} weights make
      ``E[Tot^{-1/2}]`` 1.3-1.9 times ``(E Tot)^{-1/2}``: without ``J`` the boundary was 16-24%
      low there. Large R: ``I0 ∝ R²``, ``J`` tends to a constant and the ratio saturates; large
      C: ``J -> 1``, ``I0 ∝ (C-1)² R`` and the ratio falls like ``R^{-1/4}``.

    Parameters
    ----------
    eigenvalues : (d,) array
        Input-correlation spectrum λ.
    n_classes : int >= 2
        C.
    lr : float or None
        GD learning rate (None for flow).
    steps : (K,) array
        Checkpoints.
    n_runs : int >= 1
        R.
    chi : float in (0, 1)
        Target explained stress.
    k_star : int in [1, R*K - 1]
        Ribbon dimension.
    method : {"auto", "curve-root", "balance"}
        The rule (above).

    Returns
    -------
    float: ρ/σ0 at the crossing, ``0.0`` or ``inf``. No uncertainty is attached: the curve
    root inherits the rule's error of about 0.002 in χ (about 1% in the ratio away from the
    init-ribbon branch, more next to it, derivations.md §7.3).

    Raises
    ------
    ValueError
        For an unknown ``method``, or ``method="curve-root"`` where the analytic curve is not an
        exact-law rule (its rule would be too large).

    Examples
    --------
    >>> import numpy as np
    >>> lam = np.exp(-0.5 * np.arange(20))
    >>> r = critical_ratio(lam, 5, 1.0, [0, 1, 3, 10, 30, 100], 8)
    >>> bool(0.5 < r < 5)
    True

    The explicit balance of the same cell, and the curve root it is checked against:

    >>> b = critical_ratio(lam, 5, 1.0, [0, 1, 3, 10, 30, 100], 8, method="balance")
    >>> r == critical_ratio(lam, 5, 1.0, [0, 1, 3, 10, 30, 100], 8, method="curve-root"), bool(0.5 < b < 5)
    (True, True)
    """
    chi = _chi(chi)
    lam, C, _, _, R, F = _setup(eigenvalues, n_classes, 1.0, 1.0, lr, steps, n_runs, dynamics, loss)
    K = F.shape[0]
    k_star = integer(k_star, "k_star", minimum=1)
    if k_star >= R * K:
        raise ValueError(f"k_star must be in [1, number of points - 1 = {R * K - 1}], got {k_star}")
    if not isinstance(method, str) or method not in _BOUNDARY_METHODS:
        raise ValueError(f"method must be one of {BOUNDARY_METHODS}, got {method!r}")
    key = (lam.tobytes(), C, None if lr is None else float(lr),
           np.ascontiguousarray(steps, dtype=float).tobytes(), R, chi, k_star, dynamics, loss)
    return _BOUNDARY_METHODS[method](key, K)


def _boundary_auto(key, K) -> float:
    lam, C, R = np.frombuffer(key[0], dtype=float), key[1], key[4]
    if (R <= CURVE_ROOT_MAX_RUNS and min(R * K, (C - 1) * lam.size) <= CURVE_ROOT_MAX_SIZE
            and (C - 1) * lam.size <= CURVE_ROOT_MAX_FEATURES):
        root = _curve_root_of(key)
        if root is not None:
            return root
    return _balance_root_cached(*key)


def _boundary_curve_root(key, K) -> float:
    root = _curve_root_of(key)
    if root is None:
        raise ValueError(f"method='curve-root' needs an exact-law analytic curve; at n_classes={key[1]}, "
                         f"n_runs={key[4]} and {np.frombuffer(key[0]).size} modes its cubature rule "
                         f"exceeds theory.ensemble.CUBATURE_MAX_SIZE or CUBATURE_MAX_VARIABLES (use "
                         f"method='balance' or 'auto')")
    return root


#: ``critical_ratio``'s rules: name -> function of (cache key, number of checkpoints).
_BOUNDARY_METHODS = {
    "auto": _boundary_auto,
    "curve-root": _boundary_curve_root,
    "balance": lambda key, K: _balance_root_cached(*key),
}
#: The names of ``critical_ratio``'s rules.
BOUNDARY_METHODS = tuple(_BOUNDARY_METHODS)


#: From this many classes on the energy balance carries the fluctuation factor of ``E[Tot^{-1/2}]``
#: and the teacher's absorption of initialization energy (derivations.md §7.3); below it (reached
#: with ``method='balance'``, or under 'auto' for R > CURVE_ROOT_MAX_RUNS or large Grams) the plain
#: balance, whose large-R saturation was checked there.
FLUCTUATION_MIN_CLASSES = 4
#: Ratios ρ/σ0 at which the balance's ribbon condition is first evaluated (then Brent's method
#: in the first bracket); up to 1000 like the curve root.
_BALANCE_GRID = tuple(float(x) for x in np.geomspace(0.01, 1000.0, 18))  # factor 1.97


def _balance_root(lam, C, lr, steps, R, chi, k_star, dynamics, loss) -> float:
    """The fluctuation-corrected energy balance (derivations.md §7.3); see :func:`critical_ratio`."""
    lam, C, _, _, R, F = _setup(lam, C, 1.0, 1.0, lr, steps, R, dynamics, loss)
    init = explained_stress(_init_cloud_spectrum(lam, C, 1.0, R, F))
    if init.size >= k_star and init[k_star - 1] >= chi:
        return 0.0
    T2, X1, I0, nu = energy_terms(lam, C, lr, steps, R, dynamics=dynamics, loss=loss)
    if float(np.sum(nu**2)) <= 0 or T2 <= 0:
        return float("inf")
    beta = (1.0 - chi) ** 2
    Phi = mode_profiles(lam, C, F)
    tail = _teacher_tail(Phi, C) / T2           # teacher share outside its top j directions
    if C < FLUCTUATION_MIN_CLASSES:
        return _plain_balance(lam, C, R, F, chi, k_star, T2, X1, I0, tail, Phi)
    EQ, VQ = _teacher_energy_moments(Phi, C)    # E‖G_T‖² (= T2) and its variance
    shape = EQ * EQ / VQ if VQ > 0 else np.inf
    # initialization energy scale: the accounting's ρ = 0 init values (denominator of every share)
    init0 = float(np.sum(_analytic_spectrum(lam, C, 0.0, 1.0, R, F, parts=True)[1] ** 2))
    n_split = k_star + 1

    def excess(ratio):
        a = R * ratio**2 + 1.0
        total = a * a * T2 + a * X1 + I0
        # init values after the teacher directions have used their degrees of freedom
        _, iv = _analytic_spectrum(lam, C, ratio, 1.0, R, F, parts=True)
        iv2 = np.sort(iv**2)[::-1]
        cum = np.concatenate([[0.0], np.cumsum(iv2)]) / init0 if init0 > 0 else np.zeros(1)
        unexplained = min(float(tail[min(k_star - m, tail.size - 1)]) * a * a * T2
                          + max(float(cum[-1] - cum[min(m, cum.size - 1)]), 0.0) * I0
                          for m in range(n_split))
        # Jensen factor of E[Tot^{-1/2}]: Tot = b + V, V = a² ‖G_T‖² two-moment Gamma
        if np.isfinite(shape):
            jensen = np.sqrt(total) * _inverse_sqrt_mean(total - a * a * T2, shape, a * a * VQ / EQ)
        else:
            jensen = 1.0
        return jensen * jensen * unexplained / total - beta    # <= 0: a ribbon

    if excess(0.0) <= 0:
        return 0.0
    prev = 0.0
    for x in _BALANCE_GRID:
        if excess(x) <= 0:
            return float(optimize.brentq(excess, prev, x, xtol=1e-12, rtol=1e-9))
        prev = x
    return float("inf")


def _plain_balance(lam, C, R, F, chi, k_star, T2, X1, I0, tail, Phi) -> float:
    """The energy balance without fluctuation factor (C < FLUCTUATION_MIN_CLASSES, derivations.md §7.3).

    Deterministic shares ``g_m`` of the ρ = 0 cloud and ``E`` of energies instead of ``E χ``; for
    each split m the quadratic ``(β-τ) T2 a² + β X1 a - (1-g_m-β) I0 = 0`` is solved in closed form.
    """
    beta = (1.0 - chi) ** 2
    nrm = np.sum(Phi**2, axis=0)
    if R - 1 > 2.0 * (C - 1) * nrm.sum() ** 2 / np.sum(nrm**2):  # as _init_cloud_spectrum
        g = np.sort(np.concatenate([_mp_typical(R - 1, C - 1, nk) for nk in nrm]))[::-1]
    else:
        _, g = _analytic_spectrum(lam, C, 0.0, 1.0, R, F, parts=True)
    g2 = g**2
    top = np.concatenate([[0.0], np.cumsum(g2)]) / g2.sum() if g2.sum() > 0 else np.zeros(1)
    best = np.inf
    for m in range(0, min(k_star, top.size - 1) + 1):
        tau = float(tail[min(k_star - m, tail.size - 1)])
        left = max(1.0 - float(top[m]), 0.0)  # initialization share left unexplained
        A = (beta - tau) * T2
        if A <= 0:
            continue
        c0 = (left - beta) * I0
        a_star = (-beta * X1 + np.sqrt(beta**2 * X1**2 + 4.0 * A * max(c0, 0.0))) / (2.0 * A)
        best = min(best, a_star)
    if not np.isfinite(best):
        return float("inf")
    return float(np.sqrt(max(best - 1.0, 0.0) / R))


@functools.lru_cache(maxsize=4096)
def _balance_root_cached(lam_bytes, C, lr, steps_bytes, R, chi, k_star, dynamics, loss):
    lam = np.frombuffer(lam_bytes, dtype=float)
    steps = np.frombuffer(steps_bytes, dtype=float)
    return _balance_root(lam, C, lr, steps, R, chi, k_star, dynamics, loss)


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
    method : {'critical', 'analytic', 'monte-carlo'}
        ``'critical'``: the analytic boundary ``ρ/σ0 >= critical_ratio`` (``method='auto'``,
        finite C and R);
        ``'analytic'`` / ``'monte-carlo'``: ``k_χ`` of the expected explained-stress curve (:func:`expected_explained_stress`).

    Returns
    -------
    (len(axis0), len(axis1)) bool array, True where a hyper-ribbon is predicted.

    Examples
    --------
    >>> phase_map({'c': [0.5], 'ratio': [0.1, 10.0]}, dict(d=12, n_classes=3, n_runs=4, T=100))
    array([[False,  True]])
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
    if method in ("monte-carlo", "analytic"):
        if int(k_star) >= R * steps.size:
            raise ValueError(f"k_star={k_star} must be < number of points {R * steps.size}")
        curve = expected_explained_stress(lam, C, p["ratio"], 1.0, lr, steps, R, n_draws=n_draws,
                                          seed=seed, method=method)
        return bool(curve.chi[int(k_star) - 1] >= chi)  # the curve has all R K values
    raise ValueError(f"method must be 'critical', 'analytic' or 'monte-carlo', got {method!r}")


def phase_boundary(axis, values, fixed, *, chi=0.9, k_star=3, n_checkpoints=10, lr_lambda1=1.0):
    """Critical ρ/σ0 along one axis (``'c'`` or ``'T'``): the boundary curve in the (c, ρ/σ0) or
    (T, ρ/σ0) plane; for the (c, T) plane evaluate it on a T grid and take the level set
    ``critical_ratio = ratio``. Returns an array like ``values`` (inf where no ratio gives a ribbon).

    Examples
    --------
    >>> phase_boundary('c', [0.5, 1.0], dict(d=12, n_classes=5, n_runs=4, T=100)).round(3)
    array([2.107, 1.91 ])
    """
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
