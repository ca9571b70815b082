"""Phase diagrams of a sweep: simulated metric, theory and simulated ribbon boundaries, disagreements.

Reads the ``xarray.Dataset`` of :func:`linsim.sweep.run_phase`: per-cell variables
``sim_<metric>``, ``sim_k_chi``, ``theory_k_chi``, ``sim_is_ribbon``, ``theory_is_ribbon``,
``in_regime``, ``status`` and, when present, the fine theory map ``fine_k_chi`` on dims
``fine_<axis>``; the criterion from the attributes ``criterion_chi`` and ``criterion_k_star``
(or the older ``criterion_k_max``).  Axes are labelled in the theory's symbols (``c``,
``ρ/σ₀``, ``T``, ...).
"""

from __future__ import annotations

import numpy as np

from linsim.plotting._canvas import integer_ticks, new_figure

__all__ = ["MAX_PANELS", "axis_label", "phase_curve", "phase_figure", "phase_map"]

#: Short words for the sweep axes; the symbol (c, ρ/σ₀, T, ...) comes from the sweep's own
#: table (:func:`linsim.sweep.axis_info`) or from the coordinate's ``symbol`` attribute.
_WORDS = {
    "slope": "input-spectrum slope",
    "scale_ratio": "output-to-weight ratio",
    "steps": "training steps",
    "teacher_scale": "teacher scale",
    "init_scale": "initial-weight scale",
    "n_classes": "classes",
    "n_runs": "runs",
    "n_checkpoints": "checkpoints",
    "n_samples": "samples",
    "dim": "input dimension",
    "lambda_1": "largest eigenvalue",
    "lr": "learning rate",
    "hidden": "hidden width",
    "batch_size": "batch size",
    "kernel_bandwidth": "kernel bandwidth",
}
_INTEGER_AXES = {"steps", "n_classes", "n_runs", "n_checkpoints", "n_samples", "dim", "hidden",
                 "batch_size"}
_REPLICATE_DIMS = ("replicate",)

#: Most panels :func:`phase_figure` draws for the values of a third sweep axis.
MAX_PANELS = 4

#: Line styles of the two boundaries and the marker of disagreeing cells.
THEORY_STYLE = {"colors": "black", "linewidths": 2.4, "linestyles": "solid"}
SIM_STYLE = {"colors": "gold", "linewidths": 2.0, "linestyles": "dashed"}
#: The analytic boundary ``theory.critical_ratio`` (a curve, not a contour) and the trivial rule.
ANALYTIC_STYLE = {"color": "magenta", "lw": 2.0, "ls": "-."}
TRIVIAL_STYLE = {"color": "0.35", "lw": 1.2, "ls": ":"}


def _outlined():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=3.6, foreground="black")]


def axis_label(name: str, symbol: str | None = None) -> str:
    """Axis label of a sweep axis: a few words and the theory's symbol.

    Parameters
    ----------
    name : str
        Canonical sweep axis (``slope``, ``scale_ratio``, ``steps``, ...).
    symbol : str, optional
        The symbol to show (default: the sweep's, :func:`linsim.sweep.axis_info`).

    Examples
    --------
    >>> axis_label("scale_ratio"), axis_label("slope"), axis_label("steps")
    ('output-to-weight ratio ρ/σ₀', 'input-spectrum slope c', 'training steps T')
    """
    if symbol is None:
        try:
            from linsim.sweep import axis_info

            symbol = axis_info(name).symbol
        except (ImportError, ValueError):
            symbol = None
    words = _WORDS.get(name, name)
    return f"{words} {symbol}" if symbol and symbol != name else words


def _is_log(values, coord=None) -> bool:
    spacing = getattr(coord, "attrs", {}).get("spacing") if coord is not None else None
    if spacing in ("log", "lin"):
        return spacing == "log"
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size < 2 or v[0] <= 0:
        return False
    if v.size == 2:  # two positive values a decade or more apart read best on a log axis
        return bool(v[1] / v[0] >= 10)
    d_lin, d_log = np.diff(v), np.diff(np.log(v))
    lin = np.std(d_lin) / max(np.mean(d_lin), 1e-300)
    log = np.std(d_log) / max(np.mean(d_log), 1e-300)
    return bool(log < lin)


def _edges(values, log: bool) -> np.ndarray:
    """Cell edges: geometric midpoints on log axes, arithmetic ones otherwise."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 1:
        return np.array([v[0] / 1.5, v[0] * 1.5]) if (log or v[0] > 0) else np.array([v[0] - 0.5, v[0] + 0.5])
    u = np.log(v) if log else v
    mid = (u[1:] + u[:-1]) / 2
    e = np.concatenate([[2 * u[0] - mid[0]], mid, [2 * u[-1] - mid[-1]]])
    return np.exp(e) if log else e


def _criterion(ds) -> tuple[float, int]:
    chi = float(ds.attrs.get("criterion_chi", 0.9))
    k = ds.attrs.get("criterion_k_star", ds.attrs.get("criterion_k_max", 3))
    return chi, int(k)


class _Grid:
    """The 2-D slice of a sweep that a phase map shows (replicates averaged)."""

    def __init__(self, ds, index: dict | None):
        if "status" not in ds:
            raise ValueError("phase_map needs a sweep dataset from linsim.sweep.run_phase (no 'status' variable)")
        dims = [d for d in ds["status"].dims if d not in _REPLICATE_DIMS]
        if len(dims) < 2:
            raise ValueError(f"phase_map needs a sweep over at least two axes; this one has {dims}")
        self.x, self.y = dims[0], dims[1]
        index = dict(index or {})
        for name in index:
            if name not in dims[2:]:
                raise ValueError(f"index: {name!r} is not a third sweep axis of this dataset (axes: {dims})")
        self.fixed = {d: int(index.get(d, 0)) for d in dims[2:]}
        self.ds = ds.isel(self.fixed) if self.fixed else ds
        self.xv = np.asarray(ds[self.x].values, dtype=np.float64)
        self.yv = np.asarray(ds[self.y].values, dtype=np.float64)
        self.xlog = _is_log(self.xv, ds[self.x])
        self.ylog = _is_log(self.yv, ds[self.y])
        status = self.ds["status"]
        self.ok = self._reduce(status == "ok", all_=True)
        self.missing = self._reduce(status == "missing", all_=False) > 0

    def _reduce(self, da, all_: bool = False) -> np.ndarray:
        rep = [d for d in da.dims if d in _REPLICATE_DIMS]
        if rep:
            da = da.all(rep) if all_ else da.mean(rep, skipna=True)
        return np.asarray(da.transpose(self.x, self.y).values)

    def values(self, name: str) -> np.ndarray | None:
        """A per-cell variable as float (x, y), NaN where the cell failed; None if absent."""
        if name not in self.ds:
            return None
        da = self.ds[name]
        if da.dtype == bool:
            da = da.astype(np.float64)
        keep = self.ds["status"] == "ok"
        family = name.split("_", 1)[0]
        if f"{family}_valid" in self.ds:  # where a family has no value its booleans read False
            keep = keep & self.ds[f"{family}_valid"].astype(bool)
        da = da.where(keep)
        return np.asarray(self._reduce(da), dtype=np.float64)


def _has_lines(contours) -> bool:
    return any(len(p.vertices) > 1 for p in contours.get_paths())


def _finite_k(k: np.ndarray, k_star: int) -> np.ndarray:
    """``k_χ`` ready for contouring: an unreached threshold (inf) counts as far above k*."""
    return np.where(np.isinf(k), k_star + 10.0, k)


def _analytic_curve(ds, ax, grid, handles) -> bool:
    """Draw the analytic boundary ``boundary_critical_ratio`` (and the trivial rule's line)
    when the map's axes are its axis and ρ/σ₀; return whether a curve was drawn."""
    from matplotlib.lines import Line2D

    if "boundary_critical_ratio" not in ds or "scale_ratio" not in (grid.x, grid.y):
        return False
    other = grid.y if grid.x == "scale_ratio" else grid.x
    bdim = f"boundary_{other}"
    if bdim not in ds["boundary_critical_ratio"].dims:
        return False
    v = np.asarray(ds[bdim].values, dtype=np.float64)
    r = np.asarray(ds["boundary_critical_ratio"].values, dtype=np.float64)
    lo = _edges(grid.yv if grid.y == "scale_ratio" else grid.xv,
                grid.ylog if grid.y == "scale_ratio" else grid.xlog)[0]
    shown = np.where(r == 0.0, lo, r)  # 0: every ratio is a ribbon -> the curve runs along the edge
    shown = np.where(np.isfinite(shown), shown, np.nan)  # inf: no ratio gives one -> a gap
    xs, ys = (v, shown) if grid.y == "scale_ratio" else (shown, v)
    drawn = bool(np.isfinite(shown).any())
    ax.plot(xs, ys, **ANALYTIC_STYLE)
    handles.append(Line2D([], [], **ANALYTIC_STYLE,
                          label="analytic boundary (theory.critical_ratio)" if drawn
                          else "analytic boundary: none in this range"))
    triv = ds.attrs.get("trivial_ribbon_ratio")
    if triv is not None:
        line = ax.axhline if grid.y == "scale_ratio" else ax.axvline
        line(float(triv), **TRIVIAL_STYLE)
        handles.append(Line2D([], [], **TRIVIAL_STYLE, label=f"trivial rule ρ/σ₀ = {float(triv):g}"))
    return drawn


def phase_map(ds, metric: str = "stress_k", *, ax=None, index: dict | None = None,
              colorbar: bool = True, legend: bool = True, limits: tuple | None = None):
    """Draw one phase diagram: a simulated metric per cell, both ribbon boundaries, disagreements.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`linsim.sweep.run_phase`, with at least two sweep axes (the first is x,
        the second y).  A ``replicate`` dimension is averaged over.
    metric : str
        Simulated metric without its prefix: ``stress_k`` (explained stress at ``k*``, the
        default), ``k_chi``, ``decay_rate``, ``negative_share``, ...
    ax : matplotlib Axes, optional
        Where to draw; default a new free-standing figure (no pyplot state).
    index : dict, optional
        Which slice of a third sweep axis to show, ``{axis_name: position}`` (default 0).
    colorbar : bool
        Add a colour bar that names the metric (and which ``k``).
    legend : bool
        Add the legend below the axes, off the data.
    limits : (low, high), optional
        Colour range of the metric (default: the data's; for ``stress_k`` the scale is
        centred on ``χ`` and ends at 1), e.g. to share one scale between panels.

    Returns
    -------
    matplotlib Axes
        Drawn: the heat map (for ``stress_k`` on a red-blue scale centred on ``χ``, so blue
        cells are ribbons); the theory's boundary, the ``k_χ = k* + ½`` contour (black,
        solid; from the fine map ``fine_k_chi`` when present, else from ``theory_k_chi``);
        the analytic boundary ``boundary_critical_ratio`` (magenta, dash-dot; where the
        dataset has it: ρ/σ₀ against one other axis) with the trivial rule's line ρ/σ₀ =
        ``trivial_ribbon_ratio`` (grey, dotted);
        the simulation's boundary, the same contour of ``sim_k_chi`` (gold, dashed); cells
        where theory and simulation disagree on ribbon / no ribbon (white ``X``); cells
        outside the small-logit regime (grey dots); failed cells (red squares).  The legend
        sits below the axes.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> c, r = np.linspace(0, 2, 3), np.geomspace(0.1, 10, 3)
    >>> k = np.array([[1.0, 2, 5], [1, 3, 6], [2, 4, np.inf]])
    >>> ds = xr.Dataset({"status": (("slope", "scale_ratio"), np.full((3, 3), "ok")),
    ...                  "sim_k_chi": (("slope", "scale_ratio"), k),
    ...                  "sim_stress_k": (("slope", "scale_ratio"), np.linspace(0.5, 1, 9).reshape(3, 3)),
    ...                  "sim_is_ribbon": (("slope", "scale_ratio"), k <= 3),
    ...                  "theory_k_chi": (("slope", "scale_ratio"), k),
    ...                  "theory_is_ribbon": (("slope", "scale_ratio"), k <= 2)},
    ...                 coords={"slope": c, "scale_ratio": r}, attrs={"criterion_k_star": 3})
    >>> ax = phase_map(ds)
    >>> ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()
    ('input-spectrum slope c', 'output-to-weight ratio ρ/σ₀', 'log')
    """
    from matplotlib import colors
    from matplotlib.lines import Line2D

    from linsim.plotting._canvas import axes_or_new

    grid = _Grid(ds, index)
    chi, k_star = _criterion(ds)
    ax = axes_or_new(ax, figsize=(6.4, 5.6))
    fig = ax.figure
    xv, yv = grid.xv, grid.yv
    handles = []

    sim = grid.values(f"sim_{metric}")
    if sim is None:
        raise ValueError(f"the dataset has no simulated metric 'sim_{metric}'; available: "
                         f"{sorted(v[4:] for v in ds.data_vars if v.startswith('sim_'))}")
    is_k = metric == "k_chi"
    xe, ye = _edges(xv, grid.xlog), _edges(yv, grid.ylog)
    if metric == "stress_k":
        # ribbon <=> chi_{k*} >= chi: a diverging scale centred on chi shows the verdict itself
        lo = float(np.nanmin(sim)) if np.isfinite(sim).any() else chi - 0.1
        lo = lo if limits is None else float(limits[0])
        norm = colors.TwoSlopeNorm(vcenter=chi, vmin=min(lo, 2 * chi - 1.0), vmax=1.0)
        mesh = ax.pcolormesh(xe, ye, sim.T, cmap="RdBu", norm=norm, shading="flat")
    elif is_k:
        shown = _finite_k(sim, k_star)
        top = int(np.nanmax(shown)) if np.isfinite(shown).any() else k_star + 1
        top = top if limits is None else int(_finite_k(np.asarray([limits[1]], float), k_star)[0])
        bounds = np.arange(0.5, max(top, k_star + 1) + 1.0)
        mesh = ax.pcolormesh(xe, ye, shown.T, cmap="viridis",
                             norm=colors.BoundaryNorm(bounds, 256), shading="flat")
    else:
        lo, hi = (None, None) if limits is None else limits
        mesh = ax.pcolormesh(xe, ye, sim.T, cmap="viridis", shading="flat", vmin=lo, vmax=hi)
    if colorbar:
        if metric == "stress_k":
            cl = rf"simulated $\chi_{{k^*}}$: explained stress of $k^* = {k_star}$ dims (ribbon if $\geq \chi$)"
        elif is_k:
            cl = rf"simulated $k_\chi$ at $\chi = {chi:g}$ (top: not reached)"
        else:
            cl = f"simulated {metric}"
        cb = fig.colorbar(mesh, ax=ax, label=cl)
        if is_k:
            integer_ticks(cb.ax.yaxis)
        if metric == "stress_k":
            cb.ax.axhline(chi, color="black", lw=1.5)

    level = [k_star + 0.5]
    theory_drawn, theory_src = False, "theory per cell"
    fine_name = "fine_k_chi"
    if fine_name in ds and f"fine_{grid.x}" in ds[fine_name].dims and f"fine_{grid.y}" in ds[fine_name].dims:
        fk = ds[fine_name].transpose(f"fine_{grid.x}", f"fine_{grid.y}")
        fx, fy = ds[f"fine_{grid.x}"].values, ds[f"fine_{grid.y}"].values
        fkv = _finite_k(np.asarray(fk.values, dtype=np.float64), k_star)
        theory_src = "fine theory map"
        if fx.size > 1 and fy.size > 1:
            theory_drawn = _has_lines(ax.contour(fx, fy, fkv.T, levels=level, **THEORY_STYLE))
    else:
        tk = grid.values("theory_k_chi")
        if tk is not None and xv.size > 1 and yv.size > 1:
            theory_drawn = _has_lines(ax.contour(xv, yv, _finite_k(tk, k_star).T, levels=level, **THEORY_STYLE))
    handles.append(Line2D([], [], color="black", lw=2.4,
                          label=f"theory boundary ({theory_src})" if theory_drawn
                          else f"theory boundary: none in this range ({theory_src})"))
    _analytic_curve(ds, ax, grid, handles)
    sk = grid.values("sim_k_chi")
    sim_drawn = False
    if sk is not None and xv.size > 1 and yv.size > 1:
        cs = ax.contour(xv, yv, _finite_k(sk, k_star).T, levels=level, **SIM_STYLE)
        cs.set(path_effects=_outlined())
        sim_drawn = _has_lines(cs)
    handles.append(Line2D([], [], color="gold", lw=2.0, ls="--", path_effects=_outlined(),
                          label="simulated boundary (cell centres)" if sim_drawn
                          else "simulated boundary: none in this range"))

    s, p = grid.values("sim_is_ribbon"), grid.values("theory_is_ribbon")
    if s is not None and p is not None:
        s_r, p_r = np.where(np.isfinite(s), s >= 0.5, False), np.where(np.isfinite(p), p >= 0.5, False)
        bad = np.isfinite(s) & np.isfinite(p) & (s_r != p_r)
        xi, yi = np.nonzero(bad)
        ax.plot(xv[xi], yv[yi], "X", ms=11, mfc="white", mec="black", mew=1.2, ls="none")
        handles.append(Line2D([], [], marker="X", ms=9, mfc="white", mec="black", ls="none",
                              label=f"theory ≠ simulation ({int(bad.sum())} cells)"))
    reg = grid.values("in_regime")
    if reg is not None:
        xi, yi = np.nonzero(np.isfinite(reg) & (reg < 0.5))
        if xi.size:
            ax.plot(xv[xi], yv[yi], ".", color="0.75", ms=4, ls="none")
            handles.append(Line2D([], [], marker=".", color="0.5", ls="none",
                                  label="outside the small-logit regime"))
    missing = grid.missing
    if missing.any():
        xi, yi = np.nonzero(missing)
        ax.plot(xv[xi], yv[yi], "s", ms=9, mfc="0.85", mec="0.4", ls="none")
        handles.append(Line2D([], [], marker="s", mfc="0.85", mec="0.4", ls="none",
                              label=f"not computed ({int(missing.sum())})"))
    failed = ~grid.ok & ~missing
    if failed.any():
        xi, yi = np.nonzero(failed)
        ax.plot(xv[xi], yv[yi], "s", ms=9, mfc="none", mec="red", mew=1.5, ls="none")
        handles.append(Line2D([], [], marker="s", mfc="none", mec="red", ls="none",
                              label=f"failed cell ({int(failed.sum())})"))

    if grid.xlog:
        ax.set_xscale("log")
    if grid.ylog:
        ax.set_yscale("log")
    ax.set_xlim(_edges(xv, grid.xlog)[[0, -1]])
    ax.set_ylim(_edges(yv, grid.ylog)[[0, -1]])
    for name, axis, log in ((grid.x, ax.xaxis, grid.xlog), (grid.y, ax.yaxis, grid.ylog)):
        if name in _INTEGER_AXES and not log:
            integer_ticks(axis)
    ax.set_xlabel(axis_label(grid.x, ds[grid.x].attrs.get("symbol")))
    ax.set_ylabel(axis_label(grid.y, ds[grid.y].attrs.get("symbol")))
    if grid.fixed:
        ax.set_title(", ".join(f"{axis_label(d, ds[d].attrs.get('symbol'))} = {ds[d].values[i]:g}"
                               for d, i in grid.fixed.items()),
                     fontsize=9)
    if legend:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
                  fontsize=8, frameon=False)
    return ax


def phase_curve(ds, metric: str = "stress_k", *, ax=None, legend: bool = True):
    """Draw a one-axis sweep: the simulated metric against the axis, the theory beside it.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`linsim.sweep.run_phase` with one sweep axis.
    metric : str
        Metric without its prefix (default ``stress_k``); drawn for the simulation (with
        ``±`` one standard deviation over replicates when ``sim_<metric>_std`` exists), the
        expected-spectrum theory (``theory_``) and the same-draw theory (``draw_``).
    ax : matplotlib Axes, optional
        Where to draw; default a new free-standing figure.
    legend : bool
        Add the legend below the axes.

    Returns
    -------
    matplotlib Axes
        For ``stress_k`` the threshold ``χ`` is a dashed line (cells above it are ribbons);
        cells where theory and simulation disagree on ribbon / no ribbon carry a white ``X``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"status": ("slope", np.full(3, "ok")),
    ...                  "sim_stress_k": ("slope", [0.95, 0.9, 0.8]),
    ...                  "theory_stress_k": ("slope", [0.94, 0.91, 0.85])},
    ...                 coords={"slope": [0.0, 1.0, 2.0]})
    >>> ax = phase_curve(ds)
    >>> ax.get_xlabel(), len(ax.get_legend().get_texts())
    ('input-spectrum slope c', 2)
    """
    from matplotlib.lines import Line2D

    from linsim.plotting._canvas import axes_or_new

    if "status" not in ds:
        raise ValueError("phase_curve needs a sweep dataset from linsim.sweep.run_phase (no 'status' variable)")
    dims = [d for d in ds["status"].dims if d not in _REPLICATE_DIMS]
    if len(dims) != 1:
        raise ValueError(f"phase_curve draws a sweep over one axis; this one has {dims} (use phase_map)")
    if f"sim_{metric}" not in ds:
        raise ValueError(f"the dataset has no simulated metric 'sim_{metric}'")
    name = dims[0]
    chi, k_star = _criterion(ds)
    ax = axes_or_new(ax, figsize=(6.4, 4.8))
    x = np.asarray(ds[name].values, dtype=np.float64)
    ok = np.asarray(ds["status"].values == "ok")
    if ok.ndim > 1:
        ok = ok.all(axis=tuple(range(1, ok.ndim)))

    def values(var):
        if var not in ds:
            return None
        v = np.asarray(ds[var].values, dtype=np.float64)
        family = var.split("_", 1)[0]
        keep = ok.copy()
        if f"{family}_valid" in ds:
            keep &= np.asarray(ds[f"{family}_valid"].values, dtype=bool)
        return np.where(keep, v, np.nan)

    sim = values(f"sim_{metric}")
    std = values(f"sim_{metric}_std")
    ax.plot(x, sim, "o-", color="black", label="simulation")
    if std is not None and np.isfinite(std).any():
        ax.fill_between(x, sim - std, sim + std, color="0.6", alpha=0.3, lw=0,
                        label="simulation ± 1 s.d. (replicates)")
    for prefix, style, label in (("theory", "s--", "theory (expected spectrum)"),
                                 ("draw", "^:", "theory (same draw)")):
        v = values(f"{prefix}_{metric}")
        if v is not None and np.isfinite(v).any():
            ax.plot(x, v, style, color="tab:blue" if prefix == "theory" else "tab:orange", ms=5, label=label)
    if metric == "stress_k":
        ax.axhline(chi, color="0.4", ls="--", lw=1)
        ax.text(0.99, chi, rf"$\chi = {chi:g}$: ribbon above", transform=ax.get_yaxis_transform(),
                ha="right", va="bottom", fontsize=8, color="0.3")
        ax.set_ylabel(rf"explained stress $\chi_k$ at $k = k^* = {k_star}$")
    else:
        ax.set_ylabel(metric)
    s_r, p_r = values("sim_is_ribbon"), values("theory_is_ribbon")
    if s_r is not None and p_r is not None:
        bad = np.isfinite(s_r) & np.isfinite(p_r) & ((s_r >= 0.5) != (p_r >= 0.5))
        if bad.any():
            ax.plot(x[bad], sim[bad], "X", ms=11, mfc="white", mec="black", ls="none",
                    label=f"theory ≠ simulation ({int(bad.sum())} cells)")
    if (~ok).any():
        ax.plot(x[~ok], np.zeros((~ok).sum()), "s", mfc="none", mec="red", ls="none",
                transform=ax.get_xaxis_transform(), label=f"failed cell ({int((~ok).sum())})")
    if _is_log(x, ds[name]):
        ax.set_xscale("log")
    if name in _INTEGER_AXES and not _is_log(x, ds[name]):
        integer_ticks(ax.xaxis)
    ax.set_xlabel(axis_label(name, ds[name].attrs.get("symbol")))
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8, frameon=False)
    return ax


def phase_figure(ds, metric: str = "stress_k", title: str = "", *, index: dict | None = None, fig=None):
    """A figure holding one :func:`phase_map` (two or three axes) or :func:`phase_curve` (one axis).

    Parameters
    ----------
    ds : xarray.Dataset from :func:`linsim.sweep.run_phase`
    metric : str
        Simulated metric of the heat map (default ``stress_k``).
    title : str
        Figure title (default: names the criterion).
    index : dict, optional
        Slice of a third sweep axis to draw alone; by default a three-axis sweep gets one
        panel per value of its third axis (the first :data:`MAX_PANELS`).
    fig : matplotlib Figure or SubFigure, optional
        Draw into it (must be empty); default a new free-standing ``Figure``.

    Returns
    -------
    matplotlib Figure (or the given SubFigure)

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"status": (("slope", "steps"), np.full((2, 2), "ok")),
    ...                  "sim_stress_k": (("slope", "steps"), [[0.9, 0.95], [0.8, 0.99]])},
    ...                 coords={"slope": [0.0, 1.0], "steps": [10, 100]})
    >>> fig = phase_figure(ds)
    >>> fig.axes[0].get_ylabel()
    'training steps T'
    """
    dims = [d for d in ds["status"].dims if d not in _REPLICATE_DIMS] if "status" in ds else []
    third = dims[2] if len(dims) == 3 and not index else None
    n_panels = min(ds.sizes[third], MAX_PANELS) if third else 1
    if fig is None:
        fig = new_figure((6.6 * n_panels, 6.0))
    elif fig.axes:
        raise ValueError("phase_figure: the given figure already has axes; pass an empty one")
    if len(dims) == 1:
        if index:
            raise ValueError("index selects a third sweep axis; this sweep has one axis")
        phase_curve(ds, metric, ax=fig.add_subplot())
    elif third:  # one panel per value of the third axis (the first MAX_PANELS)
        values = ds[f"sim_{metric}"].where(ds["status"] == "ok") if f"sim_{metric}" in ds else None
        shared = None
        if values is not None and np.isfinite(values.values).any():
            shared = (float(values.min(skipna=True)), float(values.max(skipna=True)))
        for i, ax in enumerate(np.atleast_1d(fig.subplots(1, n_panels))):
            phase_map(ds, metric, ax=ax, index={third: i}, limits=shared)
    else:
        phase_map(ds, metric, ax=fig.add_subplot(), index=index)
    chi, k_star = _criterion(ds)
    fig.suptitle(title or rf"hyper-ribbon phase diagram: ribbon if $k_\chi \leq {k_star}$ at $\chi = {chi:g}$")
    return fig
