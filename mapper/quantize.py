r"""Quantisation: a float :class:`~models.net.Net` becomes the integer Net the chip runs.

This module owns the choice of integer units (one membrane unit per population, a
weight scale and accumulator shift per projection, fixed-point leaks). The integer
semantics themselves -- the contract with ``hwsim`` -- are written down in
:mod:`models.intref`'s docstring, and the float model in :mod:`models.reference`.

Units
-----
With ``Wmax = 2^(weight_bits-1) - 1`` and ``Mmax = 2^(membrane_bits-1) - 1``:

* every population ``p`` has one membrane unit ``U_p`` (integer LSBs per float unit
  of ``v``); all its incoming projections land in that unit;
* the *effective* float weight of a synapse into neuron ``n`` includes the neuron's
  forward-Euler factor ``f[n]``: ``dt R`` (IF, I), ``(dt/tau) R`` (LIF, LI),
  ``(dt/tau_syn) w_in (dt/tau_mem) R`` (CubaLIF, CubaLI), 1 (Threshold, Identity, ANN)
  (each model's ``gain`` in :mod:`models.neurons`);
* projection ``j`` reads a source whose output unit is ``s_j``: ``s_x = (2^input_bits
  - 1) / max_input`` for a real-valued graph input (MAC mode), 1 for spikes and
  event counts, ``U_src`` for an LI / I / CubaLI / Identity source;
* ``U_wj = Wmax s_j / max|w_eff_j|`` is the largest unit at which projection ``j``'s
  weights fit; ``U_w = min_j U_wj`` (for a single projection this is the
  ``s_p s_x`` of the brief: ``s_p = Wmax / max|w_eff|``);
* ``U_p = U_w / 2^K`` with the smallest ``K >= 0`` (at most ``max_acc_shift``) that
  keeps an activation unit's (ANN) ``a_max U_p <= 2^input_bits - 1`` (its output is the
  MAC operand of the next layer, as wide as a real-valued input; an error if no shift
  up to ``max_acc_shift`` does), else that keeps the largest threshold below the
  headroom limit,
  ``theta_max U_p <= Mmax / 2^headroom_bits`` (default: the membrane holds +-4
  thresholds). ``K = 0`` whenever the threshold already fits;
* projection ``j`` gets the accumulator shift ``k_j = K + floor(log2(U_wj / U_w))``
  (clipped to ``max_acc_shift``) and integer weights
  ``W_j = round_half_away(w_eff_j * U_p * 2^k_j / s_j)``, clipped to ``+-Wmax``; its
  exact integer sum is shifted back by ``rshift_round(., k_j)`` before it enters the
  membrane. Why a shift: scaling each projection's weights by its own factor alone
  cannot put a MAC projection (``s_x = 255``) and a spike projection (``s = 1``)
  into one unit without losing most of the MAC weights' bits, and cannot fit the
  output layer of a converted ANN (threshold ~16) into a 16-bit membrane with
  8-bit weights. ``k_j`` is a per-projection constant, like Loihi's weight
  exponent (restricted to right shifts); with all ``k_j = 0`` it is direct
  accumulation;
* thresholds, resets and ``v_leak``: ``round_half_away(value * U_p)``; biases and
  ``bias_terms``: ``round_half_away(b * f * U_p)``; leaks:
  ``alpha_q = round_half_away((dt/tau) 2^leak_frac_bits)`` (e.g. tau = 4, dt = 1,
  F = 12 gives 1024).

Structure: conv kernels (pooling composed in) are quantised directly (the factor
must then be uniform over each output channel's positions). A DenseProjection whose
``pre_map`` has at most one nonzero per column, all equal to ``c`` (non-overlapping
pooling, flatten), keeps W (times ``c``) and a 0/1 ``pre_map``; any other
``pre_map`` is expanded to a SparseProjection (CSR of the effective weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from models.defaults import QUANT_HEADROOM_BITS, QUANT_MAX_ACC_SHIFT, QUANT_MAX_INPUT
from models.errors import SnnchipError
from models import neurons
from models.intarith import round_half_away
from models.net import ConvProjection, DenseProjection, Net, Population, SparseProjection

DEFAULTS = dict(weight_bits=8, membrane_bits=16, leak_frac_bits=12, input_bits=8)
#: sources whose outputs are spikes / event counts (unit 1): the graph input and the spiking models
SPIKING_SOURCES = ("input",) + neurons.SPIKING


class QuantizationError(SnnchipError):
    """A network cannot be quantised to the requested integer formats."""


@dataclass
class ProjectionQuant:
    """One projection's quantisation: scale, shift and the error it introduced.

    Errors are ``W / weight_scale - w_eff`` over the stored weights (the kernel of a
    conv, the dense matrix, the CSR values), relative to ``max_abs_w``.
    ``zero_frac`` = fraction of the nonzero float weights that became 0.
    ``acc_bound`` = largest ``sum_i |W[i, n]|`` over post neurons: the bound on the
    accumulated sum per unit of input (times the largest input value).
    """

    name: str
    src: str
    dst: str
    kind: str
    input_scale: float
    weight_scale: float
    acc_shift: int
    max_abs_w: float
    max_abs_int: int
    rms_err_rel: float
    max_err_rel: float
    zero_frac: float
    acc_bound: int


@dataclass
class PopulationQuant:
    """One population's unit and integer parameters (``theta_int`` = largest threshold)."""

    name: str
    model: str
    unit: float
    unit_shift: int  # K: U = U_w / 2^K
    theta_int: int | None
    margin: float | None  # Mmax / theta_int: how many thresholds the membrane holds
    bias_int_max: int


@dataclass
class QuantReport:
    settings: dict
    projections: list = field(default_factory=list)
    populations: list = field(default_factory=list)

    def table(self) -> str:
        s = self.settings
        lines = [f"quantisation: weights {s['weight_bits']} b, membrane {s['membrane_bits']} b, "
                 f"leak fraction {s['leak_frac_bits']} b, input {s['input_bits']} b "
                 f"(input scale {s['input_scale']:.6g})", ""]
        lines.append(f"{'projection':<22}{'src -> dst':<22}{'scale':>12}{'shift':>6}{'max|w|':>11}"
                     f"{'max int':>8}{'rms err':>9}{'max err':>9}{'->0':>7}")
        for r in self.projections:
            lines.append(f"{r.name:<22}{(r.src + ' -> ' + r.dst):<22}{r.weight_scale:>12.5g}{r.acc_shift:>6}"
                         f"{r.max_abs_w:>11.4g}{r.max_abs_int:>8}{r.rms_err_rel:>9.2e}{r.max_err_rel:>9.2e}"
                         f"{r.zero_frac:>7.1%}")
        lines.append("")
        lines.append(f"{'population':<14}{'model':<10}{'unit':>12}{'K':>6}{'theta_int':>10}{'margin':>8}"
                     f"{'|bias|max':>10}")
        for p in self.populations:
            th = "-" if p.theta_int is None else str(p.theta_int)
            mg = "-" if p.margin is None else f"{p.margin:.1f}x"
            lines.append(f"{p.name:<14}{p.model:<10}{p.unit:>12.5g}{p.unit_shift:>6}{th:>10}{mg:>8}"
                         f"{p.bias_int_max:>10}")
        lines.append("")
        lines.append("errors relative to max|w| of the projection; shift = accumulator shift k_j; "
                     "K: unit = U_w / 2^K; margin = membrane max / theta_int")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------


def _setting(name: str, value, chip) -> int:
    core = getattr(chip, "core", None)
    from_chip = getattr(core, name, None) if core is not None else None
    if value is not None and from_chip is not None and int(value) != int(from_chip):
        raise QuantizationError(f"{name}={value} contradicts the chip's core.{name}={from_chip}")
    v = value if value is not None else from_chip if from_chip is not None else DEFAULTS[name]
    return int(v)


def _check_range(name: str, v: int, lo: int, hi: int):
    if not lo <= v <= hi:
        raise QuantizationError(f"{name} must be in [{lo}, {hi}], got {v}")


def _gain(pop: Population, dt: float) -> np.ndarray:
    """The forward-Euler factor f[n] that the weights into ``pop`` carry (module docstring;
    each model's ``gain`` in :mod:`models.neurons`)."""
    p, m, n = pop.params, pop.model, pop.size
    nm = neurons.BY_NAME.get(m)
    if nm is None:
        raise QuantizationError(f"population '{pop.name}': cannot quantise neuron model {m!r}")

    def arr(k):
        if k not in p:
            raise QuantizationError(f"population '{pop.name}' ({m}): parameter '{k}' is missing")
        a = np.broadcast_to(np.asarray(p[k], dtype=np.float64).ravel(), (n,))
        if not np.all(np.isfinite(a)):
            raise QuantizationError(f"population '{pop.name}': parameter '{k}' has NaN or infinite values")
        if k.startswith("tau") and np.any(a <= 0):
            raise QuantizationError(f"population '{pop.name}': {k} must be > 0")
        return a

    f = nm.gain(arr, dt)
    return np.ones(n) if f is None else f


class _Eff:
    """The effective float weights of one projection in its quantisable storage."""

    def __init__(self, q, f: np.ndarray, max_nnz: int):
        self.q = q
        self.pre_map = None
        if isinstance(q, ConvProjection):
            g = q.geom
            fc = f.reshape(g.out_channels, -1)
            if not np.all(fc == fc[:, :1]):
                raise QuantizationError(
                    f"projection '{q.name}': the neuron factor (dt, tau, r, w_in) of '{q.dst}' varies within "
                    f"an output channel; a shared conv kernel cannot carry it")
            self.kind = "conv"
            self.w = np.asarray(q.weight, dtype=np.float64) * fc[:, 0].reshape(-1, 1, 1, 1)
        elif isinstance(q, DenseProjection):
            pm = q.pre_map
            c = None
            if pm is not None:
                csc = sp.csc_matrix(pm)
                csc.eliminate_zeros()
                if np.diff(csc.indptr).max(initial=0) <= 1 and csc.nnz and np.all(csc.data == csc.data[0]):
                    c = float(csc.data[0])
            if pm is None or c is not None:
                self.kind = "dense"
                self.w = np.asarray(q.weight, dtype=np.float64) * (1.0 if c is None else c) * f.reshape(-1, 1)
                if pm is not None:
                    sel = sp.csr_matrix(pm != 0, dtype=np.int32)
                    sel.eliminate_zeros()
                    self.pre_map = sel
            else:
                self.kind = "sparse"
                self.w = self._csr(q.to_csr(max_nnz), f)
        elif isinstance(q, SparseProjection):
            self.kind = "sparse"
            self.w = self._csr(q.csr, f)
        else:
            raise QuantizationError(f"projection '{q.name}': unknown projection type {type(q).__name__}")
        vals = self.values(self.w)
        if not np.all(np.isfinite(vals)):
            raise QuantizationError(f"projection '{q.name}': weights contain NaN or infinite values")
        self.max_abs = float(np.abs(vals).max(initial=0.0))

    @staticmethod
    def _csr(m, f):
        m = sp.csr_matrix(m, dtype=np.float64, copy=True)
        m.data *= f[m.indices]
        return m

    def values(self, w):
        return w.data if sp.issparse(w) else np.asarray(w).ravel()

    def quantize(self, scale: float, wmax: int):
        """(integer weights in the same storage, float weights, integer values) at ``scale``."""
        if self.kind == "sparse":
            wi = self.w.copy()
            wi.data = np.clip(round_half_away(wi.data * scale), -wmax, wmax)
            return wi, self.w.data, wi.data
        wi = np.clip(round_half_away(self.w * scale), -wmax, wmax)
        return wi, self.w.ravel(), wi.ravel()


def _abs_col_bound(kind: str, wi, pre_map) -> int:
    if kind == "conv":
        a = np.abs(wi.astype(np.int64))
        return int(a.reshape(a.shape[0], -1).sum(axis=1).max(initial=0))
    if kind == "dense":
        rows = 1 if pre_map is None else max(int(np.diff(pre_map.indptr).max(initial=0)), 1)
        return int(np.abs(wi.astype(np.int64)).sum(axis=1).max(initial=0)) * rows
    return int(np.asarray(abs(wi).astype(np.int64).sum(axis=0)).max(initial=0))


def quantize(net: Net, chip=None, *, weight_bits: int | None = None, membrane_bits: int | None = None,
             leak_frac_bits: int | None = None, input_bits: int | None = None,
             max_input: float = QUANT_MAX_INPUT, headroom_bits: int = QUANT_HEADROOM_BITS,
             max_acc_shift: int = QUANT_MAX_ACC_SHIFT, max_nnz: int | None = None):
    """Quantise a float Net to integer weights, thresholds, biases and leaks.

    Parameters
    ----------
    net : Net
        a lowered float network (``models.lower``).
    chip : hwsim.ChipConfig, optional
        supplies ``core.weight_bits``, ``core.membrane_bits``, ``core.leak_frac_bits``
        where present; an explicit keyword that disagrees with the chip is an error.
    weight_bits, membrane_bits, leak_frac_bits, input_bits : int
        defaults 8, 16, 12, 8 (or the chip's).
    max_input, headroom_bits, max_acc_shift
        defaults ``QUANT_MAX_INPUT``, ``QUANT_HEADROOM_BITS``, ``QUANT_MAX_ACC_SHIFT`` of
        :mod:`models.defaults` (1.0, 2, 16).
    max_input : float
        largest real input value (1.0 for pixels in [0, 1]); a real-valued input
        is sent as the unsigned integer ``round(x (2^input_bits - 1) / max_input)``.
    headroom_bits : int
        the largest threshold of a population is kept below
        ``2^(membrane_bits - 1 - headroom_bits)`` when an accumulator shift allows.
    max_acc_shift : int
        largest accumulator shift ``k_j`` (0 = direct accumulation only).
    max_nnz : int, optional
        limit for expanding an irregular ``pre_map`` to CSR (default
        ``models.net.DEFAULT_MAX_NNZ``).

    Returns
    -------
    (qnet, report)
        ``qnet``: a new :class:`Net` with ``quantized = True`` and integer storage
        (layout in :mod:`models.intref`), sharing no arrays with ``net``;
        ``report``: a :class:`QuantReport` (``report.table()`` for text).

    Raises
    ------
    QuantizationError
        naming the population or projection and the limit it breaks (a threshold
        that rounds to 0 or does not fit ``membrane_bits``, a leak that rounds to 0,
        a bias beyond the membrane range, an already quantised net, ...).

    Examples
    --------
    >>> qnet, report = quantize(models.lower(graph), weight_bits=8)   # doctest: +SKIP
    >>> print(report.table())                                          # doctest: +SKIP
    """
    if getattr(net, "quantized", False):
        raise QuantizationError("net is already quantised")
    wb = _setting("weight_bits", weight_bits, chip)
    mb = _setting("membrane_bits", membrane_bits, chip)
    fb = _setting("leak_frac_bits", leak_frac_bits, chip)
    ib = _setting("input_bits", input_bits, chip)
    _check_range("weight_bits", wb, 2, 32)
    _check_range("membrane_bits", mb, 2, 48)
    _check_range("leak_frac_bits", fb, 0, 60 - mb)
    _check_range("input_bits", ib, 1, 24)
    _check_range("headroom_bits", int(headroom_bits), 0, mb - 2)
    _check_range("max_acc_shift", int(max_acc_shift), 0, 48)
    if not (np.isfinite(max_input) and max_input > 0):
        raise QuantizationError(f"max_input must be a positive number, got {max_input!r}")
    if not (np.isfinite(net.dt) and net.dt > 0):
        raise QuantizationError(f"net dt must be > 0, got {net.dt}")
    from models.net import DEFAULT_MAX_NNZ

    max_nnz = DEFAULT_MAX_NNZ if max_nnz is None else max_nnz
    wmax, mmax = (1 << (wb - 1)) - 1, (1 << (mb - 1)) - 1
    limit = mmax / 2 ** int(headroom_bits)
    s_in = 1.0 if net.input_spiking else ((1 << ib) - 1) / float(max_input)
    settings = dict(weight_bits=wb, membrane_bits=mb, leak_frac_bits=fb, input_bits=ib,
                    input_scale=s_in, max_input=float(max_input), headroom_bits=int(headroom_bits),
                    max_acc_shift=int(max_acc_shift))
    report = QuantReport(settings)
    units: dict = {}
    meta_pops, meta_projs = {}, {}
    new_pops = [Population(net.input.name, "input", tuple(net.input.shape))]
    new_projs: dict = {}

    for pop in net.populations[1:]:
        f = _gain(pop, float(net.dt))
        incoming = net.incoming(pop.name)
        effs, s_src = [], []
        for q in incoming:
            src = net.pop[q.src]
            if src.model in SPIKING_SOURCES:
                s = s_in if q.src == net.input.name else 1.0
            elif q.src in units:
                s = units[q.src]
            else:
                raise QuantizationError(
                    f"projection '{q.name}': its source '{q.src}' ({src.model}) carries real values and comes "
                    f"later in the evaluation order (recurrent); its unit is not known yet")
            effs.append(_Eff(q, f, max_nnz))
            s_src.append(s)
        u_wj = [wmax * s / e.max_abs if e.max_abs > 0 else math.inf for e, s in zip(effs, s_src)]
        u_w = min(u_wj, default=math.inf)
        nm = neurons.model(pop.model)
        th_key = nm.ceiling  # the threshold, or an ANN unit's a_max: the headroom is left above it
        theta = None
        if th_key is not None:
            theta = np.broadcast_to(np.asarray(pop.params[th_key], dtype=np.float64).ravel(), (pop.size,))
            if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
                raise QuantizationError(f"population '{pop.name}': {th_key} must be finite and > 0")
        theta_max = None if theta is None else float(theta.max(initial=0.0))
        # an activation (ANN unit) is sent as an input_bits-wide operand: a_max_q <= 2^input_bits - 1
        lim = float(2 ** ib - 1) if nm.activation else limit
        K = 0
        if math.isinf(u_w):
            unit = lim / theta_max if theta_max else 1.0
        else:
            if theta_max:
                while K < max_acc_shift and theta_max * u_w / 2 ** K > lim:
                    K += 1
            unit = u_w / 2 ** K
        if nm.activation and theta_max and theta_max * unit > lim * (1 + 1e-12):
            raise QuantizationError(
                f"population '{pop.name}' ({pop.model}): a_max {theta_max:g} needs {theta_max * unit:.0f} levels at "
                f"the unit its weights allow, above the {ib}-bit activation (2^{ib} - 1); raise core.input_bits "
                f"or max_acc_shift ({max_acc_shift})")
        units[pop.name] = unit

        # projections into this population
        for q, e, s, uj in zip(incoming, effs, s_src, u_wj):
            k = K
            while k < max_acc_shift and unit * 2 ** (k + 1) <= uj * (1 + 1e-12):
                k += 1
            scale = unit * 2 ** k / s
            wi, wf, vi = e.quantize(scale, wmax)
            err = vi / scale - wf
            ma = e.max_abs if e.max_abs > 0 else 1.0
            nz = wf != 0
            kw = dict(delay_steps=q.delay_steps, mode=q.mode)
            if e.kind == "conv":
                nq = ConvProjection(q.name, q.src, q.dst, wi.astype(np.int32), q.geom, **kw)
            elif e.kind == "dense":
                nq = DenseProjection(q.name, q.src, q.dst, wi.astype(np.int32), e.pre_map, **kw)
            else:
                # the integer CSR first: SparseProjection's eliminate_zeros works in place on
                # arrays that a same-dtype csr_matrix(wi) shares with wi
                csr = sp.csr_matrix(wi, dtype=np.int32, copy=True)
                csr.eliminate_zeros()
                nq = SparseProjection(q.name, q.src, q.dst, csr.astype(np.float64), **kw)
                nq.csr, nq._csc = csr, None
            for start, vec in q.bias_terms:
                nq.bias_terms.append((int(start), _membrane_int(np.asarray(vec, dtype=np.float64) * f * unit,
                                                                mmax, f"projection '{q.name}' bias term")))
            new_projs[q.name] = nq
            meta_projs[q.name] = dict(acc_shift=int(k), weight_scale=float(scale), input_scale=float(s))
            report.projections.append(ProjectionQuant(
                q.name, q.src, q.dst, e.kind, float(s), float(scale), int(k), e.max_abs,
                int(np.abs(vi).max(initial=0)),
                float(np.sqrt(np.mean(err ** 2)) / ma) if err.size else 0.0,
                float(np.abs(err).max(initial=0.0) / ma),
                float(np.mean(vi[nz] == 0)) if nz.any() else 0.0,
                _abs_col_bound(e.kind, wi, e.pre_map)))

        # integer parameters
        params = {}
        for key in nm.membrane_params:
            val = np.broadcast_to(np.asarray(pop.params[key], dtype=np.float64).ravel(), (pop.size,))
            params[key] = _membrane_int(val * unit, mmax, f"population '{pop.name}' {key}")
        theta_int = None
        if theta is not None:
            ti = params[th_key]
            if ti.min() < 1:
                raise QuantizationError(
                    f"population '{pop.name}': {th_key}={theta.min():.6g} rounds to {ti.min()} at unit "
                    f"{unit:.6g}; it must be >= 1 (raise weight_bits)")
            theta_int = int(ti.max())
        for key, tau in nm.leak_params.items():
            params[key] = _alpha_q(pop, tau, net.dt, fb)
        bias = None
        if pop.bias is not None:
            bias = _membrane_int(np.asarray(pop.bias, dtype=np.float64).ravel() * f * unit, mmax,
                                 f"population '{pop.name}' bias")
        new_pops.append(Population(pop.name, pop.model, tuple(pop.shape), params, bias))
        meta_pops[pop.name] = dict(unit=float(unit), unit_shift=int(K))
        report.populations.append(PopulationQuant(
            pop.name, pop.model, float(unit), int(K), theta_int,
            None if theta_int is None else mmax / theta_int,
            0 if bias is None else int(np.abs(bias).max(initial=0))))

    projs = [new_projs[q.name] for q in net.projections]
    meta = dict(net.metadata)
    meta["quant"] = dict(settings, populations=meta_pops, projections=meta_projs)
    qnet = Net(new_pops, projs, net.output, dt=net.dt, input_spiking=net.input_spiking, metadata=meta)
    qnet.quantized = True
    return qnet, report


def _membrane_int(values: np.ndarray, mmax: int, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise QuantizationError(f"{what}: NaN or infinite values")
    v = round_half_away(values)
    if v.size and (v.max() > mmax or v.min() < -mmax - 1):
        worst = int(v[np.argmax(np.abs(v))])
        raise QuantizationError(f"{what}: integer value {worst} does not fit the signed "
                                f"membrane_bits range [{-mmax - 1}, {mmax}]")
    return v


def _alpha_q(pop: Population, key: str, dt: float, frac_bits: int) -> np.ndarray:
    tau = np.broadcast_to(np.asarray(pop.params[key], dtype=np.float64).ravel(), (pop.size,))
    a = round_half_away(dt / tau * 2.0 ** frac_bits)
    if a.min() < 1:
        raise QuantizationError(
            f"population '{pop.name}': leak dt/{key} = {dt / tau.max():.3g} rounds to 0 with "
            f"leak_frac_bits={frac_bits} (raise leak_frac_bits)")
    return a
