"""linsim.inpca._mirror: the one-pass completion of an upper-triangle distance matrix."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linsim.inpca._mirror import BLOCK, mirror_scale


@settings(max_examples=30, deadline=None)
@given(M=st.sampled_from([0, 1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 7, 200]),
       scale=st.sampled_from([-1.0 / 3, -1e-3, 2.0]), seed=st.integers(0, 2**16))
def test_equals_mirror_then_scale_then_zero_diagonal_bitwise(M, scale, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((M, M)) * 10.0 ** rng.integers(-5, 5, (M, M))
    if M > 3:
        A[0, 3], A[1, 2], A[3, 0] = -np.inf, np.nan, 123.0  # the lower value is overwritten
    up = np.triu(A, 1)
    want = np.where(np.triu(np.ones((M, M), bool), 1), A, up.T) * scale  # mirrored, then scaled
    np.fill_diagonal(want, 0.0)
    mirror_scale(A, scale)
    np.testing.assert_array_equal(A, want)


def test_rejects_what_it_cannot_complete_in_place():
    with pytest.raises(ValueError, match="square C-contiguous float64"):
        mirror_scale(np.zeros((4, 4))[:, ::2], 1.0)
    with pytest.raises(ValueError, match="square C-contiguous float64"):
        mirror_scale(np.zeros((3, 4)), 1.0)
    with pytest.raises(ValueError, match="square C-contiguous float64"):
        mirror_scale(np.zeros((3, 3), np.float32), 1.0)
