"""Seeded random-weight builders of the standard networks used in co-design studies.

Each builder returns a :class:`models.Graph` of NIR primitives for ``shape="cifar"``
(input 3x32x32, 10 classes) or ``shape="imagenet"`` (input 3x224x224, 1000
classes). The weights are random, so the graphs are for mapping, timing, energy
and scaling studies, not for accuracy.

Common conventions
------------------
* Every conv / fully connected layer is followed by a layer of IF neurons
  (``r = 1``, ``v_threshold = 1``, ``v_reset = 0``, float32 arrays of the layer
  shape); the last one (``if_fc*``) is the output layer, read as spike counts.
* Weights are float32, He-normal: ``w ~ N(0, 2 / fan_in)`` with
  ``fan_in = C_in k_h k_w`` (conv) or ``in_features`` (FC), drawn in layer order
  from ``np.random.default_rng(seed)`` (exact zeros redrawn, so every weight is a
  synapse); biases are zero (float32).
* Max pooling does not exist in NIR: every pooling is ``nir.AvgPool2d``
  (count_include_pad), which lowering composes into the next convolution.
* No batch norm (it would fold into the weights of a trained network anyway).
* Node names: ``conv1``/``if1``/``pool1`` ..., ``fc1``/``if_fc1`` ...;
  ResNet blocks ``layer{stage}.{block}.conv1|if1|conv2|if2|downsample``.
* ``graph.metadata = {"model", "shape", "weights": "random (seeded)", "seed"}``.

Architectures (``M`` = 2x2 average pooling, stride 2)
-----------------------------------------------------
``mlp``       flatten -> FC 512 -> FC 256 -> FC classes (``hidden`` configurable).
``lenet5``    conv5x5(6) -> M -> conv5x5(16) -> M -> FC 120 -> FC 84 -> FC classes,
              no padding (LeCun 1998 on a 32x32 input; CIFAR flatten = 16x5x5 = 400).
              On ImageNet the same layers see 3x224x224 (flatten 16x53x53 = 44,944):
              unusual, only a large-input stress case.
``vgg8``      6 conv + 2 FC, as in the crossbar pruning literature (Liang/Deng 2018
              on CIFAR-10): conv3x3 128,128,M,256,256,M,512,512,M, FC 1024,
              FC classes. CIFAR flatten 512x4x4 = 8192. ImageNet: the third pooling
              leaves 512x28x28 (401,408 features, a 411M-weight FC), so an extra
              4x4 stride-4 average pooling (torchvision's adaptive pooling to 7x7)
              gives the VGG-standard 7x7x512 = 25,088 flatten.
``vgg11``     config A: 64,M,128,M,256,256,M,512,512,M,512,512,M (8 conv).
``vgg16``     config D: 64,64,M,128,128,M,256,256,256,M,512,512,512,M,512,512,512,M
              (13 conv). VGG convs are 3x3, padding 1. Classifier: ImageNet
              25088-4096-4096-1000 (Simonyan & Zisserman 2015); CIFAR 512-512-10
              (flatten 512x1x1, one hidden FC 512, as in the common CIFAR ports).
``resnet18``  BasicBlocks [2, 2, 2, 2] of 64, 128, 256, 512 channels (He 2016),
              conv3x3 pad 1, the first block of stages 2-4 strided 2 with a 1x1
              stride-2 conv skip (``downsample``), identity skips otherwise. The
              residual add is the IF layer ``if2`` summing ``conv2`` and the skip.
              ImageNet stem: conv7x7(64) stride 2 pad 3 -> IF -> 2x2 stride-2
              average pooling (output 56x56, the same as the usual 3x3 stride-2 pad-1
              max pooling); head: 7x7 global average pooling -> flatten -> FC 1000.
              ``stem_pool="3x3"`` selects the 3x3 stride-2 pad-1 window instead.
              CIFAR stem: conv3x3(64) stride 1 -> IF, no pooling; head: 4x4 global
              average pooling -> FC 10.
"""

from __future__ import annotations

import nir
import numpy as np

from ..errors import ParameterError
from ..graph import Graph

#: Input shape and number of classes of each dataset shape.
SHAPES = {"cifar": ((3, 32, 32), 10), "imagenet": ((3, 224, 224), 1000)}

VGG_CONFIGS = {
    "vgg8": [128, 128, "M", 256, 256, "M", 512, 512, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def _dataset(shape: str):
    if shape not in SHAPES:
        raise ParameterError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    return SHAPES[shape]


class _Builder:
    """Appends named NIR nodes and edges while tracking each node's output shape."""

    def __init__(self, model: str, shape: str, seed: int):
        self.in_shape, self.classes = _dataset(shape)
        self.rng = np.random.default_rng(seed)
        self.meta = {"model": model, "shape": shape, "weights": "random (seeded)", "seed": seed}
        self.nodes = {"input": nir.Input(input_type={"input": np.array(self.in_shape)})}
        self.edges: list[tuple[str, str]] = []
        self.shape = {"input": tuple(self.in_shape)}

    def _add(self, name: str, node, srcs, out_shape) -> str:
        if name in self.nodes:
            raise ParameterError(f"duplicate node name {name!r}")
        self.nodes[name] = node
        for s in [srcs] if isinstance(srcs, str) else srcs:
            self.edges.append((s, name))
        self.shape[name] = tuple(int(v) for v in out_shape)
        return name

    def _he(self, shape, fan_in: int) -> np.ndarray:
        w = self.rng.standard_normal(shape, dtype=np.float32)
        # float32 draws hit exactly 0 about once per 10M; redraw them so that every
        # weight is a synapse and the synapse counts are the dense ones.
        zero = np.flatnonzero(w == 0)
        while zero.size:
            w.flat[zero] = self.rng.standard_normal(zero.size, dtype=np.float32)
            zero = zero[w.flat[zero] == 0]
        w *= np.float32(np.sqrt(2.0 / fan_in))
        return w

    def conv(self, name, src, cout, k, stride=1, pad=0) -> str:
        cin, h, w = self.shape[src]
        weight = self._he((cout, cin, k, k), cin * k * k)
        node = nir.Conv2d(input_shape=(h, w), weight=weight, stride=(stride, stride), padding=(pad, pad),
                          dilation=(1, 1), groups=1, bias=np.zeros(cout, dtype=np.float32))
        oh, ow = ((n + 2 * pad - k) // stride + 1 for n in (h, w))
        return self._add(name, node, src, (cout, oh, ow))

    def pool(self, name, src, k, stride=None, pad=0) -> str:
        stride = k if stride is None else stride
        c, h, w = self.shape[src]
        node = nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([stride, stride]),
                             padding=np.array([pad, pad]))
        oh, ow = ((n + 2 * pad - k) // stride + 1 for n in (h, w))
        return self._add(name, node, src, (c, oh, ow))

    def flatten(self, name, src) -> str:
        s = self.shape[src]
        node = nir.Flatten(input_type={"input": np.array(s)}, start_dim=0, end_dim=-1)
        return self._add(name, node, src, (int(np.prod(s)),))

    def fc(self, name, src, out) -> str:
        (n_in,) = self.shape[src]
        node = nir.Affine(weight=self._he((out, n_in), n_in), bias=np.zeros(out, dtype=np.float32))
        return self._add(name, node, src, (out,))

    def if_(self, name, srcs) -> str:
        first = srcs if isinstance(srcs, str) else srcs[0]
        s = self.shape[first]
        # uniform parameters as zero-copy broadcast views: ImageNet layers hold
        # millions of neurons, and full arrays would cost ~160 MB for VGG-16
        one, zero = np.float32(1.0), np.float32(0.0)
        node = nir.IF(r=np.broadcast_to(one, s), v_threshold=np.broadcast_to(one, s),
                      v_reset=np.broadcast_to(zero, s))
        return self._add(name, node, srcs, s)

    def classifier(self, src, widths, first: int = 1) -> str:
        """flatten -> (FC -> IF) per width; the last width is the number of classes."""
        x = self.flatten("flatten", src)
        for j, n in enumerate(widths, start=first):
            x = self.if_(f"if_fc{j}", self.fc(f"fc{j}", x, n))
        return x

    def graph(self, last: str) -> Graph:
        self._add("output", nir.Output(output_type={"output": np.array(self.shape[last])}), last, self.shape[last])
        return Graph(self.nodes, self.edges, dt=1.0, metadata=self.meta)


def mlp(shape: str = "cifar", seed: int = 0, hidden=(512, 256)) -> Graph:
    """Multi-layer perceptron: flatten -> FC ``hidden[0]`` -> ... -> FC classes, IF after each.

    CIFAR: 3072-512-256-10 (1.7M weights); ImageNet: 150528-512-256-1000 (77M weights).
    """
    b = _Builder("mlp", shape, seed)
    return b.graph(b.classifier("input", list(hidden) + [b.classes]))


def lenet5(shape: str = "cifar", seed: int = 0) -> Graph:
    """LeNet-5: conv5x5(6) -> IF -> avgpool2 -> conv5x5(16) -> IF -> avgpool2 -> FC 120 -> FC 84 -> FC classes.

    No padding. CIFAR: flatten 16x5x5 = 400. ImageNet (unusual, a stress case):
    flatten 16x53x53 = 44,944.
    """
    b = _Builder("lenet5", shape, seed)
    x = b.pool("pool1", b.if_("if1", b.conv("conv1", "input", 6, 5)), 2)
    x = b.pool("pool2", b.if_("if2", b.conv("conv2", x, 16, 5)), 2)
    return b.graph(b.classifier(x, [120, 84, b.classes]))


def _vgg(model: str, shape: str, seed: int) -> Graph:
    b = _Builder(model, shape, seed)
    x, i, p = "input", 0, 0
    for v in VGG_CONFIGS[model]:
        if v == "M":
            p += 1
            x = b.pool(f"pool{p}", x, 2)
        else:
            i += 1
            x = b.if_(f"if{i}", b.conv(f"conv{i}", x, v, 3, 1, 1))
    if model == "vgg8":
        if shape == "imagenet":  # 512x28x28 -> 512x7x7, torchvision's adaptive pooling
            x = b.pool("pool_7x7", x, 4)
        widths = [1024, b.classes]
    else:
        widths = [4096, 4096, b.classes] if shape == "imagenet" else [512, b.classes]
    return b.graph(b.classifier(x, widths))


def vgg8(shape: str = "cifar", seed: int = 0) -> Graph:
    """VGG-8 (6 conv + 2 FC, Liang/Deng 2018): 128,128,M,256,256,M,512,512,M, FC 1024, FC classes.

    ImageNet adds a 4x4 stride-4 average pooling before the flatten (7x7x512).
    """
    return _vgg("vgg8", shape, seed)


def vgg11(shape: str = "cifar", seed: int = 0) -> Graph:
    """VGG-11 (config A). Classifier 25088-4096-4096-1000 (ImageNet) or 512-512-10 (CIFAR)."""
    return _vgg("vgg11", shape, seed)


def vgg16(shape: str = "cifar", seed: int = 0) -> Graph:
    """VGG-16 (config D). Classifier 25088-4096-4096-1000 (ImageNet) or 512-512-10 (CIFAR)."""
    return _vgg("vgg16", shape, seed)


def resnet18(shape: str = "cifar", seed: int = 0, stem_pool: str = "2x2") -> Graph:
    """ResNet-18 without batch norm; see the module docstring for the stem and head.

    ``stem_pool`` (ImageNet only): ``"2x2"`` (2x2 stride 2, default) or ``"3x3"``
    (3x3 stride 2 padding 1, the torchvision window). Both give 64x56x56, but only the
    2x2 window composes exactly into ``layer1.0.conv1``; ``models.lower`` currently
    refuses the 3x3 one (it would need a 113M-entry CSR for that projection).
    """
    b = _Builder("resnet18", shape, seed)
    if shape == "imagenet":
        x = b.if_("if1", b.conv("conv1", "input", 64, 7, 2, 3))
        if stem_pool == "2x2":
            x = b.pool("pool1", x, 2)
        elif stem_pool == "3x3":
            x = b.pool("pool1", x, 3, 2, 1)
        else:
            raise ParameterError(f"stem_pool must be '2x2' or '3x3', got {stem_pool!r}")
        b.meta["stem_pool"] = stem_pool
    else:
        x = b.if_("if1", b.conv("conv1", "input", 64, 3, 1, 1))
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for blk in range(2):
            p = f"layer{stage}.{blk}"
            stride = 2 if (stage > 1 and blk == 0) else 1
            h = b.if_(f"{p}.if1", b.conv(f"{p}.conv1", x, cout, 3, stride, 1))
            h = b.conv(f"{p}.conv2", h, cout, 3, 1, 1)
            skip = x if stride == 1 and cin == cout else b.conv(f"{p}.downsample", x, cout, 1, stride, 0)
            x = b.if_(f"{p}.if2", [h, skip])
            cin = cout
    x = b.pool("avgpool", x, b.shape[x][1])  # global average pooling (7x7 or 4x4)
    x = b.if_("if_fc", b.fc("fc", b.flatten("flatten", x), b.classes))
    return b.graph(x)


#: name -> builder(shape="cifar", seed=0)
BUILDERS = {
    "mlp": mlp,
    "lenet5": lenet5,
    "vgg8": vgg8,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "resnet18": resnet18,
}


def list_models() -> list[str]:
    """Names accepted by :func:`build`."""
    return list(BUILDERS)


def build(name: str, shape: str = "cifar", seed: int = 0) -> Graph:
    """The graph of zoo model ``name`` (see :data:`BUILDERS`) with seeded random weights."""
    if name not in BUILDERS:
        raise ParameterError(f"unknown zoo model {name!r} (available: {', '.join(BUILDERS)})")
    return BUILDERS[name](shape=shape, seed=seed)


def totals(graph: Graph) -> dict:
    """The totals of ``graph.summary()`` plus ``weights`` (weights and biases of linear nodes).

    ``params`` also counts the neuron parameters (three per IF neuron), as the summary does.
    """
    rows = [graph.node_stats(n) for n in graph.order]
    out = {k: sum(r[k] for r in rows) for k in ("params", "neurons", "synapses")}
    out["weights"] = sum(r["params"] for r in rows if r["neurons"] == 0)
    return out
