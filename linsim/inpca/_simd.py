"""Explicit SIMD values for numba kernels: a float64 vector of :data:`LANES` lanes.

numba's auto-vectorizer does not keep a tile of running products in registers across a loop
over samples (the SLP vectorizer leaves scalar accumulators scalar and spills them), so the
fused Bhattacharyya kernel (:mod:`linsim.inpca._fused`) is written with an explicit vector
type, :data:`f64v`, lowered to LLVM's ``<8 x double>``: on an AVX-512 host one ``zmm``
register, on an AVX2 host two ``ymm`` registers (LLVM splits it).  Values of this type are SSA
values, so a loop-carried vector stays in a register unless the register file is exhausted.

The operations are numba intrinsics, usable only inside ``@numba.njit`` code:

* ``vload(a, i)`` / ``vstore(a, i, v)`` -- lanes ``a[i : i + LANES]`` of a 1-D float64 array
  (no bounds check: the caller guarantees ``i + LANES <= a.size``);
* ``vsplat(x)`` -- every lane ``x``; ``vbcast(a, i)`` -- every lane ``a[i]`` (no bounds check);
* ``vmul(a, b)`` -- lane-wise product, rounded once;
* ``vfma(a, b, c)`` -- lane-wise ``a * b + c`` rounded once (``llvm.fma``: an exact fused
  multiply-add on every target, never contracted differently, so results are bitwise
  reproducible);
* ``vadd(a, b)`` -- lane-wise sum, rounded once;
* ``vltmask(v, x)`` -- which lanes of ``v`` are ``< x`` (ordered: NaN lanes are not), as a
  ``uint8`` bit mask (bit ``k`` for lane ``k``), so that the masks of several vectors are OR-ed and tested with one branch;
* ``vmul_below(v, t, f)`` -- lanes of ``v`` below ``t`` multiplied by ``f``, the others kept;
  ``vsel_below(v, t, a)`` -- ``a`` in the lanes of ``v`` below ``t``, ``0`` in the others
  (both branch-free: a compare and a blend).

Examples
--------
>>> import numba, numpy as np
>>> @numba.njit
... def axpy_first_lanes(a, x, y):
...     vstore(y, 0, vfma(vsplat(a), vload(x, 0), vload(y, 0)))
>>> x = np.arange(8.0); y = np.ones(8)
>>> axpy_first_lanes(2.0, x, y); y.tolist()
[1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0]
>>> @numba.njit
... def rescale_small(v, e):
...     q = vload(v, 0)
...     vstore(e, 0, vsel_below(q, 0.5, -10.0)); vstore(v, 0, vmul_below(q, 0.5, 1024.0))
...     return vltmask(q, 0.5)
>>> v = np.array([0.75, 0.25, 1.0, 2.0 ** -20, 0.5, 0.0, 3.0, 0.125]); e = np.empty(8)
>>> bin(rescale_small(v, e)), v.tolist(), e.tolist()
('0b10101010', [0.75, 256.0, 1.0, 0.0009765625, 0.5, 0.0, 3.0, 128.0], [0.0, -10.0, 0.0, -10.0, 0.0, -10.0, 0.0, -10.0])
"""

from __future__ import annotations

import functools
import hashlib

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = [
    "LANES", "F64Vec", "f64v", "has_avx512", "source_tag", "vadd", "vbcast", "vfma", "vload", "vltmask", "vmul",
    "vmul_below", "vsel_below", "vsplat", "vstore",
]

#: lanes of :data:`f64v`
LANES = 8

_LLVM_VEC = ir.VectorType(ir.DoubleType(), LANES)
_I32 = ir.IntType(32)


class F64Vec(types.Type):
    """numba type of a vector of :data:`LANES` float64 lanes (LLVM ``<8 x double>``).

    Examples
    --------
    >>> f64v.name
    'f64x8'
    """

    def __init__(self):
        super().__init__(name=f"f64x{LANES}")


#: the vector type (a singleton)
f64v = F64Vec()


@register_model(F64Vec)
class _F64VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _LLVM_VEC)


def _lane_ptr(context, builder, aryty, ary, idx):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [idx]), _LLVM_VEC.as_pointer())


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(_LLVM_VEC, ir.Undefined), x, ir.Constant(_I32, 0))
    zeros = ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES)
    return builder.shuffle_vector(v, ir.Constant(_LLVM_VEC, ir.Undefined), zeros)


def _check_array(arr, what):
    if not (isinstance(arr, types.Array) and arr.dtype == types.float64 and arr.ndim == 1 and arr.layout == "C"):
        raise TypeError(f"{what} needs a 1-D C-contiguous float64 array; got {arr}")


@intrinsic
def vload(typingctx, arr, i):
    """Lanes ``arr[i : i + LANES]`` as a vector (see the module docstring)."""
    _check_array(arr, "vload")

    def codegen(context, builder, sig, args):
        i64 = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.load(_lane_ptr(context, builder, sig.args[0], args[0], i64), align=8)

    return f64v(arr, i), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """Store the vector ``v`` to ``arr[i : i + LANES]``."""
    _check_array(arr, "vstore")

    def codegen(context, builder, sig, args):
        i64 = context.cast(builder, args[1], sig.args[1], types.intp)
        builder.store(args[2], _lane_ptr(context, builder, sig.args[0], args[0], i64), align=8)
        return context.get_dummy_value()

    return types.void(arr, i, f64v), codegen


@intrinsic
def vsplat(typingctx, x):
    """A vector with every lane ``x``."""

    def codegen(context, builder, sig, args):
        return _splat(builder, context.cast(builder, args[0], sig.args[0], types.float64))

    return f64v(x), codegen


@intrinsic
def vbcast(typingctx, arr, i):
    """Every lane ``arr[i]`` (a load without numba's negative-index wraparound)."""
    _check_array(arr, "vbcast")

    def codegen(context, builder, sig, args):
        i64 = context.cast(builder, args[1], sig.args[1], types.intp)
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return _splat(builder, builder.load(builder.gep(data, [i64]), align=8))

    return f64v(arr, i), codegen


@intrinsic
def vmul(typingctx, a, b):
    """Lane-wise ``a * b``."""

    def codegen(context, builder, sig, args):
        return builder.fmul(args[0], args[1])

    return f64v(f64v, f64v), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """Lane-wise ``a * b + c`` with a single rounding."""

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_LLVM_VEC, [_LLVM_VEC] * 3),
                                            f"llvm.fma.v{LANES}f64")
        return builder.call(fn, args)

    return f64v(f64v, f64v, f64v), codegen


@intrinsic
def vadd(typingctx, a, b):
    """Lane-wise ``a + b``."""

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return f64v(f64v, f64v), codegen


def _below(context, builder, sig, args):
    """The lane mask ``v < t`` (ordered: NaN lanes are not below)."""
    s = _splat(builder, context.cast(builder, args[1], sig.args[1], types.float64))
    return builder.fcmp_ordered("<", args[0], s)


@intrinsic
def vmul_below(typingctx, v, t, f):
    """Lanes of ``v`` below ``t`` multiplied by ``f``; the others unchanged."""

    def codegen(context, builder, sig, args):
        mask = _below(context, builder, sig, args)
        f = _splat(builder, context.cast(builder, args[2], sig.args[2], types.float64))
        return builder.select(mask, builder.fmul(args[0], f), args[0])

    return f64v(f64v, t, f), codegen


@intrinsic
def vsel_below(typingctx, v, t, a):
    """``a`` in the lanes of ``v`` below ``t``, 0 in the others."""

    def codegen(context, builder, sig, args):
        mask = _below(context, builder, sig, args)
        a = _splat(builder, context.cast(builder, args[2], sig.args[2], types.float64))
        return builder.select(mask, a, ir.Constant(_LLVM_VEC, [0.0] * LANES))

    return f64v(f64v, t, a), codegen


@intrinsic
def vltmask(typingctx, v, x):
    """Bit ``k`` set where lane ``k`` of ``v`` is ``< x`` (ordered), as a uint8; OR several and
    test once instead of one branch per vector."""

    def codegen(context, builder, sig, args):
        s = _splat(builder, context.cast(builder, args[1], sig.args[1], types.float64))
        return builder.bitcast(builder.fcmp_ordered("<", args[0], s), ir.IntType(LANES))

    return types.uint8(f64v, x), codegen


@functools.cache
def _own_source() -> bytes:
    try:
        with open(__file__, "rb") as fh:
            return fh.read()
    except OSError:  # pragma: no cover - e.g. a zipped install
        return b""


def source_tag(src: str) -> str:
    """12 hex digits of a digest of a generated kernel's source ``src`` and of this module.

    numba's disk cache is invalidated only by the time stamp of the file a kernel is compiled
    under; a kernel whose name carries this tag compiles afresh when either its generated source
    or the intrinsics here change, instead of loading a stale kernel.

    Examples
    --------
    >>> t = source_tag("def k(): pass")
    >>> len(t), t == source_tag("def k(): pass"), t == source_tag("def k(): return")
    (12, True, False)
    """
    return hashlib.sha1(src.encode() + _own_source()).hexdigest()[:12]


@functools.cache
def has_avx512() -> bool:
    """Whether numba compiles for AVX-512F here (then :data:`f64v` is one register).

    The host's features, unless numba is told to compile for another CPU
    (``NUMBA_CPU_NAME``, e.g. for portable caches): then only an explicit ``+avx512f`` in
    ``NUMBA_CPU_FEATURES`` counts.

    Examples
    --------
    >>> isinstance(has_avx512(), bool)
    True
    """
    import llvmlite.binding as ll
    from numba.core import config

    if config.CPU_NAME not in (None, "", "host"):
        return "+avx512f" in (config.CPU_FEATURES or "")
    return bool(ll.get_host_cpu_features().get("avx512f", False))
