"""Spectrum panels: the InPCA eigenvalue ladder and the explained-stress curve.

Both draw on a given ``ax`` (or on a new free-standing figure) and return the axes.
Conventions of the InPCA literature: ``|λ_k|`` on a log axis, positive (space-like)
eigenvalues in black, negative (time-like) ones in red; k axes carry integer ticks only.
"""

from __future__ import annotations

import warnings

import numpy as np

from linsim.plotting._canvas import axes_or_new, integer_ticks

__all__ = ["eigenvalue_ladder", "stress_curve"]

#: Colours of space-like (positive) and time-like (negative) eigenvalues.
POSITIVE_COLOUR = "black"
NEGATIVE_COLOUR = "tab:red"


def eigenvalue_ladder(eigenvalues, n: int = 30, *, ax=None, label: str | None = None,
                      marker: str = "o", colour: str | None = None):
    """Draw ``|λ_k|`` against ``k = 1..n`` on a log axis; negative eigenvalues in red.

    Parameters
    ----------
    eigenvalues : array_like (m,)
        Signed InPCA eigenvalues sorted by ``|λ|`` descending (``InPCA.eigenvalues_``), in
        units of the Bhattacharyya distance.
    n : int
        Draw the first ``min(n, m)``.
    ax : matplotlib Axes, optional
        Where to draw; default a new free-standing figure (no pyplot state).
    label : str, optional
        Legend label of the positive eigenvalues; the negative ones get ``label + " (negative)"``.
    marker : str
        Marker of the points.
    colour : str, optional
        Colour of the positive eigenvalues (default black); negative ones are always red.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> ax = eigenvalue_ladder([2.0, -0.5, 0.1])
    >>> ax.get_xlabel(), ax.get_yscale(), len(ax.lines)
    ('k (InPCA dimension)', 'log', 2)
    """
    from matplotlib.axes import Axes

    if isinstance(eigenvalues, Axes):  # the old signature eigenvalue_ladder(ax, eigenvalues, ...)
        warnings.warn("eigenvalue_ladder(ax, eigenvalues) is deprecated; call "
                      "eigenvalue_ladder(eigenvalues, ax=ax)", DeprecationWarning, stacklevel=2)
        if ax is not None:
            raise TypeError("eigenvalue_ladder: pass the eigenvalues first and the axes as ax=")
        ax, eigenvalues, n = eigenvalues, n, 30
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1:
        raise ValueError(f"eigenvalues must be 1-D; got shape {lam.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    ax = axes_or_new(ax)
    lam = lam[:n]
    k = np.arange(1, lam.size + 1)
    pos = lam >= 0
    ax.plot(k[pos], np.abs(lam[pos]), marker, color=colour or POSITIVE_COLOUR, ms=4, ls="none",
            label=label)
    if (~pos).any():
        ax.plot(k[~pos], np.abs(lam[~pos]), marker, color=NEGATIVE_COLOUR, ms=4, ls="none",
                label=None if label is None else f"{label} (negative)")
    ax.set_yscale("log")
    ax.set_xlabel("k (InPCA dimension)")
    ax.set_ylabel(r"$|\lambda_k|$")
    integer_ticks(ax.xaxis)
    return ax


def stress_curve(explained_stress, chi: float | None = 0.9, *, ax=None, label: str | None = None,
                 colour: str = "C0"):
    """Draw the explained stress ``χ_k`` against ``k``, the threshold ``χ`` and the point ``k_χ``.

    Parameters
    ----------
    explained_stress : array_like (m,)
        ``χ_1..χ_m`` (``InPCA.explained_stress_``), non-decreasing in ``[0, 1]``.
    chi : float in (0, 1] or None
        Threshold drawn as a dashed horizontal line; ``k_χ``, the smallest ``k`` with
        ``χ_k ≥ χ``, is marked with a star and annotated (``k_χ > m`` when not reached).
        None draws neither.
    ax : matplotlib Axes, optional
        Where to draw; default a new free-standing figure.
    label : str, optional
        Legend label of the curve.
    colour : str
        Colour of the curve.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> ax = stress_curve([0.5, 0.8, 0.95, 0.99], chi=0.9)
    >>> print(*[t.get_text() for t in ax.texts])
    $k_\\chi = 3$ $\\chi = 0.9$
    """
    curve = np.asarray(explained_stress, dtype=np.float64)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError(f"explained_stress must be a non-empty 1-D array; got shape {curve.shape}")
    if chi is not None and not (0 < float(chi) <= 1):
        raise ValueError(f"chi must be in (0, 1]; got {chi}")
    ax = axes_or_new(ax)
    k = np.arange(1, curve.size + 1)
    ax.plot(k, curve, "o-", ms=3, color=colour, label=label)
    ax.set_ylim(0, 1.04)
    ax.set_xlabel("k (InPCA dimension)")
    ax.set_ylabel(r"explained stress $\chi_k$")
    ax.grid(alpha=0.3)
    integer_ticks(ax.xaxis)
    if chi is not None:
        chi = float(chi)
        ax.axhline(chi, color="0.4", ls="--", lw=1)
        reached = np.nonzero(curve >= chi)[0]
        if reached.size:
            kc = int(reached[0]) + 1
            ax.plot([kc], [curve[kc - 1]], "*", ms=13, color="tab:orange", mec="black", zorder=5)
            ax.annotate(rf"$k_\chi = {kc}$", (kc, curve[kc - 1]), xytext=(8, -16), textcoords="offset points",
                        fontsize=9)
        else:
            ax.annotate(rf"$k_\chi > {curve.size}$", (curve.size, curve[-1]), xytext=(-50, -16),
                        textcoords="offset points", fontsize=9)
        ax.text(0.98, chi, rf"$\chi = {chi:g}$", transform=ax.get_yaxis_transform(), ha="right",
                va="bottom", fontsize=8, color="0.3")
    return ax
