"""The runner registry: one entry per (model, optimizer) of the standard ensemble.

:func:`linsim.ensemble.simulate` draws the data, the teacher and the random streams, packs
them into a :class:`Problem` and hands it to the registered :class:`Runner` for
``(config.model, config.optimizer)``; the runner trains and returns a :class:`RunResult`.
Everything that depends on the choice of model and optimizer lives in its entry:

* ``run``: the training itself;
* ``stability_limit``: the GD stability limit on ``lr * lambda_max`` (2 for the squared
  loss, 4 for softmax cross-entropy whose curvature is at most ``lambda_max / 2``), used by
  :meth:`linsim.ensemble.EnsembleConfig.validate`; None where no closed-form limit exists;
* ``theory``: the hook of the analytic theory (:class:`linsim.theory_inputs.SmallLogitTheory`)
  or None: ``entry.theory is not None`` is *the* "can the theory handle this" gate;
* ``time_unit``: ``"step"`` (GD, SGD) or ``"time"`` (gradient flow, reported at ``lr * step``);
* ``config_fields``: the :class:`~linsim.ensemble.EnsembleConfig` fields the runner reads
  beyond the common ones (so a front end can refuse flags that would do nothing).

New models plug in with :func:`register_runner`.

Examples
--------
>>> entry = get_runner("linear", "gd")
>>> entry.stability_limit, entry.theory is not None, entry.time_unit
(2.0, True, 'step')
>>> sorted(o for m, o in registered() if m == "softmax")
['flow', 'gd']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from linsim.registry import Registry
from linsim.solvers._checks import CROSS_ENTROPY_GD_LIMIT, SQUARED_LOSS_GD_LIMIT
from linsim.theory_inputs import SmallLogitTheory

if TYPE_CHECKING:  # pragma: no cover
    from linsim.ensemble import EnsembleConfig

#: Config fields every runner uses (data, teacher, initialization, schedule, seed).
COMMON_FIELDS = (
    "model", "optimizer", "n_samples", "n_test", "dim", "n_classes", "spectrum", "slope",
    "lambda_1", "data_mode", "teacher_scale", "init_scale", "n_runs", "lr", "steps",
    "n_checkpoints", "seed",
)


@dataclass(frozen=True, eq=False)
class Problem:
    """One draw of the standard ensemble, ready to train.

    Attributes
    ----------
    config : EnsembleConfig
        The validated configuration.
    X : array (n, d)
        Training inputs.
    X_test : array (n_test, d)
        Held-out inputs.
    teacher : array (C, d)
        Teacher weights ``W*``; the targets are ``Y = X W*^T``.
    lr : float
        Effective learning rate (``linsim.ensemble.default_lr``).
    steps : int64 array (K,)
        Checkpoint steps (step 0 first).
    split : {"train", "test"}
        Where the outputs are evaluated.
    init_seed, sgd_seed : numpy.random.SeedSequence
        Streams for the initialization and for the SGD batches.
    progress : bool
        Whether a stepped runner should show a progress bar (``simulate(progress=True)``).
    eigenpairs : (array (d,), array (d, d)) or None
        Eigenvalues and eigenvectors of ``Sigma = X^T X / n`` that simulate stores in the
        trajectory; the closed-form linear runner solves in this very basis.

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig
    >>> p = Problem(config=EnsembleConfig(dim=2, n_classes=2, n_runs=3), X=np.eye(2),
    ...             X_test=np.zeros((0, 2)), teacher=2 * np.eye(2), lr=0.5, steps=np.array([0, 2]),
    ...             split="train", init_seed=np.random.SeedSequence(0), sgd_seed=np.random.SeedSequence(1))
    >>> p.Y.tolist(), p.flow_times.tolist(), p.gaussian_init().shape
    ([[2.0, 0.0], [0.0, 2.0]], [0.0, 1.0], (3, 2, 2))
    """

    config: "EnsembleConfig"
    X: np.ndarray
    X_test: np.ndarray
    teacher: np.ndarray
    lr: float
    steps: np.ndarray
    split: str
    init_seed: np.random.SeedSequence
    sgd_seed: np.random.SeedSequence
    progress: bool = False
    eigenpairs: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def Y(self) -> np.ndarray:
        """Teacher logits on the training inputs, ``X W*^T`` (n, C)."""
        return self.X @ self.teacher.T

    @property
    def inputs(self) -> np.ndarray:
        """The inputs the outputs are evaluated on: ``X`` or ``X_test`` (m, d)."""
        return self.X if self.split == "train" else self.X_test

    @property
    def flow_times(self) -> np.ndarray:
        """Gradient-flow checkpoint times ``lr * steps`` (K,)."""
        return self.lr * self.steps.astype(np.float64)

    def gaussian_init(self) -> np.ndarray:
        """Initial weights (R, C, d), i.i.d. ``N(0, init_scale^2)``, from ``init_seed``."""
        c = self.config
        rng = np.random.default_rng(self.init_seed)
        return c.init_scale * rng.standard_normal((c.n_runs, c.n_classes, c.dim))


@dataclass(frozen=True, eq=False)
class RunResult:
    """What a runner returns.

    Attributes
    ----------
    outputs : array (R, K, m, C), float64
        Logits of every run at every checkpoint on ``Problem.inputs``.
    arrays : mapping of str to array
        Extra arrays stored in the trajectory; ``init`` (R, C, d) holds the initial linear
        map when one exists (for ``two_layer`` the product ``W2 W1``), ``init_outputs``
        (R, n + n_test, C) the initial function where there is none (non-linear kernels).

    Examples
    --------
    >>> RunResult(np.zeros((1, 2, 3, 2))).arrays
    {}
    """

    outputs: np.ndarray
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Runner:
    """A registry entry: how to train one (model, optimizer) pair, and what is known about it.

    Parameters
    ----------
    model, optimizer : str
        The registry key (values of ``EnsembleConfig.model`` / ``.optimizer``).
    run : callable
        ``run(problem: Problem) -> RunResult``.
    stability_limit : float or callable or None
        GD is stable iff ``lr * lambda_max < stability_limit``; a callable
        ``limit(config) -> float | None`` when it depends on other fields (the kernel);
        None when there is no closed-form limit (flow, two-layer nets).
    theory : callable or None
        ``theory(inputs: TheoryInputs, *, n_draws, seed) -> TheorySpectra`` with a ``loss``
        attribute (see :class:`linsim.theory_inputs.SmallLogitTheory`), or None.
    time_unit : {"step", "time"}
        ``"time"`` for gradient flow (checkpoints at ``lr * step``).
    config_fields : tuple of str
        Config fields read beyond :data:`COMMON_FIELDS`.
    default_lr : callable or None
        ``default_lr(config, teacher) -> float`` when ``config.lr`` is None; None means
        ``1 / lambda_1``.
    description : str

    Examples
    --------
    >>> Runner("linear", "gd", run=lambda problem: None, stability_limit=2.0).limit_for(None)
    2.0
    >>> get_runner("softmax", "flow")
    Runner(softmax/flow, stability_limit=None, theory=cross_entropy, time_unit='time')
    """

    model: str
    optimizer: str
    run: Callable[[Problem], RunResult]
    stability_limit: float | Callable[["EnsembleConfig"], float | None] | None = None
    theory: Callable | None = None
    time_unit: str = "step"
    config_fields: tuple[str, ...] = ()
    default_lr: Callable | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for name in ("model", "optimizer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"Runner.{name} must be a non-empty string; got {value!r}")
        if not callable(self.run):
            raise TypeError(f"Runner.run must be callable; got {type(self.run).__name__}")
        if self.time_unit not in ("step", "time"):
            raise ValueError(f"Runner.time_unit must be 'step' or 'time'; got {self.time_unit!r}")
        if self.theory is not None and not callable(self.theory):
            raise TypeError("Runner.theory must be callable or None")
        if self.stability_limit is not None and not callable(self.stability_limit):
            limit = float(self.stability_limit)
            if not limit > 0:
                raise ValueError(f"Runner.stability_limit must be > 0; got {limit}")
            object.__setattr__(self, "stability_limit", limit)

    def __repr__(self) -> str:
        limit = "callable" if callable(self.stability_limit) else self.stability_limit
        theory = None if self.theory is None else getattr(self.theory, "loss", type(self.theory).__name__)
        return (f"Runner({self.model}/{self.optimizer}, stability_limit={limit}, theory={theory}, "
                f"time_unit={self.time_unit!r})")

    @property
    def key(self) -> tuple[str, str]:
        """``(model, optimizer)``."""
        return (self.model, self.optimizer)

    def limit_for(self, config) -> float | None:
        """The limit on ``lr * lambda_max`` for ``config`` (None: no closed-form limit)."""
        if callable(self.stability_limit):
            return self.stability_limit(config)
        return self.stability_limit


#: The runner registry: ``(model, optimizer)`` -> :class:`Runner`; use the functions below.
_REGISTRY: Registry[Runner] = Registry(
    "runner", type=Runner, key=attrgetter("key"), name_type=tuple,
    unknown="no runner registered for model={name[0]!r}, optimizer={name[1]!r}",
    label="a runner for model={name[0]!r}, optimizer={name[1]!r}")


def register_runner(runner: Runner, *, replace: bool = False) -> Runner:
    """Add a runner to the registry (``replace=True`` to overwrite an existing key).

    Examples
    --------
    >>> zero = Runner("zero_model", "gd", run=lambda p: RunResult(np.zeros(
    ...     (p.config.n_runs, p.steps.size, p.inputs.shape[0], p.config.n_classes))))
    >>> _ = register_runner(zero)
    >>> ("zero_model", "gd") in registered()
    True
    >>> register_runner(zero)
    Traceback (most recent call last):
    ...
    ValueError: a runner for model='zero_model', optimizer='gd' is already registered; pass replace=True to overwrite it
    >>> _ = unregister_runner("zero_model", "gd")
    """
    return _REGISTRY.add(runner, replace=replace)


def unregister_runner(model: str, optimizer: str) -> Runner:
    """Remove and return the runner registered for ``(model, optimizer)``.

    Examples
    --------
    >>> entry = register_runner(Runner("copy_of_linear", "gd", get_runner("linear", "gd").run, 2.0))
    >>> unregister_runner("copy_of_linear", "gd") is entry
    True
    """
    return _REGISTRY.unregister((model, optimizer))


def registered() -> tuple[tuple[str, str], ...]:
    """All registered ``(model, optimizer)`` keys, in registration order.

    Examples
    --------
    >>> registered()[:3]
    (('linear', 'gd'), ('linear', 'flow'), ('linear', 'sgd'))
    """
    return _REGISTRY.names()


def models() -> tuple[str, ...]:
    """Registered model names, in registration order.

    Examples
    --------
    >>> models()[:4]
    ('linear', 'kernel', 'softmax', 'two_layer')
    """
    return tuple(dict.fromkeys(m for m, _ in _REGISTRY))


def optimizers(model: str | None = None) -> tuple[str, ...]:
    """Registered optimizer names (for ``model``, or for any model).

    Examples
    --------
    >>> optimizers("linear"), optimizers("softmax")
    (('gd', 'flow', 'sgd'), ('gd', 'flow'))
    """
    return tuple(dict.fromkeys(o for m, o in _REGISTRY if model is None or m == model))


def theory_runners() -> tuple[tuple[str, str], ...]:
    """Keys of the runners that have a theory hook.

    Examples
    --------
    >>> theory_runners()[:4]
    (('linear', 'gd'), ('linear', 'flow'), ('softmax', 'gd'), ('softmax', 'flow'))
    """
    return tuple(k for k, r in _REGISTRY.items() if r.theory is not None)


def has_theory(model: str, optimizer: str) -> bool:
    """Whether the analytic theory covers ``(model, optimizer)`` (False for unknown keys).

    Examples
    --------
    >>> has_theory("linear", "flow"), has_theory("two_layer", "gd")
    (True, False)
    """
    entry = _REGISTRY.get((model, optimizer))
    return entry is not None and entry.theory is not None


def get_runner(model: str, optimizer: str) -> Runner:
    """The runner for ``(model, optimizer)``; the error lists what is available.

    Examples
    --------
    >>> get_runner("softmax", "sgd")
    Traceback (most recent call last):
    ...
    ValueError: optimizer='sgd' is not available for model='softmax' (it has: gd, flow); optimizer 'sgd' exists for model: linear
    """
    entry = _REGISTRY.get((model, optimizer))
    if entry is not None:
        return entry
    if model not in models():
        raise ValueError(f"model must be one of {models()}; got {model!r}")
    if optimizer not in optimizers():
        raise ValueError(f"optimizer must be one of {optimizers()}; got {optimizer!r}")
    users = ", ".join(m for m, o in _REGISTRY if o == optimizer)
    raise ValueError(
        f"optimizer={optimizer!r} is not available for model={model!r} (it has: "
        f"{', '.join(optimizers(model))}); optimizer {optimizer!r} exists for model: {users}"
    )


# ----------------------------------------------------------------------------- built-in runners
def _run_linear(problem: Problem) -> RunResult:
    from linsim.solvers.linear import linear_predictor

    W0 = problem.gaussian_init()
    flow = problem.config.optimizer == "flow"
    predict = linear_predictor(problem.X, problem.Y, lr=None if flow else problem.lr,
                               eigenpairs=problem.eigenpairs)
    t = problem.flow_times if flow else problem.steps
    return RunResult(predict(t, W0, problem.inputs), {"init": W0})


def _run_linear_sgd(problem: Problem) -> RunResult:
    from linsim.solvers.sgd import sgd_simulate

    W0 = problem.gaussian_init()
    c = problem.config
    out = sgd_simulate(problem.X, problem.Y, W0, problem.lr, c.batch_size, problem.steps,
                       problem.sgd_seed, inputs=problem.inputs, progress=problem.progress)
    return RunResult(out, {"init": W0})


def _run_kernel(problem: Problem) -> RunResult:
    from linsim.solvers.kernel import KernelDynamics, gp_prior_outputs

    c = problem.config
    X, Z = problem.X, problem.inputs
    dyn = KernelDynamics(X, problem.Y, c.kernel, c.kernel_bandwidth)
    arrays: dict[str, np.ndarray] = {}
    if c.kernel == "linear":
        W0 = problem.gaussian_init()
        F0 = X @ W0.transpose(0, 2, 1)
        f0 = Z @ W0.transpose(0, 2, 1)
        arrays["init"] = W0
    else:
        both = np.vstack([X, problem.X_test])
        F_all = gp_prior_outputs(both, c.n_runs, c.n_classes, c.init_scale, problem.init_seed,
                                 kind=c.kernel, bandwidth=c.kernel_bandwidth)
        F0 = F_all[:, : X.shape[0]]
        f0 = F0 if problem.split == "train" else F_all[:, X.shape[0]:]
        arrays["init_outputs"] = F_all
    flow = c.optimizer == "flow"
    t, lr = (problem.flow_times, None) if flow else (problem.steps, problem.lr)
    if problem.split == "train":
        out = dyn.train_outputs(F0, t, lr)
    else:
        out = dyn.test_outputs(F0, f0, Z, t, lr)
    return RunResult(out, arrays)


def _run_softmax(problem: Problem) -> RunResult:
    from linsim.solvers.softmax import softmax_flow, softmax_gd, softmax_probs

    W0 = problem.gaussian_init()
    Q = softmax_probs(problem.Y)
    if problem.config.optimizer == "flow":
        out = softmax_flow(problem.X, Q, W0, problem.flow_times, inputs=problem.inputs,
                           progress=problem.progress)
    else:
        out = softmax_gd(problem.X, Q, W0, problem.lr, problem.steps, inputs=problem.inputs,
                         progress=problem.progress)
    return RunResult(out, {"init": W0})


def _run_two_layer(problem: Problem) -> RunResult:
    from linsim.solvers.two_layer import two_layer_flow, two_layer_gd

    c = problem.config
    rng = np.random.default_rng(problem.init_seed)
    std = (c.init_scale**2 / c.hidden) ** 0.25
    W1 = std * rng.standard_normal((c.n_runs, c.hidden, c.dim))
    W2 = std * rng.standard_normal((c.n_runs, c.n_classes, c.hidden))
    if c.optimizer == "flow":
        out = two_layer_flow(problem.X, problem.Y, W1, W2, problem.flow_times, inputs=problem.inputs,
                             rtol=1e-8, atol=1e-10, progress=problem.progress)
    else:
        out = two_layer_gd(problem.X, problem.Y, W1, W2, problem.lr, problem.steps, inputs=problem.inputs,
                           progress=problem.progress)
    return RunResult(out, {"init": W2 @ W1, "init_W1": W1, "init_W2": W2})


def _two_layer_default_lr(config, teacher) -> float:
    """``1 / (lambda_1 max(1, 2 s_max(W*)))``: the curvature near the minimum is ``2 s_max lambda_max``."""
    if teacher is None:
        raise ValueError("the two-layer default lr depends on the teacher; pass it")
    s_max = float(np.linalg.svd(teacher, compute_uv=False)[0]) if teacher.size else 0.0
    return 1.0 / (config.lambda_1 * max(1.0, 2.0 * s_max))


def _kernel_limit(config) -> float | None:
    # only the linear kernel's K/n has the (known) spectrum of Sigma
    return SQUARED_LOSS_GD_LIMIT if config is not None and config.kernel == "linear" else None


_KERNEL_FIELDS = ("kernel", "kernel_bandwidth")

for _entry in (
    Runner("linear", "gd", _run_linear, SQUARED_LOSS_GD_LIMIT, SmallLogitTheory("squared"),
           description="linear model, squared loss, closed-form GD"),
    Runner("linear", "flow", _run_linear, None, SmallLogitTheory("squared"), time_unit="time",
           description="linear model, squared loss, closed-form gradient flow"),
    Runner("linear", "sgd", _run_linear_sgd, SQUARED_LOSS_GD_LIMIT, None, config_fields=("batch_size",),
           description="linear model, squared loss, minibatch SGD (seeded simulation)"),
    Runner("kernel", "gd", _run_kernel, _kernel_limit, None, config_fields=_KERNEL_FIELDS,
           description="kernel machine, squared loss, closed-form function-space GD"),
    Runner("kernel", "flow", _run_kernel, None, None, time_unit="time", config_fields=_KERNEL_FIELDS,
           description="kernel machine, squared loss, closed-form function-space flow"),
    Runner("softmax", "gd", _run_softmax, CROSS_ENTROPY_GD_LIMIT, SmallLogitTheory("cross_entropy"),
           description="linear model, softmax cross-entropy toward the teacher probabilities, explicit GD"),
    Runner("softmax", "flow", _run_softmax, None, SmallLogitTheory("cross_entropy"), time_unit="time",
           description="linear model, softmax cross-entropy, gradient flow by ODE integration"),
    Runner("two_layer", "gd", _run_two_layer, None, None, config_fields=("hidden",),
           default_lr=_two_layer_default_lr,
           description="two-layer linear network W2 W1 x, squared loss, explicit GD"),
    Runner("two_layer", "flow", _run_two_layer, None, None, time_unit="time", config_fields=("hidden",),
           default_lr=_two_layer_default_lr,
           description="two-layer linear network, squared loss, gradient flow by ODE integration"),
):
    register_runner(_entry)
del _entry


__all__ = [
    "COMMON_FIELDS",
    "Problem",
    "RunResult",
    "Runner",
    "get_runner",
    "has_theory",
    "models",
    "optimizers",
    "register_runner",
    "registered",
    "theory_runners",
    "unregister_runner",
]
