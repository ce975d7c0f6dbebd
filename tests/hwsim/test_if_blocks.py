"""The IF update by blocks of 64 slots (hwsim.engine.if_blocks, issue 17): a block no event
touched, with nothing hot, is skipped. On conv nets whose IF populations span many
blocks (sparse spiking input, pooling composed into a conv, partial sums, held real-valued
frames whose sums are reused), the geometric program, whose conv populations run by
blocks, gives the integer reference's spikes and membranes and the explicit-row program's
outputs and counters (its populations run the dense update); where the rule does not
apply (zero reset, LIF, multi spikes, explicit rows) no population runs by blocks."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from hwsim.chip import load_chip
from hwsim.engine import reference_net, simulate
from hwsim.engine.build import kernel_inputs
from hwsim.engine.if_blocks import block_flags_size
from hwsim.engine.layout import kernel_field
from hwsim.program import compile
from mapper.mapping import map_model
from models import Graph
from models.intref import simulate_int

_CHIP = {"core.axons": 64, "core.neurons": 64, "mesh.width": 4, "mesh.height": 4, "mesh.max_chips": 64,
         "core.memory_bytes": 1 << 17, "core.routing_entries": 8192}


def _cnn(seed: int, model: str = "IF", gain: float = 1.0):
    """input (2, 16, 16) -> conv 3x3 pad 1 -> (8, 16, 16) -> sum pool 2 -> conv 3x3 pad 1
    -> (8, 8, 8) -> flatten -> affine -> (5,): 2048 and 512 neurons (32 and 8 blocks).
    Thresholds vary per neuron; ``gain`` scales the weights (large: neurons jump far
    over threshold and stay hot for several steps)."""
    rng = np.random.default_rng(seed)

    def node(shape, thr):
        kw = dict(r=np.ones(shape, np.float32), v_threshold=thr.astype(np.float32),
                  v_reset=np.zeros(shape, np.float32))
        if model == "LIF":
            return nir.LIF(tau=np.full(shape, 4.0, np.float32), v_leak=np.zeros(shape, np.float32), **kw)
        return nir.IF(**kw)

    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 16, 16])}),
        "conv1": nir.Conv2d(input_shape=(16, 16), weight=(gain * rng.normal(0.0, 0.8, (8, 2, 3, 3))).astype(np.float32),
                            stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(8, np.float32)),
        "if1": node((8, 16, 16), rng.uniform(0.4, 1.2, (8, 16, 16))),
        "pool": pool,
        "conv2": nir.Conv2d(input_shape=(8, 8), weight=(gain * rng.normal(0.0, 0.4, (8, 8, 3, 3))).astype(np.float32),
                            stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1, bias=np.zeros(8, np.float32)),
        "if2": node((8, 8, 8), rng.uniform(0.5, 1.5, (8, 8, 8))),
        "flat": nir.Flatten(input_type={"input": np.array([8, 8, 8])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.3, (5, 512)).astype(np.float32), bias=np.zeros(5, np.float32)),
        "if3": node((5,), np.full(5, 0.7)),
        "output": nir.Output(output_type={"output": np.array([5])}),
    }
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "pool"), ("pool", "conv2"), ("conv2", "if2"),
             ("if2", "flat"), ("flat", "fc"), ("fc", "if3"), ("if3", "output")]
    return Graph(nodes, edges, dt=1.0)


def _blocks(prog, reset="subtract", spikes="binary"):
    kb, ko, _, _ = kernel_inputs(prog, reset, spikes, None, 1, False, 1, False)
    names = list(prog.pop_names)
    return {names[p]: bool(b) for p, b in enumerate(kernel_field(kb, ko, "pop_blocks")) if p > 0}


def _check(m, x, reset="subtract", spikes="binary"):
    """The geometric run equals the integer reference (spikes, membranes) and the rows
    program's run (outputs, counters); returns (geometric program,
    reference run)."""
    geo = compile(m, conv_path="geometric")
    rows = compile(m, conv_path="rows")
    assert not any(_blocks(rows, reset, spikes).values())  # explicit rows: the dense update only
    r = simulate(geo, x, reset=reset, spikes=spikes, record="all", timing=False)
    ref = simulate_int(reference_net(m.net, m.chip.timing.mode), x, reset=reset, spikes=spikes, record="all")
    for k in ref.spikes:
        np.testing.assert_array_equal(r.spikes[k], ref.spikes[k], err_msg=f"spikes of {k}")
        np.testing.assert_array_equal(r.membrane[k], ref.membrane[k], err_msg=f"membrane of {k}")
    rr = simulate(rows, x, reset=reset, spikes=spikes, timing=False)
    np.testing.assert_array_equal(r.output, rr.output)
    np.testing.assert_array_equal(r.counters, rr.counters)
    return geo, ref


@pytest.mark.parametrize("seed,rate,gain", [(0, 0.005, 1.0), (1, 0.01, 3.0), (2, 0.003, 6.0)])
def test_blocks_equal_reference_and_rows_sparse_spikes(seed, rate, gain):
    """Sparse spiking input (1-10 % of the inputs a step): the conv populations run by
    blocks, most blocks are skipped most steps, neurons stay hot across steps (a large
    gain), partial sums split the composed 6x6 kernel over cores; everything equals."""
    m = map_model(_cnn(seed, gain=gain), load_chip("tiny").with_overrides(_CHIP), input_spiking=True)
    x = (np.random.default_rng(seed).random((12, 3, 2, 16, 16)) < rate).astype(np.float32)
    geo, ref = _check(m, x)
    assert _blocks(geo) == {"if1": True, "if2": True, "if3": False}
    assert (geo.tile_kind == 1).any()  # partial sums
    names = list(geo.pop_names)
    hot = 0
    for k in ("if1", "if2"):
        s = ref.spikes[k]
        assert s.sum() > 0
        # a neuron hot after a step (v >= theta) fires at the next one even without input
        off = int(geo.pop_off[names.index(k)])
        hot += int((ref.membrane[k] >= np.asarray(geo.nrn_thr[off:off + s.shape[2]])).sum())
    # blocks of 64 if1 neurons in the state order (y, x, c) without a spike or a membrane
    # change in a step: some (the rule skips them)
    v = ref.membrane["if1"]
    act = (ref.spikes["if1"] != 0) | (v != np.concatenate([np.zeros_like(v[:1]), v[:-1]]))
    T, B, n = act.shape
    act = act.reshape(T, B, 8, n // 8).transpose(0, 1, 3, 2).reshape(T, B, n // 64, 64)
    assert act.any(3).mean() < 0.9
    if gain > 2:
        assert hot > 0


def test_blocks_with_held_input_frames():
    """Real-valued input held over the steps: the first conv's sums are reused from the
    previous step (input-fed, not zeroed), their blocks stay touched, and the run still
    equals the reference and the rows program."""
    m = map_model(_cnn(4, gain=0.5), load_chip("tiny").with_overrides(_CHIP), input_spiking=False)
    rng = np.random.default_rng(4)
    frame = rng.random((1, 2, 2, 16, 16)) * (rng.random((1, 2, 2, 16, 16)) < 0.2)
    x = np.repeat(frame, 8, axis=0)
    x[5] = rng.random((2, 2, 16, 16)) * (rng.random((2, 2, 16, 16)) < 0.05)  # one changed frame
    geo, ref = _check(m, x)
    assert _blocks(geo)["if1"] and _blocks(geo)["if2"]


@pytest.mark.parametrize("model,reset,spikes", [("LIF", "subtract", "binary"), ("IF", "zero", "binary"),
                                                ("IF", "subtract", "multi")])
def test_no_blocks_where_the_rule_does_not_apply(model, reset, spikes):
    """A leaky neuron changes without input, a zero reset and multi spikes leave the IF
    fast path: no population runs by blocks, and the run is still exact."""
    m = map_model(_cnn(5, model=model, gain=2.0), load_chip("tiny").with_overrides(_CHIP), input_spiking=True)
    x = (np.random.default_rng(5).random((8, 2, 2, 16, 16)) < 0.05).astype(np.float32)
    geo, _ = _check(m, x, reset=reset, spikes=spikes)
    assert not any(_blocks(geo, reset, spikes).values())


def test_block_flags_disjoint():
    """Projection q at accumulator a0 with n sums uses flags (a0 >> 6) + q + w, w < ceil(n / 64):
    disjoint for consecutive blocks of sums, inside block_flags_size."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(1, 300, rng.integers(1, 8))
        a0 = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        used = np.concatenate([(a >> 6) + q + np.arange((n + 63) >> 6) for q, (a, n) in enumerate(zip(a0, sizes))])
        assert np.unique(used).size == used.size
        assert used.max() < block_flags_size(int(sizes.sum()), sizes.size)
