"""Private: where a command's results go, and writing data and figure so they never disagree.

A figure describes a data file; an old figure next to a new data file would be read as the
new result.  :meth:`Outputs.write` therefore renders the figure into memory first, removes
the old figure, writes each data file atomically (:func:`linsim.storage.write_netcdf`) and
only then writes the new figure atomically.  An interruption or failure at any point leaves
either the old pair, or new data without a figure, never a stale figure beside new data.
"""

from __future__ import annotations

import io
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__: list[str] = []


def command_line(args) -> str:
    """The command line of this run, for the ``history`` attribute."""
    return shlex.join(["linsim", *getattr(args, "_argv", [])])


def output_folder(path) -> Path:
    """Create ``path`` if needed and check that it is writable (before computing)."""
    from linsim.storage import check_writable_dir

    try:
        return check_writable_dir(path)
    except (PermissionError, NotADirectoryError, FileNotFoundError) as exc:
        raise PermissionError(f"--out: {exc}") from None


@dataclass
class Outputs:
    """What one command writes into its folder.

    Attributes
    ----------
    folder : Path
    figure_name : str
        The figure's file name (written, or removed when there is no figure).
    command : str
        For the ``history`` attribute.
    data : list of (file name, writer)
        ``writer(path, command)`` writes one data file atomically.
    figure : matplotlib Figure or None
    written : list of str
        Paths written so far.
    notes : list of str
        What the user should be told (e.g. an old figure removed).
    """

    folder: Path
    figure_name: str
    command: str
    data: list = field(default_factory=list)
    figure: object = None
    written: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add_data(self, name: str, ds, checksum_vars=()) -> None:
        """Write ``ds`` to ``folder/name`` with :func:`linsim.storage.write_netcdf`."""
        from linsim.storage import write_netcdf

        checksum_vars = tuple(checksum_vars)
        self.add_writer(name, lambda path, command: write_netcdf(ds, path, command=command,
                                                                 checksum_vars=checksum_vars))

    def add_writer(self, name: str, writer) -> None:
        """Write ``folder/name`` with ``writer(path, command)`` (which must write atomically)."""
        self.data.append((name, writer))

    def remove_old_figure(self) -> None:
        """Delete an existing figure (before its data file is replaced by someone else)."""
        target = self.folder / self.figure_name
        if target.exists():
            target.unlink()
            self.notes.append(f"removed the old {self.figure_name} (it described earlier data)")

    def write(self) -> list[str]:
        """Write everything (see the module docstring for the order); return the paths written.

        Raises the figure's error (after the data are written and the old figure removed)
        if drawing failed.
        """
        from linsim.storage import atomic_path

        png, error = None, None
        if self.figure is not None:
            try:
                buf = io.BytesIO()
                self.figure.savefig(buf, format="png", dpi=120)
                png = buf.getvalue()
            except Exception as exc:  # the data are still worth writing
                error = exc
        target = self.folder / self.figure_name
        if target.exists():
            target.unlink()
            if png is None:
                self.notes.append(f"removed the old {self.figure_name} (it described earlier data)")
        for name, writer in self.data:
            path = self.folder / name
            writer(path, self.command)
            self.written.append(str(path))
        if png is not None:
            with atomic_path(target) as tmp:
                tmp.write_bytes(png)
            self.written.append(str(target))
        if error is not None:
            raise RuntimeError(f"drawing {self.figure_name} failed ({type(error).__name__}: {error}); "
                               f"the data were written: {', '.join(self.written)}") from error
        return self.written
