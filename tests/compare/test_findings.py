"""Findings on hand-built grids whose answers are known by construction."""
import numpy as np
import pytest

from linsim.compare.findings import FACTORS, differing_factor, measure_findings, progress_study
from linsim.ensemble import EnsembleConfig, simulate
from linsim.trajectory import Trajectory


def _base(model):
    cfg = EnsembleConfig(model=model, kernel="rbf", kernel_bandwidth=2.0, n_samples=30, dim=6, n_classes=3,
                         n_runs=3, steps=300, n_checkpoints=10, teacher_scale=2.0, init_scale=0.2, seed=4)
    return simulate(cfg)


def _config(traj, scale=1.0, times=None, noise=0.0, seed=0, **params):
    base = dict(architecture="mlp", width=1.0, optimizer="sgd", lr=0.1, batch_size=10, weight_decay=0.0,
                augment=False, init="default")
    base.update(params)
    z = traj.outputs * scale + noise * np.random.default_rng(seed).normal(size=traj.outputs.shape)
    return Trajectory(z, traj.times if times is None else times, params=base, inputs=traj.inputs,
                      labels=traj.labels)


@pytest.fixture(scope="module")
def grid():
    lin, ker = _base("linear"), _base("kernel")
    configs = {
        "mlp": _config(lin),
        "mlp-adam": _config(lin, scale=1.02, noise=0.01, optimizer="adam", lr=0.001),
        "mlp-w2": _config(lin, times=lin.times / 2, width=2.0),  # same path, twice as fast
        "mlp-kaiming": _config(lin, noise=0.01, seed=1, init="kaiming"),
        "cnn": _config(ker, architecture="cnn"),
        "cnn-adam": _config(ker, scale=1.02, noise=0.01, optimizer="adam", lr=0.001, architecture="cnn"),
    }
    study = progress_study(list(configs.values()), list(configs), n_grid=20)
    return configs, study


def test_differing_factor_rules():
    a = dict(architecture="mlp", optimizer="sgd", lr=0.1, batch_size=10, device="cpu")
    assert differing_factor(a, {**a, "batch_size": 50, "lr": 0.5}) == "batch_size"
    assert differing_factor(a, {**a, "lr": 0.5}) is None  # lr alone is no registered factor's primary key
    assert differing_factor(a, {**a, "device": "cuda"}) is None
    assert differing_factor(a, {**a, "architecture": "cnn", "optimizer": "adam"}) is None
    assert set(FACTORS) >= {"architecture", "optimizer", "batch_size", "weight_decay", "augment", "init", "width"}


def test_same_path_at_another_speed_is_at_zero_equal_progress_distance(grid):
    configs, study = grid
    names = study.names
    i, j = names.index("mlp"), names.index("mlp-w2")
    ri, rj = np.flatnonzero(study.run_config == i), np.flatnonzero(study.run_config == j)
    matched = study.tensor[:, ri, rj]  # run r against its faster copy, nan beyond where it stopped
    assert np.isfinite(matched).sum() >= 3 * 5
    np.testing.assert_allclose(matched[np.isfinite(matched)], 0.0, atol=1e-12)
    np.testing.assert_array_equal(study.reached[ri], study.reached[rj])
    # the 3 matched pairs are at distance 0, the 6 others are seed pairs: below the seed distance
    assert 0 < study.config_distance[i, j] < study.config_distance[i, i]
    f = measure_findings(study, np.array([0.5, 0.7, 0.8]))
    # twice as fast in steps; linear interpolation of progress between checkpoints scales exactly
    assert f.steps_to_half["mlp-w2"] == pytest.approx(f.steps_to_half["mlp"] / 2, rel=1e-9)
    # width moves along the same manifold: no farther apart than seeds, far closer than architectures
    assert f.factor_distance["width"][0] <= f.seed_distance
    assert f.width_ratio < 0.1
    assert [row[1] for row in f.width_speedup if row[0] == "mlp"] == [1.0, 1.0, 1.0, 2.0]
    assert f.steps_to_mid["mlp-w2"] == pytest.approx(f.steps_to_mid["mlp"] / 2, rel=1e-9)


def test_architectures_separate_and_small_perturbations_do_not(grid):
    configs, study = grid
    f = measure_findings(study, np.array([0.5, 0.7, 0.8, 0.9]))
    assert f.top3_stress == 0.8
    assert f.factor_distance["architecture"][1] == 2  # mlp-cnn and mlp-adam-cnn-adam
    assert f.separability["optimizer"] > 10
    assert f.init_ratio < 0.1
    assert np.isnan(f.separability["augment"]) and f.factor_distance["augment"][1] == 0
    # the complete-linkage tree joins the last two clusters across architectures
    names = study.names
    arch = np.array([configs[n].params["architecture"] for n in names])
    order = arch[f.leaves]
    assert (order[:-1] != order[1:]).sum() == 1  # leaves ordered in two contiguous architecture blocks
    assert f.importance["architecture"] > f.importance["optimizer"]
    lines = f.lines()
    assert lines[0].startswith("(a) top 3") and "80.0%" in lines[0]
    d = f.as_dict()
    assert d["separability"]["augment"] is None and isinstance(d["top3_stress"], float)


def test_tube_is_zero_for_identical_seeds_and_positive_otherwise():
    lin = _base("linear")
    same = Trajectory(np.repeat(lin.outputs[:1], 3, axis=0), lin.times, params={"architecture": "a"},
                      labels=lin.labels)
    study = progress_study([same, lin], n_grid=8)
    t0, t1 = study.tube
    assert np.isfinite(t0).any() and np.isfinite(t1[:, 1:]).any()
    np.testing.assert_allclose(t0[np.isfinite(t0)], 0.0, atol=1e-12)
    assert np.nanmean(t1[:, 1:]) > 1e-4
    assert np.isfinite(study.config_distance).all()
    # nan exactly where a seed of the configuration stopped short of the grid value
    m = study.reached[study.run_config == 1].all(axis=0)
    np.testing.assert_array_equal(np.isfinite(t1).all(axis=0), m)


def test_configurations_without_common_progress_get_no_distance_and_a_filled_dendrogram():
    from linsim.compare.progress import geodesic_ends
    from linsim.inpca import geodesic

    labels = np.arange(8) % 3
    p0, ps = geodesic_ends(labels, 3)
    rng = np.random.default_rng(0)

    def config(s, arch):
        lp = geodesic(p0, ps, np.asarray(s))  # (K, n, C)
        runs = lp[None] + 0.05 * rng.normal(size=(2,) + lp.shape)
        return Trajectory(runs, np.arange(len(s)) * 10, params={"architecture": arch}, labels=labels)

    early = config([0.0, 0.05, 0.1, 0.12], "a")
    late = config([0.3, 0.4, 0.5, 0.55], "b")
    wide = config([0.0, 0.2, 0.4, 0.6], "c")
    study = progress_study([early, late, wide], ["early", "late", "wide"], n_grid=30)
    D = study.config_distance
    assert np.isnan(D[0, 1]) and np.isfinite(D[0, 2]) and np.isfinite(D[1, 2])
    f = measure_findings(study, np.array([0.5, 0.6, 0.7]))
    assert f.dendrogram_filled == 1 and f.linkage.shape == (2, 4)
    assert sorted(f.leaves) == [0, 1, 2]
