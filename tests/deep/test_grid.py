"""Grids: TOML expansion, the built-in grids, running with resume, kills, Ctrl-C, bad folders."""

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from linsim.deep.command import add_arguments, main, run
from linsim.deep.config import TrainConfig
from linsim.deep.grid import (builtin_grid_text, expand_grid, load_grid, result_path,
                              run_grid)
from linsim.deep.train import TrainResult, torch_threads, train
from linsim.storage import read_netcdf


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets: one intra-op thread is several times faster on a busy CPU (restored after)."""
    with torch_threads(1):
        yield

TINY = """
dataset = "digits"
n_train = 48
n_test = 16
steps = 4
n_checkpoints = 2
n_runs = 2
batch_size = 16
device = "cpu"
architecture = ["linear", "mlp"]
width = 0.25

[grid.sgd]
optimizer = "sgd"
lr = [0.05, 0.1]

[grid.adam]
optimizer = "adam"
lr = 0.001
"""


def _write(tmp_path, text, name="grid.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_expansion_is_a_product_per_subgrid_concatenated_in_order(tmp_path):
    entries = load_grid(_write(tmp_path, TINY))
    got = [(e.subgrid, e.config.architecture, e.config.optimizer, e.config.lr) for e in entries]
    assert got == [("sgd", "linear", "sgd", 0.05), ("sgd", "linear", "sgd", 0.1),
                   ("sgd", "mlp", "sgd", 0.05), ("sgd", "mlp", "sgd", 0.1),
                   ("adam", "linear", "adam", 0.001), ("adam", "mlp", "adam", 0.001)]
    assert all(e.config.n_train == 48 and e.config.width == 0.25 for e in entries)


def test_grid_without_subgrids_and_duplicates_listed_once():
    spec = {"dataset": "digits", "seed": [1, 2], "augment": [False, True],
            "dataset_options": [{}, {}]}
    assert len(expand_grid(spec)) == 4
    spec = {"dataset": "digits", "grid": {"a": {"lr": 0.1}, "b": {"lr": [0.1, 0.2]}}}
    assert [e.config.lr for e in expand_grid(spec)] == [0.1, 0.2]


@pytest.mark.parametrize("text, match", [
    ("dataset = 'digits'\nlrate = 0.1\n", "unknown TrainConfig field 'lrate'"),
    ("dataset = 'digits'\n[grid.fast]\nsteps = -3\n", "grid.fast.*steps"),
    ("dataset = 'digits'\nwidth = []\n", "empty list"),
    ("dataset = 'digits'\n[grid.x]\noptimizer = 'lion'\n", "grid.x.*valid: .*sgd"),
    ("dataset = 'digits'\nsteps = [1, 2\n", "not valid TOML"),
    ("dataset = 'digits'\n[other]\nlr = 1\n", "only dataset_options"),
])
def test_bad_grids_name_the_problem_and_the_place(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        load_grid(_write(tmp_path, text))


def test_default_grid_covers_the_study_factors():
    entries = load_grid()
    cfgs = [e.config for e in entries]
    assert {c.dataset for c in cfgs} == {"mnist1d"}
    # at least 4 families that each come in both widths (the study's factors in full product)
    assert len({c.architecture for c in cfgs if c.architecture != "linear"}) >= 4
    assert {c.optimizer for c in cfgs} == {"sgd", "nesterov", "adam"}
    assert len({c.batch_size for c in cfgs}) == 2
    assert {c.augment for c in cfgs} == {False, True}
    assert len({c.width for c in cfgs}) == 2
    assert min(c.n_runs for c in cfgs) >= 4
    # linear (W x) has no width: one width there, two for every other family (no duplicates)
    assert {c.width for c in cfgs if c.architecture == "linear"} == {1.0}
    assert all(len({c.width for c in cfgs if c.architecture == a}) == 2
               for a in {c.architecture for c in cfgs} - {"linear"})
    assert len(cfgs) == 4 * 2 * 3 * 2 * 2 + 3 * 2 * 2 + 8
    # initialization and weight decay are varied alone from one base, for the compare findings
    assert {c.init for c in cfgs} == {"default", "kaiming", "normal", "corner"}
    assert {c.weight_decay for c in cfgs} == {0.0, 0.001}
    gpu = [e.config for e in load_grid(builtin="gpu")]
    assert len({c.architecture for c in gpu}) >= 6 and min(c.n_runs for c in gpu) >= 10
    # the printed grid is the grid
    assert tomllib.loads(builtin_grid_text("small"))["dataset"] == "mnist1d"
    # every model of both grids builds on its data (checked without training)
    from linsim.deep.train import check_runnable

    seen = set()
    for c in cfgs + gpu:
        key = (c.architecture, c.width, c.augment, c.batch_size)
        if key not in seen:
            seen.add(key)
            check_runnable(c.replace(device="cpu"))


def test_run_writes_every_configuration_and_a_rerun_skips_them(tmp_path):
    entries = load_grid(_write(tmp_path, TINY))
    out = tmp_path / "out"
    s1 = run_grid(entries, out, progress=False, log=None)
    assert (s1.n_trained, s1.n_skipped) == (6, 0)
    files = sorted(out.glob("*.nc"))
    assert len(files) == 6 and files == sorted(s1.files)
    manifest = json.loads((out / "index.json").read_text())
    assert manifest["n_complete"] == 6
    assert {c["file"] for c in manifest["configs"]} == {f.name for f in files}
    # a file holds exactly what train() returns, with every hyper-parameter as an attribute
    e = entries[3]
    tr, te, div, params = TrainResult.load_trajectories(result_path(out, e.config))
    fresh = train(e.config)
    np.testing.assert_array_equal(tr.outputs, fresh.train.outputs)
    np.testing.assert_array_equal(te.outputs, fresh.test.outputs)
    np.testing.assert_array_equal(tr.arrays["loss"], fresh.train.arrays["loss"])
    assert tr.outputs.dtype == np.float32 and params["lr"] == e.config.lr
    back = TrainResult.load(result_path(out, e.config))
    assert back.config.config_id() == e.config.config_id() and back.config == e.config
    np.testing.assert_array_equal(back.test.arrays["error"], fresh.test.arrays["error"])
    ds = read_netcdf(result_path(out, e.config))
    assert ds.attrs["param_optimizer"] == "sgd" and ds.attrs["param_architecture"] == "mlp"
    assert "history" in ds.attrs and ds.attrs["config_id"] == e.config.config_id()
    import h5py   # the logits above came back bit-exact from a gzip-compressed variable

    with h5py.File(result_path(out, e.config), "r") as fh:
        assert fh["train_outputs"].compression == "gzip" and fh["train_inputs"].compression == "gzip"
    mtimes = [f.stat().st_mtime_ns for f in files]
    s2 = run_grid(entries, out, progress=False, log=None)
    assert (s2.n_trained, s2.n_skipped) == (0, 6)
    assert [f.stat().st_mtime_ns for f in files] == mtimes


def test_verify_retrains_a_corrupted_file(tmp_path):
    entries = load_grid(_write(tmp_path, TINY))[:2]
    out = tmp_path / "out"
    run_grid(entries, out, progress=False, log=None, compress=None)  # raw bytes, to flip some
    victim = result_path(out, entries[0].config)
    raw = bytearray(victim.read_bytes())
    ds = read_netcdf(victim)
    # flip bytes of the logits in place: find the float32 payload and perturb it
    payload = ds["train_outputs"].values.astype(np.float32).tobytes()[:64]
    pos = bytes(raw).find(payload)
    assert pos > 0
    raw[pos:pos + 8] = b"\x00" * 8
    victim.write_bytes(bytes(raw))
    msgs = []
    s = run_grid(entries, out, progress=False, verify=True, log=msgs.append)
    assert s.n_trained == 1 and any("corrupt" in m for m in msgs)
    assert victim.with_name(victim.name + ".corrupt").is_file()
    read_netcdf(victim)  # the retrained file is sound


def test_a_diverging_configuration_is_recorded_and_the_grid_goes_on(tmp_path):
    text = TINY.replace('[grid.sgd]\noptimizer = "sgd"\nlr = [0.05, 0.1]',
                        '[grid.sgd]\noptimizer = "sgd"\nloss = "mse"\nsteps = 40\nlr = [1e4, 0.1]')
    entries = load_grid(_write(tmp_path, text))
    msgs = []
    s = run_grid(entries, tmp_path / "out", progress=False, log=msgs.append)
    assert s.n_trained == len(entries) and s.n_diverged_runs >= 2
    manifest = json.loads((tmp_path / "out" / "index.json").read_text())
    first = manifest["configs"][0]
    assert first["n_diverged"] == 2 and all(d >= 0 for d in first["diverged_step"])
    assert any("diverged" in m for m in msgs)
    tr, _, div, _ = TrainResult.load_trajectories(tmp_path / "out" / first["file"])
    assert tr.n_runs == 0 and np.all(div >= 0)


def test_unwritable_output_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    grid = _write(tmp_path, TINY)
    args = add_arguments(__import__("argparse").ArgumentParser()).parse_args(
        [str(grid), "--out", str(blocker / "sub"), "--no-progress"])
    t = time.perf_counter()
    assert run(args) == 2
    assert time.perf_counter() - t < 5
    assert "output folder" in capsys.readouterr().err


def test_bad_run_options_are_refused_not_clamped(tmp_path, capsys):
    entries = load_grid(_write(tmp_path, TINY))
    with pytest.raises(ValueError, match="group_runs must be an integer >= 0; got -1"):
        run_grid(entries, tmp_path / "o", group_runs=-1, progress=False, log=None)
    with pytest.raises(ValueError, match="compress must be a gzip level 1..9"):
        run_grid(entries, tmp_path / "o", compress=12, progress=False, log=None)
    grid = str(_write(tmp_path, TINY))
    assert main([grid, "--group-runs", "-2", "--out", str(tmp_path / "o")]) == 2
    assert "--group-runs must be >= 0; got -2" in capsys.readouterr().err
    assert main([grid, "--compress", "10", "--out", str(tmp_path / "o")]) == 2
    assert not list((tmp_path / "o").glob("*.nc"))


def test_print_default_grid_and_dry_run(tmp_path, capsys):
    assert main(["--print-default-grid"]) == 0
    assert tomllib.loads(capsys.readouterr().out) == tomllib.loads(builtin_grid_text())
    assert main([str(_write(tmp_path, TINY)), "--dry-run", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "6 configurations, 12 runs" in out and not (tmp_path / "o").exists()
    assert main([str(tmp_path / "missing.toml")]) == 2


SLOW_GRID = """
dataset = "digits"
n_train = 100
n_test = 20
steps = 20
n_checkpoints = 4
n_runs = 2
batch_size = 20
device = "cpu"
architecture = "mlp"
width = 0.25
seed = [0, 1, 2]
"""

# Runs `linsim train` in a child process that pauses at a chosen point of the SECOND
# configuration (writing a marker file first), so that the parent signals it exactly there
# instead of racing a timer: "rename" pauses after the result's temporary file is written and
# flushed but before it is renamed into place (the worst moment for a kill), "train" pauses
# as the configuration starts training.
_DRIVER = """
import os, sys, time
from pathlib import Path

marker, pause, argv = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
seen = []

def pause_here():
    marker.write_text(str(os.getpid()))
    # short sleeps: a signal the kernel delivers to another (torch) thread is only handled
    # when the main thread runs bytecode again, which one long sleep would delay by minutes
    for _ in range(1200):
        time.sleep(0.1)

if pause == "rename":
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(".nc"):
            seen.append(dst)
            if len(seen) == 2:
                pause_here()
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
else:
    import linsim.deep.train
    train_module = sys.modules["linsim.deep.train"]   # linsim.deep.train is also the function
    real_group = train_module.train_group

    def train_group(*args, **kwargs):
        seen.append(1)
        if len(seen) == 2:
            pause_here()
        return real_group(*args, **kwargs)

    train_module.train_group = train_group

from linsim.deep.command import main
sys.exit(main(argv))
"""


def _spawn_paused(tmp_path, grid, out, pause):
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    marker = tmp_path / "paused"
    # a shell that starts a job in the background hands it SIGINT ignored, and a child that
    # inherits an ignored SIGINT never sees Ctrl-C: give the child the default disposition,
    # as a terminal would
    proc = subprocess.Popen([sys.executable, str(driver), str(marker), pause, str(grid),
                             "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while not marker.exists():
        if proc.poll() is not None or time.time() - t0 > 120:
            proc.kill()
            raise AssertionError(f"the child never paused: {proc.communicate()}")
        time.sleep(0.02)
    return proc


@pytest.mark.slow
def test_sigkill_mid_write_loses_at_most_one_configuration(tmp_path):
    """Killed after the 2nd result is written to its temporary file but before the rename."""
    grid = _write(tmp_path, SLOW_GRID)
    out = tmp_path / "out"
    proc = _spawn_paused(tmp_path, grid, out, "rename")
    try:
        assert len(list(out.glob("*.nc"))) == 1 and len(list(out.glob(".*.nc.*.tmp"))) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    done = list(out.glob("*.nc"))
    assert len(done) == 1 and (out / ".lock").exists()   # nothing cleaned up: it was a kill
    read_netcdf(done[0])  # a file with its final name is complete and uncorrupted
    entries = load_grid(grid)
    s = run_grid(entries, out, progress=False, log=None)
    assert s.n_skipped == 1 and s.n_trained == 2
    assert sorted(out.glob("*.nc")) == sorted(result_path(out, e.config) for e in entries)
    assert not list(out.glob(".*.tmp")) and not (out / ".lock").exists()
    manifest = json.loads((out / "index.json").read_text())
    assert manifest["n_complete"] == 3
    assert all(c["n_diverged"] == 0 and c["diverged_step"] == [-1, -1] for c in manifest["configs"])


@pytest.mark.slow
@pytest.mark.parametrize("sig, pause", [(signal.SIGINT, "train"), (signal.SIGTERM, "rename")])
def test_ctrl_c_and_sigterm_stop_cleanly_with_a_message(tmp_path, sig, pause):
    grid = _write(tmp_path, SLOW_GRID)
    out = tmp_path / "out"
    proc = _spawn_paused(tmp_path, grid, out, pause)
    try:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted; 1 of 3 configurations are complete" in err and "resume" in err
    assert "Traceback" not in err
    assert not list(out.glob(".*.tmp")) and not (out / ".lock").exists()
    assert [f.name for f in out.glob("*.nc")] == [result_path(out, load_grid(grid)[0].config).name]
    read_netcdf(next(out.glob("*.nc")))
    assert json.loads((out / "index.json").read_text())["n_complete"] == 1


def test_a_configuration_that_cannot_run_is_refused_before_any_training(tmp_path):
    text = TINY + '\n[grid.bad]\ndataset = "synthetic"\ndataset_options = {d = 8}\narchitecture = "cnn"\n'
    entries = load_grid(_write(tmp_path, text))
    with pytest.raises(ValueError, match=r"grid.bad entry 0: .*cnn.*\(8,\)"):
        run_grid(entries, tmp_path / "out", progress=False, log=None)
    assert not list((tmp_path / "out").glob("*.nc"))


def test_grouped_grid_writes_the_same_results(tmp_path):
    text = 'seed = [0, 1]\ndtype = "float64"\n' + TINY
    entries = [e for e in load_grid(_write(tmp_path, text)) if e.subgrid == "sgd"]
    a = run_grid(entries, tmp_path / "one", progress=False, log=None)
    b = run_grid(entries, tmp_path / "grouped", progress=False, log=None, group_runs=64)
    assert a.n_trained == b.n_trained == len(entries) == 8
    manifest = json.loads((tmp_path / "grouped" / "index.json").read_text())
    assert max(c["group_size"] for c in manifest["configs"]) == 4   # 2 lrs x 2 seeds per arch
    for e in entries:
        ta, _, _, _ = TrainResult.load_trajectories(result_path(tmp_path / "one", e.config))
        tb, _, _, _ = TrainResult.load_trajectories(result_path(tmp_path / "grouped", e.config))
        np.testing.assert_allclose(tb.outputs, ta.outputs, rtol=1e-10, atol=1e-12)
