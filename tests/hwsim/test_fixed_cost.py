"""hwsim.engine's per-step fixed costs cut exactly (issue 17, third round): a small dense
geometric projection read as short rows, soma fire cycles added by the caller, and
population steps without events skipping the tiles' counter work."""

from __future__ import annotations

import numpy as np

import hwsim.engine.build as eng
from hwsim.chip import load_chip
from hwsim.engine import simulate
from hwsim.engine.timing_plan import fire_cycles
from hwsim.program import compile
from mapper.mapping import map_model
from models.intref import simulate_int
from tests.hwsim.cases import SMALL, random_net, same


def test_compact_rows_dense_hand_worked():
    """A dense geometric group (no explicit entries) as short rows: the window is its posts
    ``a0 .. a0 + n_post - 1``, the weight part ``W^T[k(i)]``, then per tile (events, cycles,
    AC, MAC) from the rows' ``row_nent`` entries, padded to whole 4-lane vectors."""
    wk = np.array([[2, 0, -1], [0, 0, 0], [5, 4, 3]])  # pre 1 has k(1) = -1: no weights
    out = eng._compact_rows(
        grp_src=np.array([1]), grp_pre_off=np.array([0]), pre_ptr=np.array([0, 2, 2, 3]),
        grp_rows=np.array([0, 1, 2]), row_ptr=np.zeros(4, np.int64), ea=np.zeros(0, np.int64),
        ew=np.zeros(0, np.int64), row_tile=np.array([4, 6, 6]), row_mac=np.array([0, 1, 0]),
        row_cyc=np.array([3, 4, 5]), pop_size=np.array([7, 3]), row_nent=np.array([2, 1, 3]),
        dense={0: (10, wk)})
    # posts 10..12 (na 3), tiles 4 and 6: R = 3 + 2 * 4 = 11 -> 12
    assert out["grp_cr_off"].tolist() == [0]
    assert (out["grp_cr_a0"].tolist(), out["grp_cr_na"].tolist(), out["grp_cr_r"].tolist()) == ([10], [3], [12])
    assert out["grp_cr_tiles"].tolist() == [4, 6]
    assert out["cr"].reshape(3, 12).tolist() == [
        [2, 0, -1, 1, 3, 2, 0, 1, 4, 0, 1, 0],  # rows 0 (tile 4: 2 ACs) and 1 (tile 6: 1 MAC)
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # no rows
        [5, 4, 3, 0, 0, 0, 0, 1, 5, 3, 0, 0]]  # row 2 (tile 6: 3 ACs)


def test_dense_short_rows_equal_geometric_and_rows(monkeypatch):
    """The random nets' small dense projections read as short rows give the same spikes,
    membranes, counters and step cycles as the geometric scatter and the explicit rows,
    and as the integer reference."""
    for seed in (0, 1):
        net, x = random_net(seed)
        chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
        m = map_model(net, chip)
        prog = compile(m)
        kb, ko, _, _ = eng.kernel_inputs(prog, "subtract", "binary", None, 1, False, 1, True)
        geo_short = (eng.kernel_field(kb, ko, "grp_geo") >= 0) & (eng.kernel_field(kb, ko, "grp_cr_off") >= 0)
        assert geo_short.any()  # the case has dense geometric groups read as short rows
        r1 = simulate(prog, x, record="all", timing=True, timing_samples=4)
        r2 = simulate(compile(m, conv_path="rows"), x, record="all", timing=True, timing_samples=4)
        with monkeypatch.context() as mp:
            mp.setattr(eng, "_dense_weights", lambda *a, **k: {})
            prog3 = compile(m)
            kb, ko, _, _ = eng.kernel_inputs(prog3, "subtract", "binary", None, 1, False, 1, True)
            assert not ((eng.kernel_field(kb, ko, "grp_geo") >= 0) & (eng.kernel_field(kb, ko, "grp_cr_off") >= 0)).any()
            r3 = simulate(prog3, x, record="all", timing=True, timing_samples=4)
        same(simulate_int(m.net, x, record="all"), r1)
        for r in (r2, r3):
            same(r1, r)
            np.testing.assert_array_equal(r1.counters, r.counters)
            np.testing.assert_array_equal(r1.timing["step_cycles"], r.timing["step_cycles"])


def test_fire_cycles_without_events():
    """With an all-zero input and no bias nothing integrates: every step's busy cycles per
    core are exactly its soma tiles' fire cycles, ``ceil(neurons / pe_width)`` each, per
    sample; no events, ACs, MACs or partial-sum operations."""
    net, x = random_net(0)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
    m = map_model(net, chip)
    prog = compile(m)
    pe = int(chip.core.pe_width)
    want = np.zeros(prog.n_cores, np.int64)
    for k in range(prog.n_tiles):
        if prog.tile_kind[k] == 0:
            want[prog.tile_core[k]] += -(-int(prog.tile_ncols[k]) // pe)
    np.testing.assert_array_equal(fire_cycles(prog), want)
    assert want.sum() == sum(-(-int(n) // pe) for n in prog.tile_ncols[prog.tile_kind == 0]) > 0
    z = np.zeros_like(x)
    B = x.shape[1]
    r = simulate(prog, z, timing=False)
    cnt = r.counters
    names = r.counter_names
    np.testing.assert_array_equal(cnt[:, :, names.index("busy_cycles")], np.broadcast_to(B * want, cnt.shape[:2]))
    for n in ("events", "acs", "macs", "psum_ops"):
        assert cnt[:, :, names.index(n)].sum() == 0
