"""The vectorized trainer: equal to a plain loop, deterministic, divergence, contracts."""

import numpy as np
import pytest
import torch

from linsim.deep.config import TrainConfig
from linsim.deep.train import torch_threads, train
from linsim.embed import embed


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets: one intra-op thread is several times faster on a busy CPU (restored after)."""
    with torch_threads(1):
        yield


def _small(**kw):
    cfg = dict(dataset="digits", n_train=96, n_test=24, architecture="mlp", width=0.25, depth=2,
               batch_size=16, steps=12, n_checkpoints=4, n_runs=3, seed=7, device="cpu")
    cfg.update(kw)
    return TrainConfig(**cfg)


@pytest.mark.parametrize("optimizer, extra", [
    ("sgd", dict(momentum=0.9, weight_decay=1e-3, lr_schedule="cosine")),
    ("nesterov", dict(weight_decay=1e-3)),
    ("adam", dict(lr=1e-2, weight_decay=1e-4)),
    ("adamw", dict(lr=1e-2, weight_decay=1e-2, lr_schedule="cosine")),
])
def test_vmapped_ensemble_equals_a_loop_over_the_models(optimizer, extra):
    """vmap + functional optimizer vs plain modules + autograd + torch.optim, float64."""
    cfg = _small(optimizer=optimizer, dtype="float64", batch_norm=True, augment=True, **extra)
    a = train(cfg)
    b = train(cfg.replace(engine="loop"))
    for split in ("train", "test"):
        x, y = getattr(a, split).outputs, getattr(b, split).outputs
        assert np.max(np.abs(x - y)) <= 1e-9 * np.max(np.abs(y))
        np.testing.assert_allclose(getattr(a, split).arrays["loss"], getattr(b, split).arrays["loss"],
                                   rtol=1e-8, atol=1e-12)
    # the runs really are different models, trained on different batches
    assert np.max(np.abs(a.train.outputs[0, -1] - a.train.outputs[1, -1])) > 1e-3
    for name in a.final_params:
        np.testing.assert_allclose(a.final_params[name], b.final_params[name], rtol=1e-8, atol=1e-10)


def test_a_run_does_not_depend_on_the_ensemble_size():
    big = train(_small(n_runs=3, augment=True, optimizer="nesterov", dtype="float64"))
    one = train(_small(n_runs=1, augment=True, optimizer="nesterov", dtype="float64"))
    np.testing.assert_allclose(big.train.outputs[:1], one.train.outputs, rtol=1e-10, atol=1e-12)


def test_cpu_training_is_bitwise_deterministic_and_float32_by_default():
    cfg = _small(dataset="mnist1d", n_train=64, n_test=32, architecture="cnn", width=0.25,
                 augment=True, batch_size=16, steps=6, n_runs=2, optimizer="adam", lr=1e-3)
    a, b = train(cfg), train(cfg)
    assert a.train.outputs.dtype == np.float32
    np.testing.assert_array_equal(a.train.outputs, b.train.outputs)
    np.testing.assert_array_equal(a.test.outputs, b.test.outputs)
    c = train(cfg.replace(seed=8))
    assert not np.array_equal(a.train.outputs[:, -1], c.train.outputs[:, -1])


def test_trajectory_contents_and_embedding():
    cfg = _small(eval_stride=2, steps=10, n_checkpoints=3)
    res = train(cfg)
    tr, te = res.train, res.test
    assert tr.outputs.shape == (3, tr.times.size, 48, 10) and te.outputs.shape[2] == 24
    assert tr.time_unit == "step" and tr.times[0] == 0 and tr.times[-1] == 10
    assert tr.inputs.shape == (48, 64)
    assert tr.params["architecture"] == "mlp" and tr.params["split"] == "train"
    assert tr.params["lr"] == cfg.lr and tr.params["steps_per_epoch"] == 6
    assert tr.arrays["error"].shape == tr.arrays["loss"].shape == (3, tr.times.size, 48)
    err = (tr.outputs.argmax(-1) != tr.labels).astype(np.float32)
    np.testing.assert_array_equal(tr.arrays["error"], err)
    np.testing.assert_array_equal(tr.arrays["diverged_step"], [-1, -1, -1])
    emb = embed(tr)
    assert emb.model.eigenvalues_.size >= 1 and np.all(np.isfinite(emb.model.eigenvalues_))


def test_evaluation_uses_unaugmented_inputs_in_eval_mode():
    """Step-0 logits equal a plain eval-mode forward pass of the initial model on X_eval."""
    from linsim.deep.data import load_dataset

    cfg = _small(batch_norm=True, augment=True, dtype="float64", steps=0)
    res = train(cfg)
    ds = load_dataset("digits", n_train=96, n_test=24, dtype="float64")
    np.testing.assert_array_equal(res.train.inputs, ds.X_train.reshape(96, -1))
    from linsim.deep.models import build_model

    net = build_model("mlp", ds.input_shape, 10, width=0.25, depth=2, batch_norm=True,
                      dtype=torch.float64)
    sd = {k: torch.as_tensor(v[0]) for k, v in res.initial_params.items()}
    net.load_state_dict(sd, strict=False)
    net.eval()
    with torch.no_grad():
        ref = net(torch.as_tensor(ds.X_train)).numpy()
    np.testing.assert_allclose(res.train.outputs[0, 0], ref, rtol=1e-12, atol=1e-12)


def test_divergence_is_recorded_and_runs_are_dropped():
    cfg = _small(architecture="linear", width=1.0, depth=None, loss="mse", lr=1e3, steps=50,
                 n_checkpoints=10, dtype="float32")
    res = train(cfg)
    div = res.diverged_step
    assert div.shape == (3,) and np.all(div >= 0) and np.all(div < 50)
    assert res.n_diverged == 3
    assert res.train.n_runs == 0 and res.test.n_runs == 0
    assert res.train.params["stopped_at"] >= int(div.max())
    np.testing.assert_array_equal(res.train.arrays["diverged_step"], div)


def test_partial_divergence_leaves_other_runs_untouched():
    """Per-run learning rates in one vmapped group: a run blowing up does not leak NaN."""
    from linsim.deep.ensemble import VmapEnsemble
    from linsim.deep.losses import mse
    from linsim.deep.optim import OPTIMIZERS, make_hyper

    torch.manual_seed(0)
    x = torch.randn(30, 2, 8, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (30, 2, 8))
    base = [torch.nn.Linear(4, 3).double() for _ in range(2)]
    both = VmapEnsemble([m for m in base], OPTIMIZERS["sgd"],
                        make_hyper(2, lr=[0.1, 1e8], dtype=torch.float64), mse)
    import copy

    alone = VmapEnsemble([copy.deepcopy(base[0])], OPTIMIZERS["sgd"],
                         make_hyper(1, lr=0.1, dtype=torch.float64), mse)
    with np.errstate(all="ignore"):
        for t in range(30):
            lb = both.train_step(x[t], y[t])
            alone.train_step(x[t, :1], y[t, :1])
    assert not torch.isfinite(lb[1]) and torch.isfinite(lb[0])
    xe = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(both.predict(xe)[0], alone.predict(xe)[0], rtol=1e-12, atol=1e-12)


def test_caller_random_state_and_threads_untouched():
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    threads = torch.get_num_threads()
    train(_small(steps=2, n_runs=1))
    assert torch.get_num_threads() == threads
    train(_small(steps=2, n_runs=1), num_threads=threads + 1)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("kw, match", [
    (dict(architecture="transformer9"), "valid: .*mlp"),
    (dict(optimizer="rmsprop"), "valid: .*adamw"),
    (dict(dataset="imagenet"), "valid: .*digits"),
    (dict(loss="hinge"), "valid: .*mse"),
    (dict(activation="swishy"), "activation.*valid: .*relu"),
    (dict(lr=-1.0), "lr must be"),
    (dict(lr=float("nan")), "lr must be"),
    (dict(batch_size=0), "batch_size"),
    (dict(init="corner"), "corner_steps"),
    (dict(corner_steps=3), "corner_steps"),
    (dict(optimizer="adam", momentum=0.9), "momentum"),
    (dict(dtype="float16"), "dtype"),
    (dict(lr_schedule="step"), "lr_schedule"),
    (dict(schedule="linear"), "schedule"),
    (dict(dataset=(np.zeros((3, 2)),)), "4-tuple"),
])
def test_bad_configurations_are_refused_with_the_field_named(kw, match):
    with pytest.raises(ValueError, match=match):
        _small(**kw)


def test_bad_combinations_with_the_data_are_refused_before_training():
    with pytest.raises(ValueError, match="batch_size=500 exceeds the 96"):
        train(_small(batch_size=500))
    with pytest.raises(ValueError, match="feature vectors"):
        train(_small(dataset="synthetic", dataset_options={"d": 8}, n_train=32, n_test=8,
                     augment=True))


def test_device_none_picks_cuda_only_when_present():
    from linsim.deep.train import resolve_device

    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("tpu7")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_float64_equals_cpu_float64():
    cfg = _small(optimizer="nesterov", dtype="float64", batch_norm=True, augment=True)
    a = train(cfg)
    b = train(cfg.replace(device="cuda"))
    assert b.train.params["device_used"].startswith("cuda")
    np.testing.assert_allclose(b.train.outputs, a.train.outputs, rtol=1e-8, atol=1e-10)
    assert a.config.config_id() == b.config.config_id()


def test_config_identity_and_params():
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=20)
    @given(c=st.floats(0, 2), d=st.integers(2, 50), lr=st.floats(1e-4, 1.0))
    def check(c, d, lr):
        a = TrainConfig(dataset="synthetic", dataset_options={"c": c, "d": d}, lr=lr)
        b = TrainConfig(dataset="synthetic", dataset_options={"d": d, "c": c}, lr=lr, device="cpu",
                        eval_batch_size=7)
        assert a.config_id() == b.config_id() and a == b.replace(device=None, eval_batch_size=1024)
        p = a.params()
        assert p["dataset_c"] == c and p["dataset_d"] == d
        assert all(isinstance(v, (str, int, float, bool)) or v is None for v in p.values())
        assert a.config_id() != a.replace(seed=a.seed + 1).config_id()

    check()


def test_a_group_of_configurations_equals_each_trained_alone():
    """Configurations differing only in seed / lr / momentum / wd / n_runs share one vmap."""
    from linsim.deep.train import train_group

    base = _small(optimizer="sgd", dtype="float64", augment=True, batch_norm=True, steps=8)
    cfgs = [base, base.replace(lr=0.2, momentum=0.9, n_runs=2),
            base.replace(seed=11, weight_decay=1e-2, n_runs=1)]
    grouped = train_group(cfgs)
    for cfg, g in zip(cfgs, grouped):
        alone = train(cfg)
        assert g.config is cfg and g.train.n_runs == cfg.n_runs
        np.testing.assert_allclose(g.train.outputs, alone.train.outputs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g.test.arrays["loss"], alone.test.arrays["loss"], rtol=1e-10,
                                   atol=1e-12)
        assert g.train.params["group_runs"] == 6 and alone.train.params["group_runs"] == cfg.n_runs
    with pytest.raises(ValueError, match=r"differs from configuration 0 in \['steps'\]"):
        train_group([base, base.replace(steps=3)])


@pytest.mark.parametrize("arch, kw", [("cnn", dict(width=0.25, batch_norm=True)),
                                      ("wide_resnet", dict(width=0.25))])
def test_vmapped_conv_nets_with_batchnorm_equal_the_loop(arch, kw):
    """Stacked BatchNorm2d buffers and image crops + flips, against plain modules."""
    cfg = _small(architecture=arch, depth=None, optimizer="nesterov", dtype="float64", augment=True,
                 steps=5, n_checkpoints=2, n_runs=2, batch_size=8, **kw)
    a, b = train(cfg), train(cfg.replace(engine="loop"))
    from linsim.deep.models import build_model

    net = build_model(arch, (1, 8, 8), 10, width=0.25, batch_norm=cfg.batch_norm)
    assert any("running_mean" in name for name, _ in net.named_buffers())
    np.testing.assert_allclose(a.train.outputs, b.train.outputs, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(a.test.outputs, b.test.outputs, rtol=1e-9, atol=1e-11)
