"""Neuron models on the chip: the membrane floor ``v_min`` on every model with a state, and
the CubaLI readout end to end (NIR file -> lower -> quantise -> map -> chip == integer reference)."""

from __future__ import annotations

import nir
import numpy as np
import pytest

import models
from hwsim.chip import load_chip
from hwsim.engine import reference_net, simulate
from mapper.mapping import map_model
from models.errors import SimulationError
from models.graph import Graph
from models.intref import simulate_int
from models.reference import NeuronState
from tests.hwsim.cases import SMALL, same
from tests.models.primitives import cubali_graph


def _neuron(model: str, n: int):
    ones = np.ones(n, np.float32)
    zero = np.zeros(n, np.float32)
    if model == "IF":
        return nir.IF(r=ones, v_threshold=ones, v_reset=zero)
    if model == "LIF":
        return nir.LIF(tau=ones * 8.0, r=ones * 4.0, v_leak=zero, v_threshold=ones, v_reset=zero)
    return nir.CubaLIF(tau_syn=ones * 2.0, tau_mem=ones * 8.0, r=ones * 4.0, v_leak=zero, v_threshold=ones,
                       v_reset=zero, w_in=ones * 2.0)


def floor_graph(model: str, n_in: int = 16, n: int = 12, n_out: int = 6, seed: int = 5) -> Graph:
    """Input -> Affine (mostly inhibitory) -> ``model`` -> Affine -> IF: membranes go well below
    minus the threshold, so a floor binds."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((n, n_in)) * 0.9 - 0.35).astype(np.float32)
    w2 = (rng.standard_normal((n_out, n)) * 0.8 + 0.1).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=w1, bias=np.zeros(n, np.float32)),
        "hid": _neuron(model, n),
        "fc2": nir.Affine(weight=w2, bias=np.full(n_out, 0.05, np.float32)),
        "out": nir.IF(r=np.ones(n_out, np.float32), v_threshold=np.ones(n_out, np.float32),
                      v_reset=np.zeros(n_out, np.float32)),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    names = list(nodes)
    return Graph(nodes, list(zip(names[:-1], names[1:])), dt=1.0)


@pytest.mark.parametrize("mode", ["sync", "pipelined"])
@pytest.mark.parametrize("model", ["IF", "LIF", "CubaLIF"])
def test_membrane_floor_chip_equals_intref(model, mode):
    chip = load_chip("tiny").with_overrides({**SMALL, "timing.mode": mode})
    m = map_model(floor_graph(model), chip)
    x = (np.random.default_rng(0).random((30, 4, 16)) < 0.35).astype(np.float32)
    ref_net = reference_net(m.net, mode)
    free = simulate_int(ref_net, x, record="all")
    lo = -(1 << (m.net.metadata["quant"]["membrane_bits"] - 1))
    theta = int(m.net.pop["hid"].params["v_threshold"].max())
    for v_min in ("-threshold", -0.5):
        r = simulate(m, x, record="all", v_min=v_min, timing_samples=1)
        ref = simulate_int(ref_net, x, record="all", v_min=v_min)
        same(ref, r)
        assert r.meta["v_min"] == v_min
        # the floor binds: without it the hidden membranes go lower and the spikes differ
        assert free.membrane["hid"].min() < ref.membrane["hid"].min()
        assert not np.array_equal(free.spikes["hid"], ref.spikes["hid"])
        floor = -theta if v_min == "-threshold" else int(np.round(-0.5 * m.net.metadata["quant"]["populations"]
                                                                    ["hid"]["unit"]))
        assert ref.membrane["hid"].min() == floor > lo
        assert (r.spikes["hid"].sum() > 0) and (r.timing["step_cycles"] > 0).all()


def test_membrane_floor_at_or_below_the_range_is_no_floor():
    """A floor below the membrane range clips to -2^(M-1), the saturation bound: same run as no floor."""
    m = map_model(floor_graph("IF"), load_chip("tiny").with_overrides(SMALL))
    x = (np.random.default_rng(1).random((20, 3, 16)) < 0.35).astype(np.float32)
    a = simulate(m, x, record="all", timing=False, v_min=-1e300)
    b = simulate(m, x, record="all", timing=False)
    same(simulate_int(m.net, x, record="all"), a)
    np.testing.assert_array_equal(a.membrane["hid"], b.membrane["hid"])


@pytest.mark.parametrize("bad", [0.5, "threshold", float("nan"), True])
def test_membrane_floor_bad_values_raise_before_the_kernel(bad):
    m = map_model(floor_graph("IF"), load_chip("tiny").with_overrides(SMALL))
    with pytest.raises(SimulationError, match="v_min must be"):
        simulate(m, np.zeros((2, 1, 16)), v_min=bad)


def test_sinabs_semantics_nir_cnn_chip_equals_intref(nir_cnn, test100):
    """Sinabs' IAF: multi-spike, subtractive reset, floor at minus the threshold, on the NIR paper CNN."""
    m = map_model(nir_cnn, load_chip("tianjic"))
    x = test100.inputs[:, :3]
    r = simulate(m, x, record="all", spikes="multi", reset="subtract", v_min="-threshold", timing=False)
    ref = simulate_int(m.net, x, record="all", spikes="multi", reset="subtract", v_min="-threshold")
    same(ref, r)
    free = simulate_int(m.net, x, record="all", spikes="multi", reset="subtract")
    assert any(not np.array_equal(free.spikes[k], ref.spikes[k]) for k in ref.spikes)  # the floor binds
    for k in ref.membrane:
        if "v_threshold" in m.net.pop[k].params:
            assert (ref.membrane[k] >= -m.net.pop[k].params["v_threshold"]).all()


@pytest.mark.parametrize("mode", ["sync", "pipelined"])
def test_cubali_readout_end_to_end(tmp_path, mode):
    """NIR's CubaLI, written to a .nir file and read back, runs on the chip exactly as the
    integer reference (membranes and outputs), and its readout follows the float model."""
    path = models.write_nir(cubali_graph(), tmp_path / "cubali.nir")
    g = models.read_nir(path)
    chip = load_chip("tiny").with_overrides({**SMALL, "timing.mode": mode})
    m = map_model(g, chip)
    assert m.net.pop["readout"].model == "CubaLI"
    assert sorted(m.net.pop["readout"].params) == ["alpha_mem_q", "alpha_syn_q", "v_leak"]
    x = (np.random.default_rng(2).random((25, 6, 12)) < 0.4).astype(np.float32)
    r = simulate(m, x, record="all", timing_samples=2)
    ref = simulate_int(reference_net(m.net, mode), x, record="all")
    same(ref, r)
    out = ref.membrane["readout"]
    assert np.array_equal(ref.output.reshape(out.shape), out) and np.abs(out).max() > 100
    assert r.totals()["state_words"] == r.totals()["neuron_updates"] + 2 * 5 * 25 * 6 - 5 * 25 * 6
    if mode == "sync":  # in its membrane unit the readout follows the float CubaLI fed the same spikes
        unit = m.net.metadata["quant"]["populations"]["readout"]["unit"]
        node = g.nodes["readout"]
        st = NeuronState("CubaLI", {f: np.asarray(getattr(node, f), np.float64) for f in
                                    ("tau_syn", "tau_mem", "r", "v_leak", "w_in")}, 6, 5, 1.0, "subtract", "binary")
        w, b = np.asarray(g.nodes["fc2"].weight, np.float64), np.asarray(g.nodes["fc2"].bias, np.float64)
        fl = np.stack([st.step(z @ w.T + b) for z in ref.spikes["lif"].astype(np.float64)])
        assert np.abs(out / unit - fl).max() < 0.03 * np.abs(fl).max()  # 1.2 %: 8 leak fraction bits
    with pytest.raises(Exception, match="CubaLI"):
        map_model(g, load_chip("tianjic"))  # Tianjic lists no CubaLI


def _ann_net(seed: int = 4):
    """Real-valued input -> ANN (quantised ReLU, bias, per-neuron a_max) -> IF: a hybrid layer."""
    from models.net import DenseProjection, Net, Population

    rng = np.random.default_rng(seed)
    inp = Population("in", "input", (10,))
    h = Population("h", "ANN", (14,), {"a_max": rng.uniform(0.6, 1.2, 14)}, bias=rng.normal(0, 0.2, 14))
    o = Population("o", "IF", (5,), {k: np.full(5, v) for k, v in dict(r=1.0, v_threshold=1.0, v_reset=0.0).items()})
    projs = [DenseProjection("d1", "in", "h", rng.normal(0.15, 0.6, (14, 10)), mode="MAC"),
             DenseProjection("d2", "h", "o", rng.normal(0.1, 0.5, (5, 14)), mode="MAC")]
    return Net([inp, h, o], projs, "o", input_spiking=False), rng.random((12, 5, 10))


@pytest.mark.parametrize("mode", ["sync", "pipelined"])
def test_ann_unit_chip_equals_intref(mode):
    """ANN: a = min(max(I, 0), a_max) in float, min(max(I, 0), a_max_q) in integers; its values
    travel as multi-bit events (MACs downstream); chip == integer reference."""
    from models.reference import simulate_net

    net, x = _ann_net()
    m = map_model(net, load_chip("tiny").with_overrides({**SMALL, "timing.mode": mode, "core.spike_payload_bits": 8}))
    qh = m.net.pop["h"]
    assert qh.model == "ANN" and sorted(qh.params) == ["a_max"] and (qh.params["a_max"] >= 1).all()
    r = simulate(m, x, record="all", timing_samples=1)
    ref = simulate_int(reference_net(m.net, mode), x, record="all")
    same(ref, r)
    a = ref.spikes["h"]
    assert np.array_equal(a, ref.membrane["h"]) and (a == 0).any() and (a == qh.params["a_max"]).any()
    assert (a > 1).any() and r.totals()["macs"] > 0 and r.totals()["spikes"] == int(ref.spikes["o"].sum())
    if mode == "sync":  # in its unit the integer activation follows the float one (8-bit input)
        unit = m.net.metadata["quant"]["populations"]["h"]["unit"]
        fl = simulate_net(net, x, record=["h"]).spikes["h"]
        assert np.abs(a / unit - fl).max() < 0.02 * fl.max()
