"""The router model: an input-queued wormhole/VC router mesh with credits, cycle by cycle (Numba).

This module owns the flit-level NoC model of issue 20 and its compiled kernel;
``hwsim/router_ref.py`` is its plain-Python twin, slow and plainly correct, held equal
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

* **Incremental use.** Packets may be added while the mesh runs (:func:`router_add`),
  each created no earlier than the next cycle to simulate; a source queue stays in
  (creation cycle, id) order, ids counting in the order added. Skipping idle cycles
  (:func:`router_next`: nothing in flight, nothing half written) changes no cycle.

XY routing on a mesh has no cyclic channel dependency, so the model cannot deadlock.
Validated inputs only reach the kernel (:func:`check_router_params`,
:func:`simulate_router`).
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np
from numba import njit

from models.errors import SnnchipError

from .chip import NocConfig

__all__ = ["check_packets", "RouterError", "RouterParams", "RouterRun", "check_router_params", "simulate_router",
           "router_params_from_chip", "source_queues", "PORTS", "LINK_CYCLES_DEFAULT", "RouterState", "router_state",
           "router_add", "router_next", "router_cycle", "NO_CYCLE"]

PORTS = ("E", "W", "N", "S", "local")
_LOCAL = 4
# defaults live in ChipConfig.noc (one home per number); the link has none there (every
# preset sets it), so a bare RouterParams takes BookSim2's channel latency of 1 cycle
_NOC_DEFAULT = {name: f.default for name, f in NocConfig.model_fields.items()}
LINK_CYCLES_DEFAULT = 1


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
    """Per packet: ``created``, ``head_inject`` (cycle the head entered the injection
    channel, -1 if never) and ``delivery`` (cycle its tail was ejected, -1 if not by the
    end); ``eject_flits[t]`` = flits ejected at cycle ``t`` over the whole mesh;
    ``cycles`` = cycles simulated."""

    created: np.ndarray
    head_inject: np.ndarray
    delivery: np.ndarray
    eject_flits: np.ndarray
    cycles: int


def check_packets(p: RouterParams, created, src, dst, flits, max_cycles):
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
    if not (created.size == src.size == dst.size == flits.size):
        raise RouterError("packets: created, src, dst and flits must have the same length")
    for name, a, lo, hi in (("created", created, 0, 1 << 40), ("src", src, 0, n - 1), ("dst", dst, 0, n - 1),
                            ("flits", flits, 1, 1 << 20)):
        bad = np.flatnonzero((a < lo) | (a > hi))
        if bad.size:
            raise RouterError(f"packet {int(bad[0])}: {name} = {int(a[bad[0]])} outside [{lo}, {hi}]")
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, (int, np.integer)) or not 1 <= max_cycles <= 1 << 31:
        raise RouterError(f"max_cycles: expected an integer in [1, 2**31], got {max_cycles!r}")
    if max_cycles > 50_000_000:
        raise RouterError(f"max_cycles: {max_cycles:,} exceeds the 50,000,000-cycle budget of the per-cycle ejection record")
    return created, src, dst, flits


def source_queues(created: np.ndarray, src: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of packet ids per source node, each node's packets in (created, id) order."""
    order = np.lexsort((np.arange(created.size), created, src))
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    return indptr, order.astype(np.int64)


def simulate_router(params: RouterParams, created, src, dst, flits, *, max_cycles: int,
                    stop_when_done: bool = True) -> RouterRun:
    """Simulate packets (``src``/``dst`` node ids ``y * width + x``) on the router mesh.

    Runs cycles ``0 .. max_cycles - 1`` or, with ``stop_when_done``, until every packet
    is delivered. Returns a :class:`RouterRun`.
    """
    check_router_params(params)
    created, src, dst, flits = check_packets(params, created, src, dst, flits, max_cycles)
    indptr, order = source_queues(created, src, params.width * params.height)
    prm = np.array(params.kernel_args(), np.int64)
    head, deliv, ej, cyc = _run(prm, created, dst, flits, indptr, order, int(max_cycles), bool(stop_when_done))
    return RouterRun(created, head, deliv, ej, int(cyc))


# ----------------------------------------------------------------------------- kernel ----
#
# The kernel is incremental so that the chip simulator's step timing
# (hwsim/engine/timing_router.py) can add packets while the network runs: a
# RouterState holds the mesh, the packets added so far and their source queues;
# router_add appends a packet (its creation cycle not before the cycle about to be
# simulated), router_cycle simulates one cycle, router_next skips idle cycles.
# simulate_router is the batch use of the same three calls.

RouterState = namedtuple("RouterState", [
    "prm", "sc", "created", "dst", "flits", "head_inj", "delivery", "qnext", "qhead", "qtail",
    "bpkt", "bfi", "brdy", "bhead", "bcnt", "ist", "iout", "iovc", "ifrom", "obusy", "ofree", "ocred",
    "cq_vc", "cq_due", "cq_head", "cq_cnt", "occ", "va_in", "va_out", "sa_in", "sa_out", "inj_ptr", "sflit",
    "svc", "eject", "link_flits", "dl_list", "r_idx", "r_o", "r_w", "r_ok", "r_p", "r_v", "best_b", "best_k",
    "last_v", "cap_in", "act", "act_on", "srcs", "src_on"])
RouterState.__doc__ = ("The router kernel's state: ``prm`` = :meth:`RouterParams.kernel_args`; ``sc`` = (packets "
                       "added, packets not yet delivered, flits in the input buffers, deliveries of the last "
                       "cycle, active routers, active sources); per packet creation, destination, length, head injection, delivery and the next "
                       "packet of its source queue; the buffers, VCs, credits and allocator pointers; "
                       "``link_flits[n * 4 + port]`` = flits that left router ``n`` through mesh port ``port``; "
                       "``dl_list`` = packets delivered (tail switched) in the last cycle; ``act`` / ``srcs`` "
                       "list the routers holding flits and the sources with queued packets (``sc[4]``, "
                       "``sc[5]`` long; ``act_on`` / ``src_on`` flag them), the only ones a cycle visits.")
NO_CYCLE = 1 << 62  # router_next's answer when no packet is waiting


@njit(cache=True)
def router_state(prm, cap_packets, eject_len):
    """A fresh :class:`RouterState` for up to ``cap_packets`` packets; ``eject[t]`` counts
    the flits ejected at cycle ``t < eject_len`` (0: not recorded)."""
    W, H, V, B = prm[0], prm[1], prm[2], prm[3]
    N = W * H
    P = 5
    PV = P * V
    cap = max(cap_packets, 1)
    cap_c = N * (P + 1) * V * B + 1  # credits in flight never exceed the buffer slots
    cap_in = np.ones(P, np.int64)
    cap_in[_LOCAL] = prm[12]
    return RouterState(
        prm.copy(), np.zeros(6, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64),
        np.full(cap, -1, np.int64), np.full(cap, -1, np.int64), np.full(cap, -1, np.int64),
        np.full(N, -1, np.int64), np.full(N, -1, np.int64),
        np.zeros((N, P, V, B), np.int64), np.zeros((N, P, V, B), np.int64), np.zeros((N, P, V, B), np.int64),
        np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int8),
        np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int64),
        np.zeros((N, P + 1, V), np.bool_), np.zeros((N, P + 1, V), np.int64), np.full((N, P + 1, V), B, np.int64),
        np.zeros((2, cap_c), np.int64), np.zeros((2, cap_c), np.int64), np.zeros(2, np.int64), np.zeros(2, np.int64),
        np.zeros(N, np.int64), np.zeros((N, P, V), np.int64), np.zeros((N, P, V), np.int64),
        np.zeros((N, P), np.int64), np.zeros((N, P), np.int64), np.zeros(N, np.int64), np.zeros(N, np.int64),
        np.full(N, -1, np.int64), np.zeros(max(eject_len, 0), np.int64), np.zeros(N * 4, np.int64),
        np.zeros(cap, np.int64), np.zeros(PV, np.int64), np.zeros(PV, np.int64), np.zeros(PV, np.int64),
        np.zeros(PV, np.bool_), np.zeros(PV, np.int64), np.zeros(PV, np.int64), np.zeros(P, np.int64),
        np.zeros(P, np.int64), np.zeros(P, np.int64), cap_in, np.zeros(N, np.int64), np.zeros(N, np.bool_),
        np.zeros(N, np.int64), np.zeros(N, np.bool_))


@njit(cache=True, inline="always")
def router_add(st, created, src, dst, flits):
    """Add a packet (ids count from 0 in the order added) to ``src``'s queue, after every
    queued packet created no later (so the queue stays in (created, id) order); returns
    its id. ``created`` must not precede the next cycle to simulate (the caller's rule)."""
    k = st.sc[0]
    st.sc[0] += 1
    st.sc[1] += 1
    st.created[k] = created
    st.dst[k] = dst
    st.flits[k] = flits
    if not st.src_on[src]:
        st.src_on[src] = True
        st.srcs[st.sc[5]] = src
        st.sc[5] += 1
    tl = st.qtail[src]
    if tl < 0:
        st.qhead[src] = k
        st.qtail[src] = k
    elif st.created[tl] <= created:
        st.qnext[tl] = k
        st.qtail[src] = k
    else:
        prev = -1
        cur = st.qhead[src]
        while cur >= 0 and st.created[cur] <= created:
            prev = cur
            cur = st.qnext[cur]
        st.qnext[k] = cur
        if prev < 0:
            st.qhead[src] = k
        else:
            st.qnext[prev] = k
    return k


@njit(cache=True, inline="always")
def router_next(st, t):
    """The next cycle worth simulating from ``t``: ``t`` while flits or credits are in
    flight or a packet is half written, else the first queued creation cycle (at least
    ``t``; :data:`NO_CYCLE` when nothing is queued). Skipping to it changes no cycle of
    the schedule: an empty network does nothing until the next packet is created."""
    if st.sc[2] != 0 or st.cq_cnt[0] != 0 or st.cq_cnt[1] != 0:
        return t
    nxt = NO_CYCLE
    for i in range(st.sc[5]):
        n = st.srcs[i]
        if st.sflit[n] > 0:
            return t
        h = st.qhead[n]
        if h >= 0 and st.created[h] < nxt:
            nxt = st.created[h]
    return max(t, nxt)


@njit(cache=True, inline="always")
def _route(n, d, W):
    """XY output port at router ``n`` for destination ``d``."""
    x, y = n % W, n // W
    dx, dy = d % W, d // W
    if dx > x:
        return 0
    if dx < x:
        return 1
    if dy > y:
        return 2
    if dy < y:
        return 3
    return 4


@njit(cache=True, inline="always")
def _neighbour(n, port, W):
    """The router output ``port`` of router ``n`` leads to."""
    if port == 0:
        return n + 1
    if port == 1:
        return n - 1
    if port == 2:
        return n + W
    return n - W


@njit(cache=True, inline="always")
def _push(st, n, p, v, pkt, fi, ready, W, B, Dr):
    """Append a flit to input VC (n, p, v); a head reaching an idle VC starts waiting for VC allocation."""
    slot = (st.bhead[n, p, v] + st.bcnt[n, p, v]) % B
    st.bpkt[n, p, v, slot] = pkt
    st.bfi[n, p, v, slot] = fi
    st.brdy[n, p, v, slot] = ready
    st.bcnt[n, p, v] += 1
    if not st.act_on[n]:
        st.act_on[n] = True
        st.act[st.sc[4]] = n
        st.sc[4] += 1
    st.occ[n] += 1
    st.sc[2] += 1
    if st.ist[n, p, v] == 0:
        st.ist[n, p, v] = 1
        st.iout[n, p, v] = _route(n, st.dst[pkt], W)
        st.ifrom[n, p, v] = ready + Dr


@njit(cache=True, inline="always")
def _inject(st, t):
    """Step 2 of a cycle: every source writes up to ``I`` flits of its queue's front packets."""
    created, flits, head_inj, inj_ptr, obusy, ocred = st.created, st.flits, st.head_inj, st.inj_ptr, st.obusy, st.ocred
    ofree, qhead, qnext, qtail, sc, sflit = st.ofree, st.qhead, st.qnext, st.qtail, st.sc, st.sflit
    srcs, svc = st.srcs, st.svc
    W, V, B, Dr, Dinj, I = st.prm[0], st.prm[2], st.prm[3], st.prm[4], st.prm[10], st.prm[12]
    P = 5
    for i in range(sc[5]):
        n = srcs[i]
        k = 0
        while k < I and qhead[n] >= 0:
            pk = qhead[n]
            if created[pk] > t:
                break
            if svc[n] < 0:
                pick = -1
                for j in range(V):
                    w = (inj_ptr[n] + j) % V
                    if (not obusy[n, P, w]) and ofree[n, P, w] <= t and ocred[n, P, w] > 0:
                        pick = w
                        break
                if pick < 0:
                    break
                svc[n] = pick
                obusy[n, P, pick] = True
                inj_ptr[n] = (pick + 1) % V
            w = svc[n]
            if ocred[n, P, w] == 0:
                break
            ocred[n, P, w] -= 1
            if sflit[n] == 0:
                head_inj[pk] = t
            _push(st, n, _LOCAL, w, pk, sflit[n], t + Dinj, W, B, Dr)
            sflit[n] += 1
            k += 1
            if sflit[n] == flits[pk]:
                obusy[n, P, w] = False
                ofree[n, P, w] = t + 1
                svc[n] = -1
                sflit[n] = 0
                qhead[n] = qnext[pk]
                if qhead[n] < 0:
                    qtail[n] = -1


@njit(cache=True, inline="always")
def _vc_alloc_all(st, m, t):
    """Step 3 at the routers ``act[:m]``: separable input-first VC allocation."""
    ifrom, iout, iovc, ist, obusy, ofree = st.ifrom, st.iout, st.iovc, st.ist, st.obusy, st.ofree
    r_idx, r_o, r_ok, r_p, r_v, r_w = st.r_idx, st.r_o, st.r_ok, st.r_p, st.r_v, st.r_w
    va_in, va_out = st.va_in, st.va_out
    V = st.prm[2]
    Dva = st.prm[5]
    PV = 5 * V
    act = st.act
    for i_act in range(m):
        n = act[i_act]
        nr = 0
        for p in range(5):
            for v in range(V):
                if ist[n, p, v] == 1 and ifrom[n, p, v] <= t:
                    o = iout[n, p, v]
                    w = va_in[n, p, v]
                    for j in range(V):
                        if (not obusy[n, o, w]) and ofree[n, o, w] <= t:
                            r_idx[nr] = p * V + v
                            r_p[nr] = p
                            r_v[nr] = v
                            r_o[nr] = o
                            r_w[nr] = w
                            nr += 1
                            break
                        w = w + 1 if w + 1 < V else 0
        for a in range(nr):
            o, w = r_o[a], r_w[a]
            best = -1
            bestkey = PV
            for b in range(nr):
                if r_o[b] == o and r_w[b] == w:
                    key = r_idx[b] - va_out[n, o, w]
                    if key < 0:
                        key += PV
                    if key < bestkey:
                        bestkey = key
                        best = b
            r_ok[a] = best == a
        for a in range(nr):
            if r_ok[a]:
                o, w, idx, p, v = r_o[a], r_w[a], r_idx[a], r_p[a], r_v[a]
                obusy[n, o, w] = True
                ist[n, p, v] = 2
                iovc[n, p, v] = w
                ifrom[n, p, v] = t + Dva
                va_out[n, o, w] = idx + 1 if idx + 1 < PV else 0
                va_in[n, p, v] = w + 1 if w + 1 < V else 0


@njit(cache=True, inline="always")
def _switch_all(st, m, t):
    """Step 4 at the routers ``act[:m]``: separable input-first switch allocation, then traversal."""
    bcnt, best_b, best_k, bfi, bhead, bpkt = st.bcnt, st.best_b, st.best_k, st.bfi, st.bhead, st.bpkt
    brdy, cap_in, cq_cnt, cq_due, cq_head, cq_vc = st.brdy, st.cap_in, st.cq_cnt, st.cq_due, st.cq_head, st.cq_vc
    delivery, dl_list, dst, eject, flits, ifrom = st.delivery, st.dl_list, st.dst, st.eject, st.flits, st.ifrom
    iout, iovc, ist, last_v, link_flits, obusy = st.iout, st.iovc, st.ist, st.last_v, st.link_flits, st.obusy
    occ, ocred, ofree, r_idx, r_o, r_ok = st.occ, st.ocred, st.ofree, st.r_idx, st.r_o, st.r_ok
    r_p, r_v, sa_in, sa_out, sc = st.r_p, st.r_v, st.sa_in, st.sa_out, st.sc
    W, V, B, Dr, Dsa, Dst, Dl, Dc, Dinj, Dej, E = (st.prm[0], st.prm[2], st.prm[3], st.prm[4], st.prm[6],
                                                   st.prm[7], st.prm[8], st.prm[9], st.prm[10], st.prm[11],
                                                   st.prm[13])
    P = 5
    PV = P * V
    act = st.act
    for i_act in range(m):
        n = act[i_act]
        nr = 0
        for p in range(P):
            got = 0
            v = sa_in[n, p]
            for j in range(V):
                if ist[n, p, v] == 2 and ifrom[n, p, v] <= t and bcnt[n, p, v] > 0 \
                        and brdy[n, p, v, bhead[n, p, v]] <= t:
                    o = iout[n, p, v]
                    if o == _LOCAL or ocred[n, o, iovc[n, p, v]] > 0:
                        r_idx[nr] = p * V + v
                        r_p[nr] = p
                        r_v[nr] = v
                        r_o[nr] = o
                        r_ok[nr] = False
                        nr += 1
                        got += 1
                        if got == cap_in[p]:
                            break
                v = v + 1 if v + 1 < V else 0
        if nr == 0:
            continue
        # output arbiters: the first request in round-robin order from the pointer, per
        # output; the ejection port repeats for up to E grants
        rounds = 1
        while True:
            for o in range(P):
                best_b[o] = -1
                best_k[o] = PV
            for b in range(nr):
                if r_ok[b]:
                    continue
                o = r_o[b]
                if rounds > 1 and o != _LOCAL:
                    continue
                key = r_idx[b] - sa_out[n, o]
                if key < 0:
                    key += PV
                if key < best_k[o]:
                    best_k[o] = key
                    best_b[o] = b
            granted_local = False
            for o in range(P):
                b = best_b[o]
                if b >= 0:
                    r_ok[b] = True
                    sa_out[n, o] = r_idx[b] + 1 if r_idx[b] + 1 < PV else 0
                    if o == _LOCAL:
                        granted_local = True
            if rounds >= E or not granted_local:
                break
            rounds += 1
        # input pointers: one past the last granted VC in the port's round-robin order
        # (requests were collected in that order)
        for p in range(P):
            last_v[p] = -1
        for b in range(nr):
            if r_ok[b]:
                last_v[r_p[b]] = r_v[b]
        for p in range(P):
            if last_v[p] >= 0:
                sa_in[n, p] = last_v[p] + 1 if last_v[p] + 1 < V else 0
        cap_c = cq_vc.shape[1]
        for b in range(nr):
            if not r_ok[b]:
                continue
            p, v = r_p[b], r_v[b]
            o = r_o[b]
            w = iovc[n, p, v]
            h = bhead[n, p, v]
            pk = bpkt[n, p, v, h]
            fi = bfi[n, p, v, h]
            bhead[n, p, v] = h + 1 if h + 1 < B else 0
            bcnt[n, p, v] -= 1
            # the credit goes back to whoever feeds this input VC
            if p == _LOCAL:
                un, uo, due = n, P, t + Dc + Dinj
            else:
                un, uo, due = _neighbour(n, p ^ 1, W), p, t + Dc + Dl
            q = 1 if p == _LOCAL else 0
            tail_slot = (cq_head[q] + cq_cnt[q]) % cap_c
            cq_vc[q, tail_slot] = (un * (P + 1) + uo) * V + v
            cq_due[q, tail_slot] = due
            cq_cnt[q] += 1
            occ[n] -= 1
            sc[2] -= 1
            tail = fi == flits[pk] - 1
            if o == _LOCAL:
                te = t + Dsa + Dst + Dej
                if te < eject.shape[0]:
                    eject[te] += 1
                if tail:
                    delivery[pk] = te
                    sc[1] -= 1
                    dl_list[sc[3]] = pk
                    sc[3] += 1
            else:
                ocred[n, o, w] -= 1
                link_flits[n * 4 + o] += 1
                _push(st, _neighbour(n, o, W), o, w, pk, fi, t + Dsa + Dst + Dl, W, B, Dr)
            if tail:
                obusy[n, o, w] = False
                ofree[n, o, w] = t + 1
                ist[n, p, v] = 0
                if bcnt[n, p, v] > 0:
                    nh = bhead[n, p, v]
                    ist[n, p, v] = 1
                    iout[n, p, v] = _route(n, dst[bpkt[n, p, v, nh]], W)
                    ifrom[n, p, v] = max(brdy[n, p, v, nh], t + 1) + Dr


@njit(cache=True, inline="always")
def router_cycle(st, t):
    """Simulate cycle ``t`` (the module docstring's cycle order: credits due, injection,
    VC allocation, switch allocation and traversal); returns the packets whose tail was
    switched to the ejection port in it (``st.dl_list[:n]``, their ``delivery`` set)."""
    st.sc[3] = 0
    ocred_flat = st.ocred.reshape(st.ocred.size)
    cap_c = st.cq_vc.shape[1]
    for q in range(2):
        while st.cq_cnt[q] > 0 and st.cq_due[q, st.cq_head[q]] <= t:
            ocred_flat[st.cq_vc[q, st.cq_head[q]]] += 1
            st.cq_head[q] = st.cq_head[q] + 1 if st.cq_head[q] + 1 < cap_c else 0
            st.cq_cnt[q] -= 1
    _inject(st, t)
    # only routers holding flits act (an empty one has nothing to allocate); routers are
    # order free within a stage, so the list's order is as good as the mesh's
    m = st.sc[4]
    _vc_alloc_all(st, m, t)
    _switch_all(st, m, t)
    j = 0
    for i in range(st.sc[4]):
        n = st.act[i]
        if st.occ[n] != 0:
            st.act[j] = n
            j += 1
        else:
            st.act_on[n] = False
    st.sc[4] = j
    j = 0
    for i in range(st.sc[5]):
        n = st.srcs[i]
        if st.qhead[n] >= 0:
            st.srcs[j] = n
            j += 1
        else:
            st.src_on[n] = False
    st.sc[5] = j
    return st.sc[3]


@njit(cache=True)
def _run(prm, created, dst, flits, indptr, order, max_cycles, stop_when_done):
    """Batch run of :func:`simulate_router`: every packet queued up front (source queues
    ``indptr`` / ``order`` in (created, id) order), then cycle by cycle."""
    st = router_state(prm, created.shape[0], max_cycles + prm[6] + prm[7] + prm[11] + 1)
    n_pk = created.shape[0]
    st.created[:n_pk] = created
    st.dst[:n_pk] = dst
    st.flits[:n_pk] = flits
    st.sc[0] = n_pk
    st.sc[1] = n_pk
    for n in range(indptr.shape[0] - 1):
        prev = -1
        for i in range(indptr[n], indptr[n + 1]):
            k = order[i]
            if prev < 0:
                st.qhead[n] = k
            else:
                st.qnext[prev] = k
            prev = k
        st.qtail[n] = prev
        if prev >= 0:
            st.src_on[n] = True
            st.srcs[st.sc[5]] = n
            st.sc[5] += 1
    t = 0
    while t < max_cycles:
        if stop_when_done and st.sc[1] == 0:
            break
        nxt = router_next(st, t)
        if nxt > t:
            t = min(nxt, max_cycles)
            continue
        router_cycle(st, t)
        t += 1
    return st.head_inj[:n_pk].copy(), st.delivery[:n_pk].copy(), st.eject, t
