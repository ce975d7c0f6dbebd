r"""Graph rewriting for pruning: renumber a population's neurons without changing what the network computes.

Permutations are applied to the graph: a population's neurons are renumbered in its
producer's weights and bias, its neuron parameters and its consumer's weights, so the
network computes the same function (identical spikes up to the renumbering, identical
outputs: the output population is never permuted). The permutations are recorded in the
pruned graph's metadata (``pruning``).
"""

from __future__ import annotations

import numpy as np

from models.graph import Graph

from .layers import Layer, PruneError


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
