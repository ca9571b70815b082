"""Analytic predictions for the InPCA spectrum of linear-model training ensembles.

This package uses sympy and numpy (and scipy) only; it never imports the simulators in ``linsim``.
Derivations: ``theory/derivations.md``; symbolic checks of each step: :mod:`theory.symbolic`.
"""

from .asymptotics import (active_modes, critical_ratio, geometric_spectrum, k_chi_init_estimate,
                          k_chi_teacher_bound, phase_boundary, phase_map, teacher_decay_bound,
                          teacher_decay_ratio)
from .ensemble import (expected_explained_stress, expected_frobenius_sq, expected_spectrum,
                       mean_field_blocks, mode_profiles)
from .quadratic import (class_contrast_basis, effective_rates, embedding_points, gram_spectrum,
                        mode_factors, quadratic_spectrum, quadratic_spectrum_flow)
from .stress import explained_stress, k_chi
from .validity import (TRUST_THRESHOLD, expected_logit_diagnostics, logit_diagnostics,
                       predicted_relative_error)
from .variants import (kernel_quadratic_spectrum, sgd_expected_gram, sgd_minibatch_second_moment,
                       sgd_quadratic_spectrum)

__all__ = [
    "active_modes", "critical_ratio", "geometric_spectrum", "k_chi_init_estimate", "k_chi_teacher_bound",
    "phase_boundary", "phase_map", "teacher_decay_bound", "teacher_decay_ratio",
    "expected_explained_stress", "expected_frobenius_sq", "expected_spectrum", "mean_field_blocks",
    "mode_profiles", "class_contrast_basis", "effective_rates", "embedding_points", "gram_spectrum",
    "mode_factors", "quadratic_spectrum", "quadratic_spectrum_flow", "explained_stress", "k_chi",
    "TRUST_THRESHOLD", "expected_logit_diagnostics", "logit_diagnostics", "predicted_relative_error",
    "kernel_quadratic_spectrum", "sgd_expected_gram", "sgd_minibatch_second_moment",
    "sgd_quadratic_spectrum",
]
