"""Ensembles of R models of one architecture, trained together: vectorized or looped.

Contract (:class:`Ensemble`)
----------------------------
An ensemble is built from ``R`` initialized ``torch.nn.Module`` objects of one architecture
(same parameter names and shapes), a functional optimizer with per-run hyper-parameters
(:mod:`linsim.deep.optim`) and a per-sample loss (:mod:`linsim.deep.losses`).  It offers

* :meth:`Ensemble.train_step` — one update of every run on its own batch
  ``x`` (R, B, *input_shape), ``y`` (R, B); returns the per-run mean batch loss *before*
  the update, shape (R,);
* :meth:`Ensemble.predict` — logits (R, n, C) of every run on shared inputs (n, ...), in
  eval mode (BatchNorm running statistics), without gradients;
* :meth:`Ensemble.stacked_parameters` — the parameters as ``{name: (R, ...)}`` tensors;
* :meth:`Ensemble.reset_optimizer` — a fresh optimizer state (used after a corner phase).

Implementations (registry :data:`ENSEMBLES`)
--------------------------------------------
``vmap`` (:class:`VmapEnsemble`)
    ``torch.func.stack_module_state`` stacks parameters and buffers; a copy of the module
    on the ``meta`` device is called with ``torch.func.functional_call``; one
    ``vmap(grad_and_value(loss))`` computes all R gradients at once, and BatchNorm running
    statistics are updated per run in the stacked buffers.  The update uses the functional
    optimizer.
``loop`` (:class:`LoopEnsemble`)
    A plain Python loop over the R modules with autograd and the equivalent ``torch.optim``
    optimizer: the reference that the vectorized ensemble must reproduce to round-off, and
    the baseline of ``benchmarks/bench_deep.py``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Callable, Sequence

import torch
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from linsim.deep.optim import FunctionalOptimizer, Hyper
from linsim.registry import Registry

__all__ = ["ENSEMBLES", "Ensemble", "LoopEnsemble", "VmapEnsemble"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_models(models: Sequence[torch.nn.Module]) -> None:
    if len(models) == 0:
        raise ValueError("an ensemble needs at least one model")
    ref = [(n, tuple(p.shape)) for n, p in models[0].named_parameters()]
    for r, m in enumerate(models[1:], start=1):
        got = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
        if got != ref:
            raise ValueError(f"model {r} does not have the parameters of model 0 (names and "
                             "shapes must match: group runs by architecture and width)")


class Ensemble(ABC):
    """Abstract contract of R models trained together (see the module docstring)."""

    def __init__(self, models: Sequence[torch.nn.Module], optimizer: FunctionalOptimizer,
                 hyper: Hyper, loss: LossFn) -> None:
        _check_models(models)
        if hyper.n_runs != len(models):
            raise ValueError(f"hyper-parameters are given for {hyper.n_runs} runs but there are "
                             f"{len(models)} models")
        self.n_runs = len(models)
        self.optimizer = optimizer
        self.hyper = hyper
        self.loss = loss
        self.n_updates = 0

    @abstractmethod
    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr_scale: float = 1.0) -> torch.Tensor:
        """Update every run on its batch; returns the (R,) mean batch losses before the update."""

    @abstractmethod
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Eval-mode logits (R, n, C) on shared inputs ``x`` (n, *input_shape)."""

    @abstractmethod
    def stacked_parameters(self) -> dict[str, torch.Tensor]:
        """Parameters as ``{name: (R, ...)}`` (detached copies for the loop engine)."""

    @abstractmethod
    def reset_optimizer(self) -> None:
        """Discard the optimizer state (momentum buffers, Adam moments, update count)."""

    def _check_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.shape[0] != self.n_runs or y.shape[:1] != (self.n_runs,) or y.shape[1] != x.shape[1]:
            raise ValueError(f"train_step needs x (R, B, ...) and y (R, B) with R={self.n_runs}; "
                             f"got {tuple(x.shape)} and {tuple(y.shape)}")


class VmapEnsemble(Ensemble):
    """R models as one stacked, vmapped functional model (``torch.func``).

    ``compile=True`` wraps the vmapped gradient in ``torch.compile`` (needs a working
    compiler tool chain; the first steps are slow while it compiles; batch shapes must stay
    fixed, which the trainer guarantees by dropping the last partial batch).

    Examples
    --------
    >>> from linsim.deep.optim import OPTIMIZERS, make_hyper
    >>> from linsim.deep.losses import mse
    >>> models = [torch.nn.Linear(3, 2, bias=False) for _ in range(4)]
    >>> ens = VmapEnsemble(models, OPTIMIZERS["sgd"], make_hyper(4, lr=0.1), mse)
    >>> loss = ens.train_step(torch.randn(4, 5, 3), torch.zeros(4, 5, dtype=torch.long))
    >>> loss.shape, ens.predict(torch.randn(7, 3)).shape
    (torch.Size([4]), torch.Size([4, 7, 2]))
    """

    def __init__(self, models, optimizer, hyper, loss, *, compile: bool = False) -> None:
        super().__init__(models, optimizer, hyper, loss)
        params, buffers = stack_module_state(list(models))
        self.params = {k: v.detach() for k, v in params.items()}
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        base = copy.deepcopy(models[0]).to("meta")
        self._base = base
        loss_fn = loss

        def batch_loss(p, b, x, y):
            return loss_fn(functional_call(base, (p, b), (x,)), y).mean()

        def forward(p, b, x):
            return functional_call(base, (p, b), (x,))

        self._grad_and_loss = vmap(grad_and_value(batch_loss), in_dims=(0, 0, 0, 0))
        if compile:
            self._grad_and_loss = torch.compile(self._grad_and_loss, dynamic=False)
        self._forward = vmap(forward, in_dims=(0, 0, None))
        self.state = optimizer.init_state(self.params)

    def train_step(self, x, y, lr_scale=1.0):
        self._check_batch(x, y)
        self._base.train()
        grads, loss = self._grad_and_loss(self.params, self.buffers, x, y)
        self.n_updates += 1
        self.optimizer.update(self.params, grads, self.state, self.hyper, lr_scale, self.n_updates)
        return loss.detach()

    @torch.no_grad()
    def predict(self, x, batch_size=1024):
        self._base.eval()
        parts = [self._forward(self.params, self.buffers, x[i:i + batch_size])
                 for i in range(0, x.shape[0], batch_size)]
        return torch.cat(parts, dim=1)

    def stacked_parameters(self):
        return dict(self.params)

    def reset_optimizer(self):
        self.state = self.optimizer.init_state(self.params)
        self.n_updates = 0


class LoopEnsemble(Ensemble):
    """R plain modules trained one after another with autograd and ``torch.optim``.

    Examples
    --------
    >>> from linsim.deep.optim import OPTIMIZERS, make_hyper
    >>> from linsim.deep.losses import cross_entropy
    >>> models = [torch.nn.Linear(3, 2) for _ in range(2)]
    >>> ens = LoopEnsemble(models, OPTIMIZERS["adam"], make_hyper(2, lr=1e-3), cross_entropy)
    >>> ens.train_step(torch.randn(2, 5, 3), torch.ones(2, 5, dtype=torch.long)).shape
    torch.Size([2])
    """

    def __init__(self, models, optimizer, hyper, loss) -> None:
        super().__init__(models, optimizer, hyper, loss)
        self.models = list(models)
        self._run_hyper = [hyper.run(r) for r in range(self.n_runs)]
        self.reset_optimizer()

    def reset_optimizer(self):
        self._optims = [self.optimizer.torch_optimizer(list(m.parameters()), self._run_hyper[r])
                        for r, m in enumerate(self.models)]
        self.n_updates = 0

    def train_step(self, x, y, lr_scale=1.0):
        self._check_batch(x, y)
        losses = []
        for r, (model, opt) in enumerate(zip(self.models, self._optims)):
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = self.loss(model(x[r]), y[r]).mean()
            loss.backward()
            for group in opt.param_groups:
                group["lr"] = self._run_hyper[r]["lr"] * lr_scale
            opt.step()
            losses.append(loss.detach())
        self.n_updates += 1
        return torch.stack(losses)

    @torch.no_grad()
    def predict(self, x, batch_size=1024):
        outs = []
        for model in self.models:
            model.eval()
            outs.append(torch.cat([model(x[i:i + batch_size])
                                   for i in range(0, x.shape[0], batch_size)], dim=0))
        return torch.stack(outs)

    def stacked_parameters(self):
        names = [n for n, _ in self.models[0].named_parameters()]
        per = [dict(m.named_parameters()) for m in self.models]
        return {n: torch.stack([p[n].detach() for p in per]) for n in names}


#: Registry of ensemble engines: name -> class.
def _check_engine(name: str, cls) -> None:
    if not issubclass(cls, Ensemble):
        raise TypeError(f"ensemble engine {name!r} must be a subclass of Ensemble; got {cls.__name__}")


ENSEMBLES: Registry[type[Ensemble]] = Registry(
    "ensemble engine", type=type, check=_check_engine, entries={"vmap": VmapEnsemble, "loop": LoopEnsemble})
