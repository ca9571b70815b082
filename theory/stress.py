"""Explained stress of an InPCA spectrum and the dimension k_χ needed to reach a target stress."""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array

__all__ = ["explained_stress", "k_chi"]


def explained_stress(spectrum, frobenius_sq: float | None = None) -> np.ndarray:
    """Explained stress ``χ_k = 1 - sqrt(1 - Σ_{i<=k} λ_i² / ||W||_F²)`` for k = 1..len(spectrum).

    Parameters
    ----------
    spectrum : (m,) array
        Eigenvalues of the double-centred matrix ``W = -½ J D J``; they are re-sorted by |λ| descending.
    frobenius_sq : float, optional
        ``||W||_F²``. Default: ``Σ λ_i²`` over the given values (exact when all nonzero eigenvalues are
        given, as :func:`theory.quadratic_spectrum` does).

    Returns
    -------
    (m,) array, non-decreasing, in [0, 1].
    """
    lam = as_float_array(spectrum, "spectrum", ndim=1)
    if lam.size == 0:
        raise ValueError("spectrum is empty")
    lam = lam[np.argsort(-np.abs(lam), kind="stable")]
    cum = np.cumsum(lam**2)
    fn2 = cum[-1] if frobenius_sq is None else float(frobenius_sq)
    if not np.isfinite(fn2) or fn2 <= 0:
        raise ValueError(f"frobenius_sq must be > 0, got {fn2}")
    if cum[-1] > fn2 * (1 + 1e-9):
        raise ValueError(f"frobenius_sq={fn2} is smaller than the sum of squared eigenvalues {cum[-1]}")
    return 1.0 - np.sqrt(np.maximum(1.0 - cum / fn2, 0.0))


def k_chi(spectrum, chi: float = 0.9, frobenius_sq: float | None = None) -> int:
    """Smallest k with explained stress ``χ_k >= chi`` (1-based).

    Returns ``len(spectrum) + 1`` if even the whole given spectrum falls short (possible only when
    ``frobenius_sq`` exceeds the sum of the given squared eigenvalues).
    """
    chi = float(chi)
    if not 0 < chi <= 1:
        raise ValueError(f"chi must be in (0, 1], got {chi}")
    curve = explained_stress(spectrum, frobenius_sq)
    hit = np.nonzero(curve >= chi - 1e-12)[0]
    return int(hit[0] + 1) if hit.size else int(curve.size + 1)
