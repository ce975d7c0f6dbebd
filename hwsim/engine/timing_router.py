"""The compiled step timing with the wormhole router model (``chip.noc.router_model ==
"wormhole"``): the phases of :mod:`hwsim.engine.timing`, with every packet of a step
(partial sums and spikes) in ONE simulation of :mod:`hwsim.router`'s mesh, packets
added while it runs. :mod:`hwsim.engine.timing_router_ref` is its plain-Python twin.

Rules (same phase rules as the ideal model; only the network differs):

* The mesh is the program's global grid (``grid_w x grid_h``, node ``gy * grid_w + gx``)
  with the router parameters of ``chip.noc``; ``router_cycles`` is not used (the
  pipeline delays replace it). On an ``xy-tree`` chip a spike with several destination
  cores is ONE multicast packet forking in the routers along its XY tree (one target
  per destination; :mod:`hwsim.router`), unless it is longer than ``buffer_flits``
  (multicast packets are packet-buffered), when it goes, as on a ``unicast`` chip, as
  one packet per destination; a partial sum is one packet to its soma's core; ``L``
  flits as in the ideal model. A packet to its own core goes through its router
  (local in, local out).
* Links (:func:`hwsim.router.wormhole_links`): a link between two chips of the
  system takes ``interchip_cycles`` and ``ceil(flit_bits / interchip_bits)`` cycles
  per flit, inside the simulation (packets crossing the same boundary link contend);
  ``interchip_cycles`` is not added after, as the ideal model does.
* Delivery (per destination) = the router's tail ejection cycle there. A delivery's
  latency = delivery - creation (the latency histogram: partial sums and spikes); a
  spike's population waits for all its deliveries.
* Input events (both modes): the step's input events enter at the I/O port (west of
  global node (0, 0), over the I/O link of ``noc.io_cycles`` and ``io_bits``), all
  created at cycle 0 in input-neuron order, one multicast packet per event on an
  xy-tree chip (else one per destination core), ``in_flits`` flits (times the count
  for a multi-spike input), as the I/O counters count them. A core's first
  integration waits for every input event to it: a pair starts at
  ``max(ready_p, core_free_c, last input event to c)`` once all have arrived (sync);
  a pipelined core starts at its last input event's arrival (0 without input events).
* Sync mode, per population ``p`` (net order) and core ``c`` of ``p`` (a pair): it starts
  when every delay-0 source population is done, every earlier population on ``c``
  has fired there and every input event to ``c`` has arrived:
  ``start = max(ready_p, core_free_c, io_c)``, ``end_int = start + integ``;
  each partial tile of ``p`` on ``c`` that had events sends its partial sum, created at
  ``end_int``. The pair fires when its own integration is done and every partial sum
  to ``c`` of ``p`` has arrived: ``fend = max(end_int, last psum arrival) + fire``;
  then ``core_free_c = fend`` and each spike of ``p``'s neurons on ``c`` is created at
  ``fend``. ``done_p = max(ready_p, every fend of p, every spike delivery of p)``;
  the step = ``max_p done_p``.
* Pipelined mode: a core starts once every input event to it has arrived, at
  ``io_c`` = the last one's arrival (0 if none), and integrates ``integ`` = its cycles
  over all tiles until ``end_c = io_c + integ``; its partial sums (tile order) are
  created at ``end_c``; it fires at ``max(end_c, last psum arrival to it)`` for
  ``fire`` cycles, and its spikes (every population) are created at ``fend``. Step =
  ``max(last fend, last delivery)``.
* Packets enter the mesh in a fixed order (their ids): after every cycle in which a
  delivery completed a pair's partial sums or a population's spikes (nothing else can
  let a phase proceed), the pairs (sync: populations in net order, each one's cores in
  plan order; pipelined: cores in order) are swept until nothing changes, and a pair
  that starts adds its partial sums in tile order, a pair that fires adds its spikes in
  neuron order (destinations in table order). Every time so computed is at least the
  cycle in which it became known (a delivery is known when its tail crosses the
  switch, before it is ejected), so no packet is created in the simulated past.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..jitflags import loop_jit
from ..router import NO_CYCLE, router_add, router_add_multicast, router_run, router_state
from .layout import (HSTAT_DELIVERIES, HSTAT_LAT_MAX, HSTAT_NOC_CALLS, open_core_times, open_edges, open_input_io,
                     open_neurons, open_plan, open_pops, open_routes, open_scalars, open_state, open_tile_counts,
                     open_tiles)

__all__ = ["wormhole_step", "record_latency", "NOC_TREE"]

NOC_TREE = 15  # plan.noc_router = [1 if wormhole, the 14 router kernel parameters, 1 if xy-tree multicast, ...]


@njit(cache=True, inline="always")
def record_latency(lat, hist, hstat):
    """A delivery ``lat`` cycles after injection, in the latency histogram and stats."""
    if lat < hist.shape[0]:
        hist[lat] += 1
    hstat[HSTAT_LAT_MAX] = max(hstat[HSTAT_LAT_MAX], lat)
    hstat[HSTAT_DELIVERIES] += 1


@njit(cache=True)
def _step_spikes(tab, work, t, p0, p1, C):
    """The step's spikes of populations ``p0 .. p1-1`` with destinations, bucketed by
    core in neuron order: (ptr per core, neuron ids, flits, destinations in all)."""
    pops, nrns, routes = open_pops(tab), open_neurons(tab), open_routes(tab)
    state = open_state(work)
    n = 0
    for p in range(p0, p1):
        n += state.nzc[pops.slot_off[p] + t % pops.ring[p]]
    gid = np.empty(n, np.int64)
    fl = np.empty(n, np.int64)
    cnt = np.zeros(C + 1, np.int64)
    k = 0
    n_dst = 0
    for p in range(p0, p1):
        sl = t % pops.ring[p]
        base = pops.ring_off[p] + sl * pops.size[p]
        for j in range(state.nzc[pops.slot_off[p] + sl]):
            gi = pops.off[p] + state.nz[base + j]
            nd = routes.nrn_dst_ptr[gi + 1] - routes.nrn_dst_ptr[gi]
            if nd == 0:
                continue
            o = state.nzv[base + j]
            gid[k] = gi
            fl[k] = max(abs(o), 1) if routes.nrn_flit_count[gi] else 1
            cnt[nrns.core[gi] + 1] += 1
            n_dst += nd
            k += 1
    ptr = np.cumsum(cnt)
    pos = ptr[:C].copy()
    sg = np.empty(k, np.int64)
    sf = np.empty(k, np.int64)
    for i in range(k):
        c = nrns.core[gid[i]]
        sg[pos[c]] = gid[i]
        sf[pos[c]] = fl[i]
        pos[c] += 1
    return ptr, sg, sf, n_dst


@loop_jit
def _add(st, pk_kind, pk_tgt, pk_cross, created, src, dst, fl, kind, tgt, cross):
    """One packet into the mesh, with what its delivery updates (kind 0: partial sum to
    pair ``tgt``; 1: spike of population ``tgt``) and its chip crossings."""
    g = st.tptr[router_add(st, created, src, dst, fl)]
    pk_kind[g] = kind
    pk_tgt[g] = tgt
    pk_cross[g] = cross


@loop_jit
def _add_spikes(tab, st, pk, sg, sf, i0, i1, fe, src_node, tgt):
    """The spikes ``sg[i0:i1]`` (flits ``sf``) created at ``fe``: one multicast packet
    per spike to its destinations (xy-tree chip, several destinations, at most
    ``buffer_flits`` flits), else one packet per destination; returns the number of
    targets (deliveries to wait for)."""
    routes, plan = open_routes(tab), open_plan(tab)
    tree = plan.noc_router[NOC_TREE] != 0
    n = 0
    for i in range(i0, i1):
        gi = sg[i]
        d0, d1 = routes.nrn_dst_ptr[gi], routes.nrn_dst_ptr[gi + 1]
        if tree and d1 - d0 > 1 and sf[i] <= st.prm[3]:
            g = st.tptr[router_add_multicast(st, fe, src_node, plan.nrn_dst_node[d0:d1], sf[i])]
            for d in range(d0, d1):
                pk[0][g] = 1
                pk[1][g] = tgt
                pk[2][g] = routes.nrn_dst_cross[d]
                g += 1
            n += d1 - d0
            continue
        for d in range(d0, d1):
            _add(st, pk[0], pk[1], pk[2], fe, src_node, plan.nrn_dst_node[d], sf[i], 1, tgt, routes.nrn_dst_cross[d])
            n += 1
    return n


@loop_jit
def _deliver(st, pk, k, hist, hstat, prdy, pexp, last, spk_out, iov):
    """The ``k`` deliveries of the last cycle: input events counted down per core
    (``iov`` = (expected, last arrival)); partial sums (latency recorded) per pair
    (``pexp``, last arrival ``prdy``), spikes (latency recorded) per population. True
    if a count reached 0 (only then can a sweep change anything)."""
    zero = False
    for j in range(k):
        q = st.dl_list[j]
        dl = st.delivery[q]
        g = pk[1][q]
        if pk[0][q] == 2:
            iov[0][g] -= 1
            iov[1][g] = max(iov[1][g], dl)
            zero |= iov[0][g] == 0
            continue
        record_latency(dl - st.created[st.tpk[q]], hist, hstat)
        if pk[0][q] == 0:
            pexp[g] -= 1
            prdy[g] = max(prdy[g], dl)
            zero |= pexp[g] == 0
        else:
            spk_out[g] -= 1
            last[g] = max(last[g], dl)
            zero |= spk_out[g] == 0
    return zero


@njit(cache=True)
def _count_inputs(tab, work, t):
    """Targets of the step's input events (one per destination core)."""
    pops, io, state = open_pops(tab), open_input_io(tab), open_state(work)
    sl = t % pops.ring[0]
    base = pops.ring_off[0] + sl * pops.size[0]
    n = 0
    for j in range(state.nzc[pops.slot_off[0] + sl]):
        i = state.nz[base + j]
        n += io.dst_ptr[i + 1] - io.dst_ptr[i]
    return n


@njit(cache=True)
def _add_inputs(tab, work, t, st, pk, io_exp):
    """The step's input events, created at 0 at the I/O port in input-neuron order: one
    multicast packet per event on an xy-tree chip (several destination cores, at most
    ``buffer_flits`` flits), else one packet per destination core; ``in_flits`` flits
    (times the value for a multi-spike input); counted per destination core."""
    pops, io, state, plan, opt = open_pops(tab), open_input_io(tab), open_state(work), open_plan(tab), open_scalars(tab)
    tree = plan.noc_router[NOC_TREE] != 0
    src = st.lk_lat.shape[0] // 4  # the I/O port's source index
    sl = t % pops.ring[0]
    base = pops.ring_off[0] + sl * pops.size[0]
    for j in range(state.nzc[pops.slot_off[0] + sl]):
        i = state.nz[base + j]
        d0, d1 = io.dst_ptr[i], io.dst_ptr[i + 1]
        if d1 == d0:
            continue
        fl = opt.in_flits * (max(abs(state.nzv[base + j]), 1) if opt.in_mult != 0 else 1)
        if tree and d1 - d0 > 1 and fl <= st.prm[3]:
            nodes = np.empty(d1 - d0, np.int64)
            for d in range(d0, d1):
                nodes[d - d0] = plan.core_node[io.dst_core[d]]
            g = st.tptr[router_add_multicast(st, 0, src, nodes, fl)]
            for d in range(d0, d1):
                pk[0][g] = 2
                pk[1][g] = io.dst_core[d]
                pk[2][g] = 0
                io_exp[io.dst_core[d]] += 1
                g += 1
            continue
        for d in range(d0, d1):
            c = io.dst_core[d]
            _add(st, pk[0], pk[1], pk[2], 0, src, plan.core_node[c], fl, 2, c, 0)
            io_exp[c] += 1


@loop_jit
def _next_turn(tab, c, p):
    """The first population after ``p`` with a pair on core ``c`` (``P`` if none)."""
    plan = open_plan(tab)
    P = plan.pcore_ptr.shape[0] - 1
    for q in range(p + 1, P):
        for i in range(plan.pcore_ptr[q], plan.pcore_ptr[q + 1]):
            if plan.pcores[i] == c:
                return q
    return P


@loop_jit
def _sweep_sync(tab, work, st, pk, sp, pv, core_busy):
    """Start, fire and finish every pair and population that can (module rules), in
    order, until nothing changes."""
    pops, tiles, plan = open_pops(tab), open_tiles(tab), open_plan(tab)
    tcnt, cores = open_tile_counts(work), open_core_times(work)
    sptr, sg, sf = sp
    pst, pend, pexp, prdy, pinteg, pstate, ready, fin, last, spk_out, turn, cur, io_exp, io_rdy = pv
    P = pops.size.shape[0]
    changed = True
    while changed:
        changed = False
        for p in range(1, P):
            if pstate[p] == 3:
                continue
            if pstate[p] == 0:
                ok = True
                r = np.int64(0)
                for i in range(plan.dsrc_ptr[p], plan.dsrc_ptr[p + 1]):
                    s = plan.dsrc[i]
                    ok &= pstate[s] == 3
                    r = max(r, cores.done[s])
                if not ok:
                    continue
                ready[p] = r
                fin[p] = r
                pstate[p] = 1
                changed = True
            if pstate[p] == 1:
                fired = True
                for i in range(plan.pcore_ptr[p], plan.pcore_ptr[p + 1]):
                    c = plan.pcores[i]
                    if pst[i] == 0:
                        if turn[c] != p or io_exp[c] > 0:
                            fired = False
                            continue
                        pend[i] = max(ready[p], cores.core_free[c], io_rdy[c]) + pinteg[i]
                        for j in range(plan.pcand_ptr[p], plan.pcand_ptr[p + 1]):
                            kk = plan.pcand[j]
                            if tcnt.tc[kk] >= 0 and tiles.core[kk] == c:
                                dc = tiles.core[tiles.soma[kk]]
                                tgt = plan.pcore_ptr[p]
                                while plan.pcores[tgt] != dc:
                                    tgt += 1
                                _add(st, pk[0], pk[1], pk[2], pend[i], plan.core_node[c], plan.core_node[dc],
                                     tiles.psum_flits[kk], 0, tgt, open_routes(tab).tile_cross[kk])
                        pst[i] = 1
                        changed = True
                    if pst[i] == 1:
                        if pexp[i] > 0:
                            fired = False
                            continue
                        fe = max(pend[i], prdy[i]) + plan.pfire[i]
                        core_busy[c] += pinteg[i] + plan.pfire[i]
                        cores.core_free[c] = fe
                        fin[p] = max(fin[p], fe)
                        turn[c] = _next_turn(tab, c, p)
                        i0 = cur[c]
                        while cur[c] < sptr[c + 1] and sg[cur[c]] < pops.off[p + 1]:
                            cur[c] += 1
                        spk_out[p] += _add_spikes(tab, st, pk, sg, sf, i0, cur[c], fe, plan.core_node[c], p)
                        pst[i] = 2
                        changed = True
                if fired:
                    pstate[p] = 2
            if pstate[p] == 2 and spk_out[p] == 0:
                cores.done[p] = max(fin[p], last[p])
                pstate[p] = 3
                changed = True


@loop_jit
def _sweep_pipelined(tab, work, st, pk, sp, pv, core_busy):
    """In core order: start every core whose input events have all arrived (adding its
    partial sums, tile order), fire every started core whose partial sums have all
    arrived (adding its spikes)."""
    plan, tiles = open_plan(tab), open_tiles(tab)
    cores, tcnt = open_core_times(work), open_tile_counts(work)
    tile_cross = open_routes(tab).tile_cross
    sptr, sg, sf = sp
    fired, pexp, prdy, busy, iend, io_exp, io_rdy = pv
    for c in plan.used_cores:
        if iend[c] < 0:
            if io_exp[c] > 0:
                continue
            iend[c] = io_rdy[c] + cores.integ[c]
            for j in range(plan.psum_all.shape[0]):
                kk = plan.psum_all[j]
                if tcnt.tc[kk] >= 0 and tiles.core[kk] == c:
                    dc = tiles.core[tiles.soma[kk]]
                    _add(st, pk[0], pk[1], pk[2], iend[c], plan.core_node[c], plan.core_node[dc],
                         tiles.psum_flits[kk], 0, dc, tile_cross[kk])
        if fired[c] or pexp[c] > 0:
            continue
        fe = max(iend[c], prdy[c]) + plan.fire_all[c]
        cores.fend[c] = fe
        busy[0] = max(busy[0], fe)
        fired[c] = 1
        busy[1] += _add_spikes(tab, st, pk, sg, sf, sptr[c], sptr[c + 1], fe, plan.core_node[c], 0)


@njit(cache=True)
def _link_flits_out(st, edges, gw, gh):
    """The mesh's flits per link into the engine's (gx, gy, port) order."""
    for n in range(gw * gh):
        gx, gy = n % gw, n // gw
        for o in range(4):
            edges.link_flits[(gx * gh + gy) * 4 + o] += st.link_flits[n * 4 + o]


@njit(cache=True)
def wormhole_step(tab, work, t, core_busy, hist, hstat):
    """Cycles of step ``t`` of one sample with the router model (module rules), before
    fixed-step padding and barrier: the model of :mod:`hwsim.engine.timing_router_ref`."""
    pops, tiles, opt, plan = open_pops(tab), open_tiles(tab), open_scalars(tab), open_plan(tab)
    tcnt, cores, edges = open_tile_counts(work), open_core_times(work), open_edges(work)
    P = pops.size.shape[0]
    C = plan.fire_all.shape[0]
    K = tiles.core.shape[0]
    prm = plan.noc_router[1:NOC_TREE]
    sptr, sg, sf, n_dst = _step_spikes(tab, work, t, 1, P, C)
    n_psum = 0
    for kk in range(K):
        if tiles.kind[kk] == 1 and tiles.psum_flits[kk] > 0 and tcnt.tc[kk] >= 0:
            n_psum += 1
    n_io = _count_inputs(tab, work, t)
    cap = max(n_psum + n_dst + n_io, 1)
    st = router_state(prm, cap, 0, cap)
    m = st.lk_lat.shape[0]
    st.lk_lat[:] = plan.noc_router[NOC_TREE + 1:NOC_TREE + 1 + m]
    st.lk_ser[:] = plan.noc_router[NOC_TREE + 1 + m:NOC_TREE + 1 + 2 * m]
    pk = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64))
    if n_dst:
        hstat[HSTAT_NOC_CALLS] += 1
    if opt.pipelined:
        for c in range(C):
            cores.integ[c] = 0
        for kk in range(K):
            if tcnt.tc[kk] > 0:
                cores.integ[tiles.core[kk]] += tcnt.tc[kk]
        pexp = np.zeros(C, np.int64)
        prdy = np.zeros(C, np.int64)
        for j in range(plan.psum_all.shape[0]):
            kk = plan.psum_all[j]
            if tcnt.tc[kk] >= 0:
                pexp[tiles.core[tiles.soma[kk]]] += 1
        for c in range(C):
            core_busy[c] += cores.integ[c] + plan.fire_all[c]
        fired = np.zeros(C, np.int64)
        busy = np.zeros(2, np.int64)  # last fire end, spike packets
        last = np.zeros(1, np.int64)
        spk_out = np.zeros(1, np.int64)
        iend = np.full(C, -1, np.int64)  # a started core's integration end
        io_exp = np.zeros(C, np.int64)
        io_rdy = np.zeros(C, np.int64)
        _add_inputs(tab, work, t, st, pk, io_exp)
        args = (tab, work, st, pk, (sptr, sg, sf), (fired, pexp, prdy, busy, iend, io_exp, io_rdy), core_busy)
        _sweep_pipelined(*args)
        _run_mesh_p(tab, st, pk, hist, hstat, prdy, pexp, last, spk_out, args)
        _link_flits_out(st, edges, prm[0], prm[1])
        return max(busy[0], last[0])
    npairs = plan.pcores.shape[0]
    pst = np.zeros(npairs, np.int64)
    pend = np.zeros(npairs, np.int64)
    pexp = np.zeros(npairs, np.int64)
    prdy = np.zeros(npairs, np.int64)
    pinteg = np.zeros(npairs, np.int64)
    pstate = np.zeros(P, np.int64)
    ready = np.zeros(P, np.int64)
    fin = np.zeros(P, np.int64)
    last = np.zeros(P, np.int64)
    spk_out = np.zeros(P, np.int64)
    turn = np.full(C, P, np.int64)
    cur = sptr[:C].copy()
    pair_at = np.full(C, -1, np.int64)
    pstate[0] = 3
    cores.done[0] = 0
    for c in range(C):
        cores.core_free[c] = 0
    for p in range(P - 1, 0, -1):
        for i in range(plan.pcore_ptr[p], plan.pcore_ptr[p + 1]):
            turn[plan.pcores[i]] = p
    for p in range(1, P):
        cores.done[p] = 0
        if pops.tile_ptr[p + 1] == pops.tile_ptr[p]:
            pstate[p] = 3  # no tiles: done at 0, as in the ideal model
            continue
        for i in range(plan.pcore_ptr[p], plan.pcore_ptr[p + 1]):
            pair_at[plan.pcores[i]] = i
        for ti in range(pops.tile_ptr[p], pops.tile_ptr[p + 1]):
            kk = pops.tile_order[ti]
            if tcnt.tc[kk] > 0:
                pinteg[pair_at[tiles.core[kk]]] += tcnt.tc[kk]
        for j in range(plan.pcand_ptr[p], plan.pcand_ptr[p + 1]):
            kk = plan.pcand[j]
            if tcnt.tc[kk] >= 0:
                pexp[pair_at[tiles.core[tiles.soma[kk]]]] += 1
    io_exp = np.zeros(C, np.int64)
    io_rdy = np.zeros(C, np.int64)
    _add_inputs(tab, work, t, st, pk, io_exp)
    pv = (pst, pend, pexp, prdy, pinteg, pstate, ready, fin, last, spk_out, turn, cur, io_exp, io_rdy)
    args = (tab, work, st, pk, (sptr, sg, sf), pv, core_busy)
    _sweep_sync(*args)
    _run_mesh_s(tab, st, pk, hist, hstat, prdy, pexp, last, spk_out, args)
    _link_flits_out(st, edges, prm[0], prm[1])
    busy = np.int64(0)
    for p in range(P):
        busy = max(busy, cores.done[p])
    return busy


@loop_jit
def _run_mesh_s(tab, st, pk, hist, hstat, prdy, pexp, last, spk_out, args):
    """Cycle the mesh until every packet (those the sync sweeps add too) is delivered.
    Compiled without reference counting (:data:`hwsim.jitflags.loop_jit`), as are the
    callees it shares with :func:`wormhole_step`: they allocate nothing, and with counting
    on, a call counts every array it passes (the router state has 70). Measured with
    ``perf`` on the NIR CNN's cycle-level run: counting 30 % of it before, 22 % with only
    the mesh loops compiled so, 0.5 % with their callees too."""
    t = np.int64(0)
    while st.sc[1] > 0:
        t = router_run(st, t, NO_CYCLE)  # to the next cycle with deliveries
        k = st.sc[3]
        if k == 0:
            break  # nothing left to simulate
        if _deliver(st, pk, k, hist, hstat, prdy, pexp, last, spk_out, (args[5][12], args[5][13])):
            _sweep_sync(*args)


@loop_jit
def _run_mesh_p(tab, st, pk, hist, hstat, prdy, pexp, last, spk_out, args):
    """Cycle the mesh until every packet (those the pipelined sweeps add too) is delivered
    (no reference counting, as :func:`_run_mesh_s`)."""
    t = np.int64(0)
    while st.sc[1] > 0:
        t = router_run(st, t, NO_CYCLE)  # to the next cycle with deliveries
        k = st.sc[3]
        if k == 0:
            break  # nothing left to simulate
        if _deliver(st, pk, k, hist, hstat, prdy, pexp, last, spk_out, (args[5][5], args[5][6])):
            _sweep_pipelined(*args)
