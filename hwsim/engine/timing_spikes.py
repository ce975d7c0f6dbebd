"""A step's spike packets through the ideal NoC model, simulated per route class (Numba).

The model is :mod:`hwsim.noc`'s, unchanged: every link a FIFO server in ``(ready cycle,
edge)`` order, cut-through, one flit per link per cycle; :func:`hwsim.noc.run_into`
simulates it edge by edge, each packet with its own copy of its route. This module
computes the same schedule with less work for spike packets, whose routes come in
classes: every neuron of a route class (same source core, same destination cores:
the route classes of :func:`hwsim.engine.timing_plan.timing_plan`) sends along the same template route, and all
its packets of a step are injected together, when the core's fire phase ends.

Per class ``c`` with ``n_c`` packets (in neuron order, ``k = 0 .. n_c - 1``) and a
template of ``m_c`` edges, the start cycles are one block ``S[c][j][k]`` (edge ``j`` of
the template, packet ``k``). Links are served in the topological order of
:func:`hwsim.noc.link_order`, so when link ``l`` comes up every parent edge is done. Its
requests are the (class, template edge) pairs on it; each pair's packets are ready at

    ready(c, j, k) = t0_c + R                        (j the root edge)
                   = S[c][parent(j)][k] + W + R      (otherwise),

strictly increasing in ``k`` (a packet holds a link at least one cycle, and FIFO keeps
a class's packets in order). The link serves the merged requests in ``(ready, packet,
j)`` order (the packet's place in the step's neuron-order list, then the template
edge: exactly :func:`hwsim.noc.run_into`'s edge order, as a packet's edges are numbered
in template order after those of the packets before it): ``S = max(ready, free)``,
``free = S + L`` with ``L`` the packet's flits. A link with one pair needs no merge; a
link with several merges their sorted runs through a binary min-heap of their heads
(VGG-16 CIFAR: 48 pairs on an average merged link; its cycle-level run of 4 samples
took 0.77 s with a linear scan of the heads, 0.60 s with the heap).

Delivery at a destination whose last template edge is ``d`` (``d < 0``: on the source
core): ``S[c][d][k] + W + L - 1`` (``t0_c + L - 1``), plus ``cross * extra`` for chip
boundaries, as in :func:`hwsim.engine.timing._arrival`.

A pair alone on its link (no other class crosses it this step) below the root never
waits: its packets are ready at ``S[c][parent][k] + W + R``, and ``S[c][parent][k] >=
S[c][parent][k-1] + L_{k-1}`` (its parent link served them in order), so ``ready_k >=
ready_{k-1} + L_{k-1} = free`` and ``S[c][j][k] = S[c][parent][k] + W + R``. Such a
pair stores no block: it keeps its parent's block and a shift (``a_blk``, ``a_sh``), so
its cost is O(1) instead of O(n_c). The same holds for every pair of a link whose pairs
all come from ONE parent link ``l'`` (one stream; none at its root): ``l'`` served their
packets one after the other, ``S' >= S'_prev + L_prev`` in its service order, so their
ready cycles ``S' + W + R`` keep those gaps, no two are equal and none waits on ``l``.
Blocks are written only at the root and on links where streams merge; deliveries
read a block plus its shift. (ResNet-18 CIFAR, one sample of 4 steps, counted from the
tables: 95,497 spike packets in 32,677 class slots, 2.43 M (class, edge) pairs, 0.2 % of
them alone on their link; of the 6.82 M packet-edges on merged links, 5.25 M (77 %) are
on one-stream links, which now cost O(1) per pair instead of a heap pop per packet. The
spike NoC had been 80-90 % of the cycle-level run.)

Statically one-stream edges (:func:`hwsim.engine.timing_plan.static_edges`: every class
of the call's populations that can cross the link comes from one parent link, so the
rule above holds whichever classes spike) are not visited per step at all: a template
edge's start cycles are its *anchor*'s (nearest ancestor that is not static) shifted by
``depth * (W + R)``, and their flits are added per class once per run
(:func:`flush_static_flits`). ResNet-18 CIFAR: 74.9 % of the 1.59 M spike template edges
are static. Measured A/B on a quiet machine (4 samples x 4 steps, same cycles, latency
histogram and link flits): cycle-level 0.652 s without this skip, 0.613 s with it (6 %);
a first measurement under load 2-4 (1.28-1.34 s -> 0.78 s) overstated it.

The other (class, edge) pairs are what a step pays for, and their cost was memory
latency, not arithmetic: ``perf`` on ResNet-18 put 26 % of this function in reading a
pair's parent from the template tables at scattered positions. So what serving a pair
needs of its parent (block edge, depth, link: :func:`hwsim.engine.timing_plan.serve_tables`)
is laid out in the order phase 3 reads it, copied there into pair scratch (``e_pp``,
``e_psh``, ``e_pl``) and, for a merged link's heads, into ``h_b`` / ``h_s``: one-thread
CPU time of ResNet-18's cycle-level run (4 samples x 4 steps, alternating A/B at load 3)
0.96-1.02 s -> 0.80-0.86 s. A class's pairs and blocks are kept by the edge's *rank*
among its non-static edges (``serve_tables``), not by template edge, so the static three
quarters of a template take no room in ``S`` or the pair scratch; the destinations read
per class tables (``cd_*``, :func:`hwsim.engine.timing_plan.delivery_tables`), and the
merge heap holds its keys in place. The merge (:func:`merge_link`) reads a head's table
positions from per-head scratch (``h_w``, ``h_b``, ``h_s``, ``h_n``, ``h_a``: no chain
of lookups per packet) and orders heads by one packed int64 key (ready, packet, head
position): ResNet-18's cycle-level run, one thread, 4 samples x 4 steps, A/B at load 3-5:
0.693-0.713 s -> 0.507-0.514 s CPU (functional 0.19 s), same cycles, histogram and link flits.

The schedule, the latency histogram and the flits per link are
:func:`hwsim.noc.run_into`'s (tests compare them with the Python twin, which simulates
every packet with :mod:`hwsim.noc`).

A call "ran as trains" (the ``noc_spike_calls_as_trains`` statistic) when the step had
at least four packets per class and no class waited: on every link each class's packets
went back to back from their first ready cycle, which is when simulating each class as
one long packet (:func:`hwsim.noc.run_trains_into`) gives the packet-level schedule.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..noc import order_used_links
from .layout import (HSTAT_DELIVERIES, HSTAT_LAT_MAX, HSTAT_NOC_CALLS, HSTAT_TRAIN_CALLS, open_core_times, open_edges,
                     open_neurons, open_packets, open_pops, open_routes, open_scalars, open_state)

__all__ = ["send_spikes", "flush_static_flits", "merge_link"]


@njit(cache=True)
def flush_static_flits(tab, work, link_flits):
    """Add each class's flits of the thread's samples (``cls_fl``) to the links of its
    statically one-stream edges (which the spike NoC skips per step), and clear them."""
    routes, pkts = open_routes(tab), open_packets(work)
    for c in range(pkts.cls_fl.shape[0]):
        f = pkts.cls_fl[c]
        if f == 0:
            continue
        for e in range(routes.rt_ptr[c], routes.rt_ptr[c + 1]):
            if routes.rt_depth[e] > 0:
                link_flits[routes.rt_link[e]] += f
        pkts.cls_fl[c] = 0


@njit(cache=True, inline="always")
def _one_stream(pl, corder, q0, nce):
    """Do the ``nce`` (class, edge) pairs ``corder[q0:q0 + nce]`` of a link all continue
    from one parent link (``pl``: each pair's parent link, -1 at its root)?"""
    first = pl[corder[q0]]
    if first < 0:
        return False
    for q in range(1, nce):
        if pl[corder[q0 + q]] != first:
            return False
    return True


@njit(cache=True, inline="always")
def _bits(x):
    """Bits needed to write ``x >= 0`` (0 for 0)."""
    b = 0
    while x > 0:
        x >>= 1
        b += 1
    return b


@njit(cache=True, inline="always")
def _sift1(h, i, n):
    """Move entry ``i`` down to its place in the min-heap ``h[:n]`` of distinct int64 keys."""
    x = h[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        v = h[c]
        if c + 1 < n and h[c + 1] < v:
            c += 1
            v = h[c]
        if v > x:
            break
        h[i] = v
        i = c
    h[i] = x


@njit(cache=True, inline="always")
def _before3(ra, pa, qa, rb, pb, qb):
    """(ready, packet, head) order of two heads."""
    if ra != rb:
        return ra < rb
    if pa != pb:
        return pa < pb
    return qa < qb


@njit(cache=True)
def _sift3(hr, hp, hq, i, n):
    """:func:`_sift1` for keys held as three arrays (ready, packet, head): the heap of
    :func:`merge_link` when its packed keys would not fit 63 bits."""
    xr, xp, xq = hr[i], hp[i], hq[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _before3(hr[c + 1], hp[c + 1], hq[c + 1], hr[c], hp[c], hq[c]):
            c += 1
        if not _before3(hr[c], hp[c], hq[c], xr, xp, xq):
            break
        hr[i], hp[i], hq[i] = hr[c], hp[c], hq[c]
        i = c
    hr[i], hp[i], hq[i] = xr, xp, xq


@njit(cache=True, inline="always")
def _head_ready(S, hb, hs, q, k):
    """Ready cycle of packet ``k`` of head ``q``: its parent's start plus the shift
    (``hb[q] < 0``: a root, every packet ready at ``hs[q] = t0 + R``)."""
    return S[hb[q] + k] + hs[q] if hb[q] >= 0 else hs[q]


@njit(cache=True, inline="always")
def merge_link(S, pk_fl, ordr, hk, he, hw, hb, hs, hn, ha, hr, hp, hq, nce, npk):
    """Serve one link's ``nce`` (class, edge) pairs, *heads* ``q = 0 .. nce-1``, in
    ``(ready, packet, q)`` order: ``S[hw[q] + k] = max(ready(q, k), free)``, ``free =
    S + L`` (``L = pk_fl[packet]``; ``packet = ordr[ha[q] + k]``, ``k < hn[q]``; ready
    from :func:`_head_ready`). The head position ``q`` orders equal (ready, packet)
    pairs as the template edge does: a link's pairs of one class are listed in edge
    order, and equal packets only come from one class. Returns (flits served, did a
    packet wait: its start was not its ready cycle (first packet) or its pair's last
    end (the others)).

    The min-heap of the heads holds one int64 key per head, ``((ready - r_min) << (b_p
    + b_q)) | (packet << b_q) | q`` with ``b_p``, ``b_q`` the bits of ``npk - 1`` and
    ``nce - 1``: one comparison orders two heads, and the key decodes to its head and
    packet. A pair's ready cycles increase with ``k``, so ``r_min`` (first packets) and
    ``r_max`` (last packets) bound every key; when ``r_max - r_min`` does not fit
    beside the other bits, the heap holds the three fields in ``hr``, ``hp``, ``hq``
    instead (same order, slower). ``hk`` (cursor) and ``he`` (last end) are scratch."""
    total = 0
    rmin = np.int64(1 << 62)
    rmax = np.int64(-(1 << 62))
    for q in range(nce):
        hk[q] = 0
        total += hn[q]
        r0 = _head_ready(S, hb, hs, q, 0)
        r1 = _head_ready(S, hb, hs, q, hn[q] - 1)
        rmin = min(rmin, r0)
        rmax = max(rmax, r1)
    qb = _bits(nce - 1)
    sp = _bits(npk - 1) + qb
    packed = sp <= 61 and ((rmax - rmin) >> (62 - sp)) == 0
    qmask = (np.int64(1) << qb) - 1
    pmask = (np.int64(1) << (sp - qb)) - 1
    for q in range(nce):
        r = _head_ready(S, hb, hs, q, 0)
        p = ordr[ha[q]]
        if packed:
            hr[q] = ((r - rmin) << sp) | (p << qb) | q
        else:
            hr[q], hp[q], hq[q] = r, p, q
    for q in range(nce // 2 - 1, -1, -1):
        if packed:
            _sift1(hr, q, nce)
        else:
            _sift3(hr, hp, hq, q, nce)
    free = np.int64(-(1 << 62))
    tot = np.int64(0)
    waited = False
    n = nce
    for _ in range(total):
        if packed:
            key = hr[0]
            b = key & qmask
            r = (key >> sp) + rmin
            p = (key >> qb) & pmask
        else:
            b, r, p = hq[0], hr[0], hp[0]
        k = hk[b]
        st = r if r > free else free
        if st != (r if k == 0 else he[b]):
            waited = True
        S[hw[b] + k] = st
        L = pk_fl[p]
        free = st + L
        he[b] = free
        tot += L
        k += 1
        if k < hn[b]:
            hk[b] = k
            r = _head_ready(S, hb, hs, b, k)
            p = ordr[ha[b] + k]
            if packed:
                hr[0] = ((r - rmin) << sp) | (p << qb) | b
            else:
                hr[0], hp[0] = r, p
        else:
            n -= 1
            hr[0] = hr[n]
            if not packed:
                hp[0], hq[0] = hp[n], hq[n]
        if n > 0:
            if packed:
                _sift1(hr, 0, n)
            else:
                _sift3(hr, hp, hq, 0, n)
    return tot, waited


@njit(cache=True)
def send_spikes(tab, work, p0, p1, t, hist, hstat):
    """Spike packets of populations ``p0 .. p1-1`` at step ``t`` (neuron order), each
    injected when its core's fire phase ends (``fend``); returns the last delivery (0
    without packets). The module docstring gives the rules."""
    pops, nrns, opt, routes = open_pops(tab), open_neurons(tab), open_scalars(tab), open_routes(tab)
    state, cores = open_state(work), open_core_times(work)
    pkts, edges = open_packets(work), open_edges(work)
    # 1. the packets in neuron order (pk_id neuron, pk_fl flits, pk_tr class slot); class
    # slots in order of first packet (cls_tr: slot + 1, left all zero)
    npk = 0
    ntr = 0
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
            c = routes.nrn_cls[gi]
            tr = pkts.cls_tr[c] - 1
            if tr < 0:
                tr = ntr
                ntr += 1
                pkts.cls_tr[c] = ntr
                pkts.tr_t0[tr] = cores.fend[nrns.core[gi]]
                pkts.tr_cls[tr] = c
                pkts.tr_pk[tr] = 0
                pkts.tr_fl[tr] = 0
            fl = max(abs(o), 1) if routes.nrn_flit_count[gi] else 1
            pkts.pk_id[npk] = gi
            pkts.pk_fl[npk] = fl
            pkts.pk_tr[npk] = tr
            pkts.tr_pk[tr] += 1
            pkts.tr_fl[tr] += fl
            npk += 1
    for tr in range(ntr):
        pkts.cls_tr[pkts.tr_cls[tr]] = 0
    if npk == 0:
        return 0
    hstat[HSTAT_NOC_CALLS] += 1
    # 2. packets grouped by class (ordr = pk_ord: packet ids, class by class, in order);
    # per class its packet range tr_pk, its (class, edge) pairs from tr_ce, its block of
    # start cycles S = e_start from tr_sb (the edge arrays are scratch here: e_link and
    # e_parent hold each pair's class and edge rank, e_order the pairs by link,
    # e_owner and e_ready each pair's block and shift)
    ordr = pkts.pk_ord
    S = edges.e_start
    pos = 0
    ce = 0
    sb = 0
    for tr in range(ntr):
        n = pkts.tr_pk[tr]
        pkts.tr_pk[tr] = pos
        pos += n
        cl = pkts.tr_cls[tr]
        m = routes.ns_ptr[cl + 1] - routes.ns_ptr[cl]  # its pairs and blocks, by rank
        pkts.tr_ce[tr] = ce
        pkts.tr_sb[tr] = sb
        ce += m
        sb += n * m
    pkts.tr_pk[ntr] = pos
    for i in range(npk):
        tr = pkts.pk_tr[i]
        ordr[pkts.tr_pk[tr]] = i
        pkts.tr_pk[tr] += 1
    for tr in range(ntr - 1, 0, -1):  # back to the starts
        pkts.tr_pk[tr] = pkts.tr_pk[tr - 1]
    pkts.tr_pk[0] = 0
    # 3. the (class, edge) pairs by link, links in topological order (a counting sort)
    # (only the edges that are not statically one-stream: the others' start cycles are
    # their anchor's shifted, their flits added per class at the end of the run). Per
    # pair c, read here from its class's template while it is in cache, what serving
    # needs: its parent's pair (pp: the parent edge's, or its anchor's when the parent
    # is static; -1 at the root), the parent's extra shift (psh: depth * (W + R)) and
    # the parent's link (pl)
    ce_tr, ce_j, corder = edges.e_link, edges.e_parent, edges.e_order
    pp, psh, pl = edges.e_pp, edges.e_psh, edges.e_pl
    l_cnt, l_used, l_at = edges.l_cnt, edges.l_used, edges.l_at
    WR = opt.W + opt.R
    nu = 0
    for tr in range(ntr):
        cl = pkts.tr_cls[tr]
        c0 = pkts.tr_ce[tr]
        pkts.cls_fl[cl] += pkts.tr_fl[tr]
        for i in range(routes.ns_ptr[cl], routes.ns_ptr[cl + 1]):
            j = i - routes.ns_ptr[cl]  # the edge's rank
            c = c0 + j
            ce_tr[c] = tr
            ce_j[c] = j
            a = routes.ns_pp[i]
            pp[c] = a if a < 0 else c0 + a
            psh[c] = routes.ns_d[i] * WR
            pl[c] = routes.ns_pl[i]
            lid = routes.ns_link[i]
            if l_cnt[lid] == 0:
                l_used[nu] = lid
                nu += 1
            l_cnt[lid] += 1
    order_used_links(l_used, nu, l_cnt, l_at, routes.link_pos, routes.link_at)
    for tr in range(ntr):
        cl = pkts.tr_cls[tr]
        c0 = pkts.tr_ce[tr]
        for i in range(routes.ns_ptr[cl], routes.ns_ptr[cl + 1]):
            lid = routes.ns_link[i]
            corder[l_at[lid]] = c0 + i - routes.ns_ptr[cl]
            l_at[lid] += 1
    # 4. serve the links
    R = opt.R
    waited = False
    hk, hr, hp, he, hq, hb, hs = pkts.h_k, pkts.h_r, pkts.h_p, pkts.h_e, pkts.h_q, pkts.h_b, pkts.h_s
    hw, hn, ha = pkts.h_w, pkts.h_n, pkts.h_a
    # per (class, edge) pair c: its start cycles are block a_blk[c] of its class in S plus
    # a_sh[c] (a pair alone on its link shares its parent's block, shifted by W + R)
    a_blk, a_sh = edges.e_owner, edges.e_ready
    q0 = 0
    for i in range(nu):
        lid = l_used[i]
        nce = l_cnt[lid]
        l_cnt[lid] = 0
        tot = np.int64(0)
        c = corder[q0]
        if nce == 1 and pp[c] < 0:
            # a root alone on its link: back to back from t0 + R
            tr = ce_tr[c]
            j = ce_j[c]
            n = pkts.tr_pk[tr + 1] - pkts.tr_pk[tr]
            sbase = pkts.tr_sb[tr]
            a = pkts.tr_pk[tr]
            a_blk[c] = j
            a_sh[c] = 0
            free = pkts.tr_t0[tr] + R
            for k in range(n):
                S[sbase + j * n + k] = free
                L = pkts.pk_fl[ordr[a + k]]
                free += L
                tot += L
        elif _one_stream(pl, corder, q0, nce):
            # every pair (a pair alone on its link too) comes from the same parent link:
            # none waits (module docstring)
            for q in range(nce):
                c = corder[q0 + q]
                a_blk[c] = a_blk[pp[c]]
                a_sh[c] = a_sh[pp[c]] + psh[c] + WR
                tot += pkts.tr_fl[ce_tr[c]]
        else:
            # a merged link: its heads (by pair position q) for merge_link: where the
            # pair's start cycles go (hw), its parent's block and shift (hb, hs; a root:
            # -1 and t0 + R), its packets (ha, hn); the pair gets a block of its own
            for q in range(nce):
                c = corder[q0 + q]
                tr = ce_tr[c]
                a = pkts.tr_pk[tr]
                n = pkts.tr_pk[tr + 1] - a
                sbase = pkts.tr_sb[tr]
                if pp[c] < 0:
                    hb[q] = -1
                    hs[q] = pkts.tr_t0[tr] + R
                else:
                    hb[q] = sbase + a_blk[pp[c]] * n
                    hs[q] = a_sh[pp[c]] + psh[c] + WR
                hw[q] = sbase + ce_j[c] * n
                hn[q] = n
                ha[q] = a
                a_blk[c] = ce_j[c]
                a_sh[c] = 0
            tot, w = merge_link(S, pkts.pk_fl, ordr, hk, he, hw, hb, hs, hn, ha, hr, hp, hq, nce, npk)
            waited |= w
        q0 += nce
        edges.link_flits[lid] += tot
    hstat[HSTAT_TRAIN_CALLS] += npk >= 4 * ntr and not waited
    # 5. deliveries, per class and destination (the class's destinations are its first
    # neuron's: the same cores, the same template edges)
    last = np.int64(0)
    H = hist.shape[0]
    mx = hstat[HSTAT_LAT_MAX]  # the latency stats in registers (hist's stores could alias them)
    cnt = np.int64(0)
    W = opt.W
    for tr in range(ntr):
        cl = pkts.tr_cls[tr]
        t0 = pkts.tr_t0[tr]
        a = pkts.tr_pk[tr]
        n = pkts.tr_pk[tr + 1] - a
        sbase = pkts.tr_sb[tr]
        c0 = pkts.tr_ce[tr]
        for d in range(routes.cd_ptr[cl], routes.cd_ptr[cl + 1]):
            x = routes.cd_x[d] * opt.extra
            bj = routes.cd_blk[d]  # -1: on the source core
            blk = a_blk[c0 + bj] if bj >= 0 else 0
            sh = a_sh[c0 + bj] + routes.cd_dep[d] * WR + W - 1 + x if bj >= 0 else 0
            for k in range(n):
                L = pkts.pk_fl[ordr[a + k]]
                dl = S[sbase + blk * n + k] + sh + L if bj >= 0 else t0 + L - 1 + x
                lat = dl - t0
                if lat < H:
                    hist[lat] += 1
                if lat > mx:
                    mx = lat
                if dl > last:
                    last = dl
            cnt += n
    hstat[HSTAT_LAT_MAX] = mx
    hstat[HSTAT_DELIVERIES] += cnt
    return last
