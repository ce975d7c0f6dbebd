"""Training of the zoo's ANN: data augmentation, the softmax cross-entropy loss, the seeded
Adam loop (:func:`train`) and its L0-constrained variant (:func:`finetune`).

The network is trained with Adam on softmax cross-entropy, minibatches of 128,
decoupled weight decay, a cosine learning-rate schedule and random affine data
augmentation (shift +-2 px, rotation, scale), all seeded: every random draw comes from
``numpy.random.default_rng([seed, k])``, one stream per purpose.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .layers import Model, build_model

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
    lin = model.linear_layers()
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
