"""Input checks shared by the distance kernels, the InPCA estimator and the geometry helpers.

Every check raises :class:`ValueError` (bad values or shapes) or :class:`TypeError` (bad
types) with a message that names the argument, the problem and the first place where it
occurs (model, sample, class or matrix entry).  Nothing is clamped or dropped.

Tolerances (stated once, used everywhere)
-----------------------------------------
* Normalization of log-probabilities: per (model, sample) the total probability
  ``Z = sum_c exp(logp_c)`` must satisfy ``|log Z| <= norm_tol`` with the default
  :data:`NORM_TOL` ``= 1e-8`` for float64 inputs and ``1e-4`` for float32 inputs (float32
  log-softmax of logits of size ~100 is off by about ``eps32 * 100 ~ 1e-5``).  Inputs within
  tolerance are then treated as the normalized distributions ``exp(logp - log Z)``.
* Distance matrices (see :func:`check_distance_matrix`): asymmetry, diagonal and negative
  entries are tolerated up to ``tol * max|D|`` with ``tol = 1e-9`` by default.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = ["DIST_TOL", "NORM_TOL", "as_float_tensor", "check_distance_matrix", "check_log_prob_chunk", "check_rank"]

#: default tolerance on |log sum_c p_c| per dtype
NORM_TOL = {torch.float64: 1e-8, torch.float32: 1e-4}

#: default relative tolerance for distance-matrix checks
DIST_TOL = 1e-9


def as_float_tensor(x, name: str) -> torch.Tensor:
    """Return ``x`` as a float32/float64 torch tensor without copying when possible.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
    name : str
        Argument name used in error messages.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise TypeError(f"{name} must hold floating-point numbers; got dtype {x.dtype}")
        with warnings.catch_warnings():  # read-only arrays (memmaps) are fine: inputs are never written
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor; got {type(x).__name__}")
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64; got {t.dtype}")
    return t


def check_rank(t: torch.Tensor, rank: int, name: str, layout: str) -> None:
    """Raise ValueError unless ``t`` has ``rank`` dimensions (``layout`` names them)."""
    if t.dim() != rank:
        raise ValueError(f"{name} must have shape {layout} ({rank} dimensions); got shape {tuple(t.shape)}")
    if any(s == 0 for s in t.shape):
        raise ValueError(f"{name} must not be empty; got shape {tuple(t.shape)}")


def _first_index(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(v) for v in mask.nonzero()[0])


def check_log_prob_chunk(lp: torch.Tensor, name: str, model_offset: int, sample_offset: int,
                         norm_tol: float) -> torch.Tensor:
    """Validate a float64 chunk ``(m, s, C)`` of log-probabilities; return ``log Z`` ``(m, s)``.

    ``-inf`` entries are legal (probability zero).  NaN and ``+inf`` are not, nor are
    (model, sample) rows whose total probability ``Z`` has ``|log Z| > norm_tol``.
    """
    bad = torch.isnan(lp)
    if bool(bad.any()):
        m, i, c = _first_index(bad)
        raise ValueError(f"{name} contains NaN, first at model {m + model_offset}, sample "
                         f"{i + sample_offset}, class {c}")
    bad = lp == float("inf")
    if bool(bad.any()):
        m, i, c = _first_index(bad)
        raise ValueError(f"{name} contains +inf (a log-probability must be <= 0), first at model "
                         f"{m + model_offset}, sample {i + sample_offset}, class {c}")
    logz = torch.logsumexp(lp, dim=-1)
    bad = ~(logz.abs() <= norm_tol)
    if bool(bad.any()):
        m, i = _first_index(bad)
        total = float(torch.exp(logz[m, i]))
        raise ValueError(
            f"{name}: probabilities do not sum to 1 at model {m + model_offset}, sample "
            f"{i + sample_offset} (sum = {total!r}; tolerance |log sum| <= {norm_tol:g}); pass "
            f"log-probabilities (e.g. log_softmax of the logits), not logits or probabilities")
    return logz


def check_distance_matrix(D, name: str = "D", tol: float = DIST_TOL, square: bool = True) -> np.ndarray:
    """Validate a distance matrix and return it as a float64 numpy array.

    Checks: 2-D (and square when ``square``), finite, symmetric, zero diagonal and
    non-negative, each up to ``tol * max|D|`` (rounding).  Entries within tolerance are left
    exactly as given (no clamping).

    Parameters
    ----------
    D : array_like (M, M), or (q, M) when ``square=False``
    name : str
    tol : float
        Relative tolerance, default ``1e-9``.
    """
    if isinstance(D, torch.Tensor):
        D = D.detach().cpu().numpy()
    D = np.asarray(D)
    if D.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array; got dtype {D.dtype}")
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2:
        raise ValueError(f"{name} must be a 2-D distance matrix; got shape {D.shape}")
    if D.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {D.shape}")
    if square and D.shape[0] != D.shape[1]:
        raise ValueError(f"{name} must be square (M, M); got shape {D.shape}")
    M0 = D.shape[0]
    step = max(1, (1 << 22) // D.shape[1])  # row blocks of ~32 MiB: no full-size temporaries
    for r0 in range(0, M0, step):
        finite = np.isfinite(D[r0:r0 + step])
        if not finite.all():
            i, j = np.argwhere(~finite)[0]
            i += r0
            raise ValueError(f"{name} has a non-finite entry {float(D[i, j])!r} at ({i}, {j}) (e.g. models "
                             "with disjoint support); InPCA needs finite distances")
    scale = max(float(D.max()), -float(D.min()))
    atol = tol * scale
    for r0 in range(0, M0, step):
        blk = D[r0:r0 + step]
        neg = blk < -atol
        if neg.any():
            i, j = np.argwhere(neg)[0]
            i += r0
            raise ValueError(f"{name} has a negative entry {float(D[i, j])!r} at ({i}, {j}) beyond the "
                             f"rounding tolerance {atol:.3g} (= {tol:g} * max|{name}|)")
    if square:
        diag = np.abs(np.diagonal(D))
        if (diag > atol).any():
            i = int(np.argmax(diag > atol))
            raise ValueError(f"{name} has a non-zero diagonal entry {float(D[i, i])!r} at ({i}, {i}) beyond "
                             f"the tolerance {atol:.3g}")
        for r0 in range(0, M0, step):
            asym = np.abs(D[r0:r0 + step] - D[:, r0:r0 + step].T)
            if (asym > atol).any():
                i, j = np.argwhere(asym > atol)[0]
                raise ValueError(f"{name} is not symmetric: {name}[{i + r0}, {j}] = {float(D[i + r0, j])!r} but "
                                 f"{name}[{j}, {i + r0}] = {float(D[j, i + r0])!r} (tolerance {atol:.3g})")
    return D
