# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Phase diagram: where do trajectories form a hyper-ribbon?
#
# Sweep the slope $c$ of the input spectrum and the output-to-weight ratio $\rho/\sigma_0$; in
# every cell simulate the ensemble, embed it with InPCA and ask whether three dimensions explain
# 90% of the stress. The theory's prediction is evaluated in every cell beside the simulation.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import numpy as np

from linsim.ensemble import EnsembleConfig
from linsim.plotting import phase_figure
from linsim.sweep import PhaseSpec, agreement, run_phase

SMALL = os.environ.get("LINSIM_NOTEBOOK_SMALL") == "1"
n = 3 if SMALL else 10
base = EnsembleConfig(init_scale=0.01, n_runs=6 if SMALL else 12, n_checkpoints=8 if SMALL else 16,
                      dim=16 if SMALL else 40, n_samples=60 if SMALL else 160)
spec = PhaseSpec(base, {"c": np.linspace(0.0, 2.0, n), "ratio": np.geomspace(0.1, 100.0, n)})
ds = run_phase(spec, n_workers=1, progress=False, theory_resolution=0 if SMALL else 24)
ds

# %%
summary = agreement(ds)
print(f"theory and simulation agree in {summary['agreement']:.0%} of {summary['cells']} cells")
fig = phase_figure(ds)
