"""hwsim.result: the one-line summary a RunResult prints."""

from __future__ import annotations

import numpy as np

from hwsim.result import RunResult


def test_repr_is_a_one_line_summary():
    r = RunResult(np.zeros((32, 20, 10), np.int64), spikes={"h": np.zeros((32, 20, 4), np.int64)},
                  counters=np.zeros((32, 6, 3), np.int64), counter_names=["acs", "macs", "spikes"],
                  timing={"latency_us": np.array([10.0, 12.5])},
                  meta={"samples": 20, "chip": "tianjic", "accuracy": 0.95})
    assert repr(r) == ("RunResult(20 sample(s) x 32 steps on tianjic, 6 cores, accuracy 0.9500, "
                       "latency 11.25 us (mean of 2 timed), recorded h)")
    assert repr(RunResult(np.zeros((4, 3, 2)))) == "RunResult(3 sample(s) x 4 steps)"
