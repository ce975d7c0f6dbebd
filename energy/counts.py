"""Operation counts: per-layer counters of a run, layer FLOPs, and NeuroBench counts.

A *layer* is a destination population: the synaptic ops of every projection into it
are counted on the cores of its tiles. ``layer_counters`` splits the run's per-core
counters into layers through the mapping's tile -> population map (exact when no core
holds tiles of two populations; see its docstring for the rule used otherwise).
"""

from __future__ import annotations

import numpy as np

from models.net import ConvProjection, DenseProjection

from .errors import EnergyError

#: counters split by synapse share (stored weights) vs by neuron share on a shared core
_SYNAPSE_COUNTERS = ("events", "acs", "macs", "busy_cycles")


def flops(q) -> int:
    """Dense operation count of one projection per step, as SNN papers count it.

    FLOPs(conv) = k_h k_w H_out W_out (C_in / groups) C_out, FLOPs(fc) = in x out
    (``in`` = the fully connected weight's input width, after any pooling/flatten map);
    a :class:`~models.net.SparseProjection` counts as a dense n_pre x n_post layer.
    """
    if isinstance(q, ConvProjection):
        g = q.geom
        oh, ow = g.out_hw
        return int(g.kernel[0] * g.kernel[1] * oh * ow * (g.in_channels // g.groups) * g.out_channels)
    if isinstance(q, DenseProjection):
        return int(q.weight.shape[0] * q.weight.shape[1])
    return int(q.n_pre * q.n_post)


def dense_ops(q) -> int:
    """NeuroBench "Dense" ops of one projection per step: all-ones inputs and weights.

    Convolution taps that fall on zero padding multiply nothing and are not counted, so
    Dense(conv) = sum over outputs of the taps inside the input (<= FLOPs(conv)).
    """
    if isinstance(q, ConvProjection):
        ones = ConvProjection(q.name, q.src, q.dst, np.ones_like(q.weight), q.geom)
        return int(ones.fan_in().sum())
    return flops(q)


def weight_count(q) -> tuple[int, int]:
    """(parameters, nonzero parameters) of a projection's weight tensor (connection sparsity)."""
    if isinstance(q, (ConvProjection, DenseProjection)):
        return int(q.weight.size), int(np.count_nonzero(q.weight))
    return int(q.n_pre * q.n_post), int(q.nnz)


def core_populations(mapping) -> list[dict]:
    """Per core: {population: (stored synapses, soma neurons)} of the tiles it holds."""
    tl = mapping.tiling
    out = []
    for tids in tl.cores:
        d: dict = {}
        for k in tids:
            t = tl.tiles[int(k)]
            syn, nrn = d.get(t.population, (0, 0))
            d[t.population] = (syn + int(t.used_cells), nrn + (int(t.n_neurons) if t.kind == "soma" else 0))
        out.append(d)
    return out


def layer_counters(result, mapping) -> tuple[dict, bool, list]:
    """Counter totals per destination population (over steps and samples).

    Returns ``(per_layer, exact, shared_cores)``. A core holding tiles of one population
    gives all its counters to it (exact). A core shared by several populations splits
    events, ACs, MACs and busy cycles in proportion to the stored synapses of each
    population's tiles on it, and every other counter (neuron updates, spikes, state,
    partial sums, packets, flits, flit-hops) in proportion to its soma neurons there;
    then ``exact`` is False and ``shared_cores`` lists those cores.
    """
    if result.counters is None:
        raise EnergyError("the run has no counters (RunResult.counters is None)")
    pc = result.per_core()
    cp = core_populations(mapping)
    n_cores = len(next(iter(pc.values())))
    if n_cores != len(cp):
        raise EnergyError(f"the run has {n_cores} cores, the mapping {len(cp)}: they do not belong together")
    pops = [p.name for p in mapping.net.populations[1:]]
    layers = {p: {n: 0.0 for n in result.counter_names} for p in pops}
    shared = []
    for c, d in enumerate(cp):
        if not d:
            continue
        if len(d) > 1:
            shared.append(c)
        syn_tot = sum(v[0] for v in d.values())
        nrn_tot = sum(v[1] for v in d.values())
        for pop, (syn, nrn) in d.items():
            for n in result.counter_names:
                if len(d) == 1:
                    share = 1.0
                elif n in _SYNAPSE_COUNTERS:
                    share = syn / syn_tot if syn_tot else 1.0 / len(d)
                else:
                    share = nrn / nrn_tot if nrn_tot else 1.0 / len(d)
                layers[pop][n] += share * float(pc[n][c])
    return layers, not shared, shared


# ------------------------------------------------------------------ NeuroBench

def neurobench(net, activations: dict) -> dict:
    """NeuroBench synaptic-operation and sparsity metrics from a net's activations.

    ``activations[pop]`` = (T, B, n) outputs of every source population (the graph input
    included, as the values the first layer multiplies). Per sample (averaged over B):

    * Effective_ACs / Effective_MACs = sum over steps and projections of the nonzero-input
      x nonzero-weight pairs; a projection whose input values all lie in {-1, 0, 1} adds
      to Effective_ACs, otherwise to Effective_MACs,
    * Dense = T x sum over projections of :func:`dense_ops` (all-ones inputs and weights),
    * activation_sparsity = 1 - nonzero outputs / all outputs of the spiking populations,
    * connection_sparsity = zero weights / all weights (parameters of every projection).
    Biases are not counted as operations.
    """
    acs = macs = 0.0
    dense = 0
    T = B = None
    per_layer = {}
    for q in net.projections:
        if q.src not in activations:
            raise EnergyError(f"neurobench: activations of '{q.src}' (source of '{q.name}') missing")
        x = np.asarray(activations[q.src])
        if x.ndim != 3 or x.shape[2] != q.n_pre:
            raise EnergyError(f"neurobench: activations of '{q.src}' must be (T, B, {q.n_pre}), got {x.shape}")
        T, B = x.shape[0], x.shape[1]
        nz = (x != 0).reshape(-1, q.n_pre).astype(np.float64)
        fan_out = np.asarray((q.to_csr() != 0).sum(axis=1)).ravel().astype(np.float64)
        ops = float(nz.sum(axis=0) @ fan_out)
        spiking_in = bool(np.isin(x, (-1, 0, 1)).all())
        if spiking_in:
            acs += ops
        else:
            macs += ops
        dense += T * dense_ops(q)
        per_layer[q.name] = {"effective_ops": ops / B, "kind": "AC" if spiking_in else "MAC",
                             "dense": T * dense_ops(q)}
    if T is None:
        raise EnergyError("neurobench: the net has no projections")
    nonzero = total = 0
    for p in net.populations[1:]:
        if p.spiking and p.name in activations:
            a = np.asarray(activations[p.name])
            nonzero += int(np.count_nonzero(a))
            total += int(a.size)
    params = nz_params = 0
    for q in net.projections:
        a, b = weight_count(q)
        params, nz_params = params + a, nz_params + b
    return {"Effective_ACs": acs / B, "Effective_MACs": macs / B, "Dense": float(dense),
            "activation_sparsity": 1.0 - nonzero / total if total else float("nan"),
            "connection_sparsity": 1.0 - nz_params / params if params else float("nan"),
            "per_projection": per_layer, "source": "activations"}


def neurobench_from_run(result, mapping) -> dict:
    """The same metrics from a chip run's counters (per sample).

    Effective ACs/MACs are the chip's ``acs`` / ``macs`` counters: the chip reads exactly
    the stored (nonzero) weights of every nonzero input, so these equal NeuroBench's
    nonzero-input x nonzero-weight pairs. The AC/MAC split follows the chip (MAC = the
    source is the real-valued graph input), which is NeuroBench's {-1, 0, 1} rule for
    binary spikes; with ``spikes="multi"`` a count above 1 would be a MAC for NeuroBench.
    activation_sparsity uses the ``spikes`` counter (nonzero outputs for binary spikes).
    """
    net = mapping.net
    t = result.totals()
    B = int(result.meta.get("samples") or 1)
    T = int(result.counters.shape[0])
    dense = T * sum(dense_ops(q) for q in net.projections)
    spk_total = sum(p.size for p in net.populations[1:] if p.spiking) * T * B
    params = nz_params = 0
    for q in net.projections:
        a, b = weight_count(q)
        params, nz_params = params + a, nz_params + b
    return {"Effective_ACs": t["acs"] / B, "Effective_MACs": t["macs"] / B, "Dense": float(dense),
            "activation_sparsity": 1.0 - t["spikes"] / spk_total if spk_total else float("nan"),
            "connection_sparsity": 1.0 - nz_params / params if params else float("nan"),
            "source": "chip counters", "multi_spike_caveat": result.meta.get("spikes") == "multi"}
