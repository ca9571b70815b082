"""Benchmark of the closed-form linear GD solver ``linsim.solvers.linear_gd``.

Targets, on a 2-core CPU, for d=500 features, n=2000 samples, C=10 outputs, R=32 runs and K=50
checkpoints (the output alone is R*K*n*C float64 = 244 MiB):

1. ``linear_gd(X, Y, W0, lr, steps)`` in at most 3 s (best of ``--repeat``), at horizons
   T = 10, 1e4 and 1e6 steps (K checkpoints log-spaced in [0, T]);
2. the time at T = 1e6 within 20% of the time at T = 10 (the cost must not depend on T);
3. report the speed-up over stepping GD explicitly (``linear_gd_explicit``) to T = 1e4.  The
   explicit loop costs the same per step at every step, so it is timed for ``--explicit-steps``
   steps (default 1000; 100 with --quick) and extrapolated linearly to 1e4; the two agree on
   the checkpoints both computed.
4. CUDA: ``linear_gd`` is numpy on the host and has no GPU code path, so nothing is timed there.

The horizons are timed in interleaved rounds (T=10, 1e4, 1e6, T=10, ...), so that a slow spell
of a shared machine affects all of them alike; the best round of each is reported.

Usage: python benchmarks/bench_solvers.py [--quick] [--repeat 7] [--explicit-steps 1000]
  --quick   d=200, n=500, R=8 (targets not judged), explicit GD timed for 100 steps
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from linsim.data import linear_teacher, make_inputs, spectrum
from linsim.ensemble import EnsembleConfig, checkpoint_steps, simulate
from linsim.solvers import linear_gd, linear_gd_explicit

TIME_TARGET_S = 3.0
RATIO_TARGET = 1.2


def verdict(ok) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def checkpoints(T: int, K: int) -> np.ndarray:
    """Exactly K integer checkpoints: 0, then log-spaced steps up to T (padded with T)."""
    steps = np.unique(np.rint(np.geomspace(1, T, K - 1))).astype(np.int64)
    return np.concatenate([[0], steps, np.full(K - 1 - steps.size, T, dtype=np.int64)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller problem, targets not judged")
    ap.add_argument("--repeat", type=int, default=7, help="interleaved timing rounds (best is reported)")
    ap.add_argument("--explicit-steps", type=int, default=None,
                    help="steps of explicit GD actually run (then extrapolated to 1e4)")
    ap.add_argument("--no-simulate", action="store_true", help="skip the informational simulate() timings")
    args = ap.parse_args(argv)
    quick = args.quick
    d, n, C, R, K = (200, 500, 10, 8, 50) if quick else (500, 2000, 10, 32, 50)
    judge = None if quick else True
    T_explicit = args.explicit_steps or (100 if quick else 1000)

    print(f"# bench_solvers: numpy {np.__version__}, cpu cores {os.cpu_count()}, "
          f"load average {tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"# {'quick run (targets not judged)' if quick else 'full run'}: d={d} n={n} C={C} R={R} K={K} "
          f"(output {R * K * n * C * 8 / 2**20:.0f} MiB float64)")
    X, _ = make_inputs(spectrum(d, "geometric", 0.02), n, "exact", seed=0)
    Y = X @ linear_teacher(C, d, 1.0, 1).T
    W0 = 0.1 * np.random.default_rng(2).standard_normal((R, C, d))
    lr = 1.0
    horizons = (10, 10**4, 10**6)
    grids = {T: checkpoints(T, K) for T in horizons}
    linear_gd(X, Y, W0, lr, grids[10])  # warm-up

    times = {T: [] for T in horizons}
    for _ in range(max(1, args.repeat)):
        for T in horizons:
            t0 = time.perf_counter()
            Z = linear_gd(X, Y, W0, lr, grids[T])
            times[T].append(time.perf_counter() - t0)
            del Z
    best = {T: min(v) for T, v in times.items()}

    print(f"\n[1] linear_gd closed form, K={K} checkpoints in [0, T] (best of {args.repeat} interleaved rounds)")
    for T in horizons:
        ok = best[T] <= TIME_TARGET_S if judge else None
        print(f"    T={T:>9,d}: {best[T]:7.3f} s   (median {np.median(times[T]):.3f} s)   "
              f"target <= {TIME_TARGET_S:.0f} s   {verdict(ok)}")
    ratio = best[10**6] / best[10]
    ok_r = abs(ratio - 1.0) <= RATIO_TARGET - 1.0 if judge else None
    print(f"\n[2] time(T=1e6) / time(T=10) = {ratio:.3f} (medians: "
          f"{np.median(times[10**6]) / np.median(times[10]):.3f})   target within 20% of 1   {verdict(ok_r)}")

    T = 10**4
    steps = grids[T]
    sub = steps[steps <= T_explicit]
    t0 = time.perf_counter()
    Ze = linear_gd_explicit(X, Y, W0, lr, sub)
    t_run = time.perf_counter() - t0
    explicit = t_run * T / T_explicit
    Zc = linear_gd(X, Y, W0, lr, sub)
    agree = float(np.max(np.abs(Ze - Zc)) / np.max(np.abs(Zc)))
    print(f"\n[3] explicit GD stepping to T=1e4: ran {T_explicit} steps in {t_run:.2f} s, extrapolated "
          f"linearly x{T // T_explicit} to {explicit:.1f} s; closed form {best[T]:.3f} s; "
          f"speed-up x{explicit / best[T]:.0f}")
    print(f"    explicit vs closed form on the {sub.size} checkpoints <= {T_explicit}: max relative "
          f"difference {agree:.1e}")

    print("\n[4] CUDA")
    if torch.cuda.is_available():
        print("    linear_gd is numpy on the host: no GPU code path to time")
    else:
        print("    skipped: torch.cuda.is_available() is False (and linear_gd has no GPU code path)")

    if not (quick or args.no_simulate):
        print("\n[info] linsim.ensemble.simulate with default EnsembleConfig fields:")
        cfg = EnsembleConfig()
        t0 = time.perf_counter()
        simulate(cfg)
        print(f"    linear/gd (R={cfg.n_runs}, K={len(checkpoint_steps(cfg.steps, cfg.n_checkpoints))}, "
              f"n={cfg.n_samples}): {time.perf_counter() - t0:.3f} s")
        for model, opt in (("linear", "flow"), ("linear", "sgd"), ("kernel", "gd"), ("softmax", "gd"),
                           ("softmax", "flow"), ("two_layer", "gd"), ("two_layer", "flow")):
            t0 = time.perf_counter()
            simulate(EnsembleConfig(model=model, optimizer=opt))
            print(f"    {model}/{opt}: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
