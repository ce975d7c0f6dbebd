"""The timing plan's statically one-stream edges, by hand (hwsim.engine.timing_plan)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.engine.timing_plan import anchors, static_edges

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
