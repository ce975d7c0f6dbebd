"""Numba compile flags shared by the compiled kernels: one home for the reference-count
switch.

Numba counts references of every array a function binds, inlined helpers included
(atomic increments and decrements, not removed inside loops). A function that
allocates nothing and only indexes arrays its caller keeps alive can be compiled
without them: Numba's internal ``_nrt=False`` option, which Numba 0.68 has (without it
both decorators below are plain ``njit(cache=True)``: same results, slower). Measured:
the router kernel's cycle loop 13.1-13.7 ms against 15.1-15.6 ms (``bench/router_speed.py``);
the functional engine's step loop (:func:`hwsim.engine.kernel._sample`), one-thread CPU
of ``simulate``: mnist_mlp 0.211 -> 0.136 s, NIR CNN 0.673 -> 0.536 s (outputs and
counters identical).

The option is inherited: a function compiled with ``_nrt=False`` compiles what it calls
without reference counting too, unless the callee sets the option itself. A callee
that allocates (the NoC model's sort, the step timing) is therefore decorated with
:data:`nrt_jit`, which keeps reference counting on whoever calls it. An allocation
inside a :data:`loop_jit` function does not compile ("NRT required but not enabled"),
so the rule cannot be broken silently. Observed (our reading of it, not verified in
Numba's code): a callee shared with a counting caller may keep its counting version
under a :data:`loop_jit` caller too (the wormhole step timing's mesh loops went from
30 % to 22 % of the NIR CNN's run in reference counting, and to 0.5 % only once their
callees were decorated), so a hot callee is decorated :data:`loop_jit` itself.
"""

from __future__ import annotations

from numba import njit
from numba.core.cpu import CPUTargetOptions

__all__ = ["loop_jit", "nrt_jit"]

_HAS_NRT = hasattr(CPUTargetOptions, "_nrt")

#: compile without reference counting (the function and what it calls, unless they set it)
loop_jit = njit(cache=True, _nrt=False) if _HAS_NRT else njit(cache=True)
#: compile with reference counting whoever calls it (for allocating callees of :data:`loop_jit` code)
nrt_jit = njit(cache=True, _nrt=True) if _HAS_NRT else njit(cache=True)
