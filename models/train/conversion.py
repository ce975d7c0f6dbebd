"""ANN-to-SNN conversion of a trained QCFS :class:`~models.train.layers.Model` into an
IF-neuron :class:`models.Graph` (:func:`convert`), its exact inverse
(:func:`model_from_graph`) and the official SNN evaluation (:func:`snn_accuracy`).

**Conversion.** A hidden layer ``a_l = W_l x_{l-1} + b_l`` followed by
``h(a_l)`` becomes an IF layer with threshold 1 (reset by subtraction). Its
spikes ``s_l[t]`` in {0, 1} stand for ``h(a_l) ~ lambda_l * mean_t s_l[t]``, so
every layer's weights are rescaled by the ceilings (threshold balancing; the
trained ``lambda_l`` *is* the data-based threshold)::

    W'_l = W_l * lambda_{l-1} / lambda_l          (lambda_0 = 1: the pixels)
    b'_l = b_l / lambda_l + 1 / (2 T)              (per step)
    v_threshold_l = 1

The ``1/(2T)`` per-step bias adds, over T steps, half a threshold to the
membrane: the QCFS "shift" that turns the IF neuron's floor into a rounding.
Average pooling and flattening are linear and commute with the rescaling.
For a constant input current ``I`` (the first layer under direct encoding)
an IF neuron with subtractive reset emits exactly ``clip(floor(T I), 0, T)``
spikes in T steps, i.e. ``h`` with ``L = T`` levels.

The output layer is IF too, with ``W'_out = W_out lambda_{L-1} / theta_out``,
``b'_out = b_out / theta_out`` and threshold 1, where ``theta_out`` is the
99.9th percentile of the largest logit over the training images, so that the
winning neuron fires up to about once per step. Since subtractive reset keeps
``count * 1 + v_final = sum_t I_out[t]`` exactly, the spike count is the
accumulated logit rounded down.

SNN semantics: those of the float reference simulator :func:`models.simulate`
(run on ``models.lower(graph)``, ``reset="subtract"``, ``spikes="binary"``), the
single evaluator used here (:func:`snn_accuracy`): dt = 1; the image is fed
unchanged at every step into the first linear node (direct encoding); every
linear node and its bias act every step; IF: ``v[t] = v[t-1] + I[t]``,
``z[t] = 1[v[t] >= theta]``, ``v[t] -= theta z[t]``, ``v[0] = 0``; no synaptic
delay between layers; the prediction is the argmax of output spike counts over T
steps, ties going to the lowest index (:meth:`models.SimResult.predict`).
"""

from __future__ import annotations

import nir
import numpy as np

from ..datasets import encode_direct
from ..defaults import HELD_OUT_SLICE, STEPS, TRAIN_SLICE
from ..graph import Graph, ann_layer_names
from ..lowering import lower
from ..reference import simulate
from .layers import ARCHITECTURES, QCFS, AvgPool, Conv, Dense, Dropout, Flatten, Model, build_model


def convert(model: Model, x_calib: np.ndarray | None, steps: int = STEPS,
            percentile: float = 99.9, metadata: dict | None = None, *, ann: tuple = (),
            ann_output: bool = False, theta_out: float | None = None) -> Graph:
    """Convert a trained QCFS model into an IF-neuron :class:`models.Graph` (dt = 1;
    see the module docstring), ready for :func:`models.write_nir`.

    ``x_calib`` (training images) sets the output threshold ``theta_out`` as the
    ``percentile`` of the per-image largest logit, unless ``theta_out`` is given. All
    hidden thresholds are 1.

    ``ann``: indices (0-based, in order) of the hidden QCFS activations that run as ANN
    layers (Tianjic's hybrid paradigm; the population model ``ANN`` of
    :mod:`models.neurons`, a clipped ReLU ``a = clip(I, 0, a_max)`` whose value is the
    next layer's MAC operand): layer ``l``'s node stays an IF node in the NIR file (so
    any NIR reader still sees the converted SNN), listed in ``metadata["ann_layers"]``,
    which :func:`models.lower` reads; it keeps ``b'_l = b_l / lambda_l`` without the
    ``1/(2T)`` shift, and its output ``clip(a'_l, 0, 1)`` (``a_max`` = its threshold 1)
    stands for ``h(a_l) / lambda_l``, as the spike rate of an SNN layer does, so the next
    layer's weights are the same. ``ann_output=True``: the output layer is an ANN layer
    too (``clip(logit / theta_out, 0, 1)`` every step; an all-ANN network needs T = 1).
    """
    acts = [i for i, layer in enumerate(model.layers) if isinstance(layer, QCFS)]
    ann = tuple(sorted(set(int(a) for a in ann)))
    if any(not 0 <= a < len(acts) for a in ann):
        raise ValueError(f"ann layers {ann} out of range: the model has {len(acts)} hidden activations")
    if theta_out is None:
        logits = np.concatenate([model.forward(x_calib[i:i + 500]) for i in range(0, len(x_calib), 500)])
        theta_out = float(max(np.percentile(logits.max(1), percentile), 1e-3))

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([1, 28, 28])})}
    edges: list[tuple[str, str]] = []
    prev, shape = "input", (1, 28, 28)  # current NIR tensor shape (C, H, W) or (n,)
    lam_prev = 1.0
    hidden = -1  # index of the current hidden activation
    ann_layers = []
    counts = {"fc": 0, "conv": 0, "pool": 0, "if": 0, "flatten": 0}
    layers = [layer for layer in model.layers if not isinstance(layer, Dropout)]

    def add(prefix: str, node: nir.NIRNode) -> None:
        nonlocal prev
        counts[prefix] += 1
        name = f"{prefix}{counts[prefix]}"
        nodes[name] = node
        edges.append((prev, name))
        prev = name

    for i, layer in enumerate(layers):
        if isinstance(layer, (Dense, Conv)):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            out_layer = not isinstance(nxt, QCFS)
            lam = theta_out if out_layer else float(nxt.params["lam"][0])
            w = layer.params["weight"].astype(np.float64) * lam_prev / lam
            b = layer.params["bias"].astype(np.float64) / lam
            is_ann = False
            if not out_layer:
                hidden += 1
                is_ann = hidden in ann
                if not is_ann:
                    b = b + 1.0 / (2 * steps)
            elif ann_output:
                is_ann = True
            if isinstance(layer, Dense):
                add("fc", nir.Affine(weight=w.astype(np.float32), bias=b.astype(np.float32)))
                shape = (w.shape[0],)
            else:
                k = layer.k
                add("conv", nir.Conv2d(input_shape=(int(shape[1]), int(shape[2])),
                                       weight=w.astype(np.float32), stride=(1, 1), padding=(0, 0),
                                       dilation=(1, 1), groups=1, bias=b.astype(np.float32)))
                shape = (w.shape[0], shape[1] - k + 1, shape[2] - k + 1)
            add("if", nir.IF(r=np.ones(shape, np.float32), v_threshold=np.ones(shape, np.float32),
                             v_reset=np.zeros(shape, np.float32)))
            lam_prev = lam
            if is_ann:
                ann_layers.append(prev)
        elif isinstance(layer, AvgPool):
            p = layer.p
            add("pool", nir.AvgPool2d(kernel_size=np.array([p, p]), stride=np.array([p, p]),
                                      padding=np.array([0, 0])))
            shape = (shape[0], shape[1] // p, shape[2] // p)
        elif isinstance(layer, Flatten):
            add("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
            shape = (int(np.prod(shape)),)
        elif isinstance(layer, QCFS):
            continue  # became the IF node after the preceding linear layer
        else:  # pragma: no cover
            raise TypeError(f"cannot convert layer {type(layer).__name__}")
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))

    meta = {
        "reset": "subtract", "spikes": "binary", "encoding": "direct",
        "steps": int(steps), "trained_on": f"MNIST test[{TRAIN_SLICE[0]}:{TRAIN_SLICE[1]}]",
        "held_out": f"MNIST test[{HELD_OUT_SLICE[0]}:{HELD_OUT_SLICE[1]}]", "model": model.kind,
        "architecture": ARCHITECTURES[model.kind],
        "conversion": ("QCFS ANN (trained ceilings lambda_l, L levels) -> IF, threshold 1: "
                       "W'=W*lambda_prev/lambda, b'=b/lambda+1/(2T); output theta = "
                       f"p{percentile} of max logit"),
        "qcfs_levels": int(model.layers[acts[0]].levels) if acts else 0,
        "lambdas": ",".join(f"{float(model.layers[i].params['lam'][0]):.6g}" for i in acts),
        "theta_out": theta_out,
    }
    if ann_layers:
        meta["ann_layers"] = ",".join(ann_layers)
        meta["conversion"] += "; ANN layers (clip(a', 0, 1), no 1/(2T) shift): b'=b/lambda"
    meta.update(metadata or {})
    return Graph(nodes, edges, dt=1.0, metadata=meta)


def model_from_graph(graph: Graph) -> Model:
    """The QCFS ANN a zoo graph was converted from (the inverse of :func:`convert`).

    Needs the conversion metadata (``model``, ``lambdas``, ``theta_out``, ``steps``,
    ``qcfs_levels``); with ``lambda_l`` the ceilings (``lambda_0 = 1``) and ``theta`` the
    output threshold: hidden ``W = W' lambda_l / lambda_{l-1}``, ``b = (b' - 1/(2T))
    lambda_l``; output ``W = W' theta / lambda_{L-1}``, ``b = b' theta``.
    Raises :class:`ValueError` naming what is missing or does not match.
    """
    meta = graph.metadata or {}
    kind = meta.get("model")
    if kind not in ARCHITECTURES or "lambdas" not in meta or "theta_out" not in meta:
        raise ValueError("graph has no trainer: it is not a zoo model converted by models.train "
                         "(metadata 'model', 'lambdas', 'theta_out' missing)")
    lams = [float(v) for v in str(meta["lambdas"]).split(",") if v]
    steps = int(meta.get("steps", STEPS))
    model = build_model(kind, int(meta.get("seed", 0)), int(meta.get("qcfs_levels", 8)))
    lin = model.linear_layers()
    acts = [layer for layer in model.layers if isinstance(layer, QCFS)]
    nodes = [graph.nodes[n] for n in graph.order if type(graph.nodes[n]).__name__ in ("Affine", "Conv2d")]
    if len(nodes) != len(lin) or len(lams) != len(acts):
        raise ValueError(f"graph has {len(nodes)} linear nodes and {len(lams)} ceilings; the '{kind}' "
                         f"architecture has {len(lin)} and {len(acts)}")
    theta = float(meta["theta_out"])
    ann = set(ann_layer_names(graph))
    if_nodes = [n for n in graph.order if type(graph.nodes[n]).__name__ == "IF"]
    for i, (layer, node) in enumerate(zip(lin, nodes)):
        lam_prev = 1.0 if i == 0 else lams[i - 1]
        out = i == len(lin) - 1
        lam = theta if out else lams[i]
        w = np.asarray(node.weight, dtype=np.float64)
        b = np.asarray(node.bias, dtype=np.float64)
        if w.shape != layer.params["weight"].shape:
            raise ValueError(f"linear node {i}: weight {w.shape}, architecture {layer.params['weight'].shape}")
        shift = 0.0 if out or if_nodes[i] in ann else 1.0 / (2 * steps)
        layer.params["weight"] = (w * lam / lam_prev).astype(np.float32)
        layer.params["bias"] = ((b - shift) * lam).astype(np.float32)
    for act, lam in zip(acts, lams):
        act.params["lam"] = np.array([lam], np.float32)
    return model


def hybridize(graph: Graph, ann: tuple = (0,), *, ann_output: bool = False,
              steps: int | None = None) -> Graph:
    """The same trained network with hidden activations ``ann`` (and with ``ann_output``
    the output) run as ANN layers: :func:`model_from_graph` then :func:`convert` with the
    graph's own ``theta_out``, so the SNN layers keep their weights exactly (to float32
    rounding). ``steps`` (default the graph's) sets the SNN layers' ``1/(2T)`` shift."""
    meta = dict(graph.metadata or {})
    T = int(steps if steps is not None else meta.get("steps", STEPS))
    keep = {k: v for k, v in meta.items() if k not in ("ann_layers", "conversion", "steps")}
    return convert(model_from_graph(graph), None, T, ann=ann, ann_output=ann_output,
                   theta_out=float(meta["theta_out"]), metadata=keep)


def snn_accuracy(graph: Graph, x: np.ndarray, y: np.ndarray,
                 steps: int = STEPS) -> float:
    """Fraction of images ``x`` (B, 1, 28, 28) the SNN classifies as ``y`` in ``steps`` steps.

    The official evaluation: the float reference :func:`models.simulate` on
    ``models.lower(graph)`` with direct encoding, ``reset="subtract"``,
    ``spikes="binary"``; the class is the argmax of output spike counts, ties to
    the lowest index.
    """
    res = simulate(lower(graph), encode_direct(x, steps), reset="subtract", spikes="binary")
    return res.accuracy(y)
