"""NoC timing: zero-load latency, hand-worked contention, Numba == SimPy on random traffic,
saturation at the bisection bound, and typed errors for bad packets."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.noc import uniform_traffic, NocError, Packets, simulate_noc
from hwsim.noc_ref import simulate_noc_ref
from models.errors import SnnchipError

SIMS = {"numba": simulate_noc, "simpy": simulate_noc_ref}


@pytest.fixture(params=list(SIMS), scope="module")
def sim(request):
    return SIMS[request.param]


# ------------------------------------------------------------------ zero load

@pytest.mark.parametrize("src, dst, flits, router, link", [
    ((0, 0), (3, 2), 1, 1, 1),      # 5 hops
    ((3, 2), (0, 0), 4, 2, 1),      # west then south
    ((1, 3), (1, 0), 3, 1, 0),      # y only, zero-cycle links
    ((2, 1), (5, 1), 2, 4, 3),      # x only
    ((0, 3), (5, 0), 7, 3, 2),      # corner to corner of a 6 x 4 grid
    ((2, 2), (2, 2), 5, 2, 2),      # to itself: no link, just the tail
])
def test_zero_load_latency_is_exact(sim, src, dst, flits, router, link):
    t0 = 7
    r = sim(Packets.unicast([t0], [src], [dst], flits), 6, 4, router, link)
    hops = abs(dst[0] - src[0]) + abs(dst[1] - src[1])
    assert int(r.delivery_cycle[0]) == t0 + hops * (router + link) + (flits - 1)
    assert int(r.latency_cycles[0]) == int(r.zero_load_cycles[0])
    assert r.flit_hops == hops * flits


# ------------------------------------------------------------------ hand-worked contention

def test_two_packets_share_a_link_exact_cycles(sim):
    """R = W = 1. A: (0,0)->(2,0), t0 = 0, 3 flits. B: (1,0)->(3,0), t0 = 2, 2 flits.

    A: link (0,0,E) ready 1, starts 1; reaches (1,0) at 2, ready for (1,0,E) at 3.
    B: ready for (1,0,E) at 2 + 1 = 3 too: a tie, broken by packet id.
    A first (id 0): A starts 3, arrives (2,0) at 4, delivered 4 + 2 = 6; B waits until
    A's 3 flits are through: starts 6, arrives (2,0) at 7, ready 8 for (2,0,E), starts
    8, arrives (3,0) at 9, delivered 9 + 1 = 10 (zero load would be 7).
    """
    pk = Packets.unicast([0, 2], [(0, 0), (1, 0)], [(2, 0), (3, 0)], [3, 2])
    r = sim(pk, 4, 1, 1, 1)
    assert r.delivery_cycle.tolist() == [6, 10]
    assert r.contention_cycles.tolist() == [0, 3]
    assert r.link_flits[1, 0, 0] == 5 and r.link_flits[0, 0, 0] == 3 and r.link_flits[2, 0, 0] == 2
    # swap the ids: B wins the tie, starts 3, arrives 4, ready 5, starts 5, arrives 6,
    # delivered 7; A starts (1,0,E) at 5, arrives 6, delivered 8.
    pk = Packets.unicast([2, 0], [(1, 0), (0, 0)], [(3, 0), (2, 0)], [2, 3])
    assert sim(pk, 4, 1, 1, 1).delivery_cycle.tolist() == [7, 8]


def test_fifo_earlier_ready_wins_over_lower_id(sim):
    """Packet 0 becomes ready one cycle after packet 1 on the same link: FIFO, not id."""
    pk = Packets.unicast([1, 0], [(0, 0), (0, 0)], [(1, 0), (1, 0)], [2, 2])
    r = sim(pk, 2, 1, 1, 1)
    # packet 1: ready 1, starts 1, arrives 2, delivered 3; packet 0: ready 2, starts 3
    assert r.delivery_cycle.tolist() == [5, 3]


@pytest.mark.parametrize("mode, expected, flit_hops", [
    # tree: A's links (0,0,E) (1,0,E) (2,0,N) (2,1,N), each once; B waits for A on (0,0,E)
    ("xy-tree", [7, 9, 1, 3, 5], 10),
    # unicast: A's copies to (2,1), (2,2), (1,0) queue on (0,0,E) in destination order
    ("unicast", [7, 11, 1, 7, 9], 18),
])
def test_multicast_modes_hand_worked(sim, mode, expected, flit_hops):
    """R = W = 1, 2 flits. A: (0,0) -> (2,1), (2,2), (0,0), (1,0); B: (0,0) -> (1,0)."""
    pk = Packets.multicast([0, 0], [(0, 0), (0, 0)], [[(2, 1), (2, 2), (0, 0), (1, 0)], [(1, 0)]], 2)
    r = sim(pk, 4, 4, 1, 1, multicast=mode)
    assert r.delivery_cycle.tolist() == expected
    assert r.flit_hops == flit_hops


# ------------------------------------------------------------------ Numba == SimPy

def _random_packets(rng, gw, gh, n, multicast):
    # about one packet per node every 3 cycles: enough to queue on shared links
    t0 = np.sort(rng.integers(0, max(1, 3 * n // (gw * gh)), n))
    src = np.c_[rng.integers(0, gw, n), rng.integers(0, gh, n)]
    ndst = rng.integers(1, 5, n) if multicast else np.ones(n, dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(ndst)])
    dst = np.c_[rng.integers(0, gw, ptr[-1]), rng.integers(0, gh, ptr[-1])]
    return Packets.from_arrays(t0, src, ptr, dst, rng.integers(1, 5, n))


@pytest.mark.parametrize("mode", ["unicast", "xy-tree"])
@pytest.mark.parametrize("seed", range(4))
def test_numba_matches_simpy_on_random_traffic(mode, seed):
    rng = np.random.default_rng(100 + seed)
    compared = contended = 0
    for gw, gh in ((2, 2), (3, 5), (4, 4), (6, 6)):
        pk = _random_packets(rng, gw, gh, 150, multicast=mode == "xy-tree")
        router, link = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        fast = simulate_noc(pk, gw, gh, router, link, multicast=mode)
        ref = simulate_noc_ref(pk, gw, gh, router, link, multicast=mode)
        np.testing.assert_array_equal(fast.delivery_cycle, ref.delivery_cycle)
        np.testing.assert_array_equal(fast.link_flits, ref.link_flits)
        assert (fast.contention_cycles >= 0).all()
        compared += pk.n_destinations
        contended += int((fast.contention_cycles > 0).sum())
    assert compared >= 600
    assert contended > compared // 10, "the traffic must make packets wait for links"


# ------------------------------------------------------------------ throughput

K, CYCLES, WINDOW = 8, 3000, (1000, 3000)
BISECTION_BOUND = 4 / K  # flits per node per cycle, 0.5 on 8 x 8


def _accepted(r, window=WINDOW):
    return r.delivered_flits(*window) / (window[1] - window[0]) / K**2


def _latency_growth(r):
    """Mean latency of packets injected in [2500, 3000) over those of [500, 1000)."""
    t0, lat = r.packets.inject_cycle, r.latency_cycles
    return lat[(t0 >= 2500) & (t0 < 3000)].mean() / lat[(t0 >= 500) & (t0 < 1000)].mean()


def test_saturation_throughput_at_bisection_bound():
    """Sweep the offered load; the saturation throughput is the accepted throughput of the
    highest load at which latency stays bounded (queues do not grow over the run)."""
    rows = []
    for p in (0.40, 0.44, 0.48, 0.52, 0.56):
        r = simulate_noc(uniform_traffic(K, p, CYCLES, seed=1), K, K, 1, 1)
        rows.append((p, _accepted(r), _latency_growth(r)))
    stable = [growth < 1.4 for _, _, growth in rows]
    assert stable == sorted(stable, reverse=True), rows  # stable, then diverging: one knee
    assert stable[0] and not stable[-1], rows
    saturation = max(acc for (_, acc, _), ok in zip(rows, stable) if ok)
    print("\n8x8 uniform random, 1-flit packets, R = W = 1:")
    for p, acc, growth in rows:
        print(f"  offered {p:.2f}: accepted {acc:.3f} flits/node/cycle, latency x{growth:.2f} over the run")
    print(f"saturation throughput {saturation:.3f} flits/node/cycle = "
          f"{saturation / BISECTION_BOUND:.1%} of the bisection bound {BISECTION_BOUND}")
    assert 0.8 * BISECTION_BOUND <= saturation <= BISECTION_BOUND


def test_overload_saturates_the_bisection():
    """Offered 1.0 (twice the bound): the 16 links across the middle cut stay busy. With
    infinite buffers nothing is dropped or throttled at the source, so flits that stay on
    their side of the cut keep flowing and the total delivered exceeds 4/k somewhat."""
    r = simulate_noc(uniform_traffic(K, 1.0, CYCLES, seed=1), K, K, 1, 1)
    cut = np.concatenate([r.link_flits[K // 2 - 1, :, 0], r.link_flits[K // 2, :, 1]])
    busy = cut.sum() / (cut.size * r.last_delivery_cycle)
    accepted = _accepted(r)
    print(f"\n8x8 uniform random, offered 1.0: delivered {accepted:.3f} flits/node/cycle "
          f"({accepted / BISECTION_BOUND:.1%} of {BISECTION_BOUND}); bisection links busy {busy:.1%}")
    assert busy >= 0.95
    assert BISECTION_BOUND <= accepted <= 1.2 * BISECTION_BOUND


def test_low_load_accepted_equals_offered():
    r = simulate_noc(uniform_traffic(K, 0.1, CYCLES, seed=3), K, K, 1, 1)
    t0 = r.packets.inject_cycle
    offered = ((t0 >= WINDOW[0]) & (t0 < WINDOW[1])).sum() / (WINDOW[1] - WINDOW[0]) / K**2
    accepted = _accepted(r)
    print(f"\np = 0.1: offered {offered:.4f}, accepted {accepted:.4f} flits/node/cycle")
    assert abs(offered - 0.1) < 0.005
    assert abs(accepted - offered) <= 0.02 * offered


# ------------------------------------------------------------------ results and errors

def test_result_helpers():
    pk = Packets.unicast([0, 0, 5], [(0, 0), (0, 0), (1, 1)], [(1, 0), (1, 0), (1, 1)], [2, 2, 3])
    r = simulate_noc(pk, 2, 2, 1, 1)
    assert r.delivery_cycle.tolist() == [3, 5, 7]  # second copy waits 2 cycles
    assert r.latency_cycles.tolist() == [3, 5, 2]
    counts, edges = r.latency_histogram(2)
    assert counts.tolist() == [0, 2, 1] and edges.tolist() == [0, 2, 4, 6]
    assert r.last_delivery_cycle == 7
    assert r.delivered_flits(0, 4) == 2 and r.delivered_flits(0, 100) == 7
    assert r.link_busy_cycles[0, 0, 0] == 4 and r.link_flits.sum() == 4
    empty = simulate_noc(Packets.unicast([], np.zeros((0, 2)), np.zeros((0, 2))), 3, 3, 1, 1)
    assert empty.last_delivery_cycle == -1 and empty.flit_hops == 0


@pytest.mark.parametrize("build, grid, kw, message", [
    (lambda: Packets.unicast([0, 4], [(0, 0), (1, 1)], [(1, 1), (2, 0)], [1, 0]), (4, 4), {},
     "packet 1: flits = 0, must be >= 1"),
    (lambda: Packets.unicast([0, -3], [(0, 0), (1, 1)], [(1, 1), (2, 0)]), (4, 4), {},
     "packet 1: inject_cycle = -3, must be >= 0"),
    (lambda: Packets.unicast([0, 1, 2], [(0, 0), (1, 1), (5, 0)], [(1, 1), (0, 0), (0, 0)]), (4, 4), {},
     "packet 2: src_xy = (5, 0) lies outside the 4 x 4 grid"),
    (lambda: Packets.multicast([0, 0], [(0, 0), (0, 0)], [[(1, 1)], [(1, 0), (0, -1)]]), (4, 4), {},
     "packet 1: dst_xy[1] = (0, -1) lies outside the 4 x 4 grid"),
    (lambda: Packets.unicast([0], [(0, 0)], [(1, 1)]), (4, 4), {"router_cycles": 0},
     "router_cycles: must be an integer >= 1, got 0"),
    (lambda: Packets.unicast([0], [(0, 0)], [(1, 1)]), (4, 4), {"multicast": "broadcast"},
     "multicast: must be one of unicast, xy-tree, got 'broadcast'"),
])
def test_bad_input_names_packet_and_field(sim, build, grid, kw, message):
    args = {"router_cycles": 1, "link_cycles": 1, **kw}
    mode = args.pop("multicast", "xy-tree")
    with pytest.raises(NocError) as err:
        sim(build(), *grid, args["router_cycles"], args["link_cycles"], multicast=mode)
    assert str(err.value) == message
    assert isinstance(err.value, SnnchipError)


def test_malformed_packets_raise_noc_error():
    with pytest.raises(NocError, match="packet 1: dst_indptr gives it no destination"):
        Packets.from_arrays([0, 0], [(0, 0), (1, 0)], [0, 1, 1], [(1, 1)], 1)
    with pytest.raises(NocError, match=r"src_xy: expected an \(n, 2\) array"):
        Packets.unicast([0], [(0, 0, 0)], [(1, 1)])
    with pytest.raises(NocError, match="disagree on the packet count"):
        Packets.unicast([0, 1], [(0, 0)], [(1, 1), (0, 0)])
    with pytest.raises(NocError, match="flits: expected integers"):
        Packets.unicast([0], [(0, 0)], [(1, 1)], flits=1.5)


def _delivery(pk, gw, gh, router, link, mode="xy-tree"):
    """Delivery cycles of ``hwsim.noc.deliver`` (the unchecked path the engine uses)."""
    from hwsim.noc import deliver

    return deliver(pk.inject_cycle, pk.flits, pk.src_xy, pk.dst_indptr, pk.dst_xy, gw, gh, mode == "xy-tree",
                    router, link)[0]


@pytest.mark.parametrize("mode", ["unicast", "xy-tree"])
def test_every_route_visits_links_in_topological_order(mode):
    """The kernel serves links in ``link_order``: on every route of random traffic each
    link comes strictly later in that order than the link before it."""
    from hwsim.noc import routes, link_order

    rng = np.random.default_rng(3)
    for gw, gh in ((1, 4), (5, 1), (4, 6), (7, 3)):
        pk = _random_packets(rng, gw, gh, 300, multicast=mode == "xy-tree")
        _, link, parent, _, _, _, valid = routes(pk.src_xy, pk.dst_indptr, pk.dst_xy, gw, gh, mode == "xy-tree")
        pos = link_order(gw, gh)
        assert sorted(pos.tolist()) == list(range(gw * gh * 4))
        child = valid & (parent >= 0)
        assert child.sum() > 100
        assert (pos[link[child]] > pos[link[parent[child]]]).all()


@pytest.mark.parametrize("region", [3, 12])
def test_few_or_many_links_used_equal_simpy(region):
    """The kernel orders the links a call uses by sorting them when they are few (at
    most 1/8 of the mesh's links) and by walking every link position when they are
    many; both give the SimPy twin's deliveries, with contention. Traffic on a 12 x 13
    mesh (the tianjic grid) confined to a 3 x 3 corner, or spread over all of it."""
    from hwsim.noc import routes

    rng = np.random.default_rng(21)
    n = 60 if region == 3 else 400
    t0 = np.sort(rng.integers(0, 20, n))
    src = rng.integers(0, region, (n, 2))
    dst = rng.integers(0, region, (n, 2))
    pk = Packets.unicast(t0, src, dst, rng.integers(1, 4, n))
    _, link, _, _, _, _, valid = routes(pk.src_xy, pk.dst_indptr, pk.dst_xy, 12, 13, True)
    used = np.unique(link[valid]).size
    assert (used * 8 <= 12 * 13 * 4) == (region == 3)
    ref = simulate_noc_ref(pk, 12, 13, 2, 1)
    np.testing.assert_array_equal(_delivery(pk, 12, 13, 2, 1), ref.delivery_cycle)
    assert (ref.contention_cycles > 0).sum() > 5


@pytest.mark.parametrize("first", ["through", "injected"])
def test_equal_ready_cycles_go_by_packet_id(first):
    """R = W = L = 1. Packet A goes (0,0) -> (2,0) from cycle 0 and is ready for link
    (1,0)E at cycle 3; packet B is injected at (1,0) at cycle 2, also ready for that
    link at 3. The lower packet id crosses at 3 and is delivered at 4, the other
    waits one cycle: delivered at 5."""
    a, b = ([0, (0, 0)], [2, (1, 0)])
    order = (a, b) if first == "through" else (b, a)
    pk = Packets.unicast([p[0] for p in order], [p[1] for p in order], [(2, 0), (2, 0)], flits=1)
    assert _delivery(pk, 3, 1, 1, 1).tolist() == [4, 5]
    assert simulate_noc_ref(pk, 3, 1, 1, 1).delivery_cycle.tolist() == [4, 5]


def test_requests_in_reverse_id_order_are_sorted_exactly():
    """300 one-flit packets from one node to another, injected later the lower their
    id (with ties): every link sees its requests in the reverse of edge order, which
    the kernel sorts with a stable O(n log n) sort once insertion gets too costly;
    the deliveries equal the SimPy twin's."""
    n = 300
    t0 = (n - np.arange(n)) // 3 * 2
    pk = Packets.unicast(t0, np.tile([1, 0], (n, 1)), np.tile([3, 2], (n, 1)), flits=2)
    ref = simulate_noc_ref(pk, 4, 3, 2, 1)
    np.testing.assert_array_equal(_delivery(pk, 4, 3, 2, 1), ref.delivery_cycle)
    assert (ref.contention_cycles > 0).sum() > n // 2


@pytest.mark.parametrize("mode", ["unicast", "xy-tree"])
def test_far_inject_cycles_give_the_same_deliveries_shifted(mode):
    """Inject cycles near 2**56: the same traffic shifted there gets the same delivery
    cycles, shifted, and the same link counts, with contention (no cycle is packed
    into a wider key anywhere)."""
    from dataclasses import replace

    rng = np.random.default_rng(7)
    pk = _random_packets(rng, 4, 4, 150, multicast=mode == "xy-tree")
    near = simulate_noc(pk, 4, 4, 2, 1, multicast=mode)
    shift = 1 << 56
    far_pk = replace(pk, inject_cycle=pk.inject_cycle + shift)
    far = simulate_noc(far_pk, 4, 4, 2, 1, multicast=mode)
    np.testing.assert_array_equal(far.delivery_cycle - shift, near.delivery_cycle)
    np.testing.assert_array_equal(far.link_flits, near.link_flits)
    assert (near.contention_cycles > 0).sum() > 10
    np.testing.assert_array_equal(near.delivery_cycle,
                                  simulate_noc_ref(pk, 4, 4, 2, 1, multicast=mode).delivery_cycle)


# ---------------------------------------------------------------- packet trains

def _train_outcomes(monkeypatch):
    """Record what every train attempt of hwsim.noc.deliver returned."""
    import hwsim.noc as noc

    seen = []
    real = noc.run_trains_into

    def spy(*a):
        ok = real(*a)
        seen.append(bool(ok))
        return ok

    monkeypatch.setattr(noc, "run_trains_into", spy)
    return seen


@pytest.mark.parametrize("t0_b,expected,accepted", [
    # B's train meets A's on link (1,0)E at cycle 2: the packets interleave by (ready, id)
    (1, [2, 7, 8, 9, 3, 4, 5, 6], False),
    # B comes after A has passed: each train crosses as a block
    (10, [2, 3, 4, 5, 11, 12, 13, 14], True),
])
def test_trains_hand_worked(monkeypatch, t0_b, expected, accepted):
    """Two trains of four 1-flit packets on a 3x1 mesh, R = 1, W = 0: A = ids 0-3 from
    (0,0) at cycle 0, B = ids 4-7 from (1,0), both to (2,0). A is ready for (1,0)E at
    2, 3, 4, 5. With B injected at 1, B's packets are all ready there at 2: order A0
    (2, id 0), B0-B3 (2), A1 (3), A2 (4), A3 (5) -> starts 2..9, delivery = start
    (L = 1, W = 0). As blocks, B would wait behind A (and be delivered at 6..9): the
    train path must refuse. With B at 10 no train waits and the blocks are the answer."""
    from hwsim.noc import deliver

    seen = _train_outcomes(monkeypatch)
    t0 = np.array([0] * 4 + [t0_b] * 4)
    src = np.array([[0, 0]] * 4 + [[1, 0]] * 4)
    dst = np.array([[2, 0]] * 8)
    ptr = np.arange(9)
    fl = np.ones(8, np.int64)
    dl, lf = deliver(t0, fl, src, ptr, dst, 3, 1, True, 1, 0)
    assert dl.tolist() == expected and seen == [accepted]
    ref = simulate_noc_ref(Packets.from_arrays(t0, src, ptr, dst, fl), 3, 1, 1, 0)
    assert ref.delivery_cycle.tolist() == expected
    np.testing.assert_array_equal(lf.reshape(3, 1, 4), ref.link_flits)  # taken back when refused


@pytest.mark.parametrize("mode", ["xy-tree", "unicast"])
def test_trains_equal_packet_by_packet_and_simpy(monkeypatch, mode):
    """Random traffic made of trains (runs of packets with one source, destination list
    and inject cycle; lengths 1-3 flits) on meshes up to 6x6: the train path, the
    packet-by-packet path and SimPy give the same delivery of every packet and the
    same flits per link, and the train path is both taken and refused."""
    from hwsim.noc import deliver

    seen = _train_outcomes(monkeypatch)
    rng = np.random.default_rng(11)
    for _ in range(60):
        gw, gh = (int(v) for v in rng.integers(2, 7, 2))
        t0, src, dst, nds, fl = [], [], [], [], []
        for _tr in range(int(rng.integers(1, 6))):
            k, nd, t = (int(v) for v in (rng.integers(1, 9), rng.integers(1, 3), rng.integers(0, 15)))
            s = [int(rng.integers(0, gw)), int(rng.integers(0, gh))]
            d = np.stack([rng.integers(0, gw, nd), rng.integers(0, gh, nd)], axis=1).tolist()
            for _j in range(k):
                t0.append(t)
                src.append(s)
                dst.extend(d)
                nds.append(nd)
                fl.append(int(rng.integers(1, 4)))
        t0, src, dst, fl = (np.array(a, np.int64) for a in (t0, src, dst, fl))
        ptr = np.concatenate([[0], np.cumsum(nds)]).astype(np.int64)
        ref = simulate_noc_ref(Packets.from_arrays(t0, src, ptr, dst, fl), gw, gh, 2, 1, multicast=mode)
        for trains in (True, False):
            dl, lf = deliver(t0, fl, src, ptr, dst, gw, gh, mode == "xy-tree", 2, 1, trains=trains)
            np.testing.assert_array_equal(dl, ref.delivery_cycle)
            np.testing.assert_array_equal(lf.reshape(gw, gh, 4), ref.link_flits)
    assert 10 <= sum(seen) <= len(seen) - 10, (sum(seen), len(seen))
