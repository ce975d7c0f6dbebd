"""Lowering Graph -> Net: composition rules, exact equivalence, structured storage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import models
from models.net import ConvProjection, DenseProjection, SparseProjection

from .primitives import all_primitives_graph, conv1d_graph, recurrent_cuba_graph


def _same_run(graph, x, **kw):
    rg = models.simulate(graph, x, record="all", **kw)
    rn = models.simulate(models.lower(graph), x, record="all", **kw)
    assert set(rn.spikes) <= set(rg.spikes) | {graph.output_name}
    for k in rn.spikes:
        if k in rg.spikes:
            np.testing.assert_array_equal(rg.spikes[k], rn.spikes[k], err_msg=k)
            np.testing.assert_allclose(rg.membrane[k], rn.membrane[k], atol=1e-9, err_msg=k)
    np.testing.assert_allclose(rg.output, rn.output, atol=1e-9)
    return rg, rn


def test_nir_cnn_lowered_structure(nir_cnn):
    net = models.lower(nir_cnn)
    assert [p.name for p in net.populations] == ["input", "1", "3", "6", "10", "12"]
    kinds = {q.name: type(q) for q in net.projections}
    assert kinds == {"input->1": ConvProjection, "1->3": ConvProjection, "3->6": ConvProjection,
                     "6->10": DenseProjection, "10->12": DenseProjection}
    q = {q.name: q for q in net.projections}
    # SumPool(2, s2) then conv 3x3 s1 p1 composes to kernel 2*(3-1)+2 = 6, stride 2, padding 2
    g = q["3->6"].geom
    assert (g.kernel, g.stride, g.padding) == ((6, 6), (2, 2), (2, 2))
    assert q["3->6"].max_fan_in() == 16 * 36
    # pooled + flattened input to the dense layer: W stays 256 x 128, the pool is a pre_map
    assert q["6->10"].weight.shape == (256, 128) and q["6->10"].pre_map.shape == (128, 512)
    assert q["6->10"].nnz == 256 * 512
    # the Sinabs export has all-zero biases: no population gets a constant input
    assert all(p.bias is None for p in net.populations[1:])


@pytest.mark.parametrize("n", [3, pytest.param(12, marks=pytest.mark.slow)])
def test_nir_cnn_graph_and_net_agree(nir_cnn, test100, n):
    x = test100.inputs[:, :n]
    for reset, spikes in (("subtract", "binary"), ("subtract", "multi")):
        _same_run(nir_cnn, x, reset=reset, spikes=spikes)


def test_recurrent_cuba_agrees():
    g = recurrent_cuba_graph()
    net = models.lower(g)
    (rec,) = [q for q in net.projections if q.src == q.dst == "cuba"]
    assert rec.delay_steps == 1 and [d for d, _ in rec.bias_terms] == [1]  # recurrent bias from step 1
    x = (np.random.default_rng(0).random((40, 5, 20)) < 0.3).astype(np.float32)
    rg, _ = _same_run(g, x)
    assert 0 < rg.spikes["cuba"].mean() < 0.9


def test_every_primitive_agrees():
    g = all_primitives_graph()
    net = models.lower(g)
    delays = {q.name: q.delay_steps for q in net.projections}
    assert delays["cuba->li"] == 2 and delays["cuba->cuba"] == 1
    # aff2's bias sits after the Delay: it reaches 'li' from step 0, i.e. on the population
    assert net.pop["li"].bias is not None and net.projections[-1].bias_terms == []
    x = np.random.default_rng(1).random((25, 4, 2, 8, 8)).astype(np.float32) * 2
    for spikes in ("binary", "multi"):
        for reset in ("zero", "subtract"):
            rg, _ = _same_run(g, x, reset=reset, spikes=spikes)
    assert rg.spikes["thr"].any() and rg.spikes["cuba"].any()
    _same_run(conv1d_graph(), np.random.default_rng(2).random((10, 3, 2, 16)))


def test_projection_interface_consistent(nir_cnn):
    """apply, to_csr, fan_in, fan_out, weights_for_posts agree for every storage kind."""
    net = models.lower(nir_cnn)
    rng = np.random.default_rng(0)
    for q in net.projections:
        m = q.to_csr()
        assert m.shape == q.shape and m.nnz == q.nnz
        x = rng.random((3, q.n_pre))
        np.testing.assert_allclose(q.apply(x), x @ m.toarray(), atol=1e-9)
        np.testing.assert_array_equal(q.fan_in(), np.diff(m.tocsc().indptr))
        np.testing.assert_array_equal(q.fan_out(), np.diff(m.indptr))
        idx = rng.choice(q.n_post, size=min(7, q.n_post), replace=False)
        np.testing.assert_allclose(q.weights_for_posts(idx).toarray(), m.toarray()[:, idx])


def test_sparse_identity_skip():
    """A neuron-to-neuron edge (a residual skip) lowers to an identity CSR."""
    import nir
    o = np.ones(4, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Affine(weight=np.eye(4, dtype=np.float32), bias=np.zeros(4, np.float32)),
             "a": nir.IF(r=o, v_threshold=o, v_reset=0 * o),
             "fc2": nir.Affine(weight=np.full((4, 4), 0.3, np.float32), bias=np.zeros(4, np.float32)),
             "b": nir.IF(r=o, v_threshold=o, v_reset=0 * o),
             "output": nir.Output(output_type={"output": np.array([4])})}
    edges = [("input", "fc"), ("fc", "a"), ("a", "fc2"), ("fc2", "b"), ("a", "b"), ("b", "output")]
    g = models.Graph(nodes, edges)
    net = models.lower(g)
    skip = [q for q in net.projections if q.name.startswith("a->b") and isinstance(q, SparseProjection)]
    assert len(skip) == 1 and (skip[0].csr != sp.identity(4)).nnz == 0
    _same_run(g, np.random.default_rng(3).random((12, 2, 4)) * 1.5)


def test_max_nnz_guard(nir_cnn):
    net = models.lower(nir_cnn)
    with pytest.raises(models.SnnchipError, match="exceed max_nnz"):
        net.projections[1].to_csr(max_nnz=1000)
