"""The standard ensemble: seeds, shapes, arrays, model equivalences, config validation."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linsim.ensemble import EnsembleConfig, checkpoint_steps, simulate
from linsim.solvers import linear_gd

SMALL = EnsembleConfig(n_samples=30, dim=6, n_classes=3, n_runs=3, steps=200, n_checkpoints=8, n_test=7)


@given(T=st.integers(0, 10**7), K=st.integers(1, 60))
def test_checkpoint_steps_properties(T, K):
    s = checkpoint_steps(T, K)
    assert s[0] == 0 and s[-1] == T
    assert np.all(np.diff(s) > 0) and s.dtype == np.int64
    assert len(s) <= K + 1
    if K > 1 and T > 1:  # log-spaced from 1: every listed step is a rounded T^(j/(K-1))
        assert s[1] == 1
        grid = np.rint(T ** (np.arange(K) / (K - 1)))
        assert set(s[1:].tolist()) <= set(grid.astype(np.int64).tolist()) | {T}


def test_default_config_shapes_and_arrays():
    tr = simulate(EnsembleConfig())
    c = EnsembleConfig()
    K = len(checkpoint_steps(c.steps, c.n_checkpoints))
    assert tr.outputs.shape == (16, K, 200, 5)
    assert tr.time_unit == "step" and tr.output_model == "softmax"
    np.testing.assert_allclose(tr.arrays["eigenvalues"], np.exp(-0.5 * np.arange(50)), atol=1e-13)
    V = tr.arrays["eigenvectors"]
    sigma = tr.inputs.T @ tr.inputs / 200
    np.testing.assert_allclose(sigma @ V, V * tr.arrays["eigenvalues"], atol=1e-12)
    assert tr.arrays["teacher"].shape == (5, 50) and tr.arrays["init"].shape == (16, 5, 50)
    np.testing.assert_array_equal(tr.labels, np.argmax(tr.inputs @ tr.arrays["teacher"].T, 1))
    # outputs are the closed-form GD of the stored init toward the teacher outputs
    Y = tr.inputs @ tr.arrays["teacher"].T
    ref = linear_gd(tr.inputs, Y, tr.arrays["init"], 1.0, tr.arrays["steps"])
    np.testing.assert_allclose(tr.outputs, ref, rtol=1e-12, atol=1e-12)
    assert tr.params["n_runs"] == 16 and tr.params["lr_effective"] == 1.0 and tr.params["lr"] is None


def test_seed_streams_are_independent_of_n_runs():
    a = simulate(SMALL)
    b = simulate(replace(SMALL, n_runs=5))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.arrays["teacher"], b.arrays["teacher"])
    np.testing.assert_array_equal(a.outputs, b.outputs[:3])
    np.testing.assert_array_equal(a.outputs, simulate(SMALL).outputs)
    c = simulate(replace(SMALL, seed=1))
    assert not np.array_equal(a.inputs, c.inputs)


def test_flow_times_line_up_with_gd():
    gd = simulate(replace(SMALL, lr=0.05))
    flow = simulate(replace(SMALL, lr=0.05, optimizer="flow"))
    assert flow.time_unit == "time"
    np.testing.assert_allclose(flow.times, 0.05 * gd.times, rtol=1e-15)
    # small lr: GD ~ flow at matching times (O(lr) difference)
    assert np.abs(flow.outputs - gd.outputs).max() < 0.05 * np.abs(gd.outputs).max()


def test_linear_kernel_equals_linear_model_on_both_splits():
    for split in ("train", "test"):
        a = simulate(replace(SMALL, model="kernel"), split)
        b = simulate(SMALL, split)
        np.testing.assert_allclose(a.outputs, b.outputs, rtol=1e-10, atol=1e-10)
    assert simulate(SMALL, "test").outputs.shape[2] == 7


def test_full_batch_sgd_equals_gd():
    a = simulate(replace(SMALL, optimizer="sgd", batch_size=30))
    np.testing.assert_allclose(a.outputs, simulate(SMALL).outputs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(optimizer="sgd", batch_size=5),
        dict(model="kernel", kernel="rbf"),
        dict(model="kernel", kernel="ntk", optimizer="flow"),
        dict(model="softmax"),
        dict(model="softmax", optimizer="flow", steps=50),
        dict(model="two_layer", hidden=4),
        dict(model="two_layer", hidden=4, optimizer="flow", steps=50),
    ],
)
def test_every_model_runs_and_moves_toward_the_teacher(overrides):
    cfg = replace(SMALL, **overrides)
    tr = simulate(cfg, "train")
    assert tr.outputs.shape[0] == 3 and np.all(np.isfinite(tr.outputs))
    Y = tr.inputs @ tr.arrays["teacher"].T
    if cfg.model == "softmax":  # cross-entropy: compare probabilities with the teacher's
        P = tr.probs().reshape(tr.outputs.shape)
        Q = np.exp(Y - Y.max(1, keepdims=True))
        Q /= Q.sum(1, keepdims=True)
        first, last = np.abs(P[:, 0] - Q).mean(), np.abs(P[:, -1] - Q).mean()
    else:
        first, last = np.abs(tr.outputs[:, 0] - Y).mean(), np.abs(tr.outputs[:, -1] - Y).mean()
    assert last < 0.8 * first
    if cfg.model == "two_layer":
        assert tr.arrays["init"].shape == (3, 3, 6) and tr.arrays["init_W1"].shape == (3, 4, 6)
    if cfg.model != "softmax" and cfg.model != "two_layer":
        simulate(cfg, "test")


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("model", "mlp", "model"),
        ("optimizer", "adam", "optimizer"),
        ("teacher_scale", -1.0, "teacher_scale"),
        ("init_scale", -0.1, "init_scale"),
        ("slope", -0.5, "slope"),
        ("lambda_1", 0.0, "lambda_1"),
        ("steps", -1, "steps"),
        ("n_runs", 0, "n_runs"),
        ("n_classes", 1, "n_classes"),
        ("lr", 2.0, "stability limit"),
        ("lr", -0.1, "lr"),
        ("spectrum", "flat", "spectrum"),
        ("data_mode", "real", "data_mode"),
        ("kernel", "poly", "kernel"),
        ("kernel_bandwidth", 0.0, "kernel_bandwidth"),
        ("n_samples", 5, "n_samples >= dim"),
        ("n_checkpoints", 0, "n_checkpoints"),
        ("seed", -1, "seed"),
        ("steps", 1.5, "integer"),
        ("n_checkpoints", 10**9, "n_checkpoints=1000000000 exceeds"),
        ("model", 3, "model"),
    ],
)
def test_validation_errors(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        simulate(replace(SMALL, **{field: value}))


def test_other_config_errors():
    with pytest.raises(ValueError, match="optimizer='sgd' is not available for model='softmax'.*exists for model: linear"):
        replace(SMALL, model="softmax", optimizer="sgd").validate()
    with pytest.raises(ValueError, match="batch_size"):
        replace(SMALL, optimizer="sgd", batch_size=31).validate()
    with pytest.raises(ValueError, match="n_test > 0"):
        simulate(replace(SMALL, n_test=0), "test")
    with pytest.raises(ValueError, match="split"):
        simulate(SMALL, "val")
    sampled = replace(SMALL, data_mode="sampled", n_samples=8)
    lam_max = simulate(sampled).arrays["eigenvalues"][0]
    with pytest.raises(ValueError, match="stability limit"):  # sampled data: caught by the solver
        simulate(replace(sampled, lr=2.01 / lam_max))


def test_default_learning_rates_come_from_the_runner_entries():
    from linsim.ensemble import default_lr

    cfg = replace(SMALL, lambda_1=2.0)
    assert default_lr(cfg) == 0.5 and simulate(cfg).params["lr_effective"] == 0.5
    two = replace(cfg, model="two_layer", hidden=4, teacher_scale=2.0)
    traj = simulate(two)
    s_max = np.linalg.svd(traj.arrays["teacher"], compute_uv=False)[0]
    assert 2 * s_max > 1  # so the teacher-dependent branch is the one tested
    assert traj.params["lr_effective"] == pytest.approx(1 / (2.0 * 2 * s_max), rel=1e-14)
    with pytest.raises(ValueError, match="depends on the teacher"):
        default_lr(two)
    assert default_lr(replace(two, lr=0.01)) == 0.01


def test_legacy_constants_follow_the_registry():
    import linsim.ensemble as ens
    from linsim import runners

    assert ens.MODELS == runners.models() and ens.OPTIMIZERS == runners.optimizers()
    with pytest.raises(AttributeError):
        ens.NOT_A_NAME  # noqa: B018


@pytest.mark.parametrize("n, d", [(30, 6), (6, 6), (4, 9)])
def test_input_eigenpairs_diagonalize_sigma_with_a_full_basis(n, d):
    from linsim.ensemble import input_eigenpairs

    X = np.random.default_rng(n * d).standard_normal((n, d))
    lam, V = input_eigenpairs(X)
    assert lam.shape == (d,) and V.shape == (d, d) and np.all(lam >= 0) and np.all(np.diff(lam) <= 0)
    np.testing.assert_allclose(V.T @ V, np.eye(d), atol=1e-12)
    np.testing.assert_allclose((X.T @ X / n) @ V, V * lam, atol=1e-12)
    assert np.count_nonzero(lam) == min(n, d)


def test_the_linear_runner_solves_in_the_stored_eigenbasis(monkeypatch):
    calls = []
    real_svd = np.linalg.svd

    def counting_svd(*a, **k):
        calls.append("svd")
        return real_svd(*a, **k)

    def no_eigh(*a, **k):
        raise AssertionError("a second eigendecomposition of Sigma")

    monkeypatch.setattr(np.linalg, "svd", counting_svd)
    monkeypatch.setattr(np.linalg, "eigh", no_eigh)
    for optimizer in ("gd", "flow"):
        calls.clear()
        simulate(replace(SMALL, optimizer=optimizer))
        assert calls == ["svd"]  # one decomposition, stored and used
