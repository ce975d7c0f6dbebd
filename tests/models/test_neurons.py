"""The neuron-model table: one home read by every layer, and each model's three steps agree."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.chip import NEURON_MODELS
from hwsim.program import MODEL_CODES
from mapper.quantize import SPIKING_SOURCES
from models import neurons
from models.graph import NEURON_TYPES, PARAM_FIELDS, SPIKING_TYPES
from models.intarith import round_half_away, rshift_round, rshift_round_nb, saturate, saturate_nb
from models.lowering import NEURON_PARAMS
from models.net import Population


def test_every_layer_reads_the_table():
    names = tuple(m.name for m in neurons.MODELS)
    assert NEURON_MODELS == names
    assert MODEL_CODES == {"input": -1, **{m.name: m.code for m in neurons.MODELS}}
    # the codes of the models the project had before the table are unchanged (programs, tests)
    assert [MODEL_CODES[k] for k in ("IF", "I", "LIF", "LI", "CubaLIF", "Threshold", "Identity", "CubaLI", "ANN")] == \
        list(range(9))
    assert set(NEURON_TYPES) == set(names) - {"Identity", "ANN"}
    assert set(SPIKING_TYPES) == {"IF", "LIF", "CubaLIF", "Threshold"}
    assert SPIKING_SOURCES == ("input", "IF", "LIF", "CubaLIF", "Threshold")
    for t in NEURON_TYPES:
        assert PARAM_FIELDS[t] == NEURON_PARAMS[t] == neurons.model(t).float_params
    assert [Population("p", m, (1,)).spiking for m in names] == [neurons.model(m).spikes for m in names]
    assert neurons.model("CubaLI").int_params == ("v_leak", "alpha_syn_q", "alpha_mem_q")
    assert neurons.per_code("state_words").tolist() == [1, 1, 1, 1, 2, 1, 1, 2, 1]
    with pytest.raises(KeyError, match="Izhikevich.*known: IF"):
        neurons.model("Izhikevich")


def test_integer_helpers_by_hand_and_numba_equal_numpy():
    assert [int(rshift_round(np.int64(x), k)) for x, k in ((3, 1), (-3, 1), (-5, 2), (-6, 2), (-7, 2), (9, 0))] == \
        [2, -1, -1, -1, -2, 9]
    assert round_half_away([2.5, -2.5, 0.49, -0.5]).tolist() == [3, -3, 0, -1]
    assert saturate(np.array([300, -300, 5]), 9).tolist() == [255, -256, 5]
    rng = np.random.default_rng(0)
    xs = rng.integers(-(1 << 40), 1 << 40, 500)
    for k in (0, 1, 7, 12):
        assert [rshift_round_nb(int(x), k) for x in xs] == rshift_round(xs, k).tolist()
    assert [saturate_nb(int(x), -128, 127) for x in xs[:50]] == saturate(xs[:50], 8).tolist()


def test_cubali_steps_by_hand():
    """CubaLI, tau_syn = 2, tau_mem = 4, R = 2, w_in = 1, dt = 1: float
    i = 0.5 (I - i) + i, v = v + 0.25 (-v + 2 i); I = 1 then 0: i = 0.5, v = 0.25; i = 0.25,
    v = 0.25 + 0.25 (0.5 - 0.25) = 0.3125. Integer (F = 12, alpha_syn_q = 2048,
    alpha_mem_q = 1024), I = 1000 then 0: i = 1000, v = 1000; i = 1000 + rshift_round(-2048000, 12)
    = 1000 - 500 = 500, v = 1000 + 500 + rshift_round(-1024000, 12) = 1500 - 250 = 1250."""
    m = neurons.model("CubaLI")
    assert (m.spikes, m.state, m.current) == (False, True, True)
    p = {k: np.array([v]) for k, v in dict(tau_syn=2.0, tau_mem=4.0, r=2.0, w_in=1.0, v_leak=0.0).items()}
    v, i = m.float_update(p, 1.0, np.zeros(1), np.zeros(1), np.ones(1))
    assert (i.tolist(), v.tolist()) == ([0.5], [0.25])
    v, i = m.float_update(p, 1.0, v, i, np.zeros(1))
    assert (i.tolist(), v.tolist()) == ([0.25], [0.3125])
    q = {"alpha_syn_q": np.array([2048]), "alpha_mem_q": np.array([1024]), "v_leak": np.array([0])}
    lo, hi = -(1 << 15), (1 << 15) - 1
    v, i = m.int_update(q, 12, lo, hi, np.zeros(1, np.int64), np.zeros(1, np.int64), np.array([1000]))
    assert (i.tolist(), v.tolist()) == ([1000], [1000])
    v, i = m.int_update(q, 12, lo, hi, v, i, np.array([0]))
    assert (i.tolist(), v.tolist()) == ([500], [1250])
    assert neurons.int_update_nb(m.code, 1000, 1000, 0, 0, 1024, 2048, 0, 12, lo, hi) == (1250, 500)


@pytest.mark.parametrize("name", [m.name for m in neurons.MODELS if m.state or not m.spikes])
def test_numba_step_equals_numpy_step(name):
    """Every model's ``int_update_nb`` (the kernel's) equals its numpy ``int_update``, saturation included."""
    m = neurons.model(name)
    rng = np.random.default_rng(1)
    n, M, F = 400, 10, 8
    lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
    p = {"alpha_q": rng.integers(1, 256, n), "alpha_mem_q": rng.integers(1, 256, n),
         "alpha_syn_q": rng.integers(1, 256, n), "v_leak": rng.integers(-50, 50, n)}
    v, i = rng.integers(lo, hi + 1, n), rng.integers(lo, hi + 1, n)
    I = rng.integers(-3 * hi, 3 * hi, n)
    alpha = p["alpha_mem_q"] if m.current else p["alpha_q"]
    p["a_max"] = rng.integers(1, hi, n)
    ev, ei = m.int_update(p, F, lo, hi, v.copy(), i.copy(), I)
    got = [neurons.int_update_nb(m.code, v[k], i[k], I[k], p["a_max"][k], alpha[k], p["alpha_syn_q"][k],
                                 p["v_leak"][k], F, lo, hi) for k in range(n)]
    assert [g[0] for g in got] == np.asarray(ev).tolist()
    if m.current:
        assert [g[1] for g in got] == np.asarray(ei).tolist()
    top = p["a_max"] if name == "ANN" else hi
    bottom = 0 if name == "ANN" else lo
    assert ((np.asarray(ev) == bottom) | (np.asarray(ev) == top)).any()  # saturation / clipping was exercised
