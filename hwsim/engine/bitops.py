"""Bit operations the compiled kernels use on 64-bit spike masks (LLVM intrinsics that
Numba does not expose): the index of a word's lowest set bit."""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

__all__ = ["lowest_bit"]


@intrinsic
def lowest_bit(typingctx, m):
    """``lowest_bit(m)``: the index ``k`` of the lowest set bit of the int64 ``m``
    (``m & (1 << k) != 0`` and ``m & ((1 << k) - 1) == 0``; LLVM ``cttz``, one
    instruction); ``m`` must be nonzero (the result is undefined for 0)."""
    if m != types.int64:
        return None

    def codegen(context, builder, signature, args):
        import llvmlite.ir as ir

        i64 = ir.IntType(64)
        fn = builder.module.declare_intrinsic("llvm.cttz", [i64], fnty=ir.FunctionType(i64, [i64, ir.IntType(1)]))
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return types.int64(types.int64), codegen
