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

Implementation (results identical to the plain step-by-step loop): one compiled call
runs every step of a sample (:func:`_sample`); samples are split over threads that run
without the GIL. The kernel is event-driven: per step it lists each population's nonzero
outputs once and touches only the crossbar rows those sources drive (a CSR source neuron
-> rows built by :func:`_event_index`); rows whose entries address runs of nearly
consecutive accumulators are added as contiguous spans, gaps filled with zero
weights (:func:`_row_spans`), and the accumulators of a projection onto a (C, H, W)
population are stored (soma core, y, x, c) so that a convolution row is a few long
runs (:func:`_acc_layout`). An event reads one flat table of records, one per span
or scattered row, with the row's tile counts (:func:`_slot_records`,
:func:`_events`). The graph input is encoded inside the kernel, nonzero values only
(``models.intref`` encoding, validated beforehand with the same errors, in one pass
that also marks held frames, :func:`_scan_inputs`). When the input frames an
input-fed population reads are the same as at the previous step, the input
projections' sums are kept and their per-tile event / AC / MAC / cycle counts
re-added (the chip still performs, and the counters still count, every MAC each
step). An IF population without bias whose
neurons get no input and none of which sits at or above threshold is not updated
(nothing in it can change). Neuron updates and state words are added arithmetically.
The cycle timing of a step runs in the same call (:func:`_step_timing`): the same
packets in the same order through the NoC model's own arbitration
(:func:`hwsim.noc._run`), with routes laid out once per program
(:func:`_route_templates`); a step's spikes of one route class (source core and
destination cores, :func:`_route_classes`) are first simulated as one packet per
class, a train (:func:`_send_trains`), which is exact when no train waited on a link,
and packet by packet otherwise; a population's partial-sum call that repeats its last
one (same tiles, same inject cycles) replays its deliveries (:func:`_send_psums`).
With a Chrome trace, the timeline comes from the
step-by-step Python model (:func:`_timing`, :func:`_timing_pipelined`), which the tests
hold equal to the compiled one.
"""

from __future__ import annotations

import weakref

import numpy as np
from numba import njit, prange

from models.errors import SimulationError
from models.intref import _quant_meta, encode_input  # noqa: F401
from models.reference import _check_options

from .noc import _deliver as _noc_deliver
from .noc import _routes as _noc_routes
from .noc import _link_tables as _noc_link_tables, _run_into as _noc_run_into
from .noc import _run_trains_into as _noc_run_trains_into
from .program import Program, ProgramError  # noqa: F401
from .program import compile as compile_program
from .result import RunResult

COUNTERS = ("events", "acs", "macs", "neuron_updates", "spikes", "state_words", "psum_ops",
            "packets", "flits", "flit_hops", "busy_cycles", "interchip_flits", "io_in_flits",
            "io_in_flit_hops", "io_out_flits")
(_EV, _AC, _MAC, _NU, _SP, _SW, _PS, _PK, _FL, _FH, _BUSY, _ICX, _IOI, _IOH, _IOO) = range(len(COUNTERS))
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_NREC = 8  # int64 fields per event record (:func:`_slot_records`)
_RT_ROOT = -(1 << 40)  # a route template's root parent: base + _RT_ROOT < 0 for any edge base
_CHUNK = 64  # samples per kernel call with an AER trace (bounds the memory of its recordings)
_HIST_CYCLES = 1 << 14  # packet-latency histogram bins per thread (grown and re-run when exceeded)


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


# ------------------------------------------------------------------------ kernel inputs

# Everything the kernels read is packed into one int64 array ``kb`` (field ``f`` is
# ``kb[ko[f]:ko[f + 1]]``; scalars are one-element fields; booleans are 0 / 1), built by
# :func:`_kernel_inputs` from a validated Program, and every thread's scratch into one
# int64 array ``wb`` (offsets ``wo``, sizes from :func:`_work_layout`). Two arrays per
# call instead of a hundred keep the kernels' calls cheap and their compilation short.
_KFIELDS = ("pop_model", "pop_size", "pop_off", "pop_ring", "ring_off", "slot_off", "pop_proj_ptr",
    "proj_order", "pop_tile_ptr", "tile_order", "pop_bt_ptr", "bt_start", "bt_off", "bt_vec", "pop_skip",
    "nrn_core", "nrn_bias", "nrn_thr", "nrn_vreset", "nrn_alpha", "nrn_asyn", "nrn_vleak", "nrn_pk",
    "nrn_hops", "nrn_icx", "proj_shift", "proj_acc_off", "proj_npost", "proj_in", "tile_core", "tile_kind",
    "tile_soma", "tile_ncols", "tile_fire", "tile_psum_flits", "tile_psum_hops", "tile_psum_icx", "grp_ptr",
    "grp_src", "grp_delay", "grp_pre_off", "rec_ptr", "rec", "pop_reuse", "in_dst_ptr", "in_dst_core",
    "in_pk", "in_hops", "in_icx", "M", "F", "payload", "reset_sub", "multi", "out_pop", "in_flits", "in_mult",
    "out_val_flits", "spiking", "n_acc", "dsrc_ptr", "dsrc", "pcore_ptr", "pcores", "pfire", "pcand_ptr",
    "pcand", "used_cores", "fire_all", "psum_all", "nrn_dst_ptr", "nrn_dst_edge", "nrn_dst_cross",
    "nrn_flit_count", "rt_ptr", "rt_link", "rt_parent", "tile_rt_ptr", "tile_dst_edge", "tile_cross", "R",
    "W", "extra", "fixed", "barrier", "pipelined", "link_pos", "link_at", "max_packets", "max_edges",
    "acc_pos", "proj_perm", "nrn_cls", "n_cls", "cr", "grp_cr_off", "grp_cr_a0", "grp_cr_na", "grp_cr_r",
    "grp_cr_tptr", "grp_cr_tiles", "cr_max")
(_K_POP_MODEL, _K_POP_SIZE, _K_POP_OFF, _K_POP_RING, _K_RING_OFF, _K_SLOT_OFF, _K_POP_PROJ_PTR, _K_PROJ_ORDER,
 _K_POP_TILE_PTR, _K_TILE_ORDER, _K_POP_BT_PTR, _K_BT_START, _K_BT_OFF, _K_BT_VEC, _K_POP_SKIP, _K_NRN_CORE,
 _K_NRN_BIAS, _K_NRN_THR, _K_NRN_VRESET, _K_NRN_ALPHA, _K_NRN_ASYN, _K_NRN_VLEAK, _K_NRN_PK, _K_NRN_HOPS,
 _K_NRN_ICX, _K_PROJ_SHIFT, _K_PROJ_ACC_OFF, _K_PROJ_NPOST, _K_PROJ_IN, _K_TILE_CORE, _K_TILE_KIND,
 _K_TILE_SOMA, _K_TILE_NCOLS, _K_TILE_FIRE, _K_TILE_PSUM_FLITS, _K_TILE_PSUM_HOPS, _K_TILE_PSUM_ICX,
 _K_GRP_PTR, _K_GRP_SRC, _K_GRP_DELAY, _K_GRP_PRE_OFF, _K_REC_PTR, _K_REC, _K_POP_REUSE, _K_IN_DST_PTR,
 _K_IN_DST_CORE, _K_IN_PK, _K_IN_HOPS, _K_IN_ICX, _K_M, _K_F, _K_PAYLOAD, _K_RESET_SUB, _K_MULTI, _K_OUT_POP,
 _K_IN_FLITS, _K_IN_MULT, _K_OUT_VAL_FLITS, _K_SPIKING, _K_N_ACC, _K_DSRC_PTR, _K_DSRC, _K_PCORE_PTR,
 _K_PCORES, _K_PFIRE, _K_PCAND_PTR, _K_PCAND, _K_USED_CORES, _K_FIRE_ALL, _K_PSUM_ALL, _K_NRN_DST_PTR,
 _K_NRN_DST_EDGE, _K_NRN_DST_CROSS, _K_NRN_FLIT_COUNT, _K_RT_PTR, _K_RT_LINK, _K_RT_PARENT, _K_TILE_RT_PTR,
 _K_TILE_DST_EDGE, _K_TILE_CROSS, _K_R, _K_W, _K_EXTRA, _K_FIXED, _K_BARRIER, _K_PIPELINED, _K_LINK_POS,
 _K_LINK_AT, _K_MAX_PACKETS, _K_MAX_EDGES, _K_ACC_POS, _K_PROJ_PERM, _K_NRN_CLS, _K_N_CLS, _K_CR, _K_GRP_CR_OFF,
 _K_GRP_CR_A0, _K_GRP_CR_NA, _K_GRP_CR_R, _K_GRP_CR_TPTR, _K_GRP_CR_TILES, _K_CR_MAX) = range(102)
_WFIELDS = ("v", "isyn", "acc", "nz", "nzv", "nzc", "Ib", "o_all", "t_nev", "t_cyc", "t_ac", "t_mac",
    "c_nev", "c_cyc", "c_ac", "c_mac", "same", "prev_i", "prev_v", "in_zero", "hot", "tc", "done",
    "core_free", "integ", "end_int", "psum_ready", "fend", "pk_t0", "pk_fl", "pk_id", "pk_base", "e_link",
    "e_parent", "e_owner", "e_start", "e_valid", "link_flits", "e_order", "e_ready", "l_cnt", "l_used", "l_at",
    "cls_tr", "tr_t0", "tr_len", "tr_rep", "tr_base", "pk_off", "pk_tr", "in_cnt", "m_ok", "m_t0", "m_dl",
    "cr_loc")
(_W_V, _W_ISYN, _W_ACC, _W_NZ, _W_NZV, _W_NZC, _W_IB, _W_O_ALL, _W_T_NEV, _W_T_CYC, _W_T_AC, _W_T_MAC,
 _W_C_NEV, _W_C_CYC, _W_C_AC, _W_C_MAC, _W_SAME, _W_PREV_I, _W_PREV_V, _W_IN_ZERO, _W_HOT, _W_TC, _W_DONE,
 _W_CORE_FREE, _W_INTEG, _W_END_INT, _W_PSUM_READY, _W_FEND, _W_PK_T0, _W_PK_FL, _W_PK_ID, _W_PK_BASE,
 _W_E_LINK, _W_E_PARENT, _W_E_OWNER, _W_E_START, _W_E_VALID, _W_LINK_FLITS, _W_E_ORDER, _W_E_READY, _W_L_CNT,
 _W_L_USED, _W_L_AT, _W_CLS_TR, _W_TR_T0, _W_TR_LEN, _W_TR_REP, _W_TR_BASE, _W_PK_OFF, _W_PK_TR,
 _W_IN_CNT, _W_M_OK, _W_M_T0, _W_M_DL, _W_CR_LOC) = range(55)


@njit(cache=True)
def _f(blob, off, i):
    """Field ``i`` of a packed blob."""
    return blob[off[i]:off[i + 1]]


# ------------------------------------------------------------------------ the kernel

@njit(cache=True)
def _encode_step(x, t, b, spiking, scale, top, nz, nzv, base):
    """``models.intref._InputEncoder`` for step ``t`` of sample ``b``, nonzero values
    only: their indices go to ``nz[base:]``, values to ``nzv[base:]``; returns the
    count. Spiking inputs were validated as non-negative integers; real-valued ones
    encode as ``clip(floor(x * scale + 0.5), 0, top)``, branch-free (every value is
    written, the count advances on nonzero ones: dense frames, no mispredictions)."""
    n = x.shape[2]
    c = 0
    if spiking:  # sparse events: a well-predicted branch beats writing every value
        for i in range(n):
            xi = x[t, b, i]
            if xi != 0:
                nz[base + c] = i
                nzv[base + c] = np.int64(xi)
                c += 1
    else:
        ftop = np.float64(top)
        for i in range(n):
            e = min(max(np.floor(np.float64(x[t, b, i]) * scale + 0.5), 0.0), ftop)
            nz[base + c] = i
            nzv[base + c] = np.int64(e)
            c += e >= 1.0
    return c


@njit(cache=True)
def _neurons(kb, ko, wb, wo, p, t, lo, hi, wbase):
    """Input currents and the integer-contract update of population ``p`` (all its
    neurons): outputs go to ``o_all`` and the nonzero ones, listed, to ``nz`` / ``nzv``
    from ``wbase`` (returns their count); ``hot[p]`` says whether a neuron ended at or
    above threshold (it fires at the next step even without input)."""
    pop_model = _f(kb, ko, _K_POP_MODEL)
    pop_off = _f(kb, ko, _K_POP_OFF)
    pop_size = _f(kb, ko, _K_POP_SIZE)
    nrn_bias = _f(kb, ko, _K_NRN_BIAS)
    pop_proj_ptr = _f(kb, ko, _K_POP_PROJ_PTR)
    proj_order = _f(kb, ko, _K_PROJ_ORDER)
    proj_acc_off = _f(kb, ko, _K_PROJ_ACC_OFF)
    proj_shift = _f(kb, ko, _K_PROJ_SHIFT)
    proj_in = _f(kb, ko, _K_PROJ_IN)
    pop_bt_ptr = _f(kb, ko, _K_POP_BT_PTR)
    bt_start = _f(kb, ko, _K_BT_START)
    bt_off = _f(kb, ko, _K_BT_OFF)
    bt_vec = _f(kb, ko, _K_BT_VEC)
    F = kb[ko[_K_F]]
    nrn_thr = _f(kb, ko, _K_NRN_THR)
    multi = kb[ko[_K_MULTI]]
    reset_sub = kb[ko[_K_RESET_SUB]]
    nrn_alpha = _f(kb, ko, _K_NRN_ALPHA)
    nrn_vleak = _f(kb, ko, _K_NRN_VLEAK)
    nrn_asyn = _f(kb, ko, _K_NRN_ASYN)
    nrn_vreset = _f(kb, ko, _K_NRN_VRESET)
    o_all = _f(wb, wo, _W_O_ALL)
    hot = _f(wb, wo, _W_HOT)
    Ib = _f(wb, wo, _W_IB)
    v = _f(wb, wo, _W_V)
    acc = _f(wb, wo, _W_ACC)
    isyn = _f(wb, wo, _W_ISYN)
    nz = _f(wb, wo, _W_NZ)
    nzv = _f(wb, wo, _W_NZV)
    acc_pos = _f(kb, ko, _K_ACC_POS)
    proj_perm = _f(kb, ko, _K_PROJ_PERM)
    model = pop_model[p]
    off = pop_off[p]
    npop = pop_size[p]
    thr = nrn_thr
    q0 = pop_proj_ptr[p]
    if (model == 0 and multi == 0 and reset_sub != 0 and pop_proj_ptr[p + 1] - q0 == 1
            and pop_bt_ptr[p + 1] == pop_bt_ptr[p]):
        # IF, binary spikes, subtractive reset, one projection: the common case in
        # branch-free passes (current and update; spike count; output list, which
        # takes a branch instead when spikes are few and is skipped when none)
        q = proj_order[q0]
        a0 = proj_acc_off[q]
        sh = proj_shift[q]
        hb = (np.int64(1) << (sh - 1)) if sh > 0 else np.int64(0)
        # current (sums gathered through acc_pos when stored in another order;
        # rshift_round by sh, hb = 0 when sh = 0) and update in one pass
        pa = acc[a0:a0 + npop]
        ap = acc_pos[a0:a0 + npop]
        pv = v[off:off + npop]
        pb = nrn_bias[off:off + npop]
        pt = thr[off:off + npop]
        po = o_all[off:off + npop]
        pz = nz[wbase:wbase + npop]
        pzv = nzv[wbase:wbase + npop]
        nhot = 0
        nnw = 0
        nsp = 0
        ps = pa
        if proj_perm[q] != 0:  # sums stored in another order: gather them first
            ps = Ib[:npop]
            for n in range(npop):
                ps[n] = acc[ap[n]]
        for n in range(npop):
            vv = min(max(pv[n] + pb[n] + ((ps[n] + hb) >> sh), lo), hi)
            th = pt[n]
            z = np.int64(1) if vv >= th else np.int64(0)
            vv -= z * th
            pv[n] = vv
            po[n] = z
            nhot += vv >= th
        for n in range(npop):  # counted apart: in the update loop the count made the MLP run 2 % slower
            nsp += po[n]
        if nsp * 8 >= npop:
            for n in range(npop):  # many spikes: a branch-free listing
                pz[nnw] = n
                pzv[nnw] = 1
                nnw += po[n]
        elif nsp > 0:  # few: a branch taken rarely is cheaper (none: no listing at all)
            for n in range(npop):
                if po[n] != 0:
                    pz[nnw] = n
                    pzv[nnw] = 1
                    nnw += 1
        if proj_in[q] == 0:
            pa[:] = 0
        hot[p] = nhot > 0
        return nnw
    for n in range(npop):
        Ib[n] = nrn_bias[off + n]
    for qi in range(pop_proj_ptr[p], pop_proj_ptr[p + 1]):
        q = proj_order[qi]
        a0 = proj_acc_off[q]
        sh = proj_shift[q]
        if sh == 0:
            for n in range(npop):
                Ib[n] += acc[acc_pos[a0 + n]]
        else:
            hb = np.int64(1) << (sh - 1)
            for n in range(npop):
                Ib[n] += (acc[acc_pos[a0 + n]] + hb) >> sh
        if not proj_in[q]:
            for n in range(npop):
                acc[a0 + n] = 0
    for bi in range(pop_bt_ptr[p], pop_bt_ptr[p + 1]):
        if t >= bt_start[bi]:
            bo = bt_off[bi]
            for n in range(npop):
                Ib[n] += bt_vec[bo + n]
    nhot = 0
    for n in range(npop):
        gi = off + n
        I = Ib[n]
        z = np.int64(0)
        o = np.int64(0)
        if model == 5:  # Threshold
            z = np.int64(1) if I >= thr[gi] else np.int64(0)
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
                th = thr[gi]
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
                if vv >= th:
                    nhot += 1
            v[gi] = vv
        o_all[gi] = o
    hot[p] = nhot > 0
    nnw = 0
    for n in range(npop):
        o = o_all[off + n]
        if o != 0:
            nz[wbase + nnw] = n
            nzv[wbase + nnw] = o
            nnw += 1
    return nnw


@njit(cache=True, inline="always")
def _add_tile_counts(t_nev, t_cyc, t_ac, t_mac, kk, nev, cyc, ac, mac):
    """Add a run of ``nev`` events of tile ``kk`` to its step counts."""
    t_nev[kk] += nev
    t_cyc[kk] += cyc
    t_ac[kk] += ac
    t_mac[kk] += mac


@njit(cache=True)
def _events(kb, ko, ent_acc, ent_w, wb, wo, p, t, inputs):
    """Step ``t``'s crossbar events of population ``p`` from the graph input's groups
    (``inputs``) or from the other groups: every nonzero source value ``x`` of a group's
    source slot at ``t - delay`` reads the source's rows, ``acc[a] += w * x`` over each
    row's entries (spans as contiguous slices; ``x == 1``, a binary spike, adds ``w``),
    and adds the rows' per-tile counts (events, integrate cycles, AC, MAC) to the step's
    tile counts; a short-row group reads one fixed-length row per event instead
    (:func:`_compact_rows`). Returns the number of rows read."""
    pop_size = _f(kb, ko, _K_POP_SIZE)
    pop_ring = _f(kb, ko, _K_POP_RING)
    ring_off = _f(kb, ko, _K_RING_OFF)
    slot_off = _f(kb, ko, _K_SLOT_OFF)
    grp_ptr = _f(kb, ko, _K_GRP_PTR)
    grp_src = _f(kb, ko, _K_GRP_SRC)
    grp_delay = _f(kb, ko, _K_GRP_DELAY)
    grp_pre_off = _f(kb, ko, _K_GRP_PRE_OFF)
    rec_ptr = _f(kb, ko, _K_REC_PTR)
    rec = _f(kb, ko, _K_REC)
    cr = _f(kb, ko, _K_CR)
    grp_cr_off = _f(kb, ko, _K_GRP_CR_OFF)
    grp_cr_a0 = _f(kb, ko, _K_GRP_CR_A0)
    grp_cr_na = _f(kb, ko, _K_GRP_CR_NA)
    grp_cr_r = _f(kb, ko, _K_GRP_CR_R)
    grp_cr_tptr = _f(kb, ko, _K_GRP_CR_TPTR)
    grp_cr_tiles = _f(kb, ko, _K_GRP_CR_TILES)
    loc = _f(wb, wo, _W_CR_LOC)
    acc = _f(wb, wo, _W_ACC)
    nz = _f(wb, wo, _W_NZ)
    nzv = _f(wb, wo, _W_NZV)
    nzc = _f(wb, wo, _W_NZC)
    t_nev = _f(wb, wo, _W_T_NEV)
    t_cyc = _f(wb, wo, _W_T_CYC)
    t_ac = _f(wb, wo, _W_T_AC)
    t_mac = _f(wb, wo, _W_T_MAC)
    n_rows = np.int64(0)
    k_run = -1  # the tile of the current run of rows, and its counts so far
    s_nev = np.int64(0)
    s_cyc = np.int64(0)
    s_ac = np.int64(0)
    s_mac = np.int64(0)
    for gg in range(grp_ptr[p], grp_ptr[p + 1]):
        s = grp_src[gg]
        if (s == 0) != inputs:
            continue
        d = grp_delay[gg]
        if t < d:
            continue
        sl = (t - d) % pop_ring[s]
        base = ring_off[s] + sl * pop_size[s]
        nn = nzc[slot_off[s] + sl]
        pp = grp_pre_off[gg]
        co = grp_cr_off[gg]
        if co >= 0:  # a short-row group: one fixed-length row per event (_compact_rows)
            if nn == 0:
                continue
            R = np.uint64(grp_cr_r[gg])
            na = np.uint64(grp_cr_na[gg])
            for j in range(nn):
                xv = nzv[base + j]
                b = np.uint64(co) + np.uint64(nz[base + j]) * R
                if xv == 1:
                    for u in range(R):
                        loc[u] += cr[b + u]
                else:
                    for u in range(na):
                        loc[u] += cr[b + u] * xv
                    for u in range(na, R):
                        loc[u] += cr[b + u]
            a0 = grp_cr_a0[gg]
            for u in range(na):
                acc[a0 + u] += loc[u]
                loc[u] = 0
            t0 = grp_cr_tptr[gg]
            for k in range(t0, grp_cr_tptr[gg + 1]):
                c = na + np.uint64(4 * (k - t0))
                _add_tile_counts(t_nev, t_cyc, t_ac, t_mac, grp_cr_tiles[k], loc[c], loc[c + 1], loc[c + 2],
                                 loc[c + 3])
                n_rows += loc[c]
                for u in range(4):
                    loc[c + u] = 0
            continue
        for j in range(nn):
            i = nz[base + j]
            xv = nzv[base + j]
            x32 = _I32_MIN <= xv <= _I32_MAX
            xs = np.int32(xv) if x32 else np.int32(0)
            for k in range(rec_ptr[pp + i], rec_ptr[pp + i + 1]):
                b = np.uint64(_NREC * k)  # record: acc, ent, n, tile, events, AC, MAC, cycles
                n = rec[b + 2]
                if n >= 0:  # a span: n consecutive accumulators
                    # unsigned indices: no negative-index wraparound, so the loop vectorises
                    ua = np.uint64(rec[b])
                    ue = np.uint64(rec[b + 1])
                    if xv == 1:  # a binary spike: add the weights (no 64-bit multiply)
                        for u in range(np.uint64(n)):
                            acc[ua + u] += ent_w[ue + u]
                    elif x32:  # both factors sign-extended from 32 bits: a 32 x 32 -> 64-bit multiply
                        for u in range(np.uint64(n)):
                            acc[ua + u] += ent_w[ue + u] * xs
                    else:
                        for u in range(np.uint64(n)):
                            acc[ua + u] += ent_w[ue + u] * xv
                else:  # a scattered row: -n entries from ent
                    e0 = rec[b + 1]
                    if xv == 1:
                        for e in range(e0, e0 - n):
                            acc[ent_acc[e]] += ent_w[e]
                    else:
                        for e in range(e0, e0 - n):
                            acc[ent_acc[e]] += ent_w[e] * xv
                # the tile's counts, in registers while the records stay on one tile
                kk = rec[b + 3]
                if kk != k_run:
                    if k_run >= 0:
                        _add_tile_counts(t_nev, t_cyc, t_ac, t_mac, k_run, s_nev, s_cyc, s_ac, s_mac)
                        n_rows += s_nev
                    k_run = kk
                    s_nev = 0
                    s_cyc = 0
                    s_ac = 0
                    s_mac = 0
                s_nev += rec[b + 4]
                s_ac += rec[b + 5]
                s_mac += rec[b + 6]
                s_cyc += rec[b + 7]
    if k_run >= 0:
        _add_tile_counts(t_nev, t_cyc, t_ac, t_mac, k_run, s_nev, s_cyc, s_ac, s_mac)
        n_rows += s_nev
    return n_rows


@njit(cache=True)
def _sample(kb, ko, ent_acc, ent_w, x, held, scale, top, bg, g, wb, wo, out, rec_off, rec_s, rec_v, cnt, rb, n_rec,
            tile_cyc, all_out, vcd_b, vcd_slot, vcd_s, vcd_v, timed, step_cycles, core_busy, hist, hstat):
    """All steps of sample ``bg`` of ``x`` (``rb``: its index in the recordings): event-driven per
    population (only rows of nonzero sources are read; input-fed sums reused while the
    input frames they read repeat, as are the I/O counters of the input events; a
    population with no input current, no bias and no neuron at threshold is not
    updated: nothing in it can change), then, when ``timed``,
    the step's cycle timing (:func:`_step_timing`)."""
    pop_size = _f(kb, ko, _K_POP_SIZE)
    M = kb[ko[_K_M]]
    pop_ring = _f(kb, ko, _K_POP_RING)
    ring_off = _f(kb, ko, _K_RING_OFF)
    slot_off = _f(kb, ko, _K_SLOT_OFF)
    in_dst_ptr = _f(kb, ko, _K_IN_DST_PTR)
    in_dst_core = _f(kb, ko, _K_IN_DST_CORE)
    in_flits = kb[ko[_K_IN_FLITS]]
    in_mult = kb[ko[_K_IN_MULT]]
    in_pk = _f(kb, ko, _K_IN_PK)
    in_hops = _f(kb, ko, _K_IN_HOPS)
    in_icx = _f(kb, ko, _K_IN_ICX)
    pop_tile_ptr = _f(kb, ko, _K_POP_TILE_PTR)
    tile_order = _f(kb, ko, _K_TILE_ORDER)
    pop_reuse = _f(kb, ko, _K_POP_REUSE)
    grp_ptr = _f(kb, ko, _K_GRP_PTR)
    grp_src = _f(kb, ko, _K_GRP_SRC)
    grp_delay = _f(kb, ko, _K_GRP_DELAY)
    pop_proj_ptr = _f(kb, ko, _K_POP_PROJ_PTR)
    proj_order = _f(kb, ko, _K_PROJ_ORDER)
    proj_in = _f(kb, ko, _K_PROJ_IN)
    proj_acc_off = _f(kb, ko, _K_PROJ_ACC_OFF)
    proj_npost = _f(kb, ko, _K_PROJ_NPOST)
    tile_core = _f(kb, ko, _K_TILE_CORE)
    tile_kind = _f(kb, ko, _K_TILE_KIND)
    tile_fire = _f(kb, ko, _K_TILE_FIRE)
    tile_soma = _f(kb, ko, _K_TILE_SOMA)
    tile_ncols = _f(kb, ko, _K_TILE_NCOLS)
    tile_psum_flits = _f(kb, ko, _K_TILE_PSUM_FLITS)
    tile_psum_hops = _f(kb, ko, _K_TILE_PSUM_HOPS)
    tile_psum_icx = _f(kb, ko, _K_TILE_PSUM_ICX)
    pop_off = _f(kb, ko, _K_POP_OFF)
    pop_skip = _f(kb, ko, _K_POP_SKIP)
    pop_model = _f(kb, ko, _K_POP_MODEL)
    payload = kb[ko[_K_PAYLOAD]]
    nrn_core = _f(kb, ko, _K_NRN_CORE)
    nrn_pk = _f(kb, ko, _K_NRN_PK)
    nrn_hops = _f(kb, ko, _K_NRN_HOPS)
    nrn_icx = _f(kb, ko, _K_NRN_ICX)
    out_pop = kb[ko[_K_OUT_POP]]
    out_val_flits = kb[ko[_K_OUT_VAL_FLITS]]
    fixed = kb[ko[_K_FIXED]]
    barrier = kb[ko[_K_BARRIER]]
    spiking = kb[ko[_K_SPIKING]]
    v = _f(wb, wo, _W_V)
    isyn = _f(wb, wo, _W_ISYN)
    acc = _f(wb, wo, _W_ACC)
    nzc = _f(wb, wo, _W_NZC)
    hot = _f(wb, wo, _W_HOT)
    in_zero = _f(wb, wo, _W_IN_ZERO)
    nz = _f(wb, wo, _W_NZ)
    nzv = _f(wb, wo, _W_NZV)
    prev_i = _f(wb, wo, _W_PREV_I)
    prev_v = _f(wb, wo, _W_PREV_V)
    same = _f(wb, wo, _W_SAME)
    t_nev = _f(wb, wo, _W_T_NEV)
    t_cyc = _f(wb, wo, _W_T_CYC)
    t_ac = _f(wb, wo, _W_T_AC)
    t_mac = _f(wb, wo, _W_T_MAC)
    c_nev = _f(wb, wo, _W_C_NEV)
    c_cyc = _f(wb, wo, _W_C_CYC)
    c_ac = _f(wb, wo, _W_C_AC)
    c_mac = _f(wb, wo, _W_C_MAC)
    tc = _f(wb, wo, _W_TC)
    o_all = _f(wb, wo, _W_O_ALL)
    in_cnt = _f(wb, wo, _W_IN_CNT)
    T = x.shape[0]
    P = pop_size.shape[0]
    n_cores = cnt.shape[2]
    lo = -(np.int64(1) << (M - 1))
    hi = (np.int64(1) << (M - 1)) - 1
    n_in = pop_size[0]
    v[:] = 0
    isyn[:] = 0
    acc[:] = 0
    nzc[:] = 0
    hot[:] = 0
    in_zero[:] = 1
    prev_n = -1
    for t in range(T):
        cnt_t = cnt[g, t]
        # ---- graph input: encoded nonzero values of the step
        sl0 = t % pop_ring[0]
        base0 = ring_off[0] + sl0 * n_in
        if held[t, bg]:  # a held frame: the same events
            nn0 = prev_n
            if pop_ring[0] > 1:  # (with one slot, it still holds them)
                for j in range(nn0):
                    nz[base0 + j] = prev_i[j]
                    nzv[base0 + j] = prev_v[j]
            eq = True
        else:
            nn0 = _encode_step(x, t, bg, spiking, scale, top, nz, nzv, base0)
            eq = t > 0 and nn0 == prev_n
            if eq:
                for j in range(nn0):
                    if nz[base0 + j] != prev_i[j] or nzv[base0 + j] != prev_v[j]:
                        eq = False
                        break
        nzc[slot_off[0] + sl0] = nn0
        if not eq:
            for j in range(nn0):
                prev_i[j] = nz[base0 + j]
                prev_v[j] = nzv[base0 + j]
            prev_n = nn0
        same[t] = eq
        if not eq:  # the I/O traffic of the step's events, per core (kept while they repeat)
            in_cnt[:] = 0
            for j in range(nn0):
                i = nz[base0 + j]
                if in_dst_ptr[i + 1] > in_dst_ptr[i]:
                    ci = 3 * in_dst_core[in_dst_ptr[i]]
                    fm = in_flits * (nzv[base0 + j] if in_mult != 0 else 1)
                    in_cnt[ci] += in_pk[i] * fm
                    in_cnt[ci + 1] += in_hops[i] * fm
                    in_cnt[ci + 2] += in_icx[i] * fm
        for c in range(n_cores):
            cnt_t[c, 12] += in_cnt[3 * c]
            cnt_t[c, 13] += in_cnt[3 * c + 1]
            cnt_t[c, 11] += in_cnt[3 * c + 2]
        if rb < n_rec:
            for j in range(nn0):
                all_out[rb, t, nz[base0 + j]] = nzv[base0 + j]
        # ---- populations in net order
        for p in range(1, P):
            k0 = pop_tile_ptr[p]
            k1 = pop_tile_ptr[p + 1]
            for ti in range(k0, k1):
                kk = tile_order[ti]
                t_nev[kk] = 0
                t_cyc[kk] = 0
                t_ac[kk] = 0
                t_mac[kk] = 0
            # may the input-fed accumulators of the previous step be kept?
            reuse = pop_reuse[p] != 0 and t > 0
            if reuse:
                for gg in range(grp_ptr[p], grp_ptr[p + 1]):
                    if grp_src[gg] == 0:
                        d = grp_delay[gg]
                        if t >= d and not (t - 1 >= d and same[t - d] != 0):
                            reuse = False
            if reuse:
                for ti in range(k0, k1):
                    kk = tile_order[ti]
                    t_nev[kk] += c_nev[kk]
                    t_cyc[kk] += c_cyc[kk]
                    t_ac[kk] += c_ac[kk]
                    t_mac[kk] += c_mac[kk]
            else:
                for qi in range(pop_proj_ptr[p], pop_proj_ptr[p + 1]):
                    q = proj_order[qi]
                    if proj_in[q]:
                        a0 = proj_acc_off[q]
                        for n in range(proj_npost[q]):
                            acc[a0 + n] = 0
            # events: input groups first (their counts are cached), then the rest
            n_rows = 0
            for phase in range(2):
                if phase == 0 and reuse:
                    continue
                n_rows += _events(kb, ko, ent_acc, ent_w, wb, wo, p, t, phase == 0)
                if phase == 0:
                    in_zero[p] = n_rows == 0
                    if pop_reuse[p]:
                        for ti in range(k0, k1):
                            kk = tile_order[ti]
                            c_nev[kk] = t_nev[kk]
                            c_cyc[kk] = t_cyc[kk]
                            c_ac[kk] = t_ac[kk]
                            c_mac[kk] = t_mac[kk]
                    n_rows = 0
            for ti in range(k0, k1):
                kk = tile_order[ti]
                c = tile_core[kk]
                cyc = t_cyc[kk]
                nev = t_nev[kk]
                cnt_t[c, 0] += nev
                cnt_t[c, 1] += t_ac[kk]
                cnt_t[c, 2] += t_mac[kk]
                if tile_kind[kk] == 0:
                    cnt_t[c, 10] += cyc + tile_fire[kk]
                else:
                    cnt_t[c, 10] += cyc
                    if nev > 0:
                        cs = tile_core[tile_soma[kk]]
                        cnt_t[cs, 6] += tile_ncols[kk]
                        pf = tile_psum_flits[kk]
                        if pf > 0:
                            cnt_t[c, 7] += 1
                            cnt_t[c, 8] += pf
                            cnt_t[c, 9] += pf * tile_psum_hops[kk]
                            cnt_t[c, 11] += pf * tile_psum_icx[kk]
                tcv = cyc if nev > 0 else -1
                tc[kk] = tcv
                if rb < n_rec:
                    tile_cyc[rb, t, kk] = tcv
            # ---- neurons (neuron_updates / state_words are added by the caller)
            off = pop_off[p]
            npop = pop_size[p]
            sl = t % pop_ring[p]
            wbase = ring_off[p] + sl * npop
            ws = slot_off[p] + sl
            ro = rec_off[p]
            quiet = pop_skip[p] != 0 and n_rows == 0 and in_zero[p] != 0 and hot[p] == 0
            if quiet:
                # no current, no bias, nothing at threshold: v unchanged, no output
                nzc[ws] = 0
                if ro >= 0:
                    for n in range(npop):
                        rec_v[t, bg, ro + n] = v[off + n]
                if bg == vcd_b:
                    for n in range(npop):
                        gi = off + n
                        if vcd_slot[gi] >= 0:
                            vcd_s[t, vcd_slot[gi]] = 0
                            vcd_v[t, vcd_slot[gi]] = v[gi]
                continue
            nnw = _neurons(kb, ko, wb, wo, p, t, lo, hi, wbase)
            nzc[ws] = nnw
            model = pop_model[p]
            counts = model == 0 or model == 2 or model == 4 or model == 5
            per_count = payload == 0 and (model == 0 or model == 2 or model == 4)
            value_out = model == 1 or model == 3 or model == 6
            # spikes, packets, flit-hops: summed in registers over runs of spikes on one core
            c_run = -1
            s4 = np.int64(0)
            s7 = np.int64(0)
            s9 = np.int64(0)
            s11 = np.int64(0)
            for j in range(nnw + 1):
                c = nrn_core[off + nz[wbase + j]] if j < nnw else -2
                if c != c_run:
                    if c_run >= 0:
                        cnt_t[c_run, 4] += s4
                        cnt_t[c_run, 7] += s7
                        cnt_t[c_run, 8] += s7
                        cnt_t[c_run, 9] += s9
                        cnt_t[c_run, 11] += s11
                    if j == nnw:
                        break
                    c_run = c
                    s4 = 0
                    s7 = 0
                    s9 = 0
                    s11 = 0
                gi = off + nz[wbase + j]
                o = nzv[wbase + j]
                mult = o if per_count else 1
                s4 += o if counts else 0
                s7 += nrn_pk[gi] * mult
                s9 += nrn_hops[gi] * mult
                s11 += nrn_icx[gi] * mult
            if p == out_pop or rb < n_rec:
                for j in range(nnw):
                    gi = off + nz[wbase + j]
                    o = nzv[wbase + j]
                    if p == out_pop:
                        if value_out:
                            cnt_t[nrn_core[gi], 14] += out_val_flits
                        else:
                            cnt_t[nrn_core[gi], 14] += o if payload == 0 else 1
                    if rb < n_rec:
                        all_out[rb, t, gi] = o
            if p == out_pop:
                for n in range(npop):
                    out[t, bg, n] = o_all[off + n]
            if ro >= 0:
                for n in range(npop):
                    rec_s[t, bg, ro + n] = o_all[off + n]
                    rec_v[t, bg, ro + n] = v[off + n]
            if bg == vcd_b:
                for n in range(npop):
                    gi = off + n
                    if vcd_slot[gi] >= 0:
                        vcd_s[t, vcd_slot[gi]] = o_all[gi]
                        vcd_v[t, vcd_slot[gi]] = v[gi]
        if timed:
            busy = _step_timing(kb, ko, wb, wo, t, core_busy[bg], hist[g], hstat[g])
            if fixed >= 0:
                if busy > fixed:
                    hstat[g, 2] += 1
                else:
                    busy = fixed
            step_cycles[bg, t] = busy + barrier


@njit(cache=True, nogil=True)
def _run(g, n_groups, kb, ko, ent_acc, ent_w, wo, x, held, scale, top, b0, nb, out, rec_off, rec_s, rec_v, cnt, n_rec,
         tile_cyc, all_out, vcd_b, vcd_slot, vcd_s, vcd_v, n_timed, step_cycles, core_busy, hist, hstat, lflits):
    """Thread ``g`` of ``n_groups``: samples ``b0 + g, b0 + g + n_groups, ...`` below
    ``b0 + nb`` of ``x`` (T, B, n_in); its counters go to ``cnt[g]``. Samples below
    ``n_rec`` (index within the call) record their outputs and tile cycles (traces);
    global samples below ``n_timed`` get the cycle timing, their flits per link go to
    ``lflits[g]``. ``wo``: the scratch layout (:func:`_work_layout`). Runs without the
    GIL (one Python thread per group)."""
    wb = np.zeros(wo[-1], np.int64)  # zero: the NoC's per-link counts (l_cnt) must start so
    wb[wo[_W_E_VALID]:wo[_W_E_VALID + 1]] = 1
    for b in range(g, nb, n_groups):
        bg = b0 + b
        _sample(kb, ko, ent_acc, ent_w, x, held, scale, top, bg, g, wb, wo, out, rec_off, rec_s, rec_v, cnt, b,
                n_rec, tile_cyc, all_out, vcd_b, vcd_slot, vcd_s, vcd_v, bg < n_timed, step_cycles,
                core_busy, hist, hstat)
    lf = _f(wb, wo, _W_LINK_FLITS)
    lflits[g, :lf.shape[0]] = lf


def _run_threads(n_groups: int, *args) -> None:
    """:func:`_run` on ``n_groups`` threads (the kernel releases the GIL)."""
    if n_groups == 1:
        _run(0, 1, *args)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n_groups) as ex:
        for f in [ex.submit(_run, g, n_groups, *args) for g in range(n_groups)]:
            f.result()


# ------------------------------------------------------------------------ compiled timing

@njit(cache=True)
def _noc_send(kb, ko, wb, wo, npk, E, hist, hstat):
    """Arbitrate the ``npk`` packets laid out in ``w`` (edges ``0 .. E-1``) with
    :func:`hwsim.noc._run`, the NoC model itself."""
    R = kb[ko[_K_R]]
    W = kb[ko[_K_W]]
    pk_t0 = _f(wb, wo, _W_PK_T0)
    pk_fl = _f(wb, wo, _W_PK_FL)
    e_valid = _f(wb, wo, _W_E_VALID)
    e_link = _f(wb, wo, _W_E_LINK)
    e_parent = _f(wb, wo, _W_E_PARENT)
    e_owner = _f(wb, wo, _W_E_OWNER)
    e_start = _f(wb, wo, _W_E_START)
    _noc_run_into(pk_t0[:npk], pk_fl[:npk], e_valid[:E], e_link[:E], e_parent[:E], e_owner[:E], R, W,
                  _f(kb, ko, _K_LINK_POS), _f(kb, ko, _K_LINK_AT), e_start[:E], _f(wb, wo, _W_LINK_FLITS),
                  _f(wb, wo, _W_L_CNT), _f(wb, wo, _W_L_USED), _f(wb, wo, _W_L_AT), _f(wb, wo, _W_E_ORDER),
                  _f(wb, wo, _W_E_READY))


@njit(cache=True, inline="always")
def _packet_tables(kb, ko, wb, wo):
    """The views :func:`_lay_out` writes packets and their edges through (taken once
    per call, not per packet)."""
    return (_f(kb, ko, _K_RT_LINK), _f(kb, ko, _K_RT_PARENT), _f(wb, wo, _W_PK_T0), _f(wb, wo, _W_PK_FL),
            _f(wb, wo, _W_PK_ID), _f(wb, wo, _W_PK_BASE), _f(wb, wo, _W_E_LINK), _f(wb, wo, _W_E_PARENT),
            _f(wb, wo, _W_E_OWNER))


@njit(cache=True, inline="always")
def _train_tables(wb, wo):
    """The views of the spike trains listed by :func:`_send_spikes_nb`: inject cycle,
    flits, first neuron and first edge of each train."""
    return _f(wb, wo, _W_TR_T0), _f(wb, wo, _W_TR_LEN), _f(wb, wo, _W_TR_REP), _f(wb, wo, _W_TR_BASE)


@njit(cache=True, inline="always")
def _lay_route(rt_link, rt_parent, r0, r1, owner, E, e_link, e_parent, e_owner):
    """Append route template ``r0:r1`` as edges ``E ..`` of packet ``owner`` (parents
    made absolute: ``E + parent``, negative at the root, whose template parent is
    :data:`_RT_ROOT`); returns the next free edge. A plain copy with unsigned indices,
    no branch: 1.9 ns per edge instead of 4.3 with a root test per edge (the NIR CNN's
    templates, in isolation)."""
    base = E  # a local: the tables share one blob, so a stored base would be reloaded per edge
    n = np.uint64(r1 - r0)
    u0 = np.uint64(r0)
    uE = np.uint64(E)
    for u in range(n):
        e_link[uE + u] = rt_link[u0 + u]
        e_parent[uE + u] = base + rt_parent[u0 + u]
        e_owner[uE + u] = owner
    return E + np.int64(n)


@njit(cache=True, inline="always")
def _lay_out(tabs, npk, E, t0, fl, pid, r0, r1):
    """Append packet ``npk`` (inject ``t0``, ``fl`` flits, route template ``r0:r1``) to
    the tables ``tabs`` of :func:`_packet_tables`."""
    rt_link, rt_parent, pk_t0, pk_fl, pk_id, pk_base, e_link, e_parent, e_owner = tabs
    pk_t0[npk] = t0
    pk_fl[npk] = fl
    pk_id[npk] = pid
    pk_base[npk] = E
    return _lay_route(rt_link, rt_parent, r0, r1, npk, E, e_link, e_parent, e_owner)


@njit(cache=True, inline="always")
def _record_latency(lat, hist, hstat):
    """A delivery ``lat`` cycles after injection, in the latency histogram and stats."""
    if lat < hist.shape[0]:
        hist[lat] += 1
    hstat[0] = max(hstat[0], lat)
    hstat[1] += 1


@njit(cache=True, inline="always")
def _arrival(e_start, base, de, W, L, t0, cross, extra):
    """Delivery cycle of a packet's tail at one destination: the head enters the
    destination's ejection edge ``de`` at ``e_start[base + de]`` and needs ``W`` more
    cycles, the tail ``L - 1`` after it (``de < 0``: same core, ``t0 + L - 1``), plus
    ``cross * extra`` for chip boundaries."""
    dl = (e_start[base + de] + W + L - 1) if de >= 0 else t0 + L - 1
    dl += cross * extra
    return dl


@njit(cache=True)
def _send_psums(kb, ko, wb, wo, cand, c0, c1, t0_core, key, hist, hstat):
    """Partial-sum packets of the tiles ``cand[c0:c1]`` that had events (``tc >= 0``),
    injected at ``t0_core[tile core]``; ``psum_ready[soma core]`` = last arrival.

    A call is simulated on a NoC of its own, so its deliveries depend only on which
    tiles send and when: when call site ``key`` (a population) sends the same tiles at
    the same cycles as its last call (``m_t0``; a held input frame repeats its
    partial sums every step), the last call's deliveries (``m_dl``) are replayed,
    with their latencies and link flits, instead of simulated again."""
    tile_core = _f(kb, ko, _K_TILE_CORE)
    tile_psum_flits = _f(kb, ko, _K_TILE_PSUM_FLITS)
    tile_rt_ptr = _f(kb, ko, _K_TILE_RT_PTR)
    tile_dst_edge = _f(kb, ko, _K_TILE_DST_EDGE)
    W = kb[ko[_K_W]]
    tile_cross = _f(kb, ko, _K_TILE_CROSS)
    extra = kb[ko[_K_EXTRA]]
    tile_soma = _f(kb, ko, _K_TILE_SOMA)
    rt_link = _f(kb, ko, _K_RT_LINK)
    tc = _f(wb, wo, _W_TC)
    psum_ready = _f(wb, wo, _W_PSUM_READY)
    pk_id = _f(wb, wo, _W_PK_ID)
    pk_fl = _f(wb, wo, _W_PK_FL)
    pk_t0 = _f(wb, wo, _W_PK_T0)
    e_start = _f(wb, wo, _W_E_START)
    pk_base = _f(wb, wo, _W_PK_BASE)
    link_flits = _f(wb, wo, _W_LINK_FLITS)
    m_ok = _f(wb, wo, _W_M_OK)
    m_t0 = _f(wb, wo, _W_M_T0)
    m_dl = _f(wb, wo, _W_M_DL)
    same = m_ok[key] != 0
    for i in range(c0, c1):
        kk = cand[i]
        t0 = t0_core[tile_core[kk]] if tc[kk] >= 0 else -1
        if t0 != m_t0[i]:
            same = False
        m_t0[i] = t0
    if same:  # the last call's deliveries and link flits again
        for i in range(c0, c1):
            t0 = m_t0[i]
            if t0 >= 0:
                kk = cand[i]
                dl = m_dl[i]
                _record_latency(dl - t0, hist, hstat)
                dc = tile_core[tile_soma[kk]]
                psum_ready[dc] = max(psum_ready[dc], dl)
                L = tile_psum_flits[kk]
                for e in range(tile_rt_ptr[kk], tile_rt_ptr[kk + 1]):
                    link_flits[rt_link[e]] += L
        return
    m_ok[key] = 1
    tabs = _packet_tables(kb, ko, wb, wo)
    npk = 0
    E = 0
    for i in range(c0, c1):
        kk = cand[i]
        if m_t0[i] >= 0:
            E = _lay_out(tabs, npk, E, m_t0[i], tile_psum_flits[kk], i, tile_rt_ptr[kk], tile_rt_ptr[kk + 1])
            npk += 1
    if npk == 0:
        return
    _noc_send(kb, ko, wb, wo, npk, E, hist, hstat)
    for n in range(npk):
        i = pk_id[n]
        kk = cand[i]
        L = pk_fl[n]
        t0 = pk_t0[n]
        dl = _arrival(e_start, pk_base[n], tile_dst_edge[kk], W, L, t0, tile_cross[kk], extra)
        _record_latency(dl - t0, hist, hstat)
        m_dl[i] = dl
        dc = tile_core[tile_soma[kk]]
        psum_ready[dc] = max(psum_ready[dc], dl)


@njit(cache=True)
def _send_spikes_nb(kb, ko, wb, wo, p0, p1, t, hist, hstat):
    """Spike packets of populations ``p0 .. p1-1`` at step ``t`` (neuron order), each
    injected when its core's fire phase ends (``fend``); returns the last delivery
    (0 without packets). Packets are listed, then simulated as trains when they form
    a few (:func:`_send_trains`), else one by one."""
    pop_ring = _f(kb, ko, _K_POP_RING)
    ring_off = _f(kb, ko, _K_RING_OFF)
    pop_size = _f(kb, ko, _K_POP_SIZE)
    slot_off = _f(kb, ko, _K_SLOT_OFF)
    pop_off = _f(kb, ko, _K_POP_OFF)
    nrn_dst_ptr = _f(kb, ko, _K_NRN_DST_PTR)
    nrn_flit_count = _f(kb, ko, _K_NRN_FLIT_COUNT)
    nrn_core = _f(kb, ko, _K_NRN_CORE)
    nrn_cls = _f(kb, ko, _K_NRN_CLS)
    rt_ptr = _f(kb, ko, _K_RT_PTR)
    nrn_dst_edge = _f(kb, ko, _K_NRN_DST_EDGE)
    W = kb[ko[_K_W]]
    nrn_dst_cross = _f(kb, ko, _K_NRN_DST_CROSS)
    extra = kb[ko[_K_EXTRA]]
    fend = _f(wb, wo, _W_FEND)
    nzc = _f(wb, wo, _W_NZC)
    nz = _f(wb, wo, _W_NZ)
    nzv = _f(wb, wo, _W_NZV)
    pk_id = _f(wb, wo, _W_PK_ID)
    pk_fl = _f(wb, wo, _W_PK_FL)
    pk_t0 = _f(wb, wo, _W_PK_T0)
    pk_off = _f(wb, wo, _W_PK_OFF)
    pk_tr = _f(wb, wo, _W_PK_TR)
    e_start = _f(wb, wo, _W_E_START)
    pk_base = _f(wb, wo, _W_PK_BASE)
    cls_tr = _f(wb, wo, _W_CLS_TR)
    tr_t0, tr_len, tr_rep, tr_base = _train_tables(wb, wo)
    # the packets, in neuron order, and their trains: a train = the packets of one
    # route class (same source core, so the same inject cycle), in packet order;
    # pk_off = flits of the train before the packet
    npk = 0
    ntr = 0
    one_flit = True
    for p in range(p0, p1):
        sl = t % pop_ring[p]
        base = ring_off[p] + sl * pop_size[p]
        nn = nzc[slot_off[p] + sl]
        off = pop_off[p]
        for j in range(nn):
            gi = off + nz[base + j]
            if nrn_dst_ptr[gi + 1] == nrn_dst_ptr[gi]:
                continue
            o = nzv[base + j]
            fl = max(abs(o), 1) if nrn_flit_count[gi] else 1
            one_flit &= fl == 1
            c = nrn_cls[gi]
            tr = cls_tr[c] - 1  # cls_tr: train + 1, 0 = none yet (left all zero)
            if tr < 0:
                tr = ntr
                ntr += 1
                cls_tr[c] = ntr
                tr_t0[tr] = fend[nrn_core[gi]]
                tr_len[tr] = 0
                tr_rep[tr] = gi
            pk_id[npk] = gi
            pk_fl[npk] = fl
            pk_t0[npk] = tr_t0[tr]
            pk_off[npk] = tr_len[tr]
            pk_tr[npk] = tr
            tr_len[tr] += fl
            npk += 1
    for tr in range(ntr):
        cls_tr[nrn_cls[tr_rep[tr]]] = 0
    if npk == 0:
        return 0
    trains = npk >= 4 * ntr and _send_trains(kb, ko, wb, wo, ntr)
    hstat[3] += 1
    hstat[4] += trains
    if not trains:
        tabs = _packet_tables(kb, ko, wb, wo)
        E = 0
        for i in range(npk):
            gi = pk_id[i]
            E = _lay_out(tabs, i, E, pk_t0[i], pk_fl[i], gi, rt_ptr[gi], rt_ptr[gi + 1])
        _noc_send(kb, ko, wb, wo, npk, E, hist, hstat)
    last = np.int64(0)
    H = hist.shape[0]
    mx = hstat[0]  # the latency stats in registers (hist's stores could alias them)
    cnt = np.int64(0)
    if trains and one_flit:
        # one-flit packets: at each destination of the class (its first neuron's), a
        # train's packet k arrives k cycles after the head, e_start + W (ejection) +
        # cross * extra; on the source core itself all arrive at t0
        for tr in range(ntr):
            gi = tr_rep[tr]
            t0 = tr_t0[tr]
            n = tr_len[tr]
            for d in range(nrn_dst_ptr[gi], nrn_dst_ptr[gi + 1]):
                de = nrn_dst_edge[d]
                x = nrn_dst_cross[d] * extra
                if de >= 0:
                    lat0 = e_start[tr_base[tr] + de] + W + x - t0
                    for k in range(min(n, max(H - lat0, 0))):
                        hist[lat0 + k] += 1
                    lat1 = lat0 + n - 1
                else:
                    lat0 = x
                    lat1 = x
                    if x < H:
                        hist[x] += n
                mx = max(mx, lat1)
                cnt += n
                last = max(last, t0 + lat1)
    else:
        for i in range(npk):
            gi = pk_id[i]
            L = pk_fl[i]
            t0 = pk_t0[i]
            if trains:  # the train's edges, pk_off cycles after its head
                b = tr_base[pk_tr[i]]
                lag = pk_off[i]
            else:
                b = pk_base[i]
                lag = 0
            for d in range(nrn_dst_ptr[gi], nrn_dst_ptr[gi + 1]):
                dl = _arrival(e_start, b, nrn_dst_edge[d], W + lag, L, t0, nrn_dst_cross[d], extra)
                lat = dl - t0
                if lat < H:
                    hist[lat] += 1
                mx = max(mx, lat)
                cnt += 1
                last = max(last, dl)
    hstat[0] = mx
    hstat[1] += cnt
    return last


@njit(cache=True)
def _send_trains(kb, ko, wb, wo, ntr):
    """Lay out the ``ntr`` trains listed by :func:`_send_spikes_nb` as one packet each
    (``tr_len`` flits, injected at ``tr_t0``, the route of its first neuron) and run
    :func:`hwsim.noc._run_trains_into`: True if no train waited (every packet then
    crosses its train's links ``pk_off`` cycles after the train's head)."""
    rt_ptr = _f(kb, ko, _K_RT_PTR)
    rt_link = _f(kb, ko, _K_RT_LINK)
    rt_parent = _f(kb, ko, _K_RT_PARENT)
    tr_t0, tr_len, tr_rep, tr_base = _train_tables(wb, wo)
    e_link = _f(wb, wo, _W_E_LINK)
    e_parent = _f(wb, wo, _W_E_PARENT)
    e_owner = _f(wb, wo, _W_E_OWNER)
    E = 0
    for tr in range(ntr):
        gi = tr_rep[tr]
        tr_base[tr] = E
        E = _lay_route(rt_link, rt_parent, rt_ptr[gi], rt_ptr[gi + 1], tr, E, e_link, e_parent, e_owner)
    return _noc_run_trains_into(tr_t0[:ntr], tr_len[:ntr], _f(wb, wo, _W_E_VALID)[:E], e_link[:E], e_parent[:E],
                                e_owner[:E], kb[ko[_K_R]], kb[ko[_K_W]], _f(kb, ko, _K_LINK_POS),
                                _f(kb, ko, _K_LINK_AT), _f(wb, wo, _W_E_START)[:E], _f(wb, wo, _W_LINK_FLITS),
                                _f(wb, wo, _W_L_CNT), _f(wb, wo, _W_L_USED), _f(wb, wo, _W_L_AT),
                                _f(wb, wo, _W_E_ORDER), _f(wb, wo, _W_E_READY))


@njit(cache=True)
def _step_timing(kb, ko, wb, wo, t, core_busy, hist, hstat):
    """Cycles of step ``t`` of one sample from its tile cycles ``tc`` and its outputs
    (the spike lists in ``nz``), before fixed-step padding and barrier: the model of
    :func:`_timing` (sync) or :func:`_timing_pipelined`, same packets in the same order."""
    pop_size = _f(kb, ko, _K_POP_SIZE)
    fire_all = _f(kb, ko, _K_FIRE_ALL)
    pipelined = kb[ko[_K_PIPELINED]]
    tile_core = _f(kb, ko, _K_TILE_CORE)
    psum_all = _f(kb, ko, _K_PSUM_ALL)
    used_cores = _f(kb, ko, _K_USED_CORES)
    dsrc_ptr = _f(kb, ko, _K_DSRC_PTR)
    dsrc = _f(kb, ko, _K_DSRC)
    pop_tile_ptr = _f(kb, ko, _K_POP_TILE_PTR)
    pcore_ptr = _f(kb, ko, _K_PCORE_PTR)
    pcores = _f(kb, ko, _K_PCORES)
    tile_order = _f(kb, ko, _K_TILE_ORDER)
    pcand = _f(kb, ko, _K_PCAND)
    pcand_ptr = _f(kb, ko, _K_PCAND_PTR)
    pfire = _f(kb, ko, _K_PFIRE)
    tc = _f(wb, wo, _W_TC)
    integ = _f(wb, wo, _W_INTEG)
    psum_ready = _f(wb, wo, _W_PSUM_READY)
    fend = _f(wb, wo, _W_FEND)
    done = _f(wb, wo, _W_DONE)
    core_free = _f(wb, wo, _W_CORE_FREE)
    end_int = _f(wb, wo, _W_END_INT)
    P = pop_size.shape[0]
    C = fire_all.shape[0]
    if pipelined:
        for c in range(C):
            integ[c] = 0
            psum_ready[c] = 0
        for kk in range(tile_core.shape[0]):
            if tc[kk] > 0:
                integ[tile_core[kk]] += tc[kk]
        _send_psums(kb, ko, wb, wo, psum_all, 0, psum_all.shape[0], integ, 0, hist, hstat)
        for c in range(C):
            fs = max(psum_ready[c], integ[c])
            fend[c] = fs + fire_all[c]
            core_busy[c] += integ[c] + fire_all[c]
        busy = np.int64(0)
        for c in used_cores:
            busy = max(busy, fend[c])
        last = _send_spikes_nb(kb, ko, wb, wo, 1, P, t, hist, hstat)
        return max(last, busy)
    for p in range(P):
        done[p] = 0
    for c in range(C):
        core_free[c] = 0
    for p in range(1, P):
        ready = np.int64(0)
        for i in range(dsrc_ptr[p], dsrc_ptr[p + 1]):
            ready = max(ready, done[dsrc[i]])
        if pop_tile_ptr[p + 1] == pop_tile_ptr[p]:
            continue
        for c in range(C):
            fend[c] = 0
        for i in range(pcore_ptr[p], pcore_ptr[p + 1]):
            c = pcores[i]
            integ[c] = 0
            psum_ready[c] = 0
        for ti in range(pop_tile_ptr[p], pop_tile_ptr[p + 1]):
            kk = tile_order[ti]
            if tc[kk] > 0:
                integ[tile_core[kk]] += tc[kk]
        for i in range(pcore_ptr[p], pcore_ptr[p + 1]):
            c = pcores[i]
            st = max(ready, core_free[c])
            end_int[c] = st + integ[c]
        _send_psums(kb, ko, wb, wo, pcand, pcand_ptr[p], pcand_ptr[p + 1], end_int, p, hist, hstat)
        fin = ready
        for i in range(pcore_ptr[p], pcore_ptr[p + 1]):
            c = pcores[i]
            fs = max(psum_ready[c], end_int[c])
            fe = fs + pfire[i]
            fend[c] = fe
            core_busy[c] += integ[c] + pfire[i]
            core_free[c] = fe
            fin = max(fin, fe)
        last = _send_spikes_nb(kb, ko, wb, wo, p, p + 1, t, hist, hstat)
        done[p] = max(last, fin)
    busy = np.int64(0)
    for p in range(P):
        busy = max(busy, done[p])
    return busy


def _event_index(prog: Program):
    """Rows of each population grouped by (source, delay) with a CSR over the source's
    neurons: (slot_off, grp_ptr, grp_src, grp_delay, grp_pre_off, pre_ptr, grp_rows,
    row_tile, proj_in, pop_reuse) for :func:`_run`."""
    P = prog.n_pops
    R = prog.row_src.size
    row_tile = np.zeros(R, np.int64)
    row_pop = np.zeros(R, np.int64)
    for k in range(prog.n_tiles):
        lo_, hi_ = int(prog.tile_row_ptr[k, 0]), int(prog.tile_row_ptr[k, 1])
        row_tile[lo_:hi_] = k
        row_pop[lo_:hi_] = prog.tile_pop[k]
    slot_off = np.concatenate([[0], np.cumsum(prog.pop_ring)]).astype(np.int64)
    # group key (pop, src, delay)
    D = int(prog.pop_ring.max(initial=1)) + 1
    key = (row_pop * P + prog.row_src) * D + prog.row_delay
    ukeys, ginv = np.unique(key, return_inverse=True)
    g_pop = ukeys // (P * D)
    g_src = (ukeys // D) % P
    g_delay = ukeys % D
    grp_ptr = np.searchsorted(g_pop, np.arange(P + 1)).astype(np.int64)
    sizes = prog.pop_size[g_src]
    grp_pre_off = np.concatenate([[0], np.cumsum(sizes + 1)])[:-1].astype(np.int64)
    order = np.lexsort((np.arange(R), prog.row_pre, ginv))
    pos = grp_pre_off[ginv] + prog.row_pre  # slot in the per-group CSR
    counts = np.bincount(pos, minlength=int((sizes + 1).sum()))
    pre_ptr = np.zeros(int((sizes + 1).sum()) + 1, np.int64)
    # ptr over the concatenated per-group arrays: pre_ptr[grp_pre_off[g] + i] = start of (g, i)
    pre_ptr[1:] = np.cumsum(counts)
    grp_rows = order.astype(np.int64)
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


def _route_templates(src_xy, ptr, dst_xy, gw: int, gh: int, tree: bool):
    """Routes of packets laid out once by :func:`hwsim.noc._routes`: per packet ``p`` its
    edges ``ptr_out[p]:ptr_out[p+1]`` (link id, parent relative to the packet's first
    edge, -1 at the root) in the order the NoC model numbers them, and per destination
    its last edge relative to the packet (-1: at the source)."""
    edge_off, edge_link, edge_parent, edge_packet, edge_count, dst_edge, valid = _noc_routes(
        src_xy, ptr, dst_xy, gw, gh, tree)
    owner = np.repeat(np.arange(src_xy.shape[0]), np.diff(ptr))
    par = edge_parent[valid]
    par_rel = np.where(par >= 0, par - edge_off[edge_packet[valid]], -1)
    dst_rel = np.where(dst_edge >= 0, dst_edge - edge_off[owner], -1)
    ptr_out = np.zeros(src_xy.shape[0] + 1, np.int64)
    np.cumsum(edge_count, out=ptr_out[1:])
    return ptr_out, edge_link[valid], par_rel.astype(np.int64), dst_rel.astype(np.int64)


def _route_classes(ncore: np.ndarray, dst_ptr: np.ndarray, dst_core: np.ndarray, g1: int):
    """Neurons whose spike packets take the same route: the same source core and the
    same destination cores in the same order (so the same route template, edge for
    edge, and the same destination edges). Returns the class of every neuron (-1: no
    destinations, or a graph-input neuron) and the number of classes. The spikes of
    one class at one step leave their core together, a train (:func:`_send_trains`)."""
    N = ncore.size
    cls = np.full(N, -1, np.int64)
    seen: dict = {}
    for gi in range(g1, N):
        a, b = int(dst_ptr[gi]), int(dst_ptr[gi + 1])
        if b > a:
            cls[gi] = seen.setdefault((int(ncore[gi]), dst_core[a:b].tobytes()), len(seen))
    return cls, len(seen)


def _timing_plan(prog: Program) -> dict:
    """Constant tables of the compiled timing model (:func:`_step_timing`): per
    population its delay-0 sources, cores (with fire cycles) and partial-sum tiles;
    route templates of every neuron's spike packet and every tile's partial-sum
    packet, and their inter-chip crossings per destination."""
    chip = prog.chip
    P, C, K, N = prog.n_pops, prog.n_cores, prog.n_tiles, int(prog.pop_off[-1])
    pe = prog.pe_width
    fire_tile = (prog.tile_ncols + pe - 1) // pe
    soma = prog.tile_kind == 0
    dsrc = [sorted({int(prog.proj_src[j]) for j in range(prog.proj_src.size)
                    if prog.proj_dst[j] == p and prog.proj_delay[j] == 0}) for p in range(P)]
    pcores, pfire, pcand = [], [], []
    for p in range(P):
        tk = prog.tile_order[prog.pop_tile_ptr[p]:prog.pop_tile_ptr[p + 1]]
        cores = np.unique(prog.tile_core[tk])
        fire = np.zeros(max(C, 1), np.int64)
        np.add.at(fire, prog.tile_core[tk[soma[tk]]], fire_tile[tk[soma[tk]]])
        pcores.append(cores)
        pfire.append(fire[cores])
        pcand.append(tk[(prog.tile_kind[tk] == 1) & (prog.tile_psum_flits[tk] > 0)])

    def csr(lists):
        ptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
        flat = np.concatenate([np.asarray(x, np.int64) for x in lists]) if lists else np.zeros(0, np.int64)
        return ptr, flat.astype(np.int64)

    fire_all = np.bincount(prog.tile_core[soma], weights=fire_tile[soma], minlength=C).astype(np.int64)
    # route templates: spikes of every neuron (graph-input neurons send none), then partial sums
    g1 = int(prog.pop_off[1])
    tree = chip.noc.multicast == "xy-tree"
    gw, gh = int(prog.grid_w), int(prog.grid_h)
    ncore = np.where(np.arange(N) < g1, 0, prog.nrn_core).astype(np.int64)
    dptr = prog.nrn_dst_ptr.copy()
    dptr[:g1 + 1] = dptr[g1]  # graph-input neurons: no spike packets
    dcore = prog.nrn_dst_core[dptr[0]:]
    dptr = dptr - dptr[0]
    n_ptr, n_link, n_par, n_dst = _route_templates(prog.core_xy[ncore], dptr, prog.core_xy[dcore], gw, gh, tree)
    t_src = prog.tile_core
    t_dst = prog.tile_core[prog.tile_soma]
    t_ptr, t_link, t_par, t_dst_edge = _route_templates(prog.core_xy[t_src], np.arange(K + 1), prog.core_xy[t_dst],
                                                        gw, gh, tree)
    nrn_dst_edge = np.full(prog.nrn_dst_core.size, -1, np.int64)
    nrn_dst_edge[prog.nrn_dst_ptr[g1]:] = n_dst
    own = np.repeat(np.arange(N), np.diff(prog.nrn_dst_ptr))
    nrn_cross = np.abs(prog.core_chip[prog.nrn_dst_core] - prog.core_chip[ncore[own]]).sum(axis=1)
    tile_cross = np.abs(prog.core_chip[t_dst] - prog.core_chip[t_src]).sum(axis=1)
    pm = prog.pop_model[np.searchsorted(prog.pop_off, np.arange(N), side="right") - 1]
    nrn_cls, n_cls = _route_classes(ncore, prog.nrn_dst_ptr, prog.nrn_dst_core, g1)
    R, W = int(chip.noc.router_cycles), int(chip.noc.link_cycles)
    fixed = chip.timing.step_cycles
    link_pos, link_at = _noc_link_tables(gw, gh)
    d_ptr, d_flat = csr(dsrc)
    pc_ptr, pc_flat = csr(pcores)
    _, pf_flat = csr(pfire)
    cd_ptr, cd_flat = csr(pcand)
    rt_par = np.concatenate([n_par, t_par]).astype(np.int64)
    return {
        "dsrc_ptr": d_ptr, "dsrc": d_flat, "pcore_ptr": pc_ptr, "pcores": pc_flat, "pfire": pf_flat, "pcand_ptr": cd_ptr,
        "pcand": cd_flat, "used_cores": np.unique(prog.tile_core).astype(np.int64), "fire_all": fire_all,
        "psum_all": np.flatnonzero((prog.tile_kind == 1) & (prog.tile_psum_flits > 0)).astype(np.int64),
        "nrn_dst_ptr": prog.nrn_dst_ptr, "nrn_dst_edge": nrn_dst_edge, "nrn_dst_cross": nrn_cross.astype(np.int64),
        "nrn_flit_count": ((prog.payload_bits == 0) & ((pm == 0) | (pm == 2) | (pm == 4))),
        "rt_ptr": n_ptr, "rt_link": np.concatenate([n_link, t_link]).astype(np.int64),
        "rt_parent": np.where(rt_par < 0, _RT_ROOT, rt_par),
        "tile_rt_ptr": t_ptr + n_ptr[-1],
        "tile_dst_edge": t_dst_edge, "tile_cross": tile_cross.astype(np.int64), "R": R, "W": W,
        "extra": max(0, int(chip.noc.interchip_cycles) - R - W),
        "fixed": -1 if fixed == "dynamic" else int(fixed), "barrier": int(chip.timing.barrier_cycles),
        "pipelined": bool(prog.pipelined), "link_pos": link_pos, "link_at": link_at,
        "max_packets": max(N, K), "nrn_cls": nrn_cls, "n_cls": n_cls,
        "max_edges": int(n_link.size + t_link.size),
    }


def _no_timing_plan(prog: Program) -> dict:
    """Empty timing tables (same types as :func:`_timing_plan`) for runs without timing."""
    z = np.zeros(0, np.int64)
    one = np.zeros(1, np.int64)
    return {"dsrc_ptr": one, "dsrc": z, "pcore_ptr": one, "pcores": z, "pfire": z, "pcand_ptr": one, "pcand": z, "used_cores": z,
                "fire_all": np.zeros(prog.n_cores, np.int64), "psum_all": z, "nrn_dst_ptr": one, "nrn_dst_edge": z,
                "nrn_dst_cross": z, "nrn_flit_count": np.zeros(0, np.bool_), "rt_ptr": one, "rt_link": z, "rt_parent": z,
                "tile_rt_ptr": one, "tile_dst_edge": z, "tile_cross": z, "R": 1, "W": 0, "extra": 0, "fixed": -1, "barrier": 0,
                "pipelined": False, "link_pos": z, "link_at": z, "max_packets": 0, "max_edges": 0,
                "nrn_cls": z, "n_cls": 0}


def _kernel_inputs(prog: Program, reset: str, spikes: str, in_flits: int, in_mult: bool, out_val_flits: int,
                   timed: bool):
    """The kernels' packed inputs of a validated program: ``(kb, ko, ent_acc, ent_w)``
    (fields :data:`_KFIELDS`; crossbar entries as the narrowest integers that hold them)."""
    (slot_off, grp_ptr, grp_src, grp_delay, grp_pre_off, pre_ptr, grp_rows, row_tile, proj_in,
     pop_reuse) = _event_index(prog)
    acc_pos, proj_perm, ea, ew = _acc_layout(prog)
    # crossbar entries as narrow ints (less memory traffic in the kernel; same values)
    ent_acc = ea.astype(np.int32) if prog.n_acc < 2 ** 31 else ea
    lo_w, hi_w = int(ew.min(initial=0)), int(ew.max(initial=0))
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
        pop_skip[p] = (prog.pop_model[p] == 0 and not prog.nrn_bias[sl].any()
                       and prog.pop_bt_ptr[p + 1] == prog.pop_bt_ptr[p] and (prog.nrn_thr[sl] > 0).all()
                       and (reset == "subtract" or ((prog.nrn_vreset[sl] >= lo) & (prog.nrn_vreset[sl] <= hi)).all()))
    plan = _timing_plan(prog) if timed else _no_timing_plan(prog)
    spans, ent_w = _row_spans(prog.row_ptr, ea, ent_w, row_tile)
    row_cyc = (prog.row_ncols + pe - 1) // pe + prog.event_overhead
    plan.update(_slot_records(pre_ptr, grp_rows, prog.row_ptr, row_tile, prog.row_mac, row_cyc, spans))
    plan.update(_compact_rows(grp_src, grp_pre_off, pre_ptr, grp_rows, prog.row_ptr, ea, ew, row_tile,
                              prog.row_mac, row_cyc, prog.pop_size))
    fields = dict(
        pop_model=prog.pop_model, pop_size=prog.pop_size, pop_off=prog.pop_off, pop_ring=prog.pop_ring,
        ring_off=prog.ring_off, slot_off=slot_off, pop_proj_ptr=prog.pop_proj_ptr, proj_order=prog.proj_order,
        pop_tile_ptr=prog.pop_tile_ptr, tile_order=prog.tile_order, pop_bt_ptr=prog.pop_bt_ptr,
        bt_start=prog.bt_start, bt_off=prog.bt_off, bt_vec=prog.bt_vec, pop_skip=pop_skip,
        nrn_core=prog.nrn_core, nrn_bias=prog.nrn_bias, nrn_thr=prog.nrn_thr, nrn_vreset=prog.nrn_vreset,
        nrn_alpha=prog.nrn_alpha, nrn_asyn=prog.nrn_asyn, nrn_vleak=prog.nrn_vleak, nrn_pk=prog.nrn_pk,
        nrn_hops=prog.nrn_hops, nrn_icx=prog.nrn_icx,
        proj_shift=prog.proj_shift, proj_acc_off=prog.proj_acc_off, proj_npost=prog.proj_npost, proj_in=proj_in,
        tile_core=prog.tile_core, tile_kind=prog.tile_kind, tile_soma=prog.tile_soma, tile_ncols=prog.tile_ncols,
        tile_fire=((prog.tile_ncols + pe - 1) // pe).astype(np.int64), tile_psum_flits=prog.tile_psum_flits,
        tile_psum_hops=prog.tile_psum_hops, tile_psum_icx=prog.tile_psum_icx,
        grp_ptr=grp_ptr, grp_src=grp_src, grp_delay=grp_delay, grp_pre_off=grp_pre_off,
        pop_reuse=pop_reuse.astype(np.bool_),
        in_dst_ptr=prog.in_dst_ptr, in_dst_core=prog.in_dst_core, in_pk=prog.in_pk, in_hops=prog.in_hops,
        in_icx=prog.in_icx,
        M=M, F=int(prog.leak_frac_bits), payload=int(prog.payload_bits), reset_sub=reset == "subtract",
        multi=spikes == "multi", out_pop=int(prog.output_pop), in_flits=int(in_flits), in_mult=bool(in_mult),
        out_val_flits=int(out_val_flits), spiking=bool(prog.input_spiking), n_acc=int(prog.n_acc),
        acc_pos=acc_pos, proj_perm=proj_perm, **plan)
    kb, ko = _pack(fields, _KFIELDS)
    return kb, ko, ent_acc, ent_w


def _acc_layout(prog: Program):
    """Where each accumulator lives in the kernel's ``acc`` array, and the crossbar
    entries addressed accordingly.

    The accumulator block of a projection onto a (C, H, W) population is stored in the
    order (soma core, y, x, c) instead of the population's (c, y, x): a convolution row
    (one input pixel) then addresses runs of ``channels x window width`` consecutive
    accumulators instead of runs of at most the window width, which the kernel adds as
    contiguous slices (:func:`_row_spans`). A block is reordered only when that gives
    fewer runs. Returns ``(acc_pos, proj_perm, ent_acc, ent_w)``: ``acc_pos[a]`` is the
    slot of accumulator ``a`` (projection offset + post index); ``proj_perm[q]`` says
    whether projection ``q``'s block is reordered (the neuron update then gathers its
    sums through ``acc_pos``); the entries address slots and are sorted by slot within
    each row (the order of an integer sum does not change it)."""
    acc_pos = np.arange(int(prog.n_acc), dtype=np.int64)
    proj_perm = np.zeros(prog.proj_src.size, np.bool_)
    ea, ew = prog.ent_acc, prog.ent_w
    row_of = np.repeat(np.arange(prog.row_ptr.size - 1), np.diff(prog.row_ptr))
    shapes = [tuple(p.shape) for p in prog.net.populations]

    def runs(a, r):
        """Runs of consecutive slots ``a`` within rows ``r``, the entries sorted by slot."""
        o = np.lexsort((a, r))
        a, r = a[o], r[o]
        return int(a.size > 0) + int(np.count_nonzero((a[1:] != a[:-1] + 1) | (r[1:] != r[:-1])))

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
        a_sel, r_sel = ea[sel], row_of[sel]
        if runs(pos[a_sel - a0], r_sel) < runs(a_sel, r_sel):
            acc_pos[a0:a0 + npost] = pos
            proj_perm[q] = True
    if proj_perm.any():
        ea = acc_pos[ea]
        o = np.lexsort((ea, row_of))
        ea, ew = ea[o], ew[o]
    return acc_pos, proj_perm, ea, ew


_KIN_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _cached_kernel_inputs(prog: Program, *key):
    """:func:`_kernel_inputs` built once per program and options (a compiled
    :class:`Program` is not modified after :func:`hwsim.program.compile`), so batches
    run through the same program do not rebuild the tables (0.2 s for the NIR CNN)."""
    per_prog = _KIN_CACHE.setdefault(prog, {})
    if key not in per_prog:
        per_prog[key] = _kernel_inputs(prog, *key)
    return per_prog[key]


def _slot_records(pre_ptr: np.ndarray, grp_rows: np.ndarray, row_ptr: np.ndarray, row_tile: np.ndarray,
                  row_mac: np.ndarray, row_cyc: np.ndarray, spans: dict) -> dict:
    """What an event of each (group, source neuron) slot does, as records the kernel
    reads in order: ``rec_ptr`` over the slots (slot ``s`` reads the rows
    ``grp_rows[pre_ptr[s]:pre_ptr[s + 1]]``) and ``rec``, :data:`_NREC` int64 per record,
    ``(acc, ent, n, tile, events, ac, mac, cycles)``:

    - ``n >= 0``: a span (:func:`_row_spans`), ``acc[acc + u] += w[ent + u] * x`` for
      ``u < n``;
    - ``n < 0``: a scattered row, ``acc[ent_acc[e]] += w[e] * x`` for ``ent <= e < ent - n``;
    - the row's tile, and its counts on its first record (zeros on the others): one
      crossbar event, its entries as AC (SNN tile) or MAC (ANN tile) operations, and its
      integrate cycles ``row_cyc``.

    One flat table per event instead of a chain of lookups (slot, rows, spans, counts):
    the shipped MLP's second-layer event costs 12 ns instead of 22 ns."""
    r = np.asarray(grp_rows, np.int64)
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
    mac = np.asarray(row_mac)[rr] != 0
    rec = np.zeros((occ.size, _NREC), np.int64)
    rec[:, 0] = np.where(span, sp_acc, 0)
    rec[:, 1] = np.where(span, sp_ent, np.asarray(row_ptr)[rr])
    rec[:, 2] = np.where(span, sp_len, -ne)
    rec[:, 3] = np.asarray(row_tile, np.int64)[rr]
    rec[:, 4] = first
    rec[:, 5] = np.where(first & ~mac, ne, 0)
    rec[:, 6] = np.where(first & mac, ne, 0)
    rec[:, 7] = np.where(first, np.asarray(row_cyc, np.int64)[rr], 0)
    slot = np.repeat(np.arange(pre_ptr.size - 1), np.diff(pre_ptr))
    per_slot = np.zeros(pre_ptr.size - 1, np.int64)
    np.add.at(per_slot, slot, k)
    rec_ptr = np.zeros(pre_ptr.size, np.int64)
    np.cumsum(per_slot, out=rec_ptr[1:])
    return {"rec_ptr": rec_ptr, "rec": rec}


def _compact_rows(grp_src: np.ndarray, grp_pre_off: np.ndarray, pre_ptr: np.ndarray, grp_rows: np.ndarray,
                  row_ptr: np.ndarray, ea: np.ndarray, ew: np.ndarray, row_tile: np.ndarray, row_mac: np.ndarray,
                  row_cyc: np.ndarray, pop_size: np.ndarray, max_acc: int = 64, max_tiles: int = 4,
                  max_entries: int = 1 << 17) -> dict:
    """Short-row groups as one fixed-length row per source neuron.

    A group (population, source, delay) whose rows all address a window of at most
    ``max_acc`` accumulators ``a0 .. a0 + na - 1`` on at most ``max_tiles`` tiles
    (a classifier layer: 10 outputs) gets a dense table ``cr``: source ``i``'s row is
    ``R = na + 4 * nt`` int64, the sums of its rows' weights per window slot
    (``cr[i, a - a0] = sum of w over the source's entries at slot a``), then per tile
    ``k`` of the group its counts (events, integrate cycles, AC, MAC) of one event.
    An event of value ``x`` adds ``x`` times the weight part and the count part once
    into a local row; the group's sums and tile counts are added once per step. The
    same integer sums and counts as the records (:func:`_slot_records`, still built),
    without their per-event lookups: the shipped MLP's second layer (92 events of 10
    entries per step) spends most of an event's time on them. Groups with a table
    bigger than ``max_entries`` keep the records. Returns the kernel fields ``cr``,
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
        if r.size == 0 or ln.sum() == 0:
            continue
        ent = np.repeat(row_ptr[r] - np.concatenate([[0], np.cumsum(ln)[:-1]]), ln) + np.arange(int(ln.sum()))
        a = np.asarray(ea, np.int64)[ent]
        lo, hi = int(a.min()), int(a.max())
        tiles, tk = np.unique(row_tile[r], return_inverse=True)
        na, nt = hi - lo + 1, tiles.size
        R = -(-(na + 4 * nt) // 4) * 4  # padded with zeros to whole 4-lane vectors
        if na > max_acc or nt > max_tiles or n_src * R > max_entries:
            continue
        src = np.repeat(np.arange(n_src), np.diff(pre_ptr[s0:s0 + n_src + 1]))  # source of each row
        tab = np.zeros((n_src, R), np.int64)
        np.add.at(tab, (np.repeat(src, ln), a - lo), np.asarray(ew, np.int64)[ent])
        mac = np.asarray(row_mac)[r] != 0
        c = na + 4 * tk
        np.add.at(tab, (src, c), 1)
        np.add.at(tab, (src, c + 1), np.asarray(row_cyc, np.int64)[r])
        np.add.at(tab, (src, c + 2), np.where(mac, 0, ln))
        np.add.at(tab, (src, c + 3), np.where(mac, ln, 0))
        off[g], a0s[g], nas[g], rs[g] = pos, lo, na, R
        pos += tab.size
        blocks.append(tab.reshape(-1))
        tiles_all.append(tiles.astype(np.int64))
        tptr[g + 1] = tptr[g] + nt
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64))
    return {"cr": cat(blocks), "grp_cr_off": off, "grp_cr_a0": a0s, "grp_cr_na": nas, "grp_cr_r": rs,
            "grp_cr_tptr": tptr, "grp_cr_tiles": cat(tiles_all), "cr_max": int(rs.max(initial=0))}


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
    ea = np.asarray(ea, np.int64)
    R = row_ptr.size - 1
    n_ent = np.diff(row_ptr)
    row_of = np.repeat(np.arange(R), n_ent)
    start = np.ones(ea.size, np.bool_)  # an entry that starts a span
    if ea.size:
        step = np.diff(ea)
        start[1:] = (step <= 0) | (step > max_gap + 1)
        start[row_ptr[:-1][n_ent > 0]] = True
    n_runs = np.bincount(row_of[start], minlength=R)
    row_span = (n_runs > 0) & (n_ent >= min_mean_run * np.maximum(n_runs, 1))
    sel = start & row_span[row_of]
    first = np.flatnonzero(sel)
    starts = np.flatnonzero(start)
    last = np.append(starts[1:], ea.size)[np.searchsorted(starts, first)] - 1
    s_lo, s_hi = ea[first], ea[last]
    if first.size:  # single-span rows: widen to the tile's slot range when nearly full
        t_ent = np.asarray(row_tile, np.int64)[row_of]
        n_t = int(t_ent.max()) + 1
        t_lo = np.full(n_t, np.iinfo(np.int64).max)
        t_hi = np.full(n_t, -1)
        np.minimum.at(t_lo, t_ent, ea)
        np.maximum.at(t_hi, t_ent, ea)
        r_sp = row_of[first]
        tt = t_ent[first]
        length = s_hi - s_lo + 1
        wide = (n_runs[r_sp] == 1) & ((t_hi[tt] - t_lo[tt] + 1) - length <= length // 4)
        s_lo = np.where(wide, t_lo[tt], s_lo)
        s_hi = np.where(wide, t_hi[tt], s_hi)
    s_len = s_hi - s_lo + 1
    s_off = np.zeros(first.size + 1, np.int64)
    np.cumsum(s_len, out=s_off[1:])
    span_w = np.zeros(int(s_off[-1]), ew.dtype)
    in_span = row_span[row_of]
    sid = (np.cumsum(sel) - 1)[in_span]
    span_w[s_off[sid] + ea[in_span] - s_lo[sid]] = ew[in_span]
    span_ptr = np.zeros(R + 1, np.int64)
    np.cumsum(np.where(row_span, n_runs, 0), out=span_ptr[1:])
    tables = {"row_span": row_span, "span_ptr": span_ptr, "span_acc": s_lo, "span_ent": ew.size + s_off[:-1],
              "span_len": s_len}
    return tables, np.concatenate([ew, span_w])


def _pack(fields: dict, names: tuple):
    """One int64 array holding ``fields[n]`` for ``n`` in ``names``, in order, and the
    offsets (``len(names) + 1``)."""
    parts = [np.asarray(fields[n]).astype(np.int64).reshape(-1) for n in names]
    off = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([a.size for a in parts], out=off[1:])
    return np.concatenate(parts) if parts else np.zeros(0, np.int64), off


def _work_layout(prog: Program, T: int, kb: np.ndarray, ko: np.ndarray) -> np.ndarray:
    """Offsets of the per-thread scratch fields (:data:`_WFIELDS`) in one int64 array."""
    N, P = int(prog.pop_off[-1]), prog.n_pops
    K, C = max(prog.n_tiles, 1), max(prog.n_cores, 1)
    ring = max(int((prog.pop_ring * prog.pop_size).sum()), 1)
    n_in = max(int(prog.pop_size[0]), 1)
    npk = max(int(kb[ko[_K_MAX_PACKETS]]), 1)
    ncand = max(int(ko[_K_PCAND + 1] - ko[_K_PCAND]), int(ko[_K_PSUM_ALL + 1] - ko[_K_PSUM_ALL]), 1)
    E = max(int(kb[ko[_K_MAX_EDGES]]), 1)
    nl = max(int(ko[_K_LINK_POS + 1] - ko[_K_LINK_POS]), 1)
    size = {"v": N, "isyn": N, "acc": max(prog.n_acc, 1), "nz": ring, "nzv": ring, "nzc": int(prog.pop_ring.sum()),
            "Ib": max(int(prog.pop_size.max()), 1), "o_all": N, "same": T, "prev_i": n_in, "prev_v": n_in, "in_zero": P,
            "hot": P, "done": P, "pk_t0": npk, "pk_fl": npk, "pk_id": npk, "pk_base": npk, "link_flits": nl,
            "l_cnt": nl, "l_used": nl, "l_at": nl, "pk_off": npk, "pk_tr": npk, "in_cnt": 3 * C,
            "m_ok": P, "m_t0": ncand, "m_dl": ncand, "cr_loc": max(int(kb[ko[_K_CR_MAX]]), 1)}
    ncls = max(int(kb[ko[_K_N_CLS]]), 1)
    for n in ("cls_tr", "tr_t0", "tr_len", "tr_rep", "tr_base"):
        size[n] = ncls
    for n in ("t_nev", "t_cyc", "t_ac", "t_mac", "c_nev", "c_cyc", "c_ac", "c_mac", "tc"):
        size[n] = K
    for n in ("core_free", "integ", "end_int", "psum_ready", "fend"):
        size[n] = C
    for n in ("e_link", "e_parent", "e_owner", "e_start", "e_valid", "e_order", "e_ready"):
        size[n] = E
    off = np.zeros(len(_WFIELDS) + 1, np.int64)
    np.cumsum([size[n] for n in _WFIELDS], out=off[1:])
    return off


@njit(cache=True, parallel=True)
def _scan_inputs(x, spiking):
    """One pass over ``x`` (T, B, n), parallel over samples: per step and sample, does it
    hold a NaN / infinity, (``spiking``) a value that is not a non-negative integer, and
    (not ``spiking``) is it a held frame, identical to the sample's previous step (the
    kernel then reuses that step's events instead of reading and encoding the frame)?"""
    T, B, n = x.shape
    nonfinite = np.zeros((T, B), np.bool_)
    notcount = np.zeros((T, B), np.bool_)
    held = np.zeros((T, B), np.bool_)
    for b in prange(B):
        for t in range(T):
            tp = t - 1 if t > 0 else 0
            bad = False
            frac = False
            diff = False
            for i in range(n):  # branch-free, so it vectorises
                f = x[t, b, i]
                bad |= (f - f) != 0  # inf - inf and NaN - NaN are NaN
                frac |= (f < 0) | (f != np.floor(f))
                diff |= f != x[tp, b, i]
            nonfinite[t, b] = bad
            notcount[t, b] = spiking and frac and not bad
            held[t, b] = t > 0 and not spiking and not diff
    return nonfinite, notcount, held


def _kernel_input_array(net, x: np.ndarray, input_scale):
    """``inputs`` as (T, B, n_in) float32 / float64 for :func:`_encode_step`, validated as
    ``models.intref._InputEncoder`` does (same errors); returns (x, held, scale, top),
    ``held`` (T, B): the frame repeats the sample's previous one (:func:`_scan_inputs`)."""
    meta = _quant_meta(net)
    shape = tuple(net.input.shape)
    if int(np.prod(x.shape[2:])) != int(np.prod(shape)):
        raise SimulationError(
            f"inputs of shape {x.shape} do not match input '{net.input.name}' of shape {shape} "
            f"(expected (T, B, {', '.join(map(str, shape))}))")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)  # exact for every value the encoder keeps exact (|x| < 2**53)
    x = np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1], -1))
    nonfinite, notcount, held = _scan_inputs(x, bool(net.input_spiking))
    if nonfinite.any():
        raise SimulationError("inputs contain NaN or infinite values")
    if net.input_spiking:
        if notcount.any():
            raise SimulationError(f"spiking inputs must be non-negative integers (spikes or event counts); "
                                  f"step {int(np.flatnonzero(notcount.any(axis=1))[0])} is not")
        return x, held, 1.0, 0
    scale = float(meta["input_scale"] if input_scale is None else input_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise SimulationError(f"input_scale must be a positive number, got {input_scale!r}")
    return x, held, scale, (1 << int(meta["input_bits"])) - 1


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
        self.link_flits = np.zeros(int(prog.grid_w) * int(prog.grid_h) * 4, np.int64)
        self.spike_calls = np.zeros(2, np.int64)  # (spike calls, as trains: none here)

    def __call__(self, inject, src_cores, dptr, dcores, flits):
        """Delivery cycle per (packet, destination): :func:`hwsim.noc.simulate_noc`'s
        model without its validation (the packets come from the compiled program),
        packet by packet (no trains: this model is the kernel's reference)."""
        prog = self.prog
        t0 = np.asarray(inject, dtype=np.int64).reshape(-1)
        fl = np.broadcast_to(np.asarray(flits, dtype=np.int64), t0.shape)
        dl, lf = _noc_deliver(t0, fl, prog.core_xy[src_cores], dptr, prog.core_xy[dcores], int(prog.grid_w),
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


def _finish(prog, mode, step_cycles, core_busy, hist, overruns, depth, link_flits, spike_calls):
    """The timing dict of :func:`simulate` (see :class:`RunResult`): ``link_flits`` (flat,
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


def _timing_setup(prog: Program, tile_cyc: np.ndarray):
    """What both timing modes start from: the fixed step (or None), barrier, PE width,
    sizes, zeroed step/busy arrays, the NoC model and fire cycles per tile."""
    chip = prog.chip
    fixed = chip.timing.step_cycles if chip.timing.step_cycles != "dynamic" else None
    pe = prog.pe_width
    Bt, T = tile_cyc.shape[:2]
    return (fixed, int(chip.timing.barrier_cycles), pe, Bt, T, np.zeros((Bt, T), np.int64),
            np.zeros((Bt, prog.n_cores), np.int64), _Noc(prog), (prog.tile_ncols + pe - 1) // pe)


def _timing(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None, tl_sample: int = 0) -> dict:
    """Sync-mode cycles of the timed samples (see the module docstring)."""
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
                    for c in used_idx:
                        tl.phase(c, t, "integrate", start[c], end_int[c])
                        tl.phase(c, t, "psum wait", end_int[c], fstart[c])
                        tl.phase(c, t, "fire", fstart[c], fend[c])
                # spikes
                fin = max(fin, _send_spikes(prog, noc, tl, all_out[b, t], int(prog.pop_off[p]),
                                            int(prog.pop_off[p + 1]), fend, t))
                done[p] = fin
            busy = int(done.max(initial=0))
            if fixed is not None:
                overruns += int(busy > fixed)
                busy = max(busy, int(fixed))
            step_cycles[b, t] = busy + barrier
            if tl is not None:
                tl.step(t, busy + barrier)
    return _finish(prog, "sync", step_cycles, core_busy, noc.hist(), overruns, 0, noc.link_flits, noc.spike_calls)


def _timing_pipelined(prog: Program, tile_cyc: np.ndarray, all_out: np.ndarray, timeline=None,
                      tl_sample: int = 0) -> dict:
    """Pipelined-mode cycles of the timed samples (see the module docstring)."""
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
                for c in np.flatnonzero(used):
                    tl.phase(c, t, "integrate", 0, integ[c])
                    tl.phase(c, t, "psum wait", integ[c], fstart[c])
                    tl.phase(c, t, "fire", fstart[c], fend[c])
            busy = max(busy, _send_spikes(prog, noc, tl, all_out[b, t], g1, int(prog.pop_off[-1]), fend, t))
            if fixed is not None:
                overruns += int(busy > fixed)
                busy = max(busy, int(fixed))
            step_cycles[b, t] = busy + barrier
            if tl is not None:
                tl.step(t, busy + barrier)
    return _finish(prog, "pipelined", step_cycles, core_busy, noc.hist(), overruns, depth, noc.link_flits,
                   noc.spike_calls)


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
    from .traces import TraceConfig, vcd_selection

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
    in_meta = net.metadata.get("quant", {})
    in_flits = 1 if prog.input_spiking else -(-int(in_meta.get("input_bits", 8)) // max(prog.flit_bits, 1))
    in_mult = bool(prog.input_spiking and prog.payload_bits == 0)
    out_val_flits = -(-int(prog.membrane_bits) // max(prog.flit_bits, 1))
    xk, held, scale, top = _kernel_input_array(net, x, input_scale)
    # the Chrome timeline needs the step-by-step Python timing model; otherwise the
    # kernel times the samples itself
    py_timing = bool(n_timed and trace.chrome is not None)
    kin = _cached_kernel_inputs(prog, reset, spikes, in_flits, in_mult, out_val_flits, bool(n_timed and not py_timing))
    # neuron updates and state words do not depend on the data: every neuron of every
    # population updates once per step and sample
    g1 = int(prog.pop_off[1])
    nmod = prog.pop_model[np.searchsorted(prog.pop_off, np.arange(g1, N), side="right") - 1]
    nu_core = np.bincount(prog.nrn_core[g1:], minlength=prog.n_cores).astype(np.int64)
    sw_core = np.bincount(prog.nrn_core[g1:], weights=np.where(nmod == 4, 2, 1),
                          minlength=prog.n_cores).astype(np.int64)
    hist_cycles = _HIST_CYCLES
    while True:
        try:
            res = _simulate_run(prog, kin, xk, held, scale, top, T, B, R, rec_off, n_out, n_timed, py_timing, trace, names,
                                vcd_gids, vcd_b, vcd_slot, vcd_s, vcd_v, hist_cycles)
            break
        except _LatencyOverflow as e:  # a packet latency beyond the histogram: run again with room
            hist_cycles = e.needed
    out, rec_s, rec_v, counters, tim, paths = res
    counters[:, :, _NU] += B * nu_core[:prog.n_cores]
    counters[:, :, _SW] += B * sw_core[:prog.n_cores]
    spikes_d = {nme: rec_s[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
                for nme in want}
    memb_d = {nme: rec_v[:, :, rec_off[names.index(nme)]:rec_off[names.index(nme)] + prog.pop_size[names.index(nme)]]
              for nme in want}
    out_shape = tuple(net.pop[net.output].shape)
    return RunResult(
        output=out.reshape((T, B) + out_shape), spikes=spikes_d, membrane=memb_d,
        counters=counters, counter_names=list(COUNTERS),
        core_population=_core_population(prog),
        timing=tim, meta={"reset": reset, "spikes": spikes, "chip": prog.chip.name if prog.chip else "",
                          "weight_bits": prog.weight_bits, "membrane_bits": prog.membrane_bits,
                          "clock_hz": float(prog.chip.timing.clock_hz) if prog.chip else 0.0,
                          "steps": T, "samples": B, "mode": prog.mode, "traces": paths})


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


def _simulate_run(prog, kin, xk, held, scale, top, T, B, R, rec_off, n_out, n_timed, py_timing, trace, names,
                  vcd_gids, vcd_b, vcd_slot, vcd_s, vcd_v, hist_cycles):
    """The kernel calls of :func:`simulate` and the traces: (output, spike and membrane
    recordings, counters, timing dict or None, trace paths). Raises
    :class:`_LatencyOverflow` (after removing every partial trace file) when a packet
    latency exceeds ``hist_cycles``."""
    import numba

    from .traces import AerWriter, ChromeWriter, _Offset, write_vcd

    N = int(prog.pop_off[-1])
    K = max(prog.n_tiles, 1)
    C = prog.n_cores
    n_fused = 0 if py_timing else n_timed
    kb, ko, ent_acc, ent_w = kin
    wo = _work_layout(prog, T, kb, ko)
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
    chunk = B
    if trace.aer is not None:  # bounded memory: the AER recordings of a chunk are T x N per sample
        chunk = int(max(1, min(_CHUNK, int(trace.chunk_bytes) // max(T * N * 8, 1))))
    writers = []
    try:
        aer_w = None
        if trace.aer is not None:
            aer_w = AerWriter(trace.aer, names, prog.pop_off, prog.nrn_core, trace.aer_include_input)
            writers.append(aer_w)
        for b0 in range(0, B, chunk):
            b1 = min(B, b0 + chunk)
            nb = b1 - b0
            G = max(1, min(nb, numba.get_num_threads()))
            cnt = np.zeros((G, T, C, len(COUNTERS)), np.int64)
            hist_g = np.zeros((G, hist.size), np.int64)
            # per thread: max latency, deliveries, overruns, spike NoC calls, of them as trains
            hstat = np.zeros((G, 5), np.int64)
            lflits = np.zeros((G, n_links), np.int64)
            hstat[:, 0] = -1
            nt = max(0, min(n_py - b0, nb))
            nr = nb if aer_w is not None else nt
            if aer_w is None:  # the Python timing's recordings written in place
                tc, ao = tile_cyc[b0:b0 + nt], all_out[b0:b0 + nt]
            else:
                tc, ao = np.zeros((nr, T, K), np.int64), np.zeros((nr, T, N), np.int64)
            _run_threads(G, kb, ko, ent_acc, ent_w, wo, xk, held, scale, top, b0, nb, out, rec_off, rec_s, rec_v, cnt,
                         nr, tc, ao, vcd_b, vcd_slot, vcd_s, vcd_v, n_fused, step_cycles, core_busy, hist_g, hstat,
                         lflits)
            counters += cnt.sum(axis=0)
            hist += hist_g.sum(axis=0)
            lat_max = max(lat_max, int(hstat[:, 0].max()))
            n_lat += int(hstat[:, 1].sum())
            overruns += int(hstat[:, 2].sum())
            calls += hstat[:, 3:5].sum(axis=0)
            link_flits += lflits.sum(axis=0)
            if aer_w is not None:
                if nt:
                    tile_cyc[b0:b0 + nt] = tc[:nt]
                    all_out[b0:b0 + nt] = ao[:nt]
                aer_w.add(b0, ao)
            del tc, ao
        if lat_max >= hist.size and n_fused:
            raise _LatencyOverflow(lat_max + 1)
        tim = None
        depth = pipeline_depth(prog) if prog.pipelined else 0
        if n_fused:
            tim = _finish(prog, "pipelined" if prog.pipelined else "sync", step_cycles, core_busy,
                          hist[:lat_max + 1] if n_lat else np.zeros(0, np.int64), overruns, depth, link_flits,
                          calls)
        elif n_timed:
            tl = None
            if trace.chrome is not None:
                pl_grid_w = int(prog.core_chip[:, 0].max(initial=0)) + 1
                cw = ChromeWriter(trace.chrome, prog.chip.timing.clock_hz, prog.core_chip, pl_grid_w,
                                  _core_population(prog), prog.mode)
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
    return out, rec_s, rec_v, counters, tim, paths
