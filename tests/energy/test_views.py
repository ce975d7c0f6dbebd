"""The three energy views (issue 19): the dense-ANN baseline on the graph as written
(mnist_cnn 792,320 MACs per step, the NIR paper CNN 903,680), the paper view against a hand
computation of the papers' formula, and the hardware view's new terms (calibration, SRAM by
macro size, adds at the membrane width, idle static power, no partial sums on Loihi)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

import energy
from energy.estimate import hw_unit_energies
from hwsim.chip import load_chip
from hwsim.engine import simulate
from mapper.mapping import map_model
from models import read_nir
from models.datasets import mnist_sequences
from models.zoo.catalog import trained_path
from snnchip.cli import main

NIR_CNN = Path("/work/shared/data/nir_paper/cnn_sinabs.nir")
T = 8


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    path = trained_path("mnist_cnn")
    if not path.exists():
        pytest.skip(f"{path} not shipped")
    root = tmp_path_factory.mktemp("views")
    m = map_model(read_nir(path), load_chip("tianjic"), model="mnist_cnn")
    m.save(root / "map")
    seq = mnist_sequences("direct", T, start=8000, stop=8002)
    r = simulate(m, seq.inputs, reset="subtract", spikes="binary", record="all", timing=True, timing_samples=2)
    r.save(root / "map" / "run")
    return root, m, r


def test_report_dense_baseline_on_the_graph_as_written_mnist_cnn(cnn_run):
    root, m, r = cnn_run
    out = root / "report"
    assert main(["report", str(root / "map" / "run"), "-o", str(out)]) == 0
    doc = json.loads((out / "energy.json").read_text())
    # conv1 5x5x24x24x1x12 + conv2 5x5x8x8x12x32 + fc 512x10 (the lowered net has 2,635,520)
    assert doc["dense_ann"]["macs_per_step"] == 172_800 + 614_400 + 5_120 == 792_320
    assert doc["dense_ann"]["macs_per_inference"] == 792_320 * T
    assert {e["view"] for e in doc["estimates"]} == {"paper", "chip-ops", "hardware"}
    fp = {e["view"]: e for e in doc["estimates"] if e["table"] == "horowitz45-fp32"}
    assert fp["chip-ops"]["ann_baseline_pj"] == pytest.approx(4.6 * 792_320, rel=1e-12)
    assert doc["neurobench"]["Dense"] == 792_320 * T  # no padding in mnist_cnn: Dense = FLOPs
    md = (out / "energy.md").read_text()
    assert "792,320 per step" in md and "| horowitz45-fp32 |" in md
    frag = (out / "energy_tables.tex").read_text()
    assert r"\documentclass" not in frag and r"\toprule" in frag
    assert "conv2" in frag and "if2" not in frag  # layers named as the user wrote them
    assert r"\input" in frag or "energy tables" in frag
    assert r"\documentclass" in (out / "energy.tex").read_text()


def test_paper_view_equals_the_formula_by_hand(cnn_run):
    _, m, r = cnn_run
    e = energy.estimate(r, "horowitz45-fp32", "paper", mapping=m)
    sp = {k: np.asarray(v) for k, v in r.spikes.items()}
    rate = {k: np.count_nonzero(v) / v.size for k, v in sp.items()}
    # E = E_MAC x FLOPs(conv1), once + E_AC x (r_if1 T FLOPs(conv2) + r_if2 T FLOPs(fc1))
    hand = 4.6 * 172_800 + 0.9 * T * (rate["if1"] * 614_400 + rate["if2"] * 5_120)
    assert e.total_pj == pytest.approx(hand, rel=1e-12)
    assert set(e.per_layer) == {"conv1", "conv2", "fc1"}
    assert e.per_layer["conv1"]["mac"] == pytest.approx(4.6 * 172_800)
    assert e.ann_baseline_pj == pytest.approx(4.6 * 792_320)
    # from the counters alone (no recordings) the same rates: no core is shared here
    rc = energy.run_counters(r, m)
    if rc.exact_layers:
        e2 = energy.estimate_counters(rc, "horowitz45-fp32", "paper")
        assert e2.total_pj == pytest.approx(hand, rel=1e-9)


def test_nir_cnn_dense_baseline_903680(tmp_path):
    if not NIR_CNN.exists():
        pytest.skip(f"{NIR_CNN} not present")
    g = read_nir(NIR_CNN)
    m = map_model(g, load_chip("tianjic"), model="cnn_sinabs")
    rng = np.random.default_rng(0)
    x = (rng.random((4, 1, 2, 34, 34)) < 0.05).astype(np.float32)
    r = simulate(m, x, reset="subtract", spikes="binary", record="all")
    files = energy.report(r, m, tmp_path, inputs=x)
    doc = json.loads(files["json"].read_text())
    assert doc["dense_ann"]["macs_per_step"] == 204_800 + 589_824 + 73_728 + 32_768 + 2_560 == 903_680
    nb = doc["neurobench"]
    # NeuroBench's Dense skips taps on zero padding: 199,712 + 541,696 + 61,952 + 32,768 + 2,560 per step
    assert nb["Dense"] == 4 * 838_688
    # binary spikes and 0/1 inputs: the two synaptic-op conventions agree on the layers without pooling;
    # behind a sum pooling a layer's input is a count (up to 4): per unit of value counts it k times
    pl = nb["per_layer"]
    for name in ("0", "2", "11"):
        assert pl[name]["per_value"] == pl[name]["acs"] + pl[name]["macs"]
    assert nb["SynOps_per_value"] > nb["SynOps_per_event"] == nb["Effective_ACs"] + nb["Effective_MACs"]
    # NeuroBench's rule: a step whose pooled input exceeds 1 is a MAC step (not an AC) for that layer
    assert pl["5"]["macs"] > 0 and pl["0"]["macs"] == 0
    tex = files["latex_tables"].read_text()
    assert "uJ" in tex or "nJ" in tex


def test_tianjic28_reproduces_its_published_efficiency_at_its_operating_point(cnn_run):
    _, m, r = cnn_run
    rc = energy.run_counters(r, m)
    # the published operating point: 156 cores busy for 1 s at 650 GSOPS/W x 0.4 W = 260e9 SOP/s,
    # with spike traffic on the NoC (inside the calibrated per-op energy: not charged again)
    zero = {k: 0.0 for k in rc.counter_names}
    core = {**zero, "acs": 260e9 / 156, "flits": 1e9, "flit_hops": 3e9, "neuron_updates": 1e8, "state_words": 1e8}
    op = dataclasses.replace(rc, per_core=[core] * 156, core_used=np.ones(156), runtime_s=1.0, chip_cores=156,
                             per_layer={}, layer_cores={})
    e = energy.estimate_counters(op, "tianjic28", "hardware")
    assert e.total_pj == pytest.approx(0.4e12, rel=1e-12)  # 0.4 W for 1 s
    assert 260e9 / (e.total_pj / 1e12) == pytest.approx(650e9, rel=1e-12)
    assert e.totals["noc_hops"] == 0.0 and e.totals["memory_weights"] == 0.0


def test_hardware_terms_by_hand(cnn_run):
    _, m, r = cnn_run
    fp = energy.load_table("horowitz45-fp32")
    # 72 KiB core memory between Horowitz's 32 KB (20 pJ) and 1 MB (100 pJ): log-log
    r64 = 20 * (72 / 32) ** (math.log(5) / math.log(32))
    assert fp.e_sram_read_64b_pj_by_kib.at(72) == (pytest.approx(r64, rel=1e-12), "interpolated")
    assert fp.e_sram_read_64b_pj_by_kib.at(8) == (10.0, "exact")
    u, how = hw_unit_energies(energy.load_table("horowitz45-int8"), 8, 16, 72)
    assert (u["ac"], u["mac"]) == (0.05, pytest.approx(0.25))  # 16-bit add; 8-bit mult + 16-bit add
    assert u["read_bit"] == pytest.approx(r64 / 64)
    rc = energy.run_counters(r, m)
    h = energy.estimate_counters(rc, fp, "hardware")
    used = int(rc.core_used.sum())
    p = fp.v("static_power_per_core_w")
    assert h.totals["static"] == pytest.approx(p * rc.runtime_s * 1e12 * used, rel=1e-9)
    assert h.totals["static_idle"] == pytest.approx(p * rc.runtime_s * 1e12 * (156 - used), rel=1e-9)
    assert rc.runtime_how.startswith("timed")
    lo = energy.estimate_counters(rc, "loihi", "hardware")
    assert lo.totals["compute_psum"] == 0.0 and not energy.load_table("loihi").partial_sums
