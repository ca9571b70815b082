"""Benchmark: vectorized (vmap) ensemble of R small MLPs vs a Python loop over the same R models.

Setup: R MLPs 40-100-100-10 (ReLU, ``linsim.deep.build_model("mlp", (1, 40), 10)``), each on
its own batch of 100 MNIST-1D-shaped random inputs, cross-entropy, SGD with momentum 0.9.
One *step* updates all R models.  ``loop`` is plain modules + autograd + ``torch.optim``
(``linsim.deep.ensemble.LoopEnsemble``), ``vmap`` is ``torch.func`` over stacked parameters
with the functional optimizer (``VmapEnsemble``); both do exactly the same arithmetic (the
tests check they agree to round-off).  Each timing is the best of ``--repeat`` rounds of
``--steps`` steps after a warm-up, with the engines interleaved so machine load affects both.

Targets: CPU, R = 32: vmap >= 1.5x the loop's steps/s; CUDA (when present), R = 128: >= 10x.
Other sizes are reported.  ``--compile`` adds ``torch.compile`` on the vmapped gradient.
``--threads`` sets torch's CPU threads for the run (default 1; 0 keeps torch's setting).

Usage: python benchmarks/bench_deep.py [--quick] [--compile] [--repeat 5] [--steps 30]
  --quick   R = 8 and 32 only, fewer steps (targets still printed)
"""

from __future__ import annotations

import argparse
import time

import torch

from linsim.deep.ensemble import LoopEnsemble, VmapEnsemble
from linsim.deep.losses import cross_entropy
from linsim.deep.models import build_model
from linsim.deep.optim import OPTIMIZERS, make_hyper
from linsim.deep.train import torch_threads

TARGETS = {("cpu", 32): 1.5, ("cuda", 128): 10.0}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make(kind, R, device, compile_):
    models = [build_model("mlp", (1, 40), 10, seed=r, device=device) for r in range(R)]
    hyper = make_hyper(R, lr=0.05, momentum=0.9, device=device)
    if kind == "loop":
        return LoopEnsemble(models, OPTIMIZERS["sgd"], hyper, cross_entropy)
    return VmapEnsemble(models, OPTIMIZERS["sgd"], hyper, cross_entropy, compile=compile_)


def _time(ens, x, y, steps, device):
    _sync(device)
    t0 = time.perf_counter()
    for s in range(steps):
        ens.train_step(x[s % x.shape[0]], y[s % y.shape[0]])
    _sync(device)
    return (time.perf_counter() - t0) / steps


def bench_device(device, Rs, steps, repeat, compile_, B=100):
    kinds = ["loop", "vmap"] + (["vmap+compile"] if compile_ else [])
    rows = []
    for R in Rs:
        g = torch.Generator().manual_seed(R)
        x = torch.randn(4, R, B, 1, 40, generator=g).to(device)
        y = torch.randint(0, 10, (4, R, B), generator=g).to(device)
        ens = {k: _make("loop" if k == "loop" else "vmap", R, device, k == "vmap+compile")
               for k in kinds}
        for k in kinds:  # warm-up (and compilation)
            _time(ens[k], x, y, 10 if k == "vmap+compile" else 3, device)
        best = {k: float("inf") for k in kinds}
        for _ in range(repeat):
            for k in kinds:
                best[k] = min(best[k], _time(ens[k], x, y, steps, device))
        speedup = {k: best["loop"] / best[k] for k in kinds}
        target = TARGETS.get((device.type, R))
        ok = None if target is None else speedup["vmap"] >= target
        rows.append((R, best, speedup, target, ok))
        line = "  ".join(f"{k} {1e3 * best[k]:7.2f} ms ({1 / best[k]:7.1f} steps/s)" for k in kinds)
        verdict = "" if target is None else f"  target vmap >= {target:g}x: {'PASS' if ok else 'FAIL'}"
        extra = "".join(f", {k} {speedup[k]:.2f}x" for k in kinds[2:])
        print(f"[{device.type}] R={R:4d}  {line}  speed-up vmap {speedup['vmap']:.2f}x{extra}{verdict}",
              flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="R = 8, 32 only, fewer steps")
    ap.add_argument("--compile", action="store_true", help="also time vmap + torch.compile")
    ap.add_argument("--repeat", type=int, default=None, help="timing rounds (best is reported)")
    ap.add_argument("--steps", type=int, default=None, help="steps per timing round")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's setting)")
    ap.add_argument("--cpu-only", action="store_true", help="skip CUDA even when present")
    args = ap.parse_args(argv)
    Rs = [8, 32] if args.quick else [8, 32, 128]
    steps = args.steps or (10 if args.quick else 30)
    repeat = args.repeat or (2 if args.quick else 5)
    failed = False
    with torch_threads(args.threads if args.threads > 0 else None):
        print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
              f"MLP 40-100-100-10, batch 100 per model, SGD momentum 0.9")
        for row in bench_device(torch.device("cpu"), Rs, steps, repeat, args.compile):
            failed |= row[4] is False
        if torch.cuda.is_available() and not args.cpu_only:
            for row in bench_device(torch.device("cuda"), [8, 32, 128], steps * 3, repeat, args.compile):
                failed |= row[4] is False
        else:
            print("[cuda] not available: CUDA target (R=128, >= 10x) not measured")
    print("RESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
