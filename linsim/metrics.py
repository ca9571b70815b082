"""Sloppiness metrics of an InPCA spectrum, and the hyper-ribbon classifier.

Every function here takes a spectrum (signed InPCA eigenvalues sorted by ``|λ|``
descending), optionally the Frobenius norm ``‖W‖_F`` of the *whole* double-centred matrix
(needed when only the top ``k`` eigenpairs were computed) and optionally the embedding
coordinates.  The same functions therefore apply to simulated embeddings and to analytic
spectra from the ``theory`` package.

Definitions
-----------
explained stress
    ``χ_k = 1 − sqrt(1 − Σ_{i≤k} λ_i² / ‖W‖_F²)``: one minus the relative Frobenius error of
    the best signed rank-``k`` approximation of ``W``.  Scale free.
``k_χ``
    The smallest ``k`` with ``χ_k ≥ χ`` (a float); ``inf`` when the computed eigenpairs do not
    reach ``χ``.

``explained_stress`` and ``k_chi`` are :func:`theory.explained_stress` and :func:`theory.k_chi`
themselves (one implementation, ``frobenius_norm`` is the norm ``‖W‖_F``, not its square).
decay rate
    The slope ``r`` of a least-squares fit ``log|λ_j| ≈ a − r (j − 1)`` over the leading
    ``j = 1..k`` eigenvalues, with its standard error: ``|λ_{j+1}/λ_j| ≈ e^{−r}``.  A
    hyper-ribbon has geometrically decaying widths, i.e. a clearly positive ``r``.
negative weight
    ``Σ_{λ_i<0} λ_i² / ‖W‖_F²`` over the computed eigenvalues: the share of the stress carried
    by time-like (Minkowski) directions.
widths
    Along embedding axis ``j``: the RMS width ``sqrt(|λ_j| / M)`` (equal to the standard
    deviation of the coordinates, which are centred) and the full extent ``max − min``.
hyper-ribbon (default criterion)
    ``k_χ ≤ k*`` (``RibbonCriterion.k_star``) with ``χ = 0.9`` and ``k* = 3``: three InPCA dimensions explain 90% of the stress.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

# The one implementation of each (theory is pure numpy; linsim may import it, never the reverse).
from theory.stress import explained_stress, k_chi

__all__ = ["RibbonCriterion", "explained_stress", "k_chi", "stress_at", "decay_rate", "negative_share",
           "widths", "summarize"]


@dataclass(frozen=True, init=False)
class RibbonCriterion:
    """Classify an ensemble as a hyper-ribbon when ``k_χ ≤ k_star``.

    Parameters
    ----------
    chi : float in (0, 1)
        Explained-stress threshold ``χ`` (default 0.9).
    k_star : int >= 1
        Largest number of dimensions ``k*`` allowed to reach ``χ`` (default 3).
    k_max : int, optional
        Deprecated spelling of ``k_star`` (DeprecationWarning); give one or the other.

    Examples
    --------
    >>> crit = RibbonCriterion(0.9, 3)
    >>> crit(3.0), crit(4.0), crit.k_star
    (True, False, 3)
    """

    chi: float
    k_star: int

    def __init__(self, chi: float = 0.9, k_star: int | None = None, *, k_max: int | None = None) -> None:
        if k_max is not None:
            if k_star is not None:
                raise ValueError("give k_star only (k_max is its deprecated name), not both")
            warnings.warn("RibbonCriterion(k_max=...) is deprecated; use k_star=...", DeprecationWarning,
                          stacklevel=2)
            k_star = k_max
        if k_star is None:
            k_star = 3
        if isinstance(chi, (bool, np.bool_)) or not isinstance(chi, (int, float, np.integer, np.floating)):
            raise ValueError(f"criterion chi must be a number in (0, 1); got {chi!r}")
        if not 0.0 < float(chi) < 1.0:
            raise ValueError(f"criterion chi must lie in (0, 1); got {chi}")
        if (isinstance(k_star, (bool, np.bool_)) or not isinstance(k_star, (int, float, np.integer, np.floating))
                or int(k_star) != k_star or k_star < 1):
            raise ValueError(f"criterion k_star must be a positive integer; got {k_star!r}")
        object.__setattr__(self, "chi", float(chi))
        object.__setattr__(self, "k_star", int(k_star))

    @property
    def k_max(self) -> int:
        """Deprecated read-only alias of :attr:`k_star`."""
        warnings.warn("RibbonCriterion.k_max is deprecated; use k_star", DeprecationWarning, stacklevel=2)
        return self.k_star

    def __call__(self, k: float) -> bool:
        """True when ``k`` (a ``k_χ``, possibly ``inf``) is at most ``k_star``."""
        return bool(k <= self.k_star)


def _spectrum(eigenvalues) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-D array; got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError(f"eigenvalues contain NaN or inf at index {np.flatnonzero(~np.isfinite(lam))[0]}")
    mags = np.abs(lam)
    if np.any(np.diff(mags) > 1e-12 * max(mags[0], 1e-300)):
        raise ValueError("eigenvalues must be sorted by |λ| in descending order")
    return lam


def stress_at(eigenvalues, k: int, frobenius_norm=None) -> float:
    """Explained stress ``χ_k`` at a fixed ``k`` (``k`` must not exceed the number given).

    Examples
    --------
    >>> stress_at([3.0, -2.0, 1.0], 3)
    1.0
    """
    lam = _spectrum(eigenvalues)
    if not 1 <= k <= lam.size:
        raise ValueError(f"k must lie in 1..{lam.size} (number of eigenvalues given); got {k}")
    return float(explained_stress(lam, frobenius_norm)[k - 1])


def decay_rate(eigenvalues, k: int = 10) -> tuple[float, float, int]:
    """Geometric decay rate of ``|λ_j|`` over the leading ``k`` eigenvalues.

    Fits ``log|λ_j| = a − r (j − 1)`` by ordinary least squares for ``j = 1..k``.
    Exactly-zero eigenvalues (a rank-deficient spectrum) end the fit window; the number of
    eigenvalues actually used is returned.

    Returns
    -------
    rate : float
        ``r`` (per dimension); successive ratios are ``≈ e^{−r}``.
    stderr : float
        Standard error of ``r`` from the residuals (``nan`` when only two points are used).
    n_used : int
        Number of eigenvalues in the fit (at least 2).

    Examples
    --------
    >>> import numpy as np
    >>> rate, err, used = decay_rate(np.exp(-0.5 * np.arange(5)), k=5)
    >>> round(rate, 12), used
    (0.5, 5)
    """
    lam = _spectrum(eigenvalues)
    if k < 2:
        raise ValueError(f"need k >= 2 eigenvalues to fit a decay rate; got k={k}")
    mags = np.abs(lam[:k])
    positive = mags > 0
    n_used = int(np.argmin(positive)) if not positive.all() else mags.size
    if n_used < 2:
        raise ValueError("fewer than two non-zero eigenvalues: no decay rate can be fitted")
    y = np.log(mags[:n_used])
    x = np.arange(n_used, dtype=np.float64)
    xc = x - x.mean()
    slope = float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))
    if n_used > 2:
        resid = y - (y.mean() + slope * xc)
        stderr = float(np.sqrt(np.dot(resid, resid) / (n_used - 2) / np.dot(xc, xc)))
    else:
        stderr = math.nan
    return -slope, stderr, n_used


def negative_share(eigenvalues, frobenius_norm=None) -> tuple[int, float]:
    """Count of negative (time-like) eigenvalues and their share ``Σ_{λ<0} λ² / ‖W‖_F²``.

    Examples
    --------
    >>> negative_share([3.0, -2.0, 1.0])  # (count, 4 / 14)
    (1, 0.2857142857142857)
    """
    lam = _spectrum(eigenvalues)
    explained_stress(lam, frobenius_norm)  # validates the norm against the spectrum
    fro_sq = float(np.sum(lam**2)) if frobenius_norm is None else float(frobenius_norm) ** 2
    neg = lam < 0
    share = float(np.sum(lam[neg] ** 2) / fro_sq) if fro_sq > 0 else 0.0
    return int(neg.sum()), share


def widths(embedding) -> tuple[np.ndarray, np.ndarray]:
    """Ribbon widths along each axis of an embedding ``(M, k)``.

    Returns the RMS width (standard deviation of each column; equals ``sqrt(|λ_j|/M)`` for an
    InPCA embedding of ``M`` points) and the full extent ``max − min`` of each column.

    Examples
    --------
    >>> widths([[1.0], [-1.0]])
    (array([1.]), array([2.]))
    """
    x = np.asarray(embedding, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"embedding must have shape (M, k) with M >= 2; got {x.shape}")
    return x.std(axis=0), x.max(axis=0) - x.min(axis=0)


def summarize(
    eigenvalues,
    frobenius_norm=None,
    *,
    criterion: RibbonCriterion = RibbonCriterion(),
    fit_k: int = 10,
) -> dict[str, float | int | bool]:
    """All scalar sloppiness metrics of one spectrum, as a flat dict.

    Keys: ``k_chi`` (at ``criterion.chi``), ``stress_k`` (χ at ``criterion.k_star``, or the
    largest available ``k``), ``stress_1``, ``stress_2``, ``stress_3`` (nan when fewer
    eigenvalues), ``decay_rate``, ``decay_rate_stderr``, ``n_negative``, ``negative_share``,
    ``is_ribbon``.

    Examples
    --------
    >>> s = summarize([3.0, -2.0, 1.0])
    >>> s['k_chi'], s['n_negative'], s['is_ribbon']
    (3.0, 1, True)
    """
    lam = _spectrum(eigenvalues)
    curve = explained_stress(lam, frobenius_norm)
    kc = k_chi(lam, criterion.chi, frobenius_norm)
    out: dict[str, float | int | bool] = {
        "k_chi": kc,
        "stress_k": float(curve[min(criterion.k_star, lam.size) - 1]),
    }
    for j in (1, 2, 3):
        out[f"stress_{j}"] = float(curve[j - 1]) if lam.size >= j else math.nan
    if np.count_nonzero(lam[: max(fit_k, 2)]) >= 2:
        rate, err, _ = decay_rate(lam, fit_k)
    else:
        rate, err = math.nan, math.nan
    out["decay_rate"] = rate
    out["decay_rate_stderr"] = err
    n_neg, share = negative_share(lam, frobenius_norm)
    out["n_negative"] = n_neg
    out["negative_share"] = share
    out["is_ribbon"] = criterion(kc)
    return out
