"""traces/: AER .npz, VCD on the cycle timebase, Chrome/Perfetto timelines; written atomically."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hwsim.chip import load_chip
from hwsim.engine import simulate
from hwsim.program import compile
from mapper.mapping import map_model
from models.errors import SimulationError
from tests.hwsim.cases import SMALL, random_net, toy_chip
from tests.hwsim.cases import toy as toy_net
from traces import TraceConfig


@pytest.fixture(scope="module")
def toy():
    m = map_model(toy_net(), toy_chip())
    x = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=np.float32)[:, None, :]
    x = np.concatenate([x, np.zeros_like(x), x], axis=1)  # 3 samples, the middle one silent
    return compile(m), x


def test_traces_off_by_default(toy):
    prog, x = toy
    assert simulate(prog, x).meta["traces"] == {}


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


def _vcd(path):
    import vcdvcd

    return vcdvcd.VCDVCD(str(path))


def _value_at(tv, t):
    """The value a (time, value) list holds at time t (the last change at or before t)."""
    v = None
    for when, val in tv:
        if when > t:
            break
        v = val
    return v


def _signed(bits: str, M: int) -> int:
    raw = int(bits, 2)
    return raw - (1 << M) if raw >= 1 << (M - 1) else raw


def test_vcd_on_the_cycle_timebase(toy, tmp_path):
    prog, x = toy
    r = simulate(prog, x, record="all", timing_samples=3, vcd=tmp_path / "w.vcd",
                 trace=TraceConfig(vcd_neurons=("h:1", ("o", 0)), vcd_sample=2))
    d = _vcd(tmp_path / "w.vcd")
    assert d.timescale["unit"] == "ps" and d.timescale["magnitude"] == 1
    text = (tmp_path / "w.vcd").read_text()
    clock = prog.chip.timing.clock_hz
    assert f"clock {clock:g} Hz" in text.split("$enddefinitions")[0]
    ps = 1e12 / clock
    hc, oc = int(prog.nrn_core[prog.pop_off[1] + 1]), int(prog.nrn_core[prog.pop_off[2]])
    sc = r.timing["step_cycles"][2]
    starts = np.concatenate([[0], np.cumsum(sc)[:-1]])
    # chip.step changes at every step's first cycle
    step_tv = d["chip.step"].tv
    assert [(t, int(v, 2)) for t, v in step_tv] == [(int(round(s * ps)), k) for k, s in enumerate(starts)]
    # each core's phase: integrate + fire cycles = the core's busy cycles of that sample
    for c in {hc, oc}:
        tv = d[f"chip.core{c}.phase_code"].tv
        busy_ps = sum(t1 - t0 for (t0, v), (t1, _) in zip(tv, tv[1:]) if int(v, 2) in (1, 3))
        assert round(busy_ps / ps) == r.timing["core_busy_cycles"][2][c]
        assert re.search(rf"sintegrate (\S+)", text) and re.search(r"sfire ", text)
    # membranes and spikes take step t's values when the core's fire phase of step t ends
    M = prog.membrane_bits
    v_tv, s_tv = d[f"chip.core{hc}.h.n1_v"].tv, d[f"chip.core{hc}.h.n1_spike"].tv
    code = d[f"chip.core{hc}.phase_code"].tv
    fire_ends = [t1 for (t0, v), (t1, _) in zip(code, code[1:]) if int(v, 2) == 3]
    assert len(fire_ends) == x.shape[0]
    for t, end in enumerate(fire_ends):
        assert _signed(_value_at(v_tv, end), M) == r.membrane["h"][t, 2, 1]
        assert int(_value_at(s_tv, end)) == int(r.spikes["h"][t, 2, 1] != 0)
        if t:
            assert _signed(_value_at(v_tv, end - 1), M) == r.membrane["h"][t - 1, 2, 1]


def test_vcd_step_window(toy, tmp_path):
    prog, x = toy
    r = simulate(prog, x, record="all", timing_samples=1, vcd=tmp_path / "w.vcd",
                 trace={"vcd_cores": (int(prog.nrn_core[prog.pop_off[1]]),), "steps": (1, 3)})
    d = _vcd(tmp_path / "w.vcd")
    sc = r.timing["step_cycles"][0]
    ps = 1e12 / prog.chip.timing.clock_hz
    assert [int(v, 2) for _, v in d["chip.step"].tv] == [1, 2]
    assert d["chip.step"].tv[0][0] == int(round(sc[0] * ps))  # times still count from step 0
    with pytest.raises(SimulationError, match=r"steps \(2, 9\)"):
        simulate(prog, x, timing_samples=1, vcd=tmp_path / "bad.vcd", trace={"vcd_cores": (0,), "steps": (2, 9)})


def test_vcd_cores_and_bad_selection(toy, tmp_path):
    prog, x = toy
    hc = int(prog.nrn_core[prog.pop_off[1]])
    simulate(prog, x, vcd=tmp_path / "w.vcd", trace={"vcd_cores": (hc,)})
    head = (tmp_path / "w.vcd").read_text().split("$enddefinitions")[0]
    n = int((prog.nrn_core[prog.pop_off[1]:] == hc).sum())
    assert len(re.findall(r"\$var ", head)) == 2 * n + 2 + 1  # v and spike per neuron, phase + code, step
    for bad in ({"vcd_neurons": ("nope:0",)}, {"vcd_neurons": ("h:7",)}, {"vcd_cores": (99,)},
                {"vcd_sample": 5}):
        with pytest.raises(SimulationError):
            simulate(prog, x, vcd=tmp_path / "bad.vcd", trace=bad)
    with pytest.raises(SimulationError, match="timing"):
        simulate(prog, x, timing=False, vcd=tmp_path / "bad.vcd", trace={"vcd_cores": (hc,)})
    assert not (tmp_path / "bad.vcd").exists()


def _depth(events) -> int:
    """Largest nesting depth of complete ('X') events on any (pid, tid) track."""
    best = 0
    tracks: dict = {}
    for e in events:
        if e["ph"] == "X":
            tracks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for spans in tracks.values():
        spans.sort()
        open_ends: list = []
        for s, t in spans:
            open_ends = [x for x in open_ends if x > s + 1e-9]
            open_ends.append(t)
            best = max(best, len(open_ends))
    return best


@pytest.mark.parametrize("mode", ["sync", "pipelined"])
def test_chrome_trace(mode, tmp_path):
    net, x = random_net(0)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 24, "core.neurons": 16,
                                             "timing.barrier_cycles": 3})
    m = map_model(net, chip)
    r = simulate(m, x[:4, :2], mode=mode, timing_samples=2, chrome=tmp_path / "c.json",
                 trace={"timeline_sample": 1})
    doc = json.loads((tmp_path / "c.json").read_text())
    ev = doc["traceEvents"]
    clock = chip.timing.clock_hz
    for e in ev:
        assert e["ph"] in ("X", "M", "b", "e", "s", "f") and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "X":
            assert e["ts"] >= 0 and e["dur"] >= 0
            assert e["dur"] * clock / 1e6 == pytest.approx(e["args"]["cycles"])
    steps = [e for e in ev if e.get("cat") == "step"]
    sc = r.timing["step_cycles"][1]
    assert [e["args"]["cycles"] for e in steps] == sc.tolist()
    starts = np.concatenate([[0], np.cumsum(sc)[:-1]])
    np.testing.assert_allclose([e["ts"] for e in steps], starts / clock * 1e6)
    busy = np.zeros(r.timing["core_busy_cycles"].shape[1], np.int64)
    for e in ev:
        if e.get("cat") == "core" and e["name"] in ("integrate", "fire"):
            busy[e["tid"]] += e["args"]["cycles"]
    np.testing.assert_array_equal(busy, r.timing["core_busy_cycles"][1])
    assert _depth(ev) == 1  # no track nests: phases of a core never overlap, packets are async
    # NoC packets: a begin/end pair per delivery, a flow from the source core to the destination core
    begins = {e["id"]: e for e in ev if e["ph"] == "b"}
    ends = {e["id"]: e for e in ev if e["ph"] == "e"}
    flows_s = {e["id"]: e for e in ev if e["ph"] == "s"}
    flows_f = {e["id"]: e for e in ev if e["ph"] == "f"}
    assert begins and begins.keys() == ends.keys() == flows_s.keys() == flows_f.keys()
    core_pid = {e["tid"]: e["pid"] for e in ev if e.get("cat") == "core"}
    for k, b in begins.items():
        assert b["name"] in ("spike", "psum") and b["cat"] == "noc"
        assert ends[k]["ts"] - b["ts"] == pytest.approx(b["args"]["cycles"] / clock * 1e6)
        assert flows_s[k]["tid"] == b["args"]["src"] and flows_f[k]["tid"] == b["args"]["dst"]
        assert flows_f[k]["pid"] == core_pid.get(b["args"]["dst"], flows_f[k]["pid"])
        s = b["args"]["step"]
        assert starts[s] / clock * 1e6 - 1e-9 <= b["ts"] <= ends[k]["ts"] <= (starts[s] + sc[s]) / clock * 1e6 + 1e-9
    assert doc["otherData"]["noc_packets_drawn"] == len(begins) and doc["otherData"]["noc_packets_left_out"] == 0


def test_chrome_size_is_bounded(tmp_path):
    net, x = random_net(0)
    chip = load_chip("tiny").with_overrides({**SMALL, "core.axons": 24, "core.neurons": 16})
    m = map_model(net, chip)
    simulate(m, x[:, :1], chrome=tmp_path / "all.json")
    simulate(m, x[:, :1], chrome=tmp_path / "cap.json", trace={"max_noc_events": 5, "steps": (2, 4)})
    full = json.loads((tmp_path / "all.json").read_text())
    cap = json.loads((tmp_path / "cap.json").read_text())
    n_full = full["otherData"]["noc_packets_drawn"]
    in_window = sum(1 for e in full["traceEvents"] if e["ph"] == "b" and 2 <= e["args"]["step"] < 4)
    assert cap["otherData"]["noc_packets_drawn"] == min(5, in_window)
    assert cap["otherData"]["noc_packets_left_out"] == in_window - min(5, in_window)
    assert {e["args"]["step"] for e in cap["traceEvents"] if e.get("cat") == "step"} == {2, 3}
    assert n_full > in_window >= 5


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
        simulate(prog, x, aer=tmp_path / "a.npz", vcd=tmp_path / "w.vcd", chrome=tmp_path / "c.json",
                 trace={"vcd_cores": (0,)})
    assert not list(tmp_path.iterdir())  # neither results nor temporaries


def test_cli_run_writes_traces(tmp_path):
    """`snnchip run` with --vcd, --chrome, --trace-steps and --record on the shipped MLP."""
    from snnchip.cli import main

    m = tmp_path / "m"
    assert main(["map", "mnist_mlp", "-o", str(m)]) == 0
    assert main(["run", str(m), "--samples", "3", "--trace-sample", "1", "--vcd", str(tmp_path / "w.vcd"),
                 "--vcd-cores", "0", "--chrome", str(tmp_path / "t.json"), "--trace-steps", "0:4",
                 "--record", "if2", "-o", str(tmp_path / "r")]) == 0
    d = _vcd(tmp_path / "w.vcd")
    assert d.timescale["unit"] == "ps"
    assert [int(v, 2) for _, v in d["chip.step"].tv] == [0, 1, 2, 3]
    assert any(s.endswith(".phase_code") for s in d.signals)
    doc = json.loads((tmp_path / "t.json").read_text())
    assert {e["args"]["step"] for e in doc["traceEvents"] if e.get("cat") == "step"} == {0, 1, 2, 3}
    assert _depth(doc["traceEvents"]) == 1
    assert any(e["ph"] == "s" for e in doc["traceEvents"]) and any(e["ph"] == "f" for e in doc["traceEvents"])
    from hwsim.result import RunResult

    r = RunResult.load(tmp_path / "r")
    assert set(r.spikes) == {"if2"} and r.meta["traces"].keys() == {"vcd", "chrome"}
    assert main(["report", str(tmp_path / "r"), "-o", str(tmp_path / "rep"), "--table", "loihi"]) == 0
    assert (tmp_path / "rep" / "spike_raster.png").stat().st_size > 5000
