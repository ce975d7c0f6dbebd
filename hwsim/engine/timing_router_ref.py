"""The step timing with the wormhole router model in plain Python: the twin of
:mod:`hwsim.engine.timing_router` (whose docstring states the rules), on
:class:`hwsim.router_ref.RouterSim`, held equal to it by the tests, and the timeline
source when a Chrome trace is written with ``noc.router_model = "wormhole"``.
"""

from __future__ import annotations

import numpy as np

from ..program import Program
from ..router import IO_PORT, router_params_from_chip, wormhole_links
from ..router_ref import RouterSim
from .timing_ref import pipeline_depth, timing_result

__all__ = ["timing_wormhole"]


class _StepMesh:
    """One step's mesh: the router twin (chip-to-chip and I/O links as links), every
    target's bookkeeping (kind 0 = partial sum to pair ``tgt``, 1 = spike of ``tgt``,
    2 = input event to core ``tgt``; chip crossings; cores; flits; creation) and its
    deliveries."""

    def __init__(self, prog: Program, params, links):
        self.prog = prog
        self.tree = prog.chip.noc.multicast == "xy-tree"
        self.buffer = params.buffer_flits
        self.node = prog.core_xy[:, 1] * int(prog.grid_w) + prog.core_xy[:, 0]
        self.sim = RouterSim(params, links=links)
        self.pk = []  # per target: (kind, tgt, cross, src core, dst core, flits, created)
        self.dl = []

    def add(self, created, src, dst, flits, kind, tgt, cross):
        self.sim.add(int(created), int(self.node[src]), int(self.node[dst]), int(flits))
        self.pk.append((kind, tgt, int(cross), int(src), int(dst), int(flits), int(created)))
        self.dl.append(-1)

    def add_input(self, dsts, flits) -> None:
        """An input event at cycle 0 from the I/O port to the cores ``dsts`` (multicast as a spike is)."""
        if self.tree and len(dsts) > 1 and flits <= self.buffer:
            self.sim.add_multicast(0, IO_PORT, [int(self.node[d]) for d in dsts], int(flits))
        else:
            for d in dsts:
                self.sim.add(0, IO_PORT, int(self.node[d]), int(flits))
        for d in dsts:
            self.pk.append((2, int(d), 0, -1, int(d), int(flits), 0))
            self.dl.append(-1)

    def add_spike(self, created, src, dsts, flits, tgt, crosses) -> int:
        """A spike to the cores ``dsts``: one multicast packet on an xy-tree chip (several
        destinations, at most ``buffer_flits`` flits), else one packet per destination;
        returns the number of targets."""
        if self.tree and len(dsts) > 1 and flits <= self.buffer:
            self.sim.add_multicast(int(created), int(self.node[src]), [int(self.node[d]) for d in dsts], int(flits))
            for d, x in zip(dsts, crosses):
                self.pk.append((1, tgt, int(x), int(src), int(d), int(flits), int(created)))
                self.dl.append(-1)
        else:
            for d, x in zip(dsts, crosses):
                self.add(created, src, d, flits, 1, tgt, x)
        return len(dsts)

    def run(self, on_delivery, sweep) -> None:
        """Cycle until every target is delivered; ``on_delivery(kind, tgt, cycle)`` per
        delivery, then ``sweep()`` after every cycle that delivered one."""
        t = 0
        while self.sim.remaining:
            t = self.sim.next_cycle(t)
            got = self.sim.cycle(t)
            for q in got:
                kind, tgt, cross = self.pk[q][:3]
                self.dl[q] = self.sim.delivery[q]
                on_delivery(kind, tgt, self.dl[q])
            if got:
                sweep()
            t += 1

    def latencies(self) -> list:
        return [d - p[6] for d, p in zip(self.dl, self.pk) if p[0] != 2]

    def trace(self, tl, t: int) -> None:
        for kind, name in ((0, "psum"), (1, "spike")):
            ks = [i for i, p in enumerate(self.pk) if p[0] == kind]
            if ks:
                a = np.array([self.pk[i][3:] for i in ks], np.int64)
                tl.packets(t, name, a[:, 0], np.arange(len(ks) + 1), a[:, 1], a[:, 3],
                           np.array([self.dl[i] for i in ks]), a[:, 2])


def _spikes_by_core(prog: Program, out_t: np.ndarray, g1: int):
    """The step's spikes (neurons ``g1:``) with destinations, per core in neuron order: {core: [(gid, flits)]}."""
    by = {}
    for gi in g1 + np.flatnonzero(out_t[g1:]):
        if prog.nrn_dst_ptr[gi + 1] == prog.nrn_dst_ptr[gi]:
            continue
        model = prog.pop_model[np.searchsorted(prog.pop_off, gi, side="right") - 1]
        multi = prog.payload_bits == 0 and model in (0, 2, 4)
        by.setdefault(int(prog.nrn_core[gi]), []).append((int(gi), max(abs(int(out_t[gi])), 1) if multi else 1))
    return by


def _add_spikes(prog, mesh, spikes, fe, src, tgt, cross) -> int:
    n = 0
    for gi, fl in spikes:
        d0, d1 = prog.nrn_dst_ptr[gi], prog.nrn_dst_ptr[gi + 1]
        n += mesh.add_spike(fe, src, prog.nrn_dst_core[d0:d1], fl, tgt, cross[d0:d1])
    return n


def _sync_step(prog, mesh, tc, spikes, plan, core_busy, tl, t) -> int:
    """One sync step (module rules of :mod:`hwsim.engine.timing_router`); returns the busy cycles."""
    P, C = prog.n_pops, prog.n_cores
    dsrc, pcores, pfire, pcand, tile_cross, nrn_cross = plan
    pstate, done, ready, fin, last, spk_out = [0] * P, [0] * P, [0] * P, [0] * P, [0] * P, [0] * P
    pstate[0] = 3
    pst, pend, pexp, prdy, pinteg = {}, {}, {}, {}, {}
    io_exp, io_rdy = [0] * C, [0] * C
    for q in mesh.pk:
        if q[0] == 2:
            io_exp[q[1]] += 1
    turn, core_free = [P] * C, [0] * C
    for p in range(P - 1, 0, -1):
        for c in pcores[p]:
            turn[c] = p
    for p in range(1, P):
        tk = prog.tile_order[prog.pop_tile_ptr[p]:prog.pop_tile_ptr[p + 1]]
        if tk.size == 0:
            pstate[p] = 3
            continue
        for c in pcores[p]:
            pst[p, c], pend[p, c], pexp[p, c], prdy[p, c] = 0, 0, 0, 0
            pinteg[p, c] = int(np.maximum(tc[tk], 0)[prog.tile_core[tk] == c].sum())
        for kk in pcand[p]:
            if tc[kk] >= 0:
                pexp[p, int(prog.tile_core[prog.tile_soma[kk]])] += 1
    cursor = {c: 0 for c in spikes}

    def on_delivery(kind, tgt, cycle):
        if kind == 2:
            io_exp[tgt] -= 1
            io_rdy[tgt] = max(io_rdy[tgt], cycle)
        elif kind == 0:
            pexp[tgt] -= 1
            prdy[tgt] = max(prdy[tgt], cycle)
        else:
            spk_out[tgt] -= 1
            last[tgt] = max(last[tgt], cycle)

    def sweep():
        changed = True
        while changed:
            changed = False
            for p in range(1, P):
                if pstate[p] == 3:
                    continue
                if pstate[p] == 0:
                    if any(pstate[s] != 3 for s in dsrc[p]):
                        continue
                    ready[p] = fin[p] = max((done[s] for s in dsrc[p]), default=0)
                    pstate[p], changed = 1, True
                if pstate[p] == 1:
                    fired = True
                    for c in pcores[p]:
                        if pst[p, c] == 0:
                            if turn[c] != p or io_exp[c] > 0:
                                fired = False
                                continue
                            start = max(ready[p], core_free[c], io_rdy[c])
                            pend[p, c] = start + pinteg[p, c]
                            for kk in pcand[p]:
                                if tc[kk] >= 0 and prog.tile_core[kk] == c:
                                    dc = int(prog.tile_core[prog.tile_soma[kk]])
                                    mesh.add(pend[p, c], c, dc, prog.tile_psum_flits[kk], 0, (p, dc), tile_cross[kk])
                            if tl is not None:
                                tl.phase(c, t, "integrate", start, pend[p, c])
                            pst[p, c], changed = 1, True
                        if pst[p, c] == 1:
                            if pexp[p, c] > 0:
                                fired = False
                                continue
                            fs = max(pend[p, c], prdy[p, c])
                            fe = fs + pfire[p][c]
                            if tl is not None:
                                tl.phase(c, t, "psum wait", pend[p, c], fs)
                                tl.phase(c, t, "fire", fs, fe)
                            core_busy[c] += pinteg[p, c] + pfire[p][c]
                            core_free[c] = fe
                            fin[p] = max(fin[p], fe)
                            turn[c] = next((q for q in range(p + 1, P) if c in pcores[q]), P)
                            mine = [s for s in spikes.get(c, [])[cursor.get(c, 0):] if s[0] < prog.pop_off[p + 1]]
                            cursor[c] = cursor.get(c, 0) + len(mine)
                            spk_out[p] += _add_spikes(prog, mesh, mine, fe, c, p, nrn_cross)
                            pst[p, c], changed = 2, True
                    if fired:
                        pstate[p] = 2
                if pstate[p] == 2 and spk_out[p] == 0:
                    done[p] = max(fin[p], last[p])
                    pstate[p], changed = 3, True

    sweep()
    mesh.run(on_delivery, sweep)
    return max(done)


def _pipelined_step(prog, mesh, tc, spikes, plan, core_busy, tl, t) -> int:
    """One pipelined step (module rules of :mod:`hwsim.engine.timing_router`); returns the busy cycles."""
    C = prog.n_cores
    _dsrc, _pcores, _pfire, _pcand, tile_cross, nrn_cross = plan
    K = prog.n_tiles
    integ = np.bincount(prog.tile_core, weights=np.maximum(tc[:K], 0), minlength=C).astype(np.int64)
    soma = np.flatnonzero(prog.tile_kind == 0)
    pe = prog.pe_width
    fire = np.bincount(prog.tile_core[soma], weights=((prog.tile_ncols + pe - 1) // pe)[soma],
                       minlength=C).astype(np.int64)
    pexp, prdy, last = [0] * C, [0] * C, [0]
    psums = [kk for kk in np.flatnonzero((prog.tile_kind == 1) & (prog.tile_psum_flits > 0)) if tc[kk] >= 0]
    for kk in psums:
        pexp[int(prog.tile_core[prog.tile_soma[kk]])] += 1
    io_exp, io_rdy = [0] * C, [0] * C
    for q in mesh.pk:
        if q[0] == 2:
            io_exp[q[1]] += 1
    core_busy += integ + fire
    fired, busy, iend = set(), [0], {}

    def on_delivery(kind, tgt, cycle):
        if kind == 2:
            io_exp[tgt] -= 1
            io_rdy[tgt] = max(io_rdy[tgt], cycle)
        elif kind == 0:
            pexp[tgt] -= 1
            prdy[tgt] = max(prdy[tgt], cycle)
        else:
            last[0] = max(last[0], cycle)

    def sweep():
        for c in np.unique(prog.tile_core):
            c = int(c)
            if c not in iend:
                if io_exp[c] > 0:
                    continue
                iend[c] = io_rdy[c] + int(integ[c])
                for kk in psums:
                    if prog.tile_core[kk] == c:
                        mesh.add(iend[c], c, int(prog.tile_core[prog.tile_soma[kk]]), prog.tile_psum_flits[kk], 0,
                                 int(prog.tile_core[prog.tile_soma[kk]]), tile_cross[kk])
            if c in fired or pexp[c] > 0:
                continue
            fs = max(iend[c], prdy[c])
            fe = fs + int(fire[c])
            if tl is not None:
                tl.phase(c, t, "integrate", io_rdy[c], iend[c])
                tl.phase(c, t, "psum wait", iend[c], fs)
                tl.phase(c, t, "fire", fs, fe)
            busy[0] = max(busy[0], fe)
            fired.add(c)
            _add_spikes(prog, mesh, spikes.get(c, []), fe, c, 0, nrn_cross)

    sweep()
    mesh.run(on_delivery, sweep)
    return max(busy[0], last[0])


def timing_wormhole(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None,
                    tl_sample: int = 0, io: tuple = (1, False)) -> dict:
    """Cycles of the timed samples with the router model, sync or pipelined as the
    program (rules: :mod:`hwsim.engine.timing_router`); ``timeline`` records sample
    ``tl_sample``; ``io`` = (flits per input event, times its value?) as the run's."""
    chip = prog.chip
    fixed = chip.timing.step_cycles if chip.timing.step_cycles != "dynamic" else None
    barrier = int(chip.timing.barrier_cycles)
    gw, gh = int(prog.grid_w), int(prog.grid_h)
    params = router_params_from_chip(chip, gw, gh)
    links = wormhole_links(chip, gw, gh)
    Bt, T = tile_cyc.shape[:2]
    P, C = prog.n_pops, prog.n_cores
    pe = prog.pe_width
    fire_tile = (prog.tile_ncols + pe - 1) // pe
    dsrc = [sorted({int(prog.proj_src[j]) for j in range(prog.proj_src.size)
                    if prog.proj_dst[j] == p and prog.proj_delay[j] == 0}) for p in range(P)]
    pcores, pfire, pcand = [], [], []
    for p in range(P):
        tk = prog.tile_order[prog.pop_tile_ptr[p]:prog.pop_tile_ptr[p + 1]]
        pcores.append([int(c) for c in np.unique(prog.tile_core[tk])])
        s = tk[prog.tile_kind[tk] == 0]
        pfire.append(np.bincount(prog.tile_core[s], weights=fire_tile[s], minlength=C).astype(np.int64))
        pcand.append(tk[(prog.tile_kind[tk] == 1) & (prog.tile_psum_flits[tk] > 0)])
    t_src, t_dst = prog.tile_core, prog.tile_core[prog.tile_soma]
    tile_cross = np.abs(prog.core_chip[t_dst] - prog.core_chip[t_src]).sum(axis=1)
    own = np.repeat(np.arange(int(prog.pop_off[-1])), np.diff(prog.nrn_dst_ptr))
    nrn_cross = np.abs(prog.core_chip[prog.nrn_dst_core] - prog.core_chip[prog.nrn_core[own]]).sum(axis=1)
    plan = (dsrc, pcores, pfire, pcand, tile_cross, nrn_cross)
    step_cycles = np.zeros((Bt, T), np.int64)
    core_busy = np.zeros((Bt, C), np.int64)
    link_flits = np.zeros(gw * gh * 4, np.int64)
    lat, calls, overruns = [], np.zeros(2, np.int64), 0
    g1 = int(prog.pop_off[1])
    step_fn = _pipelined_step if prog.pipelined else _sync_step
    for b in range(Bt):
        tl = timeline if (timeline is not None and b == tl_sample) else None
        for t in range(T):
            mesh = _StepMesh(prog, params, links)
            in_flits, in_mult = io
            for i in np.flatnonzero(all_out[b, t, :g1]):
                d0, d1 = prog.in_dst_ptr[i], prog.in_dst_ptr[i + 1]
                if d1 > d0:
                    v = int(all_out[b, t, i])
                    mesh.add_input(prog.in_dst_core[d0:d1], in_flits * (max(abs(v), 1) if in_mult else 1))
            spikes = _spikes_by_core(prog, all_out[b, t], g1)
            calls[0] += bool(spikes)
            busy = step_fn(prog, mesh, tile_cyc[b, t], spikes, plan, core_busy[b], tl, t)
            lat += mesh.latencies()
            lf = mesh.sim.link_flits.reshape(gh, gw, 4)
            link_flits += lf.transpose(1, 0, 2).reshape(-1)
            overruns += int(fixed is not None and busy > fixed)
            step_cycles[b, t] = (busy if fixed is None else max(busy, int(fixed))) + barrier
            if tl is not None:
                mesh.trace(tl, t)
                tl.step(t, int(step_cycles[b, t]))
    hist = np.bincount(np.array(lat, np.int64)).astype(np.int64) if lat else np.zeros(0, np.int64)
    mode = "pipelined" if prog.pipelined else "sync"
    return timing_result(prog, mode, step_cycles, core_busy, hist, overruns,
                         pipeline_depth(prog) if prog.pipelined else 0, link_flits, calls)
