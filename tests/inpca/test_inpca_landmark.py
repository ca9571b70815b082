"""Landmark InPCA: exact when every model is a landmark; a stress estimate that tracks the
stress of the landmark embedding computed independently from the full matrix (numpy, W formed
explicitly); seeded reproducibility; stored inputs."""

import numpy as np
import pytest
import zarr

from linsim.inpca import InPCA, LandmarkInPCA, bhattacharyya, double_center


def trajectory_log_probs(R=12, K=25, n=16, C=4, seed=0):
    """Softmax outputs along R smooth training-like curves of K checkpoints each."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, K)
    target = 2.0 * rng.standard_normal((n, C))
    start = 0.5 * rng.standard_normal((R, n, C))
    rates = np.array([4.0, 1.0, 0.25])[rng.integers(0, 3, (n, C))]
    decay = np.exp(-rates[None] * 6 * t[:, None, None])  # (K, n, C)
    logits = target[None, None] + (start[:, None] - target[None, None]) * decay[None]
    logits = logits.reshape(R * K, n, C)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def embedding_stress(D, X, signature):
    """Explained stress of an embedding X against the full W, 1 - ||W - W_X|| / ||W||."""
    W = double_center(D)
    Xc = X - X.mean(axis=0)
    out = []
    for k in range(1, X.shape[1] + 1):
        Wx = (Xc[:, :k] * signature[:k]) @ Xc[:, :k].T
        out.append(1 - np.linalg.norm(W - Wx) / np.linalg.norm(W))
    return np.array(out)


def test_all_models_as_landmarks_is_exact_inpca():
    lp = trajectory_log_probs()
    M = len(lp)
    exact = InPCA(n_components=4).fit(bhattacharyya(lp))
    lm = LandmarkInPCA(n_components=4, n_landmarks=M, seed=3, n_stress_models=M, n_bootstrap=20).fit(lp)
    np.testing.assert_array_equal(lm.landmarks_, np.arange(M))
    np.testing.assert_allclose(lm.embedding_, exact.embedding_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lm.eigenvalues_, exact.eigenvalues_, rtol=1e-12)
    # the sample is every model and the row means are exact: the estimate is the exact stress
    np.testing.assert_allclose(lm.stress_estimate_, exact.explained_stress_, rtol=0, atol=1e-10)
    assert np.all(lm.stress_estimate_se_ >= 0)


def test_stress_estimate_tracks_the_landmark_embedding_and_exact_inpca():
    lp = trajectory_log_probs(R=16, K=25)  # M = 400
    D = bhattacharyya(lp)
    exact = InPCA(n_components=3).fit(D)
    lm = LandmarkInPCA(n_components=3, n_landmarks=80, seed=0, n_stress_models=200, n_bootstrap=100).fit(lp)
    true = embedding_stress(D, lm.embedding_, lm.signature_)
    assert np.all(true <= exact.explained_stress_ + 1e-12)  # the exact truncation is optimal
    # the estimate is within 4 standard errors (and 0.05) of the true stress of the embedding
    err = np.abs(lm.stress_estimate_ - true)
    assert np.all(err <= 4 * lm.stress_estimate_se_ + 1e-3), (lm.stress_estimate_, true, lm.stress_estimate_se_)
    assert np.all(err < 0.05)
    # on trajectory-like data, 80 landmarks of 400 lose little
    assert np.all(np.abs(true - exact.explained_stress_) < 0.02)
    # non-landmarks are Gower projections: the embedding reproduces distances of the leading axes
    Dk = lm.embedding_ @ np.diag(lm.signature_) @ lm.embedding_.T
    assert np.isfinite(Dk).all()


def test_seeded_reproducible_and_stored_input_equal(tmp_path):
    lp = trajectory_log_probs(R=6, K=20)
    a = LandmarkInPCA(3, 30, seed=7, n_stress_models=50, block_size=17).fit(lp)
    b = LandmarkInPCA(3, 30, seed=7, n_stress_models=50, block_size=64).fit(lp)
    np.testing.assert_array_equal(a.landmarks_, b.landmarks_)
    # blocks change only the rounding of the projection's matrix product
    np.testing.assert_allclose(a.embedding_, b.embedding_, rtol=0, atol=1e-14)
    np.testing.assert_allclose(a.stress_estimate_se_, b.stress_estimate_se_, rtol=1e-10)
    c = LandmarkInPCA(3, 30, seed=8, n_stress_models=50).fit(lp)
    assert not np.array_equal(a.landmarks_, c.landmarks_)
    z = zarr.create_array(str(tmp_path / "lp.zarr"), shape=lp.shape, chunks=(16,) + lp.shape[1:], dtype="f8")
    z[...] = lp
    s = LandmarkInPCA(3, 30, seed=7, n_stress_models=50, block_size=17).fit(z)
    np.testing.assert_array_equal(s.embedding_, a.embedding_)
    np.testing.assert_allclose(a.transform(lp[:5]), a.embedding_[:5], rtol=0, atol=1e-10)


def test_parameter_errors_and_repr():
    lp = trajectory_log_probs(R=2, K=5)
    with pytest.raises(ValueError, match="n_landmarks must be at most the number of models M=10"):
        LandmarkInPCA(2, 11).fit(lp)
    with pytest.raises(ValueError, match="n_components must be at most n_landmarks=3"):
        LandmarkInPCA(4, 3).fit(lp)
    with pytest.raises(ValueError, match="n_landmarks"):
        LandmarkInPCA(2, 1).fit(lp)
    assert repr(LandmarkInPCA(3, 100, seed=2)) == "LandmarkInPCA(n_components=3, n_landmarks=100, seed=2)"
