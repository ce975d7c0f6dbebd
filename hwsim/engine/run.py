"""The entry point :func:`simulate`: options and inputs checked, kernel tables fetched,
the kernel run in chunks of samples on threads, counters and timing gathered into a
:class:`~hwsim.result.RunResult`; traces go through one :class:`traces.TraceSession`.
"""

from __future__ import annotations

import weakref

import numba
import numpy as np

from models import limits
from models.errors import SimulationError, SizeLimitError
from models import neurons
from models.reference import check_options, check_v_min

from ..program import Program
from ..program import compile as compile_program
from ..result import RunResult
from traces import TraceConfig, TraceSession

from .build import kernel_inputs, work_layout
from .inputs import input_array
from .kernel import run_threads
from .layout import (COUNTERS, CNT_BUSY_CYCLES, CNT_NEURON_UPDATES, CNT_STATE_WORDS, HSTAT, HSTAT_DELIVERIES, HSTAT_LAT_MAX,
                     HSTAT_NOC_CALLS, HSTAT_OVERRUNS, HSTAT_TRAIN_CALLS, Inputs, Outputs, Packed, TimingOut,
                     VcdProbe)
from .timing_plan import fire_cycles
from .timing_ref import pipeline_depth, timing_pipelined, timing_result, timing_sync
from .timing_router_ref import timing_wormhole

__all__ = ["simulate", "samples_per_call"]

_CHUNK = 64  # samples per kernel call with an AER trace (bounds the memory of its recordings)
_HIST_CYCLES = 1 << 17  # packet-latency histogram bins per thread (1 MiB; grown and re-run when exceeded)
# per program, the histogram size a run of it needed: a later call starts there instead
# of running again (VGG-16 CIFAR's latencies reach 31,864 cycles; its first timed call
# ran twice with the old 16,384 bins)
_HIST_NEEDED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def simulate(program_or_mapping, inputs, *, reset: str = "subtract", spikes: str = "binary", v_min=None,
             record=None, timing: bool = True, timing_samples: int = 1, input_scale: float | None = None,
             mode: str | None = None, trace=None, aer=None, vcd=None, chrome=None,
             max_bytes: int | None = None) -> RunResult:
    """Run the compiled chip on ``inputs`` (T, B, *input_shape); a weight-stationary mapping
    (``core.conv_mapping: weight_stationary``) runs on :func:`hwsim.stationary.simulate_stationary`.

    ``reset``, ``spikes``, ``v_min``: the simulation options of :mod:`models.reference`
    (``v_min``: the membrane floor after spike and reset, None, a number <= 0 in float
    units of ``v`` or ``"-threshold"``; its integers are those of
    :func:`models.intref.int_v_min`).
    ``record``: None, "all" or population names (spikes and membranes, (T, B, n) int64).
    ``timing``: cycle timing of the first ``timing_samples`` samples (the NoC is
    simulated per population and step, so timing costs far more than the functional
    run); counters always cover every sample.
    ``mode``: "sync" or "pipelined" (default: the chip's ``timing.mode``; ignored for
    a compiled :class:`Program`, which fixes it); see :mod:`hwsim.engine`.
    ``trace``: a :class:`traces.TraceConfig` (or a dict of its fields); ``aer``,
    ``vcd``, ``chrome``: shortcuts for its output paths. Off by default.
    ``max_bytes``: memory budget of the run (default :func:`models.limits.max_bytes`, a
    quarter of the machine's memory): the kernel tables, each thread's scratch, the
    results (outputs, recordings) and the per-chunk scratch stay under it. Threads are
    dropped until their scratch fits and samples run in chunks sized to what is left
    (:func:`_run_plan`); a run whose tables and results alone exceed the budget raises
    :class:`models.errors.SizeLimitError` before any work.
    """
    if not isinstance(program_or_mapping, Program) and \
            getattr(getattr(getattr(program_or_mapping, "chip", None), "core", None), "conv_mapping", "") \
            == "weight_stationary":
        from ..stationary import simulate_stationary

        return simulate_stationary(program_or_mapping, inputs, reset=reset, spikes=spikes, v_min=v_min,
                                   record=record, timing=timing, timing_samples=timing_samples,
                                   input_scale=input_scale, mode=mode, trace=trace, aer=aer, vcd=vcd,
                                   chrome=chrome, max_bytes=max_bytes)
    check_options(reset, spikes)
    v_min = check_v_min(v_min)
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
    if aer is not None or vcd is not None or chrome is not None:
        from dataclasses import replace

        base = TraceConfig(**trace) if isinstance(trace, dict) else (trace or TraceConfig())
        if not isinstance(base, TraceConfig):
            raise SimulationError(f"trace must be a TraceConfig, a dict or None, got {type(base).__name__}")
        trace = replace(base, aer=aer if aer is not None else base.aer, vcd=vcd if vcd is not None else base.vcd,
                        chrome=chrome if chrome is not None else base.chrome)
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
    # traces: checked before running (a bad request fails before any work or file)
    session = TraceSession(trace, prog, T=T, B=B, n_timed=n_timed, core_population=_core_population(prog))
    xk, held, scale, top = input_array(net, x, input_scale)
    # a Chrome timeline or a VCD needs the step-by-step Python timing model (its
    # phases); otherwise the kernel times the samples itself
    py_timing = bool(n_timed and session.needs_timeline)
    kin = _tables(prog, reset, spikes, v_min, bool(n_timed and not py_timing))
    # neuron updates and state words do not depend on the data: every neuron of every
    # population updates once per step and sample
    g1 = int(prog.pop_off[1])
    nmod = prog.pop_model[np.searchsorted(prog.pop_off, np.arange(g1, N), side="right") - 1]
    nu_core = np.bincount(prog.nrn_core[g1:], minlength=prog.n_cores).astype(np.int64)
    sw_core = np.bincount(prog.nrn_core[g1:], weights=neurons.per_code("state_words")[nmod],
                          minlength=prog.n_cores).astype(np.int64)
    hist_cycles = max(_HIST_CYCLES, _HIST_NEEDED.get(prog, 0))
    while True:
        try:
            res = _simulate_run(prog, kin, xk, held, scale, top, T, B, R, rec_off, n_out, n_timed, py_timing,
                                session, hist_cycles, max_bytes, _input_flits(prog))
            break
        except _LatencyOverflow as e:  # a packet latency beyond the histogram: run again with room
            hist_cycles = _HIST_NEEDED[prog] = max(e.needed, 2 * hist_cycles)
    out, rec_s, rec_v, counters, tim, paths = res
    counters[:, :, CNT_NEURON_UPDATES] += B * nu_core[:prog.n_cores]
    counters[:, :, CNT_STATE_WORDS] += B * sw_core[:prog.n_cores]
    counters[:, :, CNT_BUSY_CYCLES] += B * fire_cycles(prog)
    spikes_d = {nme: rec_s[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
                for nme in want}
    memb_d = {nme: rec_v[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
              for nme in want}
    out_shape = tuple(net.pop[net.output].shape)
    return RunResult(
        output=out.reshape((T, B) + out_shape), spikes=spikes_d, membrane=memb_d,
        counters=counters, counter_names=list(COUNTERS),
        core_population=_core_population(prog),
        timing=tim, meta={"reset": reset, "spikes": spikes, "v_min": v_min, "chip": prog.chip.name if prog.chip else "",
                          "weight_bits": prog.weight_bits, "membrane_bits": prog.membrane_bits,
                          "clock_hz": float(prog.chip.timing.clock_hz) if prog.chip else 0.0,
                          "steps": T, "samples": B, "mode": prog.mode, "traces": paths})


def _input_flits(prog: Program) -> tuple[int, bool]:
    """Flits of one input event (1 for a spike, else ``ceil(input_bits / flit_bits)``) and
    whether a spiking input's count multiplies them (no payload: one packet per spike)."""
    in_meta = prog.net.metadata.get("quant", {})
    in_flits = 1 if prog.input_spiking else -(-int(in_meta.get("input_bits", 8)) // max(prog.flit_bits, 1))
    return in_flits, bool(prog.input_spiking and prog.payload_bits == 0)


def _tables(prog: Program, reset: str, spikes: str, v_min, timed: bool):
    """The kernel tables of a run (:func:`hwsim.engine.build.kernel_inputs`, cached per program and key)."""
    in_flits, in_mult = _input_flits(prog)
    out_val_flits = -(-int(prog.membrane_bits) // max(prog.flit_bits, 1))
    return kernel_inputs(prog, reset, spikes, v_min, in_flits, in_mult, out_val_flits, timed)


def samples_per_call(prog: Program, T: int, *, record=None, reset: str = "subtract", spikes: str = "binary",
                     v_min=None, timing: bool = False, max_bytes: int | None = None) -> int:
    """How many samples of ``T`` steps one :func:`simulate` call on ``prog`` can take under
    the memory budget ``max_bytes`` (default :func:`models.limits.max_bytes`):
    ``(budget - tables - per_thread) // per_sample`` with the kernel tables (built here
    once, then cached for the run), one thread's scratch and counters, and
    ``per_sample = 8 T (n_out + 2 R) + 8 T n_in`` bytes (outputs, ``R`` recorded neurons'
    spikes and membranes, the encoded input), at least 1. A caller running many
    samples calls :func:`simulate` on chunks of this size and merges the results
    (``snnchip run``), so its memory is bounded by the budget, not by the sample count.
    Raises :class:`SizeLimitError` when the tables and one thread do not fit."""
    v_min = check_v_min(v_min)
    budget = limits.max_bytes() if max_bytes is None else int(max_bytes)
    names = prog.pop_names
    want = list(names[1:]) if record == "all" else list(record or [])
    R = sum(int(prog.pop_size[names.index(n)]) for n in want if n in names)
    n_out, n_in = int(prog.pop_size[prog.output_pop]), int(prog.pop_size[0])
    kin = _tables(prog, reset, spikes, v_min, bool(timing))
    kb, ko = kin[0], kin[1]
    wo = work_layout(prog, T, kb, ko)
    C = max(prog.n_cores, 1)
    tables = sum(int(a.nbytes) for a in kin)
    per_thread = 8 * (int(wo[-1]) + T * C * len(COUNTERS) + int(prog.grid_w) * int(prog.grid_h) * 4 + _HIST_CYCLES)
    per_sample = 8 * T * (n_out + 2 * R + n_in)
    room = budget - tables - per_thread
    if room < per_sample:
        raise SizeLimitError(
            f"simulate: kernel tables {limits.format_bytes(tables)} and one thread's scratch "
            f"{limits.format_bytes(per_thread)} leave no room for one sample ({limits.format_bytes(per_sample)}) "
            f"in the memory budget of {limits.format_bytes(budget)}; raise it (--memory-gb, max_bytes=, "
            f"SNNCHIP_MAX_BYTES)")
    return int(room // per_sample)


class _LatencyOverflow(Exception):
    """A packet latency did not fit the kernel's histogram (``needed`` bins)."""

    def __init__(self, needed: int):
        super().__init__(needed)
        self.needed = needed


def _core_population(prog: Program) -> list:
    core_pop = np.full(prog.n_cores, -1, np.int64)
    for k in range(prog.n_tiles):
        core_pop[prog.tile_core[k]] = prog.tile_pop[k]
    return [prog.pop_names[i] if i >= 0 else "" for i in core_pop]


def _run_plan(prog, kin, wo, T: int, B: int, R: int, n_out: int, n_py: int, aer: bool, max_bytes, chunk_max: int):
    """Threads and samples per kernel call that keep the run under the budget:

    ``fixed = tables + n_out, R recordings, Python-timing recordings of all B samples``
    (the results), ``per_thread = scratch + counters`` (one copy per thread),
    ``per_sample = 2 T N`` int64 with an AER trace (the chunk's recordings), else 0;
    ``threads = min(numba threads, (budget - fixed) // per_thread)`` (at least 1) and
    ``chunk = min(chunk_max, (budget - fixed - threads * per_thread) // per_sample)``.
    Raises :class:`SizeLimitError` when ``fixed + per_thread + per_sample`` (one thread,
    one sample) exceeds the budget."""
    budget = limits.max_bytes() if max_bytes is None else int(max_bytes)
    N, K, C = int(prog.pop_off[-1]), max(prog.n_tiles, 1), max(prog.n_cores, 1)
    tables = sum(int(a.nbytes) for a in kin)
    results = 8 * T * B * (n_out + 2 * R) + 8 * n_py * T * (K + N)
    fixed = tables + results
    per_thread = 8 * (int(wo[-1]) + T * C * len(COUNTERS) + int(prog.grid_w) * int(prog.grid_h) * 4 + _HIST_CYCLES)
    per_sample = 16 * T * N if aer else 0
    need = fixed + per_thread + per_sample
    if need > budget:
        raise SizeLimitError(
            f"simulate: the run needs at least {limits.format_bytes(need)} (kernel tables "
            f"{limits.format_bytes(tables)}, outputs and recordings of {B} samples {limits.format_bytes(results)}, "
            f"one thread's scratch {limits.format_bytes(per_thread + per_sample)}), more than the memory budget of "
            f"{limits.format_bytes(budget)}; record fewer populations, run fewer samples per call or raise the "
            f"budget (max_bytes=, SNNCHIP_MAX_BYTES)")
    threads = int(max(1, min(numba.get_num_threads(), (budget - fixed - per_sample) // per_thread)))
    chunk = int(chunk_max)
    if per_sample:
        chunk = int(max(1, min(chunk, (budget - fixed - threads * per_thread) // per_sample)))
    return threads, chunk


def _simulate_run(prog, kin, xk, held, scale, top, T, B, R, rec_off, n_out, n_timed, py_timing, session,
                  hist_cycles, max_bytes=None, in_io=(1, False)):
    """The kernel calls of :func:`simulate` and the traces: (output, spike and membrane
    recordings, counters, timing dict or None, trace paths). Raises
    :class:`_LatencyOverflow` (after removing every partial trace file) when a packet
    latency exceeds ``hist_cycles``."""
    N = int(prog.pop_off[-1])
    K = max(prog.n_tiles, 1)
    C = prog.n_cores
    n_fused = 0 if py_timing else n_timed
    kb, ko, ent_acc, ent_w = kin
    wo = work_layout(prog, T, kb, ko)
    out = np.zeros((T, B, n_out), np.int64)
    rec_s = np.zeros((T, B, R), np.int64)
    rec_v = np.zeros((T, B, R), np.int64)
    counters = np.zeros((T, C, len(COUNTERS)), np.int64)
    n_py = n_timed if py_timing else 0
    tile_cyc = np.zeros((n_py, T, K), np.int64)
    all_out = np.zeros((n_py, T, N), np.int64)
    step_cycles = np.zeros((n_fused, T), np.int64)
    core_busy = np.zeros((n_fused, C), np.int64)
    hist = np.zeros(hist_cycles if n_fused else 0, np.int64)
    lat_max, n_lat, overruns = -1, 0, 0
    n_links = int(prog.grid_w) * int(prog.grid_h) * 4
    link_flits = np.zeros(n_links, np.int64)
    calls = np.zeros(2, np.int64)
    # with AER: bounded memory, the recordings of a chunk are T x N per sample
    threads, chunk = _run_plan(prog, kin, wo, T, B, R, n_out, n_py, session.cfg.aer is not None, max_bytes,
                               session.chunk(B, _CHUNK))
    vcd = VcdProbe(session.vcd_b, session.vcd_slot, session.vcd_spikes, session.vcd_membrane)
    try:
        session.open()
        aer_w = session.aer
        for b0 in range(0, B, chunk):
            b1 = min(B, b0 + chunk)
            nb = b1 - b0
            G = max(1, min(nb, threads))
            cnt = np.zeros((G, T, C, len(COUNTERS)), np.int64)
            hist_g = np.zeros((G, hist.size), np.int64)
            # per thread: max latency, deliveries, overruns, spike NoC calls, of them as trains
            hstat = np.zeros((G, len(HSTAT)), np.int64)
            lflits = np.zeros((G, n_links), np.int64)
            hstat[:, HSTAT_LAT_MAX] = -1
            nt = max(0, min(n_py - b0, nb))
            nr = nb if aer_w is not None else nt
            if aer_w is None:  # the Python timing's recordings written in place
                tc, ao = tile_cyc[b0:b0 + nt], all_out[b0:b0 + nt]
            else:
                tc, ao = np.zeros((nr, T, K), np.int64), np.zeros((nr, T, N), np.int64)
            run_threads(G, Packed(kb, ko), (ent_acc, ent_w), wo, Inputs(xk, held, scale, top), b0, nb,
                        Outputs(out, cnt, rec_off, rec_s, rec_v, nr, tc, ao), vcd,
                        TimingOut(n_fused, step_cycles, core_busy, hist_g, hstat, lflits))
            counters += cnt.sum(axis=0)
            hist += hist_g.sum(axis=0)
            lat_max = max(lat_max, int(hstat[:, HSTAT_LAT_MAX].max()))
            n_lat += int(hstat[:, HSTAT_DELIVERIES].sum())
            overruns += int(hstat[:, HSTAT_OVERRUNS].sum())
            calls += hstat[:, [HSTAT_NOC_CALLS, HSTAT_TRAIN_CALLS]].sum(axis=0)
            link_flits += lflits.sum(axis=0)
            if aer_w is not None:
                if nt:
                    tile_cyc[b0:b0 + nt] = tc[:nt]
                    all_out[b0:b0 + nt] = ao[:nt]
                session.add_outputs(b0, ao)
            del tc, ao
        if lat_max >= hist.size and n_fused:
            raise _LatencyOverflow(lat_max + 1)
        tim = None
        depth = pipeline_depth(prog) if prog.pipelined else 0
        if n_fused:
            tim = timing_result(prog, "pipelined" if prog.pipelined else "sync", step_cycles, core_busy,
                          hist[:lat_max + 1] if n_lat else np.zeros(0, np.int64), overruns, depth, link_flits,
                          calls)
        elif n_timed:
            fn = timing_pipelined if prog.pipelined else timing_sync
            if prog.chip.noc.router_model == "wormhole":
                fn = timing_wormhole
            io = {"io": in_io} if fn is timing_wormhole else {}
            tim = fn(prog, tile_cyc, all_out, session.timeline, session.sample, **io)
        paths = session.close()
    except BaseException:
        session.abort()
        raise
    return out, rec_s, rec_v, counters, tim, paths
