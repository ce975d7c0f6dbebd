"""Conv populations: output blocks of (channels x patch), their tiles, cells and crossbars.

This module owns the tiles of a population with at least one ConvProjection: merging the
convolutions that share an axon space, the rows and cells of every (channel block,
patch, chunk) tile, and which tiles share a weight group (the folding condition). The
block itself is chosen by :mod:`mapper.tiling.conv_blocks`; the chunks by
:mod:`mapper.tiling.chunks`.

Conv populations (at least one ConvProjection, shape (C, H', W'))
-----------------------------------------------------------------
An output block is ``cb`` output channels x a ``ph x pw`` spatial patch; blocks start at
multiples of (cb, ph, pw) and are clipped at the far edges. Per conv projection
``(C_in, H, W) -> (C, H', W')`` (kernel k, stride s, padding p, dilation d) a block's
axons are the product

* channels: the input channels of the groups its output channels belong to, keeping only
  channels with a nonzero weight to one of those outputs (``C_in`` for a dense kernel);
* rows: the input rows touched by some tap ``a`` with a nonzero weight,
  ``{s*i - p + d*a : i in the patch} ∩ [0, H)``; for a dense kernel with ``d <= s`` this
  is ``min((ph-1)*s + (k-1)*d + 1, H)`` rows in the interior (fewer at the edges);
* columns: likewise.

A sparse identity skip (diagonal, one value per channel) is tiled as the depthwise 1x1
convolution it is. Convolutions that read the same (source, delay) are merged into one
(their sum, kernels re-embedded at the largest padding) so that they share rows; when
stride, dilation or groups differ the population falls back to the dense rule. Any other dense/sparse projection into a conv population adds, per
block, the sorted nonzero rows of the block's posts (bounded by
``min(n_pre, max_fan_in * cb*ph*pw)`` when choosing the block).

Kernels are duplicated across tiles: a crossbar stores the block's expanded (Toeplitz)
synapse matrix, ``used_cells`` weights; ``Tiling.per_population`` reports the stored
weights against the unique kernel weights.

**Cell counts (vectorised).** For a conv tile (channel block k, patch (py, px), chunk j)::

    used_cells = sum_proj sum_{a,b} NZ[a, b] * VH[py, a] * VW[px, b]
    n_axons    = sum_proj n_channels * rows_h[py] * rows_w[px]

with ``NZ[a, b]`` the nonzero weights of tap (a, b) between the block's output channels
and the chunk's input channels, and ``VH[py, a]`` the output rows of the patch whose tap
``a`` lands inside the input. Every nonzero (pre, post) pair of every projection lies in
exactly one tile, so ``sum(used_cells) == sum(nnz)`` over the incoming projections (a
pair defined by two merged convolutions is one cell).

Conv tiles compute ``post`` and ``axons`` on demand from the geometry (an ImageNet
ResNet-18 has 53,410 tiles and ~1.3 10^7 rows in total); dense tiles store them.
"""

from __future__ import annotations

import numpy as np

from models.net import ConvProjection
from models.ops import ConvGeometry

from .chunks import pack_chunks
from .conv_blocks import ConvItem, choose_block
from .dense import row_counts
from .limits import ChipLimits, ceil_div
from .tiles import Tile


def conv_layout(pop, projs, net, hw: ChipLimits):
    """A :class:`ConvLayout` for ``pop``, or None when the dense rule must be used."""
    if len(pop.shape) != 3 or not projs:
        return None
    convs, rest = [], []
    for q in projs:
        v = _as_conv(q, net)
        (convs if v is not None else rest).append(v if v is not None else q)
    if not any(q.kind == "conv" for q in projs):
        return None  # only sparse/virtual convs: the dense rule is exact and cheap
    if any(tuple(q.geom.out_shape) != tuple(pop.shape) for q in convs):
        return None
    by_key: dict = {}
    for q in convs:
        by_key.setdefault((q.src, q.delay_steps), []).append(q)
    convs = []
    for qs in by_key.values():
        m = qs[0] if len(qs) == 1 else _merge_convs(qs)
        if m is None:
            return None  # convolutions on one axon space that do not merge: exact (dense) rule
        convs.append(m)
    keys = list(by_key)
    others: dict = {}
    for q in rest:
        key = (q.src, q.delay_steps)
        if key in keys:
            return None
        others.setdefault(key, []).append(q)
    others_l = [(key, qs, "MAC" if any(q.mode == "MAC" for q in qs) else "AC") for key, qs in others.items()]
    items = [ConvItem(q) for q in convs]
    choice = choose_block(*pop.shape, items, others_l, hw)
    if choice is None:
        return None
    return ConvLayout(pop, items, others_l, hw, choice)


def _as_conv(q, net):
    """A sparse identity-like skip (diagonal, one value per channel) as a depthwise 1x1 conv."""
    if q.kind == "conv":
        return q
    if q.kind != "sparse":
        return None
    src, dst = net.pop.get(q.src), net.pop.get(q.dst)
    if src is None or dst is None or len(dst.shape) != 3 or tuple(src.shape) != tuple(dst.shape):
        return None
    m = q.csr
    n = m.shape[0]
    if m.shape[1] != n or m.nnz != n or not np.array_equal(m.indptr, np.arange(n + 1)) \
            or not np.array_equal(m.indices, np.arange(n)):
        return None
    C = dst.shape[0]
    vals = m.data.reshape(C, -1)
    if not (vals == vals[:, :1]).all():
        return None
    geom = ConvGeometry(C, C, tuple(dst.shape[1:]), (1, 1), groups=C)
    return ConvProjection(q.name, q.src, q.dst, vals[:, :1].reshape(C, 1, 1, 1).copy(), geom,
                          delay_steps=q.delay_steps, mode=q.mode)


def _merge_convs(qs):
    """Convolutions reading the same (source, delay) as ONE convolution (their sum), so that
    they share rows: every kernel is re-embedded at padding ``P = max p`` as taps shifted by
    ``(P - p) / d``. None when stride, dilation, groups or the shift do not agree."""
    g0 = qs[0].geom
    if any((q.geom.in_shape, q.geom.out_shape, q.geom.stride, q.geom.dilation, q.geom.groups)
           != (g0.in_shape, g0.out_shape, g0.stride, g0.dilation, g0.groups) for q in qs):
        return None
    d = g0.dilation
    P = tuple(max(q.geom.padding[a] for q in qs) for a in (0, 1))
    shift = [tuple((P[a] - q.geom.padding[a]) for a in (0, 1)) for q in qs]
    if any(sh[a] % d[a] for sh in shift for a in (0, 1)):
        return None
    shift = [(sh[0] // d[0], sh[1] // d[1]) for sh in shift]
    K = tuple(max(sh[a] + q.geom.kernel[a] for sh, q in zip(shift, qs)) for a in (0, 1))
    w = np.zeros(qs[0].weight.shape[:2] + K, dtype=np.float64)
    for (sy, sx), q in zip(shift, qs):
        kh, kw = q.geom.kernel
        w[:, :, sy:sy + kh, sx:sx + kw] += q.weight
    geom = ConvGeometry(g0.in_channels, g0.out_channels, tuple(g0.in_hw), K, tuple(g0.stride), P,
                        tuple(d), g0.groups)
    if tuple(geom.out_shape) != tuple(g0.out_shape):
        return None
    return ConvProjection("+".join(q.name for q in qs), qs[0].src, qs[0].dst, w, geom,
                          delay_steps=qs[0].delay_steps, mode="MAC" if any(q.mode == "MAC" for q in qs) else "AC")



class ConvLayout:
    """A conv population's chosen blocking; builds its tiles and crossbars."""

    kind = "conv"

    def __init__(self, pop, convs, others, hw: ChipLimits, choice):
        self.name = pop.name
        self.C, self.OH, self.OW = (int(v) for v in pop.shape)
        self.items = convs
        self.others = others  # [(key, [projections], mode)]
        self.cb, self.ph, self.pw = choice
        self.ncb, self.nph, self.npw = ceil_div(self.C, self.cb), ceil_div(self.OH, self.ph), ceil_div(self.OW, self.pw)
        self.hw = hw
        cs = np.arange(0, self.C, self.cb)
        hs = np.arange(0, self.OH, self.ph)
        ws = np.arange(0, self.OW, self.pw)
        for it in convs:
            it.Uh = np.logical_or.reduceat(it.Th, hs, axis=0)  # (nph, H) touched input rows per patch
            it.Uw = np.logical_or.reduceat(it.Tw, ws, axis=0)
            it.rows_h, it.rows_w = it.Uh.sum(axis=1), it.Uw.sum(axis=1)
            it.cost = int(it.rows_h.max(initial=0) * it.rows_w.max(initial=0))
            it.VHp = np.add.reduceat(it.Vh, hs, axis=0)  # (nph, kh) valid taps per patch
            it.VWp = np.add.reduceat(it.Vw, ws, axis=0)
            red = np.logical_or.reduceat(it.chmask, cs, axis=0)  # (ncb, Cin)
            it.chans = [np.flatnonzero(r) for r in red]
        # chunk plan per channel block (same for every patch of the block)
        n_items = len(convs)
        fanin = [sum(q.max_fan_in() for q in qs) for _key, qs, _m in others]
        self.plans = []
        for k in range(self.ncb):
            cbk = min(self.cb, self.C - k * self.cb)
            runs = [(i, it.chans[k].size, it.cost) for i, it in enumerate(convs)]
            for j, (_key, qs, _m) in enumerate(others):
                runs.append((n_items + j, min(qs[0].n_pre, fanin[j] * cbk * self.ph * self.pw), 1))
            self.plans.append(pack_chunks(runs, hw.axons))
        self.n_chunks = max(len(p) for p in self.plans)

    # -- geometry of one block -------------------------------------------------------------
    def _ranges(self, k, py, px):
        c0, y0, x0 = k * self.cb, py * self.ph, px * self.pw
        return (np.arange(c0, min(self.C, c0 + self.cb)), np.arange(y0, min(self.OH, y0 + self.ph)),
                np.arange(x0, min(self.OW, x0 + self.pw)))

    def _posts(self, k, py, px):
        c, y, x = self._ranges(k, py, px)
        return ((c[:, None, None] * self.OH + y[None, :, None]) * self.OW + x[None, None, :]).ravel()

    def post(self, block):
        _, k, py, px, _j = block
        return self._posts(k, py, px)

    def _other_rows(self, oi, k, py, px):
        _key, qs, _mode = self.others[oi]
        counts = row_counts(qs, self._posts(k, py, px))
        rows = np.flatnonzero(counts)
        return rows, counts[rows]

    def axons(self, block):
        _, k, py, px, j = block
        out = []
        n_items = len(self.items)
        for item, s, e in self.plans[k][j]:
            if item < n_items:
                it = self.items[item]
                ch = it.chans[k][s:e]
                ys, xs = np.flatnonzero(it.Uh[py]), np.flatnonzero(it.Uw[px])
                idx = ((ch[:, None, None] * it.H + ys[None, :, None]) * it.W + xs[None, None, :]).ravel()
                out.append((it.key[0], it.key[1], idx.astype(np.int64)))
            else:
                key = self.others[item - n_items][0]
                rows, _ = self._other_rows(item - n_items, k, py, px)
                out.append((key[0], key[1], rows[s:e].astype(np.int64)))
        return out

    # -- tiles -----------------------------------------------------------------------------
    def _chunk_tables(self) -> list:
        """Per channel block k and chunk j: ``(n_axons, used_cells, mode, has_other)``, the first
        two as (nph, npw) arrays over the patches; sets ``foldable[k, j]``."""
        n_items = len(self.items)
        nph, npw = self.nph, self.npw
        self.foldable = np.zeros((self.ncb, self.n_chunks), dtype=bool)
        per_kj = []
        for k in range(self.ncb):
            c0 = k * self.cb
            cbk = min(self.cb, self.C - c0)
            # tap counts per input channel for this block's outputs, per item: (Cin, kh, kw)
            tcs = []
            for it in self.items:
                wnz = it.wnz[c0:c0 + cbk]
                if it.q.geom.groups == 1:
                    tc = wnz.sum(axis=0, dtype=np.int64)
                else:
                    tc = np.zeros((it.q.geom.in_channels,) + wnz.shape[2:], dtype=np.int64)
                    np.add.at(tc, it.ch_of[c0:c0 + cbk].ravel(), wnz.reshape((-1,) + wnz.shape[2:]))
                tcs.append(tc)
            row = []
            for j, chunk in enumerate(self.plans[k]):
                n_ax = np.zeros((nph, npw), dtype=np.int64)
                used = np.zeros((nph, npw), dtype=np.int64)
                mode, has_other = "AC", False
                for item, s, e in chunk:
                    if item < n_items:
                        it = self.items[item]
                        ch = it.chans[k][s:e]
                        n_ax += ch.size * np.outer(it.rows_h, it.rows_w)
                        nz = tcs[item][ch].sum(axis=0)  # (kh, kw)
                        used += it.VHp @ nz @ it.VWp.T
                        mode = "MAC" if it.mode == "MAC" else mode
                    else:
                        has_other = True
                        oi = item - n_items
                        mode = "MAC" if self.others[oi][2] == "MAC" else mode
                        for py in range(nph):
                            for px in range(npw):
                                rows, cnt = self._other_rows(oi, k, py, px)
                                n_ax[py, px] += rows[s:e].size
                                used[py, px] += int(cnt[s:e].sum())
                self.foldable[k, j] = not has_other
                row.append((n_ax, used, mode, has_other))
            per_kj.append(row)
        return per_kj

    def count_tiles(self) -> int:
        """The number of tiles :meth:`make_tiles` builds, without building them."""
        return sum(self.n_patches if j == 0 else int(np.count_nonzero(n_ax))
                   for row in self._chunk_tables() for j, (n_ax, _used, _mode, _other) in enumerate(row))

    def make_tiles(self, first_id: int, next_group):
        nph, npw = self.nph, self.npw
        phs = np.minimum(self.ph, self.OH - np.arange(nph) * self.ph)
        pws = np.minimum(self.pw, self.OW - np.arange(npw) * self.pw)
        per_kj = self._chunk_tables()
        tiles = []
        # tile id table (ncb, nph*npw, n_chunks), -1 = no tile (empty partial chunk)
        self.ids = np.full((self.ncb, nph * npw, self.n_chunks), -1, dtype=np.int64)
        tid = first_id
        groups = {}
        for k in range(self.ncb):
            cbk = min(self.cb, self.C - k * self.cb)
            for py in range(nph):
                for px in range(npw):
                    p = py * npw + px
                    soma = tid
                    for j, (n_ax, used, mode, has_other) in enumerate(per_kj[k]):
                        if j > 0 and n_ax[py, px] == 0:
                            continue  # an empty partial chunk (edge block) sends nothing
                        if has_other:
                            gid = next_group()
                        else:
                            gid = groups.get((k, j))
                            if gid is None:
                                gid = groups[(k, j)] = next_group()
                        tiles.append(Tile(tid, self.name, "soma" if j == 0 else "partial", soma,
                                          int(n_ax[py, px]), int(cbk * phs[py] * pws[px]), int(used[py, px]),
                                          mode, ("conv", k, py, px, j), gid, _layout=self))
                        self.ids[k, p, j] = tid
                        tid += 1
        return tiles

    @property
    def n_patches(self) -> int:
        return self.nph * self.npw

    def crossbars(self, f: int) -> list:
        """Tile-id lists per crossbar for fold f, patch-group major (see :mod:`mapper.tiling.folding`)."""
        out = []
        P = self.n_patches
        for g0 in range(0, P, f):
            for k in range(self.ncb):
                for j in range(self.n_chunks):
                    ids = self.ids[k, g0:g0 + f, j]
                    ids = ids[ids >= 0]
                    if ids.size == 0:
                        continue
                    if self.foldable[k, j]:
                        out.append(ids.tolist())
                    else:
                        out.extend([[int(i)] for i in ids])
        return out

    def describe(self) -> dict:
        return {"kind": "conv", "block": (self.cb, self.ph, self.pw), "in_chunks": self.n_chunks}
