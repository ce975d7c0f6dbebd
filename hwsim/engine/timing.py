"""The compiled cycle timing of one step (Numba), run inside the functional kernel:
per population integrate / partial-sum / fire phases per core and the NoC simulation of
its packets. :mod:`hwsim.engine.timing_ref` is its plain-Python twin, tested equal.

Rules (sync mode): per core and step, integrate cycles = sum over its events of
``ceil(used columns of the row / pe_width) + event_overhead_cycles``, fire cycles = sum
over its soma tiles of ``ceil(n_cols / pe_width)``. Layer-serial: a population's cores
start integrating when every delay-0 source population is done (its spikes delivered);
partial sums are injected when the partial tile's core finished integrating, the soma
fires when its own integration is done and all partial sums have arrived; spike packets
are injected at the end of the fire phase. The step ends at the last completion.
Pipelined mode: every core starts at cycle 0 and integrates the events of the step
(every population); a partial tile's psum packet is injected when its core's
integration ends; a core fires at ``max(end of integration, last psum arrival)``; every
spike of the step is injected when its core's fire phase ends. Partial sums and spikes
are separate NoC simulations (they do not contend with each other). Fixed-step padding
and the barrier are added by the caller (:mod:`hwsim.engine.kernel`). This is the
``noc.router_model = "ideal"`` timing; ``"wormhole"`` is :mod:`hwsim.engine.timing_router`.

The packets go through the NoC model's own arbitration (:func:`hwsim.noc.run_into`)
in the same order as the Python twin, with routes laid out once per program
(:func:`hwsim.engine.build._route_templates`); a step's spikes of one route class
(source core and destination cores) are first simulated as one packet per class, a
train (:func:`_send_trains`), which is exact when no train waited on a link, and packet
by packet otherwise; a population's partial-sum call that repeats its last one (same
tiles, same inject cycles) replays its deliveries (:func:`_send_psums`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..noc import run_into, run_trains_into

from .timing_router import record_latency, wormhole_step
from .layout import (HSTAT_DELIVERIES, HSTAT_LAT_MAX, HSTAT_NOC_CALLS, HSTAT_TRAIN_CALLS, open_core_times,
                     open_edges, open_neurons, open_packets, open_plan, open_pops, open_routes, open_scalars,
                     open_state, open_tile_counts, open_tiles)

__all__ = ["step_timing", "valid_edges"]


@njit(cache=True, inline="always")
def valid_edges(edges, E):
    """Set ``e_valid`` on edges ``0 .. E-1`` (the thread's scratch is not zeroed there:
    :data:`hwsim.engine.layout.WORK_EDGES`); ``e_hi[0]`` remembers how far it is set."""
    hi = edges.e_hi[0]
    if E > hi:
        edges.e_valid[hi:E] = 1
        edges.e_hi[0] = E


@njit(cache=True)
def _noc_send(tab, work, npk, E, hist, hstat):
    """Arbitrate the ``npk`` packets laid out in ``work`` (edges ``0 .. E-1``) with
    :func:`hwsim.noc.run_into`, the NoC model itself."""
    opt, routes = open_scalars(tab), open_routes(tab)
    pkts, edges = open_packets(work), open_edges(work)
    valid_edges(edges, E)
    run_into(pkts.pk_t0[:npk], pkts.pk_fl[:npk], edges.e_valid[:E], edges.e_link[:E], edges.e_parent[:E],
             edges.e_owner[:E], opt.R, opt.W, routes.link_pos, routes.link_at, edges.e_start[:E], edges.link_flits,
             edges.l_cnt, edges.l_used, edges.l_at, edges.e_order, edges.e_ready)


@njit(cache=True, inline="always")
def _lay_route(rt_link, rt_parent, r0, r1, owner, E, e_link, e_parent, e_owner):
    """Append route template ``r0:r1`` as edges ``E ..`` of packet ``owner`` (parents
    made absolute: ``E + parent``, negative at the root, whose template parent is
    :data:`hwsim.engine.build._RT_ROOT`); returns the next free edge. A plain copy with unsigned indices,
    no branch: 1.9 ns per edge instead of 4.3 with a root test per edge (the NIR CNN's
    templates, in isolation)."""
    base = E  # a local: the tables share one blob, so a stored base would be reloaded per edge
    n = np.uint64(r1 - r0)
    u0 = np.uint64(r0)
    uE = np.uint64(E)
    for u in range(n):
        e_link[uE + u] = rt_link[u0 + u]
        e_parent[uE + u] = base + rt_parent[u0 + u]
        e_owner[uE + u] = owner
    return E + np.int64(n)


@njit(cache=True, inline="always")
def _lay_out(routes, pkts, edges, npk, E, t0, fl, pid, r0, r1):
    """Append packet ``npk`` (inject ``t0``, ``fl`` flits, route template ``r0:r1``) to
    the packet and edge tables."""
    pkts.pk_t0[npk] = t0
    pkts.pk_fl[npk] = fl
    pkts.pk_id[npk] = pid
    pkts.pk_base[npk] = E
    return _lay_route(routes.rt_link, routes.rt_parent, r0, r1, npk, E, edges.e_link, edges.e_parent, edges.e_owner)


@njit(cache=True, inline="always")
def _arrival(e_start, base, de, W, L, t0, cross, extra):
    """Delivery cycle of a packet's tail at one destination: the head enters the
    destination's ejection edge ``de`` at ``e_start[base + de]`` and needs ``W`` more
    cycles, the tail ``L - 1`` after it (``de < 0``: same core, ``t0 + L - 1``), plus
    ``cross * extra`` for chip boundaries."""
    dl = (e_start[base + de] + W + L - 1) if de >= 0 else t0 + L - 1
    dl += cross * extra
    return dl


@njit(cache=True)
def _send_psums(tab, work, cand, c0, c1, t0_core, key, hist, hstat):
    """Partial-sum packets of the tiles ``cand[c0:c1]`` that had events (``tc >= 0``),
    injected at ``t0_core[tile core]``; ``psum_ready[soma core]`` = last arrival.

    A call is simulated on a NoC of its own, so its deliveries depend only on which
    tiles send and when: when call site ``key`` (a population) sends the same tiles at
    the same cycles as its last call (``m_t0``; a held input frame repeats its
    partial sums every step), the last call's deliveries (``m_dl``) are replayed,
    with their latencies and link flits, instead of simulated again."""
    tiles, opt, routes = open_tiles(tab), open_scalars(tab), open_routes(tab)
    tcnt, cores = open_tile_counts(work), open_core_times(work)
    pkts, edges = open_packets(work), open_edges(work)
    same = cores.m_ok[key] != 0
    for i in range(c0, c1):
        kk = cand[i]
        t0 = t0_core[tiles.core[kk]] if tcnt.tc[kk] >= 0 else -1
        if t0 != cores.m_t0[i]:
            same = False
        cores.m_t0[i] = t0
    if same:  # the last call's deliveries and link flits again
        for i in range(c0, c1):
            t0 = cores.m_t0[i]
            if t0 >= 0:
                kk = cand[i]
                dl = cores.m_dl[i]
                record_latency(dl - t0, hist, hstat)
                dc = tiles.core[tiles.soma[kk]]
                cores.psum_ready[dc] = max(cores.psum_ready[dc], dl)
                L = tiles.psum_flits[kk]
                for e in range(routes.tile_rt_ptr[kk], routes.tile_rt_ptr[kk + 1]):
                    edges.link_flits[routes.rt_link[e]] += L
        return
    cores.m_ok[key] = 1
    npk = 0
    E = 0
    for i in range(c0, c1):
        kk = cand[i]
        if cores.m_t0[i] >= 0:
            E = _lay_out(routes, pkts, edges, npk, E, cores.m_t0[i], tiles.psum_flits[kk], i, routes.tile_rt_ptr[kk],
                         routes.tile_rt_ptr[kk + 1])
            npk += 1
    if npk == 0:
        return
    _noc_send(tab, work, npk, E, hist, hstat)
    for n in range(npk):
        i = pkts.pk_id[n]
        kk = cand[i]
        L = pkts.pk_fl[n]
        t0 = pkts.pk_t0[n]
        dl = _arrival(edges.e_start, pkts.pk_base[n], routes.tile_dst_edge[kk], opt.W, L, t0, routes.tile_cross[kk],
                      opt.extra)
        record_latency(dl - t0, hist, hstat)
        cores.m_dl[i] = dl
        dc = tiles.core[tiles.soma[kk]]
        cores.psum_ready[dc] = max(cores.psum_ready[dc], dl)


@njit(cache=True)
def _send_spikes_nb(tab, work, p0, p1, t, hist, hstat):
    """Spike packets of populations ``p0 .. p1-1`` at step ``t`` (neuron order), each
    injected when its core's fire phase ends (``fend``); returns the last delivery
    (0 without packets). Packets are listed, then simulated as trains when they form
    a few (:func:`_send_trains`), else one by one."""
    pops, nrns, opt, routes = open_pops(tab), open_neurons(tab), open_scalars(tab), open_routes(tab)
    state, cores = open_state(work), open_core_times(work)
    pkts, edges = open_packets(work), open_edges(work)
    # the packets, in neuron order, and their trains: a train = the packets of one
    # route class (same source core, so the same inject cycle), in packet order;
    # pk_off = flits of the train before the packet
    npk = 0
    ntr = 0
    one_flit = True
    for p in range(p0, p1):
        sl = t % pops.ring[p]
        base = pops.ring_off[p] + sl * pops.size[p]
        nn = state.nzc[pops.slot_off[p] + sl]
        off = pops.off[p]
        for j in range(nn):
            gi = off + state.nz[base + j]
            if routes.nrn_dst_ptr[gi + 1] == routes.nrn_dst_ptr[gi]:
                continue
            o = state.nzv[base + j]
            fl = max(abs(o), 1) if routes.nrn_flit_count[gi] else 1
            one_flit &= fl == 1
            c = routes.nrn_cls[gi]
            tr = pkts.cls_tr[c] - 1  # cls_tr: train + 1, 0 = none yet (left all zero)
            if tr < 0:
                tr = ntr
                ntr += 1
                pkts.cls_tr[c] = ntr
                pkts.tr_t0[tr] = cores.fend[nrns.core[gi]]
                pkts.tr_len[tr] = 0
                pkts.tr_rep[tr] = gi
            pkts.pk_id[npk] = gi
            pkts.pk_fl[npk] = fl
            pkts.pk_t0[npk] = pkts.tr_t0[tr]
            pkts.pk_off[npk] = pkts.tr_len[tr]
            pkts.pk_tr[npk] = tr
            pkts.tr_len[tr] += fl
            npk += 1
    for tr in range(ntr):
        pkts.cls_tr[routes.nrn_cls[pkts.tr_rep[tr]]] = 0
    if npk == 0:
        return 0
    trains = npk >= 4 * ntr and _send_trains(tab, work, ntr)
    hstat[HSTAT_NOC_CALLS] += 1
    hstat[HSTAT_TRAIN_CALLS] += trains
    if not trains:
        E = 0
        for i in range(npk):
            gi = pkts.pk_id[i]
            E = _lay_out(routes, pkts, edges, i, E, pkts.pk_t0[i], pkts.pk_fl[i], gi, routes.rt_ptr[gi],
                         routes.rt_ptr[gi + 1])
        _noc_send(tab, work, npk, E, hist, hstat)
    last = np.int64(0)
    H = hist.shape[0]
    mx = hstat[HSTAT_LAT_MAX]  # the latency stats in registers (hist's stores could alias them)
    cnt = np.int64(0)
    if trains and one_flit:
        # one-flit packets: at each destination of the class (its first neuron's), a
        # train's packet k arrives k cycles after the head, e_start + W (ejection) +
        # cross * extra; on the source core itself all arrive at t0
        for tr in range(ntr):
            gi = pkts.tr_rep[tr]
            t0 = pkts.tr_t0[tr]
            n = pkts.tr_len[tr]
            for d in range(routes.nrn_dst_ptr[gi], routes.nrn_dst_ptr[gi + 1]):
                de = routes.nrn_dst_edge[d]
                x = routes.nrn_dst_cross[d] * opt.extra
                if de >= 0:
                    lat0 = edges.e_start[pkts.tr_base[tr] + de] + opt.W + x - t0
                    for k in range(min(n, max(H - lat0, 0))):
                        hist[lat0 + k] += 1
                    lat1 = lat0 + n - 1
                else:
                    lat0 = x
                    lat1 = x
                    if x < H:
                        hist[x] += n
                mx = max(mx, lat1)
                cnt += n
                last = max(last, t0 + lat1)
    else:
        for i in range(npk):
            gi = pkts.pk_id[i]
            L = pkts.pk_fl[i]
            t0 = pkts.pk_t0[i]
            if trains:  # the train's edges, pk_off cycles after its head
                b = pkts.tr_base[pkts.pk_tr[i]]
                lag = pkts.pk_off[i]
            else:
                b = pkts.pk_base[i]
                lag = 0
            for d in range(routes.nrn_dst_ptr[gi], routes.nrn_dst_ptr[gi + 1]):
                dl = _arrival(edges.e_start, b, routes.nrn_dst_edge[d], opt.W + lag, L, t0, routes.nrn_dst_cross[d],
                              opt.extra)
                lat = dl - t0
                if lat < H:
                    hist[lat] += 1
                mx = max(mx, lat)
                cnt += 1
                last = max(last, dl)
    hstat[HSTAT_LAT_MAX] = mx
    hstat[HSTAT_DELIVERIES] += cnt
    return last


@njit(cache=True)
def _send_trains(tab, work, ntr):
    """Lay out the ``ntr`` trains listed by :func:`_send_spikes_nb` as one packet each
    (``tr_len`` flits, injected at ``tr_t0``, the route of its first neuron) and run
    :func:`hwsim.noc.run_trains_into`: True if no train waited (every packet then
    crosses its train's links ``pk_off`` cycles after the train's head)."""
    opt, routes = open_scalars(tab), open_routes(tab)
    pkts, edges = open_packets(work), open_edges(work)
    E = 0
    for tr in range(ntr):
        gi = pkts.tr_rep[tr]
        pkts.tr_base[tr] = E
        E = _lay_route(routes.rt_link, routes.rt_parent, routes.rt_ptr[gi], routes.rt_ptr[gi + 1], tr, E, edges.e_link,
                       edges.e_parent, edges.e_owner)
    valid_edges(edges, E)
    return run_trains_into(pkts.tr_t0[:ntr], pkts.tr_len[:ntr], edges.e_valid[:E], edges.e_link[:E],
                           edges.e_parent[:E], edges.e_owner[:E], opt.R, opt.W, routes.link_pos, routes.link_at,
                           edges.e_start[:E], edges.link_flits, edges.l_cnt, edges.l_used, edges.l_at, edges.e_order,
                           edges.e_ready)


@njit(cache=True)
def step_timing(tab, work, t, core_busy, hist, hstat):
    """Cycles of step ``t`` of one sample from its tile cycles ``tc`` and its outputs
    (the spike lists in ``nz``), before fixed-step padding and barrier: the model of
    :func:`hwsim.engine.timing_ref.timing_sync` or
    :func:`hwsim.engine.timing_ref.timing_pipelined`, same packets in the same order;
    with ``noc.router_model = "wormhole"``, :func:`hwsim.engine.timing_router.wormhole_step`."""
    pops, tiles, opt, plan = open_pops(tab), open_tiles(tab), open_scalars(tab), open_plan(tab)
    tcnt, cores = open_tile_counts(work), open_core_times(work)
    if plan.noc_router[0] != 0:
        return wormhole_step(tab, work, t, core_busy, hist, hstat)
    P = pops.size.shape[0]
    C = plan.fire_all.shape[0]
    if opt.pipelined:
        for c in range(C):
            cores.integ[c] = 0
            cores.psum_ready[c] = 0
        for kk in range(tiles.core.shape[0]):
            if tcnt.tc[kk] > 0:
                cores.integ[tiles.core[kk]] += tcnt.tc[kk]
        _send_psums(tab, work, plan.psum_all, 0, plan.psum_all.shape[0], cores.integ, 0, hist, hstat)
        for c in range(C):
            fs = max(cores.psum_ready[c], cores.integ[c])
            cores.fend[c] = fs + plan.fire_all[c]
            core_busy[c] += cores.integ[c] + plan.fire_all[c]
        busy = np.int64(0)
        for c in plan.used_cores:
            busy = max(busy, cores.fend[c])
        last = _send_spikes_nb(tab, work, 1, P, t, hist, hstat)
        return max(last, busy)
    for p in range(P):
        cores.done[p] = 0
    for c in range(C):
        cores.core_free[c] = 0
    for p in range(1, P):
        ready = np.int64(0)
        for i in range(plan.dsrc_ptr[p], plan.dsrc_ptr[p + 1]):
            ready = max(ready, cores.done[plan.dsrc[i]])
        if pops.tile_ptr[p + 1] == pops.tile_ptr[p]:
            continue
        for c in range(C):
            cores.fend[c] = 0
        for i in range(plan.pcore_ptr[p], plan.pcore_ptr[p + 1]):
            c = plan.pcores[i]
            cores.integ[c] = 0
            cores.psum_ready[c] = 0
        for ti in range(pops.tile_ptr[p], pops.tile_ptr[p + 1]):
            kk = pops.tile_order[ti]
            if tcnt.tc[kk] > 0:
                cores.integ[tiles.core[kk]] += tcnt.tc[kk]
        for i in range(plan.pcore_ptr[p], plan.pcore_ptr[p + 1]):
            c = plan.pcores[i]
            st = max(ready, cores.core_free[c])
            cores.end_int[c] = st + cores.integ[c]
        _send_psums(tab, work, plan.pcand, plan.pcand_ptr[p], plan.pcand_ptr[p + 1], cores.end_int, p, hist, hstat)
        fin = ready
        for i in range(plan.pcore_ptr[p], plan.pcore_ptr[p + 1]):
            c = plan.pcores[i]
            fs = max(cores.psum_ready[c], cores.end_int[c])
            fe = fs + plan.pfire[i]
            cores.fend[c] = fe
            core_busy[c] += cores.integ[c] + plan.pfire[i]
            cores.core_free[c] = fe
            fin = max(fin, fe)
        last = _send_spikes_nb(tab, work, p, p + 1, t, hist, hstat)
        cores.done[p] = max(last, fin)
    busy = np.int64(0)
    for p in range(P):
        busy = max(busy, cores.done[p])
    return busy

