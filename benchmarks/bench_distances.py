"""Benchmark of the Bhattacharyya distance kernel ``linsim.inpca.bhattacharyya`` (self case).

Targets, on a 2-core CPU:

1. M=2000 models, n=1000 samples, C=10 classes (float64 log-probabilities): at most 2.5 s wall
   (best of ``--repeat`` runs after a small warm-up call), max abs error <= 1e-10 against a
   straightforward float64 computation ``-mean_i log sum_c sqrt(p_ic q_ic)`` on a random subset
   of pairs.  Throughput is reported in distinct pairs M(M-1)/2 times samples per second.
2. M=5000, n=5000, C=10: peak memory under 1.5 GB (1536 MiB) beyond the input and the output.
3. Where CUDA is available: the same call with ``device="cuda"``, its speed-up over the CPU
   and its agreement with the CPU result.

Memory method (CPU), in a fresh interpreter separate from the timed runs (a process that has
already run the kernel serves it from recycled, already-resident heap pages, which would hide
the peak): glibc is told (``mallopt``) to map every allocation of 64 KiB or more separately and
unmap it when freed, so resident memory follows live memory.  Then the
process's resident-set high-water mark ``VmHWM`` is reset through
``/proc/self/clear_refs`` just before the call; the extra peak is ``VmHWM`` after the call minus
``VmRSS`` just before it (the input is already resident then) minus the output's bytes.  A thread
also samples ``VmRSS`` every 5 ms as a cross-check where ``clear_refs`` is unavailable, and
``tracemalloc`` reports numpy's own peak allocations (raw; torch's CPU allocations are
invisible to ``tracemalloc``, hence the RSS measurements).  On CUDA: ``torch.cuda.max_memory_allocated``.

The plain approach, for comparison: a batched matrix product per sample giving the full
``(n, M, M)`` float32 coefficient tensor, then one logarithm per entry and a sum over samples.
At M=2000, n=1000 that tensor is 16 GB, so it is timed at ``--plain-M`` models on the same n
and extrapolated by ``(M / plain_M)**2`` (its cost is proportional to M^2 n); its float32
error is reported too.

Usage: python benchmarks/bench_distances.py [--quick] [--skip-big] [--repeat 3]
  --quick     M=500, n=400 and no M=5000 run (a smoke test; targets are not judged)
  --skip-big  skip the M=n=5000 memory run (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import torch

from linsim.inpca import bhattacharyya

TIME_TARGET_S = 2.5
ERR_TARGET = 1e-10
MEM_TARGET_MIB = 1536.0


def verdict(ok) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


# ----------------------------------------------------------------------------- memory probes

def _malloc_returns_memory() -> bool:
    """Make glibc serve every allocation of 64 KiB or more with its own mmap, returned to the OS
    when freed, so that RSS tracks the live memory instead of a recycled heap (otherwise a
    second call reuses resident pages freed by the first and its peak looks near zero)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 1 << 16)) and bool(libc.mallopt(-1, 1 << 16))  # MMAP, TRIM thresholds
    except (OSError, AttributeError):
        return False


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples VmRSS every ``period`` seconds in a background thread; keeps the maximum."""

    def __init__(self, period=0.005):
        self.period = period
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))
            time.sleep(self.period)

    def __enter__(self):
        self.peak_kib = _status_kib("VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))


def measure(logp, trace=False, **kw):
    """Run bhattacharyya once; return (D, wall s, process CPU s, memory dict in MiB).

    ``trace`` turns tracemalloc on (it slows Python-level allocations a little, so the timed
    runs leave it off)."""
    if trace:
        tracemalloc.start()
    has_hwm = _reset_hwm()
    base_kib = _status_kib("VmRSS")
    with RssSampler() as sampler:
        t0, c0 = time.perf_counter(), time.process_time()
        D = bhattacharyya(logp, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    np_peak = float("nan")
    if trace:
        _, np_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    out_mib = D.nbytes / 2**20
    mem = {
        "hwm": (_status_kib("VmHWM") - base_kib) / 1024 - out_mib if has_hwm else float("nan"),
        "sampled": (sampler.peak_kib - base_kib) / 1024 - out_mib,
        "tracemalloc": np_peak / 2**20,
    }
    return D, wall, cpu, mem


# ----------------------------------------------------------------------------- data and references

def random_log_probs(M, n, C, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(3.0 * torch.randn(M, n, C, generator=g, dtype=torch.float64), -1).to(dtype)


def plain_pairs(logp: np.ndarray, a: np.ndarray, b: np.ndarray, batch=100) -> np.ndarray:
    """Straightforward float64 reference for the pairs (a[j], b[j]): -mean_i log sum_c sqrt(p q)."""
    out = np.empty(len(a))
    for j0 in range(0, len(a), batch):
        pa, pb = np.exp(logp[a[j0:j0 + batch]]), np.exp(logp[b[j0:j0 + batch]])
        bc = np.sum(np.sqrt(pa * pb), axis=-1)
        out[j0:j0 + batch] = -np.mean(np.log(bc), axis=-1)
    out[a == b] = 0.0
    return out


def plain_float32(logp: torch.Tensor, slab=50) -> tuple[np.ndarray, float]:
    """The plain approach: bmm per sample to the full (n, M, M) float32 tensor, log, sum."""
    M, n, _ = logp.shape
    X = torch.exp(0.5 * logp.float()).transpose(0, 1).contiguous()  # (n, M, C)
    t0 = time.perf_counter()
    S = torch.bmm(X, X.transpose(1, 2))  # (n, M, M) float32
    D = -torch.log(S).sum(0) / n
    wall = time.perf_counter() - t0
    del S
    D.fill_diagonal_(0.0)
    return D.double().numpy(), wall


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, no M=5000 run, targets not judged")
    ap.add_argument("--skip-big", action="store_true", help="skip the M=n=5000 memory run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of the main size (best is reported)")
    ap.add_argument("--plain-M", type=int, default=500, help="models for the plain (n, M, M) comparison")
    ap.add_argument("--_memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._memory_child:
        return _memory_child(args._memory_child)
    quick = args.quick
    M, n, C = (500, 400, 10) if quick else (2000, 1000, 10)
    judge = None if quick else True

    print(f"# bench_distances: torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
          f"cpu cores {os.cpu_count()}, load average {tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"# {'quick run (targets not judged)' if quick else 'full run'}; "
          f"CUDA {'available: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'not available'}")

    # ---- 1. speed and accuracy
    logp = random_log_probs(M, n, C, seed=0)
    bhattacharyya(logp[:200, :64], device="cpu")  # warm-up: thread pools, allocator
    runs = [measure(logp, device="cpu") for _ in range(max(1, args.repeat))]
    walls = [r[1] for r in runs]
    D, wall, cpu, _ = min(runs, key=lambda r: r[1])
    mem = memory_run(M, n, C, seed=0)  # in a fresh process (see the module docstring)
    rng = np.random.default_rng(0)
    n_ref = 4000
    a, b = rng.integers(0, M, n_ref), rng.integers(0, M, n_ref)
    err = float(np.max(np.abs(D[a, b] - plain_pairs(logp.numpy(), a, b))))
    sym_err = float(np.max(np.abs(D - D.T)))
    pairs = M * (M - 1) / 2
    rate = pairs * n / wall
    ok_t = (wall <= TIME_TARGET_S) if judge else None
    ok_e = (err <= ERR_TARGET) if judge else None
    print(f"\n[1] bhattacharyya(logp) self case, M={M}, n={n}, C={C}, float64 input, device=cpu")
    print(f"    wall time (best of {len(walls)})      : {wall:8.3f} s   "
          f"(all runs: {', '.join(f'{w:.3f}' for w in walls)}; CPU time {cpu:.2f} s)"
          f"   target <= {TIME_TARGET_S} s   {verdict(ok_t)}")
    print(f"    throughput                     : {rate:10.3e} pairs x samples / s  "
          f"({pairs:.0f} distinct pairs x {n} samples)")
    print(f"    max abs error vs plain float64 : {err:10.2e}  ({n_ref} random pairs)"
          f"   target <= {ERR_TARGET:.0e}   {verdict(ok_e)}")
    print(f"    max |D - D^T|                  : {sym_err:10.2e}")
    print(f"    peak memory beyond input+output: {mem['hwm']:8.1f} MiB (VmHWM), {mem['sampled']:.1f} MiB "
          f"(sampled RSS), numpy's own peak {mem['tracemalloc']:.1f} MiB (tracemalloc), fresh process"
          f"{'' if mem['mmap_ok'] else ' (mallopt failed: RSS may undercount reused memory)'}; "
          f"input {logp.numel() * 8 / 2**20:.0f} MiB, output {D.nbytes / 2**20:.0f} MiB")

    D32, wall32, _, _ = measure(logp.float(), device="cpu")
    print(f"    float32 input                  : {wall32:8.3f} s; max |D(float32 in) - D(float64 in)| = "
          f"{np.max(np.abs(D32 - D)):.1e} (float32 resolution of the input)")

    # ---- plain (n, M, M) float32 approach, smaller and extrapolated
    Mp = min(args.plain_M, M)
    Dp, tp = plain_float32(logp[:Mp])
    errp = float(np.max(np.abs(Dp - D[:Mp, :Mp])))
    tp_full = tp * (M / Mp) ** 2
    print(f"    plain bmm + log over the full (n, M, M) float32 tensor: {tp:.3f} s at M={Mp}, n={n} "
          f"({n * Mp * Mp * 4 / 2**30:.2f} GiB tensor), extrapolated x(M/{Mp})^2 to M={M}: {tp_full:.2f} s "
          f"({n * M * M * 4 / 2**30:.1f} GiB tensor); its max abs error {errp:.1e}; "
          f"linsim is {tp_full / wall:.1f}x faster at the target size")

    # ---- CUDA
    print("\n[CUDA] same call with device=\"cuda\"")
    if torch.cuda.is_available():
        bhattacharyya(logp[:200, :64], device="cuda")
        torch.cuda.synchronize()
        tg = []
        for _ in range(max(1, args.repeat)):
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            Dg = bhattacharyya(logp, device="cuda")  # returns host numpy: includes the copy back
            torch.cuda.synchronize()
            tg.append(time.perf_counter() - t0)
        tgb = min(tg)
        gpu_peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"    device {torch.cuda.get_device_name()}: {tgb:.3f} s (best of {len(tg)}; input copied from "
              f"host inside the call), speed-up {wall / tgb:.1f}x over the CPU; "
              f"max |D_cuda - D_cpu| = {np.max(np.abs(Dg - D)):.1e}; peak GPU memory {gpu_peak:.0f} MiB")
    else:
        print("    skipped: torch.cuda.is_available() is False (the same code runs with device='cuda')")

    # ---- 2. memory at M = n = 5000
    print("\n[2] peak memory, M=5000, n=5000, C=10")
    if quick or args.skip_big:
        print("    skipped (--quick or --skip-big)")
        return
    del logp, D, D32, Dp
    Mb, nb = 5000, 5000
    memb = memory_run(Mb, nb, C, seed=1, check_pairs=300)
    ok_m = memb["hwm"] < MEM_TARGET_MIB if np.isfinite(memb["hwm"]) else memb["sampled"] < MEM_TARGET_MIB
    print(f"    input {memb['input_mib'] / 1024:.2f} GiB float64, output {memb['output_mib']:.0f} MiB; fresh process")
    print(f"    peak memory beyond input+output: {memb['hwm']:8.1f} MiB (VmHWM), {memb['sampled']:.1f} MiB "
          f"(sampled RSS), numpy's own peak {memb['tracemalloc']:.1f} MiB (tracemalloc)"
          f"   target < {MEM_TARGET_MIB:.0f} MiB   {verdict(ok_m)}")
    print(f"    wall time {memb['wall']:.1f} s (CPU {memb['cpu']:.1f} s); "
          f"{Mb * (Mb - 1) / 2 * nb / memb['wall']:.3e} pairs x samples / s; "
          f"max abs error vs plain float64 on 300 random pairs {memb['err']:.1e}")


def memory_run(M, n, C, seed, check_pairs=0) -> dict:
    """Measure one call in a fresh interpreter (see the module docstring); returns its numbers."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_memory-child", f"{M},{n},{C},{seed},{check_pairs}"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _memory_child(spec: str) -> None:
    M, n, C, seed, check_pairs = (int(v) for v in spec.split(","))
    mmap_ok = _malloc_returns_memory()  # before any large allocation
    logp = random_log_probs(M, n, C, seed=seed)
    bhattacharyya(logp[:200, :64], device="cpu")  # warm-up
    D, wall, cpu, mem = measure(logp, trace=True, device="cpu")
    mem.update(wall=wall, cpu=cpu, mmap_ok=mmap_ok, input_mib=logp.numel() * 8 / 2**20,
               output_mib=D.nbytes / 2**20, err=float("nan"))
    if check_pairs:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, M, check_pairs), rng.integers(0, M, check_pairs)
        mem["err"] = float(np.max(np.abs(D[a, b] - plain_pairs(logp.numpy(), a, b, batch=20))))
    print(json.dumps(mem))


if __name__ == "__main__":
    main()
