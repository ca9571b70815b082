"""The theory's phase boundary on a fine grid: expected-spectrum metrics, no simulation."""

from __future__ import annotations

import numpy as np

from linsim.ensemble import EnsembleConfig  # noqa: F401  (used by the docstring example)
from linsim._theory_check import import_theory
from linsim.sweep.axes import PhaseSpec, axis_info, with_values

__all__ = ["FINE_MAP_DRAWS", "theory_map"]

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
        ``fine_k_chi`` and ``fine_stress_k`` on dims ``fine_<axis>``.

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
    return xr.Dataset(
        {
            "fine_k_chi": (fdims, kc, {
                "long_name": f"theory k_χ at χ = {chi:g} on the fine grid (expected spectrum)", "units": "1"}),
            "fine_stress_k": (fdims, sk, {
                "long_name": f"theory explained stress χ_k at k = k* = {k_star} on the fine grid", "units": "1"}),
        },
        coords=coords,
        attrs={"fine_map_draws": int(n_draws)},
    )

