"""Small graphs that together use every supported NIR primitive (test helpers)."""

from __future__ import annotations

import nir
import numpy as np

from models import Graph


def _f(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def all_primitives_graph(seed: int = 0) -> Graph:
    """Conv2d, LIF, SumPool2d, IF, AvgPool2d, Flatten, Scale, Threshold, Affine,
    CubaLIF (with a recurrent Linear), Delay, LI -- between Input and Output."""
    rng = np.random.default_rng(seed)
    ones = lambda *s: np.ones(s, dtype=np.float32)  # noqa: E731
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=_f(rng, 4, 2, 3, 3, scale=0.6), stride=(1, 1),
                           padding=(1, 1), dilation=(1, 1), groups=1, bias=_f(rng, 4, scale=0.1)),
        "lif": nir.LIF(tau=ones(4, 8, 8) * 4.0, r=ones(4, 8, 8) * 2.0, v_leak=ones(4, 8, 8) * 0.05,
                       v_threshold=ones(4, 8, 8) * 0.5, v_reset=np.zeros((4, 8, 8), np.float32)),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "if1": nir.IF(r=ones(4, 4, 4), v_threshold=ones(4, 4, 4) * 0.8, v_reset=np.zeros((4, 4, 4), np.float32)),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0, end_dim=-1),
        "scale": nir.Scale(scale=np.abs(_f(rng, 16)) + 0.5),
        "thr": nir.Threshold(threshold=ones(16) * 0.2),
        "aff": nir.Affine(weight=_f(rng, 12, 16, scale=0.7), bias=_f(rng, 12, scale=0.1)),
        "cuba": nir.CubaLIF(tau_syn=ones(12) * 2.0, tau_mem=ones(12) * 4.0, r=ones(12) * 2.0,
                            v_leak=np.zeros(12, np.float32), v_threshold=ones(12) * 0.5,
                            v_reset=np.zeros(12, np.float32), w_in=ones(12)),
        "rec": nir.Linear(weight=_f(rng, 12, 12, scale=0.4)),
        "delay": nir.Delay(delay=np.full(12, 2.0, dtype=np.float32)),
        "aff2": nir.Affine(weight=_f(rng, 6, 12), bias=_f(rng, 6, scale=0.1)),
        "li": nir.LI(tau=ones(6) * 3.0, r=ones(6), v_leak=np.zeros(6, np.float32)),
        "output": nir.Output(output_type={"output": np.array([6])}),
    }
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "sum"), ("sum", "if1"), ("if1", "avg"),
             ("avg", "flat"), ("flat", "scale"), ("scale", "thr"), ("thr", "aff"), ("aff", "cuba"),
             ("cuba", "rec"), ("rec", "cuba"), ("cuba", "delay"), ("delay", "aff2"), ("aff2", "li"),
             ("li", "output")]
    return Graph(nodes, edges, dt=1.0, metadata={"purpose": "test"})


def conv1d_graph(seed: int = 1) -> Graph:
    """Conv1d, IF, Flatten, Affine and the Integrator ``I``."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 16])}),
        "c1": nir.Conv1d(input_shape=16, weight=_f(rng, 3, 2, 3, scale=0.8), stride=2, padding=1,
                         dilation=1, groups=1, bias=_f(rng, 3, scale=0.1)),
        "if": nir.IF(r=np.ones((3, 8), np.float32), v_threshold=np.ones((3, 8), np.float32),
                     v_reset=np.zeros((3, 8), np.float32)),
        "flat": nir.Flatten(input_type={"input": np.array([3, 8])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=_f(rng, 5, 24), bias=_f(rng, 5, scale=0.1)),
        "int": nir.I(r=np.full(5, 0.5, np.float32)),
        "output": nir.Output(output_type={"output": np.array([5])}),
    }
    names = list(nodes)
    return Graph(nodes, list(zip(names[:-1], names[1:])), dt=0.5)


def recurrent_cuba_graph(n_in: int = 20, n: int = 16, seed: int = 2, dt: float = 1e-3) -> Graph:
    """Affine -> CubaLIF, with an Affine from the CubaLIF back onto itself (snnTorch-style dt)."""
    rng = np.random.default_rng(seed)
    tau_syn, tau_mem = 5e-3, 10e-3
    ones = np.ones(n, np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc_in": nir.Affine(weight=_f(rng, n, n_in, scale=0.8), bias=_f(rng, n, scale=0.05)),
        "cuba": nir.CubaLIF(tau_syn=ones * tau_syn, tau_mem=ones * tau_mem, r=ones * (tau_mem / dt),
                            v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones, w_in=ones * (tau_syn / dt)),
        "fc_rec": nir.Affine(weight=_f(rng, n, n, scale=0.5), bias=_f(rng, n, scale=0.05)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("input", "fc_in"), ("fc_in", "cuba"), ("cuba", "fc_rec"), ("fc_rec", "cuba"), ("cuba", "output")]
    return Graph(nodes, edges, dt=dt)


def cubali_graph(n_in: int = 12, n_hidden: int = 16, n_out: int = 5, seed: int = 3) -> Graph:
    """Affine -> LIF -> Affine -> CubaLI: NIR's current-based leaky integrator as a readout
    (CubaLIF without threshold; its output is the membrane)."""
    rng = np.random.default_rng(seed)
    ones = lambda *s: np.ones(s, dtype=np.float32)  # noqa: E731
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=_f(rng, n_hidden, n_in, scale=0.9), bias=_f(rng, n_hidden, scale=0.05)),
        "lif": nir.LIF(tau=ones(n_hidden) * 5.0, r=ones(n_hidden), v_leak=np.zeros(n_hidden, np.float32),
                       v_threshold=ones(n_hidden), v_reset=np.zeros(n_hidden, np.float32)),
        "fc2": nir.Affine(weight=_f(rng, n_out, n_hidden, scale=0.8), bias=_f(rng, n_out, scale=0.05)),
        "readout": nir.CubaLI(tau_syn=ones(n_out) * 3.0, tau_mem=ones(n_out) * 6.0, r=ones(n_out) * 2.0,
                              v_leak=np.zeros(n_out, np.float32), w_in=ones(n_out) * 1.5),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    names = list(nodes)
    return Graph(nodes, list(zip(names[:-1], names[1:])), dt=1.0)
