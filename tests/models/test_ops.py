"""Conv/pool kernels and their geometry against a brute-force loop."""

from __future__ import annotations

import numpy as np
import pytest

from models.ops import (ConvGeometry, conv2d, conv2d_transpose, conv_fan_in_max, conv_fan_out_max,
                        conv_out_size, conv_synapses)


def brute(x, w, g: ConvGeometry):
    B = x.shape[0]
    oh, ow = g.out_hw
    y = np.zeros((B, g.out_channels, oh, ow))
    cin_g, cout_g = g.in_channels // g.groups, g.out_channels // g.groups
    for o in range(g.out_channels):
        base = (o // cout_g) * cin_g
        for c in range(cin_g):
            for i in range(oh):
                for j in range(ow):
                    for a in range(g.kernel[0]):
                        for b in range(g.kernel[1]):
                            yy = g.stride[0] * i - g.padding[0] + g.dilation[0] * a
                            xx = g.stride[1] * j - g.padding[1] + g.dilation[1] * b
                            if 0 <= yy < g.in_hw[0] and 0 <= xx < g.in_hw[1]:
                                y[:, o, i, j] += w[o, c, a, b] * x[:, base + c, yy, xx]
    return y


CASES = [
    ConvGeometry(2, 4, (9, 8), (3, 3), (2, 2), (1, 1), (1, 1), 1),
    ConvGeometry(4, 6, (10, 10), (3, 3), (1, 1), (2, 2), (2, 2), 2),
    ConvGeometry(3, 3, (7, 7), (2, 2), (2, 2), (0, 0), (1, 1), 3),   # a pooling
    ConvGeometry(2, 5, (6, 11), (1, 5), (1, 3), (0, 2), (1, 1), 1),  # rectangular
]


@pytest.mark.parametrize("g", CASES)
def test_conv_matches_brute_force(g, rng):
    x = rng.standard_normal((2,) + g.in_shape)
    w = rng.standard_normal((g.out_channels, g.in_channels // g.groups) + g.kernel)
    w[w < -1.2] = 0.0  # some zero weights for the synapse counts
    np.testing.assert_allclose(conv2d(x, w, g), brute(x, w, g), atol=1e-12)
    gy = rng.standard_normal((2,) + g.out_shape)
    assert np.sum(gy * conv2d(x, w, g)) == pytest.approx(np.sum(conv2d_transpose(gy, w, g) * x))
    # explicit matrix: column n = response to a unit input n
    n_in = int(np.prod(g.in_shape))
    M = np.stack([conv2d(np.eye(n_in)[k].reshape((1,) + g.in_shape), w, g).ravel() for k in range(n_in)], 1)
    nz = M != 0
    assert conv_synapses(w, g) == nz.sum()
    assert conv_fan_in_max(w, g) == nz.sum(1).max()
    assert conv_fan_out_max(w, g) == nz.sum(0).max()


def test_out_size_formula():
    assert conv_out_size(34, 5, 2, 1) == 16   # the NIR paper CNN's first layer
    assert conv_out_size(224, 7, 2, 3) == 112  # ResNet stem
    assert conv_out_size(10, 3, 1, 2, 2) == 10
