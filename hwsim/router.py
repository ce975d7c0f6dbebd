"""The router model: an input-queued wormhole/VC router mesh with credits, cycle by cycle (Numba).

This module owns the flit-level NoC model of issue 20 (its compiled kernel is
``hwsim/router_kernel.py``); ``hwsim/router_ref.py`` is its plain-Python twin, slow and plainly correct, held equal
to it cycle for cycle by ``tests/hwsim/test_router_twin.py``. ``hwsim/noc.py`` (the
idealised packet model, unlimited buffers) is its limit for deep buffers and light load.

Router semantics (the spec)
---------------------------
A ``W x H`` mesh, one router and one terminal (core) per node ``n = y * W + x``. Every
router has five input and five output ports: 0 = E (+x), 1 = W (-x), 2 = N (+y),
3 = S (-y), 4 = local. An input port is named after the direction its flits travel,
so router ``(x, y)``'s output ``E`` feeds router ``(x + 1, y)``'s input ``E``. Every
input port has ``V`` virtual channels (VCs), each a FIFO of ``B`` flits.

Delays (cycles, ``ChipConfig.noc``): routing ``Dr``, VC allocation ``Dva``, switch
allocation ``Dsa``, switch traversal ``Dst``, link ``Dl``, credit ``Dc``, injection
channel ``Dinj``, ejection channel ``Dej``; bandwidths ``I`` (injection) and ``E``
(ejection) flits per cycle.

* **Packets and routing.** A packet of ``L`` flits (head = flit 0, tail = flit L-1) is
  created at its source at cycle ``c`` and waits in an unbounded source queue (FIFO
  per node). Routes are XY (x first), computed per router for the head; the last
  router sends it to output 4 (ejection), also when source = destination.
* **Wormhole + VCs.** A head needs an output VC of its output port (VC allocation);
  the VC stays the packet's until its tail crosses the switch (BookSim's
  ``wait_for_tail_credit = 0``), and is free for a new head from the next cycle on.
  Every flit of the packet follows the head in the same VC; an input VC holds one
  packet at a time at its front (the head of the next packet may queue behind a tail).
* **Credits.** The sender of output VC ``(o, w)`` counts free slots of the downstream
  input VC, ``B`` at start; a flit sent takes one; the credit comes back when the flit
  leaves the downstream buffer at cycle ``s`` and is usable from cycle
  ``s + Dc + Dl`` (``s + Dc + Dinj`` for the source's credits of the local input port).
  A flit only crosses the switch with a credit: buffers never overflow, a full buffer
  stalls the upstream router. The ejection port never lacks credits.
* **Timing of one hop.** A flit that crosses the switch (wins switch allocation) at
  cycle ``s`` is in the next router's input VC, usable, at ``s + Dsa + Dst + Dl``;
  ejected (counted as delivered) at ``s + Dsa + Dst + Dej``. A head that is at the
  front of its input VC from cycle ``a`` may request VC allocation from ``a + Dr``
  (``a`` = its arrival, or the cycle after the previous tail left the VC if later);
  granted at ``g``, it may request the switch from ``g + Dva``. Body flits request the
  switch as soon as they are at the front. Zero-load latency of an ``L``-flit packet
  ``h`` hops away: ``Dinj + (h + 1)(Dr + Dva + Dsa + Dst) + h Dl + Dej + (L - 1)``.
* **Injection.** Each cycle a source writes up to ``I`` flits of the packets at the
  front of its queue (created by then) into its router's local input port: a head picks
  a free local input VC with a credit, round robin from the VC after the last one
  picked, and holds it until its tail is written; every flit needs a credit. A flit
  written at ``t`` is usable at ``t + Dinj``; the head's write cycle is the packet's
  injection cycle.
* **Allocators** (separable, input first, one iteration, round-robin arbiters whose
  pointer moves to one past the winner only when a grant is made, as BookSim's):
  VC allocation: every input VC waiting for a VC picks one free output VC of its
  output port (round robin per input VC over ``V``); every output VC then grants one of
  the input VCs that picked it (round robin per output VC over the ``5 V`` input VCs,
  index ``port * V + vc``). Switch allocation: an input VC requests when it holds an
  output VC, its front flit is usable, its switch delay has passed, and its output VC
  has a credit; each input port picks up to one requesting VC (``I`` for the local
  port; round robin per port over ``V``), each output port grants up to one of the
  picked VCs (``E`` for the ejection port; round robin per output over ``5 V``).
* **Cycle order.** In each cycle: credits due are returned; sources inject; every
  router allocates VCs; every router allocates the switch and moves its flits. An
  output VC released in a cycle is free from the next one; nothing a router does in a
  cycle is usable by another router in the same cycle, so routers are order free.

* **Multicast (xy-tree) forking.** A packet may have several distinct destinations
  (*targets*). Its route is the union of the XY paths from its source (the xy-tree of
  ``hwsim/noc.py``): at router ``n`` its output ports are the XY first hops of every
  target whose XY path runs through ``n``, so the tree forks where those differ (at
  most into E/W at the source row's routers and N/S/local in a target column).
  *VC allocation* of a multicast head: each cycle it requests, in port order (E, W,
  N, S, local), a free output VC at every port of its fork it does not hold yet, one
  that has credits for the *whole* packet (``L <= B`` is required: the packet is
  buffered whole, virtual cut-through, at every hop); it keeps the grants it won up
  to its first loss and holds them (nobody else sends on them, so their credits stay)
  until it holds all, then may request the switch ``Dva`` later. (All-or-nothing
  grants livelock: three heads each winning one of the outputs another needs.)
  *Switch traversal* replicates asynchronously: each cycle the
  front flit requests every output it has not yet been copied to; each output arbiter
  grants independently; a copy goes out per granted output and the flit leaves the
  input buffer (its credit goes upstream) when it has been copied to all of them. Each
  branch releases its output VC when the tail's copy crosses it. The copies are
  ordinary worms downstream: they occupy input buffers and VCs and contend like any
  packet; a copy ejected at a target delivers that target. This is the
  packet-buffered, asynchronous-replication scheme for small multicast packets in
  the hybrid multicast scheme of IEICE Electronics Express 8(20):1743 (2011); tree
  multicast with plain wormhole replication is deadlock-prone (Lin, McKinley and Ni,
  1994), which is why routers that fork either buffer whole packets or add VCs (see
  the MRBS multicast-router paper's survey).
* **Links of their own** (:func:`chip_links`): every mesh link ``n * 4 + o`` has a
  latency ``lat`` and a width in cycles per flit ``ser`` (default ``Dl`` and 1). A flit
  may cross the switch onto it only when the link is free (a flit occupies it ``ser``
  cycles), and is usable downstream at ``s + Dsa + Dst + lat + ser - 1``; its credit
  comes back ``Dc + lat`` after it leaves the downstream buffer. Chip-to-chip links
  take ``interchip_cycles`` and ``ceil(flit_bits / interchip_bits)``, so packets
  crossing the same boundary link contend for it.
* **The I/O port** (source ``IO_PORT``) sits west of node 0 (global (-1, 0), as in
  ``hwsim/noc.py``'s counts): it writes up to ``I`` flits per cycle, one per ``ser``
  cycles, over the I/O link (index ``4 N``, off chip: the chip-to-chip latency and
  width) into node 0's input port E, with its own VCs and credits; XY (tree) routing
  from (-1, 0).
* **Incremental use.** Packets may be added while the mesh runs (:func:`router_add`, :func:`router_add_multicast`),
  each created no earlier than the next cycle to simulate; a source queue stays in
  (creation cycle, id) order, ids counting in the order added. Skipping idle cycles
  (:func:`router_next`: nothing in flight, nothing half written) changes no cycle;
  :func:`router_run` simulates up to the next cycle with deliveries, also skipping the
  cycles after one that changed nothing up to the earliest cycle stamp it tested
  (``hwsim/router_kernel.py``), with the same schedule; with one VC per port it also
  computes a long unicast worm that holds its whole path (head ejected, tail not yet
  written) by a recurrence instead of cycle by cycle (``hwsim/router_solo.py``), with
  the same schedule and the same state wherever the cycle loop looks.

**Deadlock freedom.** Rank the channels as XY routing uses them: all E channels (by
increasing x) below all W channels (by decreasing x), below all N (by increasing y),
below all S (by decreasing y); injection lowest and ejection (never blocked) highest.
So at one router the outputs rank E < W < N < S < local, and every output a packet
can take from an input channel ranks above that channel. A unicast worm holds
channels and waits only for a channel ranked above all it holds (XY has no cyclic
channel dependency). A multicast packet gets output VCs only with room for all of it,
so once its head crosses a channel no flit of it waits for space downstream: its
flits in flight need only switch grants, which round-robin arbiters give in bounded
time. It can be *blocked* only whole, inside one input VC, holding the output VCs of
its lower ports there and waiting for the next port's - ranked above everything it
holds, because it acquires them in port (= rank) order. Every blocked packet thus
waits for a channel ranked above all channels it holds, the waits-for relation climbs
the rank, and no cycle (deadlock) can form. The tests check that random multicast and
unicast traffic all arrives.

Validated inputs only reach the kernel (:func:`check_router_params`,
:func:`simulate_router`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import SnnchipError

from .chip import NocConfig
from .router_kernel import (NO_CYCLE, RouterState, router_add, router_add_multicast, router_cycle, router_next,
                            router_run, router_state, run_batch)

__all__ = ["IO_PORT", "check_links", "chip_links", "check_packets", "RouterError", "RouterParams", "RouterRun", "check_router_params", "simulate_router",
           "router_params_from_chip", "wormhole_links", "PORTS", "LINK_CYCLES_DEFAULT", "RouterState", "router_state",
           "router_add", "router_add_multicast", "router_next", "router_cycle", "router_run", "NO_CYCLE"]

PORTS = ("E", "W", "N", "S", "local")
# defaults live in ChipConfig.noc (one home per number); the link has none there (every
# preset sets it), so a bare RouterParams takes BookSim2's channel latency of 1 cycle
_NOC_DEFAULT = {name: f.default for name, f in NocConfig.model_fields.items()}
LINK_CYCLES_DEFAULT = 1
IO_PORT = -1  # a packet's source: the I/O port (west of node 0, see the module docstring)


class RouterError(SnnchipError):
    """A router simulation request is invalid: a parameter out of range, a packet
    outside the mesh, a non-positive length or a negative creation cycle. The message
    names the field or packet."""


@dataclass(frozen=True)
class RouterParams:
    """Router and mesh parameters (units: cycles, flits, flits per cycle). Field names
    follow ``ChipConfig.noc``; the BookSim2 knob each one mirrors is in brackets.

    ``vcs`` [num_vcs], ``buffer_flits`` [vc_buf_size], ``routing_cycles``
    [routing_delay], ``vc_alloc_cycles`` [vc_alloc_delay], ``sw_alloc_cycles``
    [sw_alloc_delay], ``switch_cycles`` [st_final_delay], ``link_cycles`` [channel
    latency], ``credit_cycles`` [credit_delay], ``inject_cycles`` / ``eject_cycles``
    [injection / ejection channel latency], ``inject_flits_per_cycle`` /
    ``eject_flits_per_cycle`` [terminal channel width].
    """

    width: int
    height: int
    vcs: int = _NOC_DEFAULT["vcs"]
    buffer_flits: int = _NOC_DEFAULT["buffer_flits"]
    routing_cycles: int = _NOC_DEFAULT["routing_cycles"]
    vc_alloc_cycles: int = _NOC_DEFAULT["vc_alloc_cycles"]
    sw_alloc_cycles: int = _NOC_DEFAULT["sw_alloc_cycles"]
    switch_cycles: int = _NOC_DEFAULT["switch_cycles"]
    link_cycles: int = LINK_CYCLES_DEFAULT
    credit_cycles: int = _NOC_DEFAULT["credit_cycles"]
    inject_cycles: int = _NOC_DEFAULT["inject_cycles"]
    eject_cycles: int = _NOC_DEFAULT["eject_cycles"]
    inject_flits_per_cycle: int = _NOC_DEFAULT["inject_flits_per_cycle"]
    eject_flits_per_cycle: int = _NOC_DEFAULT["eject_flits_per_cycle"]

    def zero_load_cycles(self, hops: int, flits: int) -> int:
        """Zero-load packet latency (creation to tail ejection) over ``hops`` hops."""
        per_router = self.routing_cycles + self.vc_alloc_cycles + self.sw_alloc_cycles + self.switch_cycles
        return (self.inject_cycles + (hops + 1) * per_router + hops * self.link_cycles + self.eject_cycles
                + flits - 1)

    def kernel_args(self) -> tuple:
        return (self.width, self.height, self.vcs, self.buffer_flits, self.routing_cycles, self.vc_alloc_cycles,
                self.sw_alloc_cycles, self.switch_cycles, self.link_cycles, self.credit_cycles,
                self.inject_cycles, self.eject_cycles, self.inject_flits_per_cycle, self.eject_flits_per_cycle)


# field: (min, max); the limits keep the kernel's arrays small and its cycle sums in int64
_LIMITS = {
    "width": (1, 256), "height": (1, 256), "vcs": (1, 16), "buffer_flits": (1, 4096),
    "routing_cycles": (0, 1000), "vc_alloc_cycles": (1, 1000), "sw_alloc_cycles": (1, 1000),
    "switch_cycles": (0, 1000), "link_cycles": (0, 100_000), "credit_cycles": (1, 100_000),
    "inject_cycles": (0, 100_000), "eject_cycles": (0, 100_000),
    "inject_flits_per_cycle": (1, 16), "eject_flits_per_cycle": (1, 16),
}


def check_router_params(p: RouterParams) -> RouterParams:
    """Range-check every field (integers, within :data:`_LIMITS`); returns ``p``."""
    for name, (lo, hi) in _LIMITS.items():
        v = getattr(p, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
            raise RouterError(f"router parameter {name}: expected an integer in [{lo}, {hi}], got {v!r}")
    if p.width * p.height * 5 * p.vcs * p.buffer_flits > 10_000_000:
        raise RouterError(f"router buffers: {p.width}x{p.height} mesh x 5 ports x {p.vcs} VCs x "
                          f"{p.buffer_flits} flits exceeds the 10,000,000-slot budget")
    return p


def router_params_from_chip(chip, width: int | None = None, height: int | None = None) -> RouterParams:
    """The router parameters of ``chip.noc`` on a ``width x height`` mesh (default: the chip's)."""
    n = chip.noc
    return check_router_params(RouterParams(
        width=int(width if width is not None else chip.mesh.width),
        height=int(height if height is not None else chip.mesh.height),
        vcs=n.vcs, buffer_flits=n.buffer_flits, routing_cycles=n.routing_cycles,
        vc_alloc_cycles=n.vc_alloc_cycles, sw_alloc_cycles=n.sw_alloc_cycles, switch_cycles=n.switch_cycles,
        link_cycles=n.link_cycles, credit_cycles=n.credit_cycles, inject_cycles=n.inject_cycles,
        eject_cycles=n.eject_cycles, inject_flits_per_cycle=n.inject_flits_per_cycle,
        eject_flits_per_cycle=n.eject_flits_per_cycle))


@dataclass(frozen=True)
class RouterRun:
    """Per packet: ``created`` and ``head_inject`` (cycle the head entered the injection
    channel, -1 if never); per target (packet ``k``'s destinations are targets
    ``target_ptr[k] .. target_ptr[k + 1] - 1``, one per packet for unicast traffic):
    ``delivery`` (cycle the packet's tail was ejected there, -1 if not by the end);
    ``eject_flits[t]`` = flits ejected at cycle ``t`` over the whole mesh; ``cycles`` =
    cycles simulated."""

    created: np.ndarray
    head_inject: np.ndarray
    delivery: np.ndarray
    eject_flits: np.ndarray
    cycles: int
    target_ptr: np.ndarray | None = None


def check_packets(p: RouterParams, created, src, dst, flits, max_cycles, dst_ptr=None):
    """Validated int64 copies of the packet arrays and the targets' CSR ``dst_ptr``
    (``None``: one destination per packet). A packet with two or more destinations (a
    multicast packet) must have distinct destinations and at most ``buffer_flits`` flits
    (it is packet-buffered: see the module docstring)."""
    n = p.width * p.height
    arrs = []
    for name, a in (("created", created), ("src", src), ("dst", dst), ("flits", flits)):
        a = np.asarray(a)
        if a.ndim != 1:
            raise RouterError(f"packets: {name} must be one-dimensional, got shape {a.shape}")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise RouterError(f"packets: {name} must hold integers, got {a.dtype}")
        arrs.append(a.astype(np.int64))
    created, src, dst, flits = arrs
    if dst_ptr is None:
        dst_ptr = np.arange(dst.size + 1, dtype=np.int64)
    dst_ptr = np.asarray(dst_ptr)
    if dst_ptr.ndim != 1 or (dst_ptr.size and not np.issubdtype(dst_ptr.dtype, np.integer)):
        raise RouterError("packets: dst_ptr must be a one-dimensional integer array")
    dst_ptr = dst_ptr.astype(np.int64)
    if not (created.size == src.size == flits.size == dst_ptr.size - 1):
        raise RouterError("packets: created, src, flits (and dst_ptr minus one) must have the same length")
    if dst_ptr[0] != 0 or dst_ptr[-1] != dst.size or (np.diff(dst_ptr) < 1).any():
        raise RouterError("packets: dst_ptr must start at 0, end at len(dst) and give every packet a destination")
    for name, a, lo, hi in (("created", created, 0, 1 << 40), ("src", src, IO_PORT, n - 1),
                            ("flits", flits, 1, 1 << 20)):
        bad = np.flatnonzero((a < lo) | (a > hi))
        if bad.size:
            raise RouterError(f"packet {int(bad[0])}: {name} = {int(a[bad[0]])} outside [{lo}, {hi}]")
    bad = np.flatnonzero((dst < 0) | (dst > n - 1))
    if bad.size:
        k = int(np.searchsorted(dst_ptr, bad[0], side="right") - 1)
        raise RouterError(f"packet {k}: dst = {int(dst[bad[0]])} outside [0, {n - 1}]")
    multi = np.flatnonzero(np.diff(dst_ptr) > 1)
    for k in multi:
        d = dst[dst_ptr[k]:dst_ptr[k + 1]]
        if np.unique(d).size != d.size:
            raise RouterError(f"packet {int(k)}: a multicast packet's destinations must be distinct, got {d.tolist()}")
        if flits[k] > p.buffer_flits:
            raise RouterError(f"packet {int(k)}: a multicast packet of {int(flits[k])} flits exceeds buffer_flits = "
                              f"{p.buffer_flits} (multicast packets are packet-buffered)")
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)) or not 1 <= max_cycles <= 1 << 31:
        raise RouterError(f"max_cycles: expected an integer in [1, 2**31], got {max_cycles!r}")
    if max_cycles > 50_000_000:
        raise RouterError(f"max_cycles: {max_cycles:,} exceeds the 50,000,000-cycle budget of the per-cycle ejection record")
    return created, src, dst, flits, dst_ptr


def check_links(p: RouterParams, links=None) -> tuple[np.ndarray, np.ndarray]:
    """Per link ``n * 4 + port`` (node ``n``'s mesh output ``port``) and the I/O link
    (index ``4 N``): latency in cycles and cycles per flit, validated (on the mesh,
    besides ``link_cycles``, one other latency: the chip-to-chip links'); ``None``: every link
    (and the I/O link) ``link_cycles`` and one cycle per flit."""
    m = p.width * p.height * 4 + 1
    if links is None:
        return np.full(m, p.link_cycles, np.int64), np.ones(m, np.int64)
    out = []
    for name, a, lo, hi in (("link latency", links[0], 0, 100_000), ("link cycles per flit", links[1], 1, 4096)):
        a = np.asarray(a)
        if a.shape != (m,) or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise RouterError(f"links: {name} must be {m} integers (4 per node + the I/O link), got {a.shape}")
        bad = np.flatnonzero((a < lo) | (a > hi))
        if bad.size:
            raise RouterError(f"links: {name} of link {int(bad[0])} = {int(a[bad[0]])} outside [{lo}, {hi}]")
        out.append(a.astype(np.int64))
    mesh = out[0][:-1]
    other = np.unique(mesh[mesh != p.link_cycles])
    if other.size > 1:
        raise RouterError(f"links: at most one latency other than link_cycles = {p.link_cycles} (the chip-to-chip "
                          f"one), got {other.tolist()}")
    return out[0], out[1]


def chip_links(p: RouterParams, chip_w: int, chip_h: int, interchip_cycles: int, cycles_per_flit: int):
    """The links of a mesh of ``chip_w x chip_h``-node chips: a link whose two routers
    are on different chips, and the I/O link (the I/O port is off chip), take
    ``interchip_cycles`` and ``cycles_per_flit`` (= ceil(flit_bits / interchip_bits));
    the others ``link_cycles`` and 1. Returns (latency, cycles per flit) per link."""
    lat, ser = check_links(p)
    for n in range(p.width * p.height):
        x, y = n % p.width, n // p.width
        for o, (dx, dy) in enumerate(((1, 0), (-1, 0), (0, 1), (0, -1))):
            nx, ny = x + dx, y + dy
            if 0 <= nx < p.width and 0 <= ny < p.height and (nx // chip_w, ny // chip_h) != (x // chip_w, y // chip_h):
                lat[n * 4 + o], ser[n * 4 + o] = interchip_cycles, cycles_per_flit
    lat[-1], ser[-1] = interchip_cycles, cycles_per_flit
    return check_links(p, (lat, ser))


def wormhole_links(chip, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The links of ``chip``'s system as the engine's wormhole timing sees it (a
    ``width x height`` global grid of ``chip.mesh`` chips): :func:`chip_links` with the
    chip-to-chip latency and ``ceil(flit_bits / interchip_bits)`` cycles per flit, then
    the I/O link's ``noc.io_cycles`` and ``ceil(flit_bits / io_bits)`` (``io_bits``
    None: one flit per cycle)."""
    n = chip.noc
    p = router_params_from_chip(chip, width, height)
    lat, ser = chip_links(p, chip.mesh.width, chip.mesh.height, n.interchip_cycles, -(-n.flit_bits // n.interchip_bits))
    lat[-1] = n.io_cycles
    ser[-1] = 1 if n.io_bits is None else -(-n.flit_bits // n.io_bits)
    return check_links(p, (lat, ser))


def simulate_router(params: RouterParams, created, src, dst, flits, *, max_cycles: int,
                    stop_when_done: bool = True, dst_ptr=None, links=None) -> RouterRun:
    """Simulate packets (``src``/``dst`` node ids ``y * width + x``) on the router mesh.

    ``dst_ptr`` (optional CSR): packet ``k`` goes to ``dst[dst_ptr[k]:dst_ptr[k + 1]]``,
    forked along its XY tree; without it packet ``k`` goes to ``dst[k]``. ``src =
    IO_PORT`` sends from the I/O port; ``links`` = (latency, cycles per flit) per link
    (:func:`check_links`, :func:`chip_links`; default uniform). Runs cycles
    ``0 .. max_cycles - 1`` or, with ``stop_when_done``, until every target is
    delivered. Returns a :class:`RouterRun`.
    """
    check_router_params(params)
    created, src, dst, flits, dst_ptr = check_packets(params, created, src, dst, flits, max_cycles, dst_ptr)
    lat, ser = check_links(params, links)
    prm = np.array(params.kernel_args(), np.int64)
    src = np.where(src == IO_PORT, params.width * params.height, src)
    head, deliv, ej, cyc = run_batch(prm, created, src, dst_ptr, dst, flits, lat, ser, int(max_cycles),
                                     bool(stop_when_done))
    return RouterRun(created, head, deliv, ej, int(cyc), dst_ptr)
