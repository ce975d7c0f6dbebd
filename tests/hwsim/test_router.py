"""The router model on hand-worked cases (hwsim/router.py's docstring is the spec).

Default delays (BookSim2's as run for shared/data/booksim): routing 0, VC allocation 1,
switch allocation 1, switch traversal 1, link 1, credit 1, injection channel 2,
ejection channel 1. A flit that wins the switch at ``s`` is usable downstream at
``s + 3`` and ejected at ``s + 3``; a head usable at ``a`` is allocated a VC at ``a``
and may cross the switch from ``a + 1``; a credit for a flit leaving a buffer at ``s``
is usable upstream at ``s + credit + link`` (``s + credit + 2`` at the source).
"""

import numpy as np
import pytest

from hwsim.chip import ChipConfig
from hwsim.router import RouterError, RouterParams, router_params_from_chip, simulate_router


def run(p, packets, max_cycles=500):
    """packets: (created, src, dst, flits) tuples."""
    c, s, d, f = (np.array(col, dtype=np.int64) for col in zip(*packets))
    return simulate_router(p, c, s, d, f, max_cycles=max_cycles)


@pytest.mark.parametrize("credit, ejected", [(1, [10, 15, 20]), (2, [10, 16, 22])])
def test_full_buffer_stalls_upstream_until_the_credit_returns(credit, ejected):
    """2x1 mesh, 1 VC of 1 flit, one 3-flit packet 0 -> 1.

    credit 1: flit 0 is written at 0, usable at router 0 at 2, VC at 2, switch at 3 (the
    source's credit is back at 3 + 1 + 2 = 6), at router 1 at 6, switch (eject) at 7,
    ejected at 10; router 0's credit is back at 7 + 1 + 1 = 9. Flit 1 is written at 6 and
    usable at router 0 at 8, but the full buffer downstream holds it until the credit at 9:
    switch at 9, router 1 at 12, ejected at 15. Flit 2: written at 12 (credit 9 + 3),
    usable at 14, credit from router 1 at 12 + 2 = 14, switch at 14, ejected at 20.
    credit 2: every return is one cycle later: ejections at 10, 16, 22.
    With deep buffers the same packet arrives at the zero-load 12 (one flit per cycle).
    """
    p = RouterParams(2, 1, vcs=1, buffer_flits=1, credit_cycles=credit)
    r = run(p, [(0, 0, 1, 3)])
    assert list(np.flatnonzero(r.eject_flits)) == ejected
    assert r.delivery[0] == ejected[-1]
    deep = run(RouterParams(2, 1, vcs=1, buffer_flits=8), [(0, 0, 1, 3)])
    assert list(np.flatnonzero(deep.eject_flits)) == [10, 11, 12]
    assert deep.delivery[0] == RouterParams(2, 1).zero_load_cycles(hops=1, flits=3) == 12


def test_two_packets_to_one_ejection_port_serialize():
    """3x1 mesh, 4-flit packets from nodes 0 and 2 to node 1 at cycle 0. Both heads reach
    router 1 at 6 and ask for its one ejection VC; round robin from input index 0 grants
    the one from the west (input port E, index 0): switch at 7..10, ejected 10..13. The
    VC is free from 11 (tail crossed at 10): the other packet gets it at 11, crosses at
    12..15, ejected 15..18. The idealised model would deliver both at 13."""
    p = RouterParams(3, 1, vcs=1, buffer_flits=8)
    r = run(p, [(0, 0, 1, 4), (0, 2, 1, 4)])
    assert list(r.delivery) == [13, 18]
    assert list(np.flatnonzero(r.eject_flits)) == [10, 11, 12, 13, 15, 16, 17, 18]
    # two VCs and a two-flit-wide ejection port: the second head gets VC 1 at 7 and both
    # worms eject side by side
    wide = run(RouterParams(3, 1, vcs=2, buffer_flits=8, eject_flits_per_cycle=2), [(0, 0, 1, 4), (0, 2, 1, 4)])
    assert list(wide.delivery) == [13, 14]
    assert wide.eject_flits[11] == 2


def test_a_vc_is_held_by_a_worm_until_its_tail_leaves():
    """3x1 mesh, 1 VC. Worm A (8 flits, 0 -> 2, cycle 0) gets router 1's east VC at 6 and
    crosses its switch at 7..14. Packet B (1 flit, 1 -> 2) is usable at router 1 at 9 but
    gets the VC only when A's tail has crossed (free from 15): switch at 16, router 2 at
    19, where A's tail left the ejection VC at 18: VC at 19, switch 20, ejected at 23.
    A arrives at its zero-load 21. With two VCs B takes the free one at 9 and overtakes
    A's tail."""
    p = RouterParams(3, 1, vcs=1, buffer_flits=8)
    r = run(p, [(0, 0, 2, 8), (7, 1, 2, 1)])
    assert r.delivery[0] == p.zero_load_cycles(hops=2, flits=8) == 21
    assert r.delivery[1] == 23
    two = run(RouterParams(3, 1, vcs=2, buffer_flits=8), [(0, 0, 2, 8), (7, 1, 2, 1)])
    assert two.delivery[1] < 21


def test_zero_load_latency_formula_on_single_packets():
    rng = np.random.default_rng(3)
    for _ in range(40):
        i = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
        p = RouterParams(i(1, 6), i(1, 6), vcs=i(1, 3), buffer_flits=i(1, 6), routing_cycles=i(0, 3),
                         vc_alloc_cycles=i(1, 3), sw_alloc_cycles=i(1, 3), switch_cycles=i(0, 3), link_cycles=i(0, 3),
                         credit_cycles=i(1, 3), inject_cycles=i(0, 3), eject_cycles=i(0, 3))
        n = p.width * p.height
        s, d, L, c = i(0, n - 1), i(0, n - 1), i(1, 9), i(0, 5)
        hops = abs(s % p.width - d % p.width) + abs(s // p.width - d // p.width)
        r = run(p, [(c, s, d, L)])
        # a buffer shallower than the credit round trip adds bubbles; only deep buffers give the formula
        rtt = p.sw_alloc_cycles + p.switch_cycles + 2 * max(p.link_cycles, p.inject_cycles) + p.credit_cycles + 1
        if p.buffer_flits >= rtt or L == 1:
            assert r.delivery[0] - c == p.zero_load_cycles(hops, L)
        else:
            assert r.delivery[0] - c >= p.zero_load_cycles(hops, L)


def test_chip_defaults_are_booksim_settings():
    p = router_params_from_chip(ChipConfig.preset("tianjic"))
    assert (p.width, p.height, p.vcs, p.buffer_flits) == (12, 13, 1, 4)
    assert (p.routing_cycles, p.vc_alloc_cycles, p.sw_alloc_cycles, p.switch_cycles, p.credit_cycles) == (0, 1, 1, 1, 1)
    assert p.link_cycles == ChipConfig.preset("tianjic").noc.link_cycles


@pytest.mark.parametrize("field, value", [("vcs", 0), ("buffer_flits", 0), ("vc_alloc_cycles", 0), ("width", 300),
                                          ("credit_cycles", 0), ("inject_flits_per_cycle", 17), ("vcs", 1.5),
                                          ("link_cycles", True)])
def test_parameters_are_range_checked_before_the_kernel(field, value):
    p = RouterParams(2, 2, **{field: value}) if field not in ("width",) else RouterParams(value, 2)
    with pytest.raises(RouterError, match=field):
        simulate_router(p, [0], [0], [1], [1], max_cycles=10)


@pytest.mark.parametrize("col, bad", [("src", 4), ("dst", -1), ("flits", 0), ("created", -2)])
def test_packets_outside_the_mesh_are_refused(col, bad):
    cols = dict(created=[0], src=[0], dst=[3], flits=[1])
    cols[col] = [bad]
    with pytest.raises(RouterError, match=col):
        simulate_router(RouterParams(2, 2), cols["created"], cols["src"], cols["dst"], cols["flits"], max_cycles=10)


def test_one_to_three_multicast_forks_at_the_branch_router():
    """3x3 mesh, BookSim defaults (1 VC x 4 flits; Dr 0, Dva = Dsa = Dst = Dl = 1,
    Dinj 2, Dej 1), a 2-flit packet from node 0 = (0, 0) to nodes 2 = (2, 0), 4 = (1, 1)
    and 7 = (1, 2). Its xy-tree: 0 -E-> 1, where it forks E (to 2) and N (to 4), and at 4
    local + N (to 7). Head by hand: written at 0, usable at router 0 at 2 (Dinj), VC at
    2, switch at 3; usable at router 1 at 3 + Dsa + Dst + Dl = 6, VC 6, switch 7 to E
    AND N in the same cycle (different outputs, both granted); usable at routers 2 and 4
    at 10, VC 10, switch 11: ejected at 11 + Dsa + Dst + Dej = 14 (and 4 sends N too:
    usable at 7 at 14, switch 15, ejected 18). The tail follows one cycle behind:
    deliveries 15, 15, 19 = the unicast zero-load latency of each target's hop count
    (2, 2, 3), i.e. no copy waits for another. As unicast copies the three packets
    queue at the injection port and share the one VC of link 0 -> 1: the last arrives
    later."""
    p = RouterParams(3, 3)
    run = simulate_router(p, [0], [0], [2, 4, 7], [2], max_cycles=100, dst_ptr=[0, 3])
    assert run.delivery.tolist() == [15, 15, 19]
    assert [p.zero_load_cycles(h, 2) for h in (2, 2, 3)] == [15, 15, 19]
    assert run.eject_flits.sum() == 6 and run.head_inject.tolist() == [0]
    uni = simulate_router(p, [0, 0, 0], [0, 0, 0], [2, 4, 7], [2, 2, 2], max_cycles=100)
    assert uni.delivery.max() > 19


def test_multicast_head_waits_for_room_for_the_whole_packet():
    """Packet-buffered multicast: a 3-flit multicast packet behind a 4-flit unicast
    worm in the one 4-flit VC of link 0 -> 1 (1x3 mesh: node 0 sends to 2 first, then
    multicasts to 1 and 2). It may take the VC only once the downstream buffer has 3 free
    slots; as unicast (to 2 only) it needs 1. So the multicast delivers later than the
    same packet sent unicast, and both models agree."""
    from hwsim.router_ref import simulate_router_ref

    p = RouterParams(3, 1)
    mc = simulate_router(p, [0, 0], [0, 0], [2, 1, 2], [4, 3], max_cycles=200, dst_ptr=[0, 1, 3])
    ref = simulate_router_ref(p, [0, 0], [0, 0], [2, 1, 2], [4, 3], max_cycles=200, dst_ptr=[0, 1, 3])
    np.testing.assert_array_equal(mc.delivery, ref.delivery)
    uni = simulate_router(p, [0, 0], [0, 0], [2, 2], [4, 3], max_cycles=200)
    assert mc.delivery[2] >= uni.delivery[1]


@pytest.mark.parametrize("dst,ptr,flits,msg", [
    ([1, 1], [0, 2], [2], "distinct"),
    ([1, 2], [0, 2], [5], "buffer_flits = 4"),
    ([1, 2], [0, 1], [2], "dst_ptr"),
])
def test_bad_multicast_packets_are_refused(dst, ptr, flits, msg):
    with pytest.raises(RouterError, match=msg):
        simulate_router(RouterParams(3, 1), [0], [0], dst, flits, max_cycles=10, dst_ptr=ptr)


def test_chip_boundary_link_has_its_latency_and_width_and_is_shared():
    """4x1 mesh of two 2x1 chips (defaults: Dr 0, Dva = Dsa = Dst = Dl = Dc = 1, Dinj 2,
    Dej 1, 1 VC x 4 flits); the link 1 -> 2 crosses the boundary: 10 cycles, 2 cycles
    per flit (16-bit flits on an 8-bit link). Two 2-flit packets to node 3, both
    created at 0: A from node 0, B from node 1. By hand:
    B: head usable at router 1 at 2, VC 2, crosses at 3 (link busy until 5), usable at
    router 2 at 3 + Dsa + Dst + 10 + 2 - 1 = 16; body crosses at 5 -> 18. Routers 2, 3:
    head crosses at 17 and 21, ejected 24; body 25. B delivered at 25.
    A: usable at router 1 at 6 (one ordinary hop), gets the E VC (B's tail crossed at 5,
    free from 6) and crosses at 7 -> router 2 at 20; its body waits for the link until
    9 -> 22. Router 2 at 21 and 22, router 3 head at 25: ejected 28, body 29. A is
    delivered at 29, 4 cycles later than with a 1-cycle, 1-flit-per-cycle link."""
    from hwsim.router import chip_links

    p = RouterParams(4, 1)
    links = chip_links(p, 2, 1, 10, 2)
    assert links[0].tolist()[4:8] == [10, 1, 1, 1] and links[0][8 + 1] == 10 and links[1][4] == 2
    run = simulate_router(p, [0, 0], [0, 1], [3, 3], [2, 2], max_cycles=200, links=links)
    assert run.delivery.tolist() == [29, 25]


def test_io_port_packet_enters_node_0_over_the_io_link():
    """2x1 mesh, I/O link of 5 cycles: a 1-flit packet from the I/O port to node 1 is
    written at 0, usable at router 0's input E at 0 + 5 = 5, VC 5, crosses 6, usable at
    router 1 at 9, VC 9, crosses 10, ejected 13 = 5 + (1 + 1) x 3 + 1 x Dl + Dej."""
    from hwsim.router import IO_PORT, chip_links

    p = RouterParams(2, 1)
    run = simulate_router(p, [0], [IO_PORT], [1], [1], max_cycles=100, links=chip_links(p, 2, 1, 5, 1))
    assert run.delivery.tolist() == [13] and run.head_inject.tolist() == [0]
