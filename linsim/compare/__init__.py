"""Compare the linear theory with trained deep networks (issue 8).

Modules (each one idea; names re-exported here)
-----------------------------------------------
projection   explained stress of models projected into a basis fitted on other models
controls     the theory's controls (c, rho/sigma0, T) measured on deep nets, its k_chi there
counterparts linear models, NTK kernel machines and random-feature models on the same inputs
findings     the study's findings (a)-(d) measured on a grid
joint        joint InPCA of deep and linear models, the four explained-stress views
progress     progress along the uniform -> one-hot geodesic, equal-progress resampling, tubes
"""

from .controls import (ControlRow, fitted_decay, input_spectrum, logit_ratio, measured_k_chi, predicted_k_chi,
                       theory_controls)
from .counterparts import (COUNTERPARTS, CounterpartEntry, CounterpartProblem, NTKRecord, build_counterparts,
                           precomputed_kernel_gd, problem_from_deep, register_counterpart)
from .findings import FACTORS, Findings, ProgressStudy, differing_factor, measure_findings, progress_study
from .joint import STRESS_VIEWS, JointEmbedding, StressViews, joint_embedding
from .progress import (checkpoint_progress, equal_progress, geodesic_ends, geodesic_gap,
                       progress_distance_tensor, progress_grid, steps_to_progress, tube_width)
from .projection import projected_stress, projected_stress_from_fit, signed_gram

__all__ = [
    "FACTORS", "Findings", "ProgressStudy", "differing_factor", "measure_findings", "progress_study",
    "COUNTERPARTS", "ControlRow", "CounterpartEntry", "CounterpartProblem", "NTKRecord", "build_counterparts",
    "fitted_decay", "input_spectrum", "logit_ratio", "measured_k_chi", "predicted_k_chi", "problem_from_deep",
    "register_counterpart", "theory_controls",
    "STRESS_VIEWS", "JointEmbedding", "StressViews", "joint_embedding",
    "checkpoint_progress", "equal_progress", "geodesic_ends", "geodesic_gap", "precomputed_kernel_gd",
    "progress_distance_tensor", "progress_grid", "projected_stress", "projected_stress_from_fit",
    "signed_gram", "steps_to_progress", "tube_width",
]
