"""theory_inputs: one typed bridge from a simulated trajectory to the analytic theory.

Oracles: the simulated InPCA spectrum itself (exact softmax + Bhattacharyya + InPCA) in the
small-logit regime, where the theory is exact to second order; the stored eigenbasis
(not a re-decomposition); hand-derived steps and learning rates.
"""

from dataclasses import replace

import numpy as np
import pytest

from linsim import runners
from linsim.embed import embed
from linsim.ensemble import EnsembleConfig, simulate
from linsim.theory_inputs import TheoryInputs, TheorySpectra, predict_spectra, theory_inputs
from linsim.trajectory import Trajectory

# lambda_1 = 1.5: the default lr is 1/1.5, so a hard-coded lr = 1 is visibly wrong
SMALL_LOGITS = EnsembleConfig(n_samples=80, dim=12, n_classes=4, n_runs=6, steps=60, n_checkpoints=6,
                              lambda_1=1.5, slope=0.5, teacher_scale=0.01, init_scale=0.01, seed=3)


def _top(values, k):
    v = np.asarray(values)
    return v[np.argsort(-np.abs(v))][:k]


@pytest.mark.parametrize("model, loss", [("linear", "squared"), ("softmax", "cross_entropy")])
@pytest.mark.parametrize("optimizer", ["gd", "flow"])
def test_prediction_matches_simulated_inpca_spectrum_at_lambda1_1p5(model, loss, optimizer):
    traj = simulate(replace(SMALL_LOGITS, model=model, optimizer=optimizer))
    inp = theory_inputs(traj)
    assert inp.dynamics == optimizer and inp.loss == loss
    assert inp.lr == pytest.approx(1 / 1.5, rel=1e-15)
    sim = _top(embed(traj).model.eigenvalues_, 5)
    pred = _top(inp.quadratic_spectrum(), 5)
    np.testing.assert_allclose(pred, sim, rtol=0.01)
    if (model, optimizer) == ("linear", "gd"):
        # the README's old recipe (lr = 1.0) is 8-23% off on the top five: the oracle
        # above can tell the right learning rate from the wrong one
        import theory

        wrong = theory.quadratic_spectrum(inp.eigenvalues, inp.teacher, inp.init, 1.0, inp.steps)
        assert np.max(np.abs(_top(wrong, 5) / sim - 1)) > 0.1  # 10x the tolerance above


def test_uses_the_stored_eigenpairs_without_decomposing(monkeypatch):
    traj = simulate(replace(SMALL_LOGITS, n_runs=2))
    V = traj.arrays["eigenvectors"].copy()
    V[:, 0] *= -1.0  # another valid eigenbasis: the result must follow the stored one
    arrays = dict(traj.arrays, eigenvectors=V)
    flipped = Trajectory(outputs=traj.outputs, times=traj.times, params=traj.params, arrays=arrays,
                         inputs=traj.inputs, labels=traj.labels)

    def forbidden(*args, **kwargs):
        raise AssertionError("theory_inputs must not decompose Sigma again")

    for name in ("svd", "eigh", "eig", "eigvalsh"):
        monkeypatch.setattr(np.linalg, name, forbidden)
    inp = theory_inputs(flipped)
    np.testing.assert_array_equal(inp.teacher[:, 0], -(traj.arrays["teacher"] @ traj.arrays["eigenvectors"])[:, 0])
    np.testing.assert_array_equal(inp.eigenvalues, traj.arrays["eigenvalues"])
    assert not inp.eigenvalues.flags.writeable and not inp.init.flags.writeable


def test_steps_follow_selected_checkpoints_and_flow_times():
    gd = simulate(replace(SMALL_LOGITS, n_runs=2))
    sub = gd.select(checkpoints=[0, 2, 4])
    assert theory_inputs(sub).steps.tolist() == gd.arrays["steps"][[0, 2, 4]].tolist()
    flow = simulate(replace(SMALL_LOGITS, n_runs=2, optimizer="flow", lr=0.25))
    inp = theory_inputs(flow)
    assert inp.steps.tolist() == flow.arrays["steps"].tolist()
    np.testing.assert_allclose(inp.times, 0.25 * flow.arrays["steps"], rtol=1e-15)
    assert inp.theory_lr is None and theory_inputs(gd).theory_lr == pytest.approx(1 / 1.5)


def test_from_config_gives_population_inputs_for_the_expectation():
    inp = theory_inputs(replace(SMALL_LOGITS, lr=0.5))
    lam = 1.5 * np.exp(-0.5 * np.arange(12))
    np.testing.assert_allclose(inp.eigenvalues, lam, rtol=1e-15)
    assert inp.lr == 0.5 and not inp.has_draw and inp.teacher is None
    assert inp.steps[0] == 0 and inp.steps[-1] == 60
    with pytest.raises(ValueError, match="only expected_spectrum"):
        inp.quadratic_spectrum()
    # the expectation from the config equals the one from a simulated trajectory (exact data)
    traj = simulate(replace(SMALL_LOGITS, lr=0.5))
    a, b = inp.expected_spectrum(n_draws=4), theory_inputs(traj).expected_spectrum(n_draws=4)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * abs(b[0]))


def test_predict_spectra_is_the_registry_gate():
    for model, optimizer in runners.registered():
        cfg = replace(SMALL_LOGITS, model=model, optimizer=optimizer, n_runs=2, steps=5, n_checkpoints=2)
        out = predict_spectra(cfg, n_draws=2)
        assert (out is not None) == runners.has_theory(model, optimizer)
    deep = Trajectory(outputs=np.zeros((1, 2, 3, 2)), times=[0.0, 1.0], params=dict(model="mlp", optimizer="adam"))
    assert predict_spectra(deep) is None
    traj = simulate(replace(SMALL_LOGITS, n_runs=3))
    spectra = predict_spectra(traj, n_draws=3)
    assert isinstance(spectra, TheorySpectra)
    np.testing.assert_allclose(spectra.draw, theory_inputs(traj).quadratic_spectrum(), rtol=1e-15)
    assert spectra.expected.shape == spectra.draw.shape


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: simulate(replace(SMALL_LOGITS, model="two_layer", hidden=3, n_runs=2)), "no analytic theory.*two_layer"),
        (lambda: simulate(replace(SMALL_LOGITS, n_test=5, n_runs=2), "test"), "split='test'"),
        (lambda: simulate(replace(SMALL_LOGITS, n_runs=3)).select(runs=[0, 2]), r"select\(runs"),
        (lambda: Trajectory(outputs=np.zeros((1, 2, 3, 2)), times=[0.0, 1.0]), r"params\['model'\]"),
        (lambda: Trajectory(outputs=np.zeros((1, 2, 3, 2)), times=[0.0, 1.0], params=dict(model="mlp", optimizer="adam")),
         "model='mlp', optimizer='adam' is not a linsim runner.*the theory covers: linear/gd"),
        (lambda: Trajectory(outputs=np.zeros((1, 2, 3, 2)), times=[0.0, 1.5],
                            params=dict(model="linear", optimizer="gd", lr_effective=1.0)), r"arrays\['eigenvalues'\]"),
    ],
)
def test_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        theory_inputs(make())


def test_non_integer_checkpoint_and_wrong_type():
    traj = simulate(replace(SMALL_LOGITS, n_runs=2))
    odd = Trajectory(outputs=traj.outputs, times=traj.times + 0.5, params=traj.params, arrays=traj.arrays)
    with pytest.raises(ValueError, match="checkpoint 0 is not an integer step"):
        theory_inputs(odd)
    with pytest.raises(TypeError, match="Trajectory or an EnsembleConfig"):
        theory_inputs({"eigenvalues": [1.0]})


def test_theory_inputs_validates_its_fields():
    base = dict(model="linear", optimizer="gd", eigenvalues=[1.0, 0.5], teacher=np.zeros((2, 2)),
                init=np.zeros((3, 2, 2)), lr=1.0, steps=[0, 1], times=[0.0, 1.0], dynamics="gd",
                loss="squared", n_classes=2, n_runs=3, teacher_scale=1.0, init_scale=1.0)
    TheoryInputs(**base)
    for change, match in [({"dynamics": "sgd"}, "dynamics"), ({"loss": "hinge"}, "loss"),
                          ({"eigenvalues": [1.0, -0.5]}, "eigenvalues"), ({"init": np.zeros((2, 2, 2))}, "init"),
                          ({"teacher": np.zeros((3, 2))}, "teacher"), ({"times": [0.0]}, "same length"),
                          ({"n_classes": 2.7}, "n_classes must be an integer"), ({"n_runs": 0}, "n_runs must be >= 1"),
                          ({"lr": 0.0}, "lr must be finite and > 0"), ({"init_scale": -1.0}, "init_scale"),
                          ({"teacher_scale": np.nan}, "teacher_scale"), ({"lr": "1"}, "lr must be a real number")]:
        with pytest.raises((ValueError, TypeError), match=match):
            TheoryInputs(**{**base, **change})
    assert "linear/gd" in repr(TheoryInputs(**base))


def test_a_saved_and_reloaded_trajectory_gives_the_same_inputs(tmp_path):
    traj = simulate(replace(SMALL_LOGITS, n_runs=2))
    back = Trajectory.load(traj.save(tmp_path / "traj.nc"))
    a, b = theory_inputs(traj), theory_inputs(back)
    for name in ("eigenvalues", "teacher", "init", "steps", "times"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.lr, a.dynamics, a.loss, a.n_classes) == (b.lr, b.dynamics, b.loss, b.n_classes)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12)
@given(lambda_1=st.floats(0.1, 10.0), frac=st.one_of(st.none(), st.floats(0.05, 1.9)),
       optimizer=st.sampled_from(["gd", "flow"]), steps=st.integers(0, 500))
def test_inputs_carry_the_learning_rate_and_steps_that_were_used(lambda_1, frac, optimizer, steps):
    lr = None if frac is None else frac / lambda_1
    cfg = EnsembleConfig(n_samples=8, dim=3, n_classes=2, n_runs=2, steps=steps, n_checkpoints=4,
                         lambda_1=lambda_1, lr=lr, optimizer=optimizer)
    traj = simulate(cfg)
    inp = theory_inputs(traj)
    assert inp.lr == traj.params["lr_effective"] == (1 / lambda_1 if lr is None else lr)
    assert inp.steps.tolist() == traj.arrays["steps"].tolist()
    np.testing.assert_allclose(inp.eigenvalues[0], lambda_1, rtol=1e-12)
    from_cfg = theory_inputs(cfg)
    assert from_cfg.lr == inp.lr and from_cfg.steps.tolist() == inp.steps.tolist()
    np.testing.assert_allclose(from_cfg.times, inp.times, rtol=1e-15)
