r"""Train the zoo's spiking MNIST classifiers in pure numpy and export them as NIR.

Usage::

    python -m models.train mlp            # -> models/zoo/trained/mnist_mlp.nir
    python -m models.train cnn            # -> models/zoo/trained/mnist_cnn.nir
    python -m models.train cnn --dev      # hyper-parameter work: train 0:7000, score 7000:8000

Data: only the MNIST *test* set ships (``shared/data/mnist``). The models are
trained on test images ``0:8000`` and scored on ``8000:10000``, which training
never sees (with ``--dev`` not even the final score is computed on them).

Method (ANN training, then ANN-to-SNN conversion)
=================================================

1. **ANN with QCFS activations** (Bu et al., "Optimal ANN-SNN conversion for high
   accuracy and ultra-low latency SNNs", ICLR 2022). Every hidden activation is the
   quantisation-clip-floor-shift function with a trainable per-layer ceiling
   :math:`\lambda_l` and :math:`L` levels::

       h(a) = lambda * clip(floor(a L / lambda + 1/2) / L, 0, 1)

   trained with a straight-through estimator (the floor has derivative 1)::

       dh/da      = 1[0 <= a/lambda <= 1]
       dh/dlambda = h(a)/lambda - (a/lambda) 1[0 <= a/lambda <= 1]

   The network is trained with Adam on softmax cross-entropy, minibatches of 128,
   decoupled weight decay, a cosine learning-rate schedule and random affine data
   augmentation (shift +-2 px, rotation, scale), all seeded.

2. **Conversion.** A hidden layer ``a_l = W_l x_{l-1} + b_l`` followed by
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

Convolutions use :func:`models.ops.conv2d` (forward) and
:func:`models.ops.conv2d_transpose` (input gradient), the kernels the rest of the
project uses.

Reproducibility: every random draw comes from ``numpy.random.default_rng(seed)``;
the same command on the same machine (same BLAS, same thread count) rewrites the
same weights. The shipped ``mnist_cnn.nir`` was trained with an earlier im2col
convolution whose float32 rounding differs slightly from :mod:`models.ops`, so
rerunning ``python -m models.train cnn`` now gives close but not bit-identical
weights (``mnist_mlp.nir`` has no convolution and is unaffected).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the build machine has 2 cores

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

import nir  # noqa: E402

from .datasets import encode_direct, load_mnist  # noqa: E402
from .graph import Graph  # noqa: E402
from .lowering import lower  # noqa: E402
from .nirio import read_nir, write_nir  # noqa: E402
from .ops import ConvGeometry, conv2d, conv2d_transpose  # noqa: E402
from .reference import simulate  # noqa: E402

ZOO_DIR = Path(__file__).resolve().parent / "zoo" / "trained"
TRAIN_SLICE = (0, 8000)
HELD_OUT_SLICE = (8000, 10000)
DEV_SLICES = ((0, 7000), (7000, 8000))
DEFAULT_STEPS = 32
TARGETS = {"mlp": 0.970, "cnn": 0.980}


# --------------------------------------------------------------------------- layers
# The ANN works on channel-last tensors (N, H, W, C): im2col is then a plain reshape.
# Exported NIR tensors are channel-first (C, H, W), as NIR and PyTorch define them.


def _at_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` for tall ``a``, ``b``; computed as ``(b.T @ a).T``, which OpenBLAS
    runs ~100x faster when ``a`` has few columns (a weight gradient over many rows)."""
    return np.ascontiguousarray((b.T @ a).T)


class Layer:
    """A differentiable layer: ``forward`` caches what ``backward`` needs."""

    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params, self.grads = {}, {}

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def backward(self, g: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class Dense(Layer):
    """``y = x W^T + b`` with ``W`` of shape (out, in), as ``nir.Affine``."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator) -> None:
        super().__init__()
        std = np.sqrt(2.0 / n_in)
        self.params = {"weight": (rng.standard_normal((n_out, n_in)) * std).astype(np.float32),
                       "bias": np.zeros(n_out, np.float32)}

    def forward(self, x, train):
        self.x = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, g):
        self.grads = {"weight": _at_b(g, self.x), "bias": g.sum(0)}
        return g @ self.params["weight"]


class Conv(Layer):
    """Valid, stride-1 2-D cross-correlation; weight (out, in, k, k) as ``nir.Conv2d``.

    ``y[n, i, j, o] = b[o] + sum_{c, a, b} W[o, c, a, b] x[n, i + a, j + b, c]``

    Forward is :func:`models.ops.conv2d`, the input gradient its adjoint
    :func:`models.ops.conv2d_transpose` (both channel-first, hence the transposes);
    the weight gradient ``dW[o, c, a, b] = sum_{n, i, j} g[n, i, j, o] x[n, i + a, j + b, c]``
    is one matmul over im2col rows.
    """

    def __init__(self, c_in: int, c_out: int, k: int, rng: np.random.Generator,
                 input_grad: bool = True) -> None:
        super().__init__()
        std = np.sqrt(2.0 / (c_in * k * k))
        self.k, self.input_grad = k, input_grad
        self.params = {"weight": (rng.standard_normal((c_out, c_in, k, k)) * std).astype(np.float32),
                       "bias": np.zeros(c_out, np.float32)}

    def geometry(self, h: int, w: int) -> ConvGeometry:
        o, c = self.params["weight"].shape[:2]
        return ConvGeometry(c, o, (h, w), (self.k, self.k))

    def forward(self, x, train):
        self.x = x
        y = conv2d(x.transpose(0, 3, 1, 2), self.params["weight"],
                   self.geometry(x.shape[1], x.shape[2]), self.params["bias"])
        return np.ascontiguousarray(y.transpose(0, 2, 3, 1))

    def backward(self, g):
        x, self.x = self.x, None
        n, h, w, c = x.shape
        k = self.k
        o = g.shape[-1]
        g2 = g.reshape(-1, o)
        # (n, ho, wo, c, k, k) -> rows of c*k*k taps, ordered like W.reshape(out, -1)
        cols = sliding_window_view(x, (k, k), axis=(1, 2)).reshape(g2.shape[0], c * k * k)
        self.grads = {"weight": _at_b(g2, cols).reshape(self.params["weight"].shape),
                      "bias": g2.sum(0)}
        if not self.input_grad:
            return None
        dx = conv2d_transpose(g.transpose(0, 3, 1, 2), self.params["weight"], self.geometry(h, w))
        return np.ascontiguousarray(dx.transpose(0, 2, 3, 1))


class AvgPool(Layer):
    """Non-overlapping ``p x p`` average pooling (kernel = stride = p, no padding)."""

    def __init__(self, p: int = 2) -> None:
        super().__init__()
        self.p = p

    def forward(self, x, train):
        n, h, w, c = x.shape
        p = self.p
        return x.reshape(n, h // p, p, w // p, p, c).mean(axis=(2, 4))

    def backward(self, g):
        p = self.p
        return np.repeat(np.repeat(g, p, axis=1), p, axis=2) / np.float32(p * p)


class Flatten(Layer):
    """Channel-last (N, H, W, C) -> (N, C*H*W) in NIR's channel-first order."""

    def forward(self, x, train):
        self.shape = x.shape
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), -1)

    def backward(self, g):
        n, h, w, c = self.shape
        return g.reshape(n, c, h, w).transpose(0, 2, 3, 1)


class QCFS(Layer):
    r"""``h(a) = lambda * clip(floor(a L / lambda + 1/2) / L, 0, 1)``, trainable lambda.

    Straight-through gradients: ``dh/da = 1[0 <= u <= 1]`` and
    ``dh/dlambda = q - u 1[0 <= u <= 1]`` with ``u = a / lambda``,
    ``q = h / lambda``.
    """

    def __init__(self, levels: int, lam: float = 1.0) -> None:
        super().__init__()
        self.levels = levels
        self.params = {"lam": np.array([lam], np.float32)}

    def forward(self, x, train):
        lam = self.params["lam"][0]
        u = x / lam
        q = np.clip(np.floor(u * self.levels + 0.5) / self.levels, 0.0, 1.0).astype(np.float32)
        self.u, self.q = u, q
        return q * lam

    def backward(self, g):
        inside = (self.u >= 0) & (self.u <= 1)
        self.grads = {"lam": np.array([np.sum(g * (self.q - self.u * inside))], np.float32)}
        return g * inside


class Dropout(Layer):
    """Inverted dropout with its own seeded generator; identity when not training."""

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        super().__init__()
        self.p, self.rng = p, rng

    def forward(self, x, train):
        if not train or self.p == 0:
            self.mask = None
            return x
        self.mask = (self.rng.random(x.shape, dtype=np.float32) >= self.p) / np.float32(1 - self.p)
        return x * self.mask

    def backward(self, g):
        return g if self.mask is None else g * self.mask


class Model:
    """A sequential stack of :class:`Layer` objects."""

    def __init__(self, layers: list[Layer], kind: str) -> None:
        self.layers, self.kind = layers, kind

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits for images ``x`` of shape (N, 1, 28, 28)."""
        h = np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32)
        for layer in self.layers:
            h = layer.forward(h, train)
        return h

    def backward(self, g: np.ndarray) -> None:
        for layer in reversed(self.layers):
            g = layer.backward(g)
            if g is None:
                break

    def parameters(self):
        """Yield ``(layer, name)`` for every trainable tensor."""
        for layer in self.layers:
            for name in layer.params:
                yield layer, name

    def predict(self, x: np.ndarray, batch: int = 500) -> np.ndarray:
        return np.concatenate([self.forward(x[i:i + batch]).argmax(1)
                               for i in range(0, len(x), batch)])


def build_model(kind: str, seed: int, levels: int) -> Model:
    """The two zoo architectures (see :data:`ARCHITECTURES`)."""
    rng = np.random.default_rng([seed, 1])
    drop_rng = np.random.default_rng([seed, 2])
    if kind == "mlp":
        layers = [Flatten(), Dense(784, 400, rng), QCFS(levels), Dropout(0.2, drop_rng),
                  Dense(400, 10, rng)]
    elif kind == "cnn":
        layers = [Conv(1, 12, 5, rng, input_grad=False), QCFS(levels), AvgPool(2),
                  Conv(12, 32, 5, rng), QCFS(levels), AvgPool(2),
                  Flatten(), Dropout(0.2, drop_rng), Dense(512, 10, rng)]
    else:
        raise ValueError(f"unknown model kind {kind!r}; choose 'mlp' or 'cnn'")
    return Model(layers, kind)


ARCHITECTURES = {
    "mlp": "Input(1x28x28) -> Flatten -> fc1 784x400 -> IF(400) -> fc2 400x10 -> IF(10)",
    "cnn": ("Input(1x28x28) -> conv1 1->12 5x5 -> IF(12x24x24) -> avgpool 2x2 -> "
            "conv2 12->32 5x5 -> IF(32x8x8) -> avgpool 2x2 -> Flatten(512) -> "
            "fc 512x10 -> IF(10)"),
}


# --------------------------------------------------------------------------- training


def augment(x: np.ndarray, rng: np.random.Generator, shift: float = 2.0,
            rotate_deg: float = 10.0, scale: float = 0.1) -> np.ndarray:
    """Random affine distortion of a batch (N, 1, 28, 28), bilinear, zero outside.

    Each image gets its own rotation ``U(-rotate_deg, rotate_deg)``, isotropic
    scale ``U(1 - scale, 1 + scale)`` and shift ``U(-shift, shift)`` pixels per
    axis; output pixel ``p`` samples the input at ``A^{-1} (p - c - t) + c``.
    """
    n, _, h, w = x.shape
    ang = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg, n))
    s = rng.uniform(1 - scale, 1 + scale, n)
    t = rng.uniform(-shift, shift, (n, 2))
    cos, sin = np.cos(ang) / s, np.sin(ang) / s  # inverse of rotate-then-scale
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    dy = yy[None] - cy - t[:, 0, None, None]
    dx = xx[None] - cx - t[:, 1, None, None]
    sy = cos[:, None, None] * dy - sin[:, None, None] * dx + cy
    sx = sin[:, None, None] * dy + cos[:, None, None] * dx + cx
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    fy, fx = (sy - y0).astype(np.float32), (sx - x0).astype(np.float32)
    padded = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))  # zero border
    flat = padded.reshape(n, -1)
    out = np.zeros((n, h, w), np.float32)
    for oy, wy in ((0, 1 - fy), (1, fy)):
        for ox, wx in ((0, 1 - fx), (1, fx)):
            py = np.clip(y0 + oy + 1, 0, h + 1)
            px = np.clip(x0 + ox + 1, 0, w + 1)
            vals = np.take_along_axis(flat, (py * (w + 2) + px).reshape(n, -1), axis=1)
            out += wy * wx * vals.reshape(n, h, w)
    return np.clip(out, 0.0, 1.0)[:, None]


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient w.r.t. the logits."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    loss = float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))
    g = p
    g[np.arange(len(y)), y] -= 1
    return loss, (g / len(y)).astype(np.float32)


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train`."""

    epochs: int = 30
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4  # decoupled (AdamW), weights only
    augment: bool = True
    seed: int = 0
    levels: int = 8  # QCFS quantisation levels L
    log: bool = True
    history: list = field(default_factory=list)


def train(kind: str, x: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> Model:
    """Train model ``kind`` on ``x`` (N, 1, 28, 28), ``y`` (N,) with Adam.

    Adam: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``p -= lr_t (m / (1-b1^k)) / (sqrt(v / (1-b2^k)) + eps) + lr_t wd p``
    with ``lr_t`` following a cosine from ``lr`` to 0 over all steps.
    Appends ``(epoch, mean_loss, train_accuracy)`` to ``cfg.history``.
    """
    model = build_model(kind, cfg.seed, cfg.levels)
    _fit(model, x, y, cfg)
    return model


def _fit(model: Model, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, after_step=None) -> None:
    """The Adam loop of :func:`train` on an existing model; ``after_step(model, k, total)``
    runs after every parameter update (the projection of :func:`finetune`)."""
    rng = np.random.default_rng([cfg.seed, 3])
    params = list(model.parameters())
    m = [np.zeros_like(layer.params[name]) for layer, name in params]
    v = [np.zeros_like(layer.params[name]) for layer, name in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    n = len(x)
    steps_per_epoch = (n + cfg.batch - 1) // cfg.batch
    total, k = cfg.epochs * steps_per_epoch, 0
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        losses, correct = [], 0
        for i in range(0, n, cfg.batch):
            idx = order[i:i + cfg.batch]
            xb = augment(x[idx], rng) if cfg.augment else x[idx]
            logits = model.forward(xb, train=True)
            loss, g = softmax_cross_entropy(logits, y[idx])
            losses.append(loss)
            correct += int((logits.argmax(1) == y[idx]).sum())
            model.backward(g)
            k += 1
            lr = 0.5 * cfg.lr * (1 + np.cos(np.pi * (k - 1) / total))
            for j, (layer, name) in enumerate(params):
                grad = layer.grads[name]
                m[j] = b1 * m[j] + (1 - b1) * grad
                v[j] = b2 * v[j] + (1 - b2) * grad * grad
                mh = m[j] / (1 - b1 ** k)
                vh = v[j] / (1 - b2 ** k)
                p = layer.params[name]
                step = lr * mh / (np.sqrt(vh) + eps)
                if name == "weight":
                    step = step + lr * cfg.weight_decay * p
                layer.params[name] = (p - step).astype(np.float32)
                if name == "lam":  # keep the ceiling positive
                    layer.params[name] = np.maximum(layer.params[name], np.float32(1e-2))
            if after_step is not None:
                after_step(model, k, total)
        cfg.history.append((epoch, float(np.mean(losses)), correct / n))
        if cfg.log:
            print(f"epoch {epoch + 1:3d}/{cfg.epochs}  loss {np.mean(losses):.4f}  "
                  f"train acc {correct / n:.4f}  ({time.perf_counter() - t0:.1f} s)", flush=True)


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
    steps = int(meta.get("steps", DEFAULT_STEPS))
    model = build_model(kind, int(meta.get("seed", 0)), int(meta.get("qcfs_levels", 8)))
    lin = [layer for layer in model.layers if isinstance(layer, (Dense, Conv))]
    acts = [layer for layer in model.layers if isinstance(layer, QCFS)]
    nodes = [graph.nodes[n] for n in graph.order if type(graph.nodes[n]).__name__ in ("Affine", "Conv2d")]
    if len(nodes) != len(lin) or len(lams) != len(acts):
        raise ValueError(f"graph has {len(nodes)} linear nodes and {len(lams)} ceilings; the '{kind}' "
                         f"architecture has {len(lin)} and {len(acts)}")
    theta = float(meta["theta_out"])
    for i, (layer, node) in enumerate(zip(lin, nodes)):
        lam_prev = 1.0 if i == 0 else lams[i - 1]
        out = i == len(lin) - 1
        lam = theta if out else lams[i]
        w = np.asarray(node.weight, dtype=np.float64)
        b = np.asarray(node.bias, dtype=np.float64)
        if w.shape != layer.params["weight"].shape:
            raise ValueError(f"linear node {i}: weight {w.shape}, architecture {layer.params['weight'].shape}")
        layer.params["weight"] = (w * lam / lam_prev).astype(np.float32)
        layer.params["bias"] = ((b if out else b - 1.0 / (2 * steps)) * lam).astype(np.float32)
    for act, lam in zip(acts, lams):
        act.params["lam"] = np.array([lam], np.float32)
    return model


def finetune(model: Model, x: np.ndarray, y: np.ndarray, project, cfg: TrainConfig,
             relax: float = 0.5) -> Model:
    r"""L0-constrained fine-tuning: LGD with a relaxed probabilistic projection (RPP).

    Every minibatch takes the Adam step of :func:`train` and then projects the weights:
    ``project(layer_index, weight, temperature, rng) -> weight`` for every Conv/Dense
    layer (index in model order), e.g. :func:`mapper.prune.project`, which keeps at most
    k crossbars. The temperature anneals linearly from 1 to 0 over the first ``relax``
    fraction of the steps (``tau_k = max(0, 1 - k / (relax K))``): early projections are
    random draws that favour important crossbars, later ones are the hard L0 projection,
    and the last one is hard, so the returned weights satisfy the constraint exactly.
    """
    lin = [layer for layer in model.layers if isinstance(layer, (Dense, Conv))]
    rng = np.random.default_rng([cfg.seed, 7])

    def after(model, k, total):
        tau = max(0.0, 1.0 - k / max(1.0, relax * total))
        for i, layer in enumerate(lin):
            layer.params["weight"] = np.asarray(project(i, layer.params["weight"], tau, rng), np.float32)

    after(model, 0, 1)  # start feasible
    _fit(model, x, y, cfg, after)
    for i, layer in enumerate(lin):
        layer.params["weight"] = np.asarray(project(i, layer.params["weight"], 0.0, rng), np.float32)
    return model


def mean_loss(model: Model, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    """Mean cross-entropy of ``model`` on ``(x, y)`` without augmentation."""
    total = 0.0
    for i in range(0, len(x), batch):
        loss, _ = softmax_cross_entropy(model.forward(x[i:i + batch]), y[i:i + batch])
        total += loss * len(y[i:i + batch])
    return total / len(x)


# --------------------------------------------------------------------------- conversion


def convert(model: Model, x_calib: np.ndarray, steps: int = DEFAULT_STEPS,
            percentile: float = 99.9, metadata: dict | None = None) -> Graph:
    """Convert a trained QCFS model into an IF-neuron :class:`models.Graph` (dt = 1;
    see the module docstring), ready for :func:`models.write_nir`.

    ``x_calib`` (training images) sets the output threshold ``theta_out`` as the
    ``percentile`` of the per-image largest logit. All hidden thresholds are 1.
    """
    acts = [i for i, layer in enumerate(model.layers) if isinstance(layer, QCFS)]
    logits = np.concatenate([model.forward(x_calib[i:i + 500]) for i in range(0, len(x_calib), 500)])
    theta_out = float(max(np.percentile(logits.max(1), percentile), 1e-3))

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([1, 28, 28])})}
    edges: list[tuple[str, str]] = []
    prev, shape = "input", (1, 28, 28)  # current NIR tensor shape (C, H, W) or (n,)
    lam_prev = 1.0
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
            if not out_layer:
                b = b + 1.0 / (2 * steps)
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
        "steps": int(steps), "trained_on": "MNIST test[0:8000]",
        "held_out": "MNIST test[8000:10000]", "model": model.kind,
        "architecture": ARCHITECTURES[model.kind],
        "conversion": ("QCFS ANN (trained ceilings lambda_l, L levels) -> IF, threshold 1: "
                       "W'=W*lambda_prev/lambda, b'=b/lambda+1/(2T); output theta = "
                       f"p{percentile} of max logit"),
        "qcfs_levels": int(model.layers[acts[0]].levels) if acts else 0,
        "lambdas": ",".join(f"{float(model.layers[i].params['lam'][0]):.6g}" for i in acts),
        "theta_out": theta_out,
    }
    meta.update(metadata or {})
    return Graph(nodes, edges, dt=1.0, metadata=meta)


# --------------------------------------------------------------------------- evaluation


def snn_accuracy(graph: Graph, x: np.ndarray, y: np.ndarray,
                 steps: int = DEFAULT_STEPS) -> float:
    """Fraction of images ``x`` (B, 1, 28, 28) the SNN classifies as ``y`` in ``steps`` steps.

    The official evaluation: the float reference :func:`models.simulate` on
    ``models.lower(graph)`` with direct encoding, ``reset="subtract"``,
    ``spikes="binary"``; the class is the argmax of output spike counts, ties to
    the lowest index.
    """
    res = simulate(lower(graph), encode_direct(x, steps), reset="subtract", spikes="binary")
    return res.accuracy(y)


# --------------------------------------------------------------------------- driver


DEFAULTS = {
    "mlp": dict(epochs=60, lr=2e-3, levels=8),
    "cnn": dict(epochs=30, lr=2e-3, levels=8),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", choices=sorted(DEFAULTS), help="which zoo model to train")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default per model)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                    help="SNN time steps T the conversion targets (default 32, at most 32)")
    ap.add_argument("--levels", type=int, default=None, help="QCFS quantisation levels L")
    ap.add_argument("--lr", type=float, default=None, help="peak Adam learning rate")
    ap.add_argument("--out", type=Path, default=None,
                    help="output .nir path (default models/zoo/trained/mnist_<model>.nir)")
    ap.add_argument("--dev", action="store_true",
                    help="hyper-parameter mode: train on 0:7000, score on 7000:8000, write nothing "
                         "unless --out is given")
    args = ap.parse_args(argv)
    if not 1 <= args.steps <= 32:
        ap.error("--steps must be between 1 and 32")
    d = DEFAULTS[args.model]
    cfg = TrainConfig(epochs=args.epochs if args.epochs is not None else d["epochs"],
                      lr=args.lr if args.lr is not None else d["lr"],
                      levels=args.levels if args.levels is not None else d["levels"],
                      seed=args.seed)
    tr, te = DEV_SLICES if args.dev else (TRAIN_SLICE, HELD_OUT_SLICE)
    x_tr, y_tr = load_mnist(start=tr[0], stop=tr[1])
    x_te, y_te = load_mnist(start=te[0], stop=te[1])
    print(f"{args.model}: {ARCHITECTURES[args.model]}")
    print(f"train on MNIST test[{tr[0]}:{tr[1]}], score on [{te[0]}:{te[1]}]; {cfg}", flush=True)

    t0 = time.perf_counter()
    model = train(args.model, x_tr, y_tr, cfg)
    train_s = time.perf_counter() - t0
    ann_acc = float(np.mean(model.predict(x_te) == y_te))
    lams = [float(l.params["lam"][0]) for l in model.layers if isinstance(l, QCFS)]
    print(f"training took {train_s:.0f} s; ANN (QCFS, L={cfg.levels}) accuracy {ann_acc:.4f}; "
          f"lambdas {lams}", flush=True)

    graph = convert(model, x_tr, steps=args.steps)
    t1 = time.perf_counter()
    snn_acc = snn_accuracy(graph, x_te, y_te, args.steps)
    print(f"SNN accuracy at T={args.steps}: {snn_acc:.4f} ({time.perf_counter() - t1:.0f} s), "
          f"theta_out {graph.metadata['theta_out']:.4g}", flush=True)
    for t in (16, 8):
        if t < args.steps:
            print(f"  same file run for T={t}: {snn_accuracy(graph, x_te, y_te, t):.4f}", flush=True)

    out = args.out if args.out is not None else (None if args.dev else ZOO_DIR / f"mnist_{args.model}.nir")
    if out is not None:
        score = "dev_" if args.dev else ""
        graph.metadata.update({
            f"{score}ann_accuracy": ann_acc, f"{score}snn_accuracy": snn_acc,
            "scored_on": f"MNIST test[{te[0]}:{te[1]}]", "seed": int(args.seed),
            "epochs": int(cfg.epochs),  # no timings: the file must be reproducible
            "command": f"python -m models.train {args.model}" + (
                f" --epochs {cfg.epochs}" if args.epochs is not None else "") + (
                f" --seed {args.seed}" if args.seed else ""),
        })
        write_nir(graph, out)  # atomic
        read_nir(out)  # must load back
        print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
        if not args.dev and snn_acc < TARGETS[args.model]:
            print(f"WARNING: SNN accuracy {snn_acc:.4f} below the target {TARGETS[args.model]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
