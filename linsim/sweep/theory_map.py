"""The theory's phase boundary on a fine grid: expected-spectrum metrics, no simulation."""

from __future__ import annotations

import numpy as np

from linsim.ensemble import EnsembleConfig  # noqa: F401  (used by the docstring example)
from linsim._theory_check import import_theory
from linsim.sweep.axes import PhaseSpec, axis_info, with_values

__all__ = ["FINE_MAP_DRAWS", "analytic_boundary", "theory_map"]

#: Gaussian draws per fine-map point (the per-cell ``theory_*`` values use the default 64).
FINE_MAP_DRAWS = 16


def _theory_row(item) -> tuple[np.ndarray, np.ndarray]:
    """``k_χ`` and ``χ_{k*}`` of the expected spectrum along one row of the fine map."""
    base, names, a, fine_b, criterion, n_draws = item
    from linsim import metrics
    from linsim.theory_inputs import predict_spectra

    kc = np.full(fine_b.size, np.nan)
    sk = np.full(fine_b.size, np.nan)
    for j, b in enumerate(fine_b):
        cfg = with_values(base, {names[0]: a, names[1]: b})
        pred = predict_spectra(cfg, n_draws=n_draws).expected
        kc[j] = metrics.k_chi(pred, criterion.chi)
        sk[j] = metrics.stress_at(pred, min(criterion.k_star, len(pred)))
    return kc, sk


def _critical_ratio_task(item):
    """``(critical ratio, None)`` of one configuration, or ``(nan, why)`` where the theory refuses
    it (after every cell has been computed the sweep must not fail for it). Engine task of
    :func:`analytic_boundary`."""
    from linsim.theory_inputs import theory_inputs

    base, other, v, chi, k_star = item
    theory = import_theory()
    try:
        inp = theory_inputs(with_values(base, {other: float(v)}))
        return float(theory.critical_ratio(inp.eigenvalues, inp.n_classes, inp.theory_lr, inp.steps,
                                           inp.n_runs, chi=chi, k_star=k_star,
                                           dynamics=inp.dynamics, loss=inp.loss)), None
    except (ValueError, FloatingPointError) as exc:
        return float("nan"), f"{other} = {float(v):g}: {exc}"


def analytic_boundary(spec: PhaseSpec, fine_values=None, *, engine=None, progress: bool = False):
    """The analytic phase boundary ``theory.critical_ratio`` of a sweep over ρ/σ₀ and one more axis.

    For every value of the other axis (the cell values, and ``fine_values`` when given) the
    critical ratio of that configuration is computed (:func:`linsim.theory_inputs.theory_inputs`
    supplies the simulator's spectrum, learning rate and checkpoints); a cell is a ribbon by this
    rule iff its ``ρ/σ₀ >= critical ratio`` (``0``: every ratio; ``inf``: none).  The critical
    ratio is ``theory.critical_ratio`` with its default ``method="auto"``: at any C, while
    R <= 64, ``min(R K, (C-1) d) <= 192`` and ``(C-1) d <= 400``, the first root of the seedless
    analytic curve ``theory.expected_explained_stress(method="analytic")``, beyond that the
    closed-form energy balance -- so the boundary is called "analytic", not "closed form" (the
    attribute ``analytic_boundary_rule`` records the call).  The trivial
    rule ``ρ/σ₀ >= TRIVIAL_RIBBON_RATIO`` is stored beside it for comparison.

    Parameters
    ----------
    spec : PhaseSpec
        Exactly two axes, one of them ``scale_ratio``; a model with a theory hook.
    fine_values : (N,) array, optional
        Extra values of the other axis for a smooth curve (e.g. the fine theory map's).
    engine : str or linsim.parallel.Engine, optional
        Where the critical ratios are computed (one task per value; 0.05-5 s each), as for
        :func:`theory_map`; the serial engine by default. The values do not depend on it.
    progress : bool
        Show a progress bar over the values.

    Returns
    -------
    xarray.Dataset or None
        None when the sweep has no such pair of axes or no theory.  Otherwise
        ``analytic_critical_ratio`` (on the other axis, cell values),
        ``analytic_is_ribbon`` and ``trivial_is_ribbon`` (per cell, 1.0/0.0), and with
        ``fine_values`` ``boundary_critical_ratio`` on dim ``boundary_<axis>``.  A value the
        theory refuses gets NaN (no verdict) and the attribute ``analytic_problems``
        names the first such value and why.

    Examples
    --------
    >>> base = EnsembleConfig(dim=6, n_samples=12, n_runs=2, n_checkpoints=3, steps=20, init_scale=0.01)
    >>> b = analytic_boundary(PhaseSpec(base, {"c": [0.0, 1.0], "ratio": [0.5, 10.0]}))
    >>> b["analytic_is_ribbon"].dims, b.attrs["trivial_ribbon_ratio"]
    (('slope', 'scale_ratio'), 1.5)
    """
    import xarray as xr

    from linsim.sweep.summary import TRIVIAL_RIBBON_RATIO

    names = list(spec.axes)
    if len(names) != 2 or "scale_ratio" not in names or not spec.supports_theory_map:
        return None
    other = names[0] if names[1] == "scale_ratio" else names[1]
    crit_chi, crit_k = spec.criterion.chi, spec.criterion.k_star

    ov, rv = np.asarray(spec.axes[other], float), np.asarray(spec.axes["scale_ratio"], float)
    fv = None if fine_values is None else np.asarray(fine_values, float)
    values = ov if fv is None else np.concatenate([ov, fv])
    results: list = [None] * values.size
    from tqdm.auto import tqdm

    from linsim.parallel import get_engine

    items = [(spec.base, other, float(v), crit_chi, crit_k) for v in values]
    with tqdm(total=len(items), desc="analytic boundary", disable=not progress, unit="value") as bar:
        for i, res in get_engine("serial" if engine is None else engine).map_unordered(
                _critical_ratio_task, items):
            results[i] = res
            bar.update()
    problems = [why for _, why in results if why is not None]
    crs = np.array([r for r, _ in results], dtype=float)
    cr = crs[:ov.size]
    grid = np.where(np.isnan(cr)[:, None], np.nan, (rv[None, :] >= cr[:, None]).astype(np.float64))
    triv = np.broadcast_to(rv[None, :] >= TRIVIAL_RIBBON_RATIO, grid.shape).astype(np.float64)
    if names[0] == "scale_ratio":
        grid, triv = grid.T, triv.T
    info = axis_info(other)
    rule = f"ribbon iff ρ/σ₀ >= {TRIVIAL_RIBBON_RATIO:g}"
    data = {
        "analytic_critical_ratio": ((other,), cr, {
            "long_name": "analytic critical ratio ρ/σ₀ (theory.critical_ratio; 0: every ratio is a "
                         "ribbon, inf: none)", "units": "1"}),
        "analytic_is_ribbon": (tuple(names), grid, {
            "long_name": "analytic boundary verdict: ρ/σ₀ >= critical ratio (1 ribbon, 0 not, NaN none)",
            "units": "1"}),
        "trivial_is_ribbon": (tuple(names), triv, {
            "long_name": f"trivial rule verdict: {rule} (1 ribbon, 0 not)", "units": "1"}),
    }
    coords = {}
    if fv is not None:
        bdim = f"boundary_{other}"
        data["boundary_critical_ratio"] = ((bdim,), crs[ov.size:], {
            "long_name": "analytic critical ratio ρ/σ₀ on a fine grid (the drawn boundary curve)",
            "units": "1"})
        coords[bdim] = (bdim, fv, {"long_name": f"{info.long_name} (analytic boundary grid)",
                                   "units": info.units, "symbol": info.symbol})
    attrs = {"trivial_ribbon_ratio": float(TRIVIAL_RIBBON_RATIO), "analytic_boundary_axis": other,
             "analytic_boundary_rule": f'theory.critical_ratio(method="auto", chi={crit_chi:g}, '
                                       f'k_star={crit_k})'}
    if problems:
        attrs["analytic_problems"] = f"{len(problems)} values without an analytic boundary; the first: {problems[0]}"
    return xr.Dataset(data, coords=coords, attrs=attrs)


def theory_map(spec: PhaseSpec, resolution: int = 24, n_workers: int | None = None,
               n_draws: int = FINE_MAP_DRAWS, *, engine=None, progress: bool = False):
    """Expected-spectrum ``k_χ`` on a fine grid over the first two axes (no simulation).

    The fine axes span each swept axis's range, geometrically on log axes
    (:func:`linsim.sweep.is_log_axis`), linearly otherwise; integer axes are rounded.  Rows
    run on an engine (:func:`linsim.parallel.get_engine`); each point is the expected spectrum
    of :func:`linsim.theory_inputs.predict_spectra` for the point's configuration (population
    eigenvalues, which the "exact" data mode reproduces exactly) with ``n_draws`` Gaussian
    draws and a fixed seed, so the map does not depend on the engine or the worker count.

    Parameters
    ----------
    spec : PhaseSpec
        A model with a theory hook, two or more axes (see
        :meth:`PhaseSpec.validate_for_theory_map`, called first).
    resolution : int >= 2
    n_workers : int, optional
    n_draws : int
    engine : str or linsim.parallel.Engine, optional

    Returns
    -------
    xarray.Dataset
        ``fine_k_chi`` and ``fine_stress_k`` on dims ``fine_<axis>``; for a sweep over ρ/σ₀ and
        one other axis also the analytic boundary of :func:`analytic_boundary` (evaluated
        on the cell values and on the fine grid of the other axis).

    Examples
    --------
    >>> base = EnsembleConfig(dim=6, n_samples=12, n_runs=2, n_checkpoints=3, steps=20)
    >>> fine = theory_map(PhaseSpec(base, {"c": [0.0, 1.0], "ratio": [1.0, 10.0]}), 3, 1, n_draws=2)
    >>> fine["fine_k_chi"].shape
    (3, 3)
    """
    import xarray as xr

    from linsim.parallel import get_engine

    fine = spec.validate_for_theory_map(resolution)
    import_theory()
    names = list(fine)
    items = [(spec.base, names, a, fine[names[1]], spec.criterion, int(n_draws)) for a in fine[names[0]]]
    rows: list = [None] * len(items)
    eng = get_engine(engine, n_workers)  # an Engine instance with n_workers is refused there
    from tqdm.auto import tqdm

    with tqdm(total=len(items), desc="theory map rows", disable=not progress, unit="row") as bar:
        for i, row in eng.map_unordered(_theory_row, items):
            rows[i] = row
            bar.update()
    kc = np.array([r[0] for r in rows])
    sk = np.array([r[1] for r in rows])
    fdims = tuple(f"fine_{n}" for n in names)
    k_star, chi = spec.criterion.k_star, spec.criterion.chi
    coords = {}
    for n in names:
        info = axis_info(n)
        coords[f"fine_{n}"] = (f"fine_{n}", fine[n], {
            "long_name": f"{info.long_name} (fine theory grid)", "units": info.units, "symbol": info.symbol})
    out = xr.Dataset(
        {
            "fine_k_chi": (fdims, kc, {
                "long_name": f"theory k_χ at χ = {chi:g} on the fine grid (expected spectrum)", "units": "1"}),
            "fine_stress_k": (fdims, sk, {
                "long_name": f"theory explained stress χ_k at k = k* = {k_star} on the fine grid", "units": "1"}),
        },
        coords=coords,
        attrs={"fine_map_draws": int(n_draws)},
    )
    other = [n for n in names[:2] if n != "scale_ratio"]
    if len(spec.axes) == 2 and "scale_ratio" in names and other:
        bounds = analytic_boundary(spec, fine_values=fine[other[0]], engine=eng, progress=progress)
        if bounds is not None:
            out = out.merge(bounds)
            out.attrs.update(bounds.attrs)  # merge keeps only the first dataset's attributes
    return out

