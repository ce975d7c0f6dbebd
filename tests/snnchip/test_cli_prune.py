"""`snnchip prune` / `prune-sweep`: pruned .nir, before/after figures measured on the chip."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from tests.conftest import DATA, need
from tests.snnchip.test_cli_run import cli


def test_prune_mlp_writes_a_pruned_model_with_chip_figures(tmp_path):
    need(DATA / "mnist")
    out = tmp_path / "mlp_pruned.nir"
    p = cli("prune", "mnist_mlp", "--target", "0.3", "--grain", "column", "--reorder", "--samples", 60,
            "-o", out, timeout=300)
    assert p.returncode == 0, p.stderr
    # mnist_mlp: fc1 784->400 = 2 blocks x 4 chunks, fc2 400->10 = 1 x 2: 10 crossbars;
    # 0.3 -> remove 3: fc1 gives 2 (of 6 removable), fc2 1 (of 1)
    assert re.search(r"crossbars\s+10\s+7\s+\(30.0 % fewer; the pruning implies 7\)", p.stdout), p.stdout
    acc = re.search(r"accuracy \(chip\)\s+([\d.]+)%\s+([\d.]+)%\s+\((\d+)/60 -> (\d+)/60\)", p.stdout)
    assert acc, p.stdout
    assert float(acc.group(1)) == pytest.approx(100 * int(acc.group(3)) / 60, abs=0.006)
    assert re.search(r"energy, paper view\s+[\d.]+uJ\s+[\d.]+uJ", p.stdout)
    from hwsim.chip import load_chip
    from mapper.mapping import map_model
    from models import read_nir

    g = read_nir(out)
    meta = json.loads(g.metadata["pruning"])
    assert (meta["grain"], meta["target"], meta["crossbars_before"], meta["crossbars_implied"]) == ("column", 0.3, 10, 7)
    assert map_model(g, load_chip("tianjic")).tiling.n_crossbars == 7
    w = np.asarray(g.nodes["fc2"].weight)
    assert (np.abs(w).sum(axis=0) == 0).sum() >= 144  # fc2 keeps one chunk of 256 inputs of 400


@pytest.mark.parametrize("args, msg", [
    (["--target", "1.2"], "target must be a fraction in (0, 1)"),
    (["--target", "0.5", "--grain", "row"], "unknown grain 'row'"),
    (["--target", "0.99"], "can give at most"),
    (["--target", "0.5", "--finetune", "0"], "--finetune must be >= 1"),
])
def test_prune_bad_input_is_one_line(args, msg, tmp_path):
    need(DATA / "mnist")
    p = cli("prune", "mnist_mlp", *args, "--samples", 5, "-o", tmp_path / "x.nir")
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and msg in p.stderr, p.stderr
    assert not (tmp_path / "x.nir").exists()


def test_prune_finetune_refuses_imported_graphs(nir_cnn_path):
    p = cli("prune", nir_cnn_path, "--target", "0.3", "--finetune", "2", "--samples", 5)
    assert p.returncode == 2 and "no trainer" in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_prune_sweep_writes_csv_and_figure(tmp_path):
    need(DATA / "mnist")
    p = cli("prune-sweep", "mnist_mlp", "--targets", "0.2,0.3", "--grains", "crossbar,column", "--reorder", "no",
            "--samples", 40, "-o", tmp_path / "sw", timeout=300)
    assert p.returncode == 0, p.stderr
    with open(tmp_path / "sw" / "sweep.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["grain"], r["target"], r["crossbars"]) for r in rows] == [
        ("none", "0", "10"), ("crossbar", "0.2", "8"), ("crossbar", "0.3", "7"),
        ("column", "0.2", "8"), ("column", "0.3", "7")]
    assert all(r["crossbars"] == r["crossbars_implied"] for r in rows)
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 1000
