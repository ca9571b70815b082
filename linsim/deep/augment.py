"""Data augmentation of per-model batches ``(R, B, *input_shape)``, outside ``vmap``.

Each run draws its own random offsets and flips from its own ``numpy.random.Generator``
(one stream per run, spawned from the configuration's ``SeedSequence``), so run ``r`` sees
the same augmented batches whether it is trained alone or in an ensemble of any size.
The random numbers are drawn on the CPU; the crop itself is one vectorized gather on the
batch's device.

Kinds (chosen from the number of input dimensions)
--------------------------------------------------
* images ``(C, H, W)``: random crop with zero padding ``pad`` (default 4) on every side,
  i.e. a shift by ``(dy, dx)`` uniform in ``[-pad, pad]^2`` with zero fill, then a
  horizontal flip with probability 1/2;
* 1-D signals ``(C, L)``: a random shift uniform in ``[-pad, pad]`` with zero fill (no
  flip: a reversed signal is a different signal).

Plain feature vectors ``(d,)`` have no spatial axis and are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Sequence

import numpy as np
import torch

from linsim.registry import Registry

__all__ = ["AUGMENTATIONS", "Augmentation", "augment_batch", "augmentation_kind"]

@dataclass(frozen=True)
class Augmentation:
    """One augmentation kind: which inputs it applies to and what it draws per sample.

    Attributes
    ----------
    name : str
    input_ndim : int
        Number of dimensions of one input it applies to (``(C, L)``: 2, ``(C, H, W)``: 3).
    shift_axes : int
        Trailing axes shifted by a uniform offset in ``[-pad, pad]`` with zero fill.
    flip : bool
        Whether the last axis is mirrored with probability 1/2 (horizontal flip).
    """

    name: str
    input_ndim: int
    shift_axes: int
    flip: bool


#: Registry of augmentation kinds: name -> :class:`Augmentation`, chosen by input dimensions.
AUGMENTATIONS: Registry[Augmentation] = Registry(
    "augmentation kind", type=Augmentation, key=attrgetter("name"),
    entries=[(a.name, a) for a in (Augmentation("signal", 2, 1, False), Augmentation("image", 3, 2, True))])


def augmentation_kind(input_shape: Sequence[int]) -> str:
    """The augmentation kind for inputs of ``input_shape``: ``"signal"`` or ``"image"``.

    Examples
    --------
    >>> augmentation_kind((3, 32, 32)), augmentation_kind((1, 40))
    ('image', 'signal')
    """
    shape = tuple(int(s) for s in input_shape)
    for entry in AUGMENTATIONS.values():
        if entry.input_ndim == len(shape):
            return entry.name
    raise ValueError(
        f"augmentation needs 1-D signals (C, L) or images (C, H, W); got input_shape {shape}"
        + (" (plain feature vectors have no axis to shift: set augment=False)" if len(shape) == 1 else "")
    )


def _shift_gather(x: torch.Tensor, offsets: torch.Tensor, axis: int, pad: int) -> torch.Tensor:
    """Shift ``x`` (N, ..., L, ...) along ``axis`` by per-sample ``offsets`` (N,), zero fill."""
    L = x.shape[axis]
    widths = [0, 0] * (x.ndim - axis - 1) + [pad, pad]
    padded = torch.nn.functional.pad(x, widths)
    idx = offsets.view(-1, 1) + pad + torch.arange(L, device=x.device).view(1, -1)  # (N, L)
    shape = [1] * x.ndim
    shape[0], shape[axis] = x.shape[0], L
    idx = idx.view(shape).expand(*x.shape[:axis], L, *padded.shape[axis + 1:])
    return padded.gather(axis, idx)


def augment_batch(x: torch.Tensor, rngs: Sequence[np.random.Generator], *, pad: int = 4) -> torch.Tensor:
    """Augment a per-model batch ``x`` (R, B, *input_shape); run ``r`` draws from ``rngs[r]``.

    Parameters
    ----------
    x : Tensor (R, B, *input_shape)
        Un-augmented inputs; ``input_shape`` is ``(C, H, W)`` or ``(C, L)``.
    rngs : sequence of R numpy Generators
        One stream per run; each call draws ``B`` offsets per shifted axis (and ``B`` flips
        for images) from it.
    pad : int
        Maximum shift (zero padding) in samples/pixels.

    Returns
    -------
    Tensor, same shape, dtype and device as ``x``.

    Examples
    --------
    >>> x = torch.arange(1.0, 7.0).reshape(1, 1, 1, 6)   # R=1, B=1, C=1, L=6
    >>> y = augment_batch(x, [np.random.default_rng(0)], pad=2)
    >>> y.shape, y[0, 0, 0].tolist()                      # shifted by 2, zero filled
    (torch.Size([1, 1, 1, 6]), [3.0, 4.0, 5.0, 6.0, 0.0, 0.0])
    """
    if x.ndim < 3:
        raise ValueError(f"augment_batch needs x of shape (R, B, *input_shape); got {tuple(x.shape)}")
    R, B = x.shape[:2]
    if len(rngs) != R:
        raise ValueError(f"augment_batch needs one generator per run: R={R}, got {len(rngs)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0; got {pad}")
    kind = AUGMENTATIONS[augmentation_kind(x.shape[2:])]
    flat = x.reshape(R * B, *x.shape[2:])
    n_axes = kind.shift_axes
    # per run: n_axes rows of offsets, then (images) one row of flips; the draw order per run
    # is fixed (offsets, then flips), so a run's stream gives the same batches in any ensemble
    draws = np.stack([
        np.concatenate([g.integers(-pad, pad + 1, size=(n_axes, B))]
                       + ([g.integers(0, 2, size=(1, B))] if kind.flip else []))
        for g in rngs
    ])  # (R, n_axes [+1], B)
    draws = torch.as_tensor(draws, device=x.device).permute(1, 0, 2).reshape(draws.shape[1], R * B)
    out = flat
    for a in range(n_axes):
        out = _shift_gather(out, draws[a], out.ndim - n_axes + a, pad)
    if kind.flip:
        flip = draws[n_axes].bool().view(-1, *([1] * (out.ndim - 1)))
        out = torch.where(flip, out.flip(-1), out)
    return out.reshape(x.shape)
