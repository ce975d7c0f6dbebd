"""Scale-up (issue 17): compiled entries equal an explicit re-derivation of the
convolution, program bytes per crossbar entry, and runs held under a memory budget
with identical spikes and counters."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.chip import load_chip
from hwsim.engine import simulate
from hwsim.engine import run as run_mod
from hwsim.program import compile
from mapper.mapping import map_model
from models.errors import SizeLimitError
from models.intref import simulate_int
from tests.hwsim.cases import SMALL, random_net, same


@pytest.fixture(scope="module")
def conv_mapping():
    net, x = random_net(1)  # spiking input, conv 2->4 3x3 on 6x6, partial-sum tiles on this chip
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
    m = map_model(net, chip)
    assert sum(t.kind == "partial" for t in m.tiling.tiles) > 0
    return m, x


def _explicit_conv(q) -> dict:
    """(pre, post) -> weight of convolution ``q`` by the definition, one loop per index:
    ``y[o, i, j] += w[o, c, a, b] * x[c, s*i - p + d*a, s*j - p + d*b]`` (groups of 1)."""
    g = q.geom
    (oh, ow), (ih, iw), (kh, kw) = g.out_hw, g.in_hw, g.kernel
    out = {}
    for o in range(g.out_channels):
        for i in range(oh):
            for j in range(ow):
                for c in range(g.in_channels):
                    for a in range(kh):
                        for b in range(kw):
                            y = g.stride[0] * i - g.padding[0] + g.dilation[0] * a
                            x = g.stride[1] * j - g.padding[1] + g.dilation[1] * b
                            w = q.weight[o, c, a, b]
                            if 0 <= y < ih and 0 <= x < iw and w != 0:
                                key = ((c * ih + y) * iw + x, (o * oh + i) * ow + j)
                                out[key] = out.get(key, 0) + int(w)
    return out


def test_compiled_conv_entries_equal_explicit_derivation(conv_mapping):
    """Every crossbar entry of the conv projection's tiles (soma and partial) is the
    definition's weight of its (pre, post) pair, each pair stored once, every nonzero
    pair of the tiles' axons and posts present; entries are stored narrow."""
    m, _ = conv_mapping
    prog = compile(m, conv_path="rows")  # the explicit rows (the geometric path stores none)
    q = next(p for p in m.net.projections if p.name == "c")
    j = prog.proj_names.index("c")
    ref = _explicit_conv(q)
    a0 = int(prog.proj_acc_off[j])
    got = {}
    for t in m.tiling.tiles:
        if t.population != "a":
            continue
        lo, hi = prog.tile_row_ptr[t.id]
        axons = set()
        for r in range(lo, hi):
            pre = int(prog.row_pre[r])
            axons.add(pre)
            for e in range(prog.row_ptr[r], prog.row_ptr[r + 1]):
                key = (pre, int(prog.ent_acc[e]) - a0)
                assert key not in got, f"pair {key} stored twice"
                got[key] = int(prog.ent_w[e])
                assert int(np.asarray(t.post)[prog.ent_col[e]]) == key[1]
        posts = set(np.asarray(t.post).tolist())
        expect = {k: w for k, w in ref.items() if k[0] in axons and k[1] in posts}
        assert {k: got[k] for k in expect} == expect
    assert got == ref
    assert prog.ent_acc.dtype == np.int32 and prog.ent_w.dtype == np.int16 and prog.ent_col.dtype == np.int32


def test_program_bytes_per_entry(conv_mapping):
    """The program's entry arrays hold 10 bytes per crossbar entry (int32 slot, int16
    weight, int32 column; 24 before issue 17); rows and neurons are extra."""
    m, _ = conv_mapping
    prog = compile(m, conv_path="rows")
    E = prog.ent_acc.size
    assert prog.ent_acc.nbytes + prog.ent_w.nbytes + prog.ent_col.nbytes == 10 * E


def test_budget_bounds_threads_and_chunks_exact(conv_mapping, tmp_path, monkeypatch):
    """A budget that leaves room for one thread and (with an AER trace) two samples per
    chunk gives the same spikes, membranes and counters as the default run."""
    m, x = conv_mapping
    prog = compile(m)
    ref = simulate_int(m.net, x, record="all")
    full = simulate(prog, x, record="all", timing=False)
    same(ref, full)
    plans, seen = [], {}
    real = run_mod._run_plan

    def spy(prog_, kin, wo, T, B, R, n_out, n_py, aer, max_bytes, chunk_max):
        fixed = sum(int(a.nbytes) for a in kin) + 8 * T * B * (n_out + 2 * R)
        per_thread = 8 * (int(wo[-1]) + T * prog_.n_cores * 15 + prog_.grid_w * prog_.grid_h * 4 + run_mod._HIST_CYCLES)
        seen["budget"] = fixed + per_thread + 2 * 16 * T * int(prog_.pop_off[-1])
        plans.append(real(prog_, kin, wo, T, B, R, n_out, n_py, aer, seen["budget"], chunk_max))
        return plans[-1]

    monkeypatch.setattr(run_mod, "_run_plan", spy)
    small = simulate(prog, x, record="all", timing=False, aer=tmp_path / "run.npz")
    assert plans == [(1, 2)]
    same(ref, small)
    np.testing.assert_array_equal(small.counters, full.counters)
    monkeypatch.setattr(run_mod, "_run_plan", real)
    with pytest.raises(SizeLimitError, match="memory budget"):
        simulate(prog, x, record="all", timing=False, 
                 max_bytes=seen["budget"] - 32 * x.shape[0] * int(prog.pop_off[-1]) - 1)  # one byte short


def test_budget_too_small_raises(conv_mapping):
    m, x = conv_mapping
    with pytest.raises(SizeLimitError, match="memory budget"):
        simulate(m, x, record="all", timing=False, max_bytes=1000)


@pytest.mark.parametrize("delta", [1, -1])
def test_tile_rows_must_match_n_axons(conv_mapping, delta):
    """Compile writes each tile's rows in place at its position, sized by the tile's
    ``n_axons``: a tile whose axons hold more or fewer rows is named, not written past."""
    from hwsim.program import ProgramError

    m, _ = conv_mapping
    t = m.tiling.tiles[0]
    t.n_axons += delta
    try:
        with pytest.raises(ProgramError, match=r"tile 0 \(.*n_axons"):
            compile(m)
    finally:
        t.n_axons -= delta
