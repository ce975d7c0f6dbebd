"""The functional kernel (Numba): every step of a sample, event-driven, with the counters,
and the step's cycle timing (:mod:`hwsim.engine.timing`) in the same call; :func:`run_threads`
runs the samples on threads without the GIL.

Per step the kernel lists each population's nonzero outputs once and touches only the
crossbar rows those sources drive; an event reads one flat table of records, one per
span or scattered row, with the row's tile counts, or one fixed-length row of a short-row
group (the tables are built by :mod:`hwsim.engine.build`). The graph input is encoded
inside the kernel, nonzero values only (``models.intref`` encoding, validated beforehand
with the same errors). When the input frames an input-fed population reads are the same
as at the previous step, the input projections' sums are kept and their per-tile event /
AC / MAC / cycle counts re-added (the chip still performs, and the counters still count,
every MAC each step). An IF population without bias whose neurons get no input and none
of which sits at or above threshold is not updated (nothing in it can change); one fed
only by convolutions updates only its blocks of 64 neurons that an event touched or that
hold such a neuron (:mod:`hwsim.engine.if_blocks`), and a
population step without any event skips its tiles' counter work. Neuron updates, state
words and the soma tiles' fire cycles (the same every step) are added arithmetically
by the caller (:func:`hwsim.engine.run.fire_cycles`). A population step where more than
one neuron in 16 spikes adds its spike counters (spikes, packets, flits, flit-hops)
in one vectorised pass over its outputs per run of neurons on one core, not spike by
spike (:func:`_dense_counts`): when ``16 (spikes - runs) > neurons``. The event and update routines are
inlined into the step loop: a call measured about 0.55 us, more than the MLP's whole
per-step work without input (our reading: it passes ~100 array views of the records).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from models.neurons import CODE_IF, int_update_nb

from .layout import (CNT_ACS, CNT_BUSY_CYCLES, CNT_EVENTS, CNT_FLITS, CNT_FLIT_HOPS, CNT_INTERCHIP_FLITS,
                     CNT_IO_IN_FLITS, CNT_IO_IN_FLIT_HOPS, CNT_IO_OUT_FLITS, CNT_MACS, CNT_PACKETS, CNT_PSUM_OPS,
                     CNT_SPIKES, HSTAT_OVERRUNS, IO_FLITS, IO_FLIT_HOPS, IO_INTERCHIP_FLITS, NIO, WORK_EDGES, Packed,
                     open_edges, open_groups, open_input_io, open_neurons, open_pops, open_projs, open_scalars,
                     open_state, open_tile_counts, open_tiles)
from .bitops import lowest_bit
from .events import events
from .if_blocks import BLK_IN, first_flag, if_blocks, if_step, spike_mask
from .timing import step_timing
from .timing_spikes import flush_static_flits
from ..jitflags import loop_jit
from .threads import on_threads

__all__ = ["run_threads"]

# a population step with more than npop / _DENSE spikes beyond its number of runs of
# neurons on one core counts them densely (_dense_counts)
_DENSE = 16


@njit(cache=True)
def _encode_step(x, t, b, spiking, scale, top, nz, nzv, base):
    """``models.intref._InputEncoder`` for step ``t`` of sample ``b``, nonzero values
    only: their indices go to ``nz[base:]``, values to ``nzv[base:]``; returns the
    count. Spiking inputs were validated as non-negative integers; real-valued ones
    encode as ``clip(floor(x * scale + 0.5), 0, top)``, branch-free (every value is
    written, the count advances on nonzero ones: dense frames, no mispredictions)."""
    n = x.shape[2]
    c = 0
    if spiking:  # sparse events: a well-predicted branch beats writing every value (and a
        # test of 32 values at a time, a vectorised OR, measured 2x slower: the loop is memory-bound)
        for i in range(n):
            xi = x[t, b, i]
            if xi != 0:
                nz[base + c] = i
                nzv[base + c] = np.int64(xi)
                c += 1
    else:
        ftop = np.float64(top)
        for i in range(n):
            e = min(max(np.floor(np.float64(x[t, b, i]) * scale + 0.5), 0.0), ftop)
            nz[base + c] = i
            nzv[base + c] = np.int64(e)
            c += e >= 1.0
    return c


@njit(cache=True, inline="always")
def _neurons(pops, nrns, projs, opt, state, p, t, lo, hi, wbase):
    """Input currents and the integer-contract update of population ``p`` (all its
    neurons): the model's Numba step (:func:`models.neurons.int_update_nb`), then spikes,
    reset and the membrane floor (``v <- max(v, vmin)`` where ``pops.floor[p]``) as
    :mod:`models.intref` writes them; outputs go to ``o_all`` and the nonzero ones,
    listed in neuron order, to ``nz`` / ``nzv`` from ``wbase`` (returns their count);
    ``hot[p]`` says whether a neuron ended at or above threshold (it fires at the next
    step even without input). A population kept in accumulator order
    (``pops.acc_order[p]``, :func:`hwsim.engine.build.state_order`) holds neuron ``n``'s
    membrane, threshold, bias and output at slot ``nrns.slot[off + n]``."""
    model = pops.model[p]
    off = pops.off[p]
    npop = pops.size[p]
    thr = nrns.thr
    q0 = pops.proj_ptr[p]
    if (model == CODE_IF and opt.multi == 0 and opt.reset_sub != 0 and pops.proj_ptr[p + 1] - q0 == 1
            and pops.bt_ptr[p + 1] == pops.bt_ptr[p] and pops.floor[p] == 0):
        # IF, binary spikes, subtractive reset, one projection, no floor: the common case,
        # one branch-free pass (current, update, spike), one building the spike masks, then
        # the spikes listed from the masks; a population kept in accumulator order (pops.acc_order,
        # build.state_order) reads its sums, membranes and thresholds contiguously
        q = pops.proj_order[q0]
        a0 = projs.acc_off[q]
        sh = projs.shift[q]
        hb = (np.int64(1) << (sh - 1)) if sh > 0 else np.int64(0)
        ordered = pops.acc_order[p] != 0
        pa = state.acc[a0:a0 + npop]
        pv = state.v[off:off + npop]
        pb = nrns.bias[off:off + npop]
        pt = thr[off:off + npop]
        po = state.o_all[off:off + npop]
        pz = state.nz[wbase:wbase + npop]
        pzv = state.nzv[wbase:wbase + npop]
        ps = pa
        if projs.perm[q] != 0 and not ordered:  # sums stored in another order: gather them first
            ap = projs.acc_pos[a0:a0 + npop]
            ps = state.Ib[:npop]
            for n in range(npop):
                ps[n] = state.acc[ap[n]]
        nw = (npop + 63) >> 6
        bm = state.bits
        if pops.blocks[p] != 0:  # by blocks of 64 slots, untouched quiet ones skipped (if_blocks)
            fb = first_flag(a0, q)
            nhot = if_blocks(pa, pv, pt, po, bm, state.blk[fb:fb + nw], npop, hb, sh, lo, hi,
                             projs.fed_by_input[q] != 0)
        else:
            # current (rshift_round by sh, hb = 0 when sh = 0) and update, one branch-free pass
            # (unsigned indices: no wraparound checks, so it vectorises)
            nhot = np.int64(0)
            for u in range(np.uint64(npop)):
                vv, z = if_step(pv[u], pb[u] + ((ps[u] + hb) >> sh), pt[u], lo, hi)
                pv[u] = vv
                po[u] = z
                nhot += np.int64(vv >= pt[u])
            # the spikes as masks, in words of 64 slots: bit i of word w says whether slot 64 w + i spiked
            for w in range(nw):
                bm[w] = spike_mask(po, np.uint64(w << 6), min(64, npop - (w << 6)))
            if projs.fed_by_input[q] == 0:
                pa[:] = 0
        nm = 0  # the masks listed: in neuron order (slot order mapped back when reordered)
        if ordered:
            nm = nw
            at = nrns.at_slot[off:off + npop]
            for w in range(nw):
                bm[nw + w] = 0
            for w in range(nw):
                m = bm[w]
                while m != 0:
                    n = at[(w << 6) + lowest_bit(m)]
                    bm[nw + (n >> 6)] |= np.int64(1) << (n & 63)
                    m &= m - 1
        nnw = 0
        for w in range(nw):
            m = bm[nm + w]
            while m != 0:
                pz[nnw] = (w << 6) + lowest_bit(m)
                pzv[nnw] = 1
                nnw += 1
                m &= m - 1
        state.hot[p] = nhot > 0
        return nnw
    for n in range(npop):
        state.Ib[n] = nrns.bias[off + n]
    for qi in range(pops.proj_ptr[p], pops.proj_ptr[p + 1]):
        q = pops.proj_order[qi]
        a0 = projs.acc_off[q]
        sh = projs.shift[q]
        if sh == 0:
            for n in range(npop):
                state.Ib[n] += state.acc[projs.acc_pos[a0 + n]]
        else:
            hb = np.int64(1) << (sh - 1)
            for n in range(npop):
                state.Ib[n] += (state.acc[projs.acc_pos[a0 + n]] + hb) >> sh
        if not projs.fed_by_input[q]:
            for n in range(npop):
                state.acc[a0 + n] = 0
    for bi in range(pops.bt_ptr[p], pops.bt_ptr[p + 1]):
        if t >= nrns.bt_start[bi]:
            bo = nrns.bt_off[bi]
            for n in range(npop):
                state.Ib[n] += nrns.bt_vec[bo + n]
    nhot = 0
    spk = pops.spikes[p] != 0
    stateless_spike = spk and pops.state[p] == 0  # Threshold: z = [I >= theta], v stays 0
    flo = pops.floor[p] != 0
    for n in range(npop):
        gi = off + n
        I = state.Ib[n]
        if stateless_spike:
            o = np.int64(1) if I >= thr[gi] else np.int64(0)
        else:
            vv, ii = int_update_nb(model, state.v[gi], state.isyn[gi], I, thr[gi], nrns.alpha[gi], nrns.asyn[gi],
                                   nrns.vleak[gi], opt.F, lo, hi)
            state.isyn[gi] = ii
            o = np.int64(0)
            if spk:
                th = thr[gi]
                if vv >= th:
                    if opt.multi:
                        o = vv // th
                    else:
                        o = np.int64(1)
                    if opt.reset_sub:
                        vv = vv - o * th
                    else:
                        vv = nrns.vreset[gi]
                if flo:
                    vv = max(vv, nrns.vmin[gi])
                if vv >= th:
                    nhot += 1
            else:
                if flo:
                    vv = max(vv, nrns.vmin[gi])
                o = vv
            state.v[gi] = vv
        state.o_all[gi] = o
    state.hot[p] = nhot > 0
    nnw = 0
    for n in range(npop):
        o = state.o_all[off + n]
        if o != 0:
            state.nz[wbase + nnw] = n
            state.nzv[wbase + nnw] = o
            nnw += 1
    return nnw


@njit(cache=True, inline="always")
def _dense_counts(o_all, nrns, cnt_t, g0, g1, c, counts, per_count):
    """The spike counters of neurons ``g0 .. g1 - 1`` (global, all on core ``c``) from
    their outputs ``o``, one vectorised pass with no spike list: the same sums as the
    per-spike loop of :func:`_sample` over the nonzero outputs, ``spikes += o`` (when
    the model outputs counts), ``packets += m pk``, ``flits += m pk``, ``flit_hops +=
    m hops``, ``interchip_flits += m icx`` with ``m = o`` (spike counts without payload:
    one packet per spike) or ``m = [o != 0]``. Cheaper than the list when more than
    one neuron in :data:`_DENSE` spikes and the runs are long (about 0.3 ns a neuron and
    a spike's cost a run, against 4.7 ns a spike, measured on the MLP's hidden layer:
    400 neurons on two cores, 93 spikes a step)."""
    s_spikes = np.int64(0)
    s_packets = np.int64(0)
    s_hops = np.int64(0)
    s_icx = np.int64(0)
    for u in range(np.uint64(g0), np.uint64(g1)):  # unsigned: no wraparound checks, the loop vectorises
        o = o_all[u]
        m = o if per_count else np.int64(o != 0)
        s_spikes += o
        s_packets += m * nrns.pk[u]
        s_hops += m * nrns.hops[u]
        s_icx += m * nrns.icx[u]
    if counts:
        cnt_t[c, CNT_SPIKES] += s_spikes
    cnt_t[c, CNT_PACKETS] += s_packets
    cnt_t[c, CNT_FLITS] += s_packets
    cnt_t[c, CNT_FLIT_HOPS] += s_hops
    cnt_t[c, CNT_INTERCHIP_FLITS] += s_icx


@loop_jit
def _sample(tab, ent, work, inp, outs, vcd, tim, bg, rb, g, timed):
    """All steps of sample ``bg`` of ``inp.x`` (``rb``: its index in the recordings): event-driven per
    population (only rows of nonzero sources are read; input-fed sums reused while the
    input frames they read repeat, as are the I/O counters of the input events; a
    population with no input current, no bias and no neuron at threshold is not
    updated: nothing in it can change), then, when ``timed``,
    the step's cycle timing (:func:`hwsim.engine.timing.step_timing`)."""
    pops, nrns, projs, tiles = open_pops(tab), open_neurons(tab), open_projs(tab), open_tiles(tab)
    grps, io, opt = open_groups(tab), open_input_io(tab), open_scalars(tab)
    state, tcnt = open_state(work), open_tile_counts(work)
    T = inp.x.shape[0]
    P = pops.size.shape[0]
    lo = -(np.int64(1) << (opt.M - 1))
    hi = (np.int64(1) << (opt.M - 1)) - 1
    n_in = pops.size[0]
    state.v[:] = 0
    state.isyn[:] = 0
    state.acc[:] = 0
    state.nzc[:] = 0
    state.hot[:] = 0
    state.in_zero[:] = 1
    state.o_all[:] = 0  # with the block flags: no output, nothing hot, no sum touched (if_blocks)
    state.blk[:] = 0
    prev_n = -1
    for t in range(T):
        cnt_t = outs.cnt[g, t]
        # ---- graph input: encoded nonzero values of the step
        sl0 = t % pops.ring[0]
        base0 = pops.ring_off[0] + sl0 * n_in
        if inp.held[t, bg]:  # a held frame: the same events
            nn0 = prev_n
            if pops.ring[0] > 1:  # (with one slot, it still holds them)
                for j in range(nn0):
                    state.nz[base0 + j] = state.prev_i[j]
                    state.nzv[base0 + j] = state.prev_v[j]
            eq = True
        else:
            nn0 = _encode_step(inp.x, t, bg, opt.spiking, inp.scale, inp.top, state.nz, state.nzv, base0)
            eq = t > 0 and nn0 == prev_n
            if eq:
                for j in range(nn0):
                    if state.nz[base0 + j] != state.prev_i[j] or state.nzv[base0 + j] != state.prev_v[j]:
                        eq = False
                        break
        state.nzc[pops.slot_off[0] + sl0] = nn0
        if not eq:
            for j in range(nn0):
                state.prev_i[j] = state.nz[base0 + j]
                state.prev_v[j] = state.nzv[base0 + j]
            prev_n = nn0
        state.same[t] = eq
        if not eq:  # the I/O traffic of the step's events, per core (kept while they repeat)
            state.in_cnt[:] = 0
            for j in range(nn0):
                i = state.nz[base0 + j]
                if io.dst_ptr[i + 1] > io.dst_ptr[i]:
                    ci = NIO * io.dst_core[io.dst_ptr[i]]
                    fm = opt.in_flits * (state.nzv[base0 + j] if opt.in_mult != 0 else 1)
                    state.in_cnt[ci + IO_FLITS] += io.pk[i] * fm
                    state.in_cnt[ci + IO_FLIT_HOPS] += io.hops[i] * fm
                    state.in_cnt[ci + IO_INTERCHIP_FLITS] += io.icx[i] * fm
        for c in io.cores:  # the only cores with input counts (build._input_cores)
            cnt_t[c, CNT_IO_IN_FLITS] += state.in_cnt[NIO * c + IO_FLITS]
            cnt_t[c, CNT_IO_IN_FLIT_HOPS] += state.in_cnt[NIO * c + IO_FLIT_HOPS]
            cnt_t[c, CNT_INTERCHIP_FLITS] += state.in_cnt[NIO * c + IO_INTERCHIP_FLITS]
        if rb < outs.n_rec:
            for j in range(nn0):
                outs.all_out[rb, t, state.nz[base0 + j]] = state.nzv[base0 + j]
        # ---- populations in net order
        for p in range(1, P):
            k0 = pops.tile_ptr[p]
            k1 = pops.tile_ptr[p + 1]
            # the tiles' step counts t_* are zero here: zeroed by _run, and after each use below
            # may the input-fed accumulators of the previous step be kept?
            reuse = pops.reuse[p] != 0 and t > 0
            if reuse:
                for gg in range(grps.ptr[p], grps.ptr[p + 1]):
                    if grps.src[gg] == 0:
                        d = grps.delay[gg]
                        if t >= d and not (t - 1 >= d and state.same[t - d] != 0):
                            reuse = False
            if reuse:
                for ti in range(k0, k1):
                    kk = pops.tile_order[ti]
                    tcnt.t_nev[kk] += tcnt.c_nev[kk]
                    tcnt.t_cyc[kk] += tcnt.c_cyc[kk]
                    tcnt.t_ac[kk] += tcnt.c_ac[kk]
                    tcnt.t_mac[kk] += tcnt.c_mac[kk]
            else:
                for qi in range(pops.proj_ptr[p], pops.proj_ptr[p + 1]):
                    q = pops.proj_order[qi]
                    if projs.fed_by_input[q]:
                        a0 = projs.acc_off[q]
                        if pops.blocks[p] != 0:  # the touched blocks only: the others hold zeros (if_blocks)
                            fb = first_flag(a0, q)
                            for w in range((projs.npost[q] + 63) >> 6):
                                if state.blk[fb + w] & BLK_IN:
                                    state.acc[a0 + (w << 6):a0 + min((w << 6) + 64, projs.npost[q])] = 0
                                    state.blk[fb + w] &= ~BLK_IN
                        else:
                            state.acc[a0:a0 + projs.npost[q]] = 0  # a slice: a memset (an indexed loop is not)
            # events: input groups first (their counts are cached), then the rest
            n_rows = 0
            has_in = False  # input groups (none: in_zero[p] stays 1, and no phase-0 call)
            for gg in range(grps.ptr[p], grps.ptr[p + 1]):
                has_in |= grps.src[gg] == 0
            for phase in range(2):
                if phase == 0 and (reuse or not has_in):
                    continue
                n_rows += events(pops, grps, state, tcnt, ent, p, t, phase == 0)
                if phase == 0:
                    state.in_zero[p] = n_rows == 0
                    if pops.reuse[p]:
                        for ti in range(k0, k1):
                            kk = pops.tile_order[ti]
                            tcnt.c_nev[kk] = tcnt.t_nev[kk]
                            tcnt.c_cyc[kk] = tcnt.t_cyc[kk]
                            tcnt.c_ac[kk] = tcnt.t_ac[kk]
                            tcnt.c_mac[kk] = tcnt.t_mac[kk]
                    n_rows = 0
            # the tiles' counts; a soma tile's fire cycles (every step, events or not) are added
            # by the caller (hwsim.engine.run.fire_cycles); a step without any event of the
            # population changes no counter, its tiles only get tc = -1 (no integration)
            any_ev = reuse or n_rows != 0 or state.in_zero[p] == 0
            for ti in range(k0, k1):
                kk = pops.tile_order[ti]
                if not any_ev:
                    tcnt.tc[kk] = -1
                    if rb < outs.n_rec:
                        outs.tile_cyc[rb, t, kk] = -1
                    continue
                c = tiles.core[kk]
                cyc = tcnt.t_cyc[kk]
                nev = tcnt.t_nev[kk]
                cnt_t[c, CNT_EVENTS] += nev
                cnt_t[c, CNT_ACS] += tcnt.t_ac[kk]
                cnt_t[c, CNT_MACS] += tcnt.t_mac[kk]
                cnt_t[c, CNT_BUSY_CYCLES] += cyc
                tcnt.t_nev[kk] = 0
                tcnt.t_cyc[kk] = 0
                tcnt.t_ac[kk] = 0
                tcnt.t_mac[kk] = 0
                if tiles.kind[kk] != 0:
                    if nev > 0:
                        cs = tiles.core[tiles.soma[kk]]
                        cnt_t[cs, CNT_PSUM_OPS] += tiles.ncols[kk]
                        pf = tiles.psum_flits[kk]
                        if pf > 0:
                            cnt_t[c, CNT_PACKETS] += 1
                            cnt_t[c, CNT_FLITS] += pf
                            cnt_t[c, CNT_FLIT_HOPS] += pf * tiles.psum_hops[kk]
                            cnt_t[c, CNT_INTERCHIP_FLITS] += pf * tiles.psum_icx[kk]
                tcv = cyc if nev > 0 else -1
                tcnt.tc[kk] = tcv
                if rb < outs.n_rec:
                    outs.tile_cyc[rb, t, kk] = tcv
            # ---- neurons (neuron_updates / state_words are added by the caller)
            off = pops.off[p]
            npop = pops.size[p]
            sl = t % pops.ring[p]
            wbase = pops.ring_off[p] + sl * npop
            ws = pops.slot_off[p] + sl
            ro = outs.rec_off[p]
            quiet = pops.skip[p] != 0 and n_rows == 0 and state.in_zero[p] != 0 and state.hot[p] == 0
            if quiet:
                # no current, no bias, nothing at threshold: v unchanged, no output
                state.nzc[ws] = 0
                if ro >= 0:
                    for n in range(npop):
                        outs.rec_v[t, bg, ro + n] = state.v[nrns.slot[off + n]]
                if bg == vcd.sample:
                    for n in range(npop):
                        gi = off + n
                        if vcd.slot[gi] >= 0:
                            vcd.s[t, vcd.slot[gi]] = 0
                            vcd.v[t, vcd.slot[gi]] = state.v[nrns.slot[gi]]
                continue
            nnw = _neurons(pops, nrns, projs, opt, state, p, t, lo, hi, wbase)
            state.nzc[ws] = nnw
            counts = pops.spikes[p] != 0  # spikes (counts) out; else values (models.neurons)
            per_count = opt.payload == 0 and counts and pops.state[p] != 0
            value_out = not counts
            r0 = pops.run_ptr[p]
            r1 = pops.run_ptr[p + 1]
            if _DENSE * (nnw - (r1 - r0)) <= npop:  # a run costs about what a spike does
                r1 = r0
            for r in range(r0, r1):  # many spikes: the counts of the outputs, one pass per run of a core
                _dense_counts(state.o_all, nrns, cnt_t, off + pops.run_lo[r], off + pops.run_hi[r], pops.run_core[r],
                              counts, per_count)
            # else spikes, packets, flit-hops: summed in registers over runs of spikes on one core
            c_run = -1
            s_spikes = np.int64(0)
            s_packets = np.int64(0)
            s_hops = np.int64(0)
            s_icx = np.int64(0)
            for j in range(nnw + 1 if r1 == r0 else 0):
                c = nrns.core[off + state.nz[wbase + j]] if j < nnw else -2
                if c != c_run:
                    if c_run >= 0:
                        cnt_t[c_run, CNT_SPIKES] += s_spikes
                        cnt_t[c_run, CNT_PACKETS] += s_packets
                        cnt_t[c_run, CNT_FLITS] += s_packets
                        cnt_t[c_run, CNT_FLIT_HOPS] += s_hops
                        cnt_t[c_run, CNT_INTERCHIP_FLITS] += s_icx
                    if j == nnw:
                        break
                    c_run = c
                    s_spikes = 0
                    s_packets = 0
                    s_hops = 0
                    s_icx = 0
                gi = off + state.nz[wbase + j]
                o = state.nzv[wbase + j]
                mult = o if per_count else 1
                s_spikes += o if counts else 0
                s_packets += nrns.pk[gi] * mult
                s_hops += nrns.hops[gi] * mult
                s_icx += nrns.icx[gi] * mult
            if p == opt.out_pop or rb < outs.n_rec:
                for j in range(nnw):
                    gi = off + state.nz[wbase + j]
                    o = state.nzv[wbase + j]
                    if p == opt.out_pop:
                        if value_out:
                            cnt_t[nrns.core[gi], CNT_IO_OUT_FLITS] += opt.out_val_flits
                        else:
                            cnt_t[nrns.core[gi], CNT_IO_OUT_FLITS] += o if opt.payload == 0 else 1
                    if rb < outs.n_rec:
                        outs.all_out[rb, t, gi] = o
            if p == opt.out_pop:
                for n in range(npop):
                    outs.out[t, bg, n] = state.o_all[nrns.slot[off + n]]
            if ro >= 0:
                for n in range(npop):
                    gs = nrns.slot[off + n]  # where the neuron's state is kept (build.state_order)
                    outs.rec_s[t, bg, ro + n] = state.o_all[gs]
                    outs.rec_v[t, bg, ro + n] = state.v[gs]
            if bg == vcd.sample:
                for n in range(npop):
                    gi = off + n
                    if vcd.slot[gi] >= 0:
                        vcd.s[t, vcd.slot[gi]] = state.o_all[nrns.slot[gi]]
                        vcd.v[t, vcd.slot[gi]] = state.v[nrns.slot[gi]]
        if timed:
            busy = step_timing(tab, work, t, tim.core_busy[bg], tim.hist[g], tim.hstat[g])
            if opt.fixed >= 0:
                if busy > opt.fixed:
                    tim.hstat[g, HSTAT_OVERRUNS] += 1
                else:
                    busy = opt.fixed
            tim.step_cycles[bg, t] = busy + opt.barrier


@njit(cache=True, nogil=True)
def _run(g, n_groups, tab, ent, wo, inp, b0, nb, outs, vcd, tim):
    """Thread ``g`` of ``n_groups``: samples ``b0 + g, b0 + g + n_groups, ...`` below
    ``b0 + nb`` of ``inp.x`` (T, B, n_in); its counters go to ``outs.cnt[g]``. Samples below
    ``outs.n_rec`` (index within the call) record their outputs and tile cycles (traces);
    global samples below ``tim.n_timed`` get the cycle timing, their flits per link go to
    ``tim.lflits[g]``. ``wo``: the scratch layout (:func:`hwsim.engine.build.work_layout`).
    Runs without the GIL (one Python thread per group)."""
    # zero but the route edges (WORK_EDGES: written before read, e_valid set as far as
    # used, :func:`hwsim.engine.timing.valid_edges`); the NoC's per-link counts (l_cnt) must start at zero
    blob = np.empty(wo[-1], np.int64)
    blob[:wo[WORK_EDGES[0]]] = 0
    blob[wo[WORK_EDGES[1]]:] = 0
    work = Packed(blob, wo)
    edges = open_edges(work)
    for b in range(g, nb, n_groups):
        bg = b0 + b
        _sample(tab, ent, work, inp, outs, vcd, tim, bg, b, g, bg < tim.n_timed)
    flush_static_flits(tab, work, edges.link_flits)
    tim.lflits[g, :edges.link_flits.shape[0]] = edges.link_flits


def run_threads(n_groups: int, *args) -> None:
    """:func:`_run` on ``n_groups`` threads (the kernel releases the GIL; group 0 on the
    calling thread: :func:`hwsim.engine.threads.on_threads`)."""
    on_threads(_run, n_groups, *args)
