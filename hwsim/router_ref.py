"""The plain-Python twin of the router model: the spec of ``hwsim/router.py``, written as
objects (routers, input VCs, output VCs, a source per node), slow and plainly correct.

Same contract as :func:`hwsim.router.simulate_router`; ``tests/hwsim/test_router_twin.py``
holds the two equal cycle for cycle (every packet's injection cycle, every target's
delivery cycle and every cycle's ejected flits). The semantics, multicast forking
included, are the docstring of ``hwsim/router.py``.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque

import numpy as np

from .router import IO_PORT, NO_CYCLE, RouterParams, RouterRun, check_links, check_packets, check_router_params

__all__ = ["simulate_router_ref", "RouterSim"]

LOCAL = 4
STEP = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}  # port -> (dx, dy)
OPPOSITE = {0: 1, 1: 0, 2: 3, 3: 2}


class InputVC:
    def __init__(self):
        self.flits: deque = deque()  # (packet, flit index, usable-from cycle)
        self.state = "idle"          # idle | wait_va | active
        self.out_ports = []          # output ports of the packet at the front (its fork here)
        self.out_vcs = {}            # output port -> output VC, once allocated
        self.sent = set()            # output ports the front flit has been copied to
        self.from_cycle = 0          # VA allowed from (wait_va) / switch allowed from (active)


class OutputVC:
    def __init__(self, credits: int):
        self.busy = False
        self.free_from = 0
        self.credits = credits
        self.returns: deque = deque()  # cycles at which a credit comes back

    def free_at(self, t: int) -> bool:
        return not self.busy and self.free_from <= t


class Router:
    def __init__(self, x: int, y: int, V: int, B: int):
        self.x, self.y = x, y
        self.inputs = [[InputVC() for _ in range(V)] for _ in range(5)]
        self.outputs = [[OutputVC(B) for _ in range(V)] for _ in range(5)]
        self.va_in = [[0] * V for _ in range(5)]   # per input VC: next output VC to try
        self.va_out = [[0] * V for _ in range(5)]  # per output VC: next input VC index to favour
        self.sa_in = [0] * 5                        # per input port: next VC to favour
        self.sa_out = [0] * 5                       # per output port: next input VC index to favour
        self.occ = 0                                # flits in its input buffers (an empty router does nothing)


class Mesh:
    def __init__(self, p: RouterParams, sim):
        self.p = p
        self.sim = sim
        self.routers = {(x, y): Router(x, y, p.vcs, p.buffer_flits) for y in range(p.height) for x in range(p.width)}

    def xy_port(self, r: Router, d: int) -> int:
        dx, dy = d % self.p.width, d // self.p.width
        if dx != r.x:
            return 0 if dx > r.x else 1
        if dy != r.y:
            return 2 if dy > r.y else 3
        return LOCAL

    def route(self, r: Router, pkt: int) -> list:
        """The packet's output ports at ``r``: XY first hops of the targets whose XY path from the source passes ``r``."""
        sim = self.sim
        sx, sy = sim.src[pkt] % self.p.width, sim.src[pkt] // self.p.width
        if sim.src[pkt] == sim.io:  # the I/O port, west of node 0
            sx, sy = -1, 0
        ports = set()
        for d in sim.targets_of(pkt):
            dx, dy = d % self.p.width, d // self.p.width
            if (r.y == sy and min(sx, dx) <= r.x <= max(sx, dx)) or (r.x == dx and min(sy, dy) <= r.y <= max(sy, dy)):
                ports.add(self.xy_port(r, d))
        return sorted(ports)

    def arrive(self, r: Router, port: int, vc: int, pkt: int, fi: int, ready: int):
        ivc = r.inputs[port][vc]
        ivc.flits.append((pkt, fi, ready))
        r.occ += 1
        if ivc.state == "idle":
            self.head(ivc, r, pkt, ready)

    def head(self, ivc: InputVC, r: Router, pkt: int, ready: int):
        ivc.state = "wait_va"
        ivc.out_ports = self.route(r, pkt)
        ivc.out_vcs = {}
        ivc.sent = set()
        ivc.from_cycle = ready + self.p.routing_cycles


class RouterSim:
    """The mesh with its sources, driven from outside: :meth:`add` a packet (created no
    earlier than the next cycle to simulate), :meth:`cycle` one cycle, :meth:`next_cycle`
    skips idle ones. Same contract as the kernel's ``router_add`` / ``router_cycle`` /
    ``router_next`` (:mod:`hwsim.router`); packet ids count from 0 in the order added."""

    def __init__(self, params: RouterParams, eject_len: int = 0, links=None):
        p = check_router_params(params)
        self.p = p
        self.n_nodes = p.width * p.height
        self.io = self.n_nodes  # source index of the I/O port (its packets' src is IO_PORT)
        self.lk_lat, self.lk_ser = check_links(p, links)
        self.lk_free = [0] * (self.n_nodes * 4 + 1)
        self.created, self.src, self.flits, self.tptr = [], [], [], []
        self.tdst, self.delivery = [], []  # per target
        self.head_inj = []
        self.mesh = Mesh(p, self)
        S = self.n_nodes + 1
        self.queues = [[] for _ in range(S)]  # (created, id), kept sorted
        self.inj_vcs = [[OutputVC(p.buffer_flits) for _ in range(p.vcs)] for _ in range(S)]
        self.inj_next = [0] * S
        self.inj_cur = [None] * S  # (vc, flits written) of the packet being written
        self.eject = np.zeros(eject_len, dtype=np.int64)
        self.link_flits = np.zeros(self.n_nodes * 4, dtype=np.int64)
        self.credits = []  # heap of (due cycle, order, output VC)
        self.in_net = 0
        self.remaining = 0

    def add(self, created: int, src: int, dst: int, flits: int) -> int:
        """A unicast packet; returns its id (its one target is the next target id)."""
        return self.add_multicast(created, src, [dst], flits)

    def add_multicast(self, created: int, src: int, dsts, flits: int) -> int:
        """A packet to the distinct nodes ``dsts`` (one target each, ids in that order); returns its id."""
        k = len(self.created)
        self.created.append(int(created))
        src = self.io if int(src) == IO_PORT else int(src)
        self.src.append(src)
        self.flits.append(int(flits))
        self.tptr.append(len(self.tdst))
        self.head_inj.append(-1)
        for d in dsts:
            self.tdst.append(int(d))
            self.delivery.append(-1)
            self.remaining += 1
        bisect.insort(self.queues[int(src)], (int(created), k))
        return k

    def targets_of(self, pkt: int) -> list:
        end = self.tptr[pkt + 1] if pkt + 1 < len(self.tptr) else len(self.tdst)
        return self.tdst[self.tptr[pkt]:end]

    def target_at(self, pkt: int, node: int) -> int:
        return self.tptr[pkt] + self.targets_of(pkt).index(node)

    def next_cycle(self, t: int) -> int:
        """``t`` while anything is in flight or half written, else the first queued creation (>= t)."""
        if self.in_net or self.credits or any(c is not None for c in self.inj_cur):
            return t
        heads = [q[0][0] for q in self.queues if q]
        return max(t, min(heads)) if heads else NO_CYCLE

    def _credit_back(self, due: int, ovc: OutputVC):
        heapq.heappush(self.credits, (due, next(self._seq), ovc))

    _seq = itertools.count()

    def cycle(self, t: int) -> list:
        """Simulate cycle ``t``; returns the targets delivered (the tail of their packet's copy ejected) in it."""
        p, mesh, V, W = self.p, self.mesh, self.p.vcs, self.p.width
        done_now = []
        # credits due
        while self.credits and self.credits[0][0] <= t:
            heapq.heappop(self.credits)[2].credits += 1
        # sources
        io = self.n_nodes * 4
        for n in range(self.n_nodes + 1):
            router = mesh.routers[(n % W, n // W)] if n < self.n_nodes else mesh.routers[(0, 0)]
            queue, vcs = self.queues[n], self.inj_vcs[n]
            for _ in range(p.inject_flits_per_cycle):
                if not queue or queue[0][0] > t:
                    break
                if n == self.io and self.lk_free[io] > t:
                    break
                pkt = queue[0][1]
                if self.inj_cur[n] is None:
                    free = [(self.inj_next[n] + j) % V for j in range(V)]
                    free = [w for w in free if vcs[w].free_at(t) and vcs[w].credits > 0]
                    if not free:
                        break
                    w = free[0]
                    vcs[w].busy = True
                    self.inj_next[n] = (w + 1) % V
                    self.inj_cur[n] = (w, 0)
                w, done = self.inj_cur[n]
                if vcs[w].credits == 0:
                    break
                vcs[w].credits -= 1
                if done == 0:
                    self.head_inj[pkt] = t
                if n == self.io:  # over the I/O link into node 0's input port E
                    mesh.arrive(router, 0, w, pkt, done, t + int(self.lk_lat[io] + self.lk_ser[io]) - 1)
                    self.lk_free[io] = t + int(self.lk_ser[io])
                else:
                    mesh.arrive(router, LOCAL, w, pkt, done, t + p.inject_cycles)
                self.in_net += 1
                done += 1
                self.inj_cur[n] = (w, done)
                if done == self.flits[pkt]:
                    vcs[w].busy = False
                    vcs[w].free_from = t + 1
                    self.inj_cur[n] = None
                    queue.pop(0)
        busy = [r for r in mesh.routers.values() if r.occ]
        # VC allocation: every waiting input VC picks, in port order, one free output VC per
        # output port of its fork it does not hold yet; every output VC grants one; an input
        # VC keeps its grants up to its first loss and is active once it holds them all
        for r in busy:
            picks = {}  # (out port, out vc) -> [input index]
            mine = {}   # input index -> [(out port, out vc)]
            for port in range(5):
                for v, ivc in enumerate(r.inputs[port]):
                    if ivc.state != "wait_va" or ivc.from_cycle > t:
                        continue
                    pkt = ivc.flits[0][0]
                    need = self.flits[pkt] if len(self.targets_of(pkt)) > 1 else 0
                    got = []
                    for o in ivc.out_ports:
                        if o in ivc.out_vcs:
                            continue
                        ws = [(r.va_in[port][v] + j) % V for j in range(V)]
                        ws = [w for w in ws if r.outputs[o][w].free_at(t) and
                              (o == LOCAL or r.outputs[o][w].credits >= need)]
                        if not ws:
                            break
                        got.append((o, ws[0]))
                    mine[port * V + v] = got
                    for ow in got:
                        picks.setdefault(ow, []).append(port * V + v)
            winner = {ow: min(reqs, key=lambda i: (i - r.va_out[ow[0]][ow[1]]) % (5 * V)) for ow, reqs in picks.items()}
            for idx, got in mine.items():
                port, v = divmod(idx, V)
                ivc = r.inputs[port][v]
                for o, w in got:  # in port order, up to the first loss
                    if winner[(o, w)] != idx:
                        break
                    r.outputs[o][w].busy = True
                    ivc.out_vcs[o] = w
                    r.va_out[o][w] = (idx + 1) % (5 * V)
                    r.va_in[port][v] = (w + 1) % V
                if len(ivc.out_vcs) == len(ivc.out_ports):
                    ivc.state, ivc.from_cycle = "active", t + p.vc_alloc_cycles
        # switch allocation, then traversal (a flit leaves once copied to every output)
        for r in busy:
            picked = []  # (input index, out port)
            for port in range(5):
                cap = p.inject_flits_per_cycle if port == LOCAL else 1
                n_vcs = 0
                for j in range(V):
                    if n_vcs == cap:
                        break
                    v = (r.sa_in[port] + j) % V
                    ivc = r.inputs[port][v]
                    if not (ivc.state == "active" and ivc.from_cycle <= t and ivc.flits and ivc.flits[0][2] <= t):
                        continue
                    node = r.y * W + r.x
                    outs = [o for o in ivc.out_ports if o not in ivc.sent and
                            (o == LOCAL or (r.outputs[o][ivc.out_vcs[o]].credits > 0
                                            and self.lk_free[node * 4 + o] <= t))]
                    picked += [(port * V + v, o) for o in outs]
                    n_vcs += bool(outs)
            granted = []
            for o in range(5):
                cands = sorted((i for i, oo in picked if oo == o), key=lambda i: (i - r.sa_out[o]) % (5 * V))
                win = cands[:p.eject_flits_per_cycle if o == LOCAL else 1]
                if win:
                    r.sa_out[o] = (win[-1] + 1) % (5 * V)
                granted += [(i, o) for i in win]
            for port in range(5):
                mine_v = [i % V for i, _ in granted if i // V == port]
                if mine_v:
                    r.sa_in[port] = (max(mine_v, key=lambda v: (v - r.sa_in[port]) % V) + 1) % V
            node = r.y * W + r.x
            for i, o in granted:
                port, v = divmod(i, V)
                ivc = r.inputs[port][v]
                w = ivc.out_vcs[o]
                pkt, fi, _ready = ivc.flits[0]
                tail = fi == self.flits[pkt] - 1
                if o == LOCAL:
                    te = t + p.sw_alloc_cycles + p.switch_cycles + p.eject_cycles
                    if te < self.eject.size:
                        self.eject[te] += 1
                    if tail:
                        g = self.target_at(pkt, node)
                        self.delivery[g] = te
                        self.remaining -= 1
                        done_now.append(g)
                else:
                    li = node * 4 + o
                    r.outputs[o][w].credits -= 1
                    self.link_flits[li] += 1
                    self.lk_free[li] = t + int(self.lk_ser[li])
                    dx, dy = STEP[o]
                    mesh.arrive(mesh.routers[(r.x + dx, r.y + dy)], o, w, pkt, fi,
                                t + p.sw_alloc_cycles + p.switch_cycles + int(self.lk_lat[li] + self.lk_ser[li]) - 1)
                    self.in_net += 1
                if tail:
                    r.outputs[o][w].busy = False
                    r.outputs[o][w].free_from = t + 1
                ivc.sent.add(o)
                if len(ivc.sent) < len(ivc.out_ports):
                    continue
                ivc.sent = set()
                ivc.flits.popleft()
                r.occ -= 1
                self.in_net -= 1
                if port == LOCAL:
                    self._credit_back(t + p.credit_cycles + p.inject_cycles, self.inj_vcs[node][v])
                elif port == 0 and r.x == 0:  # fed by the I/O port
                    self._credit_back(t + p.credit_cycles + int(self.lk_lat[io]), self.inj_vcs[self.io][v])
                else:
                    dx, dy = STEP[OPPOSITE[port]]
                    up = (r.y + dy) * W + r.x + dx
                    self._credit_back(t + p.credit_cycles + int(self.lk_lat[up * 4 + port]),
                                      mesh.routers[(r.x + dx, r.y + dy)].outputs[port][v])
                if tail:
                    ivc.state = "idle"
                    if ivc.flits:
                        nxt, _fi, ready = ivc.flits[0]
                        mesh.head(ivc, r, nxt, max(ready, t + 1))
        return done_now


def simulate_router_ref(params: RouterParams, created, src, dst, flits, *, max_cycles: int,
                        stop_when_done: bool = True, dst_ptr=None, links=None) -> RouterRun:
    """Same contract as :func:`hwsim.router.simulate_router`, one object per router and VC."""
    p = check_router_params(params)
    created, src, dst, flits, dst_ptr = check_packets(p, created, src, dst, flits, max_cycles, dst_ptr)
    sim = RouterSim(p, max_cycles + p.sw_alloc_cycles + p.switch_cycles + p.eject_cycles + 1, links)
    for k in range(created.size):
        sim.add_multicast(created[k], src[k], dst[dst_ptr[k]:dst_ptr[k + 1]], flits[k])
    t = 0
    while t < max_cycles:
        if stop_when_done and sim.remaining == 0:
            break
        sim.cycle(t)
        t += 1
    return RouterRun(created, np.array(sim.head_inj, dtype=np.int64).reshape(-1),
                     np.array(sim.delivery, dtype=np.int64).reshape(-1), sim.eject, t, dst_ptr)
