r"""Float reference simulators: the golden model of float behaviour.

:func:`simulate` runs a :class:`~models.graph.Graph` (node by node) or a lowered
:class:`~models.net.Net` (population by population) on a batch, in numpy float64.
Both implement the same discretisation, NIR's forward Euler with the graph's time
step ``dt``; for input current ``I[t]`` (the sum of the node's inputs at step t,
plus biases):

==========  ==================================================================
IF          :math:`v \leftarrow v + dt\,R\,I`
LIF         :math:`v \leftarrow v + \frac{dt}{\tau}(v_{leak} - v + R\,I)`
LI          as LIF, never spikes; output = v
I           :math:`v \leftarrow v + dt\,R\,I`, never spikes; output = v
CubaLIF     :math:`I_s \leftarrow I_s + \frac{dt}{\tau_{syn}}(-I_s + w_{in} I)`, then
            :math:`v \leftarrow v + \frac{dt}{\tau_{mem}}(v_{leak} - v + R\,I_s)`
CubaLI      as CubaLIF, never spikes; output = v
Threshold   :math:`z = [I \ge \theta]` (stateless)
ANN         :math:`a = \min(\max(I, 0), a_{max})` (stateless; output = a; a
            quantised ReLU unit of a hybrid network, built as a Net population)
==========  ==================================================================

Each line is one model's ``float_update`` in the table :mod:`models.neurons`.

Spikes and reset (NIR leaves both open; they are options here and everywhere):

* ``spikes="binary"``: :math:`z = [v \ge \theta]` (at most one spike per step);
  ``spikes="multi"``: :math:`z = \lfloor v/\theta \rfloor` for :math:`v \ge \theta`,
  else 0 (Sinabs' IAF).
* ``reset="subtract"``: :math:`v \leftarrow v - z\,\theta`;
  ``reset="zero"``: :math:`v \leftarrow v_{reset}` where :math:`z > 0`.

Firing uses ``>=`` so that binary and multi agree on when a neuron fires
(:math:`\lfloor v/\theta\rfloor \ge 1 \iff v \ge \theta`).

Membrane floor (NIR does not carry it; Sinabs' ``min_v_mem``, Speck's -1 x threshold):
after the spike and the reset, :math:`v \leftarrow \max(v, v_{min})` for every neuron
with a state (IF, LIF, CubaLIF, LI, CubaLI, I), as Sinabs' ``lif_forward_single`` clips after
its reset. ``v_min=None`` (the default): no floor; a number: the same floor for every
neuron; ``"-threshold"``: :math:`v_{min} = -\theta` per neuron (what Sinabs' NIR import
sets for an IF node). The framework defaults are :data:`models.frameworks.SOURCES`.

Order within a step: nodes in the graph's topological order with recurrent
(back) edges removed; a back edge carries its source's value of the previous step
(zero at step 0); a ``Delay`` node of ``d`` time units outputs its input of
``round(d/dt)`` steps ago (zero before). All state starts at zero.

Integer semantics
-----------------
After ``mapper.quantize`` the network runs in integers: signed ``weight_bits``
weights, a saturating ``membrane_bits`` membrane, leaks as fixed-point multiplies
with ``leak_frac_bits`` fraction bits and round-half-up shifts, integer thresholds
and resets. The exact update equations -- the contract that ``hwsim`` must match
spike for spike and membrane value for membrane value -- and the integer reference
simulator ``simulate_int`` live in :mod:`models.intref`; its module docstring is
the single place they are written down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .neurons import NIR_NEURON_TYPES, fire_float, model as neuron_model
from .errors import SimulationError
from .graph import Graph, conv_geometry, node_type
from .net import Net
from .ops import conv2d, pool_kernel

RESET_MODES = ("zero", "subtract")
#: the symbolic membrane floor: minus each neuron's threshold
V_MIN_THRESHOLD = "-threshold"
SPIKE_MODES = ("binary", "multi")


@dataclass
class SimResult:
    """Outputs of a reference run.

    ``output``: (T, B, *output_shape) values of the network output (spikes for a
    spiking output layer). ``spikes`` / ``membrane``: recorded populations (or
    nodes), each (T, B, n) flat. ``counts`` = output summed over time, (B, n).
    ``spike_totals``: every spiking population's total spikes over the run, and
    ``sizes`` its neuron count, for firing rates without recording.
    """

    output: np.ndarray
    spikes: dict = field(default_factory=dict)
    membrane: dict = field(default_factory=dict)
    spike_totals: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)

    def firing_rates(self) -> dict:
        """Mean spikes per neuron per step, per spiking population."""
        T, B = self.output.shape[:2]
        return {k: v / (T * B * self.sizes[k]) for k, v in self.spike_totals.items()}

    @property
    def counts(self) -> np.ndarray:
        return self.output.reshape(self.output.shape[0], self.output.shape[1], -1).sum(axis=0)

    def predict(self) -> np.ndarray:
        """Class = argmax of the output summed over time; ties go to the lowest index."""
        return np.argmax(self.counts, axis=1)

    def accuracy(self, labels: np.ndarray) -> float:
        return float(np.mean(self.predict() == np.asarray(labels)))


def check_options(reset: str, spikes: str):
    """Raise :class:`SimulationError` unless ``reset`` is one of ``RESET_MODES`` and
    ``spikes`` one of ``SPIKE_MODES``."""
    if reset not in RESET_MODES:
        raise SimulationError(f"reset must be one of {RESET_MODES}, got {reset!r}")
    if spikes not in SPIKE_MODES:
        raise SimulationError(f"spikes must be one of {SPIKE_MODES}, got {spikes!r}")


def check_v_min(v_min):
    """Raise :class:`SimulationError` unless ``v_min`` is None, a finite number <= 0 or ``"-threshold"``."""
    if v_min is None or (isinstance(v_min, str) and v_min == V_MIN_THRESHOLD):
        return v_min
    if isinstance(v_min, bool) or not isinstance(v_min, (int, float, np.integer, np.floating)) \
            or not np.isfinite(v_min) or v_min > 0:
        raise SimulationError(f"v_min must be None, a finite number <= 0 or {V_MIN_THRESHOLD!r}, got {v_min!r}")
    return float(v_min)


def check_inputs(x: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    """Inputs ``(T, B, *shape)`` of input ``name`` as ``(T, B, n)``; raises :class:`SimulationError`."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise SimulationError(f"inputs must be (T, B, *{shape}), got shape {x.shape}")
    if x.shape[0] < 1:
        raise SimulationError("steps must be >= 1 (inputs have 0 time steps)")
    if int(np.prod(x.shape[2:])) != int(np.prod(shape)):
        raise SimulationError(
            f"inputs of shape {x.shape} do not match input '{name}' of shape {tuple(shape)} "
            f"(expected (T, B, {', '.join(map(str, shape))}))"
        )
    if not np.all(np.isfinite(x)):
        raise SimulationError("inputs contain NaN or infinite values")
    return x.reshape(x.shape[0], x.shape[1], -1)


class NeuronState:
    """State and update of one population/node of neurons, flat (B, n) float64: the
    model's ``float_update`` (:mod:`models.neurons`), then spikes, reset and floor."""

    def __init__(self, model: str, params: dict, batch: int, n: int, dt: float, reset: str, spikes: str,
                 v_min=None):
        self.model, self.p, self.dt = model, params, dt
        self.m = m = neuron_model(model)
        if not m.state:
            v_min = None
        elif v_min == V_MIN_THRESHOLD:
            v_min = -np.asarray(params[m.threshold], dtype=np.float64) if m.spikes else None
        self.v_min = v_min
        self.reset, self.spike_mode = reset, spikes
        self.v = np.zeros((batch, n))
        self.spiking = m.spikes
        self.i_syn = np.zeros((batch, n)) if m.current else None

    def step(self, I: np.ndarray) -> np.ndarray:
        m = self.m
        self.v, self.i_syn = m.float_update(self.p, self.dt, self.v, self.i_syn, I)
        if not m.state:  # Threshold: z = [I >= theta]; Identity: v = I
            return (I >= self.p[m.threshold]).astype(np.float64) if m.spikes else self.v
        z = None
        if m.spikes:
            z, self.v = fire_float(self.v, self.p[m.threshold], self.p.get("v_reset"), self.reset,
                                           self.spike_mode)
        if self.v_min is not None:
            self.v = np.maximum(self.v, self.v_min)
        return z if m.spikes else self.v.copy()


def _linear_graph_op(graph: Graph, name: str):
    """A function (B, n_in) -> (B, n_out) for a stateless node of the graph, bias included."""
    node = graph.nodes[name]
    t = node_type(node)
    s_in, s_out = graph.shapes[name]
    if t in ("Affine", "Linear"):
        W = np.asarray(node.weight, dtype=np.float64)
        b = np.asarray(node.bias, dtype=np.float64) if t == "Affine" else 0.0
        return lambda x: x @ W.T + b
    if t in ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d"):
        geom = conv_geometry(node, s_in, graph._where(name))
        if t.startswith("Conv"):
            w = np.asarray(node.weight, dtype=np.float64)
            b = np.broadcast_to(np.asarray(node.bias, dtype=np.float64).ravel(), (geom.out_channels,))
            if t == "Conv1d":
                w = w[:, :, None, :]
        else:
            w, b = pool_kernel(geom.in_channels, geom.kernel, t == "AvgPool2d"), None
        return lambda x: conv2d(x.reshape((x.shape[0],) + geom.in_shape), w, geom, b).reshape(x.shape[0], -1)
    if t == "Scale":
        s = np.broadcast_to(np.asarray(node.scale, dtype=np.float64), s_in).ravel()
        return lambda x: x * s
    if t in ("Flatten", "Output"):
        return lambda x: x
    raise SimulationError(f"{graph._where(name)}: no linear operator for {t}")


def recorded(record, names) -> set:
    """The names a ``record=`` argument selects: None -> none, ``"all"`` -> ``names``, else its items."""
    if record is None:
        return set()
    if record == "all":
        return set(names)
    return set(record)


def simulate_graph(graph: Graph, inputs: np.ndarray, *, reset: str = "subtract", spikes: str = "binary",
                   record=None, progress: bool = False, v_min=None) -> SimResult:
    """Run a :class:`Graph` node by node. ``inputs`` is (T, B, *input_shape).

    ``record`` = ``"all"`` or a list of neuron node names whose spikes (output)
    and membrane are returned, each (T, B, n). ``v_min``: the membrane floor (module
    docstring).
    """
    check_options(reset, spikes)
    v_min = check_v_min(v_min)
    x = check_inputs(inputs, graph.input_shape, graph.input_name)
    T, B = x.shape[:2]
    ops, neurons, delays = {}, {}, {}
    for name in graph.order:
        t = node_type(graph.nodes[name])
        if t in NIR_NEURON_TYPES:
            n = int(np.prod(graph.shapes[name][1]))
            neurons[name] = NeuronState(*graph.neuron_model(name), B, n, graph.dt, reset, spikes, v_min)
        elif t == "Delay":
            d = np.rint(np.broadcast_to(np.asarray(graph.nodes[name].delay, dtype=np.float64),
                                        graph.shapes[name][1]).ravel() / graph.dt).astype(np.int64)
            delays[name] = (d, np.zeros((int(d.max(initial=0)) + 1, B, d.size)))
        elif t != "Input":
            ops[name] = _linear_graph_op(graph, name)
    want = recorded(record, neurons)
    rec_s = {k: np.zeros((T, B, neurons[k].v.shape[1])) for k in want}
    rec_v = {k: np.zeros((T, B, neurons[k].v.shape[1])) for k in want}
    out_name = graph.output_name
    totals = {k: 0.0 for k, st in neurons.items() if st.spiking}
    prev = {k: np.zeros((B, int(np.prod(graph.shapes[k][1])))) for k in graph.nodes}
    output = np.zeros((T, B, int(np.prod(graph.output_shape))))
    steps = range(T)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="reference", unit="step", leave=False)
    for t in steps:
        cur = {}
        for name in graph.order:
            if name == graph.input_name:
                cur[name] = x[t].astype(np.float64)
                continue
            I = None
            for p in graph.preds[name]:
                v = prev[p] if (p, name) in graph.back_edges else cur[p]
                I = v if I is None else I + v
            if name in neurons:
                cur[name] = neurons[name].step(I)
                if neurons[name].spiking:
                    totals[name] += float(cur[name].sum())
                if name in want:
                    rec_s[name][t] = cur[name]
                    rec_v[name][t] = neurons[name].v
            elif name in delays:
                d, buf = delays[name]
                buf[t % buf.shape[0]] = I
                cols = np.arange(d.size)
                cur[name] = np.where(t - d >= 0, buf[(t - d) % buf.shape[0], :, cols].T, 0.0)
            else:
                cur[name] = ops[name](I)
        output[t] = cur[out_name]
        prev = cur
    shape = (T, B) + tuple(graph.output_shape)
    sizes = {k: neurons[k].v.shape[1] for k in totals}
    return SimResult(output.reshape(shape), rec_s, rec_v, totals, sizes)


def simulate_net(net: Net, inputs: np.ndarray, *, reset: str = "subtract", spikes: str = "binary",
                 record=None, progress: bool = False, v_min=None) -> SimResult:
    """Run a lowered :class:`Net` population by population (same semantics as the graph)."""
    check_options(reset, spikes)
    v_min = check_v_min(v_min)
    x = check_inputs(inputs, net.input.shape, net.input.name)
    T, B = x.shape[:2]
    states = {p.name: NeuronState(p.model, p.params, B, p.size, net.dt, reset, spikes, v_min)
              for p in net.populations[1:]}
    incoming = {p.name: net.incoming(p.name) for p in net.populations}
    max_delay = {p.name: 0 for p in net.populations}
    for q in net.projections:
        max_delay[q.src] = max(max_delay[q.src], q.delay_steps)
    hist = {k: np.zeros((d + 1, B, net.pop[k].size)) for k, d in max_delay.items() if d > 0}
    want = recorded(record, states)
    rec_s = {k: np.zeros((T, B, net.pop[k].size)) for k in want}
    rec_v = {k: np.zeros((T, B, net.pop[k].size)) for k in want}
    out_pop = net.pop[net.output]
    output = np.zeros((T, B, out_pop.size))
    totals = {p.name: 0.0 for p in net.populations[1:] if p.spiking}
    cached: dict = {}
    steps = range(T)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="reference", unit="step", leave=False)
    for t in steps:
        cur = {net.input.name: x[t].astype(np.float64)}
        for pop in net.populations[1:]:
            I = np.zeros((B, pop.size)) if pop.bias is None else np.broadcast_to(pop.bias, (B, pop.size)).copy()
            for q in incoming[pop.name]:
                if q.delay_steps == 0 and q.src == net.input.name:
                    # a repeated input (direct encoding) is projected once
                    if cached.get(q.name) is None or not np.array_equal(cached[q.name][0], x[t]):
                        cached[q.name] = (x[t], q.apply(cur[q.src]))
                    I += cached[q.name][1]
                elif q.delay_steps == 0:
                    I += q.apply(cur[q.src])
                elif t >= q.delay_steps:
                    buf = hist[q.src]
                    I += q.apply(buf[(t - q.delay_steps) % buf.shape[0]])
                for start, vec in q.bias_terms:
                    if t >= start:
                        I += vec
            cur[pop.name] = states[pop.name].step(I)
            if pop.spiking:
                totals[pop.name] += float(cur[pop.name].sum())
            if pop.name in want:
                rec_s[pop.name][t] = cur[pop.name]
                rec_v[pop.name][t] = states[pop.name].v
        for k, buf in hist.items():
            buf[t % buf.shape[0]] = cur[k]
        output[t] = cur[net.output]
    sizes = {k: net.pop[k].size for k in totals}
    return SimResult(output.reshape((T, B) + tuple(out_pop.shape)), rec_s, rec_v, totals, sizes)


def simulate(model, inputs: np.ndarray, **kw) -> SimResult:
    """Run a :class:`Graph` or a :class:`Net`; see :func:`simulate_graph`."""
    if isinstance(model, Graph):
        return simulate_graph(model, inputs, **kw)
    if isinstance(model, Net):
        return simulate_net(model, inputs, **kw)
    raise SimulationError(f"simulate: expected a Graph or a Net, got {type(model).__name__}")
