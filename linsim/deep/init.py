"""Weight initializations: a registry of schemes, drawn from an explicit ``torch.Generator``.

:func:`initialize` walks ``model.modules()`` in registration order and, for every module
that owns parameters directly:

* normalization layers (BatchNorm, LayerNorm, GroupNorm, InstanceNorm) are reset to their
  framework default (weight 1, bias 0, running statistics cleared) whatever the scheme,
  and are never scaled: they hold no random numbers;
* otherwise the scheme draws the parameters (the table below), and the result is
  multiplied by ``scale``.

============== ================================================================================
scheme         weights of ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` (``fan_in`` = inputs per
               output: ``in_features`` or ``in_channels / groups * kernel size``)
============== ================================================================================
default        torch's own ``reset_parameters()`` of the module (biases too), times ``scale``
kaiming        ``N(0, σ²)``, ``σ = scale · sqrt(2 / fan_in)`` (Kaiming/He fan-in, ReLU gain);
               biases 0
normal         ``N(0, σ²)``, ``σ = scale / sqrt(fan_in)`` (``scale = 1``: LeCun normal);
               biases 0.  Small ``scale`` moves a wide net to the rich regime, large to lazy
standard       ``N(0, scale²)`` with no fan-in factor (the study's "N(0, 1)" start); biases 0
============== ================================================================================

Other parameterized modules (e.g. a ViT's position embedding) are drawn with their own
``reset_parameters()`` and multiplied by ``scale`` under every scheme.

Determinism: every number is drawn on the CPU in float64 from ``generator`` (the framework
default through a forked global generator seeded from ``generator``) and then cast to the
parameter's dtype and device, so the same generator seed gives the same weights on CPU and
CUDA, and float32 weights are the float64 ones rounded.  The caller's global random state
is not changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter
from typing import Callable

import torch
from torch import nn

from linsim.registry import Registry

__all__ = ["INITS", "InitScheme", "initialize", "register_init"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
_DENSE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class InitScheme:
    """One initialization scheme.

    Attributes
    ----------
    name : str
    weight_std : callable or None
        ``weight_std(fan_in, scale) -> σ`` for the weights of Linear/Conv layers (biases
        are set to 0); None means "the framework default times scale" for them too.
    description : str

    Examples
    --------
    >>> INITS["normal"].weight_std(100, 1.0), INITS["default"].weight_std is None
    (0.1, True)
    """

    name: str
    weight_std: Callable[[int, float], float] | None
    description: str = ""


#: Initialization registry: name -> :class:`InitScheme`.
INITS: Registry[InitScheme] = Registry("init scheme", type=InitScheme, key=attrgetter("name"))


def register_init(scheme: InitScheme, *, replace: bool = False) -> InitScheme:
    """Add ``scheme`` to :data:`INITS` (each name once, unless ``replace=True``).

    Examples
    --------
    >>> sorted(INITS)
    ['default', 'kaiming', 'normal', 'standard']
    >>> register_init(INITS["normal"])
    Traceback (most recent call last):
    ...
    ValueError: init scheme 'normal' is already registered; pass replace=True to overwrite it
    """
    return INITS.add(scheme, replace=replace)


register_init(InitScheme("default", None, "framework default, times scale"))
register_init(InitScheme("kaiming", lambda fan_in, s: s * math.sqrt(2.0 / fan_in), "N(0, 2 scale^2 / fan_in)"))
register_init(InitScheme("normal", lambda fan_in, s: s / math.sqrt(fan_in), "N(0, scale^2 / fan_in)"))
register_init(InitScheme("standard", lambda fan_in, s: float(s), "N(0, scale^2)"))


def _fan_in(weight: torch.Tensor) -> int:
    return int(weight[0].numel())


def _draw_default(module: nn.Module, name: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Run ``module.reset_parameters()`` on float64 CPU stand-ins, under a forked global
    generator seeded from ``generator``; return the drawn values by parameter name."""
    if not hasattr(module, "reset_parameters"):
        raise TypeError(
            f"initialize: module {name or '<root>'!r} ({type(module).__name__}) owns parameters but has no "
            "reset_parameters(), so its default initialization is unknown"
        )
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    originals = dict(module._parameters)
    try:
        for key, p in originals.items():
            if p is not None:
                module._parameters[key] = nn.Parameter(torch.zeros(p.shape, dtype=torch.float64), p.requires_grad)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            module.reset_parameters()
        return {k: module._parameters[k].detach() for k, p in originals.items() if p is not None}
    finally:
        module._parameters.update(originals)


def initialize(
    model: nn.Module, scheme: str = "default", *, scale: float = 1.0, generator: torch.Generator
) -> nn.Module:
    """Re-draw every parameter of ``model`` in place with ``scheme``; returns ``model``.

    Parameters
    ----------
    model : torch.nn.Module
    scheme : str
        A key of :data:`INITS` (see the module docstring for the exact distributions).
    scale : float
        Multiplies the drawn parameters (finite, >= 0; 0 gives an all-zero start).
    generator : torch.Generator
        A CPU generator, the only source of randomness.

    Returns
    -------
    torch.nn.Module
        ``model`` itself, re-initialized.

    Examples
    --------
    >>> net = nn.Linear(400, 3, bias=False)
    >>> _ = initialize(net, "normal", scale=2.0, generator=torch.Generator().manual_seed(0))
    >>> round(float(net.weight.detach().std()) * 400 ** 0.5, 1)  # sigma = scale / sqrt(fan_in)
    2.0
    """
    rule = INITS[scheme]  # an unknown name raises (a KeyError), listing the valid ones
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator (numbers are drawn on the CPU); got {generator.device}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale must be a finite number >= 0; got {scale!r}")
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, _NORMS):
                module.reset_parameters()
                continue
            own = {k: p for k, p in module._parameters.items() if p is not None}
            if not own:
                continue
            if rule.weight_std is not None and isinstance(module, _DENSE):
                w = module.weight
                std = rule.weight_std(_fan_in(w), float(scale))
                w.copy_(torch.empty(w.shape, dtype=torch.float64).normal_(0.0, std, generator=generator))
                if module.bias is not None:
                    module.bias.zero_()
                continue
            drawn = _draw_default(module, name, generator)
            for key, p in own.items():
                p.copy_(drawn[key] * float(scale))
    return model
