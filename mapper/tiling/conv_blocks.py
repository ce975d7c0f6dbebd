"""Conv output-block search: which (channels x patch) block a conv population is tiled with.

:class:`ConvItem` holds a conv projection's geometry tables (touched input rows and
columns per output row, channel masks); :func:`choose_block` minimises the tile count
over every candidate block at once; :func:`conv_block_options` lists the blocks
:mod:`mapper.prune` may choose from.

**Block choice.** Over ``cb`` in the values ``ceil(C/m)`` (and divisors of C and
multiples of the group width), ``ph`` in the values ``ceil(H'/m)`` (and divisors), ``pw``
likewise -- these are all sizes that give a distinct number of blocks -- with
``cb*ph*pw <= neurons`` and every single channel's ``Rh*Rw <= axons``::

    tiles(cb, ph, pw) = ceil(C/cb) * ceil(H'/ph) * ceil(W'/pw) * n_chunks(cb, ph, pw)

is minimised (vectorised over the candidate grid, no per-neuron work); for a population
with one conv projection and nothing else the count is exact per channel block,
``patches * sum_k max(1, ceil(ch_k / floor(axons / (Rh * Rw))))`` with ``ch_k`` the
channels block k reads (a pruned kernel leaves blocks with different counts). Ties: fewer
partial-sum tiles, then fewer total axon rows (``sum over blocks of n_axons``: less input
replication, i.e. higher utilisation of the rows actually wired; the full-crossbar
utilisation ``nnz / (tiles*axons*neurons)`` is the same for equal tile counts), then the
smaller ``ph`` (wider, row-major patches), then the larger ``cb``. If even one channel of
a 1x1 patch needs more than ``axons`` rows (a kernel with more than ``axons`` taps) the
population falls back to the dense/sparse rule above on the explicit synapses
(refused above ``models.net.DEFAULT_MAX_NNZ`` synapses).
"""

from __future__ import annotations

import math

import numpy as np

from models.ops import ConvGeometry

from .chunks import nextfit_vec
from .limits import ChipLimits, TilingError, ceil_div, read_chip


class ConvItem:
    """Per conv projection: the geometry tables the block choice and the tiles need."""

    def __init__(self, q):
        self.q = q
        g = q.geom
        self.key = (q.src, q.delay_steps)
        self.mode = q.mode
        self.H, self.W = g.in_hw
        wnz = q.weight != 0
        self.Th = self._touched(g, 0, wnz.any(axis=(0, 1, 3)))  # (OH, H)
        self.Tw = self._touched(g, 1, wnz.any(axis=(0, 1, 2)))  # (OW, W)
        self.Vh = g.tap_valid(0).astype(np.int64)  # (OH, kh)
        self.Vw = g.tap_valid(1).astype(np.int64)
        cout, cin = g.out_channels, g.in_channels
        self.cin_g, self.cout_g = cin // g.groups, cout // g.groups
        o = np.arange(cout)
        self.ch_of = (o // self.cout_g * self.cin_g)[:, None] + np.arange(self.cin_g)[None, :]  # (Cout, cin_g)
        self.chmask = np.zeros((cout, cin), dtype=bool)
        self.chmask[o[:, None], self.ch_of] = wnz.any(axis=(2, 3))
        self.wnz = wnz

    @staticmethod
    def _touched(g: ConvGeometry, axis: int, taps: np.ndarray) -> np.ndarray:
        n, k, s, p, d = (g.in_hw[axis], g.kernel[axis], g.stride[axis], g.padding[axis], g.dilation[axis])
        out = g.out_hw[axis]
        i = np.arange(out)[:, None]
        pos = s * i - p + d * np.flatnonzero(taps)[None, :]
        ok = (pos >= 0) & (pos < n)
        T = np.zeros((out, n), dtype=bool)
        T[np.broadcast_to(i, pos.shape)[ok], pos[ok]] = True
        return T

    def axis_rows(self, axis: int, size: int) -> np.ndarray:
        T = self.Th if axis == 0 else self.Tw
        starts = np.arange(0, T.shape[0], size)
        return np.logical_or.reduceat(T, starts, axis=0).sum(axis=1)

    def channel_counts(self, cb: int) -> np.ndarray:
        starts = np.arange(0, self.chmask.shape[0], cb)
        return np.logical_or.reduceat(self.chmask, starts, axis=0).sum(axis=1)



def choose_block(C, OH, OW, items, others, hw: ChipLimits):
    """(cb, ph, pw) minimising the tile count (module docstring), or None if none fits."""
    A, N = hw.axons, hw.neurons
    cbs = block_sizes(C, min(C, N))
    extra = {it.cout_g * m for it in items if it.cout_g > 1 for m in range(1, C // it.cout_g + 1)}
    cbs = np.union1d(cbs, np.array([v for v in extra if v <= min(C, N)], dtype=np.int64))
    phs, pws = block_sizes(OH, min(OH, N)), block_sizes(OW, min(OW, N))
    CB, PH, PW = np.meshgrid(cbs, phs, pws, indexing="ij")
    posts = CB * PH * PW
    ok = posts <= N
    nblocks = ceil_div(C, CB) * ceil_div(OH, PH) * ceil_div(OW, PW)
    bins = np.ones(CB.shape, dtype=np.int64)
    fill = np.zeros(CB.shape, dtype=np.int64)
    rows_total = np.zeros(CB.shape, dtype=np.float64)
    for it in items:
        ch = [it.channel_counts(int(cb)) for cb in cbs]
        chmax = np.array([c.max(initial=0) for c in ch])[:, None, None]
        chsum = np.array([c.sum() for c in ch])[:, None, None]
        rh = [it.axis_rows(0, int(p)) for p in phs]
        rw = [it.axis_rows(1, int(p)) for p in pws]
        hmax = np.array([r.max(initial=0) for r in rh])[None, :, None]
        wmax = np.array([r.max(initial=0) for r in rw])[None, None, :]
        hsum = np.array([r.sum() for r in rh])[None, :, None]
        wsum = np.array([r.sum() for r in rw])[None, None, :]
        w = hmax * wmax
        ok &= np.broadcast_to(w <= A, ok.shape)
        bins, fill = nextfit_vec(bins, fill, chmax, w, A)
        rows_total = rows_total + chsum * hsum * wsum
    for _key, qs, _m in others:
        n = np.minimum(qs[0].n_pre, sum(q.max_fan_in() for q in qs) * posts)
        bins, fill = nextfit_vec(bins, fill, n, 1, A)
        rows_total = rows_total + n * nblocks
    if not ok.any():
        return None
    tiles = nblocks * bins
    partial = nblocks * (bins - 1)
    if len(items) == 1 and not others:
        # Exact per channel block (a pruned kernel leaves blocks with different channel
        # counts): tiles = patches x sum_k max(1, ceil(ch_k / floor(A / w))).
        it = items[0]
        patches = ceil_div(OH, PH) * ceil_div(OW, PW)
        wh = np.array([it.axis_rows(0, int(p)).max(initial=0) for p in phs])[None, :, None]
        ww = np.array([it.axis_rows(1, int(p)).max(initial=0) for p in pws])[None, None, :]
        per = np.maximum(A // np.maximum(wh * ww, 1), 1)
        for i, cb in enumerate(cbs):
            ch = it.channel_counts(int(cb))[:, None, None, None]
            b = np.maximum(1, ceil_div(ch, per[None])).sum(axis=0)  # (nph, npw)
            tiles[i] = patches[i] * b
            partial[i] = patches[i] * (b - ch.shape[0])
    sel = np.flatnonzero(ok.ravel())
    order = np.lexsort((-CB.ravel()[sel], PH.ravel()[sel], rows_total.ravel()[sel],
                        partial.ravel()[sel], tiles.ravel()[sel]))
    b = sel[order[0]]
    return int(CB.ravel()[b]), int(PH.ravel()[b]), int(PW.ravel()[b])


def conv_block_options(q, chip, include: tuple | None = None) -> list[dict]:
    """Channel-block sizes a conv projection ``q`` (dense kernel) could be tiled with.

    For every ``cb`` dividing the output channels (at most the crossbar's neurons) the
    patch ``(ph, pw)`` with ``cb * ph * pw <= neurons`` and ``Rh * Rw <= axons`` that
    needs the fewest crossbars per kept input channel of a block, i.e. the smallest
    ``patches / cap`` with ``patches = ceil(H'/ph) * ceil(W'/pw)`` and ``cap = floor(axons
    / (Rh * Rw))`` channels per chunk (ties: fewer patches). ``include`` adds that exact
    block. Returns dicts ``cb, ph, pw, patches, cap`` (used by :mod:`mapper.prune`).
    """
    hw = read_chip(chip)
    A, N = hw.axons, hw.neurons
    it = ConvItem(q)
    C, OH, OW = (int(v) for v in q.geom.out_shape)
    phs, pws = block_sizes(OH, min(OH, N)), block_sizes(OW, min(OW, N))
    rh = {int(p): int(it.axis_rows(0, int(p)).max(initial=0)) for p in phs}
    rw = {int(p): int(it.axis_rows(1, int(p)).max(initial=0)) for p in pws}
    if include is not None:
        rh.setdefault(include[1], int(it.axis_rows(0, include[1]).max(initial=0)))
        rw.setdefault(include[2], int(it.axis_rows(1, include[2]).max(initial=0)))

    def option(cb, ph, pw):
        w = rh[ph] * rw[pw]
        if cb * ph * pw > N or w > A or w == 0:
            return None
        return {"cb": cb, "ph": ph, "pw": pw, "patches": ceil_div(OH, ph) * ceil_div(OW, pw), "cap": A // w}

    out = []
    for cb in (d for d in range(1, min(C, N) + 1) if C % d == 0):
        best = None
        for ph in rh:
            for pw in rw:
                o = option(cb, ph, pw)
                if o is not None and (best is None or (o["patches"] * best["cap"], o["patches"])
                                      < (best["patches"] * o["cap"], best["patches"])):
                    best = o
        if best is not None:
            out.append(best)
    if include is not None and not any((o["cb"], o["ph"], o["pw"]) == tuple(include) for o in out):
        o = option(*(int(v) for v in include))
        if o is None:
            raise TilingError(f"conv block {include} does not fit a crossbar")
        out.append(o)
    return out


def block_sizes(n: int, cap: int) -> np.ndarray:
    """Block sizes worth trying for a dimension of n: every ceil(n/m) (one per distinct
    block count) and every divisor of n, capped at ``cap``."""
    s = {ceil_div(n, m) for m in range(1, n + 1)}
    s |= {d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0}
    s |= {n // d for d in list(s) if n % d == 0}
    return np.array(sorted(v for v in s if 1 <= v <= cap), dtype=np.int64)
