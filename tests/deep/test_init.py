"""Tests of linsim.deep.init: exact distributions of every scheme, scaling, determinism."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from linsim.deep import INITS, build_model, initialize


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _weights(model):
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def test_registry():
    assert {"default", "kaiming", "normal", "standard"} <= set(INITS)
    with pytest.raises(KeyError, match=r"unknown init scheme 'xavier'; valid: \['default', 'kaiming'"):
        initialize(nn.Linear(2, 2), "xavier", generator=gen())


@pytest.mark.parametrize("scheme", sorted(INITS))
@pytest.mark.parametrize("arch", ["mlp", "cnn", "vit", "wide_resnet"])
def test_same_seed_same_weights(scheme, arch):
    a = initialize(build_model(arch, (1, 8, 8), 10, seed=1), scheme, generator=gen(3))
    b = initialize(build_model(arch, (1, 8, 8), 10, seed=2), scheme, generator=gen(3))  # build seed irrelevant
    c = initialize(build_model(arch, (1, 8, 8), 10, seed=1), scheme, generator=gen(4))
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


@pytest.mark.parametrize(
    "module, fan_in",
    [(nn.Linear(900, 300), 900), (nn.Conv2d(8, 400, 5), 8 * 25), (nn.Conv1d(12, 400, 3, groups=4), 3 * 3),
     (nn.Conv2d(16, 16 * 40, 3, groups=16), 9)],
)
@pytest.mark.parametrize("scheme, std_of", [
    ("normal", lambda fan_in, s: s / math.sqrt(fan_in)),
    ("kaiming", lambda fan_in, s: s * math.sqrt(2 / fan_in)),
    ("standard", lambda fan_in, s: s),
])
def test_gaussian_schemes_have_the_documented_std(module, fan_in, scheme, std_of):
    scale = 0.7
    initialize(module, scheme, scale=scale, generator=gen(0))
    w = module.weight.detach().double().flatten()
    sigma = std_of(fan_in, scale)
    n = w.numel()
    # sample std of n Gaussians: relative error ~ 1/sqrt(2n) (n >= 5000 here: <= 1%); 5 sigma bound
    assert abs(w.std().item() / sigma - 1) < 5 / math.sqrt(2 * n)
    assert abs(w.mean().item()) < 5 * sigma / math.sqrt(n)
    # Gaussian, not uniform: excess kurtosis ~ 0 (uniform would be -1.2)
    z = (w - w.mean()) / w.std()
    assert abs((z**4).mean().item() - 3) < 0.3
    assert torch.count_nonzero(module.bias) == 0


def test_kaiming_is_sqrt2_times_normal_draw_for_draw():
    a = initialize(nn.Linear(30, 20), "normal", scale=1.5, generator=gen(9)).weight.detach()
    b = initialize(nn.Linear(30, 20), "kaiming", scale=1.5, generator=gen(9)).weight.detach()
    torch.testing.assert_close(b, math.sqrt(2) * a, rtol=1e-6, atol=0)


def test_default_matches_torch_default_distribution():
    # torch's Linear default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    lin = initialize(nn.Linear(400, 500), "default", generator=gen(1))
    bound = 1 / math.sqrt(400)
    w = lin.weight.detach().double()
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.01  # uniform std = bound / sqrt(3)
    b = lin.bias.detach().double()
    assert b.abs().max() <= bound and torch.count_nonzero(b) == 500


def test_scale_multiplies_every_drawn_parameter_but_not_norm_layers():
    net = build_model("mlp", (6,), 3, batch_norm=True)
    one = _weights(initialize(net, "default", scale=1.0, generator=gen(2)))
    three = _weights(initialize(net, "default", scale=3.0, generator=gen(2)))
    for k in one:
        if "hidden.1" in k or "hidden.4" in k:  # BatchNorm affine: reset to 1 / 0, never scaled
            expected = torch.ones_like(one[k]) if k.endswith("weight") else torch.zeros_like(one[k])
            assert torch.equal(three[k], expected), k
        else:
            torch.testing.assert_close(three[k], 3 * one[k], rtol=1e-6, atol=0)
    zero = _weights(initialize(net, "normal", scale=0.0, generator=gen(2)))
    assert all(torch.count_nonzero(v) == 0 for k, v in zero.items() if "hidden.1" not in k and "hidden.4" not in k)


def test_norm_layers_and_running_stats_are_reset():
    net = build_model("cnn", (1, 8, 8), 10, batch_norm=True)
    net(torch.randn(8, 1, 8, 8))  # training forward moves the running statistics
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(5.0)
    initialize(net, "kaiming", generator=gen(0))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
            assert torch.equal(m.running_var, torch.ones_like(m.running_var))
            assert int(m.num_batches_tracked) == 0
            assert torch.equal(m.weight, torch.ones_like(m.weight))


def test_vit_position_embedding_uses_its_own_default_times_scale():
    net = build_model("vit", (1, 8, 8), 10)
    initialize(net, "normal", scale=2.0, generator=gen(0))
    pos = net.position.weight.detach().double()
    assert pos.shape == (16, 32)  # 4 x 4 patches of 2 x 2, dim 32: 512 draws, std within ~3%
    assert abs(pos.std().item() / (2.0 * 0.02) - 1) < 0.15  # N(0, 0.02^2) times scale (5 sigma)


def test_float32_weights_are_the_float64_weights_rounded():
    a = initialize(build_model("convmixer", (1, 8, 8), 10, dtype=torch.float32), "default", generator=gen(6))
    b = initialize(build_model("convmixer", (1, 8, 8), 10, dtype=torch.float64), "default", generator=gen(6))
    for (k, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert p.dtype == torch.float32 and q.dtype == torch.float64
        assert torch.equal(p, q.float()), k


def test_global_rng_is_not_used_or_changed():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    net = build_model("mlp", (6,), 3)
    for scheme in INITS:
        initialize(net, scheme, generator=gen(1))
    assert torch.equal(torch.get_rng_state(), state)


def test_initialize_returns_the_same_module_in_place():
    net = nn.Linear(3, 2)
    ptr = net.weight.data_ptr()
    assert initialize(net, "normal", generator=gen()) is net and net.weight.data_ptr() == ptr


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"generator": np.random.default_rng(0)}, TypeError, "generator must be a torch.Generator"),
        ({"generator": gen(), "scale": -1.0}, ValueError, "scale must be a finite number >= 0"),
        ({"generator": gen(), "scale": float("nan")}, ValueError, "scale must be a finite number"),
    ],
)
def test_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        initialize(nn.Linear(2, 2), "normal", **kwargs)


def test_module_without_reset_parameters_is_named():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(3))

    net = nn.Sequential(nn.Linear(2, 2), Odd())
    with pytest.raises(TypeError, match=r"module '1' \(Odd\) owns parameters but has no reset_parameters"):
        initialize(net, "default", generator=gen())
