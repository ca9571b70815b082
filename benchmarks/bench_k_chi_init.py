"""Accuracy of ``theory.k_chi_init`` against independent draws of the ρ = 0 ensemble.

For every cell (d = 30, λ_k = exp(-c k), ηλ₁ = 1, step 0 plus 10 log-spaced checkpoints to
T = 10³, c in {0.1, 0.5, 1, 2}, C in {2, 3, 5, 10}, R in {4, 16, 64}) the reference is the k_χ
(χ = 0.9) of the mean explained-stress curve of ``n`` independent numpy draws of the initialized
points (200 draws, 60 at R = 64; seeds 790000 + cell), built directly from Gaussian weights in
the class-contrast basis by ``bench_analytic_curve.draw_curves`` (not with the ``theory``
sampler). Printed per cell: the reference,
the draws' median k_χ, ``k_chi_init`` and the k_χ of the deterministic ρ = 0 spectrum of
derivations §4.4 (what ``k_chi_init`` returned before session 5); then the counts.

``python benchmarks/bench_k_chi_init.py [--quick]`` (``--quick``: 2 cells, 20 draws).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from threadpoolctl import threadpool_limits

import theory
from bench_analytic_curve import STEPS, draw_curves
from theory.asymptotics import _init_cloud_spectrum, _setup

SEED_BASE = 790_000
CHI = 0.9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 cells, 20 draws")
    args = ap.parse_args(argv)
    cells = list(itertools.product((0.1, 0.5, 1.0, 2.0), (2, 3, 5, 10), (4, 16, 64)))
    if args.quick:
        cells = [(1.0, 3, 4), (2.0, 5, 4)]
    rows = []
    with threadpool_limits(1):
        for i, (c, C, R) in enumerate(cells):
            n = 20 if args.quick else (200 if R < 64 else 60)
            lam, cur = draw_curves(c, C, R, 0.0, n, SEED_BASE + i)
            ref = int(np.argmax(cur.mean(axis=0) >= CHI)) + 1
            median = float(np.median(np.argmax(cur >= CHI, axis=1) + 1))
            new = theory.k_chi_init(lam, C, 1.0, STEPS, R, chi=CHI)
            lam_, C_, _, _, R_, F = _setup(lam, C, 0.0, 1.0, 1.0, STEPS, R, "gd", "squared")
            old = theory.k_chi(_init_cloud_spectrum(lam_, C_, 1.0, R_, F), CHI)
            rows.append((ref, median, new, old))
            print(f"c={c:<4} C={C:<3} R={R:<3} draws: k of the mean curve {ref:3d}, median k {median:5.1f}  "
                  f"k_chi_init {new:4.0f}  section-4.4 spectrum {old:4.0f}", flush=True)
    r = np.array(rows, dtype=float)
    for j, name in ((2, "k_chi_init"), (3, "section-4.4 spectrum")):
        print(f"{name}: equal to the k of the mean curve in {int(np.sum(r[:, j] == r[:, 0]))}/{len(r)}, "
              f"within 1 in {int(np.sum(np.abs(r[:, j] - r[:, 0]) <= 1))}/{len(r)}, within 1 of the median "
              f"in {int(np.sum(np.abs(r[:, j] - r[:, 1]) <= 1))}/{len(r)}; ratio to the reference "
              f"{np.min(r[:, j] / r[:, 0]):.2f}-{np.max(r[:, j] / r[:, 0]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
