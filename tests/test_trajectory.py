"""The shared Trajectory type: validation, probabilities, selection, netCDF round trip."""

import numpy as np
import pytest

from linsim.trajectory import Trajectory


def _traj(model="softmax", C=4, **kw):
    rng = np.random.default_rng(0)
    return Trajectory(
        outputs=rng.normal(size=(2, 3, 5, C)),
        times=[0, 1, 10],
        output_model=model,
        params={"lr": 0.5, "model": "linear", "seed": np.int64(3)},
        inputs=rng.normal(size=(5, 7)),
        labels=[0, 1, 0, 1, 0],
        arrays={"teacher": rng.normal(size=(C, 7))},
        **kw,
    )


def test_softmax_log_probs_normalized_and_stable_for_huge_logits():
    t = _traj()
    lp = t.log_probs()
    assert lp.shape == (6, 5, 4)
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, atol=1e-14)
    big = Trajectory(outputs=np.array([[[[1000.0, 0.0]]]]), times=[0])
    np.testing.assert_allclose(big.log_probs()[0, 0], [0.0, -1000.0], atol=0)


def test_bernoulli_log_probs_match_sigmoid_and_stay_finite():
    z = np.array([-800.0, -2.0, 0.0, 3.0, 800.0]).reshape(1, 1, 5, 1)
    lp = Trajectory(outputs=z, times=[0], output_model="bernoulli").log_probs()[0]
    sig = 1 / (1 + np.exp(-np.array([-2.0, 0.0, 3.0])))
    np.testing.assert_allclose(np.exp(lp[1:4, 1]), sig, rtol=1e-14)
    np.testing.assert_allclose(lp[[0, 4], :], [[0.0, -800.0], [-800.0, 0.0]])


def test_flat_order_is_run_major():
    t = _traj()
    r, k = t.point_index()
    flat = t.flat_outputs()
    for m in range(t.n_points):
        np.testing.assert_array_equal(flat[m], t.outputs[r[m], k[m]])
    assert (r[3], k[3]) == (1, 0)


def test_select_and_round_trip(tmp_path):
    t = _traj()
    s = t.select(runs=[1], checkpoints=[0, 2])
    assert s.outputs.shape == (1, 2, 5, 4)
    np.testing.assert_array_equal(s.times, [0, 10])
    back = Trajectory.load(t.save(tmp_path / "t.nc"))
    np.testing.assert_array_equal(back.outputs, t.outputs)
    np.testing.assert_array_equal(back.arrays["teacher"], t.arrays["teacher"])
    np.testing.assert_array_equal(back.labels, t.labels)
    assert back.params == {"lr": 0.5, "model": "linear", "seed": 3}
    assert back.output_model == "softmax" and back.time_unit == "step"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"outputs": np.zeros((2, 3, 4))}, "shape"),
        ({"outputs": np.full((1, 1, 2, 2), np.nan)}, "NaN"),
        ({"times": [0, 2, 1]}, "non-decreasing"),
        ({"times": [0, 1]}, "times"),
        ({"output_model": "poisson"}, "output_model"),
        ({"output_model": "bernoulli"}, "C == 1"),
        ({"inputs": np.zeros((4, 2))}, "inputs"),
        ({"labels": [0, 1]}, "labels"),
        ({"params": {"w": np.zeros(3)}}, "scalar"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    base = dict(outputs=np.zeros((1, 3, 5, 2)), times=[0, 1, 2])
    base.update(kwargs)
    if "outputs" in kwargs and "times" not in kwargs:
        base["times"] = np.arange(np.asarray(kwargs["outputs"]).shape[1]) if np.asarray(kwargs["outputs"]).ndim == 4 else [0]
    with pytest.raises((ValueError, TypeError), match=match):
        Trajectory(**base)


def test_gaussian_has_no_log_probs():
    t = _traj(model="gaussian", noise_scale=0.5)
    with pytest.raises(ValueError, match="gaussian"):
        t.log_probs()
