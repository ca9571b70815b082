"""``TrainConfig``: every knob of one deep-network training configuration, validated.

One configuration trains ``n_runs`` seeds of one architecture at once.  The configuration
is frozen; :meth:`TrainConfig.params` gives its scalar hyper-parameters (what goes into
``Trajectory.params`` and the netCDF attributes) and :meth:`TrainConfig.config_id` a stable
hash of the fields that define the result (everything but ``device``, ``engine``,
``compile`` and ``eval_batch_size``, which change only round-off or memory), used to name
result files.

Names are checked against the registries: datasets (:data:`linsim.deep.data.DATASETS`),
architectures (:data:`linsim.deep.models.ARCHITECTURES`), initializations
(:data:`linsim.deep.init.INITS` plus ``"corner"``), optimizers
(:data:`linsim.deep.optim.OPTIMIZERS`), losses (:data:`linsim.deep.losses.LOSSES`), learning-rate
schedules (:data:`linsim.deep.optim.LR_SCHEDULES`), checkpoint schedules
(:data:`linsim.deep.schedule.CHECKPOINT_SCHEDULES`) and engines (``vmap``, ``loop``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

import numpy as np

from linsim.deep.losses import LOSSES
from linsim.deep.optim import LR_SCHEDULES, OPTIMIZERS
from linsim.deep.schedule import CHECKPOINT_SCHEDULES

__all__ = ["DTYPES", "ENGINES", "TrainConfig"]

DTYPES = ("float32", "float64")
#: How the R runs are trained: one vmapped group, or a Python loop of plain modules (the built-in
#: entries of :data:`linsim.deep.ensemble.ENSEMBLES`, the registry that ``engine`` is checked against).
ENGINES = ("vmap", "loop")
#: Fields that do not change the result beyond round-off (left out of ``config_id``).
_NOT_IDENTITY = ("device", "engine", "compile", "eval_batch_size")


def _data_registry():
    from linsim.deep.data import DATASETS
    return DATASETS


def _model_registry():
    from linsim.deep.models import ARCHITECTURES
    return ARCHITECTURES


def _activation_registry():
    from linsim.deep.models import ACTIVATIONS
    return ACTIVATIONS


def _init_registry():
    from linsim.deep.init import INITS
    return {**dict(INITS), "corner": None}


#: Field -> the registry its value must name (data/model registries imported lazily).
_REGISTRIES = {
    "dataset": _data_registry, "architecture": _model_registry,
    "activation": _activation_registry, "init": _init_registry,
    "optimizer": lambda: OPTIMIZERS, "loss": lambda: LOSSES,
    "lr_schedule": lambda: LR_SCHEDULES, "schedule": lambda: CHECKPOINT_SCHEDULES,
}


def _registry(kind: str) -> Mapping[str, Any]:
    return _REGISTRIES[kind]()


def _check_name(field_name: str, value, kind: str | None = None) -> None:
    valid = _registry(kind or field_name)
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"TrainConfig.{field_name}: unknown {kind or field_name} {value!r}; "
                         f"valid: {sorted(valid)}")


def _check_int(name: str, value, minimum: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}"
                         f"{' or None' if optional else ''}; got {value!r}")


def _check_float(name: str, value, *, positive: bool, optional: bool = False, below=None) -> None:
    if optional and value is None:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > 0 if positive else v >= 0) and (below is None or v < below)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        extra = f" and < {below}" if below is not None else ""
        raise ValueError(f"TrainConfig.{name} must be a finite number {bound}{extra}"
                         f"{' or None' if optional else ''}; got {value!r}")


def _dataset_arrays(value) -> tuple[np.ndarray, ...]:
    if not (isinstance(value, (tuple, list)) and len(value) == 4):
        raise ValueError(
            "TrainConfig.dataset must be a registered dataset name or a 4-tuple of arrays "
            f"(X_train, y_train, X_test, y_test); got {type(value).__name__}"
            + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        )
    arrays = tuple(np.asarray(a) for a in value)
    names = ("X_train", "y_train", "X_test", "y_test")
    for name, a in zip(names, arrays):
        if a.dtype.kind not in "biuf":
            raise ValueError(f"TrainConfig.dataset[{names.index(name)}] ({name}) must be numeric; "
                             f"got dtype {a.dtype}")
    return arrays


@dataclass(frozen=True, eq=False)
class TrainConfig:
    """One deep-network training configuration (R seeds trained at once).

    Attributes
    ----------
    dataset : str or tuple (X_train, y_train, X_test, y_test)
        A registered dataset name (``mnist1d``, ``digits``, ``synthetic``, ...) or user arrays.
    dataset_options : mapping of str to scalar
        Extra options of the dataset loader (e.g. ``{"c": 0.5}`` for ``synthetic``); stored as
        ``dataset_<name>`` in :meth:`params`.
    data_seed : int
        Seed of the data set itself (generation / split); kept apart from ``seed`` so that
        configurations with different training seeds see the same data.
    n_train, n_test : int or None
        Subsample sizes of the training / test split (None: all).
    eval_stride : int
        Evaluate on every ``eval_stride``-th training sample (the study used 2).
    architecture : str
        A registered architecture (``linear``, ``deep_linear``, ``mlp``, ``cnn``, ...).
    width : float
        Width multiplier shared by every family.
    depth : int or None
        Depth (None: the architecture's default).
    activation : str
        A registered activation (:data:`linsim.deep.models.ACTIVATIONS`: ``relu``, ``tanh``, ...).
    batch_norm : bool or None
        BatchNorm on or off (None: the family's default).
    init : str
        ``default``, ``kaiming``, ``normal`` (registered schemes), or ``corner``: the default
        initialization followed by ``corner_steps`` updates on uniformly random labels (each
        run its own labels) with the same optimizer, then a fresh optimizer state and the
        true labels; checkpoint steps count from the end of the corner phase (step 0 is the
        corner).
    init_scale : float
        Scale factor of the initialization (``normal``: the standard deviation factor).
    corner_steps : int
        Pre-training updates of ``init="corner"`` (must be > 0 then, 0 otherwise).
    optimizer : str
        ``sgd``, ``nesterov``, ``adam`` or ``adamw``.
    lr : float
        Base learning rate (> 0).
    momentum : float or None
        Momentum (None: 0 for ``sgd``, 0.9 for ``nesterov``; unused by Adam).
    weight_decay : float
        L2 coefficient (decoupled for ``adamw``).
    lr_schedule : {"constant", "cosine"}
        ``cosine`` anneals to 0 over ``steps`` updates.
    batch_size : int
        Samples per update; each epoch is a fresh permutation per run and the last partial
        batch is dropped, so ``batch_size = n_train`` is full-batch gradient descent.
    steps : int
        Optimizer updates after the (optional) corner phase.
    augment : bool
        Random crop (padding 4) + horizontal flip for images, random shifts for 1-D signals.
    loss : {"cross_entropy", "mse"}
    schedule : {"log", "study"}
        Checkpoint schedule (:mod:`linsim.deep.schedule`).
    n_checkpoints : int
        Log-spaced checkpoints after step 0 (``schedule="log"``).
    n_runs : int
        Seeds ``R`` trained at once.
    seed : int
        Root of all randomness: ``SeedSequence(seed)`` (see :mod:`linsim.deep.train`).
    dtype : {"float32", "float64"}
    device : str or None
        ``None`` picks CUDA when available, else the CPU.
    engine : {"vmap", "loop"}
        ``vmap``: one vectorized group (default); ``loop``: a Python loop of plain modules and
        ``torch.optim`` (the reference the tests and benchmarks compare against).
    eval_batch_size : int
        Samples per evaluation forward pass (memory only; no effect on results).
    compile : bool
        Wrap the vmapped gradient in ``torch.compile`` (``engine="vmap"`` only; faster per
        step after a compilation of tens of seconds; changes only round-off).

    Examples
    --------
    >>> cfg = TrainConfig(dataset="digits", architecture="linear", steps=10, n_runs=2)
    >>> cfg.params()["architecture"], len(cfg.config_id())
    ('linear', 16)
    >>> TrainConfig(optimizer="lion")
    Traceback (most recent call last):
    ...
    ValueError: TrainConfig.optimizer: unknown optimizer 'lion'; valid: ['adam', 'adamw', 'nesterov', 'sgd']
    """

    dataset: Any = "mnist1d"
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    data_seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    eval_stride: int = 1
    architecture: str = "mlp"
    width: float = 1.0
    depth: int | None = None
    activation: str = "relu"
    batch_norm: bool | None = None
    init: str = "default"
    init_scale: float = 1.0
    corner_steps: int = 0
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float | None = None
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    batch_size: int = 100
    steps: int = 200
    augment: bool = False
    loss: str = "cross_entropy"
    schedule: str = "log"
    n_checkpoints: int = 20
    n_runs: int = 4
    seed: int = 0
    dtype: str = "float32"
    device: str | None = None
    engine: str = "vmap"
    eval_batch_size: int = 1024
    compile: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.dataset, str):
            _check_name("dataset", self.dataset)
        else:
            object.__setattr__(self, "dataset", _dataset_arrays(self.dataset))
        if not isinstance(self.dataset_options, Mapping):
            raise ValueError(f"TrainConfig.dataset_options must be a mapping; got "
                             f"{type(self.dataset_options).__name__}")
        opts = {}
        for k, v in self.dataset_options.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"TrainConfig.dataset_options: keys must be identifiers; got {k!r}")
            if isinstance(v, np.generic):
                v = v.item()
            if not isinstance(v, (str, int, float, bool)):
                raise ValueError(f"TrainConfig.dataset_options[{k!r}] must be a scalar; got "
                                 f"{type(v).__name__}")
            opts[k] = v
        object.__setattr__(self, "dataset_options", dict(sorted(opts.items())))
        _check_int("data_seed", self.data_seed, 0)
        _check_int("n_train", self.n_train, 1, optional=True)
        _check_int("n_test", self.n_test, 1, optional=True)
        _check_int("eval_stride", self.eval_stride, 1)
        _check_name("architecture", self.architecture)
        _check_float("width", self.width, positive=True)
        _check_int("depth", self.depth, 1, optional=True)
        _check_name("activation", self.activation)
        for name in ("batch_norm", "augment"):
            if name == "batch_norm" and self.batch_norm is None:
                continue
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"TrainConfig.{name} must be True or False; got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        _check_name("init", self.init)
        _check_float("init_scale", self.init_scale, positive=True)
        _check_int("corner_steps", self.corner_steps, 0)
        if (self.init == "corner") != (self.corner_steps > 0):
            raise ValueError(
                "TrainConfig: init='corner' needs corner_steps > 0, and corner_steps > 0 needs "
                f"init='corner'; got init={self.init!r}, corner_steps={self.corner_steps}")
        _check_name("optimizer", self.optimizer)
        _check_float("lr", self.lr, positive=True)
        _check_float("momentum", self.momentum, positive=False, optional=True, below=1.0)
        if self.optimizer == "nesterov" and self.momentum is not None and not self.momentum > 0:
            raise ValueError("TrainConfig.momentum must be > 0 for optimizer='nesterov'")
        if self.optimizer in ("adam", "adamw") and self.momentum not in (None, 0, 0.0):
            raise ValueError(f"TrainConfig.momentum is not used by optimizer={self.optimizer!r}; "
                             "leave it None")
        _check_float("weight_decay", self.weight_decay, positive=False)
        _check_name("lr_schedule", self.lr_schedule)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("steps", self.steps, 0)
        _check_name("loss", self.loss)
        _check_name("schedule", self.schedule)
        _check_int("n_checkpoints", self.n_checkpoints, 1)
        _check_int("n_runs", self.n_runs, 1)
        _check_int("seed", self.seed, 0)
        if self.dtype not in DTYPES:
            raise ValueError(f"TrainConfig.dtype must be one of {DTYPES}; got {self.dtype!r}")
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))
        from linsim.deep.ensemble import ENSEMBLES  # the engine registry (ENGINES: its built-in names)

        ENSEMBLES.lookup(self.engine, what="TrainConfig.engine")
        _check_int("eval_batch_size", self.eval_batch_size, 1)
        if not isinstance(self.compile, (bool, np.bool_)):
            raise ValueError(f"TrainConfig.compile must be True or False; got {self.compile!r}")
        object.__setattr__(self, "compile", bool(self.compile))
        if self.compile and self.engine != "vmap":
            raise ValueError("TrainConfig.compile=True needs engine='vmap'")
        for name in ("width", "init_scale", "lr", "weight_decay"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.momentum is not None:
            object.__setattr__(self, "momentum", float(self.momentum))

    # ------------------------------------------------------------------ derived values
    @property
    def effective_momentum(self) -> float:
        """The momentum actually used (the optimizer's default when ``momentum`` is None)."""
        if self.momentum is not None:
            return float(self.momentum)
        return float(OPTIMIZERS[self.optimizer].default_momentum)

    @property
    def dataset_name(self) -> str:
        """The dataset's registry name, or ``"arrays"`` for user arrays."""
        return self.dataset if isinstance(self.dataset, str) else "arrays"

    def _dataset_digest(self) -> str | None:
        if isinstance(self.dataset, str):
            return None
        h = hashlib.sha256()
        for a in self.dataset:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        return h.hexdigest()[:16]

    def params(self) -> dict[str, Any]:
        """Scalar hyper-parameters (``Trajectory.params``): every field, options flattened.

        ``dataset`` is the name (``"arrays"`` plus ``dataset_sha256`` for user arrays);
        ``dataset_options`` entries appear as ``dataset_<key>``; ``momentum`` is the effective
        momentum.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dataset":
                out["dataset"] = self.dataset_name
                digest = self._dataset_digest()
                if digest is not None:
                    out["dataset_sha256"] = digest
            elif f.name == "dataset_options":
                out.update({f"dataset_{k}": v for k, v in value.items()})
            elif f.name == "momentum":
                out["momentum"] = self.effective_momentum
            else:
                out[f.name] = value
        return out

    def identity(self) -> dict[str, Any]:
        """The fields that define the result (for hashing): :meth:`params` minus the ones that
        change only round-off or memory (device, engine, compile, eval_batch_size)."""
        p = self.params()
        for name in _NOT_IDENTITY:
            p.pop(name, None)
        return p

    def config_id(self) -> str:
        """A stable 16-hex-digit hash of :meth:`identity` (names result files).

        Examples
        --------
        >>> a = TrainConfig(dataset="digits", lr=0.1)
        >>> a.config_id() == TrainConfig(dataset="digits", lr=0.1, device="cpu").config_id()
        True
        >>> a.config_id() == TrainConfig(dataset="digits", lr=0.2).config_id()
        False
        """
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all fields, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "") -> "TrainConfig":
        """Build from a mapping (a grid entry); unknown keys are refused with the valid ones.

        Examples
        --------
        >>> TrainConfig.from_mapping({"dataset": "digits", "lrate": 0.1}, where="grid.mlp")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: grid.mlp: unknown TrainConfig field 'lrate'; valid fields: activation, architecture, ...
        """
        names = cls.field_names()
        unknown = [k for k in values if k not in names]
        if unknown:
            prefix = f"{where}: " if where else ""
            raise ValueError(f"{prefix}unknown TrainConfig field {unknown[0]!r}; valid fields: "
                             + ", ".join(sorted(names)))
        return cls(**dict(values))

    def __eq__(self, other) -> bool:
        if not isinstance(other, TrainConfig):
            return NotImplemented
        return self.params() == other.params()

    def __hash__(self) -> int:
        return hash(json.dumps(self.params(), sort_keys=True, default=str))
