"""embed: output-model registry -> distances -> InPCA.

Oracles: per-pair closed forms written out here with plain numpy (categorical and Bernoulli
Bhattacharyya from probabilities, the Gaussian formula), the in-sample reproduction property
of out-of-sample projection, and the registry covering every output model a Trajectory accepts.
"""

import importlib

import numpy as np
import pytest

from linsim.embed import Embedding, OutputModel, distance_matrix, embed, output_model, output_models, register_output_model
from linsim.ensemble import EnsembleConfig, simulate
from linsim.trajectory import OUTPUT_MODELS, Trajectory

embed_module = importlib.import_module("linsim.embed")  # `from linsim import embed` is the function


def _traj(rng, R=2, K=3, n=4, C=3, model="softmax", dtype=np.float64, scale=2.0, **kw):
    out = (scale * rng.standard_normal((R, K, n, C))).astype(dtype)
    return Trajectory(outputs=out, times=np.arange(K), output_model=model, **kw)


def _categorical_reference(P, Q):
    """-(1/n) sum_i log sum_c sqrt(p q) for every pair, from probabilities (M, n, C)."""
    bc = np.sqrt(P[:, None] * Q[None]).sum(-1)  # (Ma, Mb, n)
    return -np.log(bc).mean(-1)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_every_trajectory_output_model_has_a_distance():
    assert set(OUTPUT_MODELS) <= set(output_models())
    for name in OUTPUT_MODELS:
        assert output_model(name).name == name
    with pytest.raises(ValueError, match="no distance is registered for output model 'poisson'"):
        output_model("poisson")


def test_softmax_distance_matches_the_closed_form_for_float64_and_float32():
    rng = np.random.default_rng(0)
    a, b = _traj(rng), _traj(rng, R=1)
    P = _softmax(a.flat_outputs().astype(np.float64))
    Q = _softmax(b.flat_outputs().astype(np.float64))
    np.testing.assert_allclose(distance_matrix(a), _categorical_reference(P, P), atol=1e-12)
    np.testing.assert_allclose(distance_matrix(a, others=[b]), _categorical_reference(P, Q), atol=1e-12)
    # deep-net outputs arrive as float32: same distance, returned in float64
    a32 = Trajectory(outputs=a.outputs.astype(np.float32), times=a.times)
    P32 = _softmax(a32.outputs.reshape(-1, 4, 3).astype(np.float64))
    D32 = distance_matrix(a32)
    assert D32.dtype == np.float64
    np.testing.assert_allclose(D32, _categorical_reference(P32, P32), atol=2e-6)


def test_bernoulli_and_gaussian_distances_match_closed_forms():
    rng = np.random.default_rng(1)
    t = _traj(rng, C=1, model="bernoulli")
    p = 1 / (1 + np.exp(-t.flat_outputs()[..., 0]))
    P = np.stack([1 - p, p], -1)
    np.testing.assert_allclose(distance_matrix(t), _categorical_reference(P, P), atol=1e-12)
    huge = Trajectory(outputs=np.array([800.0, -800.0]).reshape(1, 2, 1, 1), times=[0, 1], output_model="bernoulli")
    # p = 1 - e^-800 vs e^-800: BC = 2 e^-400, distance = 400 - log 2 exactly
    np.testing.assert_allclose(distance_matrix(huge)[0, 1], 400 - np.log(2), rtol=1e-14)
    g = _traj(rng, model="gaussian", noise_scale=0.5)
    mu = g.flat_outputs()
    ref = ((mu[:, None] - mu[None]) ** 2).sum(-1).mean(-1) / (8 * 0.5**2)
    np.testing.assert_allclose(distance_matrix(g), ref, rtol=1e-12, atol=1e-13)


def test_distance_dispatch_is_a_registry_lookup():
    rng = np.random.default_rng(2)
    t = _traj(rng)
    original = output_model("softmax")
    calls = []

    def fake(a, b, *, device=None):
        calls.append((len(a), b))
        return np.full((6, 6), 7.0)

    register_output_model(OutputModel("softmax", fake), replace=True)
    try:
        np.testing.assert_array_equal(distance_matrix(t), 7.0)
    finally:
        register_output_model(original, replace=True)
    assert calls == [(1, None)]
    assert distance_matrix(t)[0, 0] == 0.0  # restored
    with pytest.raises(ValueError, match="already registered"):
        register_output_model(original)
    with pytest.raises(TypeError, match="OutputModel"):
        register_output_model("softmax")


@pytest.mark.parametrize(
    "others, match",
    [
        (lambda rng: [_traj(rng, model="gaussian")], "output model 'gaussian' but trajectory 0 has 'softmax'"),
        (lambda rng: [_traj(rng, n=5)], r"\(n, C\) = \(5, 3\)"),
        (lambda rng: [np.zeros((2, 3, 4, 3))], "trajectory 1 must be a linsim.Trajectory"),
    ],
)
def test_incompatible_trajectories_are_named(others, match):
    rng = np.random.default_rng(3)
    with pytest.raises((ValueError, TypeError), match=match):
        distance_matrix(_traj(rng), *others(rng))


def test_gaussian_noise_scales_must_agree_and_inputs_must_match():
    rng = np.random.default_rng(4)
    a = _traj(rng, model="gaussian", noise_scale=1.0)
    b = _traj(rng, model="gaussian", noise_scale=2.0)
    with pytest.raises(ValueError, match="trajectory 1: gaussian trajectories must share noise_scale"):
        distance_matrix(a, b)
    x1, x2 = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="different inputs"):
        distance_matrix(_traj(rng, inputs=x1), _traj(rng, inputs=x2))
    with pytest.raises(ValueError, match="at least one"):
        distance_matrix()
    with pytest.raises(ValueError, match="others must hold at least one trajectory"):
        distance_matrix(a, others=[])


def test_embed_points_projection_and_repr():
    rng = np.random.default_rng(5)
    a, b = _traj(rng, R=2, K=3), _traj(rng, R=1, K=3)
    emb = embed(a, b)
    assert emb.distances.shape == (9, 9)
    np.testing.assert_array_equal(emb.points["trajectory"], [0] * 6 + [1] * 3)
    np.testing.assert_array_equal(emb.points["run"], [0, 0, 0, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(emb.points["checkpoint"], [0, 1, 2] * 3)
    assert emb.points.run is emb.points["run"] and list(emb.points) == ["trajectory", "run", "checkpoint", "time"]
    np.testing.assert_array_equal(emb.points.time, np.tile(a.times, 3))
    with pytest.raises(ValueError):
        emb.points.run[0] = 5  # read-only: the embedding's bookkeeping cannot drift
    with pytest.raises(KeyError, match="'epoch'"):
        emb.points["epoch"]
    # out-of-sample projection of the embedded points themselves reproduces their coordinates
    np.testing.assert_allclose(emb.project(a, b), emb.coordinates, atol=1e-10)
    text = repr(emb)
    assert "\n" not in text and len(text) < 200
    assert text.startswith("Embedding(M=9 points from 2 trajectories, output_model='softmax'")
    assert isinstance(emb, Embedding)


def test_embed_of_coinciding_models_says_so():
    cfg = EnsembleConfig(dim=3, n_samples=5, n_classes=2, n_runs=2, steps=3, n_checkpoints=2,
                         teacher_scale=0.0, init_scale=0.0)
    with pytest.raises(ValueError, match="all 6 models coincide"):
        embed(simulate(cfg))


def test_module_exports_resolve():
    for name in embed_module.__all__:
        assert getattr(embed_module, name) is not None


def test_simulate_and_embed_leave_the_callers_thread_settings_alone():
    import os

    import torch
    from threadpoolctl import threadpool_info

    def state():
        pools = sorted((p["internal_api"], p["num_threads"]) for p in threadpool_info())
        return torch.get_num_threads(), pools, dict(os.environ)

    before = state()
    cfg = EnsembleConfig(dim=3, n_samples=6, n_classes=2, n_runs=2, steps=5, n_checkpoints=2)
    for model in ("linear", "softmax"):
        embed(simulate(EnsembleConfig(**{**cfg.__dict__, "model": model})))
    assert state() == before


def test_the_deep_trainers_float32_trajectories_plug_in_unchanged():
    import linsim
    from linsim.deep import TrainConfig, train

    cfg = TrainConfig(dataset="digits", n_train=32, n_test=8, architecture="linear", batch_size=16, steps=4,
                      n_checkpoints=2, n_runs=2, device="cpu")
    res = train(cfg)
    t = res.train
    assert t.outputs.dtype == np.float32
    emb = embed(t)
    P = _softmax(t.flat_outputs().astype(np.float64))
    np.testing.assert_allclose(emb.distances, _categorical_reference(P, P), atol=1e-5)
    assert linsim.predict_spectra(t) is None  # no analytic theory for a deep net: the gate says so
    with pytest.raises(ValueError, match=r"params\['model'\]"):
        linsim.theory_inputs(t)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=15)
@given(model=st.sampled_from(["softmax", "bernoulli", "gaussian"]), R=st.integers(1, 3), K=st.integers(1, 3),
       n=st.integers(1, 4), scale=st.floats(0.0, 30.0), seed=st.integers(0, 2**16))
def test_distance_matrices_are_symmetric_nonnegative_with_zero_diagonal(model, R, K, n, scale, seed):
    rng = np.random.default_rng(seed)
    C = 1 if model == "bernoulli" else 3
    t = _traj(rng, R=R, K=K, n=n, C=C, model=model, scale=scale)
    D = distance_matrix(t)
    assert D.shape == (R * K, R * K) and D.dtype == np.float64
    assert np.all(np.isfinite(D)) and np.all(np.diag(D) == 0.0)
    np.testing.assert_array_equal(D, D.T)
    assert D.min() >= -1e-12 * max(1.0, D.max())
    # the cross block of a trajectory with itself is the same matrix
    np.testing.assert_allclose(distance_matrix(t, others=[t]), D, atol=1e-10 * max(1.0, D.max()))


def test_float32_and_float64_trajectories_mix_in_one_distance_matrix():
    from linsim.inpca import bhattacharyya
    from linsim.trajectory import Trajectory

    rng = np.random.default_rng(5)
    z64 = 3.0 * rng.normal(size=(2, 3, 6, 4))
    z32 = (3.0 * rng.normal(size=(2, 3, 6, 4))).astype(np.float32)
    a, b = Trajectory(outputs=z64, times=[0, 1, 2]), Trajectory(outputs=z32, times=[0, 1, 2])
    from scipy.special import log_softmax

    both = np.concatenate([z64, z32.astype(np.float64)]).reshape(-1, 6, 4)
    expected = bhattacharyya(log_softmax(both, axis=-1))   # oracle: everything in float64
    np.testing.assert_allclose(distance_matrix(a, b), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(distance_matrix(b, others=[a]), expected[6:, :6], rtol=1e-12, atol=1e-15)
