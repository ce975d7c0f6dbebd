"""hwsim.traces: AER .npz, VCD (pyvcd) and Chrome trace files, written atomically."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hwsim.engine import simulate
from hwsim.program import compile
from hwsim.traces import TraceConfig
from mapper.mapping import map_model
from models.errors import SimulationError
from tests.hwsim.test_engine import _toy, _toy_chip, _random_net, SMALL
from hwsim.chip import load_chip


@pytest.fixture(scope="module")
def toy():
    m = map_model(_toy(), _toy_chip())
    x = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=np.float32)[:, None, :]
    x = np.concatenate([x, np.zeros_like(x), x], axis=1)  # 3 samples, the middle one silent
    return compile(m), x


def test_traces_off_by_default(toy, tmp_path):
    prog, x = toy
    r = simulate(prog, x)
    assert r.meta["traces"] == {}


def test_aer_trace_matches_recording(toy, tmp_path):
    prog, x = toy
    # chunk_bytes forces one sample per kernel call: events are streamed chunk by chunk
    r = simulate(prog, x, record="all", trace=TraceConfig(aer=tmp_path / "a.npz", chunk_bytes=1))
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    assert list(a["pop_names"]) == ["in", "h", "o"]
    exp = []
    for b in range(x.shape[1]):
        for t in range(x.shape[0]):
            for pname in ("h", "o"):
                p = prog.pop_names.index(pname)
                for i in np.flatnonzero(r.spikes[pname][t, b]):
                    g = int(prog.pop_off[p]) + int(i)
                    exp.append((b, t, g, p, int(i), int(prog.nrn_core[g]), int(r.spikes[pname][t, b, i])))
    got = list(zip(*(a[c].tolist() for c in ("sample", "step", "neuron", "pop", "index", "core", "payload"))))
    assert got == exp and len(got) == 2 * 3 * 3  # samples 0 and 2: 3 spikes per step
    assert not list(tmp_path.glob(".*"))  # no temporaries left


def test_aer_with_input_events(toy, tmp_path):
    prog, x = toy
    simulate(prog, x, aer=tmp_path / "a.npz", trace={"aer_include_input": True})
    with np.load(tmp_path / "a.npz") as z:
        inp = z["pop"] == 0
        assert int(inp.sum()) == 2 * int(x[:, 0].sum())
        assert (z["core"][inp] == -1).all() and (z["payload"][inp] == 1).all()


def test_vcd_trace(toy, tmp_path):
    prog, x = toy
    r = simulate(prog, x, record="all", vcd=tmp_path / "w.vcd",
                 trace=TraceConfig(vcd_neurons=("h:1", ("o", 0)), vcd_sample=2))
    text = (tmp_path / "w.vcd").read_text()
    head, body = text.split("$enddefinitions $end")
    assert "$timescale 1 us $end" in head and "1 time unit = 1 simulation step" in head
    vars_ = re.findall(r"\$var (\w+) (\d+) (\S+) (\S+) \$end", head)
    assert [(v[0], v[1], v[3]) for v in vars_] == [("integer", "16", "n1_v"), ("wire", "1", "n1_spike"),
                                                  ("integer", "16", "n0_v"), ("wire", "1", "n0_spike")]
    hc, oc = int(prog.nrn_core[prog.pop_off[1] + 1]), int(prog.nrn_core[prog.pop_off[2]])
    assert f"$scope module core{hc} $end" in head and f"$scope module core{oc} $end" in head
    ids = {v[3]: v[2] for v in vars_[:2]}
    # parse value changes back: time -> {id: value}
    vals, t = {}, None
    for tok in re.finditer(r"#(\d+)|b([01]+) (\S+)|([01])(\S+)", body):
        if tok.group(1) is not None:
            t = int(tok.group(1))
        elif tok.group(2) is not None:
            vals.setdefault(t, {})[tok.group(3)] = int(tok.group(2), 2)
        else:
            vals.setdefault(t, {})[tok.group(5)] = int(tok.group(4))
    M = 16
    v_exp = r.membrane["h"][:, 2, 1]
    s_exp = r.spikes["h"][:, 2, 1]
    last_v = last_s = None
    for step in range(x.shape[0]):
        ch = vals.get(step, {})
        if ids["n1_v"] in ch:
            raw = ch[ids["n1_v"]]
            last_v = raw - (1 << M) if raw >= 1 << (M - 1) else raw
        if ids["n1_spike"] in ch:
            last_s = ch[ids["n1_spike"]]
        assert last_v == v_exp[step] and last_s == int(s_exp[step] != 0)


def test_vcd_cores_and_bad_selection(toy, tmp_path):
    prog, x = toy
    hc = int(prog.nrn_core[prog.pop_off[1]])
    simulate(prog, x, vcd=tmp_path / "w.vcd", trace={"vcd_cores": (hc,)})
    head = (tmp_path / "w.vcd").read_text().split("$enddefinitions")[0]
    assert len(re.findall(r"\$var ", head)) == 2 * int((prog.nrn_core[prog.pop_off[1]:] == hc).sum())
    for bad in ({"vcd_neurons": ("nope:0",)}, {"vcd_neurons": ("h:7",)}, {"vcd_cores": (99,)},
                {"vcd_sample": 5}):
        with pytest.raises(SimulationError):
            simulate(prog, x, vcd=tmp_path / "bad.vcd", trace=bad)
    assert not (tmp_path / "bad.vcd").exists()


@pytest.mark.parametrize("mode", ["sync", "pipelined"])
def test_chrome_trace(mode, tmp_path):
    net, x = _random_net(0)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 24, "core.neurons": 16,
                                             "timing.barrier_cycles": 3})
    m = map_model(net, chip)
    r = simulate(m, x[:4, :2], mode=mode, timing_samples=2, chrome=tmp_path / "c.json",
                 trace={"timeline_sample": 1})
    doc = json.loads((tmp_path / "c.json").read_text())
    ev = doc["traceEvents"]
    clock = chip.timing.clock_hz
    for e in ev:
        assert e["ph"] in ("X", "M") and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "X":
            assert e["ts"] >= 0 and e["dur"] >= 0
            assert e["dur"] * clock / 1e6 == pytest.approx(e["args"]["cycles"])
    steps = [e for e in ev if e.get("cat") == "step"]
    sc = r.timing["step_cycles"][1]
    assert [e["args"]["cycles"] for e in steps] == sc.tolist()
    starts = np.concatenate([[0], np.cumsum(sc)[:-1]])
    np.testing.assert_allclose([e["ts"] for e in steps], starts / clock * 1e6)
    # busy cycles per core = integrate + fire phases
    busy = np.zeros(r.timing["core_busy_cycles"].shape[1], np.int64)
    for e in ev:
        if e.get("cat") == "core" and e["name"] in ("integrate", "fire"):
            busy[e["tid"]] += e["args"]["cycles"]
    np.testing.assert_array_equal(busy, r.timing["core_busy_cycles"][1])
    noc = [e for e in ev if e.get("cat") == "noc"]
    assert noc and all(e["name"] in ("spike", "psum") for e in noc)
    # every event of a step lies inside it
    for e in ev:
        if e["ph"] == "X" and e["cat"] != "step":
            s = e["args"]["step"]
            assert e["ts"] >= starts[s] / clock * 1e6 - 1e-9
            assert e["ts"] + e["dur"] <= (starts[s] + sc[s]) / clock * 1e6 + 1e-9


def test_chrome_needs_timing(toy, tmp_path):
    prog, x = toy
    with pytest.raises(SimulationError, match="timing"):
        simulate(prog, x, timing=False, chrome=tmp_path / "c.json")
    assert not list(tmp_path.iterdir())


def test_failed_run_leaves_no_files(toy, tmp_path, monkeypatch):
    prog, x = toy
    import hwsim.engine.run as eng

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(eng, "timing_sync", boom)
    with pytest.raises(RuntimeError, match="boom"):
        simulate(prog, x, aer=tmp_path / "a.npz", vcd=tmp_path / "w.vcd", chrome=tmp_path / "c.json")
    assert not list(tmp_path.iterdir())  # neither results nor temporaries
