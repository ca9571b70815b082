"""The subcommand registry of the ``linsim`` command.

A subcommand is a module with two functions,

* ``add_arguments(parser: argparse.ArgumentParser) -> None``: declare its flags;
* ``run(args: argparse.Namespace) -> int``: do the work, return the exit status,

registered here under a name with a one-line help.  The module is imported only when its
subcommand is chosen, so ``linsim --help`` lists every command without importing any of
them (and stays fast); a module that is not installed is left out of the listing.

Examples
--------
>>> [s.name for s in subcommands()][:2]
['ribbon', 'phase']
>>> get_subcommand("phase").module
'linsim.cli.phase'
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from dataclasses import dataclass
from operator import attrgetter

from linsim.registry import Registry

__all__ = ["Subcommand", "get_subcommand", "register_subcommand", "subcommands"]


@dataclass(frozen=True)
class Subcommand:
    """A registry entry.

    Parameters
    ----------
    name : str
        What the user types (``linsim NAME ...``).
    module : str
        Dotted module path exposing ``add_arguments(parser)`` and ``run(args) -> int``.
    help : str
        One line for ``linsim --help``.
    """

    name: str
    module: str
    help: str

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").isalnum() or self.name.startswith("-"):
            raise ValueError(f"Subcommand.name must be a word such as 'phase'; got {self.name!r}")
        if not self.module or " " in self.module:
            raise ValueError(f"Subcommand.module must be a dotted module path; got {self.module!r}")

    def is_available(self) -> bool:
        """Whether the module can be found, without importing it (or its packages).

        Examples
        --------
        >>> Subcommand("x", "no_such_package.command", "missing").is_available()
        False
        """
        if self.module in sys.modules:
            return True
        parts = self.module.split(".")
        head = sys.modules.get(parts[0])
        if head is None:
            spec = importlib.machinery.PathFinder.find_spec(parts[0])
            if spec is None:
                return False
            path = spec.submodule_search_locations
        else:
            path = getattr(head, "__path__", None)
        for depth, part in enumerate(parts[1:], start=1):
            if path is None:
                return False
            name = ".".join(parts[: depth + 1])
            if name in sys.modules:
                path = getattr(sys.modules[name], "__path__", None)
                continue
            spec = importlib.machinery.PathFinder.find_spec(part, list(path))
            if spec is None:
                return False
            path = spec.submodule_search_locations
        return True

    def load(self):
        """Import the module and check that it has ``add_arguments`` and ``run``.

        Examples
        --------
        >>> get_subcommand("ribbon").load().__name__
        'linsim.cli.ribbon'
        >>> Subcommand("x", "json", "not a command").load()
        Traceback (most recent call last):
        ...
        TypeError: subcommand 'x': module json has no function add_arguments()
        """
        mod = importlib.import_module(self.module)
        for attr in ("add_arguments", "run"):
            if not callable(getattr(mod, attr, None)):
                raise TypeError(f"subcommand {self.name!r}: module {self.module} has no function {attr}()")
        return mod


#: The subcommand registry (name -> :class:`Subcommand`); use the functions of this module.
_REGISTRY: Registry[Subcommand] = Registry("subcommand", type=Subcommand, key=attrgetter("name"))


def register_subcommand(entry: Subcommand, *, replace: bool = False) -> Subcommand:
    """Add a subcommand (``replace=True`` to overwrite one of the same name).

    Examples
    --------
    >>> register_subcommand(Subcommand("ribbon", "linsim.cli.ribbon", "again"))
    Traceback (most recent call last):
    ...
    ValueError: subcommand 'ribbon' is already registered; pass replace=True to overwrite it
    """
    return _REGISTRY.add(entry, replace=replace)


def subcommands(*, available_only: bool = True) -> tuple[Subcommand, ...]:
    """Registered subcommands in registration order (by default only those installed).

    Examples
    --------
    >>> {"ribbon", "phase", "train", "compare"} <= {s.name for s in subcommands(available_only=False)}
    True
    """
    return tuple(s for s in _REGISTRY.values() if not available_only or s.is_available())


def get_subcommand(name: str) -> Subcommand:
    """The entry called ``name``; the error lists the available ones.

    Examples
    --------
    >>> get_subcommand("phase").help.split(" (")[0]
    'sweep 1-3 parameters into a phase diagram with the theory beside it'
    """
    if name not in _REGISTRY:
        raise ValueError(f"no subcommand {name!r}; available: {', '.join(s.name for s in subcommands())}")
    return _REGISTRY[name]


for _entry in (
    Subcommand("ribbon", "linsim.cli.ribbon",
               "simulate one ensemble, embed it with InPCA, report the ribbon (ribbon.nc, ribbon.png)"),
    Subcommand("phase", "linsim.cli.phase",
               "sweep 1-3 parameters into a phase diagram with the theory beside it (phase.nc, phase.png)"),
    Subcommand("train", "linsim.deep.command",
               "train a grid of deep networks with PyTorch, resumably (one netCDF per configuration)"),
    Subcommand("compare", "linsim.compare.command",
               "deep networks against the linear theory (compare.nc, figures, compare.md)"),
):
    register_subcommand(_entry)
del _entry
