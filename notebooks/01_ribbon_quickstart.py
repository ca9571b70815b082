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
# # A hyper-ribbon from exact linear-model trajectories
#
# We simulate the standard ensemble (a linear model trained by gradient descent toward a
# linear teacher, on inputs whose correlation eigenvalues decay as $e^{-c(k-1)}$), embed every
# checkpoint of every run with InPCA, and compare the eigenvalues with the small-logit theory
# of the very same draw.
#
# `LINSIM_NOTEBOOK_SMALL=1` (set by the test suite) shrinks the sizes.  linsim's figures are
# plain `matplotlib.figure.Figure` objects: the library never touches the backend, so the
# notebook chooses how figures are shown (inline here; `%matplotlib widget` works too).

# %%
# %matplotlib inline
import os

import numpy as np

import linsim
from linsim.plotting import eigenvalue_ladder, ribbon_figure

SMALL = os.environ.get("LINSIM_NOTEBOOK_SMALL") == "1"

# %% [markdown]
# Small weights keep the logits small, where the Bhattacharyya distance between softmax
# outputs is a quadratic form in the logit differences and the theory is exact.  We take
# $\lambda_1 = 1.5$ on purpose: the learning rate is then $1/\lambda_1$, and the theory must
# be told so.

# %%
cfg = linsim.EnsembleConfig(
    slope=0.5,
    lambda_1=1.5,
    teacher_scale=0.05,
    init_scale=0.01,
    n_runs=4 if SMALL else 16,
    n_checkpoints=8 if SMALL else 20,
    n_samples=60 if SMALL else 200,
    dim=12 if SMALL else 50,
    steps=1000,
)
traj = linsim.simulate(cfg)
emb = linsim.embed(traj)
print(traj)
print("explained stress chi_1..chi_5:", np.round(emb.model.explained_stress_[:5], 4))

# %%
fig = ribbon_figure(emb, title=f"linear model, GD, c = {cfg.slope}, λ₁ = {cfg.lambda_1}")
fig

# %% [markdown]
# ## Theory of the same draw
# `linsim.theory_inputs` turns the trajectory into the theory's inputs: the eigenvalues of
# $\Sigma$ the solver used, teacher and initial weights in its eigenbasis, the learning rate
# that was actually used and the checkpoint steps.  Nothing is rebuilt by hand.

# %%
inputs = linsim.theory_inputs(traj)
print(inputs)
predicted = inputs.quadratic_spectrum()
top = min(10, predicted.size)
rel = np.abs(predicted[:top] - emb.model.eigenvalues_[:top]) / np.abs(emb.model.eigenvalues_[:top])
print("relative error of the top eigenvalues:", np.round(rel, 4))
assert rel.max() < 0.05

# %%
ax = eigenvalue_ladder(emb.model.eigenvalues_, label="simulation")
ax.plot(np.arange(1, top + 1), np.abs(predicted[:top]), "x", color="C1", ms=8, label="theory (same draw)")
ax.legend()
ax.set_title("InPCA eigenvalues: simulation and theory")
ax.figure
