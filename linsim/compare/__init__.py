"""Compare the linear theory with trained deep networks (issue 8).

Modules (each one idea; names re-exported here)
-----------------------------------------------
projection   explained stress of models projected into a basis fitted on other models
controls     the theory's controls (c, rho/sigma0, T) measured on deep nets, its k_chi there
counterparts linear models, NTK kernel machines and random-feature models on the same inputs
findings     the study's findings (a)-(d) measured on a grid
figures      figures drawn on given or free-standing axes (no pyplot)
joint        joint InPCA of deep and linear models, the four explained-stress views
pipeline     one comparison: counterparts, joint embedding, findings, controls
progress     progress along the uniform -> one-hot geodesic, equal-progress resampling, tubes
report       compare.nc, the figures and the one-page markdown report
command      the `linsim compare` subcommand (add_arguments, run)
"""

from .controls import (ControlRow, fitted_decay, input_spectrum, logit_ratio, measured_k_chi, predicted_k_chi,
                       theory_controls)
from .counterparts import (COUNTERPARTS, CounterpartEntry, CounterpartProblem, NTKRecord, build_counterparts,
                           precomputed_kernel_gd, problem_from_deep, register_counterpart)
from .findings import FACTORS, Findings, ProgressStudy, differing_factor, measure_findings, progress_study
from .figures import dendrogram_axes, embedding_axes, phase_axes, progress_axes, stress_axes
from .joint import STRESS_VIEWS, JointEmbedding, StressViews, joint_embedding
from .pipeline import CompareConfig, Comparison, compare, config_names, load_grid_results
from .progress import (checkpoint_progress, equal_progress, geodesic_ends, geodesic_gap,
                       progress_distance_tensor, progress_grid, reached, steps_to_progress, tube_width)
from .projection import projected_stress, projected_stress_from_fit, signed_gram
from .report import FIGURES, comparison_dataset, findings_from_dataset, markdown_report, write_report

__all__ = [
    "CompareConfig", "Comparison", "FIGURES", "compare", "comparison_dataset", "config_names", "dendrogram_axes",
    "embedding_axes", "findings_from_dataset", "load_grid_results", "markdown_report", "phase_axes",
    "progress_axes", "reached",
    "stress_axes", "write_report",
    "FACTORS", "Findings", "ProgressStudy", "differing_factor", "measure_findings", "progress_study",
    "COUNTERPARTS", "ControlRow", "CounterpartEntry", "CounterpartProblem", "NTKRecord", "build_counterparts",
    "fitted_decay", "input_spectrum", "logit_ratio", "measured_k_chi", "predicted_k_chi", "problem_from_deep",
    "register_counterpart", "theory_controls",
    "STRESS_VIEWS", "JointEmbedding", "StressViews", "joint_embedding",
    "checkpoint_progress", "equal_progress", "geodesic_ends", "geodesic_gap", "precomputed_kernel_gd",
    "progress_distance_tensor", "progress_grid", "projected_stress", "projected_stress_from_fit",
    "signed_gram", "steps_to_progress", "tube_width",
]
