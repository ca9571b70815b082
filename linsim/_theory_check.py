"""Import the ``theory`` package robustly (private).

``theory`` is a top-level package installed beside ``linsim``.  A user's own ``theory.py`` (or
``theory/`` folder) in the working folder or the script's folder comes first on ``sys.path``
and shadows it; every sweep cell then failed with an unrelated ``ImportError``.  This module
finds the ``theory`` that Python would import and, when it is not linsim's (a package that
provides the functions the sweeps call), raises an ``ImportError`` that names the shadowing
file and the package it hides.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

__all__ = ["TheoryShadowedError", "import_theory"]

#: Names a module must provide to be linsim's theory package.
_REQUIRED = ("expected_spectrum", "quadratic_spectrum", "quadratic_spectrum_flow", "REGIME_LOGIT_RMS")


class TheoryShadowedError(ImportError):
    """Another module called ``theory`` hides linsim's ``theory`` package.

    Examples
    --------
    >>> issubclass(TheoryShadowedError, ImportError)
    True
    """


def _genuine_location() -> Path | None:
    """Where linsim's own theory package lives (beside the linsim package), if there."""
    here = Path(__file__).resolve().parents[1] / "theory" / "__init__.py"
    return here if here.is_file() else None


def _shadow_message(origin: str | None) -> str:
    genuine = _genuine_location()
    where = f" (linsim's package is {genuine.parent})" if genuine else ""
    return (
        f"the module 'theory' that Python imports is {origin!r}, not linsim's theory package{where}: "
        f"a file or folder named 'theory' in the working folder or the script's folder shadows it. "
        f"Rename it (e.g. my_theory.py) or run from another folder."
    )


def import_theory():
    """Return linsim's ``theory`` package, or raise :class:`TheoryShadowedError` naming the
    module that shadows it.

    Examples
    --------
    >>> import_theory().REGIME_LOGIT_RMS > 0
    True
    """
    mod = sys.modules.get("theory")
    if mod is None:
        try:
            spec = importlib.util.find_spec("theory")
        except (ImportError, ValueError) as exc:
            raise TheoryShadowedError(f"cannot locate the 'theory' package: {exc}") from exc
        if spec is None:
            raise ImportError("linsim's 'theory' package is not installed (pip install -e . installs both)")
        where = spec.origin if spec.origin not in (None, "namespace") else \
            ", ".join(spec.submodule_search_locations or [])
        if spec.submodule_search_locations is None:  # a plain module, e.g. someone's theory.py
            raise TheoryShadowedError(_shadow_message(where))
        try:
            mod = importlib.import_module("theory")
        except ImportError as exc:
            raise TheoryShadowedError(_shadow_message(where) + f" ({exc})") from exc
    missing = [name for name in _REQUIRED if not hasattr(mod, name)]
    if missing or not hasattr(mod, "__path__"):
        where = getattr(mod, "__file__", None) or ", ".join(getattr(mod, "__path__", []) or [])
        raise TheoryShadowedError(_shadow_message(where))
    return mod
