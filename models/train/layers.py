r"""The numpy ANN the zoo's MNIST classifiers are trained as: differentiable layers, the
QCFS activation, the sequential :class:`Model` and the two zoo architectures.

The ANN works on channel-last tensors (N, H, W, C): im2col is then a plain reshape.
Exported NIR tensors are channel-first (C, H, W), as NIR and PyTorch define them.

**QCFS activations** (Bu et al., "Optimal ANN-SNN conversion for high accuracy and
ultra-low latency SNNs", ICLR 2022). Every hidden activation is the
quantisation-clip-floor-shift function with a trainable per-layer ceiling
:math:`\lambda_l` and :math:`L` levels::

    h(a) = lambda * clip(floor(a L / lambda + 1/2) / L, 0, 1)

trained with a straight-through estimator (the floor has derivative 1)::

    dh/da      = 1[0 <= a/lambda <= 1]
    dh/dlambda = h(a)/lambda - (a/lambda) 1[0 <= a/lambda <= 1]

Convolutions use :func:`models.ops.conv2d` (forward) and
:func:`models.ops.conv2d_transpose` (input gradient), the kernels the rest of the
project uses.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..ops import ConvGeometry, conv2d, conv2d_transpose

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

    def linear_layers(self) -> list[Layer]:
        """The :class:`Dense` and :class:`Conv` layers in order: the ones that carry weights."""
        return [layer for layer in self.layers if isinstance(layer, (Dense, Conv))]

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
