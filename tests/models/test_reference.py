"""Float reference simulator: hand-checked neuron dynamics and the NIR paper accuracy."""

from __future__ import annotations

import nir
import numpy as np
import pytest

import models
from models import SimulationError
from models.reference import simulate_graph


def _single(node, n=1):
    nodes = {"input": nir.Input(input_type={"input": np.array([n])}),
             "fc": nir.Linear(weight=np.eye(n, dtype=np.float32)),
             "neuron": node,
             "output": nir.Output(output_type={"output": np.array([n])})}
    return models.Graph(nodes, [("input", "fc"), ("fc", "neuron"), ("neuron", "output")])


def _if(th=1.0, reset=0.0):
    return nir.IF(r=np.ones(1), v_threshold=np.full(1, th), v_reset=np.full(1, reset))


def test_if_binary_subtract_by_hand():
    # inputs 0.6, 0.6, 0.6, 2.5: v = 0.6, 1.2 -> spike, 0.2 -> 0.8, 3.3 -> spike, v = 2.3
    g = _single(_if())
    x = np.array([0.6, 0.6, 0.6, 2.5]).reshape(4, 1, 1)
    r = simulate_graph(g, x, reset="subtract", spikes="binary", record="all")
    np.testing.assert_array_equal(r.output.ravel(), [0, 1, 0, 1])
    np.testing.assert_allclose(r.membrane["neuron"].ravel(), [0.6, 0.2, 0.8, 2.3])


def test_if_multi_and_zero_reset_by_hand():
    g = _single(_if(th=1.0, reset=-0.5))
    x = np.array([2.5, 0.4, 3.9]).reshape(3, 1, 1)
    multi = simulate_graph(g, x, reset="subtract", spikes="multi", record="all")
    np.testing.assert_array_equal(multi.output.ravel(), [2, 0, 4])  # floor(2.5), 0.9 -> 0, floor(4.8)
    np.testing.assert_allclose(multi.membrane["neuron"].ravel(), [0.5, 0.9, 0.8])
    zero = simulate_graph(g, x, reset="zero", spikes="binary", record="all")
    np.testing.assert_array_equal(zero.output.ravel(), [1, 0, 1])
    np.testing.assert_allclose(zero.membrane["neuron"].ravel(), [-0.5, -0.1, -0.5])


def test_threshold_is_inclusive():
    g = _single(_if(th=0.5))
    r = simulate_graph(g, np.full((1, 1, 1), 0.5))
    assert r.output.ravel()[0] == 1


def test_lif_forward_euler_by_hand():
    tau, r_, vl, dt = 4.0, 2.0, 0.1, 0.5
    node = nir.LIF(tau=np.full(1, tau), r=np.full(1, r_), v_leak=np.full(1, vl),
                   v_threshold=np.full(1, 10.0), v_reset=np.zeros(1))
    g = _single(node)
    g = models.Graph(g.nodes, g.edges, dt=dt)
    x = np.array([1.0, 0.0, 2.0]).reshape(3, 1, 1)
    v, ref = 0.0, []
    for i in x.ravel():
        v = v + dt / tau * (vl - v + r_ * i)
        ref.append(v)
    r = simulate_graph(g, x, record="all")
    np.testing.assert_allclose(r.membrane["neuron"].ravel(), ref)
    assert r.output.sum() == 0


def test_cubalif_snntorch_equivalence():
    """With snnTorch's export (tau = dt/(1-beta), r = tau_mem/dt, w_in = tau_syn/dt)
    the NIR discretisation is syn = alpha syn + x; mem = beta mem + syn."""
    dt, alpha, beta = 1e-3, 0.8, 0.9
    tau_syn, tau_mem = dt / (1 - alpha), dt / (1 - beta)
    node = nir.CubaLIF(tau_syn=np.full(1, tau_syn), tau_mem=np.full(1, tau_mem), r=np.full(1, tau_mem / dt),
                       v_leak=np.zeros(1), v_threshold=np.full(1, 1.0), v_reset=np.zeros(1),
                       w_in=np.full(1, tau_syn / dt))
    g = _single(node)
    g = models.Graph(g.nodes, g.edges, dt=dt)
    x = np.array([0.3, 0.0, 0.5, 0.1, 0.0, 0.0]).reshape(-1, 1, 1)
    syn = mem = 0.0
    spikes = []
    for i in x.ravel():
        syn = alpha * syn + i
        mem = beta * mem + syn
        s = float(mem >= 1.0)
        mem -= s
        spikes.append(s)
    r = simulate_graph(g, x, reset="subtract")
    np.testing.assert_array_equal(r.output.ravel(), spikes)
    assert sum(spikes) >= 1


def test_bad_requests(nir_cnn):
    with pytest.raises(SimulationError, match="do not match input"):
        models.simulate(nir_cnn, np.zeros((3, 1, 2, 32, 32)))
    with pytest.raises(SimulationError, match="steps must be >= 1"):
        models.simulate(nir_cnn, np.zeros((0, 1, 2, 34, 34)))
    with pytest.raises(SimulationError, match="reset must be one of"):
        models.simulate(nir_cnn, np.zeros((1, 1, 2, 34, 34)), reset="soft")


@pytest.mark.slow
@pytest.mark.parametrize("reset,spikes,correct", [
    ("subtract", "multi", 100),   # the NIR paper: 100/100 with multi-spike IF
    ("zero", "binary", 100),      # ... and with single-spike reset-to-zero
    ("subtract", "binary", 97),   # ... 97/100 with single-spike subtract reset
])
def test_nir_paper_cnn_accuracy(nir_cnn, test100, reset, spikes, correct):
    r = models.simulate(nir_cnn, test100.inputs, reset=reset, spikes=spikes)
    assert int((r.predict() == test100.labels).sum()) == correct
