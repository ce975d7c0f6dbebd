"""The recorder the engine's step-by-step timing model drives for one sample.

The timing model reports, per step ``t`` and in cycles from the start of that step,
each core's phases (``integrate``, ``psum wait``, ``fire``), the NoC packets (inject
and delivery cycle per destination) and finally the step's length. :class:`Timeline`
turns these into absolute cycles (from the start of step 0), drops what lies outside
the configured step window, and hands them to its sinks (a Chrome writer; the phase
log that puts the VCD on a cycle timebase).
"""

from __future__ import annotations

import numpy as np


class PhaseLog:
    """Per step: start cycle and length; per core: its phases ``(t, name, start, end)``, absolute cycles."""

    def __init__(self, cores):
        self.cores = {int(c) for c in cores}
        self.step_start: list[int] = []
        self.step_len: list[int] = []
        self.phases: dict[int, list] = {c: [] for c in self.cores}
        self._fire_end: dict[tuple, int] = {}

    def step(self, t: int, start: int, length: int) -> None:
        while len(self.step_start) <= t:
            self.step_start.append(0)
            self.step_len.append(0)
        self.step_start[t], self.step_len[t] = int(start), int(length)

    def phase(self, core: int, t: int, name: str, start: int, end: int) -> None:
        if core in self.cores and end > start:
            self.phases[core].append((int(t), name, int(start), int(end)))
            if name == "fire":
                self._fire_end[core, int(t)] = int(end)

    def packets(self, *args) -> None:
        pass

    def fire_end(self, core: int, t: int) -> int:
        """The cycle at which ``core``'s neurons hold step ``t``'s values (its fire phase ends; else the step's end)."""
        end = self._fire_end.get((int(core), int(t)))
        return end if end is not None else self.step_start[t] + self.step_len[t]


class Timeline:
    """Absolute-cycle fan-out of the timing model's events to ``sinks`` within ``window`` (lo, hi) steps."""

    def __init__(self, sinks, window: tuple | None = None):
        self.sinks = list(sinks)
        self.window = window
        self.off = 0

    def _keep(self, t: int) -> bool:
        return self.window is None or self.window[0] <= t < self.window[1]

    def step(self, t, length):
        if self._keep(t):
            for s in self.sinks:
                s.step(int(t), self.off, int(length))
        self.off += int(length)

    def phase(self, core, t, name, start, end):
        if self._keep(t):
            for s in self.sinks:
                s.phase(int(core), int(t), name, self.off + int(start), self.off + int(end))

    def packets(self, t, kind, src_core, dst_ptr, dst_core, inject, delivery, flits):
        if self._keep(t):
            inject = np.asarray(inject, np.int64) + self.off
            delivery = np.asarray(delivery, np.int64) + self.off
            for s in self.sinks:
                s.packets(int(t), kind, src_core, dst_ptr, dst_core, inject, delivery, flits)
