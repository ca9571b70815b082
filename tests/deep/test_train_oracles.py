"""The trainer against linsim's exact solvers (float64, full batch, plain GD).

Each test trains with linsim.deep.train and recomputes the same trajectory with an
independent solver of linsim.solvers from the model's extracted initial weights and the
inputs the trajectory records; agreement is required to 1e-10 relative at every checkpoint.
"""

import numpy as np
import pytest

from linsim.deep.config import TrainConfig
from linsim.deep.train import run_streams, torch_threads, train
from linsim.solvers.linear import linear_gd
from linsim.solvers.softmax import softmax_gd
from linsim.solvers.two_layer import two_layer_gd


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets: one intra-op thread is several times faster on a busy CPU (restored after)."""
    with torch_threads(1):
        yield


def _arrays(n=60, n_test=20, d=6, C=3, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.exp(-0.4 * np.arange(d))
    X = rng.normal(size=(n, d)) * scales
    Xt = rng.normal(size=(n_test, d)) * scales
    W = rng.normal(size=(C, d))
    return X, np.argmax(X @ W.T, 1), Xt, np.argmax(Xt @ W.T, 1)


def _onehot(y, C):
    return np.eye(C)[y]


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _lam_max(X):
    return float(np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1])


def _base(**kw):
    cfg = dict(optimizer="sgd", momentum=0.0, weight_decay=0.0, dtype="float64", device="cpu",
               n_runs=3, steps=60, n_checkpoints=8, seed=4)
    cfg.update(kw)
    return TrainConfig(**cfg)


def test_linear_mse_full_batch_follows_linear_gd():
    data = _arrays()
    n, C = data[0].shape[0], 3
    lr = 1.0 / _lam_max(data[0])
    res = train(_base(dataset=data, architecture="linear", loss="mse", lr=lr, batch_size=n))
    X, Y = res.train.inputs, _onehot(res.train.labels, C)
    np.testing.assert_array_equal(X, data[0])          # normalization "none" for user arrays
    W0 = res.initial_params["linear.weight"]
    steps = res.train.times.astype(int)
    ref = linear_gd(X, Y, W0, lr, steps)
    assert res.train.outputs.dtype == np.float64
    assert _rel(res.train.outputs, ref) < 1e-10
    ref_test = linear_gd(X, Y, W0, lr, steps, inputs=res.test.inputs)
    assert _rel(res.test.outputs, ref_test) < 1e-10
    # per-sample loss is 0.5 ||f - y||^2 of the recorded logits
    np.testing.assert_allclose(res.train.arrays["loss"], 0.5 * ((ref - Y) ** 2).sum(-1), rtol=1e-9)
    # and the test can fail: a slightly different learning rate is far outside the tolerance
    assert _rel(res.train.outputs, linear_gd(X, Y, W0, lr * 1.001, steps)) > 1e-6


def test_linear_mse_on_digits_uses_the_normalized_inputs():
    cfg0 = _base(dataset="digits", n_train=80, n_test=30, architecture="linear", loss="mse",
                 lr=0.01, batch_size=80, steps=30, n_checkpoints=5, n_runs=2)
    from linsim.deep.data import load_dataset

    ds = load_dataset("digits", n_train=80, n_test=30, dtype="float64")
    Xf = ds.X_train.reshape(80, -1)
    lr = 1.0 / _lam_max(Xf)
    res = train(cfg0.replace(lr=lr))
    np.testing.assert_array_equal(res.train.inputs, Xf)
    ref = linear_gd(Xf, _onehot(ds.y_train, 10), res.initial_params["linear.weight"], lr,
                    res.train.times.astype(int))
    assert _rel(res.train.outputs, ref) < 1e-10


def test_linear_cross_entropy_follows_softmax_gd():
    data = _arrays(seed=1)
    n, C = data[0].shape[0], 3
    lr = 2.0 / _lam_max(data[0])
    res = train(_base(dataset=data, architecture="linear", loss="cross_entropy", lr=lr,
                      batch_size=n, steps=40))
    X, Q = res.train.inputs, _onehot(res.train.labels, C)
    W0 = res.initial_params["linear.weight"]
    steps = res.train.times.astype(int)
    ref = softmax_gd(X, Q, W0, lr, steps)
    assert _rel(res.train.outputs, ref) < 1e-10
    assert _rel(res.test.outputs, softmax_gd(X, Q, W0, lr, steps, inputs=res.test.inputs)) < 1e-10
    logp = ref - np.log(np.exp(ref).sum(-1, keepdims=True))
    np.testing.assert_allclose(res.train.arrays["loss"], -(Q * logp).sum(-1), rtol=1e-9, atol=1e-13)


def test_deep_linear_two_layers_follows_two_layer_gd():
    data = _arrays(seed=2)
    n, C = data[0].shape[0], 3
    lr = 0.3 / _lam_max(data[0])
    res = train(_base(dataset=data, architecture="deep_linear", depth=2, width=0.25,
                      loss="mse", lr=lr, batch_size=n, steps=50))
    W1 = res.initial_params["layers.0.weight"]
    W2 = res.initial_params["layers.1.weight"]
    assert W1.shape[0] == 3 and W2.shape[1:] == (C, W1.shape[1])
    X, Y = res.train.inputs, _onehot(res.train.labels, C)
    steps = res.train.times.astype(int)
    ref = two_layer_gd(X, Y, W1, W2, lr, steps)
    assert _rel(res.train.outputs, ref) < 1e-10
    assert _rel(res.test.outputs, two_layer_gd(X, Y, W1, W2, lr, steps, inputs=res.test.inputs)) < 1e-10


def test_corner_start_is_gd_on_random_labels_then_on_the_true_ones():
    data = _arrays(seed=3)
    n, C = data[0].shape[0], 3
    lr = 1.0 / _lam_max(data[0])
    plain = train(_base(dataset=data, architecture="linear", loss="mse", lr=lr, batch_size=n,
                        steps=0, n_runs=2))
    corner = train(_base(dataset=data, architecture="linear", loss="mse", lr=lr, batch_size=n,
                         steps=20, n_checkpoints=4, n_runs=2, init="corner", corner_steps=7))
    X = corner.train.inputs
    W_init = plain.initial_params["linear.weight"]     # same init stream, "default" scheme
    rand = np.stack([np.random.default_rng(run_streams(4, r)[3]).integers(0, C, size=n)
                     for r in range(2)])
    for r in range(2):
        after_corner = linear_gd(X, _onehot(rand[r], C), W_init[r:r + 1], lr, [7])
        np.testing.assert_allclose(corner.train.outputs[r, 0], after_corner[0, 0], rtol=1e-10,
                                   atol=1e-12)
    ref = linear_gd(X, _onehot(corner.train.labels, C), corner.initial_params["linear.weight"],
                    lr, corner.train.times.astype(int))
    assert corner.train.times[0] == 0
    assert _rel(corner.train.outputs, ref) < 1e-10
