"""The event-driven chip simulator (Numba): :func:`simulate`.

Semantics (sync mode) are those of :mod:`models.intref` exactly: within a step the
populations are evaluated in net order; a population's tiles process their input
events (an event = a nonzero source value on an axon row: the row's stored weights are
read and multiplied into per-(projection, post) accumulators, one AC per weight for a
spike source, one MAC for a real-valued graph input), every partial-sum tile of a
projection adds into the same accumulator, each projection's sum is shifted by its
``acc_shift`` (``rshift_round``) and the neurons update per the integer contract.

Counters (per core and step, summed over samples; :data:`COUNTERS`): input events,
ACs, MACs, neuron updates, spikes out, state words (neuron updates, x2 for CubaLIF),
partial-sum ops (a partial tile that received at least one event adds its ``n_cols``
partial sums into its soma; counted on the soma's core), packets, flits and flit-hops
(spike packets: one per spiking neuron with remote destinations, per destination core
with ``multicast="unicast"``; with binary events a multi-spike count sends one packet
per spike; partial-sum packets ``n_cols * ceil(membrane_bits / flit_bits)`` flits, as
``mapper.map_model`` counts traffic), busy cycles
(integrate + fire cycles). Weight bits and state bits are derived in :class:`RunResult`.

Timing (sync mode, :func:`_timing`): per core and step, integrate cycles = sum over its
events of ``ceil(used columns of the row / pe_width) + event_overhead_cycles``, fire
cycles = sum over its soma tiles of ``ceil(n_cols / pe_width)``. Layer-serial: a
population's cores start integrating when every delay-0 source population is done (its
spikes delivered); partial sums are injected when the partial tile's core finished
integrating, the soma fires when its own integration is done and all partial sums have
arrived; spike packets are injected at the end of the fire phase and simulated with
:func:`hwsim.noc.simulate_noc` (one call per population and phase; populations do not
overlap in sync mode). The step ends at the last completion + ``barrier_cycles``; a
fixed ``step_cycles`` pads the step (``max(busy, step_cycles)``) and counts overruns.
Sync: ``total_cycles`` = ``latency_cycles`` = the sum of the steps, throughput =
``clock_hz / total_cycles`` inferences/s (no overlap between inferences).

Pipelined mode (``chip.timing.mode == "pipelined"`` or ``simulate(..., mode=...)``).
Functional: every projection not from the graph input delivers the source's output of
one step earlier than declared (delay ``d`` -> ``d + 1``, bias terms start one step
later; see :mod:`hwsim.program`), i.e. exactly ``models.intref.simulate_int`` on the
net so transformed. Timing (:func:`_timing_pipelined`), per step: every core starts at
cycle 0 and integrates the events of the step (all sources' outputs of earlier
steps, delivered during the previous step), its cycles summed over all its tiles
(every population); a partial tile's psum packet is injected when its core's
integration ends; a core fires (sum of its soma tiles' fire cycles) at
``max(end of integration, last psum arrival)``; every spike of the step is injected
when its core's fire phase ends and must be delivered within the step (the next step
consumes it). Partial sums and spikes are two NoC simulations per step (they do not
contend with each other). Step = ``max(last fire end, last delivery)`` (+ fixed-step
padding) + ``barrier_cycles``. With ``cycles_per_step`` = mean step cycles of the
sample and ``depth`` = :func:`pipeline_depth` (delayed projections on the longest
declared-delay-0 chain from the input to the output population):
``throughput_inf_s = clock_hz / (cycles_per_step * T)`` and
``latency_cycles = (T + depth) * cycles_per_step`` (the output of the last input step
appears ``depth`` steps later; append ``depth`` empty steps to see it).

Inter-chip latency: after each NoC simulation, every destination's delivery is
delayed by ``crossings * max(0, noc.interchip_cycles - router_cycles - link_cycles)``
(``crossings`` = chip boundaries on its XY path). This is applied after the
contention simulation, so it does not change the link order downstream
(an approximation; :mod:`hwsim.noc` itself treats every link alike).

New counters: ``interchip_flits`` (flits x chip-boundary crossings of spike and
partial-sum packets, and of input events from the I/O port, which belongs to chip
(0, 0)); ``io_in_flits`` / ``io_in_flit_hops``: input events entering through the
I/O port at global (-1, 0) (one packet per destination core with unicast, one
xy-tree packet otherwise; one flit per spike for a spiking input with binary events,
``ceil(input_bits / flit_bits)`` flits per value for a real-valued input; hops from
the port, the injection link included), counted on the event's lowest-numbered
destination core; ``io_out_flits``: outputs of the output population leaving the chip
(one flit per spike with binary events, one per nonzero value otherwise;
``ceil(membrane_bits / flit_bits)`` for a non-spiking output), on the neuron's core;
the route to the port is not modelled. I/O traffic is not part of the NoC timing.

Traces (:mod:`hwsim.traces`): AER ``.npz``, VCD and Chrome trace JSON, off by default.

Implementation (results identical to the plain step-by-step loop): the kernel is
event-driven (per step it lists each population's nonzero outputs once and touches
only the crossbar rows those sources drive, via a CSR source neuron -> rows built by
:func:`_event_index`); when the input frames an input-fed population reads are the
same as at the previous step of the sample, the input projections' sums are kept and
their per-tile event / AC / MAC / cycle counts re-added (the chip still performs, and
the counters still count, every MAC each step); neuron updates and state words are
added arithmetically; the NoC timing calls after the first (validated) one run the
same routing and arbitration in one compiled call (:func:`_noc_fast`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from models.errors import SimulationError
from models.intref import _InputEncoder, encode_input  # noqa: F401
from models.reference import _check_options

from .noc import _build_routes as _noc_build_routes, _run as _noc_run
from .program import Program, ProgramError, compile as compile_program  # noqa: F401
from .result import RunResult

COUNTERS = ("events", "acs", "macs", "neuron_updates", "spikes", "state_words", "psum_ops",
            "packets", "flits", "flit_hops", "busy_cycles", "interchip_flits", "io_in_flits",
            "io_in_flit_hops", "io_out_flits")
(_EV, _AC, _MAC, _NU, _SP, _SW, _PS, _PK, _FL, _FH, _BUSY, _ICX, _IOI, _IOH, _IOO) = range(len(COUNTERS))
_CHUNK = 64  # samples per kernel call (bounds memory of encoded inputs and recordings)


# ------------------------------------------------------------------------ njit helpers

@njit(cache=True, inline="always")
def rshift_round_nb(x, k):
    """``models.intref.rshift_round`` for one int64."""
    if k == 0:
        return x
    return (x + (np.int64(1) << (k - 1))) >> k


@njit(cache=True, inline="always")
def saturate_nb(x, lo, hi):
    """``models.intref.saturate`` for one int64 with precomputed bounds."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


# ------------------------------------------------------------------------ the kernel

@njit(cache=True, parallel=True)
def _run(enc, n_groups, pop_model, pop_size, pop_off, pop_ring, ring_off, pop_proj_ptr, proj_order,
         pop_tile_ptr, tile_order, pop_bt_ptr, bt_start, bt_off, bt_vec,
         nrn_core, nrn_bias, nrn_thr, nrn_vreset, nrn_alpha, nrn_asyn, nrn_vleak, nrn_pk, nrn_hops,
         proj_shift, proj_acc_off, proj_npost, n_acc,
         tile_core, tile_kind, tile_soma, tile_ncols, tile_psum_flits, tile_psum_hops,
         row_mac, row_ncols, row_ptr, ent_acc, ent_w,
         slot_off, grp_ptr, grp_src, grp_delay, grp_pre_off, pre_ptr, grp_rows, row_tile, proj_in,
         pop_reuse,
         M, F, pe, overhead, payload, reset_sub, multi, out_pop,
         rec_off, rec_s, rec_v, out, cnt, n_timed, tile_cyc, all_out,
         nrn_icx, tile_psum_icx, in_dst_ptr, in_dst_core, in_pk, in_hops, in_icx, in_flits, in_mult,
         out_val_flits, vcd_b, vcd_slot, vcd_s, vcd_v):
    """Event-driven kernel: per step and population, only the crossbar rows driven by a
    nonzero source value are touched (``grp_*`` / ``pre_ptr`` / ``grp_rows``: rows of a
    population grouped by (source, delay), CSR over the source's neurons); the nonzero
    entries of each ring slot are listed once when written (``nz``, ``nzc``).
    ``pop_reuse[p]``: population p's input-fed accumulators (``proj_in``) may be kept
    from the previous step when the input frames they read are unchanged (their
    per-tile event counts are then re-added from the cache)."""
    T, B = enc.shape[0], enc.shape[1]
    P = pop_size.shape[0]
    N = nrn_core.shape[0]
    K = tile_core.shape[0]
    lo = -(np.int64(1) << (M - 1))
    hi = (np.int64(1) << (M - 1)) - 1
    ring_total = 0
    for p in range(P):
        ring_total += pop_ring[p] * pop_size[p]
    n_in = pop_size[0]
    for g in prange(n_groups):
        ring = np.zeros(ring_total, np.int64)
        nz = np.zeros(max(ring_total, 1), np.int64)
        nzc = np.zeros(slot_off[P], np.int64)
        acc = np.zeros(max(n_acc, 1), np.int64)
        v = np.zeros(N, np.int64)
        isyn = np.zeros(N, np.int64)
        t_nev = np.zeros(max(K, 1), np.int64)
        t_cyc = np.zeros(max(K, 1), np.int64)
        t_ac = np.zeros(max(K, 1), np.int64)
        t_mac = np.zeros(max(K, 1), np.int64)
        c_nev = np.zeros(max(K, 1), np.int64)   # cached input-group counts per tile
        c_cyc = np.zeros(max(K, 1), np.int64)
        c_ac = np.zeros(max(K, 1), np.int64)
        c_mac = np.zeros(max(K, 1), np.int64)
        same = np.zeros(T, np.bool_)
        Ib = np.zeros(max(int(pop_size.max()), 1), np.int64)
        for b in range(g, B, n_groups):
            ring[:] = 0
            nzc[:] = 0
            acc[:] = 0
            v[:] = 0
            isyn[:] = 0
            for t in range(T):
                base0 = ring_off[0] + (t % pop_ring[0]) * n_in
                s0 = slot_off[0] + t % pop_ring[0]
                nn0 = 0
                eq = t > 0
                for i in range(n_in):
                    xi = enc[t, b, i]
                    ring[base0 + i] = xi
                    if t > 0 and xi != enc[t - 1, b, i]:
                        eq = False
                    if xi != 0:
                        nz[base0 + nn0] = i
                        nn0 += 1
                        if in_dst_ptr[i + 1] > in_dst_ptr[i]:
                            ci = in_dst_core[in_dst_ptr[i]]
                            fm = in_flits * (xi if in_mult else 1)
                            cnt[g, t, ci, 12] += in_pk[i] * fm
                            cnt[g, t, ci, 13] += in_hops[i] * fm
                            cnt[g, t, ci, 11] += in_icx[i] * fm
                nzc[s0] = nn0
                same[t] = eq
                if b < n_timed:
                    for i in range(n_in):
                        all_out[b, t, i] = enc[t, b, i]
                for p in range(1, P):
                    k0 = pop_tile_ptr[p]
                    k1 = pop_tile_ptr[p + 1]
                    for ti in range(k0, k1):
                        k = tile_order[ti]
                        t_nev[k] = 0
                        t_cyc[k] = 0
                        t_ac[k] = 0
                        t_mac[k] = 0
                    # may the input-fed accumulators of the previous step be kept?
                    reuse = pop_reuse[p] and t > 0
                    if reuse:
                        for gg in range(grp_ptr[p], grp_ptr[p + 1]):
                            if grp_src[gg] == 0:
                                d = grp_delay[gg]
                                if t >= d and not (t - 1 >= d and same[t - d]):
                                    reuse = False
                    if reuse:
                        for ti in range(k0, k1):
                            k = tile_order[ti]
                            t_nev[k] += c_nev[k]
                            t_cyc[k] += c_cyc[k]
                            t_ac[k] += c_ac[k]
                            t_mac[k] += c_mac[k]
                    else:
                        for qi in range(pop_proj_ptr[p], pop_proj_ptr[p + 1]):
                            q = proj_order[qi]
                            if proj_in[q]:
                                a0 = proj_acc_off[q]
                                for n in range(proj_npost[q]):
                                    acc[a0 + n] = 0
                    # events: input groups first (their counts are cached), then the rest
                    for phase in range(2):
                        if phase == 0 and reuse:
                            continue
                        for gg in range(grp_ptr[p], grp_ptr[p + 1]):
                            s = grp_src[gg]
                            if (s == 0) != (phase == 0):
                                continue
                            d = grp_delay[gg]
                            if t < d:
                                continue
                            sl = (t - d) % pop_ring[s]
                            base = ring_off[s] + sl * pop_size[s]
                            nn = nzc[slot_off[s] + sl]
                            pp = grp_pre_off[gg]
                            for j in range(nn):
                                i = nz[base + j]
                                x = ring[base + i]
                                for rr in range(pre_ptr[pp + i], pre_ptr[pp + i + 1]):
                                    r = grp_rows[rr]
                                    k = row_tile[r]
                                    e0 = row_ptr[r]
                                    e1 = row_ptr[r + 1]
                                    for e in range(e0, e1):
                                        acc[ent_acc[e]] += ent_w[e] * x
                                    t_nev[k] += 1
                                    if row_mac[r] != 0:
                                        t_mac[k] += e1 - e0
                                    else:
                                        t_ac[k] += e1 - e0
                                    t_cyc[k] += (row_ncols[r] + pe - 1) // pe + overhead
                        if phase == 0 and pop_reuse[p]:
                            for ti in range(k0, k1):
                                k = tile_order[ti]
                                c_nev[k] = t_nev[k]
                                c_cyc[k] = t_cyc[k]
                                c_ac[k] = t_ac[k]
                                c_mac[k] = t_mac[k]
                    for ti in range(k0, k1):
                        k = tile_order[ti]
                        c = tile_core[k]
                        cyc = t_cyc[k]
                        nev = t_nev[k]
                        cnt[g, t, c, 0] += nev
                        cnt[g, t, c, 1] += t_ac[k]
                        cnt[g, t, c, 2] += t_mac[k]
                        if tile_kind[k] == 0:
                            fire = (tile_ncols[k] + pe - 1) // pe
                            cnt[g, t, c, 10] += cyc + fire
                        else:
                            cnt[g, t, c, 10] += cyc
                            if nev > 0:
                                cs = tile_core[tile_soma[k]]
                                cnt[g, t, cs, 6] += tile_ncols[k]
                                if tile_psum_flits[k] > 0:
                                    cnt[g, t, c, 7] += 1
                                    cnt[g, t, c, 8] += tile_psum_flits[k]
                                    cnt[g, t, c, 9] += tile_psum_flits[k] * tile_psum_hops[k]
                                    cnt[g, t, c, 11] += tile_psum_flits[k] * tile_psum_icx[k]
                        if b < n_timed:
                            tile_cyc[b, t, k] = cyc if nev > 0 else -1
                    # neurons (neuron_updates / state_words are added by the caller)
                    model = pop_model[p]
                    off = pop_off[p]
                    wbase = ring_off[p] + (t % pop_ring[p]) * pop_size[p]
                    ws = slot_off[p] + t % pop_ring[p]
                    nnw = 0
                    ro = rec_off[p]
                    npop = pop_size[p]
                    # input currents of the whole population (one pass per projection)
                    for n in range(npop):
                        Ib[n] = nrn_bias[off + n]
                    for qi in range(pop_proj_ptr[p], pop_proj_ptr[p + 1]):
                        q = proj_order[qi]
                        a0 = proj_acc_off[q]
                        sh = proj_shift[q]
                        if sh == 0:
                            for n in range(npop):
                                Ib[n] += acc[a0 + n]
                        else:
                            hb = np.int64(1) << (sh - 1)
                            for n in range(npop):
                                Ib[n] += (acc[a0 + n] + hb) >> sh
                        if not proj_in[q]:
                            for n in range(npop):
                                acc[a0 + n] = 0
                    for bi in range(pop_bt_ptr[p], pop_bt_ptr[p + 1]):
                        if t >= bt_start[bi]:
                            bo = bt_off[bi]
                            for n in range(npop):
                                Ib[n] += bt_vec[bo + n]
                    for n in range(npop):
                        gi = off + n
                        I = Ib[n]
                        z = np.int64(0)
                        o = np.int64(0)
                        if model == 5:  # Threshold
                            z = np.int64(1) if I >= nrn_thr[gi] else np.int64(0)
                            o = z
                        elif model == 6:  # Identity
                            v[gi] = saturate_nb(I, lo, hi)
                            o = v[gi]
                        else:
                            vv = v[gi]
                            if model == 0 or model == 1:
                                vv = vv + I
                            elif model == 2 or model == 3:
                                vv = vv + I + rshift_round_nb(nrn_alpha[gi] * (nrn_vleak[gi] - vv), F)
                            else:  # CubaLIF
                                ii = isyn[gi]
                                ii = saturate_nb(ii + I + rshift_round_nb(-nrn_asyn[gi] * ii, F), lo, hi)
                                isyn[gi] = ii
                                vv = vv + ii + rshift_round_nb(nrn_alpha[gi] * (nrn_vleak[gi] - vv), F)
                            vv = saturate_nb(vv, lo, hi)
                            if model == 1 or model == 3:
                                o = vv
                            else:
                                th = nrn_thr[gi]
                                if vv >= th:
                                    if multi:
                                        z = vv // th
                                    else:
                                        z = np.int64(1)
                                    if reset_sub:
                                        vv = vv - z * th
                                    else:
                                        vv = nrn_vreset[gi]
                                o = z
                            v[gi] = vv
                        ring[wbase + n] = o
                        if o != 0:
                            nz[wbase + nnw] = n
                            nnw += 1
                            c = nrn_core[gi]
                            if model == 0 or model == 2 or model == 4 or model == 5:
                                cnt[g, t, c, 4] += o
                            mult = o if (payload == 0 and (model == 0 or model == 2 or model == 4)) else 1
                            cnt[g, t, c, 7] += nrn_pk[gi] * mult
                            cnt[g, t, c, 8] += nrn_pk[gi] * mult
                            cnt[g, t, c, 9] += nrn_hops[gi] * mult
                            cnt[g, t, c, 11] += nrn_icx[gi] * mult
                            if p == out_pop:
                                if model == 1 or model == 3 or model == 6:
                                    cnt[g, t, c, 14] += out_val_flits
                                else:
                                    cnt[g, t, c, 14] += o if payload == 0 else 1
                        if b == vcd_b and vcd_slot[gi] >= 0:
                            vcd_s[t, vcd_slot[gi]] = o
                            vcd_v[t, vcd_slot[gi]] = v[gi]
                        if ro >= 0:
                            rec_s[t, b, ro + n] = o
                            rec_v[t, b, ro + n] = v[gi]
                        if p == out_pop:
                            out[t, b, n] = o
                        if b < n_timed:
                            all_out[b, t, gi] = o
                    nzc[ws] = nnw


def _event_index(prog: Program):
    """Rows of each population grouped by (source, delay) with a CSR over the source's
    neurons: (slot_off, grp_ptr, grp_src, grp_delay, grp_pre_off, pre_ptr, grp_rows,
    row_tile, proj_in, pop_reuse) for :func:`_run`."""
    P = prog.n_pops
    R = prog.row_src.size
    row_tile = np.zeros(R, np.int64)
    row_pop = np.zeros(R, np.int64)
    for k in range(prog.n_tiles):
        lo_, hi_ = int(prog.tile_row_ptr[k, 0]), int(prog.tile_row_ptr[k, 1])
        row_tile[lo_:hi_] = k
        row_pop[lo_:hi_] = prog.tile_pop[k]
    slot_off = np.concatenate([[0], np.cumsum(prog.pop_ring)]).astype(np.int64)
    # group key (pop, src, delay)
    D = int(prog.pop_ring.max(initial=1)) + 1
    key = (row_pop * P + prog.row_src) * D + prog.row_delay
    ukeys, ginv = np.unique(key, return_inverse=True)
    g_pop = ukeys // (P * D)
    g_src = (ukeys // D) % P
    g_delay = ukeys % D
    grp_ptr = np.searchsorted(g_pop, np.arange(P + 1)).astype(np.int64)
    sizes = prog.pop_size[g_src]
    grp_pre_off = np.concatenate([[0], np.cumsum(sizes + 1)])[:-1].astype(np.int64)
    order = np.lexsort((np.arange(R), prog.row_pre, ginv))
    pos = grp_pre_off[ginv] + prog.row_pre  # slot in the per-group CSR
    counts = np.bincount(pos, minlength=int((sizes + 1).sum()))
    pre_ptr = np.zeros(int((sizes + 1).sum()) + 1, np.int64)
    # ptr over the concatenated per-group arrays: pre_ptr[grp_pre_off[g] + i] = start of (g, i)
    pre_ptr[1:] = np.cumsum(counts)
    grp_rows = order.astype(np.int64)
    proj_in = (prog.proj_src == 0).astype(np.int64)
    # reuse: only when every input projection of the population is fed by rows from the
    # input only (always true: a projection has one source) and no partial aliasing
    pop_reuse = np.zeros(P, np.int64)
    for p in range(1, P):
        gs = range(int(grp_ptr[p]), int(grp_ptr[p + 1]))
        if any(g_src[g] == 0 for g in gs):
            pop_reuse[p] = 1
    return (slot_off, grp_ptr, g_src.astype(np.int64), g_delay.astype(np.int64), grp_pre_off, pre_ptr,
            grp_rows, row_tile, proj_in, pop_reuse)


# ------------------------------------------------------------------------ timing


@njit(cache=True)
def _noc_fast(t0, fl, src, ptr, dst, gw, gh, tree, R, W):
    """The body of :func:`hwsim.noc.simulate_noc` (same routes, same link arbitration)
    without validation: (delivery cycle, latency) per (packet, destination)."""
    n = t0.size
    D = dst.shape[0]
    if ptr[n] != D:
        raise ValueError("timing: internal packet list inconsistent")
    for p in range(n):
        if fl[p] < 1 or t0[p] < 0 or ptr[p + 1] - ptr[p] < 1:
            raise ValueError("timing: internal packet list inconsistent")
    owner = np.empty(D, np.int64)
    bound = np.zeros(n, np.int64)
    for p in range(n):
        for k in range(ptr[p], ptr[p + 1]):
            owner[k] = p
            bound[p] += abs(dst[k, 0] - src[p, 0]) + abs(dst[k, 1] - src[p, 1])
    edge_off = np.zeros(n + 1, np.int64)
    for p in range(n):
        edge_off[p + 1] = edge_off[p] + bound[p]
    E = edge_off[n]
    edge_link = np.zeros(E, np.int64)
    edge_parent = np.full(E, -1, np.int64)
    edge_packet = np.zeros(E, np.int64)
    edge_count = np.zeros(n, np.int64)
    dst_edge = np.full(D, -1, np.int64)
    _noc_build_routes(src, ptr, dst, edge_off, gw, gh, tree,
                      edge_link, edge_parent, edge_packet, edge_count, dst_edge)
    edge_valid = np.zeros(E, np.bool_)
    for p in range(n):
        for e in range(edge_off[p], edge_off[p + 1]):
            edge_valid[e] = (e - edge_off[p]) < edge_count[p]
    edge_start = np.full(E, -1, np.int64)
    link_flits = np.zeros(gw * gh * 4, np.int64)
    _noc_run(t0, fl, edge_valid, edge_link, edge_parent, edge_packet, R, W,
             gw * gh * 4, edge_start, link_flits)
    delivery = np.empty(D, np.int64)
    lat = np.empty(D, np.int64)
    for k in range(D):
        p = owner[k]
        L = fl[p]
        if dst_edge[k] >= 0:
            delivery[k] = edge_start[dst_edge[k]] + W + L - 1
        else:
            delivery[k] = t0[p] + L - 1
        lat[k] = delivery[k] - t0[p]
    return delivery, lat


class _Noc:
    """Runs :func:`hwsim.noc.simulate_noc` for the timing models, adds the inter-chip
    latency and collects packet latencies (see the module docstring)."""

    def __init__(self, prog: Program):
        chip = prog.chip
        self.prog = prog
        self.R, self.W = int(chip.noc.router_cycles), int(chip.noc.link_cycles)
        self.mc = chip.noc.multicast
        self.extra = max(0, int(chip.noc.interchip_cycles) - self.R - self.W)
        self.lat = []
        self._checked = False

    def __call__(self, inject, src_cores, dptr, dcores, flits):
        """Delivery cycle per (packet, destination). The first call goes through
        :func:`hwsim.noc.simulate_noc` (validated); later calls, whose packets are built
        the same way from the compiled program, run the same steps without the
        validation and result objects (the per-call overhead dominated timing)."""
        prog = self.prog
        if not self._checked:
            from .noc import Packets, simulate_noc

            pk = Packets.from_arrays(inject, prog.core_xy[src_cores], dptr, prog.core_xy[dcores], flits)
            res = simulate_noc(pk, prog.grid_w, prog.grid_h, self.R, self.W, multicast=self.mc)
            self._checked = True
            dl = res.delivery_cycle
            lat = res.latency_cycles
        else:
            dl, lat = self._fast(inject, src_cores, dptr, dcores, flits)
        if self.extra:
            own = np.repeat(np.arange(len(src_cores)), np.diff(dptr))
            cross = np.abs(prog.core_chip[dcores] - prog.core_chip[np.asarray(src_cores)[own]]).sum(axis=1)
            dl = dl + cross * self.extra
            self.lat.append(dl - np.asarray(inject)[own])
        else:
            self.lat.append(lat)
        return dl

    def _fast(self, inject, src_cores, dptr, dcores, flits):
        """:func:`hwsim.noc.simulate_noc` on internally generated packets, step for step."""
        prog = self.prog
        t0 = np.ascontiguousarray(inject, dtype=np.int64).reshape(-1)
        n = t0.size
        ptr = np.ascontiguousarray(dptr, dtype=np.int64).reshape(-1)
        fl = np.asarray(flits, dtype=np.int64)
        fl = np.full(n, int(fl), np.int64) if fl.ndim == 0 else np.ascontiguousarray(fl).reshape(-1)
        src = np.ascontiguousarray(prog.core_xy[src_cores])
        dst = np.ascontiguousarray(prog.core_xy[dcores])
        return _noc_fast(t0, fl, src, ptr, dst, int(prog.grid_w), int(prog.grid_h), self.mc == "xy-tree",
                         self.R, self.W)

    def hist(self):
        lat = np.concatenate(self.lat) if self.lat else np.zeros(0, np.int64)
        return (np.bincount(lat) if lat.size else np.zeros(0, np.int64)).astype(np.int64)


def _spike_packets(prog: Program, out_bt: np.ndarray, g0: int, g1: int):
    """Spike packets of neurons ``g0:g1`` whose outputs ``out_bt[g]`` are nonzero:
    (gids, src cores, dst ptr, dst cores, flits), or None."""
    o = out_bt[g0:g1]
    gids = g0 + np.flatnonzero(o)
    gids = gids[prog.nrn_dst_ptr[gids + 1] > prog.nrn_dst_ptr[gids]]
    if not gids.size:
        return None
    ndst = prog.nrn_dst_ptr[gids + 1] - prog.nrn_dst_ptr[gids]
    dptr = np.concatenate([[0], np.cumsum(ndst)])
    dc = prog.nrn_dst_core[np.repeat(prog.nrn_dst_ptr[gids] - dptr[:-1], ndst) + np.arange(int(dptr[-1]))]
    fl = np.ones(gids.size, np.int64)
    if prog.payload_bits == 0:
        pm = prog.pop_model[np.searchsorted(prog.pop_off, gids, side="right") - 1]
        multi = (pm == 0) | (pm == 2) | (pm == 4)
        fl = np.where(multi, np.maximum(np.abs(out_bt[gids]), 1), 1)
    return gids, prog.nrn_core[gids], dptr, dc, fl


def pipeline_depth(prog: Program) -> int:
    """Pipeline stages between the graph input and the output population: the longest
    chain of (declared) delay-0 projections ending at the output, not counting
    projections from the graph input (each other projection adds one step in pipelined mode)."""
    dist = np.full(prog.n_pops, -1, np.int64)
    dist[0] = 0
    order = np.argsort(prog.proj_dst, kind="stable")
    for p in range(1, prog.n_pops):
        for j in order:
            if prog.proj_dst[j] == p and prog.proj_delay[j] == 0 and dist[prog.proj_src[j]] >= 0:
                s = prog.proj_src[j]
                dist[p] = max(dist[p], dist[s] + (1 if s != 0 else 0))
    return int(max(dist[prog.output_pop], 0))


def _finish(prog, mode, step_cycles, core_busy, noc, overruns, depth):
    chip = prog.chip
    clock = float(chip.timing.clock_hz)
    Bt, T = step_cycles.shape
    total = step_cycles.sum(axis=1)
    cps = total / float(T)
    if mode == "sync":
        latency = total.astype(np.float64)
        thr = clock / np.maximum(total, 1)
    else:
        latency = (T + depth) * cps
        thr = clock / np.maximum(cps * T, 1e-300)
    return {
        "mode": mode, "samples": int(Bt), "step_cycles": step_cycles, "core_busy_cycles": core_busy,
        "total_cycles": total, "cycles_per_step": cps, "pipeline_depth": np.full(Bt, depth, np.int64),
        "latency_cycles": latency if mode != "sync" else total,
        "latency_us": latency / clock * 1e6, "throughput_inf_s": thr,
        "packet_latency_hist": noc.hist(), "overruns": int(overruns),
    }


def _send_spikes(prog: Program, noc, tl, out_t: np.ndarray, lo: int, hi: int, fend: np.ndarray, t: int) -> int:
    """Inject the spikes of neurons ``lo:hi`` at their cores' fire-end cycles; returns the
    last delivery cycle (0 when nothing was sent). Shared by both timing modes."""
    sp = _spike_packets(prog, out_t, lo, hi)
    if sp is None:
        return 0
    _gids, src, dptr, dc, fl = sp
    dl = noc(fend[src], src, dptr, dc, fl)
    if tl is not None:
        tl.packets(t, "spike", src, dptr, dc, fend[src], dl, fl)
    return int(dl.max())


def _timing_setup(prog: Program, tile_cyc: np.ndarray):
    """What both timing modes start from: the fixed step (or None), barrier, PE width,
    sizes, zeroed step/busy arrays, the NoC model and fire cycles per tile."""
    chip = prog.chip
    fixed = chip.timing.step_cycles if chip.timing.step_cycles != "dynamic" else None
    pe = prog.pe_width
    Bt, T = tile_cyc.shape[:2]
    return (fixed, int(chip.timing.barrier_cycles), pe, Bt, T, np.zeros((Bt, T), np.int64),
            np.zeros((Bt, prog.n_cores), np.int64), _Noc(prog), (prog.tile_ncols + pe - 1) // pe)


def _timing(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None, tl_sample: int = 0) -> dict:
    """Sync-mode cycles of the timed samples (see the module docstring)."""
    fixed, barrier, pe, Bt, T, step_cycles, core_busy, noc, fire_tile = _timing_setup(prog, tile_cyc)
    C, P = prog.n_cores, prog.n_pops
    overruns = 0
    dsrc = [sorted({int(prog.proj_src[j]) for j in range(prog.proj_src.size)
                    if prog.proj_dst[j] == p and prog.proj_delay[j] == 0}) for p in range(P)]
    ptiles = [prog.tile_order[prog.pop_tile_ptr[p]:prog.pop_tile_ptr[p + 1]] for p in range(P)]

    # per population: constant tile / core sets (precomputed once)
    pinfo = [None] * P
    for p in range(1, P):
        tk = ptiles[p]
        if tk.size == 0:
            continue
        cores = prog.tile_core[tk]
        used = np.zeros(C, bool)
        used[cores] = True
        cand = tk[(prog.tile_kind[tk] == 1) & (prog.tile_psum_flits[tk] > 0)]
        soma = tk[prog.tile_kind[tk] == 0]
        fire = np.zeros(C, np.int64)
        np.add.at(fire, prog.tile_core[soma], fire_tile[soma])
        pinfo[p] = (tk, cores, used, np.flatnonzero(used), cand, prog.tile_core[cand],
                    prog.tile_core[prog.tile_soma[cand]], prog.tile_psum_flits[cand], fire)

    for b in range(Bt):
        tl = timeline if (timeline is not None and b == tl_sample) else None
        for t in range(T):
            done = np.zeros(P, np.int64)
            core_free = np.zeros(C, np.int64)
            tct = tile_cyc[b, t]
            for p in range(1, P):
                ready = max((int(done[s]) for s in dsrc[p]), default=0)
                if pinfo[p] is None:
                    continue
                tk, cores, used, used_idx, cand, c_src, c_dst, c_fl, fire = pinfo[p]
                integ = np.bincount(cores, weights=np.maximum(tct[tk], 0), minlength=C).astype(np.int64)
                start = np.where(used, np.maximum(core_free, ready), 0)
                end_int = start + integ
                # partial sums
                psum_ready = np.zeros(C, np.int64)
                if cand.size:
                    m = tct[cand] >= 0
                    if m.any():
                        src = c_src[m]
                        dst = c_dst[m]
                        fl = c_fl[m]
                        dptr = np.arange(src.size + 1)
                        dl = noc(end_int[src], src, dptr, dst, fl)
                        np.maximum.at(psum_ready, dst, dl)
                        if tl is not None:
                            tl.packets(t, "psum", src, dptr, dst, end_int[src], dl, fl)
                fstart = np.maximum(end_int, psum_ready)
                fend = fstart + fire
                core_busy[b] += integ + fire
                core_free = np.where(used, fend, core_free)
                fin = int(fend[used_idx].max(initial=ready))
                if tl is not None:
                    for c in used_idx:
                        tl.phase(c, t, "integrate", start[c], end_int[c])
                        tl.phase(c, t, "psum wait", end_int[c], fstart[c])
                        tl.phase(c, t, "fire", fstart[c], fend[c])
                # spikes
                fin = max(fin, _send_spikes(prog, noc, tl, all_out[b, t], int(prog.pop_off[p]),
                                            int(prog.pop_off[p + 1]), fend, t))
                done[p] = fin
            busy = int(done.max(initial=0))
            if fixed is not None:
                overruns += int(busy > fixed)
                busy = max(busy, int(fixed))
            step_cycles[b, t] = busy + barrier
            if tl is not None:
                tl.step(t, busy + barrier)
    return _finish(prog, "sync", step_cycles, core_busy, noc, overruns, 0)


def _timing_pipelined(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None,
                      tl_sample: int = 0) -> dict:
    """Pipelined-mode cycles of the timed samples (see the module docstring)."""
    fixed, barrier, pe, Bt, T, step_cycles, core_busy, noc, fire_tile = _timing_setup(prog, tile_cyc)
    C, K = prog.n_cores, prog.n_tiles
    overruns = 0
    soma = np.flatnonzero(prog.tile_kind == 0)
    fire = np.bincount(prog.tile_core[soma], weights=fire_tile[soma], minlength=C).astype(np.int64)
    used = np.zeros(C, bool)
    used[prog.tile_core] = True
    g1 = int(prog.pop_off[1])
    depth = pipeline_depth(prog)
    for b in range(Bt):
        tl = timeline if (timeline is not None and b == tl_sample) else None
        for t in range(T):
            tc = tile_cyc[b, t, :K]
            integ = np.bincount(prog.tile_core, weights=np.maximum(tc, 0), minlength=C).astype(np.int64)
            psum_ready = np.zeros(C, np.int64)
            sel = np.flatnonzero((prog.tile_kind == 1) & (tc >= 0) & (prog.tile_psum_flits > 0))
            if sel.size:
                src = prog.tile_core[sel]
                dst = prog.tile_core[prog.tile_soma[sel]]
                dptr = np.arange(sel.size + 1)
                dl = noc(integ[src], src, dptr, dst, prog.tile_psum_flits[sel])
                np.maximum.at(psum_ready, dst, dl)
                if tl is not None:
                    tl.packets(t, "psum", src, dptr, dst, integ[src], dl, prog.tile_psum_flits[sel])
            fstart = np.maximum(integ, psum_ready)
            fend = fstart + fire
            core_busy[b] += integ + fire
            busy = int(fend[used].max(initial=0))
            if tl is not None:
                for c in np.flatnonzero(used):
                    tl.phase(c, t, "integrate", 0, integ[c])
                    tl.phase(c, t, "psum wait", integ[c], fstart[c])
                    tl.phase(c, t, "fire", fstart[c], fend[c])
            busy = max(busy, _send_spikes(prog, noc, tl, all_out[b, t], g1, int(prog.pop_off[-1]), fend, t))
            if fixed is not None:
                overruns += int(busy > fixed)
                busy = max(busy, int(fixed))
            step_cycles[b, t] = busy + barrier
            if tl is not None:
                tl.step(t, busy + barrier)
    return _finish(prog, "pipelined", step_cycles, core_busy, noc, overruns, depth)


# ------------------------------------------------------------------------ entry point

def simulate(program_or_mapping, inputs, *, reset: str = "subtract", spikes: str = "binary", record=None,
             timing: bool = True, timing_samples: int = 1, input_scale: float | None = None,
             mode: str | None = None, trace=None, aer=None, vcd=None, chrome=None) -> RunResult:
    """Run the compiled chip on ``inputs`` (T, B, *input_shape).

    ``record``: None, "all" or population names (spikes and membranes, (T, B, n) int64).
    ``timing``: cycle timing of the first ``timing_samples`` samples (the NoC is
    simulated per population and step, so timing costs far more than the functional
    run); counters always cover every sample.
    ``mode``: "sync" or "pipelined" (default: the chip's ``timing.mode``; ignored for
    a compiled :class:`Program`, which fixes it); see the module docstring.
    ``trace``: a :class:`hwsim.traces.TraceConfig` (or a dict of its fields); ``aer``,
    ``vcd``, ``chrome``: shortcuts for its output paths. Off by default.
    """
    from .traces import AerWriter, ChromeWriter, TraceConfig, _Offset, vcd_selection, write_vcd

    _check_options(reset, spikes)
    if mode is not None and mode not in ("sync", "pipelined"):
        raise SimulationError(f"mode must be 'sync' or 'pipelined', got {mode!r}")
    if isinstance(program_or_mapping, Program):
        prog = program_or_mapping
        if mode is not None and mode != prog.mode:
            raise SimulationError(f"mode {mode!r}: the program was compiled for {prog.mode!r}; "
                                  f"compile(mapping, mode={mode!r}) or pass the mapping")
    else:
        prog = compile_program(program_or_mapping, mode=mode)
    net = prog.net
    if isinstance(trace, dict):
        trace = TraceConfig(**trace)
    if trace is None:
        trace = TraceConfig()
    if not isinstance(trace, TraceConfig):
        raise SimulationError(f"trace must be a TraceConfig, a dict or None, got {type(trace).__name__}")
    if aer is not None or vcd is not None or chrome is not None:
        from dataclasses import replace
        trace = replace(trace, aer=aer if aer is not None else trace.aer, vcd=vcd if vcd is not None else trace.vcd,
                        chrome=chrome if chrome is not None else trace.chrome)
    x = np.asarray(inputs)
    if x.ndim < 2 or x.shape[0] < 1:
        raise SimulationError(f"inputs must be (T, B, *{tuple(net.input.shape)}) with T >= 1 steps, "
                              f"got shape {x.shape}")
    if x.shape[1] < 1:
        raise SimulationError("inputs hold no samples (B = 0)")
    T, B = int(x.shape[0]), int(x.shape[1])
    names = prog.pop_names
    if record is None:
        want = []
    elif record == "all":
        want = list(names[1:])
    else:
        want = list(record)
        bad = [r for r in want if r not in names[1:]]
        if bad:
            raise SimulationError(f"record: unknown population(s) {bad}; known: {names[1:]}")
    rec_off = np.full(prog.n_pops, -1, np.int64)
    o = 0
    for nme in want:
        i = names.index(nme)
        rec_off[i] = o
        o += int(prog.pop_size[i])
    R = o
    n_out = int(prog.pop_size[prog.output_pop])
    n_timed = min(int(timing_samples), B) if timing else 0
    N = int(prog.pop_off[-1])
    # ---- traces: validate before running
    if trace.chrome is not None and not 0 <= int(trace.timeline_sample) < n_timed:
        raise SimulationError(f"trace chrome: needs timing=True and timeline_sample ({trace.timeline_sample}) < "
                              f"timing_samples ({n_timed} timed)")
    vcd_gids = np.zeros(0, np.int64)
    vcd_b = -1
    if trace.vcd is not None:
        if not 0 <= int(trace.vcd_sample) < B:
            raise SimulationError(f"trace vcd_sample {trace.vcd_sample} out of range 0..{B - 1}")
        vcd_gids = vcd_selection(trace, prog)
        vcd_b = int(trace.vcd_sample)
    vcd_slot = np.full(N, -1, np.int64)
    vcd_slot[vcd_gids] = np.arange(vcd_gids.size)
    vcd_s = np.zeros((T, max(vcd_gids.size, 1)), np.int64)
    vcd_v = np.zeros((T, max(vcd_gids.size, 1)), np.int64)
    chunk = _CHUNK
    if trace.aer is not None:
        chunk = int(max(1, min(_CHUNK, int(trace.chunk_bytes) // max(T * N * 8, 1))))
    in_meta = net.metadata.get("quant", {})
    in_flits = 1 if prog.input_spiking else -(-int(in_meta.get("input_bits", 8)) // max(prog.flit_bits, 1))
    in_mult = bool(prog.input_spiking and prog.payload_bits == 0)
    out_val_flits = -(-int(prog.membrane_bits) // max(prog.flit_bits, 1))

    out = np.zeros((T, B, n_out), np.int64)
    rec_s = np.zeros((T, B, R), np.int64)
    rec_v = np.zeros((T, B, R), np.int64)
    counters = np.zeros((T, prog.n_cores, len(COUNTERS)), np.int64)
    tile_cyc = np.zeros((n_timed, T, max(prog.n_tiles, 1)), np.int64)
    all_out = np.zeros((n_timed, T, N), np.int64)
    ev_index = _event_index(prog)
    # crossbar entries as narrow ints (less memory traffic in the kernel; same values)
    ent_acc_c = prog.ent_acc.astype(np.int32) if prog.n_acc < 2 ** 31 else prog.ent_acc
    wmax = int(np.abs(prog.ent_w).max(initial=0))
    ent_w_c = prog.ent_w.astype(np.int16 if wmax < 2 ** 15 else (np.int32 if wmax < 2 ** 31 else np.int64))
    # neuron updates and state words do not depend on the data: every neuron of every
    # population updates once per step and sample
    g1 = int(prog.pop_off[1])
    nmod = prog.pop_model[np.searchsorted(prog.pop_off, np.arange(g1, N), side="right") - 1]
    nu_core = np.bincount(prog.nrn_core[g1:], minlength=prog.n_cores).astype(np.int64)
    sw_core = np.bincount(prog.nrn_core[g1:], weights=np.where(nmod == 4, 2, 1),
                          minlength=prog.n_cores).astype(np.int64)
    counters[:, :, _NU] += B * nu_core[:prog.n_cores]
    counters[:, :, _SW] += B * sw_core[:prog.n_cores]
    writers = []
    try:
        aer_w = None
        if trace.aer is not None:
            aer_w = AerWriter(trace.aer, names, prog.pop_off, prog.nrn_core, trace.aer_include_input)
            writers.append(aer_w)
        import numba
        enc_buf = None
        n_in_flat = int(prog.pop_size[0])
        for b0 in range(0, B, chunk):
            b1 = min(B, b0 + chunk)
            # models.intref.encode_input, step by step into one reused buffer (int32 when
            # every encoded value fits: the encoder bounds them by ``bound``)
            encoder = _InputEncoder(net, x[:, b0:b1], input_scale)
            edt = np.int32 if 0 <= int(encoder.bound) < 2 ** 31 - 1 else np.int64
            if enc_buf is None or enc_buf.dtype != edt or enc_buf.shape[1] < b1 - b0:
                enc_buf = np.empty((T, b1 - b0, n_in_flat), edt)
            enc = enc_buf[:, :b1 - b0] if enc_buf.shape[1] != b1 - b0 else enc_buf
            if not enc.flags.c_contiguous:
                enc = np.empty((T, b1 - b0, n_in_flat), edt)
            for t_ in range(T):
                enc[t_] = encoder(t_).reshape(b1 - b0, n_in_flat)
            nb = b1 - b0
            G = max(1, min(nb, numba.get_num_threads()))
            cnt = np.zeros((G, T, prog.n_cores, len(COUNTERS)), np.int64)
            o_c = np.zeros((T, nb, n_out), np.int64)
            rs_c = np.zeros((T, nb, R), np.int64)
            rv_c = np.zeros((T, nb, R), np.int64)
            nt = max(0, min(n_timed - b0, nb))
            nr = nb if aer_w is not None else nt
            direct = aer_w is None  # timed samples' recordings written in place (no copy)
            if direct:
                tc = tile_cyc[b0:b0 + nt]
                ao = all_out[b0:b0 + nt]
            else:
                tc = np.zeros((nr, T, max(prog.n_tiles, 1)), np.int64)
                ao = np.zeros((nr, T, N), np.int64)
            vb = vcd_b - b0 if b0 <= vcd_b < b1 else -1
            _run(enc, G, prog.pop_model, prog.pop_size, prog.pop_off, prog.pop_ring, prog.ring_off,
                 prog.pop_proj_ptr, prog.proj_order, prog.pop_tile_ptr, prog.tile_order, prog.pop_bt_ptr,
                 prog.bt_start, prog.bt_off, prog.bt_vec, prog.nrn_core, prog.nrn_bias, prog.nrn_thr,
                 prog.nrn_vreset, prog.nrn_alpha, prog.nrn_asyn, prog.nrn_vleak, prog.nrn_pk, prog.nrn_hops,
                 prog.proj_shift, prog.proj_acc_off, prog.proj_npost, prog.n_acc,
                 prog.tile_core, prog.tile_kind, prog.tile_soma, prog.tile_ncols,
                 prog.tile_psum_flits, prog.tile_psum_hops,
                 prog.row_mac, prog.row_ncols, prog.row_ptr, ent_acc_c, ent_w_c,
                 *ev_index,
                 prog.membrane_bits, prog.leak_frac_bits, prog.pe_width, prog.event_overhead, prog.payload_bits,
                 reset == "subtract", spikes == "multi", prog.output_pop,
                 rec_off, rs_c, rv_c, o_c, cnt, nr, tc, ao,
                 prog.nrn_icx, prog.tile_psum_icx, prog.in_dst_ptr, prog.in_dst_core, prog.in_pk, prog.in_hops,
                 prog.in_icx, in_flits, in_mult, out_val_flits, vb, vcd_slot, vcd_s, vcd_v)
            out[:, b0:b1], rec_s[:, b0:b1], rec_v[:, b0:b1] = o_c, rs_c, rv_c
            counters += cnt.sum(axis=0)
            if nt and not direct:
                tile_cyc[b0:b0 + nt] = tc[:nt]
                all_out[b0:b0 + nt] = ao[:nt]
            if aer_w is not None:
                aer_w.add(b0, ao)
            del tc, ao
        spikes_d = {nme: rec_s[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
                    for nme in want}
        memb_d = {nme: rec_v[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
                  for nme in want}
        core_pop = np.full(prog.n_cores, -1, np.int64)
        for k in range(prog.n_tiles):
            core_pop[prog.tile_core[k]] = prog.tile_pop[k]
        core_pop_names = [names[i] if i >= 0 else "" for i in core_pop]
        tim = None
        if n_timed:
            tl = None
            if trace.chrome is not None:
                pl_grid_w = int(prog.core_chip[:, 0].max(initial=0)) + 1
                cw = ChromeWriter(trace.chrome, prog.chip.timing.clock_hz, prog.core_chip, pl_grid_w,
                                  core_pop_names, prog.mode)
                writers.append(cw)
                tl = _Offset(cw)
            fn = _timing_pipelined if prog.pipelined else _timing
            tim = fn(prog, tile_cyc, all_out, tl, int(trace.timeline_sample))
        paths = {}
        if trace.vcd is not None:
            paths["vcd"] = str(write_vcd(trace.vcd, prog, vcd_gids, vcd_s[:, :vcd_gids.size],
                                         vcd_v[:, :vcd_gids.size], vcd_b))
        for w in writers:
            paths["aer" if isinstance(w, AerWriter) else "chrome"] = str(w.close())
        writers = []
    except BaseException:
        for w in writers:
            w.abort()
        raise
    out_shape = tuple(net.pop[net.output].shape)
    return RunResult(
        output=out.reshape((T, B) + out_shape), spikes=spikes_d, membrane=memb_d,
        counters=counters, counter_names=list(COUNTERS),
        core_population=core_pop_names,
        timing=tim, meta={"reset": reset, "spikes": spikes, "chip": prog.chip.name if prog.chip else "",
                          "weight_bits": prog.weight_bits, "membrane_bits": prog.membrane_bits,
                          "clock_hz": float(prog.chip.timing.clock_hz) if prog.chip else 0.0,
                          "steps": T, "samples": B, "mode": prog.mode, "traces": paths})
