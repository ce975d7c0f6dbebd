"""Framework semantics (issue 19): the membrane floor in the float and integer references,
the source table, dt refusal, and cross-checks against the frameworks' own NIR imports
(Sinabs, snnTorch, Norse; the ``peers`` extra, skipped with the reason when missing)."""

from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from models import read_nir
from models.errors import ParameterError, SimulationError
from models.frameworks import SOURCES, detect_source, source_options
from models.graph import Graph
from models.reference import simulate_graph, simulate_net

NIR_CNN = Path("/work/shared/data/nir_paper/cnn_sinabs.nir")


def _if_graph(threshold=1.0):
    w = np.array([[1.0], [-1.0]])
    return Graph.sequential([("fc", nir.Affine(w, np.zeros(2))),
                             ("if1", nir.IF(np.ones(2), np.full(2, threshold)))], (1,))


def test_membrane_floor_float_by_hand():
    g = _if_graph(threshold=2.0)
    x = np.array([3.0, 3.0, 0.5, 0.5]).reshape(4, 1, 1)
    # neuron 1 gets -3, -3, -0.5, -0.5: without a floor v = -3, -6, -6.5, -7
    r = simulate_graph(g, x, record="all")
    assert r.membrane["if1"][:, 0, 1].tolist() == [-3.0, -6.0, -6.5, -7.0]
    # absolute floor -1: max(v, -1) after every step
    r = simulate_graph(g, x, record="all", v_min=-1.0)
    assert r.membrane["if1"][:, 0, 1].tolist() == [-1.0, -1.0, -1.0, -1.0]
    # "-threshold": -2 here; neuron 0 fires at 3 >= 2 (subtract: 1), then 4 -> fires (2), 2.5 (fires, 0.5), 1.0
    r = simulate_graph(g, x, record="all", v_min="-threshold")
    assert r.membrane["if1"][:, 0, 1].tolist() == [-2.0, -2.0, -2.0, -2.0]
    assert r.output[:, 0, 0].tolist() == [1.0, 1.0, 1.0, 0.0]
    # the lowered net obeys the same floor
    from models.lowering import lower

    rn = simulate_net(lower(g, input_spiking=False), x, record="all", v_min=-1.0)
    assert rn.membrane["if1"][:, 0, 1].tolist() == [-1.0, -1.0, -1.0, -1.0]
    with pytest.raises(SimulationError, match="v_min"):
        simulate_graph(g, x, v_min=0.5)


def test_membrane_floor_integer_reference():
    from mapper.quantize import quantize
    from models.intref import simulate_int
    from models.lowering import lower

    g = _if_graph(threshold=2.0)
    q = quantize(lower(g, input_spiking=True))
    q = q[0] if isinstance(q, tuple) else q
    unit = q.metadata["quant"]["populations"]["if1"]["unit"]
    x = np.array([3, 3, 1, 1]).reshape(4, 1, 1)
    r = simulate_int(q, x, record="all", v_min=-1.0)
    floor = -int(np.floor(unit + 0.5))
    assert r.membrane["if1"][:, 0, 1].tolist() == [floor] * 4
    r = simulate_int(q, x, record="all", v_min="-threshold")
    th = int(q.pop["if1"].params["v_threshold"][1])
    assert r.membrane["if1"][:, 0, 1].tolist() == [-th] * 4
    assert simulate_int(q, x).output.sum() == simulate_int(q, x, v_min=-1.0).output.sum()


def test_source_table_and_detection():
    assert set(SOURCES) == {"sinabs", "speck", "snntorch", "norse", "rockpool", "lava-dl"}
    assert source_options("sinabs") == {"reset": "subtract", "spikes": "multi", "v_min": "-threshold"}
    assert source_options("snntorch")["reset"] == "zero"
    with pytest.raises(ParameterError, match="unknown source 'brian'.*--source"):
        source_options("brian")
    g = _if_graph()
    g.metadata["framework"] = "snnTorch 0.9"
    assert detect_source(g)[0] == "snntorch"
    if NIR_CNN.exists():
        assert detect_source(read_nir(NIR_CNN))[0] == "sinabs"


def _write_cuba(path, tau=2e-4, with_dt=False):
    n = 3
    nodes = {"input": nir.Input(input_type={"input": np.array([n])}),
             "fc": nir.Affine(np.eye(n), np.zeros(n)),
             "lif": nir.CubaLIF(tau_syn=np.full(n, tau), tau_mem=np.full(n, tau), r=np.ones(n),
                                v_leak=np.zeros(n), v_threshold=np.ones(n)),
             "output": nir.Output(output_type={"output": np.array([n])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                     metadata={"dt": 1e-4} if with_dt else {})
    nir.write(path, g)


def test_read_nir_refuses_sub_unit_taus_without_dt(tmp_path):
    p = tmp_path / "cuba.nir"
    _write_cuba(p)
    with h5py.File(p) as f:
        assert "dt" not in f["node"].get("metadata", {})
    with pytest.raises(ParameterError, match=r"node 'lif': tau_\w+ = 0.0002 is below 1.*--dt"):
        read_nir(p)
    assert read_nir(p, dt=1e-4).dt == 1e-4
    _write_cuba(tmp_path / "ok.nir", with_dt=True)
    assert read_nir(tmp_path / "ok.nir").dt == 1e-4


# ------------------------------------------------------------------ the frameworks themselves

def test_sinabs_own_import_gives_identical_spike_counts():
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[peers]')")
    sinabs = pytest.importorskip("sinabs", reason="sinabs not installed (pip install -e '.[peers]')")
    if not NIR_CNN.exists():
        pytest.skip(f"{NIR_CNN} not present")
    from models.datasets import load_nmnist

    seq = load_nmnist(samples=3)
    x = seq.inputs  # (T, B, 2, 34, 34) event counts per 1 ms frame
    T, B = x.shape[:2]
    g = read_nir(NIR_CNN)
    src, _ = detect_source(g)
    ours = simulate_graph(g, x, **source_options(src)).counts
    model = sinabs.from_nir(nir.read(str(NIR_CNN)), batch_size=B)
    with torch.no_grad():
        out = model(torch.tensor(np.moveaxis(x, 0, 1).reshape((B * T,) + x.shape[2:]), dtype=torch.float32))
    out = out[0] if isinstance(out, tuple) else out  # nirtorch's executor may return (output, state)
    theirs = out.reshape(B, T, -1).sum(axis=1).numpy()
    assert np.array_equal(ours, theirs), (ours, theirs)
    assert ours.sum() > 0 and (ours.argmax(axis=1) == seq.labels).all()


def _lif_graph(rng, dt, tau, cuba=False):
    n_in, n = 6, 4
    w = rng.normal(0, 1, (n, n_in))
    node = (nir.CubaLIF(tau_syn=np.full(n, tau), tau_mem=np.full(n, tau), r=np.full(n, tau / dt),
                        v_leak=np.zeros(n), v_threshold=np.full(n, 1.0), v_reset=np.zeros(n),
                        w_in=np.full(n, tau / dt)) if cuba else
            nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n),
                    v_threshold=np.full(n, 1.0), v_reset=np.zeros(n)))
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc": nir.Linear(w), "lif": node, "output": nir.Output(output_type={"output": np.array([n])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                        metadata={"dt": dt})


def test_snntorch_own_import_lif_spike_times():
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[peers]')")
    imp = pytest.importorskip("snntorch.import_nir", reason="snntorch not installed (pip install -e '.[peers]')")
    rng = np.random.default_rng(0)
    dt, tau, T = 1e-4, 5e-4, 40  # snnTorch's import fixes dt = 1e-4 and needs r dt / tau = 1
    ng = _lif_graph(rng, dt, tau)
    x = (rng.random((T, 2, 6)) < 0.3).astype(np.float64)
    p = Path(__file__).parent / "_tmp_lif.nir"
    try:
        nir.write(p, ng)
        ours = simulate_graph(read_nir(p), x, record="all", **source_options("snntorch"))
    finally:
        p.unlink(missing_ok=True)
    import snntorch

    net = imp.import_from_nir(ng)
    (leaky,) = [m for m in net.modules() if isinstance(m, snntorch.Leaky)]
    outs, mems = [], []
    with torch.no_grad():
        state = None
        for t in range(T):
            o = net(torch.tensor(x[t], dtype=torch.float32), state) if state is not None else \
                net(torch.tensor(x[t], dtype=torch.float32))
            if isinstance(o, tuple):
                o, state = o
            outs.append(np.asarray(o, dtype=np.float64))
            mems.append(np.asarray(leaky.mem, dtype=np.float64))  # init_hidden: the module keeps mem
    theirs = np.stack(outs)
    assert theirs.sum() > 0
    assert np.array_equal(ours.output, theirs)
    np.testing.assert_allclose(ours.membrane["lif"], np.stack(mems), rtol=1e-5, atol=1e-5)


def test_norse_own_import_cubalif_spikes_and_membranes():
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[peers]')")
    norse = pytest.importorskip("norse.torch", reason="norse not installed (pip install -e '.[peers]')")
    rng = np.random.default_rng(1)
    dt, T, n_in, n = 1e-3, 60, 5, 4
    w = rng.normal(0, 3, (n, n_in))
    # Norse's import reads nir.Linear with swapped dimensions; Affine with a zero bias is the same layer
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc": nir.Affine(w, np.zeros(n)),
             "lif": nir.CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 1e-2), r=np.full(n, 2.0),
                                v_leak=np.zeros(n), v_threshold=np.full(n, 0.5), v_reset=np.zeros(n),
                                w_in=np.full(n, 1.5)),
             "output": nir.Output(output_type={"output": np.array([n])})}
    ng = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                      metadata={"dt": dt})
    x = (rng.random((T, 2, n_in)) < 0.4).astype(np.float64)
    g = Graph(dict(ng.nodes), list(ng.edges), dt=dt)
    ours = simulate_graph(g, x, record="all", **source_options("norse"))
    net = norse.from_nir(ng, dt=dt)
    spikes, vs, state = [], [], None
    with torch.no_grad():
        for t in range(T):
            out = net(torch.tensor(x[t], dtype=torch.float32), state)
            z, state = out if isinstance(out, tuple) else (out, None)
            spikes.append(z.numpy().astype(np.float64))
            vs.append(state.state["lif"][0][1].v.numpy().astype(np.float64))  # ((synapse, lif),)
    assert np.stack(spikes).sum() > 0
    assert np.array_equal(ours.output, np.stack(spikes))
    np.testing.assert_allclose(ours.membrane["lif"], np.stack(vs), rtol=1e-5, atol=1e-5)
