"""The compiled router kernel of :mod:`hwsim.router` (whose docstring is the spec,
multicast forking included): the incremental state, packet add, idle skip and the cycle
loop; the cycle's stages (injection, VC allocation, switch allocation and traversal)
are in ``hwsim/router_stages.py``.

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
pipeline cycles. (5) The same holds per router and source: one that made no request
(wrote nothing) in a cycle sleeps (``rwake`` / ``swake``) until the earliest stamp its
own tests compared with, or until a credit returns to it, a flit is written into it or
a packet is added to its queue, whichever is first (``hwsim/router_stages.py``).
(6) Flat state: every per-VC array is one-dimensional (:data:`RouterState`), so a visit
computes a VC's index once instead of a stride product and negative-index check per
dimension per access; on ``bench/router_speed.py``'s traffic one-thread CPU fell from
9.6-10.4 ms to 8.0-8.5 ms, on the NIR CNN's wormhole run from 0.236-0.248 s to
0.176-0.193 s (``bench/results/router_speed.md``, "Second speed round"). (7) Streaming
grant: when no output port of a router has two switch requests, every request wins
without the arbiters (``hwsim/router_stages.py``). (8) Lone worms: with one VC per port,
a unicast worm whose head has been ejected holds every channel of its path, so from
then until its source writes its tail its flits' cycles follow from a recurrence
(``hwsim/router_solo.py``, exactness argument there); :func:`router_run` takes it out of
the cycle loop at the start of the next cycle and puts it back at the tail's write, in
the state the cycle loop would have reached (``tests/hwsim/test_router_solo.py``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from .jitflags import loop_jit
from .router_solo import SOLO_MIN_FLITS, solo_attach, solo_detach
from .router_stages import LOCAL_PORT, NO_CYCLE, inject, switch_all, vc_alloc_all

__all__ = ["RouterState", "router_state", "router_add", "router_add_multicast", "router_next", "router_cycle",
           "router_run", "NO_CYCLE", "LOCAL_PORT"]

_LOCAL = LOCAL_PORT

RouterState = namedtuple("RouterState", [
    "prm", "sc", "created", "psrc", "tptr", "ntg", "tdst", "tpk", "flits", "head_inj", "delivery", "qnext", "qhead",
    "qtail", "bpkt", "bfi", "brdy", "bhead", "bcnt", "ist", "imask", "isent", "iovc", "ifrom", "obusy",
    "ofree", "ocred", "cq_vc", "cq_due", "cq_head", "cq_cnt", "occ", "va_in", "va_out", "sa_in", "sa_out",
    "inj_ptr", "sflit", "svc", "eject", "link_flits", "dl_list", "r_idx", "r_o", "r_w", "r_ok", "r_p", "r_v",
    "best_b", "best_k", "last_v", "cap_in", "act", "act_on", "srcs", "src_on", "lk_lat", "lk_ser", "lk_free",
    "pmask", "rwake", "rext", "rloc", "swake", "sdet", "dlist", "drec", "dring", "dvar", "dtok", "dpath", "ymark",
    "cand"])
RouterState.__doc__ = (
    "The router kernel's state: ``prm`` = ``RouterParams.kernel_args()``; ``sc`` = (packets added, targets not yet "
    "delivered, flits in the input buffers, deliveries of the last cycle, active routers, active sources, targets "
    "added); per packet creation, source, first target and number of targets, length, head injection and the next "
    "packet of its source queue; per target its node, packet and delivery; the buffers, VCs and credits, flat "
    "(one dimension each, so a hot loop computes an index once): input VC ``(n, p, v)`` is ``x = (n * 5 + p) * V + "
    "v`` in ``bhead``, ``bcnt``, ``ist``, ``imask``, ``isent``, ``ifrom``, ``va_in``, its buffer slot ``s`` is "
    "``x * B + s`` in ``bpkt``, ``bfi``, ``brdy``, and ``iovc[x * 5 + o]`` its output VC at port ``o``; output VC "
    "``(o, w)`` of router or source ``n`` is ``(n * 6 + o) * V + w`` in ``obusy``, ``ofree``, ``ocred`` (port 5: a "
    "source's injection VCs), ``(n * 5 + o) * V + w`` in ``va_out``; ``sa_in`` / ``sa_out`` are per ``n * 5 + p`` "
    "(``imask`` = the output ports of the packet at the front of an input VC, ``isent`` = those its front flit "
    "has already been copied to); credit FIFOs (``cq_vc`` holds each credit's flat output VC index in the low 32 "
    "bits and, above, 2 x the router or source it returns to, + 1 for a source) and allocator pointers; "
    "``link_flits[n * 4 + port]`` = flits that left router ``n`` through mesh port ``port``; ``dl_list`` = "
    "targets delivered (tail ejected) in the last cycle; ``act`` / ``srcs`` list the routers holding flits and the "
    "sources with queued packets (``sc[4]``, ``sc[5]`` long; ``act_on`` / ``src_on`` flag them), the only ones a cycle visits; "
    "per link ``n * 4 + port`` (and the I/O link, index ``4 N``) its latency, cycles per flit and the cycle it is "
    "free from; ``pmask[0, n * 5 + p]`` / ``pmask[1, n * 5 + p]`` = the VCs of input port ``p`` of router ``n`` "
    "(bit ``v``) waiting for VC allocation (state 1) / holding a VC and flits (state 2, at least one flit), the only "
    "VCs the allocators visit; ``rwake[n]`` / ``swake[s]`` = the first cycle router ``n`` / source ``s`` may "
    "act again (a router or source that changed nothing sleeps until then; see ``hwsim/router_stages.py``), "
    "``rext[n]`` = the earliest ready cycle of a flit pushed into router ``n`` during this cycle's switch stage, "
    "``rloc[n]`` = router ``n``'s VC allocation outcome of this cycle (``t + 1``: it made a request, else its "
    "earliest stamp). Source ``N`` (one past the last node) is the I/O port. The lone-worm fast path "
    "(``hwsim/router_solo.py``): ``sdet[s]`` = the cycle source ``s``'s detached worm is put back (0: none), "
    "``dlist[:sc[8]]`` the sources with one, ``drec[s]`` its record; ``cand[:sc[7]]`` = packets whose head was "
    "ejected in the last cycle; ``dring``, ``dvar``, ``dtok``, ``dpath``, ``ymark`` = its scratch.")


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
    NPV = N * PV  # input VCs, flat index (n * 5 + p) * V + v
    cap = max(cap_packets, 1)
    capt = max(cap_targets if cap_targets >= 0 else cap_packets, 1)
    cap_c = S * (P + 1) * V * B + 1  # credits in flight never exceed the buffer slots
    cap_in = np.ones(P, np.int64)
    cap_in[_LOCAL] = prm[12]
    HM = W + H + 1  # routers on an XY path (at most W + H - 1), the source and one spare
    R = 1  # the fast path's rings: a power of two above (H + 2) B + I (hwsim/router_solo.py)
    while R < (HM + 1) * B + 16:
        R *= 2
    prm2 = np.zeros(15, np.int64)
    prm2[:14] = prm[:14]
    # the lone-worm fast path's record is (S, HM, B + 2), its rings (HM, R); off where large
    # (a caller may set prm[14] = 0 afterwards to switch it off)
    prm2[14] = SOLO_MIN_FLITS if S * HM * (B + 2) <= (1 << 24) and HM * R <= (1 << 22) else 0
    nrec = S if prm2[14] > 0 else 0
    rlen = R if prm2[14] > 0 else 1
    return RouterState(
        prm2, np.zeros(9, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64),
        np.zeros(cap, np.int64), np.zeros(capt, np.int64), np.zeros(capt, np.int64), np.zeros(cap, np.int64),
        np.full(cap, -1, np.int64), np.full(capt, -1, np.int64), np.full(cap, -1, np.int64),
        np.full(S, -1, np.int64), np.full(S, -1, np.int64),
        np.zeros(NPV * B, np.int64), np.zeros(NPV * B, np.int64), np.zeros(NPV * B, np.int64),
        np.zeros(NPV, np.int64), np.zeros(NPV, np.int64), np.zeros(NPV, np.int8),
        np.zeros(NPV, np.int64), np.zeros(NPV, np.int64),
        np.zeros(NPV * P, np.int64), np.zeros(NPV, np.int64),
        np.zeros(S * (P + 1) * V, np.bool_), np.zeros(S * (P + 1) * V, np.int64), np.full(S * (P + 1) * V, B, np.int64),
        np.zeros((4, cap_c), np.int64), np.zeros((4, cap_c), np.int64), np.zeros(4, np.int64), np.zeros(4, np.int64),
        np.zeros(N, np.int64), np.zeros(NPV, np.int64), np.zeros(NPV, np.int64),
        np.zeros(N * P, np.int64), np.zeros(N * P, np.int64), np.zeros(S, np.int64), np.zeros(S, np.int64),
        np.full(S, -1, np.int64), np.zeros(max(eject_len, 0), np.int64), np.zeros(N * 4, np.int64),
        np.zeros(capt, np.int64), np.zeros(P * PV, np.int64), np.zeros(P * PV, np.int64), np.zeros(P * PV, np.int64),
        np.zeros(P * PV, np.bool_), np.zeros(P * PV, np.int64), np.zeros(P * PV, np.int64), np.zeros(P, np.int64),
        np.zeros(P, np.int64), np.zeros(P, np.int64), cap_in, np.zeros(N, np.int64), np.zeros(N, np.bool_),
        np.zeros(S, np.int64), np.zeros(S, np.bool_), np.full(N * 4 + 1, prm[8], np.int64),
        np.ones(N * 4 + 1, np.int64), np.zeros(N * 4 + 1, np.int64), np.zeros((2, N * P), np.int64),
        np.zeros(N, np.int64), np.full(N, NO_CYCLE, np.int64), np.zeros(N, np.int64), np.zeros(S, np.int64),
        np.zeros(S, np.int64), np.zeros(S, np.int64), np.empty((nrec, HM, B + 2), np.int64),
        np.empty((HM, rlen), np.int64), np.empty((HM, 5), np.int64),
        np.empty((HM, B + 2), np.int64),
        np.empty((HM, 3), np.int64), np.zeros(S * (P + 1) * V, np.int64), np.zeros(N, np.int64))


@njit(cache=True, inline="always")
def _enqueue(qhead, qtail, qnext, pcreated, srcs, src_on, swake, sc, k, created, src):
    """Packet ``k`` into ``src``'s queue after every queued packet created no later (the
    source wakes: its queue's front may have changed)."""
    swake[src] = 0
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


@loop_jit
def _new_packet(sc, pcreated, psrc, pflits, tptr, ntg, qhead, qtail, qnext, srcs, src_on, swake, created, src, flits,
                nt):
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
    _enqueue(qhead, qtail, qnext, pcreated, srcs, src_on, swake, sc, k, created, src)
    return k


@loop_jit
def router_add(st, created, src, dst, flits):
    """Add a unicast packet (ids count from 0 in the order added) to ``src``'s queue,
    after every queued packet created no later (so the queue stays in (created, id)
    order); returns its id. Its one target is the next target id. ``created`` must not
    precede the next cycle to simulate (the caller's rule)."""
    k = _new_packet(st.sc, st.created, st.psrc, st.flits, st.tptr, st.ntg, st.qhead, st.qtail, st.qnext, st.srcs,
                    st.src_on, st.swake, created, src, flits, 1)
    g = st.tptr[k]
    st.tdst[g] = dst
    st.tpk[g] = k
    return k


@loop_jit
def router_add_multicast(st, created, src, dsts, flits):
    """Add a packet to the distinct nodes ``dsts`` (one target each, ids in that order),
    forked along its XY tree; returns its id. With two or more targets the packet is a
    multicast packet: ``flits`` must not exceed the VC buffer (checked by the caller)."""
    k = _new_packet(st.sc, st.created, st.psrc, st.flits, st.tptr, st.ntg, st.qhead, st.qtail, st.qnext, st.srcs,
                    st.src_on, st.swake, created, src, flits, dsts.shape[0])
    g = st.tptr[k]
    tdst, tpk = st.tdst, st.tpk
    for i in range(dsts.shape[0]):
        tdst[g + i] = dsts[i]
        tpk[g + i] = k
    return k


@loop_jit
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


@loop_jit
def _run(prm, sc, created, psrc, tptr, ntg, tdst, tpk, flits, head_inj, delivery, qnext, qhead, qtail, bpkt, bfi,
         brdy, bhead, bcnt, ist, imask, isent, iovc, ifrom, obusy, ofree, ocred, cq_vc, cq_due, cq_head, cq_cnt,
         occ, va_in, va_out, sa_in, sa_out, inj_ptr, sflit, svc, eject, link_flits, dl_list, r_idx, r_o, r_w,
         r_ok, r_p, r_v, best_b, best_k, last_v, cap_in, act, act_on, srcs, src_on, lk_lat, lk_ser, lk_free, pmask,
         rwake, rext, rloc, swake, sdet, dlist, drec, dring, dvar, dtok, dpath, ymark, cand, t, t_stop):
    """:func:`router_run` on the state's fields (in :data:`RouterState` order): the
    cycle loop binds them once per call, not once per cycle."""
    sc[3] = 0
    cap_c = cq_vc.shape[1]
    while True:
        t = _next(sc, cq_cnt, srcs, sflit, qhead, created, t)
        if t >= t_stop:
            return t
        if sc[8]:  # detached worms due back (hwsim/router_solo.py)
            j = 0
            for i in range(sc[8]):
                s = dlist[i]
                if sdet[s] <= t:
                    solo_attach(prm, t, s, qhead[s], tptr, tdst, sflit, svc, bpkt, bfi, brdy, bhead, bcnt, ocred,
                                cq_vc, cq_due, cq_head, cq_cnt, occ, sc, act, act_on, pmask, rwake, swake, sdet,
                                lk_lat, lk_ser, lk_free, link_flits, drec, dpath)
                else:
                    dlist[j] = s
                    j += 1
            sc[8] = j
        # wk: t + 1 once the cycle changed anything, else the earliest cycle stamp above
        # t that one of its tests compared with (every stage returns the same)
        wk = NO_CYCLE
        for q in range(4):
            while cq_cnt[q] > 0 and cq_due[q, cq_head[q]] <= t:
                x = cq_vc[q, cq_head[q]]
                ocred[x & 0xFFFFFFFF] += 1
                u = x >> 33  # its router (or source: bit 32) wakes; a credit is a change
                if (x >> 32) & 1:
                    swake[u] = min(swake[u], t)
                else:
                    rwake[u] = min(rwake[u], t)
                cq_head[q] = cq_head[q] + 1 if cq_head[q] + 1 < cap_c else 0
                cq_cnt[q] -= 1
                wk = t + 1
            if cq_cnt[q] > 0:
                wk = min(wk, cq_due[q, cq_head[q]])
        if sc[5]:
            wk = min(wk, inject(prm, sc, created, psrc, tptr, ntg, tdst, flits, head_inj, qnext, qhead, qtail, bpkt, bfi, brdy,
                    bhead, bcnt, ist, imask, isent, ifrom, obusy, ofree, ocred, occ, inj_ptr, sflit, svc, act, act_on,
                    srcs, lk_lat, lk_ser, lk_free, pmask, rwake, swake, sdet, t))
        # only routers holding flits act (an empty one has nothing to allocate); routers are
        # order free within a stage, so the list's order is as good as the mesh's
        m = sc[4]
        if m != 0:
            wk = min(wk, vc_alloc_all(prm, ntg, flits, bpkt, bhead, ist, imask, isent, iovc, ifrom, obusy, ofree,
                                       ocred, va_in, va_out, r_idx, r_o, r_w, r_ok, r_p, r_v, act, pmask, rwake, rloc, m, t))
            wk = min(wk, switch_all(prm, sc, psrc, tptr, ntg, tdst, flits, delivery, bpkt, bfi, brdy, bhead, bcnt, ist, imask,
                        isent, iovc, ifrom, obusy, ofree, ocred, cq_vc, cq_due, cq_head, cq_cnt, occ, sa_in, sa_out,
                        eject, link_flits, dl_list, r_idx, r_o, r_ok, r_p, r_v, best_b, best_k, last_v, cap_in, act,
                        act_on, lk_lat, lk_ser, lk_free, pmask, rwake, rext, rloc, cand, m, t))
            j = 0
            for i in range(sc[4]):
                n = act[i]
                if rext[n] != NO_CYCLE:  # flits pushed in this switch stage
                    rwake[n] = min(rwake[n], rext[n])
                    rext[n] = NO_CYCLE
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
        if sc[7]:  # heads ejected in this cycle: their worms may leave the cycle loop
            for i in range(sc[7]):
                solo_detach(prm, t, cand[i], psrc, tptr, tdst, ntg, flits, qhead, svc, sflit, bpkt, bhead, bcnt, brdy,
                            ist, ocred, cq_vc, cq_due, cq_head, cq_cnt, occ, sc, pmask, lk_lat, lk_ser, lk_free,
                            eject, swake, sdet, dlist, drec, dring, dvar, dtok, dpath, ymark)
            sc[7] = 0
        if sc[3]:
            return t
        if wk > t:
            # nothing changed: every test of the cycle keeps its outcome until the
            # earliest cycle stamp it compared with, so the cycles before it are idle
            t = min(wk, t_stop)


@loop_jit
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
                st.lk_ser, st.lk_free, st.pmask, st.rwake, st.rext, st.rloc, st.swake, st.sdet, st.dlist, st.drec,
                st.dring, st.dvar, st.dtok, st.dpath, st.ymark, st.cand, t, t_stop)


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
