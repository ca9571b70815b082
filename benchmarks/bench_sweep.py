"""Benchmark: an in-process sweep (``run_phase(n_workers=1)``) against the same sweep in a
process started with ``OMP_NUM_THREADS=1`` (and the other thread variables).

Before linsim limited threads in the calling process, the in-process path ran every small
BLAS/torch call on all cores and was up to 30x slower on a loaded machine (a 16-cell sweep:
63-69 s against 2.0-2.6 s with ``OMP_NUM_THREADS=1``).  Target: the in-process run takes at
most 1.2x the single-threaded run, and both give identical results (a hash of every data
variable but ``seconds``).

Each measurement runs in a fresh subprocess (so the environment variables act from the
start); the rounds are interleaved and the best time of each kind is kept.  Only the sweep is
timed (not the imports).

Usage::

    python benchmarks/bench_sweep.py            # 16 cells, 3 rounds
    python benchmarks/bench_sweep.py --quick    # 4 small cells, 1 round
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from linsim.parallel import THREAD_VARIABLES  # the variables worker processes are started with

TARGET_RATIO = 1.2


def _child(quick: bool) -> None:
    import hashlib
    import time

    import numpy as np

    from linsim.ensemble import EnsembleConfig
    from linsim.sweep import PhaseSpec, run_phase

    if quick:
        base = EnsembleConfig(init_scale=0.01, n_runs=6, n_checkpoints=8, dim=20, n_samples=80)
        axes = {"c": np.linspace(0, 2, 2), "ratio": np.geomspace(0.1, 100, 2)}
    else:  # the phase command's default ensemble on a 4 x 4 grid
        base = EnsembleConfig(init_scale=0.01, n_runs=12, n_checkpoints=16, dim=40, n_samples=160)
        axes = {"c": np.linspace(0, 2, 4), "ratio": np.geomspace(0.1, 100, 4)}
    spec = PhaseSpec(base, axes)
    # warm-up (lazy imports, first-call costs), not timed
    run_phase(PhaseSpec(base, {"c": [0.5]}), n_workers=1, progress=False)
    t0 = time.perf_counter()
    ds = run_phase(spec, n_workers=1, progress=False)
    seconds = time.perf_counter() - t0
    h = hashlib.sha256()
    for name in sorted(ds.data_vars):
        if name != "seconds":
            h.update(name.encode())
            h.update(np.ascontiguousarray(ds[name].values).tobytes())
    print(json.dumps({"seconds": seconds, "cells": spec.n_cells, "hash": h.hexdigest()}))


def _measure(single_threaded: bool, quick: bool) -> dict:
    env = dict(os.environ)
    for var in THREAD_VARIABLES:
        if single_threaded:
            env[var] = "1"
        else:
            env.pop(var, None)
    cmd = [sys.executable, os.path.abspath(__file__), "--child"] + (["--quick"] if quick else [])
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 small cells, one round")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.quick)
        return 0
    rounds = args.rounds or (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be >= 1")
    inproc, single = [], []
    for _ in range(rounds):
        inproc.append(_measure(False, args.quick))
        single.append(_measure(True, args.quick))
    t_in = min(r["seconds"] for r in inproc)
    t_1 = min(r["seconds"] for r in single)
    ratio = t_in / t_1
    same = len({r["hash"] for r in inproc + single}) == 1
    cells = inproc[0]["cells"]
    print(f"sweep of {cells} cells, best of {rounds}:")
    runs_in = ", ".join(f"{r['seconds']:.2f}" for r in inproc)
    runs_1 = ", ".join(f"{r['seconds']:.2f}" for r in single)
    print(f"  --workers 1 in-process (caller's thread settings): {t_in:.2f} s  (runs: {runs_in})")
    print(f"  same sweep with OMP_NUM_THREADS=1 etc.:            {t_1:.2f} s  (runs: {runs_1})")
    ok_ratio = ratio <= TARGET_RATIO
    print(f"  ratio {ratio:.2f} (target <= {TARGET_RATIO}): {'PASS' if ok_ratio else 'FAIL'}")
    print(f"  identical results: {'PASS' if same else 'FAIL'}")
    return 0 if ok_ratio and same else 1


if __name__ == "__main__":
    sys.exit(main())
