"""The functional kernel's dense spike counts (hwsim.engine.kernel._dense_counts over
hwsim.engine.build.core_runs) and the aligned short rows (hwsim.engine.layout.pack's
``align``): the runs by hand and against a plain loop, and every counter of runs whose
populations spike densely equal to the same runs counted spike by spike."""

from __future__ import annotations

import numpy as np
import pytest

import hwsim.engine.build as eng
from hwsim.chip import load_chip
from hwsim.engine import simulate
from hwsim.engine.layout import kernel_field, pack
from hwsim.program import compile
from mapper.mapping import map_model
from models.intref import simulate_int
from tests.hwsim.cases import SMALL, random_net, same


class _Prog:
    """The fields :func:`hwsim.engine.build.core_runs` reads."""

    def __init__(self, sizes, cores):
        self.n_pops = len(sizes)
        self.pop_off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.nrn_core = np.asarray(cores, np.int64)


def test_core_runs_by_hand():
    # input (2 neurons), a (5: cores 3 3 1 1 3), b (3, kept in accumulator order), c (1 on core 0)
    prog = _Prog([2, 5, 3, 1], [0, 0, 3, 3, 1, 1, 3, 2, 2, 2, 0])
    r = eng.core_runs(prog, np.array([False, False, True, False]))
    assert r["pop_run_ptr"].tolist() == [0, 0, 3, 3, 4]
    assert r["run_lo"].tolist() == [0, 2, 4, 0]
    assert r["run_hi"].tolist() == [2, 4, 5, 1]
    assert r["run_core"].tolist() == [3, 1, 3, 0]


def _runs_by_loop(prog, acc_order):
    """The runs as a plain loop over neurons (a second derivation)."""
    out = []
    for p in range(1, prog.n_pops):
        if acc_order[p]:
            continue
        off, n = int(prog.pop_off[p]), int(prog.pop_off[p + 1] - prog.pop_off[p])
        for i in range(n):
            c = int(prog.nrn_core[off + i])
            if i == 0 or c != out[-1][3]:
                out.append([p, i, i + 1, c])
            else:
                out[-1][2] = i + 1
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_core_runs_equal_a_loop(seed):
    net, _ = random_net(seed)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
    prog = compile(map_model(net, chip))
    acc_order = np.arange(prog.n_pops) == 2 + seed % 2  # one population kept in accumulator order
    r = eng.core_runs(prog, acc_order)
    got = [[p, int(r["run_lo"][k]), int(r["run_hi"][k]), int(r["run_core"][k])]
           for p in range(prog.n_pops) for k in range(r["pop_run_ptr"][p], r["pop_run_ptr"][p + 1])]
    assert got == _runs_by_loop(prog, acc_order)
    assert any(hi - lo < int(prog.pop_size[p]) for p, lo, hi, _ in got)  # a population over several cores


def _no_runs(prog, acc_order):
    return {"pop_run_ptr": np.zeros(prog.n_pops + 1, np.int64), "run_lo": np.zeros(0, np.int64),
            "run_hi": np.zeros(0, np.int64), "run_core": np.zeros(0, np.int64)}


@pytest.mark.parametrize("seed,chip_name,spikes", [(0, "tiny", "binary"), (2, "tiny", "multi"),
                                                   (1, "loihi", "binary"), (3, "loihi", "multi")])
def test_dense_counts_equal_spike_by_spike(monkeypatch, seed, chip_name, spikes):
    """Every counter of a run with dense counting equals the same run counted spike by
    spike (no core runs), on nets whose populations spike densely at some steps; loihi
    has no spike payload (a spike count is that many packets)."""
    net, x = random_net(seed)
    chip = load_chip(chip_name).with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
    m = map_model(net, chip)
    prog = compile(m)
    r1 = simulate(prog, x, record="all", spikes=spikes, timing=True)
    same(simulate_int(m.net, x, record="all", spikes=spikes), r1)
    kb, ko, _, _ = eng.kernel_inputs(prog, "subtract", spikes, None, 1, False, 1, True)
    ptr = kernel_field(kb, ko, "pop_run_ptr")
    runs = {n: int(ptr[i + 1] - ptr[i]) for i, n in enumerate(prog.pop_names)}
    # the kernel's rule: 16 (spikes - runs) > neurons at some step of some population
    assert any((16 * ((s != 0).sum(axis=2) - runs[k]) > s.shape[2]).any() for k, s in r1.spikes.items() if runs[k])
    monkeypatch.setattr(eng, "core_runs", _no_runs)
    r2 = simulate(compile(m), x, record="all", spikes=spikes, timing=True)
    same(r1, r2)
    np.testing.assert_array_equal(r1.counters, r2.counters)
    np.testing.assert_array_equal(r1.timing["step_cycles"], r2.timing["step_cycles"])


def test_pack_aligns_a_field():
    fields = {"a": np.arange(3), "b": np.arange(10, 15), "c": np.array([7])}
    for name in ("a", "b", "c"):
        kb, ko = pack(fields, ("a", "b", "c"), align=name)
        i = ("a", "b", "c").index(name)
        assert kb[ko[i]:ko[i + 1]].ctypes.data % 64 == 0
        assert kb.tolist() == [0, 1, 2, 10, 11, 12, 13, 14, 7]
        assert ko.tolist() == [0, 3, 8, 9]


def test_short_rows_aligned():
    net, _ = random_net(3)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 32, "core.neurons": 16})
    prog = compile(map_model(net, chip), conv_path="rows")
    kb, ko, _, _ = eng.kernel_inputs(prog, "subtract", "binary", None, 1, False, 1, False)
    off = kernel_field(kb, ko, "grp_cr_off")
    assert (off >= 0).any()
    assert kernel_field(kb, ko, "cr").ctypes.data % 64 == 0
    assert (off[off >= 0] % 4 == 0).all()  # each group's rows start on a 32-byte boundary
    assert (kernel_field(kb, ko, "grp_cr_r") % 4 == 0).all()
