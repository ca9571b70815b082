"""Benchmark of the Bhattacharyya distance kernels ``linsim.inpca.bhattacharyya`` (self case).

Targets (issue 10), on the 2-core CPU, measured as ratios within one run because the machine is
shared and noisy:

1. M=2000 models, n=1000 samples, C=10 classes (float64 log-probabilities), default kernel
   (``kernel="auto"``: the fused numba kernel on CPU for C <= 32):
   * throughput >= 60% of the DGEMM peak measured in the same run (the best of numpy's and
     torch's float64 matrix products, 4096^3, all threads, the environment's BLAS settings).
     Flops are counted as 2 C per (distinct pair, sample): M(M-1)/2 * n * 2C, the
     multiply-adds of the coefficients;
   * >= 25x faster than the plain float32 batched-product approach (below);
   * max abs error <= 1e-13 against a straightforward float64 computation
     ``-mean_i log sum_c sqrt(p_ic q_ic)`` on a random subset of pairs.
   The GEMM kernel (``kernel="gemm"``, the CUDA path) is timed beside it.
2. M=5000, n=5000, C=10: peak memory under 1.5 GB (1536 MiB) beyond the input and the output.
3. Where CUDA is available: the GEMM kernel with ``device="cuda"`` (float64 and float32 inputs,
   float64 accumulation), its agreement with the CPU result, and its ratio to the plain float32
   approach on the same GPU (target >= 10x).

Rounds: the machine is shared, so every ratio is measured within one round (DGEMM peak, then
the fused kernel and the plain approach interleaved, ``--repeat`` times each, best of each);
``--rounds 3`` repeats the round and prints each one's verdicts and a summary line (the
targets are judged on every round).

BLAS: the environment may set ``OPENBLAS_CORETYPE`` (an older kernel set, slower on this CPU);
the script prints the OpenBLAS core type in use (threadpoolctl) and judges against that DGEMM.
``--native-blas`` adds one extra line: numpy's DGEMM in a child process with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from *its* environment only (OpenBLAS'
own choice for the CPU, e.g. its AVX-512 kernels), and the fused kernel's fraction of that.

Memory method (CPU), in a fresh interpreter separate from the timed runs (a process that has
already run the kernel serves it from recycled, already-resident heap pages, which would hide
the peak): glibc is told (``mallopt``) to map every allocation of 64 KiB or more separately and
unmap it when freed, so resident memory follows live memory.  Then the
process's resident-set high-water mark ``VmHWM`` is reset through
``/proc/self/clear_refs`` just before the call; the extra peak is ``VmHWM`` after the call minus
``VmRSS`` just before it (the input is already resident then) minus the output's bytes.  A thread
also samples ``VmRSS`` every 5 ms as a cross-check where ``clear_refs`` is unavailable, and
``tracemalloc`` reports numpy's own peak allocations.  On CUDA: ``torch.cuda.max_memory_allocated``.

The plain approach, for comparison: a batched matrix product per sample giving the full
``(n, M, M)`` float32 coefficient tensor, then one logarithm per entry and a sum over samples.
At M=2000, n=1000 that tensor is 16 GB, so it is timed at ``--plain-M`` models on the same n
and extrapolated by ``(M / plain_M)**2`` (its cost is proportional to M^2 n); its float32
error is reported too.

Usage: python benchmarks/bench_distances.py [--quick] [--skip-big] [--repeat 5] [--rounds 3] [--native-blas]
  --quick        M=500, n=400 and no M=5000 run (a smoke test; targets not judged)
  --skip-big     skip the M=n=5000 memory run (about a minute on 2 cores)
  --rounds N     measure the ratios N times (each round: DGEMM, fused kernel, plain approach)
  --native-blas  one extra DGEMM line with OpenBLAS' own kernel choice (child process)
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

PEAK_FRACTION_TARGET = 0.60
PLAIN_RATIO_TARGET = 25.0
GPU_PLAIN_RATIO_TARGET = 10.0
ERR_TARGET = 1e-13
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


def dgemm_peak(size=4096, repeat=3) -> tuple[float, str, dict]:
    """Best float64 matrix-product rate (flop/s) of numpy and torch on all threads, which one,
    and each one's best rate."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size))
    B = rng.standard_normal((size, size))
    rates = {}
    for name, mm in (("numpy", lambda: A @ B), ("torch", lambda: torch.from_numpy(A) @ torch.from_numpy(B))):
        mm()
        for _ in range(repeat):
            t0 = time.perf_counter()
            mm()
            rates[name] = max(rates.get(name, 0.0), 2.0 * size ** 3 / (time.perf_counter() - t0))
    who = max(rates, key=rates.get)
    return rates[who], who, rates


def native_dgemm_peak(size=4096) -> float:
    """numpy's DGEMM rate in a child process without the OPENBLAS_* kernel overrides."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    code = ("import time, numpy as np; r = np.random.default_rng(0); A = r.standard_normal((%d, %d)); "
            "B = r.standard_normal(A.shape); A @ B; best = 0.0\n"
            "for _ in range(3):\n t0 = time.perf_counter(); A @ B; best = max(best, 2.0 * %d ** 3 / "
            "(time.perf_counter() - t0))\nprint(best)") % (size, size, size)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(res.stdout.strip())


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        parts = [f"{i.get('internal_api')} {i.get('version')} core={i.get('architecture')} "
                 f"threads={i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"]
        return "; ".join(parts)
    except ImportError:  # pragma: no cover
        return "threadpoolctl not installed"


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
    ap.add_argument("--rounds", type=int, default=1, help="rounds of the ratio measurements (all reported)")
    ap.add_argument("--native-blas", action="store_true",
                    help="extra line: DGEMM with OpenBLAS' own kernels (child process, OPENBLAS_* unset)")
    ap.add_argument("--_memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._memory_child:
        return _memory_child(args._memory_child)
    quick = args.quick
    M, n, C = (500, 400, 10) if quick else (2000, 1000, 10)
    judge = None if quick else True

    print(f"# bench_distances: torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
          f"cpu cores {os.cpu_count()}, load average {tuple(round(x, 2) for x in os.getloadavg())}")
    print(f"# BLAS: {blas_info()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"# {'quick run (targets not judged)' if quick else 'full run'}; "
          f"CUDA {'available: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'not available'}")

    # ---- 1. speed and accuracy, as ratios measured within each round
    logp = random_log_probs(M, n, C, seed=0)
    pairs = M * (M - 1) / 2
    flops = pairs * n * 2 * C
    for kernel in ("fused", "gemm"):
        bhattacharyya(logp[:200, :64], device="cpu", kernel=kernel)  # warm-up: compilation, pools
    rng = np.random.default_rng(0)
    n_ref = 4000
    a, b = rng.integers(0, M, n_ref), rng.integers(0, M, n_ref)
    ref = plain_pairs(logp.numpy(), a, b)
    Mp = min(args.plain_M, M)
    print(f"\n[1] bhattacharyya(logp) self case, M={M}, n={n}, C={C}, float64 input, device=cpu; "
          f"{max(1, args.rounds)} round(s), each: DGEMM peak, then fused kernel and plain float32 approach "
          f"interleaved (best of {max(1, args.repeat)} each)")
    summary = []
    for rnd in range(max(1, args.rounds)):
        peak, peak_who, rates = dgemm_peak(2048 if quick else 4096)
        # interleaved, the same number of times (fused, plain, fused, plain, ...), best of each:
        # a burst of load on the shared machine then hits both sides alike
        runs, plains = [], []
        for _ in range(max(1, args.repeat)):
            runs.append(measure(logp, device="cpu", kernel="fused"))
            plains.append(plain_float32(logp[:Mp]))
        D, wall, cpu, _ = min(runs, key=lambda r: r[1])
        walls = [r[1] for r in runs]
        Dp, tp = min(plains, key=lambda r: r[1])
        tps = [r[1] for r in plains]
        del plains
        err = float(np.max(np.abs(D[a, b] - ref)))
        frac = flops / wall / peak
        tp_full = tp * (M / Mp) ** 2
        ratio = tp_full / wall
        errp = float(np.max(np.abs(Dp - D[:Mp, :Mp])))
        ok_f = (frac >= PEAK_FRACTION_TARGET) if judge else None
        ok_r = (ratio >= PLAIN_RATIO_TARGET) if judge else None
        ok_e = (err <= ERR_TARGET) if judge else None
        summary.append((frac, ratio, err, ok_f, ok_r, ok_e))
        print(f"  round {rnd + 1}: load average {tuple(round(x, 2) for x in os.getloadavg())}")
        print(f"    DGEMM peak ({peak_who}, all threads): {peak / 1e9:8.1f} GF/s "
              f"(numpy {rates['numpy'] / 1e9:.1f}, torch {rates['torch'] / 1e9:.1f})")
        print(f"    fused kernel (kernel='auto' picks it): best of {len(walls)} {wall:.3f} s "
              f"(runs: {', '.join(f'{w:.3f}' for w in walls)}; CPU {cpu:.2f} s) = {flops / wall / 1e9:.1f} GF/s "
              f"= {100 * frac:.0f}% of the DGEMM peak   target >= {100 * PEAK_FRACTION_TARGET:.0f}%   {verdict(ok_f)}")
        print(f"    plain bmm + log over the full (n, M, M) float32 tensor: best of {len(tps)} {tp:.3f} s at M={Mp} "
              f"(runs: {', '.join(f'{t:.3f}' for t in tps)}) "
              f"({n * Mp * Mp * 4 / 2**30:.2f} GiB tensor), x(M/{Mp})^2 -> {tp_full:.2f} s at M={M}; its max abs "
              f"error {errp:.1e}; fused is {ratio:.1f}x faster   target >= {PLAIN_RATIO_TARGET:.0f}x   {verdict(ok_r)}")
        print(f"    max abs error vs plain float64 : fused {err:.2e} ({n_ref} random pairs)"
              f"   target <= {ERR_TARGET:.0e}   {verdict(ok_e)}")
    if len(summary) > 1:
        fr, ra, er = (", ".join(fmt.format(r[k]) for r in summary) for k, fmt in
                      ((0, "{:.0%}"), (1, "{:.1f}x"), (2, "{:.1e}")))
        print(f"  summary over {len(summary)} rounds: fraction of DGEMM peak {fr}; x plain float32 {ra}; "
              f"max error {er}; verdicts "
              + ("; ".join(" ".join(verdict(v) for v in r[3:]) for r in summary)))
    if args.native_blas:
        nat = native_dgemm_peak(2048 if quick else 4096)
        print(f"    extra: numpy DGEMM with OpenBLAS' own kernels (OPENBLAS_CORETYPE/L2_SIZE unset in a child "
              f"process): {nat / 1e9:.1f} GF/s; the fused kernel's best above is {flops / wall / nat:.0%} of it")
    sym_err = float(np.max(np.abs(D - D.T)))
    gruns = [measure(logp, device="cpu", kernel="gemm") for _ in range(2)]
    g = min(gruns, key=lambda r: r[1])
    err_gemm = float(np.max(np.abs(g[0][a, b] - ref)))
    print(f"    gemm kernel (the CUDA path) : best of {len(gruns)} {g[1]:.3f} s = {flops / g[1] / 1e9:.1f} GF/s "
          f"= {100 * flops / g[1] / peak:.0f}% of the last peak; fused is {g[1] / wall:.2f}x faster; "
          f"max |fused - gemm| = {np.max(np.abs(g[0] - D)):.1e}; gemm's max error {err_gemm:.2e}")
    print(f"    max |D - D^T|                  : {sym_err:10.2e}")
    mem = memory_run(M, n, C, seed=0)  # in a fresh process (see the module docstring)
    print(f"    peak memory beyond input+output: {mem['hwm']:8.1f} MiB (VmHWM), {mem['sampled']:.1f} MiB "
          f"(sampled RSS), numpy's own peak {mem['tracemalloc']:.1f} MiB (tracemalloc), fresh process"
          f"{'' if mem['mmap_ok'] else ' (mallopt failed: RSS may undercount reused memory)'}; "
          f"input {logp.numel() * 8 / 2**20:.0f} MiB, output {D.nbytes / 2**20:.0f} MiB")
    D32, wall32, _, _ = measure(logp.float(), device="cpu")
    print(f"    float32 input                  : {wall32:8.3f} s; max |D(float32 in) - D(float64 in)| = "
          f"{np.max(np.abs(D32 - D)):.1e} (float32 resolution of the input; accumulation is float64)")

    # ---- CUDA
    print("\n[CUDA] gemm kernel with device=\"cuda\" (float64 accumulation)")
    if torch.cuda.is_available():
        lg = logp.cuda()
        bhattacharyya(lg[:200, :64], device="cuda")
        torch.cuda.synchronize()
        for label, inp in (("float64 input", lg), ("float32 input", lg.float())):
            tg = []
            for _ in range(max(1, args.repeat)):
                torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                Dg = bhattacharyya(inp, device="cuda")  # returns host numpy: includes the copy back
                torch.cuda.synchronize()
                tg.append(time.perf_counter() - t0)
            tgb = min(tg)
            ref = D if inp.dtype == torch.float64 else D32
            print(f"    {label}: {tgb:.3f} s (best of {len(tg)}) = {flops / tgb / 1e9:.1f} GF/s, {wall / tgb:.1f}x the "
                  f"CPU fused kernel; max |D_cuda - D_cpu| = {np.max(np.abs(Dg - ref)):.1e}; peak GPU memory "
                  f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
        Xg = torch.exp(0.5 * lg.float()).transpose(0, 1).contiguous()
        Mg = min(M, 1000)
        Xs = Xg[:, :Mg]
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        S = torch.bmm(Xs, Xs.transpose(1, 2))
        S = -torch.log_(S).sum(0) / n  # the plain distances (their value is not needed here)
        torch.cuda.synchronize()
        tpg = (time.perf_counter() - t0) * (M / Mg) ** 2
        del S
        tg64 = min(tg)
        ok_g = tpg / tg64 >= GPU_PLAIN_RATIO_TARGET
        print(f"    plain float32 bmm + log on the GPU: {tpg:.3f} s extrapolated to M={M}; linsim (float32 input) is "
              f"{tpg / tg64:.1f}x faster   target >= {GPU_PLAIN_RATIO_TARGET:.0f}x   {verdict(ok_g)}")
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
