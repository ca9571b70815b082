"""projected_stress: in-sample identity, exact Euclidean reconstruction, invariances, errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from linsim.compare import projected_stress, signed_gram
from linsim.inpca import InPCA, bhattacharyya, double_center, embedded_distances


def _logp(M, n=5, C=4, seed=0, scale=1.5):
    z = scale * np.random.default_rng(seed).normal(size=(M, n, C))
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_in_sample_rows_reproduce_the_basis_explained_stress():
    D = bhattacharyya(_logp(12, n=3, scale=3.0))
    fit = InPCA(8).fit(D)
    assert fit.n_negative_ > 0  # the identity must hold with time-like axes too
    chi = projected_stress(D, D, D, 8)
    np.testing.assert_allclose(chi, fit.explained_stress_, rtol=0, atol=1e-10)
    # ... and is the closed form 1 - sqrt(1 - sum lambda^2 / ||W||^2) computed here from eigh
    lam = np.linalg.eigvalsh(double_center(D))
    lam = lam[np.argsort(-np.abs(lam))]
    ref = 1 - np.sqrt(1 - np.cumsum(lam ** 2)[:8] / np.sum(lam ** 2))
    np.testing.assert_allclose(chi, ref, atol=1e-10)


def test_points_in_the_basis_plane_are_reconstructed_exactly():
    rng = np.random.default_rng(1)
    basis = rng.normal(size=(7, 2))
    new = rng.normal(size=(5, 2)) * 3  # outside the basis cloud, same plane
    sq = lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1)
    chi = projected_stress(sq(basis, basis), sq(new, basis), sq(new, new), 2)
    assert chi[1] == pytest.approx(1.0, abs=1e-10)
    assert chi[0] < 0.99  # one axis of a generic 2-D cloud is not enough
    # a third dimension the basis cannot see caps the stress below 1
    new3 = np.hstack([new, rng.normal(size=(5, 1))])
    basis3 = np.hstack([basis, np.zeros((7, 1))])
    chi3 = projected_stress(sq(basis3, basis3), sq(new3, basis3), sq(new3, new3), 2)
    assert chi3[1] < 0.99


def test_signed_gram_is_double_centered_embedded_distance():
    X = np.random.default_rng(2).normal(size=(6, 3))
    s = np.array([1.0, -1.0, 1.0])
    np.testing.assert_allclose(signed_gram(X, s), double_center(embedded_distances(X, s)), atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0), k=st.integers(1, 4))
def test_invariant_to_order_of_new_models_and_to_scaling(seed, scale, k):
    lp = _logp(14, seed=seed)
    D = bhattacharyya(lp)
    b, q = np.arange(9), np.arange(9, 14)
    base = projected_stress(D[np.ix_(b, b)], D[np.ix_(q, b)], D[np.ix_(q, q)], k)
    perm = np.random.default_rng(seed).permutation(q)
    permuted = projected_stress(D[np.ix_(b, b)], D[np.ix_(perm, b)], D[np.ix_(perm, perm)], k)
    scaled = projected_stress(scale * D[np.ix_(b, b)], scale * D[np.ix_(q, b)], scale * D[np.ix_(q, q)], k)
    np.testing.assert_allclose(permuted, base, atol=1e-9)
    np.testing.assert_allclose(scaled, base, atol=1e-8)
    assert np.all(base <= 1 + 1e-12)


def test_errors_name_the_argument():
    D = bhattacharyya(_logp(5))
    with pytest.raises(ValueError, match="n_components"):
        projected_stress(D, D, D, 5)
    with pytest.raises(ValueError, match="D_cross"):
        projected_stress(D, D[:, :3], D, 2)
    with pytest.raises(ValueError, match="D_new"):
        projected_stress(D, D, D[:3, :3], 2)
    bad = D.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"D_new has a NaN or inf entry at \(1, 2\)"):
        projected_stress(D, D, bad, 2)
