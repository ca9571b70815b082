"""Measure issue 4's acceptance figures for the theory against linsim's exact pipeline.

1. ``theory.quadratic_spectrum`` vs the simulated InPCA eigenvalues (exact softmax, exact
   Bhattacharyya distances, InPCA) of the *same* draw of the standard ensemble, teacher and init
   scales <= 0.1: largest relative error over the top 10 eigenvalues (target < 1%).
2. ``theory.expected_explained_stress`` (k = 1..10) vs the average over 20 simulated seeds with
   R = 16 runs: largest absolute deviation (target < 0.03).
3. The default ``linsim phase`` grid: fraction of cells where the expected-spectrum theory and the
   simulation classify ribbon / no ribbon alike, overall and in the small-logit regime
   (target >= 95% in the regime).  ``--quick`` skips this part.

Run: ``python benchmarks/theory_acceptance.py [--quick]``.  Every number is seeded.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import theory
from linsim.embed import embed
from linsim.ensemble import EnsembleConfig, simulate


def _theory_inputs(traj):
    V = traj.arrays["eigenvectors"]
    return (traj.arrays["eigenvalues"], traj.arrays["teacher"] @ V, traj.arrays["init"] @ V,
            traj.params["lr_effective"], traj.arrays["steps"])


def same_draw(cfg: EnsembleConfig) -> float:
    traj = simulate(cfg)
    sim = embed(traj, n_components=10).model.eigenvalues_
    lam, teacher, init, lr, steps = _theory_inputs(traj)
    pred = theory.quadratic_spectrum(lam, teacher, init, lr, steps)[:10]
    return float(np.max(np.abs(pred / sim - 1.0)))


def seed_average(cfg: EnsembleConfig, n_seeds: int = 20) -> tuple[float, np.ndarray, np.ndarray]:
    curves = []
    for s in range(n_seeds):
        traj = simulate(dataclasses.replace(cfg, seed=s))
        curves.append(embed(traj).model.explained_stress_[:10])
    sim = np.mean(curves, axis=0)
    lam, _, _, lr, steps = _theory_inputs(traj)
    pred = theory.expected_explained_stress(lam, cfg.n_classes, cfg.teacher_scale, cfg.init_scale, lr,
                                            steps, cfg.n_runs, n_components=10)
    return float(np.max(np.abs(pred - sim))), pred, sim


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the phase grid")
    args = ap.parse_args(argv)
    ok = True

    print("1. same-draw small-logit prediction, top-10 eigenvalues (target: max rel. error < 1%)")
    print("   a) trace-normalised inputs (sum of lambda = 1, so the scales are output scales)")
    for slope in (0.25, 0.5, 1.0):
        lam1 = 1.0 / np.sum(np.exp(-slope * np.arange(EnsembleConfig.dim)))
        for rho, s0 in ((0.1, 0.1), (0.1, 0.01), (0.01, 0.1)):
            cfg = EnsembleConfig(slope=slope, lambda_1=lam1, teacher_scale=rho, init_scale=s0, n_runs=16,
                                 seed=1)
            err = same_draw(cfg)
            ok &= err < 0.01
            print(f"      c={slope:<5} rho={rho:<5} sigma0={s0:<5} max rel. error {100 * err:6.3f}%"
                  f"  {'PASS' if err < 0.01 else 'FAIL'}")
    print("   b) standard ensemble (lambda_1 = 1; logits larger by sqrt(sum lambda)); reported, not judged")
    for slope in (0.25, 1.0):
        for scale in (0.1, 0.05):
            cfg = EnsembleConfig(slope=slope, teacher_scale=scale, init_scale=scale, n_runs=16, seed=1)
            print(f"      c={slope:<5} rho=sigma0={scale:<5} max rel. error {100 * same_draw(cfg):6.3f}%")

    print("2. expected explained-stress curve vs 20 simulated seeds, R=16 (target: max |diff| < 0.03)")
    for slope, rho, s0 in ((0.5, 0.1, 0.01), (0.5, 0.01, 0.1), (1.0, 0.05, 0.05), (0.25, 0.1, 0.1)):
        cfg = EnsembleConfig(slope=slope, teacher_scale=rho, init_scale=s0, n_runs=16)
        t0 = time.perf_counter()
        dev, pred, sim = seed_average(cfg)
        ok &= dev < 0.03
        print(f"   c={slope:<5} rho={rho:<5} sigma0={s0:<5} max |diff| {dev:.4f}  "
              f"chi_1..3 theory {np.round(pred[:3], 3)} sim {np.round(sim[:3], 3)}  "
              f"({time.perf_counter() - t0:.1f} s)  {'PASS' if dev < 0.03 else 'FAIL'}")

    if not args.quick:
        from linsim.cli import PHASE_AXES, PHASE_BASE, parse_axis
        from linsim.sweep import PhaseSpec, agreement, run_phase

        print("3. default phase grid (target: >= 95% agreement in the small-logit regime)")
        spec = PhaseSpec(EnsembleConfig(**PHASE_BASE), dict(parse_axis(a) for a in PHASE_AXES))
        t0 = time.perf_counter()
        ds = run_phase(spec, progress=False)
        summary = agreement(ds)
        ok &= summary["agreement_in_regime"] >= 0.95
        print(f"   {summary['cells']} cells in {time.perf_counter() - t0:.1f} s: agreement "
              f"{100 * summary['agreement']:.1f}% overall, {100 * summary['agreement_in_regime']:.1f}% of "
              f"{summary['cells_in_regime']} cells in the small-logit regime  "
              f"{'PASS' if summary['agreement_in_regime'] >= 0.95 else 'FAIL'}")
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
