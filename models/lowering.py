"""Lowering ``Graph -> Net``: fold the linear nodes between neuron layers into projections.

Every path ``src -> (Affine | Linear | Conv | SumPool | AvgPool | Flatten | Scale |
Delay)* -> dst`` from a neuron node (or the Input) to a neuron node (or an Output
fed by a linear node, which becomes an ``Identity`` readout population) becomes one
projection. The linear operators along the path are composed:

* conv after conv / pooling (either order) compose into one convolution with
  stride ``s1 s2``, kernel ``s1 (k2 - 1) + k1`` and padding ``p1 + s1 p2`` per
  dimension, when that is exact: the inner operator evaluated on positions the
  outer one treats as zero padding must see only input padding (checked per
  dimension; dilation 1 only);
* Flatten is a reshape and is free (C-order);
* a fully connected layer after a conv/pool keeps its dense W and puts the
  conv/pool in front as a sparse ``pre_map``; two dense layers multiply;
* anything else (Scale, identity neuron-to-neuron edges, non-composable chains)
  becomes an explicit CSR matrix, refused above ``max_nnz`` entries.

Biases are pushed through the rest of the path exactly (``b <- op(b) + b_op``).
A bias arrives after the delays that follow the node that adds it: biases that
arrive at step 0 become the target population's constant input; later ones are
``(start_step, vector)`` terms on the projection.
A path that crosses a recurrent (back) edge gets one extra step of delay; Delay
nodes add ``round(delay / dt)`` steps.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import neurons
from .errors import GraphError, ParameterError, ShapeError
from .graph import LINEAR_TYPES, NEURON_TYPES, Graph, conv_geometry, node_type
from .net import DEFAULT_MAX_NNZ, ConvProjection, DenseProjection, Net, Population, SparseProjection
from .ops import ConvGeometry, conv2d, pool_kernel

#: the float parameters each neuron model keeps on its population (:mod:`models.neurons`)
NEURON_PARAMS = {m.name: m.float_params for m in neurons.MODELS if m.nir}


class _Lin:
    """The composed linear operator of a partial path (one of three storage kinds)."""

    def __init__(self, shape):
        self.kind = "identity"
        self.in_shape = tuple(shape)
        self.out_shape = tuple(shape)
        self.conv = None  # (weight, geom)
        self.dense = None  # (W, pre_map or None)
        self.csr = None  # (n_out, n_in) scipy matrix

    # -- conversion to an explicit matrix (out x in) ---------------------------------
    def as_sparse(self, max_nnz: int, where: str) -> sp.csr_matrix:
        n_in = int(np.prod(self.in_shape))
        if self.kind == "identity":
            return sp.identity(n_in, format="csr", dtype=np.float64)
        if self.kind == "sparse":
            return self.csr
        if self.kind == "conv":
            p = ConvProjection("tmp", "", "", *self.conv)
            if p.nnz > max_nnz:
                raise ShapeError(f"{where}: cannot compose this chain without expanding a conv of {p.nnz:,} synapses")
            return p.weights_for_posts(np.arange(p.n_post)).T.tocsr()
        W, pm = self.dense
        if W.size > max_nnz:
            raise ShapeError(f"{where}: dense block of {W.size:,} weights too large to expand")
        m = sp.csr_matrix(W.astype(np.float64))
        return m if pm is None else (m @ pm).tocsr()


def _compose_conv(inner: tuple, outer_w: np.ndarray, outer_g: ConvGeometry):
    """outer ∘ inner as one conv, or None when not exact / not supported."""
    w1, g1 = inner
    w2, g2 = outer_w, outer_g
    if g1.dilation != (1, 1) or g2.dilation != (1, 1):
        return None
    n1 = g1.out_hw
    for ax in range(2):
        k1, s1, p1, n0 = g1.kernel[ax], g1.stride[ax], g1.padding[ax], g1.in_hw[ax]
        k2, s2, p2, n2 = g2.kernel[ax], g2.stride[ax], g2.padding[ax], g2.out_hw[ax]
        if p2 > 0 and not k1 <= s1 + p1:  # reads intermediate position -1
            return None
        if (n2 - 1) * s2 - p2 + k2 - 1 >= n1[ax] and not s1 * n1[ax] - p1 >= n0:
            return None
    dw1 = g1.groups == g1.in_channels == g1.out_channels and w1.shape[1] == 1
    dw2 = g2.groups == g2.in_channels == g2.out_channels and w2.shape[1] == 1
    s1h, s1w = g1.stride
    K = (s1h * (g2.kernel[0] - 1) + g1.kernel[0], s1w * (g2.kernel[1] - 1) + g1.kernel[1])
    if g1.groups == 1 and g2.groups == 1:
        w = np.zeros((g2.out_channels, g1.in_channels) + K)
        for a2 in range(g2.kernel[0]):
            for b2 in range(g2.kernel[1]):
                w[:, :, s1h * a2:s1h * a2 + g1.kernel[0], s1w * b2:s1w * b2 + g1.kernel[1]] += np.einsum(
                    "om,mcab->ocab", w2[:, :, a2, b2].astype(np.float64), w1.astype(np.float64))
        groups = 1
    elif dw1:  # pooling (depthwise) first: w[o, c] = w2[o, c] * up(w1[c])
        w = np.zeros((g2.out_channels, w2.shape[1]) + K)
        cin_g = w2.shape[1]
        for a2 in range(g2.kernel[0]):
            for b2 in range(g2.kernel[1]):
                for gi in range(g2.groups):
                    cs = slice(gi * cin_g, (gi + 1) * cin_g)
                    os_ = slice(gi * (g2.out_channels // g2.groups), (gi + 1) * (g2.out_channels // g2.groups))
                    w[os_, :, s1h * a2:s1h * a2 + g1.kernel[0], s1w * b2:s1w * b2 + g1.kernel[1]] += (
                        w2[os_, :, a2, b2][:, :, None, None] * w1[cs, 0][None].astype(np.float64))
        groups = g2.groups
    elif dw2:  # pooling (depthwise) after: w[o, c] = w2[o] * up(w1[o, c])
        w = np.zeros((g1.out_channels, w1.shape[1]) + K)
        for a2 in range(g2.kernel[0]):
            for b2 in range(g2.kernel[1]):
                w[:, :, s1h * a2:s1h * a2 + g1.kernel[0], s1w * b2:s1w * b2 + g1.kernel[1]] += (
                    w2[:, 0, a2, b2][:, None, None, None] * w1.astype(np.float64))
        groups = g1.groups
    else:
        return None
    # keep the storage dtype of the real kernels when the composed one is exact in it
    # (e.g. float32 kernels behind a non-overlapping sum/avg pool)
    dt = np.result_type(*[a.dtype for a in (w1, w2) if a.dtype != np.float64] or [np.float64])
    if dt != np.float64 and np.array_equal(w.astype(dt).astype(np.float64), w):
        w = w.astype(dt)
    geom = ConvGeometry(g1.in_channels, g2.out_channels, g1.in_hw, K,
                        (g1.stride[0] * g2.stride[0], g1.stride[1] * g2.stride[1]),
                        (g1.padding[0] + s1h * g2.padding[0], g1.padding[1] + s1w * g2.padding[1]),
                        (1, 1), groups)
    if geom.out_hw != g2.out_hw:
        return None
    return w, geom


def _apply_op(lin: _Lin, graph: Graph, name: str, max_nnz: int) -> None:
    node = graph.nodes[name]
    t = node_type(node)
    s_in, s_out = graph.shapes[name]
    where = graph._where(name)
    if t == "Flatten":
        lin.out_shape = s_out
        return
    if t in ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d"):
        in3 = s_in if t != "Conv1d" else (s_in[0], 1, s_in[1])
        geom = conv_geometry(node, s_in, where)
        if t.startswith("Conv"):
            w = np.asarray(node.weight)
            if t == "Conv1d":
                w = w[:, :, None, :]
        else:
            w = pool_kernel(geom.in_channels, geom.kernel, t == "AvgPool2d")
        if lin.kind == "identity" and tuple(lin.out_shape) in (tuple(s_in), tuple(in3)):
            lin.kind, lin.conv = "conv", (w, geom)
        elif lin.kind == "conv" and int(np.prod(lin.conv[1].out_shape)) == int(np.prod(s_in)):
            comp = _compose_conv(lin.conv, w, geom)
            if comp is not None:
                lin.conv = comp
            else:
                _to_sparse_then(lin, ConvProjection("tmp", "", "", w, geom), max_nnz, where)
        else:
            _to_sparse_then(lin, ConvProjection("tmp", "", "", w, geom), max_nnz, where)
        lin.out_shape = s_out
        return
    if t in ("Affine", "Linear"):
        W = np.asarray(node.weight)
        if lin.kind == "identity":
            lin.kind, lin.dense = "dense", (W, None)
        elif lin.kind == "conv":
            pm = lin.as_sparse(max_nnz, where)
            lin.kind, lin.dense, lin.conv = "dense", (W, pm), None
        elif lin.kind == "dense":
            W1, pm = lin.dense
            lin.dense = (W.astype(np.float64) @ W1.astype(np.float64), pm)
        else:
            lin.kind, lin.dense, lin.csr = "dense", (W, lin.csr), None
        lin.out_shape = s_out
        return
    if t == "Scale":
        scale = np.broadcast_to(np.asarray(node.scale, dtype=np.float64), s_in).ravel()
        _to_sparse_then(lin, None, max_nnz, where, left=sp.diags(scale, format="csr"))
        lin.out_shape = s_out
        return
    raise GraphError(f"{where}: node type {t} cannot sit inside a projection")


def _to_sparse_then(lin: _Lin, proj, max_nnz, where, left=None):
    cur = lin.as_sparse(max_nnz, where)
    if left is None:
        if proj.nnz > max_nnz:
            raise ShapeError(f"{where}: chain needs an explicit matrix of {proj.nnz:,} synapses (max_nnz={max_nnz:,})")
        left = proj.weights_for_posts(np.arange(proj.n_post)).T.tocsr()
    lin.kind, lin.csr, lin.conv, lin.dense = "sparse", (left @ cur).tocsr(), None, None


def compact_param(value, n: int) -> np.ndarray:
    """A flat float64 (n,) parameter; uniform values become a zero-copy broadcast view."""
    a = np.asarray(value)
    if a.size == 1 or (a.size and a.min() == a.max()):
        return np.broadcast_to(np.float64(a.flat[0]), (n,))
    return np.ascontiguousarray(a, dtype=np.float64).reshape(n)


def _node_bias(graph: Graph, name: str) -> np.ndarray | None:
    node = graph.nodes[name]
    t = node_type(node)
    if t in ("Affine", "Conv1d", "Conv2d"):
        if not np.any(node.bias):
            return None  # all-zero bias: no constant input at all
        b = np.asarray(node.bias, dtype=np.float64)
        s_out = graph.shapes[name][1]
        if t == "Affine":
            return b.reshape(s_out)
        return np.broadcast_to(b.reshape((-1,) + (1,) * (len(s_out) - 1)), s_out).copy()
    return None


def _push_bias(b: np.ndarray, graph: Graph, name: str) -> np.ndarray:
    """Apply node ``name``'s linear map (without its bias) to the bias tensor b."""
    node = graph.nodes[name]
    t = node_type(node)
    s_in, s_out = graph.shapes[name]
    if t == "Flatten" or t == "Delay":
        return b.reshape(s_out)
    if t in ("Affine", "Linear"):
        return (np.asarray(node.weight, dtype=np.float64) @ b.reshape(-1)).reshape(s_out)
    if t == "Scale":
        return b * np.asarray(node.scale, dtype=np.float64)
    geom = conv_geometry(node, s_in, graph._where(name))
    if t.startswith("Conv"):
        w = np.asarray(node.weight, dtype=np.float64)
        if t == "Conv1d":
            w = w[:, :, None, :]
    else:
        w = pool_kernel(geom.in_channels, geom.kernel, t == "AvgPool2d")
    return conv2d(b.reshape((1,) + geom.in_shape), w, geom).reshape(s_out)


def _paths(graph: Graph, dst: str):
    """All (src, [linear/delay nodes from src to dst]) ending at ``dst``."""
    out = []

    def walk(node: str, chain: list, seen: frozenset):
        for p in graph.preds[node]:
            t = node_type(graph.nodes[p])
            if t in NEURON_TYPES or t == "Input":
                out.append((p, chain))
            elif t in LINEAR_TYPES or t == "Delay":
                if p in seen:
                    raise GraphError(f"{graph._where(p)}: cycle made only of linear nodes (no neuron in the loop)")
                walk(p, [p] + chain, seen | {p})
            else:
                raise GraphError(f"{graph._where(p)}: {t} cannot feed a neuron")

    walk(dst, [], frozenset())
    return out


def _delay_steps(graph: Graph, name: str) -> int:
    d = np.asarray(graph.nodes[name].delay, dtype=np.float64)
    if np.unique(d).size != 1:
        raise ParameterError(f"{graph._where(name)}: per-neuron delays are not supported by lowering")
    steps = float(d.ravel()[0]) / graph.dt
    if abs(steps - round(steps)) > 1e-9:
        raise ParameterError(f"{graph._where(name)}: delay {d.ravel()[0]} is not a multiple of dt={graph.dt}")
    return int(round(steps))


def lower(graph: Graph, *, input_spiking: bool | None = None, max_nnz: int = DEFAULT_MAX_NNZ) -> Net:
    """Lower a :class:`Graph` to a :class:`Net` (see the module docstring).

    ``input_spiking`` flags the input projections as AC (spikes / event counts)
    or MAC (real values). Default: ``False`` when the graph metadata says
    ``encoding: direct``, else ``True``.
    """
    if input_spiking is None:
        input_spiking = str(graph.metadata.get("encoding", "")) != "direct"
    pops = [Population(graph.input_name, "input", graph.input_shape)]
    sinks = []
    for name in graph.order:
        t = node_type(graph.nodes[name])
        if t in NEURON_TYPES:
            sinks.append(name)
            n = int(np.prod(graph.shapes[name][1]))
            model, fparams = graph.neuron_model(name)
            params = {f: compact_param(v, n) for f, v in fparams.items()}
            pops.append(Population(name, model, graph.shapes[name][1], params))
        elif t == "Output":
            (pred,) = graph.preds[name][:1] or [None]
            if len(graph.preds[name]) != 1 or node_type(graph.nodes[pred]) not in NEURON_TYPES + ("Input",):
                sinks.append(name)
                pops.append(Population(name, "Identity", graph.shapes[name][0]))
    pop_of = {p.name: p for p in pops}
    output = graph.output_name
    if output not in pop_of:
        output = graph.preds[output][0]
    projections = []
    for dst in sinks:
        dpop = pop_of[dst]
        seen_pairs: dict = {}
        for src, chain in _paths(graph, dst):
            k = seen_pairs[src] = seen_pairs.get(src, -1) + 1
            lin = _Lin(graph.shapes[src][1])
            # bias terms [tensor, steps of delay still ahead of it]; a term arrives after
            # the Delay nodes and back edges that come after the node that added it.
            terms: list = []
            hops = [src] + chain + [dst]
            delay = 0
            for i, op in enumerate(chain + [None]):
                if (hops[i], hops[i + 1]) in graph.back_edges:
                    delay += 1
                    for term in terms:
                        term[1] += 1
                if op is None:
                    break
                if node_type(graph.nodes[op]) == "Delay":
                    d = _delay_steps(graph, op)
                    delay += d
                    for term in terms:
                        term[1] += d
                    continue
                for term in terms:
                    term[0] = _push_bias(term[0], graph, op)
                nb = _node_bias(graph, op)
                _apply_op(lin, graph, op, max_nnz)
                if nb is not None:
                    terms.append([nb, 0])
            name = f"{src}->{dst}" + (f"#{k}" if k else "")
            mode = "AC" if (pop_of[src].spiking if src != graph.input_name else input_spiking) else "MAC"
            kw = dict(delay_steps=delay, mode=mode)
            if lin.kind == "conv":
                proj = ConvProjection(name, src, dst, lin.conv[0], lin.conv[1], **kw)
            elif lin.kind == "dense":
                W, pm = lin.dense
                proj = DenseProjection(name, src, dst, W, pm, **kw)
            else:
                proj = SparseProjection(name, src, dst, lin.as_sparse(max_nnz, graph._where(dst)).T.tocsr(), **kw)
            if proj.n_post != dpop.size or proj.n_pre != pop_of[src].size:
                raise ShapeError(f"{graph._where(dst)}: projection from '{src}' is {proj.shape}, "
                                 f"populations are {pop_of[src].size} and {dpop.size}")
            arrivals: dict = {}
            for vec, d in terms:
                arrivals[d] = vec.reshape(-1) + arrivals.get(d, 0.0)
            for d, vec in sorted(arrivals.items()):
                if d == 0:
                    dpop.bias = vec if dpop.bias is None else dpop.bias + vec
                else:
                    proj.bias_terms.append((d, vec))
            projections.append(proj)
    meta = dict(graph.metadata)
    meta["graph_layers"] = graph_layers(graph)
    return Net(pops, projections, output, dt=graph.dt, input_spiking=bool(input_spiking), metadata=meta)


# ------------------------------------------------------------------ the graph's layers, as written

#: node types that are a layer of their own in the SNN papers' and NeuroBench's counts
WEIGHT_LAYER_TYPES = ("Conv1d", "Conv2d", "Affine", "Linear")
#: weightless nodes a layer's input may pass through on its way from a neuron (or the input)
_PASS_TYPES = ("SumPool2d", "AvgPool2d", "Flatten", "Delay")


def _geom_dict(g: ConvGeometry) -> dict:
    return {"in_shape": [int(v) for v in g.in_shape], "out_shape": [int(v) for v in g.out_shape],
            "kernel": [int(v) for v in g.kernel], "stride": [int(v) for v in g.stride],
            "padding": [int(v) for v in g.padding], "dilation": [int(v) for v in g.dilation],
            "groups": int(g.groups)}


def geometry_of(d: dict) -> ConvGeometry:
    """The :class:`~models.ops.ConvGeometry` of a ``graph_layers`` entry's ``geom`` (or a pre-op's)."""
    return ConvGeometry(int(d["in_shape"][0]), int(d["out_shape"][0]), tuple(d["in_shape"][1:]),
                        tuple(d["kernel"]), tuple(d["stride"]), tuple(d["padding"]), tuple(d["dilation"]),
                        int(d["groups"]))


def graph_layers(graph: Graph) -> list[dict]:
    """The weight layers of ``graph`` as written (before lowering composes anything).

    One JSON-able dict per Conv1d / Conv2d / Affine / Linear node, in evaluation order:

    * ``name``, ``type``, ``kind`` (``conv`` / ``fc``), ``in_shape``, ``out_shape``,
    * ``flops`` -- the SNN papers' count: FLOPs(conv) = k_h k_w H_out W_out (C_in / groups)
      C_out, FLOPs(fc) = in x out;
    * ``dense`` -- NeuroBench's "Dense": the same layer run on all-ones inputs with all-ones
      weights, summed over its outputs; conv taps on zero padding add nothing, so
      dense <= flops;
    * ``params``, ``nonzero`` -- weights and nonzero weights;
    * ``nz_fanout`` -- what an effective count needs of the weights: fc, per input the
      nonzero weights it drives (``(in,)``); conv, per input channel and tap the output
      channels with a nonzero weight there (``(C_in, k_h, k_w)``);
    * ``geom`` (conv) -- the layer's geometry;
    * ``src`` -- the neuron node or graph input whose output reaches this layer, ``pre`` the
      weightless nodes on the way (pooling with its geometry, Flatten, Delay), or ``src`` =
      the preceding weight layer when two weight layers follow each other (``src_kind``
      ``linear``); ``dst`` -- the neuron node (population) its output feeds.

    Stored by :func:`lower` in ``Net.metadata["graph_layers"]`` so that a mapping, saved and
    loaded, still knows the graph's layer structure (energy and NeuroBench counts on the
    network as written).
    """
    out = []
    for name in graph.order:
        node = graph.nodes[name]
        t = node_type(node)
        if t not in WEIGHT_LAYER_TYPES:
            continue
        s_in, s_out = graph.shapes[name]
        w = np.asarray(node.weight)
        nz = w != 0
        d = {"name": name, "type": t, "kind": "fc" if t in ("Affine", "Linear") else "conv",
             "in_shape": [int(v) for v in s_in], "out_shape": [int(v) for v in s_out],
             "params": int(w.size), "nonzero": int(nz.sum())}
        if d["kind"] == "fc":
            d["flops"] = d["dense"] = int(w.shape[0] * w.shape[1])
            d["nz_fanout"] = [int(v) for v in nz.sum(axis=0)]
        else:
            geom = conv_geometry(node, s_in, graph._where(name))
            if t == "Conv1d":
                w, nz = w[:, :, None, :], nz[:, :, None, :]
            kh, kw = geom.kernel
            oh, ow = geom.out_hw
            cin_g, cout_g = geom.in_channels // geom.groups, geom.out_channels // geom.groups
            d["flops"] = int(kh * kw * oh * ow * cin_g * geom.out_channels)
            ones = ConvProjection("tmp", "", "", np.ones((geom.out_channels, cin_g, kh, kw)), geom)
            d["dense"] = int(ones.fan_in().sum())
            fan = np.zeros((geom.in_channels, kh, kw), dtype=np.int64)
            for gi in range(geom.groups):
                fan[gi * cin_g:(gi + 1) * cin_g] = nz[gi * cout_g:(gi + 1) * cout_g].sum(axis=0)
            d["nz_fanout"] = fan.tolist()
            d["geom"] = _geom_dict(geom)
        pre, p = [], name
        while True:
            (q,) = graph.preds[p][:1] or [None]
            if q is None or len(graph.preds[p]) != 1:
                d["src"], d["src_kind"] = None, "several"
                break
            tq = node_type(graph.nodes[q])
            if tq in _PASS_TYPES:
                op = {"name": q, "type": tq, "in_shape": [int(v) for v in graph.shapes[q][0]],
                      "out_shape": [int(v) for v in graph.shapes[q][1]]}
                if tq in ("SumPool2d", "AvgPool2d"):
                    op["geom"] = _geom_dict(conv_geometry(graph.nodes[q], graph.shapes[q][0], graph._where(q)))
                pre.insert(0, op)
                p = q
                continue
            d["src"] = q
            d["src_kind"] = ("input" if tq == "Input" else "neuron" if tq in NEURON_TYPES
                             else "linear" if tq in WEIGHT_LAYER_TYPES else tq)
            break
        d["pre"] = pre
        dst, p = None, name
        for _ in range(len(graph.nodes)):
            nxt = [s for s in graph.succs[p] if (p, s) not in graph.back_edges]
            if len(nxt) != 1:
                break
            p = nxt[0]
            tp = node_type(graph.nodes[p])
            if tp in NEURON_TYPES or tp == "Output":
                dst = p
                break
        d["dst"] = dst
        out.append(d)
    return out
