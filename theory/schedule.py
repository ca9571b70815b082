"""The checkpoint schedule of the standard ensemble: step 0 plus log-spaced integer GD steps.

One definition shared by the simulator (``linsim.ensemble`` re-exports it) and the theory
(phase maps and boundaries evaluate the spectrum on exactly the checkpoints a simulation uses).
"""

from __future__ import annotations

import numpy as np

__all__ = ["checkpoint_steps"]


def _nonneg_int(x, name: str) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; got {x!r} ({type(x).__name__})")
    if x < 0:
        raise ValueError(f"{name} must be >= 0; got {x}")
    return int(x)


def checkpoint_steps(steps: int, n_checkpoints: int) -> np.ndarray:
    """Step 0 plus ``n_checkpoints`` log-spaced integer steps in ``[1, steps]``, duplicates removed.

    Parameters
    ----------
    steps : int >= 0
        Number of GD steps T (the last checkpoint).
    n_checkpoints : int >= 1
        Number of log-spaced checkpoints after step 0, before duplicates from rounding
        (``rint(geomspace(1, T, n))``) are removed.

    Returns
    -------
    numpy.ndarray int64 (K,)
        Sorted, starting at 0 and ending at ``steps``; just ``[0]`` when ``steps == 0`` and
        ``[0, steps]`` when ``n_checkpoints == 1``. ``K <= n_checkpoints + 1``.

    Examples
    --------
    >>> checkpoint_steps(1000, 5)
    array([   0,    1,    6,   32,  178, 1000])
    >>> checkpoint_steps(3, 10)
    array([0, 1, 2, 3])
    """
    steps = _nonneg_int(steps, "steps")
    n_checkpoints = _nonneg_int(n_checkpoints, "n_checkpoints")
    if n_checkpoints < 1:
        raise ValueError(f"n_checkpoints must be a positive integer; got {n_checkpoints}")
    if steps == 0:
        return np.zeros(1, dtype=np.int64)
    if n_checkpoints == 1:
        return np.array([0, steps], dtype=np.int64)
    logs = np.rint(np.geomspace(1, steps, n_checkpoints)).astype(np.int64)
    return np.unique(np.concatenate([[0], logs]))
