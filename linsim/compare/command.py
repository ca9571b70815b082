"""The ``linsim compare`` subcommand: deep networks against the linear theory.

Usage::

    linsim compare DIR                 # a `linsim train` output folder
    linsim compare                     # the built-in default: trains the default grid into
                                       # linsim-out/train first (resuming) if it is not complete
    linsim compare DIR --json          # one JSON object on stdout (keys below)

Writes ``compare.nc`` (every number), five figures and ``compare.md`` (one page answering
"do these networks behave like the theory says?") into ``--out`` (default
``linsim-out/compare``; NTK counterparts are kept in ``--out/cache`` as they finish, so a rerun
or an interrupted run does not recompute them), and prints the findings, each with its measured number
as read back from ``compare.nc``.  Exit status 0
on success, 2 for bad input, 130 when interrupted.

JSON keys (``--json``): ``deep_stress``, ``joint_stress``, ``linear_basis_all``,
``linear_basis_deep`` (chi_1..chi_k of the four views, :mod:`linsim.compare.joint`),
``top3_deep_stress``, ``separability`` (factor -> architecture-pair / factor-pair distance),
``permutation_importance``, ``width`` (width / architecture distance ratio, steps to progress 0.5
and to the mid-grid progress by architecture and width), ``init``, ``theory_vs_deep`` (one row per
configuration: controls, measured and predicted ``k_chi``), ``n_configs``, ``n_points``, ``notes``,
``files``, ``wall_time_s``.  Unmeasurable numbers are ``null``.

``add_arguments(parser)`` and ``run(args)`` plug the command into ``linsim``'s parser;
``python -m linsim.compare.command ...`` runs it on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["DEFAULT_OUT", "add_arguments", "main", "run"]

DEFAULT_OUT = "linsim-out/compare"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``linsim compare`` arguments to ``parser``; returns it.

    Examples
    --------
    >>> p = add_arguments(argparse.ArgumentParser(prog="linsim compare"))
    >>> a = p.parse_args(["runs", "--json", "--no-ntk"])
    >>> a.directory, a.json, a.no_ntk, a.out
    ('runs', True, True, 'linsim-out/compare')
    """
    parser.add_argument("directory", nargs="?", default=None,
                        help="a `linsim train` output folder (default: train the built-in grid into "
                             "linsim-out/train, resuming, and compare that)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every summary number")
    parser.add_argument("--scale", default="small",
                        help="built-in grid to train when no directory is given (default 'small')")
    parser.add_argument("--chi", type=float, default=0.9, help="explained-stress threshold of k_chi (default 0.9)")
    parser.add_argument("--k-star", type=int, default=3, help="ribbon criterion k_chi <= k_star (default 3)")
    parser.add_argument("--n-components", type=int, default=10, help="InPCA components per view (default 10)")
    parser.add_argument("--n-grid", type=int, default=50, help="equal-progress grid size (default 50)")
    parser.add_argument("--counterpart-runs", type=int, default=2,
                        help="runs of each linear counterpart (default 2)")
    parser.add_argument("--ntk-max-train", type=int, default=500,
                        help="training samples of the NTK kernel machines (default 500; 0 = all)")
    parser.add_argument("--rf-features", type=int, default=512,
                        help="random ReLU features of the random-features counterpart (default 512)")
    parser.add_argument("--n-draws", type=int, default=16,
                        help="Monte-Carlo draws of the theory's expected stress (default 16)")
    parser.add_argument("--no-ntk", action="store_true", help="skip the NTK counterparts (and c of the NTK)")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when available, else CPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the counterparts' draws (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress messages on stderr")
    from linsim.cli import _flags

    _flags.add_engine_flags(parser, what="configurations of the training stage (only without DIRECTORY)",
                            default="one after the other in this process")
    return parser


def _train_threads(args):
    """torch threads of the training stage: unchanged in this process (None), one per worker
    (as ``linsim train``'s default) when it fans out."""
    from linsim.parallel import resolve_scheduler

    fans_out = (args.workers or 1) > 1 or resolve_scheduler(args.scheduler)[0] is not None
    return 1 if fans_out else None


def _train_default(args, say):
    from linsim.deep.command import DEFAULT_OUT as TRAIN_OUT
    from linsim.deep.grid import load_grid, run_grid

    entries = load_grid(None, builtin=args.scale)
    say(f"training the built-in grid {args.scale!r} ({len(entries)} configurations) into {TRAIN_OUT} "
        "(complete configurations are skipped)")
    run_grid(entries, TRAIN_OUT, progress=not args.no_progress, device=args.device, command=sys.argv,
             source=f"built-in grid {args.scale!r}", log=say, num_threads=_train_threads(args),
             n_workers=args.workers, scheduler=args.scheduler)
    return Path(TRAIN_OUT)


def run(args: argparse.Namespace) -> int:
    """Run ``linsim compare`` with parsed ``args``; returns the exit status.

    0 on success, 2 for bad input (the message on stderr names the problem), 130 when
    interrupted.

    Examples
    --------
    >>> import tempfile
    >>> parser = add_arguments(argparse.ArgumentParser(prog="linsim compare"))
    >>> with tempfile.TemporaryDirectory() as d:   # not a `linsim train` folder
    ...     run(parser.parse_args([d, "--out", d + "/out", "--no-progress"]))
    2
    """
    import numpy as np

    from linsim.storage import read_netcdf
    from linsim.parallel import MissingExtraError

    from .pipeline import CompareConfig, compare, load_grid_results
    from .report import findings_from_dataset, write_report

    t0 = time.perf_counter()
    quiet = args.no_progress

    def say(msg):
        if not quiet:
            print(f"linsim compare [{time.perf_counter() - t0:6.1f} s]: {msg}", file=sys.stderr, flush=True)

    try:
        kinds = ("linear", "softmax", "random_features") + (() if args.no_ntk else ("ntk",))
        config = CompareConfig(chi=args.chi, k_star=args.k_star, n_components=args.n_components,
                               n_grid=args.n_grid, counterparts=kinds, counterpart_runs=args.counterpart_runs,
                               ntk_max_train=None if args.ntk_max_train == 0 else args.ntk_max_train,
                               rf_features=args.rf_features, n_draws=args.n_draws, seed=args.seed,
                               device=args.device)
    except ValueError as exc:
        print(f"linsim compare: {exc}", file=sys.stderr)
        return 2
    given = [f for f, v in (("--workers", args.workers), ("--scheduler", args.scheduler)) if v is not None]
    if args.directory and given:
        print(f"linsim compare: {' and '.join(given)} set(s) the workers of the training stage, which runs "
              f"only without DIRECTORY ({args.directory} is already trained)", file=sys.stderr)
        return 2
    try:
        directory = Path(args.directory) if args.directory else _train_default(args, say)
        trajs, notes = load_grid_results(directory)
        for n in notes:
            say(n)
        say(f"{len(trajs)} configurations from {directory}")
        comp = compare(trajs, config=config, progress=say, cache_dir=Path(args.out) / "cache")
        paths = write_report(comp, args.out, command=sys.argv)
    except KeyboardInterrupt:
        print("\nlinsim compare: interrupted; nothing partial was left in the output folder", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, OSError, MissingExtraError) as exc:  # the dask extra, not any ImportError
        print(f"linsim compare: {exc}", file=sys.stderr)
        return 2
    summary = comp.summary()
    summary["files"] = {k: str(v) for k, v in paths.items()}
    summary["wall_time_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(summary, indent=1, allow_nan=False))
    else:
        stored = read_netcdf(paths["netcdf"])  # print what was stored, not what is in memory
        for line in findings_from_dataset(stored).lines():
            print(line)
        meas, pred = stored["control_measured_k"].values, stored["control_predicted_k_input"].values
        agree = int(np.sum(np.isfinite(pred) & ((meas <= args.k_star) == (pred <= args.k_star))))
        print(f"theory vs deep: the ribbon call at the measured controls agrees for {agree} of "
              f"{int(np.isfinite(pred).sum())} configurations (table in {paths['markdown']})")
        print(f"linsim compare: wrote {paths['netcdf']}, {paths['markdown']} and {len(paths) - 2} figures "
              f"in {summary['wall_time_s']} s")
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m linsim.compare.command``: parse ``argv`` and :func:`run`.

    Examples
    --------
    >>> main(["runs", "--chi", "1.5", "--no-progress"])   # chi outside (0, 1): bad input
    2
    """
    parser = add_arguments(argparse.ArgumentParser(prog="linsim compare", description=__doc__.split("\n\n")[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
