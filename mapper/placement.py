"""Placement: put cores on (chip, x, y) slots to minimise sum(traffic x hops).

Slots: a system of ``n_chips`` chips, each a ``width x height`` mesh, arranged
as a near-square grid of chips (``cx = ceil(sqrt(n_chips))`` columns). A slot's
global coordinate is ``(gx, gy) = (chip_x * width + x, chip_y * height + y)``.
With dimension-order (XY) routing a packet from a to b takes

    hops(a, b)      = |gx_a - gx_b| + |gy_a - gy_b|
    crossings(a, b) = |chip_x_a - chip_x_b| + |chip_y_a - chip_y_b|   (inter-chip links)

and the placement cost of a traffic matrix T (flits per step, core x core) is

    cost = sum_ab T[a, b] * (hops(a, b) + (interchip_penalty - 1) * crossings(a, b))

where ``interchip_penalty`` weighs one chip-to-chip hop against an on-chip hop
(default: ``noc.interchip_cycles / (noc.router_cycles + noc.link_cycles)``).
Input spikes enter through an I/O port west of chip 0's core (0, 0), at global
``(-1, 0)``; the traffic matrix's last row/column is that port.

Strategies (``place(..., strategy=...)``):

* ``rowmajor`` -- core k on slot k, chip by chip, row by row (the baseline);
* ``hilbert`` -- slots of each chip in Hilbert-curve order, so cores adjacent in
  layer order are adjacent on the mesh;
* ``partition`` -- recursive bisection: a near-square block of slots just large
  enough for the cores, at the I/O corner, is cut along its longer side, and METIS (pymetis) cuts the traffic graph into two parts sized like the
  two halves, minimising the traffic crossing the cut;
* ``anneal`` -- simulated annealing of slot swaps on the cost above, started
  from the best of the other strategies, with the cost delta of a swap computed
  in a Numba kernel over the CSR traffic graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numba import njit

from models.errors import SnnchipError

STRATEGIES = ("rowmajor", "hilbert", "partition", "anneal")


class PlacementError(SnnchipError):
    """Placement request that cannot be met (unknown strategy, too many cores)."""


@dataclass
class Placement:
    """Where every core sits. ``positions[k] = (chip, x, y)``; ``chip_xy[c] = (cx, cy)``."""

    positions: np.ndarray
    n_chips: int
    chip_grid: tuple
    width: int
    height: int
    strategy: str
    interchip_penalty: float = 1.0
    stats: dict = field(default_factory=dict)

    @property
    def n_cores(self) -> int:
        return int(self.positions.shape[0])

    def chip_xy(self) -> np.ndarray:
        c = self.positions[:, 0]
        return np.stack([c % self.chip_grid[0], c // self.chip_grid[0]], axis=1)

    def global_xy(self) -> np.ndarray:
        """(n_cores + 1, 2) global coordinates; the last row is the I/O port (-1, 0)."""
        cxy = self.chip_xy()
        g = np.stack([cxy[:, 0] * self.width + self.positions[:, 1],
                      cxy[:, 1] * self.height + self.positions[:, 2]], axis=1)
        return np.vstack([g, [[-1, 0]]]).astype(np.int64)

    def chip_coords(self) -> np.ndarray:
        """(n_cores + 1, 2) chip grid coordinates; the I/O port belongs to chip (0, 0)."""
        return np.vstack([self.chip_xy(), [[0, 0]]]).astype(np.int64)

    def cost(self, traffic: sp.spmatrix) -> dict:
        """flit_hops, interchip flit crossings and the weighted objective for ``traffic``."""
        T = sp.coo_matrix(traffic)
        g, c = self.global_xy(), self.chip_coords()
        hops = np.abs(g[T.row] - g[T.col]).sum(axis=1)
        cross = np.abs(c[T.row] - c[T.col]).sum(axis=1)
        fh = float(np.dot(T.data, hops))
        ic = float(np.dot(T.data, cross))
        return {"flit_hops": fh, "interchip_flits": ic,
                "objective": fh + (self.interchip_penalty - 1.0) * ic}


def chips_needed(n_cores: int, width: int, height: int) -> int:
    return max(1, math.ceil(n_cores / (width * height)))


def _grid(n_chips: int) -> tuple[int, int]:
    cx = math.ceil(math.sqrt(n_chips))
    return cx, math.ceil(n_chips / cx)


def _slots(n_chips: int, width: int, height: int) -> np.ndarray:
    """All slots (chip, x, y) in row-major order, chip by chip."""
    c, y, x = np.meshgrid(np.arange(n_chips), np.arange(height), np.arange(width), indexing="ij")
    return np.stack([c.ravel(), x.ravel(), y.ravel()], axis=1).astype(np.int64)


def hilbert_d2xy(order: int, d: int) -> tuple[int, int]:
    """Point ``d`` of the Hilbert curve filling a 2^order x 2^order square."""
    x = y = 0
    s = 1
    t = d
    while s < (1 << order):
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        if ry == 0:
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        x += s * rx
        y += s * ry
        t //= 4
        s *= 2
    return x, y


def _hilbert_slots(n_chips: int, width: int, height: int) -> np.ndarray:
    order = max(1, math.ceil(math.log2(max(width, height))))
    pts = [hilbert_d2xy(order, d) for d in range(1 << (2 * order))]
    pts = [(x, y) for x, y in pts if x < width and y < height]
    return np.array([(c, x, y) for c in range(n_chips) for x, y in pts], dtype=np.int64)


def _sym_csr(traffic: sp.spmatrix, n: int) -> sp.csr_matrix:
    """Symmetric core-core graph (I/O port dropped), weights = T + T^T."""
    T = sp.csr_matrix(traffic)[:n, :n]
    W = (T + T.T).tocsr()
    W.setdiag(0)
    W.eliminate_zeros()
    return W


def _metis_bisect(W: sp.csr_matrix, cores: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """Boolean mask over ``cores``: True = first part (about ``frac`` of them)."""
    import pymetis

    sub = W[cores][:, cores].tocsr()
    if sub.nnz == 0 or len(cores) < 4:
        return np.arange(len(cores)) < round(frac * len(cores))
    # METIS wants integer edge weights; keep 6 significant digits of the traffic
    ew = np.maximum(1, np.rint(sub.data / sub.data.max() * 1e6)).astype(np.int64)
    opts = pymetis.Options(seed=seed)
    adj = pymetis.CSRAdjacency(sub.indptr.astype(np.int64), sub.indices.astype(np.int64))
    _, parts = pymetis.part_graph(2, adjacency=adj, eweights=ew, tpwgts=[frac, 1.0 - frac], options=opts)
    return np.asarray(parts) == 0


def _compact_region(g: np.ndarray, n: int) -> np.ndarray:
    """Indices of a near-square block of at least n slots at the global origin (I/O corner)."""
    GW, GH = int(g[:, 0].max()) + 1, int(g[:, 1].max()) + 1
    w = min(GW, max(1, math.ceil(math.sqrt(n))))
    h = math.ceil(n / w)
    if h > GH:
        h = GH
        w = min(GW, math.ceil(n / h))
    sel = np.flatnonzero((g[:, 0] < w) & (g[:, 1] < h))
    return sel if sel.size >= n else np.arange(len(g))


def _partition_place(W, n_cores, slots, width, height, grid, seed) -> np.ndarray:
    """Recursive bisection of a compact slot region, METIS on the traffic graph."""
    cxy = np.stack([slots[:, 0] % grid[0], slots[:, 0] // grid[0]], axis=1)
    g = np.stack([cxy[:, 0] * width + slots[:, 1], cxy[:, 1] * height + slots[:, 2]], axis=1)
    pos = np.full(n_cores, -1, dtype=np.int64)
    stack = [(np.arange(n_cores), _compact_region(g, n_cores))]
    while stack:
        cores, sl = stack.pop()
        if len(cores) == 0:
            continue
        if len(cores) == 1 or len(sl) == 1:
            # place in order on the slots nearest the region's origin
            order = np.lexsort((g[sl, 0], g[sl, 1]))
            pos[cores] = sl[order[: len(cores)]]
            continue
        span = g[sl].max(axis=0) - g[sl].min(axis=0)
        axis = 0 if span[0] >= span[1] else 1
        order = np.argsort(g[sl, axis], kind="stable")
        half = len(sl) // 2
        s1, s2 = sl[order[:half]], sl[order[half:]]
        # share cores in proportion to slots, never more than a half can hold
        n1 = min(len(s1), max(len(cores) - len(s2), round(len(cores) * len(s1) / len(sl))))
        mask = _metis_bisect(W, cores, n1 / len(cores), seed)
        first, second = list(cores[mask]), list(cores[~mask])
        # repair the sizes exactly: move the cores least tied to their side
        while len(first) > n1:
            first.sort(key=lambda c: W[c, first].sum() - W[c, second].sum())
            second.append(first.pop(0))
        while len(first) < n1:
            second.sort(key=lambda c: W[c, second].sum() - W[c, first].sum())
            first.append(second.pop(0))
        stack.append((np.array(first, dtype=np.int64), s1))
        stack.append((np.array(second, dtype=np.int64), s2))
    return pos


@njit(cache=True)
def _anneal_kernel(indptr, indices, data, io_w, slot_g, slot_c, core_slot, slot_core,
                   penalty, iters, t0, t1, seed):
    """Swap-based annealing; returns the final core->slot array and the accepted count.

    The cost of core a at global (gx, gy) on chip (cx, cy) toward neighbour b is
    w_ab * (|dgx| + |dgy| + (penalty - 1) (|dcx| + |dcy|)); io_w[a] is a's traffic
    to the I/O port at global (-1, 0), chip (0, 0).
    """
    np.random.seed(seed)
    n = core_slot.shape[0]
    n_slots = slot_core.shape[0]
    accepted = 0
    for it in range(iters):
        temp = t0 * (t1 / t0) ** (it / max(iters - 1, 1))
        a = np.random.randint(n)
        s_new = np.random.randint(n_slots)
        s_old = core_slot[a]
        if s_new == s_old:
            continue
        b = slot_core[s_new]
        delta = 0.0
        for side in range(2):
            c = a if side == 0 else b
            if c < 0:
                continue
            sc_old = s_old if side == 0 else s_new
            sc_new = s_new if side == 0 else s_old
            for k in range(indptr[c], indptr[c + 1]):
                nb = indices[k]
                if nb == a or nb == b:
                    continue  # the a-b distance does not change on a swap
                sn = core_slot[nb]
                d_old = (abs(slot_g[sc_old, 0] - slot_g[sn, 0]) + abs(slot_g[sc_old, 1] - slot_g[sn, 1])
                         + (penalty - 1.0) * (abs(slot_c[sc_old, 0] - slot_c[sn, 0]) + abs(slot_c[sc_old, 1] - slot_c[sn, 1])))
                d_new = (abs(slot_g[sc_new, 0] - slot_g[sn, 0]) + abs(slot_g[sc_new, 1] - slot_g[sn, 1])
                         + (penalty - 1.0) * (abs(slot_c[sc_new, 0] - slot_c[sn, 0]) + abs(slot_c[sc_new, 1] - slot_c[sn, 1])))
                delta += data[k] * (d_new - d_old)
            if io_w[c] != 0.0:
                io_old = abs(slot_g[sc_old, 0] + 1) + abs(slot_g[sc_old, 1]) + (penalty - 1.0) * (slot_c[sc_old, 0] + slot_c[sc_old, 1])
                io_new = abs(slot_g[sc_new, 0] + 1) + abs(slot_g[sc_new, 1]) + (penalty - 1.0) * (slot_c[sc_new, 0] + slot_c[sc_new, 1])
                delta += io_w[c] * (io_new - io_old)
        if delta <= 0.0 or np.random.random() < np.exp(-delta / temp):
            core_slot[a] = s_new
            slot_core[s_new] = a
            slot_core[s_old] = b
            if b >= 0:
                core_slot[b] = s_old
            accepted += 1
    return accepted


def place(n_cores: int, traffic: sp.spmatrix | None, chip, strategy: str = "rowmajor", *,
          n_chips: int | None = None, seed: int = 0, anneal_iters: int | None = None,
          interchip_penalty: float | None = None) -> Placement:
    """Place ``n_cores`` cores on the chip mesh (see the module docstring).

    Parameters
    ----------
    n_cores : number of cores to place (``len(tiling.cores)``).
    traffic : (n_cores + 1) x (n_cores + 1) flits per step, last index = I/O port;
        ``None`` = no traffic information (only rowmajor/hilbert are meaningful).
    chip : a ``ChipConfig`` (reads ``mesh.width``, ``mesh.height``, ``mesh.max_chips``, ``noc``).
    strategy : one of ``rowmajor``, ``hilbert``, ``partition``, ``anneal``.

    Returns
    -------
    Placement, with ``stats`` holding the cost of the result.
    """
    if strategy not in STRATEGIES:
        raise PlacementError(f"unknown placement strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    width, height = int(chip.mesh.width), int(chip.mesh.height)
    need = chips_needed(n_cores, width, height)
    n_chips = need if n_chips is None else int(n_chips)
    max_chips = int(getattr(chip.mesh, "max_chips", n_chips))
    if n_chips < need or n_chips > max(max_chips, need) and n_chips > max_chips:
        raise PlacementError(f"{n_cores} cores need {need} chips of {width}x{height}; got n_chips={n_chips}")
    if need > max_chips:
        raise PlacementError(f"{n_cores} cores need {need} chips of {width}x{height} cores, "
                             f"mesh.max_chips is {max_chips}")
    if interchip_penalty is None:
        noc = getattr(chip, "noc", None)
        per_hop = float(noc.router_cycles + noc.link_cycles) if noc is not None else 1.0
        interchip_penalty = float(getattr(noc, "interchip_cycles", per_hop)) / per_hop if noc is not None else 1.0
    grid = _grid(n_chips)
    T = sp.csr_matrix((n_cores + 1, n_cores + 1)) if traffic is None else sp.csr_matrix(traffic)
    if T.shape != (n_cores + 1, n_cores + 1):
        raise PlacementError(f"traffic matrix is {T.shape}, expected {(n_cores + 1, n_cores + 1)} (cores + I/O port)")
    slots = _slots(n_chips, width, height)

    def make(pos_rows, name):
        return Placement(pos_rows, n_chips, grid, width, height, name, float(interchip_penalty))

    if strategy == "rowmajor":
        pl = make(slots[:n_cores].copy(), strategy)
    elif strategy == "hilbert":
        pl = make(_hilbert_slots(n_chips, width, height)[:n_cores].copy(), strategy)
    else:
        W = _sym_csr(T, n_cores)
        part = make(slots[_partition_place(W, n_cores, slots, width, height, grid, seed)].copy(), "partition")
        if strategy == "partition":
            pl = part
        else:
            cands = [part, make(slots[:n_cores].copy(), "rowmajor"),
                     make(_hilbert_slots(n_chips, width, height)[:n_cores].copy(), "hilbert")]
            start = min(cands, key=lambda p: p.cost(T)["objective"])
            pl = _anneal(start, T, W, slots, seed, anneal_iters)
    pl.stats = pl.cost(T)
    return pl


def _anneal(start: Placement, T, W, slots, seed: int, iters: int | None) -> Placement:
    n = start.n_cores
    grid = start.chip_grid
    slot_c = np.stack([slots[:, 0] % grid[0], slots[:, 0] // grid[0]], axis=1).astype(np.int64)
    slot_g = np.stack([slot_c[:, 0] * start.width + slots[:, 1], slot_c[:, 1] * start.height + slots[:, 2]],
                      axis=1).astype(np.int64)
    index = {tuple(r): i for i, r in enumerate(slots.tolist())}
    core_slot = np.array([index[tuple(r)] for r in start.positions.tolist()], dtype=np.int64)
    slot_core = np.full(len(slots), -1, dtype=np.int64)
    slot_core[core_slot] = np.arange(n)
    Tc = sp.csr_matrix(T)
    io_w = np.asarray(Tc[:n, n].todense()).ravel() + np.asarray(Tc[n, :n].todense()).ravel()
    Wc = W.tocsr()
    mean_w = float(Wc.data.mean()) if Wc.nnz else 1.0
    iters = int(iters if iters is not None else min(2_000_000, 200 * max(n, 10) * 10))
    _anneal_kernel(Wc.indptr.astype(np.int64), Wc.indices.astype(np.int64), Wc.data.astype(np.float64),
                   io_w.astype(np.float64), slot_g, slot_c, core_slot, slot_core,
                   float(start.interchip_penalty), iters, 2.0 * mean_w, 0.01 * mean_w, int(seed))
    return Placement(slots[core_slot].copy(), start.n_chips, grid, start.width, start.height, "anneal",
                     start.interchip_penalty)
