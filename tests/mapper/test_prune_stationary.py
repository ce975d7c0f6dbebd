"""Pruning on the weight-stationary mapping with the paper's packing (mapper.prune.stationary)."""

from __future__ import annotations

import numpy as np
import pytest

import models
from hwsim.chip import load_chip
from mapper.prune.stationary import (PAPER_SAVINGS, allocate, column_grain_count, crossbar_grain_count,
                                     paper_savings, prune_stationary, savings_table, stationary_matrix)
from mapper.stationary import stationary_layers
from models.zoo.catalog import load

XB = load_chip("crossbar")


def test_packing_counts_by_hand():
    # 600 rows = chunks of 256, 256, 88; 300 columns = blocks of 256, 44
    keep = np.zeros((600, 300), dtype=bool)
    keep[0:256, :] = True                 # chunk 0: all 300 columns -> ceil(300/256) = 2 either way
    keep[300, 0:100] = True               # chunk 1: columns 0..99 (block 0) ...
    keep[400, 280:290] = True             # ... and 280..289 (block 1): |S_1| = 110 -> 1 packed, 2 by block
    # chunk 2 (rows 512..599) keeps nothing -> 0
    assert column_grain_count(keep, 256, 256) == 2 + 1 + 0 == 3
    assert crossbar_grain_count(keep, 256, 256) == 2 + 2 + 0 == 4
    full = np.ones((600, 300), dtype=bool)  # unpruned: both are ceil(600/256) x ceil(300/256) = 6
    assert column_grain_count(full, 256, 256) == crossbar_grain_count(full, 256, 256) == 6


def test_allocate_spreads_the_target():
    # 100 crossbars in all, target 0.5 -> 50 removed; floors 25, 12, 12 (= 49), one more to the
    # layer with the smallest fraction removed (b: 12/25 = c: 12/25 < a: 25/50; ties to the larger, then name)
    rem = allocate({"a": 50, "b": 25, "c": 25}, {"a": 49, "b": 24, "c": 24}, 0.5)
    assert rem == {"a": 25, "b": 13, "c": 12} and sum(rem.values()) == 50
    # a 1-crossbar layer keeps its crossbar; the others make up for it
    rem = allocate({"a": 1, "b": 9}, {"a": 0, "b": 8}, 0.5)
    assert rem == {"a": 0, "b": 5}


@pytest.mark.parametrize("grain", ["crossbar", "column"])
def test_vgg8_at_the_papers_ratio(grain):
    net = models.lower(load("vgg8:cifar"))
    r = prune_stationary(net, XB, target=PAPER_SAVINGS["vgg8:cifar"], grain=grain)
    # 206 crossbars, ceil(0.721 * 206) = 149 removed -> 57 kept
    assert (r.crossbars_before, r.crossbars_after) == (206, 57)
    assert r.savings == pytest.approx(149 / 206)
    # the pruned net itself needs those crossbars: recount its nonzero patterns
    count = column_grain_count if grain == "column" else crossbar_grain_count
    after = 0
    for q, lay in zip(r.net.projections, stationary_layers(r.net, XB)):
        after += count(stationary_matrix(q) != 0, 256, 256)
    assert after == 57
    assert 0 < r.l1_kept < 1


def test_column_grain_keeps_more_weight_than_crossbar_grain():
    net = models.lower(load("vgg8:cifar"))
    a = prune_stationary(net, XB, target=0.5, grain="crossbar")
    b = prune_stationary(net, XB, target=0.5, grain="column")
    assert a.crossbars_after == b.crossbars_after == 103
    assert b.l1_kept > a.l1_kept


def test_paper_savings_table():
    rows = paper_savings(["vgg8:cifar"], grains=("column",))
    assert rows[0]["ws_before"] == 206 and rows[0]["ws_after"] == 57
    text = savings_table(rows)
    assert "| vgg8:cifar | column | 72.1 % | 206 -> 57 | 72.3 % |" in text


def test_paper_savings_on_both_denominators():
    rows = paper_savings(["vgg8:cifar"], unrolled_chip="tianjic")
    # the unrolled mapping at fold 1: 19,204 tiles, one crossbar each
    assert {r["unrolled_before"] for r in rows} == {19_204}
    assert all(r["unrolled_after"] < 19_204 for r in rows)


def test_unrolled_pruner_refuses_a_weight_stationary_chip():
    from mapper.prune import PruneError, prune

    with pytest.raises(PruneError, match="maps weight-stationary.*prune_stationary"):
        prune(load("mnist_mlp"), XB, target=0.3)


def test_bad_requests_are_named():
    from mapper.prune import PruneError

    net = models.lower(load("mnist_mlp"))
    with pytest.raises(PruneError, match="target must be a fraction in \\(0, 1\\)"):
        prune_stationary(net, XB, target=1.5)
    with pytest.raises(PruneError, match="unknown grain 'row'"):
        prune_stationary(net, XB, target=0.5, grain="row")
