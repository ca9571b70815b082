"""InPCA: Bhattacharyya distances between probabilistic models, their intensive embedding,
and the information geometry of the space of models.

Conventions (details in each module)
------------------------------------
* Distances are **means over samples** of a per-sample divergence, natural log, float64
  (:mod:`linsim.inpca.distances`).  The Bhattacharyya distance is used as a squared distance.
* InPCA double-centers ``W = -1/2 J D J`` and keeps **signed** eigenvalues sorted by ``|lambda|``
  descending; negative (time-like) ones are reported, never dropped
  (:mod:`linsim.inpca.embedding`).
* Explained stress ``chi_k = 1 - sqrt(1 - sum_{i<=k} lambda_i^2 / ||W||_F^2)`` with ``||W||_F``
  of the whole matrix: the fraction of ``W`` (in Frobenius norm) captured by ``k`` axes.
* Models are log-probability arrays ``(n, C)``; ensembles ``(M, n, C)``
  (:mod:`linsim.inpca.geometry` for uniform/one-hot models, geodesics, progress, reindexing).
* Scale: ``bhattacharyya(..., out=path)`` writes a resumable zarr store tile by tile and reads
  memmap/zarr inputs in row blocks (:mod:`linsim.inpca.store`); ``InPCA.fit`` reads a stored ``D``
  by row blocks; :class:`LandmarkInPCA` embeds millions of models from seeded landmarks
  (:mod:`linsim.inpca.landmark`).
"""

from .distances import (
    DisjointSupportWarning,
    bernoulli_bhattacharyya,
    bernoulli_log_probs,
    bhattacharyya,
    bhattacharyya_reference,
    gaussian_bhattacharyya,
    hellinger,
    symmetric_kl,
)
from .embedding import InPCA, double_center, embedded_distances, explained_stress
from .landmark import LandmarkInPCA
from .geometry import (
    distance_to_geodesic,
    geodesic,
    log_map,
    one_hot_log_probs,
    progress,
    reindex,
    uniform_log_probs,
)

__all__ = [
    "DisjointSupportWarning",
    "InPCA",
    "LandmarkInPCA",
    "bernoulli_bhattacharyya",
    "bernoulli_log_probs",
    "bhattacharyya",
    "bhattacharyya_reference",
    "distance_to_geodesic",
    "double_center",
    "embedded_distances",
    "explained_stress",
    "gaussian_bhattacharyya",
    "geodesic",
    "hellinger",
    "log_map",
    "one_hot_log_probs",
    "progress",
    "reindex",
    "symmetric_kl",
    "uniform_log_probs",
]
