"""The integer IF update of a skip-eligible population in blocks of 64 state slots, each
block skipped when nothing in it can change (Numba, inlined into the functional kernel,
:func:`hwsim.engine.kernel._neurons`).

A population is skip-eligible (``pops.skip``, :func:`hwsim.engine.build._kernel_inputs`)
when it is IF without bias (constant or terms) and with positive thresholds; on the
kernel's IF fast path (binary spikes, subtractive reset, one projection, no membrane
floor) a neuron's step is

    I = (a + h) >> s   (h = 2**(s - 1), 0 when s = 0: ``rshift_round`` of its sum a)
    v' = sat(v + I) = min(max(v + I, lo), hi);  z = [v' >= theta];  v <- v' - z theta

and ``hot`` says ``v >= theta`` after it (the neuron fires at the next step even
without input).

The skip rule, exact: a block of 64 slots that no event touched since its sums were
last zeroed (so ``a = 0`` and ``I = (0 + h) >> s = 0`` as ``0 <= h < 2**s``) and none of
whose neurons is hot (``v < theta``) does not change: ``v`` lies in ``[lo, hi]`` (it
starts at 0, ``sat`` keeps it there and a spike leaves ``v' - theta`` in
``[0, hi - theta]`` as ``theta > 0``), so ``v' = v < theta``, ``z = 0`` and ``v`` stays;
its outputs are 0 (written when an earlier update left a spike there) and it stays not
hot. Its sums are zero already, so they need no reset either. One flag word per block
(``blk``) holds :data:`BLK_IN` (set by every run of sums the event scatter adds,
:func:`hwsim.engine.events.mark`), :data:`BLK_HOT` and :data:`BLK_OUT` (written by
each update of the block); a step reads only the flags of the skipped blocks. An
input-fed projection keeps its sums while the input frames repeat: its touched bits
stay with them, and the step loop zeroes the touched blocks only when the frames change.
On the NIR paper CNN's two 4096-neuron convolution layers (sums stored (y, x, c): a
block is 4 output positions x 16 channels) 66-72 % of the blocks have no activity in a
step (spikes, membrane changes or a spike the step before, measured from the recorded
run), and the one-thread functional run went from 0.70-0.73 s to 0.56-0.59 s.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["BLK_HOT", "BLK_OUT", "BLK_IN", "if_step", "spike_mask", "first_flag", "if_blocks", "block_flags_size",
           "block_pops"]

#: the bits of a block's flag word: a neuron at or above threshold, a nonzero output, a sum touched
BLK_HOT, BLK_OUT, BLK_IN = 1, 2, 4


@njit(cache=True, inline="always")
def if_step(v, i, theta, lo, hi):
    """One neuron of the IF fast path: ``v' = sat(v + i)``, ``z = [v' >= theta]``; returns
    ``(v' - z theta, z)`` (branch-free, so the loops calling it vectorise). The one home
    of this update for both the dense pass (:func:`hwsim.engine.kernel._neurons`) and the
    block pass (:func:`if_blocks`); the general models are :func:`models.neurons.int_update_nb`."""
    vv = min(max(v + i, lo), hi)
    z = np.int64(vv >= theta)
    return vv - z * theta, z


@njit(cache=True, inline="always")
def spike_mask(po, s0, n):
    """The spike mask of slots ``s0 .. s0 + n - 1`` (``n <= 64``) of outputs ``po``: bit ``i``
    = output of slot ``s0 + i`` (0 or 1)."""
    m = np.int64(0)
    for i in range(np.uint64(n)):
        m |= po[s0 + i] << i
    return m


@njit(cache=True, inline="always")
def first_flag(a0, q):
    """Index of projection ``q``'s first block flag, its sums starting at accumulator ``a0``
    (:func:`block_flags_size`): the one home of the flag layout for the table builder, the
    event scatter and the step loop."""
    return (a0 >> 6) + q


def block_flags_size(n_acc: int, n_projs: int) -> int:
    """Words of the block flags: projection ``q`` with accumulators from ``a0`` uses
    ``blk[(a0 >> 6) + q + w]`` for its blocks ``w < ceil(n / 64)``, disjoint across
    projections (``floor(a0 / 64) + ceil(n / 64) <= floor((a0 + n) / 64) + 1``)."""
    return (n_acc >> 6) + n_projs + 1


def block_pops(pop_skip: np.ndarray, acc_order: np.ndarray, grp_ptr: np.ndarray, grp_geo: np.ndarray,
               grp_cr_off: np.ndarray, geo_kh: np.ndarray) -> np.ndarray:
    """Per population, whether its update runs by blocks (:func:`if_blocks`): skip-eligible
    (``pop_skip``), on the IF fast path with its state in its accumulators' order
    (``acc_order``, :func:`hwsim.engine.build.state_order`: slot ``u`` reads sum ``a0 + u``)
    and fed only by groups of geometric convolutions (kernel height ``geo_kh > 0``; every
    sum it gets is added by :func:`hwsim.engine.events.conv_event`, which marks the
    blocks it touches)."""
    out = np.zeros(pop_skip.size, np.bool_)
    for p in range(1, pop_skip.size):
        g = slice(int(grp_ptr[p]), int(grp_ptr[p + 1]))
        geo = grp_geo[g]
        out[p] = (bool(pop_skip[p]) and bool(acc_order[p]) and g.stop > g.start and bool((geo >= 0).all())
                  and bool((grp_cr_off[g] < 0).all()) and bool((geo_kh[np.maximum(geo, 0)] > 0).all()))
    return out


@njit(cache=True, inline="always")
def if_blocks(pa, pv, pt, po, bm, blk, npop, hb, sh, lo, hi, input_fed):
    """One step of the IF update above for slots ``0 .. npop - 1`` of a population on the
    block path (:func:`block_pops`): sums ``pa``, membranes ``pv``, thresholds ``pt``,
    outputs ``po`` (its views), its block flags ``blk`` (a view). Writes bit ``i`` of
    ``bm[w]`` = output of slot ``64 w + i`` (the spike masks) and returns the number of
    hot neurons (``v >= theta`` after the step). A block is updated when its flag has
    :data:`BLK_IN` (an event added to its sums, :func:`hwsim.engine.events.conv_event`)
    or :data:`BLK_HOT`; with :data:`BLK_OUT` alone its outputs are zeroed; else nothing
    is read. An updated block's sums are zeroed and its touched bit cleared, except for
    an ``input_fed`` projection (its sums are kept while the input repeats and cleared,
    with the touched bits, by the step loop when it does not)."""
    nw = (npop + 63) >> 6
    nhot = np.int64(0)
    keep = BLK_IN if input_fed else 0
    for w in range(nw):
        f = blk[w]
        if f & (BLK_IN | BLK_HOT) == 0:
            if f != 0:  # outputs of an earlier spike
                po[w << 6:(w << 6) + 64] = 0
                blk[w] = 0
            bm[w] = 0
            continue
        s0 = w << 6
        n = np.uint64(min(64, npop - s0))
        ba = pa[s0:s0 + 64]
        bv = pv[s0:s0 + 64]
        bt = pt[s0:s0 + 64]
        bz = po[s0:s0 + 64]
        nh = np.int64(0)
        for u in range(n):  # branch-free, unsigned indices (no wraparound checks): it vectorises
            vv, zz = if_step(bv[u], (ba[u] + hb) >> sh, bt[u], lo, hi)
            bv[u] = vv
            bz[u] = zz
            nh += np.int64(vv >= bt[u])
        m = spike_mask(bz, 0, n)
        bm[w] = m
        if not input_fed:
            ba[:] = 0
        blk[w] = (BLK_HOT if nh > 0 else 0) | (BLK_OUT if m != 0 else 0) | (f & keep)
        nhot += nh
    return nhot
