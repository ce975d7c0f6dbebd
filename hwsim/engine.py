"""The event-driven chip simulator (Numba): :func:`simulate`.

Semantics (sync mode) are those of :mod:`models.intref` exactly: within a step the
populations are evaluated in net order; a population's tiles process their input
events (an event = a nonzero source value on an axon row: the row's stored weights are
read and multiplied into per-(projection, post) accumulators, one AC per weight for a
spike source, one MAC for a real-valued graph input), every partial-sum tile of a
projection adds into the same accumulator, each projection's sum is shifted by its
``acc_shift`` (``rshift_round``) and the neurons update per the integer contract.

Counters (per core and step, summed over samples; :data:`COUNTERS`): input events,
ACs, MACs, neuron updates, spikes out, state words (neuron updates, x2 for CubaLIF),
partial-sum ops (a partial tile that received at least one event adds its ``n_cols``
partial sums into its soma; counted on the soma's core), packets, flits and flit-hops
(spike packets: one per spiking neuron with remote destinations, per destination core
with ``multicast="unicast"``; with binary events a multi-spike count sends one packet
per spike; partial-sum packets ``n_cols * ceil(membrane_bits / flit_bits)`` flits, as
``mapper.map_model`` counts traffic), busy cycles
(integrate + fire cycles). Weight bits and state bits are derived in :class:`RunResult`.

Timing (sync mode, :func:`_timing`): per core and step, integrate cycles = sum over its
events of ``ceil(used columns of the row / pe_width) + event_overhead_cycles``, fire
cycles = sum over its soma tiles of ``ceil(n_cols / pe_width)``. Layer-serial: a
population's cores start integrating when every delay-0 source population is done (its
spikes delivered); partial sums are injected when the partial tile's core finished
integrating, the soma fires when its own integration is done and all partial sums have
arrived; spike packets are injected at the end of the fire phase and simulated with
:func:`hwsim.noc.simulate_noc` (one call per population and phase; populations do not
overlap in sync mode). The step ends at the last completion + ``barrier_cycles``; a
fixed ``step_cycles`` pads the step (``max(busy, step_cycles)``) and counts overruns.
Sync: ``total_cycles`` = ``latency_cycles`` = the sum of the steps, throughput =
``clock_hz / total_cycles`` inferences/s (no overlap between inferences).

Pipelined mode (``chip.timing.mode == "pipelined"`` or ``simulate(..., mode=...)``).
Functional: every projection not from the graph input delivers the source's output of
one step earlier than declared (delay ``d`` -> ``d + 1``, bias terms start one step
later; see :mod:`hwsim.program`), i.e. exactly ``models.intref.simulate_int`` on the
net so transformed. Timing (:func:`_timing_pipelined`), per step: every core starts at
cycle 0 and integrates the events of the step (all sources' outputs of earlier
steps, delivered during the previous step), its cycles summed over all its tiles
(every population); a partial tile's psum packet is injected when its core's
integration ends; a core fires (sum of its soma tiles' fire cycles) at
``max(end of integration, last psum arrival)``; every spike of the step is injected
when its core's fire phase ends and must be delivered within the step (the next step
consumes it). Partial sums and spikes are two NoC simulations per step (they do not
contend with each other). Step = ``max(last fire end, last delivery)`` (+ fixed-step
padding) + ``barrier_cycles``. With ``cycles_per_step`` = mean step cycles of the
sample and ``depth`` = :func:`pipeline_depth` (delayed projections on the longest
declared-delay-0 chain from the input to the output population):
``throughput_inf_s = clock_hz / (cycles_per_step * T)`` and
``latency_cycles = (T + depth) * cycles_per_step`` (the output of the last input step
appears ``depth`` steps later; append ``depth`` empty steps to see it).

Inter-chip latency: after each NoC simulation, every destination's delivery is
delayed by ``crossings * max(0, noc.interchip_cycles - router_cycles - link_cycles)``
(``crossings`` = chip boundaries on its XY path). This is applied after the
contention simulation, so it does not change the link order downstream
(an approximation; :mod:`hwsim.noc` itself treats every link alike).

New counters: ``interchip_flits`` (flits x chip-boundary crossings of spike and
partial-sum packets, and of input events from the I/O port, which belongs to chip
(0, 0)); ``io_in_flits`` / ``io_in_flit_hops``: input events entering through the
I/O port at global (-1, 0) (one packet per destination core with unicast, one
xy-tree packet otherwise; one flit per spike for a spiking input with binary events,
``ceil(input_bits / flit_bits)`` flits per value for a real-valued input; hops from
the port, the injection link included), counted on the event's lowest-numbered
destination core; ``io_out_flits``: outputs of the output population leaving the chip
(one flit per spike with binary events, one per nonzero value otherwise;
``ceil(membrane_bits / flit_bits)`` for a non-spiking output), on the neuron's core;
the route to the port is not modelled. I/O traffic is not part of the NoC timing.

Traces (:mod:`hwsim.traces`): AER ``.npz``, VCD and Chrome trace JSON, off by default.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from models.errors import SimulationError
from models.intref import encode_input
from models.reference import _check_options

from .program import Program, ProgramError, compile as compile_program  # noqa: F401
from .result import RunResult

COUNTERS = ("events", "acs", "macs", "neuron_updates", "spikes", "state_words", "psum_ops",
            "packets", "flits", "flit_hops", "busy_cycles", "interchip_flits", "io_in_flits",
            "io_in_flit_hops", "io_out_flits")
(_EV, _AC, _MAC, _NU, _SP, _SW, _PS, _PK, _FL, _FH, _BUSY, _ICX, _IOI, _IOH, _IOO) = range(len(COUNTERS))
_CHUNK = 64  # samples per kernel call (bounds memory of encoded inputs and recordings)


# ------------------------------------------------------------------------ njit helpers

@njit(cache=True, inline="always")
def rshift_round_nb(x, k):
    """``models.intref.rshift_round`` for one int64."""
    if k == 0:
        return x
    return (x + (np.int64(1) << (k - 1))) >> k


@njit(cache=True, inline="always")
def saturate_nb(x, lo, hi):
    """``models.intref.saturate`` for one int64 with precomputed bounds."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


# ------------------------------------------------------------------------ the kernel

@njit(cache=True, parallel=True)
def _run(enc, n_groups, pop_model, pop_size, pop_off, pop_ring, ring_off, pop_proj_ptr, proj_order,
         pop_tile_ptr, tile_order, pop_bt_ptr, bt_start, bt_off, bt_vec,
         nrn_core, nrn_bias, nrn_thr, nrn_vreset, nrn_alpha, nrn_asyn, nrn_vleak, nrn_pk, nrn_hops,
         proj_shift, proj_acc_off, proj_npost, n_acc,
         tile_core, tile_kind, tile_soma, tile_ncols, tile_rows, tile_psum_flits, tile_psum_hops,
         row_src, row_delay, row_pre, row_mac, row_ncols, row_ptr, ent_acc, ent_w,
         M, F, pe, overhead, payload, reset_sub, multi, out_pop,
         rec_off, rec_s, rec_v, out, cnt, n_timed, tile_cyc, all_out,
         nrn_icx, tile_psum_icx, in_dst_ptr, in_dst_core, in_pk, in_hops, in_icx, in_flits, in_mult,
         out_val_flits, vcd_b, vcd_slot, vcd_s, vcd_v):
    T, B = enc.shape[0], enc.shape[1]
    P = pop_size.shape[0]
    N = nrn_core.shape[0]
    lo = -(np.int64(1) << (M - 1))
    hi = (np.int64(1) << (M - 1)) - 1
    ring_total = 0
    for p in range(P):
        ring_total += pop_ring[p] * pop_size[p]
    n_in = pop_size[0]
    for g in prange(n_groups):
        ring = np.zeros(ring_total, np.int64)
        acc = np.zeros(max(n_acc, 1), np.int64)
        v = np.zeros(N, np.int64)
        isyn = np.zeros(N, np.int64)
        for b in range(g, B, n_groups):
            ring[:] = 0
            v[:] = 0
            isyn[:] = 0
            for t in range(T):
                base0 = ring_off[0] + (t % pop_ring[0]) * n_in
                for i in range(n_in):
                    ring[base0 + i] = enc[t, b, i]
                    xi = enc[t, b, i]
                    if xi != 0 and in_dst_ptr[i + 1] > in_dst_ptr[i]:
                        ci = in_dst_core[in_dst_ptr[i]]
                        fm = in_flits * (xi if in_mult else 1)
                        cnt[g, t, ci, 12] += in_pk[i] * fm
                        cnt[g, t, ci, 13] += in_hops[i] * fm
                        cnt[g, t, ci, 11] += in_icx[i] * fm
                if b < n_timed:
                    for i in range(n_in):
                        all_out[b, t, i] = enc[t, b, i]
                for p in range(1, P):
                    # clear this population's accumulators
                    for qi in range(pop_proj_ptr[p], pop_proj_ptr[p + 1]):
                        q = proj_order[qi]
                        a0 = proj_acc_off[q]
                        for n in range(proj_npost[q]):
                            acc[a0 + n] = 0
                    # events
                    for ti in range(pop_tile_ptr[p], pop_tile_ptr[p + 1]):
                        k = tile_order[ti]
                        c = tile_core[k]
                        cyc = 0
                        nev = 0
                        for r in range(tile_rows[k, 0], tile_rows[k, 1]):
                            s = row_src[r]
                            d = row_delay[r]
                            if t < d:
                                continue
                            x = ring[ring_off[s] + ((t - d) % pop_ring[s]) * pop_size[s] + row_pre[r]]
                            if x == 0:
                                continue
                            nev += 1
                            e0 = row_ptr[r]
                            e1 = row_ptr[r + 1]
                            for e in range(e0, e1):
                                acc[ent_acc[e]] += ent_w[e] * x
                            if row_mac[r] != 0:
                                cnt[g, t, c, 2] += e1 - e0
                            else:
                                cnt[g, t, c, 1] += e1 - e0
                            cyc += (row_ncols[r] + pe - 1) // pe + overhead
                        cnt[g, t, c, 0] += nev
                        if tile_kind[k] == 0:
                            fire = (tile_ncols[k] + pe - 1) // pe
                            cnt[g, t, c, 10] += cyc + fire
                        else:
                            cnt[g, t, c, 10] += cyc
                            if nev > 0:
                                cs = tile_core[tile_soma[k]]
                                cnt[g, t, cs, 6] += tile_ncols[k]
                                if tile_psum_flits[k] > 0:
                                    cnt[g, t, c, 7] += 1
                                    cnt[g, t, c, 8] += tile_psum_flits[k]
                                    cnt[g, t, c, 9] += tile_psum_flits[k] * tile_psum_hops[k]
                                    cnt[g, t, c, 11] += tile_psum_flits[k] * tile_psum_icx[k]
                        if b < n_timed:
                            tile_cyc[b, t, k] = cyc if nev > 0 else -1
                    # neurons
                    model = pop_model[p]
                    off = pop_off[p]
                    wbase = ring_off[p] + (t % pop_ring[p]) * pop_size[p]
                    ro = rec_off[p]
                    for n in range(pop_size[p]):
                        gi = off + n
                        I = nrn_bias[gi]
                        for qi in range(pop_proj_ptr[p], pop_proj_ptr[p + 1]):
                            q = proj_order[qi]
                            I += rshift_round_nb(acc[proj_acc_off[q] + n], proj_shift[q])
                        for bi in range(pop_bt_ptr[p], pop_bt_ptr[p + 1]):
                            if t >= bt_start[bi]:
                                I += bt_vec[bt_off[bi] + n]
                        z = np.int64(0)
                        o = np.int64(0)
                        if model == 5:  # Threshold
                            z = np.int64(1) if I >= nrn_thr[gi] else np.int64(0)
                            o = z
                        elif model == 6:  # Identity
                            v[gi] = saturate_nb(I, lo, hi)
                            o = v[gi]
                        else:
                            vv = v[gi]
                            if model == 0 or model == 1:
                                vv = vv + I
                            elif model == 2 or model == 3:
                                vv = vv + I + rshift_round_nb(nrn_alpha[gi] * (nrn_vleak[gi] - vv), F)
                            else:  # CubaLIF
                                ii = isyn[gi]
                                ii = saturate_nb(ii + I + rshift_round_nb(-nrn_asyn[gi] * ii, F), lo, hi)
                                isyn[gi] = ii
                                vv = vv + ii + rshift_round_nb(nrn_alpha[gi] * (nrn_vleak[gi] - vv), F)
                            vv = saturate_nb(vv, lo, hi)
                            if model == 1 or model == 3:
                                o = vv
                            else:
                                th = nrn_thr[gi]
                                if vv >= th:
                                    if multi:
                                        z = vv // th
                                    else:
                                        z = np.int64(1)
                                    if reset_sub:
                                        vv = vv - z * th
                                    else:
                                        vv = nrn_vreset[gi]
                                o = z
                            v[gi] = vv
                        ring[wbase + n] = o
                        c = nrn_core[gi]
                        cnt[g, t, c, 3] += 1
                        cnt[g, t, c, 5] += 2 if model == 4 else 1
                        if o != 0:
                            if model == 0 or model == 2 or model == 4 or model == 5:
                                cnt[g, t, c, 4] += o
                            mult = o if (payload == 0 and (model == 0 or model == 2 or model == 4)) else 1
                            cnt[g, t, c, 7] += nrn_pk[gi] * mult
                            cnt[g, t, c, 8] += nrn_pk[gi] * mult
                            cnt[g, t, c, 9] += nrn_hops[gi] * mult
                            cnt[g, t, c, 11] += nrn_icx[gi] * mult
                            if p == out_pop:
                                if model == 1 or model == 3 or model == 6:
                                    cnt[g, t, c, 14] += out_val_flits
                                else:
                                    cnt[g, t, c, 14] += o if payload == 0 else 1
                        if b == vcd_b and vcd_slot[gi] >= 0:
                            vcd_s[t, vcd_slot[gi]] = o
                            vcd_v[t, vcd_slot[gi]] = v[gi]
                        if ro >= 0:
                            rec_s[t, b, ro + n] = o
                            rec_v[t, b, ro + n] = v[gi]
                        if p == out_pop:
                            out[t, b, n] = o
                        if b < n_timed:
                            all_out[b, t, gi] = o


# ------------------------------------------------------------------------ timing

class _Noc:
    """Runs :func:`hwsim.noc.simulate_noc` for the timing models, adds the inter-chip
    latency and collects packet latencies (see the module docstring)."""

    def __init__(self, prog: Program):
        chip = prog.chip
        self.prog = prog
        self.R, self.W = int(chip.noc.router_cycles), int(chip.noc.link_cycles)
        self.mc = chip.noc.multicast
        self.extra = max(0, int(chip.noc.interchip_cycles) - self.R - self.W)
        self.lat = []

    def __call__(self, inject, src_cores, dptr, dcores, flits):
        from .noc import Packets, simulate_noc

        prog = self.prog
        pk = Packets.from_arrays(inject, prog.core_xy[src_cores], dptr, prog.core_xy[dcores], flits)
        res = simulate_noc(pk, prog.grid_w, prog.grid_h, self.R, self.W, multicast=self.mc)
        dl = res.delivery_cycle
        if self.extra:
            own = np.repeat(np.arange(len(src_cores)), np.diff(dptr))
            cross = np.abs(prog.core_chip[dcores] - prog.core_chip[np.asarray(src_cores)[own]]).sum(axis=1)
            dl = dl + cross * self.extra
            self.lat.append(dl - np.asarray(inject)[own])
        else:
            self.lat.append(res.latency_cycles)
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
    dc = np.concatenate([prog.nrn_dst_core[prog.nrn_dst_ptr[g]:prog.nrn_dst_ptr[g + 1]] for g in gids])
    fl = np.ones(gids.size, np.int64)
    if prog.payload_bits == 0:
        pm = prog.pop_model[np.searchsorted(prog.pop_off, gids, side="right") - 1]
        multi = (pm == 0) | (pm == 2) | (pm == 4)
        fl = np.where(multi, np.maximum(np.abs(out_bt[gids]), 1), 1)
    return gids, prog.nrn_core[gids], dptr, dc, fl


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


def _finish(prog, mode, step_cycles, core_busy, noc, overruns, depth):
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
        "packet_latency_hist": noc.hist(), "overruns": int(overruns),
    }


def _timing(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None, tl_sample: int = 0) -> dict:
    """Sync-mode cycles of the timed samples (see the module docstring)."""
    chip = prog.chip
    fixed = chip.timing.step_cycles if chip.timing.step_cycles != "dynamic" else None
    barrier = int(chip.timing.barrier_cycles)
    pe = prog.pe_width
    Bt, T = tile_cyc.shape[:2]
    C, P = prog.n_cores, prog.n_pops
    step_cycles = np.zeros((Bt, T), np.int64)
    core_busy = np.zeros((Bt, C), np.int64)
    overruns = 0
    noc = _Noc(prog)
    fire_tile = (prog.tile_ncols + pe - 1) // pe
    dsrc = [sorted({int(prog.proj_src[j]) for j in range(prog.proj_src.size)
                    if prog.proj_dst[j] == p and prog.proj_delay[j] == 0}) for p in range(P)]
    ptiles = [prog.tile_order[prog.pop_tile_ptr[p]:prog.pop_tile_ptr[p + 1]] for p in range(P)]

    for b in range(Bt):
        tl = timeline if (timeline is not None and b == tl_sample) else None
        for t in range(T):
            done = np.zeros(P, np.int64)
            core_free = np.zeros(C, np.int64)
            for p in range(1, P):
                ready = max((int(done[s]) for s in dsrc[p]), default=0)
                tk = ptiles[p]
                if tk.size == 0:
                    continue
                cyc = np.maximum(tile_cyc[b, t, tk], 0)
                cores = prog.tile_core[tk]
                integ = np.zeros(C, np.int64)
                np.add.at(integ, cores, cyc)
                used = np.zeros(C, bool)
                used[cores] = True
                start = np.where(used, np.maximum(core_free, ready), 0)
                end_int = start + integ
                # partial sums
                psum_ready = np.zeros(C, np.int64)
                sel = tk[(prog.tile_kind[tk] == 1) & (tile_cyc[b, t, tk] >= 0) & (prog.tile_psum_flits[tk] > 0)]
                if sel.size:
                    src = prog.tile_core[sel]
                    dst = prog.tile_core[prog.tile_soma[sel]]
                    dptr = np.arange(sel.size + 1)
                    dl = noc(end_int[src], src, dptr, dst, prog.tile_psum_flits[sel])
                    np.maximum.at(psum_ready, dst, dl)
                    if tl is not None:
                        tl.packets(t, "psum", src, dptr, dst, end_int[src], dl, prog.tile_psum_flits[sel])
                soma = tk[prog.tile_kind[tk] == 0]
                fire = np.zeros(C, np.int64)
                np.add.at(fire, prog.tile_core[soma], fire_tile[soma])
                fstart = np.maximum(end_int, psum_ready)
                fend = fstart + fire
                core_busy[b] += integ + fire
                core_free = np.where(used, fend, core_free)
                fin = int(fend[used].max(initial=ready))
                if tl is not None:
                    for c in np.flatnonzero(used):
                        tl.phase(c, t, "integrate", start[c], end_int[c])
                        tl.phase(c, t, "psum wait", end_int[c], fstart[c])
                        tl.phase(c, t, "fire", fstart[c], fend[c])
                # spikes
                sp = _spike_packets(prog, all_out[b, t], int(prog.pop_off[p]), int(prog.pop_off[p + 1]))
                if sp is not None:
                    gids, src, dptr, dc, fl = sp
                    dl = noc(fend[src], src, dptr, dc, fl)
                    fin = max(fin, int(dl.max()))
                    if tl is not None:
                        tl.packets(t, "spike", src, dptr, dc, fend[src], dl, fl)
                done[p] = fin
            busy = int(done.max(initial=0))
            if fixed is not None:
                overruns += int(busy > fixed)
                busy = max(busy, int(fixed))
            step_cycles[b, t] = busy + barrier
            if tl is not None:
                tl.step(t, busy + barrier)
    return _finish(prog, "sync", step_cycles, core_busy, noc, overruns, 0)


def _timing_pipelined(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None,
                      tl_sample: int = 0) -> dict:
    """Pipelined-mode cycles of the timed samples (see the module docstring)."""
    chip = prog.chip
    fixed = chip.timing.step_cycles if chip.timing.step_cycles != "dynamic" else None
    barrier = int(chip.timing.barrier_cycles)
    pe = prog.pe_width
    Bt, T = tile_cyc.shape[:2]
    C, K = prog.n_cores, prog.n_tiles
    step_cycles = np.zeros((Bt, T), np.int64)
    core_busy = np.zeros((Bt, C), np.int64)
    overruns = 0
    noc = _Noc(prog)
    fire_tile = (prog.tile_ncols + pe - 1) // pe
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
                for c in np.flatnonzero(used):
                    tl.phase(c, t, "integrate", 0, integ[c])
                    tl.phase(c, t, "psum wait", integ[c], fstart[c])
                    tl.phase(c, t, "fire", fstart[c], fend[c])
            sp = _spike_packets(prog, all_out[b, t], g1, int(prog.pop_off[-1]))
            if sp is not None:
                gids, src, dptr, dc, fl = sp
                dl = noc(fend[src], src, dptr, dc, fl)
                busy = max(busy, int(dl.max()))
                if tl is not None:
                    tl.packets(t, "spike", src, dptr, dc, fend[src], dl, fl)
            if fixed is not None:
                overruns += int(busy > fixed)
                busy = max(busy, int(fixed))
            step_cycles[b, t] = busy + barrier
            if tl is not None:
                tl.step(t, busy + barrier)
    return _finish(prog, "pipelined", step_cycles, core_busy, noc, overruns, depth)


# ------------------------------------------------------------------------ entry point

def simulate(program_or_mapping, inputs, *, reset: str = "subtract", spikes: str = "binary", record=None,
             timing: bool = True, timing_samples: int = 1, input_scale: float | None = None,
             mode: str | None = None, trace=None, aer=None, vcd=None, chrome=None) -> RunResult:
    """Run the compiled chip on ``inputs`` (T, B, *input_shape).

    ``record``: None, "all" or population names (spikes and membranes, (T, B, n) int64).
    ``timing``: cycle timing of the first ``timing_samples`` samples (the NoC is
    simulated per population and step, so timing costs far more than the functional
    run); counters always cover every sample.
    ``mode``: "sync" or "pipelined" (default: the chip's ``timing.mode``; ignored for
    a compiled :class:`Program`, which fixes it); see the module docstring.
    ``trace``: a :class:`hwsim.traces.TraceConfig` (or a dict of its fields); ``aer``,
    ``vcd``, ``chrome``: shortcuts for its output paths. Off by default.
    """
    from .traces import AerWriter, ChromeWriter, TraceConfig, _Offset, vcd_selection, write_vcd

    _check_options(reset, spikes)
    if mode is not None and mode not in ("sync", "pipelined"):
        raise SimulationError(f"mode must be 'sync' or 'pipelined', got {mode!r}")
    if isinstance(program_or_mapping, Program):
        prog = program_or_mapping
        if mode is not None and mode != prog.mode:
            raise SimulationError(f"mode {mode!r}: the program was compiled for {prog.mode!r}; "
                                  f"compile(mapping, mode={mode!r}) or pass the mapping")
    else:
        prog = compile_program(program_or_mapping, mode=mode)
    net = prog.net
    if isinstance(trace, dict):
        trace = TraceConfig(**trace)
    if trace is None:
        trace = TraceConfig()
    if not isinstance(trace, TraceConfig):
        raise SimulationError(f"trace must be a TraceConfig, a dict or None, got {type(trace).__name__}")
    if aer is not None or vcd is not None or chrome is not None:
        from dataclasses import replace
        trace = replace(trace, aer=aer if aer is not None else trace.aer, vcd=vcd if vcd is not None else trace.vcd,
                        chrome=chrome if chrome is not None else trace.chrome)
    x = np.asarray(inputs)
    if x.ndim < 2 or x.shape[0] < 1:
        raise SimulationError(f"inputs must be (T, B, *{tuple(net.input.shape)}) with T >= 1 steps, "
                              f"got shape {x.shape}")
    if x.shape[1] < 1:
        raise SimulationError("inputs hold no samples (B = 0)")
    T, B = int(x.shape[0]), int(x.shape[1])
    names = prog.pop_names
    if record is None:
        want = []
    elif record == "all":
        want = list(names[1:])
    else:
        want = list(record)
        bad = [r for r in want if r not in names[1:]]
        if bad:
            raise SimulationError(f"record: unknown population(s) {bad}; known: {names[1:]}")
    rec_off = np.full(prog.n_pops, -1, np.int64)
    o = 0
    for nme in want:
        i = names.index(nme)
        rec_off[i] = o
        o += int(prog.pop_size[i])
    R = o
    n_out = int(prog.pop_size[prog.output_pop])
    n_timed = min(int(timing_samples), B) if timing else 0
    N = int(prog.pop_off[-1])
    # ---- traces: validate before running
    if trace.chrome is not None and not 0 <= int(trace.timeline_sample) < n_timed:
        raise SimulationError(f"trace chrome: needs timing=True and timeline_sample ({trace.timeline_sample}) < "
                              f"timing_samples ({n_timed} timed)")
    vcd_gids = np.zeros(0, np.int64)
    vcd_b = -1
    if trace.vcd is not None:
        if not 0 <= int(trace.vcd_sample) < B:
            raise SimulationError(f"trace vcd_sample {trace.vcd_sample} out of range 0..{B - 1}")
        vcd_gids = vcd_selection(trace, prog)
        vcd_b = int(trace.vcd_sample)
    vcd_slot = np.full(N, -1, np.int64)
    vcd_slot[vcd_gids] = np.arange(vcd_gids.size)
    vcd_s = np.zeros((T, max(vcd_gids.size, 1)), np.int64)
    vcd_v = np.zeros((T, max(vcd_gids.size, 1)), np.int64)
    chunk = _CHUNK
    if trace.aer is not None:
        chunk = int(max(1, min(_CHUNK, int(trace.chunk_bytes) // max(T * N * 8, 1))))
    in_meta = net.metadata.get("quant", {})
    in_flits = 1 if prog.input_spiking else -(-int(in_meta.get("input_bits", 8)) // max(prog.flit_bits, 1))
    in_mult = bool(prog.input_spiking and prog.payload_bits == 0)
    out_val_flits = -(-int(prog.membrane_bits) // max(prog.flit_bits, 1))

    out = np.zeros((T, B, n_out), np.int64)
    rec_s = np.zeros((T, B, R), np.int64)
    rec_v = np.zeros((T, B, R), np.int64)
    counters = np.zeros((T, prog.n_cores, len(COUNTERS)), np.int64)
    tile_cyc = np.zeros((n_timed, T, max(prog.n_tiles, 1)), np.int64)
    all_out = np.zeros((n_timed, T, N), np.int64)
    writers = []
    try:
        aer_w = None
        if trace.aer is not None:
            aer_w = AerWriter(trace.aer, names, prog.pop_off, prog.nrn_core, trace.aer_include_input)
            writers.append(aer_w)
        import numba
        for b0 in range(0, B, chunk):
            b1 = min(B, b0 + chunk)
            enc = np.ascontiguousarray(encode_input(net, x[:, b0:b1], input_scale), dtype=np.int64)
            nb = b1 - b0
            G = max(1, min(nb, numba.get_num_threads()))
            cnt = np.zeros((G, T, prog.n_cores, len(COUNTERS)), np.int64)
            o_c = np.zeros((T, nb, n_out), np.int64)
            rs_c = np.zeros((T, nb, R), np.int64)
            rv_c = np.zeros((T, nb, R), np.int64)
            nt = max(0, min(n_timed - b0, nb))
            nr = nb if aer_w is not None else nt
            tc = np.zeros((nr, T, max(prog.n_tiles, 1)), np.int64)
            ao = np.zeros((nr, T, N), np.int64)
            vb = vcd_b - b0 if b0 <= vcd_b < b1 else -1
            _run(enc, G, prog.pop_model, prog.pop_size, prog.pop_off, prog.pop_ring, prog.ring_off,
                 prog.pop_proj_ptr, prog.proj_order, prog.pop_tile_ptr, prog.tile_order, prog.pop_bt_ptr,
                 prog.bt_start, prog.bt_off, prog.bt_vec, prog.nrn_core, prog.nrn_bias, prog.nrn_thr,
                 prog.nrn_vreset, prog.nrn_alpha, prog.nrn_asyn, prog.nrn_vleak, prog.nrn_pk, prog.nrn_hops,
                 prog.proj_shift, prog.proj_acc_off, prog.proj_npost, prog.n_acc,
                 prog.tile_core, prog.tile_kind, prog.tile_soma, prog.tile_ncols, prog.tile_row_ptr,
                 prog.tile_psum_flits, prog.tile_psum_hops, prog.row_src, prog.row_delay, prog.row_pre,
                 prog.row_mac, prog.row_ncols, prog.row_ptr, prog.ent_acc, prog.ent_w,
                 prog.membrane_bits, prog.leak_frac_bits, prog.pe_width, prog.event_overhead, prog.payload_bits,
                 reset == "subtract", spikes == "multi", prog.output_pop,
                 rec_off, rs_c, rv_c, o_c, cnt, nr, tc, ao,
                 prog.nrn_icx, prog.tile_psum_icx, prog.in_dst_ptr, prog.in_dst_core, prog.in_pk, prog.in_hops,
                 prog.in_icx, in_flits, in_mult, out_val_flits, vb, vcd_slot, vcd_s, vcd_v)
            out[:, b0:b1], rec_s[:, b0:b1], rec_v[:, b0:b1] = o_c, rs_c, rv_c
            counters += cnt.sum(axis=0)
            if nt:
                tile_cyc[b0:b0 + nt] = tc[:nt]
                all_out[b0:b0 + nt] = ao[:nt]
            if aer_w is not None:
                aer_w.add(b0, ao)
            del tc, ao
        spikes_d = {nme: rec_s[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
                    for nme in want}
        memb_d = {nme: rec_v[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
                  for nme in want}
        core_pop = np.full(prog.n_cores, -1, np.int64)
        for k in range(prog.n_tiles):
            core_pop[prog.tile_core[k]] = prog.tile_pop[k]
        core_pop_names = [names[i] if i >= 0 else "" for i in core_pop]
        tim = None
        if n_timed:
            tl = None
            if trace.chrome is not None:
                pl_grid_w = int(prog.core_chip[:, 0].max(initial=0)) + 1
                cw = ChromeWriter(trace.chrome, prog.chip.timing.clock_hz, prog.core_chip, pl_grid_w,
                                  core_pop_names, prog.mode)
                writers.append(cw)
                tl = _Offset(cw)
            fn = _timing_pipelined if prog.pipelined else _timing
            tim = fn(prog, tile_cyc, all_out, tl, int(trace.timeline_sample))
        paths = {}
        if trace.vcd is not None:
            paths["vcd"] = str(write_vcd(trace.vcd, prog, vcd_gids, vcd_s[:, :vcd_gids.size],
                                         vcd_v[:, :vcd_gids.size], vcd_b))
        for w in writers:
            paths["aer" if isinstance(w, AerWriter) else "chrome"] = str(w.close())
        writers = []
    except BaseException:
        for w in writers:
            w.abort()
        raise
    out_shape = tuple(net.pop[net.output].shape)
    return RunResult(
        output=out.reshape((T, B) + out_shape), spikes=spikes_d, membrane=memb_d,
        counters=counters, counter_names=list(COUNTERS),
        core_population=core_pop_names,
        timing=tim, meta={"reset": reset, "spikes": spikes, "chip": prog.chip.name if prog.chip else "",
                          "weight_bits": prog.weight_bits, "membrane_bits": prog.membrane_bits,
                          "clock_hz": float(prog.chip.timing.clock_hz) if prog.chip else 0.0,
                          "steps": T, "samples": B, "mode": prog.mode, "traces": paths})
