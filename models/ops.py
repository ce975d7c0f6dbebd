"""Numpy kernels for the linear primitives (conv, pooling) and their geometry.

Shared by the float reference simulator, the lowering and the structured
projections, so that one formula defines each operator.

Convolution (cross-correlation, as in NIR/PyTorch), per spatial dimension::

    out = floor((in + 2 p - d (k - 1) - 1) / s) + 1
    y[o, i, j] = sum_{c, a, b} w[o, c, a, b] * x[g(o) + c, s_h i - p_h + d_h a, s_w j - p_w + d_w b]

with zero padding and ``groups`` splitting channels into independent blocks.
Pooling of kernel k, stride s and padding p is the same geometry with an all-ones
kernel per channel (``SumPool2d``) or all ``1/k_h k_w`` (``AvgPool2d``,
count_include_pad=True, as NIR defines it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConvGeometry:
    """Geometry of a 2-D convolution; 1-D convolutions use ``H = 1``.

    Attributes are ints; ``in_shape = (C_in, H, W)``, ``out_shape = (C_out, H', W')``.
    """

    in_channels: int
    out_channels: int
    in_hw: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def out_hw(self) -> tuple[int, int]:
        return tuple(
            conv_out_size(n, k, s, p, d)
            for n, k, s, p, d in zip(self.in_hw, self.kernel, self.stride, self.padding, self.dilation)
        )

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (self.in_channels,) + tuple(self.in_hw)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.out_channels,) + tuple(self.out_hw)

    def tap_valid(self, axis: int) -> np.ndarray:
        """Boolean (out_n, k): tap ``a`` of output ``i`` lands inside the input."""
        n, k, s, p, d = (self.in_hw[axis], self.kernel[axis], self.stride[axis],
                         self.padding[axis], self.dilation[axis])
        out = conv_out_size(n, k, s, p, d)
        pos = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
        return (pos >= 0) & (pos < n)

    def tap_source(self, axis: int) -> np.ndarray:
        """Boolean (in_n, k): input position ``y`` feeds some output through tap ``a``."""
        n, k, s, p, d = (self.in_hw[axis], self.kernel[axis], self.stride[axis],
                         self.padding[axis], self.dilation[axis])
        out = conv_out_size(n, k, s, p, d)
        num = np.arange(n)[:, None] + p - np.arange(k)[None, :] * d
        return (num % s == 0) & (num // s >= 0) & (num // s < out)


def conv_out_size(n: int, k: int, s: int, p: int, d: int = 1) -> int:
    """``floor((n + 2p - d(k-1) - 1) / s) + 1`` (may be <= 0 for an invalid geometry)."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


_IM2COL_BYTES = 256 * 2**20  # above this, accumulate tap by tap instead of building im2col columns


def conv2d(x: np.ndarray, w: np.ndarray, geom: ConvGeometry, bias: np.ndarray | None = None) -> np.ndarray:
    """Batched conv: ``x`` (B, C_in, H, W), ``w`` (C_out, C_in/g, kh, kw) -> (B, C_out, H', W').

    Channels-last: the strided slices ``x[:, s i - p + d a, s j - p + d b, :]`` of
    every tap (a, b) are concatenated into im2col columns and multiplied by the
    kernel in one matmul per group; when the columns would exceed 256 MB the taps
    are accumulated one by one instead.
    """
    B = x.shape[0]
    (ph, pw), (sh, sw), (dh, dw) = geom.padding, geom.stride, geom.dilation
    kh, kw = geom.kernel
    oh, ow = geom.out_hw
    dtype = np.result_type(x, w)
    xc = np.zeros((B, geom.in_hw[0] + 2 * ph, geom.in_hw[1] + 2 * pw, geom.in_channels), dtype=dtype)
    xc[:, ph:ph + geom.in_hw[0], pw:pw + geom.in_hw[1], :] = x.transpose(0, 2, 3, 1)
    g = geom.groups
    cin_g = geom.in_channels // g
    cout_g = geom.out_channels // g
    out = np.zeros((B, oh, ow, geom.out_channels), dtype=dtype)
    if g == geom.in_channels and cin_g == 1 and cout_g == 1:
        # depthwise (pooling): elementwise multiply-accumulate per tap
        for a in range(kh):
            for b in range(kw):
                tap = xc[:, a * dh: a * dh + sh * (oh - 1) + 1: sh, b * dw: b * dw + sw * (ow - 1) + 1: sw, :]
                out += tap * w[:, 0, a, b]
    elif B * oh * ow * kh * kw * geom.in_channels * np.dtype(dtype).itemsize <= _IM2COL_BYTES:
        # im2col with channels innermost: one matmul per group over (kh kw cin_g)
        taps = [xc[:, a * dh: a * dh + sh * (oh - 1) + 1: sh, b * dw: b * dw + sw * (ow - 1) + 1: sw, :]
                for a in range(kh) for b in range(kw)]
        for gi in range(g):
            cs = slice(gi * cin_g, (gi + 1) * cin_g)
            cols = np.concatenate([t[..., cs] for t in taps], axis=-1)  # (B, oh, ow, kh kw cin_g)
            wg = w[gi * cout_g:(gi + 1) * cout_g].transpose(2, 3, 1, 0).reshape(kh * kw * cin_g, cout_g)
            out[..., gi * cout_g:(gi + 1) * cout_g] = cols @ wg.astype(dtype, copy=False)
    else:
        wt = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=dtype)  # (kh, kw, cin_g, C_out)
        for a in range(kh):
            for b in range(kw):
                tap = xc[:, a * dh: a * dh + sh * (oh - 1) + 1: sh, b * dw: b * dw + sw * (ow - 1) + 1: sw, :]
                for gi in range(g):
                    cs = slice(gi * cin_g, (gi + 1) * cin_g)
                    os_ = slice(gi * cout_g, (gi + 1) * cout_g)
                    out[..., os_] += tap[..., cs] @ wt[a, b, :, os_]
    if bias is not None:
        out += bias.reshape(1, 1, 1, -1)
    return out.transpose(0, 3, 1, 2)


def conv2d_transpose(y: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Adjoint of :func:`conv2d` (gradient w.r.t. its input): (B, C_out, H', W') -> (B, C_in, H, W)."""
    B = y.shape[0]
    kh, kw = geom.kernel
    (ph, pw), (sh, sw), (dh, dw) = geom.padding, geom.stride, geom.dilation
    H, W = geom.in_hw
    oh, ow = geom.out_hw
    g = geom.groups
    cin_g, cout_g = geom.in_channels // g, geom.out_channels // g
    xp = np.zeros((B, geom.in_channels, H + 2 * ph + sh * oh + dh * kh, W + 2 * pw + sw * ow + dw * kw),
                  dtype=np.result_type(y, w))
    for gi in range(g):
        wg = w[gi * cout_g:(gi + 1) * cout_g]  # (cout_g, cin_g, kh, kw)
        yg = y[:, gi * cout_g:(gi + 1) * cout_g]
        contrib = np.einsum("bohw,ocij->bcijhw", yg, wg)
        for a in range(kh):
            for b in range(kw):
                xp[:, gi * cin_g:(gi + 1) * cin_g, a * dh: a * dh + sh * oh: sh, b * dw: b * dw + sw * ow: sw] += contrib[:, :, a, b]
    return xp[:, :, ph:ph + H, pw:pw + W]


def pool_geometry(channels: int, in_hw, kernel, stride, padding) -> ConvGeometry:
    """A pooling layer as a depthwise convolution geometry (groups = channels)."""
    return ConvGeometry(channels, channels, tuple(in_hw), tuple(kernel), tuple(stride), tuple(padding),
                        (1, 1), channels)


def pool_kernel(channels: int, kernel, average: bool) -> np.ndarray:
    """Depthwise kernel of a sum (ones) or average (1/(kh kw)) pooling."""
    kh, kw = kernel
    val = 1.0 / (kh * kw) if average else 1.0
    return np.full((channels, 1, kh, kw), val, dtype=np.float64)


def conv_synapses(w: np.ndarray, geom: ConvGeometry) -> int:
    """Number of (pre, post) pairs joined by a nonzero weight, edge effects included.

    ``sum_{o, c, a, b} [w != 0] * valid_h(a) * valid_w(b)`` where ``valid_h(a)``
    counts the output rows whose tap ``a`` lands inside the input.
    """
    nz = (w != 0).sum(axis=(0, 1)).astype(np.int64)  # (kh, kw)
    vh = geom.tap_valid(0).sum(axis=0).astype(np.int64)
    vw = geom.tap_valid(1).sum(axis=0).astype(np.int64)
    return int(vh @ nz @ vw)


def conv_fan_in_max(w: np.ndarray, geom: ConvGeometry) -> int:
    """Largest number of nonzero inputs of one output neuron."""
    vh = geom.tap_valid(0).astype(np.int64)
    vw = geom.tap_valid(1).astype(np.int64)
    nz = (w != 0).sum(axis=1).astype(np.int64)  # (C_out, kh, kw)
    best = 0
    for o in np.unique(nz.reshape(nz.shape[0], -1), axis=0):
        best = max(best, int((vh @ o.reshape(nz.shape[1:]) @ vw.T).max(initial=0)))
    return best


def conv_fan_out_max(w: np.ndarray, geom: ConvGeometry) -> int:
    """Largest number of outputs one input neuron feeds through nonzero weights."""
    uh = geom.tap_source(0).astype(np.int64)
    uw = geom.tap_source(1).astype(np.int64)
    g = geom.groups
    cout_g = geom.out_channels // g
    best = 0
    for gi in range(g):
        nz = (w[gi * cout_g:(gi + 1) * cout_g] != 0).sum(axis=0).astype(np.int64)  # (cin_g, kh, kw)
        for c in np.unique(nz.reshape(nz.shape[0], -1), axis=0):
            best = max(best, int((uh @ c.reshape(nz.shape[1:]) @ uw.T).max(initial=0)))
    return best
