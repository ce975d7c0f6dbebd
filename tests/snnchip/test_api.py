"""The README's Python API block runs as written, and gives the CLI's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_api_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python block"
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)
    m, r, e = scope["m"], scope["r"], scope["e"]
    assert m.chip.name == "tianjic+core.axons=128" and m.chip.core.axons == 128
    assert r.output.shape[1] == 20 and 0.9 <= r.meta["accuracy"] <= 1.0
    # issue 19: the paper view is the papers' formula on the graph as written, from the run's firing rates:
    # E_MAC x FLOPs(fc1) once + E_AC x r_src x T x FLOPs for every later layer
    import energy

    rc = energy.run_counters(r, m)
    hand = sum(4.6 * d["flops"] if d["src_kind"] == "input" else 0.9 * rc.pop_rates[d["src"]] * rc.steps * d["flops"]
               for d in m.net.metadata["graph_layers"])
    assert np.isclose(e.total_pj, hand, rtol=1e-12)
    t = r.totals()
    chip_ops = scope["snnchip"].estimate(r, m, table="horowitz45-fp32", view="chip-ops")
    assert np.isclose(chip_ops.total_pj, (4.6 * t["macs"] + 0.9 * t["acs"]) / 20, rtol=1e-12)


def test_api_run_equals_integer_reference():
    import snnchip
    from models.datasets import mnist_sequences
    from models.intref import simulate_int

    m = snnchip.map("mnist_mlp")
    r = snnchip.run(m, samples=10, batch=4)  # three batches merged
    meta = m.net.metadata
    seq = mnist_sequences("direct", int(meta["steps"]), start=8000, samples=10)
    ref = simulate_int(m.net, seq.inputs, reset=meta["reset"], spikes=meta["spikes"])
    np.testing.assert_array_equal(r.output, ref.output)
    assert r.meta["labels"] == seq.labels.tolist()
    # the membrane floor reaches the chip through the API (Sinabs-style, minus the threshold)
    rf = snnchip.run(m, seq.inputs, v_min="-threshold", record="all", timing=False)
    reff = simulate_int(m.net, seq.inputs, reset=meta["reset"], spikes=meta["spikes"], v_min="-threshold",
                        record="all")
    for k in reff.membrane:
        np.testing.assert_array_equal(rf.membrane[k], reff.membrane[k])
    assert rf.meta["v_min"] == "-threshold"
