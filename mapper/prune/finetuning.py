r"""Fine-tuning a pruned graph under its crossbar budget (L0-constrained, LGD with relaxed
probabilistic projection): :func:`project` applied after every gradient step of
:func:`models.train.finetune`, and :func:`finetune` that runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np

from models.graph import Graph, node_type

from .layers import LINEAR_NODES, PruneError
from .pruner import PruneResult
from .scores import importance
from .select import Solution, block_sums, top_pairs


def project(weight: np.ndarray, sol: Solution, temperature: float = 0.0,
            rng: np.random.Generator | None = None, score: str = "l1") -> np.ndarray:
    """Zero every pair of ``weight`` (final order) outside the top ``sol.keep.sum()`` pairs.

    ``temperature > 0``: relaxed probabilistic projection, the ranking uses
    ``log J + temperature * Gumbel`` (a Gumbel-top-k draw: pairs are kept with a
    probability that grows with their importance); ``temperature = 0``: the hard
    L0 projection onto at most k pairs (each block keeps one). The block structure
    (orders, ``cb``, ``cap``) stays that of ``sol``.
    """
    J = block_sums(importance(weight, "l2" if score == "l2" else "l1"), sol.cb, sol.cap)
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

    linear = [n for n in g.order if node_type(g.nodes[n]) in LINEAR_NODES]
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
        renamed = dict(zip([n for n in new.order if node_type(new.nodes[n]) in LINEAR_NODES], linear))
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
        keep = block_sums(w.reshape(w.shape[0], w.shape[1], -1).sum(axis=2), sol.cb, sol.cap) > 0
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
