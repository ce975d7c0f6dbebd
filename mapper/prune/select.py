r"""The selection solve: which (block, chunk) pairs a layer keeps, and in which column and input order.

:func:`top_pairs` keeps the ``k`` most important pairs; :func:`solve` runs the
alternating loop of the column grain (top-``k`` pairs, then an exact re-assignment of
columns, and of input units with ``reorder=True``) from several starts.

zeroes ``W[c, u]`` for every column ``c`` of block ``b`` and unit ``u`` of chunk ``j``.

Grains
------
* ``crossbar``: blocks and chunks are those of the unpruned mapping (columns and units
  in index order); the ``k`` pairs with the largest ``J[b, j] = sum_{c in b, u in j}
  I[c, u]`` are kept.
* ``column``: each column keeps its own set of chunks; columns that keep the same chunks
  are recombined into the same crossbars (output recombination) by permuting the
  layer's outputs. It alternates two exact steps until the kept importance stops
  growing: choose the top-``k`` pairs of ``J`` for the current column order, then
  re-assign every column to a block slot so that ``sum_c sum_{j kept by block(c)}
  I[c, chunk j]`` is maximal (a linear assignment, :func:`scipy.optimize.linear_sum_assignment`).
  For a conv layer it also tries every finer channel block the tiler could use with the
  same crossbars per kept kernel slice (e.g. 16 channels x 4x4 pixels instead of 32 x
  2x4) and keeps the best.
  This is the recombination of the paper under this chip's partial-sum rule (a
  partial-sum crossbar feeds one soma block); the paper's per-crossbar packing, which
  routes each column's partial sum separately, would need ``sum_j ceil(|S_j| / cb)``.
* ``reorder=True`` (input reordering) permutes the layer's input units (the channels or
  neurons of the population that feeds it) in the same alternating loop, so that the
  units of one chunk have similar importance per block. Units move as whole channels
  behind a flatten, never across the producer's own recombined blocks, and never for
  the graph input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .layers import Layer


def block_sums(imp: np.ndarray, cb: int, cap: int) -> np.ndarray:
    """``J[b, j]``: the importance of every (block of ``cb`` columns, chunk of ``cap`` units) pair."""
    C, U = imp.shape
    cs = np.add.reduceat(imp, np.arange(0, C, cb), axis=0)
    return np.add.reduceat(cs, np.arange(0, U, cap), axis=1)


def top_pairs(J: np.ndarray, k: int, noise: np.ndarray | None = None) -> np.ndarray:
    """Keep mask of the ``k`` largest pairs of ``J`` (n_blocks, n_chunks), at least one per block.

    With ``noise`` (same shape, Gumbel draws times a temperature) the ranking uses
    ``log J + noise``: the relaxed probabilistic projection.
    """
    nb, nc = J.shape
    k = int(min(max(k, nb), nb * nc))
    s = np.log(np.maximum(J, 1e-300))
    if noise is not None:
        s = s + noise
    keep = np.zeros(J.shape, dtype=bool)
    keep[np.arange(nb), np.argmax(s, axis=1)] = True  # every block keeps its best chunk
    rest = np.where(keep, -np.inf, s).ravel()
    extra = k - nb
    if extra > 0:
        idx = np.argpartition(-rest, extra - 1)[:extra]
        keep.ravel()[idx] = True
    return keep


def _assign(value: np.ndarray, slot_group: np.ndarray, n_groups: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Order of items maximising ``sum value[item, group(slot)]``: slot -> item.

    ``value`` (items, groups); ``slot_group[s]`` the group of slot s; ``allowed``
    (items, slots) bool or None. Exact (linear assignment)."""
    gain = value[:, slot_group]
    if allowed is not None:
        gain = np.where(allowed, gain, -1e30)
    rows, cols = linear_sum_assignment(-gain)
    order = np.empty(len(slot_group), dtype=np.int64)
    order[cols] = rows
    return order


@dataclass
class Solution:
    """The pruning of one layer: kept pairs, the column and input orders, the block."""

    layer: Layer
    keep: np.ndarray
    col_order: np.ndarray
    unit_order: np.ndarray
    cb: int
    cap: int
    patches: int
    block: tuple | None
    kept_importance: float
    total_importance: float

    @property
    def crossbars(self) -> int:
        return int(self.patches * np.maximum(1, self.keep.sum(axis=1)).sum())

    def mask(self) -> np.ndarray:
        """Weight mask (n_cols, n_units) in the FINAL (permuted) order."""
        C, U = self.layer.n_cols, self.layer.n_units
        return self.keep[np.arange(C) // self.cb][:, np.arange(U) // self.cap]


def _starts(imp: np.ndarray, cb: int, cap: int, restarts: int, seed: int) -> list:
    """Initial column orders for the column grain: the index order, columns sorted by the
    chunk that holds most of their importance (columns that want the same inputs side by
    side), and ``restarts`` random orders. The alternating loop only climbs, so the
    starts decide which local optimum it reaches."""
    C, U = imp.shape
    out = [np.arange(C)]
    if C > cb:
        per = np.add.reduceat(imp, np.arange(0, U, cap), axis=1)
        prof = per / np.maximum(per.sum(axis=1, keepdims=True), 1e-300)
        out.append(np.lexsort((-prof.max(axis=1), prof.argmax(axis=1))))
        rng = np.random.default_rng(seed)
        out += [rng.permutation(C) for _ in range(restarts)]
    return out


def solve(layer: Layer, imp: np.ndarray, k_pairs: int, grain: str, reorder: bool, *,
          frozen_units: np.ndarray | None = None, cb: int | None = None, cap: int | None = None,
          iters: int = 20, restarts: int = 8, seed: int = 0, patches: int | None = None,
          block: tuple | None = None) -> Solution:
    """Choose kept pairs (and orders) for one layer; see the module docstring.

    The column grain runs the alternating loop from every start of :func:`_starts` and
    keeps the best; the crossbar grain starts from the index order only.
    """
    cb = cb or layer.cb
    cap = cap or layer.cap
    patches = patches or layer.patches
    block = block if block is not None else layer.block
    starts = _starts(imp, cb, cap, restarts, seed) if grain == "column" and layer.out_permutable else [None]
    sols = [_climb(layer, imp, k_pairs, grain, reorder, frozen_units, cb, cap, patches, block, iters, s)
            for s in starts]
    return max(sols, key=lambda s: s.kept_importance)


def _climb(layer, imp, k_pairs, grain, reorder, frozen_units, cb, cap, patches, block, iters, start) -> Solution:
    C, U = imp.shape
    col_order = np.arange(C) if start is None else np.asarray(start)
    unit_order = np.arange(U)
    col_block = np.arange(C) // cb
    nb = -(-C // cb)
    g = layer.granule if reorder else 0
    best = None
    for _ in range(iters):
        cur = imp[col_order][:, unit_order]
        keep = top_pairs(block_sums(cur, cb, cap), k_pairs)
        kept = float((cur * keep[col_block][:, np.arange(U) // cap]).sum())
        if best is not None and kept <= best[0] + 1e-12 * max(1.0, abs(kept)):
            break
        best = (kept, keep, col_order.copy(), unit_order.copy())
        if grain == "column" and layer.out_permutable and nb > 1:
            per_chunk = np.add.reduceat(imp[:, unit_order], np.arange(0, U, cap), axis=1)  # (C, chunks)
            value = per_chunk @ keep.T.astype(np.float64)  # (C, blocks)
            col_order = _assign(value, col_block, nb)
        if g and U // cap > 1:
            # whole granules to granule slots: value of granule x in chunk j
            cols_in = keep[col_block][np.argsort(col_order)]  # original column -> kept chunks of its block
            per_unit = imp.T @ cols_in.astype(np.float64)  # (U, chunks): importance kept if unit sits in chunk j
            G = U // g
            gval = per_unit.reshape(G, g, -1).sum(axis=1)
            slot_chunk = (np.arange(G) * g) // cap
            allowed = None
            if frozen_units is not None:
                # a granule stays inside the producer's block (its recombined crossbars)
                grp = frozen_units.reshape(G, g)[:, 0]
                allowed = grp[:, None] == grp[None, :]
            gorder = _assign(gval, slot_chunk, int(slot_chunk.max()) + 1, allowed)
            unit_order = (gorder[:, None] * g + np.arange(g)[None, :]).ravel()
    kept, keep, col_order, unit_order = best
    return Solution(layer, keep, col_order, unit_order, cb, cap, patches, block, kept, float(imp.sum()))
