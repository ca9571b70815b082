"""Figures of a theory-vs-deep comparison, drawn without pyplot.

Every function draws on ``ax`` when given (checked to be a matplotlib Axes; 3-D where needed)
or on the axes of a new free-standing :class:`matplotlib.figure.Figure` (never registered with
pyplot; the backend is never changed), and returns the axes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dendrogram_axes", "embedding_axes", "phase_axes", "progress_axes", "stress_axes"]


def _axes(ax, figsize=(5.5, 4.2), projection=None):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if ax is None:
        return Figure(figsize=figsize, layout="constrained").add_subplot(projection=projection)
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes; got {type(ax).__name__}")
    if projection == "3d" and getattr(ax, "name", "") != "3d":
        raise ValueError("ax must be a 3-D axes (add_subplot(projection='3d'))")
    return ax


def embedding_axes(joint, families, *, ax=None):
    """3-D joint InPCA embedding, one colour per family, runs as lines, the geodesic in black.

    Parameters
    ----------
    joint : JointEmbedding
    families : sequence of str
        Family label of each trajectory (``joint.member`` indexes it), e.g. the architecture of a
        deep configuration or the counterpart name of a linear model.
    ax : 3-D Axes, optional

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> comp = tiny_comparison()
    >>> embedding_axes(comp.joint, comp.families).name
    '3d'
    """
    ax = _axes(ax, (6.0, 5.0), "3d")
    X = np.zeros((joint.coordinates.shape[0], 3))
    k = min(3, joint.coordinates.shape[1])
    X[:, :k] = joint.coordinates[:, :k]
    G = np.zeros((joint.geodesic_coordinates.shape[0], 3))
    G[:, :k] = joint.geodesic_coordinates[:, :k]
    fam = np.asarray([families[m] for m in joint.member])
    names = list(dict.fromkeys(fam))
    for i, name in enumerate(names):
        colour = f"C{i % 10}"
        sel = fam == name
        deep = bool(joint.is_deep[sel][0])
        for key in np.unique(np.stack([joint.member[sel], joint.run[sel]], 1), axis=0):
            s = sel & (joint.member == key[0]) & (joint.run == key[1])
            order = np.argsort(joint.checkpoint[s])
            xs = X[s][order]
            ax.plot(xs[:, 0], xs[:, 1], xs[:, 2], color=colour, lw=0.8 if deep else 1.2,
                    ls="-" if deep else "--", alpha=0.7)
        ax.scatter(X[sel, 0], X[sel, 1], X[sel, 2], color=colour, s=5 if deep else 9,
                   marker="o" if deep else "^", label=f"{name}{'' if deep else ' (linear)'}", depthshade=False)
    ax.plot(G[:, 0], G[:, 1], G[:, 2], color="black", lw=2.0, label="uniform → one-hot geodesic")
    sig = list(joint.model.signature_[:3]) + [1.0] * (3 - k)
    for setter, j in zip((ax.set_xlabel, ax.set_ylabel, ax.set_zlabel), range(3)):
        setter(f"PC{j + 1}{' (−)' if sig[j] < 0 else ''}")
    ax.legend(fontsize=6, loc="upper left", framealpha=0.6)
    ax.set_title("joint InPCA embedding")
    return ax


_VIEW_LABELS = {
    "all": "all models",
    "deep": "deep nets only",
    "linear_basis_all": "linear basis, all projected",
    "linear_basis_deep": "linear basis, deep projected",
}


def stress_axes(views, *, chi=0.9, ax=None):
    """The four explained-stress curves ``chi_k`` against ``k`` (a :class:`StressViews`).

    Examples
    --------
    >>> import numpy as np
    >>> from linsim.compare import StressViews
    >>> v = StressViews(*(np.array([0.5, 0.8, 0.9]),) * 4)
    >>> len(stress_axes(v).lines)   # four curves and the chi line
    5
    """
    ax = _axes(ax)
    for i, (name, label) in enumerate(_VIEW_LABELS.items()):
        y = np.asarray(getattr(views, name))
        ax.plot(np.arange(1, y.size + 1), y, "o-", ms=3, color=f"C{i}", label=label)
    if chi is not None:
        ax.axhline(chi, color="0.5", ls=":", lw=1, label=f"χ = {chi:g}")
    ax.set_xlabel("InPCA dimensions k")
    ax.set_ylabel("explained stress χ_k")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("explained stress of four views")
    return ax


def progress_axes(study, *, ax=None):
    """Seed-mean progress against step (log axis), colour by architecture, line style by width.

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> progress_axes(tiny_comparison().study).get_xscale()
    'log'
    """
    ax = _axes(ax)
    archs = list(dict.fromkeys(str(p.get("architecture", "?")) for p in study.params))
    widths = sorted({float(p.get("width", 1.0)) for p in study.params})
    styles = ["-", "--", ":", "-."]
    for p, t, prog in zip(study.params, study.times, study.progress):
        a = archs.index(str(p.get("architecture", "?")))
        w = widths.index(float(p.get("width", 1.0)))
        ax.plot(np.maximum(t, 0.5), prog.mean(axis=0), color=f"C{a % 10}", ls=styles[w % 4], lw=1, alpha=0.8)
    for a, name in enumerate(archs):
        ax.plot([], [], color=f"C{a % 10}", label=name)
    for w, width in enumerate(widths):
        ax.plot([], [], color="0.3", ls=styles[w % 4], label=f"width ×{width:g}")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("step (step 0 drawn at 0.5)")
    ax.set_ylabel("progress along the geodesic")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title("progress vs step")
    return ax


def dendrogram_axes(linkage, names, *, ax=None):
    """Complete-linkage dendrogram of the configurations (``Findings.linkage``).

    Examples
    --------
    >>> import numpy as np
    >>> ax = dendrogram_axes(np.array([[0.0, 1.0, 0.3, 2.0]]), ["a", "b"])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['a', 'b']
    """
    from scipy.cluster.hierarchy import dendrogram

    ax = _axes(ax, (7.0, 4.0))
    Z = np.asarray(linkage)
    if Z.shape[0] == 0:
        ax.text(0.5, 0.5, "fewer than two configurations with distances: no dendrogram", ha="center", transform=ax.transAxes)
        return ax
    dendrogram(Z, labels=list(names), ax=ax, leaf_rotation=90, leaf_font_size=6, color_threshold=0)
    ax.set_ylabel("equal-progress distance (complete linkage)")
    ax.set_title("configurations clustered by trajectory distance")
    return ax


def phase_axes(rows, boundary_c, boundary_ratio, *, k_star=3, ax=None):
    """Theory's ribbon boundary in the (c, ρ/σ₀) plane with every deep configuration on it.

    Parameters
    ----------
    rows : sequence of ControlRow
    boundary_c, boundary_ratio : arrays
        The theory's critical ratio against ``c`` (:func:`theory.phase_boundary`); a ribbon is
        predicted above the curve.
    k_star : int
        Ribbon criterion ``k_chi <= k_star`` used for the markers.

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> comp = tiny_comparison()
    >>> phase_axes(comp.controls, *comp.boundary).get_yscale()
    'log'
    """
    ax = _axes(ax)
    bc, br = np.asarray(boundary_c, dtype=float), np.asarray(boundary_ratio, dtype=float)
    ok = np.isfinite(br) & (br > 0)
    ax.plot(bc[ok], br[ok], color="cyan", lw=2, label=f"theory boundary (k_χ = {k_star}; ribbon above)")
    if not ok.any():
        where = "everywhere" if np.all(br == 0) else "nowhere" if np.all(~np.isfinite(br)) else "off this axis"
        ax.text(0.5, 0.04, f"theory at these T, d, C, R: ribbon predicted {where}", transform=ax.transAxes,
                ha="center", fontsize=7, color="teal")
    for key, marker, label in (("c_input", "o", "deep net at c of inputs"), ("c_ntk", "s", "deep net at c of NTK")):
        c = np.array([getattr(r, key) for r in rows], dtype=float)
        ratio = np.array([r.ratio for r in rows], dtype=float)
        ribbon = np.array([r.measured_k <= k_star for r in rows])
        fin = np.isfinite(c) & np.isfinite(ratio) & (ratio > 0)
        if not fin.any():
            continue
        ax.scatter(c[fin & ribbon], ratio[fin & ribbon], marker=marker, color="C2", s=25,
                   label=f"{label}: measured ribbon")
        ax.scatter(c[fin & ~ribbon], ratio[fin & ~ribbon], marker=marker, facecolors="none", edgecolors="C3",
                   s=25, label=f"{label}: no ribbon")
    ax.set_yscale("log")
    if bc.size:
        ax.set_xlim(0.0, float(bc.max()))
    ax.set_xlabel("decay rate c")
    ax.set_ylabel("output-to-weight ratio ρ/σ₀")
    ax.legend(fontsize=6)
    ax.set_title("phase diagram with the deep nets")
    return ax
