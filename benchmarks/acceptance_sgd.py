"""Section 4 of the issue-9 acceptance benchmark: the typical (median over noise) SGD geometry.

For one draw of the standard ensemble (data, teacher, initialization fixed by the seed) the
batch noise is re-drawn ``n_real`` times with linsim's SGD simulator; each realisation is
embedded exactly (softmax Bhattacharyya distances + InPCA) and the median over realisations of
chi_k (k = 1..6) is compared with ``theory.sgd_typical_explained_stress`` (spectrum of the expected
feature-space covariance plus its finite-sample spread, derivations.md §5.2.1; the leading order
alone is reported too) and with the mean-Gram theory ``theory.sgd_quadratic_spectrum``.
Target: the typical theory's worst |error| below the mean-Gram theory's at every batch size.
Seeds ``SEED_OFFSET + 800 ...``: used by no test and no tuning.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import theory
from linsim.embed import embed
from linsim.ensemble import EnsembleConfig, simulate
from linsim.solvers.sgd import sgd_simulate
from linsim.trajectory import Trajectory

from _acceptance_common import SEED_OFFSET

K_MAX = 6


def _median_chi(traj0: Trajectory, cfg: EnsembleConfig, n_real: int, seed: int) -> np.ndarray:
    X = np.asarray(traj0.inputs, dtype=float)
    Wt, W0 = traj0.arrays["teacher"], traj0.arrays["init"]
    steps = np.asarray(traj0.arrays["steps"])
    lr = float(traj0.params["lr_effective"])
    R = W0.shape[0]
    out = sgd_simulate(X, X @ Wt.T, np.tile(W0, (n_real, 1, 1)), lr, cfg.batch_size, steps,
                       np.random.SeedSequence(seed))
    chis = []
    for s in range(n_real):
        t = dataclasses.replace(traj0, outputs=out[s * R:(s + 1) * R])
        chis.append(np.asarray(embed(t).model.explained_stress_)[:K_MAX])
    return np.median(chis, axis=0)


def sgd_check(batch_sizes=(1, 4, 16), n_real: int = 100):
    """Print one row per batch size; return ``(worst_typical, worst_mean)`` lists (max_k |error|)."""
    worst_typ, worst_mean = [], []
    for i, b in enumerate(batch_sizes):
        cfg = EnsembleConfig(optimizer="sgd", batch_size=int(b), slope=0.5, dim=20, n_samples=80,
                             n_classes=5, n_runs=8, steps=1000, n_checkpoints=10, teacher_scale=0.01,
                             init_scale=0.01, lr=0.5, seed=SEED_OFFSET + 800)
        traj0 = simulate(cfg)
        med = _median_chi(traj0, cfg, n_real, SEED_OFFSET + 810 + i)
        X = np.asarray(traj0.inputs, dtype=float)
        args = (X, traj0.arrays["teacher"], traj0.arrays["init"], float(traj0.params["lr_effective"]),
                np.asarray(traj0.arrays["steps"]), int(b))
        typ = theory.sgd_typical_explained_stress(*args)[:K_MAX]
        lead = theory.sgd_typical_explained_stress(*args, spread=False)[:K_MAX]
        mean = theory.explained_stress(theory.sgd_quadratic_spectrum(*args))[:K_MAX]
        et, el, em = (float(np.abs(x - med).max()) for x in (typ, lead, mean))
        worst_typ.append(et)
        worst_mean.append(em)
        print(f"   b={b:<3} median chi_1..3 {np.round(med[:3], 3)}  max |typical - sim| {et:.4f} "
              f"(leading order {el:.4f})  max |mean-Gram - sim| {em:.4f}  ({n_real} noise realisations)",
              flush=True)
    return worst_typ, worst_mean
