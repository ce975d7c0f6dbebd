"""Energy of a weight-stationary run (energy/stationary.py): the views price the stationary
counters; chip-ops checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from energy.estimate import estimate
from energy.tables import load_table
from hwsim import simulate
from hwsim.chip import load_chip
from mapper.mapping import map_model
from models.zoo.catalog import load


def test_chip_ops_and_paper_views_of_a_stationary_mlp_run():
    m = map_model(load("mnist_mlp"), load_chip("crossbar"), model="mnist_mlp")
    x = np.random.default_rng(0).random((4, 3, 1, 28, 28)).astype(np.float32)
    r = simulate(m, x)
    tech = load_table("horowitz45-fp32")
    e = estimate(r, tech, "chip-ops", mapping=m)
    # per inference: 4 steps x (784 x 400 MACs of the real-valued input layer + 400 x 10 ACs)
    macs, acs = 4 * 784 * 400, 4 * 400 * 10
    assert e.counts["macs"] == macs and e.counts["acs"] == acs
    assert e.total_pj == pytest.approx(tech.v("e_mac_pj") * macs + tech.v("e_ac_pj") * acs)
    assert set(e.per_layer) == {"if1", "if2"} and e.exact_layers
    # the paper view: E_MAC x FLOPs of the input layer once + E_AC x rate x T x FLOPs of fc2
    p = estimate(r, tech, "paper", mapping=m)
    z1 = int(r.counter("spikes")[:, 0].sum())  # if1 is on core 0
    assert p.total_pj == pytest.approx(tech.v("e_mac_pj") * 784 * 400
                                       + tech.v("e_ac_pj") * (z1 / (3 * 4 * 400)) * 4 * 400 * 10)
    h = estimate(r, tech, "hardware", mapping=m)
    assert h.totals["noc_hops"] == 0 and h.totals["compute_psum"] > 0  # 3 partial-sum chunks of fc1 are added
