"""The one trajectory type shared by every solver and by the deep-net trainer.

A :class:`Trajectory` holds the *outputs* (logits, or regression means) of ``R`` training
runs at ``K`` checkpoints on ``n`` samples and ``C`` output channels, together with the
checkpoint times, the output model that turns outputs into probability distributions, the
parameters that produced it and the data it was evaluated on.  Everything downstream
(probabilities, distances, InPCA, metrics, sweeps, plots) consumes this type only.

Conventions
-----------
* ``outputs`` has shape ``(R, K, n, C)`` and dtype float64.
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
* On disk a trajectory is a netCDF file written with xarray (:meth:`Trajectory.save`),
  never a pickle.
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


@dataclass(frozen=True)
class Trajectory:
    """Outputs of ``R`` runs at ``K`` checkpoints on ``n`` samples and ``C`` outputs.

    Parameters
    ----------
    outputs : array (R, K, n, C), float64
        Logits (``softmax``/``bernoulli``) or means (``gaussian``).
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
        out = np.asarray(self.outputs, dtype=np.float64)
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
        times = np.asarray(self.times, dtype=np.float64)
        if times.shape != (out.shape[1],):
            raise ValueError(
                f"Trajectory.times must have shape (K,) = ({out.shape[1]},); got {times.shape}"
            )
        if np.any(np.diff(times) < 0):
            raise ValueError("Trajectory.times must be non-decreasing")
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
        if self.output_model == "gaussian" and not self.noise_scale > 0:
            raise ValueError(f"noise_scale must be > 0; got {self.noise_scale}")
        if self.inputs is not None:
            x = np.asarray(self.inputs, dtype=np.float64)
            if x.ndim != 2 or x.shape[0] != out.shape[2]:
                raise ValueError(
                    f"inputs must have shape (n, d) with n={out.shape[2]}; got {x.shape}"
                )
            object.__setattr__(self, "inputs", x)
        if self.labels is not None:
            y = np.asarray(self.labels)
            if y.shape != (out.shape[2],):
                raise ValueError(f"labels must have shape (n,) = ({out.shape[2]},); got {y.shape}")
            object.__setattr__(self, "labels", y.astype(np.int64))
        for key, value in self.params.items():
            value = _as_scalar(value)
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                raise TypeError(
                    f"params[{key!r}] must be a scalar (str, int, float, bool or None); "
                    f"got {type(value).__name__}; put arrays in `arrays`"
                )
        object.__setattr__(self, "outputs", out)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "params", {k: _as_scalar(v) for k, v in self.params.items()})
        object.__setattr__(
            self, "arrays", {k: np.asarray(v) for k, v in self.arrays.items()}
        )

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
    def log_probs(self) -> np.ndarray:
        """Log-probabilities of every point, shape ``(M, n, C')``, float64.

        ``C' = C`` for softmax, ``C' = 2`` for bernoulli (classes 0 and 1).  Undefined for
        the gaussian output model (its distances come from the means directly).
        """
        z = self.flat_outputs()
        if self.output_model == "softmax":
            zmax = z.max(axis=-1, keepdims=True)
            shifted = z - zmax
            return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        if self.output_model == "bernoulli":
            # log sigmoid(z) = -log1p(exp(-z)), computed stably for both signs.
            log_p1 = -np.logaddexp(0.0, -z)
            log_p0 = -np.logaddexp(0.0, z)
            return np.concatenate([log_p0, log_p1], axis=-1)
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
        """An ``xarray.Dataset`` with dims ``run, checkpoint, sample, output`` (+ extras)."""
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
        attrs = {
            "linsim_type": "Trajectory",
            "time_unit": self.time_unit,
            "output_model": self.output_model,
            "noise_scale": float(self.noise_scale),
            "params_json": json.dumps(dict(self.params), sort_keys=True),
            "conventions": (
                "outputs are logits (softmax, bernoulli) or means (gaussian) of R runs at "
                "K checkpoints on n samples; time in optimizer steps or flow time"
            ),
        }
        ds = xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)
        ds["outputs"].attrs["long_name"] = "model outputs (logits or means)"
        ds["time"].attrs["units"] = self.time_unit
        return ds

    @classmethod
    def from_dataset(cls, ds) -> "Trajectory":
        """Inverse of :meth:`to_dataset`."""
        if ds.attrs.get("linsim_type") != "Trajectory":
            raise ValueError("dataset was not written by linsim.Trajectory.to_dataset")
        arrays = {
            name[len("array_"):]: ds[name].values
            for name in ds.data_vars
            if name.startswith("array_")
        }
        return cls(
            outputs=ds["outputs"].values,
            times=ds["time"].values,
            time_unit=ds.attrs["time_unit"],
            output_model=ds.attrs["output_model"],
            params=json.loads(ds.attrs["params_json"]),
            inputs=ds["inputs"].values if "inputs" in ds else None,
            labels=ds["labels"].values if "labels" in ds else None,
            noise_scale=float(ds.attrs["noise_scale"]),
            arrays=arrays,
        )

    def save(self, path: str | Path) -> Path:
        """Write the trajectory to a netCDF file (h5netcdf engine). Returns the path."""
        path = Path(path)
        self.to_dataset().to_netcdf(path, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Trajectory":
        """Read a trajectory written by :meth:`save`."""
        import xarray as xr

        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return cls.from_dataset(ds.load())
