"""The compiled exact path for flagged pairs (linsim.inpca._exact).

Oracles, none of which calls the code under test: 50-digit ``mpmath`` sums, ``scipy.special.
logsumexp`` per pair in float64, the fused module's own numpy log-sum-exp
(:func:`linsim.inpca._fused.exact_pair_logbc`, what the numpy ``_redo_exact`` sums), closed
forms (uniform vs one-hot, a coefficient of ``2 exp(-1250)``, disjoint support), and
invariants (bitwise equality across threads, sample blocks, register tiles, pair order and
tiles of the index plane).
"""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from linsim.inpca import _exact, _fused, bhattacharyya, bhattacharyya_reference
from linsim.inpca._exact import exact_logbc_sums, redo_exact, redo_exact_reference

U = 2.0 ** -53
SHAPES = [(1, 1), (3, 1), None]  # None: the host's default register tile


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def lse_sums(La, Lb, ia, ib):
    """float64 oracle: sum_i logsumexp_c((la + lb) / 2) per pair (scipy)."""
    with np.errstate(divide="ignore"):
        return np.array([logsumexp(0.5 * (La[a] + Lb[b]), axis=-1).sum() for a, b in zip(ia, ib)])


def bound(La, Lb, ia, ib):
    """The module docstring's bound on |this path - numpy path|, per pair."""
    out = []
    for a, b in zip(ia, ib):
        H = 0.5 * (La[a] + Lb[b])
        n, C = H.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            lbc = logsumexp(H, axis=-1)
            hmax = np.where(np.isfinite(H), np.abs(H), 0.0).max(axis=-1)
        out.append(4 * U * (n * (C + 4) + (math.ceil(math.log2(max(n, 2))) + 4) * np.sum(np.abs(lbc) + hmax)))
    return np.array(out)


def assert_close(got, want, tol):
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    np.testing.assert_array_equal(got[~fin], want[~fin])
    err = np.abs(got[fin] - want[fin])
    assert np.all(err <= tol[fin]), f"worst error / bound {np.max(err / tol[fin]):.3g}"


def hard_ensemble(rng, M=20, n=70, C=6):
    """Confident, disagreeing outputs plus underflowing and disjoint samples."""
    A = log_softmax(100 * rng.standard_normal((M, n, C)))
    A[3, 5] = [0.0] + [-2500.0] * (C - 1)
    A[4, 5] = [-2500.0, 0.0] + [-2500.0] * (C - 2)  # BC = 2 exp(-1250) + ...: underflows
    A[7, 9] = A[7, 45] = [0.0] + [-np.inf] * (C - 1)
    A[8, 9] = A[8, 45] = [-np.inf, 0.0] + [-np.inf] * (C - 2)  # disjoint on samples 9 and 45
    A[10, 11, 2] = -np.inf  # a zero probability that leaves the support shared
    return A


# ----------------------------------------------------------------------------- oracles

def test_matches_50_digit_sums():
    """Both paths are within the error budget of the exact value of their inputs."""
    rng = np.random.default_rng(0)
    n, C = 6, 3
    A = log_softmax(60 * rng.standard_normal((5, n, C)))
    A[1, 2] = [0.0, -1800.0, -1800.0]
    A[2, 2] = [-1800.0, 0.0, -1800.0]  # BC = 2 exp(-900) + exp(-1800) < 2**-900: the log domain
    A[3, 4] = [0.0, -1000.0, -1000.0]
    A[4, 4] = [-1000.0, 0.0, -1000.0]  # BC = 2 exp(-500) + ...: products, rescaled
    ia, ib = np.array([0, 1, 0, 3, 4, 2]), np.array([1, 2, 4, 4, 4, 3])
    mpmath.mp.dps = 50
    exact = np.array([float(sum(mpmath.log(sum(mpmath.exp((mpmath.mpf(A[a, i, c]) + mpmath.mpf(A[b, i, c])) / 2)
                                                for c in range(C))) for i in range(n)))
                      for a, b in zip(ia, ib)])
    got, first = exact_logbc_sums(A, A, ia, ib)
    assert np.all(first == -1)
    tol = 4 * U * (n * (C + 4) + 3 * np.abs(exact))  # this path's own budget
    assert np.all(np.abs(got - exact) <= tol), np.abs(got - exact) / tol
    numpy_path = _fused.exact_pair_logbc(A[ia], A[ib]).sum(axis=1)
    assert np.all(np.abs(numpy_path - exact) <= bound(A, A, ia, ib))
    assert exact[1] < -900 and exact[3] < -500  # the regimes meant


def test_a_lane_does_not_depend_on_its_neighbours():
    """The lane-by-lane rule (taken when some coefficient of the register tile is tiny) and the
    vector rule give the same bits: pair (0, 1) beside a benign column 2, and beside a column 2
    whose sample 3 underflows against row 0 (the same tile: columns 0-7 share a panel)."""
    rng = np.random.default_rng(12)
    Z = rng.standard_normal((40, 4))
    A = log_softmax(np.stack([Z, Z + 0.01 * rng.standard_normal((40, 4)), 3 * rng.standard_normal((40, 4))]))
    A[0, 3] = A[1, 3] = [0.0, -3000.0, -3000.0, -3000.0]
    B = A.copy()
    B[2, 3] = [-3000.0, 0.0, -3000.0, -3000.0]
    for shape in SHAPES:
        calm, _ = exact_logbc_sums(A, A.copy(), [0, 0], [1, 2], shape=shape)
        mixed, _ = exact_logbc_sums(A, B, [0, 0], [1, 2], shape=shape)
        assert -1e-2 < calm[0] < 0  # small: its last bit is ~1e-19, so any change in Q shows
        assert mixed[0] == calm[0] and mixed[1] < -1500


@pytest.mark.parametrize("shape", SHAPES)
def test_random_flagged_sets_against_scipy_and_the_numpy_path(shape):
    rng = np.random.default_rng(1)
    A = hard_ensemble(rng)
    B = log_softmax(100 * rng.standard_normal((13, A.shape[1], A.shape[2])))
    for La, Lb in ((A, A), (A, B)):
        k = 150
        ia = rng.integers(0, La.shape[0], k)
        ib = rng.integers(0, Lb.shape[0], k)
        if Lb is A:
            ia[:3], ib[:3] = [3, 7, 10], [4, 8, 11]  # the special pairs
        got, first = exact_logbc_sums(La, Lb, ia, ib, shape=shape)
        tol = bound(La, Lb, ia, ib)
        assert_close(got, lse_sums(La, Lb, ia, ib), tol)
        assert_close(got, _fused.exact_pair_logbc(La[ia], Lb[ib]).sum(axis=1), tol)
        if Lb is A:
            assert first[1] == 9 and got[1] == -np.inf
            assert first[0] == -1 and got[0] < -1250 and np.isfinite(got[2])
        assert np.all((first >= 0) == np.isneginf(got))


def test_closed_forms():
    """Uniform vs one-hot: log BC = -log(C) / 2 each sample; a model with itself: 0."""
    n, C = 300, 7
    labels = np.random.default_rng(2).integers(0, C, n)
    with np.errstate(divide="ignore"):
        onehot = np.log(np.eye(C)[labels])
    L = np.stack([np.full((n, C), -np.log(C)), onehot])
    got, first = exact_logbc_sums(L, L, [0, 1, 0], [1, 1, 0])
    assert got[0] == pytest.approx(-n * np.log(C) / 2, rel=4 * n * U)
    assert abs(got[1]) == 0.0 and abs(got[2]) <= 4 * n * C * U
    assert np.all(first == -1)


def test_long_products_rescale_exactly():
    """n = 3000 samples at ~45 nats each (many exact rescalings, numpy's pairwise summation
    recursing): within the bound of the scipy oracle."""
    rng = np.random.default_rng(3)
    A = log_softmax(100 * rng.standard_normal((6, 3000, 4)))
    ia, ib = np.array([0, 0, 1, 2, 5]), np.array([1, 5, 3, 4, 5])
    got, _ = exact_logbc_sums(A, A, ia, ib)
    want = lse_sums(A, A, ia, ib)
    assert want[0] < -50_000  # far below what a float64 product could hold without rescaling
    assert_close(got, want, bound(A, A, ia, ib))


def test_float32_inputs_accumulate_in_float64():
    rng = np.random.default_rng(4)
    A32 = log_softmax(40 * rng.standard_normal((9, 50, 5))).astype(np.float32)
    A64 = A32.astype(np.float64)  # the same numbers
    ia, ib = np.triu_indices(9, 1)
    got32, _ = exact_logbc_sums(A32, A32, ia, ib)
    got64, _ = exact_logbc_sums(A64, A64, ia, ib)
    np.testing.assert_array_equal(got32, got64)
    assert_close(got32, lse_sums(A64, A64, ia, ib), bound(A64, A64, ia, ib))


# ----------------------------------------------------------------------------- invariants

def test_bitwise_independent_of_threads_blocks_tiles_and_order():
    rng = np.random.default_rng(5)
    A = hard_ensemble(rng, M=45, n=90)
    ia, ib = np.triu_indices(45, 1)
    keep = rng.random(ia.size) < 0.6  # a ragged set: partial groups and panels
    ia, ib = ia[keep], ib[keep]
    ref, fref = exact_logbc_sums(A, A, ia, ib, workers=1)
    variants = [dict(workers=2), dict(workers=3), dict(sblock=1), dict(sblock=7), dict(sblock=1000)]
    variants += [dict(shape=s) for s in SHAPES[:2]]
    for kw in variants:
        got, f = exact_logbc_sums(A, A, ia, ib, **kw)
        np.testing.assert_array_equal(got, ref, err_msg=str(kw))
        np.testing.assert_array_equal(f, fref, err_msg=str(kw))
    perm = rng.permutation(ia.size)
    got, f = exact_logbc_sums(A, A, ia[perm], ib[perm], workers=2)
    np.testing.assert_array_equal(got, ref[perm])
    np.testing.assert_array_equal(f, fref[perm])
    got, _ = exact_logbc_sums(A, A.copy(), ia, ib)  # separate column copy: same bits
    np.testing.assert_array_equal(got, ref)


def test_repeated_pairs_get_the_same_value():
    rng = np.random.default_rng(6)
    A = log_softmax(50 * rng.standard_normal((5, 20, 3)))
    ia, ib = np.array([0, 1, 0, 2, 0]), np.array([1, 2, 1, 3, 1])
    got, _ = exact_logbc_sums(A, A, ia, ib)
    assert got[0] == got[2] == got[4]
    np.testing.assert_array_equal(got[[0, 1, 3]], exact_logbc_sums(A, A, ia[[0, 1, 3]], ib[[0, 1, 3]])[0])


# ----------------------------------------------------------------------------- the drop-in

def callbacks(A, B=None, dtype=np.float64):
    tens = (A.astype(dtype), (A if B is None else B).astype(dtype))
    calls = []

    def logprobs(which, models, s0, s1):
        models = np.asarray(models)
        calls.append((which, len(models), s0, s1))
        return tens[which][models, s0:s1]

    return logprobs, calls


@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_redo_exact_matches_the_numpy_redo(sym, dtype):
    """Same effect as the numpy path on out (to the bound) and disjoint (exactly); entries
    not flagged are untouched; a pre-existing disjoint entry keeps the smaller sample."""
    rng = np.random.default_rng(7)
    A = hard_ensemble(rng, M=30, n=64)
    B = None if sym else hard_ensemble(rng, M=17, n=64)[::-1].copy()
    Mb = 30 if sym else 17
    ia, ib = np.nonzero(rng.random((30, Mb)) < 0.3)
    if sym:
        keep = ia < ib
        ia, ib = ia[keep], ib[keep]
        ia, ib = np.append(ia, [3, 7]), np.append(ib, [4, 8])
    start = rng.standard_normal((30, Mb))
    results = []
    for fn in (redo_exact, redo_exact_reference):
        logprobs, _ = callbacks(A, B, dtype)
        out, dis = start.copy(), {(int(ia[0]), int(ib[0])): 2, (7, 8): 1000}
        for s0, s1 in ((0, 20), (20, 64)):  # two chunks, as the fused driver calls it
            fn(ia, ib, s0, s1, logprobs, sym, out, dis)
        results.append((out, dis))
    (out, dis), (out_ref, dis_ref) = results
    assert dis == dis_ref
    if sym:
        assert dis[(7, 8)] == 9
    flagged = np.zeros((30, Mb), dtype=bool)
    flagged[ia, ib] = True
    np.testing.assert_array_equal(out[~flagged], start[~flagged])
    L = A.astype(dtype).astype(np.float64)
    R = L if sym else B.astype(dtype).astype(np.float64)
    tol = 2 * bound(L, R, ia, ib) + 4 * U * np.abs(start[ia, ib])
    assert_close(out[ia, ib], out_ref[ia, ib], tol)
    assert_close(out[ia, ib] - start[ia, ib], lse_sums(L, R, ia, ib), tol)


def test_redo_exact_runs_the_callback_on_one_thread_and_restores_the_callers_setting():
    import torch

    A = log_softmax(100 * np.random.default_rng(13).standard_normal((6, 10, 3)))
    seen = []

    def logprobs(which, models, s0, s1):
        seen.append(torch.get_num_threads())
        return A[models, s0:s1]

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        redo_exact(np.array([0, 1]), np.array([2, 3]), 0, 10, logprobs, True, np.zeros((6, 6)), {})
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_reference_is_the_fused_numpy_formula_bit_for_bit():
    """redo_exact_reference sums exactly what _fused.exact_pair_logbc gives per sample."""
    rng = np.random.default_rng(8)
    A = hard_ensemble(rng, M=12, n=50)
    ia, ib = np.triu_indices(12, 1)
    logprobs, _ = callbacks(A)
    out, dis = np.zeros((12, 12)), {}
    redo_exact_reference(ia, ib, 0, 50, logprobs, True, out, dis, batch=7)
    np.testing.assert_array_equal(out[ia, ib], _fused.exact_pair_logbc(A[ia], A[ib]).sum(axis=1))
    assert dis == {(7, 8): 9}


def test_redo_exact_tiles_fetch_each_model_once_per_tile_and_do_not_change_bits():
    rng = np.random.default_rng(9)
    A = log_softmax(100 * rng.standard_normal((40, 30, 4)))
    ia, ib = np.triu_indices(40, 1)
    outs = []
    for batch in (4096, 16, 5, 1):
        logprobs, calls = callbacks(A)
        out = np.zeros((40, 40))
        redo_exact(ia, ib, 0, 30, logprobs, True, out, {}, batch=batch, workers=2)
        outs.append(out)
        nt = len({(a // batch, b // batch) for a, b in zip(ia, ib)})
        assert len(calls) == nt and all(c[0] == 0 for c in calls)
        if batch == 4096:
            assert calls == [(0, 40, 0, 30)]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    logprobs, calls = callbacks(A, A[:9])
    redo_exact(np.array([0, 5, 5]), np.array([8, 2, 8]), 3, 30, logprobs, False, np.zeros((40, 9)), {})
    assert calls == [(0, 2, 3, 30), (1, 2, 3, 30)]  # rows {0, 5}, columns {2, 8}


def test_through_bhattacharyya_on_the_bad_case(monkeypatch):
    """Confident, disagreeing outputs (logits 300 N(0, 1), ~130 nats a sample, 3000 bits lost
    in 16 samples): the fused kernel flags every pair, and the distances through this path
    match the oracle."""
    A = log_softmax(300 * np.random.default_rng(10).standard_normal((20, 200, 10)))
    redone = []

    def spy(fa, *args, **kw):
        redone.append(len(fa))
        return redo_exact(fa, *args, **kw)

    monkeypatch.setattr(_fused, "_redo_exact", spy)
    D = bhattacharyya(A, kernel="fused", workers=1)
    assert sum(redone) >= 190  # all 190 pairs (more calls when the samples come in chunks)
    ref = bhattacharyya_reference(A)
    assert np.median(D[np.triu_indices(20, 1)]) > 100
    np.testing.assert_allclose(D, ref, rtol=1e-14, atol=1e-13)
    X = bhattacharyya(A[:7], A[5:], kernel="fused", workers=1)
    np.testing.assert_allclose(X, bhattacharyya_reference(A[:7], A[5:]), rtol=1e-14, atol=1e-13)


# ----------------------------------------------------------------------------- property

@settings(max_examples=30, deadline=None)
@given(
    M=st.integers(1, 30), Mb=st.integers(1, 30), n=st.integers(1, 80), C=st.integers(1, 12),
    scale=st.sampled_from([0.1, 5.0, 60.0, 300.0]), frac=st.floats(0.05, 1.0), f32=st.booleans(),
    zeros=st.booleans(), seed=st.integers(0, 2**31 - 1),
)
def test_property_matches_scipy_and_is_thread_invariant(M, Mb, n, C, scale, frac, f32, zeros, seed):
    rng = np.random.default_rng(seed)
    A, B = (log_softmax(scale * rng.standard_normal((m, n, C))) for m in (M, Mb))
    if zeros:  # zero probabilities, never a whole row
        for L in (A, B):
            mask = rng.random(L.shape) < 0.3
            mask[..., 0] = False
            L[mask] = -np.inf
    if f32:
        A, B = A.astype(np.float32), B.astype(np.float32)
    ia, ib = np.nonzero(rng.random((M, Mb)) < frac)
    got, first = exact_logbc_sums(A, B, ia, ib, workers=1)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    assert_close(got, lse_sums(A64, B64, ia, ib), bound(A64, B64, ia, ib))
    assert np.all((first >= 0) == np.isneginf(got))
    got2, first2 = exact_logbc_sums(A, B, ia, ib, workers=2, sblock=5)
    np.testing.assert_array_equal(got2, got)
    np.testing.assert_array_equal(first2, first)


# ----------------------------------------------------------------------------- errors

def test_bad_input_is_named():
    L = log_softmax(np.random.default_rng(11).standard_normal((4, 5, 3)))
    with pytest.raises(TypeError, match="La must be float32 or float64"):
        exact_logbc_sums(L.astype(np.int64), L, [0], [1])
    with pytest.raises(ValueError, match=r"Lb must have shape \(models, samples, classes\)"):
        exact_logbc_sums(L, L[0], [0], [1])
    with pytest.raises(ValueError, match="same \\(samples, classes\\)"):
        exact_logbc_sums(L, L[:, :4], [0], [1])
    bad = L.copy()
    bad[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"Lb contains NaN, first at model 2, sample 3, class 1"):
        exact_logbc_sums(L, bad, [0], [1])
    bad[2, 3, 1] = np.inf
    with pytest.raises(ValueError, match=r"La contains \+inf, first at model 2, sample 3, class 1"):
        exact_logbc_sums(bad, L, [0], [1])
    with pytest.raises(IndexError, match=r"ib\[1\] = 4 is outside the 4 models of Lb"):
        exact_logbc_sums(L, L, [0, 1], [1, 4])
    with pytest.raises(ValueError, match="same length"):
        exact_logbc_sums(L, L, [0, 1], [1])
    with pytest.raises(ValueError, match="1-d integer array"):
        exact_logbc_sums(L, L, [0.5], [1])
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        exact_logbc_sums(L, L, [0], [1], workers=0)
    with pytest.raises(ValueError, match="sblock must be a positive integer"):
        exact_logbc_sums(L, L, [0], [1], sblock=0)
    with pytest.raises(ValueError, match="has no classes"):
        exact_logbc_sums(L[..., :0], L[..., :0], [0], [1])
    logprobs, _ = callbacks(L)
    with pytest.raises(ValueError, match=r"pair \(0, 2\) appears more than once"):
        redo_exact(np.array([0, 1, 0]), np.array([2, 3, 2]), 0, 5, logprobs, True, np.zeros((4, 4)), {})
    with pytest.raises(IndexError, match=r"fb\[0\] = -1 is negative"):
        redo_exact(np.array([0]), np.array([-1]), 0, 5, logprobs, True, np.zeros((4, 4)), {})
    shape_msg = r"logprobs\(0, \.\.\.\) must return shape \(models, samples, classes\) = \(2, 5, C\)"
    with pytest.raises(ValueError, match=shape_msg):
        redo_exact(np.array([0]), np.array([1]), 0, 5, lambda w, m, a, b: L[:1], True, np.zeros((4, 4)), {})
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        redo_exact(np.array([0]), np.array([1]), 0, 5, logprobs, True, np.zeros((4, 4)), {}, batch=0)
    out = np.zeros((4, 4))
    redo_exact(np.array([], dtype=int), np.array([], dtype=int), 0, 5, logprobs, True, out, {})  # nothing to do
    assert not out.any()


def test_kernel_source_is_a_register_tile():
    src = _exact.kernel_source(2, 3)
    assert src.count("vfma(") == 6 and src.count("vbcast(") == 4 and src.count("vload(Yp") == 6
    assert "def pairs_2x3(" in src


def test_the_fused_driver_sends_flagged_pairs_through_the_compiled_path(monkeypatch):
    """Unpatched ``bhattacharyya`` uses :func:`redo_exact` for flagged pairs (not the numpy
    reference): a spy on the compiled function sees every flagged pair, and the numpy
    reference is never called."""
    A = log_softmax(300 * np.random.default_rng(11).standard_normal((12, 64, 10)))
    seen = []
    real = _exact.redo_exact

    def spy(fa, *a, **k):
        seen.append(len(fa))
        return real(fa, *a, **k)

    def forbidden(*a, **k):
        raise AssertionError("the numpy reference was called by the driver")

    monkeypatch.setattr(_exact, "redo_exact", spy)
    monkeypatch.setattr(_exact, "redo_exact_reference", forbidden)
    D = bhattacharyya(A, kernel="fused", workers=1)
    assert sum(seen) >= 66  # all 12 * 11 / 2 pairs are flagged at ~130 nats a sample
    np.testing.assert_allclose(D, bhattacharyya_reference(A), rtol=1e-14, atol=1e-13)
