"""InPCA: exact oracles (PCA for Euclidean D, Frobenius identity, stress), solvers, bad input.

Tolerances: eigen-quantities agree to 1e-10 relative to |lambda_1| (float64 eigensolvers on
well-separated spectra); identities hold to 1e-12 relative.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linsim.inpca import InPCA, bhattacharyya, double_center, embedded_distances, explained_stress


def sq_euclidean(X):
    diff = X[:, None, :] - X[None, :, :]
    return np.sum(diff**2, axis=-1)


def random_points(rng, M, d, decay=0.6):
    return rng.standard_normal((M, d)) * decay ** np.arange(d)


def non_euclidean_D(rng, M):
    """Bhattacharyya distances of a random softmax ensemble: typically has negative eigenvalues."""
    logits = 3.0 * rng.standard_normal((M, 3, 4))  # few samples, confident: far from Euclidean
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return bhattacharyya(logp)


def test_double_center_matches_explicit_J_and_inplace_option():
    rng = np.random.default_rng(0)
    D = non_euclidean_D(rng, 17)
    M = len(D)
    J = np.eye(M) - np.ones((M, M)) / M
    W_ref = -0.5 * J @ D @ J
    W = double_center(D)
    np.testing.assert_allclose(W, W_ref, atol=1e-14)
    D2 = D.copy()
    W2 = double_center(D2, overwrite=True)
    assert W2 is D2
    np.testing.assert_allclose(W2, W_ref, atol=1e-14)
    assert not np.shares_memory(double_center(D), D)


def test_squared_euclidean_distances_give_exactly_pca():
    rng = np.random.default_rng(1)
    X = random_points(rng, 40, 5)
    fit = InPCA(n_components=5, solver="dense").fit(sq_euclidean(X))
    Xc = X - X.mean(0)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    np.testing.assert_allclose(fit.eigenvalues_, s**2, rtol=1e-10)
    assert fit.n_negative_ == 0 and np.all(fit.signature_ == 1)
    # PCA scores up to a sign per axis (fixed by our sign convention)
    scores = U * s
    signs = np.sign(np.sum(scores * fit.embedding_, axis=0))
    np.testing.assert_allclose(fit.embedding_, scores * signs, atol=1e-10)
    # full rank recovers all distances and stress 1
    np.testing.assert_allclose(fit.embedded_distances(), sq_euclidean(X), atol=1e-10)
    # the square root turns rounding 1e-16 of 1 - sum(lam^2)/||W||^2 into ~1e-8
    assert fit.explained_stress_[-1] == pytest.approx(1.0, abs=1e-7)
    # n_components=None keeps only the numerically non-zero eigenpairs (rank 5 here)
    full = InPCA().fit(sq_euclidean(X))
    assert len(full.eigenvalues_) == 5


def test_signed_sorting_signs_and_negative_eigenvalues():
    rng = np.random.default_rng(2)
    D = non_euclidean_D(rng, 30)
    fit = InPCA().fit(D)
    lam = fit.eigenvalues_
    assert np.all(np.diff(np.abs(lam)) <= 0)
    assert fit.n_negative_ == np.sum(lam < 0) > 0  # a non-Euclidean D has time-like axes
    np.testing.assert_array_equal(fit.signature_, np.where(lam < 0, -1, 1))
    V = fit.eigenvectors_
    assert np.all(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])] > 0)
    # full signed embedding reproduces D
    np.testing.assert_allclose(fit.embedded_distances(), D, atol=1e-12 * np.abs(D).max())
    np.testing.assert_allclose(fit.embedding_, V * np.sqrt(np.abs(lam)))


def test_frobenius_identity_and_stress():
    rng = np.random.default_rng(3)
    D = non_euclidean_D(rng, 25)
    M = len(D)
    W = double_center(D)
    lhs = np.sum(D**2)
    rhs = 2 * np.trace(W) ** 2 + 2 * M * np.sum(np.diag(W) ** 2) + 4 * np.sum(W**2)
    assert lhs == pytest.approx(rhs, rel=1e-12)
    fit = InPCA(n_components=4).fit(D)
    assert fit.frobenius_norm_ == pytest.approx(np.linalg.norm(W), rel=1e-13)
    assert fit.trace_ == pytest.approx(np.trace(W), rel=1e-12)
    np.testing.assert_allclose(fit.diagonal_, np.diag(W), atol=1e-15)
    # chi_k = 1 - ||W - W_k||_F / ||W||_F with the signed rank-k truncation
    for k in range(1, 5):
        Wk = (fit.eigenvectors_[:, :k] * fit.eigenvalues_[:k]) @ fit.eigenvectors_[:, :k].T
        chi = 1 - np.linalg.norm(W - Wk) / np.linalg.norm(W)
        assert fit.explained_stress_[k - 1] == pytest.approx(chi, abs=1e-10)
    # invariant to scaling D
    fit2 = InPCA(n_components=4).fit(7.5 * D)
    np.testing.assert_allclose(fit2.explained_stress_, fit.explained_stress_, atol=1e-13)
    np.testing.assert_allclose(fit2.eigenvalues_, 7.5 * fit.eigenvalues_, rtol=1e-11)
    # full rank reaches 1
    assert InPCA().fit(D).explained_stress_[-1] == pytest.approx(1.0, abs=1e-7)


def test_explained_stress_function_checks():
    import theory

    assert explained_stress is theory.explained_stress  # one implementation in the project
    assert explained_stress([4.0, -3.0], 5.0)[-1] == pytest.approx(1.0)
    assert explained_stress([-3.0], 5.0)[0] == pytest.approx(1 - np.sqrt(1 - 9 / 25))
    with pytest.raises(ValueError, match="not its square"):
        explained_stress([4.0, 3.0], 5.0 * 0.5)
    with pytest.raises(ValueError, match="sorted"):
        explained_stress([3.0, 4.0], 5.0)
    with pytest.raises(ValueError, match="positive"):
        explained_stress([1.0], 0.0)


def test_transform_in_sample_rows_reproduce_embedding_and_new_points():
    rng = np.random.default_rng(4)
    D = non_euclidean_D(rng, 30)
    fit = InPCA(n_components=6).fit(D)
    np.testing.assert_allclose(fit.transform(D), fit.embedding_, atol=1e-12)
    np.testing.assert_allclose(fit.transform(D[3]), fit.embedding_[3:4], atol=1e-12)
    # Euclidean case: out-of-sample points land on their PCA coordinates
    X = random_points(rng, 30, 3)
    Y = random_points(rng, 4, 3)
    full = InPCA(n_components=3).fit(sq_euclidean(X))
    Dnew = np.sum((Y[:, None] - X[None]) ** 2, -1)
    coords = full.transform(Dnew)
    np.testing.assert_allclose(embedded_distances(coords, full.signature_, full.embedding_), Dnew, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_iterative_and_dense_solvers_agree(seed):
    rng = np.random.default_rng(seed)
    X = random_points(rng, 300, 12, decay=0.7)
    Z = random_points(rng, 300, 3, decay=0.5)
    D = sq_euclidean(X)
    D = D + 0.3 * (sq_euclidean(Z) ** 0.5)  # a non-Euclidean part: negative eigenvalues
    dense = InPCA(n_components=6, solver="dense").fit(D)
    it = InPCA(n_components=6, solver="iterative").fit(D)
    assert it.solver_ == "iterative" and dense.solver_ == "dense"
    np.testing.assert_allclose(it.eigenvalues_, dense.eigenvalues_, rtol=1e-9, atol=1e-10 * abs(dense.eigenvalues_[0]))
    np.testing.assert_allclose(it.embedding_, dense.embedding_, atol=1e-7 * np.abs(dense.embedding_).max())
    np.testing.assert_allclose(it.explained_stress_, dense.explained_stress_, atol=1e-10)
    assert it.frobenius_norm_ == pytest.approx(dense.frobenius_norm_, rel=1e-13)


@given(M=st.integers(3, 25), k=st.integers(1, 3), seed=st.integers(0, 1000))
def test_property_stress_monotone_and_transform_exact(M, k, seed):
    rng = np.random.default_rng(seed)
    D = non_euclidean_D(rng, M)
    k = min(k, M - 1)
    fit = InPCA(n_components=k).fit(D)
    assert np.all(np.diff(fit.explained_stress_) >= -1e-15)
    assert 0 <= fit.explained_stress_[0] and fit.explained_stress_[-1] <= 1
    np.testing.assert_allclose(fit.transform(D), fit.embedding_, atol=1e-10)


@pytest.mark.parametrize(
    "D, match",
    [
        (np.zeros((3, 4)), "square"),
        (np.zeros(3), "2-D"),
        (np.array([[0.0, 1.0], [1.0 + 1e-3, 0.0]]), r"not symmetric: D\[0, 1\]"),
        (np.array([[0.0, 1.0], [1.0, 0.5]]), r"diagonal entry .* at \(1, 1\)"),
        (np.array([[0.0, -1.0], [-1.0, 0.0]]), r"negative entry .* at \(0, 1\)"),
        (np.array([[0.0, np.inf], [np.inf, 0.0]]), r"non-finite entry inf at \(0, 1\)"),
        (np.array([[0.0, np.nan], [np.nan, 0.0]]), "non-finite"),
        (np.zeros((3, 3)), "all 3 models coincide: D is zero, nothing to embed"),
        (np.array([["a"]]), "numeric"),
    ],
)
def test_bad_distance_matrices(D, match):
    with pytest.raises((ValueError, TypeError), match=match):
        InPCA().fit(D)


def test_tolerance_and_parameter_errors():
    D = np.array([[0.0, 1.0], [1.0 + 1e-12, 0.0]])
    InPCA().fit(D)  # asymmetry within 1e-9 * max|D| is rounding
    with pytest.raises(ValueError, match="n_components"):
        InPCA(n_components=5).fit(D)
    with pytest.raises(ValueError, match="solver"):
        InPCA(solver="magic").fit(D)
    with pytest.raises(ValueError, match="not fitted"):
        InPCA().transform(D)
    fit = InPCA(n_components=1).fit(D)
    with pytest.raises(ValueError, match=r"\(q, M=2\)"):
        fit.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="negative"):
        fit.transform(np.array([[-1.0, 0.0]]))


@pytest.mark.parametrize("M, k, d", [(40, 12, 30), (700, 5, 100)])
def test_iterative_solver_exhaustion_and_thick_restart(M, k, d):
    """M=40: the block Krylov basis fills the whole space (Ritz pairs exact); M=700 with a flat
    spectrum: slow convergence exercises the thick restart.  Both agree with dense."""
    rng = np.random.default_rng(3)
    X = random_points(rng, M, d, decay=0.99)
    D = sq_euclidean(X) + 0.2 * sq_euclidean(random_points(rng, M, 3, decay=0.8)) ** 0.5
    dense = InPCA(n_components=k, solver="dense").fit(D)
    it = InPCA(n_components=k, solver="iterative").fit(D)
    np.testing.assert_allclose(it.eigenvalues_, dense.eigenvalues_, rtol=1e-9, atol=1e-10 * abs(dense.eigenvalues_[0]))
    np.testing.assert_allclose(it.embedding_, dense.embedding_, atol=1e-7 * np.abs(dense.embedding_).max())
    assert it.n_negative_ == dense.n_negative_
    if M == 700:
        assert it.n_iter_ > 8  # more blocks than fit in the basis: restarted at least once


def test_iterative_solver_reports_non_convergence():
    rng = np.random.default_rng(4)
    D = sq_euclidean(random_points(rng, 300, 40, decay=0.99))
    with pytest.warns(RuntimeWarning, match="did not converge in 2 iterations"):
        fit = InPCA(n_components=5, solver="iterative", max_iter=2).fit(D)
    assert fit.n_iter_ == 2


def test_fast_validation_agrees_with_checks_on_views_and_tensors():
    """The fused validation pass accepts exactly what check_distance_matrix accepts."""
    import torch

    rng = np.random.default_rng(5)
    D = non_euclidean_D(rng, 30)
    ref = InPCA(n_components=3).fit(D)
    for variant in (np.asfortranarray(D), torch.from_numpy(D), D.astype(np.float32), D[::-1, ::-1]):
        fit = InPCA(n_components=3).fit(variant)
        np.testing.assert_allclose(np.abs(fit.eigenvalues_), np.abs(ref.eigenvalues_), rtol=1e-6)
    bad = D.copy()
    bad[3, 7] += 1e-6 * D.max()  # beyond the 1e-9 relative asymmetry tolerance
    with pytest.raises(ValueError, match=r"not symmetric: D\[3, 7\]"):
        InPCA(n_components=3).fit(bad)
    bad = D.copy()
    bad[4, 4] = 1e-3
    with pytest.raises(ValueError, match=r"diagonal entry .* at \(4, 4\)"):
        InPCA(n_components=3).fit(bad)


# ----------------------------------------------------------------------------- estimator contract

def test_inpca_is_a_scikit_learn_estimator():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils._param_validation import InvalidParameterError

    est = InPCA(n_components=3, solver="arpack", tol=1e-9)
    assert repr(est) == "InPCA(n_components=3, solver='arpack', tol=1e-09)"
    assert est.get_params()["solver"] == "arpack"
    c = clone(est).set_params(n_components=2)
    assert c.n_components == 2 and est.n_components == 3
    D = sq_euclidean(random_points(np.random.default_rng(0), 10, 3))
    for bad in (dict(n_components=0), dict(solver="magic"), dict(tol=-1.0), dict(max_iter=0),
                dict(random_state=-3), dict(n_components=2.5)):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            InPCA(**bad).fit(D)
    with pytest.raises(NotFittedError, match="not fitted"):
        InPCA().transform(D)
    with pytest.raises(NotFittedError):
        InPCA().embedded_distances()


def test_arpack_solver_agrees_with_dense():
    rng = np.random.default_rng(7)
    D = sq_euclidean(random_points(rng, 150, 3)) ** 1.5  # not of negative type: time-like axes
    dense = InPCA(n_components=8, solver="dense").fit(D)
    arp = InPCA(n_components=8, solver="arpack").fit(D)
    assert arp.solver_ == "arpack" and arp.n_iter_ > 0
    np.testing.assert_allclose(arp.eigenvalues_, dense.eigenvalues_, rtol=1e-9)
    np.testing.assert_allclose(arp.embedding_, dense.embedding_, atol=1e-7 * np.abs(dense.embedding_).max())
    assert arp.n_negative_ == dense.n_negative_ > 0


def test_zero_eigenvalue_axis_gives_coordinate_zero_not_inf():
    X = random_points(np.random.default_rng(8), 6, 2)
    D = sq_euclidean(X)  # rank 2: the 3rd..5th eigenvalues are zero to rounding
    fit = InPCA(n_components=4, solver="dense").fit(D)
    np.testing.assert_array_equal(fit.null_axes_, [False, False, True, True])
    np.testing.assert_array_equal(fit.eigenvalues_[2:], 0.0)
    np.testing.assert_array_equal(fit.embedding_[:, 2:], 0.0)
    Y = random_points(np.random.default_rng(9), 3, 2)
    coords = fit.transform(np.sum((Y[:, None] - X[None]) ** 2, -1))
    assert np.isfinite(coords).all()
    np.testing.assert_array_equal(coords[:, 2:], 0.0)
    np.testing.assert_allclose(fit.transform(D), fit.embedding_, atol=1e-12)
