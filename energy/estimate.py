"""Energy of a run (:func:`estimate`) and of a net from firing rates (:func:`analytic`).

Two views (DESIGN.md section 7), every number per inference (one sample) in pJ:

* ``paper``:    E = E_MAC x MACs + E_AC x ACs  (the SNN-paper convention),
* ``hardware``: E = E_compute + E_memory + E_NoC + E_static with
  E_compute = e_ac ACs + e_mac MACs + e_neuron_update updates + e_spike spikes
  + e_psum_add psum_ops;
  E_memory  = e_sram_read_bit (ACs + MACs) weight_bits
  + (e_sram_read_bit + e_sram_write_bit) state_words membrane_bits  (state read and written);
  E_NoC     = e_flit_hop (flit_hops + io_in_flit_hops) + e_flit_inject flits
  + e_interchip_bit interchip_flits flit_bits  (``io_in_flit_hops``, ``interchip_flits``:
  counters of the run when it has them; otherwise no I/O term and the inter-chip flits
  are flit_hops x the mapper's inter-chip share of its traffic estimate, labelled);
  E_static  = static_power_per_core x runtime per core used (runtime in s, x 1e12 pJ/J).

The dense-ANN baseline of the same network runs every layer once with MACs:
paper: E_ANN = E_MAC x sum over projections of FLOPs;
hardware: E_ANN = sum FLOPs x (e_mac + weight_bits e_sram_read_bit)
+ sum neurons x (e_neuron_update + membrane_bits (e_sram_read_bit + e_sram_write_bit)),
i.e. compute + memory only; the hardware SNN/ANN ratio therefore compares the SNN's
compute + memory with it (NoC and static are left out of both sides of the ratio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .counts import flops, is_mac_source
from .errors import EnergyError
from .runstats import RunCounters, run_counters, runtime_s  # noqa: F401 (runtime_s re-exported)
from .tables import TechTable, load_table

VIEWS = ("paper", "hardware")
PAPER_COMPONENTS = ("mac", "ac")
HW_COMPONENTS = ("compute_ac", "compute_mac", "compute_neuron", "compute_psum", "memory_weights",
                 "memory_state", "noc_hops", "noc_io", "noc_inject", "noc_interchip", "static")
#: the four groups of the hardware view (stacked bars)
HW_GROUPS = {"compute": ("compute_ac", "compute_mac", "compute_neuron", "compute_psum"),
             "memory": ("memory_weights", "memory_state"),
             "noc": ("noc_hops", "noc_io", "noc_inject", "noc_interchip"), "static": ("static",)}


@dataclass
class Estimate:
    """Energy of one view under one table, per inference, in pJ.

    ``per_layer[pop][component]``, ``per_core`` (n_cores, n_components) aligned with
    ``components``, ``totals[component]``, ``total_pj``; ``ann_baseline_pj`` and
    ``snn_ann_ratio`` (see the module docstring); ``counts`` = the per-inference counts
    used; ``exact_layers`` False when per-layer numbers come from a shared-core split.
    """

    view: str
    table: str
    components: tuple
    per_layer: dict
    per_core: np.ndarray | None
    totals: dict
    total_pj: float
    ann_baseline_pj: float
    snn_ann_ratio: float
    counts: dict = field(default_factory=dict)
    exact_layers: bool = True
    notes: list = field(default_factory=list)
    source: str = "counters"

    def __repr__(self) -> str:
        where = f"{len(self.per_layer)} layers" + ("" if self.per_core is None else f", {len(self.per_core)} cores")
        return (f"Estimate({self.view} view, table {self.table}: {self.total_pj:,.6g} pJ per inference, "
                f"SNN/ANN {self.snn_ann_ratio:.4g}; {where}, from {self.source})")

    def per_layer_groups(self) -> dict:
        """Per-layer energies (pJ) in display groups: {layer: {group: pJ}}, the groups being
        MAC, AC (paper view) or Compute, Memory, NoC, Static (hardware view, :data:`HW_GROUPS`)."""
        out = {}
        for layer, comp in self.per_layer.items():
            if self.view == "paper":
                out[layer] = {"MAC": comp["mac"], "AC": comp["ac"]}
            else:
                out[layer] = {g.capitalize() if g != "noc" else "NoC": sum(comp[k] for k in ks)
                              for g, ks in HW_GROUPS.items()}
        return out

    def to_dict(self) -> dict:
        return {"view": self.view, "table": self.table, "source": self.source, "unit": "pJ per inference",
                "total_pj": self.total_pj, "totals_pj": dict(self.totals),
                "per_layer_pj": {k: dict(v) for k, v in self.per_layer.items()},
                "per_core_pj": None if self.per_core is None else
                [dict(zip(self.components, map(float, row))) for row in self.per_core],
                "ann_baseline_pj": self.ann_baseline_pj, "snn_ann_ratio": self.snn_ann_ratio,
                "counts": dict(self.counts), "exact_layers": self.exact_layers, "notes": list(self.notes)}


def _check_view(view):
    if view not in VIEWS:
        raise EnergyError(f"unknown energy view {view!r}; known: {', '.join(VIEWS)}")


def _component_energy(view: str, tech: TechTable, c: dict, weight_bits: int, membrane_bits: int,
                      flit_bits: int, interchip_frac: float, static_pj_per_core: float, n_cores: float) -> dict:
    """Energy components (pJ) of one set of counts ``c`` (see the module docstring)."""
    v = tech.v
    if view == "paper":
        return {"mac": v("e_mac_pj") * c["macs"], "ac": v("e_ac_pj") * c["acs"]}
    if "interchip_flits" in c:
        interchip_bits = c["interchip_flits"] * flit_bits
    else:
        interchip_bits = c["flit_hops"] * interchip_frac * flit_bits
    return {
        "compute_ac": v("e_ac_pj") * c["acs"],
        "compute_mac": v("e_mac_pj") * c["macs"],
        "compute_neuron": v("e_neuron_update_pj") * c["neuron_updates"] + v("e_spike_pj") * c["spikes"],
        "compute_psum": v("e_psum_add_pj") * c["psum_ops"],
        "memory_weights": v("e_sram_read_bit_pj") * (c["acs"] + c["macs"]) * weight_bits,
        "memory_state": (v("e_sram_read_bit_pj") + v("e_sram_write_bit_pj")) * c["state_words"] * membrane_bits,
        "noc_hops": v("e_flit_hop_pj") * c["flit_hops"],
        "noc_io": v("e_flit_hop_pj") * c.get("io_in_flit_hops", 0.0),
        "noc_inject": v("e_flit_inject_pj") * c["flits"],
        "noc_interchip": v("e_interchip_bit_pj") * interchip_bits,
        "static": static_pj_per_core * n_cores,
    }


def ann_baseline(net, tech: TechTable, view: str, weight_bits: int = 8, membrane_bits: int = 16) -> float:
    """Dense-ANN energy of the same network, one pass (pJ; see the module docstring)."""
    _check_view(view)
    return _ann_energy(load_table(tech), view, sum(flops(q) for q in net.projections),
                       sum(p.size for p in net.populations[1:]), weight_bits, membrane_bits)


def _ann_energy(tech: TechTable, view: str, F: int, neurons: int, weight_bits: int, membrane_bits: int) -> float:
    """:func:`ann_baseline` of a net with ``F`` dense FLOPs and ``neurons`` non-input neurons."""
    if view == "paper":
        return tech.v("e_mac_pj") * F
    return (F * (tech.v("e_mac_pj") + weight_bits * tech.v("e_sram_read_bit_pj"))
            + neurons * (tech.v("e_neuron_update_pj")
                         + membrane_bits * (tech.v("e_sram_read_bit_pj") + tech.v("e_sram_write_bit_pj"))))


def estimate(result, tech, view: str = "paper", *, mapping=None) -> Estimate:
    """Energy of a chip run under technology table ``tech`` in ``view`` ('paper' or 'hardware').

    ``mapping`` (the :class:`~mapper.mapping.Mapping` the run simulated) is needed for the
    per-layer split, the ANN baseline, runtime and inter-chip traffic. Counts are summed
    over the run's samples and divided by their number (per inference). Several tables or
    views of one run: :func:`energy.runstats.run_counters` once, then
    :func:`estimate_counters` for each.
    """
    _check_view(view)
    tech = load_table(tech)
    return estimate_counters(run_counters(result, mapping), tech, view)


def estimate_counters(counters: RunCounters, tech, view: str = "paper") -> Estimate:
    """:func:`estimate` of a run whose counters were read by :func:`energy.runstats.run_counters`."""
    _check_view(view)
    tech = load_table(tech)
    rc = counters
    B, wb, mb, fb, frac = rc.samples, rc.weight_bits, rc.membrane_bits, rc.flit_bits, rc.interchip_frac
    notes = [f"per inference: counters summed over {B} sample(s) / {B}"]
    if view == "hardware":
        static_core = tech.v("static_power_per_core_w") * rc.runtime_s * 1e12
        notes.append(f"runtime {rc.runtime_s * 1e6:.3f} us per inference ({rc.runtime_how})")
        if "interchip_flits" in rc.counter_names:
            notes.append("inter-chip bits = the run's interchip_flits counter x flit_bits")
        elif frac:
            notes.append(f"inter-chip bits = flit-hops x {frac:.4f} (mapper's inter-chip share) x {fb} bits")
    else:
        static_core = 0.0
    comps = PAPER_COMPONENTS if view == "paper" else HW_COMPONENTS
    per_core = np.zeros((len(rc.per_core), len(comps)))
    for c, cc in enumerate(rc.per_core):
        e = _component_energy(view, tech, cc, wb, mb, fb, frac, static_core, float(rc.core_used[c]))
        per_core[c] = [e[k] for k in comps]
    per_layer = {pop: _component_energy(view, tech, cc, wb, mb, fb, frac, static_core, rc.layer_cores.get(pop, 0.0))
                 for pop, cc in rc.per_layer.items()}
    if not rc.exact_layers:
        notes.append(f"per-layer split is approximate: core(s) {rc.shared_cores} hold several populations "
                     f"(synapse / neuron shares); per-core and totals are exact")
    totals = {k: float(per_core[:, i].sum()) for i, k in enumerate(comps)}
    total = float(sum(totals.values()))
    ann = _ann_energy(tech, view, rc.dense_flops, rc.neurons, wb, mb)
    snn_cmp = total if view == "paper" else sum(totals[k] for k in HW_GROUPS["compute"] + HW_GROUPS["memory"])
    return Estimate(view, tech.name, comps, per_layer, per_core, totals, total, ann,
                    snn_cmp / ann if ann > 0 else math.nan, dict(rc.totals), rc.exact_layers, notes, "counters")


# ------------------------------------------------------------------ analytic

def analytic(net, firing_rates: dict, steps: int, tech, *, ops: str = "flops", input_steps: int = 1,
             input_rate=1.0) -> Estimate:
    """Paper-view energy from per-layer firing rates, without a simulation.

    For every projection q from population s into layer d (per inference):

    * s is the real-valued graph input: MACs_q = input_rate x input_steps x ops_q,
    * otherwise: ACs_q = r_s x steps x ops_q,

    and E = E_MAC x sum MACs + E_AC x sum ACs. ``firing_rates[s]`` = events (nonzero
    outputs) per neuron per step, a scalar (the papers' per-layer rate) or an (n_s,)
    per-neuron array; ``input_rate`` likewise for a real-valued input (1.0: every value
    counted). ``ops="flops"``: ops_q = r x FLOPs(q) (:func:`energy.counts.flops`); with a
    per-neuron array r its mean is used. ``ops="synapses"``: ops_q = sum_i r_i f_i with
    f_i the stored nonzero weights of pre neuron i (``q.fan_out()``), which is what the
    chip executes. The defaults (``ops="flops"``, ``input_steps=1``) give the papers'
    formula E = E_MAC FLOPs(first layer) + E_AC sum_l r_l T FLOPs(l).

    When analytic equals a run's counters (:func:`estimate`, paper view): the chip counts
    ACs_q = sum_i c_i f_i (c_i = events of pre neuron i per inference). With per-neuron
    rates r_i = c_i / T, ``ops="synapses"`` and ``input_steps=T`` this is exact always.
    With per-layer rates and ``ops="flops"`` it is exact iff sum_i c_i (f_i - FLOPs/n_pre)
    = 0 for every projection -- for every activity pattern iff every pre neuron drives
    exactly FLOPs/n_pre nonzero weights: no zero (or pruned) weights, no convolution border
    (padding/stride) effects, no pooling map in front of a dense layer; and for the input
    layer additionally input_steps = T and every input value nonzero (input_rate = 1).
    """
    tech = load_table(tech)
    if ops not in ("flops", "synapses"):
        raise EnergyError(f"analytic: ops must be 'flops' or 'synapses', got {ops!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise EnergyError(f"analytic: steps must be an integer >= 1, got {steps!r}")
    per_layer = {p.name: {"mac": 0.0, "ac": 0.0} for p in net.populations[1:]}
    counts = {"macs": 0.0, "acs": 0.0}
    for q in net.projections:
        mac = is_mac_source(net, q)
        if mac:
            r = np.asarray(firing_rates.get(q.src, input_rate), dtype=np.float64)
        else:
            if q.src not in firing_rates:
                raise EnergyError(f"analytic: firing rate of '{q.src}' (source of '{q.name}') missing; "
                                  f"have {sorted(firing_rates)}")
            r = np.asarray(firing_rates[q.src], dtype=np.float64)
        if r.ndim > 1 or (r.ndim == 1 and r.size != q.n_pre):
            raise EnergyError(f"analytic: rate of '{q.src}' must be a scalar or ({q.n_pre},), got shape {r.shape}")
        if not np.isfinite(r).all() or (r < 0).any():
            raise EnergyError(f"analytic: rate of '{q.src}' must be finite and >= 0")
        if ops == "flops":
            n_ops = float(r.mean()) * flops(q)
        else:
            f = np.asarray(q.fan_out(), dtype=np.float64)
            n_ops = float(r @ f) if r.ndim else float(r) * float(f.sum())
        if mac:
            n = n_ops * input_steps
            counts["macs"] += n
            per_layer[q.dst]["mac"] += tech.v("e_mac_pj") * n
        else:
            n = n_ops * steps
            counts["acs"] += n
            per_layer[q.dst]["ac"] += tech.v("e_ac_pj") * n
    totals = {"mac": tech.v("e_mac_pj") * counts["macs"], "ac": tech.v("e_ac_pj") * counts["acs"]}
    total = totals["mac"] + totals["ac"]
    ann = ann_baseline(net, tech, "paper")
    return Estimate("paper", tech.name, PAPER_COMPONENTS, per_layer, None, totals, total, ann,
                    total / ann if ann > 0 else math.nan, counts, True,
                    [f"analytic: ops={ops}, steps={steps}, input_steps={input_steps}"], "analytic")


def run_rates(result, net, encoded_input=None, per_neuron: bool = True) -> dict:
    """Event rates (nonzero outputs per neuron per step) of the run's recorded populations.

    ``encoded_input`` = the integer input the chip saw (``models.intref.encode_input``),
    (T, B, ...), for the input population's rate. Per-neuron arrays, or per-layer means.
    """
    out = {}
    for name, s in result.spikes.items():
        a = np.asarray(s)
        r = (a != 0).mean(axis=(0, 1))
        out[name] = r if per_neuron else float(r.mean())
    if encoded_input is not None:
        x = np.asarray(encoded_input)
        r = (x.reshape(x.shape[0], x.shape[1], -1) != 0).mean(axis=(0, 1))
        out[net.input.name] = r if per_neuron else float(r.mean())
    return out
