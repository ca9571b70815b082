"""Private: where a command's results go, and writing data and figure so they never disagree.

A figure describes a data file; an old figure next to a new data file would be read as the
new result.  :meth:`Outputs.write` therefore renders the figure into memory first, sets the
old figure aside, writes each data file atomically (:func:`linsim.storage.write_netcdf`) and
only then writes the new figure atomically; the old figure comes back only if no data file
was replaced.  An interruption or failure at any point leaves the old pair, or new data
without a figure, never a stale figure beside new data (:meth:`Outputs.figure_set_aside`
does the same around a writer that is not ours, such as the sweep's).
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__: list[str] = []


def _stamp(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


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

    @contextlib.contextmanager
    def figure_set_aside(self, *data_names: str):
        """While the data files ``folder/<data_names>`` may be replaced, keep the old figure away.

        The old figure is moved to a hidden name for the duration of the block.  If any data
        file was replaced (its inode, size or time changed), the old figure is deleted; if
        none was (the block failed or was interrupted before writing), it is put back, since
        it still describes the data beside it.
        """
        target = self.folder / self.figure_name
        backup = self.folder / f".{self.figure_name}.previous"
        data = [self.folder / name for name in data_names]
        backup.unlink(missing_ok=True)  # left by a killed run
        before = [_stamp(p) for p in data]
        moved = target.exists()
        if moved:
            os.replace(target, backup)
        try:
            yield
        finally:
            if moved:
                if [_stamp(p) for p in data] == before and not target.exists():
                    os.replace(backup, target)
                else:
                    backup.unlink(missing_ok=True)
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
        with self.figure_set_aside(*(name for name, _ in self.data)):
            for name, writer in self.data:
                path = self.folder / name
                writer(path, self.command)
                self.written.append(str(path))
        if png is not None:
            target.unlink(missing_ok=True)  # still there only when there were no data files
            if self.notes and self.notes[-1].startswith(f"removed the old {self.figure_name}"):
                self.notes.pop()  # replaced, not just removed
            with atomic_path(target) as tmp:
                tmp.write_bytes(png)
            self.written.append(str(target))
        if error is not None:
            raise RuntimeError(f"drawing {self.figure_name} failed ({type(error).__name__}: {error}); "
                               f"the data were written: {', '.join(self.written)}") from error
        return self.written
