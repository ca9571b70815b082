"""Benchmark of the exact path for the pairs the fused kernel flags (``linsim.inpca._exact``).

The bad case of the fused Bhattacharyya kernel: confident outputs that disagree on every
sample lose more than 900 bits of running product between two checks, so every pair is sent
to the exact recomputation.  Data: log-softmax of ``scale * N(0, 1)`` logits, M models, n
samples, C classes (default M = 600, n = 1000, C = 10, scale 100: about 45 nats a sample; the
closing note's scale 40, ~18 nats, is no longer flagged by the current kernel and is reported
as a count only).  Timed through the public ``linsim.inpca.bhattacharyya`` (self case, the
fused kernel), with the fused driver's ``_redo_exact`` pointed (inside this script only) at

* ``numba``: :func:`linsim.inpca._exact.redo_exact` (register-tiled products, exact rescaling);
* ``numpy``: :func:`linsim.inpca._exact.redo_exact_reference` (a log-sum-exp per pair, sample
  and class: the numpy path the fused module shipped with);

and, for scale, the *normal* fused path: the same shapes with moderate logits (``4 N(0, 1)``,
no pair flagged).  Target: the bad case through the numba path within 5x of the normal path.
Ratios are measured within one round (normal, numba, then numpy) because the machine is
shared; ``--rounds`` repeats the normal and numba runs and keeps the best of each.  Both wall
and process CPU time are printed (CPU time is what a loaded machine distorts least).

Usage: python benchmarks/bench_exact_path.py [--quick] [--M 600] [--n 1000] [--C 10]
       [--scale 100] [--rounds 3] [--workers W] [--skip-numpy] [--json]
  --quick       M = 120, n = 300 (a smoke test of the script; the target is not judged)
  --skip-numpy  leave out the numpy path (about 20-60 s at the default size)
  --callback-threads T  run the driver's logprobs callback (torch gather + logsumexp) of the
                numpy path inside linsim.parallel.thread_limit(T) (the numba path already calls
                it with one thread; default: the numpy path as it shipped)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.special import log_softmax


def logits(M, n, C, scale, seed):
    rng = np.random.default_rng(np.random.SeedSequence([seed, M, n, C]))
    return log_softmax(scale * rng.standard_normal((M, n, C)), axis=-1)


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--M", type=int, default=600)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--C", type=int, default=10)
    ap.add_argument("--scale", type=float, default=100.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--skip-numpy", action="store_true")
    ap.add_argument("--callback-threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.M, args.n, args.rounds = 120, 300, 1

    from linsim.inpca import _exact, _fused, bhattacharyya
    from linsim.parallel import thread_limit

    M, n, C = args.M, args.n, args.C
    bad = logits(M, n, C, args.scale, 0)
    normal = logits(M, n, C, 4.0, 1)
    kw = dict(kernel="fused", workers=args.workers, on_disjoint="ignore")
    original = _fused._redo_exact
    redone = []

    in_callback = []  # seconds spent in the driver's logprobs callback (not the exact path's own work)

    def use(fn):
        def spy(fa, fb, s0, s1, logprobs, *a, **k):
            redone.append(len(fa))

            def timed_logprobs(*la):
                t0 = time.perf_counter()
                if args.callback_threads is None or fn is _exact.redo_exact:
                    out = logprobs(*la)
                else:
                    with thread_limit(args.callback_threads):
                        out = logprobs(*la)
                in_callback.append(time.perf_counter() - t0)
                return out

            return fn(fa, fb, s0, s1, timed_logprobs, *a, **k)

        _fused._redo_exact = spy

    try:
        use(_exact.redo_exact)
        bhattacharyya(bad[:20, :50], **kw)  # compile / load the kernels
        bhattacharyya(normal[:20, :50], **kw)
        redone.clear()
        bhattacharyya(logits(min(M, 200), n, C, 40.0, 2), **kw)
        flagged_40 = sum(redone)
        t_normal, t_numba = [], []
        for _ in range(args.rounds):
            redone.clear()
            _, w, c = timed(lambda: bhattacharyya(normal, **kw))
            assert sum(redone) == 0, "moderate data sent pairs to the exact path"
            t_normal.append((w, c))
            redone.clear()
            in_callback.clear()
            D_numba, w, c = timed(lambda: bhattacharyya(bad, **kw))
            t_numba.append((w, c, sum(in_callback)))
        flagged = sum(redone)
        t_numpy = None
        if not args.skip_numpy:
            use(_exact.redo_exact_reference)
            in_callback.clear()
            D_numpy, w, c = timed(lambda: bhattacharyya(bad, **kw))
            t_numpy = (w, c, sum(in_callback))
            fin = np.isfinite(D_numpy)
            max_diff = float(np.max(np.abs(D_numba[fin] - D_numpy[fin])))
    finally:
        _fused._redo_exact = original

    best = lambda ts, k: min(t[k] for t in ts)  # noqa: E731
    res = {
        "M": M, "n": n, "C": C, "scale": args.scale, "rounds": args.rounds,
        "pairs": M * (M - 1) // 2, "pair_chunks_redone": flagged // max(1, args.rounds),
        "pairs_redone_at_scale_40": flagged_40, "scale_40_M": min(M, 200),
        "normal_wall_s": best(t_normal, 0), "normal_cpu_s": best(t_normal, 1),
        "numba_wall_s": best(t_numba, 0), "numba_cpu_s": best(t_numba, 1),
        "numba_callback_wall_s": min(t_numba)[2],
    }
    res["numba_over_normal_wall"] = res["numba_wall_s"] / res["normal_wall_s"]
    res["numba_over_normal_cpu"] = res["numba_cpu_s"] / res["normal_cpu_s"]
    if t_numpy is not None:
        res.update(numpy_wall_s=t_numpy[0], numpy_cpu_s=t_numpy[1], numpy_callback_wall_s=t_numpy[2],
                   numpy_over_numba_wall=t_numpy[0] / res["numba_wall_s"], max_abs_diff_numba_numpy=max_diff)
    if args.json:
        print(json.dumps(res, indent=1))
        return res
    print(f"bad case: M={M} n={n} C={C}, logits {args.scale:g} N(0,1); "
          f"{res['pair_chunks_redone']} (pair, sample chunk) calls for its {res['pairs']} pairs sent to the exact path "
          f"(logits 40 N(0,1), M={res['scale_40_M']}: {flagged_40})")
    print(f"normal fused path (logits 4 N(0,1)): {res['normal_wall_s']:.3f} s wall, {res['normal_cpu_s']:.3f} s CPU")
    print(f"bad case, numba exact path:          {res['numba_wall_s']:.3f} s wall, {res['numba_cpu_s']:.3f} s CPU"
          f"  ({res['numba_over_normal_wall']:.1f}x wall, {res['numba_over_normal_cpu']:.1f}x CPU of the normal path;"
          f" target <= 5x{'' if not args.quick else ', not judged with --quick'})")
    print(f"  of which in the driver's logprobs callback (gather + normalization, distances.py): "
          f"{res['numba_callback_wall_s']:.3f} s wall")
    if t_numpy is not None:
        print(f"bad case, numpy exact path:          {t_numpy[0]:.3f} s wall, {t_numpy[1]:.3f} s CPU"
              f"  ({res['numpy_over_numba_wall']:.0f}x the numba path; {t_numpy[2]:.3f} s in the callback);"
              f" max |D_numba - D_numpy| = {max_diff:.2e}")
    return res


if __name__ == "__main__":
    main()
