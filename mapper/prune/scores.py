r"""Importance scores of a layer's weights: ``I[c, u]`` per column and input unit.

``score="l1"``: ``sum |W[c, u]|`` over the kernel taps, ``"l2"``: their root sum of
squares, ``"activation"``: ``l1 * r_u`` with ``r_u`` the mean output of the unit's neurons
in a float reference run on calibration data (:func:`unit_rates`).
"""

from __future__ import annotations

import numpy as np

from models.graph import Graph, node_type

from .layers import LINEAR_NODES, PASS_NODES, PruneError, chain

SCORES = ("l1", "l2", "activation")


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


def unit_rates(graph: Graph, inputs: np.ndarray, *, reset: str = "subtract", spikes: str = "binary",
               v_min=None) -> dict:
    """Mean activity of every input unit of every linear node, for ``score="activation"``.

    Runs the float reference (:func:`models.reference.simulate_graph`) on ``inputs``
    (T, B, *input_shape) and averages over steps and samples the values that reach each
    linear node (with the membrane floor ``v_min`` of :mod:`models.reference`): spikes of the
    neuron node (or the input values) feeding it, through its
    pooling (window mean) and flatten nodes; a conv layer's unit is an input channel
    (mean over its pixels), a dense layer's an input feature.
    """
    from models.reference import simulate_graph

    order = chain(graph)
    types = {n: node_type(graph.nodes[n]) for n in order}
    res = simulate_graph(graph, inputs, reset=reset, spikes=spikes, record="all", v_min=v_min)
    x = np.asarray(inputs, dtype=np.float64)
    means = {graph.input_name: x.reshape(x.shape[0] * x.shape[1], -1).mean(axis=0)}
    for k, s in res.spikes.items():
        means[k] = np.asarray(s).reshape(-1, np.asarray(s).shape[-1]).mean(axis=0)
    out = {}
    for i, name in enumerate(order):
        if types[name] not in LINEAR_NODES:
            continue
        j, passes = i - 1, []
        while j > 0 and types[order[j]] in PASS_NODES:
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
