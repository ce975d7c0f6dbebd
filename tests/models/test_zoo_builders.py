"""Tests of the random-weight zoo builders (models/zoo/builders.py).

Parameter counts are weights + biases of the linear nodes (``totals()["weights"]``),
computed by hand below; the graph summary's ``params`` also counts the three IF
parameters of every neuron. ImageNet graphs are built and lowered in a fresh
subprocess each, which reports build/lower seconds (printed, not asserted) and
the peak RSS (asserted < 1 GB).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import models
from models.errors import ParameterError
from models.zoo import BUILDERS, build, list_models, totals
from models.zoo.builders import resnet18

# ---- hand-computed weight + bias counts ---------------------------------------------
# conv k x k, Ci -> Co: Co*Ci*k*k weights + Co biases; FC in -> out: in*out + out.
#
# VGG conv stacks (3x3 convs):
#   config D (VGG-16): 3*64*9 = 1,728; 64*64*9 = 36,864; 64*128*9 = 73,728;
#     128*128*9 = 147,456; 128*256*9 = 294,912; 2 x 256*256*9 = 1,179,648;
#     256*512*9 = 1,179,648; 5 x 512*512*9 = 11,796,480  -> 14,710,464 weights
#     biases 2*64 + 2*128 + 3*256 + 6*512 = 4,224           -> 14,714,688
#   config A (VGG-11): 1,728 + 73,728 + 294,912 + 589,824 + 1,179,648
#     + 3 x 2,359,296 = 9,217,728; biases 64 + 128 + 2*256 + 4*512 = 2,752 -> 9,220,480
#   VGG-8: 3*128*9 = 3,456; 128*128*9 = 147,456; 128*256*9 = 294,912;
#     256*256*9 = 589,824; 256*512*9 = 1,179,648; 512*512*9 = 2,359,296
#     -> 4,574,592 + biases 2*(128+256+512) = 1,792      -> 4,576,384
# ImageNet classifier 25088-4096-4096-1000:
#   102,760,448 + 4,096 + 16,777,216 + 4,096 + 4,096,000 + 1,000 = 123,642,856
# CIFAR classifier 512-512-10: 262,144 + 512 + 5,120 + 10 = 267,786
VGG16_IMAGENET = 14_714_688 + 123_642_856  # = 138,357,544 (torchvision vgg16)
VGG16_CIFAR = 14_714_688 + 267_786  # = 14,982,474
VGG11_IMAGENET = 9_220_480 + 123_642_856  # = 132,863,336 (torchvision vgg11)
VGG11_CIFAR = 9_220_480 + 267_786  # = 9,488,266
# VGG-8 CIFAR: flatten 512*4*4 = 8,192 -> FC 1024: 8,388,608 + 1,024; FC 10: 10,240 + 10
VGG8_CIFAR = 4_576_384 + 8_389_632 + 10_250  # = 12,976,266
# VGG-8 ImageNet: flatten 512*7*7 = 25,088 -> 1024: 25,690,112 + 1,024; 1024 -> 1000: 1,025,000
VGG8_IMAGENET = 4_576_384 + 25_691_136 + 1_025_000  # = 31,292,520
#
# ResNet-18, conv weights (no BN):
#   stem ImageNet 7x7: 3*64*49 = 9,408   (CIFAR 3x3: 3*64*9 = 1,728)
#   layer1: 4 x 64*64*9 = 147,456
#   layer2: 64*128*9 + 3 x 128*128*9 + 1x1 downsample 64*128 = 73,728 + 442,368 + 8,192 = 524,288
#   layer3: 128*256*9 + 3 x 256*256*9 + 128*256 = 294,912 + 1,769,472 + 32,768 = 2,097,152
#   layer4: 256*512*9 + 3 x 512*512*9 + 256*512 = 1,179,648 + 7,077,888 + 131,072 = 8,388,608
#   -> ImageNet 11,166,912; + fc 512*1000 + 1000 = 11,679,912 (= torchvision's 11,689,512
#   minus its 9,600 BN parameters). NIR convs carry a bias (zero here): one per output
#   channel, 64 + 4*64 + (4*128 + 128) + (4*256 + 256) + (4*512 + 512) = 4,800.
RESNET18_IMAGENET = 11_679_912 + 4_800  # = 11,684,712
# CIFAR: 11,166,912 - 9,408 + 1,728 = 11,159,232 conv weights; fc 5,120 + 10; conv biases 4,800
RESNET18_CIFAR = 11_159_232 + 5_130 + 4_800  # = 11,169,162
# LeNet-5 CIFAR: conv1 6*3*25 + 6 = 456; conv2 16*6*25 + 16 = 2,416; fc 400*120 + 120 = 48,120;
#   120*84 + 84 = 10,164; 84*10 + 10 = 850
LENET5_CIFAR = 456 + 2_416 + 48_120 + 10_164 + 850  # = 62,006
# LeNet-5 ImageNet: flatten 16*53*53 = 44,944 -> fc1 44,944*120 + 120 = 5,393,400; fc3 84*1000 + 1000
LENET5_IMAGENET = 456 + 2_416 + 5_393_400 + 10_164 + 85_000  # = 5,491,436
# MLP: 3072*512 + 512 + 512*256 + 256 + 256*10 + 10
MLP_CIFAR = 1_573_376 + 131_328 + 2_570  # = 1,707,274
# MLP ImageNet: 150528*512 + 512 + 131,328 + 256*1000 + 1000
MLP_IMAGENET = 77_070_848 + 131_328 + 257_000  # = 77,459,176

# ---- hand-computed neurons (one IF per output element of every conv / FC) -----------
# VGG-16 ImageNet: 2*64*224^2 + 2*128*112^2 + 3*256*56^2 + 3*512*28^2 + 3*512*14^2 + 4096+4096+1000
VGG16_IMAGENET_NEURONS = 6_422_528 + 3_211_264 + 2_408_448 + 1_204_224 + 301_056 + 9_192  # 13,556,712
# ResNet-18 ImageNet: stem 64*112^2; 4 IF layers per stage: 4*64*56^2, 4*128*28^2, 4*256*14^2,
# 4*512*7^2; fc 1000
RESNET18_IMAGENET_NEURONS = 802_816 + 802_816 + 401_408 + 200_704 + 100_352 + 1_000  # 2,309,096
# ResNet-18 CIFAR: 64*32^2 + 4*64*32^2 + 4*128*16^2 + 4*256*8^2 + 4*512*4^2 + 10
RESNET18_CIFAR_NEURONS = 65_536 + 262_144 + 131_072 + 65_536 + 32_768 + 10  # 557,066

CIFAR_WEIGHTS = {"mlp": MLP_CIFAR, "lenet5": LENET5_CIFAR, "vgg8": VGG8_CIFAR, "vgg11": VGG11_CIFAR,
                 "vgg16": VGG16_CIFAR, "resnet18": RESNET18_CIFAR}
IMAGENET_WEIGHTS = {"mlp": MLP_IMAGENET, "lenet5": LENET5_IMAGENET, "vgg8": VGG8_IMAGENET,
                    "vgg11": VGG11_IMAGENET, "vgg16": VGG16_IMAGENET, "resnet18": RESNET18_IMAGENET}


def neurons_per_layer(g) -> dict:
    return {n: int(np.prod(g.shapes[n][1])) for n in g.neuron_nodes()}


# ---- CIFAR: built and lowered in process ----------------------------------------------

@pytest.fixture(scope="module")
def cifar():
    return {name: build(name, "cifar") for name in list_models()}


def test_registry():
    assert list_models() == ["mlp", "lenet5", "vgg8", "vgg11", "vgg16", "resnet18"]
    assert set(BUILDERS) == set(list_models())
    with pytest.raises(ParameterError, match="unknown zoo model 'alexnet'"):
        build("alexnet")
    with pytest.raises(ParameterError, match="shape must be one of"):
        build("lenet5", shape="mnist")


@pytest.mark.parametrize("name", ["mlp", "lenet5", "vgg8", "vgg11", "vgg16", "resnet18"])
def test_cifar_counts_and_lowering(cifar, name):
    g = cifar[name]
    assert g.input_shape == (3, 32, 32)
    assert g.output_shape == (10,)
    assert g.metadata == {"model": name, "shape": "cifar", "weights": "random (seeded)", "seed": 0}
    t = totals(g)
    assert t["weights"] == CIFAR_WEIGHTS[name]
    assert t["params"] == t["weights"] + 3 * t["neurons"]  # r, v_threshold, v_reset per IF neuron
    for node in g.nodes.values():
        for f in ("weight", "bias", "r", "v_threshold", "v_reset"):
            if hasattr(node, f):
                assert np.asarray(getattr(node, f)).dtype == np.float32
        if hasattr(node, "weight"):
            assert np.all(node.weight != 0)  # exact zeros are redrawn: every weight is a synapse
    net = models.lower(g)
    assert net.output == g.neuron_nodes()[-1]
    assert sum(p.size for p in net.populations[1:]) == t["neurons"]


def test_lenet5_cifar_layers(cifar):
    g = cifar["lenet5"]
    assert neurons_per_layer(g) == {"if1": 6 * 28 * 28, "if2": 16 * 10 * 10, "if_fc1": 120,
                                    "if_fc2": 84, "if_fc3": 10}
    # synapses (no padding, so every conv tap is valid; a 2x2 pool has 4 per output):
    # conv1 6*3*25*28^2 + pool1 6*14^2*4 + conv2 16*6*25*10^2 + pool2 16*5^2*4 + 48,000 + 10,080 + 840
    assert totals(g)["synapses"] == 352_800 + 4_704 + 240_000 + 1_600 + 48_000 + 10_080 + 840
    assert totals(cifar["mlp"])["synapses"] == 3072 * 512 + 512 * 256 + 256 * 10  # 1,706,496


def test_vgg16_cifar_layers(cifar):
    g = cifar["vgg16"]
    n = neurons_per_layer(g)
    assert [n[f"if{i}"] for i in range(1, 14)] == (
        [64 * 1024] * 2 + [128 * 256] * 2 + [256 * 64] * 3 + [512 * 16] * 3 + [512 * 4] * 3)
    assert (n["if_fc1"], n["if_fc2"]) == (512, 10)
    assert g.shapes["flatten"][1] == (512,)
    # synapses: a 3x3 pad-1 conv on n x n has n + 2 (n - 1) = 3n - 2 valid (output, tap)
    # pairs per axis, so Co*Ci*(3n-2)^2; a 2x2 pool 4 per output; an FC in*out.
    for name in g.order:
        st, (c, *hw) = g.node_stats(name), g.shapes[name][0]
        if st["type"] == "Conv2d":
            assert st["synapses"] == st["out_shape"][0] * c * (3 * hw[0] - 2) ** 2, name
        elif st["type"] == "AvgPool2d":
            assert st["synapses"] == 4 * int(np.prod(st["out_shape"])), name
    assert totals(g)["synapses"] == (
        64 * 3 * 94**2 + 64 * 64 * 94**2 + 128 * 64 * 46**2 + 128 * 128 * 46**2
        + 256 * 128 * 22**2 + 2 * 256 * 256 * 22**2 + 512 * 256 * 10**2 + 2 * 512 * 512 * 10**2
        + 3 * 512 * 512 * 4**2 + 4 * (64 * 16**2 + 128 * 8**2 + 256 * 4**2 + 512 * 2**2 + 512)
        + 512 * 512 + 512 * 10)  # = 247,701,248


def test_resnet18_cifar_structure(cifar):
    g = cifar["resnet18"]
    assert totals(g)["neurons"] == RESNET18_CIFAR_NEURONS
    # residual adds: if2 sums conv2 and the skip (identity IF -> IF, or a 1x1 stride-2 conv)
    assert g.preds["layer1.0.if2"] == ["layer1.0.conv2", "if1"]
    assert g.preds["layer1.1.if2"] == ["layer1.1.conv2", "layer1.0.if2"]
    assert g.preds["layer2.0.if2"] == ["layer2.0.conv2", "layer2.0.downsample"]
    ds = g.nodes["layer3.0.downsample"]
    assert ds.weight.shape == (256, 128, 1, 1) and tuple(ds.stride) == (2, 2)
    assert g.shapes["layer4.1.if2"][1] == (512, 4, 4)
    assert g.shapes["avgpool"][1] == (512, 1, 1)
    net = models.lower(g)
    kinds = sorted(q.kind for q in net.projections)
    # stem + 8 blocks x (conv1, conv2, skip) + fc; 5 identity skips are explicit, the fc is dense
    assert len(kinds) == 26 and kinds.count("sparse") == 5 and kinds.count("dense") == 1


def test_seed_and_he_scaling(cifar):
    a, b, c = build("lenet5", seed=1), build("lenet5", seed=1), build("lenet5", seed=2)
    assert np.array_equal(a.nodes["conv2"].weight, b.nodes["conv2"].weight)
    assert not np.array_equal(a.nodes["conv2"].weight, c.nodes["conv2"].weight)
    assert a.metadata["seed"] == 1
    w = cifar["vgg16"].nodes["conv13"].weight  # fan_in 512*9: std sqrt(2/4608) = 0.0208
    assert abs(float(w.std()) - np.sqrt(2 / 4608)) < 0.002
    assert not np.any(cifar["vgg16"].nodes["fc1"].bias)


@pytest.mark.slow
@pytest.mark.parametrize("name, steps, batch, active", [
    ("lenet5", 6, 2, ("if1", "if2", "if_fc1")),
    ("resnet18", 3, 1, ("if1", "layer1.0.if2", "layer2.0.if2")),  # residual adds, downsample skips
])
def test_graph_and_net_spike_identical(cifar, name, steps, batch, active):
    g = cifar[name]
    rng = np.random.default_rng(5)
    x = (rng.random((steps, batch) + g.input_shape) < 0.3).astype(np.float64)  # Poisson, rate 0.3 / step
    rg = models.simulate(g, x, record="all")
    rn = models.simulate(models.lower(g), x, record="all")
    assert set(rg.spikes) == set(rn.spikes) == set(g.neuron_nodes())
    for k in rg.spikes:
        assert np.array_equal(rg.spikes[k], rn.spikes[k]), k
    assert np.array_equal(rg.output, rn.output)
    assert all(rg.spikes[k].sum() > 0 for k in active)  # the compared layers are not silent


def test_resnet18_bad_stem_pool():
    with pytest.raises(ParameterError, match="stem_pool"):
        resnet18("imagenet", stem_pool="max")


# ---- ImageNet: one fresh subprocess per model ------------------------------------------

_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
import models
from models.zoo import build, totals
name = sys.argv[1]
t0 = time.perf_counter()
g = build(name, "imagenet")
t1 = time.perf_counter()
net = models.lower(g)
t2 = time.perf_counter()
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
try:  # the peak of this process's own memory (ru_maxrss also carries the parent's peak over exec)
    with open("/proc/self/status") as f:
        hwm = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")][0]
except OSError:
    hwm = maxrss
layers = {n: int(np.prod(g.shapes[n][1])) for n in g.neuron_nodes()}
print(json.dumps(dict(build_s=t1 - t0, lower_s=t2 - t1, rss=hwm, maxrss=maxrss, totals=totals(g), layers=layers,
                      output_shape=list(g.output_shape), input_shape=list(g.input_shape),
                      pops=sum(p.size for p in net.populations[1:]),
                      kinds=[q.kind for q in net.projections])))
"""

@pytest.fixture(scope="module")
def imagenet_runs():
    return {}


def _run(cache, name):
    if name not in cache:
        out = subprocess.run([sys.executable, "-c", _SCRIPT, name], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        cache[name] = json.loads(out.stdout.strip().splitlines()[-1])
        r = cache[name]
        print(f"\n{name} imagenet: build {r['build_s']:.2f} s, lower {r['lower_s']:.2f} s, "
              f"peak RSS {r['rss'] / 2**20:.0f} MiB (VmHWM; ru_maxrss {r['maxrss'] / 2**20:.0f} MiB)")
    return cache[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lenet5", "vgg8", "vgg11", "vgg16", "resnet18"])
def test_imagenet_build_and_lower(imagenet_runs, name):
    r = _run(imagenet_runs, name)
    assert r["input_shape"] == [3, 224, 224] and r["output_shape"] == [1000]
    assert r["totals"]["weights"] == IMAGENET_WEIGHTS[name]
    assert r["pops"] == r["totals"]["neurons"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lenet5", "vgg8", "vgg11", "vgg16", "resnet18"])
def test_imagenet_peak_rss_under_1gb(imagenet_runs, name):
    r = _run(imagenet_runs, name)
    assert r["rss"] < 1e9, f"peak RSS {r['rss'] / 1e6:.0f} MB (build + lower)"


def test_imagenet_vgg16_layers(imagenet_runs):
    r = _run(imagenet_runs, "vgg16")
    assert r["totals"]["neurons"] == VGG16_IMAGENET_NEURONS
    assert [r["layers"][k] for k in ("if1", "if13", "if_fc1", "if_fc2", "if_fc3")] == [
        64 * 224 * 224, 512 * 14 * 14, 4096, 4096, 1000]
    # 13 convs stay structured; fc1 is dense behind the 2x2 pool (pre_map), fc2/fc3 dense
    assert r["kinds"] == ["conv"] * 13 + ["dense"] * 3


def test_imagenet_resnet18_layers(imagenet_runs):
    r = _run(imagenet_runs, "resnet18")
    assert r["totals"]["neurons"] == RESNET18_IMAGENET_NEURONS
    assert r["layers"]["if1"] == 64 * 112 * 112 and r["layers"]["layer1.0.if2"] == 64 * 56 * 56
    assert r["layers"]["layer4.1.if2"] == 512 * 7 * 7
    # no conv is expanded: stem, 16 block convs, 3 downsamples and the pool1 -> layer1.0.if2
    # skip stay structured; only the 4 IF -> IF identity skips are explicit (CSR identities)
    assert r["kinds"].count("sparse") == 4 and r["kinds"].count("conv") == 21


def test_resnet18_imagenet_3x3_stem_pool_is_refused_clearly():
    """The 3x3 s2 p1 stem pool cannot be composed exactly with the next 3x3 conv
    (the composed kernel would read input row 111 where the real layer sees
    padding), and its explicit CSR would need 113M synapses: lowering refuses it
    with a ShapeError naming the node, instead of exhausting memory."""
    g = resnet18("imagenet", stem_pool="3x3")
    assert g.shapes["pool1"][1] == (64, 56, 56)
    with pytest.raises(models.ShapeError, match=r"node '.*'.*max_nnz"):
        models.lower(g)
