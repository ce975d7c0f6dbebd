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
of which sits at or above threshold is not updated (nothing in it can change), and a
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
                     CNT_SPIKES, GEO_N, HSTAT_OVERRUNS, IO_FLITS, IO_FLIT_HOPS, IO_INTERCHIP_FLITS, NIO, NREC, NTC,
                     REC_ACC, REC_ACS, REC_CYCLES, REC_ENT, REC_EVENTS, REC_MACS, REC_N, REC_TILE, TC_ACS, TC_CYCLES,
                     TC_EVENTS, TC_MACS, WORK_EDGES, Packed, open_edges, open_groups, open_input_io,
                     open_neurons, open_pops, open_projs, open_scalars, open_state, open_tile_counts, open_tiles)
from .bitops import lowest_bit
from .timing import step_timing
from .timing_spikes import flush_static_flits
from ..jitflags import loop_jit
from .threads import on_threads

__all__ = ["run_threads"]

_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
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
        # current (rshift_round by sh, hb = 0 when sh = 0) and update, one branch-free pass
        # (unsigned indices: no wraparound checks, so it vectorises)
        nhot = np.int64(0)
        for u in range(np.uint64(npop)):
            vv = min(max(pv[u] + pb[u] + ((ps[u] + hb) >> sh), lo), hi)
            th = pt[u]
            z = np.int64(vv >= th)
            vv -= z * th
            pv[u] = vv
            po[u] = z
            nhot += np.int64(vv >= th)
        # the spikes as masks, in words of 64 slots: bit i of word w says whether slot 64 w + i spiked
        nw = (npop + 63) >> 6
        bm = state.bits
        for w in range(nw):
            s0 = np.uint64(w << 6)
            m = np.int64(0)
            for i in range(np.uint64(min(64, npop - (w << 6)))):
                m |= po[s0 + i] << i
            bm[w] = m
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
        if projs.fed_by_input[q] == 0:
            pa[:] = 0
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


@njit(cache=True, inline="always")
def _add_tile_counts(tcnt, kk, nev, cyc, ac, mac):
    """Add a run of ``nev`` events of tile ``kk`` to its step counts."""
    tcnt.t_nev[kk] += nev
    tcnt.t_cyc[kk] += cyc
    tcnt.t_ac[kk] += ac
    tcnt.t_mac[kk] += mac


@njit(cache=True, inline="always")
def _add_run(acc, ua, ent_w, uw, n, xv):
    """``acc[ua + u] += ent_w[uw + u] * xv`` for ``u < n`` (unsigned indices: no
    wraparound checks, so the loop vectorises; a binary spike adds the weights)."""
    if xv == 1:
        for u in range(n):
            acc[ua + u] += ent_w[uw + u]
    else:
        for u in range(n):
            acc[ua + u] += ent_w[uw + u] * xv


@njit(cache=True, inline="always")
def _tap_pos(b, kw, sw):
    """Position of tap ``b`` in a kernel row as stored (:meth:`hwsim.conv_rows.ConvRows.kernel`):
    taps grouped by ``b mod s_w`` (residue 0 first), descending ``b`` within a group."""
    r = b % sw
    off = 0
    for rr in range(r):
        off += (kw - rr + sw - 1) // sw
    return off + (kw - r + sw - 1) // sw - 1 - b // sw


@njit(cache=True, inline="always")
def _conv_event(geo, gi, ent_w, acc, i, xv):
    """One event of value ``xv`` on pre ``i = (c, y, x)`` of geometric convolution ``gi``
    (:func:`hwsim.engine.build._geo_events`): for every tap ``(a, b)`` with
    ``y + p_h - d_h a = s_h i'`` and ``x + p_w - d_w b = s_w j'`` for an output ``(i', j')``
    inside ``H' x W'``, ``acc[a0 + (i' W' + j') C_out + o] += w[o, c, a, b] * xv`` over the
    outputs ``o`` of ``c``'s group (weights at ``w0 + ((c kh + a) kw + pos(b)) cout_g``,
    :func:`_tap_pos`). With ``d_w = 1`` and one group, the taps of a kernel row that reach
    an output are ``b = r + s_w q`` (``r = (x + p_w) mod s_w``) for a range of ``q``, reaching
    ``j' = (x + p_w - r) / s_w - q``: consecutive outputs whose weights are stored
    consecutively, so one run of ``taps x C_out`` instead of one per tap, read from the
    convolution's run tables (:func:`hwsim.engine.build._conv_runs`: per column ``x`` the
    run's first output, taps and first weight; per row ``y`` and kernel row ``a`` the output
    row), so an event divides only to split ``i``. A dense
    projection (``kh = 0``, :mod:`hwsim.dense_rows`) adds row ``k(i)`` of ``W^T``."""
    b = GEO_N * gi
    H, W, C_out, OH, OW = geo[b + 1], geo[b + 2], geo[b + 3], geo[b + 4], geo[b + 5]
    kh, kw, sh, sw, ph, pw, dh, dw = (geo[b + 6], geo[b + 7], geo[b + 8], geo[b + 9], geo[b + 10], geo[b + 11],
                                      geo[b + 12], geo[b + 13])
    cin_g, cout_g, a0, w0 = geo[b + 14], geo[b + 15], geo[b + 16], geo[b + 17]
    if kh == 0:  # a dense projection (hwsim.dense_rows): acc[a0 + o] += W^T[k(i), o] * xv, k(i) at geo[W + i]
        k = geo[W + i]
        if k >= 0:
            _add_run(acc, np.uint64(a0), ent_w, np.uint64(w0 + k * C_out), np.uint64(C_out), xv)
        return
    c = i // (H * W)
    rem = i - c * (H * W)
    y = rem // W
    x = rem - y * W
    ab = a0 + (c // cin_g) * cout_g
    rt = geo[b + 18]
    if rt >= 0:  # the run tables (build._conv_runs): one run per kernel row, no more divisions
        nt = geo[rt + 3 * x + 1]
        if nt <= 0:
            return
        ln = np.uint64(nt * C_out)
        aj = ab + geo[rt + 3 * x] * C_out
        wc = w0 + c * kh * kw * cout_g + geo[rt + 3 * x + 2] * cout_g
        yr = rt + 3 * W + y * kh
        for a in range(kh):
            oi = geo[yr + a]
            if oi >= 0:
                _add_run(acc, np.uint64(aj + oi * OW * C_out), ent_w, np.uint64(wc + a * kw * cout_g), ln, xv)
        return
    n = np.uint64(cout_g)
    for a in range(kh):  # one run of C_out / groups outputs per tap
        ty = y + ph - dh * a
        if ty < 0:
            break  # falls with a
        oi = ty // sh
        if ty - oi * sh != 0 or oi >= OH:
            continue
        wr = w0 + (c * kh + a) * kw * cout_g  # the kernel row's first weight
        for bb in range(kw):
            tx = x + pw - dw * bb
            if tx < 0:
                break
            oj = tx // sw
            if tx - oj * sw != 0 or oj >= OW:
                continue
            _add_run(acc, np.uint64(ab + (oi * OW + oj) * C_out), ent_w,
                     np.uint64(wr + _tap_pos(bb, kw, sw) * cout_g), n, xv)


@njit(cache=True, inline="always")
def _events(pops, grps, state, tcnt, ent, p, t, inputs):
    """Step ``t``'s crossbar events of population ``p`` from the graph input's groups
    (``inputs``) or from the other groups: every nonzero source value ``x`` of a group's
    source slot at ``t - delay`` reads the source's rows, ``acc[a] += w * x`` over each
    row's entries (spans as contiguous slices; ``x == 1``, a binary spike, adds ``w``),
    and adds the rows' per-tile counts (events, integrate cycles, AC, MAC) to the step's
    tile counts; a short-row group reads one fixed-length row per event instead
    (:func:`hwsim.engine.build._compact_rows`); a geometric projection's group scatters
    each event from the geometry (:func:`_conv_event`) and its rows add their counts only
    (one int64 per row: tile, integrate cycles, MAC flag, entries).
    Returns the number of rows read."""
    ent_acc, ent_w = ent  # crossbar entries: accumulator slot and weight
    n_rows = np.int64(0)
    k_run = -1  # the tile of the current run of rows, and its counts so far
    s_nev = np.int64(0)
    s_cyc = np.int64(0)
    s_ac = np.int64(0)
    s_mac = np.int64(0)
    for gg in range(grps.ptr[p], grps.ptr[p + 1]):
        s = grps.src[gg]
        if (s == 0) != inputs:
            continue
        d = grps.delay[gg]
        if t < d:
            continue
        sl = (t - d) % pops.ring[s]
        base = pops.ring_off[s] + sl * pops.size[s]
        nn = state.nzc[pops.slot_off[s] + sl]
        pp = grps.pre_off[gg]
        gi = grps.geo_of[gg]
        co = grps.cr_off[gg]
        if gi >= 0 and co < 0:  # scattered from the geometry; each row's counts packed in one int64 (build._geo_rows)
            for j in range(nn):
                i = state.nz[base + j]
                _conv_event(grps.geo, gi, ent_w, state.acc, i, state.nzv[base + j])
                for r in range(grps.grec_ptr[pp + i], grps.grec_ptr[pp + i + 1]):
                    v = grps.grec[r]
                    n = v & 0x7FFF
                    mac = (v >> 15) & 1
                    _add_tile_counts(tcnt, v >> 32, 1, (v >> 16) & 0xFFFF, n * (1 - mac), n * mac)
                    n_rows += 1
        if co >= 0:  # a short-row group: one fixed-length row per event (_compact_rows)
            if nn == 0:
                continue
            R = np.uint64(grps.cr_r[gg])
            na = np.uint64(grps.cr_na[gg])
            for j in range(nn):
                xv = state.nzv[base + j]
                b = np.uint64(co) + np.uint64(state.nz[base + j]) * R
                if xv == 1:
                    for u in range(R):
                        state.cr_loc[u] += grps.cr[b + u]
                else:
                    for u in range(na):
                        state.cr_loc[u] += grps.cr[b + u] * xv
                    for u in range(na, R):
                        state.cr_loc[u] += grps.cr[b + u]
            a0 = grps.cr_a0[gg]
            for u in range(na):
                state.acc[a0 + u] += state.cr_loc[u]
                state.cr_loc[u] = 0
            t0 = grps.cr_tptr[gg]
            for k in range(t0, grps.cr_tptr[gg + 1]):
                c = na + np.uint64(NTC * (k - t0))
                _add_tile_counts(tcnt, grps.cr_tiles[k], state.cr_loc[c + TC_EVENTS], state.cr_loc[c + TC_CYCLES],
                                 state.cr_loc[c + TC_ACS], state.cr_loc[c + TC_MACS])
                n_rows += state.cr_loc[c + TC_EVENTS]
                for u in range(NTC):
                    state.cr_loc[c + u] = 0
            continue
        for j in range(nn):
            i = state.nz[base + j]
            xv = state.nzv[base + j]
            x32 = _I32_MIN <= xv <= _I32_MAX
            xs = np.int32(xv) if x32 else np.int32(0)
            for k in range(grps.rec_ptr[pp + i], grps.rec_ptr[pp + i + 1]):
                b = np.uint64(NREC * k)  # record: layout.REC_FIELDS
                n = grps.rec[b + REC_N]
                if n >= 0:  # a span: n consecutive accumulators
                    # unsigned indices: no negative-index wraparound, so the loop vectorises
                    ua = np.uint64(grps.rec[b + REC_ACC])
                    ue = np.uint64(grps.rec[b + REC_ENT])
                    if xv == 1:  # a binary spike: add the weights (no 64-bit multiply)
                        for u in range(np.uint64(n)):
                            state.acc[ua + u] += ent_w[ue + u]
                    elif x32:  # both factors sign-extended from 32 bits: a 32 x 32 -> 64-bit multiply
                        for u in range(np.uint64(n)):
                            state.acc[ua + u] += ent_w[ue + u] * xs
                    else:
                        for u in range(np.uint64(n)):
                            state.acc[ua + u] += ent_w[ue + u] * xv
                else:  # a scattered row: -n entries from ent
                    e0 = grps.rec[b + REC_ENT]
                    if xv == 1:
                        for e in range(e0, e0 - n):
                            state.acc[ent_acc[e]] += ent_w[e]
                    else:
                        for e in range(e0, e0 - n):
                            state.acc[ent_acc[e]] += ent_w[e] * xv
                # the tile's counts, in registers while the records stay on one tile
                kk = grps.rec[b + REC_TILE]
                if kk != k_run:
                    if k_run >= 0:
                        _add_tile_counts(tcnt, k_run, s_nev, s_cyc, s_ac, s_mac)
                        n_rows += s_nev
                    k_run = kk
                    s_nev = 0
                    s_cyc = 0
                    s_ac = 0
                    s_mac = 0
                s_nev += grps.rec[b + REC_EVENTS]
                s_ac += grps.rec[b + REC_ACS]
                s_mac += grps.rec[b + REC_MACS]
                s_cyc += grps.rec[b + REC_CYCLES]
    if k_run >= 0:
        _add_tile_counts(tcnt, k_run, s_nev, s_cyc, s_ac, s_mac)
        n_rows += s_nev
    return n_rows


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
                        state.acc[a0:a0 + projs.npost[q]] = 0  # a slice: a memset (an indexed loop is not)
            # events: input groups first (their counts are cached), then the rest
            n_rows = 0
            has_in = False  # input groups (none: in_zero[p] stays 1, and no phase-0 call)
            for gg in range(grps.ptr[p], grps.ptr[p + 1]):
                has_in |= grps.src[gg] == 0
            for phase in range(2):
                if phase == 0 and (reuse or not has_in):
                    continue
                n_rows += _events(pops, grps, state, tcnt, ent, p, t, phase == 0)
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
