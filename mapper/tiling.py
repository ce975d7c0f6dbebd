"""Tiling: cut every population's incoming synapses into crossbar tiles and fold them onto cores.

This module owns the step ``Net -> Tiling`` of the flow (DESIGN.md section 5): which
post-neurons and which axons share a crossbar, which tiles send partial sums to which,
which tiles may be time-multiplexed on one crossbar (folding) and how crossbars are
packed into cores. Placement and routing consume the result.

Vocabulary
----------
A **tile** is one crossbar's worth of synapses: a set of post-neurons (columns, at most
``chip.core.neurons``) of ONE destination population and the axons (rows, at most
``chip.core.axons``) that feed them. An axon is a source neuron seen through one delay:
``(source population, delay_steps, pre index)``. A population with several incoming
projections (a ResNet block output: conv + skip) has one axon space, the union over its
projections, so rows of different sources share a crossbar.

When the axons of a block of post-neurons do not fit one crossbar the block is split
into an ordered list of **chunks** of rows; the first chunk is the **soma** tile (it holds
the neurons), the others are **partial-sum** tiles that send one multi-bit partial sum
per neuron and step to the soma tile.

Dense / sparse populations (every incoming projection dense or sparse)
---------------------------------------------------------------------
Post-neurons are cut in index order into ``ceil(n_post / neurons)`` column blocks. The
rows of a block are, per axon key in order of the incoming projections, the sorted
pre-neurons with a nonzero weight to some post of the block (the union over the
projections of that key). ``R`` rows are cut in order into ``ceil(R / axons)`` chunks. A
dense ``n_pre x n_post`` W therefore takes ``ceil(n_post/neurons) * ceil(n_pre/axons)``
crossbars.

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

**Input chunks (partial sums).** The row items of a channel block, in order: for each
conv projection its channels (each of cost ``Rh * Rw`` rows, the largest rows x columns
over the patches), then the other projections' rows (cost 1 each), are packed
**next-fit** into chunks of at most ``axons`` rows: a chunk takes whole channels while
they fit, and one projection's channels may span chunks. For a single conv projection
this is ``n_chunks = ceil(C_in / floor(axons / (Rh * Rw)))``. Chunks are cut by channel
(not by row count) so that all patches of a channel block share the same chunk boundaries
and hence identical weight matrices (the folding condition).

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

Folding (Tianjic's semi-folded mapping)
---------------------------------------
Tiles of one conv population with the same channel block and chunk have identical weight
matrices up to edge clipping (an edge patch's matrix is the interior one with the padding
rows and missing columns removed, so the interior matrix serves it): they share a
``weight_group``. A crossbar with fold ``f`` holds one weight group and runs up to ``f``
of its tiles (consecutive patches in raster order) one after another within a step: it
stores the weights once and the state of up to ``f * neurons`` neurons, and needs about
``f`` times the cycles. Chunks that contain rows of a non-conv projection and dense
populations are never folded (``f = 1``).

For a cap ``F`` each conv population with ``P`` patches gets the balanced fold
``f = ceil(P / ceil(P / min(F, limit)))`` (the same number of crossbars as ``min(F,
limit)``, with equal loads), where ``limit = min(core.max_fold, P, f_mem)`` and ``f_mem``
is the largest ``f`` with ``axons*neurons*weight_bits/8 + f*neurons*membrane_bits/8 <=
memory_bytes``. Without arguments ``F`` is the smallest in ``1..core.max_fold`` for which
the net fits ``mesh.width * mesh.height * mesh.max_chips`` cores, found by bisection (the
core count does not grow with ``F``), or ``core.max_fold`` if none does (``Tiling.fits``
is then False). ``max_fold=F`` forces the cap; ``fold={pop: f}``
(or one int for every conv population) forces exact values.

**Packing into cores.** Crossbars are taken in order (populations in net order; within a
conv population patch-group major: for each group of patches, each channel block, each
chunk, so a soma and its partial-sum tiles, and blocks that read the same inputs, are
neighbours) and a core takes up to ``core.crossbars_per_core`` crossbars of distinct
weight groups while ``distinct groups * axons*neurons*weight_bits/8 + sum(n_neurons) *
membrane_bits/8 <= memory_bytes`` (the rule of ``mapper.validate``). Two crossbars of one
weight group never share a core: tiles of one group on one core ARE folding, which the
fold decides (so a single-group layer at fold 1 gains nothing from crossbars_per_core > 1).

Storage of axon/post arrays
---------------------------
Conv tiles compute ``post`` and ``axons`` on demand from the geometry (an ImageNet
ResNet-18 has 53,410 tiles and ~1.3 10^7 rows in total); dense tiles store them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from models.errors import SnnchipError
from models.net import DEFAULT_MAX_NNZ, ConvProjection
from models.ops import ConvGeometry


class TilingError(SnnchipError):
    """The net cannot be tiled for this chip (names the population and the limit)."""


# ---------------------------------------------------------------------------------------
# public data
# ---------------------------------------------------------------------------------------

@dataclass(eq=False)
class Tile:
    """One crossbar's synapses (built by :func:`tile`).

    ``post`` (int64 post-neuron indices, the columns in order) and ``axons`` (the rows in
    order, as ``[(src_population, delay_steps, int64 pre indices)]``) are properties:
    stored for dense tiles, computed from the geometry for conv tiles.
    ``used_cells`` = nonzero (axon, neuron) pairs; utilisation = used_cells / (axons x
    neurons) of the chip (:meth:`Tiling.utilisation`).
    """

    id: int
    population: str
    kind: str  # "soma" | "partial"
    soma: int
    n_axons: int
    n_neurons: int
    used_cells: int
    mode: str  # "MAC" | "AC"
    block: tuple
    weight_group: int
    _post: np.ndarray | None = field(default=None, repr=False)
    _axons: list | None = field(default=None, repr=False)
    _layout: object = field(default=None, repr=False)

    @property
    def post(self) -> np.ndarray:
        return self._post if self._post is not None else self._layout.post(self.block)

    @property
    def axons(self) -> list:
        return self._axons if self._axons is not None else self._layout.axons(self.block)


@dataclass(eq=False)
class Tiling:
    """The tiles of a net, the crossbars (fold groups) and the cores that hold them.

    ``cores[k]`` lists the tile ids run by core k; ``crossbars[m]`` the tile ids that one
    crossbar time-multiplexes (one weight group, at most the population's fold);
    ``fold[population]`` is the fold used (1 for dense populations).
    """

    tiles: list
    cores: list
    fold: dict
    chip: object
    crossbars: list = field(default_factory=list)
    blocks: dict = field(default_factory=dict)  # population -> block description
    _unique_weights: dict = field(default_factory=dict, repr=False)

    def __repr__(self):
        return (f"Tiling({len(self.tiles):,} tiles, {self.n_crossbars:,} crossbars, {self.n_cores:,} cores, "
                f"fold <= {max(self.fold.values(), default=1)})")

    # -- sizes ---------------------------------------------------------------------------
    @property
    def n_cores(self) -> int:
        return len(self.cores)

    @property
    def n_crossbars(self) -> int:
        return len(self.crossbars)

    @property
    def cores_per_chip(self) -> int:
        return int(self.chip.mesh.width) * int(self.chip.mesh.height)

    @property
    def chips_needed(self) -> int:
        """``ceil(n_cores / (mesh.width * mesh.height))``."""
        return -(-self.n_cores // self.cores_per_chip)

    @property
    def fits(self) -> bool:
        return self.chips_needed <= int(self.chip.mesh.max_chips)

    @property
    def cycles_factor(self) -> int:
        """Cycles-per-step factor of folding: the largest number of tiles one crossbar runs."""
        return max((len(c) for c in self.crossbars), default=0)

    @property
    def core_of(self) -> np.ndarray:
        """(n_tiles,) core index of every tile."""
        out = np.full(len(self.tiles), -1, dtype=np.int64)
        for k, tids in enumerate(self.cores):
            out[np.asarray(tids, dtype=np.int64)] = k
        return out

    def utilisation(self) -> np.ndarray:
        """(n_tiles,) used cells / (axons x neurons)."""
        cap = int(self.chip.core.axons) * int(self.chip.core.neurons)
        return np.array([t.used_cells for t in self.tiles], dtype=np.float64) / cap

    def core_memory(self, chip=None) -> np.ndarray:
        """(n_cores, 2) bytes per core: [weights, state].

        weights = distinct weight groups x axons x neurons x weight_bits / 8;
        state = sum of the tiles' n_neurons x membrane_bits / 8 (a partial tile holds its
        partial sums at the same width), as ``mapper.validate`` counts them. ``chip``
        (default: the tiling's own) gives the crossbar size and bit widths.
        """
        c = (chip or self.chip).core
        wb = int(c.axons) * int(c.neurons) * int(c.weight_bits)
        out = np.zeros((len(self.cores), 2), dtype=np.int64)
        for k, tids in enumerate(self.cores):
            groups = {self.tiles[t].weight_group for t in tids}
            out[k, 0] = len(groups) * wb // 8
            out[k, 1] = sum(self.tiles[t].n_neurons for t in tids) * int(c.membrane_bits) // 8
        return out

    # -- reports -------------------------------------------------------------------------
    def per_population(self) -> list[dict]:
        """One dict per population with tiles.

        Keys: ``population``, ``kind`` (conv | dense), ``block`` (conv: ``(cb, ph, pw)``),
        ``in_chunks`` (chunks per block, max), ``tiles``, ``soma_tiles``, ``partial_tiles``,
        ``crossbars``, ``cores`` (cores holding any of its tiles), ``fold``,
        ``utilisation`` (mean over its tiles of used_cells / (axons x neurons)),
        ``used_cells``, ``weights_stored`` (cells held by its crossbars: the largest tile of
        each crossbar, i.e. with kernel duplication and after folding),
        ``weight_bytes_stored``, ``unique_weights`` (nonzero weights of its projections),
        ``duplication`` (stored / unique), ``state_bytes_per_core`` (largest over the
        cores holding it, all tiles of the core).
        """
        c = self.chip.core
        cap = int(c.axons) * int(c.neurons)
        core_of = self.core_of
        mem = self.core_memory()
        rows: dict = {}
        for t in self.tiles:
            r = rows.get(t.population)
            if r is None:
                info = self.blocks.get(t.population, {})
                r = rows[t.population] = dict(
                    population=t.population, kind=info.get("kind", "dense"), block=info.get("block"),
                    in_chunks=info.get("in_chunks", 1), tiles=0, soma_tiles=0, partial_tiles=0,
                    crossbars=0, cores=set(), fold=int(self.fold.get(t.population, 1)),
                    utilisation=0.0, used_cells=0, weights_stored=0,
                    unique_weights=int(self._unique_weights.get(t.population, 0)), state_bytes_per_core=0)
            r["tiles"] += 1
            r["soma_tiles" if t.kind == "soma" else "partial_tiles"] += 1
            r["used_cells"] += t.used_cells
            r["cores"].add(int(core_of[t.id]))
        for xb in self.crossbars:
            t0 = self.tiles[xb[0]]
            r = rows[t0.population]
            r["crossbars"] += 1
            r["weights_stored"] += max(self.tiles[t].used_cells for t in xb)
        out = []
        for r in rows.values():
            cores = sorted(r["cores"])
            r["cores"] = len(cores)
            r["utilisation"] = r["used_cells"] / (r["tiles"] * cap) if r["tiles"] else 0.0
            r["weight_bytes_stored"] = r["weights_stored"] * int(c.weight_bits) // 8
            r["duplication"] = r["weights_stored"] / r["unique_weights"] if r["unique_weights"] else float("nan")
            r["state_bytes_per_core"] = int(mem[cores, 1].max(initial=0)) if cores else 0
            out.append(r)
        return out

    def summary(self) -> str:
        """A per-population table and the totals (cores, crossbars, chips, cycles factor)."""
        c = self.chip.core
        lines = [f"{'population':<16}{'kind':<6}{'block':>12}{'chunks':>7}{'tiles':>8}{'partial':>8}"
                 f"{'xbars':>7}{'cores':>7}{'fold':>5}{'util%':>7}{'stored':>13}{'unique':>11}{'dup':>9}"
                 f"{'state B':>9}"]
        for r in self.per_population():
            blk = "x".join(map(str, r["block"])) if r["block"] else "-"
            lines.append(
                f"{r['population'][:15]:<16}{r['kind']:<6}{blk:>12}{r['in_chunks']:>7}{r['tiles']:>8,}"
                f"{r['partial_tiles']:>8,}{r['crossbars']:>7,}{r['cores']:>7,}{r['fold']:>5}"
                f"{100 * r['utilisation']:>7.1f}{r['weights_stored']:>13,}{r['unique_weights']:>11,}"
                f"{r['duplication']:>9.1f}{r['state_bytes_per_core']:>9,}")
        mem = self.core_memory()
        n_partial = sum(t.kind == "partial" for t in self.tiles)
        lines.append("")
        lines.append(
            f"{len(self.tiles):,} tiles ({n_partial:,} partial-sum) on {self.n_crossbars:,} crossbars in "
            f"{self.n_cores:,} cores = {self.chips_needed} chip(s) of {self.cores_per_chip} cores "
            f"({'fits' if self.fits else 'DOES NOT FIT'} max_chips={self.chip.mesh.max_chips}); "
            f"cycles-per-step factor {self.cycles_factor}; per core: weights <= {int(mem[:, 0].max(initial=0)):,} B, "
            f"state <= {int(mem[:, 1].max(initial=0)):,} B of {int(c.memory_bytes):,} B; "
            f"mean utilisation {100 * self.utilisation().mean() if self.tiles else 0:.1f}%")
        return "\n".join(lines)

def tile_matrix(net, t: Tile) -> sp.csr_matrix:
    """The (n_axons, n_neurons) weight matrix of tile ``t`` (rows and columns in tile order).

    Built from ``weights_for_posts`` of every projection into ``t.population`` whose
    (src, delay_steps) matches an axon entry; meant for compilation of small nets and tests.
    """
    post = t.post
    blocks = []
    for src, d, idx in t.axons:
        m = None
        for q in net.projections:
            if q.dst == t.population and q.src == src and q.delay_steps == d:
                w = q.weights_for_posts(post)[idx]
                m = w if m is None else m + w
        if m is None:
            m = sp.csr_matrix((idx.size, post.size))
        blocks.append(sp.csr_matrix(m))
    if not blocks:
        return sp.csr_matrix((0, post.size))
    out = sp.vstack(blocks).tocsr()
    out.eliminate_zeros()
    return out


# ---------------------------------------------------------------------------------------
# chip parameters
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Hw:
    axons: int
    neurons: int
    crossbars_per_core: int
    weight_bits: int
    membrane_bits: int
    memory_bytes: int
    max_fold: int
    cores_available: int

    @property
    def crossbar_bytes(self) -> int:
        return self.axons * self.neurons * self.weight_bits // 8

    def state_bytes(self, neurons: int) -> int:
        return neurons * self.membrane_bits // 8

    @property
    def fold_memory_limit(self) -> int:
        """Largest f with crossbar bytes + f * neurons * membrane_bits / 8 <= memory_bytes."""
        return (self.memory_bytes - self.crossbar_bytes) // max(self.state_bytes(self.neurons), 1)


def _read_chip(chip) -> _Hw:
    vals = {}
    for sec, name in (("core", "axons"), ("core", "neurons"), ("core", "crossbars_per_core"),
                      ("core", "weight_bits"), ("core", "membrane_bits"), ("core", "memory_bytes"),
                      ("core", "max_fold"), ("mesh", "width"), ("mesh", "height"), ("mesh", "max_chips")):
        try:
            v = getattr(getattr(chip, sec), name)
        except AttributeError:
            raise TilingError(f"chip config has no {sec}.{name}") from None
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise TilingError(f"chip {sec}.{name} must be a positive integer, got {v!r}")
        vals[f"{sec}.{name}"] = int(v)
    hw = _Hw(vals["core.axons"], vals["core.neurons"], vals["core.crossbars_per_core"], vals["core.weight_bits"],
             vals["core.membrane_bits"], vals["core.memory_bytes"], vals["core.max_fold"],
             vals["mesh.width"] * vals["mesh.height"] * vals["mesh.max_chips"])
    if hw.fold_memory_limit < 1:
        raise TilingError(
            f"core.memory_bytes={hw.memory_bytes:,} cannot hold one crossbar ({hw.crossbar_bytes:,} B of weights) "
            f"and its neurons' state ({hw.state_bytes(hw.neurons):,} B)")
    return hw


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def _ceil(a, b):
    return -(-a // b)


def _sizes(n: int, cap: int) -> np.ndarray:
    """Block sizes worth trying for a dimension of n: every ceil(n/m) (one per distinct
    block count) and every divisor of n, capped at ``cap``."""
    s = {_ceil(n, m) for m in range(1, n + 1)}
    s |= {d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0}
    s |= {n // d for d in list(s) if n % d == 0}
    return np.array(sorted(v for v in s if 1 <= v <= cap), dtype=np.int64)


def _pack_chunks(runs, capacity: int) -> list:
    """Next-fit packing of item runs into chunks of at most ``capacity`` rows.

    ``runs`` = [(item, n_units, unit_cost)]; returns chunks as lists of
    ``(item, start, stop)`` unit ranges. Units of cost 0 ride in the current chunk.
    """
    chunks: list = [[]]
    fill = 0
    for item, n, w in runs:
        if n <= 0:
            continue
        if w <= 0:
            chunks[-1].append((item, 0, n))
            continue
        if w > capacity:
            raise TilingError(f"internal: one unit of {w} rows exceeds {capacity} axons")
        pos = 0
        while pos < n:
            room = (capacity - fill) // w
            if room == 0:
                chunks.append([])
                fill = 0
                continue
            k = min(room, n - pos)
            chunks[-1].append((item, pos, pos + k))
            pos += k
            fill += k * w
    return chunks


def _nextfit_vec(bins, fill, n, w, capacity):
    """Vectorised :func:`_pack_chunks` count: add a run of ``n`` units of cost ``w``."""
    n, w, bins, fill = np.broadcast_arrays(n, w, bins, fill)
    w1 = np.clip(w, 1, capacity)
    active = (n > 0) & (w > 0)
    room = (capacity - fill) // w1
    k = np.minimum(n, room)
    rest = n - k
    per = capacity // w1
    extra = _ceil(rest, per)
    last = rest - (extra - 1) * per
    new_fill = np.where(rest > 0, last * w1, fill + k * w1)
    return np.where(active, bins + extra, bins), np.where(active, new_fill, fill)


def _row_counts(qs, posts: np.ndarray) -> np.ndarray:
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


def _unique_weights(q) -> int:
    if q.kind == "sparse":
        return int(q.nnz)
    return int(np.count_nonzero(q.weight))


# ---------------------------------------------------------------------------------------
# conv populations
# ---------------------------------------------------------------------------------------

class _ConvItem:
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


class _ConvLayout:
    """A conv population's chosen blocking; builds its tiles and crossbars."""

    kind = "conv"

    def __init__(self, pop, convs, others, hw: _Hw, choice):
        self.name = pop.name
        self.C, self.OH, self.OW = (int(v) for v in pop.shape)
        self.items = convs
        self.others = others  # [(key, [projections], mode)]
        self.cb, self.ph, self.pw = choice
        self.ncb, self.nph, self.npw = _ceil(self.C, self.cb), _ceil(self.OH, self.ph), _ceil(self.OW, self.pw)
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
            self.plans.append(_pack_chunks(runs, hw.axons))
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
        counts = _row_counts(qs, self._posts(k, py, px))
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
    def make_tiles(self, first_id: int, next_group):
        n_items = len(self.items)
        nph, npw = self.nph, self.npw
        phs = np.minimum(self.ph, self.OH - np.arange(nph) * self.ph)
        pws = np.minimum(self.pw, self.OW - np.arange(npw) * self.pw)
        tiles = []
        # tile id table (ncb, nph*npw, n_chunks), -1 = no tile (empty partial chunk)
        self.ids = np.full((self.ncb, nph * npw, self.n_chunks), -1, dtype=np.int64)
        self.foldable = np.zeros((self.ncb, self.n_chunks), dtype=bool)
        tid = first_id
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
        """Tile-id lists per crossbar for fold f, patch-group major (see module docstring)."""
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


def _choose_block(C, OH, OW, items, others, hw: _Hw):
    """(cb, ph, pw) minimising the tile count (module docstring), or None if none fits."""
    A, N = hw.axons, hw.neurons
    cbs = _sizes(C, min(C, N))
    extra = {it.cout_g * m for it in items if it.cout_g > 1 for m in range(1, C // it.cout_g + 1)}
    cbs = np.union1d(cbs, np.array([v for v in extra if v <= min(C, N)], dtype=np.int64))
    phs, pws = _sizes(OH, min(OH, N)), _sizes(OW, min(OW, N))
    CB, PH, PW = np.meshgrid(cbs, phs, pws, indexing="ij")
    posts = CB * PH * PW
    ok = posts <= N
    nblocks = _ceil(C, CB) * _ceil(OH, PH) * _ceil(OW, PW)
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
        bins, fill = _nextfit_vec(bins, fill, chmax, w, A)
        rows_total = rows_total + chsum * hsum * wsum
    for _key, qs, _m in others:
        n = np.minimum(qs[0].n_pre, sum(q.max_fan_in() for q in qs) * posts)
        bins, fill = _nextfit_vec(bins, fill, n, 1, A)
        rows_total = rows_total + n * nblocks
    if not ok.any():
        return None
    tiles = nblocks * bins
    partial = nblocks * (bins - 1)
    if len(items) == 1 and not others:
        # Exact per channel block (a pruned kernel leaves blocks with different channel
        # counts): tiles = patches x sum_k max(1, ceil(ch_k / floor(A / w))).
        it = items[0]
        patches = _ceil(OH, PH) * _ceil(OW, PW)
        wh = np.array([it.axis_rows(0, int(p)).max(initial=0) for p in phs])[None, :, None]
        ww = np.array([it.axis_rows(1, int(p)).max(initial=0) for p in pws])[None, None, :]
        per = np.maximum(A // np.maximum(wh * ww, 1), 1)
        for i, cb in enumerate(cbs):
            ch = it.channel_counts(int(cb))[:, None, None, None]
            b = np.maximum(1, _ceil(ch, per[None])).sum(axis=0)  # (nph, npw)
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
    hw = _read_chip(chip)
    A, N = hw.axons, hw.neurons
    it = _ConvItem(q)
    C, OH, OW = (int(v) for v in q.geom.out_shape)
    phs, pws = _sizes(OH, min(OH, N)), _sizes(OW, min(OW, N))
    rh = {int(p): int(it.axis_rows(0, int(p)).max(initial=0)) for p in phs}
    rw = {int(p): int(it.axis_rows(1, int(p)).max(initial=0)) for p in pws}
    if include is not None:
        rh.setdefault(include[1], int(it.axis_rows(0, include[1]).max(initial=0)))
        rw.setdefault(include[2], int(it.axis_rows(1, include[2]).max(initial=0)))

    def option(cb, ph, pw):
        w = rh[ph] * rw[pw]
        if cb * ph * pw > N or w > A or w == 0:
            return None
        return {"cb": cb, "ph": ph, "pw": pw, "patches": _ceil(OH, ph) * _ceil(OW, pw), "cap": A // w}

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


def _conv_layout(pop, projs, net, hw: _Hw):
    """A :class:`_ConvLayout` for ``pop``, or None when the dense rule must be used."""
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
    items = [_ConvItem(q) for q in convs]
    choice = _choose_block(*pop.shape, items, others_l, hw)
    if choice is None:
        return None
    return _ConvLayout(pop, items, others_l, hw, choice)


# ---------------------------------------------------------------------------------------
# dense / sparse populations (and the exact fallback)
# ---------------------------------------------------------------------------------------

class _DenseLayout:
    """Column blocks of ``neurons`` posts in index order, rows chunked in order."""

    kind = "dense"

    def __init__(self, pop, projs, hw: _Hw):
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
        for b in range(max(1, _ceil(self.size, N))):
            posts = np.arange(b * N, min(self.size, (b + 1) * N), dtype=np.int64)
            segs = []  # (key, rows, counts, mode)
            for key, qs in self.keys.items():
                cnt = _row_counts(qs, posts)
                rows = np.flatnonzero(cnt)
                segs.append((key, rows, cnt[rows], "MAC" if any(q.mode == "MAC" for q in qs) else "AC"))
            R = sum(s[1].size for s in segs)
            n_chunks = max(1, _ceil(R, A))
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

    n_patches = 1

    def crossbars(self, f: int) -> list:
        return [[i] for i in self.tile_ids]

    def describe(self) -> dict:
        return {"kind": "dense", "block": None, "in_chunks": self.n_chunks}


# ---------------------------------------------------------------------------------------
# folding and packing
# ---------------------------------------------------------------------------------------

def _pack(crossbars: list, tiles: list, hw: _Hw) -> list:
    """Greedy in-order packing of crossbars into cores (module docstring)."""
    if hw.crossbars_per_core == 1:  # one crossbar per core; its fold was checked against memory
        return [list(xb) for xb in crossbars]
    cores: list = []
    cur: list = []
    groups: set = set()
    state = 0
    for xb in crossbars:
        g = tiles[xb[0]].weight_group
        s = sum(tiles[t].n_neurons for t in xb) * hw.membrane_bits
        need_bits = (len(groups) + 1) * hw.axons * hw.neurons * hw.weight_bits + state + s
        if cur and (len(groups) >= hw.crossbars_per_core or g in groups or need_bits > 8 * hw.memory_bytes):
            cores.append(cur)
            cur, groups, state = [], set(), 0
        cur.extend(xb)
        groups.add(g)
        state += s
    if cur:
        cores.append(cur)
    return cores


def _balanced(P: int, f: int) -> int:
    f = max(1, min(f, P))
    return _ceil(P, _ceil(P, f))


def _fold_plan(layouts, hw: _Hw, cap: int, forced: dict) -> dict:
    folds = {}
    for lay in layouts:
        if lay.kind != "conv":
            folds[lay.name] = 1
        elif lay.name in forced:
            folds[lay.name] = max(1, min(forced[lay.name], lay.n_patches))
        else:
            folds[lay.name] = _balanced(lay.n_patches, min(cap, hw.max_fold, hw.fold_memory_limit))
    return folds


def _build(layouts, tiles, hw, folds):
    xbs = [xb for lay in layouts for xb in lay.crossbars(folds[lay.name])]
    return xbs, _pack(xbs, tiles, hw)


# ---------------------------------------------------------------------------------------
# the pass
# ---------------------------------------------------------------------------------------

def tile(net, chip, *, max_fold: int | None = None, fold: dict | int | None = None) -> Tiling:
    """Cut ``net`` into crossbar tiles for ``chip``, fold conv layers and pack cores.

    Parameters
    ----------
    net : models.Net
        The lowered network; every population except the input gets tiles (a population
        without incoming synapses gets soma tiles with no axons).
    chip : hwsim.ChipConfig or any object with ``core.axons``, ``core.neurons``,
        ``core.crossbars_per_core``, ``core.weight_bits``, ``core.membrane_bits``,
        ``core.memory_bytes``, ``core.max_fold``, ``mesh.width``, ``mesh.height``,
        ``mesh.max_chips``.
    max_fold : int, optional
        Force the fold cap ``F`` for every conv population (balanced fold
        ``ceil(P / ceil(P / min(F, limit)))``, module docstring). Default: the smallest
        ``F`` in ``1..core.max_fold`` with which the net fits the system's cores.
    fold : dict or int, optional
        Exact fold per conv population (``{name: f}``), or one int for all of them;
        values above the population's patch count are clipped to it.

    Returns
    -------
    Tiling
        ``tiles`` (ids in order: population, block, chunk; soma first), ``crossbars``,
        ``cores``, ``fold`` per population and ``blocks`` (the block choice per population).

    Raises
    ------
    TilingError
        A chip field is missing or invalid, a forced fold exceeds ``core.max_fold`` or the
        core memory, a fold is asked for a population that is not a convolution, or a
        population needs the exact fallback above ``DEFAULT_MAX_NNZ`` synapses.

    Examples
    --------
    >>> t = tile(models.lower(models.zoo.build("vgg16")), hwsim.preset("tianjic"))  # doctest: +SKIP
    >>> print(t.summary())  # doctest: +SKIP
    """
    hw = _read_chip(chip)
    if max_fold is not None:
        if int(max_fold) < 1 or int(max_fold) > hw.max_fold:
            raise TilingError(f"max_fold={max_fold} outside 1..core.max_fold={hw.max_fold}")
    incoming: dict = {}
    for q in net.projections:
        incoming.setdefault(q.dst, []).append(q)
    layouts, tiles, blocks, uniq = [], [], {}, {}
    counter = iter(range(1 << 62))

    def next_group():
        return next(counter)

    failed: list = []
    for pop in net.populations:
        if pop.model == "input":
            continue
        projs = incoming.get(pop.name, [])
        try:
            lay = _conv_layout(pop, projs, net, hw) or _DenseLayout(pop, projs, hw)
            new_tiles = lay.make_tiles(len(tiles), next_group)
        except TilingError as err:  # keep going: report every layer at fault at once
            failed.append(str(err))
            continue
        tiles.extend(new_tiles)
        layouts.append(lay)
        blocks[pop.name] = lay.describe()
        uniq[pop.name] = sum(_unique_weights(q) for q in projs)
    if failed:
        per_pop: dict = {}
        for t in tiles:
            per_pop[t.population] = per_pop.get(t.population, 0) + 1
        avail = hw.cores_available * hw.crossbars_per_core * hw.max_fold
        total = sum(per_pop.values())
        if total > avail:
            worst = ", ".join(f"'{p}' {n:,}" for p, n in sorted(per_pop.items(), key=lambda kv: -kv[1])[:12])
            failed.append(f"the other layers need {total:,} crossbar tiles, the system holds at most {avail:,} "
                          f"(cores x crossbars_per_core x max_fold); tiles by layer: {worst}")
        raise TilingError(f"{len(failed)} problem(s): " + "; ".join(failed))

    forced: dict = {}
    if fold is not None:
        by_name = {lay.name: lay for lay in layouts}
        items = ({lay.name: int(fold) for lay in layouts if lay.kind == "conv"} if not isinstance(fold, dict)
                 else {k: int(v) for k, v in fold.items()})
        for name, f in items.items():
            if name not in by_name:
                raise TilingError(f"fold given for unknown population '{name}'")
            if by_name[name].kind != "conv" and f != 1:
                raise TilingError(f"population '{name}' is not a convolution: its fold must be 1, got {f}")
            if f < 1 or f > hw.max_fold:
                raise TilingError(f"population '{name}': fold {f} outside 1..core.max_fold={hw.max_fold}")
            if f > hw.fold_memory_limit:
                raise TilingError(
                    f"population '{name}': fold {f} needs {hw.crossbar_bytes + f * hw.state_bytes(hw.neurons):,} "
                    f"bytes per core, core.memory_bytes is {hw.memory_bytes:,}")
            forced[name] = f

    def plan(F):
        folds = _fold_plan(layouts, hw, F, forced)
        return (folds,) + _build(layouts, tiles, hw, folds)

    if max_fold is not None:
        folds, xbs, cores = plan(int(max_fold))
    else:
        # smallest cap that fits, by bisection (the core count does not grow with the cap)
        best = plan(hw.max_fold)
        if len(best[2]) <= hw.cores_available:
            lo, hi = 1, hw.max_fold  # plan(hi) fits
            while lo < hi:
                mid = (lo + hi) // 2
                trial = plan(mid)
                if len(trial[2]) <= hw.cores_available:
                    hi, best = mid, trial
                else:
                    lo = mid + 1
        folds, xbs, cores = best
    return Tiling(tiles, cores, folds, chip, crossbars=xbs, blocks=blocks, _unique_weights=uniq)
