"""mapper.quantize: hand-computed integer weights, thresholds, biases, leaks and shifts.

Hand computation (weight_bits 8 -> Wmax = 127, round half away from zero):

* IF, dt = 1, r = 1, W = [[0.5, -0.25, 0.1], [1.0, 0.3, -0.7]]: max|w| = 1 so the
  unit is U = 127 / 1 = 127; W * 127 = [[63.5, -31.75, 12.7], [127, 38.1, -88.9]]
  -> [[64, -32, 13], [127, 38, -89]]; theta [0.5, 1.0] -> [63.5, 127] -> [64, 127];
  v_reset [-0.25, 0] -> [-32, 0]; bias [0.02, -0.1] -> [2.54, -12.7] -> [3, -13].
* LIF tau = 4, dt = 1, F = 12: alpha_q = 4096 / 4 = 1024.
* Real-valued input (MAC): s_x = 255; W = [[0.5], [-1.0]] into one IF neuron with
  theta = 1: U_w = 127 * 255 / 1 = 32385, beyond the 16-bit headroom limit
  32767 / 4 = 8191.75; K = 2 gives U = 8096.25 -> theta_int = 8096, accumulator
  shift 2, weight scale 8096.25 * 4 / 255 = 127 -> weights [64, -127].
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from mapper.quantize import QuantizationError, quantize
from models.errors import SnnchipError
from models.net import ConvProjection, DenseProjection, Net, Population, SparseProjection
from models.ops import ConvGeometry


def _full(v, n):
    return np.full(n, float(v))


def _if(name, n, theta=1.0, reset=0.0, r=1.0, bias=None, shape=None):
    th = np.broadcast_to(np.asarray(theta, dtype=np.float64), (n,)).copy()
    vr = np.broadcast_to(np.asarray(reset, dtype=np.float64), (n,)).copy()
    rr = np.broadcast_to(np.asarray(r, dtype=np.float64), (n,)).copy()
    return Population(name, "IF", shape or (n,), dict(r=rr, v_threshold=th, v_reset=vr), bias)


def _dense_net(W, pop, spiking=True, dt=1.0):
    inp = Population("in", "input", (W.shape[1],))
    proj = DenseProjection("in->a", "in", pop.name, np.asarray(W, dtype=np.float32),
                           mode="AC" if spiking else "MAC")
    return Net([inp, pop], [proj], pop.name, dt=dt, input_spiking=spiking)


W23 = np.array([[0.5, -0.25, 0.1], [1.0, 0.3, -0.7]])


def test_dense_weights_threshold_reset_bias_by_hand():
    pop = _if("a", 2, theta=[0.5, 1.0], reset=[-0.25, 0.0], bias=np.array([0.02, -0.1]))
    net = _dense_net(W23, pop)
    qnet, report = quantize(net)
    q = qnet.projections[0]
    assert q.weight.dtype == np.int32
    np.testing.assert_array_equal(q.weight, [[64, -32, 13], [127, 38, -89]])
    a = qnet.pop["a"]
    np.testing.assert_array_equal(a.params["v_threshold"], [64, 127])
    np.testing.assert_array_equal(a.params["v_reset"], [-32, 0])
    np.testing.assert_array_equal(a.bias, [3, -13])
    assert set(a.params) == {"v_threshold", "v_reset"}  # r is folded into the weights
    meta = qnet.metadata["quant"]
    assert meta["populations"]["a"]["unit"] == 127.0
    assert meta["projections"]["in->a"] == dict(acc_shift=0, weight_scale=127.0, input_scale=1.0)
    (pr,) = report.projections
    # errors |W/127 - w| = [0.5, 0.25, 0.3; 0, 0.1, 0.1] / 127, relative to max|w| = 1
    assert pr.max_err_rel == pytest.approx(0.5 / 127)
    assert pr.rms_err_rel == pytest.approx(np.sqrt((0.25 + 0.0625 + 0.09 + 0.01 + 0.01) / 6) / 127)
    assert pr.max_abs_int == 127 and pr.zero_frac == 0.0
    assert pr.acc_bound == 127 + 38 + 89
    (pp,) = report.populations
    assert pp.theta_int == 127 and pp.margin == pytest.approx(32767 / 127)
    table = report.table()
    assert "in->a" in table and "127" in table


def test_neuron_factor_is_folded_into_weights():
    # IF with dt = 0.5 and r = [2, 4]: effective weights w * dt * r = W * [1, 2] per row
    pop = _if("a", 2, theta=1.0, r=[2.0, 4.0], bias=np.array([0.1, 0.1]))
    net = _dense_net(W23, pop, dt=0.5)
    qnet, _ = quantize(net)
    # max|w_eff| = 2.0 -> U = 63.5; W_eff * 63.5 = [[31.75, -15.875, 6.35], [127, 38.1, -88.9]]
    np.testing.assert_array_equal(qnet.projections[0].weight, [[32, -16, 6], [127, 38, -89]])
    np.testing.assert_array_equal(qnet.pop["a"].params["v_threshold"], [64, 64])  # 63.5 -> 64
    np.testing.assert_array_equal(qnet.pop["a"].bias, [6, 13])  # 0.1 * [1, 2] * 63.5 = 6.35, 12.7


def test_lif_leak_fixed_point():
    pop = Population("a", "LIF", (1,), dict(tau=_full(4, 1), r=_full(2, 1), v_leak=_full(0.1, 1),
                                              v_threshold=_full(1, 1), v_reset=_full(0, 1)))
    qnet, _ = quantize(_dense_net(np.array([[1.0]]), pop), leak_frac_bits=12)
    p = qnet.pop["a"].params
    assert p["alpha_q"].tolist() == [1024]  # round(1/4 * 2^12)
    # weights carry alpha r = 0.5 -> U = 254; v_leak 0.1 * 254 = 25.4 -> 25; theta 254
    assert qnet.metadata["quant"]["populations"]["a"]["unit"] == 254.0
    assert qnet.projections[0].weight.tolist() == [[127]]
    assert p["v_leak"].tolist() == [25] and p["v_threshold"].tolist() == [254]
    pop8 = Population("a", "LIF", (1,), dict(tau=_full(3, 1), r=_full(1, 1), v_leak=_full(0, 1),
                                               v_threshold=_full(1, 1), v_reset=_full(0, 1)))
    q8, _ = quantize(_dense_net(np.array([[1.0]]), pop8), leak_frac_bits=8)
    assert q8.pop["a"].params["alpha_q"].tolist() == [85]  # 256 / 3 = 85.33


def test_cubalif_parameters():
    p = dict(tau_syn=_full(2, 1), tau_mem=_full(4, 1), r=_full(2, 1), v_leak=_full(0, 1),
             v_threshold=_full(0.5, 1), v_reset=_full(0, 1), w_in=_full(1, 1))
    qnet, _ = quantize(_dense_net(np.array([[1.0]]), Population("c", "CubaLIF", (1,), p)))
    c = qnet.pop["c"].params
    assert c["alpha_syn_q"].tolist() == [2048] and c["alpha_mem_q"].tolist() == [1024]
    # weights carry alpha_syn w_in alpha_mem r = 0.5 * 1 * 0.25 * 2 = 0.25 -> U = 508
    assert qnet.metadata["quant"]["populations"]["c"]["unit"] == 508.0
    assert c["v_threshold"].tolist() == [254]


def test_real_valued_input_uses_accumulator_shift():
    pop = _if("a", 1, theta=1.0)
    net = _dense_net(np.array([[0.5, -1.0]]), pop, spiking=False)
    qnet, report = quantize(net)
    meta = qnet.metadata["quant"]
    assert meta["input_scale"] == 255.0
    assert meta["populations"]["a"]["unit"] == 8096.25
    assert meta["projections"]["in->a"]["acc_shift"] == 2
    assert meta["projections"]["in->a"]["weight_scale"] == 127.0
    assert qnet.projections[0].weight.tolist() == [[64, -127]]
    assert qnet.pop["a"].params["v_threshold"].tolist() == [8096]
    # without shifts the unit stays 32385: a threshold of 2 (64770) no longer fits 16 bits
    net2 = _dense_net(np.array([[0.5, -1.0]]), _if("a", 1, theta=2.0), spiking=False)
    with pytest.raises(QuantizationError, match="'a' v_threshold: integer value 64770 does not fit"):
        quantize(net2, max_acc_shift=0)
    assert quantize(net2)[0].metadata["quant"]["projections"]["in->a"]["acc_shift"] == 3
    # with a 24-bit membrane it fits without a shift
    q24, _ = quantize(net, membrane_bits=24)
    assert q24.metadata["quant"]["projections"]["in->a"]["acc_shift"] == 0
    assert q24.pop["a"].params["v_threshold"].tolist() == [32385]


def test_mixed_input_scales_share_one_membrane_unit():
    """input (real, s = 255) -> a (IF); a -> c and input -> c: c's unit is set by a -> c
    (U_w = 127 / 0.5 = 254); input -> c gets the largest shift k with 254 * 2^k <= 127 * 255 / 1,
    k = 6, weight scale 254 * 64 / 255 = 63.749..."""
    inp = Population("in", "input", (2,))
    a, c = _if("a", 2), _if("c", 1)
    projs = [DenseProjection("in->a", "in", "a", np.eye(2), mode="MAC"),
             DenseProjection("a->c", "a", "c", np.array([[0.5, -0.25]])),
             DenseProjection("in->c", "in", "c", np.array([[1.0, 0.5]]), mode="MAC")]
    qnet, _ = quantize(Net([inp, a, c], projs, "c", input_spiking=False))
    m = qnet.metadata["quant"]
    assert m["populations"]["c"]["unit"] == 254.0
    assert m["projections"]["a->c"]["acc_shift"] == 0
    assert m["projections"]["in->c"]["acc_shift"] == 6
    assert qnet.projections[2].weight.tolist() == [[64, 32]]  # 63.75 -> 64, 31.87 -> 32
    assert qnet.projections[1].weight.tolist() == [[127, -64]]  # -63.5 -> -64


def test_avg_pool_pre_map_is_folded_and_irregular_pre_map_expanded():
    # 4 pre neurons pooled in pairs (c = 0.5) in front of a 2 x 2 dense layer
    pm = sp.csr_matrix(np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]))
    W = np.array([[1.0, -0.5], [0.25, 2.0]])
    inp, a = Population("in", "input", (4,)), _if("a", 2)
    net = Net([inp, a], [DenseProjection("p", "in", "a", W, pm)], "a")
    qnet, _ = quantize(net)
    q = qnet.projections[0]
    assert isinstance(q, DenseProjection) and q.pre_map.dtype == np.int32
    np.testing.assert_array_equal(q.pre_map.toarray(), [[1, 1, 0, 0], [0, 0, 1, 1]])
    # effective weights 0.5 W, max 1.0 -> U = 127: [[63.5, -31.75], [15.875, 127]]
    np.testing.assert_array_equal(q.weight, [[64, -32], [16, 127]])
    # unequal coefficients -> explicit CSR of the effective weights
    pm2 = sp.csr_matrix(np.array([[0.5, 0.25, 0, 0], [0, 0, 0.5, 0.5]]))
    q2 = quantize(Net([inp, a], [DenseProjection("p", "in", "a", W, pm2)], "a"))[0].projections[0]
    assert isinstance(q2, SparseProjection) and q2.csr.dtype == np.int32
    eff = (pm2.T @ W.T).toarray() if sp.issparse(pm2.T @ W.T) else pm2.T @ W.T
    np.testing.assert_array_equal(q2.csr.toarray(), np.sign(eff) * np.floor(np.abs(eff) * 127 + 0.5))


def test_conv_kernel_quantised_per_channel_factor():
    g = ConvGeometry(1, 2, (3, 3), (2, 2))
    w = np.array([[[[1.0, -0.5], [0.25, 0.0]]], [[[0.5, 0.5], [-1.0, 0.125]]]])
    inp = Population("in", "input", (1, 3, 3))
    # r differs per output channel (uniform over positions): factors [1, 0.5]
    r = np.repeat([1.0, 0.5], 4)
    a = _if("a", 8, r=r, shape=(2, 2, 2))
    qnet, rep = quantize(Net([inp, a], [ConvProjection("c", "in", "a", w, g)], "a"))
    q = qnet.projections[0]
    assert isinstance(q, ConvProjection) and q.weight.dtype == np.int32
    # max |w * f| = 1.0 -> U = 127; channel 1 scaled by 0.5: [31.75, 31.75, -63.5, 7.9375]
    np.testing.assert_array_equal(q.weight[0, 0], [[127, -64], [32, 0]])
    np.testing.assert_array_equal(q.weight[1, 0], [[32, 32], [-64, 8]])
    assert rep.projections[0].zero_frac == 0.0  # the float 0.0 is not counted
    r_bad = np.arange(1, 9, dtype=float)
    bad = _if("a", 8, r=r_bad, shape=(2, 2, 2))
    with pytest.raises(QuantizationError, match="'c'.*varies within an output channel"):
        quantize(Net([inp, bad], [ConvProjection("c", "in", "a", w, g)], "a"))


def test_qnet_is_independent_and_serialisable():
    pop = _if("a", 2, bias=np.array([0.02, -0.1]))
    net = _dense_net(W23, pop)
    qnet, _ = quantize(net)
    assert qnet.quantized is True and not getattr(net, "quantized", False)
    json.dumps(qnet.metadata["quant"])
    for qa, fa in [(qnet.projections[0].weight, net.projections[0].weight), (qnet.pop["a"].bias, net.pop["a"].bias)]:
        assert not np.shares_memory(qa, fa)
    assert net.projections[0].weight.dtype == np.float32  # the float net is untouched
    with pytest.raises(QuantizationError, match="already quantised"):
        quantize(qnet)


def test_chip_settings_and_conflicts():
    chip = SimpleNamespace(core=SimpleNamespace(weight_bits=4, membrane_bits=12, leak_frac_bits=8))
    qnet, rep = quantize(_dense_net(W23, _if("a", 2)), chip)
    m = qnet.metadata["quant"]
    assert (m["weight_bits"], m["membrane_bits"], m["leak_frac_bits"]) == (4, 12, 8)
    # Wmax = 7: W * 7 = [[3.5, -1.75, 0.7], [7, 2.1, -4.9]]
    np.testing.assert_array_equal(qnet.projections[0].weight, [[4, -2, 1], [7, 2, -5]])
    with pytest.raises(QuantizationError, match="weight_bits=8 contradicts"):
        quantize(_dense_net(W23, _if("a", 2)), chip, weight_bits=8)


@pytest.mark.parametrize("kw,match", [
    (dict(weight_bits=1), "weight_bits must be in"),
    (dict(membrane_bits=64), "membrane_bits must be in"),
    (dict(max_input=0.0), "max_input"),
])
def test_bad_settings(kw, match):
    with pytest.raises(QuantizationError, match=match):
        quantize(_dense_net(W23, _if("a", 2)), **kw)


def test_errors_name_population_and_limit():
    net = _dense_net(W23, _if("a", 2, theta=[0.001, 1.0]))
    with pytest.raises(QuantizationError, match="population 'a': v_threshold=0.001 rounds to 0"):
        quantize(net)
    big = _dense_net(W23, _if("a", 2, theta=[1000.0, 1.0]))
    with pytest.raises(QuantizationError, match=r"'a' v_threshold: integer value 127000 does not fit.*32767"):
        quantize(big, max_acc_shift=0)
    slow = Population("a", "LIF", (1,), dict(tau=_full(1e5, 1), r=_full(1, 1), v_leak=_full(0, 1),
                                               v_threshold=_full(1, 1), v_reset=_full(0, 1)))
    with pytest.raises(QuantizationError, match="'a': leak dt/tau.*rounds to 0 with leak_frac_bits=12"):
        quantize(_dense_net(np.array([[1.0]]), slow))
    assert issubclass(QuantizationError, SnnchipError)


def test_defaults_come_from_models_defaults():
    import inspect

    from models.defaults import QUANT_HEADROOM_BITS, QUANT_MAX_ACC_SHIFT, QUANT_MAX_INPUT

    p = inspect.signature(quantize).parameters
    got = (p["max_input"].default, p["headroom_bits"].default, p["max_acc_shift"].default)
    assert got == (QUANT_MAX_INPUT, QUANT_HEADROOM_BITS, QUANT_MAX_ACC_SHIFT) == (1.0, 2, 16)


def test_sparse_weights_that_round_to_zero_leave_the_others_intact():
    # 0.001 rounds to 0 at this scale; the CSR must drop it without shifting the other entries
    # (a same-dtype csr_matrix shares arrays, and eliminate_zeros used to compact them under wi)
    m = sp.csr_matrix(np.array([[1.0, 0.001, -0.5], [0.001, 0.25, 1.0]]))
    ones = np.ones(3)
    pops = [Population("in", "input", (2,)),
            Population("out", "IF", (3,), {"r": ones, "v_threshold": ones, "v_reset": 0 * ones})]
    qnet, _ = quantize(Net(pops, [SparseProjection("p", "in", "out", m)], "out"), weight_bits=8)
    q = qnet.projections[0]
    # scale 127 / max|w| = 127: 1 -> 127, -0.5 -> -64 (half away), 0.25 -> 32 (31.75), 0.001 -> 0
    assert q.csr.toarray().tolist() == [[127, 0, -64], [0, 32, 127]] and q.csr.nnz == 4
    np.testing.assert_array_equal(q.csr.toarray(), q.weights_for_posts(np.arange(3)).toarray())
