"""Information geometry of products of per-sample categorical distributions.

A model is an array of log-probabilities of shape ``(n, C)``; where noted, functions also take
a stack ``(m, n, C)``.  Inputs are validated and normalized exactly as in
:mod:`linsim.inpca.distances` (``-inf`` = probability zero is legal).

Geometry used here
------------------
* The map ``p -> sqrt(p)`` sends each per-sample distribution to the positive orthant of the
  unit sphere in ``R^C``.  The per-sample angle between two models is
  ``theta_i = arccos BC_i`` (computed as ``2 arcsin(|sqrt p - sqrt q| / 2)``, accurate for
  small angles), and the Bhattacharyya distance per sample is ``-log cos theta_i``.
* The **geodesic** between models ``P`` and ``Q`` is the product of the per-sample great
  circles, all traversed with ONE shared parameter ``s in [0, 1]``:
  ``sqrt(gamma_i(s)) = [sin((1-s) theta_i) sqrt(p_i) + sin(s theta_i) sqrt(q_i)] / sin theta_i``.
  Each sample moves at constant angular speed ``theta_i``.
* The **log map** (tangent at ``P`` toward ``Q``) is ``theta_i / sin theta_i * (sqrt q_i -
  cos theta_i sqrt p_i)`` per sample, a vector in sqrt-probability coordinates of norm
  ``theta_i``.
* **Progress** of a model ``R`` along the geodesic is ``argmin_s d_B(R, gamma(s))`` (bounded
  scalar minimization; the Bhattacharyya objective is the default, the mean per-sample arc
  length ``arccos BC`` is available), and the **distance to the geodesic** is that minimum
  (or the distance to ``gamma(s)`` at a given ``s``).
* **Reindexing** resamples a trajectory at given values of a monotone index (e.g. progress
  or training accuracy) by slerp between neighbouring checkpoints.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch

from .checks import NORM_TOL, as_float_tensor, check_log_prob_chunk

__all__ = [
    "uniform_log_probs",
    "one_hot_log_probs",
    "geodesic",
    "log_map",
    "progress",
    "distance_to_geodesic",
    "reindex",
]


def _model(x, name, norm_tol=None, allow_stack=False):
    """Validated, normalized float64 numpy log-probs of shape (n, C) (or (m, n, C))."""
    t = as_float_tensor(x, name)
    ok_ranks = (2, 3) if allow_stack else (2,)
    if t.dim() not in ok_ranks or any(s == 0 for s in t.shape):
        want = "(n, C) or (m, n, C)" if allow_stack else "(n, C)"
        raise ValueError(f"{name} must have shape {want}; got {tuple(t.shape)}")
    tol = NORM_TOL[t.dtype] if norm_tol is None else float(norm_tol)
    t3 = t.to(torch.float64).reshape((-1,) + tuple(t.shape[-2:]))
    logz = check_log_prob_chunk(t3, name, 0, 0, tol)
    out = (t3 - logz.unsqueeze(-1)).numpy()
    return out.reshape(t.shape)


def _same_shape(a, b, na, nb):
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"{na} and {nb} must have the same (n, C); got {a.shape} and {b.shape}")


def _log_bc(la, lb):
    """log Bhattacharyya coefficient per sample, exact in the log domain."""
    with np.errstate(invalid="ignore"):
        h = 0.5 * (la + lb)
    m = np.max(h, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(h - m), axis=-1)) + m[..., 0]


def _angle(lp, lq):
    """Per-sample angle between sqrt(p) and sqrt(q), in [0, pi/2]."""
    chord = np.sqrt(np.sum((np.exp(0.5 * lp) - np.exp(0.5 * lq)) ** 2, axis=-1))
    return 2.0 * np.arcsin(np.minimum(0.5 * chord, np.sqrt(0.5)))


def _slerp_weights(s, theta):
    """sin((1-s)th)/sin(th) and sin(s th)/sin(th), exact at th = 0 (limits 1-s and s)."""
    den = np.sinc(theta / np.pi)
    a = (1.0 - s) * np.sinc((1.0 - s) * theta / np.pi) / den
    b = s * np.sinc(s * theta / np.pi) / den
    return a, b


def uniform_log_probs(n, C):
    """The "ignorance" model: ``p_ic = 1/C`` on every sample.

    Returns
    -------
    numpy.ndarray float64 (n, C) filled with ``-log C``.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.allclose(np.exp(uniform_log_probs(2, 4)), 0.25))
    True
    """
    if not (int(n) == n and n >= 1 and int(C) == C and C >= 2):
        raise ValueError(f"need integers n >= 1 and C >= 2; got n={n!r}, C={C!r}")
    return np.full((int(n), int(C)), -np.log(C))


def one_hot_log_probs(labels, C):
    """The "truth" model: probability one on each sample's label.

    Parameters
    ----------
    labels : int array (n,), values in ``[0, C)``
    C : int, number of classes (>= 2)

    Returns
    -------
    numpy.ndarray float64 (n, C): 0 at the label, ``-inf`` elsewhere.

    Examples
    --------
    >>> one_hot_log_probs([2, 0], 3).tolist()
    [[-inf, -inf, 0.0], [0.0, -inf, -inf]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array; got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers; got dtype {labels.dtype}")
    if not (int(C) == C and C >= 2):
        raise ValueError(f"C must be an integer >= 2; got {C!r}")
    bad = (labels < 0) | (labels >= C)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"labels must lie in [0, {C}); sample {i} has label {labels[i]}")
    out = np.full((labels.size, int(C)), -np.inf)
    out[np.arange(labels.size), labels] = 0.0
    return out


def _check_s(s, name="s"):
    s_arr = np.asarray(s, dtype=np.float64)
    if s_arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array; got shape {s_arr.shape}")
    if not np.all(np.isfinite(s_arr)) or np.any(s_arr < 0) or np.any(s_arr > 1):
        raise ValueError(f"{name} must lie in [0, 1]; got {s!r}")
    return s_arr


def geodesic(logp, logq, s, *, norm_tol=None):
    """Points on the geodesic from ``P`` to ``Q`` (per-sample great circles on sqrt(p)).

    Parameters
    ----------
    logp, logq : array (n, C)
        Log-probabilities of the end points.
    s : float or array (S,)
        Shared parameter(s) in ``[0, 1]``; ``s = 0`` gives ``P``, ``s = 1`` gives ``Q``.
    norm_tol : float, optional
        Normalization tolerance (as in :func:`linsim.inpca.bhattacharyya`).

    Returns
    -------
    numpy.ndarray float64: (n, C) for scalar ``s``, (S, n, C) for an array; log-probabilities,
    ``-inf`` where both end points have probability zero.

    Examples
    --------
    Half way from ignorance to truth (C = 2): the great circle's midpoint, ``sqrt(p)`` at the
    angle ``theta / 2`` with ``theta = arccos(1 / sqrt(2)) = pi / 4``.

    >>> import numpy as np
    >>> mid = geodesic(uniform_log_probs(1, 2), one_hot_log_probs([0], 2), 0.5)
    >>> bool(np.allclose(np.exp(mid), [[np.cos(np.pi / 8) ** 2, np.sin(np.pi / 8) ** 2]]))
    True
    """
    lp = _model(logp, "logp", norm_tol)
    lq = _model(logq, "logq", norm_tol)
    _same_shape(lp, lq, "logp", "logq")
    s_arr = _check_s(s)
    theta = _angle(lp, lq)  # (n,)
    ss = s_arr.reshape(-1, 1)
    a, b = _slerp_weights(ss, theta[None, :])  # (S, n)
    with np.errstate(divide="ignore"):
        la, lb = np.log(a), np.log(b)
    out = 2.0 * np.logaddexp(la[..., None] + 0.5 * lp[None], lb[..., None] + 0.5 * lq[None])
    return out[0] if s_arr.ndim == 0 else out


def log_map(logp, logq, *, norm_tol=None):
    """Tangent vector at ``P`` pointing to ``Q`` along the geodesic (the log map).

    Returns ``theta_i / sin(theta_i) * (sqrt(q_i) - cos(theta_i) sqrt(p_i))`` per sample, in
    sqrt-probability coordinates; row ``i`` is orthogonal to ``sqrt(p_i)`` and has norm
    ``theta_i``.  Shape (n, C), float64.

    Examples
    --------
    >>> import numpy as np
    >>> v = log_map(uniform_log_probs(1, 2), one_hot_log_probs([0], 2))
    >>> bool(np.isclose(np.linalg.norm(v), np.pi / 4))    # the angle between sqrt(p) and sqrt(q)
    True
    """
    lp = _model(logp, "logp", norm_tol)
    lq = _model(logq, "logq", norm_tol)
    _same_shape(lp, lq, "logp", "logq")
    x, y = np.exp(0.5 * lp), np.exp(0.5 * lq)
    theta = _angle(lp, lq)
    cos = np.cos(theta)
    return (y - cos[:, None] * x) / np.sinc(theta / np.pi)[:, None]


_OBJECTIVES = ("bhattacharyya", "arc_length")


def _geodesic_objective(lr, lp, lq, objective):
    """Return f(s) for one model ``lr`` (n, C): the distance to gamma(s)."""
    theta = _angle(lp, lq)
    lca = _log_bc(lr, lp)
    lcb = _log_bc(lr, lq)

    def f(s):
        a, b = _slerp_weights(s, theta)
        with np.errstate(divide="ignore"):
            lbc = np.logaddexp(lca + np.log(a), lcb + np.log(b))
        if objective == "bhattacharyya":
            return float(-np.mean(lbc))
        return float(np.mean(np.arccos(np.minimum(np.exp(lbc), 1.0))))

    def fprime(s):  # derivative of the Bhattacharyya objective
        a, b = _slerp_weights(s, theta)
        with np.errstate(divide="ignore"):
            lbc = np.logaddexp(lca + np.log(a), lcb + np.log(b))
        k = 1.0 / np.sinc(theta / np.pi)  # theta / sin(theta), 1 at theta = 0
        da = -np.cos((1.0 - s) * theta) * k
        db = np.cos(s * theta) * k
        with np.errstate(invalid="ignore", over="ignore"):
            g = np.exp(lca - lbc) * da + np.exp(lcb - lbc) * db
        return float(-np.mean(g))

    f.fprime = fprime if objective == "bhattacharyya" else None
    return f


def _progress_one(f, xatol):
    res = scipy.optimize.minimize_scalar(f, bounds=(0.0, 1.0), method="bounded",
                                         options={"xatol": xatol})
    s_min = float(res.x)
    # Polish: near the minimum f is flat to rounding over ~sqrt(eps); the root of f' is sharp.
    if f.fprime is not None:
        lo, hi = max(0.0, s_min - 1e-4), min(1.0, s_min + 1e-4)
        flo, fhi = f.fprime(lo), f.fprime(hi)
        if np.isfinite(flo) and np.isfinite(fhi) and flo < 0 < fhi:
            s_min = float(scipy.optimize.brentq(f.fprime, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))
    f_min = f(s_min)
    slack = 8 * np.finfo(float).eps * max(1.0, abs(f_min))  # rounding level of f
    for end in (0.0, 1.0):  # an end point within rounding of the minimum wins (flat optimum)
        f_end = f(end)
        if f_end <= f_min + slack and (f.fprime is None or f_end <= f_min
                                        or (end == 0.0) == (f.fprime(end) >= 0)):
            s_min, f_min = end, f_end
    return s_min, f_min


def _model_and_ends(logr, logp, logq, objective, norm_tol):
    """Validate a (stack of) model(s) and a geodesic's ends: ``(is_stack, models (m, n, C), lp, lq)``."""
    if objective not in _OBJECTIVES:
        raise ValueError(f"objective must be one of {_OBJECTIVES}; got {objective!r}")
    lr = _model(logr, "logr", norm_tol, allow_stack=True)
    lp = _model(logp, "logp", norm_tol)
    lq = _model(logq, "logq", norm_tol)
    _same_shape(lp, lq, "logp", "logq")
    _same_shape(lr, lp, "logr", "logp")
    stack = lr.ndim == 3
    return stack, (lr if stack else lr[None]), lp, lq


def progress(logr, logp, logq, *, objective="bhattacharyya", return_distance=False, xatol=1e-10,
             norm_tol=None):
    """Progress of model(s) ``R`` along the geodesic from ``P`` to ``Q``.

    ``progress = argmin_{s in [0,1]} d(R, gamma(s))`` by bounded scalar minimization (end
    points included), with ``d`` the Bhattacharyya distance (mean over samples, default) or
    the mean per-sample arc length ``arccos BC`` (``objective="arc_length"``).  A point on the
    geodesic returns its own parameter.

    Parameters
    ----------
    logr : array (n, C) or (m, n, C)
    logp, logq : array (n, C), end points (e.g. uniform and one-hot models)
    objective : {"bhattacharyya", "arc_length"}
    return_distance : bool
        Also return the minimal distance (the distance to the geodesic).
    xatol : float
        Absolute tolerance on ``s`` (default 1e-10).

    Returns
    -------
    float, or (m,) array for a stack; with ``return_distance`` a pair ``(s, distance)``.

    Examples
    --------
    >>> P0, P1 = uniform_log_probs(3, 4), one_hot_log_probs([0, 1, 3], 4)
    >>> round(progress(geodesic(P0, P1, 0.3), P0, P1), 8)    # a point on the geodesic
    0.3
    """
    stack, rs, lp, lq = _model_and_ends(logr, logp, logq, objective, norm_tol)
    out = np.array([_progress_one(_geodesic_objective(r, lp, lq, objective), xatol) for r in rs])
    s, d = out[:, 0], out[:, 1]
    if not stack:
        s, d = float(s[0]), float(d[0])
    return (s, d) if return_distance else s


def distance_to_geodesic(logr, logp, logq, s=None, *, objective="bhattacharyya", norm_tol=None):
    """Distance of model(s) ``R`` to the geodesic from ``P`` to ``Q``.

    With ``s=None``: the closest-point distance ``min_s d(R, gamma(s))`` (see :func:`progress`).
    With ``s`` given (scalar, or one value per model of a stack): ``d(R, gamma(s))`` at that
    parameter, e.g. a reindexed model at progress ``s`` against the geodesic point at ``s``.

    Returns
    -------
    float, or (m,) array for a stack ``logr`` of shape (m, n, C).

    Examples
    --------
    >>> P0, P1 = uniform_log_probs(3, 4), one_hot_log_probs([0, 1, 3], 4)
    >>> round(distance_to_geodesic(geodesic(P0, P1, 0.7), P0, P1), 12) + 0.0   # on it: 0
    0.0
    >>> round(distance_to_geodesic(P0, P0, P1, s=1.0), 12) == round(0.5 * float(np.log(4)), 12)
    True
    """
    if s is None:
        return progress(logr, logp, logq, objective=objective, return_distance=True, norm_tol=norm_tol)[1]
    stack, rs, lp, lq = _model_and_ends(logr, logp, logq, objective, norm_tol)
    s_arr = np.broadcast_to(_check_s(s), (rs.shape[0],))
    d = np.array([_geodesic_objective(r, lp, lq, objective)(si) for r, si in zip(rs, s_arr)])
    return d if stack else float(d[0])


def reindex(logp_traj, index_values, grid, *, norm_tol=None):
    """Resample a trajectory at given values of an index by slerp between checkpoints.

    For each grid value ``g`` the first checkpoint ``k`` whose index exceeds ``g`` is found
    (so a non-monotone index is handled by its first crossing), and the model is the point at
    ``t = (g - idx[k-1]) / (idx[k] - idx[k-1])`` (in ``[0, 1)``) on the geodesic between
    checkpoints ``k-1`` and ``k``.  Grid values below the first index give checkpoint 0;
    values at or beyond the largest index give the last checkpoint.  No extrapolation.  For a
    decreasing index (e.g. the loss), pass its negative.

    Parameters
    ----------
    logp_traj : array (K, n, C)
        Log-probabilities at ``K`` checkpoints.
    index_values : array (K,)
        The index at every checkpoint (e.g. progress, accuracy), finite.
    grid : array (G,)
        Index values to resample at (finite).

    Returns
    -------
    numpy.ndarray float64 (G, n, C) of log-probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> P0, P1 = uniform_log_probs(2, 3), one_hot_log_probs([0, 2], 3)
    >>> traj = np.stack([P0, P1])                       # two checkpoints, index 0 and 1
    >>> out = reindex(traj, [0.0, 1.0], [0.25, 2.0])
    >>> bool(np.allclose(out[0], geodesic(P0, P1, 0.25))), bool(np.array_equal(out[1], P1))
    (True, True)
    """
    traj = _model(logp_traj, "logp_traj", norm_tol, allow_stack=True)
    if traj.ndim != 3:
        raise ValueError(f"logp_traj must have shape (K, n, C); got {traj.shape}")
    idx = np.asarray(index_values, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    K = traj.shape[0]
    if idx.shape != (K,):
        raise ValueError(f"index_values must have shape (K,) = ({K},); got {idx.shape}")
    if grid.ndim != 1:
        raise ValueError(f"grid must be 1-D; got shape {grid.shape}")
    for arr, name in ((idx, "index_values"), (grid, "grid")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite; first bad entry at {int(np.argmax(~np.isfinite(arr)))}")
    run_max = np.maximum.accumulate(idx)
    ks = np.searchsorted(run_max, grid, side="right")
    out = np.empty((grid.size,) + traj.shape[1:])
    for j, (g, k) in enumerate(zip(grid, ks)):
        if k == 0:
            out[j] = traj[0]
        elif k == K:
            out[j] = traj[-1]
        else:
            t = (g - idx[k - 1]) / (idx[k] - idx[k - 1])
            out[j] = geodesic(traj[k - 1], traj[k], float(t), norm_tol=np.inf)
    return out
