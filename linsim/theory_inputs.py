"""The typed contract between a simulation and the analytic theory: :func:`theory_inputs`.

The small-logit theory (package ``theory``) predicts the InPCA spectrum of an ensemble from
the input-correlation eigenvalues, the teacher and the initial weights *in the eigenbasis of*
``Sigma = X^T X / n``, the learning rate, the checkpoint steps and the dynamics.  Building
these by hand invites mistakes (a hard-coded ``lr = 1`` is wrong as soon as
``lambda_1 != 1``; a second SVD of ``X`` may return a different eigenbasis).
:func:`theory_inputs` builds them once, from what the solver stored:

* ``eigenvalues`` and ``eigenvectors`` from ``Trajectory.arrays`` (no new decomposition);
* ``lr`` from ``Trajectory.params["lr_effective"]`` (the learning rate that was used);
* steps from the checkpoint times (``times / lr`` for gradient flow);
* the dynamics (``"gd"`` / ``"flow"``) and the loss (``"squared"`` / ``"cross_entropy"``)
  from the runner registry (:mod:`linsim.runners`), which also says whether a theory exists.

Given an :class:`~linsim.ensemble.EnsembleConfig` instead of a trajectory, it returns the
inputs of the *expected* spectrum (population eigenvalues, no teacher or initial weights):
what a phase map needs without simulating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from linsim._fields import check_integer

if TYPE_CHECKING:  # pragma: no cover
    from linsim.ensemble import EnsembleConfig
    from linsim.trajectory import Trajectory

DYNAMICS = ("gd", "flow")
LOSSES = ("squared", "cross_entropy")


def _theory():
    # linsim's `theory` package, or an ImportError naming a user's theory.py that shadows it
    from linsim._theory_check import import_theory

    return import_theory()


def _integer(name: str, value, minimum: int) -> int:
    return check_integer(f"TheoryInputs.{name}", value, minimum)


def _frozen(a, dtype=np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class TheoryInputs:
    """Everything the small-logit theory needs about one ensemble, in the eigenbasis of ``Sigma``.

    Attributes
    ----------
    model, optimizer : str
        The runner (registry key, see :mod:`linsim.runners`) that produced the ensemble.
    eigenvalues : array (d,), float64
        Eigenvalues ``lambda_k >= 0`` of ``Sigma = X^T X / n``, descending (the solver's own;
        population eigenvalues when built from a config).
    teacher : array (C, d) or None
        Teacher weights ``W* V`` in the eigenbasis (None when built from a config).
    init : array (R, C, d) or None
        Initial weights ``W0_r V`` of the R runs in the eigenbasis (None from a config).
    lr : float
        The learning rate that was used (``lr_effective``); for gradient flow it only sets
        the time unit ``t = lr * step``.
    steps : int64 array (K,)
        Checkpoint step counts.
    times : float64 array (K,)
        Checkpoint arguments of the theory: equal to ``steps`` for GD, flow times
        ``lr * steps`` for gradient flow.
    dynamics : {"gd", "flow"}
    loss : {"squared", "cross_entropy"}
        Squared loss on logits, or softmax cross-entropy toward the teacher probabilities
        (the theory then divides every rate by ``C``).
    n_classes, n_runs : int
        ``C`` and ``R``.
    teacher_scale, init_scale : float
        ``rho`` and ``sigma_0`` of the ensemble's Gaussian draws.

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig
    >>> inp = theory_inputs(EnsembleConfig(dim=4, n_samples=8, lambda_1=2.0, steps=10,
    ...                                    n_checkpoints=3))
    >>> inp.lr, inp.dynamics, inp.steps.tolist()
    (0.5, 'gd', [0, 1, 3, 10])
    """

    model: str
    optimizer: str
    eigenvalues: np.ndarray
    teacher: np.ndarray | None
    init: np.ndarray | None
    lr: float
    steps: np.ndarray
    times: np.ndarray
    dynamics: str
    loss: str
    n_classes: int
    n_runs: int
    teacher_scale: float
    init_scale: float

    def __post_init__(self) -> None:
        if self.dynamics not in DYNAMICS:
            raise ValueError(f"TheoryInputs.dynamics must be one of {DYNAMICS}; got {self.dynamics!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"TheoryInputs.loss must be one of {LOSSES}; got {self.loss!r}")
        lam = _frozen(self.eigenvalues)
        if lam.ndim != 1 or lam.size == 0:
            raise ValueError(f"TheoryInputs.eigenvalues must be a non-empty 1-D array; got shape {lam.shape}")
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError("TheoryInputs.eigenvalues must be finite and >= 0")
        d = lam.size
        C = _integer("n_classes", self.n_classes, 2)
        R = _integer("n_runs", self.n_runs, 1)
        for name in ("teacher_scale", "init_scale", "lr"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"TheoryInputs.{name} must be a real number; got {value!r}")
            if not np.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                rule = "> 0" if name == "lr" else ">= 0"
                raise ValueError(f"TheoryInputs.{name} must be finite and {rule}; got {value}")
        object.__setattr__(self, "eigenvalues", lam)
        if self.teacher is not None:
            teacher = _frozen(self.teacher)
            if teacher.shape != (C, d):
                raise ValueError(f"TheoryInputs.teacher must have shape (C, d) = ({C}, {d}); got {teacher.shape}")
            object.__setattr__(self, "teacher", teacher)
        if self.init is not None:
            init = _frozen(self.init)
            if init.shape != (R, C, d):
                raise ValueError(f"TheoryInputs.init must have shape (R, C, d) = ({R}, {C}, {d}); got {init.shape}")
            object.__setattr__(self, "init", init)
        steps = _frozen(self.steps, np.int64)
        times = _frozen(self.times)
        if steps.ndim != 1 or times.shape != steps.shape:
            raise ValueError(
                f"TheoryInputs.steps and .times must be 1-D of the same length; got {steps.shape}, {times.shape}"
            )
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "n_classes", C)
        object.__setattr__(self, "n_runs", R)
        object.__setattr__(self, "teacher_scale", float(self.teacher_scale))
        object.__setattr__(self, "init_scale", float(self.init_scale))

    def __repr__(self) -> str:
        has = "teacher+init" if self.teacher is not None else "expectation only"
        return (
            f"TheoryInputs({self.model}/{self.optimizer}, dynamics={self.dynamics!r}, loss={self.loss!r}, "
            f"d={self.eigenvalues.size}, C={self.n_classes}, R={self.n_runs}, K={self.steps.size}, "
            f"lr={self.lr:.6g}, {has})"
        )

    @property
    def theory_lr(self) -> float | None:
        """The ``lr`` argument of the theory functions: ``lr`` for GD, None for flow."""
        return self.lr if self.dynamics == "gd" else None

    @property
    def has_draw(self) -> bool:
        """True when the teacher and initial weights of the draw are known."""
        return self.teacher is not None and self.init is not None

    def quadratic_spectrum(self) -> np.ndarray:
        """Small-logit InPCA eigenvalues of this very draw (:func:`theory.quadratic_spectrum`).

        Returns
        -------
        array (min(R*K, (C-1)*d),), float64
            Sorted by ``|lambda|`` descending, in units of the mean-over-samples
            Bhattacharyya distance.

        Examples
        --------
        >>> from linsim.ensemble import EnsembleConfig, simulate
        >>> traj = simulate(EnsembleConfig(dim=3, n_samples=6, n_classes=2, n_runs=2, steps=4,
        ...                                n_checkpoints=2, teacher_scale=0.01, init_scale=0.01))
        >>> theory_inputs(traj).quadratic_spectrum().shape
        (3,)
        """
        theory = _theory()

        if not self.has_draw:
            raise ValueError(
                "these TheoryInputs were built from a config: the teacher and initial weights of a "
                "draw are unknown, only expected_spectrum() is available"
            )
        return np.asarray(
            theory.quadratic_spectrum(self.eigenvalues, self.teacher, self.init, self.theory_lr,
                                      self.times if self.dynamics == "flow" else self.steps,
                                      dynamics=self.dynamics, loss=self.loss),
            dtype=np.float64,
        )

    def expected_spectrum(self, *, n_draws: int = 64, seed: int = 0, method: str | None = None) -> np.ndarray:
        """Expected small-logit InPCA eigenvalues over teachers and initializations.

        Calls :func:`theory.expected_spectrum` with ``rho = teacher_scale``,
        ``sigma_0 = init_scale`` (``n_draws`` and ``seed`` are passed on, and ``method`` when
        given; otherwise the theory's default method is used).

        Examples
        --------
        >>> from linsim.ensemble import EnsembleConfig
        >>> inp = theory_inputs(EnsembleConfig(dim=3, n_samples=6, n_classes=2, n_runs=2,
        ...                                    steps=4, n_checkpoints=2))
        >>> inp.expected_spectrum(n_draws=2).shape
        (3,)
        """
        theory = _theory()

        extra = {} if method is None else {"method": method}
        return np.asarray(
            theory.expected_spectrum(self.eigenvalues, self.n_classes, self.teacher_scale,
                                     self.init_scale, self.theory_lr,
                                     self.times if self.dynamics == "flow" else self.steps,
                                     self.n_runs, dynamics=self.dynamics, loss=self.loss,
                                     n_draws=n_draws, seed=seed, **extra),
            dtype=np.float64,
        )


    def expected_explained_stress(self, *, n_components: int | None = None, n_draws: int = 64,
                                  seed: int = 0, method: str | None = None):
        """Expected explained-stress curve ``E[chi_k]`` (:func:`theory.expected_explained_stress`).

        What an average of the simulated curve over seeds measures; ``n_components`` limits
        ``k`` (default: all).

        Examples
        --------
        >>> from linsim.ensemble import EnsembleConfig
        >>> inp = theory_inputs(EnsembleConfig(dim=3, n_samples=6, n_classes=2, n_runs=2,
        ...                                    steps=4, n_checkpoints=2))
        >>> curve = np.asarray(inp.expected_explained_stress(n_components=2, n_draws=2))
        >>> curve.shape, bool(np.all(np.diff(curve) >= 0))
        ((2,), True)
        """
        theory = _theory()
        extra = {} if method is None else {"method": method}
        return theory.expected_explained_stress(
            self.eigenvalues, self.n_classes, self.teacher_scale, self.init_scale, self.theory_lr,
            self.times if self.dynamics == "flow" else self.steps, self.n_runs,
            dynamics=self.dynamics, loss=self.loss, n_draws=n_draws, seed=seed,
            n_components=n_components, **extra,
        )


@dataclass(frozen=True, eq=False)
class TheorySpectra:
    """Predicted InPCA spectra of one ensemble.

    Attributes
    ----------
    expected : array (m,)
        Expectation over teachers and initial weights (:meth:`TheoryInputs.expected_spectrum`).
    draw : array (m',) or None
        Prediction for the simulated draw itself (None when only a config was given).

    Examples
    --------
    >>> TheorySpectra(expected=np.array([2.0, 1.0])).draw is None
    True
    >>> TheorySpectra(expected=np.arange(5.0, 0.0, -1.0), draw=np.array([4.5]))
    TheorySpectra(expected=[5, 4, 3, ...] (5), draw=[4.5] (1))
    """

    expected: np.ndarray
    draw: np.ndarray | None = None

    def __repr__(self) -> str:
        def top(a):
            a = np.asarray(a)
            head = ", ".join(f"{v:.3g}" for v in a[:3])
            return f"[{head}{', ...' if a.size > 3 else ''}] ({a.size})"

        draw = "None" if self.draw is None else top(self.draw)
        return f"TheorySpectra(expected={top(self.expected)}, draw={draw})"


@dataclass(frozen=True)
class SmallLogitTheory:
    """Theory hook of a runner: the small-logit theory of linear softmax models.

    A runner's ``theory`` (see :class:`linsim.runners.Runner`) is a callable
    ``hook(inputs: TheoryInputs, *, n_draws, seed) -> TheorySpectra`` with a ``loss``
    attribute; this is the one the theory package provides.

    Parameters
    ----------
    loss : {"squared", "cross_entropy"}
        The training loss of the runner (sets the theory's relaxation rates).

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig
    >>> hook = SmallLogitTheory("squared")
    >>> out = hook(theory_inputs(EnsembleConfig(dim=3, n_samples=6, n_classes=2, n_runs=2,
    ...                                         steps=4, n_checkpoints=2)), n_draws=2)
    >>> out.expected.shape, out.draw is None
    ((3,), True)
    """

    loss: str = "squared"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"SmallLogitTheory.loss must be one of {LOSSES}; got {self.loss!r}")

    def __call__(self, inputs: TheoryInputs, *, n_draws: int = 64, seed: int = 0) -> TheorySpectra:
        expected = inputs.expected_spectrum(n_draws=n_draws, seed=seed)
        draw = inputs.quadratic_spectrum() if inputs.has_draw else None
        return TheorySpectra(expected=expected, draw=draw)


def _need(mapping, key: str, where: str):
    if key not in mapping:
        raise ValueError(
            f"theory_inputs: the trajectory has no {where}[{key!r}]; it needs a trajectory made by "
            "linsim.simulate (or one carrying the same params and arrays)"
        )
    return mapping[key]


def _runner_with_theory(model, optimizer):
    from linsim.runners import get_runner, theory_runners

    try:
        entry = get_runner(model, optimizer)
    except ValueError as exc:
        have = ", ".join(f"{m}/{o}" for m, o in theory_runners())
        raise ValueError(
            f"theory_inputs: model={model!r}, optimizer={optimizer!r} is not a linsim runner ({exc}); "
            f"the theory covers: {have}"
        ) from None
    if entry.theory is None:
        have = ", ".join(f"{m}/{o}" for m, o in theory_runners())
        raise ValueError(
            f"no analytic theory for model={model!r}, optimizer={optimizer!r}; the theory covers: {have}"
        )
    return entry


def _from_config(config) -> TheoryInputs:
    from linsim.data import spectrum
    from linsim.ensemble import checkpoint_steps, default_lr

    config.validate()
    entry = _runner_with_theory(config.model, config.optimizer)
    lam = spectrum(config.dim, config.spectrum, config.slope, config.lambda_1)
    lr = default_lr(config)
    steps = checkpoint_steps(config.steps, config.n_checkpoints)
    flow = entry.time_unit == "time"
    return TheoryInputs(
        model=config.model, optimizer=config.optimizer, eigenvalues=lam, teacher=None, init=None,
        lr=lr, steps=steps, times=lr * steps if flow else steps.astype(np.float64),
        dynamics="flow" if flow else "gd", loss=getattr(entry.theory, "loss", "squared"),
        n_classes=config.n_classes, n_runs=config.n_runs,
        teacher_scale=config.teacher_scale, init_scale=config.init_scale,
    )


def _steps_from_times(traj, lr: float, flow: bool) -> np.ndarray:
    t = np.asarray(traj.times, dtype=np.float64)
    raw = t / lr if flow else t
    steps = np.rint(raw)
    tol = 1e-9 * np.maximum(1.0, np.abs(raw))
    if np.any(np.abs(raw - steps) > tol):
        k = int(np.argmax(np.abs(raw - steps) > tol))
        what = f"times / lr_effective = {raw[k]!r}" if flow else f"time {t[k]!r}"
        raise ValueError(f"theory_inputs: checkpoint {k} is not an integer step ({what})")
    return steps.astype(np.int64)


def theory_inputs(source: "Trajectory | EnsembleConfig") -> TheoryInputs:
    """Turn a simulated trajectory (or an ensemble config) into the theory's inputs.

    Parameters
    ----------
    source : Trajectory or EnsembleConfig
        A trajectory from :func:`linsim.simulate` on the training split (its ``params``
        name the model and optimizer, its ``arrays`` hold ``eigenvalues``,
        ``eigenvectors``, ``teacher`` and ``init``), possibly restricted to some
        checkpoints with ``Trajectory.select``; or a config, for the expected spectrum only
        (population eigenvalues ``linsim.data.spectrum``, which ``data_mode="exact"``
        realizes exactly).

    Returns
    -------
    TheoryInputs
        Teacher and initial weights rotated into the stored eigenbasis (``W V``), the
        effective learning rate, integer checkpoint steps, the dynamics and the loss.

    Raises
    ------
    ValueError
        When the runner has no theory (e.g. ``two_layer``; the message lists those that
        have one), the trajectory lacks a parameter or array (named), was evaluated on the
        test split, was restricted to some runs, or has checkpoints that are not integer steps.
    TypeError
        When ``source`` is neither a Trajectory nor an EnsembleConfig.

    Examples
    --------
    The learning rate is the one that was used, ``1 / lambda_1`` by default:

    >>> from linsim.ensemble import EnsembleConfig, simulate
    >>> traj = simulate(EnsembleConfig(dim=4, n_samples=8, n_classes=3, n_runs=2, lambda_1=1.5,
    ...                                steps=20, n_checkpoints=3))
    >>> inp = theory_inputs(traj)
    >>> round(inp.lr, 6), inp.teacher.shape, inp.init.shape, inp.steps.tolist()
    (0.666667, (3, 4), (2, 3, 4), [0, 1, 4, 20])
    """
    from linsim.ensemble import EnsembleConfig
    from linsim.trajectory import Trajectory

    if isinstance(source, EnsembleConfig):
        return _from_config(source)
    if not isinstance(source, Trajectory):
        raise TypeError(
            f"theory_inputs takes a Trajectory or an EnsembleConfig; got {type(source).__name__}"
        )
    traj = source
    params, arrays = traj.params, traj.arrays
    model = _need(params, "model", "params")
    optimizer = _need(params, "optimizer", "params")
    entry = _runner_with_theory(model, optimizer)
    if params.get("split", "train") != "train":
        raise ValueError(
            f"theory_inputs: the trajectory was evaluated on split={params['split']!r}; the theory "
            "describes the training inputs (simulate(config, 'train'))"
        )
    if traj.output_model != "softmax":
        raise ValueError(
            f"theory_inputs: the theory describes softmax outputs; the trajectory has output_model="
            f"{traj.output_model!r}"
        )
    lr = float(_need(params, "lr_effective", "params"))
    lam = np.asarray(_need(arrays, "eigenvalues", "arrays"), dtype=np.float64)
    V = np.asarray(_need(arrays, "eigenvectors", "arrays"), dtype=np.float64)
    teacher = np.asarray(_need(arrays, "teacher", "arrays"), dtype=np.float64)
    init = np.asarray(_need(arrays, "init", "arrays"), dtype=np.float64)
    d = lam.size
    if V.shape != (d, d):
        raise ValueError(f"theory_inputs: arrays['eigenvectors'] must have shape (d, d) = ({d}, {d}); got {V.shape}")
    if init.ndim != 3 or init.shape[0] != traj.n_runs:
        raise ValueError(
            f"theory_inputs: arrays['init'] has shape {init.shape} but the outputs have R={traj.n_runs} "
            "runs; a trajectory restricted with select(runs=...) no longer knows which initial weights "
            "belong to its runs: build the inputs from the full trajectory and select afterwards"
        )
    C = traj.n_outputs
    if "n_classes" in params and int(params["n_classes"]) != C:
        raise ValueError(
            f"theory_inputs: params['n_classes'] = {params['n_classes']} but the outputs have C = {C}"
        )
    flow = entry.time_unit == "time"
    if traj.time_unit != entry.time_unit:
        raise ValueError(
            f"theory_inputs: runner {model}/{optimizer} reports time_unit={entry.time_unit!r} but the "
            f"trajectory has {traj.time_unit!r}"
        )
    steps = _steps_from_times(traj, lr, flow)
    return TheoryInputs(
        model=model, optimizer=optimizer, eigenvalues=lam, teacher=teacher @ V, init=init @ V,
        lr=lr, steps=steps, times=traj.times if flow else steps.astype(np.float64),
        dynamics="flow" if flow else "gd", loss=getattr(entry.theory, "loss", "squared"),
        n_classes=C, n_runs=traj.n_runs,
        teacher_scale=float(_need(params, "teacher_scale", "params")),
        init_scale=float(_need(params, "init_scale", "params")),
    )


def predict_spectra(source: "Trajectory | EnsembleConfig", *, n_draws: int = 64, seed: int = 0) -> TheorySpectra | None:
    """The theory's spectra for a trajectory or config, or None when its runner has no theory.

    This is the one "can the theory handle this" gate: it asks the runner registry
    (``Runner.theory is not None``) and then calls the runner's theory hook on
    :func:`theory_inputs`.

    Parameters
    ----------
    source : Trajectory or EnsembleConfig
        As for :func:`theory_inputs`.
    n_draws, seed : int
        Quadrature size and seed of the expected spectrum.

    Returns
    -------
    TheorySpectra or None
        None when the runner named by the config or the trajectory's ``params`` has no theory
        hook, or is not a registered runner at all (e.g. a deep-net trajectory); ``draw`` is
        None for a config.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from linsim.ensemble import EnsembleConfig
    >>> cfg = EnsembleConfig(dim=3, n_samples=6, n_classes=2, n_runs=2, steps=4, n_checkpoints=2)
    >>> predict_spectra(replace(cfg, model="two_layer")) is None
    True
    >>> predict_spectra(cfg, n_draws=2).expected.shape
    (3,)
    """
    from linsim.ensemble import EnsembleConfig
    from linsim.runners import get_runner, has_theory
    from linsim.trajectory import Trajectory

    if isinstance(source, EnsembleConfig):
        source.validate()
        model, optimizer = source.model, source.optimizer
    else:
        if not isinstance(source, Trajectory):
            raise TypeError(f"predict_spectra takes a Trajectory or an EnsembleConfig; got {type(source).__name__}")
        model, optimizer = source.params.get("model"), source.params.get("optimizer")
    # None for runners without a hook and for trajectories of other origins (deep nets)
    if not (isinstance(model, str) and isinstance(optimizer, str) and has_theory(model, optimizer)):
        return None
    entry = get_runner(model, optimizer)
    return entry.theory(theory_inputs(source), n_draws=n_draws, seed=seed)


__all__ = ["SmallLogitTheory", "TheoryInputs", "TheorySpectra", "predict_spectra", "theory_inputs"]
