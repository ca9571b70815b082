"""The standard ensemble: draw data, a linear teacher and R initializations, train, return a Trajectory.

Defaults (all configurable through :class:`EnsembleConfig`)
-----------------------------------------------------------
* inputs: ``n_samples`` x ``dim`` with correlation spectrum ``lambda_k = lambda_1 e^{-c(k-1)}``
  (``geometric``) or ``lambda_1 k^{-a}`` (``power``); ``exact`` mode makes the empirical
  ``Sigma = X^T X / n`` have exactly this spectrum (random eigenbasis);
* teacher ``W*`` (C, d) i.i.d. ``N(0, teacher_scale^2)``; targets ``Y = X W*^T`` (teacher logits),
  or for ``model="softmax"`` the teacher probabilities ``softmax(X W*^T)``; labels = argmax;
* ``n_runs`` initial weights i.i.d. ``N(0, init_scale^2)``; ``teacher_scale / init_scale`` is the
  theory's output-to-weight scale ratio;
* learning rate ``lr = 1 / lambda_1`` (GD stability limit ``2 / lambda_max``); for
  ``model="two_layer"`` the default is ``1 / (lambda_1 max(1, 2 s_max(W*)))`` because the
  curvature near the minimum grows like ``2 s_max lambda_max``;
* checkpoints: step 0 plus ``n_checkpoints`` log-spaced integer steps up to ``steps``
  (duplicates removed); gradient flow is reported at times ``lr * step`` (``time_unit="time"``)
  so its checkpoints line up with GD's;
* outputs are logits, mapped to probabilities by softmax (``output_model="softmax"``).

Random streams: ``SeedSequence(seed).spawn(4)`` gives independent data / teacher / init / SGD
streams, so changing e.g. ``n_runs`` leaves the data and the teacher unchanged (and the first
runs' initial weights too).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from linsim import runners
from linsim._fields import check_integer
from linsim.data import INPUT_MODES, SPECTRUM_KINDS, linear_teacher, make_inputs, spectrum
from linsim.solvers.kernel import KERNELS
from linsim.solvers._checks import MAX_STEPS
from linsim.trajectory import Trajectory


def __getattr__(name: str):
    # MODELS / OPTIMIZERS used to be constants; they are now whatever the registry holds.
    if name == "MODELS":
        return runners.models()
    if name == "OPTIMIZERS":
        return runners.optimizers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Largest accepted ``n_checkpoints`` (a log-spaced schedule has at most ``steps + 1`` distinct
#: checkpoints anyway; beyond this the request is a typo, not a schedule).
MAX_CHECKPOINTS = 10**6


@dataclass(frozen=True)
class EnsembleConfig:
    """Every knob of the standard ensemble (see the module docstring for the conventions).

    Attributes
    ----------
    model : {"linear", "kernel", "softmax", "two_layer"}
        ``linear``: ``W x`` on the squared loss (closed form); ``kernel``: kernel machine on the
        squared loss (closed form); ``softmax``: ``W x`` on softmax cross-entropy toward the
        teacher probabilities (ODE / explicit GD); ``two_layer``: ``W2 W1 x`` on the squared
        loss (ODE / explicit GD).  Any model registered with
        :func:`linsim.runners.register_runner` is accepted too.
    optimizer : {"gd", "flow", "sgd"}
        The pair ``(model, optimizer)`` must have a registered runner
        (:func:`linsim.runners.registered`; ``sgd`` only for ``model="linear"``), which also
        supplies the GD stability limit checked here.
    n_samples, n_test, dim, n_classes : int
        ``n``, held-out ``n_test``, input dimension ``d``, classes ``C``.
    spectrum, slope, lambda_1 : input spectrum kind, its slope (c or a), largest eigenvalue.
    data_mode : {"exact", "sampled"}
    teacher_scale, init_scale : float
        ``rho`` and ``sigma_0``.
    n_runs : int
        ``R``.
    lr : float or None
        Learning rate (None: default above); for flow only sets the time unit ``t = lr * step``.
    steps, n_checkpoints : int
        ``T`` (at most ``2**53``) and ``K`` (see :func:`checkpoint_steps`).
    batch_size : int
        SGD batch size (without replacement within a step).
    kernel, kernel_bandwidth : kernel of ``model="kernel"`` ("linear", "rbf", "arccos", "ntk").
        With a non-linear kernel the initial function is a draw from ``GP(0, init_scale^2 k)``;
        with the linear kernel it is ``X W0^T`` (identical to ``model="linear"``).
    hidden : int
        Two-layer width ``h``; layer entries are i.i.d. ``N(0, init_scale / sqrt(h))`` variance
        (std ``(init_scale^2 / h)^{1/4}``) so that the product ``W2 W1`` has entries of std
        ``init_scale``.
    seed : int

    Examples
    --------
    >>> cfg = EnsembleConfig(slope=0.5, teacher_scale=0.05, init_scale=0.01, n_runs=4)
    >>> cfg.validate()
    >>> round(cfg.teacher_scale / cfg.init_scale, 12)
    5.0
    >>> EnsembleConfig(n_runs=0).validate()
    Traceback (most recent call last):
    ...
    ValueError: EnsembleConfig.n_runs must be >= 1; got 0
    """

    model: str = "linear"
    optimizer: str = "gd"
    n_samples: int = 200
    n_test: int = 0
    dim: int = 50
    n_classes: int = 5
    spectrum: str = "geometric"
    slope: float = 0.5
    lambda_1: float = 1.0
    data_mode: str = "exact"
    teacher_scale: float = 1.0
    init_scale: float = 0.1
    n_runs: int = 16
    lr: float | None = None
    steps: int = 1000
    n_checkpoints: int = 20
    batch_size: int = 10
    kernel: str = "linear"
    kernel_bandwidth: float = 1.0
    hidden: int = 50
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the first out-of-domain field."""
        def choice(name, options):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in options:
                raise ValueError(f"EnsembleConfig.{name} must be one of {tuple(options)}; got {value!r}")

        def real(name, minimum, strict):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise TypeError(f"EnsembleConfig.{name} must be a number; got {value!r}")
            bad = (value <= minimum) if strict else (value < minimum)
            if not np.isfinite(value) or bad:
                rel = ">" if strict else ">="
                raise ValueError(f"EnsembleConfig.{name} must be finite and {rel} {minimum}; got {value}")

        choice("model", runners.models())
        choice("optimizer", runners.optimizers())
        try:
            entry = runners.get_runner(self.model, self.optimizer)
        except ValueError as exc:
            raise ValueError(f"EnsembleConfig: {exc}") from None
        choice("spectrum", SPECTRUM_KINDS)
        choice("data_mode", INPUT_MODES)
        choice("kernel", KERNELS)
        for name, minimum in (("n_samples", 1), ("n_test", 0), ("dim", 1), ("n_classes", 2),
                              ("n_runs", 1), ("steps", 0), ("n_checkpoints", 1), ("batch_size", 1),
                              ("hidden", 1), ("seed", 0)):
            check_integer(f"EnsembleConfig.{name}", getattr(self, name), minimum)
        if self.steps > MAX_STEPS:
            raise ValueError(
                f"EnsembleConfig.steps={self.steps} exceeds {MAX_STEPS} = 2**53, the largest step count "
                "that float64 step arithmetic represents exactly"
            )
        if self.n_checkpoints > MAX_CHECKPOINTS:
            raise ValueError(
                f"EnsembleConfig.n_checkpoints={self.n_checkpoints} exceeds {MAX_CHECKPOINTS}; the "
                "schedule and the outputs (R x K x n x C) would not fit in memory"
            )
        real("slope", 0.0, strict=False)
        real("lambda_1", 0.0, strict=True)
        real("teacher_scale", 0.0, strict=False)
        real("init_scale", 0.0, strict=False)
        real("kernel_bandwidth", 0.0, strict=True)
        if self.lr is not None:
            real("lr", 0.0, strict=True)
        if self.data_mode == "exact" and self.n_samples < self.dim:
            raise ValueError(
                f"data_mode='exact' needs n_samples >= dim to realize a full-rank spectrum; got "
                f"n_samples={self.n_samples}, dim={self.dim} (use data_mode='sampled')"
            )
        if self.optimizer == "sgd" and self.batch_size > self.n_samples:
            raise ValueError(
                f"EnsembleConfig.batch_size={self.batch_size} exceeds n_samples={self.n_samples}"
            )
        limit = entry.limit_for(self)
        if self.lr is not None and limit is not None and self.data_mode == "exact":
            # the empirical lambda_max equals lambda_1 in exact mode, so the limit is known here
            if self.lr >= limit / self.lambda_1:
                raise ValueError(
                    f"EnsembleConfig.lr={self.lr:g} is at or beyond the GD stability limit "
                    f"{limit:g}/lambda_1 = {limit / self.lambda_1:.6g} for model={self.model!r}, "
                    f"optimizer={self.optimizer!r}"
                )


def _theory():
    # linsim's `theory` package, or an ImportError naming a user's theory.py that shadows it
    from linsim._theory_check import import_theory

    return import_theory()


def checkpoint_steps(steps: int, n_checkpoints: int) -> np.ndarray:
    """Step 0 plus ``n_checkpoints`` log-spaced integer steps up to ``steps`` (int64, sorted).

    The one schedule shared by the simulator and the theory: this is
    :func:`theory.checkpoint_steps` (``rint(geomspace(1, steps, n_checkpoints))`` with
    duplicates removed, ``[0]`` for ``steps == 0``, ``[0, steps]`` for one checkpoint).

    Examples
    --------
    >>> checkpoint_steps(1000, 5).tolist()
    [0, 1, 6, 32, 178, 1000]
    >>> checkpoint_steps(10**19, 3)
    Traceback (most recent call last):
    ...
    ValueError: steps=10000000000000000000 exceeds 2**53 = 9007199254740992, the largest exactly representable step count
    """
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps > MAX_STEPS:
        raise ValueError(
            f"steps={steps} exceeds 2**53 = {MAX_STEPS}, the largest exactly representable step count"
        )
    return _theory().checkpoint_steps(steps, n_checkpoints)


def default_lr(config: EnsembleConfig, teacher: np.ndarray | None = None) -> float:
    """The learning rate used when ``config.lr`` is None (see the module docstring).

    ``1 / lambda_1`` unless the runner of ``(config.model, config.optimizer)`` declares its own
    default (the two-layer net's depends on the teacher, which must then be passed).

    Examples
    --------
    >>> default_lr(EnsembleConfig(lambda_1=2.0))
    0.5
    """
    if config.lr is not None:
        return float(config.lr)
    entry = runners.get_runner(config.model, config.optimizer)
    if entry.default_lr is not None:
        return float(entry.default_lr(config, teacher))
    return 1.0 / config.lambda_1


def input_eigenpairs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (d,) and eigenvectors (d, d, columns) of ``Sigma = X^T X / n``, descending.

    Computed from the SVD of ``X``: the squared singular values are non-negative by
    construction, whereas ``eigh(Sigma)`` returns ``-1e-17``-sized negatives for modes below
    rounding (steep spectra), which the theory rightly refuses.

    Examples
    --------
    >>> lam, V = input_eigenpairs(np.array([[2.0, 0.0], [0.0, 1.0]]))
    >>> lam.tolist()
    [2.0, 0.5]
    """
    n, d = X.shape
    # full_matrices only when n < d, where the null-space rows of V^T are needed; otherwise the
    # (n, n) left factor would be computed for nothing
    _, sv, vt = np.linalg.svd(X, full_matrices=n < d)
    ev = np.zeros(d)
    ev[: sv.size] = sv**2 / n
    return ev, vt.T.copy()


#: Arrays that simulate itself stores; a runner may not return them.
_RESERVED_ARRAYS = ("eigenvalues", "eigenvectors", "population_eigenvalues", "teacher", "steps")


def _check_result(entry, result, shape) -> None:
    who = f"runner {entry.model}/{entry.optimizer}"
    if not isinstance(result, runners.RunResult):
        raise TypeError(f"{who} must return a linsim.runners.RunResult; got {type(result).__name__}")
    got = np.shape(result.outputs)
    if got != shape:
        raise ValueError(f"{who} returned outputs of shape {got}; expected (R, K, m, C) = {shape}")
    clash = sorted(set(result.arrays) & set(_RESERVED_ARRAYS))
    if clash:
        raise ValueError(f"{who} returned arrays {clash}, which simulate stores itself")


def simulate(config: EnsembleConfig, split: str = "train", *, progress: bool = False) -> Trajectory:
    """Draw the data, teacher and initializations of ``config``, train, return the trajectory.

    The training itself is done by the runner registered for ``(config.model,
    config.optimizer)`` (:mod:`linsim.runners`).

    Parameters
    ----------
    config : EnsembleConfig
    split : {"train", "test"}
        Evaluate the outputs on the training inputs or on the ``n_test`` held-out inputs.
    progress : bool
        Show a progress bar while a stepped runner (explicit GD, SGD) trains, or the flow
        time an ODE runner has reached; closed forms finish at once and show nothing.

    Returns
    -------
    Trajectory
        ``outputs`` (R, K, n or n_test, C) logits, ``times`` = steps (``gd``/``sgd``) or
        ``lr * steps`` (``flow``), ``params`` = every config field plus ``lr_effective`` and
        ``split``, ``arrays``: ``eigenvalues`` (d,), ``eigenvectors`` (d, d) of the empirical
        ``Sigma`` (descending, columns), ``population_eigenvalues`` (d,), ``teacher`` (C, d),
        ``init`` (R, C, d) (initial weights; for ``two_layer`` the product ``W2 W1``, with
        ``init_W1``, ``init_W2`` too; absent for non-linear kernels, which store the initial
        function ``init_outputs`` (R, n + n_test, C) instead), ``steps`` (K,).

    Examples
    --------
    >>> traj = simulate(EnsembleConfig(dim=3, n_samples=5, n_classes=2, n_runs=2, steps=10,
    ...                                n_checkpoints=2))
    >>> traj.outputs.shape, traj.times.tolist()
    ((2, 3, 5, 2), [0.0, 1.0, 10.0])
    """
    if not isinstance(config, EnsembleConfig):
        raise TypeError(f"config must be an EnsembleConfig; got {type(config).__name__}")
    config.validate()
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if split == "test" and config.n_test == 0:
        raise ValueError("split='test' needs config.n_test > 0 held-out inputs")
    c = config
    entry = runners.get_runner(c.model, c.optimizer)
    s_data, s_teacher, s_init, s_sgd = np.random.SeedSequence(c.seed).spawn(4)
    lam = spectrum(c.dim, c.spectrum, c.slope, c.lambda_1)
    X, X_test = make_inputs(lam, c.n_samples, c.data_mode, s_data, n_test=c.n_test)
    teacher = linear_teacher(c.n_classes, c.dim, c.teacher_scale, s_teacher)
    lr = default_lr(c, teacher)
    steps = checkpoint_steps(c.steps, c.n_checkpoints)
    ev, V = input_eigenpairs(X)  # stored in the trajectory and shared with the runner
    problem = runners.Problem(config=c, X=X, X_test=X_test, teacher=teacher, lr=lr, steps=steps,
                              split=split, init_seed=s_init, sgd_seed=s_sgd, progress=bool(progress),
                              eigenpairs=(ev, V))
    result = entry.run(problem)
    _check_result(entry, result, (c.n_runs, steps.size, problem.inputs.shape[0], c.n_classes))
    flow = entry.time_unit == "time"
    times = problem.flow_times if flow else steps.astype(np.float64)
    arrays = dict(result.arrays)
    arrays.update(
        eigenvalues=ev,
        eigenvectors=V,
        population_eigenvalues=lam,
        teacher=teacher,
        steps=steps,
    )
    params = {f.name: getattr(c, f.name) for f in fields(c)}
    params.update(lr_effective=lr, split=split)
    Z = problem.inputs
    return Trajectory(
        outputs=result.outputs,
        times=times,
        time_unit=entry.time_unit,
        output_model="softmax",
        params=params,
        inputs=Z,
        labels=np.argmax(Z @ teacher.T, axis=1),
        arrays=arrays,
    )


__all__ = ["EnsembleConfig", "checkpoint_steps", "default_lr", "input_eigenpairs", "simulate"]
