"""Atomic, checksummed, self-describing files (linsim.storage, linsim.provenance)."""

import json

import numpy as np
import pytest
import xarray as xr

from linsim.provenance import provenance_attrs
from linsim.storage import CorruptFileError, atomic_path, check_writable_dir, read_netcdf, write_netcdf


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_check_writable_dir_refuses_a_file_and_an_impossible_folder(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        check_writable_dir(tmp_path / "f")
    with pytest.raises(PermissionError, match="cannot create"):
        check_writable_dir(tmp_path / "f" / "sub")


def test_history_is_prepended_and_versions_recorded(tmp_path):
    ds = xr.Dataset({"x": ("i", np.arange(3))}, attrs={"history": "earlier: step one"})
    back = read_netcdf(write_netcdf(ds, tmp_path / "a.nc", command=["linsim", "phase", "--axis", "c=lin:0:1:3"]))
    first, second = back.attrs["history"].split("\n")
    assert first.endswith("linsim phase --axis c=lin:0:1:3") and second == "earlier: step one"
    versions = json.loads(back.attrs["dependency_versions"])
    assert "numpy" in versions and back.attrs["linsim_version"]


def test_checksum_detects_a_changed_value(tmp_path):
    ds = xr.Dataset({"x": ("i", np.arange(4.0))})
    path = write_netcdf(ds, tmp_path / "a.nc", checksum_vars=["x"])
    with xr.open_dataset(path, engine="h5netcdf") as opened:
        changed = opened.load()
    changed["x"].values[2] = 99.0  # keeps the stored sha256 attribute
    changed.to_netcdf(tmp_path / "b.nc", engine="h5netcdf")
    with pytest.raises(CorruptFileError, match="'x'"):
        read_netcdf(tmp_path / "b.nc")
    assert read_netcdf(tmp_path / "b.nc", verify=False)["x"].values[2] == 99.0


def test_unknown_checksum_variable_and_missing_file_are_named(tmp_path):
    with pytest.raises(KeyError, match="nope"):
        write_netcdf(xr.Dataset({"x": ("i", [1.0])}), tmp_path / "a.nc", checksum_vars=["nope"])
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        read_netcdf(tmp_path / "missing.nc")
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    with pytest.raises(CorruptFileError, match="junk.nc"):
        read_netcdf(tmp_path / "junk.nc")


def test_provenance_defaults_to_this_process_command_line():
    attrs = provenance_attrs()
    assert attrs["Conventions"] == "CF-1.10" and ":" in attrs["history"]


def test_text_variables_can_be_checksummed(tmp_path):
    ds = xr.Dataset({"status": ("cell", np.array(["ok", "failed", "ok"]))})
    back = read_netcdf(write_netcdf(ds, tmp_path / "s.nc", checksum_vars=["status"]))
    assert back["status"].values.tolist() == ["ok", "failed", "ok"]


def test_compression_is_lossless_and_smaller(tmp_path):
    x = np.repeat(np.random.default_rng(0).normal(size=(50, 1)), 400, axis=1)  # compressible
    ds = xr.Dataset({"x": (("i", "j"), x)})
    plain = write_netcdf(ds, tmp_path / "plain.nc")
    packed = write_netcdf(ds, tmp_path / "packed.nc", compress=4, checksum_vars=["x"])
    assert packed.stat().st_size < plain.stat().st_size / 5
    np.testing.assert_array_equal(read_netcdf(packed)["x"].values, x)
    with pytest.raises(ValueError, match="gzip level"):
        write_netcdf(ds, tmp_path / "bad.nc", compress=12)


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = write_netcdf(xr.Dataset({"x": ("i", [1.0])}), tmp_path / "p.nc")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
