"""SGD: moment recursions vs exact enumeration of all batch sequences and vs Monte-Carlo."""

import itertools

import numpy as np
import pytest

from linsim.solvers import linear_gd
from linsim.solvers.sgd import sample_batches, sgd_moments, sgd_simulate


def data(n=5, d=3, C=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, rng.standard_normal((n, C)), rng.standard_normal((C, d))


def test_moments_equal_exhaustive_enumeration():
    # every sequence of batches (10^3 equally likely paths): exact mean and covariance
    X, Y, W0 = data()
    n, b, T, lr = 5, 2, 3, 0.3
    paths = [W0]
    for _ in range(T):
        paths = [W - lr * ((W @ X[list(B)].T - Y[list(B)].T) @ X[list(B)]) / b
                 for W in paths for B in itertools.combinations(range(n), b)]
    paths = np.array(paths)
    mean = paths.mean(0)
    cov = np.einsum("scd,sef->cdef", paths - mean, paths - mean) / len(paths)
    m, S = sgd_moments(X, Y, W0, np.zeros((2, 3, 2, 3)), lr, b, [0, T])
    np.testing.assert_allclose(m[1], mean, atol=1e-13)
    np.testing.assert_allclose(S[1], cov, atol=1e-14)
    np.testing.assert_array_equal(S[0], 0.0)
    assert np.abs(cov).max() > 1e-3  # the check is not vacuous


def test_moments_match_monte_carlo_within_standard_error():
    X, Y, W0 = data(n=8, d=3, C=2, seed=1)
    R, lr, b, T = 4000, 0.2, 3, 6
    s0 = 0.1  # random init with i.i.d. N(0, s0^2) entries around W0
    rng = np.random.default_rng(5)
    inits = W0 + s0 * rng.standard_normal((R, 2, 3))
    _, W = sgd_simulate(X, Y, inits, lr, b, [T], seed=11, return_weights=True)
    W = W[:, 0].reshape(R, -1)
    m, S = sgd_moments(X, Y, W0, s0**2 * np.eye(6).reshape(2, 3, 2, 3), lr, b, [T])
    # mean: z-scores with the sample standard error
    z_mean = (W.mean(0) - m[0].ravel()) / (W.std(0, ddof=1) / np.sqrt(R))
    assert np.abs(z_mean).max() < 4.5
    # covariance: standard error of each sample covariance entry from the products' spread
    dev = W - W.mean(0)
    prod = dev[:, :, None] * dev[:, None, :]
    se = prod.std(0, ddof=1) / np.sqrt(R)
    z_cov = (prod.mean(0) - S[0].reshape(6, 6)) / se
    assert np.abs(z_cov).max() < 4.5


def test_full_batch_sgd_is_gd():
    X, Y, W0 = data()
    W0 = np.stack([W0, -W0])
    np.testing.assert_allclose(sgd_simulate(X, Y, W0, 0.3, 5, [0, 4, 9], seed=0),
                               linear_gd(X, Y, W0, 0.3, [0, 4, 9]), rtol=1e-12, atol=1e-13)
    m, S = sgd_moments(X, Y, W0[0], np.zeros((2, 3, 2, 3)), 0.3, 5, [9])
    np.testing.assert_array_equal(S, 0.0)


def test_seeded_and_batches_distinct():
    X, Y, W0 = data()
    W0 = W0[None]
    a = sgd_simulate(X, Y, W0, 0.3, 2, [7], seed=3)
    np.testing.assert_array_equal(a, sgd_simulate(X, Y, W0, 0.3, 2, [7], seed=3))
    assert not np.array_equal(a, sgd_simulate(X, Y, W0, 0.3, 2, [7], seed=4))
    idx = sample_batches(10, 4, 500, np.random.default_rng(0))
    assert all(len(set(row)) == 4 for row in idx)
    counts = np.bincount(idx.ravel(), minlength=10)
    assert np.all(np.abs(counts - 200) < 5 * np.sqrt(200))


def test_bad_sgd_inputs():
    X, Y, W0 = data()
    with pytest.raises(ValueError, match="batch_size"):
        sgd_simulate(X, Y, W0[None], 0.1, 6, [1], seed=0)
    with pytest.raises(TypeError, match="batch_size"):
        sgd_simulate(X, Y, W0[None], 0.1, 2.0, [1], seed=0)
    with pytest.raises(ValueError, match="seed"):
        sgd_simulate(X, Y, W0[None], 0.1, 2, [1], seed=None)
    with pytest.raises(ValueError, match="stability limit"):
        sgd_simulate(X, Y, W0[None], 100.0, 2, [1], seed=0)
    with pytest.raises(ValueError, match="cov0"):
        sgd_moments(X, Y, W0, np.zeros((6, 6)), 0.1, 2, [1])
