"""Crossbar-aware pruning: exact crossbar counts, planted structures the grains must find,
function preserved by the permutations, bad input."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest

from hwsim.chip import load_chip
from mapper.mapping import map_model
from mapper.prune import (
    PruneError,
    analyse,
    importance,
    permute_population,
    project,
    prune,
    top_pairs,
)
from models import Graph, lower
from models.reference import simulate

CHIP = load_chip("tianjic")  # 256 axons x 256 neurons per crossbar


def _if(n):
    return nir.IF(r=np.ones(n, np.float32), v_threshold=np.ones(n, np.float32), v_reset=np.zeros(n, np.float32))


def _mlp(w1, w2, b1=None):
    n_in, n_h, n_out = w1.shape[1], w1.shape[0], w2.shape[0]
    return Graph.sequential([
        ("fc1", nir.Affine(weight=w1.astype(np.float32),
                           bias=(np.zeros(n_h) if b1 is None else b1).astype(np.float32))),
        ("if1", _if(n_h)),
        ("fc2", nir.Affine(weight=w2.astype(np.float32), bias=np.zeros(n_out, np.float32))),
        ("if2", _if(n_out)),
    ], input_shape=(n_in,), metadata={"reset": "subtract", "spikes": "binary"})


def _run(graph, x):
    return simulate(lower(graph), x, reset="subtract", spikes="binary", record=list(graph.neuron_nodes()))


def test_dense_counts_are_exact_and_hand_computed():
    rng = np.random.default_rng(0)
    # fc1: 600 inputs -> 300 outputs = 2 blocks x 3 chunks (256, 256, 88) = 6 crossbars
    # fc2: 300 -> 10 = 1 block x 2 chunks = 2 crossbars; 8 in all
    g = _mlp(rng.normal(size=(300, 600)) * 0.05, rng.normal(size=(10, 300)) * 0.1)
    m = map_model(g, CHIP)
    assert m.tiling.n_crossbars == 8
    lays = {lay.node: lay for lay in analyse(g, CHIP, m)}
    assert (lays["fc1"].n_blocks, lays["fc1"].n_chunks, lays["fc1"].removable) == (2, 3, 4)
    assert (lays["fc2"].n_blocks, lays["fc2"].n_chunks, lays["fc2"].removable) == (1, 2, 1)
    # target 0.5 -> remove ceil(4) crossbars; equal fractions: fc1 gives 3 of 4 (0.75 > fc2's 1 of 1 ...)
    r = prune(g, CHIP, target=0.5, mapping=m)
    removed = {k: v["crossbars_before"] - v["crossbars_after"] for k, v in r.layers.items()}
    assert sum(removed.values()) == 4
    assert r.crossbars_implied == 4
    assert map_model(r.graph, CHIP).tiling.n_crossbars == 4
    # every pruned (block, chunk) pair is zero in the weights, every kept one is not
    w1 = np.asarray(r.graph.nodes["fc1"].weight)
    s = next(s for s in r.solutions if s.layer.node == "fc1")
    for b in range(2):
        for j in range(3):
            blk = w1[b * 256:(b + 1) * 256, j * 256:(j + 1) * 256]
            assert bool(np.any(blk)) == bool(s.keep[b, j])


def test_crossbar_grain_removes_the_weakest_crossbars():
    rng = np.random.default_rng(1)
    w1 = rng.normal(size=(512, 512)) * 0.05
    w1[256:, :256] *= 1e-3  # the weak (block 1, chunk 0) crossbar
    g = _mlp(w1, rng.normal(size=(10, 512)) * 0.1)
    r = prune(g, CHIP, target=0.1, layers=["fc1"])  # 6 crossbars -> remove 1
    s = r.solutions[0]
    assert s.keep.tolist() == [[True, True], [False, True]]
    assert not np.asarray(r.graph.nodes["fc1"].weight)[256:, :256].any()


def test_column_grain_recombines_what_the_crossbar_grain_cannot():
    # Even columns read only inputs 0..255 (chunk 0), odd columns only 256..511 (chunk 1).
    # In index order every block needs both chunks; after recombination (evens in one
    # block, odds in the other) each block needs one: half the crossbars, nothing lost.
    rng = np.random.default_rng(2)
    w1 = np.zeros((512, 512))
    w1[0::2, :256] = rng.normal(size=(256, 256)) * 0.05
    w1[1::2, 256:] = rng.normal(size=(256, 256)) * 0.05
    g = _mlp(w1, rng.normal(size=(10, 512)) * 0.1)
    m = map_model(g, CHIP)
    fc1 = next(lay for lay in analyse(g, CHIP, m) if lay.node == "fc1")
    assert fc1.crossbars(np.ones((2, 2), bool)) == 4
    col = prune(g, CHIP, target=2 / m.tiling.n_crossbars, grain="column", layers=["fc1"], mapping=m)
    xbar = prune(g, CHIP, target=2 / m.tiling.n_crossbars, grain="crossbar", layers=["fc1"], mapping=m)
    assert col.layers["fc1"]["importance_kept"] == pytest.approx(1.0)
    assert xbar.layers["fc1"]["importance_kept"] == pytest.approx(0.5, abs=0.02)
    assert col.layers["fc1"]["crossbars_after"] == 2
    assert map_model(col.graph, CHIP).tiling.n_crossbars == m.tiling.n_crossbars - 2
    # nothing of value was pruned and the permutation is absorbed by fc2: same output spikes
    x = (rng.random((12, 5, 512)) < 0.3).astype(np.float64)
    a, b = _run(g, x), _run(col.graph, x)
    np.testing.assert_array_equal(a.output, b.output)
    order = np.asarray(col.layers["fc1"]["column_order"])
    np.testing.assert_array_equal(b.spikes["if1"], a.spikes["if1"][..., order])
    meta = json.loads(col.graph.metadata["pruning"])
    assert meta["layers"]["fc1"]["column_order"] == order.tolist()


def test_input_reordering_lines_up_prunable_rows():
    # fc2 (1 block, 2 chunks of 256 inputs) only uses the odd hidden neurons: reordering
    # puts them in one chunk, so one crossbar holds all of fc2's weights.
    rng = np.random.default_rng(3)
    w1 = rng.normal(size=(512, 64)) * 0.2
    w2 = np.zeros((10, 512))
    w2[:, 1::2] = rng.normal(size=(10, 256)) * 0.1
    g = _mlp(w1, w2)
    plain = prune(g, CHIP, target=0.2, layers=["fc2"])
    reord = prune(g, CHIP, target=0.2, layers=["fc2"], reorder=True)
    assert plain.layers["fc2"]["importance_kept"] < 0.6
    assert reord.layers["fc2"]["importance_kept"] == pytest.approx(1.0)
    x = (rng.random((10, 4, 64)) < 0.5).astype(np.float64)
    np.testing.assert_array_equal(_run(g, x).output, _run(reord.graph, x).output)


def test_permutations_alone_preserve_function_on_the_shipped_cnn():
    from models.zoo.catalog import load

    g = load("mnist_cnn")
    m = map_model(g, CHIP)
    lays = analyse(g, CHIP, m)
    assert [(lay.node, lay.cb, lay.cap, lay.patches) for lay in lays] == [
        ("conv1", 4, 1, 9), ("conv2", 32, 1, 8), ("fc1", 256, 64, 1)]
    import copy

    p = Graph({k: copy.deepcopy(v) for k, v in g.nodes.items()}, list(g.edges), dt=g.dt, metadata=dict(g.metadata))
    rng = np.random.default_rng(4)
    perm1, perm2 = rng.permutation(12), rng.permutation(32)
    permute_population(p, lays, "conv1", perm1)
    permute_population(p, lays, "conv2", perm2)
    from models.datasets import mnist_sequences

    try:
        seq = mnist_sequences("direct", 8, samples=6)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"MNIST not available: {e}")
    a = simulate(lower(g), seq.inputs, reset="subtract", spikes="binary", record=["if1", "if2"])
    b = simulate(lower(p), seq.inputs, reset="subtract", spikes="binary", record=["if1", "if2"])
    np.testing.assert_array_equal(a.output, b.output)
    s1 = a.spikes["if1"].reshape(8, 6, 12, -1)[:, :, perm1]
    np.testing.assert_array_equal(b.spikes["if1"].reshape(8, 6, 12, -1), s1)
    s2 = a.spikes["if2"].reshape(8, 6, 32, -1)[:, :, perm2]
    np.testing.assert_array_equal(b.spikes["if2"].reshape(8, 6, 32, -1), s2)


@pytest.mark.parametrize("grain", ["crossbar", "column"])
def test_shipped_cnn_pruned_mapping_matches_the_implied_count(grain):
    from models.zoo.catalog import load

    g = load("mnist_cnn")
    m = map_model(g, CHIP)
    assert m.tiling.n_crossbars == 131  # if1 27 + if2 96 + if3 8
    r = prune(g, CHIP, target=0.44, grain=grain, reorder=True, mapping=m)
    got = map_model(r.graph, CHIP).tiling.n_crossbars
    assert got == r.crossbars_implied <= 131 - 58
    assert r.layers["conv2"]["crossbars_after"] % r.layers["conv2"]["crossbars_per_pair"] == 0


def test_projection_keeps_k_pairs_and_relaxed_draws_vary():
    rng = np.random.default_rng(5)
    g = _mlp(rng.normal(size=(512, 512)) * 0.05, rng.normal(size=(10, 512)) * 0.1)
    r = prune(g, CHIP, target=0.2, layers=["fc1"])
    s = r.solutions[0]
    w = rng.normal(size=(512, 512))
    hard = project(w, s)
    kept = [bool(hard[b * 256:(b + 1) * 256, j * 256:(j + 1) * 256].any()) for b in range(2) for j in range(2)]
    assert sum(kept) == int(s.keep.sum())
    def pattern(v):
        return tuple(bool(v[b * 256, j * 256]) for b in range(2) for j in range(2))

    assert pattern(hard) == tuple(kept)
    draws = {pattern(project(w, s, 5.0, np.random.default_rng(i))) for i in range(40)}
    assert len(draws) > 1  # the relaxed projection is random
    J = np.array([[1.0, 2.0, 3.0], [3.0, 0.5, 0.1]])
    assert top_pairs(J, 2).tolist() == [[False, False, True], [True, False, False]]  # one per block
    assert top_pairs(J, 3).tolist() == [[False, True, True], [True, False, False]]


def test_importance_scores():
    w = np.array([[[[3.0, -4.0]]], [[[0.0, 1.0]]]])  # (2 out, 1 in, 1, 2)
    assert importance(w, "l1").ravel().tolist() == [7.0, 1.0]
    assert importance(w, "l2").ravel().tolist() == [5.0, 1.0]
    assert importance(w, "activation", np.array([0.5])).ravel().tolist() == [3.5, 0.5]
    with pytest.raises(PruneError, match="rate per input unit"):
        importance(w, "activation")


@pytest.mark.parametrize("target", [0.0, 1.0, -0.2, 1.5, float("nan"), "half"])
def test_bad_target_is_a_typed_error(target):
    g = _mlp(np.ones((300, 600)) * 0.01, np.ones((10, 300)) * 0.01)
    with pytest.raises(PruneError, match="target must be a fraction in"):
        prune(g, CHIP, target=target)


def test_bad_grain_unreachable_target_and_branching_graph():
    g = _mlp(np.ones((300, 600)) * 0.01, np.ones((10, 300)) * 0.01)
    with pytest.raises(PruneError, match="unknown grain 'row'"):
        prune(g, CHIP, target=0.5, grain="row")
    with pytest.raises(PruneError, match=r"can give at most 5 \(target <= 0.625\)"):
        prune(g, CHIP, target=0.7)
    with pytest.raises(PruneError, match="not prunable"):
        prune(g, CHIP, target=0.1, layers=["if1"])
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "a": nir.Affine(weight=np.ones((4, 4), np.float32), bias=np.zeros(4, np.float32)),
             "b": nir.Affine(weight=np.ones((4, 4), np.float32), bias=np.zeros(4, np.float32)),
             "n": _if(4), "output": nir.Output(output_type={"output": np.array([4])})}
    br = Graph(nodes, [("input", "a"), ("input", "b"), ("a", "n"), ("b", "n"), ("n", "output")])
    with pytest.raises(PruneError, match="feed-forward chain"):
        prune(br, CHIP, target=0.5)


def test_unit_rates_are_the_mean_inputs_of_each_layer():
    from mapper.prune import unit_rates

    rng = np.random.default_rng(6)
    g = _mlp(rng.normal(size=(300, 600)) * 0.2, rng.normal(size=(10, 300)) * 0.1)
    x = (rng.random((7, 3, 600)) < 0.4).astype(np.float64)
    r = unit_rates(g, x)
    np.testing.assert_allclose(r["fc1"], x.mean(axis=(0, 1)))
    s = _run(g, x).spikes["if1"]
    np.testing.assert_allclose(r["fc2"], s.mean(axis=(0, 1)))
    a = prune(g, CHIP, target=0.25, score="activation", unit_rates=r)
    assert json.loads(a.graph.metadata["pruning"])["score"] == "activation"
