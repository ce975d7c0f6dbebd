"""The lone-worm fast path of the compiled router kernel (``hwsim/router_kernel.py``;
``hwsim/router.py``'s docstring is the spec): a long unicast worm that holds every
channel of its path is computed by a recurrence instead of cycle by cycle.

When it applies. With one VC per port (``V = 1``) an output VC is its link: a worm
that holds output VC ``(n, o)`` is the only one that requests output ``o`` of router
``n``, and the only one whose flits are in the input VC it feeds. Once the head of a
unicast packet has crossed the switch into its destination's ejection port, the worm
holds every channel from its source's injection VC to that ejection VC, and holds
them until its tail crosses each. Until its source writes the tail, no other flit
can enter any of its input VCs, no other request can compete for any of its outputs,
its links carry nothing else, and the only other credits of its output VCs are those
already in the credit FIFOs (returned by flits that left before). Its flits' moves
are then a function of its own state alone, and nothing else reads that state except
through the allocators' VC tests (``obusy``, held throughout). So from the cycle
``t_s`` after the head's ejection to the cycle ``t_e`` in which the source writes the
tail, the kernel takes the worm out of the cycle loop (*detach*: its input VCs leave
the switch allocator's masks, its flits the occupancy counts, its source sleeps) and
puts it back at the start of cycle ``t_e`` in exactly the state the cycle loop would
have reached (*attach*). The tail and the last flits behind it go through the cycle
loop as before (after ``t_e`` a new head may follow the tail into a VC).

The recurrence (exact by the spec's rules; routers ``h = 0 .. H`` along the XY path, the
source before hop 0). Flit ``i`` crosses the switch of hop ``h`` at

``S[h][i] = max(S[h][i - 1] + 1, rdy[h][i], free[h], tok[h][i])``

(one flit per VC per cycle; usable there; its link free; a credit), the first cycle
all hold, since each condition stays true once true until the flit uses it (the
resources are the worm's alone, and with one request per output no arbiter decides).
``rdy[0][i] = W[i] + Dinj``, ``rdy[h][i] = S[h - 1][i] + Dsa + Dst + lat + ser - 1``;
``free[h]`` = the previous send on the link + ``ser``; at the ejection hop there is no
link and no credit. Credits: the ``k``-th send of a hop in the window takes the
``k``-th credit, in time order: the output VC's credits at ``t_s``, then those pending
in the FIFOs (due ``d``, usable from ``max(d, t_s)``), then those its own flits return:
the ``j``-th departure from the next hop, usable ``Dc + lat`` later (``Dc + Dinj`` for
the injection VC). Because every output VC has ``B`` credits in all (free + pending +
flits downstream), that departure is always exactly ``B`` departures back, already
computed. The source writes flit ``i`` at ``W[i] = max(W[i - 1] (+ 1 once it wrote
I flits in that cycle), its injection credit)``; ``t_e = W[L - 1]``.

One pass finds ``t_e`` (its rings keep every departure not yet made at ``t_e`` and the
``B`` before them); then, per hop, the number of departures before ``t_e`` and the last
``B`` of their cycles are recorded (all that attach needs: the flits left in each
buffer, their ready cycles, the credits still in flight, the links' free cycles), and
the ejected flits are counted per cycle. ``tests/hwsim/test_router_solo.py``
holds the kernel with the fast path equal to the kernel without it and to the twin
(``hwsim/router_ref.py``) on random traffic, and checks where it must not apply.
``prm[14]`` = the fewest flits left to write for which a worm is detached (0: never).
"""

from __future__ import annotations

from numba import njit

from .router_stages import LOCAL_PORT, NO_CYCLE, credit_code, neighbour, xy_port

__all__ = ["SOLO_MIN_FLITS", "solo_detach", "solo_attach"]

#: default of ``prm[14]``: detach a worm only with at least this many flits left to write
SOLO_MIN_FLITS = 16

_P = 5
_LOCAL = LOCAL_PORT


@njit(cache=True)
def _path(src, dst, W, dpath):
    """Routers of the XY path into ``dpath[h] = (node, input port, output port)``; returns
    their number ``H + 1``."""
    n, p, h = src, _LOCAL, 0
    while True:
        o = xy_port(n, dst, W)
        dpath[h, 0], dpath[h, 1], dpath[h, 2] = n, p, o
        h += 1
        if o == _LOCAL:
            return h
        n, p = neighbour(n, o, W), o


@njit(cache=True)
def _schedule(prm, L, s0, nh, dpath, lk_lat, lk_ser, lk_free, bhead, bcnt, brdy, dtok, dring, dvar, t_s, eject):
    """The recurrence of the module docstring from the start of cycle ``t_s``; returns
    ``t_e = W[L - 1]``. Index ``hh``: 0 = the source's writes, ``1 + h`` = departures from
    hop ``h``. ``dtok[hh]`` = (credits at ``t_s``, pending credits, their usable cycles) of
    the output VC that hop ``hh - 1`` (the source for 0) sends on. ``dvar[hh]`` = (last
    departure, departures so far, link free from, first flit of the hop's buffer at
    ``t_s``, first flit to depart); ``dring[hh, k & M]`` = the cycle of departure ``k``
    (``M + 1`` = the ring's length, a power of two above ``(H + 2) B + I``: every
    departure not yet made at ``t_e`` and the ``B`` before them stay in it, for
    :func:`_record`). Every ejection counts in ``eject``; :func:`_record` takes back those
    at or after ``t_e``."""
    V, B = prm[2], prm[3]
    Dsa, Dst, Dc, Dinj, Dej, I = prm[6], prm[7], prm[9], prm[10], prm[11], prm[12]
    M = dring.shape[1] - 1
    behind = 0  # flits in the buffers of hops 0 .. h: the highest indices below s0
    for h in range(nh):
        x = (dpath[h, 0] * _P + dpath[h, 1]) * V
        behind += bcnt[x]
        dvar[h + 1, 0] = t_s - 1
        dvar[h + 1, 1] = 0
        dvar[h + 1, 2] = lk_free[dpath[h, 0] * 4 + dpath[h, 2]] if dpath[h, 2] != _LOCAL else 0
        dvar[h + 1, 3] = s0 - behind  # flits [s0 - behind, + bcnt) are in hop h's buffer
        dvar[h + 1, 4] = -1
    dvar[0, 0] = t_s
    dvar[0, 1] = 0
    dvar[0, 4] = s0
    wcyc = 0  # flits written in cycle dvar[0, 0]
    hcur = nh - 1
    for i in range(s0 - behind, L):
        if i < s0:
            # flit i is in a buffer: the one whose block holds it (blocks rise upstream)
            while i >= dvar[hcur + 1, 3] + bcnt[(dpath[hcur, 0] * _P + dpath[hcur, 1]) * V]:
                hcur -= 1
            x = (dpath[hcur, 0] * _P + dpath[hcur, 1]) * V
            s = bhead[x] + (i - dvar[hcur + 1, 3])
            if s >= B:
                s -= B
            r = brdy[x * B + s]
            h0 = hcur
        else:
            # the source writes flit i with the k-th injection credit
            k = dvar[0, 1]
            a0, a1 = dtok[0, 0], dtok[0, 0] + dtok[0, 1]
            if k < a0:
                tok = t_s
            elif k < a1:
                tok = dtok[0, 2 + k - a0]
            else:
                tok = dring[1, (k - a1) & M] + Dc + Dinj
            w = dvar[0, 0] if wcyc < I else dvar[0, 0] + 1
            if tok > w:
                w = tok
            wcyc = wcyc + 1 if w == dvar[0, 0] else 1
            dvar[0, 0] = w
            if i == L - 1:
                return w  # the tail's write: t_e
            dring[0, k & M] = w
            dvar[0, 1] = k + 1
            r = w + Dinj
            h0 = 0
        for h in range(h0, nh):
            hh = h + 1
            n, o = dpath[h, 0], dpath[h, 2]
            s = dvar[hh, 0] + 1
            if r > s:
                s = r
            k = dvar[hh, 1]
            if o != _LOCAL:
                li = n * 4 + o
                if dvar[hh, 2] > s:
                    s = dvar[hh, 2]
                a0, a1 = dtok[hh, 0], dtok[hh, 0] + dtok[hh, 1]
                if k < a0:
                    tok = t_s
                elif k < a1:
                    tok = dtok[hh, 2 + k - a0]
                else:
                    tok = dring[hh + 1, (k - a1) & M] + Dc + lk_lat[li]
                if tok > s:
                    s = tok
                dvar[hh, 2] = s + lk_ser[li]
                r = s + Dsa + Dst + lk_lat[li] + lk_ser[li] - 1
            else:
                te = s + Dsa + Dst + Dej
                if te < eject.shape[0]:
                    eject[te] += 1
            dvar[hh, 0] = s
            if k == 0:
                dvar[hh, 4] = i
            dring[hh, k & M] = s
            dvar[hh, 1] = k + 1
    return NO_CYCLE


@njit(cache=True)
def _record(prm, nh, dring, dvar, t_e, rec, eject):
    """After :func:`_schedule`: ``rec[hh]`` = (departures before ``t_e``, the first flit
    to depart, the last ``B`` of their cycles by departure number mod ``B``); the
    ejections at or after ``t_e`` leave ``eject`` (the cycle loop counts them)."""
    B, Dsa, Dst, Dej = prm[3], prm[6], prm[7], prm[11]
    M = dring.shape[1] - 1
    for hh in range(nh + 1):
        n = dvar[hh, 1]
        j = n - 1
        while j >= 0 and dring[hh, j & M] >= t_e:
            if hh == nh:
                te = dring[hh, j & M] + Dsa + Dst + Dej
                if te < eject.shape[0]:
                    eject[te] -= 1
            j -= 1
        n = j + 1
        rec[hh, 0] = n
        rec[hh, 1] = dvar[hh, 4]
        for k in range(max(0, n - B), n):
            rec[hh, 2 + k % B] = dring[hh, k & M]


@njit(cache=True)
def solo_detach(prm, t, pk, psrc, tptr, tdst, ntg, flits, qhead, svc, sflit, bpkt, bhead, bcnt, brdy, ist, ocred,
                cq_vc, cq_due, cq_head, cq_cnt, occ, sc, pmask, lk_lat, lk_ser, lk_free, eject, swake, sdet, dlist,
                drec, dring, dvar, dtok, dpath, ymark):
    """At the start of cycle ``t``, take packet ``pk`` (whose head was ejected in cycle
    ``t - 1``) out of the cycle loop if the module's conditions hold and it has at least
    ``prm[14]`` flits left to write; returns whether it did. Its re-attach cycle is
    ``sdet[src]`` (the source sleeps until then; ``inject`` skips it)."""
    W, V, B = prm[0], prm[2], prm[3]
    if V != 1 or prm[14] <= 0 or ntg[pk] != 1:
        return False
    io = lk_lat.shape[0] - 1
    src = psrc[pk]
    if src * 4 == io or qhead[src] != pk or svc[src] < 0 or sdet[src] != 0:
        return False
    L, s0 = flits[pk], sflit[src]
    if s0 < 1 or L - s0 < prm[14] or drec.shape[1] < 2:
        return False
    dst = tdst[tptr[pk]]
    nh = _path(src, dst, W, dpath)
    if nh + 1 > drec.shape[1]:
        return False
    # every buffer of the path holds only this worm's flits, behind its held VCs
    for h in range(nh):
        x = (dpath[h, 0] * _P + dpath[h, 1]) * V
        if ist[x] != 2:
            return False
        s = bhead[x]
        for _ in range(bcnt[x]):
            if bpkt[x * B + s] != pk:
                return False
            s = s + 1 if s + 1 < B else 0
    # credits of the output VCs it sends on: now, and pending in the FIFOs (due order per FIFO)
    y_inj = (src * (_P + 1) + _P) * V + svc[src]
    ymark[y_inj] = 1
    dtok[0, 0], dtok[0, 1] = ocred[y_inj], 0
    for h in range(nh - 1):
        y = (dpath[h, 0] * (_P + 1) + dpath[h, 2]) * V
        ymark[y] = h + 2
        dtok[h + 1, 0], dtok[h + 1, 1] = ocred[y], 0
    cap_c = cq_vc.shape[1]
    ok = True
    for q in range(4):
        s = cq_head[q]
        for _ in range(cq_cnt[q]):
            y = cq_vc[q, s] & 0xFFFFFFFF
            m = ymark[y]
            if m > 0:
                hh = m - 1
                c = dtok[hh, 1]
                if c >= B:
                    ok = False
                else:
                    dtok[hh, 2 + c] = max(cq_due[q, s], t)
                    dtok[hh, 1] = c + 1
            s = s + 1 if s + 1 < cap_c else 0
    ymark[y_inj] = 0
    for h in range(nh - 1):
        ymark[(dpath[h, 0] * (_P + 1) + dpath[h, 2]) * V] = 0
    # every output VC's B credits are free, pending or spent on a flit in the buffer it feeds
    for hh in range(nh):
        x = (dpath[hh, 0] * _P + dpath[hh, 1]) * V
        if dtok[hh, 0] + dtok[hh, 1] + bcnt[x] != B:
            ok = False
    if not ok:
        return False
    # eject counts every ejection the recurrence computes and _record takes back the late
    # ones, so the worm is detached whatever t_e is (a short window costs only the work)
    t_e = _schedule(prm, L, s0, nh, dpath, lk_lat, lk_ser, lk_free, bhead, bcnt, brdy, dtok, dring, dvar, t, eject)
    _record(prm, nh, dring, dvar, t_e, drec[src], eject)
    for h in range(nh):
        n, p = dpath[h, 0], dpath[h, 1]
        x = (n * _P + p) * V
        occ[n] -= bcnt[x]
        sc[2] -= bcnt[x]
        pmask[1, n * _P + p] &= ~1
    sdet[src] = t_e
    swake[src] = t_e
    dlist[sc[8]] = src
    sc[8] += 1
    return True


@njit(cache=True, inline="always")
def _cq_insert(cq_vc, cq_due, cq_head, cq_cnt, q, code, due):
    """A credit into FIFO ``q`` at its place in due order (equal dues: any order; they are
    returned in the same cycle)."""
    cap_c = cq_vc.shape[1]
    i = cq_cnt[q]
    while i > 0:
        a = cq_head[q] + i - 1
        if a >= cap_c:
            a -= cap_c
        if cq_due[q, a] <= due:
            break
        b = a + 1 if a + 1 < cap_c else 0
        cq_vc[q, b] = cq_vc[q, a]
        cq_due[q, b] = cq_due[q, a]
        i -= 1
    b = cq_head[q] + i
    if b >= cap_c:
        b -= cap_c
    cq_vc[q, b] = code
    cq_due[q, b] = due
    cq_cnt[q] += 1


@njit(cache=True)
def solo_attach(prm, t, src, pk, tptr, tdst, sflit, svc, bpkt, bfi, brdy, bhead, bcnt, ocred, cq_vc, cq_due, cq_head,
                cq_cnt, occ, sc, act, act_on, pmask, rwake, swake, sdet, lk_lat, lk_ser, lk_free, link_flits, drec,
                dpath):
    """At the start of cycle ``t = sdet[src]``: put ``src``'s detached worm ``pk`` back in
    the state the cycle loop would have reached (buffers, occupancy, switch masks, link
    free cycles and flit counts, credits free and pending, its source's written flits)."""
    W, V, B = prm[0], prm[2], prm[3]
    Dsa, Dst, Dl, Dc, Dinj = prm[6], prm[7], prm[8], prm[9], prm[10]
    rec = drec[src]
    nh = _path(src, tdst[tptr[pk]], W, dpath)
    for h in range(nh):
        n, p, o = dpath[h, 0], dpath[h, 1], dpath[h, 2]
        x = (n * _P + p) * V
        nd = rec[h + 1, 0]
        take = min(nd, bcnt[x])  # departures of flits that were in the buffer at detach
        bhead[x] = (bhead[x] + nd) % B  # each departure moved the ring's head by one
        bcnt[x] -= take
        # the flits that entered in the window and are still here, in order
        nu, fu = rec[h, 0], rec[h, 1]
        if h == 0:
            dly = Dinj
        else:
            lu = dpath[h - 1, 0] * 4 + dpath[h - 1, 2]
            dly = Dsa + Dst + lk_lat[lu] + lk_ser[lu] - 1
        for j in range(nd - take, nu):
            s = bhead[x] + bcnt[x]
            if s >= B:
                s -= B
            bpkt[x * B + s] = pk
            bfi[x * B + s] = fu + j
            brdy[x * B + s] = rec[h, 2 + j % B] + dly
            bcnt[x] += 1
        if bcnt[x] > 0:
            occ[n] += bcnt[x]
            sc[2] += bcnt[x]
            pmask[1, n * _P + p] |= 1
            if not act_on[n]:
                act_on[n] = True
                act[sc[4]] = n
                sc[4] += 1
        rwake[n] = min(rwake[n], t)
        if o != _LOCAL:
            li = n * 4 + o
            if nd > 0:
                lk_free[li] = rec[h + 1, 2 + (nd - 1) % B] + lk_ser[li]
                link_flits[li] += nd
            # credits its own flits returned: applied before t, or pending in the FIFO
            y = (n * (_P + 1) + o) * V
            code = credit_code(n, 0, y)
            q = 0 if lk_lat[li] == Dl else 2
            _own_credits(ocred, cq_vc, cq_due, cq_head, cq_cnt, rec[h + 2], nd, y, code, q, Dc + lk_lat[li], t, B)
    # the source: flits written in the window, its injection credits
    nw = rec[0, 0]
    sflit[src] += nw
    y = (src * (_P + 1) + _P) * V + svc[src]
    _own_credits(ocred, cq_vc, cq_due, cq_head, cq_cnt, rec[1], nw, y, credit_code(src, 1, y), 1, Dc + Dinj, t, B)
    swake[src] = min(swake[src], t)
    sdet[src] = 0


@njit(cache=True, inline="always")
def _own_credits(ocred, cq_vc, cq_due, cq_head, cq_cnt, down, sent, y, code, q, delay, t, B):
    """Output VC ``y`` sent ``sent`` flits in the window; ``down`` = the record of the hop
    they went to: each departure from there returned a credit ``delay`` later, applied if
    due before ``t``, else pending in FIFO ``q``."""
    nd = down[0]
    pend = 0
    j = nd - 1
    while j >= 0 and j >= nd - B:
        due = down[2 + j % B] + delay
        if due < t:
            break
        _cq_insert(cq_vc, cq_due, cq_head, cq_cnt, q, code, due)
        pend += 1
        j -= 1
    ocred[y] += nd - pend - sent
