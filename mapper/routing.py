"""Routing: dimension-order (XY) routes, per-link load, routing tables per core.

A **flow** is a set of source neurons on one core whose spikes go to the same set of
destination cores (a multicast group), with its expected flits per step (the sum
of the neurons' firing rates; one spike = one flit), or a partial-sum stream
from a partial tile to its soma tile (``n_neurons * ceil(psum_bits / flit_bits)``
flits every step). Source index ``n_cores`` is the I/O port at global (-1, 0),
through which input spikes enter the west edge of chip 0's core (0, 0).

Routes follow XY dimension order: first along x to the destination column, then
along y. A directed link is ``(gx, gy, port)`` with port 0=E, 1=W, 2=N (+y), 3=S
(-y), leaving global node (gx, gy); the I/O injection link is counted separately.

* ``unicast``: each destination receives its own copy, so a link carries
  ``rate`` for every destination whose path uses it;
* ``xy-tree``: one copy per link of the union of the XY paths (the tree forks
  where paths diverge), so a link carries ``rate`` once per flow.

Routing-table entries of a core = the distinct destination cores it sends to (the
source lookup table of a Tianjic/TrueNorth-style core lists target cores and axon
offsets; packets of one neuron to several cores share the entries). Checked
against ``core.routing_entries``. The xy-tree is taken as source-routed (the
header carries the destination set), so forking needs no router state; the
number of multicast flows forking at each router is reported as
``Routes.fork_entries`` for chips whose routers would need table entries for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numba import njit


@dataclass
class Flows:
    """``src[f]`` core (``n_cores`` = I/O port), ``rate[f]`` flits/step, ``dst`` CSR (F x n_cores)."""

    src: np.ndarray
    rate: np.ndarray
    dst: sp.csr_matrix
    kind: np.ndarray  # 0 = spikes, 1 = partial sums
    n_cores: int

    def traffic(self) -> sp.csr_matrix:
        """Unicast-equivalent traffic matrix (n_cores + 1)^2 for placement."""
        D = self.dst.tocoo()
        n = self.n_cores
        return sp.csr_matrix((self.rate[D.row], (self.src[D.row], D.col)), shape=(n + 1, n + 1))


def _row_hash(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes per row of a boolean CSR, to group identical destination sets."""
    m = m.tocsr()
    m.sort_indices()
    idx = m.indices.astype(np.uint64) + np.uint64(1)
    h1 = idx * np.uint64(0x9E3779B97F4A7C15)
    h2 = (idx * np.uint64(0xC2B2AE3D27D4EB4F)) ^ (idx << np.uint64(17))
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    out1 = np.zeros(m.shape[0], dtype=np.uint64)
    out2 = np.zeros(m.shape[0], dtype=np.uint64)
    np.add.at(out1, rows, h1)
    np.bitwise_xor.at(out2, rows, h2)
    return out1, out2


def flows_from_tiling(tiling, rates: dict | None = None, *, psum_bits: int = 16, flit_bits: int = 32) -> Flows:
    """Flows of a :class:`~mapper.tiling.Tiling`: spikes from soma cores to every core that
    holds the neuron as an axon, and partial sums from partial tiles to their soma.

    ``rates[population]`` is a scalar or a per-neuron array of expected spikes per
    step (e.g. ``SimResult.firing_rates()`` of a profiling run); missing = 1.0.
    """
    rates = rates or {}
    n_cores = len(tiling.cores)
    core_of = np.empty(len(tiling.tiles), dtype=np.int64)
    for k, tids in enumerate(tiling.cores):
        core_of[np.asarray(tids, dtype=np.int64)] = k
    sizes, soma = {}, {}
    for t in tiling.tiles:
        if t.kind == "soma":
            sizes[t.population] = max(sizes.get(t.population, 0), int(t.post.max(initial=-1)) + 1)
    for p, n in sizes.items():
        soma[p] = np.full(n, -1, dtype=np.int64)
    for t in tiling.tiles:
        if t.kind == "soma":
            soma[t.population][t.post] = core_of[t.id]
    # (source population) -> list of (pre index array, destination core)
    pairs: dict = {}
    for t in tiling.tiles:
        k = core_of[t.id]
        for src, _delay, idx in t.axons:
            pairs.setdefault(src, []).append((np.asarray(idx, dtype=np.int64), k))
    srcs, rts, dst_rows, kinds = [], [], [], []
    for src, lst in pairs.items():
        idx = np.concatenate([a for a, _ in lst])
        col = np.concatenate([np.full(a.size, k, dtype=np.int64) for a, k in lst])
        n_src = int(idx.max(initial=-1)) + 1
        if src in soma:
            n_src = max(n_src, soma[src].size)
            home = np.full(n_src, n_cores, dtype=np.int64)
            home[: soma[src].size] = np.where(soma[src] >= 0, soma[src], n_cores)
        else:
            home = np.full(n_src, n_cores, dtype=np.int64)  # the graph input: the I/O port
        keep = home[idx] != col  # a spike to its own core never enters the NoC
        M = sp.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (idx[keep], col[keep])), shape=(n_src, n_cores))
        M.sum_duplicates()
        has = np.diff(M.indptr) > 0
        neurons = np.flatnonzero(has)
        if neurons.size == 0:
            continue
        r = rates.get(src, 1.0)
        r = np.broadcast_to(np.asarray(r, dtype=np.float64), (n_src,)) if np.ndim(r) == 0 else np.asarray(r, dtype=np.float64)
        h1, h2 = _row_hash(M[neurons])
        keys = np.stack([home[neurons].astype(np.uint64), h1, h2], axis=1)
        _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inv = inv.ravel()
        group_rate = np.bincount(inv, weights=r[neurons], minlength=first.size)
        srcs.append(home[neurons[first]])
        rts.append(group_rate)
        dst_rows.append(M[neurons[first]])
        kinds.append(np.zeros(first.size, dtype=np.int8))
    # partial sums
    ps_src, ps_dst, ps_rate = [], [], []
    flits = -(-int(psum_bits) // int(flit_bits))
    for t in tiling.tiles:
        if t.kind == "partial" and core_of[t.id] != core_of[t.soma]:
            ps_src.append(core_of[t.id])
            ps_dst.append(core_of[t.soma])
            ps_rate.append(float(t.n_neurons * flits))
    if ps_src:
        srcs.append(np.array(ps_src, dtype=np.int64))
        rts.append(np.array(ps_rate))
        dst_rows.append(sp.csr_matrix((np.ones(len(ps_dst), dtype=bool), (np.arange(len(ps_dst)), ps_dst)),
                                      shape=(len(ps_dst), n_cores)))
        kinds.append(np.ones(len(ps_src), dtype=np.int8))
    if not srcs:
        return Flows(np.zeros(0, np.int64), np.zeros(0), sp.csr_matrix((0, n_cores), dtype=bool),
                     np.zeros(0, np.int8), n_cores)
    return Flows(np.concatenate(srcs).astype(np.int64), np.concatenate(rts),
                 sp.vstack(dst_rows).tocsr(), np.concatenate(kinds), n_cores)


@njit(cache=True)
def _accumulate(src_g, dst_indptr, dst_idx, node_g, rate, multicast, gw, gh, load, stamp, fork_count):
    """Add every flow's rate to the links of its XY paths (once per link for multicast).

    ``fork_count[node]`` counts multicast flows whose tree forks at that router.
    """
    F = src_g.shape[0]
    outdeg = np.zeros((gw, gh), dtype=np.int64)
    for f in range(F):
        sx, sy = src_g[f, 0], src_g[f, 1]
        touched_nodes = []
        for k in range(dst_indptr[f], dst_indptr[f + 1]):
            d = dst_idx[k]
            dx, dy = node_g[d, 0], node_g[d, 1]
            x, y = sx, sy
            if x < 0:  # from the I/O port: the injection link into (0, 0)
                x = 0
            while x != dx or y != dy:
                if x != dx:
                    port = 0 if dx > x else 1
                    nx_, ny_ = (x + 1, y) if dx > x else (x - 1, y)
                else:
                    port = 2 if dy > y else 3
                    nx_, ny_ = (x, y + 1) if dy > y else (x, y - 1)
                if multicast:
                    if stamp[x, y, port] != f:
                        stamp[x, y, port] = f
                        load[x, y, port] += rate[f]
                        outdeg[x, y] += 1
                        touched_nodes.append(x * gh + y)
                else:
                    load[x, y, port] += rate[f]
                x, y = nx_, ny_
        if multicast:
            for code in touched_nodes:
                x = code // gh
                y = code % gh
                if outdeg[x, y] > 1:
                    fork_count[x, y] += 1
                outdeg[x, y] = 0


@dataclass
class Routes:
    """Link loads (flits per step), routing-table entries per core, and flow statistics."""

    link_load: np.ndarray          # (GW, GH, 4): E, W, N, S links leaving each global node
    io_load: float                 # flits/step through the I/O injection link
    table_entries: np.ndarray      # (n_cores,)
    multicast: str
    flows: Flows
    stats: dict = field(default_factory=dict)

    def max_link_load(self) -> float:
        return float(self.link_load.max(initial=0.0))


def route(placement, flows: Flows, chip, *, multicast: str | None = None) -> Routes:
    """XY routes for ``flows`` on ``placement``; see the module docstring.

    ``multicast`` defaults to ``chip.noc.multicast`` (``unicast`` or ``xy-tree``).
    """
    mode = multicast or getattr(getattr(chip, "noc", None), "multicast", "unicast")
    g = placement.global_xy()  # (n_cores + 1, 2), last = I/O port
    gw = placement.chip_grid[0] * placement.width
    gh = placement.chip_grid[1] * placement.height
    load = np.zeros((gw, gh, 4))
    stamp = np.full((gw, gh, 4), -1, dtype=np.int64)
    forks = np.zeros((gw, gh), dtype=np.int64)
    dst = flows.dst.tocsr()
    dst.sort_indices()
    _accumulate(g[flows.src], dst.indptr.astype(np.int64), dst.indices.astype(np.int64), g,
                flows.rate.astype(np.float64), mode == "xy-tree", gw, gh, load, stamp, forks)
    n = flows.n_cores
    ndst = np.diff(dst.indptr)
    per_flow = ndst if mode == "unicast" else np.ones_like(ndst)
    # source LUT: one entry per distinct destination core (both modes)
    D = sp.csr_matrix((np.ones(dst.nnz), (np.repeat(flows.src, ndst), dst.indices)), shape=(n + 1, n))
    D.sum_duplicates()
    entries = np.diff(D.tocsr().indptr)[:n].astype(np.int64)
    fork_entries = forks[g[:n, 0], g[:n, 1]].astype(np.int64) if mode == "xy-tree" else np.zeros(n, np.int64)
    io = float((flows.rate * np.where(flows.src == n, per_flow, 0)).sum())
    r = Routes(load, io, entries, mode, flows)
    r.fork_entries = fork_entries
    r.stats = {"max_fork_entries": int(fork_entries.max(initial=0)), "max_link_load": r.max_link_load(), "total_flit_hops": float(load.sum()),
               "max_table_entries": int(entries.max(initial=0)), "io_flits": io}
    return r
