"""The timing plan: the constant tables of the compiled step timing
(:mod:`hwsim.engine.timing`, :mod:`hwsim.engine.timing_spikes`,
:mod:`hwsim.engine.timing_router`) built from a :class:`~hwsim.program.Program`: per
population its delay-0 sources, cores, fire cycles and partial-sum tiles; the route
classes of spike packets (neurons with the same source core and destination cores) and
one route template per class and per partial-sum tile (:func:`hwsim.noc.routes`'s edge
order), their destination edges and inter-chip crossings; the router kernel's
parameters and links for the wormhole model.

Sizes follow the classes and tiles, not the neurons x destinations: a neuron's
destination edges are its class's (ResNet-18 CIFAR: 21,148 classes for 560,138 neurons,
1.64 M template edges instead of 39.7 M).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from models import neurons

from ..noc import link_tables, routes
from ..program import Program
from ..router import router_params_from_chip, wormhole_links

__all__ = ["timing_plan", "no_timing_plan", "fire_cycles", "RT_ROOT", "static_edges", "anchors", "serve_tables", "delivery_tables"]

RT_ROOT = -(1 << 40)  # a route template's root parent: base + RT_ROOT < 0 for any edge base


def route_templates(src_xy, ptr, dst_xy, gw: int, gh: int, tree: bool):
    """Routes of packets laid out once by :func:`hwsim.noc.routes`: per packet ``p`` its
    edges ``ptr_out[p]:ptr_out[p+1]`` (link id, parent relative to the packet's first
    edge, -1 at the root) in the order the NoC model numbers them, and per destination
    its last edge relative to the packet (-1: at the source)."""
    edge_off, edge_link, edge_parent, edge_packet, edge_count, dst_edge, valid = routes(
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
    one class at one step leave their core together, simulated together (:mod:`hwsim.engine.timing_spikes`)."""
    N = ncore.size
    cls = np.full(N, -1, np.int64)
    seen: dict = {}
    for gi in range(g1, N):
        a, b = int(dst_ptr[gi]), int(dst_ptr[gi + 1])
        if b > a:
            cls[gi] = seen.setdefault((int(ncore[gi]), dst_core[a:b].tobytes()), len(seen))
    return cls, len(seen)


def _class_reps(nrn_cls: np.ndarray) -> np.ndarray:
    """One neuron of each route class (``rep[c]``: the first neuron of class ``c``): the
    class's route template and destination edges are its representative's."""
    gi = np.flatnonzero(nrn_cls >= 0)
    _, first = np.unique(nrn_cls[gi], return_index=True)
    return gi[first].astype(np.int64)


def static_edges(n_ptr, n_link, n_par, cls_pop, pipelined: bool):
    """Per spike route-template edge, is it *statically one-stream*: in any step, every
    (class, edge) pair that can cross its link in the same spike NoC call continues from
    one and the same parent link (a call covers one population in sync mode, all of them
    in pipelined mode)? Such a link never merges streams, so its packets never wait
    (:mod:`hwsim.engine.timing_spikes`): the edge's start cycles are its parent's plus
    ``W + R`` whatever spikes. A root edge is never static (each root pair is a stream
    of its own). ``cls_pop``: each class's population."""
    m = np.diff(n_ptr)
    own = np.repeat(np.arange(m.size), m)
    has_par = n_par >= 0
    plink = np.where(has_par, n_link[n_ptr[own] + np.maximum(n_par, 0)], -1 - np.arange(n_link.size))
    grp = n_link if pipelined else cls_pop[own] * (int(n_link.max(initial=0)) + 1) + n_link
    key = np.unique(np.stack([grp, plink]), axis=1)[0]  # one entry per (group, stream)
    ug, cnt = np.unique(key, return_counts=True)
    return has_par & (cnt[np.searchsorted(ug, grp)] == 1)


def delivery_tables(n_ptr, d_ptr, d_edge, rt_anchor, rt_depth, rank):
    """Per class destination ``i`` (``d_ptr[c]:d_ptr[c + 1]``, ejection edge ``d_edge[i]``
    template-relative, -1 on the source core): the rank (:func:`serve_tables`) of the edge
    whose block of start cycles the spike NoC reads for it (``blk``: the ejection edge,
    or its anchor when it is static; -1 on the source core) and the ejection edge's depth
    below that block (``dep``): its start cycles are the block's plus ``dep * (W + R)``."""
    own = np.repeat(np.arange(d_ptr.size - 1), np.diff(d_ptr))
    on_src = d_edge < 0
    e = n_ptr[own] + np.maximum(d_edge, 0)
    dep = np.where(on_src, 0, rt_depth[e]).astype(np.int64)
    blk = np.where(on_src, -1, rank[n_ptr[own] + rt_anchor[e]])  # a non-static edge is its own anchor
    return blk.astype(np.int64), dep


def serve_tables(n_ptr, n_link, n_par, static, rt_anchor, rt_depth):
    """Per class its edges that are not statically one-stream, in template order
    (``ns_ptr[c]:ns_ptr[c + 1]``; an edge's *rank* is its place in that list: the spike
    NoC keeps a class's pairs and blocks of start cycles by rank, so static edges take no
    room) and, in the same order, what it reads to serve one: its link (``ns_link``), the
    rank of the edge whose block holds its parent's start cycles (``ns_pp``: the parent,
    or the parent's anchor when the parent is static; -1 at the root), the parent's depth
    below that anchor (``ns_d``: the start cycles are that block's plus ``ns_d * (W +
    R)``) and the parent's link (``ns_pl``, -1 at the root). Also ``rank`` of every
    template edge (-1 for static ones)."""
    m = np.diff(n_ptr)
    n_cls = m.size
    own = np.repeat(np.arange(n_cls), m)
    ns_e = np.flatnonzero(~static)
    base = n_ptr[own[ns_e]]
    ns_ptr = np.zeros(n_cls + 1, np.int64)
    np.cumsum(np.bincount(own[ns_e], minlength=n_cls), out=ns_ptr[1:])
    rank = np.full(n_link.size, -1, np.int64)
    rank[ns_e] = np.arange(ns_e.size) - ns_ptr[own[ns_e]]
    par = n_par[ns_e]
    root = par < 0
    pe = base + np.maximum(par, 0)
    ns_d = np.where(root, 0, rt_depth[pe]).astype(np.int64)
    ns_pp = np.where(root, -1, rank[base + rt_anchor[pe]]).astype(np.int64)  # a non-static edge is its own anchor
    ns_pl = np.where(root, -1, n_link[pe]).astype(np.int64)
    return ns_ptr, n_link[ns_e].astype(np.int64), ns_pp, ns_d, ns_pl, rank


@njit(cache=True)
def anchors(n_ptr, n_par, static):
    """Per template edge ``j`` of each class: its *anchor* (the nearest ancestor-or-self
    that is not static, relative to the template) and its depth below it (0 when not
    static): its start cycles are the anchor's plus ``depth * (W + R)``. A template
    lists a parent before its children (:func:`hwsim.noc.routes` walks from the source)."""
    anc = np.empty(n_par.size, np.int64)
    dep = np.zeros(n_par.size, np.int64)
    for c in range(n_ptr.size - 1):
        for e in range(n_ptr[c], n_ptr[c + 1]):
            if static[e]:
                q = n_ptr[c] + n_par[e]
                if q >= e:
                    raise RuntimeError("route template: a parent edge after its child")
                anc[e] = anc[q]
                dep[e] = dep[q] + 1
            else:
                anc[e] = e - n_ptr[c]
    return anc, dep


def _tile_fire(prog: Program) -> np.ndarray:
    """Per tile its fire cycles, ``ceil(ncols / pe_width)`` (counted for soma tiles)."""
    pe = prog.pe_width
    return (np.asarray(prog.tile_ncols, np.int64) + pe - 1) // pe


def fire_cycles(prog: Program) -> np.ndarray:
    """Per core, the fire cycles its soma tiles (``tile_kind == 0``) spend every step of
    every sample, events or not: ``sum ceil(ncols / pe_width)`` over the core's soma
    tiles (the fire phase of the step timing; the functional kernel counts only the
    integrate cycles of events, :func:`hwsim.engine.run.simulate` adds these ``B`` times
    to every step's busy cycles, like the neuron updates)."""
    soma = prog.tile_kind == 0
    return np.bincount(np.asarray(prog.tile_core)[soma], weights=_tile_fire(prog)[soma],
                       minlength=prog.n_cores).astype(np.int64)[:prog.n_cores]


def timing_plan(prog: Program) -> dict:
    """Constant tables of the compiled timing model (:func:`hwsim.engine.timing.step_timing`):
    per population its delay-0 sources, cores (with fire cycles) and partial-sum tiles;
    route templates of every neuron's spike packet and every tile's partial-sum
    packet, and their inter-chip crossings per destination."""
    chip = prog.chip
    P, C, K, N = prog.n_pops, prog.n_cores, prog.n_tiles, int(prog.pop_off[-1])
    fire_tile = _tile_fire(prog)
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

    fire_all = fire_cycles(prog)
    # route templates: spikes per route class (graph-input neurons send none), then partial sums per tile
    g1 = int(prog.pop_off[1])
    tree = chip.noc.multicast == "xy-tree"
    gw, gh = int(prog.grid_w), int(prog.grid_h)
    ncore = np.where(np.arange(N) < g1, 0, prog.nrn_core).astype(np.int64)
    # spike routes per route class (its first neuron's), not per neuron: the classes'
    # templates are what a step's spikes follow (ResNet-18 CIFAR: 21,148 classes for 560,138
    # neurons; per neuron, 39.7 M template edges and a 3.3 GB peak building them)
    nrn_cls, n_cls = _route_classes(ncore, prog.nrn_dst_ptr, prog.nrn_dst_core, g1)
    rep = _class_reps(nrn_cls)
    rcnt = prog.nrn_dst_ptr[rep + 1] - prog.nrn_dst_ptr[rep]
    rptr = np.zeros(n_cls + 1, np.int64)
    np.cumsum(rcnt, out=rptr[1:])
    ridx = np.repeat(prog.nrn_dst_ptr[rep] - rptr[:-1], rcnt) + np.arange(int(rptr[-1]))  # class dests in the lists
    rdst = prog.nrn_dst_core[ridx]
    n_ptr, n_link, n_par, n_dst = route_templates(prog.core_xy[ncore[rep]], rptr, prog.core_xy[rdst], gw, gh, tree)
    t_src = prog.tile_core
    t_dst = prog.tile_core[prog.tile_soma]
    t_ptr, t_link, t_par, t_dst_edge = route_templates(prog.core_xy[t_src], np.arange(K + 1), prog.core_xy[t_dst],
                                                        gw, gh, tree)
    own = np.repeat(np.arange(N), np.diff(prog.nrn_dst_ptr))
    # a spike NoC call's start-cycle blocks (timing_spikes' S) take the sum over its
    # spiking neurons of their class's template length; a sync step calls it per
    # population, a pipelined step once for all: at most the largest population's sum
    # (every neuron spiking), resp. the whole net's (VGG-16 ImageNet: the whole net's sum
    # was the largest per-thread scratch field)
    m_nrn = np.zeros(N, np.int64)  # template edges per neuron (0: no spike route class)
    m_nrn[nrn_cls >= 0] = np.diff(n_ptr)[nrn_cls[nrn_cls >= 0]]
    pop_of = np.searchsorted(prog.pop_off, np.arange(N), side="right") - 1
    per_pop = np.bincount(pop_of, weights=m_nrn, minlength=P).astype(np.int64)
    spike_slots = int(per_pop.sum()) if prog.pipelined else int(per_pop.max(initial=0))
    del m_nrn
    nrn_cross = np.abs(prog.core_chip[prog.nrn_dst_core] - prog.core_chip[ncore[own]]).sum(axis=1)
    tile_cross = np.abs(prog.core_chip[t_dst] - prog.core_chip[t_src]).sum(axis=1)
    pm = prog.pop_model[pop_of]
    # the most (class, template edge) pairs on one link: the heads timing_spikes merges
    # there (with unicast routes a class crosses its first links once per destination
    # core, so this can exceed the number of classes)
    link_cls = int(np.bincount(n_link).max(initial=0)) if n_link.size else 0
    # statically one-stream edges: the spike NoC skips them per step (anchor + depth),
    # their flits are added per class once per run; the others are listed per class (ns_*)
    cls_pop = pop_of[rep]
    st_edge = static_edges(n_ptr, n_link, n_par, cls_pop, bool(prog.pipelined))
    rt_anchor, rt_depth = anchors(n_ptr, n_par, st_edge)
    ns_ptr, ns_link, ns_pp, ns_d, ns_pl, rank = serve_tables(n_ptr, n_link, n_par, st_edge, rt_anchor, rt_depth)
    # per class destination (its representative's, the same cores in the same order)
    r_cross = nrn_cross[ridx]
    cd_blk, cd_dep = delivery_tables(n_ptr, rptr, n_dst, rt_anchor, rt_depth, rank)
    del rank
    R, W = int(chip.noc.router_cycles), int(chip.noc.link_cycles)
    fixed = chip.timing.step_cycles
    link_pos, link_at = link_tables(gw, gh)
    d_ptr, d_flat = csr(dsrc)
    pc_ptr, pc_flat = csr(pcores)
    _, pf_flat = csr(pfire)
    cd_ptr, cd_flat = csr(pcand)
    rt_par = np.concatenate([n_par, t_par]).astype(np.int64)
    core_node = (prog.core_xy[:, 1] * gw + prog.core_xy[:, 0]).astype(np.int64)
    wormhole = chip.noc.router_model == "wormhole"
    rp = router_params_from_chip(chip, gw, gh).kernel_args() if wormhole else ()
    links = np.concatenate(wormhole_links(chip, gw, gh)) if wormhole else np.zeros(0, np.int64)
    return {
        "noc_router": np.array([int(wormhole), *rp, int(tree), *links], np.int64), "core_node": core_node,
        "nrn_dst_node": core_node[prog.nrn_dst_core],
        "dsrc_ptr": d_ptr, "dsrc": d_flat, "pcore_ptr": pc_ptr, "pcores": pc_flat, "pfire": pf_flat, "pcand_ptr": cd_ptr,
        "pcand": cd_flat, "used_cores": np.unique(prog.tile_core).astype(np.int64), "fire_all": fire_all,
        "psum_all": np.flatnonzero((prog.tile_kind == 1) & (prog.tile_psum_flits > 0)).astype(np.int64),
        "nrn_dst_ptr": prog.nrn_dst_ptr, "cd_ptr": rptr, "cd_blk": cd_blk, "cd_dep": cd_dep,
        "cd_x": r_cross.astype(np.int64), "nrn_dst_cross": nrn_cross.astype(np.int64),
        "nrn_flit_count": (prog.payload_bits == 0) & (pm >= 0) & (neurons.per_code("multi")[pm.clip(0)] != 0),
        "rt_ptr": n_ptr, "rt_link": np.concatenate([n_link, t_link]).astype(np.int64),
        "rt_parent": np.where(rt_par < 0, RT_ROOT, rt_par),
        "tile_rt_ptr": t_ptr + n_ptr[-1],
        "tile_dst_edge": t_dst_edge, "tile_cross": tile_cross.astype(np.int64), "R": R, "W": W,
        "extra": max(0, int(chip.noc.interchip_cycles) - R - W),
        "fixed": -1 if fixed == "dynamic" else int(fixed), "barrier": int(chip.timing.barrier_cycles),
        "pipelined": bool(prog.pipelined), "link_pos": link_pos, "link_at": link_at,
        "max_packets": max(N, K), "nrn_cls": nrn_cls, "n_cls": n_cls, "link_cls": link_cls,
        "spike_slots": spike_slots, "rt_depth": rt_depth, "ns_ptr": ns_ptr,
        "ns_link": ns_link, "ns_pp": ns_pp, "ns_d": ns_d, "ns_pl": ns_pl, "max_edges": int(n_link.size + t_link.size),
    }


def no_timing_plan(prog: Program) -> dict:
    """Empty timing tables (same types as :func:`timing_plan`) for runs without timing."""
    z = np.zeros(0, np.int64)
    one = np.zeros(1, np.int64)
    return {"noc_router": np.zeros(1, np.int64), "core_node": z, "nrn_dst_node": z, "dsrc_ptr": one, "dsrc": z, "pcore_ptr": one, "pcores": z, "pfire": z, "pcand_ptr": one, "pcand": z, "used_cores": z,
                "fire_all": np.zeros(prog.n_cores, np.int64), "psum_all": z, "nrn_dst_ptr": one, "cd_ptr": one, "cd_blk": z, "cd_dep": z, "cd_x": z,
                "nrn_dst_cross": z, "nrn_flit_count": np.zeros(0, np.bool_), "rt_ptr": one, "rt_link": z, "rt_parent": z,
                "tile_rt_ptr": one, "tile_dst_edge": z, "tile_cross": z, "R": 1, "W": 0, "extra": 0, "fixed": -1, "barrier": 0,
                "pipelined": False, "link_pos": z, "link_at": z, "max_packets": 0, "max_edges": 0,
                "nrn_cls": z, "n_cls": 0, "link_cls": 0, "spike_slots": 0,
                "rt_depth": z, "ns_ptr": one, "ns_link": z, "ns_pp": z, "ns_d": z,
                "ns_pl": z}
