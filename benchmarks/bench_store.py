"""Benchmark of out-of-core distances and InPCA from a stored matrix (issue 10, item 2-3).

Targets, on the 2-core CPU:

1. ``bhattacharyya(logp, out="D.zarr")`` for M = 20000 models, n = 64 samples, C = 10 classes,
   the input a float32 memory map: peak resident memory of the process <= 1.5 GB (D alone is
   3.2 GB of float64).  Measured as ``ru_maxrss`` of a fresh child process that does only this.
2. ``InPCA(n_components=10).fit(store)`` (block Krylov, tile pairs of 1024^2 read from the store)
   <= 2x the time of the same fit on D held in memory (timed in another child after loading D;
   the load is not counted), with the same eigenvalues (max difference relative to |lambda_1|
   reported), and its own peak memory reported.
3. Resumability at this size: a run interrupted after a few tiles and resumed writes a store
   equal (bitwise) to the one-shot store; only the missing tiles are computed.

The models are softmax outputs of a smooth low-dimensional family (as in bench_inpca.py), so W
has a few dominant eigenvalues of both signs.  Everything is written under ``--workdir``
(default: a temporary folder, removed at the end; the full size needs ~3.3 GB of disk).

Usage: python benchmarks/bench_store.py [--quick] [--workdir DIR] [--fit-only]
  --quick     M = 3000 (targets not judged)
  --fit-only  only step 2, on the store a previous run left in --workdir (kept: give --workdir)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time

import numpy as np

import _child

RSS_TARGET_MIB = 1536.0
RATIO_TARGET = 2.0


def verdict(ok) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def make_input(path: str, M: int, n: int, C: int, seed: int = 0, block: int = 5000) -> None:
    """float32 log-probabilities (M, n, C) of a smooth 10-dimensional family, written as .npy."""
    rng = np.random.default_rng(seed)
    dim = 10
    A = 1.5 * rng.standard_normal((dim, n * C))
    B = rng.standard_normal((dim, n * C))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(M, n, C))
    for m0 in range(0, M, block):
        m1 = min(M, m0 + block)
        Z = np.random.default_rng([seed, m0]).standard_normal((m1 - m0, dim))
        z = (np.tanh(Z) @ A + 0.3 * np.sin(Z @ B)).reshape(m1 - m0, n, C)
        z -= z.max(-1, keepdims=True)
        out[m0:m1] = (z - np.log(np.exp(z).sum(-1, keepdims=True))).astype(np.float32)
    out.flush()
    del out


def child(task: str, workdir: str, arg: str) -> None:
    """Run one measured step in this (fresh) process and print a JSON line."""
    from linsim.inpca import InPCA, bhattacharyya

    res: dict = {}
    t0 = time.perf_counter()
    if task == "store":
        lp = np.load(os.path.join(workdir, "logp.npy"), mmap_mode="r")
        stop_after = int(arg)

        def on_tile(done, total):
            res["tiles_total"] = total
            res.setdefault("first_done", done)
            res["calls"] = res.get("calls", 0) + 1
            if stop_after and res["calls"] >= stop_after:
                raise KeyboardInterrupt

        try:
            bhattacharyya(lp, out=os.path.join(workdir, "D.zarr" if not stop_after else "R.zarr"), on_tile=on_tile)
            res["interrupted"] = False
        except KeyboardInterrupt:
            res["interrupted"] = True
    elif task == "resume":
        lp = np.load(os.path.join(workdir, "logp.npy"), mmap_mode="r")
        calls = []
        bhattacharyya(lp, out=os.path.join(workdir, "R.zarr"), on_tile=lambda d, t: calls.append(d))
        res["computed"] = len(calls)
    elif task == "fit_store":
        import zarr

        z = zarr.open_group(os.path.join(workdir, "D.zarr"), mode="r")["distance"]
        fit = InPCA(n_components=10).fit(z)
        res["eigenvalues"] = fit.eigenvalues_.tolist()
        res["vectors_head"] = fit.eigenvectors_[:1000].tolist()
        res["n_iter"] = fit.n_iter_
        res["solver"] = fit.solver_
    elif task == "fit_memory":
        import zarr

        D = np.asarray(zarr.open_group(os.path.join(workdir, "D.zarr"), mode="r")["distance"][...])
        t0 = time.perf_counter()  # loading is not counted
        fit = InPCA(n_components=10, solver="iterative").fit(D)
        res["eigenvalues"] = fit.eigenvalues_.tolist()
        res["vectors_head"] = fit.eigenvectors_[:1000].tolist()
        res["n_iter"] = fit.n_iter_
    elif task == "compare":
        import zarr

        a = zarr.open_group(os.path.join(workdir, "D.zarr"), mode="r")["distance"]
        b = zarr.open_group(os.path.join(workdir, "R.zarr"), mode="r")["distance"]
        M = a.shape[0]
        equal = True
        for r0 in range(0, M, 1024):
            equal &= bool(np.array_equal(a[r0:r0 + 1024], b[r0:r0 + 1024]))
        res["equal"] = equal
    res["wall"] = time.perf_counter() - t0
    res["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def fit_step(workdir: str, M: int, judge) -> None:
    """Step 2: the stored fit and the in-memory fit, each in a fresh child, and their ratio."""
    fs = run_child("fit_store", workdir)
    fm = run_child("fit_memory", workdir)
    lam_s, lam_m = np.array(fs["eigenvalues"]), np.array(fm["eigenvalues"])
    diff = float(np.max(np.abs(lam_s - lam_m)) / abs(lam_m[0]))
    vec = float(np.max(np.abs(np.array(fs["vectors_head"]) - np.array(fm["vectors_head"]))))
    ratio = fs["wall"] / fm["wall"]
    ok_ratio = (ratio <= RATIO_TARGET) if judge else None
    print(f"\n[2] InPCA(10).fit: from the store {fs['wall']:.2f} s ({fs['solver']}, {fs['n_iter']} passes over D; "
          f"peak RSS {fs['maxrss_mib']:.0f} MiB), in memory {fm['wall']:.2f} s ({fm['n_iter']} passes; "
          f"peak RSS {fm['maxrss_mib']:.0f} MiB incl. D)")
    print(f"    ratio store / memory = {ratio:.2f}   target <= {RATIO_TARGET:.1f}   {verdict(ok_ratio)}; "
          f"max |lambda_store - lambda_memory| / |lambda_1| = {diff:.1e}; eigenvectors (first 1000 rows) "
          f"max |difference| = {vec:.1e}")


def run_child(task: str, workdir: str, arg: str = "0") -> dict:
    return _child.run_child(__file__, task, workdir, arg)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="M=3000; targets not judged")
    ap.add_argument("--workdir", default=None, help="folder for the input and the stores (default: a temp dir)")
    ap.add_argument("--fit-only", action="store_true",
                    help="only step 2, on the store of a previous run in --workdir")
    ap.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        return child(*args._child)
    M, n, C = (3000, 64, 10) if args.quick else (20000, 64, 10)
    judge = None if args.quick else True
    if args.fit_only:
        if args.workdir is None or not os.path.isdir(os.path.join(args.workdir, "D.zarr")):
            ap.error("--fit-only needs --workdir with the D.zarr store of a previous run")
        print(f"# bench_store --fit-only: store in {args.workdir}; load average "
              f"{tuple(round(x, 2) for x in os.getloadavg())}")
        return fit_step(args.workdir, M, judge)
    own = args.workdir is None
    workdir = tempfile.mkdtemp(prefix="bench_store_") if own else args.workdir
    os.makedirs(workdir, exist_ok=True)
    print(f"# bench_store: M={M}, n={n}, C={C}; cpu cores {os.cpu_count()}, load average "
          f"{tuple(round(x, 2) for x in os.getloadavg())}; workdir {workdir}")
    print(f"# {'quick run (targets not judged)' if args.quick else 'full run'}")
    try:
        t0 = time.perf_counter()
        make_input(os.path.join(workdir, "logp.npy"), M, n, C)
        print(f"    input written in {time.perf_counter() - t0:.1f} s ({M * n * C * 4 / 2**20:.0f} MiB float32 memmap)")

        st = run_child("store", workdir)
        ok_rss = (st["maxrss_mib"] <= RSS_TARGET_MIB) if judge else None
        print(f"\n[1] bhattacharyya(memmap, out='D.zarr'): {st['wall']:.1f} s, {st['tiles_total']} tiles of 1024^2; "
              f"peak RSS {st['maxrss_mib']:.0f} MiB (D is {M * M * 8 / 2**20:.0f} MiB)   target <= "
              f"{RSS_TARGET_MIB:.0f} MiB   {verdict(ok_rss)}")

        fit_step(workdir, M, judge)

        stop = max(1, st["tiles_total"] // 3)
        ri = run_child("store", workdir, str(stop))
        rr = run_child("resume", workdir)
        cmp_ = run_child("compare", workdir)
        ok_res = cmp_["equal"] and rr["computed"] == st["tiles_total"] - stop
        print(f"\n[3] interrupted after {stop} tiles (interrupted={ri['interrupted']}), resumed: computed "
              f"{rr['computed']} of {st['tiles_total']} tiles in {rr['wall']:.1f} s; bitwise equal to the one-shot "
              f"store: {cmp_['equal']}   {verdict(ok_res)}")
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
