"""The engine's step timing with the wormhole router model (noc.router_model = "wormhole",
hwsim/engine/timing_router.py): its Python twin, unchanged functional results, and a
hand-worked ejection bottleneck."""

from __future__ import annotations

import numpy as np
import pytest

import models
from hwsim.chip import load_chip
from hwsim.engine import simulate
from hwsim.program import compile
from mapper.mapping import map_model
from models.datasets import mnist_sequences, shared_data_dir
from models.intref import simulate_int
from models.net import DenseProjection, Net, Population
from tests.hwsim.cases import SMALL, pop, random_net, same

KEYS = ("step_cycles", "core_busy_cycles", "total_cycles", "packet_latency_hist", "overruns", "link_flits",
        "noc_spike_calls")


def _equal_timing(fast, slow):
    for k in KEYS:
        np.testing.assert_array_equal(fast.timing[k], slow.timing[k], err_msg=k)
    np.testing.assert_array_equal(fast.counters, slow.counters)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ["sync", "pipelined"])
def test_compiled_wormhole_timing_equals_python_twin(seed, mode, tmp_path):
    """On contended random nets with partial sums, inter-chip links, small buffers and
    random router settings, the compiled wormhole step timing gives the Python twin's
    cycles, busy cycles, latency histogram, overruns and flits per link; the functional
    results (spikes, membranes, counters) are those of the ideal model and of the
    integer reference."""
    net, x = random_net(seed)
    rng = np.random.default_rng(seed)
    chip = load_chip("tiny").with_overrides({
        **SMALL, "core.axons": 24 + 8 * seed, "core.neurons": 16, "noc.multicast": "xy-tree" if seed % 2 else "unicast",
        "noc.flit_bits": 8, "noc.interchip_cycles": 9, "timing.step_cycles": 60 if seed % 2 else "dynamic",
        "noc.router_model": "wormhole", "noc.vcs": int(rng.integers(1, 3)), "noc.buffer_flits": int(rng.integers(1, 6)),
        "noc.routing_cycles": int(rng.integers(0, 2)), "noc.credit_cycles": int(rng.integers(1, 3)),
        "noc.eject_flits_per_cycle": int(rng.integers(1, 3))})
    m = map_model(net, chip)
    prog = compile(m, mode=mode)
    fast = simulate(prog, x, timing_samples=4, record="all")
    slow = simulate(prog, x, timing_samples=4, chrome=tmp_path / "c.json")
    assert slow.meta["traces"]["chrome"] and fast.timing["packet_latency_hist"].sum() > 0
    _equal_timing(fast, slow)
    ideal = simulate(compile(map_model(net, chip.with_overrides({"noc.router_model": "ideal"})), mode=mode), x,
                     timing_samples=4, record="all")
    same(ideal, fast)
    np.testing.assert_array_equal(fast.counters, ideal.counters)
    if mode == "sync":
        same(simulate_int(m.net, x, record="all"), fast)
    # the same packets: equal latency counts (delivered packets) in both models
    assert fast.timing["packet_latency_hist"].sum() == ideal.timing["packet_latency_hist"].sum() or \
        chip.noc.multicast == "xy-tree"


def _star():
    """40 inputs -> 64 IF neurons (never fire) on 8-axon cores: a soma tile (rows 0-7)
    and four partial tiles (8 rows each), each sending 64 columns x 16 bits / 4-bit
    flits = 256 flits."""
    inp = Population("in", "input", (40,))
    h = pop("h", "IF", 64, r=1.0, v_threshold=1000.0, v_reset=0.0)
    net = Net([inp, h], [DenseProjection("in->h", "in", "h", np.ones((64, 40)))], "h")
    chip = load_chip("tiny").with_overrides({
        "core.axons": 8, "core.neurons": 64, "mesh.width": 3, "mesh.height": 3, "core.crossbars_per_core": 1,
        "core.pe_width": 1, "core.event_overhead_cycles": 0, "noc.flit_bits": 4, "core.memory_bytes": 1 << 16,
        "core.routing_entries": 1024, "noc.buffer_flits": 8})
    return net, chip


@pytest.mark.parametrize("router_model, step", [("ideal", 833), ("wormhole", 1651)])
def test_four_psums_to_one_core_serialize_at_its_ejection_port(router_model, step, tmp_path):
    """The star of :func:`_star`, placed by hand (Program.core_xy): soma on the centre
    (1, 1) of a 3x3 mesh, the partial tiles on its neighbours (0, 1), (2, 1), (1, 0),
    (1, 2), one hop each over four distinct links. Every input spikes at step 0: each
    tile integrates 8 rows x 64 columns = 512 cycles.

    ideal (router 1 + link 1 per hop; input events not timed): the four 256-flit
    partial sums are created at c0 = 512, each arrives at c0 + 2 + 255 = 769 (latency
    257); the soma fires 64 cycles: step = 833.

    wormhole (defaults: routing 0, VC alloc 1, switch alloc 1, switch 1, link 1,
    credit 1, inject 2, eject 1; 1 VC of 8 flits, enough to stream one flit per cycle
    over the 5-cycle credit loop). Input events are timed: the 40 one-flit events
    enter at the I/O port west of (0, 0) at cycle 0 in row order (8 per tile, tiles
    0..4), and a router input VC passes one single-flit packet per 2 cycles (the next
    head gets its VC the cycle after a tail leaves, crosses one later): the last event
    reaches tiles 0..4 at 27, 39, 63, 71, 95 (asserted below on hwsim.router alone). So
    the partial sums are created at 39 + 512 = 551 (from the west, input E of the
    centre), 575 (east, input W), 583 (south, input N), 607 (north, input S); the soma
    integrates 27 .. 539. A head written at c is usable at the centre at c + 6 and the
    one ejection VC goes to the worms in turn (round robin from E: E, W, N, S, each
    having asked before the previous tail left): worm 0 crosses 558 .. 813, ejected 3
    later (816); each next one gets the VC the cycle after a tail leaves and crosses one
    later: 257 cycles per worm, deliveries 816, 1073, 1330, 1587. The soma fires at
    max(539, 1587) = 1587 for 64 cycles: step = 1651. The Python twin agrees."""
    net, chip = _star()
    prog = compile(map_model(net, chip.with_overrides({"noc.router_model": router_model})))
    assert list(prog.tile_kind) == [0, 1, 1, 1, 1] and list(prog.tile_psum_flits) == [0, 256, 256, 256, 256]
    assert list(prog.tile_core) == [0, 1, 2, 3, 4]
    prog.core_xy = np.array([[1, 1], [0, 1], [2, 1], [1, 0], [1, 2]])
    prog.grid_w = prog.grid_h = 3
    x = np.ones((1, 1, 40), np.float32)
    r = simulate(prog, x)
    assert int(r.timing["step_cycles"][0, 0]) == step
    lat = np.flatnonzero(r.timing["packet_latency_hist"])
    assert list(lat) == ([257] if router_model == "ideal" else [265, 498, 747, 980])
    if router_model == "wormhole":
        from hwsim.router import IO_PORT, RouterParams, check_links, simulate_router

        p = RouterParams(3, 3, buffer_flits=8)
        dst = [[4, 3, 5, 1, 7][j // 8] for j in range(40)]  # tile j // 8's node
        io = simulate_router(p, [0] * 40, [IO_PORT] * 40, dst, [1] * 40, max_cycles=1000, links=check_links(p))
        assert [int(io.delivery[8 * k:8 * k + 8].max()) for k in range(5)] == [27, 39, 63, 71, 95]
    _equal_timing(r, simulate(prog, x, chrome=tmp_path / "c.json"))


@pytest.mark.parametrize("kind", ["mlp", pytest.param("cnn", marks=pytest.mark.slow)])
def test_shipped_mnist_models_wormhole_twin(kind, tmp_path):
    """The shipped MNIST models on Tianjic (xy-tree multicast: a spike is one packet
    forking in the routers), 2 samples (the CNN: 2 steps of one sample, the Python twin
    takes about 15 s per step): compiled timing equals the Python twin; the functional results
    equal the ideal model's; a step takes at least as long as with the ideal network
    on these single-VC, 4-flit-buffer routers; the flits per link are the ideal model's
    (the same xy-trees: one-flit spikes fork where the ideal model's trees do) plus
    those of the input events, which only the wormhole model sends through the mesh."""
    if not (shared_data_dir() / "mnist").exists():
        pytest.skip("shared MNIST data not found")
    x = mnist_sequences("direct", 32, start=8000, stop=8002).inputs
    x = x if kind == "mlp" else x[:2, :1]
    g = models.read_nir(models.__path__[0] + f"/zoo/trained/mnist_{kind}.nir")
    chip = load_chip("tianjic").with_overrides({"noc.router_model": "wormhole"})
    prog = compile(map_model(g, chip))
    fast = simulate(prog, x, timing_samples=2, record="all")
    slow = simulate(prog, x, timing_samples=2, chrome=tmp_path / "c.json")
    _equal_timing(fast, slow)
    ideal = simulate(compile(map_model(g, load_chip("tianjic"))), x, timing_samples=2, record="all")
    same(ideal, fast)
    np.testing.assert_array_equal(fast.counters, ideal.counters)
    assert (fast.timing["total_cycles"] >= ideal.timing["total_cycles"]).all()
    # same flits per link as the ideal model's xy-trees, plus the input events' (timed
    # only here), which are the I/O flit-hops minus the I/O link's hop
    from hwsim.engine.layout import COUNTERS

    io = fast.counters[..., COUNTERS.index("io_in_flit_hops")].sum() - \
        fast.counters[..., COUNTERS.index("io_in_flits")].sum()
    extra = fast.timing["link_flits"] - ideal.timing["link_flits"]
    assert (extra >= 0).all() and extra.sum() == io > 0


@pytest.mark.slow
def test_nir_cnn_wormhole_twin(nir_cnn, test100, tmp_path):
    """The NIR CNN on Tianjic, 20 steps of one N-MNIST sample, sync: compiled equals the
    Python twin, functional results equal the ideal model's."""
    x = test100.inputs[:20, :1]
    prog = compile(map_model(nir_cnn, load_chip("tianjic").with_overrides({"noc.router_model": "wormhole"})))
    fast = simulate(prog, x, record="all")
    slow = simulate(prog, x, chrome=tmp_path / "c.json")
    _equal_timing(fast, slow)
    same(simulate(compile(map_model(nir_cnn, load_chip("tianjic"))), x, record="all"), fast)


def test_pipelined_cores_wait_for_their_input_events(tmp_path):
    """Pipelined mode times input events with the sync rule: the star of :func:`_star`
    placed as in the test above, compiled pipelined, wormhole. The 40 events reach tiles
    0..4 by 27, 39, 63, 71, 95 (as above); a pipelined core starts at its last event's
    arrival and integrates its 512 cycles, so the partial sums are created at 551, 575,
    583 and 607 (before: every core started at 0 and sent at 512) and meet the same
    ejection-port queue as in sync mode: deliveries 816, 1073, 1330, 1587 (latencies
    265, 498, 747, 980); the soma, done integrating at 27 + 512 = 539, fires at 1587
    for 64 cycles: step = 1651. The Python twin agrees."""
    net, chip = _star()
    prog = compile(map_model(net, chip.with_overrides({"noc.router_model": "wormhole"})), mode="pipelined")
    prog.core_xy = np.array([[1, 1], [0, 1], [2, 1], [1, 0], [1, 2]])
    prog.grid_w = prog.grid_h = 3
    x = np.ones((1, 1, 40), np.float32)
    fast = simulate(prog, x)
    assert int(fast.timing["step_cycles"][0, 0]) == 1651
    assert list(np.flatnonzero(fast.timing["packet_latency_hist"])) == [265, 498, 747, 980]
    slow = simulate(prog, x, chrome=tmp_path / "c.json")  # a Chrome trace runs the Python twin
    assert slow.meta["traces"]["chrome"]
    _equal_timing(fast, slow)
