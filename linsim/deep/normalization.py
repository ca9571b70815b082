"""Input normalization of deep-network data sets: statistics of the training split, applied
to every split.

Kinds (the registry :data:`NORMALIZATIONS`): ``"channel"`` subtracts the per-channel mean and
divides by the per-channel standard deviation (channels are axis 1 of ``(n, C, ...)`` inputs; a
vector input ``(n, d)`` is one channel), ``"global"`` uses one mean/std over all training
values, ``"none"`` leaves the inputs as they are.  Statistics are population moments computed
in float64, in two passes over blocks of samples, so an uint8 image set is never expanded to
float64 as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from linsim.registry import Registry

__all__ = ["NORMALIZATIONS", "Normalization", "fit_normalization"]


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
        NORMALIZATIONS.lookup(self.kind, what="Normalization.kind")
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(
                f"Normalization.mean and .std need the same non-zero length; got {len(self.mean)} and {len(self.std)}"
            )
        for i, s in enumerate(self.std):
            if not (np.isfinite(s) and s > 0):
                raise ValueError(f"Normalization.std[{i}] must be finite and > 0; got {s}")

    def apply(self, X: np.ndarray, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
        """Return normalized inputs ``((X * scale) - mean) / std`` as a new array of ``dtype``.

        Parameters
        ----------
        X : ndarray (n, *input_shape), any real dtype (e.g. uint8 image bytes)
        dtype : numpy dtype of the result
        scale : float
            Factor from the stored values to the physical ones (1/255 for image bytes).

        The arithmetic is done in float64 on blocks of samples and cast into the result,
        so an uint8 data set is never expanded to float64 as a whole.
        """
        X = np.asarray(X)
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        if mean.size > 1:  # per channel: broadcast along axis 1
            if X.ndim < 3 or X.shape[1] != mean.size:
                raise ValueError(f"inputs of shape {X.shape} do not have {mean.size} channels on axis 1")
            shape = (1, mean.size) + (1,) * (X.ndim - 2)
            mean, std = mean.reshape(shape), std.reshape(shape)
        out = np.empty(X.shape, dtype=dtype)
        for lo, block in _blocks(X, scale):
            out[lo:lo + block.shape[0]] = (block - mean) / std
        return out


_BLOCK_BYTES = 64 * 2**20  # float64 working set per block


def _blocks(X: np.ndarray, scale: float = 1.0):
    """Yield ``(start, float64 block of X * scale)`` over the samples of ``X``."""
    per_sample = max(1, int(np.prod(X.shape[1:])) * 8)
    step = max(1, _BLOCK_BYTES // per_sample)
    for lo in range(0, X.shape[0], step):
        block = X[lo:lo + step].astype(np.float64)
        if scale != 1.0:
            block *= scale
        yield lo, block


def _moments(X: np.ndarray, scale: float, per_channel: bool):
    """Mean and (population) std of ``X * scale`` in float64, over all axes but the channel
    axis 1 (``per_channel``) or over everything; two passes over blocks of samples."""
    axes = (0,) + tuple(range(2, X.ndim)) if per_channel else None
    n = X.shape[0] * (int(np.prod(X.shape[2:])) if per_channel else int(np.prod(X.shape[1:])))
    total = sum(block.sum(axis=axes) for _, block in _blocks(X, scale))
    mean = np.atleast_1d(total / n)
    shape = (1, -1) + (1,) * (X.ndim - 2) if per_channel else (1,) * X.ndim
    mu = mean.reshape(shape)
    sq = sum(((block - mu) ** 2).sum(axis=axes) for _, block in _blocks(X, scale))
    std = np.atleast_1d(np.sqrt(sq / n))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _stats_channel(X: np.ndarray, scale: float = 1.0):
    # vector inputs (n, d) are one channel
    return _moments(X, scale, per_channel=X.ndim > 2)


def _stats_global(X: np.ndarray, scale: float = 1.0):
    return _moments(X, scale, per_channel=False)


def _stats_none(X: np.ndarray, scale: float = 1.0):
    return (0.0,), (1.0,)


#: Normalization kinds: name -> ``stats(X_train, scale) -> (mean, std)`` (tuples of float,
#: statistics of the physical training inputs ``X_train * scale``, in float64).
NORMALIZATIONS: Registry[Callable[..., tuple]] = Registry(
    "normalization", callable_only=True, unknown="unknown normalize={name!r}",
    entries={"channel": _stats_channel, "global": _stats_global, "none": _stats_none})


def fit_normalization(kind: str, X_train: np.ndarray, scale: float = 1.0) -> Normalization:
    """The :class:`Normalization` of ``kind`` fitted to training inputs ``X_train * scale``.

    Parameters
    ----------
    kind : str
        A key of :data:`NORMALIZATIONS`.
    X_train : ndarray (n, *input_shape), any real dtype
        Stored training inputs (channels on axis 1 of ``(n, C, ...)``).
    scale : float
        Stored-to-physical factor (1/255 for image bytes).

    A constant channel (std 0) is refused, not clamped.

    Examples
    --------
    >>> fit_normalization("global", np.array([[0.0, 2.0], [4.0, 6.0]]))
    Normalization(kind='global', mean=(3.0,), std=(2.23606797749979,))
    """
    mean, std = NORMALIZATIONS[kind](X_train, scale)
    for c, s in enumerate(std):
        if not s > 0:
            raise ValueError(
                f"normalize={kind!r}: channel {c} of the training inputs is constant (std 0); "
                "it cannot be standardized - use normalize='none' or drop the channel"
            )
    return Normalization(kind, mean, std)
