"""Compile a :class:`~mapper.mapping.Mapping` into flat arrays for the Numba engine.

:func:`compile` turns the mapping's tiles, cores, placement and integer net into a
:class:`Program`: contiguous typed numpy arrays only (no Python objects reach a
kernel). Everything is range-checked here, before any kernel runs (docs/design.md,
"Errors and files": Numba does not bounds-check).

Layout (all int64 unless noted)
-------------------------------
Populations ``p = 0..P-1`` in net order (0 = the graph input); neuron ``i`` of ``p``
has the global id ``pop_off[p] + i``. Every population keeps a ring of its last
``pop_ring[p] = max delay + 1`` outputs (``ring_off[p]`` into a per-sample buffer):
step ``t`` writes slot ``t % pop_ring[p]``; a projection with delay ``d`` reads slot
``(t - d) % pop_ring[p]`` (0 while ``t < d``).

Projections ``j``: ``proj_src``, ``proj_dst``, ``proj_delay``, ``proj_shift``
(``acc_shift``), ``proj_acc_off`` (start of its per-post accumulator, ``n_post``
long). The integer contract (``models.intref``) shifts each projection's exact sum on
its own, so the engine keeps one accumulator per (projection, post neuron); every
partial-sum tile of the projection adds into it before the shift. Two projections that
share an axon key (same source and delay) therefore keep separate crossbar entries
(a cell stored once per projection).

Tiles ``k`` (ordered by population, then tile id): ``tile_pop``, ``tile_core``,
``tile_kind`` (0 soma, 1 partial), ``tile_soma``, ``tile_ncols``, rows
``tile_row_ptr[k]:tile_row_ptr[k+1]``. Row ``r``: ``row_src`` (population),
``row_delay`` (effective delay, see below), ``row_pre`` (pre index), ``row_mac`` (1 if the projection runs in MAC
mode: its source sends values -- a real-valued graph input, an ANN unit, a readout), ``row_ncols`` (distinct columns used), entries
``row_ptr[r]:row_ptr[r+1]`` with ``ent_acc`` (global accumulator index; int32 below
2**31 accumulators), ``ent_w`` (integer weight, the narrowest signed type holding
``weight_bits``) and ``ent_col`` (local column, int32); ``row_nent`` (the row's entries,
the AC / MAC count of one event). The row arrays (``row_src`` ... ``row_nent``, not
``row_ptr``) are the narrowest signed integers holding their values: an ImageNet-size net
has about 10^8 rows.

Convolutions (``compile(mapping, conv_path=...)``, default ``"geometric"``): a
convolution alone on its (destination, source, delay) whose destination's tiles each
hold a rectangular block of posts is compiled by :mod:`hwsim.conv_rows`: its rows keep
their counts (``row_nent`` = ``row_ncols`` from the geometry, no entries:
``row_ptr`` advances by 0) and the projection its kernel once: ``geo_proj`` (projection
ids), ``geo_geom`` (geometry, ``conv_rows.GEOM_COLS``), ``geo_w`` / ``geo_w_off``
(kernels, output channels innermost); the kernel scatters each event from the
geometry. Program bytes are then O(weights + rows + neurons) instead of O(entries)
(VGG-11 CIFAR: 2.70 GB -> 0.13 GB). ``conv_path="rows"`` stores every crossbar entry of
every tile (the test oracle); both give identical spikes, membranes, counters and cycles.

Timing mode (``compile(mapping, mode=...)``, default ``chip.timing.mode``)
-----------------------------------------------------------------------
``mode="pipelined"`` (docs/design.md: every core works every step on the previous
step's inputs) adds one step of delay to every projection whose source is not the
graph input: the row delays ``row_delay``, the rings ``pop_ring`` and the bias-term
start steps ``bt_start`` of such projections are those of delay ``d + 1``;
``proj_delay`` keeps the net's declared delay ``d`` (the tiles' axon keys). The result
equals :func:`models.intref.simulate_int` on the net with every non-input
projection's ``delay_steps`` and ``bias_terms`` start steps increased by one.
``Population.bias`` (the step-0 constant input) is unchanged.

Chip coordinates: ``core_chip[c] = (chip_x, chip_y)`` and ``chip_w, chip_h`` (cores
per chip) give inter-chip crossings along an XY route; ``nrn_icx[g]`` = inter-chip link
crossings of one spike of neuron ``g`` (sum over unicast copies, or the tree's
crossing links), ``tile_psum_icx[k]`` those of a partial-sum packet.
``in_dst_ptr`` / ``in_dst_core`` (CSR over the input neurons) are the cores an input
event is sent to from the I/O port at global (-1, 0); ``in_pk``, ``in_hops``,
``in_icx`` its packets, flit-hops (from the port, the injection link included) and
inter-chip crossings per event, counted as the chip's NoC would carry it. These route
tables are built by :mod:`hwsim.program_routes` (population by population, in chunks:
their temporaries stay bounded on ImageNet-size nets).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import scipy.sparse as sp

from models import neurons
from models.errors import SnnchipError

from . import conv_rows, dense_rows, program_routes

#: ``pop_model`` codes: each model's ``code`` in the table :mod:`models.neurons` (-1: the graph input)
MODEL_CODES = {"input": neurons.INPUT_CODE, **{m.name: m.code for m in neurons.MODELS}}


class ProgramError(SnnchipError):
    """A mapping cannot be compiled: the tiles and the net disagree (names the tile/population)."""


@dataclass(eq=False)
class Program:
    """Flat arrays of a compiled mapping (see the module docstring). Treated as
    immutable once compiled: :func:`hwsim.simulate` builds its kernel tables once per
    program and reuses them."""

    # populations
    pop_names: list
    pop_model: np.ndarray
    pop_size: np.ndarray
    pop_off: np.ndarray
    pop_ring: np.ndarray
    ring_off: np.ndarray
    pop_proj_ptr: np.ndarray   # (P+1,) CSR over proj_order
    proj_order: np.ndarray     # projection ids grouped by destination population
    pop_tile_ptr: np.ndarray   # (P+1,) CSR over tile_order
    tile_order: np.ndarray
    pop_bt_ptr: np.ndarray     # bias terms of the population's projections
    bt_start: np.ndarray
    bt_off: np.ndarray
    bt_vec: np.ndarray
    # neurons (global ids)
    nrn_core: np.ndarray
    nrn_bias: np.ndarray
    nrn_thr: np.ndarray
    nrn_vreset: np.ndarray
    nrn_alpha: np.ndarray      # alpha_q (LIF, LI) or alpha_mem_q (CubaLIF)
    nrn_asyn: np.ndarray       # alpha_syn_q (CubaLIF)
    nrn_vleak: np.ndarray
    nrn_dst_ptr: np.ndarray    # (N+1,) destination cores of the neuron's spikes (remote only)
    nrn_dst_core: np.ndarray
    nrn_pk: np.ndarray         # packets per spike (unicast copies, or 1 for an xy-tree)
    nrn_hops: np.ndarray       # flit-hops per spike (sum of paths, or tree links)
    # projections
    proj_names: list
    proj_src: np.ndarray
    proj_dst: np.ndarray
    proj_delay: np.ndarray
    proj_shift: np.ndarray
    proj_acc_off: np.ndarray
    proj_npost: np.ndarray
    n_acc: int
    # tiles
    tile_pop: np.ndarray
    tile_core: np.ndarray
    tile_kind: np.ndarray
    tile_soma: np.ndarray
    tile_ncols: np.ndarray
    tile_row_ptr: np.ndarray
    tile_psum_flits: np.ndarray  # flits of the tile's partial-sum packet (0: soma or same core)
    tile_psum_hops: np.ndarray
    row_src: np.ndarray
    row_delay: np.ndarray
    row_pre: np.ndarray
    row_mac: np.ndarray
    row_ncols: np.ndarray
    row_ptr: np.ndarray
    ent_acc: np.ndarray
    ent_w: np.ndarray
    ent_col: np.ndarray
    # chip
    n_cores: int
    core_xy: np.ndarray        # (n_cores, 2) global coordinates
    grid_w: int
    grid_h: int
    membrane_bits: int
    leak_frac_bits: int
    weight_bits: int
    pe_width: int
    event_overhead: int
    payload_bits: int
    flit_bits: int
    output_pop: int
    input_spiking: bool
    chip: object = None
    net: object = None
    mode: str = "sync"
    nrn_icx: np.ndarray = None        # (N,) inter-chip crossings per spike
    tile_psum_icx: np.ndarray = None  # (n_tiles,) inter-chip crossings of a psum packet
    in_dst_ptr: np.ndarray = None     # (n_in + 1,) CSR of input-event destination cores
    in_dst_core: np.ndarray = None
    in_pk: np.ndarray = None          # (n_in,) packets per input event
    in_hops: np.ndarray = None        # (n_in,) flit-hops per input event (from the I/O port)
    in_icx: np.ndarray = None         # (n_in,) inter-chip crossings per input event
    core_chip: np.ndarray = None      # (n_cores, 2) chip grid coordinates
    chip_w: int = 1
    chip_h: int = 1
    conv_path: str = "rows"
    row_nent: np.ndarray = None       # (R,) entries of each row (the explicit ones, plus a geometric row's)
    geo_proj: np.ndarray = None       # (G,) projections compiled geometrically (hwsim.conv_rows)
    geo_geom: np.ndarray = None       # (G, conv_rows.GEOM_COLS) their geometry
    geo_w_off: np.ndarray = None      # (G + 1,) their kernels in geo_w
    geo_w: np.ndarray = None          # kernels, output channels innermost (ConvRows.kernel, DenseRows.kernel)
    geo_kmap_off: np.ndarray = None   # (G + 1,) their pre -> kernel-row maps in geo_kmap (dense only)
    geo_kmap: np.ndarray = None       # k(i) of each pre of a dense projection (hwsim.dense_rows), -1: none

    @property
    def pipelined(self) -> bool:
        return self.mode == "pipelined"

    @property
    def n_pops(self) -> int:
        return len(self.pop_names)

    @property
    def n_tiles(self) -> int:
        return int(self.tile_pop.size)

    @property
    def ring_size(self) -> int:
        return int((self.pop_ring * self.pop_size).sum())

    def arrays(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}


def _i64(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64))


def compile(mapping, mode: str | None = None, conv_path: str = "geometric") -> Program:  # noqa: A001
    """Flatten ``mapping`` (a :class:`~mapper.mapping.Mapping`) into a :class:`Program`.

    ``mode``: ``"sync"`` or ``"pipelined"`` (default: ``mapping.chip.timing.mode``); see
    the module docstring. ``conv_path``: ``"geometric"`` (default) keeps a convolution's
    kernel once and per tile row only its counts (:mod:`hwsim.conv_rows`; the kernel
    scatters an event from the geometry), ``"rows"`` stores every crossbar entry of every
    tile; both give identical spikes, membranes, counters and cycles."""
    net, tl, chip = mapping.net, mapping.tiling, mapping.chip
    if mode is None:
        mode = chip.timing.mode
    if mode not in ("sync", "pipelined"):
        raise ProgramError(f"compile: mode must be 'sync' or 'pipelined', got {mode!r}")
    if conv_path not in conv_rows.CONV_PATHS:
        raise ProgramError(f"compile: conv_path must be one of {conv_rows.CONV_PATHS}, got {conv_path!r}")
    pipe = mode == "pipelined"
    if not getattr(net, "quantized", False) or "quant" not in net.metadata:
        raise ProgramError("compile: the mapping's net is not quantised (mapper.quantize)")
    meta = net.metadata["quant"]
    pops = net.populations
    P = len(pops)
    pidx = {p.name: i for i, p in enumerate(pops)}
    if pops[0].model != "input":
        raise ProgramError(f"compile: first population '{pops[0].name}' is not the graph input")
    for p in pops[1:]:
        if p.model not in MODEL_CODES or p.model == "input":
            raise ProgramError(f"population '{p.name}': unknown neuron model {p.model!r}")
    if net.output not in pidx:
        raise ProgramError(f"compile: output population '{net.output}' is not in the net")
    pop_size = _i64([p.size for p in pops])
    pop_off = _i64(np.concatenate([[0], np.cumsum(pop_size)]))
    N = int(pop_off[-1])

    # ---- projections
    projs = list(net.projections)
    Q = len(projs)
    proj_src, proj_dst, proj_delay, proj_shift, proj_npost = (np.zeros(Q, np.int64) for _ in range(5))
    for j, q in enumerate(projs):
        if q.src not in pidx or q.dst not in pidx:
            raise ProgramError(f"projection '{q.name}': unknown population '{q.src}' or '{q.dst}'")
        s, d = pidx[q.src], pidx[q.dst]
        if d == 0:
            raise ProgramError(f"projection '{q.name}': targets the graph input")
        if q.delay_steps < 0:
            raise ProgramError(f"projection '{q.name}': negative delay {q.delay_steps}")
        if q.delay_steps == 0 and s >= d:
            raise ProgramError(f"projection '{q.name}': delay 0 from '{q.src}', which is not evaluated before "
                               f"'{q.dst}'")
        if q.shape != (int(pop_size[s]), int(pop_size[d])):
            raise ProgramError(f"projection '{q.name}': shape {q.shape} does not match populations "
                               f"({pop_size[s]}, {pop_size[d]})")
        qm = meta.get("projections", {}).get(q.name)
        if qm is None:
            raise ProgramError(f"projection '{q.name}': no metadata['quant'] entry (acc_shift)")
        k = int(qm["acc_shift"])
        if not 0 <= k <= 62:
            raise ProgramError(f"projection '{q.name}': acc_shift {k} out of range 0..62")
        proj_src[j], proj_dst[j], proj_delay[j], proj_shift[j], proj_npost[j] = s, d, q.delay_steps, k, pop_size[d]
    # effective delays: pipelined mode adds one step to every non-input projection
    proj_eff = proj_delay + ((proj_src != 0) if pipe else 0)
    proj_acc_off = _i64(np.concatenate([[0], np.cumsum(proj_npost)]))
    n_acc = int(proj_acc_off[-1])
    proj_acc_off = proj_acc_off[:-1].copy()
    proj_order = _i64(np.argsort(proj_dst, kind="stable"))
    pop_proj_ptr = _i64(np.searchsorted(proj_dst[proj_order], np.arange(P + 1)))
    pop_ring = np.ones(P, np.int64)
    for j in range(Q):
        pop_ring[proj_src[j]] = max(pop_ring[proj_src[j]], proj_eff[j] + 1)
    ring_off = _i64(np.concatenate([[0], np.cumsum(pop_ring * pop_size)])[:-1])

    # bias terms grouped by destination population
    bts = []
    for j in proj_order:
        for start, vec in projs[j].bias_terms:
            vec = _i64(vec).reshape(-1)
            if vec.size != pop_size[proj_dst[j]]:
                raise ProgramError(f"projection '{projs[j].name}': bias term of size {vec.size}, population has "
                                   f"{pop_size[proj_dst[j]]}")
            bts.append((int(proj_dst[j]), int(start) + int(proj_eff[j] - proj_delay[j]), vec))
    bt_pop = _i64([b[0] for b in bts])
    pop_bt_ptr = _i64(np.searchsorted(bt_pop, np.arange(P + 1)))
    bt_start = _i64([b[1] for b in bts])
    bt_off = _i64(np.concatenate([[0], np.cumsum([b[2].size for b in bts])])[:-1]) if bts else np.zeros(0, np.int64)
    bt_vec = _i64(np.concatenate([b[2] for b in bts])) if bts else np.zeros(0, np.int64)

    # ---- neurons
    zeros = lambda: np.zeros(N, np.int64)  # noqa: E731
    nrn_bias, nrn_thr, nrn_vreset, nrn_alpha, nrn_asyn, nrn_vleak = (zeros() for _ in range(6))
    for i, p in enumerate(pops[1:], start=1):
        sl = slice(pop_off[i], pop_off[i + 1])
        prm = p.params or {}

        def get(key, p=p, prm=prm):
            if key not in prm:
                raise ProgramError(f"population '{p.name}' ({p.model}): integer parameter '{key}' missing")
            a = np.asarray(prm[key])
            if a.size not in (1, p.size):
                raise ProgramError(f"population '{p.name}': parameter '{key}' has {a.size} values, expected {p.size}")
            return np.broadcast_to(a.astype(np.int64).reshape(-1), (p.size,))

        if p.bias is not None:
            b = np.asarray(p.bias).reshape(-1)
            if b.size != p.size:
                raise ProgramError(f"population '{p.name}': bias has {b.size} values, expected {p.size}")
            nrn_bias[sl] = b.astype(np.int64)
        nm = neurons.model(p.model)
        chip_fields = {"thr": nrn_thr, "vreset": nrn_vreset, "alpha": nrn_alpha, "asyn": nrn_asyn,
                       "vleak": nrn_vleak}
        for fld, key in nm.chip_params.items():
            chip_fields[fld][sl] = get(key)
        if nm.state and nm.spikes and (nrn_thr[sl] < 1).any():
            raise ProgramError(f"population '{p.name}': {nm.threshold} must be >= 1")
    pop_model = _i64([MODEL_CODES[p.model] for p in pops])

    # ---- tiles
    tiles = tl.tiles
    n_cores = len(tl.cores)
    core_of = np.full(len(tiles), -1, np.int64)
    for c, tids in enumerate(tl.cores):
        for t in tids:
            if not 0 <= int(t) < len(tiles):
                raise ProgramError(f"core {c}: tile id {t} out of range (0..{len(tiles) - 1})")
            if core_of[int(t)] >= 0:
                raise ProgramError(f"tile {t}: placed on two cores ({core_of[int(t)]} and {c})")
            core_of[int(t)] = c
    for t in tiles:
        if core_of[t.id] < 0:
            raise ProgramError(f"tile {t.id} ({t.population}): on no core")
    for k, t in enumerate(tiles):
        if t.id != k:
            raise ProgramError(f"tile list position {k} holds tile id {t.id}")
        if t.population not in pidx or pidx[t.population] == 0:
            raise ProgramError(f"tile {t.id}: unknown destination population '{t.population}'")
        if t.kind not in ("soma", "partial") or not 0 <= t.soma < len(tiles):
            raise ProgramError(f"tile {t.id} ({t.population}): bad kind {t.kind!r} or soma {t.soma}")

    nrn_core = np.full(N, -1, np.int64)
    gxy = np.asarray(mapping.placement.global_xy(), dtype=np.int64)
    if gxy.shape[0] < n_cores + 1:
        raise ProgramError(f"placement has {gxy.shape[0] - 1} cores, tiling has {n_cores}")
    core_xy = np.ascontiguousarray(gxy[:n_cores])
    grid_w = int(core_xy[:, 0].max(initial=0)) + 1
    grid_h = int(core_xy[:, 1].max(initial=0)) + 1
    if n_cores and core_xy.min() < 0:
        raise ProgramError("placement: negative core coordinates")
    pl = mapping.placement
    core_chip = _i64(np.asarray(pl.chip_coords(), dtype=np.int64)[:n_cores]).reshape(-1, 2)
    chip_w, chip_h = max(int(getattr(pl, "width", grid_w)), 1), max(int(getattr(pl, "height", grid_h)), 1)
    in_pairs = program_routes.DestPairs(n_cores)

    order = sorted(range(len(tiles)), key=lambda k: (pidx[tiles[k].population], k))
    tile_order = _i64(order)
    tile_pop = _i64([pidx[t.population] for t in tiles])
    pop_tile_ptr = _i64(np.searchsorted(tile_pop[tile_order], np.arange(P + 1)))
    tile_kind = _i64([0 if t.kind == "soma" else 1 for t in tiles])
    tile_soma = _i64([t.soma for t in tiles])
    tile_ncols = np.zeros(len(tiles), np.int64)
    tile_psum_flits = np.zeros(len(tiles), np.int64)
    tile_psum_hops = np.zeros(len(tiles), np.int64)
    tile_psum_icx = np.zeros(len(tiles), np.int64)
    incoming = {}
    for j, q in enumerate(projs):
        incoming.setdefault((proj_dst[j], proj_src[j], proj_delay[j]), []).append(j)
    wmax = 1 << (int(chip.core.weight_bits) - 1)
    # entries as the narrowest integers that hold them (program bytes per synapse: 24 -> 9 or less)
    acc_dt = np.int32 if n_acc < 2 ** 31 else np.int64
    # per-row arrays as narrow integers too (ImageNet-size nets have ~10^8 rows: 21 instead of 56 bytes)
    narrow = lambda n: next(d for d in (np.int8, np.int16, np.int32, np.int64) if n <= np.iinfo(d).max)  # noqa: E731
    max_cols = max([len(t.post) for t in tiles], default=1)
    row_dt = {"src": narrow(P), "delay": narrow(int(pop_ring.max(initial=1)) + 1), "pre": narrow(int(pop_size.max())),
              "mac": np.int8, "ncols": narrow(max_cols), "nent": narrow(max_cols * max(Q, 1))}
    # the rows are written in place, at their tile's position in tile_order (a tile holds its
    # n_axons rows), never kept as per-tile blocks joined afterwards: VGG-16 ImageNet has
    # 1.1e8 rows in 4.8e5 tiles (blocks and joined arrays took 2.5 GB more than the rows)
    tile_nrows = _i64([t.n_axons for t in tiles])
    if (tile_nrows < 0).any():
        raise ProgramError(f"tile {int(np.argmax(tile_nrows < 0))}: negative n_axons")
    tile_row_lo = np.zeros(len(tiles), np.int64)
    tile_row_lo[order] = np.cumsum(tile_nrows[order]) - tile_nrows[order]
    R_all = int(tile_nrows.sum())
    rows = {key: np.zeros(R_all, row_dt[key]) for key in ("src", "delay", "pre", "mac", "nent")}
    row_ncols = None  # row_nent's array unless some row's used columns differ from its entries
    row_ptr = np.zeros(R_all + 1, np.int64)  # row_ptr[r + 1]: row r's entries, summed up after the loop
    tile_ents: dict = {}  # tile -> its explicit entries (acc, w, col), joined in tile_order after the loop
    w_dt = next(d for d in (np.int8, np.int16, np.int32, np.int64) if wmax <= np.iinfo(d).max)
    # pairs (source global neuron, core) for spike destinations
    dst_pairs = program_routes.DestPairs(n_cores)
    # a soma tile and its partial tiles hold the same posts: the posts' explicit weights
    # (a convolution expanded for those posts) are built once per soma, not once per tile
    post_w: dict = {}
    post_w_soma = -1
    shapes = [tuple(p.shape) for p in pops]
    geo = conv_rows.plan(projs, tiles, pidx, shapes, conv_path)
    geo.update(dense_rows.plan(projs, tiles, pidx, conv_path))
    for j, g in geo.items():
        ok = dense_rows.weights_ok if isinstance(g, dense_rows.DenseRows) else conv_rows.weights_ok
        if not ok(g.q, wmax):
            raise ProgramError(f"projection '{projs[j].name}' has weights that are not {chip.core.weight_bits}-bit "
                               f"integers")
    for t in sorted(tiles, key=lambda t: (int(t.soma), t.id)):
        k = t.id
        p = pidx[t.population]
        post = np.asarray(t.post, dtype=np.int64).reshape(-1)
        if post.size and (post.min() < 0 or post.max() >= pop_size[p]):
            raise ProgramError(f"tile {k} ({t.population}): post index out of range 0..{pop_size[p] - 1}")
        if t.kind == "soma" and np.unique(post).size != post.size:  # a partial tile's posts equal its soma's
            raise ProgramError(f"tile {k} ({t.population}): a post neuron appears twice")
        tile_ncols[k] = post.size
        if t.kind == "soma":
            if tile_soma[k] != k:
                raise ProgramError(f"tile {k} ({t.population}): soma tile whose soma is {tile_soma[k]}")
            g = pop_off[p] + post
            if (nrn_core[g] >= 0).any():
                raise ProgramError(f"tile {k} ({t.population}): neurons already held by another soma tile")
            nrn_core[g] = core_of[k]
        else:
            s = tiles[tile_soma[k]]
            if s.kind != "soma" or s.population != t.population or not np.array_equal(np.asarray(s.post), post):
                raise ProgramError(f"tile {k} ({t.population}): partial tile whose soma tile {s.id} does not hold "
                                   f"the same neurons")
            if core_of[k] != core_of[s.id]:
                tile_psum_flits[k] = post.size * -(-int(chip.core.membrane_bits) // int(chip.noc.flit_bits))
                tile_psum_hops[k] = int(np.abs(core_xy[core_of[k]] - core_xy[core_of[s.id]]).sum())
                tile_psum_icx[k] = int(np.abs(core_chip[core_of[k]] - core_chip[core_of[s.id]]).sum())
        if int(t.soma) != post_w_soma:
            post_w, post_w_soma = {}, int(t.soma)
        nrows = 0
        for src, d, idx in t.axons:
            if src not in pidx:
                raise ProgramError(f"tile {k} ({t.population}): axon source '{src}' is not a population")
            s = pidx[src]
            idx = np.asarray(idx, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= pop_size[s]):
                raise ProgramError(f"tile {k} ({t.population}): axon index of '{src}' out of range")
            js = incoming.get((p, s, int(d)))
            if not js:
                raise ProgramError(f"tile {k} ({t.population}): axons from '{src}' with delay {d}, but no such "
                                   f"projection")
            R = idx.size
            if nrows + R > tile_nrows[k]:
                raise ProgramError(f"tile {k} ({t.population}): its axons hold more rows than its n_axons "
                                   f"({tile_nrows[k]})")
            if len(js) == 1 and js[0] in geo:  # geometric: the rows' counts, no entries
                try:
                    nent = geo[js[0]].count(idx, post, int(t.soma))
                except ValueError as err:
                    raise ProgramError(f"projection '{projs[js[0]].name}': {err}") from None
                ncols, cnt = nent, np.zeros(R, np.int64)
                ea = ev = ec = cnt[:0]
            else:
                cnt, ncols, ea, ev, ec = _explicit_rows(js, projs, post_w, post, idx, proj_acc_off, wmax, t,
                                                        int(chip.core.weight_bits))
                nent = cnt
            at = slice(tile_row_lo[k] + nrows, tile_row_lo[k] + nrows + R)
            rows["src"][at] = s
            rows["delay"][at] = int(d) + (1 if (pipe and s != 0) else 0)
            rows["pre"][at] = idx
            # MAC: the source sends values, not spikes (a real-valued graph input, or a non-spiking
            # population: an ANN unit's activation, an LI/I/Identity readout) -- the projection's mode
            rows["mac"][at] = 1 if any(net.is_mac(projs[j]) for j in js) else 0
            rows["nent"][at] = nent
            if row_ncols is None and not np.array_equal(ncols, nent):
                row_ncols = rows["nent"].astype(row_dt["ncols"])  # from here on its own array
            if row_ncols is not None:
                row_ncols[at] = ncols
            row_ptr[1 + at.start:1 + at.stop] = cnt
            if ea.size:  # a geometric row block has none (no empty arrays kept per tile)
                tile_ents.setdefault(k, []).append((ea.astype(acc_dt), ev.astype(w_dt), ec.astype(np.int32)))
            nrows += R
            (dst_pairs if s > 0 else in_pairs).add(s, idx, core_of[k])
        if nrows != tile_nrows[k]:
            raise ProgramError(f"tile {k} ({t.population}): its axons hold {nrows} rows, its n_axons says "
                               f"{tile_nrows[k]}")
    post_w = {}
    for p in range(1, P):
        miss = np.flatnonzero(nrn_core[pop_off[p]:pop_off[p + 1]] < 0)
        if miss.size:
            raise ProgramError(f"population '{pops[p].name}': neuron {int(miss[0])} is held by no soma tile")

    # entries in tile_order (each tile's rows are already in place)
    def cat(f, dt):
        parts = [blk[f] for k in order for blk in tile_ents.get(k, ())]
        return np.ascontiguousarray(np.concatenate(parts)) if parts else np.zeros(0, dt)

    for j, g in geo.items():
        try:
            g.check()
        except ValueError as err:
            raise ProgramError(f"projection '{projs[j].name}': {err} (compile with conv_path='rows' to see "
                               f"the explicit rows)") from None
    row_src, row_delay, row_pre, row_mac, row_nent = (rows.pop(key) for key in ("src", "delay", "pre", "mac", "nent"))
    if row_ncols is None:  # every row's used columns are its entries: one array for both
        row_ncols = row_nent if row_dt["ncols"] == row_dt["nent"] else row_nent.astype(row_dt["ncols"])
    ent_acc, ent_w, ent_col = cat(0, acc_dt), cat(1, w_dt), cat(2, np.int32)
    tile_ents.clear()
    for lo in range(0, R_all, 1 << 24):  # entries per row -> offsets, in place (no R-long temporaries)
        hi = min(lo + (1 << 24), R_all)
        row_ptr[1 + lo:1 + hi] = np.cumsum(row_ptr[1 + lo:1 + hi]) + row_ptr[lo]
    tile_row_hi = tile_row_lo + tile_nrows

    # spike destinations per neuron (remote cores only) and of input events (from the I/O
    # port), population by population (hwsim.program_routes)
    multicast = chip.noc.multicast
    nrn_dst_ptr, nrn_dst_core, nrn_pk, nrn_hops, nrn_icx = program_routes.route_tables(
        dst_pairs, range(1, P), pop_off, N, nrn_core, core_xy, core_chip, chip_w, chip_h, multicast)
    in_dst_ptr, in_dst_core, in_pk, in_hops, in_icx = program_routes.route_tables(
        in_pairs, [0], pop_off[:2], int(pop_size[0]), None, core_xy, core_chip, chip_w, chip_h, multicast)

    prog = Program(
        pop_names=[p.name for p in pops], pop_model=pop_model, pop_size=pop_size, pop_off=pop_off,
        pop_ring=_i64(pop_ring), ring_off=ring_off, pop_proj_ptr=pop_proj_ptr, proj_order=proj_order,
        pop_tile_ptr=pop_tile_ptr, tile_order=tile_order, pop_bt_ptr=pop_bt_ptr, bt_start=bt_start,
        bt_off=bt_off, bt_vec=bt_vec, nrn_core=nrn_core, nrn_bias=nrn_bias, nrn_thr=nrn_thr,
        nrn_vreset=nrn_vreset, nrn_alpha=nrn_alpha, nrn_asyn=nrn_asyn, nrn_vleak=nrn_vleak,
        nrn_dst_ptr=nrn_dst_ptr, nrn_dst_core=nrn_dst_core, nrn_pk=nrn_pk, nrn_hops=nrn_hops,
        proj_names=[q.name for q in projs], proj_src=proj_src, proj_dst=proj_dst, proj_delay=proj_delay,
        proj_shift=proj_shift, proj_acc_off=_i64(proj_acc_off), proj_npost=proj_npost, n_acc=n_acc,
        tile_pop=tile_pop, tile_core=_i64(core_of), tile_kind=tile_kind, tile_soma=tile_soma,
        tile_ncols=tile_ncols, tile_row_ptr=_i64(np.stack([tile_row_lo, tile_row_hi], axis=1)),
        tile_psum_flits=tile_psum_flits, tile_psum_hops=tile_psum_hops,
        row_src=row_src, row_delay=row_delay, row_pre=row_pre, row_mac=row_mac, row_ncols=row_ncols, row_ptr=row_ptr, ent_acc=ent_acc, ent_w=ent_w, ent_col=ent_col,
        n_cores=n_cores, core_xy=core_xy, grid_w=grid_w, grid_h=grid_h,
        membrane_bits=int(meta["membrane_bits"]), leak_frac_bits=int(meta["leak_frac_bits"]),
        weight_bits=int(meta.get("weight_bits", chip.core.weight_bits)), pe_width=int(chip.core.pe_width),
        event_overhead=int(chip.core.event_overhead_cycles), payload_bits=int(chip.core.spike_payload_bits),
        flit_bits=int(chip.noc.flit_bits), output_pop=pidx[net.output], input_spiking=bool(net.input_spiking),
        chip=chip, net=net, mode=mode, nrn_icx=nrn_icx, tile_psum_icx=_i64(tile_psum_icx),
        in_dst_ptr=in_dst_ptr, in_dst_core=in_dst_core, in_pk=in_pk, in_hops=in_hops, in_icx=in_icx,
        core_chip=core_chip, chip_w=chip_w, chip_h=chip_h, conv_path=conv_path, row_nent=row_nent,
        **_geo_tables(geo, w_dt),
    )
    check(prog)
    return prog


def _explicit_rows(js, projs, post_w, post, idx, proj_acc_off, wmax, t, weight_bits):
    """The explicit entries of rows ``idx`` of tile ``t`` (posts ``post``) for projections
    ``js`` (their expansion for the posts cached in ``post_w``): per row its entry count
    and used columns, and the entries (accumulator, weight, column) sorted by row."""
    R = idx.size
    mats = []
    for j in js:
        if j not in post_w:
            post_w[j] = sp.csr_matrix(projs[j].weights_for_posts(post))
        w = post_w[j][idx]
        w.sum_duplicates()
        w.eliminate_zeros()
        if w.nnz and (np.abs(w.data).max() > wmax or not np.array_equal(w.data, np.round(w.data))):
            raise ProgramError(f"tile {t.id} ({t.population}): projection '{projs[j].name}' has weights that "
                               f"are not {weight_bits}-bit integers")
        mats.append((j, w.tocoo()))
    ent_r, ent_c, ent_a, ent_v = [], [], [], []
    for j, w in mats:
        ent_r.append(w.row.astype(np.int64))
        ent_c.append(w.col.astype(np.int64))
        ent_a.append(proj_acc_off[j] + post[w.col])
        ent_v.append(w.data.astype(np.int64))
    er = np.concatenate(ent_r) if ent_r else np.zeros(0, np.int64)
    ec = np.concatenate(ent_c) if ent_c else np.zeros(0, np.int64)
    o = np.argsort(er, kind="stable")
    er, ec = er[o], ec[o]
    ea = (np.concatenate(ent_a) if ent_a else np.zeros(0, np.int64))[o]
    ev = (np.concatenate(ent_v) if ent_v else np.zeros(0, np.int64))[o]
    cnt = np.bincount(er, minlength=R).astype(np.int64)
    if len(mats) == 1:  # one projection: its (row, column) pairs are unique (sum_duplicates)
        ncols = cnt.copy()
    else:
        pairs = np.unique(er * max(post.size, 1) + ec)
        ncols = np.bincount(pairs // max(post.size, 1), minlength=R).astype(np.int64)
    return cnt, ncols, ea, ev, ec


def _geo_tables(geo: dict, w_dt) -> dict:
    """The geometric projections' fields of a :class:`Program` (:mod:`hwsim.conv_rows`)."""
    gs = [geo[j] for j in sorted(geo)]
    ws = [g.kernel(w_dt) for g in gs]
    ks = [g.kmap() for g in gs]
    sizes = [w.size for w in ws]
    # the narrowest type holding the kernels' values (weight_bits = 8 allows +128, so w_dt is int16)
    lo, hi = min((int(w.min(initial=0)) for w in ws), default=0), max((int(w.max(initial=0)) for w in ws), default=0)
    dt = next(d for d in (np.int8, np.int16, np.int32, np.int64) if np.iinfo(d).min <= lo and hi <= np.iinfo(d).max)
    ws = [w.astype(dt, copy=False) for w in ws]
    geo_w = np.concatenate(ws) if len(ws) > 1 else (ws[0] if ws else np.zeros(0, dt))
    ws.clear()  # the kernels are the largest arrays here (VGG-16 ImageNet: 103 MB for one dense layer)
    return {"geo_proj": _i64([g.j for g in gs]),
            "geo_geom": _i64([g.geometry() for g in gs]).reshape(-1, conv_rows.GEOM_COLS),
            "geo_w_off": _i64(np.concatenate([[0], np.cumsum(sizes)])),
            "geo_w": geo_w,
            "geo_kmap_off": _i64(np.concatenate([[0], np.cumsum([k.size for k in ks])])),
            "geo_kmap": _i64(np.concatenate(ks)) if ks else np.zeros(0, np.int64)}


def check(prog: Program) -> None:
    """Range-check every index array a kernel dereferences (raises :class:`ProgramError`)."""
    P, N = prog.n_pops, int(prog.pop_off[-1])
    R, E = prog.row_src.size, prog.ent_acc.size

    def rng(name, a, lo, hi):
        a = np.asarray(a)
        if a.size and (a.min() < lo or a.max() >= hi):
            raise ProgramError(f"program: {name} out of range [{lo}, {hi})")

    if not 2 <= prog.membrane_bits <= 62 or not 0 <= prog.leak_frac_bits <= 62:
        raise ProgramError("program: membrane_bits / leak_frac_bits out of range")
    rng("ent_acc", prog.ent_acc, 0, max(prog.n_acc, 1))
    rng("ent_col", prog.ent_col, 0, max(int(prog.tile_ncols.max(initial=0)), 1))
    rng("row_src", prog.row_src, 0, P)
    rng("row_delay", prog.row_delay, 0, int(prog.pop_ring.max(initial=1)))
    for r_src in range(P):
        sel = prog.row_src == r_src
        rng(f"row_pre of '{prog.pop_names[r_src]}'", prog.row_pre[sel], 0, prog.pop_size[r_src])
        rng(f"row_delay of '{prog.pop_names[r_src]}'", prog.row_delay[sel], 0, prog.pop_ring[r_src])
    if prog.row_ptr.size != R + 1 or prog.row_ptr[-1] != E or (np.diff(prog.row_ptr) < 0).any():
        raise ProgramError("program: row_ptr inconsistent")
    rng("tile rows", prog.tile_row_ptr, 0, R + 1)
    rng("tile_core", prog.tile_core, 0, max(prog.n_cores, 1))
    rng("nrn_core", prog.nrn_core[prog.pop_off[1]:], 0, max(prog.n_cores, 1))
    rng("nrn_dst_core", prog.nrn_dst_core, 0, max(prog.n_cores, 1))
    rng("tile_order", prog.tile_order, 0, max(prog.n_tiles, 1))
    rng("proj_order", prog.proj_order, 0, max(prog.proj_src.size, 1))
    if prog.bt_vec.size:
        ends = prog.bt_off + prog.pop_size[np.repeat(np.arange(P), np.diff(prog.pop_bt_ptr))]
        rng("bias term end", ends, 0, prog.bt_vec.size + 1)
    if (prog.proj_acc_off + prog.proj_npost > prog.n_acc).any():
        raise ProgramError("program: accumulator offsets out of range")
    if prog.nrn_dst_ptr.size != N + 1 or prog.nrn_dst_ptr[-1] != prog.nrn_dst_core.size:
        raise ProgramError("program: nrn_dst_ptr inconsistent")
    n_in = int(prog.pop_size[0])
    for name in ("nrn_icx", "tile_psum_icx", "in_dst_ptr", "in_dst_core", "in_pk", "in_hops", "in_icx"):
        if getattr(prog, name) is None:
            raise ProgramError(f"program: {name} missing")
    if prog.nrn_icx.size != N or prog.tile_psum_icx.size != prog.n_tiles:
        raise ProgramError("program: nrn_icx / tile_psum_icx sizes inconsistent")
    if prog.in_dst_ptr.size != n_in + 1 or prog.in_dst_ptr[-1] != prog.in_dst_core.size \
            or (np.diff(prog.in_dst_ptr) < 0).any():
        raise ProgramError("program: in_dst_ptr inconsistent")
    if prog.in_pk.size != n_in or prog.in_hops.size != n_in or prog.in_icx.size != n_in:
        raise ProgramError("program: input event tables inconsistent")
    rng("in_dst_core", prog.in_dst_core, 0, max(prog.n_cores, 1))
    _check_geo(prog)


def _check_geo(prog: Program) -> None:
    """The geometric projections' tables (:mod:`hwsim.conv_rows`, :mod:`hwsim.dense_rows`)
    agree with the populations, and every index the scatter forms stays inside them."""
    R = prog.row_src.size
    if prog.row_nent is None or prog.row_nent.size != R or (prog.row_nent < np.diff(prog.row_ptr)).any():
        raise ProgramError("program: row_nent inconsistent")
    if prog.geo_proj is None or prog.geo_geom is None or prog.geo_w_off is None or prog.geo_w is None:
        raise ProgramError("program: geo_proj / geo_geom / geo_w_off / geo_w missing")
    G = prog.geo_proj.size
    if prog.geo_geom.shape != (G, conv_rows.GEOM_COLS) or prog.geo_w_off.size != G + 1 \
            or prog.geo_w_off[-1] != prog.geo_w.size:
        raise ProgramError("program: geometric projection tables inconsistent")
    if G and (prog.geo_proj.min() < 0 or prog.geo_proj.max() >= prog.proj_src.size
              or np.unique(prog.geo_proj).size != G):
        raise ProgramError("program: geo_proj out of range")
    if prog.geo_kmap_off is None or prog.geo_kmap is None or prog.geo_kmap_off.size != G + 1 \
            or prog.geo_kmap_off[-1] != prog.geo_kmap.size:
        raise ProgramError("program: geo_kmap_off / geo_kmap inconsistent")
    for gi in range(G):
        cin, h, w, cout, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, cin_g, cout_g = (int(v) for v in prog.geo_geom[gi])
        j = int(prog.geo_proj[gi])
        km = prog.geo_kmap[prog.geo_kmap_off[gi]:prog.geo_kmap_off[gi + 1]]
        if kh == 0:  # a dense projection (hwsim.dense_rows): W^T (cin x cout) and the map k(i) in [-1, cin)
            ok = (kw == 0 and cin >= 1 and cout == prog.proj_npost[j] and h == prog.pop_size[prog.proj_src[j]]
                  and km.size == h and (not km.size or (km.min() >= -1 and km.max() < cin))
                  and prog.geo_w_off[gi + 1] - prog.geo_w_off[gi] == cin * cout)
            if not ok:
                raise ProgramError(f"program: dense tables of projection '{prog.proj_names[j]}' inconsistent")
            continue
        ok = (km.size == 0 and min(cin, h, w, cout, oh, ow, kh, kw, sh, sw, dh, dw, cin_g, cout_g) >= 1 and min(ph, pw) >= 0
              and cin % cin_g == 0 and cout % cout_g == 0 and cin // cin_g == cout // cout_g
              and cin * h * w == prog.pop_size[prog.proj_src[j]] and cout * oh * ow == prog.proj_npost[j]
              and prog.geo_w_off[gi + 1] - prog.geo_w_off[gi] == cin * kh * kw * cout_g)
        if not ok:
            raise ProgramError(f"program: geometry of projection '{prog.proj_names[j]}' inconsistent")
