"""Sweep datasets are self-describing (booleans as booleans with validity masks, CF attributes,
provenance), and bad sweeps are refused before anything is computed."""

import dataclasses
import warnings

import numpy as np
import pytest
import xarray as xr

from linsim.ensemble import EnsembleConfig
from linsim.metrics import RibbonCriterion
from linsim.parallel import get_engine
from linsim.storage import read_netcdf
from linsim.sweep import PhaseSpec, agreement, run_phase, theory_map, with_values
from linsim.sweep import runner as runner_module

TINY = EnsembleConfig(n_samples=40, dim=8, n_classes=3, n_runs=3, n_checkpoints=4, steps=50, init_scale=0.01)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    # slope -1 is outside the domain: that row fails and must be recorded, the rest runs
    spec = PhaseSpec(TINY, {"c": [-1.0, 0.5], "ratio": [0.5, 50.0]}, root_seed=3)
    out = tmp_path_factory.mktemp("sweep") / "phase.nc"
    ds = run_phase(spec, n_workers=1, progress=False, out=out, command="pytest sweep")
    return ds, read_netcdf(out)


def test_booleans_are_booleans_with_validity_masks(sweep):
    for ds in sweep:  # in memory and read back from disk
        for name in ("sim_is_ribbon", "theory_is_ribbon", "draw_is_ribbon", "in_regime",
                     "sim_valid", "theory_valid", "draw_valid"):
            assert ds[name].dtype == bool, name
        assert ds["status"].values.tolist() == [["failed", "failed"], ["ok", "ok"]]
        assert ds["sim_valid"].values.tolist() == [[False, False], [True, True]]
        assert not ds["sim_is_ribbon"].values[0].any()  # no value where the mask is False
        assert np.isnan(ds["sim_k_chi"].values[0]).all() and np.isfinite(ds["sim_k_chi"].values[1]).all()
        assert ds["seed"].dtype == np.int64


def test_every_variable_and_coordinate_is_described(sweep):
    for ds in sweep:
        for name, var in list(ds.data_vars.items()) + list(ds.coords.items()):
            assert var.attrs.get("long_name"), name
            assert "units" in var.attrs, name
        assert ds["seconds"].attrs["units"] == "s"
        assert ds["slope"].attrs["symbol"] == "c" and ds["scale_ratio"].attrs["symbol"] == "ρ/σ₀"
        assert "ρ/σ₀" in ds["scale_ratio"].attrs["long_name"]
        assert ds["sim_stress_curve"].dims == ("slope", "scale_ratio", "component")
        assert ds["theory_stress_curve"].dims == ds["draw_stress_curve"].dims == ds["sim_stress_curve"].dims
        assert ds.attrs["Conventions"].startswith("CF-") and ds.attrs["criterion_k_star"] == 3
    mem, disk = sweep
    assert disk.attrs["history"].count("\n") == 0 and disk.attrs["history"].endswith("pytest sweep")
    assert "linsim_version" in disk.attrs and "dependency_versions" in disk.attrs


def test_agreement_refuses_unknown_predictions_and_counts_booleans(sweep):
    ds = sweep[0]
    with pytest.raises(ValueError, match="prediction must be one of"):
        agreement(ds, "foo")
    s = agreement(ds)
    assert s["failed"] == 2 and s["cells"] == 2
    dims = ("slope", "scale_ratio")
    fake = xr.Dataset({
        "status": (dims, np.array([["ok", "ok"], ["ok", "failed"]])),
        "sim_valid": (dims, np.array([[True, True], [True, False]])),
        "theory_valid": (dims, np.array([[True, True], [False, True]])),
        "sim_is_ribbon": (dims, np.array([[True, False], [True, False]])),
        "theory_is_ribbon": (dims, np.array([[True, True], [False, False]])),
        "in_regime": (dims, np.array([[True, False], [True, True]])),
    }, coords={"slope": [0.0, 1.0], "scale_ratio": [1.0, 10.0]})
    s = agreement(fake)
    # compared: (0,0) agree, (0,1) disagree; (1,0) has no theory; (1,1) failed
    assert (s["cells"], s["agreement"], s["no_theory"], s["failed"]) == (2, 0.5, 1, 1)
    assert (s["cells_in_regime"], s["agreement_in_regime"]) == (1, 1.0)
    assert [(d["slope"], d["scale_ratio"], d["in_regime"]) for d in s["disagreements"]] == [(0.0, 10.0, False)]


def test_integer_axes_are_rounded_with_a_note_and_repeats_refused():
    with pytest.warns(UserWarning, match="rounded"):
        spec = PhaseSpec(TINY, {"c": [0.5], "T": np.geomspace(10, 12, 5)})
    assert spec.axes["steps"].tolist() == [10.0, 11.0, 12.0]
    assert "duplicate" in spec.notes[0]
    with pytest.raises(ValueError, match="given twice"):
        PhaseSpec(TINY, [("c", [0.1, 0.2]), ("slope", [0.3])])
    with pytest.raises(ValueError, match="given twice"):
        PhaseSpec(TINY, [("ratio", [1.0]), ("ratio", [2.0])])
    with pytest.raises(ValueError, match="repeats a value"):
        PhaseSpec(TINY, {"c": [0.1, 0.1]})
    assert list(PhaseSpec(TINY, {"n-runs": [2, 3]}).axes) == ["n_runs"]


def test_bad_sweeps_are_refused_before_any_cell_runs(monkeypatch):
    ran = []
    monkeypatch.setattr(runner_module, "_cell_task", lambda item: ran.append(1))
    spec = PhaseSpec(TINY, {"c": [0.0, 1.0], "ratio": [1.0, 10.0]})
    for bad in (0, -2):
        with pytest.raises(ValueError, match="positive integer"):
            run_phase(spec, n_workers=bad, progress=False)
    with pytest.raises(ValueError, match="resolution must be >= 2"):
        run_phase(spec, n_workers=1, progress=False, theory_resolution=1)
    no_theory = PhaseSpec(dataclasses.replace(TINY, model="two_layer"), spec.axes)
    with pytest.raises(ValueError, match="theory covers"):
        run_phase(no_theory, n_workers=1, progress=False, theory_resolution=5)
    with pytest.raises(ValueError, match="axis 'slope' value -1"):
        PhaseSpec(TINY, {"c": [-1.0, 1.0], "ratio": [1.0, 10.0]}).validate_for_theory_map(3)
    with pytest.raises(ValueError, match="at least two axes"):
        PhaseSpec(TINY, {"c": [0.0, 1.0]}).validate_for_theory_map(3)
    assert ran == []
    fine = spec.validate_for_theory_map(4)
    assert [v.size for v in fine.values()] == [4, 4] and spec.supports_theory_map


def test_a_limit_on_two_axes_at_once_is_found_before_the_theory_map():
    # each axis alone is fine beside the other's first value; only the corner (lr, lambda_1) =
    # (1.5, 1.5) passes the GD stability limit lr < 2 / lambda_1
    spec = PhaseSpec(TINY, {"lr": [0.1, 1.5], "lambda_1": [0.5, 1.5]})
    with pytest.raises(ValueError, match=r"corner lr=1.5, lambda_1=1.5 .*stability limit"):
        spec.validate_for_theory_map(3)


def test_with_values_takes_aliases_and_refuses_repeats():
    assert with_values(TINY, {"T": 20, "c": 0.25}) == dataclasses.replace(TINY, steps=20, slope=0.25)
    with pytest.raises(ValueError, match="given twice"):
        with_values(TINY, {"c": 0.1, "slope": 0.2})
    with pytest.raises(ValueError, match="unknown sweep axis 'temperature'"):
        with_values(TINY, {"temperature": 1.0})


def test_invalid_cells_are_listed_with_their_reason():
    spec = PhaseSpec(TINY, {"c": [-1.0, 0.5]})
    bad = spec.invalid_cells()
    assert [idx for idx, _ in bad] == [(0,)] and "slope" in bad[0][1]


def test_fine_theory_map_is_described_and_engine_independent():
    spec = PhaseSpec(TINY, {"c": [0.0, 1.0], "T": [10, 1000]}, criterion=RibbonCriterion(0.9, 2))
    one = theory_map(spec, resolution=4, n_workers=1, n_draws=2)
    two = theory_map(spec, resolution=4, engine="serial", n_draws=2)
    np.testing.assert_array_equal(one["fine_k_chi"].values, two["fine_k_chi"].values)
    with pytest.raises(ValueError, match="either an Engine instance or n_workers"):  # not dropped silently
        theory_map(spec, resolution=4, n_workers=3, engine=get_engine("serial"), n_draws=2)
    assert one["fine_steps"].attrs["symbol"] == "T" and "k* = 2" in one["fine_stress_k"].attrs["long_name"]


def test_a_fresh_run_discards_stale_cells(tmp_path):
    spec = PhaseSpec(TINY, {"ratio": [0.5, 5.0]})
    store = tmp_path / "phase.nc.cells"
    store.mkdir()
    (store / "cell-000000-r000.nc").write_bytes(b"not netcdf")  # debris of an older run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = run_phase(spec, n_workers=1, progress=False, out=tmp_path / "phase.nc")
    assert (ds["status"].values == "ok").all() and not store.exists()
