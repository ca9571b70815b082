"""Benchmark of the fan-out engines (issue 10, item 5): distance tiles and training grids on
local worker processes and a Dask LocalCluster, against the in-process run.

Measured, each step in a fresh child process (so that no pool, cluster or thread setting
carries over):

1. ``bhattacharyya(memmap, out="D.zarr")`` in this process (no engine) vs ``engine="process"``
   and ``engine="dask"`` (a LocalCluster of worker processes, one thread each), for
   M = 6000, n = 64, C = 10, tiles of 1024: wall times (of a second run: the first one
   starts the pools and compiles the kernels in every process), ratios, and the stores compared bitwise (target: equal).  On 2 cores
   the in-process run already uses both (the kernel's threads), so a ratio near 1 is the
   expectation; the fan-out pays off across machines.
2. ``--workers 1`` vs ``OMP_NUM_THREADS=1``: the same single-worker runs (a distance store with
   ``n_workers=1`` and ``linsim phase --workers 1`` on a small grid) once as they are (one
   thread per item by :func:`linsim.parallel.thread_limit`) and once in a process started
   with every thread variable set to 1.  Target: ratio <= 1.2.
3. ``linsim train`` of a tiny grid (8 configurations): in this process vs ``--workers 2``
   (processes, their start included, as a user of the command pays it) vs a LocalCluster
   (started before the timing); stored arrays compared bitwise (target: equal).

The machine is shared; quote the ratios of one run, not absolute times.

Usage: python benchmarks/bench_dask.py [--quick] [--workdir DIR]
  --quick   M = 1500, tiles of 256, 4 configurations (targets not judged)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

import numpy as np

import _child
from linsim.parallel import THREAD_VARIABLES

WORKERS1_TARGET = 1.2

GRID = """
dataset = "digits"
n_train = 96
n_test = 32
steps = {steps}
n_checkpoints = 4
n_runs = 2
batch_size = 16
device = "cpu"
architecture = ["linear", "mlp"]
width = 0.5
lr = {lrs}
"""


def verdict(ok) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def make_input(path: str, M: int, n: int, C: int, seed: int = 0) -> None:
    """float64 log-probabilities (M, n, C) of a smooth family, written as .npy."""
    rng = np.random.default_rng(seed)
    A = 1.5 * rng.standard_normal((8, n * C))
    Z = rng.standard_normal((M, 8))
    z = np.tanh(Z @ A).reshape(M, n, C)
    z -= z.max(-1, keepdims=True)
    np.save(path, z - np.log(np.exp(z).sum(-1, keepdims=True)))


# ----------------------------------------------------------------------------- children
def child(task: str, workdir: str, arg: str) -> None:
    """One measured step in this fresh process; prints a JSON line."""
    opts = json.loads(arg)
    res: dict = {}
    if task == "store":
        from linsim.inpca import bhattacharyya

        lp = np.load(os.path.join(workdir, "logp.npy"), mmap_mode="r")
        kw = {k: opts[k] for k in ("engine", "n_workers") if opts.get(k) is not None}
        eng = None
        if opts.get("engine") in ("process", "dask"):
            from linsim.parallel import get_engine

            eng = get_engine(opts["engine"], opts.get("n_workers")).open()
            kw = {"engine": eng}
        # a first, untimed run into another store: the pool's start (a fresh Python, torch and
        # the compiled kernels -- for every tile shape -- in each worker) is paid once per pool
        bhattacharyya(lp, out=os.path.join(workdir, "warm-" + opts["out"]), tile=opts["tile"], **kw)
        t0 = time.perf_counter()
        bhattacharyya(lp, out=os.path.join(workdir, opts["out"]), tile=opts["tile"], **kw)
        res["wall"] = time.perf_counter() - t0
        if eng is not None:
            eng.close()
    elif task == "phase":
        from linsim.cli import main as cli_main

        out = os.path.join(workdir, opts["out"])
        t0 = time.perf_counter()
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            rc = cli_main(["phase", *opts["axes"], "--workers", "1", "--json", "--no-figure", "--no-progress",
                           "--out", out])
        res["wall"] = time.perf_counter() - t0
        res["rc"] = rc
    elif task == "train":
        grid, out = os.path.join(workdir, "grid.toml"), os.path.join(workdir, opts["out"])
        if opts.get("engine") == "dask":  # run_grid on a LocalCluster (started outside the timing)
            from linsim.deep.grid import load_grid, run_grid
            from linsim.parallel import DaskEngine

            eng = DaskEngine(opts["n_workers"]).open()
            list(eng.map_unordered(abs, [1]))
            t0 = time.perf_counter()
            run_grid(load_grid(grid), out, progress=False, log=None, num_threads=1, engine=eng)
            res["wall"] = time.perf_counter() - t0
            eng.close()
        else:
            from linsim.deep.command import main as train_main

            t0 = time.perf_counter()
            res["rc"] = train_main([grid, "--out", out, "--no-progress", *opts["flags"]])
            res["wall"] = time.perf_counter() - t0
    elif task == "equal_stores":
        import zarr

        a = zarr.open_group(os.path.join(workdir, opts["a"]), mode="r")["distance"]
        b = zarr.open_group(os.path.join(workdir, opts["b"]), mode="r")["distance"]
        res["equal"] = all(bool(np.array_equal(a[r:r + 1024], b[r:r + 1024])) for r in range(0, a.shape[0], 1024))
    elif task == "equal_grids":
        from pathlib import Path

        from linsim.storage import read_netcdf

        a_dir, b_dir = Path(workdir, opts["a"]), Path(workdir, opts["b"])
        files = sorted(p.name for p in a_dir.glob("*.nc"))
        equal = bool(files) and files == sorted(p.name for p in b_dir.glob("*.nc"))
        for name in files if equal else []:
            x, y = read_netcdf(a_dir / name), read_netcdf(b_dir / name)
            for v in x.data_vars:
                u, w = x[v].values, y[v].values
                equal &= bool(np.array_equal(u, w, equal_nan=u.dtype.kind == "f"))
        res["equal"], res["files"] = equal, len(files)
    print(json.dumps(res))


def run_child(task: str, workdir: str, env_threads_1: bool = False, **opts) -> dict:
    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    if env_threads_1:
        env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    return _child.run_child(__file__, task, workdir, json.dumps(opts), env=env)


# ----------------------------------------------------------------------------- driver
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes; targets not judged")
    ap.add_argument("--workdir", default=None, help="folder for inputs and outputs (default: a temp dir)")
    ap.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        return child(*args._child)
    quick = args.quick
    M, n, C, tile = (1500, 64, 10, 256) if quick else (6000, 64, 10, 1024)
    judge = None if quick else True
    own = args.workdir is None
    workdir = tempfile.mkdtemp(prefix="bench_dask_") if own else args.workdir
    os.makedirs(workdir, exist_ok=True)
    cores = os.cpu_count() or 1
    print(f"# bench_dask: cpu cores {cores}, load average {tuple(round(x, 2) for x in os.getloadavg())}; "
          f"workdir {workdir}; {'quick run (targets not judged)' if quick else 'full run'}")
    try:
        make_input(os.path.join(workdir, "logp.npy"), M, n, C)
        nt = -(-M // tile)
        print(f"\n[1] distance store M={M}, n={n}, C={C}, tile {tile} ({nt * (nt + 1) // 2} tiles), memmap input")
        base = run_child("store", workdir, out="here.zarr", tile=tile)
        print(f"    in this process (no engine)          {base['wall']:7.2f} s")
        rows = []
        for name, engine, workers in (("process engine, 2 workers", "process", min(2, cores)),
                                      ("LocalCluster, 2 workers", "dask", min(2, cores))):
            r = run_child("store", workdir, out=f"{engine}.zarr", tile=tile, engine=engine, n_workers=workers)
            eq = run_child("equal_stores", workdir, a="here.zarr", b=f"{engine}.zarr")["equal"]
            rows.append(eq)
            print(f"    {name:<37}{r['wall']:7.2f} s   ratio to in-process {r['wall'] / base['wall']:.2f}   "
                  f"bitwise equal: {eq}   {verdict(eq)}")

        print("\n[2] --workers 1 vs OMP_NUM_THREADS=1 (target ratio <= 1.2)")
        w1 = run_child("store", workdir, out="w1.zarr", tile=tile, n_workers=1)
        o1 = run_child("store", workdir, env_threads_1=True, out="o1.zarr", tile=tile, n_workers=1)
        ratio = w1["wall"] / o1["wall"]
        eq = run_child("equal_stores", workdir, a="w1.zarr", b="here.zarr")["equal"]
        print(f"    distance store n_workers=1: {w1['wall']:.2f} s, OMP_NUM_THREADS=1: {o1['wall']:.2f} s, ratio "
              f"{ratio:.2f}   {verdict(ratio <= WORKERS1_TARGET if judge else None)}   (equal to in-process: {eq})")
        axes = (["--axis", "c=0,1", "--axis", "ratio=1,30", "--n-runs", "4", "--steps", "100"] if quick
                else ["--axis", "c=lin:0:2:4", "--axis", "ratio=log:1:100:4"])
        p1 = run_child("phase", workdir, out="p1", axes=axes)
        po = run_child("phase", workdir, env_threads_1=True, out="po", axes=axes)
        ratio = p1["wall"] / po["wall"]
        print(f"    linsim phase --workers 1 ({' '.join(axes)}): {p1['wall']:.2f} s, OMP_NUM_THREADS=1: "
              f"{po['wall']:.2f} s, ratio {ratio:.2f}   {verdict(ratio <= WORKERS1_TARGET if judge else None)}")

        lrs = [0.05, 0.1] if quick else [0.02, 0.05, 0.1, 0.2]
        with open(os.path.join(workdir, "grid.toml"), "w") as fh:
            fh.write(GRID.format(steps=12 if quick else 60, lrs=json.dumps(lrs)))
        print(f"\n[3] linsim train, tiny grid ({2 * len(lrs)} configurations)")
        t_here = run_child("train", workdir, out="t_here", flags=[])
        print(f"    in this process                      {t_here['wall']:7.2f} s")
        for name, extra, out in (("--workers 2 (processes)", {"flags": ["--workers", str(min(2, cores))]}, "t_proc"),
                                 ("LocalCluster, 2 workers", {"engine": "dask", "n_workers": min(2, cores)}, "t_dask")):
            r = run_child("train", workdir, out=out, **extra)
            eq = run_child("equal_grids", workdir, a="t_here", b=out)
            print(f"    {name:<37}{r['wall']:7.2f} s   ratio {r['wall'] / t_here['wall']:.2f}   stored arrays "
                  f"bitwise equal ({eq['files']} files): {eq['equal']}   {verdict(eq['equal'])}")
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
