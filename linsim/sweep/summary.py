"""Summaries of a sweep dataset: where theory and simulation classify cells alike."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["PREDICTIONS", "TRIVIAL_RIBBON_RATIO", "agreement", "common_agreement"]

#: The trivial rule every theory verdict is compared with: "ribbon iff ρ/σ₀ >= 1.5" (the one
#: definition, used by ``linsim phase`` and by the issue-9 acceptance benchmark).
TRIVIAL_RIBBON_RATIO = 1.5

#: Predictions a simulation can be compared with: prefix -> description.
PREDICTIONS = {
    "theory": "expected spectrum",
    "draw": "same-draw small-logit spectrum",
    "analytic": "analytic boundary theory.critical_ratio",
    "trivial": f"trivial rule ρ/σ₀ >= {TRIVIAL_RIBBON_RATIO:g}",
}


def _flag(ds, name: str, shape) -> tuple[np.ndarray, np.ndarray]:
    """``(value, available)`` of a boolean variable, for boolean (with ``*_valid`` masks) and
    for older 0/1-float-with-NaN datasets."""
    if name not in ds:
        return np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    values = ds[name].values
    if values.dtype == bool:
        prefix = name.split("_", 1)[0]
        mask_name = f"{prefix}_valid" if prefix in ("sim", "theory", "draw") else "sim_valid"
        valid = ds[mask_name].values.astype(bool) if mask_name in ds else np.ones(shape, dtype=bool)
        return values, valid
    values = np.asarray(values, dtype=np.float64)
    return values == 1.0, np.isfinite(values)


def agreement(ds, prediction: str = "theory") -> dict[str, Any]:
    """Where theory and simulation classify cells the same (ribbon vs no ribbon).

    Parameters
    ----------
    ds : xarray.Dataset from :func:`linsim.sweep.run_phase`
    prediction : {"theory", "draw", "analytic", "trivial"}
        Compare the simulation with the expected spectrum, the same-draw prediction, the
        analytic boundary (``analytic_is_ribbon``) or the trivial rule
        (``trivial_is_ribbon``, :data:`TRIVIAL_RIBBON_RATIO`); cells without the variable
        count as having no prediction.

    Returns
    -------
    dict with keys ``prediction``, ``agreement`` (fraction of compared cells that agree; NaN
    when no cell could be compared), ``cells`` (number compared), ``agreement_in_regime`` and
    ``cells_in_regime`` (cells with small logits), ``failed`` (cells that failed or were not
    computed), ``no_theory`` (successful cells without a prediction) and ``disagreements``:
    one record per disagreeing cell with its axis values, both ``k_χ``, both ``χ_{k*}`` and
    the logit size.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"status": ("c", np.array(["ok", "ok"])),
    ...                  "sim_is_ribbon": ("c", [True, False]), "theory_is_ribbon": ("c", [True, True])},
    ...                 coords={"c": [0.0, 1.0]})
    >>> agreement(ds)["agreement"]
    0.5
    >>> agreement(ds, "foo")
    Traceback (most recent call last):
    ...
    ValueError: prediction must be one of ['analytic', 'draw', 'theory', 'trivial']; got 'foo'
    """
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {sorted(PREDICTIONS)}; got {prediction!r}")
    if "status" not in ds:
        raise ValueError("agreement needs a sweep dataset (from run_phase): it has no 'status' variable")
    axes = list(ds["status"].dims)
    shape = ds["status"].shape

    def values(name):
        return ds[name].values if name in ds else np.full(shape, np.nan)

    sim, sim_ok = _flag(ds, "sim_is_ribbon", shape)
    pred, pred_ok = _flag(ds, f"{prediction}_is_ribbon", shape)
    regime, regime_ok = _flag(ds, "in_regime", shape)
    ok = ds["status"].values == "ok"
    compared = ok & sim_ok & pred_ok
    in_regime = compared & regime_ok & regime
    agree = compared & (sim == pred)
    disagreements = []
    for idx in zip(*np.nonzero(compared & ~agree)):
        rec = {name: float(ds[name].values[i]) for name, i in zip(axes, idx)}
        rec.update(
            sim_k_chi=float(values("sim_k_chi")[idx]),
            predicted_k_chi=float(values(f"{prediction}_k_chi")[idx]),
            sim_stress_k=float(values("sim_stress_k")[idx]),
            predicted_stress_k=float(values(f"{prediction}_stress_k")[idx]),
            logit_rms=float(values("logit_rms")[idx]),
            in_regime=bool(in_regime[idx]),
        )
        disagreements.append(rec)
    n_cmp = int(compared.sum())
    n_reg = int(in_regime.sum())
    return {
        "prediction": prediction,
        "agreement": float(agree.sum() / n_cmp) if n_cmp else math.nan,
        "cells": n_cmp,
        "agreement_in_regime": float((agree & in_regime).sum() / n_reg) if n_reg else math.nan,
        "cells_in_regime": n_reg,
        "failed": int((~ok).sum()),
        "no_theory": int((ok & ~pred_ok).sum()),
        "disagreements": disagreements,
    }


def common_agreement(ds, predictions=("theory", "analytic", "trivial")) -> dict[str, Any]:
    """Agreement of several predictions with the simulation on the SAME cells.

    A cell counts when it succeeded and the simulation and every listed prediction have a
    verdict there, so the fractions are directly comparable (e.g. the theory against the
    trivial rule :data:`TRIVIAL_RIBBON_RATIO`).

    Returns
    -------
    dict: ``cells`` (number compared) and, per prediction, the fraction of those cells where it
    agrees with ``sim_is_ribbon`` (NaN when no cell qualifies).

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"status": ("c", np.array(["ok", "ok", "ok"])),
    ...                  "sim_is_ribbon": ("c", [True, False, True]),
    ...                  "theory_is_ribbon": ("c", [True, True, np.nan]),
    ...                  "trivial_is_ribbon": ("c", [1.0, 0.0, 0.0])}, coords={"c": [0.0, 1.0, 2.0]})
    >>> common_agreement(ds, ("theory", "trivial"))
    {'cells': 2, 'theory': 0.5, 'trivial': 1.0}
    """
    for p in predictions:
        if p not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {sorted(PREDICTIONS)}; got {p!r}")
    if "status" not in ds:
        raise ValueError("common_agreement needs a sweep dataset (from run_phase): it has no 'status' variable")
    shape = ds["status"].shape
    sim, mask = _flag(ds, "sim_is_ribbon", shape)
    mask = mask & (ds["status"].values == "ok")
    verdicts = {}
    for p in predictions:
        v, ok = _flag(ds, f"{p}_is_ribbon", shape)
        verdicts[p] = v
        mask = mask & ok
    n = int(mask.sum())
    out: dict[str, Any] = {"cells": n}
    for p in predictions:
        out[p] = float((mask & (verdicts[p] == sim)).sum() / n) if n else math.nan
    return out
