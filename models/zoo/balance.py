r"""Data-based threshold balancing of a zoo model's IF layers (realistic activity for
random weights), and the image-like calibration inputs it is measured on.

The zoo's He-normal random weights with threshold 1 leave deep layers silent (VGG-11
CIFAR: no spike after its second layer). ANN-to-SNN conversion faces the same
problem and solves it with data: Diehl et al. 2015 ("weight and threshold
balancing", the maximum activation of each layer on the training set) and Rueckauer
et al. 2017 ("robust normalization": the p-th percentile, p = 99.9 to 99.999, of
the layer's activations instead of the maximum, so one outlier does not silence the
layer). :func:`balance` applies it to a :class:`~models.graph.Graph`, layer by
layer in evaluation order, measured on the network itself:

for IF layer ``l`` (after layers ``< l`` are balanced), run the float reference
(:func:`models.simulate`) on the calibration inputs ``x`` (T steps, B samples) and
take each neuron's **pre-activation**, its mean input per step

.. math:: a_{b,n} = \frac{1}{T} \sum_{t<T} dt\,R_n\,I_{b,n}[t]

(``I`` the sum of the layer's inputs, bias included: exactly what the membrane
receives). For spikes of rate ``r_{l-1}`` in, ``a`` is the ANN activation
``W_l r_{l-1} + b_l`` that conversion normalises. The new threshold is

.. math:: \theta_l = P_p\{a_{b,n} : a_{b,n} > 0\}

the ``p``-th percentile of the positive pre-activations (the nonzero outputs of
the ReLU the IF layer stands for) over all samples and neurons of the layer, the
same for every neuron of the layer. An IF neuron with subtractive reset then fires
at about ``a / theta`` spikes per step (at most one), so the layer's rate is about
``mean(max(a, 0)) / P_p``: for a Gaussian-like ``a`` about 13 %, whatever the
weight scale; fewer over a few steps, since a neuron fires about
``floor(T a / theta)`` times in T steps (``count theta + v[T] = T a`` exactly). Measured at T = 4 (rate-coded smooth images, 10 % input spikes):
LeNet-5 CIFAR goes from 7.6, 3.2, 0.3, 0, 0 % to 7.2, 7.7, 7.1, 6.4, 6.3 % per layer
on its 16 calibration samples; VGG-11 CIFAR from 6.0, 1.1 %, then 0 %, to 3.8-10 %
in every layer on other inputs (``bench/results/scale.md``).

**Thresholds, not weights.** Rueckauer et al. scale the weights,
``W_l <- W_l lambda_{l-1} / lambda_l`` with threshold 1; here each IF node's
``v_threshold`` is set to ``theta_l`` and the weights stay the zoo's seeded draws.
For IF neurons with ``v_reset = 0`` both give the same spikes (the membrane is
scaled by ``1/theta_l``), and on the chip the same integers
(:mod:`mapper.quantize` takes the membrane unit from ``max|w|``, so ``W / theta``
with threshold 1 and ``W`` with threshold ``theta`` round to the same integer
weights and threshold, up to a float rounding tie). Thresholds also balance a residual sum (ResNet's
``if2`` adds a weighted branch and an identity skip that has no weight to scale)
and keep the graph's weights comparable across balancing runs.

Measuring layer ``l`` with its own threshold raised to the float32 maximum (it
never fires, so its membrane after T steps is ``T`` times the mean pre-activation)
makes the statistic independent of the reset mode. The reference is run once per
IF layer on the whole network, so balancing costs ``L`` float reference runs.
Deterministic: no randomness beyond the calibration inputs, which
:func:`calibration_inputs` draws from a seed.
"""

from __future__ import annotations

import nir
import numpy as np

from ..datasets import encode_poisson
from ..errors import ParameterError, UnsupportedNodeError
from ..graph import Graph, node_type
from ..reference import simulate

#: the threshold a layer gets while it is being measured: it never fires
_NEVER = np.float32(np.finfo(np.float32).max)


def smooth_images(shape, samples: int, *, block: int = 4, seed: int = 0) -> np.ndarray:
    """``samples`` random images of ``shape`` (C, H, W) with intensities in [0, 1):
    uniform values on a grid of ``block`` x ``block`` pixel blocks, so neighbouring
    pixels are correlated as in natural images. float32 (samples, C, H, W).
    """
    C, H, W = (int(v) for v in shape)
    if samples < 1 or block < 1 or H % block or W % block:
        raise ParameterError(f"smooth_images: samples >= 1 and a block dividing {H}x{W} needed, "
                             f"got samples={samples}, block={block}")
    rng = np.random.default_rng(seed)
    img = rng.random((samples, C, H // block, W // block), dtype=np.float32)
    return img.repeat(block, axis=2).repeat(block, axis=3)


def calibration_inputs(shape, samples: int, steps: int, *, rate: float = 0.2, block: int = 4,
                       seed: int = 0) -> np.ndarray:
    """Rate-coded smooth random images: :func:`smooth_images` scaled by ``rate`` (spikes
    per pixel and step at full intensity) and Bernoulli-coded
    (:func:`models.datasets.encode_poisson`). float32 (steps, samples, C, H, W) of 0/1;
    the same seed gives the same array.
    """
    if not 0 < rate <= 1:
        raise ParameterError(f"calibration_inputs: rate must be in (0, 1], got {rate}")
    img = smooth_images(shape, samples, block=block, seed=seed)
    return encode_poisson(img * np.float32(rate), steps, seed=seed + 1)


def _with_threshold(node: nir.IF, theta) -> nir.IF:
    s = np.shape(node.v_threshold)
    return nir.IF(r=node.r, v_threshold=np.broadcast_to(np.float32(theta), s), v_reset=node.v_reset)


def balance(graph: Graph, calib_inputs: np.ndarray, percentile: float = 99.9, *,
            reset: str = "subtract", spikes: str = "binary") -> Graph:
    """A copy of ``graph`` whose IF layers have data-based thresholds (module docstring).

    Parameters
    ----------
    graph : Graph
        Feed-forward or residual graph whose neuron nodes are all ``nir.IF`` (the zoo's).
    calib_inputs : array (T, B, *input_shape)
        Calibration inputs, e.g. :func:`calibration_inputs` (not the evaluation inputs).
    percentile : float in (0, 100]
        ``p`` of the percentile of the positive pre-activations (99.9: Rueckauer et al.).
    reset, spikes : str
        The float reference's options (:func:`models.simulate`) for the layers below.

    Returns
    -------
    Graph
        The same nodes and edges; every IF node's ``v_threshold`` is ``theta_l``
        (float32, uniform over the layer); ``metadata["balance"]`` holds ``percentile``,
        the calibration ``steps`` and ``samples``, and ``thresholds`` by node name.

    Raises
    ------
    ParameterError
        ``percentile`` out of range, or a layer with no positive pre-activation on the
        calibration inputs (it cannot be balanced: its input is silent or inhibitory).
    UnsupportedNodeError
        a neuron node that is not IF.
    SimulationError
        calibration inputs of the wrong shape (from :func:`models.simulate`).
    """
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.integer, np.floating)) \
            or not 0 < percentile <= 100:
        raise ParameterError(f"balance: percentile must be in (0, 100], got {percentile!r}")
    layers = graph.neuron_nodes()
    other = [n for n in layers if node_type(graph.nodes[n]) != "IF"]
    if other:
        raise UnsupportedNodeError(f"balance: only IF layers are balanced; {other[0]!r} is "
                                   f"{node_type(graph.nodes[other[0]])}")
    x = np.asarray(calib_inputs)
    nodes = dict(graph.nodes)
    thresholds = {}
    for name in (n for n in graph.order if n in layers):
        nodes[name] = _with_threshold(graph.nodes[name], _NEVER)
        probe = Graph(nodes, graph.edges, dt=graph.dt, metadata=graph.metadata)
        v = simulate(probe, x, record=[name], reset=reset, spikes=spikes).membrane[name]
        a = v[-1] / v.shape[0]  # (B, n): mean dt R I per step
        pos = a[a > 0]
        if pos.size == 0:
            raise ParameterError(f"balance: layer {name!r} has no positive pre-activation on the "
                                 f"{a.shape[0]} calibration samples x {v.shape[0]} steps")
        theta = float(np.float32(np.percentile(pos, percentile)))
        thresholds[name] = theta
        nodes[name] = _with_threshold(graph.nodes[name], theta)
    meta = dict(graph.metadata)
    meta["balance"] = {"percentile": float(percentile), "steps": int(x.shape[0]), "samples": int(x.shape[1]),
                       "thresholds": thresholds}
    return Graph(nodes, graph.edges, dt=graph.dt, metadata=meta, source=graph.source)
