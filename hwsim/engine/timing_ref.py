"""The cycle timing in plain Python, step by step: the twin of the compiled model
(:mod:`hwsim.engine.timing`), held equal to it by the tests, and the timeline source
when a Chrome trace is written (``timeline`` receives every phase and packet).
"""

from __future__ import annotations

import numpy as np

from models import neurons

from ..noc import deliver
from ..program import Program

__all__ = ["timing_sync", "timing_pipelined", "timing_result", "pipeline_depth"]


class _Noc:
    """Runs :func:`hwsim.noc.simulate_noc` for the timing models, adds the inter-chip
    latency and collects packet latencies (see :mod:`hwsim.engine`)."""

    def __init__(self, prog: Program):
        chip = prog.chip
        self.prog = prog
        self.R, self.W = int(chip.noc.router_cycles), int(chip.noc.link_cycles)
        self.mc = chip.noc.multicast
        self.extra = max(0, int(chip.noc.interchip_cycles) - self.R - self.W)
        self.lat = []
        self.link_flits = np.zeros(int(prog.grid_w) * int(prog.grid_h) * 4, np.int64)
        self.spike_calls = np.zeros(2, np.int64)  # (spike calls, as trains: none here)

    def __call__(self, inject, src_cores, dptr, dcores, flits):
        """Delivery cycle per (packet, destination): :func:`hwsim.noc.simulate_noc`'s
        model without its validation (the packets come from the compiled program),
        packet by packet (no trains: this model is the kernel's reference)."""
        prog = self.prog
        t0 = np.asarray(inject, dtype=np.int64).reshape(-1)
        fl = np.broadcast_to(np.asarray(flits, dtype=np.int64), t0.shape)
        dl, lf = deliver(t0, fl, prog.core_xy[src_cores], dptr, prog.core_xy[dcores], int(prog.grid_w),
                              int(prog.grid_h), self.mc == "xy-tree", self.R, self.W, trains=False)
        self.link_flits += lf
        own = np.repeat(np.arange(t0.size), np.diff(dptr))
        if self.extra:
            cross = np.abs(prog.core_chip[dcores] - prog.core_chip[np.asarray(src_cores)[own]]).sum(axis=1)
            dl = dl + cross * self.extra
        self.lat.append(dl - t0[own])
        return dl

    def hist(self):
        lat = np.concatenate(self.lat) if self.lat else np.zeros(0, np.int64)
        return (np.bincount(lat) if lat.size else np.zeros(0, np.int64)).astype(np.int64)


def _spike_packets(prog: Program, out_bt: np.ndarray, g0: int, g1: int):
    """Spike packets of neurons ``g0:g1`` whose outputs ``out_bt[g]`` are nonzero:
    (gids, src cores, dst ptr, dst cores, flits), or None."""
    o = out_bt[g0:g1]
    gids = g0 + np.flatnonzero(o)
    gids = gids[prog.nrn_dst_ptr[gids + 1] > prog.nrn_dst_ptr[gids]]
    if not gids.size:
        return None
    ndst = prog.nrn_dst_ptr[gids + 1] - prog.nrn_dst_ptr[gids]
    dptr = np.concatenate([[0], np.cumsum(ndst)])
    dc = prog.nrn_dst_core[np.repeat(prog.nrn_dst_ptr[gids] - dptr[:-1], ndst) + np.arange(int(dptr[-1]))]
    fl = np.ones(gids.size, np.int64)
    if prog.payload_bits == 0:
        pm = prog.pop_model[np.searchsorted(prog.pop_off, gids, side="right") - 1]
        multi = neurons.per_code("multi")[pm] != 0  # spike counts (models.neurons)
        fl = np.where(multi, np.maximum(np.abs(out_bt[gids]), 1), 1)
    return gids, prog.nrn_core[gids], dptr, dc, fl


def reference_net(qnet, mode: str):
    """The net whose integer reference (:func:`models.intref.simulate_int`) the chip equals in ``mode``.

    ``sync``: ``qnet`` itself. ``pipelined``: every core works every step on the previous
    step's spikes, so every projection not from the graph input gets one more step of
    delay and its bias terms start one step later (a shallow copy; ``qnet`` is unchanged).
    """
    import copy

    if mode != "pipelined":
        return qnet
    n = copy.copy(qnet)
    projs = []
    for q in qnet.projections:
        q2 = copy.copy(q)
        if q.src != qnet.input.name:
            q2.delay_steps = q.delay_steps + 1
            q2.bias_terms = [(s + 1, v) for s, v in q.bias_terms]
        projs.append(q2)
    n.projections = projs
    return n


def pipeline_depth(prog: Program) -> int:
    """Pipeline stages between the graph input and the output population: the longest
    chain of (declared) delay-0 projections ending at the output, not counting
    projections from the graph input (each other projection adds one step in pipelined mode)."""
    dist = np.full(prog.n_pops, -1, np.int64)
    dist[0] = 0
    order = np.argsort(prog.proj_dst, kind="stable")
    for p in range(1, prog.n_pops):
        for j in order:
            if prog.proj_dst[j] == p and prog.proj_delay[j] == 0 and dist[prog.proj_src[j]] >= 0:
                s = prog.proj_src[j]
                dist[p] = max(dist[p], dist[s] + (1 if s != 0 else 0))
    return int(max(dist[prog.output_pop], 0))


def timing_result(prog, mode, step_cycles, core_busy, hist, overruns, depth, link_flits, spike_calls):
    """The timing dict of :func:`hwsim.engine.simulate` (see :class:`~hwsim.result.RunResult`): ``link_flits`` (flat,
    per directed link, summed over the timed samples) is returned as ``(grid_w,
    grid_h, 4)``; ``spike_calls`` = (spike NoC simulations with packets, those of them
    run as trains)."""
    chip = prog.chip
    clock = float(chip.timing.clock_hz)
    Bt, T = step_cycles.shape
    total = step_cycles.sum(axis=1)
    cps = total / float(T)
    if mode == "sync":
        latency = total.astype(np.float64)
        thr = clock / np.maximum(total, 1)
    else:
        latency = (T + depth) * cps
        thr = clock / np.maximum(cps * T, 1e-300)
    return {
        "mode": mode, "samples": int(Bt), "step_cycles": step_cycles, "core_busy_cycles": core_busy,
        "total_cycles": total, "cycles_per_step": cps, "pipeline_depth": np.full(Bt, depth, np.int64),
        "latency_cycles": latency if mode != "sync" else total,
        "latency_us": latency / clock * 1e6, "throughput_inf_s": thr,
        "packet_latency_hist": hist, "overruns": int(overruns),
        "link_flits": np.asarray(link_flits, np.int64).reshape(int(prog.grid_w), int(prog.grid_h), 4),
        "noc_spike_calls": int(spike_calls[0]), "noc_spike_calls_as_trains": int(spike_calls[1]),
    }


def _send_spikes(prog: Program, noc, tl, out_t: np.ndarray, lo: int, hi: int, fend: np.ndarray, t: int) -> int:
    """Inject the spikes of neurons ``lo:hi`` at their cores' fire-end cycles; returns the
    last delivery cycle (0 when nothing was sent). Shared by both timing modes."""
    sp = _spike_packets(prog, out_t, lo, hi)
    if sp is None:
        return 0
    _gids, src, dptr, dc, fl = sp
    dl = noc(fend[src], src, dptr, dc, fl)
    noc.spike_calls[0] += 1
    if tl is not None:
        tl.packets(t, "spike", src, dptr, dc, fend[src], dl, fl)
    return int(dl.max())


def _trace_phases(tl, cores, t: int, start, end_int, fstart, fend) -> None:
    """The integrate, partial-sum wait and fire phases of ``cores`` at step ``t`` on the timeline."""
    for c in cores:
        tl.phase(c, t, "integrate", start[c], end_int[c])
        tl.phase(c, t, "psum wait", end_int[c], fstart[c])
        tl.phase(c, t, "fire", fstart[c], fend[c])


def _end_step(busy: int, fixed, barrier: int, tl, t: int) -> tuple:
    """A step's cycles, ``max(busy, fixed) + barrier`` (``fixed`` None: dynamic steps), on
    the timeline, and 1 if the step overran its fixed length, else 0."""
    over = int(fixed is not None and busy > fixed)
    cycles = (busy if fixed is None else max(busy, int(fixed))) + barrier
    if tl is not None:
        tl.step(t, cycles)
    return cycles, over


def _timing_setup(prog: Program, tile_cyc: np.ndarray):
    """What both timing modes start from: the fixed step (or None), barrier, PE width,
    sizes, zeroed step/busy arrays, the NoC model and fire cycles per tile."""
    chip = prog.chip
    fixed = chip.timing.step_cycles if chip.timing.step_cycles != "dynamic" else None
    pe = prog.pe_width
    Bt, T = tile_cyc.shape[:2]
    return (fixed, int(chip.timing.barrier_cycles), pe, Bt, T, np.zeros((Bt, T), np.int64),
            np.zeros((Bt, prog.n_cores), np.int64), _Noc(prog), (prog.tile_ncols + pe - 1) // pe)


def timing_sync(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None, tl_sample: int = 0) -> dict:
    """Sync-mode cycles of the timed samples (rules: :mod:`hwsim.engine.timing`), the
    step-by-step twin of the compiled model; ``timeline`` records sample ``tl_sample``."""
    fixed, barrier, _pe, Bt, T, step_cycles, core_busy, noc, fire_tile = _timing_setup(prog, tile_cyc)
    C, P = prog.n_cores, prog.n_pops
    overruns = 0
    dsrc = [sorted({int(prog.proj_src[j]) for j in range(prog.proj_src.size)
                    if prog.proj_dst[j] == p and prog.proj_delay[j] == 0}) for p in range(P)]
    ptiles = [prog.tile_order[prog.pop_tile_ptr[p]:prog.pop_tile_ptr[p + 1]] for p in range(P)]

    # per population: constant tile / core sets (precomputed once)
    pinfo = [None] * P
    for p in range(1, P):
        tk = ptiles[p]
        if tk.size == 0:
            continue
        cores = prog.tile_core[tk]
        used = np.zeros(C, bool)
        used[cores] = True
        cand = tk[(prog.tile_kind[tk] == 1) & (prog.tile_psum_flits[tk] > 0)]
        soma = tk[prog.tile_kind[tk] == 0]
        fire = np.zeros(C, np.int64)
        np.add.at(fire, prog.tile_core[soma], fire_tile[soma])
        pinfo[p] = (tk, cores, used, np.flatnonzero(used), cand, prog.tile_core[cand],
                    prog.tile_core[prog.tile_soma[cand]], prog.tile_psum_flits[cand], fire)

    for b in range(Bt):
        tl = timeline if (timeline is not None and b == tl_sample) else None
        for t in range(T):
            done = np.zeros(P, np.int64)
            core_free = np.zeros(C, np.int64)
            tct = tile_cyc[b, t]
            for p in range(1, P):
                ready = max((int(done[s]) for s in dsrc[p]), default=0)
                if pinfo[p] is None:
                    continue
                tk, cores, used, used_idx, cand, c_src, c_dst, c_fl, fire = pinfo[p]
                integ = np.bincount(cores, weights=np.maximum(tct[tk], 0), minlength=C).astype(np.int64)
                start = np.where(used, np.maximum(core_free, ready), 0)
                end_int = start + integ
                # partial sums
                psum_ready = np.zeros(C, np.int64)
                if cand.size:
                    m = tct[cand] >= 0
                    if m.any():
                        src = c_src[m]
                        dst = c_dst[m]
                        fl = c_fl[m]
                        dptr = np.arange(src.size + 1)
                        dl = noc(end_int[src], src, dptr, dst, fl)
                        np.maximum.at(psum_ready, dst, dl)
                        if tl is not None:
                            tl.packets(t, "psum", src, dptr, dst, end_int[src], dl, fl)
                fstart = np.maximum(end_int, psum_ready)
                fend = fstart + fire
                core_busy[b] += integ + fire
                core_free = np.where(used, fend, core_free)
                fin = int(fend[used_idx].max(initial=ready))
                if tl is not None:
                    _trace_phases(tl, used_idx, t, start, end_int, fstart, fend)
                # spikes
                fin = max(fin, _send_spikes(prog, noc, tl, all_out[b, t], int(prog.pop_off[p]),
                                            int(prog.pop_off[p + 1]), fend, t))
                done[p] = fin
            step_cycles[b, t], over = _end_step(int(done.max(initial=0)), fixed, barrier, tl, t)
            overruns += over
    return timing_result(prog, "sync", step_cycles, core_busy, noc.hist(), overruns, 0, noc.link_flits, noc.spike_calls)


def timing_pipelined(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None,
                      tl_sample: int = 0) -> dict:
    """Pipelined-mode cycles of the timed samples (rules: :mod:`hwsim.engine.timing`), the
    step-by-step twin of the compiled model; ``timeline`` records sample ``tl_sample``."""
    fixed, barrier, _pe, Bt, T, step_cycles, core_busy, noc, fire_tile = _timing_setup(prog, tile_cyc)
    C, K = prog.n_cores, prog.n_tiles
    overruns = 0
    soma = np.flatnonzero(prog.tile_kind == 0)
    fire = np.bincount(prog.tile_core[soma], weights=fire_tile[soma], minlength=C).astype(np.int64)
    used = np.zeros(C, bool)
    used[prog.tile_core] = True
    g1 = int(prog.pop_off[1])
    depth = pipeline_depth(prog)
    for b in range(Bt):
        tl = timeline if (timeline is not None and b == tl_sample) else None
        for t in range(T):
            tc = tile_cyc[b, t, :K]
            integ = np.bincount(prog.tile_core, weights=np.maximum(tc, 0), minlength=C).astype(np.int64)
            psum_ready = np.zeros(C, np.int64)
            sel = np.flatnonzero((prog.tile_kind == 1) & (tc >= 0) & (prog.tile_psum_flits > 0))
            if sel.size:
                src = prog.tile_core[sel]
                dst = prog.tile_core[prog.tile_soma[sel]]
                dptr = np.arange(sel.size + 1)
                dl = noc(integ[src], src, dptr, dst, prog.tile_psum_flits[sel])
                np.maximum.at(psum_ready, dst, dl)
                if tl is not None:
                    tl.packets(t, "psum", src, dptr, dst, integ[src], dl, prog.tile_psum_flits[sel])
            fstart = np.maximum(integ, psum_ready)
            fend = fstart + fire
            core_busy[b] += integ + fire
            busy = int(fend[used].max(initial=0))
            if tl is not None:
                _trace_phases(tl, np.flatnonzero(used), t, np.zeros(C, np.int64), integ, fstart, fend)
            busy = max(busy, _send_spikes(prog, noc, tl, all_out[b, t], g1, int(prog.pop_off[-1]), fend, t))
            step_cycles[b, t], over = _end_step(busy, fixed, barrier, tl, t)
            overruns += over
    return timing_result(prog, "pipelined", step_cycles, core_busy, noc.hist(), overruns, depth, noc.link_flits,
                         noc.spike_calls)

