"""Property-based equivalence (hypothesis): on random small NIR graphs and chips,

1. the chip simulator equals the integer reference on every spike and membrane value
   (feed-forward, conv with pooling, recurrent, delays; IF, LIF, CubaLIF, LI;
   small crossbars forcing partial sums and folding; sync and pipelined; binary,
   count and real-valued inputs; both reset and spike modes);
2. the float reference on the graph equals the float reference on the lowered net.

Profiles: ``dev`` (default, 25 examples each) and ``ci`` (``HYPOTHESIS_PROFILE=ci`` or
``CI`` set: 500 examples each, about 1,000 graphs in all, a few minutes on 2 cores).
"""

from __future__ import annotations

import os

import nir
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hwsim.chip import load_chip
from hwsim.engine import reference_net, simulate
from mapper.mapping import map_model
from models import Graph, lower
from models import simulate as simulate_float
from models.errors import SnnchipError
from models.intref import simulate_int

settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=500, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def _neuron(kind: str, shape, rng, spiking_last: bool = True):
    n = tuple(shape)
    ones = np.ones(n, np.float32)
    thr = rng.uniform(0.4, 1.5, n).astype(np.float32)
    if kind == "IF":
        return nir.IF(r=ones, v_threshold=thr, v_reset=0 * ones)
    if kind == "LIF":
        return nir.LIF(tau=ones * rng.uniform(2, 8), r=ones, v_leak=0 * ones, v_threshold=thr, v_reset=0 * ones)
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=ones * rng.uniform(2, 5), tau_mem=ones * rng.uniform(3, 8), r=ones,
                           v_leak=0 * ones, v_threshold=thr, v_reset=0 * ones, w_in=ones)
    return nir.LI(tau=ones * rng.uniform(2, 6), r=ones, v_leak=0 * ones)


@st.composite
def graphs(draw):
    """(graph, input kind) of a small random network."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    conv = draw(st.booleans())
    hidden_kind = draw(st.sampled_from(["IF", "LIF", "CubaLIF"]))
    out_kind = draw(st.sampled_from(["IF", "LIF", "CubaLIF", "LI"]))
    recurrent = draw(st.booleans())
    delay = draw(st.integers(0, 2))
    n_hidden = draw(st.integers(3, 20))
    n_out = draw(st.integers(2, 6))
    nodes, edges = {}, []
    if conv:
        C, H = draw(st.integers(1, 3)), draw(st.sampled_from([4, 6, 8]))
        K = draw(st.integers(2, 4))
        pool = draw(st.booleans())
        nodes["input"] = nir.Input(input_type={"input": np.array([C, H, H])})
        nodes["conv"] = nir.Conv2d(input_shape=(H, H), weight=rng.normal(0, 0.7, (K, C, 3, 3)).astype(np.float32),
                                   stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1,
                                   bias=np.zeros(K, np.float32))
        nodes["h1"] = _neuron(hidden_kind if hidden_kind != "CubaLIF" else "IF", (K, H, H), rng)
        edges += [("input", "conv"), ("conv", "h1")]
        last, Hs = "h1", H
        if pool:
            nodes["pool"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                          padding=np.array([0, 0]))
            edges.append((last, "pool"))
            last, Hs = "pool", H // 2
        nodes["flat"] = nir.Flatten(input_type={"input": np.array([K, Hs, Hs])}, start_dim=0, end_dim=-1)
        edges.append((last, "flat"))
        last, width = "flat", K * Hs * Hs
        input_shape = (C, H, H)
    else:
        n_in = draw(st.integers(3, 40))
        nodes["input"] = nir.Input(input_type={"input": np.array([n_in])})
        last, width = "input", n_in
        input_shape = (n_in,)
    nodes["fc1"] = nir.Affine(weight=rng.normal(0, 1.2 / np.sqrt(width), (n_hidden, width)).astype(np.float32),
                              bias=rng.normal(0, 0.05, n_hidden).astype(np.float32))
    nodes["h2"] = _neuron(hidden_kind, (n_hidden,), rng)
    edges += [(last, "fc1"), ("fc1", "h2")]
    if recurrent:
        nodes["rec"] = nir.Linear(weight=rng.normal(0, 0.4, (n_hidden, n_hidden)).astype(np.float32))
        edges += [("h2", "rec"), ("rec", "h2")]
    src = "h2"
    if delay:
        nodes["delay"] = nir.Delay(delay=np.full(n_hidden, float(delay), np.float32))
        edges.append(("h2", "delay"))
        src = "delay"
    nodes["fc2"] = nir.Affine(weight=rng.normal(0, 1.5 / np.sqrt(n_hidden), (n_out, n_hidden)).astype(np.float32),
                              bias=np.zeros(n_out, np.float32))
    nodes["out"] = _neuron(out_kind, (n_out,), rng)
    nodes["output"] = nir.Output(output_type={"output": np.array([n_out])})
    edges += [(src, "fc2"), ("fc2", "out"), ("out", "output")]
    kind = draw(st.sampled_from(["binary", "count", "real"]))
    T, B = draw(st.integers(2, 8)), draw(st.integers(1, 3))
    shape = (T, B) + input_shape
    if kind == "binary":
        x = (rng.random(shape) < 0.3).astype(np.float32)
    elif kind == "count":
        x = rng.integers(0, 4, shape).astype(np.float32)
    else:
        x = rng.random(shape).astype(np.float32)
    return Graph(nodes, edges, dt=1.0), x, kind


@st.composite
def chips(draw):
    axons = draw(st.sampled_from([8, 16, 32, 64]))
    neurons = draw(st.sampled_from([4, 8, 16, 64]))
    return load_chip("tiny").with_overrides({
        "core.axons": axons, "core.neurons": neurons, "mesh.width": 4, "mesh.height": 4, "mesh.max_chips": 64,
        "core.memory_bytes": 1 << 16, "core.routing_entries": 4096,
        "core.neuron_models": ["IF", "LIF", "CubaLIF", "LI"],
        "timing.mode": draw(st.sampled_from(["sync", "pipelined"]))})


@given(case=graphs(), chip=chips(), reset=st.sampled_from(["zero", "subtract"]),
       spikes=st.sampled_from(["binary", "multi"]))
def test_chip_equals_integer_reference(case, chip, reset, spikes):
    g, x, kind = case
    try:
        m = map_model(g, chip, input_spiking=kind != "real")
    except SnnchipError as err:  # a net the small chip cannot hold is refused by name, never crashes
        assert str(err)
        event("refused by the mapper")
        return
    event(f"{chip.timing.mode}, {kind} input, {len(m.tiling.cores)} cores, "
          f"{'partial sums' if any(t.kind == 'partial' for t in m.tiling.tiles) else 'no partial sums'}")
    r = simulate(m, x, reset=reset, spikes=spikes, record="all", timing=True)
    qnet = reference_net(m.net, chip.timing.mode)
    ref = simulate_int(qnet, x, reset=reset, spikes=spikes, record="all")
    assert set(ref.spikes) == set(r.spikes)
    for k in ref.spikes:
        np.testing.assert_array_equal(r.spikes[k], ref.spikes[k], err_msg=f"spikes of {k}")
        np.testing.assert_array_equal(r.membrane[k], ref.membrane[k], err_msg=f"membrane of {k}")
    np.testing.assert_array_equal(r.output, ref.output)


@given(case=graphs(), reset=st.sampled_from(["zero", "subtract"]), spikes=st.sampled_from(["binary", "multi"]))
def test_float_graph_equals_lowered_net(case, reset, spikes):
    g, x, kind = case
    a = simulate_float(g, x, reset=reset, spikes=spikes)
    b = simulate_float(lower(g, input_spiking=kind != "real"), x, reset=reset, spikes=spikes)
    np.testing.assert_allclose(b.output, a.output, rtol=1e-5, atol=1e-5)
