"""The compiled router kernel of :mod:`hwsim.router` (whose docstring is the spec,
multicast forking included): the incremental state, packet add, idle skip and one cycle.

The kernel is incremental so that the chip simulator's step timing
(hwsim/engine/timing_router.py) can add packets while the network runs: a
:data:`RouterState` holds the mesh, the packets added so far and their source queues;
:func:`router_add` / :func:`router_add_multicast` append a packet (its creation cycle
not before the cycle about to be simulated), :func:`router_run` simulates cycles up to
the next one with deliveries, :func:`router_cycle` one cycle, :func:`router_next` skips
idle cycles. ``hwsim.router.simulate_router`` is the batch use
of the same calls.

Packets and targets: a packet has one source and one or more destination nodes, its
*targets* (ids counting from 0 in the order added; a unicast packet has one). Deliveries
are per target: ``delivery[target]`` is the cycle the packet's tail was ejected at that
target's node, and ``dl_list`` lists targets.

Speed rules. (1) No reference counting in the cycle loop: the functions that loop
(:func:`router_run` and the stages it calls, :func:`router_next`) are compiled with
Numba's ``_nrt=False`` flag, so they emit no reference-count updates at all. They
allocate nothing and only index arrays the caller's :data:`RouterState` keeps alive for
the call. With counting on, Numba increments and decrements the count of every array
an inlined helper binds (atomic operations, not pruned inside loops): 54 increment and
61 decrement sites in the switch stage alone; without them ``bench/router_speed.py``
took 13.1-13.7 ms against 15.1-15.6 ms (back to back; ``bench/results/router_speed.md``).
(2) Per-cycle work only where it is active: the stages visit the routers holding flits
(``act``), the sources with queued packets (``srcs``), and at each router only the input
ports with a VC waiting for VC allocation or holding flits (``pmask`` bits). (3) :func:`router_run` runs cycles up to the next
delivery, so a caller crosses into the kernel once per delivering cycle. (4) Idle
cycles are skipped: a cycle that changed nothing (no credit returned, no flit injected,
no allocator request) is repeated exactly by every following cycle until the earliest
cycle stamp one of its tests compared with (a flit's ready cycle, a VC's allocation
start, an output VC's or link's free cycle, a credit's due cycle, a packet's creation),
so :func:`router_run` jumps there; each stage returns ``t + 1`` if it changed
anything, else that stamp. A flit crossing an empty mesh thus costs its hops, not its
pipeline cycles.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit
from numba.core.cpu import CPUTargetOptions

__all__ = ["RouterState", "router_state", "router_add", "router_add_multicast", "router_next", "router_cycle",
           "router_run", "NO_CYCLE", "LOCAL_PORT"]

# the cycle loop's functions: compiled without reference counting where this Numba has
# its internal ``_nrt`` option (Numba 0.68.1 has it); without it, plain njit (same results, slower)
_loop_jit = njit(cache=True, _nrt=False) if hasattr(CPUTargetOptions, "_nrt") else njit(cache=True)

LOCAL_PORT = 4
_LOCAL = LOCAL_PORT
NO_CYCLE = 1 << 62  # router_next's answer when no packet is waiting

RouterState = namedtuple("RouterState", [
    "prm", "sc", "created", "psrc", "tptr", "ntg", "tdst", "tpk", "flits", "head_inj", "delivery", "qnext", "qhead",
    "qtail", "bpkt", "bfi", "brdy", "bhead", "bcnt", "ist", "imask", "isent", "iovc", "ifrom", "obusy",
    "ofree", "ocred", "cq_vc", "cq_due", "cq_head", "cq_cnt", "occ", "va_in", "va_out", "sa_in", "sa_out",
    "inj_ptr", "sflit", "svc", "eject", "link_flits", "dl_list", "r_idx", "r_o", "r_w", "r_ok", "r_p", "r_v",
    "best_b", "best_k", "last_v", "cap_in", "act", "act_on", "srcs", "src_on", "lk_lat", "lk_ser", "lk_free",
    "pmask"])
RouterState.__doc__ = (
    "The router kernel's state: ``prm`` = ``RouterParams.kernel_args()``; ``sc`` = (packets added, targets not yet "
    "delivered, flits in the input buffers, deliveries of the last cycle, active routers, active sources, targets "
    "added); per packet creation, source, first target and number of targets, length, head injection and the next "
    "packet of its source queue; per target its node, packet and delivery; the buffers, VCs (``imask`` = the output "
    "ports of the packet at the front of an input VC, ``isent`` = those its front flit has already been copied to, "
    "``iovc[n, p, v, o]`` = its output VC at port ``o``), credits and allocator pointers; ``link_flits[n * 4 + "
    "port]`` = flits that left router ``n`` through mesh port ``port``; ``dl_list`` = targets delivered (tail "
    "ejected) in the last cycle; ``act`` / ``srcs`` list the routers holding flits and the sources with queued "
    "packets (``sc[4]``, ``sc[5]`` long; ``act_on`` / ``src_on`` flag them), the only ones a cycle visits; "
    "per link ``n * 4 + port`` (and the I/O link, index ``4 N``) its latency, cycles per flit and the cycle it is "
    "free from; ``pmask[0, n * 5 + p]`` / ``pmask[1, n * 5 + p]`` = the VCs of input port ``p`` of router ``n`` "
    "(bit ``v``) waiting for VC allocation (state 1) / holding a VC and flits (state 2, at least one flit), the only "
    "VCs the allocators visit. Source ``N`` (one past the last node) is the I/O port.")


@njit(cache=True)
def router_state(prm, cap_packets, eject_len, cap_targets=-1):
    """A fresh :data:`RouterState` for up to ``cap_packets`` packets and ``cap_targets``
    targets (default: one per packet); ``eject[t]`` counts the flits ejected at cycle
    ``t < eject_len`` (0: not recorded)."""
    W, H, V, B = prm[0], prm[1], prm[2], prm[3]
    N = W * H
    S = N + 1  # sources: the nodes and the I/O port
    P = 5
    PV = P * V
    cap = max(cap_packets, 1)
    capt = max(cap_targets if cap_targets >= 0 else cap_packets, 1)
    cap_c = S * (P + 1) * V * B + 1  # credits in flight never exceed the buffer slots
    cap_in = np.ones(P, np.int64)
    cap_in[_LOCAL] = prm[12]
    return RouterState(
        prm.copy(), np.zeros(7, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64),
        np.zeros(cap, np.int64), np.zeros(capt, np.int64), np.zeros(capt, np.int64), np.zeros(cap, np.int64),
        np.full(cap, -1, np.int64), np.full(capt, -1, np.int64), np.full(cap, -1, np.int64),
        np.full(S, -1, np.int64), np.full(S, -1, np.int64),
        np.zeros((N, P, V, B), np.int64), np.zeros((N, P, V, B), np.int64), np.zeros((N, P, V, B), np.int64),
        np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int8),
        np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int64),
        np.zeros((N, P, V, P), np.int64), np.zeros((N, P, V), np.int64),
        np.zeros((S, P + 1, V), np.bool_), np.zeros((S, P + 1, V), np.int64), np.full((S, P + 1, V), B, np.int64),
        np.zeros((4, cap_c), np.int64), np.zeros((4, cap_c), np.int64), np.zeros(4, np.int64), np.zeros(4, np.int64),
        np.zeros(N, np.int64), np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int64),
        np.zeros((N, P), np.int64), np.zeros((N, P), np.int64), np.zeros(S, np.int64), np.zeros(S, np.int64),
        np.full(S, -1, np.int64), np.zeros(max(eject_len, 0), np.int64), np.zeros(N * 4, np.int64),
        np.zeros(capt, np.int64), np.zeros(P * PV, np.int64), np.zeros(P * PV, np.int64), np.zeros(P * PV, np.int64),
        np.zeros(P * PV, np.bool_), np.zeros(P * PV, np.int64), np.zeros(P * PV, np.int64), np.zeros(P, np.int64),
        np.zeros(P, np.int64), np.zeros(P, np.int64), cap_in, np.zeros(N, np.int64), np.zeros(N, np.bool_),
        np.zeros(S, np.int64), np.zeros(S, np.bool_), np.full(N * 4 + 1, prm[8], np.int64),
        np.ones(N * 4 + 1, np.int64), np.zeros(N * 4 + 1, np.int64), np.zeros((2, N * P), np.int64))


@njit(cache=True, inline="always")
def _enqueue(qhead, qtail, qnext, pcreated, srcs, src_on, sc, k, created, src):
    """Packet ``k`` into ``src``'s queue after every queued packet created no later."""
    if not src_on[src]:
        src_on[src] = True
        srcs[sc[5]] = src
        sc[5] += 1
    tl = qtail[src]
    if tl < 0:
        qhead[src] = k
        qtail[src] = k
    elif pcreated[tl] <= created:
        qnext[tl] = k
        qtail[src] = k
    else:
        prev = -1
        cur = qhead[src]
        while cur >= 0 and pcreated[cur] <= created:
            prev = cur
            cur = qnext[cur]
        qnext[k] = cur
        if prev < 0:
            qhead[src] = k
        else:
            qnext[prev] = k


@njit(cache=True)
def _new_packet(sc, pcreated, psrc, pflits, tptr, ntg, qhead, qtail, qnext, srcs, src_on, created, src, flits, nt):
    """Packet ``k = sc[0]`` with ``nt`` targets (the next target ids), queued at ``src``;
    the caller writes the targets' nodes."""
    k = sc[0]
    sc[0] += 1
    sc[1] += nt
    pcreated[k] = created
    psrc[k] = src
    pflits[k] = flits
    tptr[k] = sc[6]
    ntg[k] = nt
    sc[6] += nt
    _enqueue(qhead, qtail, qnext, pcreated, srcs, src_on, sc, k, created, src)
    return k


@njit(cache=True)
def router_add(st, created, src, dst, flits):
    """Add a unicast packet (ids count from 0 in the order added) to ``src``'s queue,
    after every queued packet created no later (so the queue stays in (created, id)
    order); returns its id. Its one target is the next target id. ``created`` must not
    precede the next cycle to simulate (the caller's rule)."""
    k = _new_packet(st.sc, st.created, st.psrc, st.flits, st.tptr, st.ntg, st.qhead, st.qtail, st.qnext, st.srcs,
                    st.src_on, created, src, flits, 1)
    g = st.tptr[k]
    st.tdst[g] = dst
    st.tpk[g] = k
    return k


@njit(cache=True)
def router_add_multicast(st, created, src, dsts, flits):
    """Add a packet to the distinct nodes ``dsts`` (one target each, ids in that order),
    forked along its XY tree; returns its id. With two or more targets the packet is a
    multicast packet: ``flits`` must not exceed the VC buffer (checked by the caller)."""
    k = _new_packet(st.sc, st.created, st.psrc, st.flits, st.tptr, st.ntg, st.qhead, st.qtail, st.qnext, st.srcs,
                    st.src_on, created, src, flits, dsts.shape[0])
    g = st.tptr[k]
    tdst, tpk = st.tdst, st.tpk
    for i in range(dsts.shape[0]):
        tdst[g + i] = dsts[i]
        tpk[g + i] = k
    return k


@_loop_jit
def _next(sc, cq_cnt, srcs, sflit, qhead, pcreated, t):
    if sc[2] != 0 or cq_cnt[0] + cq_cnt[1] + cq_cnt[2] + cq_cnt[3] != 0:
        return t
    nxt = NO_CYCLE
    for i in range(sc[5]):
        n = srcs[i]
        if sflit[n] > 0:
            return t
        h = qhead[n]
        if h >= 0 and pcreated[h] < nxt:
            nxt = pcreated[h]
    return max(t, nxt)


@njit(cache=True)
def router_next(st, t):
    """The next cycle worth simulating from ``t``: ``t`` while flits or credits are in
    flight or a packet is half written, else the first queued creation cycle (at least
    ``t``; :data:`NO_CYCLE` when nothing is queued). Skipping to it changes no cycle of
    the schedule: an empty network does nothing until the next packet is created."""
    return _next(st.sc, st.cq_cnt, st.srcs, st.sflit, st.qhead, st.created, t)


@njit(cache=True, inline="always")
def _route(n, d, W):
    """XY output port at router ``n`` for destination ``d``."""
    x, y = n % W, n // W
    dx, dy = d % W, d // W
    if dx > x:
        return 0
    if dx < x:
        return 1
    if dy > y:
        return 2
    if dy < y:
        return 3
    return 4


@njit(cache=True, inline="always")
def _route_mask(tptr, ntg, tdst, psrc, io_src, n, pk, W):
    """The output ports (bit ``o`` = port ``o``) of packet ``pk``'s copy at router ``n``:
    the XY first hops at ``n`` of every target whose XY path from the source runs
    through ``n`` (row of the source from its column to the target's, then the target's
    column). A tree reaches a router by one path only, so this is the copy's subtree.
    ``io_src`` is the I/O port's source index (it sits west of node 0)."""
    g0, nt = tptr[pk], ntg[pk]
    if nt == 1:
        return 1 << _route(n, tdst[g0], W)
    s = psrc[pk]
    sx, sy, x, y = s % W, s // W, n % W, n // W
    if s == io_src:
        sx, sy = -1, 0
    m = 0
    for g in range(g0, g0 + nt):
        d = tdst[g]
        dx, dy = d % W, d // W
        if (y == sy and min(sx, dx) <= x <= max(sx, dx)) or (x == dx and min(sy, dy) <= y <= max(sy, dy)):
            m |= 1 << _route(n, d, W)
    return m


@njit(cache=True, inline="always")
def _neighbour(n, port, W):
    """The router output ``port`` of router ``n`` leads to."""
    if port == 0:
        return n + 1
    if port == 1:
        return n - 1
    if port == 2:
        return n + W
    return n - W


@njit(cache=True, inline="always")
def _head_at(ist, imask, isent, ifrom, pmask, n, p, v, mask, va_from):
    """Input VC (n, p, v) starts waiting for VC allocation (from cycle ``va_from``) with a
    head at its front whose output ports are ``mask``."""
    ist[n, p, v] = 1
    pmask[0, n * 5 + p] |= 1 << v
    imask[n, p, v] = mask
    isent[n, p, v] = 0
    ifrom[n, p, v] = va_from


@njit(cache=True, inline="always")
def _push(bpkt, bfi, brdy, bcnt, bhead, ist, pmask, occ, act, act_on, sc, n, p, v, pkt, fi, ready, B):
    """Append a flit to input VC (n, p, v) and list router ``n`` as active. The caller
    starts the head's VC allocation (:func:`_head_at`) when the VC was idle. Hot-loop
    helpers take arrays, never the state tuple: passing the tuple costs Numba a
    reference count update per field per call (the kernel ran 2.3x slower for it)."""
    slot = bhead[n, p, v] + bcnt[n, p, v]
    if slot >= B:
        slot -= B
    bpkt[n, p, v, slot] = pkt
    bfi[n, p, v, slot] = fi
    brdy[n, p, v, slot] = ready
    bcnt[n, p, v] += 1
    if ist[n, p, v] == 2:  # a worm's body flit into its held VC: switchable again
        pmask[1, n * 5 + p] |= 1 << v
    if not act_on[n]:
        act_on[n] = True
        act[sc[4]] = n
        sc[4] += 1
    occ[n] += 1
    sc[2] += 1


@_loop_jit
def _inject(prm, sc, created, psrc, tptr, ntg, tdst, flits, head_inj, qnext, qhead, qtail, bpkt, bfi, brdy, bhead,
            bcnt, ist, imask, isent, ifrom, obusy, ofree, ocred, occ, inj_ptr, sflit, svc, act, act_on, srcs,
            lk_lat, lk_ser, lk_free, pmask, t):
    """Step 2 of a cycle: every source writes up to ``I`` flits of its queue's front packets.
    Returns ``t + 1`` if it changed anything, else the earliest cycle stamp (above
    ``t``) its tests compared with (:data:`NO_CYCLE`: none): no test turns true before."""
    W, V, B, Dr, Dinj, I = prm[0], prm[2], prm[3], prm[4], prm[10], prm[12]
    wk = NO_CYCLE
    P = 5
    io = lk_lat.shape[0] - 1  # the I/O link; the I/O source is node io // 4
    N = io // 4
    for i in range(sc[5]):
        n = srcs[i]
        k = 0
        while k < I and qhead[n] >= 0:
            pk = qhead[n]
            if created[pk] > t:
                wk = min(wk, created[pk])
                break
            if n * 4 == io and lk_free[io] > t:
                wk = min(wk, lk_free[io])
                break
            if svc[n] < 0:
                pick = -1
                for j in range(V):
                    w = inj_ptr[n] + j
                    if w >= V:
                        w -= V
                    if not obusy[n, P, w]:
                        if ofree[n, P, w] > t:
                            wk = min(wk, ofree[n, P, w])
                        elif ocred[n, P, w] > 0:
                            pick = w
                            break
                if pick < 0:
                    break
                wk = t + 1
                svc[n] = pick
                obusy[n, P, pick] = True
                inj_ptr[n] = (pick + 1) % V
            w = svc[n]
            if ocred[n, P, w] == 0:
                break
            ocred[n, P, w] -= 1
            wk = t + 1
            if sflit[n] == 0:
                head_inj[pk] = t
            if n == N:  # over the I/O link into node 0's input port E
                dn, dp, rdy = 0, 0, t + lk_lat[io] + lk_ser[io] - 1
                lk_free[io] = t + lk_ser[io]
            else:
                dn, dp, rdy = n, _LOCAL, t + Dinj
            _push(bpkt, bfi, brdy, bcnt, bhead, ist, pmask, occ, act, act_on, sc, dn, dp, w, pk, sflit[n], rdy, B)
            if ist[dn, dp, w] == 0:
                _head_at(ist, imask, isent, ifrom, pmask, dn, dp, w, _route_mask(tptr, ntg, tdst, psrc, N, dn, pk, W),
                         rdy + Dr)
            sflit[n] += 1
            k += 1
            if sflit[n] == flits[pk]:
                obusy[n, P, w] = False
                ofree[n, P, w] = t + 1
                svc[n] = -1
                sflit[n] = 0
                qhead[n] = qnext[pk]
                if qhead[n] < 0:
                    qtail[n] = -1
    return wk


@njit(cache=True, inline="always")
def _request(r_idx, r_p, r_v, r_o, nr, p, v, o, V):
    """Entry ``nr`` of an allocator's request list: input VC ``v`` of port ``p`` (index
    ``p * V + v``) asks for output port ``o``."""
    r_idx[nr] = p * V + v
    r_p[nr] = p
    r_v[nr] = v
    r_o[nr] = o


@njit(cache=True, inline="always")
def _vc_alloc_all(prm, ntg, flits, bpkt, bhead, ist, imask, isent, iovc, ifrom, obusy, ofree, ocred, va_in,
                  va_out, r_idx, r_o, r_w, r_ok, r_p, r_v, act, pmask, m, t):
    """Step 3 at the routers ``act[:m]``: separable input-first VC allocation; a head
    with several output ports requests, in port order, one output VC at each port it
    does not hold yet (a multicast head's must have credits for the whole packet) and
    keeps its grants up to its first loss; it holds them until it has all. Returns what
    :func:`_inject` returns, for this stage."""
    wk = NO_CYCLE
    V = prm[2]
    Dva = prm[5]
    PV = 5 * V
    for i_act in range(m):
        n = act[i_act]
        r0 = n * 5
        if pmask[0, r0] | pmask[0, r0 + 1] | pmask[0, r0 + 2] | pmask[0, r0 + 3] | pmask[0, r0 + 4] == 0:
            continue  # no head waits here
        nr = 0
        for p in range(5):
            wm = pmask[0, r0 + p]
            if wm == 0:
                continue
            for v in range(V):
                if not (wm >> v) & 1:
                    continue
                if ifrom[n, p, v] > t:
                    wk = min(wk, ifrom[n, p, v])
                else:
                    rem = imask[n, p, v] & ~isent[n, p, v]
                    pk = bpkt[n, p, v, bhead[n, p, v]]
                    need = flits[pk] if ntg[pk] > 1 else 0
                    for o in range(5):
                        if not (rem >> o) & 1:
                            continue
                        w = va_in[n, p, v]
                        found = False
                        for j in range(V):
                            if not obusy[n, o, w]:
                                if ofree[n, o, w] > t:
                                    wk = min(wk, ofree[n, o, w])
                                elif o == _LOCAL or ocred[n, o, w] >= need:
                                    _request(r_idx, r_p, r_v, r_o, nr, p, v, o, V)
                                    r_w[nr] = w
                                    nr += 1
                                    found = True
                                    break
                            w = w + 1 if w + 1 < V else 0
                        if not found:
                            break
        if nr:
            wk = t + 1
        for a in range(nr):
            o, w = r_o[a], r_w[a]
            best = -1
            bestkey = PV
            for b in range(nr):
                if r_o[b] == o and r_w[b] == w:
                    key = r_idx[b] - va_out[n, o, w]
                    if key < 0:
                        key += PV
                    if key < bestkey:
                        bestkey = key
                        best = b
            r_ok[a] = best == a
        # commit, per input VC, its grants in port order up to its first loss
        a = 0
        while a < nr:
            idx, p, v = r_idx[a], r_p[a], r_v[a]
            lost = False
            while a < nr and r_idx[a] == idx:
                if not lost and r_ok[a]:
                    o, w = r_o[a], r_w[a]
                    obusy[n, o, w] = True
                    iovc[n, p, v, o] = w
                    va_out[n, o, w] = idx + 1 if idx + 1 < PV else 0
                    va_in[n, p, v] = w + 1 if w + 1 < V else 0
                    isent[n, p, v] |= 1 << o
                else:
                    lost = True
                a += 1
            if isent[n, p, v] == imask[n, p, v]:
                isent[n, p, v] = 0
                ist[n, p, v] = 2
                ifrom[n, p, v] = t + Dva
                pmask[0, r0 + p] &= ~(1 << v)
                pmask[1, r0 + p] |= 1 << v  # its head is still in the buffer
    return wk


@njit(cache=True, inline="always")
def _sw_requests(bhead, brdy, ifrom, iovc, pmask, imask, isent, ocred, sa_in, cap_in, lk_free,
                 r_idx, r_o, r_ok, r_p, r_v, n, t, V):
    """Switch requests at router ``n``: per input port up to ``cap_in`` VCs in round-robin
    order, each asking for every output of its front flit not yet copied there that has a
    credit (one entry per (VC, output)); returns the number of entries and the earliest
    cycle stamp (above ``t``) its tests compared with."""
    wk = NO_CYCLE
    nr = 0
    for p in range(5):
        sm = pmask[1, n * 5 + p]  # the port's VCs in state 2 with flits
        if sm == 0:
            continue
        got = 0
        v = sa_in[n, p]
        for j in range(V):
            if not (sm >> v) & 1:
                pass
            elif ifrom[n, p, v] > t:
                wk = min(wk, ifrom[n, p, v])
            elif brdy[n, p, v, bhead[n, p, v]] > t:
                wk = min(wk, brdy[n, p, v, bhead[n, p, v]])
            else:
                rem = imask[n, p, v] & ~isent[n, p, v]
                added = False
                for o in range(5):
                    if not (rem >> o) & 1:
                        continue
                    if o != _LOCAL:
                        if ocred[n, o, iovc[n, p, v, o]] == 0:
                            continue  # a credit's return is a change
                        if lk_free[n * 4 + o] > t:
                            wk = min(wk, lk_free[n * 4 + o])
                            continue
                    _request(r_idx, r_p, r_v, r_o, nr, p, v, o, V)
                    r_ok[nr] = False
                    nr += 1
                    added = True
                if added:
                    got += 1
                    if got == cap_in[p]:
                        break
            v = v + 1 if v + 1 < V else 0
    return nr, wk


@_loop_jit
def _switch_all(prm, sc, psrc, tptr, ntg, tdst, flits, delivery, bpkt, bfi, brdy, bhead, bcnt, ist, imask, isent,
                iovc, ifrom, obusy, ofree, ocred, cq_vc, cq_due, cq_head, cq_cnt, occ, sa_in, sa_out, eject,
                link_flits, dl_list, r_idx, r_o, r_ok, r_p, r_v, best_b, best_k, last_v, cap_in, act, act_on,
                lk_lat, lk_ser, lk_free, pmask, m, t):
    """Step 4 at the routers ``act[:m]``: separable input-first switch allocation, then
    traversal; a flit leaves its input VC once it has been copied to every output port
    of its packet (asynchronous replication). Returns what :func:`_inject` returns, for
    this stage."""
    wk = NO_CYCLE
    W, V, B, Dr, Dsa, Dst, Dl, Dc, Dinj, Dej, E = (prm[0], prm[2], prm[3], prm[4], prm[6], prm[7], prm[8], prm[9],
                                                   prm[10], prm[11], prm[13])
    P = 5
    PV = P * V
    cap_c = cq_vc.shape[1]
    io = lk_lat.shape[0] - 1  # the I/O link; the I/O source is node io // 4
    N = io // 4
    for i_act in range(m):
        n = act[i_act]
        nr, wr = _sw_requests(bhead, brdy, ifrom, iovc, pmask, imask, isent, ocred, sa_in, cap_in, lk_free,
                          r_idx, r_o, r_ok, r_p, r_v, n, t, V)
        if nr == 0:
            wk = min(wk, wr)
            continue
        wk = t + 1
        # output arbiters: the first request in round-robin order from the pointer, per
        # output; the ejection port repeats for up to E grants (a lone request wins)
        rounds = 1
        if nr == 1:
            r_ok[0] = True
            sa_out[n, r_o[0]] = r_idx[0] + 1 if r_idx[0] + 1 < PV else 0
        while nr > 1:
            for o in range(P):
                best_b[o] = -1
                best_k[o] = PV
            for b in range(nr):
                if r_ok[b]:
                    continue
                o = r_o[b]
                if rounds > 1 and o != _LOCAL:
                    continue
                key = r_idx[b] - sa_out[n, o]
                if key < 0:
                    key += PV
                if key < best_k[o]:
                    best_k[o] = key
                    best_b[o] = b
            granted_local = False
            for o in range(P):
                b = best_b[o]
                if b >= 0:
                    r_ok[b] = True
                    sa_out[n, o] = r_idx[b] + 1 if r_idx[b] + 1 < PV else 0
                    if o == _LOCAL:
                        granted_local = True
            if rounds >= E or not granted_local:
                break
            rounds += 1
        # input pointers: one past the last granted VC in the port's round-robin order
        # (requests were collected in that order)
        for p in range(P):
            last_v[p] = -1
        for b in range(nr):
            if r_ok[b]:
                last_v[r_p[b]] = r_v[b]
        for p in range(P):
            if last_v[p] >= 0:
                sa_in[n, p] = last_v[p] + 1 if last_v[p] + 1 < V else 0
        for b in range(nr):
            if not r_ok[b]:
                continue
            p, v = r_p[b], r_v[b]
            o = r_o[b]
            w = iovc[n, p, v, o]
            h = bhead[n, p, v]
            pk = bpkt[n, p, v, h]
            fi = bfi[n, p, v, h]
            tail = fi == flits[pk] - 1
            if o == _LOCAL:
                te = t + Dsa + Dst + Dej
                if te < eject.shape[0]:
                    eject[te] += 1
                if tail:
                    g = tptr[pk]
                    while tdst[g] != n:
                        g += 1
                    delivery[g] = te
                    sc[1] -= 1
                    dl_list[sc[3]] = g
                    sc[3] += 1
            else:
                li = n * 4 + o
                ocred[n, o, w] -= 1
                link_flits[li] += 1
                lk_free[li] = t + lk_ser[li]
                dn = _neighbour(n, o, W)
                rdy = t + Dsa + Dst + lk_lat[li] + lk_ser[li] - 1
                _push(bpkt, bfi, brdy, bcnt, bhead, ist, pmask, occ, act, act_on, sc, dn, o, w, pk, fi, rdy, B)
                if ist[dn, o, w] == 0:
                    _head_at(ist, imask, isent, ifrom, pmask, dn, o, w, _route_mask(tptr, ntg, tdst, psrc, N, dn, pk, W),
                             rdy + Dr)
            if tail:
                obusy[n, o, w] = False
                ofree[n, o, w] = t + 1
            isent[n, p, v] |= 1 << o
            if isent[n, p, v] != imask[n, p, v]:
                continue
            # copied to every output: the flit leaves; its credit goes back to whoever
            # feeds this input VC
            isent[n, p, v] = 0
            bhead[n, p, v] = h + 1 if h + 1 < B else 0
            bcnt[n, p, v] -= 1
            if bcnt[n, p, v] == 0 or tail:  # empty, or its worm's VC released
                pmask[1, n * 5 + p] &= ~(1 << v)
            # credit FIFOs with one delay each, so each stays in due order: 0 = links of
            # link_cycles, 1 = injection channels, 2 = the other links (one latency), 3 = I/O
            if p == _LOCAL:
                un, uo, due, q = n, P, t + Dc + Dinj, 1
            else:
                if p == 0 and n % W == 0:  # only the I/O port feeds a west-edge router from the west
                    un, uo, li = N, P, io
                else:
                    un, uo = _neighbour(n, p ^ 1, W), p
                    li = un * 4 + uo
                due = t + Dc + lk_lat[li]
                q = 3 if uo == P else (0 if lk_lat[li] == Dl else 2)
            tail_slot = cq_head[q] + cq_cnt[q]
            if tail_slot >= cap_c:
                tail_slot -= cap_c
            cq_vc[q, tail_slot] = (un * (P + 1) + uo) * V + v
            cq_due[q, tail_slot] = due
            cq_cnt[q] += 1
            occ[n] -= 1
            sc[2] -= 1
            if tail:
                ist[n, p, v] = 0
                if bcnt[n, p, v] > 0:
                    nh = bhead[n, p, v]
                    _head_at(ist, imask, isent, ifrom, pmask, n, p, v, _route_mask(tptr, ntg, tdst, psrc, N, n, bpkt[n, p, v, nh], W),
                             max(brdy[n, p, v, nh], t + 1) + Dr)
    return wk


@_loop_jit
def _run(prm, sc, created, psrc, tptr, ntg, tdst, tpk, flits, head_inj, delivery, qnext, qhead, qtail, bpkt, bfi,
         brdy, bhead, bcnt, ist, imask, isent, iovc, ifrom, obusy, ofree, ocred, cq_vc, cq_due, cq_head, cq_cnt,
         occ, va_in, va_out, sa_in, sa_out, inj_ptr, sflit, svc, eject, link_flits, dl_list, r_idx, r_o, r_w,
         r_ok, r_p, r_v, best_b, best_k, last_v, cap_in, act, act_on, srcs, src_on, lk_lat, lk_ser, lk_free, pmask,
         t, t_stop):
    """:func:`router_run` on the state's fields (in :data:`RouterState` order): the
    cycle loop binds them once per call, not once per cycle."""
    sc[3] = 0
    ocred_flat = ocred.reshape(ocred.size)
    cap_c = cq_vc.shape[1]
    while True:
        t = _next(sc, cq_cnt, srcs, sflit, qhead, created, t)
        if t >= t_stop:
            return t
        # wk: t + 1 once the cycle changed anything, else the earliest cycle stamp above
        # t that one of its tests compared with (every stage returns the same)
        wk = NO_CYCLE
        for q in range(4):
            while cq_cnt[q] > 0 and cq_due[q, cq_head[q]] <= t:
                ocred_flat[cq_vc[q, cq_head[q]]] += 1
                cq_head[q] = cq_head[q] + 1 if cq_head[q] + 1 < cap_c else 0
                cq_cnt[q] -= 1
                wk = t + 1
            if cq_cnt[q] > 0:
                wk = min(wk, cq_due[q, cq_head[q]])
        if sc[5]:
            wk = min(wk, _inject(prm, sc, created, psrc, tptr, ntg, tdst, flits, head_inj, qnext, qhead, qtail, bpkt, bfi, brdy,
                    bhead, bcnt, ist, imask, isent, ifrom, obusy, ofree, ocred, occ, inj_ptr, sflit, svc, act, act_on,
                    srcs, lk_lat, lk_ser, lk_free, pmask, t))
        # only routers holding flits act (an empty one has nothing to allocate); routers are
        # order free within a stage, so the list's order is as good as the mesh's
        m = sc[4]
        if m != 0:
            wk = min(wk, _vc_alloc_all(prm, ntg, flits, bpkt, bhead, ist, imask, isent, iovc, ifrom, obusy, ofree,
                                       ocred, va_in, va_out, r_idx, r_o, r_w, r_ok, r_p, r_v, act, pmask, m, t))
            wk = min(wk, _switch_all(prm, sc, psrc, tptr, ntg, tdst, flits, delivery, bpkt, bfi, brdy, bhead, bcnt, ist, imask,
                        isent, iovc, ifrom, obusy, ofree, ocred, cq_vc, cq_due, cq_head, cq_cnt, occ, sa_in, sa_out,
                        eject, link_flits, dl_list, r_idx, r_o, r_ok, r_p, r_v, best_b, best_k, last_v, cap_in, act,
                        act_on, lk_lat, lk_ser, lk_free, pmask, m, t))
            j = 0
            for i in range(sc[4]):
                n = act[i]
                if occ[n] != 0:
                    act[j] = n
                    j += 1
                else:
                    act_on[n] = False
            sc[4] = j
        j = 0
        for i in range(sc[5]):
            n = srcs[i]
            if qhead[n] >= 0:
                srcs[j] = n
                j += 1
            else:
                src_on[n] = False
        sc[5] = j
        t += 1
        if sc[3]:
            return t
        if wk > t:
            # nothing changed: every test of the cycle keeps its outcome until the
            # earliest cycle stamp it compared with, so the cycles before it are idle
            t = min(wk, t_stop)


@_loop_jit
def router_run(st, t, t_stop):
    """Simulate the cycles from ``t`` (the spec's cycle order each: credits due,
    injection, VC allocation, switch allocation and traversal; idle cycles skipped as
    :func:`router_next` does) up to the first cycle in which a packet's tail was
    switched to an ejection port, or until the next cycle worth simulating is
    ``t_stop`` or later. Returns the cycle after the last one simulated (or that next
    cycle, :data:`NO_CYCLE` when nothing is queued); ``st.sc[3]`` = the number of
    targets delivered in the last cycle simulated (``st.dl_list[:k]``, their ``delivery``
    set), 0 when it stopped at ``t_stop``. Same schedule as :func:`router_cycle` called
    at every cycle :func:`router_next` names."""
    return _run(st.prm, st.sc, st.created, st.psrc, st.tptr, st.ntg, st.tdst, st.tpk, st.flits, st.head_inj,
                st.delivery, st.qnext, st.qhead, st.qtail, st.bpkt, st.bfi, st.brdy, st.bhead, st.bcnt, st.ist,
                st.imask, st.isent, st.iovc, st.ifrom, st.obusy, st.ofree, st.ocred, st.cq_vc, st.cq_due,
                st.cq_head, st.cq_cnt, st.occ, st.va_in, st.va_out, st.sa_in, st.sa_out, st.inj_ptr, st.sflit,
                st.svc, st.eject, st.link_flits, st.dl_list, st.r_idx, st.r_o, st.r_w, st.r_ok, st.r_p, st.r_v,
                st.best_b, st.best_k, st.last_v, st.cap_in, st.act, st.act_on, st.srcs, st.src_on, st.lk_lat,
                st.lk_ser, st.lk_free, st.pmask, t, t_stop)


@njit(cache=True)
def router_cycle(st, t):
    """Simulate cycle ``t`` (credits due, injection, VC allocation, switch allocation and
    traversal); returns the number of targets whose packet's tail was switched to their
    ejection port in it (``st.dl_list[:k]``, their ``delivery`` set). An idle cycle
    (:func:`router_next` later than ``t``) changes nothing."""
    router_run(st, t, t + 1)
    return st.sc[3]


@njit(cache=True)
def run_batch(prm, created, src, dst_ptr, dst, flits, lk_lat, lk_ser, max_cycles, stop_when_done):
    """Batch run of ``hwsim.router.simulate_router``: the links' latencies and cycles
    per flit set, every packet added up front (ids in order; each source queue is kept
    in (created, id) order), then :func:`router_run` from delivery to delivery."""
    n_pk = created.shape[0]
    st = router_state(prm, n_pk, max_cycles + prm[6] + prm[7] + prm[11] + 1, dst.shape[0])
    st.lk_lat[:] = lk_lat
    st.lk_ser[:] = lk_ser
    # ids follow the caller's order; queues take (created, id) order whatever the add order
    for k in range(n_pk):
        router_add_multicast(st, created[k], src[k], dst[dst_ptr[k]:dst_ptr[k + 1]], flits[k])
    t = 0
    sc = st.sc
    while t < max_cycles:
        if stop_when_done and sc[1] == 0:
            break
        t = min(router_run(st, t, max_cycles), max_cycles)
    return st.head_inj[:n_pk].copy(), st.delivery[:dst.shape[0]].copy(), st.eject, t
