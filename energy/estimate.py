"""Energy of a run (:func:`estimate`) and of a net from firing rates (:func:`analytic`).

Three views, every number per inference (one sample) in pJ, each named for what it is:

* ``paper`` -- the SNN papers' formula on the network **as written** (Spikformer, Zhou et
  al. ICLR 2023; Spike-driven Transformer, Yao et al. NeurIPS 2023, and the work they
  cite), with firing rates measured from the run:

      E = E_MAC x FLOPs(l_0) + E_AC x sum over spiking layers l of (r_l x T x FLOPs(l))

  where l_0 are the layers fed by the real-valued (encoding) input, counted once per
  inference; r_l the firing rate (spikes per neuron per step) of the neuron layer whose
  output reaches l (through pooling / Flatten, never composed into l); FLOPs(conv) =
  k_h k_w H_out W_out (C_in / groups) C_out, FLOPs(fc) = in x out
  (:func:`models.lowering.graph_layers`). A layer fed by a non-spiking population adds
  E_MAC x T x FLOPs(l); a spiking input's rate is its events per element per step.
  :func:`paper_formula`.
* ``chip-ops`` -- the mapped chip's synaptic-op counters: E = E_MAC x MACs + E_AC x ACs,
  MACs and ACs = nonzero input events x stored nonzero weights, one op per weight per
  event (a k-count event is one op per weight; Sinabs' SynOpCounter counts k: the report
  gives both counts).
* ``hardware`` -- E = E_compute + E_memory + E_NoC + E_static with
  E_compute = e_ac' ACs + e_mac' MACs + e_neuron_update updates + e_spike spikes
  + e_psum_add psum_ops (no partial sums on a table with ``partial_sums: false``), where
  e_ac' = e_add(membrane_bits) and e_mac' = e_mult(weight_bits) + e_add(membrane_bits)
  when the table has adds/multiplies by width, else e_ac / e_mac;
  E_memory = e_rb (ACs + MACs) weight_bits + (e_rb + e_wb) state_words membrane_bits with
  e_rb = (64-bit read at the core memory's size, ``e_sram_read_64b_pj_by_kib``
  interpolated) / 64 when the table has it, else e_sram_read_bit; e_wb likewise scaled;
  E_NoC = e_flit_hop (flit_hops + io_in_flit_hops) u + e_flit_inject flits
  + e_interchip_bit interchip_flits flit_bits, u = 1 per flit or packets / flits for a
  table given per message (``noc_unit: packet``);
  E_static = static_power_per_core x runtime x cores, for the cores holding tiles
  (``static``) and for the other cores of the occupied chips (``static_idle``), runtime
  = the run's duration (timed cycles / clock_hz, :func:`energy.runstats.runtime_s`).

The dense-ANN baseline runs every layer of the graph as written once with MACs:
paper / chip-ops: E_ANN = E_MAC x sum over the graph's layers of FLOPs (per step; x T per
inference is the same network run T times, reported alongside);
hardware: E_ANN = sum FLOPs x (e_mac' + weight_bits e_rb) + sum neurons x
(e_neuron_update + membrane_bits (e_rb + e_wb)), i.e. compute + memory only; the hardware
SNN/ANN ratio therefore compares the SNN's compute + memory with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .counts import flops
from .errors import EnergyError
from .graphcounts import NO_GRAPH_LAYERS, dense_flops, layers_of
from .readrun import run_counters
from .runstats import RunCounters, runtime_s  # noqa: F401 (runtime_s re-exported)
from .tables import TechTable, load_table

VIEWS = ("paper", "chip-ops", "hardware")
#: what each view is, one sentence, for reports
VIEW_CONVENTIONS = {
    "paper": "the SNN papers' formula on the network as written: E_MAC x FLOPs of the layers fed by the "
             "real-valued input (once per inference) + E_AC x sum over spiking layers of firing rate x T x "
             "FLOPs(layer); rates measured in the run, pooling not composed",
    "chip-ops": "the mapped chip's counters: E_MAC x MACs + E_AC x ACs, one op per stored nonzero weight per "
                "nonzero input event (a k-count event is one op per weight)",
    "hardware": "compute (adds at the membrane width) + SRAM at the core memory's macro size + NoC + static "
                "power of every core of the occupied chips over the run's duration",
}
PAPER_COMPONENTS = ("mac", "ac")
HW_COMPONENTS = ("compute_ac", "compute_mac", "compute_neuron", "compute_psum", "memory_weights",
                 "memory_state", "noc_hops", "noc_io", "noc_inject", "noc_interchip", "static", "static_idle")
#: the four groups of the hardware view (stacked bars)
HW_GROUPS = {"compute": ("compute_ac", "compute_mac", "compute_neuron", "compute_psum"),
             "memory": ("memory_weights", "memory_state"),
             "noc": ("noc_hops", "noc_io", "noc_inject", "noc_interchip"), "static": ("static", "static_idle")}


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
        MAC, AC (paper and chip-ops views) or Compute, Memory, NoC, Static (hardware view, :data:`HW_GROUPS`)."""
        out = {}
        for layer, comp in self.per_layer.items():
            if self.view in ("paper", "chip-ops"):
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


def hw_unit_energies(tech: TechTable, weight_bits: int, membrane_bits: int, memory_kib: float) -> tuple[dict, list]:
    """The hardware view's per-operation energies (pJ) and how each was obtained.

    ``ac`` = e_add(membrane_bits), ``mac`` = e_mult(weight_bits) + e_add(membrane_bits)
    (tables with widths), ``read_bit`` / ``write_bit`` = 64-bit read at ``memory_kib`` / 64
    (write scaled by the table's write/read ratio), else the table's flat figures."""
    v, how = tech.v, []
    u = {"ac": v("e_ac_pj"), "mac": v("e_mac_pj"), "read_bit": v("e_sram_read_bit_pj"),
         "write_bit": v("e_sram_write_bit_pj")}
    if tech.e_add_pj_by_bits is not None:
        add, h = tech.e_add_pj_by_bits.at(membrane_bits)
        u["ac"] = add
        how.append(f"AC = {membrane_bits}-bit add {add:.4g} pJ ({h}, accumulating into the membrane)")
        if tech.e_mult_pj_by_bits is not None:
            mul, h2 = tech.e_mult_pj_by_bits.at(weight_bits)
            u["mac"] = mul + add
            how.append(f"MAC = {weight_bits}-bit multiply {mul:.4g} ({h2}) + {membrane_bits}-bit add {add:.4g} pJ")
    if tech.e_sram_read_64b_pj_by_kib is not None and memory_kib > 0:
        r64, h = tech.e_sram_read_64b_pj_by_kib.at(memory_kib)
        flat = v("e_sram_read_bit_pj")
        ratio = v("e_sram_write_bit_pj") / flat if flat > 0 else 1.0
        u["read_bit"], u["write_bit"] = r64 / 64.0, r64 / 64.0 * ratio
        how.append(f"SRAM: 64-bit read of a {memory_kib:g} KiB macro {r64:.4g} pJ ({h}, log-log between the "
                   f"table's sizes) = {r64 / 64:.4g} pJ/bit")
    return u, how


def _component_energy(view: str, tech: TechTable, c: dict, weight_bits: int, membrane_bits: int,
                      flit_bits: int, interchip_frac: float, static_pj_per_core: float, n_cores: float,
                      unit: dict | None = None) -> dict:
    """Energy components (pJ) of one set of counts ``c`` (see the module docstring)."""
    v = tech.v
    if view in ("paper", "chip-ops"):
        return {"mac": v("e_mac_pj") * c["macs"], "ac": v("e_ac_pj") * c["acs"]}
    u = unit or hw_unit_energies(tech, weight_bits, membrane_bits, 0.0)[0]
    if "interchip_flits" in c:
        interchip_bits = c["interchip_flits"] * flit_bits
    else:
        interchip_bits = c["flit_hops"] * interchip_frac * flit_bits
    per_hop = 1.0
    if tech.noc_unit == "packet":
        per_hop = c["packets"] / c["flits"] if c.get("flits") else 1.0
    return {
        "compute_ac": u["ac"] * c["acs"],
        "compute_mac": u["mac"] * c["macs"],
        "compute_neuron": v("e_neuron_update_pj") * c["neuron_updates"] + v("e_spike_pj") * c["spikes"],
        "compute_psum": v("e_psum_add_pj") * c["psum_ops"] if tech.partial_sums else 0.0,
        "memory_weights": u["read_bit"] * (c["acs"] + c["macs"]) * weight_bits,
        "memory_state": (u["read_bit"] + u["write_bit"]) * c["state_words"] * membrane_bits,
        "noc_hops": v("e_flit_hop_pj") * c["flit_hops"] * per_hop,
        "noc_io": v("e_flit_hop_pj") * c.get("io_in_flit_hops", 0.0) * per_hop,
        "noc_inject": v("e_flit_inject_pj") * c["flits"] * per_hop,
        "noc_interchip": v("e_interchip_bit_pj") * interchip_bits,
        "static": static_pj_per_core * n_cores,
        "static_idle": 0.0,
    }


def ann_baseline(net, tech: TechTable, view: str, weight_bits: int = 8, membrane_bits: int = 16,
                 memory_kib: float = 0.0) -> float:
    """Dense-ANN energy of the same network, one pass (pJ; see the module docstring): the FLOPs
    of the graph's layers as written (``net.metadata["graph_layers"]``), else of the lowered net."""
    _check_view(view)
    layers = layers_of(net)
    F = dense_flops(layers) if layers else sum(flops(q) for q in net.projections)
    return _ann_energy(load_table(tech), view, F, sum(p.size for p in net.populations[1:]), weight_bits,
                       membrane_bits, memory_kib)


def _ann_energy(tech: TechTable, view: str, F: int, neurons: int, weight_bits: int, membrane_bits: int,
                memory_kib: float = 0.0) -> float:
    """:func:`ann_baseline` of a net with ``F`` dense FLOPs and ``neurons`` non-input neurons."""
    if view in ("paper", "chip-ops"):
        return tech.v("e_mac_pj") * F
    u, _ = hw_unit_energies(tech, weight_bits, membrane_bits, memory_kib)
    return (F * (u["mac"] + weight_bits * u["read_bit"])
            + neurons * (tech.v("e_neuron_update_pj") + membrane_bits * (u["read_bit"] + u["write_bit"])))


def estimate(result, tech, view: str = "paper", *, mapping=None, activations: dict | None = None) -> Estimate:
    """Energy of a chip run under technology table ``tech`` in ``view`` (:data:`VIEWS`).

    ``mapping`` (the :class:`~mapper.mapping.Mapping` the run simulated) is needed for the
    per-layer split, the ANN baseline, runtime and inter-chip traffic. Counts are summed
    over the run's samples and divided by their number (per inference). ``activations``
    (paper view): {source: (T, B, n) outputs} for exact per-event and per-value rates
    (the graph input's included, for a spiking input), else rates from the counters.
    Several tables or views of one run: :func:`energy.readrun.run_counters` once, then
    :func:`estimate_counters` for each.
    """
    _check_view(view)
    tech = load_table(tech)
    return estimate_counters(run_counters(result, mapping), tech, view, activations=activations)


def measured_rates(rc: RunCounters, activations: dict | None = None) -> tuple[dict, dict | None, list]:
    """Firing rates of every layer source for :func:`paper_formula`: per event (nonzero outputs
    per neuron per step) and, from activations, per unit of event value; with notes.

    From the run's counters: a population's ``spikes`` counter / (T B n) (exact when no core is
    shared), a spiking input's events per element per step from the ACs of the layers it
    feeds (fan-out weighted; exact for uniform fan-out). ``activations`` override both."""
    rates = dict(rc.pop_rates or {})
    notes = []
    values = None
    if rc.input_spiking and rc.input_acs_rate is not None:
        rates["__input__"] = rc.input_acs_rate
        notes.append(f"input event rate {rc.input_acs_rate:.4g} per element per step from the chip's ACs of the "
                     f"input layer(s) (fan-out weighted)")
    if not rc.exact_layers:
        notes.append("firing rates of populations on shared cores are neuron-share splits of the spikes counter")
    if activations:
        values = {}
        for k, a in activations.items():
            a = np.asarray(a)
            rates[k] = float(np.count_nonzero(a)) / a.size
            values[k] = float(np.abs(a).sum()) / a.size
        notes.append(f"rates of {', '.join(sorted(activations))} from recorded activations")
    return rates, values, notes


def paper_formula(layers: list, rates: dict, steps: int, tech, *, input_name: str, input_spiking: bool,
                  real_valued=(), value_rates: dict | None = None) -> Estimate:
    """The SNN papers' energy on the graph's layers as written (module docstring, ``paper``).

    ``layers`` = :func:`models.lowering.graph_layers`; ``rates[src]`` = firing rate (spikes
    per neuron per step) of each layer's source neuron node (``rates[input_name]`` or
    ``rates["__input__"]`` for a spiking input); ``real_valued`` = non-spiking neuron nodes
    (their layers are MAC layers every step). ``value_rates``: rates per unit of event value
    (a k-count event counts k); when given, ``counts["acs_per_value"]`` and
    ``counts["total_pj_per_value"]`` give the formula under that convention.

    E = E_MAC x sum over l_0 of FLOPs(l) + E_AC x sum over spiking l of r_l x T x FLOPs(l).
    """
    tech = load_table(tech)
    e_mac, e_ac = tech.v("e_mac_pj"), tech.v("e_ac_pj")
    per_layer, counts = {}, {"macs": 0.0, "acs": 0.0, "acs_per_value": 0.0}
    for d in layers:
        src, F = d.get("src"), float(d["flops"])
        kind = d.get("src_kind")
        if kind == "input" and not input_spiking:
            mac, ac, acv = F, 0.0, 0.0
        elif kind == "linear" or src in real_valued:
            mac, ac, acv = F * steps, 0.0, 0.0
        else:
            key = src if src in rates else ("__input__" if kind == "input" and "__input__" in rates else None)
            if key is None:
                raise EnergyError(f"paper view: firing rate of '{src}' (source of layer '{d['name']}') unknown; "
                                  f"have {sorted(rates)}")
            mac, ac = 0.0, float(rates[key]) * steps * F
            acv = float(value_rates.get(key, rates[key])) * steps * F if value_rates else ac
        counts["macs"] += mac
        counts["acs"] += ac
        counts["acs_per_value"] += acv
        per_layer[d["name"]] = {"mac": e_mac * mac, "ac": e_ac * ac}
    totals = {"mac": e_mac * counts["macs"], "ac": e_ac * counts["acs"]}
    total = totals["mac"] + totals["ac"]
    counts["total_pj_per_value"] = totals["mac"] + e_ac * counts["acs_per_value"]
    F = dense_flops(layers)
    counts["dense_flops_per_step"] = float(F)
    ann = e_mac * F
    notes = [f"paper formula on {len(layers)} graph layers as written; T = {steps}; dense-ANN baseline "
             f"E_MAC x {F:,} FLOPs per step (x T = {F * steps:,} per inference)"]
    if value_rates:
        notes.append(f"per unit of event value (a k-count event counts k, Sinabs' convention): "
                     f"{counts['total_pj_per_value']:,.6g} pJ")
    return Estimate("paper", tech.name, PAPER_COMPONENTS, per_layer, None, totals, total, ann,
                    total / ann if ann > 0 else math.nan, counts, True, notes, "paper formula")


def estimate_counters(counters: RunCounters, tech, view: str = "paper", *, activations: dict | None = None) -> Estimate:
    """:func:`estimate` of a run whose counters were read by :func:`energy.readrun.run_counters`."""
    _check_view(view)
    tech = load_table(tech)
    rc = counters
    B, wb, mb, fb, frac = rc.samples, rc.weight_bits, rc.membrane_bits, rc.flit_bits, rc.interchip_frac
    if view == "paper":
        if not rc.graph_layers:
            raise EnergyError(f"paper view: {NO_GRAPH_LAYERS}")
        rates, values, rnotes = measured_rates(rc, activations)
        e = paper_formula(rc.graph_layers, rates, rc.steps, tech, input_name="", input_spiking=rc.input_spiking,
                          real_valued=rc.real_valued, value_rates=values)
        e.notes = [f"per inference: rates over {B} sample(s)"] + e.notes + rnotes
        return e
    notes = [f"per inference: counters summed over {B} sample(s) / {B}"]
    unit = None
    if view == "hardware":
        static_core = tech.v("static_power_per_core_w") * rc.runtime_s * 1e12
        unit, how = hw_unit_energies(tech, wb, mb, rc.memory_kib)
        notes.append(f"runtime {rc.runtime_s * 1e6:.3f} us per inference ({rc.runtime_how}); static "
                     f"{tech.v('static_power_per_core_w') * 1e3:.4g} mW per core")
        notes += how
        if not tech.partial_sums:
            notes.append(f"table {tech.name}: the chip has no partial-sum events; partial sums are not charged "
                         f"(their flits stay in the NoC counters, which do not separate them)")
        if tech.noc_unit == "packet":
            notes.append("NoC energies are per message: flit-hops x packets / flits")
        if "interchip_flits" in rc.counter_names:
            notes.append("inter-chip bits = the run's interchip_flits counter x flit_bits")
        elif frac:
            notes.append(f"inter-chip bits = flit-hops x {frac:.4f} (mapper's inter-chip share) x {fb} bits")
    else:
        static_core = 0.0
    comps = PAPER_COMPONENTS if view == "chip-ops" else HW_COMPONENTS
    per_core = np.zeros((len(rc.per_core), len(comps)))
    for c, cc in enumerate(rc.per_core):
        e = _component_energy(view, tech, cc, wb, mb, fb, frac, static_core, float(rc.core_used[c]), unit)
        per_core[c] = [e[k] for k in comps]
    per_layer = {pop: _component_energy(view, tech, cc, wb, mb, fb, frac, static_core,
                                        rc.layer_cores.get(pop, 0.0), unit)
                 for pop, cc in rc.per_layer.items()}
    if not rc.exact_layers:
        notes.append(f"per-layer split is approximate: core(s) {rc.shared_cores} hold several populations "
                     f"(synapse / neuron shares); per-core and totals are exact")
    totals = {k: float(per_core[:, i].sum()) for i, k in enumerate(comps)}
    if view == "hardware":
        idle = max(0, rc.chip_cores - int(rc.core_used.sum()))
        totals["static_idle"] = static_core * idle
        notes.append(f"static_idle: {idle} core(s) of the occupied chip(s) without tiles, leaking for the run")
    total = float(sum(totals.values()))
    ann = _ann_energy(tech, view, rc.dense_flops, rc.neurons, wb, mb, rc.memory_kib)
    notes.append(f"dense-ANN baseline: {rc.dense_flops:,} FLOPs per step ({rc.baseline_how})")
    snn_cmp = total if view == "chip-ops" else sum(totals[k] for k in HW_GROUPS["compute"] + HW_GROUPS["memory"])
    return Estimate(view, tech.name, comps, per_layer, per_core, totals, total, ann,
                    snn_cmp / ann if ann > 0 else math.nan, dict(rc.totals), rc.exact_layers, notes, "counters")


# ------------------------------------------------------------------ analytic

def analytic(net, firing_rates: dict, steps: int, tech, *, ops: str = "flops", input_steps: int = 1,
             input_rate=1.0) -> Estimate:
    """Paper-view energy from per-layer firing rates, without a simulation.

    For every projection q from population s into layer d (per inference):

    * s is the real-valued graph input: MACs_q = input_rate x input_steps x ops_q,
    * s sends values (an ANN unit, a readout: ``q.mode == "MAC"``): MACs_q = r_s x steps
      x ops_q, r_s its nonzero outputs per neuron per step,
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
        mac = net.is_mac(q)
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
            n = n_ops * (input_steps if q.src == net.input.name else steps)
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
