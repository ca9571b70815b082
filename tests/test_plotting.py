"""Figures: no global matplotlib state, ax=/fig= respected, and the phase map draws what it claims.

Oracles are built by hand: synthetic sweep datasets whose disagreeing / failed cells and
boundaries are known, explained-stress curves whose k_χ is known.
"""

import matplotlib
import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from linsim.plotting import (axis_label, eigenvalue_ladder, embedding_3d, phase_curve, phase_figure, phase_map,
                             ribbon_figure, stress_curve)


@pytest.fixture(scope="module")
def emb():
    from linsim.embed import embed
    from linsim.ensemble import EnsembleConfig, simulate

    return embed(simulate(EnsembleConfig(dim=5, n_samples=10, n_classes=3, n_runs=3, steps=50,
                                         n_checkpoints=4, init_scale=0.05, teacher_scale=0.5)))


def _sweep(c, r, k_sim, k_theory, *, status=None, bool_flags=True, k_star=3, fine=True):
    dims = ("slope", "scale_ratio")
    k_sim, k_theory = np.asarray(k_sim, float), np.asarray(k_theory, float)
    flag = (lambda k: k <= k_star) if bool_flags else (lambda k: (k <= k_star).astype(float))
    data = {
        "status": (dims, np.full(k_sim.shape, "ok") if status is None else np.asarray(status)),
        "sim_k_chi": (dims, k_sim),
        "sim_stress_k": (dims, np.where(k_sim <= k_star, 0.95, 0.8)),
        "sim_is_ribbon": (dims, flag(k_sim)),
        "theory_k_chi": (dims, k_theory),
        "theory_is_ribbon": (dims, flag(k_theory)),
        "in_regime": (dims, np.ones(k_sim.shape, bool)),
    }
    coords = {"slope": c, "scale_ratio": r}
    if fine:
        fc, fr = np.linspace(c[0], c[-1], 7), np.geomspace(r[0], r[-1], 7)
        data["fine_k_chi"] = (("fine_slope", "fine_scale_ratio"), np.where(fr[None, :] + 0 * fc[:, None] > 1, 2.0, 5.0))
        coords.update(fine_slope=fc, fine_scale_ratio=fr)
    return xr.Dataset(data, coords=coords, attrs={"criterion_chi": 0.9, "criterion_k_star": k_star})


C3, R3 = np.array([0.0, 1.0, 2.0]), np.array([0.1, 1.0, 10.0])
K_SIM = [[5, 5, 2], [5, 2, 2], [5, 2, 2]]
K_TH = [[5, 5, 2], [5, 5, 2], [5, 2, 2]]  # disagrees at (1, 1) only


def _calls(emb):
    ds = _sweep(C3, R3, K_SIM, K_TH)
    return {
        "eigenvalue_ladder": lambda: eigenvalue_ladder([1.0, -0.2, 0.05]),
        "stress_curve": lambda: stress_curve([0.5, 0.95]),
        "embedding_3d": lambda: embedding_3d(emb),
        "ribbon_figure": lambda: ribbon_figure(emb),
        "phase_map": lambda: phase_map(ds),
        "phase_figure": lambda: phase_figure(ds),
    }


@pytest.mark.parametrize("name", ["eigenvalue_ladder", "stress_curve", "embedding_3d", "ribbon_figure",
                                  "phase_map", "phase_figure"])
def test_no_backend_switch_and_no_pyplot_figures(name, emb):
    import matplotlib.pyplot as plt

    old = matplotlib.get_backend()
    matplotlib.use("template", force=True)  # a backend the old code would have replaced by Agg
    try:
        figs = plt.get_fignums()
        out = _calls(emb)[name]()
        assert matplotlib.get_backend() == "template"
        assert plt.get_fignums() == figs, "a plotting function registered a pyplot figure"
        fig = out if isinstance(out, Figure) else out.figure
        assert isinstance(fig, Figure)
        fig.savefig(__import__("io").BytesIO(), format="png")  # renders without pyplot
        assert matplotlib.get_backend() == "template"
    finally:
        matplotlib.use(old, force=True)


def test_panels_draw_on_the_given_axes(emb):
    fig = Figure()
    ax1, ax2, ax4 = fig.add_subplot(2, 2, 1), fig.add_subplot(2, 2, 2), fig.add_subplot(2, 2, 4)
    ax3 = fig.add_subplot(2, 2, 3, projection="3d")
    assert eigenvalue_ladder([1.0, 0.5], ax=ax1) is ax1 and len(ax1.lines) == 1
    assert stress_curve([0.5, 0.95], ax=ax2) is ax2 and ax2.lines
    assert embedding_3d(emb, ax=ax3, colorbar=False) is ax3
    assert phase_map(_sweep(C3, R3, K_SIM, K_TH), ax=ax4, colorbar=False) is ax4
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="3-D"):
        embedding_3d(emb, ax=ax1)
    with pytest.raises(TypeError, match="Axes"):
        stress_curve([0.5], ax="not an axes")


def test_figures_draw_into_the_given_figure(emb):
    fig = Figure()
    assert ribbon_figure(emb, fig=fig) is fig
    with pytest.raises(ValueError, match="already has axes"):
        ribbon_figure(emb, fig=fig)
    sub = Figure().subfigures(1, 2)
    assert phase_figure(_sweep(C3, R3, K_SIM, K_TH), fig=sub[1]) is sub[1]


def test_integer_ticks_on_k_axes():
    for ax in (eigenvalue_ladder(np.geomspace(1, 1e-3, 7)), stress_curve(np.linspace(0.3, 1, 7))):
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_negative_eigenvalues_are_red():
    ax = eigenvalue_ladder([1.0, -0.5, 0.2, -0.1])
    pos, neg = ax.lines
    np.testing.assert_array_equal(pos.get_xdata(), [1, 3])
    np.testing.assert_array_equal(neg.get_xdata(), [2, 4])
    np.testing.assert_allclose(neg.get_ydata(), [0.5, 0.1])
    assert matplotlib.colors.to_hex(neg.get_color()) != matplotlib.colors.to_hex(pos.get_color())


@pytest.mark.parametrize("curve, chi, k_chi", [([0.5, 0.8, 0.95, 0.99], 0.9, 3), ([0.91, 0.97], 0.9, 1),
                                              ([0.2, 0.4, 0.6], 0.9, None), ([0.2, 0.7, 0.71], 0.7, 2)])
def test_stress_curve_marks_chi_and_k_chi(curve, chi, k_chi):
    ax = stress_curve(curve, chi)
    horizontal = [ln for ln in ax.lines if np.allclose(ln.get_ydata(), chi) and len(ln.get_ydata()) == 2]
    assert horizontal, "no χ line"
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    texts = " ".join(t.get_text() for t in ax.texts)
    if k_chi is None:
        assert not stars and f"> {len(curve)}" in texts
    else:
        assert len(stars) == 1
        assert stars[0].get_xdata()[0] == k_chi and stars[0].get_ydata()[0] == curve[k_chi - 1]
        assert f"= {k_chi}" in texts


def test_phase_map_marks_disagreements_and_failures():
    status = np.full((3, 3), "ok", dtype=object)
    status[2, 0] = "failed"
    ds = _sweep(C3, R3, K_SIM, K_TH, status=status.astype(str), bool_flags=False)
    ax = phase_map(ds)
    marks = {ln.get_marker(): ln for ln in ax.lines}
    x_pts = np.c_[marks["X"].get_xdata(), marks["X"].get_ydata()]
    np.testing.assert_array_equal(x_pts, [[1.0, 1.0]])  # the one cell where they disagree
    sq = np.c_[marks["s"].get_xdata(), marks["s"].get_ydata()]
    np.testing.assert_array_equal(sq, [[2.0, 0.1]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("theory ≠ simulation (1 cells)" in t for t in labels)
    assert any("failed cell (1)" in t for t in labels)
    assert any("simulated boundary" in t for t in labels) and any("theory boundary" in t for t in labels)


def test_phase_map_draws_both_boundaries():
    ds = _sweep(C3, R3, K_SIM, K_TH)
    ax = phase_map(ds)
    sets = ax.collections
    from matplotlib.contour import ContourSet

    contours = [c for c in sets if isinstance(c, ContourSet)]
    assert len(contours) == 2
    theory, sim = contours
    np.testing.assert_allclose(theory.levels, [3.5])
    # the fine map switches from k=5 to k=2 at rho/sigma0 = 1 (between its grid points)
    ys = np.concatenate([p.vertices[:, 1] for p in theory.get_paths()])
    assert ys.size and np.all((ys > 0.4) & (ys < 2.2))
    assert any(p.vertices.size for p in sim.get_paths())
    without_fine = phase_map(_sweep(C3, R3, K_SIM, K_TH, fine=False))
    labels = [t.get_text() for t in without_fine.get_legend().get_texts()]
    assert any("theory per cell" in t for t in labels)


def test_phase_map_labels_colorbar_and_legend_off_the_data():
    ds = _sweep(C3, R3, K_SIM, K_TH)
    fig = phase_figure(ds)
    ax = fig.axes[0]
    assert "c" in ax.get_xlabel().split() and "ρ/σ₀" in ax.get_ylabel()
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    cbar = fig.axes[1]
    assert "k^* = 3" in cbar.get_ylabel()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    leg = ax.get_legend().get_window_extent(renderer)
    box = ax.get_window_extent(renderer)
    assert not leg.overlaps(box), "the legend covers the data"
    kmap = phase_map(ds, "k_chi")
    cb = kmap.figure.axes[-1]
    assert "k_\\chi" in cb.get_ylabel() and "0.9" in cb.get_ylabel()


def test_steps_axis_symbol_and_third_axis_slice():
    ds = xr.Dataset({"status": (("steps", "slope", "n_runs"), np.full((2, 2, 2), "ok")),
                     "sim_stress_k": (("steps", "slope", "n_runs"), np.arange(8.0).reshape(2, 2, 2) / 8)},
                    coords={"steps": [10, 100], "slope": [0.0, 1.0], "n_runs": [4, 8]})
    ax = phase_map(ds, index={"n_runs": 1})
    assert ax.get_xlabel() == "training steps T"
    assert "R = 8" in ax.get_title()
    mesh = ax.collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(2, 2), ds["sim_stress_k"].values[:, :, 1].T)
    with pytest.raises(ValueError, match="not a third sweep axis"):
        phase_map(ds, index={"slope": 1})


def test_replicates_are_averaged():
    base = np.array([[0.9, 0.8], [0.7, 0.6]])
    ds = xr.Dataset({"status": (("slope", "steps", "replicate"), np.full((2, 2, 2), "ok")),
                     "sim_decay_rate": (("slope", "steps", "replicate"), np.stack([base, base + 0.2], -1))},
                    coords={"slope": [0.0, 1.0], "steps": [10, 100]})
    mesh = phase_map(ds, "decay_rate").collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(2, 2), (base + 0.1).T)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="sim_nonsense"):
        phase_map(_sweep(C3, R3, K_SIM, K_TH), "nonsense")
    with pytest.raises(ValueError, match="status"):
        phase_map(xr.Dataset({"x": ("a", [1.0])}))
    with pytest.raises(ValueError, match="chi"):
        stress_curve([0.5], chi=1.5)
    with pytest.raises(ValueError, match="1-D"):
        eigenvalue_ladder(np.ones((2, 2)))


def test_old_ladder_signature_still_works_with_a_warning():
    ax = Figure().add_subplot()
    with pytest.warns(DeprecationWarning):
        assert eigenvalue_ladder(ax, [1.0, 0.1]) is ax


def test_axis_labels_use_the_theory_symbols():
    assert axis_label("slope").endswith(" c")
    assert axis_label("scale_ratio").endswith("ρ/σ₀")
    assert axis_label("steps").endswith(" T")


def test_cells_without_a_theory_are_not_disagreements():
    ds = _sweep(C3, R3, K_SIM, K_TH)
    valid = np.ones((3, 3), bool)
    valid[0, 2] = False  # no theory here: its boolean reads False, meaning "no value"
    ds["theory_valid"] = (("slope", "scale_ratio"), valid)
    ds["theory_is_ribbon"] = ds["theory_is_ribbon"].where(xr.DataArray(valid, dims=ds["theory_is_ribbon"].dims), False)
    ax = phase_map(ds)
    xs = next(ln for ln in ax.lines if ln.get_marker() == "X")
    np.testing.assert_array_equal(np.c_[xs.get_xdata(), xs.get_ydata()], [[1.0, 1.0]])


def test_missing_cells_are_drawn_apart_from_failed_ones():
    status = np.full((3, 3), "ok", dtype=object)
    status[0, 0], status[1, 2] = "missing", "failed"
    ax = phase_map(_sweep(C3, R3, K_SIM, K_TH, status=status.astype(str)))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "not computed (1)" in labels and "failed cell (1)" in labels
    squares = [ln for ln in ax.lines if ln.get_marker() == "s"]
    where = sorted((float(ln.get_xdata()[0]), float(ln.get_ydata()[0])) for ln in squares)
    assert where == [(0.0, 0.1), (1.0, 10.0)]


def test_a_real_sweep_draws(tmp_path):
    import linsim

    base = linsim.EnsembleConfig(init_scale=0.01, n_runs=3, n_checkpoints=3, dim=4, n_samples=12,
                                 n_classes=3, steps=20)
    ds = linsim.run_phase(linsim.PhaseSpec(base, {"c": [0.0, 2.0], "ratio": [0.3, 30.0]}), n_workers=1,
                          progress=False, theory_resolution=3)
    fig = phase_figure(ds)
    assert fig.axes[0].get_xlabel() == "input-spectrum slope c"
    fig.savefig(tmp_path / "phase.png")
    assert (tmp_path / "phase.png").stat().st_size > 10_000


def test_a_boundary_outside_the_grid_is_said_so():
    ds = _sweep(C3, R3, np.full((3, 3), 2.0), np.full((3, 3), 2.0), fine=False)
    labels = [t.get_text() for t in phase_map(ds).get_legend().get_texts()]
    assert "theory boundary: none in this range (theory per cell)" in labels
    assert "simulated boundary: none in this range" in labels


def test_one_axis_sweeps_draw_a_curve_with_the_theory():
    ds = xr.Dataset({"status": ("steps", np.array(["ok", "ok", "failed"])),
                     "sim_stress_k": ("steps", [0.95, 0.85, np.nan]),
                     "sim_stress_k_std": ("steps", [0.01, 0.02, np.nan]),
                     "theory_stress_k": ("steps", [0.93, 0.92, 0.9]),
                     "sim_is_ribbon": ("steps", [True, False, False]),
                     "theory_is_ribbon": ("steps", [True, True, True])},
                    coords={"steps": [10, 100, 1000]}, attrs={"criterion_chi": 0.9, "criterion_k_star": 3})
    fig = phase_figure(ds)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training steps T" and ax.get_xscale() == "log"
    sim = ax.lines[0]
    np.testing.assert_allclose(sim.get_ydata()[:2], [0.95, 0.85])
    assert np.isnan(sim.get_ydata()[2])  # a failed cell is not drawn as a value
    xs = next(ln for ln in ax.lines if ln.get_marker() == "X")
    np.testing.assert_array_equal(xs.get_xdata(), [100])  # the one disagreement (the failed cell is not one)
    assert any(np.allclose(ln.get_ydata(), 0.9) for ln in ax.lines if len(ln.get_ydata()) == 2)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "failed cell (1)" in labels and any("± 1 s.d." in t for t in labels)
    with pytest.raises(ValueError, match="one axis"):
        phase_curve(_sweep(C3, R3, K_SIM, K_TH))


def test_no_library_module_touches_pyplot_or_the_backend():
    import ast
    from pathlib import Path

    root = Path(__file__).parents[1]
    offenders = []
    for path in sorted((root / "linsim").rglob("*.py")) + sorted((root / "theory").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = ast.unparse(node.func.value)
                if node.func.attr in ("use", "switch_backend") and ("matplotlib" in target or "plt" in target):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
            offenders += [f"{path.relative_to(root)}:{node.lineno}: imports {n}" for n in names
                          if n == "matplotlib.pyplot" or n.startswith("matplotlib.pyplot.")]
    assert not offenders, "\n".join(offenders)


from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=20, deadline=None)
@given(k_sim=arrays(np.float64, (3, 4), elements=st.sampled_from([1.0, 2.0, 4.0, 6.0, np.inf])),
       k_th=arrays(np.float64, (3, 4), elements=st.sampled_from([1.0, 3.0, 5.0, np.inf])),
       failed=arrays(bool, (3, 4)))
def test_disagreement_markers_are_exactly_the_disagreeing_ok_cells(k_sim, k_th, failed):
    c, r = np.array([0.0, 1.0, 2.0]), np.array([0.1, 1.0, 10.0, 100.0])
    status = np.where(failed, "failed", "ok")
    ax = phase_map(_sweep(c, r, k_sim, k_th, status=status, fine=False), colorbar=False)
    marks = [ln for ln in ax.lines if ln.get_marker() == "X"]
    got = set(zip(marks[0].get_xdata(), marks[0].get_ydata())) if marks else set()
    want = {(c[i], r[j]) for i in range(3) for j in range(4)
            if not failed[i, j] and (k_sim[i, j] <= 3) != (k_th[i, j] <= 3)}
    assert got == want


def test_three_axis_sweeps_get_one_panel_per_third_value():
    vals = np.arange(12.0).reshape(2, 2, 3) / 12
    ds = xr.Dataset({"status": (("slope", "steps", "n_runs"), np.full((2, 2, 3), "ok")),
                     "sim_stress_k": (("slope", "steps", "n_runs"), vals)},
                    coords={"slope": [0.0, 1.0], "steps": [10, 100], "n_runs": [2, 4, 8]})
    fig = phase_figure(ds)
    maps = [ax for ax in fig.axes if ax.get_xlabel()]
    assert [ax.get_title() for ax in maps] == ["runs R = 2", "runs R = 4", "runs R = 8"]
    for i, ax in enumerate(maps):
        np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(2, 2), vals[:, :, i].T)
    single = phase_figure(ds, index={"n_runs": 2})
    assert [ax.get_title() for ax in single.axes if ax.get_xlabel()] == ["runs R = 8"]


def test_two_values_a_decade_apart_are_on_a_log_axis():
    ds = _sweep(np.array([0.0, 2.0]), np.array([0.3, 30.0]), [[5, 2], [5, 2]], [[5, 2], [5, 2]], fine=False)
    ax = phase_map(ds)
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert ax.get_ylim()[0] > 0


def test_phase_map_draws_the_analytic_boundary_and_the_trivial_rule():
    # a hand-made analytic boundary curve: 0 at c = 0 (drawn on the lower edge), 2 and 3 inside, inf at
    # c = 2 (a gap); the trivial rule is a horizontal line at ρ/σ₀ = 1.5
    ds = _sweep(C3, R3, K_SIM, K_TH)
    bc = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    crit = np.array([0.0, 2.0, 3.0, 3.0, np.inf])
    ds = ds.assign(boundary_critical_ratio=(("boundary_slope",), crit)).assign_coords(boundary_slope=bc)
    ds.attrs["trivial_ribbon_ratio"] = 1.5
    for flip in (False, True):
        d = ds.transpose("scale_ratio", "slope", ...) if flip else ds
        ax = phase_map(d)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "analytic boundary (theory.critical_ratio)" in labels
        assert "trivial rule ρ/σ₀ = 1.5" in labels
        curve = [ln for ln in ax.lines if ln.get_color() == "magenta"]
        assert len(curve) == 1
        xs, ys = (np.asarray(a, float) for a in curve[0].get_data())
        if flip:
            xs, ys = ys, xs
        np.testing.assert_allclose(xs, bc)
        lower_edge = ax.get_xlim()[0] if flip else ax.get_ylim()[0]
        np.testing.assert_allclose(ys[:4], [lower_edge, 2.0, 3.0, 3.0])
        assert np.isnan(ys[4])
        trivial = [ln for ln in ax.lines if ln.get_color() == "0.35"]
        assert len(trivial) == 1
        pos = trivial[0].get_data()[0 if flip else 1]
        np.testing.assert_allclose(np.asarray(pos, float), 1.5)
    # without the variables nothing of the kind is drawn or announced
    labels = [t.get_text() for t in phase_map(_sweep(C3, R3, K_SIM, K_TH)).get_legend().get_texts()]
    assert not any("analytic boundary" in t or "trivial" in t for t in labels)
    # an unreachable boundary everywhere is said so
    none = ds.assign(boundary_critical_ratio=(("boundary_slope",), np.full(5, np.inf)))
    labels = [t.get_text() for t in phase_map(none).get_legend().get_texts()]
    assert "analytic boundary: none in this range" in labels
