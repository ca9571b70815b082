"""Linear counterparts of deep networks: models the theory describes, on the same inputs.

For a trained deep configuration (its training set, its evaluation inputs and its checkpoint
steps) this module builds four :class:`~linsim.trajectory.Trajectory` objects that the linear
theory describes exactly, evaluated on **exactly the same evaluation inputs at the same
checkpoint steps**:

``linear``   the linear model ``W x + b`` on the squared loss toward one-hot targets, closed-form
             GD (:func:`linsim.solvers.linear_gd`);
``softmax``  the same linear model on softmax cross-entropy toward the labels, explicit GD
             (:func:`linsim.solvers.softmax.softmax_gd`);
``ntk``      the kernel machine with the network's **empirical NTK at initialization**
             (:func:`linsim.deep.ntk.empirical_ntk`, class-averaged), started from the network's own
             initial outputs: the lazy-regime prediction of that network (squared loss);
``random_features``  the linear model on fixed random ReLU features ``relu(A x) / sqrt(m)``.

Conventions
-----------
* Inputs are the flattened ``(n, d)`` arrays the trainer stores (after its normalization); a
  constant feature 1 is appended for the bias of ``linear``, ``softmax`` and
  ``random_features``.
* Targets of the squared-loss models are one-hot vectors; logits are the model outputs and the
  trajectories use the ``softmax`` output model, like the deep nets.
* Learning rate: each counterpart runs GD at ``lr_scale / lambda_max`` of its own curvature
  (``lambda_max`` of ``X^T X / n``, of ``Theta / n``, of the feature covariance; for softmax the
  cross-entropy curvature bound ``lambda_max / 2``), ``lr_scale = 1`` by default -- the standard
  ensemble's ``lr = 1 / lambda_1``.  The deep net's own learning rate is not transferable (a
  different parametrization), the checkpoint *steps* are.
* Initialization: ``R`` runs with weights i.i.d. ``N(0, sigma^2)``; ``sigma`` is chosen so that
  the initial logits have the same RMS as the deep nets' initial logits (``init_rms``), so the
  output-to-weight ratio of the counterparts matches the networks'.
* Seeds: every random draw comes from ``numpy.random.SeedSequence(seed)`` (spawned per
  counterpart), so the same seed gives the same numbers.
"""
from __future__ import annotations

import numpy as np

from linsim.solvers.kernel import KernelDynamics

__all__ = ["precomputed_kernel_gd"]


class _GramLookup:
    """A kernel "function" of integer-valued inputs that reads a precomputed Gram matrix.

    :class:`~linsim.solvers.kernel.KernelDynamics` accepts a callable kernel ``k(A, B)``; here the
    "inputs" are indices (as an ``(p, 1)`` float column): ``0..n-1`` name the training points
    and ``n..n+m-1`` the cross (evaluation) points, and the call returns the matching block of
    ``K_train`` (n, n) or ``K_cross`` (m, n).  This lets the kernel solver run on any kernel
    computed elsewhere (e.g. an empirical NTK) without changing it.
    """

    def __init__(self, K_train, K_cross=None):
        self.K_train = K_train
        self.K_cross = K_cross
        self.n = K_train.shape[0]

    def __call__(self, A, B):
        a = np.rint(A[:, 0]).astype(np.int64)
        b = np.rint(B[:, 0]).astype(np.int64)
        if np.any(b >= self.n):
            raise ValueError("the second kernel argument must name training points")
        if np.all(a < self.n):
            return self.K_train[np.ix_(a, b)]
        if self.K_cross is None or np.any(a < self.n):
            raise ValueError("evaluation points need K_cross")
        return self.K_cross[np.ix_(a - self.n, b)]


def precomputed_kernel_gd(K_train, Y, F0, lr, steps, *, K_cross=None, f0_cross=None):
    """Closed-form GD of a kernel machine given its Gram matrices (squared loss).

    ``F_{t+1} = F_t - lr (K / n) (F_t - Y)`` on the training outputs, and at other inputs
    ``f_{t+1}(x) = f_t(x) - (lr / n) k(x, X) (F_t - Y)`` (the normalization of
    :mod:`linsim.solvers.kernel`, which does the work).

    Parameters
    ----------
    K_train : array (n, n)
        Symmetric positive semi-definite kernel on the training inputs.
    Y : array (n, C)
        Training targets.
    F0 : array (R, n, C)
        Initial outputs on the training inputs.
    lr : float
        Learning rate, below ``2 / lambda_max(K / n)``.
    steps : sequence of K non-negative ints
    K_cross : array (m, n), optional
        Kernel between ``m`` evaluation inputs and the training inputs; then ``f0_cross``
        (R, m, C) must be given and the outputs are on the evaluation inputs.

    Returns
    -------
    numpy.ndarray float64 (R, K, n or m, C)

    Examples
    --------
    With the linear kernel this is the linear model's closed form:

    >>> import numpy as np
    >>> from linsim.solvers import linear_gd
    >>> rng = np.random.default_rng(0)
    >>> X, Y, W0 = rng.normal(size=(5, 2)), rng.normal(size=(5, 3)), rng.normal(size=(1, 3, 2))
    >>> F = precomputed_kernel_gd(X @ X.T, Y, X @ W0[0].T[None], 0.5, [0, 3])
    >>> bool(np.allclose(F, linear_gd(X, Y, W0, 0.5, [0, 3])))
    True
    """
    K_train = np.asarray(K_train, dtype=np.float64)
    if K_train.ndim != 2 or K_train.shape[0] != K_train.shape[1]:
        raise ValueError(f"K_train must be a square (n, n) matrix; got shape {K_train.shape}")
    n = K_train.shape[0]
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"Y must have shape (n, C) with n = {n}; got {Y.shape}")
    if K_cross is not None:
        K_cross = np.asarray(K_cross, dtype=np.float64)
        if K_cross.ndim != 2 or K_cross.shape[1] != n:
            raise ValueError(f"K_cross must have shape (m, n) with n = {n}; got {K_cross.shape}")
    lookup = _GramLookup(K_train, K_cross)
    idx_train = np.arange(n, dtype=np.float64)[:, None]
    dyn = KernelDynamics(idx_train, Y, kind=lookup)
    if K_cross is None:
        return dyn.train_outputs(F0, steps, lr)
    if f0_cross is None:
        raise ValueError("f0_cross (initial outputs on the evaluation inputs) is required with K_cross")
    idx_cross = n + np.arange(K_cross.shape[0], dtype=np.float64)[:, None]
    return dyn.test_outputs(F0, f0_cross, idx_cross, steps, lr)
