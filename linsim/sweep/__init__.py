"""Phase sweeps: simulate the standard ensemble on a grid of parameters, embed every cell
with InPCA, compute its sloppiness metrics, and evaluate the analytic theory beside it.

A sweep is described by a :class:`PhaseSpec` (base ensemble, one to three axes, ribbon
criterion, root seed, replicates) and run by :func:`run_phase`, which returns an
``xarray.Dataset`` whose dimensions are the swept axes.  The pieces, one job each:

* :mod:`linsim.sweep.axes`: axis names, values, seeds, checks made before computing;
* :mod:`linsim.sweep.cells`: one cell (simulate, embed, metrics, theory), never raising;
* :mod:`linsim.sweep.theory_map`: the theory's boundary on a fine grid, no simulation;
* :mod:`linsim.sweep.dataset`: the dataset layout, CF attributes, the per-cell store;
* :mod:`linsim.sweep.summary`: agreement between theory and simulation;
* :mod:`linsim.sweep.runner`: :func:`run_phase` on an engine of :mod:`linsim.parallel`.

Examples
--------
>>> from linsim.ensemble import EnsembleConfig
>>> spec = PhaseSpec(EnsembleConfig(), {"c": [0.0, 1.0], "ratio": [0.1, 1.0, 10.0]})
>>> spec.shape, list(spec.axes)
((2, 3), ['slope', 'scale_ratio'])
"""

# (a shadowing theory.py is named by ``import linsim``, which runs before any of these)
from linsim._theory_check import TheoryShadowedError, import_theory
from linsim.sweep.axes import (ALIASES, AXIS_INFO, AxisInfo, PhaseSpec, Unit, axis_info, canonical_axis,
                               fine_axis, is_integer_axis, is_log_axis, with_values)
from linsim.sweep.cells import N_STRESS, CellResult, logit_scale, run_cell, theory_spectra
from linsim.sweep.dataset import PREFIXES, assemble, cells_folder, save_dataset, variable_attrs
from linsim.sweep.runner import SweepFailedError, SweepInterrupted, run_phase
from linsim.sweep.summary import PREDICTIONS, TRIVIAL_RIBBON_RATIO, agreement, common_agreement
from linsim.sweep.theory_map import FINE_MAP_DRAWS, analytic_boundary, theory_map


def __getattr__(name):
    # The small-logit regime has one definition, in theory; kept importable from here.
    if name == "REGIME_LOGIT_RMS":
        return import_theory().REGIME_LOGIT_RMS
    raise AttributeError(f"module 'linsim.sweep' has no attribute {name!r}")


__all__ = [
    "ALIASES", "AXIS_INFO", "AxisInfo", "CellResult", "FINE_MAP_DRAWS", "N_STRESS", "PREDICTIONS", "PREFIXES",
    "PhaseSpec", "REGIME_LOGIT_RMS", "SweepFailedError", "SweepInterrupted", "TRIVIAL_RIBBON_RATIO",
    "TheoryShadowedError", "Unit", "agreement", "analytic_boundary", "common_agreement", "assemble", "axis_info", "canonical_axis", "cells_folder",
    "fine_axis", "import_theory", "is_integer_axis", "is_log_axis", "logit_scale", "run_cell", "run_phase",
    "save_dataset", "theory_map", "theory_spectra", "variable_attrs", "with_values",
]
