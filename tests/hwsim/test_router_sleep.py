"""The router kernel's sleep (``hwsim/router_stages.py``): a router that made no request,
or a source that wrote nothing, is skipped until its earliest cycle stamp, a credit
returned to it, a flit written into it or a packet added to its queue. Hand-worked
cycles where it sleeps, and cases where it must wake in the very cycle, cycle for cycle
against the twin (``hwsim/router_ref.py``, which has no sleep)."""

import numpy as np

from hwsim.router import NO_CYCLE, RouterParams, router_add, router_run, router_state
from hwsim.router_ref import RouterSim


def _step(p, packets, cycles, watch=()):
    """Both models cycle by cycle over ``packets`` ((created, src, dst, flits) tuples);
    per cycle: the kernel's (rwake, swake) of the watched routers/sources at its start,
    its deliveries and link flits; asserts the twin delivers the same targets in the
    same cycles."""
    st = router_state(np.array(p.kernel_args(), np.int64), len(packets), cycles + 16)
    ref = RouterSim(p, eject_len=cycles + 16)
    for c, s, d, f in packets:
        router_add(st, c, s, d, f)
        ref.add(c, s, d, f)
    log = []
    for t in range(cycles):
        wake = [(int(st.rwake[n]), int(st.swake[n])) for n in watch]
        before = st.link_flits.copy()
        router_run(st, t, t + 1)
        got = sorted(st.dl_list[:int(st.sc[3])])
        assert got == sorted(ref.cycle(t)), t
        log.append((wake, st.link_flits - before))
    m = int(st.sc[0])
    np.testing.assert_array_equal(st.delivery[:m], ref.delivery)
    np.testing.assert_array_equal(st.eject, ref.eject)
    return st, log


def test_credit_starved_router_and_source_sleep_and_wake_on_the_credit():
    """2x1 mesh, 1 VC of 1 flit, one 3-flit packet 0 -> 1 (the hand-worked case of
    test_router.py: ejections at 10, 15, 20). Source 0 writes flit 0 at 0; its credit is
    back at 6, so from cycle 1 it has nothing it can do: asleep (no stamp: it waits
    for the credit) from 1 to 6, when the credit wakes it and it writes flit 1 in that
    very cycle. Router 0 holds flit 1 usable at 8 while router 1's buffer is full
    (credit back at 9): at 8 it requests nothing and sleeps; the credit at 9 wakes it
    and the flit crosses at 9 (E link flit counted in cycle 9)."""
    p = RouterParams(2, 1, vcs=1, buffer_flits=1)
    st, log = _step(p, [(0, 0, 1, 3)], 24, watch=(0,))
    assert list(np.flatnonzero(st.eject)) == [10, 15, 20] and st.delivery[0] == 20
    src_wake = [w[0][1] for w, _ in log]
    assert src_wake[2:7] == [NO_CYCLE] * 5  # asleep at the start of cycles 2..6
    r0_wake = [w[0][0] for w, _ in log]
    assert r0_wake[9] == NO_CYCLE  # asleep after cycle 8, woken by the credit inside cycle 9
    east = [int(lf[0]) for _, lf in log]  # router 0's E link
    assert [t for t, k in enumerate(east) if k] == [3, 9, 14]


def test_flit_written_into_a_sleeping_router_wakes_it_in_time():
    """3x1 mesh, 1 VC of 1 flit. Worm A (6 flits, 0 -> 2) starves router 1 of credits
    (it sleeps between them); packet B (1 flit, 2 -> 0) crosses router 1 westwards and
    is written into it by router 2's switch stage while router 1 sleeps: router 1 must
    switch it in the cycle it becomes usable, as the twin (which never sleeps) does."""
    p = RouterParams(3, 1, vcs=1, buffer_flits=1)
    st, log = _step(p, [(0, 0, 2, 6), (8, 2, 0, 1)], 60, watch=(1,))
    assert (st.delivery[:2] >= 0).all()
    # a cycle that starts with router 1 asleep and in which router 2 writes B into it
    west_in = [t for t, (w, lf) in enumerate(log) if lf[2 * 4 + 1] and w[0][0] > t]
    assert west_in, "router 1 was awake whenever B was written into it: the case is not exercised"
