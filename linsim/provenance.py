"""Provenance of results on disk: CF-style global attributes that say what wrote a file.

Every file linsim writes (trajectories, sweeps, training grids, comparisons) carries the same
global attributes, so a file found on a disk months later says how it was made:

* ``Conventions``: ``"CF-1.10"``;
* ``title`` and ``source``: what the file holds and the software that made it;
* ``history``: ``"<ISO 8601 UTC time>: <command line>"`` (the CF way of recording a command);
* ``linsim_version``, ``dependency_versions`` (JSON object of the versions of numpy, scipy,
  torch, xarray, ... that are installed), ``python_version``;
* ``git_commit``: the commit of the linsim source tree when it is a git checkout (absent
  otherwise);
* ``date_created``: ISO 8601 UTC time.

Nothing here changes global state; the git look-up runs ``git`` once per process with a short
time-out and is cached.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["CONVENTIONS", "DEPENDENCIES", "dependency_versions", "git_commit", "linsim_version",
           "provenance_attrs"]

#: The CF conventions version the files follow.
CONVENTIONS = "CF-1.10"
#: Distributions whose versions are recorded in ``dependency_versions``.
DEPENDENCIES = ("numpy", "scipy", "sympy", "torch", "xarray", "h5netcdf", "h5py", "zarr", "numba",
                "scikit-learn", "matplotlib", "dask", "mnist1d")


def linsim_version() -> str:
    """The installed linsim version (package metadata), or ``"unknown"`` when not installed.

    Examples
    --------
    >>> isinstance(linsim_version(), str)
    True
    """
    try:
        return metadata.version("linsim")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def dependency_versions() -> dict[str, str]:
    """Versions of the installed scientific dependencies (only those that are installed).

    Examples
    --------
    >>> "numpy" in dependency_versions()
    True
    """
    out = {}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The git commit of the linsim source tree, or ``None`` when it is not a git checkout.

    Examples
    --------
    >>> commit = git_commit()
    >>> commit is None or len(commit) == 40
    True
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = res.stdout.strip()
    return commit if res.returncode == 0 and len(commit) == 40 else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def provenance_attrs(command: str | list[str] | None = None, *, title: str | None = None) -> dict[str, str]:
    """CF-style global attributes recording what wrote a file, and when.

    Parameters
    ----------
    command : str or list of str, optional
        The command line to record in ``history`` (default: ``sys.argv`` of this process).
    title : str, optional
        A short description of the file's content (``title`` attribute).

    Returns
    -------
    dict of str -> str
        ``Conventions``, ``title`` (when given), ``source``, ``history``, ``linsim_version``,
        ``python_version``, ``dependency_versions`` (a JSON object), ``date_created`` and, in a
        git checkout, ``git_commit``. All values are strings, so any netCDF/zarr writer takes them.

    Examples
    --------
    >>> attrs = provenance_attrs("linsim phase --workers 2", title="phase sweep")
    >>> attrs["Conventions"], attrs["history"].endswith("linsim phase --workers 2")
    ('CF-1.10', True)
    """
    if command is None:
        command = [Path(sys.argv[0]).name or "python", *sys.argv[1:]] if sys.argv else ["python"]
    if not isinstance(command, str):
        command = shlex.join(str(c) for c in command)
    now = _now()
    version = linsim_version()
    attrs = {
        "Conventions": CONVENTIONS,
        "source": f"linsim {version}",
        "history": f"{now}: {command}",
        "linsim_version": version,
        "python_version": platform.python_version(),
        "dependency_versions": json.dumps(dependency_versions(), sort_keys=True),
        "date_created": now,
    }
    if title is not None:
        attrs["title"] = str(title)
    commit = git_commit()
    if commit is not None:
        attrs["git_commit"] = commit
    return attrs
