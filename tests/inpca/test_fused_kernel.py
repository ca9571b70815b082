"""The register-tiled fused kernel (linsim.inpca._fused, linsim.inpca._simd).

Oracles, all independent of the kernel: :func:`linsim.inpca.bhattacharyya_reference` (per-pair
scipy ``logsumexp``), a plain float64 numpy product ``-mean_i log sum_c sqrt(p q)`` written
here, ``numpy`` products for the micro-kernel on hand-packed panels, closed forms, and
invariants (bitwise equality across register-tile shapes, task blocks, sample chunks and
worker counts; symmetry; zero diagonal).
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linsim.inpca import DisjointSupportWarning, bhattacharyya, bhattacharyya_reference
from linsim.inpca import _fused
from linsim.inpca.distances import FUSED_MAX_C, _choose_kernel

SHAPES = [(6, 2), (3, 1), (1, 1), (2, 3)]


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def plain64(A, B):
    """-mean_i log sum_c sqrt(p q), straight from the definition (float64)."""
    P, Q = np.exp(A), np.exp(B)
    bc = np.sqrt(P[:, None] * Q[None]).sum(-1)  # (Ma, Mb, n)
    with np.errstate(divide="ignore"):
        return -np.log(bc).mean(-1)


@pytest.fixture
def tile_shape(monkeypatch):
    """Force the register tile shape (the default depends on the host)."""

    def use(shape):
        monkeypatch.setattr(_fused, "default_tile_shape", lambda: shape)

    return use


# ----------------------------------------------------------------------------- micro-kernel alone

@pytest.mark.parametrize("R,V", [(6, 2), (3, 1), (2, 1)])
def test_microkernel_on_hand_packed_panels_matches_numpy_products(R, V):
    """Q_ab = prod_i sum_c x_aic y_bic for a block of 2 x 2 panels, no flush (moderate values)."""
    W = 8 * V
    rng = np.random.default_rng(0)
    n, C = 37, 5
    X = rng.uniform(0.2, 1.0, (2 * R, n, C))
    Y = rng.uniform(0.2, 1.0, (2 * W, n, C))
    Xp = np.ascontiguousarray(X.reshape(2, R, n, C).transpose(0, 2, 3, 1)).ravel()
    Yp = np.ascontiguousarray(Y.reshape(2, W, n, C).transpose(0, 2, 3, 1)).ravel()
    Qs, acc, flag = np.ones(4 * R * W), np.zeros(4 * R * W), np.zeros(4 * R * W, np.uint8)
    _fused.tile_kernel(R, V)(Xp, Yp, n, C, 0, 2, 0, 2, False, 8, 4, Qs, acc, flag, _fused.FLUSH, _fused.TINY)
    got = Qs.reshape(2, 2, R, W).transpose(0, 2, 1, 3).reshape(2 * R, 2 * W)
    want = np.einsum("aic,bic->abi", X, Y).prod(-1)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    assert not flag.any() and not acc.any()


def test_microkernel_compiles_to_vector_fmas():
    """The tile's multiply-adds are packed vector FMAs (ymm/zmm), not scalar ones: the property
    numba's auto-vectorizer failed to deliver for scalar accumulators."""
    import re

    import llvmlite.binding as ll

    if not ll.get_host_cpu_features().get("fma", False):  # llvm.fma is then a (correct) libm call
        pytest.skip("the host CPU has no FMA instructions")

    k = _fused.tile_kernel(1, 1, cache=False)
    x = np.ones(1 * 1 * 3 * 1)
    y = np.ones(1 * 1 * 3 * 8)
    Qs, acc, flag = np.ones(8), np.zeros(8), np.zeros(8, np.uint8)
    k(x, y, 1, 3, 0, 1, 0, 1, False, 16, 16, Qs, acc, flag, _fused.FLUSH, _fused.TINY)
    np.testing.assert_array_equal(Qs, 3.0)
    asm = k.inspect_asm(k.signatures[0])
    assert re.search(r"vfmadd\d+pd\s+[^\n]*%[yz]mm", asm)
    assert not re.search(r"vfmadd\d+sd", asm)


def test_microkernel_flushes_only_the_entries_below_the_threshold():
    """Each entry's log-domain flush depends on its own product only."""
    R, V, W = 1, 1, 8
    n, C = 64, 2
    y = np.zeros((W, n, C))
    y[:, :, 0] = 1.0
    y[0, :, 0] = 2.0 ** -40  # column 0: product 2**-40 per sample, flushed every ~12 samples
    x = np.zeros((R, n, C))
    x[:, :, 0] = 1.0
    Xp = np.ascontiguousarray(x.reshape(1, R, n, C).transpose(0, 2, 3, 1)).ravel()
    Yp = np.ascontiguousarray(y.reshape(1, W, n, C).transpose(0, 2, 3, 1)).ravel()
    Qs, acc, flag = np.ones(W), np.zeros(W), np.zeros(W, np.uint8)
    _fused.tile_kernel(R, V)(Xp, Yp, n, C, 0, 1, 0, 1, False, 16, 16, Qs, acc, flag, _fused.FLUSH, _fused.TINY)
    total = acc * np.log(2.0) + np.log(Qs)  # acc counts the binary exponents split off
    assert total[0] == pytest.approx(-40 * n * np.log(2.0), rel=1e-15)
    # checks after 16, 32, 48, 64 samples: 2**-640 -> 2**360, 2**-280 -> 2**720, 2**80 (above
    # FLUSH = 2**-24: kept), 2**-560 -> 2**440; Q 2**acc = 2**-2560 exactly
    assert _fused.FLUSH == 2.0 ** -24 and _fused.RESCALE == 2.0 ** 1000
    assert acc[0] == -3000 and Qs[0] == 2.0 ** 440
    assert not acc[1:].any() and np.all(Qs[1:] == 1.0)
    assert not flag.any()


def test_vector_and_scalar_rescaling_follow_one_rule_per_entry():
    """A tile with an entry below TINY takes the scalar rule (which flags it); the other entries
    of that tile must come out exactly as in a tile without it (the vector rule), or the
    results would depend on which entries share a tile."""
    R, V, W = 1, 1, 8
    n, C = 96, 2
    rng = np.random.default_rng(12)
    y = np.empty((W, n, C))
    y[:, :, 0] = 2.0 ** -rng.uniform(0, 20, (W, n))  # ~10 bits a sample: FLUSH crossed often
    y[:, :16, 0] = 2.0 ** -rng.uniform(7, 20, (W, 16))  # every product below FLUSH at the first check
    y[:, :, 1] = np.sqrt(1 - y[:, :, 0] ** 2)
    x = np.zeros((R, n, C))
    x[:, :, 0] = 1.0
    pack = lambda a, P: np.ascontiguousarray(a.reshape(1, P, n, C).transpose(0, 2, 3, 1)).ravel()
    k = _fused.tile_kernel(R, V)

    def run(y):
        Qs, acc, flag = np.ones(W), np.zeros(W), np.zeros(W, np.uint8)
        k(pack(x, R), pack(y, W), n, C, 0, 1, 0, 1, False, 32, 16, Qs, acc, flag, _fused.FLUSH, _fused.TINY)
        return Qs, acc, flag

    Q0, a0, f0 = run(y)
    assert not f0.any() and (a0 < 0).all()  # every entry rescaled by the vector rule at least once
    y2 = y.copy()
    for i in (4, 40, 72):  # column 0: below TINY at the checks after samples 16, 48 and 80
        y2[0, i:i + 2, 0] = 2.0 ** -1000
        y2[0, i:i + 2, 1] = 1.0
    Q1, a1, f1 = run(y2)
    assert f1.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(Q1[1:], Q0[1:])
    np.testing.assert_array_equal(a1[1:], a0[1:])


def test_pack_panels_and_prepare_panels_agree():
    rng = np.random.default_rng(1)
    A = log_softmax(2 * rng.standard_normal((29, 7, 4)))
    XR, XW = _fused.prepare_panels(A, 2, 7, (6, 16), 1e-8)
    X = np.exp(0.5 * A[:, 2:7]).transpose(1, 0, 2)  # (s, M, C)
    np.testing.assert_allclose(XR, _fused.pack_panels(X, 6), rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(XW, _fused.pack_panels(X, 16), rtol=1e-15, atol=1e-16)
    pad = XW.reshape(2, 5, 4, 16)[1, :, :, 13:]
    np.testing.assert_array_equal(pad, 0.5)  # uniform over C = 4: sqrt(1/4)
    B = A.copy()
    B[20, 4, 0] += 1e-4  # |log Z| ~ 1e-4 p: outside 1e-8, inside 1e-3
    assert _fused.prepare_panels(B, 2, 7, (6, 16), 1e-8) is None
    assert _fused.prepare_panels(B, 2, 7, (6,), 1e-3) is not None
    B[3, 3, 1] = np.nan
    assert _fused.prepare_panels(B, 0, 7, (6,), np.inf) is None
    # working memory from a Scratch pool: any block width it allows, or fresh memory when it is
    # too small for one panel's worth; the same panels either way
    for size in (1, 5 * 4 * 48, 10 ** 6):
        sc = _fused.Scratch(size, 2)
        got = _fused.prepare_panels(A, 2, 7, (6, 16), 1e-8, scratch=sc, width=6)
        np.testing.assert_array_equal(got[0], XR)
        np.testing.assert_array_equal(got[1], XW)


# ----------------------------------------------------------------------------- exactness

def test_matches_plain_float64_and_reference_self_and_rectangular(tile_shape):
    rng = np.random.default_rng(2)
    A = log_softmax(3 * rng.standard_normal((53, 41, 10)))  # 53: not a multiple of 6 or 16
    B = log_softmax(3 * rng.standard_normal((19, 41, 10)))
    for shape in SHAPES:
        tile_shape(shape)
        D = bhattacharyya(A, kernel="fused")
        np.testing.assert_allclose(D, plain64(A, A) * (1 - np.eye(53)), rtol=0, atol=1e-13)
        np.testing.assert_array_equal(D, D.T)
        X = bhattacharyya(A, B, kernel="fused")
        np.testing.assert_allclose(X, plain64(A, B), rtol=0, atol=1e-13)
        np.testing.assert_allclose(X, bhattacharyya_reference(A, B), rtol=0, atol=1e-13)
        Y = bhattacharyya(B, A, kernel="fused")
        np.testing.assert_allclose(Y, X.T, rtol=0, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(
    M=st.integers(1, 40),
    Mb=st.integers(1, 23),
    n=st.integers(1, 70),
    C=st.integers(2, 32),
    scale=st.sampled_from([0.1, 3.0, 30.0, 300.0]),
    shape=st.sampled_from(SHAPES),
    tile=st.sampled_from([None, 1, 7, 20]),
    group=st.sampled_from([None, 1, 5, 16]),
    f32=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_matches_reference(M, Mb, n, C, scale, shape, tile, group, f32, seed):
    """Any shape (M not a multiple of the tile), C = 2..32, logits up to 300 (coefficients far
    below 2**-24: many rescalings, some entries redone exactly), float32 inputs used as the
    float64 numbers they hold."""
    rng = np.random.default_rng(seed)
    A = log_softmax(scale * rng.standard_normal((M, n, C)))
    B = log_softmax(scale * rng.standard_normal((Mb, n, C)))
    if f32:
        A, B = A.astype(np.float32), B.astype(np.float32)
    saved = _fused.default_tile_shape
    _fused.default_tile_shape = lambda: shape
    try:
        D = bhattacharyya(A, kernel="fused", tile=tile, group=group, on_disjoint="ignore")
        X = bhattacharyya(A, B, kernel="fused", tile=tile, group=group, on_disjoint="ignore")
    finally:
        _fused.default_tile_shape = saved
    assert D.dtype == np.float64 and X.dtype == np.float64
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    np.testing.assert_allclose(D, bhattacharyya_reference(A64), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(X, bhattacharyya_reference(A64, B64), rtol=1e-13, atol=1e-13)


def test_float32_input_accumulates_in_float64():
    rng = np.random.default_rng(3)
    A32 = log_softmax(3 * rng.standard_normal((30, 500, 17))).astype(np.float32)
    D = bhattacharyya(A32, kernel="fused")
    ref = bhattacharyya_reference(A32.astype(np.float64))
    np.testing.assert_allclose(D, ref, rtol=0, atol=1e-13)
    # the same sum accumulated in float32 is off by far more than 1e-13
    P = torch.from_numpy(A32).exp()
    bc32 = torch.sqrt(P[:, None] * P[None]).sum(-1)
    d32 = -torch.log(bc32).mean(-1).double().numpy()
    assert np.abs(d32 - ref)[~np.eye(30, dtype=bool)].max() > 1e-9


# ----------------------------------------------------------------------------- bitwise invariance

def test_bitwise_across_tile_shapes_task_blocks_chunks_and_workers(tile_shape, monkeypatch):
    rng = np.random.default_rng(4)
    A = log_softmax(20 * rng.standard_normal((130, 150, 7)))  # confident: flushes happen
    B = log_softmax(20 * rng.standard_normal((45, 150, 7)))
    tile_shape((6, 2))
    ref_self = bhattacharyya(A, kernel="fused", workers=1)
    ref_cross = bhattacharyya(A, B, kernel="fused", workers=1)
    variants = [dict(shape=s) for s in SHAPES] + [dict(tile=t) for t in (1, 13, 64, 500)]
    variants += [dict(workers=w) for w in (2, 3)] + [dict(min_chunk=1, panel_bytes=40_000)]  # chunks of one sample block
    variants += [dict(workers=2, min_chunk=1, panel_bytes=40_000)]  # next chunk prepared during the current one
    for v in variants:
        tile_shape(v.get("shape", (6, 2)))
        monkeypatch.setattr(_fused, "PANEL_BYTES", v.get("panel_bytes", 16 << 20))  # several sample chunks
        monkeypatch.setattr(_fused, "MIN_CHUNK", v.get("min_chunk", 64))
        kw = dict(kernel="fused", tile=v.get("tile"), workers=v.get("workers", 1), group=v.get("group"))
        np.testing.assert_array_equal(bhattacharyya(A, **kw), ref_self, err_msg=str(v))
        np.testing.assert_array_equal(bhattacharyya(A, B, **kw), ref_cross, err_msg=str(v))
    np.testing.assert_allclose(ref_self, bhattacharyya_reference(A), rtol=1e-13, atol=1e-13)


def test_per_chunk_states_when_they_do_not_fit(monkeypatch):
    """Without persistent states every sample chunk ends with a logarithm: still exact."""
    rng = np.random.default_rng(5)
    A = log_softmax(30 * rng.standard_normal((40, 200, 5)))
    monkeypatch.setattr(_fused, "STATE_BYTES", 0)
    monkeypatch.setattr(_fused, "PANEL_BYTES", 20_000)  # 4 x PANEL_BYTES: chunks of 32 samples
    monkeypatch.setattr(_fused, "MIN_CHUNK", 1)
    monkeypatch.setattr(_fused, "SBLOCK", 32)  # chunks are whole sample blocks
    calls = []
    real = _fused.prepare_panels
    monkeypatch.setattr(_fused, "prepare_panels", lambda lp, s0, s1, *a, **k: calls.append(s0) or real(lp, s0, s1, *a, **k))
    D = bhattacharyya(A, kernel="fused")
    assert calls == list(range(0, 200, 32))  # 7 chunks on the 32-sample grid
    np.testing.assert_allclose(D, bhattacharyya_reference(A), rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------- underflow, disjoint support

@pytest.mark.parametrize("panel_bytes", [16 << 20, 30_000])
def test_underflow_and_disjoint_support_in_a_later_chunk(monkeypatch, panel_bytes):
    """An entry flagged in a later sample chunk is recomputed exactly over all samples."""
    monkeypatch.setattr(_fused, "PANEL_BYTES", panel_bytes)
    monkeypatch.setattr(_fused, "MIN_CHUNK", 1)
    C, n = 3, 600
    rng = np.random.default_rng(6)
    A = log_softmax(2.0 * rng.standard_normal((9, n, C)))
    A[1, 500] = [0.0, -2500.0, -2500.0]
    A[2, 500] = [-2500.0, 0.0, -2500.0]  # BC = 2 exp(-1250) on sample 500: far below 2**-900
    A[3, 450] = A[3, 550] = [0.0, -np.inf, -np.inf]
    A[7, 450] = A[7, 550] = [-np.inf, 0.0, -np.inf]  # disjoint on samples 450 and 550
    B = A[[7, 2, 0]]
    with pytest.warns(DisjointSupportWarning, match=r"1 model pair.*models \(3, 7\) on sample 450"):
        D = bhattacharyya(A, kernel="fused")
    ref = bhattacharyya_reference(A)
    fin = np.isfinite(ref)
    np.testing.assert_allclose(D[fin], ref[fin], rtol=1e-13, atol=1e-13)
    assert D[1, 2] == pytest.approx(ref[1, 2], rel=1e-13) and D[1, 2] > 1250 / n
    assert D[3, 7] == np.inf and D[7, 3] == np.inf and np.sum(~np.isfinite(D)) == 2
    with pytest.warns(DisjointSupportWarning, match=r"models \(3, 0\) on sample 450"):
        X = bhattacharyya(A, B, kernel="fused")
    refx = bhattacharyya_reference(A, B)
    fin = np.isfinite(refx)
    np.testing.assert_allclose(X[fin], refx[fin], rtol=1e-13, atol=1e-13)
    assert np.array_equal(~fin, ~np.isfinite(X))


def test_one_hot_closed_forms_with_large_C():
    """d(uniform, one-hot) = log(C)/2 and d(p, one-hot y) = cross-entropy / 2, C = 32."""
    rng = np.random.default_rng(7)
    n, C = 60, 32
    labels = rng.integers(0, C, n)
    with np.errstate(divide="ignore"):
        truth = np.log(np.eye(C)[labels])
    A = log_softmax(rng.standard_normal((5, n, C)))
    P = np.concatenate([A, truth[None], np.full((1, n, C), -np.log(C))])
    D = bhattacharyya(P, kernel="fused")
    assert D[5, 6] == pytest.approx(0.5 * np.log(C), abs=1e-15)
    ce = -A[:, np.arange(n), labels].mean(axis=1)
    np.testing.assert_allclose(D[:5, 5], ce / 2, rtol=0, atol=1e-14)


def test_unnormalized_rows_are_located():
    rng = np.random.default_rng(8)
    A = log_softmax(rng.standard_normal((20, 9, 4)))
    A[13, 6] += 0.01
    with pytest.raises(ValueError, match=r"logp: probabilities do not sum to 1 at model 13, sample 6"):
        bhattacharyya(A, kernel="fused")
    B = A.copy()
    B[13, 6] = A[12, 6]
    B[4, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"logq contains NaN, first at model 4, sample 2, class 1"):
        bhattacharyya(A[:3], B, kernel="fused")


def test_auto_chooses_fused_on_cpu_up_to_32_classes():
    cpu = torch.device("cpu")
    assert FUSED_MAX_C == 32
    assert _choose_kernel("auto", cpu, 2) == "fused" and _choose_kernel("auto", cpu, 32) == "fused"
    assert _choose_kernel("auto", cpu, 33) == "gemm"
    assert _choose_kernel("auto", torch.device("cuda"), 10) == "gemm"
    with pytest.raises(ValueError, match="the fused kernel runs on the CPU only"):
        _choose_kernel("fused", torch.device("cuda"), 10)


def test_flush_timing_does_not_change_a_single_bit():
    """Flushes split off exact powers of two, so how often the products are checked and
    renormalized (``group``) leaves every unflagged entry's bits unchanged (the old log-per-flush
    rule changed them in the last place)."""
    rng = np.random.default_rng(11)
    A = log_softmax(4 * rng.standard_normal((40, 400, 6)))  # d ~ 1-2 nats a sample: many flushes
    ref = bhattacharyya(A, kernel="fused", group=16, workers=1)
    for g in (1, 4, 8):
        np.testing.assert_array_equal(bhattacharyya(A, kernel="fused", group=g, workers=1), ref, err_msg=f"group={g}")
    np.testing.assert_allclose(ref, bhattacharyya_reference(A), rtol=1e-13, atol=1e-13)


def test_confident_disagreeing_outputs_stay_on_the_fast_path(monkeypatch):
    """Coefficients around 2**-19 a sample (mean distance ~13 nats) are far from underflow: the
    996-bit margin between checks (FLUSH 2**-24, TINY 2**-1020) keeps such pairs off the slow
    exact path (a 400-bit margin, TINY 2**-900 with frexp below 2**-500, sent 4 of these 276
    pairs there)."""
    A = log_softmax(30 * np.random.default_rng(13).standard_normal((24, 256, 10)))
    redone = []
    real = _fused._redo_exact
    monkeypatch.setattr(_fused, "_redo_exact", lambda fa, *a, **k: redone.append(len(fa)) or real(fa, *a, **k))
    D = bhattacharyya(A, kernel="fused", workers=1)
    assert np.median(D[np.triu_indices(24, 1)]) > 12  # the regime meant
    assert sum(redone) == 0
    np.testing.assert_allclose(D, bhattacharyya_reference(A), rtol=1e-13, atol=1e-13)



def test_rescaling_threshold_does_not_change_a_single_bit(monkeypatch):
    """Rescaling multiplies by an exact power of two and the end splits the product canonically
    (frexp), so when (and how often) entries are rescaled leaves every unflagged entry's bits
    unchanged: FLUSH = 2**-24, 2**-100 and 2**-500 give the same matrix (fails if the final
    logarithm were taken of the running value without the canonical split)."""
    rng = np.random.default_rng(14)
    A = log_softmax(4 * rng.standard_normal((37, 300, 5)))  # ~1-2 nats a sample: rescaled often
    ref = bhattacharyya(A, kernel="fused", workers=1)
    for e in (-100, -500):
        monkeypatch.setattr(_fused, "FLUSH", 2.0 ** e)
        np.testing.assert_array_equal(bhattacharyya(A, kernel="fused", workers=1), ref, err_msg=f"FLUSH=2**{e}")
    np.testing.assert_allclose(ref, bhattacharyya_reference(A), rtol=1e-13, atol=1e-13)


def test_bad_row_in_a_later_chunk_prepared_ahead_is_located_and_leaves_no_threads(monkeypatch):
    """With threads, a chunk's panels are prepared while the previous chunk runs; an
    unnormalized row there still raises the located error, and the call leaves no threads."""
    import threading

    monkeypatch.setattr(_fused, "PANEL_BYTES", 30_000)
    monkeypatch.setattr(_fused, "MIN_CHUNK", 1)
    monkeypatch.setattr(_fused, "SBLOCK", 16)
    rng = np.random.default_rng(15)
    A = log_softmax(rng.standard_normal((40, 160, 6)))
    ref = bhattacharyya(A, kernel="fused", workers=1)
    np.testing.assert_array_equal(bhattacharyya(A, kernel="fused", workers=2), ref)
    A[17, 141] += 0.01  # sample 141: a late chunk, prepared ahead by a worker thread
    before = threading.active_count()
    with pytest.raises(ValueError, match=r"logp: probabilities do not sum to 1 at model 17, sample 141"):
        bhattacharyya(A, kernel="fused", workers=2)
    assert threading.active_count() == before
