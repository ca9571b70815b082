"""The linsim command: help, flags from the registries, validation before computing, outputs.

Validation tests replace ``linsim.sweep.run_phase`` by a function that fails the test if it
is called: every refusal must happen before the first cell is computed.
"""

import json
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import xarray as xr

import linsim.sweep
from linsim import __version__
from linsim.cli import build_parser, main, parse_axis

TINY = ["--n-samples", "24", "--dim", "6", "--n-classes", "3", "--n-runs", "3", "--n-checkpoints", "4",
        "--steps", "50"]


class Computed(Exception):
    """Raised by the stand-in run_phase: the CLI got as far as computing."""


@pytest.fixture
def no_compute(monkeypatch):
    calls = []

    def fake_run_phase(spec, n_workers=None, progress=True, theory_resolution=0, *, engine=None,
                       scheduler=None, out=None, resume=False, replicates=None, command=None):
        calls.append(dict(spec=spec, n_workers=n_workers, theory_resolution=theory_resolution,
                          scheduler=scheduler, out=out, resume=resume, replicates=replicates, command=command))
        raise Computed

    monkeypatch.setattr(linsim.sweep, "run_phase", fake_run_phase)
    return calls


def phase(tmp_path, *extra):
    return ["phase", *TINY, "--workers", "1", "--no-progress", "--out", str(tmp_path / "out"), *extra]


# ----------------------------------------------------------------------------- help
def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out
    assert main([]) == 0
    text = capsys.readouterr().out
    assert "ribbon" in text and "phase" in text
    assert "linsim COMMAND --help" in text and "EnsembleConfig" in text  # says where the flags are


def test_top_level_help_imports_no_command():
    code = ("import sys\nfrom linsim.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('linsim.cli.phase', 'linsim.cli.ribbon', 'linsim.sweep',"
            " 'torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_phase_and_ribbon_document_their_defaults(capsys):
    for cmd, n_runs in (("ribbon", 16), ("phase", 12)):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"R, number of training runs (independent initial weights) (default: {n_runs})" in text
        assert "defaults:" in text and ("linsim phase" if cmd == "ribbon" else "linsim ribbon") in text
    with pytest.raises(SystemExit):
        main(["phase", "--help"])
    assert "ROOT seed" in " ".join(capsys.readouterr().out.split())


def _flag(parser, option):
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for p in sub.values():
        for action in p._actions:
            if option in action.option_strings:
                return action
    raise AssertionError(option)


def test_every_ensemble_flag_is_described_and_choices_come_from_the_registries():
    import dataclasses

    from linsim import runners
    from linsim.data import INPUT_MODES, SPECTRUM_KINDS
    from linsim.ensemble import EnsembleConfig
    from linsim.solvers.kernel import KERNELS

    parser = build_parser("ribbon")
    for f in dataclasses.fields(EnsembleConfig):
        action = _flag(parser, "--" + f.name.replace("_", "-"))
        assert len(action.help.split("(default")[0].strip()) > 10, f.name
    assert tuple(_flag(parser, "--model").choices) == runners.models()
    assert set(_flag(parser, "--model").choices) == {"linear", "kernel", "softmax", "two_layer"}
    assert tuple(_flag(parser, "--optimizer").choices) == runners.optimizers()
    assert tuple(_flag(parser, "--kernel").choices) == tuple(KERNELS)
    assert tuple(_flag(parser, "--spectrum").choices) == tuple(SPECTRUM_KINDS)
    assert tuple(_flag(parser, "--data-mode").choices) == tuple(INPUT_MODES)


def test_a_new_runner_becomes_a_model_choice():
    from linsim import runners

    runners.register_runner(runners.Runner("toy_model", "gd", run=lambda problem: None))
    try:
        assert "toy_model" in _flag(build_parser("phase"), "--model").choices
    finally:
        runners.unregister_runner("toy_model", "gd")
    assert "toy_model" not in _flag(build_parser("phase"), "--model").choices


# ----------------------------------------------------------------------------- values
def test_integral_floats_accepted_fractions_refused(capsys):
    args = build_parser("ribbon").parse_args(["ribbon", "--steps", "1e4", "--n-runs", "8.0"])
    assert args.cfg_steps == 10000 and isinstance(args.cfg_steps, int) and args.cfg_n_runs == 8
    with pytest.raises(SystemExit) as exc:
        build_parser("ribbon").parse_args(["ribbon", "--steps", "1.5"])
    assert exc.value.code == 2 and "--steps" in capsys.readouterr().err


def test_parse_axis():
    name, v = parse_axis("c=lin:0:2:5")
    assert name == "slope"
    np.testing.assert_allclose(v, [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(parse_axis("ratio=log:0.1:10:3")[1], [0.1, 1, 10])
    assert parse_axis("n-runs=2,4")[0] == "n_runs"
    assert parse_axis("kernel-bandwidth=1,2")[0] == "kernel_bandwidth"
    np.testing.assert_array_equal(parse_axis("T=1e2,1e3")[1], [100, 1000])
    for bad, why in (("c", "NAME="), ("c=log:0:1:3", "positive"), ("c=lin:0:1", "START:STOP:NUM"),
                     ("c=a,b", "number"), ("bogus=1,2", "unknown"), ("T=10.5,100", "integers"),
                     ("c=1,,2", "empty"), ("c=1,1", "repeats"), ("c=lin:0:1:0", "NUM")):
        with pytest.raises(Exception, match=why):
            parse_axis(bad)


def test_log_spaced_integer_axes_are_rounded():
    name, v = parse_axis("T=log:10:1000:4")
    assert name == "steps"
    np.testing.assert_array_equal(v, np.rint(np.geomspace(10, 1000, 4)))
    np.testing.assert_array_equal(v, [10, 46, 215, 1000])
    with pytest.raises(Exception, match="repeated values"):
        parse_axis("R=log:2:3:5")  # 2, 2.2, 2.4, 2.7, 3 -> 2, 2, 2, 3, 3


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("flags, named", [
    (["--kernel", "rbf"], "--kernel"),
    (["--kernel-bandwidth", "2"], "--kernel-bandwidth"),
    (["--model", "kernel", "--kernel", "linear", "--kernel-bandwidth", "2"], "--kernel-bandwidth"),
    (["--hidden", "10"], "--hidden"),
    (["--batch-size", "4"], "--batch-size"),
    (["--model", "softmax", "--batch-size", "4"], "--batch-size"),
])
def test_flags_that_do_nothing_are_refused(tmp_path, capsys, flags, named):
    assert main(["ribbon", *TINY, *flags, "--no-figure", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert named in err and "does nothing" in err
    assert not (tmp_path / "ribbon.nc").exists()


def test_flags_that_apply_are_accepted(tmp_path, capsys):
    assert main(["ribbon", *TINY, "--model", "kernel", "--kernel", "rbf", "--kernel-bandwidth", "2",
                 "--no-figure", "--json", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["points"] > 0


def test_axis_sweeping_an_unused_field_is_refused(tmp_path, capsys, no_compute):
    assert main(phase(tmp_path, "--axis", "hidden=10,20", "--axis", "c=0,1")) == 2
    assert "--axis hidden" in capsys.readouterr().err and not no_compute


def test_flag_overridden_by_an_axis_is_refused(tmp_path, capsys, no_compute):
    args = phase(tmp_path, "--axis", "T=10,100", "--axis", "c=0,1")  # TINY sets --steps
    assert main(args) == 2
    assert "--steps" in capsys.readouterr().err and not no_compute
    argv = ["phase", "--teacher-scale", "2", "--axis", "ratio=1,10", "--axis", "c=0,1", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--teacher-scale" in capsys.readouterr().err and not no_compute


def test_repeated_axis_is_refused(tmp_path, capsys, no_compute):
    with pytest.raises(SystemExit) as exc:
        main(phase(tmp_path, "--axis", "c=0,1", "--axis", "slope=0,2"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "given twice" in err and "c=0,1" in err and "slope=0,2" in err
    assert not no_compute


@pytest.mark.parametrize("workers", ["0", "-2", "1.5"])
def test_non_positive_workers_are_refused(tmp_path, capsys, no_compute, workers):
    with pytest.raises(SystemExit) as exc:
        main(["phase", "--workers", workers, "--out", str(tmp_path)])
    assert exc.value.code == 2 and "--workers" in capsys.readouterr().err and not no_compute


@pytest.mark.parametrize("extra, named", [
    (["--theory-resolution", "1"], "--theory-resolution"),
    (["--theory-resolution", "-3"], "--theory-resolution"),
    (["--axis", "lambda_1=0,2", "--axis", "c=0,1"], "the cell lambda_1 = 0, slope = 0 is invalid"),
    (["--axis", "c=-1,1", "--axis", "ratio=1,10"], "slope"),
    (["--axis", "c=0,1", "--axis", "ratio=1,10", "--axis", "lambda_1=1,2", "--theory-resolution", "5"], "two axes"),
    (["--model", "two_layer", "--axis", "c=0,1", "--axis", "ratio=1,10", "--theory-resolution", "5"],
     "two_layer"),
    (["--chi", "1.5"], "--chi"),
    (["--scheduler", "nonsense"], "--scheduler"),
])
def test_bad_sweeps_are_refused_before_computing(tmp_path, capsys, no_compute, extra, named):
    try:
        status = main(phase(tmp_path, *extra))
    except SystemExit as exc:
        status = exc.code
    assert status == 2
    assert named in capsys.readouterr().err
    assert not no_compute, "the sweep started before the arguments were checked"


def test_output_folder_is_checked_before_computing(tmp_path, capsys, no_compute):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["phase", "--out", str(blocker)]) == 2
    assert "--out" in capsys.readouterr().err and not no_compute


def test_defaults_reach_the_sweep(tmp_path, no_compute):
    with pytest.raises(Computed):
        main(["phase", "--out", str(tmp_path / "o"), "--seed", "7"])
    call = no_compute[0]
    spec = call["spec"]
    assert spec.shape == (12, 12) and list(spec.axes) == ["slope", "scale_ratio"]
    assert spec.base.n_runs == 12 and spec.base.init_scale == 0.01
    assert spec.root_seed == 7  # --seed is the root of the cell seeds, not ignored
    assert call["theory_resolution"] == 24
    assert call["out"] == tmp_path / "o" / "phase.nc"
    assert call["command"].startswith("linsim phase")


def test_seed_changes_the_cell_seeds(tmp_path, no_compute):
    for seed in ("1", "2"):
        with pytest.raises(Computed):
            main(phase(tmp_path, "--axis", "c=0,1", "--seed", seed))
    a, b = (c["spec"].seeds() for c in no_compute)
    assert not np.array_equal(a, b)


def test_models_without_theory_default_to_no_fine_map(tmp_path, no_compute):
    with pytest.raises(Computed):
        main(phase(tmp_path, "--model", "two_layer", "--axis", "c=0,1", "--axis", "ratio=1,10"))
    assert no_compute[0]["theory_resolution"] == 0


def test_replicates_resume_scheduler_pass_through(tmp_path, no_compute):
    with pytest.raises(Computed):
        main(phase(tmp_path, "--axis", "c=0,1", "--replicates", "3", "--resume", "--scheduler", "tcp://h:1"))
    call = no_compute[0]
    assert (call["replicates"], call["resume"], call["scheduler"]) == (3, True, "tcp://h:1")


def test_all_cells_failed_exits_non_zero(tmp_path, capsys, monkeypatch):
    def failing(spec, *a, **k):
        raise linsim.sweep.SweepFailedError("all 2 cells of the sweep failed: RuntimeError: boom", None)

    monkeypatch.setattr(linsim.sweep, "run_phase", failing)
    assert main(phase(tmp_path, "--axis", "c=0,1")) == 1
    assert "boom" in capsys.readouterr().err


def test_an_unreachable_scheduler_exits_1(tmp_path, capsys, monkeypatch):
    def unreachable(spec, *a, scheduler=None, **k):
        raise OSError("Timed out trying to connect to tcp://h:1")

    monkeypatch.setattr(linsim.sweep, "run_phase", unreachable)
    assert main(phase(tmp_path, "--axis", "c=0,1", "--scheduler", "tcp://h:1")) == 1
    assert "Timed out" in capsys.readouterr().err


def test_scheduler_without_the_dask_extra_names_the_install_line(tmp_path, capsys, no_dask):
    # the engine is opened (and the missing extra named) before any cell is computed
    args = [a for a in phase(tmp_path, "--axis", "c=0,1", "--scheduler", "tcp://127.0.0.1:1")]
    i = args.index("--workers")
    del args[i:i + 2]  # --workers with --scheduler is refused for its own reason
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pip install 'linsim[dask]'" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "phase.nc").exists()


def test_ribbon_device_is_checked(tmp_path, capsys):
    import torch

    for bad in ("toaster", *(() if torch.cuda.is_available() else ("cuda",))):
        with pytest.raises(SystemExit) as exc:
            main(["ribbon", *TINY, "--device", bad, "--out", str(tmp_path)])
        assert exc.value.code == 2 and "--device" in capsys.readouterr().err
    assert main(["ribbon", *TINY, "--device", "cpu", "--no-figure", "--json", "--out", str(tmp_path)]) == 0


def test_bad_config_exits_with_message(tmp_path, capsys):
    assert main(["ribbon", *TINY, "--init-scale", "-1", "--out", str(tmp_path)]) == 2
    assert "init_scale" in capsys.readouterr().err


# ----------------------------------------------------------------------------- outputs
def test_ribbon_json_files_and_provenance(tmp_path, capsys):
    from linsim.storage import read_netcdf
    from linsim.trajectory import Trajectory

    assert main(["ribbon", *TINY, "--out", str(tmp_path), "--json", "--n-components", "6"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == 3 * out["checkpoints"]
    lam = np.array(out["eigenvalues"])
    assert lam.size == 6 and np.all(np.diff(np.abs(lam)) <= 0)
    assert out["n_negative"] == int(np.sum(lam < 0))
    chi = np.array(out["explained_stress"])
    assert np.all(np.diff(chi) >= 0) and 0 < chi[-1] <= 1
    ds = read_netcdf(tmp_path / "ribbon.nc")  # verifies the checksums
    np.testing.assert_allclose(ds["eigenvalues"].values, lam)
    assert ds.attrs["Conventions"].startswith("CF") and "linsim ribbon" in ds.attrs["history"]
    assert all("long_name" in ds[v].attrs for v in ds.data_vars)
    traj = Trajectory.load(tmp_path / "trajectory.nc")
    assert traj.n_runs == 3
    assert (tmp_path / "ribbon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ribbon_text_output(tmp_path, capsys):
    assert main(["ribbon", *TINY, "--out", str(tmp_path), "--no-figure"]) == 0
    text = capsys.readouterr().out
    assert "explained stress" in text and "negative eigenvalues" in text and "k_chi(0.9)" in text


def test_no_stale_figure_beside_new_data(tmp_path, capsys, monkeypatch):
    old = tmp_path / "ribbon.png"
    old.write_bytes(b"an old figure")
    assert main(["ribbon", *TINY, "--out", str(tmp_path), "--no-figure"]) == 0
    assert not old.exists() and (tmp_path / "ribbon.nc").exists()
    assert "removed the old ribbon.png" in capsys.readouterr().out

    import linsim.plotting

    def broken(*a, **k):
        raise RuntimeError("cannot draw")

    old.write_bytes(b"an old figure")
    monkeypatch.setattr(linsim.plotting, "ribbon_figure", broken)
    assert main(["ribbon", *TINY, "--out", str(tmp_path)]) == 1
    assert "cannot draw" in capsys.readouterr().err
    assert not old.exists() and (tmp_path / "ribbon.nc").exists()


def test_phase_keeps_the_old_figure_only_while_it_matches_the_data(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "phase.nc").write_bytes(b"old data")
    (out / "phase.png").write_bytes(b"old figure")
    seen = []

    def replaces_then_fails(spec, *a, out=None, **k):
        seen.append(sorted(p.name for p in out.parent.iterdir() if not p.name.startswith(".")))
        out.write_bytes(b"new data, longer than the old")
        raise KeyboardInterrupt

    def fails_before_writing(spec, *a, out=None, **k):
        seen.append(sorted(p.name for p in out.parent.iterdir() if not p.name.startswith(".")))
        raise Computed

    monkeypatch.setattr(linsim.sweep, "run_phase", fails_before_writing)
    with pytest.raises(Computed):
        main(phase(tmp_path, "--axis", "c=0,1"))
    assert seen[-1] == ["phase.nc"]  # out of sight while the data may be replaced
    assert (out / "phase.png").read_bytes() == b"old figure"  # data untouched: figure back

    monkeypatch.setattr(linsim.sweep, "run_phase", replaces_then_fails)
    assert main(phase(tmp_path, "--axis", "c=0,1")) == 130
    assert sorted(p.name for p in out.iterdir()) == ["phase.nc"]  # new data: the old figure is gone


def test_cli_leaves_the_backend_alone(tmp_path):
    old = matplotlib.get_backend()
    matplotlib.use("template", force=True)
    try:
        assert main(["ribbon", *TINY, "--out", str(tmp_path), "--json"]) == 0
        assert matplotlib.get_backend() == "template"
        assert (tmp_path / "ribbon.png").exists()
    finally:
        matplotlib.use(old, force=True)


def test_phase_end_to_end(tmp_path, capsys):
    from linsim.storage import read_netcdf

    old = matplotlib.get_backend()
    matplotlib.use("template", force=True)
    try:
        args = phase(tmp_path, "--axis", "c=0,1", "--axis", "ratio=0.3,30", "--json", "--theory-resolution", "3")
        assert main(args) == 0
        assert matplotlib.get_backend() == "template"
    finally:
        matplotlib.use(old, force=True)
    out = json.loads(capsys.readouterr().out)
    assert {"agreement", "cells", "disagreements", "criterion", "root_seed"} <= set(out)
    assert out["cells"] == 4 and 0 <= out["agreement"] <= 1
    assert len(out["disagreements"]) == round(4 * (1 - out["agreement"]))
    ds = read_netcdf(tmp_path / "out" / "phase.nc")
    assert ds["sim_stress_k"].shape == (2, 2) and "fine_k_chi" in ds
    assert "linsim phase" in ds.attrs["history"]
    assert (tmp_path / "out" / "phase.png").read_bytes()[:4] == b"\x89PNG"


# ----------------------------------------------------------------------------- registry
def test_subcommands_plug_in_through_the_registry(tmp_path, monkeypatch, capsys):
    from linsim.cli import registry

    (tmp_path / "toy_command.py").write_text(
        '"""toy: a test subcommand."""\n'
        "def add_arguments(parser):\n    parser.add_argument('--times', type=int, default=1)\n"
        "def run(args):\n    print('toy ran', args.times)\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", registry._REGISTRY.copy())
    registry.register_subcommand(registry.Subcommand("toy", "toy_command", "a toy command"))
    registry.register_subcommand(registry.Subcommand("ghost", "no_such_package.command", "not installed"))
    assert main([]) == 0
    listing = capsys.readouterr().out
    assert "toy" in listing and "a toy command" in listing and "ghost" not in listing
    assert main(["toy", "--times", "2"]) == 3
    assert "toy ran 2" in capsys.readouterr().out
    with pytest.raises(ValueError, match="already registered"):
        registry.register_subcommand(registry.Subcommand("toy", "toy_command", "again"))
    with pytest.raises(SystemExit):
        main(["ghost"])  # hidden, so argparse refuses it
    assert "invalid choice" in capsys.readouterr().err


def test_a_sweep_whose_cells_all_fail_exits_1_with_the_error(tmp_path, capsys):
    from linsim import runners

    def broken(problem):
        raise RuntimeError("this runner always fails")

    runners.register_runner(runners.Runner("broken_model", "gd", run=broken))
    try:
        status = main(phase(tmp_path, "--model", "broken_model", "--axis", "c=0,1"))
    finally:
        runners.unregister_runner("broken_model", "gd")
    assert status == 1
    err = capsys.readouterr().err
    assert "this runner always fails" in err and "all 2 cells" in err
    assert not (tmp_path / "out" / "phase.png").exists()


def test_a_registered_kernel_is_a_choice_and_may_read_the_bandwidth(tmp_path, capsys):
    from linsim.solvers.kernel import KERNELS, register_kernel

    def laplace(A, B, bandwidth):  # exp(-|x - y|_1 / bandwidth): positive definite
        return np.exp(-np.abs(A[:, None, :] - B[None, :, :]).sum(-1) / bandwidth)

    register_kernel("laplace_test", laplace)
    try:
        assert "laplace_test" in _flag(build_parser("ribbon"), "--kernel").choices
        assert main(["ribbon", *TINY, "--model", "kernel", "--kernel", "laplace_test", "--kernel-bandwidth",
                     "3", "--no-figure", "--json", "--out", str(tmp_path)]) == 0
    finally:
        del KERNELS["laplace_test"]
    assert json.loads(capsys.readouterr().out)["points"] == 3 * 5


def test_resume_reuses_a_finished_sweep(tmp_path, capsys):
    from linsim.storage import read_netcdf

    args = phase(tmp_path, "--axis", "c=0,1", "--theory-resolution", "0", "--json")
    assert main(args) == 0
    first = read_netcdf(tmp_path / "out" / "phase.nc")
    assert (tmp_path / "out" / "phase.png").exists()  # a one-axis sweep is drawn as a curve
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    again = read_netcdf(tmp_path / "out" / "phase.nc")
    assert json.loads(capsys.readouterr().out)["cells"] == 2
    for name in first.data_vars:  # nothing recomputed: even the wall times are the stored ones
        np.testing.assert_array_equal(first[name].values, again[name].values, err_msg=name)


def test_train_and_compare_are_registry_entries():
    from linsim.cli.registry import get_subcommand

    assert get_subcommand("train").module == "linsim.deep.command"
    assert get_subcommand("compare").module == "linsim.compare.command"
    with pytest.raises(ValueError, match="available"):
        get_subcommand("nonsense")


@pytest.mark.parametrize("name", ["ribbon", "phase", "train", "compare"])
def test_every_available_subcommand_honours_the_contract(name, capsys):
    from linsim.cli.registry import get_subcommand

    entry = get_subcommand(name)
    if not entry.is_available():
        pytest.skip(f"{entry.module} is not installed")
    mod = entry.load()
    assert callable(mod.add_arguments) and callable(mod.run)
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: linsim {name}") and len(text.splitlines()) > 5


# ----------------------------------------------------------------------------- properties
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["lin", "log"]), start=st.floats(0.01, 100), stop=st.floats(0.01, 100),
       num=st.integers(1, 12), name=st.sampled_from(["slope", "c", "scale-ratio", "lambda_1"]))
def test_real_axes_span_their_spec(kind, start, stop, num, name):
    key, v = parse_axis(f"{name}={kind}:{start!r}:{stop!r}:{num}")
    assert key in ("slope", "scale_ratio", "lambda_1") and v.shape == (num,)
    assert v[0] == pytest.approx(start) and (num == 1 or v[-1] == pytest.approx(stop))
    if num > 2 and kind == "log" and start != stop:
        ratios = v[1:] / v[:-1]
        np.testing.assert_allclose(ratios, ratios[0])


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["lin", "log"]), start=st.integers(1, 50), span=st.integers(0, 5000),
       num=st.integers(1, 12), name=st.sampled_from(["T", "steps", "n-runs", "R", "dim"]))
def test_integer_axes_are_rounded_or_refused(kind, start, span, num, name):
    text = f"{name}={kind}:{start}:{start + span}:{num}"
    exact = np.geomspace(start, start + span, num) if kind == "log" else np.linspace(start, start + span, num)
    rounded = np.rint(exact)
    if np.unique(rounded).size < num:
        with pytest.raises(Exception, match="repeated values"):
            parse_axis(text)
        return
    _, v = parse_axis(text)
    np.testing.assert_array_equal(v, rounded)
    assert np.all(np.abs(v - exact) <= 0.5)


def test_outputs_never_leave_an_old_figure_or_temp_files(tmp_path):
    from matplotlib.figure import Figure

    from linsim.cli._outputs import Outputs

    def interrupted(path, command):
        raise KeyboardInterrupt

    (tmp_path / "x.png").write_bytes(b"old figure")
    (tmp_path / "x.nc").write_bytes(b"old data")
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    out = Outputs(tmp_path, "x.png", "linsim test")
    out.figure = fig
    out.add_writer("x.nc", interrupted)
    with pytest.raises(KeyboardInterrupt):
        out.write()
    # nothing was replaced: the old pair is back as it was, and no debris
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc", "x.png"]
    assert (tmp_path / "x.png").read_bytes() == b"old figure"

    def replaced_then_interrupted(path, command):
        path.write_text("new data")
        raise KeyboardInterrupt

    out = Outputs(tmp_path, "x.png", "linsim test")
    out.figure = fig
    out.add_writer("x.nc", replaced_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        out.write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nc"]  # new data, no old figure
    out = Outputs(tmp_path, "x.png", "linsim test")
    out.figure = fig
    out.add_writer("x.nc", lambda path, command: path.write_text(command))
    assert out.write() == [str(tmp_path / "x.nc"), str(tmp_path / "x.png")]
    assert (tmp_path / "x.nc").read_text() == "linsim test"
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    script = f"""
import os, signal, time, sys
import xarray as xr
from linsim.cli import main

real = xr.Dataset.to_netcdf
def killed_midway(self, path, *a, **k):
    with open(path, "wb") as fh:
        fh.write(b"half a file")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)

xr.Dataset.to_netcdf = killed_midway
sys.exit(main(["ribbon", {", ".join(repr(a) for a in TINY)}, "--no-figure", "--out", {str(tmp_path)!r}]))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == [], "a temporary or partial file was left behind"


def test_phase_prints_and_stores_theory_analytic_and_trivial_rule_on_the_same_cells(tmp_path, capsys):
    """The printed comparison, the JSON and phase.nc's attributes agree with fractions recomputed here
    from the stored per-cell verdicts (trivial rule from the ρ/σ₀ coordinate itself)."""
    import re

    from linsim.storage import read_netcdf

    args = phase(tmp_path, "--axis", "c=0,2", "--axis", "ratio=0.3,1,3,30", "--theory-resolution", "3",
                 "--no-figure")
    assert main(args) == 0
    text = capsys.readouterr().out
    m = re.search(r"on the same (\d+) cells: theory \(expected spectrum\) ([\d.]+)%, analytic boundary "
                  r"\(theory.critical_ratio\) ([\d.]+)%, trivial rule \"ribbon iff ρ/σ₀ >= 1.5\" ([\d.]+)%", text)
    assert m, text
    ds = read_netcdf(tmp_path / "out" / "phase.nc")
    sim = ds["sim_is_ribbon"].values.astype(bool)
    ok = (ds["status"].values == "ok") & np.isfinite(ds["theory_k_chi"].values)
    ratio = ds["scale_ratio"].values[None, :] * np.ones(sim.shape)
    crit = ds["analytic_critical_ratio"].values[:, None] * np.ones(sim.shape)
    n = int(ok.sum())
    expected = {
        "theory": np.mean(ds["theory_is_ribbon"].values.astype(bool)[ok] == sim[ok]),
        "analytic": np.mean((ratio >= crit)[ok] == sim[ok]),
        "trivial": np.mean((ratio >= 1.5)[ok] == sim[ok]),
    }
    assert int(m.group(1)) == n == ds.attrs["agreement_cells"] == 8
    for (key, value), printed in zip(expected.items(), m.groups()[1:]):
        assert float(printed) == pytest.approx(100 * value, abs=0.051)
        assert ds.attrs[f"agreement_{key}"] == pytest.approx(value, abs=1e-12)
    assert "trivial" in ds.attrs["agreement_note"] and ds.attrs["trivial_ribbon_ratio"] == 1.5
    assert ds["boundary_critical_ratio"].dims == ("boundary_slope",) and ds["boundary_slope"].size == 3
    # the figure drawn from this file carries the analytic boundary curve and the trivial rule's line
    from linsim.plotting import phase_figure

    ax = phase_figure(ds).axes[0]
    curve = [ln for ln in ax.lines if ln.get_color() == "magenta"]
    assert len(curve) == 1
    crit = ds["boundary_critical_ratio"].values
    shown = np.asarray(curve[0].get_ydata(), float)
    inside = np.isfinite(crit) & (crit > 0)
    np.testing.assert_allclose(shown[inside], crit[inside])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("analytic boundary") for t in labels) and "trivial rule ρ/σ₀ = 1.5" in labels
    # the JSON summary carries the same numbers
    assert main(args + ["--json"]) == 0
    comp = json.loads(capsys.readouterr().out)["comparison"]
    assert comp["cells"] == n and comp["trivial_ratio"] == 1.5
    for key, value in expected.items():
        assert comp[key] == pytest.approx(value, abs=1e-12)


def test_phase_without_a_fine_map_still_compares_the_rules(tmp_path, capsys):
    """--theory-resolution 0 draws no fine map, but the analytic-boundary verdicts and the rule
    comparison do not need one: they are computed per cell and stored all the same."""
    from linsim.storage import read_netcdf

    assert main(phase(tmp_path, "--axis", "c=0,2", "--axis", "ratio=0.3,3", "--theory-resolution", "0",
                      "--no-figure")) == 0
    assert "trivial rule" in capsys.readouterr().out
    ds = read_netcdf(tmp_path / "out" / "phase.nc")
    assert "fine_k_chi" not in ds and "boundary_critical_ratio" not in ds
    sim = ds["sim_is_ribbon"].values.astype(bool)
    ratio = ds["scale_ratio"].values[None, :] * np.ones(sim.shape)
    assert ds.attrs["agreement_trivial"] == pytest.approx(np.mean((ratio >= 1.5) == sim), abs=1e-12)
    assert ds["analytic_critical_ratio"].dims == ("slope",)
