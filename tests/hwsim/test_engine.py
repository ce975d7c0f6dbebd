"""hwsim.engine: exact agreement with models.intref.simulate_int, counters and timing by hand."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import models
from hwsim.chip import load_chip
from hwsim.engine import rshift_round_nb, saturate_nb, simulate
from hwsim.program import ProgramError, compile
from hwsim.result import RunResult
from mapper.mapping import map_model
from models.datasets import mnist_sequences, shared_data_dir
from models.errors import SimulationError, SnnchipError
from models.intarith import rshift_round, saturate
from models.intref import simulate_int
from models.net import DenseProjection, Net, Population
from tests.mapper.test_intref import _exact_net
from tests.hwsim.cases import SMALL, pop, random_net, same, toy, toy_chip
from tests.models.primitives import recurrent_cuba_graph



# ---------------------------------------------------------------- helpers

def test_njit_helpers_equal_intref():
    rng = np.random.default_rng(0)
    xs = rng.integers(-(1 << 40), 1 << 40, 2000)
    for k in (0, 1, 2, 5, 13):
        exp = rshift_round(xs, k)
        got = np.array([rshift_round_nb(int(x), k) for x in xs])
        np.testing.assert_array_equal(got, exp)
    for bits in (4, 8, 16):
        ys = rng.integers(-(1 << 20), 1 << 20, 500)
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        np.testing.assert_array_equal(np.array([saturate_nb(int(y), lo, hi) for y in ys]), saturate(ys, bits))


# ---------------------------------------------------------------- exactness

@pytest.fixture(scope="module")
def cnn_mapping(nir_cnn):
    return map_model(nir_cnn, load_chip("tianjic"))


@pytest.mark.parametrize("spikes,n", [("binary", 4), ("multi", 3), pytest.param("binary", 20, marks=pytest.mark.slow),
                                      pytest.param("multi", 10, marks=pytest.mark.slow)])
def test_nir_cnn_exact(cnn_mapping, test100, spikes, n):
    x = test100.inputs[:, :n]
    r = simulate(cnn_mapping, x, record="all", spikes=spikes, timing=False)
    ref = simulate_int(cnn_mapping.net, x, record="all", spikes=spikes)
    same(ref, r)
    assert r.totals()["psum_ops"] > 0  # the CNN has partial-sum tiles on Tianjic


def test_nir_cnn_accuracy_test100(cnn_mapping, test100):
    t0 = time.perf_counter()
    r = simulate(cnn_mapping, test100.inputs, timing=False)
    correct = int((r.predict() == test100.labels).sum())
    print(f"\nNIR paper CNN on hwsim (tianjic, binary, subtract, 8-bit): {correct}/100 "
          f"({time.perf_counter() - t0:.1f} s)")
    assert correct >= 97


@pytest.mark.parametrize("kind,n", [("mlp", 200), ("cnn", 40), pytest.param("cnn", 200, marks=pytest.mark.slow)])
def test_shipped_mnist_models_exact(kind, n):
    if not (shared_data_dir() / "mnist").exists():
        pytest.skip("shared MNIST data not found")
    seq = mnist_sequences("direct", 32, start=8000, stop=8000 + n)
    g = models.read_nir(models.__path__[0] + f"/zoo/trained/mnist_{kind}.nir")
    m = map_model(g, load_chip("tianjic"))
    r = simulate(m, seq.inputs, record="all", timing=False)
    ref = simulate_int(m.net, seq.inputs, record="all")
    same(ref, r)
    assert r.totals()["macs"] > 0  # real-valued input: MAC mode on the first layer
    assert abs(r.accuracy(seq.labels) - ref.accuracy(seq.labels)) == 0


def test_recurrent_cubalif_exact():
    chip = load_chip("tiny").with_overrides(SMALL)
    m = map_model(recurrent_cuba_graph(n_in=20, n=16), chip)
    x = (np.random.default_rng(0).random((40, 8, 20)) < 0.3).astype(np.float32)
    r = simulate(m, x, record="all")
    ref = simulate_int(m.net, x, record="all")
    same(ref, r)
    assert sum(int(v.sum()) for v in ref.spikes.values()) > 0
    tot = r.totals()
    assert tot["state_words"] == 2 * tot["neuron_updates"]  # CubaLIF: v and i


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("spikes", ["binary", "multi"])
def test_intref_exact_net_small_chip(reset, spikes):
    """Conv with pooling, recurrence, a delay-2 sparse skip and a late bias term, on 16x8 crossbars."""
    net = _exact_net(0)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 16, "core.neurons": 8})
    m = map_model(net, chip)
    assert sum(t.kind == "partial" for t in m.tiling.tiles) > 0
    x = (np.random.default_rng(1).random((12, 5, 2, 8, 8)) < 0.4).astype(np.float32)
    r = simulate(m, x, record="all", reset=reset, spikes=spikes)
    same(ref := simulate_int(m.net, x, record="all", reset=reset, spikes=spikes), r)
    assert sum(int(v.sum()) for v in ref.spikes.values()) > 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_nets_small_chips(seed):
    net, x = random_net(seed)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 24 + 8 * seed, "core.neurons": 16})
    m = map_model(net, chip)
    assert sum(t.kind == "partial" for t in m.tiling.tiles) > 0
    r = simulate(m, x, record="all", timing=True)
    ref = simulate_int(m.net, x, record="all")
    same(ref, r)
    assert int(ref.spikes["a"].sum()) > 0 and r.totals()["psum_ops"] > 0
    assert (r.timing["step_cycles"] > 0).all()


# ---------------------------------------------------------------- counters and timing by hand

def test_counters_by_hand():
    m = map_model(toy(), toy_chip())
    x = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)[:, None, :]
    r = simulate(m, x, record="all")
    ev, acs, sp = r.counter("events").sum(1), r.counter("acs").sum(1), r.counter("spikes").sum(1)
    # step 0: inputs 0 and 2 (1 + 2 weights), then both h spike (2 events, 2 weights)
    # step 1: input 1 (1 weight), both h spike again (h0 keeps 85 >= 42 after subtract)
    np.testing.assert_array_equal(ev, [4, 3])
    np.testing.assert_array_equal(acs, [5, 3])
    np.testing.assert_array_equal(r.spikes["h"][:, 0], [[1, 1], [1, 1]])
    np.testing.assert_array_equal(r.spikes["o"][:, 0], [[1], [1]])
    np.testing.assert_array_equal(sp, [3, 3])
    t = r.totals()
    assert t["macs"] == 0 and t["neuron_updates"] == 6 and t["weight_bits_read"] == 8 * m.net.metadata["quant"]["weight_bits"]
    assert t["psum_ops"] == 0


def test_timing_by_hand():
    m = map_model(toy(), toy_chip())
    prog = compile(m)
    hc, oc = prog.nrn_core[prog.pop_off[1]], prog.nrn_core[prog.pop_off[2]]
    assert hc != oc
    hops = int(np.abs(prog.core_xy[hc] - prog.core_xy[oc]).sum())
    x = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)[:, None, :]
    r = simulate(prog, x)
    RW = hops * 2  # router 1 + link 1 per hop
    # step 0: h integrates rows with 1 and 2 columns: (1+2) + (2+2) = 7, fires 2 -> 9; two 1-flit
    # spike packets to o's core: deliveries 9+RW, 9+RW+1 (second waits one cycle for the link);
    # o integrates 2 x (1+2) = 6, fires 1: 10+RW+7 = 17+RW; + barrier 5
    # step 1: h: 3 + fire 2 = 5; deliveries 5+RW, 6+RW; o: 6+RW+7 = 13+RW; + 5
    np.testing.assert_array_equal(r.timing["step_cycles"][0], [22 + RW, 18 + RW])
    assert r.timing["total_cycles"][0] == 40 + 2 * RW
    assert r.timing["latency_us"][0] == pytest.approx((40 + 2 * RW) / m.chip.timing.clock_hz * 1e6)
    np.testing.assert_array_equal(r.timing["core_busy_cycles"][0, [hc, oc]], [9 + 5, 7 + 7])
    fixed = m.chip.with_overrides({"timing.step_cycles": 16 + RW})
    m2 = map_model(toy(), fixed)
    r2 = simulate(m2, x)
    np.testing.assert_array_equal(r2.timing["step_cycles"][0], [22 + RW, 21 + RW])
    assert r2.timing["overruns"] == 1


# ---------------------------------------------------------------- bad input, files

def test_bad_inputs_raise_typed_errors():
    m = map_model(toy(), toy_chip())
    with pytest.raises(SimulationError, match="do not match"):
        simulate(m, np.zeros((2, 1, 4)))
    with pytest.raises(SimulationError):
        simulate(m, np.zeros((0, 1, 3)))
    with pytest.raises(SimulationError):
        simulate(m, np.zeros((2, 1, 3)), reset="bogus")
    with pytest.raises(SimulationError, match="record"):
        simulate(m, np.zeros((2, 1, 3)), record=["nope"])
    m.tiling.tiles[0]._axons = [("nope", 0, np.array([0]))]
    with pytest.raises(ProgramError, match="tile 0"):
        compile(m)
    assert issubclass(ProgramError, SnnchipError)


def test_result_save_load(tmp_path):
    m = map_model(toy(), toy_chip())
    x = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)[:, None, :]
    r = simulate(m, x, record="all")
    r.save(tmp_path / "run")
    r2 = RunResult.load(tmp_path / "run")
    np.testing.assert_array_equal(r2.output, r.output)
    np.testing.assert_array_equal(r2.counters, r.counters)
    np.testing.assert_array_equal(r2.membrane["h"], r.membrane["h"])
    np.testing.assert_array_equal(r2.timing["step_cycles"], r.timing["step_cycles"])
    assert r2.totals() == r.totals()
    assert not list((tmp_path / "run").glob("*.tmp"))
    assert list(r2.predict()) == list(r.predict())


def test_loaded_mapping_runs_exactly(tmp_path):
    if not (shared_data_dir() / "mnist").exists():
        pytest.skip("shared MNIST data not found")
    from mapper.mapping import Mapping
    m = map_model(models.read_nir(models.__path__[0] + "/zoo/trained/mnist_mlp.nir"), load_chip("tianjic"))
    m.save(tmp_path / "map")
    m2 = Mapping.load(tmp_path / "map")
    x = mnist_sequences("direct", 8, start=8000, stop=8010).inputs
    same(simulate_int(m2.net, x, record="all"), simulate(m2, x, record="all", timing=False))


# ---------------------------------------------------------------- pipelined mode

def _pipelined_ref_net(qnet):
    """The integer reference of pipelined mode (:func:`hwsim.engine.reference_net`)."""
    from hwsim.engine import reference_net

    return reference_net(qnet, "pipelined")


def test_pipelined_nir_cnn_exact(cnn_mapping, test100):
    x = test100.inputs[:, :3]
    r = simulate(cnn_mapping, x, record="all", mode="pipelined", timing=False)
    ref = simulate_int(_pipelined_ref_net(cnn_mapping.net), x, record="all")
    same(ref, r)
    assert r.meta["mode"] == "pipelined"
    sync = simulate_int(cnn_mapping.net, x, record=[cnn_mapping.net.output])
    assert not np.array_equal(sync.output, r.output)  # the delay is real


def test_pipelined_shipped_mnist_mlp_exact():
    if not (shared_data_dir() / "mnist").exists():
        pytest.skip("shared MNIST data not found")
    seq = mnist_sequences("direct", 16, start=8000, stop=8020)
    g = models.read_nir(models.__path__[0] + "/zoo/trained/mnist_mlp.nir")
    m = map_model(g, load_chip("tianjic").with_overrides({"timing.mode": "pipelined"}))
    r = simulate(m, seq.inputs, record="all", timing_samples=2)
    same(simulate_int(_pipelined_ref_net(m.net), seq.inputs, record="all"), r)
    assert r.timing["mode"] == "pipelined" and (r.timing["step_cycles"] > 0).all()


@pytest.mark.parametrize("seed", [0, 3])
def test_pipelined_random_nets_exact(seed):
    """Delay-1 skip projection and partial-sum tiles: the skip becomes delay 2."""
    net, x = random_net(seed)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 24 + 8 * seed, "core.neurons": 16})
    m = map_model(net, chip)
    r = simulate(m, x, record="all", mode="pipelined", timing_samples=2)
    same(simulate_int(_pipelined_ref_net(m.net), x, record="all"), r)
    assert r.timing["pipeline_depth"].tolist() == [2, 2]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_pipelined_exact_net_with_bias_terms(reset):
    """Recurrence, a delay-2 sparse skip and a late bias term (start steps shift too)."""
    net = _exact_net(0)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 16, "core.neurons": 8})
    m = map_model(net, chip)
    assert any(q.bias_terms for q in m.net.projections if q.src != m.net.input.name)
    x = (np.random.default_rng(1).random((12, 3, 2, 8, 8)) < 0.4).astype(np.float32)
    r = simulate(m, x, record="all", reset=reset, mode="pipelined")
    same(simulate_int(_pipelined_ref_net(m.net), x, record="all", reset=reset), r)


def test_pipelined_timing_by_hand():
    m = map_model(toy(), toy_chip().with_overrides({"timing.mode": "pipelined"}))
    prog = compile(m)
    assert prog.mode == "pipelined"
    hc, oc = prog.nrn_core[prog.pop_off[1]], prog.nrn_core[prog.pop_off[2]]
    hops = int(np.abs(prog.core_xy[hc] - prog.core_xy[oc]).sum())
    RW = hops * 2
    x = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=np.float32)[:, None, :]
    r = simulate(prog, x, record="all")
    # every core starts at cycle 0 of every step. step 0: h integrates (1+2) + (2+2) = 7,
    # fires 2 -> 9; o has no events yet, fires 1; h's two spikes leave at 9: deliveries
    # 9+RW and 10+RW; step = 10+RW + barrier 5.
    # step 1: h: (1+2) + 2 = 5; o integrates step 0's two h spikes: 2 x (1+2) + 1 = 7;
    # h spikes again (deliveries 5+RW, 6+RW); step = max(7, 6+RW) + 5.
    # step 2: h: inputs 0,1,2: (1+2)+(1+2)+(2+2) = 10 + 2 = 12; o: 7; spikes 12+RW, 13+RW.
    np.testing.assert_array_equal(r.spikes["h"][:, 0], [[1, 1], [1, 1], [1, 1]])
    exp = [10 + RW + 5, max(7, 6 + RW) + 5, 13 + RW + 5]
    np.testing.assert_array_equal(r.timing["step_cycles"][0], exp)
    np.testing.assert_array_equal(r.timing["core_busy_cycles"][0, [hc, oc]], [9 + 5 + 12, 1 + 7 + 7])
    tim = r.timing
    assert tim["pipeline_depth"][0] == 1  # in -> h -> o: one delayed projection
    cps = sum(exp) / 3
    assert tim["cycles_per_step"][0] == pytest.approx(cps)
    assert tim["latency_cycles"][0] == pytest.approx((3 + 1) * cps)
    clock = m.chip.timing.clock_hz
    assert tim["throughput_inf_s"][0] == pytest.approx(clock / (cps * 3))
    assert tim["latency_us"][0] == pytest.approx((3 + 1) * cps / clock * 1e6)
    # the sync program of the same mapping is unchanged
    rs = simulate(m, x, record="all", mode="sync")
    assert rs.timing["mode"] == "sync" and rs.timing["pipeline_depth"][0] == 0
    with pytest.raises(SimulationError, match="compiled for"):
        simulate(prog, x, mode="sync")


# ---------------------------------------------------------------- new counters

def test_io_and_interchip_counters_by_hand():
    """Two 1x1 chips side by side: h on chip 0, o on chip 1 (every h spike crosses one
    chip boundary); input events enter from the I/O port at (-1, 0)."""
    chip = toy_chip().with_overrides({"mesh.width": 1, "mesh.height": 1, "noc.interchip_cycles": 10})
    m = map_model(toy(), chip)
    prog = compile(m)
    hc, oc = prog.nrn_core[prog.pop_off[1]], prog.nrn_core[prog.pop_off[2]]
    assert (prog.core_chip[hc] != prog.core_chip[oc]).any()
    cross = int(np.abs(prog.core_chip[hc] - prog.core_chip[oc]).sum())
    hops = int(np.abs(prog.core_xy[hc] - prog.core_xy[oc]).sum())
    hin = int(np.abs(prog.core_xy[hc] - [-1, 0]).sum())
    hic = int(prog.core_chip[hc].sum())
    x = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)[:, None, :]
    r = simulate(prog, x, record="all")
    t = r.totals()
    # every h spike is one flit crossing `cross` chip boundaries; the 3 input events cross `hic`
    n_h = int(r.spikes["h"].sum())
    assert n_h == 4
    assert t["interchip_flits"] == n_h * cross + 3 * hic
    assert t["flit_hops"] == n_h * hops
    # input events: 3 (two at step 0, one at step 1), one flit each, all to h's core
    assert t["io_in_flits"] == 3
    assert t["io_in_flit_hops"] == 3 * hin
    np.testing.assert_array_equal(r.counter("io_in_flits")[:, hc], [2, 1])
    assert t["io_out_flits"] == int(r.output.sum())
    np.testing.assert_array_equal(r.counter("io_out_flits")[:, oc], r.output[:, 0, 0])
    # inter-chip latency: each crossing costs interchip_cycles instead of R + W = 2
    r0 = simulate(compile(map_model(toy(), chip.with_overrides({"noc.interchip_cycles": 2}))), x)
    extra = cross * (10 - 2)
    np.testing.assert_array_equal(r.timing["step_cycles"][0], r0.timing["step_cycles"][0] + extra)


# ---------------------------------------------------------------- fast paths (event lists, input reuse, NoC)

@pytest.mark.parametrize("seed", [0, 1])
def test_repeated_input_reuse_exact(seed):
    """A real-valued input held for several steps (the input projections' sums are
    reused) then changed, with a delay-0 and a delay-1 input projection: exact, and the
    MACs the chip performs are still counted every step."""
    rng = np.random.default_rng(seed)
    inp = Population("in", "input", (6,))
    a = pop("a", "IF", 5, r=1.0, v_threshold=0.7, v_reset=0.0)
    o = pop("o", "LIF", 3, r=1.0, tau=2.0, v_leak=0.0, v_threshold=0.5, v_reset=0.0)
    projs = [DenseProjection("p0", "in", "a", rng.normal(0, 0.5, (5, 6))),
             DenseProjection("p1", "in", "a", rng.normal(0, 0.5, (5, 6)), delay_steps=1),
             DenseProjection("p2", "a", "o", rng.normal(0, 0.8, (3, 5)))]
    net = Net([inp, a, o], projs, "o", input_spiking=False)
    frame1, frame2 = rng.random((3, 6)), rng.random((3, 6))
    x = np.concatenate([np.repeat(frame1[None], 5, 0), np.repeat(frame2[None], 4, 0), np.zeros((2, 3, 6)),
                        np.repeat(frame1[None], 3, 0)])
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 8, "core.neurons": 4})
    m = map_model(net, chip)
    r = simulate(m, x, record="all", timing=True)
    ref = simulate_int(m.net, x, record="all")
    same(ref, r)
    macs = r.counters[:, :, r.counter_names.index("macs")].sum(axis=1)
    assert macs[1] > 0 and macs[2] == macs[1] and macs[3] == macs[1]  # counted on reused steps too
    # the same samples run one by one (no reuse across samples) give the same counters
    tot = sum(simulate(m, x[:, b:b + 1], timing=False).counters for b in range(3))
    np.testing.assert_array_equal(r.counters, tot)


@pytest.mark.parametrize("multicast", ["xy-tree", "unicast"])
def test_fast_noc_equals_simulate_noc(multicast):
    """The unchecked NoC call the Python timing model uses (hwsim.noc.deliver) gives
    the SimPy twin's deliveries."""
    from hwsim.noc import Packets, deliver
    from hwsim.noc_ref import simulate_noc_ref

    rng = np.random.default_rng(5)
    gw, gh = 5, 4
    for _ in range(20):
        n = int(rng.integers(1, 12))
        nd = rng.integers(1, 4, n)
        ptr = np.concatenate([[0], np.cumsum(nd)]).astype(np.int64)
        src = np.stack([rng.integers(0, gw, n), rng.integers(0, gh, n)], axis=1).astype(np.int64)
        dst = np.stack([rng.integers(0, gw, ptr[-1]), rng.integers(0, gh, ptr[-1])], axis=1).astype(np.int64)
        t0 = rng.integers(0, 20, n).astype(np.int64)
        fl = rng.integers(1, 5, n).astype(np.int64)
        res = simulate_noc_ref(Packets.from_arrays(t0, src, ptr, dst, fl), gw, gh, 2, 1, multicast=multicast)
        dl, _ = deliver(t0, fl, src, ptr, dst, gw, gh, multicast == "xy-tree", 2, 1)
        lat = dl - t0[np.repeat(np.arange(n), nd)]
        np.testing.assert_array_equal(dl, res.delivery_cycle)
        np.testing.assert_array_equal(lat, res.latency_cycles)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ["sync", "pipelined"])
@pytest.mark.parametrize("multicast", ["xy-tree", "unicast"])
def test_compiled_timing_equals_python_timing(seed, mode, multicast, tmp_path):
    """The kernel's own cycle timing (used without a Chrome trace) gives the cycles, busy
    cycles, packet-latency histogram and overruns of the step-by-step Python model
    (used with one), on contended random nets with partial sums and inter-chip links."""
    net, x = random_net(seed)
    chip = load_chip("tiny").with_overrides({
        **SMALL, "core.axons": 24 + 8 * seed, "core.neurons": 16, "noc.multicast": multicast,
        "noc.flit_bits": 8, "noc.interchip_cycles": 9, "timing.step_cycles": 60 if seed % 2 else "dynamic"})
    m = map_model(net, chip)
    prog = compile(m, mode=mode)
    fast = simulate(prog, x, timing_samples=4)
    slow = simulate(prog, x, timing_samples=4, chrome=tmp_path / "c.json")
    assert slow.meta["traces"]["chrome"] and fast.timing["packet_latency_hist"].sum() > 0
    for k in ("step_cycles", "core_busy_cycles", "total_cycles", "packet_latency_hist", "overruns", "link_flits",
              "noc_spike_calls"):
        np.testing.assert_array_equal(fast.timing[k], slow.timing[k], err_msg=k)
    np.testing.assert_array_equal(fast.counters, slow.counters)


def test_unicast_fanout_more_heads_than_classes(tmp_path):
    """With unicast routes a class's template crosses its first links once per destination
    core, so one link carries more (class, edge) heads than there are classes (the spike
    NoC's merge heap is sized by that count, ``link_cls``; it overran when sized by the
    classes: a segfault found by the ci hypothesis profile). One hidden core fans out to
    four output cores: the compiled timing equals the Python model and the chip the
    integer reference."""
    import hwsim.engine.build as eng

    rng = np.random.default_rng(7)
    h = pop("h", "IF", 8, r=1.0, v_threshold=1.0, v_reset=0.0)
    o = pop("o", "IF", 32, r=1.0, v_threshold=1.5, v_reset=0.0)
    net = Net([Population("in", "input", (6,)), h, o],
              [DenseProjection("in->h", "in", "h", rng.normal(0.4, 0.5, (8, 6))),
               DenseProjection("h->o", "h", "o", rng.normal(0.3, 0.5, (32, 8)))], "o")
    x = (rng.random((6, 2, 6)) < 0.6).astype(np.float32)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 8, "core.neurons": 8, "noc.multicast": "unicast"})
    m = map_model(net, chip)
    prog = compile(m)
    kb, ko, _, _ = eng.kernel_inputs(prog, "subtract", "binary", None, 1, False, 1, True)
    n_cls = int(eng.kernel_field(kb, ko, "n_cls")[0])
    assert eng.kernel_field(kb, ko, "link_cls")[0] > n_cls
    assert eng.kernel_field(kb, ko, "rt_ptr").size == n_cls + 1  # spike route templates per class
    fast = simulate(prog, x, record="all", timing=True)
    slow = simulate(prog, x, record="all", timing=True, chrome=tmp_path / "c.json")
    for k in ("step_cycles", "packet_latency_hist", "link_flits"):
        np.testing.assert_array_equal(fast.timing[k], slow.timing[k], err_msg=k)
    assert fast.timing["packet_latency_hist"].sum() > 0
    same(simulate_int(m.net, x, record="all"), fast)


@pytest.mark.parametrize("pipelined", [False, True])
def test_spike_slots_bound_every_neuron_spiking(pipelined, tmp_path):
    """The spike NoC's start-cycle blocks (``spike_slots`` of scratch) hold, per call, one
    slot per spiking neuron and edge of its class's template. A sync step calls it per
    population, so the bound is the largest population's sum over its neurons of their
    template lengths; a pipelined step calls it once, so it is the whole net's. With
    every neuron spiking at every step (the bound reached in sync mode by the larger
    population) the compiled timing equals the Python model's."""
    import hwsim.engine.build as eng

    rng = np.random.default_rng(3)
    h = pop("h", "IF", 8, r=1.0, v_threshold=0.01, v_reset=0.0)
    o = pop("o", "IF", 24, r=1.0, v_threshold=0.01, v_reset=0.0)
    q = pop("q", "IF", 4, r=1.0, v_threshold=0.01, v_reset=0.0)
    net = Net([Population("in", "input", (6,)), h, o, q],
              [DenseProjection("in->h", "in", "h", rng.uniform(0.5, 1.0, (8, 6))),
               DenseProjection("h->o", "h", "o", rng.uniform(0.5, 1.0, (24, 8))),
               DenseProjection("o->q", "o", "q", rng.uniform(0.5, 1.0, (4, 24)))], "q")
    x = np.ones((4, 2, 6), np.float32)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 8, "core.neurons": 8})
    m = map_model(net, chip)
    prog = compile(m, mode="pipelined" if pipelined else "sync")
    kb, ko, _, _ = eng.kernel_inputs(prog, "subtract", "binary", None, 1, False, 1, True)
    m_cls = np.diff(eng.kernel_field(kb, ko, "rt_ptr"))
    cls = eng.kernel_field(kb, ko, "nrn_cls")
    per_pop = [int(m_cls[cls[a:b][cls[a:b] >= 0]].sum()) for a, b in zip(prog.pop_off[1:-1], prog.pop_off[2:])]
    assert per_pop[0] > 0 and per_pop[1] > 0 and per_pop[2] == 0  # the output population sends no spikes
    want = sum(per_pop) if pipelined else max(per_pop)
    assert eng.kernel_field(kb, ko, "spike_slots")[0] == want
    fast = simulate(prog, x, record="all", timing=True)
    assert fast.spikes["o"][2:].all() and fast.spikes["h"][2:].all()  # pipelined: one step per layer to fill
    slow = simulate(prog, x, record="all", timing=True, chrome=tmp_path / "c.json")
    for k in ("step_cycles", "packet_latency_hist", "link_flits"):
        np.testing.assert_array_equal(fast.timing[k], slow.timing[k], err_msg=k)
    same(simulate_int(_pipelined_ref_net(m.net) if pipelined else m.net, x, record="all"), fast)


@pytest.mark.parametrize("model", ["nir_cnn", "mnist_mlp"])
def test_spike_trains_equal_python_timing(model, cnn_mapping, test100, tmp_path):
    """On the mapped NIR CNN (100 steps of one N-MNIST sample) and the shipped MNIST
    MLP (2 samples), the kernel simulates some spike NoC calls as trains (all of the
    MLP's: each of its two source cores sends one train per step, in time order; some
    of the CNN's, the rest packet by packet) and its cycles, latency histogram and
    flits per link equal the Python model's, which simulates every packet; the flits
    per link add up to the flit-hop counters."""
    if model == "nir_cnn":
        m, x = cnn_mapping, test100.inputs[:100, :1]
    else:
        if not (shared_data_dir() / "mnist").exists():
            pytest.skip("shared MNIST data not found")
        x = mnist_sequences("direct", 32, start=8000, stop=8002).inputs
        m = map_model(models.read_nir(models.__path__[0] + "/zoo/trained/mnist_mlp.nir"), load_chip("tianjic"))
    prog = compile(m)
    if model == "nir_cnn":  # the statically one-stream edges (skipped per step) are exercised
        import hwsim.engine.build as eng

        key = ("subtract", "binary", None, 1, bool(prog.input_spiking and prog.payload_bits == 0),
               -(-int(prog.membrane_bits) // max(prog.flit_bits, 1)), True)
        kb, ko, _, _ = eng.kernel_inputs(prog, *key)
        assert (eng.kernel_field(kb, ko, "rt_depth") > 0).any()
    fast = simulate(prog, x, timing_samples=x.shape[1])
    slow = simulate(prog, x, timing_samples=x.shape[1], chrome=tmp_path / "c.json")
    n, k = fast.timing["noc_spike_calls"], fast.timing["noc_spike_calls_as_trains"]
    assert n == slow.timing["noc_spike_calls"] and slow.timing["noc_spike_calls_as_trains"] == 0
    assert (0 < k < n) if model == "nir_cnn" else (0 < k == n)
    for key in ("step_cycles", "core_busy_cycles", "packet_latency_hist", "link_flits"):
        np.testing.assert_array_equal(fast.timing[key], slow.timing[key], err_msg=key)
    assert fast.timing["link_flits"].sum() == fast.counters[:, :, fast.counter_names.index("flit_hops")].sum()


def test_latency_histogram_grows(monkeypatch):
    """A packet latency beyond the kernel's histogram re-runs with room: same result."""
    import hwsim.engine.run as eng

    net, x = random_net(1)
    m = map_model(net, load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16}))
    ref = simulate(m, x, timing_samples=4)
    monkeypatch.setattr(eng, "_HIST_CYCLES", 1)
    r = simulate(m, x, timing_samples=4)
    assert ref.timing["packet_latency_hist"].size > 1
    for k in ("step_cycles", "packet_latency_hist"):
        np.testing.assert_array_equal(r.timing[k], ref.timing[k])


def test_latency_histogram_size_remembered(monkeypatch):
    """A program whose latencies outgrew the histogram starts its next call at the size it
    needed: the first call runs the kernel twice, the second once, with the same timing."""
    import hwsim.engine.run as eng

    net, x = random_net(1)
    prog = compile(map_model(net, load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})))
    monkeypatch.setattr(eng, "_HIST_CYCLES", 1)
    sizes = []
    run = eng._simulate_run

    def counted(*a, **k):
        sizes.append(a[14])  # hist_cycles
        return run(*a, **k)

    monkeypatch.setattr(eng, "_simulate_run", counted)
    a = simulate(prog, x, timing_samples=4)
    assert len(sizes) == 2 and sizes[0] == 1 and sizes[1] > 1
    b = simulate(prog, x, timing_samples=4)
    assert sizes[2:] == [sizes[1]]
    np.testing.assert_array_equal(a.timing["step_cycles"], b.timing["step_cycles"])


# ---------------------------------------------------------------- accumulator layout and table cache

def test_conv_accumulators_channel_last_spans():
    """The conv projection's accumulators are stored (core, y, x, c): acc_pos is a
    permutation inside the projection's block, every row's entries are sorted and form
    fewer runs of consecutive accumulators than in (c, y, x) order, and adding the rows
    in either layout gives the same sums."""
    from hwsim.engine.build import _acc_layout, _event_index, _row_spans

    net, _ = random_net(0)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 24, "core.neurons": 16})
    prog = compile(map_model(net, chip), conv_path="rows")  # the explicit rows' layout
    acc_pos, proj_perm, ea, ew = _acc_layout(prog)
    q = prog.proj_names.index("c")
    assert proj_perm.tolist() == [name == "c" for name in prog.proj_names]
    a0, n = int(prog.proj_acc_off[q]), int(prog.proj_npost[q])
    assert sorted(acc_pos[a0:a0 + n]) == list(range(a0, a0 + n))
    others = np.setdiff1d(np.arange(prog.n_acc), np.arange(a0, a0 + n))
    np.testing.assert_array_equal(acc_pos[others], others)
    # posts (c, y, x) of the 4x6x6 population: one contiguous slot range per core, in (y, x, c) order
    core = prog.nrn_core[prog.pop_off[prog.proj_dst[q]]:][:n]
    assert np.unique(core).size > 1
    post = np.arange(n)
    lo = a0
    for k in np.unique(core):
        mine = post[core == k]
        c, y, x = mine // 36, (mine // 6) % 6, mine % 6
        ordered = mine[np.lexsort((c, x, y))]
        np.testing.assert_array_equal(acc_pos[a0 + ordered], np.arange(lo, lo + mine.size))
        lo += mine.size
    rows = np.repeat(np.arange(prog.row_ptr.size - 1), np.diff(prog.row_ptr))
    assert all((np.diff(ea[prog.row_ptr[r]:prog.row_ptr[r + 1]]) > 0).all() for r in range(prog.row_ptr.size - 1))
    row_tile = _event_index(prog)[7]
    old, _ = _row_spans(prog.row_ptr, prog.ent_acc, prog.ent_w, row_tile, max_gap=0)
    new, _ = _row_spans(prog.row_ptr, ea, ew, row_tile, max_gap=0)
    assert new["span_len"].size > 0 and new["row_span"].sum() > old["row_span"].sum()
    # the same row events give the same sums, read back through acc_pos
    xv = np.random.default_rng(0).integers(0, 3, rows.size)
    acc_old = np.bincount(prog.ent_acc, weights=prog.ent_w * xv[rows], minlength=prog.n_acc)
    acc_new = np.zeros(prog.n_acc)
    np.add.at(acc_new, ea, ew * xv[rows])
    np.testing.assert_array_equal(acc_new[acc_pos], acc_old)


def _span_case():
    """Five crossbar rows on two tiles, worked by hand in the two tests below."""
    ea = [[0, 1, 2, 5, 6, 7],  # tile 0: one span, a 2-slot gap filled with zeros
          list(range(1, 10)),  # tile 0: slots 1..9
          [20, 40, 41, 42],  # tile 1: runs of 1 and 3 (mean < 4): scattered
          list(range(30, 36)),  # tile 1: one span of 6
          [50, 51, 52, 53, 63, 64, 65, 66]]  # tile 1: a 9-slot gap (> max_gap 8): two spans
    row_ptr = np.cumsum([0] + [len(a) for a in ea])
    ew = np.arange(1, row_ptr[-1] + 1).astype(np.int8)
    return row_ptr, np.concatenate(ea).astype(np.int64), ew, np.array([0, 0, 1, 1, 1])


def test_row_spans_hand_worked():
    """Spans fill gaps of at most max_gap slots with zero weights, a row that is one
    span is widened to its tile's slot range when that adds at most a quarter of its
    length, and adding the spans gives the rows' sums."""
    from hwsim.engine.build import _row_spans

    row_ptr, ea, ew, row_tile = _span_case()
    sp, w = _row_spans(row_ptr, ea, ew, row_tile)
    assert sp["row_span"].tolist() == [True, True, False, True, True]
    assert sp["span_ptr"].tolist() == [0, 1, 2, 2, 3, 5]
    # rows 0 and 1 span 8 and 9 slots of tile 0's 10 (0..9): both widened to 0..9; row 3
    # (6 slots) is not widened to tile 1's 47 (20..66)
    assert sp["span_acc"].tolist() == [0, 0, 30, 50, 63]
    assert sp["span_len"].tolist() == [10, 10, 6, 4, 4]
    assert sp["span_ent"].tolist() == [33, 43, 53, 59, 63]
    np.testing.assert_array_equal(w[:33], ew)
    assert w[33:43].tolist() == [1, 2, 3, 0, 0, 4, 5, 6, 0, 0]
    assert w[43:53].tolist() == [0] + list(range(7, 16))
    assert w[53:59].tolist() == list(range(20, 26))
    assert w[59:].tolist() == list(range(26, 34))
    # the same sums as entry by entry, for any input values
    xv = np.array([3, -2, 5, 7, -1])
    rows = np.repeat(np.arange(5), np.diff(row_ptr))
    want = np.zeros(70, np.int64)
    np.add.at(want, ea, ew.astype(np.int64) * xv[rows])
    got = np.zeros(70, np.int64)
    for r in range(5):
        if sp["row_span"][r]:
            for k in range(sp["span_ptr"][r], sp["span_ptr"][r + 1]):
                a, e, n = sp["span_acc"][k], sp["span_ent"][k], sp["span_len"][k]
                got[a:a + n] += w[e:e + n].astype(np.int64) * xv[r]
        else:
            np.add.at(got, ea[row_ptr[r]:row_ptr[r + 1]], ew[row_ptr[r]:row_ptr[r + 1]].astype(np.int64) * xv[r])
    np.testing.assert_array_equal(got, want)
    # max_gap 0: row 0 breaks into runs 0..2 and 5..7 (mean 3 < 4), scattered
    sp0, _ = _row_spans(row_ptr, ea, ew, row_tile, max_gap=0)
    assert not sp0["row_span"][0]


def test_slot_records_hand_worked():
    """An event's records: one per span, one per scattered row (n = -entries); the
    row's tile and counts (1 event, AC or MAC entries, cycles) on its first record."""
    from hwsim.engine.build import _row_spans, _slot_records
    from hwsim.engine.layout import NREC as _NREC

    row_ptr, ea, ew, row_tile = _span_case()
    sp, _ = _row_spans(row_ptr, ea, ew, row_tile)
    pre_ptr = np.array([0, 2, 3, 3])  # slot 0 reads rows 0 and 2, slot 1 row 4, slot 2 nothing
    grp_rows = np.array([0, 2, 4])
    row_mac = np.array([0, 0, 1, 0, 0])
    row_cyc = np.array([3, 4, 5, 6, 7])
    out = _slot_records(pre_ptr, grp_rows, row_ptr, row_tile, row_mac, row_cyc, sp)
    assert out["rec_ptr"].tolist() == [0, 2, 4, 4]
    assert out["rec"].shape == (4, _NREC)
    # (acc, ent, n, tile, events, AC, MAC, cycles)
    assert out["rec"].tolist() == [[0, 33, 10, 0, 1, 6, 0, 3],
                                   [0, 15, -4, 1, 1, 0, 4, 5],
                                   [50, 59, 4, 1, 1, 8, 0, 7],
                                   [63, 63, 4, 1, 0, 0, 0, 0]]


def test_compact_rows_hand_worked():
    """A short-row group as one fixed-length row per source: the weight sums per window
    slot, then per tile (events, cycles, AC, MAC), padded to whole 4-lane vectors; a
    window over ``max_acc`` keeps the records."""
    from hwsim.engine.build import _compact_rows

    args = dict(grp_src=np.array([1]), grp_pre_off=np.array([0]), pre_ptr=np.array([0, 2, 3, 3, 3]),
                grp_rows=np.array([0, 1, 2]), row_ptr=np.array([0, 2, 3, 5]), ea=np.array([5, 7, 5, 6, 8]),
                ew=np.array([1, -2, 3, 4, 5]), row_tile=np.array([0, 1, 1]), row_mac=np.array([0, 1, 0]),
                row_cyc=np.array([3, 4, 5]), pop_size=np.array([9, 3]))
    out = _compact_rows(**args)
    # window slots 5..8 (na 4), tiles 0 and 1: R = 4 + 2 * 4 = 12
    assert out["grp_cr_off"].tolist() == [0]
    assert (out["grp_cr_a0"].tolist(), out["grp_cr_na"].tolist(), out["grp_cr_r"].tolist()) == ([5], [4], [12])
    assert out["grp_cr_tptr"].tolist() == [0, 2] and out["grp_cr_tiles"].tolist() == [0, 1]
    assert out["cr"].reshape(3, 12).tolist() == [
        [1 + 3, 0, -2, 0, 1, 3, 2, 0, 1, 4, 0, 1],  # rows 0 (tile 0, 2 ACs) and 1 (tile 1, 1 MAC)
        [0, 4, 0, 5, 0, 0, 0, 0, 1, 5, 2, 0],  # row 2 (tile 1, 2 ACs)
        [0] * 12]  # no rows
    assert _compact_rows(**args, max_acc=3)["grp_cr_off"].tolist() == [-1]


def test_compact_rows_equal_records(monkeypatch):
    """Short-row groups read as fixed-length rows give the same spikes, counters and
    cycles as the same groups read through their records."""
    import functools

    import hwsim.engine.build as eng

    net, x = random_net(3)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
    m = map_model(net, chip)
    # explicit rows: the geometric path (the default) takes the dense classifier's group
    prog = compile(m, conv_path="rows")
    kb, ko, _, _ = eng.kernel_inputs(prog, "subtract", "binary", None, 1, False, 1, True)
    assert (eng.kernel_field(kb, ko, "grp_cr_off") >= 0).any()  # the case has short-row groups
    r1 = simulate(prog, x, record="all", timing=True)
    monkeypatch.setattr(eng, "_compact_rows", functools.partial(eng._compact_rows, max_acc=0))
    prog2 = compile(m, conv_path="rows")
    kb, ko, _, _ = eng.kernel_inputs(prog2, "subtract", "binary", None, 1, False, 1, True)
    assert not (eng.kernel_field(kb, ko, "grp_cr_off") >= 0).any()
    r2 = simulate(prog2, x, record="all", timing=True)
    same(r1, r2)
    np.testing.assert_array_equal(r1.counters, r2.counters)
    np.testing.assert_array_equal(r1.timing["step_cycles"], r2.timing["step_cycles"])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to count threads")
def test_engine_leaves_no_thread_behind():
    """The engine runs its compiled work on its own threads, joined before simulate returns
    (hwsim/engine/threads.py), never in a Numba ``parallel=True`` region, whose OpenMP
    workers outlive it and keep spinning, competing with the kernel's threads (the input
    scan's ``prange`` did): a fresh interpreter has as many threads after a run on 2
    threads (inputs scanned, kernel) as before it."""
    import os
    import subprocess
    import sys

    code = ("import os, numpy as np, numba\n"
            "from tests.hwsim.cases import toy, toy_chip\n"
            "from mapper.mapping import map_model\n"
            "from hwsim.engine import simulate\n"
            "m = map_model(toy(), toy_chip())\n"
            "assert numba.get_num_threads() == 2\n"
            "n0 = len(os.listdir('/proc/self/task'))\n"
            "simulate(m, np.ones((3, 4, 3)), timing=False)\n"
            "print(n0, len(os.listdir('/proc/self/task')))\n")
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = map(int, out.stdout.split()[-2:])
    assert after == before


def test_input_scan_flags_and_errors():
    """One pass over the inputs finds non-finite values, non-integer spike counts and
    held frames (equal to the sample's previous step; never at step 0 or for spiking
    inputs); simulate refuses the bad ones with typed errors naming the step."""
    from hwsim.engine.inputs import scan_inputs

    x = np.zeros((4, 3, 5), np.float32)
    x[:, 0] = 0.5  # sample 0: one frame held for 4 steps
    x[2, 1, 3] = 1.0  # sample 1: a change at step 2 (and back at step 3)
    x[1, 2, 0] = np.nan
    x[3, 2, 4] = -np.inf
    bad, frac, held = scan_inputs(x, False)
    assert bad.tolist() == [[False, False, False], [False, False, True], [False, False, False],
                            [False, False, True]]
    assert not frac.any()
    assert held.tolist() == [[False, False, False], [True, True, False], [True, False, False],
                             [True, False, False]]
    for n in (1, 2, 3, 8):  # samples split over threads: the same flags
        assert all((a == b).all() for a, b in zip(scan_inputs(x, False, n), (bad, frac, held)))
    bad, frac, held = scan_inputs(np.abs(np.nan_to_num(x, nan=0, neginf=0)), True)
    assert not held.any() and not bad.any()
    assert frac.tolist() == [[True, False, False]] * 4  # 0.5 spikes
    m = map_model(toy(), toy_chip())
    with pytest.raises(SimulationError, match="NaN or infinite"):
        simulate(m, np.full((2, 1, 3), np.inf))
    xs = np.zeros((3, 2, 3))
    xs[2, 1, 0] = 1.5
    with pytest.raises(SimulationError, match="step 2 is not"):
        simulate(m, xs)


def test_kernel_tables_built_once_per_program(monkeypatch):
    """A second run on the same compiled program reuses its kernel tables (same
    results); a new program, or other options, builds them again."""
    import hwsim.engine.build as eng

    net, x = random_net(1)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
    prog = compile(map_model(net, chip))
    calls = []
    real = eng._kernel_inputs
    monkeypatch.setattr(eng, "_kernel_inputs", lambda *a: calls.append(a[1:]) or real(*a))
    r1 = simulate(prog, x, record="all", timing=True)
    r2 = simulate(prog, x, record="all", timing=True)
    assert len(calls) == 1
    same(r1, r2)
    np.testing.assert_array_equal(r1.counters, r2.counters)
    np.testing.assert_array_equal(r1.timing["step_cycles"], r2.timing["step_cycles"])
    simulate(prog, x, timing=False)
    simulate(prog, x, reset="zero", timing=False)
    simulate(compile(map_model(net, chip)), x, timing=False)
    assert len(calls) == 4
