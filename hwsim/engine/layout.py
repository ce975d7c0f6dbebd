"""The kernels' data layout: the counter columns, and the packed tables every kernel reads
(one int64 blob ``kb`` with offsets ``ko``, built by :mod:`hwsim.engine.build`) and every
thread writes (``wb`` / ``wo``), with the named records the kernels open them as."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

__all__ = ["COUNTERS", "NREC", "GEO_N", "KERNEL_FIELDS", "WORK_FIELDS", "Packed", "Inputs", "Outputs", "VcdProbe",
           "TimingOut", "field", "kernel_field", "pack"]

# Counter columns of ``RunResult.counters`` (T, cores, counters), the only home of their order.
COUNTERS = ("events", "acs", "macs", "neuron_updates", "spikes", "state_words", "psum_ops",
            "packets", "flits", "flit_hops", "busy_cycles", "interchip_flits", "io_in_flits",
            "io_in_flit_hops", "io_out_flits")
(CNT_EVENTS, CNT_ACS, CNT_MACS, CNT_NEURON_UPDATES, CNT_SPIKES, CNT_STATE_WORDS, CNT_PSUM_OPS, CNT_PACKETS,
 CNT_FLITS, CNT_FLIT_HOPS, CNT_BUSY_CYCLES, CNT_INTERCHIP_FLITS, CNT_IO_IN_FLITS, CNT_IO_IN_FLIT_HOPS,
 CNT_IO_OUT_FLITS) = range(len(COUNTERS))
__all__ += ["CNT_" + n.upper() for n in COUNTERS]

# Columns of the compiled timing's per-thread stats ``TimingOut.hstat`` (G, HSTAT): the
# largest packet latency (-1: none), deliveries, fixed-step overruns, spike NoC calls,
# and of them the calls sent as trains.
HSTAT = ("lat_max", "deliveries", "overruns", "noc_calls", "train_calls")
HSTAT_LAT_MAX, HSTAT_DELIVERIES, HSTAT_OVERRUNS, HSTAT_NOC_CALLS, HSTAT_TRAIN_CALLS = range(len(HSTAT))
__all__ += ["HSTAT"] + ["HSTAT_" + n.upper() for n in HSTAT]

# Fields of an event record (int64 each, :func:`hwsim.engine.build._slot_records`): the first
# accumulator and crossbar entry, n (>= 0: a span of n consecutive accumulators; < 0: -n
# scattered entries), the tile, and the row's events, ACs, MACs and integrate cycles
# (on the row's first record only).
REC_FIELDS = ("acc", "ent", "n", "tile", "events", "acs", "macs", "cycles")
REC_ACC, REC_ENT, REC_N, REC_TILE, REC_EVENTS, REC_ACS, REC_MACS, REC_CYCLES = range(len(REC_FIELDS))
NREC = len(REC_FIELDS)
# Columns of a tile's counts in a short-row group's row, after its accumulator sums
# (:func:`hwsim.engine.build._compact_rows`), and of the input I/O counts per core (``in_cnt``).
TILE_COUNTS = ("events", "cycles", "acs", "macs")
TC_EVENTS, TC_CYCLES, TC_ACS, TC_MACS = range(len(TILE_COUNTS))
NTC = len(TILE_COUNTS)
IO_COUNTS = ("flits", "flit_hops", "interchip_flits")
IO_FLITS, IO_FLIT_HOPS, IO_INTERCHIP_FLITS = range(len(IO_COUNTS))
NIO = len(IO_COUNTS)
__all__ += ["REC_FIELDS", "TILE_COUNTS", "IO_COUNTS", "NTC", "NIO"] + ["REC_" + n.upper() for n in REC_FIELDS] + \
    ["TC_" + n.upper() for n in TILE_COUNTS] + ["IO_" + n.upper() for n in IO_COUNTS]
# int64 fields per geometric convolution (:func:`hwsim.engine.build._geo_events`): its
# geometry (hwsim.conv_rows.GEOM_COLS), accumulator block, first weight, and where its
# per-column / per-row run tables start in ``geo`` (-1: none), and its projection's first block
# flag (:func:`hwsim.engine.if_blocks.block_flags_size`)
GEO_N = 20

# Everything the kernels read is packed into one int64 array ``kb`` (field ``f`` is
# ``kb[ko[f]:ko[f + 1]]``; scalars are one-element fields; booleans are 0 / 1), and every
# thread's scratch into one int64 array ``wb`` (offsets ``wo``). Two arrays per call
# instead of a hundred keep the kernels' calls cheap and their compilation short. A
# kernel opens the groups it needs as named records of views (``open_pops(tab).size``),
# inlined: a record's unused fields cost nothing once compiled.
Packed = namedtuple("Packed", ["blob", "off"])
Packed.__doc__ = "A packed table: ``blob`` (int64) and the field offsets ``off``."

# What a kernel call reads and writes besides the tables, as records built by
# :mod:`hwsim.engine.run`, so the kernels take a few named arguments.
Inputs = namedtuple("Inputs", ["x", "held", "scale", "top"])
Inputs.__doc__ = ("The graph input (T, B, n_in), its held frames (T, B) and encoding "
                  "(:func:`hwsim.engine.inputs.input_array`).")
Outputs = namedtuple("Outputs", ["out", "cnt", "rec_off", "rec_s", "rec_v", "n_rec", "tile_cyc", "all_out"])
Outputs.__doc__ = ("Output population per step, counters per thread (G, T, cores, counters), recorded "
                   "populations (offsets, spikes, membranes) and, for the first ``n_rec`` samples of the call, "
                   "tile cycles and all outputs (traces, Python timing).")
VcdProbe = namedtuple("VcdProbe", ["sample", "slot", "s", "v"])
VcdProbe.__doc__ = "The VCD sample (-1: none), each neuron's column (-1: not probed), spikes and membranes (T, n)."
TimingOut = namedtuple("TimingOut", ["n_timed", "step_cycles", "core_busy", "hist", "hstat", "lflits"])
TimingOut.__doc__ = ("Compiled timing of the first ``n_timed`` samples: cycles per step, busy cycles per core, "
                     "per thread the latency histogram, stats and flits per link.")


# ------------------------------------------------------------------------ the records

Pops = namedtuple("Pops", ["model", "spikes", "state", "floor", "size", "off", "ring", "proj_ptr", "tile_ptr",
                           "bt_ptr", "skip", "reuse", "ring_off", "slot_off", "proj_order", "tile_order", "acc_order",
                           "run_ptr", "run_lo", "run_hi", "run_core", "blocks"])
Pops.__doc__ = ("Per population: model code and its table flags (spikes, state; models.neurons), whether the "
                "membrane floor applies, size, neuron offset, output ring, its projections, tiles and bias terms, and "
                "whether its state is kept in its accumulators' order (``acc_order``, "
                ":func:`hwsim.engine.build.state_order`); its runs of neurons on one core (``run_ptr[p]:run_ptr[p + 1]``, "
                "each ``run_lo .. run_hi - 1`` within the population on ``run_core``, :func:`hwsim.engine.build.core_runs`); "
                "whether its update runs by blocks of 64 (``blocks``, :func:`hwsim.engine.if_blocks.block_pops`).")
Neurons = namedtuple("Neurons", ["core", "bias", "thr", "vreset", "alpha", "asyn", "vleak", "vmin", "pk", "hops",
                                 "icx", "bt_start", "bt_off", "bt_vec", "slot", "at_slot"])
Neurons.__doc__ = ("Per neuron: core, parameters, membrane floor, traffic per spike; bias terms (bt_*); where its "
                   "state is kept (``slot``, global) and, per state slot, its neuron (``at_slot``, within its "
                   "population).")
Projs = namedtuple("Projs", ["shift", "acc_off", "npost", "fed_by_input", "perm", "acc_pos"])
Projs.__doc__ = "Per projection: shift, accumulator block, input-fed flag, slot order."
Tiles = namedtuple("Tiles", ["core", "kind", "soma", "ncols", "psum_flits", "psum_hops", "psum_icx"])
Tiles.__doc__ = "Per tile: core, kind, soma, columns, fire cycles, partial-sum traffic."
EventGroups = namedtuple("EventGroups", ["ptr", "src", "delay", "pre_off", "cr_off", "cr_a0", "cr_na", "cr_r",
                           "cr_tptr", "cr_tiles", "rec_ptr", "rec", "cr", "geo_of", "geo", "grec_ptr", "grec"])
EventGroups.__doc__ = ("Crossbar rows grouped by (population, source, delay): records, short-row tables, "
                       "the group's geometric projection (-1: none) and its rows' packed counts.")
InputIo = namedtuple("InputIo", ["dst_ptr", "dst_core", "pk", "hops", "icx", "cores"])
InputIo.__doc__ = ("Per graph-input neuron: destination cores and I/O traffic per event; the cores its counts go to "
                   "(``cores``).")
Scalars = namedtuple("Scalars", ["M", "F", "payload", "reset_sub", "multi", "out_pop", "in_flits", "in_mult",
                       "out_val_flits", "spiking", "n_acc", "R", "W", "extra", "fixed", "barrier", "pipelined",
                       "max_packets", "max_edges", "n_cls", "link_cls", "spike_slots", "cr_max"])
Scalars.__doc__ = "Run options and constants (one int64 each)."
TimingPlan = namedtuple("TimingPlan", ["dsrc_ptr", "dsrc", "pcore_ptr", "pcores", "pfire", "pcand_ptr", "pcand",
                          "used_cores", "fire_all", "psum_all", "noc_router", "core_node", "nrn_dst_node"])
TimingPlan.__doc__ = ("Per population its delay-0 sources, cores, fire cycles, partial-sum tiles; the router model "
                      "(``noc_router`` = [1 if wormhole, router kernel parameters, 1 if xy-tree, link latencies, link "
                      "cycles per flit]), each core's and spike "
                      "destination's router node.")
Routes = namedtuple("Routes", ["nrn_dst_ptr", "cd_ptr", "cd_blk", "cd_dep", "cd_x", "nrn_dst_cross", "nrn_flit_count",
                      "nrn_cls", "rt_ptr",
                      "rt_link", "rt_parent", "tile_rt_ptr", "tile_dst_edge", "tile_cross", "link_pos", "link_at",
                      "rt_depth", "ns_ptr", "ns_link", "ns_pp", "ns_d", "ns_pl"])
Routes.__doc__ = ("Route templates of spike packets (per route class: ``rt_ptr[nrn_cls[neuron]]``; per class its "
                  "destinations ``cd_ptr[c]:cd_ptr[c + 1]``: the rank of the edge whose block holds the ejection edge's "
                  "start cycles (``cd_blk``, -1: on the source core), its depth below it and the chip crossings, "
                  ":func:`hwsim.engine.timing_plan.delivery_tables`) and partial-sum "
                  "packets (per tile: ``tile_rt_ptr``), destinations, link order; per spike template edge its depth "
                  "below its anchor (``rt_depth > 0``: statically one-stream, :func:`hwsim.engine.timing_plan.static_edges`) "
                  "and per class its other edges (``ns_ptr[c]:ns_ptr[c + 1]``, their rank the place there), each with "
                  "its link, the rank of the edge whose block its parent's start cycles are (``ns_pp``: the parent, "
                  "or the parent's anchor when the parent is static; -1 at the root), that parent's depth (``ns_d``) "
                  "and link (``ns_pl``, -1 at the root), :func:`hwsim.engine.timing_plan.serve_tables`.")
NeuronState = namedtuple("NeuronState", ["cr_loc", "acc", "v", "isyn", "nz", "nzv", "nzc", "Ib", "o_all", "hot",
                           "in_zero", "same", "prev_i", "prev_v", "in_cnt", "bits", "blk"])
NeuronState.__doc__ = ("A short-row group's local row (``cr_loc``) and the accumulators first (aligned, see "
                       ":data:`WORK_FIELDS`), membranes, output rings and their spike lists, input reuse, spike masks "
                       "(``bits``: 64 neurons a word), block flags (``blk``, :mod:`hwsim.engine.if_blocks`).")
TileCounts = namedtuple("TileCounts", ["t_nev", "t_cyc", "t_ac", "t_mac", "c_nev", "c_cyc", "c_ac", "c_mac", "tc"])
TileCounts.__doc__ = "Per tile: this step's counts (t_*), cached input counts (c_*), cycles (tc)."
CoreTimes = namedtuple("CoreTimes", ["done", "core_free", "integ", "end_int", "psum_ready", "fend", "m_ok", "m_t0",
                         "m_dl"])
CoreTimes.__doc__ = "Per population / core: step timing, partial-sum replay memory."
PacketTables = namedtuple("PacketTables", ["pk_t0", "pk_fl", "pk_id", "pk_base", "pk_ord", "pk_tr", "cls_tr", "tr_t0",
                            "tr_sb", "tr_cls", "tr_ce", "tr_pk", "tr_fl", "h_k", "h_r", "h_p", "h_e", "h_q", "h_b", "h_s",
                            "h_w", "h_n", "h_a", "cls_fl"])
PacketTables.__doc__ = ("Packets and their route classes laid out for the NoC (tr_*: per class of the step; h_*: the "
                        "heads of the classes merged on one link, :mod:`hwsim.engine.timing_spikes`; cls_fl: flits per class "
                        "over a thread's samples, for the links of its statically one-stream edges).")
EdgeTables = namedtuple("EdgeTables", ["e_link", "e_parent", "e_owner", "e_start", "e_valid", "e_order", "e_pp",
                          "e_psh", "e_pl", "e_ready",
                          "link_flits", "l_cnt", "l_used", "l_at", "e_hi"])
EdgeTables.__doc__ = ("Route edges of the laid-out packets, the NoC's per-link scratch, and ``e_hi[0]``: how many "
                      "edges have ``e_valid`` set (the edge arrays are not zeroed; see :data:`WORK_EDGES`).")

# the packed order: each record's fields are consecutive, from its first index below
KERNEL_FIELDS = ("pop_model", "pop_spikes", "pop_state", "pop_floor", "pop_size", "pop_off", "pop_ring", "pop_proj_ptr",
    "pop_tile_ptr", "pop_bt_ptr", "pop_skip", "pop_reuse", "ring_off", "slot_off", "proj_order", "tile_order",
    "pop_acc_order", "pop_run_ptr", "run_lo", "run_hi", "run_core", "pop_blocks",
    "nrn_core", "nrn_bias", "nrn_thr", "nrn_vreset", "nrn_alpha", "nrn_asyn", "nrn_vleak",
    "nrn_vmin", "nrn_pk", "nrn_hops", "nrn_icx", "bt_start", "bt_off", "bt_vec", "nrn_slot", "nrn_at_slot",
    "proj_shift", "proj_acc_off", "proj_npost", "proj_in",
    "proj_perm", "acc_pos", "tile_core", "tile_kind", "tile_soma", "tile_ncols", "tile_psum_flits",
    "tile_psum_hops", "tile_psum_icx", "grp_ptr", "grp_src", "grp_delay", "grp_pre_off", "grp_cr_off", "grp_cr_a0",
    "grp_cr_na", "grp_cr_r", "grp_cr_tptr", "grp_cr_tiles", "rec_ptr", "rec", "cr", "grp_geo", "geo", "geo_rec_ptr", "geo_rec", "in_dst_ptr",
    "in_dst_core",
    "in_pk", "in_hops", "in_icx", "in_cores", "M", "F", "payload", "reset_sub", "multi", "out_pop", "in_flits",
    "in_mult",
    "out_val_flits", "spiking", "n_acc", "R", "W", "extra", "fixed", "barrier", "pipelined", "max_packets",
    "max_edges", "n_cls", "link_cls", "spike_slots", "cr_max", "dsrc_ptr", "dsrc", "pcore_ptr", "pcores", "pfire", "pcand_ptr", "pcand",
    "used_cores", "fire_all", "psum_all", "noc_router", "core_node", "nrn_dst_node",
    "nrn_dst_ptr", "cd_ptr", "cd_blk", "cd_dep", "cd_x", "nrn_dst_cross", "nrn_flit_count",
    "nrn_cls", "rt_ptr", "rt_link", "rt_parent", "tile_rt_ptr", "tile_dst_edge", "tile_cross", "link_pos", "link_at",
    "rt_depth", "ns_ptr", "ns_link", "ns_pp", "ns_d", "ns_pl")
# A thread's scratch starts with the short-row groups' local row (its size a whole number of
# 64-byte lines, :func:`hwsim.engine.build.work_layout`), then the accumulators: a Numba
# array is 32-byte aligned, so both are, as the rows they add (the kernel tables' ``cr``,
# :func:`pack`'s ``align``): a 4-lane vector add there does not straddle cache lines
# (the cr alignment alone, mnist_mlp's kernel, one thread: 128-130 -> 120-123 ms)
WORK_FIELDS = ("cr_loc", "acc", "v", "isyn", "nz", "nzv", "nzc", "Ib", "o_all", "hot", "in_zero", "same", "prev_i",
    "prev_v", "in_cnt", "bits", "blk", "t_nev", "t_cyc", "t_ac", "t_mac", "c_nev", "c_cyc", "c_ac", "c_mac", "tc", "done",
    "core_free",
    "integ", "end_int", "psum_ready", "fend", "m_ok", "m_t0", "m_dl", "pk_t0", "pk_fl", "pk_id", "pk_base", "pk_ord",
    "pk_tr", "cls_tr", "tr_t0", "tr_sb", "tr_cls", "tr_ce", "tr_pk", "tr_fl", "h_k", "h_r", "h_p", "h_e", "h_q",
    "h_b", "h_s", "h_w", "h_n", "h_a", "cls_fl", "e_link", "e_parent", "e_owner", "e_start", "e_valid", "e_order",
    "e_pp", "e_psh", "e_pl",
    "e_ready", "link_flits", "l_cnt", "l_used", "l_at", "e_hi")
# the route-edge fields, WORK_FIELDS[WORK_EDGES[0]:WORK_EDGES[1]]: sized for the worst step
# (every neuron of the largest population spiking, 11.4 M edges on VGG-16 CIFAR: 640 MB of
# a thread's 670 MB scratch), written before they are read, so a thread's scratch is
# allocated without zeroing them (its pages are touched only as far as steps use them)
WORK_EDGES = (WORK_FIELDS.index("e_link"), WORK_FIELDS.index("e_ready") + 1)
__all__ += ["WORK_EDGES"]


@njit(cache=True, inline="always")
def field(blob, off, i):
    """Field ``i`` of a packed blob (inlined: a view returned from a call needs reference
    counting, which the step loop is compiled without, :mod:`hwsim.jitflags`)."""
    return blob[off[i]:off[i + 1]]


def kernel_field(kb: np.ndarray, ko: np.ndarray, name: str) -> np.ndarray:
    """Field ``name`` of :data:`KERNEL_FIELDS` in the packed tables ``kb`` / ``ko`` (Python side)."""
    i = KERNEL_FIELDS.index(name)
    return kb[ko[i]:ko[i + 1]]


def pack(fields: dict, names: tuple, align: str | None = None) -> Packed:
    """One int64 array holding ``fields[n]`` for ``n`` in ``names``, in order, and the
    offsets (``len(names) + 1``). With ``align``, the array is a view placed in a
    buffer 7 int64 longer so that field ``align`` starts on a 64-byte boundary (the
    kernel's short rows, ``cr``: their 32-byte rows then fill whole vectors)."""
    off = np.zeros(len(names) + 1, np.int64)
    np.cumsum([np.asarray(fields[n]).size for n in names], out=off[1:])
    size = int(off[-1])
    if align is None:
        out = np.empty(size, np.int64)  # filled field by field: no int64 copy of every field at once
    else:
        buf = np.empty(size + 7, np.int64)
        s = (-(buf.ctypes.data + 8 * int(off[names.index(align)])) // 8) % 8
        out = buf[s:s + size]
    for i, n in enumerate(names):
        out[off[i]:off[i + 1]] = np.asarray(fields[n]).reshape(-1)
    return Packed(out, off)


# ------------------------------------------------------------------------ opening a record

# the records of each packed table, in their order there
_KERNEL_RECORDS = (Pops, Neurons, Projs, Tiles, EventGroups, InputIo, Scalars, TimingPlan, Routes)
_WORK_RECORDS = (NeuronState, TileCounts, CoreTimes, PacketTables, EdgeTables)
__all__ += [r.__name__ for r in _KERNEL_RECORDS + _WORK_RECORDS]


def _first_field(cls) -> int:
    """Index of record class ``cls``'s first field in its packed table: the records are
    laid out in the order of :data:`_KERNEL_RECORDS` / :data:`_WORK_RECORDS` (a record's
    attribute names drop their table prefix, ``pop_size`` -> ``size``)."""
    for records in (_KERNEL_RECORDS, _WORK_RECORDS):
        if cls in records:
            return sum(len(r._fields) for r in records[:records.index(cls)])
    raise TypeError(f"{cls.__name__} is not a record of the packed tables")


def _opener(cls):
    """The compiled opener of record class ``cls``: one field read per attribute, written
    out once here for every record and inlined where a kernel calls it."""
    i = _first_field(cls)
    get = "b[o[{}]]" if cls is Scalars else "field(b, o, {})"
    args = ", ".join(get.format(i + k) for k in range(len(cls._fields)))
    ns = {"rec": cls, "field": field}
    exec(f"def open_{cls.__name__}(tab):\n    b, o = tab\n    return rec({args})\n", ns)
    fn = ns[f"open_{cls.__name__}"]
    fn.__doc__ = f"The :class:`{cls.__name__}` record of a packed table (views of its fields)."
    return njit(inline="always")(fn)


# one opener per record (``pops = open_pops(tab)``), in the order of the tables
(open_pops, open_neurons, open_projs, open_tiles, open_groups, open_input_io, open_scalars, open_plan,
 open_routes, open_state, open_tile_counts, open_core_times, open_packets,
 open_edges) = map(_opener, _KERNEL_RECORDS + _WORK_RECORDS)
__all__ += ["open_pops", "open_neurons", "open_projs", "open_tiles", "open_groups", "open_input_io", "open_scalars",
            "open_plan", "open_routes", "open_state", "open_tile_counts", "open_core_times", "open_packets",
            "open_edges"]
