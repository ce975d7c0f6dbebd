"""The router kernel's lone-worm fast path (``hwsim/router_solo.py``): a long unicast worm
that holds its whole path is computed by a recurrence between its head's ejection and
its tail's write. The kernel with it equals the kernel without it (``prm[14] = 0``) and
the plain-Python twin (``hwsim/router_ref.py``, cycle by cycle) on random traffic with
one VC and long packets: deliveries, head injections, ejected flits per cycle, flits
per link, and the whole buffer / credit / link state at the end. Also where it must and
must not apply."""

import numpy as np
import pytest

from hwsim.router import NO_CYCLE, RouterParams, router_add, router_add_multicast, router_run, router_state
from hwsim.router_ref import RouterSim


def _params(rng, vcs=1) -> RouterParams:
    i = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    return RouterParams(i(1, 5), i(1, 5), vcs=vcs, buffer_flits=i(1, 6), routing_cycles=i(0, 2),
                        vc_alloc_cycles=i(1, 2), sw_alloc_cycles=i(1, 2), switch_cycles=i(0, 2), link_cycles=i(0, 3),
                        credit_cycles=i(1, 3), inject_cycles=i(0, 2), eject_cycles=i(0, 2),
                        inject_flits_per_cycle=i(1, 3), eject_flits_per_cycle=i(1, 2))


def _packets(rng, p, n_pk, horizon):
    n = p.width * p.height
    out = []
    for _ in range(n_pk):
        c, s = int(rng.integers(0, horizon)), int(rng.integers(0, n))
        if n > 1 and rng.random() < 0.15 and p.buffer_flits >= 1:
            k = int(rng.integers(2, min(4, n) + 1))
            out.append((c, s, rng.choice(n, size=k, replace=False).tolist(), int(rng.integers(1, p.buffer_flits + 1))))
        else:
            f = int(rng.integers(1, 6)) if rng.random() < 0.4 else int(rng.integers(16, 90))
            out.append((c, s, [int(rng.integers(0, n))], f))
    return sorted(out, key=lambda q: q[0])


def _state(p, packets, cycles, solo, lk=None):
    n_t = sum(len(d) for _, _, d, _ in packets)
    st = router_state(np.array(p.kernel_args(), np.int64), len(packets), cycles + 64, n_t)
    if not solo:
        st.prm[14] = 0
    if lk is not None:
        st.lk_lat[:] = lk[0]
        st.lk_ser[:] = lk[1]
    for c, s, d, f in packets:
        if len(d) == 1:
            router_add(st, c, s, d[0], f)
        else:
            router_add_multicast(st, c, s, np.array(d, np.int64), f)
    return st, n_t


def _run_to_end(st, step=None):
    """router_run from delivery to delivery (or ``step`` cycles per call); returns the
    number of worms detached along the way."""
    t, det = 0, 0
    while st.sc[1] > 0:
        t = router_run(st, t, NO_CYCLE if step is None else t + step)
        det = max(det, int(st.sc[8]))
        assert t < 10 ** 6
    return det


_STATE = ("bcnt", "bhead", "ocred", "obusy", "ofree", "occ", "lk_free", "link_flits", "sflit", "svc", "sa_in",
          "sa_out", "va_in", "va_out", "ist", "pmask")


def _links(rng, p):
    """Per-link latencies and widths: about a third of the links are 'chip-to-chip'
    (one other latency, 2-4 cycles per flit)."""
    m = p.width * p.height * 4 + 1
    lat = np.full(m, p.link_cycles, np.int64)
    ser = np.ones(m, np.int64)
    other = rng.random(m) < 0.35
    lat[other] = int(rng.integers(0, 6))
    ser[other] = rng.integers(1, 5, size=int(other.sum()))
    return lat, ser


def _random_case(seed):
    """Seed ``seed``'s mesh, packets, links (a third of the seeds) and stop interval."""
    rng = np.random.default_rng(seed)
    p = _params(rng)
    packets = _packets(rng, p, int(rng.integers(3, 40)), 300)
    lk = _links(rng, p) if seed % 3 == 1 else None
    step = None if seed % 3 else int(rng.integers(1, 50))
    return p, packets, lk, step


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_equals_cycle_loop_and_twin(seed):
    """Random meshes (1-5 x 1-5, 1 VC x 1-6 flits, random delays and terminal widths, a
    third of the seeds with chip-to-chip links), 3-40 packets, most long unicast worms,
    some short ones and multicasts; a third of the runs stop every 1-50 cycles (as the
    engine's calls do). The fast path must have detached worms in most runs."""
    p, packets, lk, step = _random_case(seed)
    a, n_t = _state(p, packets, 20000, True, lk)
    b, _ = _state(p, packets, 20000, False, lk)
    _run_to_end(a, step=step)
    _run_to_end(b)
    for f in ("delivery", "head_inj", "eject") + _STATE:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    ref = RouterSim(p, eject_len=20064, links=lk)
    for c, s, d, f in packets:
        ref.add_multicast(c, s, list(d), f)
    t = 0
    while -1 in ref.delivery:
        t = ref.next_cycle(t)
        ref.cycle(t)
        t += 1
    np.testing.assert_array_equal(a.delivery[:n_t], ref.delivery)
    np.testing.assert_array_equal(a.link_flits, ref.link_flits)


def test_fast_path_was_taken_in_most_random_runs():
    """The random runs above are only a check of the fast path if it ran in them: a worm
    was detached in at least 30 of the 40 (36 when written)."""
    hit = 0
    for seed in range(40):
        p, packets, lk, step = _random_case(seed)
        st, _ = _state(p, packets, 20000, True, lk)
        hit += _run_to_end(st, step=step) > 0
    assert hit >= 30


def test_lone_worm_streams_at_zero_load_and_detaches():
    """4x1 mesh, 1 VC x 8 flits (deeper than the credit loop, so a worm streams one
    flit per cycle), a 64-flit worm 0 -> 3 alone: it is detached after its head's
    ejection, its source is asleep until the tail's write, and it arrives at the
    spec's zero-load latency Dinj + 4 (Dr + Dva + Dsa + Dst) + 3 Dl + Dej + 63."""
    p = RouterParams(4, 1, vcs=1, buffer_flits=8)
    st, _ = _state(p, [(0, 0, [3], 64)], 400, True)
    t = 0
    while int(st.sc[8]) == 0:
        t = router_run(st, t, t + 1)
        assert t < 40
    t_e = int(st.sdet[0])
    # head ejected at the last router in cycle t - 1; the tail is written 63 cycles after the head
    assert t_e == int(st.head_inj[0]) + 63
    assert int(st.sc[2]) == 0  # its flits are out of the cycle loop's counts
    _run_to_end(st)
    assert int(st.delivery[0]) == p.zero_load_cycles(3, 64)
    assert list(st.link_flits[[0, 4, 8]]) == [64, 64, 64]


@pytest.mark.parametrize("case", ["two_vcs", "multicast", "io_port", "short"])
def test_fast_path_does_not_apply(case):
    """Where the module's conditions fail, nothing is detached: two VCs (another worm may
    share the links), a multicast packet, a packet from the I/O port, a worm with fewer
    than prm[14] flits left to write at its head's ejection."""
    p = RouterParams(4, 1, vcs=2 if case == "two_vcs" else 1, buffer_flits=8)
    n_t = 2 if case == "multicast" else 1
    st = router_state(np.array(p.kernel_args(), np.int64), 1, 0, n_t)
    if case == "multicast":
        router_add_multicast(st, 0, 0, np.array([2, 3], np.int64), 8)
    elif case == "io_port":
        router_add(st, 0, 4, 3, 64)  # source N = the I/O port
    else:
        router_add(st, 0, 0, 3, 20 if case == "short" else 64)
    t = 0
    while st.sc[1] > 0:
        t = router_run(st, t, t + 1)
        assert int(st.sc[8]) == 0 and not st.sdet.any()
