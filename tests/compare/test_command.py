"""`linsim compare` end to end on a tiny trained grid: files, JSON keys, numbers from the stored results."""
import json

import numpy as np
import pytest

pytest.importorskip("linsim.deep.grid")

GRID = """
dataset = "digits"
n_train = 64
n_test = 16
eval_stride = 2
n_runs = 2
steps = 16
n_checkpoints = 4
batch_size = 16
engine = "loop"
device = "cpu"

[grid.sgd]
architecture = ["linear", "mlp"]
optimizer = "sgd"
lr = 0.1

[grid.adam]
architecture = "mlp"
optimizer = "adam"
lr = 0.01
"""


#: light settings: few counterpart runs and features, few theory draws, a short progress grid
FAST = ["--n-grid", "8", "--ntk-max-train", "40", "--counterpart-runs", "1", "--rf-features", "32", "--n-draws", "4"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    from linsim.compare.command import main
    from linsim.deep.grid import load_grid, run_grid

    root = tmp_path_factory.mktemp("cmp")
    (root / "grid.toml").write_text(GRID)
    run_grid(load_grid(root / "grid.toml"), root / "train", progress=False, log=None)
    out = root / "out"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = main([str(root / "train"), "--out", str(out), "--json", *FAST, "--no-progress"])
    return status, json.loads(buf.getvalue()), root


def test_exit_status_files_and_json_keys(compared):
    status, summary, root = compared
    assert status == 0
    for key in ("deep_stress", "joint_stress", "linear_basis_all", "linear_basis_deep", "separability", "width",
                "theory_vs_deep"):
        assert key in summary, key
    assert len(summary["deep_stress"]) == 10
    assert len(summary["theory_vs_deep"]) == 3
    assert {"measured_k", "predicted_k_input", "predicted_k_ntk"} <= set(summary["theory_vs_deep"][0])
    assert summary["separability"]["optimizer"] > 0  # one architecture pair, one optimizer pair
    out = root / "out"
    for name in ("compare.nc", "compare.md", "compare_embedding.png", "compare_stress.png", "compare_progress.png",
                 "compare_dendrogram.png", "compare_phase.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob("*.tmp*"))


def test_numbers_are_the_stored_ones_and_recomputed_independently(compared):
    from linsim.compare.pipeline import load_grid_results
    from linsim.embed import distance_matrix
    from linsim.inpca import InPCA
    from linsim.storage import read_netcdf

    _, summary, root = compared
    ds = read_netcdf(root / "out" / "compare.nc")  # checksums verified
    np.testing.assert_allclose(summary["deep_stress"], ds["explained_stress"].sel(view="deep").values)
    # deep-only stress straight from the training files, without linsim.compare
    trajs, _ = load_grid_results(root / "train")
    f64 = [t.__class__(t.outputs.astype(np.float64), t.times, labels=t.labels) for t in trajs]
    D = distance_matrix(*f64)
    own = InPCA(10).fit(D).explained_stress_
    np.testing.assert_allclose(summary["deep_stress"], own, atol=1e-6)
    # the other views: the JSON holds the stored curves, over the deep points and their counterparts
    for key, view in (("joint_stress", "all"), ("linear_basis_all", "linear_basis_all"),
                      ("linear_basis_deep", "linear_basis_deep")):
        np.testing.assert_allclose(summary[key], ds["explained_stress"].sel(view=view).values)
    is_deep = ds["point_is_deep"].values.astype(bool)
    assert is_deep.sum() == D.shape[0] and (~is_deep).sum() > 0
    assert summary["top3_deep_stress"] == pytest.approx(own[2], abs=1e-6)
    # one row per configuration, in the stored table too
    np.testing.assert_array_equal(ds["control_measured_k"].values,
                                  [r["measured_k"] for r in summary["theory_vs_deep"]])


def test_report_text_follows_the_stored_numbers(compared):
    from linsim.compare.report import markdown_report
    from linsim.storage import read_netcdf

    _, summary, root = compared
    text = (root / "out" / "compare.md").read_text()
    ds = read_netcdf(root / "out" / "compare.nc")
    top3 = float(ds["top3_stress"])
    assert f"{100 * top3:.1f}%" in text
    ds["top3_stress"] = ds["top3_stress"] * 0 + 0.123
    assert "12.3%" in markdown_report(ds)  # the page is built from the dataset, not from constants
    assert "| deep |" in text and "![" in text
    chi2_all = float(ds["explained_stress"].sel(view="all", k=2))
    assert f"two dimensions explain {100 * chi2_all:.1f}% of their stress (the linear-model paper" in text


def test_bad_directory_is_a_clean_error(tmp_path, capsys):
    from linsim.compare.command import main

    assert main([str(tmp_path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "no index.json" in capsys.readouterr().err
    assert main([str(tmp_path), "--chi", "1.5", "--no-progress"]) == 2


def test_without_a_directory_the_default_grid_is_trained_then_compared(compared, monkeypatch, tmp_path, capsys):
    """`linsim compare` alone trains the built-in grid (resuming) into the train command's folder."""
    import linsim.deep.command as train_cmd
    import linsim.deep.grid as grid
    from linsim.compare.command import main

    _, _, root = compared
    calls = []
    real_load = grid.load_grid

    def fake_load(path=None, *, builtin="small"):
        calls.append(builtin)
        return real_load(root / "grid.toml")  # the tiny grid stands in for the built-in one

    monkeypatch.setattr(grid, "load_grid", fake_load)
    monkeypatch.setattr(train_cmd, "DEFAULT_OUT", str(root / "train"))  # already complete: nothing retrains
    # the printed findings are read back from compare.nc: a changed stored number changes the print
    import linsim.storage as storage
    from linsim.compare.report import findings_from_dataset

    real_read = storage.read_netcdf

    def doctored_read(path, **kw):
        ds = real_read(path, **kw)
        return ds.assign(top3_stress=ds["top3_stress"] * 0 + 0.123) if "top3_stress" in ds else ds

    monkeypatch.setattr(storage, "read_netcdf", doctored_read)
    status = main(["--out", str(tmp_path / "o"), "--no-ntk", *FAST])
    assert status == 0 and calls == ["small"]
    out = capsys.readouterr()
    assert "already complete" in out.err
    lines = out.out.splitlines()
    assert lines[0].startswith("(a) top 3 InPCA dimensions") and "explain 12.3% of the stress" in lines[0]
    stored = real_read(tmp_path / "o" / "compare.nc")
    assert lines[1:5] == findings_from_dataset(stored).lines()[1:]
    assert f"{float(stored['separability'].sel(factor='optimizer')):.3g} (1 pairs)" in lines[1]
    agree = int(np.sum((stored["control_measured_k"].values <= 3) == (stored["control_predicted_k_input"].values <= 3)))
    assert lines[5].startswith(f"theory vs deep: the ribbon call at the measured controls agrees for {agree} of 3 ")


def test_rerun_reads_ntk_counterparts_from_the_cache_and_recomputes_a_corrupt_one(compared, capsys):
    from linsim.compare.command import main

    _, first, root = compared
    out = root / "out"
    cached = sorted((out / "cache").glob("ntk-*.nc"))
    assert len(cached) == 2  # one per distinct network: linear and mlp
    args = [str(root / "train"), "--out", str(out), "--json", *FAST, "--n-grid", "4"]  # the grid is no cache key
    capsys.readouterr()
    assert main(args) == 0
    io = capsys.readouterr()
    assert io.err.count("read from ntk-") == 2
    again = json.loads(io.out)
    for key in ("joint_stress", "linear_basis_all", "linear_basis_deep"):
        np.testing.assert_allclose(again[key], first[key], rtol=1e-12, atol=1e-12)
    cached[0].write_bytes(b"not a netCDF file")
    assert main(args) == 0
    io = capsys.readouterr()
    assert "unreadable" in io.err and io.err.count("read from ntk-") == 1
    np.testing.assert_allclose(json.loads(io.out)["linear_basis_all"], first["linear_basis_all"], rtol=1e-10)


def test_compare_config_names_bad_settings():
    from linsim.compare.pipeline import CompareConfig

    with pytest.raises(ValueError, match="ntk_dtype must be 'float32' or 'float64'"):
        CompareConfig(ntk_dtype="half")
    with pytest.raises(ValueError, match="unknown counterpart 'svm'"):
        CompareConfig(counterparts=("linear", "svm"))
    with pytest.raises(ValueError, match="rf_features must be a positive integer"):
        CompareConfig(rf_features=0)
