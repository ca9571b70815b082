"""Per-sample training losses of the deep-net trainer (a registry).

Each loss maps logits ``(B, C)`` and integer labels ``(B,)`` to per-sample losses ``(B,)``;
the training loss is their mean over the batch.

``cross_entropy``
    ``-log softmax(f)_y``; the mean over samples is the loss of
    :func:`linsim.solvers.softmax.softmax_gd` with one-hot targets.
``mse``
    ``(1/2) ||f - e_y||^2`` summed over the ``C`` outputs, ``e_y`` the one-hot target; the
    mean over samples is ``(1/2n) ||f(X) - Y||^2``, the loss of
    :func:`linsim.solvers.linear_gd` and :func:`linsim.solvers.two_layer.two_layer_gd`.

Both work inside ``torch.func.vmap`` (no data-dependent control flow).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from linsim.registry import Registry

__all__ = ["LOSSES", "cross_entropy", "mse", "per_sample_loss"]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy ``-log softmax(logits)[label]``, shape (B,).

    Examples
    --------
    >>> round(cross_entropy(torch.zeros(1, 4), torch.tensor([2])).item(), 6)   # log 4
    1.386294
    """
    logp = torch.log_softmax(logits, dim=-1)
    return -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def mse(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample ``0.5 * ||logits - onehot(label)||^2``, shape (B,).

    Examples
    --------
    >>> mse(torch.zeros(1, 3), torch.tensor([1])).item()
    0.5
    """
    eye = torch.eye(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return 0.5 * ((logits - eye[labels]) ** 2).sum(-1)


#: Registry of losses: name -> per-sample loss f(logits (B, C), labels (B,)) -> (B,).
LOSSES: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry(
    "loss", callable_only=True, entries={"cross_entropy": cross_entropy, "mse": mse})


def per_sample_loss(name: str):
    """The per-sample loss function registered under ``name``.

    Examples
    --------
    >>> per_sample_loss("mse") is mse
    True
    """
    return LOSSES[name]
