"""What every energy estimate of one run reads, read once (:func:`energy.readrun.run_counters`): the run's
counters per core and per layer, its samples, bit widths, runtime and inter-chip share.

:func:`energy.estimate.estimate_counters` turns a :class:`RunCounters` into an estimate
under any table and view, so a report of several tables and views splits the counters once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .counts import core_populations, flops, layer_counters
from .errors import EnergyError
from .graphcounts import NO_GRAPH_LAYERS, dense_flops, layers_of

#: counters an estimate needs from the run
REQUIRED_COUNTERS = ("acs", "macs", "neuron_updates", "spikes", "state_words", "psum_ops", "flits",
                     "flit_hops", "busy_cycles")


def samples(result) -> int:
    """Samples (inferences) of a run."""
    return int(result.meta.get("samples") or result.output.shape[1])


def runtime_s(result, chip) -> tuple[float, str]:
    """Runtime of one inference in seconds and how it was obtained.

    The mean ``total_cycles`` of the timed samples when the run was timed; otherwise
    T x (step_cycles + barrier_cycles) for a fixed step; otherwise the sum over steps of
    the busiest core's cycles (a lower bound). Divided by ``clock_hz``.
    """
    clock = float(chip.timing.clock_hz)
    tim = result.timing
    if tim and "total_cycles" in tim and np.size(tim["total_cycles"]):
        return float(np.mean(tim["total_cycles"])) / clock, "timed samples (mean total_cycles)"
    T = int(result.counters.shape[0])
    sc = chip.timing.step_cycles
    if sc != "dynamic":
        return T * (int(sc) + int(chip.timing.barrier_cycles)) / clock, "fixed step_cycles x T"
    busy = result.counter("busy_cycles") / samples(result)
    return float(busy.max(axis=1).sum()) / clock, "busiest core per step (lower bound; run untimed)"


def interchip_fraction(mapping) -> float:
    """Share of flit-hops that cross a chip boundary, from the mapper's traffic estimate."""
    if mapping.placement.n_chips <= 1:
        return 0.0
    st = mapping.placement.stats
    hops = float(st.get("flit_hops", 0.0))
    return float(st.get("interchip_flits", 0.0)) / hops if hops > 0 else 0.0


@dataclass(frozen=True)
class RunCounters:
    """The counters of one run on its mapping and the run facts an estimate needs.

    Per inference (summed over the run's samples, divided by ``samples``): ``per_core[c]``
    = {counter: value} of core c, ``per_layer[pop]`` = {counter: value} of a destination
    population (:func:`energy.counts.layer_counters`), ``totals`` = {counter: value} of the
    chip. ``layer_totals`` are the per-layer counters over all samples, not divided.
    ``core_used[c]`` is 1.0 for a core holding tiles, else 0.0; ``layer_cores[pop]`` the
    cores a population occupies (a shared core counted as a share). ``dense_flops`` and
    ``neurons`` size the dense-ANN baseline (:func:`energy.estimate.ann_baseline`):
    FLOPs of the graph's layers as written (``graph_layers``, stored at lowering time), or of
    the lowered net for an older mapping (``baseline_how`` says which).
    ``pop_rates[pop]`` = spikes per neuron per step of every spiking population (its
    ``spikes`` counter); ``chip_cores`` = every core of the chips the mapping occupies
    (all of them leak); ``memory_kib`` = one core's memory, the SRAM macro size.
    """

    samples: int
    steps: int
    counter_names: tuple
    per_core: list
    core_used: np.ndarray
    layer_totals: dict
    per_layer: dict
    exact_layers: bool
    shared_cores: list
    layer_cores: dict
    totals: dict
    weight_bits: int
    membrane_bits: int
    flit_bits: int
    interchip_frac: float
    runtime_s: float
    runtime_how: str
    dense_flops: int
    neurons: int
    graph_layers: list | None = None
    baseline_how: str = ""
    pop_rates: dict | None = None
    input_spiking: bool = False
    input_acs_rate: float | None = None
    real_valued: tuple = ()
    chip_cores: int = 0
    memory_kib: float = 0.0
    spike_mode: str = "binary"

    def __repr__(self) -> str:
        return (f"RunCounters({self.samples} sample(s) x {self.steps} steps, {len(self.per_core)} cores, "
                f"{len(self.per_layer)} layers)")


def unrolled_counters(result, mapping) -> RunCounters:
    """Read the counters of a run on an unrolled mapping (the engine's core axis) once (see
    :class:`RunCounters`; a weight-stationary run: :func:`energy.stationary.stationary_counters`,
    the choice: :func:`energy.readrun.run_counters`); raises :class:`EnergyError` when the run has
    no counters, lacks one an estimate needs, or does not belong to ``mapping``."""
    if result.counters is None:
        raise EnergyError("estimate: the run has no counters")
    missing = [n for n in REQUIRED_COUNTERS if n not in result.counter_names]
    if missing:
        raise EnergyError(f"estimate: the run lacks counter(s) {missing}")
    chip = mapping.chip
    B = samples(result)
    names = tuple(result.counter_names)
    pc = result.per_core()
    n_cores = len(pc[names[0]])
    used = np.zeros(n_cores, bool)
    for c, tids in enumerate(mapping.tiling.cores):
        used[c] = len(tids) > 0
    per_core = [{n: float(pc[n][c]) / B for n in names} for c in range(n_cores)]
    layers, exact, shared = layer_counters(result, mapping)
    layer_cores: dict = {}
    for d in core_populations(mapping):
        for pop in d:
            layer_cores[pop] = layer_cores.get(pop, 0.0) + 1.0 / len(d)
    rt, how = runtime_s(result, chip)
    net = mapping.net
    T = int(result.counters.shape[0])
    glayers = layers_of(net)
    if glayers:
        dflops, bhow = dense_flops(glayers), "FLOPs of the graph's conv/fc layers as written"
    else:
        dflops, bhow = sum(flops(q) for q in net.projections), NO_GRAPH_LAYERS
    pop_rates = {p.name: layers[p.name]["spikes"] / (T * B * p.size) for p in net.populations[1:] if p.spiking}
    # a spiking input's events per neuron per step, fan-out weighted, from the ACs of the layers it feeds
    in_acs = in_syn = 0.0
    for q in net.projections:
        if q.src == net.input.name and net.input_spiking and len(net.incoming(q.dst)) == 1:
            in_acs += layers[q.dst]["acs"]
            in_syn += float(np.sum(q.fan_out()))
    input_acs_rate = in_acs / (T * B * in_syn) * 1.0 if in_syn else None
    mesh = chip.mesh
    n_chips = max(1, int(getattr(mapping.placement, "n_chips", 1) or 1))
    return RunCounters(
        samples=B, steps=int(result.counters.shape[0]), counter_names=names, per_core=per_core,
        core_used=used.astype(np.float64), layer_totals=layers,
        per_layer={pop: {n: v / B for n, v in cnt.items()} for pop, cnt in layers.items()},
        exact_layers=exact, shared_cores=shared, layer_cores=layer_cores,
        totals={n: v / B for n, v in result.totals().items()},
        weight_bits=int(result.meta.get("weight_bits", chip.core.weight_bits)),
        membrane_bits=int(result.meta.get("membrane_bits", chip.core.membrane_bits)),
        flit_bits=int(chip.noc.flit_bits), interchip_frac=interchip_fraction(mapping),
        runtime_s=rt, runtime_how=how, dense_flops=int(dflops),
        neurons=sum(p.size for p in net.populations[1:]), graph_layers=glayers, baseline_how=bhow,
        pop_rates=pop_rates, input_spiking=bool(net.input_spiking), input_acs_rate=input_acs_rate,
        real_valued=tuple(p.name for p in net.populations[1:] if not p.spiking),
        chip_cores=int(mesh.width * mesh.height * n_chips), memory_kib=float(chip.core.memory_bytes) / 1024.0,
        spike_mode=str(result.meta.get("spikes", "binary")))


__all__ = ["RunCounters", "unrolled_counters", "runtime_s", "interchip_fraction", "samples", "REQUIRED_COUNTERS"]
