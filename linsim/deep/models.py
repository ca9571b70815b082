"""Network architectures for the deep-network side of linsim: a registry and one builder.

Every model maps a batch ``(B, *input_shape)`` to logits ``(B, n_classes)``, is built from
plain ``torch.nn`` layers with no in-place operations and no dropout, and therefore runs
under ``torch.func.functional_call`` + ``torch.func.vmap`` over parameters and buffers
stacked with ``torch.func.stack_module_state`` (BatchNorm included: its stacked running
statistics update per model).

Families (the registry :data:`ARCHITECTURES`)
---------------------------------------------
=============  =========  ====================================================================
name           inputs     structure (``w`` = the ``width`` multiplier)
=============  =========  ====================================================================
linear         any        ``f = W x`` on the flattened input, no bias: one weight ``(C, d)``
deep_linear    any        ``W_L ... W_2 W_1 x``, no biases/activations, hidden ``round(64 w)``
mlp            any        ``depth`` hidden layers of ``round(100 w)`` units (+ BatchNorm opt.)
cnn            (C,L) 2-D  all-convolutional: ``depth`` conv layers of ``round(16 w)·(1,2,4)``
                          channels (stride 2 after the first), 1x1 conv to classes, avg pool
wide_resnet    (C,L) 2-D  WRN-``depth``-k, pre-activation blocks, ``round(16 w k)·(1,2,4)``
                          channels, BatchNorm without affine parameters
convmixer      (C,L) 2-D  patch embedding, ``depth`` blocks of depthwise + pointwise conv,
                          dim ``round(32 w)``
vit            (C,L) 2-D  patch tokens, learned positions, ``depth`` pre-norm transformer
                          blocks of dim ``round(32 w)`` (a multiple of ``heads``), mean pool
=============  =========  ====================================================================

1-D inputs ``(C, L)`` (mnist1d) get ``Conv1d``/``BatchNorm1d`` variants, images
``(C, H, W)`` the 2-D ones.  Default sizes are small (2-core CPU).  Parameter counts with
every default (``width=1``, default depth and options, the family's default BatchNorm) for
mnist1d ``(1, 40)`` / digits ``(1, 8, 8)`` / CIFAR-10 ``(3, 32, 32)``, 10 classes:

=============  ========  ========  ========
family         mnist1d   digits    cifar10
=============  ========  ========  ========
linear             400       640     30720
deep_linear       3200      4736    197248
mlp              15210     17610    318410
cnn               8490     23946     24234
wide_resnet      27834     77082     77370
convmixer         3242      4586      4842
vit              17962     18154     21098
=============  ========  ========  ========

(checked by ``tests/deep/test_models.py``).

The deep-network study's sizes (for a GPU) are options of the same families; these
reproduce its reported parameter counts (also checked by the tests):

* fully connected 3072-1024-512-256-128-10 with BatchNorm (3.84M):
  ``build_model("mlp", (3, 32, 32), 10, depth=4, base_width=1024, shrink=0.5, batch_norm=True)``
* WRN-16-4, base width 64 (43.9M):
  ``build_model("wide_resnet", (3, 32, 32), 10, depth=16, widen_factor=4, base_channels=64)``
* ConvMixer-256/8, kernel 5, patch 2 (0.59M):
  ``build_model("convmixer", (3, 32, 32), 10, depth=8, base_dim=256, activation="gelu")``
* ViT, patch 4, dim 512, depth 6, 8 heads (9.5M):
  ``build_model("vit", (3, 32, 32), 10, depth=6, base_dim=512, heads=8, patch_size=4, mlp_ratio=1)``

``width`` then scales all of them ("bigger networks" is one knob).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Callable, Mapping

import torch
from torch import nn

from linsim.registry import Registry

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "AllConvNet",
    "ArchitectureEntry",
    "ConvMixer",
    "DeepLinear",
    "LinearModel",
    "MLP",
    "ViT",
    "WideResNet",
    "build_model",
    "count_parameters",
    "register_architecture",
]

#: Activation registry: name -> module factory.
ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation", callable_only=True, entries={
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
})


@dataclass(frozen=True)
class ArchitectureEntry:
    """One registered architecture.

    Attributes
    ----------
    name : str
    family : str
        ``"linear"`` (no hidden nonlinearity), ``"dense"``, ``"conv"`` or ``"attention"``.
    builder : callable
        ``builder(input_shape, n_classes, *, width, depth, activation, batch_norm, **options)``
        returning an ``nn.Module``; ``activation`` is a module factory from
        :data:`ACTIVATIONS`, ``batch_norm`` a bool.
    input_ranks : tuple of int
        Supported ``len(input_shape)`` (1: vectors, 2: ``(C, L)``, 3: ``(C, H, W)``).
    default_depth : int or None
        Depth used when ``depth=None``; None means the family has no depth (``linear``).
    min_depth : int
    options : mapping
        Extra keyword options and their defaults.
    batch_norm : bool or None
        Default of ``batch_norm``; None means the family cannot use BatchNorm.
    uses_width, uses_activation : bool
        Whether ``width`` / ``activation`` change the model (``linear`` ignores both, and
        ``deep_linear`` ignores ``activation``), so a grid can skip duplicates.
    description : str

    Examples
    --------
    >>> entry = ARCHITECTURES["wide_resnet"]
    >>> entry.family, entry.input_ranks, entry.default_depth, entry.batch_norm
    ('conv', (2, 3), 10, True)
    """

    name: str
    family: str
    builder: Callable[..., nn.Module]
    input_ranks: tuple[int, ...]
    default_depth: int | None = None
    min_depth: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    batch_norm: bool | None = False
    uses_width: bool = True
    uses_activation: bool = True
    description: str = ""


#: The architecture registry: name -> :class:`ArchitectureEntry`.
ARCHITECTURES: Registry[ArchitectureEntry] = Registry("architecture", type=ArchitectureEntry,
                                                      key=attrgetter("name"))


def register_architecture(entry: ArchitectureEntry, *, replace: bool = False) -> ArchitectureEntry:
    """Add ``entry`` to :data:`ARCHITECTURES` (each name once, unless ``replace=True``).

    Examples
    --------
    >>> sorted(ARCHITECTURES)[:3]
    ['cnn', 'convmixer', 'deep_linear']
    >>> register_architecture(ARCHITECTURES["mlp"])
    Traceback (most recent call last):
    ...
    ValueError: architecture 'mlp' is already registered; pass replace=True to overwrite it
    """
    return ARCHITECTURES.add(entry, replace=replace)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars of ``model``.

    Examples
    --------
    >>> count_parameters(build_model("linear", (1, 40), 10))
    400
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _units(width: float, base: float, multiple: int = 1) -> int:
    """``round(width * base)`` rounded to a multiple of ``multiple``; a size that rounds to 0
    is refused (not raised to 1 behind the caller's back)."""
    n = round(width * base / multiple)
    if n < 1:
        raise ValueError(
            f"width={width:g} gives a layer of {width * base:.3g} units (base size {base:g}"
            + (f", in multiples of {multiple}" if multiple > 1 else "")
            + "), which rounds to 0: use a larger width"
        )
    return multiple * n


def _layers(nd: int):
    """(Conv, BatchNorm) classes for 1-D (nd=1) or 2-D (nd=2) inputs."""
    return (nn.Conv1d, nn.BatchNorm1d) if nd == 1 else (nn.Conv2d, nn.BatchNorm2d)


def _spatial(input_shape) -> tuple[int, ...]:
    return tuple(input_shape[1:])


# --------------------------------------------------------------------------------------
# linear families
# --------------------------------------------------------------------------------------
class LinearModel(nn.Module):
    """``f(x) = W flatten(x)`` with one weight ``linear.weight`` of shape ``(C, d)``, no bias.

    Parameters
    ----------
    d : int
        Flattened input size.
    n_classes : int
        Outputs ``C``.

    Examples
    --------
    >>> net = LinearModel(4, 2)
    >>> torch.equal(net(torch.eye(4)), net.linear.weight.T)
    True
    """

    def __init__(self, d: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(d, n_classes, bias=False)

    def forward(self, x):
        return self.linear(x.flatten(1))


class DeepLinear(nn.Module):
    """``f(x) = W_L ... W_1 flatten(x)``; weights ``layers.i.weight``, ``i = 0 .. L-1``.

    Parameters
    ----------
    d, n_classes : int
        Flattened input size and outputs.
    hidden : int
        Size of the ``depth - 1`` hidden layers.
    depth : int
        Number of matrices ``L`` (1 is the linear model).

    Examples
    --------
    >>> [tuple(w.shape) for w in DeepLinear(5, 2, hidden=3, depth=3).parameters()]
    [(3, 5), (3, 3), (2, 3)]
    """

    def __init__(self, d: int, n_classes: int, hidden: int, depth: int):
        super().__init__()
        sizes = [d] + [hidden] * (depth - 1) + [n_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers:
            x = layer(x)
        return x


def _build_linear(input_shape, n_classes, *, width, depth, activation, batch_norm):
    return LinearModel(math.prod(input_shape), n_classes)


def _build_deep_linear(input_shape, n_classes, *, width, depth, activation, batch_norm, base_width):
    return DeepLinear(math.prod(input_shape), n_classes, _units(width, base_width), depth)


class MLP(nn.Module):
    """Fully connected net: ``depth`` blocks Linear -> [BatchNorm1d] -> activation, then Linear.

    Parameters
    ----------
    d, n_classes : int
        Flattened input size and outputs.
    hidden : int or sequence of int
        Units of each hidden layer (an int: the same for all ``depth`` layers).
    depth : int
        Number of hidden layers.
    activation : callable
        Module factory (a value of :data:`ACTIVATIONS`).
    batch_norm : bool
        BatchNorm1d after each hidden Linear (which then has no bias).

    Examples
    --------
    >>> MLP(40, 10, hidden=8, depth=1, activation=nn.Tanh, batch_norm=False)(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    >>> [m.out_features for m in MLP(6, 2, [4, 3], 2, nn.ReLU, False).modules() if isinstance(m, nn.Linear)]
    [4, 3, 2]
    """

    def __init__(self, d, n_classes, hidden, depth, activation, batch_norm):
        super().__init__()
        sizes = [hidden] * depth if isinstance(hidden, int) else list(hidden)
        if len(sizes) != depth:
            raise ValueError(f"MLP: {len(sizes)} hidden sizes for depth={depth}")
        blocks, a = [], d
        for hidden in sizes:
            blocks += [nn.Linear(a, hidden, bias=not batch_norm)]
            if batch_norm:
                blocks += [nn.BatchNorm1d(hidden)]
            blocks += [activation()]
            a = hidden
        self.hidden = nn.Sequential(*blocks)
        self.head = nn.Linear(a, n_classes)

    def forward(self, x):
        return self.head(self.hidden(x.flatten(1)))


def _build_mlp(input_shape, n_classes, *, width, depth, activation, batch_norm, base_width, shrink):
    if isinstance(shrink, bool) or not isinstance(shrink, (int, float)) or not (math.isfinite(shrink) and shrink > 0):
        raise ValueError(f"mlp: shrink must be a finite number > 0; got {shrink!r}")
    # hidden layer i has round(width * base_width * shrink**i) units (shrink=0.5, base 1024,
    # depth 4: the study's 3072-1024-512-256-128-10 net)
    sizes = [_units(width, base_width * shrink**i) for i in range(depth)]
    return MLP(math.prod(input_shape), n_classes, sizes, depth, activation, batch_norm)


# --------------------------------------------------------------------------------------
# convolutional families
# --------------------------------------------------------------------------------------
class _GlobalAvgPool(nn.Module):
    """Mean over all spatial axes: ``(B, C, *S) -> (B, C)``."""

    def forward(self, x):
        return x.flatten(2).mean(-1)


class AllConvNet(nn.Module):
    """All-convolutional net: conv blocks (stride 2 after the first while the size allows),
    a 1x1 convolution to ``n_classes`` channels and a global average pool.

    Parameters
    ----------
    input_shape : tuple
        ``(C, L)`` or ``(C, H, W)``.
    n_classes : int
    channels : sequence of int
        Output channels of each conv block.
    kernel_size : int
        Odd kernel size (padding keeps the size at stride 1).
    activation : callable
        Module factory.
    batch_norm : bool
        BatchNorm after each conv (which then has no bias).

    Examples
    --------
    >>> AllConvNet((1, 40), 10, [4, 8], 3, nn.ReLU, False)(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape, n_classes, channels, kernel_size, activation, batch_norm):
        super().__init__()
        nd = len(input_shape) - 1
        Conv, BN = _layers(nd)
        size, c_in, blocks = min(_spatial(input_shape)), input_shape[0], []
        for i, c in enumerate(channels):
            stride = 2 if i > 0 and size >= 4 else 1
            blocks += [Conv(c_in, c, kernel_size, stride=stride, padding=kernel_size // 2, bias=not batch_norm)]
            if batch_norm:
                blocks += [BN(c)]
            blocks += [activation()]
            size = (size - 1) // stride + 1
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.classifier = Conv(c_in, n_classes, 1)
        self.pool = _GlobalAvgPool()

    def forward(self, x):
        return self.pool(self.classifier(self.features(x)))


def _check_odd(name, k):
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer; got {k!r}")
    return k


def _build_cnn(input_shape, n_classes, *, width, depth, activation, batch_norm, base_channels, kernel_size):
    _check_odd("kernel_size", kernel_size)
    base = _units(width, base_channels)
    channels = [base * 2 ** min(i, 2) for i in range(depth)]
    return AllConvNet(input_shape, n_classes, channels, kernel_size, activation, batch_norm)


def _norm(BN, c, batch_norm):
    # the study's wide ResNets use BatchNorm without affine parameters
    return BN(c, affine=False) if batch_norm else nn.Identity()


class _WideBlock(nn.Module):
    """Pre-activation residual block: norm-act-conv3-norm-act-conv3 plus a (1x1) shortcut."""

    def __init__(self, nd, c_in, c_out, stride, activation, batch_norm):
        super().__init__()
        Conv, BN = _layers(nd)
        self.norm1, self.act1 = _norm(BN, c_in, batch_norm), activation()
        self.conv1 = Conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm2, self.act2 = _norm(BN, c_out, batch_norm), activation()
        self.conv2 = Conv(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (
            Conv(c_in, c_out, 1, stride=stride, bias=False) if (stride != 1 or c_in != c_out) else nn.Identity()
        )

    def forward(self, x):
        h = self.act1(self.norm1(x))
        out = self.conv2(self.act2(self.norm2(self.conv1(h))))
        return out + self.shortcut(h if not isinstance(self.shortcut, nn.Identity) else x)


class WideResNet(nn.Module):
    """WRN-depth-k: a 3x3 stem, three groups of ``(depth - 4) / 6`` blocks with strides 1, 2, 2
    (no stride once the size is below 4), final norm-act, global average pool, Linear.

    Parameters
    ----------
    input_shape : tuple
        ``(C, L)`` or ``(C, H, W)``.
    n_classes : int
    stem : int
        Channels of the stem convolution.
    widths : sequence of 3 int
        Channels of the three groups.
    n_blocks : int
        Blocks per group.
    activation : callable
        Module factory.
    batch_norm : bool
        BatchNorm without affine parameters before each activation (else identity).

    Examples
    --------
    >>> WideResNet((3, 8, 8), 10, 4, [4, 8, 16], 1, nn.ReLU, True)(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape, n_classes, stem, widths, n_blocks, activation, batch_norm):
        super().__init__()
        nd = len(input_shape) - 1
        Conv, BN = _layers(nd)
        self.stem = Conv(input_shape[0], stem, 3, padding=1, bias=False)
        blocks, c_in, size = [], stem, min(_spatial(input_shape))
        for g, c in enumerate(widths):
            for b in range(n_blocks):
                stride = 2 if (g > 0 and b == 0 and size >= 4) else 1
                blocks.append(_WideBlock(nd, c_in, c, stride, activation, batch_norm))
                size = (size - 1) // stride + 1
                c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.norm, self.act = _norm(BN, c_in, batch_norm), activation()
        self.pool = _GlobalAvgPool()
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x):
        return self.head(self.pool(self.act(self.norm(self.blocks(self.stem(x))))))


def _build_wide_resnet(input_shape, n_classes, *, width, depth, activation, batch_norm, widen_factor, base_channels):
    if (depth - 4) % 6 != 0:
        raise ValueError(f"wide_resnet: depth must be 6n + 4 (10, 16, 22, ...); got {depth}")
    if not (isinstance(widen_factor, (int, float)) and widen_factor > 0):
        raise ValueError(f"wide_resnet: widen_factor must be > 0; got {widen_factor!r}")
    stem = _units(width, base_channels)
    widths = [_units(width * widen_factor, base_channels * m) for m in (1, 2, 4)]
    return WideResNet(input_shape, n_classes, stem, widths, (depth - 4) // 6, activation, batch_norm)


class _Residual(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return x + self.inner(x)


class ConvMixer(nn.Module):
    """ConvMixer: patch conv -> act -> norm, ``depth`` x [residual(depthwise conv -> act ->
    norm) -> 1x1 conv -> act -> norm], global average pool, Linear.

    Parameters
    ----------
    input_shape : tuple
        ``(C, L)`` or ``(C, H, W)``; the spatial sizes must be multiples of ``patch_size``.
    n_classes, dim, depth : int
        Outputs, channels, number of mixer blocks.
    kernel_size : int
        Odd depthwise kernel size.
    patch_size : int
        Patch (stride) of the embedding convolution.
    activation : callable
        Module factory.
    batch_norm : bool
        BatchNorm after each activation (else identity).

    Examples
    --------
    >>> ConvMixer((1, 40), 10, 8, 1, 5, 2, nn.GELU, True)(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape, n_classes, dim, depth, kernel_size, patch_size, activation, batch_norm):
        super().__init__()
        nd = len(input_shape) - 1
        Conv, BN = _layers(nd)
        norm = (lambda: BN(dim)) if batch_norm else nn.Identity
        self.embed = nn.Sequential(Conv(input_shape[0], dim, patch_size, stride=patch_size), activation(), norm())
        self.mixer = nn.Sequential(*[
            nn.Sequential(
                _Residual(nn.Sequential(Conv(dim, dim, kernel_size, groups=dim, padding=kernel_size // 2),
                                        activation(), norm())),
                Conv(dim, dim, 1), activation(), norm(),
            )
            for _ in range(depth)
        ])
        self.pool = _GlobalAvgPool()
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x):
        return self.head(self.pool(self.mixer(self.embed(x))))


def _check_patch(name, input_shape, patch_size):
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"{name}: patch_size must be a positive integer; got {patch_size!r}")
    bad = [s for s in _spatial(input_shape) if s % patch_size]
    if bad:
        raise ValueError(
            f"{name}: patch_size={patch_size} does not divide the input's spatial size {_spatial(input_shape)}"
        )
    return patch_size


def _build_convmixer(input_shape, n_classes, *, width, depth, activation, batch_norm, base_dim, kernel_size,
                     patch_size):
    _check_odd("kernel_size", kernel_size)
    _check_patch("convmixer", input_shape, patch_size)
    return ConvMixer(input_shape, n_classes, _units(width, base_dim), depth, kernel_size, patch_size,
                     activation, batch_norm)


# --------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------
class _PositionEmbedding(nn.Module):
    """Learned additive position embedding ``weight`` of shape ``(n_tokens, dim)``."""

    def __init__(self, n_tokens: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_tokens, dim))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        return x + self.weight


class _SelfAttention(nn.Module):
    """Multi-head self-attention written with plain Linear layers (vmap-safe)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        h = self.heads
        qkv = self.qkv(x).reshape(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax((q @ k.transpose(-2, -1)) * (D // h) ** -0.5, dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, N, D))


class _TransformerBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, activation):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), activation(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Small vision transformer: non-overlapping patches (a strided conv), learned positions,
    ``depth`` pre-norm blocks, final LayerNorm, mean over tokens, Linear.

    Parameters
    ----------
    input_shape : tuple
        ``(C, L)`` or ``(C, H, W)``; spatial sizes multiples of ``patch_size``.
    n_classes, dim, depth, heads : int
        Outputs, token dimension (a multiple of ``heads``), blocks, attention heads.
    mlp_ratio : int
        Hidden size of each block's MLP, in units of ``dim``.
    patch_size : int
    activation : callable
        Module factory for the block MLPs.

    Examples
    --------
    >>> ViT((1, 40), 10, 8, 1, 2, 2, 4, nn.GELU)(torch.zeros(2, 1, 40)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape, n_classes, dim, depth, heads, mlp_ratio, patch_size, activation):
        super().__init__()
        nd = len(input_shape) - 1
        Conv, _ = _layers(nd)
        n_tokens = math.prod(s // patch_size for s in _spatial(input_shape))
        self.patches = Conv(input_shape[0], dim, patch_size, stride=patch_size)
        self.position = _PositionEmbedding(n_tokens, dim)
        self.blocks = nn.Sequential(*[_TransformerBlock(dim, heads, mlp_ratio, activation) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x):
        tokens = self.patches(x).flatten(2).transpose(1, 2)  # (B, N, dim)
        tokens = self.blocks(self.position(tokens))
        return self.head(self.norm(tokens).mean(1))


def _auto_patch(input_shape) -> int:
    spatial = _spatial(input_shape)
    for p in (4, 2):
        if all(s % p == 0 and s // p >= 4 for s in spatial):
            return p
    return 1


def _build_vit(input_shape, n_classes, *, width, depth, activation, batch_norm, base_dim, heads, mlp_ratio, patch_size):
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise ValueError(f"vit: heads must be a positive integer; got {heads!r}")
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, int) or mlp_ratio < 1:
        raise ValueError(f"vit: mlp_ratio must be a positive integer; got {mlp_ratio!r}")
    patch = _auto_patch(input_shape) if patch_size is None else _check_patch("vit", input_shape, patch_size)
    return ViT(input_shape, n_classes, _units(width, base_dim, heads), depth, heads, mlp_ratio, patch, activation)


register_architecture(ArchitectureEntry(
    "linear", "linear", _build_linear, (1, 2, 3), default_depth=None, batch_norm=None,
    uses_width=False, uses_activation=False, description="f = W x, no bias",
))
register_architecture(ArchitectureEntry(
    "deep_linear", "linear", _build_deep_linear, (1, 2, 3), default_depth=2, options={"base_width": 64},
    batch_norm=None, uses_activation=False, description="product of depth matrices, no biases",
))
register_architecture(ArchitectureEntry(
    "mlp", "dense", _build_mlp, (1, 2, 3), default_depth=2, options={"base_width": 100, "shrink": 1.0},
    description="fully connected, depth hidden layers (layer i: round(width * base_width * shrink**i))",
))
register_architecture(ArchitectureEntry(
    "cnn", "conv", _build_cnn, (2, 3), default_depth=3, options={"base_channels": 16, "kernel_size": 3},
    description="all-convolutional net",
))
register_architecture(ArchitectureEntry(
    "wide_resnet", "conv", _build_wide_resnet, (2, 3), default_depth=10, min_depth=10,
    options={"widen_factor": 1, "base_channels": 16}, batch_norm=True,
    description="wide ResNet (pre-activation, BatchNorm without affine parameters)",
))
register_architecture(ArchitectureEntry(
    "convmixer", "conv", _build_convmixer, (2, 3), default_depth=2,
    options={"base_dim": 32, "kernel_size": 5, "patch_size": 2}, batch_norm=True,
    description="ConvMixer",
))
register_architecture(ArchitectureEntry(
    "vit", "attention", _build_vit, (2, 3), default_depth=2,
    options={"base_dim": 32, "heads": 4, "mlp_ratio": 2, "patch_size": None}, batch_norm=None,
    description="small vision transformer (LayerNorm)",
))


def _check_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple of positive integers; got {input_shape!r}") from None
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive integers; got {input_shape!r}")
    return shape


def build_model(
    architecture: str,
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    width: float = 1.0,
    depth: int | None = None,
    activation: str = "relu",
    batch_norm: bool | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device=None,
    **options,
) -> nn.Module:
    """Build a registered architecture.

    Parameters
    ----------
    architecture : str
        A key of :data:`ARCHITECTURES`.
    input_shape : tuple of int
        Shape of one input: ``(d,)``, ``(C, L)`` or ``(C, H, W)``.
    n_classes : int
        Number of outputs.
    width : float
        Width multiplier (> 0), the one "bigger network" knob of every family (layer sizes
        are ``round(width * base)``; ``linear`` has no hidden units and ignores it).
    depth : int, optional
        Family depth (hidden layers, conv layers, blocks, matrices); default
        ``ARCHITECTURES[name].default_depth``.  ``linear`` takes none.
    activation : str
        A key of :data:`ACTIVATIONS` (ignored by the linear families).
    batch_norm : bool, optional
        Use BatchNorm (default: the family's, ``ARCHITECTURES[name].batch_norm``); refused by
        families that have none (``linear``, ``deep_linear``, ``vit``).
    seed : int
        The weights are the framework default initialization drawn as
        ``linsim.deep.init.initialize(model, "default", generator=torch.Generator().manual_seed(seed))``;
        the caller's global torch random state is neither used nor changed.
    dtype : torch.dtype, optional
        Parameter dtype (default: torch's default dtype).
    device : torch.device or str, optional
        Where the parameters live (default CPU).  ``"meta"`` builds the structure only
        (no memory, no initialization): for parameter counts or a ``torch.func`` base module.
    **options
        Family options (``ARCHITECTURES[name].options``), e.g. ``base_width``, ``kernel_size``.

    Returns
    -------
    torch.nn.Module
        Forward ``(B, *input_shape) -> (B, n_classes)``, in training mode.

    Examples
    --------
    >>> net = build_model("mlp", (1, 40), 10, width=0.5, depth=1)
    >>> net(torch.zeros(3, 1, 40)).shape
    torch.Size([3, 10])
    >>> build_model("linear", (4,), 3).linear.weight.shape
    torch.Size([3, 4])
    """
    from .init import initialize

    entry = ARCHITECTURES[architecture]  # an unknown name raises (a KeyError), listing the valid ones
    shape = _check_shape(input_shape)
    if len(shape) not in entry.input_ranks:
        kinds = {1: "(d,)", 2: "(C, L)", 3: "(C, H, W)"}
        raise ValueError(
            f"{architecture} takes inputs shaped {' or '.join(kinds[r] for r in entry.input_ranks)}; "
            f"got input_shape={shape}"
        )
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer; got {n_classes!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (math.isfinite(width) and width > 0):
        raise ValueError(f"width must be a finite number > 0; got {width!r}")
    if entry.default_depth is None:
        if depth not in (None, 1):
            raise ValueError(f"{architecture} has no depth; got depth={depth!r}")
        depth = 1
    elif depth is None:
        depth = entry.default_depth
    elif isinstance(depth, bool) or not isinstance(depth, int) or depth < entry.min_depth:
        raise ValueError(f"{architecture}: depth must be an integer >= {entry.min_depth}; got {depth!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    make_activation = ACTIVATIONS[activation]
    if batch_norm is None:
        batch_norm = bool(entry.batch_norm)
    elif batch_norm and entry.batch_norm is None:
        raise ValueError(f"{architecture} has no BatchNorm variant; pass batch_norm=False or None")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        raise TypeError(
            f"{architecture} does not take option(s) {unknown}; valid options: {sorted(entry.options) or 'none'}"
        )
    opts = {**entry.options, **options}
    # layer constructors draw from torch's global generator: draw in a fork so the caller's
    # state is untouched, then re-draw every weight from our own seeded generator
    kwargs = dict(width=float(width), depth=depth, activation=make_activation, batch_norm=bool(batch_norm))
    if device is not None and torch.device(device).type == "meta":
        # shapes only (parameter counts, a base module for torch.func): nothing to draw
        with torch.device("meta"):
            return entry.builder(shape, n_classes, **kwargs, **opts).to(dtype=dtype)
    with torch.random.fork_rng(devices=[]):
        model = entry.builder(shape, n_classes, **kwargs, **opts)
    model.to(dtype=dtype, device=device)
    initialize(model, "default", generator=torch.Generator().manual_seed(int(seed)))
    return model
