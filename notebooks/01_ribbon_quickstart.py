# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A hyper-ribbon from exact linear-model trajectories
#
# We simulate the standard ensemble (a linear model trained by gradient descent toward a
# linear teacher, on inputs whose correlation eigenvalues decay as $e^{-c(k-1)}$), embed every
# checkpoint of every run with InPCA, and compare the eigenvalues with the small-logit theory
# of the very same draw.
#
# `LINSIM_NOTEBOOK_SMALL=1` (set by the test suite) shrinks the sizes.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import theory
from linsim.embed import embed
from linsim.ensemble import EnsembleConfig, simulate
from linsim.plotting import eigenvalue_ladder, ribbon_figure

SMALL = os.environ.get("LINSIM_NOTEBOOK_SMALL") == "1"

# %% [markdown]
# Small weights keep the logits small, where the Bhattacharyya distance between softmax
# outputs is a quadratic form in the logit differences and the theory is exact.

# %%
cfg = EnsembleConfig(
    slope=0.5,
    teacher_scale=0.05,
    init_scale=0.01,
    n_runs=4 if SMALL else 16,
    n_checkpoints=8 if SMALL else 20,
    n_samples=60 if SMALL else 200,
    dim=12 if SMALL else 50,
    steps=1000,
)
traj = simulate(cfg)
emb = embed(traj)
print(traj.outputs.shape, "-> points:", traj.n_points)
print("explained stress chi_1..chi_5:", np.round(emb.model.explained_stress_[:5], 4))

# %%
fig = ribbon_figure(emb, title="linear model, GD, c = 0.5")

# %% [markdown]
# ## Theory of the same draw
# `theory.quadratic_spectrum` takes the spectrum, the teacher and the initial weights in the
# eigenbasis of $\Sigma$.

# %%
V = traj.arrays["eigenvectors"]
steps = traj.times.astype(int)
predicted = theory.quadratic_spectrum(
    traj.arrays["eigenvalues"], traj.arrays["teacher"] @ V, traj.arrays["init"] @ V, 1.0, steps
)
top = min(10, predicted.size)
rel = np.abs(predicted[:top] - emb.model.eigenvalues_[:top]) / np.abs(emb.model.eigenvalues_[:top])
print("relative error of the top eigenvalues:", np.round(rel, 4))
assert rel.max() < 0.05

fig, ax = plt.subplots(figsize=(5, 4))
eigenvalue_ladder(ax, emb.model.eigenvalues_, label="simulation")
ax.semilogy(np.arange(1, top + 1), np.abs(predicted[:top]), "x", color="C1", label="theory (same draw)")
ax.legend()
