"""Train a grid of deep-network configurations with PyTorch (all seeds of a configuration at
once) and write one netCDF file of logit trajectories per configuration, resumably.

Usage::

    linsim train                       # the built-in grid (MNIST-1D, CPU-sized, a few minutes)
    linsim train GRID.toml --out DIR   # your grid (see linsim.deep.grid for the format)
    linsim train --scale gpu           # the built-in grid at GPU size
    linsim train --print-default-grid  # print the built-in grid's TOML (to copy and edit)
    linsim train GRID.toml --dry-run   # list the configurations, train nothing

Each configuration is written to ``DIR/<architecture>-<config_id>.nc`` as soon as it
finishes, and ``DIR/index.json`` lists them all; running the same command again skips what
is complete.  ``--workers N`` trains N configurations at a time in local worker processes,
``--scheduler ADDRESS`` (or ``DASK_SCHEDULER_ADDRESS``) on a Dask cluster; this process writes
every file, and the stored arrays are the same bits whatever the engine.  Ctrl-C (or SIGTERM)
stops after removing the file in progress (exit status 130; the workers are stopped); a kill
loses at most the configurations in progress.  The exit status is 0 when every configuration
is complete (diverged runs are recorded, not failures), 2 for bad input.

``add_arguments(parser)`` and ``run(args)`` plug the command into ``linsim``'s parser;
``python -m linsim.deep.command ...`` runs it on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

__all__ = ["DEFAULT_OUT", "EPILOG", "add_arguments", "main", "run"]

DEFAULT_OUT = "linsim-out/train"

#: Shown after the options of ``linsim train --help`` (one paragraph or example per line).
EPILOG = "\n".join([
    "examples:",
    "linsim train --dry-run  # list the built-in MNIST-1D grid, train nothing",
    "linsim train  # train it here (minutes on 2 CPU cores) into linsim-out/train",
    "linsim train --print-default-grid > my.toml  # copy the grid to edit it",
    "linsim train my.toml --out runs  # train your grid into runs/",
    "linsim train --scale gpu --group-runs 256  # the GPU-sized grid, 256 runs per vmapped group",
    "linsim train --workers 2  # two configurations at a time in two local processes",
    "linsim train --scheduler tcp://host:8786  # on a Dask cluster (or set DASK_SCHEDULER_ADDRESS)",
    "Grid files are TOML: keys are linsim.deep.TrainConfig fields (dataset, architecture, width, "
    "optimizer, lr, batch_size, steps, n_runs, augment, ...); a list is an axis of the product; "
    "each [grid.<name>] table is a sub-grid merged over the top-level keys.",
    "Output: DIR/<architecture>-<config_id>.nc per configuration (read it with "
    "linsim.deep.TrainResult.load) and DIR/index.json. Running the same command again skips what "
    "is complete; Ctrl-C stops cleanly (exit 130). Exit status 0 when everything is complete "
    "(diverged runs are recorded, not failures), 2 for bad input.",
])


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``linsim train`` arguments to ``parser``; returns it.

    Examples
    --------
    >>> p = add_arguments(argparse.ArgumentParser(prog="linsim train"))
    >>> a = p.parse_args(["grid.toml", "--out", "runs"])
    >>> a.grid, a.out, a.scale
    ('grid.toml', 'runs', 'small')
    """
    from linsim.deep.grid import BUILTIN_GRIDS, DEFAULT_COMPRESS

    parser.add_argument("grid", nargs="?", default=None,
                        help="TOML grid file (default: the built-in grid chosen by --scale)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"output folder (default {DEFAULT_OUT}); one netCDF per configuration "
                             "plus index.json")
    parser.add_argument("--scale", choices=sorted(BUILTIN_GRIDS), default="small",
                        help="size of the built-in grid: 'small' (2-core CPU, minutes) or 'gpu' "
                             "(6 families, 10 seeds, 200 epochs; meant for one GPU); ignored when "
                             "a grid file is given")
    parser.add_argument("--print-default-grid", action="store_true",
                        help="print the built-in grid (of --scale) as TOML and exit")
    parser.add_argument("--device", default=None,
                        help="torch device for every configuration (default: CUDA when "
                             "available, else CPU)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads while training (default 1: small networks train "
                             "fastest single-threaded, and parallel runs do not compete; 0 keeps "
                             "torch's own setting)")
    parser.add_argument("--group-runs", type=int, default=0,
                        help="train configurations that differ only in seed/lr/momentum/weight "
                             "decay/n_runs together, up to this many runs per vectorized group "
                             "(same results; much faster on a GPU, e.g. 256); 0: one at a time")
    parser.add_argument("--compress", type=int, default=DEFAULT_COMPRESS, metavar="LEVEL",
                        help=f"lossless gzip level 1..9 of the result files (default "
                             f"{DEFAULT_COMPRESS}; 0: uncompressed)")
    parser.add_argument("--verify", action="store_true",
                        help="re-check the checksums of existing result files before skipping them")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the configurations and where they would be written; train nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from linsim.cli import _flags

    _flags.add_engine_flags(parser, what="configurations (groups, with --group-runs)",
                            default="one after the other in this process; N x --threads must not "
                                    "exceed the cores")
    return parser


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C while training (main thread only); the old handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(args: argparse.Namespace) -> int:
    """Run ``linsim train`` with parsed ``args``; returns the exit status."""
    from linsim.deep.grid import builtin_grid_text, load_grid, result_path, run_grid
    from linsim.storage import check_writable_dir
    from linsim.parallel import MissingExtraError

    for flag, value, ok in (("--threads", args.threads, args.threads >= 0),
                            ("--group-runs", args.group_runs, args.group_runs >= 0),
                            ("--compress", args.compress, 0 <= args.compress <= 9)):
        if not ok:
            bound = "0..9" if flag == "--compress" else ">= 0"
            print(f"linsim train: {flag} must be {bound}; got {value}", file=sys.stderr)
            return 2
    if args.print_default_grid:
        sys.stdout.write(builtin_grid_text(args.scale))
        return 0
    try:
        entries = load_grid(args.grid, builtin=args.scale)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"linsim train: {exc}", file=sys.stderr)
        return 2
    source = args.grid if args.grid else f"built-in grid {args.scale!r}"
    n_runs = sum(e.config.n_runs for e in entries)
    if args.dry_run:
        for e in entries:
            c = e.config
            print(f"{result_path(args.out, c)}  [{e.subgrid or '-'}] {c.architecture} w={c.width:g} "
                  f"{c.optimizer} lr={c.lr:g} bs={c.batch_size} aug={c.augment} steps={c.steps} "
                  f"R={c.n_runs}")
        print(f"{len(entries)} configurations, {n_runs} runs ({source})")
        return 0
    try:
        check_writable_dir(args.out)
    except OSError as exc:
        print(f"linsim train: {exc}", file=sys.stderr)
        return 2
    print(f"linsim train: {len(entries)} configurations, {n_runs} runs from {source} -> {args.out}")
    try:
        with _sigterm_as_interrupt():
            summary = run_grid(entries, args.out, progress=not args.no_progress, verify=args.verify,
                               device=args.device, command=sys.argv, source=str(source),
                               num_threads=args.threads if args.threads > 0 else None,
                               group_runs=args.group_runs,
                               compress=args.compress or None, n_workers=args.workers,
                               scheduler=args.scheduler)
    except KeyboardInterrupt:
        done = sum(result_path(args.out, e.config).is_file() for e in entries)
        print(f"\nlinsim train: interrupted; {done} of {len(entries)} configurations are complete "
              f"in {args.out}. Run the same command again to resume.", file=sys.stderr)
        return 130
    except (RuntimeError, ValueError, OSError, MissingExtraError) as exc:  # not any ImportError: a fault keeps its traceback
        print(f"linsim train: {exc}", file=sys.stderr)
        return 2
    print(f"linsim train: {summary.n_trained} trained, {summary.n_skipped} already complete, "
          f"{summary.n_diverged_runs} runs diverged, {summary.wall_time:.1f} s; results in "
          f"{Path(args.out) / 'index.json'}")
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m linsim.deep.command``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="linsim train", description=" ".join(__doc__.split("\n\n")[0].split()),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
