"""The per-cycle stages of the compiled router kernel (``hwsim/router_kernel.py``;
``hwsim/router.py``'s docstring is the spec): injection, VC allocation, switch allocation
and traversal, and the flit-movement helpers they share.

Each stage visits only what is active (the routers holding flits, the sources with
queued packets, the input ports whose ``pmask`` bits are set) and returns ``t + 1`` if
it changed anything, else the earliest cycle stamp (above ``t``) its tests compared
with, which is what lets :func:`hwsim.router_kernel.router_run` skip idle cycles. The
functions that loop compile with :data:`hwsim.jitflags.loop_jit` (no reference counting: they allocate
nothing and index arrays their caller keeps alive); hot helpers take arrays, never the
state tuple.

Sleep. A router's tests in a cycle read its own state, the credits of its outputs and
the flits in its input buffers; a source's read its queue, its injection credits and
the I/O link. So a router that made no request at either allocator, or a source that
wrote nothing, gets the same outcome in every later cycle until (a) the earliest cycle
stamp its tests compared with, or (b) a credit returns to it, (c) a flit is written
into its buffers, or (d) a packet is added to its queue. It sleeps until then:
``rwake[n]`` / ``swake[s]`` hold that cycle, lowered by (b) in ``router_run``'s credit
loop, by (c) at the write (into ``rext`` during the switch stage, applied after it,
because the receiver may have acted earlier in the same cycle and set its own wake-up
without the new flit) and by (d) in ``router_add``. A sleeping router or source is
skipped and reports its wake-up cycle to the idle skip.

Streaming grant. The separable switch allocator's input side is applied while the
requests are collected (per input port up to ``cap_in`` VCs in round-robin order). If
then no output port has two requests (a worm streaming through its held output VC,
alone on its port, is the common case), every output arbiter's round-robin choice is
its only request whatever its pointer, so every request wins: each output pointer
moves one past its winner and each input pointer one past the port's last winner in
collection order, exactly what the arbiters would give (the ejection port's extra
rounds for ``E > 1`` grant nothing more, having no second request). Otherwise the
arbiters run (``tests/hwsim/test_router_stream.py``: where it applies and where it must
not, switch pointers against the twin's every cycle).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .jitflags import loop_jit

__all__ = ["NO_CYCLE", "LOCAL_PORT", "xy_port", "neighbour", "credit_code", "inject", "vc_alloc_all", "switch_all"]


LOCAL_PORT = 4
_LOCAL = LOCAL_PORT
NO_CYCLE = 1 << 62  # router_next's answer when no packet is waiting


@njit(cache=True, inline="always")
def xy_port(n, d, W):
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
        return 1 << xy_port(n, tdst[g0], W)
    s = psrc[pk]
    sx, sy, x, y = s % W, s // W, n % W, n // W
    if s == io_src:
        sx, sy = -1, 0
    m = 0
    for g in range(g0, g0 + nt):
        d = tdst[g]
        dx, dy = d % W, d // W
        if (y == sy and min(sx, dx) <= x <= max(sx, dx)) or (x == dx and min(sy, dy) <= y <= max(sy, dy)):
            m |= 1 << xy_port(n, d, W)
    return m


@njit(cache=True, inline="always")
def credit_code(un, to_source, y):
    """A credit FIFO entry: the credit's flat output VC ``y`` (low 32 bits) and whom it
    wakes (above: ``2 un + 1`` for source ``un``'s injection VC, ``2 un`` for router
    ``un``'s output); :func:`hwsim.router_kernel.router_run`'s credit stage decodes it."""
    return ((2 * un + to_source) << 32) | y


@njit(cache=True, inline="always")
def neighbour(n, port, W):
    """The router output ``port`` of router ``n`` leads to."""
    if port == 0:
        return n + 1
    if port == 1:
        return n - 1
    if port == 2:
        return n + W
    return n - W


@njit(cache=True, inline="always")
def _head_at(ist, imask, isent, ifrom, pmask, n, p, v, x, mask, va_from):
    """Input VC (n, p, v) (flat index ``x``) starts waiting for VC allocation (from cycle
    ``va_from``) with a head at its front whose output ports are ``mask``."""
    ist[x] = 1
    pmask[0, n * 5 + p] |= 1 << v
    imask[x] = mask
    isent[x] = 0
    ifrom[x] = va_from


@njit(cache=True, inline="always")
def _push(bpkt, bfi, brdy, bcnt, bhead, ist, pmask, occ, act, act_on, sc, n, p, v, x, pkt, fi, ready, B):
    """Append a flit to input VC (n, p, v) (flat index ``x``) and list router ``n`` as active. The caller
    starts the head's VC allocation (:func:`_head_at`) when the VC was idle. Hot-loop
    helpers take arrays, never the state tuple: passing the tuple costs Numba a
    reference count update per field per call (the kernel ran 2.3x slower for it)."""
    slot = bhead[x] + bcnt[x]
    if slot >= B:
        slot -= B
    slot += x * B
    bpkt[slot] = pkt
    bfi[slot] = fi
    brdy[slot] = ready
    bcnt[x] += 1
    if ist[x] == 2:  # a worm's body flit into its held VC: switchable again
        pmask[1, n * 5 + p] |= 1 << v
    if not act_on[n]:
        act_on[n] = True
        act[sc[4]] = n
        sc[4] += 1
    occ[n] += 1
    sc[2] += 1


@loop_jit
def inject(prm, sc, created, psrc, tptr, ntg, tdst, flits, head_inj, qnext, qhead, qtail, bpkt, bfi, brdy, bhead,
            bcnt, ist, imask, isent, ifrom, obusy, ofree, ocred, occ, inj_ptr, sflit, svc, act, act_on, srcs,
            lk_lat, lk_ser, lk_free, pmask, rwake, swake, sdet, t):
    """Step 2 of a cycle: every source writes up to ``I`` flits of its queue's front packets
    (a source asleep, ``swake[n] > t``, is skipped; one that changed nothing sleeps until
    its earliest stamp; a router a flit is written into wakes by the flit's ready cycle).
    Returns ``t + 1`` if it changed anything, else the earliest cycle stamp (above
    ``t``) its tests compared with (:data:`NO_CYCLE`: none): no test turns true before."""
    W, V, B, Dr, Dinj, I = prm[0], prm[2], prm[3], prm[4], prm[10], prm[12]
    wk = NO_CYCLE
    P = 5
    io = lk_lat.shape[0] - 1  # the I/O link; the I/O source is node io // 4
    N = io // 4
    for i in range(sc[5]):
        n = srcs[i]
        if swake[n] > t or sdet[n] > t:  # asleep, or its worm detached (hwsim/router_solo.py)
            wk = min(wk, max(swake[n], sdet[n]))
            continue
        lw = NO_CYCLE  # this source's outcome: t + 1 if it changed anything, else its earliest stamp
        y0 = (n * (P + 1) + P) * V  # its injection VCs' flat index base
        k = 0
        while k < I and qhead[n] >= 0:
            pk = qhead[n]
            if created[pk] > t:
                lw = min(lw, created[pk])
                break
            if n * 4 == io and lk_free[io] > t:
                lw = min(lw, lk_free[io])
                break
            if svc[n] < 0:
                pick = -1
                for j in range(V):
                    w = inj_ptr[n] + j
                    if w >= V:
                        w -= V
                    y = y0 + w
                    if not obusy[y]:
                        if ofree[y] > t:
                            lw = min(lw, ofree[y])
                        elif ocred[y] > 0:
                            pick = w
                            break
                if pick < 0:
                    break
                lw = t + 1
                svc[n] = pick
                obusy[y0 + pick] = True
                inj_ptr[n] = (pick + 1) % V
            w = svc[n]
            y = y0 + w
            if ocred[y] == 0:
                break
            ocred[y] -= 1
            lw = t + 1
            if sflit[n] == 0:
                head_inj[pk] = t
            if n == N:  # over the I/O link into node 0's input port E
                dn, dp, rdy = 0, 0, t + lk_lat[io] + lk_ser[io] - 1
                lk_free[io] = t + lk_ser[io]
            else:
                dn, dp, rdy = n, _LOCAL, t + Dinj
            x = (dn * P + dp) * V + w
            _push(bpkt, bfi, brdy, bcnt, bhead, ist, pmask, occ, act, act_on, sc, dn, dp, w, x, pk, sflit[n], rdy, B)
            rwake[dn] = min(rwake[dn], rdy)  # its tests of this flit turn no earlier (routers act after sources)
            if ist[x] == 0:
                _head_at(ist, imask, isent, ifrom, pmask, dn, dp, w, x,
                         _route_mask(tptr, ntg, tdst, psrc, N, dn, pk, W), rdy + Dr)
            sflit[n] += 1
            k += 1
            if sflit[n] == flits[pk]:
                obusy[y] = False
                ofree[y] = t + 1
                svc[n] = -1
                sflit[n] = 0
                qhead[n] = qnext[pk]
                if qhead[n] < 0:
                    qtail[n] = -1
        swake[n] = lw
        wk = min(wk, lw)
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
def vc_alloc_all(prm, ntg, flits, bpkt, bhead, ist, imask, isent, iovc, ifrom, obusy, ofree, ocred, va_in,
                 va_out, r_idx, r_o, r_w, r_ok, r_p, r_v, act, pmask, rwake, rloc, m, t):
    """Step 3 at the routers ``act[:m]``: separable input-first VC allocation; a head
    with several output ports requests, in port order, one output VC at each port it
    does not hold yet (a multicast head's must have credits for the whole packet) and
    keeps its grants up to its first loss; it holds them until it has all. Returns what
    :func:`inject` returns, for this stage."""
    wk = NO_CYCLE
    V, B = prm[2], prm[3]
    Dva = prm[5]
    PV = 5 * V
    for i_act in range(m):
        n = act[i_act]
        if rwake[n] > t:
            continue  # asleep: the switch stage counts its wake-up cycle
        r0 = n * 5
        rloc[n] = NO_CYCLE
        if pmask[0, r0] | pmask[0, r0 + 1] | pmask[0, r0 + 2] | pmask[0, r0 + 3] | pmask[0, r0 + 4] == 0:
            continue  # no head waits here
        lw = NO_CYCLE  # this router's outcome, as the stage's
        nr = 0
        for p in range(5):
            wm = pmask[0, r0 + p]
            if wm == 0:
                continue
            for v in range(V):
                if not (wm >> v) & 1:
                    continue
                x = (r0 + p) * V + v
                if ifrom[x] > t:
                    lw = min(lw, ifrom[x])
                else:
                    rem = imask[x] & ~isent[x]
                    pk = bpkt[x * B + bhead[x]]
                    need = flits[pk] if ntg[pk] > 1 else 0
                    for o in range(5):
                        if not (rem >> o) & 1:
                            continue
                        w = va_in[x]
                        y0 = (n * 6 + o) * V
                        found = False
                        for j in range(V):
                            if not obusy[y0 + w]:
                                if ofree[y0 + w] > t:
                                    lw = min(lw, ofree[y0 + w])
                                elif o == _LOCAL or ocred[y0 + w] >= need:
                                    _request(r_idx, r_p, r_v, r_o, nr, p, v, o, V)
                                    r_w[nr] = w
                                    nr += 1
                                    found = True
                                    break
                            w = w + 1 if w + 1 < V else 0
                        if not found:
                            break
        if nr:
            lw = t + 1
        rloc[n] = lw
        wk = min(wk, lw)
        for a in range(nr):
            o, w = r_o[a], r_w[a]
            best = -1
            bestkey = PV
            vo = va_out[(r0 + o) * V + w]
            for b in range(nr):
                if r_o[b] == o and r_w[b] == w:
                    key = r_idx[b] - vo
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
            x = r0 * V + idx
            lost = False
            while a < nr and r_idx[a] == idx:
                if not lost and r_ok[a]:
                    o, w = r_o[a], r_w[a]
                    obusy[(n * 6 + o) * V + w] = True
                    iovc[x * 5 + o] = w
                    va_out[(r0 + o) * V + w] = idx + 1 if idx + 1 < PV else 0
                    va_in[x] = w + 1 if w + 1 < V else 0
                    isent[x] |= 1 << o
                else:
                    lost = True
                a += 1
            if isent[x] == imask[x]:
                isent[x] = 0
                ist[x] = 2
                ifrom[x] = t + Dva
                pmask[0, r0 + p] &= ~(1 << v)
                pmask[1, r0 + p] |= 1 << v  # its head is still in the buffer
    return wk


@njit(cache=True, inline="always")
def _sw_requests(bhead, brdy, ifrom, iovc, pmask, imask, isent, ocred, sa_in, cap_in, lk_free,
                 r_idx, r_o, r_ok, r_p, r_v, n, t, V, B):
    """Switch requests at router ``n``: per input port up to ``cap_in`` VCs in round-robin
    order, each asking for every output of its front flit not yet copied there that has a
    credit (one entry per (VC, output)); returns the number of entries, the earliest
    cycle stamp (above ``t``) its tests compared with, and whether some output port has
    two or more requests (else every request wins: no arbitration needed)."""
    wk = NO_CYCLE
    nr = 0
    om = 0  # the output ports requested so far (bit o)
    clash = False
    for p in range(5):
        sm = pmask[1, n * 5 + p]  # the port's VCs in state 2 with flits
        if sm == 0:
            continue
        got = 0
        x0 = (n * 5 + p) * V
        v = sa_in[n * 5 + p]
        for j in range(V):
            x = x0 + v
            if not (sm >> v) & 1:
                pass
            elif ifrom[x] > t:
                wk = min(wk, ifrom[x])
            elif brdy[x * B + bhead[x]] > t:
                wk = min(wk, brdy[x * B + bhead[x]])
            else:
                rem = imask[x] & ~isent[x]
                added = False
                for o in range(5):
                    if not (rem >> o) & 1:
                        continue
                    if o != _LOCAL:
                        if ocred[(n * 6 + o) * V + iovc[x * 5 + o]] == 0:
                            continue  # a credit's return is a change
                        if lk_free[n * 4 + o] > t:
                            wk = min(wk, lk_free[n * 4 + o])
                            continue
                    _request(r_idx, r_p, r_v, r_o, nr, p, v, o, V)
                    r_ok[nr] = False
                    nr += 1
                    added = True
                    if (om >> o) & 1:
                        clash = True
                    om |= 1 << o
                if added:
                    got += 1
                    if got == cap_in[p]:
                        break
            v = v + 1 if v + 1 < V else 0
    return nr, wk, clash


@loop_jit
def switch_all(prm, sc, psrc, tptr, ntg, tdst, flits, delivery, bpkt, bfi, brdy, bhead, bcnt, ist, imask, isent,
                iovc, ifrom, obusy, ofree, ocred, cq_vc, cq_due, cq_head, cq_cnt, occ, sa_in, sa_out, eject,
                link_flits, dl_list, r_idx, r_o, r_ok, r_p, r_v, best_b, best_k, last_v, cap_in, act, act_on,
                lk_lat, lk_ser, lk_free, pmask, rwake, rext, rloc, cand, m, t):
    """Step 4 at the routers ``act[:m]`` that are awake: separable input-first switch allocation, then
    traversal; a flit leaves its input VC once it has been copied to every output port
    of its packet (asynchronous replication). Returns what :func:`inject` returns, for
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
        if rwake[n] > t:
            wk = min(wk, rwake[n])
            continue
        nr, wr, clash = _sw_requests(bhead, brdy, ifrom, iovc, pmask, imask, isent, ocred, sa_in, cap_in, lk_free,
                                     r_idx, r_o, r_ok, r_p, r_v, n, t, V, B)
        if nr == 0:
            # no request at either stage: asleep until its earliest stamp or a flit or
            # credit arriving (rext, the credit loop of router_run wake it)
            rwake[n] = min(wr, rloc[n])
            wk = min(wk, wr)
            continue
        rwake[n] = t + 1
        wk = t + 1
        # output arbiters: the first request in round-robin order from the pointer, per
        # output; the ejection port repeats for up to E grants
        if not clash:
            # streaming: every output has one request (its worm's flit, say), which wins
            # whatever the pointer; each output pointer moves one past its winner, each
            # input pointer one past the port's last winner in collection (= round-robin) order
            for b in range(nr):
                r_ok[b] = True
                sa_out[n * 5 + r_o[b]] = r_idx[b] + 1 if r_idx[b] + 1 < PV else 0
                sa_in[n * 5 + r_p[b]] = r_v[b] + 1 if r_v[b] + 1 < V else 0
        else:
            rounds = 1
            while True:
                for o in range(P):
                    best_b[o] = -1
                    best_k[o] = PV
                for b in range(nr):
                    if r_ok[b]:
                        continue
                    o = r_o[b]
                    if rounds > 1 and o != _LOCAL:
                        continue
                    key = r_idx[b] - sa_out[n * 5 + o]
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
                        sa_out[n * 5 + o] = r_idx[b] + 1 if r_idx[b] + 1 < PV else 0
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
                    sa_in[n * 5 + p] = last_v[p] + 1 if last_v[p] + 1 < V else 0
        for b in range(nr):
            if not r_ok[b]:
                continue
            p, v = r_p[b], r_v[b]
            o = r_o[b]
            x = n * PV + r_idx[b]  # flat input VC index (n * 5 + p) * V + v
            w = iovc[x * 5 + o]
            h = bhead[x]
            pk = bpkt[x * B + h]
            fi = bfi[x * B + h]
            tail = fi == flits[pk] - 1
            if o == _LOCAL:
                te = t + Dsa + Dst + Dej
                if te < eject.shape[0]:
                    eject[te] += 1
                if fi == 0 and V == 1 and prm[14] > 0 and ntg[pk] == 1:
                    cand[sc[7]] = pk  # a candidate for the lone-worm fast path (hwsim/router_solo.py)
                    sc[7] += 1
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
                ocred[(n * 6 + o) * V + w] -= 1
                link_flits[li] += 1
                lk_free[li] = t + lk_ser[li]
                dn = neighbour(n, o, W)
                rdy = t + Dsa + Dst + lk_lat[li] + lk_ser[li] - 1
                xd = (dn * P + o) * V + w
                _push(bpkt, bfi, brdy, bcnt, bhead, ist, pmask, occ, act, act_on, sc, dn, o, w, xd, pk, fi, rdy, B)
                rext[dn] = min(rext[dn], rdy)  # dn may act before this in the cycle: woken after it
                if ist[xd] == 0:
                    _head_at(ist, imask, isent, ifrom, pmask, dn, o, w, xd,
                             _route_mask(tptr, ntg, tdst, psrc, N, dn, pk, W), rdy + Dr)
            if tail:
                y = (n * 6 + o) * V + w
                obusy[y] = False
                ofree[y] = t + 1
            isent[x] |= 1 << o
            if isent[x] != imask[x]:
                continue
            # copied to every output: the flit leaves; its credit goes back to whoever
            # feeds this input VC
            isent[x] = 0
            bhead[x] = h + 1 if h + 1 < B else 0
            bcnt[x] -= 1
            if bcnt[x] == 0 or tail:  # empty, or its worm's VC released
                pmask[1, n * 5 + p] &= ~(1 << v)
            # credit FIFOs with one delay each, so each stays in due order: 0 = links of
            # link_cycles, 1 = injection channels, 2 = the other links (one latency), 3 = I/O
            if p == _LOCAL:
                un, uo, due, q = n, P, t + Dc + Dinj, 1
            else:
                if p == 0 and n % W == 0:  # only the I/O port feeds a west-edge router from the west
                    un, uo, li = N, P, io
                else:
                    un, uo = neighbour(n, p ^ 1, W), p
                    li = un * 4 + uo
                due = t + Dc + lk_lat[li]
                q = 3 if uo == P else (0 if lk_lat[li] == Dl else 2)
            tail_slot = cq_head[q] + cq_cnt[q]
            if tail_slot >= cap_c:
                tail_slot -= cap_c
            # the credit's output VC (flat index into ocred, low 32 bits) and whom it wakes
            # (high bits: 2 un + 1 for a source's injection VC, 2 un for a router's output)
            cq_vc[q, tail_slot] = credit_code(un, np.int64(uo == P), (un * (P + 1) + uo) * V + v)
            cq_due[q, tail_slot] = due
            cq_cnt[q] += 1
            occ[n] -= 1
            sc[2] -= 1
            if tail:
                ist[x] = 0
                if bcnt[x] > 0:
                    nh = x * B + bhead[x]
                    _head_at(ist, imask, isent, ifrom, pmask, n, p, v, x,
                             _route_mask(tptr, ntg, tdst, psrc, N, n, bpkt[nh], W), max(brdy[nh], t + 1) + Dr)
    return wk
