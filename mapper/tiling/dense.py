"""Dense and sparse populations: column blocks of ``neurons`` posts, their rows cut in order.

Also the exact fallback of a conv population whose kernel does not fit a crossbar, and
:func:`row_counts`, the nonzero rows of dense/sparse projections that conv tiles reuse.

Dense / sparse populations (every incoming projection dense or sparse)
---------------------------------------------------------------------
Post-neurons are cut in index order into ``ceil(n_post / neurons)`` column blocks. The
rows of a block are, per axon key in order of the incoming projections, the sorted
pre-neurons with a nonzero weight to some post of the block (the union over the
projections of that key). ``R`` rows are cut in order into ``ceil(R / axons)`` chunks. A
dense ``n_pre x n_post`` W therefore takes ``ceil(n_post/neurons) * ceil(n_pre/axons)``
crossbars.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.net import DEFAULT_MAX_NNZ

from .limits import ChipLimits, TilingError, ceil_div
from .tiles import Tile


class DenseLayout:
    """Column blocks of ``neurons`` posts in index order, rows chunked in order."""

    kind = "dense"

    def __init__(self, pop, projs, hw: ChipLimits):
        self.name = pop.name
        self.size = pop.size
        self.hw = hw
        self.keys: dict = {}
        for q in projs:
            self.keys.setdefault((q.src, q.delay_steps), []).append(q)
        total = sum(q.nnz for q in projs) if any(q.kind == "conv" for q in projs) else 0
        if total > DEFAULT_MAX_NNZ:
            raise TilingError(
                f"population '{pop.name}': a kernel tap set exceeds {hw.axons} axons for one input channel, and "
                f"the exact fallback would expand {total:,} synapses (limit {DEFAULT_MAX_NNZ:,})")
        self.n_chunks = 1

    def make_tiles(self, first_id: int, next_group):
        A, N = self.hw.axons, self.hw.neurons
        tiles = []
        tid = first_id
        for b in range(max(1, ceil_div(self.size, N))):
            posts, segs = self._block(b)
            R = sum(s[1].size for s in segs)
            n_chunks = max(1, ceil_div(R, A))
            self.n_chunks = max(self.n_chunks, n_chunks)
            offsets = np.cumsum([0] + [s[1].size for s in segs])
            soma = tid
            for j in range(n_chunks):
                lo, hi = j * A, min(R, (j + 1) * A)
                axons, used, mode = [], 0, "AC"
                for (key, rows, cnt, m), o0, o1 in zip(segs, offsets[:-1], offsets[1:]):
                    a, e = max(lo, o0), min(hi, o1)
                    if a >= e:
                        continue
                    axons.append((key[0], key[1], rows[a - o0:e - o0]))
                    used += int(cnt[a - o0:e - o0].sum())
                    mode = "MAC" if m == "MAC" else mode
                tiles.append(Tile(tid, self.name, "soma" if j == 0 else "partial", soma, hi - lo if R else 0,
                                  posts.size, used, mode, ("dense", b, j), next_group(),
                                  _post=posts, _axons=axons))
                tid += 1
        self.tile_ids = [t.id for t in tiles]
        return tiles

    def _block(self, b: int) -> tuple:
        """Column block ``b``: its posts and its row segments ``[(key, rows, counts, mode)]``."""
        N = self.hw.neurons
        posts = np.arange(b * N, min(self.size, (b + 1) * N), dtype=np.int64)
        segs = []
        for key, qs in self.keys.items():
            cnt = row_counts(qs, posts)
            rows = np.flatnonzero(cnt)
            segs.append((key, rows, cnt[rows], "MAC" if any(q.mode == "MAC" for q in qs) else "AC"))
        return posts, segs

    def count_tiles(self) -> int:
        """The number of tiles :meth:`make_tiles` builds, without building them."""
        return sum(max(1, ceil_div(sum(s[1].size for s in self._block(b)[1]), self.hw.axons))
                   for b in range(max(1, ceil_div(self.size, self.hw.neurons))))

    n_patches = 1

    def crossbars(self, f: int) -> list:
        return [[i] for i in self.tile_ids]

    def describe(self) -> dict:
        return {"kind": "dense", "block": None, "in_chunks": self.n_chunks}


def row_counts(qs, posts: np.ndarray) -> np.ndarray:
    """(n_pre,) number of the given posts each pre-neuron reaches through any of ``qs``
    (same source and delay: the union of their nonzero patterns)."""
    if len(qs) == 1:
        q = qs[0]
        if q.kind == "dense":
            wnz = q.weight[posts] != 0  # (n, K)
            if q.pre_map is None:
                return np.count_nonzero(wnz, axis=0).astype(np.int64)
            pm = sp.csc_matrix(q.pre_map != 0)
            nnz_col = np.diff(pm.indptr)
            if nnz_col.max(initial=0) <= 1:  # pooling/flatten: each pre feeds at most one k
                kof = np.full(pm.shape[1], -1, dtype=np.int64)
                has = nnz_col == 1
                kof[has] = pm.indices[pm.indptr[:-1][has]]
                per_k = np.count_nonzero(wnz, axis=0).astype(np.int64)
                return np.where(kof >= 0, per_k[np.maximum(kof, 0)], 0)
        if q.kind == "sparse":
            if q._csc is None:
                q._csc = q.csr.tocsc()
            blk = q._csc[:, posts]
            return np.bincount(blk.indices, minlength=q.n_pre).astype(np.int64)
    pat = None
    for q in qs:
        p = _pattern(q, posts)
        pat = p if pat is None else (pat + p)
    pat = sp.csr_matrix(pat).astype(bool)
    return np.asarray(pat.getnnz(axis=1), dtype=np.int64)


def _pattern(q, posts) -> sp.csr_matrix:
    """Boolean (n_pre, len(posts)) nonzero pattern of ``q`` restricted to ``posts``."""
    if q.kind == "dense":
        wnz = sp.csr_matrix((q.weight[posts] != 0).astype(np.int64))  # (n, K)
        if q.pre_map is None:
            return wnz.T.tocsr().astype(bool)
        return (sp.csr_matrix(q.pre_map != 0, dtype=np.int64).T @ wnz.T).astype(bool).tocsr()
    m = q.weights_for_posts(posts)
    return (sp.csr_matrix(m) != 0).tocsr()
