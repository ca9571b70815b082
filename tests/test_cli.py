"""The linsim command: version, help, ribbon and phase on tiny ensembles, error exits."""

import json

import numpy as np
import pytest
import xarray as xr

from linsim import __version__
from linsim.cli import main, parse_axis

TINY = ["--n-samples", "40", "--dim", "8", "--n-classes", "3", "--n-runs", "3", "--n-checkpoints", "5",
        "--steps", "100"]


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "ribbon" in capsys.readouterr().out


def test_parse_axis():
    name, v = parse_axis("c=lin:0:2:5")
    assert name == "c"
    np.testing.assert_allclose(v, [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(parse_axis("ratio=log:0.1:10:3")[1], [0.1, 1, 10])
    np.testing.assert_allclose(parse_axis("T=10,100")[1], [10, 100])
    for bad in ("c", "c=log:0:1:3", "c=lin:0:1", "c=a,b"):
        with pytest.raises(Exception, match="axis"):
            parse_axis(bad)


def test_ribbon_json_and_files(tmp_path, capsys):
    assert main(["ribbon", *TINY, "--out", str(tmp_path), "--json", "--n-components", "6"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == 3 * out["checkpoints"]
    lam = np.array(out["eigenvalues"])
    assert lam.size == 6 and np.all(np.diff(np.abs(lam)) <= 0)
    assert out["n_negative"] == int(np.sum(lam < 0))
    chi = np.array(out["explained_stress"])
    assert np.all(np.diff(chi) >= 0) and 0 < chi[-1] <= 1
    ds = xr.open_dataset(tmp_path / "ribbon.nc", engine="h5netcdf")
    np.testing.assert_allclose(ds["eigenvalues"].values, lam)
    assert (tmp_path / "ribbon.png").stat().st_size > 10_000


def test_ribbon_text_output(tmp_path, capsys):
    assert main(["ribbon", *TINY, "--out", str(tmp_path), "--no-figure"]) == 0
    text = capsys.readouterr().out
    assert "explained stress" in text and "negative eigenvalues" in text


@pytest.mark.slow
def test_phase_json(tmp_path, capsys):
    args = ["phase", *TINY, "--axis", "c=0,1", "--axis", "ratio=0.3,30", "--workers", "1", "--json",
            "--theory-resolution", "6", "--out", str(tmp_path)]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"agreement", "cells", "disagreements"} <= set(out)
    assert out["cells"] == 4 and 0 <= out["agreement"] <= 1
    assert len(out["disagreements"]) == round(4 * (1 - out["agreement"]))
    ds = xr.open_dataset(tmp_path / "phase.nc", engine="h5netcdf")
    assert ds["sim_stress_k"].shape == (2, 2) and "fine_k_chi" in ds
    assert (tmp_path / "phase.png").exists()


def test_bad_config_exits_with_message(tmp_path, capsys):
    assert main(["ribbon", *TINY, "--init-scale", "-1", "--out", str(tmp_path)]) == 2
    assert "init_scale" in capsys.readouterr().err
