r"""The weight-stationary chip simulator: runs a :class:`mapper.stationary.StationaryMapping`
as a crossbar accelerator does (one kernel copy per layer, output positions streamed), with
its counters and its step timing. ``hwsim.simulate`` dispatches here for a mapping whose
chip has ``core.conv_mapping: weight_stationary``. Like the rest of ``hwsim`` it does not
import ``mapper``: it reads the mapping's data (``net``, ``chip``, ``layers``, ``resources()``).

Per step ``t`` the populations are evaluated in net order, as :mod:`models.intref`
defines them; a population's input current is

    I[n] = b[n] + sum_j rshift_round(acc_j[n], k_j) + bias_terms

and ``acc_j`` of projection ``j`` is computed by the machine of its layer
(:func:`mapper.stationary.layer_of`, ``A = core.axons``, ``N = core.neurons``):

* **conv** (kernel ``K``, stride ``S``, padding ``P``, ``g`` groups, pool factor ``p``
  per axis): the digital unit sum-pools the source's output ``x`` (``C x H x W``) in
  ``p_h x p_w`` blocks, ``xp[c, r, s] = sum_{u < p_h, v < p_w} x[c, p_h r + u, p_w s + v]``
  (zero outside the map); the crossbar holds the factored kernel
  ``w'[o, c, a, b] = w[o, c, p_h a, p_w b]`` (the composed integer kernel is constant on
  ``p``-blocks, asserted: then ``sum x w = sum xp w'`` exactly, for a sum pool as for an
  average pool, whose ``1/p^2`` lowering folded into the quantised weights; the chip's
  pooling unit adds, it never divides). For every output position ``(i, j)`` the input
  vector is the patch ``v[(c, a, b)] = xp[c, (S/p) i - P/p + d a, (S/p) j - P/p + d b]``
  (``rows = (C_in/g) k_h k_w``, ordered ``(c, a, b)``), driven into the ``ceil(rows / A)``
  row chunks of the group's matrix; chunk ``r`` gives the partial sums
  ``psum_r[col] = sum_{rows in chunk r} v[row] W[row, col]`` and the digital unit adds
  them, ``acc[col] = sum_r psum_r[col]`` in int64 (the unrolled engine's accumulator:
  exact, never saturated; :mod:`models.intref` "I is not saturated"). Column blocks of
  ``N`` split the columns only.
* **dense** (``W`` of ``n_post x K``, optional 0/1 ``pre_map`` ``P``): the digital unit
  forms ``x' = P x`` (pooling / flatten adds), one position drives ``x'`` into the row
  chunks, partial sums added as above. A non-diagonal sparse projection is the dense
  matrix of its nonzero rows.
* **digital** (no crossbar): a depthwise ``1 x 1`` conv after factoring,
  ``acc[c, i, j] = w[c] xp[c, (S/p) i - P/p, (S/p) j - P/p]``, or a diagonal sparse
  projection ``acc[n] = w[n] x[n]`` (an identity skip).

Neurons update with the integer contract (:class:`models.intref.IntNeuronState`: each
model's ``int_update`` of the table :mod:`models.neurons`, then spikes, reset, floor).

Counters (per step, summed over samples; :data:`COUNTERS`), on the first core of the layer
(:func:`core_layout`; a population's neuron counters on the first core of its first
crossbar layer): ``crossbar_reads`` = ``positions x crossbars`` of every crossbar layer
(every position reads every crossbar, an all-zero input vector included: the cycle
formula counts those reads too); ``acs`` / ``macs`` = cell operations ``positions x g x
rows x columns`` (the mapping's "work per step"), MACs when the source sends values
(:meth:`models.net.Net.is_mac`), else ACs; ``events`` = nonzero entries of the input
vectors driven (data); ``psum_ops`` = ``positions x g x (row_chunks - 1) x columns`` adds
of partial sums; ``digital_adds`` = pooling adds and digital-layer products;
``neuron_updates`` = neurons x 1 per step; ``state_words`` = their ``state_words``;
``spikes`` = the spike count of spiking populations; ``busy_cycles`` = the layer's
``cycles``; ``packets``, ``flits``, ``flit_hops`` = 0 (activations between layers are not
simulated on the NoC).

Timing (sync; data-independent): every step takes the mapping's ``cycles_per_step``
(:func:`mapper.stationary.cycles_per_step`) cycles (``max`` with a fixed ``timing.step_cycles``, then an overrun is counted when the
layers need more); ``latency_cycles = total_cycles = T x step``, ``latency_us =
latency_cycles / clock_hz``, ``throughput_inf_s = clock_hz / latency_cycles``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models import limits, neurons
from models.errors import SimulationError, SizeLimitError
from models.intarith import rshift_round
from models.intref import IntNeuronState, encode_input, int_v_min, quant_meta
from models.net import ConvProjection, DenseProjection
from models.reference import check_options, check_v_min

from .result import RunResult

__all__ = ["simulate_stationary", "COUNTERS", "core_layout", "StationaryLayerOp"]

COUNTERS = ("crossbar_reads", "events", "acs", "macs", "psum_ops", "digital_adds", "neuron_updates",
            "state_words", "spikes", "packets", "flits", "flit_hops", "busy_cycles")
_C = {n: i for i, n in enumerate(COUNTERS)}
#: im2col buffers hold at most this many elements (8 bytes each): memory follows the
#: weights and neurons, not the synapses
_COLS_BUDGET = 1 << 22
#: a float64 product of integers is exact while every partial sum stays below this
_F64_EXACT = 1 << 53


def _chunked_matmul(v: np.ndarray, W: np.ndarray, A: int, wabs_cols: list) -> np.ndarray:
    """``sum_r v[:, chunk r] @ W[chunk r, :]`` over row chunks of ``A`` rows, each chunk's
    partial sums formed on their own and added in int64 (float64 BLAS when the chunk's
    bound ``max|v| x max_col sum|W|`` is below 2^53, exact; else int64)."""
    rows = W.shape[0]
    acc = np.zeros((v.shape[0], W.shape[1]), dtype=np.int64)
    vmax = int(np.abs(v).max(initial=0))
    if vmax == 0:
        return acc
    for k, r0 in enumerate(range(0, rows, A)):
        r1 = min(rows, r0 + A)
        if wabs_cols[k] * vmax < _F64_EXACT:
            acc += (v[:, r0:r1].astype(np.float64) @ W[r0:r1].astype(np.float64)).astype(np.int64)
        else:
            acc += v[:, r0:r1].astype(np.int64) @ W[r0:r1].astype(np.int64)
    return acc


def _col_bounds(W: np.ndarray, A: int) -> list:
    return [int(np.abs(W[r0:r0 + A].astype(np.int64)).sum(axis=0).max(initial=0)) for r0 in range(0, W.shape[0], A)]


def _sum_pool(x: np.ndarray, p: tuple) -> np.ndarray:
    """``xp[b, c, r, s] = sum_{u, v} x[b, c, p_h r + u, p_w s + v]`` (zero beyond the map)."""
    ph, pw = p
    if (ph, pw) == (1, 1):
        return x
    B, C, H, W = x.shape
    Hp, Wp = -(-H // ph), -(-W // pw)
    if (Hp * ph, Wp * pw) != (H, W):
        z = np.zeros((B, C, Hp * ph, Wp * pw), dtype=x.dtype)
        z[:, :, :H, :W] = x
        x = z
    return x.reshape(B, C, Hp, ph, Wp, pw).sum(axis=(3, 5))


class StationaryLayerOp:
    """One projection's integer machine (module docstring): ``op(x) -> (acc, events)`` for a
    batch ``x`` (B, n_pre) int64, ``acc`` (B, n_post) int64 before the shift, ``events`` the
    nonzero input-vector entries driven; ``per_step`` = the data-independent counters of one
    sample and step (``crossbar_reads``, ``acs``/``macs``, ``psum_ops``, ``digital_adds``,
    ``busy_cycles``)."""

    def __init__(self, q, lay, chip, is_mac: bool):
        self.q, self.lay = q, lay
        self.A = int(chip.core.axons)
        ops = lay.positions * lay.groups * lay.rows * lay.columns
        self.per_step = {"crossbar_reads": lay.positions * lay.crossbars,
                         "macs" if is_mac else "acs": ops,
                         "psum_ops": lay.positions * lay.groups * max(0, lay.row_chunks - 1) * lay.columns,
                         "busy_cycles": lay.cycles, "digital_adds": 0}
        if isinstance(q, ConvProjection):
            self._init_conv(q, lay)
        elif isinstance(q, DenseProjection):
            self.pre_map = None if q.pre_map is None else sp.csr_matrix(q.pre_map, dtype=np.int64)
            self.W = np.asarray(q.weight, dtype=np.int64).T  # (K, n_post)
            self.bounds = _col_bounds(self.W, self.A)
            if self.pre_map is not None:
                self.per_step["digital_adds"] = int(self.pre_map.nnz - np.count_nonzero(np.diff(self.pre_map.indptr)))
            self.kind = "dense"
        else:  # sparse
            csr = sp.csr_matrix(q.csr, dtype=np.int64)
            if lay.kind == "digital":
                self.diag = csr
                self.per_step["digital_adds"] = int(csr.nnz)
                self.kind = "diag"
            else:
                self.rows = np.flatnonzero(np.diff(csr.indptr))
                self.W = csr[self.rows].toarray()  # (rows, n_post): the crossbar matrix
                self.bounds = _col_bounds(self.W, self.A)
                self.kind = "sparse"

    def _init_conv(self, q, lay):
        g = q.geom
        ph, pw = lay.pool
        w = np.asarray(q.weight, dtype=np.int64)
        if (ph, pw) != (1, 1):
            if g.dilation != (1, 1):
                raise SimulationError(f"projection '{q.name}': a pooling factored out of a dilated kernel")
            sub = w[:, :, ::ph, ::pw]
            if not np.array_equal(np.repeat(np.repeat(sub, ph, axis=2), pw, axis=3), w):
                raise SimulationError(f"projection '{q.name}': the composed kernel is not constant on its "
                                      f"{ph}x{pw} pooling blocks; the factoring is not exact")
            w = sub
        self.stride = (g.stride[0] // ph, g.stride[1] // pw)
        self.padding = (g.padding[0] // ph, g.padding[1] // pw)
        self.dil = g.dilation
        self.kernel = w.shape[2:]
        self.out_hw = g.out_hw
        self.G = g.groups
        self.cin_g, self.cout_g = g.in_channels // g.groups, g.out_channels // g.groups
        self.in_shape = g.in_shape
        H, W_ = g.in_hw
        pooled = (-(-H // ph), -(-W_ // pw))
        self.pooled_hw = pooled
        pool_adds = g.in_channels * H * W_ - g.in_channels * pooled[0] * pooled[1] if (ph, pw) != (1, 1) else 0
        if lay.kind == "digital":
            self.kind = "depthwise"
            self.wd = w[:, 0, 0, 0]
            self.per_step["digital_adds"] = pool_adds + g.out_channels * lay.positions
        else:
            self.kind = "conv"
            # per group: (rows, cout_g), rows ordered (c, a, b) = the weight's own flattening
            self.Wg = [w[gi * self.cout_g:(gi + 1) * self.cout_g].reshape(self.cout_g, -1).T.copy()
                       for gi in range(self.G)]
            self.bounds = [_col_bounds(m, self.A) for m in self.Wg]
            self.per_step["digital_adds"] = pool_adds

    # ------------------------------------------------------------------ evaluation
    def __call__(self, x: np.ndarray):
        if self.kind == "dense":
            if self.pre_map is not None:
                x = np.asarray((self.pre_map @ x.T).T)
            return _chunked_matmul(x, self.W, self.A, self.bounds), int(np.count_nonzero(x))
        if self.kind == "sparse":
            v = x[:, self.rows]
            return _chunked_matmul(v, self.W, self.A, self.bounds), int(np.count_nonzero(v))
        if self.kind == "diag":
            return np.asarray((self.diag.T @ x.T).T, dtype=np.int64), 0
        return self._conv(x)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """The pooled map, zero-padded so that every tap of every output position is inside."""
        B = x.shape[0]
        xp = _sum_pool(x.reshape((B,) + tuple(self.in_shape)), self.lay.pool)
        (sh, sw), (pdh, pdw), (dh, dw) = self.stride, self.padding, self.dil
        kh, kw = self.kernel
        oh, ow = self.out_hw
        Hn = max(pdh + xp.shape[2], sh * (oh - 1) + dh * (kh - 1) + 1)
        Wn = max(pdw + xp.shape[3], sw * (ow - 1) + dw * (kw - 1) + 1)
        xl = np.zeros((B, xp.shape[1], Hn, Wn), dtype=np.int64)
        xl[:, :, pdh:pdh + xp.shape[2], pdw:pdw + xp.shape[3]] = xp
        return xl

    def _conv(self, x: np.ndarray):
        B = x.shape[0]
        xl = self._padded(x)
        (sh, sw), (dh, dw) = self.stride, self.dil
        kh, kw = self.kernel
        oh, ow = self.out_hw
        out = np.zeros((B, self.G * self.cout_g, oh, ow), dtype=np.int64)
        if self.kind == "depthwise":
            t = xl[:, :, 0: sh * (oh - 1) + 1: sh, 0: sw * (ow - 1) + 1: sw]
            return (t * self.wd[None, :, None, None]).reshape(B, -1), 0
        rows = self.cin_g * kh * kw
        per_out_row = ow * rows
        nrow = max(1, min(oh, _COLS_BUDGET // max(per_out_row, 1)))
        nsamp = max(1, _COLS_BUDGET // max(per_out_row * oh, 1)) if nrow == oh else 1
        events = 0
        for s0 in range(0, B, nsamp):
            xs = xl[s0:s0 + nsamp]
            n = xs.shape[0]
            for i0 in range(0, oh, nrow):
                i1 = min(oh, i0 + nrow)
                for gi in range(self.G):
                    xc = xs[:, gi * self.cin_g:(gi + 1) * self.cin_g]
                    cols = np.empty((n, i1 - i0, ow, self.cin_g, kh, kw), dtype=np.int64)
                    for a in range(kh):
                        y0 = sh * i0 + dh * a
                        for b in range(kw):
                            x0 = dw * b
                            cols[:, :, :, :, a, b] = xc[:, :, y0: y0 + sh * (i1 - i0 - 1) + 1: sh,
                                                        x0: x0 + sw * (ow - 1) + 1: sw].transpose(0, 2, 3, 1)
                    v = cols.reshape(-1, rows)
                    events += int(np.count_nonzero(v))
                    acc = _chunked_matmul(v, self.Wg[gi], self.A, self.bounds[gi])
                    out[s0:s0 + n, gi * self.cout_g:(gi + 1) * self.cout_g, i0:i1] = \
                        acc.reshape(n, i1 - i0, ow, self.cout_g).transpose(0, 3, 1, 2)
        return out.reshape(B, -1), events


def core_layout(mapping) -> tuple[list, dict, dict]:
    """The result's core axis: ``(core_population, layer_core, pop_core)``. Every crossbar
    layer owns ``lay.cores`` cores in net order (:func:`mapper.stationary.layer_of`), its
    counters on the first of them (``layer_core[projection]``); a population's neuron
    counters go to the first core of its first crossbar layer (``pop_core``). A population
    fed by digital layers only gets one column of its own (its digital units, not a core
    of the mapping's count); a digital layer counts on its population's column."""
    core_pop, layer_core, pop_core = [], {}, {}
    for lay in mapping.layers:
        if lay.kind == "digital":
            continue
        layer_core[lay.projection] = len(core_pop)
        pop_core.setdefault(lay.population, len(core_pop))
        core_pop += [lay.population] * lay.cores
    for p in mapping.net.populations[1:]:
        if p.name not in pop_core:
            pop_core[p.name] = len(core_pop)
            core_pop.append(p.name)
    for lay in mapping.layers:
        if lay.kind == "digital":
            layer_core[lay.projection] = pop_core[lay.population]
    return core_pop, layer_core, pop_core


def _check_request(mapping, mode, trace, aer, vcd, chrome) -> None:
    if mode is not None and mode not in ("sync", "pipelined"):
        raise SimulationError(f"mode must be 'sync' or 'pipelined', got {mode!r}")
    if (mode or mapping.chip.timing.mode) != "sync":
        raise SimulationError(f"mode {mode or mapping.chip.timing.mode!r}: a weight-stationary mapping runs "
                              f"layer after layer (sync) only")
    wants = [k for k, v in (("aer", aer), ("vcd", vcd), ("chrome", chrome)) if v is not None]
    if trace is not None:
        cfg = trace if isinstance(trace, dict) else {k: getattr(trace, k, None) for k in ("aer", "vcd", "chrome")}
        wants += [k for k in ("aer", "vcd", "chrome") if cfg.get(k) is not None]
    if wants:
        raise SimulationError(f"traces ({', '.join(sorted(set(wants)))}) follow the unrolled engine's events; a "
                              f"weight-stationary run writes none")


def simulate_stationary(mapping, inputs, *, reset: str = "subtract", spikes: str = "binary", v_min=None,
                        record=None, timing: bool = True, timing_samples: int = 1,
                        input_scale: float | None = None, mode: str | None = None, trace=None, aer=None,
                        vcd=None, chrome=None, max_bytes: int | None = None) -> RunResult:
    """Run a weight-stationary ``mapping`` on ``inputs`` (T, B, *input_shape); the options
    are those of :func:`hwsim.engine.simulate` (module docstring for what is computed).
    ``mode`` must be sync and traces are refused (:class:`models.errors.SimulationError`, one line);
    ``max_bytes`` bounds the outputs and recordings (:class:`models.errors.SizeLimitError`)."""
    check_options(reset, spikes)
    v_min = check_v_min(v_min)
    _check_request(mapping, mode, trace, aer, vcd, chrome)
    net, chip = mapping.net, mapping.chip
    meta_q = quant_meta(net)
    M, F = int(meta_q["membrane_bits"]), int(meta_q["leak_frac_bits"])
    x_all = encode_input(net, inputs, input_scale)  # validates the input (typed errors)
    T, B = x_all.shape[:2]
    x_all = x_all.reshape(T, B, -1)
    pops = net.populations[1:]
    names = [p.name for p in pops]
    want = [] if record is None else (names if record == "all" else list(record))
    bad = [r for r in want if r not in names]
    if bad:
        raise SimulationError(f"record: unknown population(s) {bad}; known: {names}")
    out_pop = net.pop[net.output]
    need = 8 * T * B * (out_pop.size + 2 * sum(net.pop[k].size for k in want))
    budget = limits.max_bytes() if max_bytes is None else int(max_bytes)
    if need > budget:
        raise SizeLimitError(f"simulate (weight-stationary): outputs and recordings of {B} samples need "
                             f"{limits.format_bytes(need)}, more than the memory budget of "
                             f"{limits.format_bytes(budget)}; record fewer populations or run fewer samples")
    by_name = {lay.projection: lay for lay in mapping.layers}
    ops = {q.name: StationaryLayerOp(q, by_name[q.name], chip, net.is_mac(q)) for q in net.projections}
    shifts = {q.name: int(meta_q["projections"][q.name]["acc_shift"]) for q in net.projections}
    core_pop, layer_core, pop_core = core_layout(mapping)
    counters = np.zeros((T, len(core_pop), len(COUNTERS)), np.int64)
    per_step = np.zeros((len(core_pop), len(COUNTERS)), np.int64)  # data-independent, per sample
    for q in net.projections:
        for k, v in ops[q.name].per_step.items():
            per_step[layer_core[q.name], _C[k]] += v
    for p in pops:
        per_step[pop_core[p.name], _C["neuron_updates"]] += p.size
        per_step[pop_core[p.name], _C["state_words"]] += p.size * neurons.model(p.model).state_words
    states = {p.name: IntNeuronState(p.model, p.params, B, p.size, M, F, reset, spikes, int_v_min(net, p, v_min))
              for p in pops}
    incoming = {p.name: net.incoming(p.name) for p in pops}
    max_delay = {p.name: 0 for p in net.populations}
    for q in net.projections:
        max_delay[q.src] = max(max_delay[q.src], q.delay_steps)
    hist = {k: np.zeros((d + 1, B, net.pop[k].size), dtype=np.int64) for k, d in max_delay.items() if d > 0}
    rec_s = {k: np.zeros((T, B, net.pop[k].size), dtype=np.int64) for k in want}
    rec_v = {k: np.zeros((T, B, net.pop[k].size), dtype=np.int64) for k in want}
    output = np.zeros((T, B, out_pop.size), dtype=np.int64)
    cached: dict = {}
    for t in range(T):
        counters[t] = B * per_step
        cur = {net.input.name: x_all[t]}
        for pop in pops:
            I = np.zeros((B, pop.size), dtype=np.int64)
            if pop.bias is not None:
                I += np.asarray(pop.bias, dtype=np.int64)
            for q in incoming[pop.name]:
                if q.delay_steps == 0:
                    src = cur[q.src]
                elif t >= q.delay_steps:
                    buf = hist[q.src]
                    src = buf[(t - q.delay_steps) % buf.shape[0]]
                else:
                    src = None
                if src is not None:
                    hit = cached.get(q.name)
                    if q.src == net.input.name and q.delay_steps == 0 and hit is not None \
                            and np.array_equal(hit[0], src):
                        c, ev = hit[1], hit[2]  # a repeated input frame: the same sums (still counted)
                    else:
                        acc, ev = ops[q.name](src.astype(np.int64, copy=False))
                        c = rshift_round(acc, shifts[q.name])
                        if q.src == net.input.name:
                            cached[q.name] = (src, c, ev)
                    I += c
                    counters[t, layer_core[q.name], _C["events"]] += ev
                for start, vec in q.bias_terms:
                    if t >= start:
                        I += np.asarray(vec, dtype=np.int64)
            z = states[pop.name].step(I)
            cur[pop.name] = z
            if pop.spiking:
                counters[t, pop_core[pop.name], _C["spikes"]] += int(np.sum(z, dtype=np.int64))
            if pop.name in rec_s:
                rec_s[pop.name][t] = z
                rec_v[pop.name][t] = states[pop.name].v
        for k, buf in hist.items():
            buf[t % buf.shape[0]] = cur[k]
        output[t] = cur[net.output]
    tim = _timing(mapping, T, min(int(timing_samples), B) if timing else 0, len(core_pop), layer_core)
    return RunResult(
        output=output.reshape((T, B) + tuple(out_pop.shape)), spikes=rec_s, membrane=rec_v, counters=counters,
        counter_names=list(COUNTERS), core_population=core_pop, timing=tim,
        meta={"reset": reset, "spikes": spikes, "v_min": v_min, "chip": chip.name,
              "weight_bits": int(chip.core.weight_bits), "membrane_bits": int(chip.core.membrane_bits),
              "clock_hz": float(chip.timing.clock_hz), "steps": T, "samples": B, "mode": "sync",
              "conv_mapping": "weight_stationary", "traces": {},
              "input_events": int(np.count_nonzero(x_all))})


def step_cycles(mapping) -> tuple[int, int]:
    """``(cycles of one step, overrun)``: the mapping's ``cycles_per_step`` (its one home,
    :func:`mapper.stationary.cycles_per_step`), padded to a fixed ``timing.step_cycles``
    (overrun 1 when the layers need more than it)."""
    need = int(mapping.resources()["cycles_per_step"])
    fixed = mapping.chip.timing.step_cycles
    if fixed == "dynamic":
        return need, 0
    return max(need, int(fixed)), int(need > int(fixed))


def _timing(mapping, T: int, n: int, n_cores: int, layer_core: dict) -> dict | None:
    if n == 0:
        return None
    step, overrun = step_cycles(mapping)
    clock = float(mapping.chip.timing.clock_hz)
    busy = np.zeros(n_cores, np.int64)
    for lay in mapping.layers:
        if lay.kind != "digital":
            busy[layer_core[lay.projection]] += T * lay.cycles
    total = T * step
    return {"mode": "sync", "step_cycles": np.full((n, T), step, np.int64),
            "core_busy_cycles": np.tile(busy, (n, 1)), "total_cycles": np.full(n, total, np.int64),
            "cycles_per_step": np.full(n, float(step)), "pipeline_depth": 0,
            "latency_cycles": np.full(n, total, np.int64), "latency_us": np.full(n, total / clock * 1e6),
            "throughput_inf_s": np.full(n, clock / total if total else 0.0), "overruns": int(overrun * T * n),
            "packet_latency_hist": np.zeros(0, np.int64)}
