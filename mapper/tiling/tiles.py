"""The tiling's data: a :class:`Tile` (one crossbar's synapses), the :class:`Tiling` of a net
(tiles, crossbars, cores, folds) with its size and memory reports, and :func:`tile_matrix`.

Built by :func:`mapper.tiling.tile`; read by placement, routing, validation and the chip
compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


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

        weights = distinct weight groups x axons x neurons x weight_bits / 8 (dense synapse
        memory), or ceil(sum over distinct groups of nonzero synapses x (weight_bits +
        synapse_index_bits) / 8) (sparse: the largest tile of each group);
        state = sum of the tiles' n_neurons x membrane_bits / 8 (a partial tile holds its
        partial sums at the same width), as ``mapper.validate`` counts them. ``chip``
        (default: the tiling's own) gives the crossbar size and bit widths.
        """
        from .limits import chip_limits

        hw = chip_limits(chip or self.chip)
        out = np.zeros((len(self.cores), 2), dtype=np.int64)
        for k, tids in enumerate(self.cores):
            groups: dict = {}  # weight group -> its largest tile's nonzero synapses
            for t in tids:
                tl = self.tiles[t]
                groups[tl.weight_group] = max(groups.get(tl.weight_group, 0), tl.used_cells)
            out[k, 0] = -(-sum(hw.weight_bits_of(u) for u in groups.values()) // 8)
            out[k, 1] = sum(self.tiles[t].n_neurons for t in tids) * hw.membrane_bits // 8
        return out

    def core_crossbars(self) -> np.ndarray:
        """(n_cores,) distinct weight matrices (crossbars) per core."""
        return np.array([len({self.tiles[t].weight_group for t in tids}) for tids in self.cores], dtype=np.int64)

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
