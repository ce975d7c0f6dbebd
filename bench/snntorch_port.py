"""The snnTorch peer of the benchmarks: the float network of a NIR graph as torch ops
and ``snn.Leaky`` neurons, with the graph's weights, for ``bench/sim_speed.py`` and
``bench/scale.py`` (needs the ``bench`` extra: torch CPU and snntorch).

Per step, nodes run in the graph's evaluation order and a node with several inputs
sums them (ResNet's residual add), as in :mod:`models.reference`. Linear nodes:
``torch.nn.Conv2d`` / ``Linear`` (weights and bias copied), average pooling with
``count_include_pad=True``, sum pooling as that times the window, ``Flatten``. An IF
node becomes ``x * dt R`` (when not 1) into ``snn.Leaky(beta=1, threshold=theta,
reset_mechanism="subtract", reset_delay=True)``, which computes

    m[t] = m[t-1] + dt R I[t] - theta [m[t-1] > theta];   z[t] = [m[t] > theta]

``m[t]`` is the float reference's membrane before its reset, so the spikes are those
of its IF with subtractive reset (``v[t] = v[t-1] + dt R I[t]``, ``z[t] = [v[t] >=
theta]``, ``v[t] -= theta z[t]``). ``reset_delay=False`` is not: its guard against a
double reset cancels the reset whenever the membrane is still above threshold after
one, and suppresses that step's spike (a neuron with ``v[t-1] = 1.06``, ``theta =
1.03`` after a spike and input 0.81 fires in the reference, not in snnTorch), which
lost 1-6 % of the spikes of a layer on the shipped MLP, the NIR CNN and a balanced LeNet-5.
Left: snnTorch fires on ``m > theta`` where the reference fires on ``v >= theta``
(equality needs an exact float tie), and computes in float32 where the reference
uses float64, so a spike within float32 rounding of the threshold can differ; the
benchmarks report the agreement (equal counts on the shipped MLP and the NIR CNN).
"""

from __future__ import annotations

import numpy as np


def _pair(v):
    v = np.atleast_1d(np.asarray(v)).astype(int)
    return (int(v[0]), int(v[-1]))


class SnnTorchNet:
    """The graph's float network in torch + snnTorch (module docstring); feed-forward
    or residual, neuron nodes IF with a uniform ``r`` and threshold and ``v_reset = 0``."""

    def __init__(self, graph):
        import snntorch as snn
        import torch

        self.graph = graph
        self.order = [n for n in graph.order if n != graph.input_name]
        self.preds = {n: list(graph.preds[n]) for n in self.order}
        if graph.back_edges:
            raise SystemExit("snnTorch port: recurrent graphs are not supported")
        self.ops, self.neurons, self.scale = {}, {}, {}
        for n in self.order:
            nd = graph.nodes[n]
            kind = type(nd).__name__
            if kind == "Conv2d":
                w = torch.tensor(np.asarray(nd.weight, np.float32))
                conv = torch.nn.Conv2d(w.shape[1] * int(nd.groups), w.shape[0], tuple(w.shape[2:]),
                                       stride=_pair(nd.stride), padding=_pair(nd.padding),
                                       dilation=_pair(nd.dilation), groups=int(nd.groups), bias=True)
                conv.weight.data[:] = w
                conv.bias.data[:] = torch.tensor(
                    np.broadcast_to(np.asarray(nd.bias, np.float32), (w.shape[0],)).copy())
                self.ops[n] = conv
            elif kind in ("Affine", "Linear"):
                w = torch.tensor(np.asarray(nd.weight, np.float32))
                lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=kind == "Affine")
                lin.weight.data[:] = w
                if kind == "Affine":
                    lin.bias.data[:] = torch.tensor(np.asarray(nd.bias, np.float32))
                self.ops[n] = lin
            elif kind in ("SumPool2d", "AvgPool2d"):
                self.ops[n] = _pool(_pair(nd.kernel_size), _pair(nd.stride), _pair(nd.padding), kind == "SumPool2d")
            elif kind == "Flatten":
                self.ops[n] = torch.nn.Flatten(start_dim=1)
            elif kind == "Output":
                self.ops[n] = None
            elif kind == "IF":
                r = np.unique(np.asarray(nd.r))
                thr = np.unique(np.asarray(nd.v_threshold))
                if r.size != 1 or thr.size != 1 or float(np.max(np.abs(np.asarray(nd.v_reset)))) != 0.0:
                    raise SystemExit(f"snnTorch port: IF {n} needs uniform r and threshold and v_reset = 0")
                self.scale[n] = float(r[0]) * float(graph.dt)
                self.neurons[n] = snn.Leaky(beta=1.0, threshold=float(thr[0]), reset_mechanism="subtract",
                                            reset_delay=True)
            else:
                raise SystemExit(f"snnTorch port: node {n} of type {kind} not supported")

    def run(self, inputs: np.ndarray, batch: int):
        """Output spike counts (B, n_out) over inputs (T, B, ...), and every IF node's
        total spikes over the run (a dict)."""
        import torch

        T, B = inputs.shape[:2]
        counts, totals = [], {n: 0.0 for n in self.neurons}
        out = self.graph.output_name
        with torch.no_grad():
            for lo in range(0, B, batch):
                x = torch.from_numpy(np.ascontiguousarray(inputs[:, lo:lo + batch], dtype=np.float32))
                mems = {n: op.init_leaky() for n, op in self.neurons.items()}
                cnt = None
                for t in range(T):
                    cur = {self.graph.input_name: x[t]}
                    for n in self.order:
                        ps = self.preds[n]
                        h = cur[ps[0]]
                        for p in ps[1:]:
                            h = h + cur[p]
                        if n in self.neurons:
                            if self.scale[n] != 1.0:
                                h = h * self.scale[n]
                            h, mems[n] = self.neurons[n](h, mems[n])
                            totals[n] += float(h.sum())
                        elif self.ops[n] is not None:
                            h = self.ops[n](h)
                        cur[n] = h
                    cnt = cur[out].clone() if cnt is None else cnt + cur[out]
                counts.append(cnt.reshape(cnt.shape[0], -1).numpy())
        return np.concatenate(counts), totals


def _pool(k, s, p, summed: bool):
    import torch
    import torch.nn.functional as F

    class Pool(torch.nn.Module):
        def forward(self, x):
            y = F.avg_pool2d(x, k, s, p, count_include_pad=True)
            return y * (k[0] * k[1]) if summed else y

    return Pool()


def build_snntorch(graph) -> SnnTorchNet:
    """The snnTorch network of ``graph`` (:class:`SnnTorchNet`)."""
    return SnnTorchNet(graph)


def run_snntorch(net: SnnTorchNet, inputs: np.ndarray, batch: int) -> np.ndarray:
    """Output spike counts (B, n_out) of the snnTorch network over inputs (T, B, ...)."""
    return net.run(inputs, batch)[0]


def versions() -> dict:
    """torch and snntorch versions and torch's thread count, or ``{"torch": "not installed"}``."""
    try:
        import snntorch
        import torch
    except ImportError:
        return {"torch": "not installed"}
    return {"torch": torch.__version__, "torch threads": torch.get_num_threads(), "snntorch": snntorch.__version__}
