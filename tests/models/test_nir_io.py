"""NIR read/write round trip: every primitive, the shared .nir files, and bad files."""

from __future__ import annotations

import shutil

import nir
import numpy as np
import pytest

import models
from models import GraphError, NIRFormatError, ParameterError, ShapeError, UnsupportedNodeError
from models.graph import SUPPORTED_TYPES, PARAM_FIELDS, node_type

from .primitives import all_primitives_graph, conv1d_graph, cubali_graph, recurrent_cuba_graph
from ..conftest import DATA


def assert_same_graph(a: models.Graph, b: models.Graph):
    assert set(a.nodes) == set(b.nodes)
    assert sorted(a.edges) == sorted(b.edges)
    assert a.dt == b.dt
    for name in a.nodes:
        na, nb = a.nodes[name], b.nodes[name]
        assert node_type(na) == node_type(nb), name
        for f in PARAM_FIELDS[node_type(na)] + ("stride", "padding", "dilation", "groups", "kernel_size",
                                                 "start_dim", "end_dim", "input_shape"):
            if hasattr(na, f):
                va, vb = np.asarray(getattr(na, f)), np.asarray(getattr(nb, f))
                assert va.dtype == vb.dtype or f not in PARAM_FIELDS[node_type(na)], (name, f)
                np.testing.assert_array_equal(va, vb, err_msg=f"{name}.{f}")
        assert a.shapes[name] == b.shapes[name]


def test_every_primitive_is_covered():
    used = {node_type(n) for g in (all_primitives_graph(), conv1d_graph(), cubali_graph()) for n in g.nodes.values()}
    assert used == set(SUPPORTED_TYPES)


@pytest.mark.parametrize("build", [all_primitives_graph, conv1d_graph, recurrent_cuba_graph, cubali_graph])
def test_round_trip_primitives(tmp_path, build):
    g = build()
    p = models.write_nir(g, tmp_path / "g.nir")
    g2 = models.read_nir(p)
    assert_same_graph(g, g2)
    assert g2.metadata == g.metadata
    # and once more: write(read(x)) is stable
    g3 = models.read_nir(models.write_nir(g2, tmp_path / "g2.nir"))
    assert_same_graph(g2, g3)


def test_round_trip_shared_files(tmp_path):
    files = sorted(DATA.glob("**/*.nir"))
    if not files:
        pytest.skip(f"no .nir files under {DATA}")
    for f in files:
        g = models.read_nir(f)
        g2 = models.read_nir(models.write_nir(g, tmp_path / f.name))
        assert_same_graph(g, g2)


def test_nir_cnn_structure(nir_cnn):
    types = [node_type(nir_cnn.nodes[n]) for n in nir_cnn.order]
    assert types == ["Input", "Conv2d", "IF", "Conv2d", "IF", "SumPool2d", "Conv2d", "IF", "SumPool2d",
                     "Flatten", "Affine", "IF", "Affine", "IF", "Output"]
    assert nir_cnn.shapes["0"] == ((2, 34, 34), (16, 16, 16))
    assert nir_cnn.shapes["4"][1] == (16, 8, 8)
    assert nir_cnn.shapes["8"][1] == (128,)
    stats = nir_cnn.node_stats("0")
    # conv 2->16, 5x5, stride 2, pad 1 on 34x34: 16 x 16 outputs, full 50-tap window inside
    assert stats["fan_in"] == 2 * 5 * 5
    assert stats["params"] == 16 * 2 * 25 + 16
    s = nir_cnn.summary()
    assert "Conv2d" in s and "8,970" in s  # total neurons 4096+4096+512+256+10


def test_shape_inference_strided_dilated():
    g = all_primitives_graph()
    assert g.shapes["sum"] == ((4, 8, 8), (4, 4, 4))
    assert g.shapes["flat"] == ((4, 2, 2), (16,))
    g1 = conv1d_graph()
    assert g1.shapes["c1"] == ((2, 16), (3, 8))  # floor((16 + 2 - 3) / 2) + 1 = 8
    assert g1.dt == 0.5


def test_recurrent_edge_detected():
    g = recurrent_cuba_graph()
    assert g.back_edges == {("fc_rec", "cuba")}
    assert g.order.index("cuba") < g.order.index("fc_rec")


# ---------------------------------------------------------------- bad input ----------

def _write_raw(path, nodes, edges):
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def test_truncated_file(tmp_path, nir_cnn_path):
    bad = tmp_path / "trunc.nir"
    data = nir_cnn_path.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(NIRFormatError, match="trunc.nir"):
        models.read_nir(bad)


def test_missing_file(tmp_path):
    with pytest.raises(NIRFormatError, match="nope.nir: no such file"):
        models.read_nir(tmp_path / "nope.nir")


def test_edge_to_missing_node(tmp_path):
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Affine(weight=np.ones((2, 3), np.float32), bias=np.zeros(2, np.float32)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    p = _write_raw(tmp_path / "e.nir", nodes, [("input", "fc"), ("fc", "ghost"), ("fc", "output")])
    with pytest.raises(GraphError, match="missing node 'ghost'"):
        models.read_nir(p)


def test_mismatched_weight_shape(tmp_path):
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Affine(weight=np.ones((2, 4), np.float32), bias=np.zeros(2, np.float32)),
             "lif": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    p = _write_raw(tmp_path / "m.nir", nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(ShapeError, match=r"node 'fc'.*\(2, 4\)"):
        models.read_nir(p)


def test_nan_weights(tmp_path):
    w = np.ones((2, 3), np.float32)
    w[1, 2] = np.nan
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Affine(weight=w, bias=np.zeros(2, np.float32)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    p = _write_raw(tmp_path / "n.nir", nodes, [("input", "fc"), ("fc", "output")])
    with pytest.raises(ParameterError, match="node 'fc': field 'weight' has 1 NaN"):
        models.read_nir(p)


def test_unsupported_node_type(tmp_path):
    """A node type the project does not know (a CubaLI renamed in the file: NIR itself knows no such type)."""
    import h5py

    o = np.ones(3, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "izh": nir.CubaLI(tau_syn=o, tau_mem=o, r=o, v_leak=0 * o),
             "output": nir.Output(output_type={"output": np.array([3])})}
    p = _write_raw(tmp_path / "u.nir", nodes, [("input", "izh"), ("izh", "output")])
    with h5py.File(p, "r+") as f:
        del f["node/nodes/izh/type"]
        f["node/nodes/izh/type"] = b"Izhikevich"
    with pytest.raises(UnsupportedNodeError, match="node 'izh': unsupported node type 'Izhikevich'"):
        models.read_nir(p)


def test_not_hdf5(tmp_path):
    p = tmp_path / "text.nir"
    p.write_text("hello")
    with pytest.raises(NIRFormatError, match="text.nir"):
        models.read_nir(p)


def test_nonpositive_threshold():
    g = recurrent_cuba_graph()
    g.nodes["cuba"].v_threshold = np.zeros(16)
    with pytest.raises(ParameterError, match="node 'cuba': field 'v_threshold' must be > 0"):
        models.Graph(g.nodes, g.edges, dt=g.dt)


def test_write_is_atomic(tmp_path, monkeypatch):
    g = conv1d_graph()
    target = tmp_path / "out.nir"
    shutil.copy(models.write_nir(g, tmp_path / "orig.nir"), target)
    before = target.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(nir, "write", boom)
    with pytest.raises(KeyboardInterrupt):
        models.write_nir(g, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
