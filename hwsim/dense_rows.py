"""Dense projections compiled without their crossbar entries (issue 17): the dense half of
the geometric event path (``hwsim.compile(mapping, conv_path="geometric")``), beside
:mod:`hwsim.conv_rows` for convolutions.

A quantised :class:`~models.net.DenseProjection` computes ``acc = W (P x)`` with W the
(n_post, K) integer matrix and P an optional 0/1 ``pre_map`` with at most one nonzero per
column (a flatten, or a non-overlapping pooling composed in front: ``mapper.quantize``
keeps only those). So pre ``i`` reaches post ``o`` through the one weight
``W[o, k(i)]``, with ``k(i)`` the row of P's column ``i`` (``k(i) = i`` without P,
``k(i) = -1`` when the column is empty). An event of value ``x`` on pre ``i`` adds
``W[o, k(i)] * x`` to every post's accumulator: one contiguous run of row ``k(i)`` of
``W^T`` (:func:`hwsim.engine.events.conv_event`, the ``kh = 0`` case), whatever the
tiling, since every tile of a projection adds into the same accumulator before the shift.
The program keeps ``W^T`` once (K x n_post, the narrowest integer type, e.g. VGG-16
ImageNet's first fully connected layer: 102.8 M bytes instead of 411 M crossbar entries
at 10 bytes each) and the map ``k``, and per tile row only its counts: the row of pre
``i`` in a tile holding the posts ``[p0, p1)`` holds

    n(i) = #{o in [p0, p1) : W[o, k(i)] != 0}        (0 if k(i) = -1)

entries, in distinct columns (so ``n`` is also its used columns); per soma tile one
count per ``k`` (O(weights) in all). As for convolutions, compile checks that no pre is
a row of two tiles of one soma and that the rows' counts add up to the projection's
nonzero synapses ``sum_i n_all(i)``, so every synapse lies in exactly one tile.

A dense projection qualifies when it is alone on its (destination, source, delay) key,
its ``pre_map`` (if any) is 0/1 with at most one nonzero per column, and every tile of
its destination holds a contiguous range of posts (the mapper's dense column blocks).
Its ``geo_geom`` row (:data:`hwsim.conv_rows.GEOM_COLS` columns) marks it with
``kh = kw = 0``: ``(K, n_pre, 0, n_post, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, K, n_post)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.net import DenseProjection

from .conv_rows import TileRows


def post_range(post: np.ndarray) -> tuple | None:
    """``(p0, p1)`` when ``post`` is exactly ``p0, p0 + 1, ..., p1 - 1``, else None."""
    if post.size == 0:
        return None
    p0 = int(post[0])
    if int(post[-1]) - p0 + 1 != post.size or not np.array_equal(post, np.arange(p0, p0 + post.size)):
        return None
    return p0, p0 + post.size


def kernel_rows(q: DenseProjection) -> np.ndarray | None:
    """``k(i)`` for every pre ``i`` (module docstring; -1: no weight), or None when the
    ``pre_map`` is not 0/1 with at most one nonzero per column."""
    if q.pre_map is None:
        return np.arange(q.n_pre, dtype=np.int64)
    pm = sp.csc_matrix(q.pre_map)
    pm.eliminate_zeros()
    per_col = np.diff(pm.indptr)
    if per_col.max(initial=0) > 1 or (pm.data != 1).any():
        return None
    k = np.full(q.n_pre, -1, np.int64)
    has = per_col == 1
    k[has] = pm.indices[pm.indptr[:-1][has]]
    return k


class DenseRows(TileRows):
    """One dense projection on the geometric path: its row map and the rows seen so far
    (the same interface as :class:`hwsim.conv_rows.ConvRows`)."""

    def __init__(self, j: int, q: DenseProjection, k: np.ndarray):
        self.j, self.q, self.k = j, q, k
        self.w = np.asarray(q.weight)
        self.total = 0
        self.soma = -1
        self.rows: list = []
        self.nzk = None  # nonzero weights per kernel row k among the current soma's posts

    @property
    def nnz(self) -> int:
        """Nonzero synapses: ``sum_i #{o : W[o, k(i)] != 0}``."""
        per_k = np.count_nonzero(self.w, axis=0).astype(np.int64)
        kk = self.k[self.k >= 0]
        return int(per_k[kk].sum())

    def count(self, idx: np.ndarray, post: np.ndarray, soma: int) -> np.ndarray:
        """Entries (= used columns) of the rows ``idx`` (pre indices) of a tile of soma
        ``soma`` holding the posts ``post`` (module docstring); remembers the rows for :meth:`check`."""
        if soma != self.soma:
            self._check_soma()
            self.soma = soma
            rng = post_range(post)
            if rng is None:
                raise ValueError(f"soma tile {soma} does not hold a contiguous range of posts")
            self.nzk = np.count_nonzero(self.w[rng[0]:rng[1]], axis=0).astype(np.int64)
        self.rows.append(idx)
        k = self.k[idx]
        n = np.where(k >= 0, self.nzk[np.maximum(k, 0)], 0)
        self.total += int(n.sum())
        return n

    def kernel(self, w_dt) -> np.ndarray:
        """``W^T`` flattened (row ``k`` = the weights of kernel row ``k`` to every post)."""
        return np.ascontiguousarray(self.w.T, dtype=w_dt).reshape(-1)

    def geometry(self) -> list:
        K, n_post = self.w.shape[1], self.w.shape[0]
        return [K, self.q.n_pre, 0, n_post, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, K, n_post]

    def kmap(self) -> np.ndarray:
        return self.k


def weights_ok(q: DenseProjection, wmax: int) -> bool:
    """Every weight is an integer of magnitude <= ``wmax`` (what compile checks on the explicit entries)."""
    w = np.asarray(q.weight)
    return not w.size or (int(np.abs(w).max()) <= wmax and (w.dtype.kind in "iu" or np.array_equal(w, np.round(w))))


def plan(projs, tiles, pidx: dict, conv_path: str) -> dict:
    """``{projection index: DenseRows}`` of the dense projections compiled geometrically
    (module docstring): every qualifying one for ``conv_path="geometric"``, none for ``"rows"``."""
    if conv_path == "rows":
        return {}
    keys: dict = {}
    for q in projs:
        keys[(q.dst, q.src, q.delay_steps)] = keys.get((q.dst, q.src, q.delay_steps), 0) + 1
    want = {q.dst for q in projs if isinstance(q, DenseProjection)}
    ranged: dict = {}
    for t in tiles:
        if t.population in want and ranged.get(t.population, True):
            ranged[t.population] = post_range(np.asarray(t.post, np.int64).reshape(-1)) is not None
    out = {}
    for j, q in enumerate(projs):
        if not isinstance(q, DenseProjection) or keys[(q.dst, q.src, q.delay_steps)] != 1:
            continue
        if not ranged.get(q.dst, False) or pidx.get(q.dst) is None:
            continue
        k = kernel_rows(q)
        if k is not None:
            out[j] = DenseRows(j, q, k)
    return out
