"""The geometric conv event path (hwsim.conv_rows, issue 17): a convolution compiled
as its kernel once plus per-row counts gives the same spikes, membranes, counters and
cycles as the explicit crossbar rows (the test oracle) and as the integer reference;
its rows' counts equal the explicit rows'; its program and kernel tables stay under
a byte budget that follows the weights, neurons and rows."""

from __future__ import annotations

import os

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hwsim.chip import load_chip
from hwsim.conv_rows import post_box
from hwsim.engine import reference_net, simulate
from hwsim.engine.build import kernel_inputs
from hwsim.program import ProgramError, compile
from mapper.mapping import map_model
from models import Graph
from models.errors import SnnchipError
from models.intref import simulate_int
from models.net import ConvProjection, DenseProjection, Net, Population
from models.ops import ConvGeometry, conv_out_size

settings.register_profile("conv_dev", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("conv_ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_PROFILE = "conv_ci" if os.environ.get("HYPOTHESIS_PROFILE") == "ci" or os.environ.get("CI") else "conv_dev"


def _pop(name, model, shape, rng=None, **params):
    n = int(np.prod(shape))
    prm = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy() for k, v in params.items()}
    return Population(name, model, tuple(shape), prm)


def _same_runs(a, b, what):
    """Two RunResults agree on every spike, membrane, output, counter and timing value."""
    assert set(a.spikes) == set(b.spikes)
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k], err_msg=f"{what}: spikes of {k}")
        np.testing.assert_array_equal(a.membrane[k], b.membrane[k], err_msg=f"{what}: membrane of {k}")
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.counters, b.counters, err_msg=f"{what}: counters")
    assert (a.timing is None) == (b.timing is None)
    if a.timing is not None:
        assert set(a.timing) == set(b.timing)
        for k in a.timing:
            np.testing.assert_equal(a.timing[k], b.timing[k], err_msg=f"{what}: timing {k}")


def _check_both_paths(m, x, reset="subtract", spikes="binary"):
    """Compile ``m`` both ways; rows' counts, runs (timed) and the integer reference agree.
    Returns the geometric program."""
    rows = compile(m, conv_path="rows")
    geo = compile(m, conv_path="geometric")
    for f in ("row_src", "row_delay", "row_pre", "row_mac", "row_ncols", "row_nent", "tile_row_ptr"):
        np.testing.assert_array_equal(getattr(rows, f), getattr(geo, f), err_msg=f)
    np.testing.assert_array_equal(rows.row_nent, np.diff(rows.row_ptr))
    assert rows.geo_proj.size == 0
    r_rows = simulate(rows, x, reset=reset, spikes=spikes, record="all", timing=True, timing_samples=x.shape[1])
    r_geo = simulate(geo, x, reset=reset, spikes=spikes, record="all", timing=True, timing_samples=x.shape[1])
    _same_runs(r_rows, r_geo, "rows vs geometric")
    ref = simulate_int(reference_net(m.net, m.chip.timing.mode), x, reset=reset, spikes=spikes, record="all")
    for k in ref.spikes:
        np.testing.assert_array_equal(r_geo.spikes[k], ref.spikes[k], err_msg=f"spikes of {k}")
        np.testing.assert_array_equal(r_geo.membrane[k], ref.membrane[k], err_msg=f"membrane of {k}")
    return geo


@st.composite
def conv_nets(draw):
    """(net, x): input (C, H, W) -> conv -> a -> conv (strided) -> b -> dense -> o, with
    random kernel, stride, padding, dilation, groups, delay and sparsity; sometimes a
    second conv on the first's axons (merged by the mapper: explicit rows) or a dense
    skip into the conv population (explicit rows next to geometric ones)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    g1 = draw(st.sampled_from([1, 1, 2]))
    C = g1 * draw(st.integers(1, 2))
    H, W = draw(st.integers(3, 9)), draw(st.integers(1, 9))
    K1 = g1 * draw(st.integers(1, 3))

    def geom(cin, cout, hw, groups):
        for _ in range(20):
            k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
            s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
            p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
            d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            if all(conv_out_size(hw[a], k[a], s[a], p[a], d[a]) >= 1 for a in (0, 1)):
                return ConvGeometry(cin, cout, hw, k, s, p, d, groups)
        return ConvGeometry(cin, cout, hw, (1, 1), groups=groups)

    ga = geom(C, K1, (H, W), g1)
    g2 = draw(st.sampled_from([1, K1])) if K1 > 1 else 1
    K2 = g2 * draw(st.integers(1, 2))
    gb = geom(K1, K2, tuple(ga.out_hw), g2)
    spiking = draw(st.booleans())

    def kernel(g):
        w = rng.normal(0, 0.8, (g.out_channels, g.in_channels // g.groups) + tuple(g.kernel))
        return w * (rng.random(w.shape) < draw(st.sampled_from([0.5, 0.9, 1.0])))

    thr = dict(r=1.0, v_reset=0.0)
    inp = Population("in", "input", (C, H, W))
    a = _pop("a", draw(st.sampled_from(["IF", "LIF"])), ga.out_shape, tau=3.0, v_leak=0.0,
             v_threshold=rng.uniform(0.4, 1.2, int(np.prod(ga.out_shape))), **thr)
    b = _pop("b", "IF", gb.out_shape, v_threshold=0.8, **thr)
    o = _pop("o", "IF", (4,), v_threshold=1.0, **thr)
    nb = int(np.prod(gb.out_shape))
    projs = [ConvProjection("c1", "in", "a", kernel(ga), ga, delay_steps=draw(st.integers(0, 1))),
             ConvProjection("c2", "a", "b", kernel(gb), gb),
             DenseProjection("d", "b", "o", rng.normal(0, 1.0, (4, nb)))]
    extra = draw(st.sampled_from(["none", "merged", "skip"]))
    if extra == "merged":  # same axons as c1: merged into one conv by the mapper, rows kept explicit
        projs.append(ConvProjection("c1b", "in", "a", kernel(ga), ga, delay_steps=projs[0].delay_steps))
    elif extra == "skip":
        projs.append(DenseProjection("sk", "in", "a", rng.normal(0, 0.2, (ga.out_shape[0] * int(np.prod(
            ga.out_hw)), C * H * W)) * (rng.random((int(np.prod(ga.out_shape)), C * H * W)) < 0.2), delay_steps=2))
    net = Net([inp, a, b, o], projs, "o", input_spiking=spiking)
    T, B = draw(st.integers(2, 5)), draw(st.integers(1, 2))
    x = rng.random((T, B, C, H, W))
    if spiking:
        x = (x < 0.4).astype(np.float32)
    return net, x, extra


@st.composite
def small_chips(draw):
    axons = draw(st.sampled_from([8, 16, 32, 64]))
    neurons = draw(st.sampled_from([4, 8, 16, 64]))
    mesh = draw(st.sampled_from([2, 4]))  # 2x2 cores per chip: most nets span several chips
    return load_chip("tiny").with_overrides({
        "core.axons": axons, "core.neurons": neurons, "mesh.width": mesh, "mesh.height": mesh,
        "mesh.max_chips": 256, "core.memory_bytes": 1 << 16, "core.routing_entries": 4096,
        "core.neuron_models": ["IF", "LIF", "CubaLIF", "LI"],
        "timing.mode": draw(st.sampled_from(["sync", "pipelined"])),
        "noc.multicast": draw(st.sampled_from(["unicast", "xy-tree"]))})


@settings(settings.get_profile(_PROFILE))
@given(case=conv_nets(), chip=small_chips(), reset=st.sampled_from(["zero", "subtract"]),
       spikes=st.sampled_from(["binary", "multi"]), max_fold=st.sampled_from([None, 1, 4]))
def test_geometric_equals_rows_random_conv_nets(case, chip, reset, spikes, max_fold):
    """Random conv nets (kernel 1-4, stride 1-3, padding 0-2, dilation 1-2, groups,
    sparse kernels, delays, merged convs and dense skips into a conv population) on
    small multi-chip meshes with partial sums and folding (fold cap 1, 4 or the
    mapper's choice), unicast and tree multicast, sync and pipelined: the
    geometric and the explicit-row program agree on spikes, membranes, every counter
    and every timing value, and both equal the integer reference."""
    net, x, extra = case
    try:
        m = map_model(net, chip, max_fold=max_fold)
    except SnnchipError as err:
        assert str(err)
        event("refused by the mapper")
        return
    geo = _check_both_paths(m, x, reset, spikes)
    chips = len({tuple(c) for c in geo.core_chip.tolist()})
    event(f"{extra}; {geo.geo_proj.size} geometric; "
          f"{'partial sums' if (geo.tile_kind == 1).any() else 'no partial sums'}; "
          f"{'multi-chip' if chips > 1 else 'one chip'}; "
          f"{'folded' if max(m.tiling.fold.values(), default=1) > 1 else 'fold 1'}")


def _pooled_cnn(avg: bool):
    """input (2, 8, 8) -> conv 3x3 -> IF -> Avg/SumPool 2x2 -> conv 3x3 -> IF -> flatten ->
    affine -> IF: the lowering composes the pooling into the second conv (a 6x6 stride-2
    kernel on the unpooled map)."""
    rng = np.random.default_rng(3)
    ones = np.ones

    def if_(shape, thr):
        return nir.IF(r=ones(shape, np.float32), v_threshold=np.full(shape, thr, np.float32),
                      v_reset=np.zeros(shape, np.float32))

    pool = (nir.AvgPool2d if avg else nir.SumPool2d)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                     padding=np.array([0, 0]))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.6, (4, 2, 3, 3)).astype(np.float32),
                            stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(4, np.float32)),
        "if1": if_((4, 8, 8), 0.8),
        "pool": pool,
        "conv2": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0, 0.6, (6, 4, 3, 3)).astype(np.float32),
                            stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(6, np.float32)),
        "if2": if_((6, 4, 4), 0.6),
        "flat": nir.Flatten(input_type={"input": np.array([6, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.3, (5, 96)).astype(np.float32), bias=np.zeros(5, np.float32)),
        "if3": if_((5,), 0.7),
        "output": nir.Output(output_type={"output": np.array([5])}),
    }
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "pool"), ("pool", "conv2"), ("conv2", "if2"),
             ("if2", "flat"), ("flat", "fc"), ("fc", "if3"), ("if3", "output")]
    return Graph(nodes, edges, dt=1.0)


@pytest.mark.parametrize("avg", [True, False])
def test_pooling_composed_conv_geometric(avg):
    """Avg / sum pooling composed into the next conv (6x6 stride 2 on the unpooled map,
    as models.lowering builds it) runs on the geometric path, equal to the rows path."""
    chip = load_chip("tiny").with_overrides({"core.axons": 32, "core.neurons": 16, "mesh.width": 4,
                                             "mesh.height": 4, "mesh.max_chips": 16,
                                             "core.memory_bytes": 1 << 16, "core.routing_entries": 4096})
    m = map_model(_pooled_cnn(avg), chip, input_spiking=True)
    q = next(q for q in m.net.projections if q.src == "if1")
    assert q.kind == "conv" and tuple(q.geom.kernel) == (6, 6) and tuple(q.geom.stride) == (2, 2)
    x = (np.random.default_rng(0).random((6, 3, 2, 8, 8)) < 0.5).astype(np.float32)
    geo = _check_both_paths(m, x)
    # the convolutions and the dense layer behind the flatten (hwsim.dense_rows) are geometric
    assert sorted(geo.proj_names[j] for j in geo.geo_proj) == sorted(
        p.name for p in m.net.projections if p.kind in ("conv", "dense"))
    assert (geo.tile_kind == 1).any()


def test_geometric_row_counts_by_hand():
    """A 1x3 kernel [1, 0, 2] (stride 1, padding 1) from a 1x4 map to a 1x4 map, one tile
    holding outputs j in [1, 3): pre x feeds output j through tap b = x + 1 - j; the row
    of x = 0 holds (j=1, b=0): w=1 -> 1 entry; x = 1: (1, b=1) w=0, (2, b=0) -> 1; x = 2:
    (1, b=2), (2, b=1) w=0 -> 1; x = 3: (2, b=2) -> 1 (and j=3 is outside the tile)."""
    from hwsim.conv_rows import ConvRows

    g = ConvGeometry(1, 1, (1, 4), (1, 3), (1, 1), (0, 1))
    q = ConvProjection("c", "in", "a", np.array([1.0, 0.0, 2.0]).reshape(1, 1, 1, 3), g)
    rows = ConvRows(0, q)
    n = rows.count(np.arange(4), np.array([1, 2]), soma=0)
    assert n.tolist() == [1, 1, 1, 1]
    n2 = rows.count(np.arange(4), np.array([0]), soma=1)  # output j = 0: x = 0 (b=1, w=0), x = 1 (b=2)
    n3 = rows.count(np.arange(4), np.array([3]), soma=2)  # j = 3: x = 2 (b=0), x = 3 (b=1, w=0)
    assert n2.tolist() == [0, 1, 0, 0] and n3.tolist() == [0, 0, 1, 0]
    rows.check()  # 6 synapses = conv_synapses: every one in exactly one tile
    assert q.nnz == 6
    rows.count(np.array([0]), np.arange(4), soma=3)
    with pytest.raises(ValueError, match="rows hold 7 synapses, the convolution has 6"):
        rows.check()
    with pytest.raises(ValueError, match="two tiles of soma tile 4"):
        rows.count(np.array([1]), np.arange(4), soma=4)
        rows.count(np.array([1]), np.arange(4), soma=4)
        rows.check()


def test_post_box():
    shape = (3, 4, 5)
    post = np.array([(c * 4 + i) * 5 + j for c in (1, 2) for i in (0, 1, 2) for j in (3, 4)])
    assert post_box(post, shape) == (1, 3, 0, 3, 3, 5)
    assert post_box(post[:-1], shape) is None  # not a full block
    assert post_box(np.arange(5), (5,)) is None


def test_bad_conv_path_and_missing_synapse():
    chip = load_chip("tiny").with_overrides({"core.axons": 32, "core.neurons": 16, "mesh.width": 4,
                                             "mesh.height": 4, "mesh.max_chips": 16,
                                             "core.memory_bytes": 1 << 16, "core.routing_entries": 4096})
    m = map_model(_pooled_cnn(True), chip, input_spiking=True)
    with pytest.raises(ProgramError, match="conv_path must be one of"):
        compile(m, conv_path="entries")
    # a tile that drops its axons: the rows path would silently lose synapses; the
    # geometric path's check names the projection
    t = next(t for t in m.tiling.tiles if t.population == "if2" and t.kind == "soma")
    t._axons = [(s, d, idx[1:]) for s, d, idx in t.axons]  # its first row dropped
    t.n_axons -= len(t._axons)  # and its row count with it (else compile names the tile's n_axons)
    with pytest.raises(ProgramError, match="synapses, the convolution has"):
        compile(m)


# ------------------------------------------------------------------ bytes follow the weights

def _cifar_conv_layer():
    """(mapping on Tianjic, float weights) of VGG's second block: 64 -> 128 channels, 3x3,
    padding 1, on 32x32, spiking input."""
    rng = np.random.default_rng(0)
    g = ConvGeometry(64, 128, (32, 32), (3, 3), (1, 1), (1, 1))
    inp = Population("in", "input", (64, 32, 32))
    a = _pop("a", "IF", (128, 32, 32), v_threshold=1.0, v_reset=0.0, r=1.0)
    w = rng.normal(0, 0.05, (128, 64, 3, 3))
    net = Net([inp, a], [ConvProjection("c", "in", "a", w, g)], "a", input_spiking=True)
    return map_model(net, load_chip("tianjic")), w


def test_cifar_conv_layer_bytes_follow_weights():
    """A CIFAR-size conv layer (VGG's second block: 64 -> 128 channels, 3x3, padding 1,
    on 32x32, spiking input) on Tianjic: program + kernel tables under
    ``256 B x (weights + neurons + rows)`` (73,728 weights, 196,608 neurons, 372,992
    crossbar rows: 164.7 MB). Measured: the geometric path 90.2 MB (rows 130 B each: the
    row arrays and one event record; neurons about 200 B each: parameters and routes in
    the program and again in the kernel tables; the kernel 0.07 MB); the explicit-row
    path (``conv_path="rows"``, the only path before) 1,232.8 MB for the same layer, its
    71,368,187 crossbar entries at 10 bytes in the program and 6 in the kernel tables,
    7.5x over the budget."""
    m, w = _cifar_conv_layer()
    prog = compile(m)
    kin = kernel_inputs(prog, "subtract", "binary", None, 1, True, 2, False)
    got = sum(v.nbytes for v in prog.arrays().values()) + sum(v.nbytes for v in kin)
    weights, neurons, rows = w.size, int(prog.pop_off[-1]), int(prog.row_src.size)
    assert (weights, neurons, rows) == (73_728, 196_608, 372_992)
    assert prog.geo_proj.size == 1 and prog.ent_acc.size == 0 and prog.geo_w.size == weights
    assert int(prog.row_nent.sum()) == m.net.projections[0].nnz  # every synapse counted, none stored
    assert got < 256 * (weights + neurons + rows)


def test_cifar_conv_layer_peak_memory_follows_weights():
    """The same layer's peak memory while compiling and while building the kernel tables
    (numpy's allocations, traced), not only the result: compile under ``128 B x (weights +
    neurons + rows)`` = 82.5 MB and the tables under ``64 B x (...)`` = 41.2 MB. Measured:
    compile 77.4 MB (program 29.8 MB; the rest is the route tables' temporaries, ten int64
    per (input, core) pair of one chunk, hwsim.program_routes), tables 34.9 MB (27.7 MB
    kept). Before the rows were written in place and the tables packed field by field:
    101.0 and 71.9 MB (on VGG-16 ImageNet the same costs ran out of 16 GB)."""
    import tracemalloc

    m, w = _cifar_conv_layer()
    kernel_inputs(compile(m), "subtract", "binary", None, 1, True, 2, False)  # Numba compiled outside the trace
    tracemalloc.start()
    try:
        prog = compile(m)
        compile_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0]
        kernel_inputs(prog, "subtract", "binary", None, 1, True, 2, False)
        tables_peak = tracemalloc.get_traced_memory()[1] - held
    finally:
        tracemalloc.stop()
    size = w.size + int(prog.pop_off[-1]) + int(prog.row_src.size)
    assert size == 73_728 + 196_608 + 372_992
    assert compile_peak < 128 * size
    assert tables_peak < 64 * size
