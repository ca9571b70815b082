"""Sections 2 and 3 of the issue-9 acceptance benchmark: expected stress curves, finite logits.

See :mod:`theory_acceptance` for what is measured and why.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import theory
from linsim.embed import embed
from linsim.ensemble import simulate
from linsim.theory_inputs import theory_inputs

from _acceptance_common import SEED_OFFSET, _base

def curve_check(cells, n_seeds: int):
    worst_an, worst_mc = 0.0, 0.0
    for i, (c, C, R, ratio) in enumerate(cells):
        base = dataclasses.replace(_base(c, C, R, 1000, 0), teacher_scale=ratio * 0.01)
        curves = []
        for s in range(n_seeds):
            model = embed(simulate(dataclasses.replace(base, seed=SEED_OFFSET + 500 + 100 * i + s))).model
            curves.append(np.asarray(model.explained_stress_)[:10])
        sim = np.mean(curves, axis=0)
        inp = theory_inputs(base)
        args = (inp.eigenvalues, C, base.teacher_scale, base.init_scale, inp.lr, inp.steps, R)
        an = theory.expected_explained_stress(*args, method="analytic", n_components=10).chi
        mc = theory.expected_explained_stress(*args, n_draws=64, seed=SEED_OFFSET + i, n_components=10)
        dan, dmc = float(np.abs(an - sim).max()), float(np.abs(mc.chi - sim).max())
        worst_an, worst_mc = max(worst_an, dan), max(worst_mc, dmc)
        print(f"   c={c:<4} C={C:<3} R={R:<3} rho/sigma0={ratio:<5} max |analytic - sim| {dan:.4f}  "
              f"max |monte-carlo - sim| {dmc:.4f} (MC s.e. <= {mc.stderr.max():.4f})", flush=True)
    return worst_an, worst_mc


def _weyl_error(pred, sim) -> float:
    """Largest eigenvalue shift, positive and negative parts each matched in algebraic order
    (the order of Weyl's inequality; sorting by |mu| would pair a negative value with a positive
    one of similar size), missing values counted as 0, in units of the largest |sim|."""
    def part(x, sign):
        v = np.sort(sign * x[sign * x > 0])[::-1]
        return v
    err = 0.0
    for sign in (1.0, -1.0):
        a, b = part(np.asarray(pred), sign), part(np.asarray(sim), sign)
        m = max(a.size, b.size)
        a, b = np.pad(a, (0, m - a.size)), np.pad(b, (0, m - b.size))
        if m:
            err = max(err, float(np.abs(a - b).max()))
    return err / float(np.abs(sim).max())


def finite_logit_check(cells):
    worst_e, worst_c, worst_q = 0.0, 0.0, 0.0
    covered = 0
    for i, (C, z) in enumerate(cells):
        base = dataclasses.replace(_base(0.5, C, 8, 1000, SEED_OFFSET + 700 + i), teacher_scale=0.1,
                                   init_scale=0.1)
        z0 = theory.centred_logit_rms(np.asarray(simulate(base).outputs))
        cfg = dataclasses.replace(base, teacher_scale=0.1 * z / z0, init_scale=0.1 * z / z0)
        traj = simulate(cfg)  # logits are linear in the common scale: this hits rms z exactly
        model = embed(traj).model
        ev = np.asarray(model.eigenvalues_, dtype=float)
        fro = float(model.frobenius_norm_)
        chi_sim = np.asarray(model.explained_stress_)[:10]
        out = np.asarray(traj.outputs, dtype=float)
        res = {}
        for metric in ("segment", "uniform"):
            f = theory.finite_logit_spectrum(out, metric=metric)
            e = _weyl_error(f.eigenvalues[:ev.size], ev)
            dchi = float(np.abs(f.explained_stress()[:10] - chi_sim).max())
            res[metric] = (e, dchi, f)
        e, dchi, f = res["segment"]
        covered += int(f.eigenvalue_error >= e)
        worst_e, worst_c = max(worst_e, e), max(worst_c, dchi)
        worst_q = max(worst_q, res["uniform"][0])
        neg_sim = float(np.sum(ev[ev < 0] ** 2) / fro**2)
        print(f"   C={C:<2} rms logit {theory.centred_logit_rms(out):.2f}: segment |dmu|/mu_1 {e:.4f} "
              f"(own estimate {f.eigenvalue_error:.4f}), max |dchi| {dchi:.4f}; quadratic theory "
              f"{res['uniform'][0]:.4f} / {res['uniform'][1]:.4f}; negative share sim {neg_sim:.5f} "
              f"predicted {f.negative_share:.5f}", flush=True)
    return worst_e, worst_c, worst_q, covered
