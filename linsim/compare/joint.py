"""Joint InPCA of deep networks and linear models, and the explained stress of four views.

Points are all runs at all checkpoints of every trajectory given (run-major within each
trajectory, deep trajectories first, then the linear ones), as in :mod:`linsim.embed`; the
Bhattacharyya distance matrix of all points is computed once and every view takes blocks of it.

The four views (each an explained-stress curve ``chi_1..chi_k``)
----------------------------------------------------------------
``all``                InPCA of every point (deep and linear).
``deep``               InPCA of the deep-network points only.
``linear_basis_all``   basis fitted on the linear models only; every point projected into it and
                       scored with :func:`linsim.compare.projected_stress`.
``linear_basis_deep``  the same basis; only the deep-network points projected and scored.

The geodesic from the uniform to the one-hot model is projected into the ``all`` embedding
(out-of-sample, :meth:`linsim.inpca.InPCA.transform`) so that figures can draw it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linsim.embed import EmbeddingPoints, distance_matrix
from linsim.inpca import InPCA, bhattacharyya, geodesic

from .progress import geodesic_ends
from .projection import projected_stress_from_fit

__all__ = ["STRESS_VIEWS", "JointEmbedding", "StressViews", "joint_embedding"]

#: Names of the four explained-stress views, in the order reports list them.
STRESS_VIEWS = ("all", "deep", "linear_basis_all", "linear_basis_deep")


@dataclass(frozen=True)
class StressViews:
    """Explained-stress curves ``chi_1..chi_k`` of the four views (module docstring).

    Attributes
    ----------
    all, deep, linear_basis_all, linear_basis_deep : numpy.ndarray float64 (k,)

    Examples
    --------
    >>> import numpy as np
    >>> StressViews(*(np.array([0.5, 1.0]),) * 4).as_dict()["deep"]
    [0.5, 1.0]
    """

    all: np.ndarray
    deep: np.ndarray
    linear_basis_all: np.ndarray
    linear_basis_deep: np.ndarray

    def as_dict(self):
        """``{view name: list of floats}`` in :data:`STRESS_VIEWS` order."""
        return {name: [float(v) for v in getattr(self, name)] for name in STRESS_VIEWS}


@dataclass(frozen=True)
class JointEmbedding:
    """InPCA of deep and linear trajectories together (see the module docstring).

    Attributes
    ----------
    distances : array (M, M)
        Bhattacharyya distances (mean over samples) between all points.
    member : int array (M,)
        Index of each point's trajectory (deep trajectories first, then linear).
    run, checkpoint : int arrays (M,)
    time : float array (M,)
    is_deep : bool array (M,)
    model : InPCA
        Fitted on all points.
    geodesic_s : array (G,)
        Parameters of the geodesic points (0 = uniform, 1 = one-hot).
    geodesic_coordinates : array (G, k)
        The geodesic projected into the ``all`` embedding.
    views : StressViews

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> j = tiny_comparison().joint
    >>> int(j.is_deep.sum()), j.coordinates.shape[1], j.geodesic_coordinates.shape
    (16, 3, (21, 3))
    """

    distances: np.ndarray
    member: np.ndarray
    run: np.ndarray
    checkpoint: np.ndarray
    time: np.ndarray
    is_deep: np.ndarray
    model: InPCA
    geodesic_s: np.ndarray
    geodesic_coordinates: np.ndarray
    views: StressViews

    @property
    def coordinates(self) -> np.ndarray:
        """Coordinates ``(M, k)`` of all points in the joint embedding."""
        return self.model.embedding_


def _fit(D, k, what):
    M = D.shape[0]
    if M < 3:
        raise ValueError(f"the {what} view needs at least 3 points; got {M}")
    return InPCA(n_components=min(k, M - 1)).fit(D)


def _rank(model):
    lam = model.eigenvalues_
    return int(np.sum(np.abs(lam) > model.n_features_in_ * np.finfo(float).eps * abs(lam[0])))


def joint_embedding(deep, linear, *, n_components=10, n_geodesic=21, device=None):
    """Joint InPCA of deep-network and linear-model trajectories with the four stress views.

    Parameters
    ----------
    deep : sequence of Trajectory
        Deep-network trajectories (softmax outputs, same samples and labels).
    linear : sequence of Trajectory
        Linear-model trajectories on the same samples (the basis of the projected views).
    n_components : int
        Number ``k`` of InPCA components of every view (capped by the number of points).
    n_geodesic : int
        Number of geodesic points projected into the ``all`` embedding.
    device : optional
        Device of the distance kernel.

    Returns
    -------
    JointEmbedding

    Examples
    --------
    >>> import numpy as np
    >>> from linsim.ensemble import EnsembleConfig, simulate
    >>> a = simulate(EnsembleConfig(n_samples=20, dim=6, n_runs=2, steps=50, n_checkpoints=4, seed=0))
    >>> b = simulate(EnsembleConfig(n_samples=20, dim=6, n_runs=2, steps=50, n_checkpoints=4, seed=0,
    ...                             model="softmax"))
    >>> j = joint_embedding([a], [b], n_components=3)
    >>> j.coordinates.shape, j.views.all.shape
    ((20, 3), (3,))
    """
    deep, linear = tuple(deep), tuple(linear)
    if not deep or not linear:
        raise ValueError("joint_embedding needs at least one deep and one linear trajectory")
    trajs = deep + linear
    labels = trajs[0].labels
    if labels is None:
        raise ValueError("trajectory 0 has no labels: the geodesic to the one-hot model needs them")
    for j, t in enumerate(trajs[1:], start=1):
        if t.labels is None or not np.array_equal(t.labels, labels):
            raise ValueError(f"trajectory {j} has different labels than trajectory 0: "
                             "all models must be evaluated on the same labelled samples")
    D = distance_matrix(*trajs, device=device)  # mixed float32/float64 are normalized in float64
    points = EmbeddingPoints.of(trajs)
    member, run, ckpt, time = points.trajectory, points.run, points.checkpoint, points.time
    is_deep = member < len(deep)
    k = int(n_components)
    if k < 1:
        raise ValueError(f"n_components must be >= 1; got {n_components}")
    full = _fit(D, k, "all")
    deep_idx, lin_idx = np.flatnonzero(is_deep), np.flatnonzero(~is_deep)
    deep_fit = _fit(D[np.ix_(deep_idx, deep_idx)], k, "deep")
    basis = _fit(D[np.ix_(lin_idx, lin_idx)], k, "linear-basis")
    kb = _rank(basis)
    proj_all = projected_stress_from_fit(basis, D[:, lin_idx], D, kb)
    proj_deep = projected_stress_from_fit(basis, D[np.ix_(deep_idx, lin_idx)],
                                          D[np.ix_(deep_idx, deep_idx)], kb)
    views = StressViews(all=full.explained_stress_, deep=deep_fit.explained_stress_,
                        linear_basis_all=proj_all, linear_basis_deep=proj_deep)
    p0, ps = geodesic_ends(labels, trajs[0].n_outputs)
    s = np.linspace(0.0, 1.0, int(n_geodesic))
    geo = geodesic(p0, ps, s)
    logp = np.concatenate([t.log_probs(dtype=np.float64) for t in trajs])
    Dg = bhattacharyya(geo, logp, device=device, on_disjoint="raise")
    return JointEmbedding(distances=D, member=member, run=run, checkpoint=ckpt, time=time,
                          is_deep=is_deep, model=full, geodesic_s=s,
                          geodesic_coordinates=full.transform(Dg), views=views)
