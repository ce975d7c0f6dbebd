r"""Crossbar-aware pruning (Liang, Deng et al., IEEE Access 2018): remove whole crossbars.

This module owns the step ``Graph -> pruned Graph`` that makes a network need fewer
crossbars on a chip (DESIGN.md section 1, ``mapper.prune``). It works on the NIR weights
of a feed-forward chain ``Input -> (Conv2d | Affine | Linear) -> neurons -> [pool]
[flatten] -> ... -> Output`` and on the crossbar structure :mod:`mapper.tiling` gives it.

Unit view of a layer
--------------------
A prunable layer is a linear node ``L`` (weight ``W``) that drives a neuron population.
Its **columns** are its outputs (output channels of a Conv2d, output features of an
Affine); its **input units** are its inputs (input channels, input features). ``I[c, u]``
is the importance of the weights from unit ``u`` to column ``c`` (``score="l1"``:
``sum |W[c, u]|`` over the kernel taps, ``"l2"``: their root sum of squares,
``"activation"``: ``l1 * r_u`` with ``r_u`` the mean output of the unit's neurons in a
float reference run on calibration data).

The tiler puts a population's columns in **blocks** of ``cb`` (the crossbar's neurons
for a dense population; the chosen channel block for a conv population) and a block's
input rows in **chunks** of one crossbar's axons: ``cap`` input units per chunk (``cap
= floor(axons / rows per unit)``: rows per unit = ``Rh * Rw`` touched input pixels of a
patch for a conv layer, the pool window for a dense layer behind a pooling node, else
1). Every (block, chunk) **pair** costs ``patches`` crossbars (conv patches, 1 for
dense), so with ``keep[b, j]`` the kept pairs the layer needs exactly::

    crossbars = patches * sum_b max(1, #{j : keep[b, j]})

(a block keeps at least one chunk: its neurons need a soma crossbar). Pruning a pair
zeroes ``W[c, u]`` for every column ``c`` of block ``b`` and unit ``u`` of chunk ``j``.

Grains
------
* ``crossbar``: blocks and chunks are those of the unpruned mapping (columns and units
  in index order); the ``k`` pairs with the largest ``J[b, j] = sum_{c in b, u in j}
  I[c, u]`` are kept.
* ``column``: each column keeps its own set of chunks; columns that keep the same chunks
  are recombined into the same crossbars (output recombination) by permuting the
  layer's outputs. It alternates two exact steps until the kept importance stops
  growing: choose the top-``k`` pairs of ``J`` for the current column order, then
  re-assign every column to a block slot so that ``sum_c sum_{j kept by block(c)}
  I[c, chunk j]`` is maximal (a linear assignment, :func:`scipy.optimize.linear_sum_assignment`).
  For a conv layer it also tries every finer channel block the tiler could use with the
  same crossbars per kept kernel slice (e.g. 16 channels x 4x4 pixels instead of 32 x
  2x4) and keeps the best.
  This is the recombination of the paper under this chip's partial-sum rule (a
  partial-sum crossbar feeds one soma block); the paper's per-crossbar packing, which
  routes each column's partial sum separately, would need ``sum_j ceil(|S_j| / cb)``.
* ``reorder=True`` (input reordering) permutes the layer's input units (the channels or
  neurons of the population that feeds it) in the same alternating loop, so that the
  units of one chunk have similar importance per block. Units move as whole channels
  behind a flatten, never across the producer's own recombined blocks, and never for
  the graph input.

Permutations are applied to the graph: a population's neurons are renumbered in its
producer's weights and bias, its neuron parameters and its consumer's weights, so the
network computes the same function (identical spikes up to the renumbering, identical
outputs: the output population is never permuted). The permutations are recorded in the
pruned graph's metadata (``pruning``).

Budget
------
``target`` is the fraction of the unpruned mapping's crossbars to remove (all layers).
The removal is spread over the prunable layers (those with more pairs than blocks) so
that each gives up the same fraction of its removable pairs, rounded up one pair at a
time to the layer with the smallest fraction removed so far. A target the prunable
layers cannot reach raises :class:`PruneError` with the largest reachable target.

Fine-tuning (L0-constrained, LGD with relaxed probabilistic projection) is
:func:`project` applied after every gradient step of :func:`models.train.finetune`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from models.errors import SnnchipError
from models.graph import NEURON_TYPES, Graph, node_type

GRAINS = ("crossbar", "column")
SCORES = ("l1", "l2", "activation")
_LINEAR = ("Conv2d", "Affine", "Linear")
_PASS = ("AvgPool2d", "SumPool2d", "Flatten")


class PruneError(SnnchipError):
    """Bad pruning request (names the field, layer or limit)."""


# ---------------------------------------------------------------------------------------
# chain analysis
# ---------------------------------------------------------------------------------------

@dataclass
class Layer:
    """One prunable linear node and the crossbar structure of its population.

    ``cb`` columns per block, ``cap`` input units per chunk, ``patches`` crossbars per
    (block, chunk) pair; ``granule`` = input units that move together when inputs are
    reordered (a channel behind a flatten), 0 when the inputs cannot move;
    ``out_permutable`` False for the population that feeds the output.
    """

    node: str
    population: str
    kind: str  # "conv" | "dense"
    n_cols: int
    n_units: int
    cb: int
    cap: int
    patches: int
    granule: int
    out_permutable: bool
    block: tuple | None = None
    producer: str | None = None  # the linear node that feeds this layer's input population
    consumer: str | None = None  # the linear node this population feeds
    consumer_spatial: int = 1  # inputs of the consumer per neuron channel (flatten)
    options: list = field(default_factory=list)  # conv: alternative (cb, ph, pw, cap, patches)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_cols // self.cb)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_units // self.cap)

    @property
    def removable(self) -> int:
        """Crossbars pruning can remove (every block keeps one chunk)."""
        return (self.n_blocks * self.n_chunks - self.n_blocks) * self.patches

    def crossbars(self, keep: np.ndarray) -> int:
        """Crossbars the layer needs with ``keep`` (n_blocks, n_chunks)."""
        return int(self.patches * np.maximum(1, keep.sum(axis=1)).sum())


def _chain(graph: Graph) -> list[str]:
    """The nodes from input to output of a feed-forward chain, else PruneError."""
    succ: dict = {}
    pred: dict = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    if graph.back_edges:
        raise PruneError(f"pruning needs a feed-forward chain; the graph has recurrent edges {graph.back_edges[:3]}")
    order, node = [], graph.input_name
    while True:
        order.append(node)
        nxt = succ.get(node, [])
        if not nxt:
            break
        if len(nxt) > 1 or len(pred.get(nxt[0], [])) > 1:
            raise PruneError(f"pruning needs a feed-forward chain; node '{node if len(nxt) > 1 else nxt[0]}' "
                             "branches or merges")
        node = nxt[0]
    if len(order) != len(graph.nodes):
        raise PruneError("pruning needs a feed-forward chain; some nodes are not on the input-output path")
    return order


def analyse(graph: Graph, chip, mapping=None) -> list[Layer]:
    """The prunable layers of ``graph`` on ``chip`` (see the module docstring).

    ``mapping``: the unpruned :class:`~mapper.mapping.Mapping` (made with
    :func:`mapper.mapping.map_model` when omitted); its tiling gives the blocks.
    """
    from .mapping import map_model
    from .tiling import conv_block_options

    order = _chain(graph)
    if mapping is None:
        mapping = map_model(graph, chip)
    A = int(chip.core.axons)
    N = int(chip.core.neurons)
    net = mapping.net
    types = {n: node_type(graph.nodes[n]) for n in order}
    layers: list[Layer] = []
    prev_linear = None
    for i, name in enumerate(order):
        if types[name] not in _LINEAR:
            continue
        producer = prev_linear
        prev_linear = name
        if i + 1 >= len(order) or types[order[i + 1]] not in NEURON_TYPES:
            continue
        pop = order[i + 1]
        # what the population feeds: pools/flatten, then a linear node or the output
        j, spatial, consumer = i + 2, None, None
        while j < len(order) and types[order[j]] in _PASS:
            j += 1
        if j < len(order) and types[order[j]] in _LINEAR:
            consumer = order[j]
        pshape = graph.shapes[pop][1]
        if consumer is not None:
            cin = graph.shapes[consumer][0]
            if types[consumer] == "Conv2d":
                spatial = 1
            elif len(pshape) == 3 and len(cin) == 1 and cin[0] % pshape[0] == 0:
                spatial = cin[0] // pshape[0]
            elif len(pshape) == 1 and tuple(cin) == tuple(pshape):
                spatial = 1
            else:
                consumer = None
        if pop not in net.pop:
            continue
        qs = [q for q in net.projections if q.dst == pop]
        if len(qs) != 1:
            continue
        q = qs[0]
        w = np.asarray(graph.nodes[name].weight)
        info = mapping.tiling.blocks.get(pop, {})
        fold = int(mapping.tiling.fold.get(pop, 1))
        in_is_graph_input = producer is None
        if q.kind == "conv" and types[name] == "Conv2d" and info.get("kind") == "conv" \
                and int(getattr(graph.nodes[name], "groups", 1)) == 1:
            cb, ph, pw = info["block"]
            opts = conv_block_options(q, chip, include=(cb, ph, pw))
            for o in opts:  # crossbars per (block, chunk) pair at the population's fold
                o["patches"] = -(-o["patches"] // fold)
            base = next(o for o in opts if (o["cb"], o["ph"], o["pw"]) == (cb, ph, pw))
            finer = [o for o in opts if o["cb"] < cb
                     and o["patches"] * base["cap"] * cb <= base["patches"] * o["cap"] * o["cb"]]
            layers.append(Layer(name, pop, "conv", int(w.shape[0]), int(w.shape[1]), cb, base["cap"],
                                base["patches"], 0 if in_is_graph_input else 1, consumer is not None,
                                (cb, ph, pw), producer, consumer, spatial or 1, finer))
        elif q.kind == "dense" and types[name] in ("Affine", "Linear") and info.get("kind") == "dense":
            if q.pre_map is None:
                width = np.ones(w.shape[1], dtype=np.int64)
            else:
                width = np.diff(q.pre_map.tocsr().indptr) if q.pre_map.shape[0] == w.shape[1] else None
            if width is None or width.size != w.shape[1] or not (width == width[0]).all() or width[0] > A:
                continue
            g = 0
            if not in_is_graph_input:
                src_shape = graph.shapes[order[i - 1]][1] if types[order[i - 1]] == "Flatten" else None
                g = 1
                if src_shape is not None and len(src_shape) == 1:
                    pre = graph.shapes[order[i - 1]][0]
                    g = int(np.prod(pre[1:])) if len(pre) == 3 else 1
            layers.append(Layer(name, pop, "dense", int(w.shape[0]), int(w.shape[1]), N, A // int(width[0]), 1,
                                g, consumer is not None, None, producer, consumer, spatial or 1))
    for lay in layers:
        # the inputs move only if the producing population can be renumbered
        if lay.granule and not any(p.node == lay.producer and p.out_permutable for p in layers):
            lay.granule = 0
        if lay.granule and (lay.cap % lay.granule or lay.n_units % lay.granule):
            lay.granule = 0
    return layers


# ---------------------------------------------------------------------------------------
# importance and the alternating solver
# ---------------------------------------------------------------------------------------

def importance(weight: np.ndarray, score: str = "l1", unit_rate: np.ndarray | None = None) -> np.ndarray:
    """``I[c, u]`` (columns x input units) of a Conv2d (out, in, kh, kw) or Affine (out, in) weight."""
    if score not in SCORES:
        raise PruneError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    w = np.asarray(weight, dtype=np.float64)
    w = w.reshape(w.shape[0], w.shape[1], -1)
    imp = np.sqrt((w * w).sum(axis=2)) if score == "l2" else np.abs(w).sum(axis=2)
    if score == "activation":
        if unit_rate is None or np.asarray(unit_rate).shape != (w.shape[1],):
            raise PruneError(f"score 'activation' needs a rate per input unit ({w.shape[1]},)")
        imp = imp * np.asarray(unit_rate, dtype=np.float64)[None, :]
    return imp


def _block_sums(imp: np.ndarray, cb: int, cap: int) -> np.ndarray:
    C, U = imp.shape
    cs = np.add.reduceat(imp, np.arange(0, C, cb), axis=0)
    return np.add.reduceat(cs, np.arange(0, U, cap), axis=1)


def top_pairs(J: np.ndarray, k: int, noise: np.ndarray | None = None) -> np.ndarray:
    """Keep mask of the ``k`` largest pairs of ``J`` (n_blocks, n_chunks), at least one per block.

    With ``noise`` (same shape, Gumbel draws times a temperature) the ranking uses
    ``log J + noise``: the relaxed probabilistic projection.
    """
    nb, nc = J.shape
    k = int(min(max(k, nb), nb * nc))
    s = np.log(np.maximum(J, 1e-300))
    if noise is not None:
        s = s + noise
    keep = np.zeros(J.shape, dtype=bool)
    keep[np.arange(nb), np.argmax(s, axis=1)] = True  # every block keeps its best chunk
    rest = np.where(keep, -np.inf, s).ravel()
    extra = k - nb
    if extra > 0:
        idx = np.argpartition(-rest, extra - 1)[:extra]
        keep.ravel()[idx] = True
    return keep


def _assign(value: np.ndarray, slot_group: np.ndarray, n_groups: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Order of items maximising ``sum value[item, group(slot)]``: slot -> item.

    ``value`` (items, groups); ``slot_group[s]`` the group of slot s; ``allowed``
    (items, slots) bool or None. Exact (linear assignment)."""
    gain = value[:, slot_group]
    if allowed is not None:
        gain = np.where(allowed, gain, -1e30)
    rows, cols = linear_sum_assignment(-gain)
    order = np.empty(len(slot_group), dtype=np.int64)
    order[cols] = rows
    return order


@dataclass
class Solution:
    """The pruning of one layer: kept pairs, the column and input orders, the block."""

    layer: Layer
    keep: np.ndarray
    col_order: np.ndarray
    unit_order: np.ndarray
    cb: int
    cap: int
    patches: int
    block: tuple | None
    kept_importance: float
    total_importance: float

    @property
    def crossbars(self) -> int:
        return int(self.patches * np.maximum(1, self.keep.sum(axis=1)).sum())

    def mask(self) -> np.ndarray:
        """Weight mask (n_cols, n_units) in the FINAL (permuted) order."""
        C, U = self.layer.n_cols, self.layer.n_units
        return self.keep[np.arange(C) // self.cb][:, np.arange(U) // self.cap]


def _starts(imp: np.ndarray, cb: int, cap: int, restarts: int, seed: int) -> list:
    """Initial column orders for the column grain: the index order, columns sorted by the
    chunk that holds most of their importance (columns that want the same inputs side by
    side), and ``restarts`` random orders. The alternating loop only climbs, so the
    starts decide which local optimum it reaches."""
    C, U = imp.shape
    out = [np.arange(C)]
    if C > cb:
        per = np.add.reduceat(imp, np.arange(0, U, cap), axis=1)
        prof = per / np.maximum(per.sum(axis=1, keepdims=True), 1e-300)
        out.append(np.lexsort((-prof.max(axis=1), prof.argmax(axis=1))))
        rng = np.random.default_rng(seed)
        out += [rng.permutation(C) for _ in range(restarts)]
    return out


def solve(layer: Layer, imp: np.ndarray, k_pairs: int, grain: str, reorder: bool, *,
          frozen_units: np.ndarray | None = None, cb: int | None = None, cap: int | None = None,
          iters: int = 20, restarts: int = 8, seed: int = 0, patches: int | None = None,
          block: tuple | None = None) -> Solution:
    """Choose kept pairs (and orders) for one layer; see the module docstring.

    The column grain runs the alternating loop from every start of :func:`_starts` and
    keeps the best; the crossbar grain starts from the index order only.
    """
    cb = cb or layer.cb
    cap = cap or layer.cap
    patches = patches or layer.patches
    block = block if block is not None else layer.block
    starts = _starts(imp, cb, cap, restarts, seed) if grain == "column" and layer.out_permutable else [None]
    sols = [_climb(layer, imp, k_pairs, grain, reorder, frozen_units, cb, cap, patches, block, iters, s)
            for s in starts]
    return max(sols, key=lambda s: s.kept_importance)


def _climb(layer, imp, k_pairs, grain, reorder, frozen_units, cb, cap, patches, block, iters, start) -> Solution:
    C, U = imp.shape
    col_order = np.arange(C) if start is None else np.asarray(start)
    unit_order = np.arange(U)
    col_block = np.arange(C) // cb
    nb = -(-C // cb)
    g = layer.granule if reorder else 0
    best = None
    for _ in range(iters):
        cur = imp[col_order][:, unit_order]
        keep = top_pairs(_block_sums(cur, cb, cap), k_pairs)
        kept = float((cur * keep[col_block][:, np.arange(U) // cap]).sum())
        if best is not None and kept <= best[0] + 1e-12 * max(1.0, abs(kept)):
            break
        best = (kept, keep, col_order.copy(), unit_order.copy())
        if grain == "column" and layer.out_permutable and nb > 1:
            per_chunk = np.add.reduceat(imp[:, unit_order], np.arange(0, U, cap), axis=1)  # (C, chunks)
            value = per_chunk @ keep.T.astype(np.float64)  # (C, blocks)
            col_order = _assign(value, col_block, nb)
        if g and U // cap > 1:
            # whole granules to granule slots: value of granule x in chunk j
            cols_in = keep[col_block][np.argsort(col_order)]  # original column -> kept chunks of its block
            per_unit = imp.T @ cols_in.astype(np.float64)  # (U, chunks): importance kept if unit sits in chunk j
            G = U // g
            gval = per_unit.reshape(G, g, -1).sum(axis=1)
            slot_chunk = (np.arange(G) * g) // cap
            allowed = None
            if frozen_units is not None:
                # a granule stays inside the producer's block (its recombined crossbars)
                grp = frozen_units.reshape(G, g)[:, 0]
                allowed = grp[:, None] == grp[None, :]
            gorder = _assign(gval, slot_chunk, int(slot_chunk.max()) + 1, allowed)
            unit_order = (gorder[:, None] * g + np.arange(g)[None, :]).ravel()
    kept, keep, col_order, unit_order = best
    return Solution(layer, keep, col_order, unit_order, cb, cap, patches, block, kept, float(imp.sum()))


# ---------------------------------------------------------------------------------------
# permutations on the graph
# ---------------------------------------------------------------------------------------

def _permute_node_params(node, perm: np.ndarray, shape: tuple, where: str) -> None:
    C = shape[0]
    for fname, v in list(vars(node).items()):
        if fname in ("input_type", "output_type", "metadata") or not isinstance(v, np.ndarray) or v.ndim == 0:
            continue
        if v.shape[0] == C and v.ndim == len(shape):
            setattr(node, fname, np.ascontiguousarray(v[perm]))
        elif v.shape[0] != 1 and v.size != 1:
            raise PruneError(f"{where}: cannot renumber field '{fname}' of shape {v.shape}")


def permute_population(graph: Graph, layers: list[Layer], node: str, perm: np.ndarray) -> None:
    """Renumber the outputs of linear ``node`` (and its population) by ``perm`` in place:
    new index i is old index ``perm[i]`` (channels of a conv population)."""
    lay = next(lay for lay in layers if lay.node == node)
    if not lay.out_permutable:
        raise PruneError(f"layer '{node}': its population feeds the output and cannot be renumbered")
    n = graph.nodes[node]
    n.weight = np.ascontiguousarray(np.asarray(n.weight)[perm])
    b = getattr(n, "bias", None)
    if isinstance(b, np.ndarray) and b.ndim and b.shape[0] == perm.size:
        n.bias = np.ascontiguousarray(b[perm])
    _permute_node_params(graph.nodes[lay.population], perm, graph.shapes[lay.population][1],
                         f"population '{lay.population}'")
    c = graph.nodes[lay.consumer]
    w = np.asarray(c.weight)
    s = lay.consumer_spatial
    cols = (perm[:, None] * s + np.arange(s)[None, :]).ravel()
    c.weight = np.ascontiguousarray(w[:, cols])


# ---------------------------------------------------------------------------------------
# the pass
# ---------------------------------------------------------------------------------------

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
        Input reordering (module docstring).
    score : 'l1' | 'l2' | 'activation'
        ``'activation'`` needs ``unit_rates[node]``: the mean activity of each input unit.
    layers : names of the linear nodes to prune (default: every prunable one).

    Returns
    -------
    PruneResult with a new graph (the input graph is not modified).
    """
    _check_request(target, grain, score)
    from .mapping import map_model

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


def _check_request(target, grain, score):
    if grain not in GRAINS:
        raise PruneError(f"unknown grain {grain!r}; choose one of {', '.join(GRAINS)}")
    if score not in SCORES:
        raise PruneError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    if not isinstance(target, (int, float)) or not math.isfinite(target) or not 0 < target < 1:
        raise PruneError(f"target must be a fraction in (0, 1) of the crossbars to remove, got {target!r}")


# ---------------------------------------------------------------------------------------
# projection for fine-tuning (LGD + RPP)
# ---------------------------------------------------------------------------------------

def project(weight: np.ndarray, sol: Solution, temperature: float = 0.0,
            rng: np.random.Generator | None = None, score: str = "l1") -> np.ndarray:
    """Zero every pair of ``weight`` (final order) outside the top ``sol.keep.sum()`` pairs.

    ``temperature > 0``: relaxed probabilistic projection, the ranking uses
    ``log J + temperature * Gumbel`` (a Gumbel-top-k draw: pairs are kept with a
    probability that grows with their importance); ``temperature = 0``: the hard
    L0 projection onto at most k pairs (each block keeps one). The block structure
    (orders, ``cb``, ``cap``) stays that of ``sol``.
    """
    J = _block_sums(importance(weight, "l2" if score == "l2" else "l1"), sol.cb, sol.cap)
    noise = None
    if temperature > 0:
        rng = rng or np.random.default_rng(0)
        noise = temperature * rng.gumbel(size=J.shape)
    keep = top_pairs(J, int(sol.keep.sum()), noise)
    C, U = sol.layer.n_cols, sol.layer.n_units
    m = keep[np.arange(C) // sol.cb][:, np.arange(U) // sol.cap]
    w = np.asarray(weight)
    return w * m.reshape(m.shape + (1,) * (w.ndim - 2)).astype(w.dtype)


def finetune(result: PruneResult, epochs: int, *, callback=None, lr: float = 1e-3, seed: int = 0,
             log: bool = False) -> PruneResult:
    """L0-constrained fine-tuning of a pruned graph; returns a new :class:`PruneResult`.

    A zoo model (trained by :mod:`models.train`) is rebuilt as its QCFS ANN
    (:func:`models.train.model_from_graph`), trained for ``epochs`` on the training
    images with :func:`project` after every step (:func:`models.train.finetune`: LGD with
    the relaxed probabilistic projection) and converted back. Any other graph needs
    ``callback(graph, project_fn) -> graph``, where ``project_fn(node, weight,
    temperature, rng)`` is the projection of that layer; the result is projected hard
    once more, so the crossbar budget holds whatever the callback did.

    LGD re-projects after every step, so the kept pairs may move (never more than k
    per layer); the result's solutions, ``layers`` and ``crossbars_implied`` describe the
    final weights. The mapping can need fewer crossbars than implied when 8-bit
    quantisation flushes every weight of a kept pair of some block to zero (the tiler
    drops channels with no nonzero weight and may then choose a finer block).
    """
    from models.train import (
        DEFAULT_STEPS,
        TRAIN_SLICE,
        TrainConfig,
        convert,
        model_from_graph,
    )
    from models.train import finetune as _ft

    if not isinstance(epochs, int) or epochs < 1:
        raise PruneError(f"finetune epochs must be an integer >= 1, got {epochs!r}")
    g = result.graph
    by_node = {s.layer.node: s for s in result.solutions}
    score = json.loads(g.metadata["pruning"]).get("score", "l1")

    def project_node(node, weight, temperature=0.0, rng=None):
        s = by_node.get(node)
        return weight if s is None else project(weight, s, temperature, rng, score)

    linear = [n for n in g.order if node_type(g.nodes[n]) in _LINEAR]
    try:
        model = model_from_graph(g)
    except ValueError as e:
        if callback is None:
            raise PruneError(f"{e}; pass a fine-tuning callback (mapper.prune.finetune(..., callback=...)) "
                             "or prune without fine-tuning") from None
        model = None
    if model is not None:
        from models.datasets import load_mnist

        x, y = load_mnist(start=TRAIN_SLICE[0], stop=TRAIN_SLICE[1])
        cfg = TrainConfig(epochs=epochs, lr=lr, seed=seed, levels=int(g.metadata.get("qcfs_levels", 8)), log=log)
        _ft(model, x, y, lambda i, w, t, rng: project_node(linear[i], w, t, rng), cfg)
        new = convert(model, x, steps=int(g.metadata.get("steps", DEFAULT_STEPS)))
        meta = {k: v for k, v in g.metadata.items() if k not in ("ann_accuracy", "snn_accuracy")}
        meta.update({"lambdas": new.metadata["lambdas"], "theta_out": new.metadata["theta_out"]})
        renamed = dict(zip([n for n in new.order if node_type(new.nodes[n]) in _LINEAR], linear))
        if any(a != b for a, b in renamed.items()):
            raise PruneError("internal: converted graph renamed the linear nodes")
        nodes = new.nodes
    else:
        out = callback(g, project_node)
        if not isinstance(out, Graph):
            raise PruneError(f"fine-tuning callback returned {type(out).__name__}, expected models.Graph")
        nodes = {k: copy.deepcopy(v) for k, v in out.nodes.items()}
        for n in linear:
            if n in by_node:
                nodes[n].weight = project_node(n, np.asarray(nodes[n].weight))
        meta = dict(g.metadata)
    # LGD re-projects every step, so the kept pairs may have moved: record the final ones
    sols, layers = [], {}
    for sol in result.solutions:
        w = np.abs(np.asarray(nodes[sol.layer.node].weight, dtype=np.float64))
        keep = _block_sums(w.reshape(w.shape[0], w.shape[1], -1).sum(axis=2), sol.cb, sol.cap) > 0
        new = dataclasses.replace(sol, keep=keep)
        sols.append(new)
        layers[sol.layer.node] = dict(result.layers[sol.layer.node], pairs_kept=int(keep.sum()),
                                      crossbars_after=new.crossbars)
    implied = result.crossbars_before - sum(r["crossbars_before"] - r["crossbars_after"] for r in layers.values())
    info = json.loads(meta["pruning"])
    info.update(finetune_epochs=epochs, crossbars_implied=implied, layers=layers)
    meta["pruning"] = json.dumps(info)
    g2 = Graph(nodes, list(g.edges), dt=g.dt, metadata=meta, source=g.source)
    return PruneResult(g2, layers, sols, result.crossbars_before, implied, result.target, result.grain,
                       result.reorder)


def unit_rates(graph: Graph, inputs: np.ndarray, *, reset: str = "subtract", spikes: str = "binary") -> dict:
    """Mean activity of every input unit of every linear node, for ``score="activation"``.

    Runs the float reference (:func:`models.reference.simulate_graph`) on ``inputs``
    (T, B, *input_shape) and averages over steps and samples the values that reach each
    linear node: spikes of the neuron node (or the input values) feeding it, through its
    pooling (window mean) and flatten nodes; a conv layer's unit is an input channel
    (mean over its pixels), a dense layer's an input feature.
    """
    from models.reference import simulate_graph

    order = _chain(graph)
    types = {n: node_type(graph.nodes[n]) for n in order}
    res = simulate_graph(graph, inputs, reset=reset, spikes=spikes, record="all")
    x = np.asarray(inputs, dtype=np.float64)
    means = {graph.input_name: x.reshape(x.shape[0] * x.shape[1], -1).mean(axis=0)}
    for k, s in res.spikes.items():
        means[k] = np.asarray(s).reshape(-1, np.asarray(s).shape[-1]).mean(axis=0)
    out = {}
    for i, name in enumerate(order):
        if types[name] not in _LINEAR:
            continue
        j, passes = i - 1, []
        while j > 0 and types[order[j]] in _PASS:
            passes.append(order[j])
            j -= 1
        src = order[j]
        if src not in means:
            continue
        r = means[src].reshape(graph.shapes[src][1])
        for p in reversed(passes):
            if types[p] == "Flatten":
                r = r.reshape(-1)
                continue
            node = graph.nodes[p]
            k = tuple(int(v) for v in np.broadcast_to(np.asarray(node.kernel_size), (2,)))
            st = tuple(int(v) for v in np.broadcast_to(np.asarray(node.stride), (2,)))
            pad = tuple(int(v) for v in np.broadcast_to(np.asarray(getattr(node, "padding", 0)), (2,)))
            C, H, W = r.shape
            if k != st or any(pad) or H % k[0] or W % k[1]:
                raise PruneError(f"score 'activation': pooling node '{p}' has overlapping or padded windows")
            r = r.reshape(C, H // k[0], k[0], W // k[1], k[1]).mean(axis=(2, 4))
        w = np.asarray(graph.nodes[name].weight)
        out[name] = r.reshape(r.shape[0], -1).mean(axis=1) if types[name] == "Conv2d" else r.reshape(-1)
        if out[name].shape != (w.shape[1],):
            raise PruneError(f"score 'activation': node '{name}' reads {out[name].shape} units, weight has {w.shape[1]}")
    return out
