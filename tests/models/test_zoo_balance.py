"""Data-based threshold balancing of zoo models (models.zoo.balance)."""

import nir
import numpy as np
import pytest

from models import Graph, simulate, zoo
from models.errors import ParameterError, SimulationError, UnsupportedNodeError


def _one_layer(r=2.0):
    w = np.array([[1.0, 0.0], [0.5, 0.5], [-1.0, 1.0]], dtype=np.float32)
    one = np.ones(3, dtype=np.float32)
    return Graph.sequential([("fc", nir.Affine(w, np.zeros(3, dtype=np.float32))),
                             ("if1", nir.IF(r=r * one, v_threshold=one, v_reset=0 * one))], (2,))


def _hand_inputs():
    # (T=2, B=2, 2): sample 0 sees [1,0] then [1,1]; sample 1 sees [0,1] then [0,0]
    return np.array([[[1, 0], [0, 1]], [[1, 1], [0, 0]]], dtype=np.float32)


def test_hand_case_percentile():
    # currents W x: sample 0: [1, .5, -1], [1, 1, 0] -> mean [1, .75, -.5]; sample 1:
    # [0, .5, 1], [0, 0, 0] -> mean [0, .25, .5]. Times dt R = 2: positive pre-activations
    # {2, 1.5, .5, 1} -> sorted [.5, 1, 1.5, 2]; 50th percentile (linear, index 1.5) = 1.25,
    # 100th = 2, 99.9th at index 2.997 = 1.5 + .997 * .5
    g = _one_layer()
    b = zoo.balance(g, _hand_inputs(), percentile=50)
    assert b.metadata["balance"]["thresholds"] == {"if1": 1.25}
    assert np.array_equal(np.asarray(b.nodes["if1"].v_threshold), np.full(3, 1.25, np.float32))
    assert zoo.balance(g, _hand_inputs(), percentile=100).metadata["balance"]["thresholds"]["if1"] == 2.0
    t999 = zoo.balance(g, _hand_inputs()).metadata["balance"]["thresholds"]["if1"]
    assert t999 == float(np.float32(1.5 + 0.997 * 0.5))
    # the input graph is not changed; weights are kept
    assert np.all(np.asarray(g.nodes["if1"].v_threshold) == 1)
    assert b.nodes["fc"] is g.nodes["fc"]
    # with theta = 1.25, subtractive reset: neuron 0 of sample 0 gets 2, 2 -> v 2 (spike, .75), 2.75 (spike)
    out = simulate(b, _hand_inputs()).output
    assert out[:, 0, 0].tolist() == [1, 1]
    assert out[:, 1].tolist() == [[0, 0, 1], [0, 0, 0]]  # sample 1: neuron 2 gets 2 at t0, 0 at t1


def test_lenet5_rates_balanced():
    g = zoo.build("lenet5", "cifar", seed=0)
    x = zoo.calibration_inputs(g.input_shape, 16, 4, seed=1)
    before = simulate(g, x).firing_rates()
    assert min(before.values()) < 0.01  # random weights: deep layers silent
    assert before["if_fc2"] == 0 and before["if_fc3"] == 0
    b = zoo.balance(g, x)
    after = simulate(b, x).firing_rates()
    assert set(after) == {"if1", "if2", "if_fc1", "if_fc2", "if_fc3"}
    for name, rate in after.items():
        assert 0.01 <= rate <= 0.30, (name, rate)
    # deterministic: the same inputs give the same thresholds
    again = zoo.balance(g, zoo.calibration_inputs(g.input_shape, 16, 4, seed=1))
    assert again.metadata["balance"] == b.metadata["balance"]
    assert b.metadata["balance"]["samples"] == 16 and b.metadata["balance"]["steps"] == 4


def test_calibration_inputs_seeded():
    a = zoo.calibration_inputs((3, 32, 32), 2, 3, rate=0.5, seed=7)
    assert a.shape == (3, 2, 3, 32, 32) and a.dtype == np.float32
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert np.array_equal(a, zoo.calibration_inputs((3, 32, 32), 2, 3, rate=0.5, seed=7))
    img = zoo.smooth_images((3, 32, 32), 2, seed=7)
    assert np.array_equal(img[:, :, 0:4, 0:4], np.broadcast_to(img[:, :, :1, :1], (2, 3, 4, 4)))
    with pytest.raises(ParameterError, match="block"):
        zoo.smooth_images((3, 30, 30), 1)
    with pytest.raises(ParameterError, match="rate"):
        zoo.calibration_inputs((3, 32, 32), 1, 1, rate=0)


def test_errors():
    g = _one_layer()
    with pytest.raises(ParameterError, match="percentile"):
        zoo.balance(g, _hand_inputs(), percentile=0)
    with pytest.raises(ParameterError, match="percentile"):
        zoo.balance(g, _hand_inputs(), percentile=True)
    with pytest.raises(ParameterError, match="'if1' has no positive pre-activation"):
        zoo.balance(g, np.zeros((2, 2, 2), np.float32))
    with pytest.raises(SimulationError, match="do not match"):
        zoo.balance(g, np.zeros((2, 2, 5), np.float32))
    one = np.ones(2, dtype=np.float32)
    lif = Graph.sequential([("fc", nir.Affine(np.eye(2, dtype=np.float32), np.zeros(2, np.float32))),
                            ("lif", nir.LIF(tau=one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one))],
                           (2,))
    with pytest.raises(UnsupportedNodeError, match="'lif' is LIF"):
        zoo.balance(lif, _hand_inputs())
