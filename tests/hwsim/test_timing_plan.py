"""The timing plan's statically one-stream edges and serving tables, by hand (hwsim.engine.timing_plan)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.engine.timing_plan import anchors, delivery_tables, serve_tables, static_edges

# two classes: class 0 = links 10 -> 11 -> 12 (a chain), class 1 = links 20 -> 11
N_PTR = np.array([0, 3, 5])
N_LINK = np.array([10, 11, 12, 20, 11])
N_PAR = np.array([-1, 0, 1, -1, 0])


@pytest.mark.parametrize("pops, pipelined, want", [
    # same population: link 11 gets class 0 from link 10 and class 1 from link 20 (two
    # streams); link 12 only class 0 from link 11 (one stream); roots never static
    ([1, 1], False, [False, False, True, False, False]),
    # different populations, sync (one spike NoC call per population): one stream each
    ([1, 2], False, [False, True, True, False, True]),
    # different populations, pipelined (one call for all): two streams on link 11 again
    ([1, 2], True, [False, False, True, False, False]),
])
def test_static_edges_by_hand(pops, pipelined, want):
    st = static_edges(N_PTR, N_LINK, N_PAR, np.array(pops), pipelined)
    assert st.tolist() == want


def test_anchors_by_hand():
    """A static edge's anchor is its nearest non-static ancestor (template-relative),
    its depth the static edges down to it."""
    anc, dep = anchors(N_PTR, N_PAR, np.array([False, True, True, False, True]))
    assert anc.tolist() == [0, 0, 0, 0, 0] and dep.tolist() == [0, 1, 2, 0, 1]
    anc, dep = anchors(N_PTR, N_PAR, np.array([False, False, True, False, False]))
    assert anc.tolist() == [0, 1, 1, 0, 1] and dep.tolist() == [0, 0, 1, 0, 0]


def test_serve_tables_by_hand():
    """Only the non-static edges are listed, per class; each names its link, the rank (place
    among its class's listed edges) of the edge whose block its parent's start cycles are
    (the parent, or the static parent's anchor), the parent's depth and the parent's link
    (-1 at a root); static edges have no rank."""
    static = np.array([False, False, True, False, False])
    anc, dep = anchors(N_PTR, N_PAR, static)
    ptr, link, pp, d, pl, rank = serve_tables(N_PTR, N_LINK, N_PAR, static, anc, dep)
    assert ptr.tolist() == [0, 2, 4] and rank.tolist() == [0, 1, -1, 0, 1]
    assert link.tolist() == [10, 11, 20, 11] and pl.tolist() == [-1, 10, -1, 20]
    assert pp.tolist() == [-1, 0, -1, 0] and d.tolist() == [0, 0, 0, 0]
    # a chain 0 -> 1 -> 2 -> 3 -> 4 whose edges 2 and 3 are static: edge 4 (merging with
    # another class, say) reads the block of edge 1 (rank 1), its parent (edge 3) sits 2
    # static edges below it
    static = np.array([False, False, True, True, False])
    n_ptr, n_link, n_par = np.array([0, 5]), np.array([1, 2, 3, 4, 5]), np.array([-1, 0, 1, 2, 3])
    anc, dep = anchors(n_ptr, n_par, static)
    ptr, link, pp, d, pl, rank = serve_tables(n_ptr, n_link, n_par, static, anc, dep)
    assert ptr.tolist() == [0, 3] and rank.tolist() == [0, 1, -1, -1, 2] and link.tolist() == [1, 2, 5]
    assert pp.tolist() == [-1, 0, 1] and d.tolist() == [0, 0, 2] and pl.tolist() == [-1, 1, 4]
    # a destination reads the block of its ejection edge (by rank), or of the static ejection
    # edge's anchor (depth below it), or none on the source core
    blk, dd = delivery_tables(n_ptr, np.array([0, 4]), np.array([3, 4, 1, -1]), anc, dep, rank)
    assert blk.tolist() == [1, 2, 1, -1] and dd.tolist() == [2, 0, 0, 0]
