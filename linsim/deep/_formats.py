"""Readers of the standard on-disk formats of image data sets (private).

* CIFAR-10 "python version" batches (:func:`read_cifar_batch`): pickled dicts with
  ``b'data'`` (uint8, ``(N, 3072)``: 1024 red, 1024 green, 1024 blue values, each a row-major
  32x32 image) and ``b'labels'`` (N integers in 0..9).
* IDX files of MNIST (:func:`read_idx`): two zero bytes, an element-type code, the number of
  dimensions, the sizes as big-endian uint32, then the data (optionally gzip-compressed).

Each reader checks what it reads (magic numbers, shapes, sizes, label range) and raises a
:class:`DatasetFileError` naming the file and the problem.  :mod:`linsim.deep.data` turns the
arrays into data sets.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = ["DatasetFileError", "read_cifar_batch", "read_idx"]


class DatasetFileError(ValueError):
    """A data file is missing or not in the expected on-disk format (the message says which).

    Examples
    --------
    >>> from linsim.deep import load_dataset
    >>> try:
    ...     load_dataset("mnist", root="/nonexistent-folder")
    ... except DatasetFileError as err:
    ...     print(str(err)[:53])
    data folder '/nonexistent-folder' for dataset 'mnist'
    """


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays (what CIFAR batches contain).

    The CIFAR-10 python batches are pickles written by their authors; reading that standard
    format needs ``pickle``.  This is reading a user's data file, not storing linsim results
    (which are never pickles); restricting the allowed globals keeps a tampered file from
    running code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol-5 pickles of arrays
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 store bytes this way
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise DatasetFileError(f"CIFAR batch refers to {module}.{name}; only numpy arrays are allowed")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one CIFAR-10 python batch.

    Examples
    --------
    >>> import pickle, tempfile
    >>> batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 7]}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    ...     x, y = read_cifar_batch(Path(d) / "data_batch_1")
    >>> x.shape, y.tolist()
    ((2, 3, 32, 32), [3, 7])
    """
    try:
        with open(path, "rb") as fh:
            batch = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except DatasetFileError:
        raise
    except Exception as exc:  # truncated / not a pickle
        raise DatasetFileError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise DatasetFileError(f"{path}: a CIFAR-10 batch is a dict; got {type(batch).__name__}")
    get = lambda key: batch.get(key.encode(), batch.get(key))  # noqa: E731
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise DatasetFileError(f"{path}: missing key b'data' or b'labels' (keys: {sorted(map(str, batch))})")
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetFileError(f"{path}: b'data' must be uint8 of shape (N, 3072); got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DatasetFileError(f"{path}: {labels.size} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetFileError(f"{path}: labels must lie in 0..9; got range {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, expect_ndim: int) -> np.ndarray:
    """Parse one IDX file (optionally gzip-compressed: a ``.gz`` suffix) into an array of the
    file's element type and shape, checking the header against ``expect_ndim`` and the size.

    Examples
    --------
    >>> import tempfile
    >>> raw = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([4, 5, 6])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "labels-idx1-ubyte").write_bytes(raw)
    ...     read_idx(Path(d) / "labels-idx1-ubyte", 1).tolist()
    [4, 5, 6]
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DatasetFileError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 4:
        raise DatasetFileError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_TYPES:
        raise DatasetFileError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000 08 0{expect_ndim})")
    if ndim != expect_ndim:
        raise DatasetFileError(f"{path}: IDX file has {ndim} dimensions; expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFileError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dt = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape)) * dt.itemsize
    if len(raw) - header != expected:
        raise DatasetFileError(
            f"{path}: header says shape {shape} ({expected} data bytes) but the file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dt, offset=header).reshape(shape)
