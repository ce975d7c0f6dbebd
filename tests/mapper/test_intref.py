"""models.intref: hand-computed integer trajectories, exactness against the float
reference, and the accuracy of 8-bit integer networks (the contract in
models/intref.py's docstring).

Accuracy acceptance: with 8-bit weights and the default 16-bit membrane, the
integer reference must stay within 1 percentage point of the float reference.
The float figures are the ones the float reference is held to elsewhere
(tests/models/test_reference.py: NIR paper CNN on N-MNIST test100, 100 correct with
(subtract, multi), 97 with (subtract, binary); tests/models/test_train_smoke.py:
the shipped MNIST MLP / CNN, 1967 / 1980 of MNIST test[8000:10000] at T = 32), so
the float CNN runs (about 70 s) are not repeated here.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import models
from mapper.quantize import quantize
from models.datasets import mnist_sequences, shared_data_dir
from models.errors import SimulationError
from models.intarith import round_half_away, rshift_round, saturate
from models.intref import _IntConv, encode_input, simulate_int
from models.net import ConvProjection, DenseProjection, Net, Population, SparseProjection
from models.ops import ConvGeometry, conv2d
from tests.models.primitives import all_primitives_graph, conv1d_graph


def _pop(name, model, n, shape=None, bias=None, **params):
    return Population(name, model, shape or (n,),
                      {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy() for k, v in params.items()},
                      bias)


def _one_layer(W, pop, spiking=True):
    inp = Population("in", "input", (W.shape[1],))
    return Net([inp, pop], [DenseProjection("in->a", "in", pop.name, np.asarray(W, dtype=np.float64))],
               pop.name, input_spiking=spiking)


# ---- primitives -----------------------------------------------------------------------

def test_rounding_primitives():
    assert [int(rshift_round(np.int64(x), k)) for x, k in
            [(3, 1), (-3, 1), (-5, 2), (-6, 2), (-7, 2), (5, 0), (6, 2)]] == [2, -1, -1, -1, -2, 5, 2]
    assert round_half_away([2.5, -2.5, 0.49, -0.5, 1.5]).tolist() == [3, -3, 0, -1, 2]
    assert saturate(np.array([300, -300, 5]), 9).tolist() == [255, -256, 5]


# ---- hand-computed trajectories ---------------------------------------------------------

def _if_net():
    """1 input -> 2 IF neurons, weights [+1, -1], theta 2, v_reset -0.5: U = 127, so
    W = [127, -127], theta = 254, v_reset = -63.5 -> -64."""
    pop = _pop("a", "IF", 2, r=1.0, v_threshold=2.0, v_reset=-0.5)
    return _one_layer(np.array([[1.0], [-1.0]]), pop)


def test_if_trajectory_with_saturation_by_hand():
    # 9-bit membrane: [-256, 255]; no headroom, no shift, so U = 127 and theta = 254 fits
    qnet, _ = quantize(_if_net(), membrane_bits=9, headroom_bits=0, max_acc_shift=0)
    assert qnet.projections[0].weight.ravel().tolist() == [127, -127]
    assert qnet.pop["a"].params["v_threshold"].tolist() == [254, 254]
    x = np.array([1, 1, 3, 0, 2], dtype=np.float32).reshape(5, 1, 1)
    r = simulate_int(qnet, x, reset="subtract", spikes="binary", record="all")
    # n0: 127; 254 -> spike, 0; 0 + 381 = 381 -> sat 255 -> spike, 1; 1; 1 + 254 = 255 -> spike, 1
    # n1: -127; -254; -254 - 381 -> sat -256; -256; -256 - 254 -> sat -256
    assert r.membrane["a"][:, 0].tolist() == [[127, -127], [0, -254], [1, -256], [1, -256], [1, -256]]
    assert r.spikes["a"][:, 0, 0].tolist() == [0, 1, 1, 0, 1]
    assert r.spike_totals == {"a": 3}
    z = simulate_int(qnet, x, reset="zero", spikes="binary", record="all")
    # n0: 127; 254 -> spike, -64; -64 + 381 = 317 -> sat 255 -> spike, -64; -64; -64 + 254 = 190
    assert z.membrane["a"][:, 0, 0].tolist() == [127, -64, -64, -64, 190]
    assert z.spikes["a"][:, 0, 0].tolist() == [0, 1, 1, 0, 0]


def test_if_multi_spike_by_hand():
    qnet, _ = quantize(_if_net(), membrane_bits=12, headroom_bits=0)
    x = np.array([1, 1, 5, 0, 2], dtype=np.float32).reshape(5, 1, 1)
    r = simulate_int(qnet, x, reset="subtract", spikes="multi", record="all")
    # n0: 127; 254 -> 1 spike, 0; 635 -> floor(635/254) = 2 spikes, 127; 127; 381 -> 1, 127
    assert r.spikes["a"][:, 0, 0].tolist() == [0, 1, 2, 0, 1]
    assert r.membrane["a"][:, 0, 0].tolist() == [127, 0, 127, 127, 127]
    # n1 (12-bit membrane [-2048, 2047]): -127, -254, -889, -889, -1143
    assert r.membrane["a"][:, 0, 1].tolist() == [-127, -254, -889, -889, -1143]


def test_lif_trajectory_by_hand():
    """tau 4, dt 1, r 1, v_leak 0.5, theta 1: weights carry alpha r = 1/4 so U = 508,
    W = 127, v_leak = 254, theta = 508, alpha_q = 1024 (F = 12).
    v <- sat(v + I + rshift_round(1024 (254 - v), 12)) with (x + 2048) >> 12:
      t0: 0 + 127 + (260096 + 2048) >> 12 = 127 + 64                    = 191
      t1: 191 + 0 + (64512 + 2048) >> 12 = 191 + 16                      = 207
      t2: 207 + 254 + (48128 + 2048) >> 12 = 461 + 12                    = 473
      t3: 473 + 0 + (-224256 + 2048) >> 12 = 473 + floor(-54.25) = 473 - 55 = 418
      t4: 418 + 381 + (-167936 + 2048) >> 12 = 799 + floor(-40.5) = 758 >= 508
          -> spike, subtract: 250
    """
    pop = _pop("a", "LIF", 1, tau=4.0, r=1.0, v_leak=0.5, v_threshold=1.0, v_reset=0.0)
    qnet, _ = quantize(_one_layer(np.array([[1.0]]), pop))
    p = qnet.pop["a"].params
    assert (p["alpha_q"][0], p["v_leak"][0], p["v_threshold"][0]) == (1024, 254, 508)
    x = np.array([1, 0, 2, 0, 3], dtype=np.float32).reshape(5, 1, 1)
    r = simulate_int(qnet, x, record="all")
    assert r.membrane["a"].ravel().tolist() == [191, 207, 473, 418, 250]
    assert r.output.ravel().tolist() == [0, 0, 0, 0, 1]


def test_cubalif_trajectory_by_hand():
    """tau_syn 2, tau_mem 4, r 2, w_in 1, theta 0.5: U = 508, W = 127,
    alpha_syn_q = 2048, alpha_mem_q = 1024, theta = 254.
      t0: i = 127;                                   v = 127
      t1: i = 127 + (-260096 + 2048) >> 12 = 64;    v = 127 + 64 + (-130048 + 2048) >> 12 = 191 - 32 = 159
      t2: i = 64 + (-131072 + 2048) >> 12 = 32;     v = 159 + 32 + (-162816 + 2048) >> 12 = 191 - 40 = 151
    """
    pop = _pop("c", "CubaLIF", 1, tau_syn=2.0, tau_mem=4.0, r=2.0, v_leak=0.0, v_threshold=0.5,
               v_reset=0.0, w_in=1.0)
    qnet, _ = quantize(_one_layer(np.array([[1.0]]), pop))
    r = simulate_int(qnet, np.array([1, 0, 0], dtype=np.float32).reshape(3, 1, 1), record="all")
    assert r.membrane["c"].ravel().tolist() == [127, 159, 151]


# ---- exactness against the float reference ----------------------------------------------

def _eighths(rng, shape, typical=8000):
    w = rng.integers(-typical, typical + 1, size=shape).astype(np.float64)
    w.flat[rng.integers(w.size)] = 32767  # so that max|w| = 32767 / 8 and the unit is exactly 8
    return w / 8


def _exact_net(seed=0):
    """Spiking input 2x8x8 -> h1 (IF 3x3x3, a 4x4 stride-2 conv with 2x2-block-constant
    kernel, i.e. pooling composed in) -> h2 (IF 6, dense, recurrent with delay 1)
    -> out (IF 3, dense from h2 + sparse from h1 with delay 2 and a late bias term).
    Every float number is a multiple of 1/8 and max|w| = 32767/8 per projection."""
    rng = np.random.default_rng(seed)
    geom = ConvGeometry(2, 3, (8, 8), (4, 4), (2, 2))
    k = _eighths(rng, (3, 2, 2, 2))
    kernel = np.repeat(np.repeat(k, 2, axis=2), 2, axis=3)
    th = lambda n: 2500 + rng.integers(0, 8000, n) / 8  # noqa: E731
    inp = Population("in", "input", (2, 8, 8))
    h1 = _pop("h1", "IF", 27, (3, 3, 3), bias=rng.integers(-800, 800, 27) / 8, r=1.0, v_threshold=th(27),
              v_reset=-12.5)
    h2 = _pop("h2", "IF", 6, r=1.0, v_threshold=th(6), v_reset=0.0)
    out = _pop("out", "IF", 3, r=1.0, v_threshold=th(3), v_reset=0.25)
    sparse_w = _eighths(rng, (27, 3)) * (rng.random((27, 3)) < 0.5)
    sparse_w[0, 0] = 32767 / 8
    projs = [ConvProjection("c1", "in", "h1", kernel, geom),
             DenseProjection("d2", "h1", "h2", _eighths(rng, (6, 27))),
             DenseProjection("r2", "h2", "h2", _eighths(rng, (6, 6)), delay_steps=1),
             DenseProjection("d3", "h2", "out", _eighths(rng, (3, 6))),
             SparseProjection("s3", "h1", "out", sparse_w, delay_steps=2)]
    projs[4].bias_terms.append((2, rng.integers(-800, 800, 3) / 8))
    return Net([inp, h1, h2, out], projs, "out")


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("spikes", ["binary", "multi"])
def test_integer_equals_float_when_weights_are_representable(reset, spikes):
    net = _exact_net()
    qnet, _ = quantize(net, weight_bits=16, membrane_bits=32)
    units = {k: v["unit"] for k, v in qnet.metadata["quant"]["populations"].items()}
    assert units == {"h1": 8.0, "h2": 8.0, "out": 8.0}
    x = np.random.default_rng(1).integers(0, 3, size=(20, 4, 2, 8, 8)).astype(np.float32)
    f = models.simulate(net, x, reset=reset, spikes=spikes, record="all")
    i = simulate_int(qnet, x, reset=reset, spikes=spikes, record="all")
    assert f.spike_totals["h1"] > 50 and f.spike_totals["out"] > 5  # the test exercises spikes
    np.testing.assert_array_equal(i.output, f.output)
    for k in ("h1", "h2", "out"):
        np.testing.assert_array_equal(i.spikes[k], f.spikes[k])
        np.testing.assert_array_equal(i.membrane[k], 8 * f.membrane[k])
    assert i.spike_totals == {k: int(v) for k, v in f.spike_totals.items()}


@pytest.mark.parametrize("graph", [all_primitives_graph, conv1d_graph])
def test_blas_carrier_equals_pure_int64(graph):
    """Every primitive (LIF, CubaLIF with a recurrent edge, LI, I, Threshold, sparse,
    delays): float-carried integer dot products equal numpy int64 ones."""
    net = models.lower(graph())
    qnet, _ = quantize(net)
    x = (np.random.default_rng(2).random((10, 3) + tuple(net.input.shape)) < 0.4).astype(np.float32)
    for reset, spikes in [("subtract", "binary"), ("zero", "multi")]:
        a = simulate_int(qnet, x, reset=reset, spikes=spikes, record="all")
        b = simulate_int(qnet, x, reset=reset, spikes=spikes, record="all", carrier="int64")
        np.testing.assert_array_equal(a.output, b.output)
        for k in a.membrane:
            np.testing.assert_array_equal(a.membrane[k], b.membrane[k])
            np.testing.assert_array_equal(a.spikes[k], b.spikes[k])
        assert sum(a.spike_totals.values()) > 0


@pytest.mark.parametrize("geom,block", [
    (ConvGeometry(3, 4, (7, 6), (3, 2), (2, 1), (1, 0), (1, 2), 1), None),
    (ConvGeometry(4, 6, (5, 5), (3, 3), (1, 1), (1, 1), (1, 1), 2), None),
    (ConvGeometry(3, 3, (6, 6), (2, 2), (2, 2), (0, 0), (1, 1), 3), None),
    (ConvGeometry(2, 3, (9, 8), (4, 6), (2, 3), (1, 2)), (2, 3)),
    (ConvGeometry(2, 3, (8, 8), (4, 4), (2, 2), (0, 0)), (2, 2)),
])
def test_int_conv_matches_ops_conv2d(geom, block):
    rng = np.random.default_rng(3)
    cin_g = geom.in_channels // geom.groups
    if block is None:
        w = rng.integers(-127, 128, (geom.out_channels, cin_g) + geom.kernel)
    else:
        sub = rng.integers(-127, 128, (geom.out_channels, cin_g, geom.kernel[0] // block[0],
                                       geom.kernel[1] // block[1]))
        w = np.repeat(np.repeat(sub, block[0], axis=2), block[1], axis=3)
    x = rng.integers(0, 6, (5,) + geom.in_shape)
    ref = conv2d(x, w, geom).reshape(5, -1)
    assert ref.dtype == np.int64  # ops.conv2d is exact on int64
    for dtype in (np.float32, np.int64):
        op = _IntConv(w, geom, dtype)
        assert (op.pool is not None) == (block is not None)
        np.testing.assert_array_equal(op(x.reshape(5, -1)), ref)


# ---- inputs --------------------------------------------------------------------------

def test_input_encoding_and_bad_inputs():
    pop = _pop("a", "IF", 1, r=1.0, v_threshold=1.0, v_reset=0.0)
    qreal, _ = quantize(_one_layer(np.array([[1.0] * 5]), pop, spiking=False))
    x = np.array([0.0, 0.5, 1.0, 1.2, -0.1], dtype=np.float32).reshape(1, 1, 5)
    # x * 255 = 0, 127.5, 255, 306, -25.5 -> round half away, clip to [0, 255]
    assert encode_input(qreal, x).ravel().tolist() == [0, 128, 255, 255, 0]
    assert encode_input(qreal, np.full((1, 1, 5), 3.0), input_scale=1.0).ravel().tolist() == [3] * 5
    qspk, _ = quantize(_one_layer(np.array([[1.0] * 5]), pop))
    with pytest.raises(SimulationError, match="non-negative integers"):
        simulate_int(qspk, np.full((2, 1, 5), 0.5))
    with pytest.raises(SimulationError, match="non-negative integers"):
        simulate_int(qspk, np.full((2, 1, 5), -1.0))
    with pytest.raises(SimulationError, match="quantised Net"):
        simulate_int(_one_layer(np.array([[1.0] * 5]), pop), np.zeros((2, 1, 5)))
    with pytest.raises(SimulationError, match="reset must be one of"):
        simulate_int(qspk, np.zeros((2, 1, 5)), reset="soft")
    with pytest.raises(SimulationError, match="carrier"):
        simulate_int(qspk, np.zeros((2, 1, 5)), carrier="float16")


# ---- accuracy acceptance: 8-bit weights, 16-bit membrane ---------------------------------

def _report(name, correct_int, correct_float, n, seconds):
    print(f"\n{name}: float {correct_float}/{n} = {correct_float / n:.2%}, "
          f"int8 {correct_int}/{n} = {correct_int / n:.2%} ({seconds:.1f} s)")


@pytest.fixture(scope="module")
def q_nir_cnn(nir_cnn):
    return quantize(models.lower(nir_cnn), weight_bits=8)[0]


@pytest.mark.slow
@pytest.mark.parametrize("reset,spikes,float_correct", [
    ("subtract", "multi", 100),
    ("subtract", "binary", 97),
])
def test_nir_paper_cnn_int8_accuracy(q_nir_cnn, test100, reset, spikes, float_correct):
    t0 = time.perf_counter()
    r = simulate_int(q_nir_cnn, test100.inputs, reset=reset, spikes=spikes)
    correct = int((r.predict() == test100.labels).sum())
    _report(f"NIR paper CNN, N-MNIST test100, ({reset}, {spikes})", correct, float_correct, 100,
            time.perf_counter() - t0)
    assert abs(correct - float_correct) <= 1  # 1 percentage point of 100


MNIST_DIR = shared_data_dir() / "mnist"


@pytest.fixture(scope="module")
def held_out():
    if not MNIST_DIR.exists():
        pytest.skip(f"shared data not found: {MNIST_DIR} (clone with ../shared beside the project)")
    return mnist_sequences("direct", 32, start=8000, stop=10000)


@pytest.mark.slow
@pytest.mark.parametrize("kind,float_correct", [("mlp", 1967), ("cnn", 1980)])
def test_shipped_mnist_models_int8_accuracy(held_out, kind, float_correct):
    net = models.lower(models.read_nir(models.__path__[0] + f"/zoo/trained/mnist_{kind}.nir"))
    qnet, _ = quantize(net, weight_bits=8)
    t0 = time.perf_counter()
    r = simulate_int(qnet, held_out.inputs, reset="subtract", spikes="binary")
    correct = int((r.predict() == held_out.labels).sum())
    _report(f"MNIST {kind}, test[8000:10000], T=32 (subtract, binary)", correct, float_correct, 2000,
            time.perf_counter() - t0)
    assert abs(correct - float_correct) <= 20  # 1 percentage point of 2,000
