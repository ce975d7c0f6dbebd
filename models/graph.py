"""The network IR: a validated graph of NIR primitives, with shape inference.

A :class:`Graph` holds NIR node objects (``nir.Affine``, ``nir.Conv2d``, ``nir.IF``,
...) keyed by name, the edges between them (cycles allowed: a recurrent edge feeds
the previous step's value), and the time step ``dt``. NIR's dataclasses are the
primitives; this module adds what NIR leaves to the user: typed validation that
survives ``python -O``, shape inference, an evaluation order, and a summary.

Supported primitives: Input, Output, Affine, Linear, Conv1d, Conv2d, SumPool2d,
AvgPool2d, Flatten, Scale, Delay and the neuron models of :mod:`models.neurons`
(IF, LIF, LI, CubaLIF, CubaLI, I (Integrator), Threshold).
Their float semantics are defined in :mod:`models.reference`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import networkx as nx
import nir
import numpy as np

from . import neurons
from .errors import GraphError, ParameterError, ShapeError, UnsupportedNodeError
from .ops import ConvGeometry, conv_fan_in_max, conv_fan_out_max, conv_synapses

#: NIR node types that are neuron models (the table :mod:`models.neurons`), and those that spike.
NEURON_TYPES = neurons.NIR_NEURON_TYPES
SPIKING_TYPES = tuple(t for t in NEURON_TYPES if neurons.model(t).spikes)
#: Stateless linear nodes that lowering folds into projections.
LINEAR_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Scale")
SUPPORTED_TYPES = ("Input", "Output", "Delay") + LINEAR_TYPES + NEURON_TYPES

# Parameter fields of every supported node type (arrays that must be finite).
PARAM_FIELDS = {
    "Input": (), "Output": (), "Flatten": (),
    "Affine": ("weight", "bias"), "Linear": ("weight",),
    "Conv1d": ("weight", "bias"), "Conv2d": ("weight", "bias"),
    "SumPool2d": (), "AvgPool2d": (),
    "Scale": ("scale",), "Delay": ("delay",),
    **{t: neurons.model(t).float_params for t in NEURON_TYPES},
}


def ann_layer_names(graph) -> tuple:
    """The nodes ``metadata["ann_layers"]`` (comma-separated names) runs as ANN layers;
    :class:`GraphError` unless each is an IF node of the graph with ``r dt = 1``."""
    text = (graph.metadata or {}).get("ann_layers", "") or ""
    if not isinstance(text, str):
        raise GraphError(f"{graph._where()}: metadata ann_layers must be a comma-separated string of node "
                         f"names, got {type(text).__name__}")
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    for n in names:
        if n not in graph.nodes or node_type(graph.nodes[n]) != "IF":
            raise GraphError(f"{graph._where(n)}: listed in metadata ann_layers but "
                             + ("not in the graph" if n not in graph.nodes else
                                f"a {node_type(graph.nodes[n])} node (only IF nodes run as ANN layers)"))
        r = np.asarray(graph.nodes[n].r, dtype=np.float64) * graph.dt
        if not np.allclose(r, 1.0, rtol=1e-6):
            raise GraphError(f"{graph._where(n)}: an ANN layer reads its input current unscaled; r * dt must be 1, "
                             f"got {float(r.ravel()[0]):g}")
    return names


def node_type(node) -> str:
    """The NIR type name of a node object (``"IF"``, ``"Conv2d"``, ...)."""
    return type(node).__name__


def _pair(v, name: str, where: str) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(v)).astype(np.int64).ravel()
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2:
        raise ShapeError(f"{where}: field '{name}' must be an int or a pair, got {v!r}")
    return int(a[0]), int(a[1])


def conv_geometry(node, in_shape: tuple[int, ...], where: str) -> ConvGeometry:
    """The :class:`ConvGeometry` of a Conv1d/Conv2d/SumPool2d/AvgPool2d given its input shape."""
    t = node_type(node)
    if t in ("SumPool2d", "AvgPool2d"):
        if len(in_shape) != 3:
            raise ShapeError(f"{where}: {t} expects input (C, H, W), got {tuple(in_shape)}")
        k = _pair(node.kernel_size, "kernel_size", where)
        s = _pair(node.stride, "stride", where)
        p = _pair(node.padding, "padding", where)
        if min(k) < 1 or min(s) < 1 or min(p) < 0:
            raise ParameterError(f"{where}: kernel_size/stride must be >= 1 and padding >= 0")
        C = in_shape[0]
        return ConvGeometry(C, C, tuple(in_shape[1:]), k, s, p, (1, 1), C)
    w = np.asarray(node.weight)
    one_d = t == "Conv1d"
    if w.ndim != (3 if one_d else 4):
        raise ShapeError(f"{where}: {t} weight must have {3 if one_d else 4} dims, got shape {w.shape}")
    if one_d:
        if len(in_shape) != 2:
            raise ShapeError(f"{where}: Conv1d expects input (C, L), got {tuple(in_shape)}")
        ints = lambda v, nm: (1, int(np.atleast_1d(np.asarray(v)).ravel()[0]))  # noqa: E731
        kern = (1, w.shape[2])
        hw = (1, in_shape[1])
        stride, dil = ints(node.stride, "stride"), ints(node.dilation, "dilation")
        pad = node.padding
    else:
        if len(in_shape) != 3:
            raise ShapeError(f"{where}: Conv2d expects input (C, H, W), got {tuple(in_shape)}")
        kern = (w.shape[2], w.shape[3])
        hw = tuple(in_shape[1:])
        stride, dil = _pair(node.stride, "stride", where), _pair(node.dilation, "dilation", where)
        pad = node.padding
    if isinstance(pad, str):
        if pad == "valid":
            pad = (0, 0)
        elif pad == "same":
            if stride != (1, 1):
                raise ParameterError(f"{where}: padding='same' needs stride 1")
            pad = tuple(d * (k - 1) // 2 for d, k in zip(dil, kern))
        else:
            raise ParameterError(f"{where}: unknown padding {pad!r}")
    elif one_d:
        pad = (0, int(np.atleast_1d(np.asarray(pad)).ravel()[0]))
    else:
        pad = _pair(pad, "padding", where)
    groups = int(np.asarray(node.groups).ravel()[0]) if np.size(node.groups) else 1
    if min(stride) < 1 or min(dil) < 1 or min(pad) < 0 or groups < 1:
        raise ParameterError(f"{where}: stride, dilation and groups must be >= 1, padding >= 0")
    cin = in_shape[0]
    if cin % groups or w.shape[0] % groups or w.shape[1] * groups != cin:
        raise ShapeError(
            f"{where}: weight shape {w.shape} with groups={groups} does not match "
            f"{cin} input channels"
        )
    return ConvGeometry(cin, w.shape[0], hw, kern, stride, pad, dil, groups)


@dataclass(eq=False)
class Graph:
    """A spiking network as NIR nodes and edges, validated at construction.

    Parameters
    ----------
    nodes : dict[str, nir.NIRNode]
        Node objects by name. Exactly one ``nir.Input`` is required.
    edges : list of (src, dst)
        Directed edges; a node with several predecessors sums them. Cycles are
        allowed; an edge that closes a cycle (a back edge of the depth-first search
        from the input, in insertion order) carries the value of the previous step.
    dt : float
        Time step of the discretisation (see :mod:`models.reference`).
    metadata : dict
        Free-form, saved with the graph (e.g. preferred ``reset``/``spikes``).

    Raises
    ------
    GraphError, ShapeError, ParameterError, UnsupportedNodeError
        naming the node and field at fault.
    """

    nodes: dict
    edges: list
    dt: float = 1.0
    metadata: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        self.edges = [(str(a), str(b)) for a, b in self.edges]
        self.nodes = {str(k): v for k, v in self.nodes.items()}
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ParameterError(f"{self._where()}: dt must be a positive number, got {self.dt}")
        self._validate_nodes()
        self._validate_edges()
        self.order, self.back_edges = self._evaluation_order()
        self.shapes = self._infer_shapes()
        self.ann_layers = ann_layer_names(self)
        # Record the inferred types on the nodes, so a written file type-checks in NIR.
        for name, (s_in, s_out) in self.shapes.items():
            node = self.nodes[name]
            node.input_type = {"input": np.array(s_in, dtype=np.int64)}
            node.output_type = {"output": np.array(s_out, dtype=np.int64)}

    def neuron_model(self, name: str) -> tuple[str, dict]:
        """(model name of :mod:`models.neurons`, float parameters) of neuron node ``name``.

        A node listed in ``metadata["ann_layers"]`` is an IF node run as an ANN layer of a
        hybrid network (Tianjic's paradigm): model ``ANN``, ``a = clip(I, 0, a_max)`` with
        ``a_max`` = the node's ``v_threshold`` (its spikes' ceiling: an IF neuron with
        subtractive reset fires at most once per threshold of input, so ``clip(I, 0, theta)``
        is the rate it would approach, times ``theta``); its ``r dt`` is 1 (checked when the
        graph is built)."""
        t = node_type(self.nodes[name])
        if name in self.ann_layers:
            return "ANN", {"a_max": self.param(name, "v_threshold").ravel()}
        return t, {f: self.param(name, f).ravel() for f in neurons.model(t).float_params}

    # ----- construction helpers -------------------------------------------------
    def _where(self, name: str | None = None) -> str:
        pre = f"{self.source}: " if self.source else ""
        return f"{pre}node '{name}'" if name is not None else (self.source or "graph")

    def _validate_nodes(self):
        inputs = [k for k, v in self.nodes.items() if node_type(v) == "Input"]
        if len(inputs) != 1:
            raise GraphError(f"{self._where()}: needs exactly one Input node, found {len(inputs)}")
        self.input_name = inputs[0]
        self.output_names = [k for k, v in self.nodes.items() if node_type(v) == "Output"]
        if not self.output_names:
            raise GraphError(f"{self._where()}: has no Output node")
        for name, node in self.nodes.items():
            t = node_type(node)
            if t not in SUPPORTED_TYPES:
                raise UnsupportedNodeError(
                    f"{self._where(name)}: unsupported node type '{t}' "
                    f"(supported: {', '.join(SUPPORTED_TYPES)})"
                )
            for f in PARAM_FIELDS[t]:
                val = getattr(node, f, None)
                if val is None:
                    raise ParameterError(f"{self._where(name)}: {t} is missing field '{f}'")
                arr = np.asarray(val)
                if not np.issubdtype(arr.dtype, np.number):
                    raise ParameterError(f"{self._where(name)}: field '{f}' is not numeric")
                if not np.all(np.isfinite(arr)):
                    bad = int(np.size(arr) - np.isfinite(arr).sum())
                    raise ParameterError(f"{self._where(name)}: field '{f}' has {bad} NaN or infinite values")
            nm = neurons.BY_NAME.get(t)
            if nm is not None and nm.state and nm.spikes and np.any(np.asarray(getattr(node, nm.threshold)) <= 0):
                raise ParameterError(f"{self._where(name)}: field '{nm.threshold}' must be > 0")
            taus = [f for f in (nm.float_params if nm else ()) if f.startswith("tau")]
            if any(np.any(np.asarray(getattr(node, f)) <= 0) for f in taus):
                names = "'/'".join(taus)
                raise ParameterError(f"{self._where(name)}: field{'s' if len(taus) > 1 else ''} '{names}' must be > 0")
            if t == "Delay" and np.any(np.asarray(node.delay) < 0):
                raise ParameterError(f"{self._where(name)}: field 'delay' must be >= 0")

    def _validate_edges(self):
        seen = set()
        for a, b in self.edges:
            for n in (a, b):
                if n not in self.nodes:
                    raise GraphError(f"{self._where()}: edge ({a!r} -> {b!r}) refers to missing node '{n}'")
            if (a, b) in seen:
                raise GraphError(f"{self._where()}: duplicate edge ({a!r} -> {b!r})")
            seen.add((a, b))
            if node_type(self.nodes[b]) == "Input":
                raise GraphError(f"{self._where(b)}: Input node cannot have incoming edge from '{a}'")
            if node_type(self.nodes[a]) == "Output":
                raise GraphError(f"{self._where(a)}: Output node cannot have outgoing edge to '{b}'")
        self.preds = {k: [] for k in self.nodes}
        self.succs = {k: [] for k in self.nodes}
        for a, b in self.edges:
            self.preds[b].append(a)
            self.succs[a].append(b)
        for name in self.nodes:
            if name != self.input_name and not self.preds[name]:
                raise GraphError(f"{self._where(name)}: has no incoming edge (unreachable from the input)")

    def _evaluation_order(self):
        """Back edges by DFS from the input; order = topological sort without them."""
        back, color = set(), {k: 0 for k in self.nodes}
        stack = [(self.input_name, iter(self.succs[self.input_name]))]
        color[self.input_name] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
            elif color[nxt] == 1:
                back.add((node, nxt))
            elif color[nxt] == 0:
                color[nxt] = 1
                stack.append((nxt, iter(self.succs[nxt])))
        unreached = [k for k, c in color.items() if c == 0]
        if unreached:
            raise GraphError(f"{self._where(unreached[0])}: not reachable from input '{self.input_name}'")
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(e for e in self.edges if e not in back)
        order = list(nx.lexicographical_topological_sort(g, key=list(self.nodes).index))
        return order, back

    # ----- shapes -----------------------------------------------------------------
    def _infer_shapes(self) -> dict:
        shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        inp = self.nodes[self.input_name]
        ishape = tuple(int(v) for v in np.asarray(inp.input_type["input"]).ravel())
        if not ishape or min(ishape) < 1:
            raise ShapeError(f"{self._where(self.input_name)}: invalid input shape {ishape}")
        pending = list(self.order)
        # Nodes reached only through back edges take their shape from forward preds;
        # a back edge's shape is checked after the forward pass.
        for name in pending:
            node = self.nodes[name]
            if name == self.input_name:
                shapes[name] = (ishape, ishape)
                continue
            fwd = [p for p in self.preds[name] if (p, name) not in self.back_edges]
            in_shapes = {shapes[p][1] for p in fwd}
            if len(in_shapes) != 1:
                raise ShapeError(
                    f"{self._where(name)}: predecessors {fwd} have different output shapes {sorted(in_shapes)}"
                )
            in_shape = in_shapes.pop()
            shapes[name] = (in_shape, self._out_shape(name, node, in_shape))
        for a, b in self.back_edges:
            if shapes[a][1] != shapes[b][0]:
                raise ShapeError(
                    f"{self._where(b)}: recurrent input from '{a}' has shape {shapes[a][1]}, "
                    f"expected {shapes[b][0]}"
                )
        return shapes

    def _out_shape(self, name: str, node, s: tuple[int, ...]) -> tuple[int, ...]:
        t = node_type(node)
        where = self._where(name)
        n_in = int(np.prod(s))
        if t in ("Affine", "Linear"):
            w = np.asarray(node.weight)
            if w.ndim != 2:
                raise ShapeError(f"{where}: {t} weight must be 2-D (out, in), got shape {w.shape}")
            if s != (w.shape[1],):
                raise ShapeError(f"{where}: weight shape {w.shape} expects input ({w.shape[1]},), got {s}")
            if t == "Affine" and np.shape(node.bias) != (w.shape[0],):
                raise ShapeError(f"{where}: bias shape {np.shape(node.bias)} does not match weight rows {w.shape[0]}")
            return (w.shape[0],)
        if t in ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d"):
            g = conv_geometry(node, s, where)
            if min(g.out_hw) < 1:
                raise ShapeError(f"{where}: output size {g.out_hw} < 1 for input {s}")
            if t in ("Conv1d", "Conv2d"):
                b = np.asarray(node.bias)
                if b.size not in (1, g.out_channels) or (b.size == 1 and b.ndim and b.shape[0] != g.out_channels and g.out_channels != 1):
                    raise ShapeError(f"{where}: bias shape {b.shape} does not match {g.out_channels} output channels")
                return (g.out_channels, g.out_hw[1]) if t == "Conv1d" else g.out_shape
            return g.out_shape
        if t == "Flatten":
            nd = len(s)
            a = int(np.asarray(node.start_dim).ravel()[0]) if np.size(node.start_dim) else 0
            b = int(np.asarray(node.end_dim).ravel()[0]) if np.size(node.end_dim) else -1
            a, b = a % nd if a < 0 else a, b % nd if b < 0 else b
            if not 0 <= a <= b < nd:
                raise ShapeError(f"{where}: start_dim/end_dim ({a}, {b}) invalid for input {s}")
            return s[:a] + (int(np.prod(s[a:b + 1])),) + s[b + 1:]
        if t == "Scale":
            try:
                np.broadcast_shapes(np.shape(node.scale), s)
            except ValueError:
                raise ShapeError(f"{where}: scale shape {np.shape(node.scale)} does not broadcast to input {s}") from None
            return s
        if t == "Output":
            want = tuple(int(v) for v in np.asarray(node.output_type["output"]).ravel())
            if want and int(np.prod(want)) != n_in:
                raise ShapeError(f"{where}: declares shape {want}, receives {s}")
            return s
        # neurons, Threshold, Delay: parameters must broadcast to the input shape
        for f in PARAM_FIELDS[t]:
            ps = np.shape(getattr(node, f))
            if ps not in ((), (1,), s):
                raise ShapeError(f"{where}: field '{f}' has shape {ps}, expected {s}")
        return s

    # ----- queries -------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shapes[self.input_name][1]

    @property
    def output_name(self) -> str:
        return self.output_names[0]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[self.output_name][0]

    def neuron_nodes(self) -> list[str]:
        return [k for k in self.order if node_type(self.nodes[k]) in NEURON_TYPES]

    def param(self, name: str, field_name: str) -> np.ndarray:
        """A node parameter broadcast to the node's shape, as float64."""
        shape = self.shapes[name][1]
        return np.broadcast_to(np.asarray(getattr(self.nodes[name], field_name), dtype=np.float64), shape)

    def node_stats(self, name: str) -> dict:
        """Type, shapes, parameter count, neurons, synapses, fan-in/out of one node.

        Synapses count (pre, post) pairs joined by a nonzero weight (for a conv,
        every output position, border effects included); fan-in/out are the largest
        number of such pairs at one post/pre neuron. Pooling counts its window.
        """
        node = self.nodes[name]
        t = node_type(node)
        s_in, s_out = self.shapes[name]
        params = sum(int(np.size(getattr(node, f))) for f in PARAM_FIELDS[t])
        neurons = int(np.prod(s_out)) if t in NEURON_TYPES else 0
        syn = fan_in = fan_out = 0
        if t in ("Affine", "Linear"):
            nz = np.asarray(node.weight) != 0
            syn, fan_in, fan_out = int(nz.sum()), int(nz.sum(1).max(initial=0)), int(nz.sum(0).max(initial=0))
        elif t in ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d"):
            g = conv_geometry(node, s_in, self._where(name))
            w = np.asarray(node.weight) if t.startswith("Conv") else np.ones((g.out_channels, 1) + g.kernel)
            if t == "Conv1d":
                w = w[:, :, None, :]
            syn, fan_in, fan_out = conv_synapses(w, g), conv_fan_in_max(w, g), conv_fan_out_max(w, g)
        elif t == "Scale":
            syn = int(np.count_nonzero(np.broadcast_to(node.scale, s_in)))
            fan_in = fan_out = 1
        return dict(name=name, type=t, in_shape=s_in, out_shape=s_out, params=params,
                    neurons=neurons, synapses=syn, fan_in=fan_in, fan_out=fan_out)

    def summary(self) -> str:
        """A text table, one row per node in evaluation order, with totals."""
        rows = [self.node_stats(n) for n in self.order]
        fmt = lambda s: "x".join(map(str, s))  # noqa: E731
        head = ("node", "type", "input", "output", "params", "neurons", "synapses", "fan-in", "fan-out")
        table = [head] + [
            (r["name"], r["type"], fmt(r["in_shape"]), fmt(r["out_shape"]), f"{r['params']:,}",
             f"{r['neurons']:,}" if r["neurons"] else "-", f"{r['synapses']:,}" if r["synapses"] else "-",
             str(r["fan_in"]) if r["fan_in"] else "-", str(r["fan_out"]) if r["fan_out"] else "-")
            for r in rows
        ]
        table.append(("total", "", "", "", f"{sum(r['params'] for r in rows):,}",
                      f"{sum(r['neurons'] for r in rows):,}", f"{sum(r['synapses'] for r in rows):,}", "", ""))
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        lines = []
        for k, row in enumerate(table):
            lines.append("  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0 or k == len(table) - 2:
                lines.append("  ".join("-" * w for w in widths))
        extra = f"dt = {self.dt:g}"
        if self.back_edges:
            extra += "; recurrent edges: " + ", ".join(f"{a}->{b}" for a, b in sorted(self.back_edges))
        return "\n".join(lines) + "\n" + extra

    def to_nir(self) -> nir.NIRGraph:
        """The graph as a ``nir.NIRGraph`` (dt and metadata in the graph metadata)."""
        meta = dict(self.metadata)
        meta["dt"] = float(self.dt)
        return nir.NIRGraph(nodes=dict(self.nodes), edges=list(self.edges), metadata=meta, type_check=False)

    @classmethod
    def sequential(cls, nodes: Iterable[tuple[str, object]], input_shape, dt: float = 1.0, metadata=None) -> "Graph":
        """A chain ``input -> nodes... -> output`` from (name, nir node) pairs."""
        nodes = list(nodes)
        shape = np.asarray(input_shape, dtype=np.int64)
        d = {"input": nir.Input(input_type={"input": shape})}
        d.update(nodes)
        d["output"] = nir.Output(output_type={"output": np.array([], dtype=np.int64)})
        names = list(d)
        return cls(d, list(zip(names[:-1], names[1:])), dt=dt, metadata=dict(metadata or {}))
