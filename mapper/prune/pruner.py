r"""The pruning pass ``prune(graph, chip, target=...) -> PruneResult``: spread the budget, solve, rewrite.

:func:`allocate` spreads the crossbars to remove over the prunable layers; :func:`prune`
solves every layer (:mod:`mapper.prune.select`), applies the permutations
(:mod:`mapper.prune.permute`) and masks, and records what it did in the graph's metadata.

Budget
------
``target`` is the fraction of the unpruned mapping's crossbars to remove (all layers).
The removal is spread over the prunable layers (those with more pairs than blocks) so
that each gives up the same fraction of its removable pairs, rounded up one pair at a
time to the layer with the smallest fraction removed so far. A target the prunable
layers cannot reach raises :class:`PruneError` with the largest reachable target.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

import numpy as np

from models.graph import Graph

from .layers import Layer, PruneError, analyse
from .permute import permute_population
from .scores import SCORES, importance
from .select import solve

GRAINS = ("crossbar", "column")


@dataclass
class PruneResult:
    """A pruned graph and what was done: per layer ``layers[node]`` = dict(kept pairs,
    crossbars before/after (implied), block, kept importance share, permutations)."""

    graph: Graph
    layers: dict
    solutions: list
    crossbars_before: int
    crossbars_implied: int
    target: float
    grain: str
    reorder: bool


def allocate(layers: list[Layer], total: int, target: float) -> dict:
    """Pairs to remove per layer to cut ``ceil(target * total)`` crossbars (module docstring)."""
    need = math.ceil(target * total - 1e-9)
    cap = {lay.node: lay.removable // lay.patches for lay in layers}
    reach = sum(lay.removable for lay in layers)
    if need > reach:
        raise PruneError(f"target {target:g} needs {need} of {total} crossbars removed; the prunable layers "
                         f"({', '.join(lay.node for lay in layers) or 'none'}) can give at most {reach} "
                         f"(target <= {reach / total:.3f})")
    removed = {lay.node: 0 for lay in layers}
    got = 0
    while got < need:
        cand = [lay for lay in layers if removed[lay.node] < cap[lay.node]]
        lay = min(cand, key=lambda x: (removed[x.node] / cap[x.node], -x.patches))
        removed[lay.node] += 1
        got += lay.patches
    return removed


def prune(graph: Graph, chip, *, target: float, grain: str = "crossbar", reorder: bool = False,
          score: str = "l1", unit_rates: dict | None = None, mapping=None,
          layers: list[str] | None = None) -> PruneResult:
    """Prune ``graph`` so that its mapping on ``chip`` needs ``target`` fewer crossbars.

    Parameters
    ----------
    target : float in (0, 1)
        Fraction of the unpruned mapping's crossbars to remove.
    grain : 'crossbar' | 'column'
    reorder : bool
        Input reordering (:mod:`mapper.prune.select`).
    score : 'l1' | 'l2' | 'activation'
        ``'activation'`` needs ``unit_rates[node]``: the mean activity of each input unit.
    layers : names of the linear nodes to prune (default: every prunable one).

    Returns
    -------
    PruneResult with a new graph (the input graph is not modified).
    """
    check_request(target, grain, score)
    from ..mapping import map_model

    if mapping is None:
        mapping = map_model(graph, chip)
    info = every = analyse(graph, chip, mapping)
    if layers is not None:
        unknown = sorted(set(layers) - {lay.node for lay in info})
        if unknown:
            raise PruneError(f"layer(s) {unknown} are not prunable; prunable: {[lay.node for lay in info]}")
        info = [lay for lay in info if lay.node in layers]
    info = [lay for lay in info if lay.removable > 0]
    total = int(mapping.tiling.n_crossbars)
    removed = allocate(info, total, target)
    g = Graph({k: copy.deepcopy(v) for k, v in graph.nodes.items()}, list(graph.edges), dt=graph.dt,
              metadata=dict(graph.metadata), source=graph.source)
    frozen: dict = {}  # population -> producer block id per unit (after its recombination)
    sols, report = [], {}
    for lay in info:
        w = np.asarray(g.nodes[lay.node].weight)
        rate = None
        if score == "activation":
            rate = (unit_rates or {}).get(lay.node)
        imp = importance(w, score, rate)
        k_cross = lay.n_blocks * lay.n_chunks * lay.patches - removed[lay.node] * lay.patches
        fz = frozen.get(lay.producer)
        if fz is not None and lay.granule:
            fz = np.repeat(fz, lay.n_units // fz.size) if lay.n_units % fz.size == 0 else None
        cands = [solve(lay, imp, k_cross // lay.patches, grain, reorder, frozen_units=fz)]
        if grain == "column":
            for o in lay.options:
                s = solve(lay, imp, k_cross // o["patches"], grain, reorder, frozen_units=fz, cb=o["cb"],
                          cap=o["cap"], patches=o["patches"], block=(o["cb"], o["ph"], o["pw"]))
                if s.crossbars <= k_cross:
                    cands.append(s)
        sol = max(cands, key=lambda s: (s.kept_importance, -s.crossbars))
        # apply: inputs (the producer's renumbering), then outputs, then the mask
        if lay.granule and not np.array_equal(sol.unit_order, np.arange(lay.n_units)):
            gsz = lay.granule
            perm = sol.unit_order.reshape(-1, gsz)[:, 0] // gsz
            permute_population(g, every, lay.producer, perm)
            if lay.producer in frozen:
                frozen[lay.producer] = frozen[lay.producer][perm]
        if not np.array_equal(sol.col_order, np.arange(lay.n_cols)):
            permute_population(g, info, lay.node, sol.col_order)
        node = g.nodes[lay.node]
        wn = np.asarray(node.weight)
        m = sol.mask()
        node.weight = (wn * m.reshape(m.shape + (1,) * (wn.ndim - 2))).astype(wn.dtype)
        frozen[lay.node] = np.arange(lay.n_cols) // sol.cb
        sols.append(sol)
        report[lay.node] = {
            "population": lay.population, "kind": lay.kind,
            "blocks": int(sol.keep.shape[0]), "chunks": int(sol.keep.shape[1]),
            "pairs_kept": int(sol.keep.sum()), "pairs": int(sol.keep.size),
            "channel_block": int(sol.cb), "units_per_chunk": int(sol.cap), "crossbars_per_pair": int(sol.patches),
            "crossbars_before": int(lay.n_blocks * lay.n_chunks * lay.patches), "crossbars_after": sol.crossbars,
            "importance_kept": sol.kept_importance / max(sol.total_importance, 1e-300),
            "column_order": sol.col_order.tolist(),
            "input_order": sol.unit_order.tolist() if lay.granule else None,
        }
    implied = total - sum(r["crossbars_before"] - r["crossbars_after"] for r in report.values())
    meta = dict(g.metadata)
    meta["pruning"] = json.dumps({"grain": grain, "target": target, "reorder": reorder, "score": score,
                                  "chip": chip.name, "crossbars_before": total, "crossbars_implied": implied,
                                  "layers": report})
    out = Graph(g.nodes, g.edges, dt=g.dt, metadata=meta, source=g.source)
    return PruneResult(out, report, sols, total, implied, target, grain, reorder)


def check_request(target, grain, score):
    """Raise :class:`PruneError` unless ``grain`` and ``score`` are known and ``target`` is in (0, 1)."""
    if grain not in GRAINS:
        raise PruneError(f"unknown grain {grain!r}; choose one of {', '.join(GRAINS)}")
    if score not in SCORES:
        raise PruneError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    if not isinstance(target, (int, float)) or not math.isfinite(target) or not 0 < target < 1:
        raise PruneError(f"target must be a fraction in (0, 1) of the crossbars to remove, got {target!r}")

