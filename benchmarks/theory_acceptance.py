"""Measure issue 9's acceptance figures for the theory against linsim's exact pipeline.

Every simulation here uses seeds ``SEED_OFFSET + ...`` with ``SEED_OFFSET = 900_000``: no test
(tests use seeds below 1000) and no tuning script of the theory used seeds in that range, so
these are out-of-sample numbers.  Inputs of the theory come from :func:`linsim.theory_inputs`
(the config form: population spectrum, the simulator's learning rate and checkpoints).

1. **Boundary scans.**  For cells drawn (seeded) from C in {2, 3, 5, 10, 50}, R in {4, 8, 16, 64},
   c in [0.05, 2], T in {10, 10^3, 10^5} (d = 30, n = 60 exact inputs, sigma0 = 0.01 so the logits
   stay small, 0 + 10 log-spaced checkpoints), ``theory.critical_ratio`` predicts the ratio
   rho/sigma0 where the seed-averaged chi_3 crosses 0.9.  The simulation measures chi_3 (mean over
   ``--seeds`` x max(1, 32 // R) seeds of exact softmax + Bhattacharyya + InPCA; with 6 seeds at
   R = 8 the seed-to-seed noise alone moved a crossing by 40%) on a ratio grid concentrated around
   the prediction (x0.5 ... x2, plus fixed ratios for the 0 and inf branches); the simulated
   crossing is the log-interpolated first upward crossing.  Targets: prediction within 15% in
   >= 90% of the scans (both 0, or both without a crossing on the grid, count as agreement);
   ribbon/no-ribbon agreement >= 97% over all grid points, reported next to the trivial rule
   "ribbon iff rho/sigma0 >= 1.5" on the same points.
2. **Expected stress curve.**  ``expected_explained_stress(method="analytic")`` and
   ``method="monte-carlo"`` (k = 1..10) against the mean of 20 simulated seeds (target: max
   deviation < 0.03).

3. **Finite-logit correction (same draw).**  ``theory.finite_logit_spectrum`` (softmax Fisher
   metric averaged along the segment between the actual logits) of the simulated logits against
   the exact InPCA of the same ensemble at pooled centred logit rms 0.3, 0.6 and 1.0 (C = 2 and
   5).  Targets: eigenvalues within 5% of mu_1 and chi_k (k <= 10) within 0.05; reported next to
   the quadratic (uniform-point) theory on the same logits, with the negative-eigenvalue share
   (simulated vs predicted) and whether the function's own error estimate covered its error.

Run: ``python benchmarks/theory_acceptance.py [--quick] [--cells N] [--seeds S]``.
``--quick`` runs 3 scans with 3 seeds, 2 curve cells with 5 seeds and 2 finite-logit cells (a
smoke test of the script, not a measurement).  Prints PASS/FAIL per target; exit status 1 if any target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import theory
from linsim.embed import embed
from linsim.ensemble import EnsembleConfig, simulate
from linsim.theory_inputs import theory_inputs

SEED_OFFSET = 900_000
CHI, K_STAR = 0.9, 3
GRID_FACTORS = (0.5, 0.7, 0.85, 1.0, 1.18, 1.4, 2.0)
ZERO_GRID = (0.05, 0.2, 0.6, 1.5)
INF_GRID = (1.0, 3.0, 10.0, 30.0)
TRIVIAL_RATIO = 1.5


def _base(c, C, R, T, seed) -> EnsembleConfig:
    return EnsembleConfig(slope=float(c), dim=30, n_samples=60, n_classes=int(C), n_runs=int(R),
                          steps=int(T), n_checkpoints=10, teacher_scale=0.01, init_scale=0.01,
                          seed=int(seed))


def _chi3(cfg: EnsembleConfig) -> float:
    return float(embed(simulate(cfg)).model.explained_stress_[K_STAR - 1])


def _sim_chi3(base: EnsembleConfig, ratio: float, seeds) -> float:
    vals = [_chi3(dataclasses.replace(base, teacher_scale=ratio * base.init_scale, seed=int(s)))
            for s in seeds]
    return float(np.mean(vals))


def _crossing(grid, chi3):
    """Log-interpolated first upward crossing of CHI; 0.0 if the first point is above, inf if none."""
    above = chi3 >= CHI
    if above[0]:
        return 0.0
    idx = np.flatnonzero(above)
    if idx.size == 0:
        return np.inf
    i = int(idx[0])
    x0, x1 = np.log(grid[i - 1]), np.log(grid[i])
    y0, y1 = chi3[i - 1], chi3[i]
    return float(np.exp(x0 + (CHI - y0) / (y1 - y0) * (x1 - x0)))


def _scan_agrees(pred, sim, grid) -> bool:
    if pred == 0.0 or sim == 0.0:
        return pred <= grid[0] and sim == 0.0
    if not np.isfinite(pred) or not np.isfinite(sim):
        return (not np.isfinite(sim)) and (not np.isfinite(pred) or pred > grid[-1])
    return abs(pred / sim - 1.0) <= 0.15


def boundary_scans(n_cells: int, n_seeds: int, rng_seed: int):
    rng = np.random.default_rng(np.random.SeedSequence([SEED_OFFSET, rng_seed]))
    Cs, Rs, Ts = (2, 3, 5, 10, 50), (4, 8, 16, 64), (10, 1000, 100000)
    rows = []
    for cell in range(n_cells):
        C, R, T = int(rng.choice(Cs)), int(rng.choice(Rs)), int(rng.choice(Ts))
        c = float(np.round(rng.uniform(0.05, 2.0), 3))
        base = _base(c, C, R, T, 0)
        inp = theory_inputs(base)
        pred = theory.critical_ratio(inp.eigenvalues, C, inp.lr, inp.steps, R, chi=CHI, k_star=K_STAR)
        if pred == 0.0:
            grid = np.array(ZERO_GRID)
        elif not np.isfinite(pred):
            grid = np.array(INF_GRID)
        else:
            grid = pred * np.array(GRID_FACTORS)
        # the seed average of chi_3 is noisy for few runs: more seeds where R is small
        seeds = SEED_OFFSET + 1000 * (cell + 1) + np.arange(n_seeds * max(1, 32 // R))
        t0 = time.perf_counter()
        chi3 = np.array([_sim_chi3(base, r, seeds) for r in grid])
        sim = _crossing(grid, chi3)
        ok = _scan_agrees(pred, sim, grid)
        theory_says = grid >= pred
        sim_says = chi3 >= CHI
        trivial_says = grid >= TRIVIAL_RATIO
        rows.append(dict(ok=ok, agree=int(np.sum(theory_says == sim_says)),
                         trivial=int(np.sum(trivial_says == sim_says)), points=int(grid.size)))
        print(f"   C={C:<3} R={R:<3} c={c:<6} T={T:<7} predicted {pred:7.3f}  simulated {sim:7.3f}  "
              f"{'ok ' if ok else 'off'}  chi_3 on grid {np.round(chi3, 3)}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    return rows


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 scans, 3 seeds, 2 curve cells")
    ap.add_argument("--cells", type=int, default=40, help="number of boundary scans (default 40)")
    ap.add_argument("--seeds", type=int, default=8,
                    help="seeds per grid point at R >= 32, times 32 // R below (default 8)")
    args = ap.parse_args(argv)
    if args.cells < 1 or args.seeds < 1:
        ap.error("--cells and --seeds must be >= 1")
    n_cells, n_seeds = (3, 3) if args.quick else (args.cells, args.seeds)
    ok_all = True

    print(f"1. boundary scans: critical_ratio vs the simulated chi_3 = {CHI} crossing "
          f"({n_cells} cells, {n_seeds} seeds per point, seed offset {SEED_OFFSET})")
    rows = boundary_scans(n_cells, n_seeds, rng_seed=1)
    within = np.mean([r["ok"] for r in rows])
    points = sum(r["points"] for r in rows)
    agree = sum(r["agree"] for r in rows) / points
    trivial = sum(r["trivial"] for r in rows) / points
    ok = within >= 0.90
    ok_all &= ok
    print(f"   within 15%: {100 * within:.1f}% of {len(rows)} scans (target >= 90%)  {'PASS' if ok else 'FAIL'}")
    ok = agree >= 0.97
    ok_all &= ok
    print(f"   ribbon/no-ribbon agreement: theory {100 * agree:.1f}%, trivial rule (rho/sigma0 >= "
          f"{TRIVIAL_RATIO}) {100 * trivial:.1f}% of {points} grid points (target >= 97%)  "
          f"{'PASS' if ok else 'FAIL'}")

    cells = [(0.5, 5, 16, 0.1), (1.0, 3, 8, 1.0), (0.25, 10, 16, 3.0), (2.0, 2, 8, 1.0)]
    if args.quick:
        cells, curve_seeds = cells[:2], 5
    else:
        curve_seeds = 20
    print(f"2. expected explained-stress curve (k = 1..10) vs the mean of {curve_seeds} simulated seeds "
          "(target: max deviation < 0.03)")
    worst_an, worst_mc = curve_check(cells, curve_seeds)
    for name, worst in (("analytic", worst_an), ("monte-carlo", worst_mc)):
        ok = worst < 0.03
        ok_all &= ok
        print(f"   method={name!r}: worst max deviation {worst:.4f}  {'PASS' if ok else 'FAIL'}")

    fl_cells = [(C, z) for C in (2, 5) for z in (0.3, 0.6, 1.0)]
    if args.quick:
        fl_cells = [(2, 1.0), (5, 1.0)]
    print("3. finite-logit same-draw spectrum vs exact InPCA (targets: |dmu| <= 5% of mu_1, "
          "|dchi| <= 0.05)")
    we, wc, wq, cov = finite_logit_check(fl_cells)
    ok = we <= 0.05 and wc <= 0.05
    ok_all &= ok
    print(f"   worst |dmu|/mu_1 {we:.4f}, worst |dchi| {wc:.4f} (quadratic theory worst |dmu|/mu_1 "
          f"{wq:.4f}); own error estimate covered the error in {cov}/{len(fl_cells)}  "
          f"{'PASS' if ok else 'FAIL'}")
    print("all targets met" if ok_all else "SOME TARGETS MISSED")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
