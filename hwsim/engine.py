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
Graph input events and output spikes are not modelled as NoC traffic (I/O port).
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
            "packets", "flits", "flit_hops", "busy_cycles")
_EV, _AC, _MAC, _NU, _SP, _SW, _PS, _PK, _FL, _FH, _BUSY = range(len(COUNTERS))
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
         rec_off, rec_s, rec_v, out, cnt, n_timed, tile_cyc, all_out):
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
                        if ro >= 0:
                            rec_s[t, b, ro + n] = o
                            rec_v[t, b, ro + n] = v[gi]
                        if p == out_pop:
                            out[t, b, n] = o
                        if b < n_timed:
                            all_out[b, t, gi] = o


# ------------------------------------------------------------------------ timing

def _timing(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray) -> dict:
    """Sync-mode cycles of the timed samples (see the module docstring)."""
    from .noc import Packets, simulate_noc

    chip = prog.chip
    R, W = int(chip.noc.router_cycles), int(chip.noc.link_cycles)
    mc = chip.noc.multicast
    fixed = chip.timing.step_cycles if chip.timing.step_cycles != "dynamic" else None
    barrier = int(chip.timing.barrier_cycles)
    pe = prog.pe_width
    Bt, T = tile_cyc.shape[:2]
    C, P = prog.n_cores, prog.n_pops
    gw, gh = prog.grid_w, prog.grid_h
    step_cycles = np.zeros((Bt, T), np.int64)
    core_busy = np.zeros((Bt, C), np.int64)
    overruns = 0
    lat = []
    fire_tile = (prog.tile_ncols + pe - 1) // pe
    dsrc = [sorted({int(prog.proj_src[j]) for j in range(prog.proj_src.size)
                    if prog.proj_dst[j] == p and prog.proj_delay[j] == 0}) for p in range(P)]
    ptiles = [prog.tile_order[prog.pop_tile_ptr[p]:prog.pop_tile_ptr[p + 1]] for p in range(P)]

    def run(inject, src_cores, dptr, dcores, flits):
        pk = Packets.from_arrays(inject, prog.core_xy[src_cores], dptr, prog.core_xy[dcores], flits)
        res = simulate_noc(pk, gw, gh, R, W, multicast=mc)
        lat.append(res.latency_cycles)
        return res.delivery_cycle

    for b in range(Bt):
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
                    dl = run(end_int[src], src, np.arange(sel.size + 1), dst, prog.tile_psum_flits[sel])
                    np.maximum.at(psum_ready, dst, dl)
                soma = tk[prog.tile_kind[tk] == 0]
                fire = np.zeros(C, np.int64)
                np.add.at(fire, prog.tile_core[soma], fire_tile[soma])
                fstart = np.maximum(end_int, psum_ready)
                fend = fstart + fire
                core_busy[b] += integ + fire
                core_free = np.where(used, fend, core_free)
                fin = int(fend[used].max(initial=ready))
                # spikes
                g0, g1 = prog.pop_off[p], prog.pop_off[p + 1]
                o = all_out[b, t, g0:g1]
                gids = g0 + np.flatnonzero(o)
                ndst = prog.nrn_dst_ptr[gids + 1] - prog.nrn_dst_ptr[gids]
                gids = gids[ndst > 0]
                if gids.size:
                    ndst = prog.nrn_dst_ptr[gids + 1] - prog.nrn_dst_ptr[gids]
                    dptr = np.concatenate([[0], np.cumsum(ndst)])
                    dc = np.concatenate([prog.nrn_dst_core[prog.nrn_dst_ptr[g]:prog.nrn_dst_ptr[g + 1]]
                                         for g in gids])
                    src = prog.nrn_core[gids]
                    fl = np.ones(gids.size, np.int64)
                    if prog.payload_bits == 0 and prog.pop_model[p] in (0, 2, 4):
                        fl = np.maximum(np.abs(all_out[b, t, gids]), 1)
                    dl = run(fend[src], src, dptr, dc, fl)
                    fin = max(fin, int(dl.max()))
                done[p] = fin
            busy = int(done.max(initial=0))
            if fixed is not None:
                overruns += int(busy > fixed)
                busy = max(busy, int(fixed))
            step_cycles[b, t] = busy + barrier
    lat = np.concatenate(lat) if lat else np.zeros(0, np.int64)
    hist = np.bincount(lat) if lat.size else np.zeros(0, np.int64)
    total = step_cycles.sum(axis=1)
    return {
        "mode": "sync", "samples": int(Bt), "step_cycles": step_cycles, "core_busy_cycles": core_busy,
        "total_cycles": total, "latency_cycles": total,
        "latency_us": total / float(chip.timing.clock_hz) * 1e6,
        "packet_latency_hist": hist.astype(np.int64), "overruns": int(overruns),
    }


# ------------------------------------------------------------------------ entry point

def simulate(program_or_mapping, inputs, *, reset: str = "subtract", spikes: str = "binary", record=None,
             timing: bool = True, timing_samples: int = 1, input_scale: float | None = None) -> RunResult:
    """Run the compiled chip on ``inputs`` (T, B, *input_shape).

    ``record``: None, "all" or population names (spikes and membranes, (T, B, n) int64).
    ``timing``: sync-mode cycle timing of the first ``timing_samples`` samples (the NoC
    is simulated per population and step, so timing costs far more than the functional
    run); counters always cover every sample.
    """
    _check_options(reset, spikes)
    prog = program_or_mapping if isinstance(program_or_mapping, Program) else compile_program(program_or_mapping)
    net = prog.net
    if timing and prog.chip.timing.mode != "sync":
        raise SimulationError(f"timing: mode {prog.chip.timing.mode!r} is not implemented (only 'sync'); "
                              f"pass timing=False")
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
    out = np.zeros((T, B, n_out), np.int64)
    rec_s = np.zeros((T, B, R), np.int64)
    rec_v = np.zeros((T, B, R), np.int64)
    counters = np.zeros((T, prog.n_cores, len(COUNTERS)), np.int64)
    N = int(prog.pop_off[-1])
    tile_cyc = np.zeros((n_timed, T, max(prog.n_tiles, 1)), np.int64)
    all_out = np.zeros((n_timed, T, N), np.int64)
    import numba
    for b0 in range(0, B, _CHUNK):
        b1 = min(B, b0 + _CHUNK)
        enc = np.ascontiguousarray(encode_input(net, x[:, b0:b1], input_scale), dtype=np.int64)
        nb = b1 - b0
        G = max(1, min(nb, numba.get_num_threads()))
        cnt = np.zeros((G, T, prog.n_cores, len(COUNTERS)), np.int64)
        o_c = np.zeros((T, nb, n_out), np.int64)
        rs_c = np.zeros((T, nb, R), np.int64)
        rv_c = np.zeros((T, nb, R), np.int64)
        nt = max(0, min(n_timed - b0, nb))
        tc = np.zeros((nt, T, max(prog.n_tiles, 1)), np.int64)
        ao = np.zeros((nt, T, N), np.int64)
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
             rec_off, rs_c, rv_c, o_c, cnt, nt, tc, ao)
        out[:, b0:b1], rec_s[:, b0:b1], rec_v[:, b0:b1] = o_c, rs_c, rv_c
        counters += cnt.sum(axis=0)
        if nt:
            tile_cyc[b0:b0 + nt] = tc
            all_out[b0:b0 + nt] = ao
    spikes_d = {nme: rec_s[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
                for nme in want}
    memb_d = {nme: rec_v[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
              for nme in want}
    tim = _timing(prog, tile_cyc, all_out) if n_timed else None
    core_pop = np.full(prog.n_cores, -1, np.int64)
    for k in range(prog.n_tiles):
        core_pop[prog.tile_core[k]] = prog.tile_pop[k]
    out_shape = tuple(net.pop[net.output].shape)
    return RunResult(
        output=out.reshape((T, B) + out_shape), spikes=spikes_d, membrane=memb_d,
        counters=counters, counter_names=list(COUNTERS),
        core_population=[names[i] if i >= 0 else "" for i in core_pop],
        timing=tim, meta={"reset": reset, "spikes": spikes, "chip": prog.chip.name if prog.chip else "",
                          "weight_bits": prog.weight_bits, "membrane_bits": prog.membrane_bits,
                          "clock_hz": float(prog.chip.timing.clock_hz) if prog.chip else 0.0,
                          "steps": T, "samples": B})
