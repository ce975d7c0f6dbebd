"""NeuroBench agreement (issue 19): the same network in torch, run through the ``neurobench``
package's own metric code (SynapticOperations, ActivationSparsity) on the same inputs, agrees
with :func:`energy.graphcounts.neurobench_graph` on the graph as written, to the count.

Needs the ``peers`` extra (torch, neurobench); skipped with the reason otherwise.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest

from energy.graphcounts import neurobench_graph
from models.graph import Graph
from models.lowering import graph_layers
from models.reference import simulate_graph

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[peers]')")
nb_ops = pytest.importorskip("neurobench.metrics.workload.synaptic_operations",
                             reason="neurobench not installed (pip install -e '.[peers]')")
nb_sparsity = pytest.importorskip("neurobench.metrics.workload.activation_sparsity")
nb_models = pytest.importorskip("neurobench.models")

T, B = 6, 3


def _weights(rng, *shape):
    # multiples of 1/8: float32 (torch) and float64 (numpy) sums are exact, spikes identical
    w = rng.integers(-6, 7, size=shape) / 8.0
    w[rng.random(shape) < 0.1] = 0.0  # some zero weights: effective != dense
    return w


def _graph(rng):
    w1, b1 = _weights(rng, 4, 2, 3, 3), _weights(rng, 4)
    w2, b2 = _weights(rng, 6, 4, 3, 3), _weights(rng, 6)
    w3, b3 = _weights(rng, 5, 96), _weights(rng, 5)
    one = lambda n: np.ones(n)  # noqa: E731
    g = Graph.sequential([
        ("conv1", nir.Conv2d((8, 8), w1, 1, 1, 1, 1, b1)),
        ("if1", nir.IF(one((4, 8, 8)), one((4, 8, 8)))),
        ("pool1", nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))),
        ("conv2", nir.Conv2d((4, 4), w2, 1, 1, 1, 1, b2)),
        ("if2", nir.IF(one((6, 4, 4)), one((6, 4, 4)))),
        ("flat", nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([6, 4, 4])})),
        ("fc1", nir.Affine(w3, b3)),
        ("if3", nir.IF(one(5), one(5))),
    ], (2, 8, 8))
    return g, (w1, b1, w2, b2, w3, b3)


class IFNeuron(torch.nn.Module):
    """IF, threshold 1, binary spikes, subtract reset: models.reference's IF with dt = r = 1."""

    def __init__(self):
        super().__init__()
        self.v = None

    def forward(self, x):
        self.v = x if self.v is None else self.v + x
        z = (self.v >= 1.0).to(x.dtype)
        self.v = self.v - z
        return z


class Net(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        w1, b1, w2, b2, w3, b3 = (torch.tensor(a, dtype=torch.float32) for a in w)
        self.conv1, self.conv2 = torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Conv2d(4, 6, 3, padding=1)
        self.fc1 = torch.nn.Linear(96, 5)
        for layer, wt, bs in ((self.conv1, w1, b1), (self.conv2, w2, b2), (self.fc1, w3, b3)):
            layer.weight.data, layer.bias.data = wt, bs
        self.if1, self.if2, self.if3 = IFNeuron(), IFNeuron(), IFNeuron()
        self.pool = torch.nn.LPPool2d(1, 2)  # sum pooling (norm 1) over 2 x 2; inputs are >= 0

    def forward(self, x):  # x: (B, T, 2, 8, 8); one call of every layer per step
        for m in (self.if1, self.if2, self.if3):
            m.v = None
        out = []
        for t in range(x.shape[1]):
            s1 = self.if1(self.conv1(x[:, t]))
            s2 = self.if2(self.conv2(self.pool(s1)))
            out.append(self.if3(self.fc1(torch.flatten(s2, 1))))
        return torch.stack(out, 1)


def test_neurobench_package_agrees_to_the_count():
    rng = np.random.default_rng(3)
    g, w = _graph(rng)
    # real-valued input with zeros (a MAC layer), multiples of 1/4
    x = rng.integers(0, 5, size=(T, B, 2, 8, 8)) / 4.0
    x[rng.random(x.shape) < 0.4] = 0.0
    ref = simulate_graph(g, x, reset="subtract", spikes="binary", record="all")
    acts = {"input": x.reshape(T, B, -1), **{k: ref.spikes[k] for k in ("if1", "if2", "if3")}}
    ours = neurobench_graph(graph_layers(g), acts, spiking=["if1", "if2", "if3"])

    model = nb_models.TorchModel(Net(w))
    model.add_activation_module(IFNeuron)
    model.register_hooks()
    data = torch.tensor(np.moveaxis(x, 0, 1), dtype=torch.float32)
    with torch.no_grad():
        preds = model(data)
    # the same spikes in torch as in the float reference
    assert np.array_equal(np.moveaxis(preds.numpy(), 1, 0), ref.output)
    synops = nb_ops.SynapticOperations()
    theirs = synops(model, preds, (data, None))
    sparsity = nb_sparsity.ActivationSparsity()(model, preds, (data, None))
    assert ours["Effective_MACs"] == theirs["Effective_MACs"]
    assert ours["Effective_ACs"] == theirs["Effective_ACs"]
    assert ours["Dense"] == theirs["Dense"]
    assert ours["activation_sparsity"] == pytest.approx(sparsity, abs=0, rel=1e-15)
    # the counts are not trivial: a MAC layer (real input), pooled counts (MAC when > 1), AC layers
    assert theirs["Effective_MACs"] > 0 and theirs["Effective_ACs"] > 0
    assert theirs["Dense"] > theirs["Effective_MACs"] + theirs["Effective_ACs"]
