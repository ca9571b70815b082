"""The one trajectory type shared by every solver and by the deep-net trainer.

A :class:`Trajectory` holds the *outputs* (logits, or regression means) of ``R`` training
runs at ``K`` checkpoints on ``n`` samples and ``C`` output channels, together with the
checkpoint times, the output model that turns outputs into probability distributions, the
parameters that produced it and the data it was evaluated on.  Everything downstream
(probabilities, distances, InPCA, metrics, sweeps, plots) consumes this type only.

Conventions
-----------
* ``outputs`` has shape ``(R, K, n, C)``; float32 outputs (deep networks) are kept as float32
  without a copy, every other real dtype is converted to float64. Distances accumulate in
  float64 either way.
* ``times`` has shape ``(K,)``; ``time_unit`` says whether they count discrete optimizer
  steps (``"step"``) or continuous gradient-flow time (``"time"``, in units of 1/learning
  rate, i.e. the flow ``dW/dt = -grad L``).
* ``output_model`` is one of

  - ``"softmax"``: categorical over ``C`` classes, ``p = softmax(outputs)``;
  - ``"bernoulli"``: ``C == 1``, one logit per sample, ``p(y=1) = sigmoid(output)``;
  - ``"gaussian"``: independent Gaussians with means ``outputs`` and a fixed standard
    deviation ``noise_scale`` (regression).

* ``params`` holds scalar metadata (str, int, float, bool) only; ``arrays`` holds named
  numpy arrays (e.g. the teacher, initial weights, the input spectrum).
* On disk a trajectory is a netCDF file written with xarray (:meth:`Trajectory.save`), never a
  pickle: written atomically (temporary file + rename), with CF-style provenance attributes, every
  parameter as an attribute and a SHA-256 checksum of each array that :meth:`Trajectory.load`
  verifies. Variables are read by dimension name, so the order on disk does not matter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

OUTPUT_MODELS = ("softmax", "bernoulli", "gaussian")
TIME_UNITS = ("step", "time")


def _as_scalar(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


def _real_array(value: Any, name: str, *, keep_float32: bool = False) -> np.ndarray:
    """``value`` as a real floating array: float32 kept (if allowed), else float64; complex refused."""
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise TypeError(f"Trajectory.{name} must be real; got a complex array (dtype {arr.dtype})")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Trajectory.{name} must be numeric; got dtype {arr.dtype}")
    if keep_float32 and arr.dtype == np.float32:
        return arr
    return np.asarray(arr, dtype=np.float64)


def _labels(value: Any, n: int, output_model: str, n_outputs: int) -> np.ndarray:
    y = np.asarray(value)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape (n,) = ({n},); got {y.shape}")
    if y.dtype.kind == "b" or y.dtype.kind not in "iuf":
        raise TypeError(f"labels must be integers; got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argwhere(bad)[0, 0])
            raise ValueError(f"labels must be integers; labels[{i}] = {y[i]!r}")
    y = y.astype(np.int64)
    n_classes = {"softmax": n_outputs, "bernoulli": 2}.get(output_model)
    low = y < 0
    high = (y >= n_classes) if n_classes is not None else np.zeros_like(low)
    if (low | high).any():
        i = int(np.argwhere(low | high)[0, 0])
        rng = f"[0, {n_classes})" if n_classes is not None else ">= 0"
        raise ValueError(f"labels must lie in {rng} for the {output_model} output model; "
                         f"labels[{i}] = {y[i]}")
    return y


@dataclass(frozen=True)
class Trajectory:
    """Outputs of ``R`` runs at ``K`` checkpoints on ``n`` samples and ``C`` outputs.

    Parameters
    ----------
    outputs : array (R, K, n, C), float64 or float32
        Logits (``softmax``/``bernoulli``) or means (``gaussian``). float32 is kept as is (no
        copy); any other real dtype becomes float64.
    times : array (K,), float64
        Checkpoint times, non-decreasing; steps for ``time_unit="step"``.
    time_unit : {"step", "time"}
    output_model : {"softmax", "bernoulli", "gaussian"}
    params : mapping of str to scalar
        Everything needed to reproduce the run (model, optimizer, lr, seeds, ...).
    inputs : array (n, d) or None
        The inputs the outputs were evaluated on.
    labels : int array (n,) or None
        Class labels of the samples, when defined.
    noise_scale : float
        Standard deviation of the ``gaussian`` output model (ignored otherwise).
    arrays : mapping of str to array
        Extra named arrays (teacher weights, initial weights, spectrum, ...).
    """

    outputs: np.ndarray
    times: np.ndarray
    time_unit: str = "step"
    output_model: str = "softmax"
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: np.ndarray | None = None
    labels: np.ndarray | None = None
    noise_scale: float = 1.0
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        out = _real_array(self.outputs, "outputs", keep_float32=True)
        if out.ndim != 4:
            raise ValueError(
                f"Trajectory.outputs must have shape (R, K, n, C); got ndim={out.ndim} "
                f"with shape {out.shape}"
            )
        if not np.all(np.isfinite(out)):
            r, k, i, c = np.argwhere(~np.isfinite(out))[0]
            raise ValueError(
                f"Trajectory.outputs contains NaN or inf (first at run {r}, checkpoint {k}, "
                f"sample {i}, output {c}); the training run diverged or the input was bad"
            )
        times = _real_array(self.times, "times")
        if times.shape != (out.shape[1],):
            raise ValueError(
                f"Trajectory.times must have shape (K,) = ({out.shape[1]},); got {times.shape}"
            )
        if not np.all(np.isfinite(times)):
            k = int(np.argwhere(~np.isfinite(times))[0, 0])
            raise ValueError(f"Trajectory.times contains NaN or inf (at checkpoint {k}): {times[k]}")
        if np.any(np.diff(times) < 0):
            k = int(np.argwhere(np.diff(times) < 0)[0, 0])
            raise ValueError(
                f"Trajectory.times must be non-decreasing; times[{k}] = {times[k]:g} > "
                f"times[{k + 1}] = {times[k + 1]:g}"
            )
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {TIME_UNITS}; got {self.time_unit!r}")
        if self.output_model not in OUTPUT_MODELS:
            raise ValueError(
                f"output_model must be one of {OUTPUT_MODELS}; got {self.output_model!r}"
            )
        if self.output_model == "bernoulli" and out.shape[3] != 1:
            raise ValueError(
                f"the bernoulli output model takes one logit per sample (C == 1); got C={out.shape[3]}"
            )
        if self.output_model == "gaussian" and not (np.isfinite(self.noise_scale) and self.noise_scale > 0):
            raise ValueError(f"noise_scale must be finite and > 0; got {self.noise_scale}")
        if self.inputs is not None:
            x = _real_array(self.inputs, "inputs", keep_float32=True)
            if x.ndim != 2 or x.shape[0] != out.shape[2]:
                raise ValueError(
                    f"inputs must have shape (n, d) with n={out.shape[2]}; got {x.shape}"
                )
            object.__setattr__(self, "inputs", x)
        if self.labels is not None:
            object.__setattr__(self, "labels", _labels(self.labels, out.shape[2], self.output_model,
                                                       out.shape[3]))
        for key, value in self.params.items():
            value = _as_scalar(value)
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                raise TypeError(
                    f"params[{key!r}] must be a scalar (str, int, float, bool or None); "
                    f"got {type(value).__name__}; put arrays in `arrays`"
                )
        arrays = {}
        for k, v in self.arrays.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"arrays keys must be identifiers (they name netCDF variables); got {k!r}")
            arrays[k] = np.asarray(v)
        object.__setattr__(self, "outputs", out)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "params", {k: _as_scalar(v) for k, v in self.params.items()})
        object.__setattr__(self, "arrays", arrays)

    def __repr__(self) -> str:
        R, K, n, C = self.outputs.shape
        t0, t1 = (self.times[0], self.times[-1]) if K else (np.nan, np.nan)
        model = self.params.get("model", self.params.get("architecture"))
        what = f", model={model!r}" if model is not None else ""
        return (f"Trajectory(R={R}, K={K}, n={n}, C={C}, {self.output_model}, "
                f"{self.time_unit} {t0:g}..{t1:g}, {self.outputs.dtype}{what})")

    # ------------------------------------------------------------------ shape helpers
    @property
    def n_runs(self) -> int:
        """Number of runs ``R``."""
        return self.outputs.shape[0]

    @property
    def n_checkpoints(self) -> int:
        """Number of checkpoints ``K``."""
        return self.outputs.shape[1]

    @property
    def n_samples(self) -> int:
        """Number of samples ``n``."""
        return self.outputs.shape[2]

    @property
    def n_outputs(self) -> int:
        """Number of output channels ``C`` (1 for the bernoulli model)."""
        return self.outputs.shape[3]

    @property
    def n_points(self) -> int:
        """Number of models ``M = R * K`` (one per run and checkpoint)."""
        return self.n_runs * self.n_checkpoints

    def point_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Run index and checkpoint index of each of the ``M = R*K`` flattened points.

        Points are flattened run-major: point ``m = r*K + k``.
        """
        r, k = np.meshgrid(
            np.arange(self.n_runs), np.arange(self.n_checkpoints), indexing="ij"
        )
        return r.ravel(), k.ravel()

    def flat_outputs(self) -> np.ndarray:
        """Outputs of all points, shape ``(M, n, C)``, run-major (see :meth:`point_index`)."""
        return self.outputs.reshape(self.n_points, self.n_samples, self.n_outputs)

    # ------------------------------------------------------------------ probabilities
    def log_probs(self, dtype=None) -> np.ndarray:
        """Log-probabilities of every point, shape ``(M, n, C')``, in the outputs' dtype.

        ``C' = C`` for softmax, ``C' = 2`` for bernoulli (classes 0 and 1).  Undefined for
        the gaussian output model (its distances come from the means directly).  Computed with
        ``scipy.special.log_softmax`` / ``log_expit`` (stable for logits of any size), in
        ``dtype`` when given (float32 logits are then normalized to float64 accuracy, which
        mixing them with float64 models needs).

        Examples
        --------
        >>> t = Trajectory(outputs=np.zeros((1, 1, 2, 4)), times=[0])
        >>> np.exp(t.log_probs()).round(3).tolist()
        [[[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]]
        """
        from scipy.special import log_expit, log_softmax

        z = self.flat_outputs()
        if dtype is not None:
            z = z.astype(np.dtype(dtype), copy=False)
        if self.output_model == "softmax":
            return log_softmax(z, axis=-1)
        if self.output_model == "bernoulli":
            return np.concatenate([log_expit(-z), log_expit(z)], axis=-1)
        raise ValueError(
            "log_probs is undefined for the gaussian output model; use the Gaussian "
            "Bhattacharyya distance on the means (linsim.inpca)"
        )

    def probs(self) -> np.ndarray:
        """Probabilities of every point, shape ``(M, n, C')`` (see :meth:`log_probs`)."""
        return np.exp(self.log_probs())

    # ------------------------------------------------------------------ selection
    def select(self, runs=None, checkpoints=None) -> "Trajectory":
        """A new trajectory restricted to some runs and/or checkpoints (index arrays)."""
        out = self.outputs
        times = self.times
        if runs is not None:
            out = out[np.atleast_1d(runs)]
        if checkpoints is not None:
            idx = np.atleast_1d(checkpoints)
            out = out[:, idx]
            times = times[idx]
        return Trajectory(
            outputs=out,
            times=times,
            time_unit=self.time_unit,
            output_model=self.output_model,
            params=dict(self.params),
            inputs=self.inputs,
            labels=self.labels,
            noise_scale=self.noise_scale,
            arrays=dict(self.arrays),
        )

    # ------------------------------------------------------------------ disk format
    def to_dataset(self):
        """An ``xarray.Dataset`` with dims ``run, checkpoint, sample, output`` (+ extras).

        Global attributes: ``linsim_type``, ``time_unit``, ``output_model``, ``noise_scale``,
        ``params_json`` (the parameters, exactly) and one ``param_<name>`` attribute per
        parameter that netCDF can hold (str, int, float; booleans as 0/1), so that tools that do
        not know linsim can read the hyper-parameters. Extra arrays are ``array_<name>``
        variables with dimensions ``<name>_dim<i>``.
        """
        import xarray as xr

        data_vars: dict[str, Any] = {
            "outputs": (("run", "checkpoint", "sample", "output"), self.outputs),
        }
        coords: dict[str, Any] = {
            "run": np.arange(self.n_runs),
            "checkpoint": np.arange(self.n_checkpoints),
            "time": ("checkpoint", self.times),
        }
        if self.inputs is not None:
            data_vars["inputs"] = (("sample", "feature"), self.inputs)
        if self.labels is not None:
            data_vars["labels"] = (("sample",), self.labels)
        for name, arr in self.arrays.items():
            dims = tuple(f"{name}_dim{i}" for i in range(arr.ndim))
            data_vars[f"array_{name}"] = (dims, arr)
        attrs: dict[str, Any] = {
            "title": "linsim training trajectory",
            "linsim_type": "Trajectory",
            "time_unit": self.time_unit,
            "output_model": self.output_model,
            "noise_scale": float(self.noise_scale),
            "params_json": json.dumps(dict(self.params), sort_keys=True),
            "comment": (
                "outputs are logits (softmax, bernoulli) or means (gaussian) of R runs at "
                "K checkpoints on n samples; time in optimizer steps or flow time"
            ),
        }
        for key, value in self.params.items():
            if isinstance(value, bool):
                attrs[f"param_{key}"] = int(value)
            elif isinstance(value, (str, int, float)):
                attrs[f"param_{key}"] = value
        ds = xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)
        ds["outputs"].attrs.update(
            long_name="model outputs (logits or means)", units="1",
            output_model=self.output_model)
        ds["time"].attrs.update(long_name="checkpoint time", units=self.time_unit)
        ds["run"].attrs.update(long_name="training run (seed) index", units="1")
        ds["checkpoint"].attrs.update(long_name="checkpoint index", units="1")
        if self.inputs is not None:
            ds["inputs"].attrs.update(long_name="evaluation inputs (flattened)", units="1")
        if self.labels is not None:
            ds["labels"].attrs.update(long_name="class label of each sample", units="1")
        return ds

    @classmethod
    def from_dataset(cls, ds) -> "Trajectory":
        """Inverse of :meth:`to_dataset`; variables are read by dimension name.

        Raises ``ValueError`` naming what is missing when the dataset lacks a variable, a
        dimension or an attribute that a trajectory needs.
        """
        if ds.attrs.get("linsim_type") != "Trajectory":
            raise ValueError(
                "dataset was not written by linsim.Trajectory.to_dataset (its 'linsim_type' "
                f"attribute is {ds.attrs.get('linsim_type')!r}, expected 'Trajectory')"
            )
        missing = [a for a in ("time_unit", "output_model", "noise_scale", "params_json")
                   if a not in ds.attrs]
        if missing:
            raise ValueError(f"trajectory file lacks the attribute(s) {missing}")
        for var in ("outputs", "time"):
            if var not in ds.variables:
                raise ValueError(f"trajectory file lacks the variable {var!r}")
        dims = ("run", "checkpoint", "sample", "output")
        if set(ds["outputs"].dims) != set(dims):
            raise ValueError(
                f"variable 'outputs' must have the dimensions {dims} (in any order); got "
                f"{ds['outputs'].dims}"
            )
        outputs = ds["outputs"].transpose(*dims).values
        if ds["time"].dims != ("checkpoint",):
            raise ValueError(f"variable 'time' must have the dimension ('checkpoint',); got {ds['time'].dims}")
        inputs = None
        if "inputs" in ds:
            if set(ds["inputs"].dims) != {"sample", "feature"}:
                raise ValueError(f"variable 'inputs' must have dimensions (sample, feature); got {ds['inputs'].dims}")
            inputs = ds["inputs"].transpose("sample", "feature").values
        arrays = {
            name[len("array_"):]: ds[name].transpose(
                *sorted(ds[name].dims, key=lambda d: int(d.rsplit("_dim", 1)[-1]))).values
            for name in ds.data_vars
            if name.startswith("array_")
        }
        return cls(
            outputs=outputs,
            times=ds["time"].values,
            time_unit=ds.attrs["time_unit"],
            output_model=ds.attrs["output_model"],
            params=json.loads(ds.attrs["params_json"]),
            inputs=inputs,
            labels=ds["labels"].values if "labels" in ds else None,
            noise_scale=float(ds.attrs["noise_scale"]),
            arrays=arrays,
        )

    def save(self, path: str | Path, *, command=None, compress: int | None = None) -> Path:
        """Write the trajectory to a netCDF file, atomically and with checksums. Returns the path.

        The file is written to a temporary name in the same folder and renamed onto ``path``,
        so a kill during the write leaves the previous file intact. Each array carries a
        SHA-256 checksum that :meth:`load` verifies; provenance attributes
        (:mod:`linsim.provenance`) record the command line, versions and time. ``compress``
        (gzip level 1..9) compresses the arrays losslessly.

        Examples
        --------
        >>> import tempfile
        >>> t = Trajectory(outputs=np.zeros((2, 3, 4, 5), dtype=np.float32), times=[0, 1, 2])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     back = Trajectory.load(t.save(Path(d) / "t.nc"))
        >>> back.outputs.dtype, back.outputs.shape
        (dtype('float32'), (2, 3, 4, 5))
        """
        from linsim.storage import write_netcdf

        ds = self.to_dataset()
        checksum = [name for name in ds.variables if name not in ("run", "checkpoint")]
        return write_netcdf(ds, Path(path), command=command, checksum_vars=checksum,
                            compress=compress)

    @classmethod
    def load(cls, path: str | Path) -> "Trajectory":
        """Read a trajectory written by :meth:`save`, verifying its checksums.

        Raises ``linsim.storage.CorruptFileError`` when a stored checksum does not match.
        """
        from linsim.storage import read_netcdf

        return cls.from_dataset(read_netcdf(path))


__all__ = ["OUTPUT_MODELS", "TIME_UNITS", "Trajectory"]
