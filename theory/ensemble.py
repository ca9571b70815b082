"""InPCA spectrum of the ensemble in expectation over random teachers and initializations.

Model (derivations.md §4): teacher ``W*`` and initial weights ``W0_r`` (r = 1..R) have i.i.d.
``N(0, ρ²)`` and ``N(0, σ0²)`` entries. In the small-logit limit the centred points are
``y_{r,t} = Σ_{j,k} E_r[j,k] φ_k(t) e_{jk}`` with ``E_r = Qᵀ (W0_r - W*)`` and mode profiles
``φ_k(t) = sqrt(λ_k) a_k(t) / sqrt(8C)``. Three levels of description are provided:

* ``method='mean-field'``: eigenvalues of the expected centred Gram matrix, which is Kronecker
  structured: ``E[G] = (C-1) (ρ² 1_R 1_Rᵀ + σ0² I_R) ⊗ S`` with ``S = Φ Φᵀ`` (K, K). Centering splits it
  into ``(C-1)(Rρ² + σ0²) J_K S J_K`` (once) and ``(C-1) σ0² S`` (R-1 times). Exact as C-1 → ∞.
* :func:`expected_frobenius_sq`: the exact ``E ||J G J||_F²`` (a Gaussian fourth moment), in closed form.
* ``method='analytic'``: deterministic. Wherever the rule is affordable (``CUBATURE_MAX_SIZE``,
  ``CUBATURE_MAX_VARIABLES``; e.g. with all 30 modes kept and 11 checkpoints: C <= 223 for
  R <= 16, C <= 108 at R = 32, C <= 53 at R = 64, C <= 26 at R = 128) the exact small-logit expectation
  evaluated with a fixed, seedless 256-node quasi-Monte-Carlo rule (Sobol' net plus explicit inversive
  coordinates over GF(2^8)) on the exactly reduced law (half-normal teacher coefficients, the
  Bartlett factor of the initialisation Wishart matrix, a feature Gram matrix per node;
  :mod:`theory._cubature`, §4.5), with a batch-means error estimate; beyond those sizes the
  dof-accounting spectrum of §4.4.
* ``method='monte-carlo'`` (default): the expectation of the sorted spectrum itself. Eigenvalues of a
  random Gram matrix are not the eigenvalues of its expectation when the number of independent
  random directions, (C-1) times the number of modes that matter, is not much larger than the number
  of points; the gap is large exactly in the initialization-dominated regime. We therefore average the
  closed-form small-logit spectrum (:func:`theory.quadratic_spectrum`, no softmax, no distances) over
  ``n_draws`` seeded Gaussian draws. Cost: ``n_draws`` eigen-decompositions of size
  ``min(R*K, (C-1)*d)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._checks import integer, nonnegative, spectrum_array
from .quadratic import effective_rates, gram_spectrum, residual_factors
from .stress import explained_stress

__all__ = [
    "mode_profiles",
    "expected_spectrum",
    "expected_explained_stress",
    "expected_frobenius_sq",
    "mean_field_blocks",
    "StressCurve",
]


def _setup(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps, n_runs, dynamics, loss):
    lam = spectrum_array(eigenvalues)
    C = integer(n_classes, "n_classes", minimum=2)
    rho = nonnegative(teacher_scale, "teacher_scale")
    s0 = nonnegative(init_scale, "init_scale")
    if rho == 0 and s0 == 0:
        raise ValueError("teacher_scale and init_scale are both 0: every point coincides (no spectrum)")
    R = integer(n_runs, "n_runs", minimum=1)
    rates = effective_rates(lam, C, loss)
    F = residual_factors(rates, steps, lr=lr if dynamics == "gd" else None, dynamics=dynamics)  # refuses repeats
    if R * F.shape[0] < 2:
        raise ValueError("need at least 2 points (n_runs * len(steps) >= 2)")
    return lam, C, rho, s0, R, F


def mode_profiles(eigenvalues, n_classes, factors) -> np.ndarray:
    """Mode profiles ``Φ[t, k] = sqrt(λ_k) a_k(t) / sqrt(8C)``, shape (K, d).

    ``factors`` (K, d) are the residual factors ``a_k(t)`` of :func:`theory.residual_factors`.

    Examples
    --------
    >>> mode_profiles([4.0], 2, [[1.0], [0.5]]).ravel()
    array([0.5 , 0.25])
    """
    lam = spectrum_array(eigenvalues)
    C = integer(n_classes, "n_classes", minimum=2)
    F = np.asarray(factors, dtype=np.float64)
    if F.ndim != 2 or F.shape[1] != lam.size:
        raise ValueError(f"factors must have shape (K, d={lam.size}), got {F.shape}")
    return F * np.sqrt(lam)[None, :] / np.sqrt(8.0 * C)


def mean_field_blocks(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps, n_runs, *,
                      dynamics="gd", loss="squared"):
    """The two blocks of the centred expected Gram matrix.

    Returns
    -------
    teacher_block : (K, K) array
        ``(C-1)(Rρ² + σ0²) J_K S J_K``: the mean-over-runs direction (its eigenvalues occur once).
    init_block : (K, K) array
        ``(C-1) σ0² S``: the directions orthogonal to the run mean (eigenvalues occur R-1 times).

    Examples
    --------
    >>> import numpy as np
    >>> tb, ib = mean_field_blocks(np.exp(-np.arange(4.0)), 3, 0.1, 0.1, 1.0, [0, 2, 8], 2)
    >>> tb.shape, ib.shape
    ((3, 3), (3, 3))
    """
    lam, C, rho, s0, R, F = _setup(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps,
                                   n_runs, dynamics, loss)
    Phi = mode_profiles(lam, C, F)
    S = Phi @ Phi.T
    K = S.shape[0]
    J = np.eye(K) - 1.0 / K
    return (C - 1) * (R * rho**2 + s0**2) * (J @ S @ J), (C - 1) * s0**2 * S


def expected_frobenius_sq(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps, n_runs, *,
                          dynamics="gd", loss="squared") -> float:
    """Exact ``E ||W||_F²`` of the small-logit InPCA matrix ``W = J G J`` (Gaussian fourth moment).

    ``J G J = Σ_{j,k} v_{jk} v_{jkᵀ}`` with independent Gaussian ``v_{jk} ~ N(0, Σ_k)``, so
    ``E||JGJ||² = ||E JGJ||² + (C-1) Σ_k [ (tr Σ_k)² + ||Σ_k||_F² ]``, with
    ``tr Σ_k = (Rρ²+σ0²)||J φ_k||² + (R-1)σ0²||φ_k||²`` and
    ``||Σ_k||² = (Rρ²+σ0²)²||J φ_k||⁴ + (R-1)σ0⁴||φ_k||⁴`` (derivations.md §4.2).

    Examples
    --------
    >>> import numpy as np
    >>> f = expected_frobenius_sq(np.exp(-np.arange(4.0)), 3, 0.1, 0.1, 1.0, [0, 2, 8], 2)
    >>> bool(f > 0)
    True
    """
    lam, C, rho, s0, R, F = _setup(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps,
                                   n_runs, dynamics, loss)
    Phi = mode_profiles(lam, C, F)
    K = Phi.shape[0]
    Jphi = Phi - Phi.mean(axis=0, keepdims=True)
    S = Phi @ Phi.T
    JSJ = Jphi @ Jphi.T
    at = R * rho**2 + s0**2
    mean_sq = (C - 1) ** 2 * (at**2 * np.sum(JSJ**2) + (R - 1) * s0**4 * np.sum(S**2))
    n_c = np.sum(Jphi**2, axis=0)
    n_p = np.sum(Phi**2, axis=0)
    tr = at * n_c + (R - 1) * s0**2 * n_p
    fro = at**2 * n_c**2 + (R - 1) * s0**4 * n_p**2
    del K
    return float(mean_sq + (C - 1) * np.sum(tr**2 + fro))


def _draw_spectra(lam, C, rho, s0, R, F, n_draws, seed):
    n_draws = integer(n_draws, "n_draws", minimum=2)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    Phi = mode_profiles(lam, C, F)
    K, d = Phi.shape
    out = []
    for _ in range(n_draws):
        # Qᵀ W* and Qᵀ W0 have i.i.d. entries again (Q has orthonormal columns): draw them directly.
        E = s0 * rng.standard_normal((R, C - 1, d)) - rho * rng.standard_normal((1, C - 1, d))
        Y = (E[:, None, :, :] * Phi[None, :, None, :]).reshape(R * K, (C - 1) * d)
        out.append(gram_spectrum(Y))
    return np.array(out)


def _mp_typical(p: int, n: float, scale: float) -> np.ndarray:
    """Typical locations of the p eigenvalues of a p-dimensional isotropic Wishart with n dof.

    Marchenko-Pastur law with ratio ``γ = p/n`` and mean eigenvalue ``n·scale`` per nonzero
    dimension: the i-th largest value is where the counting function equals ``i - 1/2``; only
    ``min(p, n)`` values are nonzero (a fractional remainder gets its share at the lower edge).
    Deterministic (a 4001-point trapezoid integral of the closed-form density).
    """
    out = np.zeros(p)
    if n <= 0 or scale <= 0:
        return out
    g = p / n
    lo, hi = (1 - np.sqrt(g)) ** 2, (1 + np.sqrt(g)) ** 2
    x = np.linspace(lo, hi, 4001)
    dens = np.sqrt(np.maximum((hi - x) * (x - lo), 0.0)) / (2 * np.pi * g * np.maximum(x, 1e-300))
    below = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
    above = (below[-1] - below) * p  # number of eigenvalues above x
    nz = int(np.floor(min(p, n) + 1e-9))
    out[:nz] = np.interp(np.arange(nz) + 0.5, above[::-1], x[::-1]) * n * scale
    if nz < p and min(p, n) - nz > 0:
        out[nz] = (min(p, n) - nz) * lo * n * scale
    return out


def _analytic_spectrum(lam, C, rho, s0, R, F, parts=False):
    """Deterministic finite-R, finite-C spectrum (derivations.md §4.4): sequential dof accounting.

    With ``parts=True`` returns the run-mean (teacher) and initialization values separately.
    """
    Phi = mode_profiles(lam, C, F)  # (K, d)
    K, d = Phi.shape
    Psi = Phi - Phi.mean(axis=0, keepdims=True)
    a = R * rho**2 + s0**2
    nf = C - 1  # independent features (contrast rows) per mode
    nuT, eT = np.linalg.eigh(a * Psi @ Psi.T)
    nuI, qI = np.linalg.eigh(s0**2 * Phi @ Phi.T)
    dirs = [(nf * nuT[i], 1, a * (eT[:, i] @ Psi) ** 2) for i in range(K)]
    if R > 1:
        dirs += [(nf * nuI[i], R - 1, s0**2 * (qI[:, i] @ Phi) ** 2) for i in range(K)]
    dirs.sort(key=lambda t: -t[0])
    avail = np.ones(d)
    ev, kind = [], []

    def consume(load):
        nonlocal avail
        norm = nf * np.sum(avail**2 * load)
        if norm > 0:
            avail = np.maximum(avail - avail**2 * load / norm, 0.0)

    for nu, mult, load in dirs:
        w = avail * load
        t = nf * float(np.sum(w))
        kind += [mult == 1] * mult
        if nu <= 0 or t <= 0:
            ev += [0.0] * mult
            continue
        if mult == 1:
            ev.append(t)
            consume(load)
            continue
        wn = w / w.max()  # scale-free participation number (no underflow of w²)
        n_eff = min(nf * float(np.sum(wn)) ** 2 / float(np.sum(wn * wn)), nf * float(np.sum(avail)))
        ev += list(_mp_typical(mult, n_eff, t / n_eff))
        for _ in range(int(min(mult, np.ceil(n_eff)))):
            consume(load)
    ev = np.asarray(ev)
    if parts:
        kind = np.asarray(kind, dtype=bool)
        return np.sort(ev[kind])[::-1], np.sort(ev[~kind])[::-1]
    return ev[np.argsort(-np.abs(ev), kind="stable")]


#: Runs-to-features ratio above which the analytic curve (ρ > 0) switches to the per-mode cloud
#: (chosen on the 144-cell grid of derivations.md §4.4 against Monte Carlo: in-sample).
_CLOUD_FACTOR = 3.0


def _cloud_regime_spectrum(lam, C, rho, s0, R, F) -> np.ndarray:
    """Deterministic spectrum with the run-outnumber-features correction (derivations.md §4.4).

    When the runs clearly outnumber the effective features,
    ``R - 1 > 2 (C-1)(Σ_k ‖φ_k‖²)² / Σ_k ‖φ_k‖⁴`` (the factor 2 is an empirical choice, §4.4),
    and the teacher does not dominate the run-mean variance (``Rρ² <= σ0²``), each mode's ``C-1``
    features get their own run directions (nearly orthogonal across modes), so the
    initialization values are the union over modes of the Marchenko-Pastur values of a
    ``(R-1)``-dimensional Wishart with ``C-1`` dof and scale ``σ0²‖φ_k‖²``; otherwise the
    sequential accounting of :func:`_analytic_spectrum` is used for them.
    """
    tvals, ivals = _analytic_spectrum(lam, C, rho, s0, R, F, parts=True)
    Phi = mode_profiles(lam, C, F)
    nrm = np.sum(Phi**2, axis=0)
    n_feat = (C - 1) * nrm.sum() ** 2 / np.sum(nrm**2) if np.any(nrm > 0) else 0.0
    factor = 2.0 if rho == 0 else _CLOUD_FACTOR
    if R > 1 and R - 1 > factor * n_feat and R * rho**2 <= s0**2:
        ivals = np.concatenate([_mp_typical(R - 1, C - 1, s0**2 * nk) for nk in nrm])
    ev = np.concatenate([tvals, ivals])
    return ev[np.argsort(-np.abs(ev), kind="stable")]


def _init_cloud_spectrum(lam, C, s0, R, F) -> np.ndarray:
    """Deterministic spectrum at ρ = 0 (:func:`_cloud_regime_spectrum`)."""
    return _cloud_regime_spectrum(lam, C, 0.0, s0, R, F)


#: ``method='analytic'`` integrates the exact law (derivations.md §4.5) at every class count while
#: the rule is affordable: the Gram whose spectrum is taken at each node, ``min(R K, (C-1) d')``
#: (``d'`` modes kept), is at most ``CUBATURE_MAX_SIZE`` ...
CUBATURE_MAX_SIZE = 768
#: ... and the rule's Bartlett variables, ``(C-1) d' min(R-1, (C-1) d')``, at most this many.
#: Together they cover the whole range of issue 9 (C <= 50, R <= 64, d = 30, 11 checkpoints:
#: a Gram of 704, 92 610 variables). Memory is bounded by evaluating the nodes in blocks
#: (blocks sized to about ``theory._cubature.BLOCK_BYTES``; 0.19 GB peak at C = 50, R = 64);
#: the cost is the 256 eigenvalue problems, about 10-25 s there on one core. Beyond either cap
#: the dof accounting of §4.4 is used. (Measured against 100-seed simulated means at C = 50,
#: R = 64, 15 points of each curve-grid set: the rule within 0.0068 and 0.0036; the accounting,
#: used at 13 of them under the former caps 400 / 30000 (earlier seeds), up to 0.022 off;
#: against Monte Carlo at C = 10, 36 cells: rule worst 0.0092, accounting 0.078.)
CUBATURE_MAX_VARIABLES = 100_000


#: Nodes of that rule: ``2**CUBATURE_LOG2_NODES`` (split into 8 blocks for the batch-means error,
#: :func:`theory._cubature.batch_average`).
CUBATURE_LOG2_NODES = 8


def _uses_cubature(lam, C, rho, s0, R, F) -> bool:
    """Whether ``method='analytic'`` integrates the exact law for these arguments (sizes above)."""
    from ._cubature import kept_modes
    n_feat = (C - 1) * kept_modes(mode_profiles(lam, C, F), R * rho**2 + s0**2, s0, R).size
    return (min(R * F.shape[0], n_feat) <= CUBATURE_MAX_SIZE
            and n_feat * min(R - 1, n_feat) <= CUBATURE_MAX_VARIABLES)


def _cubature_spectra(lam, C, rho, s0, R, F) -> np.ndarray:
    """Small-logit spectra at the nodes of the deterministic rule of §4.5, (N, p)."""
    from ._cubature import feature_spectra
    Phi = mode_profiles(lam, C, F)
    return feature_spectra(Phi, C - 1, R * rho**2 + s0**2, s0, R, CUBATURE_LOG2_NODES)


@dataclass(frozen=True)
class _Law:
    """The checked arguments of one expectation (what every method receives)."""

    lam: np.ndarray
    C: int
    rho: float
    s0: float
    R: int
    F: np.ndarray
    lr: float | None
    steps: np.ndarray
    dynamics: str
    loss: str
    n_draws: int
    seed: object

    def __post_init__(self):
        # checked for every method, so that a bad value is not silently ignored by the
        # deterministic ones (which do not use it)
        integer(self.n_draws, "n_draws", minimum=2)
        _check_seed(self.seed)


def _check_seed(seed) -> None:
    """A ``numpy.random.SeedSequence`` entropy: a non-negative integer or a non-empty sequence of
    them (checked without building a generator)."""
    items = list(seed) if isinstance(seed, (list, tuple, np.ndarray)) else [seed]
    ok = bool(items) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
                             for v in items)
    if not ok:
        raise ValueError(f"seed must be a non-negative integer or a non-empty sequence of them "
                         f"(numpy.random.SeedSequence entropy), got {seed!r}")


def _analytic_spectrum_of(law: _Law) -> np.ndarray:
    RK = law.R * law.F.shape[0]
    if _uses_cubature(law.lam, law.C, law.rho, law.s0, law.R, law.F):
        ev = _cubature_spectra(law.lam, law.C, law.rho, law.s0, law.R, law.F).mean(axis=0)
        return np.pad(ev, (0, max(RK - ev.size, 0)))[:RK]
    return _cloud_regime_spectrum(law.lam, law.C, law.rho, law.s0, law.R, law.F)


def _mean_field_spectrum_of(law: _Law) -> np.ndarray:
    tb, ib = mean_field_blocks(law.lam, law.C, law.rho, law.s0, law.lr, law.steps, law.R,
                               dynamics=law.dynamics, loss=law.loss)
    ev = np.concatenate([np.linalg.eigvalsh(tb), np.repeat(np.linalg.eigvalsh(ib), law.R - 1)])
    return ev[np.argsort(-np.abs(ev), kind="stable")]


def _monte_carlo_spectrum_of(law: _Law) -> np.ndarray:
    return _draw_spectra(law.lam, law.C, law.rho, law.s0, law.R, law.F, law.n_draws, law.seed).mean(axis=0)


def _curve_of_expected_spectrum(spectrum_of):
    """A curve method from a spectrum method: χ of the expected spectrum, no error estimate."""
    def curve(law: _Law):
        chi = explained_stress(spectrum_of(law))
        return chi, np.zeros_like(chi), 0, 0
    return curve


def _monte_carlo_curve(law: _Law):
    spectra = _draw_spectra(law.lam, law.C, law.rho, law.s0, law.R, law.F, law.n_draws, law.seed)
    curves = np.array([explained_stress(sp) for sp in spectra])
    se = curves.std(axis=0, ddof=1) / np.sqrt(curves.shape[0])
    return curves.mean(axis=0), se, curves.shape[0], 0


def _analytic_curve(law: _Law):
    if not _uses_cubature(law.lam, law.C, law.rho, law.s0, law.R, law.F):
        return _curve_of_expected_spectrum(_analytic_spectrum_of)(law)
    from ._cubature import batch_average, stress_rows
    spectra = _cubature_spectra(law.lam, law.C, law.rho, law.s0, law.R, law.F)
    chi, se = batch_average(stress_rows(spectra, law.R * law.F.shape[0]))
    return chi, se, 0, spectra.shape[0]


@dataclass(frozen=True)
class _Method:
    """One expectation method: its expected spectrum and its expected explained-stress curve
    ``(chi, stderr, n_draws, n_nodes)``."""

    spectrum: object
    curve: object


#: The expectation methods (derivations.md §4), by name.
_METHODS = {
    "analytic": _Method(_analytic_spectrum_of, _analytic_curve),
    "monte-carlo": _Method(_monte_carlo_spectrum_of, _monte_carlo_curve),
    "mean-field": _Method(_mean_field_spectrum_of, _curve_of_expected_spectrum(_mean_field_spectrum_of)),
}


def _method(method) -> _Method:
    if method == "quadrature":
        raise ValueError("method='quadrature' was a Monte-Carlo average, not a quadrature; it is now "
                         "called method='monte-carlo'")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {tuple(_METHODS)}, got {method!r}")
    return _METHODS[method]


def expected_spectrum(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps, n_runs, *,
                      dynamics="gd", loss="squared", method="monte-carlo", n_draws=64, seed=0):
    """Expected small-logit InPCA eigenvalues over random teachers and initializations.

    Parameters
    ----------
    eigenvalues : (d,) array
        Spectrum ``λ_k`` of the input correlation (or of ``K/n`` for a kernel machine).
    n_classes : int >= 2
        Number of classes C (a non-integer is refused).
    teacher_scale, init_scale : float
        Standard deviations ρ of the teacher entries and σ0 of the initial weight entries (>= 0).
    lr : float or None
        GD learning rate (None for ``dynamics='flow'``).
    steps : (K,) array
        Checkpoints (steps for GD, times for flow).
    n_runs : int >= 1
        Number of runs R.
    method : {'monte-carlo', 'analytic', 'mean-field'}
        ``'monte-carlo'``: mean over ``n_draws`` seeded Gaussian draws of the sorted small-logit
        spectrum (``E[μ_i]``; contains all finite-R and finite-C effects, up to sampling error).
        ``'analytic'``: deterministic (no random numbers, no seed). Where the rule is affordable
        (``CUBATURE_MAX_SIZE``, ``CUBATURE_MAX_VARIABLES``) the mean over the 256 nodes of the
        fixed seedless cubature rule of derivations.md §4.5 of the sorted exact small-logit
        spectrum (``E[μ_i]`` of the exact law up to the rule's error); beyond, the finite-R,
        finite-C approximation of §4.4: mean-field eigen-directions taken in
        decreasing order, each using up degrees of freedom of the C-1 contrast rows of every
        mode; the R-1-fold initialization levels are spread by the Marchenko-Pastur law of
        their effective number of degrees of freedom.
        ``'mean-field'``: eigenvalues of the expected Gram matrix (closed form; exact as C → ∞;
        overstates the dimension of the initialization cloud when (C-1)·(active modes) is not
        >> R·K).
    n_draws : int >= 2
        Number of Monte-Carlo draws (used by ``method='monte-carlo'`` only; checked for every
        method).
    seed : int >= 0 or sequence of int >= 0
        Seed of ``numpy.random.SeedSequence`` (same seed, same numbers; used by
        ``method='monte-carlo'`` only; checked for every method).

    Returns
    -------
    (m,) array
        Eigenvalues (units of the mean-over-samples Bhattacharyya distance) sorted by |λ|
        descending; ``m = min(R*K, (C-1)*d)`` for Monte Carlo, ``R*K`` for the others.

    Examples
    --------
    >>> import numpy as np
    >>> ev = expected_spectrum(np.exp(-np.arange(4.0)), 3, 0.1, 0.1, 1.0, [0, 2, 8], 2, n_draws=4)
    >>> ev.shape, bool(np.all(np.diff(np.abs(ev)) <= 0))
    ((6,), True)
    """
    lam, C, rho, s0, R, F = _setup(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps,
                                   n_runs, dynamics, loss)
    law = _Law(lam, C, rho, s0, R, F, lr, steps, dynamics, loss, n_draws, seed)
    return _method(method).spectrum(law)


@dataclass(frozen=True)
class StressCurve:
    """An expected explained-stress curve ``E[χ_k]``, k = 1..m, and how it was obtained.

    Attributes
    ----------
    chi : (m,) float64 array
        The curve (non-decreasing, in [0, 1]).
    stderr : (m,) float64 array
        Error estimate of each ``chi`` value: the Monte-Carlo standard error
        (``std/sqrt(n_draws)`` over draws), the cubature's batch-means standard error (sd of
        the means of 8 blocks of 32 nodes over sqrt(8); ``method='analytic'`` with its rule; twice it
        covered 99% of the measured deviations, 71-89% of those resolved by the reference, three
        times it 94-97%; §4.5), zeros for the other deterministic curves; with
        ``logits='finite'`` the correction's estimate is added (derivations.md §6.2).
    method : str
        The method that produced it.
    n_draws : int
        Number of Monte-Carlo draws (0 for deterministic methods).
    n_nodes : int
        Nodes of the deterministic cubature (0 when none was used).
    logits : {'small', 'finite'}
        Whether the finite-logit correction is included.
    negative_share, negative_share_err : float
        Predicted expected share ``Σ_{μ<0} μ² / Σ μ²`` of negative eigenvalues and its error
        estimate (both 0 for ``logits='small'``: the small-logit geometry is Euclidean).
    logit_rms : float
        Expected pooled rms of the centred logits (:func:`theory.expected_logit_diagnostics`).
    in_regime : bool
        :func:`theory.in_regime` of ``logit_rms``: the one small-logit regime rule.

    ``numpy.asarray(curve)`` gives ``chi``; ``len(curve)`` and indexing act on ``chi``.

    Examples
    --------
    >>> import numpy as np
    >>> cur = StressCurve(np.array([0.5, 0.95]), np.zeros(2), "mean-field")
    >>> cur.k_chi(0.9), len(cur), float(cur[0])
    (2.0, 2, 0.5)
    """

    chi: np.ndarray
    stderr: np.ndarray
    method: str
    n_draws: int = 0
    n_nodes: int = 0
    logits: str = "small"
    negative_share: float = 0.0
    negative_share_err: float = 0.0
    logit_rms: float = 0.0
    in_regime: bool = True

    def __array__(self, dtype=None, copy=None):
        return self.chi if dtype is None else self.chi.astype(dtype)

    def __len__(self) -> int:
        return int(self.chi.size)

    def __getitem__(self, item):
        return self.chi[item]

    def k_chi(self, chi: float = 0.9) -> float:
        """Smallest k with ``E[χ_k] >= chi`` (``math.inf`` if the curve never reaches it)."""
        chi = float(chi)
        if not 0.0 < chi <= 1.0:
            raise ValueError(f"chi must lie in (0, 1]; got {chi}")
        hit = np.flatnonzero(self.chi >= chi - 1e-12)
        return float(hit[0] + 1) if hit.size else math.inf


_LOGITS = ("small", "finite")


def expected_explained_stress(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps, n_runs, *,
                              dynamics="gd", loss="squared", method="monte-carlo", n_draws=64, seed=0,
                              n_components=None, logits="small", n_samples=None) -> StressCurve:
    """Expected explained-stress curve ``E[χ_k]``, k = 1..n_components.

    Parameters are those of :func:`expected_spectrum`, plus:

    n_components : int, optional
        Length of the returned curve (default: all ``R*K`` values); ``χ_k = 1`` (standard
        error 0) beyond the rank of the spectra, whatever the method.
    logits : {'small', 'finite'}
        ``'small'`` (default): the small-logit theory, scale free (only ρ/σ0 matters).
        ``'finite'``: adds the finite-logit correction ``E[χ_fin - χ_small]`` of
        derivations.md §6.2 (the segment-averaged softmax Fisher metric of
        :func:`theory.finite_logit_spectrum`, averaged over the 256 nodes of the seedless
        rule of §4.5 over the law of teacher, initializations and inputs); the absolute scales
        of ``eigenvalues``, ρ and σ0 then matter (logits are ``W x``). Squared loss only (at
        finite logits cross-entropy dynamics are not linear). Cost: 256 finite-logit spectra
        (R K = 88 points, n = 60: 5.0-5.8 s a call at C = 2 and 5 on a quiet 2-core machine).
        Where the corrected value would leave [0, 1], it is set to the nearer end and the
        amount moved is added to ``stderr``.
    n_samples : int >= d, optional
        Required with ``logits='finite'`` (and refused otherwise): the number n of training
        inputs, modelled as exact-spectrum data ``X = sqrt(n) U Λ^{1/2}`` with ``U`` a Haar
        n x d orthonormal frame (linsim's ``data_mode='exact'``).

    ``method='monte-carlo'`` averages the per-draw curves (what an average over simulated seeds
    measures) and reports the standard error of that average. ``method='analytic'`` is
    deterministic: wherever the rule is affordable (the Gram of a node, ``min(R K, (C-1) d')``,
    at most ``CUBATURE_MAX_SIZE = 768``, and its variables at most ``CUBATURE_MAX_VARIABLES =
    100000``; with all 30 modes of d = 30 kept and 11 checkpoints: C <= 223 for R <= 16,
    C <= 108 at R = 32, C <= 53 at R = 64, C <= 26 at R = 128) it is the exact small-logit
    ``E[χ_k]`` evaluated with a
    fixed, seedless 256-node quasi-Monte-Carlo rule on the exactly reduced law (derivations.md
    §4.5), with the rule's batch-means standard error as ``stderr``; measured against
    16000-draw Monte Carlo on 72 cells at C = 2, 3 (d = 30, R in {4, 16, 64}, c in
    {0.1, 0.5, 1, 2}, ρ/σ0 in {0.1, 1, 3}): median 0.0021, worst 0.0077 over k <= 10 (the §4.4
    dof accounting it replaces: median 0.05, worst 0.23); at C = 4, 5 (4000 draws, s.e. up to
    0.0026): median 0.0016, worst 0.0092; at C = 10 (36 cells, 1000 draws): median 0.0017,
    worst 0.0092 (the dof accounting: 0.019, 0.078); at C = 50, R = 64 (15 points against
    100-seed exact softmax means, ``benchmarks/acceptance_curve_grid.py``): within 0.0068 and
    0.0036 on its two sets (the dof accounting used at 13 of them before: up to 0.022). Cost:
    256 eigenproblems, 0.01-1 s at C <= 10, 10-25 s at C = 50, R = 64 (memory bounded: nodes
    in blocks sized to about 64 MB, 0.19 GB peak there). Beyond those sizes it is the curve of
    the deterministic dof-accounting spectrum of §4.4 (``stderr`` zeros).
    ``'mean-field'`` is the curve of the mean-field spectrum (normalised by its own sum of
    squares).

    Returns
    -------
    StressCurve
        ``stderr``: Monte-Carlo standard error, or the cubature's error estimate; with
        ``logits='finite'`` plus the correction's own estimate (rule error and the segment
        rule's χ interval). ``logit_rms`` and ``in_regime`` come from
        :func:`theory.expected_logit_diagnostics` and :func:`theory.in_regime` (the one regime
        rule): out of the regime, ``logits='small'`` is not to be trusted.

    Examples
    --------
    >>> import numpy as np
    >>> cur = expected_explained_stress(np.exp(-np.arange(4.0)), 3, 0.1, 0.1, 1.0, [0, 2, 8], 2,
    ...                                 n_draws=8, n_components=3)
    >>> cur.chi.shape, bool(np.all(cur.stderr > 0)), cur.method, cur.in_regime
    ((3,), True, 'monte-carlo', True)
    >>> an = expected_explained_stress(np.exp(-np.arange(4.0)), 3, 0.1, 0.1, 1.0, [0, 2, 8], 2,
    ...                                method="analytic", n_components=3)
    >>> an.n_nodes, bool(np.all(np.diff(an.chi) >= 0))
    (256, True)
    """
    from .validity import expected_logit_diagnostics
    lam, C, rho, s0, R, F = _setup(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps,
                                   n_runs, dynamics, loss)
    m = None if n_components is None else integer(n_components, "n_components", minimum=1)
    impl = _method(method)
    if logits not in _LOGITS:
        raise ValueError(f"logits must be one of {_LOGITS}, got {logits!r}")
    if logits == "finite" and loss != "squared":
        raise ValueError("logits='finite' needs loss='squared' (cross-entropy dynamics are not "
                         "linear at finite logits)")
    if logits == "finite":
        if n_samples is None:
            raise ValueError("logits='finite' needs n_samples (the number of training inputs)")
        n_samples = integer(n_samples, "n_samples", minimum=lam.size)
    elif n_samples is not None:
        raise ValueError("n_samples is used only with logits='finite'")
    law = _Law(lam, C, rho, s0, R, F, lr, steps, dynamics, loss, n_draws, seed)
    chi, se, n, nodes = impl.curve(law)
    # beyond the rank of the spectra nothing is left to explain: χ_k = 1 exactly (zero error), so
    # the curve is padded to the requested length (default R K) instead of ending at the rank
    length = R * F.shape[0] if m is None else m
    if chi.size < length:
        chi = np.concatenate([chi, np.ones(length - chi.size)])
        se = np.concatenate([se, np.zeros(length - se.size)])
    diag = expected_logit_diagnostics(lam, C, rho, s0, lr, steps, dynamics=dynamics, loss=loss)
    neg, neg_err = 0.0, 0.0
    if logits == "finite":
        from .finite_logit import _expected_correction
        delta, d_err, width, neg, neg_err = _expected_correction(lam, C, rho, s0, R, F, chi.size,
                                                                 n_samples)
        raw = chi + delta
        chi = np.clip(raw, 0.0, 1.0)  # χ lies in [0, 1] by definition; a correction that overshoots
        se = se + d_err + width + np.abs(raw - chi)  # says so in the error, not silently
    return StressCurve(chi=chi[:m], stderr=se[:m], method=method, n_draws=n, n_nodes=nodes,
                       logits=logits, negative_share=neg, negative_share_err=neg_err,
                       logit_rms=diag.logit_rms, in_regime=diag.in_regime)
