"""Progress along the ignorance -> truth geodesic, equal-progress resampling, tubes.

The reference path of every classifier is the geodesic from the uniform model ``P0``
(``p = 1/C`` on every sample) to the one-hot model ``P*`` of the labels
(:func:`linsim.inpca.geodesic`).  All functions here use the geometry of
:mod:`linsim.inpca.geometry` (progress, distance to the geodesic, reindexing); this module
only applies it to trajectories.

Conventions
-----------
* **Progress** of a checkpoint is ``argmin_s d_B(P, gamma(s))`` on the uniform -> one-hot
  geodesic (:func:`linsim.inpca.progress`, Bhattacharyya objective), in ``[0, 1]``.
* **Equal-progress resampling**: every run is resampled at a common grid of progress values by
  slerp between neighbouring checkpoints (:func:`linsim.inpca.reindex`, first crossing for a
  non-monotone progress).  Grid values a run has not reached give its last checkpoint; either
  the grid stays inside the range every run covers (``progress_grid(rule="common")``) or the
  unreached values are masked (:func:`reached`).
* **Distance tensor** ``T[g, i, j]``: Bhattacharyya distance (mean over samples) between
  resampled models ``i`` and ``j`` at grid value ``g``.
* **Tube width** of a configuration at ``g``: distance of each seed's resampled model to the
  arithmetic mean (over seeds) of the probabilities at ``g``.
* **Distance to the geodesic** at ``g``: ``d_B(model at progress g, gamma(g))``.
"""

from __future__ import annotations

import numpy as np

from linsim.inpca import (bhattacharyya, distance_to_geodesic, one_hot_log_probs, progress,
                          reindex, uniform_log_probs)

__all__ = [
    "checkpoint_progress",
    "equal_progress",
    "geodesic_ends",
    "geodesic_gap",
    "progress_distance_tensor",
    "progress_grid",
    "reached",
    "steps_to_progress",
    "tube_width",
]


def _labels_of(traj):
    if traj.labels is None:
        raise ValueError("the trajectory has no labels: progress toward the one-hot model needs them")
    if traj.output_model != "softmax":
        raise ValueError(f"progress needs categorical (softmax) outputs; got {traj.output_model!r}")
    return traj.labels


def _log_probs64(traj):
    """float64 log-softmax of the outputs (M, n, C), whatever the outputs' dtype (float32 logits give
    log-probabilities normalized to float64 rounding, as the geometry's float64 checks expect)."""
    from scipy.special import log_softmax

    return log_softmax(traj.flat_outputs().astype(np.float64), axis=-1)


def geodesic_ends(labels, n_classes):
    """The uniform and one-hot end points ``(logp0, logp_star)``, each ``(n, C)``.

    Examples
    --------
    >>> p0, ps = geodesic_ends([0, 2], 3)
    >>> p0.shape, ps[1].tolist()
    ((2, 3), [-inf, -inf, 0.0])
    """
    labels = np.asarray(labels)
    return uniform_log_probs(labels.size, n_classes), one_hot_log_probs(labels, n_classes)


def checkpoint_progress(traj):
    """Progress and closest-point distance to the geodesic of every checkpoint of every run.

    Parameters
    ----------
    traj : Trajectory
        Softmax outputs ``(R, K, n, C)`` with labels.

    Returns
    -------
    progress : numpy.ndarray float64 (R, K), in [0, 1]
    distance : numpy.ndarray float64 (R, K), ``min_s d_B(P, gamma(s))``

    Examples
    --------
    >>> import numpy as np
    >>> from linsim.trajectory import Trajectory
    >>> t = Trajectory(np.zeros((1, 2, 3, 2)), [0, 1], labels=[0, 1, 0])
    >>> s, d = checkpoint_progress(t)   # uniform outputs sit at the start of the geodesic
    >>> s.tolist(), d.tolist()
    ([[0.0, 0.0]], [[0.0, 0.0]])
    """
    labels = _labels_of(traj)
    p0, ps = geodesic_ends(labels, traj.n_outputs)
    s, d = progress(_log_probs64(traj), p0, ps, return_distance=True)
    shape = (traj.n_runs, traj.n_checkpoints)
    return np.asarray(s).reshape(shape), np.asarray(d).reshape(shape) + 0.0  # no -0.0


def progress_grid(progress_values, n_points=50, *, lower=None, upper=None, rule="common"):
    """A grid of progress values for equal-progress resampling.

    Parameters
    ----------
    progress_values : sequence of arrays (R_i, K_i)
        Progress of every checkpoint of each trajectory (:func:`checkpoint_progress`).
    n_points : int
        Grid size ``G`` (>= 2).
    lower, upper : float, optional
        Ends of the grid (defaults from ``rule``).
    rule : {"common", "median"}
        ``"common"``: from the largest starting progress to the smallest final (maximum)
        progress over all runs, so that every run covers the whole grid.  ``"median"``: from the
        smallest starting progress to the median over the trajectories of the final progress of
        their seed-mean; grid values outside a run's own range must then be masked
        (:func:`reached`).

    Returns
    -------
    numpy.ndarray float64 (G,), increasing.

    Examples
    --------
    >>> import numpy as np
    >>> progress_grid([np.array([[0.0, 0.5, 0.9]]), np.array([[0.1, 0.7]])], 3).tolist()
    [0.1, 0.4, 0.7]
    >>> progress_grid([np.array([[0.0, 0.5, 0.9]]), np.array([[0.1, 0.2]]), np.array([[0.0, 0.6]])], 2,
    ...               rule="median").tolist()
    [0.0, 0.6]
    """
    runs = [np.asarray(p, dtype=np.float64).reshape(-1, np.shape(p)[-1]) for p in progress_values]
    if not runs:
        raise ValueError("progress_values is empty")
    if rule not in ("common", "median"):
        raise ValueError(f"rule must be 'common' or 'median'; got {rule!r}")
    if lower is not None:
        lo = float(lower)
    elif rule == "common":
        lo = max(float(r[:, 0].max()) for r in runs)
    else:
        lo = min(float(r[:, 0].min()) for r in runs)
    if upper is not None:
        hi = float(upper)
    elif rule == "common":
        hi = min(float(r.max(axis=1).min()) for r in runs)
    else:
        hi = float(np.median([r.mean(axis=0).max() for r in runs]))
    if int(n_points) < 2:
        raise ValueError(f"n_points must be >= 2; got {n_points}")
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"the runs share no progress range: need 0 <= lower < upper <= 1, got lower={lo:.4g}, "
                         f"upper={hi:.4g} (some run never gets past where another starts; pass lower/upper)")
    return np.linspace(lo, hi, int(n_points))


def reached(progress_values, grid):
    """Which grid values lie in each run's own range: ``progress[r, 0] <= grid[g] <= max_k progress[r, k]``.

    Outside it the resampled model is the run's first or last checkpoint, not a model at
    progress ``grid[g]``.

    Parameters
    ----------
    progress_values : array (R, K)
    grid : array (G,)

    Returns
    -------
    bool array (R, G)

    Examples
    --------
    >>> reached([[0.0, 0.3, 0.2], [0.2, 0.5, 0.6]], [0.1, 0.3, 0.5]).tolist()
    [[True, True, False], [False, True, True]]
    """
    p = np.asarray(progress_values, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)[None, :]
    return (g >= p[:, :1]) & (g <= p.max(axis=1)[:, None])


def equal_progress(traj, grid, progress_values=None):
    """Resample every run of a trajectory at the given progress values.

    Parameters
    ----------
    traj : Trajectory
        Softmax outputs with labels.
    grid : array (G,)
        Progress values in [0, 1].
    progress_values : array (R, K), optional
        Precomputed :func:`checkpoint_progress` (computed if omitted).

    Returns
    -------
    numpy.ndarray float64 (R, G, n, C) of log-probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from linsim.trajectory import Trajectory
    >>> z = np.zeros((1, 2, 3, 2)); z[0, 1, :, 0] = [2.0, -2.0, 2.0]
    >>> t = Trajectory(z, [0, 10], labels=[0, 1, 0])
    >>> equal_progress(t, [0.0, 0.1]).shape
    (1, 2, 3, 2)
    """
    if progress_values is None:
        progress_values = checkpoint_progress(traj)[0]
    prog = np.asarray(progress_values, dtype=np.float64)
    if prog.shape != (traj.n_runs, traj.n_checkpoints):
        raise ValueError(f"progress_values must have shape (R, K) = {(traj.n_runs, traj.n_checkpoints)}; "
                         f"got {prog.shape}")
    lp = _log_probs64(traj).reshape(traj.n_runs, traj.n_checkpoints, traj.n_samples, -1)
    return np.stack([reindex(lp[r], prog[r], grid, norm_tol=np.inf) for r in range(traj.n_runs)])


def progress_distance_tensor(resampled, *, device=None):
    """Distances between resampled models at every grid value.

    Parameters
    ----------
    resampled : array (M, G, n, C)
        Log-probabilities of ``M`` runs at ``G`` common progress values.

    Returns
    -------
    numpy.ndarray float64 (G, M, M)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.log(np.full((2, 3, 4, 2), 0.5))
    >>> progress_distance_tensor(x).shape
    (3, 2, 2)
    """
    x = np.asarray(resampled)
    if x.ndim != 4:
        raise ValueError(f"resampled must have shape (M, G, n, C); got {x.shape}")
    return np.stack([bhattacharyya(x[:, g], device=device) for g in range(x.shape[1])])


def tube_width(resampled, *, device=None):
    """Distance of each seed to its configuration's mean model at every progress value.

    Parameters
    ----------
    resampled : array (R, G, n, C)
        Log-probabilities of the ``R`` seeds of ONE configuration at ``G`` progress values.

    Returns
    -------
    numpy.ndarray float64 (R, G): ``d_B(P_r(g), mean_r P_r(g))`` with the arithmetic mean of
    the probabilities (a normalized distribution).

    Examples
    --------
    >>> import numpy as np
    >>> same = np.log(np.full((3, 2, 4, 2), 0.5))
    >>> tube_width(same).tolist()
    [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    """
    x = np.asarray(resampled, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"resampled must have shape (R, G, n, C); got {x.shape}")
    mean = np.log(np.mean(np.exp(x), axis=0))  # (G, n, C)
    out = np.empty(x.shape[:2])
    for g in range(x.shape[1]):
        out[:, g] = bhattacharyya(x[:, g], mean[g][None], device=device, norm_tol=1e-6)[:, 0]
    return np.maximum(out, 0.0)


def geodesic_gap(resampled, grid, labels):
    """Distance of each resampled model to the geodesic point at the same progress.

    Parameters
    ----------
    resampled : array (R, G, n, C)
    grid : array (G,)
    labels : int array (n,)

    Returns
    -------
    numpy.ndarray float64 (R, G): ``d_B(P_r(g), gamma(g))``.

    Examples
    --------
    >>> import numpy as np
    >>> from linsim.inpca import geodesic
    >>> p0, ps = geodesic_ends([0, 1], 2)
    >>> on = geodesic(p0, ps, [0.2, 0.6])[None]          # (1, 2, n, C): on the geodesic
    >>> bool(np.abs(geodesic_gap(on, [0.2, 0.6], [0, 1])).max() < 1e-12)
    True
    """
    x = np.asarray(resampled, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    if x.ndim != 4 or x.shape[1] != grid.size:
        raise ValueError(f"resampled must have shape (R, G={grid.size}, n, C); got {x.shape}")
    p0, ps = geodesic_ends(labels, x.shape[-1])
    R, G = x.shape[:2]
    s = np.tile(grid, R)
    return distance_to_geodesic(x.reshape(R * G, *x.shape[2:]), p0, ps, s=s).reshape(R, G)


def steps_to_progress(times, progress_values, level=0.5):
    """Training time at which the (seed-averaged) progress first reaches ``level``.

    Linear interpolation between the checkpoints around the first crossing; ``nan`` when the
    mean progress never reaches ``level``.

    Parameters
    ----------
    times : array (K,)
    progress_values : array (R, K)
    level : float in (0, 1]

    Returns
    -------
    float

    Examples
    --------
    >>> steps_to_progress([0, 10, 20], [[0.0, 0.4, 0.8]], 0.6)
    15.0
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(progress_values, dtype=np.float64).reshape(-1, t.size).mean(axis=0)
    hit = np.flatnonzero(p >= level)
    if hit.size == 0:
        return float("nan")
    k = int(hit[0])
    if k == 0:
        return float(t[0])
    f = (level - p[k - 1]) / (p[k] - p[k - 1])
    return float(t[k - 1] + f * (t[k] - t[k - 1]))
