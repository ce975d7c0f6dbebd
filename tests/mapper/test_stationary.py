"""Weight-stationary mapping (core.conv_mapping: weight_stationary): the pruning paper's crossbar counts.

Every expected count is ceil(rows / 256) x ceil(columns / 256) per layer, rows = C_in k k
(conv) or in_features (fc), columns = C_out, derived by hand in the comments.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import models
from hwsim.chip import load_chip
from mapper.mapping import Mapping, map_model
from mapper.stationary import StationaryError, StationaryMapping, check_runnable, pool_factor
from models.zoo.catalog import load

XB = load_chip("crossbar")


def _xbars(m):
    return [lay.crossbars for lay in m.layers if lay.kind != "digital"]


def test_vgg8_cifar_is_206_crossbars():
    m = map_model(load("vgg8:cifar"), XB, model="vgg8:cifar")
    assert isinstance(m, StationaryMapping)
    # conv rows 3*9=27, 128*9=1152, 1152, 256*9=2304, 2304, 512*9=4608 -> 1, 5, 5, 9, 9, 18 chunks;
    # columns 128, 128, 256, 256, 512, 512 -> 1, 1, 1, 1, 2, 2 blocks: 1 + 5 + 5 + 9 + 18 + 36 = 74
    # fc 8192 x 1024 -> 32 x 4 = 128; fc 1024 x 10 -> 4 x 1 = 4: 206 in all
    assert [(lay.rows, lay.columns) for lay in m.layers] == [
        (27, 128), (1152, 128), (1152, 256), (2304, 256), (2304, 512), (4608, 512), (8192, 1024), (1024, 10)]
    assert _xbars(m) == [1, 5, 5, 9, 18, 36, 128, 4]
    r = m.resources()
    assert (r["crossbars"], r["crossbars_conv"], r["crossbars_dense"]) == (206, 74, 132)
    # the pools in front of conv3 and conv5 are factored back out of the composed 6x6 stride-2 kernels
    assert [lay.pool for lay in m.layers[:6]] == [(1, 1), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]
    # cores of 8 crossbars, one layer per core: 1 + 1 + 1 + 2 + 3 + 5 + 16 + 1
    assert r["cores_used"] == 30
    # cycles: positions 32x32, 32x32, 16x16, 16x16, 8x8, 8x8, 1, 1, one crossbar read each (pe_width 256)
    assert r["cycles_per_step"] == 1024 + 1024 + 256 + 256 + 64 + 64 + 1 + 1 == 2690
    assert "206 of 256 x 256" in m.report()
    # reads: 1024 x (1 + 5) + 256 x (5 + 9) + 64 x (18 + 36) + 128 + 4
    assert r["crossbar_reads_per_step"] == 1024 * 6 + 256 * 14 + 64 * 54 + 132 == 13_316
    assert r["cell_macs_per_step"] == (1024 * (27 * 128 + 1152 * 128) + 256 * (1152 * 256 + 2304 * 256)
                                       + 64 * (2304 * 512 + 4608 * 512) + 8192 * 1024 + 1024 * 10)


@pytest.mark.slow
def test_vgg16_imagenet_counts():
    m = map_model(load("vgg16:imagenet"), XB)
    # conv rows 27, 576, 576, 1152, 1152, 2304 x3, 4608 x5 -> chunks 1, 3, 3, 5, 5, 9, 9, 9, 18 x5;
    # columns 64, 64, 128, 128, 256, 256, 256, 512 x6 -> blocks 1 x7, 2 x6:
    # 1 + 3 + 3 + 5 + 5 + 9 + 9 + 18 + 36 x5 = 233
    # fc 25088 x 4096 -> 98 x 16 = 1568; 4096 x 4096 -> 16 x 16 = 256; 4096 x 1000 -> 16 x 4 = 64
    assert _xbars(m) == [1, 3, 3, 5, 5, 9, 9, 18, 36, 36, 36, 36, 36, 1568, 256, 64]
    assert m.resources()["crossbars"] == 233 + 1888 == 2121


def test_resnet18_imagenet_counts():
    m = map_model(load("resnet18:imagenet"), XB)
    # stem 3*49=147 x 64 -> 1; layer1: four 576 x 64 -> 3 each = 12
    # layer2: 576x128 -> 3, 1152x128 -> 5, downsample 64x128 -> 1, 1152x128 -> 5, 5 = 19
    # layer3: 1152x256 -> 5, 2304x256 -> 9, 128x256 -> 1, 9, 9 = 33
    # layer4: 2304x512 -> 9x2 = 18, 4608x512 -> 18x2 = 36, 256x512 -> 1x2 = 2, 36, 36 = 128
    # fc 512 x 1000 -> 2 x 4 = 8; identity skips and the stem pool are digital: 201 in all
    r = m.resources()
    assert r["crossbars"] == 1 + 12 + 19 + 33 + 128 + 8 == 201
    assert r["digital_layers"] == 5  # the pooled skip into layer1.0 and the four identity skips
    assert sorted(_xbars(m)) == sorted([1] + [3] * 4 + [3, 5, 1, 5, 5] + [5, 9, 1, 9, 9] + [18, 36, 2, 36, 36] + [8])


def test_pool_factor_is_exact_only():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3))
    composed = np.repeat(np.repeat(w, 2, axis=2), 2, axis=3) / 4  # 2x2 avg pool, then a 3x3 conv
    assert pool_factor(composed, (6, 6), (2, 2), (2, 2)) == (2, 2)
    assert pool_factor(w, (3, 3), (1, 1), (1, 1)) == (1, 1)
    assert pool_factor(rng.normal(size=(4, 3, 6, 6)), (6, 6), (2, 2), (2, 2)) == (1, 1)  # a true 6x6 kernel
    assert pool_factor(composed, (6, 6), (2, 2), (1, 1)) == (1, 1)  # padding not a multiple of 2


def test_weight_stationary_mappings_run_but_do_not_compile(tmp_path):
    m = map_model(load("mnist_mlp"), XB, model="mnist_mlp")
    assert m.net.quantized  # the integer net the simulator and the integer reference run
    with pytest.raises(StationaryError, match="core.conv_mapping=weight_stationary; hwsim.compile builds "
                                              "unrolled programs only"):
        check_runnable(m)
    check_runnable(map_model(load("mnist_mlp"), load_chip("tianjic")))  # an unrolled one is fine
    from hwsim import compile as hw_compile
    from hwsim.engine import simulate

    with pytest.raises(StationaryError, match="conv_mapping=weight_stationary"):  # compile reads .tiling
        hw_compile(m)
    r = simulate(m, np.zeros((2, 1, 1, 28, 28), dtype=np.float32))  # hwsim.stationary runs it
    assert r.meta["conv_mapping"] == "weight_stationary" and r.timing["step_cycles"].tolist() == [[2, 2]]
    m.save(tmp_path / "ws")
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["mapping.json", "stationary.npz"]
    assert isinstance(Mapping.load(tmp_path / "ws"), StationaryMapping)
    (tmp_path / "ws" / "stationary.npz").unlink()
    out = subprocess.run([sys.executable, "-m", "snnchip.cli", "run", str(tmp_path / "ws")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "stationary.npz: no such file" in out.stderr


def test_cli_map_vgg8_prints_206():
    out = subprocess.run([sys.executable, "-m", "snnchip.cli", "map", "vgg8:cifar", "--chip", "crossbar"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "crossbars        206 of 256 x 256 (conv 74, fc 132)" in out.stdout


def test_conv_mapping_override_on_tianjic():
    chip = load_chip("tianjic").with_overrides({"core.conv_mapping": "weight_stationary"})
    m = map_model(models.lower(load("mnist_cnn")), chip)
    # conv1 1*25 x 12 -> 1; conv2 (2x2 pool factored out of the 10x10 kernel) 12*25=300 x 32 -> 2; fc 512 x 10 -> 2
    assert _xbars(m) == [1, 2, 2] and m.chip.name == "tianjic+core.conv_mapping=weight_stationary"
