"""How far an ensemble is from the small-logit regime where the quadratic theory holds.

The quadratic theory replaces the Bhattacharyya distance by ``(1/8C)||P⊥ δz||²``. The exact per-sample
distance is ``(1/8) δzᵀ H(m) δz + O(δz⁴)`` with the softmax Hessian ``H`` at the midpoint ``m``
(derivations.md §1), so the relative error of a distance is of first order in the logits through
``H(m) - H(0)``; that first-order part is a third sample moment of the data and vanishes for data sets
closed under ``x -> -x``, leaving a second-order error. Measured on exact simulations (tests and
derivations.md §6) the relative error of the top-10 InPCA eigenvalues is typically below
``0.15 z + 0.5 z²`` (generic data) and ``0.5 z²`` (sign-symmetric data), with ``z`` the largest
rms centred logit over the ensemble's points. That is the ``predicted_rel_error`` reported here.
It is a calibrated typical value, not a bound: on generic data with n = 64 samples it held in
about 95% of draws and the worst draw exceeded it by 1.5-1.8x; the first-order coefficient is a
sampling effect of the data's third moments and shrinks with n (about 0.1, 0.055, 0.03 at
n = 64, 256, 1024), so for large n it is conservative.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array, nonnegative, spectrum_array
from .quadratic import _check_weights, effective_rates, mode_factors

__all__ = ["logit_diagnostics", "expected_logit_diagnostics", "predicted_relative_error",
           "TRUST_THRESHOLD"]

#: Default largest predicted relative eigenvalue error for which a prediction is called trustworthy.
TRUST_THRESHOLD = 0.05


def predicted_relative_error(rms_logit: float, symmetric_data: bool = False) -> float:
    """Calibrated typical value (not a bound) of the relative error of the leading InPCA eigenvalues: ``a z + 0.5 z²``.

    ``a = 0.15`` for generic data, ``0`` for data sets closed under ``x -> -x`` (``symmetric_data``).
    """
    z = nonnegative(rms_logit, "rms_logit")
    return (0.0 if symmetric_data else 0.15 * z) + 0.5 * z * z


def _report(rms_per_point, max_abs, symmetric_data, threshold):
    z = float(np.max(rms_per_point))
    err = predicted_relative_error(z, symmetric_data)
    return {
        "rms_logit": z,
        "mean_rms_logit": float(np.sqrt(np.mean(rms_per_point**2))),
        "max_abs_logit": None if max_abs is None else float(max_abs),
        "predicted_rel_error": err,
        "threshold": float(threshold),
        "trustworthy": bool(err <= threshold),
    }


def logit_diagnostics(eigenvalues, teacher, init, lr, steps, *, dynamics="gd", loss="squared",
                      inputs=None, symmetric_data=False, threshold=TRUST_THRESHOLD) -> dict:
    """Small-logit diagnostics for one ensemble draw.

    Parameters are those of :func:`theory.quadratic_spectrum`; ``inputs`` (n, d) in the eigenbasis is
    optional and enables ``max_abs_logit``.

    Returns
    -------
    dict with keys
        ``rms_logit``: max over points of ``sqrt(mean_i ||P⊥ z_i||² / C)`` (centred logits; softmax
        ignores the class mean); ``mean_rms_logit``: rms over points; ``max_abs_logit``: max over
        points, samples and classes of ``|P⊥ z|`` (None without inputs); ``predicted_rel_error``;
        ``threshold``; ``trustworthy`` (``predicted_rel_error <= threshold``).
    """
    lam, Wt, W0 = _check_weights(eigenvalues, teacher, init)
    C = Wt.shape[0]
    F = mode_factors(effective_rates(lam, C, loss), steps, lr=lr if dynamics == "gd" else None,
                     dynamics=dynamics)
    W = Wt[None, None] + (W0 - Wt[None])[:, None] * F[None, :, None, :]  # (R, K, C, d)
    Wc = W - W.mean(axis=2, keepdims=True)
    rms = np.sqrt(np.einsum("rkcd,d->rk", Wc**2, lam) / C).ravel()
    max_abs = None
    if inputs is not None:
        X = as_float_array(inputs, "inputs", ndim=2)
        if X.shape[1] != lam.size:
            raise ValueError(f"inputs must have shape (n, d={lam.size}), got {X.shape}")
        max_abs = max(float(np.abs(np.einsum("kcd,nd->knc", Wc[r], X)).max()) for r in range(W.shape[0]))
    return _report(rms, max_abs, symmetric_data, threshold)


def expected_logit_diagnostics(eigenvalues, n_classes, teacher_scale, init_scale, lr, steps, *,
                               dynamics="gd", loss="squared", symmetric_data=False,
                               threshold=TRUST_THRESHOLD) -> dict:
    """Diagnostics in expectation over ``W* ~ N(0, ρ²)``, ``W0 ~ N(0, σ0²)`` (i.i.d. entries).

    ``E||P⊥ z||²/C`` at checkpoint t is ``((C-1)/C) Σ_k λ_k [ρ² (1 - a_k(t))² + σ0² a_k(t)²]``.
    ``max_abs_logit`` is reported as 3 times the largest rms (a Gaussian 3-sigma value).
    """
    lam = spectrum_array(eigenvalues)
    C = int(n_classes)
    rho = nonnegative(teacher_scale, "teacher_scale")
    s0 = nonnegative(init_scale, "init_scale")
    F = mode_factors(effective_rates(lam, C, loss), steps, lr=lr if dynamics == "gd" else None,
                     dynamics=dynamics)
    ms = (C - 1) / C * ((rho**2 * (1 - F) ** 2 + s0**2 * F**2) @ lam)
    rms = np.sqrt(ms)
    return _report(rms, 3.0 * float(rms.max()), symmetric_data, threshold)
