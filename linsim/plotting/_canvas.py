"""Private helpers: figures without pyplot, axes on demand, integer ticks.

Nothing here touches matplotlib's global state: figures are ``matplotlib.figure.Figure``
objects that belong to the caller (no pyplot figure manager, no backend switch), so a Qt,
Tk, ipympl or inline user keeps the backend they chose.
"""

from __future__ import annotations

__all__: list[str] = []


def new_figure(figsize=(6.4, 4.8)):
    """A free-standing ``Figure`` with constrained layout (not registered with pyplot)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def axes_or_new(ax, figsize=(5.0, 4.0), projection: str | None = None, name: str = "ax"):
    """Return ``ax`` (checked) or the axes of a new free-standing figure."""
    from matplotlib.axes import Axes

    if ax is None:
        fig = new_figure(figsize)
        return fig.add_subplot(projection=projection)
    if not isinstance(ax, Axes):
        raise TypeError(f"{name} must be a matplotlib Axes; got {type(ax).__name__}")
    if projection == "3d" and getattr(ax, "name", "") != "3d":
        raise ValueError(f"{name} must be a 3-D axes (add_subplot(projection='3d')); got a {ax.name!r} axes")
    return ax


def integer_ticks(axis) -> None:
    """Put ticks only at integers on ``axis`` (an ``ax.xaxis``/``ax.yaxis`` or a colour bar axis)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
