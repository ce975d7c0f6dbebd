"""The spike NoC's merge of one link's (class, edge) pairs (:func:`hwsim.engine.timing_spikes.merge_link`):
the packed-key heap and its three-field fallback serve the pairs in (ready, packet, pair) order, as a
plain sort of every packet does."""

import numpy as np
import pytest

from hwsim.engine.timing_spikes import merge_link


def _case(rng, n_cls, heads_per_cls, base=0, spread=40):
    """Heads of ``n_cls`` classes (each with a sorted packet-id list, flits 1..4), each class on
    ``heads_per_cls`` template edges of the link: a root (every packet ready at t0 + R) or a
    pair whose parent block holds strictly increasing start cycles."""
    npk = 0
    ordr, fl, heads = [], [], []
    ids = rng.permutation(n_cls * 6)
    for c in range(n_cls):
        n = int(rng.integers(1, 6))
        pk = np.sort(ids[c * 6:c * 6 + n])
        a = len(ordr)
        ordr += list(pk)
        for _ in range(heads_per_cls):
            heads.append((a, n))
        npk = max(npk, int(pk.max()) + 1)
    fl = rng.integers(1, 5, npk)
    nce = len(heads)
    S = np.full(2 * nce * 8 + 8, -7, np.int64)
    hb = np.zeros(nce, np.int64)
    hs = np.zeros(nce, np.int64)
    hw = np.zeros(nce, np.int64)
    for q, (a, n) in enumerate(heads):
        hw[q] = (nce + q) * 8
        if rng.random() < 0.3:
            hb[q] = -1
            hs[q] = base + int(rng.integers(0, spread))
        else:
            hb[q] = q * 8
            S[q * 8:q * 8 + n] = base + np.cumsum(rng.integers(1, 6, n)) + int(rng.integers(0, spread))
            hs[q] = int(rng.integers(0, 4))
    ha = np.array([h[0] for h in heads], np.int64)
    hn = np.array([h[1] for h in heads], np.int64)
    return S, fl.astype(np.int64), np.array(ordr, np.int64), hw, hb, hs, hn, ha, npk


def _reference(S, fl, ordr, hw, hb, hs, hn, ha):
    """Every packet of every head sorted by (ready, packet, head), then served FIFO."""
    S = S.copy()
    ent = []
    for q in range(hw.size):
        for k in range(hn[q]):
            r = S[hb[q] + k] + hs[q] if hb[q] >= 0 else hs[q]
            ent.append((int(r), int(ordr[ha[q] + k]), q, k))
    ent.sort()
    free, tot, waited, last_end = -(1 << 62), 0, False, {}
    for r, p, q, k in ent:
        st = max(r, free)
        waited |= st != (r if k == 0 else last_end[q])
        S[hw[q] + k] = st
        free = st + fl[p]
        last_end[q] = free
        tot += fl[p]
    return S, tot, waited


def _run(S, fl, ordr, hw, hb, hs, hn, ha, npk):
    S = S.copy()
    m = hw.size
    scratch = [np.full(m, -5, np.int64) for _ in range(5)]
    tot, waited = merge_link(S, fl, ordr, scratch[0], scratch[1], hw, hb, hs, hn, ha, scratch[2], scratch[3],
                             scratch[4], m, npk)
    return S, tot, waited


@pytest.mark.parametrize("spread", [40, 1 << 61])
def test_merge_link_equals_sorted_service(spread):
    """Random links (roots and pairs, several edges of one class: equal (ready, packet) keys) give
    the sorted reference's start cycles, flits and wait flag; with ``spread = 2**61`` two roots
    are ready 2**61 cycles apart, so the range beside the key's other bits does not fit 63 bits
    and the three-field heap serves."""
    rng = np.random.default_rng(7)
    waits = 0
    for trial in range(300):
        case = _case(rng, int(rng.integers(2, 9)), int(rng.integers(1, 4)), 0, spread)
        if spread > 40:  # two roots 2**61 apart: no packed key fits (2 heads or more: b_q >= 1)
            hb, hs = case[4], case[5]
            hb[:2] = -1
            hs[:2] = (0, spread)
        S, tot, waited = _run(*case)
        S_ref, tot_ref, waited_ref = _reference(*case[:-1])
        np.testing.assert_array_equal(S, S_ref)
        assert (tot, waited) == (tot_ref, waited_ref)
        waits += waited
    assert 0 < waits < 300  # both outcomes of the wait flag were exercised


def test_merge_link_by_hand():
    """Two roots of one class (packets 0 and 3, 2 and 1 flits, ready at 10) and a pair of
    another class (packet 1, 3 flits, parent start 9, shift 1: ready 10). (ready, packet, head)
    order: packet 0 on head 0, then head 1; packet 1; packet 3 on head 0, head 1."""
    S = np.full(32, -1, np.int64)
    S[0] = 9
    fl = np.array([2, 3, 5, 1], np.int64)
    ordr = np.array([0, 3, 1], np.int64)
    hw = np.array([10, 20, 30], np.int64)
    hb = np.array([-1, -1, 0], np.int64)
    hs = np.array([10, 10, 1], np.int64)
    hn = np.array([2, 2, 1], np.int64)
    ha = np.array([0, 0, 2], np.int64)
    S2, tot, waited = _run(S, fl, ordr, hw, hb, hs, hn, ha, 4)
    # head 0 packet 0 at 10 (-> 12), head 1 packet 0 at 12 (-> 14), head 2 packet 1 at 14
    # (-> 17), head 0 packet 3 at 17 (-> 18), head 1 packet 3 at 18
    assert list(S2[[10, 11, 20, 21, 30]]) == [10, 17, 12, 18, 14]
    assert tot == 2 + 1 + 2 + 1 + 3
    assert waited
