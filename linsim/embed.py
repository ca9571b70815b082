"""Embedding trajectories: Trajectory -> pairwise distances -> InPCA.

This is the one step where trajectories meet the InPCA core.  The distance follows the
trajectory's output model:

* ``softmax`` and ``bernoulli``: Bhattacharyya distance of the categorical distributions,
  mean over samples (:func:`linsim.inpca.bhattacharyya` on ``Trajectory.log_probs()``);
* ``gaussian``: Bhattacharyya distance of Gaussians with fixed standard deviation
  ``noise_scale``, ``Σ_c (μ_c − ν_c)² / (8σ²)`` per sample, mean over samples.

Points are all runs at all checkpoints of every trajectory given, flattened run-major within
each trajectory and trajectories concatenated in order (see :attr:`Embedding.points`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linsim import inpca
from linsim.trajectory import Trajectory


def _check_compatible(trajectories: tuple[Trajectory, ...]) -> None:
    if not trajectories:
        raise ValueError("give at least one trajectory")
    first = trajectories[0]
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
            raise ValueError(
                f"trajectory {j} was evaluated on different inputs than trajectory 0"
            )
        if first.output_model == "gaussian" and traj.noise_scale != first.noise_scale:
            raise ValueError("gaussian trajectories must share noise_scale to be compared")


def _stack(trajectories, what: str) -> np.ndarray:
    return np.concatenate([getattr(t, what)() for t in trajectories], axis=0)


def distance_matrix(*trajectories: Trajectory, others=None, device=None) -> np.ndarray:
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
        Bhattacharyya distance, mean over samples (see module docstring).
    """
    trajectories = tuple(trajectories)
    group = trajectories + tuple(others or ())
    _check_compatible(group)
    model = trajectories[0].output_model
    if model == "gaussian":
        a = _stack(trajectories, "flat_outputs")
        b = None if others is None else _stack(others, "flat_outputs")
        return inpca.gaussian_bhattacharyya(a, b, sigma=trajectories[0].noise_scale)
    a = _stack(trajectories, "log_probs")
    b = None if others is None else _stack(others, "log_probs")
    return inpca.bhattacharyya(a, b, device=device)


@dataclass
class Embedding:
    """InPCA of the points of one or more trajectories.

    Attributes
    ----------
    model : linsim.inpca.InPCA
        The fitted InPCA (eigenvalues, embedding, explained stress, ...).
    distances : array (M, M)
        The Bhattacharyya distance matrix that was embedded.
    points : dict of arrays (M,)
        ``trajectory`` (index into the inputs), ``run``, ``checkpoint`` and ``time`` of each point.
    trajectories : tuple of Trajectory
    """

    model: inpca.InPCA
    distances: np.ndarray
    points: dict[str, np.ndarray]
    trajectories: tuple[Trajectory, ...]

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
        Sharing output model and samples.
    n_components : int, optional
        Number of eigenpairs (largest ``|λ|``) to keep; default all (dense solver for
        small ``M``, see :class:`linsim.inpca.InPCA`).
    device : optional
        Device of the distance kernel.

    Returns
    -------
    Embedding
    """
    D = distance_matrix(*trajectories, device=device)
    model = inpca.InPCA(n_components=n_components).fit(D)
    idx_t, idx_r, idx_k, times = [], [], [], []
    for j, traj in enumerate(trajectories):
        r, k = traj.point_index()
        idx_t.append(np.full(r.size, j))
        idx_r.append(r)
        idx_k.append(k)
        times.append(traj.times[k])
    points = {
        "trajectory": np.concatenate(idx_t),
        "run": np.concatenate(idx_r),
        "checkpoint": np.concatenate(idx_k),
        "time": np.concatenate(times),
    }
    return Embedding(model=model, distances=D, points=points, trajectories=tuple(trajectories))
