"""The InPCA embedding of training trajectories: a 3-D panel and the three-panel ribbon figure."""

from __future__ import annotations

import numpy as np

from linsim.plotting._canvas import axes_or_new, new_figure
from linsim.plotting.spectrum import eigenvalue_ladder, stress_curve

__all__ = ["embedding_3d", "ribbon_figure"]


def _time_label(embedding) -> str:
    units = {getattr(t, "time_unit", "step") for t in getattr(embedding, "trajectories", ())}
    if units == {"time"}:
        return "training time t = lr × step"
    return "training step"


def embedding_3d(embedding, *, ax=None, cmap: str = "viridis", colorbar: bool = True):
    """Draw the top three InPCA coordinates, one grey line per run, points coloured by time.

    Parameters
    ----------
    embedding : linsim.embed.Embedding
        Fitted InPCA of one or more trajectories. With fewer than 3 components the missing
        coordinates are drawn as 0.
    ax : 3-D matplotlib Axes, optional
        Made with ``fig.add_subplot(projection="3d")``; default a new free-standing figure.
    cmap : str
        Colour map of the training time (log scale; step 0 takes the lowest colour).
    colorbar : bool
        Add a colour bar of the training time beside ``ax``.

    Returns
    -------
    matplotlib 3-D Axes
        Axis labels ``PC1..PC3``; a time-like (negative-eigenvalue) axis is labelled ``(−)``.

    Examples
    --------
    >>> from linsim.embed import embed
    >>> from linsim.ensemble import EnsembleConfig, simulate
    >>> emb = embed(simulate(EnsembleConfig(dim=4, n_samples=8, n_classes=3, n_runs=2, steps=10,
    ...                                     n_checkpoints=3)))
    >>> embedding_3d(emb).get_xlabel()
    'PC1'
    """
    from matplotlib import colormaps, colors
    from matplotlib.cm import ScalarMappable

    ax = axes_or_new(ax, figsize=(5.5, 4.8), projection="3d")
    model = embedding.model
    coords = np.asarray(embedding.coordinates)
    x = np.zeros((coords.shape[0], 3))
    k = min(3, coords.shape[1])
    x[:, :k] = coords[:, :k]
    pts = embedding.points
    t = np.asarray(pts["time"], dtype=np.float64)
    positive = t > 0
    if positive.any():
        lo = float(t[positive].min())
        norm = colors.LogNorm(vmin=lo, vmax=max(float(t.max()), lo * (1 + 1e-9)))
    else:
        norm = colors.Normalize(0.0, 1.0)
    cm = colormaps[cmap]
    runs = np.stack([pts["trajectory"], pts["run"]], axis=1)
    for key in np.unique(runs, axis=0):
        sel = np.all(runs == key, axis=1)
        order = np.argsort(pts["checkpoint"][sel])
        xs = x[sel][order]
        ax.plot(xs[:, 0], xs[:, 1], xs[:, 2], color="0.6", lw=0.6)
    shown = np.where(positive, t, norm.vmin if positive.any() else 0.0)
    ax.scatter(x[:, 0], x[:, 1], x[:, 2], c=cm(norm(shown)), s=8, depthshade=False)
    signature = list(np.asarray(model.signature_)[:3]) + [1] * (3 - min(3, len(model.signature_)))
    labels = [f"PC{j + 1}{' (−)' if s < 0 else ''}" for j, s in enumerate(signature)]
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_zlabel(labels[2])
    if colorbar:
        ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cm), ax=ax, shrink=0.6, pad=0.12,
                           label=f"{_time_label(embedding)} (the start at the lowest colour)")
    return ax


def ribbon_figure(embedding, title: str = "", *, chi: float = 0.9, fig=None):
    """Three panels: the 3-D embedding, the eigenvalue ladder and the explained-stress curve.

    Parameters
    ----------
    embedding : linsim.embed.Embedding
    title : str
        Figure title.
    chi : float
        Explained-stress threshold drawn on the stress curve (with its ``k_χ``).
    fig : matplotlib Figure or SubFigure, optional
        Draw into it (it must be empty); default a new free-standing ``Figure``
        (no pyplot state, so nothing is shown and no backend is touched: call
        ``fig.savefig(path)``, or display it in a notebook).

    Returns
    -------
    matplotlib Figure (or the given SubFigure)

    Examples
    --------
    >>> from linsim.embed import embed
    >>> from linsim.ensemble import EnsembleConfig, simulate
    >>> emb = embed(simulate(EnsembleConfig(dim=4, n_samples=8, n_classes=3, n_runs=2, steps=10,
    ...                                     n_checkpoints=3)))
    >>> fig = ribbon_figure(emb, title="tiny")
    >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
    ['InPCA embedding', 'eigenvalue ladder (red: λ < 0, time-like)', 'explained stress']
    """
    if fig is None:
        fig = new_figure((14, 4.8))
    elif fig.axes:
        raise ValueError("ribbon_figure: the given figure already has axes; pass an empty one")
    model = embedding.model
    ax3 = fig.add_subplot(1, 3, 1, projection="3d")
    embedding_3d(embedding, ax=ax3)
    ax3.set_title("InPCA embedding")
    ax = fig.add_subplot(1, 3, 2)
    eigenvalue_ladder(model.eigenvalues_, ax=ax)
    ax.set_title("eigenvalue ladder (red: λ < 0, time-like)")
    ax = fig.add_subplot(1, 3, 3)
    stress_curve(model.explained_stress_, chi, ax=ax)
    ax.set_title("explained stress")
    if title:
        fig.suptitle(title)
    return fig
