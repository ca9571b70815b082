"""Functional optimizers and learning-rate schedules for stacked ensembles of R models.

``torch.optim`` cannot update slices of stacked parameters, so the vectorized trainer uses
these small functional optimizers instead.  Every parameter tensor has a leading run axis
``R``; every hyper-parameter (learning rate, momentum, weight decay) is an ``(R,)`` tensor
broadcast over the remaining axes, so runs that differ only in a hyper-parameter *value*
can share one vectorized group.

Update rules (``g`` is the gradient of the mean batch loss, ``t = 1, 2, ...`` counts updates)
----------------------------------------------------------------------------------------------
``sgd``
    ``g <- g + wd * p``; with momentum ``mu > 0``: ``b <- mu * b + g`` (``b = g`` on the
    first update), ``p <- p - lr * b``; without: ``p <- p - lr * g``.
``nesterov``
    as ``sgd`` with momentum (default ``mu = 0.9``), but ``p <- p - lr * (g + mu * b)``.
``adam``
    ``g <- g + wd * p`` (L2 penalty); ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
``adamw``
    as ``adam`` without the L2 term, and decoupled decay ``p <- p * (1 - lr * wd)`` first.

These are the rules of ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` (dampening 0, no
amsgrad); each registry entry can also build that ``torch.optim`` object for one model,
which the loop engine uses and the tests compare against.

Learning-rate schedules map an update index ``t = 0 .. T-1`` to a multiplier of the base
learning rate: ``constant`` (1) and ``cosine`` (``(1 + cos(pi t / T)) / 2``, annealing to
0 over ``T`` updates without warm-up, as ``torch.optim.lr_scheduler.CosineAnnealingLR``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Callable, Mapping, MutableMapping, Sequence

import torch

from linsim.registry import Registry

__all__ = [
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "Adam",
    "AdamW",
    "FunctionalOptimizer",
    "Hyper",
    "Nesterov",
    "SGD",
    "lr_multiplier",
    "make_hyper",
]


@dataclass(frozen=True)
class Hyper:
    """Per-run optimizer hyper-parameters, each an ``(R,)`` tensor.

    Attributes
    ----------
    lr : Tensor (R,)
        Base learning rates (before the schedule's multiplier).
    momentum : Tensor (R,)
        Momentum ``mu`` (SGD / Nesterov); ignored by Adam.
    weight_decay : Tensor (R,)
        L2 coefficient (``sgd``, ``nesterov``, ``adam``) or decoupled decay (``adamw``).
    beta1, beta2, eps : float
        Adam moment decay rates and denominator offset (shared by all runs).
    use_momentum : bool
        Whether any run has momentum > 0 (computed once here, so that updates never wait
        for the device to answer).
    """

    lr: torch.Tensor
    momentum: torch.Tensor
    weight_decay: torch.Tensor
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    use_momentum: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "use_momentum", bool(torch.any(self.momentum > 0)))

    @property
    def n_runs(self) -> int:
        """Number of runs ``R``."""
        return int(self.lr.shape[0])

    def run(self, r: int) -> dict[str, float]:
        """Hyper-parameters of run ``r`` as plain floats."""
        return {
            "lr": float(self.lr[r]),
            "momentum": float(self.momentum[r]),
            "weight_decay": float(self.weight_decay[r]),
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
        }


def _per_run(name: str, value, n_runs: int, device, dtype) -> torch.Tensor:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        values = [float(value)] * n_runs
    else:
        values = [float(v) for v in value]
        if len(values) != n_runs:
            raise ValueError(f"{name} must be a number or one value per run (R={n_runs}); "
                             f"got {len(values)} values")
    for r, v in enumerate(values):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0; got {v!r} for run {r}")
    return torch.tensor(values, device=device, dtype=dtype)


def make_hyper(n_runs: int, *, lr, momentum=0.0, weight_decay=0.0, beta1=0.9, beta2=0.999,
               eps=1e-8, device=None, dtype=torch.float32) -> Hyper:
    """Build a :class:`Hyper` from scalars (shared by all runs) or length-``R`` sequences.

    Examples
    --------
    >>> h = make_hyper(3, lr=[0.1, 0.2, 0.3], momentum=0.9)
    >>> h.lr.tolist(), h.momentum.shape
    ([0.10000000149011612, 0.20000000298023224, 0.30000001192092896], torch.Size([3]))
    """
    if not 0.0 <= beta1 < 1.0 or not 0.0 <= beta2 < 1.0:
        raise ValueError(f"Adam betas must lie in [0, 1); got ({beta1}, {beta2})")
    if not eps > 0:
        raise ValueError(f"eps must be > 0; got {eps}")
    h = Hyper(
        lr=_per_run("lr", lr, n_runs, device, dtype),
        momentum=_per_run("momentum", momentum, n_runs, device, dtype),
        weight_decay=_per_run("weight_decay", weight_decay, n_runs, device, dtype),
        beta1=float(beta1), beta2=float(beta2), eps=float(eps),
    )
    if torch.any(h.momentum >= 1):
        raise ValueError(f"momentum must be < 1; got {h.momentum.tolist()}")
    return h


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(R,) -> (R, 1, ..., 1) matching ``like``'s number of dimensions and dtype."""
    return v.to(like.dtype).reshape((-1,) + (1,) * (like.ndim - 1))


State = MutableMapping[str, dict[str, torch.Tensor]]


class FunctionalOptimizer(ABC):
    """Contract of a functional optimizer over stacked parameters ``{name: (R, ...)}``.

    Subclasses implement :meth:`init_state`, :meth:`update` (in place, under ``no_grad``) and
    :meth:`torch_optimizer` (the equivalent ``torch.optim`` object for one model).
    """

    #: registry name
    name: str = ""
    #: momentum used when the configuration does not give one
    default_momentum: float = 0.0

    @abstractmethod
    def init_state(self, params: Mapping[str, torch.Tensor]) -> State:
        """Fresh optimizer state for stacked ``params``."""

    @abstractmethod
    def update(self, params: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor],
               state: State, hyper: Hyper, lr_scale: float, t: int) -> None:
        """Update ``params`` in place with ``grads``; ``t`` = 1, 2, ... counts updates.

        The learning rate of run ``r`` is ``hyper.lr[r] * lr_scale``.
        """

    @abstractmethod
    def torch_optimizer(self, parameters: Sequence[torch.Tensor],
                        hyper: dict[str, float]) -> torch.optim.Optimizer:
        """The ``torch.optim`` optimizer with the same rule for one model."""


class SGD(FunctionalOptimizer):
    """Stochastic gradient descent with optional heavy-ball momentum and L2 weight decay.

    Examples
    --------
    >>> p = {"w": torch.ones(2, 3)}; g = {"w": torch.ones(2, 3)}
    >>> opt = SGD(); st = opt.init_state(p)
    >>> opt.update(p, g, st, make_hyper(2, lr=[0.5, 0.25]), 1.0, 1)
    >>> p["w"][:, 0].tolist()
    [0.5, 0.75]
    """

    name = "sgd"
    nesterov = False

    def init_state(self, params):
        return {k: {} for k in params}

    @torch.no_grad()
    def update(self, params, grads, state, hyper, lr_scale, t):
        for name, p in params.items():
            g = grads[name]
            wd = _bcast(hyper.weight_decay, p)
            mu = _bcast(hyper.momentum, p)
            lr = _bcast(hyper.lr, p) * lr_scale
            g = g + wd * p
            if self.nesterov or hyper.use_momentum:
                buf = state[name].get("momentum")
                buf = g.clone() if buf is None else buf.mul_(mu).add_(g)
                state[name]["momentum"] = buf
                g = g + mu * buf if self.nesterov else buf
            p.sub_(lr * g)

    def torch_optimizer(self, parameters, hyper):
        return torch.optim.SGD(parameters, lr=hyper["lr"], momentum=hyper["momentum"],
                               weight_decay=hyper["weight_decay"], nesterov=self.nesterov)


class Nesterov(SGD):
    """SGD with Nesterov momentum (default ``mu = 0.9``), as ``torch.optim.SGD(nesterov=True)``.

    Examples
    --------
    >>> p = {"w": torch.zeros(1, 1)}; g = {"w": torch.ones(1, 1)}
    >>> opt = Nesterov(); st = opt.init_state(p)
    >>> opt.update(p, g, st, make_hyper(1, lr=1.0, momentum=0.5), 1.0, 1)
    >>> p["w"].item()   # -(g + mu * b) with b = g
    -1.5
    """

    name = "nesterov"
    nesterov = True
    default_momentum = 0.9

    def torch_optimizer(self, parameters, hyper):
        if not hyper["momentum"] > 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        return super().torch_optimizer(parameters, hyper)


class Adam(FunctionalOptimizer):
    """Adam with bias correction; ``weight_decay`` is an L2 term added to the gradient.

    Examples
    --------
    >>> p = {"w": torch.zeros(1, 2)}; g = {"w": torch.tensor([[3.0, -0.5]])}
    >>> opt = Adam(); st = opt.init_state(p)
    >>> opt.update(p, g, st, make_hyper(1, lr=0.1), 1.0, 1)
    >>> [round(v, 6) for v in p["w"][0].tolist()]   # first step moves by lr * sign(g)
    [-0.1, 0.1]
    """

    name = "adam"
    decoupled = False

    def init_state(self, params):
        return {k: {"m": torch.zeros_like(p), "v": torch.zeros_like(p)} for k, p in params.items()}

    @torch.no_grad()
    def update(self, params, grads, state, hyper, lr_scale, t):
        b1, b2, eps = hyper.beta1, hyper.beta2, hyper.eps
        c1 = 1.0 - b1 ** t
        c2 = 1.0 - b2 ** t
        for name, p in params.items():
            g = grads[name]
            wd = _bcast(hyper.weight_decay, p)
            lr = _bcast(hyper.lr, p) * lr_scale
            if self.decoupled:
                p.mul_(1.0 - lr * wd)
            else:
                g = g + wd * p
            m = state[name]["m"].mul_(b1).add_(g, alpha=1.0 - b1)
            v = state[name]["v"].mul_(b2).addcmul_(g, g, value=1.0 - b2)
            denom = (v.sqrt() / math.sqrt(c2)).add_(eps)
            p.sub_((lr / c1) * m / denom)

    def torch_optimizer(self, parameters, hyper):
        cls = torch.optim.AdamW if self.decoupled else torch.optim.Adam
        return cls(parameters, lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]),
                   eps=hyper["eps"], weight_decay=hyper["weight_decay"])


class AdamW(Adam):
    """Adam with decoupled weight decay ``p <- p (1 - lr wd)`` (as ``torch.optim.AdamW``).

    Examples
    --------
    >>> p = {"w": torch.ones(1, 1)}; g = {"w": torch.zeros(1, 1)}
    >>> opt = AdamW(); st = opt.init_state(p)
    >>> opt.update(p, g, st, make_hyper(1, lr=0.1, weight_decay=0.5), 1.0, 1)
    >>> round(p["w"].item(), 6)
    0.95
    """

    name = "adamw"
    decoupled = True


#: Registry of functional optimizers: name -> instance.
OPTIMIZERS: Registry[FunctionalOptimizer] = Registry(
    "optimizer", type=FunctionalOptimizer, key=attrgetter("name"),
    entries=[(cls.name, cls()) for cls in (SGD, Nesterov, Adam, AdamW)])


def _constant(t: int, total: int) -> float:
    return 1.0


def _cosine(t: int, total: int) -> float:
    if total <= 0:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * t / total))


#: Registry of learning-rate schedules: name -> f(t, T) giving the lr multiplier of update t.
LR_SCHEDULES: Registry[Callable[[int, int], float]] = Registry(
    "lr_schedule", callable_only=True, entries={"constant": _constant, "cosine": _cosine})


def lr_multiplier(schedule: str, t: int, total: int) -> float:
    """Multiplier of the base learning rate for update ``t`` (0-based) of ``total``.

    Examples
    --------
    >>> lr_multiplier("cosine", 0, 10), lr_multiplier("cosine", 5, 10)
    (1.0, 0.5)
    >>> lr_multiplier("constant", 7, 10)
    1.0
    """
    return LR_SCHEDULES[schedule](t, total)
