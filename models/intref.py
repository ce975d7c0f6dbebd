r"""Integer reference simulator: the golden model of the chip's integer behaviour.

:func:`simulate_int` runs a quantised :class:`~models.net.Net` (the output of
``mapper.quantize``) in exact integer arithmetic. **This docstring is the contract**
between ``mapper.quantize``, this simulator and ``hwsim``: the chip simulator must
reproduce every spike and every membrane value defined here (docs/design.md);
every other module points here.

Notation
--------
All quantities are integers. ``M`` = ``membrane_bits``, ``F`` = ``leak_frac_bits``
(both in ``qnet.metadata["quant"]``).

* ``sat(x) = min(max(x, -2^(M-1)), 2^(M-1) - 1)`` (saturate to signed M bits).
* ``rshift_round(x, k) = floor((x + 2^(k-1)) / 2^k)`` for ``k >= 1``, which is
  ``(x + (1 << (k-1))) >> k`` with an arithmetic (sign-extending) shift: round to
  nearest, ties towards +infinity, for either sign. Examples:
  ``rshift_round(3, 1) = 2``, ``rshift_round(-3, 1) = -1``,
  ``rshift_round(-5, 2) = -1``, ``rshift_round(-6, 2) = -1``,
  ``rshift_round(-7, 2) = -2``. ``rshift_round(x, 0) = x``.
* ``round_half_away(y) = sign(y) * floor(|y| + 1/2)``: the only float-to-int
  rounding, used by the quantiser and to encode real-valued inputs.

These three live in :mod:`models.intarith` (numpy and Numba versions side by side).

Inputs
------
* Real-valued input (``qnet.input_spiking`` is False; the first projections run in
  MAC mode): ``x_int = min(max(round_half_away(x * s_x), 0), 2^input_bits - 1)``
  with ``s_x = metadata["quant"]["input_scale"] = (2^input_bits - 1) / max_input``.
  The chip's inputs are unsigned, so negative values clip to 0.
* Spiking input: spikes / event counts, non-negative integers, used as they are.

Synaptic input of a population
------------------------------
A projection ``j`` (integer weights ``W_j``, pre x post; ``acc_shift`` ``k_j >= 0``,
delay ``d_j`` steps) contributes at step ``t``::

    acc_j[n] = sum_i W_j[i, n] * x_j[t - d_j][i]        (0 while t < d_j)
    c_j[n]   = rshift_round(acc_j[n], k_j)

where ``x_j`` is the source's output: ``x_int`` for the graph input, the spike
count ``z`` of a spiking population (IF, LIF, CubaLIF, Threshold), the state ``v``
of an LI / I / CubaLI / Identity population. ``acc_j`` is the exact sum over all of the
projection's synapses (on the chip: every partial-sum tile of the projection added
up) *before* the shift; each projection is shifted on its own. A DenseProjection
with a (0/1) ``pre_map`` P computes ``acc = W (P x)``, the same sum.
``W_j`` is stored as ``weight`` (conv kernel / dense matrix) or ``csr``.

The input of population ``p`` at step ``t`` is the exact integer

    I[n] = b[n] + sum_j c_j[n] + sum_{(s, vec) in bias_terms_j, t >= s} vec[n]

with ``b = Population.bias`` (int64). ``I`` is *not* saturated (the chip's
accumulators must be wide enough; ``mapper.quantize``'s report gives the bound
per projection).

Neuron updates
--------------
State (``v``, and ``i`` for CubaLIF) starts at 0. Per step, with the population's
integer parameters (``pop.params``, int64 per neuron):

==========  =======================================================================
IF          ``v <- sat(v + I)``
I           ``v <- sat(v + I)``; output ``v``, never spikes
LIF         ``v <- sat(v + I + rshift_round(alpha_q * (v_leak - v), F))``
LI          as LIF; output ``v``, never spikes
CubaLIF     ``i <- sat(i + I + rshift_round(-alpha_syn_q * i, F))``, then
            ``v <- sat(v + i + rshift_round(alpha_mem_q * (v_leak - v), F))``
            (with the new ``i``)
CubaLI      as CubaLIF; output ``v``, never spikes
Threshold   ``z = [I >= threshold]`` (stateless; ``v`` stays 0)
Identity    ``v <- sat(I)``; output ``v``
ANN         ``v <- min(max(I, 0), a_max)``; output ``v`` (a multi-bit value event)
==========  =======================================================================

Each line is one model's ``int_update`` in the table :mod:`models.neurons` (its numpy
and Numba versions side by side); this simulator and the chip engine both call it.

The leak products are formed exactly (``alpha_q * (v_leak - v)`` needs
``M + F + 2`` bits), then shifted. Spikes and reset (IF, LIF, CubaLIF), with
``theta = v_threshold >= 1``, applied to the updated ``v``:

* ``spikes="binary"``: ``z = [v >= theta]``;
  ``spikes="multi"``: ``z = floor(v / theta)`` if ``v >= theta`` else 0
  (floor division of a non-negative integer);
* ``reset="subtract"``: ``v <- v - z * theta``;
  ``reset="zero"``: ``v <- v_reset`` where ``z > 0``.

Neither reset leaves the membrane range, so no second saturation is needed.

Membrane floor (``v_min``, :mod:`models.reference`): after the spike and the reset,
``v <- max(v, v_min_q)`` for every neuron with a state (after the update for LI / I),
with ``v_min_q = -theta`` per neuron for ``v_min="-threshold"``, else
``v_min_q = max(round_half_away(v_min * U_p), -2^(M-1))`` (the population's membrane
unit ``U_p``, ``metadata["quant"]["populations"][p]["unit"]``). No floor: ``v_min=None``.
Evaluation order, delays, ``bias_terms`` and recording are those of the float
reference (:func:`models.reference.simulate_net`).

How the integers relate to the float model (``mapper.quantize``)
----------------------------------------------------------------
Population ``p`` has a membrane unit ``U_p`` (integer LSBs per float unit of
``v``); the float forward-Euler update of :mod:`models.reference` is absorbed into
the weights so that the integer update needs no multiplier on the synaptic path:

* IF, I: weights and biases carry ``dt R``;
* LIF, LI: they carry ``alpha R`` with ``alpha = dt / tau``;
  ``alpha_q = round_half_away(alpha 2^F)``;
* CubaLIF, CubaLI: the integer state ``i`` is ``alpha_mem R i_syn`` (the current's
  contribution to ``v`` per step, in units of ``v``), so weights carry
  ``alpha_syn w_in alpha_mem R``; from the float
  ``i_syn <- i_syn + alpha_syn (-i_syn + w_in I)`` and
  ``v <- v + alpha_mem (v_leak - v + R i_syn)`` this gives the two lines above
  exactly, up to the rounding of the two leak products;
* Threshold, Identity: factor 1.

A projection's integer weights are ``round_half_away(w * factor * U_p * 2^k_j / s_j)``
where ``s_j`` is its source's output unit (``s_x`` for a real-valued input, 1 for
spikes and event counts, ``U_src`` for an LI / I / Identity source); thresholds,
resets, leaks and biases are ``round_half_away(value * U_p)`` (biases times the
factor as well).

Layout of a quantised Net
-------------------------
``qnet.quantized is True``. Weights: ``ConvProjection.weight``,
``DenseProjection.weight`` (int32; ``pre_map`` int32 0/1 or None),
``SparseProjection.csr`` (int32). ``Population.params`` (int64 arrays of the
population's size): IF ``v_threshold, v_reset``; LIF ``alpha_q, v_leak,
v_threshold, v_reset``; LI ``alpha_q, v_leak``; CubaLIF ``alpha_syn_q,
alpha_mem_q, v_leak, v_threshold, v_reset``; CubaLI ``alpha_syn_q, alpha_mem_q,
v_leak``; Threshold ``threshold``; I and Identity none (each model's
``int_params`` in :mod:`models.neurons`). ``qnet.metadata["quant"]``: ``weight_bits``, ``membrane_bits``,
``leak_frac_bits``, ``input_bits``, ``input_scale``, ``max_input``, ``populations``
(name -> ``unit``, ``unit_shift``) and ``projections`` (name -> ``acc_shift``,
``weight_scale``, ``input_scale``); only ``acc_shift`` and the bit widths and input
scale are read by the simulators, the rest documents the float-to-integer map.

Implementation note: a dot product of integers is evaluated with float32 or
float64 BLAS when a bound computed beforehand (the largest possible sum of
``|w| * max|x|`` over a neuron's synapses) is below 2^24 or 2^53: then every
partial sum is an integer the format represents exactly, whatever the summation
order, and the result is exact. Otherwise (or with ``carrier="int64"``) numpy
int64 arithmetic is used. Both give identical results (tested).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import neurons
from .errors import SimulationError
from .intarith import round_half_away, rshift_round
from .net import ConvProjection, DenseProjection, Net, SparseProjection
from .ops import ConvGeometry
from .reference import V_MIN_THRESHOLD, SimResult, check_inputs, check_options, check_v_min, recorded

#: exact-integer limits of the BLAS carriers (every integer of magnitude <= 2^p is exact)
_CARRIER_LIMITS = ((np.float32, 2 ** 24), (np.float64, 2 ** 53))
CARRIERS = ("auto", "int64")
#: im2col buffers are cut into batch chunks of at most this many elements
_COLS_BUDGET = 1 << 23


# --------------------------------------------------------------------------------------
# exact integer projections
# --------------------------------------------------------------------------------------

def _carrier(bound: int, choice: str):
    if choice == "auto":
        for dtype, limit in _CARRIER_LIMITS:
            if bound < limit:
                return dtype
    if bound >= 2 ** 63:
        raise SimulationError(f"integer sums may reach {bound:.3g}, beyond int64")
    return np.int64


class _IntConv:
    """Exact integer convolution by im2col + one GEMM per group and batch chunk.

    A kernel that is constant over stride-aligned blocks (a sum/avg pooling composed
    in front of a convolution, as the lowering builds it) is evaluated as the sum
    pooling followed by the stride-1 sub-kernel: the same integer sum, ``s_h s_w``
    times fewer multiplications.
    """

    def __init__(self, weight: np.ndarray, geom: ConvGeometry, dtype):
        self.dtype, self.geom = dtype, geom
        w = np.asarray(weight)
        kh, kw = geom.kernel
        sh, sw = geom.stride
        self.pool = None
        if (sh > 1 or sw > 1) and geom.dilation == (1, 1) and kh % sh == 0 and kw % sw == 0:
            sub = w[:, :, ::sh, ::sw]
            if np.array_equal(np.repeat(np.repeat(sub, sh, axis=2), sw, axis=3), w):
                self.pool = (sh, sw)
                w = sub
        self.kernel = w.shape[2:]
        g = geom.groups
        self.cin_g, self.cout_g = geom.in_channels // g, geom.out_channels // g
        self.depthwise = self.cin_g == 1 and self.cout_g == 1
        if self.depthwise:
            self.wd = w[:, 0].astype(dtype)  # (C, kh, kw)
        else:
            # per group: (kh * kw * cin_g, cout_g), rows ordered (a, b, c)
            self.wm = [np.ascontiguousarray(
                w[gi * self.cout_g:(gi + 1) * self.cout_g].transpose(2, 3, 1, 0).reshape(-1, self.cout_g),
                dtype=dtype) for gi in range(g)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        g = self.geom
        B = x.shape[0]
        oh, ow = g.out_hw
        x = x.reshape((B,) + g.in_shape).astype(self.dtype, copy=False)
        ph, pw = g.padding
        if self.pool is not None:
            sh, sw = self.pool
            kh, kw = self.kernel
            mh, mw = oh + kh - 1, ow + kw - 1  # pooled positions the sub-kernel reads
            H, W = g.in_hw
            if (ph, pw) == (0, 0) and (H, W) == (sh * mh, sw * mw):
                xp = x
            else:
                xp = np.zeros((B, g.in_channels, sh * mh, sw * mw), dtype=self.dtype)
                hh, ww = min(H, sh * mh - ph), min(W, sw * mw - pw)
                xp[:, :, ph:ph + hh, pw:pw + ww] = x[:, :, :hh, :ww]
            xl = np.zeros((B, mh, mw, g.in_channels), dtype=self.dtype)
            for u in range(sh):
                for w_ in range(sw):
                    xl += xp[:, :, u::sh, w_::sw].transpose(0, 2, 3, 1)
            stride, dil = (1, 1), (1, 1)
        else:
            kh, kw = self.kernel
            xl = np.zeros((B, g.in_hw[0] + 2 * ph, g.in_hw[1] + 2 * pw, g.in_channels), dtype=self.dtype)
            xl[:, ph:ph + g.in_hw[0], pw:pw + g.in_hw[1], :] = x.transpose(0, 2, 3, 1)
            stride, dil = g.stride, g.dilation
        (sh, sw), (dh, dw) = stride, dil
        out = np.empty((B, oh, ow, g.out_channels), dtype=self.dtype)

        def tap(arr, a, b):
            return arr[:, a * dh: a * dh + sh * (oh - 1) + 1: sh, b * dw: b * dw + sw * (ow - 1) + 1: sw]

        if self.depthwise:
            out[:] = 0
            for a in range(kh):
                for b in range(kw):
                    out += tap(xl, a, b) * self.wd[:, a, b]
        else:
            per_sample = oh * ow * kh * kw * self.cin_g
            chunk = max(1, _COLS_BUDGET // max(per_sample, 1))
            for s in range(0, B, chunk):
                xs = xl[s:s + chunk]
                n = xs.shape[0]
                for gi, wm in enumerate(self.wm):
                    cs = slice(gi * self.cin_g, (gi + 1) * self.cin_g)
                    cols = np.empty((n, oh, ow, kh, kw, self.cin_g), dtype=self.dtype)
                    for a in range(kh):
                        for b in range(kw):
                            cols[:, :, :, a, b, :] = tap(xs, a, b)[..., cs]
                    out[s:s + n, :, :, gi * self.cout_g:(gi + 1) * self.cout_g] = (
                        cols.reshape(n * oh * ow, -1) @ wm).reshape(n, oh, ow, -1)
        return out.transpose(0, 3, 1, 2).reshape(B, -1).astype(np.int64)


class _IntDense:
    """``acc = (P x) W^T`` with an optional 0/1 ``pre_map`` P, exact."""

    def __init__(self, weight: np.ndarray, pre_map, dtype):
        self.dtype = dtype
        self.wt = np.ascontiguousarray(np.asarray(weight).T, dtype=dtype)
        self.pm = None if pre_map is None else sp.csr_matrix(pre_map, dtype=dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(self.dtype, copy=False)
        if self.pm is not None:
            x = np.asarray((self.pm @ x.T).T)
        return (x @ self.wt).astype(np.int64)


class _IntSparse:
    def __init__(self, csr, dtype):
        self.dtype = dtype
        self.csr_t = sp.csr_matrix(csr.T, dtype=dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((self.csr_t @ x.astype(self.dtype, copy=False).T).T).astype(np.int64)


def _sum_abs_bound(q) -> int:
    """Largest ``sum_i |W[i, n]|`` over the post neurons (an upper bound for a conv)."""
    if isinstance(q, ConvProjection):
        w = np.abs(np.asarray(q.weight, dtype=np.int64))
        return int(w.reshape(w.shape[0], -1).sum(axis=1).max(initial=0))
    if isinstance(q, DenseProjection):
        w = np.abs(np.asarray(q.weight, dtype=np.int64)).sum(axis=1).max(initial=0)
        rows = 1 if q.pre_map is None else int(np.diff(q.pre_map.indptr).max(initial=0))
        return int(w) * max(rows, 1)
    csr = sp.csc_matrix(abs(q.csr).astype(np.int64))
    return int(np.asarray(csr.sum(axis=0)).max(initial=0))


def _int_op(q, x_bound: int, carrier: str):
    bound = _sum_abs_bound(q) * int(x_bound)
    dtype = _carrier(bound, carrier)
    if isinstance(q, ConvProjection):
        return _IntConv(q.weight, q.geom, dtype)
    if isinstance(q, DenseProjection):
        return _IntDense(q.weight, q.pre_map, dtype)
    if isinstance(q, SparseProjection):
        return _IntSparse(q.csr, dtype)
    raise SimulationError(f"projection '{q.name}': unknown projection type {type(q).__name__}")


# --------------------------------------------------------------------------------------
# neurons
# --------------------------------------------------------------------------------------

class IntNeuronState:
    """State and integer update of one population, flat (B, n) int64: the model's
    ``int_update`` (:mod:`models.neurons`), then spikes, reset and floor (module docstring)."""

    def __init__(self, model: str, params: dict, batch: int, n: int, membrane_bits: int,
                 leak_frac_bits: int, reset: str, spikes: str, v_min_q=None):
        self.model, self.p = model, {k: np.asarray(v, dtype=np.int64) for k, v in params.items()}
        try:
            self.m = neurons.model(model)
        except KeyError as e:
            raise SimulationError(f"integer simulation: {e.args[0]}") from None
        self.v_min_q = v_min_q
        self.M, self.F = membrane_bits, leak_frac_bits
        self.reset, self.spike_mode = reset, spikes
        self.v = np.zeros((batch, n), dtype=np.int64)
        self.spiking = self.m.spikes
        self.i_syn = np.zeros((batch, n), dtype=np.int64) if self.m.current else None

    def step(self, I: np.ndarray) -> np.ndarray:
        """Advance one step with input ``I`` (B, n) int64; returns the output: bool spikes
        (binary), int64 spike counts (multi) or the int64 state (LI, I, CubaLI, Identity)."""
        p, m = self.p, self.m
        if not m.state and m.spikes:  # Threshold: z = [I >= threshold], v stays 0
            return I >= p[m.threshold]
        lo, hi = -(1 << (self.M - 1)), (1 << (self.M - 1)) - 1
        self.v, self.i_syn = m.int_update(p, self.F, lo, hi, self.v, self.i_syn, I)
        v = self.v
        z = None
        if m.spikes:
            z, v = neurons.fire_int(v, p[m.threshold], p.get("v_reset"), self.reset, self.spike_mode)
        if self.v_min_q is not None:
            np.maximum(v, self.v_min_q, out=v)
        return z if m.spikes else v.copy()


def int_v_min(qnet: Net, pop, v_min):
    """The integer floor ``v_min_q`` of population ``pop`` (module docstring), or None. A
    numeric floor below the membrane range is clipped to it before the float-to-int
    conversion (so any finite ``v_min`` gives an int64 in range)."""
    m = neurons.BY_NAME.get(pop.model)
    if v_min is None or m is None or not m.state:
        return None
    lo = -(1 << (int(qnet.metadata["quant"]["membrane_bits"]) - 1))
    if v_min == V_MIN_THRESHOLD:
        if not m.spikes:
            return None
        return np.maximum(-np.asarray(pop.params[m.threshold], dtype=np.int64), lo)
    unit = float(qnet.metadata["quant"].get("populations", {}).get(pop.name, {}).get("unit", 1.0))
    return np.maximum(round_half_away(max(float(v_min) * unit, float(lo))), lo)


# --------------------------------------------------------------------------------------
# the simulator
# --------------------------------------------------------------------------------------

def quant_meta(qnet: Net) -> dict:
    """The quantisation metadata of ``qnet`` (``metadata["quant"]``), checked to be
    complete; raises :class:`SimulationError` for a float Net or missing keys."""
    if not getattr(qnet, "quantized", False) or "quant" not in qnet.metadata:
        raise SimulationError("simulate_int needs a quantised Net (mapper.quantize(net)); got a float Net")
    meta = qnet.metadata["quant"]
    missing = [k for k in ("membrane_bits", "leak_frac_bits", "input_bits", "input_scale", "projections")
               if k not in meta]
    if missing:
        raise SimulationError(f"quantised Net: metadata['quant'] lacks {missing}")
    return meta


class _InputEncoder:
    """Step-wise integer encoding of the input (see "Inputs" in the module docstring)."""

    def __init__(self, qnet: Net, inputs: np.ndarray, input_scale: float | None):
        meta = quant_meta(qnet)
        self.x = check_inputs(inputs, qnet.input.shape, qnet.input.name)
        self.spiking = bool(qnet.input_spiking)
        if self.spiking:
            self.bound = 0
            for t, xt in enumerate(self.x):  # step by step: bounded memory
                if xt.size and (xt.min() < 0 or not np.array_equal(xt, np.floor(xt))):
                    raise SimulationError(f"spiking inputs must be non-negative integers (spikes or event "
                                          f"counts); step {t} is not")
                self.bound = max(self.bound, int(xt.max(initial=0)))
        else:
            self.scale = float(meta["input_scale"] if input_scale is None else input_scale)
            if not np.isfinite(self.scale) or self.scale <= 0:
                raise SimulationError(f"input_scale must be a positive number, got {input_scale!r}")
            self.top = self.bound = (1 << int(meta["input_bits"])) - 1
        self._last = None

    def __call__(self, t: int) -> np.ndarray:
        """Encoded step ``t``; the same array object as before when the input repeats."""
        xt = self.x[t]
        if self._last is not None and np.array_equal(self._last[0], xt):
            return self._last[1]
        if self.spiking:
            enc = xt.astype(np.int64)
        else:
            # = clip(round_half_away(x s_x), 0, top): both are <= 0 for x s_x < 0
            enc = np.clip(np.floor(xt.astype(np.float64) * self.scale + 0.5), 0, self.top).astype(np.int64)
        self._last = (xt, enc)
        return enc


def encode_input(qnet: Net, inputs: np.ndarray, input_scale: float | None = None) -> np.ndarray:
    """The integer input sequence (T, B, n) the chip receives (see "Inputs" in the module docstring)."""
    enc = _InputEncoder(qnet, inputs, input_scale)
    return np.stack([enc(t) for t in range(enc.x.shape[0])])


def simulate_int(qnet: Net, inputs: np.ndarray, *, reset: str = "subtract", spikes: str = "binary",
                 record=None, input_scale: float | None = None, carrier: str = "auto",
                 progress: bool = False, v_min=None) -> SimResult:
    """Run a quantised Net in exact integer arithmetic (the module docstring is the spec).

    Parameters
    ----------
    qnet : Net
        output of ``mapper.quantize``.
    inputs : array (T, B, *input_shape)
        real values (quantised with the net's input scale) or, for a spiking
        input, non-negative integer spike / event counts.
    reset, spikes : str
        ``"subtract"`` / ``"zero"`` and ``"binary"`` / ``"multi"``, as the float reference.
    record : None, "all" or list of population names
        populations whose spikes (output) and membrane ``v`` are returned, (T, B, n) int64.
    input_scale : float, optional
        overrides ``s_x`` of a real-valued input (e.g. 1.0 for inputs that are
        already integers); the weights are not changed.
    carrier : "auto" or "int64"
        how integer dot products are evaluated (identical results; see the module docstring).
    v_min : None, number <= 0 or "-threshold"
        the membrane floor (module docstring), in float units of ``v``.

    Returns
    -------
    SimResult
        as :func:`models.reference.simulate_net`, with int64 arrays.
    """
    check_options(reset, spikes)
    if carrier not in CARRIERS:
        raise SimulationError(f"carrier must be one of {CARRIERS}, got {carrier!r}")
    meta = quant_meta(qnet)
    M, F = int(meta["membrane_bits"]), int(meta["leak_frac_bits"])
    enc = _InputEncoder(qnet, inputs, input_scale)
    T, B = enc.x.shape[:2]
    v_min = check_v_min(v_min)
    states = {p.name: IntNeuronState(p.model, p.params, B, p.size, M, F, reset, spikes,
                                     int_v_min(qnet, p, v_min))
              for p in qnet.populations[1:]}
    # largest |output| of every population, for the exactness bound of the carriers
    vmax = 1 << (M - 1)
    x_bound = {qnet.input.name: enc.bound}
    for p in qnet.populations[1:]:
        if neurons.model(p.model).multi and spikes == "multi":
            x_bound[p.name] = vmax // max(int(np.min(p.params["v_threshold"], initial=1)), 1)
        elif p.spiking:
            x_bound[p.name] = 1
        else:
            x_bound[p.name] = vmax
    ops, shifts = {}, {}
    for q in qnet.projections:
        qm = meta["projections"].get(q.name)
        if qm is None:
            raise SimulationError(f"quantised Net: projection '{q.name}' has no metadata['quant'] entry")
        shifts[q.name] = int(qm["acc_shift"])
        ops[q.name] = _int_op(q, x_bound[q.src], carrier)
    incoming = {p.name: qnet.incoming(p.name) for p in qnet.populations}
    max_delay = {p.name: 0 for p in qnet.populations}
    for q in qnet.projections:
        max_delay[q.src] = max(max_delay[q.src], q.delay_steps)
    hist = {k: np.zeros((d + 1, B, qnet.pop[k].size), dtype=np.int64) for k, d in max_delay.items() if d > 0}
    want = recorded(record, states)
    rec_s = {k: np.zeros((T, B, qnet.pop[k].size), dtype=np.int64) for k in want}
    rec_v = {k: np.zeros((T, B, qnet.pop[k].size), dtype=np.int64) for k in want}
    out_pop = qnet.pop[qnet.output]
    output = np.zeros((T, B, out_pop.size), dtype=np.int64)
    totals = {p.name: 0 for p in qnet.populations[1:] if p.spiking}
    cached: dict = {}

    def contribution(q, src_out):
        return rshift_round(ops[q.name](src_out), shifts[q.name])

    steps = range(T)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="integer reference", unit="step", leave=False)
    for t in steps:
        x_t = enc(t)
        cur = {qnet.input.name: x_t}
        for pop in qnet.populations[1:]:
            I = np.zeros((B, pop.size), dtype=np.int64)
            if pop.bias is not None:
                I += np.asarray(pop.bias, dtype=np.int64)
            for q in incoming[pop.name]:
                if q.delay_steps == 0 and q.src == qnet.input.name:
                    # a repeated input (direct encoding) is projected once
                    if cached.get(q.name) is None or cached[q.name][0] is not x_t:
                        cached[q.name] = (x_t, contribution(q, x_t))
                    I += cached[q.name][1]
                elif q.delay_steps == 0:
                    I += contribution(q, cur[q.src])
                elif t >= q.delay_steps:
                    buf = hist[q.src]
                    I += contribution(q, buf[(t - q.delay_steps) % buf.shape[0]])
                for start, vec in q.bias_terms:
                    if t >= start:
                        I += np.asarray(vec, dtype=np.int64)
            cur[pop.name] = states[pop.name].step(I)
            if pop.spiking:
                totals[pop.name] += int(np.sum(cur[pop.name], dtype=np.int64))
            if pop.name in want:
                rec_s[pop.name][t] = cur[pop.name]
                rec_v[pop.name][t] = states[pop.name].v
        for k, buf in hist.items():
            buf[t % buf.shape[0]] = cur[k]
        output[t] = cur[qnet.output]
    sizes = {k: qnet.pop[k].size for k in totals}
    return SimResult(output.reshape((T, B) + tuple(out_pop.shape)), rec_s, rec_v, totals, sizes)
