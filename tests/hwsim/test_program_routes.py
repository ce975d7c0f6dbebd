"""The route tables of a compiled program (hwsim.program_routes): XY trees and unicast
copies against a walk of every path, the distinct (neuron, core) pairs, and the
tables filled in chunks equal to one pass, with their temporaries bounded."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from hwsim import program_routes
from hwsim.program_routes import DestPairs, PairSet, route_tables, xy_trees


def _walk_tree(src, dsts, cw, ch):
    """Links of the union of XY paths, and those joining two chips, by walking every path."""
    links = set()
    for dx, dy in dsts:
        x, y = int(src[0]), int(src[1])
        while x != dx:
            nx = x + (1 if dx > x else -1)
            links.add((x, y, nx, y))
            x = nx
        while y != dy:
            ny = y + (1 if dy > y else -1)
            links.add((x, y, x, ny))
            y = ny
    chip = lambda x, y: (max(x, 0) // cw, max(y, 0) // ch)  # noqa: E731
    return len(links), sum(chip(a, b) != chip(c, d) for a, b, c, d in links)


def test_xy_tree_links_and_crossings():
    """The XY trees' links and inter-chip crossings from spans, vectorised (compile time
    O(destinations) instead of a Python walk of every path) equal a walk of every path;
    by hand: from (1, 1) to (3, 0), (3, 2) and (0, 2) on 2x2-core chips: row 1 from x=0
    to 3 (3 links, one crossing at x=1|2), column 3 from y=0 to 2 (2 links, crossing at
    y=1|2), column 0 from 1 to 2 (1 link, one crossing): 6 links, 3 crossings."""
    links, cross = xy_trees(np.array([[1, 1]]), np.array([0, 3]), np.array([[3, 0], [3, 2], [0, 2]]), 2, 2)
    assert (links.tolist(), cross.tolist()) == ([6], [3])
    rng = np.random.default_rng(0)
    for _ in range(50):
        W, H, cw, ch = (int(v) for v in rng.integers(1, 9, 4))
        n = 40
        src = np.stack([rng.integers(0, W, n), rng.integers(0, H, n)], axis=1)
        src[rng.random(n) < 0.2] = (-1, 0)  # the I/O port
        cnt = rng.integers(0, 6, n)
        ptr = np.concatenate([[0], np.cumsum(cnt)])
        d = np.stack([rng.integers(0, W, ptr[-1]), rng.integers(0, H, ptr[-1])], axis=1)
        links, cross = xy_trees(src, ptr, d, cw, ch)
        for i in range(n):
            got = (int(links[i]), int(cross[i]))
            assert got == _walk_tree(src[i], d[ptr[i]:ptr[i + 1]].tolist(), cw, ch)


def test_unique_pairs_as_numpy_unique():
    """(neuron, core) pairs added in blocks as int64 keys and deduplicated as they grow
    equal ``np.unique(axis=0)`` of all of them, also for no pairs (a net whose rows all
    have no input: found by hypothesis)."""
    rng = np.random.default_rng(1)
    p = np.stack([rng.integers(0, 50, 400), rng.integers(0, 7, 400)], axis=1)
    ps = PairSet(7)
    for blk in np.array_split(p, 9):
        ps.add(blk[:, 0] * 7 + blk[:, 1])
        ps.merge()  # as when the pending keys outgrow the kept ones
    np.testing.assert_array_equal(ps.pairs(), np.unique(p, axis=0))
    assert PairSet(7).pairs().shape == (0, 2)


def _grid(W, H, cw, ch):
    xy = np.array([(x, y) for y in range(H) for x in range(W)], np.int64)
    return xy, np.stack([xy[:, 0] // cw, xy[:, 1] // ch], axis=1)


def _random_pairs(rng, sizes, n_cores, n_pairs):
    """DestPairs of populations ``sizes`` with ``n_pairs`` random (neuron, core) pairs each
    (repeats included, added in blocks as compile does), and the distinct pairs per population."""
    dp, want = DestPairs(n_cores), {}
    for s, n in enumerate(sizes):
        i, c = rng.integers(0, n, n_pairs), rng.integers(0, n_cores, n_pairs)
        for blk in np.array_split(np.arange(n_pairs), 7):
            for core in np.unique(c[blk]):
                dp.add(s, i[blk][c[blk] == core], int(core))
        want[s] = set(zip(i.tolist(), c.tolist()))
    return dp, want


@pytest.mark.parametrize("multicast", ["unicast", "xy-tree"])
def test_route_tables_by_walking_every_path(multicast, monkeypatch):
    """Every neuron's remote destination cores, packets, flit-hops and inter-chip
    crossings equal a walk of every path (unicast: one XY path per copy; xy-tree: the
    union of the paths), its own core dropped; input events from the I/O port at
    (-1, 0); the same with chunks of 5 pairs (a neuron's pairs never split)."""
    rng = np.random.default_rng(2)
    W, H, cw, ch, C = 6, 5, 3, 2, 30
    core_xy, core_chip = _grid(W, H, cw, ch)
    sizes = [9, 14, 11]
    off = np.concatenate([[0], np.cumsum(sizes)])
    own = rng.integers(0, C, off[-1])
    for chunk in (program_routes.CHUNK, 5):
        monkeypatch.setattr(program_routes, "CHUNK", chunk)
        dp, want = _random_pairs(np.random.default_rng(3), sizes, C, 40)
        ptr, dst, pk, hops, icx = route_tables(dp, [1, 2], off, int(off[-1]), own, core_xy, core_chip, cw, ch,
                                               multicast)
        assert ptr[off[1]] == 0 and not dp.sets.get(1) and not dp.sets.get(2)
        for s in (1, 2):
            for i in range(sizes[s]):
                g = off[s] + i
                d = sorted(c for (n, c) in want[s] if n == i and c != own[g])
                assert dst[ptr[g]:ptr[g + 1]].tolist() == d
                src = core_xy[own[g]]
                if multicast == "unicast":
                    paths = [_walk_tree(src, [core_xy[c]], cw, ch) for c in d]
                    expect = (len(d), sum(p[0] for p in paths), sum(p[1] for p in paths))
                else:
                    expect = (1 if d else 0,) + _walk_tree(src, core_xy[d].tolist(), cw, ch)
                assert (int(pk[g]), int(hops[g]), int(icx[g])) == expect
        ip, idst, ipk, ihops, iicx = route_tables(dp, [0], off[:2], sizes[0], None, core_xy, core_chip, cw, ch,
                                                  multicast)
        for i in range(sizes[0]):
            d = sorted(c for (n, c) in want[0] if n == i)
            assert idst[ip[i]:ip[i + 1]].tolist() == d
            walk = _walk_tree((-1, 0), core_xy[d].tolist(), cw, ch) if multicast == "xy-tree" else \
                tuple(np.sum([_walk_tree((-1, 0), [core_xy[c]], cw, ch) for c in d], axis=0).tolist())
            assert (int(ihops[i]), int(iicx[i])) == walk


def test_route_tables_temporaries_bounded(monkeypatch):
    """Filling the tables allocates the results (8 bytes per destination, 48 per neuron)
    plus the remote pairs kept between the two passes (8 bytes each) and temporaries
    bounded by the chunk (ten int64 per pair or neuron of a chunk: VGG-16 ImageNet's
    tens of millions of pairs needed ~10 int64 per pair at once, 16 GB): 400,000 neurons
    with ~5 destinations each under 16 B x pairs + 48 B x neurons + 10 chunks of
    8 x 10 x 4,096 B."""
    monkeypatch.setattr(program_routes, "CHUNK", 4096)
    rng = np.random.default_rng(4)
    W, H, C = 40, 40, 1600
    core_xy, core_chip = _grid(W, H, 10, 10)
    n = 400_000
    dp = DestPairs(C)
    idx = np.arange(n)
    for _ in range(5):
        dp.add(1, idx, int(rng.integers(0, C)))  # a block of rows of every neuron on one core
        for c in rng.integers(0, C, 8):
            dp.add(1, idx[rng.random(n) < 0.5], int(c))
    n_pairs = dp.sets[1].keys().size
    own = np.zeros(n + 1, np.int64)
    tracemalloc.start()
    ptr, dst, pk, hops, icx = route_tables(dp, [1], np.array([0, 1, n + 1]), n + 1, own, core_xy, core_chip,
                                           10, 10, "xy-tree")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert dst.size > 4 * n
    assert peak <= 16 * n_pairs + 48 * n + 10 * 8 * 10 * 4096, (peak, n_pairs)
