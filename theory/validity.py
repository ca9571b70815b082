"""How far an ensemble is from the small-logit regime where the quadratic theory holds.

The quadratic theory replaces the Bhattacharyya distance by ``(1/8C)||P⊥ δz||²``. The exact per-sample
distance is ``(1/8) δzᵀ H(m) δz + O(δz⁴)`` with the softmax Hessian ``H`` at the midpoint ``m``
(derivations.md §1), so the relative error of a distance is of first order in the logits through
``H(m) - H(0)``; that first-order part is a third sample moment of the data and vanishes for data sets
closed under ``x -> -x``, leaving a second-order error. Measured on exact simulations (tests and
derivations.md §6) the relative error of the top-10 InPCA eigenvalues is typically below
``0.15 z + 0.5 z²`` (generic data) and ``0.5 z²`` (sign-symmetric data), with ``z`` the largest
rms centred logit over the ensemble's points. That is the ``predicted_rel_error`` reported here. Whether an ensemble is *in the regime* is
one rule, :func:`in_regime` (pooled centred-logit rms <= :data:`REGIME_LOGIT_RMS`); the expected
curves carry it too (``StressCurve.logit_rms`` / ``in_regime`` of
:func:`theory.expected_explained_stress`), and outside the regime
``expected_explained_stress(..., logits='finite')`` adds the finite-logit correction
(derivations.md §6.2).
It is a calibrated typical value, not a bound: on generic data with n = 64 samples it held in
about 95% of draws and the worst draw exceeded it by 1.5-1.8x; the first-order coefficient is a
sampling effect of the data's third moments and shrinks with n (about 0.1, 0.055, 0.03 at
n = 64, 256, 1024), so for large n it is conservative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_float_array, nonnegative, spectrum_array
from .quadratic import _check_weights, effective_rates, residual_factors

__all__ = ["REGIME_LOGIT_RMS", "LogitDiagnostics", "centred_logit_rms", "in_regime",
           "logit_diagnostics", "expected_logit_diagnostics", "predicted_relative_error"]

#: The one definition of "in the small-logit regime" used by the theory and the sweeps alike:
#: the pooled rms of the class-centred logits (:func:`centred_logit_rms`) is at most this value.
#: At 0.3 the calibrated typical eigenvalue error (:func:`predicted_relative_error`) is about 9%
#: on generic data and 4.5% on sign-symmetric data.
REGIME_LOGIT_RMS = 0.3


def centred_logit_rms(logits) -> float:
    """Pooled rms of the class-centred logits: ``sqrt(mean over all entries of (z_c - mean_c z)²)``.

    Parameters
    ----------
    logits : array_like (..., C)
        Logits with the classes on the last axis, e.g. a trajectory's outputs ``(R, K, n, C)``.
        Softmax ignores the class mean, hence the centring. Accumulated in float64.

    Returns
    -------
    float, the statistic that :func:`in_regime` compares with :data:`REGIME_LOGIT_RMS`.

    Examples
    --------
    >>> centred_logit_rms([[1.0, -1.0], [0.5, 0.5]])
    0.7071067811865476
    """
    z = np.asarray(logits)
    if np.iscomplexobj(z):
        raise ValueError("logits must be real; got a complex array")
    z = z.astype(np.float64)
    if z.ndim < 1 or z.shape[-1] < 2 or z.size == 0:
        raise ValueError(f"logits must have shape (..., C) with C >= 2 classes last; got {z.shape}")
    if not np.all(np.isfinite(z)):
        bad = np.argwhere(~np.isfinite(z))[0]
        raise ValueError(f"logits contain NaN or inf at index {tuple(int(i) for i in bad)}")
    zc = z - z.mean(axis=-1, keepdims=True)
    return float(np.sqrt(np.mean(zc * zc)))


def in_regime(logit_rms: float) -> bool:
    """True when ``logit_rms`` (from :func:`centred_logit_rms`) is ``<= REGIME_LOGIT_RMS``.

    Examples
    --------
    >>> in_regime(0.1), in_regime(0.5)
    (True, False)
    """
    return bool(nonnegative(logit_rms, "logit_rms") <= REGIME_LOGIT_RMS)


def predicted_relative_error(rms_logit: float, symmetric_data: bool = False) -> float:
    """Calibrated typical value (not a bound) of the relative error of the leading InPCA eigenvalues.

    ``a z + 0.5 z²`` with ``a = 0.15`` for generic data and ``0`` for data sets closed under
    ``x -> -x`` (``symmetric_data``); ``z`` is the largest per-checkpoint rms centred logit.

    Examples
    --------
    >>> round(predicted_relative_error(0.2), 6), round(predicted_relative_error(0.2, True), 6)
    (0.05, 0.02)
    """
    z = nonnegative(rms_logit, "rms_logit")
    return (0.0 if symmetric_data else 0.15 * z) + 0.5 * z * z


@dataclass(frozen=True)
class LogitDiagnostics:
    """How far an ensemble's logits are from the small-logit limit.

    Attributes
    ----------
    logit_rms : float
        Pooled rms of the class-centred logits over all points, samples and classes (the
        statistic of :func:`centred_logit_rms`; in expectation for
        :func:`expected_logit_diagnostics`).
    max_point_logit_rms : float
        Largest rms over the individual points (run, checkpoint).
    max_abs_logit : float or None
        Largest ``|P⊥ z|`` entry (None when the inputs were not given).
    predicted_rel_error : float
        :func:`predicted_relative_error` of ``max_point_logit_rms``.
    in_regime : bool
        :func:`in_regime` of ``logit_rms``: the one regime rule.

    Examples
    --------
    >>> LogitDiagnostics(0.1, 0.2, None, 0.05, True).in_regime
    True
    """

    logit_rms: float
    max_point_logit_rms: float
    max_abs_logit: float | None
    predicted_rel_error: float
    in_regime: bool


def _report(rms_per_point, max_abs, symmetric_data) -> LogitDiagnostics:
    pooled = float(np.sqrt(np.mean(rms_per_point**2)))
    zmax = float(np.max(rms_per_point))
    return LogitDiagnostics(logit_rms=pooled, max_point_logit_rms=zmax,
                            max_abs_logit=None if max_abs is None else float(max_abs),
                            predicted_rel_error=predicted_relative_error(zmax, symmetric_data),
                            in_regime=in_regime(pooled))


def _factors(lam, C, loss, lr, steps, dynamics):
    return residual_factors(effective_rates(lam, C, loss), steps,
                            lr=lr if dynamics == "gd" else None, dynamics=dynamics)


def logit_diagnostics(eigenvalues, teacher, init, lr, steps, *, dynamics="gd", loss="squared",
                      inputs=None, symmetric_data=False) -> LogitDiagnostics:
    """Small-logit diagnostics for one ensemble draw.

    Parameters are those of :func:`theory.quadratic_spectrum`; ``inputs`` (n, d) in the
    eigenbasis is optional and enables ``max_abs_logit``. The rms of point ``(r, t)`` is
    ``sqrt(tr(P⊥ W Λ Wᵀ P⊥) / C)``, exactly the rms of its centred logits over samples and
    classes when ``Λ`` is the sample correlation of the inputs.

    Returns
    -------
    LogitDiagnostics

    Examples
    --------
    >>> import numpy as np
    >>> lam = np.array([1.0, 0.5]); Wt = np.array([[0.1, 0.0], [-0.1, 0.0]])
    >>> dg = logit_diagnostics(lam, Wt, np.zeros((1, 2, 2)), 1.0, [0, 10])
    >>> round(dg.logit_rms, 4), dg.in_regime
    (0.0707, True)
    """
    lam, Wt, W0 = _check_weights(eigenvalues, teacher, init)
    C = Wt.shape[0]
    F = _factors(lam, C, loss, lr, steps, dynamics)
    W = Wt[None, None] + (W0 - Wt[None])[:, None] * F[None, :, None, :]  # (R, K, C, d)
    Wc = W - W.mean(axis=2, keepdims=True)
    rms = np.sqrt(np.einsum("rkcd,d->rk", Wc**2, lam) / C).ravel()
    max_abs = None
    if inputs is not None:
        X = as_float_array(inputs, "inputs", ndim=2)
        if X.shape[1] != lam.size:
            raise ValueError(f"inputs must have shape (n, d={lam.size}), got {X.shape}")
        max_abs = max(float(np.abs(np.einsum("kcd,nd->knc", Wc[r], X)).max()) for r in range(W.shape[0]))
    return _report(rms, max_abs, symmetric_data)


def expected_logit_diagnostics(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps, *,
                               dynamics="gd", loss="squared", symmetric_data=False) -> LogitDiagnostics:
    """Diagnostics in expectation over ``W* ~ N(0, ρ²)``, ``W0 ~ N(0, σ0²)`` (i.i.d. entries).

    ``E||P⊥ z||²/C`` at checkpoint t is ``((C-1)/C) Σ_k λ_k [ρ² (1 - a_k(t))² + σ0² a_k(t)²]``;
    ``logit_rms`` is the square root of its mean over checkpoints, ``max_abs_logit`` is 3 times
    the largest per-checkpoint rms (a Gaussian 3-sigma value).

    Examples
    --------
    >>> dg = expected_logit_diagnostics([1.0, 0.5], 2, 0.1, 0.1, 1.0, [0, 10])
    >>> round(dg.logit_rms, 4)
    0.0866
    """
    from ._checks import integer
    lam = spectrum_array(eigenvalues)
    C = integer(n_classes, "n_classes", minimum=2)
    rho = nonnegative(teacher_scale, "teacher_scale")
    s0 = nonnegative(init_scale, "init_scale")
    F = _factors(lam, C, loss, lr, steps, dynamics)
    ms = (C - 1) / C * ((rho**2 * (1 - F) ** 2 + s0**2 * F**2) @ lam)
    rms = np.sqrt(ms)
    return _report(rms, 3.0 * float(rms.max()), symmetric_data)
