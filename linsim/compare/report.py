"""Write a :class:`~linsim.compare.pipeline.Comparison` to disk: netCDF, figures, a markdown page.

Files (in the output folder)
----------------------------
``compare.nc``
    Every number (:func:`comparison_dataset`), written atomically with provenance and a SHA-256
    of every variable (:func:`linsim.storage.write_netcdf`).
``compare_embedding.png``, ``compare_stress.png``, ``compare_progress.png``,
``compare_dendrogram.png``, ``compare_phase.png``
    The figures (:mod:`linsim.compare.figures`), each written to a temporary file and renamed.
``compare.md``
    A one-page report.  Its numbers are read back from ``compare.nc`` (:func:`markdown_report`
    takes the dataset), so the page shows what is stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .joint import STRESS_VIEWS

__all__ = ["FIGURES", "comparison_dataset", "findings_from_dataset", "markdown_report", "write_report"]

#: figure file -> what it shows
FIGURES = {
    "compare_embedding.png": "3-D joint InPCA embedding coloured by family, with the uniform → one-hot geodesic",
    "compare_stress.png": "explained stress of the four views",
    "compare_progress.png": "progress along the geodesic vs step, by architecture and width",
    "compare_dendrogram.png": "complete-linkage dendrogram of the configurations",
    "compare_phase.png": "theory's phase diagram with the deep configurations on it",
}

_CONTROL_FIELDS = ("c_input", "c_input_n_fit", "c_ntk", "c_ntk_n_fit", "ratio", "steps", "final_logit_rms",
                   "measured_k", "predicted_k_input", "predicted_k_ntk")


def _pad(arrays, fill=np.nan):
    width = max(a.shape[-1] for a in arrays)
    out = np.full((len(arrays), width), fill, dtype=np.float64)
    for i, a in enumerate(arrays):
        out[i, :a.shape[-1]] = a
    return out


def comparison_dataset(comp):
    """Every number of a comparison as one ``xarray.Dataset`` (CF-style attributes).

    Dimensions: ``view`` (the four stress views), ``k`` (InPCA dimension), ``point`` (checkpoints
    of the joint embedding), ``component``, ``member`` (trajectories of the joint embedding),
    ``geodesic_point``, ``config`` (deep configurations), ``checkpoint_max``, ``run`` (all deep
    runs, configuration-major), ``progress`` (the equal-progress grid), ``factor``, ``merge``
    (dendrogram merges), ``boundary_point``.

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> ds = comparison_dataset(tiny_comparison())
    >>> ds["explained_stress"].dims, ds.sizes["config"]
    (('view', 'k'), 2)
    """
    import xarray as xr

    j, st, f = comp.joint, comp.study, comp.findings
    k = comp.config.n_components
    views = np.full((len(STRESS_VIEWS), k), np.nan)
    for i, name in enumerate(STRESS_VIEWS):
        v = np.asarray(getattr(j.views, name))[:k]
        views[i, :v.size] = v
    factors = list(f.separability)
    members = comp.deep + comp.linear
    ds = xr.Dataset(
        data_vars={
            "explained_stress": (("view", "k"), views, {"long_name": "explained stress chi_k of each view",
                                                        "units": "1"}),
            "joint_coordinates": (("point", "component"), j.coordinates,
                                  {"long_name": "joint InPCA coordinates (sqrt|lambda| scaled)"}),
            "joint_eigenvalues": (("component",), j.model.eigenvalues_, {"long_name": "signed InPCA eigenvalues"}),
            "point_member": (("point",), j.member.astype(np.int64)),
            "point_run": (("point",), j.run.astype(np.int64)),
            "point_checkpoint": (("point",), j.checkpoint.astype(np.int64)),
            "point_step": (("point",), j.time, {"units": "step"}),
            "point_is_deep": (("point",), j.is_deep.astype(np.int8), {"flag_values": "0 linear, 1 deep"}),
            "member_family": (("member",), np.array(comp.families, dtype=str)),
            "member_params": (("member",), np.array([json.dumps(dict(t.params), sort_keys=True, default=str)
                                                      for t in members], dtype=str)),
            "geodesic_s": (("geodesic_point",), j.geodesic_s),
            "geodesic_coordinates": (("geodesic_point", "component"), j.geodesic_coordinates),
            "config_params": (("config",), np.array([json.dumps(p, sort_keys=True, default=str)
                                                      for p in st.params], dtype=str)),
            "config_steps": (("config", "checkpoint_max"), _pad([np.asarray(t, float) for t in st.times]),
                             {"units": "step"}),
            "config_mean_progress": (("config", "checkpoint_max"), _pad([p.mean(axis=0) for p in st.progress]),
                                     {"long_name": "seed-mean progress along the uniform -> one-hot geodesic"}),
            "progress_grid": (("progress",), st.grid),
            "run_config": (("run",), st.run_config.astype(np.int64)),
            "run_reached": (("run", "progress"), st.reached.astype(np.int8)),
            "equal_progress_distance": (("progress", "run", "run_b"), st.tensor,
                                        {"long_name": "Bhattacharyya distance between runs at equal progress "
                                                      "(nan unless both reached it)"}),
            "config_distance": (("config", "config_b"), st.config_distance),
            "tube_width": (("run", "progress"), np.concatenate(st.tube)),
            "geodesic_gap": (("run", "progress"), np.concatenate(st.geodesic_gap)),
            "factor_distance": (("factor",), np.array([f.factor_distance[x][0] for x in factors])),
            "factor_pairs": (("factor",), np.array([f.factor_distance[x][1] for x in factors], dtype=np.int64)),
            "separability": (("factor",), np.array([f.separability[x] for x in factors]),
                             {"long_name": "architecture-pair distance / factor-pair distance"}),
            "permutation_importance": (("factor",), np.array([f.importance[x] for x in factors])),
            "linkage": (("merge", "linkage_column"), np.asarray(f.linkage, dtype=np.float64).reshape(-1, 4)),
            "leaves": (("leaf",), np.asarray(f.leaves, dtype=np.int64)),
            "steps_to_half": (("config",), np.array([f.steps_to_half[n] for n in comp.names]), {"units": "step"}),
            "steps_to_mid": (("config",), np.array([f.steps_to_mid[n] for n in comp.names]),
                             {"units": "step", "long_name": "steps for the seed-mean progress to reach mid_level"}),
            "mid_level": ((), f.mid_level, {"long_name": "middle of the equal-progress grid"}),
            "mean_tube_width": (("config",), np.array([f.tube_width[n] for n in comp.names])),
            "mean_geodesic_gap": (("config",), np.array([f.geodesic_gap[n] for n in comp.names])),
            "top3_stress": ((), f.top3_stress),
            "seed_distance": ((), f.seed_distance),
            "width_ratio": ((), f.width_ratio),
            "init_ratio": ((), f.init_ratio),
            "init_vs_seed": ((), f.init_vs_seed),
            "dendrogram_filled": ((), np.int64(f.dendrogram_filled),
                                  {"long_name": "configuration pairs without a common progress range"}),
            "boundary_c": (("boundary_point",), np.asarray(comp.boundary[0], dtype=np.float64)),
            "boundary_ratio": (("boundary_point",), np.asarray(comp.boundary[1], dtype=np.float64)),
            **{f"control_{name}": (("config",), np.array([getattr(r, name) for r in comp.controls],
                                                         dtype=np.float64)) for name in _CONTROL_FIELDS},
        },
        coords={"view": list(STRESS_VIEWS), "k": np.arange(1, k + 1), "config": list(comp.names),
                "factor": factors},
        attrs={
            "title": "linsim compare: deep networks against the linear hyper-ribbon theory",
            "linsim_type": "Comparison",
            "chi": float(comp.config.chi), "k_star": int(comp.config.k_star),
            "compare_config_json": json.dumps({k2: (list(v) if isinstance(v, tuple) else v)
                                               for k2, v in comp.config.__dict__.items()}, default=str),
            "notes": "\n".join(comp.notes),
            "conventions": ("distances: Bhattacharyya, mean over the evaluation samples; stress views and "
                            "projected stress as in linsim.compare.joint/projection; progress: argmin over the "
                            "uniform -> one-hot geodesic; controls as in linsim.compare.controls"),
        })
    return ds


def findings_from_dataset(ds):
    """The :class:`~linsim.compare.findings.Findings` stored in a dataset of :func:`comparison_dataset`.

    ``linsim compare`` prints ``findings_from_dataset(read_netcdf("compare.nc")).lines()``: the
    printed findings are the stored ones.

    Parameters
    ----------
    ds : xarray.Dataset
        Typically re-read from ``compare.nc``.

    Returns
    -------
    Findings

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> comp = tiny_comparison()
    >>> findings_from_dataset(comparison_dataset(comp)).as_dict() == comp.findings.as_dict()
    True
    """
    from .findings import Findings

    names = [str(n) for n in ds["config"].values]
    factors = [str(x) for x in ds["factor"].values]
    params = [json.loads(str(p)) for p in ds["config_params"].values]

    def per_config(var):
        return {n: float(v) for n, v in zip(names, ds[var].values)}

    half, mid = per_config("steps_to_half"), per_config("steps_to_mid")
    speed = []
    if len({json.dumps(p.get("width")) for p in params}) > 1:
        speed = sorted((str(p.get("architecture")), float(p.get("width")), half[n], mid[n])
                       for n, p in zip(names, params))
    return Findings(
        top3_stress=float(ds["top3_stress"]),
        factor_distance={f: (float(d), int(n)) for f, d, n in zip(factors, ds["factor_distance"].values,
                                                                   ds["factor_pairs"].values)},
        separability={f: float(v) for f, v in zip(factors, ds["separability"].values)},
        importance={f: float(v) for f, v in zip(factors, ds["permutation_importance"].values)},
        linkage=np.asarray(ds["linkage"].values, dtype=np.float64).reshape(-1, 4),
        leaves=[int(i) for i in ds["leaves"].values], seed_distance=float(ds["seed_distance"]),
        width_ratio=float(ds["width_ratio"]), steps_to_half=half, width_speedup=speed,
        init_ratio=float(ds["init_ratio"]), init_vs_seed=float(ds["init_vs_seed"]),
        tube_width=per_config("mean_tube_width"), geodesic_gap=per_config("mean_geodesic_gap"),
        dendrogram_filled=int(ds["dendrogram_filled"]), mid_level=float(ds["mid_level"]), steps_to_mid=mid)


def _fmt(x, spec=".3g"):
    x = float(x)
    return "n/a" if not np.isfinite(x) else format(x, spec)


def markdown_report(ds):
    """The one-page markdown report, built from a dataset written by :func:`comparison_dataset`.

    Every number on the page is read from ``ds`` (typically re-read from ``compare.nc``).

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> page = markdown_report(comparison_dataset(tiny_comparison()))
    >>> page.splitlines()[0]
    '# Do these networks behave like the linear theory says?'
    """
    chi, k_star = float(ds.attrs["chi"]), int(ds.attrs["k_star"])
    stress = {str(v): ds["explained_stress"].sel(view=v).values for v in ds["view"].values}

    def at(view, kk):
        s = stress[view]
        return s[kk - 1] if s.size >= kk else np.nan

    def k_of(view):
        s = stress[view]
        hit = np.flatnonzero(s >= chi - 1e-12)
        return str(hit[0] + 1) if hit.size else f"> {s.size}"

    n_cfg = ds.sizes["config"]
    meas = ds["control_measured_k"].values
    pred = ds["control_predicted_k_input"].values
    pred_ntk = ds["control_predicted_k_ntk"].values
    agree = np.isfinite(pred) & ((meas <= k_star) == (pred <= k_star))
    agree_ntk = np.isfinite(pred_ntk) & ((meas <= k_star) == (pred_ntk <= k_star))
    ribbons = int(np.sum(meas <= k_star))
    logit = ds["control_final_logit_rms"].values
    sep = {str(fct): float(v) for fct, v in zip(ds["factor"].values, ds["separability"].values)
           if str(fct) != "architecture"}
    pairs = {str(fct): int(v) for fct, v in zip(ds["factor"].values, ds["factor_pairs"].values)}
    imp = {str(fct): float(v) for fct, v in zip(ds["factor"].values, ds["permutation_importance"].values)}
    sep_txt = ", ".join(f"{k} {_fmt(v)} ({pairs[k]} pairs)" for k, v in sep.items() if pairs[k] > 0) or "n/a"
    imp_txt = ", ".join(f"{k} {_fmt(v)}" for k, v in imp.items() if np.isfinite(v)) or "n/a"
    answer = []
    answer.append(f"* **A hyper-ribbon?** The InPCA of all deep-net checkpoints reaches χ = {chi:g} with k_χ = "
                  f"{k_of('deep')} dimensions; three explain {_fmt(100 * float(ds['top3_stress']), '.1f')}% of the stress "
                  f"(the deep-network study: 76% on CIFAR-10). {ribbons} of {n_cfg} configurations are ribbons on "
                  f"their own (k_χ ≤ {k_star}).")
    answer.append(f"* **Deep and linear together:** all models jointly have k_χ = {k_of('all')}; two dimensions "
                  f"explain {_fmt(100 * at('all', 2), '.1f')}% of their stress (the linear-model paper: ≈ 71% in two "
                  f"dimensions on CIFAR-10), three {_fmt(100 * at('all', 3), '.1f')}%. In a basis fitted on the "
                  f"linear models only, all models projected keep χ₂ = {_fmt(at('linear_basis_all', 2))}, "
                  f"χ₃ = {_fmt(at('linear_basis_all', 3))}, and the deep nets alone χ₂ = "
                  f"{_fmt(at('linear_basis_deep', 2))}, χ₃ = {_fmt(at('linear_basis_deep', 3))} (the paper: "
                  "less than the joint embedding, yet a faithful picture).")
    answer.append(f"* **Does the theory predict k_χ?** At the controls measured on each network (c of the input "
                  f"spectrum, output-to-weight ratio, steps) the theory's ribbon/no-ribbon call agrees with the "
                  f"measurement for {int(agree.sum())} of {int(np.isfinite(pred).sum())} configurations; with c of "
                  f"the NTK spectrum for {int(agree_ntk.sum())} of {int(np.isfinite(pred_ntk).sum())}. The networks "
                  f"end with centred-logit rms {_fmt(np.nanmin(logit))}–{_fmt(np.nanmax(logit))}, against the "
                  "theory's small-logit regime of about 0.3, so agreement is an empirical fact here, not one the "
                  "theory guarantees.")
    answer.append(f"* **What distinguishes trajectories:** architecture-pair distance over factor-pair distance "
                  f"(>1 means the factor matters less than the architecture): {sep_txt}. Permutation importance: "
                  f"{imp_txt}.")
    half = ds["steps_to_half"].values
    answer.append(f"* **Width:** width pairs are {_fmt(float(ds['width_ratio']))} × as far apart as architecture "
                  "pairs at equal progress (small: the same manifold). "
                  + (f"{int(np.isfinite(half).sum())} configurations reach progress 0.5; " if np.isfinite(half).any()
                     else "No configuration reaches progress 0.5 in this grid; ")
                  + f"steps to progress 0.5 and to the mid-grid progress {_fmt(float(ds['mid_level']), '.3f')} are in "
                    "the table.")
    answer.append(f"* **Initialization:** init pairs are {_fmt(float(ds['init_ratio']))} × the architecture-pair "
                  f"distance and {_fmt(float(ds['init_vs_seed']))} × the seed-to-seed distance.")
    lines = ["# Do these networks behave like the linear theory says?", "",
             f"{n_cfg} deep configurations, {ds.sizes['point']} checkpoints in the joint embedding "
             f"(deep nets and their linear counterparts: {', '.join(sorted(set(map(str, ds['member_family'].values))))}).",
             "", *answer, ""]
    notes = ds.attrs.get("notes", "")
    if notes:
        lines += ["Notes: " + notes.replace("\n", "; "), ""]
    lines += ["| view | χ₁ | χ₂ | χ₃ | k_χ |", "|---|---|---|---|---|"]
    for v in stress:
        lines.append(f"| {v} | {_fmt(at(v, 1))} | {_fmt(at(v, 2))} | {_fmt(at(v, 3))} | {k_of(v)} |")
    lines += ["", "| configuration | c (inputs) | c (NTK) | ρ/σ₀ | T | final logit rms | measured k_χ | "
              "theory k_χ (c inputs) | theory k_χ (c NTK) | steps to progress 0.5 | steps to mid-grid |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, name in enumerate(ds["config"].values):
        g = {f: ds[f"control_{f}"].values[i] for f in _CONTROL_FIELDS}
        lines.append(f"| {name} | {_fmt(g['c_input'])} | {_fmt(g['c_ntk'])} | {_fmt(g['ratio'])} | "
                     f"{_fmt(g['steps'], '.0f')} | {_fmt(g['final_logit_rms'])} | {_fmt(g['measured_k'], '.0f')} | "
                     f"{_fmt(g['predicted_k_input'], '.0f')} | {_fmt(g['predicted_k_ntk'], '.0f')} | "
                     f"{_fmt(ds['steps_to_half'].values[i], '.0f')} | {_fmt(ds['steps_to_mid'].values[i], '.0f')} |")
    lines += ["", "Decay rates c are least-squares slopes of log λ_k over the leading "
              f"{int(np.nanmax(ds['control_c_input_n_fit'].values))} eigenvalues; the theory's k_χ is that of its "
              "expected explained stress on its standard ensemble at those controls (linsim.compare.controls).", ""]
    for fname, what in FIGURES.items():
        lines += [f"![{what}]({fname})", ""]
    return "\n".join(lines)


def _save_figure(fig, path):
    from linsim.storage import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return Path(path)


def write_report(comp, out_dir, *, command=None):
    """Write ``compare.nc``, the figures and ``compare.md`` into ``out_dir``.

    Returns
    -------
    dict name -> Path of every file written.

    Examples
    --------
    >>> import tempfile
    >>> from linsim.compare._examples import tiny_comparison
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write_report(tiny_comparison(), d, command="doctest")
    ...     sorted(p.name for p in paths.values())[:3]
    ['compare.md', 'compare.nc', 'compare_dendrogram.png']
    """
    from matplotlib.figure import Figure

    from linsim.storage import atomic_path, check_writable_dir, read_netcdf, write_netcdf

    from . import figures

    out = check_writable_dir(out_dir)
    ds = comparison_dataset(comp)
    nc = write_netcdf(ds, out / "compare.nc", command=command, checksum_vars=list(ds.data_vars))
    stored = read_netcdf(nc)
    paths = {"netcdf": nc}
    chi = comp.config.chi

    fig = Figure(figsize=(7.5, 6.0), layout="constrained")
    figures.embedding_axes(comp.joint, comp.families, ax=fig.add_subplot(projection="3d"))
    paths["compare_embedding.png"] = _save_figure(fig, out / "compare_embedding.png")
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    figures.stress_axes(comp.joint.views, chi=chi, ax=fig.add_subplot())
    paths["compare_stress.png"] = _save_figure(fig, out / "compare_stress.png")
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    figures.progress_axes(comp.study, ax=fig.add_subplot())
    paths["compare_progress.png"] = _save_figure(fig, out / "compare_progress.png")
    fig = Figure(figsize=(8.0, 4.5), layout="constrained")
    figures.dendrogram_axes(comp.findings.linkage, comp.names, ax=fig.add_subplot())
    paths["compare_dendrogram.png"] = _save_figure(fig, out / "compare_dendrogram.png")
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    figures.phase_axes(comp.controls, *comp.boundary, k_star=comp.config.k_star, ax=fig.add_subplot())
    paths["compare_phase.png"] = _save_figure(fig, out / "compare_phase.png")

    md = out / "compare.md"
    with atomic_path(md) as tmp:
        Path(tmp).write_text(markdown_report(stored))
    paths["markdown"] = md
    return paths
