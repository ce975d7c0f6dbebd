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

Partial sums go through the NoC model's own arbitration (:func:`hwsim.noc.run_into`)
in the same order as the Python twin, with routes laid out once per program
(:func:`hwsim.engine.timing_plan.route_templates`); a population's partial-sum call that
repeats its last one (same tiles, same inject cycles) replays its deliveries
(:func:`_send_psums`). Spikes go through the same model computed per route class
(source core and destination cores share one template route):
:func:`hwsim.engine.timing_spikes.send_spikes`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jitflags import nrt_jit
from ..noc import run_into

from .timing_router import record_latency, wormhole_step
from .timing_spikes import send_spikes
from .layout import (open_core_times, open_edges, open_packets, open_plan, open_pops, open_routes, open_scalars,
                     open_tile_counts, open_tiles)

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
    :data:`hwsim.engine.timing_plan.RT_ROOT`); returns the next free edge. A plain copy with unsigned indices,
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


@nrt_jit
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
        last = send_spikes(tab, work, 1, P, t, hist, hstat)
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
        last = send_spikes(tab, work, p, p + 1, t, hist, hstat)
        cores.done[p] = max(last, fin)
    busy = np.int64(0)
    for p in range(P):
        busy = max(busy, cores.done[p])
    return busy

