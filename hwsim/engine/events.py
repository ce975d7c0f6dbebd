"""The functional kernel's crossbar events (Numba, inlined into the step loop
:func:`hwsim.engine.kernel._sample`): per population and step, every nonzero source
value reads its rows (records, short-row groups) or scatters through its convolution's
geometry, and adds the rows' per-tile counts (:func:`events`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .if_blocks import BLK_IN
from .layout import (GEO_N, NREC, NTC, REC_ACC, REC_ACS, REC_CYCLES, REC_ENT, REC_EVENTS, REC_MACS, REC_N,
                     REC_TILE, TC_ACS, TC_CYCLES, TC_EVENTS, TC_MACS)

__all__ = ["events", "conv_event", "mark", "tap_pos", "add_run", "add_tile_counts"]

_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1

@njit(cache=True, inline="always")
def add_tile_counts(tcnt, kk, nev, cyc, ac, mac):
    """Add a run of ``nev`` events of tile ``kk`` to its step counts."""
    tcnt.t_nev[kk] += nev
    tcnt.t_cyc[kk] += cyc
    tcnt.t_ac[kk] += ac
    tcnt.t_mac[kk] += mac


@njit(cache=True, inline="always")
def add_run(acc, ua, ent_w, uw, n, xv):
    """``acc[ua + u] += ent_w[uw + u] * xv`` for ``u < n`` (unsigned indices: no
    wraparound checks, so the loop vectorises; a binary spike adds the weights)."""
    if xv == 1:
        for u in range(n):
            acc[ua + u] += ent_w[uw + u]
    else:
        for u in range(n):
            acc[ua + u] += ent_w[uw + u] * xv


@njit(cache=True, inline="always")
def tap_pos(b, kw, sw):
    """Position of tap ``b`` in a kernel row as stored (:meth:`hwsim.conv_rows.ConvRows.kernel`):
    taps grouped by ``b mod s_w`` (residue 0 first), descending ``b`` within a group."""
    r = b % sw
    off = 0
    for rr in range(r):
        off += (kw - rr + sw - 1) // sw
    return off + (kw - r + sw - 1) // sw - 1 - b // sw


@njit(cache=True, inline="always")
def mark(blk, fb, r0, n):
    """Flag :data:`hwsim.engine.if_blocks.BLK_IN` on the blocks of 64 sums that a run of
    ``n`` sums from ``r0`` (counted from the projection's first sum) touches:
    ``blk[fb + k]`` for ``r0 >> 6 <= k <= (r0 + n - 1) >> 6``."""
    for k in range(r0 >> 6, ((r0 + n - 1) >> 6) + 1):
        blk[fb + k] |= BLK_IN


@njit(cache=True, inline="always")
def conv_event(geo, gi, ent_w, acc, blk, i, xv):
    """One event of value ``xv`` on pre ``i = (c, y, x)`` of geometric convolution ``gi``
    (:func:`hwsim.engine.build._geo_events`): for every tap ``(a, b)`` with
    ``y + p_h - d_h a = s_h i'`` and ``x + p_w - d_w b = s_w j'`` for an output ``(i', j')``
    inside ``H' x W'``, ``acc[a0 + (i' W' + j') C_out + o] += w[o, c, a, b] * xv`` over the
    outputs ``o`` of ``c``'s group (weights at ``w0 + ((c kh + a) kw + pos(b)) cout_g``,
    :func:`tap_pos`). With ``d_w = 1`` and one group, the taps of a kernel row that reach
    an output are ``b = r + s_w q`` (``r = (x + p_w) mod s_w``) for a range of ``q``, reaching
    ``j' = (x + p_w - r) / s_w - q``: consecutive outputs whose weights are stored
    consecutively, so one run of ``taps x C_out`` instead of one per tap, read from the
    convolution's run tables (:func:`hwsim.engine.build._conv_runs`: per column ``x`` the
    run's first output, taps and first weight; per row ``y`` and kernel row ``a`` the output
    row), so an event divides only to split ``i``. A dense
    projection (``kh = 0``, :mod:`hwsim.dense_rows`) adds row ``k(i)`` of ``W^T``. Every
    run of a convolution marks the blocks of 64 sums it touches in the block flags ``blk``
    from ``geo[b + 19]`` (:func:`mark`; read by :func:`hwsim.engine.if_blocks.if_blocks`);
    a dense projection's rows touch every block, so its populations never run by blocks
    (:func:`hwsim.engine.if_blocks.block_pops`) and its events mark nothing."""
    b = GEO_N * gi
    H, W, C_out, OH, OW = geo[b + 1], geo[b + 2], geo[b + 3], geo[b + 4], geo[b + 5]
    kh, kw, sh, sw, ph, pw, dh, dw = (geo[b + 6], geo[b + 7], geo[b + 8], geo[b + 9], geo[b + 10], geo[b + 11],
                                      geo[b + 12], geo[b + 13])
    cin_g, cout_g, a0, w0, fb = geo[b + 14], geo[b + 15], geo[b + 16], geo[b + 17], geo[b + 19]
    if kh == 0:  # a dense projection (hwsim.dense_rows): acc[a0 + o] += W^T[k(i), o] * xv, k(i) at geo[W + i]
        k = geo[W + i]
        if k >= 0:
            add_run(acc, np.uint64(a0), ent_w, np.uint64(w0 + k * C_out), np.uint64(C_out), xv)
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
        ni = nt * C_out
        ln = np.uint64(ni)
        aj = ab + geo[rt + 3 * x] * C_out
        wc = w0 + c * kh * kw * cout_g + geo[rt + 3 * x + 2] * cout_g
        yr = rt + 3 * W + y * kh
        for a in range(kh):
            oi = geo[yr + a]
            if oi >= 0:
                r0 = aj + oi * OW * C_out
                add_run(acc, np.uint64(r0), ent_w, np.uint64(wc + a * kw * cout_g), ln, xv)
                mark(blk, fb, r0 - a0, ni)
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
            r0 = ab + (oi * OW + oj) * C_out
            add_run(acc, np.uint64(r0), ent_w, np.uint64(wr + tap_pos(bb, kw, sw) * cout_g), n, xv)
            mark(blk, fb, r0 - a0, cout_g)


@njit(cache=True, inline="always")
def events(pops, grps, state, tcnt, ent, p, t, inputs):
    """Step ``t``'s crossbar events of population ``p`` from the graph input's groups
    (``inputs``) or from the other groups: every nonzero source value ``x`` of a group's
    source slot at ``t - delay`` reads the source's rows, ``acc[a] += w * x`` over each
    row's entries (spans as contiguous slices; ``x == 1``, a binary spike, adds ``w``),
    and adds the rows' per-tile counts (events, integrate cycles, AC, MAC) to the step's
    tile counts; a short-row group reads one fixed-length row per event instead
    (:func:`hwsim.engine.build._compact_rows`); a geometric projection's group scatters
    each event from the geometry (:func:`conv_event`) and its rows add their counts only
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
                conv_event(grps.geo, gi, ent_w, state.acc, state.blk, i, state.nzv[base + j])
                for r in range(grps.grec_ptr[pp + i], grps.grec_ptr[pp + i + 1]):
                    v = grps.grec[r]
                    n = v & 0x7FFF
                    mac = (v >> 15) & 1
                    add_tile_counts(tcnt, v >> 32, 1, (v >> 16) & 0xFFFF, n * (1 - mac), n * mac)
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
                add_tile_counts(tcnt, grps.cr_tiles[k], state.cr_loc[c + TC_EVENTS], state.cr_loc[c + TC_CYCLES],
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
                        add_tile_counts(tcnt, k_run, s_nev, s_cyc, s_ac, s_mac)
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
        add_tile_counts(tcnt, k_run, s_nev, s_cyc, s_ac, s_mac)
        n_rows += s_nev
    return n_rows
