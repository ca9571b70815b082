"""Distances between models: exact oracles, a slow reference loop, properties and bad input.

Tolerances: float64 results agree with the plain per-pair loop to 1e-12 absolute (the kernel
is exact up to rounding, ~1e-15 per unit of distance); float32 vs float64 inputs agree to
2e-5 absolute (float32 resolution of log-probabilities of size ~10).
"""

import warnings

import numpy as np
import pytest
import scipy.special
import torch
from hypothesis import given
from hypothesis import strategies as st

from linsim.inpca import (
    DisjointSupportWarning,
    bernoulli_bhattacharyya,
    bhattacharyya,
    gaussian_bhattacharyya,
    hellinger,
    one_hot_log_probs,
    symmetric_kl,
    uniform_log_probs,
)


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def random_log_probs(rng, M, n, C, scale=3.0):
    return log_softmax(scale * rng.standard_normal((M, n, C)))


def ref_bhattacharyya(A, B):
    """Straightforward float64 loop: mean over samples of -log sum_c sqrt(p q)."""
    out = np.empty((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            bc = np.sum(np.sqrt(np.exp(a) * np.exp(b)), axis=-1)
            out[i, j] = -np.mean(np.log(bc))
    return out


def ref_bhattacharyya_logdomain(A, B):
    """Per-pair loop in the log domain (scipy logsumexp): exact where products underflow."""
    out = np.empty((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            out[i, j] = -np.mean(scipy.special.logsumexp(0.5 * (a + b), axis=-1))
    return out


def test_matches_reference_loop_self_and_cross_with_odd_tiles():
    rng = np.random.default_rng(1)
    A = random_log_probs(rng, 23, 41, 6)
    B = random_log_probs(rng, 9, 41, 6)
    ref = ref_bhattacharyya(A, A)
    # tiles and groups that do not divide M or n exercise the ragged edges
    D = bhattacharyya(A, tile=5, group=3, device="cpu")
    assert D.dtype == np.float64 and D.shape == (23, 23)
    np.testing.assert_allclose(D, ref, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    X = bhattacharyya(A, B, tile=4, group=7)
    np.testing.assert_allclose(X, ref_bhattacharyya(A, B), atol=1e-12, rtol=0)
    assert X.shape == (23, 9)


def test_torch_input_and_default_arguments():
    rng = np.random.default_rng(2)
    A = random_log_probs(rng, 7, 5, 3)
    np.testing.assert_allclose(bhattacharyya(torch.from_numpy(A)), ref_bhattacharyya(A, A), atol=1e-12)


def test_distance_to_truth_is_half_cross_entropy():
    rng = np.random.default_rng(3)
    n, C = 50, 7
    labels = rng.integers(0, C, n)
    A = random_log_probs(rng, 6, n, C)
    truth = one_hot_log_probs(labels, C)[None]
    d = bhattacharyya(A, truth)[:, 0]
    ce = -A[:, np.arange(n), labels].mean(axis=1)
    np.testing.assert_allclose(d, ce / 2, atol=1e-13, rtol=0)


@pytest.mark.parametrize("C", [2, 3, 10, 1000])
def test_uniform_to_truth_is_half_log_C(C):
    n = 4
    P = np.stack([uniform_log_probs(n, C), one_hot_log_probs(np.arange(n) % C, C)])
    D = bhattacharyya(P)
    assert D[0, 1] == pytest.approx(0.5 * np.log(C), abs=1e-14)


def test_disjoint_support_is_inf_with_warning_naming_pair_and_sample():
    C, n = 3, 4
    a = one_hot_log_probs(np.array([0, 1, 2, 0]), C)
    b = one_hot_log_probs(np.array([0, 1, 2, 1]), C)  # differs on sample 3 only
    c = uniform_log_probs(n, C)
    P = np.stack([a, c, b])
    with pytest.warns(DisjointSupportWarning, match=r"models \(0, 2\) on sample 3"):
        D = bhattacharyya(P, tile=2, group=2)
    assert D[0, 2] == np.inf and D[2, 0] == np.inf
    assert np.isfinite(D[0, 1]) and np.isfinite(D[1, 2])
    with pytest.raises(ValueError, match="disjoint support"):
        bhattacharyya(P, on_disjoint="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D2 = bhattacharyya(P, on_disjoint="ignore")
    np.testing.assert_array_equal(D, D2)


def test_near_one_hot_underflow_is_exact():
    """Products of coefficients far below the float64 range: fallback must stay exact."""
    C, n = 2, 40
    # p: almost surely class 0 with log p1 = -1500; q: the mirror image.  Per sample the
    # coefficient is 2*exp(-750) (underflows in float64), so d = 750 - log 2 exactly.
    lp = np.tile(np.array([0.0, -1500.0]), (n, 1))
    lq = lp[:, ::-1].copy()
    D = bhattacharyya(np.stack([lp, lq]), group=16)
    assert D[0, 1] == pytest.approx(750 - np.log(2), rel=1e-14)
    # moderately small coefficients: group product underflows, per-sample logs do not
    lp = np.tile(log_softmax(np.array([0.0, -60.0])), (n, 1))
    lq = lp[:, ::-1].copy()
    D = bhattacharyya(np.stack([lp, lq]), group=16)
    np.testing.assert_allclose(D[0, 1], ref_bhattacharyya(lp[None], lq[None])[0, 0], rtol=1e-13)


def test_float32_and_float64_inputs_agree():
    rng = np.random.default_rng(4)
    A = random_log_probs(rng, 12, 30, 10)
    d64 = bhattacharyya(A)
    d32 = bhattacharyya(A.astype(np.float32))
    assert d32.dtype == np.float64
    np.testing.assert_allclose(d32, d64, atol=2e-5, rtol=0)


@given(
    M=st.integers(1, 6),
    n=st.integers(1, 9),
    C=st.sampled_from([2, 3, 7, 50, 1000]),
    scale=st.sampled_from([0.1, 3.0, 30.0, 300.0]),  # 300: near-one-hot rows
    seed=st.integers(0, 2**16),
)
def test_property_matches_reference_and_is_a_divergence(M, n, C, scale, seed):
    rng = np.random.default_rng(seed)
    A = log_softmax(scale * rng.standard_normal((M, n, C)))
    D = bhattacharyya(A, tile=3, group=4)
    ref = ref_bhattacharyya_logdomain(A, A)
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(D, ref, atol=1e-11, rtol=1e-12)
    np.testing.assert_array_equal(D, D.T)
    assert np.all(D >= -1e-14)


def test_hellinger_convention_and_relation_to_bhattacharyya():
    rng = np.random.default_rng(5)
    A = random_log_probs(rng, 5, 8, 4)
    B = random_log_probs(rng, 3, 8, 4)
    H = hellinger(A, B)
    ref = np.array([[np.mean(0.5 * np.sum((np.exp(a / 2) - np.exp(b / 2)) ** 2, -1)) for b in B] for a in A])
    np.testing.assert_allclose(H, ref, atol=1e-14)
    Hs = hellinger(A)
    np.testing.assert_array_equal(np.diag(Hs), 0.0)
    np.testing.assert_array_equal(Hs, Hs.T)
    # one sample: d_B = -log(1 - H^2)
    a1, b1 = A[:, :1], B[:, :1]
    np.testing.assert_allclose(bhattacharyya(a1, b1), -np.log1p(-hellinger(a1, b1)), atol=1e-13)
    # disjoint distributions: H^2 = 1
    C = 3
    P = np.stack([one_hot_log_probs([0, 1], C), one_hot_log_probs([1, 2], C)])
    assert hellinger(P)[0, 1] == pytest.approx(1.0, abs=1e-15)


def test_symmetric_kl_against_loop_and_inf_on_support_mismatch():
    rng = np.random.default_rng(6)
    A = random_log_probs(rng, 6, 10, 5)
    K = symmetric_kl(A)
    ref = np.array([[np.mean(0.5 * np.sum((np.exp(a) - np.exp(b)) * (a - b), -1)) for b in A] for a in A])
    np.testing.assert_allclose(K, ref, atol=1e-13)
    np.testing.assert_array_equal(np.diag(K), 0.0)
    # same support with zeros: finite (0 log 0 = 0); different support: +inf
    C = 3
    with np.errstate(divide="ignore"):
        p = np.log(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]))
        q = np.log(np.array([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]]))
        r = np.log(np.array([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]]))
    K = symmetric_kl(np.stack([p, q, r]))
    expected = 0.5 * 0.5 * ((0.5 - 0.25) * np.log(0.5 / 0.25) + (0.5 - 0.75) * np.log(0.5 / 0.75))
    assert K[0, 1] == pytest.approx(expected, abs=1e-15)
    assert K[0, 2] == np.inf and K[2, 1] == np.inf
    assert C == p.shape[1]


def test_gaussian_bhattacharyya_closed_form():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((5, 6, 2)) + 10.0
    B = rng.standard_normal((3, 6, 2))
    sigma = 0.7
    D = gaussian_bhattacharyya(A, B, sigma=sigma)
    ref = np.array([[np.mean(np.sum((a - b) ** 2, -1)) / (8 * sigma**2) for b in B] for a in A])
    np.testing.assert_allclose(D, ref, rtol=1e-12)
    Ds = gaussian_bhattacharyya(A[..., 0], sigma=sigma)  # (M, n) means C = 1
    ref = np.array([[np.mean((a - b) ** 2) / (8 * sigma**2) for b in A[..., 0]] for a in A[..., 0]])
    np.testing.assert_allclose(Ds, ref, atol=1e-12)
    np.testing.assert_array_equal(np.diag(Ds), 0.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_bhattacharyya(A, sigma=0.0)
    A[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="model 1, sample 2, output 0"):
        gaussian_bhattacharyya(A)


def test_bernoulli_matches_two_class_loop_and_huge_logits():
    rng = np.random.default_rng(8)
    Z = 4 * rng.standard_normal((6, 9))
    D = bernoulli_bhattacharyya(Z[..., None])
    p = 1 / (1 + np.exp(-Z))
    ref = np.array([[-np.mean(np.log(np.sqrt(a * b) + np.sqrt((1 - a) * (1 - b)))) for b in p] for a in p])
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(D, ref, atol=1e-12)
    # logits +-1e4: per sample BC = 2 exp(-5000) (sqrt of sigma(-z) = exp(-z/2) both ways)
    big = np.array([[1e4, 1e4], [-1e4, -1e4]])
    Db = bernoulli_bhattacharyya(big)
    assert Db[0, 1] == pytest.approx(5000 - np.log(2), rel=1e-14)
    with pytest.raises(ValueError, match="shape"):
        bernoulli_bhattacharyya(rng.standard_normal((2, 3, 2)))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 4)), "shape"),
        (np.zeros((0, 4, 3)), "empty"),
        (np.full((2, 3, 4), np.log(0.3)), r"sum to 1 at model 0, sample 0"),
        (np.ones((2, 3, 4), dtype=np.int64), "floating"),
    ],
)
def test_bad_inputs(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bhattacharyya(bad)


def test_bad_values_are_located():
    rng = np.random.default_rng(9)
    A = random_log_probs(rng, 3, 40, 4)
    A[2, 37, 1] = np.nan
    with pytest.raises(ValueError, match="NaN, first at model 2, sample 37, class 1"):
        bhattacharyya(A, group=4)
    A[2, 37, 1] = np.inf
    with pytest.raises(ValueError, match=r"\+inf.*model 2, sample 37, class 1"):
        bhattacharyya(A)
    A[2, 37, 1] = -np.inf  # legal: zero probability (the row no longer sums to 1 though)
    with pytest.raises(ValueError, match="model 2, sample 37"):
        bhattacharyya(A)
    with pytest.raises(ValueError, match=r"agree in \(n, C\)"):
        bhattacharyya(A[:, :5], A[:, :6])
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        bhattacharyya([[[0.0]]])
    with pytest.raises(ValueError, match="on_disjoint"):
        bhattacharyya(A[:, :5], on_disjoint="clamp")


def test_normalization_tolerance_is_applied_and_used():
    rng = np.random.default_rng(10)
    A = random_log_probs(rng, 2, 3, 4)
    shifted = A + 1e-6  # sums to 1 + 1e-6: rejected at the float64 default, accepted at 1e-5
    with pytest.raises(ValueError, match="tolerance"):
        bhattacharyya(shifted)
    D = bhattacharyya(shifted, norm_tol=1e-5)
    # treated as the normalized distribution: equal to the distance of A itself
    np.testing.assert_allclose(D, bhattacharyya(A), atol=1e-15)


def test_worker_threads_agree_with_one_worker_and_reference():
    from linsim.inpca.distances import _bhattacharyya_impl

    rng = np.random.default_rng(11)
    A = random_log_probs(rng, 70, 90, 5)
    B = random_log_probs(rng, 33, 90, 5)
    kw = dict(device="cpu", tile=16, group=4, norm_tol=None, on_disjoint="warn", check=True)
    ta, tb = torch.from_numpy(A), torch.from_numpy(B)
    one = _bhattacharyya_impl(ta, None, workers=1, **kw)
    two = _bhattacharyya_impl(ta, None, workers=2, **kw)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, ref_bhattacharyya(A, A) * (1 - np.eye(70)), atol=1e-12, rtol=0)
    cross = _bhattacharyya_impl(ta, tb, workers=3, **kw)
    np.testing.assert_allclose(cross, ref_bhattacharyya(A, B), atol=1e-12, rtol=0)


def test_running_product_restarts_and_underflow_across_many_samples():
    """Coefficients ~1e-2 restart the running product every few groups; a few samples with
    coefficients far below 2**-900 (and one disjoint pair) land in between."""
    rng = np.random.default_rng(12)
    n, C = 700, 3
    A = log_softmax(40.0 * rng.standard_normal((5, n, C)))  # confident models: small coefficients
    A[1, 100] = [0.0, -2500.0, -2500.0]
    A[2, 100] = [-2500.0, 0.0, -2500.0]  # BC = 2 exp(-1250) on sample 100
    A[3, 350] = [0.0, -np.inf, -np.inf]
    A[4, 350] = [-np.inf, 0.0, -np.inf]  # disjoint on sample 350
    with pytest.warns(DisjointSupportWarning, match=r"models \(3, 4\) on sample 350"):
        D = bhattacharyya(A, group=8)
    ref = ref_bhattacharyya_logdomain(A, A)
    np.fill_diagonal(ref, 0.0)
    finite = np.isfinite(ref)
    np.testing.assert_allclose(D[finite], ref[finite], rtol=1e-13, atol=1e-12)
    assert D[3, 4] == np.inf and D[4, 3] == np.inf and np.sum(~np.isfinite(D)) == 2
