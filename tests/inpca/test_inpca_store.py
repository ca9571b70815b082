"""Out-of-core distances and InPCA from a stored matrix.

Oracles: the in-memory kernels on the same inputs (bitwise where the arithmetic is the same,
1e-13 otherwise), a one-shot store against an interrupted-and-resumed one (bitwise), counted
block reads (memory bound), and the in-memory InPCA fit (1e-12 relative to |lambda_1|).
"""

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
    for src in (z, mm, str(tmp_path / "D.zarr"), S):
        fit = InPCA(n_components=6).fit(src)
        assert fit.solver_ == "iterative"
        lam1 = abs(ref.eigenvalues_[0])
        np.testing.assert_allclose(fit.eigenvalues_, ref.eigenvalues_, rtol=0, atol=1e-12 * lam1)
        np.testing.assert_allclose(fit.embedding_, ref.embedding_, rtol=0, atol=1e-9)
        assert fit.frobenius_norm_ == pytest.approx(ref.frobenius_norm_, rel=1e-12)
        np.testing.assert_allclose(fit.column_means_, ref.column_means_, rtol=0, atol=1e-14)
        np.testing.assert_allclose(fit.diagonal_, ref.diagonal_, rtol=0, atol=1e-13)
        np.testing.assert_allclose(fit.explained_stress_, ref.explained_stress_, rtol=0, atol=1e-12)
    assert S.max_block_elems <= 16 * 16  # never more than one tile at once
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
