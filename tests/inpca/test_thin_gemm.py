"""The register-tiled thin product of the stored InPCA passes (``linsim.inpca._thin_gemm``).

Oracles: numpy's float64 product (to the rounding bound ``q eps sum_k |a_ik v_kj|``), an exact
product (integer-valued data: every partial sum is exact, so the kernel must be bitwise exact),
and the kernel's own row independence (each output row is one FMA chain: a row computed
alone or at another offset is bitwise the same).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linsim.inpca._thin_gemm import pad_columns, thin_matmul


@settings(max_examples=25, deadline=None)
@given(p=st.integers(1, 40), q=st.integers(1, 40), b=st.integers(1, 30), transpose=st.booleans(),
       seed=st.integers(0, 2**16))
def test_property_thin_matmul_equals_numpy(p, q, b, transpose, seed):
    """Any shape (row tails of the 6-row tile, column tails of the 24-column tile), both forms."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, q))
    V = rng.standard_normal((p if transpose else q, b))
    ref = (A.T if transpose else A) @ V
    got = thin_matmul(A, V, transpose=transpose)
    assert got.shape == ref.shape
    bound = (p if transpose else q) * np.finfo(float).eps * (np.abs(A.T if transpose else A) @ np.abs(V))
    assert np.all(np.abs(got - ref) <= bound + 1e-300)
    # integer data: exact partial sums, so the kernel is exact (and numpy too)
    Ai, Vi = np.round(8 * A), np.round(8 * V)
    np.testing.assert_array_equal(thin_matmul(Ai, Vi, transpose=transpose), (Ai.T if transpose else Ai) @ Vi)


def test_rows_do_not_depend_on_position_or_tiling():
    """Each product row is one FMA chain over k: rows of a sub-block (other tail handling, other
    offset, another padded width) are bitwise the rows of the whole product."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((50, 33))
    V = rng.standard_normal((33, 20))
    full = thin_matmul(A, V)
    for r0, r1 in ((0, 1), (7, 20), (44, 50), (1, 50)):
        np.testing.assert_array_equal(thin_matmul(np.ascontiguousarray(A[r0:r1]), V), full[r0:r1])
    np.testing.assert_array_equal(thin_matmul(A, V[:, :9]), full[:, :9])
    P = thin_matmul(A, pad_columns(V), padded=True)
    assert P.shape == (50, 24) and not P[:, 20:].any()
    np.testing.assert_array_equal(P[:, :20], full)
    # A^T V of the transposed copy's rows equals A V: the same chains
    np.testing.assert_array_equal(thin_matmul(np.ascontiguousarray(A.T), V, transpose=True), full)


def test_bad_operands_are_refused():
    A = np.ones((4, 3))
    with pytest.raises(ValueError, match="C-contiguous 2-D float64"):
        thin_matmul(np.asfortranarray(np.ones((4, 5))), np.ones((5, 2)))
    with pytest.raises(ValueError, match="C-contiguous 2-D float64"):
        thin_matmul(A.astype(np.float32), np.ones((3, 2)))
    with pytest.raises(ValueError, match="must have 3 rows"):
        thin_matmul(A, np.ones((4, 2)))
    with pytest.raises(ValueError, match="must have 4 rows"):
        thin_matmul(A, np.ones((3, 2)), transpose=True)


@settings(max_examples=20, deadline=None)
@given(p=st.integers(1, 30), q=st.integers(1, 30), b=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_property_pair_matmul_is_bitwise_the_two_thin_products(p, q, b, seed):
    """One pass over A gives (A VJ, A^T VI) bit for bit as the two separate kernels (the same FMA
    chains), which agree with numpy to rounding (tested above)."""
    from linsim.inpca._thin_gemm import pair_matmul

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, q))
    VJ, VI = pad_columns(rng.standard_normal((q, b))), pad_columns(rng.standard_normal((p, b)))
    PA, PB = pair_matmul(A, VJ, VI)
    np.testing.assert_array_equal(PA, thin_matmul(A, VJ, padded=True))
    np.testing.assert_array_equal(PB, thin_matmul(A, VI, transpose=True, padded=True))
    bound = p * np.finfo(float).eps * (np.abs(A).T @ np.abs(VI[:, :b]))
    assert np.all(np.abs(PB[:, :b] - A.T @ VI[:, :b]) <= bound + 1e-300)


def test_other_register_tiles_give_the_same_bits():
    """The shapes compiled on hosts without AVX-512 (2 x 16 tiles, 1 x 16 pair strips) and others
    compute the same FMA chains: bitwise the default kernels' results (so the fallback is tested
    here too)."""
    from linsim.inpca import _thin_gemm as g

    rng = np.random.default_rng(2)
    A = rng.standard_normal((29, 37))
    VJ, VI = pad_columns(rng.standard_normal((37, 21))), pad_columns(rng.standard_normal((29, 21)))
    PA, PB = g.pair_matmul(A, VJ, VI)
    for R, NV in ((2, 2), (3, 1)):
        shapes = sorted({(R, NV), (R, 1), (1, NV), (1, 1)})
        drive = g._build(g._kernel_source, g._driver_source(R, NV), shapes, "tile", "drive")
        P = np.empty((29, 24))
        drive(A.ravel(), VJ.ravel(), P.ravel(), 29, 37, 37, 1, 24)
        np.testing.assert_array_equal(P, PA)
        pair = g._build(g._pair_kernel_source, g._pair_driver_source(R - 1 or 1, NV), sorted(
            {(R - 1 or 1, NV), (R - 1 or 1, 1), (1, NV), (1, 1)}), "pair", "drive_pair")
        QA, QB = np.empty((29, 24)), np.zeros((37, 24))
        pair(A.ravel(), VJ.ravel(), VI.ravel(), QA.ravel(), QB.ravel(), 29, 37, 24)
        np.testing.assert_array_equal(QA, PA)
        np.testing.assert_array_equal(QB, PB)
