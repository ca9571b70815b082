# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Phase diagram: where do trajectories form a hyper-ribbon?
#
# Sweep the slope $c$ of the input spectrum and the output-to-weight ratio $\rho/\sigma_0$; in
# every cell simulate the ensemble, embed it with InPCA and ask whether three dimensions explain
# 90% of the stress. The theory's prediction is evaluated in every cell beside the simulation,
# and on a finer grid (no simulation needed) to draw its boundary.
#
# `LINSIM_NOTEBOOK_SMALL=1` (set by the test suite) shrinks the sweep to a few tiny cells.

# %%
# %matplotlib inline
import os

import numpy as np

import linsim
from linsim.plotting import phase_figure

SMALL = os.environ.get("LINSIM_NOTEBOOK_SMALL") == "1"
n = 2 if SMALL else 10
if SMALL:
    base = linsim.EnsembleConfig(init_scale=0.01, n_runs=3, n_checkpoints=4, dim=6, n_samples=24,
                                 n_classes=3, steps=100)
else:
    base = linsim.EnsembleConfig(init_scale=0.01, n_runs=12, n_checkpoints=16, dim=40, n_samples=160)
spec = linsim.PhaseSpec(base, {"c": np.linspace(0.0, 2.0, n), "ratio": np.geomspace(0.1, 100.0, n)})
ds = linsim.run_phase(spec, n_workers=1, progress=False, theory_resolution=3 if SMALL else 24)
ds

# %%
summary = linsim.agreement(ds)
print(f"theory and simulation agree in {summary['agreement']:.0%} of {summary['cells']} cells")
fig = phase_figure(ds)
fig
