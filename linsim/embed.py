"""Embedding trajectories: Trajectory -> pairwise distances -> InPCA.

This is the one step where trajectories meet the InPCA core.  The distance follows the
trajectory's output model, looked up in a registry (:func:`output_model`,
:func:`register_output_model`):

* ``softmax``: Bhattacharyya distance of the categorical distributions ``softmax(outputs)``,
  mean over samples (:func:`linsim.inpca.bhattacharyya` on ``Trajectory.log_probs()``;
  float32 outputs, e.g. from the deep-net trainer, stay float32 on the way in and the
  distances accumulate in float64);
* ``bernoulli``: the same for one logit per sample (:func:`linsim.inpca.bernoulli_bhattacharyya`,
  exact for logits of any size);
* ``gaussian``: Bhattacharyya distance of Gaussians with fixed standard deviation
  ``noise_scale``, ``Σ_c (μ_c − ν_c)² / (8σ²)`` per sample, mean over samples.

Points are all runs at all checkpoints of every trajectory given, flattened run-major within
each trajectory and trajectories concatenated in order (see :attr:`Embedding.points`).

Examples
--------
>>> from linsim.ensemble import EnsembleConfig, simulate
>>> traj = simulate(EnsembleConfig(dim=3, n_samples=6, n_classes=2, n_runs=2, steps=5,
...                                n_checkpoints=2, teacher_scale=0.1, init_scale=0.1))
>>> emb = embed(traj)
>>> emb.distances.shape, emb.coordinates.shape[0]
((6, 6), 6)
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

import numpy as np

from linsim.registry import Registry
from linsim.trajectory import Trajectory

if TYPE_CHECKING:  # pragma: no cover
    from linsim import inpca

# linsim.inpca (torch, scikit-learn) is imported where it is used, so that ``import linsim``
# stays fast; the distance kernels live there.


# ----------------------------------------------------------------------------- output models
@dataclass(frozen=True)
class OutputModel:
    """A registry entry: how the points of trajectories with this output model are compared.

    Parameters
    ----------
    name : str
        The value of ``Trajectory.output_model``.
    distance : callable
        ``distance(a, b, *, device) -> (M_a, M_b)`` float64, where ``a`` and ``b`` are
        tuples of compatible trajectories (``b`` is None for the symmetric self-distances of
        ``a``); points run-major within each trajectory, trajectories concatenated.
    compatible : callable, optional
        ``compatible(first, other) -> str | None``: a reason why two trajectories of this
        output model cannot be compared (beyond the shared samples), or None.
    description : str

    Examples
    --------
    >>> output_model("gaussian").name
    'gaussian'
    """

    name: str
    distance: Callable[..., np.ndarray]
    compatible: Callable[[Trajectory, Trajectory], str | None] | None = None
    description: str = ""


#: The output-model registry (name -> :class:`OutputModel`); use the functions below.
_OUTPUT_MODELS: Registry[OutputModel] = Registry(
    "output model", type=OutputModel, key=attrgetter("name"),
    unknown="no distance is registered for output model {name!r}")


def register_output_model(entry: OutputModel, *, replace: bool = False) -> OutputModel:
    """Add an output model to the registry (``replace=True`` to overwrite one).

    Examples
    --------
    >>> entry = output_model("gaussian")
    >>> register_output_model(entry)
    Traceback (most recent call last):
    ...
    ValueError: output model 'gaussian' is already registered; pass replace=True to overwrite it
    >>> register_output_model(entry, replace=True) is entry
    True
    """
    return _OUTPUT_MODELS.add(entry, replace=replace)


def output_model(name: str) -> OutputModel:
    """The registered output model ``name``; the error lists the registered ones.

    Examples
    --------
    >>> output_model("softmax").description.split(";")[0]
    'categorical over C classes, p = softmax(outputs)'
    >>> output_model("poisson")
    Traceback (most recent call last):
    ...
    linsim.registry.UnknownNameError: no distance is registered for output model 'poisson'; valid: ['bernoulli', 'gaussian', 'softmax']
    """
    return _OUTPUT_MODELS[name]


def output_models() -> tuple[str, ...]:
    """Names of the registered output models.

    Examples
    --------
    >>> output_models()
    ('softmax', 'bernoulli', 'gaussian')
    """
    return _OUTPUT_MODELS.names()


def _common_dtype(a, b) -> np.dtype:
    """float32 only when every trajectory (both sides) is float32, else float64."""
    return np.result_type(*[t.outputs.dtype for t in tuple(a) + tuple(b or ())])


def _stack(trajectories, what: str, dtype) -> np.ndarray:
    if what == "log_probs":  # normalize in the common dtype: float32 rows meet float64 tolerances
        parts = [t.log_probs(dtype=dtype) for t in trajectories]
    else:
        parts = [getattr(t, what)().astype(dtype, copy=False) for t in trajectories]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def _softmax_distance(a, b, *, device=None) -> np.ndarray:
    from linsim import inpca

    dt = _common_dtype(a, b)
    return inpca.bhattacharyya(_stack(a, "log_probs", dt),
                               None if b is None else _stack(b, "log_probs", dt), device=device)


def _bernoulli_distance(a, b, *, device=None) -> np.ndarray:
    from linsim import inpca

    dt = _common_dtype(a, b)
    return inpca.bernoulli_bhattacharyya(_stack(a, "flat_outputs", dt),
                                         None if b is None else _stack(b, "flat_outputs", dt),
                                         device=device)


def _gaussian_distance(a, b, *, device=None) -> np.ndarray:
    from linsim import inpca

    dt = _common_dtype(a, b)
    return inpca.gaussian_bhattacharyya(_stack(a, "flat_outputs", dt),
                                        None if b is None else _stack(b, "flat_outputs", dt),
                                        sigma=float(a[0].noise_scale), device=device)


def _same_noise(first: Trajectory, other: Trajectory) -> str | None:
    if other.noise_scale != first.noise_scale:
        return (f"gaussian trajectories must share noise_scale to be compared; got {other.noise_scale} "
                f"and {first.noise_scale}")
    return None


register_output_model(OutputModel(
    "softmax", _softmax_distance,
    description="categorical over C classes, p = softmax(outputs); Bhattacharyya, mean over samples"))
register_output_model(OutputModel(
    "bernoulli", _bernoulli_distance,
    description="one logit per sample, p(y=1) = sigmoid(output); Bhattacharyya, mean over samples"))
register_output_model(OutputModel(
    "gaussian", _gaussian_distance, compatible=_same_noise,
    description="independent Gaussians N(outputs, noise_scale^2); sum_c (mu - nu)^2 / (8 sigma^2), mean over samples"))


# ----------------------------------------------------------------------------- distances
def _check_compatible(trajectories: tuple[Trajectory, ...]) -> OutputModel:
    if not trajectories:
        raise ValueError("give at least one trajectory")
    for j, traj in enumerate(trajectories):
        if not isinstance(traj, Trajectory):
            raise TypeError(f"trajectory {j} must be a linsim.Trajectory; got {type(traj).__name__}")
    first = trajectories[0]
    entry = output_model(first.output_model)
    for j, traj in enumerate(trajectories[1:], start=1):
        if traj.output_model != first.output_model:
            raise ValueError(
                f"trajectory {j} has output model {traj.output_model!r} but trajectory 0 has "
                f"{first.output_model!r}: distances between different output models are undefined"
            )
        if traj.n_samples != first.n_samples or traj.n_outputs != first.n_outputs:
            raise ValueError(
                f"trajectory {j} has (n, C) = ({traj.n_samples}, {traj.n_outputs}) but trajectory 0 "
                f"has ({first.n_samples}, {first.n_outputs}): models must predict on the same samples"
            )
        if traj.inputs is not None and first.inputs is not None and not np.array_equal(
            traj.inputs, first.inputs
        ):
            raise ValueError(f"trajectory {j} was evaluated on different inputs than trajectory 0")
        reason = entry.compatible(first, traj) if entry.compatible is not None else None
        if reason:
            raise ValueError(f"trajectory {j}: {reason}")
    return entry


def distance_matrix(*trajectories: Trajectory, others: Sequence[Trajectory] | None = None,
                    device=None) -> np.ndarray:
    """Pairwise distances between all points of the given trajectories.

    Parameters
    ----------
    *trajectories : Trajectory
        Sharing output model and samples; their ``M = Σ R_j K_j`` points are stacked.
    others : sequence of Trajectory, optional
        If given, return the cross block (points of ``trajectories`` × points of ``others``).
    device : str or torch.device, optional
        Where the distance kernel runs (default: CUDA if available, else CPU).

    Returns
    -------
    D : array (M, M) or (M, M_others), float64
        The distance of the output model (see the module docstring), mean over samples.

    Examples
    --------
    Two Gaussian models whose means differ by 2 in one output of one of two samples:
    ``2² / (8 · 1²) / 2 = 0.25``.

    >>> a = Trajectory(outputs=np.array([0.0, 0.0, 2.0, 0.0]).reshape(1, 2, 2, 1), times=[0, 1],
    ...                output_model="gaussian")
    >>> distance_matrix(a).tolist()
    [[0.0, 0.25], [0.25, 0.0]]
    """
    trajectories = tuple(trajectories)
    others_t = None if others is None else tuple(others)
    if others_t is not None and not others_t:
        raise ValueError("others must hold at least one trajectory (or be None for self-distances)")
    entry = _check_compatible(trajectories + (others_t or ()))
    return entry.distance(trajectories, others_t, device=device)


# ----------------------------------------------------------------------------- embedding
@dataclass(frozen=True, eq=False)
class EmbeddingPoints(Mapping):
    """Where each embedded point comes from: four int/float arrays of shape (M,).

    Points are ordered run-major within each trajectory, trajectories concatenated.  Fields
    are attributes (``points.run``) and, for code that treats them as a table, keys
    (``points["run"]``; iteration gives the four names).

    Attributes
    ----------
    trajectory : int64 array (M,)
        Index of the trajectory among those embedded.
    run, checkpoint : int64 arrays (M,)
        Run ``r`` and checkpoint ``k`` within that trajectory.
    time : float64 array (M,)
        The checkpoint's time (steps or flow time, see ``Trajectory.time_unit``).

    Examples
    --------
    >>> p = EmbeddingPoints(np.array([0, 0]), np.array([0, 0]), np.array([0, 1]), np.array([0.0, 5.0]))
    >>> p.checkpoint.tolist(), p["time"].tolist(), list(p)
    ([0, 1], [0.0, 5.0], ['trajectory', 'run', 'checkpoint', 'time'])
    """

    trajectory: np.ndarray
    run: np.ndarray
    checkpoint: np.ndarray
    time: np.ndarray

    _FIELDS: ClassVar[tuple[str, ...]] = ("trajectory", "run", "checkpoint", "time")

    def __post_init__(self) -> None:
        sizes = set()
        for name in self._FIELDS:
            arr = np.asarray(getattr(self, name), dtype=np.float64 if name == "time" else np.int64)
            if arr.ndim != 1:
                raise ValueError(f"EmbeddingPoints.{name} must be 1-D; got shape {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
            sizes.add(arr.size)
        if len(sizes) != 1:
            raise ValueError(f"EmbeddingPoints fields must have one length M; got lengths {sorted(sizes)}")

    @classmethod
    def of(cls, trajectories: Sequence[Trajectory]) -> "EmbeddingPoints":
        """The points of ``trajectories`` in the order :func:`distance_matrix` stacks them.

        Examples
        --------
        >>> t = Trajectory(outputs=np.zeros((2, 3, 1, 2)), times=[0, 1, 4])
        >>> p = EmbeddingPoints.of([t])
        >>> p.run.tolist(), p.checkpoint.tolist(), p.time.tolist()
        ([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], [0.0, 1.0, 4.0, 0.0, 1.0, 4.0])
        """
        idx_t, idx_r, idx_k, times = [], [], [], []
        for j, traj in enumerate(trajectories):
            r, k = traj.point_index()
            idx_t.append(np.full(r.size, j))
            idx_r.append(r)
            idx_k.append(k)
            times.append(traj.times[k])
        return cls(trajectory=np.concatenate(idx_t), run=np.concatenate(idx_r),
                   checkpoint=np.concatenate(idx_k), time=np.concatenate(times))

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._FIELDS:
            raise KeyError(f"{name!r}; EmbeddingPoints has {self._FIELDS}")
        return getattr(self, name)

    def __iter__(self):
        return iter(self._FIELDS)

    def __len__(self) -> int:
        return len(self._FIELDS)

    def __repr__(self) -> str:
        return f"EmbeddingPoints(M={self.run.size}, trajectories={np.unique(self.trajectory).size})"


@dataclass
class Embedding:
    """InPCA of the points of one or more trajectories.

    Attributes
    ----------
    model : linsim.inpca.InPCA
        The fitted InPCA (eigenvalues, embedding, explained stress, ...).
    distances : array (M, M)
        The distance matrix that was embedded (see :func:`distance_matrix`).
    points : EmbeddingPoints
        ``trajectory`` (index into the inputs), ``run``, ``checkpoint`` and ``time`` of each
        point, arrays (M,) (attributes, or keys as in a mapping).
    trajectories : tuple of Trajectory

    Examples
    --------
    >>> t = Trajectory(outputs=np.array([0.0, 2.0, 4.0]).reshape(1, 3, 1, 1), times=[0, 1, 2],
    ...                output_model="gaussian")
    >>> emb = embed(t)
    >>> emb.points["checkpoint"].tolist(), emb.coordinates.shape
    ([0, 1, 2], (3, 1))
    """

    model: inpca.InPCA
    distances: np.ndarray
    points: EmbeddingPoints
    trajectories: tuple[Trajectory, ...]

    def __repr__(self) -> str:
        lam = np.asarray(self.model.eigenvalues_)
        top = ", ".join(f"{v:.3g}" for v in lam[:3])
        more = ", ..." if lam.size > 3 else ""
        stress = np.asarray(getattr(self.model, "explained_stress_", []))
        chi = f", chi_3={stress[min(2, stress.size - 1)]:.3f}" if stress.size else ""
        n_neg = int(np.sum(lam < 0))
        return (
            f"Embedding(M={self.distances.shape[0]} points from {len(self.trajectories)} "
            f"trajector{'y' if len(self.trajectories) == 1 else 'ies'}, "
            f"output_model={self.trajectories[0].output_model!r}, k={lam.size}, "
            f"eigenvalues=[{top}{more}], negative={n_neg}{chi})"
        )

    @property
    def coordinates(self) -> np.ndarray:
        """Embedding coordinates ``(M, k)``; column ``j`` scaled by ``sqrt|λ_j|``."""
        return self.model.embedding_

    def project(self, *trajectories: Trajectory, device=None) -> np.ndarray:
        """Out-of-sample coordinates ``(q, k)`` of the points of other trajectories."""
        block = distance_matrix(*trajectories, others=self.trajectories, device=device)
        return self.model.transform(block)


def embed(*trajectories: Trajectory, n_components: int | None = None, device=None) -> Embedding:
    """Embed all points of the given trajectories with InPCA.

    Parameters
    ----------
    *trajectories : Trajectory
        Sharing output model and samples (any registered output model; float32 outputs of
        the deep-net trainer are accepted as they are).
    n_components : int, optional
        Number of eigenpairs (largest ``|λ|``) to keep; default all (dense solver for
        small ``M``, see :class:`linsim.inpca.InPCA`).
    device : optional
        Device of the distance kernel.

    Returns
    -------
    Embedding

    Raises
    ------
    ValueError
        Incompatible trajectories (named by index), or an ensemble whose points all
        coincide (from :class:`linsim.inpca.InPCA`: nothing to embed).

    Examples
    --------
    >>> t = Trajectory(outputs=np.array([0.0, 0.0, 2.0, 0.0]).reshape(1, 2, 2, 1), times=[0, 1],
    ...                output_model="gaussian")
    >>> embed(t)
    Embedding(M=2 points from 1 trajectory, output_model='gaussian', k=1, eigenvalues=[0.125], negative=0, chi_3=1.000)
    """
    from linsim.inpca import InPCA

    trajectories = tuple(trajectories)
    D = distance_matrix(*trajectories, device=device)
    model = InPCA(n_components=n_components).fit(D)
    return Embedding(model=model, distances=D, points=EmbeddingPoints.of(trajectories),
                     trajectories=trajectories)


__all__ = [
    "Embedding",
    "EmbeddingPoints",
    "OutputModel",
    "distance_matrix",
    "embed",
    "output_model",
    "output_models",
    "register_output_model",
]
