"""The mapper end to end: real models map, files round-trip, broken limits are all named."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import models
from hwsim.chip import load_chip
from mapper.mapping import Mapping, MappingFileError, fold_sweep, map_model
from mapper.tiling import TilingError
from mapper.validate import MappingError
from models.zoo import build
from models.zoo.catalog import trained_path

TIANJIC = load_chip("tianjic")


@pytest.fixture(scope="module")
def cnn_mapping(nir_cnn):
    return map_model(nir_cnn, TIANJIC, placement="anneal", model="nir_cnn")


def test_nir_cnn_maps_on_one_tianjic_chip(cnn_mapping):
    r = cnn_mapping.resources()
    assert r["chips_used"] == 1 and r["cores_used"] == 99 and r["tiles"] == 99 and r["partial_tiles"] == 53
    assert r["max_routing_entries"] <= TIANJIC.core.routing_entries
    # annealing starts from the best of partition / rowmajor / hilbert, so it is never worse
    assert r["traffic_hops"] <= r["rowmajor_traffic_hops"]
    text = cnn_mapping.report()
    for word in ("cores used", "crossbars", "utilization", "weight memory", "routing tables", "traffic x hops"):
        assert word in text


def test_the_package_exports_its_passes():
    import mapper
    from mapper.quantize import quantize
    from mapper.tiling import tile
    from mapper.validate import check

    assert (mapper.quantize, mapper.tile, mapper.check, mapper.map_model) == (quantize, tile, check, map_model)
    assert mapper.prune.prune.__module__ == "mapper.prune.pruner"  # the pruning subpackage, not hidden


def test_mapping_repr_is_a_one_line_summary(cnn_mapping):
    assert repr(cnn_mapping) == ("Mapping(nir_cnn on tianjic: 99 cores on 1 chip, 99 crossbars for 99 tiles, "
                                 "fold <= 1)")


def test_mapping_files_round_trip_exactly(cnn_mapping, tmp_path):
    cnn_mapping.save(tmp_path / "m")
    m2 = Mapping.load(tmp_path / "m")
    a, b = cnn_mapping, m2
    assert np.array_equal(a.placement.positions, b.placement.positions)
    assert a.tiling.cores == b.tiling.cores and a.tiling.fold == b.tiling.fold
    for ta, tb in zip(a.tiling.tiles, b.tiling.tiles):
        assert np.array_equal(ta.post, tb.post) and ta.kind == tb.kind and ta.soma == tb.soma
        for (s1, d1, i1), (s2, d2, i2) in zip(ta.axons, tb.axons):
            assert (s1, d1) == (s2, d2) and np.array_equal(i1, i2)
    for qa, qb in zip(a.net.projections, b.net.projections):
        assert qa.kind == qb.kind and np.array_equal(getattr(qa, "weight", None), getattr(qb, "weight", None))
    for pa, pb in zip(a.net.populations, b.net.populations):
        for k in pa.params:
            assert np.array_equal(pa.params[k], pb.params[k]) and pa.params[k].dtype == pb.params[k].dtype
    assert np.array_equal(a.routes.table_entries, b.routes.table_entries)
    assert np.array_equal(a.routes.link_load, b.routes.link_load)
    assert a.resources() == b.resources()
    assert b.chip == TIANJIC
    # saving the loaded mapping gives the same JSON
    m2.save(tmp_path / "m2")
    assert (tmp_path / "m" / "mapping.json").read_text() == (tmp_path / "m2" / "mapping.json").read_text()


def test_loading_revalidates_against_the_chip(cnn_mapping, tmp_path):
    cnn_mapping.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "mapping.json").read_text())
    doc["chip"]["core"]["axons"] = 128  # a smaller crossbar than the tiles were cut for
    (tmp_path / "m" / "mapping.json").write_text(json.dumps(doc))
    with pytest.raises(MappingError, match=r"axons: 3 tile .* needs \d+ axons, core has 128"):
        Mapping.load(tmp_path / "m")


def test_damaged_mapping_files(cnn_mapping, tmp_path):
    with pytest.raises(MappingFileError, match="mapping.json: no such file"):
        Mapping.load(tmp_path / "nothing")
    cnn_mapping.save(tmp_path / "m")
    (tmp_path / "m" / "mapping.npz").write_bytes(b"not a zip")
    with pytest.raises(MappingFileError, match="mapping.npz: cannot read arrays"):
        Mapping.load(tmp_path / "m")
    cnn_mapping.save(tmp_path / "j")
    (tmp_path / "j" / "mapping.json").write_text('{"format_version": 1}')
    with pytest.raises(MappingFileError, match="mapping.json: model: Field required"):
        Mapping.load(tmp_path / "j")


@pytest.mark.parametrize("name,cores,partial", [("mnist_mlp", 10, 7), ("mnist_cnn", 131, 95)])
def test_shipped_models_map(name, cores, partial):
    m = map_model(models.read_nir(trained_path(name)), TIANJIC, placement="partition", model=name)
    r = m.resources()
    assert (r["cores_used"], r["partial_tiles"], r["chips_used"]) == (cores, partial, 1)
    assert r["traffic_hops"] <= r["rowmajor_traffic_hops"]
    # the first layer sees real-valued pixels: its tiles run in MAC (ANN) mode
    first = m.net.populations[1].name
    assert {t.mode for t in m.tiling.tiles if t.population == first} == {"MAC"}


@pytest.mark.slow
def test_vgg16_cifar_and_resnet18_imagenet_map_on_tianjic():
    vgg = map_model(build("vgg16", shape="cifar"), TIANJIC, model="vgg16")
    # fold 1 fits 59 chips but if7's cores would need up to 666 routing entries (> 256):
    # the mapper raises the fold cap until the routing tables fit too
    rv = vgg.resources()
    print("vgg16 cifar:", rv["cores_used"], "cores,", rv["chips_used"], "chips, fold", vgg.tiling.fold)
    assert rv["max_routing_entries"] <= 256 and max(vgg.tiling.fold.values()) > 1
    res = map_model(build("resnet18", shape="imagenet"), TIANJIC, model="resnet18")
    r = res.resources()
    # fold 1 would need 343 chips; the smallest fold that fits max_chips = 64 is 6
    conv_folds = {f for p, f in res.tiling.fold.items() if p != "if_fc"}
    assert conv_folds == {6} and res.tiling.fold["if_fc"] == 1  # dense layers are never folded
    assert r["chips_used"] == 61 and r["cores_used"] == 9384
    assert r["max_routing_entries"] <= 256


def test_fold_trades_cores_for_cycles(nir_cnn):
    rows = {r["fold"]: r for r in fold_sweep(nir_cnn, TIANJIC, (1, 2, 4, 32))}
    assert [rows[f]["cores"] for f in (1, 2, 4)] == [99, 51, 27]
    assert [rows[f]["cycles_factor"] for f in (1, 2, 4)] == [1, 2, 4]
    assert rows[4]["state_bytes"] == 4 * 256 * 16 // 8
    assert rows[32]["allowed"] is False  # tianjic's core.max_fold is 16


def test_resnet18_on_tiny_names_every_layer_at_fault():
    with pytest.raises(TilingError) as err:
        map_model(build("resnet18", shape="imagenet"), load_chip("tiny"))
    msg = str(err.value)
    assert "population 'if1'" in msg and "population 'layer1.0.if1'" in msg and "exceeds 16 axons" in msg
    assert "tiles by layer: 'layer1.0.if2'" in msg


def test_every_broken_limit_is_reported_at_once():
    chip = TIANJIC.with_overrides({"core.neuron_models": ["LIF"], "core.modes": ["SNN"]})
    with pytest.raises(MappingError) as err:
        map_model(models.read_nir(trained_path("mnist_mlp")), chip, model="mnist_mlp", encoding="direct")
    v = err.value.violations
    # both IF populations lack their neuron model; the 8 tiles of if1 see real-valued pixels (MAC:
    # encoding='direct' asks for them; the default would rate-code them on this SNN-only chip)
    assert sorted((x.rule, x.population) for x in v if x.rule == "neuron_model") == [
        ("neuron_model", "if1"), ("neuron_model", "if2")]
    assert sum(x.rule == "mode" for x in v) == 8 and {x.population for x in v if x.rule == "mode"} == {"if1"}
    assert "if1 tile" in str(err.value) and "runs in MAC mode, core supports ['SNN']" in str(err.value)
    assert "neuron model IF not supported" in str(err.value)


def test_memory_rule_names_core_and_bytes():
    from mapper.tiling import tile
    from mapper.quantize import quantize
    from mapper.validate import check
    qnet, _ = quantize(models.lower(models.read_nir(trained_path("mnist_mlp"))), TIANJIC)
    t = tile(qnet, TIANJIC)
    small = TIANJIC.with_overrides({"core.memory_bytes": 66_000})  # 65,536 B weights + 512 B state needed
    v = [x for x in check(t, small) if x.rule == "memory"]
    # if1 (784 -> 400) is 2 column blocks (256 + 144 neurons) x 4 row chunks of <= 256 axons;
    # only the 4 tiles of the 256-column block need 65,536 + 256 x 2 = 66,048 B (the others 65,824 B)
    assert len(v) == 4
    assert "needs 66,048 bytes (65,536 weights + 512 state), core has 66,000" in v[0].message


def test_cli_map(tmp_path):
    out = subprocess.run([sys.executable, "-m", "snnchip.cli", "map", "mnist_mlp", "--placement", "anneal",
                          "-o", str(tmp_path / "m")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "cores used       10 of 156" in out.stdout and (tmp_path / "m" / "mapping.npz").exists()
    bad = subprocess.run([sys.executable, "-m", "snnchip.cli", "map", "mnist_cnn", "--chip", "tiny"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    # 4 chips x 2x2 cores; the message names the resource and the cores each layer needs
    assert "cores: needs 30,940 cores, system has 16" in bad.stderr and "if2 27,644" in bad.stderr
