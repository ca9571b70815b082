"""Explained stress of an InPCA spectrum and the dimension ``k_χ`` needed to reach a target stress.

This is the one implementation of both quantities in the project: ``linsim.metrics`` and the
InPCA core delegate here. Conventions (one meaning per name):

* ``frobenius_norm`` is ``‖W‖_F``, the Frobenius **norm** (not its square) of the *whole*
  double-centred matrix ``W = -½ J D J``;
* eigenvalues are signed and must be sorted by ``|λ|`` descending;
* ``k_chi`` returns a float: an integer value, or ``math.inf`` when the given eigenvalues never
  reach ``χ`` (possible only with an incomplete spectrum and its ``frobenius_norm``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["explained_stress", "k_chi"]

#: Relative tolerance for ``Σλ² > ‖W‖_F²`` caused by rounding alone.
_RTOL = 1e-8


def _sorted_spectrum(eigenvalues) -> np.ndarray:
    lam = np.asarray(eigenvalues)
    if np.iscomplexobj(lam):
        raise ValueError("eigenvalues must be real; got a complex array")
    lam = lam.astype(np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-D array; got shape {lam.shape}")
    bad = np.flatnonzero(~np.isfinite(lam))
    if bad.size:
        raise ValueError(f"eigenvalues contain NaN or inf at index {bad[0]}")
    mags = np.abs(lam)
    rises = np.flatnonzero(np.diff(mags) > 1e-12 * max(float(mags.max()), 1e-300))
    if rises.size:
        i = int(rises[0])
        raise ValueError(f"eigenvalues must be sorted by |λ| in descending order; |λ[{i + 1}]| = "
                         f"{mags[i + 1]:.6g} > |λ[{i}]| = {mags[i]:.6g}")
    return lam


def explained_stress(eigenvalues, frobenius_norm=None, *, rtol: float = _RTOL) -> np.ndarray:
    """Cumulative explained stress ``χ_k = 1 - sqrt(1 - Σ_{i≤k} λ_i² / ‖W‖_F²)``, k = 1..m.

    ``χ_k`` is one minus the relative Frobenius error of the best signed rank-k approximation
    of ``W`` (scale free; 1 at full rank). The unexplained part is formed as (stress outside the
    given eigenvalues) + ``Σ_{i>k} λ_i²``, a tail sum, so values near 1 are exact to rounding.

    Parameters
    ----------
    eigenvalues : array_like (m,)
        Signed eigenvalues of ``W``, sorted by ``|λ|`` descending (unsorted input is refused,
        naming the first offending index).
    frobenius_norm : float, optional
        ``‖W‖_F`` of the whole matrix -- the **norm, not its square** -- so that the curve is
        right when only the top m eigenpairs were computed. Default: the spectrum is complete,
        ``‖W‖_F² = Σ λ²``.
    rtol : float
        ``Σλ²`` may exceed ``‖W‖_F²`` by rounding up to this relative amount; beyond it the
        inputs are inconsistent (typically ``‖W‖_F²`` passed where ``‖W‖_F`` is expected) and
        ValueError is raised.

    Returns
    -------
    numpy.ndarray float64 (m,), non-decreasing, in [0, 1].

    Examples
    --------
    >>> explained_stress([-4.0, 3.0])  # χ_1 = 1 - sqrt(1 - 16/25)
    array([0.4, 1. ])
    >>> explained_stress([-4.0], frobenius_norm=5.0)  # partial spectrum, whole-matrix norm
    array([0.4])
    """
    lam = _sorted_spectrum(eigenvalues)
    sq = lam**2
    total = float(np.sum(sq))
    if frobenius_norm is None:
        fro_sq = total
        if fro_sq == 0.0:
            raise ValueError("all eigenvalues are zero: every point coincides, stress is undefined")
    else:
        if isinstance(frobenius_norm, (bool, np.bool_)):
            raise ValueError(f"frobenius_norm must be a positive number; got {frobenius_norm!r}")
        fro = float(frobenius_norm)
        if not (math.isfinite(fro) and fro > 0):
            raise ValueError(f"frobenius_norm must be positive and finite; got {frobenius_norm!r}")
        fro_sq = fro * fro
        if total > fro_sq * (1.0 + rtol):
            cum = np.cumsum(sq)
            k = int(np.argmax(cum > fro_sq * (1.0 + rtol)))
            raise ValueError(
                f"frobenius_norm={fro:.6g} is too small: the first {k + 1} squared eigenvalues already "
                f"sum to {cum[k]:.6g} > frobenius_norm² = {fro_sq:.6g}. Pass ‖W‖_F (the norm of the "
                f"whole matrix, not its square); if you have ‖W‖_F², pass its square root "
                f"({math.sqrt(fro):.6g})")
    tail = np.concatenate([np.cumsum(sq[::-1])[::-1][1:], [0.0]])
    unseen = max(fro_sq - total, 0.0)  # negative only by rounding, bounded by rtol above
    return 1.0 - np.sqrt((unseen + tail) / fro_sq)


def k_chi(eigenvalues, chi: float = 0.9, frobenius_norm=None) -> float:
    """Smallest number of dimensions ``k`` (1-based) with explained stress ``χ_k ≥ chi``.

    Parameters
    ----------
    eigenvalues : array_like (m,)
        Signed eigenvalues sorted by ``|λ|`` descending (see :func:`explained_stress`).
    chi : float in (0, 1]
        Target explained stress.
    frobenius_norm : float, optional
        ``‖W‖_F`` (the norm, not its square) of the whole matrix; default ``sqrt(Σλ²)``.

    Returns
    -------
    float
        An integer value in ``1..m``, or ``math.inf`` when the given eigenvalues do not reach
        ``chi`` (only possible when ``frobenius_norm`` says the spectrum is incomplete). A
        complete spectrum reaches ``chi = 1`` up to a rounding allowance of ``1e-12``.

    Examples
    --------
    >>> k_chi([1.0, 0.2, 0.01], 0.9)
    2.0
    >>> k_chi([1.0, 0.5], 0.9, frobenius_norm=10.0)
    inf
    """
    if isinstance(chi, (bool, np.bool_)):
        raise ValueError(f"chi must be a number in (0, 1]; got {chi!r}")
    chi = float(chi)
    if not 0.0 < chi <= 1.0:
        raise ValueError(f"chi must lie in (0, 1]; got {chi}")
    curve = explained_stress(eigenvalues, frobenius_norm)
    hit = np.flatnonzero(curve >= chi - 1e-12)
    return float(hit[0] + 1) if hit.size else math.inf
