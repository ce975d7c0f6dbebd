"""The reference-count switch (:mod:`hwsim.jitflags`): code compiled with ``loop_jit`` may not
allocate, and ``nrt_jit`` keeps reference counting on an allocating callee of such code."""

import numpy as np
import pytest
from numba import njit
from numba.core.cpu import CPUTargetOptions
from numba.core.errors import NumbaError

from hwsim.jitflags import loop_jit, nrt_jit

#: how Numba refuses an allocation without reference counting (at lowering or at typing)
NO_NRT = "NRT required but not enabled|Only accept returning of array passed into the function"

pytestmark = pytest.mark.skipif(not hasattr(CPUTargetOptions, "_nrt"), reason="this Numba has no _nrt option")


def test_loop_jit_rejects_an_allocation():
    @loop_jit
    def f(n):
        return np.zeros(n).sum()

    with pytest.raises(NumbaError, match=NO_NRT):
        f(3)


def test_nrt_jit_callee_allocates_under_loop_jit_caller():
    """The callee's cumulative sums (a new array) are computed with reference counting, the
    caller's loop over views without."""

    @nrt_jit
    def total_of_cumsum(x):
        return np.cumsum(x)[-1]

    @loop_jit
    def caller(x, out):
        for i in range(out.shape[0]):
            out[i] = total_of_cumsum(x[i:])

    x = np.arange(1, 6, dtype=np.int64)
    out = np.zeros(5, np.int64)
    caller(x, out)
    assert list(out) == [15, 14, 12, 9, 5]


def test_without_nrt_jit_the_flag_reaches_the_callee():
    @njit
    def total_of_cumsum(x):
        return np.cumsum(x)[-1]

    @loop_jit
    def caller(x):
        return total_of_cumsum(x)

    with pytest.raises(NumbaError, match=NO_NRT):
        caller(np.arange(3, dtype=np.int64))

