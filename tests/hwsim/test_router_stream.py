"""The router kernel's streaming switch grant (``hwsim/router_stages.py``): when no output
port of a router has two switch requests in a cycle, every request wins without the
round-robin arbiters, and each pointer moves one past its winner. Hand-worked cases where
it applies (worms crossing a router on different outputs, a multicast flit forking) and
where it must not (two worms on one output port), cycle for cycle against the twin
(``hwsim/router_ref.py``, which always arbitrates): same deliveries, same link flits and
the same switch allocation pointers at every router after every cycle."""

import numpy as np

from hwsim.router import RouterParams, router_add, router_add_multicast, router_run, router_state
from hwsim.router_ref import RouterSim


def _lockstep(p, packets, cycles):
    """Kernel and twin cycle by cycle over ``packets`` ((created, src, dsts, flits));
    asserts equal deliveries and switch pointers per cycle; returns the kernel state and
    the per-cycle link flits of the kernel."""
    n_t = sum(len(d) for _, _, d, _ in packets)
    st = router_state(np.array(p.kernel_args(), np.int64), len(packets), cycles + 16, n_t)
    ref = RouterSim(p, eject_len=cycles + 16)
    for c, s, d, f in packets:
        if len(d) == 1:
            router_add(st, c, s, d[0], f)
        else:
            router_add_multicast(st, c, s, np.array(d, np.int64), f)
        ref.add_multicast(c, s, list(d), f)
    links = []
    for t in range(cycles):
        before = st.link_flits.copy()
        router_run(st, t, t + 1)
        assert sorted(st.dl_list[:int(st.sc[3])]) == sorted(ref.cycle(t)), t
        for y in range(p.height):
            for x in range(p.width):
                r, n = ref.mesh.routers[(x, y)], y * p.width + x
                assert list(st.sa_out[n * 5:n * 5 + 5]) == r.sa_out, (t, n)
                assert list(st.sa_in[n * 5:n * 5 + 5]) == r.sa_in, (t, n)
        links.append(st.link_flits - before)
    np.testing.assert_array_equal(st.delivery[:n_t], ref.delivery)
    np.testing.assert_array_equal(st.link_flits, ref.link_flits)
    return st, np.array(links)


def test_worms_on_different_outputs_stream_at_zero_load():
    """3x1 mesh, 2 VCs x 8 flits. Worm A (6 flits, 0 -> 2) and worm B (6 flits, 2 -> 0)
    cross router 1 in opposite directions (A: input E to output E, B: input W to output
    W): every cycle a flit of each is at the front, no output has two requests, both
    win (the streaming grant). Both arrive at the zero-load latency, ``Dinj + 3 (Dr +
    Dva + Dsa + Dst) + 2 Dl + Dej + 5``, and router 1's E and W links carry a flit in the
    same six cycles."""
    p = RouterParams(3, 1, vcs=2, buffer_flits=8)
    st, links = _lockstep(p, [(0, 0, [2], 6), (0, 2, [0], 6)], 40)
    zl = p.zero_load_cycles(2, 6)
    assert list(st.delivery[:2]) == [zl, zl]
    east, west = np.flatnonzero(links[:, 1 * 4 + 0]), np.flatnonzero(links[:, 1 * 4 + 1])
    assert len(east) == 6 and list(east) == list(west) and list(np.diff(east)) == [1] * 5


def test_multicast_fork_streams_to_both_outputs():
    """3x1 mesh, 1 VC x 4 flits. A 3-flit multicast packet 0 -> {1, 2} forks at router 1
    (local and E): each flit requests both outputs, alone on each, so both copies leave
    in the same cycle. Target 1 is delivered at the zero-load latency of 1 hop, target 2
    at that of 2 hops."""
    p = RouterParams(3, 1, vcs=1, buffer_flits=4)
    st, links = _lockstep(p, [(0, 0, [1, 2], 3)], 40)
    assert list(st.delivery[:2]) == [p.zero_load_cycles(1, 3), p.zero_load_cycles(2, 3)]


def test_two_worms_on_one_output_are_arbitrated():
    """Where the streaming grant must not apply. 3x1 mesh, 2 VCs x 4 flits. Worm A (6
    flits, 0 -> 2) and worm B (6 flits, 1 -> 2, injected at router 1) hold different
    output VCs of router 1's E port and request it in the same cycles: the output
    arbiter grants one per cycle, round robin, so the E link carries their 12 flits in
    12 consecutive cycles and each worm is delayed past its zero-load latency; pointers,
    link flits and deliveries equal the twin's."""
    p = RouterParams(3, 1, vcs=2, buffer_flits=4)
    st, links = _lockstep(p, [(0, 0, [2], 6), (1, 1, [2], 6)], 60)
    east = np.flatnonzero(links[:, 1 * 4 + 0])
    assert len(east) == 12 and list(np.diff(east)) == [1] * 11
    assert st.delivery[0] > p.zero_load_cycles(2, 6) and st.delivery[1] > 1 + p.zero_load_cycles(1, 6)
