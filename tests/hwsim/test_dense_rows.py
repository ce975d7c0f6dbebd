"""Dense projections on the geometric event path (hwsim.dense_rows, issue 17): W^T kept
once plus per-row counts, instead of every crossbar entry of every tile. The random-net
equality with the explicit rows (spikes, membranes, counters, cycles) is
tests/hwsim/test_conv_rows.py's hypothesis test, whose nets carry dense layers and
dense skips; here the counts by hand, the refusals and the bytes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hwsim.chip import load_chip
from hwsim.dense_rows import DenseRows, kernel_rows, post_range
from hwsim.engine import simulate
from hwsim.engine.build import kernel_inputs
from hwsim.program import ProgramError, compile
from mapper.mapping import map_model
from models.intref import simulate_int
from models.net import DenseProjection, Net, Population


def _pm():
    """pre_map (3, 6): pres 0, 1 -> k 0; pre 2 -> k 2; pre 3 none; pres 4, 5 -> k 1."""
    return sp.csr_matrix((np.ones(5), ([0, 0, 2, 1, 1], [0, 1, 2, 4, 5])), shape=(3, 6))


def test_dense_row_counts_by_hand():
    """W (4 posts x 3 k) = [[1, 0, 2], [0, 0, 3], [4, 5, 0], [0, 6, 0]]: a tile of posts
    [0, 2) holds, per k, 1, 0, 2 nonzeros; posts [2, 4): 1, 2, 0. Pre i's row holds
    those of k(i) (module docstring): k = [0, 0, 2, -1, 1, 1]."""
    w = np.array([[1, 0, 2], [0, 0, 3], [4, 5, 0], [0, 6, 0]])
    q = DenseProjection("d", "in", "a", w, _pm())
    k = kernel_rows(q)
    assert k.tolist() == [0, 0, 2, -1, 1, 1]
    rows = DenseRows(0, q, k)
    assert rows.count(np.arange(6), np.array([0, 1]), soma=0).tolist() == [1, 1, 2, 0, 0, 0]
    assert rows.count(np.arange(6), np.array([2, 3]), soma=1).tolist() == [1, 1, 0, 0, 2, 2]
    assert rows.nnz == q.nnz == 10
    rows.check()
    rows.count(np.array([0]), np.array([0, 1]), soma=2)
    with pytest.raises(ValueError, match="rows hold 11 synapses, the projection has 10"):
        rows.check()
    with pytest.raises(ValueError, match="contiguous range"):
        rows.count(np.array([0]), np.array([0, 2]), soma=3)
    assert kernel_rows(DenseProjection("d", "in", "a", w, 2 * _pm())) is None  # not 0/1: explicit rows
    assert np.array_equal(rows.kernel(np.int8), w.T.reshape(-1))
    assert post_range(np.array([3, 4, 5])) == (3, 6) and post_range(np.array([3, 5])) is None


def _fc_net(n_in=96, n_hid=40, n_out=10, seed=0):
    rng = np.random.default_rng(seed)
    inp = Population("in", "input", (n_in,))
    pops = [inp]
    for name, n in (("h", n_hid), ("o", n_out)):
        pops.append(Population(name, "IF", (n,), {"v_threshold": np.full(n, 1.0), "v_reset": np.zeros(n),
                                                 "r": np.ones(n)}))
    w1 = rng.normal(0, 0.4, (n_hid, n_in // 2))
    pm = sp.csr_matrix((np.ones(n_in), (np.arange(n_in) // 2, np.arange(n_in))), shape=(n_in // 2, n_in))
    w2 = rng.normal(0, 0.5, (n_out, n_hid))
    projs = [DenseProjection("in->h", "in", "h", w1, pm), DenseProjection("h->o", "h", "o", w2)]
    return Net(pops, projs, "o", input_spiking=True)


def test_dense_geometric_equals_rows_and_reference():
    """A 96 -> 40 -> 10 net (the first layer behind a 2:1 sum-pooling pre_map) on a chip
    of 16 axons x 8 neurons per core, so every layer has partial-sum tiles: both dense
    projections geometric, no crossbar entry stored, and the run equal to the explicit
    rows (spikes, membranes, counters, cycles) and to the integer reference."""
    chip = load_chip("tiny").with_overrides({"core.axons": 16, "core.neurons": 8, "mesh.width": 8,
                                             "mesh.height": 8, "mesh.max_chips": 4,
                                             "core.memory_bytes": 1 << 16, "core.routing_entries": 4096})
    m = map_model(_fc_net(), chip)
    geo, rows = compile(m), compile(m, conv_path="rows")
    assert sorted(geo.proj_names[j] for j in geo.geo_proj) == ["h->o", "in->h"]
    assert geo.ent_acc.size == 0 and rows.ent_acc.size == int(rows.row_nent.sum())
    assert geo.geo_w.size == 40 * 48 + 10 * 40
    np.testing.assert_array_equal(geo.row_nent, rows.row_nent)
    assert (geo.tile_kind == 1).any()
    x = (np.random.default_rng(1).random((5, 3, 96)) < 0.4).astype(np.float32)
    a = simulate(geo, x, timing=True, timing_samples=3, record="all")
    b = simulate(rows, x, timing=True, timing_samples=3, record="all")
    ref = simulate_int(m.net, x, record="all")
    for k in ref.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k])
        np.testing.assert_array_equal(a.spikes[k], ref.spikes[k])
        np.testing.assert_array_equal(a.membrane[k], ref.membrane[k])
    np.testing.assert_array_equal(a.counters, b.counters)
    np.testing.assert_array_equal(a.timing["step_cycles"], b.timing["step_cycles"])
    assert a.counters.sum(axis=(0, 1))[a.counter_names.index("acs")] > 0
    # a tile that drops a row: the check names the projection
    t = next(t for t in m.tiling.tiles if t.population == "h" and t.kind == "soma")
    t._axons = [(s, d, idx[1:]) for s, d, idx in t.axons]
    t.n_axons -= len(t._axons)  # its row count with it (else compile names the tile's n_axons)
    with pytest.raises(ProgramError, match="in->h.*synapses, the projection has"):
        compile(m)


def test_dense_layer_bytes_follow_weights():
    """A 4096 -> 1024 dense layer on Tianjic (4,194,304 weights, 16 x 4 = 64 tiles):
    program + kernel tables under 3 B x weights + 256 B x (neurons + rows); the explicit
    rows stored 10 B per entry in the program alone (41.9 MB)."""
    rng = np.random.default_rng(0)
    inp = Population("in", "input", (4096,))
    a = Population("a", "IF", (1024,), {"v_threshold": np.full(1024, 1.0), "v_reset": np.zeros(1024),
                                         "r": np.ones(1024)})
    w = rng.normal(0, 0.05, (1024, 4096))
    m = map_model(Net([inp, a], [DenseProjection("d", "in", "a", w)], "a", input_spiking=True), load_chip("tianjic"))
    prog = compile(m)
    kin = kernel_inputs(prog, "subtract", "binary", None, 1, True, 2, False)
    got = sum(v.nbytes for v in prog.arrays().values()) + sum(v.nbytes for v in kin)
    neurons, rows = int(prog.pop_off[-1]), int(prog.row_src.size)
    assert prog.ent_acc.size == 0 and prog.geo_w.size == w.size and prog.geo_w.dtype == np.int8
    assert int(prog.row_nent.sum()) == m.net.projections[0].nnz
    assert got < 3 * w.size + 256 * (neurons + rows), got
