"""The slow, plainly correct twin of :mod:`hwsim.noc`: the same NoC model as a SimPy
discrete-event simulation (one process per packet branch, one arbiter per link).

It follows the packet model of ``hwsim/noc.py``'s docstring and must give the same
delivery cycle for every (packet, destination); tests compare the two.

Same-cycle events: SimPy runs simultaneous events in scheduling order, which must not
decide who wins a link. So each link's arbiter grants only in an *arbitration phase*
scheduled at a priority below SimPy's NORMAL: at cycle ``t`` it runs after every
normal event of cycle ``t``, i.e. after every request that becomes ready at ``t``
has been posted, and grants the waiting request with the smallest
``(ready cycle, packet id)``. A granted packet's next request is at least
``router_cycles >= 1`` later, so no request of cycle ``t`` can appear after that.
"""

from __future__ import annotations

import numpy as np
import simpy
from simpy.events import Event

from .noc import NocResult, Packets, validate_packets

__all__ = ["simulate_noc_ref"]

_ARBITRATION = 2  # SimPy: URGENT = 0, NORMAL = 1; larger runs later in the same cycle
_STEP = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}  # port -> (dx, dy): E, W, N, S


class _ArbitrationPhase(Event):
    """Fires at the current cycle after all NORMAL events of that cycle (SimPy's
    ``Timeout`` with zero delay and a lower priority)."""

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.callbacks = []
        self._value = None
        self._ok = True
        env.schedule(self, _ARBITRATION, 0)


def xy_path(src: tuple[int, int], dst: tuple[int, int]) -> list[tuple[int, int, int]]:
    """Links ``(gx, gy, port)`` of the XY route from ``src`` to ``dst``, x first."""
    x, y = src
    path = []
    while x != dst[0]:
        port = 0 if dst[0] > x else 1
        path.append((x, y, port))
        x += _STEP[port][0]
    while y != dst[1]:
        port = 2 if dst[1] > y else 3
        path.append((x, y, port))
        y += _STEP[port][1]
    return path


class _Link:
    """A FIFO server granting one packet at a time, in (ready, id) order."""

    def __init__(self, env: simpy.Environment, key):
        self.env = env
        self.key = key
        self.waiting: list[tuple[int, int, int, Event]] = []  # (ready, id, flits, grant)
        self.wake: Event | None = None
        self.flits = 0
        env.process(self._arbiter())

    def request(self, ready: int, pid: int, flits: int) -> Event:
        grant = self.env.event()
        self.waiting.append((ready, pid, flits, grant))
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()
        return grant

    def _arbiter(self):
        while True:
            while not self.waiting:
                self.wake = self.env.event()
                yield self.wake
            yield _ArbitrationPhase(self.env)
            best = min(self.waiting, key=lambda w: (w[0], w[1]))
            self.waiting.remove(best)
            _ready, _pid, flits, grant = best
            self.flits += flits
            grant.succeed(self.env.now)  # value: the cycle the head starts crossing
            yield self.env.timeout(flits)  # the link carries one flit per cycle


def simulate_noc_ref(packets: Packets, grid_w: int, grid_h: int, router_cycles: int, link_cycles: int,
                     *, multicast: str = "xy-tree") -> NocResult:
    """Same contract as :func:`hwsim.noc.simulate_noc`, simulated with SimPy."""
    validate_packets(packets, grid_w, grid_h, router_cycles, link_cycles, multicast)
    R, W = int(router_cycles), int(link_cycles)
    env = simpy.Environment()
    links: dict[tuple[int, int, int], _Link] = {}
    delivery = np.full(packets.n_destinations, -1, dtype=np.int64)

    def link(key) -> _Link:
        if key not in links:
            links[key] = _Link(env, key)
        return links[key]

    def branch(edge, ready: int, pid: int, flits: int, children, ends):
        """Cross link ``edge`` (ready at ``ready``), then fork into its child links."""
        yield env.timeout(ready - env.now)
        start = yield link(edge).request(ready, pid, flits)
        for k in ends.get(edge, ()):
            delivery[k] = start + W + flits - 1
        for child in children.get(edge, ()):
            env.process(branch(child, start + W + R, pid, flits, children, ends))

    def launch(pid: int, t0: int, src, dst_ks: list[int], flits: int):
        """Start one packet (or one unicast copy) with id ``pid`` at cycle ``t0``."""
        children: dict = {}   # edge -> child edges (a tree: xy paths from one source)
        ends: dict = {}       # edge -> destination indices reached at its far end
        roots: list = []
        for k in dst_ks:
            path = xy_path(src, tuple(int(v) for v in packets.dst_xy[k]))
            if not path:
                delivery[k] = t0 + flits - 1
                continue
            parent = None
            for edge in path:
                sibs = roots if parent is None else children.setdefault(parent, [])
                if edge not in sibs:
                    sibs.append(edge)
                parent = edge
            ends.setdefault(path[-1], []).append(k)
        for edge in roots:
            env.process(branch(edge, t0 + R, pid, flits, children, ends))

    ptr = packets.dst_indptr
    for p in range(packets.n_packets):
        t0 = int(packets.inject_cycle[p])
        src = (int(packets.src_xy[p, 0]), int(packets.src_xy[p, 1]))
        flits = int(packets.flits[p])
        ks = list(range(int(ptr[p]), int(ptr[p + 1])))
        if multicast == "xy-tree":
            launch(p, t0, src, ks, flits)
        else:  # one copy per destination; copy k acts as packet k (the flat index)
            for k in ks:
                launch(k, t0, src, [k], flits)
    env.run()
    link_flits = np.zeros((int(grid_w), int(grid_h), 4), dtype=np.int64)
    for (x, y, port), ln in links.items():
        link_flits[x, y, port] = ln.flits
    return NocResult(packets, delivery, link_flits, int(grid_w), int(grid_h), R, W, multicast)
