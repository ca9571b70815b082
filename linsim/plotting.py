"""Figures: the 3-D InPCA embedding, the eigenvalue ladder, and phase diagrams.

All functions draw with matplotlib's object API on a figure they create and return it;
nothing is shown.  Conventions follow the InPCA literature: ``|λ|`` on a log axis, positive
(space-like) eigenvalues in black, negative (time-like) ones in red; time-like embedding axes
are labelled with ``(−)``.
"""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def eigenvalue_ladder(ax, eigenvalues, n: int = 30, label: str | None = None, marker: str = "o"):
    """Draw ``|λ_k|`` against ``k`` (log scale) on ``ax``; negative eigenvalues in red."""
    lam = np.asarray(eigenvalues, dtype=np.float64)[:n]
    k = np.arange(1, lam.size + 1)
    pos = lam >= 0
    ax.semilogy(k[pos], np.abs(lam[pos]), marker, color="black", ms=4, ls="none", label=label)
    if (~pos).any():
        ax.semilogy(k[~pos], np.abs(lam[~pos]), marker, color="red", ms=4, ls="none",
                    label=None if label is None else f"{label} (negative)")
    ax.set_xlabel("k")
    ax.set_ylabel("|λ_k|")
    return ax


def ribbon_figure(embedding, title: str = ""):
    """3-D embedding coloured by training time (one line per run) plus the eigenvalue ladder
    and the explained-stress curve.

    Parameters
    ----------
    embedding : linsim.embed.Embedding
        Fitted InPCA of one or more trajectories (needs at least 3 components for the 3-D panel;
        fewer are padded with zeros).
    """
    plt = _pyplot()
    from matplotlib import cm, colors

    model = embedding.model
    x = np.zeros((embedding.coordinates.shape[0], 3))
    k = min(3, embedding.coordinates.shape[1])
    x[:, :k] = embedding.coordinates[:, :k]
    pts = embedding.points
    t = pts["time"]
    norm = colors.LogNorm(vmin=max(t[t > 0].min() if (t > 0).any() else 1, 1e-12), vmax=max(t.max(), 1e-12)) \
        if (t > 0).any() else colors.Normalize(0, 1)
    cmap = cm.viridis
    fig = plt.figure(figsize=(14, 4.8))
    ax3 = fig.add_subplot(1, 3, 1, projection="3d")
    for key in np.unique(np.stack([pts["trajectory"], pts["run"]], axis=1), axis=0):
        sel = (pts["trajectory"] == key[0]) & (pts["run"] == key[1])
        order = np.argsort(pts["checkpoint"][sel])
        xs = x[sel][order]
        ax3.plot(xs[:, 0], xs[:, 1], xs[:, 2], color="0.6", lw=0.6)
    tc = np.where(t > 0, t, norm.vmin)
    ax3.scatter(x[:, 0], x[:, 1], x[:, 2], c=cmap(norm(tc)), s=8, depthshade=False)
    sig = list(model.signature_[:3]) + [1] * (3 - min(3, len(model.signature_)))
    labels = [f"PC{j + 1}{' (−)' if s < 0 else ''}" for j, s in enumerate(sig)]
    ax3.set_xlabel(labels[0])
    ax3.set_ylabel(labels[1])
    ax3.set_zlabel(labels[2])
    ax3.set_title("InPCA embedding", pad=2)
    # step/time 0 cannot sit on a log colour scale: it is drawn with the first positive time's colour
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax3, shrink=0.6, pad=0.18,
                 label="training time (step 0 at the lowest colour)")

    ax = fig.add_subplot(1, 3, 2)
    eigenvalue_ladder(ax, model.eigenvalues_)
    ax.set_title("eigenvalue ladder (red: negative)")

    ax = fig.add_subplot(1, 3, 3)
    chi = model.explained_stress_
    ax.plot(np.arange(1, chi.size + 1), chi, "o-", ms=3, color="C0")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k")
    ax.set_ylabel("explained stress χ_k")
    ax.grid(alpha=0.3)
    ax.set_title("explained stress")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def phase_figure(ds, metric: str = "stress_k", title: str = ""):
    """Heat map of a simulated metric over the first two sweep axes, with the theory's
    ribbon boundary drawn over it and disagreeing cells marked.

    Parameters
    ----------
    ds : xarray.Dataset from :func:`linsim.sweep.run_phase` (two axes; a third axis is
        averaged over its first value only: the slice at index 0 is drawn).
    metric : str
        Simulated metric without prefix (``stress_k``, ``k_chi``, ``decay_rate``, ...).
    """
    plt = _pyplot()
    from linsim.sweep import is_log_axis

    dims = list(ds["status"].dims)
    sel = {d: 0 for d in dims[2:]}
    xname, yname = dims[0], dims[1]
    xv, yv = ds[xname].values, ds[yname].values
    sim = ds[f"sim_{metric}"].isel(sel).values if f"sim_{metric}" in ds else None
    fig, ax = plt.subplots(figsize=(6.4, 5))
    if sim is not None:
        mesh = ax.pcolormesh(_edges(xv), _edges(yv), sim.T, cmap="magma", shading="flat")
        fig.colorbar(mesh, ax=ax, label=f"simulated {metric}")
    k_max = int(ds.attrs.get("criterion_k_max", 3))
    chi = float(ds.attrs.get("criterion_chi", 0.9))
    if "fine_k_chi" in ds:
        fx, fy = ds[f"fine_{xname}"].values, ds[f"fine_{yname}"].values
        ax.contour(fx, fy, ds["fine_k_chi"].values.T, levels=[k_max + 0.5], colors="cyan", linewidths=2)
    elif "theory_k_chi" in ds:
        ax.contour(xv, yv, ds["theory_k_chi"].isel(sel).values.T, levels=[k_max + 0.5],
                   colors="cyan", linewidths=2)
    if "sim_is_ribbon" in ds and "theory_is_ribbon" in ds:
        s = ds["sim_is_ribbon"].isel(sel).values
        p = ds["theory_is_ribbon"].isel(sel).values
        bad = np.isfinite(s) & np.isfinite(p) & (s != p)
        xi, yi = np.nonzero(bad)
        ax.plot(xv[xi], yv[yi], "x", color="white", ms=7, mew=2, ls="none",
                label="theory ≠ simulation")
    if "in_regime" in ds:
        out = ds["in_regime"].isel(sel).values == 0
        xi, yi = np.nonzero(out)
        ax.plot(xv[xi], yv[yi], ".", color="0.8", ms=3, ls="none", label="outside small-logit regime")
    failed = ds["status"].isel(sel).values != "ok"
    if failed.any():
        xi, yi = np.nonzero(failed)
        ax.plot(xv[xi], yv[yi], "s", mfc="none", mec="red", ls="none", label="failed cell")
    if is_log_axis(xv):
        ax.set_xscale("log")
    if is_log_axis(yv):
        ax.set_yscale("log")
    ax.set_xlabel(xname)
    ax.set_ylabel(yname)
    ax.plot([], [], color="cyan", lw=2, label=f"theory boundary k_χ = {k_max} (χ = {chi})")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.7)
    ax.set_title(title or f"hyper-ribbon phase diagram (simulated {metric})")
    fig.tight_layout()
    return fig


def _edges(values) -> np.ndarray:
    """Cell edges for pcolormesh: geometric midpoints on log axes, arithmetic otherwise."""
    from linsim.sweep import is_log_axis

    v = np.asarray(values, dtype=np.float64)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5]) if v[0] <= 0 else np.array([v[0] / 1.5, v[0] * 1.5])
    if is_log_axis(v):
        lv = np.log(v)
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
