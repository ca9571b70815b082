"""Phase sweeps: specification checks, seeding independent of workers, failure recording,
and the agreement summary on a hand-built dataset."""

import dataclasses

import numpy as np
import pytest
import xarray as xr

from linsim.ensemble import EnsembleConfig
from linsim.metrics import RibbonCriterion
from linsim.sweep import PhaseSpec, agreement, canonical_axis, is_log_axis, run_phase, with_values

TINY = EnsembleConfig(n_samples=40, dim=8, n_classes=3, n_runs=3, n_checkpoints=4, steps=50, init_scale=0.01)


def test_axis_aliases_and_errors():
    assert canonical_axis("c") == "slope" and canonical_axis("T") == "steps"
    assert canonical_axis("ratio") == "scale_ratio"
    with pytest.raises(ValueError, match="unknown sweep axis"):
        canonical_axis("temperature")
    with pytest.raises(ValueError, match="seed"):
        canonical_axis("seed")
    with pytest.raises(ValueError, match="not both"):
        PhaseSpec(TINY, {"ratio": [1, 2], "teacher_scale": [1, 2]})
    with pytest.raises(ValueError, match="1 to 3 axes"):
        PhaseSpec(TINY, {})
    with pytest.raises(ValueError, match="NaN"):
        PhaseSpec(TINY, {"c": [0.1, np.nan]})
    with pytest.raises(ValueError, match="k\\*"):
        PhaseSpec(TINY, {"c": [0.1]}, criterion=RibbonCriterion(k_star=100))


def test_with_values_sets_ratio_and_integers():
    cfg = with_values(TINY, {"scale_ratio": 10.0, "steps": 20.0})
    assert cfg.teacher_scale == pytest.approx(0.1) and cfg.steps == 20 and isinstance(cfg.steps, int)
    with pytest.raises(ValueError, match="integers"):
        with_values(TINY, {"steps": 2.5})


def test_cell_seeds_are_distinct_and_reproducible():
    spec = PhaseSpec(TINY, {"c": [0.0, 1.0], "ratio": [0.1, 1.0, 10.0]}, root_seed=7)
    seeds = [cfg.seed for _, cfg in spec.cells()]
    assert len(set(seeds)) == 6
    assert seeds == [cfg.seed for _, cfg in PhaseSpec(TINY, spec.axes, root_seed=7).cells()]
    assert seeds != [cfg.seed for _, cfg in PhaseSpec(TINY, spec.axes, root_seed=8).cells()]


def test_failures_are_recorded_and_the_rest_runs():
    # slope = -1 is outside the domain: that cell must fail and be recorded, the rest must run.
    # (Independence of the worker count and engine: tests/test_sweep_reliability.py, test_dask.py.)
    spec = PhaseSpec(TINY, {"c": [-1.0, 0.5], "ratio": [0.5, 50.0]}, root_seed=3)
    one = run_phase(spec, n_workers=1, progress=False)
    assert list(one["status"].values[0]) == ["failed", "failed"]
    assert "slope" in str(one["error"].values[0, 0])
    assert list(one["status"].values[1]) == ["ok", "ok"]
    # A larger output-to-weight ratio makes the ensemble more ribbon-like (theory.md table).
    assert one["sim_stress_k"].values[1, 1] > one["sim_stress_k"].values[1, 0]
    summary = agreement(one)
    assert summary["failed"] == 2 and summary["cells"] == 2


def _fake(sim, pred, regime):
    shape = np.shape(sim)
    dims = ("slope", "scale_ratio")
    return xr.Dataset(
        {
            "status": (dims, np.full(shape, "ok")),
            "sim_is_ribbon": (dims, np.asarray(sim, float)),
            "theory_is_ribbon": (dims, np.asarray(pred, float)),
            "sim_k_chi": (dims, np.ones(shape)),
            "theory_k_chi": (dims, np.ones(shape)),
            "sim_stress_k": (dims, np.ones(shape)),
            "theory_stress_k": (dims, np.ones(shape)),
            "logit_rms": (dims, np.zeros(shape)),
            "in_regime": (dims, np.asarray(regime, float)),
        },
        coords={"slope": [0.0, 1.0], "scale_ratio": [1.0, 10.0]},
    )


def test_agreement_counts_by_hand_on_older_float_datasets():
    # files written before booleans were stored as booleans (0/1 floats with NaN) still summarize
    ds = _fake([[1, 0], [1, 1]], [[1, 1], [1, np.nan]], [[1, 0], [1, 1]])
    s = agreement(ds)
    assert s["cells"] == 3 and s["agreement"] == pytest.approx(2 / 3)
    assert s["cells_in_regime"] == 2 and s["agreement_in_regime"] == 1.0
    assert s["no_theory"] == 1
    assert s["disagreements"] == [
        {"slope": 0.0, "scale_ratio": 10.0, "sim_k_chi": 1.0, "predicted_k_chi": 1.0, "sim_stress_k": 1.0,
         "predicted_stress_k": 1.0, "logit_rms": 0.0, "in_regime": False}
    ]


def test_is_log_axis():
    assert is_log_axis(np.geomspace(0.1, 100, 12))
    assert not is_log_axis(np.linspace(0, 2, 12))
    assert not is_log_axis(np.linspace(1, 2, 12))


def test_flow_cells_get_both_predictions():
    # Gradient flow uses theory.expected_spectrum(dynamics="flow") and quadratic_spectrum_flow; in
    # the small-logit regime the same-draw prediction must classify like the simulation.
    base = dataclasses.replace(TINY, optimizer="flow")
    ds = run_phase(PhaseSpec(base, {"ratio": [0.3, 30.0]}, root_seed=1), n_workers=1, progress=False)
    assert list(ds["status"].values) == ["ok", "ok"], ds["error"].values
    assert np.all(np.isfinite(ds["theory_k_chi"].values)) and np.all(np.isfinite(ds["draw_k_chi"].values))
    small = ds["in_regime"].values
    assert small.dtype == bool and small.any(), ds["logit_rms"].values  # else the check below is empty
    np.testing.assert_array_equal(ds["draw_is_ribbon"].values[small], ds["sim_is_ribbon"].values[small])


def test_steep_spectrum_cells_do_not_fail():
    # With c = 2 and d = 8 the smallest eigenvalue is e^-14 relative to the largest; a steeper one
    # used to come back from eigh slightly negative and the theory refused it.
    spec = PhaseSpec(dataclasses.replace(TINY, dim=30, n_samples=60), {"c": [2.0, 3.0]}, root_seed=2)
    ds = run_phase(spec, n_workers=1, progress=False)
    assert list(ds["status"].values) == ["ok", "ok"], ds["error"].values


def test_steps_axis_fine_map_uses_integer_steps():
    # The fine theory map over (c, T) must round T to integers (a float T used to be refused).
    from linsim.sweep import theory_map

    spec = PhaseSpec(TINY, {"c": [0.0, 1.0], "T": [10, 1000]})
    fine = theory_map(spec, resolution=5, n_workers=1, n_draws=2)
    T = fine["fine_steps"].values
    np.testing.assert_array_equal(T, np.rint(T))
    assert T[0] == 10 and T[-1] == 1000 and np.all(np.diff(T) > 0)
    assert np.all(np.isfinite(fine["fine_k_chi"].values))


def test_three_axis_sweep_shapes():
    spec = PhaseSpec(TINY, {"c": [0.5], "ratio": [1.0, 10.0], "C": [2, 3]}, root_seed=4)
    ds = run_phase(spec, n_workers=1, progress=False)
    assert ds["sim_k_chi"].dims == ("slope", "scale_ratio", "n_classes")
    assert ds["sim_k_chi"].shape == (1, 2, 2) and np.all(ds["status"].values == "ok")


def test_analytic_boundary_per_cell_and_on_the_fine_grid():
    """Each cell's analytic-boundary verdict is ρ/σ₀ >= theory.critical_ratio of the cell's own spectrum,
    learning rate and checkpoints (taken here from the simulated trajectory, not from the sweep
    code's path); the trivial verdict is ρ/σ₀ >= 1.5."""
    import theory
    from linsim.ensemble import simulate
    from linsim.sweep.summary import TRIVIAL_RIBBON_RATIO
    from linsim.sweep.theory_map import analytic_boundary

    assert TRIVIAL_RIBBON_RATIO == 1.5
    cs, rs = [0.0, 1.0, 2.0], [0.3, 1.5, 2.5, 30.0]
    spec = PhaseSpec(TINY, {"ratio": rs, "c": cs}, criterion=RibbonCriterion(chi=0.9, k_star=3))
    b = analytic_boundary(spec, fine_values=[0.5])
    assert b["analytic_is_ribbon"].dims == ("scale_ratio", "slope")
    for j, c in enumerate(cs):
        traj = simulate(dataclasses.replace(TINY, slope=c))
        crit = theory.critical_ratio(traj.arrays["population_eigenvalues"], TINY.n_classes,
                                     float(traj.params["lr_effective"]), traj.arrays["steps"], TINY.n_runs,
                                     chi=0.9, k_star=3)
        assert b["analytic_critical_ratio"].values[j] == pytest.approx(crit, rel=1e-12)
        for i, r in enumerate(rs):
            assert b["analytic_is_ribbon"].values[i, j] == float(r >= crit)
            assert b["trivial_is_ribbon"].values[i, j] == float(r >= 1.5)
    traj = simulate(dataclasses.replace(TINY, slope=0.5))
    fine = theory.critical_ratio(traj.arrays["population_eigenvalues"], TINY.n_classes,
                                 float(traj.params["lr_effective"]), traj.arrays["steps"], TINY.n_runs)
    assert b["boundary_critical_ratio"].values[0] == pytest.approx(fine, rel=1e-12)
    assert b["boundary_slope"].values.tolist() == [0.5]
    # no ρ/σ₀ axis, or a third axis: no analytic boundary
    assert analytic_boundary(PhaseSpec(TINY, {"c": cs, "T": [10, 100]})) is None
    assert analytic_boundary(PhaseSpec(TINY, {"c": cs, "ratio": rs, "R": [2, 3]})) is None


def test_theory_map_carries_the_analytic_boundary_only_with_a_ratio_axis():
    from linsim.sweep import theory_map

    fine = theory_map(PhaseSpec(TINY, {"c": [0.0, 1.0], "ratio": [0.5, 5.0]}), resolution=3, n_workers=1,
                      n_draws=2)
    assert fine["boundary_critical_ratio"].dims == ("boundary_slope",)
    np.testing.assert_allclose(fine["boundary_slope"].values, fine["fine_slope"].values)
    assert fine.attrs["trivial_ribbon_ratio"] == 1.5 and fine.attrs["fine_map_draws"] == 2
    other = theory_map(PhaseSpec(TINY, {"c": [0.0, 1.0], "T": [10, 100]}), resolution=3, n_workers=1, n_draws=2)
    assert not any(v.startswith(("boundary_", "analytic_", "trivial_")) for v in other.variables)


def test_common_agreement_uses_the_same_cells_by_hand():
    from linsim.sweep.summary import common_agreement

    ok = np.array(["ok", "ok", "ok", "ok", "failed"])
    ds = xr.Dataset({"status": ("c", ok),
                     "sim_is_ribbon": ("c", [1.0, 0.0, 1.0, 0.0, 1.0]),
                     "theory_is_ribbon": ("c", [1.0, 1.0, np.nan, 0.0, 1.0]),  # cell 2: no theory
                     "analytic_is_ribbon": ("c", [1.0, 0.0, 1.0, 1.0, 1.0]),
                     "trivial_is_ribbon": ("c", [0.0, 0.0, 1.0, 0.0, 1.0])},
                    coords={"c": np.arange(5.0)})
    # compared cells: 0, 1, 3 (2 has no theory, 4 failed)
    assert common_agreement(ds) == {"cells": 3, "theory": 2 / 3, "analytic": 2 / 3, "trivial": 2 / 3}
    assert agreement(ds, "trivial")["cells"] == 4  # alone, the trivial rule is scored on cell 2 too
    with pytest.raises(ValueError, match="prediction must be one of"):
        common_agreement(ds, ("theory", "nope"))


def test_analytic_boundary_refusals_become_nan_with_a_note(monkeypatch):
    """A configuration theory.critical_ratio refuses must not fail a finished sweep: NaN verdicts, a note."""
    import theory
    from linsim.sweep.theory_map import analytic_boundary

    real = theory.critical_ratio

    def picky(eigenvalues, *args, **kwargs):
        if abs(np.log(eigenvalues[0] / eigenvalues[1])) > 0.5:  # refuse slope 1 only
            raise ValueError("refused for the test")
        return real(eigenvalues, *args, **kwargs)

    monkeypatch.setattr(theory, "critical_ratio", picky)
    b = analytic_boundary(PhaseSpec(TINY, {"c": [0.0, 1.0], "ratio": [0.5, 5.0]}))
    assert np.isfinite(b["analytic_critical_ratio"].values[0])
    assert np.isnan(b["analytic_critical_ratio"].values[1])
    assert np.isnan(b["analytic_is_ribbon"].values[1]).all()
    assert np.isfinite(b["analytic_is_ribbon"].values[0]).all()
    assert "slope = 1: refused for the test" in b.attrs["analytic_problems"]


def test_analytic_boundary_is_the_same_on_every_engine():
    """The critical ratios are engine tasks: two worker processes give the serial values exactly."""
    from linsim.parallel import get_engine
    from linsim.sweep.theory_map import analytic_boundary

    spec = PhaseSpec(TINY, {"c": [0.0, 0.7, 1.4], "ratio": [0.5, 5.0]})
    serial = analytic_boundary(spec, fine_values=[0.3, 1.1])
    procs = analytic_boundary(spec, fine_values=[0.3, 1.1], engine=get_engine("process", 2))
    for name in ("analytic_critical_ratio", "boundary_critical_ratio", "analytic_is_ribbon"):
        np.testing.assert_array_equal(procs[name].values, serial[name].values)
