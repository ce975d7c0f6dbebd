"""The network on chip: packet-level timing of a 2-D mesh with XY routing (Numba).

This module owns the NoC timing model and its fast implementation;
``hwsim/noc_ref.py`` is the SimPy twin of the same model, slow and plainly correct.
Both follow the spec below and give the same delivery cycle for every packet.

Packet model (the spec)
-----------------------
Nodes are global mesh coordinates ``(gx, gy)`` on a ``grid_w x grid_h`` grid. A
directed link ``(gx, gy, port)`` leaves node ``(gx, gy)`` through port 0 = E (+x),
1 = W (-x), 2 = N (+y) or 3 = S (-y), as in ``mapper/routing.py``.

A packet ``p`` (its id is its row in :class:`Packets`) has an inject cycle
``t0 >= 0``, a source node, one or more destination nodes and a length of
``L >= 1`` flits. Its route is XY dimension order, x first, then y:

* ``multicast="xy-tree"``: the route is the union of the XY paths from the source
  to every destination, a tree; each link of the tree is used once and the packet
  forks where the paths diverge. A destination on the way to another one receives
  its copy as the packet passes.
* ``multicast="unicast"``: the source sends one copy per destination, each with its
  own XY path; copy ``k`` of the flat destination list (``dst_xy[k]``) acts as packet
  ``k``, so ties are broken by (packet id, destination order).

Timing: cut-through, infinite buffers, one flit per link per cycle. With
``R = router_cycles`` (>= 1) and ``W = link_cycles`` (>= 0):

* the head reaches the source router at ``t0`` and is ready for the first link(s)
  at ``r = t0 + R``;
* a link is a FIFO server: a packet ready for link ``l`` at cycle ``r`` starts
  crossing at ``s = max(r, free_at[l])`` and holds the link for ``L`` cycles
  (``free_at[l] = s + L``); competing packets are served in order of
  ``(ready cycle, packet id)``, FIFO with a deterministic tie rule;
* the head reaches the next router at ``s + W`` and is ready for the next link at
  ``s + W + R`` (at a fork: for every child link at that cycle);
* delivery at a destination = head arrival at its router + (L - 1) (the tail)
  = ``s_last + W + L - 1``, where ``s_last`` is the start on the last link of its
  path; ejection costs nothing more;
* a destination equal to the source is delivered at ``t0 + L - 1`` and uses no link.

Zero-load latency (no contention) of a destination ``h`` hops away is therefore
``h * (R + W) + (L - 1)`` (the standard zero-load latency). Chip-to-chip links are not modelled
differently here: every link of the global grid costs ``W``.

A link's service order depends only on the ready cycles of its requests, and those
only on the links before it on their routes. XY routes visit links in a fixed
topological order (:func:`link_order`), so :func:`run_into` serves the links one
after another in that order, each in (ready, id) order, with no priority queue.
The SimPy twin (``noc_ref``) runs the same model as processes queueing for links.

Trains: packets with the same inject cycle and route, in id order, are a train.
:func:`simulate_noc` takes runs of consecutive such packets (when there are at
least four packets per run) and simulates each run as one packet of the run's
total length (:func:`run_trains_into`); if no run waited for a link, that is
exactly the packet-by-packet schedule (packet ``j`` crosses every link ``off_j``
cycles after the run's head, ``off_j`` = flits before it in the run); if one
waited, the packets are simulated one by one. The chip simulator computes the same
schedule per route class (:mod:`hwsim.engine.timing_spikes`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numba import njit

from models.errors import SnnchipError

__all__ = ["validate_packets", "NocError", "Packets", "NocResult", "simulate_noc", "MULTICAST_MODES", "xy_hops", "link_order", "routes",
           "link_tables", "run_into", "run_trains_into", "order_used_links", "deliver"]

MULTICAST_MODES = ("unicast", "xy-tree")
_E, _W, _N, _S = 0, 1, 2, 3


class NocError(SnnchipError):
    """A NoC simulation request is invalid: a packet's coordinates outside the grid,
    a length below one flit, a negative inject cycle, or bad timing parameters.
    The message names the packet and the field."""


def _as_xy(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size == 0:
        a = a.reshape(0, 2)
    if a.ndim != 2 or a.shape[1] != 2:
        raise NocError(f"{what}: expected an (n, 2) array of (gx, gy), got shape {a.shape}")
    return _as_int(a, what)


def _as_int(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise NocError(f"{what}: expected integers, got {a.dtype} values")
    return a.astype(np.int64)


@dataclass(frozen=True)
class Packets:
    """Packets to send: ``inject_cycle[p]``, ``src_xy[p]``, ``flits[p]``, and their
    destinations as CSR: packet ``p`` goes to ``dst_xy[dst_indptr[p]:dst_indptr[p+1]]``.

    A packet's id is its row. Build with :meth:`from_arrays`, :meth:`unicast` or
    :meth:`multicast`; the grid bounds are checked by :func:`simulate_noc`.
    """

    inject_cycle: np.ndarray  # (P,) int64
    src_xy: np.ndarray        # (P, 2) int64
    dst_indptr: np.ndarray    # (P + 1,) int64
    dst_xy: np.ndarray        # (D, 2) int64
    flits: np.ndarray         # (P,) int64

    @classmethod
    def from_arrays(cls, inject_cycle, src_xy, dst_indptr, dst_xy, flits) -> "Packets":
        """From flat arrays; ``flits`` may be a scalar (same length for every packet)."""
        t0 = _as_int(inject_cycle, "inject_cycle").reshape(-1)
        src = _as_xy(src_xy, "src_xy")
        ptr = _as_int(dst_indptr, "dst_indptr").reshape(-1)
        dst = _as_xy(dst_xy, "dst_xy")
        n = t0.size
        fl = _as_int(flits, "flits")
        fl = np.full(n, int(fl), dtype=np.int64) if fl.ndim == 0 else fl.reshape(-1)
        if src.shape[0] != n or fl.size != n:
            raise NocError(f"packets: inject_cycle, src_xy and flits disagree on the packet count "
                           f"({n}, {src.shape[0]}, {fl.size})")
        if ptr.size != n + 1 or (n + 1 and (ptr[0] != 0 or ptr[-1] != dst.shape[0])):
            raise NocError(f"dst_indptr: expected {n + 1} offsets from 0 to {dst.shape[0]} (len(dst_xy)), "
                           f"got {ptr.size} offsets")
        bad = np.flatnonzero(np.diff(ptr) < 1)
        if bad.size:
            raise NocError(f"packet {int(bad[0])}: dst_indptr gives it no destination")
        return cls(t0, src, ptr, dst, fl)

    @classmethod
    def unicast(cls, inject_cycle, src_xy, dst_xy, flits=1) -> "Packets":
        """One destination per packet: ``dst_xy[p]`` is packet ``p``'s destination."""
        n = np.asarray(inject_cycle).reshape(-1).size
        return cls.from_arrays(inject_cycle, src_xy, np.arange(n + 1), dst_xy, flits)

    @classmethod
    def multicast(cls, inject_cycle, src_xy, dst_lists: Sequence[Sequence[Sequence[int]]], flits=1) -> "Packets":
        """``dst_lists[p]`` is a list of ``(gx, gy)`` destinations of packet ``p``."""
        counts = [len(d) for d in dst_lists]
        ptr = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        flat = [xy for d in dst_lists for xy in d]
        return cls.from_arrays(inject_cycle, src_xy, ptr, np.asarray(flat, dtype=np.int64).reshape(-1, 2), flits)

    @property
    def n_packets(self) -> int:
        return int(self.inject_cycle.size)

    @property
    def n_destinations(self) -> int:
        return int(self.dst_xy.shape[0])

    def packet_of_destination(self) -> np.ndarray:
        """``(D,)`` packet id of every entry of ``dst_xy``."""
        return np.repeat(np.arange(self.n_packets), np.diff(self.dst_indptr))


def xy_hops(src_xy: np.ndarray, dst_xy: np.ndarray) -> np.ndarray:
    """Manhattan hop count of the XY path between node arrays of shape (n, 2)."""
    return np.abs(dst_xy - src_xy).sum(axis=1)


@dataclass
class NocResult:
    """Timing of one :func:`simulate_noc` run.

    ``delivery_cycle[k]`` is the cycle at which the tail of the packet reaches
    destination ``dst_xy[k]`` (CSR-aligned with :class:`Packets`); ``link_flits``
    ``(grid_w, grid_h, 4)`` counts the flits every directed link carried (ports E, W,
    N, S leaving each node).
    """

    packets: Packets
    delivery_cycle: np.ndarray  # (D,) int64
    link_flits: np.ndarray      # (GW, GH, 4) int64
    grid_w: int
    grid_h: int
    router_cycles: int
    link_cycles: int
    multicast: str

    @property
    def link_busy_cycles(self) -> np.ndarray:
        """Cycles each link is busy; one flit per link per cycle makes it ``link_flits``."""
        return self.link_flits

    @property
    def flit_hops(self) -> int:
        return int(self.link_flits.sum())

    @property
    def last_delivery_cycle(self) -> int:
        """Cycle of the last delivery (-1 without packets)."""
        return int(self.delivery_cycle.max(initial=-1))

    @property
    def latency_cycles(self) -> np.ndarray:
        """``(D,)`` delivery minus inject cycle, per destination."""
        return self.delivery_cycle - self.packets.inject_cycle[self.packets.packet_of_destination()]

    @property
    def zero_load_cycles(self) -> np.ndarray:
        """``(D,)`` latency without contention: ``hops * (R + W) + (L - 1)``."""
        pk = self.packets
        p = pk.packet_of_destination()
        hops = xy_hops(pk.src_xy[p], pk.dst_xy)
        return hops * (self.router_cycles + self.link_cycles) + pk.flits[p] - 1

    @property
    def contention_cycles(self) -> np.ndarray:
        """``(D,)`` latency above zero load: cycles lost waiting for busy links."""
        return self.latency_cycles - self.zero_load_cycles

    def latency_histogram(self, bin_cycles: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)``: destinations per latency bin of ``bin_cycles`` cycles;
        bin ``i`` holds latencies in ``[edges[i], edges[i + 1])``, ``edges[0] = 0``."""
        if bin_cycles < 1:
            raise NocError(f"latency_histogram: bin_cycles must be >= 1, got {bin_cycles}")
        lat = self.latency_cycles
        counts = np.bincount(lat // bin_cycles) if lat.size else np.zeros(0, dtype=np.int64)
        return counts, np.arange(counts.size + 1, dtype=np.int64) * bin_cycles

    def delivered_flits(self, start_cycle: int, end_cycle: int) -> int:
        """Flits ejected at destinations during cycles ``[start_cycle, end_cycle)``:
        flit ``i`` of a packet arrives at ``delivery - (L - 1) + i``."""
        L = self.packets.flits[self.packets.packet_of_destination()]
        first = self.delivery_cycle - (L - 1)
        lo = np.clip(start_cycle - first, 0, L)
        hi = np.clip(end_cycle - first, 0, L)
        return int(np.maximum(hi - lo, 0).sum())


# --------------------------------------------------------------------------- kernels

@njit(cache=True)
def _build_routes(src, indptr, dst, edge_off, gw, gh, tree,
                  edge_link, edge_parent, edge_packet, edge_count, dst_edge):
    """Lay out every packet's links as edges ``edge_off[p] ..`` in path order.

    ``tree``: share links among a packet's destinations (xy-tree); else one path per
    destination (unicast copies). ``dst_edge[k]`` = last edge to destination k, or -1.
    """
    P = src.shape[0]
    stamp = np.full(gw * gh * 4, -1, dtype=np.int64)  # packet that last used the link
    link_edge = np.zeros(gw * gh * 4, dtype=np.int64)
    for p in range(P):
        n = 0
        base = edge_off[p]
        for k in range(indptr[p], indptr[p + 1]):
            x = src[p, 0]
            y = src[p, 1]
            dx = dst[k, 0]
            dy = dst[k, 1]
            parent = -1
            while x != dx or y != dy:
                if x != dx:
                    port = _E if dx > x else _W
                else:
                    port = _N if dy > y else _S
                lid = (x * gh + y) * 4 + port
                if tree and stamp[lid] == p:
                    e = link_edge[lid]
                else:
                    e = base + n
                    n += 1
                    edge_link[e] = lid
                    edge_parent[e] = parent
                    edge_packet[e] = p
                    stamp[lid] = p
                    link_edge[lid] = e
                parent = e
                if port == _E:
                    x += 1
                elif port == _W:
                    x -= 1
                elif port == _N:
                    y += 1
                else:
                    y -= 1
            dst_edge[k] = parent
        edge_count[p] = n


def link_order(grid_w: int, grid_h: int) -> np.ndarray:
    """``(grid_w * grid_h * 4,)`` position of every directed link in a topological order
    of XY routes: E links by increasing x, then W links by decreasing x, N links by
    increasing y, S links by decreasing y (ties by link id).

    An XY route only turns from x to y, so the link after ``(x, y, E)`` on any route
    is ``(x + 1, y, E)`` or a N / S link, the link after ``(x, y, N)`` is
    ``(x, y + 1, N)``, and so on: every link of a route comes later in this order
    than the link before it, on unicast paths and xy-trees alike.
    """
    gw, gh = int(grid_w), int(grid_h)
    x, y, port = np.meshgrid(np.arange(gw), np.arange(gh), np.arange(4), indexing="ij")
    rank = np.select([port == _E, port == _W, port == _N],
                     [x, 2 * gw - 1 - x, 2 * gw + y], 2 * gw + 2 * gh - 1 - y).reshape(-1)
    pos = np.empty(gw * gh * 4, np.int64)
    pos[np.lexsort((np.arange(rank.size), rank))] = np.arange(rank.size)
    return pos


@functools.lru_cache(maxsize=16)
def link_tables(grid_w: int, grid_h: int) -> tuple[np.ndarray, np.ndarray]:
    """``(link_pos, link_at)``: :func:`link_order` and its inverse (the link at each
    position), built once per grid size; read-only."""
    pos = link_order(grid_w, grid_h)
    at = np.argsort(pos)
    pos.flags.writeable = False
    at.flags.writeable = False
    return pos, at


@njit(cache=True)
def _run(t0, flits, edge_valid, edge_link, edge_parent, edge_packet, router, link, link_pos, link_at,
         edge_start, link_flits):
    """Serve every link's requests in (ready, edge) order; edge order = packet-id order.

    Fills ``edge_start[e]`` (cycle the head starts crossing edge e) and adds to
    ``link_flits`` (:func:`run_into` with fresh scratch arrays).
    """
    E = edge_link.shape[0]
    nl = link_pos.shape[0]
    run_into(t0, flits, edge_valid, edge_link, edge_parent, edge_packet, router, link, link_pos, link_at,
              edge_start, link_flits, np.zeros(nl, np.int64), np.empty(nl, np.int64), np.empty(nl, np.int64),
              np.empty(E, np.int64), np.empty(E, np.int64))


@njit(cache=True)
def run_into(t0, flits, edge_valid, edge_link, edge_parent, edge_packet, router, link, link_pos, link_at,
             edge_start, link_flits, l_cnt, l_used, l_at, order, ready):
    """:func:`_run` with caller-owned scratch, so a simulator calling it every step
    allocates nothing: ``l_cnt`` (one per link) must be all zero on entry and is left
    so; ``l_used``, ``l_at`` (one per link), ``order``, ``ready`` (one per edge) may
    hold anything.

    The links are served one after another in the topological order ``link_pos``
    (:func:`link_order`; ``link_at`` is its inverse, link at each position), so when
    a link comes up, every edge on it has its ready cycle: ``t0 + R`` at the root
    (any negative parent),
    else the parent's start ``+ W + R`` (the parent's link came earlier). The link's
    edges, gathered in edge order (a counting sort by link), are sorted by ready
    cycle, stably, which is the spec's FIFO order (ready, edge); then ``s = max(ready,
    free)``, ``free = s + L`` along the list. No priority queue: O(E) plus the
    sorts, which are linear when a link's requests already come in edge order, as a
    train of packets does.
    """
    E = edge_link.shape[0]
    nu = 0
    for e in range(E):
        if edge_valid[e]:
            lid = edge_link[e]
            if l_cnt[lid] == 0:
                l_used[nu] = lid
                nu += 1
            l_cnt[lid] += 1
    order_used_links(l_used, nu, l_cnt, l_at, link_pos, link_at)
    for e in range(E):
        if edge_valid[e]:
            lid = edge_link[e]
            order[l_at[lid]] = e
            l_at[lid] += 1
    WR = link + router
    p = 0
    for i in range(nu):
        lid = l_used[i]
        n = l_cnt[lid]
        l_cnt[lid] = 0
        g = order[p:p + n]
        p += n
        for k in range(n):  # ready cycles: the parents' links were served before this one
            e = g[k]
            par = edge_parent[e]
            ready[e] = t0[edge_packet[e]] + router if par < 0 else edge_start[par] + WR
        _sort_stable_by(g, ready)
        free = ready[g[0]]
        tot = np.int64(0)
        for k in range(n):
            e = g[k]
            L = flits[edge_packet[e]]
            r = ready[e]
            st = r if r > free else free
            edge_start[e] = st
            free = st + L
            tot += L
        link_flits[lid] += tot


@njit(cache=True, inline="always")
def order_used_links(l_used, nu, l_cnt, l_at, link_pos, link_at):
    """Put the ``nu`` used links ``l_used[:nu]`` (those with ``l_cnt > 0`` requests) in
    the topological order ``link_pos`` (:func:`link_order`; ``link_at`` its inverse):
    sort a few, walk every position for many; then ``l_at[link]`` = where the link's
    requests start in a list grouped by link in that order (a counting sort's offsets)."""
    nl = link_pos.shape[0]
    if nu * 8 > nl:
        k = 0
        for q in range(nl):
            lid = link_at[q]
            if l_cnt[lid] != 0:
                l_used[k] = lid
                k += 1
    else:
        _sort_stable_by(l_used[:nu], link_pos)
    p = 0
    for i in range(nu):
        lid = l_used[i]
        l_at[lid] = p
        p += l_cnt[lid]


@njit(cache=True, inline="always")
def _sort_stable_by(g, key):
    """Sort the ids ``g`` by ``key[g]`` in place, stably (ties keep their order): by
    insertion, linear when ``g`` is nearly in order; once the shifts pass ``8 n + 64``
    a stable mergesort finishes (the insertion sorted a prefix whose ids all came
    before the rest, so stability still gives (key, original order))."""
    n = g.shape[0]
    shifts = 0
    for k in range(1, n):
        e = g[k]
        r = key[e]
        j = k - 1
        while j >= 0 and key[g[j]] > r:
            g[j + 1] = g[j]
            j -= 1
        g[j + 1] = e
        shifts += k - 1 - j
        if shifts > 8 * n + 64:
            _mergesort_by(g, key)
            return


@njit(cache=True)
def _mergesort_by(g, key):
    """:func:`_sort_stable_by`'s fallback, a function of its own: inlined, its
    allocations slowed every call of the insertion sort (a 10-edge call of
    :func:`run_into` in a microbenchmark: 650-690 ns with it inlined, 360-460 ns out
    of line)."""
    g[:] = g[np.argsort(key[g], kind="mergesort")]


# --------------------------------------------------------------------------- API

@njit(cache=True)
def run_trains_into(t0, length, edge_valid, edge_link, edge_parent, edge_owner, router, link, link_pos, link_at,
                    edge_start, link_flits, l_cnt, l_used, l_at, order, ready):
    """Trains as single packets: :func:`run_into` on one packet per train (inject
    ``t0``, ``length`` = the train's total flits, the route its packets share), and
    whether no train waited anywhere (start = ready on every link). If one waited, the
    flits the call added per link are taken back and the trains must be simulated
    packet by packet.

    A train is a list of packets with the same inject cycle and route, in packet-id
    order. If no train waited, the trains' intervals on every link are disjoint
    (in FIFO order each started at or after the one before ended), and packet ``j``
    of a train, ``off_j`` flits into it (the flits of the packets before it), starts
    on every link of the route exactly ``off_j`` cycles after the train's head, with
    no wait: on the first link the train's packets are ready together and go in
    packet order, back to back; on each next link packet ``j`` is ready ``W + R``
    after its start on the parent link, the cycle packet ``j - 1`` frees the link,
    and no other train is on it then. That is the packet-level schedule of the spec;
    its delivery at a destination is ``head start on the last link + off_j + W + L_j - 1``.
    """
    run_into(t0, length, edge_valid, edge_link, edge_parent, edge_owner, router, link, link_pos, link_at,
              edge_start, link_flits, l_cnt, l_used, l_at, order, ready)
    E = edge_link.shape[0]
    for e in range(E):
        if edge_valid[e] and edge_start[e] != ready[e]:
            for k in range(E):
                if edge_valid[k]:
                    link_flits[edge_link[k]] -= length[edge_owner[k]]
            return False
    return True


def _trains(t0, src_xy, ptr, dst_xy):
    """Runs of consecutive packets with the same inject cycle, source and destination
    list: the run (train) of every packet, ``(train, n_trains)``."""
    n = t0.size
    if n == 0:
        return np.zeros(0, np.int64), 0
    nd = np.diff(ptr)
    same = (t0[1:] == t0[:-1]) & (src_xy[1:] == src_xy[:-1]).all(axis=1) & (nd[1:] == nd[:-1])
    # where packet i matches packet i - 1 so far, its destination k against theirs, k - nd[i]
    owner = np.repeat(np.arange(n), nd)
    k = np.flatnonzero(owner > 0)
    k = k[same[owner[k] - 1]]
    differ = (dst_xy[k] != dst_xy[k - nd[owner[k]]]).any(axis=1)
    same[owner[k[differ]] - 1] = False
    train = np.zeros(n, np.int64)
    np.cumsum(~same, out=train[1:])
    return train, int(train[-1]) + 1


def validate_packets(packets: Packets, grid_w, grid_h, router_cycles, link_cycles, multicast) -> None:
    if not isinstance(packets, Packets):
        raise NocError(f"packets: expected a Packets, got {type(packets).__name__}")
    for name, v, lo in (("grid_w", grid_w, 1), ("grid_h", grid_h, 1),
                        ("router_cycles", router_cycles, 1), ("link_cycles", link_cycles, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise NocError(f"{name}: must be an integer >= {lo}, got {v!r}")
    if multicast not in MULTICAST_MODES:
        raise NocError(f"multicast: must be one of {', '.join(MULTICAST_MODES)}, got {multicast!r}")
    pk = packets

    def first(mask):
        return int(np.flatnonzero(mask)[0])

    bad = pk.inject_cycle < 0
    if bad.any():
        p = first(bad)
        raise NocError(f"packet {p}: inject_cycle = {int(pk.inject_cycle[p])}, must be >= 0")
    bad = pk.flits < 1
    if bad.any():
        p = first(bad)
        raise NocError(f"packet {p}: flits = {int(pk.flits[p])}, must be >= 1")
    for name, xy, owner in (("src_xy", pk.src_xy, None), ("dst_xy", pk.dst_xy, pk.packet_of_destination())):
        bad = (xy[:, 0] < 0) | (xy[:, 0] >= grid_w) | (xy[:, 1] < 0) | (xy[:, 1] >= grid_h)
        if bad.any():
            i = first(bad)
            if owner is None:
                where = f"packet {i}: src_xy"
            else:
                where = f"packet {int(owner[i])}: dst_xy[{i - int(pk.dst_indptr[owner[i]])}]"
            raise NocError(f"{where} = ({int(xy[i, 0])}, {int(xy[i, 1])}) lies outside the "
                           f"{grid_w} x {grid_h} grid")


def simulate_noc(packets: Packets, grid_w: int, grid_h: int, router_cycles: int, link_cycles: int,
                 *, multicast: str = "xy-tree") -> NocResult:
    """Deliver ``packets`` on a ``grid_w x grid_h`` mesh; timing per the module docstring.

    Parameters
    ----------
    packets : Packets
        Inject cycles, sources, destinations (CSR) and lengths in flits.
    grid_w, grid_h : int
        Global mesh size (nodes along x and y).
    router_cycles, link_cycles : int
        ``NocConfig.router_cycles`` (>= 1) and ``NocConfig.link_cycles`` (>= 0).
    multicast : {"xy-tree", "unicast"}
        How a packet with several destinations travels (``NocConfig.multicast``).

    Returns
    -------
    NocResult
        Delivery cycle per (packet, destination) and flits per link.

    Examples
    --------
    >>> pk = Packets.unicast([0], [(0, 0)], [(2, 1)], flits=3)
    >>> int(simulate_noc(pk, 4, 4, router_cycles=2, link_cycles=1).delivery_cycle[0])
    11
    """
    validate_packets(packets, grid_w, grid_h, router_cycles, link_cycles, multicast)
    pk = packets
    gw, gh, R, W = int(grid_w), int(grid_h), int(router_cycles), int(link_cycles)
    delivery, link_flits = deliver(pk.inject_cycle, pk.flits, pk.src_xy, pk.dst_indptr, pk.dst_xy, gw, gh,
                                    multicast == "xy-tree", R, W)
    return NocResult(pk, delivery, link_flits.reshape(gw, gh, 4), gw, gh, R, W, multicast)


def routes(src_xy, ptr, dst_xy, gw: int, gh: int, tree: bool):
    """Every packet's route laid out by :func:`_build_routes` (packet ``p`` owns edges
    ``edge_off[p]:edge_off[p+1]``, of which the first ``edge_count[p]`` are used):
    ``(edge_off, edge_link, edge_parent, edge_packet, edge_count, dst_edge, edge_valid)``."""
    n = src_xy.shape[0]
    owner = np.repeat(np.arange(n), np.diff(ptr))
    bound = np.bincount(owner, weights=xy_hops(src_xy[owner], dst_xy), minlength=n).astype(np.int64)
    edge_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(bound, out=edge_off[1:])
    E = int(edge_off[-1])
    edge_link = np.zeros(E, dtype=np.int64)
    edge_parent = np.full(E, -1, dtype=np.int64)
    edge_packet = np.zeros(E, dtype=np.int64)
    edge_count = np.zeros(n, dtype=np.int64)
    dst_edge = np.full(owner.size, -1, dtype=np.int64)
    _build_routes(np.ascontiguousarray(src_xy, np.int64), np.ascontiguousarray(ptr, np.int64),
                  np.ascontiguousarray(dst_xy, np.int64), edge_off, gw, gh, tree,
                  edge_link, edge_parent, edge_packet, edge_count, dst_edge)
    edge_valid = (np.arange(E) - np.repeat(edge_off[:-1], bound)) < np.repeat(edge_count, bound)
    return edge_off, edge_link, edge_parent, edge_packet, edge_count, dst_edge, edge_valid


def deliver(t0, flits, src_xy, ptr, dst_xy, gw: int, gh: int, tree: bool, R: int, W: int, trains: bool = True):
    """:func:`simulate_noc` without validation or result object: delivery cycle per
    (packet, destination) and flits per link (flat), for packets the caller built.

    With ``trains``, runs of consecutive packets with the same inject cycle, source
    and destinations (:func:`_trains`) are first simulated as one packet each
    (:func:`run_trains_into`) when there are at least four packets per run; if no
    run waited, that is the result (the same as packet by packet), else the packets
    are simulated one by one."""
    t0 = np.ascontiguousarray(t0, np.int64)
    flits = np.ascontiguousarray(flits, np.int64)
    link_flits = np.zeros(gw * gh * 4, dtype=np.int64)
    owner = np.repeat(np.arange(t0.size), np.diff(ptr))
    L = flits[owner]
    if trains:
        train, ntr = _trains(t0, src_xy, ptr, dst_xy)
        if t0.size >= 4 * ntr:
            first = np.flatnonzero(np.diff(train, prepend=-1))  # the first packet of every train
            tlen = np.add.reduceat(flits, first)
            before = np.cumsum(flits) - flits
            off = before - before[first][train]  # flits of the train before the packet
            rptr = np.zeros(ntr + 1, np.int64)
            np.cumsum(np.diff(ptr)[first], out=rptr[1:])
            rdst = dst_xy[np.repeat(ptr[first] - rptr[:-1], np.diff(rptr)) + np.arange(rptr[-1])]
            _, e_link, e_parent, e_owner, _, rdst_edge, e_valid = routes(src_xy[first], rptr, rdst, gw, gh, tree)
            e_start = np.full(e_link.size, -1, dtype=np.int64)
            nl = gw * gh * 4
            if run_trains_into(t0[first], tlen, e_valid, e_link, e_parent, e_owner, R, W, *link_tables(gw, gh),
                                e_start, link_flits, np.zeros(nl, np.int64), np.empty(nl, np.int64),
                                np.empty(nl, np.int64), np.empty(e_link.size, np.int64),
                                np.empty(e_link.size, np.int64)):
                # destination k of packet i is destination k - ptr[i] of its train's first packet
                de = rdst_edge[rptr[train[owner]] + np.arange(owner.size) - ptr[owner]]
                via = de >= 0
                delivery = t0[owner] + L - 1
                delivery[via] = e_start[de[via]] + off[owner[via]] + W + L[via] - 1
                return delivery, link_flits
    _, edge_link, edge_parent, edge_packet, _, dst_edge, edge_valid = routes(src_xy, ptr, dst_xy, gw, gh, tree)
    edge_start = np.full(edge_link.size, -1, dtype=np.int64)
    _run(t0, flits, edge_valid, edge_link, edge_parent, edge_packet, R, W, *link_tables(gw, gh), edge_start,
         link_flits)
    via = dst_edge >= 0
    delivery = t0[owner] + L - 1  # destinations at their own source
    delivery[via] = edge_start[dst_edge[via]] + W + L[via] - 1
    return delivery, link_flits


def uniform_traffic(k: int, p: float, cycles: int, seed: int = 0) -> "Packets":
    """Uniform random traffic: every node of a k x k mesh injects a 1-flit packet with
    probability ``p`` per cycle to a uniformly random *other* node (seeded)."""
    rng = np.random.default_rng(seed)
    n = k * k
    t, s = np.nonzero(rng.random((cycles, n)) < p)
    d = rng.integers(0, n - 1, t.size)
    d += d >= s
    return Packets.unicast(t, np.c_[s // k, s % k], np.c_[d // k, d % k], 1)
