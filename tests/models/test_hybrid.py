"""Hybrid ANN/SNN networks (issue 22 item 6): IF nodes listed in ``metadata["ann_layers"]``
run as ANN units (``models.neurons`` model ``ANN``: ``a = clip(I, 0, a_max)``, the next
layer's MAC operand, 8-bit on the chip); the conversion that makes them from a trained
QCFS network, lowering, the chip against the integer reference and the MAC counters."""

from __future__ import annotations

import nir
import numpy as np
import pytest

import models
from models.errors import GraphError
from models.graph import Graph
from models.train import hybridize, model_from_graph

ZOO = models.__path__[0] + "/zoo/trained/"


@pytest.fixture(scope="module")
def cnn():
    return models.read_nir(ZOO + "mnist_cnn.nir")


def _mnist(n, T):
    from models.datasets import mnist_sequences

    return mnist_sequences("direct", T, start=8000, stop=8000 + n)


def test_hybridize_keeps_the_trained_network(cnn):
    """model_from_graph(hybridize(g)) is the QCFS ANN g was converted from (float32 rounding)."""
    h = hybridize(cnn, (0,))
    assert h.metadata["ann_layers"] == "if1" and h.ann_layers == ("if1",)
    a, b = model_from_graph(cnn), model_from_graph(h)
    for la, lb in zip(a.linear_layers(), b.linear_layers()):
        np.testing.assert_allclose(la.params["weight"], lb.params["weight"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(la.params["bias"], lb.params["bias"], rtol=0, atol=1e-6)
    # the ANN layer has no 1/(2T) shift, the SNN layers keep theirs: biases differ by exactly 1/(2T)
    T = int(cnn.metadata["steps"])
    d = np.asarray(cnn.nodes["conv1"].bias, np.float64) - np.asarray(h.nodes["conv1"].bias, np.float64)
    np.testing.assert_allclose(d, 1.0 / (2 * T), atol=1e-6)
    np.testing.assert_allclose(h.nodes["fc1"].weight, cnn.nodes["fc1"].weight, rtol=1e-6, atol=0)  # same SNN layer


def test_lowering_and_nir_round_trip(cnn, tmp_path):
    h = hybridize(cnn, (0,))
    net = models.lower(h)
    assert [p.model for p in net.populations] == ["input", "ANN", "IF", "IF"]
    assert {q.src: q.mode for q in net.projections} == {"input": "MAC", "if1": "MAC", "if2": "AC"}
    np.testing.assert_array_equal(net.pop["if1"].params["a_max"], 1.0)  # the IF node's threshold
    models.write_nir(h, tmp_path / "h.nir")
    back = models.read_nir(tmp_path / "h.nir")
    assert back.ann_layers == ("if1",) and [p.model for p in models.lower(back).populations][1] == "ANN"


def _graph(meta, r=1.0):
    w = np.array([[1.0, 0.5], [-1.0, 2.0]])
    return Graph.sequential([("fc", nir.Affine(w, np.zeros(2))),
                             ("if1", nir.IF(np.full(2, r), np.ones(2), np.zeros(2))),
                             ("fc2", nir.Affine(w, np.zeros(2))),
                             ("if2", nir.IF(np.ones(2), np.ones(2), np.zeros(2)))], (2,), metadata=meta)


@pytest.mark.parametrize("meta, r, match", [
    ({"ann_layers": "fc"}, 1.0, "node 'fc': listed in metadata ann_layers but a Affine node"),
    ({"ann_layers": "if9"}, 1.0, "node 'if9': listed in metadata ann_layers but not in the graph"),
    ({"ann_layers": "if1"}, 2.0, "node 'if1': an ANN layer reads its input current unscaled; r \\* dt must be 1"),
    ({"ann_layers": ["if1"]}, 1.0, "metadata ann_layers must be a comma-separated string"),
])
def test_bad_ann_layers_are_refused_naming_the_node(meta, r, match):
    with pytest.raises(GraphError, match=match):
        _graph(meta, r)


def test_ann_unit_by_hand_float_and_integer():
    """a = clip(I, 0, a_max) in float; a_q = clip(I_q, 0, a_max_q) with a_max_q <= 2^input_bits - 1."""
    from mapper.quantize import quantize
    from models.intref import simulate_int
    from models.reference import simulate

    g = _graph({"ann_layers": "if1"})
    net = models.lower(g, input_spiking=False)
    x = np.array([[[1.0, 0.0]], [[0.2, 0.4]], [[0.0, 0.3]]])  # (T=3, B=1, 2), real-valued
    r = simulate(net, x, record=["if1"])
    # I = W x: (1, -1), (0.4, 0.6), (0.15, 0.6) -> clip to [0, 1]
    np.testing.assert_allclose(r.spikes["if1"][:, 0], [[1.0, 0.0], [0.4, 0.6], [0.15, 0.6]])
    qnet, _ = quantize(net, input_bits=8)
    amax = np.asarray(qnet.pop["if1"].params["a_max"])
    assert (amax >= 1).all() and (amax <= 255).all()
    ri = simulate_int(qnet, x, record=["if1"])
    a = ri.spikes["if1"]
    assert a.min() >= 0 and a.max() <= amax.max() and a[0, 0, 0] == amax[0]  # I = 1 = a_max: the ceiling


def test_hybrid_cnn_on_the_chip_equals_the_integer_reference_and_counts_macs(cnn):
    """Chip == integer reference (every population); MACs = events x stored fan-out for
    the value-sending sources (pixels and the ANN layer), ACs for the spiking one."""
    from hwsim import load_chip
    from hwsim.engine import simulate
    from mapper.mapping import map_model
    from models.intref import simulate_int

    seq = _mnist(6, 8)  # test[8000:8006]: in the shipped subset when ../shared is absent
    h = hybridize(cnn, (0,), steps=8)
    m = map_model(models.lower(h), load_chip("tianjic"))
    r = simulate(m, seq.inputs, record="all", timing=False)
    ref = simulate_int(m.net, seq.inputs, record="all")
    for k in ref.spikes:
        np.testing.assert_array_equal(r.spikes[k], ref.spikes[k], err_msg=k)
    q = {p.src: p for p in m.net.projections}
    x = np.asarray(seq.inputs)
    pix = (x.reshape(x.shape[0], x.shape[1], -1) != 0).sum(axis=(0, 1))  # events per pixel (nonzero values)
    ann = (ref.spikes["if1"].reshape(x.shape[0], x.shape[1], -1) != 0).sum(axis=(0, 1))
    spk = ref.spikes["if2"].reshape(x.shape[0], x.shape[1], -1).sum(axis=(0, 1))
    tot = r.totals()
    assert tot["macs"] == int(pix @ q["input"].fan_out() + ann @ q["if1"].fan_out())
    assert tot["acs"] == int(spk @ q["if2"].fan_out())
    assert int(ann.sum()) > 0 and 0 < ref.spikes["if1"].max() <= 255


def test_activation_payload_rule(cnn):
    """An ANN layer's 8-bit activations need an 8-bit event payload: a binary-event chip refuses
    the mapping naming the population and the field; with the payload it maps."""
    from hwsim import load_chip
    from mapper.mapping import map_model
    from mapper.validate import MappingError

    net = models.lower(hybridize(cnn, (0,)))
    chip = load_chip("tianjic")
    with pytest.raises(MappingError, match=r"payload: if1: ANN activations up to 1\d\d need 8 payload bits per event, "
                                           r"core.spike_payload_bits is 0"):
        map_model(net, chip.with_overrides({"core.spike_payload_bits": 0}))
    # the unit is U_w / 2^K (a power-of-two step): a_max_q lands in (127, 255]
    assert 128 <= map_model(net, chip).net.pop["if1"].params["a_max"].max() <= 255
