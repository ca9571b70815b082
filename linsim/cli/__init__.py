"""The ``linsim`` command line.

``linsim ribbon``
    Simulate one ensemble, embed all its checkpoints with InPCA, print the explained-stress
    curve and the eigenvalue ladder, write ``ribbon.nc`` (and ``trajectory.nc``) and
    ``ribbon.png``.
``linsim phase``
    Sweep two or three ensemble parameters, compare the simulated hyper-ribbon metrics with
    the theory in every cell, write ``phase.nc`` and ``phase.png``, print the agreement
    (``--json``: one JSON object).

Every field of :class:`linsim.ensemble.EnsembleConfig` is a flag of both (``--n-runs 8``,
``--teacher-scale 0.5``, ...), listed by ``linsim ribbon --help`` / ``linsim phase --help``.
Subcommands come from a registry (:mod:`linsim.cli.registry`): each is a module with
``add_arguments(parser)`` and ``run(args) -> int``, imported only when it is chosen.

Exit status: 0 on success, 1 when the computation failed (e.g. every sweep cell failed),
2 for bad arguments (the message names the flag), 130 when interrupted (Ctrl-C), 143 on
SIGTERM (after removing temporary files; finished files are complete).

Examples
--------
>>> main(["--version"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
SystemExit: 0
"""

from __future__ import annotations

import argparse
import sys

from linsim.cli._axes import parse_axis
from linsim.cli.registry import Subcommand, get_subcommand, register_subcommand, subcommands

__all__ = ["Subcommand", "build_parser", "get_subcommand", "main", "parse_axis", "register_subcommand",
           "subcommands"]


def _version() -> str:
    from linsim import __version__

    return __version__


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    for token in argv:
        if token == "--":
            return None
        if not token.startswith("-"):
            return token
    return None


def _wrap(text: str) -> str:
    """Wrap each line of ``text`` (one paragraph per line) to the terminal width."""
    import shutil
    import textwrap

    width = max(40, min(100, shutil.get_terminal_size((80, 24)).columns - 2))
    paragraphs = [" ".join(p.split()) for p in text.split("\n")]
    return "\n".join(textwrap.fill(p, width) for p in paragraphs if p)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every registered subcommand, with the flags of ``command``.

    Only ``command``'s module is imported (to add its flags); the others appear with their
    one-line help.  ``command=None`` builds the bare top level.

    Examples
    --------
    >>> p = build_parser("ribbon")
    >>> p.parse_args(["ribbon", "--n-runs", "3"]).cfg_n_runs
    3
    """
    parser = argparse.ArgumentParser(
        prog="linsim",
        description="Exact training trajectories of linear models, linear networks and kernel "
        "machines, embedded with InPCA, next to an analytic theory of the hyper-ribbon.",
        epilog="Each command has its own flags, including one per ensemble parameter "
        "(every field of linsim.ensemble.EnsembleConfig, e.g. --model, --slope, --n-runs, "
        "--steps); see 'linsim COMMAND --help', e.g. 'linsim phase --help'. ribbon and phase "
        "start from different default ensembles (each --help shows its defaults).",
    )
    parser.add_argument("--version", action="version", version=f"linsim {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in subcommands():
        p = sub.add_parser(entry.name, help=entry.help, description=entry.help)
        if entry.name == command:
            mod = entry.load()
            if mod.__doc__:
                p.description = _wrap(" ".join(mod.__doc__.strip().split("\n\n")[0].split()).replace("``", ""))
            p.formatter_class = argparse.RawDescriptionHelpFormatter
            epilog = getattr(mod, "EPILOG", None)
            if epilog:
                p.epilog = _wrap(epilog)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``linsim`` console command; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success, 1 computation failed, 2 bad arguments (argparse's own errors exit with
        ``SystemExit(2)``), 130 interrupted; SIGTERM raises ``SystemExit(143)`` after the
        command's cleanup ran.

    Examples
    --------
    A bad flag is refused before anything is computed (argparse prints the message):

    >>> main(["phase", "--workers", "0"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen(argv)
    known = {s.name for s in subcommands()}
    parser = build_parser(chosen if chosen in known else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    args._argv = argv
    from linsim.parallel import MissingExtraError, sigterm_as_exit

    try:
        with sigterm_as_exit():  # SIGTERM unwinds like Ctrl-C: temporary files are removed
            return int(args._run(args) or 0)
    except (ValueError, PermissionError, NotADirectoryError, MissingExtraError) as exc:
        print(f"linsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"linsim {args.command}: interrupted", file=sys.stderr)
        return 130
