"""Training trajectories solved exactly (closed form) or by trusted integrators.

Every solver returns outputs of shape (R, K, n, C) (runs, checkpoints, samples, outputs).

Modules
-------
linear      linear model, squared loss: closed-form GD and gradient flow
kernel      kernel machines (linear, RBF, arc-cosine, ReLU NTK): function-space GD / flow
softmax     linear model, softmax cross-entropy: ODE (solve_ivp) and explicit GD
two_layer   two-layer linear network: Saxe closed form, ODE, explicit GD
sgd         minibatch SGD of the linear model and its exact mean / covariance recursions
_checks     shared input validation and the GD stability constants (private)
_stepping   the one "step until the next checkpoint" loop (private)
_ode        the one checked solve_ivp call (private)
"""

from linsim.solvers._checks import MAX_STEPS, ODEFailureError
from linsim.solvers.kernel import (
    KERNELS,
    KernelDynamics,
    gp_prior_outputs,
    kernel_flow,
    kernel_gd,
    kernel_matrix,
    register_kernel,
)
from linsim.solvers.linear import (
    LinearDynamics,
    linear_flow,
    linear_gd,
    linear_gd_explicit,
    linear_predictor,
    mode_factors,
)
from linsim.solvers.sgd import sample_batches, sgd_moments, sgd_simulate
from linsim.solvers.softmax import (
    cross_entropy_grad,
    cross_entropy_loss,
    softmax_flow,
    softmax_flow_weights,
    softmax_gd,
    softmax_probs,
)
from linsim.solvers.two_layer import (
    aligned_balanced_init,
    aligned_modes,
    saxe_mode_strength,
    two_layer_closed_form,
    two_layer_flow,
    two_layer_flow_weights,
    two_layer_gd,
    two_layer_grads,
)

__all__ = [
    "KERNELS",
    "KernelDynamics",
    "LinearDynamics",
    "MAX_STEPS",
    "ODEFailureError",
    "aligned_balanced_init",
    "aligned_modes",
    "cross_entropy_grad",
    "cross_entropy_loss",
    "gp_prior_outputs",
    "kernel_flow",
    "kernel_gd",
    "kernel_matrix",
    "linear_flow",
    "linear_gd",
    "linear_gd_explicit",
    "linear_predictor",
    "mode_factors",
    "register_kernel",
    "sample_batches",
    "saxe_mode_strength",
    "sgd_moments",
    "sgd_simulate",
    "softmax_flow",
    "softmax_flow_weights",
    "softmax_gd",
    "softmax_probs",
    "two_layer_closed_form",
    "two_layer_flow",
    "two_layer_flow_weights",
    "two_layer_gd",
    "two_layer_grads",
]
