"""The shared Trajectory type: validation, probabilities, selection, netCDF round trip."""

import numpy as np
import pytest

from linsim.trajectory import Trajectory


def _traj(model="softmax", C=4, **kw):
    rng = np.random.default_rng(0)
    return Trajectory(
        outputs=rng.normal(size=(2, 3, 5, C)),
        times=[0, 1, 10],
        output_model=model,
        params={"lr": 0.5, "model": "linear", "seed": np.int64(3)},
        inputs=rng.normal(size=(5, 7)),
        labels=[0, 1, 0, 1, 0],
        arrays={"teacher": rng.normal(size=(C, 7))},
        **kw,
    )


def test_softmax_log_probs_normalized_and_stable_for_huge_logits():
    t = _traj()
    lp = t.log_probs()
    assert lp.shape == (6, 5, 4)
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, atol=1e-14)
    big = Trajectory(outputs=np.array([[[[1000.0, 0.0]]]]), times=[0])
    np.testing.assert_allclose(big.log_probs()[0, 0], [0.0, -1000.0], atol=0)


def test_bernoulli_log_probs_match_sigmoid_and_stay_finite():
    z = np.array([-800.0, -2.0, 0.0, 3.0, 800.0]).reshape(1, 1, 5, 1)
    lp = Trajectory(outputs=z, times=[0], output_model="bernoulli").log_probs()[0]
    sig = 1 / (1 + np.exp(-np.array([-2.0, 0.0, 3.0])))
    np.testing.assert_allclose(np.exp(lp[1:4, 1]), sig, rtol=1e-14)
    np.testing.assert_allclose(lp[[0, 4], :], [[0.0, -800.0], [-800.0, 0.0]])


def test_flat_order_is_run_major():
    t = _traj()
    r, k = t.point_index()
    flat = t.flat_outputs()
    for m in range(t.n_points):
        np.testing.assert_array_equal(flat[m], t.outputs[r[m], k[m]])
    assert (r[3], k[3]) == (1, 0)


def test_select_and_round_trip(tmp_path):
    t = _traj()
    s = t.select(runs=[1], checkpoints=[0, 2])
    assert s.outputs.shape == (1, 2, 5, 4)
    np.testing.assert_array_equal(s.times, [0, 10])
    back = Trajectory.load(t.save(tmp_path / "t.nc"))
    np.testing.assert_array_equal(back.outputs, t.outputs)
    np.testing.assert_array_equal(back.arrays["teacher"], t.arrays["teacher"])
    np.testing.assert_array_equal(back.labels, t.labels)
    assert back.params == {"lr": 0.5, "model": "linear", "seed": 3}
    assert back.output_model == "softmax" and back.time_unit == "step"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"outputs": np.zeros((2, 3, 4))}, "shape"),
        ({"outputs": np.full((1, 1, 2, 2), np.nan)}, "NaN"),
        ({"times": [0, 2, 1]}, "non-decreasing"),
        ({"times": [0, 1]}, "times"),
        ({"output_model": "poisson"}, "output_model"),
        ({"output_model": "bernoulli"}, "C == 1"),
        ({"inputs": np.zeros((4, 2))}, "inputs"),
        ({"labels": [0, 1]}, "labels"),
        ({"params": {"w": np.zeros(3)}}, "scalar"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    base = dict(outputs=np.zeros((1, 3, 5, 2)), times=[0, 1, 2])
    base.update(kwargs)
    if "outputs" in kwargs and "times" not in kwargs:
        base["times"] = np.arange(np.asarray(kwargs["outputs"]).shape[1]) if np.asarray(kwargs["outputs"]).ndim == 4 else [0]
    with pytest.raises((ValueError, TypeError), match=match):
        Trajectory(**base)


def test_gaussian_has_no_log_probs():
    t = _traj(model="gaussian", noise_scale=0.5)
    with pytest.raises(ValueError, match="gaussian"):
        t.log_probs()


# ---------------------------------------------------------------------------- contracts (issue 11)
def test_float32_outputs_are_kept_without_a_copy_and_other_dtypes_become_float64():
    z32 = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype(np.float32)
    t = Trajectory(outputs=z32, times=[0, 1, 2])
    assert t.outputs.dtype == np.float32 and np.shares_memory(t.outputs, z32)
    assert t.log_probs().dtype == np.float32
    t16 = Trajectory(outputs=z32.astype(np.float16), times=[0, 1, 2])
    assert t16.outputs.dtype == np.float64
    ti = Trajectory(outputs=np.zeros((1, 1, 2, 3), dtype=np.int32), times=[0])
    assert ti.outputs.dtype == np.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"times": [0, np.nan, 2]}, "NaN or inf"),
        ({"times": [0, 1, np.inf]}, "NaN or inf"),
        ({"labels": [0, 1, 0.5, 1, 0]}, r"labels\[2\]"),
        ({"labels": [0, 1, 2, 1, 0]}, r"\[0, 2\)"),
        ({"labels": [0, -1, 0, 1, 0]}, r"labels\[1\] = -1"),
        ({"labels": [True, False, True, False, True]}, "integers"),
        ({"outputs": np.zeros((1, 3, 5, 2)) + 1j}, "complex"),
        ({"times": np.array([0, 1, 2]) + 0j}, "complex"),
        ({"inputs": np.zeros((5, 2)) + 1j}, "complex"),
        ({"noise_scale": np.inf, "output_model": "gaussian"}, "noise_scale"),
        ({"arrays": {"not an identifier": np.zeros(2)}}, "identifiers"),
    ],
)
def test_more_bad_input_is_refused(kwargs, match):
    base = dict(outputs=np.zeros((1, 3, 5, 2)), times=[0, 1, 2])
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        Trajectory(**base)


def test_repr_is_short_and_says_the_shape():
    text = repr(_traj())
    assert len(text) < 120 and "R=2, K=3, n=5, C=4" in text and "softmax" in text


def test_save_is_atomic_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    import xarray as xr

    path = tmp_path / "t.nc"
    first = _traj()
    first.save(path)
    before = path.read_bytes()

    def broken(self, target, *a, **k):
        with open(target, "wb") as fh:
            fh.write(b"half a file")
        raise KeyboardInterrupt  # a kill in the middle of the write

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(KeyboardInterrupt):
        _traj(C=3).save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.nc"]  # no temporary left behind


def test_overwritten_bytes_are_detected_on_load(tmp_path):
    import h5py

    from linsim.storage import CorruptFileError

    path = _traj().save(tmp_path / "t.nc")
    with h5py.File(path, "r") as f:
        offset = f["outputs"].id.get_offset()
    raw = bytearray(path.read_bytes())
    raw[offset + 16: offset + 24] = np.float64(-1.86e230).tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="outputs"):
        Trajectory.load(path)


def test_load_reads_by_dimension_name_not_position(tmp_path):
    rng = np.random.default_rng(2)
    t = Trajectory(outputs=rng.normal(size=(3, 3, 4, 2)), times=[0, 1, 5],
                   inputs=rng.normal(size=(4, 6)))  # R == K: a transposed file has the same shape
    ds = t.to_dataset()
    ds["outputs"] = ds["outputs"].transpose("checkpoint", "run", "output", "sample")
    ds["inputs"] = ds["inputs"].transpose("feature", "sample")
    ds.to_netcdf(tmp_path / "t.nc", engine="h5netcdf")
    back = Trajectory.load(tmp_path / "t.nc")
    np.testing.assert_array_equal(back.outputs, t.outputs)
    np.testing.assert_array_equal(back.inputs, t.inputs)


@pytest.mark.parametrize("attr", ["time_unit", "output_model", "params_json"])
def test_load_names_a_missing_attribute(tmp_path, attr):
    ds = _traj().to_dataset()
    del ds.attrs[attr]
    ds.to_netcdf(tmp_path / "t.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match=attr):
        Trajectory.load(tmp_path / "t.nc")


def test_saved_file_is_self_describing(tmp_path):
    import xarray as xr

    path = _traj().save(tmp_path / "t.nc", command="linsim ribbon --seed 3")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.attrs["Conventions"].startswith("CF-")
        assert ds.attrs["history"].endswith("linsim ribbon --seed 3")
        assert ds.attrs["param_lr"] == 0.5 and ds.attrs["param_model"] == "linear"
        assert ds["time"].attrs["units"] == "step"
        assert "long_name" in ds["outputs"].attrs
