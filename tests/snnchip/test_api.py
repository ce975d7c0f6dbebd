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
    t = r.totals()
    assert np.isclose(e.total_pj, (4.6 * t["macs"] + 0.9 * t["acs"]) / 20, rtol=1e-12)


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
