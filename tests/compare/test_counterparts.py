"""Linear counterparts: same inputs and schedule, exact closed forms, seeds, NTK of `linear`."""
import numpy as np
import pytest
import torch

from linsim.compare.counterparts import (COUNTERPARTS, CounterpartProblem, build_counterparts,
                                         precomputed_kernel_gd)
from linsim.solvers import linear_gd


def _problem(networks=None, **kw):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    base = dict(X_train=X, y_train=y, X_eval=X[::4], y_eval=y[::4], n_classes=3, steps=[0, 2, 20, 200],
                init_rms=0.3, n_runs=3, seed=5, networks=networks, label="toy")
    base.update(kw)
    return CounterpartProblem(**base)


def test_every_counterpart_shares_inputs_labels_and_schedule():
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
            for _ in range(3)]
    prob = _problem(networks=lambda r: nets[r])
    trajs, ntk = build_counterparts(prob, options={"random_features": {"n_features": 24}})
    assert set(trajs) == set(COUNTERPARTS)
    for name, t in trajs.items():
        assert t.outputs.shape == (3, 4, 10, 3), name
        np.testing.assert_array_equal(t.times, [0, 2, 20, 200])
        np.testing.assert_array_equal(t.inputs, prob.flat_eval)
        np.testing.assert_array_equal(t.labels, prob.y_eval)
        assert t.params["family"] == name and t.params["counterpart_of"] == "toy"
    assert len(ntk) == 3 and np.all(np.diff(ntk[0].spectrum) <= 1e-12)
    # the NTK counterpart starts at the networks' own outputs
    with torch.no_grad():
        z0 = nets[1](torch.as_tensor(prob.X_eval)).numpy()
    np.testing.assert_allclose(trajs["ntk"].outputs[1, 0], z0, atol=1e-12)


def test_linear_counterpart_is_the_closed_form_with_bias_and_matched_init_scale():
    prob = _problem(n_runs=200)
    t, _ = build_counterparts(prob, ["linear"])
    lin = t["linear"]
    # initial logits have the deep nets' RMS (up to sampling error of 200 runs)
    assert np.sqrt(np.mean(lin.outputs[:, 0] ** 2)) == pytest.approx(0.3, rel=0.1)
    # recover W0 from the step-0 train outputs is not possible; instead check the dynamics: GD from
    # any W0 is affine in W0, so the difference of two runs decays like the closed form predicts
    Xa = np.hstack([prob.flat_train, np.ones((40, 1))])
    Za = np.hstack([prob.flat_eval, np.ones((10, 1))])
    lr = lin.params["lr"]
    assert lr == pytest.approx(1 / np.linalg.eigvalsh(Xa.T @ Xa / 40)[-1])
    W_zero = np.zeros((1, 3, Xa.shape[1]))
    zero_start = linear_gd(Xa, prob.one_hot(), W_zero, lr, prob.steps, inputs=Za)[0]
    # the mean over runs starts near 0 -> its trajectory approaches the zero-start trajectory
    mean = lin.outputs.mean(axis=0)
    assert np.max(np.abs(mean[-1] - zero_start[-1])) < 0.1


def test_same_seed_same_numbers_and_seed_changes_draws():
    small = {"random_features": {"n_features": 32}}
    a, _ = build_counterparts(_problem(), ["linear", "softmax", "random_features"], options=small)
    b, _ = build_counterparts(_problem(), ["linear", "softmax", "random_features"], options=small)
    c, _ = build_counterparts(_problem(seed=6), ["linear"])
    assert a["random_features"].params["n_features"] == 32
    for name in a:
        np.testing.assert_array_equal(a[name].outputs, b[name].outputs)
    assert not np.allclose(a["linear"].outputs, c["linear"].outputs)


def test_registering_another_counterpart_changes_no_ones_numbers(monkeypatch):
    from linsim.compare.counterparts import CounterpartEntry

    small = {"random_features": {"n_features": 16}}
    before, _ = build_counterparts(_problem(), ["linear", "random_features"], options=small)
    monkeypatch.setitem(COUNTERPARTS, "aaa", CounterpartEntry("aaa", COUNTERPARTS["linear"].solve, "a copy"))
    after, _ = build_counterparts(_problem(), ["aaa", "random_features", "linear"], options=small)
    for name in before:
        np.testing.assert_array_equal(after[name].outputs, before[name].outputs)
    assert not np.allclose(after["aaa"].outputs, after["linear"].outputs)  # its own draws


@pytest.mark.parametrize("p", [7, 60])
def test_feature_models_wider_than_the_training_set_use_the_exact_dual(p):
    """Linear GD on features F (n, p): primal closed form when p <= n, kernel form beyond (n = 12)."""
    from linsim.compare.counterparts import _feature_gd

    rng = np.random.default_rng(p)
    F, Fz = rng.normal(size=(12, p)), rng.normal(size=(5, p))
    Y, W0 = np.eye(3)[rng.integers(0, 3, 12)], rng.normal(size=(2, 3, p))
    lr = 1.0 / np.linalg.eigvalsh(F @ F.T / 12)[-1]
    steps = [0, 1, 7, 300]
    np.testing.assert_allclose(_feature_gd(F, Y, W0, lr, steps, Fz), linear_gd(F, Y, W0, lr, steps, inputs=Fz),
                               rtol=1e-9, atol=1e-10)


def test_ntk_counterpart_of_a_linear_network_is_the_linear_closed_form():
    torch.manual_seed(3)
    net = torch.nn.Linear(5, 3, bias=False).double()
    prob = _problem(networks=lambda r: net, n_runs=1)
    t, ntk = build_counterparts(prob, ["ntk"])
    X = prob.flat_train
    lam = np.linalg.eigvalsh(X.T @ X / 40)[::-1]
    np.testing.assert_allclose(ntk[0].spectrum[:5], lam, rtol=1e-10)
    W0 = net.weight.detach().numpy()[None]
    want = linear_gd(X, prob.one_hot(), W0, 1 / lam[0], prob.steps, inputs=prob.flat_eval)
    np.testing.assert_allclose(t["ntk"].outputs, want, rtol=1e-9, atol=1e-10)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs CounterpartProblem.networks"):
        build_counterparts(_problem(), ["ntk"])
    with pytest.raises(ValueError, match="unknown counterpart 'svm'"):
        build_counterparts(_problem(), ["svm"])
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        build_counterparts(_problem(), ["random_features"], options={"random_features": {"n_features": 0}})
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        _problem(seed=-1)
    with pytest.raises(ValueError, match="has no option 'depth'"):
        build_counterparts(_problem(), ["random_features"], options={"random_features": {"depth": 2}})
    with pytest.raises(ValueError, match="y_eval"):
        _problem(y_eval=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="K_train must be a square"):
        precomputed_kernel_gd(np.zeros((2, 3)), np.zeros((2, 1)), np.zeros((1, 2, 1)), 0.1, [0])


def test_problem_from_a_trained_deep_configuration():
    pytest.importorskip("linsim.deep.train")
    from linsim.compare.counterparts import problem_from_deep
    from linsim.deep.config import TrainConfig
    from linsim.deep.train import train

    cfg = TrainConfig(dataset="digits", n_train=48, n_test=8, architecture="linear", batch_size=16, steps=4,
                      n_checkpoints=2, n_runs=2, device="cpu", engine="loop", eval_stride=2)
    res = train(cfg)
    prob = problem_from_deep(res.train, n_runs=2)  # checks the rebuilt init against step 0
    np.testing.assert_array_equal(prob.y_eval, res.train.labels)
    t, _ = build_counterparts(prob, ["ntk", "linear"])
    # NTK of the bias-free `linear` architecture is X X^T: the lazy prediction is exact
    np.testing.assert_allclose(t["ntk"].outputs[:, 0], res.train.outputs[:, 0], atol=1e-4)
    np.testing.assert_array_equal(t["linear"].times, res.train.times)
    assert t["linear"].inputs is res.train.inputs or np.array_equal(t["linear"].inputs, res.train.inputs)
