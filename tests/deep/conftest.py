"""Fixtures for the deep-network tests: small fake data sets written in the official formats.

The writers here follow the published format descriptions (CIFAR-10 "python version" batches,
the IDX format of MNIST) independently of linsim's readers, so the readers are tested against
files they did not produce.
"""

import gzip
import pickle
import struct

import numpy as np
import pytest


def write_cifar_batch(path, data: np.ndarray, labels, protocol=2):
    """One CIFAR-10 python batch: a pickled dict with bytes keys, as the official files."""
    batch = {
        b"batch_label": b"fake batch",
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(data, dtype=np.uint8),
        b"filenames": [f"img{i}.png".encode() for i in range(len(labels))],
    }
    with open(path, "wb") as fh:
        pickle.dump(batch, fh, protocol=protocol)


def write_idx(path, array: np.ndarray, compress: bool = False):
    """An IDX file of unsigned bytes: magic 0x00 0x00 0x08 ndim, big-endian uint32 sizes, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(payload)
    else:
        with open(path, "wb") as fh:
            fh.write(payload)


@pytest.fixture
def fake_cifar(tmp_path):
    """A CIFAR-10 folder with 5 training batches of 4 images and a test batch of 3.

    Returns (root, train_data (20, 3072) uint8, train_labels (20,), test_data, test_labels).
    """
    rng = np.random.default_rng(7)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    datas, labels = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=4)
        write_cifar_batch(folder / f"data_batch_{i}", x, y)
        datas.append(x)
        labels.append(y)
    xt = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
    yt = np.array([9, 0, 4])
    write_cifar_batch(folder / "test_batch", xt, yt)
    return tmp_path, np.concatenate(datas), np.concatenate(labels), xt, yt


@pytest.fixture
def fake_mnist(tmp_path):
    """Four MNIST IDX files (train 12 images, test 5 images of 28x28); train files gzipped.

    Returns (root, train_images (12, 28, 28) uint8, train_labels, test_images, test_labels).
    """
    rng = np.random.default_rng(11)
    xtr = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    ytr = rng.integers(0, 10, size=12).astype(np.uint8)
    xte = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    yte = rng.integers(0, 10, size=5).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", xtr, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", ytr, compress=True)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", xte)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", yte)
    return tmp_path, xtr, ytr, xte, yte
