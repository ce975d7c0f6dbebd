"""Program -> kernel tables: a validated :class:`~hwsim.program.Program` flattened into the
packed arrays the kernels read (:mod:`hwsim.engine.layout`): event records and spans,
short-row tables, accumulator layout (the timing plan is :mod:`hwsim.engine.timing_plan`; the inputs,
validated and scanned for the kernel, :mod:`hwsim.engine.inputs`).

The kernel is event-driven: per step it touches only the crossbar rows the nonzero
sources drive (a CSR source neuron -> rows built by :func:`_event_index`); rows whose
entries address runs of nearly consecutive accumulators are added as contiguous spans,
gaps filled with zero weights (:func:`_row_spans`), and the accumulators of a projection
onto a (C, H, W) population are stored (soma core, y, x, c) so that a convolution row
is a few long runs (:func:`_acc_layout`). An event reads one flat table of records, one
per span or scattered row, with the row's tile counts (:func:`_slot_records`).
"""

from __future__ import annotations

import weakref

import numpy as np
from numba import njit

from models import neurons
from models.errors import SimulationError
from models.intref import int_v_min

from ..program import Program
from .if_blocks import block_flags_size, block_pops, first_flag
from .layout import (GEO_N, KERNEL_FIELDS, NIO, NREC, NTC, REC_ACC, REC_ACS, REC_CYCLES, REC_ENT, REC_EVENTS,
                     REC_MACS, REC_N, REC_TILE, TC_ACS, TC_CYCLES, TC_EVENTS, TC_MACS, WORK_FIELDS, kernel_field,
                     pack)
from .timing_plan import no_timing_plan, timing_plan

__all__ = ["kernel_inputs", "work_layout", "membrane_floor"]


def _index_type(n: int):
    """The narrowest of int32 / int64 that indexes ``n`` items (per-entry scratch arrays
    are the peak memory of building the tables: 4 bytes instead of 8 per synapse)."""
    return np.int32 if n < 2 ** 31 - 1 else np.int64


def _event_index(prog: Program):
    """Rows of each population grouped by (source, delay) with a CSR over the source's
    neurons: (slot_off, grp_ptr, grp_src, grp_delay, grp_pre_off, pre_ptr, grp_rows,
    row_tile, proj_in, pop_reuse) for the kernel."""
    P = prog.n_pops
    R = prog.row_src.size
    # rows are stored tile by tile (tile_row_ptr): each row's tile and population by runs
    lo_r, hi_r = prog.tile_row_ptr[:, 0], prog.tile_row_ptr[:, 1]
    by_start = np.argsort(lo_r, kind="stable")
    row_tile = np.repeat(by_start.astype(_index_type(prog.n_tiles)), (hi_r - lo_r)[by_start])
    if row_tile.size != R:
        raise SimulationError("program: tile rows do not cover the rows")
    slot_off = np.concatenate([[0], np.cumsum(prog.pop_ring)]).astype(np.int64)
    # group key (pop, src, delay): few distinct values, numbered through a lookup table
    D = int(prog.pop_ring.max(initial=1)) + 1
    key = (prog.tile_pop[row_tile] * P + prog.row_src) * D + prog.row_delay
    ukeys = np.flatnonzero(np.bincount(key, minlength=P * P * D))
    look = np.zeros(P * P * D, np.int64)
    look[ukeys] = np.arange(ukeys.size)
    ginv = look[key]
    del key
    g_pop = ukeys // (P * D)
    g_src = (ukeys // D) % P
    g_delay = ukeys % D
    grp_ptr = np.searchsorted(g_pop, np.arange(P + 1)).astype(np.int64)
    sizes = prog.pop_size[g_src]
    grp_pre_off = np.concatenate([[0], np.cumsum(sizes + 1)])[:-1].astype(np.int64)
    pos = grp_pre_off[ginv] + prog.row_pre  # slot in the per-group CSR
    del ginv
    counts = np.bincount(pos, minlength=int((sizes + 1).sum()))
    pre_ptr = np.zeros(int((sizes + 1).sum()) + 1, np.int64)
    # ptr over the concatenated per-group arrays: pre_ptr[grp_pre_off[g] + i] = start of (g, i)
    pre_ptr[1:] = np.cumsum(counts)
    del counts
    grp_rows = np.argsort(pos, kind="stable").astype(_index_type(R))  # by (group, pre), then row
    del pos
    proj_in = (prog.proj_src == 0).astype(np.int64)
    # reuse: only when every input projection of the population is fed by rows from the
    # input only (always true: a projection has one source) and no partial aliasing
    pop_reuse = np.zeros(P, np.int64)
    for p in range(1, P):
        gs = range(int(grp_ptr[p]), int(grp_ptr[p + 1]))
        if any(g_src[g] == 0 for g in gs):
            pop_reuse[p] = 1
    return (slot_off, grp_ptr, g_src.astype(np.int64), g_delay.astype(np.int64), grp_pre_off, pre_ptr,
            grp_rows, row_tile, proj_in, pop_reuse)


def _model_flag(prog: Program, attr: str) -> np.ndarray:
    """Flag ``attr`` of every population's model (:mod:`models.neurons`); 0 for the graph input."""
    return np.where(prog.pop_model >= 0, neurons.per_code(attr)[prog.pop_model.clip(0)], 0)


def membrane_floor(prog: Program, v_min):
    """The membrane floor of every neuron and whether it applies, per population:
    ``(pop_floor (P,) bool, nrn_vmin (N,) int64)``, from :func:`models.intref.int_v_min`
    (``v_min`` checked by :func:`models.reference.check_v_min`): every value is in
    ``[-2^(M-1), 0]``, the membrane range, before any kernel sees it."""
    P, N = prog.n_pops, int(prog.pop_off[-1])
    pop_floor = np.zeros(P, np.bool_)
    nrn_vmin = np.zeros(N, np.int64)
    if v_min is None:
        return pop_floor, nrn_vmin
    lo = -(1 << (int(prog.membrane_bits) - 1))
    for p in range(1, P):
        q = int_v_min(prog.net, prog.net.pop[prog.pop_names[p]], v_min)
        if q is None:
            continue
        q = np.broadcast_to(np.asarray(q, np.int64).reshape(-1), (int(prog.pop_size[p]),))
        if q.size and (q.min() < lo or q.max() > 0):
            raise SimulationError(f"population '{prog.pop_names[p]}': membrane floor {int(q.min())} outside "
                                  f"[{lo}, 0] (membrane_bits {prog.membrane_bits})")
        pop_floor[p] = True
        nrn_vmin[int(prog.pop_off[p]):int(prog.pop_off[p + 1])] = q
    return pop_floor, nrn_vmin


def _kernel_inputs(prog: Program, reset: str, spikes: str, v_min, in_flits: int, in_mult: bool,
                   out_val_flits: int, timed: bool):
    """The kernels' packed inputs of a validated program: ``(kb, ko, ent_acc, ent_w)``
    (fields :data:`hwsim.engine.layout.KERNEL_FIELDS`; crossbar entries as the narrowest integers that hold them)."""
    (slot_off, grp_ptr, grp_src, grp_delay, grp_pre_off, pre_ptr, grp_rows, row_tile, proj_in,
     pop_reuse) = _event_index(prog)
    acc_pos, proj_perm, ea, ew = _acc_layout(prog)
    # crossbar entries as narrow ints (less memory traffic in the kernel; same values)
    ent_acc = ea.astype(np.int32, copy=False) if prog.n_acc < 2 ** 31 else ea
    lo_w = min(int(ew.min(initial=0)), int(prog.geo_w.min(initial=0)))
    hi_w = max(int(ew.max(initial=0)), int(prog.geo_w.max(initial=0)))
    ent_w = ew.astype(next(d for d in (np.int8, np.int16, np.int32, np.int64)
                           if np.iinfo(d).min <= lo_w and hi_w <= np.iinfo(d).max))
    pe = prog.pe_width
    M = int(prog.membrane_bits)
    lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
    # populations whose update is a no-op without input: IF, no bias (constant or
    # terms), positive thresholds, reset values inside the membrane range
    P = prog.n_pops
    pop_skip = np.zeros(P, np.bool_)
    for p in range(1, P):
        sl = slice(int(prog.pop_off[p]), int(prog.pop_off[p + 1]))
        pop_skip[p] = (prog.pop_model[p] == neurons.CODE_IF and not prog.nrn_bias[sl].any()
                       and prog.pop_bt_ptr[p + 1] == prog.pop_bt_ptr[p] and (prog.nrn_thr[sl] > 0).all()
                       and (reset == "subtract" or ((prog.nrn_vreset[sl] >= lo) & (prog.nrn_vreset[sl] <= hi)).all()))
    plan = timing_plan(prog) if timed else no_timing_plan(prog)
    spans, ent_w = _row_spans(prog.row_ptr, ea, ent_w, row_tile)
    row_cyc = (np.asarray(prog.row_ncols, np.int64) + pe - 1) // pe + prog.event_overhead
    geo = _geo_events(prog, grp_ptr, grp_src, grp_delay, ent_w.size)
    on_geo = _slot_group(pre_ptr, grp_pre_off)
    on_geo = np.repeat(geo["grp_geo"][on_geo] >= 0, np.diff(pre_ptr))  # per position of grp_rows
    plan.update(_geo_rows(pre_ptr, grp_rows, on_geo, row_tile, prog.row_mac, row_cyc, prog.row_nent))
    plan.update(_slot_records(pre_ptr, grp_rows, prog.row_ptr, row_tile, prog.row_mac, row_cyc, spans,
                              prog.row_nent, skip=on_geo))
    del on_geo
    plan.update(_compact_rows(grp_src, grp_pre_off, pre_ptr, grp_rows, prog.row_ptr, ea, ew, row_tile,
                              prog.row_mac, row_cyc, prog.pop_size, row_nent=prog.row_nent,
                              dense=_dense_weights(prog, geo["grp_geo"], grp_src)))
    plan.update(geo)
    del grp_rows, row_tile, row_cyc, spans  # row-sized (VGG-16 ImageNet: 1.7 GB), not packed: freed before pack
    ent_w = np.concatenate([ent_w, prog.geo_w.astype(ent_w.dtype)])
    pop_floor, nrn_vmin = membrane_floor(prog, v_min)
    acc_order, nrn_slot, nrn_at_slot = state_order(prog, acc_pos, proj_perm, pop_floor, reset, spikes)
    fields = dict(
        pop_model=prog.pop_model, pop_spikes=_model_flag(prog, "spikes"), pop_state=_model_flag(prog, "state"),
        pop_floor=pop_floor, pop_size=prog.pop_size, pop_off=prog.pop_off, pop_ring=prog.pop_ring,
        ring_off=prog.ring_off, slot_off=slot_off, pop_proj_ptr=prog.pop_proj_ptr, proj_order=prog.proj_order,
        pop_tile_ptr=prog.pop_tile_ptr, tile_order=prog.tile_order, pop_bt_ptr=prog.pop_bt_ptr,
        bt_start=prog.bt_start, bt_off=prog.bt_off, bt_vec=prog.bt_vec, pop_skip=pop_skip,
        pop_acc_order=acc_order, nrn_slot=nrn_slot, nrn_at_slot=nrn_at_slot, **core_runs(prog, acc_order),
        pop_blocks=block_pops(pop_skip, acc_order, grp_ptr, geo["grp_geo"], plan["grp_cr_off"],
                              prog.geo_geom[:, 6]),
        nrn_core=prog.nrn_core, nrn_bias=prog.nrn_bias, nrn_thr=prog.nrn_thr, nrn_vreset=prog.nrn_vreset,
        nrn_alpha=prog.nrn_alpha, nrn_asyn=prog.nrn_asyn, nrn_vleak=prog.nrn_vleak, nrn_vmin=nrn_vmin,
        nrn_pk=prog.nrn_pk, nrn_hops=prog.nrn_hops, nrn_icx=prog.nrn_icx,
        proj_shift=prog.proj_shift, proj_acc_off=prog.proj_acc_off, proj_npost=prog.proj_npost, proj_in=proj_in,
        tile_core=prog.tile_core, tile_kind=prog.tile_kind, tile_soma=prog.tile_soma, tile_ncols=prog.tile_ncols,
        tile_psum_flits=prog.tile_psum_flits,
        tile_psum_hops=prog.tile_psum_hops, tile_psum_icx=prog.tile_psum_icx,
        grp_ptr=grp_ptr, grp_src=grp_src, grp_delay=grp_delay, grp_pre_off=grp_pre_off,
        pop_reuse=pop_reuse.astype(np.bool_),
        in_dst_ptr=prog.in_dst_ptr, in_dst_core=prog.in_dst_core, in_pk=prog.in_pk, in_hops=prog.in_hops,
        in_icx=prog.in_icx, in_cores=_input_cores(prog),
        M=M, F=int(prog.leak_frac_bits), payload=int(prog.payload_bits), reset_sub=reset == "subtract",
        multi=spikes == "multi", out_pop=int(prog.output_pop), in_flits=int(in_flits), in_mult=bool(in_mult),
        out_val_flits=int(out_val_flits), spiking=bool(prog.input_spiking), n_acc=int(prog.n_acc),
        acc_pos=acc_pos, proj_perm=proj_perm, **plan)
    kb, ko = pack(fields, KERNEL_FIELDS, align="cr")
    if acc_order.any():  # thresholds and biases kept where the neuron's state is, moved in place (no copies)
        for name in ("nrn_thr", "nrn_bias"):
            kernel_field(kb, ko, name)[nrn_slot] = getattr(prog, name)
    return kb, ko, ent_acc, ent_w


def _acc_layout(prog: Program):
    """Where each accumulator lives in the kernel's ``acc`` array, and the crossbar
    entries addressed accordingly.

    The accumulator block of a projection onto a (C, H, W) population is stored in the
    order (soma core, y, x, c) instead of the population's (c, y, x): a convolution row
    (one input pixel) then addresses runs of ``channels x window width`` consecutive
    accumulators instead of runs of at most the window width, which the kernel adds as
    contiguous slices (:func:`_row_spans`). A block is reordered only when that gives
    fewer runs. A geometric convolution's block (no entries) is stored (y, x, c), the order
    its event scatter writes (:func:`_geo_events`). Returns ``(acc_pos, proj_perm, ent_acc,
    ent_w)``: ``acc_pos[a]`` is the slot of accumulator ``a`` (projection offset + post
    index); ``proj_perm[q]`` says whether projection ``q``'s block is reordered (the
    neuron update then gathers its sums through ``acc_pos``); the entries address slots
    and are sorted by slot within each row (the order of an integer sum does not change it)."""
    acc_pos = np.arange(int(prog.n_acc), dtype=np.int64)
    proj_perm = np.zeros(prog.proj_src.size, np.bool_)
    ea, ew = prog.ent_acc, prog.ent_w
    shapes = [tuple(p.shape) for p in prog.net.populations]
    row_ptr = np.asarray(prog.row_ptr, np.int64)
    max_row = int(np.diff(row_ptr).max(initial=0))
    no_map = np.zeros(0, np.int64)

    for q in range(prog.proj_src.size):
        d = int(prog.proj_dst[q])
        shape = shapes[d]
        if len(shape) != 3 or shape[0] < 2 or shape[1] * shape[2] < 2:
            continue
        a0, npost = int(prog.proj_acc_off[q]), int(prog.proj_npost[q])
        sel = (ea >= a0) & (ea < a0 + npost)
        if not sel.any():
            continue
        H, W = int(shape[1]), int(shape[2])
        n = np.arange(npost)
        core = prog.nrn_core[int(prog.pop_off[d]) + n]
        order = np.lexsort((n // (H * W), n % W, (n // W) % H, core))  # by core, y, x, c
        pos = np.arange(a0, a0 + npost)
        pos[order] = a0 + n
        if _row_runs(row_ptr, ea, a0, a0 + npost, pos - a0, max_row) < _row_runs(row_ptr, ea, a0, a0 + npost,
                                                                               no_map, max_row):
            acc_pos[a0:a0 + npost] = pos
            proj_perm[q] = True
    for gi, q in enumerate(prog.geo_proj):  # geometric convolutions: (y, x, c), see _geo_events
        cout, oh, ow = (int(v) for v in prog.geo_geom[gi, [3, 4, 5]])
        a0 = int(prog.proj_acc_off[q])
        o, i, j = np.unravel_index(np.arange(cout * oh * ow), (cout, oh, ow))
        acc_pos[a0:a0 + cout * oh * ow] = a0 + (i * ow + j) * cout + o
        proj_perm[q] = cout > 1 and oh * ow > 1  # else the same order (a dense projection's: 1 x 1)
    if proj_perm.any():
        ea = acc_pos.astype(ea.dtype)[ea]  # the entries' narrow type kept (slots < n_acc)
        ew = ew.copy()
        _sort_rows(row_ptr, ea, ew)
    return acc_pos, proj_perm, ea, ew


def _input_cores(prog: Program) -> np.ndarray:
    """The cores whose input I/O counts the kernel adds per step: each graph input's first
    destination core (``in_dst_core[in_dst_ptr[i]]``, the core its counts go to), sorted, once each."""
    ptr = np.asarray(prog.in_dst_ptr, np.int64)
    has = ptr[1:] > ptr[:-1]
    return np.unique(np.asarray(prog.in_dst_core, np.int64)[ptr[:-1][has]])


def state_order(prog: Program, acc_pos: np.ndarray, proj_perm: np.ndarray, pop_floor: np.ndarray, reset: str,
                spikes: str):
    """Where each neuron's state (membrane, threshold, bias, output) is kept in the kernel.

    A population on the kernel's IF fast path (IF model, binary spikes, subtractive
    reset, one projection, no bias terms, no membrane floor: the update
    ``v <- sat(v + b + round(I / 2**s)); z = [v >= theta]; v <- v - z theta``,
    :func:`hwsim.engine.kernel._neurons`) whose projection's accumulators are stored in
    another order (``proj_perm``, :func:`_acc_layout`) keeps its state in that order too:
    neuron ``n`` of the population at ``off`` sits at slot ``off + acc_pos[a0 + n] - a0``,
    so the update is one contiguous pass over the accumulators, with no gather. Its
    spike list is still written in neuron order (the kernel maps slots back through
    ``at_slot``), and every record (membranes, outputs, VCD) is read through ``slot``.
    Returns ``(acc_order, slot, at_slot)``: per population whether it is reordered; per
    neuron (global) its state slot (global; the identity elsewhere); per slot
    (global) the neuron it holds, within its population."""
    P = prog.n_pops
    N = int(prog.pop_off[-1])
    it = _index_type(N + 1)  # narrow while building (the tables hold int64 anyway)
    slot = np.arange(N, dtype=it)
    at_slot = np.empty(N, it)
    acc_order = np.zeros(P, np.bool_)
    for p in range(1, P):
        q0, q1 = int(prog.pop_proj_ptr[p]), int(prog.pop_proj_ptr[p + 1])
        fast = (prog.pop_model[p] == neurons.CODE_IF and spikes != "multi" and reset == "subtract" and q1 - q0 == 1
                and prog.pop_bt_ptr[p + 1] == prog.pop_bt_ptr[p] and not pop_floor[p])
        if not fast:
            continue
        q = int(prog.proj_order[q0])
        off, npop = int(prog.pop_off[p]), int(prog.pop_size[p])
        if not proj_perm[q] or int(prog.proj_npost[q]) != npop:
            continue
        a0 = int(prog.proj_acc_off[q])
        slot[off:off + npop] = off + acc_pos[a0:a0 + npop] - a0
        acc_order[p] = True
    for p in range(P):
        off, npop = int(prog.pop_off[p]), int(prog.pop_size[p])
        at_slot[slot[off:off + npop]] = np.arange(npop, dtype=it)
    return acc_order, slot, at_slot


def core_runs(prog: Program, acc_order: np.ndarray) -> dict:
    """Per population, its neurons as runs of consecutive neurons on one core, for the
    kernel's dense spike counts (:func:`hwsim.engine.kernel._dense_counts`): run ``r`` of
    population ``p`` (``pop_run_ptr[p] <= r < pop_run_ptr[p + 1]``) holds its neurons
    ``run_lo[r] .. run_hi[r] - 1`` on core ``run_core[r]``. A population kept in
    accumulator order (``acc_order``, :func:`state_order`: its outputs are stored by slot,
    its traffic tables by neuron) and the input get no runs (the kernel counts their
    spikes one by one)."""
    P = prog.n_pops
    ptr = np.zeros(P + 1, np.int64)
    lo, hi, core = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for p in range(1, P):
        c = np.asarray(prog.nrn_core[int(prog.pop_off[p]):int(prog.pop_off[p + 1])], np.int64)
        s = np.zeros(0, np.int64) if acc_order[p] else np.flatnonzero(np.concatenate([[c.size > 0], c[1:] != c[:-1]]))
        lo.append(s)
        hi.append(np.append(s[1:], c.size)[:s.size])
        core.append(c[s])
        ptr[p + 1] = ptr[p] + s.size
    return {"pop_run_ptr": ptr, "run_lo": np.concatenate(lo), "run_hi": np.concatenate(hi),
            "run_core": np.concatenate(core)}


@njit(cache=True)
def _row_runs(row_ptr, ea, a0, a1, pos, max_row):
    """Runs of consecutive slots among each row's entries with ``a0 <= ea < a1``, read
    as ``a0 + pos[ea - a0]`` when ``pos`` is given (else as they are), sorted within the
    row: the number of contiguous slices the kernel would add. Row by row, so the
    scratch is one row (a whole-program sort of a VGG-11 took 2 GB per int64 array)."""
    buf = np.empty(max(max_row, 1), np.int64)
    total = 0
    for r in range(row_ptr.size - 1):
        m = 0
        for e in range(row_ptr[r], row_ptr[r + 1]):
            a = np.int64(ea[e])
            if a0 <= a < a1:
                buf[m] = a0 + pos[a - a0] if pos.size else a
                m += 1
        if m:
            srt = np.sort(buf[:m])
            total += 1
            for i in range(1, m):
                if srt[i] != srt[i - 1] + 1:
                    total += 1
    return total


@njit(cache=True)
def _sort_rows(row_ptr, ea, ew):
    """Sort each row's entries by slot in place (``ew`` follows), stable."""
    for r in range(row_ptr.size - 1):
        lo, hi = row_ptr[r], row_ptr[r + 1]
        if hi - lo > 1:
            o = np.argsort(ea[lo:hi], kind="mergesort")
            a = ea[lo:hi][o]
            w = ew[lo:hi][o]
            ea[lo:hi] = a
            ew[lo:hi] = w


_KIN_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def kernel_inputs(prog: Program, *key):
    """:func:`_kernel_inputs` built once per program and options (a compiled
    :class:`Program` is not modified after :func:`hwsim.program.compile`), so batches
    run through the same program do not rebuild the tables (0.2 s for the NIR CNN)."""
    per_prog = _KIN_CACHE.setdefault(prog, {})
    if key not in per_prog:
        per_prog[key] = _kernel_inputs(prog, *key)
    return per_prog[key]


def _slot_group(pre_ptr: np.ndarray, grp_pre_off: np.ndarray) -> np.ndarray:
    """The group of every (group, source neuron) slot of the per-group CSR ``pre_ptr``."""
    return np.searchsorted(grp_pre_off, np.arange(pre_ptr.size - 1), side="right") - 1


def _geo_rows(pre_ptr, grp_rows, on_geo, row_tile, row_mac, row_cyc, row_nent) -> dict:
    """The rows of geometric groups (:func:`_geo_events`) as one int64 each, read by the
    kernel after the event's scatter: ``tile << 32 | cycles << 16 | mac << 15 | entries``
    (``geo_rec``, slot ``s``'s rows ``geo_rec_ptr[s]:geo_rec_ptr[s + 1]``): 8 bytes per row
    instead of a :data:`hwsim.engine.layout.NREC`-field record (ImageNet-size nets have
    ~10^8 rows). Raises :class:`SimulationError` when entries or cycles do not fit 15 / 16 bits."""
    pos = np.flatnonzero(on_geo)
    rec = np.empty(pos.size, np.int64)
    for lo in range(0, pos.size, 1 << 22):  # in chunks: ~6 int64 temporaries per row (VGG-16 ImageNet: 1.1e8 rows)
        r = np.asarray(grp_rows)[pos[lo:lo + (1 << 22)]]
        n = np.asarray(row_nent)[r].astype(np.int64)
        cyc = np.asarray(row_cyc)[r].astype(np.int64)
        if n.size and (n.max() >= 1 << 15 or cyc.max() >= 1 << 16):
            raise SimulationError(f"a geometric crossbar row with {int(n.max())} entries or {int(cyc.max())} "
                                  f"integrate cycles: more than the kernel's packed row holds (32,767 / 65,535)")
        rec[lo:lo + r.size] = (np.asarray(row_tile)[r].astype(np.int64) << 32) | (cyc << 16) | \
            ((np.asarray(row_mac)[r] != 0).astype(np.int64) << 15) | n
    del pos
    before = np.zeros(on_geo.size + 1, np.int64)  # geometric positions before each position
    np.cumsum(on_geo, out=before[1:])
    return {"geo_rec_ptr": before[pre_ptr], "geo_rec": rec}


def _slot_records(pre_ptr: np.ndarray, grp_rows: np.ndarray, row_ptr: np.ndarray, row_tile: np.ndarray,
                  row_mac: np.ndarray, row_cyc: np.ndarray, spans: dict, row_nent: np.ndarray | None = None,
                  skip: np.ndarray | None = None) -> dict:
    """What an event of each (group, source neuron) slot does, as records the kernel
    reads in order: ``rec_ptr`` over the slots (slot ``s`` reads the rows
    ``grp_rows[pre_ptr[s]:pre_ptr[s + 1]]``) and ``rec``, :data:`hwsim.engine.layout.NREC` int64 per record,
    ``(acc, ent, n, tile, events, ac, mac, cycles)``:

    - ``n >= 0``: a span (:func:`_row_spans`), ``acc[acc + u] += w[ent + u] * x`` for
      ``u < n``;
    - ``n < 0``: a scattered row, ``acc[ent_acc[e]] += w[e] * x`` for ``ent <= e < ent - n``;
    - the row's tile, and its counts on its first record (zeros on the others): one
      crossbar event, its entries (``row_nent``, default the explicit ones) as AC (SNN
      tile) or MAC (ANN tile) operations, and its integrate cycles ``row_cyc``; the rows
      of geometric groups (``skip``) have none: their counts are :func:`_geo_rows`'.

    One flat table per event instead of a chain of lookups (slot, rows, spans, counts):
    the shipped MLP's second-layer event costs 12 ns instead of 22 ns."""
    # positions of grp_rows that read records: all but the rows of geometric groups (_geo_rows)
    kept = None if skip is None else np.flatnonzero(~skip)
    r = np.asarray(grp_rows if kept is None else grp_rows[kept], np.int64)
    n_e = np.diff(row_ptr)[r]
    row_span, span_ptr = spans["row_span"], spans["span_ptr"]
    is_span = row_span[r]
    k = np.where(is_span, span_ptr[r + 1] - span_ptr[r], 1)  # records per row read
    occ = np.repeat(np.arange(r.size), k)
    k_off = np.zeros(r.size + 1, np.int64)
    np.cumsum(k, out=k_off[1:])
    within = np.arange(occ.size) - k_off[occ]
    first = within == 0
    rr, span = r[occ], is_span[occ]
    sp = np.where(span, span_ptr[rr] + within, 0)
    if spans["span_len"].size:
        sp_acc, sp_ent, sp_len = spans["span_acc"][sp], spans["span_ent"][sp], spans["span_len"][sp]
    else:
        sp_acc = sp_ent = sp_len = np.zeros(occ.size, np.int64)
    ne = n_e[occ]
    nc = ne if row_nent is None else np.asarray(row_nent, np.int64)[rr]
    mac = np.asarray(row_mac)[rr] != 0
    rec = np.zeros((occ.size, NREC), np.int64)
    rec[:, REC_ACC] = np.where(span, sp_acc, 0)
    rec[:, REC_ENT] = np.where(span, sp_ent, np.asarray(row_ptr)[rr])
    rec[:, REC_N] = np.where(span, sp_len, -ne)
    rec[:, REC_TILE] = np.asarray(row_tile, np.int64)[rr]
    rec[:, REC_EVENTS] = first
    rec[:, REC_ACS] = np.where(first & ~mac, nc, 0)
    rec[:, REC_MACS] = np.where(first & mac, nc, 0)
    rec[:, REC_CYCLES] = np.where(first, np.asarray(row_cyc, np.int64)[rr], 0)
    before = np.zeros(k.size + 1, np.int64)  # records before each kept position
    np.cumsum(k, out=before[1:])
    if kept is None:
        return {"rec_ptr": before[pre_ptr], "rec": rec}
    n_kept = np.zeros(skip.size + 1, _index_type(skip.size + 1))  # kept positions before each position
    np.cumsum(~skip, out=n_kept[1:])
    return {"rec_ptr": before[n_kept[pre_ptr]], "rec": rec}


def _dense_weights(prog: Program, grp_geo: np.ndarray, grp_src: np.ndarray, max_acc: int = 64,
                   max_entries: int = 1 << 17) -> dict:
    """Per event group of a dense geometric projection (:mod:`hwsim.dense_rows`) with at
    most ``max_acc`` posts and ``n_pre * n_post <= max_entries``: ``(a0, Wk)``, its first
    accumulator and ``Wk[i] = W^T[k(i)]`` (zeros where ``k(i) = -1``), the weights an event
    on pre ``i`` adds (:func:`_compact_rows` turns them into short rows)."""
    out = {}
    for g in np.flatnonzero(grp_geo >= 0):
        gi = int(grp_geo[g])
        K, n_post = int(prog.geo_geom[gi, 0]), int(prog.geo_geom[gi, 3])
        kmap = prog.geo_kmap[prog.geo_kmap_off[gi]:prog.geo_kmap_off[gi + 1]]
        if prog.geo_geom[gi, 6] != 0 or n_post > max_acc or kmap.size * n_post > max_entries or \
                kmap.size != int(prog.pop_size[grp_src[g]]):
            continue
        wt = np.asarray(prog.geo_w[prog.geo_w_off[gi]:prog.geo_w_off[gi + 1]], np.int64).reshape(K, n_post)
        out[int(g)] = (int(prog.proj_acc_off[prog.geo_proj[gi]]), np.where(kmap[:, None] >= 0, wt[kmap], 0))
    return out


def _compact_rows(grp_src: np.ndarray, grp_pre_off: np.ndarray, pre_ptr: np.ndarray, grp_rows: np.ndarray,
                  row_ptr: np.ndarray, ea: np.ndarray, ew: np.ndarray, row_tile: np.ndarray, row_mac: np.ndarray,
                  row_cyc: np.ndarray, pop_size: np.ndarray, max_acc: int = 64, max_tiles: int = 4,
                  max_entries: int = 1 << 17, row_nent: np.ndarray | None = None, dense: dict | None = None) -> dict:
    """Short-row groups as one fixed-length row per source neuron.

    A group (population, source, delay) whose rows all address a window of at most
    ``max_acc`` accumulators ``a0 .. a0 + na - 1`` on at most ``max_tiles`` tiles
    (a classifier layer: 10 outputs) gets a dense table ``cr``: source ``i``'s row is
    ``R = na + NTC * nt`` int64, the sums of its rows' weights per window slot
    (``cr[i, a - a0] = sum of w over the source's entries at slot a``), then per tile
    ``k`` of the group its NTC = 4 counts of one event (events, integrate cycles, AC,
    MAC: :data:`hwsim.engine.layout.TILE_COUNTS`).
    An event of value ``x`` adds ``x`` times the weight part and the count part once
    into a local row; the group's sums and tile counts are added once per step. The
    same integer sums and counts as the records (:func:`_slot_records`, still built),
    without their per-event lookups: the shipped MLP's second layer (92 events of 10
    entries per step) spends most of an event's time on them. Groups with a table
    bigger than ``max_entries`` keep the records. A dense geometric group in ``dense``
    (:func:`_dense_weights`: ``g -> (a0, Wk)``) has no explicit entries: its window is its
    posts ``a0 .. a0 + n_post - 1``, its weight part ``Wk[i]``, its counts its rows'
    (``row_nent`` entries each); the kernel then reads its short rows, not the geometry
    (the MLP's 400 -> 10 layer: one 20-lane row per event instead of a geometric scatter
    and two packed rows' counts). Returns the kernel fields ``cr``,
    ``grp_cr_off`` (-1: records), ``grp_cr_a0``, ``grp_cr_na``, ``grp_cr_r``,
    ``grp_cr_tptr`` / ``grp_cr_tiles`` (the tiles of each group) and ``cr_max``."""
    G = grp_src.size
    off = np.full(G, -1, np.int64)
    a0s, nas, rs = np.zeros(G, np.int64), np.zeros(G, np.int64), np.zeros(G, np.int64)
    tptr = np.zeros(G + 1, np.int64)
    tiles_all, blocks = [], []
    pos = 0
    for g in range(G):
        tptr[g + 1] = tptr[g]
        n_src = int(pop_size[grp_src[g]])
        s0 = int(grp_pre_off[g])
        r = np.asarray(grp_rows[pre_ptr[s0]:pre_ptr[s0 + n_src]], np.int64)
        ln = row_ptr[r + 1] - row_ptr[r]
        dw = None if dense is None else dense.get(g)
        if dw is not None:
            ln = np.asarray(row_nent, np.int64)[r]  # the rows' entries (none explicit)
        elif r.size == 0 or ln.sum() == 0 or (row_nent is not None and (row_nent[r] != ln).any()):
            continue  # no entries, or a geometric group (its sums come from _geo_events)
        n_tiles = np.unique(row_tile[r]).size
        if n_tiles > max_tiles or n_src * NTC * n_tiles > max_entries or (dw is None and ln.max() > max_acc):
            continue  # cannot qualify (checked before the group's entries are gathered)
        if dw is None:
            ent = np.repeat(row_ptr[r] - np.concatenate([[0], np.cumsum(ln)[:-1]]), ln) + np.arange(int(ln.sum()))
            a = np.asarray(ea, np.int64)[ent]
            lo, hi = int(a.min()), int(a.max())
        else:
            lo, hi = dw[0], dw[0] + dw[1].shape[1] - 1
        tiles, tk = np.unique(row_tile[r], return_inverse=True)
        na, nt = hi - lo + 1, tiles.size
        R = -(-(na + NTC * nt) // 4) * 4  # padded with zeros to whole 4-lane vectors
        if na > max_acc or nt > max_tiles or n_src * R > max_entries:
            continue
        src = np.repeat(np.arange(n_src), np.diff(pre_ptr[s0:s0 + n_src + 1]))  # source of each row
        tab = np.zeros((n_src, R), np.int64)
        if dw is None:
            np.add.at(tab, (np.repeat(src, ln), a - lo), np.asarray(ew, np.int64)[ent])
        else:
            tab[:, :na] = dw[1]
        mac = np.asarray(row_mac)[r] != 0
        c = na + NTC * tk
        np.add.at(tab, (src, c + TC_EVENTS), 1)
        np.add.at(tab, (src, c + TC_CYCLES), np.asarray(row_cyc, np.int64)[r])
        np.add.at(tab, (src, c + TC_ACS), np.where(mac, 0, ln))
        np.add.at(tab, (src, c + TC_MACS), np.where(mac, ln, 0))
        off[g], a0s[g], nas[g], rs[g] = pos, lo, na, R
        pos += tab.size
        blocks.append(tab.reshape(-1))
        tiles_all.append(tiles.astype(np.int64))
        tptr[g + 1] = tptr[g] + nt
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64))
    return {"cr": cat(blocks), "grp_cr_off": off, "grp_cr_a0": a0s, "grp_cr_na": nas, "grp_cr_r": rs,
            "grp_cr_tptr": tptr, "grp_cr_tiles": cat(tiles_all), "cr_max": int(rs.max(initial=0))}


def _geo_events(prog: Program, grp_ptr: np.ndarray, grp_src: np.ndarray, grp_delay: np.ndarray,
                w_base: int) -> dict:
    """Tables of the geometric convolutions (:mod:`hwsim.conv_rows`): ``geo``, per
    convolution :data:`hwsim.engine.layout.GEO_N` int64 (its geometry, ``hwsim.conv_rows.GEOM_COLS``,
    its accumulator block and the first of its weights, appended to the entries' weights
    at ``w_base``), and ``grp_geo``, per event group the convolution its events scatter
    through (-1: none; the group's rows then carry the counts only). Its accumulators are
    stored (y, x, c) (:func:`_acc_layout`), so an event on pre ``(c, y, x)`` adds, for every
    tap ``(a, b)`` landing on an output ``(i, j)``, one contiguous run
    ``acc[a0 + (i W' + j) C_out + o] += w[o, c, a, b] * x`` over the outputs ``o`` of ``c``'s group
    (:func:`hwsim.engine.events.conv_event`). A dense projection (:mod:`hwsim.dense_rows`,
    ``kh = 0``) keeps its map ``k(i)`` after the records, its offset in ``geo`` in the W
    field; an event on pre ``i`` adds row ``k(i)`` of ``W^T`` to its ``n_post`` accumulators."""
    G = prog.geo_proj.size
    geo = np.zeros((G, GEO_N), np.int64)
    grp_geo = np.full(grp_src.size, -1, np.int64)
    runs = []  # the run tables, after the dense maps
    at = G * GEO_N + prog.geo_kmap.size
    for gi, q in enumerate(prog.geo_proj):
        geo[gi, :prog.geo_geom.shape[1]] = prog.geo_geom[gi]
        geo[gi, 16] = prog.proj_acc_off[q]
        geo[gi, 17] = w_base + prog.geo_w_off[gi]
        geo[gi, 18] = -1
        geo[gi, 19] = first_flag(int(prog.proj_acc_off[q]), int(q))  # its first block flag (if_blocks)
        if prog.geo_geom[gi, 6] == 0:  # dense: where its k(i) starts in geo
            geo[gi, 2] = G * GEO_N + prog.geo_kmap_off[gi]
        else:
            tab = _conv_runs(prog.geo_geom[gi])
            if tab is not None:
                geo[gi, 18] = at
                at += tab.size
                runs.append(tab)
        p, s = int(prog.proj_dst[q]), int(prog.proj_src[q])
        d = int(prog.proj_delay[q]) + (1 if (prog.pipelined and s != 0) else 0)
        for g in range(int(grp_ptr[p]), int(grp_ptr[p + 1])):
            if grp_src[g] == s and grp_delay[g] == d:
                grp_geo[g] = gi
    return {"geo": np.concatenate([geo.reshape(-1), prog.geo_kmap] + runs), "grp_geo": grp_geo}


def _conv_runs(geom: np.ndarray) -> np.ndarray | None:
    """The run tables of a convolution whose kernel rows add one run each (``d_w = 1``,
    one group; else None), so its event scatter divides nothing but the pre's index
    (:func:`hwsim.engine.events.conv_event`): per input column ``x``, three int64
    ``(j0, n_t, p)``: the taps of a kernel row that reach an output are ``b = r + s_w q``
    for ``q_lo <= q <= q_hi`` (``r = (x + p_w) mod s_w``, ``q_lo = max(0, base - W' + 1)``,
    ``q_hi = min(n_r - 1, base)``, ``base = (x + p_w - r) / s_w``, ``n_r = ceil((k_w - r) / s_w)``),
    reaching outputs ``j0 = base - q_hi`` .. ``base - q_lo``; ``n_t = q_hi - q_lo + 1`` taps
    (<= 0: none), stored from tap position ``p = pos(r + s_w q_hi)``
    (:func:`hwsim.engine.events.tap_pos`); then per input row ``y`` and kernel row ``a``
    the output row ``i' = (y + p_h - d_h a) / s_h`` when that is an integer in
    ``[0, H')``, else -1."""
    _, H, W, C_out, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, cin_g, cout_g = (int(v) for v in geom[:16])
    if dw != 1 or cout_g != C_out:
        return None
    xt = np.zeros((W, 3), np.int64)
    for x in range(W):
        r = (x + pw) % sw
        base = (x + pw - r) // sw
        n_r = (kw - r + sw - 1) // sw
        q_lo, q_hi = max(0, base - OW + 1), min(n_r - 1, base)
        b = r + sw * q_hi  # the tap stored first: groups by b mod s_w (residue 0 first), descending b
        pos = sum((kw - rr + sw - 1) // sw for rr in range(r)) + (kw - r + sw - 1) // sw - 1 - b // sw
        xt[x] = (base - q_hi, q_hi - q_lo + 1, pos if n_r > 0 else 0)
    yt = np.full((H, kh), -1, np.int64)
    for y in range(H):
        for a in range(kh):
            ty = y + ph - dh * a
            if ty >= 0 and ty % sh == 0 and ty // sh < OH:
                yt[y, a] = ty // sh
    return np.concatenate([xt.reshape(-1), yt.reshape(-1)])


def _row_spans(row_ptr: np.ndarray, ea: np.ndarray, ew: np.ndarray, row_tile: np.ndarray,
               min_mean_run: float = 4.0, max_gap: int = 8) -> tuple:
    """Rows whose entries (accumulator slots ``ea``, weights ``ew``, rows ``row_ptr``)
    address runs of nearly consecutive accumulators, as spans ``(first accumulator,
    first weight, length)`` that the kernel adds as contiguous slices; other rows keep
    the entry-by-entry scatter.

    A span is a run of a row's entries (in slot order) whose slots step up by at most
    ``max_gap + 1``; the skipped slots get zero weights (adding 0 changes no sum, and
    the AC/MAC counters count the row's entries, not the span's length). A row is
    spanned when its spans average ``>= min_mean_run`` entries. A row that is one
    span is widened to the slot range of all of its tile's entries when that adds at
    most a quarter of its length in zeros, so the rows of a dense tile (a pruned
    fully-connected block) share one length and the loop's trip count is predictable.
    The span weights are appended to ``ew``: returns the tables and the extended weights."""
    ea = np.asarray(ea)
    if ea.dtype not in (np.int32, np.int64):
        ea = ea.astype(np.int64)
    idx = _index_type(ea.size)
    R = row_ptr.size - 1
    n_ent = np.diff(row_ptr)
    row_of = np.repeat(np.arange(R, dtype=idx), n_ent)
    start = np.ones(ea.size, np.bool_)  # an entry that starts a span
    if ea.size:
        step = np.diff(ea)
        start[1:] = (step <= 0) | (step > max_gap + 1)
        del step
        start[row_ptr[:-1][n_ent > 0]] = True
    n_runs = np.bincount(row_of[start], minlength=R)
    row_span = (n_runs > 0) & (n_ent >= min_mean_run * np.maximum(n_runs, 1))
    sel = start & row_span[row_of]
    first = np.flatnonzero(sel)
    starts = np.flatnonzero(start)
    last = np.append(starts[1:], ea.size)[np.searchsorted(starts, first)] - 1
    s_lo, s_hi = ea[first], ea[last]
    if first.size:  # single-span rows: widen to the tile's slot range when nearly full
        t_ent = np.asarray(row_tile).astype(idx)[row_of]
        n_t = int(t_ent.max()) + 1
        t_lo = np.full(n_t, np.iinfo(np.int64).max)
        t_hi = np.full(n_t, -1)
        # a tile's entries are runs of equal t_ent: reduce each run, then the runs per tile
        seg = np.concatenate([[0], np.flatnonzero(t_ent[1:] != t_ent[:-1]) + 1])
        np.minimum.at(t_lo, t_ent[seg], np.minimum.reduceat(ea, seg))
        np.maximum.at(t_hi, t_ent[seg], np.maximum.reduceat(ea, seg))
        r_sp = row_of[first]
        tt = t_ent[first]
        length = s_hi - s_lo + 1
        wide = (n_runs[r_sp] == 1) & ((t_hi[tt] - t_lo[tt] + 1) - length <= length // 4)
        s_lo = np.where(wide, t_lo[tt], s_lo)
        s_hi = np.where(wide, t_hi[tt], s_hi)
        del t_ent
    s_len = s_hi - s_lo + 1
    s_off = np.zeros(first.size + 1, np.int64)
    np.cumsum(s_len, out=s_off[1:])
    span_w = np.zeros(int(s_off[-1]), ew.dtype)
    del row_of, sel, start
    _fill_spans(first, last, s_off, s_lo, ea, ew, span_w)
    span_ptr = np.zeros(R + 1, np.int64)
    np.cumsum(np.where(row_span, n_runs, 0), out=span_ptr[1:])
    tables = {"row_span": row_span, "span_ptr": span_ptr, "span_acc": s_lo, "span_ent": ew.size + s_off[:-1],
              "span_len": s_len}
    return tables, np.concatenate([ew, span_w])


@njit(cache=True)
def _fill_spans(first, last, s_off, s_lo, ea, ew, span_w):
    """Span ``i`` holds entries ``first[i]..last[i]``: ``span_w[s_off[i] + ea[e] - s_lo[i]] = ew[e]``
    (its gaps stay zero)."""
    for i in range(first.size):
        base = s_off[i] - s_lo[i]
        for e in range(first[i], last[i] + 1):
            span_w[base + ea[e]] = ew[e]


def work_layout(prog: Program, T: int, kb: np.ndarray, ko: np.ndarray) -> np.ndarray:
    """Offsets of the per-thread scratch fields (:data:`hwsim.engine.layout.WORK_FIELDS`)
    in one int64 array, for the kernel tables ``kb`` / ``ko`` of ``prog``."""
    def size_of(name):
        return kernel_field(kb, ko, name).size

    N, P = int(prog.pop_off[-1]), prog.n_pops
    K, C = max(prog.n_tiles, 1), max(prog.n_cores, 1)
    ring = max(int((prog.pop_ring * prog.pop_size).sum()), 1)
    n_in = max(int(prog.pop_size[0]), 1)
    npk = max(int(kernel_field(kb, ko, "max_packets")[0]), 1)
    ncand = max(size_of("pcand"), size_of("psum_all"), 1)
    E = max(int(kernel_field(kb, ko, "max_edges")[0]), 1)
    nl = max(size_of("link_pos"), 1)
    size = {"v": N, "isyn": N, "acc": max(prog.n_acc, 1), "nz": ring, "nzv": ring, "nzc": int(prog.pop_ring.sum()),
            "Ib": max(int(prog.pop_size.max()), 1), "o_all": N, "same": T, "prev_i": n_in, "prev_v": n_in, "in_zero": P,
            "hot": P, "done": P, "pk_t0": npk, "pk_fl": npk, "pk_id": npk, "pk_base": npk, "link_flits": nl,
            "l_cnt": nl, "l_used": nl, "l_at": nl, "pk_ord": npk, "pk_tr": npk, "in_cnt": NIO * C,
            "m_ok": P, "m_t0": ncand, "m_dl": ncand, "e_hi": 1,
            "cr_loc": -(-max(int(kernel_field(kb, ko, "cr_max")[0]), 1) // 8) * 8,  # whole 64-byte lines (WORK_FIELDS)
            # two spike masks of the largest population, 64 neurons a word (kernel._neurons)
            "bits": 2 * ((int(prog.pop_size.max()) + 63) // 64) + 2,
            "blk": block_flags_size(int(prog.n_acc), int(prog.proj_shift.size))}  # if_blocks
    ncls = max(int(kernel_field(kb, ko, "n_cls")[0]), 1)
    for n in ("cls_tr", "tr_t0", "tr_sb", "tr_cls", "tr_ce", "tr_fl"):
        size[n] = ncls
    for n in ("h_k", "h_r", "h_p", "h_e", "h_q", "h_b", "h_s", "h_w", "h_n", "h_a"):  # the heads merged on one link
        size[n] = max(int(kernel_field(kb, ko, "link_cls")[0]), 1)
    size["tr_pk"] = ncls + 1
    size["cls_fl"] = ncls  # flits per class over a thread's samples, for its static edges' links
    for n in ("t_nev", "t_cyc", "t_ac", "t_mac", "c_nev", "c_cyc", "c_ac", "c_mac", "tc"):
        size[n] = K
    for n in ("core_free", "integ", "end_int", "psum_ready", "fend"):
        size[n] = C
    for n in ("e_link", "e_parent", "e_owner", "e_start", "e_valid", "e_order", "e_pp", "e_psh", "e_pl", "e_ready"):
        size[n] = E
    size["e_start"] = max(E, int(kernel_field(kb, ko, "spike_slots")[0]))  # also the spike NoC's blocks
    off = np.zeros(len(WORK_FIELDS) + 1, np.int64)
    np.cumsum([size[n] for n in WORK_FIELDS], out=off[1:])
    return off
