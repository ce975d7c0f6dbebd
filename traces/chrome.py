"""Chrome / Perfetto timeline (``.json``, Trace Event Format) of one timed sample.

``ts`` / ``dur`` are microseconds: ``cycles / clock_hz * 1e6``, cycles counted from the
start of the sample's first step. Processes: ``pid 0`` = "steps", ``pid 1 + chip``
(row-major over the chip grid) = one chip, whose threads (``tid`` = core id) are its
cores. Events:

* ``ph "X"``, ``cat "step"``: one per step on ``pid 0, tid 0`` (barrier included);
* ``ph "X"``, ``cat "core"``, names ``integrate`` / ``psum wait`` / ``fire`` on the
  core's thread, ``args`` = step, cycles; a core's phases never overlap, so no track
  nests deeper than one level;
* NoC packets, one per delivered destination, as an async slice (``ph "b"`` / ``"e"``,
  ``cat "noc"``, names ``spike`` / ``psum``, ``args`` = step, src, dst, flits, cycles)
  on the source chip's process: viewers lay overlapping async slices out side by
  side instead of nesting them on a core's track; and a flow arrow (``ph "s"`` on the
  source core at the inject cycle, ``ph "f"`` on the destination core at delivery,
  ``cat "noc-flow"``);
* ``otherData``: tool, mode, clock, the step window, and how many NoC packets were
  left out past ``max_noc_events`` (the file's size stays bounded).

Events are streamed to the file while the timing model runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.fileio import AtomicFile


class ChromeWriter:
    """Streams Trace Event Format events; a sink of :class:`traces.timeline.Timeline`."""

    def __init__(self, path, clock_hz: float, core_chip: np.ndarray, chip_grid_w: int, core_population,
                 mode: str, *, window: tuple | None = None, max_noc_events: int = 200_000):
        self.path = Path(path)
        self.us = 1e6 / float(clock_hz)
        self.other = {"tool": "snnchip hwsim", "mode": mode, "clock_hz": float(clock_hz), "time_unit": "us",
                      "steps": list(window) if window else "all"}
        self.max_noc = int(max_noc_events)
        self.noc_written = self.noc_dropped = 0
        self.file = AtomicFile(self.path)
        self.f = self.file.open("w")
        self.first = True
        cc = np.asarray(core_chip, np.int64).reshape(-1, 2)
        self.pid = 1 + cc[:, 1] * max(int(chip_grid_w), 1) + cc[:, 0]
        self.f.write('{"displayTimeUnit":"ns","traceEvents":[\n')
        self._ev({"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "steps"}})
        self._ev({"ph": "M", "name": "thread_name", "pid": 0, "tid": 0, "args": {"name": "steps"}})
        for p in np.unique(self.pid):
            ch = cc[np.flatnonzero(self.pid == p)[0]]
            self._ev({"ph": "M", "name": "process_name", "pid": int(p), "tid": 0,
                      "args": {"name": f"chip ({int(ch[0])}, {int(ch[1])})"}})
        for c in range(cc.shape[0]):
            pop = core_population[c] if c < len(core_population) else ""
            self._ev({"ph": "M", "name": "thread_name", "pid": int(self.pid[c]), "tid": c,
                      "args": {"name": f"core {c} {pop}".strip()}})

    def _ev(self, d: dict) -> None:
        self.f.write(("" if self.first else ",\n") + json.dumps(d, separators=(",", ":")))
        self.first = False

    # sink interface (absolute cycles)
    def step(self, t: int, start: int, length: int) -> None:
        self._ev({"ph": "X", "cat": "step", "name": f"step {t}", "pid": 0, "tid": 0, "ts": start * self.us,
                  "dur": length * self.us, "args": {"step": int(t), "cycles": int(length)}})

    def phase(self, core: int, t: int, name: str, start: int, end: int) -> None:
        if end <= start:
            return
        self._ev({"ph": "X", "cat": "core", "name": name, "pid": int(self.pid[core]), "tid": int(core),
                  "ts": start * self.us, "dur": (end - start) * self.us,
                  "args": {"step": int(t), "cycles": int(end - start)}})

    def packets(self, t: int, kind: str, src_core, dst_ptr, dst_core, inject, delivery, flits) -> None:
        own = np.repeat(np.arange(len(src_core)), np.diff(dst_ptr))
        room = max(0, self.max_noc - self.noc_written)
        n = min(int(delivery.size), room)
        self.noc_dropped += int(delivery.size) - n
        for k in range(n):
            p = own[k]
            src, dst = int(src_core[p]), int(dst_core[k])
            s, d0 = int(inject[p]), int(delivery[k])
            pid = int(self.pid[src])
            ident = self.noc_written
            self.noc_written += 1
            self._ev({"ph": "b", "cat": "noc", "name": kind, "id": ident, "pid": pid, "tid": src, "ts": s * self.us,
                      "args": {"step": int(t), "src": src, "dst": dst, "flits": int(flits[p]), "cycles": d0 - s}})
            self._ev({"ph": "e", "cat": "noc", "name": kind, "id": ident, "pid": pid, "tid": src,
                      "ts": max(d0, s) * self.us})
            self._ev({"ph": "s", "cat": "noc-flow", "name": kind, "id": ident, "pid": pid, "tid": src,
                      "ts": s * self.us})
            self._ev({"ph": "f", "bp": "e", "cat": "noc-flow", "name": kind, "id": ident,
                      "pid": int(self.pid[dst]), "tid": dst, "ts": max(d0, s) * self.us})

    def close(self) -> Path:
        try:
            self.other.update(noc_packets_drawn=self.noc_written, noc_packets_left_out=self.noc_dropped,
                              max_noc_events=self.max_noc)
            self.f.write('\n],"otherData":%s}\n' % json.dumps(self.other))
            return self.file.commit()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self.file.abort()
