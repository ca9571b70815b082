"""Contract tests for every registered architecture (geomstats style) and exact oracles for
the linear families.

The contract: forward ``(B, *input_shape) -> (B, n_classes)``; ``torch.func.vmap`` over R
copies stacked with ``stack_module_state`` equals running the R models one by one (outputs,
gradients, BatchNorm running statistics, train and eval mode), in float64 and float32.
"""

import copy
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call, grad, stack_module_state, vmap

from linsim.deep import models as M
from linsim.deep import ACTIVATIONS, ARCHITECTURES, build_model, count_parameters, initialize

SHAPES = {1: (6,), 2: (2, 16), 3: (1, 8, 8)}
N_CLASSES = 4
R = 3


def _cases():
    for name, entry in sorted(ARCHITECTURES.items()):
        bns = [None] if entry.batch_norm is None else [False, True]
        for rank in entry.input_ranks:
            for bn in bns:
                yield pytest.param(name, SHAPES[rank], bn, id=f"{name}-{len(SHAPES[rank])}d-bn{bn}")


CASES = list(_cases())
# one case per architecture (its highest input rank, BatchNorm on where it has one) for
# the float32 and gradient contracts; the float64 contract runs every case
MAIN_CASES = [
    pytest.param(name, SHAPES[max(e.input_ranks)], None if e.batch_norm is None else True, id=name)
    for name, e in sorted(ARCHITECTURES.items())
]


def _models(name, shape, bn, dtype, R=R):
    return [build_model(name, shape, N_CLASSES, width=0.25, batch_norm=bn, seed=s, dtype=dtype) for s in range(R)]


def _vmapped(models, x, in_dims_x=0, train=True):
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    base.train(train)

    def f(p, b, xx):
        return functional_call(base, (p, b), (xx,))

    return vmap(f, in_dims=(0, 0, in_dims_x))(params, buffers, x), params, buffers, base


def test_every_architecture_is_covered():
    assert {"linear", "deep_linear", "mlp", "cnn", "wide_resnet", "convmixer", "vit"} <= set(ARCHITECTURES)
    assert {c.values[0] for c in CASES} == set(ARCHITECTURES)


@pytest.mark.parametrize("name, shape, bn", CASES)
def test_contract_float64_train_then_eval(name, shape, bn):
    torch.manual_seed(0)
    models = _models(name, shape, bn, torch.float64)
    x = torch.randn(R, 5, *shape, dtype=torch.float64)
    out, params, buffers, base = _vmapped(models, x)
    ref = torch.stack([m(x[i]) for i, m in enumerate(models)])  # updates each model's own stats
    assert out.shape == (R, 5, N_CLASSES) and out.dtype == torch.float64
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(ref[0], ref[1])  # the copies really differ
    # BatchNorm running statistics: the stacked buffers were updated per model
    for key, stacked in buffers.items():
        for i, m in enumerate(models):
            torch.testing.assert_close(stacked[i], dict(m.named_buffers())[key], rtol=1e-12, atol=1e-12)
    if bn:
        assert any("running_mean" in k for k in buffers)
        assert buffers[next(k for k in buffers if "running_mean" in k)].abs().max() > 0
    # eval mode, using the statistics collected above
    base.eval()
    for m in models:
        m.eval()
    x2 = torch.randn(R, 4, *shape, dtype=torch.float64)
    out2 = vmap(lambda p, b, xx: functional_call(base, (p, b), (xx,)))(params, buffers, x2)
    ref2 = torch.stack([m(x2[i]) for i, m in enumerate(models)])
    torch.testing.assert_close(out2, ref2, rtol=1e-12, atol=1e-12)
    # eval mode: a sample's output does not depend on the rest of the batch
    torch.testing.assert_close(models[0](x2[0, :1]), ref2[0, :1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, shape, bn", MAIN_CASES)
def test_contract_float32_shared_input(name, shape, bn):
    torch.manual_seed(1)
    models = _models(name, shape, bn, torch.float32)
    x = torch.randn(6, *shape)
    out, *_ = _vmapped(models, x, in_dims_x=None)
    ref = torch.stack([m(x) for m in models])
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, shape, bn", MAIN_CASES)
def test_contract_vmapped_gradients(name, shape, bn):
    torch.manual_seed(2)
    models = _models(name, shape, bn, torch.float64)
    x = torch.randn(R, 5, *shape, dtype=torch.float64)
    y = torch.randint(0, N_CLASSES, (R, 5))
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p, b, xx, yy):
        return torch.nn.functional.cross_entropy(functional_call(base, (p, b), (xx,)), yy)

    grads = vmap(grad(loss))(params, buffers, x, y)
    assert set(grads) == {k for k, _ in models[0].named_parameters()}
    for i, m in enumerate(models):
        m.zero_grad()
        torch.nn.functional.cross_entropy(m(x[i]), y[i]).backward()
        for key, p in m.named_parameters():
            torch.testing.assert_close(grads[key][i], p.grad, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# exact oracles for the linear families
# ---------------------------------------------------------------------------------------
def test_linear_is_exactly_x_flat_times_w_transpose():
    net = build_model("linear", (2, 3, 4), 5, dtype=torch.float64, seed=3)
    params = dict(net.named_parameters())
    assert list(params) == ["linear.weight"] and params["linear.weight"].shape == (5, 24)
    X = np.random.default_rng(0).normal(size=(7, 2, 3, 4))
    W = params["linear.weight"].detach().numpy()
    out = net(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(out, X.reshape(7, -1) @ W.T, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_deep_linear_is_the_matrix_product(depth):
    net = build_model("deep_linear", (10,), 3, depth=depth, width=0.1, dtype=torch.float64)  # hidden round(6.4)=6
    Ws = [p.detach().numpy() for _, p in net.named_parameters()]
    assert [k for k, _ in net.named_parameters()] == [f"layers.{i}.weight" for i in range(depth)]
    assert [w.shape for w in Ws] == ([(3, 10)] if depth == 1 else [(6, 10)] + [(6, 6)] * (depth - 2) + [(3, 6)])
    X = np.random.default_rng(1).normal(size=(4, 10))
    prod = np.eye(10)
    for w in Ws:
        prod = w @ prod
    np.testing.assert_allclose(net(torch.as_tensor(X)).detach().numpy(), X @ prod.T, rtol=1e-13, atol=1e-14)
    if depth == 2:
        W1, W2 = Ws
        np.testing.assert_allclose(net(torch.as_tensor(X)).detach().numpy(), (W2 @ W1 @ X.T).T, rtol=1e-13)


def _hand_counts(d, C=10):
    """Parameter counts derived by hand from the documented structures (width 1)."""
    h = 100
    mlp = (d * h + h) + (h * h + h) + (h * C + C)
    deep_linear = d * 64 + 64 * C
    return {"linear": d * C, "deep_linear": deep_linear, "mlp": mlp}


def test_parameter_counts_by_hand():
    for shape in [(1, 40), (1, 8, 8), (3, 32, 32)]:
        d = int(np.prod(shape))
        for name, n in _hand_counts(d).items():
            assert count_parameters(build_model(name, shape, 10)) == n, (name, shape)
    # mnist1d cnn: Conv1d 1->16->32->64 (k=3, bias), 1x1 conv 64->10
    cnn = (1 * 16 * 3 + 16) + (16 * 32 * 3 + 32) + (32 * 64 * 3 + 64) + (64 * 10 + 10)
    assert count_parameters(build_model("cnn", (1, 40), 10)) == cnn
    # mnist1d WRN-10-1: stem 1->16; blocks 16->16, 16->32 (+1x1), 32->64 (+1x1); head 64->10
    wrn = 16 * 3 + 2 * 16 * 16 * 3 + (16 * 32 * 3 + 32 * 32 * 3 + 16 * 32) + (32 * 64 * 3 + 64 * 64 * 3 + 32 * 64) + 650
    assert count_parameters(build_model("wide_resnet", (1, 40), 10)) == wrn
    # with BatchNorm the 2 hidden Linear layers lose their h biases and each BN adds 2h affine scalars
    h = 100
    assert count_parameters(build_model("mlp", (1, 40), 10, batch_norm=True)) == _hand_counts(40)["mlp"] - 2 * h + 2 * 2 * h


def test_documented_parameter_table_is_current():
    rows = re.findall(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", M.__doc__, flags=re.M)
    assert {r[0] for r in rows} == set(ARCHITECTURES)
    for name, *counts in rows:
        for shape, n in zip([(1, 40), (1, 8, 8), (3, 32, 32)], counts):
            assert count_parameters(build_model(name, shape, 10)) == int(n), (name, shape)


def test_width_is_one_knob():
    for name, entry in ARCHITECTURES.items():
        shape = SHAPES[max(entry.input_ranks)]
        small = count_parameters(build_model(name, shape, 10, width=0.5))
        big = count_parameters(build_model(name, shape, 10, width=2.0))
        assert (big > small) == entry.uses_width, name


def test_wide_resnet_batchnorm_has_no_affine_parameters():
    net = build_model("wide_resnet", (3, 8, 8), 10)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.affine for m in bns)
    assert not any("norm" in k for k, _ in net.named_parameters())
    assert sum(isinstance(m, M._WideBlock) for m in net.modules()) == 3  # depth 10 = 6*1 + 4
    assert sum(isinstance(m, M._WideBlock) for m in build_model("wide_resnet", (3, 8, 8), 10, depth=16).modules()) == 6


def test_one_d_inputs_get_one_d_layers():
    for name in ("cnn", "wide_resnet", "convmixer", "vit"):
        net = build_model(name, (1, 40), 10)
        kinds = {type(m) for m in net.modules()}
        assert torch.nn.Conv1d in kinds and torch.nn.Conv2d not in kinds, name


def test_no_dropout_anywhere():
    for name, entry in ARCHITECTURES.items():
        net = build_model(name, SHAPES[max(entry.input_ranks)], 10)
        assert not any(isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in net.modules())


# ---------------------------------------------------------------------------------------
# seeds, dtype, global state
# ---------------------------------------------------------------------------------------
def test_build_model_leaves_global_rng_alone_and_is_seeded():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = build_model("cnn", (1, 8, 8), 10, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)
    b = build_model("cnn", (1, 8, 8), 10, seed=7)
    c = build_model("cnn", (1, 8, 8), 10, seed=8)
    for (k, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(p, q), k
    assert not all(torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))


def test_build_model_seed_is_the_default_init_with_that_seed():
    a = build_model("vit", (1, 8, 8), 10, seed=4)
    b = initialize(build_model("vit", (1, 8, 8), 10, seed=0), "default", generator=torch.Generator().manual_seed(4))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_float64_models():
    net = build_model("convmixer", (1, 8, 8), 10, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert all(b.dtype in (torch.float64, torch.int64) for b in net.buffers())
    assert net(torch.zeros(2, 1, 8, 8, dtype=torch.float64)).dtype == torch.float64


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
def test_unknown_names_list_the_valid_ones():
    with pytest.raises(KeyError) as err:
        build_model("resnet50", (1, 40), 10)
    assert all(name in str(err.value) for name in ARCHITECTURES)
    with pytest.raises(KeyError) as err:
        build_model("mlp", (1, 40), 10, activation="swish")
    assert all(name in str(err.value) for name in ACTIVATIONS)
    with pytest.raises(TypeError, match=r"mlp does not take option\(s\) \['channels'\]; valid options: \['base_width', 'shrink'\]"):
        build_model("mlp", (1, 40), 10, channels=3)


@pytest.mark.parametrize(
    "args, kwargs, exc, pattern",
    [
        (("cnn", (200,), 10), {}, ValueError, r"cnn takes inputs shaped \(C, L\) or \(C, H, W\); got input_shape=\(200,\)"),
        (("mlp", (0, 3), 10), {}, ValueError, "input_shape must be a non-empty tuple of positive integers"),
        (("mlp", (4,), 0), {}, ValueError, "n_classes must be a positive integer"),
        (("mlp", (4,), 2), {"width": 0.0}, ValueError, "width must be a finite number > 0"),
        (("mlp", (4,), 2), {"depth": 0}, ValueError, "depth must be an integer >= 1"),
        (("linear", (4,), 2), {"depth": 3}, ValueError, "linear has no depth"),
        (("wide_resnet", (1, 8, 8), 2), {"depth": 12}, ValueError, r"depth must be 6n \+ 4"),
        (("vit", (1, 8, 8), 2), {"batch_norm": True}, ValueError, "vit has no BatchNorm variant"),
        (("deep_linear", (4,), 2), {"batch_norm": True}, ValueError, "deep_linear has no BatchNorm"),
        (("vit", (1, 9, 9), 2), {"patch_size": 2}, ValueError, r"patch_size=2 does not divide .*\(9, 9\)"),
        (("convmixer", (1, 8, 8), 2), {"kernel_size": 4}, ValueError, "kernel_size must be an odd positive integer"),
        (("vit", (1, 8, 8), 2), {"heads": 0}, ValueError, "heads must be a positive integer"),
        (("mlp", (4,), 2), {"width": 0.004}, ValueError, r"width=0.004 gives a layer of 0.4 units .*rounds to 0"),
        (("vit", (1, 8, 8), 2), {"width": 0.05}, ValueError, r"in multiples of 4\), which rounds to 0"),
    ],
)
def test_bad_arguments_are_named(args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        build_model(*args, **kwargs)


def test_seed_must_be_a_non_negative_integer():
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        build_model("mlp", (4,), 2, seed=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_cuda_same_weights_and_vmap_contract(name):
    shape = SHAPES[max(ARCHITECTURES[name].input_ranks)]
    cpu = build_model(name, shape, N_CLASSES, seed=3, dtype=torch.float64)
    gpu = build_model(name, shape, N_CLASSES, seed=3, dtype=torch.float64, device="cuda")
    for p, q in zip(cpu.parameters(), gpu.parameters()):
        assert q.is_cuda and torch.equal(p, q.cpu())  # drawn on the CPU, then moved
    models = [build_model(name, shape, N_CLASSES, seed=s, dtype=torch.float64, device="cuda") for s in range(R)]
    x = torch.randn(R, 5, *shape, dtype=torch.float64, device="cuda")
    out, *_ = _vmapped(models, x)
    ref = torch.stack([m(x[i]) for i, m in enumerate(models)])
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)


@st.composite
def _model_specs(draw):
    name = draw(st.sampled_from(sorted(ARCHITECTURES)))
    entry = ARCHITECTURES[name]
    rank = draw(st.sampled_from(entry.input_ranks))
    spatial = draw(st.lists(st.integers(1, 12), min_size=rank - 1, max_size=rank - 1))
    shape = (draw(st.integers(1, 12)),) if rank == 1 else (draw(st.integers(1, 3)), *spatial)
    width = draw(st.floats(0.02, 1.5))
    depth = None if entry.default_depth is None else draw(
        st.sampled_from([entry.min_depth, entry.default_depth] if name == "wide_resnet" else [1, 2, 3]))
    return name, shape, width, depth, draw(st.integers(1, 5))


@settings(max_examples=25)
@given(_model_specs())
def test_any_size_builds_and_maps_to_logits(spec):
    name, shape, width, depth, n_classes = spec
    try:
        net = build_model(name, shape, n_classes, width=width, depth=depth)
    except ValueError as err:  # the only refusals: a patch size that does not divide the input,
        if "patch_size" in str(err):  # or a width so small that a layer would have no unit
            assert name == "convmixer" and any(s % 2 for s in shape[1:]), err
        else:
            assert "rounds to 0" in str(err) and ARCHITECTURES[name].uses_width, err
        return
    out = net(torch.randn(2, *shape))
    assert out.shape == (2, n_classes) and torch.isfinite(out).all()


def test_study_sizes_reproduce_its_parameter_counts():
    """Parameter counts the deep-network study reports (shared/reference/deepnets.md §2),
    rebuilt from our families on the meta device (no memory, no initialization)."""
    cifar = (3, 32, 32)

    def n(name, **kw):
        net = build_model(name, cifar, 10, device="meta", **kw)
        assert all(p.is_meta for p in net.parameters())
        return count_parameters(net)

    # fully connected 3072-1024-512-256-128-10 with BatchNorm: 3.84M
    assert round(n("mlp", depth=4, base_width=1024, shrink=0.5, batch_norm=True) / 1e6, 2) == 3.84
    # wide ResNet 16-4 with base width 64, BatchNorm without affine parameters: 43.9M
    assert round(n("wide_resnet", depth=16, widen_factor=4, base_channels=64) / 1e6, 1) == 43.9
    # ConvMixer dim 256, depth 8, kernel 5, patch 2: 0.59M
    assert round(n("convmixer", depth=8, base_dim=256, kernel_size=5, patch_size=2) / 1e6, 2) == 0.59
    # ViT patch 4, dim 512, depth 6, 8 heads (MLP dim = dim): 9.5M
    assert round(n("vit", depth=6, base_dim=512, heads=8, patch_size=4, mlp_ratio=1) / 1e6, 1) == 9.5


def test_meta_models_match_real_ones():
    for name, entry in ARCHITECTURES.items():
        shape = SHAPES[max(entry.input_ranks)]
        real = build_model(name, shape, 10)
        meta = build_model(name, shape, 10, device="meta")
        assert [(k, p.shape) for k, p in real.named_parameters()] == [(k, p.shape) for k, p in meta.named_parameters()]
        assert [k for k, _ in real.named_buffers()] == [k for k, _ in meta.named_buffers()]


def test_mlp_shrink_tapers_the_hidden_layers():
    net = build_model("mlp", (8,), 3, depth=3, base_width=40, shrink=0.5, width=2.0)
    assert [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)] == [80, 40, 20, 3]
    with pytest.raises(ValueError, match="shrink must be a finite number > 0"):
        build_model("mlp", (8,), 3, shrink=0.0)
