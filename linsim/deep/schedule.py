"""Checkpoint schedules: at which optimizer steps a deep-net ensemble is evaluated.

A schedule maps ``(steps, steps_per_epoch, n_checkpoints)`` to a sorted, duplicate-free
int64 array of step counts that starts at 0 (the initialization) and ends at ``steps``.
Step ``s`` means "after ``s`` optimizer updates".

``log``
    Step 0 plus ``n_checkpoints`` log-spaced integer steps in ``[1, steps]`` — exactly
    :func:`linsim.ensemble.checkpoint_steps`, the schedule of the closed-form solvers.
``study``
    The deep-network study's schedule, dense early and sparse late.  With ``E`` batches per
    epoch: step 0; 5 per epoch in epochs 0–4, the steps ``e E + 1 + floor(j E / 5)``,
    ``j = 0..4`` (after the first batch of each fifth of the epoch; fewer when ``E < 5``);
    then the end of epoch ``e`` (step ``(e + 1) E``) for every epoch 5–25, every 4th epoch
    in 26–65 (28, 32, ..., 64) and every 15th after 65 (75, 90, ...); plus the last step.
    Steps beyond ``steps`` are dropped.  Over 200 epochs this gives 1 + 25 + 21 + 10 + 9 + 1
    = 67 checkpoints at any batch size with ``E >= 5``, the study's count at batch size 200.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from linsim.ensemble import checkpoint_steps
from linsim.registry import Registry

__all__ = ["CHECKPOINT_SCHEDULES", "checkpoints", "log_schedule", "study_schedule"]


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def log_schedule(steps: int, steps_per_epoch: int, n_checkpoints: int) -> np.ndarray:
    """Step 0 plus log-spaced steps (see the module docstring); ``steps_per_epoch`` unused.

    Examples
    --------
    >>> log_schedule(100, 10, 3).tolist()
    [0, 1, 10, 100]
    """
    _check_int("steps_per_epoch", steps_per_epoch, 1)
    return checkpoint_steps(steps, n_checkpoints)


def study_schedule(steps: int, steps_per_epoch: int, n_checkpoints: int | None = None) -> np.ndarray:
    """The study's epoch-based schedule (see the module docstring); ``n_checkpoints`` unused.

    Examples
    --------
    >>> s = study_schedule(200 * 250, 250)      # batch size 200 on 50 000 samples, 200 epochs
    >>> len(s), s[:4].tolist(), s[-2:].tolist()
    (67, [0, 1, 51, 101], [49000, 50000])
    """
    steps = _check_int("steps", steps, 0)
    E = _check_int("steps_per_epoch", steps_per_epoch, 1)
    marks = [0]
    for e in range(5):
        marks.extend(e * E + 1 + (j * E) // 5 for j in range(5))
    epoch_ends = list(range(5, 26)) + list(range(28, 65, 4))
    n_epochs = -(-steps // E)
    epoch_ends += list(range(75, max(n_epochs, 75), 15))
    marks.extend((e + 1) * E for e in epoch_ends)
    marks.append(steps)
    arr = np.unique(np.asarray(marks, dtype=np.int64))
    return arr[arr <= steps]


#: Registry of checkpoint schedules: name -> f(steps, steps_per_epoch, n_checkpoints).
CHECKPOINT_SCHEDULES: Registry[Callable[[int, int, int], np.ndarray]] = Registry(
    "checkpoint schedule", callable_only=True, entries={"log": log_schedule, "study": study_schedule})


def checkpoints(schedule: str, steps: int, steps_per_epoch: int, n_checkpoints: int) -> np.ndarray:
    """Checkpoint steps of the named schedule.

    Parameters
    ----------
    schedule : {"log", "study"}
    steps : int
        Total optimizer steps ``T`` (>= 0).
    steps_per_epoch : int
        Batches per epoch (``n_train // batch_size``; the last partial batch is dropped).
    n_checkpoints : int
        Number of log-spaced checkpoints after step 0 (``log`` only).

    Returns
    -------
    array (K,) int64, sorted, starting at 0 and ending at ``steps``.

    Examples
    --------
    >>> checkpoints("study", 12, 4, 5).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    """
    return CHECKPOINT_SCHEDULES[schedule](steps, steps_per_epoch, n_checkpoints)
