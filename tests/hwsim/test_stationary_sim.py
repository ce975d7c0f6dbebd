"""The weight-stationary chip simulator (hwsim/stationary.py) against the integer reference:
spike for spike and membrane for membrane, on the shipped models, the NIR CNN and hand-built
layers (groups, stride, padding, > 256 rows, factored pooling, digital layers), with
hand-computed cycle, crossbar-read and cell-operation counts."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from hwsim import simulate
from hwsim.chip import load_chip
from hwsim.stationary import core_layout
from mapper.mapping import Mapping, map_model
from models.errors import SimulationError
from models.intref import simulate_int
from models.net import ConvProjection, DenseProjection, Net, Population, SparseProjection
from models.ops import ConvGeometry
from models.zoo.catalog import load
from snnchip.inputs import load_data
from tests.conftest import NIR_CNN, need

XB = load_chip("crossbar")


def _if(name, shape, th=1.0):
    n = int(np.prod(shape))
    return Population(name, "IF", tuple(shape), {"r": np.ones(n), "v_threshold": np.full(n, th),
                                                 "v_reset": np.zeros(n)})


def _same_as_intref(m, x, **kw):
    r = simulate(m, x, record="all", **kw)
    ref = simulate_int(m.net, x, record="all", **kw)
    assert set(r.spikes) == set(ref.spikes) == {p.name for p in m.net.populations[1:]}
    for k in ref.spikes:
        np.testing.assert_array_equal(r.spikes[k], ref.spikes[k], err_msg=f"spikes of {k}")
        np.testing.assert_array_equal(r.membrane[k], ref.membrane[k], err_msg=f"membrane of {k}")
    np.testing.assert_array_equal(r.output, ref.output)
    return r, ref


def _shipped_inputs(m, samples, steps=None):
    net = m.net
    model = SimpleNamespace(input_shape=tuple(net.input.shape), metadata=dict(net.metadata or {}))
    _, seq = load_data(model, None, samples, None, None if net.input_spiking else "direct")
    return seq.inputs[:steps], seq.labels


@pytest.mark.parametrize("model", ["mnist_mlp", "mnist_cnn", "nir_cnn"])
def test_shipped_models_are_spike_and_membrane_exact(model):
    if model == "nir_cnn":
        need(NIR_CNN)
    m = map_model(load(model), XB, model=model)
    x, labels = _shipped_inputs(m, 4, 60 if model == "nir_cnn" else None)
    r, ref = _same_as_intref(m, x)
    assert sum(int(v.sum()) for v in ref.spikes.values()) > 0  # a run that says something
    T = x.shape[0]
    cps = m.resources()["cycles_per_step"]
    assert r.timing["latency_cycles"].tolist() == [T * cps]
    res = m.resources()
    assert r.totals()["crossbar_reads"] == T * 4 * res["crossbar_reads_per_step"]
    # one definition of the work: the mapping's cell operations per step, as ACs or MACs
    assert r.totals()["acs"] + r.totals()["macs"] == T * 4 * res["cell_macs_per_step"]


def _grouped_conv_net(rng):
    # 64 x 7 x 7 spikes -> conv 3x3, stride 2, padding 1, 2 groups of 32 -> 5 channels each: rows 32 * 9 = 288
    # (two row chunks of 256 + 32), out 10 x 4 x 4; then fc 160 -> 3
    g = ConvGeometry(64, 10, (7, 7), (3, 3), (2, 2), (1, 1), groups=2)
    w = rng.integers(-3, 4, size=(10, 32, 3, 3)).astype(np.float64) / 6
    W2 = rng.integers(-3, 4, size=(3, 160)).astype(np.float64) / 3
    pops = [Population("in", "input", (64, 7, 7)), _if("c", (10, 4, 4)), _if("o", (3,))]
    projs = [ConvProjection("in->c", "in", "c", w, g), DenseProjection("c->o", "c", "o", W2)]
    return Net(pops, projs, "o", input_spiking=True)


def test_grouped_strided_padded_conv_with_two_row_chunks_and_hand_counts():
    rng = np.random.default_rng(1)
    m = map_model(_grouped_conv_net(rng), XB, model="grouped")
    conv, fc = m.layers
    # rows (C_in / g) k k = 288 -> 2 chunks; columns 5 -> 1 block; 2 groups: 4 crossbars; 16 positions
    assert (conv.rows, conv.columns, conv.groups, conv.row_chunks, conv.crossbars, conv.positions) == \
        (288, 5, 2, 2, 4, 16)
    assert (fc.rows, fc.columns, fc.crossbars, fc.positions) == (160, 3, 1, 1)
    x = (rng.random((6, 3, 64, 7, 7)) < 0.3).astype(np.float32)
    r, ref = _same_as_intref(m, x)
    assert int(ref.spikes["c"].sum()) > 0 and int(ref.spikes["o"].sum()) > 0
    # cycles per step: 16 positions x (ceil(5 / 256) + 0) + 1 x (ceil(3 / 256) + 0) + barrier 0 = 17
    assert r.timing["step_cycles"].tolist() == [[17] * 6]
    assert r.timing["latency_us"][0] == pytest.approx(6 * 17 / 10e6 * 1e6)  # 10.2 us at 10 MHz
    tot = r.totals()
    # per sample and step: reads 16 x 4 + 1 x 1 = 65; ACs 16 x 2 x 288 x 5 + 160 x 3 = 46,560;
    # partial-sum adds 16 x 2 x (2 - 1) x 5 = 160; neuron updates 160 + 3
    assert tot["crossbar_reads"] == 6 * 3 * 65
    assert tot["acs"] == 6 * 3 * 46_560 and tot["macs"] == 0
    assert tot["psum_ops"] == 6 * 3 * 160
    assert tot["neuron_updates"] == 6 * 3 * 163
    assert tot["spikes"] == int(ref.spikes["c"].sum() + ref.spikes["o"].sum())
    # input events: the nonzero entries of the patches the conv drove (each input spike once per
    # output position whose patch holds it) plus the fc's nonzero inputs
    assert tot["events"] > int(x.sum())


def test_a_sum_that_needs_the_second_chunk():
    # one column, 300 rows of weight 1: a spike on row 299 only reaches it through chunk 2
    g = ConvGeometry(300, 1, (1, 1), (1, 1))
    net = Net([Population("in", "input", (300, 1, 1)), _if("c", (1, 1, 1), th=2.0)],
              [ConvProjection("in->c", "in", "c", np.ones((1, 300, 1, 1)), g)], "c", input_spiking=True)
    m = map_model(net, XB)
    x = np.zeros((3, 1, 300, 1, 1), np.float32)
    x[:, 0, 299] = 1
    x[1, 0, 3] = 1
    r, ref = _same_as_intref(m, x)
    assert m.layers[0].row_chunks == 2 and r.totals()["psum_ops"] == 3  # (2 - 1) chunk adds x 1 column x 3 steps


def _pooled_net(rng, avg: bool):
    # a 2x2 pool composed into a 3x3 conv as lowering does: kernel 6x6, stride 2, padding 2,
    # the 3x3 kernel repeated on 2x2 blocks (/4 for an average pool); 9 x 9 input (odd: a
    # partial last block); then a depthwise pooling conv between neuron layers (digital) and
    # an identity skip (digital) into the output
    sub = rng.integers(-4, 5, size=(6, 3, 3, 3)).astype(np.float64)
    w = np.repeat(np.repeat(sub, 2, axis=2), 2, axis=3) / (4 if avg else 1)
    g1 = ConvGeometry(3, 6, (9, 9), (6, 6), (2, 2), (2, 2))
    gp = ConvGeometry(6, 6, g1.out_hw, (2, 2), (2, 2), groups=6)
    pooled = gp.out_shape
    g3 = ConvGeometry(6, 6, pooled[1:], (3, 3), (1, 1), (1, 1))
    w3 = rng.integers(-2, 3, size=(6, 6, 3, 3)).astype(np.float64) / 2
    n = int(np.prod(pooled))
    pops = [Population("in", "input", (3, 9, 9)), _if("c1", g1.out_shape), _if("p", pooled, th=2.0),
            _if("o", pooled)]
    projs = [ConvProjection("in->c1", "in", "c1", w, g1),
             ConvProjection("c1->p", "c1", "p", np.full((6, 1, 2, 2), 0.5), gp),
             ConvProjection("p->o", "p", "o", w3, g3),
             SparseProjection("p->o skip", "p", "o", sp.identity(n, format="csr"))]
    return Net(pops, projs, "o", input_spiking=True)


@pytest.mark.parametrize("avg", [False, True])
def test_factored_pooling_and_digital_layers_are_exact(avg):
    rng = np.random.default_rng(2)
    m = map_model(_pooled_net(rng, avg), XB)
    kinds = [(lay.kind, lay.kernel, lay.pool) for lay in m.layers]
    # the 6x6 composed kernel runs as 2x2 sum pooling + the 3x3 kernel; the pooling conv and the skip are digital
    assert kinds == [("conv", (3, 3), (2, 2)), ("digital", (1, 1), (2, 2)), ("conv", (3, 3), (1, 1)),
                     ("digital", (), (1, 1))]
    q = m.net.projections[0]  # the integer kernel is the 3x3 one repeated: the digital sum pool is exact
    sub = np.asarray(q.weight)[:, :, ::2, ::2]
    np.testing.assert_array_equal(np.repeat(np.repeat(sub, 2, axis=2), 2, axis=3), q.weight)
    x = (rng.random((8, 2, 3, 9, 9)) < 0.4).astype(np.float32)
    r, ref = _same_as_intref(m, x)
    assert all(int(ref.spikes[k].sum()) > 0 for k in ("c1", "p", "o"))
    # digital layers read no crossbar: reads per step = 16 positions x 1 crossbar + 4 positions x 1
    c1, _, c3, _ = m.layers
    assert r.totals()["crossbar_reads"] == 8 * 2 * (c1.positions * c1.crossbars + c3.positions * c3.crossbars)
    assert (c1.positions, c3.positions) == (16, 4)


def test_recurrent_and_real_valued_inputs_follow_the_reference():
    from tests.models.primitives import recurrent_cuba_graph

    m = map_model(recurrent_cuba_graph(n_in=20, n=16), XB)
    x = (np.random.default_rng(0).random((30, 4, 20)) < 0.3).astype(np.float32)
    _same_as_intref(m, x)
    mlp = map_model(load("mnist_mlp"), XB)
    assert mlp.net.projections[0].mode == "MAC"
    xr = np.random.default_rng(1).random((5, 2, 1, 28, 28)).astype(np.float32)
    r, _ = _same_as_intref(mlp, xr, reset="zero", v_min="-threshold")
    assert r.totals()["macs"] == 5 * 2 * 784 * 400 and r.totals()["acs"] == 5 * 2 * 400 * 10


def test_core_axis_and_refusals():
    m = map_model(load("mnist_cnn"), XB)
    core_pop, layer_core, pop_core = core_layout(m)
    assert core_pop == ["if1", "if2", "if3"] and len(core_pop) == m.resources()["cores_used"]
    x = np.zeros((2, 1, 1, 28, 28), np.float32)
    with pytest.raises(SimulationError, match="sync"):
        simulate(m, x, mode="pipelined")
    with pytest.raises(SimulationError, match="mode must be 'sync' or 'pipelined'"):
        simulate(m, x, mode="fast")
    piped = map_model(load("mnist_cnn"), XB.with_overrides({"timing.mode": "pipelined"}))
    with pytest.raises(SimulationError, match="mode 'pipelined'"):
        simulate(piped, x)
    assert simulate(piped, x, mode="sync").timing["step_cycles"].tolist() == [[641, 641]]
    with pytest.raises(SimulationError, match="traces"):
        simulate(m, x, aer="/tmp/never.npz")
    with pytest.raises(SimulationError, match="unknown population"):
        simulate(m, x, record=["nope"])


def test_saved_mapping_runs_from_the_cli(tmp_path):
    m = map_model(load("mnist_cnn"), XB, model="mnist_cnn")
    m.save(tmp_path / "ws")
    back = Mapping.load(tmp_path / "ws")
    assert [lay.to_dict() for lay in back.layers] == [lay.to_dict() for lay in m.layers]
    for p, q in zip(back.net.projections, m.net.projections):
        np.testing.assert_array_equal(p.weight, q.weight)
    out = subprocess.run([sys.executable, "-m", "snnchip.cli", "run", str(tmp_path / "ws"), "--samples", "4"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "output spikes identical to the integer reference: yes (4 of 4 samples checked)" in out.stdout
    # 641 cycles per step (576 + 64 + 1) x 32 steps at 10 MHz
    assert "641.0 cycles/step" in out.stdout and "20,512 cycles = 2,051.20 us per inference" in out.stdout
    assert "energy per inference (horowitz45-fp32): paper" in out.stdout
    rep = subprocess.run([sys.executable, "-m", "snnchip.cli", "report", str(tmp_path / "ws" / "run"), "-o",
                          str(tmp_path / "rep")], capture_output=True, text=True, timeout=300)
    assert rep.returncode == 2 and rep.stderr.count("\n") == 1 and "no placement or NoC to draw" in rep.stderr


def test_resnet_skips_and_vgg_factored_pools_are_exact():
    # zoo structures (random weights): ResNet-18's identity skips and pooled skip run in the
    # digital units, VGG-8's 2x2 pools are factored out of the composed 6x6 kernels
    for name, special in (("resnet18:cifar", "digital"), ("vgg8:cifar", "pool")):
        m = map_model(load(name), XB)
        assert any(lay.kind == "digital" if special == "digital" else lay.pool == (2, 2) for lay in m.layers)
        x = np.random.default_rng(0).random((2, 1) + tuple(m.net.input.shape)).astype(np.float32)
        if m.net.input_spiking:
            x = (x < 0.3).astype(np.float32)
        _, ref = _same_as_intref(m, x)
        assert sum(int(v.sum()) for v in ref.spikes.values()) > 0
