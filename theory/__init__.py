"""Analytic predictions for the InPCA spectrum of linear-model training ensembles.

This package uses sympy, numpy and scipy only; it never imports the simulators in ``linsim``
(``linsim`` imports it: ``linsim.metrics`` re-exports :func:`explained_stress` and
:func:`k_chi`, the ensemble uses :func:`checkpoint_steps`, sweeps use :func:`in_regime`).
Derivations: ``theory/derivations.md``; symbolic checks of each step: :mod:`theory.symbolic`.
"""

from .asymptotics import (active_modes, critical_ratio, energy_terms, geometric_spectrum, k_chi_init,
                          k_chi_init_estimate, k_chi_teacher,
                          k_chi_teacher_bound, phase_boundary, phase_map, teacher_decay_bound,
                          teacher_decay_ratio)
from .ensemble import (StressCurve, expected_explained_stress, expected_frobenius_sq,
                       expected_spectrum, mean_field_blocks, mode_profiles)
from .finite_logit import (FISHER_METRICS, FiniteLogitSpectrum, finite_logit_spectrum, gd_logits,
                           segment_rule)
from .quadratic import (class_contrast_basis, effective_rates, embedding_points, gram_spectrum,
                        quadratic_spectrum, quadratic_spectrum_flow, residual_factors)
from .schedule import checkpoint_steps
from .stress import explained_stress, k_chi
from .validity import (REGIME_LOGIT_RMS, LogitDiagnostics, centred_logit_rms,
                       expected_logit_diagnostics, in_regime, logit_diagnostics,
                       predicted_relative_error)
from .variants import (kernel_quadratic_spectrum, sgd_expected_gram, sgd_feature_covariance,
                       sgd_minibatch_second_moment, sgd_quadratic_spectrum, sgd_typical_explained_stress,
                       sgd_typical_spectrum)

__all__ = [
    "active_modes", "critical_ratio", "energy_terms", "geometric_spectrum", "k_chi_init", "k_chi_init_estimate",
    "k_chi_teacher", "k_chi_teacher_bound",
    "phase_boundary", "phase_map", "teacher_decay_bound", "teacher_decay_ratio",
    "StressCurve", "expected_explained_stress", "expected_frobenius_sq", "expected_spectrum",
    "mean_field_blocks", "mode_profiles", "class_contrast_basis", "effective_rates",
    "embedding_points", "gram_spectrum", "quadratic_spectrum", "quadratic_spectrum_flow",
    "FISHER_METRICS", "FiniteLogitSpectrum", "finite_logit_spectrum", "gd_logits", "segment_rule",
    "residual_factors", "checkpoint_steps", "explained_stress", "k_chi", "REGIME_LOGIT_RMS",
    "LogitDiagnostics", "centred_logit_rms", "expected_logit_diagnostics", "in_regime",
    "logit_diagnostics", "predicted_relative_error", "kernel_quadratic_spectrum",
    "sgd_expected_gram", "sgd_minibatch_second_moment", "sgd_quadratic_spectrum",
    "sgd_feature_covariance", "sgd_typical_spectrum", "sgd_typical_explained_stress",
]
