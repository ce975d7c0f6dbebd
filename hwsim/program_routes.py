"""Where a compiled program's spikes and input events go: the route tables of
:func:`hwsim.program.compile` (``nrn_dst_*``, ``nrn_pk``, ``nrn_hops``, ``nrn_icx`` and
the ``in_*`` tables of the graph input).

A source neuron's spike (or an input event) goes to every core holding a tile with
one of its rows: the distinct (source, core) pairs, collected per source population
while compile walks the tiles (:class:`DestPairs`). Per source ``i`` with remote
destination cores ``D_i`` (a neuron's own core excluded; an input event comes from the
I/O port at global ``(-1, 0)``): packets ``|D_i|`` (unicast) or 1 (xy-tree), flit-hops
``sum_{d in D_i} |x_d - x_i| + |y_d - y_i|`` (unicast) or the links of the XY tree
(:func:`xy_trees`), inter-chip crossings likewise on chip coordinates.

Memory (issue 17, VGG-16 ImageNet has tens of millions of pairs): the pairs are kept as
one int64 key ``i * n_cores + core`` each (``i`` local to its population), deduplicated
as they grow; the tables are then filled population by population and, within one, in
chunks of at most :data:`CHUNK` pairs and sources, so the temporaries of the statistics
(about ten int64 per pair) never exceed a few hundred MB whatever the net's size.
The result does not depend on the chunking (every source's figures are its own).
"""

from __future__ import annotations

import numpy as np

#: pairs (and sources) per chunk of the statistics: ~10 int64 temporaries each, ~0.3 GB
CHUNK = 1 << 22


def sorted_unique(key: np.ndarray) -> np.ndarray:
    """The distinct values of ``key``, sorted (``key`` is sorted in place; np.unique hashes:
    2 s on VGG-16 CIFAR's pairs)."""
    key.sort()
    return key[np.concatenate([key[:1] == key[:1], key[1:] != key[:-1]])]


class PairSet:
    """Distinct int64 keys (pairs ``i * n_cores + core``), deduplicated whenever the
    pending keys outgrow the kept ones (a pair repeats once per tile of a core:
    ImageNet-size nets would otherwise hold tens of millions of repeats)."""

    def __init__(self, n_cores: int):
        self.c = max(int(n_cores), 1)
        self.kept = np.zeros(0, np.int64)
        self.pending: list = []
        self.n = 0

    def add(self, key: np.ndarray) -> None:
        self.pending.append(np.asarray(key, np.int64))
        self.n += key.size
        if self.n > max(2 * self.kept.size, 1 << 20):
            self.merge()

    def merge(self) -> None:
        if not self.pending:
            return
        parts = [self.kept] + self.pending
        self.pending = []
        self.kept = sorted_unique(np.concatenate(parts) if len(parts) > 1 else parts[0])
        self.n = self.kept.size

    def keys(self) -> np.ndarray:
        """The distinct keys, sorted (so by neuron, then core)."""
        self.merge()
        return self.kept

    def pairs(self) -> np.ndarray:
        """(n, 2) distinct pairs sorted by neuron then core (as ``np.unique(axis=0)``)."""
        k = self.keys()
        return np.stack([k // self.c, k % self.c], axis=1)


class DestPairs:
    """The distinct (source neuron, core) pairs of each source population (a
    :class:`PairSet` each, keys local to the population)."""

    def __init__(self, n_cores: int):
        self.c = max(int(n_cores), 1)
        self.sets: dict = {}

    def add(self, s: int, idx: np.ndarray, core: int) -> None:
        """Neurons ``idx`` (local indices) of population ``s`` send to core ``core``."""
        if idx.size:
            self.sets.setdefault(s, PairSet(self.c)).add(idx * self.c + int(core))

    def take(self, s: int) -> np.ndarray:
        """Population ``s``'s distinct keys, sorted; its set is dropped."""
        ps = self.sets.pop(s, None)
        return ps.keys() if ps is not None else np.zeros(0, np.int64)


def _chunks(n: int):
    for lo in range(0, n, CHUNK):
        yield lo, min(lo + CHUNK, n)


def route_tables(pairs: DestPairs, pops, off: np.ndarray, n_items: int, own_core, core_xy: np.ndarray,
                 core_chip: np.ndarray, cw: int, ch: int, multicast: str) -> tuple:
    """``(dst_ptr, dst_core, pk, hops, icx)`` over ``n_items`` sources: the sources of
    population ``s`` in ``pops`` are items ``off[s] + i``. ``own_core`` (per item) is a
    neuron's core, whose pairs are dropped (a spike to its own core does not use the
    NoC); None: the sources are inputs sent from the I/O port at global ``(-1, 0)``."""
    C = pairs.c
    count = np.zeros(n_items, np.int64)
    keys = {}
    for s in pops:  # pass 1: each population's distinct pairs, the remote ones only
        k = pairs.take(s)
        if own_core is not None and k.size:
            keep = np.zeros(k.size, bool)
            for lo, hi in _chunks(k.size):
                i = k[lo:hi] // C
                keep[lo:hi] = own_core[off[s] + i] != k[lo:hi] - i * C
            k = k[keep]
            del keep
        for lo, hi in _chunks(k.size):  # sorted keys: a chunk's neurons are one range i[0]..i[-1]
            i = k[lo:hi] // C
            count[off[s] + i[0]:off[s] + i[-1] + 1] += np.bincount(i - i[0])
        keys[s] = k
    ptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(count, out=ptr[1:])
    del count
    dst_core = np.empty(int(ptr[-1]), np.int64)
    pk, hops, icx = (np.zeros(n_items, np.int64) for _ in range(3))
    for s in list(keys):  # pass 2: population by population, chunks of sources and of pairs
        k = keys.pop(s)
        if not k.size:
            continue
        a, b = int(off[s]), int(off[s + 1])
        p0 = int(ptr[a])
        for lo, hi in _chunks(k.size):
            dst_core[p0 + lo:p0 + hi] = k[lo:hi] % C
        del k
        lo = a
        while lo < b:
            # at most CHUNK sources and CHUNK pairs, but at least one source
            hi = min(b, lo + CHUNK, max(lo + 1, int(np.searchsorted(ptr, ptr[lo] + CHUNK, "right")) - 1))
            cp = ptr[lo:hi + 1] - ptr[lo]
            if own_core is None:
                src_xy = np.tile(np.array([[-1, 0]], np.int64), (hi - lo, 1))
            else:
                src_xy = core_xy[np.maximum(own_core[lo:hi], 0)]
            pk[lo:hi], hops[lo:hi], icx[lo:hi] = dest_stats(src_xy, cp, dst_core[ptr[lo]:ptr[hi]], core_xy,
                                                            core_chip, cw, ch, multicast)
            lo = hi
    return ptr, dst_core, pk, hops, icx


def xy_trees(src_xy: np.ndarray, ptr: np.ndarray, d_xy: np.ndarray, cw: int, ch: int) -> tuple:
    """Per item ``i``: links of the union of XY paths (x first, then y) from ``src_xy[i]`` to
    the destinations ``d_xy[ptr[i]:ptr[i+1]]``, and how many join two different chips
    (``cw x ch`` cores per chip; the I/O port at x = -1 belongs to chip 0). Every path
    runs along row ``sy`` first, so the union is the row span ``[min(sx, dx), max(sx, dx)]``
    plus, per destination column ``X``, the span ``[min(sy, dy), max(sy, dy)]`` over that
    column's destinations: links = span lengths; a chip index ``max(v, 0) // cw`` never
    falls along a span, so a span's crossings are ``chip(hi) - chip(lo)``. Vectorised
    over all items (one Python loop per item took 8 s of a ResNet-18 compile)."""
    n = ptr.size - 1
    links, cross = np.zeros(n, np.int64), np.zeros(n, np.int64)
    has = np.flatnonzero(np.diff(ptr))
    if not has.size:
        return links, cross
    own = np.repeat(np.arange(n), np.diff(ptr))
    sx, sy = src_xy[own, 0], src_xy[own, 1]
    dx, dy = d_xy[:, 0], d_xy[:, 1]
    lo = np.minimum.reduceat(np.minimum(dx, sx), ptr[has])
    hi = np.maximum.reduceat(np.maximum(dx, sx), ptr[has])
    links[has] = hi - lo
    cross[has] = np.maximum(hi, 0) // cw - np.maximum(lo, 0) // cw
    o = np.lexsort((dx, own))  # by item, then column
    own_o, dx_o = own[o], dx[o]
    col = np.flatnonzero(np.concatenate([[True], (own_o[1:] != own_o[:-1]) | (dx_o[1:] != dx_o[:-1])]))
    ylo = np.minimum.reduceat(np.minimum(dy, sy)[o], col)
    yhi = np.maximum.reduceat(np.maximum(dy, sy)[o], col)
    links += np.bincount(own_o[col], weights=yhi - ylo, minlength=n).astype(np.int64)
    cross += np.bincount(own_o[col], weights=np.maximum(yhi, 0) // ch - np.maximum(ylo, 0) // ch,
                         minlength=n).astype(np.int64)
    return links, cross


def dest_stats(src_xy, ptr, dcores, core_xy, core_chip, cw, ch, multicast):
    """Per item (neuron / input): packets, flit-hops and inter-chip crossings of one event
    sent from ``src_xy[i]`` to cores ``dcores[ptr[i]:ptr[i+1]]`` (unicast copies or an XY tree)."""
    n = ptr.size - 1
    pk, hops_o, icx_o = (np.zeros(n, np.int64) for _ in range(3))
    cnt_d = np.diff(ptr)
    has = np.flatnonzero(cnt_d)
    if not has.size:
        return pk, hops_o, icx_o
    if multicast == "unicast":
        own = np.repeat(np.arange(n), cnt_d)
        sxy = src_xy[own]
        schip = np.stack([np.maximum(sxy[:, 0], 0) // cw, np.maximum(sxy[:, 1], 0) // ch], axis=1)
        hops = np.abs(core_xy[dcores] - sxy).sum(axis=1)
        icx = np.abs(core_chip[dcores] - schip).sum(axis=1)
        pk[:] = cnt_d
        hops_o[:] = np.bincount(own, weights=hops, minlength=n).astype(np.int64)
        icx_o[:] = np.bincount(own, weights=icx, minlength=n).astype(np.int64)
    else:
        pk[has] = 1
        hops_o[:], icx_o[:] = xy_trees(src_xy, ptr, core_xy[dcores], cw, ch)
    return pk, hops_o, icx_o
