"""The Numba router model equals its plain-Python twin cycle for cycle on random traffic."""

import numpy as np
import pytest

from hwsim.router import RouterParams, router_add, simulate_router
from hwsim.router_ref import simulate_router_ref
from hwsim.router_traffic import bernoulli_packets


def _random_params(rng) -> RouterParams:
    i = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    return RouterParams(i(1, 4), i(1, 4), vcs=i(1, 3), buffer_flits=i(1, 5), routing_cycles=i(0, 2),
                        vc_alloc_cycles=i(1, 2), sw_alloc_cycles=i(1, 2), switch_cycles=i(0, 2), link_cycles=i(0, 2),
                        credit_cycles=i(1, 2), inject_cycles=i(0, 2), eject_cycles=i(0, 2),
                        inject_flits_per_cycle=i(1, 2), eject_flits_per_cycle=i(1, 2))


def _spawn(st, ref, rng, delivered, n, spawned, cap=150):
    """Per delivered target (up to ``cap`` in all), a new random packet created 0-3
    cycles after that delivery, added to both the kernel state and the twin; returns
    the packets spawned so far."""
    for g in sorted(delivered):
        if spawned < cap:
            c = int(st.delivery[g]) + int(rng.integers(0, 4))
            s, d, f = int(rng.integers(0, n)), int(rng.integers(0, n)), int(rng.integers(1, 6))
            router_add(st, c, s, d, f)
            ref.add(c, s, d, f)
            spawned += 1
    return spawned


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


@pytest.mark.parametrize("seed", range(6))
def test_twin_equal_when_packets_are_added_while_it_runs(seed):
    """The incremental use of the engine's step timing: after every cycle that delivered
    a packet, each delivery spawns a reply created a few cycles after it (ids in the
    order added, queues in (created, id) order, idle cycles skipped). Both models give
    the same deliveries, flits per link, and skipped cycles."""
    from hwsim.router import NO_CYCLE, router_cycle, router_next, router_state
    from hwsim.router_ref import RouterSim

    rng = np.random.default_rng(100 + seed)
    p = _random_params(rng)
    n = p.width * p.height
    seed_pk = [(int(rng.integers(0, 30)), int(rng.integers(0, n)), int(rng.integers(0, n)), int(rng.integers(1, 6)))
               for _ in range(12)]
    st = router_state(np.array(p.kernel_args(), np.int64), 200, 0)
    ref = RouterSim(p)
    for c, s, d, f in seed_pk:
        router_add(st, c, s, d, f)
        ref.add(c, s, d, f)
    t, spawned, cycles = 0, 0, []
    while True:
        t1, t2 = router_next(st, t), ref.next_cycle(t)
        assert t1 == t2
        if t1 == NO_CYCLE:
            break
        t = t1
        k = router_cycle(st, t)
        got = ref.cycle(t)
        assert sorted(st.dl_list[:k]) == sorted(got)  # the order within a cycle carries no meaning
        cycles.append(t)
        spawned = _spawn(st, ref, rng, got, n, spawned)
        t += 1
    m = int(st.sc[0])
    assert m == len(ref.delivery) and (st.delivery[:m] >= 0).all()
    np.testing.assert_array_equal(st.delivery[:m], ref.delivery)
    np.testing.assert_array_equal(st.head_inj[:m], ref.head_inj)
    np.testing.assert_array_equal(st.link_flits, ref.link_flits)


def _random_multicast(rng, p: RouterParams, n_pk: int, horizon: int):
    """Random packets, about half of them multicast to 2-5 distinct nodes (at most
    ``buffer_flits`` flits), the rest unicast (1-6 flits)."""
    n = p.width * p.height
    created = np.sort(rng.integers(0, horizon, size=n_pk))
    src = rng.integers(0, n, size=n_pk)
    ptr, dst, flits = [0], [], []
    for _ in range(n_pk):
        k = int(rng.integers(2, min(5, n) + 1)) if n > 1 and rng.random() < 0.5 else 1
        dst += rng.choice(n, size=k, replace=False).tolist()
        ptr.append(len(dst))
        flits.append(int(rng.integers(1, p.buffer_flits + 1)) if k > 1 else int(rng.integers(1, 7)))
    return created, src, np.array(dst), np.array(flits), np.array(ptr)


@pytest.mark.parametrize("seed", range(16))
def test_twin_equal_on_random_multicast_traffic(seed):
    """xy-tree multicast forking in the routers: the same injection per packet, delivery
    per target and ejected flits per cycle in both models; everything arrives."""
    rng = np.random.default_rng(300 + seed)
    p = _random_params(rng)
    c, s, d, f, ptr = _random_multicast(rng, p, 50, int(rng.integers(20, 120)))
    a = simulate_router(p, c, s, d, f, max_cycles=20000, dst_ptr=ptr)
    b = simulate_router_ref(p, c, s, d, f, max_cycles=20000, dst_ptr=ptr)
    assert (a.delivery >= 0).all()  # no deadlock: every target reached
    assert a.eject_flits.sum() == (np.diff(ptr) * f).sum()  # one copy per target
    np.testing.assert_array_equal(a.head_inject, b.head_inject)
    np.testing.assert_array_equal(a.delivery, b.delivery)
    np.testing.assert_array_equal(a.eject_flits, b.eject_flits)
    assert a.cycles == b.cycles


@pytest.mark.parametrize("seed", range(12))
def test_twin_equal_with_chip_links_and_the_io_port(seed):
    """Meshes of 2x2-node chips whose boundary links (and the I/O link) have their own
    latency and cycles per flit, packets (multicast too) from the nodes and from the
    I/O port: both models agree cycle for cycle and everything arrives."""
    from hwsim.router import IO_PORT, chip_links

    rng = np.random.default_rng(500 + seed)
    p = _random_params(rng)
    p = RouterParams(**{**p.__dict__, "width": int(rng.integers(2, 5)), "height": int(rng.integers(1, 4))})
    links = chip_links(p, 2, 2, int(rng.integers(1, 12)), int(rng.integers(1, 4)))
    c, s, d, f, ptr = _random_multicast(rng, p, 40, int(rng.integers(20, 80)))
    s = np.where(rng.random(s.size) < 0.25, IO_PORT, s)
    a = simulate_router(p, c, s, d, f, max_cycles=30000, dst_ptr=ptr, links=links)
    b = simulate_router_ref(p, c, s, d, f, max_cycles=30000, dst_ptr=ptr, links=links)
    assert (a.delivery >= 0).all()
    np.testing.assert_array_equal(a.head_inject, b.head_inject)
    np.testing.assert_array_equal(a.delivery, b.delivery)
    np.testing.assert_array_equal(a.eject_flits, b.eject_flits)
    assert a.cycles == b.cycles


@pytest.mark.parametrize("seed", range(4))
def test_router_run_jumps_from_delivery_to_delivery(seed):
    """``router_run`` (the cycle loop inside the kernel, idle and unchanged cycles
    skipped) against the twin stepped cycle by cycle: it stops after the twin's next
    delivering cycle with the same targets; stopped first half way there (``t_stop``)
    it delivers nothing and resumes to the same cycle. Replies are added after every
    delivering cycle, as the engine's step timing does."""
    from hwsim.router import NO_CYCLE, router_run, router_state
    from hwsim.router_ref import RouterSim

    rng = np.random.default_rng(300 + seed)
    p = _random_params(rng)
    n = p.width * p.height
    st = router_state(np.array(p.kernel_args(), np.int64), 200, 0)
    ref = RouterSim(p)
    for _ in range(12):
        c, s, d, f = int(rng.integers(0, 30)), int(rng.integers(0, n)), int(rng.integers(0, n)), int(rng.integers(1, 6))
        router_add(st, c, s, d, f)
        ref.add(c, s, d, f)
    t, spawned, stops = 0, 0, 0
    while True:
        tr, got = t, []
        while True:  # the twin, cycle by cycle, to its next delivering cycle
            tr = ref.next_cycle(tr)
            if tr == NO_CYCLE:
                break
            got = ref.cycle(tr)
            tr += 1
            if got:
                break
        if got and tr - 1 > t + 1:
            half = t + (tr - 1 - t) // 2
            t = router_run(st, t, half)
            assert int(st.sc[3]) == 0 and half <= t < tr
            stops += 1
        t = router_run(st, t, NO_CYCLE)
        k = int(st.sc[3])
        if not got:
            assert k == 0 and t == NO_CYCLE
            break
        assert t == tr and sorted(st.dl_list[:k]) == sorted(got)
        spawned = _spawn(st, ref, rng, got, n, spawned)
    m = int(st.sc[0])
    assert stops > 0 and m == len(ref.delivery) and (st.delivery[:m] >= 0).all()
    np.testing.assert_array_equal(st.delivery[:m], ref.delivery)
    np.testing.assert_array_equal(st.link_flits, ref.link_flits)
