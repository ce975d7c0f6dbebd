"""Placement strategies and XY routing on hand-checkable cases."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest
import scipy.sparse as sp

from mapper.placement import PlacementError, hilbert_d2xy, place
from mapper.routing import Flows, route


def chip(w=3, h=3, max_chips=4, multicast="unicast", interchip=3):
    return NS(mesh=NS(width=w, height=h, max_chips=max_chips),
              noc=NS(router_cycles=2, link_cycles=1, interchip_cycles=interchip, multicast=multicast))


def test_rowmajor_positions_and_cost():
    # 4 cores on a 3x3 mesh: (0,0) (1,0) (2,0) (0,1); core 0 -> core 3 carries 5 flits/step
    T = sp.csr_matrix(([5.0, 2.0], ([0, 4], [3, 0])), shape=(5, 5))  # row 4 = I/O port
    p = place(4, T, chip(), "rowmajor")
    assert p.positions.tolist() == [[0, 0, 0], [0, 1, 0], [0, 2, 0], [0, 0, 1]]
    # 0 -> 3: 1 hop (5 flit-hops); I/O (-1, 0) -> core 0 (0, 0): 1 hop (2 flit-hops)
    assert p.stats == {"flit_hops": 7.0, "interchip_flits": 0.0, "objective": 7.0}


def test_multichip_costs_interchip_hops():
    # 10 cores on 3x3 chips -> 2 chips side by side; core 0 (chip 0) -> core 9 (chip 1, (0,0))
    T = sp.csr_matrix(([1.0], ([0], [9])), shape=(11, 11))
    p = place(10, T, chip(interchip=6), "rowmajor")
    assert p.n_chips == 2 and p.chip_grid == (2, 1)
    assert p.positions[9].tolist() == [1, 0, 0]
    # global x 0 -> 3: 3 hops, one of them crosses chips; penalty 6 / (2 + 1) = 2
    assert p.stats == {"flit_hops": 3.0, "interchip_flits": 1.0, "objective": 4.0}


def test_too_many_cores_is_refused():
    with pytest.raises(PlacementError, match="need 2 chips.*max_chips is 1"):
        place(10, None, chip(max_chips=1), "rowmajor")
    with pytest.raises(PlacementError, match="unknown placement strategy 'magic'"):
        place(2, None, chip(), "magic")


def test_hilbert_curve_is_a_path():
    pts = [hilbert_d2xy(3, d) for d in range(64)]
    assert len(set(pts)) == 64
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(pts, pts[1:]))


def _pipeline(n, seed=0):
    perm = np.random.default_rng(seed).permutation(n)
    rows, cols, vals = [], [], []
    for k in range(n - 1):
        for j in (1, 2):
            if k + j < n:
                rows.append(perm[k]); cols.append(perm[k + j]); vals.append(4.0 / j)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n + 1, n + 1))


def test_partition_and_anneal_beat_rowmajor():
    T = _pipeline(60)
    c = NS(mesh=NS(width=8, height=8, max_chips=1), noc=NS(router_cycles=1, link_cycles=1, interchip_cycles=2))
    cost = {s: place(60, T, c, s, seed=1).stats["objective"] for s in ("rowmajor", "partition", "anneal")}
    assert cost["partition"] < 0.6 * cost["rowmajor"]
    assert cost["anneal"] <= cost["partition"]
    # lower bound: every flow of weight w between distinct cores takes >= 1 hop
    assert cost["anneal"] >= T.sum()
    print("placement objective:", cost)


def _flows(src, dsts, rate, n):
    rows = np.repeat(np.arange(len(dsts)), [len(d) for d in dsts])
    cols = np.concatenate([np.asarray(d) for d in dsts])
    D = sp.csr_matrix((np.ones(cols.size, bool), (rows, cols)), shape=(len(dsts), n))
    return Flows(np.asarray(src), np.asarray(rate, float), D, np.zeros(len(src), np.int8), n)


def test_xy_unicast_and_tree_loads():
    # 3x3 mesh rowmajor: core k at (k % 3, k // 3). Flow from core 0 (0,0) to cores 5 (2,1) and 2 (2,0).
    p = place(9, None, chip(), "rowmajor")
    f = _flows([0], [[5, 2]], [1.5], 9)
    uni = route(p, f, chip(multicast="unicast"))
    E, W, N, S = 0, 1, 2, 3
    # XY: x first. To (2,1): (0,0)E (1,0)E (2,0)N. To (2,0): (0,0)E (1,0)E.
    assert uni.link_load[0, 0, E] == 3.0 and uni.link_load[1, 0, E] == 3.0 and uni.link_load[2, 0, N] == 1.5
    assert uni.link_load.sum() == 1.5 * 5 and uni.table_entries[0] == 2
    tree = route(p, f, chip(multicast="xy-tree"))
    assert tree.link_load[0, 0, E] == 1.5 and tree.link_load[1, 0, E] == 1.5 and tree.link_load[2, 0, N] == 1.5
    assert tree.link_load.sum() == 1.5 * 3 and tree.table_entries[0] == 2  # two destination cores


def test_io_port_injection():
    p = place(4, None, chip(), "rowmajor")
    f = _flows([4], [[3]], [2.0], 4)  # I/O port -> core 3 at (0, 1)
    r = route(p, f, chip())
    # enters (0,0) from the west, then one hop north
    assert r.io_load == 2.0 and r.link_load[0, 0, 2] == 2.0 and r.link_load.sum() == 2.0


def test_tree_fork_is_counted():
    # from (1,0) to (0,1) and (2,1): XY paths go W then N, and E then N: the tree forks at (1,0)
    p = place(9, None, chip(), "rowmajor")
    f = _flows([1], [[3, 5]], [1.0], 9)
    tree = route(p, f, chip(multicast="xy-tree"))
    assert tree.table_entries[1] == 2 and tree.fork_entries[1] == 1
    assert tree.fork_entries.sum() == 1  # (0,0) and (2,0) only pass the packet on
