"""Every preset maps real models (issue 22): sparse synapse memory (Loihi), axon types
(TrueNorth), spiking input for chips without ANN mode, recurrent CubaLIF on Loihi."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import models
from hwsim.chip import list_presets, load_chip
from mapper.axon_types import assign_axon_types, fit_types, type_violations
from mapper.mapping import EncodingError, map_model, spiking_input
from mapper.quantize import quantize
from mapper.tiling import tile
from mapper.validate import check
from models.net import DenseProjection, Net, Population
from models.zoo.catalog import load
from tests.conftest import NIR_CNN, need

LOIHI = load_chip("loihi")


def _dense_net(W: np.ndarray) -> Net:
    n_post, n_pre = W.shape
    ones = np.ones(n_post)
    pops = [Population("in", "input", (n_pre,)),
            Population("out", "IF", (n_post,), {"r": ones, "v_threshold": ones, "v_reset": 0 * ones})]
    return Net(pops, [DenseProjection("in->out", "in", "out", W)], "out")


# ------------------------------------------------------------------ Loihi: sparse synapse memory

def test_loihi_memory_counts_the_stored_synapses_at_their_width():
    # 6 neurons x 10 inputs with 23 zero weights: 37 synapses stored, each 8-bit weight + 8-bit index
    rng = np.random.default_rng(0)
    W = rng.integers(1, 6, (6, 10)) * rng.choice([-1.0, 1.0], (6, 10))  # |w| >= 1/5 of max: never rounds to 0
    W.ravel()[rng.permutation(60)[:23]] = 0.0
    qnet, _ = quantize(_dense_net(W), LOIHI)
    assert np.count_nonzero(qnet.projections[0].weight) == 37  
    t = tile(qnet, LOIHI)
    mem = t.core_memory()
    assert len(t.tiles) == 1 and t.tiles[0].used_cells == 37
    assert mem.tolist() == [[37 * (8 + 8) // 8, 6 * 24 // 8]]  # 74 B of synapses, 18 B of 24-bit state
    assert check(t, LOIHI, net=qnet) == []


def test_loihi_tiles_narrow_until_their_synapses_fit():
    # 12 neurons x 20 inputs, all 240 weights nonzero, on a Loihi core of 200 B = 1,600 bits:
    # a tile of n neurons needs n * 20 * 16 + n * 24 = 344 n bits, so n <= 4: the 12-neuron block
    # (4,128 bits) is cut to floor(12 * 1600 / 4128) = 4 columns -> 3 tiles of 4 neurons,
    # each 4 * 20 * 16 / 8 = 160 B of synapses + 4 * 24 / 8 = 12 B of state
    W = np.arange(1, 241, dtype=np.float64).reshape(12, 20) / 240
    chip = LOIHI.with_overrides({"core.memory_bytes": 200})
    qnet, _ = quantize(_dense_net(W), chip)
    t = tile(qnet, chip)
    assert [tl.n_neurons for tl in t.tiles] == [4, 4, 4] and [tl.n_axons for tl in t.tiles] == [20] * 3
    assert t.core_memory().tolist() == [[160, 12]] * 3
    assert check(t, chip, net=qnet) == []


def test_loihi_memory_rule_names_the_synapse_bytes():
    W = np.ones((12, 20))
    qnet, _ = quantize(_dense_net(W), LOIHI)
    t = tile(qnet, LOIHI)  # one tile: 240 synapses = 480 B + 36 B state
    v = [x for x in check(t, LOIHI.with_overrides({"core.memory_bytes": 500}), net=qnet) if x.rule == "memory"]
    assert len(v) == 1 and "needs 516 bytes (480 weights + 36 state), core has 500" in v[0].message


def test_loihi_maps_the_shipped_mlp_with_rate_input():
    m = map_model(load("mnist_mlp"), LOIHI, model="mnist_mlp")
    assert m.net.input_spiking and m.net.metadata["encoding"] == "rate"
    assert all(q.mode == "AC" for q in m.net.projections)
    assert "rate-coded spikes (loihi has no ANN mode" in m.report()
    # if1: 400 neurons of fan-in 784; its nonzero synapses x 16 bits + 400 x 24 bits of state = need;
    # the 400-column block is cut to floor(400 x 1,048,576 / need) = 85 columns: 5 tiles, and if2 one
    W1 = m.net.projections[0].weight
    need = int(np.count_nonzero(W1)) * 16 + 400 * 24
    n = 400 * 1_048_576 // need
    W2 = m.net.projections[1].weight
    assert (n, -(-400 // n)) == (85, 5)
    per_tile = [tl.n_neurons for tl in m.tiling.tiles]
    assert per_tile == [85, 85, 85, 85, 60, 10] and m.resources()["cores_used"] == 6
    mem = m.tiling.core_memory()
    assert mem[5, 0] == np.count_nonzero(W2) * 2 and (mem.sum(axis=1) <= 131_072).all()


# ------------------------------------------------------------------ spiking input (--encoding)

def test_spiking_input_equals_lowering_with_spiking_input():
    g = load("mnist_cnn")
    a, b = spiking_input(models.lower(g), "poisson"), models.lower(g, input_spiking=True)
    assert [q.mode for q in a.projections] == [q.mode for q in b.projections] == ["AC", "AC", "AC"]
    assert a.input_spiking and a.metadata["encoding"] == "poisson"
    qa, _ = quantize(a, LOIHI)
    qb, _ = quantize(b, LOIHI)
    for p, q in zip(qa.projections, qb.projections):
        np.testing.assert_array_equal(p.weight, q.weight)


def test_encoding_keyword():
    g = load("mnist_mlp")
    tj = load_chip("tianjic")
    assert map_model(g, tj).net.projections[0].mode == "MAC"          # ANN mode: real values stay
    m = map_model(g, tj, encoding="poisson")
    assert m.net.metadata["encoding"] == "poisson" and m.net.projections[0].mode == "AC"
    with pytest.raises(EncodingError, match="unknown encoding 'latency'"):
        map_model(g, tj, encoding="latency")
    with pytest.raises(EncodingError, match="needs a real-valued input"):
        map_model(models.lower(g, input_spiking=True), tj, encoding="direct")


# ------------------------------------------------------------------ TrueNorth: axon types

def test_fit_types_recovers_an_exact_type_structure():
    # 40 inputs of 4 types, 7 neurons with one weight per type, a random connection bit
    rng = np.random.default_rng(3)
    t = np.repeat(np.arange(4), 10)
    s = np.array([-3.0, -1.0, 1.0, 3.0])[None, :] * rng.uniform(0.5, 1.5, (7, 1))
    c = rng.random((40, 7)) < 0.7
    W = sp.csr_matrix(np.where(c, s[:, t].T, 0.0))
    types, s_fit, approx, _ = fit_types(W, 4)
    assert abs(approx - W).max() < 1e-12                   # zero error on a representable matrix
    assert len({(a, b) for a, b in zip(t, types)}) == 4    # the same partition of the inputs


def test_truenorth_one_axon_per_input_respects_the_types():
    g = load("mnist_mlp")
    tn = load_chip("truenorth")
    m = map_model(g, tn, model="mnist_mlp", axon_copies=1)
    assert m.net.metadata["axon_types"]["input->if1"]["k"] == 4 and type_violations(m.net) == []
    assert "each input one axon of one type" in m.report() and m.resources()["cores_used"] == 10
    # one weight of one neuron changed: that neuron has two weights on one type
    q = m.net.projections[1]
    types = np.asarray(m.net.metadata["axon_types"][q.name]["types"])
    n = 3
    rows = np.flatnonzero(q.weight[n])
    a, b = next((a, b) for a in rows for b in rows if a < b and types[a] == types[b])
    q.weight[n, b] = q.weight[n, a] + 1
    v = [x for x in check(m.tiling, tn, net=m.net) if x.rule == "axon_types"]
    assert len(v) == 1 and f"neuron {n} has" in v[0].message and "if1->if2" in v[0].message


def test_truenorth_input_copies_take_k_rows():
    g = load("mnist_mlp")
    tn = load_chip("truenorth")
    m = map_model(g, tn, model="mnist_mlp")  # default: every input on 4 axons, one per type
    rec = m.net.metadata["axon_types"]["input->if1"]
    assert (rec["k"], rec["copies"]) == (4, 4) and type_violations(m.net) == []
    # each neuron uses at most 4 distinct weights
    W = m.net.projections[0].weight
    assert max(np.unique(r[r != 0]).size for r in W) <= 4
    # 784 inputs x 4 rows = 3,136 rows -> ceil(784 / 64) = 13 chunks x 2 column blocks (256 + 144) = 26;
    # 400 x 4 rows -> ceil(400 / 64) = 7 chunks x 1 block = 7: 33 crossbars, one per core
    assert [t.n_axons for t in m.tiling.tiles[:13]] == [64] * 12 + [16]
    assert m.resources()["cores_used"] == 26 + 7 == 33
    # a fifth weight in one column breaks the rule; 65 inputs on a crossbar break the axons rule
    q = m.net.projections[1]
    q.weight[2, np.flatnonzero(q.weight[2])[0]] = 1 + np.abs(q.weight).max()
    v = [x for x in check(m.tiling, tn, net=m.net) if x.rule == "axon_types"]
    assert len(v) == 1 and "neuron 2 has 5 different weights, 4 axon types" in v[0].message
    t0 = m.tiling.tiles[0]
    t0.n_axons = 65
    v = [x for x in check(m.tiling, tn, net=m.net) if x.rule == "axons"]
    assert len(v) == 1 and "needs 260 axons (65 inputs x 4 copies), core has 256" in v[0].message


def test_axon_type_error_is_reported_per_projection():
    for copies, worst in ((1, 1.0), (4, 0.1)):
        net, rep = assign_axon_types(models.lower(load("mnist_mlp")), 4, copies=copies)
        assert [r["projection"] for r in rep.rows] == ["input->if1", "if1->if2"]
        for r in rep.rows:  # relative rms over the nonzero weights, fraction left unconnected
            assert 0 < r["rms_error"] < worst and 0 < r["unconnected"] < 1 and r["types_used"] <= 4
        assert "rms err" in rep.table()


# ------------------------------------------------------------------ presets x models

# Tianjic and TrueNorth counts come from the unrolled tiler (tests/mapper/test_tiling.py holds the
# rules); the crossbar preset's are derived by hand in tests/mapper/test_stationary.py. Every pair
# also runs on the chip simulator, exact against the integer reference.
EXPECTED_CORES = {
    ("tianjic", "mnist_mlp"): 10, ("tianjic", "mnist_cnn"): 131, ("tianjic", "nir_cnn"): 99,
    ("loihi", "mnist_mlp"): 6, ("truenorth", "mnist_mlp"): 33,
    # crossbar: mlp fc 784x400 = 4 x 2 = 8 crossbars (1 core of 8) + fc 400x10 = 2 (1 core)
    ("crossbar", "mnist_mlp"): 2, ("crossbar", "mnist_cnn"): 3, ("crossbar", "nir_cnn"): 5,
}
EXPECTED_CROSSBARS = {("crossbar", "mnist_mlp"): 10, ("crossbar", "mnist_cnn"): 5, ("crossbar", "nir_cnn"): 5}


PAIRS = [pytest.param(p, m, marks=[pytest.mark.slow] if (p, m) == ("truenorth", "mnist_cnn") else [])
         for p in list_presets() if p != "tiny" for m in ("mnist_mlp", "mnist_cnn", "nir_cnn")]


@pytest.mark.parametrize("preset,model", PAIRS)
def test_every_preset_maps_every_model(preset, model):
    if model == "nir_cnn":
        need(NIR_CNN)
    m = map_model(load(model), load_chip(preset), model=model)
    r = m.resources()
    assert r["chips_used"] == 1
    if (preset, model) in EXPECTED_CORES:
        assert r["cores_used"] == EXPECTED_CORES[preset, model]
    if (preset, model) in EXPECTED_CROSSBARS:
        assert r["crossbars"] == EXPECTED_CROSSBARS[preset, model]
    # ... and runs on the chip (the crossbar preset on hwsim.stationary) spike for spike as the
    # integer reference: 2 shipped samples, 12 steps
    from types import SimpleNamespace

    from hwsim.engine import reference_net, simulate
    from models.intref import simulate_int
    from snnchip.inputs import load_data

    net = m.net
    spec = SimpleNamespace(input_shape=tuple(net.input.shape), metadata=dict(net.metadata or {}))
    _, seq = load_data(spec, None, 2, None, None if net.input_spiking else "direct")
    x = seq.inputs[:12]
    run = simulate(m, x, record="all", timing=False)
    ref = simulate_int(reference_net(net, m.chip.timing.mode), x, record="all")
    for k in ref.spikes:
        np.testing.assert_array_equal(run.spikes[k], ref.spikes[k], err_msg=f"{preset} {model}: {k}")
    assert sum(int(v.sum()) for v in ref.spikes.values()) > 0


# ------------------------------------------------------------------ recurrent CubaLIF on Loihi

def test_recurrent_cubalif_maps_and_runs_exactly_on_loihi():
    from hwsim.engine import simulate
    from models.intref import simulate_int
    from tests.models.primitives import recurrent_cuba_graph

    m = map_model(recurrent_cuba_graph(n_in=20, n=16), LOIHI)
    assert [p.model for p in m.net.populations[1:]] == ["CubaLIF"]
    assert any(q.delay_steps == 1 and q.src == q.dst for q in m.net.projections)  # the recurrent edge
    table = m.quant["table"]
    assert "input->cuba" in table and "cuba->cuba" in table and "rms err" in table  # error per projection
    x = (np.random.default_rng(0).random((40, 8, 20)) < 0.3).astype(np.float32)
    r = simulate(m, x, record="all")
    ref = simulate_int(m.net, x, record="all")
    for k in ref.spikes:
        np.testing.assert_array_equal(r.spikes[k], ref.spikes[k])
        np.testing.assert_array_equal(r.membrane[k], ref.membrane[k])
    assert int(ref.spikes["cuba"].sum()) > 0
