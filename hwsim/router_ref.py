"""The plain-Python twin of the router model: the spec of ``hwsim/router.py``, written as
objects (routers, input VCs, output VCs, a source per node), slow and plainly correct.

Same contract as :func:`hwsim.router.simulate_router`; ``tests/hwsim/test_router_twin.py``
holds the two equal cycle for cycle (every packet's injection and delivery cycle and
every cycle's ejected flits). The semantics are the docstring of ``hwsim/router.py``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .router import RouterParams, RouterRun, _check_packets, check_router_params, source_queues

__all__ = ["simulate_router_ref"]

LOCAL = 4
STEP = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}  # port -> (dx, dy)
OPPOSITE = {0: 1, 1: 0, 2: 3, 3: 2}


class InputVC:
    def __init__(self):
        self.flits: deque = deque()  # (packet, flit index, usable-from cycle)
        self.state = "idle"          # idle | wait_va | active
        self.out_port = -1
        self.out_vc = -1
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


class Mesh:
    def __init__(self, p: RouterParams, dst, flits):
        self.p = p
        self.dst, self.flits = dst, flits
        self.routers = {(x, y): Router(x, y, p.vcs, p.buffer_flits) for y in range(p.height) for x in range(p.width)}

    def route(self, r: Router, pkt: int) -> int:
        d = int(self.dst[pkt])
        dx, dy = d % self.p.width, d // self.p.width
        if dx != r.x:
            return 0 if dx > r.x else 1
        if dy != r.y:
            return 2 if dy > r.y else 3
        return LOCAL

    def arrive(self, r: Router, port: int, vc: int, pkt: int, fi: int, ready: int):
        ivc = r.inputs[port][vc]
        ivc.flits.append((pkt, fi, ready))
        if ivc.state == "idle":
            ivc.state = "wait_va"
            ivc.out_port = self.route(r, pkt)
            ivc.from_cycle = ready + self.p.routing_cycles


def simulate_router_ref(params: RouterParams, created, src, dst, flits, *, max_cycles: int,
                        stop_when_done: bool = True) -> RouterRun:
    """Same contract as :func:`hwsim.router.simulate_router`, one object per router and VC."""
    p = check_router_params(params)
    created, src, dst, flits = _check_packets(p, created, src, dst, flits, max_cycles)
    V, W = p.vcs, p.width
    n_nodes = p.width * p.height
    indptr, order = source_queues(created, src, n_nodes)
    mesh = Mesh(p, dst, flits)
    queues = [deque(int(k) for k in order[indptr[n]:indptr[n + 1]]) for n in range(n_nodes)]
    inj_vcs = [[OutputVC(p.buffer_flits) for _ in range(V)] for _ in range(n_nodes)]
    inj_next = [0] * n_nodes
    inj_cur = [None] * n_nodes  # (vc, flits written) of the packet being written
    head_inj = np.full(created.size, -1, dtype=np.int64)
    delivery = np.full(created.size, -1, dtype=np.int64)
    eject = np.zeros(max_cycles + p.sw_alloc_cycles + p.switch_cycles + p.eject_cycles + 1, dtype=np.int64)
    remaining = created.size
    t = 0
    while t < max_cycles:
        if stop_when_done and remaining == 0:
            break
        # credits due
        for ovc in [o for r in mesh.routers.values() for port in r.outputs for o in port] + \
                   [o for node in inj_vcs for o in node]:
            while ovc.returns and ovc.returns[0] <= t:
                ovc.returns.popleft()
                ovc.credits += 1
        # sources
        for n in range(n_nodes):
            router = mesh.routers[(n % W, n // W)]
            for _ in range(p.inject_flits_per_cycle):
                if not queues[n] or created[queues[n][0]] > t:
                    break
                pkt = queues[n][0]
                if inj_cur[n] is None:
                    free = [(inj_next[n] + j) % V for j in range(V)]
                    free = [w for w in free if inj_vcs[n][w].free_at(t) and inj_vcs[n][w].credits > 0]
                    if not free:
                        break
                    w = free[0]
                    inj_vcs[n][w].busy = True
                    inj_next[n] = (w + 1) % V
                    inj_cur[n] = (w, 0)
                w, done = inj_cur[n]
                if inj_vcs[n][w].credits == 0:
                    break
                inj_vcs[n][w].credits -= 1
                if done == 0:
                    head_inj[pkt] = t
                mesh.arrive(router, LOCAL, w, pkt, done, t + p.inject_cycles)
                done += 1
                inj_cur[n] = (w, done)
                if done == flits[pkt]:
                    inj_vcs[n][w].busy = False
                    inj_vcs[n][w].free_from = t + 1
                    inj_cur[n] = None
                    queues[n].popleft()
        # VC allocation: every waiting input VC picks one free output VC, every output VC grants one
        for r in mesh.routers.values():
            picks = {}  # (out port, out vc) -> [input index]
            for port in range(5):
                for v, ivc in enumerate(r.inputs[port]):
                    if ivc.state != "wait_va" or ivc.from_cycle > t:
                        continue
                    for j in range(V):
                        w = (r.va_in[port][v] + j) % V
                        if r.outputs[ivc.out_port][w].free_at(t):
                            picks.setdefault((ivc.out_port, w), []).append(port * V + v)
                            break
            for (o, w), reqs in picks.items():
                idx = min(reqs, key=lambda i: (i - r.va_out[o][w]) % (5 * V))
                port, v = divmod(idx, V)
                ivc = r.inputs[port][v]
                r.outputs[o][w].busy = True
                ivc.state, ivc.out_vc, ivc.from_cycle = "active", w, t + p.vc_alloc_cycles
                r.va_out[o][w] = (idx + 1) % (5 * V)
                r.va_in[port][v] = (w + 1) % V
        # switch allocation, then traversal
        for r in mesh.routers.values():
            picked = []  # (input index, out port)
            for port in range(5):
                cap = p.inject_flits_per_cycle if port == LOCAL else 1
                for j in range(V):
                    if sum(1 for i, _ in picked if i // V == port) == cap:
                        break
                    v = (r.sa_in[port] + j) % V
                    ivc = r.inputs[port][v]
                    if ivc.state == "active" and ivc.from_cycle <= t and ivc.flits and ivc.flits[0][2] <= t and \
                            (ivc.out_port == LOCAL or r.outputs[ivc.out_port][ivc.out_vc].credits > 0):
                        picked.append((port * V + v, ivc.out_port))
            granted = []
            for o in range(5):
                cands = sorted((i for i, oo in picked if oo == o), key=lambda i: (i - r.sa_out[o]) % (5 * V))
                win = cands[:p.eject_flits_per_cycle if o == LOCAL else 1]
                if win:
                    r.sa_out[o] = (win[-1] + 1) % (5 * V)
                granted += [(i, o) for i in win]
            for port in range(5):
                mine = [i % V for i, _ in granted if i // V == port]
                if mine:
                    r.sa_in[port] = (max(mine, key=lambda v: (v - r.sa_in[port]) % V) + 1) % V
            for i, o in granted:
                port, v = divmod(i, V)
                ivc = r.inputs[port][v]
                w = ivc.out_vc
                pkt, fi, _ready = ivc.flits.popleft()
                if port == LOCAL:
                    inj_vcs[r.y * W + r.x][v].returns.append(t + p.credit_cycles + p.inject_cycles)
                else:
                    dx, dy = STEP[OPPOSITE[port]]
                    mesh.routers[(r.x + dx, r.y + dy)].outputs[port][v].returns.append(
                        t + p.credit_cycles + p.link_cycles)
                tail = fi == flits[pkt] - 1
                if o == LOCAL:
                    te = t + p.sw_alloc_cycles + p.switch_cycles + p.eject_cycles
                    eject[te] += 1
                    if tail:
                        delivery[pkt] = te
                        remaining -= 1
                else:
                    r.outputs[o][w].credits -= 1
                    dx, dy = STEP[o]
                    mesh.arrive(mesh.routers[(r.x + dx, r.y + dy)], o, w, pkt, fi,
                                t + p.sw_alloc_cycles + p.switch_cycles + p.link_cycles)
                if tail:
                    r.outputs[o][w].busy = False
                    r.outputs[o][w].free_from = t + 1
                    ivc.state = "idle"
                    if ivc.flits:
                        nxt, _fi, ready = ivc.flits[0]
                        ivc.state = "wait_va"
                        ivc.out_port = mesh.route(r, nxt)
                        ivc.from_cycle = max(ready, t + 1) + p.routing_cycles
        t += 1
    return RouterRun(created, head_inj, delivery, eject, t)
