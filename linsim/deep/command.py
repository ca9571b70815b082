"""The ``linsim train`` subcommand: train a grid of deep-network configurations, resumably.

Usage::

    linsim train                       # the built-in grid (MNIST-1D, CPU-sized, a few minutes)
    linsim train GRID.toml --out DIR   # your grid (see linsim.deep.grid for the format)
    linsim train --scale gpu           # the built-in grid at GPU size
    linsim train --print-default-grid  # print the built-in grid's TOML (to copy and edit)
    linsim train GRID.toml --dry-run   # list the configurations, train nothing

Each configuration is written to ``DIR/<architecture>-<config_id>.nc`` as soon as it
finishes, and ``DIR/index.json`` lists them all; running the same command again skips what
is complete.  Ctrl-C (or SIGTERM) stops after removing the file in progress (exit status
130); a kill loses at most the configuration in progress.  The exit status is 0 when every configuration
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

__all__ = ["DEFAULT_OUT", "add_arguments", "main", "run"]

DEFAULT_OUT = "linsim-out/train"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``linsim train`` arguments to ``parser``; returns it.

    Examples
    --------
    >>> p = add_arguments(argparse.ArgumentParser(prog="linsim train"))
    >>> a = p.parse_args(["grid.toml", "--out", "runs"])
    >>> a.grid, a.out, a.scale
    ('grid.toml', 'runs', 'small')
    """
    from linsim.deep.grid import BUILTIN_GRIDS

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
    parser.add_argument("--verify", action="store_true",
                        help="re-check the checksums of existing result files before skipping them")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the configurations and where they would be written; train nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
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

    if args.threads < 0:
        print(f"linsim train: --threads must be >= 0; got {args.threads}", file=sys.stderr)
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
                               group_runs=max(0, args.group_runs))
    except KeyboardInterrupt:
        done = sum(result_path(args.out, e.config).is_file() for e in entries)
        print(f"\nlinsim train: interrupted; {done} of {len(entries)} configurations are complete "
              f"in {args.out}. Run the same command again to resume.", file=sys.stderr)
        return 130
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"linsim train: {exc}", file=sys.stderr)
        return 2
    print(f"linsim train: {summary.n_trained} trained, {summary.n_skipped} already complete, "
          f"{summary.n_diverged_runs} runs diverged, {summary.wall_time:.1f} s; results in "
          f"{Path(args.out) / 'index.json'}")
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m linsim.deep.command``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="linsim train", description=__doc__.split("\n\n")[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
