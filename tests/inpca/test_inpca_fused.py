"""The fused distance kernel against the slow reference, the GEMM path and exact oracles.

Oracles: :func:`linsim.inpca.bhattacharyya_reference` (a per-pair scipy ``logsumexp`` loop,
independent of both kernels), closed forms for one-hot / near-one-hot models, and invariants
(symmetry, zero diagonal, worker-count independence).  Tolerance 1e-13 absolute for distances of
order 1-10 (float64 rounding of ~n*C terms).
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from linsim.inpca import DisjointSupportWarning, bhattacharyya, bhattacharyya_reference, one_hot_log_probs


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


@pytest.mark.parametrize("kernel", ["fused", "gemm"])
def test_kernels_match_reference_self_and_cross(kernel):
    rng = np.random.default_rng(0)
    A = log_softmax(3 * rng.standard_normal((37, 29, 6)))
    B = log_softmax(3 * rng.standard_normal((11, 29, 6)))
    D = bhattacharyya(A, kernel=kernel, tile=8, group=5)
    np.testing.assert_allclose(D, bhattacharyya_reference(A), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    X = bhattacharyya(A, B, kernel=kernel, tile=4, group=3)
    np.testing.assert_allclose(X, bhattacharyya_reference(A, B), rtol=0, atol=1e-13)


def test_fused_default_tiles_with_ragged_edges_and_workers_bitwise():
    rng = np.random.default_rng(1)
    A = log_softmax(2 * rng.standard_normal((300, 40, 10)))  # 300 = 256 + 44: a ragged column block
    one = bhattacharyya(A, kernel="fused", workers=1)
    two = bhattacharyya(A, kernel="fused", workers=2)
    three = bhattacharyya(A, kernel="fused", workers=3)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, three)
    idx = np.array([0, 63, 64, 255, 256, 299])
    ref = bhattacharyya_reference(A[idx])
    np.testing.assert_allclose(one[np.ix_(idx, idx)], ref, rtol=0, atol=1e-13)
    gemm = bhattacharyya(A, kernel="gemm")
    np.testing.assert_allclose(one, gemm, rtol=0, atol=1e-13)


def test_float32_input_accumulates_in_float64():
    """A float32 input is used as the float64 numbers it holds (normalized): the result agrees
    with the float64 reference on the same values to 1e-13, far below float32 resolution."""
    rng = np.random.default_rng(2)
    A32 = log_softmax(3 * rng.standard_normal((20, 300, 10))).astype(np.float32)
    D = bhattacharyya(A32, kernel="fused")
    assert D.dtype == np.float64
    ref = bhattacharyya_reference(A32.astype(np.float64))
    np.testing.assert_allclose(D, ref, rtol=0, atol=1e-13)
    # a float32 accumulation of the same sum would be off by ~1e-6 here
    assert np.abs(ref).max() > 0.1


def test_fused_exact_one_hot_underflow_and_disjoint_support():
    C, n = 3, 700
    rng = np.random.default_rng(3)
    A = log_softmax(40.0 * rng.standard_normal((6, n, C)))  # confident: tiny coefficients, many flushes
    A[1, 100] = [0.0, -2500.0, -2500.0]
    A[2, 100] = [-2500.0, 0.0, -2500.0]  # BC = 2 exp(-1250) on sample 100: far below 2**-900
    A[3, 350] = [0.0, -np.inf, -np.inf]
    A[4, 350] = [-np.inf, 0.0, -np.inf]  # disjoint on sample 350
    with pytest.warns(DisjointSupportWarning, match=r"1 model pair.*models \(3, 4\) on sample 350"):
        D = bhattacharyya(A, kernel="fused", group=8)
    ref = bhattacharyya_reference(A)
    finite = np.isfinite(ref)
    np.testing.assert_allclose(D[finite], ref[finite], rtol=1e-13, atol=1e-12)
    assert D[3, 4] == np.inf and D[4, 3] == np.inf and np.sum(~np.isfinite(D)) == 2
    with pytest.raises(ValueError, match=r"models \(3, 4\) on sample 350"):
        bhattacharyya(A, kernel="fused", on_disjoint="raise")


def test_fused_one_hot_closed_forms():
    """d(one-hot y, one-hot y) = 0, d(uniform, one-hot) = log(C)/2 exactly; p vs truth = CE/2."""
    rng = np.random.default_rng(4)
    n, C = 50, 7
    labels = rng.integers(0, C, n)
    truth = one_hot_log_probs(labels, C)
    uniform = np.full((n, C), -np.log(C))
    A = log_softmax(rng.standard_normal((5, n, C)))
    P = np.concatenate([A, truth[None], truth[None], uniform[None]])
    D = bhattacharyya(P, kernel="fused")
    assert D[5, 6] == 0.0
    assert D[5, 7] == pytest.approx(0.5 * np.log(C), abs=1e-15)
    ce = -A[:, np.arange(n), labels].mean(axis=1)
    np.testing.assert_allclose(D[:5, 5], ce / 2, rtol=0, atol=1e-14)


def test_kernel_argument_checks():
    A = log_softmax(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="kernel must be"):
        bhattacharyya(A, kernel="blas")
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        bhattacharyya(A, workers=0)
    out = np.empty((3, 3))
    with pytest.raises(ValueError, match=r"out must be a writeable C-contiguous float64 array of shape \(2, 2\)"):
        bhattacharyya(A, out=out)


def test_torch_device_agnostic_path_float32_and_float64():
    """The GEMM path (the one used on CUDA) on an explicit CPU device, float32 and float64."""
    rng = np.random.default_rng(5)
    A = log_softmax(3 * rng.standard_normal((9, 17, 40)))  # C = 40 > 32: "auto" takes GEMM
    ref = bhattacharyya_reference(A)
    for t in (torch.from_numpy(A), torch.from_numpy(A.astype(np.float32))):
        D = bhattacharyya(t, device=torch.device("cpu"))
        exp = ref if t.dtype == torch.float64 else bhattacharyya_reference(t.double().numpy())
        np.testing.assert_allclose(D, exp, rtol=0, atol=1e-13)


@given(
    M=st.integers(1, 9),
    Mb=st.integers(1, 5),
    n=st.integers(1, 40),
    C=st.sampled_from([2, 3, 10]),
    scale=st.sampled_from([0.1, 3.0, 30.0, 300.0]),
    tile=st.sampled_from([None, 1, 3, 8]),
    group=st.sampled_from([None, 1, 4]),
    seed=st.integers(0, 2**16),
)
def test_property_fused_matches_reference(M, Mb, n, C, scale, tile, group, seed):
    rng = np.random.default_rng(seed)
    A = log_softmax(scale * rng.standard_normal((M, n, C)))
    B = log_softmax(scale * rng.standard_normal((Mb, n, C)))
    D = bhattacharyya(A, kernel="fused", tile=tile, group=group, on_disjoint="ignore")
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    ref = bhattacharyya_reference(A)
    np.testing.assert_allclose(D, ref, rtol=1e-13, atol=1e-13)
    assert np.all(D >= -1e-14)
    X = bhattacharyya(A, B, kernel="fused", tile=tile, group=group, on_disjoint="ignore")
    np.testing.assert_allclose(X, bhattacharyya_reference(A, B), rtol=1e-13, atol=1e-13)


def test_caller_thread_settings_are_left_as_they_were():
    """Neither kernel, nor InPCA, changes torch's or BLAS's thread counts of the caller."""
    from threadpoolctl import threadpool_info

    from linsim.inpca import InPCA

    def blas():
        return sorted((i["internal_api"], i["num_threads"]) for i in threadpool_info())

    before_torch, before_blas = torch.get_num_threads(), blas()
    rng = np.random.default_rng(6)
    A = log_softmax(rng.standard_normal((150, 120, 4)))  # large enough for the threaded paths
    for kernel in ("fused", "gemm"):
        D = bhattacharyya(A, kernel=kernel, workers=2)
    InPCA(n_components=3, solver="arpack").fit(D)
    InPCA(n_components=3, solver="iterative").fit(D)
    assert torch.get_num_threads() == before_torch
    assert blas() == before_blas
