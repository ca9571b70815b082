"""Landmark InPCA: exact InPCA on a seeded sample of models, Gower projection of all others.

For ``M`` far beyond what a full distance matrix allows (10^6 models: 8 TB), InPCA is computed
exactly on ``L`` landmarks drawn without replacement by ``numpy.random.SeedSequence(seed)``, and
every model is placed by the Gower/Nystrom extension (:meth:`InPCA.transform`) from its
distances to the landmarks only.  The models are streamed in row blocks (from memory, a memmap
or a zarr array); memory is ``O(block * L + L^2)``, never ``M^2``.

Quality estimate (``stress_estimate_``)
---------------------------------------
The explained stress of an embedding ``X`` (all ``M`` models, first ``k`` axes) against the
full double-centered matrix, ``chi_k = 1 - ||W - W_X||_F / ||W||_F``, with ``W = -1/2 J D J`` and
``W_X = -1/2 J D_X J`` for the embedded signed squared distances ``D_X`` (so ``W - W_X =
-1/2 J (D - D_X) J``).  For exact InPCA this is the usual ``explained_stress_``; a landmark
embedding is never better (the signed truncation is the best rank-``k`` approximation), so it
measures what the approximation loses.  It is estimated on a seeded random sample of
``s = n_stress_models`` models: the same ratio for the ``s x s`` sub-matrices, each double-centered
over the sample, from exact distances among the sampled models.  With ``s >= M`` the sample is
every model and the estimate is exact.  ``stress_estimate_se_`` is the bootstrap standard error
over the sampled models (``n_bootstrap`` seeded resamples with replacement; each resample's
double-centered norms follow from its count vector ``c`` as
``c^T (A*A) c - 2 s sum_i c_i r_i^2 + s^2 g^2`` with ``r = A c / s``, ``g = c^T A c / s^2``).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .distances import bhattacharyya
from .embedding import InPCA
from .store import as_log_prob_rows

__all__ = ["LandmarkInPCA"]


class LandmarkInPCA(BaseEstimator):
    """InPCA of many models from exact InPCA on seeded landmarks (a scikit-learn estimator).

    Parameters
    ----------
    n_components : int >= 1
        Number of InPCA axes (largest ``|lambda|`` of the landmarks' ``W``, both signs).
    n_landmarks : int >= 2
        Number ``L`` of landmarks (at most ``M``).
    seed : int >= 0
        Root of ``numpy.random.SeedSequence``: landmarks, stress sample and bootstrap come
        from its spawned children, so the same seed gives the same numbers.
    n_stress_models : int >= 2
        Models sampled for ``stress_estimate_`` (all ``s^2`` pairs among them are used).
    n_bootstrap : int >= 0
        Bootstrap resamples for ``stress_estimate_se_`` (0: no error estimate, NaN).
    block_size : int >= 1, optional
        Models per streamed block (default: 64 MiB of float64 log-probabilities, at most 8192).
    device, kernel
        Passed to :func:`linsim.inpca.bhattacharyya`.
    progress : bool
        Show a tqdm bar over the streamed blocks.

    Attributes
    ----------
    landmarks_ : (L,) int, sorted indices of the landmark models
    landmark_log_probs_ : tensor (L, n, C), their log-probabilities (for :meth:`transform`)
    inpca_ : InPCA, the exact InPCA of the landmarks' distance matrix
    eigenvalues_, signature_ : (k,) of ``inpca_`` (eigenvalues of the *landmarks'* ``W``: about
        ``L / M`` times those of the full ``W``)
    explained_stress_ : (k,) the landmarks' own explained stress
    embedding_ : (M, k) coordinates of every model (landmarks: exactly ``inpca_.embedding_``)
    stress_estimate_ : (k,) estimated explained stress of ``embedding_`` against the full ``W``
    stress_estimate_se_ : (k,) its bootstrap standard error
    stress_models_ : (s,) int, the sampled models
    n_models_ : int, ``M``

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((60, 8, 3))
    >>> logp = z - np.log(np.exp(z).sum(-1, keepdims=True))      # 60 models, 8 samples, 3 classes
    >>> lm = LandmarkInPCA(n_components=2, n_landmarks=20, seed=1, n_stress_models=30).fit(logp)
    >>> lm.embedding_.shape, lm.landmarks_.shape
    ((60, 2), (20,))
    >>> bool(0.0 <= lm.stress_estimate_[-1] <= 1.0) and bool(lm.stress_estimate_se_[-1] > 0)
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_landmarks": [Interval(Integral, 2, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "n_stress_models": [Interval(Integral, 2, None, closed="left")],
        "n_bootstrap": [Interval(Integral, 0, None, closed="left")],
        "block_size": [Interval(Integral, 1, None, closed="left"), None],
        "device": "no_validation",
        "kernel": [StrOptions({"auto", "fused", "gemm"})],
        "progress": ["boolean"],
    }

    def __init__(self, n_components=10, n_landmarks=2000, seed=0, *, n_stress_models=1000, n_bootstrap=200,
                 block_size=None, device=None, kernel="auto", progress=False):
        self.n_components = n_components
        self.n_landmarks = n_landmarks
        self.seed = seed
        self.n_stress_models = n_stress_models
        self.n_bootstrap = n_bootstrap
        self.block_size = block_size
        self.device = device
        self.kernel = kernel
        self.progress = progress

    def fit(self, logp, y=None):
        """Fit on log-probabilities ``(M, n, C)``: array, tensor, memmap, zarr array or path.

        Returns
        -------
        LandmarkInPCA
            ``self``, fitted.
        """
        self._validate_params()
        P = as_log_prob_rows(logp, "logp")
        M, n, C = P.shape
        L, k = int(self.n_landmarks), int(self.n_components)
        if L > M:
            raise ValueError(f"n_landmarks must be at most the number of models M={M}; got {L}")
        if k > L:
            raise ValueError(f"n_components must be at most n_landmarks={L}; got {k}")
        ss_land, ss_stress, ss_boot = np.random.SeedSequence(self.seed).spawn(3)
        landmarks = np.sort(np.random.default_rng(ss_land).choice(M, L, replace=False))
        s = min(int(self.n_stress_models), M)
        sample = np.sort(np.random.default_rng(ss_stress).choice(M, s, replace=False))
        dkw = dict(device=self.device, kernel=self.kernel)

        lp_land = P.take(landmarks)
        self.inpca_ = InPCA(n_components=k).fit(bhattacharyya(lp_land, **dkw))

        block = self.block_size or int(max(1, min(8192, (64 << 20) // (8 * n * C))))
        X = np.empty((M, k))
        lp_sample = np.empty((s, n, C), dtype=np.float32 if P.dtype == torch.float32 else np.float64)
        bounds = [(m0, min(M, m0 + block)) for m0 in range(0, M, block)]
        it = bounds
        if self.progress:
            from tqdm.auto import tqdm

            it = tqdm(bounds, desc="landmark projection", unit="block")
        for m0, m1 in it:
            rows = P.rows(m0, m1)
            d = bhattacharyya(rows, lp_land, **dkw)  # (b, L): distances to the landmarks only
            X[m0:m1] = self.inpca_.transform(d)
            lo, hi = np.searchsorted(sample, [m0, m1])
            if hi > lo:
                lp_sample[lo:hi] = rows[torch.from_numpy(sample[lo:hi] - m0)].numpy()
        X[landmarks] = self.inpca_.embedding_  # exact (transform agrees to rounding)

        est, se = _stress_estimate(X, self.inpca_.signature_, sample, bhattacharyya(lp_sample, **dkw),
                                   self.n_bootstrap, ss_boot)
        self.landmarks_ = landmarks
        self.landmark_log_probs_ = lp_land
        self.stress_models_ = sample
        self.eigenvalues_ = self.inpca_.eigenvalues_
        self.signature_ = self.inpca_.signature_
        self.explained_stress_ = self.inpca_.explained_stress_
        self.embedding_ = X
        self.stress_estimate_ = est
        self.stress_estimate_se_ = se
        self.n_models_ = M
        return self

    def fit_transform(self, logp, y=None):
        """``fit(logp).embedding_``."""
        return self.fit(logp).embedding_

    def transform(self, logp):
        """Coordinates ``(q, k)`` of new models from their distances to the landmarks.

        Parameters
        ----------
        logp : array or tensor (q, n, C)
            Log-probabilities on the same samples as the fitted models.

        Returns
        -------
        numpy.ndarray float64 (q, k)
        """
        check_is_fitted(self, "inpca_")
        d = bhattacharyya(logp, self.landmark_log_probs_, device=self.device, kernel=self.kernel)
        return self.inpca_.transform(d)


def _centered_sq_norms(A, counts):
    """``sum_ij c_i c_j (A_ij - r_i - r_j + g)^2`` for each column ``c`` of ``counts`` (s, B), with the
    weighted row means ``r = A c / s`` and ``g = c^T A c / s^2`` of symmetric ``A`` (s, s): the
    squared Frobenius norm of the double-centered matrix of the resampled models, from
    ``c^T (A*A) c - 2 s sum_i c_i r_i^2 + s^2 g^2``."""
    s = A.shape[0]
    r = (A @ counts) / s
    g = np.einsum("ib,ib->b", counts, r) / s
    return np.einsum("ib,ib->b", counts, (A * A) @ counts) - 2 * s * np.einsum("ib,ib->b", counts, r * r) + s * s * g * g


def _stress_estimate(X, signature, sample, D_ss, n_boot, seed_seq):
    """``stress_estimate_`` and its bootstrap standard error (module docstring)."""
    K = X.shape[1]
    s = len(sample)
    Xs = X[sample]
    counts = np.ones((s, 1))
    if n_boot:
        idx = np.random.default_rng(seed_seq).integers(0, s, size=(n_boot, s))
        counts = np.concatenate([counts, np.stack([np.bincount(i, minlength=s) for i in idx], axis=1)], axis=1)
    w = _centered_sq_norms(D_ss, counts)  # 4 ||W||_F^2 of the sample (column 0) and of each resample
    E = D_ss.copy()
    est = np.empty(K)
    se = np.full(K, np.nan)
    for j in range(K):
        diff = Xs[:, j][:, None] - Xs[:, j][None, :]
        E -= signature[j] * diff * diff  # D - D_X with the first j + 1 axes
        chi = 1.0 - np.sqrt(np.maximum(_centered_sq_norms(E, counts), 0.0) / w)
        est[j] = chi[0]
        if n_boot > 1:
            se[j] = float(np.std(chi[1:], ddof=1))
    return est, se
