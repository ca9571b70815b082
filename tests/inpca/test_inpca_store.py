"""Out-of-core distances and InPCA from a stored matrix.

Oracles: the in-memory kernels on the same inputs (bitwise where the arithmetic is the same,
1e-13 otherwise), a one-shot store against an interrupted-and-resumed one (bitwise), counted
block reads (memory bound), and the in-memory InPCA fit (1e-12 relative to |lambda_1|).
"""

import math
import os

import numpy as np
import pytest
import zarr

from linsim.inpca import InPCA, bhattacharyya, bhattacharyya_reference
from linsim.inpca._matrix_stats import StoredMatrix
from linsim.inpca.store import LogProbRows


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


@pytest.fixture
def logp():
    rng = np.random.default_rng(0)
    return log_softmax(3 * rng.standard_normal((70, 24, 5)))


class Stop(Exception):
    pass


def test_store_equals_in_memory_and_is_self_describing(logp, tmp_path):
    z = bhattacharyya(logp, out=tmp_path / "d.zarr", tile=16)
    assert isinstance(z, zarr.Array) and z.dtype == np.float64 and z.chunks == (16, 16)
    np.testing.assert_allclose(z[...], bhattacharyya_reference(logp), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(z[...], z[...].T)
    g = zarr.open_group(str(tmp_path / "d.zarr"), mode="r")
    assert np.all(g["tile_done"][...][np.triu_indices(5)] == 1)
    assert g["distance"].attrs["units"] == "nat per sample"
    assert g.attrs["symmetric"] is True and g.attrs["tile"] == 16
    assert "history" in g.attrs or "linsim_kind" in g.attrs
    # cross case
    zc = bhattacharyya(logp[:30], logp[30:], out=tmp_path / "c.zarr", tile=8)
    np.testing.assert_allclose(zc[...], bhattacharyya_reference(logp[:30], logp[30:]), rtol=0, atol=1e-13)


def test_interrupted_store_resumes_without_recomputing_and_is_bitwise_equal(logp, tmp_path):
    one_shot = bhattacharyya(logp, out=tmp_path / "a.zarr", tile=16)[...]
    calls = []

    def stop_after_4(done, total):
        calls.append((done, total))
        if done == 4:
            raise Stop

    with pytest.raises(Stop):
        bhattacharyya(logp, out=tmp_path / "b.zarr", tile=16, on_tile=stop_after_4)
    mask = zarr.open_group(str(tmp_path / "b.zarr"), mode="r")["tile_done"][...]
    assert mask.sum() == 4  # written after each tile, the 4th included
    resumed_calls = []
    z = bhattacharyya(logp, out=tmp_path / "b.zarr", tile=16, on_tile=lambda d, t: resumed_calls.append(d))
    assert resumed_calls == list(range(5, 16))  # 15 tiles in the upper triangle; only 11 computed
    np.testing.assert_array_equal(z[...], one_shot)
    # nothing left to do: a third call computes nothing
    again = []
    bhattacharyya(logp, out=tmp_path / "b.zarr", tile=16, on_tile=lambda d, t: again.append(d))
    assert again == []


def test_store_refuses_other_inputs_or_settings(logp, tmp_path):
    bhattacharyya(logp, out=tmp_path / "a.zarr", tile=16)
    other = logp.copy()
    other[0] = logp[1]
    with pytest.raises(ValueError, match="fingerprint_p.*other inputs"):
        bhattacharyya(other, out=tmp_path / "a.zarr", tile=16)
    with pytest.raises(ValueError, match="kernel"):
        bhattacharyya(logp, out=tmp_path / "a.zarr", tile=16, kernel="gemm")


def test_open_zarr_array_out_in_a_group_and_root_array_refused(logp, tmp_path):
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    arr = g.create_array("D", shape=(70, 70), chunks=(32, 32), dtype="f8", fill_value=np.nan)
    res = bhattacharyya(logp, out=arr)
    assert res is arr
    np.testing.assert_allclose(arr[...], bhattacharyya(logp), rtol=0, atol=1e-13)
    assert np.all(g["D_tile_done"][...][np.triu_indices(3)] == 1)
    root = zarr.create_array(str(tmp_path / "root.zarr"), shape=(70, 70), chunks=(32, 32), dtype="f8")
    with pytest.raises(ValueError, match="root array"):
        bhattacharyya(logp, out=root)
    bad = g.create_array("E", shape=(70, 70), chunks=(32, 16), dtype="f8")
    with pytest.raises(ValueError, match="square chunks"):
        bhattacharyya(logp, out=bad)
    wrong = g.create_array("F", shape=(70, 71), chunks=(32, 32), dtype="f8")
    with pytest.raises(ValueError, match=r"shape \(70, 70\)"):
        bhattacharyya(logp, out=wrong)


def test_numpy_out_is_filled_in_place(logp):
    out = np.full((70, 70), np.nan)
    res = bhattacharyya(logp, out=out)
    assert res is out
    np.testing.assert_array_equal(out, bhattacharyya(logp))


def test_stored_inputs_are_read_in_row_blocks(logp, tmp_path):
    """memmap and zarr inputs: equal results, and no read ever asks for more than one tile of rows."""
    np.save(tmp_path / "lp.npy", logp.astype(np.float32))
    mm = np.load(tmp_path / "lp.npy", mmap_mode="r")
    ref32 = bhattacharyya(np.asarray(mm))
    np.testing.assert_array_equal(bhattacharyya(mm), ref32)  # same kernel, same tiles of 1024 > M
    zin = zarr.create_array(str(tmp_path / "lp.zarr"), shape=logp.shape, chunks=(16, 24, 5), dtype="f8")
    zin[...] = logp
    rows = LogProbRows(zin, "logp")
    z = bhattacharyya(rows, out=tmp_path / "d.zarr", tile=16)
    np.testing.assert_allclose(z[...], bhattacharyya(logp), rtol=0, atol=1e-13)
    assert rows.max_rows <= 16  # memory bounded by the tile, not by M
    assert rows.reads >= 15  # one row block per tile side (plus the fingerprint rows)
    np.testing.assert_allclose(bhattacharyya(zin, logp[:3]), bhattacharyya(logp, logp[:3]), rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------- InPCA from a store

def test_inpca_fit_from_zarr_and_memmap_equals_in_memory(logp, tmp_path):
    D = bhattacharyya(logp)
    ref = InPCA(n_components=6, solver="iterative").fit(D)
    z = zarr.create_array(str(tmp_path / "D.zarr"), shape=D.shape, chunks=(16, 16), dtype="f8")
    z[...] = D
    np.save(tmp_path / "D.npy", D)
    mm = np.load(tmp_path / "D.npy", mmap_mode="r")
    S = StoredMatrix(z, tile=16)  # 5 x 5 tiles of 16
    # bounds: M eps (1.6e-14) for sums and eigenvalues; measured at most 8.4e-16 |lambda_1|
    # (eigenvalues), 4.4e-16 (||W||_F), 3.3e-16 (means, diag W), 7.5e-15 (embedding), 2.5e-15
    # |lambda_1| (ARPACK) -- a rounding-level bug (a dropped shift, a lost tile) exceeds them
    bound = 70 * np.finfo(float).eps
    for src in (z, mm, str(tmp_path / "D.zarr"), S):
        fit = InPCA(n_components=6).fit(src)
        assert fit.solver_ == "iterative"
        lam1 = abs(ref.eigenvalues_[0])
        np.testing.assert_allclose(fit.eigenvalues_, ref.eigenvalues_, rtol=0, atol=bound * lam1)
        np.testing.assert_allclose(fit.embedding_, ref.embedding_, rtol=0, atol=1e-13)
        assert fit.frobenius_norm_ == pytest.approx(ref.frobenius_norm_, rel=bound)
        np.testing.assert_allclose(fit.column_means_, ref.column_means_, rtol=0, atol=2e-15)
        np.testing.assert_allclose(fit.diagonal_, ref.diagonal_, rtol=0, atol=2e-15)
        np.testing.assert_allclose(fit.explained_stress_, ref.explained_stress_, rtol=0, atol=bound)
    assert S.max_block_elems <= 16 * 16  # never more than one tile at once
    arp = InPCA(n_components=6, solver="arpack").fit(S)  # one pass per matrix-vector product
    np.testing.assert_allclose(arp.eigenvalues_, ref.eigenvalues_, rtol=0, atol=bound * lam1)
    assert arp.frobenius_norm_ == pytest.approx(ref.frobenius_norm_, rel=bound)
    with pytest.raises(ValueError, match="dense solver needs D in memory"):
        InPCA(n_components=6, solver="dense").fit(z)


@pytest.mark.parametrize("edit, match", [
    (lambda D: D.__setitem__((3, 40), D[3, 40] + 1e-3), r"not symmetric at \(3, 40\)"),
    (lambda D: (D.__setitem__((5, 50), -1.0), D.__setitem__((50, 5), -1.0)), r"negative entry -1.0 at \((5, 50|50, 5)\)"),
    (lambda D: D.__setitem__((7, 7), 0.5), r"diagonal entry 0.5 at \(7, 7\)"),
    (lambda D: D.__setitem__((60, 2), np.nan), r"non-finite entry nan at \(60, 2\)"),
])
def test_bad_stored_matrix_is_located(logp, tmp_path, edit, match):
    D = bhattacharyya(logp)
    edit(D)
    z = zarr.create_array(str(tmp_path / "D.zarr"), shape=D.shape, chunks=(16, 16), dtype="f8")
    z[...] = D
    with pytest.raises(ValueError, match=match):
        InPCA(n_components=3).fit(z)


def test_coinciding_models_stored_and_in_memory(tmp_path):
    lp = log_softmax(np.random.default_rng(1).standard_normal((1, 9, 4)))
    D = bhattacharyya(np.repeat(lp, 5, axis=0))
    assert np.abs(D).max() < 1e-12
    with pytest.raises(ValueError, match="all 5 models coincide"):
        InPCA(n_components=2).fit(D)
    noisy = np.full((4, 4), 2.2e-16)
    noisy[0, 1] = noisy[1, 0] = -2.2e-16
    np.fill_diagonal(noisy, 0.0)
    with pytest.raises(ValueError, match="all 4 models coincide: D is zero up to float64 rounding"):
        InPCA(n_components=2).fit(noisy)
    z = zarr.create_array(str(tmp_path / "D.zarr"), shape=(4, 4), chunks=(2, 2), dtype="f8")
    z[...] = noisy
    with pytest.raises(ValueError, match="all 4 models coincide"):
        InPCA(n_components=2).fit(z)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=8)
@given(M=st.integers(1, 23), Mb=st.integers(1, 9), tile=st.integers(1, 9), cross=st.booleans(),
       seed=st.integers(0, 2**16))
def test_property_tiled_output_equals_in_memory(M, Mb, tile, cross, seed):
    """Any tile edge, self or cross: the tile-by-tile result equals the in-memory kernel's to 1e-13
    (tiles change only where running products are logged), symmetric with a zero diagonal."""
    rng = np.random.default_rng(seed)
    A = log_softmax(3 * rng.standard_normal((M, 6, 3)))
    B = log_softmax(3 * rng.standard_normal((Mb, 6, 3))) if cross else None
    shape = (M, Mb if cross else M)
    out = zarr.create_array(zarr.storage.MemoryStore(), name="g/D", shape=shape, chunks=(tile, tile), dtype="f8")
    bhattacharyya(A, B, out=out, on_disjoint="ignore")
    got = out[...]
    np.testing.assert_allclose(got, bhattacharyya(A, B, on_disjoint="ignore"), rtol=0, atol=1e-13)
    if not cross:
        np.testing.assert_array_equal(got, got.T)
        np.testing.assert_array_equal(np.diag(got), 0.0)


def test_stored_block_reads_chunk_columns_exactly(tmp_path):
    """A block of a chunked store is assembled one chunk column at a time: the same numbers as
    the array itself for any rows and any column range (aligned or not to the chunks)."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((37, 53))
    z = zarr.create_array(str(tmp_path / "A.zarr"), shape=A.shape, chunks=(8, 10), dtype="f8")
    z[...] = A
    S = StoredMatrix(z)
    for r0, r1, c0, c1 in [(0, 37, 0, 53), (3, 9, 0, 53), (5, 30, 7, 41), (0, 1, 10, 20), (36, 37, 9, 11),
                           (2, 20, 19, 53), (0, 37, 50, 53)]:
        np.testing.assert_array_equal(S.block(r0, r1, c0, c1), A[r0:r1, c0:c1])
    assert S.block(0, 4).dtype == np.float64


# ----------------------------------------------------------------------------- stored passes: oracles

from linsim.inpca import double_center  # noqa: E402
from linsim.inpca._eigensolvers import _StoredMatmul  # noqa: E402
from linsim.inpca._matrix_stats import StoredStats, stored_stats  # noqa: E402


def _raw_zarr(path, D, chunks):
    z = zarr.create_array(str(path), shape=D.shape, chunks=chunks, dtype=D.dtype, compressors=None,
                          fill_value=np.nan, overwrite=True)
    z[...] = D
    return z


def _sym(rng, M, offset=0.0):
    """A bitwise-symmetric D with zero diagonal: mean-over-samples Bhattacharyya distances."""
    D = bhattacharyya(log_softmax(2 * rng.standard_normal((M, 7, 3))))
    D = np.triu(D, 1) + offset * np.triu(np.ones((M, M)), 1)
    return D + D.T


def test_folded_frobenius_identity_against_the_centred_matrix(tmp_path):
    """||W||_F^2, row means and diag W from tile scans equal the directly centred matrix; for a D
    whose mean dwarfs its spread (the identity about 0 cancels ~4M-fold there) the shift by the first
    tile's mean keeps the digits: 1e-14 relative, where the same identity about 0 misses that."""
    rng = np.random.default_rng(3)
    for M, offset in ((45, 0.0), (300, 1e4)):
        D = _sym(rng, M, offset)
        W = double_center(D)
        exact = math.fsum((W * W).ravel())
        S = StoredMatrix(_raw_zarr(tmp_path / f"D{M}.zarr", D, (8, 8)), tile=64)
        st = stored_stats(S, 1e-9)
        assert abs(st.frobenius_sq / exact - 1) < 1e-14
        np.testing.assert_allclose(st.row_means, D.mean(1), rtol=1e-14, atol=0)
        np.testing.assert_allclose(st.diagonal, np.diagonal(W), rtol=0, atol=1e-12 * abs(W).max())
    acc = StoredStats(S, shift=0.0)
    for (I, J), sc in S.map_tile_pairs(lambda I, J: acc.scan(
            S.block(*S.edges[I], *S.edges[J]), None if I == J else S.block(*S.edges[J], *S.edges[I]), I, J)):
        acc.add(sc)
    assert abs(acc.finish(1e-9).frobenius_sq / exact - 1) > 1e-14


@settings(max_examples=10, deadline=None)
@given(M=st.integers(2, 41), tile=st.integers(1, 17), k=st.integers(1, 4), bitwise=st.booleans(),
       memmap=st.booleans(), seed=st.integers(0, 2**16))
def test_property_stored_fit_equals_in_memory_and_eigh(tmp_path_factory, M, tile, k, bitwise, memmap, seed):
    """Any M (not a multiple of the tile), any tile: the stored fit's eigenvalues equal numpy's
    eigh of the centred matrix and the in-memory fit's (1e-10 |lambda_1|), its statistics equal the
    in-memory ones; a D symmetric only within rounding (one entry one ulp off) takes the full reads."""
    rng = np.random.default_rng(seed)
    D = _sym(rng, M)
    if not bitwise and M > 2:
        D[0, M - 1] = np.nextafter(D[0, M - 1], np.inf)
    k = min(k, M - 1) or 1
    path = tmp_path_factory.mktemp("st")
    if memmap:
        np.save(path / "D.npy", D)
        S = StoredMatrix(np.load(path / "D.npy", mmap_mode="r"), tile=tile)
    else:
        S = StoredMatrix(_raw_zarr(path / "D.zarr", D, (tile, tile)), tile=tile)
    ref = InPCA(n_components=k, solver="iterative").fit(D)
    fit = InPCA(n_components=k).fit(S)
    lam = np.linalg.eigvalsh(double_center(D))
    lam = lam[np.argsort(-np.abs(lam), kind="stable")][:k]
    scale = abs(lam[0])
    # over 150 random cases of this law the worst errors were 0.85 M eps |lambda_1| (vs eigh),
    # 1.2 M eps |lambda_1| (vs the in-memory fit), 0.33 M eps (||W||_F, means) and 0.30 M eps
    # |lambda_1| (diag W): sums are held to 4 M eps, eigenvalues (iterative: a run may stop one
    # iteration apart) to 1e-12 |lambda_1|
    bound = 4 * M * np.finfo(float).eps
    np.testing.assert_allclose(fit.eigenvalues_, lam, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(fit.eigenvalues_, ref.eigenvalues_, rtol=0, atol=1e-12 * scale)
    assert fit.frobenius_norm_ == pytest.approx(ref.frobenius_norm_, rel=bound)
    np.testing.assert_allclose(fit.diagonal_, ref.diagonal_, rtol=0, atol=bound * scale)
    np.testing.assert_allclose(fit.column_means_, ref.column_means_, rtol=bound, atol=0)


def test_first_pass_proves_symmetry_then_reads_the_upper_triangle_only(tmp_path):
    """A bitwise-symmetric store: pass 1 reads every tile (n^2), later passes the n(n+1)/2 of the
    upper triangle, with products equal to D @ V; one ulp of asymmetry keeps the full reads."""
    rng = np.random.default_rng(5)
    D = _sym(rng, 50)
    V = rng.standard_normal((50, 3))
    for ulp in (False, True):
        E = D.copy()
        if ulp:
            E[7, 33] = np.nextafter(E[7, 33], np.inf)
        S = StoredMatrix(_raw_zarr(tmp_path / f"D{ulp}.zarr", E, (16, 16)), tile=16)  # 4 x 4 tiles
        mm = _StoredMatmul(S, 1e-9)
        try:
            reads = []
            for _ in range(3):
                r0 = S.reads
                Y = mm(V)
                reads.append(S.reads - r0)
                np.testing.assert_allclose(Y, E @ V, rtol=0, atol=1e-13 * np.abs(E @ V).max())
        finally:
            mm.close()
        assert mm.symmetric is (not ulp)
        assert reads == ([1 + 16, 16, 16] if ulp else [1 + 16, 10, 10])  # (+1: the shift's tile)


def test_stored_products_do_not_depend_on_the_number_of_threads(tmp_path):
    rng = np.random.default_rng(6)
    D = _sym(rng, 70)
    S = StoredMatrix(_raw_zarr(tmp_path / "D.zarr", D, (8, 8)), tile=8)  # 9 x 9 tiles
    V = rng.standard_normal((70, 5))
    out = []
    for n in (1, 2, 5):
        mm = _StoredMatmul(S, 1e-9)
        mm.pool.shutdown()
        mm.n_threads = n
        mm.pool = __import__("concurrent.futures").futures.ThreadPoolExecutor(n)
        try:
            out.append((mm(V), mm(V), mm.stats))
        finally:
            mm.close()
    for Y1, Y2, stt in out[1:]:
        np.testing.assert_array_equal(Y1, out[0][0])
        np.testing.assert_array_equal(Y2, out[0][1])
        assert stt.frobenius_sq == out[0][2].frobenius_sq


def test_symmetry_hash_finds_one_ulp_and_the_asymmetry_is_located(tmp_path):
    """One entry one ulp off, in an off-diagonal tile pair or inside a diagonal tile: the pair is
    not bitwise symmetric, the largest asymmetry is that ulp at the upper-triangle position."""
    rng = np.random.default_rng(8)
    D = _sym(rng, 40)
    for u, v in ((3, 30), (30, 3), (9, 12), (12, 9)):
        E = D.copy()
        E[u, v] = np.nextafter(E[u, v], np.inf)
        S = StoredMatrix(E, tile=16)
        acc = StoredStats(S, 0.0)
        for _, sc in S.map_tile_pairs(lambda I, J: acc.scan(
                S.block(*S.edges[I], *S.edges[J]), None if I == J else S.block(*S.edges[J], *S.edges[I]), I, J)):
            acc.add(sc)
        assert not acc.bitwise_symmetric
        assert acc.asym == (abs(E[u, v] - E[v, u]), min(u, v), max(u, v))
        acc.finish(1e-9)  # within the tolerance: accepted


@pytest.mark.parametrize("kind", ["zarr", "memmap"])
@pytest.mark.parametrize("edit, match", [
    (lambda D: D.__setitem__((40, 3), D[40, 3] + 1e-3), r"not symmetric at \(3, 40\) / \(40, 3\)"),
    (lambda D: D.__setitem__((5, 9), D[5, 9] + 1e-3), r"not symmetric at \(5, 9\) / \(9, 5\)"),
    (lambda D: (D.__setitem__((5, 50), -1.0), D.__setitem__((50, 5), -1.0)), r"negative entry -1.0 at \(5, 50\)"),
    (lambda D: D.__setitem__((69, 69), 0.5), r"diagonal entry 0.5 at \(69, 69\)"),
    (lambda D: (D.__setitem__((60, 2), np.inf), D.__setitem__((61, 1), np.nan)), r"non-finite entry inf at \(60, 2\)"),
])
def test_bad_stored_matrix_is_located_in_memmaps_and_raw_zarr(logp, tmp_path, kind, edit, match):
    """The first product pass raises the same located errors as the in-memory checks (several
    tiles: 16 of 70), from a memory map and from an uncompressed zarr store read chunk by chunk."""
    D = bhattacharyya(logp)
    edit(D)
    if kind == "zarr":
        S = StoredMatrix(_raw_zarr(tmp_path / "D.zarr", D, (16, 16)), tile=16)
        assert S._chunk_file is not None
    else:
        np.save(tmp_path / "D.npy", D)
        S = StoredMatrix(np.load(tmp_path / "D.npy", mmap_mode="r"), tile=16)
    with pytest.raises(ValueError, match=match):
        InPCA(n_components=3).fit(S)
    with pytest.raises(ValueError, match=match):
        stored_stats(S, 1e-9)


def test_raw_chunk_reads_equal_zarr_reads(tmp_path):
    """Uncompressed local zarr v3: blocks read from the chunk files are the array's values for any
    range (edge chunks, unaligned, a float32 store) and a never-written chunk comes from zarr (its
    fill value); a compressed store is read through zarr; a truncated chunk file is an error."""
    rng = np.random.default_rng(9)
    A = rng.standard_normal((37, 53))
    A[8:16, 10:20] = np.nan  # the fill value: zarr writes no file for this chunk
    for dtype in ("f8", "f4"):
        z = _raw_zarr(tmp_path / f"A{dtype}.zarr", A.astype(dtype), (8, 10))
        assert not os.path.exists(tmp_path / f"A{dtype}.zarr" / "c" / "1" / "1")
        S = StoredMatrix(z)
        assert S._chunk_file is not None
        for r0, r1, c0, c1 in [(0, 37, 0, 53), (3, 9, 0, 53), (8, 16, 10, 20), (0, 8, 0, 10), (32, 37, 50, 53),
                               (5, 30, 7, 41), (36, 37, 9, 11)]:
            got = S.block(r0, r1, c0, c1)
            assert got.dtype == np.float64 and got.flags.c_contiguous
            np.testing.assert_array_equal(got, A.astype(dtype)[r0:r1, c0:c1].astype(np.float64))
    zc = zarr.create_array(str(tmp_path / "C.zarr"), shape=A.shape, chunks=(8, 10), dtype="f8")
    zc[...] = A
    assert StoredMatrix(zc)._chunk_file is None
    np.testing.assert_array_equal(StoredMatrix(zc).block(3, 20, 5, 30), A[3:20, 5:30])
    chunk = tmp_path / "Af8.zarr" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-8])
    with pytest.raises(ValueError, match="damaged"):
        StoredMatrix(zarr.open_array(str(tmp_path / "Af8.zarr"), mode="r")).block(0, 8, 0, 10)


def test_a_failing_read_stops_the_fit_and_leaves_no_threads(tmp_path):
    """An error (or an interrupt) inside a pass propagates out of fit; the pass's queued tile
    pairs are cancelled and its thread pool is shut down."""
    import threading

    D = _sym(np.random.default_rng(10), 60)
    S = StoredMatrix(_raw_zarr(tmp_path / "D.zarr", D, (8, 8)), tile=8)
    calls = []
    read = S.block

    def failing(*a):
        calls.append(a)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return read(*a)

    S.block = failing
    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        InPCA(n_components=3).fit(S)
    assert threading.active_count() == before
    assert len(calls) < 12 + 8  # the pairs after the failure were not all read


def test_default_tile_follows_the_chunks(tmp_path):
    """Tiles are whole chunks near 1024 (square or rectangular chunks: their lcm), 1024 for a
    memory map and for chunks too large to align to (read unaligned)."""
    def tile(chunks):
        z = zarr.create_array(zarr.storage.MemoryStore(), shape=(5000, 5000), chunks=chunks, dtype="f8")
        return StoredMatrix(z).tile

    assert tile((16, 16)) == 1024 and tile((1024, 1024)) == 1024 and tile((300, 300)) == 900
    assert tile((8, 10)) == 1000 and tile((2048, 2048)) == 2048 and tile((3000, 3000)) == 1024
    np.save(tmp_path / "D.npy", np.zeros((3, 3)))
    assert StoredMatrix(np.load(tmp_path / "D.npy", mmap_mode="r")).tile == 1024


@pytest.mark.parametrize("where", ["one pair in a diagonal tile", "a whole off-diagonal tile", "sign bits"])
def test_structured_asymmetries_are_found(tmp_path, where):
    """Asymmetries that change only exponent or sign bits (values doubled, negated) -- where an
    unmixed integer hash of the bits can cancel -- are found and located like any other."""
    D = _sym(np.random.default_rng(11), 48)
    E = D.copy()
    if where == "one pair in a diagonal tile":
        E[9, 12] *= 2.0
        u, v = 9, 12
    elif where == "a whole off-diagonal tile":
        E[0:16, 32:48] *= 2.0
        d = np.abs(E - E.T)
        u, v = np.unravel_index(np.argmax(np.triu(d)), d.shape)
    else:
        E[3, 20] = -E[3, 20]
        u, v = 3, 20
    S = StoredMatrix(E, tile=16)
    match = rf"not symmetric at \({u}, {v}\)" if where != "sign bits" else r"negative entry"
    with pytest.raises(ValueError, match=match):
        stored_stats(S, 1e-9)
    acc = StoredStats(S, 0.0)
    for _, sc in S.map_tile_pairs(lambda I, J: acc.scan(
            S.block(*S.edges[I], *S.edges[J]), None if I == J else S.block(*S.edges[J], *S.edges[I]), I, J)):
        acc.add(sc)
    assert not acc.bitwise_symmetric and acc.asym[1:] == (u, v)


def test_store_written_by_bhattacharyya_default_tiles(tmp_path):
    """End to end at the default sizes: a store of 3 x 3 chunks of 1024 (edge chunks of 52)
    written by bhattacharyya(out=...), read raw chunk by chunk, proved bitwise symmetric and then
    read in its upper triangle; the fit equals the in-memory one."""
    lp = log_softmax(2 * np.random.default_rng(12).standard_normal((2100, 6, 3)))
    z = bhattacharyya(lp, out=tmp_path / "D.zarr")
    D = z[...]
    S = StoredMatrix(z)
    assert S.tile == 1024 and len(S.edges) == 3 and S._chunk_file is not None
    fit = InPCA(n_components=4).fit(S)
    ref = InPCA(n_components=4, solver="iterative").fit(D)
    lam1 = abs(ref.eigenvalues_[0])
    # measured: eigenvalues 1e-15 |lambda_1|, eigenvectors 1.9e-14 (gaps of 2%), ||W||_F 1e-15
    np.testing.assert_allclose(fit.eigenvalues_, ref.eigenvalues_, rtol=0, atol=1e-14 * lam1)
    np.testing.assert_allclose(np.abs(fit.eigenvectors_.T @ ref.eigenvectors_), np.eye(4), rtol=0, atol=1e-12)
    assert fit.frobenius_norm_ == pytest.approx(ref.frobenius_norm_, rel=1e-14)
    # 1 shift tile + 9 tiles in the validating pass, then 6 upper-triangle tiles per pass
    assert S.reads == 1 + 9 + 6 * (fit.n_iter_ - 1)


def test_raw_reads_of_part_of_a_chunk_touch_only_that_part(tmp_path):
    """A block that needs a small part of a large raw chunk (row-chunked stores, edge chunks) is
    read without a chunk-sized buffer: a (1, 4096)-chunked store has 32 KiB chunks, and a 1 x 8
    block must not allocate one (the whole-chunk read did); the values are the array's."""
    import tracemalloc

    rng = np.random.default_rng(13)
    A = rng.standard_normal((6, 4096))
    z = _raw_zarr(tmp_path / "rows.zarr", A, (1, 4096))
    S = StoredMatrix(z, tile=8)
    assert S._chunk_file is not None
    S.block(0, 1, 0, 8)  # warm up (imports, first-call allocations)
    tracemalloc.start()
    try:
        for r0, c0 in ((0, 0), (3, 100), (5, 4088)):
            got = S.block(r0, r0 + 1, c0, c0 + 8)
            np.testing.assert_array_equal(got, A[r0:r0 + 1, c0:c0 + 8])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4096 * 8 // 4, peak
    np.testing.assert_array_equal(S.block(1, 4, 10, 30), A[1:4, 10:30])  # several chunks
    chunk = tmp_path / "rows.zarr" / "c" / "2" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-8])
    with pytest.raises(ValueError, match="damaged"):
        StoredMatrix(zarr.open_array(str(tmp_path / "rows.zarr"), mode="r"), tile=8).block(2, 3, 0, 8)


def test_fit_from_the_path_bhattacharyya_wrote(logp, tmp_path):
    """The path given to bhattacharyya(out=PATH) is a group (distances + tile mask): fit(PATH)
    reads its distance array; an unfinished store is refused by name with its tile count; a
    group without distances names what it holds."""
    z = bhattacharyya(logp, out=tmp_path / "d.zarr", tile=16)
    ref = InPCA(n_components=3).fit(z)
    fit = InPCA(n_components=3).fit(tmp_path / "d.zarr")
    np.testing.assert_array_equal(fit.eigenvalues_, ref.eigenvalues_)
    fit = InPCA(n_components=3).fit(zarr.open_group(str(tmp_path / "d.zarr"), mode="r"))  # the open group
    np.testing.assert_array_equal(fit.eigenvalues_, ref.eigenvalues_)

    def stop(done, total):
        if done == 4:
            raise Stop

    with pytest.raises(Stop):
        bhattacharyya(logp, out=tmp_path / "part.zarr", tile=16, on_tile=stop)
    with pytest.raises(ValueError, match=r"incomplete: 4 of 15 tiles"):
        InPCA(n_components=3).fit(str(tmp_path / "part.zarr"))
    g = zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    g.create_array("x", shape=(3, 3), dtype="f8")
    with pytest.raises(ValueError, match=r"no 'distance' array.*\['x'\]"):
        InPCA(n_components=2).fit(str(tmp_path / "other.zarr"))
