"""Compare the linear theory with trained deep networks (issue 8).

Modules (each one idea; names re-exported here)
-----------------------------------------------
projection   explained stress of models projected into a basis fitted on other models
counterparts linear models, NTK kernel machines and random-feature models on the same inputs
joint        joint InPCA of deep and linear models, the four explained-stress views
progress     progress along the uniform -> one-hot geodesic, equal-progress resampling, tubes
"""

from .counterparts import precomputed_kernel_gd
from .joint import STRESS_VIEWS, JointEmbedding, StressViews, joint_embedding
from .progress import (checkpoint_progress, equal_progress, geodesic_ends, geodesic_gap,
                       progress_distance_tensor, progress_grid, steps_to_progress, tube_width)
from .projection import projected_stress, projected_stress_from_fit, signed_gram

__all__ = [
    "STRESS_VIEWS", "JointEmbedding", "StressViews", "joint_embedding",
    "checkpoint_progress", "equal_progress", "geodesic_ends", "geodesic_gap", "precomputed_kernel_gd",
    "progress_distance_tensor", "progress_grid", "projected_stress", "projected_stress_from_fit",
    "signed_gram", "steps_to_progress", "tube_width",
]
