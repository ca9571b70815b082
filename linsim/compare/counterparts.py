"""Linear counterparts of deep networks: models the theory describes, on the same inputs.

For a trained deep configuration (its training set, its evaluation inputs and its checkpoint
steps) this module builds four :class:`~linsim.trajectory.Trajectory` objects that the linear
theory describes exactly, evaluated on **exactly the same evaluation inputs at the same
checkpoint steps**:

``linear``   the linear model ``W x + b`` on the squared loss toward one-hot targets, closed-form
             GD (:func:`linsim.solvers.linear_gd`);
``softmax``  the same linear model on softmax cross-entropy toward the labels, explicit GD
             (:func:`linsim.solvers.softmax.softmax_gd`);
``ntk``      the kernel machine with the network's **empirical NTK at initialization**
             (:func:`linsim.deep.ntk.empirical_ntk`, class-averaged), started from the network's own
             initial outputs: the lazy-regime prediction of that network (squared loss);
``random_features``  the linear model on fixed random ReLU features ``relu(A x) / sqrt(m)``.

Conventions
-----------
* Inputs are the flattened ``(n, d)`` arrays the trainer stores (after its normalization); a
  constant feature 1 is appended for the bias of ``linear``, ``softmax`` and
  ``random_features``.
* Targets of the squared-loss models are one-hot vectors; logits are the model outputs and the
  trajectories use the ``softmax`` output model, like the deep nets.
* Learning rate: each counterpart runs GD at ``lr_scale / lambda_max`` of its own curvature
  (``lambda_max`` of ``X^T X / n``, of ``Theta / n``, of the feature covariance; for softmax the
  cross-entropy curvature bound ``lambda_max / 2``), ``lr_scale = 1`` by default -- the standard
  ensemble's ``lr = 1 / lambda_1``.  The deep net's own learning rate is not transferable (a
  different parametrization), the checkpoint *steps* are.
* Initialization: ``R`` runs with weights i.i.d. ``N(0, sigma^2)``; ``sigma`` is chosen so that
  the initial logits have the same RMS as the deep nets' initial logits (``init_rms``), so the
  output-to-weight ratio of the counterparts matches the networks'.
* Seeds: every random draw comes from ``numpy.random.SeedSequence([seed, crc32(name)])`` of the
  root seed and the counterpart's name, so the same seed gives the same numbers, whatever other
  counterparts are registered or requested.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Callable, Mapping

import numpy as np

from linsim.registry import Registry
from linsim.solvers.kernel import KernelDynamics
from linsim.solvers.linear import linear_gd
from linsim.solvers.softmax import softmax_gd
from linsim.trajectory import Trajectory

__all__ = ["COUNTERPARTS", "CounterpartEntry", "CounterpartProblem", "NTKRecord", "build_counterparts",
           "precomputed_kernel_gd", "problem_from_deep", "register_counterpart"]


class _GramLookup:
    """A kernel "function" of integer-valued inputs that reads a precomputed Gram matrix.

    :class:`~linsim.solvers.kernel.KernelDynamics` accepts a callable kernel ``k(A, B)``; here the
    "inputs" are indices (as an ``(p, 1)`` float column): ``0..n-1`` name the training points
    and ``n..n+m-1`` the cross (evaluation) points, and the call returns the matching block of
    ``K_train`` (n, n) or ``K_cross`` (m, n).  This lets the kernel solver run on any kernel
    computed elsewhere (e.g. an empirical NTK) without changing it.
    """

    def __init__(self, K_train, K_cross=None):
        self.K_train = K_train
        self.K_cross = K_cross
        self.n = K_train.shape[0]

    def __call__(self, A, B):
        a = np.rint(A[:, 0]).astype(np.int64)
        b = np.rint(B[:, 0]).astype(np.int64)
        if np.any(b >= self.n):
            raise ValueError("the second kernel argument must name training points")
        if np.all(a < self.n):
            return self.K_train[np.ix_(a, b)]
        if self.K_cross is None or np.any(a < self.n):
            raise ValueError("evaluation points need K_cross")
        return self.K_cross[np.ix_(a - self.n, b)]


def precomputed_kernel_gd(K_train, Y, F0, lr, steps, *, K_cross=None, f0_cross=None):
    """Closed-form GD of a kernel machine given its Gram matrices (squared loss).

    ``F_{t+1} = F_t - lr (K / n) (F_t - Y)`` on the training outputs, and at other inputs
    ``f_{t+1}(x) = f_t(x) - (lr / n) k(x, X) (F_t - Y)`` (the normalization of
    :mod:`linsim.solvers.kernel`, which does the work).

    Parameters
    ----------
    K_train : array (n, n)
        Symmetric positive semi-definite kernel on the training inputs.
    Y : array (n, C)
        Training targets.
    F0 : array (R, n, C)
        Initial outputs on the training inputs.
    lr : float
        Learning rate, below ``2 / lambda_max(K / n)``.
    steps : sequence of K non-negative ints
    K_cross : array (m, n), optional
        Kernel between ``m`` evaluation inputs and the training inputs; then ``f0_cross``
        (R, m, C) must be given and the outputs are on the evaluation inputs.

    Returns
    -------
    numpy.ndarray float64 (R, K, n or m, C)

    Examples
    --------
    With the linear kernel this is the linear model's closed form:

    >>> import numpy as np
    >>> from linsim.solvers import linear_gd
    >>> rng = np.random.default_rng(0)
    >>> X, Y, W0 = rng.normal(size=(5, 2)), rng.normal(size=(5, 3)), rng.normal(size=(1, 3, 2))
    >>> F = precomputed_kernel_gd(X @ X.T, Y, X @ W0[0].T[None], 0.5, [0, 3])
    >>> bool(np.allclose(F, linear_gd(X, Y, W0, 0.5, [0, 3])))
    True
    """
    K_train = np.asarray(K_train, dtype=np.float64)
    if K_train.ndim != 2 or K_train.shape[0] != K_train.shape[1]:
        raise ValueError(f"K_train must be a square (n, n) matrix; got shape {K_train.shape}")
    n = K_train.shape[0]
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"Y must have shape (n, C) with n = {n}; got {Y.shape}")
    if K_cross is not None:
        K_cross = np.asarray(K_cross, dtype=np.float64)
        if K_cross.ndim != 2 or K_cross.shape[1] != n:
            raise ValueError(f"K_cross must have shape (m, n) with n = {n}; got {K_cross.shape}")
    lookup = _GramLookup(K_train, K_cross)
    idx_train = np.arange(n, dtype=np.float64)[:, None]
    dyn = KernelDynamics(idx_train, Y, kind=lookup)
    if K_cross is None:
        return dyn.train_outputs(F0, steps, lr)
    if f0_cross is None:
        raise ValueError("f0_cross (initial outputs on the evaluation inputs) is required with K_cross")
    idx_cross = n + np.arange(K_cross.shape[0], dtype=np.float64)[:, None]
    return dyn.test_outputs(F0, f0_cross, idx_cross, steps, lr)


# ---------------------------------------------------------------------------------------------
# the problem every counterpart solves
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CounterpartProblem:
    """What a deep configuration was trained and evaluated on, for its linear counterparts.

    Attributes
    ----------
    X_train : array (n, *input_shape)
        Training inputs (after the trainer's normalization), in the network's input shape.
    y_train : int array (n,)
    X_eval : array (m, *input_shape)
        Evaluation inputs (exactly those of the deep trajectory).
    y_eval : int array (m,)
    n_classes : int
    steps : int array (K,)
        Checkpoint steps of the deep trajectory.
    init_rms : float
        RMS of the deep nets' logits at step 0 on the evaluation inputs (the counterparts'
        initial logits are scaled to it).
    n_runs : int
        Runs ``R`` of every counterpart.
    seed : int
        Root seed of the counterparts' random draws.
    networks : callable or None
        ``networks(r) -> torch.nn.Module`` at initialization for run ``r`` (needed by ``ntk``).
    label : str
        Name of the deep configuration (``counterpart_of`` in the trajectories' params).
    eval_inputs : array (m, d) or None
        The flattened evaluation inputs stored in the deep trajectory (copied into the
        counterparts so that they compare as evaluated on the same inputs).

    Examples
    --------
    >>> import numpy as np
    >>> p = CounterpartProblem(np.ones((4, 2)), [0, 1, 0, 1], np.ones((2, 2)), [0, 1], 2, [0, 3], init_rms=0.1)
    >>> p.one_hot().tolist()[:2], p.steps.tolist()
    ([[1.0, 0.0], [0.0, 1.0]], [0, 3])
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray
    n_classes: int
    steps: np.ndarray
    init_rms: float
    n_runs: int = 2
    seed: int = 0
    networks: Callable | None = None
    label: str = ""
    eval_inputs: np.ndarray | None = None

    def __post_init__(self):
        for name in ("X_train", "X_eval"):
            x = np.asarray(getattr(self, name), dtype=np.float64)
            if x.ndim < 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
                raise ValueError(f"CounterpartProblem.{name} must be a finite (n, ...) array; got shape {x.shape}")
            object.__setattr__(self, name, x)
        for name, xname in (("y_train", "X_train"), ("y_eval", "X_eval")):
            y = np.asarray(getattr(self, name))
            if y.shape != (getattr(self, xname).shape[0],) or y.dtype.kind not in "iu":
                raise ValueError(f"CounterpartProblem.{name} must be integer labels of shape (n,) matching {xname}")
            if y.min() < 0 or y.max() >= self.n_classes:
                raise ValueError(f"CounterpartProblem.{name} has labels outside [0, {self.n_classes})")
            object.__setattr__(self, name, y.astype(np.int64))
        if self.X_train.shape[1:] != self.X_eval.shape[1:]:
            raise ValueError("CounterpartProblem: X_train and X_eval must have the same input shape")
        steps = np.asarray(self.steps)
        if steps.ndim != 1 or steps.size == 0 or np.any(steps < 0) or np.any(steps != np.round(steps)):
            raise ValueError("CounterpartProblem.steps must be non-negative integers (K,)")
        object.__setattr__(self, "steps", steps.astype(np.int64))
        if not (np.isfinite(self.init_rms) and self.init_rms >= 0):
            raise ValueError(f"CounterpartProblem.init_rms must be finite and >= 0; got {self.init_rms}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"CounterpartProblem.seed must be a non-negative integer; got {self.seed!r}")
        if int(self.n_runs) < 1:
            raise ValueError(f"CounterpartProblem.n_runs must be >= 1; got {self.n_runs}")

    @property
    def flat_train(self) -> np.ndarray:
        """Training inputs flattened to ``(n, d)``."""
        return self.X_train.reshape(self.X_train.shape[0], -1)

    @property
    def flat_eval(self) -> np.ndarray:
        """Evaluation inputs flattened to ``(m, d)``."""
        return self.X_eval.reshape(self.X_eval.shape[0], -1)

    def one_hot(self) -> np.ndarray:
        """One-hot training targets ``(n, C)``."""
        return np.eye(self.n_classes)[self.y_train]


@dataclass(frozen=True)
class NTKRecord:
    """The empirical NTK of one run's network at initialization (kept for the theory controls).

    Attributes
    ----------
    run : int
    spectrum : array (n,)
        Eigenvalues of ``Theta / n`` on the training inputs, descending.

    Examples
    --------
    >>> import numpy as np
    >>> NTKRecord(0, np.array([2.0, 1.0])).spectrum.tolist()
    [2.0, 1.0]
    """

    run: int
    spectrum: np.ndarray


@dataclass(frozen=True)
class CounterpartEntry:
    """One registered counterpart: ``solve(problem, seed_sequence, lr_scale, **options)``
    returns ``(outputs (R, K, m, C), params dict)``; ``description`` is one line for reports.

    ``options`` are the entry's tunable settings with their defaults (overridable through
    :func:`build_counterparts`'s ``options``); ``runtime`` names the run-time settings of
    :func:`build_counterparts` (``"device"``, ``"dtype"``) that ``solve`` also accepts.  A
    ``"records"`` list in the returned params (e.g. NTK spectra) is taken out and returned
    separately by :func:`build_counterparts`.

    Examples
    --------
    >>> COUNTERPARTS["ntk"].description.split(" (")[0]
    "kernel machine with the network's empirical NTK at initialization"
    """

    name: str
    solve: Callable
    description: str
    options: Mapping[str, object] = field(default_factory=dict)
    runtime: tuple = ()


#: The counterpart registry (name -> :class:`CounterpartEntry`).
COUNTERPARTS: Registry[CounterpartEntry] = Registry("counterpart", type=CounterpartEntry, key=attrgetter("name"))


def register_counterpart(entry: CounterpartEntry, *, replace: bool = False) -> CounterpartEntry:
    """Add a counterpart to :data:`COUNTERPARTS` (a new name unless ``replace=True``; returns the entry).

    Examples
    --------
    >>> register_counterpart(COUNTERPARTS["linear"])
    Traceback (most recent call last):
    ...
    ValueError: counterpart 'linear' is already registered; pass replace=True to overwrite it
    """
    return COUNTERPARTS.add(entry, replace=replace)


def _with_bias(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _init_weights(rng, R, C, features, init_rms):
    """i.i.d. Gaussian weights whose logits on ``features`` (the evaluation features, where
    ``init_rms`` was measured) have expected mean square ``init_rms**2``."""
    mean_sq = float(np.mean(np.sum(features ** 2, axis=1)))
    sigma = init_rms / math.sqrt(mean_sq) if mean_sq > 0 else 0.0
    return sigma * rng.standard_normal((R, C, features.shape[1])), sigma


def _lam_max(F):
    """Largest eigenvalue of ``F^T F / n`` (from the smaller of the two Gram matrices)."""
    G = F.T @ F if F.shape[1] <= F.shape[0] else F @ F.T
    return float(np.linalg.eigvalsh(G)[-1]) / F.shape[0]


def _feature_gd(F, Y, W0, lr, steps, Fz):
    """Closed-form GD of the linear model on features ``F`` (n, p) with outputs on ``Fz`` (m, p).

    In the primal (the ``p x p`` covariance, :func:`linsim.solvers.linear_gd`) when ``p <= n``,
    else in the dual: the same dynamics as the kernel machine with ``K = F F^T`` started from
    ``F W0^T`` (:func:`precomputed_kernel_gd`, ``n x n``), exact either way."""
    if F.shape[1] <= F.shape[0]:
        return linear_gd(F, Y, W0, lr, steps, inputs=Fz)
    F0 = np.einsum("np,rcp->rnc", F, W0)
    f0 = np.einsum("mp,rcp->rmc", Fz, W0)
    return precomputed_kernel_gd(F @ F.T, Y, F0, lr, steps, K_cross=Fz @ F.T, f0_cross=f0)


def _solve_linear(problem, ss, lr_scale):
    X, Z = _with_bias(problem.flat_train), _with_bias(problem.flat_eval)
    W0, sigma = _init_weights(np.random.default_rng(ss), problem.n_runs, problem.n_classes, Z, problem.init_rms)
    lr = lr_scale / _lam_max(X)
    out = _feature_gd(X, problem.one_hot(), W0, lr, problem.steps, Z)
    return out, {"lr": lr, "init_std": sigma, "loss": "mse"}


def _solve_softmax(problem, ss, lr_scale):
    X, Z = _with_bias(problem.flat_train), _with_bias(problem.flat_eval)
    W0, sigma = _init_weights(np.random.default_rng(ss), problem.n_runs, problem.n_classes, Z, problem.init_rms)
    lr = lr_scale / _lam_max(X)
    out = softmax_gd(X, problem.one_hot(), W0, lr, problem.steps, inputs=Z)
    return out, {"lr": lr, "init_std": sigma, "loss": "cross_entropy"}


def _solve_random_features(problem, ss, lr_scale, n_features=512):
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise ValueError(f"random_features option n_features must be a positive integer; got {n_features!r}")
    feat_ss, init_ss = ss.spawn(2)
    d = problem.flat_train.shape[1]
    A = np.random.default_rng(feat_ss).standard_normal((int(n_features), d)) / math.sqrt(d)

    def phi(X):
        return _with_bias(np.maximum(X @ A.T, 0.0) * math.sqrt(2.0 / n_features))

    F, Fz = phi(problem.flat_train), phi(problem.flat_eval)
    W0, sigma = _init_weights(np.random.default_rng(init_ss), problem.n_runs, problem.n_classes, Fz,
                              problem.init_rms)
    lr = lr_scale / _lam_max(F)
    out = _feature_gd(F, problem.one_hot(), W0, lr, problem.steps, Fz)
    return out, {"lr": lr, "init_std": sigma, "loss": "mse", "n_features": int(n_features)}


def _solve_ntk(problem, ss, lr_scale, device=None, dtype="float64"):
    import torch

    from linsim.deep.ntk import empirical_ntk, ntk_spectrum

    if problem.networks is None:
        raise ValueError("the 'ntk' counterpart needs CounterpartProblem.networks (the initialized networks)")
    del ss  # the networks carry their own seeds
    outs, records, lrs = [], [], []
    Xt = torch.as_tensor(problem.X_train)
    Xe = torch.as_tensor(problem.X_eval)
    for r in range(problem.n_runs):
        net = problem.networks(r)
        tdt = {"float64": torch.float64, "float32": torch.float32}[dtype]
        K = empirical_ntk(net, Xt, device=device, dtype=tdt)
        Kc = empirical_ntk(net, Xe, Xt, device=device, dtype=tdt)
        was = net.training
        net.eval()
        with torch.no_grad():
            dt = next(net.parameters()).dtype
            F0 = net(Xt.to(dt)).double().numpy()[None]
            f0 = net(Xe.to(dt)).double().numpy()[None]
        net.train(was)
        spec = ntk_spectrum(K)
        lr = lr_scale / spec[0]
        outs.append(precomputed_kernel_gd(K, problem.one_hot(), F0, lr, problem.steps, K_cross=Kc, f0_cross=f0)[0])
        records.append(NTKRecord(run=r, spectrum=spec))
        lrs.append(lr)
    return np.stack(outs), {"lr": float(np.mean(lrs)), "loss": "mse", "records": records}


register_counterpart(CounterpartEntry(
    "linear", _solve_linear, "linear model W x + b, squared loss on one-hot targets, closed-form GD"))
register_counterpart(CounterpartEntry(
    "softmax", _solve_softmax, "linear model W x + b, softmax cross-entropy, explicit GD"))
register_counterpart(CounterpartEntry(
    "ntk", _solve_ntk, "kernel machine with the network's empirical NTK at initialization (lazy regime)",
    runtime=("device", "dtype")))
register_counterpart(CounterpartEntry(
    "random_features", _solve_random_features,
    "linear model on fixed random ReLU features (option n_features), squared loss, closed-form GD",
    {"n_features": 512}))


def _counterpart_seed(seed, name):
    """The seed sequence of one counterpart: a function of the root seed and the counterpart's
    name only, so that registering another counterpart changes no one's numbers."""
    return np.random.SeedSequence([int(seed), zlib.crc32(name.encode())])


def build_counterparts(problem, kinds=("linear", "softmax", "ntk", "random_features"), *, lr_scale=1.0,
                       device=None, ntk_dtype="float64", options=None):
    """Trajectories of the linear counterparts of one deep configuration.

    Parameters
    ----------
    problem : CounterpartProblem
    kinds : sequence of str
        Names in :data:`COUNTERPARTS`.
    lr_scale : float
        Each counterpart runs GD at ``lr_scale / lambda_max`` of its own curvature (``< 2``).
    device : optional
        Device of the NTK Jacobians.
    ntk_dtype : {"float64", "float32"}
        Precision of the NTK Jacobians (the kernel is accumulated in float64 either way).
    options : dict name -> dict, optional
        Overrides of a counterpart's registered options, e.g.
        ``{"random_features": {"n_features": 64}}``; unknown option names are refused.

    Returns
    -------
    trajectories : dict name -> Trajectory
        Outputs ``(R, K, m, C)`` on the evaluation inputs at the deep checkpoint steps,
        softmax output model, ``params["family"] = name``.
    ntk : list of NTKRecord
        The NTK spectra of the ``ntk`` counterpart's networks (empty without it).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    >>> prob = CounterpartProblem(X, y, X[:10], y[:10], 3, [0, 5, 50], init_rms=0.1)
    >>> trajs, _ = build_counterparts(prob, ["linear", "random_features"])
    >>> trajs["linear"].outputs.shape, trajs["random_features"].params["family"]
    ((2, 3, 10, 3), 'random_features')
    """
    if ntk_dtype not in ("float64", "float32"):
        raise ValueError(f"ntk_dtype must be 'float64' or 'float32'; got {ntk_dtype!r}")
    if not 0 < float(lr_scale) < 2:
        raise ValueError(f"lr_scale must be in (0, 2) (GD stability); got {lr_scale}")
    for name in kinds:
        COUNTERPARTS.lookup(name)  # refuses an unknown name up front, listing the valid ones
    options = dict(options or {})
    for name, opts in options.items():
        if name not in COUNTERPARTS:
            raise ValueError(f"options given for unknown counterpart {name!r}; valid: {sorted(COUNTERPARTS)}")
        bad = set(opts) - set(COUNTERPARTS[name].options)
        if bad:
            raise ValueError(f"counterpart {name!r} has no option {sorted(bad)[0]!r}; its options: "
                             f"{sorted(COUNTERPARTS[name].options) or 'none'}")
    runtime = {"device": device, "dtype": ntk_dtype}
    out, ntk = {}, []
    for name in kinds:
        entry = COUNTERPARTS[name]
        kwargs = {**entry.options, **options.get(name, {}), **{k: runtime[k] for k in entry.runtime}}
        outputs, info = entry.solve(problem, _counterpart_seed(problem.seed, name), float(lr_scale), **kwargs)
        ntk.extend(info.pop("records", []))
        params = {"family": name, "kind": "linear", "counterpart_of": problem.label, **info}
        out[name] = Trajectory(outputs=outputs, times=problem.steps.astype(np.float64), time_unit="step",
                               output_model="softmax", params=params,
                               inputs=problem.eval_inputs if problem.eval_inputs is not None else problem.flat_eval,
                               labels=problem.y_eval)
    return out, ntk


def _config_from_params(params):
    from linsim.deep.config import TrainConfig

    names = set(TrainConfig.field_names())
    if params.get("dataset") == "arrays":
        raise ValueError("the deep trajectory was trained on user arrays: its training set cannot be "
                         "reloaded from the parameters; build a CounterpartProblem by hand")
    values = {k: v for k, v in params.items() if k in names and k != "dataset_options"}
    values["dataset_options"] = {k[len("dataset_"):]: v for k, v in params.items()
                                 if k.startswith("dataset_") and k != "dataset_sha256"}
    if values.get("optimizer") in ("adam", "adamw"):
        values["momentum"] = None
    return TrainConfig.from_mapping(values)


def problem_from_deep(traj, *, n_runs=2, seed=0, check_init=True):
    """The :class:`CounterpartProblem` of a deep-network trajectory written by the trainer.

    Reloads the training set from the trajectory's parameters (:func:`linsim.deep.load_dataset`
    with the same options) and rebuilds the networks at initialization with the trainer's seeding
    (:func:`linsim.deep.train.run_streams`, stream 0, for each kept run).

    Parameters
    ----------
    traj : Trajectory
        The ``train`` trajectory of a :class:`linsim.deep.train.TrainResult`.
    n_runs : int
        Runs of each counterpart (at most the deep runs kept, for ``ntk``).
    seed : int
        Root seed of the counterparts' draws.
    check_init : bool
        Verify that the rebuilt networks reproduce the stored step-0 logits (not possible for
        ``init="corner"``, whose step 0 follows a pre-training phase); a mismatch raises.

    Returns
    -------
    CounterpartProblem

    Examples
    --------
    >>> from linsim.compare._examples import tiny_trajectories
    >>> prob = problem_from_deep(tiny_trajectories()[1], n_runs=1)
    >>> prob.X_train.shape, prob.X_eval.shape, prob.steps.tolist()
    ((32, 1, 8, 8), (16, 1, 8, 8), [0, 1, 2, 6])
    """
    import torch

    from linsim.deep import build_model, initialize, load_dataset
    from linsim.deep.train import run_streams

    cfg = _config_from_params(traj.params)
    data = load_dataset(cfg.dataset, n_train=cfg.n_train, n_test=cfg.n_test, eval_stride=cfg.eval_stride,
                        dtype="float64", seed=cfg.data_seed, **dict(cfg.dataset_options))
    if data.eval_index.size != traj.n_samples:
        raise ValueError(f"reloaded data set has {data.eval_index.size} evaluation samples; the trajectory has "
                         f"{traj.n_samples}")
    if not np.array_equal(data.y_eval, traj.labels):
        raise ValueError("reloaded evaluation labels differ from the trajectory's: the data set changed")
    kept = np.asarray(traj.arrays.get("run_index", np.arange(traj.n_runs)), dtype=np.int64)
    scheme = "default" if cfg.init == "corner" else cfg.init
    dtype = torch.float64

    def networks(r):
        run = int(kept[r])
        g = torch.Generator().manual_seed(int(run_streams(cfg.seed, run)[0].generate_state(1, np.uint64)[0]))
        net = build_model(cfg.architecture, tuple(data.input_shape), int(data.n_classes), width=cfg.width,
                          depth=cfg.depth, activation=cfg.activation, batch_norm=cfg.batch_norm,
                          dtype=dtype, device="cpu")
        return initialize(net, scheme, scale=cfg.init_scale, generator=g)

    R = min(int(n_runs), traj.n_runs)
    if check_init and cfg.init != "corner":
        net = networks(0).eval()
        with torch.no_grad():
            z0 = net(torch.as_tensor(data.X_eval, dtype=dtype)).numpy()
        stored = np.asarray(traj.outputs[0, 0], dtype=np.float64)
        err = float(np.max(np.abs(z0 - stored)))
        tol = 1e-3 * max(1.0, float(np.max(np.abs(stored))))
        if err > tol:
            raise ValueError(f"the rebuilt network of run {int(kept[0])} does not reproduce the stored step-0 logits "
                             f"(max |difference| {err:.3g} > {tol:.3g}): the trainer's seeding or model changed")
    X_train = np.asarray(data.X_train, dtype=np.float64)
    z = np.asarray(traj.outputs[:, 0], dtype=np.float64)
    return CounterpartProblem(
        X_train=X_train, y_train=data.y_train, X_eval=np.asarray(data.X_eval, dtype=np.float64),
        y_eval=data.y_eval, n_classes=int(data.n_classes), steps=np.asarray(traj.times).astype(np.int64),
        init_rms=float(np.sqrt(np.mean(z ** 2))), n_runs=R, seed=seed, networks=networks,
        label=str(traj.params.get("architecture", "")), eval_inputs=traj.inputs)
