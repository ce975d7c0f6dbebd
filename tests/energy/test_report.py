"""energy.report and `snnchip report`: map mnist_mlp, simulate 20 samples, save, report."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest

import energy
from hwsim.chip import load_chip
from hwsim.engine import simulate
from mapper.mapping import map_model
from models import read_nir
from models.datasets import mnist_sequences
from models.zoo.catalog import trained_path
from snnchip.cli import main


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    path = trained_path("mnist_mlp")
    if not path.exists():
        pytest.skip(f"{path} not shipped")
    root = tmp_path_factory.mktemp("rep")
    m = map_model(read_nir(path), load_chip("tianjic"), model="mnist_mlp")
    m.save(root / "map")
    seq = mnist_sequences("direct", 32, start=8000, stop=8020)
    r = simulate(m, seq.inputs, reset="subtract", spikes="binary", record=["if2"])
    r.save(root / "map" / "run")
    return root, m, r


def _png_ok(p):
    assert p.stat().st_size > 5000
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_command_end_to_end(run_folder, capsys):
    root, m, r = run_folder
    out = root / "report"
    assert main(["report", str(root / "map" / "run"), "-o", str(out), "--raster", "if2"]) == 0
    doc = json.loads((out / "energy.json").read_text())
    assert doc["unit"] == "pJ per inference" and doc["samples"] == 20
    views = {(e["table"], e["view"]) for e in doc["estimates"]}
    from energy.reporting import DEFAULT_TABLES

    assert views == {(t, v) for t in DEFAULT_TABLES for v in ("paper", "chip-ops", "hardware")}
    # the JSON numbers equal a direct estimate
    fp = next(e for e in doc["estimates"] if e["table"] == "horowitz45-fp32" and e["view"] == "chip-ops")
    direct = energy.estimate(r, "horowitz45-fp32", "chip-ops", mapping=m)
    assert fp["total_pj"] == pytest.approx(direct.total_pj)
    t = r.totals()
    assert direct.total_pj == pytest.approx((4.6 * t["macs"] + 0.9 * t["acs"]) / 20)
    rows = list(csv.DictReader((out / "energy_per_layer.csv").open()))
    assert {"table", "view", "layer", "component", "energy_pj_per_inference"} <= set(rows[0])
    s = sum(float(x["energy_pj_per_inference"]) for x in rows
            if x["table"] == "horowitz45-fp32" and x["view"] == "chip-ops")
    assert s == pytest.approx(direct.total_pj)
    from energy.estimate import HW_COMPONENTS, PAPER_COMPONENTS

    n_rows = len(list(csv.DictReader((out / "energy_per_core.csv").open())))
    assert n_rows == 4 * len(m.tiling.cores) * (len(PAPER_COMPONENTS) + len(HW_COMPONENTS))
    md = (out / "energy.md").read_text()
    assert "| horowitz45-fp32 | paper |" in md and "per inference" in md
    tex = (out / "energy.tex").read_text()
    assert r"\toprule" in tex and r"\end{document}" in tex and "paper view, table horowitz45" in tex
    for name in ("energy_breakdown", "core_utilisation", "noc_link_load", "spike_raster", "firing_rates"):
        _png_ok(out / f"{name}.png")
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdflatex"):
        res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "energy.tex"], cwd=out,
                             capture_output=True, timeout=120)
        assert res.returncode == 0 and (out / "energy.pdf").exists()


def test_report_finds_mapping_and_fails_cleanly(run_folder, tmp_path, capsys):
    root, m, r = run_folder
    lonely = tmp_path / "lonely"
    r2 = type(r)(output=r.output, counters=r.counters, counter_names=r.counter_names,
                 core_population=r.core_population, timing=r.timing, meta={k: v for k, v in r.meta.items()
                                                                            if k != "mapping"})
    r2.save(lonely)
    assert main(["report", str(lonely), "-o", str(tmp_path / "o")]) == 2
    assert "cannot find the run's mapping" in capsys.readouterr().err
    assert main(["report", str(lonely), "--mapping", str(root / "map"), "-o", str(tmp_path / "o"),
                 "--table", "nosuch"]) == 2
    assert "unknown technology table 'nosuch'" in capsys.readouterr().err
    files = energy.report(r2, m, tmp_path / "o2", tables=["loihi"])
    assert "spike_raster" in files["skipped"]            # nothing recorded: said, not drawn
    assert "spike_raster" in (tmp_path / "o2" / "energy.md").read_text()
