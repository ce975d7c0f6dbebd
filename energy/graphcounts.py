"""Counts on the network as written: the graph's own conv / fc layers, not the lowered net.

Lowering composes pooling into the next convolution and puts a conv/pool in front of a
dense layer, so the lowered net's FLOPs are not the papers' (``mnist_cnn``: 2,635,520 per
step lowered, 792,320 as written). :func:`models.lowering.graph_layers` keeps the graph's
layer structure in ``Net.metadata["graph_layers"]``; this module counts on it: the dense
baseline, NeuroBench's metrics and both synaptic-op conventions from activations.
"""

from __future__ import annotations

import numpy as np

from models.lowering import geometry_of
from models.ops import ConvGeometry, conv2d, pool_kernel

from .errors import EnergyError

#: what a report says when a mapping predates the graph's layer summary
NO_GRAPH_LAYERS = ("this mapping was made before snnchip stored the graph's layers (Net.metadata['graph_layers']); "
                   "counts on the lowered net are shown instead -- map the model again to count the network "
                   "as written")


def layers_of(net) -> list | None:
    """The graph's weight layers stored at lowering time, or None for an older mapping."""
    layers = (getattr(net, "metadata", None) or {}).get("graph_layers")
    return list(layers) if layers else None


def dense_flops(layers: list) -> int:
    """The dense-ANN baseline per step: sum over the graph's layers of FLOPs (see
    :func:`models.lowering.graph_layers`)."""
    return int(sum(int(d["flops"]) for d in layers))


def layer_input(d: dict, activations: dict) -> np.ndarray:
    """The input the graph's layer ``d`` multiplies, (T, B, n_in), from its source's outputs.

    ``activations[src]`` = (T, B, n) outputs of the layer's source (a neuron node or the graph
    input); the weightless nodes in between (sum / average pooling, Flatten) are applied.
    A Delay in between is refused (its steps are not part of the summary).
    """
    src = d.get("src")
    if src is None or d.get("src_kind") not in ("input", "neuron"):
        raise EnergyError(f"layer '{d['name']}': its input is not the output of one neuron layer or the input "
                          f"(source kind {d.get('src_kind')}); no activation-based count")
    if src not in activations:
        raise EnergyError(f"layer '{d['name']}': activations of its source '{src}' missing")
    x = np.asarray(activations[src], dtype=np.float64)
    T, B = x.shape[:2]
    x = x.reshape(T * B, -1)
    for op in d["pre"]:
        if op["type"] == "Delay":
            raise EnergyError(f"layer '{d['name']}': a Delay ('{op['name']}') before it; no activation-based count")
        if op["type"] in ("SumPool2d", "AvgPool2d"):
            g = geometry_of(op["geom"])
            w = pool_kernel(g.in_channels, g.kernel, op["type"] == "AvgPool2d")
            x = conv2d(x.reshape((-1,) + g.in_shape), w, g).reshape(T * B, -1)
    return x.reshape(T, B, -1)


def _fanout_ops(d: dict, x: np.ndarray) -> float:
    """sum over inputs i and the outputs o they reach of [w_oi != 0] x_i: the layer's
    nonzero-weight pairs weighted by the input values ``x`` (B', n_in), padding excluded."""
    if d["kind"] == "fc":
        return float((x @ np.asarray(d["nz_fanout"], dtype=np.float64)).sum())
    g = geometry_of(d["geom"])
    fan = np.asarray(d["nz_fanout"], dtype=np.float64)  # (C_in, kh, kw)
    dw = ConvGeometry(g.in_channels, g.in_channels, g.in_hw, g.kernel, g.stride, g.padding, g.dilation,
                      g.in_channels)
    return float(conv2d(x.reshape((-1,) + g.in_shape), fan[:, None], dw).sum())


def layer_counts(d: dict, x: np.ndarray) -> dict:
    """NeuroBench's and Sinabs' counts of one graph layer on its inputs ``x`` (T, B, n_in).

    Per step t (NeuroBench classifies each forward call, here a step of the batch):

    * effective ops (per event) = sum over nonzero inputs of the nonzero weights they
      drive (NeuroBench: binary copies of input and weights, summed outputs);
      the step adds to ``acs`` when every input value lies in {-1, 0, 1}, else to ``macs``;
    * ops per unit of event value = the same pairs weighted by |x| (a k-count event is k
      ops per weight, as Sinabs' SynOpCounter counts);
    * dense = the all-ones count (``d["dense"]``) every step.
    Totals over the T steps and B samples (divide by B for per sample).
    """
    T, B = x.shape[:2]
    acs = macs = per_value = 0.0
    for t in range(T):
        xt = x[t]
        ev = _fanout_ops(d, (xt != 0).astype(np.float64))
        per_value += _fanout_ops(d, np.abs(xt))
        if np.isin(xt, (-1.0, 0.0, 1.0)).all():
            acs += ev
        else:
            macs += ev
    return {"acs": acs, "macs": macs, "per_value": per_value, "dense": float(T * B * int(d["dense"])),
            "flops": float(T * B * int(d["flops"]))}


def neurobench_graph(layers: list, activations: dict, spiking: list | None = None) -> dict:
    """NeuroBench's metrics on the network as written, per sample.

    ``activations``: (T, B, n) outputs of every layer's source (the graph input included)
    and of the spiking neuron layers ``spiking`` (names; default: every neuron source).
    Returns Effective_ACs, Effective_MACs, Dense (all-ones count, T steps), the per-unit-of-
    value synaptic ops (``SynOps_per_value``, Sinabs' convention), activation_sparsity
    (zero outputs / all outputs of the spiking layers) and connection_sparsity, plus
    ``per_layer``. Biases are not operations (NeuroBench's default).
    """
    acs = macs = per_value = dense = 0.0
    B = None
    per_layer = {}
    for d in layers:
        x = layer_input(d, activations)
        B = x.shape[1]
        c = layer_counts(d, x)
        acs, macs, per_value, dense = acs + c["acs"], macs + c["macs"], per_value + c["per_value"], dense + c["dense"]
        per_layer[d["name"]] = {k: v / B for k, v in c.items()}
    if B is None:
        raise EnergyError("neurobench_graph: the graph has no weight layers")
    names = spiking if spiking is not None else sorted({d["src"] for d in layers if d["src_kind"] == "neuron"})
    nonzero = total = 0
    for n in names:
        a = np.asarray(activations[n])
        nonzero += int(np.count_nonzero(a))
        total += int(a.size)
    params = sum(int(d["params"]) for d in layers)
    nz = sum(int(d["nonzero"]) for d in layers)
    return {"Effective_ACs": acs / B, "Effective_MACs": macs / B, "Dense": dense / B,
            "SynOps_per_event": (acs + macs) / B, "SynOps_per_value": per_value / B,
            "activation_sparsity": 1.0 - nonzero / total if total else float("nan"),
            "connection_sparsity": 1.0 - nz / params if params else float("nan"),
            "per_layer": per_layer, "source": "activations, graph as written"}


def layer_labels(net) -> dict:
    """{population: the graph's layer names feeding it, joined by '+'} (``conv2`` for ``if2``),
    so tables name layers as the user wrote them; the population name when unknown."""
    layers = layers_of(net) or []
    out = {}
    for p in net.populations[1:]:
        names = [d["name"] for d in layers if d.get("dst") == p.name]
        out[p.name] = "+".join(names) if names else p.name
    return out


__all__ = ["layers_of", "dense_flops", "layer_input", "layer_counts", "neurobench_graph", "layer_labels",
           "NO_GRAPH_LAYERS"]
