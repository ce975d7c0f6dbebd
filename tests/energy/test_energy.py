"""energy: tables, hand-computed energies in both views, analytic vs counters, NeuroBench counts."""

from __future__ import annotations

import numpy as np
import pytest

import energy
from energy import EnergyError, TechTableError, UnknownTableError
from hwsim.chip import load_chip
from hwsim.engine import simulate
from hwsim.program import compile
from mapper.mapping import map_model
from models.errors import SnnchipError
from models.net import ConvProjection, DenseProjection, Net, Population
from models.ops import ConvGeometry

SMALL = {"core.axons": 64, "core.neurons": 64, "mesh.width": 4, "mesh.height": 4, "mesh.max_chips": 16,
         "core.memory_bytes": 1 << 16, "core.routing_entries": 1024, "core.pe_width": 1}


def _pop(name, model, n, shape=None, **params):
    return Population(name, model, shape or (n,), {k: np.full(n, float(v)) for k, v in params.items()})


def _toy():
    """in(3) -> h(2 IF) -> o(1 IF); W1 has 2 zero weights of 6."""
    inp = Population("in", "input", (3,))
    return Net([inp, _pop("h", "IF", 2, r=1.0, v_threshold=1.0, v_reset=0.0),
                _pop("o", "IF", 1, r=1.0, v_threshold=1.5, v_reset=0.0)],
               [DenseProjection("in->h", "in", "h", np.array([[1.0, 0, 2], [0, 3, 1]])),
                DenseProjection("h->o", "h", "o", np.array([[1.0, 1.0]]))], "o")


@pytest.fixture(scope="module")
def toy_run():
    m = map_model(_toy(), load_chip("tiny").with_overrides(SMALL))
    x = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)[:, None, :]
    r = simulate(m, x, record="all")
    return m, r


# ---------------------------------------------------------------- tables

def test_shipped_tables_and_values():
    assert set(energy.list_tables()) >= {"horowitz45-fp32", "horowitz45-int8", "tianjic28", "loihi"}
    fp = energy.load_table("horowitz45-fp32")
    assert (fp.v("e_mac_pj"), fp.v("e_ac_pj")) == (4.6, 0.9)
    assert fp.e_mac_pj.basis == "source" and "horowitz" in fp.sources
    assert fp.v("e_flit_hop_pj") == pytest.approx(sum(fp.noc_breakdown_pj.values()))
    i8 = energy.load_table("horowitz45-int8")
    assert (i8.v("e_mac_pj"), i8.v("e_ac_pj")) == (0.23, 0.03)
    tj = energy.load_table("tianjic28")
    # issue 19: calibrated at 400 mW, 25 % static (assumption): dynamic 0.3 W per published op rate
    assert tj.v("e_ac_pj") == pytest.approx(0.3e12 / 260e9) and tj.e_ac_pj.basis == "derived"
    assert tj.v("e_mac_pj") == pytest.approx(0.3e12 / 256e9)
    lo = energy.load_table("loihi")
    assert lo.v("e_ac_pj") == 23.6 and lo.v("e_neuron_update_pj") + lo.v("e_spike_pj") == 81.0
    assert lo.v("e_flit_inject_pj") == 1.7 and lo.v("e_flit_hop_pj") == 3.5


def test_bad_tables_raise_typed_errors(tmp_path):
    with pytest.raises(UnknownTableError, match="nosuch.*known: .*horowitz45-fp32"):
        energy.load_table("nosuch")
    d = energy.load_table("horowitz45-fp32").model_dump()
    d["e_ac_pj"]["value"] = -1.0
    with pytest.raises(TechTableError, match="e_ac_pj.value"):
        energy.load_table(d)
    d = energy.load_table("horowitz45-fp32").model_dump()
    del d["e_flit_hop_pj"]
    with pytest.raises(TechTableError, match="e_flit_hop_pj: Field required"):
        energy.load_table(d)
    p = tmp_path / "mine.yaml"
    import yaml

    d = energy.load_table("horowitz45-int8").model_dump()
    d["name"] = "mine"
    d["static_power_per_core_w"] = {"value": 1e-3, "basis": "assumption", "note": "test"}
    p.write_text(yaml.safe_dump(d))
    assert energy.load_table(p).name == "mine"
    assert issubclass(TechTableError, SnnchipError) and issubclass(EnergyError, SnnchipError)


# ---------------------------------------------------------------- hand-computed energies

# Toy run (T = 2, one sample): ACs 8 (step 0: inputs 0, 2 drive 1 + 2 weights, h spikes
# twice into 2 weights; step 1: input 1 drives 1 weight, h spikes twice: 1 + 2), MACs 0,
# neuron updates 6, spikes 6, state words 6, partial sums 0; h and o sit on neighbouring
# cores: 4 spike packets of 1 flit x 1 hop; 3 input events enter from the I/O port 1 hop
# away (io_in_flit_hops 3). weight_bits 8, membrane_bits 16. FLOPs = 3 x 2 + 2 x 1 = 8.
PAPER = {"horowitz45-fp32": 0.9 * 8, "horowitz45-int8": 0.03 * 8, "tianjic28": 8 * 0.3 / 0.26, "loihi": 23.6 * 8}
ANN_PAPER = {"horowitz45-fp32": 36.8, "horowitz45-int8": 1.84, "tianjic28": 8 * 0.3 / 0.256, "loihi": 188.8}
HARDWARE = {
    # compute (ACs + 6 updates) + memory (8 x 8 weight bits x 0.15625 = 10; 6 x 16 x 0.3125 = 30) + NoC 7 hops x 3.13
    "horowitz45-fp32": (7.2 + 5.4) + (10.0 + 30.0) + 21.91,
    "horowitz45-int8": (0.24 + 0.30) + (10.0 + 30.0) + 21.91,
    # calibrated: NoC, memory and neurons are inside the per-op energy (issue 19)
    "tianjic28": 8 * 0.3 / 0.26,
    # 8 x 23.6 + 6 x 52 + 6 spikes x 29 + 7 hops x 3.5 + 4 flits x 1.7
    "loihi": 188.8 + 312.0 + 174.0 + 24.5 + 6.8,
}


def test_toy_counts(toy_run):
    m, r = toy_run
    t = r.totals()
    assert (t["acs"], t["macs"], t["neuron_updates"], t["spikes"], t["flits"], t["flit_hops"]) == (8, 0, 6, 6, 4, 4)
    assert t.get("io_in_flit_hops", 3) == 3
    p = compile(m)
    assert int(np.abs(p.core_xy[0] - p.core_xy[1]).sum()) == 1


def flat(table):
    """The table with its flat figures only: no static power, no width / macro-size curves (the
    hand computations above; the curves and static power have tests of their own)."""
    d = energy.load_table(table).model_dump()
    d["static_power_per_core_w"] = {"value": 0.0, "basis": "assumption", "note": "test"}
    for k in ("e_add_pj_by_bits", "e_mult_pj_by_bits", "e_sram_read_64b_pj_by_kib"):
        d[k] = None
    return energy.load_table(d)


@pytest.mark.parametrize("table", sorted(PAPER))
def test_hand_computed_energies(toy_run, table):
    m, r = toy_run
    e = energy.estimate(r, table, "chip-ops", mapping=m)
    assert e.total_pj == pytest.approx(PAPER[table], abs=1e-9)
    assert e.ann_baseline_pj == pytest.approx(ANN_PAPER[table], abs=1e-9)
    assert e.snn_ann_ratio == pytest.approx(PAPER[table] / ANN_PAPER[table])
    # per layer: h receives the input's 3 + 1 ACs... (ACs 4 on h's core, 4 on o's core)
    assert e.per_layer["h"]["ac"] == pytest.approx(PAPER[table] / 2)
    assert e.per_layer["o"]["ac"] == pytest.approx(PAPER[table] / 2)
    h = energy.estimate(r, flat(table), "hardware", mapping=m)
    io = 0.0 if "io_in_flit_hops" in r.counter_names else -3 * energy.load_table(table).v("e_flit_hop_pj")
    assert h.total_pj == pytest.approx(HARDWARE[table] + io, abs=1e-9)
    assert h.totals["static"] == 0.0
    assert h.per_core.sum() == pytest.approx(h.total_pj)
    assert sum(sum(v.values()) for v in h.per_layer.values()) == pytest.approx(h.total_pj)


def test_hardware_ann_baseline_and_static(toy_run, tmp_path):
    m, r = toy_run
    h = energy.estimate(r, flat("horowitz45-fp32"), "hardware", mapping=m)
    # 8 FLOPs x (4.6 + 8 x 0.15625) + 3 neurons x (0.9 + 16 x 0.3125)
    assert h.ann_baseline_pj == pytest.approx(64.5)
    assert h.snn_ann_ratio == pytest.approx((12.6 + 40.0) / 64.5)
    d = energy.load_table("horowitz45-int8").model_dump()
    d["static_power_per_core_w"] = {"value": 1e-3, "basis": "assumption", "note": "test"}
    s = energy.estimate(r, d, "hardware", mapping=m)
    cycles = float(r.timing["total_cycles"][0])
    # 1 mW x (cycles / 100 MHz) x 2 cores, in pJ
    assert s.totals["static"] == pytest.approx(1e-3 * cycles / 1e8 * 2 * 1e12)


def test_bad_requests(toy_run):
    m, r = toy_run
    with pytest.raises(EnergyError, match="unknown energy view 'chip'"):
        energy.estimate(r, "loihi", "chip", mapping=m)
    with pytest.raises(UnknownTableError):
        energy.estimate(r, "horowitz28", "chip-ops", mapping=m)
    with pytest.raises(EnergyError, match=r"firing rate of 'in' \(source of 'in->h'\) missing"):
        energy.analytic(m.net, {}, 2, "loihi")


def test_counters_read_once_give_the_same_estimates(toy_run):
    m, r = toy_run
    rc = energy.run_counters(r, m)
    assert rc.per_layer["h"]["acs"] == 4 and rc.per_layer["o"]["acs"] == 4  # hand count above
    assert (rc.dense_flops, rc.neurons, rc.samples, rc.steps) == (8, 3, 1, 2)
    for table in PAPER:
        for view in energy.VIEWS[1:]:  # the toy net is built as a Net: no graph layers, no paper view
            assert energy.estimate_counters(rc, table, view).to_dict() == \
                energy.estimate(r, table, view, mapping=m).to_dict()
    assert repr(rc) == "RunCounters(1 sample(s) x 2 steps, 2 cores, 2 layers)"


def test_estimate_repr_is_a_one_line_summary(toy_run):
    m, r = toy_run
    e = energy.estimate(r, "horowitz45-fp32", "chip-ops", mapping=m)
    # 7.2 pJ (8 ACs x 0.9), ANN 36.8 pJ: ratio 0.1957
    assert repr(e) == ("Estimate(chip-ops view, table horowitz45-fp32: 7.2 pJ per inference, SNN/ANN 0.1957; "
                       "2 layers, 2 cores, from counters)")
    # analytic, rates 0.5 over 2 steps: 0.5 x 2 x 8 FLOPs = 8 ACs x 23.6 pJ, as much as the ANN's 8 MACs
    a = energy.analytic(m.net, {"in": 0.5, "h": 0.5}, 2, "loihi")
    assert repr(a) == "Estimate(paper view, table loihi: 188.8 pJ per inference, SNN/ANN 1; 2 layers, from analytic)"


def test_report_reads_the_counters_once(toy_run, tmp_path, monkeypatch):
    import json

    import energy.runstats as rc_module

    m, r = toy_run
    calls = []
    real = rc_module.layer_counters
    monkeypatch.setattr(rc_module, "layer_counters", lambda *a: calls.append(a) or real(*a))
    files = energy.report(r, m, tmp_path)
    assert len(calls) == 1
    doc = json.loads(files["json"].read_text())
    assert len(doc["estimates"]) == 4 * 2  # chip-ops and hardware: a Net without graph layers has no paper view
    fp = next(e for e in doc["estimates"] if e["table"] == "horowitz45-fp32" and e["view"] == "chip-ops")
    assert fp["total_pj"] == pytest.approx(PAPER["horowitz45-fp32"], abs=1e-9)


# ---------------------------------------------------------------- analytic

def test_analytic_small_vgg_equals_paper_formula_by_hand():
    """Small VGG at T = 4: real-valued input (3, 8, 8) -> conv 3x3 pad 1 -> conv 3x3 stride 2 -> fc."""
    rng = np.random.default_rng(0)
    inp = Population("input", "input", (3, 8, 8))
    g1 = ConvGeometry(3, 4, (8, 8), (3, 3), (1, 1), (1, 1))
    g2 = ConvGeometry(4, 8, (8, 8), (3, 3), (2, 2), (1, 1))
    a = _pop("a", "IF", 256, (4, 8, 8), v_threshold=1.0, v_reset=0.0, r=1.0)
    b = _pop("b", "IF", 128, (8, 4, 4), v_threshold=1.0, v_reset=0.0, r=1.0)
    o = _pop("o", "IF", 10, v_threshold=1.0, v_reset=0.0, r=1.0)
    net = Net([inp, a, b, o], [ConvProjection("c1", "input", "a", rng.normal(size=(4, 3, 3, 3)), g1),
                               ConvProjection("c2", "a", "b", rng.normal(size=(8, 4, 3, 3)), g2),
                               DenseProjection("fc", "b", "o", rng.normal(size=(10, 128)))], "o",
              input_spiking=False)
    rates = {"a": 0.2, "b": 0.1, "o": 0.05}
    shapes = {p.name: p.shape for p in net.populations}
    assert shapes == {"input": (3, 8, 8), "a": (4, 8, 8), "b": (8, 4, 4), "o": (10,)}
    # FLOPs: c1 = 3^2 * 8*8 * 3 * 4 = 6912; c2 = 3^2 * 4*4 * 4 * 8 = 4608; fc = 128 * 10 = 1280
    assert [energy.flops(q) for q in net.projections] == [6912, 4608, 1280]
    # E = 4.6 x 6912 + 0.9 x (0.2 x 4 x 4608 + 0.1 x 4 x 1280) = 31795.2 + 3778.56
    e = energy.analytic(net, rates, 4, "horowitz45-fp32")
    assert e.total_pj == pytest.approx(35573.76, abs=1e-9)
    assert e.per_layer["a"]["mac"] == pytest.approx(31795.2)
    assert e.per_layer["b"]["ac"] == pytest.approx(3317.76)
    assert e.per_layer["o"]["ac"] == pytest.approx(460.8)
    assert e.ann_baseline_pj == pytest.approx(4.6 * (6912 + 4608 + 1280))
    # int8 table: 0.23 x 6912 + 0.03 x 4198.4
    assert energy.analytic(net, rates, 4, "horowitz45-int8").total_pj == pytest.approx(1589.76 + 125.952)


def _dense_net(zero_some: bool):
    rng = np.random.default_rng(3)
    w1 = rng.uniform(0.5, 1.0, (6, 8)) * rng.choice([-1, 1], (6, 8))
    w2 = rng.uniform(0.5, 1.0, (3, 6))
    if zero_some:
        w1[:, 0] = 0.0      # pre neuron 0 drives nothing
        w1[2:, 5] = 0.0     # pre neuron 5 drives 2 of 6
    net = Net([Population("in", "input", (8,)), _pop("h", "IF", 6, r=1.0, v_threshold=0.6, v_reset=0.0),
               _pop("o", "IF", 3, r=1.0, v_threshold=1.0, v_reset=0.0)],
              [DenseProjection("in->h", "in", "h", w1), DenseProjection("h->o", "h", "o", w2)], "o")
    return net


@pytest.mark.parametrize("zero_some", [False, True])
def test_analytic_vs_counters_both_sides(zero_some):
    """Per-layer rates x FLOPs equal the chip's ACs iff every pre neuron drives n_post nonzero weights."""
    net = _dense_net(zero_some)
    m = map_model(net, load_chip("tiny").with_overrides(SMALL))
    rng = np.random.default_rng(1)
    T, B = 6, 5
    x = (rng.random((T, B, 8)) < 0.4).astype(np.float32)
    r = simulate(m, x, record="all", timing=False)
    tab = "horowitz45-fp32"
    chip_e = energy.estimate(r, tab, "chip-ops", mapping=m)
    layer_rates = energy.run_rates(r, m.net, x, per_neuron=False)
    paper = energy.analytic(m.net, layer_rates, T, tab)
    exact = energy.analytic(m.net, energy.run_rates(r, m.net, x), T, tab, ops="synapses", input_steps=T)
    assert exact.total_pj == pytest.approx(chip_e.total_pj, abs=1e-6)   # per-neuron rates: always exact
    for layer in ("h", "o"):
        assert exact.per_layer[layer]["ac"] == pytest.approx(chip_e.per_layer[layer]["ac"], abs=1e-6)
    assert paper.per_layer["o"]["ac"] == pytest.approx(chip_e.per_layer["o"]["ac"], abs=1e-6)  # w2 has no zeros
    if not zero_some:
        assert paper.total_pj == pytest.approx(chip_e.total_pj, abs=1e-6)
    else:
        # counters skip zero weights: the gap is E_AC x sum_i c_i (n_post - f_i) per sample
        c = (x != 0).sum(axis=(0, 1))
        f = np.count_nonzero(m.net.projections[0].weight, axis=0)
        gap = 0.9 * float(c @ (6 - f)) / B
        assert gap > 1.0
        assert paper.total_pj - chip_e.total_pj == pytest.approx(gap, abs=1e-6)


# ---------------------------------------------------------------- NeuroBench

def test_neurobench_hand_count(toy_run):
    m, r = toy_run
    x = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float64)[:, None, :]
    acts = {"in": x, "h": r.spikes["h"], "o": r.spikes["o"]}
    nb = energy.neurobench(m.net, acts)
    # Effective: step 0: in 0 -> 1 weight, in 2 -> 2, h0 + h1 -> 2; step 1: in 1 -> 1, h -> 2: 8
    assert nb["Effective_ACs"] == 8 and nb["Effective_MACs"] == 0
    assert nb["Dense"] == 2 * (3 * 2 + 2 * 1)                     # T x all-ones ops
    assert nb["connection_sparsity"] == pytest.approx(2 / 8)      # 2 zero weights of 8
    np.testing.assert_array_equal(r.spikes["h"][:, 0], [[1, 1], [1, 1]])
    assert nb["activation_sparsity"] == 0.0                       # all 6 outputs of h, o spiked
    run = energy.neurobench_from_run(r, m)
    for k in ("Effective_ACs", "Effective_MACs", "Dense", "activation_sparsity", "connection_sparsity"):
        assert run[k] == pytest.approx(nb[k])
    # real-valued input -> MACs; a conv's Dense skips padding taps
    nb2 = energy.neurobench(m.net, {**acts, "in": 0.5 * x})
    assert nb2["Effective_MACs"] == 4 and nb2["Effective_ACs"] == 4
    g = ConvGeometry(1, 1, (3, 3), (3, 3), (1, 1), (1, 1))
    q = ConvProjection("c", "in", "h", np.ones((1, 1, 3, 3)), g)
    assert energy.flops(q) == 81 and energy.dense_ops(q) == 49   # 4 x 4 + 4 x 6 + 1 x 9
