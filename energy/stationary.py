"""The counters of a weight-stationary run (:mod:`hwsim.stationary`) as the :class:`RunCounters`
every estimate reads, so the energy views and tables price it as they price an unrolled run.

The run's core axis is :func:`hwsim.stationary.core_layout` (a layer's counters on its first
core): per-layer numbers are exact (no core holds two populations). What each view prices:
``paper`` -- the graph's layers with the run's firing rates (the input's events per element
per step from ``meta["input_events"]``); ``chip-ops`` -- ``E_AC acs + E_MAC macs`` with the
stationary counters' dense cell operations (``positions x g x rows x columns`` per layer and
step); ``hardware`` -- those, neuron updates, state words and partial-sum adds, runtime =
the timed ``total_cycles`` / ``clock_hz``, static power of the cores the mapping uses and of
the idle cores of its chips. NoC counters are zero (not simulated); ``crossbar_reads``,
``events`` and ``digital_adds`` are reported, not priced (the tables have no per-read or
digital-add energy).
"""

from __future__ import annotations

import numpy as np

from .counts import flops
from .errors import EnergyError
from .graphcounts import NO_GRAPH_LAYERS, dense_flops, layers_of
from .runstats import REQUIRED_COUNTERS, RunCounters, runtime_s, samples


def stationary_counters(result, mapping) -> RunCounters:
    """:class:`RunCounters` of a weight-stationary ``result`` on its ``mapping`` (module
    docstring); :class:`EnergyError` when the run lacks counters or belongs to another mapping."""
    if result.counters is None:
        raise EnergyError("estimate: the run has no counters")
    missing = [n for n in REQUIRED_COUNTERS if n not in result.counter_names]
    if missing:
        raise EnergyError(f"estimate: the run lacks counter(s) {missing}")
    chip, net = mapping.chip, mapping.net
    r = mapping.resources()
    B = samples(result)
    T = int(result.counters.shape[0])
    names = tuple(result.counter_names)
    pc = result.per_core()
    n_cores = len(result.core_population)
    pops = [p.name for p in net.populations[1:]]
    if set(result.core_population) - set(pops):
        raise EnergyError("estimate: the run's cores hold populations the mapping does not have")
    per_core = [{n: float(pc[n][c]) / B for n in names} for c in range(n_cores)]
    layers = {p: {n: 0.0 for n in names} for p in pops}
    layer_cores: dict = {}
    for c, pop in enumerate(result.core_population):
        layer_cores[pop] = layer_cores.get(pop, 0.0) + 1.0
        for n in names:
            layers[pop][n] += float(pc[n][c])
    glayers = layers_of(net)
    if glayers:
        dflops, how = dense_flops(glayers), "FLOPs of the graph's conv/fc layers as written"
    else:
        dflops, how = sum(flops(q) for q in net.projections), NO_GRAPH_LAYERS
    in_rate = None
    if net.input_spiking and "input_events" in result.meta:
        in_rate = float(result.meta["input_events"]) / (T * B * net.input.size)
    rt, rt_how = runtime_s(result, chip)
    totals = result.totals()
    return RunCounters(
        samples=B, steps=T, counter_names=names, per_core=per_core, core_used=np.ones(n_cores),
        layer_totals=layers, per_layer={p: {n: v / B for n, v in d.items()} for p, d in layers.items()},
        exact_layers=True, shared_cores=[], layer_cores=layer_cores,
        totals={n: v / B for n, v in totals.items()},
        weight_bits=int(result.meta.get("weight_bits", chip.core.weight_bits)),
        membrane_bits=int(result.meta.get("membrane_bits", chip.core.membrane_bits)),
        flit_bits=int(chip.noc.flit_bits), interchip_frac=0.0, runtime_s=rt, runtime_how=rt_how,
        dense_flops=int(dflops), neurons=sum(p.size for p in net.populations[1:]), graph_layers=glayers,
        baseline_how=how,
        pop_rates={p.name: layers[p.name]["spikes"] / (T * B * p.size) for p in net.populations[1:] if p.spiking},
        input_spiking=bool(net.input_spiking), input_acs_rate=in_rate,
        real_valued=tuple(p.name for p in net.populations[1:] if not p.spiking),
        chip_cores=int(chip.mesh.width * chip.mesh.height * max(1, int(r["chips_used"]))),
        memory_kib=float(chip.core.memory_bytes) / 1024.0, spike_mode=str(result.meta.get("spikes", "binary")))


__all__ = ["stationary_counters"]
