"""Sweeps under real conditions: scripts without a __main__ guard, a shadowing theory.py, sweeps
whose cells all fail, interrupts (no processes left, finished cells kept), resume, bitwise
equality across engines and worker counts, and replicates."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _process_tree import alive, descendants

from linsim.ensemble import EnsembleConfig
from linsim.sweep import (PhaseSpec, SweepFailedError, SweepInterrupted, cells_folder, run_cell, run_phase)
from linsim.sweep import runner as runner_module
from linsim.storage import read_netcdf

TINY = EnsembleConfig(n_samples=40, dim=8, n_classes=3, n_runs=3, n_checkpoints=4, steps=50, init_scale=0.01)
TINY_REPR = ("EnsembleConfig(n_samples=40, dim=8, n_classes=3, n_runs=3, n_checkpoints=4, steps=50, "
             "init_scale=0.01)")
ROOT = Path(__file__).resolve().parents[1]


def _run_script(tmp_path, body, timeout=240):
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _data_equal(a, b, skip=("seconds",)):
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in a.data_vars:
        if name in skip:
            continue
        assert a[name].dtype == b[name].dtype or a[name].dtype.kind == b[name].dtype.kind == "U", name
        assert np.array_equal(a[name].values, b[name].values, equal_nan=a[name].dtype.kind == "f"), name


RBF_REPR = ("EnsembleConfig(model='kernel', kernel='rbf', n_samples=160, dim=40, n_classes=5, n_runs=12, "
            "n_checkpoints=16, steps=1000, init_scale=0.01)")


def test_script_without_main_guard_runs_on_workers_with_the_serial_bits(tmp_path):
    # A script without a __main__ guard used to crash with BrokenProcessPool.  Its kernel RBF
    # cells are of the size at which multi-threaded BLAS in the main process changed the results
    # by 4e-12 against single-threaded workers: the two-worker file must equal the serial run.
    res = _run_script(tmp_path, f"""
        from linsim.ensemble import EnsembleConfig
        from linsim.sweep import PhaseSpec, run_phase
        spec = PhaseSpec({RBF_REPR}, {{"c": [0.2, 1.0], "ratio": [50.0]}}, root_seed=3)
        ds = run_phase(spec, n_workers=2, progress=False, out="two.nc")   # no __main__ guard on purpose
        print("STATUS", ds["status"].values.tolist())
    """)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("STATUS") == 1  # the script ran once: workers do not re-run it
    assert "STATUS [['ok'], ['ok']]" in res.stdout
    base = eval(RBF_REPR)
    serial = run_phase(PhaseSpec(base, {"c": [0.2, 1.0], "ratio": [50.0]}, root_seed=3), n_workers=1,
                       progress=False)
    _data_equal(serial, read_netcdf(tmp_path / "two.nc"))


@pytest.mark.parametrize("shadow", ["theory.py", "theory/__init__.py"])
def test_a_shadowing_theory_module_is_named(tmp_path, shadow):
    # a module and a package called theory: code of the user's that linsim must not replace
    (tmp_path / shadow).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / shadow).write_text("x = 1  # the user's own notes\n")
    res = _run_script(tmp_path, f"""
        from linsim.sweep import PhaseSpec, run_phase
        from linsim.ensemble import EnsembleConfig
        run_phase(PhaseSpec({TINY_REPR}, {{"ratio": [0.5, 5.0]}}), n_workers=1, progress=False)
    """)
    assert res.returncode != 0
    named = str(tmp_path / shadow) if shadow.endswith(".py") else str(tmp_path / "theory")
    assert "TheoryShadowedError" in res.stderr and named in res.stderr and "shadows" in res.stderr, \
        res.stderr[-2000:]


def test_a_plain_folder_called_theory_does_not_stop_a_sweep(tmp_path):
    # a folder without __init__.py is a namespace package that holds no code; in an editable
    # install it used to win over linsim's theory package (found by an import hook), and a
    # bare `pytest` failed the same way on the suite's own tests/theory folder
    (tmp_path / "theory").mkdir()
    (tmp_path / "theory" / "notes.txt").write_text("the user's own notes\n")
    res = _run_script(tmp_path, """
        import linsim.sweep
        import theory  # after linsim: the package, not the folder
        from linsim.sweep.cells import logit_scale  # what a cell calls (cells fail without theory)
        from types import SimpleNamespace
        print("RMS", logit_scale(SimpleNamespace(outputs=[[1.0, -1.0]]))[0], theory.__file__)
    """)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"RMS 1.0 {ROOT / 'theory' / '__init__.py'}" in res.stdout, res.stdout


def test_a_sweep_whose_cells_all_fail_raises():
    spec = PhaseSpec(TINY, {"c": [-1.0, -2.0]})
    with pytest.raises(SweepFailedError, match="all 2 cells .* failed.*slope") as info:
        run_phase(spec, n_workers=1, progress=False)
    assert list(info.value.dataset["status"].values) == ["failed", "failed"]


def test_interrupt_keeps_finished_cells_and_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    spec = PhaseSpec(TINY, {"c": [0.0, 0.5, 1.0], "ratio": [0.5, 5.0]}, root_seed=5)
    full = run_phase(spec, n_workers=1, progress=False, out=tmp_path / "full.nc")
    assert not cells_folder(tmp_path / "full.nc").exists()  # the store is removed at the end
    _data_equal(full, read_netcdf(tmp_path / "full.nc"))

    out = tmp_path / "part.nc"
    real_write = runner_module.write_cell
    written = []

    def write_then_interrupt(*args, **kwargs):
        path = real_write(*args, **kwargs)
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(runner_module, "write_cell", write_then_interrupt)
    with pytest.raises(SweepInterrupted) as info:
        run_phase(spec, n_workers=1, progress=False, out=out)
    partial = info.value.dataset
    assert (partial["status"].values == "ok").sum() == 2 and (partial["status"].values == "missing").sum() == 4
    assert not out.exists() and len(list(cells_folder(out).glob("cell-*.nc"))) == 2
    monkeypatch.setattr(runner_module, "write_cell", real_write)

    calls = []
    real_task = runner_module._cell_task
    monkeypatch.setattr(runner_module, "_cell_task", lambda item: calls.append(1) or real_task(item))
    resumed = run_phase(spec, n_workers=1, progress=False, out=out, resume=True)
    assert len(calls) == 4  # only the missing cells were computed
    _data_equal(full, resumed)
    _data_equal(full, read_netcdf(out))
    # a finished file is returned as is by a second resume
    calls.clear()
    again = run_phase(spec, n_workers=1, progress=False, out=out, resume=True)
    assert calls == [] and again.attrs["sweep_fingerprint"] == full.attrs["sweep_fingerprint"]


def test_resume_refuses_the_cells_of_another_sweep(tmp_path, monkeypatch):
    spec = PhaseSpec(TINY, {"ratio": [0.5, 5.0]}, root_seed=5)
    monkeypatch.setattr(runner_module, "write_cell", _interrupting(runner_module.write_cell, 1))
    with pytest.raises(SweepInterrupted):
        run_phase(spec, n_workers=1, progress=False, out=tmp_path / "p.nc")
    other = PhaseSpec(TINY, {"ratio": [0.5, 5.0]}, root_seed=6)
    with pytest.raises(ValueError, match="different sweep"):
        run_phase(other, n_workers=1, progress=False, out=tmp_path / "p.nc", resume=True)
    with pytest.raises(ValueError, match="needs out="):
        run_phase(other, n_workers=1, progress=False, resume=True)


def test_resume_never_overwrites_the_finished_file_of_another_sweep(tmp_path):
    out = tmp_path / "done.nc"
    run_phase(PhaseSpec(TINY, {"ratio": [0.5, 5.0]}, root_seed=5), n_workers=1, progress=False, out=out)
    before = out.read_bytes()
    other = PhaseSpec(TINY, {"ratio": [0.5, 5.0]}, root_seed=6)
    with pytest.raises(ValueError, match="holds a different sweep"):
        run_phase(other, n_workers=1, progress=False, out=out, resume=True)
    assert out.read_bytes() == before


def _interrupting(fn, after):
    count = []

    def wrapped(*a, **k):
        out = fn(*a, **k)
        count.append(1)
        if len(count) >= after:
            raise KeyboardInterrupt
        return out

    return wrapped


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_a_sweep_promptly_leaving_no_processes(tmp_path):
    # (SIGINT on the pool: tests/test_parallel.py; KeyboardInterrupt in run_phase: the resume test)
    sig = signal.SIGTERM
    # Two quick cells, then cells that take long (steps), so that the signal arrives while the
    # workers are busy and after two cells were kept.
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent(f"""
        import dataclasses
        from linsim.ensemble import EnsembleConfig
        from linsim.sweep import PhaseSpec, run_phase
        base = dataclasses.replace({TINY_REPR}, model="two_layer", n_samples=120, dim=30,
                                   n_checkpoints=3, hidden=40)
        spec = PhaseSpec(base, {{"T": [10, 20, 300000, 400000, 500000, 600000]}})
        run_phase(spec, n_workers=2, progress=False, out="phase.nc")
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while len(descendants(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = descendants(proc.pid)
    assert len(kids) >= 2, "the workers did not start"
    store = cells_folder(tmp_path / "phase.nc")
    while len(list(store.glob("cell-*.nc"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    t0 = time.monotonic()
    proc.send_signal(sig)
    proc.wait(30)
    assert time.monotonic() - t0 < 20, "shutdown waited for the pending cells"
    deadline = time.monotonic() + 10
    while alive(kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(kids) == [], f"processes left behind: {alive(kids)}"
    assert proc.returncode != 0
    assert not (tmp_path / "phase.nc").exists()
    assert len(list(store.glob("cell-*.nc"))) == 2, "the finished cells were not kept"
    assert not list(tmp_path.glob("**/*.tmp")), "a temporary file was left behind"


def test_replicates_average_independent_seeds():
    spec1 = PhaseSpec(TINY, {"ratio": [0.5, 20.0]}, root_seed=2)
    spec3 = dataclasses.replace(spec1, replicates=3)
    seeds = spec3.seeds()
    assert seeds.shape == (2, 3) and len(set(seeds.ravel())) == 6
    np.testing.assert_array_equal(seeds[:, 0], spec1.seeds()[:, 0])  # adding replicates keeps replicate 0
    ds = run_phase(spec3, n_workers=1, progress=False)
    assert ds["seed"].dims == ("scale_ratio", "replicate")
    for i in range(2):
        cells = [run_cell(spec3.cell_config((i,), s), spec3.criterion) for s in seeds[i]]
        stress = np.array([c.scalars["sim_stress_k"] for c in cells])
        ribbon = np.array([c.scalars["sim_is_ribbon"] for c in cells])
        assert ds["sim_stress_k"].values[i] == pytest.approx(stress.mean(), rel=1e-13)
        assert ds["sim_stress_k_std"].values[i] == pytest.approx(stress.std(ddof=1), rel=1e-10)
        assert ds["sim_is_ribbon_fraction"].values[i] == pytest.approx(ribbon.mean())
        assert bool(ds["sim_is_ribbon"].values[i]) == (ribbon.mean() > 0.5)
    assert ds["replicates_ok"].values.tolist() == [3, 3]
    # the spread is real: different seeds give different ensembles
    assert np.all(ds["sim_stress_k_std"].values > 0)


def test_resume_recomputes_a_damaged_cell_file(tmp_path, monkeypatch):
    # with replicates: each (cell, replicate) is its own unit in the store
    spec = PhaseSpec(TINY, {"ratio": [0.5, 5.0, 50.0]}, root_seed=9, replicates=2)
    full = run_phase(spec, n_workers=1, progress=False)
    out = tmp_path / "p.nc"
    monkeypatch.setattr(runner_module, "write_cell", _interrupting(runner_module.write_cell, 2))
    with pytest.raises(SweepInterrupted):
        run_phase(spec, n_workers=1, progress=False, out=out)
    monkeypatch.undo()
    victim = sorted(cells_folder(out).glob("cell-*.nc"))[0]
    value = read_netcdf(victim, verify=False)["sim_stress_k"].values
    raw = victim.read_bytes()
    where = raw.find(np.float64(value).tobytes())
    assert where > 0
    victim.write_bytes(raw[:where] + np.float64(0.123).tobytes() + raw[where + 8:])  # 8 bytes overwritten
    with pytest.warns(RuntimeWarning, match="damaged sweep cell file"):
        resumed = run_phase(spec, n_workers=1, progress=False, out=out, resume=True)
    _data_equal(full, resumed)
