"""Input validation shared by the solvers: shapes, finiteness, step lists, learning rates.

Every function raises :class:`ValueError` (bad value or shape) or :class:`TypeError`
(wrong kind of object) with a message that names the argument and the problem.
"""

from __future__ import annotations

import numpy as np


#: Largest accepted step count: every integer up to ``2**53`` is exact in float64, which the
#: closed forms use for ``t`` (``(1 - lr lambda)^t = exp(t log|1 - lr lambda|)``).
MAX_STEPS = 2**53


def refuse_complex(name: str, a) -> None:
    """Raise ``TypeError`` if ``a`` holds complex numbers (their imaginary part would be lost)."""
    if np.iscomplexobj(a):
        raise TypeError(
            f"{name} is complex; linsim works with real numbers only (pass the real part "
            "explicitly if that is what you mean)"
        )


class ODEFailureError(RuntimeError):
    """An ODE integration (``scipy.integrate.solve_ivp``) did not reach the requested time."""


def as_matrix(name: str, a, *, ndim: int = 2) -> np.ndarray:
    """``a`` as a finite float64 array with ``ndim`` dimensions, else a clear error."""
    refuse_complex(name, a)
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array; got {type(a).__name__}") from exc
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} contains NaN or inf (first at index {idx})")
    return arr


def check_xy(X, Y) -> tuple[np.ndarray, np.ndarray]:
    """Validate training inputs ``X`` (n, d) and targets ``Y`` (n, C)."""
    X = as_matrix("X", X)
    Y = as_matrix("Y", Y)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must have at least one sample and one feature; got shape {X.shape}")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"Y must have one row per sample of X: X has n={X.shape[0]} rows, Y has shape {Y.shape}"
        )
    if Y.shape[1] == 0:
        raise ValueError("Y must have at least one output column (C >= 1)")
    return X, Y


def check_w0(W0, n_out: int, d: int, name: str = "W0") -> np.ndarray:
    """Validate initial weights of shape (R, C, d); a single (C, d) matrix is refused."""
    W0 = as_matrix(name, W0, ndim=3)
    if W0.shape[1:] != (n_out, d):
        raise ValueError(
            f"{name} must have shape (R, C, d) = (R, {n_out}, {d}); got {W0.shape}"
        )
    if W0.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one run (R >= 1)")
    return W0


def check_inputs(inputs, d: int, name: str = "inputs") -> np.ndarray:
    """Validate evaluation inputs of shape (m, d)."""
    Z = as_matrix(name, inputs)
    if Z.shape[1] != d:
        raise ValueError(f"{name} must have d={d} columns like X; got shape {Z.shape}")
    return Z


def check_steps(steps, name: str = "steps") -> np.ndarray:
    """A 1-D int64 array of step counts in ``[0, MAX_STEPS]`` (any order, repeats allowed).

    Integral floats are accepted; booleans, complex numbers, fractions, NaN/inf and counts
    beyond :data:`MAX_STEPS` (``2**53``; e.g. a uint64 ``2**64 - 1`` that would wrap to -1,
    or ``1e19`` that would overflow int64) are refused with a message naming the first bad
    entry.

    Examples
    --------
    >>> check_steps([0, 10.0, 3]).tolist()
    [0, 10, 3]
    >>> check_steps(np.array([1, 2**64 - 1], dtype=np.uint64))
    Traceback (most recent call last):
    ...
    ValueError: steps[1] = 18446744073709551615 exceeds the largest supported step count 2**53 = 9007199254740992
    """
    refuse_complex(name, steps)
    arr = np.asarray(steps)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of integers; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must list at least one step count")
    if arr.dtype == object:  # Python ints beyond 64 bits, or mixed objects
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
            raise TypeError(f"{name} must be integers; got {arr[:5]}...")
        big = [i for i, v in enumerate(arr) if v > MAX_STEPS or v < 0]
        if big:
            i = big[0]
            raise ValueError(f"{name}[{i}] = {arr[i]} is outside [0, 2**53 = {MAX_STEPS}]")
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must be integers, not booleans")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(np.where(np.isfinite(arr), arr, 0.0)))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(f"{name} must be integers; {name}[{i}] = {float(arr[i])!r}")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers; got dtype {arr.dtype}")
    if arr.dtype.kind != "u" and np.any(arr < 0):
        i = int(np.argmax(arr < 0))
        raise ValueError(f"{name} must be non-negative; {name}[{i}] = {arr[i]}")
    too_big = arr > MAX_STEPS
    if np.any(too_big):
        i = int(np.argmax(too_big))
        raise ValueError(
            f"{name}[{i}] = {int(arr[i]) if arr.dtype.kind in 'iu' else arr[i]} exceeds the largest "
            f"supported step count 2**53 = {MAX_STEPS}"
        )
    return arr.astype(np.int64)


def check_times(times) -> np.ndarray:
    """A 1-D float64 array of finite non-negative flow times (booleans and complex refused).

    Examples
    --------
    >>> check_times([0, 0.5]).tolist()
    [0.0, 0.5]
    """
    if np.asarray(times).dtype.kind == "b":
        raise TypeError("times must be numbers, not booleans")
    arr = as_matrix("times", times, ndim=1)
    if arr.size == 0:
        raise ValueError("times must list at least one time")
    if np.any(arr < 0):
        raise ValueError(f"times must be non-negative; got minimum {arr.min()}")
    return arr


#: GD on a quadratic with largest curvature ``lambda_max`` contracts iff ``lr * lambda_max < 2``.
SQUARED_LOSS_GD_LIMIT = 2.0
#: The softmax covariance ``diag(p) - p p^T`` has norm <= 1/2, so the cross-entropy Hessian is
#: at most ``lambda_max(Sigma) / 2`` and GD is locally stable for ``lr * lambda_max < 4``.
CROSS_ENTROPY_GD_LIMIT = 4.0


def check_lr(lr, lam_max: float, *, allow_divergence: bool = False, what: str = "lambda_max(Sigma)",
             limit: float = SQUARED_LOSS_GD_LIMIT) -> float:
    """Validate a GD learning rate against the stability limit ``limit / lam_max``.

    GD on a quadratic with curvature ``lam_max`` contracts iff ``0 < lr < 2 / lam_max``
    (``limit = 2``); ``lr == 2 / lam_max`` oscillates forever, so it is refused too.  A loss
    whose curvature is bounded by ``lam_max / 2`` (softmax cross-entropy) has ``limit = 4``.  ``lr`` must be a real
    number (a numeric string, a boolean or a complex number is refused, not converted).

    Examples
    --------
    >>> check_lr(0.5, 2.0)
    0.5
    >>> check_lr(1.0, 2.0)
    Traceback (most recent call last):
    ...
    ValueError: learning rate lr=1 is at or beyond the GD stability limit 2/lambda_max(Sigma) = 2/2 = 1; GD would not converge. Use a smaller lr or pass allow_divergence=True.
    """
    if isinstance(lr, (str, bytes, bool, np.bool_)) or np.iscomplexobj(lr):
        raise TypeError(f"lr must be a positive real number; got {lr!r}")
    try:
        lr = float(lr)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"lr must be a positive number; got {lr!r}") from exc
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number; got {lr}")
    if lam_max > 0 and not allow_divergence:
        bound = limit / lam_max
        if lr >= bound:
            raise ValueError(
                f"learning rate lr={lr:g} is at or beyond the GD stability limit "
                f"{limit:g}/{what} = {limit:g}/{lam_max:.6g} = {bound:.6g}; GD would not converge. "
                "Use a smaller lr or pass allow_divergence=True."
            )
    return lr


def rank_tolerance(eigenvalues: np.ndarray, size: int) -> float:
    """Eigenvalues at or below this are treated as exactly zero (numerical null space).

    Same rule as ``numpy.linalg.matrix_rank``: ``max(|lambda|) * size * eps``.
    """
    lam_max = float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 0.0
    return lam_max * max(size, 1) * np.finfo(np.float64).eps


def check_probabilities(name: str, Q, n: int, C: int, atol: float = 1e-8) -> np.ndarray:
    """Validate an (n, C) array of per-sample probability vectors (rows sum to 1)."""
    Q = as_matrix(name, Q)
    if Q.shape != (n, C):
        raise ValueError(f"{name} must have shape (n, C) = ({n}, {C}); got {Q.shape}")
    if np.any(Q < 0):
        i, c = np.argwhere(Q < 0)[0]
        raise ValueError(f"{name} has a negative probability at sample {i}, class {c}: {Q[i, c]}")
    sums = Q.sum(axis=1)
    bad = np.abs(sums - 1.0) > atol
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            f"{name} rows must sum to 1 (probability vectors); row {i} sums to {sums[i]:.10g}"
        )
    return Q


__all__ = [
    "CROSS_ENTROPY_GD_LIMIT",
    "MAX_STEPS",
    "SQUARED_LOSS_GD_LIMIT",
    "ODEFailureError",
    "as_matrix",
    "check_inputs",
    "check_lr",
    "check_probabilities",
    "check_steps",
    "check_times",
    "check_w0",
    "check_xy",
    "rank_tolerance",
    "refuse_complex",
]
