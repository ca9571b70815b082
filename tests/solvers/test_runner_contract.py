"""Contract tests shared by every registered runner (geomstats style), and the registry itself.

Each runner, whatever it solves, must return outputs of shape (R, K, m, C) in float64 at the
checkpoint schedule in its time unit, start at the initial function it stores, be a pure
function of the seed, and honour the stability limit it declares (which is what
``EnsembleConfig.validate`` enforces).
"""

from dataclasses import fields, replace

import numpy as np
import pytest

from linsim import runners
from linsim.ensemble import EnsembleConfig, simulate
from linsim.runners import Problem, Runner, RunResult, get_runner, register_runner, unregister_runner
from theory import checkpoint_steps

BASE = EnsembleConfig(n_samples=12, dim=4, n_classes=3, n_runs=2, steps=30, n_checkpoints=4, n_test=5,
                      hidden=3, batch_size=4, teacher_scale=0.5, init_scale=0.2, lambda_1=1.5)
KEYS = runners.registered()


def _cfg(key, **kw):
    model, optimizer = key
    extra = {"kernel": "rbf"} if model == "kernel" else {}
    return replace(BASE, model=model, optimizer=optimizer, **{**extra, **kw})


@pytest.mark.parametrize("key", KEYS, ids=lambda k: "/".join(k))
def test_shapes_dtype_and_times(key):
    entry = get_runner(*key)
    cfg = _cfg(key)
    traj = simulate(cfg)
    steps = checkpoint_steps(cfg.steps, cfg.n_checkpoints)
    assert traj.outputs.shape == (2, steps.size, 12, 3) and traj.outputs.dtype == np.float64
    assert traj.time_unit == entry.time_unit
    lr = traj.params["lr_effective"]
    expected = lr * steps if entry.time_unit == "time" else steps.astype(float)
    np.testing.assert_allclose(traj.times, expected, rtol=1e-15)
    np.testing.assert_array_equal(traj.arrays["steps"], steps)
    assert simulate(cfg, "test").outputs.shape == (2, steps.size, 5, 3)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: "/".join(k))
def test_first_checkpoint_is_the_stored_initial_function(key):
    traj = simulate(_cfg(key))
    test = simulate(_cfg(key), "test")
    if "init" in traj.arrays:
        W0 = traj.arrays["init"]
        np.testing.assert_allclose(traj.outputs[:, 0], traj.inputs @ W0.transpose(0, 2, 1), atol=1e-13)
        np.testing.assert_allclose(test.outputs[:, 0], test.inputs @ W0.transpose(0, 2, 1), atol=1e-13)
    else:
        F = traj.arrays["init_outputs"]
        np.testing.assert_allclose(traj.outputs[:, 0], F[:, :12], atol=1e-13)
        np.testing.assert_allclose(test.outputs[:, 0], F[:, 12:], atol=1e-13)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: "/".join(k))
def test_deterministic_for_a_seed(key):
    a, b = simulate(_cfg(key)), simulate(_cfg(key))
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert not np.array_equal(a.outputs, simulate(_cfg(key, seed=1)).outputs)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: "/".join(k))
def test_declared_stability_limit_is_enforced(key):
    entry = get_runner(*key)
    cfg = _cfg(key, kernel="linear") if key[0] == "kernel" else _cfg(key)
    limit = entry.limit_for(cfg)
    if limit is None:
        assert entry.time_unit == "time" or key in {("two_layer", "gd"), ("kernel", "gd")}
        return
    assert entry.time_unit == "step"
    with pytest.raises(ValueError, match="stability limit"):
        replace(cfg, lr=1.001 * limit / cfg.lambda_1).validate()
    ok = simulate(replace(cfg, lr=0.95 * limit / cfg.lambda_1, steps=5))
    assert np.all(np.isfinite(ok.outputs))


def test_declared_limits_are_the_true_gd_limits():
    """The squared loss diverges just above 2/lambda_max and converges below: a real boundary."""
    cfg = replace(BASE, lr=None, steps=400, n_checkpoints=2, teacher_scale=0.0, init_scale=1.0)
    lam = simulate(cfg).arrays["eigenvalues"][0]
    assert lam == pytest.approx(1.5, rel=1e-12)
    limit = get_runner("linear", "gd").stability_limit
    from linsim.solvers import linear_gd

    traj = simulate(cfg)
    X, W0 = traj.inputs, traj.arrays["init"]
    below = linear_gd(X, np.zeros((12, 3)), W0, 0.99 * limit / lam, [400])
    above = linear_gd(X, np.zeros((12, 3)), W0, 1.01 * limit / lam, [400], allow_divergence=True)
    assert np.abs(below).max() < 1e-1 * np.abs(traj.outputs[:, 0]).max()
    assert np.abs(above).max() > 1e1 * np.abs(traj.outputs[:, 0]).max()


def test_entries_are_consistent():
    config_fields = {f.name for f in fields(EnsembleConfig)}
    assert set(runners.COMMON_FIELDS) <= config_fields
    for key in KEYS:
        entry = get_runner(*key)
        assert entry.key == key
        assert set(entry.config_fields) <= config_fields, key
        if entry.theory is not None:
            assert entry.theory.loss in ("squared", "cross_entropy")
    assert runners.theory_runners() == tuple(k for k in KEYS if runners.has_theory(*k))


def _zero_run(problem: Problem) -> RunResult:
    c = problem.config
    W0 = problem.gaussian_init()
    out = np.broadcast_to(problem.inputs @ W0.transpose(0, 2, 1), (problem.steps.size,) + (c.n_runs, problem.inputs.shape[0], c.n_classes))
    return RunResult(np.ascontiguousarray(out.transpose(1, 0, 2, 3)), {"init": W0})


def test_register_runner_plugs_a_new_model_into_simulate_and_validate():
    frozen = Runner("frozen", "gd", _zero_run, stability_limit=0.5, description="never moves")
    register_runner(frozen)
    try:
        cfg = replace(BASE, model="frozen", optimizer="gd")
        traj = simulate(cfg)
        np.testing.assert_array_equal(traj.outputs[:, -1], traj.outputs[:, 0])
        assert traj.params["model"] == "frozen"
        with pytest.raises(ValueError, match=r"stability limit 0.5/lambda_1"):
            replace(cfg, lr=0.5).validate()  # the entry's limit, not a constant in validate
        with pytest.raises(ValueError, match="already registered"):
            register_runner(frozen)
        with pytest.raises(ValueError, match="not available for model='frozen'"):
            replace(cfg, optimizer="flow").validate()
    finally:
        assert unregister_runner("frozen", "gd") is frozen
    with pytest.raises(ValueError, match="model must be one of"):
        replace(BASE, model="frozen").validate()
    with pytest.raises(ValueError, match="no runner registered"):
        unregister_runner("frozen", "gd")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(model="", optimizer="gd", run=_zero_run), "model must be a non-empty string"),
        (dict(model="m", optimizer="gd", run=None), "run must be callable"),
        (dict(model="m", optimizer="gd", run=_zero_run, time_unit="epoch"), "time_unit"),
        (dict(model="m", optimizer="gd", run=_zero_run, stability_limit=-1.0), "stability_limit must be > 0"),
        (dict(model="m", optimizer="gd", run=_zero_run, theory=3), "theory must be callable"),
    ],
)
def test_runner_validates_its_fields(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Runner(**kwargs)


@pytest.mark.parametrize("key", runners.theory_runners(), ids=lambda k: "/".join(k))
def test_theory_hook_predicts_its_runner_at_small_logits(key):
    """A runner that declares a theory hook must be predicted by it where the theory is exact."""
    from linsim.embed import embed
    from linsim.theory_inputs import predict_spectra

    cfg = _cfg(key, n_samples=40, dim=6, n_runs=4, teacher_scale=0.01, init_scale=0.01, steps=40)
    traj = simulate(cfg)
    sim = embed(traj).model.eigenvalues_[:4]
    pred = predict_spectra(traj, n_draws=2)
    np.testing.assert_allclose(pred.draw[:4], sim, rtol=0.02)
    assert pred.expected.shape == pred.draw.shape


@pytest.mark.parametrize(
    "result, match",
    [
        (lambda p: np.zeros(3), "must return a linsim.runners.RunResult"),
        (lambda p: RunResult(np.zeros((1, 1, 1, 1))), r"returned outputs of shape \(1, 1, 1, 1\); expected"),
        (lambda p: RunResult(_zero_run(p).outputs, {"teacher": np.zeros(2)}), r"returned arrays \['teacher'\]"),
    ],
)
def test_simulate_checks_what_a_runner_returns(result, match):
    register_runner(Runner("broken", "gd", result))
    try:
        with pytest.raises((TypeError, ValueError), match=f"runner broken/gd {match}" if "must" in match else match):
            simulate(replace(BASE, model="broken"))
    finally:
        unregister_runner("broken", "gd")
