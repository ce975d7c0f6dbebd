r"""The neuron models: one table, one entry per model, read by every layer of the flow.

Each :class:`NeuronModel` names the model, whether it spikes, whether it carries a
membrane state (and a synaptic current), its float parameters (NIR's fields), its
integer parameters (what ``mapper.quantize`` leaves on the population), its integer
code on the chip, and, side by side, its three update steps with their equations:

* ``float_update`` -- NIR's forward Euler in float64 (:mod:`models.reference`);
* ``int_update`` -- the integer contract in numpy (:mod:`models.intref`);
* ``nb_update`` -- the same integers in Numba, one int64 neuron at a time; the engine's
  kernel calls :func:`int_update_nb`, which dispatches on the model's code (Numba cannot
  call through a Python table, so the codes are module-level constants it compiles in).

An update returns the new ``(v, i)`` *before* spikes: the firing, reset and membrane
floor that follow are the same for every model and live in :func:`fire_float`,
:func:`fire_int` (and the kernel), as written in :mod:`models.reference` and
:mod:`models.intref`. A model without state (Threshold, Identity) computes its output
from the input current ``I`` alone: Threshold ``z = [I >= theta]`` (``v`` stays 0),
Identity ``v = I`` (saturated in integers), output ``v``.

Notation: ``I`` the input current of the step, ``dt`` the graph's time step,
``alpha = dt / tau``; in integers ``M = membrane_bits``, ``F = leak_frac_bits``,
``sat`` saturation to M bits, ``rshift_round`` the rounding right shift
(:mod:`models.intarith`). Adding a model: one :class:`NeuronModel` entry in
:data:`MODELS` (a new code), one branch in :func:`int_update_nb`, and its tests
(float, integer, chip exactness); every other module reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numba import njit

from .intarith import rshift_round, rshift_round_nb, saturate_nb

__all__ = ["NeuronModel", "MODELS", "BY_NAME", "BY_CODE", "NEURON_MODELS", "NIR_NEURON_TYPES", "SPIKING",
           "INPUT_CODE", "CODE_IF", "CODE_I", "CODE_LIF", "CODE_LI", "CODE_CUBALIF", "CODE_THRESHOLD",
           "CODE_IDENTITY", "CODE_CUBALI", "CODE_ANN", "model",
           "fire_float", "fire_int", "int_update_nb", "floor_applies", "per_code"]

# the chip's integer codes (``hwsim.program``'s ``pop_model``); the graph input is -1
INPUT_CODE = -1
CODE_IF, CODE_I, CODE_LIF, CODE_LI, CODE_CUBALIF, CODE_THRESHOLD, CODE_IDENTITY, CODE_CUBALI, CODE_ANN = range(9)


@dataclass(frozen=True)
class NeuronModel:
    """One neuron model (see the module docstring).

    ``membrane_params``: float parameters quantised as ``round_half_away(value * U_p)``
    (kept under the same name); ``leak_params``: integer leak name -> the time constant
    it comes from, ``round_half_away((dt / tau) 2^F)``; ``chip_params``: the engine's
    per-neuron field (``thr``, ``vreset``, ``alpha``, ``asyn``, ``vleak``) -> integer
    parameter; ``threshold``: the parameter a spike compares against (None: never
    spikes); ``ceiling``: the parameter that bounds the membrane the quantiser leaves
    headroom for (the threshold, or an ANN unit's ``a_max``); ``gain(arr, dt)``: the forward-Euler factor ``f`` the quantiser folds into
    the weights and biases (``arr(name)`` gives a checked float parameter array);
    ``activation``: the output is an unsigned activation the next layer reads in MAC
    mode, at most ``2^input_bits - 1`` (the MAC datapath's operand width, that of a
    real-valued graph input; Tianjic's 8-bit ANN activations), which the quantiser's
    choice of unit guarantees."""

    name: str
    code: int
    spikes: bool
    state: bool
    current: bool
    float_params: tuple
    membrane_params: tuple
    leak_params: dict
    chip_params: dict
    threshold: str | None
    ceiling: str | None
    gain: Callable
    float_update: Callable
    int_update: Callable
    nb_update: Callable
    nir: bool = True
    activation: bool = False
    doc: str = field(default="", compare=False)

    @property
    def int_params(self) -> tuple:
        """Names of the integer parameters of a quantised population of this model."""
        return tuple(self.membrane_params) + tuple(self.leak_params)

    @property
    def multi(self) -> bool:
        """Spikes as a count (``spikes="multi"`` may emit more than one per step): a spiking model with a membrane."""
        return self.spikes and self.state

    @property
    def state_words(self) -> int:
        """Words of state per neuron on the chip (``v``, and ``i`` for a current-based model)."""
        return 2 if self.current else 1


# ------------------------------------------------------------------------ the updates
# float: (p, dt, v, i, I) -> (v, i); integer: (p, F, lo, hi, v, i, I) -> (v, i) with
# lo, hi = -2^(M-1), 2^(M-1) - 1; Numba: (v, i, I, thr, alpha, asyn, vleak, F, lo, hi) -> (v, i), one
# neuron, with its engine fields (thr, alpha, asyn, vleak: ``chip_params``)

def if_float(p, dt, v, i, I):
    r"""IF, I: :math:`v \leftarrow v + dt\,R\,I`."""
    return v + dt * p["r"] * I, i


def if_int(p, F, lo, hi, v, i, I):
    """IF, I: ``v <- sat(v + I)`` (``dt R`` is in the weights)."""
    return np.clip(v + I, lo, hi), i


@njit(cache=True, inline="always")
def if_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi):
    """IF, I: ``v <- sat(v + I)``."""
    return saturate_nb(v + I, lo, hi), i


def lif_float(p, dt, v, i, I):
    r"""LIF, LI: :math:`v \leftarrow v + \frac{dt}{\tau}(v_{leak} - v + R\,I)`."""
    return v + (dt / p["tau"]) * (p["v_leak"] - v + p["r"] * I), i


def lif_int(p, F, lo, hi, v, i, I):
    """LIF, LI: ``v <- sat(v + I + rshift_round(alpha_q * (v_leak - v), F))``."""
    return np.clip(v + I + rshift_round(p["alpha_q"] * (p["v_leak"] - v), F), lo, hi), i


@njit(cache=True, inline="always")
def lif_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi):
    """LIF, LI: ``v <- sat(v + I + rshift_round(alpha_q * (v_leak - v), F))``."""
    return saturate_nb(v + I + rshift_round_nb(alpha * (vleak - v), F), lo, hi), i


def cuba_float(p, dt, v, i, I):
    r"""CubaLIF, CubaLI: :math:`I_s \leftarrow I_s + \frac{dt}{\tau_{syn}}(-I_s + w_{in} I)`, then
    :math:`v \leftarrow v + \frac{dt}{\tau_{mem}}(v_{leak} - v + R\,I_s)` (with the new :math:`I_s`)."""
    i = i + (dt / p["tau_syn"]) * (-i + p["w_in"] * I)
    return v + (dt / p["tau_mem"]) * (p["v_leak"] - v + p["r"] * i), i


def cuba_int(p, F, lo, hi, v, i, I):
    """CubaLIF, CubaLI: ``i <- sat(i + I + rshift_round(-alpha_syn_q * i, F))``, then
    ``v <- sat(v + i + rshift_round(alpha_mem_q * (v_leak - v), F))`` (with the new ``i``;
    ``i`` is ``alpha_mem R I_s`` in membrane units, see :mod:`models.intref`)."""
    i = np.clip(i + I + rshift_round(-p["alpha_syn_q"] * i, F), lo, hi)
    return np.clip(v + i + rshift_round(p["alpha_mem_q"] * (p["v_leak"] - v), F), lo, hi), i


@njit(cache=True, inline="always")
def cuba_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi):
    """CubaLIF, CubaLI: ``i <- sat(i + I + rshift_round(-alpha_syn_q * i, F))``, then
    ``v <- sat(v + i + rshift_round(alpha_mem_q * (v_leak - v), F))`` (``alpha`` = alpha_mem_q,
    ``asyn`` = alpha_syn_q)."""
    i = saturate_nb(i + I + rshift_round_nb(-asyn * i, F), lo, hi)
    return saturate_nb(v + i + rshift_round_nb(alpha * (vleak - v), F), lo, hi), i


def threshold_float(p, dt, v, i, I):
    r"""Threshold: stateless, :math:`z = [I \ge \theta]` (by the caller); ``v`` stays 0."""
    return v, i


def threshold_int(p, F, lo, hi, v, i, I):
    """Threshold: stateless, ``z = [I >= threshold]`` (by the caller); ``v`` stays 0."""
    return v, i


@njit(cache=True, inline="always")
def threshold_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi):
    """Threshold: ``v`` unchanged (0); the kernel compares ``I`` with the threshold."""
    return v, i


def identity_float(p, dt, v, i, I):
    """Identity (a lowered Output of a linear node): ``v = I``, output ``v``."""
    return np.array(I, dtype=np.float64, copy=True), i


def identity_int(p, F, lo, hi, v, i, I):
    """Identity: ``v <- sat(I)``, output ``v``."""
    return np.clip(I, lo, hi), i


@njit(cache=True, inline="always")
def identity_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi):
    """Identity: ``v <- sat(I)``."""
    return saturate_nb(I, lo, hi), i


def ann_float(p, dt, v, i, I):
    r"""ANN (a quantised ReLU unit of a hybrid network): stateless,
    :math:`a = \min(\max(I, 0), a_{max})`, output :math:`a` (kept as ``v``)."""
    return np.clip(I, 0.0, p["a_max"]), i


def ann_int(p, F, lo, hi, v, i, I):
    """ANN: ``a = min(max(I, 0), a_max_q)`` with ``a_max_q = round_half_away(a_max U_p)``
    (``1 <= a_max_q <= 2^(M-1) - 1``, checked by the quantiser): ``a`` is the value the
    neuron sends, a multi-bit event of at most ``a_max_q``; output ``a``."""
    return np.minimum(np.maximum(I, 0), p["a_max"]), i


@njit(cache=True, inline="always")
def ann_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi):
    """ANN: ``a = min(max(I, 0), a_max_q)`` (``thr`` holds ``a_max_q``)."""
    return min(max(I, np.int64(0)), thr), i


# ------------------------------------------------------------------------ the gains

def _gain_if(arr, dt):
    return dt * arr("r")


def _gain_lif(arr, dt):
    return dt / arr("tau") * arr("r")


def _gain_cuba(arr, dt):
    return dt / arr("tau_syn") * arr("w_in") * (dt / arr("tau_mem")) * arr("r")


def _gain_one(arr, dt):
    return None  # factor 1 (the caller broadcasts)


# ------------------------------------------------------------------------ the table

_LIF_CHIP = {"alpha": "alpha_q", "vleak": "v_leak"}
_CUBA_CHIP = {"alpha": "alpha_mem_q", "asyn": "alpha_syn_q", "vleak": "v_leak"}
_SPIKE_CHIP = {"thr": "v_threshold", "vreset": "v_reset"}
_CUBA_LEAKS = {"alpha_syn_q": "tau_syn", "alpha_mem_q": "tau_mem"}

MODELS = (
    NeuronModel("IF", CODE_IF, spikes=True, state=True, current=False,
                float_params=("r", "v_threshold", "v_reset"), membrane_params=("v_threshold", "v_reset"),
                leak_params={}, chip_params=_SPIKE_CHIP, threshold="v_threshold", ceiling="v_threshold",
                gain=_gain_if,
                float_update=if_float, int_update=if_int, nb_update=if_nb,
                doc="integrate and fire"),
    NeuronModel("LIF", CODE_LIF, spikes=True, state=True, current=False,
                float_params=("tau", "r", "v_leak", "v_threshold", "v_reset"),
                membrane_params=("v_leak", "v_threshold", "v_reset"), leak_params={"alpha_q": "tau"},
                chip_params={**_SPIKE_CHIP, **_LIF_CHIP}, threshold="v_threshold", ceiling="v_threshold",
                gain=_gain_lif,
                float_update=lif_float, int_update=lif_int, nb_update=lif_nb,
                doc="leaky integrate and fire"),
    NeuronModel("LI", CODE_LI, spikes=False, state=True, current=False,
                float_params=("tau", "r", "v_leak"), membrane_params=("v_leak",), leak_params={"alpha_q": "tau"},
                chip_params=_LIF_CHIP, threshold=None, ceiling=None, gain=_gain_lif,
                float_update=lif_float, int_update=lif_int, nb_update=lif_nb,
                doc="leaky integrator (readout: outputs v)"),
    NeuronModel("CubaLIF", CODE_CUBALIF, spikes=True, state=True, current=True,
                float_params=("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
                membrane_params=("v_leak", "v_threshold", "v_reset"), leak_params=_CUBA_LEAKS,
                chip_params={**_SPIKE_CHIP, **_CUBA_CHIP}, threshold="v_threshold", ceiling="v_threshold",
                gain=_gain_cuba,
                float_update=cuba_float, int_update=cuba_int, nb_update=cuba_nb,
                doc="current-based leaky integrate and fire"),
    NeuronModel("CubaLI", CODE_CUBALI, spikes=False, state=True, current=True,
                float_params=("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
                membrane_params=("v_leak",), leak_params=_CUBA_LEAKS,
                chip_params=_CUBA_CHIP, threshold=None, ceiling=None, gain=_gain_cuba,
                float_update=cuba_float, int_update=cuba_int, nb_update=cuba_nb,
                doc="current-based leaky integrator (readout: CubaLIF without threshold, outputs v)"),
    NeuronModel("I", CODE_I, spikes=False, state=True, current=False,
                float_params=("r",), membrane_params=(), leak_params={}, chip_params={}, threshold=None,
                ceiling=None, gain=_gain_if, float_update=if_float, int_update=if_int, nb_update=if_nb,
                doc="integrator (readout: outputs v)"),
    NeuronModel("Threshold", CODE_THRESHOLD, spikes=True, state=False, current=False,
                float_params=("threshold",), membrane_params=("threshold",), leak_params={},
                chip_params={"thr": "threshold"}, threshold="threshold", ceiling="threshold", gain=_gain_one,
                float_update=threshold_float, int_update=threshold_int, nb_update=threshold_nb,
                doc="stateless threshold z = [I >= theta]"),
    NeuronModel("Identity", CODE_IDENTITY, spikes=False, state=False, current=False,
                float_params=(), membrane_params=(), leak_params={}, chip_params={}, threshold=None,
                ceiling=None, gain=_gain_one, float_update=identity_float, int_update=identity_int,
                nb_update=identity_nb, nir=False, doc="the value of a linear Output node (lowering's readout)"),
    NeuronModel("ANN", CODE_ANN, spikes=False, state=False, current=False,
                float_params=("a_max",), membrane_params=("a_max",), leak_params={}, chip_params={"thr": "a_max"},
                threshold=None, ceiling="a_max", gain=_gain_one, float_update=ann_float, int_update=ann_int,
                nb_update=ann_nb, nir=False, activation=True,
                doc="quantised ReLU unit of a hybrid ANN/SNN network (no NIR node: built as a Net population)"),
)
BY_NAME = {m.name: m for m in MODELS}
BY_CODE = {m.code: m for m in MODELS}
#: every model the chip and the references run
NEURON_MODELS = tuple(m.name for m in MODELS)
#: the NIR node types that are neuron models (Identity is made by lowering)
NIR_NEURON_TYPES = tuple(m.name for m in MODELS if m.nir)
#: the models whose output is spikes (a spike count), not a value
SPIKING = tuple(m.name for m in MODELS if m.spikes)


def model(name: str) -> NeuronModel:
    """The table entry of model ``name``; KeyError names the known models."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown neuron model {name!r}; known: {', '.join(NEURON_MODELS)}") from None


def floor_applies(name: str) -> bool:
    """Whether the membrane floor ``v_min`` applies to model ``name`` (it has a membrane state)."""
    return BY_NAME[name].state


# ------------------------------------------------------------------------ firing

def fire_float(v, th, v_reset, reset: str, spikes: str):
    r"""Spikes and reset of the updated membrane ``v`` (float):
    ``binary`` :math:`z = [v \ge \theta]`, ``multi`` :math:`z = \lfloor v/\theta\rfloor` for
    :math:`v \ge \theta` else 0; ``subtract`` :math:`v \leftarrow v - z\theta`, ``zero``
    :math:`v \leftarrow v_{reset}` where :math:`z > 0`. Returns ``(z, v)``."""
    if spikes == "binary":
        z = (v >= th).astype(np.float64)
    else:
        z = np.where(v >= th, np.floor(v / th), 0.0)
    if reset == "subtract":
        v = v - z * th
    else:
        v = np.where(z > 0, v_reset, v)
    return z, v


def fire_int(v, th, v_reset, reset: str, spikes: str):
    """Spikes and reset of the updated integer membrane ``v`` (modified in place):
    ``binary`` ``z = [v >= theta]`` (bool), ``multi`` ``z = v // theta`` where ``v >= theta``
    else 0; ``subtract`` ``v <- v - z * theta``, ``zero`` ``v <- v_reset`` where ``z > 0``.
    Neither leaves the membrane range. Returns ``(z, v)``."""
    fired = v >= th
    if spikes == "binary":
        z = fired
        if reset == "subtract":
            np.subtract(v, th, out=v, where=fired)
    else:
        z = np.where(fired, v // th, 0)
        if reset == "subtract":
            v -= z * th
    if reset == "zero":
        np.copyto(v, np.broadcast_to(v_reset, v.shape), where=fired)
    return z, v


@njit(cache=True, inline="always")
def int_update_nb(code, v, i, I, thr, alpha, asyn, vleak, F, lo, hi):
    """The Numba step of the model with ``code``: the table's ``nb_update`` of that model,
    chosen by the module-level codes (compiled in). Returns ``(v, i)``."""
    if code == CODE_IF or code == CODE_I:
        return if_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi)
    if code == CODE_LIF or code == CODE_LI:
        return lif_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi)
    if code == CODE_CUBALIF or code == CODE_CUBALI:
        return cuba_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi)
    if code == CODE_IDENTITY:
        return identity_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi)
    if code == CODE_ANN:
        return ann_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi)
    return threshold_nb(v, i, I, thr, alpha, asyn, vleak, F, lo, hi)


def _check_table() -> None:
    """The table is consistent: unique names and codes, and :func:`int_update_nb`'s
    branches name the same step as each entry's ``nb_update``."""
    if len(BY_NAME) != len(MODELS) or len(BY_CODE) != len(MODELS):
        raise RuntimeError("models.neurons: two entries share a name or a code")
    routes = {CODE_IF: if_nb, CODE_I: if_nb, CODE_LIF: lif_nb, CODE_LI: lif_nb, CODE_CUBALIF: cuba_nb,
              CODE_CUBALI: cuba_nb, CODE_IDENTITY: identity_nb, CODE_THRESHOLD: threshold_nb, CODE_ANN: ann_nb}
    for m in MODELS:
        if routes.get(m.code) is not m.nb_update:
            raise RuntimeError(f"models.neurons: {m.name}'s nb_update is not what int_update_nb dispatches to")


_check_table()


def per_code(attr: str) -> np.ndarray:
    """``int(getattr(model, attr))`` of every model, indexed by its code (int64; e.g.
    ``per_code("multi")[pop_model]`` says which populations send spike counts)."""
    a = np.zeros(max(BY_CODE) + 1, np.int64)
    for m in MODELS:
        a[m.code] = int(getattr(m, attr))
    return a
