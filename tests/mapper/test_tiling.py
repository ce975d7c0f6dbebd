"""mapper.tiling: hand-counted tiles, exact synapse coverage, folding, packing, traffic, real models."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace as NS

import nir
import numpy as np
import pytest
import scipy.sparse as sp

import models
from mapper.routing import flows_from_tiling
from mapper.tiling import TilingError, tile, tile_matrix
from mapper.tiling.chunks import nextfit_vec, pack_chunks
from models.net import ConvProjection, DenseProjection, Net, Population, SparseProjection
from models.ops import ConvGeometry

TRAINED = Path(models.__file__).parent / "zoo" / "trained"


def chip(axons=256, neurons=256, cpc=1, max_fold=16, memory=73_728, width=12, height=13, max_chips=64):
    """A Tianjic-like stand-in: 256x256 crossbars, 8-bit weights, 16-bit membrane,
    64 KiB weights + 16 x 256 x 2 B state = 73,728 B per core, 12x13 cores, 64 chips."""
    return NS(core=NS(axons=axons, neurons=neurons, crossbars_per_core=cpc, weight_bits=8, membrane_bits=16,
                      memory_bytes=memory, max_fold=max_fold),
              mesh=NS(width=width, height=height, max_chips=max_chips))


def conv_net(cin, cout, hw, k, s=1, p=0, groups=1, seed=0):
    g = ConvGeometry(cin, cout, (hw, hw), (k, k), (s, s), (p, p), (1, 1), groups)
    w = np.random.default_rng(seed).standard_normal((cout, cin // groups, k, k))
    pops = [Population("input", "input", g.in_shape), Population("out", "IF", g.out_shape)]
    return Net(pops, [ConvProjection("in->out", "input", "out", w, g)], "out")


def dense_net(n_pre, n_post, seed=0):
    w = np.random.default_rng(seed).standard_normal((n_post, n_pre))
    pops = [Population("input", "input", (n_pre,)), Population("out", "IF", (n_post,))]
    return Net(pops, [DenseProjection("in->out", "input", "out", w)], "out")


def check_exact(net, T):
    """Every nonzero (pre, post) pair of every projection is in exactly one tile, the tile
    counts (n_axons, n_neurons, used_cells) match its explicit matrix, every neuron has
    exactly one soma."""
    pairs: dict = {}
    soma_cover = {p.name: np.zeros(p.size, dtype=np.int64) for p in net.populations}
    for t in T.tiles:
        post = t.post
        assert np.unique(post).size == post.size == t.n_neurons
        if t.kind == "soma":
            soma_cover[t.population][post] += 1
            assert t.soma == t.id
        else:
            assert T.tiles[t.soma].kind == "soma" and T.tiles[t.soma].population == t.population
            assert np.array_equal(T.tiles[t.soma].post, post)
        m = tile_matrix(net, t).tocoo()
        assert m.shape == (t.n_axons, t.n_neurons)
        assert m.nnz == t.used_cells
        off = 0
        n_post = net.pop[t.population].size
        for src, d, idx in t.axons:
            assert np.unique(idx).size == idx.size
            sel = (m.row >= off) & (m.row < off + idx.size)
            key = (t.population, src, d)
            pairs.setdefault(key, []).append(idx[m.row[sel] - off] * n_post + post[m.col[sel]])
            off += idx.size
        assert off == t.n_axons
    for p in net.populations[1:]:
        assert (soma_cover[p.name] == 1).all(), p.name
    expect: dict = {}
    for q in net.projections:
        key = (q.dst, q.src, q.delay_steps)
        m = q.to_csr()
        expect[key] = m if key not in expect else expect[key] + m
    assert set(k for k, v in expect.items() if v.nnz) == set(pairs)
    for key, m in expect.items():
        m = sp.coo_matrix(m)
        m.eliminate_zeros()
        want = np.sort(m.row.astype(np.int64) * net.pop[key[0]].size + m.col)
        got = np.sort(np.concatenate(pairs.get(key, [np.zeros(0, np.int64)])))
        assert got.size == np.unique(got).size, f"{key}: a synapse is in two tiles"
        np.testing.assert_array_equal(got, want, err_msg=str(key))


def expected_nnz(q) -> int:
    """Synapse count without expanding ImageNet-sized pre_maps."""
    if q.kind == "dense" and q.pre_map is not None:
        per_k = np.diff(sp.csr_matrix(q.pre_map != 0).indptr)  # pres feeding k (pooling: disjoint)
        return int(np.count_nonzero(q.weight, axis=0) @ per_k)
    return int(q.nnz)


# ---------------------------------------------------------------------------------------
# hand counts
# ---------------------------------------------------------------------------------------

def test_dense_larger_than_crossbar_both_ways():
    # W is 600 pre x 300 post on 256x256: ceil(300/256) = 2 column blocks (256 + 44 posts),
    # ceil(600/256) = 3 row chunks (256 + 256 + 88 rows) -> 6 crossbars, 2 soma + 4 partial.
    net = dense_net(600, 300)
    T = tile(net, chip())
    assert len(T.tiles) == 6 and sum(t.kind == "partial" for t in T.tiles) == 4
    assert [t.block for t in T.tiles] == [("dense", b, j) for b in (0, 1) for j in (0, 1, 2)]
    assert [t.n_axons for t in T.tiles] == [256, 256, 88] * 2
    assert [t.n_neurons for t in T.tiles] == [256] * 3 + [44] * 3
    assert [t.soma for t in T.tiles] == [0, 0, 0, 3, 3, 3]
    # a dense W uses every cell of its rectangle: utilisation = rows x cols / 65,536
    np.testing.assert_array_equal(T.utilisation(), [1.0, 1.0, 88 * 256 / 65536,
                                                    256 * 44 / 65536, 256 * 44 / 65536, 88 * 44 / 65536])
    assert T.fold == {"out": 1} and len(T.cores) == 6 and T.chips_needed == 1
    check_exact(net, T)


def test_conv3x3_same_padding():
    # 16 -> 32 channels, 3x3, pad 1, 16x16. Axons of a ph x pw patch: 16 (ph+2)(pw+2) <= 256
    # -> (ph+2)(pw+2) <= 16 -> 2x2 (256 axons); neurons cb*4 <= 256 -> cb = 32 (all channels):
    # 1 channel block x 8 x 8 patches = 64 tiles, no partial sums. Lower bound check: 8,192
    # neurons need 32 blocks of 256 (32ch x 2x4), whose 16 x 4 x 6 = 384 axons need 2 chunks
    # -> 64 as well, but with 32 partial tiles; 16x4x4 blocks need 3 chunks -> 96.
    net = conv_net(16, 32, 16, 3, 1, 1)
    T = tile(net, chip())
    assert T.blocks["out"] == {"kind": "conv", "block": (32, 2, 2), "in_chunks": 1}
    assert len(T.tiles) == 64 and all(t.kind == "soma" for t in T.tiles)
    by = {t.block: t for t in T.tiles}
    # corner patch: input rows/cols -1..2 clipped to 0..2 -> 16 x 3 x 3 = 144 axons; a border
    # patch 16 x 3 x 4 = 192; an interior one 16 x 4 x 4 = 256.
    assert by[("conv", 0, 0, 0, 0)].n_axons == 144
    assert by[("conv", 0, 0, 1, 0)].n_axons == 192
    assert by[("conv", 0, 3, 3, 0)].n_axons == 256
    # used cells: per output channel, fan-in 16 x valid taps; corner patch posts (0,0),(0,1),(1,0),(1,1)
    # have 4, 6, 6, 9 valid taps -> 32 x 16 x 25 = 12,800 cells = 19.53125 %; interior 32 x 16 x 36.
    u = dict(zip([t.block for t in T.tiles], T.utilisation()))
    assert by[("conv", 0, 0, 0, 0)].used_cells == 12_800 and u[("conv", 0, 0, 0, 0)] == 0.1953125
    assert by[("conv", 0, 3, 3, 0)].used_cells == 18_432 and u[("conv", 0, 3, 3, 0)] == 0.28125
    assert sum(t.used_cells for t in T.tiles) == net.projections[0].nnz
    check_exact(net, T)


def test_strided_conv():
    # 4 -> 8 channels, 3x3, stride 2, pad 1, 16x16 -> 8x8. A patch of ph output rows reads
    # 2 ph + 1 input rows (clipped): 4 (2ph+1)(2pw+1) <= 256 -> (2ph+1)(2pw+1) <= 64.
    # 3x4 patches: 7 x 9 = 63 -> 252 axons, 8 x 12 = 96 neurons -> 3 x 2 patches = 6 tiles.
    # Nothing has fewer: 512 neurons need >= 2 blocks; the block counts possible with 1 chunk
    # are >= 6 (4x4 needs 81 rows/channel -> 2 chunks x 4 = 8). 4x3 ties (6 tiles, same axon
    # total 1,224); the smaller ph wins. Rows per patch: ph=3 -> [6, 7, 5], pw=4 -> [8, 9].
    net = conv_net(4, 8, 16, 3, 2, 1)
    T = tile(net, chip())
    assert T.blocks["out"]["block"] == (8, 3, 4)
    assert [t.n_axons for t in T.tiles] == [4 * h * w for h in (6, 7, 5) for w in (8, 9)]
    assert [t.n_neurons for t in T.tiles] == [96] * 4 + [64] * 2
    # tile (0, 0): output rows 0..2 see 2+3+3 valid taps, cols 0..3 see 2+3+3+3:
    # 8 out x 4 in x 8 x 11 = 2,816 cells
    assert T.tiles[0].used_cells == 2_816
    check_exact(net, T)


def test_fan_in_above_axons_needs_partial_sums():
    # 64 -> 64 channels 3x3 pad 1 on 8x8: one neuron has 64 x 9 = 576 inputs > 256 axons.
    # A 2x2 patch reads 4x4 rows per channel, so 16 channels fill a crossbar: 4 input chunks.
    # Block 64 x 2 x 2 = 256 neurons -> 16 blocks x 4 chunks = 64 tiles (16 soma + 48 partial).
    # (1x4: 18 rows/channel -> 14 ch/chunk -> 5 chunks x 16 = 80; 1x1: 192.)
    net = conv_net(64, 64, 8, 3, 1, 1)
    T = tile(net, chip())
    assert T.blocks["out"] == {"kind": "conv", "block": (64, 2, 2), "in_chunks": 4}
    assert len(T.tiles) == 64 and sum(t.kind == "partial" for t in T.tiles) == 48
    interior = [t for t in T.tiles if t.block[2:4] == (1, 1)]
    assert [t.n_axons for t in interior] == [256] * 4
    assert [t.axons[0][2].min() // 64 for t in interior] == [0, 16, 32, 48]  # channel chunks
    # partial sums: 48 partial tiles x 256 neurons x ceil(16/32) flit, to their soma's core
    tr = flows_from_tiling(T).traffic().tocoo()
    core_of = T.core_of
    ps = sum(tr.tocsr()[core_of[t.id], core_of[t.soma]] for t in T.tiles if t.kind == "partial")
    assert ps == 48 * 256
    check_exact(net, T)


def _pooled_graph():
    rng = np.random.default_rng(3)
    ones = lambda *s: np.ones(s, np.float32)  # noqa: E731
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4, 16, 16])}),
        "c1": nir.Conv2d(input_shape=(16, 16), weight=rng.standard_normal((8, 4, 3, 3)).astype(np.float32),
                         stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(8, np.float32)),
        "if1": nir.IF(r=ones(8, 16, 16), v_threshold=ones(8, 16, 16), v_reset=0 * ones(8, 16, 16)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "c2": nir.Conv2d(input_shape=(8, 8), weight=rng.standard_normal((8, 8, 3, 3)).astype(np.float32),
                         stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(8, np.float32)),
        "if2": nir.IF(r=ones(8, 8, 8), v_threshold=ones(8, 8, 8), v_reset=0 * ones(8, 8, 8)),
        "output": nir.Output(output_type={"output": np.array([8, 8, 8])}),
    }
    names = list(nodes)
    return models.Graph(nodes, list(zip(names[:-1], names[1:])))


def test_pooled_layer_composed_into_conv():
    # SumPool 2x2 then conv 3x3 pad 1 lowers to one conv: kernel 2(3-1)+2 = 6, stride 2, pad 2,
    # 8 ch 16x16 -> 8 ch 8x8. Output rows i..i+ph-1 read input rows 2i-2 .. 2(i+ph-1)+3, clipped
    # to 0..15. 4x4 patches: outputs 0..3 read rows 0..9 and outputs 4..7 rows 6..15: 10 x 10 =
    # 100 axons per channel -> 2 channels per chunk -> 4 chunks; 8 x 16 = 128 neurons ->
    # 4 patches x 4 chunks = 16 tiles (12 partial). Nothing has fewer: 3 chunks would need
    # <= 85 rows per channel with <= 4 blocks (4x4 has 100, 2x8 has 8 x 16 = 128), 2 blocks
    # need 8 chunks. 2x8 ties (16 tiles, 12 partial) but wires 8 x 28 x 16 = 3,584 axons in
    # total against 8 x 20 x 20 = 3,200 for 4x4.
    net = models.lower(_pooled_graph())
    q = net.projections[1]
    assert (q.geom.kernel, q.geom.stride, q.geom.padding) == ((6, 6), (2, 2), (2, 2))
    T = tile(net, chip())
    assert T.blocks["if2"] == {"kind": "conv", "block": (8, 4, 4), "in_chunks": 4}
    t2 = [t for t in T.tiles if t.population == "if2"]
    assert len(t2) == 16 and sum(t.kind == "partial" for t in t2) == 12
    assert [t.n_axons for t in t2] == [2 * 10 * 10] * 16
    check_exact(net, T)


def _residual_graph():
    """input -> c1 -> a -> c2 -> b -> c3 -> c (+ identity skip from a) -> c4 (s2) -> e -> c5 -> d
    (+ 1x1 stride-2 downsample of c): a ResNet stage in miniature."""
    rng = np.random.default_rng(5)

    def conv(cin, cout, k, s, p, hw):
        return nir.Conv2d(input_shape=(hw, hw), weight=rng.standard_normal((cout, cin, k, k)).astype(np.float32),
                          stride=(s, s), padding=(p, p), dilation=(1, 1), groups=1, bias=np.zeros(cout, np.float32))

    def if_(*s):
        return nir.IF(r=np.ones(s, np.float32), v_threshold=np.ones(s, np.float32), v_reset=np.zeros(s, np.float32))

    nodes = {"input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
             "c1": conv(2, 8, 3, 1, 1, 8), "a": if_(8, 8, 8), "c2": conv(8, 8, 3, 1, 1, 8), "b": if_(8, 8, 8),
             "c3": conv(8, 8, 3, 1, 1, 8), "c": if_(8, 8, 8),
             "c4": conv(8, 16, 3, 2, 1, 8), "e": if_(16, 4, 4), "c5": conv(16, 16, 3, 1, 1, 4),
             "d3": conv(8, 16, 1, 2, 0, 8), "d": if_(16, 4, 4),
             "output": nir.Output(output_type={"output": np.array([16, 4, 4])})}
    edges = [("input", "c1"), ("c1", "a"), ("a", "c2"), ("c2", "b"), ("b", "c3"), ("c3", "c"), ("a", "c"),
             ("c", "c4"), ("c4", "e"), ("e", "c5"), ("c5", "d"), ("c", "d3"), ("d3", "d"), ("d", "output")]
    return models.Graph(nodes, edges)


def test_residual_union_of_axon_spaces():
    net = models.lower(_residual_graph())
    kinds = sorted(q.kind for q in net.incoming("c"))
    assert kinds == ["conv", "sparse"]  # conv + identity skip share one axon space
    T = tile(net, chip(axons=64, neurons=64))
    # the identity skip is tiled as a depthwise 1x1 conv: the population stays conv-tiled, its
    # tiles carry rows of both sources, and identical patches still share weight groups
    assert T.blocks["c"]["kind"] == "conv"
    srcs = {src for t in T.tiles if t.population == "c" for src, _, _ in t.axons}
    assert srcs == {"a", "b"}
    assert T.blocks["d"]["kind"] == "conv"
    check_exact(net, T)
    # Hand count for c on 64x64 crossbars: conv b->c (8 ch, 3x3 pad 1, 8x8) + identity a->c.
    # 512 neurons need >= 8 blocks of 64. Block 8 x 2x4: the conv reads at most 4 x 5 rows per
    # channel (patch cols 0..3 -> input -1..4 clipped, 4..7 -> 3..8 clipped), so 3 channels
    # (60 rows) per chunk; the skip reads 2 x 4 = 8 rows per channel. Next-fit: [b 0-2],
    # [b 3-5], [b 6-7 + a 0-2] = 40 + 24, [a 3-7] = 40 -> 4 chunks x 8 patches = 32 tiles.
    assert T.blocks["c"] == {"kind": "conv", "block": (8, 2, 4), "in_chunks": 4}
    tc = [t for t in T.tiles if t.population == "c"]
    assert len(tc) == 32
    inner = [[(s, i.size) for s, _, i in t.axons] for t in tc if t.block[2:4] == (1, 1)]
    assert inner == [[("b", 60)], [("b", 60)], [("b", 40), ("a", 24)], [("a", 40)]]
    # every chunk, the mixed one included, is one weight group over the 8 patches: fold 8 -> 4 crossbars
    assert len({t.weight_group for t in tc}) == 4
    T8 = tile(net, chip(axons=64, neurons=64), max_fold=8)
    assert T8.fold["c"] == 8 and sum(T8.tiles[x[0]].population == "c" for x in T8.crossbars) == 4


def test_other_projection_and_shared_key_into_conv_population():
    # a random sparse projection into a conv population is tiled by its exact rows per block,
    # after the conv channels; chunks holding such rows differ per patch and are never folded.
    rng = np.random.default_rng(7)
    g = ConvGeometry(3, 6, (8, 8), (3, 3), (1, 1), (1, 1))
    pops = [Population("input", "input", (3, 8, 8)), Population("h", "IF", (5,)), Population("out", "IF", (6, 8, 8))]
    rnd = sp.random(5, 384, density=0.3, random_state=1, format="csr")
    projs = [DenseProjection("in->h", "input", "h", rng.standard_normal((5, 192))),
             ConvProjection("in->out", "input", "out", rng.standard_normal((6, 3, 3, 3)), g),
             SparseProjection("h->out", "h", "out", rnd)]
    net = Net(pops, projs, "out")
    T = tile(net, chip(axons=32, neurons=32))
    assert T.blocks["out"]["kind"] == "conv"
    mixed = [t for t in T.tiles if any(src == "h" for src, _, _ in t.axons)]
    assert mixed and len({t.weight_group for t in mixed}) == len(mixed)
    check_exact(net, T)
    # two convolutions on one axon space (3x3 pad 1 + 1x1 pad 0) merge into one 3x3 conv whose
    # centre tap is the sum: they share rows, a synapse both define is one cell
    g1 = ConvGeometry(3, 6, (8, 8), (1, 1))
    net2 = Net(pops, projs + [ConvProjection("in->out 1x1", "input", "out", rng.standard_normal((6, 3, 1, 1)), g1)],
               "out")
    T2 = tile(net2, chip(axons=32, neurons=32))
    assert T2.blocks["out"]["kind"] == "conv"
    assert sum(t.used_cells for t in T2.tiles if t.population == "out") == projs[1].nnz + rnd.nnz
    check_exact(net2, T2)
    # ... unless their dilations differ: the exact dense rule
    g2 = ConvGeometry(3, 6, (8, 8), (3, 3), (1, 1), (2, 2), (2, 2))
    net3 = Net(pops, projs + [ConvProjection("in->out d2", "input", "out", rng.standard_normal((6, 3, 3, 3)), g2)],
               "out")
    T3 = tile(net3, chip(axons=32, neurons=32))
    assert T3.blocks["out"]["kind"] == "dense"
    check_exact(net3, T3)


# ---------------------------------------------------------------------------------------
# block choice against brute force
# ---------------------------------------------------------------------------------------

def _brute_min_tiles(q, A, N):
    """Smallest tile count over EVERY (cb, ph, pw), with axons measured on the explicit matrix."""
    g = q.geom
    C, OH, OW = g.out_shape
    pat = q.to_csr() != 0  # (n_pre, n_post)
    pat = sp.csc_matrix(pat)
    H, W = g.in_hw
    best = None
    for cb in range(1, C + 1):
        for ph in range(1, OH + 1):
            for pw in range(1, OW + 1):
                if cb * ph * pw > N:
                    continue
                worst_rows, chunks = 0, 1
                per_block = []
                for c0 in range(0, C, cb):
                    for y0 in range(0, OH, ph):
                        for x0 in range(0, OW, pw):
                            c, y, x = np.meshgrid(np.arange(c0, min(C, c0 + cb)), np.arange(y0, min(OH, y0 + ph)),
                                                  np.arange(x0, min(OW, x0 + pw)), indexing="ij")
                            posts = ((c * OH + y) * OW + x).ravel()
                            rows = np.unique(pat[:, posts].indices)
                            ch, pos = np.divmod(rows, H * W)
                            nch = np.unique(ch).size
                            per_ch = np.bincount(ch).max(initial=0)
                            worst_rows = max(worst_rows, per_ch)
                            per_block.append(nch)
                if worst_rows > A:
                    continue
                chunks = max(-(-n // (A // worst_rows)) for n in per_block) if worst_rows else 1
                n = len(per_block) * max(chunks, 1)
                best = n if best is None else min(best, n)
    return best


@pytest.mark.parametrize("cin,cout,hw,k,s,p,groups,A,N", [
    (3, 4, 6, 3, 1, 1, 1, 32, 16),
    (4, 6, 7, 3, 2, 1, 1, 40, 24),
    (2, 4, 6, 2, 2, 0, 2, 8, 12),     # grouped
    (4, 4, 8, 2, 2, 0, 4, 16, 16),    # depthwise (a pooling)
    (5, 3, 6, 5, 1, 2, 1, 30, 20),    # fan-in 125 > 30 axons
])
def test_block_choice_is_optimal(cin, cout, hw, k, s, p, groups, A, N):
    net = conv_net(cin, cout, hw, k, s, p, groups)
    T = tile(net, chip(axons=A, neurons=N, memory=A * N + 16 * N * 2))
    assert len(T.tiles) == _brute_min_tiles(net.projections[0], A, N)
    check_exact(net, T)


def test_nextfit_vectorised_matches_packing():
    rng = np.random.default_rng(0)
    for _ in range(300):
        A = int(rng.integers(5, 60))
        runs = [(i, int(rng.integers(0, 20)), int(rng.integers(0, A + 1))) for i in range(int(rng.integers(1, 5)))]
        bins, fill = np.array(1), np.array(0)
        for _i, n, w in runs:
            bins, fill = nextfit_vec(bins, fill, n, w, A)
        chunks = pack_chunks(runs, A)
        assert int(bins) == len(chunks)
        for ch in chunks:
            assert sum((e - s) * runs[i][2] for i, s, e in ch) <= A


# ---------------------------------------------------------------------------------------
# cores: crossbars per core, folding, fold choice
# ---------------------------------------------------------------------------------------

def test_two_crossbars_per_core_halve_the_cores():
    net = dense_net(600, 300)  # 6 tiles, 6 distinct weight matrices
    assert len(tile(net, chip()).cores) == 6
    T = tile(net, chip(cpc=2, memory=2 * 65_536 + 2 * 512))
    assert T.cores == [[0, 1], [2, 3], [4, 5]]
    # 64->64 conv: 64 tiles in 16 x 4 chunk weight groups -> 32 cores of 2 crossbars
    net = conv_net(64, 64, 8, 3, 1, 1)
    T1, T2 = tile(net, chip(), fold=1), tile(net, chip(cpc=2, memory=2 * 65_536 + 2 * 512), fold=1)
    assert len(T1.cores) == 64 and len(T2.cores) == 32
    assert all(len({T2.tiles[t].weight_group for t in c}) == 2 for c in T2.cores)
    # memory decides too: room for one crossbar only -> no halving
    assert len(tile(net, chip(cpc=2), fold=1).cores) == 64


def test_folding_trades_cores_for_state_and_cycles():
    # 16->32 3x3 conv: 64 patches of one weight group (32x2x2, 128 neurons each).
    net = conv_net(16, 32, 16, 3, 1, 1)
    for f in (1, 2, 4, 8, 16):
        T = tile(net, chip(), max_fold=f)
        assert T.fold["out"] == f and len(T.cores) == 64 // f and T.cycles_factor == f
        mem = T.core_memory()
        assert (mem[:, 0] == 65_536).all()                   # weights stored once per core
        assert (mem[:, 1] == f * 128 * 16 // 8).all()         # state of f blocks x 128 neurons
    # weights held: fold 1 stores every tile's expanded kernel, 64 tiles = all 8,192 x 144 - edge
    # synapses (the projection's nnz) for 16 x 32 x 9 = 4,608 unique weights. Fold 4 groups
    # 4 patches of a patch row: rows 0 and 7 hold [corner, border x 3] (largest 15,360 cells),
    # rows 1..6 [border, interior x 3] (18,432): 4 x 15,360 + 12 x 18,432 = 282,624 cells.
    r1 = tile(net, chip(), max_fold=1).per_population()[0]
    assert r1["weights_stored"] == net.projections[0].nnz and r1["unique_weights"] == 4_608
    r4 = tile(net, chip(), max_fold=4).per_population()[0]
    assert r4["weights_stored"] == 282_624 and r4["crossbars"] == 16 and r4["state_bytes_per_core"] == 1_024
    # balanced fold: 64 patches at cap 10 -> ceil(64/10) = 7 crossbars of ceil(64/7) = 10 -> fold 10
    T = tile(net, chip(), max_fold=10)
    assert T.fold["out"] == 10 and len(T.cores) == 7
    # exact fold per population, clipped to the patch count
    assert tile(net, chip(), fold={"out": 3}).fold["out"] == 3
    # partial-sum chunks fold too: 64->64 conv, 16 patches x 4 chunk groups
    T = tile(conv_net(64, 64, 8, 3, 1, 1), chip(), max_fold=4)
    assert len(T.cores) == 16 and all(len({T.tiles[t].block[4] for t in c}) == 1 for c in T.cores)


def test_auto_fold_is_smallest_that_fits():
    net = conv_net(16, 32, 16, 3, 1, 1)  # 64 tiles
    T = tile(net, chip(width=2, height=2, max_chips=4))  # 16 cores
    assert T.fold["out"] == 4 and len(T.cores) == 16 and T.fits
    T = tile(net, chip(width=2, height=2, max_chips=1))  # 4 cores: even fold 16 does not fit
    assert T.fold["out"] == 16 and len(T.cores) == 4 and T.fits
    T = tile(net, chip(width=1, height=1, max_chips=2))
    assert not T.fits and T.chips_needed == 4


def test_errors_name_the_limit():
    net = dense_net(10, 10)
    with pytest.raises(TilingError, match="core.max_fold"):
        tile(conv_net(4, 4, 8, 3, 1, 1), chip(max_fold=4), fold=8)
    with pytest.raises(TilingError, match="not a convolution"):
        tile(net, chip(), fold={"out": 2})
    with pytest.raises(TilingError, match="memory_bytes"):
        tile(conv_net(4, 4, 8, 3, 1, 1), chip(memory=65_536 + 4 * 512), fold=8)
    with pytest.raises(TilingError, match="core.neurons"):
        tile(net, NS(core=NS(axons=256), mesh=chip().mesh))
    with pytest.raises(TilingError, match="one crossbar"):
        tile(net, chip(memory=1000))


def test_traffic_matrix():
    # 600x300 dense: cores 0..5 = tiles (b0: j0 j1 j2), (b1: j0 j1 j2); I/O port = 6.
    net = dense_net(600, 300)
    T = tile(net, chip())
    tr = flows_from_tiling(T, rates={"input": 0.5}).traffic().toarray()
    assert tr.shape == (7, 7)
    # input spikes (rate 0.5) reach the two column blocks' tiles of their row chunk
    np.testing.assert_array_equal(tr[6, :6], 0.5 * np.array([256, 256, 88, 256, 256, 88]))
    # partial sums: one 16-bit value per neuron = 1 flit of 32 bits
    assert tr[1, 0] == tr[2, 0] == 256 and tr[4, 3] == tr[5, 3] == 44
    assert tr.sum() == 0.5 * 1200 + 2 * 256 + 2 * 44
    assert flows_from_tiling(T, psum_bits=40).traffic().toarray()[1, 0] == 512


# ---------------------------------------------------------------------------------------
# real models
# ---------------------------------------------------------------------------------------

def _invariants(net, T, A=256, N=256):
    assert all(t.n_axons <= A and t.n_neurons <= N for t in T.tiles)
    used: dict = {}
    for t in T.tiles:
        used[t.population] = used.get(t.population, 0) + t.used_cells
    for p in net.populations[1:]:
        assert used[p.name] == sum(expected_nnz(q) for q in net.incoming(p.name)), p.name
        assert sum(t.n_neurons for t in T.tiles if t.population == p.name and t.kind == "soma") == p.size


def _report(name, net):
    rows = []
    t0 = time.perf_counter()
    T1 = tile(net, chip(), max_fold=1)
    dt = time.perf_counter() - t0
    for f in (1, 2, 4, 8, 16):
        T = T1 if f == 1 else tile(net, chip(), max_fold=f)
        rows.append(f"fold {f:>2}: {len(T.tiles):>7,} tiles {T.n_cores:>7,} cores {T.chips_needed:>4} chips")
    print(f"\n{name}: tiled in {dt:.2f} s\n" + "\n".join(rows))
    return T1


def test_nir_paper_cnn(nir_cnn):
    net = models.lower(nir_cnn)
    T = _report("NIR CNN", net)
    # first conv: 2 ch 34x34, 5x5 s2 p1 -> 16 x 16x16. A 4x4 patch reads (4-1)2+5 = 11 rows and
    # columns: 2 x 11 x 11 = 242 axons; 16 x 4 x 4 = 256 neurons -> 16 tiles, the lower bound.
    assert T.blocks["1"]["block"] == (16, 4, 4) and sum(t.population == "1" for t in T.tiles) == 16
    # 8x8x8 -> pool -> 128 -> FC 256: every one of the 512 inputs reaches every neuron: 2 chunks
    assert [t.n_axons for t in T.tiles if t.population == "10"] == [256, 256]
    _invariants(net, T)
    check_exact(net, T)


def test_trained_mnist_models():
    mlp = models.lower(models.read_nir(TRAINED / "mnist_mlp.nir"))
    T = _report("mnist_mlp", mlp)
    # 784 -> 400 (MAC: real-valued pixels): 2 column blocks x ceil(784/256) = 4 chunks = 8 tiles
    assert [t.mode for t in T.tiles if t.population == "if1"] == ["MAC"] * 8
    assert len(T.tiles) == 8 + 2  # 400 -> 10: 2 chunks
    check_exact(mlp, T)
    cnn = models.lower(models.read_nir(TRAINED / "mnist_cnn.nir"))
    T = _report("mnist_cnn", cnn)
    # if1 -> if2: 12 ch x 10x10 kernel (pool composed) = 1,200 inputs per neuron > 256
    assert max(q.max_fan_in() for q in cnn.incoming("if2")) == 1200
    assert T.blocks["if2"]["in_chunks"] > 1
    _invariants(cnn, T)


@pytest.mark.slow
def test_vgg16_cifar_and_resnet18_imagenet():
    from models.zoo import build

    vgg = models.lower(build("vgg16", shape="cifar"))
    T = _report("vgg16 cifar", vgg)
    _invariants(vgg, T)
    res = models.lower(build("resnet18", shape="imagenet"))
    t0 = time.perf_counter()
    T = tile(res, chip())
    dt = time.perf_counter() - t0
    print(f"resnet18 imagenet: auto fold {max(T.fold.values())}: {len(T.tiles):,} tiles, {T.n_cores:,} cores, "
          f"{T.chips_needed} chips, {dt:.2f} s")
    assert dt < 15
    assert T.fits and T.n_cores <= 156 * 64
    _invariants(res, T)
    # the identity skips are tiled as depthwise 1x1 convolutions (folded with their block)
    assert T.blocks["layer1.1.if2"]["kind"] == "conv"


def test_tile_counts_without_building_them():
    # a tiling that failed counts the other layers' tiles for its error text without building
    # them; the count must be what make_tiles builds (partial chunks, empty edge chunks, skips, others)
    from mapper.tiling.conv import conv_layout
    from mapper.tiling.dense import DenseLayout
    from mapper.tiling.limits import read_chip

    rng = np.random.default_rng(7)
    g = ConvGeometry(3, 6, (8, 8), (3, 3), (1, 1), (1, 1))
    pops = [Population("input", "input", (3, 8, 8)), Population("h", "IF", (5,)), Population("out", "IF", (6, 8, 8))]
    others = Net(pops, [DenseProjection("in->h", "input", "h", rng.standard_normal((5, 192))),
                        ConvProjection("in->out", "input", "out", rng.standard_normal((6, 3, 3, 3)), g),
                        SparseProjection("h->out", "h", "out", sp.random(5, 384, density=0.3, random_state=1,
                                                                          format="csr"))], "out")
    cases = [(models.lower(_residual_graph()), chip(axons=64, neurons=64)), (others, chip(axons=32, neurons=32)),
             (conv_net(40, 8, 9, 3, 2, 1), chip(axons=64, neurons=16)), (dense_net(600, 300), chip())]
    counts = {}
    for i, (net, c) in enumerate(cases):
        hw = read_chip(c)
        for pop in net.populations[1:]:
            projs = net.incoming(pop.name)
            lay = conv_layout(pop, projs, net, hw) or DenseLayout(pop, projs, hw)
            counts[i, pop.name] = lay.count_tiles()
            assert counts[i, pop.name] == len(lay.make_tiles(0, iter(range(1 << 30)).__next__))
    # hand counts: c as in test_residual_union_of_axon_spaces; 300 x 600 dense on 256 x 256 crossbars is
    # 2 column blocks x 3 row chunks
    assert counts[0, "c"] == 32 and counts[3, "out"] == 6
