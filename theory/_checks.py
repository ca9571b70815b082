"""Argument validation shared by the theory modules (one idea: refuse bad input loudly)."""

from __future__ import annotations

import numpy as np


#: Largest step count accepted: beyond it int64 arithmetic and float64 exponents lose meaning.
MAX_STEPS = 2**53


def _real(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real; got a complex array")
    if arr.dtype == bool:
        raise ValueError(f"{name} must be numeric; got booleans")
    if arr.dtype.kind not in "iuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}") from None
    return arr


def as_float_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """Return ``x`` as a float64 array, raising if it is complex, non-finite or has the wrong rank."""
    arr = _real(x, name).astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def _real_scalar(x, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or np.ndim(x) != 0 or np.iscomplexobj(x):
        raise ValueError(f"{name} must be a real number, got {x!r}")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {x!r}") from None


def integer(x, name: str, minimum: int | None = None) -> int:
    """Check ``x`` is an integer (an int, or a float with an integer value) and ``>= minimum``.

    A non-integer (e.g. ``n_classes=2.7``) is refused rather than truncated.
    """
    if isinstance(x, (bool, np.bool_)) or np.ndim(x) != 0 or np.iscomplexobj(x):
        raise ValueError(f"{name} must be an integer, got {x!r}")
    if isinstance(x, (int, np.integer)):
        v = int(x)
    else:
        try:
            f = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, got {x!r}") from None
        if not np.isfinite(f) or f != round(f):
            raise ValueError(f"{name} must be an integer, got {x!r}")
        v = int(round(f))
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v}")
    return v


def nonnegative(x: float, name: str) -> float:
    """Check a scalar is finite and >= 0."""
    x = _real_scalar(x, name)
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {x}")
    return x


def positive(x: float, name: str) -> float:
    """Check a scalar is finite and > 0."""
    x = _real_scalar(x, name)
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x}")
    return x


def spectrum_array(eigenvalues, name: str = "eigenvalues") -> np.ndarray:
    """Eigenvalues of a correlation (or kernel) matrix: 1-D, finite, >= 0, not all zero."""
    lam = as_float_array(eigenvalues, name, ndim=1)
    if lam.size == 0:
        raise ValueError(f"{name} is empty")
    if np.any(lam < 0):
        raise ValueError(f"{name} must be >= 0 (a correlation spectrum); min is {lam.min()}")
    return lam


def check_lr(lr: float, rates: np.ndarray, name: str = "lr") -> float:
    """Learning rate must satisfy 0 < lr < 2 / max(rate) (GD stability)."""
    lr = positive(lr, name)
    top = float(np.max(rates))
    if top > 0 and lr * top >= 2.0:
        raise ValueError(
            f"{name}={lr} is unstable: lr * max rate = {lr * top:.4g} >= 2 (need lr < {2.0 / top:.4g})"
        )
    return lr


def steps_array(steps, name: str = "steps") -> np.ndarray:
    """Checkpoint step counts: 1-D non-negative integers up to ``MAX_STEPS`` (no silent wrap-around),
    each listed once (:func:`distinct_checkpoints`)."""
    arr = _real(steps, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr.astype(np.float64))):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (T < 0 is meaningless), min is {arr.min()}")
    if not np.all(np.asarray(arr, dtype=np.float64) == np.round(np.asarray(arr, dtype=np.float64))):
        raise ValueError(f"{name} must be integers (GD step counts)")
    big = np.flatnonzero(np.asarray(arr, dtype=np.float64) > MAX_STEPS)
    if big.size:
        raise ValueError(f"{name}[{big[0]}] = {arr[big[0]]} exceeds the largest supported step count 2**53")
    distinct_checkpoints(arr, name)
    return arr.astype(np.int64)


def distinct_checkpoints(checkpoints, name: str = "steps") -> None:
    """Refuse a checkpoint schedule that lists a step (or time) twice.

    A repeated checkpoint is a repeated point of the embedding: it would be weighted twice in
    the explained stress, while a simulated trajectory (whose schedule drops rounding
    duplicates) has it once, so theory and simulation would disagree without a word.
    """
    arr = np.asarray(checkpoints, dtype=np.float64).ravel()
    order = np.argsort(arr, kind="stable")
    same = np.flatnonzero(arr[order][1:] == arr[order][:-1])
    if same.size:
        i, j = sorted((int(order[same[0]]), int(order[same[0] + 1])))
        raise ValueError(f"{name}[{j}] = {arr[j]:g} repeats {name}[{i}]: a checkpoint schedule must list "
                         f"each checkpoint once (a repeated one is a repeated point of the embedding)")


def times_array(times, name: str = "times") -> np.ndarray:
    """Gradient-flow times: 1-D, finite, >= 0, each listed once (:func:`distinct_checkpoints`)."""
    arr = as_float_array(times, name, ndim=1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (T < 0 is meaningless), min is {arr.min()}")
    distinct_checkpoints(arr, name)
    return arr
