"""Train R seeds of one deep-network configuration at once; record them as trajectories.

:func:`train` turns a :class:`~linsim.deep.config.TrainConfig` into a :class:`TrainResult`
whose ``.train`` and ``.test`` are :class:`linsim.Trajectory` objects: logits
``(R, K, n, C)`` at the checkpoint steps on the training-evaluation set (the training
samples at ``eval_index``, **un-augmented**) and on the test set, in eval mode.

Random streams
--------------
Run ``r`` draws everything from ``SeedSequence(seed, spawn_key=(r,))``, split by ``spawn(4)``
into: initialization (a CPU ``torch.Generator``), data order (a fresh permutation of the
training set each epoch), augmentation, and corner labels.  A run therefore gets the same
numbers whatever ``n_runs`` is, with either engine (``vmap`` or ``loop``), and when it is
trained inside a group of configurations (:func:`train_group`); the data set itself is drawn
from ``data_seed``, shared by every run.

Training loop
-------------
Each epoch is ``E = n_train // batch_size`` updates (the last partial batch is dropped, so
all shapes stay fixed).  Update ``t`` (0-based) uses the learning rate
``lr * lr_multiplier(lr_schedule, t, steps)``.  Checkpoint step ``s`` is evaluated after ``s``
updates.  With ``init="corner"``, ``corner_steps`` updates on uniformly random labels come
first (same optimizer and schedule over ``corner_steps``), then the optimizer state is reset
and the step counter restarts at 0: step 0 of the trajectory is the corner.

Divergence
----------
A run diverges at the first update whose batch loss is not finite (``diverged_step`` = the
number of updates completed before it), or at the first checkpoint where its evaluation
logits are not finite (that checkpoint's step).  A run that diverges during a corner phase
gets ``diverged_step = 0`` and ``arrays["corner_diverged"]`` True.  Diverged runs are **dropped** from ``.train`` and ``.test`` (a
:class:`~linsim.Trajectory` holds finite outputs only); ``arrays["run_index"]`` lists the
runs kept and ``arrays["diverged_step"]`` (all R runs, -1 when finite) records the others.
When every run diverges, training stops and the trajectories hold zero runs.  Nothing is
raised: a grid goes on.

What is recorded (each Trajectory)
----------------------------------
``outputs`` logits (R_kept, K, n, C), float32 (``dtype="float64"``: float64); ``times`` the
checkpoint steps (``time_unit="step"``); ``inputs`` the evaluation inputs after
normalization, flattened to (n, d); ``labels``; ``params`` every hyper-parameter
(:meth:`TrainConfig.params`) plus ``split``, ``n_classes``, ``steps_per_epoch``,
``input_shape`` and the data set's own parameters as ``data_<name>``; ``arrays``: ``loss``
and ``error`` (R_kept, K, n) per sample and checkpoint, ``run_index`` (R_kept,),
``diverged_step`` (R,), ``train_loss`` (R_kept, K) the mean training-batch loss of the
update that followed each checkpoint (NaN at the last).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from linsim.deep.augment import augment_batch, augmentation_kind
from linsim.deep.config import TrainConfig
from linsim.deep.ensemble import ENSEMBLES, Ensemble
from linsim.deep.losses import per_sample_loss
from linsim.deep.optim import OPTIMIZERS, lr_multiplier, make_hyper
from linsim.deep.schedule import checkpoints as checkpoint_schedule
from linsim.trajectory import Trajectory

__all__ = ["GROUPABLE", "TrainResult", "check_runnable", "group_key", "resolve_device",
           "run_streams", "torch_threads", "train", "train_group"]

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_N_STREAMS = 4  # init, order, augmentation, corner labels


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device``, or CUDA when available and ``device`` is None, else the CPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"TrainConfig.device: not a torch device: {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"TrainConfig.device={device!r} but CUDA is not available here")
    return dev


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)``, restoring the caller's count afterwards.

    ``None`` leaves the setting alone.  Small networks train several times faster with one
    intra-op thread on a busy CPU (no spinning threads competing for cores).

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"num_threads must be a positive integer or None; got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_streams(seed: int, run: int) -> list[np.random.SeedSequence]:
    """The four seed sequences of run ``run``: init, data order, augmentation, corner labels.

    Examples
    --------
    >>> a = run_streams(0, 3)[1].generate_state(2)
    >>> b = np.random.SeedSequence(0).spawn(5)[3].spawn(4)[1].generate_state(2)
    >>> bool((a == b).all())
    True
    """
    return np.random.SeedSequence(seed, spawn_key=(run,)).spawn(_N_STREAMS)


def _torch_seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, np.uint64)[0])


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of :func:`train` for one configuration.

    Attributes
    ----------
    config : TrainConfig
    train, test : Trajectory
        Logits (R_kept, K, n, C) on the training-evaluation set and on the test set (see the
        module docstring for everything they record).
    diverged_step : array (R,) int64
        Step at which each run diverged, -1 for runs that stayed finite.
    initial_params, final_params : dict of str -> array (R, ...)
        Stacked parameters of all R runs before the first update of the recorded phase
        (after any corner phase) and after the last; kept in memory, not written to disk.
    wall_time : float
        Seconds spent in :func:`train`.
    """

    config: TrainConfig
    train: Trajectory
    test: Trajectory
    diverged_step: np.ndarray
    initial_params: Mapping[str, np.ndarray] = field(default_factory=dict)
    final_params: Mapping[str, np.ndarray] = field(default_factory=dict)
    wall_time: float = 0.0

    @property
    def n_diverged(self) -> int:
        """Number of runs that diverged."""
        return int((self.diverged_step >= 0).sum())

    def __repr__(self) -> str:
        c = self.config
        return (f"TrainResult({c.architecture} on {c.dataset_name}, {c.optimizer} lr={c.lr:g}, "
                f"R={c.n_runs} ({self.n_diverged} diverged), K={self.train.n_checkpoints}, "
                f"n_train_eval={self.train.n_samples}, n_test={self.test.n_samples}, "
                f"{self.wall_time:.1f} s)")

    # ------------------------------------------------------------------ disk format
    def to_dataset(self):
        """One ``xarray.Dataset`` holding both splits (variables and dims prefixed
        ``train_`` / ``test_``) and every hyper-parameter as a ``param_<name>`` attribute."""

        import xarray as xr

        parts = []
        split_attrs = {}
        for split in ("train", "test"):
            ds = getattr(self, split).to_dataset()
            names = list(ds.variables) + [d for d in ds.dims if d not in ds.variables]
            ds = ds.rename({n: f"{split}_{n}" for n in names})
            split_attrs[split] = dict(ds.attrs)
            ds.attrs = {}
            parts.append(ds)
        out = xr.merge(parts, combine_attrs="drop")
        out["diverged_step"] = (("run_all",), np.asarray(self.diverged_step, dtype=np.int64))
        out["diverged_step"].attrs.update(
            long_name="step at which each run diverged (-1: finite)", units="step")
        attrs: dict[str, Any] = {
            "title": "linsim deep-network training result",
            "linsim_type": "TrainResult",
            "config_id": self.config.config_id(),
            "config_json": json.dumps(self.config.params(), sort_keys=True, default=str),
            "train_attrs_json": json.dumps(split_attrs["train"], default=str),
            "test_attrs_json": json.dumps(split_attrs["test"], default=str),
            "wall_time_s": float(self.wall_time),
            "n_diverged": self.n_diverged,
            "comment": "logits of R runs at K checkpoints on the training-evaluation set (train_*) "
                       "and the test set (test_*); diverged runs are dropped from the outputs "
                       "and recorded in diverged_step",
        }
        for key, value in self.config.params().items():
            if isinstance(value, bool):
                attrs[f"param_{key}"] = int(value)
            elif isinstance(value, (str, int, float)):
                attrs[f"param_{key}"] = value
        out.attrs = attrs
        return out

    def save(self, path: str | Path, *, command=None, compress: int | None = None) -> Path:
        """Write atomically with checksums (:func:`linsim.storage.write_netcdf`).

        Parameters
        ----------
        path : path
            Target ``.nc`` file (its folder is created if needed).
        command : str or list of str, optional
            Command line recorded in ``history`` (default ``sys.argv``).
        compress : int in 1..9, optional
            Lossless gzip level of every array (None: uncompressed).  Float32 logits are
            nearly incompressible: level 4 saves about 12% on the default grid's files at
            ~0.05 s per file.

        Examples
        --------
        >>> import tempfile
        >>> cfg = TrainConfig(dataset="digits", n_train=32, n_test=8, architecture="linear",
        ...                   batch_size=16, steps=2, n_checkpoints=1, n_runs=1, device="cpu")
        >>> res = train(cfg)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     back = TrainResult.load(res.save(Path(d) / "r.nc", command="doctest", compress=4))
        >>> bool((back.train.outputs == res.train.outputs).all()), back.config == cfg
        (True, True)
        """
        from linsim.storage import write_netcdf

        ds = self.to_dataset()
        checksum = [n for n in ds.data_vars]
        return write_netcdf(ds, Path(path), command=command, checksum_vars=checksum,
                            compress=compress)

    @classmethod
    def load(cls, path: str | Path) -> "TrainResult":
        """Read a file written by :meth:`save` back into a :class:`TrainResult`.

        The configuration is rebuilt from the stored parameters (same ``config_id``); files of
        user-array data sets cannot rebuild theirs (use :meth:`load_trajectories`).
        ``initial_params`` / ``final_params`` are not stored and come back empty.
        """
        train_t, test_t, div, params, attrs = cls._read(path)
        if params.get("dataset") == "arrays":
            raise ValueError(f"{str(path)!r} was trained on user arrays, which the file does not "
                             "hold; use TrainResult.load_trajectories")
        names = set(TrainConfig.field_names())
        options = {k[len("dataset_"):]: v for k, v in params.items()
                   if k.startswith("dataset_") and k not in names and k != "dataset_sha256"}
        fields_ = {k: v for k, v in params.items() if k in names and k != "dataset_options"}
        config = TrainConfig(**fields_, dataset_options=options)
        return cls(config=config, train=train_t, test=test_t, diverged_step=div,
                   wall_time=float(attrs.get("wall_time_s", 0.0)))

    @staticmethod
    def load_trajectories(path: str | Path) -> tuple[Trajectory, Trajectory, np.ndarray, dict]:
        """Read a file written by :meth:`save`: ``(train, test, diverged_step, params)``.

        Checksums are verified (:func:`linsim.storage.read_netcdf`).
        """
        return TrainResult._read(path)[:4]

    @staticmethod
    def _read(path):
        from linsim.storage import read_netcdf

        ds = read_netcdf(path)
        if ds.attrs.get("linsim_type") != "TrainResult":
            raise ValueError(f"{str(path)!r} was not written by TrainResult.save")
        trajs = []
        for split in ("train", "test"):
            prefix = f"{split}_"
            names = [n for n in ds.variables if n.startswith(prefix)]
            sub = ds[[n for n in names if n in ds.data_vars]]
            sub = sub.drop_vars([v for v in sub.variables if not v.startswith(prefix)], errors="ignore")
            dims = [d for d in sub.dims if d.startswith(prefix)]
            rename = {n: n[len(prefix):] for n in list(sub.variables) + dims if n.startswith(prefix)}
            sub = sub.rename(rename)
            sub.attrs = json.loads(ds.attrs[f"{split}_attrs_json"])
            trajs.append(Trajectory.from_dataset(sub))
        params = json.loads(ds.attrs["config_json"])
        return trajs[0], trajs[1], ds["diverged_step"].values.astype(np.int64), params, dict(ds.attrs)


class _Sampler:
    """Per-run epoch permutations (drop-last batches), each run from its own stream."""

    def __init__(self, rngs: list[np.random.Generator], n: int, batch: int) -> None:
        self.rngs, self.n, self.batch = rngs, n, batch
        self.per_epoch = n // batch
        self.orders = [None] * len(rngs)
        self.pos = self.per_epoch  # forces a fresh permutation on the first call

    def next(self) -> np.ndarray:
        if self.pos >= self.per_epoch:
            self.orders = [g.permutation(self.n) for g in self.rngs]
            self.pos = 0
        j = self.pos * self.batch
        self.pos += 1
        return np.stack([o[j:j + self.batch] for o in self.orders])


def _build_models(config: TrainConfig, data, dtype, device,
                  runs: list[tuple[int, int]]) -> list[torch.nn.Module]:
    """One initialized model per ``(seed, run index)`` pair."""
    from linsim.deep.init import initialize
    from linsim.deep.models import build_model

    scheme = "default" if config.init == "corner" else config.init
    models = []
    for seed, r in runs:
        g = torch.Generator().manual_seed(_torch_seed(run_streams(seed, r)[0]))
        model = build_model(config.architecture, tuple(data.input_shape), int(data.n_classes),
                            width=config.width, depth=config.depth, activation=config.activation,
                            batch_norm=config.batch_norm, dtype=dtype, device="cpu")
        initialize(model, scheme, scale=config.init_scale, generator=g)
        models.append(model.to(device))
    return models


def _load_data(config: TrainConfig):
    from linsim.deep.data import load_dataset

    return load_dataset(config.dataset, n_train=config.n_train, n_test=config.n_test,
                        eval_stride=config.eval_stride, dtype=config.dtype, seed=config.data_seed,
                        **dict(config.dataset_options))


def _check_data_matches(config: TrainConfig, data) -> None:
    """Refuse a pre-loaded data set that is not what ``config`` would load (names the field)."""
    wants = [("dataset", config.dataset_name), ("eval_stride", config.eval_stride),
             ("dtype", config.dtype), ("seed", config.data_seed)]
    wants += [(k, config.dataset_options[k]) for k in config.dataset_options]
    wants += [(k, getattr(config, k)) for k in ("n_train", "n_test") if getattr(config, k) is not None]
    for key, want in wants:
        have = data.params.get(key)
        if have != want:
            name = {"seed": "data_seed"}.get(key, key)
            raise ValueError(f"train(data=...): the data set has {key}={have!r} but the "
                             f"configuration asks for {name}={want!r}")


def _params_numpy(ens: Ensemble) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in ens.stacked_parameters().items()}


def check_runnable(config: TrainConfig) -> None:
    """Refuse, before any training, a configuration that cannot run on its data.

    Checks without loading the data set (:func:`linsim.deep.data.dataset_signature`): the
    architecture accepts the data's input shape and the model builds with the given width,
    depth, activation and BatchNorm; augmentation has an axis to shift; the batch fits in
    ``n_train`` when that is given; the device exists.

    Raises
    ------
    ValueError
        Naming the field and the problem.

    Examples
    --------
    >>> check_runnable(TrainConfig(dataset="mnist1d", architecture="cnn"))
    >>> check_runnable(TrainConfig(dataset="mnist1d", n_train=50, batch_size=64))
    Traceback (most recent call last):
    ...
    ValueError: TrainConfig.batch_size=64 exceeds n_train=50
    """
    from linsim.deep.data import dataset_signature
    from linsim.deep.models import build_model

    resolve_device(config.device)
    try:
        shape, n_classes = dataset_signature(config.dataset, **dict(config.dataset_options))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"TrainConfig.dataset_options: {exc}") from None
    if config.n_train is not None and config.batch_size > config.n_train:
        raise ValueError(f"TrainConfig.batch_size={config.batch_size} exceeds n_train={config.n_train}")
    if config.augment:
        augmentation_kind(shape)
    try:
        build_model(config.architecture, tuple(shape), int(n_classes), width=config.width,
                    depth=config.depth, activation=config.activation, batch_norm=config.batch_norm)
    except (KeyError, TypeError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise ValueError(f"TrainConfig.architecture={config.architecture!r} on {config.dataset_name} "
                         f"(input shape {tuple(shape)}): {msg}") from None


def train(config: TrainConfig, *, progress: Callable[[int], None] | None = None,
          data=None, num_threads: int | None = None) -> TrainResult:
    """Train the ``n_runs`` seeds of ``config`` at once and record their trajectories.

    Parameters
    ----------
    config : TrainConfig
    progress : callable, optional
        Called with the number of updates just completed (for progress bars).
    data : DeepDataset, optional
        The loaded data set of ``config`` (saves re-loading it across a grid); must be what
        ``config`` would load.
    num_threads : int, optional
        torch intra-op threads while training (restored afterwards); None leaves the caller's
        setting.  Results do not depend on it beyond round-off.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        When the configuration cannot run on its data (batch larger than the training set,
        augmentation of plain vectors, unavailable device, ...), naming the field.

    Examples
    --------
    >>> cfg = TrainConfig(dataset="digits", n_train=64, n_test=16, architecture="linear",
    ...                   batch_size=16, steps=8, n_checkpoints=3, n_runs=2, device="cpu")
    >>> res = train(cfg)
    >>> res.train.outputs.shape, res.train.outputs.dtype, res.train.times.tolist()
    ((2, 4, 64, 10), dtype('float32'), [0.0, 1.0, 3.0, 8.0])
    >>> res.train.arrays["loss"].shape, res.diverged_step.tolist()
    ((2, 4, 64), [-1, -1])
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train needs a TrainConfig; got {type(config).__name__}")
    with torch_threads(num_threads):
        return _train_group([config], progress, data)[0]


#: Fields in which the configurations of one vectorized group may differ (values only).
GROUPABLE = ("seed", "n_runs", "lr", "momentum", "weight_decay")


def group_key(config: TrainConfig) -> str:
    """Configurations with equal keys can be trained in one vectorized group.

    They may differ only in :data:`GROUPABLE` fields (per-run values of the same operations).

    Examples
    --------
    >>> a = TrainConfig(dataset="digits", lr=0.1, seed=0)
    >>> group_key(a) == group_key(a.replace(lr=0.3, seed=5)), group_key(a) == group_key(a.replace(steps=7))
    (True, False)
    """
    p = config.params()
    for name in GROUPABLE:
        p.pop(name, None)
    return json.dumps(p, sort_keys=True, default=str)


def train_group(configs, *, progress: Callable[[int], None] | None = None, data=None,
                num_threads: int | None = None) -> list[TrainResult]:
    """Train several configurations that differ only in values (seed, lr, momentum, weight
    decay, n_runs) as **one** vectorized ensemble; one :class:`TrainResult` per configuration.

    Each run keeps its own random streams (``run_streams(config.seed, r)``) and its own
    hyper-parameters, so every result equals what :func:`train` gives for that configuration
    alone (to round-off); only the speed differs (one vmapped group instead of several).

    Examples
    --------
    >>> a = TrainConfig(dataset="digits", n_train=32, n_test=8, architecture="linear",
    ...                 batch_size=16, steps=2, n_checkpoints=1, n_runs=1, device="cpu")
    >>> [r.train.n_runs for r in train_group([a, a.replace(lr=0.2, n_runs=2)])]
    [1, 2]
    """
    configs = list(configs)
    if not configs or not all(isinstance(c, TrainConfig) for c in configs):
        raise TypeError("train_group needs a non-empty list of TrainConfig")
    keys = [group_key(c) for c in configs]
    for i, k in enumerate(keys):
        if k != keys[0]:
            a, b = json.loads(keys[0]), json.loads(k)
            diff = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
            raise ValueError(f"train_group: configuration {i} differs from configuration 0 in "
                             f"{diff}; a group may differ only in {list(GROUPABLE)}")
    with torch_threads(num_threads):
        return _train_group(configs, progress, data)


def _train_group(configs: list[TrainConfig], progress, data) -> list[TrainResult]:
    t_start = time.perf_counter()
    config = configs[0]
    device = resolve_device(config.device)
    dtype = _TORCH_DTYPES[config.dtype]
    if data is None:
        data = _load_data(config)
    else:
        _check_data_matches(config, data)
    n_train = int(data.X_train.shape[0])
    if config.batch_size > n_train:
        raise ValueError(f"TrainConfig.batch_size={config.batch_size} exceeds the {n_train} "
                         "training samples")
    if config.augment:
        augmentation_kind(data.input_shape)  # refuses plain vectors with a clear message
    per_epoch = n_train // config.batch_size
    steps_k = checkpoint_schedule(config.schedule, config.steps, per_epoch, config.n_checkpoints)
    runs = [(c.seed, r) for c in configs for r in range(c.n_runs)]
    owner = np.concatenate([np.full(c.n_runs, i) for i, c in enumerate(configs)])
    R, K, C = len(runs), steps_k.size, int(data.n_classes)

    X = torch.as_tensor(np.ascontiguousarray(data.X_train), dtype=dtype, device=device)
    y = torch.as_tensor(data.y_train, dtype=torch.long, device=device)
    X_eval = X[torch.as_tensor(data.eval_index, device=device)]
    y_eval = y[torch.as_tensor(data.eval_index, device=device)]
    X_test = torch.as_tensor(np.ascontiguousarray(data.X_test), dtype=dtype, device=device)
    y_test = torch.as_tensor(data.y_test, dtype=torch.long, device=device)

    streams = [run_streams(seed, r) for seed, r in runs]
    order_rngs = [np.random.default_rng(s[1]) for s in streams]
    aug_rngs = [np.random.default_rng(s[2]) for s in streams]
    sampler = _Sampler(order_rngs, n_train, config.batch_size)
    loss_fn = per_sample_loss(config.loss)
    opt = OPTIMIZERS[config.optimizer]
    per_run = [configs[i] for i in owner]
    hyper = make_hyper(R, lr=[c.lr for c in per_run],
                       momentum=[c.effective_momentum for c in per_run],
                       weight_decay=[c.weight_decay for c in per_run], device=device, dtype=dtype)
    models = _build_models(config, data, dtype, device, runs)
    engine_kw = {"compile": True} if config.compile else {}
    ens = ENSEMBLES[config.engine](models, opt, hyper, loss_fn, **engine_kw)

    diverged = torch.full((R,), -1, dtype=torch.long, device=device)
    corner_diverged = torch.zeros(R, dtype=torch.bool, device=device)

    def update(labels: torch.Tensor, t: int, n_total: int) -> torch.Tensor:
        """Update ``t`` of ``n_total`` with per-run labels (R, n_train); returns the batch losses."""
        idx = torch.as_tensor(sampler.next(), device=device)
        xb = X[idx]
        yb = labels.gather(1, idx)
        if config.augment:
            xb = augment_batch(xb, aug_rngs)
        batch_loss = ens.train_step(xb, yb, lr_multiplier(config.lr_schedule, t, n_total))
        if progress is not None:
            progress(1)
        return batch_loss

    if config.init == "corner":
        g_labels = [np.random.default_rng(s[3]).integers(0, C, size=n_train) for s in streams]
        corner_labels = torch.as_tensor(np.stack(g_labels), dtype=torch.long, device=device)
        for t in range(config.corner_steps):
            batch_loss = update(corner_labels, t, config.corner_steps)
            corner_diverged |= ~torch.isfinite(batch_loss)
        ens.reset_optimizer()
        diverged = torch.where(corner_diverged, torch.zeros_like(diverged), diverged)
    initial = _params_numpy(ens)

    np_dtype = np.float32 if config.dtype == "float32" else np.float64
    n_eval, n_test = int(X_eval.shape[0]), int(X_test.shape[0])
    buf = {
        "train": np.full((R, K, n_eval, C), np.nan, dtype=np_dtype),
        "test": np.full((R, K, n_test, C), np.nan, dtype=np_dtype),
    }
    per_sample = {s: {"loss": np.full((R, K, buf[s].shape[2]), np.nan, dtype=np_dtype),
                      "error": np.full((R, K, buf[s].shape[2]), np.nan, dtype=np_dtype)}
                  for s in buf}
    train_loss = np.full((R, K), np.nan, dtype=np_dtype)
    sets = {"train": (X_eval, y_eval), "test": (X_test, y_test)}
    labels_true = y.unsqueeze(0).expand(R, n_train)
    k_of_step = {int(s): k for k, s in enumerate(steps_k)}

    def evaluate(k: int, step: int) -> None:
        nonlocal diverged
        for split, (xs, ys) in sets.items():
            logits = ens.predict(xs, config.eval_batch_size)  # (R, n, C)
            losses = loss_fn(logits.reshape(-1, C), ys.repeat(R)).reshape(R, -1)
            errors = (logits.argmax(-1) != ys.unsqueeze(0)).to(logits.dtype)
            finite = torch.isfinite(logits).reshape(R, -1).all(1)
            diverged = torch.where(~finite & (diverged < 0), torch.full_like(diverged, step), diverged)
            buf[split][:, k] = logits.cpu().numpy()
            per_sample[split]["loss"][:, k] = losses.cpu().numpy()
            per_sample[split]["error"][:, k] = errors.cpu().numpy()

    done = 0
    stopped_at = None
    for k, target in enumerate(int(s) for s in steps_k):
        while done < target:
            batch_loss = update(labels_true, done, config.steps)
            bad = ~torch.isfinite(batch_loss) & (diverged < 0)
            diverged = torch.where(bad, torch.full_like(diverged, done), diverged)
            if done in k_of_step:
                train_loss[:, k_of_step[done]] = batch_loss.detach().cpu().numpy()
            done += 1
        evaluate(k, target)
        if bool((diverged >= 0).all()):
            stopped_at = target
            break

    final = _params_numpy(ens)
    div_all = diverged.cpu().numpy().astype(np.int64)
    corner_all = corner_diverged.cpu().numpy()
    wall = time.perf_counter() - t_start
    results = []
    for ci, cfg in enumerate(configs):
        rows = np.flatnonzero(owner == ci)
        div = div_all[rows]
        keep_local = np.flatnonzero(div == -1)
        keep = rows[keep_local]
        common = dict(cfg.params())
        common.update(steps_per_epoch=per_epoch, n_classes=C,
                      input_shape="x".join(str(s) for s in data.input_shape),
                      device_used=str(device), stopped_at=-1 if stopped_at is None else stopped_at,
                      group_runs=R)
        common.update({f"data_{k}": v for k, v in data.params.items() if k != "dataset"})
        trajs = {}
        for split, (xs, ys) in sets.items():
            inputs = xs.reshape(xs.shape[0], -1).cpu().numpy()
            trajs[split] = Trajectory(
                outputs=buf[split][keep], times=steps_k.astype(np.float64), time_unit="step",
                output_model="softmax", params={**common, "split": split}, inputs=inputs,
                labels=ys.cpu().numpy(),
                arrays={"loss": per_sample[split]["loss"][keep],
                        "error": per_sample[split]["error"][keep],
                        "run_index": keep_local.astype(np.int64), "diverged_step": div,
                        "corner_diverged": corner_all[rows],
                        "train_loss": train_loss[keep]},
            )
        results.append(TrainResult(
            config=cfg, train=trajs["train"], test=trajs["test"], diverged_step=div,
            initial_params={k: v[rows] for k, v in initial.items()},
            final_params={k: v[rows] for k, v in final.items()},
            wall_time=wall))
    return results
