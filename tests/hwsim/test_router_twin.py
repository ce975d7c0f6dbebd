"""The Numba router model equals its plain-Python twin cycle for cycle on random traffic."""

import numpy as np
import pytest

from hwsim.router import RouterParams, simulate_router
from hwsim.router_ref import simulate_router_ref
from hwsim.router_traffic import bernoulli_packets


def _random_params(rng) -> RouterParams:
    i = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    return RouterParams(i(1, 4), i(1, 4), vcs=i(1, 3), buffer_flits=i(1, 5), routing_cycles=i(0, 2),
                        vc_alloc_cycles=i(1, 2), sw_alloc_cycles=i(1, 2), switch_cycles=i(0, 2), link_cycles=i(0, 2),
                        credit_cycles=i(1, 2), inject_cycles=i(0, 2), eject_cycles=i(0, 2),
                        inject_flits_per_cycle=i(1, 2), eject_flits_per_cycle=i(1, 2))


@pytest.mark.parametrize("seed", range(16))
def test_twin_equal_on_random_traffic(seed):
    rng = np.random.default_rng(seed)
    p = _random_params(rng)
    pattern = "uniform" if seed % 4 else "hotspot"
    c, s, d, _ = bernoulli_packets(p.width * p.height, float(rng.uniform(0.05, 0.6)), 60, pattern, 1, seed)
    f = rng.integers(1, 7, size=c.size)
    a = simulate_router(p, c, s, d, f, max_cycles=4000)
    b = simulate_router_ref(p, c, s, d, f, max_cycles=4000)
    assert (a.delivery >= 0).all()  # XY on a mesh: everything arrives (no deadlock)
    np.testing.assert_array_equal(a.head_inject, b.head_inject)
    np.testing.assert_array_equal(a.delivery, b.delivery)
    np.testing.assert_array_equal(a.eject_flits, b.eject_flits)
    assert a.cycles == b.cycles


def test_twin_equal_past_saturation_with_a_cut_off():
    """Overloaded 4x4 mesh stopped mid-run: the same packets are in flight in both."""
    p = RouterParams(4, 4, vcs=2, buffer_flits=2)
    c, s, d, f = bernoulli_packets(16, 0.5, 200, "uniform", 3, 7)
    a = simulate_router(p, c, s, d, f, max_cycles=150, stop_when_done=False)
    b = simulate_router_ref(p, c, s, d, f, max_cycles=150, stop_when_done=False)
    assert (a.delivery < 0).any() and (a.delivery >= 0).any()
    np.testing.assert_array_equal(a.delivery, b.delivery)
    np.testing.assert_array_equal(a.head_inject, b.head_inject)
