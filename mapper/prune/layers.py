r"""Which layers of a graph pruning can touch, and their crossbar structure on a chip.

:func:`analyse` walks the feed-forward chain and returns one :class:`Layer` per prunable
linear node: its columns, input units, blocks, chunks and crossbars per (block, chunk)
pair, read from the unpruned mapping's tiling. :class:`PruneError` lives here too.

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

"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.errors import SnnchipError
from models.graph import NEURON_TYPES, Graph, node_type

LINEAR_NODES = ("Conv2d", "Affine", "Linear")
PASS_NODES = ("AvgPool2d", "SumPool2d", "Flatten")


class PruneError(SnnchipError):
    """Bad pruning request (names the field, layer or limit)."""


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


def chain(graph: Graph) -> list[str]:
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
    from ..mapping import map_model
    from ..tiling import conv_block_options

    order = chain(graph)
    if getattr(chip.core, "conv_mapping", "unrolled") == "weight_stationary":
        raise PruneError(f"chip {chip.name} maps weight-stationary (core.conv_mapping); prune it with "
                         "mapper.prune.stationary.prune_stationary, which counts the paper's packing")
    if mapping is None:
        mapping = map_model(graph, chip)
    A = int(chip.core.axons)
    N = int(chip.core.neurons)
    net = mapping.net
    types = {n: node_type(graph.nodes[n]) for n in order}
    layers: list[Layer] = []
    prev_linear = None
    for i, name in enumerate(order):
        if types[name] not in LINEAR_NODES:
            continue
        producer = prev_linear
        prev_linear = name
        if i + 1 >= len(order) or types[order[i + 1]] not in NEURON_TYPES:
            continue
        pop = order[i + 1]
        # what the population feeds: pools/flatten, then a linear node or the output
        j, spatial, consumer = i + 2, None, None
        while j < len(order) and types[order[j]] in PASS_NODES:
            j += 1
        if j < len(order) and types[order[j]] in LINEAR_NODES:
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
