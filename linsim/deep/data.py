"""Data sets for deep networks: built-in generators, local image folders and user arrays.

Every data set reaches the trainer as one :class:`DeepDataset`: fixed train/test splits,
inputs shaped ``(n, *input_shape)`` and normalized with statistics of the training split,
integer labels, and a fixed subsample of training points used for evaluation.

Built-in data sets (the registry :data:`DATASETS`; nothing is ever downloaded)
-------------------------------------------------------------------------------
========== ============== ============ ===================================================
name       input_shape    n_train/test source
========== ============== ============ ===================================================
mnist1d    (1, 40)        4000 / 1000  generated locally by the ``mnist1d`` package
digits     (1, 8, 8)      1500 / 297   scikit-learn's bundled 8x8 digits
synthetic  (d,) = (200,)  5000 / 1000  Gaussian inputs, random tanh-teacher labels
cifar10    (3, 32, 32)    50000 / 10000 a local folder (python-pickle batches)
mnist      (1, 28, 28)    60000 / 10000 a local folder (IDX files)
========== ============== ============ ===================================================

Conventions
-----------
* ``n_train`` / ``n_test`` take the first samples of the fixed split (a prefix), so a
  smaller data set is a subset of a larger one with the same seed.
* Normalization (``normalize``): ``"channel"`` subtracts the per-channel mean and divides
  by the per-channel standard deviation, both computed in float64 over the (used) training
  split and applied to both splits; channels are axis 1 of ``(n, C, ...)`` inputs, and a
  vector input ``(n, d)`` is one channel.  ``"global"`` uses one mean/std over everything,
  ``"none"`` leaves the inputs as they are.  Each data set has a default (``synthetic`` and
  user arrays: ``"none"``, so the input spectrum is what was asked for).
* ``eval_stride=s`` evaluates on training samples ``0, s, 2s, ...`` (the deep-network
  study used ``s = 2``).
* All randomness flows from ``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = [
    "DATASETS",
    "DatasetEntry",
    "DatasetFileError",
    "DeepDataset",
    "NORMALIZATIONS",
    "Normalization",
    "RawSplits",
    "load_dataset",
    "register_dataset",
    "synthetic_spectrum",
]

ENV_DATA_ROOT = "LINSIM_DATA"
_DTYPES = {"float32": np.float32, "float64": np.float64}


class DatasetFileError(ValueError):
    """A data file is missing or not in the expected on-disk format (the message says which)."""


# --------------------------------------------------------------------------------------
# typed contracts
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Normalization:
    """Affine input normalization ``x -> (x - mean[c]) / std[c]`` per channel ``c``.

    Attributes
    ----------
    kind : str
        A key of :data:`NORMALIZATIONS` (``"channel"``, ``"global"`` or ``"none"``).
    mean, std : tuple of float
        One entry per channel (axis 1 of ``(n, C, ...)`` inputs; one entry for vector
        inputs ``(n, d)`` or for ``kind="global"``).  ``"none"`` stores ``(0.0,)`` and
        ``(1.0,)``.  Computed in float64 from the training split.

    Examples
    --------
    >>> norm = Normalization("channel", mean=(1.0,), std=(2.0,))
    >>> norm.apply(np.array([[3.0, 5.0]]))
    array([[1., 2.]])
    """

    kind: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        if self.kind not in NORMALIZATIONS:
            raise ValueError(f"Normalization.kind must be one of {sorted(NORMALIZATIONS)}; got {self.kind!r}")
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"Normalization.mean and .std need the same non-zero length; got {len(self.mean)} and {len(self.std)}")
        for i, s in enumerate(self.std):
            if not (np.isfinite(s) and s > 0):
                raise ValueError(f"Normalization.std[{i}] must be finite and > 0; got {s}")

    def apply(self, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        """Return normalized inputs ``(n, *input_shape)`` as a new array of ``dtype``.

        The arithmetic is done in float64 and cast at the end.
        """
        X = np.asarray(X, dtype=np.float64)
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        if mean.size > 1:  # per channel: broadcast along axis 1
            shape = (1, mean.size) + (1,) * (X.ndim - 2)
            if X.ndim < 2 or X.shape[1] != mean.size:
                raise ValueError(f"inputs of shape {X.shape} do not have {mean.size} channels on axis 1")
            mean, std = mean.reshape(shape), std.reshape(shape)
        return ((X - mean) / std).astype(dtype, copy=False)


def _stats_channel(X: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if X.ndim == 2:  # vectors: one channel
        return (float(X.mean()),), (float(X.std()),)
    axes = (0,) + tuple(range(2, X.ndim))
    return tuple(float(v) for v in X.mean(axis=axes)), tuple(float(v) for v in X.std(axis=axes))


def _stats_global(X: np.ndarray):
    return (float(X.mean()),), (float(X.std()),)


def _stats_none(X: np.ndarray):
    return (0.0,), (1.0,)


#: Normalization kinds: name -> function of the float64 training inputs returning (mean, std).
NORMALIZATIONS: dict[str, Callable[[np.ndarray], tuple]] = {
    "channel": _stats_channel,
    "global": _stats_global,
    "none": _stats_none,
}


def _fit_normalization(kind: str, X_train: np.ndarray) -> Normalization:
    if kind not in NORMALIZATIONS:
        raise ValueError(f"unknown normalize={kind!r}; valid: {sorted(NORMALIZATIONS)}")
    mean, std = NORMALIZATIONS[kind](X_train)
    for c, s in enumerate(std):
        if not s > 0:
            raise ValueError(
                f"normalize={kind!r}: channel {c} of the training inputs is constant (std 0); "
                "it cannot be standardized - use normalize='none' or drop the channel"
            )
    return Normalization(kind, mean, std)


@dataclass(frozen=True)
class RawSplits:
    """What a dataset loader returns: un-normalized float64 splits.

    Attributes
    ----------
    X_train, X_test : ndarray (n, *input_shape) float64
    y_train, y_test : ndarray (n,) int64 in ``[0, n_classes)``
    n_classes : int
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


@dataclass(frozen=True)
class DeepDataset:
    """A data set ready for training: fixed splits, normalized inputs, evaluation subsample.

    Attributes
    ----------
    name : str
        Registry name (``"arrays"`` for user arrays).
    X_train : ndarray (n_train, *input_shape), float32 (or float64 if requested)
        Normalized training inputs (what the model sees).
    y_train : ndarray (n_train,) int64 in ``[0, n_classes)``
    X_test : ndarray (n_test, *input_shape)
    y_test : ndarray (n_test,) int64
    n_classes : int
    input_shape : tuple of int
        ``(d,)`` vectors, ``(C, L)`` 1-D signals, ``(C, H, W)`` images.
    eval_index : ndarray (n_eval,) int64
        Indices into the training split at which the trainer evaluates.
    normalization : Normalization
        Statistics used (from the training split).
    params : dict of str -> str | int | float | bool
        Everything needed to rebuild the data set with :func:`load_dataset`
        (``load_dataset(**...)`` after popping ``"dataset"``), scalars only.

    Examples
    --------
    >>> ds = load_dataset("digits", n_train=100, n_test=20, eval_stride=2)
    >>> ds.X_train.shape, ds.X_train.dtype, ds.n_classes, ds.eval_index[:3]
    ((100, 1, 8, 8), dtype('float32'), 10, array([0, 2, 4]))
    >>> ds.X_eval.shape
    (50, 1, 8, 8)
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    input_shape: tuple[int, ...]
    eval_index: np.ndarray
    normalization: Normalization
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for split in ("train", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if tuple(X.shape[1:]) != tuple(self.input_shape):
                raise ValueError(f"X_{split} has shape {X.shape}; expected (n, *{self.input_shape})")
            if y.shape != (X.shape[0],) or y.dtype != np.int64:
                raise ValueError(f"y_{split} must be int64 of shape ({X.shape[0]},); got {y.dtype} {y.shape}")
        idx = self.eval_index
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= self.X_train.shape[0]:
            raise ValueError(f"eval_index must be non-empty indices into the {self.X_train.shape[0]} training samples")
        for key, value in self.params.items():
            if not isinstance(value, (str, int, float, bool)):
                raise TypeError(f"params[{key!r}] must be a str/int/float/bool scalar; got {type(value).__name__}")

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.X_test.shape[0])

    @property
    def X_eval(self) -> np.ndarray:
        """Training inputs at ``eval_index``, ``(n_eval, *input_shape)`` (a copy)."""
        return self.X_train[self.eval_index]

    @property
    def y_eval(self) -> np.ndarray:
        """Training labels at ``eval_index``, ``(n_eval,)``."""
        return self.y_train[self.eval_index]

    def __repr__(self) -> str:
        return (
            f"DeepDataset({self.name!r}, input_shape={self.input_shape}, n_classes={self.n_classes}, "
            f"n_train={self.n_train}, n_test={self.n_test}, n_eval={self.eval_index.size}, "
            f"dtype={self.X_train.dtype}, normalize={self.normalization.kind!r})"
        )


@dataclass(frozen=True)
class DatasetEntry:
    """One registered data set.

    Attributes
    ----------
    name : str
    loader : callable
        ``loader(*, root, n_train, n_test, seed, **options) -> RawSplits``.  ``root`` is a
        :class:`pathlib.Path` or None; ``n_train``/``n_test`` are the requested sizes or
        None (loaders that generate data may use them; the caller takes prefixes anyway).
    options : mapping of str -> default
        The loader's extra keyword options and their defaults (scalars).
    normalize : str
        Default normalization kind.
    needs_root : bool
        Whether the data come from a local folder (``root`` or ``$LINSIM_DATA``).
    description : str
    """

    name: str
    loader: Callable[..., RawSplits]
    options: Mapping[str, Any] = field(default_factory=dict)
    normalize: str = "channel"
    needs_root: bool = False
    description: str = ""


#: The dataset registry: name -> :class:`DatasetEntry`.
DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add ``entry`` to :data:`DATASETS` (a name may be registered only once).

    Examples
    --------
    >>> "digits" in DATASETS and "arrays" not in DATASETS
    True
    """
    if entry.name in DATASETS or entry.name == "arrays":
        raise ValueError(f"a dataset named {entry.name!r} is already registered")
    if entry.normalize not in NORMALIZATIONS:
        raise ValueError(f"{entry.name}: normalize must be one of {sorted(NORMALIZATIONS)}")
    DATASETS[entry.name] = entry
    return entry


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _check_count(name: str, value, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return int(value)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def _check_dtype(dtype) -> str:
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}")
    return key


def _check_finite(name: str, X: np.ndarray) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains {X[pos]} at index {pos}; inputs must be finite")


def _check_labels(name: str, y, n: int, n_classes: int | None = None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match its inputs; got {y.shape}")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels; got dtype {y.dtype}")
    if y.size and y.min() < 0:
        i = int(np.argmin(y))
        raise ValueError(f"{name}[{i}] = {y[i]} is negative; labels must lie in [0, n_classes)")
    if n_classes is not None and y.size and y.max() >= n_classes:
        i = int(np.argmax(y))
        raise ValueError(f"{name}[{i}] = {y[i]} is out of range for n_classes={n_classes}")
    return y.astype(np.int64)


def _resolve_root(root, name: str) -> Path:
    if root is None:
        env = os.environ.get(ENV_DATA_ROOT)
        if not env:
            raise DatasetFileError(
                f"dataset {name!r} is read from a local folder: pass root=PATH or set the environment "
                f"variable {ENV_DATA_ROOT}=PATH. {_HOW_TO_GET[name]}"
            )
        root = env
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetFileError(f"data folder {str(root)!r} for dataset {name!r} does not exist. {_HOW_TO_GET[name]}")
    return root


def _scalar_option(name: str, key: str, value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if not isinstance(value, (str, int, float, bool)):
        raise TypeError(f"dataset {name!r}: option {key}={value!r} must be a str/int/float/bool scalar")
    return value


# --------------------------------------------------------------------------------------
# the public entry point
# --------------------------------------------------------------------------------------
def load_dataset(
    spec,
    *,
    root=None,
    n_train: int | None = None,
    n_test: int | None = None,
    eval_stride: int = 1,
    dtype="float32",
    seed: int = 0,
    normalize: str | None = None,
    **options,
) -> DeepDataset:
    """Load a registered data set or wrap user arrays as a :class:`DeepDataset`.

    Parameters
    ----------
    spec : str or tuple
        A name in :data:`DATASETS`, or the 4-tuple ``(X_train, y_train, X_test, y_test)``
        of user arrays (inputs ``(n, *input_shape)`` real and finite, labels ``(n,)``
        integers ``>= 0``; ``n_classes`` defaults to ``max label + 1``, or pass the option
        ``n_classes=``).
    root : path-like, optional
        Folder holding on-disk data sets (``cifar10``, ``mnist``); default ``$LINSIM_DATA``.
    n_train, n_test : int, optional
        Use only the first ``n_train`` / ``n_test`` samples of the fixed split
        (default: all).  Asking for more than the split holds is an error.
    eval_stride : int
        Evaluate on every ``eval_stride``-th training sample.
    dtype : {"float32", "float64"}
        Dtype of the returned inputs (normalization is computed in float64).
    seed : int
        Seed of the data set's randomness (generation, or the digits split).
    normalize : {"channel", "global", "none"}, optional
        Normalization kind (default: the data set's own, see the module docstring).
    **options
        Data-set specific options, e.g. ``c=0.5, d=200`` for ``synthetic``; the valid ones
        are ``DATASETS[name].options``.

    Returns
    -------
    DeepDataset

    Raises
    ------
    KeyError
        Unknown data-set name (the message lists the valid ones).
    ValueError, TypeError
        Bad sizes, options, arrays (the message names the argument and index).
    DatasetFileError
        Missing or malformed data files (the message says what to put where).

    Examples
    --------
    >>> ds = load_dataset("synthetic", c=0.5, d=20, n_train=64, n_test=16, seed=3)
    >>> ds.input_shape, ds.n_classes, ds.params["c"], ds.normalization.kind
    ((20,), 5, 0.5, 'none')
    >>> rng = np.random.default_rng(0)
    >>> user = load_dataset((rng.normal(size=(6, 3)), np.arange(6) % 2,
    ...                      rng.normal(size=(2, 3)), np.array([0, 1])), dtype="float64")
    >>> user.name, user.n_classes, user.X_train.dtype
    ('arrays', 2, dtype('float64'))
    """
    n_train = _check_count("n_train", n_train)
    n_test = _check_count("n_test", n_test)
    eval_stride = _check_count("eval_stride", eval_stride, allow_none=False)
    dtype = _check_dtype(dtype)
    seed = _check_seed(seed)

    if isinstance(spec, str):
        if spec not in DATASETS:
            raise KeyError(f"unknown dataset {spec!r}; valid names: {sorted(DATASETS)} (or a 4-tuple of arrays)")
        entry = DATASETS[spec]
        unknown = sorted(set(options) - set(entry.options))
        if unknown:
            raise TypeError(
                f"dataset {spec!r} does not take option(s) {unknown}; valid options: {sorted(entry.options) or 'none'}"
            )
        opts = {**entry.options, **options}
        opts = {k: _scalar_option(spec, k, v) for k, v in opts.items()}
        root_path = _resolve_root(root, spec) if entry.needs_root else None
        raw = entry.loader(root=root_path, n_train=n_train, n_test=n_test, seed=seed, **opts)
        name, default_norm = spec, entry.normalize
        params: dict[str, Any] = {"dataset": spec}
    elif isinstance(spec, (tuple, list)):
        if len(spec) != 4:
            raise ValueError(f"user arrays must be the 4-tuple (X_train, y_train, X_test, y_test); got {len(spec)} items")
        unknown = sorted(set(options) - {"n_classes"})
        if unknown:
            raise TypeError(f"user arrays take only the option 'n_classes'; got {unknown}")
        raw = _from_arrays(*spec, n_classes=options.get("n_classes"))
        opts = {"n_classes": raw.n_classes}
        name, default_norm = "arrays", "none"
        params = {"dataset": "arrays", "fingerprint": _fingerprint(raw)}
    else:
        raise TypeError(f"spec must be a dataset name or a 4-tuple of arrays; got {type(spec).__name__}")

    X_train, y_train = _prefix("training", name, raw.X_train, raw.y_train, n_train)
    X_test, y_test = _prefix("test", name, raw.X_test, raw.y_test, n_test)
    kind = default_norm if normalize is None else normalize
    norm = _fit_normalization(kind, X_train)
    eval_index = np.arange(0, X_train.shape[0], eval_stride, dtype=np.int64)
    params.update(
        n_train=int(X_train.shape[0]), n_test=int(X_test.shape[0]), eval_stride=eval_stride,
        dtype=dtype, seed=seed, normalize=kind, **opts,
    )
    return DeepDataset(
        name=name,
        X_train=norm.apply(X_train, _DTYPES[dtype]),
        y_train=np.ascontiguousarray(y_train, dtype=np.int64),
        X_test=norm.apply(X_test, _DTYPES[dtype]),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        n_classes=int(raw.n_classes),
        input_shape=tuple(int(s) for s in X_train.shape[1:]),
        eval_index=eval_index,
        normalization=norm,
        params=params,
    )


def _prefix(split: str, name: str, X, y, n):
    if n is None:
        return X, y
    if n > X.shape[0]:
        raise ValueError(f"dataset {name!r} has {X.shape[0]} {split} samples; n_{split[:-3] if split == 'training' else split}={n} requested")
    return X[:n], y[:n]


def _fingerprint(raw: RawSplits) -> str:
    h = hashlib.sha256()
    for a in (raw.X_train, raw.y_train, raw.X_test, raw.y_test):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _from_arrays(X_train, y_train, X_test, y_test, n_classes=None) -> RawSplits:
    arrays = {}
    for name, X in (("X_train", X_train), ("X_test", X_test)):
        X = np.asarray(X)
        if X.dtype == bool or not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"{name} must be a real numeric array; got dtype {X.dtype}")
        if X.ndim < 2 or X.shape[0] == 0 or 0 in X.shape:
            raise ValueError(f"{name} must have shape (n, *input_shape) with n >= 1 and no empty axis; got {X.shape}")
        X = X.astype(np.float64)
        _check_finite(name, X)
        arrays[name] = X
    if arrays["X_train"].shape[1:] != arrays["X_test"].shape[1:]:
        raise ValueError(
            f"X_train samples have shape {arrays['X_train'].shape[1:]} but X_test samples {arrays['X_test'].shape[1:]}"
        )
    if n_classes is not None:
        n_classes = _check_count("n_classes", n_classes, allow_none=False)
    ytr = _check_labels("y_train", y_train, arrays["X_train"].shape[0], n_classes)
    yte = _check_labels("y_test", y_test, arrays["X_test"].shape[0], n_classes)
    if n_classes is None:
        n_classes = int(max(ytr.max(), yte.max())) + 1
    if n_classes < 2:
        raise ValueError(f"user arrays need at least 2 classes; labels give n_classes={n_classes}")
    return RawSplits(arrays["X_train"], ytr, arrays["X_test"], yte, n_classes)


# --------------------------------------------------------------------------------------
# built-in generators
# --------------------------------------------------------------------------------------
def _load_digits(*, root, n_train, n_test, seed, test_size):
    """sklearn digits, one seeded permutation, the last ``test_size`` images are the test split."""
    from sklearn.datasets import load_digits as _sk_digits

    test_size = _check_count("test_size", test_size, allow_none=False)
    bunch = _sk_digits()
    X = np.asarray(bunch.images, dtype=np.float64)[:, None, :, :]  # (1797, 1, 8, 8), values 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    if test_size >= X.shape[0]:
        raise ValueError(f"digits: test_size={test_size} leaves no training images (there are {X.shape[0]})")
    order = np.random.default_rng(np.random.SeedSequence(seed)).permutation(X.shape[0])
    tr, te = order[: X.shape[0] - test_size], order[X.shape[0] - test_size:]
    return RawSplits(X[tr], y[tr], X[te], y[te], 10)


@functools.lru_cache(maxsize=8)
def _mnist1d_cached(num_samples: int, seed: int, train_split: float, shuffle_seq: bool):
    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    args.train_split, args.shuffle_seq = train_split, shuffle_seq
    # make_dataset seeds Python's and NumPy's global generators; they are the caller's, so
    # they are put back as they were.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = mnist1d.data.make_dataset(args)  # local generation from templates: no network
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    out = tuple(np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test"))
    for a in out:
        a.setflags(write=False)
    return out


def _load_mnist1d(*, root, n_train, n_test, seed, num_samples, train_split, shuffle_seq):
    num_samples = _check_count("num_samples", num_samples, allow_none=False)
    if not 0 < float(train_split) < 1:
        raise ValueError(f"mnist1d: train_split must lie in (0, 1); got {train_split}")
    if num_samples < 20:
        raise ValueError(f"mnist1d: num_samples must be >= 20 (2 per class in each split); got {num_samples}")
    x, y, xt, yt = _mnist1d_cached(num_samples, seed, float(train_split), bool(shuffle_seq))
    return RawSplits(
        x.astype(np.float64)[:, None, :], y.astype(np.int64), xt.astype(np.float64)[:, None, :], yt.astype(np.int64), 10
    )


def synthetic_spectrum(d: int, c: float, b: float | None = None) -> np.ndarray:
    """Input-correlation eigenvalues ``b * exp(-c * i)``, ``i = 0 .. d-1``, of ``synthetic``.

    ``b`` defaults to the deep-network study's ``50 c`` for ``c > 0`` and 1 for ``c = 0``.

    Examples
    --------
    >>> synthetic_spectrum(3, 0.5).round(4)
    array([25.    , 15.1633,  9.197 ])
    >>> synthetic_spectrum(2, 0.0)
    array([1., 1.])
    """
    d = _check_count("d", d, allow_none=False)
    c = float(c)
    if not (np.isfinite(c) and c >= 0):
        raise ValueError(f"synthetic: c must be a finite number >= 0; got {c}")
    if b is None:
        b = 50.0 * c if c > 0 else 1.0
    b = float(b)
    if not (np.isfinite(b) and b > 0):
        raise ValueError(f"synthetic: b must be a finite number > 0; got {b}")
    return b * np.exp(-c * np.arange(d, dtype=np.float64))


def _load_synthetic(*, root, n_train, n_test, seed, d, c, b, hidden, n_classes):
    n_train = 5000 if n_train is None else n_train
    n_test = 1000 if n_test is None else n_test
    hidden = _check_count("hidden", hidden, allow_none=False)
    n_classes = _check_count("n_classes", n_classes, allow_none=False)
    if n_classes < 2:
        raise ValueError(f"synthetic: n_classes must be >= 2; got {n_classes}")
    lam = synthetic_spectrum(d, c, None if b == "auto" or b is None else b)
    d = lam.size
    teacher_ss, train_ss, test_ss = np.random.SeedSequence(seed).spawn(3)
    t = np.random.default_rng(teacher_ss)
    W1 = t.standard_normal((hidden, d)) / np.sqrt(d)
    W2 = t.standard_normal((n_classes, hidden)) / np.sqrt(hidden)
    sd = np.sqrt(lam)

    def draw(ss, n):
        # row-major draw: the first m rows of a larger draw equal a draw of m rows
        X = np.random.default_rng(ss).standard_normal((n, d)) * sd
        y = np.argmax(np.tanh(X @ W1.T) @ W2.T, axis=1).astype(np.int64)
        return X, y

    return RawSplits(*draw(train_ss, n_train), *draw(test_ss, n_test), n_classes)


# --------------------------------------------------------------------------------------
# local folders: CIFAR-10 (python batches) and MNIST (IDX)
# --------------------------------------------------------------------------------------
_HOW_TO_GET = {
    "cifar10": (
        "Expected the folder 'cifar-10-batches-py' (inside root, or root itself) holding data_batch_1 .. "
        "data_batch_5 and test_batch: unpack 'CIFAR-10 python version' (cifar-10-python.tar.gz) from "
        "https://www.cs.toronto.edu/~kriz/cifar.html there."
    ),
    "mnist": (
        "Expected train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (each optionally .gz) in root, root/mnist or root/MNIST/raw: the four "
        "IDX files from http://yann.lecun.com/exdb/mnist/ (or any mirror)."
    ),
}

_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)


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


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def _load_cifar10(*, root, n_train, n_test, seed):
    folder = root / "cifar-10-batches-py"
    if not folder.is_dir():
        folder = root
    missing = [f for f in _CIFAR_TRAIN + _CIFAR_TEST if not (folder / f).is_file()]
    if missing:
        raise DatasetFileError(f"cifar10: missing {missing} in {str(folder)!r}. {_HOW_TO_GET['cifar10']}")
    parts = {}
    for split, files in (("train", _CIFAR_TRAIN), ("test", _CIFAR_TEST)):
        need = n_train if split == "train" else n_test
        xs, ys, have = [], [], 0
        for f in files:  # read only as many batches as the requested prefix needs
            x, y = _read_cifar_batch(folder / f)
            xs.append(x)
            ys.append(y)
            have += x.shape[0]
            if need is not None and have >= need:
                break
        parts[split] = (np.concatenate(xs).astype(np.float64) / 255.0, np.concatenate(ys))
    return RawSplits(*parts["train"], *parts["test"], 10)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path, expect_ndim: int) -> np.ndarray:
    """Parse one IDX file (optionally gzip-compressed) into an array, checking its header."""
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


def _find_idx(root: Path, stem: str) -> Path | None:
    for folder in (root, root / "mnist", root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _load_mnist(*, root, n_train, n_test, seed):
    stems = {
        "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
        "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
    }
    paths = {k: _find_idx(root, s) for k, s in stems.items()}
    missing = [stems[k] for k, p in paths.items() if p is None]
    if missing:
        raise DatasetFileError(f"mnist: missing {missing} under {str(root)!r}. {_HOW_TO_GET['mnist']}")
    out = []
    for split in ("train", "test"):
        X = _read_idx(paths[f"{split}_x"], 3)
        y = _read_idx(paths[f"{split}_y"], 1)
        if X.shape[0] != y.shape[0]:
            raise DatasetFileError(f"mnist: {paths[f'{split}_x']} has {X.shape[0]} images but {paths[f'{split}_y']} has {y.shape[0]} labels")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DatasetFileError(f"mnist: {paths[f'{split}_y']} labels must lie in 0..9")
        out += [X.astype(np.float64)[:, None, :, :] / 255.0, y.astype(np.int64)]
    return RawSplits(*out, 10)


register_dataset(DatasetEntry(
    "mnist1d", _load_mnist1d, {"num_samples": 5000, "train_split": 0.8, "shuffle_seq": False},
    description="MNIST-1D generated locally (40-point signals, 10 classes); seed is the generator's seed",
))
register_dataset(DatasetEntry(
    "digits", _load_digits, {"test_size": 297},
    description="scikit-learn's 1797 8x8 digits, seeded fixed split 1500 / 297",
))
register_dataset(DatasetEntry(
    "synthetic", _load_synthetic, {"d": 200, "c": 0.5, "b": "auto", "hidden": 50, "n_classes": 5},
    normalize="none",
    description="Gaussian inputs with eigenvalues b*exp(-c*i), labels = argmax of a random tanh MLP d->50->5",
))
register_dataset(DatasetEntry(
    "cifar10", _load_cifar10, needs_root=True, description="CIFAR-10 from a local folder (python batches)",
))
register_dataset(DatasetEntry(
    "mnist", _load_mnist, needs_root=True, description="MNIST from a local folder (IDX files)",
))
