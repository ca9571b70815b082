"""Import the ``theory`` package robustly (private).

``theory`` is a top-level package installed beside ``linsim``.  A user's own ``theory.py`` (or
``theory/`` folder) in the working folder or the script's folder comes first on ``sys.path``
and shadows it; every sweep cell then failed with an unrelated ``ImportError``.  This module
finds the ``theory`` that Python would import and:

* a plain folder called ``theory`` (no ``__init__.py``: a namespace package, e.g. a folder of
  notes, or the test suite's ``tests/theory``) holds no code, yet it wins over a package that
  an import hook provides (an editable install).  linsim's package is then imported from the
  hook's own location instead, so such a folder does not get in the way;
* any other module that is not linsim's (a ``theory.py``, a package with an ``__init__.py``
  lacking the functions the sweeps call) raises a :class:`TheoryShadowedError` that names the
  shadowing file and the package it hides.
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


def _is_namespace(spec) -> bool:
    return spec.submodule_search_locations is not None and spec.origin in (None, "namespace")


def _import_from_hooks():
    """Import ``theory`` from the first import hook (``sys.meta_path`` finder other than the
    path finder) that provides it as a regular package; None if none does."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is PathFinder or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec("theory", None)
        except Exception:  # a third-party hook that cannot answer
            continue
        if spec is None or spec.loader is None or _is_namespace(spec):
            continue
        mod = importlib.util.module_from_spec(spec)
        sys.modules["theory"] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop("theory", None)
            raise
        return mod
    return None


def import_theory():
    """Return linsim's ``theory`` package, or raise :class:`TheoryShadowedError` naming the
    module that shadows it.

    Examples
    --------
    >>> import_theory().REGIME_LOGIT_RMS > 0
    True
    """
    mod = sys.modules.get("theory")
    if mod is not None and getattr(mod, "__file__", None) is None and not all(hasattr(mod, n) for n in _REQUIRED):
        # a plain folder was imported as a namespace package before we were asked
        mod = _import_from_hooks() or mod
    if mod is None:
        try:
            spec = importlib.util.find_spec("theory")
        except (ImportError, ValueError) as exc:
            raise TheoryShadowedError(f"cannot locate the 'theory' package: {exc}") from exc
        if spec is None:
            raise ImportError("linsim's 'theory' package is not installed (pip install -e . installs both)")
        if _is_namespace(spec):
            mod = _import_from_hooks()
    if mod is None:
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
