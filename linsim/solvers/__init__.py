"""Training trajectories solved exactly (closed form) or by trusted integrators.

Every solver returns outputs of shape (R, K, n, C) (runs, checkpoints, samples, outputs).

Modules
-------
linear      linear model, squared loss: closed-form GD and gradient flow
kernel      kernel machines (linear, RBF, arc-cosine, ReLU NTK): function-space GD / flow
softmax     linear model, softmax cross-entropy: ODE (solve_ivp) and explicit GD
two_layer   two-layer linear network: Saxe closed form, ODE, explicit GD
sgd         minibatch SGD of the linear model and its exact mean / covariance recursions
_checks     shared input validation (private)
"""

from linsim.solvers._checks import ODEFailureError
from linsim.solvers.linear import (
    LinearDynamics,
    linear_flow,
    linear_gd,
    linear_gd_explicit,
    linear_predictor,
    mode_factors,
)

__all__ = [
    "LinearDynamics",
    "ODEFailureError",
    "linear_flow",
    "linear_gd",
    "linear_gd_explicit",
    "linear_predictor",
    "mode_factors",
]
