"""The integer arithmetic the quantiser, the integer reference and the chip engine share
(the contract is :mod:`models.intref`'s docstring), in numpy and, next to each, the
Numba version the engine's kernels inline:

* ``round_half_away(y) = sign(y) * floor(|y| + 1/2)``: the only float-to-int rounding;
* ``rshift_round(x, k) = floor((x + 2^(k-1)) / 2^k)`` for ``k >= 1`` (an arithmetic
  shift: round to nearest, ties towards +infinity, for either sign), ``x`` for ``k = 0``;
* ``saturate(x, bits) = min(max(x, -2^(bits-1)), 2^(bits-1) - 1)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["round_half_away", "rshift_round", "saturate", "rshift_round_nb", "saturate_nb"]


def round_half_away(y) -> np.ndarray:
    """``sign(y) * floor(|y| + 1/2)`` as int64 (float-to-int rounding of the quantiser)."""
    y = np.asarray(y, dtype=np.float64)
    return (np.sign(y) * np.floor(np.abs(y) + 0.5)).astype(np.int64)


def rshift_round(x, k: int):
    """``floor((x + 2^(k-1)) / 2^k)`` for ``k >= 1`` (arithmetic shift), ``x`` for ``k == 0``."""
    if k == 0:
        return x
    return (x + (1 << (k - 1))) >> k


def saturate(x, bits: int):
    """Clip to the signed range of ``bits`` bits: ``[-2^(bits-1), 2^(bits-1) - 1]``."""
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


@njit(cache=True, inline="always")
def rshift_round_nb(x, k):
    """:func:`rshift_round` for one int64."""
    if k == 0:
        return x
    return (x + (np.int64(1) << (k - 1))) >> k


@njit(cache=True, inline="always")
def saturate_nb(x, lo, hi):
    """:func:`saturate` for one int64 with precomputed bounds ``lo = -2^(bits-1)``, ``hi = 2^(bits-1) - 1``."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x
